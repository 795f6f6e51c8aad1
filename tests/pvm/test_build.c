/*
** Builder / encoder: every op of the profile round-trips through
** nub_pvm_decode, relaxation reaches the shortest offsets, errors name the
** instruction.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pvm/pvm_internal.h"

#define GP07 PVM_PROFILE_GP07

static uint8_t *finish_ok(nub_pvm_builder *b, size_t *len) {
  uint8_t *blob = NULL;
  nub_pvm_error err = {0};
  int rc = nub_pvm_builder_finish(b, &blob, len, &err);
  if (rc) fail_msg("finish: %s", err.msg);
  nub_pvm_builder_free(b);
  return blob;
}

static int finish_err(nub_pvm_builder *b, nub_pvm_error *err) {
  uint8_t *blob = (uint8_t *)1;
  size_t len = 1;
  int rc = nub_pvm_builder_finish(b, &blob, &len, err);
  assert_int_not_equal(rc, 0);
  assert_int_equal(rc, err->code);
  assert_null(blob);
  nub_pvm_builder_free(b);
  return rc;
}

static void parse_ok(const uint8_t *blob, size_t len, nub_pvm_blob *out) {
  nub_pvm_error err = {0};
  if (nub_pvm_blob_parse(blob, blob + len, out, &err)) fail_msg("parse: %s", err.msg);
}

/* pc of the n-th instruction start */
static uint32_t nth_start(const nub_pvm_blob *bl, unsigned n) {
  for (uint32_t pc = 0; pc < bl->code_len; pc++)
    if (nub_pvm_blob_is_start(bl, pc) && n-- == 0) return pc;
  fail_msg("no instruction start %u", n);
  return 0;
}

static const int64_t imm_values[] = {
  0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fff, 0x8000, -0x8000, 0x123456, -0x800000,
  0x7fffffff, -0x7fffffff - 1,
};
#define NIMM (sizeof imm_values / sizeof imm_values[0])
static const uint64_t imm64_values[] = {0, 1, UINT64_MAX, 0x123456789abcdef0ull, 0x80000000ull};
static const uint8_t reg_sets[][3] = {{0, 1, 2}, {12, 11, 10}, {5, 5, 5}, {7, 0, 12}};
#define NREGS (sizeof reg_sets / sizeof reg_sets[0])
/* instructions before / after the one under test; one case per op gets a
   filler long enough for 3-byte offsets */
static const unsigned fillers[][2] = {{0, 0}, {1, 0}, {0, 1}, {3, 300}, {200, 2}};
static const unsigned big_filler[2] = {0, 33000};
#define NFILL (sizeof fillers / sizeof fillers[0])

typedef struct expect {
  nub_pvm_op op;
  uint8_t ra, rb, rd;
  uint64_t x, y;
  bool to_end;           /* branches: target the label after the filler, else pc 0 */
  unsigned pre, post;
} expect;

/* Build fallthrough*pre, the instruction, fallthrough*post, trap; decode
** the instruction and compare every operand its format has. */
static void check_one(const expect *w) {
  const nub_pvm_opinfo *info = &nub_pvm_isa(GP07)[nub_pvm_opcode_of(GP07, w->op)];
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)info->format);
  bool branch = info->flags & PVM_OPF_BRANCH;
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint32_t start = nub_pvm_builder_label(b), end = nub_pvm_builder_label(b);
  size_t len;
  nub_pvm_blob bl;
  nub_pvm_insn in;
  nub_pvm_builder_bind(b, start);
  for (unsigned i = 0; i < w->pre; i++) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  if (branch)
    nub_pvm_builder_branch(b, w->op, w->ra, w->rb, w->x, w->to_end ? end : start);
  else
    nub_pvm_builder_insn(b, w->op, w->ra, w->rb, w->rd, w->x, w->y);
  for (unsigned i = 0; i < w->post; i++) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, end);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  uint8_t *blob = finish_ok(b, &len);
  parse_ok(blob, len, &bl);
  uint32_t pc = nth_start(&bl, w->pre);
  nub_pvm_decode(GP07, &bl, pc, &in);
  assert_int_equal(in.op, w->op);
  assert_int_equal(in.opcode, nub_pvm_opcode_of(GP07, w->op));
  for (int i = 0; i < 4 && fi->operands[i]; i++) {
    switch ((pvm_opnd)fi->operands[i]) {
    case PVM_OPND_RA: assert_int_equal(in.ra, w->ra); break;
    case PVM_OPND_RB: assert_int_equal(in.rb, w->rb); break;
    case PVM_OPND_RD: assert_int_equal(in.rd, w->rd); break;
    case PVM_OPND_X:
      assert_int_equal(in.imm_x, w->x);
      assert_int_equal(in.lx, info->format == PVM_FMT_REG_IMM64 ? 8 : pvm_imm_width(w->x));
      break;
    case PVM_OPND_Y:
      assert_int_equal(in.imm_y, w->y);
      assert_int_equal(in.ly, pvm_imm_width(w->y));
      break;
    case PVM_OPND_TARGET: {
      int64_t target = w->to_end ? nth_start(&bl, w->pre + 1 + w->post) : 0;
      assert_int_equal(in.target, target);
      /* relaxation reached the shortest offset */
      uint64_t off = (uint64_t)(target - (int64_t)pc);
      assert_int_equal(fi->offset == PVM_OPND_X ? in.lx : in.ly, pvm_imm_width(off));
      break;
    }
    case PVM_OPND_END: break;
    }
  }
  /* the instruction's bytes end where the next one starts */
  assert_int_equal(pc + in.len, nth_start(&bl, w->pre + 1));
  free(blob);
}

