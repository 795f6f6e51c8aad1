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
      free(wire);
    }
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
    cmocka_unit_test(a_data_cap_is_held_once_and_a_full_heap_refuses_it),
    cmocka_unit_test(the_sandboxed_guest_stores_through_its_memfd),
    cmocka_unit_test(the_guest_hashes_large_caps_on_two_threads_to_the_same_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
