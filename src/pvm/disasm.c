/*
** Disassembler: blob -> assembler text (docs/asm.md) that nub_pvm_asm turns
** back into the same bytes.
**
** An instruction is printed in readable form when encoding that form
** gives exactly its bytes, else as `.insn` with its meaning in a comment.
** Bytes that start no instruction become `.byte`.  While printing, the
** same model drives a builder the way the assembler will; if that does
** not reproduce the blob (branch offsets can relax to another fixed
** point), the text is printed again with every offset width explicit.
*/
#include <stdio.h>
#include <stdlib.h>

#include "asm_internal.h"

#define COMMENT_COLUMN 40
#define BYTES_PER_LINE 16

/* ---- text buffer ---- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

__attribute__((format(printf, 2, 3)))
static void sb_printf(sbuf *s, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = s->cap - s->n;
    va_start(ap, fmt);
    int k = s->oom ? 0 : vsnprintf(s->p ? s->p + s->n : NULL, room, fmt, ap);
    va_end(ap);
    if (s->oom || k < 0) { s->oom = true; return; }
    if ((size_t)k < room) { s->n += (size_t)k; return; }
    size_t ncap = s->cap ? s->cap * 2 : 4096;
    while (ncap - s->n <= (size_t)k) ncap *= 2;
    char *np = realloc(s->p, ncap);
    if (!np) { s->oom = true; return; }
    s->p = np;
    s->cap = ncap;
  }
}

/* Pad the current line (which began at offset start) to the comment column. */
static void sb_comment(sbuf *s, size_t start) {
  size_t col = s->n - start;
  sb_printf(s, "%*s; ", col < COMMENT_COLUMN ? (int)(COMMENT_COLUMN - col) : 1, "");
}

/* ---- bitmaps over pcs 0..code_len ---- */

static bool bit(const uint64_t *set, uint64_t i) { return (set[i >> 6] >> (i & 63)) & 1; }
static void bit_set(uint64_t *set, uint64_t i) { set[i >> 6] |= 1ull << (i & 63); }

/* ---- lines ---- */

enum { LINE_INSN, LINE_RAW, LINE_BYTES };

typedef struct line {
  int kind;
  uint32_t pc, n;          /* bytes the line covers */
  bool padded;             /* INSN: code bytes that start nothing follow */
  nub_pvm_insn in;             /* INSN, RAW */
} line;

typedef struct dis {
  nub_pvm_profile profile;
  const nub_pvm_opinfo *isa;
  nub_pvm_blob bl;
  uint64_t *inside;        /* pcs strictly inside an instruction line */
  uint64_t *blocks;        /* basic block starts (varpi, A.5) */
  uint64_t *labels;        /* pcs that get a label */
  uint32_t *rank;          /* labels before each 64-pc word: builder label ids */
  uint32_t nlabels;
  bool explicit_offsets;
  sbuf *out;
  nub_pvm_builder *b;
} dis;

static pvm_enc enc_of(const nub_pvm_insn *in) {
  pvm_enc e = {in->opcode, in->format, in->raw_ra, in->raw_rb, in->raw_rd,
               in->format == PVM_FMT_REG_IMM64 ? 8 : in->lx, in->ly, in->imm_x, in->imm_y};
  return e;
}

static void classify(const dis *d, uint32_t pc, line *ln) {
  const nub_pvm_blob *bl = &d->bl;
  uint8_t buf[PVM_ENC_MAX_BYTES];
  memset(ln, 0, sizeof *ln);
  ln->pc = pc;
  if (!nub_pvm_blob_is_start(bl, pc)) {
    uint32_t end = pc + 1;
    while (end < bl->code_len && !nub_pvm_blob_is_start(bl, end)) end++;
    ln->kind = LINE_BYTES;
    ln->n = end - pc;
    return;
  }
  nub_pvm_decode(d->profile, bl, pc, &ln->in);
  ln->kind = LINE_RAW;
  ln->n = ln->in.len;
  if (ln->in.op == PVM_OP_INVALID) return;
  pvm_enc e = enc_of(&ln->in);
  unsigned n = pvm_enc_write(&e, buf);
  if (n > ln->in.len || memcmp(buf, bl->code + pc, n) != 0) return;
  ln->kind = LINE_INSN;
  ln->n = n;
  ln->padded = pc + n < bl->code_len && !nub_pvm_blob_is_start(bl, pc + n);
}

