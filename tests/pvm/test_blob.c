/*
** Blob decoding: compact naturals, generic blob validation errors, skip
** and single-instruction decoding.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

static void natural_round_trip(void **state) {
  (void)state;
  const uint64_t values[] = {0, 1, 127, 128, 16383, 16384, (1ull << 21) - 1, 1ull << 21,
                             (1ull << 28) - 1, 1ull << 28, (1ull << 56) - 1, 1ull << 56,
                             UINT64_MAX};
  const size_t lengths[] = {1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 8, 9, 9};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    uint8_t buf[9];
    size_t n = nub_pvm_write_natural(buf, values[i]);
    assert_int_equal(n, lengths[i]);
    const uint8_t *p = buf;
    uint64_t v;
    assert_int_equal(nub_pvm_read_natural(&p, buf + n, &v), PVM_OK);
    assert_true(v == values[i]);
    assert_ptr_equal(p, buf + n);
    /* every shorter slice is truncated */
    for (size_t k = 0; k < n; k++) {
      p = buf;
      assert_int_equal(nub_pvm_read_natural(&p, buf + k, &v), PVM_ERR_TRUNCATED);
    }
  }
}

static void natural_rejects_non_canonical(void **state) {
  (void)state;
  const uint8_t two_byte_small[] = {0x80, 0x05};            /* 5 fits in one byte */
  const uint8_t nine_byte_small[] = {0xFF, 1, 0, 0, 0, 0, 0, 0, 0};
  const uint8_t *p = two_byte_small;
  uint64_t v;
  assert_int_equal(nub_pvm_read_natural(&p, p + 2, &v), PVM_ERR_ENCODING);
  p = nine_byte_small;
  assert_int_equal(nub_pvm_read_natural(&p, p + 9, &v), PVM_ERR_ENCODING);
}

static int parse(const uint8_t *b, size_t n, nub_pvm_error *err) {
  nub_pvm_blob blob;
  return nub_pvm_blob_parse(b, b + n, &blob, err);
}

static void blob_errors(void **state) {
  (void)state;
  nub_pvm_error err;
  /* jump count, entry size, code length, code..., bitmask */
  const uint8_t ok[] = {0, 0, 2, 0, 0, 0x03};
  assert_int_equal(parse(ok, sizeof ok, &err), PVM_OK);

  assert_int_equal(parse(ok, 0, &err), PVM_ERR_TRUNCATED);
  assert_int_equal(parse(ok, 1, &err), PVM_ERR_TRUNCATED);
  assert_non_null(strstr(err.msg, "jump entry size"));

  const uint8_t big_entry[] = {1, 5, 1, 0, 0, 1};
  assert_int_equal(parse(big_entry, sizeof big_entry, &err), PVM_ERR_JUMP_TABLE);
  assert_int_equal(err.offset, 1);

  const uint8_t truncated_code[] = {0, 0, 4, 0, 0};
  assert_int_equal(parse(truncated_code, sizeof truncated_code, &err), PVM_ERR_TRUNCATED);
  assert_non_null(strstr(err.msg, "only 2 present"));

  const uint8_t trailing[] = {0, 0, 2, 0, 0, 0x03, 0x00};
  assert_int_equal(parse(trailing, sizeof trailing, &err), PVM_ERR_TRAILING);
  assert_int_equal(err.offset, 6);

  const uint8_t padding[] = {0, 0, 2, 0, 0, 0x07};
  assert_int_equal(parse(padding, sizeof padding, &err), PVM_ERR_BITMASK);
  assert_int_equal(err.offset, 5);

  /* an entry outside the code is valid (a djump through it panics) */
  const uint8_t jump_out[] = {2, 1, 2, 0, 2, 0, 0, 0x03};   /* entries 0 and 2 */
  assert_int_equal(parse(jump_out, sizeof jump_out, &err), PVM_OK);

  const uint8_t huge_code[] = {0, 0, 0xE4, 1, 0, 0};          /* 64 MiB + 1 byte */
  assert_int_equal(parse(huge_code, sizeof huge_code, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "code length"));

  const uint8_t non_canonical[] = {0x80, 0x00, 0, 0};
  assert_int_equal(parse(non_canonical, sizeof non_canonical, &err), PVM_ERR_ENCODING);
}

