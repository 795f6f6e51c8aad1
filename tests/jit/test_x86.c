/*
** The x86-64 encoder, checked by decoding what it emits with zydis: each
** instruction must decode to exactly the bytes emitted, with the expected
** mnemonic and operands (registers, memory base/index/scale/disp,
** immediates, branch targets), over every register and every addressing
** special case (rsp/r12 need a SIB, rbp/r13 a displacement, spl..dil a
** REX prefix, r8..r15 REX bits, imm8 vs imm32, rel8 vs rel32).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <Zydis/Zydis.h>

#include "jit/x86.h"

static ZydisDecoder decoder;
static ZydisFormatter formatter;
static unsigned long checks;

typedef enum { OP_REG, OP_MEM, OP_IMM, OP_ADDR } op_kind;

typedef struct want {
  op_kind kind;
  unsigned bits;           /* register/memory size; 0 = do not check */
  int reg;
  jit_mem m;
  int64_t value;           /* immediate, or branch/rip target offset */
} want;

static want R(unsigned bits, int r) { return (want){OP_REG, bits, r, {0}, 0}; }
static want M(unsigned bits, jit_mem m) { return (want){OP_MEM, bits, 0, m, 0}; }
static want I(unsigned bits, int64_t v) { return (want){OP_IMM, bits, 0, {0}, v}; }
static want T(int64_t target) { return (want){OP_ADDR, 0, 0, {0}, target}; }

static ZydisRegister zreg(int r, unsigned bits) {
  switch (bits) {
  case 64: return (ZydisRegister)(ZYDIS_REGISTER_RAX + r);
  case 32: return (ZydisRegister)(ZYDIS_REGISTER_EAX + r);
  case 16: return (ZydisRegister)(ZYDIS_REGISTER_AX + r);
  default:
    return (ZydisRegister)(r < 4 ? ZYDIS_REGISTER_AL + r
                           : r < 8 ? ZYDIS_REGISTER_SPL + (r - 4)
                                   : ZYDIS_REGISTER_R8B + (r - 8));
  }
}

static void dump(const jit_asm *a, size_t at, char *out, size_t n) {
  size_t k = 0, end = jit_asm_pos(a);
  for (size_t i = at; i < end && k + 4 < n; i++)
    k += (size_t)snprintf(out + k, n - k, "%02x ", a->code[i]);
  out[k] = 0;
}

#define CHECK(cond, ...) do { if (!(cond)) { char hex_[96]; dump(a, at, hex_, sizeof hex_); \
    fail_msg("bytes [%s] decode as '%s': " __VA_ARGS__); } } while (0)

/* Decode the single instruction at a->code[at..jit_asm_pos(a)) and compare. */
static void expect(const jit_asm *a, size_t at, ZydisMnemonic mn, unsigned n, const want *w) {
  size_t len = jit_asm_pos(a) - at;
  ZydisDecodedInstruction ins;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  char text[128] = "(undecodable)";
  assert_false(a->oom);
  ZyanStatus st = ZydisDecoderDecodeFull(&decoder, a->code + at, len, &ins, ops);
  if (ZYAN_SUCCESS(st))
    ZydisFormatterFormatInstruction(&formatter, &ins, ops, ins.operand_count_visible, text,
                                    sizeof text, at, NULL);
  CHECK(ZYAN_SUCCESS(st), "no instruction", hex_, text);
  CHECK(ins.length == len, "length %u, emitted %zu", hex_, text, ins.length, len);
  CHECK(ins.mnemonic == mn, "wrong mnemonic", hex_, text);
  CHECK(ins.operand_count_visible == n, "%u operands, want %u", hex_, text,
        ins.operand_count_visible, n);
  for (unsigned i = 0; i < n; i++) {
    const ZydisDecodedOperand *o = &ops[i];
    switch (w[i].kind) {
    case OP_REG:
      CHECK(o->type == ZYDIS_OPERAND_TYPE_REGISTER && o->reg.value == zreg(w[i].reg, w[i].bits),
            "operand %u: want register %d/%u", hex_, text, i, w[i].reg, w[i].bits);
      break;
    case OP_MEM: {
      const jit_mem *m = &w[i].m;
      ZydisRegister base = m->base == JIT_NOREG ? ZYDIS_REGISTER_NONE : zreg(m->base, 64);
      ZydisRegister index = m->index == JIT_NOREG ? ZYDIS_REGISTER_NONE : zreg(m->index, 64);
      CHECK(o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.base == base && o->mem.index == index &&
            (index == ZYDIS_REGISTER_NONE || o->mem.scale == 1u << m->scale) &&
            o->mem.disp.value == m->disp && (!w[i].bits || o->size == w[i].bits),
            "operand %u: want memory base %d index %d scale %u disp %d size %u", hex_, text, i,
            m->base, m->index, 1u << m->scale, m->disp, w[i].bits);
      break;
    }
    case OP_IMM: {
      uint64_t mask = w[i].bits >= 64 ? ~0ull : (1ull << w[i].bits) - 1;
      CHECK(o->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && !o->imm.is_relative &&
            ((o->imm.value.u ^ (uint64_t)w[i].value) & mask) == 0,
            "operand %u: want immediate %lld", hex_, text, i, (long long)w[i].value);
      break;
    }
    case OP_ADDR: {
      ZyanU64 abs = 0;
      CHECK(ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&ins, o, at, &abs)) &&
            abs == (ZyanU64)w[i].value, "operand %u: want target %lld", hex_, text, i,
            (long long)w[i].value);
      break;
    }
    }
  }
  checks++;
}

static void setup_decoder(void) {
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_INTEL);
}

/* ---- operand sets ---- */

