/*
** Instruction semantics, gas, exits and resumption, for any engine
** (NUB_TEST_ENGINE=interp|jit; default interp).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "cli.h"
#include "testutil.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- three-register ALU: D = f(A, B) with A=r1, B=r2, D=r3 ---- */

typedef struct alu3 { uint8_t op; uint64_t a, b, d; } alu3;

static const alu3 alu3_cases[] = {
  {190, 0xFFFFFFFF, 1, 0},                              /* add_32 wraps */
  {190, 0x7FFFFFFF, 1, 0xFFFFFFFF80000000ull},          /* add_32 sign-extends */
  {191, 0, 1, UINT64_MAX},                              /* sub_32 */
  {192, 0x10000, 0x10000, 0},                           /* mul_32 */
  {193, 7, 0, UINT64_MAX},                              /* div_u_32 by zero */
  {193, 0xFFFFFFFF, 2, 0x7FFFFFFF},
  {194, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFF80000000ull}, /* div_s_32 MIN/-1 */
  {194, (uint64_t)-7, 2, (uint64_t)-3},                 /* truncates toward zero */
  {194, 5, 0, UINT64_MAX},
  {195, 7, 0, 7},                                       /* rem_u_32 by zero */
  {195, 0x80000007, 0, 0xFFFFFFFF80000007ull},
  {196, 0x80000000, 0xFFFFFFFF, 0},                     /* rem_s_32 MIN/-1 */
  {196, (uint64_t)-7, 2, (uint64_t)-1},                 /* sign of the dividend */
  {196, 0xFFFFFFF9, 0, (uint64_t)-7},
  {197, 1, 33, 2},                                      /* shlo_l_32 masks to 5 bits */
  {197, 1, 31, 0xFFFFFFFF80000000ull},
  {198, 0xFFFFFFFF80000000ull, 31, 1},                  /* shlo_r_32 on low half */
  {199, 0x80000000, 4, 0xFFFFFFFFF8000000ull},          /* shar_r_32 */
  {200, UINT64_MAX, 2, 1},                              /* add_64 */
  {201, 0, 1, UINT64_MAX},
  {202, 0x100000000ull, 0x100000000ull, 0},             /* mul_64 low half */
  {203, 9, 0, UINT64_MAX},
  {203, UINT64_MAX, 2, UINT64_MAX / 2},
  {204, 0x8000000000000000ull, UINT64_MAX, 0x8000000000000000ull},
  {204, (uint64_t)-9, 2, (uint64_t)-4},
  {204, 1, 0, UINT64_MAX},
  {205, 9, 0, 9},
  {206, 0x8000000000000000ull, UINT64_MAX, 0},
  {206, (uint64_t)-9, 2, (uint64_t)-1},
  {206, (uint64_t)-9, 0, (uint64_t)-9},
  {207, 1, 65, 2},                                      /* shlo_l_64 masks to 6 bits */
  {208, 0x8000000000000000ull, 63, 1},
  {209, 0x8000000000000000ull, 63, UINT64_MAX},
  {210, 0xF0F0, 0xFF00, 0xF000},
  {211, 0xF0F0, 0xFF00, 0x0FF0},
  {212, 0xF0F0, 0xFF00, 0xFFF0},
  {213, (uint64_t)-2, 3, UINT64_MAX},                   /* mul_upper_s_s */
  {214, UINT64_MAX, UINT64_MAX, UINT64_MAX - 1},        /* mul_upper_u_u */
  {215, (uint64_t)-1, 2, UINT64_MAX},                   /* mul_upper_s_u */
  {215, 2, UINT64_MAX, 1},
  {216, 1, UINT64_MAX, 1},                              /* set_lt_u */
  {217, 1, UINT64_MAX, 0},                              /* set_lt_s */
  {220, 0x8000000000000001ull, 1, 3},                   /* rot_l_64 */
  {221, 0x80000001, 1, 3},                              /* rot_l_32 */
  {221, 0x40000000, 1, 0xFFFFFFFF80000000ull},
  {222, 3, 1, 0x8000000000000001ull},                   /* rot_r_64 */
  {223, 3, 1, 0xFFFFFFFF80000001ull},                   /* rot_r_32 */
  {224, 0xFF, 0x0F, 0xF0},                              /* and_inv */
  {225, 0, UINT64_MAX - 1, 1},                          /* or_inv */
  {226, 0, 0, UINT64_MAX},                              /* xnor */
  {227, (uint64_t)-1, 1, 1},                            /* max */
  {228, (uint64_t)-1, 1, UINT64_MAX},                   /* max_u */
  {229, (uint64_t)-1, 1, UINT64_MAX},                   /* min */
  {230, (uint64_t)-1, 1, 1},                            /* min_u */
};

