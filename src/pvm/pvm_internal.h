/*
** Private helpers shared by the PVM engine modules (and the JIT, which
** reads the same tables and program analysis).
*/
#ifndef NUB_PVM_INTERNAL_H
#define NUB_PVM_INTERNAL_H

#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "nub/pvm.h"

#define PVM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PVM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Fill err (if any) and return code. */
int pvm_fail(nub_pvm_error *err, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline uint64_t pvm_le_read(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static inline void pvm_le_write(uint8_t *p, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Make room for need elements in a realloc'ed array of *cap; false on OOM. */
static inline bool pvm_grow(void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap) return true;
  uint64_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  void *np = ncap <= UINT32_MAX ? realloc(*p, ncap * elem) : NULL;
  if (!np) return false;
  *p = np;
  *cap = (uint32_t)ncap;
  return true;
}

/* X_n (A.16): sign-extend an n-byte little-endian value to 64 bits. */
static inline uint64_t pvm_sext(uint64_t v, unsigned n) {
  if (n == 0) return 0;
  if (n >= 8) return v;
  unsigned sh = 64 - 8 * n;
  return (uint64_t)((int64_t)(v << sh) >> sh);
}

/* ---- decoding (A.5): the one decoder, inline for the walks of program
** analysis, the interpreter's pre-decoding and the JIT ---- */

/* skip(pc): the distance to the next bitmask start, at most 24 and never
** past the end of the code.  Where 8 bytes of bitmask can be read at once
** (all but the last few of the code) one ctz finds it; profiling showed the
** bit-by-bit loop at 5 % of a load + compile. */
static inline uint32_t pvm_skip(const nub_pvm_blob *b, uint32_t pc) {
  uint64_t at = (uint64_t)pc + 1, byte = at >> 3, mask_len = ((uint64_t)b->code_len + 7) / 8;
  if (at + 64 <= b->code_len) {           /* the usual case: no end to clamp to */
    uint64_t w;
    memcpy(&w, b->bitmask + byte, 8);
    return (uint32_t)__builtin_ctzll((w >> (at & 7)) | (1ull << PVM_MAX_SKIP));
  }
  if (at >= b->code_len) return 0;
  if (byte + 8 <= mask_len) {
    uint64_t w;
    memcpy(&w, b->bitmask + byte, 8);
    w >>= at & 7;                         /* >= 57 bits left: more than 24 */
    uint64_t j = w ? (uint64_t)__builtin_ctzll(w) : 64, room = b->code_len - at;
    if (j > PVM_MAX_SKIP) j = PVM_MAX_SKIP;
    return (uint32_t)(j < room ? j : room);
  }
  uint32_t j = 0;
  while (j < PVM_MAX_SKIP) {
    uint64_t a = at + j;
    if (a >= b->code_len || ((b->bitmask[a >> 3] >> (a & 7)) & 1)) break;
    j++;
  }
  return j;
}

/* zeta (A.4): code followed by zeros. */
static inline void pvm_zeta(const nub_pvm_blob *b, uint64_t at, uint8_t *dst, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    dst[i] = at + i < b->code_len ? b->code[at + i] : 0;
}

static inline unsigned pvm_min4(int64_t n) { return n < 0 ? 0 : n > 4 ? 4 : (unsigned)n; }
static inline uint8_t pvm_reg(unsigned v) { return (uint8_t)(v > 12 ? 12 : v); }

/* n (0..8) little-endian bytes at p; 8 bytes must be readable there (the
** decoder's window always has them). */
static inline uint64_t pvm_imm_read(const uint8_t *p, unsigned n) {
  uint64_t v;
  memcpy(&v, p, 8);
  return n >= 8 ? v : v & ((1ull << (8 * n)) - 1);
}

/* Decode the instruction at pc with the profile's table (nub_pvm_decode). */
static inline __attribute__((always_inline)) void pvm_decode(const nub_pvm_opinfo *isa, const nub_pvm_blob *b, uint32_t pc,
                              nub_pvm_insn *in) {
  uint8_t zbuf[1 + PVM_MAX_SKIP + 8];   /* opcode, up to 24 bytes, slack for reads */
  const uint8_t *z = zbuf;
  const nub_pvm_opinfo *info;
  uint32_t l = pvm_skip(b, pc);
  if ((uint64_t)pc + sizeof zbuf <= b->code_len) z = b->code + pc;   /* no zeros to add */
  else pvm_zeta(b, pc, zbuf, sizeof zbuf);
  memset(in, 0, sizeof *in);
  in->pc = pc;
  in->len = 1 + l;
  in->opcode = z[0];
  info = &isa[z[0]];
  if (!nub_pvm_blob_is_start(b, pc) || !info->name) {
    in->op = PVM_OP_INVALID;
    in->format = PVM_FMT_NONE;
    return;
  }
  in->op = info->op;
  in->format = info->format;
  switch ((nub_pvm_format)info->format) {
  case PVM_FMT_NONE:
    break;
  case PVM_FMT_IMM:
    in->lx = (uint8_t)pvm_min4(l);
    in->imm_x = pvm_sext(pvm_imm_read(z + 1, in->lx), in->lx);
    break;
  case PVM_FMT_REG_IMM64:
    in->raw_ra = z[1];
    in->ra = pvm_reg(z[1] & 15);
    in->lx = 8;
    in->imm_x = pvm_imm_read(z + 2, 8);
    break;
  case PVM_FMT_IMM_IMM:
    in->lx = (uint8_t)pvm_min4(z[1] % 8);
    in->ly = (uint8_t)pvm_min4((int64_t)l - in->lx - 1);
    in->imm_x = pvm_sext(pvm_imm_read(z + 2, in->lx), in->lx);
    in->imm_y = pvm_sext(pvm_imm_read(z + 2 + in->lx, in->ly), in->ly);
    break;
  case PVM_FMT_OFFSET:
    in->lx = (uint8_t)pvm_min4(l);
    in->imm_x = pvm_sext(pvm_imm_read(z + 1, in->lx), in->lx);
    in->target = (int64_t)pc + (int64_t)in->imm_x;
    break;
  case PVM_FMT_REG_IMM:
    in->raw_ra = z[1];
    in->ra = pvm_reg(z[1] & 15);
    in->lx = (uint8_t)pvm_min4((int64_t)l - 1);
    in->imm_x = pvm_sext(pvm_imm_read(z + 2, in->lx), in->lx);
    break;
  case PVM_FMT_REG_IMM_IMM:
  case PVM_FMT_REG_IMM_OFFSET:
    in->raw_ra = z[1] & 15;
    in->ra = pvm_reg(z[1] & 15);
    in->lx = (uint8_t)pvm_min4((z[1] >> 4) % 8);
    in->ly = (uint8_t)pvm_min4((int64_t)l - in->lx - 1);
    in->imm_x = pvm_sext(pvm_imm_read(z + 2, in->lx), in->lx);
    in->imm_y = pvm_sext(pvm_imm_read(z + 2 + in->lx, in->ly), in->ly);
    if (info->format == PVM_FMT_REG_IMM_OFFSET)
      in->target = (int64_t)pc + (int64_t)in->imm_y;
    break;
  case PVM_FMT_REG_REG:          /* D = low nibble, A = high nibble */
    in->raw_rd = z[1] & 15;
    in->raw_ra = z[1] >> 4;
    in->rd = pvm_reg(z[1] & 15);
    in->ra = pvm_reg(z[1] >> 4);
    break;
  case PVM_FMT_REG_REG_IMM:      /* A = low nibble, B = high nibble */
  case PVM_FMT_REG_REG_OFFSET:
    in->raw_ra = z[1] & 15;
    in->raw_rb = z[1] >> 4;
    in->ra = pvm_reg(z[1] & 15);
    in->rb = pvm_reg(z[1] >> 4);
    in->lx = (uint8_t)pvm_min4((int64_t)l - 1);
    in->imm_x = pvm_sext(pvm_imm_read(z + 2, in->lx), in->lx);
    if (info->format == PVM_FMT_REG_REG_OFFSET)
      in->target = (int64_t)pc + (int64_t)in->imm_x;
    break;
  case PVM_FMT_REG_REG_IMM_IMM:
    in->raw_ra = z[1] & 15;
    in->raw_rb = z[1] >> 4;
    in->ra = pvm_reg(z[1] & 15);
    in->rb = pvm_reg(z[1] >> 4);
    in->lx = (uint8_t)pvm_min4(z[2] % 8);
    in->ly = (uint8_t)pvm_min4((int64_t)l - in->lx - 2);
    in->imm_x = pvm_sext(pvm_imm_read(z + 3, in->lx), in->lx);
    in->imm_y = pvm_sext(pvm_imm_read(z + 3 + in->lx, in->ly), in->ly);
    break;
  case PVM_FMT_REG_REG_REG:      /* D = whole third byte */
    in->raw_ra = z[1] & 15;
    in->raw_rb = z[1] >> 4;
    in->raw_rd = z[2];
    in->ra = pvm_reg(z[1] & 15);
    in->rb = pvm_reg(z[1] >> 4);
    in->rd = pvm_reg(z[2]);
    break;
  case PVM_FMT_COUNT:
    break;
  }
}

/* n bytes at p, n clamped to 0..4, sign-extended to 32 bits; 4 bytes must
** be readable.  n from -8 to PVM_MAX_SKIP + 1 (a skip less the bytes
** before the immediate): the clamp is folded into the tables (pvm_min4's
** two compares were 2 % of a compile).  The JIT's decoders and
** pvm_decode_target read immediates and offsets with it. */
static inline uint32_t pvm_imm32_clamp(const uint8_t *p, int n) {
  _Static_assert(PVM_MAX_SKIP == 24, "pvm_imm32_clamp's tables: n = 4..25 is 22 entries");
#define PVM_IMM_X11(v) v, v, v, v, v, v, v, v, v, v, v
  static const uint32_t mask[8 + 1 + PVM_MAX_SKIP + 1] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFFFF, 0xFFFFFF, PVM_IMM_X11(0xFFFFFFFF),
    PVM_IMM_X11(0xFFFFFFFF)};
  static const uint32_t sign[8 + 1 + PVM_MAX_SKIP + 1] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x8000, 0x800000, PVM_IMM_X11(0x80000000),
    PVM_IMM_X11(0x80000000)};
#undef PVM_IMM_X11
  uint32_t v;
  memcpy(&v, p, 4);
  return ((v & mask[n + 8]) ^ sign[n + 8]) - sign[n + 8];
}