static const int32_t disps[] = {0, 1, -1, 127, 128, -128, -129, INT32_MAX, INT32_MIN};
#define NDISPS (sizeof disps / sizeof disps[0])
/* One register of each encoding class: plain, rsp/r12 (SIB), rbp/r13
** (no disp-less form), the byte registers that need REX, extended. */
static const int classes[] = {JIT_RAX, JIT_RSP, JIT_RBP, JIT_RSI, JIT_R8, JIT_R12, JIT_R13, JIT_R15};
#define NCLASSES (sizeof classes / sizeof classes[0])

/* Every base (or none) x every index (or none) x every scale x disps. */
typedef void (*mem_fn)(jit_mem m, void *ud);
static void each_mem(mem_fn fn, void *ud) {
  for (int b = 0; b <= JIT_NOREG; b++)
    for (int x = 0; x <= JIT_NOREG; x++) {
      if (x == JIT_RSP) continue;
      for (unsigned s = 0; s < (x == JIT_NOREG ? 1u : 4u); s++)
        for (unsigned d = 0; d < NDISPS; d++) fn(jit_mem_bi((jit_reg)b, (jit_reg)x, s, disps[d]), ud);
    }
}

/* One buffer for the millions of encodings checked here: fresh() hands
** it out empty and done() takes it back (it may have grown and moved). */
static jit_asm shared;

/* n bytes of filler (ret) between jumps and their targets */
static void pad(jit_asm *a, unsigned n) {
  for (unsigned i = 0; i < n; i++) jit_x86_ret(a);
}

static jit_asm fresh(void) {
  jit_asm_reset(&shared);
  return shared;
}

static void done(jit_asm *a) { shared = *a; }

/* ---- data movement ---- */

static void test_mov_rr(void **state) {
  (void)state;
  for (int w = 0; w < 2; w++)
    for (int d = 0; d < 16; d++)
      for (int s = 0; s < 16; s++) {
        jit_asm a = fresh();
        unsigned bits = w ? 64 : 32;
        jit_x86_mov_rr(&a, w, (jit_reg)d, (jit_reg)s);
        expect(&a, 0, ZYDIS_MNEMONIC_MOV, 2, (want[]){R(bits, d), R(bits, s)});
        done(&a);
      }
}

static void test_mov_ri(void **state) {
  static const struct { uint64_t v; unsigned len_lo, bits; } cases[] = {
    {0, 5, 32}, {1, 5, 32}, {0x7FFFFFFF, 5, 32}, {0x80000000, 5, 32}, {0xFFFFFFFF, 5, 32},
    {0xFFFFFFFFFFFFFFFFull, 7, 64}, {0xFFFFFFFF80000000ull, 7, 64}, {0xFFFFFFFF7FFFFFFFull, 10, 64},
    {0x100000000ull, 10, 64}, {0x8000000000000000ull, 10, 64}, {0x123456789ABCDEF0ull, 10, 64},
  };
  (void)state;
  for (int r = 0; r < 16; r++)
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      jit_asm a = fresh();
      jit_x86_mov_ri(&a, (jit_reg)r, cases[i].v);
      /* shortest form: + 1 for REX.B on the 32-bit form */
      assert_int_equal(jit_asm_pos(&a), cases[i].len_lo + (cases[i].len_lo == 5 && r >= 8));
      expect(&a, 0, ZYDIS_MNEMONIC_MOV, 2, (want[]){R(cases[i].bits, r), I(cases[i].bits, (int64_t)cases[i].v)});
      done(&a);
    }
}

typedef struct mem_case { int kind; int reg; } mem_case;

static const struct { ZydisMnemonic mn; unsigned dst_bits, mem_bits; } load_forms[] = {
  [JIT_U8] = {ZYDIS_MNEMONIC_MOVZX, 32, 8}, [JIT_I8] = {ZYDIS_MNEMONIC_MOVSX, 64, 8},
  [JIT_U16] = {ZYDIS_MNEMONIC_MOVZX, 32, 16}, [JIT_I16] = {ZYDIS_MNEMONIC_MOVSX, 64, 16},
  [JIT_U32] = {ZYDIS_MNEMONIC_MOV, 32, 32}, [JIT_I32] = {ZYDIS_MNEMONIC_MOVSXD, 64, 32},
  [JIT_U64] = {ZYDIS_MNEMONIC_MOV, 64, 64},
};

static void load_at(jit_mem m, void *ud) {
  const mem_case *c = ud;
  jit_asm a = fresh();
  jit_x86_load(&a, (jit_ext)c->kind, (jit_reg)c->reg, m);
  expect(&a, 0, load_forms[c->kind].mn, 2,
         (want[]){R(load_forms[c->kind].dst_bits, c->reg), M(load_forms[c->kind].mem_bits, m)});
  done(&a);
}

static void test_load(void **state) {
  (void)state;
  for (int k = JIT_U8; k <= JIT_U64; k++) {
    for (int r = 0; r < 16; r++) {          /* every destination */
      mem_case c = {k, r};
      load_at(jit_mem_bi(JIT_R15, JIT_RCX, 0, 0), &c);
    }
    for (unsigned r = 0; r < NCLASSES; r++) {   /* every address form */
      mem_case c = {k, classes[r]};
      each_mem(load_at, &c);
    }
  }
}

static void store_at(jit_mem m, void *ud) {
  const mem_case *c = ud;
  unsigned size = (unsigned)c->kind, bits = size * 8;
  jit_asm a = fresh();
  jit_x86_store(&a, size, m, (jit_reg)c->reg);
  expect(&a, 0, ZYDIS_MNEMONIC_MOV, 2, (want[]){M(bits, m), R(bits, c->reg)});
  done(&a);
}

