/*
** A JSON parser (RFC 8259, integers only: fraction and exponent are kept
** as integers, the guest has no floating point) building a tree of
** malloc'd nodes, run on a generated document of about n bytes.  The
** digest hashes the tree (kinds, keys, string bytes, numbers, sizes).
*/
#include "workload.h"

typedef enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ } jkind;

typedef struct jnode {
  jkind kind;
  uint32_t count;            /* children of an array or object */
  int64_t num, frac, exp;    /* J_NUM: num.frac e exp */
  char *str;                 /* J_STR value or the key of an object member */
  size_t len, key_len;
  char *key;
  struct jnode *child, *next;
} jnode;

typedef struct parser { const char *p, *end; int depth; int err; } parser;

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r')) ps->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string at ps->p (the opening quote), unescaped into a fresh buffer. */
static char *parse_string(parser *ps, size_t *len) {
  const char *s = ++ps->p;
  while (s < ps->end && *s != '"') s += *s == '\\' ? 2 : 1;
  if (s >= ps->end) { ps->err = 1; return NULL; }
  char *out = malloc((size_t)(s - ps->p) + 1), *o = out;
  if (!out) { ps->err = 1; return NULL; }
  while (ps->p < s) {
    char c = *ps->p++;
    if (c != '\\') { *o++ = c; continue; }
    switch (c = *ps->p++) {
    case 'n': *o++ = '\n'; break;
    case 't': *o++ = '\t'; break;
    case 'r': *o++ = '\r'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'u': {
      unsigned cp = 0;
      for (int i = 0; i < 4; i++) {
        int h = ps->p < s ? hexval(*ps->p++) : -1;
        if (h < 0) { ps->err = 1; free(out); return NULL; }
        cp = cp << 4 | (unsigned)h;
      }
      if (cp < 0x80) *o++ = (char)cp;                     /* UTF-8, BMP only */
      else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 63)); }
      else { *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 63)); *o++ = (char)(0x80 | (cp & 63)); }
      break;
    }
    default: *o++ = c; break;                              /* \" \\ \/ */
    }
  }
  ps->p = s + 1;
  *len = (size_t)(o - out);
  return out;
}

static int64_t digits(parser *ps, int *count) {
  int64_t v = 0;
  *count = 0;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') { v = v * 10 + (*ps->p++ - '0'); (*count)++; }
  return v;
}

static jnode *parse_value(parser *ps);

static jnode *new_node(parser *ps, jkind kind) {
  jnode *n = calloc(1, sizeof *n);
  if (!n) ps->err = 1; else n->kind = kind;
  return n;
}

static jnode *parse_container(parser *ps, jkind kind) {
  char close = kind == J_ARR ? ']' : '}';
  jnode *n = new_node(ps, kind), **tail;
  if (!n) return NULL;
  if (++ps->depth > 512) { ps->err = 1; return n; }
  tail = &n->child;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return n; }
  for (;;) {
    char *key = NULL;
    size_t key_len = 0;
    skip_ws(ps);
    if (kind == J_OBJ) {
      if (ps->p >= ps->end || *ps->p != '"') { ps->err = 1; return n; }
      key = parse_string(ps, &key_len);
      skip_ws(ps);
      if (ps->err || ps->p >= ps->end || *ps->p != ':') { free(key); ps->err = 1; return n; }
      ps->p++;
    }
    jnode *c = parse_value(ps);
    if (!c) { free(key); return n; }
    c->key = key;
    c->key_len = key_len;
    *tail = c;
    tail = &c->next;
    n->count++;
    if (ps->err) return n;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return n; }
    ps->err = 1;
    return n;
  }
}

