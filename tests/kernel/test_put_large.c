/*
** Publication through the heap memfd (src/guest/nk_caps.c): a kernel
** whose heap is a file stores each Data cap once, its pages by pwritev
** into the page image (docs/wire.md, "Stored once"), and what it stores
** must be what memcpy stored: the wire read back from the directory, the
** page image and its runs, the hash.  Data caps of
** every shape that changes the copy: one page, sparse pages, more pages
** than one pwritev takes (64), a cap below the pwritev threshold, an
** empty one; a kernel without a file and one whose file refuses writes
** (memcpy throughout) give the same results, as does one that populates
** the pages of copies from 64 KiB (MADV_POPULATE_WRITE) and fills them by
** memcpy.  Then the same shapes over the proc backend, where the guest's
** seccomp filter and RLIMIT_FSIZE must let the writes and the madvise
** calls through (a refused call kills the guest).
*/
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/nk_internal.h"
#include "nub/nub.h"
#include "testutil.h"

#define HEAP (64u << 20)
#define IO (8u << 20)

/* A Data cap of `size` bytes whose pages in `present` (a bitmask over
** the first 64 pages, or all pages when 0 and dense) hold distinct bytes. */
typedef struct shape {
  const char *name;
  uint32_t pages;            /* Data size in pages */
  uint64_t present;          /* bit i: page i is non-zero (pages <= 64) */
  bool dense;                /* every page non-zero */
} shape;

static const shape shapes[] = {
  {"one page", 1, 1, false},
  {"two pages", 2, 3, false},
  {"sparse: pages 0, 2, 5 of 8 (three runs)", 8, 0x25, false},
  {"empty: 16 zero pages", 16, 0, false},
  {"64 pages: one full pwritev", 64, 0, true},
  {"257 pages: five pwritev calls, the last of one page", 257, 0, true},
  {"65 pages: a second pwritev of one page", 65, 0, true},
  {"4 MiB", 1024, 0, true},
};

static uint8_t *make_data(const shape *s, uint32_t seed, size_t *len, uint32_t *npresent) {
  size_t size = (size_t)s->pages * 4096;
  uint8_t *bytes = calloc(1, size), *wire = NULL;
  assert_non_null(bytes);
  *npresent = 0;
  for (uint32_t p = 0; p < s->pages; p++) {
    if (!s->dense && !(p < 64 && (s->present >> p) & 1)) continue;
    for (size_t i = 0; i < 4096; i++) bytes[(size_t)p * 4096 + i] = (uint8_t)(p * 31 + i * 7 + seed + 1);
    bytes[(size_t)p * 4096] = 1;    /* never an all-zero page */
    (*npresent)++;
  }
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, len, NULL), CAP_OK);
  free(bytes);
  return wire;
}

/* A kernel on a memfd heap; fd_mode 0: no file (memcpy), 1: the memfd
** (pwritev), 2: a read-only descriptor of it (pwritev fails: memcpy), 3:
** the memfd with populating on (copies from 64 KiB into pages populated
** first, smaller ones by pwritev).  Modes 1 and 2 never populate, as on
** Linux < 5.14. */
typedef struct kern {
  nk_kernel *k;
  void *heap;
  int fd, ro_fd;
  uint8_t *in, *out;
} kern;

static void kern_open(kern *t, int fd_mode) {
  char err[200], path[64];
  memset(t, 0, sizeof *t);
  t->fd = memfd_create("test-heap", 0);
  t->ro_fd = -1;
  assert_true(t->fd >= 0 && !ftruncate(t->fd, HEAP));
  t->heap = mmap(NULL, HEAP, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
  assert_true(t->heap != MAP_FAILED);
  nk_config cfg = {t->heap, HEAP, nk_engine_by_name("interp"), 0};
  if (nk_create(&cfg, &t->k, err, sizeof err)) fail_msg("nk_create: %s", err);
  if (fd_mode == 2) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", t->fd);
    t->ro_fd = open(path, O_RDONLY);
    assert_true(t->ro_fd >= 0);
  }
  if (fd_mode && nk_use_heap_fd(t->k, fd_mode == 2 ? t->ro_fd : t->fd, 0, err, sizeof err))
    fail_msg("nk_use_heap_fd: %s", err);
  nk_populate_off(t->k, fd_mode == 1 || fd_mode == 2);
  t->in = malloc(IO);
  t->out = malloc(IO);
  assert_true(t->in && t->out);
}

