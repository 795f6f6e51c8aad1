/*
** Program builder: encodes instructions (A.5 read backwards), relaxes
** branch offsets, resolves labels and emits a generic blob (A.2).
**
** Errors are sticky: the first one is kept with the index of the code
** item that caused it and nub_pvm_builder_finish reports it.  Every call that
** adds code (instruction, branch, raw instruction, bytes) is one item.
*/
#include <stdio.h>
#include <stdlib.h>

#include "pvm_internal.h"

enum { ITEM_INSN, ITEM_BRANCH, ITEM_RAW, ITEM_BYTES };

#define UNBOUND UINT32_MAX
#define RELAX_ROUNDS 100   /* shrinking rounds before falling back to grow-only */

typedef struct item {
  pvm_enc enc;             /* INSN / BRANCH: every field but resolved widths */
  int8_t ex, ey;           /* requested widths (PVM_WIDTH_AUTO or 0..8) */
  uint8_t kind;
  uint8_t abs;             /* BRANCH: target is a pc rather than a label */
  uint8_t relax;           /* BRANCH: offset width is chosen by layout */
  uint8_t named;           /* enc.opcode is valid (for messages) */
  int64_t target;          /* BRANCH: label id or absolute pc */
  uint32_t pc;
  uint32_t data, ndata;    /* RAW / BYTES: slice of the byte pool */
} item;

typedef struct jentry {
  uint8_t abs;
  uint32_t value;          /* label id or pc */
} jentry;

struct nub_pvm_builder {
  nub_pvm_profile profile;
  item *items;    uint32_t nitems, items_cap;
  uint32_t *labels; uint32_t nlabels, labels_cap;   /* item index or UNBOUND */
  jentry *jumps;  uint32_t njumps, jumps_cap;
  uint8_t *pool;  uint32_t npool, pool_cap;
  int jump_size;           /* -1: smallest that fits */
  bool finished;
  /* first error */
  int err_code;
  uint32_t err_index;
  uint8_t err_operand;     /* pvm_opnd */
  uint8_t err_prefix;      /* length of "instruction N (op): " in err_msg */
  char err_msg[sizeof ((nub_pvm_error *)0)->msg];
};

/* ---- errors ---- */

__attribute__((format(printf, 5, 6)))
static void fail(nub_pvm_builder *b, int code, uint32_t index, pvm_opnd operand,
                 const char *fmt, ...) {
  va_list ap;
  int n;
  if (b->err_code) return;
  b->err_code = code;
  b->err_index = index;
  b->err_operand = (uint8_t)operand;
  if (code == PVM_ERR_JUMP_TABLE) {
    n = snprintf(b->err_msg, sizeof b->err_msg, "jump table entry %u: ", index);
  } else if (index < b->nitems && b->items[index].named) {
    n = snprintf(b->err_msg, sizeof b->err_msg, "instruction %u (%s): ", index,
                 nub_pvm_isa(b->profile)[b->items[index].enc.opcode].name);
  } else {
    n = snprintf(b->err_msg, sizeof b->err_msg, "instruction %u: ", index);
  }
  b->err_prefix = (uint8_t)n;
  va_start(ap, fmt);
  vsnprintf(b->err_msg + n, sizeof b->err_msg - (size_t)n, fmt, ap);
  va_end(ap);
}

static void fail_oom(nub_pvm_builder *b) {
  fail(b, PVM_ERR_NOMEM, b->nitems, PVM_OPND_END, "out of memory");
}

int pvm_builder_error(const nub_pvm_builder *b, nub_pvm_error *err, int *operand) {
  if (!b->err_code) return PVM_OK;
  if (operand) *operand = b->err_operand;
  return pvm_fail(err, b->err_code, b->err_index, "%s", b->err_msg + b->err_prefix);
}

uint32_t pvm_builder_item_count(const nub_pvm_builder *b) { return b->nitems; }

/* ---- storage ---- */

static bool grow(nub_pvm_builder *b, void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (pvm_grow(p, cap, need, elem)) return true;
  fail_oom(b);
  return false;
}

