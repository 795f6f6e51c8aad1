/*
** Assembler: text (docs/asm.md) -> generic blob or SPI container.
**
** One pass over the lines feeds the builder; labels become builder
** labels on first mention.  Every error names line and column: parse
** errors where they are found, builder errors at the operand the builder
** names (the builder is checked after each statement, and after layout
** through the item and jump entry positions kept here).
*/
#include <stdio.h>
#include <stdlib.h>

#include "asm_internal.h"

#define SPI_DATA_MAX ((1u << 24) - 1)   /* ro and rw lengths have 3 bytes */

enum { SEC_CODE, SEC_RO, SEC_RW };
static const char *const section_names[] = {".code", ".ro_data", ".rw_data"};

typedef struct sym {
  const char *name;        /* into the source; NULL: empty slot */
  uint32_t len;
  uint32_t label;          /* builder label */
  const char *def;         /* where defined, NULL if not (yet) */
  const char *use;         /* first use */
  uint8_t block;           /* BLOCK_*: does the definition start a basic block */
  bool target;             /* a branch, jump or jump table entry names it */
} sym;

/* Whether the next instruction starts a basic block (varpi, A.5): at pc 0
** and after a terminator; unknown after .insn and .byte (their decoding
** decides), where labels are not checked. */
enum { BLOCK_NO, BLOCK_YES, BLOCK_UNKNOWN };

/* Source positions of one builder item: the statement and its operands. */
typedef struct item_pos {
  const char *stmt;
  const char *opnd[PVM_OPND_TARGET + 1];   /* by pvm_opnd; NULL when absent */
} item_pos;

typedef struct bytes {
  uint8_t *p;
  uint32_t n, cap;
} bytes;

typedef struct assembler {
  nub_pvm_profile profile;
  const nub_pvm_opinfo *isa;
  const char *src, *end;
  const char *p, *eol;     /* cursor in the current line */
  nub_pvm_builder *b;
  sym *syms;
  uint32_t nsyms, syms_cap;  /* capacity is a power of two */
  item_pos *items;
  uint32_t nitems, items_cap;
  const char **jumps;      /* source position of each jump table entry */
  uint32_t njumps, jumps_cap;
  bytes data[3];           /* SEC_RO, SEC_RW used */
  int section;
  bool spi;
  const char *heap_at, *stack_at, *jump_size_at;
  uint64_t heap_pages, stack_size;
  uint8_t block_next;      /* BLOCK_*: for the next code position */
  nub_pvm_error *err;
} assembler;

/* ---- errors ---- */

