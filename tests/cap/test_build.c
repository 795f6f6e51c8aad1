/*
** Builders (standard program, bare blob) and the memory-building step of
** invoke, checked page by page against nub_pvm_spi_load_memory.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cap_test_util.h"
#include "pvm/pvm_internal.h"

/* A directory stand-in: decoded views of a bundle's items by hash. */
typedef struct table {
  nub_cap_view v[300];
  uint8_t h[300][CAP_HASH_SIZE];
  uint8_t *owned[300];     /* wires the table frees */
  unsigned n, n_owned;
} table;

static void table_release(table *t) {
  for (unsigned i = 0; i < t->n_owned; i++) free(t->owned[i]);
}

static void table_add(table *t, const uint8_t *wire, size_t len) {
  nub_cap_error err;
  if (nub_cap_decode(wire, wire + len, &t->v[t->n], &err) ||
      nub_cap_hash(&t->v[t->n], t->h[t->n], &err))
    fail_msg("table_add: %s", err.msg);
  t->n++;
}

static const nub_cap_view *table_lookup(void *ud, const uint8_t hash[CAP_HASH_SIZE]) {
  table *t = ud;
  for (unsigned i = 0; i < t->n; i++)
    if (!memcmp(t->h[i], hash, CAP_HASH_SIZE)) return &t->v[i];
  return NULL;
}

static void table_of(table *t, const nub_cap_bundle *b) {
  t->n = 0;
  for (uint32_t i = 0; i < b->count; i++) table_add(t, b->items[i].wire, b->items[i].len);
}

static nub_pvm_mem *new_mem(void) {
  nub_pvm_mem *m;
  nub_pvm_error err;
  if (nub_pvm_mem_new(&m, &err)) fail_msg("%s", err.msg);
  return m;
}

/* Same access on every page, same bytes on every mapped page. */
static void assert_same_memory(const nub_pvm_mem *a, const nub_pvm_mem *b) {
  static uint8_t pa[CAP_PAGE_SIZE], pb[CAP_PAGE_SIZE];
  nub_pvm_error err;
  unsigned compared = 0;
  for (uint64_t pg = 0; pg < PVM_PAGE_COUNT; pg++) {
    uint32_t addr = (uint32_t)(pg << PVM_PAGE_SHIFT);
    assert_int_equal(nub_pvm_mem_access(a, addr), nub_pvm_mem_access(b, addr));
    if (nub_pvm_mem_access(a, addr) == PVM_ACCESS_NONE) continue;
    assert_int_equal(nub_pvm_mem_read(a, addr, pa, CAP_PAGE_SIZE, &err), 0);
    assert_int_equal(nub_pvm_mem_read(b, addr, pb, CAP_PAGE_SIZE, &err), 0);
    if (memcmp(pa, pb, CAP_PAGE_SIZE)) fail_msg("page 0x%x differs", addr);
    compared++;
  }
  assert_int_equal(compared, nub_pvm_mem_mapped_pages(a));
}

