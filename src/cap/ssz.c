/*
** SSZ building blocks: a strict reader for containers and lists, and a
** SHA-256 merkleizer that appends subtrees left to right so zero runs
** (sparse Data pages, list padding) cost O(log n) hashes.
*/
#include <sodium.h>

#include "cap_internal.h"

/* ---- reader ---- */


int ssz_container(ssz_span c, size_t fixed, unsigned nvar,
                  const uint8_t *var_at, const char *const *names,
                  const char *what, ssz_span *vars, nub_cap_error *err) {
  uint64_t start[8], prev = fixed;
  if (c.len < fixed)
    return cap_fail(err, CAP_ERR_TRUNCATED, c.off + c.len,
                    "%s: %zu bytes, but its fixed part needs %zu", what, c.len,
                    fixed);
  for (unsigned i = 0; i < nvar; i++) {
    uint64_t o = cap_le32(c.p + var_at[i]), at = c.off + var_at[i];
    if (i == 0 && o != fixed)
      return cap_fail(err, CAP_ERR_OFFSET, at,
                      "%s.%s: offset %llu must be %zu, the end of the fixed part",
                      what, names[i], (unsigned long long)o, fixed);
    if (o < prev)
      return cap_fail(err, CAP_ERR_OFFSET, at,
                      "%s.%s: offset %llu is below %s's offset %llu", what,
                      names[i], (unsigned long long)o, names[i - 1],
                      (unsigned long long)prev);
    if (o > c.len)
      return cap_fail(err, CAP_ERR_OFFSET, at,
                      "%s.%s: offset %llu runs past the end of the %zu-byte %s",
                      what, names[i], (unsigned long long)o, c.len, what);
    start[i] = prev = o;
  }
  for (unsigned i = 0; i < nvar; i++) {
    uint64_t end = i + 1 < nvar ? start[i + 1] : c.len;
    vars[i].p = c.p + start[i];
    vars[i].len = (size_t)(end - start[i]);
    vars[i].off = c.off + start[i];
  }
  return CAP_OK;
}

int ssz_list_fixed(ssz_span s, size_t elem, uint32_t limit, const char *what,
                   uint32_t *count, nub_cap_error *err) {
  size_t left = s.len % elem, n = s.len / elem;
  if (left)
    return cap_fail(err, CAP_ERR_TRAILING, s.off + s.len - left,
                    "%s: %zu bytes leave %zu trailing after %zu elements of %zu "
                    "bytes", what, s.len, left, n, elem);
  if (n > limit)
    return cap_fail(err, CAP_ERR_LIMIT, s.off + (uint64_t)limit * elem,
                    "%s: %zu elements exceed the limit %u", what, n, limit);
  *count = (uint32_t)n;
  return CAP_OK;
}

int ssz_list_var(ssz_span s, uint32_t limit, const char *what, uint32_t *count,
                 nub_cap_error *err) {
  uint64_t first, prev, n;
  *count = 0;
  if (s.len == 0) return CAP_OK;
  if (s.len < 4)
    return cap_fail(err, CAP_ERR_TRUNCATED, s.off,
                    "%s: %zu bytes cannot hold the first element offset", what,
                    s.len);
  first = cap_le32(s.p);
  if (first == 0 || first % 4)
    return cap_fail(err, CAP_ERR_OFFSET, s.off,
                    "%s: first offset %llu is not a positive multiple of 4",
                    what, (unsigned long long)first);
  if (first > s.len)
    return cap_fail(err, CAP_ERR_OFFSET, s.off,
                    "%s: first offset %llu runs past the end of the %zu-byte list",
                    what, (unsigned long long)first, s.len);
  n = first / 4;
  if (n > limit)
    return cap_fail(err, CAP_ERR_LIMIT, s.off,
                    "%s: %llu elements exceed the limit %u", what,
                    (unsigned long long)n, limit);
  prev = first;
  for (uint64_t i = 1; i < n; i++) {
    uint64_t o = cap_le32(s.p + 4 * i);
    if (o < prev || o > s.len)
      return cap_fail(err, CAP_ERR_OFFSET, s.off + 4 * i,
                      "%s[%llu]: offset %llu is %s", what, (unsigned long long)i,
                      (unsigned long long)o,
                      o < prev ? "below the previous element's" : "past the end of the list");
    prev = o;
  }
  *count = (uint32_t)n;
  return CAP_OK;
}

ssz_span ssz_list_elem(ssz_span s, uint32_t count, uint32_t i) {
  uint32_t start = cap_le32(s.p + 4 * (size_t)i);
  uint32_t end = i + 1 < count ? cap_le32(s.p + 4 * (size_t)i + 4) : (uint32_t)s.len;
  ssz_span e = {s.p + start, end - start, s.off + start};
  return e;
}

/* ---- hashing ---- */

static uint8_t zero_hashes[SSZ_MAX_DEPTH + 1][32];
static int init_state;   /* 0 none, 1 running, 2 done */

