/* Sieve of Eratosthenes: the primes below n (a byte per number); the
** prime-sieve workload of the original nub's table.  The digest hashes
** the count and the last primes. */
#include "workload.h"

uint64_t wl_sieve(uint64_t n, uint64_t verbose) {
  uint8_t *composite = calloc(n + 1, 1);
  uint64_t count = 0, h = 0xCBF29CE484222325ull;
  if (!composite) return 0;
  for (uint64_t i = 2; i * i < n; i++)
    if (!composite[i])
      for (uint64_t j = i * i; j < n; j += i) composite[j] = 1;
  for (uint64_t i = 2; i < n; i++)
    if (!composite[i]) { count++; h = (h ^ i) * 0x100000001B3ull; }
  free(composite);
  if (verbose) nub_printf("sieve: %llu primes below %llu", (unsigned long long)count, (unsigned long long)n);
  return h ^ count << 40;
}