static item *new_item(nub_pvm_builder *b, int kind) {
  if (b->err_code) return NULL;
  if (!grow(b, (void **)&b->items, &b->items_cap, (uint64_t)b->nitems + 1, sizeof *b->items))
    return NULL;
  item *it = &b->items[b->nitems++];
  memset(it, 0, sizeof *it);
  it->kind = (uint8_t)kind;
  it->ex = it->ey = PVM_WIDTH_AUTO;
  return it;
}

static bool pool_add(nub_pvm_builder *b, item *it, const uint8_t *bytes, size_t n) {
  if ((uint64_t)b->npool + n > PVM_MAX_CODE_LEN) {   /* stop before memory does */
    fail(b, PVM_ERR_LIMIT, b->nitems - 1, PVM_OPND_END, "code exceeds %u bytes",
         PVM_MAX_CODE_LEN);
    return false;
  }
  if (!grow(b, (void **)&b->pool, &b->pool_cap, (uint64_t)b->npool + n, 1)) return false;
  memcpy(b->pool + b->npool, bytes, n);
  it->data = b->npool;
  it->ndata = (uint32_t)n;
  b->npool += (uint32_t)n;
  return true;
}

nub_pvm_builder *nub_pvm_builder_new(nub_pvm_profile profile) {
  if (!nub_pvm_isa(profile)) return NULL;
  nub_pvm_builder *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->profile = profile;
  b->jump_size = -1;
  return b;
}

void nub_pvm_builder_free(nub_pvm_builder *b) {
  if (!b) return;
  free(b->items);
  free(b->labels);
  free(b->jumps);
  free(b->pool);
  free(b);
}

/* ---- labels and the jump table ---- */

uint32_t nub_pvm_builder_label(nub_pvm_builder *b) {
  if (b->err_code) return 0;
  if (!grow(b, (void **)&b->labels, &b->labels_cap, (uint64_t)b->nlabels + 1,
            sizeof *b->labels))
    return 0;
  b->labels[b->nlabels] = UNBOUND;
  return b->nlabels++;
}

void nub_pvm_builder_bind(nub_pvm_builder *b, uint32_t label) {
  if (label >= b->nlabels)
    fail(b, PVM_ERR_ARG, b->nitems, PVM_OPND_END, "label %u was not created", label);
  else if (b->labels[label] != UNBOUND)
    fail(b, PVM_ERR_ARG, b->nitems, PVM_OPND_END, "label %u is bound twice", label);
  else
    b->labels[label] = b->nitems;
}

static void add_jump(nub_pvm_builder *b, bool abs, uint32_t value) {
  if (b->err_code) return;
  if (b->njumps >= PVM_MAX_JUMP_COUNT) {
    fail(b, PVM_ERR_JUMP_TABLE, b->njumps, PVM_OPND_END,
         "more than %u jump table entries", PVM_MAX_JUMP_COUNT);
    return;
  }
  if (!abs && value >= b->nlabels) {
    fail(b, PVM_ERR_JUMP_TABLE, b->njumps, PVM_OPND_END, "label %u was not created", value);
    return;
  }
  if (!grow(b, (void **)&b->jumps, &b->jumps_cap, (uint64_t)b->njumps + 1, sizeof *b->jumps))
    return;
  b->jumps[b->njumps++] = (jentry){abs, value};
}

void nub_pvm_builder_jump_entry(nub_pvm_builder *b, uint32_t label) { add_jump(b, false, label); }
void nub_pvm_builder_jump_entry_abs(nub_pvm_builder *b, uint32_t pc) { add_jump(b, true, pc); }

void nub_pvm_builder_jump_size(nub_pvm_builder *b, unsigned size) {
  if (size > 4)
    fail(b, PVM_ERR_JUMP_TABLE, b->njumps, PVM_OPND_END,
         "entry size %u is not in 0..4", size);
  else
    b->jump_size = (int)size;
}

/* ---- instructions ---- */

unsigned pvm_imm_width(uint64_t v) {
  for (unsigned w = 0; w <= 4; w++)
    if (pvm_imm_fits(v, w)) return w;
  return 5;
}