static void test_every_op_round_trips(void **state) {
  (void)state;
  const nub_pvm_opinfo *isa = nub_pvm_isa(GP07);
  unsigned ops = 0, cases = 0;
  for (int opcode = 0; opcode < 256; opcode++) {
    if (!isa[opcode].name) continue;
    ops++;
    bool imm64 = isa[opcode].format == PVM_FMT_REG_IMM64;
    unsigned nvals = imm64 ? sizeof imm64_values / sizeof imm64_values[0] : NIMM;
    for (unsigned v = 0; v < nvals; v++) {
      const uint8_t *r = reg_sets[v % NREGS];
      const unsigned *f = v == 1 ? big_filler : fillers[v % NFILL];
      expect w = {(nub_pvm_op)isa[opcode].op, r[0], r[1], r[2],
                imm64 ? imm64_values[v] : (uint64_t)imm_values[v],
                (uint64_t)imm_values[(v * 7 + 3) % NIMM], v & 1, f[0], f[1]};
      check_one(&w);
      cases++;
    }
  }
  assert_int_equal(ops, nub_pvm_isa_count(GP07));
  print_message("%u ops, %u encode/decode cases\n", ops, cases);
}

/* ---- layout ---- */

static uint8_t *build_jumps(unsigned count, unsigned filler, size_t *len) {
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint32_t end = nub_pvm_builder_label(b);
  for (unsigned i = 0; i < count; i++) nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, end);
  for (unsigned i = 0; i < filler; i++) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, end);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  return finish_ok(b, len);
}

static void test_relaxation_reaches_fixed_point(void **state) {
  (void)state;
  size_t len;
  nub_pvm_blob bl;
  /* 40 jumps over each other: 4-byte offsets would put the first 200
     bytes from the end; at the fixed point every one is 2 bytes long */
  uint8_t *blob = build_jumps(40, 0, &len);
  parse_ok(blob, len, &bl);
  assert_int_equal(bl.code_len, 40 * 2 + 1);
  for (unsigned i = 0; i < 40; i++) {
    nub_pvm_insn in;
    nub_pvm_decode(GP07, &bl, 2 * i, &in);
    assert_int_equal(in.op, PVM_OP_JUMP);
    assert_int_equal(in.target, 80);
  }
  free(blob);
  /* offset 127 fits one byte, 128 needs two */
  blob = build_jumps(1, 125, &len);
  parse_ok(blob, len, &bl);
  assert_int_equal(bl.code_len, 2 + 125 + 1);
  assert_int_equal(bl.code[1], 127);
  free(blob);
  blob = build_jumps(1, 126, &len);
  parse_ok(blob, len, &bl);
  assert_int_equal(bl.code_len, 3 + 126 + 1);
  assert_int_equal(bl.code[1], 129);
  assert_int_equal(bl.code[2], 0);
  free(blob);
}

static void test_self_loop_and_end_label(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint32_t self = nub_pvm_builder_label(b), end = nub_pvm_builder_label(b);
  size_t len;
  nub_pvm_blob bl;
  nub_pvm_insn in;
  nub_pvm_builder_bind(b, self);
  nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, self);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_EQ, 1, 2, 0, end);
  nub_pvm_builder_bind(b, end);
  uint8_t *blob = finish_ok(b, &len);
  parse_ok(blob, len, &bl);
  static const uint8_t code[] = {40, 170, 0x21, 3};  /* offset 0 takes no byte */
  assert_int_equal(bl.code_len, sizeof code);
  assert_memory_equal(bl.code, code, sizeof code);
  nub_pvm_decode(GP07, &bl, 0, &in);
  assert_int_equal(in.target, 0);
  nub_pvm_decode(GP07, &bl, 1, &in);
  assert_int_equal(in.target, 4);   /* the end of the code */
  free(blob);
}

