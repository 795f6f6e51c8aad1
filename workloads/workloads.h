/*
** The workload table for host code (nub bench programs, tests/programs):
** each workload's native entry (built by clang-19 -O2 from the same
** source as its guest program build/guest/NAME.pvm) and its input sizes.
*/
#ifndef NUB_WORKLOADS_H
#define NUB_WORKLOADS_H

#include <stdint.h>

typedef struct wl_info {
  const char *name;                       /* build/guest/NAME.pvm */
  uint64_t (*native)(uint64_t n, uint64_t verbose);
  uint64_t bench_n, test_n;               /* n for the benchmark, for CTest */
  const char *unit;                       /* what n counts */
} wl_info;

extern const wl_info wl_table[];          /* ends with a NULL name */

/* Where native log lines go (runtime/native.c); NULL drops them. */
extern void (*nub_native_log_sink)(uint64_t level, const char *msg, uint64_t len);

#endif