unsigned pvm_enc_write(const pvm_enc *e, uint8_t *o) {
  unsigned n = 0;
  o[n++] = e->opcode;
  switch ((nub_pvm_format)e->format) {
  case PVM_FMT_NONE:
  case PVM_FMT_COUNT:
    return n;
  case PVM_FMT_IMM:
  case PVM_FMT_OFFSET:
    break;
  case PVM_FMT_REG_IMM64:
  case PVM_FMT_REG_IMM:
    o[n++] = e->raw_a;
    break;
  case PVM_FMT_IMM_IMM:
    o[n++] = e->wx;
    break;
  case PVM_FMT_REG_IMM_IMM:
  case PVM_FMT_REG_IMM_OFFSET:
    o[n++] = (uint8_t)(e->raw_a | e->wx << 4);
    break;
  case PVM_FMT_REG_REG:
    o[n++] = (uint8_t)(e->raw_d | e->raw_a << 4);
    return n;
  case PVM_FMT_REG_REG_IMM:
  case PVM_FMT_REG_REG_OFFSET:
    o[n++] = (uint8_t)(e->raw_a | e->raw_b << 4);
    break;
  case PVM_FMT_REG_REG_IMM_IMM:
    o[n++] = (uint8_t)(e->raw_a | e->raw_b << 4);
    o[n++] = e->wx;
    break;
  case PVM_FMT_REG_REG_REG:
    o[n++] = (uint8_t)(e->raw_a | e->raw_b << 4);
    o[n++] = e->raw_d;
    return n;
  }
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)e->format);
  if (fi->has_x) { pvm_le_write(o + n, e->x, e->wx); n += e->wx; }
  if (fi->has_y) { pvm_le_write(o + n, e->y, e->wy); n += e->wy; }
  return n;
}

static const char *opnd_name(pvm_opnd o) {
  static const char *names[] = {"", "ra", "rb", "rd", "immediate x", "immediate y", "target"};
  return names[o];
}

/* Store register `reg` in the field `which`, encoded as raw (or itself). */
static bool set_reg(nub_pvm_builder *b, item *it, pvm_opnd which, unsigned reg, int raw) {
  uint32_t at = (uint32_t)(it - b->items);
  pvm_regfield kind = pvm_format_regfield((nub_pvm_format)it->enc.format, which);
  if (reg >= PVM_REGS) {
    fail(b, PVM_ERR_ARG, at, which, "%s: register %u is not in r0..r12", opnd_name(which), reg);
    return false;
  }
  if (raw == PVM_RAW_AUTO) raw = (int)reg;
  if (raw < 0 || pvm_regfield_decode(kind, (unsigned)raw) != (int)reg) {
    fail(b, PVM_ERR_ARG, at, which,
         "%s: raw register field %d does not decode to r%u (the field holds 0..%u; "
         "values above 12 decode to r12%s)", opnd_name(which), raw, reg,
         kind == PVM_REGF_NIBBLE ? 15u : 255u,
         kind == PVM_REGF_LOW_NIBBLE_BYTE ? ", the high nibble is ignored" : "");
    return false;
  }
  uint8_t *dst = which == PVM_OPND_RA ? &it->enc.raw_a : which == PVM_OPND_RB ? &it->enc.raw_b
                                                                              : &it->enc.raw_d;
  *dst = (uint8_t)raw;
  return true;
}

static bool check_imm(nub_pvm_builder *b, item *it, pvm_opnd which, uint64_t v, int width) {
  uint32_t at = (uint32_t)(it - b->items);
  if (it->enc.format == PVM_FMT_REG_IMM64) {
    if (width == PVM_WIDTH_AUTO || width == 8) return true;
    fail(b, PVM_ERR_RANGE, at, which, "the immediate is always 8 bytes, not %d", width);
    return false;
  }
  if (width == PVM_WIDTH_AUTO) {
    if (pvm_imm_fits(v, 4)) return true;
    fail(b, PVM_ERR_RANGE, at, which,
         "%s %lld (0x%llx) does not fit a sign-extended 4-byte field "
         "(-0x80000000..0x7fffffff)",
         opnd_name(which), (long long)v, (unsigned long long)v);
    return false;
  }
  if (width < 0 || width > 4) {
    fail(b, PVM_ERR_RANGE, at, which, "%s: width %d is not in 0..4", opnd_name(which), width);
    return false;
  }
  if (pvm_imm_fits(v, (unsigned)width)) return true;
  fail(b, PVM_ERR_RANGE, at, which, "%s %lld (0x%llx) does not fit a sign-extended %d-byte field",
       opnd_name(which), (long long)v, (unsigned long long)v, width);
  return false;
}

