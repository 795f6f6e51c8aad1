/*
** x86-64 instruction encoding.  Each instruction is written straight into
** the code buffer after one growth check for its longest possible length,
** and only its bytes are counted.  (It used to be assembled in a local
** buffer and copied 8 bytes at a time: the copy read bytes just stored
** one at a time, a store-forwarding stall that perf put at half of the
** encoder's time.)
*/
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "x86.h"

#define PAGE 4096u

#define REX_W 0x08
#define REX_R 0x04
#define REX_X 0x02
#define REX_B 0x01

#define INLINE static inline __attribute__((always_inline))
#define INS_MAX 24u                /* longest sequence one ins may write */

typedef struct ins {
  uint8_t *b;              /* where the bytes go: the buffer, or spare after OOM */
  unsigned n;
  uint8_t spare[INS_MAX];
} ins;

INLINE void put8(ins *o, uint32_t v) { o->b[o->n++] = (uint8_t)v; }
INLINE void put32(ins *o, uint32_t v) {
  memcpy(o->b + o->n, &v, 4);
  o->n += 4;
}

/* The code lives in its own read-write mapping, which the compiler later
** turns into the executable one without copying.  It grows by a quarter
** (mremap moves pages, it copies nothing), so what it holds beyond the
** code stays small: the compile's memory bound counts capacity.  No
** madvise(MADV_HUGEPAGE): nub-guest's seccomp filter forbids it, and on a
** 57 MB buffer it saved 27% of the page faults but no measurable time
** (docs/sandbox.md). */
static bool grow(jit_asm *a, size_t need) {
  if (a->oom) return false;
  if (a->len + need <= a->cap) return true;
  size_t cap = a->cap ? a->cap + a->cap / 4 : 4 * PAGE, others = a->held - a->cap;
  if (cap < a->len + need) cap = a->len + need;
  cap = (cap + PAGE - 1) / PAGE * PAGE;
  if (a->limit && others + cap > a->limit) {      /* the most that fits */
    cap = a->limit > others ? (a->limit - others) / PAGE * PAGE : 0;
    if (cap < a->len + need) { a->oom = a->over_limit = true; return false; }
  }
  void *p = a->code ? mremap(a->code, a->cap, cap, MREMAP_MAYMOVE)
                    : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { a->oom = true; return false; }
  a->code = p;
  a->held = others + cap;
  if (a->held > a->peak) a->peak = a->held;
  a->cap = cap;
  return true;
}

bool jit_asm_charge(jit_asm *a, size_t bytes) {
  if (a->oom) return false;
  if (a->limit && (bytes > a->limit || a->held > a->limit - bytes)) {
    a->oom = a->over_limit = true;
    return false;
  }
  a->held += bytes;
  if (a->held > a->peak) a->peak = a->held;
  return true;
}

bool jit_asm_grow_array(jit_asm *a, void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap) return true;
  uint64_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  if (ncap > UINT32_MAX || !jit_asm_charge(a, (size_t)(ncap - *cap) * elem)) {
    a->oom = true;
    return false;
  }
  void *np = realloc(*p, (size_t)ncap * elem);
  if (!np) { a->oom = true; return false; }
  *p = np;
  *cap = (uint32_t)ncap;
  return true;
}

/* Start an instruction at the end of the code (after OOM the bytes go to
** a spare buffer and are dropped). */
INLINE void begin(jit_asm *a, ins *o) {
  o->n = 0;
  bool room = (!a->oom && a->len + INS_MAX <= a->cap) || grow(a, INS_MAX);
  o->b = room ? a->code + a->len : o->spare;
}

INLINE void emit(jit_asm *a, const ins *o) {
  if (o->b != o->spare) a->len += o->n;
}

INLINE bool fits8(int64_t v) { return v >= -128 && v <= 127; }

/* ---- buffer, labels and fixups ---- */

void jit_asm_init(jit_asm *a) { memset(a, 0, sizeof *a); }