static void kern_close(kern *t) {
  nk_destroy(t->k);
  munmap(t->heap, HEAP);
  close(t->fd);
  if (t->ro_fd >= 0) close(t->ro_fd);
  free(t->in);
  free(t->out);
}

/* PUT_CAP through nk_serve; the reply must be the 32-byte hash. */
static void kern_put(kern *t, const uint8_t *wire, size_t len, uint8_t hash[32]) {
  nub_request_header q = {NUB_REQUEST_MAGIC, NUB_FN_PUT_CAP, len};
  nub_response_header r;
  memcpy(t->in, &q, sizeof q);
  memcpy(t->in + sizeof q, wire, len);
  size_t n = nk_serve(t->k, t->in, IO, t->out, IO);
  memcpy(&r, t->out, sizeof r);
  assert_int_equal(n, sizeof r + 32);
  assert_int_equal(r.status, NUB_RPC_OK);
  assert_int_equal(r.len, 32);
  memcpy(hash, t->out + sizeof r, 32);
}

/* REPUBLISH of one record through nk_serve, the host's hash with it: the
** reply's status, and its text (a NUL-terminated copy) when not OK. */
static uint32_t kern_republish(kern *t, const uint8_t *wire, size_t len, const uint8_t hash[32],
                               char *text, size_t text_cap) {
  nub_republish_header hd = {1, 0};
  nub_republish_record rec;
  nub_request_header q = {NUB_REQUEST_MAGIC, NUB_FN_REPUBLISH, sizeof hd + sizeof rec + len};
  nub_response_header r;
  memcpy(rec.hash, hash, 32);
  rec.len = len;
  memcpy(t->in, &q, sizeof q);
  memcpy(t->in + sizeof q, &hd, sizeof hd);
  memcpy(t->in + sizeof q + sizeof hd, &rec, sizeof rec);
  memcpy(t->in + sizeof q + sizeof hd + sizeof rec, wire, len);
  size_t n = nk_serve(t->k, t->in, IO, t->out, IO);
  memcpy(&r, t->out, sizeof r);
  assert_int_equal(n, sizeof r + r.len);
  if (r.status == NUB_RPC_OK) {
    nub_republish_reply rr;
    assert_int_equal(r.len, sizeof rr);
    memcpy(&rr, t->out + sizeof r, sizeof rr);
    assert_int_equal(rr.stored, 1);
  } else {
    size_t m = r.len < text_cap - 1 ? r.len : text_cap - 1;
    memcpy(text, t->out + sizeof r, m);
    text[m] = 0;
  }
  return r.status;
}

/* What the kernel holds for a published Data cap: the exact wire under
** its hash, and a page image with the pages in wire order and their runs. */
static void check_stored(const kern *t, const uint8_t *wire, size_t len, const uint8_t hash[32]) {
  nub_cap_dir_entry e;
  nub_cap_view v;
  uint8_t want[32];
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, want, NULL), CAP_OK);
  assert_memory_equal(hash, want, 32);
  assert_int_equal(nub_cap_dir_find(&t->k->dir, hash, &e, NULL), CAP_OK);
  assert_int_equal(e.len, len);
  uint8_t *back = malloc(len);
  assert_non_null(back);
  nub_cap_dir_entry_copy(&e, back);
  assert_memory_equal(back, wire, len);
  free(back);
  const nub_cap_view *kept = nk_caps_find(t->k, hash, NULL);
  assert_non_null(kept);
  assert_int_equal(nub_cap_decode(wire, wire + len, &v, NULL), CAP_OK);
  const nub_cap_data_view *d = &kept->data;
  assert_int_equal(d->page_count, v.data.page_count);
  if (!d->page_count) {
    assert_null(d->image);
    return;
  }
  assert_non_null(d->image);
  assert_int_equal((uintptr_t)d->image % 4096, 0);
  uint32_t i = 0;
  for (uint32_t r = 0; r < d->run_count; r++)
    for (uint32_t c = 0; c < d->runs[2 * r + 1]; c++, i++) {
      assert_true(i < d->page_count);
      nub_cap_page pg = nub_cap_data_page(&v.data, i);
      assert_int_equal(d->runs[2 * r] + c, pg.index);
      assert_memory_equal(d->image + (size_t)i * 4096, pg.bytes, 4096);
    }
  assert_int_equal(i, d->page_count);
}

