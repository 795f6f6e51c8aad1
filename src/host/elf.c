/*
** ELF64 section lookup (elf.h).  Reads fields through a bounds-checked
** cursor, never through a cast of the image.
*/
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf.h"

#define MAX_FILE (1ull << 30)

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* [off, off + size) inside len bytes, without overflow. */
static int fits(uint64_t off, uint64_t size, size_t len) {
  return off <= len && size <= len - off;
}

static int bad(nub_error *err, const char *what, uint64_t off, uint64_t value, uint64_t limit) {
  return host_fail(err, NUB_ERR_PROTOCOL, "elf: %s at offset %llu is %llu (limit %llu)", what,
                   (unsigned long long)off, (unsigned long long)value, (unsigned long long)limit);
}

typedef struct shdr {
  uint32_t name, type;
  uint64_t offset, size, link;
} shdr;

static void read_shdr(const uint8_t *img, uint64_t at, shdr *s) {
  const uint8_t *p = img + at;
  s->name = (uint32_t)le(p + offsetof(Elf64_Shdr, sh_name), 4);
  s->type = (uint32_t)le(p + offsetof(Elf64_Shdr, sh_type), 4);
  s->offset = le(p + offsetof(Elf64_Shdr, sh_offset), 8);
  s->size = le(p + offsetof(Elf64_Shdr, sh_size), 8);
  s->link = le(p + offsetof(Elf64_Shdr, sh_link), 4);
}

int host_elf_section(const uint8_t *img, size_t len, const char *name, uint64_t *off,
                     uint64_t *size, nub_error *err) {
  static const uint8_t magic[4] = {0x7F, 'E', 'L', 'F'};
  if (len < sizeof(Elf64_Ehdr)) return bad(err, "file size", 0, len, sizeof(Elf64_Ehdr));
  if (memcmp(img, magic, 4)) return host_fail(err, NUB_ERR_PROTOCOL, "elf: no ELF magic at offset 0");
  if (img[EI_CLASS] != ELFCLASS64 || img[EI_DATA] != ELFDATA2LSB)
    return host_fail(err, NUB_ERR_PROTOCOL, "elf: class %u data %u at offsets 4/5, want ELF64 little-endian",
                     img[EI_CLASS], img[EI_DATA]);
  uint64_t shoff = le(img + offsetof(Elf64_Ehdr, e_shoff), 8);
  uint64_t entsize = le(img + offsetof(Elf64_Ehdr, e_shentsize), 2);
  uint64_t count = le(img + offsetof(Elf64_Ehdr, e_shnum), 2);
  uint64_t strndx = le(img + offsetof(Elf64_Ehdr, e_shstrndx), 2);
  if (!shoff) return host_fail(err, NUB_ERR_PROTOCOL, "elf: no section header table (e_shoff 0)");
  if (entsize != sizeof(Elf64_Shdr))
    return bad(err, "e_shentsize", offsetof(Elf64_Ehdr, e_shentsize), entsize, sizeof(Elf64_Shdr));
  if (!fits(shoff, sizeof(Elf64_Shdr), len))
    return bad(err, "e_shoff", offsetof(Elf64_Ehdr, e_shoff), shoff, len - sizeof(Elf64_Shdr));
  shdr s;
  read_shdr(img, shoff, &s);                       /* section 0 holds extended numbers */
  if (count == 0) count = s.size;
  if (strndx == SHN_XINDEX) strndx = s.link;
  if (count > (len - shoff) / sizeof(Elf64_Shdr))
    return bad(err, "section count", offsetof(Elf64_Ehdr, e_shnum), count,
               (len - shoff) / sizeof(Elf64_Shdr));
  if (strndx >= count) return bad(err, "e_shstrndx", offsetof(Elf64_Ehdr, e_shstrndx), strndx, count - 1);
  shdr strtab;
  uint64_t strtab_at = shoff + strndx * sizeof(Elf64_Shdr);
  read_shdr(img, strtab_at, &strtab);
  if (strtab.type != SHT_STRTAB) return bad(err, "name table sh_type", strtab_at + 4, strtab.type, SHT_STRTAB);
  if (!fits(strtab.offset, strtab.size, len))
    return bad(err, "name table end", strtab_at + offsetof(Elf64_Shdr, sh_size),
               strtab.offset + strtab.size, len);
  const char *names = (const char *)img + strtab.offset;
  size_t want = strlen(name);
  for (uint64_t i = 0; i < count; i++) {
    uint64_t at = shoff + i * sizeof(Elf64_Shdr);
    read_shdr(img, at, &s);
    if (s.name >= strtab.size) return bad(err, "sh_name", at, s.name, strtab.size - 1);
    /* the name must end inside the table */
    if (strtab.size - s.name <= want || memcmp(names + s.name, name, want + 1)) continue;
    if (s.type == SHT_NOBITS)
      return host_fail(err, NUB_ERR_PROTOCOL, "elf: section %s (header at offset %llu) has no bytes in the file",
                       name, (unsigned long long)at);
    if (!fits(s.offset, s.size, len))
      return bad(err, "section end", at + offsetof(Elf64_Shdr, sh_offset), s.offset + s.size, len);
    *off = s.offset;
    *size = s.size;
    return NUB_OK;
  }
  return host_fail(err, NUB_ERR_NOT_FOUND, "elf: no section named %s among %llu", name,
                   (unsigned long long)count);
}

static int read_file(const char *path, uint8_t **data, size_t *len, nub_error *err) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = NUB_OK;
  *data = NULL;
  if (fd < 0) return host_fail(err, NUB_ERR_SYSTEM, "elf: %s: %s", path, strerror(errno));
  if (fstat(fd, &st) || (uint64_t)st.st_size > MAX_FILE) {
    rc = host_fail(err, NUB_ERR_SYSTEM, "elf: %s: %s", path,
                   errno ? strerror(errno) : "larger than 1 GiB");
    goto out;
  }
  *len = (size_t)st.st_size;
  if (!(*data = malloc(*len ? *len : 1))) { rc = host_fail(err, NUB_ERR_NOMEM, "elf: out of memory"); goto out; }
  for (size_t got = 0; got < *len;) {
    ssize_t n = read(fd, *data + got, *len - got);
    if (n <= 0) {
      rc = host_fail(err, NUB_ERR_SYSTEM, "elf: reading %s: %s", path, n ? strerror(errno) : "short file");
      free(*data);
      *data = NULL;
      goto out;
    }
    got += (size_t)n;
  }
out:
  close(fd);
  return rc;
}

int host_elf_boot_info(const char *path, struct nub_boot_info *out, nub_error *err) {
  uint8_t *img;
  size_t len = 0;
  uint64_t off, size;
  int rc;
  if (!path) return host_fail(err, NUB_ERR_ARG, "elf: this backend has no kernel executable");
  if ((rc = read_file(path, &img, &len, err))) return rc;
  if (!(rc = host_elf_section(img, len, ".boot_info", &off, &size, err))) {
    if (size != sizeof *out)
      rc = host_fail(err, NUB_ERR_PROTOCOL, "elf: %s: .boot_info holds %llu bytes, BootInfo is %zu",
                     path, (unsigned long long)size, sizeof *out);
    else
      memcpy(out, img + off, sizeof *out);
  }
  free(img);
  return rc;
}