static void three_register_ops(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(alu3_cases); i++) {
    const alu3 *c = &alu3_cases[i];
    const tinsn prog[] = {I(c->op, 0x21, 3)};
    tvm t;
    tvm_load(&t, prog);
    t.vm.regs[1] = c->a;
    t.vm.regs[2] = c->b;
    t.vm.regs[3] = 0x5555;
    assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);   /* the implicit trap */
    if (t.vm.regs[3] != c->d)
      fail_msg("op %u (%s) a=0x%llx b=0x%llx: expected 0x%llx, got 0x%llx", c->op,
               nub_pvm_isa(PVM_PROFILE_GP07)[c->op].name, (unsigned long long)c->a,
               (unsigned long long)c->b, (unsigned long long)c->d,
               (unsigned long long)t.vm.regs[3]);
    assert_int_equal(t.vm.pc, 3);
    assert_int_equal(t.vm.gas, 1000 - 2);
    tvm_free(&t);
  }
}

static void cmov(void **state) {
  (void)state;
  const tinsn prog[] = {I(218, 0x21, 3), I(219, 0x21, 4)};
  tvm t;
  tvm_load(&t, prog);
  t.vm.regs[1] = 77;
  t.vm.regs[2] = 0;
  t.vm.regs[3] = t.vm.regs[4] = 5;
  nub_pvm_vm_run(&t.vm);
  assert_int_equal(t.vm.regs[3], 77);   /* cmov_iz: B == 0 */
  assert_int_equal(t.vm.regs[4], 5);    /* cmov_nz: unchanged */
  tvm_free(&t);
}

/* ---- two registers and an immediate: A = f(B, X) with A=r3, B=r1 ---- */

typedef struct alu2i { uint8_t op; uint64_t b; int32_t x; uint64_t a; } alu2i;

static const alu2i alu2i_cases[] = {
  {131, 0x7FFFFFFF, 1, 0xFFFFFFFF80000000ull},   /* add_imm_32 */
  {132, 0xFFFF, -256, 0xFF00},                   /* and_imm, X sign-extended */
  {133, 0, -1, UINT64_MAX},                      /* xor_imm */
  {134, 1, 2, 3},                                /* or_imm */
  {135, 0x10000, 0x10000, 0},                    /* mul_imm_32 */
  {136, 5, -1, 1},                               /* set_lt_u_imm: 5 < 2^64-1 */
  {137, 5, -1, 0},                               /* set_lt_s_imm */
  {138, 1, 35, 8},                               /* shlo_l_imm_32 masks */
  {139, 0xFFFFFFFF80000000ull, 31, 1},           /* shlo_r_imm_32 */
  {140, 0x80000000, 31, UINT64_MAX},             /* shar_r_imm_32 */
  {141, 1, 0, UINT64_MAX},                       /* neg_add_imm_32: X - B */
  {142, 5, 4, 1},                                /* set_gt_u_imm */
  {143, (uint64_t)-5, -4, 0},                    /* set_gt_s_imm */
  {144, 33, 1, 2},                               /* shlo_l_imm_alt_32: X << B */
  {145, 4, -1, 0x0FFFFFFF},                      /* shlo_r_imm_alt_32 */
  {146, 4, INT32_MIN, 0xFFFFFFFFF8000000ull},    /* shar_r_imm_alt_32 */
  {149, UINT64_MAX, 2, 1},                       /* add_imm_64 */
  {150, 3, -2, (uint64_t)-6},                    /* mul_imm_64 */
  {151, 1, 65, 2},                               /* shlo_l_imm_64 masks */
  {152, UINT64_MAX, 60, 15},
  {153, 0x8000000000000000ull, 60, (uint64_t)-8},
  {154, 1, 0, UINT64_MAX},                       /* neg_add_imm_64 */
  {155, 4, 1, 16},                               /* shlo_l_imm_alt_64 */
  {156, 60, -1, 15},                             /* shlo_r_imm_alt_64 */
  {157, 28, INT32_MIN, (uint64_t)-8},            /* shar_r_imm_alt_64 */
  {158, 3, 1, 0x8000000000000001ull},            /* rot_r_64_imm */
  {159, 1, 3, 0x8000000000000001ull},            /* rot_r_64_imm_alt: ror(X, B) */
  {160, 3, 1, 0xFFFFFFFF80000001ull},            /* rot_r_32_imm */
  {161, 1, 3, 0xFFFFFFFF80000001ull},            /* rot_r_32_imm_alt */
};