__attribute__((format(printf, 4, 5)))
static int fail_at(assembler *A, const char *at, int code, const char *fmt, ...) {
  uint32_t line = 1;
  const char *bol = A->src;
  for (const char *q = A->src; q < at; q++)
    if (*q == '\n') { line++; bol = q + 1; }
  if (A->err) {
    va_list ap;
    int n = snprintf(A->err->msg, sizeof A->err->msg, "%u:%u: ", line,
                     (unsigned)(at - bol) + 1);
    va_start(ap, fmt);
    vsnprintf(A->err->msg + n, sizeof A->err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    A->err->code = code;
    A->err->offset = (uint64_t)(at - A->src);
  }
  return code;
}

static int syntax(assembler *A, const char *at, const char *what) {
  const char *e = at;
  while (e < A->eol && e - at < 24 && *e != ' ' && *e != '\t' && *e != ',') e++;
  if (at >= A->eol || *at == ';' || *at == '#')
    return fail_at(A, at, PVM_ERR_ENCODING, "expected %s at the end of the line", what);
  return fail_at(A, at, PVM_ERR_ENCODING, "expected %s, found '%.*s'", what,
                 (int)(e - at), at);
}

static int oom(assembler *A) {
  return fail_at(A, A->p, PVM_ERR_NOMEM, "out of memory");
}

/* ---- lexing ---- */

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void skip_ws(assembler *A) {
  while (A->p < A->eol && (*A->p == ' ' || *A->p == '\t' || *A->p == '\r')) A->p++;
}

static bool at_end(assembler *A) {
  skip_ws(A);
  return A->p >= A->eol || *A->p == ';' || *A->p == '#';
}

static uint32_t ident_len(const assembler *A, const char *at) {
  const char *q = at;
  if (q >= A->eol || !is_ident_start(*q)) return 0;
  while (q < A->eol && is_ident(*q)) q++;
  return (uint32_t)(q - at);
}

/* Length of the mnemonic or directive name at a statement start. */
static int stmt_name_len(const assembler *A, const char *stmt) {
  const char *q = stmt + (stmt < A->end && *stmt == '.');
  while (q < A->end && is_ident(*q)) q++;
  return (int)(q - stmt);
}

static bool accept(assembler *A, char c) {
  skip_ws(A);
  if (A->p < A->eol && *A->p == c) { A->p++; return true; }
  return false;
}

/* A number: [+-] decimal or 0x hex.  The value is taken modulo 2^64 after
** the sign; *mag and *neg keep what was written, for range checks. */
static int number(assembler *A, uint64_t *mag, bool *neg) {
  uint64_t v = 0;
  skip_ws(A);
  const char *start = A->p, *q = A->p;
  *neg = false;
  if (q < A->eol && (*q == '-' || *q == '+')) { *neg = *q == '-'; q++; }
  bool hex = q + 1 < A->eol && q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
  if (hex) q += 2;
  const char *digits = q;
  for (; q < A->eol; q++) {
    int d = hex ? hex_digit(*q) : is_digit(*q) ? *q - '0' : -1;
    if (d < 0) break;
    unsigned base = hex ? 16 : 10;
    if (v > (UINT64_MAX - (unsigned)d) / base)
      return fail_at(A, start, PVM_ERR_RANGE, "number does not fit 64 bits");
    v = v * base + (unsigned)d;
  }
  if (q == digits || (q < A->eol && is_ident(*q))) return syntax(A, start, "a number");
  if (*neg && v > (1ull << 63))
    return fail_at(A, start, PVM_ERR_RANGE, "negative number below -2^63");
  A->p = q;
  *mag = v;
  return PVM_OK;
}

/* A number as a 64-bit value (negative numbers wrap). */
static int value(assembler *A, uint64_t *out) {
  uint64_t mag;
  bool neg;
  int rc = number(A, &mag, &neg);
  *out = neg ? 0 - mag : mag;
  return rc;
}

/* A number in [lo, hi] where lo may be negative (given as its magnitude). */
static int bounded(assembler *A, uint64_t neg_limit, uint64_t hi, const char *what,
                   uint64_t *out) {
  const char *at = (skip_ws(A), A->p);
  uint64_t mag;
  bool neg;
  int rc = number(A, &mag, &neg);
  if (rc) return rc;
  if (neg ? mag > neg_limit : mag > hi) {
    if (neg_limit)
      return fail_at(A, at, PVM_ERR_RANGE, "%s out of range (-%llu..%llu)", what,
                     (unsigned long long)neg_limit, (unsigned long long)hi);
    return fail_at(A, at, PVM_ERR_RANGE, "%s out of range (0..%llu)", what,
                   (unsigned long long)hi);
  }
  *out = neg ? 0 - mag : mag;
  return PVM_OK;
}

/* Optional ":N" after an operand. */
static int suffix(assembler *A, uint64_t max, const char *what, int *out) {
  uint64_t v;
  if (A->p >= A->eol || *A->p != ':') return PVM_OK;
  A->p++;
  if (A->p >= A->eol || *A->p == ' ' || *A->p == '\t')
    return syntax(A, A->p, what);
  int rc = bounded(A, 0, max, what, &v);
  *out = (int)v;
  return rc;
}

/* ---- symbols ---- */

static uint32_t hash(const char *s, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

static sym *sym_slot(sym *tab, uint32_t cap, const char *name, uint32_t len) {
  for (uint32_t i = hash(name, len) & (cap - 1);; i = (i + 1) & (cap - 1))
    if (!tab[i].name || (tab[i].len == len && !memcmp(tab[i].name, name, len))) return &tab[i];
}

static sym *sym_get(assembler *A, const char *name, uint32_t len) {
  if ((A->nsyms + 1) * 2 > A->syms_cap) {
    uint32_t ncap = A->syms_cap ? A->syms_cap * 2 : 64;
    sym *nt = calloc(ncap, sizeof *nt);
    if (!nt) return NULL;
    for (uint32_t i = 0; i < A->syms_cap; i++)
      if (A->syms[i].name) *sym_slot(nt, ncap, A->syms[i].name, A->syms[i].len) = A->syms[i];
    free(A->syms);
    A->syms = nt;
    A->syms_cap = ncap;
  }
  sym *s = sym_slot(A->syms, A->syms_cap, name, len);
  if (!s->name) {
    s->name = name;
    s->len = len;
    s->label = nub_pvm_builder_label(A->b);
    A->nsyms++;
  }
  return s;
}

static bool looks_like_register(const char *s, uint32_t n) {
  if (n < 2 || s[0] != 'r') return false;
  for (uint32_t i = 1; i < n; i++)
    if (!is_digit(s[i])) return false;
  return true;
}

/* A label reference at A->p (an identifier); *label is its builder label. */
static int label_ref(assembler *A, uint32_t *label) {
  const char *at = A->p;
  uint32_t n = ident_len(A, at);
  sym *s = sym_get(A, at, n);
  if (!s) return oom(A);
  if (!s->use) s->use = at;
  A->p += n;
  *label = s->label;
  s->target = true;
  return PVM_OK;
}

static int define_label(assembler *A, const char *at, uint32_t n) {
  if (looks_like_register(at, n))
    return fail_at(A, at, PVM_ERR_ENCODING, "label '%.*s' looks like a register", (int)n, at);
  if (A->section != SEC_CODE)
    return fail_at(A, at, PVM_ERR_ENCODING, "label '%.*s' in %s: labels mark code positions",
                   (int)n, at, section_names[A->section]);
  sym *s = sym_get(A, at, n);
  if (!s) return oom(A);
  if (s->def) {
    const char *bol = s->def;
    uint32_t line = 1;
    for (const char *q = A->src; q < s->def; q++) line += *q == '\n';
    while (bol > A->src && bol[-1] != '\n') bol--;
    return fail_at(A, at, PVM_ERR_ENCODING, "duplicate label '%.*s' (first defined at %u:%u)",
                   (int)n, at, line, (unsigned)(s->def - bol) + 1);
  }
  s->def = at;
  s->block = A->block_next;
  nub_pvm_builder_bind(A->b, s->label);
  return PVM_OK;
}

/* ---- builder bookkeeping ---- */

/* Report the builder's error at the operand it names, else at the
** statement, prefixed with the mnemonic or directive. */
static int builder_error(assembler *A, const item_pos *pos) {
  nub_pvm_error e;
  int operand = PVM_OPND_END;
  if (!pvm_builder_error(A->b, &e, &operand)) return PVM_OK;
  const char *at = operand != PVM_OPND_END && pos->opnd[operand] ? pos->opnd[operand] : pos->stmt;
  return fail_at(A, at, e.code, "%.*s: %s", stmt_name_len(A, pos->stmt), pos->stmt, e.msg);
}

/* Record source positions for the items the last statement added and
** report a builder error it caused. */
static int after_statement(assembler *A, const item_pos *pos) {
  while (A->nitems < pvm_builder_item_count(A->b)) {
    if (!pvm_grow((void **)&A->items, &A->items_cap, (uint64_t)A->nitems + 1, sizeof *A->items))
      return oom(A);
    A->items[A->nitems++] = *pos;
  }
  return builder_error(A, pos);
}

/* ---- instructions ---- */

static const char *opnd_desc(pvm_opnd o) {
  static const char *names[] = {"", "ra", "rb", "rd", "immediate", "immediate", "target"};
  return names[o];
}

static int operand_count_error(assembler *A, const char *at, const nub_pvm_opinfo *info,
                               int found, bool too_many) {
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)info->format);
  char list[64] = "";
  int n = 0;
  for (int i = 0; i < 4 && fi->operands[i]; i++, n++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
             opnd_desc((pvm_opnd)fi->operands[i]));
  return fail_at(A, at, PVM_ERR_ENCODING,
                 "%s takes %d operand%s%s%s%s, found %s%d", info->name, n, n == 1 ? "" : "s",
                 n ? " (" : "", list, n ? ")" : "", too_many ? "more than " : "", found);
}

