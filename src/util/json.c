/*
** Strict JSON reader (RFC 8259) with exact 64-bit integers.
** Reads only through (p, end); depth is bounded; every error names the
** byte offset, line and column.
*/
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk { struct chunk *next; size_t used, size; char data[]; } chunk;

struct json_doc {
  chunk *chunks;
  json_value *root;
};

typedef struct parser {
  const char *start, *p, *end;
  json_doc *doc;
  json_error *err;
  int depth;
} parser;

static void *arena_alloc(json_doc *d, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!d->chunks || d->chunks->size - d->chunks->used < n) {
    size_t size = n > 65536 ? n : 65536;
    chunk *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->next = d->chunks;
    c->used = 0;
    c->size = size;
    d->chunks = c;
  }
  void *r = d->chunks->data + d->chunks->used;
  d->chunks->used += n;
  return r;
}

static int fail(parser *ps, const char *at, const char *fmt, ...) {
  if (ps->err) {
    size_t line = 1, col = 1;
    for (const char *q = ps->start; q < at && q < ps->end; q++) {
      if (*q == '\n') { line++; col = 1; } else col++;
    }
    ps->err->offset = (size_t)(at - ps->start);
    ps->err->line = line;
    ps->err->column = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static json_value *new_value(parser *ps, json_type t) {
  json_value *v = arena_alloc(ps->doc, sizeof *v);
  if (v) {
    memset(v, 0, sizeof *v);
    v->type = t;
    v->offset = (size_t)(ps->p - ps->start);
  }
  return v;
}

static int parse_value(parser *ps, json_value **out);

static int literal(parser *ps, const char *word, json_value **out, json_type t, bool b) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return fail(ps, ps->p, "invalid literal (expected '%s')", word);
  json_value *v = new_value(ps, t);
  if (!v) return fail(ps, ps->p, "out of memory");
  v->boolean = b;
  ps->p += n;
  *out = v;
  return 0;
}

static int hex4(parser *ps, const char *at, unsigned *out) {
  unsigned v = 0;
  if (ps->end - at < 4) return fail(ps, at, "truncated \\u escape");
  for (int i = 0; i < 4; i++) {
    char c = at[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return fail(ps, at + i, "bad hex digit in \\u escape");
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses a string starting at the opening quote. */
static int parse_string(parser *ps, const char **str, size_t *len) {
  const char *q = ps->p + 1;
  size_t raw = 0;
  while (q < ps->end && *q != '"') { if (*q == '\\') q++; q++; raw++; }
  if (q >= ps->end) return fail(ps, ps->p, "unterminated string");
  char *o = arena_alloc(ps->doc, (size_t)(q - ps->p) * 2 + 1);  /* escapes never grow */
  if (!o) return fail(ps, ps->p, "out of memory");
  size_t n = 0;
  q = ps->p + 1;
  while (*q != '"') {
    unsigned char c = (unsigned char)*q;
    if (c < 0x20) return fail(ps, q, "control character 0x%02x in string", c);
    if (c != '\\') { o[n++] = (char)c; q++; continue; }
    q++;
    switch (*q) {
    case '"': o[n++] = '"'; break;
    case '\\': o[n++] = '\\'; break;
    case '/': o[n++] = '/'; break;
    case 'b': o[n++] = '\b'; break;
    case 'f': o[n++] = '\f'; break;
    case 'n': o[n++] = '\n'; break;
    case 'r': o[n++] = '\r'; break;
    case 't': o[n++] = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (hex4(ps, q + 1, &cp)) return -1;
      q += 4;
      if (cp >= 0xD800 && cp < 0xDC00) {
        if (ps->end - q < 7 || q[1] != '\\' || q[2] != 'u')
          return fail(ps, q, "unpaired high surrogate");
        if (hex4(ps, q + 3, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, q + 3, "bad low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        q += 6;
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        return fail(ps, q - 4, "unpaired low surrogate");
      }
      n += put_utf8(o + n, cp);
      break;
    }
    default:
      return fail(ps, q, "bad escape '\\%c'", *q);
    }
    q++;
  }
  (void)raw;
  o[n] = 0;
  *str = o;
  *len = n;
  ps->p = q + 1;
  return 0;
}

static int parse_number(parser *ps, json_value **out) {
  const char *s = ps->p, *q = s;
  bool neg = false, real = false;
  if (q < ps->end && *q == '-') { neg = true; q++; }
  if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, q, "expected a digit");
  if (*q == '0' && q + 1 < ps->end && q[1] >= '0' && q[1] <= '9')
    return fail(ps, q, "leading zero in number");
  uint64_t mag = 0;
  bool overflow = false;
  while (q < ps->end && *q >= '0' && *q <= '9') {
    unsigned dgt = (unsigned)(*q - '0');
    if (mag > (UINT64_MAX - dgt) / 10) overflow = true;
    else mag = mag * 10 + dgt;
    q++;
  }
  if (q < ps->end && *q == '.') {
    real = true; q++;
    if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, q, "expected a digit after '.'");
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < ps->end && (*q == 'e' || *q == 'E')) {
    real = true; q++;
    if (q < ps->end && (*q == '+' || *q == '-')) q++;
    if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, q, "expected a digit in exponent");
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  if (overflow && !real) return fail(ps, s, "integer does not fit in 64 bits");
  json_value *v = new_value(ps, real ? JSON_REAL : JSON_INT);
  if (!v) return fail(ps, s, "out of memory");
  v->negative = neg && mag != 0;
  v->u = mag;
  v->str = s;
  v->len = (size_t)(q - s);
  ps->p = q;
  *out = v;
  return 0;
}

static int parse_container(parser *ps, json_value **out, bool object) {
  const char close = object ? '}' : ']';
  json_value *v = new_value(ps, object ? JSON_OBJECT : JSON_ARRAY), **tail;
  if (!v) return fail(ps, ps->p, "out of memory");
  if (++ps->depth > JSON_MAX_DEPTH) return fail(ps, ps->p, "nesting deeper than %d", JSON_MAX_DEPTH);
  tail = &v->child;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; *out = v; return 0; }
  for (;;) {
    const char *key = NULL;
    size_t key_len = 0;
    json_value *item;
    skip_ws(ps);
    if (object) {
      if (ps->p >= ps->end || *ps->p != '"') return fail(ps, ps->p, "expected a member name");
      if (parse_string(ps, &key, &key_len)) return -1;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return fail(ps, ps->p, "expected ':'");
      ps->p++;
      skip_ws(ps);
    }
    if (parse_value(ps, &item)) return -1;
    item->key = key;
    item->key_len = key_len;
    *tail = item;
    tail = &item->next;
    v->count++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
    return fail(ps, ps->p, "expected ',' or '%c'", close);
  }
  ps->depth--;
  *out = v;
  return 0;
}

static int parse_value(parser *ps, json_value **out) {
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, ps->p, "unexpected end of input");
  switch (*ps->p) {
  case '{': return parse_container(ps, out, true);
  case '[': return parse_container(ps, out, false);
  case 't': return literal(ps, "true", out, JSON_BOOL, true);
  case 'f': return literal(ps, "false", out, JSON_BOOL, false);
  case 'n': return literal(ps, "null", out, JSON_NULL, false);
  case '"': {
    json_value *v = new_value(ps, JSON_STRING);
    if (!v) return fail(ps, ps->p, "out of memory");
    if (parse_string(ps, &v->str, &v->len)) return -1;
    *out = v;
    return 0;
  }
  default:
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, out);
    return fail(ps, ps->p, "unexpected character '%c'", *ps->p);
  }
}

