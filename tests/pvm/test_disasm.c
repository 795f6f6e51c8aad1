/*
** Disassembler: exact text for unusual encodings, the relaxation
** fallback, SPI containers and malformed input.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nub/pvm.h"
#include "pvm/tricky.h"

static char *disasm_ok(const uint8_t *in, size_t len, unsigned flags) {
  char *text = NULL;
  size_t text_len = 0;
  nub_pvm_error err = {0};
  if (nub_pvm_disasm(PVM_PROFILE_GP07, in, len, flags, &text, &text_len, &err))
    fail_msg("disasm: %s", err.msg);
  assert_int_equal(strlen(text), text_len);
  return text;
}

static void assert_text(const char *got, const char *want) {
  if (strcmp(got, want)) fail_msg("got:\n%s\nwant:\n%s", got, want);
}

/* Targets that start no basic block (15: after a non-terminator; 26: the
** end of the code) print as pcs: the assembler refuses them as labels. */
static void test_unusual_encodings(void **state) {
  (void)state;
  char *text = disasm_ok(tricky_blob, sizeof tricky_blob, 0);
  assert_text(text,
    "; generic blob: 37 bytes; code: 26 bytes; jump table: 2 entries of 2 bytes\n"
    ".jump_size 2\n"
    ".jump L16                               ; entry 0, djump address 2\n"
    ".jump 5                                 ; entry 1, djump address 4\n"
    "        .byte 0x99                      ;      0\n"
    "        fallthrough                     ;      1: 01\n"
    "        .byte 0xaa, 0xbb                ;      2\n"
    "        load_imm r12:0xfd, 5:4          ;      4: 33 fd 05 00 00 00\n"
    "        .insn ff 01                     ;     10: invalid opcode 255 (traps)\n"
    "        .insn 14 01 02                  ;     12: decodes as load_imm_64 r1, 0xc821c80a21aa2802\n"
    "        jump 15                         ;     15: 28\n"
    "L16:\n"
    "        branch_eq r1, r2, 26            ;     16: aa 21 0a\n"
    "        add_64 r12:0xc8, r1, r2         ;     19: c8 21 c8\n"
    "        store_u16 r2:0x12, 0:1          ;     22: 3c 12 00\n"
    "        trap                            ;     25: 00\n");
  free(text);
}

static const tricky_case *tricky(const char *name) {
  for (size_t i = 0; i < NTRICKY; i++)
    if (!strcmp(tricky_cases[i].name, name)) return &tricky_cases[i];
  fail_msg("no tricky case %s", name);
  return NULL;
}

static void test_fields(void **state) {
  (void)state;
  const tricky_case *c = tricky("wide_fields");
  char *text = disasm_ok(c->bytes, c->len, 0);
  static const char *const lines[] = {
    "ecalli 1:4 ", "load_imm_64 r3:0xf3, 0x807060504030201 ", "store_imm_u8 1:4, 2:2 ",
    "load_imm r12:14, -1:2 ", "store_imm_ind_u8 r12:15, 0:4, 9 ",
    "branch_eq_imm r12:13, 0:2, 27 ", "move_reg r12:13, r12:15 ",
    "store_ind_u8 r12:13, r12:14, 0:2 ", "branch_eq r12:15, r12:13, 45:1 ",
    "load_imm_jump_ind r12:14, r12:14, 5, 0:2 ", "add_32 r12:0xff, r12:15, r12:15 ",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    if (!strstr(text, lines[i])) fail_msg("no \"%s\" in\n%s", lines[i], text);
  free(text);
  c = tricky("ignored_bits");
  text = disasm_ok(c->bytes, c->len, 0);
  assert_non_null(strstr(text, ".insn 1e 09 10 05               ;      0: decodes as store_imm_u8 16, 5\n"));
  assert_non_null(strstr(text, ".insn b4 21 f9 07 08            ;     11: decodes as load_imm_jump_ind r1, r2, 7, 8\n"));
  free(text);
  c = tricky("offsets");
  text = disasm_ok(c->bytes, c->len, 0);
  assert_non_null(strstr(text, "        jump L5:4  "));
  assert_non_null(strstr(text, "        branch_eq r0, r1, -5  "));
  /* the padding makes the assembler use 4 bytes anyway */
  assert_non_null(strstr(text, "        jump L5   "));
  assert_non_null(strstr(text, "        .byte 0xee, 0xee   "));
  free(text);
}

/* Relaxing from 4 bytes would stop at 2-byte offsets here, so the text
** must give the 1-byte widths explicitly. */
static void test_relaxation_fallback(void **state) {
  (void)state;
  const tricky_case *c = tricky("relax_cycle");
  char *text = disasm_ok(c->bytes, c->len, 0);
  assert_non_null(strstr(text, "        jump L253:1      "));
  assert_non_null(strstr(text, "        jump L100:1      "));
  free(text);
}

static void test_spi(void **state) {
  (void)state;
  static const uint8_t ro[] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4};
  static const uint8_t code[] = {0, 0, 1, 0, 1};
  nub_pvm_spi spi = {ro, sizeof ro, NULL, 0, 3, 4096, code, sizeof code};
  uint8_t *bytes;
  size_t len;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_spi_encode(&spi, &bytes, &len, &err), 0);
  char *text = disasm_ok(bytes, len, PVM_DISASM_SPI);
  assert_text(text,
    "; SPI container: 33 bytes, ro data 13 bytes, rw data 0 bytes, 3 heap pages, stack 4096 bytes\n"
    ".heap_pages 3\n"
    ".stack_size 4096\n"
    ".ro_data\n"
    "        .byte 0x01, 0x02, 0x03\n"
    "        .zero 9\n"
    "        .byte 0x04\n"
    ".code\n"
    "; generic blob: 5 bytes; code: 1 bytes; jump table: 0 entries of 0 bytes\n"
    "        trap                            ;      0: 00\n");
  free(text);
  free(bytes);
}

static void test_bad_input(void **state) {
  (void)state;
  static const uint8_t truncated[] = {0, 0, 5, 0};
  static const uint8_t bad_spi[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0};
  char *text = (char *)1;
  size_t len = 1;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_disasm(PVM_PROFILE_GP07, truncated, sizeof truncated, 0, &text, &len, &err),
                   PVM_ERR_TRUNCATED);
  assert_null(text);
  assert_non_null(strstr(err.msg, "only 1 present"));
  assert_int_equal(nub_pvm_disasm(PVM_PROFILE_GP07, bad_spi, sizeof bad_spi, PVM_DISASM_SPI, &text,
                              &len, &err), PVM_ERR_LENGTH);
  assert_non_null(strstr(err.msg, "code length 9"));
  /* an SPI whose code blob is malformed: offsets point into the container */
  static const uint8_t bad_code[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 5, 0};
  assert_int_equal(nub_pvm_disasm(PVM_PROFILE_GP07, bad_code, sizeof bad_code, PVM_DISASM_SPI,
                              &text, &len, &err), PVM_ERR_JUMP_TABLE);
  assert_int_equal(err.offset, 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_unusual_encodings),
    cmocka_unit_test(test_fields),
    cmocka_unit_test(test_relaxation_fallback),
    cmocka_unit_test(test_spi),
    cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