/* The target pvm_decode gives the instruction at pc (a start, of a valid
** opcode whose table entry is info, skip l), and nothing else: the three
** formats with an offset read as pvm_decode reads them, 0 for any other
** (test_gas_model compares the two on random bytes).  Program analysis
** needs only a branch's target; the whole decode cost it about 135 host
** instructions a branch.  One rule for the three formats, from tables
** (the offset starts 1, 2 or 2 + lx bytes in and takes what the skip
** leaves, at most 4): as a switch, the format's compares were taken at
** random in real code (doom: jump, branch_eq_imm, branch_lt_u, ...). */
static inline int64_t pvm_decode_target(const nub_pvm_opinfo *info, const nub_pvm_blob *b,
                                        uint32_t pc, uint32_t l) {
  static const uint8_t at[PVM_FMT_COUNT] = {
    [PVM_FMT_OFFSET] = 1, [PVM_FMT_REG_IMM_OFFSET] = 2, [PVM_FMT_REG_REG_OFFSET] = 2};
  static const uint8_t lx_mask[PVM_FMT_COUNT] = {[PVM_FMT_REG_IMM_OFFSET] = 7};
  static const uint8_t min4[8] = {0, 1, 2, 3, 4, 4, 4, 4};
  uint8_t zbuf[16];                     /* opcode, 2 + 4 bytes, 4 read as a word */
  const uint8_t *z = zbuf;
  if ((uint64_t)pc + sizeof zbuf <= b->code_len) z = b->code + pc;
  else pvm_zeta(b, pc, zbuf, sizeof zbuf);
  unsigned f = info->format, start = at[f] + min4[(z[1] >> 4) & lx_mask[f]];
  int32_t off = (int32_t)pvm_imm32_clamp(z + start, (int)l + 1 - (int)start);
  return at[f] ? (int64_t)pc + off : 0;
}

/* ---- instruction formats ---- */

/* Operands of an instruction format, in assembler order (docs/asm.md). */
typedef enum pvm_opnd {
  PVM_OPND_END = 0,
  PVM_OPND_RA, PVM_OPND_RB, PVM_OPND_RD,
  PVM_OPND_X, PVM_OPND_Y,        /* immediates nu_X, nu_Y */
  PVM_OPND_TARGET,               /* branch target; its offset is field `offset` */
} pvm_opnd;