/* Build an SPI program both ways and compare the memories. */
static void check_spi(uint32_t ro, uint32_t rw, uint16_t heap, uint32_t stack, uint32_t nargs) {
  size_t len;
  uint8_t *spi_bytes = tu_spi(ro, rw, heap, stack, &len), *args = malloc(nargs + 1);
  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  nub_pvm_error perr;
  nub_cap_bundle b;
  nub_cap_error err;
  nub_cap_endpoint ep;
  table *t = calloc(1, sizeof *t);
  nub_pvm_mem *want = new_mem(), *got = new_mem();
  for (uint32_t i = 0; i < nargs; i++) args[i] = (uint8_t)(i ^ 0x5A);
  assert_int_equal(nub_pvm_spi_parse(spi_bytes, spi_bytes + len, &spi, &perr), 0);
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, nargs, &lay, &perr), 0);
  assert_int_equal(nub_pvm_spi_load_memory(want, &spi, &lay, args, nargs, &perr), 0);
  if (nub_cap_build_spi(PVM_PROFILE_GP07, spi_bytes, len, args, nargs, &b, &err)) fail_msg("%s", err.msg);
  assert_int_equal(b.instance, b.count - 1);
  assert_int_equal(b.image, b.count - 2);
  assert_int_equal(b.items[b.image].kind, CAP_IMAGE);
  table_of(t, &b);
  if (nub_cap_memory_build(got, &t->v[b.image], &t->v[b.instance], table_lookup, t, &err))
    fail_msg("memory: %s", err.msg);
  assert_same_memory(want, got);
  /* registers and the sbrk heap match too */
  assert_true(nub_cap_image_find_endpoint(&t->v[b.image].image, 0, &ep));
  assert_memory_equal(ep.regs, lay.regs, sizeof lay.regs);
  assert_int_equal(ep.entry_pc, 0);
  assert_int_equal(ep.stack_top, lay.regs[1]);
  assert_int_equal(nub_pvm_mem_heap_top(got), nub_pvm_mem_heap_top(want));
  assert_int_equal(pvm_mem_sbrk(got, 3 * CAP_PAGE_SIZE + 5), pvm_mem_sbrk(want, 3 * CAP_PAGE_SIZE + 5));
  assert_int_equal(pvm_mem_sbrk(got, 1ull << 20), pvm_mem_sbrk(want, 1ull << 20));
  assert_int_equal(pvm_mem_sbrk(got, 1ull << 33), 0);   /* past the limit on both */
  assert_int_equal(pvm_mem_sbrk(want, 1ull << 33), 0);
  assert_same_memory(want, got);
  nub_pvm_mem_free(want);
  nub_pvm_mem_free(got);
  nub_cap_bundle_free(&b);
  free(t);
  free(args);
  free(spi_bytes);
}

static void test_spi_memory_matches(void **state) {
  (void)state;
  check_spi(5000, 100, 2, 8192, 10);      /* partial last pages everywhere */
  check_spi(0, 0, 0, 0, 0);               /* nothing but code */
  check_spi(4096, 4096, 0, 4096, 4096);   /* exact pages */
  check_spi(1, 0, 3, 1, 1);               /* heap without rw data */
  check_spi(70000, 9000, 1, 65536, 70000);
}

static void test_spi_image_shape(void **state) {
  size_t len;
  uint8_t *spi = tu_spi(5000, 100, 2, 8192, &len);
  static const uint8_t args[] = "xyz";
  static const struct { uint32_t start, size; uint8_t access; bool data; } want[] = {
    {0x10000, 0x2000, CAP_ACCESS_RO, true},            /* ro data */
    {0x30000, 0x1000, CAP_ACCESS_RW, true},            /* rw data */
    {0x31000, 0x2000, CAP_ACCESS_RW, false},           /* heap pages */
    {0xFEFE0000u - 0x2000, 0x2000, CAP_ACCESS_RW, false},  /* stack */
    {0xFEFF0000u, 0x1000, CAP_ACCESS_RO, true},        /* args */
  };
  nub_cap_bundle b;
  nub_cap_error err;
  nub_cap_view v;
  (void)state;
  assert_int_equal(nub_cap_build_spi(PVM_PROFILE_GP07, spi, len, args, 3, &b, &err), CAP_OK);
  assert_int_equal(b.count, 5);
  assert_int_equal(nub_cap_decode(b.items[b.image].wire, b.items[b.image].wire + b.items[b.image].len, &v, &err), 0);
  assert_int_equal(v.image.mapping_count, 5);
  for (uint32_t i = 0; i < 5; i++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(&v.image, i, &m);
    assert_int_equal(m.start, want[i].start);
    assert_int_equal(m.size, want[i].size);
    assert_int_equal(m.access, want[i].access);
    if (want[i].data) assert_memory_equal(m.source, b.items[i < 2 ? i : 2].hash, 32);
    else assert_true(m.source[0] == 0 && !memcmp(m.source, m.source + 1, 31));
  }
  assert_int_equal(v.image.heap_top, 0x33000);
  assert_int_equal(v.image.heap_limit, 0xFEFE0000u - 0x2000 - 0x10000);
  /* the Instance is fresh and bound to the Image */
  assert_int_equal(nub_cap_decode(b.items[b.instance].wire, b.items[b.instance].wire + b.items[b.instance].len, &v, &err), 0);
  assert_memory_equal(v.instance.image_hash, b.items[b.image].hash, 32);
  assert_int_equal(v.instance.overlay_count, 0);
  assert_int_equal(v.instance.pc, 0);
  assert_int_equal(v.instance.gas, 0);
  nub_cap_bundle_free(&b);
  free(spi);
}

