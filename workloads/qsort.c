/* Quicksort (median of three, insertion sort below 16) of n 32-bit ints. */
#include "workload.h"

static void insertion(int32_t *a, int64_t lo, int64_t hi) {
  for (int64_t i = lo + 1; i <= hi; i++) {
    int32_t v = a[i];
    int64_t j = i - 1;
    while (j >= lo && a[j] > v) { a[j + 1] = a[j]; j--; }
    a[j + 1] = v;
  }
}

static void swap(int32_t *a, int64_t i, int64_t j) { int32_t t = a[i]; a[i] = a[j]; a[j] = t; }

static void quicksort(int32_t *a, int64_t lo, int64_t hi) {
  while (hi - lo >= 16) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    int32_t pivot = a[mid];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) swap(a, i++, j--);
    }
    /* Recurse into the smaller half: stack depth stays O(log n). */
    if (j - lo < hi - i) { quicksort(a, lo, j); lo = i; }
    else { quicksort(a, i, hi); hi = j; }
  }
  insertion(a, lo, hi);
}

uint64_t wl_qsort(uint64_t n, uint64_t verbose) {
  int32_t *a = malloc(n ? n * sizeof *a : 1);
  uint64_t s = 0x51534f5254000004ull, h = 0xCBF29CE484222325ull, sorted = 1;
  if (!a) return 0;
  for (uint64_t i = 0; i < n; i++) a[i] = (int32_t)(wl_rand(&s) >> 32);
  quicksort(a, 0, (int64_t)n - 1);
  for (uint64_t i = 0; i < n; i++) {
    if (i && a[i - 1] > a[i]) sorted = 0;
    h = (h ^ (uint32_t)a[i]) * 0x100000001B3ull;
  }
  if (verbose)
    nub_printf("qsort: %llu ints, %s, min %d max %d", (unsigned long long)n,
               sorted ? "sorted" : "NOT SORTED", n ? a[0] : 0, n ? a[n - 1] : 0);
  free(a);
  return sorted ? h : 0;
}