static jnode *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) { ps->err = 1; return NULL; }
  switch (*ps->p) {
  case '{': return parse_container(ps, J_OBJ);
  case '[': return parse_container(ps, J_ARR);
  case '"': {
    jnode *n = new_node(ps, J_STR);
    if (n) n->str = parse_string(ps, &n->len);
    return n;
  }
  case 't': case 'f': case 'n': {
    static const char *words[3] = {"null", "false", "true"};
    for (int k = 0; k < 3; k++) {
      size_t l = strlen(words[k]);
      if ((size_t)(ps->end - ps->p) >= l && !memcmp(ps->p, words[k], l)) {
        ps->p += l;
        return new_node(ps, (jkind)k);
      }
    }
    ps->err = 1;
    return NULL;
  }
  default: {
    jnode *n = new_node(ps, J_NUM);
    int neg = 0, cnt;
    if (!n) return NULL;
    if (*ps->p == '-') { neg = 1; ps->p++; }
    n->num = digits(ps, &cnt);
    if (!cnt) ps->err = 1;
    if (neg) n->num = -n->num;
    if (ps->p < ps->end && *ps->p == '.') { ps->p++; n->frac = digits(ps, &cnt); if (!cnt) ps->err = 1; }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
      int eneg = 0;
      ps->p++;
      if (ps->p < ps->end && (*ps->p == '-' || *ps->p == '+')) eneg = *ps->p++ == '-';
      n->exp = digits(ps, &cnt);
      if (!cnt) ps->err = 1;
      if (eneg) n->exp = -n->exp;
    }
    return n;
  }
  }
}

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001B3ull; }

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = mix(h, (uint8_t)s[i]);
  return h;
}

static uint64_t hash_tree(const jnode *n, uint64_t h) {
  for (; n; n = n->next) {
    h = mix(h, n->kind);
    if (n->key) h = hash_bytes(h, n->key, n->key_len);
    if (n->kind == J_NUM) h = mix(mix(mix(h, (uint64_t)n->num), (uint64_t)n->frac), (uint64_t)n->exp);
    if (n->kind == J_STR) h = hash_bytes(h, n->str, n->len);
    if (n->kind == J_ARR || n->kind == J_OBJ) h = hash_tree(n->child, mix(h, n->count));
  }
  return h;
}

static void free_tree(jnode *n) {
  while (n) {
    jnode *next = n->next;
    free_tree(n->child);
    free(n->key);
    free(n->str);
    free(n);
    n = next;
  }
}

/* The generated document: an array of records with nested arrays,
** escaped strings, negative and fractional numbers and literals. */
typedef struct gen { char *buf; size_t len, cap; uint64_t seed; } gen;

static void emit(gen *g, const char *s) {
  size_t l = strlen(s);
  if (g->len + l <= g->cap) memcpy(g->buf + g->len, s, l);
  g->len += l;
}

static void emit_num(gen *g, int64_t v) {
  char tmp[24];
  nub_snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  emit(g, tmp);
}

static void emit_record(gen *g, uint64_t i) {
  static const char *names[8] = {"alpha", "beta", "gam\\\"ma", "del\\\\ta", "eps\\u00e9lon",
                                 "zeta\\n", "eta", "th\\u2603eta"};
  uint64_t r = wl_rand(&g->seed);
  emit(g, "{\"id\": "); emit_num(g, (int64_t)i);
  emit(g, ", \"name\": \""); emit(g, names[r & 7]); emit(g, "\"");
  emit(g, ", \"score\": "); emit_num(g, (int64_t)(r >> 8 & 0xFFFF) - 30000);
  emit(g, "."); emit_num(g, (int64_t)(r >> 24 & 0xFF));
  emit(g, ", \"big\": "); emit_num(g, (int64_t)(r >> 32)); emit(g, "e-"); emit_num(g, (int64_t)(r & 15));
  emit(g, ", \"ok\": "); emit(g, r & 16 ? "true" : "false");
  emit(g, ", \"none\": null, \"tags\": [");
  for (uint64_t k = 0; k < (r >> 40 & 7); k++) { if (k) emit(g, ", "); emit_num(g, (int64_t)(k * i)); }
  emit(g, "], \"sub\": {\"a\": [1, [2, [3, {}]]], \"b\": \"x\"}}");
}

uint64_t wl_json(uint64_t n, uint64_t verbose) {
  gen g = {NULL, 0, n + 512, 0x4A534F4E00000003ull};
  uint64_t records = 0, h;
  if (!(g.buf = malloc(g.cap))) return 0;
  emit(&g, "[");
  while (g.len + 400 < n) {
    if (records) emit(&g, ",\n ");
    emit_record(&g, records++);
  }
  emit(&g, "]");
  parser ps = {g.buf, g.buf + g.len, 0, 0};
  jnode *root = parse_value(&ps);
  skip_ws(&ps);
  if (ps.p != ps.end) ps.err = 1;
  h = ps.err ? 0 : hash_tree(root, 0xCBF29CE484222325ull);
  if (verbose)
    nub_printf("json: %llu bytes, %llu records, %s, digest %016llx", (unsigned long long)g.len,
               (unsigned long long)records, ps.err ? "parse error" : "parsed", (unsigned long long)h);
  free_tree(root);
  free(g.buf);
  return h;
}