static void test_spi_errors(void **state) {
  size_t len;
  uint8_t *spi = tu_spi(10, 10, 0, 0, &len);
  nub_cap_bundle b;
  nub_cap_error err;
  (void)state;
  assert_int_equal(nub_cap_build_spi(PVM_PROFILE_GP07, spi, 5, NULL, 0, &b, &err), CAP_ERR_PVM);
  assert_int_equal(err.pvm_code, PVM_ERR_TRUNCATED);
  assert_non_null(strstr(err.msg, "build: spi"));
  spi[len - 1] = 0x03;   /* bitmask padding bit of the one-byte code */
  assert_int_equal(nub_cap_build_spi(PVM_PROFILE_GP07, spi, len, NULL, 0, &b, &err), CAP_ERR_CODE);
  assert_non_null(strstr(err.msg, "image.code"));
  spi[len - 1] = 0x01;
  /* arguments over Z_I: the layout check (A.41) refuses them */
  assert_int_equal(nub_cap_build_spi(PVM_PROFILE_GP07, spi, len, NULL, PVM_ARGS_MAX + 1, &b, &err), CAP_ERR_PVM);
  assert_int_equal(err.pvm_code, PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "build: spi layout"));
  assert_null(b.items);
  free(spi);
}

static void test_generic_builder(void **state) {
  size_t blob_len;
  uint8_t *blob = tu_min_blob(&blob_len), bytes[5000];
  nub_cap_region map[2] = {{0x10000, 0x3000, CAP_ACCESS_RO, bytes, sizeof bytes},
                       {0x20000, 0x1000, CAP_ACCESS_RW, NULL, 0}};
  nub_cap_bundle b;
  nub_cap_error err;
  nub_cap_endpoint ep;
  table *t = calloc(1, sizeof *t);
  nub_pvm_mem *got = new_mem(), *want = new_mem();
  nub_pvm_error perr;
  (void)state;
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 3 + 1);
  assert_int_equal(nub_cap_build_generic(PVM_PROFILE_GP07, blob, blob_len, map, 2, &b, &err), CAP_OK);
  assert_int_equal(b.count, 3);   /* one Data, the Image, the Instance */
  table_of(t, &b);
  assert_int_equal(nub_cap_memory_build(got, &t->v[b.image], NULL, table_lookup, t, &err), CAP_OK);
  assert_int_equal(nub_pvm_mem_map(want, 0x10000, 0x3000, PVM_ACCESS_RO, &perr), 0);
  assert_int_equal(nub_pvm_mem_map(want, 0x20000, 0x1000, PVM_ACCESS_RW, &perr), 0);
  assert_int_equal(nub_pvm_mem_write(want, 0x10000, bytes, sizeof bytes, &perr), 0);
  assert_same_memory(want, got);
  nub_cap_bundle_free(&b);
  /* no page map: no mappings, endpoint 0 with zero registers */
  assert_int_equal(nub_cap_build_generic(PVM_PROFILE_GP07, blob, blob_len, NULL, 0, &b, &err), CAP_OK);
  assert_int_equal(b.count, 2);
  table_of(t, &b);
  assert_int_equal(t->v[b.image].image.mapping_count, 0);
  assert_true(nub_cap_image_find_endpoint(&t->v[b.image].image, 0, &ep));
  for (int r = 0; r < CAP_REGS; r++) assert_int_equal(ep.regs[r], 0);
  assert_int_equal(ep.entry_pc, 0);
  /* its memory: nothing mapped, the Image's heap range; a used mem is refused */
  nub_pvm_mem *empty = new_mem();
  assert_int_equal(nub_cap_memory_build(empty, &t->v[b.image], &t->v[b.instance], table_lookup, t, &err),
                   CAP_OK);
  assert_int_equal(nub_pvm_mem_mapped_pages(empty), 0);
  assert_int_equal(nub_pvm_mem_heap_top(empty), t->v[b.image].image.heap_top);
  assert_int_equal(nub_cap_memory_build(got, &t->v[b.image], &t->v[b.instance], table_lookup, t, &err),
                   CAP_ERR_ARG);
  nub_pvm_mem_free(empty);
  nub_cap_bundle_free(&b);
  /* bad page maps */
  map[1].len = 5000;
  map[1].bytes = bytes;
  assert_int_equal(nub_cap_build_generic(PVM_PROFILE_GP07, blob, blob_len, map, 2, &b, &err), CAP_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "region 1: 5000 bytes do not fit its 4096-byte range"));
  map[1].len = 0;
  map[1].start = 0x11000;
  assert_int_equal(nub_cap_build_generic(PVM_PROFILE_GP07, blob, blob_len, map, 2, &b, &err), CAP_ERR_OVERLAP);
  nub_pvm_mem_free(got);
  nub_pvm_mem_free(want);
  free(t);
  free(blob);
}

