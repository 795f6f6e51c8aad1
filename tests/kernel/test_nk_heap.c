/*
** The guest heap allocator: stats, coalescing, exhaustion, aligned
** allocations (page images), and a random workload checked against every
** invariant after each step.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/nk_heap.h"

#define REGION (1u << 20)

static void *region(void) {
  void *p = aligned_alloc(4096, REGION);
  assert_non_null(p);
  return p;
}

static void stats_and_coalescing(void **state) {
  (void)state;
  void *mem = region();
  nk_heap *h = nk_heap_init(mem, REGION);
  struct nub_heap_stats s0, s;
  assert_non_null(h);
  nk_heap_stats(h, &s0);
  assert_int_equal(s0.allocation_count, 0);
  assert_int_equal(s0.fragment_count, 1);
  assert_true(s0.available_bytes > REGION - 8192);
  void *a = nk_heap_alloc(h, 100), *b = nk_heap_alloc(h, 200), *c = nk_heap_alloc(h, 300);
  assert_non_null(a); assert_non_null(b); assert_non_null(c);
  assert_int_equal((uintptr_t)a % NK_HEAP_ALIGN, 0);
  assert_ptr_equal(a, (uint8_t *)mem + NK_HEAP_HEADER_SIZE + 16);
  memset(a, 1, 100); memset(b, 2, 200); memset(c, 3, 300);
  nk_heap_stats(h, &s);
  assert_int_equal(s.allocation_count, 3);
  assert_true(s.allocated_bytes >= 600);
  assert_int_equal(s.allocated_bytes + s.available_bytes + 3 * 16, s0.available_bytes);  /* 3 new headers */
  nk_heap_free(h, b);                         /* a hole between two used blocks */
  nk_heap_stats(h, &s);
  assert_int_equal(s.fragment_count, 2);
  nk_heap_free(h, a);                         /* merges with b's hole */
  nk_heap_stats(h, &s);
  assert_int_equal(s.fragment_count, 2);
  nk_heap_free(h, c);                         /* everything merges back */
  nk_heap_stats(h, &s);
  assert_memory_equal(&s, &s0, sizeof s);
  assert_true(nk_heap_check(h));
  free(mem);
}

static void exhaustion(void **state) {
  (void)state;
  void *mem = region();
  nk_heap *h = nk_heap_init(mem, REGION);
  assert_null(nk_heap_alloc(h, REGION));
  assert_null(nk_heap_alloc(h, SIZE_MAX - 8));
  size_t n = 0;
  while (nk_heap_alloc(h, 4000)) n++;
  assert_true(n > 200);
  assert_true(nk_heap_check(h));
  assert_null(nk_heap_init(mem, 4096));       /* too small for the header page */
  assert_null(nk_heap_init((uint8_t *)mem + 8, REGION - 8));   /* misaligned */
  free(mem);
}

static void random_workload(void **state) {
  (void)state;
  void *mem = region();
  nk_heap *h = nk_heap_init(mem, REGION);
  void *live[256] = {0};
  size_t size[256] = {0};
  unsigned seed = 12345;
  for (int step = 0; step < 20000; step++) {
    seed = seed * 1103515245u + 12345u;
    unsigned i = (seed >> 8) % 256;
    if (live[i]) {
      for (size_t k = 0; k < size[i]; k++) assert_int_equal(((uint8_t *)live[i])[k], (uint8_t)i);
      nk_heap_free(h, live[i]);
      live[i] = NULL;
    } else {
      size[i] = (seed >> 16) % 3000;
      live[i] = nk_heap_alloc(h, size[i]);
      if (live[i]) memset(live[i], (int)i, size[i]);
    }
    if (step % 97 == 0) assert_true(nk_heap_check(h));
  }
  for (unsigned i = 0; i < 256; i++) nk_heap_free(h, live[i]);
  struct nub_heap_stats s;
  nk_heap_stats(h, &s);
  assert_int_equal(s.allocation_count, 0);
  assert_int_equal(s.fragment_count, 1);
  assert_true(nk_heap_check(h));
  free(mem);
}

/* Page-aligned payloads without padding: the bytes in front stay free,
** a one-page allocation holds a page and its header, every alignment up to
** a page is met, one past it or not a power of two is refused, and a mixed
** random workload keeps every invariant. */
static void aligned_allocations_leave_the_front_free(void **state) {
  (void)state;
  void *mem = region();
  nk_heap *h = nk_heap_init(mem, REGION);
  struct nub_heap_stats before, after;
  void *small = nk_heap_alloc(h, 100);          /* the next free byte is not page aligned */
  assert_non_null(small);
  nk_heap_stats(h, &before);
  uint8_t *page = nk_heap_alloc_aligned(h, 4096, 4096);
  assert_non_null(page);
  assert_int_equal((uintptr_t)page % 4096, 0);
  nk_heap_stats(h, &after);
  assert_int_equal(after.allocated_bytes - before.allocated_bytes, 4096);   /* no padding */
  assert_int_equal(after.fragment_count, before.fragment_count + 1);       /* the front, free */
  assert_true(nk_heap_check(h));
  uint8_t *front = nk_heap_alloc(h, 64);        /* the front serves small allocations */
  assert_true(front && front < page);
  for (size_t align = 16; align <= NK_HEAP_MAX_ALIGN; align *= 2) {
    uint8_t *p = nk_heap_alloc_aligned(h, 24, align);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % align, 0);
  }
  assert_null(nk_heap_alloc_aligned(h, 64, 8192));
  assert_null(nk_heap_alloc_aligned(h, 64, 48));
  assert_null(nk_heap_alloc_aligned(h, REGION, 4096));
  assert_true(nk_heap_check(h));
  nk_heap_free(h, page);
  nk_heap_free(h, front);
  nk_heap_free(h, small);
  assert_true(nk_heap_check(h));
  void *live[128] = {0};
  unsigned seed = 777;
  for (int step = 0; step < 8000; step++) {
    seed = seed * 1103515245u + 12345u;
    unsigned i = (seed >> 8) % 128;
    if (live[i]) {
      nk_heap_free(h, live[i]);
      live[i] = NULL;
    } else {
      size_t n = (seed >> 16) % 9000, align = (size_t)16 << ((seed >> 4) % 9);
      live[i] = nk_heap_alloc_aligned(h, n, align);
      if (live[i]) {
        assert_int_equal((uintptr_t)live[i] % align, 0);
        memset(live[i], (int)i, n);
      }
    }
    if (step % 61 == 0) assert_true(nk_heap_check(h));
  }
  for (unsigned i = 0; i < 128; i++) nk_heap_free(h, live[i]);
  assert_true(nk_heap_check(h));
  free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(stats_and_coalescing),
    cmocka_unit_test(exhaustion),
    cmocka_unit_test(random_workload),
    cmocka_unit_test(aligned_allocations_leave_the_front_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