static void register_immediate_ops(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(alu2i_cases); i++) {
    const alu2i *c = &alu2i_cases[i];
    uint32_t x = (uint32_t)c->x;
    const tinsn prog[] = {I(c->op, 0x13, (uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16),
                            (uint8_t)(x >> 24))};
    tvm t;
    tvm_load(&t, prog);
    t.vm.regs[1] = c->b;
    assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
    if (t.vm.regs[3] != c->a)
      fail_msg("op %u (%s) b=0x%llx x=%d: expected 0x%llx, got 0x%llx", c->op,
               nub_pvm_isa(PVM_PROFILE_GP07)[c->op].name, (unsigned long long)c->b, c->x,
               (unsigned long long)c->a, (unsigned long long)t.vm.regs[3]);
    tvm_free(&t);
  }
}

static void cmov_imm(void **state) {
  (void)state;
  const tinsn prog[] = {I(147, 0x13, 9), I(148, 0x14, 9)};
  tvm t;
  tvm_load(&t, prog);
  t.vm.regs[1] = 0;
  t.vm.regs[3] = t.vm.regs[4] = 1;
  nub_pvm_vm_run(&t.vm);
  assert_int_equal(t.vm.regs[3], 9);
  assert_int_equal(t.vm.regs[4], 1);
  tvm_free(&t);
}

/* ---- two registers: D = f(A) with D=r3, A=r1 ---- */

typedef struct alu2 { uint8_t op; uint64_t a, d; } alu2;

static const alu2 alu2_cases[] = {
  {100, 42, 42},                                      /* move_reg */
  {102, UINT64_MAX, 64}, {103, UINT64_MAX, 32},       /* popcount */
  {104, 0, 64}, {104, 1, 63}, {105, 0, 32}, {105, 0x100000000ull, 32},
  {105, 1, 31},                                       /* clz */
  {106, 0, 64}, {106, 8, 3}, {107, 0x100000000ull, 32}, {107, 8, 3},   /* ctz */
  {108, 0x80, (uint64_t)-128}, {109, 0x8000, (uint64_t)-32768},
  {110, 0xFFFFFFFF, 0xFFFF},
  {111, 0x0102030405060708ull, 0x0807060504030201ull},
};

static void two_register_ops(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(alu2_cases); i++) {
    const alu2 *c = &alu2_cases[i];
    const tinsn prog[] = {I(c->op, 0x13)};
    tvm t;
    tvm_load(&t, prog);
    t.vm.regs[1] = c->a;
    nub_pvm_vm_run(&t.vm);
    if (t.vm.regs[3] != c->d)
      fail_msg("op %u a=0x%llx: expected 0x%llx, got 0x%llx", c->op, (unsigned long long)c->a,
               (unsigned long long)c->d, (unsigned long long)t.vm.regs[3]);
    tvm_free(&t);
  }
}

static void immediates(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(51, 0x01, 0x80),                              /* load_imm r1, -128 */
    I(51, 0x02),                                    /* load_imm r2, 0 (no bytes) */
    I(20, 0x03, 1, 2, 3, 4, 5, 6, 7, 0x88),        /* load_imm_64 r3 */
  };
  tvm t;
  tvm_load(&t, prog);
  t.vm.regs[2] = 9;
  nub_pvm_vm_run(&t.vm);
  assert_true(t.vm.regs[1] == (uint64_t)-128);
  assert_int_equal(t.vm.regs[2], 0);
  assert_true(t.vm.regs[3] == 0x8807060504030201ull);
  assert_int_equal(t.vm.gas, 1000 - 4);
  tvm_free(&t);
}

/* ---- memory ---- */

