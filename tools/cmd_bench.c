/*
** nub bench: benchmarks that print figures (never pass/fail on time).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/bench.h"
#include "cli.h"

#define LOOP_ITERATIONS 10000000u
#define RUNS 7

/* Runs the 30 M-instruction loop on an engine; returns 0 and the median
** and best time in ns, or -1 (after printing why) on a wrong result. */
static int time_loop(const pvm_engine *engine, uint64_t *median, uint64_t *best,
                     uint64_t *compile_ns) {
  size_t len;
  uint8_t *blob = bench_loop_blob(LOOP_ITERATIONS, &len);
  pvm_program *prog = NULL;
  pvm_mem *mem = NULL;
  pvm_error err;
  void *code = NULL;
  uint64_t samples[RUNS];
  int rc = -1;
  if (!blob || pvm_program_load(PVM_PROFILE_GP07, blob, len, &prog, &err) ||
      pvm_mem_new(&mem, &err)) {
    fprintf(stderr, "bench: setup failed: %s\n", blob ? err.msg : "out of memory");
    goto out;
  }
  uint64_t t0 = bench_now_ns();
  if (engine->compile(prog, &code, &err)) { fprintf(stderr, "bench: compile: %s\n", err.msg); goto out; }
  *compile_ns = bench_now_ns() - t0;
  for (int run = 0; run < RUNS; run++) {
    pvm_vm vm;
    if (pvm_vm_init(&vm, prog, mem, engine, code, &err)) { fprintf(stderr, "bench: %s\n", err.msg); goto out; }
    vm.regs[0] = PVM_HALT_ADDRESS;
    vm.gas = 1000000000;
    uint64_t start = bench_now_ns();
    pvm_status st = pvm_vm_run(&vm);
    samples[run] = bench_now_ns() - start;
    int64_t used = 1000000000 - vm.gas;
    pvm_vm_fini(&vm);
    if (st != PVM_HALT || vm.regs[7] != 3ull * LOOP_ITERATIONS ||
        (uint64_t)used != bench_loop_instructions(LOOP_ITERATIONS)) {
      fprintf(stderr, "bench: %s gave a wrong result (status %s, r7 %llu, gas used %lld)\n",
              engine->name, pvm_status_name(st), (unsigned long long)vm.regs[7], (long long)used);
      goto out;
    }
  }
  *best = bench_min(samples, RUNS);
  *median = bench_median(samples, RUNS);
  rc = 0;
out:
  if (code) engine->release(code);
  pvm_program_free(prog);
  pvm_mem_free(mem);
  free(blob);
  return rc;
}

static int bench_interp(void) {
  uint64_t median, best, compile;
  double n = (double)bench_loop_instructions(LOOP_ITERATIONS);
  if (time_loop(&pvm_engine_interp, &median, &best, &compile)) return 1;
  printf("interp loop: %.0f instructions (%u iterations x 3 + 4), %d runs\n", n,
         LOOP_ITERATIONS, RUNS);
  printf("  median %.2f ms  best %.2f ms\n", median / 1e6, best / 1e6);
  printf("  %.1f M instr/s (median), %.1f M instr/s (best)\n", n / (median / 1e3),
         n / (best / 1e3));
  return 0;
}

int cmd_bench(int argc, char **argv) {
  if (argc < 2) return cli_usage_error("bench", "which benchmark? (interp, invoke)");
  if (!strcmp(argv[1], "interp")) return bench_interp();
  if (!strcmp(argv[1], "invoke")) return bench_invoke(argc, argv);
  return cli_usage_error("bench", "unknown benchmark '%s' (have: interp, invoke)", argv[1]);
}
