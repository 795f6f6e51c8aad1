/*
** The cap directory: insert/find, idempotence, growth, position
** independence, hostile (corrupted) regions, and a writer racing readers
** that see the region through a read-only mapping, in threads and in a
** forked process; puts under a trusted hash; the bound on every read.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cap_test_util.h"

/* Layout facts the corruption tests poke at (docs/wire.md, "Directory"). */
enum { H_SEQ = 16, H_TABLE = 24, H_CAPACITY = 32, H_COUNT = 40, SLOT = 40, REC = 16 };

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* N distinct one-page Data caps and their hashes. */
typedef struct caps {
  uint8_t **wire;
  size_t *len;
  uint8_t (*hash)[CAP_HASH_SIZE];
  unsigned n;
} caps;

static void make_caps(caps *c, unsigned n) {
  uint8_t page[CAP_PAGE_SIZE] = {0};
  nub_cap_error err;
  c->n = n;
  c->wire = calloc(n, sizeof *c->wire);
  c->len = calloc(n, sizeof *c->len);
  c->hash = calloc(n, CAP_HASH_SIZE);
  for (unsigned i = 0; i < n; i++) {
    memcpy(page, &i, sizeof i);
    page[100] = 1;
    if (nub_cap_encode_data_alloc(CAP_PAGE_SIZE, page, 200, &c->wire[i], &c->len[i], &err) ||
        nub_cap_hash_wire(c->wire[i], c->wire[i] + c->len[i], c->hash[i], &err))
      fail_msg("make_caps: %s", err.msg);
  }
}

static void free_caps(caps *c) {
  for (unsigned i = 0; i < c->n; i++) free(c->wire[i]);
  free(c->wire);
  free(c->len);
  free(c->hash);
}

typedef struct fixture {
  uint8_t *region;
  size_t size;
  nub_cap_bump bump;
  nub_cap_alloc alloc;
  nub_cap_dir dir;
} fixture;

static void setup_dir(fixture *f, size_t size, uint32_t capacity) {
  nub_cap_error err;
  f->size = size;
  f->region = aligned_alloc(64, size);
  memset(f->region, 0, size);
  nub_cap_bump_init(&f->bump, f->region, size);
  f->alloc = nub_cap_bump_allocator(&f->bump);
  if (nub_cap_dir_create(&f->dir, f->region, size, &f->alloc, capacity, &err)) fail_msg("%s", err.msg);
}

static void put_ok(fixture *f, const uint8_t *wire, size_t len, nub_cap_dir_entry *e, bool *inserted) {
  uint8_t h[CAP_HASH_SIZE];
  nub_cap_view v;
  nub_cap_error err;
  if (nub_cap_dir_put(&f->dir, wire, len, h, e, &v, inserted, &err)) fail_msg("put: %s", err.msg);
  assert_ptr_equal(v.wire, e->wire);   /* the view reads the stored copy */
}

static void test_put_find_idempotent(void **state) {
  fixture f;
  tu_sample *s;
  size_t n = tu_samples(&s), used;
  nub_cap_dir_entry e, again;
  nub_cap_error err;
  uint64_t count, capacity;
  bool inserted;
  (void)state;
  setup_dir(&f, 1 << 20, 8);
  for (size_t i = 0; i < n; i++) {
    uint8_t h[CAP_HASH_SIZE], got[CAP_HASH_SIZE];
    put_ok(&f, s[i].wire, s[i].len, &e, &inserted);
    assert_true(inserted);
    assert_int_equal(e.ordinal, i);
    assert_int_equal(e.kind, s[i].wire[0]);
    assert_int_equal(nub_cap_hash_wire(s[i].wire, s[i].wire + s[i].len, h, &err), CAP_OK);
    assert_int_equal(nub_cap_dir_find(&f.dir, h, &again, &err), CAP_OK);
    assert_ptr_equal(again.wire, e.wire);
    assert_int_equal(again.len, s[i].len);
    assert_memory_equal(again.wire, s[i].wire, s[i].len);
    assert_int_equal(nub_cap_hash_wire(again.wire, again.wire + again.len, got, &err), CAP_OK);
    assert_memory_equal(got, h, 32);
  }
  /* the same bytes again: same entry, nothing stored */
  used = f.bump.used;
  for (size_t i = 0; i < n; i++) {
    put_ok(&f, s[i].wire, s[i].len, &e, &inserted);
    assert_false(inserted);
    assert_int_equal(e.ordinal, i);
  }
  assert_int_equal(f.bump.used, used);
  assert_int_equal(nub_cap_dir_stats(&f.dir, &count, &capacity, &err), CAP_OK);
  assert_int_equal(count, n);
  assert_true(capacity >= count * 4 / 3);
  tu_samples_free(s, n);
  free(f.region);
}

static void test_put_rejects_bad_caps(void **state) {
  fixture f;
  uint8_t junk[] = {CAP_DATA, 1, 2, 3}, empty_cnode[] = {CAP_CNODE, 4, 0, 0, 0}, h[32];
  nub_cap_dir_entry e;
  nub_cap_error err;
  uint64_t count, capacity;
  bool inserted;
  size_t used;
  (void)state;
  setup_dir(&f, 1 << 16, 8);
  used = f.bump.used;
  assert_int_equal(nub_cap_dir_put(&f.dir, junk, sizeof junk, h, &e, NULL, &inserted, &err),
                   CAP_ERR_TRUNCATED);
  assert_false(inserted);
  assert_int_equal(f.bump.used, used);   /* the record was given back */
  assert_int_equal(nub_cap_dir_stats(&f.dir, &count, &capacity, &err), CAP_OK);
  assert_int_equal(count, 0);
  tu_hash(h, 3);
  assert_int_equal(nub_cap_dir_find(&f.dir, h, &e, &err), CAP_ERR_MISSING);
  assert_memory_equal(err.hash, h, 32);
  assert_non_null(strstr(err.msg, "no cap under"));
  /* a writer finding its seqlock word odd stops instead of tearing more */
  wr64(f.region + f.dir.header_off + H_SEQ, 3);
  assert_int_equal(nub_cap_dir_put(&f.dir, empty_cnode, sizeof empty_cnode, h, &e, NULL, &inserted, &err),
                   CAP_ERR_CORRUPT);
  assert_non_null(strstr(err.msg, "odd outside a write section"));
  assert_int_equal(f.bump.used, used);
  free(f.region);
}

static void test_growth(void **state) {
  fixture f;
  caps c;
  nub_cap_dir_entry e;
  nub_cap_error err;
  uint64_t count, capacity;
  bool inserted;
  (void)state;
  make_caps(&c, 3000);
  setup_dir(&f, 32 << 20, 8);
  for (unsigned i = 0; i < c.n; i++) {
    put_ok(&f, c.wire[i], c.len[i], &e, &inserted);
    assert_true(inserted);
  }
  assert_int_equal(nub_cap_dir_stats(&f.dir, &count, &capacity, &err), CAP_OK);
  assert_int_equal(count, 3000);
  assert_int_equal(capacity, 4096);
  for (unsigned i = 0; i < c.n; i++) {
    assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[i], &e, &err), CAP_OK);
    assert_int_equal(e.ordinal, i);
    assert_memory_equal(e.wire, c.wire[i], c.len[i]);
  }
  free_caps(&c);
  free(f.region);
}