static void loads_and_stores(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(62, 0x01, 0xFC, 0x0F, 0x02),        /* store_u64 r1 -> 0x20FFC (crosses a page) */
    I(130, 0x24, 0xFC, 0x0F),             /* load_ind_u64 r4 <- [r2 + 0xFFC] */
    I(125, 0x25, 0xFF, 0x0F),             /* load_ind_i8 r5 <- [r2 + 0xFFF] */
    I(57, 0x06, 0xFC, 0x0F, 0x02),        /* load_i32 r6 <- [0x20FFC] */
    I(31, 0x03, 0x00, 0x10, 0x02, 0xAB, 0xCD), /* store_imm_u16 [0x21000] = 0xCDAB */
    I(54, 0x07, 0x00, 0x10, 0x02),        /* load_u16 r7 <- [0x21000] */
  };
  tvm t;
  tvm_load(&t, prog);
  tvm_map(&t, 0x20000, 0x2000, PVM_ACCESS_RW);
  t.vm.regs[1] = 0x8877665544332211ull;
  t.vm.regs[2] = 0x20000;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_true(t.vm.regs[4] == 0x8877665544332211ull);
  assert_true(t.vm.regs[5] == (uint64_t)(int64_t)(int8_t)0x44);
  assert_true(t.vm.regs[6] == 0x44332211);
  assert_true(t.vm.regs[7] == 0xCDAB);
  uint8_t b[8];
  assert_int_equal(nub_pvm_mem_read(t.mem, 0x20FFC, b, 8, NULL), PVM_OK);
  assert_int_equal(b[0], 0x11);
  assert_int_equal(b[7], 0x88);
  tvm_free(&t);
}

/* Every load widens as the ISA table says (width, PVM_OPF_SIGNED): the
** JIT reads both from the table, the interpreter has them in its code. */
static void every_load_widens_as_the_table_says(void **state) {
  (void)state;
  const nub_pvm_opinfo *isa = nub_pvm_isa(tvm_profile);
  unsigned loads = 0, signed_loads = 0;
  for (unsigned code = 0; code < 256; code++) {
    const nub_pvm_opinfo *o = &isa[code];
    if (!o->name || !(o->flags & PVM_OPF_LOAD)) continue;
    /* r1 <- [0x20000] or [r2 + 0], then a trap */
    tinsn prog[2] = {I(0), I(0)};
    if (o->format == PVM_FMT_REG_IMM) prog[0] = I((uint8_t)code, 0x01, 0x00, 0x00, 0x02);
    else if (o->format == PVM_FMT_REG_REG_IMM) prog[0] = I((uint8_t)code, 0x21);
    else fail_msg("%s: a load in format %u", o->name, o->format);
    tvm t;
    tvm_load_jt(&t, prog, 2, NULL, 0, 0);
    tvm_map(&t, 0x20000, 0x1000, PVM_ACCESS_RW);
    uint8_t ones[8] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    assert_int_equal(nub_pvm_mem_write(t.mem, 0x20000, ones, 8, NULL), PVM_OK);
    t.vm.regs[2] = 0x20000;
    assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
    unsigned bits = 8u * o->width;
    uint64_t v = 0x8080808080808080ull;
    if (bits < 64) {
      v &= (1ull << bits) - 1;
      if (o->flags & PVM_OPF_SIGNED) v |= ~0ull << bits;
    }
    if (t.vm.regs[1] != v)
      fail_msg("%s: loaded %016llx, the table says %016llx", o->name,
               (unsigned long long)t.vm.regs[1], (unsigned long long)v);
    loads++;
    signed_loads += (o->flags & PVM_OPF_SIGNED) != 0;
    tvm_free(&t);
  }
  assert_int_equal(loads, 14);
  assert_int_equal(signed_loads, 6);
}

static void page_fault_reports_lowest_inaccessible_page(void **state) {
  (void)state;
  const tinsn prog[] = {I(123, 0x21, 0xFC, 0x0F)};   /* store_ind_u64 r1 -> [r2 + 0xFFC] */
  tvm t;
  tvm_load(&t, prog);
  tvm_map(&t, 0x30000, 0x1000, PVM_ACCESS_RW);
  t.vm.regs[1] = UINT64_MAX;
  t.vm.regs[2] = 0x30000;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_FAULT);
  assert_int_equal(t.vm.exit_arg, 0x31000);
  assert_int_equal(t.vm.pc, 0);
  assert_int_equal(t.vm.gas, 1000 - 2);       /* the whole block was paid */
  /* nothing was written: the access is all or nothing */
  uint8_t b[4];
  assert_int_equal(nub_pvm_mem_read(t.mem, 0x30FFC, b, 4, NULL), PVM_OK);
  assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);

  /* the embedder maps the page and resumes: the store is retried, unpaid */
  tvm_map(&t, 0x31000, 0x1000, PVM_ACCESS_RW);
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 4);
  assert_int_equal(t.vm.gas, 1000 - 2);
  assert_int_equal(nub_pvm_mem_read(t.mem, 0x30FFC, b, 4, NULL), PVM_OK);
  assert_int_equal(b[0] & b[1] & b[2] & b[3], 0xFF);
  tvm_free(&t);
}