/* Encoding facts of one format (A.5): what the builder, the assembler and
** the disassembler share. */
typedef struct pvm_format_info {
  uint8_t operands[4];     /* pvm_opnd, END-terminated when shorter */
  uint8_t fixed;           /* bytes before the immediates: opcode, reg and length bytes */
  uint8_t offset;          /* PVM_OPND_X / _Y holding the branch offset, or END */
  uint8_t trailing;        /* PVM_OPND_X / _Y whose length is what the
                              instruction length leaves over, or END */
  uint8_t has_x, has_y;    /* immediates present */
} pvm_format_info;

const pvm_format_info *pvm_format_info_of(nub_pvm_format f);

/* Register fields as the decoder reads them: most are nibbles; the first
** byte of the reg+imm formats is all register field (the decoder ignores
** its high nibble), and rd of the three-register format is a whole byte. */
typedef enum pvm_regfield { PVM_REGF_NIBBLE, PVM_REGF_LOW_NIBBLE_BYTE, PVM_REGF_BYTE } pvm_regfield;
pvm_regfield pvm_format_regfield(nub_pvm_format f, pvm_opnd reg);
/* Register a raw field value decodes to, -1 if the field cannot hold it. */
int pvm_regfield_decode(pvm_regfield kind, unsigned raw);

/* ---- encoding ---- */

#define PVM_INSN_MAX_BYTES (1u + PVM_MAX_SKIP)   /* an instruction spans at most this */
#define PVM_ENC_MAX_BYTES  11u                   /* longest encoding the builder writes */

/* One instruction with every encoding choice made. */
typedef struct pvm_enc {
  uint8_t opcode, format;
  uint8_t raw_a, raw_b, raw_d;   /* register fields as encoded */
  uint8_t wx, wy;                /* immediate widths (load_imm_64: wx = 8) */
  uint64_t x, y;                 /* immediates; offsets relative to the pc */
} pvm_enc;

/* Writes the encoding to out (>= PVM_ENC_MAX_BYTES); returns its length. */
unsigned pvm_enc_write(const pvm_enc *e, uint8_t *out);
/* Shortest width (0..4) whose sign extension gives v; 5 if none. */
unsigned pvm_imm_width(uint64_t v);
static inline bool pvm_imm_fits(uint64_t v, unsigned w) {
  return w >= 8 || pvm_sext(v & ((1ull << (8 * w)) - 1), w) == v;
}

/* Shortest offset width for a branch whose offset is off with a cur-byte
** offset field; moves: the target lies after the branch, so the offset
** changes with the branch's own size. */
unsigned pvm_offset_width(int64_t off, unsigned cur, bool moves);

/* The builder's first error, as the assembler needs it: which operand
** (pvm_opnd; END when none) and the message without the "instruction N"
** prefix.  err->offset is the instruction index, or the jump table entry
** index when err->code is PVM_ERR_JUMP_TABLE.  Returns err->code. */
int pvm_builder_error(const nub_pvm_builder *b, nub_pvm_error *err, int *operand);
/* Number of code items added so far (the index of the next one). */
uint32_t pvm_builder_item_count(const nub_pvm_builder *b);

/* ---- gas cost model (GP 0.8.0 A.9 / A.10; docs/gas.md) ---- */

/* How a profile charges gas. */
typedef struct pvm_gas_rules {
  bool pipeline;           /* A.9 block simulation; else 1 per instruction */
  uint8_t mem_cycles;      /* m (A.10): cycles of a load */
  bool first_run_check;    /* 0.8.0 deblob: v_blob over the whole code */
} pvm_gas_rules;

const pvm_gas_rules *pvm_gas_rules_of(nub_pvm_profile profile);

/* A.10 row of one op.  Cycles are `cycles`, or m for PVM_CYC_MEM, or b
** (1 or 20) for PVM_CYC_BRANCH; decode slots are `slots`, or
** `slots_overlap` when the rule's overlap holds (P: a source is also a
** destination; PS: rA = rD).  src/dst name the register fields read and
** written (PVM_ROLE_*), units are the execution units as one byte each
** (A, L, S, M, D from the low byte). */
enum { PVM_CYC_FIXED, PVM_CYC_MEM, PVM_CYC_BRANCH };
enum { PVM_SLOTS_FIXED, PVM_SLOTS_P, PVM_SLOTS_PS };
enum { PVM_ROLE_A = 1, PVM_ROLE_B = 2, PVM_ROLE_D = 4 };
typedef struct pvm_gas_row {
  uint8_t cycles, cycle_rule;
  uint8_t slots, slots_overlap, slot_rule;
  uint8_t src, dst;
  uint64_t units;
} pvm_gas_row;

/* Indexed by nub_pvm_op; every op has a row. */
extern pvm_gas_row pvm_gas_rows[PVM_OP_COUNT];

/* Units as the simulation counts them per cycle, one byte: A in bits 0-3,
** M in 4-5, D in 6-7.  L and S always come with an A (test_gas checks
** the rows), so they never run short before A does and are not counted. */
static inline uint8_t pvm_gas_use_of(uint64_t units) {
  return (uint8_t)((units & 0xf) | (units >> 20 & 0x30) | (units >> 26 & 0xc0));
}

/* One instruction as the simulation sees it, packed in a word (built
** and read in registers; a struct of bytes would make every store to it
** alias whatever the compiler holds): cycles and decode slots resolved,
** move_reg or not, registers by number (at most two sources, one
** destination; PVM_GAS_NO_SRC / _NO_DST when a role is absent), units as
** pvm_gas_use_of. */
#define PVM_GAS_NO_SRC 14
#define PVM_GAS_NO_DST 15
typedef uint64_t pvm_gas_insn;
enum { PVM_GI_CYCLES = 0, PVM_GI_SLOTS = 8, PVM_GI_MOVE = 16, PVM_GI_SRC0 = 24, PVM_GI_SRC1 = 32,
       PVM_GI_DST = 40, PVM_GI_USE = 48 };
#define PVM_GI(x, field) ((unsigned)((x) >> PVM_GI_##field) & 0xffu)
static inline pvm_gas_insn pvm_gas_insn_make(unsigned cycles, unsigned slots, bool move,
                                             unsigned src0, unsigned src1, unsigned dst,
                                             unsigned use) {
  return (uint64_t)cycles << PVM_GI_CYCLES | (uint64_t)slots << PVM_GI_SLOTS |
         (uint64_t)move << PVM_GI_MOVE | (uint64_t)src0 << PVM_GI_SRC0 |
         (uint64_t)src1 << PVM_GI_SRC1 | (uint64_t)dst << PVM_GI_DST | (uint64_t)use << PVM_GI_USE;
}