static int reg_operand(assembler *A, pvm_asm_insn *t, int r) {
  const char *at = A->p;
  uint32_t n = ident_len(A, at);
  uint64_t num = 0;
  int raw = PVM_RAW_AUTO;
  if (!looks_like_register(at, n)) return syntax(A, at, "a register (r0..r12)");
  for (uint32_t i = 1; i < n && num <= 12; i++) num = num * 10 + (uint64_t)(at[i] - '0');
  if (num > 12)
    return fail_at(A, at, PVM_ERR_RANGE, "register '%.*s' out of range (r0..r12)", (int)n, at);
  A->p += n;
  int rc = suffix(A, 255, "a raw register field (0..255)", &raw);
  t->reg[r] = (uint8_t)num;
  t->raw[r] = (int16_t)raw;
  return rc;
}

static int target_operand(assembler *A, pvm_asm_insn *t, int field) {
  int width = PVM_WIDTH_AUTO, rc;
  uint32_t n = ident_len(A, A->p);
  if (looks_like_register(A->p, n)) return syntax(A, A->p, "a label or a pc");
  if (n) {
    t->target_label = true;
    rc = label_ref(A, &t->label);
  } else {
    uint64_t v;
    rc = bounded(A, 1ull << 63, INT64_MAX, "target pc", &v);
    t->target = (int64_t)v;
  }
  if (!rc) rc = suffix(A, 8, "an offset width", &width);
  t->width[field] = (int8_t)width;
  return rc;
}