static void read_only_and_guard_zone(void **state) {
  (void)state;
  const tinsn store[] = {I(59, 0x01, 0x00, 0x00, 0x01)};   /* store_u8 r1 -> [0x10000] */
  const tinsn low[] = {I(52, 0x01, 0xFF, 0xFF, 0x00)};     /* load_u8 r1 <- [0xFFFF] */
  const tinsn wrap[] = {I(128, 0x21, 0xFE, 0xFF, 0xFF, 0xFF)}; /* load_ind_u32 r1 <- [r2 - 2] */
  tvm t;

  tvm_load(&t, store);
  tvm_map(&t, 0x10000, 0x1000, PVM_ACCESS_RO);
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);          /* write to read-only */
  assert_int_equal(t.vm.pc, 0);
  tvm_free(&t);

  tvm_load(&t, low);
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);          /* below 2^16 */
  tvm_free(&t);

  tvm_load(&t, wrap);                                       /* 0xFFFFFFFE.. wraps to 0 */
  tvm_map(&t, 0xFFFFF000u, 0x1000, PVM_ACCESS_RO);
  t.vm.regs[2] = 0;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  tvm_free(&t);

  tvm_load(&t, wrap);                                       /* top page missing: fault */
  t.vm.regs[2] = 0;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_FAULT);
  assert_int_equal(t.vm.exit_arg, 0xFFFFF000u);
  tvm_free(&t);
}

/* A store to a read-only page: a panic under gp07 and the 0.8 draft (its
** vectors expect one), a page fault under jamv1 (GP 0.8.0 A.7) with the
** exit state of any other fault: pc of the store, the page, nothing
** written, resumable once the embedder makes the page writable. */
typedef struct ro_store_case {
  const char *what;
  tinsn insn;
  uint64_t r2;                 /* base register of the indirect stores */
  nub_pvm_access page0, page1;     /* pages 0x20000 and 0x21000 */
  uint32_t fault_page;         /* the lowest page the store may not write */
  uint32_t at, width;          /* the bytes the store writes */
} ro_store_case;

static const ro_store_case ro_store_cases[] = {
  {"store_u8 to a read-only page", I(59, 0x01, 0x10, 0x00, 0x02), 0,
   PVM_ACCESS_RO, PVM_ACCESS_NONE, 0x20000, 0x20010, 1},
  {"store_imm_u32 to a read-only page", I(32, 0x03, 0x04, 0x00, 0x02, 0x55), 0,
   PVM_ACCESS_RO, PVM_ACCESS_NONE, 0x20000, 0x20004, 4},
  {"store_ind_u64 from a writable into a read-only page", I(123, 0x21, 0xFC, 0x0F), 0x20000,
   PVM_ACCESS_RW, PVM_ACCESS_RO, 0x21000, 0x20FFC, 8},
  {"store_ind_u64 from a read-only into an unmapped page", I(123, 0x21, 0xFC, 0x0F), 0x21000,
   PVM_ACCESS_NONE, PVM_ACCESS_RO, 0x21000, 0x21FFC, 8},
};

/* The mapped bytes of [at, at + n) are all zero. */
static void assert_unwritten(const nub_pvm_mem *mem, uint32_t at, uint32_t n) {
  for (uint32_t a = at; a < at + n; a++) {
    uint8_t b;
    if (nub_pvm_mem_access(mem, a) == PVM_ACCESS_NONE) continue;
    assert_int_equal(nub_pvm_mem_read(mem, a, &b, 1, NULL), PVM_OK);
    assert_int_equal(b, 0);
  }
}