static void test_jump_table(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint32_t a = nub_pvm_builder_label(b), c = nub_pvm_builder_label(b);
  size_t len;
  nub_pvm_blob bl;
  nub_pvm_builder_jump_entry(b, c);
  nub_pvm_builder_jump_entry(b, a);
  nub_pvm_builder_bind(b, a);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  for (int i = 0; i < 300; i++) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, c);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  nub_pvm_builder_jump_entry_abs(b, 5);
  uint8_t *blob = finish_ok(b, &len);
  parse_ok(blob, len, &bl);
  assert_int_equal(bl.jump_count, 3);
  assert_int_equal(bl.jump_entry_size, 2);   /* 301 needs two bytes */
  assert_int_equal(nub_pvm_blob_jump_entry(&bl, 0), 301);
  assert_int_equal(nub_pvm_blob_jump_entry(&bl, 1), 0);
  assert_int_equal(nub_pvm_blob_jump_entry(&bl, 2), 5);
  free(blob);

  b = nub_pvm_builder_new(GP07);
  a = nub_pvm_builder_label(b);
  nub_pvm_builder_jump_size(b, 4);
  nub_pvm_builder_jump_entry(b, a);
  nub_pvm_builder_bind(b, a);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  blob = finish_ok(b, &len);
  parse_ok(blob, len, &bl);
  assert_int_equal(bl.jump_entry_size, 4);
  free(blob);

  b = nub_pvm_builder_new(GP07);   /* no entries: size 0, the canonical header */
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  blob = finish_ok(b, &len);
  static const uint8_t trap_blob[] = {0, 0, 1, 0, 1};
  assert_int_equal(len, sizeof trap_blob);
  assert_memory_equal(blob, trap_blob, len);
  free(blob);
}

/* ---- exact encodings ---- */

static void test_explicit_encodings(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint32_t l = nub_pvm_builder_label(b);
  size_t len;
  nub_pvm_blob bl;
  nub_pvm_insn in;
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_x = 4;
  e.raw_ra = 0xfd;                                           /* high nibble ignored, 13 -> r12 */
  nub_pvm_builder_insn_enc(b, PVM_OP_LOAD_IMM, 12, 0, 0, 5, 0, &e);
  e = PVM_ENCODING_AUTO;
  e.raw_ra = 14; e.raw_rb = 15; e.raw_rd = 200;              /* all r12 */
  nub_pvm_builder_insn_enc(b, PVM_OP_ADD_64, 12, 12, 12, 0, 0, &e);
  e = PVM_ENCODING_AUTO;
  e.width_x = 3; e.width_y = 0;
  nub_pvm_builder_bind(b, l);
  nub_pvm_builder_branch_enc(b, PVM_OP_BRANCH_EQ_IMM, 3, 0, (uint64_t)-2, l, &e);
  static const uint8_t pad[] = {0xaa, 0xbb};
  nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, 7, 0);        /* forced to 4 bytes by padding */
  nub_pvm_builder_bytes(b, pad, sizeof pad);
  static const uint8_t raw[] = {0xff, 1, 2};
  nub_pvm_builder_raw(b, raw, sizeof raw);
  uint8_t *blob = finish_ok(b, &len);
  parse_ok(blob, len, &bl);
  static const uint8_t code[] = {
    51, 0xfd, 5, 0, 0, 0,
    200, 0xfe, 200,
    81, 0x33, 0xfe, 0xff, 0xff,
    10, 7, 0, 0, 0, 0xaa, 0xbb,
    0xff, 1, 2,
  };
  assert_int_equal(bl.code_len, sizeof code);
  assert_memory_equal(bl.code, code, sizeof code);
  nub_pvm_decode(GP07, &bl, 0, &in);
  assert_int_equal(in.ra, 12);
  assert_int_equal(in.raw_ra, 0xfd);
  assert_int_equal(in.imm_x, 5);
  nub_pvm_decode(GP07, &bl, 6, &in);
  assert_int_equal(in.rd, 12);
  assert_int_equal(in.raw_rd, 200);
  nub_pvm_decode(GP07, &bl, 9, &in);
  assert_int_equal(in.imm_x, (uint64_t)-2);
  assert_int_equal(in.target, 9);
  nub_pvm_decode(GP07, &bl, 14, &in);
  assert_int_equal(in.op, PVM_OP_ECALLI);
  assert_int_equal(in.imm_x, 7);
  assert_int_equal(in.len, 7);
  nub_pvm_decode(GP07, &bl, 21, &in);
  assert_int_equal(in.op, PVM_OP_INVALID);
  free(blob);
}

