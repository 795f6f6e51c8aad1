/*
** Benchmark programs and timing helpers shared by `nub bench`.
*/
#ifndef NUB_BENCH_H
#define NUB_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* The counted loop of the peers' loop benchmark vector: 3 instructions per
** iteration, r7 += 3 and r8 -= 1, then jump_ind r0 (halt when r0 is the
** halt address).  Returns a malloc'd generic blob. */
uint8_t *bench_loop_blob(uint32_t iterations, size_t *len);
uint64_t bench_loop_instructions(uint32_t iterations);

/* The trivial program of `nub bench invoke`: r7 = r7 + r8, then halt.
** Returns a malloc'd generic blob. */
uint8_t *bench_add_blob(size_t *len);

/* The PVM kernels of the bench .s files (sieve, sort, hash, memcpy), as text for
** nub_pvm_asm; the list ends with a NULL name. */
typedef struct bench_source { const char *name, *text; } bench_source;
extern const bench_source bench_sources[];
const char *bench_source_text(const char *name);

/* A synthetic program of n instructions with a fixed mix (ALU, loads and
** stores, branches every few instructions), for compile-time scaling; the
** seed picks the pseudo-random sequence (0: the program the figures in
** docs were measured on).  Returns a malloc'd generic blob or NULL. */
uint8_t *bench_mixed_blob(uint32_t n, uint64_t seed, size_t *len);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* Sort samples and return the median / minimum. */
uint64_t bench_median(uint64_t *samples, size_t n);
uint64_t bench_min(const uint64_t *samples, size_t n);
/* Sort samples and return the pct-th percentile (nearest rank). */
uint64_t bench_percentile(uint64_t *samples, size_t n, unsigned pct);

#endif