static void *outside_alloc(void *ud, size_t size, size_t align) {
  static _Alignas(64) uint8_t elsewhere[1 << 16];
  (void)ud;
  (void)align;
  return size <= sizeof elsewhere ? elsewhere : NULL;
}

static void test_region_full_and_bad_allocator(void **state) {
  fixture f;
  caps c;
  nub_cap_dir_entry e;
  nub_cap_error err;
  uint8_t h[32];
  bool inserted;
  unsigned stored = 0;
  int rc = 0;
  (void)state;
  make_caps(&c, 40);
  setup_dir(&f, 64 * 1024, 8);
  while (stored < c.n && !(rc = nub_cap_dir_put(&f.dir, c.wire[stored], c.len[stored], h, &e,
                                            NULL, &inserted, &err)))
    stored++;
  assert_int_equal(rc, CAP_ERR_FULL);
  assert_true(stored > 5 && stored < c.n);
  for (unsigned i = 0; i < stored; i++)   /* what was stored is intact */
    assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[i], &e, &err), CAP_OK);
  assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[stored], &e, &err), CAP_ERR_MISSING);
  free(f.region);
  /* an allocator handing out memory outside the region is refused */
  setup_dir(&f, 1 << 16, 8);
  f.dir.alloc.alloc = outside_alloc;
  assert_int_equal(nub_cap_dir_put(&f.dir, c.wire[0], c.len[0], h, &e, NULL, &inserted, &err),
                   CAP_ERR_ARG);
  assert_non_null(strstr(err.msg, "outside the region"));
  free(f.region);
  free_caps(&c);
}

/* A copy of the region at another address reads the same. */
static void test_position_independent(void **state) {
  fixture f;
  caps c;
  nub_cap_dir_entry e;
  nub_cap_dir reader;
  nub_cap_error err;
  bool inserted;
  uint8_t *copy;
  (void)state;
  make_caps(&c, 100);
  setup_dir(&f, 1 << 20, 8);
  for (unsigned i = 0; i < c.n; i++) put_ok(&f, c.wire[i], c.len[i], &e, &inserted);
  copy = aligned_alloc(64, f.size);
  memcpy(copy, f.region, f.size);
  memset(f.region, 0, f.size);   /* nothing may still point into the original */
  assert_int_equal(nub_cap_dir_open(&reader, copy, f.size, f.dir.header_off, &err), CAP_OK);
  for (unsigned i = 0; i < c.n; i++) {
    assert_int_equal(nub_cap_dir_find(&reader, c.hash[i], &e, &err), CAP_OK);
    assert_true(e.wire > copy && e.wire < copy + f.size);
    assert_memory_equal(e.wire, c.wire[i], c.len[i]);
  }
  free(copy);
  free_caps(&c);
  free(f.region);
}

/* ---- hostile regions ---- */

typedef struct corrupt_env {
  fixture f;
  caps c;
  uint8_t *copy;
} corrupt_env;

static uint8_t *hdr(corrupt_env *z) { return z->copy + z->f.dir.header_off; }
static uint8_t *table_of(corrupt_env *z) { return hdr(z) + rd64(hdr(z) + H_TABLE); }

/* The slot holding hash h in the copy. */
static uint8_t *slot_of(corrupt_env *z, const uint8_t *h) {
  uint64_t cap = rd64(hdr(z) + H_CAPACITY);
  for (uint64_t i = 0; i < cap; i++)
    if (!memcmp(table_of(z) + i * SLOT, h, 32)) return table_of(z) + i * SLOT;
  fail_msg("hash not in the table");
  return NULL;
}

static uint8_t *record_of(corrupt_env *z, const uint8_t *h) {
  return hdr(z) + rd64(slot_of(z, h) + 32);
}

static void reset(corrupt_env *z) { memcpy(z->copy, z->f.region, z->f.size); }

/* A directory of n caps (stored once when asked) in a region of
** region_size bytes, and a copy of it to damage. */
static corrupt_env *corrupt_env_new(unsigned n, size_t region_size, bool stored_once) {
  corrupt_env *z = calloc(1, sizeof *z);
  nub_cap_dir_entry e;
  bool inserted;
  make_caps(&z->c, n);
  setup_dir(&z->f, region_size, 8);
  z->f.dir.page_images = stored_once;
  for (unsigned i = 0; i < z->c.n; i++) put_ok(&z->f, z->c.wire[i], z->c.len[i], &e, &inserted);
  z->copy = aligned_alloc(64, z->f.size);
  reset(z);
  return z;
}

#define expect_find(z, code, text) expect_find_at(z, code, text, __LINE__)
static void expect_find_at(corrupt_env *z, int code, const char *text, int line) {
  nub_cap_dir d;
  nub_cap_dir_entry e;
  nub_cap_error err;
  int rc = nub_cap_dir_open(&d, z->copy, z->f.size, z->f.dir.header_off, &err);
  if (!rc) rc = nub_cap_dir_find(&d, z->c.hash[3], &e, &err);
  if (rc != code || !strstr(err.msg, text))
    fail_msg("line %d: got %s \"%s\", want %s with \"%s\"", line, nub_cap_errcode_name(rc),
             rc ? err.msg : "", nub_cap_errcode_name(code), text);
  reset(z);
}

