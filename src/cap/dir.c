/*
** The cap directory: an append-only hash -> wire-bytes table living in a
** caller's memory region, written by one writer and read by any number
** of readers, possibly in another process through a read-only mapping at
** another address.  Layout and protocol: docs/wire.md, "Directory".
**
** Everything is addressed by offsets from the header, and a reader
** trusts nothing it reads: each offset, length and count is checked
** against the region before use, and a seqlock generation tells a torn
** read from a corrupt region.
*/
#include <stdio.h>
#include <time.h>

#include "cap_internal.h"

/* Header fields (byte offsets; all u64, 8-aligned). */
enum { H_MAGIC = 0, H_TYPE = 8, H_SEQ = 16, H_TABLE = 24, H_CAPACITY = 32,
       H_COUNT = 40, H_SIZE = 64 };
/* Slot: hash[32], record offset (i64, 0 = empty). */
enum { S_REC = 32, S_SIZE = 40 };
/* Record: wire length u64, ordinal u32, kind u8, flags u8, 2 reserved;
** then the wire, or (flag R_STORED_ONCE, Data only) the wire's head, the
** offset of its page image and its page indexes (docs/wire.md). */
enum { R_LEN = 0, R_ORDINAL = 8, R_KIND = 12, R_FLAGS = 13, R_SIZE = 16 };
enum { P_HEAD = 16, P_IMAGE = 32, P_INDEXES = 40 };
#define R_STORED_ONCE 1u

#define MIN_CAPACITY 8u

static uint64_t ld(const uint8_t *p) {
  return __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_RELAXED);
}
static void st(uint8_t *p, uint64_t v) {
  __atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_RELAXED);
}
static uint8_t *header(const nub_cap_dir *d) { return d->base + d->header_off; }

/* ---- allocator ---- */

static void *bump_alloc(void *ud, size_t size, size_t align) {
  nub_cap_bump *b = ud;
  size_t pad = (size_t)(-(uintptr_t)(b->base + b->used)) & (align - 1);
  if (pad > b->size - b->used || size > b->size - b->used - pad) return NULL;
  b->undo[1][0] = b->undo[0][0];
  b->undo[1][1] = b->undo[0][1];
  b->undo[0][0] = b->used + pad;
  b->undo[0][1] = b->used;
  b->used += pad + size;
  return b->base + b->undo[0][0];
}

/* A Data cap stored once is two allocations (record, page image): the
** newest two can be undone, newest first, padding and all. */
static void bump_free(void *ud, void *p) {
  nub_cap_bump *b = ud;
  if (b->undo[0][0] == SIZE_MAX || (uint8_t *)p != b->base + b->undo[0][0]) return;
  b->used = b->undo[0][1];
  b->undo[0][0] = b->undo[1][0];
  b->undo[0][1] = b->undo[1][1];
  b->undo[1][0] = SIZE_MAX;
}

void nub_cap_bump_init(nub_cap_bump *b, void *base, size_t size) {
  b->base = base;
  b->size = size;
  b->used = 0;
  b->undo[0][0] = b->undo[1][0] = SIZE_MAX;
}

nub_cap_alloc nub_cap_bump_allocator(nub_cap_bump *b) {
  nub_cap_alloc a = {bump_alloc, bump_free, b, NULL, NULL, NULL};
  return a;
}

/* size bytes at an align-aligned address from the allocator, checked to
** lie inside the region. */
static int region_alloc(nub_cap_dir *d, size_t size, size_t align, const char *what,
                        uint8_t **out, nub_cap_error *err) {
  uint8_t *p = d->alloc.alloc(d->alloc.ud, size, align);
  *out = NULL;
  if (!p)
    return cap_fail(err, CAP_ERR_FULL, 0, "dir: allocator has no %zu bytes for %s",
                    size, what);
  if (p < d->base || (uintptr_t)p % align || size > d->size ||
      (size_t)(p - d->base) > d->size - size)
    return cap_fail(err, CAP_ERR_ARG, 0,
                    "dir: allocator returned memory for %s outside the region", what);
  *out = p;
  return CAP_OK;
}

static void region_free(nub_cap_dir *d, uint8_t *p) {
  if (p && d->alloc.free) d->alloc.free(d->alloc.ud, p);
}

/* count blocks of len bytes from src (stride apart) to dst, back to back,
** through the allocator's copy when it has one. */
static void region_copy(nub_cap_dir *d, uint8_t *dst, const uint8_t *src, size_t len,
                        size_t count, size_t stride) {
  if (d->alloc.copy) {
    d->alloc.copy(d->alloc.ud, dst, src, len, count, stride);
    return;
  }
  for (size_t i = 0; i < count; i++) memcpy(dst + i * len, src + i * stride, len);
}