/* ---- errors ---- */

typedef void (*build_fn)(nub_pvm_builder *b);

static void expect_error(build_fn fn, int code, uint64_t offset, const char *needle) {
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  nub_pvm_error err = {0};
  fn(b);
  finish_err(b, &err);
  assert_int_equal(err.code, code);
  assert_int_equal(err.offset, offset);
  if (!strstr(err.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void trap(nub_pvm_builder *b) { nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0); }

static void unbound_branch(nub_pvm_builder *b) {
  trap(b);
  nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, nub_pvm_builder_label(b));
}
static void unbound_entry(nub_pvm_builder *b) { trap(b); nub_pvm_builder_jump_entry(b, nub_pvm_builder_label(b)); }
static void bound_twice(nub_pvm_builder *b) {
  uint32_t l = nub_pvm_builder_label(b);
  nub_pvm_builder_bind(b, l);
  trap(b);
  nub_pvm_builder_bind(b, l);
}
static void imm_too_wide(nub_pvm_builder *b) {
  trap(b);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 1, 0, 0, 0xffffffffu, 0);
}
static void width_too_small(nub_pvm_builder *b) {
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_y = 1;
  nub_pvm_builder_insn_enc(b, PVM_OP_STORE_IMM_U16, 0, 0, 0, 0x20000, 300, &e);
}
static void width_not_allowed(nub_pvm_builder *b) {
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_x = 5;
  nub_pvm_builder_insn_enc(b, PVM_OP_ECALLI, 0, 0, 0, 1, 0, &e);
}
static void imm64_width(nub_pvm_builder *b) {
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_x = 4;
  nub_pvm_builder_insn_enc(b, PVM_OP_LOAD_IMM_64, 1, 0, 0, 1, 0, &e);
}
static void bad_register(nub_pvm_builder *b) { nub_pvm_builder_insn(b, PVM_OP_ADD_64, 1, 13, 2, 0, 0); }
static void bad_raw_register(nub_pvm_builder *b) {
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.raw_rb = 13;   /* decodes to r12, not r3 */
  nub_pvm_builder_insn_enc(b, PVM_OP_ADD_64, 1, 3, 2, 0, 0, &e);
}
static void branch_as_insn(nub_pvm_builder *b) { nub_pvm_builder_insn(b, PVM_OP_JUMP, 0, 0, 0, 0, 0); }
static void insn_as_branch(nub_pvm_builder *b) {
  uint32_t l = nub_pvm_builder_label(b);
  nub_pvm_builder_bind(b, l);
  nub_pvm_builder_branch(b, PVM_OP_ADD_64, 0, 0, 0, l);
}
static void op_not_in_profile(nub_pvm_builder *b) { nub_pvm_builder_insn(b, PVM_OP_UNLIKELY, 0, 0, 0, 0, 0); }
static void offset_too_far(nub_pvm_builder *b) {
  uint32_t l = nub_pvm_builder_label(b);
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_x = 1;
  nub_pvm_builder_branch_enc(b, PVM_OP_JUMP, 0, 0, 0, l, &e);
  for (int i = 0; i < 200; i++) trap(b);
  nub_pvm_builder_bind(b, l);
  trap(b);
}
static void abs_target_too_far(nub_pvm_builder *b) {
  nub_pvm_builder_branch_abs(b, PVM_OP_JUMP, 0, 0, 0, (int64_t)1 << 40, NULL);
}
static void padding_needs_width_4(nub_pvm_builder *b) {
  static const uint8_t pad[1] = {0};
  nub_pvm_encoding e = PVM_ENCODING_AUTO;
  e.width_x = 2;
  trap(b);
  nub_pvm_builder_insn_enc(b, PVM_OP_LOAD_IMM, 1, 0, 0, 5, 0, &e);
  nub_pvm_builder_bytes(b, pad, 1);
}
static void raw_too_long(nub_pvm_builder *b) {
  uint8_t bytes[26] = {0};
  nub_pvm_builder_raw(b, bytes, sizeof bytes);
}
static void entry_size_small(nub_pvm_builder *b) {
  for (int i = 0; i < 300; i++) trap(b);
  nub_pvm_builder_jump_size(b, 1);
  nub_pvm_builder_jump_entry_abs(b, 299);
}
static void entry_size_bad(nub_pvm_builder *b) { nub_pvm_builder_jump_size(b, 5); }