static void store_imm_at(jit_mem m, void *ud) {
  const mem_case *c = ud;
  unsigned size = (unsigned)c->kind, bits = size * 8;
  jit_asm a = fresh();
  jit_x86_store_imm(&a, size, m, c->reg);
  expect(&a, 0, ZYDIS_MNEMONIC_MOV, 2, (want[]){M(bits, m), I(bits, c->reg)});
  done(&a);
}

static void test_store(void **state) {
  static const int32_t imms[] = {0, 0x7F, -1, 0x1234, INT32_MIN, 0x7FFFFFFF};
  (void)state;
  for (unsigned size = 1; size <= 8; size *= 2) {
    for (int r = 0; r < 16; r++) {
      mem_case c = {(int)size, r};
      store_at(jit_mem_bi(JIT_R15, JIT_RCX, 0, 0), &c);
    }
    for (unsigned r = 0; r < NCLASSES; r++) {
      mem_case c = {(int)size, classes[r]};
      each_mem(store_at, &c);
    }
    for (unsigned i = 0; i < sizeof imms / sizeof imms[0]; i++) {
      mem_case c = {(int)size, imms[i]};
      each_mem(store_imm_at, &c);
    }
  }
}

static void lea_at(jit_mem m, void *ud) {
  const mem_case *c = ud;
  unsigned bits = c->kind ? 64 : 32;
  jit_asm a = fresh();
  jit_x86_lea(&a, c->kind, (jit_reg)c->reg, m);
  expect(&a, 0, ZYDIS_MNEMONIC_LEA, 2, (want[]){R(bits, c->reg), M(0, m)});
  done(&a);
}

static void test_lea(void **state) {
  (void)state;
  for (int w = 0; w < 2; w++) {
    for (int r = 0; r < 16; r++) {
      mem_case c = {w, r};
      lea_at(jit_mem_bd(JIT_RBX, 5), &c);
    }
    for (unsigned r = 0; r < NCLASSES; r++) {
      mem_case c = {w, classes[r]};
      each_mem(lea_at, &c);
    }
  }
  /* RIP-relative, backward and forward */
  for (int r = 0; r < 16; r++) {
    jit_asm a = fresh();
    jit_label back = jit_label_new(&a), fwd = jit_label_new(&a);
    jit_label_bind(&a, back);
    jit_x86_ret(&a);
    size_t at = jit_asm_pos(&a);
    jit_x86_lea_label(&a, (jit_reg)r, back);
    size_t at2 = jit_asm_pos(&a);
    jit_x86_lea_label(&a, (jit_reg)r, fwd);
    pad(&a, 2);
    jit_label_bind(&a, fwd);
    const char *why = NULL;
    assert_int_equal(jit_asm_finish(&a, &why), 0);
    size_t end = jit_asm_pos(&a);
    a.at = a.code + at2;
    expect(&a, at, ZYDIS_MNEMONIC_LEA, 2, (want[]){R(64, r), T(0)});
    a.at = a.code + at2 + 7;
    expect(&a, at2, ZYDIS_MNEMONIC_LEA, 2, (want[]){R(64, r), T((int64_t)end)});
    done(&a);
  }
}

static void test_ext_rr(void **state) {
  static const struct { ZydisMnemonic mn; unsigned dbits, sbits; } forms[] = {
    [JIT_U8] = {ZYDIS_MNEMONIC_MOVZX, 32, 8}, [JIT_I8] = {ZYDIS_MNEMONIC_MOVSX, 64, 8},
    [JIT_U16] = {ZYDIS_MNEMONIC_MOVZX, 32, 16}, [JIT_I16] = {ZYDIS_MNEMONIC_MOVSX, 64, 16},
    [JIT_U32] = {ZYDIS_MNEMONIC_MOV, 32, 32}, [JIT_I32] = {ZYDIS_MNEMONIC_MOVSXD, 64, 32},
  };
  (void)state;
  for (int k = JIT_U8; k <= JIT_I32; k++)
    for (int d = 0; d < 16; d++)
      for (int s = 0; s < 16; s++) {
        jit_asm a = fresh();
        jit_x86_ext_rr(&a, (jit_ext)k, (jit_reg)d, (jit_reg)s);
        expect(&a, 0, forms[k].mn, 2, (want[]){R(forms[k].dbits, d), R(forms[k].sbits, s)});
        done(&a);
      }
}

static void test_push_pop(void **state) {
  (void)state;
  for (int r = 0; r < 16; r++) {
    jit_asm a = fresh();
    jit_x86_push(&a, (jit_reg)r);
    expect(&a, 0, ZYDIS_MNEMONIC_PUSH, 1, (want[]){R(64, r)});
    size_t at = jit_asm_pos(&a);
    jit_x86_pop(&a, (jit_reg)r);
    expect(&a, at, ZYDIS_MNEMONIC_POP, 1, (want[]){R(64, r)});
    done(&a);
  }
}

/* ---- arithmetic ---- */

static const ZydisMnemonic alu_mn[] = {
  ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR, ZYDIS_MNEMONIC_ADC, ZYDIS_MNEMONIC_SBB,
  ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP,
};

static const int32_t imm_set[] = {0, 1, -1, 127, -128, 128, -129, 0x12345678, INT32_MIN, INT32_MAX};
#define NIMMS (sizeof imm_set / sizeof imm_set[0])

