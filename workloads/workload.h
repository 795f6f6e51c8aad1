/*
** The C workloads: each is `uint64_t wl_NAME(uint64_t n, uint64_t verbose)`,
** makes its own input of size n from a fixed seed, and returns a 64-bit
** digest of its result; verbose != 0 also logs a line through the runtime.
** The same sources build for the PVM (nub link) and natively (clang-19
** -O2), and the two digests must agree (tests/programs).
*/
#ifndef NUB_WORKLOAD_H
#define NUB_WORKLOAD_H

#include "nub_guest.h"

static inline uint64_t wl_rand(uint64_t *s) {   /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static inline void wl_fill(uint8_t *p, uint64_t n, uint64_t seed) {
  uint64_t s = seed | 1;
  for (uint64_t i = 0; i < n; i++) {
    if ((i & 7) == 0) s = wl_rand(&s) | 1;
    p[i] = (uint8_t)(s >> (8 * (i & 7)));
  }
}

static inline uint64_t wl_load64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

uint64_t wl_sha256(uint64_t n, uint64_t verbose);
uint64_t wl_blake2b(uint64_t n, uint64_t verbose);
uint64_t wl_json(uint64_t n, uint64_t verbose);
uint64_t wl_qsort(uint64_t n, uint64_t verbose);
uint64_t wl_bytecode(uint64_t n, uint64_t verbose);
uint64_t wl_zlib(uint64_t n, uint64_t verbose);
uint64_t wl_heap(uint64_t n, uint64_t verbose);
uint64_t wl_keccak(uint64_t n, uint64_t verbose);
uint64_t wl_sieve(uint64_t n, uint64_t verbose);
uint64_t wl_ed25519(uint64_t n, uint64_t verbose);

#endif