static void test_errors(void **state) {
  (void)state;
  expect_error(unbound_branch, PVM_ERR_ARG, 1, "instruction 1 (jump): label 0 is never bound");
  expect_error(unbound_entry, PVM_ERR_JUMP_TABLE, 0, "jump table entry 0: label 0 is never bound");
  expect_error(bound_twice, PVM_ERR_ARG, 1, "bound twice");
  expect_error(imm_too_wide, PVM_ERR_RANGE, 1, "instruction 1 (load_imm): immediate x 4294967295");
  expect_error(width_too_small, PVM_ERR_RANGE, 0, "immediate y 300 (0x12c) does not fit a sign-extended 1-byte field");
  expect_error(width_not_allowed, PVM_ERR_RANGE, 0, "width 5 is not in 0..4");
  expect_error(imm64_width, PVM_ERR_RANGE, 0, "always 8 bytes");
  expect_error(bad_register, PVM_ERR_ARG, 0, "rb: register 13 is not in r0..r12");
  expect_error(bad_raw_register, PVM_ERR_ARG, 0, "raw register field 13 does not decode to r3");
  expect_error(branch_as_insn, PVM_ERR_ARG, 0, "use nub_pvm_builder_branch");
  expect_error(insn_as_branch, PVM_ERR_ARG, 0, "use nub_pvm_builder_insn");
  expect_error(op_not_in_profile, PVM_ERR_ARG, 0, "not in profile gp07");
  expect_error(offset_too_far, PVM_ERR_RANGE, 0, "202 bytes away, which does not fit a 1-byte");
  expect_error(abs_target_too_far, PVM_ERR_RANGE, 0, "does not fit a 4-byte offset");
  expect_error(padding_needs_width_4, PVM_ERR_RANGE, 1, "its width must be 4, not 2");
  expect_error(raw_too_long, PVM_ERR_ARG, 0, "1..25 bytes, not 26");
  expect_error(entry_size_small, PVM_ERR_JUMP_TABLE, 0, "target 299 does not fit 1-byte entries");
  expect_error(entry_size_bad, PVM_ERR_JUMP_TABLE, 0, "entry size 5");
}

static void test_finish_twice(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(GP07);
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  trap(b);
  assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, &err), 0);
  free(blob);
  assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, &err), PVM_ERR_ARG);
  assert_null(blob);
  nub_pvm_builder_free(b);
}

/* ---- SPI ---- */

static void test_spi_encode(void **state) {
  (void)state;
  static const uint8_t ro[] = {1, 2, 3}, rw[] = {9}, code[] = {0, 0, 1, 0, 1};
  nub_pvm_spi in = {ro, 3, rw, 1, 2, 0x10000, code, sizeof code}, out;
  uint8_t *bytes;
  size_t len;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_spi_encode(&in, &bytes, &len, &err), 0);
  static const uint8_t want[] = {3, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 1, 2, 3, 9,
                                 5, 0, 0, 0, 0, 0, 1, 0, 1};
  assert_int_equal(len, sizeof want);
  assert_memory_equal(bytes, want, len);
  assert_int_equal(nub_pvm_spi_parse(bytes, bytes + len, &out, &err), 0);
  assert_int_equal(out.ro_len, 3);
  assert_int_equal(out.rw_len, 1);
  assert_int_equal(out.heap_pages, 2);
  assert_int_equal(out.stack_size, 0x10000);
  assert_int_equal(out.code_blob_len, sizeof code);
  free(bytes);
  in.stack_size = 1u << 24;
  assert_int_equal(nub_pvm_spi_encode(&in, &bytes, &len, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "stack size 16777216 does not fit 3 bytes"));
  in.stack_size = 0;
  in.heap_pages = 1u << 16;
  assert_int_equal(nub_pvm_spi_encode(&in, &bytes, &len, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "heap pages"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_op_round_trips),
    cmocka_unit_test(test_relaxation_reaches_fixed_point),
    cmocka_unit_test(test_self_loop_and_end_label),
    cmocka_unit_test(test_jump_table),
    cmocka_unit_test(test_explicit_encodings),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_finish_twice),
    cmocka_unit_test(test_spi_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