static void test_alu(void **state) {
  (void)state;
  for (int op = JIT_ADD; op <= JIT_CMP; op++)
    for (int w = 0; w < 2; w++) {
      unsigned bits = w ? 64 : 32;
      for (int d = 0; d < 16; d++) {
        for (int s = 0; s < 16; s++) {
          jit_asm a = fresh();
          jit_x86_alu_rr(&a, (jit_alu)op, w, (jit_reg)d, (jit_reg)s);
          expect(&a, 0, alu_mn[op], 2, (want[]){R(bits, d), R(bits, s)});
          done(&a);
        }
        for (unsigned i = 0; i < NIMMS; i++) {
          jit_asm a = fresh();
          int32_t v = imm_set[i];
          bool small = v >= -128 && v <= 127;
          jit_x86_alu_ri(&a, (jit_alu)op, w, (jit_reg)d, v);
          /* imm8 when it fits; the short rax form otherwise */
          size_t want_len = (size_t)(small ? 3 : d == JIT_RAX ? 5 : 6) + (w || d >= 8);
          assert_int_equal(jit_asm_pos(&a), want_len);
          expect(&a, 0, alu_mn[op], 2, (want[]){R(bits, d), I(bits, v)});
          done(&a);
        }
      }
    }
}

typedef struct alu_mem_case { int op, w; int32_t imm; int reg; } alu_mem_case;

static void alu_mem_at(jit_mem m, void *ud) {
  const alu_mem_case *c = ud;
  unsigned bits = c->w ? 64 : 32;
  jit_asm a = fresh();
  jit_x86_alu_mi(&a, (jit_alu)c->op, c->w, m, c->imm);
  expect(&a, 0, alu_mn[c->op], 2, (want[]){M(bits, m), I(bits, c->imm)});
  size_t at = jit_asm_pos(&a);
  jit_x86_alu_mr(&a, (jit_alu)c->op, c->w, m, (jit_reg)c->reg);
  expect(&a, at, alu_mn[c->op], 2, (want[]){M(bits, m), R(bits, c->reg)});
  done(&a);
}

static void test_alu_mem(void **state) {
  static const int32_t imms[] = {5, -128, 1000, INT32_MIN};
  (void)state;
  for (int op = JIT_ADD; op <= JIT_CMP; op++)
    for (int w = 0; w < 2; w++)
      for (unsigned i = 0; i < sizeof imms / sizeof imms[0]; i++) {
        alu_mem_case c = {op, w, imms[i], classes[(unsigned)op % NCLASSES]};
        each_mem(alu_mem_at, &c);
      }
  for (int r = 0; r < 16; r++) {
    alu_mem_case c = {JIT_SUB, 1, 7, r};
    alu_mem_at(jit_mem_bd(JIT_RSP, 0), &c);
  }
}

static void test_test_imul(void **state) {
  (void)state;
  for (int w = 0; w < 2; w++) {
    unsigned bits = w ? 64 : 32;
    for (int d = 0; d < 16; d++)
      for (int s = 0; s < 16; s++) {
        jit_asm a = fresh();
        jit_x86_test_rr(&a, w, (jit_reg)d, (jit_reg)s);
        expect(&a, 0, ZYDIS_MNEMONIC_TEST, 2, (want[]){R(bits, d), R(bits, s)});
        size_t at = jit_asm_pos(&a);
        jit_x86_imul_rr(&a, w, (jit_reg)d, (jit_reg)s);
        expect(&a, at, ZYDIS_MNEMONIC_IMUL, 2, (want[]){R(bits, d), R(bits, s)});
        for (unsigned i = 0; i < NIMMS; i++) {
          at = jit_asm_pos(&a);
          jit_x86_imul_rri(&a, w, (jit_reg)d, (jit_reg)s, imm_set[i]);
          expect(&a, at, ZYDIS_MNEMONIC_IMUL, 3, (want[]){R(bits, d), R(bits, s), I(bits, imm_set[i])});
        }
        done(&a);
      }
  }
}

static void test_unary_shift(void **state) {
  static const struct { jit_unary op; ZydisMnemonic mn; } un[] = {
    {JIT_NOT, ZYDIS_MNEMONIC_NOT}, {JIT_NEG, ZYDIS_MNEMONIC_NEG}, {JIT_MUL, ZYDIS_MNEMONIC_MUL},
    {JIT_IMUL1, ZYDIS_MNEMONIC_IMUL}, {JIT_DIV, ZYDIS_MNEMONIC_DIV}, {JIT_IDIV, ZYDIS_MNEMONIC_IDIV},
  };
  static const struct { jit_shift op; ZydisMnemonic mn; } sh[] = {
    {JIT_ROL, ZYDIS_MNEMONIC_ROL}, {JIT_ROR, ZYDIS_MNEMONIC_ROR}, {JIT_SHL, ZYDIS_MNEMONIC_SHL},
    {JIT_SHR, ZYDIS_MNEMONIC_SHR}, {JIT_SAR, ZYDIS_MNEMONIC_SAR},
  };
  (void)state;
  for (int w = 0; w < 2; w++) {
    unsigned bits = w ? 64 : 32;
    for (int r = 0; r < 16; r++) {
      for (unsigned i = 0; i < sizeof un / sizeof un[0]; i++) {
        jit_asm a = fresh();
        jit_x86_unary(&a, un[i].op, w, (jit_reg)r);
        expect(&a, 0, un[i].mn, 1, (want[]){R(bits, r)});
        done(&a);
      }
      for (unsigned i = 0; i < sizeof sh / sizeof sh[0]; i++)
        for (unsigned n = 1; n < bits; n += 13) {
          jit_asm a = fresh();
          jit_x86_shift_ri(&a, sh[i].op, w, (jit_reg)r, (uint8_t)n);
          expect(&a, 0, sh[i].mn, 2, (want[]){R(bits, r), I(8, n)});
          size_t at = jit_asm_pos(&a);
          jit_x86_shift_cl(&a, sh[i].op, w, (jit_reg)r);
          expect(&a, at, sh[i].mn, 2, (want[]){R(bits, r), R(8, JIT_RCX)});
          done(&a);
        }
    }
  }
}