/* Common part of instructions and branches: opcode, registers, nu_X and,
** unless it holds the offset, nu_Y. */
static item *add_insn(nub_pvm_builder *b, int kind, nub_pvm_op op, uint8_t ra, uint8_t rb,
                      uint8_t rd, uint64_t imm_x, uint64_t imm_y, const nub_pvm_encoding *enc) {
  nub_pvm_encoding e = enc ? *enc : PVM_ENCODING_AUTO;
  item *it = new_item(b, kind);
  if (!it) return NULL;
  uint32_t at = b->nitems - 1;
  int opcode = nub_pvm_opcode_of(b->profile, op);
  if (opcode < 0) {
    fail(b, PVM_ERR_ARG, at, PVM_OPND_END, "op %d is not in profile %s", (int)op,
         nub_pvm_profile_name(b->profile));
    return NULL;
  }
  const nub_pvm_opinfo *info = &nub_pvm_isa(b->profile)[opcode];
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)info->format);
  it->enc.opcode = (uint8_t)opcode;
  it->enc.format = info->format;
  it->named = 1;
  bool is_branch = (info->flags & PVM_OPF_BRANCH) != 0;
  if (is_branch != (kind == ITEM_BRANCH)) {
    fail(b, PVM_ERR_ARG, at, PVM_OPND_END, is_branch
         ? "a static branch needs a target: use nub_pvm_builder_branch"
         : "not a static branch: use nub_pvm_builder_insn");
    return NULL;
  }
  it->ex = e.width_x;
  it->ey = e.width_y;
  it->enc.x = imm_x;
  it->enc.y = imm_y;
  for (const uint8_t *o = fi->operands; o < fi->operands + 4 && *o; o++) {
    bool ok = true;
    switch ((pvm_opnd)*o) {
    case PVM_OPND_RA: ok = set_reg(b, it, PVM_OPND_RA, ra, e.raw_ra); break;
    case PVM_OPND_RB: ok = set_reg(b, it, PVM_OPND_RB, rb, e.raw_rb); break;
    case PVM_OPND_RD: ok = set_reg(b, it, PVM_OPND_RD, rd, e.raw_rd); break;
    case PVM_OPND_X:  ok = check_imm(b, it, PVM_OPND_X, imm_x, e.width_x); break;
    case PVM_OPND_Y:  ok = check_imm(b, it, PVM_OPND_Y, imm_y, e.width_y); break;
    case PVM_OPND_TARGET: {
      int w = fi->offset == PVM_OPND_X ? e.width_x : e.width_y;
      if (w != PVM_WIDTH_AUTO && (w < 0 || w > 4)) {
        fail(b, PVM_ERR_RANGE, at, PVM_OPND_TARGET, "offset width %d is not in 0..4", w);
        ok = false;
      }
      break;
    }
    case PVM_OPND_END: break;
    }
    if (!ok) return NULL;
  }
  return it;
}

void nub_pvm_builder_insn_enc(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint8_t rd,
                          uint64_t imm_x, uint64_t imm_y, const nub_pvm_encoding *enc) {
  add_insn(b, ITEM_INSN, op, ra, rb, rd, imm_x, imm_y, enc);
}

void nub_pvm_builder_insn(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint8_t rd,
                      uint64_t imm_x, uint64_t imm_y) {
  add_insn(b, ITEM_INSN, op, ra, rb, rd, imm_x, imm_y, NULL);
}

