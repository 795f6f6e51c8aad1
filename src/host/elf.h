/*
** A bounds-checked ELF64 section reader, for the `.boot_info` section of
** the executable that carries the guest kernel.  The image is untrusted:
** every offset, size and name is checked against the bytes given.
*/
#ifndef NUB_HOST_ELF_H
#define NUB_HOST_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "host.h"

/* Find the section called name in the ELF64 little-endian image
** [img, img + len).  On success *off and *size locate its bytes inside the
** image.  NUB_ERR_NOT_FOUND if there is no such section, NUB_ERR_PROTOCOL
** (naming the field, its offset and the limit) if the image is malformed. */
int host_elf_section(const uint8_t *img, size_t len, const char *name, uint64_t *off,
                     uint64_t *size, nub_error *err);

/* BootInfo from the `.boot_info` section of the file at path. */
int host_elf_boot_info(const char *path, struct nub_boot_info *out, nub_error *err);

#endif