static int instruction(assembler *A, const char *stmt, uint32_t n) {
  int opcode = nub_pvm_opcode_by_name(A->profile, stmt, n);
  pvm_asm_insn t;
  item_pos pos = {stmt, {0}};
  int rc = PVM_OK, count = 0;
  if (opcode < 0)
    return fail_at(A, stmt, PVM_ERR_ENCODING, "unknown mnemonic '%.*s'", (int)n, stmt);
  if (A->section != SEC_CODE)
    return fail_at(A, stmt, PVM_ERR_ENCODING, "instruction in %s: instructions belong in .code",
                   section_names[A->section]);
  const nub_pvm_opinfo *info = &A->isa[opcode];
  const pvm_format_info *fi = pvm_format_info_of((nub_pvm_format)info->format);
  memset(&t, 0, sizeof t);
  t.opcode = (uint8_t)opcode;
  t.raw[0] = t.raw[1] = t.raw[2] = PVM_RAW_AUTO;
  t.width[0] = t.width[1] = PVM_WIDTH_AUTO;
  A->p = stmt + n;
  for (int i = 0; i < 4 && fi->operands[i] && !rc; i++, count++) {
    pvm_opnd o = (pvm_opnd)fi->operands[i];
    if (i && !accept(A, ','))
      return at_end(A) ? operand_count_error(A, stmt, info, count, false)
                       : syntax(A, A->p, "','");
    if (at_end(A)) return operand_count_error(A, stmt, info, count, false);
    pos.opnd[o] = A->p;
    if (o == PVM_OPND_TARGET) {
      pos.opnd[fi->offset] = A->p;   /* builder errors about the offset field */
      rc = target_operand(A, &t, fi->offset - PVM_OPND_X);
    } else if (o >= PVM_OPND_X) {
      int width = PVM_WIDTH_AUTO;
      rc = value(A, &t.imm[o - PVM_OPND_X]);
      if (!rc) rc = suffix(A, 8, "an immediate width", &width);
      t.width[o - PVM_OPND_X] = (int8_t)width;
    } else {
      rc = reg_operand(A, &t, o - PVM_OPND_RA);
    }
  }
  if (rc) return rc;
  skip_ws(A);
  if (accept(A, ',')) return operand_count_error(A, A->p - 1, info, count, true);
  if (!at_end(A))
    return count ? syntax(A, A->p, "',' or the end of the line")
                 : operand_count_error(A, A->p, info, 0, true);
  pvm_asm_emit(A->b, A->profile, &t);
  A->block_next = info->flags & PVM_OPF_TERM ? BLOCK_YES : BLOCK_NO;
  return after_statement(A, &pos);
}