static void test_bmi(void **state) {
  static const ZydisMnemonic shx[] = {ZYDIS_MNEMONIC_SHLX, ZYDIS_MNEMONIC_SHRX, ZYDIS_MNEMONIC_SARX};
  (void)state;
  for (int w = 0; w < 2; w++) {
    unsigned bits = w ? 64 : 32;
    for (int d = 0; d < 16; d++)
      for (int s = 0; s < 16; s++) {
        jit_asm a = fresh();
        jit_x86_rorx(&a, w, (jit_reg)d, (jit_reg)s, (uint8_t)(d + s));
        expect(&a, 0, ZYDIS_MNEMONIC_RORX, 3, (want[]){R(bits, d), R(bits, s), I(8, d + s)});
        done(&a);
        for (int c = 0; c < 16; c++) {
          for (int op = JIT_SHLX; op <= JIT_SARX; op++) {
            a = fresh();
            jit_x86_shiftx(&a, (jit_shiftx)op, w, (jit_reg)d, (jit_reg)s, (jit_reg)c);
            expect(&a, 0, shx[op], 3, (want[]){R(bits, d), R(bits, s), R(bits, c)});
            done(&a);
          }
          a = fresh();
          jit_x86_andn(&a, w, (jit_reg)d, (jit_reg)s, (jit_reg)c);
          expect(&a, 0, ZYDIS_MNEMONIC_ANDN, 3, (want[]){R(bits, d), R(bits, s), R(bits, c)});
          done(&a);
          if (w && d != s) {
            a = fresh();
            jit_x86_mulx(&a, (jit_reg)d, (jit_reg)s, (jit_reg)c);
            expect(&a, 0, ZYDIS_MNEMONIC_MULX, 3, (want[]){R(64, d), R(64, s), R(64, c)});
            done(&a);
          }
        }
      }
  }
}

static void test_bitops(void **state) {
  static const ZydisMnemonic mn[] = {
    [JIT_POPCNT] = ZYDIS_MNEMONIC_POPCNT, [JIT_LZCNT] = ZYDIS_MNEMONIC_LZCNT,
    [JIT_TZCNT] = ZYDIS_MNEMONIC_TZCNT, [JIT_BSR] = ZYDIS_MNEMONIC_BSR,
  };
  (void)state;
  for (int w = 0; w < 2; w++) {
    unsigned bits = w ? 64 : 32;
    for (int d = 0; d < 16; d++) {
      jit_asm a = fresh();
      jit_x86_bswap(&a, w, (jit_reg)d);
      expect(&a, 0, ZYDIS_MNEMONIC_BSWAP, 1, (want[]){R(bits, d)});
      done(&a);
      for (int s = 0; s < 16; s++)
        for (int op = JIT_POPCNT; op <= JIT_BSR; op++) {
          a = fresh();
          jit_x86_bitop(&a, (jit_bitop)op, w, (jit_reg)d, (jit_reg)s);
          expect(&a, 0, mn[op], 2, (want[]){R(bits, d), R(bits, s)});
          done(&a);
        }
    }
    jit_asm a = fresh();
    jit_x86_cqo(&a, w);
    expect(&a, 0, w ? ZYDIS_MNEMONIC_CQO : ZYDIS_MNEMONIC_CDQ, 0, NULL);
    done(&a);
  }
}

static const ZydisMnemonic set_mn[16] = {
  ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
  ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
  ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
  ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
};
static const ZydisMnemonic cmov_mn[16] = {
  ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
  ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
  ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
  ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE,
};
static const ZydisMnemonic jcc_mn[16] = {
  ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
  ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
  ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
  ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
};

static void test_setcc_cmov(void **state) {
  (void)state;
  for (int cc = 0; cc < 16; cc++)
    for (int d = 0; d < 16; d++) {
      jit_asm a = fresh();
      jit_x86_setcc(&a, (jit_cc)cc, (jit_reg)d);
      expect(&a, 0, set_mn[cc], 1, (want[]){R(8, d)});
      done(&a);
      for (int w = 0; w < 2; w++)
        for (int s = 0; s < 16; s++) {
          a = fresh();
          jit_x86_cmov(&a, (jit_cc)cc, w, (jit_reg)d, (jit_reg)s);
          expect(&a, 0, cmov_mn[cc], 2, (want[]){R(w ? 64 : 32, d), R(w ? 64 : 32, s)});
          done(&a);
        }
    }
}

/* ---- control flow and labels ---- */