void jit_asm_free(jit_asm *a) {
  if (a->code) munmap(a->code, a->cap);
  free(a->labels);
  free(a->fixups);
  memset(a, 0, sizeof *a);
}

void jit_asm_reset(jit_asm *a) {
  a->len = 0;
  a->nlabels = 0;
  a->nfixups = 0;
  a->oom = false;
  a->scope_error = NULL;
}

uint8_t *jit_asm_take(jit_asm *a, size_t *mapped) {
  uint8_t *code = a->code;
  *mapped = a->cap;
  a->code = NULL;
  a->cap = a->len = 0;
  return code;
}

void jit_asm_reserve(jit_asm *a, size_t code_bytes, uint32_t labels, uint32_t fixups) {
  if (a->limit && a->limit - a->held < code_bytes)     /* grow() takes what fits */
    code_bytes = a->len + 1;
  if (!grow(a, code_bytes) ||
      !jit_asm_grow_array(a, (void **)&a->labels, &a->label_cap, labels, sizeof *a->labels) ||
      !jit_asm_grow_array(a, (void **)&a->fixups, &a->fixup_cap, fixups, sizeof *a->fixups))
    a->oom = true;
}

jit_label jit_label_new(jit_asm *a) {
  if (!jit_asm_grow_array(a, (void **)&a->labels, &a->label_cap, a->nlabels + 1,
                          sizeof *a->labels)) {
    a->oom = true;
    return 0;
  }
  a->labels[a->nlabels] = JIT_UNBOUND;
  return a->nlabels++;
}

void jit_label_bind(jit_asm *a, jit_label l) {
  if (l < a->nlabels) a->labels[l] = (uint32_t)a->len;
}

static void add_fixup(jit_asm *a, uint32_t at, jit_label l, uint8_t size) {
  if (a->oom) return;
  if (!jit_asm_grow_array(a, (void **)&a->fixups, &a->fixup_cap, a->nfixups + 1,
                          sizeof *a->fixups)) {
    a->oom = true;
    return;
  }
  a->fixups[a->nfixups++] = (jit_fixup){at, l, size};
}

/* Write the displacement of one fixup; NULL or what is wrong. */
static const char *patch(jit_asm *a, const jit_fixup *f) {
  if (f->label >= a->nlabels || a->labels[f->label] == JIT_UNBOUND)
    return "jump to an unbound label";
  int64_t d = (int64_t)a->labels[f->label] - (int64_t)(f->at + f->size);
  if (f->size == 1) {
    if (!fits8(d)) return "short jump out of range";
    a->code[f->at] = (uint8_t)(int8_t)d;
  } else {
    int32_t d32 = (int32_t)d;
    memcpy(a->code + f->at, &d32, 4);
  }
  return NULL;
}

void jit_asm_close_scope(jit_asm *a, uint32_t first_label, uint32_t first_fixup) {
  uint32_t kept = first_fixup;
  if (a->oom) return;
  for (uint32_t i = first_fixup; i < a->nfixups; i++) {
    if (a->fixups[i].label < first_label) {
      a->fixups[kept++] = a->fixups[i];
    } else if (!a->scope_error) {
      a->scope_error = patch(a, &a->fixups[i]);
    }
  }
  a->nfixups = kept;
  if (first_label < a->nlabels) a->nlabels = first_label;
}

int jit_asm_finish(jit_asm *a, const char **what) {
  if (a->oom) { *what = "out of memory"; return -1; }
  if (a->scope_error) { *what = a->scope_error; return -1; }
  for (uint32_t i = 0; i < a->nfixups; i++)
    if ((*what = patch(a, &a->fixups[i]))) return -1;
  return 0;
}

/* ---- operand encoding ---- */

