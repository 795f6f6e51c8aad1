/*
** The ELF64 section reader (src/host/elf.c): a minimal hand-built image,
** every truncation of it, one mutation per validated field, extended
** section numbering, and the real `.boot_info` of nub-guest.
*/
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/nk.h"
#include "host/elf.h"

/* 0: Ehdr | 64: .boot_info (128 bytes) | 192: names | 216: 3 section headers */
enum { DATA_OFF = 64, NAMES_OFF = 192, SHDR_OFF = 216, IMAGE_LEN = SHDR_OFF + 3 * 64 };
static const char names[] = "\0.shstrtab\0.boot_info";   /* 22 bytes with the final NUL */

static void put(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *shdr(uint8_t *img, int i) { return img + SHDR_OFF + 64 * i; }

static void set_shdr(uint8_t *img, int i, uint32_t name, uint32_t type, uint64_t off, uint64_t size) {
  uint8_t *s = shdr(img, i);
  put(s + offsetof(Elf64_Shdr, sh_name), name, 4);
  put(s + offsetof(Elf64_Shdr, sh_type), type, 4);
  put(s + offsetof(Elf64_Shdr, sh_offset), off, 8);
  put(s + offsetof(Elf64_Shdr, sh_size), size, 8);
}

static void build(uint8_t img[IMAGE_LEN]) {
  memset(img, 0, IMAGE_LEN);
  memcpy(img, ELFMAG, SELFMAG);
  img[EI_CLASS] = ELFCLASS64;
  img[EI_DATA] = ELFDATA2LSB;
  img[EI_VERSION] = EV_CURRENT;
  put(img + offsetof(Elf64_Ehdr, e_type), ET_EXEC, 2);
  put(img + offsetof(Elf64_Ehdr, e_machine), EM_X86_64, 2);
  put(img + offsetof(Elf64_Ehdr, e_shoff), SHDR_OFF, 8);
  put(img + offsetof(Elf64_Ehdr, e_ehsize), 64, 2);
  put(img + offsetof(Elf64_Ehdr, e_shentsize), 64, 2);
  put(img + offsetof(Elf64_Ehdr, e_shnum), 3, 2);
  put(img + offsetof(Elf64_Ehdr, e_shstrndx), 1, 2);
  for (int i = 0; i < 128; i++) img[DATA_OFF + i] = (uint8_t)i;
  memcpy(img + NAMES_OFF, names, sizeof names);
  set_shdr(img, 1, 1, SHT_STRTAB, NAMES_OFF, sizeof names);
  set_shdr(img, 2, 11, SHT_PROGBITS, DATA_OFF, 128);
}

static int find(const uint8_t *img, size_t len, nub_error *err) {
  uint64_t off = 0, size = 0;
  int rc = host_elf_section(img, len, ".boot_info", &off, &size, err);
  if (!rc) {
    assert_int_equal(off, DATA_OFF);
    assert_int_equal(size, 128);
  }
  return rc;
}

static void finds_the_section(void **state) {
  (void)state;
  uint8_t img[IMAGE_LEN];
  build(img);
  assert_int_equal(find(img, sizeof img, NULL), NUB_OK);
  uint64_t off, size;
  nub_error err;
  assert_int_equal(host_elf_section(img, sizeof img, ".shstrtab", &off, &size, NULL), NUB_OK);
  assert_int_equal(off, NAMES_OFF);
  assert_int_equal(host_elf_section(img, sizeof img, ".boot", &off, &size, &err), NUB_ERR_NOT_FOUND);
  assert_non_null(strstr(err.msg, "no section named .boot"));
  assert_int_equal(host_elf_section(img, sizeof img, ".boot_info2", &off, &size, NULL), NUB_ERR_NOT_FOUND);
}

static void every_truncation_fails_cleanly(void **state) {
  (void)state;
  uint8_t img[IMAGE_LEN];
  build(img);
  for (size_t len = 0; len < sizeof img; len++) {
    uint8_t *copy = malloc(len ? len : 1);      /* exact size: ASan sees any over-read */
    memcpy(copy, img, len);
    assert_int_equal(find(copy, len, NULL), NUB_ERR_PROTOCOL);
    free(copy);
  }
}

typedef struct mutation {
  const char *what;       /* expected in the message */
  size_t at;              /* byte offset in the image */
  uint64_t value;
  int width;
  int code;
} mutation;

static void each_field_is_checked(void **state) {
  (void)state;
  const mutation cases[] = {
    {"ELF magic", 1, 'X', 1, NUB_ERR_PROTOCOL},
    {"want ELF64", EI_CLASS, ELFCLASS32, 1, NUB_ERR_PROTOCOL},
    {"want ELF64", EI_DATA, ELFDATA2MSB, 1, NUB_ERR_PROTOCOL},
    {"e_shoff 0", offsetof(Elf64_Ehdr, e_shoff), 0, 8, NUB_ERR_PROTOCOL},
    {"e_shoff", offsetof(Elf64_Ehdr, e_shoff), UINT64_MAX - 8, 8, NUB_ERR_PROTOCOL},
    {"e_shentsize", offsetof(Elf64_Ehdr, e_shentsize), 40, 2, NUB_ERR_PROTOCOL},
    {"section count", offsetof(Elf64_Ehdr, e_shnum), 4, 2, NUB_ERR_PROTOCOL},
    {"e_shstrndx", offsetof(Elf64_Ehdr, e_shstrndx), 3, 2, NUB_ERR_PROTOCOL},
    {"name table sh_type", SHDR_OFF + 64 + offsetof(Elf64_Shdr, sh_type), SHT_PROGBITS, 4, NUB_ERR_PROTOCOL},
    {"name table end", SHDR_OFF + 64 + offsetof(Elf64_Shdr, sh_size), UINT64_MAX, 8, NUB_ERR_PROTOCOL},
    {"sh_name", SHDR_OFF + 128 + offsetof(Elf64_Shdr, sh_name), sizeof names, 4, NUB_ERR_PROTOCOL},
    {"section end", SHDR_OFF + 128 + offsetof(Elf64_Shdr, sh_offset), UINT64_MAX - 64, 8, NUB_ERR_PROTOCOL},
    {"section end", SHDR_OFF + 128 + offsetof(Elf64_Shdr, sh_size), IMAGE_LEN, 8, NUB_ERR_PROTOCOL},
    {"no bytes in the file", SHDR_OFF + 128 + offsetof(Elf64_Shdr, sh_type), SHT_NOBITS, 4, NUB_ERR_PROTOCOL},
    /* the name would run past the end of a shortened name table */
    {"no section named", SHDR_OFF + 64 + offsetof(Elf64_Shdr, sh_size), sizeof names - 1, 8, NUB_ERR_NOT_FOUND},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t img[IMAGE_LEN];
    nub_error err;
    build(img);
    put(img + cases[i].at, cases[i].value, cases[i].width);
    int rc = find(img, sizeof img, &err);
    if (rc != cases[i].code || !strstr(err.msg, cases[i].what))
      fail_msg("case %zu: got %s '%s', want %s mentioning '%s'", i, nub_errcode_name(rc), err.msg,
               nub_errcode_name(cases[i].code), cases[i].what);
  }
}

/* e_shnum 0 and e_shstrndx SHN_XINDEX defer to section 0's size and link. */
static void extended_numbering(void **state) {
  (void)state;
  uint8_t img[IMAGE_LEN];
  build(img);
  put(img + offsetof(Elf64_Ehdr, e_shnum), 0, 2);
  put(img + offsetof(Elf64_Ehdr, e_shstrndx), SHN_XINDEX, 2);
  put(shdr(img, 0) + offsetof(Elf64_Shdr, sh_size), 3, 8);
  put(shdr(img, 0) + offsetof(Elf64_Shdr, sh_link), 1, 4);
  assert_int_equal(find(img, sizeof img, NULL), NUB_OK);
  put(shdr(img, 0) + offsetof(Elf64_Shdr, sh_size), 1u << 20, 8);
  assert_int_equal(find(img, sizeof img, NULL), NUB_ERR_PROTOCOL);
}

static void reads_nub_guest(void **state) {
  (void)state;
  char path[4096];
  struct nub_boot_info bi;
  nub_error err;
  snprintf(path, sizeof path, "%s/nub-guest", getenv("NUB_BINARY_DIR"));
  assert_int_equal(host_elf_boot_info(path, &bi, &err), NUB_OK);
  assert_memory_equal(&bi, &nk_boot_info_section, sizeof bi);
  assert_true(bi.magic == NUB_BOOT_MAGIC && bi.guest_va_base == NUB_GUEST_VA_BASE_DEFAULT);
  assert_int_equal(host_elf_boot_info("/nonexistent", &bi, &err), NUB_ERR_SYSTEM);
  assert_non_null(strstr(err.msg, "/nonexistent"));
  assert_int_equal(host_elf_boot_info("/bin/true", &bi, &err), NUB_ERR_NOT_FOUND);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(finds_the_section),
    cmocka_unit_test(every_truncation_fails_cleanly),
    cmocka_unit_test(each_field_is_checked),
    cmocka_unit_test(extended_numbering),
    cmocka_unit_test(reads_nub_guest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
