/*
** Assembler: disasm -> asm reproduces every bundled vector program and
** the hand-made unusual blobs byte for byte; the syntax works as
** docs/asm.md says; every class of error names its line and column.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "cli.h"
#include "pvm/tricky.h"
#include "vector.h"

#define GP07 PVM_PROFILE_GP07

static uint8_t *asm_ok(const char *src, size_t *len, bool *spi) {
  uint8_t *out = NULL;
  nub_pvm_error err = {0};
  if (nub_pvm_asm(GP07, src, strlen(src), &out, len, spi, &err))
    fail_msg("asm: %s\nsource:\n%s", err.msg, src);
  return out;
}

/* disasm, asm, compare; returns 0 on a byte-exact round trip */
static int round_trip(const uint8_t *in, size_t len, unsigned flags, const char *what) {
  char *text;
  size_t text_len, out_len;
  uint8_t *out;
  bool spi;
  nub_pvm_error err;
  if (nub_pvm_disasm(GP07, in, len, flags, &text, &text_len, &err)) {
    print_error("%s: disasm: %s\n", what, err.msg);
    return 1;
  }
  if (nub_pvm_asm(GP07, text, text_len, &out, &out_len, &spi, &err)) {
    print_error("%s: asm: %s\n%s", what, err.msg, text);
    free(text);
    return 1;
  }
  int rc = out_len != len || memcmp(out, in, len) || spi != ((flags & PVM_DISASM_SPI) != 0);
  if (rc) print_error("%s: reassembled bytes differ\n%s", what, text);
  free(text);
  free(out);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_vectors_round_trip(void **state) {
  (void)state;
  char dir[4096], path[4400];
  const char *root = getenv("NUB_SOURCE_DIR");
  assert_non_null(root);
  snprintf(dir, sizeof dir, "%s/tests/vectors/w3f-pvm", root);
  DIR *d = opendir(dir);
  assert_non_null(d);
  char *names[1024];
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".json") && n < 1024) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  unsigned passed = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t *text;
    size_t len;
    pvm_vector v;
    char why[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    assert_int_equal(cli_read_file(path, &text, &len), 0);
    if (vector_parse((const char *)text, len, &v, why, sizeof why)) fail_msg("%s: %s", path, why);
    if (round_trip(v.program, v.program_len, 0, names[i])) failed++;
    else passed++;
    vector_free(&v);
    free(text);
    free(names[i]);
  }
  print_message("vector programs: %u round-tripped, %u failed\n", passed, failed);
  assert_int_equal(failed, 0);
  assert_int_equal(passed, n);
  assert_true(n > 0);
}

static void test_tricky_round_trip(void **state) {
  (void)state;
  unsigned failed = round_trip(tricky_blob, sizeof tricky_blob, 0, "tricky_blob");
  for (size_t i = 0; i < NTRICKY; i++)
    failed += round_trip(tricky_cases[i].bytes, tricky_cases[i].len, 0, tricky_cases[i].name);
  print_message("unusual blobs: %zu round-tripped\n", NTRICKY + 1 - failed);
  assert_int_equal(failed, 0);
}

static void test_spi_round_trip(void **state) {
  (void)state;
  static const uint8_t ro[40] = {1, 2, 3, [20] = 7}, rw[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
  nub_pvm_spi spi = {ro, sizeof ro, rw, sizeof rw, 5, 65536, tricky_blob, sizeof tricky_blob};
  uint8_t *bytes;
  size_t len;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_spi_encode(&spi, &bytes, &len, &err), 0);
  assert_int_equal(round_trip(bytes, len, PVM_DISASM_SPI, "spi"), 0);
  free(bytes);
  spi = (nub_pvm_spi){NULL, 0, NULL, 0, 0, 0, tricky_cases[0].bytes, (uint32_t)tricky_cases[0].len};
  assert_int_equal(nub_pvm_spi_encode(&spi, &bytes, &len, &err), 0);
  assert_int_equal(round_trip(bytes, len, PVM_DISASM_SPI, "empty spi"), 0);
  free(bytes);
}

/* ---- syntax ---- */