/* A label can stand at t when no instruction line covers it. */
static bool at_boundary(const dis *d, int64_t t) {
  return t >= 0 && t <= d->bl.code_len && !bit(d->inside, (uint64_t)t);
}

/* Branch targets get labels only at basic block starts: the assembler
** refuses a label target elsewhere, so other targets print as pcs. */
static bool label_target(const dis *d, int64_t t) {
  return at_boundary(d, t) && t < d->bl.code_len && bit(d->blocks, (uint64_t)t);
}

/* varpi as the program analysis computes it (src/pvm/program.c): a valid
** instruction at pc 0 or right after a valid terminator, where right
** after means no run of code bytes too long for skip (a synthetic trap). */
static void find_blocks(dis *d) {
  const nub_pvm_blob *bl = &d->bl;
  bool after_term = true;
  for (uint32_t pc = 0; pc < bl->code_len; pc++) {
    nub_pvm_insn in;
    if (!nub_pvm_blob_is_start(bl, pc)) continue;
    nub_pvm_decode(d->profile, bl, pc, &in);
    bool valid = in.op != PVM_OP_INVALID;
    if (valid && after_term) bit_set(d->blocks, pc);
    after_term = valid && (d->isa[in.opcode].flags & PVM_OPF_TERM);
    uint64_t next = (uint64_t)pc + in.len;
    if (next < bl->code_len && !nub_pvm_blob_is_start(bl, next)) after_term = false;
  }
}

static uint32_t label_id(const dis *d, uint32_t pc) {
  uint64_t below = d->labels[pc >> 6] & ((1ull << (pc & 63)) - 1);
  return d->rank[pc >> 6] + (uint32_t)__builtin_popcountll(below);
}

static bool has_target(const nub_pvm_insn *in) {
  return pvm_format_info_of((nub_pvm_format)in->format)->offset != PVM_OPND_END;
}

/* First pass: which pcs are inside instruction lines; second: labels. */
static void find_labels(dis *d) {
  line ln;
  for (uint32_t pc = 0; pc < d->bl.code_len; pc += ln.n) {
    classify(d, pc, &ln);
    if (ln.kind != LINE_BYTES)
      for (uint32_t i = 1; i < ln.n; i++) bit_set(d->inside, (uint64_t)pc + i);
  }
  for (uint32_t pc = 0; pc < d->bl.code_len; pc += ln.n) {
    classify(d, pc, &ln);
    if (ln.kind == LINE_INSN && has_target(&ln.in) && label_target(d, ln.in.target))
      bit_set(d->labels, (uint64_t)ln.in.target);
  }
  for (uint32_t i = 0; i < d->bl.jump_count; i++) {
    uint32_t t = nub_pvm_blob_jump_entry(&d->bl, i);
    if (label_target(d, t)) bit_set(d->labels, t);
  }
  uint32_t words = d->bl.code_len / 64 + 1, n = 0;
  for (uint32_t w = 0; w < words; w++) {
    d->rank[w] = n;
    n += (uint32_t)__builtin_popcountll(d->labels[w]);
  }
  d->nlabels = n;
}

/* ---- instructions as text ---- */

static void print_number(sbuf *s, int64_t v) {
  if (v > -65536 && v < 65536) sb_printf(s, "%lld", (long long)v);
  else if (v < 0) sb_printf(s, "-0x%llx", (unsigned long long)(0 - (uint64_t)v));
  else sb_printf(s, "0x%llx", (unsigned long long)v);
}

static void print_width(sbuf *s, int w) {
  if (w != PVM_WIDTH_AUTO) sb_printf(s, ":%d", w);
}