/* Every page of [at, at + n) writable, keeping the bytes of mapped ones. */
static void make_writable(nub_pvm_mem *mem, uint32_t at, uint32_t n) {
  for (uint32_t pg = at & ~0xFFFu; pg < at + n; pg += 0x1000) {
    nub_pvm_error err;
    int rc = nub_pvm_mem_access(mem, pg) == PVM_ACCESS_NONE
               ? nub_pvm_mem_map(mem, pg, 0x1000, PVM_ACCESS_RW, &err)
               : nub_pvm_mem_protect(mem, pg, 0x1000, PVM_ACCESS_RW, &err);
    assert_int_equal(rc, PVM_OK);
  }
}

static void read_only_store_follows_the_profile(void **state) {
  (void)state;
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    bool faults = nub_pvm_profile_semantics((nub_pvm_profile)p)->ro_store_faults;
    tvm_profile = (nub_pvm_profile)p;
    for (size_t i = 0; i < ARRAY_LEN(ro_store_cases); i++) {
      const ro_store_case *c = &ro_store_cases[i];
      const tinsn prog[] = {c->insn};
      tvm t;
      tvm_load(&t, prog);
      if (c->page0) tvm_map(&t, 0x20000, 0x1000, c->page0);
      if (c->page1) tvm_map(&t, 0x21000, 0x1000, c->page1);
      t.vm.regs[1] = 0x0102030405060708ull;
      t.vm.regs[2] = c->r2;
      int64_t paid = 1000 - nub_pvm_program_entry_cost(t.prog, 0);
      nub_pvm_status st = nub_pvm_vm_run(&t.vm);
      if (st != (faults ? PVM_FAULT : PVM_PANIC))
        fail_msg("%s, %s: %s", nub_pvm_profile_name(tvm_profile), c->what, nub_pvm_status_name(st));
      assert_int_equal(t.vm.pc, 0);
      assert_int_equal(t.vm.gas, paid);
      assert_int_equal(t.vm.regs[1], 0x0102030405060708ull);
      assert_unwritten(t.mem, c->at, c->width);
      if (faults) {
        uint8_t got;
        assert_int_equal(t.vm.exit_arg, c->fault_page);
        /* the embedder makes the bytes writable: the store is retried, unpaid */
        make_writable(t.mem, c->at, c->width);
        assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);   /* the implicit trap after it */
        assert_int_equal(t.vm.pc, c->insn.n);
        assert_int_equal(t.vm.gas, paid);
        assert_int_equal(nub_pvm_mem_read(t.mem, c->at, &got, 1, NULL), PVM_OK);
        assert_int_equal(got, c->width == 4 ? 0x55 : 0x08);
      } else {
        assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);   /* finished stays finished */
        assert_int_equal(t.vm.pc, 0);
      }
      tvm_free(&t);
    }
  }
  tvm_profile = PVM_PROFILE_GP07;
  /* the rule is profile data: only the GP 0.8.0 profile faults */
  assert_false(nub_pvm_profile_semantics(PVM_PROFILE_GP07)->ro_store_faults);
  assert_false(nub_pvm_profile_semantics(PVM_PROFILE_GP08_DRAFT)->ro_store_faults);
  assert_true(nub_pvm_profile_semantics(PVM_PROFILE_JAMV1)->ro_store_faults);
  assert_null(nub_pvm_profile_semantics(PVM_PROFILE_COUNT));
}

static void sbrk_grows_the_heap(void **state) {
  (void)state;
  const tinsn prog[] = {I(101, 0x12), I(101, 0x13), I(101, 0x45)};  /* sbrk r2<-r1 ... */
  tvm t;
  tvm_load(&t, prog);
  nub_pvm_mem_set_heap(t.mem, 0x40000, 0x50000);
  t.vm.regs[1] = 0x1800;
  t.vm.regs[4] = 0x100000;
  nub_pvm_vm_run(&t.vm);
  assert_int_equal(t.vm.regs[2], 0x40000);              /* old top */
  assert_int_equal(t.vm.regs[3], 0x41800);              /* second call: next top */
  assert_int_equal(t.vm.regs[5], 0);                    /* past the limit */
  assert_int_equal(nub_pvm_mem_access(t.mem, 0x42000), PVM_ACCESS_RW);
  assert_int_equal(nub_pvm_mem_access(t.mem, 0x43000), PVM_ACCESS_NONE);
  assert_int_equal(nub_pvm_mem_heap_top(t.mem), 0x43000);
  tvm_free(&t);
}