/* GP A.4: a jump table entry outside the code or at no instruction start
** leaves the program valid; djump panics exactly when it uses that entry. */
static void jump_entry_outside_code_loads_and_panics_when_used(void **state) {
  (void)state;
  /* jump_ind r0, 0 | load_imm r7, 42 | trap; entries 2 (valid), 1163, 3 */
  static const uint8_t blob[] = {3, 2, 6, 2, 0, 0x8B, 0x04, 3, 0, 50, 0, 51, 7, 42, 0, 0x25};
  static const struct { uint64_t addr; uint32_t pc; uint64_t r7; } cases[] = {
    {2, 5, 42},   /* entry 0: runs load_imm, then the trap */
    {4, 0, 0},    /* entry 1 = 1163: outside the 6-byte code */
    {6, 0, 0},    /* entry 2 = 3: inside load_imm */
  };
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      nub_pvm_program *prog;
      nub_pvm_mem *mem;
      nub_pvm_vm vm;
      nub_pvm_error err;
      if (nub_pvm_program_load((nub_pvm_profile)p, blob, sizeof blob, &prog, &err))
        fail_msg("%s: %s", nub_pvm_profile_name((nub_pvm_profile)p), err.msg);
      assert_int_equal(nub_pvm_mem_new(&mem, &err), PVM_OK);
      assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, &nub_pvm_engine_interp, NULL, &err), PVM_OK);
      vm.gas = 1000;
      vm.regs[0] = cases[i].addr;
      assert_int_equal(nub_pvm_vm_run(&vm), PVM_PANIC);
      assert_int_equal(vm.pc, cases[i].pc);
      assert_int_equal(vm.regs[7], cases[i].r7);
      nub_pvm_vm_fini(&vm);
      nub_pvm_mem_free(mem);
      nub_pvm_program_free(prog);
    }
  }
}

static void blob_fields(void **state) {
  (void)state;
  nub_pvm_blob b;
  const uint8_t blob[] = {2, 2, 3, 0x00, 0x00, 0x02, 0x00, 1, 1, 0, 0x03};
  assert_int_equal(nub_pvm_blob_parse(blob, blob + sizeof blob, &b, NULL), PVM_OK);
  assert_int_equal(b.jump_count, 2);
  assert_int_equal(b.jump_entry_size, 2);
  assert_int_equal(nub_pvm_blob_jump_entry(&b, 0), 0);
  assert_int_equal(nub_pvm_blob_jump_entry(&b, 1), 2);
  assert_int_equal(b.code_len, 3);
  assert_true(nub_pvm_blob_is_start(&b, 0));
  assert_true(nub_pvm_blob_is_start(&b, 1));
  assert_false(nub_pvm_blob_is_start(&b, 2));
  assert_false(nub_pvm_blob_is_start(&b, 3));
}

static void skip_is_capped_at_24(void **state) {
  (void)state;
  uint8_t blob[3 + 40 + 5] = {0, 0, 40};
  blob[3 + 40] = 0x01;      /* only pc 0 starts an instruction */
  nub_pvm_blob b;
  assert_int_equal(nub_pvm_blob_parse(blob, blob + sizeof blob, &b, NULL), PVM_OK);
  assert_int_equal(nub_pvm_skip(&b, 0), 24);
  assert_int_equal(nub_pvm_skip(&b, 30), 9);   /* the end counts as a start */
  assert_int_equal(nub_pvm_skip(&b, 39), 0);
}