/* Prints the instruction the assembler reads back as t. */
static void print_insn(sbuf *s, const nub_pvm_opinfo *info, const pvm_asm_insn *t) {
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)info->format);
  sb_printf(s, "%s", info->name);
  for (int i = 0; i < 4 && fi->operands[i]; i++) {
    pvm_opnd o = (pvm_opnd)fi->operands[i];
    sb_printf(s, "%s", i ? ", " : " ");
    switch (o) {
    case PVM_OPND_RA: case PVM_OPND_RB: case PVM_OPND_RD: {
      int r = o - PVM_OPND_RA;
      sb_printf(s, "r%u", t->reg[r]);
      if (t->raw[r] != PVM_RAW_AUTO)   /* whole-byte fields read best in hex */
        sb_printf(s, t->raw[r] > 15 ? ":0x%02x" : ":%d", t->raw[r]);
      break;
    }
    case PVM_OPND_X: case PVM_OPND_Y:
      if (info->format == PVM_FMT_REG_IMM64 && t->imm[0] >= 65536)
        sb_printf(s, "0x%llx", (unsigned long long)t->imm[0]);  /* a bit pattern */
      else
        print_number(s, (int64_t)t->imm[o - PVM_OPND_X]);
      print_width(s, t->width[o - PVM_OPND_X]);
      break;
    case PVM_OPND_TARGET:
      if (t->target_label) sb_printf(s, "L%lld", (long long)t->target);
      else print_number(s, t->target);
      print_width(s, t->width[fi->offset - PVM_OPND_X]);
      break;
    case PVM_OPND_END:
      break;
    }
  }
}

/* The width the assembler picks for field f when none is written. */
static unsigned default_width(const dis *d, const line *ln, const pvm_asm_insn *t, pvm_opnd f) {
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)ln->in.format);
  unsigned actual = f == PVM_OPND_X ? ln->in.lx : ln->in.ly;
  if (ln->in.format == PVM_FMT_REG_IMM64) return 8;
  if (ln->padded && fi->trailing == f) return 4;
  if (fi->offset != f) return pvm_imm_width(f == PVM_OPND_X ? ln->in.imm_x : ln->in.imm_y);
  if (d->explicit_offsets) return 5;   /* never equal: always written */
  bool moves = t->target_label && ln->in.target > (int64_t)ln->pc;
  return pvm_offset_width(ln->in.target - (int64_t)ln->pc, actual, moves);
}

/* The model of a decoded instruction; exact: the encoding choices it
** makes are those that differ from what the assembler would choose. */
static void model_of(const dis *d, const line *ln, bool exact, pvm_asm_insn *t) {
  const nub_pvm_insn *in = &ln->in;
  const uint8_t regs[3] = {in->ra, in->rb, in->rd}, raws[3] = {in->raw_ra, in->raw_rb, in->raw_rd};
  memset(t, 0, sizeof *t);
  t->opcode = in->opcode;
  for (int r = 0; r < 3; r++) {
    t->reg[r] = regs[r];
    t->raw[r] = exact && raws[r] != regs[r] ? raws[r] : PVM_RAW_AUTO;
  }
  t->imm[0] = in->imm_x;
  t->imm[1] = in->imm_y;
  t->target = in->target;
  t->target_label = exact && has_target(in) && label_target(d, in->target);
  if (t->target_label) t->label = label_id(d, (uint32_t)in->target);
  for (pvm_opnd f = PVM_OPND_X; f <= PVM_OPND_Y; f++) {
    const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)in->format);
    t->width[f - PVM_OPND_X] = PVM_WIDTH_AUTO;
    if (!(f == PVM_OPND_X ? fi->has_x : fi->has_y)) continue;
    unsigned actual = f == PVM_OPND_X ? (in->format == PVM_FMT_REG_IMM64 ? 8u : in->lx) : in->ly;
    t->width[f - PVM_OPND_X] = exact && actual != default_width(d, ln, t, f)
                                   ? (int8_t)actual : PVM_WIDTH_AUTO;
  }
}

static void print_hex(sbuf *s, const uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) sb_printf(s, i ? " %02x" : "%02x", p[i]);
}

static void emit_label(dis *d, uint32_t pc) {
  if (!bit(d->labels, pc)) return;
  sb_printf(d->out, "L%u:\n", pc);
  nub_pvm_builder_bind(d->b, label_id(d, pc));
}

static void emit_insn(dis *d, const line *ln) {
  const uint8_t *bytes = d->bl.code + ln->pc;
  size_t start = d->out->n;
  pvm_asm_insn t;
  sb_printf(d->out, "        ");
  if (ln->kind == LINE_INSN) {
    model_of(d, ln, true, &t);
    print_insn(d->out, &d->isa[ln->in.opcode], &t);
    pvm_asm_emit(d->b, d->profile, &t);
  } else {
    sb_printf(d->out, ".insn ");
    print_hex(d->out, bytes, ln->n);
    nub_pvm_builder_raw(d->b, bytes, ln->n);
  }
  sb_comment(d->out, start);
  sb_printf(d->out, "%6u: ", ln->pc);
  if (ln->kind == LINE_INSN) {
    print_hex(d->out, bytes, ln->n);
  } else if (ln->in.op == PVM_OP_INVALID) {
    sb_printf(d->out, "invalid opcode %u (traps)", ln->in.opcode);
  } else {
    sb_printf(d->out, "decodes as ");
    model_of(d, ln, false, &t);
    print_insn(d->out, &d->isa[ln->in.opcode], &t);
  }
  sb_printf(d->out, "\n");
}

