/*
** A small x86-64 encoder for the JIT: REX/VEX prefixes, ModRM/SIB with
** every base/index special case, imm8/imm32 selection, and rel8/rel32
** labels with fixups.  Only what the compiler emits is here; every
** function is checked against a disassembler in tests/jit/test_x86.c.
**
** Naming: w selects the operand size (true = 64-bit, false = 32-bit; a
** 32-bit write zero-extends into the full register, as on the CPU).
*/
#ifndef NUB_JIT_X86_H
#define NUB_JIT_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hardware register numbers (ModRM order). */
typedef enum jit_reg {
  JIT_RAX, JIT_RCX, JIT_RDX, JIT_RBX, JIT_RSP, JIT_RBP, JIT_RSI, JIT_RDI,
  JIT_R8, JIT_R9, JIT_R10, JIT_R11, JIT_R12, JIT_R13, JIT_R14, JIT_R15,
  JIT_NOREG = 0x10,          /* memory operand without base or index */
} jit_reg;

/* Condition codes (the low nibble of Jcc/SETcc/CMOVcc). */
typedef enum jit_cc {
  JIT_CC_O, JIT_CC_NO, JIT_CC_B, JIT_CC_AE, JIT_CC_E, JIT_CC_NE, JIT_CC_BE, JIT_CC_A,
  JIT_CC_S, JIT_CC_NS, JIT_CC_P, JIT_CC_NP, JIT_CC_L, JIT_CC_GE, JIT_CC_LE, JIT_CC_G,
  JIT_ALWAYS,              /* for the jump-to-offset functions: jmp */
} jit_cc;

/* The eight classic ALU operations (opcode group 1). */
typedef enum jit_alu {
  JIT_ADD, JIT_OR, JIT_ADC, JIT_SBB, JIT_AND, JIT_SUB, JIT_XOR, JIT_CMP,
} jit_alu;

/* Shift and rotate group 2 (/digit values). */
typedef enum jit_shift {
  JIT_ROL = 0, JIT_ROR = 1, JIT_SHL = 4, JIT_SHR = 5, JIT_SAR = 7,
} jit_shift;

/* BMI2 shifts by a register (count taken mod the width). */
typedef enum jit_shiftx { JIT_SHLX, JIT_SHRX, JIT_SARX } jit_shiftx;

/* Group 3 unary operations (/digit values). */
typedef enum jit_unary {
  JIT_NOT = 2, JIT_NEG = 3, JIT_MUL = 4, JIT_IMUL1 = 5, JIT_DIV = 6, JIT_IDIV = 7,
} jit_unary;

/* Bit counting. */
typedef enum jit_bitop { JIT_POPCNT, JIT_LZCNT, JIT_TZCNT, JIT_BSR } jit_bitop;

/* Loads and register extensions: how a narrow value widens. */
typedef enum jit_ext {
  JIT_U8, JIT_I8, JIT_U16, JIT_I16, JIT_U32, JIT_I32, JIT_U64,
} jit_ext;

/* A memory operand [base + index << scale + disp].  base may be
** JIT_NOREG (absolute disp32); index JIT_NOREG means none (JIT_RSP can
** never be an index). */
typedef struct jit_mem {
  uint8_t base, index, scale;   /* scale: 0..3 = x1, x2, x4, x8 */
  int32_t disp;
  uint8_t seg;                  /* segment override prefix (JIT_SEG_GS) or 0 */
} jit_mem;

#define JIT_SEG_GS 0x65

static inline jit_mem jit_mem_bd(jit_reg base, int32_t disp) {
  return (jit_mem){(uint8_t)base, JIT_NOREG, 0, disp, 0};
}
static inline jit_mem jit_mem_bi(jit_reg base, jit_reg index, unsigned scale, int32_t disp) {
  return (jit_mem){(uint8_t)base, (uint8_t)index, (uint8_t)scale, disp, 0};
}

typedef uint32_t jit_label;
#define JIT_UNBOUND 0xFFFFFFFFu

typedef struct jit_fixup {
  uint32_t at;             /* offset of the rel8 / rel32 field */
  uint32_t label;
  uint8_t size;            /* 1 or 4 */
} jit_fixup;