/* What program analysis needs of one opcode byte under a profile, so the
** walk reads one row per instruction (isa.c derives it from the opcode
** table and the A.10 row): flags; the instruction's record with m
** resolved and its registers 0 (cycles 0 under PVM_GOP_BRANCH_CYCLES,
** where b decides); what overlap takes off the decode slots; and its
** register pattern's table.  An invalid byte is costed as trap.
**
** Registers sit in the byte after the opcode (nibbles), except rD of the
** three-register format (the byte after).  A pattern is where src0, src1
** and dst come from plus the slot rule; its table's entry [byte] is the
** record's register bytes for that byte after the opcode (absent
** roles NO_SRC / NO_DST, PVM_GAS_REG_BITS) and whether the slot rule's
** overlap holds: bit 63, or, when dst is the byte after (dst_mask 15,
** its dst byte 0 in the entry), bit 48 + d for each rD = d (0..12) that
** overlaps.  So the walk takes d = min(byte after, 12) & dst_mask and
** tests bit overlap_at + d: no branch on the format. */
/* What the fast placer (pvm_gas_fast_entry) needs of an entry's row,
** read where it is used (pvm_gas_place_of): its cycles as a mask from
** bit 0 and the cell offsets of a start from which they stay in the
** cells (off < span_limit; both 0 for an entry longer than
** PVM_GAS_SHORT, which the search places: no shift or compare per
** entry), its cycles, and the planes it uses as byte offsets in the
** placer's state (PVM_GAS_CELLS_AT): A_(4-j) for its j ALUs (A_(5-j),
** what it cannot take, is the next plane), the M, D or neither plane it
** tests, and the one it marks (no row takes both M and D). */
typedef struct pvm_gas_place {
  uint64_t cycle_mask;
  uint16_t span_limit;
  uint16_t from_cells, test_cells, mark_cells;
  uint8_t cycles;
} pvm_gas_place;

enum {
  PVM_GOP_VALID = 1,       /* an instruction of the profile */
  PVM_GOP_TERM = 2,        /* a terminator (T, A.3) */
  PVM_GOP_BRANCH = 4,      /* has a static target */
  PVM_GOP_ENDS = 8,        /* ends a gas block: a terminator or invalid */
  PVM_GOP_BRANCH_CYCLES = 16, /* cycles are b (1 or 20) */
  PVM_GOP_MOVE = 32,       /* move_reg (Xi^mov) */
  PVM_GOP_STOP = 64,       /* no opcode's: program analysis's sentinel after its notes */
};
#define PVM_GAS_OVERLAP (1ull << 63)
#define PVM_GAS_OVERLAP_NEXT 48      /* bits 48..60: overlap for rD = 0..12 */
#define PVM_GAS_REG_BITS (0xffffffull << PVM_GI_SRC0)
/* The fast placer's view of an entry's registers for one value of the
** byte after the opcode: src0, src1 and dst (dst 0 when rD is the byte
** after), each a byte (a load each), and whether the slot rule's overlap
** holds, bit rD for rD = 0..12 (all alike unless rD is the byte after).
** One table per register pattern and slot rule, the slot counts in the
** row, and 6 bytes an entry: the tables a program uses stay in L1
** (callgrind's cache simulation, the mixed program: 16-byte entries, one
** table per slot counts, 127 k misses on them; 6-byte ones 13 k; 8-byte
** ones, an index as an address's scale, saved 0.3 M host instructions
** of 40 M, added 20 k misses and were slower by the clock). */
typedef struct pvm_gas_regs {
  uint8_t src0, src1, dst;
  uint16_t overlap;
} pvm_gas_regs;

typedef struct pvm_gas_op {
  _Alignas(64) pvm_gas_insn insn;   /* 64 bytes a row: its index is a shift */
  const uint64_t *regs;    /* the pattern's 256 entries */
  uint8_t flags, overlap_saves;
  uint8_t dst_mask;        /* 15 when dst is the second byte after the opcode, else 0 */
  uint8_t overlap_at;      /* 63, or PVM_GAS_OVERLAP_NEXT when dst_mask is 15 */
  /* the same for the fast placer (pvm_gas_fast_try): move_reg, its
  ** slots, its pattern's table, rD for each value of the second byte after the
  ** opcode (min(byte, 12) when rD is that byte, else all 0) and what it
  ** places (cycles, ALUs taken, the M or D cells it tests and marks) */
  uint8_t move;
  uint8_t slots_of[2];     /* decode slots without and with the overlap */
  const pvm_gas_regs *fast_regs;
  const uint8_t *rd_of;
  pvm_gas_place place;
} pvm_gas_op;

/* 256 rows for the profile's opcode bytes, then the same for b = 20
** and for b = 1 (rows under PVM_GOP_BRANCH_CYCLES: the walk moves to
** those once it knows b, so what it reads of the row has one source). */
#define PVM_GAS_OPS_HOT 256
#define PVM_GAS_OPS_COLD 512
const pvm_gas_op *pvm_gas_ops(nub_pvm_profile profile);

