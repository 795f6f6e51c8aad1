/* bench/hash.s in C: the multiply-xor-rotate mixing loop. */
#include "native.h"

uint64_t bench_native_hash(uint64_t n, uint64_t h) {
  const uint64_t k = 0x9e3779b97f4a7c15ull;
  for (uint64_t i = 0; i < n; i++) {
    h ^= i;
    h *= k;
    h = ((h >> 27) | (h << 37)) ^ (h >> 31);
  }
  return h;
}
