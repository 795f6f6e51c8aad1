/*
** Memory set-up by work counted, not time: page images in the directory,
** copy-on-write placement from a memfd region (system calls per mapping
** and per run of Data pages), the copy fallback without a backing, one
** mprotect per read-only mapping, and the runs limit.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "nub/cap.h"

#define PAGE 4096u
#define REGION (64u << 20)
#define MAX_CAPS 64

typedef struct fixture {
  int fd;
  uint8_t *region;
  nub_cap_bump bump;
  nub_cap_alloc alloc;
  nub_cap_dir dir;
  nub_cap_view views[MAX_CAPS];   /* by directory ordinal */
  nub_pvm_mem *mem;
} fixture;

static fixture *open_fixture(size_t region, bool page_images) {
  fixture *f = calloc(1, sizeof *f);
  nub_cap_error err;
  f->fd = memfd_create("test-cap-memory", MFD_CLOEXEC);
  assert_true(f->fd >= 0);
  assert_int_equal(ftruncate(f->fd, (off_t)region), 0);
  f->region = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
  assert_true(f->region != MAP_FAILED);
  nub_cap_bump_init(&f->bump, f->region, region);
  f->alloc = nub_cap_bump_allocator(&f->bump);
  if (nub_cap_dir_create(&f->dir, f->region, region, &f->alloc, 64, &err)) fail_msg("%s", err.msg);
  f->dir.page_images = page_images;
  assert_int_equal(nub_pvm_mem_new(&f->mem, NULL), PVM_OK);
  return f;
}

static void close_fixture(fixture *f) {
  nub_pvm_mem_free(f->mem);
  munmap(f->region, f->bump.size);
  close(f->fd);
  free(f);
}

static void use_backing(fixture *f) {
  assert_int_equal(nub_pvm_mem_set_backing(f->mem, f->fd, 0, f->region, f->bump.size, NULL), PVM_OK);
}

static const nub_cap_view *lookup(void *ud, const uint8_t hash[CAP_HASH_SIZE]) {
  fixture *f = ud;
  nub_cap_dir_entry e;
  if (nub_cap_dir_find(&f->dir, hash, &e, NULL) || e.ordinal >= MAX_CAPS) return NULL;
  return &f->views[e.ordinal];
}

static const nub_cap_view *put(fixture *f, const uint8_t *wire, size_t len, uint8_t hash[32]) {
  nub_cap_dir_entry e;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  if (nub_cap_dir_put(&f->dir, wire, len, hash, &e, &v, &inserted, &err)) fail_msg("put: %s", err.msg);
  assert_true(e.ordinal < MAX_CAPS);
  if (inserted) f->views[e.ordinal] = v;
  return &f->views[e.ordinal];
}

static uint8_t pattern(unsigned d, unsigned p, unsigned o) {
  return (uint8_t)((d * 31u + p * 7u + o) % 251u + 1u);
}

/* The bytes of Data cap d: npages pages, present[p] non-zero. */
static uint8_t *data_bytes(unsigned d, unsigned npages, const bool *present) {
  uint8_t *b = calloc(npages ? npages : 1, PAGE);
  for (unsigned p = 0; p < npages; p++)
    for (unsigned o = 0; present[p] && o < PAGE; o++) b[p * PAGE + o] = pattern(d, p, o);
  return b;
}

static const nub_cap_view *put_data(fixture *f, unsigned d, unsigned npages, const bool *present,
                                uint8_t hash[32]) {
  uint8_t *b = data_bytes(d, npages, present), *wire;
  size_t len;
  if (nub_cap_encode_data_alloc((uint64_t)npages * PAGE, b, (size_t)npages * PAGE, &wire, &len, NULL))
    fail_msg("encode data");
  const nub_cap_view *v = put(f, wire, len, hash);
  free(wire);
  free(b);
  return v;
}