/* Legacy prefix, REX and opcode bytes.  byte_reg marks 8-bit register
** operands, whose numbers 4..7 mean spl..dil only with a REX prefix. */
INLINE void prefix(ins *o, unsigned pfx, bool w, unsigned reg, unsigned index,
                   unsigned base, bool byte_reg) {
  unsigned rex = (w ? REX_W : 0) | ((reg & 8) ? REX_R : 0) |
                 ((index & 8) && index != JIT_NOREG ? REX_X : 0) |
                 ((base & 8) && base != JIT_NOREG ? REX_B : 0);
  if (pfx) put8(o, pfx);
  if (rex || byte_reg) put8(o, 0x40 | rex);
}

INLINE void opcode(ins *o, uint32_t op, unsigned len) {
  for (unsigned i = len; i-- > 0;) put8(o, op >> (8 * i));
}

INLINE void modrm_rr(ins *o, unsigned reg, unsigned rm) {
  put8(o, 0xC0 | (reg & 7) << 3 | (rm & 7));
}

/* ModRM + SIB + displacement for a memory operand. */
INLINE void modrm_mem(ins *o, unsigned reg, jit_mem m) {
  unsigned r = (reg & 7) << 3;
  if (m.base == JIT_NOREG) {               /* [index*s + disp32] or [disp32] */
    unsigned idx = m.index == JIT_NOREG ? 4 : (m.index & 7);
    put8(o, 0x04 | r);
    put8(o, (unsigned)m.scale << 6 | idx << 3 | 5);
    put32(o, (uint32_t)m.disp);
    return;
  }
  unsigned mod = m.disp == 0 && (m.base & 7) != 5 ? 0 : fits8(m.disp) ? 1 : 2;
  if (m.index == JIT_NOREG && (m.base & 7) != 4) {
    put8(o, mod << 6 | r | (m.base & 7));
  } else {                                 /* rsp/r12 base or an index: SIB */
    unsigned idx = m.index == JIT_NOREG ? 4 : (m.index & 7);
    put8(o, mod << 6 | r | 4);
    put8(o, (unsigned)m.scale << 6 | idx << 3 | (m.base & 7));
  }
  if (mod == 1) put8(o, (uint32_t)m.disp);
  else if (mod == 2) put32(o, (uint32_t)m.disp);
}

/* op reg, r/m(register); byte_rm: rm is an 8-bit register. */
INLINE void enc_rr(jit_asm *a, unsigned pfx, bool w, uint32_t op, unsigned oplen,
                   unsigned reg, unsigned rm, bool byte_rm) {
  ins o;
  begin(a, &o);
  prefix(&o, pfx, w, reg, JIT_NOREG, rm, byte_rm && rm >= 4 && rm < 8);
  opcode(&o, op, oplen);
  modrm_rr(&o, reg, rm);
  emit(a, &o);
}

/* op reg, r/m(memory), then imm_len bytes of imm; byte_reg: reg is an
** 8-bit register. */
INLINE void enc_rm(jit_asm *a, unsigned pfx, bool w, uint32_t op, unsigned oplen,
                   unsigned reg, jit_mem m, bool byte_reg, uint32_t imm, unsigned imm_len) {
  ins o;
  begin(a, &o);
  if (m.seg) put8(&o, m.seg);
  prefix(&o, pfx, w, reg, m.index, m.base, byte_reg && reg >= 4 && reg < 8);
  opcode(&o, op, oplen);
  modrm_mem(&o, reg, m);
  for (unsigned i = 0; i < imm_len; i++) put8(&o, imm >> (8 * i));
  emit(a, &o);
}

/* VEX-encoded (BMI) instruction in 3-byte form: map 1 = 0F38, 3 = 0F3A;
** pp 0 none, 1 66, 2 F3, 3 F2. */
INLINE void enc_vex(jit_asm *a, unsigned map, unsigned pp, bool w, unsigned reg,
                    unsigned vvvv, unsigned rm, uint8_t op) {
  ins o;
  begin(a, &o);
  put8(&o, 0xC4);
  put8(&o, ((reg & 8) ? 0 : 0x80) | 0x40 | ((rm & 8) ? 0 : 0x20) | map);
  put8(&o, (w ? 0x80 : 0) | ((~vvvv & 15) << 3) | pp);
  put8(&o, op);
  modrm_rr(&o, reg, rm);
  emit(a, &o);
}