/* The builders write the profile into the Image (and so into its hash);
** the data caps and the rest of the Image do not depend on it; an unknown
** profile is refused. */
static void test_builders_take_the_profile(void **state) {
  size_t blob_len, spi_len;
  uint8_t *blob = tu_min_blob(&blob_len), *spi = tu_spi(10, 10, 0, 0, &spi_len);
  nub_cap_bundle b[PVM_PROFILE_COUNT];
  nub_cap_error err;
  nub_cap_view v;
  (void)state;
  for (int spi_form = 0; spi_form < 2; spi_form++) {
    for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
      int rc = spi_form ? nub_cap_build_spi((nub_pvm_profile)p, spi, spi_len, NULL, 0, &b[p], &err)
                        : nub_cap_build_generic((nub_pvm_profile)p, blob, blob_len, NULL, 0, &b[p], &err);
      assert_int_equal(rc, CAP_OK);
      const nub_cap_item *im = &b[p].items[b[p].image];
      assert_int_equal(nub_cap_decode(im->wire, im->wire + im->len, &v, &err), CAP_OK);
      assert_int_equal(v.image.profile, p);
      assert_int_equal(b[p].count, b[0].count);
      for (uint32_t i = 0; i < b[p].image; i++)   /* Data caps: the same */
        assert_memory_equal(b[p].items[i].hash, b[0].items[i].hash, 32);
      /* the Image differs from the gp07 one in the profile byte only */
      assert_int_equal(im->len, b[0].items[b[0].image].len);
      assert_memory_equal(im->wire + 2, b[0].items[b[0].image].wire + 2, im->len - 2);
      for (int q = 0; q < p; q++)
        assert_memory_not_equal(im->hash, b[q].items[b[q].image].hash, 32);
    }
    for (int p = 0; p < PVM_PROFILE_COUNT; p++) nub_cap_bundle_free(&b[p]);
    int rc = spi_form ? nub_cap_build_spi(PVM_PROFILE_COUNT, spi, spi_len, NULL, 0, &b[0], &err)
                      : nub_cap_build_generic(PVM_PROFILE_COUNT, blob, blob_len, NULL, 0, &b[0], &err);
    assert_int_equal(rc, CAP_ERR_RESERVED);
    assert_non_null(strstr(err.msg, "3 is not a known ISA profile"));
    assert_null(b[0].items);
  }
  free(blob);
  free(spi);
}

/* An Image with two mappings and an Instance whose overlay replaces parts
** of them, zero pages included. */
typedef struct overlay_fixture {
  table t;
  uint8_t image_wire[512], inst_wire[512];
  size_t image_len, inst_len;
  uint8_t fill_hash[32], over_hash[32];
} overlay_fixture;

static void add_data(table *t, uint64_t size, const uint8_t *bytes, size_t len, uint8_t hash[32]) {
  uint8_t *wire;
  size_t n;
  nub_cap_error err;
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, len, &wire, &n, &err), CAP_OK);
  t->owned[t->n_owned++] = wire;
  table_add(t, wire, n);
  memcpy(hash, t->h[t->n - 1], 32);
}

