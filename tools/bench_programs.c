/*
** nub bench programs: the C workloads (workloads/, docs/runtime.md) as
** PVM programs (build/guest/NAME.pvm, made by nub link) on the JIT and
** the interpreter, against the same C built natively by clang-19 -O2.
** Per workload: the best native, JIT and interpreter run, the ratios,
** program size and compile times; then the geometric mean of JIT/native
** and the JIT's compile speed on the largest program.  Every run's digest
** must equal the native one, or the figures are not printed.
*/
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "cli.h"
#include "guest_run.h"
#include "nub/jit.h"
#include "workloads.h"

#define NATIVE_RUNS 5
#define JIT_RUNS 3
#define INTERP_RUNS 1
#define GAS INT64_MAX

/* build/guest next to the nub executable, unless --dir says otherwise. */
static int guest_dir(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  if (n <= 0) return -1;
  out[n] = 0;
  char *slash = strrchr(out, '/');
  if (!slash || (size_t)(slash - out) + sizeof "/guest" > cap) return -1;
  strcpy(slash, "/guest");
  return 0;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

int bench_programs(int argc, char **argv) {
  char dir[PATH_MAX];
  uint64_t divisor = 1;
  const char *only = NULL;
  if (guest_dir(dir, sizeof dir)) return cli_usage_error("bench", "cannot find the nub executable");
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc && strlen(argv[i + 1]) < sizeof dir) {
      strcpy(dir, argv[++i]);
    } else if (!strcmp(argv[i], "--quick")) {
      divisor = 16;
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else {
      return cli_usage_error("bench", "programs takes [--dir DIR] [--quick] [--only NAME], got %s", argv[i]);
    }
  }
  printf("nub bench programs: C workloads, clang-19 -O2 natively and for RV64E + nub link "
         "(%s); best of %d native, %d JIT, %d interpreter runs%s\n",
         dir, NATIVE_RUNS, JIT_RUNS, INTERP_RUNS, divisor > 1 ? " (--quick: inputs / 16)" : "");
  printf("%-9s %-17s %9s %9s %9s %8s %8s %9s %9s %10s\n", "workload", "input", "native ms",
         "jit ms", "interp ms", "jit/nat", "int/nat", "size B", "jit cmp ms", "gas");
  double log_sum = 0;
  int count = 0, rc = 0;
  size_t largest = 0;
  uint64_t largest_compile = 0;
  const char *largest_name = NULL;
  for (const wl_info *w = wl_table; w->name; w++) {
    if (only && strcmp(only, w->name)) continue;
    char path[PATH_MAX + 64];
    uint8_t *file = NULL;
    size_t len;
    uint64_t n = w->bench_n / divisor, native_best = 0, expect = 0;
    guest_result jit, interp;
    nub_pvm_error err;
    snprintf(path, sizeof path, "%s/%s.pvm", dir, w->name);
    if (cli_read_file(path, &file, &len)) { rc = 1; continue; }
    for (int r = 0; r < NATIVE_RUNS; r++) {
      uint64_t t0 = bench_now_ns();
      uint64_t v = w->native(n, 0);
      uint64_t dt = bench_now_ns() - t0;
      if (!r || dt < native_best) native_best = dt;
      expect = v;
    }
    if (guest_spi_run(file, len, PVM_PROFILE_GP07, &nub_jit_engine, n, 0, GAS, JIT_RUNS, NULL,
                      NULL, &jit, &err) ||
        guest_spi_run(file, len, PVM_PROFILE_GP07, &nub_pvm_engine_interp, n, 0, GAS, INTERP_RUNS,
                      NULL, NULL, &interp, &err)) {
      fprintf(stderr, "bench programs: %s: %s\n", path, err.msg);
      free(file);
      rc = 1;
      continue;
    }
    free(file);
    if (jit.status != PVM_HALT || interp.status != PVM_HALT || jit.value != expect ||
        interp.value != expect) {
      fprintf(stderr, "bench programs: %s: wrong result: native %016llx, jit %s %016llx, "
              "interp %s %016llx\n", w->name, (unsigned long long)expect,
              nub_pvm_status_name(jit.status), (unsigned long long)jit.value,
              nub_pvm_status_name(interp.status), (unsigned long long)interp.value);
      rc = 1;
      continue;
    }
    char input[32];
    snprintf(input, sizeof input, "%llu %s", (unsigned long long)n, w->unit);
    double jr = (double)jit.run_ns / (double)native_best;
    double ir = (double)interp.run_ns / (double)native_best;
    printf("%-9s %-17s %9.2f %9.2f %9.1f %8.2f %8.1f %9zu %9.2f %10lld\n", w->name, input,
           ms(native_best), ms(jit.run_ns), ms(interp.run_ns), jr, ir, len, ms(jit.compile_ns),
           (long long)jit.gas_used);
    log_sum += log(jr);
    count++;
    if (len > largest) { largest = len; largest_compile = jit.compile_ns; largest_name = w->name; }
  }
  if (count)
    printf("geometric mean JIT/native over %d workloads: %.2f\n", count, exp(log_sum / count));
  if (largest_name)
    printf("JIT compile speed on the largest program (%s, %zu B SPI): %.2f ms, %.1f MB/s\n",
           largest_name, largest, ms(largest_compile),
           (double)largest / ((double)largest_compile / 1e9) / 1e6);
  return rc;
}