static void test_syntax(void **state) {
  (void)state;
  size_t len;
  bool spi = true;
  nub_pvm_blob bl;
  nub_pvm_insn in;
  nub_pvm_error err;
  uint8_t *blob = asm_ok(
    "; a comment line\n"
    "# another\n"
    "start:  load_imm r1, -1          ; trailing comment\n"
    "\tload_imm_64 r2, 0xFFFFFFFFFFFFFFFF  # hash comment\n"
    "        store_imm_u32 0x20000, -0x80000000\n"
    "        fallthrough                   ; loop starts a basic block\n"
    "loop: again:\n"
    "        add_imm_64 r1, r1, 1:2\n"
    "        branch_ne_imm r1, 10, loop\n"
    "        branch_lt_u r1, r2, 0         ; absolute pc\n"
    "        jump again:4\n"
    "        jump_ind r0, 0\n"
    ".jump_size 3\n"
    ".jump loop\n"
    ".jump 0\n"
    "end:\n", &len, &spi);
  assert_false(spi);
  assert_int_equal(nub_pvm_blob_parse(blob, blob + len, &bl, &err), 0);
  assert_int_equal(bl.jump_count, 2);
  assert_int_equal(bl.jump_entry_size, 3);
  static const uint8_t code[] = {
    51, 1, 0xff,                          /* 0 */
    20, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* 3 */
    32, 3, 0, 0, 2, 0, 0, 0, 0x80,        /* 13 */
    1,                                    /* 22: fallthrough */
    149, 0x11, 1, 0,                      /* 23 */
    82, 0x11, 10, 0xfc,                   /* 27: to 23 */
    172, 0x21, 0xe1,                      /* 31: to 0 */
    40, 0xf5, 0xff, 0xff, 0xff,           /* 34: to 23, 4 bytes */
    50, 0,                                /* 39 */
  };
  assert_int_equal(bl.code_len, sizeof code);
  assert_memory_equal(bl.code, code, sizeof code);
  assert_int_equal(nub_pvm_blob_jump_entry(&bl, 0), 23);
  assert_int_equal(nub_pvm_blob_jump_entry(&bl, 1), 0);
  nub_pvm_decode(GP07, &bl, 31, &in);
  assert_int_equal(in.target, 0);
  free(blob);
}

static void test_data_and_spi(void **state) {
  (void)state;
  size_t len;
  bool spi = false;
  nub_pvm_spi s;
  nub_pvm_error err;
  uint8_t *out = asm_ok(
    ".stack_size 8192\n"
    ".heap_pages 2\n"
    ".ro_data\n"
    "  .byte 1, 0xff, -1\n"
    "  .u16 0x1234, -2\n"
    ".rw_data\n"
    "  .u32 0xdeadbeef\n"
    "  .u64 -1\n"
    "  .zero 3\n"
    ".code\n"
    "  trap\n"
    "  .byte 0xaa\n"
    "  .zero 2\n", &len, &spi);
  assert_true(spi);
  assert_int_equal(nub_pvm_spi_parse(out, out + len, &s, &err), 0);
  assert_int_equal(s.stack_size, 8192);
  assert_int_equal(s.heap_pages, 2);
  static const uint8_t ro[] = {1, 0xff, 0xff, 0x34, 0x12, 0xfe, 0xff};
  static const uint8_t rw[] = {0xef, 0xbe, 0xad, 0xde, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0, 0, 0};
  static const uint8_t blob[] = {0, 0, 4, 0, 0xaa, 0, 0, 1};   /* only the trap starts */
  assert_int_equal(s.ro_len, sizeof ro);
  assert_memory_equal(s.ro_data, ro, sizeof ro);
  assert_int_equal(s.rw_len, sizeof rw);
  assert_memory_equal(s.rw_data, rw, sizeof rw);
  assert_int_equal(s.code_blob_len, sizeof blob);
  assert_memory_equal(s.code_blob, blob, sizeof blob);
  free(out);
  out = asm_ok("", &len, &spi);    /* empty text: an empty generic blob */
  assert_false(spi);
  assert_int_equal(len, 3);
  free(out);
}

/* ---- errors ---- */

typedef struct bad {
  const char *src;
  int code;
  const char *where;      /* "LINE:COL: " */
  const char *msg;
} bad;