/* ---- directives ---- */

/* Code bytes that start no instruction; p NULL: zeros. */
static int code_bytes(assembler *A, const char *stmt, const uint8_t *p, uint64_t n) {
  item_pos pos = {stmt, {0}};
  uint8_t *zeros = NULL;
  if (!p && !(p = zeros = calloc(1, n ? n : 1))) return oom(A);
  nub_pvm_builder_bytes(A->b, p, n);
  A->block_next = BLOCK_UNKNOWN;
  free(zeros);
  return after_statement(A, &pos);
}

/* Bytes for the current section; p NULL: zeros. */
static int data_add(assembler *A, const char *stmt, const uint8_t *p, uint64_t n) {
  bytes *d = &A->data[A->section];
  if (A->section == SEC_CODE) return code_bytes(A, stmt, p, n);
  if ((uint64_t)d->n + n > SPI_DATA_MAX)
    return fail_at(A, stmt, PVM_ERR_LIMIT, "%s exceeds %u bytes", section_names[A->section],
                   SPI_DATA_MAX);
  if (!pvm_grow((void **)&d->p, &d->cap, (uint64_t)d->n + n, 1)) return oom(A);
  if (p) memcpy(d->p + d->n, p, n);
  else memset(d->p + d->n, 0, n);
  d->n += (uint32_t)n;
  return PVM_OK;
}

/* .byte / .u16 / .u32 / .u64: comma-separated values of `size` bytes. */
static int data_values(assembler *A, const char *stmt, unsigned size) {
  const uint64_t hi = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
  uint8_t buf[8];
  do {
    uint64_t v;
    int rc;
    if (at_end(A)) return syntax(A, A->p, "a value");
    if ((rc = bounded(A, 1ull << (8 * size - 1), hi, "value", &v))) return rc;
    pvm_le_write(buf, v, size);
    if ((rc = data_add(A, stmt, buf, size))) return rc;
  } while (accept(A, ','));
  return PVM_OK;
}

static int insn_bytes(assembler *A, const char *stmt) {
  uint8_t buf[PVM_INSN_MAX_BYTES];
  size_t n = 0;
  if (A->section != SEC_CODE)
    return fail_at(A, stmt, PVM_ERR_ENCODING, ".insn in %s: instructions belong in .code",
                   section_names[A->section]);
  while (!at_end(A)) {
    const char *tok = A->p;
    while (A->p < A->eol && hex_digit(*A->p) >= 0) A->p++;
    size_t digits = (size_t)(A->p - tok);
    if (!digits || (A->p < A->eol && *A->p != ' ' && *A->p != '\t' && *A->p != ';' &&
                    *A->p != '#' && *A->p != '\r'))
      return syntax(A, A->p, "hex bytes");
    if (digits % 2)
      return fail_at(A, tok, PVM_ERR_ENCODING, "odd number of hex digits in '%.*s'",
                     (int)digits, tok);
    for (size_t i = 0; i < digits; i += 2) {
      if (n == sizeof buf)
        return fail_at(A, tok + i, PVM_ERR_LIMIT, "an instruction spans at most %u bytes",
                       PVM_INSN_MAX_BYTES);
      buf[n++] = (uint8_t)(hex_digit(tok[i]) << 4 | hex_digit(tok[i + 1]));
    }
  }
  if (!n) return syntax(A, A->p, "hex bytes");
  item_pos pos = {stmt, {0}};
  nub_pvm_builder_raw(A->b, buf, n);
  A->block_next = BLOCK_UNKNOWN;
  return after_statement(A, &pos);
}