/* ---- data movement ---- */

void jit_x86_mov_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src) {
  enc_rr(a, 0, w, 0x89, 1, src, dst, false);
}

void jit_x86_mov_ri(jit_asm *a, jit_reg dst, uint64_t imm) {
  ins o;
  begin(a, &o);
  if (imm <= 0xFFFFFFFFu) {                      /* mov r32, imm32 zero-extends */
    if (dst & 8) put8(&o, 0x40 | REX_B);
    put8(&o, 0xB8 + (dst & 7));
    put32(&o, (uint32_t)imm);
  } else if ((int64_t)imm == (int32_t)imm) {     /* mov r64, simm32 */
    put8(&o, 0x40 | REX_W | ((dst & 8) ? REX_B : 0));
    put8(&o, 0xC7);
    modrm_rr(&o, 0, dst);
    put32(&o, (uint32_t)imm);
  } else {                                       /* movabs */
    put8(&o, 0x40 | REX_W | ((dst & 8) ? REX_B : 0));
    put8(&o, 0xB8 + (dst & 7));
    put32(&o, (uint32_t)imm);
    put32(&o, (uint32_t)(imm >> 32));
  }
  emit(a, &o);
}

static const struct { uint16_t op; uint8_t len, w; } ext_ops[] = {
  [JIT_U8] = {0x0FB6, 2, 0}, [JIT_I8] = {0x0FBE, 2, 1},
  [JIT_U16] = {0x0FB7, 2, 0}, [JIT_I16] = {0x0FBF, 2, 1},
  [JIT_U32] = {0x8B, 1, 0}, [JIT_I32] = {0x63, 1, 1}, [JIT_U64] = {0x8B, 1, 1},
};

void jit_x86_load(jit_asm *a, jit_ext kind, jit_reg dst, jit_mem m) {
  enc_rm(a, 0, ext_ops[kind].w, ext_ops[kind].op, ext_ops[kind].len, dst, m, false, 0, 0);
}

void jit_x86_ext_rr(jit_asm *a, jit_ext kind, jit_reg dst, jit_reg src) {
  enc_rr(a, 0, ext_ops[kind].w, ext_ops[kind].op, ext_ops[kind].len, dst, src,
         kind == JIT_U8 || kind == JIT_I8);
}

void jit_x86_store(jit_asm *a, unsigned size, jit_mem m, jit_reg src) {
  enc_rm(a, size == 2 ? 0x66 : 0, size == 8, size == 1 ? 0x88 : 0x89, 1, src, m,
         size == 1, 0, 0);
}

void jit_x86_store_imm(jit_asm *a, unsigned size, jit_mem m, int32_t imm) {
  enc_rm(a, size == 2 ? 0x66 : 0, size == 8, size == 1 ? 0xC6 : 0xC7, 1, 0, m, false,
         (uint32_t)imm, size >= 4 ? 4 : size);
}

void jit_x86_lea(jit_asm *a, bool w, jit_reg dst, jit_mem m) {
  enc_rm(a, 0, w, 0x8D, 1, dst, m, false, 0, 0);
}

void jit_x86_lea_label(jit_asm *a, jit_reg dst, jit_label l) {
  ins o;
  begin(a, &o);
  put8(&o, 0x40 | REX_W | ((dst & 8) ? REX_R : 0));
  put8(&o, 0x8D);
  put8(&o, (dst & 7) << 3 | 5);                 /* mod 00 rm 101: [rip + disp32] */
  put32(&o, 0);
  emit(a, &o);
  if (!a->oom) add_fixup(a, (uint32_t)a->len - 4, l, 4);
}

void jit_x86_push(jit_asm *a, jit_reg r) {
  ins o;
  begin(a, &o);
  if (r & 8) put8(&o, 0x40 | REX_B);
  put8(&o, 0x50 + (r & 7));
  emit(a, &o);
}