/* Code buffer with labels.  The code is an anonymous mapping (so that it
** can become the executable one in place).  Out-of-memory is sticky:
** emission continues into nothing and jit_asm_finish reports it. */
typedef struct jit_asm {
  uint8_t *code;
  size_t len, cap;
  uint32_t *labels;        /* bound offset or JIT_UNBOUND */
  uint32_t nlabels, label_cap;
  jit_fixup *fixups;
  uint32_t nfixups, fixup_cap;
  bool oom;
  bool over_limit;         /* oom because held would pass limit */
  const char *scope_error; /* from jit_asm_close_scope, reported by finish */
  size_t limit;            /* 0 = none: bytes the buffer and arrays may hold */
  size_t held, peak;       /* bytes held now (capacities), and the most */
} jit_asm;

void jit_asm_init(jit_asm *a);
/* Count bytes against the limit (sticky oom when they do not fit). */
bool jit_asm_charge(jit_asm *a, size_t bytes);
/* pvm_grow of a realloc'ed array, counted against the limit. */
bool jit_asm_grow_array(jit_asm *a, void **p, uint32_t *cap, uint64_t need, size_t elem);
void jit_asm_free(jit_asm *a);
/* Empty the buffer and forget labels and fixups, keeping the memory. */
void jit_asm_reset(jit_asm *a);
/* Hand over the code buffer: a private read-write mapping of *mapped
** bytes (page-aligned) that the caller must munmap. */
uint8_t *jit_asm_take(jit_asm *a, size_t *mapped);
/* Pre-size the buffers (a hint; they grow as needed). */
void jit_asm_reserve(jit_asm *a, size_t code_bytes, uint32_t labels, uint32_t fixups);
/* Resolve every fixup.  Returns 0, or -1 when out of memory, a label was
** never bound or a rel8 does not reach (*what names the problem). */
/* Labels from first_label on are local to a stretch of code that is now
** complete: patch their fixups (those from first_fixup on) and forget
** them, so that labels and fixups do not pile up over a whole program.
** Fixups of older labels are kept for jit_asm_finish. */
void jit_asm_close_scope(jit_asm *a, uint32_t first_label, uint32_t first_fixup);
int jit_asm_finish(jit_asm *a, const char **what);

jit_label jit_label_new(jit_asm *a);
void jit_label_bind(jit_asm *a, jit_label l);
static inline bool jit_label_bound(const jit_asm *a, jit_label l) {
  return l < a->nlabels && a->labels[l] != JIT_UNBOUND;
}
static inline size_t jit_asm_pos(const jit_asm *a) { return a->len; }

/* ---- data movement ---- */
void jit_x86_mov_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src);
/* dst = imm (full 64-bit register), shortest encoding, flags untouched. */
void jit_x86_mov_ri(jit_asm *a, jit_reg dst, uint64_t imm);
void jit_x86_load(jit_asm *a, jit_ext kind, jit_reg dst, jit_mem m);
void jit_x86_store(jit_asm *a, unsigned size, jit_mem m, jit_reg src);
/* Store an immediate of size bytes (8: a sign-extended imm32). */
void jit_x86_store_imm(jit_asm *a, unsigned size, jit_mem m, int32_t imm);
void jit_x86_lea(jit_asm *a, bool w, jit_reg dst, jit_mem m);
/* dst = address of a label (RIP-relative). */
void jit_x86_lea_label(jit_asm *a, jit_reg dst, jit_label l);
/* Widen a register: movzx/movsx/movsxd, or mov r32 (U32). */
void jit_x86_ext_rr(jit_asm *a, jit_ext kind, jit_reg dst, jit_reg src);
void jit_x86_push(jit_asm *a, jit_reg r);
void jit_x86_pop(jit_asm *a, jit_reg r);