/* MADV_POPULATE_WRITE works here (Linux >= 5.14): the kernel populates. */
static bool can_populate(void) {
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(p != MAP_FAILED);
  bool ok = !madvise(p, 4096, 23 /* MADV_POPULATE_WRITE */);
  munmap(p, 4096);
  return ok;
}

static void each_shape_stores_the_same_through_the_heap_file(void **state) {
  (void)state;
  const char *modes[] = {"no file: memcpy, populated from 64 KiB", "memfd: pwritev", "read-only fd: pwritev fails, memcpy",
                         "memfd, populating"};
  const bool populates = can_populate();
  print_message("    MADV_POPULATE_WRITE %s\n", populates ? "works" : "is refused: no populating");
  for (int mode = 0; mode < 4; mode++) {
    kern t;
    kern_open(&t, mode);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      size_t len;
      uint32_t present;
      uint8_t *wire = make_data(&shapes[i], (uint32_t)(mode * 16 + i), &len, &present), h[32];
      for (int again = 0; again < 2; again++) {   /* again: copied once more, found, given back */
        uint64_t before = nk_caps_bytes_through_fd(t.k), pop = nk_caps_bytes_populated(t.k);
        kern_put(&t, wire, len, h);
        check_stored(&t, wire, len, h);
        uint64_t through = nk_caps_bytes_through_fd(t.k) - before;
        pop = nk_caps_bytes_populated(t.k) - pop;
        /* a Data cap with pages is stored once: its pages go into the
        ** page image, nothing else; an empty one is a record */
        uint64_t copied = present ? (uint64_t)present * 4096 : len;
        bool populated = populates && (mode == 0 || mode == 3) && copied >= 64 * 1024;
        uint64_t want = populated || (mode != 1 && mode != 3) || copied < 4096 ? 0 : copied;
        if (!again)
          print_message("    %-38s %-52s %8zu-byte wire, %9llu bytes by pwritev, %9llu "
                        "populated\n", modes[mode], shapes[i].name, len,
                        (unsigned long long)through, (unsigned long long)pop);
        assert_int_equal(through, want);
        assert_int_equal(pop, populated ? copied : 0);
      }
      /* the same cap once more, as the host publishes it (REPUBLISH, its
      ** hash): a page image goes through the file whenever it takes it,
      ** never populated, and reads back the same (an empty Data: found) */
      if (present) wire[len - 1] ^= 0x5A;
      uint64_t before = nk_caps_bytes_through_fd(t.k), pop = nk_caps_bytes_populated(t.k);
      char text[400];
      assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
      if (kern_republish(&t, wire, len, h, text, sizeof text) != NUB_RPC_OK)
        fail_msg("%s: republish: %s", shapes[i].name, text);
      check_stored(&t, wire, len, h);
      uint64_t through = nk_caps_bytes_through_fd(t.k) - before;
      uint64_t copied = present ? (uint64_t)present * 4096 : len;
      bool by_file = (mode == 1 || mode == 3) && present;   /* an empty Data: 13 bytes */
      assert_int_equal(through, by_file ? copied : 0);
      if (present) assert_int_equal(nk_caps_bytes_populated(t.k) - pop, 0);
      free(wire);
    }
    kern_close(&t);
  }
}

/* A Data cap with an all-zero page (or a page out of order) in a
** REPUBLISH record: the kernel checks the pages it stored through its
** file by reading them back (pread), or in memory where the file took
** none, and refuses the record with nub_cap_decode's own error for the
** wire (the first bad page by position, whichever check it fails), and
** gives back the heap it took; in every mode alike. */
static void a_republished_zero_page_is_refused_as_decode_refuses_it(void **state) {
  (void)state;
  static const shape dense = {"300 pages", 300, 0, true};
  static const struct { const char *name; uint32_t zero, swap; } cases[] = {
    {"page 0 all zero", 0, UINT32_MAX},
    {"page 17 all zero", 17, UINT32_MAX},
    {"page 299 (the last) all zero", 299, UINT32_MAX},
    {"page 64 zero (the second pwritev's first), pages 100 and 101 swapped", 64, 100},
    {"pages 3 and 4 swapped, page 200 zero", 200, 3},
  };
  for (int mode = 0; mode < 4; mode++) {
    kern t;
    kern_open(&t, mode);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      size_t len;
      uint32_t present;
      uint8_t *wire = make_data(&dense, (uint32_t)(c + 40 * mode), &len, &present), h[32] = {1};
      tu_data_zero_page(wire, cases[c].zero);
      if (cases[c].swap != UINT32_MAX) tu_data_swap_indexes(wire, cases[c].swap);
      nub_cap_view v;
      nub_cap_error want;
      assert_int_not_equal(nub_cap_decode(wire, wire + len, &v, &want), CAP_OK);
      struct nub_heap_stats before, after;
      char text[400];
      nk_heap_stats(t.k->heap, &before);
      assert_int_equal(kern_republish(&t, wire, len, h, text, sizeof text), NUB_RPC_INTERNAL);
      nk_heap_stats(t.k->heap, &after);
      if (!strstr(text, want.msg)) fail_msg("mode %d, %s: \"%s\" lacks \"%s\"", mode, cases[c].name, text, want.msg);
      if (!mode) print_message("    %-66s %s\n", cases[c].name, want.msg);
      assert_int_equal(after.allocated_bytes, before.allocated_bytes);
      assert_int_equal(after.allocation_count, before.allocation_count);
      free(wire);
    }
    kern_close(&t);
  }
}