void jit_x86_pop(jit_asm *a, jit_reg r) {
  ins o;
  begin(a, &o);
  if (r & 8) put8(&o, 0x40 | REX_B);
  put8(&o, 0x58 + (r & 7));
  emit(a, &o);
}

/* ---- arithmetic ---- */

void jit_x86_alu_rr(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_reg src) {
  enc_rr(a, 0, w, (uint32_t)op << 3 | 1, 1, src, dst, false);
}

void jit_x86_alu_ri(jit_asm *a, jit_alu op, bool w, jit_reg dst, int32_t imm) {
  ins o;
  begin(a, &o);
  prefix(&o, 0, w, 0, JIT_NOREG, dst, false);
  if (fits8(imm)) {
    put8(&o, 0x83);
    modrm_rr(&o, op, dst);
    put8(&o, (uint32_t)imm);
  } else {
    if (dst == JIT_RAX) {
      put8(&o, (uint32_t)op << 3 | 5);           /* short form: op eax/rax, imm32 */
    } else {
      put8(&o, 0x81);
      modrm_rr(&o, op, dst);
    }
    put32(&o, (uint32_t)imm);
  }
  emit(a, &o);
}

void jit_x86_alu_mi(jit_asm *a, jit_alu op, bool w, jit_mem m, int32_t imm) {
  if (fits8(imm)) enc_rm(a, 0, w, 0x83, 1, op, m, false, (uint32_t)imm, 1);
  else enc_rm(a, 0, w, 0x81, 1, op, m, false, (uint32_t)imm, 4);
}

void jit_x86_alu_mr(jit_asm *a, jit_alu op, bool w, jit_mem m, jit_reg src) {
  enc_rm(a, 0, w, (uint32_t)op << 3 | 1, 1, src, m, false, 0, 0);
}

void jit_x86_test_rr(jit_asm *a, bool w, jit_reg x, jit_reg y) {
  enc_rr(a, 0, w, 0x85, 1, y, x, false);
}

void jit_x86_imul_rr(jit_asm *a, bool w, jit_reg dst, jit_reg src) {
  enc_rr(a, 0, w, 0x0FAF, 2, dst, src, false);
}

void jit_x86_imul_rri(jit_asm *a, bool w, jit_reg dst, jit_reg src, int32_t imm) {
  ins o;
  begin(a, &o);
  prefix(&o, 0, w, dst, JIT_NOREG, src, false);
  put8(&o, fits8(imm) ? 0x6B : 0x69);
  modrm_rr(&o, dst, src);
  if (fits8(imm)) put8(&o, (uint32_t)imm);
  else put32(&o, (uint32_t)imm);
  emit(a, &o);
}

void jit_x86_unary(jit_asm *a, jit_unary op, bool w, jit_reg r) {
  enc_rr(a, 0, w, 0xF7, 1, op, r, false);
}

void jit_x86_shift_ri(jit_asm *a, jit_shift op, bool w, jit_reg r, uint8_t imm) {
  ins o;
  begin(a, &o);
  prefix(&o, 0, w, 0, JIT_NOREG, r, false);
  put8(&o, 0xC1);
  modrm_rr(&o, op, r);
  put8(&o, imm);
  emit(a, &o);
}

void jit_x86_shift_cl(jit_asm *a, jit_shift op, bool w, jit_reg r) {
  enc_rr(a, 0, w, 0xD3, 1, op, r, false);
}

void jit_x86_shiftx(jit_asm *a, jit_shiftx op, bool w, jit_reg dst, jit_reg src, jit_reg count) {
  static const uint8_t pp[] = {[JIT_SHLX] = 1, [JIT_SHRX] = 3, [JIT_SARX] = 2};
  enc_vex(a, 2, pp[op], w, dst, count, src, 0xF7);
}

void jit_x86_rorx(jit_asm *a, bool w, jit_reg dst, jit_reg src, uint8_t imm) {
  enc_vex(a, 3, 3, w, dst, 0, src, 0xF0);
  ins o;
  begin(a, &o);
  put8(&o, imm);
  emit(a, &o);
}