static void test_jumps(void **state) {
  (void)state;
  for (int cc = -1; cc < 16; cc++) {
    ZydisMnemonic mn = cc < 0 ? ZYDIS_MNEMONIC_JMP : jcc_mn[cc];
    jit_asm a = fresh();
    jit_label near_back = jit_label_new(&a), far_back = jit_label_new(&a);
    jit_label far_fwd = jit_label_new(&a), near_fwd = jit_label_new(&a);
    jit_label_bind(&a, far_back);
    pad(&a, 200);
    jit_label_bind(&a, near_back);
    size_t at[4];
    at[0] = jit_asm_pos(&a);                                     /* backward, rel8 */
    if (cc < 0) jit_x86_jmp(&a, near_back); else jit_x86_jcc(&a, (jit_cc)cc, near_back);
    assert_int_equal(jit_asm_pos(&a) - at[0], 2);
    at[1] = jit_asm_pos(&a);                                     /* backward, rel32 */
    if (cc < 0) jit_x86_jmp(&a, far_back); else jit_x86_jcc(&a, (jit_cc)cc, far_back);
    assert_int_equal(jit_asm_pos(&a) - at[1], cc < 0 ? 5 : 6);
    at[2] = jit_asm_pos(&a);                                     /* forward, rel32 + fixup */
    if (cc < 0) jit_x86_jmp(&a, far_fwd); else jit_x86_jcc(&a, (jit_cc)cc, far_fwd);
    at[3] = jit_asm_pos(&a);                                     /* forward, rel8 + fixup */
    if (cc < 0) jit_x86_jmp8(&a, near_fwd); else jit_x86_jcc8(&a, (jit_cc)cc, near_fwd);
    size_t end3 = jit_asm_pos(&a);
    pad(&a, 2);
    jit_label_bind(&a, near_fwd);
    pad(&a, 200);
    jit_label_bind(&a, far_fwd);
    jit_x86_ret(&a);
    const char *why = NULL;
    assert_int_equal(jit_asm_finish(&a, &why), 0);
    size_t len = jit_asm_pos(&a);
    int64_t targets[4] = {(int64_t)a.labels[near_back], (int64_t)a.labels[far_back],
                          (int64_t)a.labels[far_fwd], (int64_t)a.labels[near_fwd]};
    size_t ends[4] = {at[1], at[2], at[3], end3};
    for (int k = 0; k < 4; k++) {
      a.at = a.code + ends[k];
      expect(&a, at[k], mn, 1, (want[]){T(targets[k])});
    }
    a.at = a.code + len;
    done(&a);
  }
  jit_asm a = fresh();
  jit_label l = jit_label_new(&a);
  jit_x86_call(&a, l);
  jit_label_bind(&a, l);
  const char *why = NULL;
  assert_int_equal(jit_asm_finish(&a, &why), 0);
  expect(&a, 0, ZYDIS_MNEMONIC_CALL, 1, (want[]){T(5)});
  done(&a);
  for (int r = 0; r < 16; r++) {
    a = fresh();
    jit_x86_jmp_r(&a, (jit_reg)r);
    expect(&a, 0, ZYDIS_MNEMONIC_JMP, 1, (want[]){R(64, r)});
    size_t at = jit_asm_pos(&a);
    jit_x86_call_r(&a, (jit_reg)r);
    expect(&a, at, ZYDIS_MNEMONIC_CALL, 1, (want[]){R(64, r)});
    done(&a);
    if (r == JIT_RSP) continue;
    a = fresh();
    jit_mem m = jit_mem_bi(JIT_RSP, (jit_reg)r, 3, 24);
    jit_x86_jmp_m(&a, m);
    expect(&a, 0, ZYDIS_MNEMONIC_JMP, 1, (want[]){M(64, m)});
    done(&a);
  }
  a = fresh();
  jit_x86_ret(&a);
  expect(&a, 0, ZYDIS_MNEMONIC_RET, 0, NULL);
  done(&a);
}

static void test_labels_and_data(void **state) {
  (void)state;
  const char *why = NULL;
  /* a short jump that does not reach is an error, not wrong code */
  jit_asm a = fresh();
  jit_label far = jit_label_new(&a);
  jit_x86_jmp8(&a, far);
  pad(&a, 200);
  jit_label_bind(&a, far);
  assert_int_equal(jit_asm_finish(&a, &why), -1);
  assert_string_equal(why, "short jump out of range");
  done(&a);
  /* an unbound label is an error */
  a = fresh();
  jit_x86_jmp(&a, jit_label_new(&a));
  assert_int_equal(jit_asm_finish(&a, &why), -1);
  assert_string_equal(why, "jump to an unbound label");
  done(&a);
  /* alignment pads with int3; data words are little-endian */
  a = fresh();
  jit_x86_ret(&a);
  jit_x86_ret(&a);
  jit_asm_align(&a, 4);
  assert_int_equal(jit_asm_pos(&a), 4);
  assert_int_equal(a.code[2], 0xCC);
  assert_int_equal(a.code[3], 0xCC);
  jit_asm_align(&a, 4);
  assert_int_equal(jit_asm_pos(&a), 4);
  jit_asm_u32(&a, 0xDEADBEEF);
  assert_int_equal(jit_asm_pos(&a), 8);
  assert_int_equal(a.code[4], 0xEF);
  assert_int_equal(a.code[7], 0xDE);
  done(&a);
}