/* ---- control flow ---- */

static void branches(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(170, 0x21, 6),            /* 0: branch_eq r1, r2, +6 -> 6 */
    I(0),                       /* 3: trap */
    I(0), I(0),                 /* 4, 5 */
    I(51, 0x07, 7),             /* 6: load_imm r7, 7 (a block start: follows a trap) */
    I(0),                       /* 9 */
  };
  tvm t;
  tvm_load(&t, prog);
  t.vm.regs[1] = t.vm.regs[2] = 3;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.regs[7], 7);
  assert_int_equal(t.vm.pc, 9);
  assert_int_equal(t.vm.gas, 1000 - 1 - 2);
  tvm_free(&t);

  tvm_load(&t, prog);                   /* not taken: the trap at 3 */
  t.vm.regs[1] = 1;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 3);
  tvm_free(&t);
}

static void branch_to_non_block_start_panics_only_when_taken(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(81, 0x01, 6),             /* 0: branch_eq_imm r1, 0, +6 -> 6 (mid-block) */
    I(51, 0x02, 1),             /* 3: load_imm r2, 1 */
    I(51, 0x03, 1),             /* 6 */
  };
  tvm t;
  tvm_load(&t, prog);
  t.vm.regs[1] = 0;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 0);
  assert_int_equal(t.vm.regs[3], 0);
  tvm_free(&t);

  tvm_load(&t, prog);
  t.vm.regs[1] = 1;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 9);
  assert_int_equal(t.vm.regs[2], 1);
  assert_int_equal(t.vm.regs[3], 1);
  tvm_free(&t);
}

static void dynamic_jumps(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(50, 0x01),                /* 0: jump_ind r1 */
    I(51, 0x07, 1),             /* 2: load_imm r7, 1 */
    I(0),                       /* 5 */
    I(51, 0x07, 2),             /* 6 */
    I(0),                       /* 9 */
  };
  const uint32_t jt[] = {6, 3, 2};    /* entry 2 (addr 4) = 3 is mid-instruction */
  const struct { uint64_t addr; int status; uint32_t pc; uint64_t r7; } cases[] = {
    {2, PVM_PANIC, 9, 2},              /* jt[0] = 6 */
    {6, PVM_PANIC, 5, 1},              /* jt[2] = 2: follows jump_ind, a block start */
    {PVM_HALT_ADDRESS, PVM_HALT, 0, 0},
    {0, PVM_PANIC, 0, 0},
    {1, PVM_PANIC, 0, 0},              /* odd */
    {8, PVM_PANIC, 0, 0},              /* past the table */
    {4, PVM_PANIC, 0, 0},              /* jt[1] = 3: not an instruction start */
    {0x100000002ull, PVM_PANIC, 9, 2}, /* the address is taken mod 2^32 */
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    tvm t;
    tvm_load_jt(&t, prog, ARRAY_LEN(prog), jt, ARRAY_LEN(jt), 1);
    t.vm.regs[1] = cases[i].addr;
    int st = nub_pvm_vm_run(&t.vm);
    if (st != cases[i].status || t.vm.pc != cases[i].pc || t.vm.regs[7] != cases[i].r7)
      fail_msg("djump to 0x%llx: got %s pc %u r7 %llu", (unsigned long long)cases[i].addr,
               nub_pvm_status_name(st), t.vm.pc, (unsigned long long)t.vm.regs[7]);
    tvm_free(&t);
  }
}

static void load_imm_jump_ind_reads_old_register(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(180, 0x11, 0x01, 9, 0),   /* 0: load_imm_jump_ind r1 r1, x=9, y=0 */
    I(0),                       /* 5 */
    I(0),                       /* 6 */
  };
  const uint32_t jt[] = {6};
  tvm t;
  tvm_load_jt(&t, prog, ARRAY_LEN(prog), jt, 1, 1);
  t.vm.regs[1] = 2;               /* jump through the old value 2 -> jt[0] = 6 */
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 6);
  assert_int_equal(t.vm.regs[1], 9);
  tvm_free(&t);
}

/* ---- gas ---- */