/* The reorder-buffer simulation of one block (A.9), fed instruction by
** instruction during program analysis (gas.c explains the method).
** Entry i of the block lives in ring slot i % 64; a slot mask has bit j
** for slot j.  Zero-initialised is a valid state to begin from. */
#define PVM_GAS_ROB 32
#define PVM_GAS_SLOTS 64     /* ring slots: twice the buffer, see gas.c */
#define PVM_GAS_CELLS 512    /* cycles the schedule can look ahead */
#define PVM_GAS_REBASE (1u << 30) /* the time line starts over past this cycle */
typedef struct pvm_gas_sim {
  uint32_t origin;         /* the block's cycle 0 on the time line (gas.c) */
  uint32_t exact_count;    /* times a block went to simulating, over all blocks (for tests) */
  uint32_t resume_count;   /* times a block went back to placing, over all blocks */
  uint32_t n;              /* reorder-buffer entries decoded so far */
  uint32_t cycle;          /* the cycle decoding is in */
  uint32_t decode_left;    /* decode slots left in it */
  bool exact;              /* the schedule conflicted: simulating cycles */
  bool resumed;            /* this block went back from simulating to placing */
  uint32_t sched;          /* exact: first cycle whose starts are not yet decided */
  uint32_t exact_since;    /* exact: entries decoded when it last conflicted */
  uint32_t exact_wait;     /* entries to simulate after a conflict before placing again */
  uint32_t resumed_at;     /* entries decoded when it last went back to placing */
  uint32_t started;        /* entries [0, started) have all started */
  uint32_t last_done;      /* latest done over entries [0, started) */
  uint64_t waiting;        /* exact: decoded entries not started */
  uint64_t running;        /* exact: started entries not yet at 0 cycles left */
  uint32_t base, dirty;    /* schedule: the cells hold cycles [base, base + CELLS), zero from dirty */
  uint32_t holder[16];     /* the entry whose clobbered set holds register r (gas.c) */
  uint32_t holder_done[16]; /* schedule: that entry's done (0 for none) */
  uint32_t start[PVM_GAS_SLOTS];     /* the cycle it starts */
  uint32_t done[PVM_GAS_SLOTS];      /* the cycle it reaches 0 cycles left */
  uint32_t ready[PVM_GAS_SLOTS];     /* the cycle after its decode: WAIT from then */
  uint32_t prefix_done[PVM_GAS_SLOTS]; /* latest done of it and every older entry */
  uint32_t src_holder[PVM_GAS_SLOTS][2]; /* the holders of its sources at its decode */
  uint8_t cycles[PVM_GAS_SLOTS];
  uint8_t units[PVM_GAS_SLOTS];      /* pvm_gas_use_of */
  uint64_t deps[PVM_GAS_SLOTS];      /* exact: live entries it depends on */
  uint64_t blocked;        /* exact: waiting entries with a dependency waiting too */
  uint64_t dependents[PVM_GAS_SLOTS]; /* exact, of a waiting entry: the blocked ones it holds up */
  uint32_t at[PVM_GAS_SLOTS];        /* exact, of a waiting entry not blocked: ready and its
                                        dependencies done, the first cycle it may start */
  _Alignas(8) uint8_t use[PVM_GAS_CELLS + 8];    /* schedule: units in use in cycle t at t % CELLS */
  _Alignas(8) uint8_t starts[PVM_GAS_CELLS + 8]; /* schedule: entries starting in it */
} pvm_gas_sim;

void pvm_gas_sim_begin(pvm_gas_sim *s);
/* Feeds count instructions of the block, in order. */
void pvm_gas_sim_feed(pvm_gas_sim *s, const pvm_gas_insn *in, uint32_t count);
/* Runs to convergence; returns the block cost max(cycles - 3, 1). */
uint32_t pvm_gas_sim_end(pvm_gas_sim *s);
/* The block's last count instructions, its cost, and the next block
** begun: feed, end and begin in one call (what program analysis uses). */
uint32_t pvm_gas_sim_block(pvm_gas_sim *s, const pvm_gas_insn *in, uint32_t count);

/* The fast placer (gas.c, docs/gas.md "Third round"): what program
** analysis runs inside its walk.  It places each entry as the schedule
** above does, with the units in use kept as bit planes over cycles
** rather than a count per cycle, and gives up on a block (false) where
** that placing would be wrong or cannot look far enough ahead; the walk
** then runs the block through pvm_gas_sim from its head.
**
** Cells: bit (t - base) % 8 of byte (t - base) / 8 of a plane is cycle
** t, for the cycles [base, base + SPAN); so the cycles of an entry of at
** most 57 cycles are in the 8 bytes from its start's byte, one
** unaligned word.  A_k (k = 1..4) has the cycles in which k or more
** ALUs are taken (a thermometer code: taking j more over a mask is
** A_k |= A_(k-j) & mask, with A_0 and A_-1 all ones); M and D the
** cycles the multiplier and divider are taken.  An entry of j ALUs
** cannot take a cycle of A_(5-j) (A_5 is all zeros).  SINK takes the
** marks of an entry that needs neither M nor D. */
#define PVM_GAS_PLANE 512                  /* bytes of a plane: 8 of them slack */
#define PVM_GAS_SPAN  (8 * (PVM_GAS_PLANE - 8)) /* cycles the cells hold */
#define PVM_GAS_SHORT 57                   /* cycles that fit one word from any start */
enum { PVM_GAS_C_ONES = 0, PVM_GAS_C_A1 = 2, PVM_GAS_C_A4 = 5, PVM_GAS_C_ZEROS = 6,
       PVM_GAS_C_M = 7, PVM_GAS_C_D = 8, PVM_GAS_C_SINK = 9, PVM_GAS_C_PLANES = 10 };
typedef struct pvm_gas_fast {
  uint32_t base;            /* first cycle the cells hold, a multiple of 8 */
  uint32_t slow_count;      /* blocks given up on (for tests) */
  uint32_t search_count;    /* entries not placed in their ready cycle (for tests) */
  uint32_t slide_count;     /* times the cells moved on inside a block (for tests) */
  uint32_t rebase_count;    /* times the time line started over (for tests) */
  uint32_t holder_done[16]; /* done of the entry whose clobbered set holds register r */
  uint32_t prefix_done[PVM_GAS_ROB]; /* entry i at i % 32: latest done of entries 0..i */
  uint8_t cell[PVM_GAS_C_PLANES * PVM_GAS_PLANE]; /* plane i at i * PLANE */
  uint8_t starts[PVM_GAS_SPAN];      /* entries starting in cycle t, at t - base */
} pvm_gas_fast;
/* Where the cells are in the placer's state: the rows' plane offsets
** (pvm_gas_place) count from the state itself, so an entry's cells are
** addressed from the state's pointer (an address of the cells kept
** apart was one more value than the placer's loop has registers for). */
#define PVM_GAS_CELLS_AT offsetof(pvm_gas_fast, cell)

/* What the placer changes for every entry, kept by the caller in a local
** (so in registers: the fields of pvm_gas_fast are reloaded after every
** byte store to the cells). */
typedef struct pvm_gas_clock {
  uint32_t origin;          /* the block's cycle 0 on the time line */
  uint32_t cycle;           /* the cycle decoding is in */
  uint32_t left;            /* decode slots left in it */
  uint32_t n;               /* entries decoded in the block */
  uint32_t last_done;       /* latest done of them (origin when none) */
} pvm_gas_clock;

