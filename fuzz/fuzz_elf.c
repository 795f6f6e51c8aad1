/*
** libFuzzer target: the ELF64 section reader (src/host/elf.c) on
** arbitrary images.  A found section must lie inside the input.
*/
#include <stdint.h>
#include <stdlib.h>

#include "host/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {".boot_info", ".shstrtab", ".text"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    uint64_t off, len;
    nub_error err;
    if (host_elf_section(data, size, names[i], &off, &len, &err) == NUB_OK &&
        (off > size || len > size - off))
      abort();
  }
  return 0;
}