/* One frame through nk_serve: the status; the reply (or error text,
** NUL-terminated) into reply. */
static uint32_t kern_rpc(kern *t, uint32_t fn, const void *payload, size_t len, void *reply,
                         size_t reply_cap, size_t *got) {
  nub_request_header q = {NUB_REQUEST_MAGIC, fn, len};
  nub_response_header r;
  memcpy(t->in, &q, sizeof q);
  memcpy(t->in + sizeof q, payload, len);
  size_t n = nk_serve(t->k, t->in, IO, t->out, IO);
  memcpy(&r, t->out, sizeof r);
  assert_int_equal(n, sizeof r + r.len);
  size_t m = r.len < reply_cap - 1 ? r.len : reply_cap - 1;
  memcpy(reply, t->out + sizeof r, m);
  if (r.status != NUB_RPC_OK) ((char *)reply)[m] = 0;
  *got = r.len;
  return r.status;
}

/* PAGES_COMMIT's payload for wire (hash h), with its indexes. */
static uint8_t *commit_frame(const uint8_t *wire, size_t len, const uint8_t h[32], size_t *flen) {
  size_t n = (len - 13) / 4100;
  nub_pages_commit c;
  uint8_t *f = malloc(sizeof c + 4 * n);
  assert_non_null(f);
  memset(&c, 0, sizeof c);
  memcpy(c.hash, h, 32);
  c.len = len;
  memcpy(c.head, wire, 13);
  memcpy(f, &c, sizeof c);
  for (size_t i = 0; i < n; i++) memcpy(f + sizeof c + 4 * i, wire + 13 + i * 4100, 4);
  *flen = sizeof c + 4 * n;
  return f;
}

/* The host's side of PAGES_RESERVE: the block, then the pages written
** into it (through the file when the kernel has one, else into memory). */
static uint32_t reserve_and_write(kern *t, int mode, const uint8_t *wire, size_t len,
                                  uint32_t runs, char *text, size_t text_cap) {
  uint32_t n = (uint32_t)((len - 13) / 4100);
  nub_pages_reserve q = {n, runs};
  nub_pages_reserved r;
  size_t got;
  uint8_t reply[400];
  uint32_t st = kern_rpc(t, NUB_FN_PAGES_RESERVE, &q, sizeof q, reply, sizeof reply, &got);
  if (st != NUB_RPC_OK) {
    snprintf(text, text_cap, "%s", (char *)reply);
    return st;
  }
  assert_int_equal(got, sizeof r);
  memcpy(&r, reply, sizeof r);
  assert_int_equal(r.heap_offset % 4096, 0);
  assert_int_equal(r.size, (uint64_t)n * 4096 + (uint64_t)runs * 8);
  assert_true(r.heap_offset + r.size <= HEAP);
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *page = wire + 13 + (size_t)i * 4100 + 4;
    if (mode == 1 || mode == 3)
      assert_int_equal(pwrite(t->fd, page, 4096, (off_t)(r.heap_offset + (uint64_t)i * 4096)), 4096);
    else
      memcpy((uint8_t *)t->heap + r.heap_offset + (size_t)i * 4096, page, 4096);
  }
  return NUB_RPC_OK;
}