static inline pvm_gas_place pvm_gas_place_of(unsigned cycles, unsigned use) {
  unsigned m = use >> 4 & 3, d = use >> 6;
  unsigned test = m ? PVM_GAS_C_M : d ? PVM_GAS_C_D : PVM_GAS_C_ZEROS;
  unsigned mark = m ? PVM_GAS_C_M : d ? PVM_GAS_C_D : PVM_GAS_C_SINK;
  bool fits = cycles - 1 < PVM_GAS_SHORT;
  return (pvm_gas_place){
      .cycle_mask = fits ? ~0ull >> (64 - cycles) : 0,
      .span_limit = (uint16_t)(fits ? PVM_GAS_SPAN + 1 - cycles : 0),
      .from_cells = (uint16_t)(PVM_GAS_CELLS_AT + (PVM_GAS_C_A4 - (use & 15)) * PVM_GAS_PLANE),
      .test_cells = (uint16_t)(PVM_GAS_CELLS_AT + test * PVM_GAS_PLANE),
      .mark_cells = (uint16_t)(PVM_GAS_CELLS_AT + mark * PVM_GAS_PLANE),
      .cycles = (uint8_t)cycles};
}

/* The clock starts at {.left = 4}. */
void pvm_gas_fast_init(pvm_gas_fast *f);
/* The entry's start when the inline test does not find it (in its ready
** cycle t, at most SHORT cycles, in the cells): 0 to give up on the
** block. */
uint32_t pvm_gas_fast_search(pvm_gas_fast *f, uint32_t t, unsigned cycles, unsigned from_cells,
                             unsigned test_cells, unsigned mark_cells, uint32_t cycle);
/* Moves the time line to the next block's origin (cells past it zero);
** another origin when it started over (the caller's holders are then met). */
uint32_t pvm_gas_fast_move(pvm_gas_fast *f, uint32_t origin);