static void make_image(overlay_fixture *f, const nub_cap_mapping *maps, uint32_t n) {
  size_t blob_len;
  uint8_t *blob = tu_min_blob(&blob_len);
  nub_cap_spec s = {.kind = CAP_IMAGE};
  nub_cap_error err;
  s.image.code = blob;
  s.image.code_len = blob_len;
  s.image.mappings = maps;
  s.image.mapping_count = n;
  assert_int_equal(nub_cap_encode(&s, f->image_wire, sizeof f->image_wire, &f->image_len, &err), CAP_OK);
  free(blob);
}

static void make_instance(overlay_fixture *f, const nub_cap_overlay *ov, uint32_t n) {
  nub_cap_spec s = {.kind = CAP_INSTANCE};
  nub_cap_error err;
  s.instance.overlays = ov;
  s.instance.overlay_count = n;
  assert_int_equal(nub_cap_encode(&s, f->inst_wire, sizeof f->inst_wire, &f->inst_len, &err), CAP_OK);
}

static int build(overlay_fixture *f, nub_pvm_mem **mem, nub_cap_error *err) {
  nub_cap_view image, inst;
  assert_int_equal(nub_cap_decode(f->image_wire, f->image_wire + f->image_len, &image, err), 0);
  assert_int_equal(nub_cap_decode(f->inst_wire, f->inst_wire + f->inst_len, &inst, err), 0);
  *mem = new_mem();
  return nub_cap_memory_build(*mem, &image, &inst, table_lookup, &f->t, err);
}

static void test_instance_overlay(void **state) {
  overlay_fixture *f = calloc(1, sizeof *f);
  uint8_t fill[3 * CAP_PAGE_SIZE], over[2 * CAP_PAGE_SIZE] = {0}, page[CAP_PAGE_SIZE];
  nub_cap_mapping maps[2] = {{0x10000, 0x3000, CAP_ACCESS_RO, {0}}, {0x20000, 0x2000, CAP_ACCESS_RW, {0}}};
  nub_cap_overlay ov[2] = {{0x11000, {0}}, {0x20000, {0}}};
  nub_cap_error err;
  nub_pvm_error perr;
  nub_pvm_mem *mem;
  (void)state;
  memset(fill, 0xAB, sizeof fill);
  over[CAP_PAGE_SIZE + 7] = 0x42;   /* page 0 of the overlay is zero, page 1 is not */
  add_data(&f->t, sizeof fill, fill, sizeof fill, f->fill_hash);
  add_data(&f->t, sizeof over, over, sizeof over, f->over_hash);
  memcpy(maps[0].source, f->fill_hash, 32);
  memcpy(ov[0].data, f->over_hash, 32);
  memcpy(ov[1].data, f->over_hash, 32);
  make_image(f, maps, 2);
  make_instance(f, ov, 2);
  assert_int_equal(build(f, &mem, &err), CAP_OK);
  assert_int_equal(nub_pvm_mem_access(mem, 0x11000), PVM_ACCESS_RO);   /* access is the Image's */
  assert_int_equal(nub_pvm_mem_read(mem, 0x10000, page, CAP_PAGE_SIZE, &perr), 0);
  assert_int_equal(page[100], 0xAB);
  assert_int_equal(nub_pvm_mem_read(mem, 0x11000, page, CAP_PAGE_SIZE, &perr), 0);
  assert_int_equal(page[100], 0);                                  /* zero page written */
  assert_int_equal(nub_pvm_mem_read(mem, 0x12000, page, CAP_PAGE_SIZE, &perr), 0);
  assert_int_equal(page[7], 0x42);
  assert_int_equal(page[8], 0);
  assert_int_equal(nub_pvm_mem_read(mem, 0x21000, page, CAP_PAGE_SIZE, &perr), 0);
  assert_int_equal(page[7], 0x42);
  nub_pvm_mem_free(mem);
  /* overlays that overlap, leave the mappings or run past 2^32 */
  ov[1].address = 0x12000;
  make_instance(f, ov, 2);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_OVERLAP);
  assert_non_null(strstr(err.msg, "overlay 1 at 0x12000 overlaps overlay 0, which ends at 0x13000"));
  nub_pvm_mem_free(mem);
  ov[1].address = 0x21000;
  make_instance(f, ov, 2);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_RANGE);
  assert_non_null(strstr(err.msg, "overlay 1 covers page 0x22000, which no mapping maps"));
  nub_pvm_mem_free(mem);
  ov[1].address = 0xFFFFF000u;
  make_instance(f, ov, 2);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_RANGE);
  assert_non_null(strstr(err.msg, "runs past 2^32"));
  nub_pvm_mem_free(mem);
  table_release(&f->t);
  free(f);
}