static void decode_formats(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(190, 0xF7, 20),                   /* add_32: A=7, B=15->12, D=20->12 */
    I(51, 0xE3, 0xFF),                  /* load_imm r3 (high nibble ignored), -1 */
    I(20, 0x02, 1, 2, 3, 4, 5, 6, 7, 8),/* load_imm_64 r2 */
    I(70, 0x24, 0x00, 0x10, 0x80),      /* store_imm_ind_u8 r4+0x1000, Y=-128 */
    I(82, 0x11, 5, 0xF6),               /* branch_ne_imm r1, 5, pc-10 */
    I(180, 0x21, 0x01, 7, 9),           /* load_imm_jump_ind r1 r2 x=7 y=9 */
    I(100, 0x5D),                       /* move_reg D=13->12, A=5 */
    I(30, 0xF9, 0x10, 0x20, 0x30),      /* store_imm_u8: lx = 0xF9 % 8 = 1 */
  };
  size_t len;
  uint8_t *blob = tb_blob(prog, sizeof prog / sizeof prog[0], NULL, 0, 0, &len);
  nub_pvm_blob b;
  nub_pvm_insn in;
  assert_int_equal(nub_pvm_blob_parse(blob, blob + len, &b, NULL), PVM_OK);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 0, &in);
  assert_int_equal(in.op, PVM_OP_ADD_32);
  assert_int_equal(in.ra, 7);
  assert_int_equal(in.rb, 12);
  assert_int_equal(in.rd, 12);
  assert_int_equal(in.len, 3);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 3, &in);
  assert_int_equal(in.op, PVM_OP_LOAD_IMM);
  assert_int_equal(in.ra, 3);
  assert_true(in.imm_x == UINT64_MAX);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 6, &in);
  assert_int_equal(in.op, PVM_OP_LOAD_IMM_64);
  assert_true(in.imm_x == 0x0807060504030201ull);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 16, &in);
  assert_int_equal(in.op, PVM_OP_STORE_IMM_IND_U8);
  assert_int_equal(in.ra, 4);
  assert_int_equal(in.lx, 2);
  assert_true(in.imm_x == 0x1000);
  assert_int_equal(in.ly, 1);
  assert_true(in.imm_y == (uint64_t)-128);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 21, &in);
  assert_int_equal(in.op, PVM_OP_BRANCH_NE_IMM);
  assert_true(in.imm_x == 5);
  assert_int_equal(in.target, 21 - 10);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 25, &in);
  assert_int_equal(in.op, PVM_OP_LOAD_IMM_JUMP_IND);
  assert_int_equal(in.ra, 1);
  assert_int_equal(in.rb, 2);
  assert_true(in.imm_x == 7 && in.imm_y == 9);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 30, &in);
  assert_int_equal(in.op, PVM_OP_MOVE_REG);
  assert_int_equal(in.rd, 12);
  assert_int_equal(in.ra, 5);

  nub_pvm_decode(PVM_PROFILE_GP07, &b, 32, &in);
  assert_int_equal(in.op, PVM_OP_STORE_IMM_U8);
  assert_int_equal(in.lx, 1);
  assert_true(in.imm_x == 0x10);
  assert_int_equal(in.ly, 2);
  assert_true(in.imm_y == 0x3020);

  /* past the end reads zeros: opcode 0 */
  nub_pvm_decode(PVM_PROFILE_GP07, &b, (uint32_t)b.code_len, &in);
  assert_int_equal(in.op, PVM_OP_INVALID);
  free(blob);
}

static void invalid_opcode_decodes_as_invalid(void **state) {
  (void)state;
  const tinsn prog[] = {I(2), I(255, 1)};
  size_t len;
  uint8_t *blob = tb_blob(prog, 2, NULL, 0, 0, &len);
  nub_pvm_blob b;
  nub_pvm_insn in;
  assert_int_equal(nub_pvm_blob_parse(blob, blob + len, &b, NULL), PVM_OK);
  nub_pvm_decode(PVM_PROFILE_GP07, &b, 0, &in);
  assert_int_equal(in.op, PVM_OP_INVALID);
  nub_pvm_decode(PVM_PROFILE_GP07, &b, 1, &in);
  assert_int_equal(in.op, PVM_OP_INVALID);
  assert_int_equal(in.opcode, 255);
  free(blob);
}

static void isa_table_is_consistent(void **state) {
  (void)state;
  const nub_pvm_opinfo *t = nub_pvm_isa(PVM_PROFILE_GP07);
  unsigned valid = 0;
  for (int i = 0; i < 256; i++) {
    if (!t[i].name) { assert_int_equal(t[i].op, PVM_OP_INVALID); continue; }
    valid++;
    assert_int_equal(nub_pvm_opcode_of(PVM_PROFILE_GP07, (nub_pvm_op)t[i].op), i);
    assert_int_equal(nub_pvm_opcode_by_name(PVM_PROFILE_GP07, t[i].name, strlen(t[i].name)), i);
    assert_int_equal(t[i].gas, 1);
    if (t[i].flags & (PVM_OPF_LOAD | PVM_OPF_STORE)) assert_true(t[i].width > 0);
  }
  /* GP 0.7.x defines 139 opcodes: 0,1,10,20,30-33,40,50-62,70-73,80-90,
     100-111,120-161,170-175,180,190-230 */
  assert_int_equal(valid, 139);
  assert_int_equal(nub_pvm_isa_count(PVM_PROFILE_GP07), 139);
  assert_int_equal(nub_pvm_opcode_of(PVM_PROFILE_GP07, PVM_OP_UNLIKELY), -1);
  assert_true(t[10].flags == PVM_OPF_HOST);   /* ecalli does not end a block in GP 0.7 */
  assert_true(t[40].flags & PVM_OPF_TERM);
  assert_int_equal(nub_pvm_profile_by_name("gp07"), PVM_PROFILE_GP07);
  assert_int_equal(nub_pvm_profile_by_name("nope"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(natural_round_trip),
    cmocka_unit_test(natural_rejects_non_canonical),
    cmocka_unit_test(blob_errors),
    cmocka_unit_test(jump_entry_outside_code_loads_and_panics_when_used),
    cmocka_unit_test(blob_fields),
    cmocka_unit_test(skip_is_capped_at_24),
    cmocka_unit_test(decode_formats),
    cmocka_unit_test(invalid_opcode_decodes_as_invalid),
    cmocka_unit_test(isa_table_is_consistent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