/* Branches carry nu_X in imm for REG_IMM_OFFSET; the offset field is filled
** at layout. */
static item *add_branch(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm,
                        const nub_pvm_encoding *enc) {
  return add_insn(b, ITEM_BRANCH, op, ra, rb, 0, imm, 0, enc);
}

void nub_pvm_builder_branch_enc(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm,
                            uint32_t label, const nub_pvm_encoding *enc) {
  item *it = add_branch(b, op, ra, rb, imm, enc);
  if (!it) return;
  if (label >= b->nlabels) {
    fail(b, PVM_ERR_ARG, b->nitems - 1, PVM_OPND_TARGET, "label %u was not created", label);
    return;
  }
  it->target = label;
}

void nub_pvm_builder_branch(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm,
                        uint32_t label) {
  nub_pvm_builder_branch_enc(b, op, ra, rb, imm, label, NULL);
}

void nub_pvm_builder_branch_abs(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm,
                            int64_t target, const nub_pvm_encoding *enc) {
  item *it = add_branch(b, op, ra, rb, imm, enc);
  if (!it) return;
  it->abs = 1;
  it->target = target;
}

void nub_pvm_builder_raw(nub_pvm_builder *b, const uint8_t *bytes, size_t n) {
  item *it = new_item(b, ITEM_RAW);
  if (!it) return;
  if (n < 1 || n > PVM_INSN_MAX_BYTES) {
    fail(b, PVM_ERR_ARG, b->nitems - 1, PVM_OPND_END,
         "a raw instruction has 1..%u bytes, not %zu", PVM_INSN_MAX_BYTES, n);
    return;
  }
  pool_add(b, it, bytes, n);
}

void nub_pvm_builder_bytes(nub_pvm_builder *b, const uint8_t *bytes, size_t n) {
  if (n == 0) return;
  item *it = new_item(b, ITEM_BYTES);
  if (it) pool_add(b, it, bytes, n);
}

/* ---- layout ---- */

static uint8_t *offset_width(item *it) {
  return pvm_format_info_of((nub_pvm_format)it->enc.format)->offset == PVM_OPND_X ? &it->enc.wx
                                                                              : &it->enc.wy;
}

static uint32_t item_size(const item *it) {
  if (it->kind >= ITEM_RAW) return it->ndata;
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)it->enc.format);
  return fi->fixed + (fi->has_x ? it->enc.wx : 0u) + (fi->has_y ? it->enc.wy : 0u);
}

/* Resolve the widths layout does not change; force 4 bytes on a trailing
** field that code bytes follow. */
static int prepare(nub_pvm_builder *b) {
  for (uint32_t i = 0; i < b->nitems; i++) {
    item *it = &b->items[i];
    if (it->kind >= ITEM_RAW) continue;
    const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)it->enc.format);
    bool padded = i + 1 < b->nitems && b->items[i + 1].kind == ITEM_BYTES;
    for (pvm_opnd f = PVM_OPND_X; f <= PVM_OPND_Y; f++) {
      bool present = f == PVM_OPND_X ? fi->has_x : fi->has_y;
      int want = f == PVM_OPND_X ? it->ex : it->ey;
      uint8_t *w = f == PVM_OPND_X ? &it->enc.wx : &it->enc.wy;
      uint64_t v = f == PVM_OPND_X ? it->enc.x : it->enc.y;
      bool is_offset = fi->offset == f;
      if (!present) continue;
      if (padded && fi->trailing == f) {
        if (want != PVM_WIDTH_AUTO && want != 4) {
          fail(b, PVM_ERR_RANGE, i, is_offset ? PVM_OPND_TARGET : f,
               "code bytes follow, which the decoder would read into %s shorter than "
               "4 bytes: its width must be 4, not %d", is_offset ? "an offset" : "a last immediate",
               want);
          return b->err_code;
        }
        want = 4;
      }
      if (it->enc.format == PVM_FMT_REG_IMM64) *w = 8;
      else if (want != PVM_WIDTH_AUTO) *w = (uint8_t)want;
      else *w = is_offset ? 4 : (uint8_t)pvm_imm_width(v);
      if (is_offset) it->relax = want == PVM_WIDTH_AUTO;
    }
  }
  return PVM_OK;
}