static int jump_entry(assembler *A, const char *stmt) {
  const char *at = (skip_ws(A), A->p);
  item_pos pos = {stmt, {0}};
  int rc;
  if (!pvm_grow((void **)&A->jumps, &A->jumps_cap, (uint64_t)A->njumps + 1, sizeof *A->jumps))
    return oom(A);
  A->jumps[A->njumps++] = at;
  if (looks_like_register(at, ident_len(A, at))) return syntax(A, at, "a label or a pc");
  if (ident_len(A, at)) {
    uint32_t label;
    if ((rc = label_ref(A, &label))) return rc;
    nub_pvm_builder_jump_entry(A->b, label);
  } else {
    uint64_t pc;
    if ((rc = bounded(A, 0, UINT32_MAX, "jump table entry", &pc))) return rc;
    nub_pvm_builder_jump_entry_abs(A->b, (uint32_t)pc);
  }
  return builder_error(A, &pos);
}

/* A directive that may appear once and takes a number up to max. */
static int setting(assembler *A, const char *stmt, const char **seen, uint64_t max,
                   const char *what, uint64_t *out) {
  if (*seen)
    return fail_at(A, stmt, PVM_ERR_ENCODING, "duplicate %.*s", stmt_name_len(A, stmt), stmt);
  *seen = stmt;
  return bounded(A, 0, max, what, out);
}

static int directive(assembler *A, const char *stmt) {
  uint32_t n = 1 + ident_len(A, stmt + 1);
  uint64_t v;
  int rc = PVM_OK;
  A->p = stmt + n;
#define IS(name) (n == sizeof name - 1 && !memcmp(stmt, name, n))
  if (IS(".code") || IS(".ro_data") || IS(".rw_data")) {
    A->section = IS(".code") ? SEC_CODE : IS(".ro_data") ? SEC_RO : SEC_RW;
    A->spi |= A->section != SEC_CODE;
  } else if (IS(".byte")) {
    rc = data_values(A, stmt, 1);
  } else if (IS(".u16")) {
    rc = data_values(A, stmt, 2);
  } else if (IS(".u32")) {
    rc = data_values(A, stmt, 4);
  } else if (IS(".u64")) {
    rc = data_values(A, stmt, 8);
  } else if (IS(".zero")) {
    if (!(rc = bounded(A, 0, A->section == SEC_CODE ? PVM_MAX_CODE_LEN : SPI_DATA_MAX,
                       "byte count", &v)))
      rc = data_add(A, stmt, NULL, v);
  } else if (IS(".insn")) {
    rc = insn_bytes(A, stmt);
  } else if (IS(".jump")) {
    rc = jump_entry(A, stmt);
  } else if (IS(".jump_size")) {
    if (!(rc = setting(A, stmt, &A->jump_size_at, 4, "jump table entry size", &v))) {
      item_pos pos = {stmt, {0}};
      nub_pvm_builder_jump_size(A->b, (unsigned)v);
      rc = after_statement(A, &pos);
    }
  } else if (IS(".heap_pages")) {
    rc = setting(A, stmt, &A->heap_at, UINT16_MAX, "heap pages", &A->heap_pages);
    A->spi = true;
  } else if (IS(".stack_size")) {
    rc = setting(A, stmt, &A->stack_at, SPI_DATA_MAX, "stack size", &A->stack_size);
    A->spi = true;
  } else {
    return fail_at(A, stmt, PVM_ERR_ENCODING, "unknown directive '%.*s'", (int)n, stmt);
  }
#undef IS
  if (rc) return rc;
  return at_end(A) ? PVM_OK : syntax(A, A->p, "the end of the line");
}

/* ---- lines ---- */

static int statement_line(assembler *A) {
  for (;;) {
    if (at_end(A)) return PVM_OK;
    const char *at = A->p;
    uint32_t n = ident_len(A, at);
    if (*at == '.') return directive(A, at);
    if (!n) return syntax(A, at, "a label, an instruction or a directive");
    if (at + n < A->eol && at[n] == ':') {   /* label definition */
      int rc = define_label(A, at, n);
      if (rc) return rc;
      A->p = at + n + 1;
      continue;
    }
    return instruction(A, at, n);
  }
}