static void test_corrupted_regions(void **state) {
  corrupt_env *z = corrupt_env_new(20, 1 << 18, false);
  nub_cap_dir d;
  nub_cap_error err;
  uint8_t buf[8192];
  size_t len;
  (void)state;
  expect_find(z, CAP_OK, "");
  hdr(z)[0] ^= 1;
  expect_find(z, CAP_ERR_CORRUPT, "header magic");
  hdr(z)[8] ^= 1;
  expect_find(z, CAP_ERR_CORRUPT, "is not CAP_DIR_TYPE_ID");
  wr64(hdr(z) + H_CAPACITY, 48);
  expect_find(z, CAP_ERR_CORRUPT, "capacity (0x30)");
  wr64(hdr(z) + H_CAPACITY, 4);
  expect_find(z, CAP_ERR_CORRUPT, "capacity (0x4)");
  wr64(hdr(z) + H_CAPACITY, 1ull << 40);
  expect_find(z, CAP_ERR_CORRUPT, "capacity");
  wr64(hdr(z) + H_CAPACITY, 1ull << 13);   /* more slots than the region has room for */
  expect_find(z, CAP_ERR_CORRUPT, "capacity (0x2000)");
  wr64(hdr(z) + H_CAPACITY, 1ull << 12);   /* fits the region, but not from there */
  wr64(hdr(z) + H_TABLE, z->f.size - z->f.dir.header_off - 4000);
  expect_find(z, CAP_ERR_CORRUPT, "table offset");
  wr64(hdr(z) + H_TABLE, z->f.size);
  expect_find(z, CAP_ERR_CORRUPT, "table offset");
  wr64(hdr(z) + H_TABLE, (uint64_t)-(int64_t)(z->f.dir.header_off + 8));
  expect_find(z, CAP_ERR_CORRUPT, "table offset");
  wr64(hdr(z) + H_TABLE, rd64(hdr(z) + H_TABLE) + 4);
  expect_find(z, CAP_ERR_CORRUPT, "table offset");
  wr64(hdr(z) + H_COUNT, rd64(hdr(z) + H_CAPACITY));
  expect_find(z, CAP_ERR_CORRUPT, "entry count");
  wr64(slot_of(z, z->c.hash[3]) + 32, z->f.size);
  expect_find(z, CAP_ERR_CORRUPT, "record offset");
  wr64(slot_of(z, z->c.hash[3]) + 32, rd64(slot_of(z, z->c.hash[3]) + 32) + 3);
  expect_find(z, CAP_ERR_CORRUPT, "record offset");
  wr64(record_of(z, z->c.hash[3]), 1ull << 40);
  expect_find(z, CAP_ERR_CORRUPT, "record length");
  wr64(record_of(z, z->c.hash[3]), 0);
  expect_find(z, CAP_ERR_CORRUPT, "record length");
  record_of(z, z->c.hash[3])[12] = 9;
  expect_find(z, CAP_ERR_CORRUPT, "ordinal/kind");
  record_of(z, z->c.hash[3])[8] = 200;
  expect_find(z, CAP_ERR_CORRUPT, "ordinal/kind");
  record_of(z, z->c.hash[3])[15] = 1;
  expect_find(z, CAP_ERR_CORRUPT, "ordinal/kind");
  wr64(hdr(z) + H_SEQ, 7);   /* a writer that never finishes */
  expect_find(z, CAP_ERR_BUSY, "kept the directory changing");
  /* every slot taken by strangers: the probe ends, the hash is missing */
  for (uint64_t i = 0; i < rd64(hdr(z) + H_CAPACITY); i++) {
    memset(table_of(z) + i * SLOT, 0x33, 32);
    wr64(table_of(z) + i * SLOT + 32, 8);
  }
  expect_find(z, CAP_ERR_MISSING, "no cap under");
  /* bytes changed under a valid entry: the verified copy says so */
  record_of(z, z->c.hash[3])[REC + 20] ^= 0x40;
  assert_int_equal(nub_cap_dir_open(&d, z->copy, z->f.size, z->f.dir.header_off, &err), CAP_OK);
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err), CAP_ERR_CORRUPT);
  assert_non_null(strstr(err.msg, "holds a cap hashing to"));
  reset(z);
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err), CAP_OK);
  assert_int_equal(len, z->c.len[3]);
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, 10, &len, &err), CAP_ERR_FULL);
  /* handles on impossible regions */
  assert_int_equal(nub_cap_dir_open(&d, z->copy, z->f.size, z->f.size - 8, &err), CAP_ERR_ARG);
  assert_int_equal(nub_cap_dir_open(&d, z->copy + 4, z->f.size - 4, 0, &err), CAP_ERR_ARG);
  assert_int_equal(nub_cap_dir_open(&d, z->copy, z->f.size, 12, &err), CAP_ERR_ARG);
  free(z->copy);
  free_caps(&z->c);
  free(z->f.region);
  free(z);
}

/* Random damage anywhere in the region: lookups answer or fail, never
** crash, and a verified answer is always right. */
static void random_damage(bool stored_once) {
  corrupt_env *z = corrupt_env_new(50, 1 << 19, stored_once);
  uint8_t buf[8192];
  unsigned answered = 0, refused = 0;
  srand(12345);
  for (int round = 0; round < 300; round++) {
    nub_cap_dir d;
    nub_cap_error err;
    reset(z);
    for (int k = 0; k < 1 + round % 8; k++) {   /* damage the busy front of the region */
      size_t at = (size_t)rand() % z->f.bump.used;
      z->copy[at] = (uint8_t)rand();
    }
    wr64(z->copy + z->f.dir.header_off + H_SEQ, 0);
    if (nub_cap_dir_open(&d, z->copy, z->f.size, z->f.dir.header_off, &err)) { refused++; continue; }
    for (unsigned i = 0; i < z->c.n; i += 7) {
      size_t len;
      if (nub_cap_dir_get_verified(&d, z->c.hash[i], buf, sizeof buf, &len, &err)) refused++;
      else {
        answered++;
        assert_memory_equal(buf, z->c.wire[i], len);
      }
    }
  }
  printf("random damage (%s): %u verified answers, %u refusals\n",
         stored_once ? "Data stored once" : "whole records", answered, refused);
  assert_true(answered > 0 && refused > 0);
  free(z->copy);
  free_caps(&z->c);
  free(z->f.region);
  free(z);
}

static void test_random_damage(void **state) {
  (void)state;
  random_damage(false);
  random_damage(true);
}

/* A directory storing Data once (docs/wire.md, "Stored once"): readers
** put the wire back together, and every field of such a record that
** could send them outside the region is checked. */
enum { P_HEAD = 16, P_IMAGE = 32, P_INDEXES = 40 };

static void test_stored_once_records_are_checked(void **state) {
  corrupt_env *z = corrupt_env_new(20, 1 << 18, true);
  nub_cap_dir_entry e;
  nub_cap_dir d;
  nub_cap_error err;
  uint8_t buf[8192];
  size_t len;
  (void)state;
  expect_find(z, CAP_OK, "");
  assert_int_equal(nub_cap_dir_open(&d, z->copy, z->f.size, z->f.dir.header_off, &err), CAP_OK);
  assert_int_equal(nub_cap_dir_find(&d, z->c.hash[3], &e, &err), CAP_OK);
  assert_non_null(e.pages);                                   /* stored once */
  assert_int_equal(e.page_count, 1);
  assert_int_equal(e.len, z->c.len[3]);
  assert_memory_equal(e.wire, z->c.wire[3], CAP_DIR_DATA_HEAD);
  assert_memory_equal(e.pages, z->c.wire[3] + CAP_DIR_DATA_HEAD + 4, CAP_PAGE_SIZE);
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err), CAP_OK);
  assert_int_equal(len, z->c.len[3]);
  assert_memory_equal(buf, z->c.wire[3], len);
  uint8_t *rec = record_of(z, z->c.hash[3]);
  rec[12] = CAP_IMAGE;                                        /* only Data is stored once */
  expect_find(z, CAP_ERR_CORRUPT, "stored-once record kind");
  record_of(z, z->c.hash[3])[13] = 3;                         /* an unknown flag */
  expect_find(z, CAP_ERR_CORRUPT, "ordinal/kind/flags");
  wr64(record_of(z, z->c.hash[3]), 13 + 4100 + 1);            /* not head + whole pages */
  expect_find(z, CAP_ERR_CORRUPT, "stored-once record length");
  wr64(record_of(z, z->c.hash[3]), 13);                       /* no pages */
  expect_find(z, CAP_ERR_CORRUPT, "stored-once record length");
  wr64(record_of(z, z->c.hash[3]), 13 + 4100ull * ((1u << 20) + 1));   /* past 2^20 pages */
  expect_find(z, CAP_ERR_CORRUPT, "stored-once record length");
  wr64(record_of(z, z->c.hash[3]), 13 + 4100ull * (1u << 16));  /* indexes past the region */
  expect_find(z, CAP_ERR_CORRUPT, "record offset");
  wr64(record_of(z, z->c.hash[3]) + P_IMAGE, z->f.size);      /* the image outside the region */
  expect_find(z, CAP_ERR_CORRUPT, "page image offset");
  wr64(record_of(z, z->c.hash[3]) + P_IMAGE, (uint64_t)-(int64_t)(z->f.dir.header_off + 8));
  expect_find(z, CAP_ERR_CORRUPT, "page image offset");
  wr64(record_of(z, z->c.hash[3]) + P_IMAGE, rd64(record_of(z, z->c.hash[3]) + P_IMAGE) + 4);
  expect_find(z, CAP_ERR_CORRUPT, "page image offset");
  wr64(record_of(z, z->c.hash[3]) + P_IMAGE, z->f.size - z->f.dir.header_off - 4096 + 8);
  expect_find(z, CAP_ERR_CORRUPT, "page image offset");       /* the last page runs past */
  /* bytes changed under a valid entry: an index or the size no longer
  ** decode (the copy is checked like any wire), a page byte no longer
  ** hashes to the key */
  static const size_t poke[] = {P_INDEXES, P_HEAD + 1};
  for (size_t i = 0; i < 2; i++) {
    record_of(z, z->c.hash[3])[poke[i]] ^= 0x40;
    int rc = nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err);
    assert_true(rc == CAP_ERR_RANGE || rc == CAP_ERR_ALIGN);
    reset(z);
  }
  assert_int_equal(nub_cap_dir_find(&d, z->c.hash[3], &e, &err), CAP_OK);
  z->copy[(size_t)(e.pages - z->copy) + 100] ^= 0x40;
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err), CAP_ERR_CORRUPT);
  assert_non_null(strstr(err.msg, "holds a cap hashing to"));
  reset(z);
  /* the flag cleared: read as a record holding its wire, which does not
  ** decode or hash to the key */
  record_of(z, z->c.hash[3])[13] = 0;
  assert_true(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, sizeof buf, &len, &err) != CAP_OK);
  reset(z);
  assert_int_equal(nub_cap_dir_get_verified(&d, z->c.hash[3], buf, 100, &len, &err), CAP_ERR_FULL);
  free(z->copy);
  free_caps(&z->c);
  free(z->f.region);
  free(z);
}