int json_parse(const char *p, const char *end, json_doc **out, json_error *err) {
  json_doc *doc = calloc(1, sizeof *doc);
  parser ps = {p, p, end, doc, err, 0};
  *out = NULL;
  if (!doc) return -1;
  if (!p || end < p) { json_free(doc); return fail(&ps, p, "no input"); }
  if (parse_value(&ps, &doc->root)) { json_free(doc); return -1; }
  skip_ws(&ps);
  if (ps.p != end) { fail(&ps, ps.p, "trailing characters after the value"); json_free(doc); return -1; }
  *out = doc;
  return 0;
}

const json_value *json_root(const json_doc *doc) { return doc->root; }

void json_free(json_doc *doc) {
  if (!doc) return;
  for (chunk *c = doc->chunks, *n; c; c = n) { n = c->next; free(c); }
  free(doc);
}

const json_value *json_get(const json_value *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (const json_value *m = obj->child; m; m = m->next)
    if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
  return NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
  if (!arr || arr->type != JSON_ARRAY) return NULL;
  const json_value *e = arr->child;
  while (e && i--) e = e->next;
  return e;
}

bool json_to_u64(const json_value *v, uint64_t *out) {
  if (!v || v->type != JSON_INT || v->negative) return false;
  *out = v->u;
  return true;
}

bool json_to_i64(const json_value *v, int64_t *out) {
  if (!v || v->type != JSON_INT) return false;
  if (v->negative) {
    if (v->u > (uint64_t)INT64_MAX + 1) return false;
    *out = (int64_t)(0 - v->u);
  } else {
    if (v->u > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v->u;
  }
  return true;
}