void jit_x86_mulx(jit_asm *a, jit_reg hi, jit_reg lo, jit_reg src) {
  enc_vex(a, 2, 3, true, hi, lo, src, 0xF6);
}

void jit_x86_andn(jit_asm *a, bool w, jit_reg dst, jit_reg src1, jit_reg src2) {
  enc_vex(a, 2, 0, w, dst, src1, src2, 0xF2);
}

void jit_x86_bitop(jit_asm *a, jit_bitop op, bool w, jit_reg dst, jit_reg src) {
  static const uint16_t ops[] = {
    [JIT_POPCNT] = 0x0FB8, [JIT_LZCNT] = 0x0FBD, [JIT_TZCNT] = 0x0FBC, [JIT_BSR] = 0x0FBD,
  };
  enc_rr(a, op == JIT_BSR ? 0 : 0xF3, w, ops[op], 2, dst, src, false);
}

void jit_x86_bswap(jit_asm *a, bool w, jit_reg r) {
  ins o;
  begin(a, &o);
  prefix(&o, 0, w, 0, JIT_NOREG, r, false);
  put8(&o, 0x0F);
  put8(&o, 0xC8 + (r & 7));
  emit(a, &o);
}

void jit_x86_cqo(jit_asm *a, bool w) {
  ins o;
  begin(a, &o);
  if (w) put8(&o, 0x40 | REX_W);
  put8(&o, 0x99);
  emit(a, &o);
}

void jit_x86_setcc(jit_asm *a, jit_cc cc, jit_reg r8) {
  enc_rr(a, 0, false, 0x0F90u | cc, 2, 0, r8, true);
}

void jit_x86_cmov(jit_asm *a, jit_cc cc, bool w, jit_reg dst, jit_reg src) {
  enc_rr(a, 0, w, 0x0F40u | cc, 2, dst, src, false);
}

/* ---- control flow ---- */

/* A jump to a known offset: rel8 when it reaches (op8 != 0), else rel32. */
static void jump_to(jit_asm *a, int64_t target, uint8_t op8, uint32_t op32, unsigned op32_len) {
  ins o;
  begin(a, &o);
  int64_t d = target - (int64_t)(a->len + 2);
  if (op8 && fits8(d)) {
    put8(&o, op8);
    put8(&o, (uint32_t)d);
  } else {
    opcode(&o, op32, op32_len);
    put32(&o, (uint32_t)(int32_t)(target - (int64_t)(a->len + o.n + 4)));
  }
  emit(a, &o);
}

/* A jump to a label: direct when it is bound, else rel32 with a fixup. */
static void jump(jit_asm *a, jit_label l, uint8_t op8, uint32_t op32, unsigned op32_len) {
  if (jit_label_bound(a, l)) {
    jump_to(a, a->labels[l], op8, op32, op32_len);
    return;
  }
  ins o;
  begin(a, &o);
  opcode(&o, op32, op32_len);
  put32(&o, 0);
  emit(a, &o);
  if (!a->oom) add_fixup(a, (uint32_t)a->len - 4, l, 4);
}

static void jump8(jit_asm *a, jit_label l, uint8_t op8) {
  ins o;
  begin(a, &o);
  put8(&o, op8);
  put8(&o, 0);
  emit(a, &o);
  if (!a->oom) add_fixup(a, (uint32_t)a->len - 1, l, 1);
}

void jit_x86_jmp(jit_asm *a, jit_label l) { jump(a, l, 0xEB, 0xE9, 1); }
void jit_x86_jcc(jit_asm *a, jit_cc cc, jit_label l) { jump(a, l, 0x70 | cc, 0x0F80u | cc, 2); }
void jit_x86_call(jit_asm *a, jit_label l) { jump(a, l, 0, 0xE8, 1); }
void jit_x86_jmp8(jit_asm *a, jit_label l) { jump8(a, l, 0xEB); }
void jit_x86_jcc8(jit_asm *a, jit_cc cc, jit_label l) { jump8(a, l, 0x70 | cc); }