/* A Data cap stored once is decoded from its copies with the checks and
** the errors (code, offset, text) of nub_cap_decode on the wire. */
static void test_stored_once_decodes_like_the_wire(void **state) {
  static const struct { const char *what; size_t at; uint8_t xor_with; } cases[] = {
    {"a good cap", 0, 0},
    {"size not a page multiple", 1, 0x01},
    {"size past 2^32", 8, 0x10},
    {"pages offset 13, not 12", 9, 0x01},
    {"page 1 index repeats page 0's", 13 + 4100, 0x02},
    {"page 2 index past the size", 13 + 2 * 4100 + 2, 0x01},
    {"page 1 all zero", 0, 0},
  };
  uint8_t bytes[4 * CAP_PAGE_SIZE] = {0};
  (void)state;
  memset(bytes, 0x11, CAP_PAGE_SIZE);                         /* pages 0, 2, 3 */
  memset(bytes + 2 * CAP_PAGE_SIZE, 0x22, 2 * CAP_PAGE_SIZE);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fixture f;
    nub_cap_dir_entry e;
    nub_cap_view v, want;
    nub_cap_error err, werr;
    bool inserted;
    uint8_t h[CAP_HASH_SIZE], *wire;
    size_t len;
    assert_int_equal(nub_cap_encode_data_alloc(sizeof bytes, bytes, sizeof bytes, &wire, &len, NULL), CAP_OK);
    assert_int_equal(len, 13 + 3 * 4100);
    if (cases[i].xor_with) wire[cases[i].at] ^= cases[i].xor_with;
    if (i == 6) memset(wire + 13 + 4100 + 4, 0, CAP_PAGE_SIZE);
    setup_dir(&f, 1 << 17, 8);
    f.dir.page_images = true;
    size_t used = f.bump.used;
    int wrc = nub_cap_decode(wire, wire + len, &want, &werr);
    int rc = nub_cap_dir_put(&f.dir, wire, len, h, &e, &v, &inserted, &err);
    print_message("    %-32s %s\n", cases[i].what, rc ? err.msg : "stored once");
    assert_int_equal(rc, wrc);
    if (rc) {
      assert_int_equal(err.offset, werr.offset);
      assert_string_equal(err.msg, werr.msg);
      assert_int_equal(f.bump.used, used);                   /* record and image given back */
    } else {
      uint8_t wh[CAP_HASH_SIZE];
      assert_true(inserted);
      assert_null(v.data.pages);
      assert_int_equal(v.data.page_count, 3);
      assert_int_equal(v.data.run_count, 2);
      for (uint32_t p = 0; p < 3; p++) {
        nub_cap_page a = nub_cap_data_page(&v.data, p), b = nub_cap_data_page(&want.data, p);
        assert_int_equal(a.index, b.index);
        assert_memory_equal(a.bytes, b.bytes, CAP_PAGE_SIZE);
      }
      assert_ptr_equal(nub_cap_data_find_page(&v.data, 2), v.data.image + CAP_PAGE_SIZE);
      assert_null(nub_cap_data_find_page(&v.data, 1));
      assert_int_equal(nub_cap_hash(&want, wh, NULL), CAP_OK);
      assert_memory_equal(h, wh, CAP_HASH_SIZE);
    }
    free(wire);
    free(f.region);
  }
}

/* ---- a writer racing readers through a read-only mapping ---- */

enum { RACE_CAPS = 1500, READERS = 2 };

typedef struct race {
  caps c;
  nub_cap_dir writer;
  nub_cap_dir reader;          /* over the read-only mapping */
  nub_cap_bump bump;
  unsigned published;      /* entries the writer has finished (atomic) */
  int done;                /* writer finished (atomic) */
} race;

typedef struct reader_stats {
  race *r;
  unsigned seed, found, verified, missing_early, failures;
} reader_stats;