/* Returns the code length, or fails naming the item that passes the limit. */
static int assign_pcs(nub_pvm_builder *b, uint64_t *code_len) {
  uint64_t pc = 0;
  for (uint32_t i = 0; i < b->nitems; i++) {
    b->items[i].pc = (uint32_t)pc;
    pc += item_size(&b->items[i]);
    if (pc > PVM_MAX_CODE_LEN) {
      fail(b, PVM_ERR_LIMIT, i, PVM_OPND_END, "code exceeds %u bytes", PVM_MAX_CODE_LEN);
      return b->err_code;
    }
  }
  *code_len = pc;
  return PVM_OK;
}

static int64_t label_pc(const nub_pvm_builder *b, uint32_t label, uint64_t code_len) {
  uint32_t at = b->labels[label];
  return at == b->nitems ? (int64_t)code_len : (int64_t)b->items[at].pc;
}

static int64_t branch_offset(const nub_pvm_builder *b, const item *it, uint64_t code_len) {
  int64_t t = it->abs ? it->target : label_pc(b, (uint32_t)it->target, code_len);
  return (int64_t)((uint64_t)t - it->pc);
}

unsigned pvm_offset_width(int64_t off, unsigned cur, bool moves) {
  for (unsigned w = 0; w < 4; w++) {
    int64_t o = moves ? off + (int64_t)w - (int64_t)cur : off;
    if (pvm_imm_fits((uint64_t)o, w)) return w;
  }
  return 4;  /* if even 4 bytes do not fit, the final check reports it */
}

static unsigned needed_width(nub_pvm_builder *b, uint32_t i, uint64_t code_len) {
  item *it = &b->items[i];
  bool moves = !it->abs && b->labels[it->target] > i;
  return pvm_offset_width(branch_offset(b, it, code_len), *offset_width(it), moves);
}

/* One pass over the relaxed branches: set each offset width to what its
** offset needs (shrink_ok) or only let it grow.  Returns whether any
** width changed. */
static bool relax_pass(nub_pvm_builder *b, uint64_t code_len, bool shrink_ok) {
  bool changed = false;
  for (uint32_t i = 0; i < b->nitems; i++) {
    item *it = &b->items[i];
    if (it->kind != ITEM_BRANCH || !it->relax) continue;
    unsigned need = needed_width(b, i, code_len);
    uint8_t *w = offset_width(it);
    if (need > *w || (shrink_ok && need < *w)) {
      *w = (uint8_t)need;
      changed = true;
    }
  }
  return changed;
}

/* Offsets start at 4 bytes and shrink to a fixed point.  With label
** targets widths never need to grow (every distance only shrinks); an
** absolute target can move away from a branch that moves, so after
** RELAX_ROUNDS the remaining rounds only grow, which must terminate. */
static int layout(nub_pvm_builder *b, uint64_t *code_len) {
  int rc = prepare(b);
  uint64_t len = 0;
  if (rc) return rc;
  for (int round = 0;; round++) {
    if ((rc = assign_pcs(b, &len))) return rc;
    if (!relax_pass(b, len, round < RELAX_ROUNDS)) break;
  }
  for (uint32_t i = 0; i < b->nitems; i++) {
    item *it = &b->items[i];
    if (it->kind != ITEM_BRANCH) continue;
    int64_t off = branch_offset(b, it, len);
    uint8_t w = *offset_width(it);
    if (!pvm_imm_fits((uint64_t)off, w)) {
      fail(b, PVM_ERR_RANGE, i, PVM_OPND_TARGET,
           "target %lld is %lld bytes away, which does not fit a %u-byte offset",
           (long long)((uint64_t)it->pc + (uint64_t)off), (long long)off, w);
      return b->err_code;
    }
    if (pvm_format_info_of((nub_pvm_format)it->enc.format)->offset == PVM_OPND_X)
      it->enc.x = (uint64_t)off;
    else
      it->enc.y = (uint64_t)off;
  }
  *code_len = len;
  return PVM_OK;
}