static int check_labels(assembler *A) {
  const sym *first = NULL;
  for (uint32_t i = 0; i < A->syms_cap; i++) {
    const sym *s = &A->syms[i];
    if (s->name && !s->def && (!first || s->use < first->use)) first = s;
  }
  if (first)
    return fail_at(A, first->use, PVM_ERR_ENCODING, "undefined label '%.*s'", (int)first->len,
                   first->name);
  /* a jump into the middle of a block panics (A.5): refuse it here */
  for (uint32_t i = 0; i < A->syms_cap; i++) {
    const sym *s = &A->syms[i];
    if (s->name && s->target && s->block == BLOCK_NO && (!first || s->def < first->def)) first = s;
  }
  if (!first) return PVM_OK;
  return fail_at(A, first->def, PVM_ERR_ENCODING, "label %.*s is a branch target but does not "
                 "start a basic block: put a terminator or `fallthrough` before it",
                 (int)first->len, first->name);
}

/* Map an error of nub_pvm_builder_finish back to the source. */
static int finish_error(assembler *A) {
  nub_pvm_error e;
  pvm_builder_error(A->b, &e, NULL);
  if (e.code == PVM_ERR_JUMP_TABLE) {
    const char *at = e.offset < A->njumps ? A->jumps[e.offset] : A->jump_size_at;
    return fail_at(A, at ? at : A->end, e.code, "jump table entry %llu: %s",
                   (unsigned long long)e.offset, e.msg);
  }
  if (e.offset >= A->nitems) return fail_at(A, A->end, e.code, "%s", e.msg);
  return builder_error(A, &A->items[e.offset]);
}

static int finish(assembler *A, uint8_t **out, size_t *out_len) {
  uint8_t *blob = NULL;
  size_t len = 0;
  int rc = check_labels(A);
  if (rc) return rc;
  if (nub_pvm_builder_finish(A->b, &blob, &len, NULL)) return finish_error(A);
  if (!A->spi) {
    *out = blob;
    *out_len = len;
    return PVM_OK;
  }
  nub_pvm_spi spi = {A->data[SEC_RO].p, A->data[SEC_RO].n, A->data[SEC_RW].p, A->data[SEC_RW].n,
                 (uint32_t)A->heap_pages, (uint32_t)A->stack_size, blob, (uint32_t)len};
  rc = len > UINT32_MAX ? fail_at(A, A->end, PVM_ERR_LIMIT, "code blob exceeds 2^32 bytes")
                        : nub_pvm_spi_encode(&spi, out, out_len, A->err);
  free(blob);
  return rc;
}

int nub_pvm_asm(nub_pvm_profile profile, const char *text, size_t len, uint8_t **out, size_t *out_len,
            bool *is_spi, nub_pvm_error *err) {
  assembler A = {.profile = profile, .isa = nub_pvm_isa(profile), .src = text,
                 .end = text + len, .block_next = BLOCK_YES, .err = err};
  int rc = PVM_OK;
  *out = NULL;
  *out_len = 0;
  if (!A.isa) return pvm_fail(err, PVM_ERR_ARG, 0, "asm: unknown profile");
  if (!(A.b = nub_pvm_builder_new(profile))) return pvm_fail(err, PVM_ERR_NOMEM, 0, "asm: out of memory");
  for (const char *line = text; line < A.end && !rc;) {
    const char *nl = memchr(line, '\n', (size_t)(A.end - line));
    A.eol = nl ? nl : A.end;
    A.p = line;
    for (const char *q = line; q < A.eol && !rc; q++)
      if ((uint8_t)*q < 0x20 && *q != '\t' && *q != '\r')
        rc = fail_at(&A, q, PVM_ERR_ENCODING, "unexpected control character 0x%02x",
                     (uint8_t)*q);
    if (!rc) rc = statement_line(&A);
    if (!nl) break;
    line = nl + 1;
  }
  if (!rc) rc = finish(&A, out, out_len);
  if (!rc && is_spi) *is_spi = A.spi;
  nub_pvm_builder_free(A.b);
  free(A.syms);
  free(A.items);
  free(A.jumps);
  for (int i = 0; i < 3; i++) free(A.data[i].p);
  return rc;
}