static void *writer_main(void *arg) {
  race *r = arg;
  for (unsigned i = 0; i < r->c.n; i++) {
    uint8_t h[32];
    nub_cap_dir_entry e;
    nub_cap_error err;
    bool inserted;
    if (nub_cap_dir_put(&r->writer, r->c.wire[i], r->c.len[i], h, &e, NULL, &inserted, &err)) abort();
    __atomic_store_n(&r->published, i + 1, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* One lookup: found entries must verify; published ones must be found. */
static void look(reader_stats *s, unsigned i, unsigned published) {
  static __thread uint8_t buf[8192];
  size_t len;
  nub_cap_error err;
  int rc = nub_cap_dir_get_verified(&s->r->reader, s->r->c.hash[i], buf, sizeof buf, &len, &err);
  if (rc == CAP_OK) {
    s->found++;
    s->verified += len == s->r->c.len[i] && !memcmp(buf, s->r->c.wire[i], len);
    s->failures += !(len == s->r->c.len[i] && !memcmp(buf, s->r->c.wire[i], len));
  } else if (rc == CAP_ERR_MISSING && i >= published) {
    s->missing_early++;
  } else {
    s->failures++;
  }
}

static void *reader_main(void *arg) {
  reader_stats *s = arg;
  while (!__atomic_load_n(&s->r->done, __ATOMIC_ACQUIRE)) {
    unsigned published = __atomic_load_n(&s->r->published, __ATOMIC_ACQUIRE);
    unsigned i = (unsigned)rand_r(&s->seed) % s->r->c.n;
    look(s, i, published);
  }
  for (unsigned i = 0; i < s->r->c.n; i++) look(s, i, s->r->c.n);
  return NULL;
}

/* A forked reader: polls until every entry is in, then checks them all. */
static int child_reader(race *r) {
  reader_stats s = {r, 99, 0, 0, 0, 0};
  uint64_t count = 0, capacity;
  nub_cap_error err;
  while (count < r->c.n) {
    if (nub_cap_dir_stats(&r->reader, &count, &capacity, &err)) return 100;
    look(&s, (unsigned)rand_r(&s.seed) % r->c.n, 0);
  }
  for (unsigned i = 0; i < r->c.n; i++) look(&s, i, r->c.n);
  return s.failures > 99 ? 99 : (int)s.failures;
}

static void test_writer_races_readers(void **state) {
  size_t size = 64 << 20;
  int fd = memfd_create("capdir", 0);
  race *r = calloc(1, sizeof *r);
  uint8_t *rw, *ro;
  pthread_t writer, readers[READERS];
  reader_stats st[READERS];
  nub_cap_alloc alloc;
  nub_cap_error err;
  pid_t child;
  int status;
  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)size), 0);
  rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ro = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  assert_true(rw != MAP_FAILED && ro != MAP_FAILED && rw != ro);
  make_caps(&r->c, RACE_CAPS);
  nub_cap_bump_init(&r->bump, rw, size);
  alloc = nub_cap_bump_allocator(&r->bump);
  assert_int_equal(nub_cap_dir_create(&r->writer, rw, size, &alloc, 8, &err), CAP_OK);
  assert_int_equal(nub_cap_dir_open(&r->reader, ro, size, r->writer.header_off, &err), CAP_OK);
  fflush(stdout);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) _exit(child_reader(r));
  for (int i = 0; i < READERS; i++) {
    st[i] = (reader_stats){r, (unsigned)i + 1, 0, 0, 0, 0};
    pthread_create(&readers[i], NULL, reader_main, &st[i]);
  }
  pthread_create(&writer, NULL, writer_main, r);
  pthread_join(writer, NULL);
  for (int i = 0; i < READERS; i++) {
    pthread_join(readers[i], NULL);
    printf("reader %d: %u found and verified %u, %u not yet published, %u failures\n", i,
           st[i].found, st[i].verified, st[i].missing_early, st[i].failures);
    assert_int_equal(st[i].failures, 0);
    assert_int_equal(st[i].verified, st[i].found);
    assert_true(st[i].found >= RACE_CAPS);
  }
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  munmap(rw, size);
  munmap(ro, size);
  close(fd);
  free_caps(&r->c);
  free(r);
}

/* nub_cap_dir_put_hashed stores under the caller's hash without hashing,
** interoperates with nub_cap_dir_put, grows, and still decodes every copy. */
static void test_put_hashed(void **state) {
  fixture f;
  caps c;
  nub_cap_dir_entry e, again;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  uint64_t count, capacity;
  (void)state;
  make_caps(&c, 300);
  setup_dir(&f, 1 << 22, 8);
  for (unsigned i = 0; i < c.n; i++) {
    assert_int_equal(nub_cap_dir_put_hashed(&f.dir, c.wire[i], c.len[i], c.hash[i], &e, &v, &inserted, &err), CAP_OK);
    assert_true(inserted);
    assert_int_equal(e.ordinal, i);
    assert_ptr_equal(v.wire, e.wire);
  }
  assert_int_equal(nub_cap_dir_stats(&f.dir, &count, &capacity, &err), CAP_OK);
  assert_int_equal(count, c.n);
  assert_true(capacity >= 512);                      /* grew from 8 */
  for (unsigned i = 0; i < c.n; i++) {
    assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[i], &e, &err), CAP_OK);
    assert_int_equal(e.ordinal, i);
    assert_memory_equal(e.wire, c.wire[i], c.len[i]);
  }
  /* idempotent both ways: hashed again, and hashing */
  assert_int_equal(nub_cap_dir_put_hashed(&f.dir, c.wire[7], c.len[7], c.hash[7], &again, NULL, &inserted, &err), CAP_OK);
  assert_false(inserted);
  assert_int_equal(again.ordinal, 7);
  put_ok(&f, c.wire[8], c.len[8], &again, &inserted);
  assert_false(inserted);
  assert_int_equal(again.ordinal, 8);
  /* other bytes under a stored hash, and bytes that do not decode: refused */
  assert_int_equal(nub_cap_dir_put_hashed(&f.dir, c.wire[9], c.len[9], c.hash[10], &e, NULL, &inserted, &err), CAP_ERR_CORRUPT);
  assert_non_null(strstr(err.msg, "holds other bytes"));
  uint8_t junk[3] = {9, 9, 9};
  uint8_t h[CAP_HASH_SIZE];
  memset(h, 0x77, sizeof h);
  assert_int_not_equal(nub_cap_dir_put_hashed(&f.dir, junk, sizeof junk, h, &e, NULL, &inserted, &err), CAP_OK);
  assert_false(inserted);
  assert_int_equal(nub_cap_dir_find(&f.dir, h, &e, &err), CAP_ERR_MISSING);
  assert_int_equal(nub_cap_dir_stats(&f.dir, &count, &capacity, &err), CAP_OK);
  assert_int_equal(count, c.n);
  free_caps(&c);
  free(f.region);
}

/* A table whose every free slot a stranger took: a lookup of an absent
** hash stops after CAP_DIR_READ_SLOTS slot reads instead of walking all
** 2^17, the caps stored before are still found, and neither writer makes
** a probe sequence longer than readers would walk. */
static void test_reads_are_bounded(void **state) {
  fixture f;
  caps c;
  nub_cap_dir_entry e;
  nub_cap_error err;
  bool inserted;
  uint8_t h[CAP_HASH_SIZE];
  (void)state;
  make_caps(&c, 21);
  setup_dir(&f, 8u << 20, 1u << 17);
  for (unsigned i = 0; i < 20; i++) put_ok(&f, c.wire[i], c.len[i], &e, &inserted);
  uint8_t *hdr = f.region + f.dir.header_off, *table = hdr + rd64(hdr + H_TABLE);
  uint64_t capacity = rd64(hdr + H_CAPACITY), taken = 0;
  assert_int_equal(capacity, 1u << 17);
  for (uint64_t i = 0; i < capacity; i++)
    if (!rd64(table + i * SLOT + 32)) {
      memset(table + i * SLOT, 0x33, 32);
      wr64(table + i * SLOT + 32, 8);
      taken++;
    }
  assert_int_equal(taken, capacity - 20);
  assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[20], &e, &err), CAP_ERR_CORRUPT);
  assert_non_null(strstr(err.msg, "probe sequence longer than 65536 slots"));
  for (unsigned i = 0; i < 20; i++) assert_int_equal(nub_cap_dir_find(&f.dir, c.hash[i], &e, &err), CAP_OK);
  assert_int_equal(nub_cap_dir_put(&f.dir, c.wire[20], c.len[20], h, &e, NULL, &inserted, &err), CAP_ERR_FULL);
  assert_non_null(strstr(err.msg, "probe sequence longer"));
  assert_int_equal(nub_cap_dir_put_hashed(&f.dir, c.wire[20], c.len[20], c.hash[20], &e, NULL, &inserted, &err), CAP_ERR_FULL);
  assert_false(inserted);
  free_caps(&c);
  free(f.region);
}

/* The allocator's copy hook stores what the directory keeps: the record's
** wire as one block, a Data cap's page image as one block per page read
** W_PAGE (4100) bytes apart; a hook that refuses nothing but counts. */
typedef struct copy_log {
  unsigned calls;
  size_t len[4], count[4], stride[4];
} copy_log;