/* ---- reading (shared by readers and the writer) ---- */

/* A consistent view of the header's mutable fields. */
typedef struct snapshot {
  uint64_t seq, capacity, count;
  const uint8_t *table;
} snapshot;

enum { READ_OK = 0, READ_RETRY = -1, READ_LONG = -2 };

/* What one read may still spend: slot reads, and time once a writer has
** made it retry (the clock is first read at the first retry, so a read
** that is never torn costs no clock call). */
typedef struct budget {
  uint64_t slots;
  uint64_t deadline;       /* ns; 0 until the first retry */
  uint32_t retries;
} budget;

static budget full_budget(void) {
  budget b = {CAP_DIR_READ_SLOTS, 0, 0};
  return b;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Whether a torn or mid-write read may be tried again; the clock is read
** every 64 retries (a retry costs well under a microsecond). */
static bool may_retry(budget *b) {
  __builtin_ia32_pause();
  if (b->retries++ % 64) return true;
  uint64_t t = now_ns();
  if (!b->deadline) b->deadline = t + (uint64_t)CAP_DIR_READ_MS * 1000000u;
  return t < b->deadline;
}

static int busy(const nub_cap_dir *d, const budget *b, nub_cap_error *err) {
  return cap_fail(err, CAP_ERR_BUSY, d->header_off + H_SEQ,
                  "dir: the writer kept the directory changing: %u reads torn (bounds: %u ms, "
                  "%u slot reads)", b->retries, CAP_DIR_READ_MS, CAP_DIR_READ_SLOTS);
}

static int corrupt(nub_cap_error *err, uint64_t off, const char *what, uint64_t v) {
  return cap_fail(err, CAP_ERR_CORRUPT, off, "dir: %s (0x%llx) fails validation", what,
                  (unsigned long long)v);
}

static int check_ids(const nub_cap_dir *d, nub_cap_error *err) {
  const uint8_t *h = header(d);
  uint64_t magic = ld(h + H_MAGIC), type = ld(h + H_TYPE);
  if (magic != CAP_DIR_MAGIC) return corrupt(err, d->header_off, "header magic", magic);
  if (type != CAP_DIR_TYPE_ID)
    return cap_fail(err, CAP_ERR_CORRUPT, d->header_off + H_TYPE,
                    "dir: layout id 0x%llx is not CAP_DIR_TYPE_ID 0x%llx",
                    (unsigned long long)type, (unsigned long long)CAP_DIR_TYPE_ID);
  return CAP_OK;
}

/* Region position of an offset from the header; false if it leaves the
** region, is misaligned, or cannot hold n bytes. */
static bool place(const nub_cap_dir *d, uint64_t rel, uint64_t n, uint64_t *pos) {
  uint64_t p = d->header_off + rel;   /* wraps for negative offsets */
  if (p % 8 || p > d->size || n > d->size - p) return false;
  *pos = p;
  return true;
}

static bool unchanged(const nub_cap_dir *d, uint64_t seq) {
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return ld(header(d) + H_SEQ) == seq;
}

static int validate_snapshot(const nub_cap_dir *d, snapshot *s, uint64_t rel, nub_cap_error *err) {
  uint64_t pos;
  if (s->capacity < MIN_CAPACITY || (s->capacity & (s->capacity - 1)) ||
      s->capacity > d->size / S_SIZE)
    return corrupt(err, d->header_off + H_CAPACITY, "capacity", s->capacity);
  if (!place(d, rel, s->capacity * S_SIZE, &pos))
    return corrupt(err, d->header_off + H_TABLE, "table offset", rel);
  if (s->count >= s->capacity)
    return corrupt(err, d->header_off + H_COUNT, "entry count", s->count);
  s->table = d->base + pos;
  return READ_OK;
}

static int read_snapshot(const nub_cap_dir *d, snapshot *s, nub_cap_error *err) {
  const uint8_t *h = header(d);
  uint64_t rel;
  int rc = check_ids(d, err);
  if (rc) return rc;
  s->seq = __atomic_load_n((const uint64_t *)(const void *)(h + H_SEQ), __ATOMIC_ACQUIRE);
  if (s->seq & 1) return READ_RETRY;
  rel = ld(h + H_TABLE);
  s->capacity = ld(h + H_CAPACITY);
  s->count = ld(h + H_COUNT);
  rc = validate_snapshot(d, s, rel, err);
  return rc && !unchanged(d, s->seq) ? READ_RETRY : rc;   /* torn, not corrupt */
}

static bool same_hash(const uint8_t *slot, const uint8_t key[CAP_HASH_SIZE]) {
  for (int i = 0; i < 4; i++) {
    uint64_t w;
    memcpy(&w, key + 8 * i, 8);
    if (ld(slot + 8 * i) != w) return false;
  }
  return true;
}

static uint64_t bucket(const uint8_t h[CAP_HASH_SIZE], uint64_t capacity) {
  return cap_le(h, 8) & (capacity - 1);
}

/* The rest of a Data record stored once: its indexes and page image
** inside the region. */
static int read_stored_once(const nub_cap_dir *d, uint64_t rel, uint64_t pos,
                            nub_cap_dir_entry *e, nub_cap_error *err) {
  uint64_t n, ipos, image;
  if (e->kind != CAP_DATA) return corrupt(err, pos + R_ORDINAL, "stored-once record kind", e->kind);
  if (e->len < CAP_DIR_DATA_HEAD + W_PAGE || (e->len - CAP_DIR_DATA_HEAD) % W_PAGE ||
      (n = (e->len - CAP_DIR_DATA_HEAD) / W_PAGE) > CAP_MAX_DATA_PAGES)
    return corrupt(err, pos + R_LEN, "stored-once record length", e->len);
  if (!place(d, rel, P_INDEXES + 4 * n, &pos)) return corrupt(err, 0, "record offset", rel);
  image = ld(d->base + pos + P_IMAGE);
  if (!place(d, image, n * CAP_PAGE_SIZE, &ipos))
    return corrupt(err, pos + P_IMAGE, "page image offset", image);
  e->wire = d->base + pos + P_HEAD;
  e->page_count = (uint32_t)n;
  e->indexes = d->base + pos + P_INDEXES;
  e->pages = d->base + ipos;
  return READ_OK;
}

/* The record a slot points to, validated. */
static int read_record(const nub_cap_dir *d, const snapshot *s, uint64_t rel,
                       nub_cap_dir_entry *e, nub_cap_error *err) {
  uint64_t pos, len, meta;
  if (!place(d, rel, R_SIZE, &pos)) return corrupt(err, 0, "record offset", rel);
  len = ld(d->base + pos + R_LEN);
  meta = ld(d->base + pos + R_ORDINAL);
  memset(e, 0, sizeof *e);
  e->len = len;
  e->ordinal = (uint32_t)meta;
  e->kind = (uint8_t)(meta >> 32);
  if (e->ordinal >= s->count || e->kind >= CAP_KIND_COUNT || (meta >> 41))
    return corrupt(err, pos + R_ORDINAL, "record ordinal/kind/flags", meta);
  if (meta >> 40 & R_STORED_ONCE) return read_stored_once(d, rel, pos, e, err);
  if (len == 0 || len > d->size - pos - R_SIZE)
    return corrupt(err, pos + R_LEN, "record length", len);
  e->wire = d->base + pos + R_SIZE;
  return READ_OK;
}

void nub_cap_dir_entry_copy(const nub_cap_dir_entry *e, uint8_t *out) {
  if (!e->pages) {
    memcpy(out, e->wire, (size_t)e->len);
    return;
  }
  memcpy(out, e->wire, CAP_DIR_DATA_HEAD);
  out += CAP_DIR_DATA_HEAD;
  for (uint32_t i = 0; i < e->page_count; i++, out += W_PAGE) {
    memcpy(out, e->indexes + 4 * (size_t)i, 4);
    memcpy(out + 4, e->pages + (size_t)i * CAP_PAGE_SIZE, CAP_PAGE_SIZE);
  }
}

/* One probe pass over a snapshot: CAP_OK, CAP_ERR_MISSING, READ_LONG
** (the budget ran out first) or an error. */
static int probe(const nub_cap_dir *d, const snapshot *s, const uint8_t key[CAP_HASH_SIZE],
                 nub_cap_dir_entry *e, budget *b, nub_cap_error *err) {
  uint64_t i = bucket(key, s->capacity);
  for (uint64_t n = 0; n < s->capacity; n++, i = (i + 1) & (s->capacity - 1)) {
    const uint8_t *slot = s->table + i * S_SIZE;
    if (!b->slots) return READ_LONG;
    b->slots--;
    uint64_t rel = ld(slot + S_REC);
    if (!rel) return CAP_ERR_MISSING;
    if (same_hash(slot, key)) return read_record(d, s, rel, e, err);
  }
  return CAP_ERR_MISSING;
}

int nub_cap_dir_find(const nub_cap_dir *d, const uint8_t hash[CAP_HASH_SIZE],
                 nub_cap_dir_entry *entry, nub_cap_error *err) {
  char hex[65];
  budget b = full_budget();
  do {
    snapshot s;
    int rc = read_snapshot(d, &s, err);
    if (rc == READ_RETRY) continue;
    if (rc) return rc;
    rc = probe(d, &s, hash, entry, &b, err);
    if (!unchanged(d, s.seq)) continue;   /* torn: whatever we saw is void */
    if (rc == READ_LONG)
      return b.retries ? busy(d, &b, err)
                       : cap_fail(err, CAP_ERR_CORRUPT, d->header_off + H_TABLE,
                                  "dir: probe sequence longer than %u slots", CAP_DIR_READ_SLOTS);
    if (rc == CAP_ERR_MISSING) {
      cap_fail(err, rc, 0, "dir: no cap under %s", cap_hex32(hash, hex));
      if (err) memcpy(err->hash, hash, CAP_HASH_SIZE);
    }
    return rc;
  } while (b.slots && may_retry(&b));
  return busy(d, &b, err);
}

int nub_cap_dir_stats(const nub_cap_dir *d, uint64_t *count, uint64_t *capacity,
                  nub_cap_error *err) {
  budget b = full_budget();
  do {
    snapshot s;
    int rc = read_snapshot(d, &s, err);
    if (rc == READ_RETRY) continue;
    if (rc) return rc;
    if (!unchanged(d, s.seq)) continue;
    *count = s.count;
    *capacity = s.capacity;
    return CAP_OK;
  } while (may_retry(&b));
  return busy(d, &b, err);
}

int nub_cap_dir_get_verified(const nub_cap_dir *d, const uint8_t hash[CAP_HASH_SIZE],
                         uint8_t *buf, size_t buf_cap, size_t *len,
                         nub_cap_error *err) {
  nub_cap_dir_entry e;
  uint8_t got[CAP_HASH_SIZE];
  char a[65], b[65];
  int rc = nub_cap_dir_find(d, hash, &e, err);
  if (rc) return rc;
  if (e.len > buf_cap)
    return cap_fail(err, CAP_ERR_FULL, 0, "dir: entry of %llu bytes, buffer holds %zu",
                    (unsigned long long)e.len, buf_cap);
  nub_cap_dir_entry_copy(&e, buf);     /* one copy: checked, then used */
  *len = (size_t)e.len;
  if ((rc = nub_cap_hash_wire(buf, buf + e.len, got, err))) return rc;
  if (memcmp(got, hash, CAP_HASH_SIZE))
    return cap_fail(err, CAP_ERR_CORRUPT, 0, "dir: entry under %s holds a cap hashing to %s",
                    cap_hex32(hash, a), cap_hex32(got, b));
  return CAP_OK;
}

int nub_cap_dir_open(nub_cap_dir *d, const void *base, size_t size, uint64_t header_off,
                 nub_cap_error *err) {
  memset(d, 0, sizeof *d);
  if (!base || (uintptr_t)base % 8 || header_off % 8 || header_off > size ||
      size - header_off < H_SIZE)
    return cap_fail(err, CAP_ERR_ARG, header_off,
                    "dir: header at offset %llu does not fit an 8-aligned region of %zu bytes",
                    (unsigned long long)header_off, size);
  d->base = (uint8_t *)base;   /* readers never write through it */
  d->size = size;
  d->header_off = header_off;
  return check_ids(d, err);
}

/* ---- writing (one writer) ---- */

static void write_begin(uint8_t *h, uint64_t seq) {
  st(h + H_SEQ, seq + 1);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}
static void write_end(uint8_t *h, uint64_t seq) {
  __atomic_store_n((uint64_t *)(void *)(h + H_SEQ), seq + 2, __ATOMIC_RELEASE);
}

/* Put (hash, rel) in the first free slot of its probe sequence. */
static void table_put(uint8_t *table, uint64_t capacity, const uint8_t *hash, uint64_t rel) {
  uint64_t i = bucket(hash, capacity);
  while (ld(table + i * S_SIZE + S_REC)) i = (i + 1) & (capacity - 1);
  for (int w = 0; w < 4; w++) {
    uint64_t v;
    memcpy(&v, hash + 8 * w, 8);
    st(table + i * S_SIZE + 8 * w, v);
  }
  st(table + i * S_SIZE + S_REC, rel);
}

static int new_table(nub_cap_dir *d, uint64_t capacity, uint8_t **t, nub_cap_error *err) {
  int rc;
  if (capacity > d->size / S_SIZE)
    return cap_fail(err, CAP_ERR_FULL, 0,
                    "dir: a table of %llu slots does not fit the region",
                    (unsigned long long)capacity);
  if ((rc = region_alloc(d, (size_t)capacity * S_SIZE, 8, "the slot table", t, err)))
    return rc;
  memset(*t, 0, (size_t)capacity * S_SIZE);
  return CAP_OK;
}

/* Double the table: fill a new one nobody sees yet, then swap it in
** inside one write section.  The old table stays where it is, so a
** reader still walking it reads stale but well-formed slots. */
static int grow(nub_cap_dir *d, const snapshot *s, nub_cap_error *err) {
  uint8_t *h = header(d), *t;
  int rc = new_table(d, s->capacity * 2, &t, err);
  if (rc) return rc;
  for (uint64_t i = 0; i < s->capacity; i++) {
    const uint8_t *slot = s->table + i * S_SIZE;
    if (ld(slot + S_REC)) table_put(t, s->capacity * 2, slot, ld(slot + S_REC));
  }
  write_begin(h, s->seq);
  st(h + H_TABLE, (uint64_t)(t - h));
  st(h + H_CAPACITY, s->capacity * 2);
  write_end(h, s->seq);
  return CAP_OK;
}

int nub_cap_dir_create(nub_cap_dir *d, void *base, size_t size, const nub_cap_alloc *alloc,
                   uint32_t min_capacity, nub_cap_error *err) {
  uint64_t capacity = MIN_CAPACITY;
  uint8_t *h, *t;
  int rc;
  memset(d, 0, sizeof *d);
  if (!base || (uintptr_t)base % 8 || !alloc || !alloc->alloc)
    return cap_fail(err, CAP_ERR_ARG, 0, "dir: needs an 8-aligned region and an allocator");
  d->base = base;
  d->size = size;
  d->alloc = *alloc;
  while (capacity < min_capacity) capacity *= 2;
  if ((rc = region_alloc(d, H_SIZE, 8, "the header", &h, err))) return rc;
  d->header_off = (uint64_t)(h - d->base);
  if ((rc = new_table(d, capacity, &t, err))) return rc;
  memset(h, 0, H_SIZE);
  st(h + H_TYPE, CAP_DIR_TYPE_ID);
  st(h + H_TABLE, (uint64_t)(t - h));
  st(h + H_CAPACITY, capacity);
  __atomic_store_n((uint64_t *)(void *)(h + H_MAGIC), CAP_DIR_MAGIC, __ATOMIC_RELEASE);
  return CAP_OK;
}

/* Whether two entries hold the same wire (stored in the same form: a
** directory's form of a cap depends on its bytes alone). */
static bool same_entry(const nub_cap_dir_entry *a, const nub_cap_dir_entry *b) {
  if (a->len != b->len || !a->pages != !b->pages) return false;
  if (!a->pages) return !memcmp(a->wire, b->wire, (size_t)a->len);
  return !memcmp(a->wire, b->wire, CAP_DIR_DATA_HEAD) &&
         !memcmp(a->indexes, b->indexes, 4 * (size_t)a->page_count) &&
         !memcmp(a->pages, b->pages, (size_t)a->page_count * CAP_PAGE_SIZE);
}

/* An existing entry for the same hash must hold the same bytes. */
static int reuse(const nub_cap_dir_entry *old, const nub_cap_dir_entry *mine, const uint8_t *hash,
                 nub_cap_error *err) {
  char hex[65];
  if (same_entry(old, mine)) return CAP_OK;
  return cap_fail(err, CAP_ERR_CORRUPT, 0,
                  "dir: the entry under %s holds other bytes than the cap hashing to it",
                  cap_hex32(hash, hex));
}

/* The writer's own view of the header: it is never mid-write here. */
static int writer_snapshot(const nub_cap_dir *d, snapshot *s, nub_cap_error *err) {
  int rc = read_snapshot(d, s, err);
  if (rc != READ_RETRY) return rc;
  return cap_fail(err, CAP_ERR_CORRUPT, d->header_off + H_SEQ,
                  "dir: seq 0x%llx is odd outside a write section", (unsigned long long)s->seq);
}

/* The shape of a Data cap with pages: selector 2 and a length of the
** head plus whole pages.  Read once from the caller's bytes only to pick
** the form; the copies are what is validated. */
static bool data_with_pages(const uint8_t *wire, size_t len, uint32_t *n) {
  uint8_t selector = __atomic_load_n(wire, __ATOMIC_RELAXED);
  if (selector != CAP_DATA || len < CAP_DIR_DATA_HEAD + W_PAGE ||
      (len - CAP_DIR_DATA_HEAD) % W_PAGE || (len - CAP_DIR_DATA_HEAD) / W_PAGE > CAP_MAX_DATA_PAGES)
    return false;
  *n = (uint32_t)((len - CAP_DIR_DATA_HEAD) / W_PAGE);
  return true;
}

/* The record of a Data cap of n pages stored once (docs/wire.md, "Stored
** once"): the wire's head, then its page indexes (index i read at idx +
** i * stride); *runs gets the runs they make. */
static int stored_once_record(nub_cap_dir *d, const uint8_t *head, const uint8_t *idx,
                              size_t stride, uint32_t n, uint8_t **rec, uint32_t *runs,
                              nub_cap_error *err) {
  int rc;
  if ((rc = region_alloc(d, (P_INDEXES + 4 * (size_t)n + 7) & ~(size_t)7, 8, "a record", rec, err)))
    return rc;
  memset(*rec, 0, P_INDEXES);
  memcpy(*rec + P_HEAD, head, CAP_DIR_DATA_HEAD);
  uint8_t *out = *rec + P_INDEXES;
  *runs = 0;
  for (uint32_t i = 0; i < n; i++) {
    memcpy(out + 4 * (size_t)i, idx + (size_t)i * stride, 4);
    *runs += i == 0 || cap_le32(out + 4 * (size_t)i) != cap_le32(out + 4 * (size_t)i - 4) + 1;
  }
  return CAP_OK;
}

/* Decode the record and the page image img (n pages, then room for the
** runs), write the runs after the pages and fill the entry.  first_zero:
** as cap_decode_data_stored's. */
static int finish_stored_once(nub_cap_dir *d, uint8_t *rec, uint8_t *img, size_t len, uint32_t n,
                              uint64_t first_zero, nub_cap_dir_entry *mine, nub_cap_view *v,
                              nub_cap_error *err) {
  const uint8_t *idx = rec + P_INDEXES;
  uint32_t r = 0;
  int rc;
  if ((rc = cap_decode_data_stored(rec + P_HEAD, len, idx, img, first_zero, v, err))) return rc;
  uint32_t *run = (uint32_t *)(void *)(img + (size_t)n * CAP_PAGE_SIZE);
  for (uint32_t i = 0; i < n; i++) {        /* our copy's indexes: the same runs as counted */
    uint32_t index = cap_le32(idx + 4 * (size_t)i);
    if (r && index == run[2 * (r - 1)] + run[2 * (r - 1) + 1]) {
      run[2 * (r - 1) + 1]++;
    } else {
      run[2 * r] = index;
      run[2 * r + 1] = 1;
      r++;
    }
  }
  v->data.runs = run;
  st(rec + P_IMAGE, (uint64_t)(img - header(d)));
  memset(mine, 0, sizeof *mine);
  mine->wire = rec + P_HEAD;
  mine->len = len;
  mine->kind = CAP_DATA;
  mine->page_count = n;
  mine->indexes = idx;
  mine->pages = img;
  return CAP_OK;
}

/* The zero-page check of pages the caller vouches for, by the allocator's
** hook when it has one (which reads them without mapping them). */
static uint64_t first_zero_of(nub_cap_dir *d, const uint8_t *img, uint32_t n) {
  size_t z = d->alloc.first_zero_page ? d->alloc.first_zero_page(d->alloc.ud, img, n) : SIZE_MAX;
  return z == SIZE_MAX ? CAP_ZERO_READ : (uint64_t)z;
}

/* Copy and decode a Data cap of n pages stored once: a record with the
** wire's head, the image's offset and the page indexes, and the page
** image (the pages page aligned, then the runs), the only copy of the
** page bytes, so an invocation maps them copy-on-write and a put copies
** each byte once.  A hashed put (the caller vouches for the hash) never
** reads the pages through the region when the allocator has the hooks
** to store and check them otherwise. */
static int copy_stored_once(nub_cap_dir *d, const uint8_t *wire, size_t len, uint32_t n,
                            bool hashed, uint8_t **rec, uint8_t **block,
                            nub_cap_dir_entry *mine, nub_cap_view *v, nub_cap_error *err) {
  const uint8_t *pages = wire + CAP_DIR_DATA_HEAD + 4;
  uint32_t runs;
  int rc;
  if ((rc = stored_once_record(d, wire, wire + CAP_DIR_DATA_HEAD, W_PAGE, n, rec, &runs, err)))
    return rc;
  /* page aligned, for copy-on-write mappings of the memfd */
  if ((rc = region_alloc(d, (size_t)n * CAP_PAGE_SIZE + (size_t)runs * 8, CAP_PAGE_SIZE,
                         "a page image", block, err)))
    return rc;
  if (hashed && d->alloc.store_pages) d->alloc.store_pages(d->alloc.ud, *block, pages, n, W_PAGE);
  else region_copy(d, *block, pages, CAP_PAGE_SIZE, n, W_PAGE);
  uint64_t first_zero = hashed ? first_zero_of(d, *block, n) : CAP_ZERO_READ;
  return finish_stored_once(d, *rec, *block, len, n, first_zero, mine, v, err);
}

/* Copy and decode any other cap: a record holding its wire. */
static int copy_whole(nub_cap_dir *d, const uint8_t *wire, size_t len, uint8_t **rec,
                      nub_cap_dir_entry *mine, nub_cap_view *v, nub_cap_error *err) {
  int rc;
  if ((rc = region_alloc(d, R_SIZE + ((len + 7) & ~(size_t)7), 8, "a record", rec, err))) return rc;
  memset(*rec, 0, R_SIZE);
  region_copy(d, *rec + R_SIZE, wire, len, 1, len);
  if ((rc = nub_cap_decode(*rec + R_SIZE, *rec + R_SIZE + len, v, err))) return rc;
  if (d->page_images && v->kind == CAP_DATA && v->data.page_count)
    return cap_fail(err, CAP_ERR_ARG, 0,
                    "dir: the %zu-byte wire changed while it was copied (its selector)", len);
  memset(mine, 0, sizeof *mine);
  mine->wire = *rec + R_SIZE;
  mine->len = len;
  mine->kind = (uint8_t)v->kind;
  return CAP_OK;
}

/* The writer's probe: its own table, under the readers' slot budget, so
** it never stores an entry a reader could not reach. */
static int writer_probe(const nub_cap_dir *d, const snapshot *s, const uint8_t *hash,
                        nub_cap_dir_entry *e, nub_cap_error *err) {
  budget b = full_budget();
  int rc = probe(d, s, hash, e, &b, err);
  if (rc != READ_LONG) return rc;
  return cap_fail(err, CAP_ERR_FULL, d->header_off + H_TABLE,
                  "dir: probe sequence longer than %u slots", CAP_DIR_READ_SLOTS);
}

static void publish(nub_cap_dir *d, const snapshot *s, uint8_t *rec, const nub_cap_dir_entry *mine,
                    const uint8_t *hash, nub_cap_dir_entry *e) {
  uint8_t *h = header(d);
  uint64_t flags = mine->pages ? R_STORED_ONCE : 0;
  st(rec + R_LEN, mine->len);
  st(rec + R_ORDINAL, s->count | (uint64_t)mine->kind << 32 | flags << 40);
  write_begin(h, s->seq);
  table_put((uint8_t *)s->table, s->capacity, hash, (uint64_t)(rec - h));
  st(h + H_COUNT, s->count + 1);
  write_end(h, s->seq);
  *e = *mine;
  e->ordinal = (uint32_t)s->count;
}

/* A view of an entry this writer stored, from the view of an identical copy. */
static void view_of(const nub_cap_dir_entry *e, nub_cap_view *v) {
  if (!e->pages) {
    nub_cap_view_rebase(v, e->wire);
    return;
  }
  v->wire = e->wire;
  v->data.indexes = e->indexes;
  v->data.image = e->pages;
  v->data.runs = (const uint32_t *)(const void *)(e->pages + (size_t)e->page_count * CAP_PAGE_SIZE);
}

/* rec and image given back, the newer first (a bump allocator undoes
** only its newest allocations): image is the newer unless it was placed. */
static void give_back(nub_cap_dir *d, uint8_t *rec, uint8_t *image, bool placed) {
  region_free(d, placed ? rec : image);
  region_free(d, placed ? image : rec);
}

/* Hash (unless the caller vouches for the hash: trusted), then insert or
** find the same bytes; rec and image (the copies, decoded into v) are
** kept or given back.  After a grow the hash is probed again, under the
** readers' budget, in the new table. */
static int insert(nub_cap_dir *d, uint8_t *rec, uint8_t *image, bool placed,
                  const nub_cap_dir_entry *mine,
                  nub_cap_view *v, const uint8_t *trusted, uint8_t hash[CAP_HASH_SIZE],
                  nub_cap_dir_entry *entry, nub_cap_view *view, bool *inserted,
                  nub_cap_error *err) {
  snapshot s;
  int rc;
  if (trusted) memcpy(hash, trusted, CAP_HASH_SIZE);
  else if ((rc = nub_cap_hash_with(v, d->hash_helper, hash, err))) goto fail;
  if ((rc = writer_snapshot(d, &s, err))) goto fail;
  rc = writer_probe(d, &s, hash, entry, err);
  if (rc == CAP_ERR_MISSING && (s.count + 1) * 4 > s.capacity * 3) {
    if ((rc = grow(d, &s, err)) || (rc = writer_snapshot(d, &s, err))) goto fail;
    rc = writer_probe(d, &s, hash, entry, err);
  }
  if (rc == CAP_OK) {
    if ((rc = reuse(entry, mine, hash, err))) goto fail;
    give_back(d, rec, image, placed);
  } else if (rc == CAP_ERR_MISSING) {
    publish(d, &s, rec, mine, hash, entry);
    *inserted = true;
  } else {
    goto fail;
  }
  view_of(entry, v);
  if (view) *view = *v;
  return CAP_OK;
fail:
  give_back(d, rec, image, placed);
  return rc;
}

/* Copy and decode first (the caller's buffer may change while we
** validate), then insert. */
static int put(nub_cap_dir *d, const uint8_t *wire, size_t len, const uint8_t *trusted,
               uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry, nub_cap_view *view,
               bool *inserted, nub_cap_error *err) {
  nub_cap_dir_entry mine;
  nub_cap_view v;
  uint8_t *rec = NULL, *image = NULL;
  uint32_t pages;
  int rc;
  *inserted = false;
  if (!d->alloc.alloc) return cap_fail(err, CAP_ERR_ARG, 0, "dir: put on a read-only handle");
  if (len > d->size) return cap_fail(err, CAP_ERR_FULL, 0, "dir: %zu bytes exceed the region", len);
  if (!len) return cap_fail(err, CAP_ERR_TRUNCATED, 0, "cap: empty input, no union selector");
  if (d->page_images && data_with_pages(wire, len, &pages))
    rc = copy_stored_once(d, wire, len, pages, trusted != NULL, &rec, &image, &mine, &v, err);
  else
    rc = copy_whole(d, wire, len, &rec, &mine, &v, err);
  if (rc) {
    region_free(d, image);
    region_free(d, rec);
    return rc;
  }
  return insert(d, rec, image, false, &mine, &v, trusted, hash, entry, view, inserted, err);
}

int nub_cap_dir_put(nub_cap_dir *d, const uint8_t *wire, size_t len,
                uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                nub_cap_view *view, bool *inserted, nub_cap_error *err) {
  return put(d, wire, len, NULL, hash, entry, view, inserted, err);
}

/* For a hash the caller vouches for (a host re-publishing caps it hashed
** itself): the copy is still decoded, for the view, but not hashed. */
int nub_cap_dir_put_hashed(nub_cap_dir *d, const uint8_t *wire, size_t len,
                       const uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                       nub_cap_view *view, bool *inserted, nub_cap_error *err) {
  uint8_t h[CAP_HASH_SIZE];
  return put(d, wire, len, hash, h, entry, view, inserted, err);
}

int nub_cap_dir_put_placed(nub_cap_dir *d, const uint8_t *head, size_t len,
                           const uint8_t *indexes, uint8_t *image, size_t image_size,
                           const uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                           nub_cap_view *view, bool *inserted, nub_cap_error *err) {
  nub_cap_dir_entry mine;
  nub_cap_view v;
  uint8_t *rec = NULL, h[CAP_HASH_SIZE];
  uint32_t n, runs;
  int rc;
  *inserted = false;
  if (!d->alloc.alloc || !d->page_images || !image || (uintptr_t)image % CAP_PAGE_SIZE ||
      image < d->base || image_size > d->size || (size_t)(image - d->base) > d->size - image_size) {
    rc = cap_fail(err, CAP_ERR_ARG, 0, "dir: a placed image needs a writer that keeps page "
                  "images, and an image in the region, page aligned");
    goto fail;
  }
  if (len < CAP_DIR_DATA_HEAD + W_PAGE || (len - CAP_DIR_DATA_HEAD) % W_PAGE ||
      (len - CAP_DIR_DATA_HEAD) / W_PAGE > CAP_MAX_DATA_PAGES) {
    rc = cap_fail(err, CAP_ERR_ARG, 0, "dir: a placed Data cap needs a length of 13 + 4100 n, "
                  "1 <= n <= 2^20 (got %zu)", len);
    goto fail;
  }
  n = (uint32_t)((len - CAP_DIR_DATA_HEAD) / W_PAGE);
  if ((rc = stored_once_record(d, head, indexes, 4, n, &rec, &runs, err))) goto fail;
  if ((size_t)n * CAP_PAGE_SIZE + (size_t)runs * 8 > image_size) {
    rc = cap_fail(err, CAP_ERR_ARG, 0, "dir: %u pages in %u runs need %zu bytes, the placed "
                  "image has %zu", n, runs, (size_t)n * CAP_PAGE_SIZE + (size_t)runs * 8,
                  image_size);
    goto fail;
  }
  if ((rc = finish_stored_once(d, rec, image, len, n, first_zero_of(d, image, n), &mine, &v,
                               err)))
    goto fail;
  return insert(d, rec, image, true, &mine, &v, hash, h, entry, view, inserted, err);
fail:
  give_back(d, rec, image, true);
  return rc;
}