/* A few encodings spelled out as text, as a human would read them. */
static void test_golden_text(void **state) {
  (void)state;
  static const struct { const char *text; } golden[] = {
    {"mov [r15+rcx*1], sil"}, {"mov [r15+rcx*1], bpl"}, {"movzx r13d, byte ptr [r15+rcx*1]"},
    {"mov rax, [r13]"}, {"mov rax, [r12]"}, {"lea ecx, [rbp-0x80]"},
    {"sub qword ptr [rsp], 0x05"}, {"shlx rdx, rcx, r14"}, {"mov eax, [0x0000000000000010]"},
    /* FSGSBASE: guest memory at gs:[rcx], gas in r15 */
    {"movzx esi, byte ptr gs:[rcx]"}, {"mov gs:[rcx], r13"}, {"mov word ptr gs:[rcx], 0x1234"},
    {"rdgsbase rsi"}, {"wrgsbase r15"}, {"sub r15, 0x05"},
  };
  enum { N = sizeof golden / sizeof golden[0] };
  const jit_mem gs = {JIT_RCX, JIT_NOREG, 0, 0, JIT_SEG_GS};
  jit_asm a = fresh();
  size_t at[N];
  at[0] = jit_asm_pos(&a); jit_x86_store(&a, 1, jit_mem_bi(JIT_R15, JIT_RCX, 0, 0), JIT_RSI);
  at[1] = jit_asm_pos(&a); jit_x86_store(&a, 1, jit_mem_bi(JIT_R15, JIT_RCX, 0, 0), JIT_RBP);
  at[2] = jit_asm_pos(&a); jit_x86_load(&a, JIT_U8, JIT_R13, jit_mem_bi(JIT_R15, JIT_RCX, 0, 0));
  at[3] = jit_asm_pos(&a); jit_x86_load(&a, JIT_U64, JIT_RAX, jit_mem_bd(JIT_R13, 0));
  at[4] = jit_asm_pos(&a); jit_x86_load(&a, JIT_U64, JIT_RAX, jit_mem_bd(JIT_R12, 0));
  at[5] = jit_asm_pos(&a); jit_x86_lea(&a, false, JIT_RCX, jit_mem_bd(JIT_RBP, -128));
  at[6] = jit_asm_pos(&a); jit_x86_alu_mi(&a, JIT_SUB, true, jit_mem_bd(JIT_RSP, 0), 5);
  at[7] = jit_asm_pos(&a); jit_x86_shiftx(&a, JIT_SHLX, true, JIT_RDX, JIT_RCX, JIT_R14);
  at[8] = jit_asm_pos(&a); jit_x86_load(&a, JIT_U32, JIT_RAX, jit_mem_bd(JIT_NOREG, 16));
  at[9] = jit_asm_pos(&a); jit_x86_load(&a, JIT_U8, JIT_RSI, gs);
  at[10] = jit_asm_pos(&a); jit_x86_store(&a, 8, gs, JIT_R13);
  at[11] = jit_asm_pos(&a); jit_x86_store_imm(&a, 2, gs, 0x1234);
  at[12] = jit_asm_pos(&a); jit_x86_rdgsbase(&a, JIT_RSI);
  at[13] = jit_asm_pos(&a); jit_x86_wrgsbase(&a, JIT_R15);
  at[14] = jit_asm_pos(&a); jit_x86_alu_ri(&a, JIT_SUB, true, JIT_R15, 5);
  size_t end = jit_asm_pos(&a);
  for (unsigned i = 0; i < N; i++) {
    ZydisDisassembledInstruction ins;
    size_t stop = i + 1 < N ? at[i + 1] : end;
    assert_true(ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, 0, a.code + at[i],
                                                   stop - at[i], &ins)));
    assert_int_equal(ins.info.length, stop - at[i]);
    assert_string_equal(ins.text, golden[i].text);
    checks++;
  }
  done(&a);
}

/* op reg, [mem]: every operation, both widths, every register and every
** address form. */
static void alu_rm_at(jit_mem m, void *ud) {
  const alu_mem_case *c = ud;
  unsigned bits = c->w ? 64 : 32;
  jit_asm a = fresh();
  jit_x86_alu_rm(&a, (jit_alu)c->op, c->w, (jit_reg)c->reg, m);
  expect(&a, 0, alu_mn[c->op], 2, (want[]){R(bits, c->reg), M(bits, m)});
  done(&a);
}

static void test_alu_rm(void **state) {
  (void)state;
  for (int op = JIT_ADD; op <= JIT_CMP; op++)
    for (int w = 0; w < 2; w++) {
      alu_mem_case c = {op, w, 0, classes[(unsigned)(op + w) % NCLASSES]};
      each_mem(alu_rm_at, &c);
    }
  for (int r = 0; r < 16; r++) {
    alu_mem_case c = {JIT_ADD, 1, 0, r};
    alu_rm_at(jit_mem_bd(JIT_RSP, 40), &c);
    alu_rm_at(jit_mem_bd((jit_reg)r, 0), &c);
  }
}

/* The address-size prefix before a gs access: 32-bit registers in the
** address, every base class, the absolute form, and the disp unchanged. */
static void test_addr32(void **state) {
  (void)state;
  static const struct { const char *text; } golden[] = {
    {"movzx esi, byte ptr gs:[r14d]"}, {"mov r13d, gs:[r12d-0x04]"},
    {"mov gs:[ebp+0x7FFFFFFF], rax"}, {"mov word ptr gs:[r13d], 0x1234"},
    {"mov rdx, gs:[0x0000000080000000]"}, {"movsxd rax, dword ptr gs:[eax-0x80000000]"},
  };
  enum { N = sizeof golden / sizeof golden[0] };
  jit_mem gs = {JIT_R14, JIT_NOREG, 0, 0, JIT_SEG_GS};
  jit_asm a = fresh();
  size_t at[N];
  at[0] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_load(&a, JIT_U8, JIT_RSI, gs);
  gs.base = JIT_R12, gs.disp = -4;
  at[1] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_load(&a, JIT_U32, JIT_R13, gs);
  gs.base = JIT_RBP, gs.disp = INT32_MAX;
  at[2] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_store(&a, 8, gs, JIT_RAX);
  gs.base = JIT_R13, gs.disp = 0;
  at[3] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_store_imm(&a, 2, gs, 0x1234);
  gs.base = JIT_NOREG, gs.disp = INT32_MIN;
  at[4] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_load(&a, JIT_U64, JIT_RDX, gs);
  gs.base = JIT_RAX, gs.disp = INT32_MIN;
  at[5] = jit_asm_pos(&a); jit_x86_addr32(&a); jit_x86_load(&a, JIT_I32, JIT_RAX, gs);
  size_t end = jit_asm_pos(&a);
  for (unsigned i = 0; i < N; i++) {
    ZydisDisassembledInstruction ins;
    size_t stop = i + 1 < N ? at[i + 1] : end;
    assert_int_equal(a.code[at[i]], 0x67);
    assert_true(ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, 0, a.code + at[i],
                                                   stop - at[i], &ins)));
    assert_int_equal(ins.info.length, stop - at[i]);
    assert_int_equal(ins.info.address_width, 32);
    assert_string_equal(ins.text, golden[i].text);
    checks++;
  }
  done(&a);
}