static copy_log the_log;

static void logging_copy(void *ud, uint8_t *dst, const uint8_t *src, size_t len, size_t count,
                         size_t stride) {
  (void)ud;
  if (the_log.calls < 4) {
    the_log.len[the_log.calls] = len;
    the_log.count[the_log.calls] = count;
    the_log.stride[the_log.calls] = stride;
  }
  the_log.calls++;
  for (size_t i = 0; i < count; i++) memcpy(dst + i * len, src + i * stride, len);
}

static void test_copy_hook_stores_records_and_images(void **state) {
  fixture f;
  nub_cap_dir_entry e;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  uint8_t h[CAP_HASH_SIZE], *wire, bytes[3 * 4096];
  size_t len;
  (void)state;
  setup_dir(&f, 1u << 20, 16);
  f.dir.alloc.copy = logging_copy;
  f.dir.page_images = true;
  memset(bytes, 0, sizeof bytes);
  memset(bytes, 0xA1, 4096);               /* pages 0 and 2: two runs */
  memset(bytes + 8192, 0xC3, 4096);
  assert_int_equal(nub_cap_encode_data_alloc(sizeof bytes, bytes, sizeof bytes, &wire, &len, NULL), CAP_OK);
  memset(&the_log, 0, sizeof the_log);
  if (nub_cap_dir_put(&f.dir, wire, len, h, &e, &v, &inserted, &err)) fail_msg("put: %s", err.msg);
  assert_true(inserted);
  /* stored once: the pages go into the image, page by page, and nowhere
  ** else (the record's head and indexes are a few bytes, by memcpy) */
  assert_int_equal(the_log.calls, 1);
  assert_int_equal(the_log.len[0], 4096);
  assert_int_equal(the_log.count[0], 2);
  assert_int_equal(the_log.stride[0], 4100);
  assert_null(v.data.pages);
  assert_ptr_equal(e.pages, v.data.image);
  assert_int_equal(e.page_count, 2);
  uint8_t *back = malloc(len);
  assert_non_null(back);
  nub_cap_dir_entry_copy(&e, back);
  assert_memory_equal(back, wire, len);
  free(back);
  assert_memory_equal(v.data.image, bytes, 4096);
  assert_memory_equal(v.data.image + 4096, bytes + 8192, 4096);
  assert_int_equal(v.data.run_count, 2);
  assert_int_equal(v.data.runs[0], 0);
  assert_int_equal(v.data.runs[2], 2);
  /* the same Data again: the image is copied before the duplicate is found */
  memset(&the_log, 0, sizeof the_log);
  if (nub_cap_dir_put(&f.dir, wire, len, h, &e, &v, &inserted, &err)) fail_msg("put: %s", err.msg);
  assert_false(inserted);
  assert_int_equal(the_log.calls, 1);
  free(wire);
  free(f.region);
}

/* store_pages stands in for the copy of a page image when the caller
** vouches for the hash (nub_cap_dir_put_hashed) and only then, and
** first_zero_page's answer is the zero check: the directory reads none of
** the pages.  These hooks copy by memcpy and name page `claimed_zero` all
** zero (the bytes are not), so a refusal can only come from what they
** said; SIZE_MAX: the hook cannot tell, and the directory reads them. */
static size_t claimed_zero = SIZE_MAX;
static unsigned store_calls, zero_calls;

static void counting_store(void *ud, uint8_t *dst, const uint8_t *src, size_t count,
                           size_t stride) {
  (void)ud;
  store_calls++;
  for (size_t i = 0; i < count; i++) memcpy(dst + i * 4096, src + i * stride, 4096);
}

static size_t claiming_zero(void *ud, const uint8_t *pages, size_t count) {
  (void)ud;
  (void)pages;
  zero_calls++;
  return claimed_zero == SIZE_MAX ? SIZE_MAX : claimed_zero < count ? claimed_zero : count;
}

static void test_store_pages_hook_checks_the_pages_of_hashed_puts(void **state) {
  fixture f;
  nub_cap_dir_entry e;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  uint8_t h[CAP_HASH_SIZE], h2[CAP_HASH_SIZE], *wire, bytes[3 * 4096];
  size_t len;
  (void)state;
  setup_dir(&f, 1u << 20, 16);
  f.dir.alloc.store_pages = counting_store;
  f.dir.alloc.first_zero_page = claiming_zero;
  f.dir.page_images = true;
  memset(bytes, 0xB2, sizeof bytes);
  assert_int_equal(nub_cap_encode_data_alloc(sizeof bytes, bytes, sizeof bytes, &wire, &len, NULL), CAP_OK);
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
  /* a put the directory hashes itself reads the pages: no hook */
  store_calls = zero_calls = 0;
  claimed_zero = 1;
  if (nub_cap_dir_put(&f.dir, wire, len, h2, &e, &v, &inserted, &err)) fail_msg("put: %s", err.msg);
  assert_int_equal(store_calls + zero_calls, 0);
  assert_memory_equal(h2, h, CAP_HASH_SIZE);
  /* hashed: the hooks store the pages, and their word on page 1 is taken */
  wire[len - 1] ^= 1;
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
  assert_int_equal(nub_cap_dir_put_hashed(&f.dir, wire, len, h, &e, &v, &inserted, &err),
                   CAP_ERR_CANONICAL);
  assert_int_equal(store_calls, 1);
  assert_int_equal(zero_calls, 1);
  assert_int_equal(err.offset, 13 + 4100 + 4);
  assert_non_null(strstr(err.msg, "data.pages[1] (page 1) is all zero"));
  /* the hook cannot tell: the directory reads the pages, none is zero */
  claimed_zero = SIZE_MAX;
  if (nub_cap_dir_put_hashed(&f.dir, wire, len, h, &e, &v, &inserted, &err))
    fail_msg("put_hashed: %s", err.msg);
  assert_true(inserted);
  assert_int_equal(store_calls, 2);
  assert_int_equal(v.data.page_count, 3);
  uint8_t *back = malloc(len);
  assert_non_null(back);
  nub_cap_dir_entry_copy(&e, back);
  assert_memory_equal(back, wire, len);
  free(back);
  free(wire);
  free(f.region);
}

