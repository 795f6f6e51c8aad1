/*
** The benchmark kernels of the bench .s files written in C, compiled with -O2 and
** without sanitizers in every preset: what the hardware does natively.
*/
#ifndef NUB_BENCH_NATIVE_H
#define NUB_BENCH_NATIVE_H

#include <stdint.h>

uint64_t bench_native_sieve(uint64_t n, uint8_t *flags);
uint64_t bench_native_sort(uint32_t *a, uint64_t n);
uint64_t bench_native_hash(uint64_t n, uint64_t h);
uint64_t bench_native_memcpy(uint8_t *dst, const uint8_t *src, uint64_t n, uint64_t reps);

#endif