/* Loop alignment pads with nops the code falls through: from every start
** offset, the padding decodes as nops only and ends on the boundary. */
static void test_nop_align(void **state) {
  (void)state;
  for (unsigned start = 0; start < 64; start++) {
    jit_asm a = fresh();
    pad(&a, start);
    jit_x86_nop_align(&a, 32);
    assert_int_equal(jit_asm_pos(&a) % 32, 0);
    assert_true(jit_asm_pos(&a) >= start && jit_asm_pos(&a) < start + 32);
    for (size_t at = start; at < jit_asm_pos(&a);) {
      ZydisDisassembledInstruction ins;
      assert_true(ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, 0, a.code + at,
                                                     jit_asm_pos(&a) - at, &ins)));
      assert_int_equal(ins.info.mnemonic, ZYDIS_MNEMONIC_NOP);
      at += ins.info.length;
      checks++;
    }
    done(&a);
  }
}

/* Offset jumps: rel8 when a known target reaches, rel32 otherwise (or
** always, jcc_rel32: the gas check's fixed length), and forward rel32
** fields patched later; jmp for JIT_ALWAYS. */
static void test_offset_jumps(void **state) {
  (void)state;
  for (int cc = 0; cc <= JIT_ALWAYS; cc++) {
    ZydisMnemonic mn = cc == JIT_ALWAYS ? ZYDIS_MNEMONIC_JMP : jcc_mn[cc];
    jit_asm a = fresh();
    jit_x86_ret(&a);                          /* target 0 */
    pad(&a, 20);
    size_t at1 = jit_asm_pos(&a);
    jit_x86_jcc_at(&a, (jit_cc)cc, 1);        /* near: rel8 */
    assert_int_equal(jit_asm_pos(&a) - at1, 2);
    pad(&a, 200);
    size_t at2 = jit_asm_pos(&a);
    jit_x86_jcc_at(&a, (jit_cc)cc, 0);        /* far: rel32 */
    assert_int_equal(jit_asm_pos(&a) - at2, cc == JIT_ALWAYS ? 5 : 6);
    size_t at3 = jit_asm_pos(&a);
    size_t field = jit_x86_jcc_forward(&a, (jit_cc)cc);
    size_t end3 = jit_asm_pos(&a);
    assert_int_equal(end3 - field, 4);
    pad(&a, 2);
    jit_asm_patch_rel32(&a, field, jit_asm_pos(&a));
    size_t len = jit_asm_pos(&a);
    a.at = a.code + at1 + 2;
    expect(&a, at1, mn, 1, (want[]){T(1)});
    a.at = a.code + at3;
    expect(&a, at2, mn, 1, (want[]){T(0)});
    a.at = a.code + end3;
    expect(&a, at3, mn, 1, (want[]){T((int64_t)len)});
    a.at = a.code + len;
    size_t at4 = jit_asm_pos(&a);
    jit_x86_jcc_rel32(&a, (jit_cc)cc, at4 - 3);  /* near, and still rel32 */
    assert_int_equal(jit_asm_pos(&a) - at4, cc == JIT_ALWAYS ? 5 : 6);
    expect(&a, at4, mn, 1, (want[]){T((int64_t)at4 - 3)});
    size_t at5 = jit_asm_pos(&a);
    jit_x86_jcc_rel32(&a, (jit_cc)cc, at5 + 1000); /* forward, not emitted yet */
    expect(&a, at5, mn, 1, (want[]){T((int64_t)at5 + 1000)});
    done(&a);
  }
}

/* The buffer is a page-aligned read-write mapping the caller can take. */
static void test_take(void **state) {
  (void)state;
  jit_asm a;
  size_t mapped;
  jit_asm_init(&a);
  for (int i = 0; i < 5000; i++) jit_x86_mov_ri(&a, JIT_R9, 0x123456789ull);
  uint8_t *p = jit_asm_take(&a, &mapped);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 4096, 0);
  assert_true(mapped >= 50000 && mapped % 4096 == 0);
  assert_int_equal(p[0], 0x49);               /* REX.W|B of the first movabs */
  p[mapped - 1] = 1;                           /* writable to its end */
  assert_null(a.map);                          /* taken: the next encoder maps anew */
  assert_true(jit_asm_pos(&a) == 0 && a.at >= a.room);
  jit_asm_free(&a);
  munmap(p, mapped);
}

static int report(void **state) {
  (void)state;
  printf("x86 encoder: %lu encodings decoded and matched\n", checks);
  jit_asm_free(&shared);
  return 0;
}

int main(void) {
  setup_decoder();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mov_rr),      cmocka_unit_test(test_mov_ri),
    cmocka_unit_test(test_load),        cmocka_unit_test(test_store),
    cmocka_unit_test(test_lea),         cmocka_unit_test(test_ext_rr),
    cmocka_unit_test(test_push_pop),    cmocka_unit_test(test_alu),
    cmocka_unit_test(test_alu_mem),     cmocka_unit_test(test_test_imul),
    cmocka_unit_test(test_unary_shift), cmocka_unit_test(test_bmi),
    cmocka_unit_test(test_bitops),      cmocka_unit_test(test_setcc_cmov),
    cmocka_unit_test(test_jumps),       cmocka_unit_test(test_labels_and_data),
    cmocka_unit_test(test_golden_text),  cmocka_unit_test(test_addr32),  cmocka_unit_test(test_alu_rm),  cmocka_unit_test(test_offset_jumps),
    cmocka_unit_test(test_nop_align),
    cmocka_unit_test(test_take),
  };
  return cmocka_run_group_tests(tests, NULL, report);
}