/* Image (one endpoint, a trap) with these mappings; Instance with overlays. */
static void put_memory(fixture *f, const nub_cap_mapping *maps, uint32_t nmaps,
                       const nub_cap_overlay *ovs, uint32_t novs, const nub_cap_view **image,
                       const nub_cap_view **inst) {
  static const uint8_t blob[] = {0, 0, 1, 0, 1};   /* no jump table, trap, bitmask 1 */
  nub_cap_endpoint ep = {0};
  uint8_t h[32], *wire;
  size_t len;
  nub_cap_spec s;
  memset(&s, 0, sizeof s);
  s.kind = CAP_IMAGE;
  s.image.code = blob;
  s.image.code_len = sizeof blob;
  s.image.endpoints = &ep;
  s.image.endpoint_count = 1;
  s.image.mappings = maps;
  s.image.mapping_count = nmaps;
  if (nub_cap_encode_alloc(&s, &wire, &len, NULL)) fail_msg("encode image");
  *image = put(f, wire, len, h);
  free(wire);
  memset(&s, 0, sizeof s);
  s.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(h, &s.instance);
  s.instance.overlays = ovs;
  s.instance.overlay_count = novs;
  if (nub_cap_encode_alloc(&s, &wire, &len, NULL)) fail_msg("encode instance");
  *inst = put(f, wire, len, h);
  free(wire);
}

static nub_pvm_mem_work build(fixture *f, const nub_cap_view *image, const nub_cap_view *inst) {
  nub_pvm_mem_work before, after;
  nub_cap_error err;
  assert_int_equal(nub_pvm_mem_reset(f->mem, NULL), PVM_OK);
  nub_pvm_mem_get_work(f->mem, &before);
  if (nub_cap_memory_build(f->mem, image, inst, lookup, f, &err)) fail_msg("build: %s", err.msg);
  nub_pvm_mem_get_work(f->mem, &after);
  return (nub_pvm_mem_work){after.mmaps - before.mmaps, after.mprotects - before.mprotects,
                        after.pages_copied - before.pages_copied};
}

static void expect_bytes(fixture *f, uint32_t addr, const uint8_t *want, size_t len) {
  uint8_t *got = malloc(len);
  assert_int_equal(nub_pvm_mem_read(f->mem, addr, got, len, NULL), PVM_OK);
  assert_memory_equal(got, want, len);
  free(got);
}

static nub_cap_mapping mapping(uint32_t start, uint32_t pages, uint8_t access, const uint8_t *src) {
  nub_cap_mapping m = {start, pages * PAGE, access, {0}};
  if (src) memcpy(m.source, src, 32);
  return m;
}

static const bool s_pages[6] = {1, 1, 0, 1, 0, 1};   /* runs (0, 2) (3, 1) (5, 1) */

/* ---- the tests ---- */

static void page_images_are_page_aligned_copies_with_their_runs(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  uint8_t h[32], *want = data_bytes(1, 6, s_pages);
  const nub_cap_view *v = put_data(f, 1, 6, s_pages, h);
  assert_int_equal(v->data.run_count, 3);
  assert_non_null(v->data.image);
  assert_int_equal((uintptr_t)v->data.image % PAGE, 0);
  const uint32_t runs[6] = {0, 2, 3, 1, 5, 1};
  assert_memory_equal(v->data.runs, runs, sizeof runs);
  const unsigned page_of[4] = {0, 1, 3, 5};
  for (unsigned i = 0; i < 4; i++)
    assert_memory_equal(v->data.image + i * PAGE, want + page_of[i] * PAGE, PAGE);
  size_t used = f->bump.used;
  put_data(f, 1, 6, s_pages, h);                            /* the same cap again: nothing new */
  assert_int_equal(f->bump.used, used);
  static const bool none[3] = {0, 0, 0};
  v = put_data(f, 2, 3, none, h);                           /* nothing to image */
  assert_null(v->data.image);
  assert_int_equal(v->data.run_count, 0);
  free(want);
  close_fixture(f);
  f = open_fixture(REGION, false);                          /* a directory without images */
  v = put_data(f, 1, 6, s_pages, h);
  assert_null(v->data.image);
  assert_int_equal(v->data.run_count, 3);
  close_fixture(f);
}

static void a_page_image_that_does_not_fit_leaves_the_directory_as_it_was(void **state) {
  (void)state;
  fixture *f = open_fixture(64u << 10, true);
  static const bool many[15] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  uint8_t *b = data_bytes(3, 15, many), *wire, h[32];
  size_t len;
  uint64_t count, cap, after;
  nub_cap_dir_entry e;
  nub_cap_error err;
  bool inserted;
  assert_int_equal(nub_cap_encode_data_alloc(15 * PAGE, b, 15 * PAGE, &wire, &len, NULL), CAP_OK);
  assert_int_equal(nub_cap_dir_stats(&f->dir, &count, &cap, NULL), CAP_OK);
  size_t used = f->bump.used;
  /* the wire (60 KiB) fits the 64 KiB region; its record does, its page
  ** image (the pages' only copy, page aligned) does not */
  assert_int_equal(nub_cap_dir_put(&f->dir, wire, len, h, &e, NULL, &inserted, &err), CAP_ERR_FULL);
  assert_non_null(strstr(err.msg, "page image"));
  assert_int_equal(nub_cap_dir_stats(&f->dir, &after, &cap, NULL), CAP_OK);
  assert_int_equal(after, count);
  assert_int_equal(f->bump.used, used);                      /* both allocations given back */
  put_data(f, 4, 2, s_pages, h);                             /* a smaller one still goes in */
  free(wire);
  free(b);
  close_fixture(f);
}

