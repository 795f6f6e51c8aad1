/* bench/memcpy.s in C: copy n bytes four words at a time, reps times. */
#include <string.h>

#include "native.h"

uint64_t bench_native_memcpy(uint8_t *dst, const uint8_t *src, uint64_t n, uint64_t reps) {
  uint64_t total = 0;
  for (; reps; reps--) {
    for (uint64_t off = 0; off < n; off += 32) {
      uint64_t w[4];
      memcpy(w, src + off, sizeof w);
      memcpy(dst + off, w, sizeof w);
    }
    total += n;
  }
  return total;
}