static const bad bad_sources[] = {
  {"trap\n  ad_64 r1, r2, r3\n", PVM_ERR_ENCODING, "2:3: ", "unknown mnemonic 'ad_64'"},
  {".foo 1\n", PVM_ERR_ENCODING, "1:1: ", "unknown directive '.foo'"},
  {"add_64 r1, r13, r2\n", PVM_ERR_RANGE, "1:12: ", "register 'r13' out of range (r0..r12)"},
  {"add_64 r1, x1, r2\n", PVM_ERR_ENCODING, "1:12: ", "expected a register (r0..r12), found 'x1'"},
  {"load_imm r12:7, 5\n", PVM_ERR_ARG, "1:10: ", "raw register field 7 does not decode to r12"},
  {"add_64 r1:16, r2, r3\n", PVM_ERR_ARG, "1:8: ", "raw register field 16 does not decode to r1"},
  {"load_imm r1, 0xffffffff\n", PVM_ERR_RANGE, "1:14: ",
   "load_imm: immediate x 4294967295 (0xffffffff) does not fit a sign-extended 4-byte field"},
  {"load_imm r1, 500:1\n", PVM_ERR_RANGE, "1:14: ", "does not fit a sign-extended 1-byte field"},
  {"ecalli 1:5\n", PVM_ERR_RANGE, "1:8: ", "width 5 is not in 0..4"},
  {"ecalli 1:9\n", PVM_ERR_RANGE, "1:10: ", "an immediate width out of range (0..8)"},
  {"load_imm_64 r1, 1:4\n", PVM_ERR_RANGE, "1:17: ", "always 8 bytes, not 4"},
  {"load_imm r1, 5x\n", PVM_ERR_ENCODING, "1:14: ", "expected a number, found '5x'"},
  {"load_imm r1, 0x\n", PVM_ERR_ENCODING, "1:14: ", "expected a number, found '0x'"},
  {"load_imm r1, 18446744073709551616\n", PVM_ERR_RANGE, "1:14: ", "number does not fit 64 bits"},
  {"load_imm r1, -0x8000000000000001\n", PVM_ERR_RANGE, "1:14: ", "negative number below -2^63"},
  {"load_imm r1 5\n", PVM_ERR_ENCODING, "1:13: ", "expected ',', found '5'"},
  {"add_64 r1, r2\n", PVM_ERR_ENCODING, "1:1: ", "add_64 takes 3 operands (rd, ra, rb), found 2"},
  {"trap 1\n", PVM_ERR_ENCODING, "1:6: ", "trap takes 0 operands, found more than 0"},
  {"move_reg r1, r2 r3\n", PVM_ERR_ENCODING, "1:17: ",
   "expected ',' or the end of the line, found 'r3'"},
  {"load_imm r1, 1\nL17:\n  add_64 r1, r1, r1\n  jump L17\n", PVM_ERR_ENCODING, "2:1: ",
   "label L17 is a branch target but does not start a basic block: put a terminator or "
   "`fallthrough` before it"},
  {"trap\n.insn 14 01\nL: trap\n.jump L\nstart: load_imm r1, 1\nmid: jump mid\n", PVM_ERR_ENCODING,
   "6:1: ", "label mid is a branch target but does not start a basic block"},
  {"jump r1\n", PVM_ERR_ENCODING, "1:6: ", "expected a label or a pc, found 'r1'"},
  {".jump r1\n", PVM_ERR_ENCODING, "1:7: ", "expected a label or a pc, found 'r1'"},
  {"add_64 r1, r2, r3, r4\n", PVM_ERR_ENCODING, "1:18: ", "found more than 3"},
  {"jump nowhere\ntrap\n", PVM_ERR_ENCODING, "1:6: ", "undefined label 'nowhere'"},
  {"a: trap\n  a: trap\n", PVM_ERR_ENCODING, "2:3: ", "duplicate label 'a' (first defined at 1:1)"},
  {"r1: trap\n", PVM_ERR_ENCODING, "1:1: ", "label 'r1' looks like a register"},
  {".ro_data\nx:\n", PVM_ERR_ENCODING, "2:1: ", "label 'x' in .ro_data"},
  {".rw_data\n  trap\n", PVM_ERR_ENCODING, "2:3: ", "instruction in .rw_data"},
  {".insn 3\n", PVM_ERR_ENCODING, "1:7: ", "odd number of hex digits in '3'"},
  {".insn 33 0g\n", PVM_ERR_ENCODING, "1:11: ", "expected hex bytes, found 'g'"},
  {".insn\n", PVM_ERR_ENCODING, "1:6: ", "expected hex bytes at the end of the line"},
  {".insn 00000000000000000000000000000000000000000000000000 00\n", PVM_ERR_LIMIT, "1:58: ",
   "an instruction spans at most 25 bytes"},
  {".ro_data\n.insn 00\n", PVM_ERR_ENCODING, "2:1: ", ".insn in .ro_data"},
  {".byte 256\n", PVM_ERR_RANGE, "1:7: ", "value out of range (-128..255)"},
  {".ro_data\n.u16 1, -32769\n", PVM_ERR_RANGE, "2:9: ", "value out of range (-32768..65535)"},
  {".byte 1,\n", PVM_ERR_ENCODING, "1:9: ", "expected a value at the end of the line"},
  {".zero\n", PVM_ERR_ENCODING, "1:6: ", "expected a number at the end of the line"},
  {".jump_size 5\n", PVM_ERR_RANGE, "1:12: ", "jump table entry size out of range (0..4)"},
  {".jump_size 1\n.jump_size 1\n", PVM_ERR_ENCODING, "2:1: ", "duplicate .jump_size"},
  {".jump_size 1\n.jump x\n.zero 300\nx: trap\n", PVM_ERR_JUMP_TABLE, "2:7: ",
   "target 300 does not fit 1-byte entries"},
  {".jump 0x100000000\n", PVM_ERR_RANGE, "1:7: ", "jump table entry out of range (0..4294967295)"},
  {"x: jump y:1\ntrap\n.zero 200\ny: trap\n", PVM_ERR_RANGE, "1:9: ",
   "jump: target 203 is 203 bytes away, which does not fit a 1-byte offset"},
  {"jump 0x100000000\n", PVM_ERR_RANGE, "1:6: ", "does not fit a 4-byte offset"},
  {"load_imm r1, 5:2\n.byte 0\n", PVM_ERR_RANGE, "1:14: ", "its width must be 4, not 2"},
  {".stack_size 0x1000000\n", PVM_ERR_RANGE, "1:13: ", "stack size out of range (0..16777215)"},
  {".heap_pages 65536\n", PVM_ERR_RANGE, "1:13: ", "heap pages out of range (0..65535)"},
  {".stack_size 1\n.stack_size 2\n", PVM_ERR_ENCODING, "2:1: ", "duplicate .stack_size"},
  {".ro_data\n.zero 16777215\n.byte 1\n", PVM_ERR_LIMIT, "3:1: ", ".ro_data exceeds 16777215 bytes"},
  {"trap\x01\n", PVM_ERR_ENCODING, "1:5: ", "unexpected control character 0x01"},
  {"trap\n5\n", PVM_ERR_ENCODING, "2:1: ",
   "expected a label, an instruction or a directive, found '5'"},
  {".code extra\n", PVM_ERR_ENCODING, "1:7: ", "expected the end of the line, found 'extra'"},
};

static void test_errors(void **state) {
  (void)state;
  unsigned n = 0;
  for (size_t i = 0; i < sizeof bad_sources / sizeof bad_sources[0]; i++, n++) {
    const bad *c = &bad_sources[i];
    uint8_t *out = (uint8_t *)1;
    size_t len = 1;
    nub_pvm_error err = {0};
    int rc = nub_pvm_asm(GP07, c->src, strlen(c->src), &out, &len, NULL, &err);
    if (rc != c->code || strncmp(err.msg, c->where, strlen(c->where)) ||
        !strstr(err.msg, c->msg))
      fail_msg("source %s\n  got rc %d: %s\n  want rc %d: %s%s", c->src, rc, err.msg, c->code,
               c->where, c->msg);
    assert_null(out);
    assert_int_equal(len, 0);
  }
  print_message("%u error cases\n", n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vectors_round_trip),
    cmocka_unit_test(test_tricky_round_trip),
    cmocka_unit_test(test_spi_round_trip),
    cmocka_unit_test(test_syntax),
    cmocka_unit_test(test_data_and_spi),
    cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