/* A run of bytes that start no instruction, split at labels. */
static void emit_bytes(dis *d, const line *ln) {
  uint32_t pc = ln->pc, end = ln->pc + ln->n;
  while (pc < end) {
    uint32_t stop = pc + 1;
    if (pc > ln->pc) emit_label(d, pc);
    while (stop < end && stop - pc < BYTES_PER_LINE && !bit(d->labels, stop)) stop++;
    size_t start = d->out->n;
    sb_printf(d->out, "        .byte ");
    for (uint32_t i = pc; i < stop; i++)
      sb_printf(d->out, i > pc ? ", 0x%02x" : "0x%02x", d->bl.code[i]);
    sb_comment(d->out, start);
    sb_printf(d->out, "%6u\n", pc);
    nub_pvm_builder_bytes(d->b, d->bl.code + pc, stop - pc);
    pc = stop;
  }
}

static unsigned default_jump_size(const nub_pvm_blob *bl) {
  uint32_t max = 0;
  unsigned z = bl->jump_count ? 1 : 0;
  for (uint32_t i = 0; i < bl->jump_count; i++)
    if (nub_pvm_blob_jump_entry(bl, i) > max) max = nub_pvm_blob_jump_entry(bl, i);
  while (z < 4 && (max >> (8 * z))) z++;
  return z;
}

static void emit_jump_table(dis *d) {
  const nub_pvm_blob *bl = &d->bl;
  if (bl->jump_entry_size != default_jump_size(bl)) {
    sb_printf(d->out, ".jump_size %u\n", bl->jump_entry_size);
    nub_pvm_builder_jump_size(d->b, bl->jump_entry_size);
  }
  for (uint32_t i = 0; i < bl->jump_count; i++) {
    uint32_t t = nub_pvm_blob_jump_entry(bl, i);
    size_t start = d->out->n;
    if (label_target(d, t)) {
      sb_printf(d->out, ".jump L%u", t);
      nub_pvm_builder_jump_entry(d->b, label_id(d, t));
    } else {
      sb_printf(d->out, ".jump %u", t);
      nub_pvm_builder_jump_entry_abs(d->b, t);
    }
    sb_comment(d->out, start);
    sb_printf(d->out, "entry %u, djump address %llu\n", i,
              (unsigned long long)(i + 1) * PVM_JUMP_ALIGN);
  }
}

/* Print the whole code; returns the builder's verdict on the text. */
static int emit_code(dis *d, const uint8_t *blob, size_t len, bool *same, nub_pvm_error *err) {
  uint8_t *again = NULL;
  size_t again_len = 0;
  line ln;
  int rc;
  if (!(d->b = nub_pvm_builder_new(d->profile)))
    return pvm_fail(err, PVM_ERR_NOMEM, 0, "disasm: out of memory");
  for (uint32_t i = 0; i < d->nlabels; i++) nub_pvm_builder_label(d->b);
  sb_printf(d->out, "; generic blob: %zu bytes; code: %u bytes; jump table: %u entries "
            "of %u bytes\n", len, d->bl.code_len, d->bl.jump_count, d->bl.jump_entry_size);
  emit_jump_table(d);
  for (uint32_t pc = 0; pc < d->bl.code_len; pc += ln.n) {
    classify(d, pc, &ln);
    emit_label(d, pc);
    if (ln.kind == LINE_BYTES) emit_bytes(d, &ln);
    else emit_insn(d, &ln);
  }
  emit_label(d, d->bl.code_len);
  rc = nub_pvm_builder_finish(d->b, &again, &again_len, err);
  nub_pvm_builder_free(d->b);
  d->b = NULL;
  *same = !rc && again_len == len && memcmp(again, blob, len) == 0;
  free(again);
  return rc;
}