static void data_runs_are_mapped_copy_on_write_not_copied(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  uint8_t s[32], *want = data_bytes(1, 6, s_pages), zero[4 * PAGE] = {0};
  const nub_cap_view *sv = put_data(f, 1, 6, s_pages, s), *image, *inst;
  nub_cap_mapping m = mapping(0x10000, 10, CAP_ACCESS_RO, s);
  put_memory(f, &m, 1, NULL, 0, &image, &inst);
  use_backing(f);
  nub_pvm_mem_work w = build(f, image, inst);
  assert_int_equal(w.mmaps, 1 + 3);                           /* the mapping, 3 runs */
  assert_int_equal(w.mprotects, 1);                           /* read-only, once */
  assert_int_equal(w.pages_copied, 0);
  expect_bytes(f, 0x10000, want, 6 * PAGE);
  expect_bytes(f, 0x16000, zero, 4 * PAGE);                   /* past the Data */
  for (uint32_t a = 0x10000; a < 0x1A000; a += PAGE)
    assert_int_equal(nub_pvm_mem_access(f->mem, a), PVM_ACCESS_RO);
  /* a write lands in a private copy, never in the region */
  uint8_t *image_before = malloc(4 * PAGE);
  memcpy(image_before, sv->data.image, 4 * PAGE);
  assert_int_equal(nub_pvm_mem_write(f->mem, 0x10000, zero, PAGE, NULL), PVM_OK);
  expect_bytes(f, 0x10000, zero, PAGE);
  assert_memory_equal(sv->data.image, image_before, 4 * PAGE);
  assert_memory_equal(nub_cap_data_page(&sv->data, 0).bytes, want, PAGE);
  build(f, image, inst);                                      /* and the next build is fresh */
  expect_bytes(f, 0x10000, want, 6 * PAGE);
  free(image_before);
  free(want);
  close_fixture(f);
}

static void without_a_backing_pages_are_copied(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  uint8_t s[32], *want = data_bytes(1, 6, s_pages);
  const nub_cap_view *image, *inst;
  put_data(f, 1, 6, s_pages, s);
  nub_cap_mapping m = mapping(0x10000, 10, CAP_ACCESS_RO, s);
  put_memory(f, &m, 1, NULL, 0, &image, &inst);
  nub_pvm_mem_work w = build(f, image, inst);
  assert_int_equal(w.mmaps, 1);
  assert_int_equal(w.mprotects, 1);
  assert_int_equal(w.pages_copied, 4);
  expect_bytes(f, 0x10000, want, 6 * PAGE);
  free(want);
  close_fixture(f);
}