void jit_x86_jcc_at(jit_asm *a, jit_cc cc, size_t target) {
  if (cc == JIT_ALWAYS) jump_to(a, (int64_t)target, 0xEB, 0xE9, 1);
  else jump_to(a, (int64_t)target, 0x70 | cc, 0x0F80u | cc, 2);
}

size_t jit_x86_jcc_forward(jit_asm *a, jit_cc cc) {
  ins o;
  begin(a, &o);
  if (cc == JIT_ALWAYS) opcode(&o, 0xE9, 1);
  else opcode(&o, 0x0F80u | cc, 2);
  put32(&o, 0);
  emit(a, &o);
  return a->len - 4;
}

void jit_asm_patch_rel32(jit_asm *a, size_t field, size_t target) {
  if (a->oom) return;
  int32_t d = (int32_t)((int64_t)target - (int64_t)(field + 4));
  memcpy(a->code + field, &d, 4);
}

void jit_x86_jmp_r(jit_asm *a, jit_reg r) { enc_rr(a, 0, false, 0xFF, 1, 4, r, false); }
void jit_x86_call_r(jit_asm *a, jit_reg r) { enc_rr(a, 0, false, 0xFF, 1, 2, r, false); }
void jit_x86_jmp_m(jit_asm *a, jit_mem m) { enc_rm(a, 0, false, 0xFF, 1, 4, m, false, 0, 0); }

void jit_x86_rdgsbase(jit_asm *a, jit_reg r) { enc_rr(a, 0xF3, true, 0x0FAE, 2, 1, r, false); }
void jit_x86_wrgsbase(jit_asm *a, jit_reg r) { enc_rr(a, 0xF3, true, 0x0FAE, 2, 3, r, false); }

void jit_x86_ret(jit_asm *a) {
  ins o;
  begin(a, &o);
  put8(&o, 0xC3);
  emit(a, &o);
}

/* The recommended nops of 1 to 9 bytes (Intel SDM, "NOP"). */
static const uint8_t nops[9][9] = {
  {0x90}, {0x66, 0x90}, {0x0F, 0x1F, 0x00}, {0x0F, 0x1F, 0x40, 0x00},
  {0x0F, 0x1F, 0x44, 0x00, 0x00}, {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00},
  {0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00}, {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
  {0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};

void jit_x86_nop_align(jit_asm *a, unsigned n) {
  unsigned pad = (unsigned)(-a->len & (n - 1));
  while (pad) {
    unsigned k = pad < 9 ? pad : 9;
    ins o;
    begin(a, &o);
    for (unsigned i = 0; i < k; i++) put8(&o, nops[k - 1][i]);
    emit(a, &o);
    if (a->oom) return;
    pad -= k;
  }
}

void jit_asm_align(jit_asm *a, unsigned n) {
  ins o;
  begin(a, &o);
  while ((a->len + o.n) % n) put8(&o, 0xCC);
  emit(a, &o);
}

void jit_asm_u32(jit_asm *a, uint32_t v) {
  ins o;
  begin(a, &o);
  put32(&o, v);
  emit(a, &o);
}

/* The address-size prefix (67) for the instruction that follows: its
** memory operand is computed in 32 bits (base + index + disp wrap modulo
** 2^32), zero-extended, and only then is a segment base added. */
void jit_x86_addr32(jit_asm *a) {
  ins o;
  begin(a, &o);
  put8(&o, 0x67);
  emit(a, &o);
}

/* dst = dst op [m] (the reg, r/m direction: opcode op * 8 + 3). */
void jit_x86_alu_rm(jit_asm *a, jit_alu op, bool w, jit_reg dst, jit_mem m) {
  enc_rm(a, 0, w, (uint32_t)op << 3 | 3, 1, dst, m, false, 0, 0);
}