static void out_of_gas_keeps_the_balance_and_resumes(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(51, 0x07, 1),             /* 0: block 1 (3 insns) */
    I(51, 0x08, 2),
    I(1),                       /* 6: fallthrough */
    I(51, 0x09, 3),             /* 7: block 2 (2 insns) */
    I(0),
  };
  tvm t;
  tvm_load(&t, prog);
  t.vm.gas = 4;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_OOG);
  assert_int_equal(t.vm.pc, 7);                 /* the block that could not be paid */
  assert_int_equal(t.vm.gas, 1);                /* unpaid balance left as it was */
  assert_int_equal(t.vm.regs[8], 2);
  assert_int_equal(t.vm.regs[9], 0);
  t.vm.gas += 10;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.regs[9], 3);
  assert_int_equal(t.vm.gas, 11 - 2);
  tvm_free(&t);

  tvm_load(&t, prog);                           /* not even the first block */
  t.vm.gas = 2;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_OOG);
  assert_int_equal(t.vm.pc, 0);
  assert_int_equal(t.vm.gas, 2);
  assert_int_equal(t.vm.regs[7], 0);
  tvm_free(&t);
}

static void host_call_exits_and_resumes(void **state) {
  (void)state;
  const tinsn prog[] = {
    I(51, 0x07, 5),             /* 0 */
    I(10, 0x2A),                /* 3: ecalli 42 */
    I(149, 0x77, 1),            /* 5: add_imm_64 r7, r7, 1 */
    I(10, 0xFF),                /* 8: ecalli -1 -> 0xFFFFFFFF */
  };
  tvm t;
  tvm_load(&t, prog);
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_HOST);
  assert_int_equal(t.vm.exit_arg, 42);
  assert_int_equal(t.vm.pc, 3);                  /* the ecalli itself */
  assert_int_equal(t.vm.next_pc, 5);
  assert_int_equal(t.vm.gas, 1000 - 5);          /* one block: 4 insns + implicit trap */
  t.vm.regs[7] = 100;                            /* host result */
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_HOST);
  assert_int_equal(t.vm.exit_arg, 0xFFFFFFFFu);
  assert_int_equal(t.vm.pc, 8);
  assert_int_equal(t.vm.regs[7], 101);
  assert_int_equal(t.vm.gas, 1000 - 5);          /* resuming is not charged again */
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 10);
  tvm_free(&t);
}

static void entry_points(void **state) {
  (void)state;
  const tinsn prog[] = {I(51, 0x07, 1), I(51, 0x08, 2), I(0)};
  tvm t;
  tvm_load(&t, prog);
  nub_pvm_vm_set_pc(&t.vm, 3);                       /* mid-block: pays the rest */
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.regs[7], 0);
  assert_int_equal(t.vm.regs[8], 2);
  assert_int_equal(t.vm.gas, 1000 - 2);
  nub_pvm_vm_set_pc(&t.vm, 4);                       /* not an instruction: runs as a trap */
  t.vm.gas = 1000;
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);
  assert_int_equal(t.vm.pc, 4);
  assert_int_equal(t.vm.gas, 999);
  assert_int_equal(nub_pvm_vm_run(&t.vm), PVM_PANIC);   /* finished stays finished */
  assert_int_equal(t.vm.gas, 999);
  tvm_free(&t);
}

int main(void) {
  const char *engine = getenv("NUB_TEST_ENGINE");
  if (engine && !(tvm_engine = cli_engine(engine))) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(three_register_ops),
    cmocka_unit_test(cmov),
    cmocka_unit_test(register_immediate_ops),
    cmocka_unit_test(cmov_imm),
    cmocka_unit_test(two_register_ops),
    cmocka_unit_test(immediates),
    cmocka_unit_test(loads_and_stores),
    cmocka_unit_test(every_load_widens_as_the_table_says),
    cmocka_unit_test(page_fault_reports_lowest_inaccessible_page),
    cmocka_unit_test(read_only_and_guard_zone),
    cmocka_unit_test(read_only_store_follows_the_profile),
    cmocka_unit_test(sbrk_grows_the_heap),
    cmocka_unit_test(branches),
    cmocka_unit_test(branch_to_non_block_start_panics_only_when_taken),
    cmocka_unit_test(dynamic_jumps),
    cmocka_unit_test(load_imm_jump_ind_reads_old_register),
    cmocka_unit_test(out_of_gas_keeps_the_balance_and_resumes),
    cmocka_unit_test(host_call_exits_and_resumes),
    cmocka_unit_test(entry_points),
  };
  printf("engine: %s\n", tvm_engine->name);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