/* nub_cap_dir_put_placed: the pages are already in an allocation of the
** directory's allocator; the directory takes it (keeps it, or gives it
** back on a duplicate or any error), checks the pages through
** first_zero_page, and stores what nub_cap_dir_put_hashed of the same
** wire would. */
static void test_put_placed_takes_an_image_already_in_the_region(void **state) {
  fixture f;
  nub_cap_dir_entry e;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  uint8_t h[CAP_HASH_SIZE], *wire, bytes[4 * 4096], idx[16];
  size_t len;
  (void)state;
  setup_dir(&f, 1u << 20, 16);
  f.dir.alloc.first_zero_page = claiming_zero;
  f.dir.page_images = true;
  memset(bytes, 0, sizeof bytes);
  memset(bytes, 0x11, 4096);                 /* pages 0, 2, 3: two runs */
  memset(bytes + 2 * 4096, 0x22, 2 * 4096);
  assert_int_equal(nub_cap_encode_data_alloc(sizeof bytes, bytes, sizeof bytes, &wire, &len, NULL), CAP_OK);
  assert_int_equal(len, 13 + 3 * 4100);
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
  for (int i = 0; i < 3; i++) memcpy(idx + 4 * i, wire + 13 + i * 4100, 4);
  struct { const char *what; size_t size; size_t claim; size_t head_at; int want; } cases[] = {
    {"an image one run short", 3 * 4096 + 8, SIZE_MAX, 0, CAP_ERR_ARG},
    {"page 2 claimed zero", 3 * 4096 + 16, 2, 0, CAP_ERR_CANONICAL},
    {"a head that is no Data (selector 3)", 3 * 4096 + 16, SIZE_MAX, 1, CAP_ERR_ARG},
    {"stored", 3 * 4096 + 16, 3, 0, CAP_OK},
    {"again: found, the image given back", 3 * 4096 + 16, 3, 0, CAP_OK},
  };
  uint8_t head[13];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t used = f.bump.used;
    uint8_t *img = f.dir.alloc.alloc(f.dir.alloc.ud, cases[c].size, 4096);
    assert_non_null(img);
    for (int i = 0; i < 3; i++) memcpy(img + (size_t)i * 4096, wire + 13 + i * 4100 + 4, 4096);
    memcpy(head, wire, 13);
    if (cases[c].head_at) head[0] = 3;
    claimed_zero = cases[c].claim;
    int rc = nub_cap_dir_put_placed(&f.dir, head, len, idx, img, cases[c].size, h, &e, &v,
                                    &inserted, &err);
    print_message("    %-40s %s\n", cases[c].what, rc ? err.msg : inserted ? "inserted" : "found");
    assert_int_equal(rc, cases[c].want);
    if (rc || c == 4) assert_int_equal(f.bump.used, used);   /* given back */
    if (!rc) {
      assert_int_equal(inserted, c == 3);
      uint8_t *back = malloc(len);
      assert_non_null(back);
      nub_cap_dir_entry_copy(&e, back);
      assert_memory_equal(back, wire, len);
      free(back);
      assert_int_equal(v.data.run_count, 2);
      assert_int_equal(v.data.runs[0], 0);
      assert_int_equal(v.data.runs[2], 2);
      assert_int_equal(v.data.runs[3], 2);
    }
  }
  claimed_zero = SIZE_MAX;
  free(wire);
  free(f.region);
}

/* ---- hashing large Data caps on two threads (nub_cap_helper) ---- */

typedef struct thread_helper {
  pthread_t t;
  void (*fn)(void *);
  void *arg;
  unsigned started;
  bool refuse;
} thread_helper;

static void *helper_main(void *arg) {
  thread_helper *h = arg;
  h->fn(h->arg);
  return NULL;
}

static int helper_start(void *ud, void (*fn)(void *), void *arg) {
  thread_helper *h = ud;
  if (h->refuse) return -1;
  h->fn = fn;
  h->arg = arg;
  h->started++;
  return pthread_create(&h->t, NULL, helper_main, h);
}

static void helper_wait(void *ud) { pthread_join(((thread_helper *)ud)->t, NULL); }

/* Every shape of page index space: the hash of the two halves joined is
** the one-thread hash, whichever half holds the pages; a helper that
** refuses leaves the work to the caller; a directory with a helper stores
** under the same hash. */
static void test_hash_helper_gives_the_same_hash(void **state) {
  static const struct { const char *what; uint32_t npages; uint32_t first, count, step; bool helped; } shapes[] = {
    {"dense, 64 of 64 pages", 64, 0, 64, 1, true},
    {"dense, 37 pages (depth 6: halves of 32)", 37, 0, 37, 1, true},
    {"left half only", 64, 0, 32, 1, false},
    {"right half only", 64, 32, 32, 1, true},
    {"the pages either side of the middle", 64, 31, 2, 1, true},
    {"sparse, every 5th of 300", 300, 0, 60, 5, true},
    {"one page (never split)", 1, 0, 1, 1, false},
  };
  (void)state;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    size_t size = (size_t)shapes[i].npages * CAP_PAGE_SIZE, len;
    uint8_t *bytes = calloc(1, size), *wire, one[32], two[32], stored[32];
    assert_non_null(bytes);
    for (uint32_t k = 0; k < shapes[i].count; k++) {
      uint32_t p = shapes[i].first + k * shapes[i].step;
      memset(bytes + (size_t)p * CAP_PAGE_SIZE, (int)(p * 7 + 1), CAP_PAGE_SIZE);
    }
    assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
    nub_cap_view v;
    assert_int_equal(nub_cap_decode(wire, wire + len, &v, NULL), CAP_OK);
    assert_int_equal(nub_cap_hash(&v, one, NULL), CAP_OK);
    thread_helper th = {0};
    nub_cap_helper helper = {helper_start, helper_wait, &th, 1};
    assert_int_equal(nub_cap_hash_with(&v, &helper, two, NULL), CAP_OK);
    print_message("    %-42s helper ran %u time(s)\n", shapes[i].what, th.started);
    assert_memory_equal(one, two, 32);
    assert_int_equal(th.started, shapes[i].helped ? 1 : 0);
    th.refuse = true;                          /* no second thread: the same hash */
    assert_int_equal(nub_cap_hash_with(&v, &helper, two, NULL), CAP_OK);
    assert_memory_equal(one, two, 32);
    th.refuse = false;
    helper.min_pages = shapes[i].count + 1;    /* below the threshold: not split */
    th.started = 0;
    assert_int_equal(nub_cap_hash_with(&v, &helper, two, NULL), CAP_OK);
    assert_int_equal(th.started, 0);
    assert_memory_equal(one, two, 32);
    helper.min_pages = 1;
    fixture f;
    nub_cap_dir_entry e;
    bool inserted;
    nub_cap_error err;
    setup_dir(&f, 4u << 20, 8);
    f.dir.page_images = true;
    f.dir.hash_helper = &helper;
    th.started = 0;
    if (nub_cap_dir_put(&f.dir, wire, len, stored, &e, NULL, &inserted, &err)) fail_msg("put: %s", err.msg);
    assert_memory_equal(stored, one, 32);
    assert_int_equal(th.started, shapes[i].helped ? 1 : 0);
    free(f.region);
    free(wire);
    free(bytes);
  }
}

/* ---- a Data cap decoded from its parts, hashed from a loader ---- */

typedef struct loader_log {
  const uint8_t *wire;
  uint8_t *loads;              /* per view position: times loaded (atomic) */
  uint32_t calls, too_many;    /* atomic */
} loader_log;

static void log_loader(void *ud, uint32_t first, uint32_t n, uint8_t *buf) {
  loader_log *l = ud;
  __atomic_add_fetch(&l->calls, 1, __ATOMIC_RELAXED);
  if (n > NUB_CAP_LOAD_PAGES) __atomic_add_fetch(&l->too_many, 1, __ATOMIC_RELAXED);
  for (uint32_t j = 0; j < n; j++) {
    __atomic_add_fetch(&l->loads[first + j], 1, __ATOMIC_RELAXED);
    memcpy(buf + (size_t)j * 4096, l->wire + 13 + (size_t)(first + j) * 4100 + 4, 4096);
  }
}

/* The head and indexes of a wire, copied out as a host would. */
static uint8_t *parts_of(const uint8_t *wire, size_t len, uint32_t *n) {
  *n = (uint32_t)((len - 13) / 4100);
  uint8_t *idx = malloc(4 * (size_t)*n + 1);
  assert_non_null(idx);
  for (uint32_t i = 0; i < *n; i++) memcpy(idx + 4 * (size_t)i, wire + 13 + (size_t)i * 4100, 4);
  return idx;
}

