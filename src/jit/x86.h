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
** emission continues into the spare buffer (code and at point there, at
** wraps to its start) and jit_asm_finish reports it. */
#define JIT_INS_MAX 24u    /* the longest sequence one encoder call writes */

typedef struct jit_asm {
  uint8_t *code;           /* where instructions go: map, or spare after OOM */
  uint8_t *at;             /* the next byte: the code's length is at - code */
  uint8_t *room;           /* encoders start below it: code + cap -
                              JIT_INS_MAX + 1 (code when less): one compare
                              per host instruction, no addition */
  size_t cap;              /* of code */
  uint8_t *map;            /* the mapping, map_size bytes */
  size_t map_size;
  size_t dirty;            /* bytes of map from its start that may hold
                              data (page multiple): a pooled mapping's old
                              code, or what this compile wrote */
  size_t ready;            /* bytes of map from its start known resident
                              (populated, or dirty): room stops there */
  uint32_t *labels;        /* bound offset or JIT_UNBOUND */
  uint32_t nlabels, label_cap;
  jit_fixup *fixups;
  uint32_t nfixups, fixup_cap;
  bool oom;
  bool over_limit;         /* oom because held would pass limit */
  const char *scope_error; /* from jit_asm_close_scope, reported by finish */
  size_t limit;            /* 0 = none: bytes the buffer and arrays may hold */
  size_t held, peak;       /* bytes held now (capacities), and the most */
  uint8_t spare[JIT_INS_MAX];
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
** bytes (page-aligned) for the caller to give to jit_pool_put (or
** munmap).  The bytes after the code in its last page are int3 (0xCC),
** and the pages after that hold nothing: where they may hold data (a
** pooled mapping's previous code, or bytes written just past the end)
** they are unmapped, so *mapped is then the code's pages.  NULL when that
** munmap fails (the buffer is released). */
uint8_t *jit_asm_take(jit_asm *a, size_t *mapped);

/* The code pool: mappings of freed code, kept read-write for the next
** compile so that it writes into pages already faulted in (a fresh
** page's fault and zero-fill was about a fifth of a compile, docs/jit.md).
** Process-wide and thread-safe.  Bounded by nub_jit_set_code_pool (at
** most NUB_JIT_POOL_MAPS mappings and NUB_JIT_POOL_BYTES of their pages
** that may be resident); beyond it the oldest are unmapped. */
/* A read-write mapping of exactly size bytes (page multiple), from the
** pool or fresh; *dirty: how many bytes from its start may hold a
** previous program's code (the caller overwrites or releases them).
** NULL when out of memory. */
uint8_t *jit_pool_take(size_t size, size_t *dirty);
/* Give back a code mapping (read+execute or read-write) of map_size
** bytes of which the first dirty may be resident: turned read-write and
** kept, or unmapped. */
void jit_pool_put(uint8_t *map, size_t map_size, size_t dirty);
/* What the pool holds now (tests). */
void jit_pool_usage(unsigned *maps, size_t *bytes);
/* Pre-size the buffers (a hint; they grow as needed). */
void jit_asm_reserve(jit_asm *a, size_t code_bytes, uint32_t labels, uint32_t fixups);
/* Labels from first_label on are local to a stretch of code that is now
** complete: patch their fixups (those from first_fixup on) and forget
** them, so that labels and fixups do not pile up over a whole program.
** Fixups of older labels are kept for jit_asm_finish. */
void jit_asm_close_scope(jit_asm *a, uint32_t first_label, uint32_t first_fixup);
/* Resolve every fixup.  Returns 0, or -1 when out of memory, a label was
** never bound or a rel8 does not reach (*what names the problem). */
int jit_asm_finish(jit_asm *a, const char **what);

jit_label jit_label_new(jit_asm *a);
void jit_label_bind(jit_asm *a, jit_label l);
static inline bool jit_label_bound(const jit_asm *a, jit_label l) {
  return l < a->nlabels && a->labels[l] != JIT_UNBOUND;
}
/* The code's length: the offset of the next instruction. */
static inline size_t jit_asm_pos(const jit_asm *a) { return (size_t)(a->at - a->code); }
/* A rel8 / rel32 field at `at` to be patched when label l is bound. */
void jit_asm_add_fixup(jit_asm *a, uint32_t at, jit_label l, uint8_t size);
/* Out of line: grow the mapping so JIT_INS_MAX bytes fit, or after OOM
** point code at the spare buffer. */
void jit_asm_make_room(jit_asm *a);

/*
** The encoders are inline: a compile calls one for every host instruction
** (about 3.5 per PVM instruction), and out of line the calls, the
** reloads of the buffer through the jit_asm and the growth check per call
** were half of the encoder's instructions (callgrind).  Each one checks
** once for JIT_INS_MAX bytes of room, writes through a local cursor (the
** stores through uint8_t * would otherwise force reloads of a->at) and
** stores the cursor once: a load, a compare and a store per host
** instruction (a length rather than a pointer cost an add and a subtract
** of the code's start more).
*/
#define JIT_INLINE static inline __attribute__((always_inline))

JIT_INLINE uint8_t *jit_ins_begin(jit_asm *a) {
  if (__builtin_expect(a->at >= a->room, 0)) jit_asm_make_room(a);
  return a->at;
}
JIT_INLINE void jit_ins_end(jit_asm *a, uint8_t *p) { a->at = p; }
JIT_INLINE uint8_t *jit_put32(uint8_t *p, uint32_t v) {
  __builtin_memcpy(p, &v, 4);
  return p + 4;
}
JIT_INLINE bool jit_fits8(int64_t v) { return v >= -128 && v <= 127; }

#define JIT_REX_W 0x08
#define JIT_REX_R 0x04
#define JIT_REX_X 0x02
#define JIT_REX_B 0x01

/* Legacy prefix and REX.  byte_reg marks 8-bit register operands, whose
** numbers 4..7 mean spl..dil only with a REX prefix.  The REX byte is
** written always and counted when needed: with the guest's registers
** spread over all 16, "is there a REX" was the encoder's most mispredicted
** branch (callgrind --branch-sim).  JIT_NOREG (0x10) has no bit 3. */
JIT_INLINE uint8_t *jit_enc_prefix(uint8_t *p, unsigned pfx, bool w, unsigned reg,
                                   unsigned index, unsigned base, bool byte_reg) {
  unsigned rex = (w ? JIT_REX_W : 0) | (reg & 8) >> 1 | (index & 8) >> 2 | (base & 8) >> 3;
  if (pfx) *p++ = (uint8_t)pfx;
  *p = (uint8_t)(0x40 | rex);
  return p + ((rex | byte_reg) != 0);
}

/* A REX.B for a register in the opcode byte (push, pop, mov r, imm). */
JIT_INLINE uint8_t *jit_enc_rex_b(uint8_t *p, unsigned w, unsigned r) {
  *p = (uint8_t)(0x40 | w | (r & 8) >> 3);
  return p + ((w | (r & 8)) != 0);
}

/* opcode of oplen (1 or 2) bytes, the first in the high byte */
JIT_INLINE uint8_t *jit_enc_opcode(uint8_t *p, uint32_t op, unsigned oplen) {
  if (oplen == 2) *p++ = (uint8_t)(op >> 8);
  *p++ = (uint8_t)op;
  return p;
}

/* ModRM + SIB + displacement for a memory operand. */
JIT_INLINE uint8_t *jit_enc_modrm_mem(uint8_t *p, unsigned reg, jit_mem m) {
  unsigned r = (reg & 7) << 3;
  if (m.base == JIT_NOREG) {               /* [index*s + disp32] or [disp32] */
    unsigned idx = m.index == JIT_NOREG ? 4 : (m.index & 7);
    *p++ = (uint8_t)(0x04 | r);
    *p++ = (uint8_t)((unsigned)m.scale << 6 | idx << 3 | 5);
    return jit_put32(p, (uint32_t)m.disp);
  }
  unsigned mod = m.disp == 0 && (m.base & 7) != 5 ? 0 : jit_fits8(m.disp) ? 1 : 2;
  if (m.index == JIT_NOREG && (m.base & 7) != 4) {
    *p++ = (uint8_t)(mod << 6 | r | (m.base & 7));
  } else {                                 /* rsp/r12 base or an index: SIB */
    unsigned idx = m.index == JIT_NOREG ? 4 : (m.index & 7);
    *p++ = (uint8_t)(mod << 6 | r | 4);
    *p++ = (uint8_t)((unsigned)m.scale << 6 | idx << 3 | (m.base & 7));
  }
  jit_put32(p, (uint32_t)m.disp);          /* then count 0, 1 or 4 of its bytes */
  return p + ((0x410u >> (4 * mod)) & 15);
}

/* For a register pair, entry reg << 4 | rm (x86.c): REX.R and REX.B in
** byte 0 (without 0x40), the ModRM byte (mod 11) in byte 2. */
extern const uint32_t jit_rr_bits[256];

/* op reg, r/m(register); byte_rm: rm is an 8-bit register.  The bytes
** (prefix, REX, opcode, ModRM) are put together in a word and stored at
** once, the REX byte dropped by a shift where none is needed: the ModRM
** and REX bits come from one table load (computed, they and the byte
** stores were about 20 host instructions an encoding; callgrind). */
JIT_INLINE void jit_enc_rr(jit_asm *a, unsigned pfx, bool w, uint32_t op, unsigned oplen,
                           unsigned reg, unsigned rm, bool byte_rm) {
  uint8_t *p = jit_ins_begin(a);
  uint64_t t = jit_rr_bits[(reg << 4 | rm) & 255];
  uint64_t rex = (t & 0xff) | (w ? JIT_REX_W : 0);
  bool need = rex != 0 || (byte_rm && rm >= 4 && rm < 8);
  uint64_t v = oplen == 2 ? (0x40 | rex) | (uint64_t)(op >> 8 & 0xff) << 8 |
                                (uint64_t)(op & 0xff) << 16 | (t & 0xff0000) << 8
                          : (0x40 | rex) | (uint64_t)(op & 0xff) << 8 | (t & 0xff0000);
  unsigned len = oplen + 1 + need;
  v >>= 8 * !need;
  if (pfx) {
    v = v << 8 | pfx;
    len++;
  }
  __builtin_memcpy(p, &v, 8);               /* JIT_INS_MAX leaves room for all 8 */
  jit_ins_end(a, p + len);
}

/* op reg, r/m(memory), then imm_len (0, 1, 2 or 4) bytes of imm; byte_reg:
** reg is an 8-bit register. */
JIT_INLINE void jit_enc_rm(jit_asm *a, unsigned pfx, bool w, uint32_t op, unsigned oplen,
                           unsigned reg, jit_mem m, bool byte_reg, uint32_t imm,
                           unsigned imm_len) {
  uint8_t *p = jit_ins_begin(a);
  if (m.seg) *p++ = m.seg;
  p = jit_enc_prefix(p, pfx, w, reg, m.index, m.base, byte_reg && reg >= 4 && reg < 8);
  p = jit_enc_opcode(p, op, oplen);
  p = jit_enc_modrm_mem(p, reg, m);
  jit_put32(p, imm);                       /* JIT_INS_MAX leaves room for all 4 */
  jit_ins_end(a, p + imm_len);
}

/* VEX-encoded (BMI) instruction in 3-byte form: map 1 = 0F38, 3 = 0F3A;
** pp 0 none, 1 66, 2 F3, 3 F2. */
JIT_INLINE uint8_t *jit_enc_vex(jit_asm *a, unsigned map, unsigned pp, bool w, unsigned reg,
                                unsigned vvvv, unsigned rm, uint8_t op) {
  uint8_t *p = jit_ins_begin(a);
  *p++ = 0xC4;
  *p++ = (uint8_t)(((reg & 8) ? 0 : 0x80) | 0x40 | ((rm & 8) ? 0 : 0x20) | map);
  *p++ = (uint8_t)((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | pp);
  *p++ = op;
  *p++ = (uint8_t)(0xC0 | (reg & 7) << 3 | (rm & 7));
  return p;
}

/* ---- data movement ---- */

JIT_INLINE void jit_x86_mov_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src) {
  jit_enc_rr(a, 0, w, 0x89, 1, src, dst, false);
}

/* dst = imm (full 64-bit register), shortest encoding, flags untouched. */
JIT_INLINE void jit_x86_mov_ri(jit_asm *a, jit_reg dst, uint64_t imm) {
  uint8_t *p = jit_ins_begin(a);
  if (imm <= 0xFFFFFFFFu) {                      /* mov r32, imm32 zero-extends */
    p = jit_enc_rex_b(p, 0, dst);
    *p++ = (uint8_t)(0xB8 + (dst & 7));
    p = jit_put32(p, (uint32_t)imm);
  } else if ((int64_t)imm == (int32_t)imm) {     /* mov r64, simm32 */
    *p++ = (uint8_t)(0x40 | JIT_REX_W | ((dst & 8) ? JIT_REX_B : 0));
    *p++ = 0xC7;
    *p++ = (uint8_t)(0xC0 | (dst & 7));
    p = jit_put32(p, (uint32_t)imm);
  } else {                                       /* movabs */
    *p++ = (uint8_t)(0x40 | JIT_REX_W | ((dst & 8) ? JIT_REX_B : 0));
    *p++ = (uint8_t)(0xB8 + (dst & 7));
    __builtin_memcpy(p, &imm, 8);
    p += 8;
  }
  jit_ins_end(a, p);
}

/* opcode, its length and REX.W of each widening (loads and registers) */
JIT_INLINE uint32_t jit_ext_op(jit_ext k) {
  return k == JIT_U8 ? 0x0FB6 : k == JIT_I8 ? 0x0FBE : k == JIT_U16 ? 0x0FB7
       : k == JIT_I16 ? 0x0FBF : k == JIT_I32 ? 0x63 : 0x8B;
}
JIT_INLINE bool jit_ext_w(jit_ext k) {
  return k == JIT_I8 || k == JIT_I16 || k == JIT_I32 || k == JIT_U64;
}

JIT_INLINE void jit_x86_load(jit_asm *a, jit_ext kind, jit_reg dst, jit_mem m) {
  jit_enc_rm(a, 0, jit_ext_w(kind), jit_ext_op(kind), kind <= JIT_I16 ? 2 : 1, dst, m, false, 0,
             0);
}

/* Widen a register: movzx/movsx/movsxd, or mov r32 (U32). */
JIT_INLINE void jit_x86_ext_rr(jit_asm *a, jit_ext kind, jit_reg dst, jit_reg src) {
  jit_enc_rr(a, 0, jit_ext_w(kind), jit_ext_op(kind), kind <= JIT_I16 ? 2 : 1, dst, src,
             kind == JIT_U8 || kind == JIT_I8);
}

JIT_INLINE void jit_x86_store(jit_asm *a, unsigned size, jit_mem m, jit_reg src) {
  jit_enc_rm(a, size == 2 ? 0x66 : 0, size == 8, size == 1 ? 0x88 : 0x89, 1, src, m,
             size == 1, 0, 0);
}

/* Store an immediate of size bytes (8: a sign-extended imm32). */
JIT_INLINE void jit_x86_store_imm(jit_asm *a, unsigned size, jit_mem m, int32_t imm) {
  jit_enc_rm(a, size == 2 ? 0x66 : 0, size == 8, size == 1 ? 0xC6 : 0xC7, 1, 0, m, false,
             (uint32_t)imm, size >= 4 ? 4 : size);
}

JIT_INLINE void jit_x86_lea(jit_asm *a, bool w, jit_reg dst, jit_mem m) {
  jit_enc_rm(a, 0, w, 0x8D, 1, dst, m, false, 0, 0);
}

/* dst = address of a label (RIP-relative). */
void jit_x86_lea_label(jit_asm *a, jit_reg dst, jit_label l);

JIT_INLINE void jit_x86_push(jit_asm *a, jit_reg r) {
  uint8_t *p = jit_enc_rex_b(jit_ins_begin(a), 0, r);
  *p++ = (uint8_t)(0x50 + (r & 7));
  jit_ins_end(a, p);
}

JIT_INLINE void jit_x86_pop(jit_asm *a, jit_reg r) {
  uint8_t *p = jit_enc_rex_b(jit_ins_begin(a), 0, r);
  *p++ = (uint8_t)(0x58 + (r & 7));
  jit_ins_end(a, p);
}

/* ---- arithmetic ---- */

JIT_INLINE void jit_x86_alu_rr(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_reg src) {
  jit_enc_rr(a, 0, w, (uint32_t)op << 3 | 1, 1, src, dst, false);
}

JIT_INLINE void jit_x86_alu_ri(jit_asm *a, jit_alu op, bool w, jit_reg dst, int32_t imm) {
  uint8_t *p = jit_ins_begin(a);
  p = jit_enc_prefix(p, 0, w, 0, JIT_NOREG, dst, false);
  if (jit_fits8(imm)) {
    *p++ = 0x83;
    *p++ = (uint8_t)(0xC0 | (unsigned)op << 3 | (dst & 7));
    *p++ = (uint8_t)imm;
  } else {
    if (dst == JIT_RAX) {
      *p++ = (uint8_t)((unsigned)op << 3 | 5);   /* short form: op eax/rax, imm32 */
    } else {
      *p++ = 0x81;
      *p++ = (uint8_t)(0xC0 | (unsigned)op << 3 | (dst & 7));
    }
    p = jit_put32(p, (uint32_t)imm);
  }
  jit_ins_end(a, p);
}

JIT_INLINE void jit_x86_alu_mi(jit_asm *a, jit_alu op, bool w, jit_mem m, int32_t imm) {
  if (jit_fits8(imm)) jit_enc_rm(a, 0, w, 0x83, 1, op, m, false, (uint32_t)imm, 1);
  else jit_enc_rm(a, 0, w, 0x81, 1, op, m, false, (uint32_t)imm, 4);
}

JIT_INLINE void jit_x86_alu_mr(jit_asm *a, jit_alu op, bool w, jit_mem m, jit_reg src) {
  jit_enc_rm(a, 0, w, (uint32_t)op << 3 | 1, 1, src, m, false, 0, 0);
}

JIT_INLINE void jit_x86_test_rr(jit_asm *a, bool w, jit_reg x, jit_reg y) {
  jit_enc_rr(a, 0, w, 0x85, 1, y, x, false);
}

JIT_INLINE void jit_x86_imul_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src) {
  jit_enc_rr(a, 0, w, 0x0FAF, 2, dst, src, false);
}

JIT_INLINE void jit_x86_imul_rri(jit_asm *a, bool w, jit_reg dst, jit_reg src, int32_t imm) {
  uint8_t *p = jit_ins_begin(a);
  p = jit_enc_prefix(p, 0, w, dst, JIT_NOREG, src, false);
  *p++ = jit_fits8(imm) ? 0x6B : 0x69;
  *p++ = (uint8_t)(0xC0 | (dst & 7) << 3 | (src & 7));
  if (jit_fits8(imm)) *p++ = (uint8_t)imm;
  else p = jit_put32(p, (uint32_t)imm);
  jit_ins_end(a, p);
}

JIT_INLINE void jit_x86_unary(jit_asm *a, jit_unary op, bool w, jit_reg r) {
  jit_enc_rr(a, 0, w, 0xF7, 1, op, r, false);
}

JIT_INLINE void jit_x86_shift_ri(jit_asm *a, jit_shift op, bool w, jit_reg r, uint8_t imm) {
  uint8_t *p = jit_ins_begin(a);
  p = jit_enc_prefix(p, 0, w, 0, JIT_NOREG, r, false);
  *p++ = 0xC1;
  *p++ = (uint8_t)(0xC0 | (unsigned)op << 3 | (r & 7));
  *p++ = imm;
  jit_ins_end(a, p);
}

JIT_INLINE void jit_x86_shift_cl(jit_asm *a, jit_shift op, bool w, jit_reg r) {
  jit_enc_rr(a, 0, w, 0xD3, 1, op, r, false);
}

/* BMI2 shifts by a register (count taken mod the width). */
JIT_INLINE void jit_x86_shiftx(jit_asm *a, jit_shiftx op, bool w, jit_reg dst, jit_reg src,
                               jit_reg count) {
  unsigned pp = op == JIT_SHLX ? 1 : op == JIT_SHRX ? 3 : 2;
  jit_ins_end(a, jit_enc_vex(a, 2, pp, w, dst, count, src, 0xF7));
}

JIT_INLINE void jit_x86_rorx(jit_asm *a, bool w, jit_reg dst, jit_reg src, uint8_t imm) {
  uint8_t *p = jit_enc_vex(a, 3, 3, w, dst, 0, src, 0xF0);
  *p++ = imm;
  jit_ins_end(a, p);
}

/* hi:lo = rdx * src, unsigned, 64-bit, flags untouched (BMI2); hi != lo. */
JIT_INLINE void jit_x86_mulx(jit_asm *a, jit_reg hi, jit_reg lo, jit_reg src) {
  jit_ins_end(a, jit_enc_vex(a, 2, 3, true, hi, lo, src, 0xF6));
}

/* dst = ~src1 & src2 (BMI1). */
JIT_INLINE void jit_x86_andn(jit_asm *a, bool w, jit_reg dst, jit_reg src1, jit_reg src2) {
  jit_ins_end(a, jit_enc_vex(a, 2, 0, w, dst, src1, src2, 0xF2));
}

JIT_INLINE void jit_x86_bitop(jit_asm *a, jit_bitop op, bool w, jit_reg dst, jit_reg src) {
  uint32_t code = op == JIT_POPCNT ? 0x0FB8 : op == JIT_TZCNT ? 0x0FBC : 0x0FBD;
  jit_enc_rr(a, op == JIT_BSR ? 0 : 0xF3, w, code, 2, dst, src, false);
}

JIT_INLINE void jit_x86_bswap(jit_asm *a, bool w, jit_reg r) {
  uint8_t *p = jit_ins_begin(a);
  p = jit_enc_prefix(p, 0, w, 0, JIT_NOREG, r, false);
  *p++ = 0x0F;
  *p++ = (uint8_t)(0xC8 + (r & 7));
  jit_ins_end(a, p);
}

/* Sign-extend rax into rdx (cqo) or eax into edx (cdq). */
JIT_INLINE void jit_x86_cqo(jit_asm *a, bool w) {
  uint8_t *p = jit_ins_begin(a);
  if (w) *p++ = 0x40 | JIT_REX_W;
  *p++ = 0x99;
  jit_ins_end(a, p);
}

JIT_INLINE void jit_x86_setcc(jit_asm *a, jit_cc cc, jit_reg r8) {
  jit_enc_rr(a, 0, false, 0x0F90u | cc, 2, 0, r8, true);
}

JIT_INLINE void jit_x86_cmov(jit_asm *a, jit_cc cc, bool w, jit_reg dst, jit_reg src) {
  jit_enc_rr(a, 0, w, 0x0F40u | cc, 2, dst, src, false);
}

/* ---- control flow ---- */

/* Jumps by offset rather than label (cc JIT_ALWAYS: jmp).  _at goes to an
** offset already emitted (rel8 when it reaches); _forward emits a rel32
** to code not emitted yet and returns the offset of the field for
** jit_asm_patch_rel32(a, field, target offset). */
JIT_INLINE void jit_x86_jcc_at(jit_asm *a, jit_cc cc, size_t target) {
  uint8_t *p = jit_ins_begin(a);
  int64_t d = (int64_t)target - (int64_t)(jit_asm_pos(a) + 2);
  if (jit_fits8(d)) {
    *p++ = cc == JIT_ALWAYS ? 0xEB : (uint8_t)(0x70 | cc);
    *p++ = (uint8_t)d;
  } else if (cc == JIT_ALWAYS) {
    *p++ = 0xE9;
    p = jit_put32(p, (uint32_t)(int32_t)(d - 3));
  } else {
    *p++ = 0x0F;
    *p++ = (uint8_t)(0x80 | cc);
    p = jit_put32(p, (uint32_t)(int32_t)(d - 4));
  }
  jit_ins_end(a, p);
}

/* The same to an offset already emitted, always rel32 (a fixed length). */
JIT_INLINE void jit_x86_jcc_rel32(jit_asm *a, jit_cc cc, size_t target) {
  uint8_t *p = jit_ins_begin(a);
  if (cc == JIT_ALWAYS) {
    *p++ = 0xE9;
  } else {
    *p++ = 0x0F;
    *p++ = (uint8_t)(0x80 | cc);
  }
  int64_t end = (int64_t)jit_asm_pos(a) + (cc == JIT_ALWAYS ? 5 : 6);
  jit_ins_end(a, jit_put32(p, (uint32_t)(int32_t)((int64_t)target - end)));
}

JIT_INLINE size_t jit_x86_jcc_forward(jit_asm *a, jit_cc cc) {
  uint8_t *p = jit_ins_begin(a);
  if (cc == JIT_ALWAYS) {
    *p++ = 0xE9;
  } else {
    *p++ = 0x0F;
    *p++ = (uint8_t)(0x80 | cc);
  }
  p = jit_put32(p, 0);
  jit_ins_end(a, p);
  return jit_asm_pos(a) - 4;
}

JIT_INLINE void jit_asm_patch_rel32(jit_asm *a, size_t field, size_t target) {
  if (a->oom) return;
  jit_put32(a->code + field, (uint32_t)(int32_t)((int64_t)target - (int64_t)(field + 4)));
}

/* A jump to a label: direct when it is bound, else rel32 with a fixup. */
JIT_INLINE void jit_x86_jcc(jit_asm *a, jit_cc cc, jit_label l) {
  if (jit_label_bound(a, l)) {
    jit_x86_jcc_at(a, cc, a->labels[l]);
    return;
  }
  size_t field = jit_x86_jcc_forward(a, cc);
  jit_asm_add_fixup(a, (uint32_t)field, l, 4);
}
JIT_INLINE void jit_x86_jmp(jit_asm *a, jit_label l) { jit_x86_jcc(a, JIT_ALWAYS, l); }

/* Short forms for nearby forward labels (checked at finish). */
JIT_INLINE void jit_x86_jcc8(jit_asm *a, jit_cc cc, jit_label l) {
  uint8_t *p = jit_ins_begin(a);
  *p++ = cc == JIT_ALWAYS ? 0xEB : (uint8_t)(0x70 | cc);
  *p++ = 0;
  jit_ins_end(a, p);
  jit_asm_add_fixup(a, (uint32_t)jit_asm_pos(a) - 1, l, 1);
}
JIT_INLINE void jit_x86_jmp8(jit_asm *a, jit_label l) { jit_x86_jcc8(a, JIT_ALWAYS, l); }
void jit_x86_call(jit_asm *a, jit_label l);

JIT_INLINE void jit_x86_jmp_r(jit_asm *a, jit_reg r) { jit_enc_rr(a, 0, false, 0xFF, 1, 4, r, false); }
JIT_INLINE void jit_x86_call_r(jit_asm *a, jit_reg r) { jit_enc_rr(a, 0, false, 0xFF, 1, 2, r, false); }
JIT_INLINE void jit_x86_jmp_m(jit_asm *a, jit_mem m) {
  jit_enc_rm(a, 0, false, 0xFF, 1, 4, m, false, 0, 0);
}
JIT_INLINE void jit_x86_ret(jit_asm *a) {
  uint8_t *p = jit_ins_begin(a);
  *p++ = 0xC3;
  jit_ins_end(a, p);
}
/* rdgsbase / wrgsbase r64 (FSGSBASE) */
JIT_INLINE void jit_x86_rdgsbase(jit_asm *a, jit_reg r) {
  jit_enc_rr(a, 0xF3, true, 0x0FAE, 2, 1, r, false);
}
JIT_INLINE void jit_x86_wrgsbase(jit_asm *a, jit_reg r) {
  jit_enc_rr(a, 0xF3, true, 0x0FAE, 2, 3, r, false);
}

/* Pad with int3 up to a multiple of n bytes. */
void jit_asm_align(jit_asm *a, unsigned n);
/* Pad with multi-byte nops (executed: code falls through them) to a
** multiple of n (a power of two, at most 64). */
void jit_x86_nop_align(jit_asm *a, unsigned n);
/* Raw 32-bit data (tables placed in the code). */
JIT_INLINE void jit_asm_u32(jit_asm *a, uint32_t v) { jit_ins_end(a, jit_put32(jit_ins_begin(a), v)); }
/* Address-size prefix (67) for the next instruction: 32-bit addressing,
** the sum wrapping modulo 2^32 before a segment base is added. */
JIT_INLINE void jit_x86_addr32(jit_asm *a) {
  uint8_t *p = jit_ins_begin(a);
  *p++ = 0x67;
  jit_ins_end(a, p);
}
/* dst = dst op [m] (the reg, r/m direction: opcode op * 8 + 3). */
JIT_INLINE void jit_x86_alu_rm(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_mem m) {
  jit_enc_rm(a, 0, w, (uint32_t)op << 3 | 3, 1, dst, m, false, 0, 0);
}

#endif