/* PAGES_RESERVE + PAGES_COMMIT (docs/abi.md): the host writes a Data
** cap's pages into the block the kernel reserved, then commits the head,
** indexes and hash; the kernel checks the pages it holds (by pread when
** it has a file) and stores the cap as REPUBLISH would.  Every way it can
** go wrong leaves the heap as it was: a zero page, an index out of order,
** fewer runs reserved than the indexes make, a length or frame of the
** wrong size, reserved bytes set, a commit without a reservation, a
** duplicate; a new reservation, or a PUT_CAP, gives the last one back. */
static void reserved_pages_are_committed_and_checked(void **state) {
  (void)state;
  static const shape sparse = {"sparse: pages 0, 2, 5 of 8 (three runs)", 8, 0x25, false};
  static const shape dense = {"300 pages", 300, 0, true};
  for (int mode = 0; mode < 4; mode++) {
    kern t;
    kern_open(&t, mode);
    char text[400];
    uint8_t reply[400], h[32];
    size_t got, len, flen;
    uint32_t present;
    struct nub_heap_stats before, after;
    /* the good ones, then each again (found: the image given back) */
    const shape *good[] = {&sparse, &dense};
    for (size_t g = 0; g < 2; g++) {
      uint8_t *wire = make_data(good[g], (uint32_t)(200 + mode * 8 + g), &len, &present);
      uint32_t runs = g == 0 ? 3 : 1;
      assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
      uint8_t *f = commit_frame(wire, len, h, &flen);
      for (int again = 0; again < 2; again++) {
        nk_heap_stats(t.k->heap, &before);
        assert_int_equal(reserve_and_write(&t, mode, wire, len, runs, text, sizeof text), NUB_RPC_OK);
        assert_int_equal(kern_rpc(&t, NUB_FN_PAGES_COMMIT, f, flen, reply, sizeof reply, &got), NUB_RPC_OK);
        nub_republish_reply rr;
        memcpy(&rr, reply, sizeof rr);
        assert_int_equal(rr.stored, 1);
        assert_int_equal(rr.inserted, again ? 0 : 1);
        check_stored(&t, wire, len, h);
        nk_heap_stats(t.k->heap, &after);
        if (again) assert_int_equal(after.allocated_bytes, before.allocated_bytes);
      }
      /* nothing reserved now */
      assert_int_equal(kern_rpc(&t, NUB_FN_PAGES_COMMIT, f, flen, reply, sizeof reply, &got),
                       NUB_RPC_BAD_PAYLOAD);
      assert_non_null(strstr((char *)reply, "no pages reserved"));
      free(f);
      free(wire);
    }
    /* what goes wrong */
    uint8_t *wire = make_data(&dense, (uint32_t)(300 + mode), &len, &present);
    assert_int_equal(nub_cap_hash_wire(wire, wire + len, h, NULL), CAP_OK);
    struct { const char *what; uint32_t zero, swap, runs; int frame; uint32_t status; const char *msg; } bad[] = {
      {"page 150 written all zero", 150, UINT32_MAX, 1, 0, NUB_RPC_INTERNAL, "data.pages[150] (page 150) is all zero"},
      {"pages 7 and 8 swapped", UINT32_MAX, 7, 4, 0, NUB_RPC_INTERNAL, "data.pages[8].index 7 is below page 8"},
      {"one run reserved, four made", UINT32_MAX, 7, 1, 0, NUB_RPC_INTERNAL, "300 pages in 4 runs need"},
      {"a length one page short", UINT32_MAX, UINT32_MAX, 1, 1, NUB_RPC_BAD_PAYLOAD, "for 300 reserved pages"},
      {"an index short", UINT32_MAX, UINT32_MAX, 1, 2, NUB_RPC_BAD_PAYLOAD, "for 300 reserved pages"},
      {"reserved bytes set", UINT32_MAX, UINT32_MAX, 1, 3, NUB_RPC_BAD_PAYLOAD, "reserved bytes are not zero"},
      {"a frame shorter than its header", UINT32_MAX, UINT32_MAX, 1, 4, NUB_RPC_BAD_PAYLOAD, "has no 56-byte header"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
      uint8_t *w = malloc(len);
      memcpy(w, wire, len);
      if (bad[b].zero != UINT32_MAX) tu_data_zero_page(w, bad[b].zero);
      if (bad[b].swap != UINT32_MAX) tu_data_swap_indexes(w, bad[b].swap);
      uint8_t *f = commit_frame(w, len, h, &flen);
      if (bad[b].frame == 1) {
        uint64_t shorter = len - 4100;
        memcpy(f + 32, &shorter, 8);
      }
      if (bad[b].frame == 2) flen -= 4;
      if (bad[b].frame == 3) f[55] = 1;
      if (bad[b].frame == 4) flen = 40;
      nk_heap_stats(t.k->heap, &before);
      assert_int_equal(reserve_and_write(&t, mode, w, len, bad[b].runs, text, sizeof text), NUB_RPC_OK);
      uint32_t st = kern_rpc(&t, NUB_FN_PAGES_COMMIT, f, flen, reply, sizeof reply, &got);
      nk_heap_stats(t.k->heap, &after);
      if (!mode) print_message("    %-32s %s\n", bad[b].what, (char *)reply);
      assert_int_equal(st, bad[b].status);
      if (!strstr((char *)reply, bad[b].msg)) fail_msg("%s: '%s' lacks '%s'", bad[b].what, (char *)reply, bad[b].msg);
      assert_int_equal(after.allocated_bytes, before.allocated_bytes);
      assert_int_equal(after.allocation_count, before.allocation_count);
      assert_true(nk_heap_check(t.k->heap));
      free(f);
      free(w);
    }
    /* reservations that cannot be, and ones given back */
    struct { const char *what; uint32_t words[2]; size_t len; uint32_t status; const char *msg; } res[] = {
      {"4-byte payload", {1, 1}, 4, NUB_RPC_BAD_PAYLOAD, "4-byte payload, expected 8"},
      {"no pages", {0, 0}, 8, NUB_RPC_BAD_PAYLOAD, "0 pages in 0 runs"},
      {"more runs than pages", {2, 3}, 8, NUB_RPC_BAD_PAYLOAD, "2 pages in 3 runs"},
      {"2^20 + 1 pages", {(1u << 20) + 1, 1}, 8, NUB_RPC_BAD_PAYLOAD, "1048577 pages"},
      {"4 GiB in a 64 MiB heap", {1u << 20, 1}, 8, NUB_RPC_NO_MEMORY, "the heap has no 4294967304 bytes"},
    };
    for (size_t r = 0; r < sizeof res / sizeof res[0]; r++) {
      nk_heap_stats(t.k->heap, &before);
      uint32_t st = kern_rpc(&t, NUB_FN_PAGES_RESERVE, res[r].words, res[r].len, reply, sizeof reply, &got);
      nk_heap_stats(t.k->heap, &after);
      if (!mode) print_message("    reserve, %-22s %s\n", res[r].what, (char *)reply);
      assert_int_equal(st, res[r].status);
      if (!strstr((char *)reply, res[r].msg)) fail_msg("%s: '%s' lacks '%s'", res[r].what, (char *)reply, res[r].msg);
      assert_int_equal(after.allocated_bytes, before.allocated_bytes);
    }
    nk_heap_stats(t.k->heap, &before);
    assert_int_equal(reserve_and_write(&t, mode, wire, len, 1, text, sizeof text), NUB_RPC_OK);
    assert_int_equal(reserve_and_write(&t, mode, wire, len, 1, text, sizeof text), NUB_RPC_OK);
    nk_heap_stats(t.k->heap, &after);
    assert_int_equal(after.allocation_count, before.allocation_count + 1);   /* the first given back */
    uint8_t small[32];
    size_t slen;
    uint8_t *sw = make_data(&(shape){"one page", 1, 1, false}, 77, &slen, &present);
    assert_int_equal(kern_rpc(&t, NUB_FN_PUT_CAP, sw, slen, small, sizeof small, &got), NUB_RPC_OK);
    nk_heap_stats(t.k->heap, &after);                                        /* PUT_CAP: given back */
    assert_true(after.allocated_bytes < before.allocated_bytes + 300 * 4096);
    free(sw);
    kern_close(&t);
    /* a fresh kernel has no view table: when it cannot be made, the commit
    ** is NO_MEMORY (not a failed kernel) and gives the block back */
    kern_open(&t, mode);
    uint8_t *f = commit_frame(wire, len, h, &flen);
    nk_heap_stats(t.k->heap, &before);
    assert_int_equal(reserve_and_write(&t, mode, wire, len, 1, text, sizeof text), NUB_RPC_OK);
    nk_fail_allocation(1);
    uint32_t st = kern_rpc(&t, NUB_FN_PAGES_COMMIT, f, flen, reply, sizeof reply, &got);
    nk_fail_allocation(0);
    nk_heap_stats(t.k->heap, &after);
    if (!mode) print_message("    commit, no view table          %s\n", (char *)reply);
    assert_int_equal(st, NUB_RPC_NO_MEMORY);
    assert_non_null(strstr((char *)reply, "out of memory for one more view"));
    assert_int_equal(after.allocated_bytes, before.allocated_bytes);
    assert_int_equal(reserve_and_write(&t, mode, wire, len, 1, text, sizeof text), NUB_RPC_OK);
    assert_int_equal(kern_rpc(&t, NUB_FN_PAGES_COMMIT, f, flen, reply, sizeof reply, &got), NUB_RPC_OK);
    check_stored(&t, wire, len, h);
    free(f);
    free(wire);
    kern_close(&t);
  }
}

/* A Data cap is held once in the heap (its page image, page aligned
** without padding, and a record of 4 bytes per page): 4 MiB caps fill the 64 MiB heap
** about 15 deep, not 7.  The put that no longer fits is refused with the
** no-memory class and the allocation named, gives back what it took
** (heap statistics and blocks as before it), and every cap before it
** still reads back exactly; a smaller cap still goes in. */
static void a_data_cap_is_held_once_and_a_full_heap_refuses_it(void **state) {
  (void)state;
  static const shape four_mib = {"4 MiB", 1024, 0, true};
  static const shape one_page = {"one page", 1, 1, false};
  enum { MAX_CAPS = 32 };
  kern t;
  uint8_t *wires[MAX_CAPS], h[32], hashes[MAX_CAPS][32];
  size_t lens[MAX_CAPS], len;
  uint32_t present, stored = 0;
  kern_open(&t, 3);
  for (;; stored++) {
    struct nub_heap_stats before, after;
    assert_true(stored < MAX_CAPS);
    wires[stored] = make_data(&four_mib, stored, &lens[stored], &present);
    nk_heap_stats(t.k->heap, &before);
    nub_request_header q = {NUB_REQUEST_MAGIC, NUB_FN_PUT_CAP, lens[stored]};
    nub_response_header r;
    memcpy(t.in, &q, sizeof q);
    memcpy(t.in + sizeof q, wires[stored], lens[stored]);
    size_t n = nk_serve(t.k, t.in, IO, t.out, IO);
    memcpy(&r, t.out, sizeof r);
    assert_int_equal(r.status, NUB_RPC_OK);
    nk_heap_stats(t.k->heap, &after);
    if (r.len == 32) {                       /* stored: the cap once, and little more */
      memcpy(hashes[stored], t.out + sizeof r, 32);
      /* the page image (4 MiB and 8 bytes of runs: no padding), its
      ** record (40 + 4 x 1024 bytes) and their block headers */
      assert_true(after.allocated_bytes - before.allocated_bytes <= 4096 * 1024 + 8 + 40 + 4096 + 64);
      continue;
    }
    uint32_t reason;
    assert_true(n > sizeof r + 36);
    assert_memory_equal(t.out + sizeof r, nub_cap_sentinel_hash, 32);
    memcpy(&reason, t.out + sizeof r + 32, 4);
    assert_int_equal(reason, NUB_PUT_CAP_NO_MEMORY);
    char text[NUB_PUT_CAP_REASON_MAX + 1] = {0};
    memcpy(text, t.out + sizeof r + 36, r.len - 36);
    print_message("    %u caps of 4 MiB stored in a 64 MiB heap; the next: %s\n", stored, text);
    assert_non_null(strstr(text, "allocator has no"));
    assert_int_equal(after.allocated_bytes, before.allocated_bytes);
    assert_int_equal(after.allocation_count, before.allocation_count);
    assert_true(nk_heap_check(t.k->heap));
    free(wires[stored]);
    break;
  }
  assert_true(stored >= 14);                 /* held twice, 7 would fit */
  for (uint32_t i = 0; i < stored; i++) {
    check_stored(&t, wires[i], lens[i], hashes[i]);
    free(wires[i]);
  }
  uint8_t *small = make_data(&one_page, 7, &len, &present);
  kern_put(&t, small, len, h);
  check_stored(&t, small, len, h);
  free(small);
  kern_close(&t);
}

/* Over proc: the guest stores through fd 0 under its seccomp filter and
** RLIMIT_FSIZE; caps put raw (the host keeps no copy) are read back from
** the guest's directory, hash-checked, and the guest never restarted. */
static void the_sandboxed_guest_stores_through_its_memfd(void **state) {
  (void)state;
  static char guest[4096];
  nub_options o;
  nub_options_init(&o);
  snprintf(guest, sizeof guest, "%s/nub-guest", getenv("NUB_BINARY_DIR"));
  o.guest_path = guest;
  o.backend = NUB_BACKEND_PROC;
  o.heap_size = HEAP;
  o.io_size = IO;
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("open: %s", err.msg);
  uint8_t *back = malloc(IO);
  assert_non_null(back);
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    size_t len, got, blen;
    uint32_t present;
    uint8_t *wire = make_data(&shapes[i], 100 + (uint32_t)i, &len, &present), h[32], want[32];
    assert_int_equal(nub_cap_hash_wire(wire, wire + len, want, NULL), CAP_OK);
    if (nub_call_raw(n, NUB_FN_PUT_CAP, wire, len, h, sizeof h, &got, &err))
      fail_msg("%s: %s", shapes[i].name, err.msg);
    assert_int_equal(got, 32);
    assert_memory_equal(h, want, 32);
    if (nub_lookup(n, h, back, IO, &blen, &err)) fail_msg("lookup %s: %s", shapes[i].name, err.msg);
    assert_int_equal(blen, len);
    assert_memory_equal(back, wire, len);
    /* another cap of the shape through the host's record, as applications publish */
    if (present) {
      wire[len - 1] ^= 0x5A;
      if (nub_put_cap(n, wire, len, h, &err)) fail_msg("put %s: %s", shapes[i].name, err.msg);
    }
    free(wire);
  }
  struct nub_sandbox_report r;
  assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
  assert_int_equal(r.restarts, 0);
  free(back);
  nub_close(n);
}