static void test_memory_errors(void **state) {
  overlay_fixture *f = calloc(1, sizeof *f);
  uint8_t big[2 * CAP_PAGE_SIZE] = {1}, absent[32];
  nub_cap_mapping maps[2] = {{0x10000, 0x1000, CAP_ACCESS_RO, {0}}, {0x20000, 0x1000, CAP_ACCESS_RW, {0}}};
  nub_cap_overlay ov = {0x10000, {0}};
  nub_cap_view image, inst;
  nub_cap_error err;
  nub_pvm_error perr;
  nub_pvm_mem *mem;
  char *hex;
  (void)state;
  add_data(&f->t, sizeof big, big, sizeof big, f->fill_hash);
  tu_hash(absent, 77);
  hex = tu_hex(absent, 32);
  memcpy(maps[1].source, absent, 32);
  make_image(f, maps, 2);
  make_instance(f, &ov, 0);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_MISSING);
  assert_non_null(strstr(err.msg, "mapping 1"));
  assert_non_null(strstr(err.msg, hex));
  assert_memory_equal(err.hash, absent, 32);
  assert_int_equal(err.offset, f->image_len - 32);   /* the source field of mapping 1 */
  nub_pvm_mem_free(mem);
  memcpy(maps[1].source, f->fill_hash, 32);           /* 2 pages into a 1-page mapping */
  make_image(f, maps, 2);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "mapping 1: Data"));
  assert_non_null(strstr(err.msg, "of 8192 bytes is larger than the mapping's 4096 bytes"));
  nub_pvm_mem_free(mem);
  memset(maps[1].source, 0, 32);
  make_image(f, maps, 2);
  memcpy(ov.data, absent, 32);
  make_instance(f, &ov, 1);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_MISSING);
  assert_non_null(strstr(err.msg, "overlay 0"));
  nub_pvm_mem_free(mem);
  /* a hash that names a cap of another kind */
  table_add(&f->t, f->image_wire, f->image_len);
  memcpy(ov.data, f->t.h[f->t.n - 1], 32);
  make_instance(f, &ov, 1);
  assert_int_equal(build(f, &mem, &err), CAP_ERR_KIND);
  assert_non_null(strstr(err.msg, "is a image cap, not Data"));
  /* mem must be empty; views must be of the right kinds */
  assert_int_equal(nub_cap_decode(f->image_wire, f->image_wire + f->image_len, &image, &err), 0);
  assert_int_equal(nub_cap_decode(f->inst_wire, f->inst_wire + f->inst_len, &inst, &err), 0);
  assert_int_equal(nub_pvm_mem_map(mem, 0x10000, 4096, PVM_ACCESS_RW, &perr), 0);
  assert_int_equal(nub_cap_memory_build(mem, &image, NULL, table_lookup, &f->t, &err), CAP_ERR_ARG);
  assert_int_equal(nub_pvm_mem_reset(mem, &perr), 0);
  assert_int_equal(nub_cap_memory_build(mem, &inst, NULL, table_lookup, &f->t, &err), CAP_ERR_KIND);
  assert_int_equal(nub_cap_memory_build(mem, &image, &image, table_lookup, &f->t, &err), CAP_ERR_KIND);
  nub_pvm_mem_free(mem);
  free(hex);
  table_release(&f->t);
  free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_spi_memory_matches),
    cmocka_unit_test(test_spi_image_shape),
    cmocka_unit_test(test_spi_errors),
    cmocka_unit_test(test_generic_builder),
    cmocka_unit_test(test_builders_take_the_profile),
    cmocka_unit_test(test_instance_overlay),
    cmocka_unit_test(test_memory_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