/* nub_cap_decode_data_parts + nub_cap_hash_data_loaded give nub_cap_hash's
** hash on one thread or two, loading every page once, at most
** NUB_CAP_LOAD_PAGES at a time; a cap nub_cap_decode refuses is refused
** with its code, offset and words (by the parts' decode, or by the
** loaded hash when a page is all zero: the first by position, on either
** thread). */
static void test_loaded_hash_is_the_view_hash_and_refuses_as_decode(void **state) {
  static const struct { const char *what; uint32_t npages, first, count, step; } shapes[] = {
    {"one page", 1, 0, 1, 1},
    {"8 pages: one load", 8, 0, 8, 1},
    {"9 pages: a load of one after eight", 9, 0, 9, 1},
    {"dense, 37 pages (halves of 32 and 5)", 37, 0, 37, 1},
    {"right half only", 64, 32, 32, 1},
    {"the pages either side of the middle", 64, 31, 2, 1},
    {"sparse, every 5th of 300", 300, 0, 60, 5},
    {"dense, 1000 pages", 1000, 0, 1000, 1},
  };
  (void)state;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    size_t size = (size_t)shapes[i].npages * 4096, len;
    uint8_t *bytes = calloc(1, size), *wire, want[32], got[32];
    assert_non_null(bytes);
    for (uint32_t k = 0; k < shapes[i].count; k++) {
      uint32_t p = shapes[i].first + k * shapes[i].step;
      memset(bytes + (size_t)p * 4096, (int)(p * 7 + 1), 4096);
      bytes[(size_t)p * 4096 + 4095] = (uint8_t)i;
    }
    assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
    assert_int_equal(nub_cap_hash_wire(wire, wire + len, want, NULL), CAP_OK);
    uint32_t n;
    uint8_t *idx = parts_of(wire, len, &n), *loads = calloc(n, 1);
    assert_non_null(loads);
    nub_cap_view v;
    nub_cap_error err;
    if (nub_cap_decode_data_parts(wire, len, idx, &v, &err)) fail_msg("%s: %s", shapes[i].what, err.msg);
    assert_null(v.data.pages);
    assert_null(v.data.image);
    assert_int_equal(v.data.page_count, n);
    for (int helped = 0; helped < 2; helped++) {
      thread_helper th = {0};
      nub_cap_helper helper = {helper_start, helper_wait, &th, 1};
      loader_log l = {wire, loads, 0, 0};
      memset(loads, 0, n);
      if (nub_cap_hash_data_loaded(&v, helped ? &helper : NULL, log_loader, &l, got, &err))
        fail_msg("%s: %s", shapes[i].what, err.msg);
      assert_memory_equal(got, want, 32);
      assert_int_equal(l.too_many, 0);
      /* whole batches of 8, but for the last of each half */
      assert_in_range(l.calls, (n + 7) / 8, (n + 7) / 8 + (th.started ? 1 : 0));
      for (uint32_t k = 0; k < n; k++) assert_int_equal(loads[k], 1);
      if (helped) print_message("    %-40s %4u pages, %3u loads, helper ran %u time(s)\n",
                                shapes[i].what, n, l.calls, th.started);
    }
    /* an all-zero page at the start, the middle, either side of the split, the end */
    uint32_t zeros[] = {0, n / 2, n > 1 ? n / 2 - 1 : 0, n - 1};
    for (size_t z = 0; z < sizeof zeros / sizeof zeros[0]; z++) {
      uint8_t *bad = malloc(len);
      assert_non_null(bad);
      memcpy(bad, wire, len);
      memset(bad + 13 + (size_t)zeros[z] * 4100 + 4, 0, 4096);
      nub_cap_view dv;
      nub_cap_error de, le;
      assert_int_equal(nub_cap_decode(bad, bad + len, &dv, &de), CAP_ERR_CANONICAL);
      for (int helped = 0; helped < 2; helped++) {
        thread_helper th = {0};
        nub_cap_helper helper = {helper_start, helper_wait, &th, 1};
        loader_log l = {bad, loads, 0, 0};
        assert_int_equal(nub_cap_hash_data_loaded(&v, helped ? &helper : NULL, log_loader, &l,
                                                  got, &le), CAP_ERR_CANONICAL);
        assert_int_equal(le.offset, de.offset);
        assert_string_equal(le.msg, de.msg);
      }
      free(bad);
    }
    /* indexes out of order or past the end: the parts' decode, as decode */
    if (n >= 2) {
      uint8_t *bad = malloc(len), *bidx;
      uint32_t bn;
      assert_non_null(bad);
      memcpy(bad, wire, len);
      memcpy(bad + 13 + 4100, bad + 13, 4);            /* page 1's index repeats page 0's */
      bidx = parts_of(bad, len, &bn);
      nub_cap_view dv, pv;
      nub_cap_error de, pe;
      int rc = nub_cap_decode(bad, bad + len, &dv, &de);
      assert_int_equal(rc, CAP_ERR_ORDER);
      assert_int_equal(nub_cap_decode_data_parts(bad, len, bidx, &pv, &pe), rc);
      assert_int_equal(pe.offset, de.offset);
      assert_string_equal(pe.msg, de.msg);
      free(bidx);
      free(bad);
    }
    free(loads);
    free(idx);
    free(wire);
    free(bytes);
  }
  /* parts that are no Data with pages, and a loaded hash of no Data */
  uint8_t head[13] = {2}, idx[4] = {0};
  nub_cap_view v;
  nub_cap_error err;
  uint8_t out[32];
  assert_int_equal(nub_cap_decode_data_parts(head, 13, idx, &v, &err), CAP_ERR_ARG);
  assert_int_equal(nub_cap_decode_data_parts(head, 13 + 4100 + 1, idx, &v, &err), CAP_ERR_ARG);
  assert_int_equal(nub_cap_decode_data_parts(NULL, 13 + 4100, idx, &v, &err), CAP_ERR_ARG);
  memset(&v, 0, sizeof v);
  v.kind = CAP_CNODE;
  assert_int_equal(nub_cap_hash_data_loaded(&v, NULL, log_loader, NULL, out, &err), CAP_ERR_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_copy_hook_stores_records_and_images),
    cmocka_unit_test(test_put_find_idempotent),
    cmocka_unit_test(test_put_rejects_bad_caps),
    cmocka_unit_test(test_growth),
    cmocka_unit_test(test_region_full_and_bad_allocator),
    cmocka_unit_test(test_position_independent),
    cmocka_unit_test(test_corrupted_regions),
    cmocka_unit_test(test_random_damage),
    cmocka_unit_test(test_stored_once_records_are_checked),
    cmocka_unit_test(test_stored_once_decodes_like_the_wire),
    cmocka_unit_test(test_hash_helper_gives_the_same_hash),
    cmocka_unit_test(test_loaded_hash_is_the_view_hash_and_refuses_as_decode),
    cmocka_unit_test(test_writer_races_readers),
    cmocka_unit_test(test_put_hashed),
    cmocka_unit_test(test_store_pages_hook_checks_the_pages_of_hashed_puts),
    cmocka_unit_test(test_put_placed_takes_an_image_already_in_the_region),
    cmocka_unit_test(test_reads_are_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