static int disasm_blob(nub_pvm_profile profile, const uint8_t *blob, size_t len, sbuf *out,
                       nub_pvm_error *err) {
  dis d = {.profile = profile, .isa = nub_pvm_isa(profile), .out = out};
  size_t mark = out->n;
  bool same = false;
  int rc = nub_pvm_blob_parse(blob, blob + len, &d.bl, err);
  if (rc) return rc;
  size_t words = d.bl.code_len / 64 + 1;
  d.inside = calloc(words, sizeof *d.inside);
  d.labels = calloc(words, sizeof *d.labels);
  d.blocks = calloc(words, sizeof *d.blocks);
  d.rank = calloc(words, sizeof *d.rank);
  if (!d.inside || !d.labels || !d.blocks || !d.rank) {
    rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "disasm: out of memory");
    goto out;
  }
  find_blocks(&d);
  find_labels(&d);
  if ((rc = emit_code(&d, blob, len, &same, err)) || same) goto out;
  out->n = mark;
  d.explicit_offsets = true;
  if ((rc = emit_code(&d, blob, len, &same, err)) || same) goto out;
  rc = pvm_fail(err, PVM_ERR_ENCODING, 0, "disasm: the text does not reassemble to the blob");
out:
  free(d.inside);
  free(d.labels);
  free(d.blocks);
  free(d.rank);
  return rc;
}

/* ---- SPI ---- */

static uint32_t zero_run(const uint8_t *p, uint32_t i, uint32_t n) {
  uint32_t k = i;
  while (k < n && p[k] == 0) k++;
  return k - i;
}

/* Data as .byte lines, with .zero for runs of 8 or more zeros. */
static void emit_data(sbuf *s, const char *section, const uint8_t *p, uint32_t n) {
  uint32_t i = 0;
  if (!n) return;
  sb_printf(s, "%s\n", section);
  while (i < n) {
    uint32_t zeros = zero_run(p, i, n), stop = i;
    if (zeros >= 8) {
      sb_printf(s, "        .zero %u\n", zeros);
      i += zeros;
      continue;
    }
    while (stop < n && stop - i < BYTES_PER_LINE && (stop == i || zero_run(p, stop, n) < 8))
      stop++;
    sb_printf(s, "        .byte ");
    for (uint32_t k = i; k < stop; k++) sb_printf(s, k > i ? ", 0x%02x" : "0x%02x", p[k]);
    sb_printf(s, "\n");
    i = stop;
  }
}

static int disasm_spi(nub_pvm_profile profile, const uint8_t *in, size_t len, sbuf *out,
                      nub_pvm_error *err) {
  nub_pvm_spi spi;
  int rc = nub_pvm_spi_parse(in, in + len, &spi, err);
  if (rc) return rc;
  sb_printf(out, "; SPI container: %zu bytes, ro data %u bytes, rw data %u bytes, "
            "%u heap pages, stack %u bytes\n", len, spi.ro_len, spi.rw_len, spi.heap_pages,
            spi.stack_size);
  sb_printf(out, ".heap_pages %u\n.stack_size %u\n", spi.heap_pages, spi.stack_size);
  emit_data(out, ".ro_data", spi.ro_data, spi.ro_len);
  emit_data(out, ".rw_data", spi.rw_data, spi.rw_len);
  sb_printf(out, ".code\n");
  rc = disasm_blob(profile, spi.code_blob, spi.code_blob_len, out, err);
  if (rc && err) err->offset += (uint64_t)(spi.code_blob - in);
  return rc;
}

int nub_pvm_disasm(nub_pvm_profile profile, const uint8_t *in, size_t len, unsigned flags,
               char **text, size_t *text_len, nub_pvm_error *err) {
  sbuf out = {0};
  int rc;
  *text = NULL;
  *text_len = 0;
  if (!nub_pvm_isa(profile)) return pvm_fail(err, PVM_ERR_ARG, 0, "disasm: unknown profile");
  rc = flags & PVM_DISASM_SPI ? disasm_spi(profile, in, len, &out, err)
                              : disasm_blob(profile, in, len, &out, err);
  if (!rc) sb_printf(&out, "%s", "");   /* NUL-terminated even when empty */
  if (!rc && out.oom) rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "disasm: out of memory");
  if (rc) {
    free(out.p);
    return rc;
  }
  *text = out.p;
  *text_len = out.n;
  return PVM_OK;
}
