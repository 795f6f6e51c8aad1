/* bench/sieve.s in C: count the primes below n in n zero bytes. */
#include "native.h"

uint64_t bench_native_sieve(uint64_t n, uint8_t *flags) {
  uint64_t count = 0;
  for (uint64_t i = 2; i < n; i++) {
    if (flags[i]) continue;
    count++;
    for (uint64_t j = i * i; j < n; j += i) flags[j] = 1;
  }
  return count;
}
