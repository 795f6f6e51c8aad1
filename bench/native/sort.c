/* bench/sort.s in C: insertion sort of n u32 values, then a checksum. */
#include "native.h"

uint64_t bench_native_sort(uint32_t *a, uint64_t n) {
  for (uint64_t i = 1; i < n; i++) {
    uint32_t key = a[i];
    uint64_t j = i;
    while (j > 0 && a[j - 1] > key) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = key;
  }
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; i++) sum += (uint64_t)a[i] * (i + 1);
  return sum;
}