static void overlays_clear_only_what_data_put_under_them(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  uint8_t s[32], e[32], u[32], *sb = data_bytes(1, 6, s_pages), *ub;
  static const bool u_pages[3] = {0, 1, 0};
  const nub_cap_view *image, *inst;
  uint8_t *wire;
  size_t len;
  use_backing(f);
  /* an empty Data overlay over a fresh 4 GiB mapping: one mmap in all */
  assert_int_equal(nub_cap_encode_data_alloc(0xFFFF0000u, NULL, 0, &wire, &len, NULL), CAP_OK);
  put(f, wire, len, e);
  free(wire);
  nub_cap_mapping all = mapping(0x10000, 0xFFFF0u, CAP_ACCESS_RW, NULL);
  nub_cap_overlay ov = {0x10000, {0}};
  memcpy(ov.data, e, 32);
  put_memory(f, &all, 1, &ov, 1, &image, &inst);
  nub_pvm_mem_work w = build(f, image, inst);
  assert_int_equal(w.mmaps, 1);
  assert_int_equal(w.mprotects, 0);
  assert_int_equal(w.pages_copied, 0);
  assert_int_equal(nub_pvm_mem_mapped_pages(f->mem), 0xFFFF0u);
  /* U (page 1 of 3) over S at 0x10000: S's pages 0-2 cleared, U placed */
  put_data(f, 1, 6, s_pages, s);
  put_data(f, 3, 3, u_pages, u);
  ub = data_bytes(3, 3, u_pages);
  nub_cap_mapping m = mapping(0x10000, 8, CAP_ACCESS_RO, s);
  memcpy(ov.data, u, 32);
  put_memory(f, &m, 1, &ov, 1, &image, &inst);
  w = build(f, image, inst);
  assert_int_equal(w.mmaps, 1 + 3 + 1 + 1);                   /* map, S runs, clear, U run */
  assert_int_equal(w.mprotects, 1);
  assert_int_equal(w.pages_copied, 0);
  expect_bytes(f, 0x10000, ub, 3 * PAGE);
  expect_bytes(f, 0x13000, sb + 3 * PAGE, 3 * PAGE);
  assert_int_equal(nub_pvm_mem_access(f->mem, 0x11000), PVM_ACCESS_RO);
  free(sb);
  free(ub);
  close_fixture(f);
}

static void many_read_only_mappings_cost_a_few_calls_each(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  static bool dense[16];
  for (unsigned p = 0; p < 16; p++) dense[p] = true;
  uint8_t d[32], *want = data_bytes(5, 16, dense);
  const nub_cap_view *image, *inst;
  put_data(f, 5, 16, dense, d);
  nub_cap_mapping maps[255];
  for (uint32_t i = 0; i < 255; i++) maps[i] = mapping(0x10000 + i * 16 * PAGE, 16, CAP_ACCESS_RO, d);
  put_memory(f, maps, 255, NULL, 0, &image, &inst);
  use_backing(f);
  nub_pvm_mem_work w = build(f, image, inst);
  assert_int_equal(w.mmaps, 255 + 255);
  assert_int_equal(w.mprotects, 255);
  assert_int_equal(w.pages_copied, 0);
  expect_bytes(f, 0x10000 + 254 * 16 * PAGE, want, 16 * PAGE);
  free(want);
  close_fixture(f);
}

static void runs_past_the_limit_are_refused_before_any_work(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION, true);
  static bool alternate[66];
  for (unsigned p = 0; p < 66; p++) alternate[p] = p % 2 == 0;
  uint8_t d[32];
  const nub_cap_view *image, *inst;
  put_data(f, 6, 66, alternate, d);
  nub_cap_mapping maps[255];
  for (uint32_t i = 0; i < 255; i++) maps[i] = mapping(0x10000 + i * 66 * PAGE, 66, CAP_ACCESS_RW, d);
  put_memory(f, maps, 255, NULL, 0, &image, &inst);
  uint64_t runs = 1;
  nub_cap_error err;
  nub_pvm_mem_work before, after;
  assert_int_equal(nub_cap_memory_runs(image, inst, lookup, f, &runs, &err), CAP_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "8415 runs"));
  assert_int_equal(runs, 0);
  nub_pvm_mem_get_work(f->mem, &before);
  assert_int_equal(nub_cap_memory_build(f->mem, image, inst, lookup, f, &err), CAP_ERR_LIMIT);
  nub_pvm_mem_get_work(f->mem, &after);
  assert_int_equal(after.mmaps, before.mmaps);
  assert_int_equal(nub_pvm_mem_mapped_pages(f->mem), 0);
  put_memory(f, maps, 248, NULL, 0, &image, &inst);           /* 8184 runs: allowed */
  assert_int_equal(nub_cap_memory_runs(image, inst, lookup, f, &runs, &err), CAP_OK);
  assert_int_equal(runs, 248 * 33);
  close_fixture(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(page_images_are_page_aligned_copies_with_their_runs),
    cmocka_unit_test(a_page_image_that_does_not_fit_leaves_the_directory_as_it_was),
    cmocka_unit_test(data_runs_are_mapped_copy_on_write_not_copied),
    cmocka_unit_test(without_a_backing_pages_are_copied),
    cmocka_unit_test(overlays_clear_only_what_data_put_under_them),
    cmocka_unit_test(many_read_only_mappings_cost_a_few_calls_each),
    cmocka_unit_test(runs_past_the_limit_are_refused_before_any_work),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