/* nub-guest hashes a Data cap of 4096 pages or more on two threads
** (guest_main.c, the hasher): the guest's hash of such caps, dense and
** with every page in one half of the index space, is the host's
** one-thread hash (put raw and compared here; nub_put_cap compares it
** itself), and the guest never restarts. */
static void the_guest_hashes_large_caps_on_two_threads_to_the_same_hash(void **state) {
  (void)state;
  static char guest[4096];
  static const struct { const char *name; uint32_t npages, first, count; } caps[] = {
    {"16 MiB dense", 4096, 0, 4096},
    {"64 MiB, pages in the right half", 16384, 9000, 4200},
    {"64 MiB, pages in the left half", 16384, 100, 4200},
    {"20 MiB dense (not a power of two)", 5120, 0, 5120},
  };
  nub_options o;
  nub_options_init(&o);
  snprintf(guest, sizeof guest, "%s/nub-guest", getenv("NUB_BINARY_DIR"));
  o.guest_path = guest;
  o.backend = NUB_BACKEND_PROC;
  o.heap_size = 256u << 20;
  o.io_size = 24u << 20;
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("open: %s", err.msg);
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    size_t size = (size_t)caps[i].npages * 4096, len, got;
    uint8_t *bytes = calloc(1, size), *wire, want[32], h[32];
    assert_non_null(bytes);
    for (uint32_t p = caps[i].first; p < caps[i].first + caps[i].count; p++)
      for (size_t b = 0; b < 4096; b += 512) bytes[(size_t)p * 4096 + b] = (uint8_t)(p + b / 512 + i + 1);
    assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL), CAP_OK);
    assert_int_equal(nub_cap_hash_wire(wire, wire + len, want, NULL), CAP_OK);
    if (nub_call_raw(n, NUB_FN_PUT_CAP, wire, len, h, sizeof h, &got, &err))
      fail_msg("%s: %s", caps[i].name, err.msg);
    assert_int_equal(got, 32);
    assert_memory_equal(h, want, 32);
    wire[len - 1] ^= 0x5A;                     /* another cap, through the host's check */
    if (nub_put_cap(n, wire, len, h, &err)) fail_msg("put %s: %s", caps[i].name, err.msg);
    print_message("    %-36s %zu-byte wire: the guest's hash is the host's\n", caps[i].name, len);
    free(wire);
    free(bytes);
  }
  struct nub_sandbox_report r;
  assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
  assert_int_equal(r.restarts, 0);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(each_shape_stores_the_same_through_the_heap_file),
    cmocka_unit_test(a_republished_zero_page_is_refused_as_decode_refuses_it),
    cmocka_unit_test(reserved_pages_are_committed_and_checked),
    cmocka_unit_test(a_data_cap_is_held_once_and_a_full_heap_refuses_it),
    cmocka_unit_test(the_sandboxed_guest_stores_through_its_memfd),
    cmocka_unit_test(the_guest_hashes_large_caps_on_two_threads_to_the_same_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