int nub_cap_init(void) {
  int expected = 0;
  if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2) return CAP_OK;
  if (__atomic_compare_exchange_n(&init_state, &expected, 1, false,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    if (sodium_init() < 0) {
      __atomic_store_n(&init_state, 0, __ATOMIC_RELEASE);
      return CAP_ERR_NOMEM;
    }
    memset(zero_hashes[0], 0, 32);
    for (unsigned i = 0; i < SSZ_MAX_DEPTH; i++)
      ssz_pair(zero_hashes[i], zero_hashes[i], zero_hashes[i + 1]);
    __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
    return CAP_OK;
  }
  while ((expected = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE)) == 1)
    ;
  return expected == 2 ? CAP_OK : CAP_ERR_NOMEM;
}

void ssz_pair(const uint8_t a[32], const uint8_t b[32], uint8_t out[32]) {
  uint8_t buf[64];
  memcpy(buf, a, 32);
  memcpy(buf + 32, b, 32);
  cap_sha256_pairs(buf, out, 1);
}

const uint8_t *ssz_zero(unsigned depth) { return zero_hashes[depth]; }

unsigned ssz_depth(uint64_t n) {
  unsigned d = 0;
  while (d < 64 && (1ull << d) < n) d++;
  return d;
}

void ssz_chunk_u64(uint64_t v, uint8_t out[32]) {
  memset(out, 0, 32);
  cap_put_le(out, v, 8);
}

void ssz_mix_in(const uint8_t root[32], uint64_t v, uint8_t out[32]) {
  uint8_t chunk[32];
  ssz_chunk_u64(v, chunk);
  ssz_pair(root, chunk, out);
}

void ssz_merkle_init(ssz_merkle *m) { m->count = 0; }

/* Append the root of a 2^level-chunk subtree; count is a multiple of
** 2^level, so pending left siblings sit exactly at the set bits. */
static void add_node(ssz_merkle *m, unsigned level, const uint8_t node[32]) {
  uint8_t cur[32];
  unsigned l = level;
  memcpy(cur, node, 32);
  while (l < SSZ_MAX_DEPTH && ((m->count >> l) & 1)) {
    ssz_pair(m->node[l], cur, cur);
    l++;
  }
  memcpy(m->node[l], cur, 32);
  m->count += 1ull << level;
}

void ssz_merkle_add(ssz_merkle *m, const uint8_t chunk[32]) { add_node(m, 0, chunk); }

/* Subtrees of up to 2^SUBTREE_LOG chunks are reduced level by level in
** one buffer, each level one cap_sha256_pairs call. */
#define SUBTREE_LOG 8

void ssz_merkle_add_chunks(ssz_merkle *m, const uint8_t *p, uint64_t n) {
  uint8_t level[(1u << (SUBTREE_LOG - 1)) * 32];
  while (n) {
    /* the largest aligned subtree that starts here and fits in n */
    unsigned k = 0;
    while (k < SUBTREE_LOG && !((m->count >> k) & 1) && (2ull << k) <= n) k++;
    if (k == 0) {
      add_node(m, 0, p);
    } else {
      size_t nodes = (size_t)1 << (k - 1);
      cap_sha256_pairs(p, level, nodes);
      for (nodes /= 2; nodes; nodes /= 2) cap_sha256_pairs(level, level, nodes);
      add_node(m, k, level);
    }
    p += (size_t)32 << k;
    n -= 1ull << k;
  }
}

void ssz_merkle_add_zeros(ssz_merkle *m, uint64_t n) {
  while (n) {
    unsigned k = 0;
    while (k < SSZ_MAX_DEPTH && !((m->count >> k) & 1) && (2ull << k) <= n) k++;
    add_node(m, k, zero_hashes[k]);
    n -= 1ull << k;
  }
}

void ssz_merkle_root(ssz_merkle *m, unsigned depth, uint8_t out[32]) {
  uint64_t full = 1ull << depth;
  if (m->count < full) ssz_merkle_add_zeros(m, full - m->count);
  memcpy(out, m->node[depth], 32);
}

void ssz_bytes_root(const uint8_t *p, size_t len, unsigned depth, uint8_t out[32]) {
  ssz_merkle m;
  uint8_t last[32] = {0};
  size_t full = len / 32;
  ssz_merkle_init(&m);
  ssz_merkle_add_chunks(&m, p, full);
  if (len % 32) {
    memcpy(last, p + 32 * full, len % 32);
    ssz_merkle_add(&m, last);
  }
  ssz_merkle_root(&m, depth, out);
}

void ssz_leaves_root(const uint8_t (*leaves)[32], unsigned n, uint8_t out[32]) {
  ssz_merkle m;
  ssz_merkle_init(&m);
  for (unsigned i = 0; i < n; i++) ssz_merkle_add(&m, leaves[i]);
  ssz_merkle_root(&m, ssz_depth(n), out);
}

int cap_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return alen < blen ? -1 : alen > blen;
}