static int check_labels(nub_pvm_builder *b) {
  for (uint32_t i = 0; i < b->nitems; i++) {
    const item *it = &b->items[i];
    if (it->kind == ITEM_BRANCH && !it->abs && b->labels[it->target] == UNBOUND)
      fail(b, PVM_ERR_ARG, i, PVM_OPND_TARGET, "label %u is never bound",
           (unsigned)it->target);
  }
  for (uint32_t i = 0; i < b->njumps; i++)
    if (!b->jumps[i].abs && b->labels[b->jumps[i].value] == UNBOUND)
      fail(b, PVM_ERR_JUMP_TABLE, i, PVM_OPND_END, "label %u is never bound",
           b->jumps[i].value);
  return b->err_code;
}

/* Resolve the jump table into values[]; returns the entry size. */
static int resolve_jumps(nub_pvm_builder *b, uint64_t code_len, uint32_t *values, unsigned *size) {
  uint32_t max = 0;
  for (uint32_t i = 0; i < b->njumps; i++) {
    const jentry *j = &b->jumps[i];
    /* any value: an entry outside the code is valid and panics when used */
    values[i] = j->abs ? j->value : (uint32_t)label_pc(b, j->value, code_len);
    if (values[i] > max) max = values[i];
  }
  unsigned need = b->njumps ? 1 : 0;
  while (need < 4 && (max >> (8 * need))) need++;
  if (b->jump_size < 0) {
    *size = need;
    return PVM_OK;
  }
  *size = (unsigned)b->jump_size;
  for (uint32_t i = 0; i < b->njumps; i++)
    if (*size < 4 && values[i] >> (8 * *size)) {
      fail(b, PVM_ERR_JUMP_TABLE, i, PVM_OPND_END, "target %u does not fit %u-byte entries",
           values[i], *size);
      return b->err_code;
    }
  return PVM_OK;
}

static void emit_code(const nub_pvm_builder *b, uint8_t *code, uint8_t *mask) {
  for (uint32_t i = 0; i < b->nitems; i++) {
    const item *it = &b->items[i];
    if (it->kind == ITEM_INSN || it->kind == ITEM_BRANCH)
      pvm_enc_write(&it->enc, code + it->pc);
    else
      memcpy(code + it->pc, b->pool + it->data, it->ndata);
    if (it->kind != ITEM_BYTES) mask[it->pc >> 3] |= (uint8_t)(1u << (it->pc & 7));
  }
}

int nub_pvm_builder_finish(nub_pvm_builder *b, uint8_t **blob, size_t *len, nub_pvm_error *err) {
  uint64_t code_len = 0;
  uint32_t *values = NULL;
  uint8_t *out = NULL;
  unsigned z = 0;
  *blob = NULL;
  *len = 0;
  if (b->finished)
    return pvm_fail(err, PVM_ERR_ARG, 0, "builder: already finished");
  b->finished = true;
  if (b->err_code || check_labels(b) || layout(b, &code_len)) goto fail;
  values = malloc((b->njumps ? b->njumps : 1) * sizeof *values);
  if (!values) { fail_oom(b); goto fail; }
  if (resolve_jumps(b, code_len, values, &z)) goto fail;
  uint64_t mask_len = (code_len + 7) / 8;
  uint64_t total = 9 + 1 + 9 + (uint64_t)b->njumps * z + code_len + mask_len;
  out = calloc(1, total);
  if (!out) { fail_oom(b); goto fail; }
  size_t n = nub_pvm_write_natural(out, b->njumps);
  out[n++] = (uint8_t)z;
  n += nub_pvm_write_natural(out + n, code_len);
  for (uint32_t i = 0; i < b->njumps; i++, n += z) pvm_le_write(out + n, values[i], z);
  emit_code(b, out + n, out + n + code_len);
  free(values);
  *blob = out;
  *len = n + code_len + mask_len;
  return PVM_OK;
fail:
  free(values);
  free(out);
  return pvm_fail(err, b->err_code, b->err_index, "%s", b->err_msg);
}