static inline uint64_t pvm_gas_word(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline void pvm_gas_or(uint8_t *p, uint64_t bits) {
  uint64_t v = pvm_gas_word(p) | bits;
  memcpy(p, &v, 8);
}

/* An entry placed, to end in cycle done. */
static inline __attribute__((always_inline)) void pvm_gas_fast_done(pvm_gas_fast *f,
                                                                    pvm_gas_clock *k,
                                                                    unsigned dst, uint32_t done) {
  f->holder_done[dst] = done;
  k->last_done = k->last_done > done ? k->last_done : done;
  f->prefix_done[k->n % PVM_GAS_ROB] = k->last_done;
  k->n++;
}

/* The entry placed in cycle t, its ready cycle or later, if its units
** are free there and fewer than 5 entries start (true; a block's last
** entry, `last`, is not marked); false, nothing changed, otherwise, or
** when it is longer than PVM_GAS_SHORT or would run past the cells. */
static inline __attribute__((always_inline)) bool pvm_gas_fast_place_at(
    pvm_gas_fast *f, pvm_gas_clock *k, const pvm_gas_place *pl, unsigned dst, uint32_t t,
    bool last) {
  uint32_t off = t - f->base;
  if (PVM_UNLIKELY(off >= pl->span_limit)) return false;
  uint64_t m = pl->cycle_mask << (off % 8);
  /* the word of A_(5-j) (what the entry cannot take), then A_(4-j)
  ** down to A_(1-j) (what A_4 down to A_1 take): planes PLANE apart */
  uint8_t *cells = (uint8_t *)f + off / 8, *from = cells + pl->from_cells;
  uint8_t *a4 = cells + PVM_GAS_CELLS_AT + PVM_GAS_C_A4 * PVM_GAS_PLANE;
  if (((pvm_gas_word(from + PVM_GAS_PLANE) | pvm_gas_word(cells + pl->test_cells)) & m) ||
      f->starts[off] >= 5)
    return false;
  if (last) {
    uint32_t done = t + pl->cycles;
    k->last_done = k->last_done > done ? k->last_done : done;
    return true;
  }
  pvm_gas_or(a4, pvm_gas_word(from) & m);
  pvm_gas_or(a4 - PVM_GAS_PLANE, pvm_gas_word(from - PVM_GAS_PLANE) & m);
  pvm_gas_or(a4 - 2 * PVM_GAS_PLANE, pvm_gas_word(from - 2 * PVM_GAS_PLANE) & m);
  pvm_gas_or(a4 - 3 * PVM_GAS_PLANE, pvm_gas_word(from - 3 * PVM_GAS_PLANE) & m);
  pvm_gas_or(cells + pl->mark_cells, m);
  f->starts[off]++;
  pvm_gas_fast_done(f, k, dst, t + pl->cycles);
  return true;
}

/* The search's first step (pvm_gas_fast_search), inline: the first cycle
** from t, within 56, whose start cell is free, and the entry placed
** there as pvm_gas_fast_place_at places it.  false, nothing changed,
** when the search must decide: no such cycle, 5 starts there, units
** taken later in its cycles (the search gives up), a long entry or the
** cells' end; the search then finds the same cycle first. */
static inline __attribute__((always_inline)) bool pvm_gas_fast_near(
    pvm_gas_fast *f, pvm_gas_clock *k, const pvm_gas_place *pl, unsigned dst, uint32_t t,
    bool last) {
  uint32_t off = t - f->base;
  if (off >= pl->span_limit) return false;
  const uint8_t *cells = (const uint8_t *)f + off / 8;
  uint64_t free = ~(pvm_gas_word(cells + pl->from_cells + PVM_GAS_PLANE) |
                    pvm_gas_word(cells + pl->test_cells)) >> (off % 8);
  free &= ~0ull >> 8;                      /* the 56 cycles from t */
  return free && pvm_gas_fast_place_at(f, k, pl, dst, t + (uint32_t)__builtin_ctzll(free), last);
}

/* One instruction of the block (cycles >= 1 unless move) decoded, and
** placed in its ready cycle if its units are free there (true; also for
** move_reg).  false: it is not placed, *ready is its ready cycle, for
** pvm_gas_fast_search (so the loop that places a block's entries calls
** nothing, and keeps its values in registers). */
static inline __attribute__((always_inline)) bool pvm_gas_fast_try_as(
    pvm_gas_fast *f, pvm_gas_clock *k, const pvm_gas_place *pl, unsigned slots, bool move,
    unsigned src0, unsigned src1, unsigned dst, uint32_t *ready, bool last) {
  /* the next cycle when the slots do not fit: without a branch, which
  ** would be taken about half the time at random */
  bool next = slots > k->left;
  k->cycle += next;
  k->left = next ? 4 : k->left;
  if (k->n >= PVM_GAS_ROB) {               /* wait until entry n - 32 retires */
    uint32_t free_at = f->prefix_done[k->n % PVM_GAS_ROB] + 2;
    if (free_at > k->cycle) {
      k->cycle = free_at;
      k->left = 4;
    }
  }
  k->left -= slots;
  if (move) {                              /* Xi^mov */
    f->holder_done[dst] = f->holder_done[src0];
    return true;
  }
  uint32_t t = k->cycle + 1, h0 = f->holder_done[src0], h1 = f->holder_done[src1];
  t = t > h0 ? t : h0;
  t = t > h1 ? t : h1;
  if (pvm_gas_fast_place_at(f, k, pl, dst, t, last)) return true;
  *ready = t;
  return false;
}

/* The same for the last entry of a block (last): what it takes is not
** marked, nor its done kept beyond the block's last done, since the next
** block begins once it is done. */
static inline __attribute__((always_inline)) bool pvm_gas_fast_try(
    pvm_gas_fast *f, pvm_gas_clock *k, const pvm_gas_place *pl, unsigned slots, bool move,
    unsigned src0, unsigned src1, unsigned dst, uint32_t *ready) {
  return pvm_gas_fast_try_as(f, k, pl, slots, move, src0, src1, dst, ready, false);
}

/* An entry pvm_gas_fast_try did not place: searched for; false when the
** block must be simulated instead. */
static inline bool pvm_gas_fast_place_later(pvm_gas_fast *f, pvm_gas_clock *k,
                                            const pvm_gas_place *pl, unsigned dst,
                                            uint32_t ready) {
  uint32_t t = pvm_gas_fast_search(f, ready, pl->cycles, pl->from_cells, pl->test_cells,
                                   pl->mark_cells, k->cycle);
  if (!t) return false;
  pvm_gas_fast_done(f, k, dst, t + pl->cycles);
  return true;
}

/* Both: one instruction of the block; false when the block must be
** simulated instead. */
static inline __attribute__((always_inline)) bool pvm_gas_fast_entry(
    pvm_gas_fast *f, pvm_gas_clock *k, const pvm_gas_place *pl, unsigned slots, bool move,
    unsigned src0, unsigned src1, unsigned dst) {
  uint32_t ready;
  return pvm_gas_fast_try(f, k, pl, slots, move, src0, src1, dst, &ready) ||
         pvm_gas_fast_place_later(f, k, pl, dst, ready);
}

/* The block's cost, and the next block begun, unless the cells must
** move on first (0: call pvm_gas_fast_end). */
static inline __attribute__((always_inline)) uint32_t pvm_gas_fast_end_near(pvm_gas_fast *f,
                                                                            pvm_gas_clock *k) {
  uint32_t c = k->last_done + 2 - k->origin, origin = k->last_done;
  if (PVM_UNLIKELY(origin - f->base >= PVM_GAS_SPAN / 2)) return 0;
  k->origin = k->cycle = origin;
  k->left = 4;
  k->n = 0;
  return c > 4 ? c - 3 : 1;
}

/* The block's cost, and the next block begun. */
static inline __attribute__((always_inline)) uint32_t pvm_gas_fast_end(pvm_gas_fast *f,
                                                                       pvm_gas_clock *k) {
  uint32_t c = k->last_done + 2 - k->origin, origin = k->last_done;
  if (PVM_UNLIKELY(origin - f->base >= PVM_GAS_SPAN / 2)) {
    uint32_t moved = pvm_gas_fast_move(f, origin);
    if (moved != origin) memset(f->holder_done, 0, sizeof f->holder_done);  /* all met before 1 */
    origin = moved;
  }
  k->origin = k->cycle = k->last_done = origin;
  k->left = 4;
  k->n = 0;
  return c > 4 ? c - 3 : 1;
}

/* ---- loaded program ---- */

/* Interpreter instruction: 24 bytes, pre-decoded so the hot loop never
** looks at instruction bytes.  Sequential flow is always index + 1:
** synthetic traps fill every place where execution would land on a byte
** that does not start a valid instruction. */
typedef struct pvm_xinsn {
  uint8_t op;              /* nub_pvm_op (INVALID -> trap) */
  uint8_t a, b, d;         /* register indices (meaning per format) */
  uint32_t pc;
  uint32_t imm1;           /* nu_X (sign-extend from 32 bits at use) */
  uint32_t imm2;           /* nu_Y, or high half of load_imm_64 */
  uint32_t target;         /* insn index of a static target, or PVM_NO_TARGET */
  uint32_t gas;            /* charged when a block is entered here, else 0 */
} pvm_xinsn;

#define PVM_NO_TARGET 0xFFFFFFFFu

/* The interpreter's fields of a decoded instruction (target and gas
** are left to the caller).  Inline with pvm_decode, the compiler drops
** what the walk does not read. */
static inline void pvm_xinsn_fill(pvm_xinsn *x, const nub_pvm_insn *in) {
  x->op = in->op == PVM_OP_INVALID ? PVM_OP_TRAP : in->op;
  x->pc = in->pc;
  switch ((nub_pvm_format)in->format) {
  case PVM_FMT_REG_REG:
    x->a = in->ra; x->d = in->rd; x->b = 0;
    break;
  default:
    x->a = in->ra; x->b = in->rb; x->d = in->rd;
    break;
  }
  x->imm1 = (uint32_t)in->imm_x;
  x->imm2 = in->op == PVM_OP_LOAD_IMM_64 ? (uint32_t)(in->imm_x >> 32)
                                         : (uint32_t)in->imm_y;
}


/* One gas block: its head's pc and the cost charged on entering it. */
typedef struct pvm_gas_block {
  uint32_t pc;
  uint32_t cost;
} pvm_gas_block;

/* The instruction sequence every engine walks (A.5): each bitmask start
** in order, a synthetic trap wherever an instruction's skip lands on a
** byte that starts nothing, and a final trap at code_len. */

struct nub_pvm_program {
  nub_pvm_profile profile;
  nub_pvm_blob blob;           /* views into bytes */
  uint8_t *bytes;          /* owned copy of the blob */
  size_t len;
  /* program analysis, built by load in one pass over the code */
  uint8_t *block_start;    /* bitset over code_len + 1 bits (varpi) */
  uint8_t *loop_target;    /* bitset: block starts a branch at or after them targets */
  pvm_gas_block *blocks;   /* every gas block, sorted by pc */
  uint32_t block_count;
  uint32_t insn_count;     /* instructions of the walk, synthetic traps included */
  uint32_t start_count;    /* bitmask starts in the code */
  bool unrunnable;         /* fails 0.8.0's deblob check: every run panics, uncharged */
  /* the last entry cost asked (atomic, one word: VMs on many threads
  ** share a program): pc << 32 | (cost + 1), 0 = none.  A warm invoke
  ** enters at the same pc every time; the lookup was ~100 instructions. */
  uint64_t entry_memo;
  /* the pipeline profiles' costs, placed when first asked (blocks[].cost
  ** 0 until then, read and written atomically): the placer's state and
  ** the blocks it has still to place, under gas_lock; the state is freed
  ** once none are left */
  pthread_mutex_t gas_lock;
  struct pvm_gas_state *gas;
  uint32_t costs_left;
  bool gas_begun;          /* gas holds the placer's state (place_begin) */
  /* the interpreter's pre-decoded form, built on its first use
  ** (pvm_program_prepare_interp), never by a JIT-only load */
  pthread_mutex_t interp_lock;
  bool interp_ready;       /* atomic: insns, window_first, jump_targets are set */
  uint32_t *jump_targets;  /* jump table resolved to insn index or NO_TARGET */
  uint32_t *window_first;  /* [w]: index of the first insn with pc >= 64 w */
  pvm_xinsn *insns;        /* sorted by pc; last is a synthetic trap */
};

/* The cost of gas block k: the pipeline profiles place a stretch of
** blocks from k on when k has none yet (thread-safe; the program's
** memory for it was taken at load, so it cannot fail). */
static inline uint32_t pvm_block_cost_known(const nub_pvm_program *p, uint32_t k) {
  return __atomic_load_n(&p->blocks[k].cost, __ATOMIC_RELAXED);
}
uint32_t pvm_block_cost_slow(const nub_pvm_program *p, uint32_t k);
static inline uint32_t pvm_block_cost(const nub_pvm_program *p, uint32_t k) {
  uint32_t cost = pvm_block_cost_known(p, k);
  return PVM_LIKELY(cost) ? cost : pvm_block_cost_slow(p, k);
}
/* The costs of blocks ks[0..n) placed, each alone (the JIT's loop
** heads, whose checks it then compiles with the cost as an immediate). */
void pvm_program_place_list(const nub_pvm_program *p, const uint32_t *ks, uint32_t n);

/* Builds the interpreter's form once (thread-safe); PVM_OK or NOMEM. */
int pvm_program_prepare_interp(const nub_pvm_program *prog, nub_pvm_error *err);
/* Bytes the form takes (nub_pvm_program_bytes counts them once built). */
size_t pvm_program_interp_bytes(const nub_pvm_program *prog);

/* pc -> instruction index in O(1): window_first gives the first
** instruction of pc's 64-byte window and the bitmask counts the starts
** before pc in it (a few synthetic traps are stepped over).  Needs the
** interpreter's form. */
#define PVM_WINDOW_SHIFT 6
/* Index of the instruction whose pc is the largest <= pc. */
uint32_t pvm_program_index_at(const nub_pvm_program *prog, uint32_t pc);

/* The resume protocol, one home for every engine: where a run continues
** after the last exit (vm->resume).  ENTER charges the entry's block gas
** (nub_pvm_program_entry_cost); RETRY re-runs the faulting instruction
** at pc; NEXT continues at next_pc after a host call; DONE stays
** finished.  A pc that is no bitmask start (or any pc of an unrunnable
** program) panics there: what would run is a trap.  True with the pc to run from in *pc
** (vm->gas already charged); false when the run ends here, with
** vm->status and vm->resume set: the engine returns vm->status. */
bool pvm_vm_resume_pc(nub_pvm_vm *vm, uint32_t *pc);

/* Set bits of x, branch-free.  The build targets every x86-64 (no
** -mpopcnt), where __builtin_popcountll is a call to libgcc's
** __popcountdi2: ~21 instructions plus the call on each warm JIT entry. */
static inline uint32_t pvm_popcount64(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

/* 64 bits of the bitmask: the starts among pcs [64 w, 64 w + 64). */
static inline uint64_t pvm_mask_word(const nub_pvm_blob *b, uint64_t w) {
  uint64_t at = 8 * w, mask_len = ((uint64_t)b->code_len + 7) / 8, v = 0;
  if (at + 8 <= mask_len) {
    memcpy(&v, b->bitmask + at, 8);
  } else {
    for (uint64_t i = 0; at + i < mask_len; i++) v |= (uint64_t)b->bitmask[at + i] << (8 * i);
  }
  return v;
}

/* The next bitmask start at or after pc, or code_len. */
static inline uint32_t pvm_next_start(const nub_pvm_blob *b, uint64_t pc) {
  while (pc < b->code_len) {
    uint64_t w = pc >> 6, bits = pvm_mask_word(b, w) >> (pc & 63);
    if (bits) return (uint32_t)(pc + (uint64_t)__builtin_ctzll(bits));
    pc = (w + 1) << 6;
  }
  return b->code_len;
}

static inline bool pvm_bit_get(const uint8_t *set, uint64_t i) { return (set[i >> 3] >> (i & 7)) & 1; }
static inline void pvm_bit_set(uint8_t *set, uint64_t i) { set[i >> 3] |= (uint8_t)(1u << (i & 7)); }

/* ---- memory ---- */

#define PVM_MEM_WINDOW   (1ull << 32)
#define PVM_MEM_GUARD    (1ull << 16)  /* slack past 4 GiB for wide accesses */

struct nub_pvm_mem {
  uint8_t *base;           /* 4 GiB window + guard, PROT_NONE where unmapped */
  uint8_t *access;         /* PVM_PAGE_COUNT + 1 entries of nub_pvm_access */
  uint32_t mapped_pages;
  uint32_t heap_top, heap_limit;
  uint32_t lo_page, hi_page;  /* bounds of pages ever mapped, for reset */
  int backing_fd;          /* nub_pvm_mem_set_backing, -1 = none */
  uint64_t backing_off;     /* file offset of backing[0] */
  const uint8_t *backing;
  uint64_t backing_size;
  nub_pvm_mem_work work;
};

/* Outcome of a guest access check: PVM_OK, or PVM_PANIC / PVM_FAULT with
** the fault page in *fault.  ro_store_faults is the profile's rule for a
** store to a read-only page (nub_pvm_semantics): fault, or panic. */
int pvm_mem_check(const nub_pvm_mem *mem, uint32_t addr, uint32_t len, bool write,
                  bool ro_store_faults, uint32_t *fault);

/* sbrk (A.5.9): returns the old heap top, 0 when it cannot grow. */
uint64_t pvm_mem_sbrk(nub_pvm_mem *mem, uint64_t size);

#endif