/* ---- arithmetic ---- */
void jit_x86_alu_rr(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_reg src);
void jit_x86_alu_ri(jit_asm *a, jit_alu op, bool w, jit_reg dst, int32_t imm);
void jit_x86_alu_mi(jit_asm *a, jit_alu op, bool w, jit_mem m, int32_t imm);
void jit_x86_alu_mr(jit_asm *a, jit_alu op, bool w, jit_mem m, jit_reg src);
void jit_x86_test_rr(jit_asm *a, bool w, jit_reg x, jit_reg y);
void jit_x86_imul_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src);
void jit_x86_imul_rri(jit_asm *a, bool w, jit_reg dst, jit_reg src, int32_t imm);
void jit_x86_unary(jit_asm *a, jit_unary op, bool w, jit_reg r);
void jit_x86_shift_ri(jit_asm *a, jit_shift op, bool w, jit_reg r, uint8_t imm);
void jit_x86_shift_cl(jit_asm *a, jit_shift op, bool w, jit_reg r);
void jit_x86_shiftx(jit_asm *a, jit_shiftx op, bool w, jit_reg dst, jit_reg src, jit_reg count);
void jit_x86_rorx(jit_asm *a, bool w, jit_reg dst, jit_reg src, uint8_t imm);
/* hi:lo = rdx * src, unsigned, 64-bit, flags untouched (BMI2); hi != lo. */
void jit_x86_mulx(jit_asm *a, jit_reg hi, jit_reg lo, jit_reg src);
/* dst = ~src1 & src2 (BMI1). */
void jit_x86_andn(jit_asm *a, bool w, jit_reg dst, jit_reg src1, jit_reg src2);
void jit_x86_bitop(jit_asm *a, jit_bitop op, bool w, jit_reg dst, jit_reg src);
void jit_x86_bswap(jit_asm *a, bool w, jit_reg r);
/* Sign-extend rax into rdx (cqo) or eax into edx (cdq). */
void jit_x86_cqo(jit_asm *a, bool w);
void jit_x86_setcc(jit_asm *a, jit_cc cc, jit_reg r8);
void jit_x86_cmov(jit_asm *a, jit_cc cc, bool w, jit_reg dst, jit_reg src);

/* ---- control flow ---- */
void jit_x86_jmp(jit_asm *a, jit_label l);
void jit_x86_jcc(jit_asm *a, jit_cc cc, jit_label l);
/* Short forms for nearby forward labels (checked at finish). */
void jit_x86_jmp8(jit_asm *a, jit_label l);
void jit_x86_jcc8(jit_asm *a, jit_cc cc, jit_label l);
void jit_x86_call(jit_asm *a, jit_label l);
/* Jumps by offset rather than label (cc JIT_ALWAYS: jmp).  _at goes to an
** offset already emitted (rel8 when it reaches); _forward emits a rel32
** to code not emitted yet and returns the offset of the field for
** jit_asm_patch_rel32(a, field, target offset). */
void jit_x86_jcc_at(jit_asm *a, jit_cc cc, size_t target);
size_t jit_x86_jcc_forward(jit_asm *a, jit_cc cc);
void jit_asm_patch_rel32(jit_asm *a, size_t field, size_t target);
void jit_x86_jmp_r(jit_asm *a, jit_reg r);
void jit_x86_call_r(jit_asm *a, jit_reg r);
void jit_x86_jmp_m(jit_asm *a, jit_mem m);
void jit_x86_ret(jit_asm *a);
/* rdgsbase / wrgsbase r64 (FSGSBASE) */
void jit_x86_rdgsbase(jit_asm *a, jit_reg r);
void jit_x86_wrgsbase(jit_asm *a, jit_reg r);

/* Pad with int3 up to a multiple of n bytes. */
void jit_asm_align(jit_asm *a, unsigned n);
/* Pad with multi-byte nops (executed: code falls through them) to a
** multiple of n (a power of two, at most 64). */
void jit_x86_nop_align(jit_asm *a, unsigned n);
/* Raw 32-bit data (tables placed in the code). */
void jit_asm_u32(jit_asm *a, uint32_t v);
/* Address-size prefix (67) for the next instruction: 32-bit addressing,
** the sum wrapping modulo 2^32 before a segment base is added. */
void jit_x86_addr32(jit_asm *a);
/* dst = dst op [m]. */
void jit_x86_alu_rm(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_mem m);

#endif
