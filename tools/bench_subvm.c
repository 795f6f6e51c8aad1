/*
** nub bench subvm: the CALL/HALT kernel (docs/kernel.md).  Figures only.
**   - fib(20) where every call is a sub-VM (bench/subvm_fib.s): 21 891
**     VMs, each a fresh DERIVE_SPAWN + HOST_CALL + HALT: VMs/s, us per VM;
**   - ping-pong (bench/subvm_pingpong.s): one spawned Instance called
**     ROUNDS times, warm: us per CALL+HALT pair.
** On each engine, inproc and proc.  The whole invocation is timed (one
** round trip to the guest amortised over all the VMs).
**
**   nub bench subvm [--engine E] [--rounds N]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/bench.h"
#include "cli.h"
#include "nub/cap.h"
#include "nub/nub.h"

#define FIB_N 20u
#define FIB_VMS 21891u       /* calls of fib(20), the root included */
#define FIB_VALUE 6765u
#define RUNS 7u

static int publish(nub *n, const char *name, uint8_t instance[32], nub_error *err) {
  const char *text = bench_source_text(name);
  uint8_t *blob = NULL;
  size_t len;
  nub_pvm_error perr;
  nub_cap_error cerr;
  nub_cap_bundle b = {0};
  int rc = -1;
  if (!text || nub_pvm_asm(PVM_PROFILE_GP07, text, strlen(text), &blob, &len, NULL, &perr)) {
    fprintf(stderr, "bench subvm: %s: %s\n", name, text ? perr.msg : "no source");
    return -1;
  }
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, &b, &cerr)) {
    fprintf(stderr, "bench subvm: build %s: %s\n", name, cerr.msg);
    goto out;
  }
  for (uint32_t i = 0; i < b.count; i++)
    if (nub_put_cap(n, b.items[i].wire, b.items[i].len, instance, err)) goto out;
  memcpy(instance, b.items[b.instance].hash, 32);
  rc = 0;
out:
  nub_cap_bundle_free(&b);
  free(blob);
  return rc;
}

/* Median ns of RUNS invocations with r7 = arg (after one untimed), or 0
** after printing why on a wrong result. */
static uint64_t time_invoke(nub *n, const uint8_t instance[32], uint64_t arg, uint64_t want) {
  const uint64_t args[4] = {arg, 0, 0, 0};
  uint64_t samples[RUNS];
  for (uint32_t run = 0; run <= RUNS; run++) {
    nub_invocation_result r;
    nub_error err;
    uint64_t t0 = bench_now_ns();
    if (nub_invoke(n, instance, 0, args, 1ull << 40, &r, &err)) {
      fprintf(stderr, "bench subvm: invoke: %s\n", err.msg);
      return 0;
    }
    uint64_t dt = bench_now_ns() - t0;
    if (r.exit_reason != NUB_EXIT_HALT || r.return_value != want) {
      fprintf(stderr, "bench subvm: exit %u/%u value %llu, expected a halt with %llu\n",
              r.exit_reason, r.exit_arg, (unsigned long long)r.return_value,
              (unsigned long long)want);
      return 0;
    }
    if (run) samples[run - 1] = dt;
  }
  return bench_median(samples, RUNS);
}

static int one(const char *engine, nub_backend backend, uint64_t rounds) {
  nub_options o;
  nub *n;
  nub_error err;
  uint8_t fib[32], pingpong[32];
  nub_options_init(&o);
  o.engine = engine;
  o.backend = backend;
  if (nub_open(&o, &n, &err)) {
    fprintf(stderr, "bench subvm: open: %s\n", err.msg);
    return 1;
  }
  int rc = 1;
  if (publish(n, "subvm_fib", fib, &err) || publish(n, "subvm_pingpong", pingpong, &err)) {
    fprintf(stderr, "bench subvm: publish: %s\n", err.msg);
    goto out;
  }
  uint64_t fib_ns = time_invoke(n, fib, FIB_N, FIB_VALUE);
  uint64_t pp_ns = fib_ns ? time_invoke(n, pingpong, rounds, rounds) : 0;
  if (!pp_ns) goto out;
  const char *bname = backend == NUB_BACKEND_PROC ? "proc" : "inproc";
  printf("  %-6s %-6s fib(20) %7.2f ms  %9.0f VMs/s  %5.2f us/VM (spawn+call+halt)\n", engine,
         bname, (double)fib_ns / 1e6, FIB_VMS / ((double)fib_ns / 1e9),
         (double)fib_ns / 1e3 / FIB_VMS);
  printf("  %-6s %-6s ping-pong %llu rounds %7.2f ms  %9.0f calls/s  %5.2f us per CALL+HALT\n",
         engine, bname, (unsigned long long)rounds, (double)pp_ns / 1e6,
         (double)rounds / ((double)pp_ns / 1e9), (double)pp_ns / 1e3 / (double)rounds);
  rc = 0;
out:
  nub_close(n);
  return rc;
}

int bench_subvm(int argc, char **argv) {
  const char *engine = NULL;
  uint64_t rounds = 100000;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) engine = argv[++i];
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = strtoull(argv[++i], NULL, 10);
    else return cli_usage_error("bench", "subvm: unknown option '%s' (--engine E, --rounds N)", argv[i]);
  }
  if (!rounds) return cli_usage_error("bench", "subvm: --rounds must be at least 1");
  printf("sub-VMs (the CALL/HALT kernel, docs/kernel.md); median of %u invocations\n", RUNS);
  const char *engines[] = {"interp", "jit"};
  for (size_t e = 0; e < 2; e++) {
    if (engine && strcmp(engine, engines[e])) continue;
    if (one(engines[e], NUB_BACKEND_INPROC, rounds) || one(engines[e], NUB_BACKEND_PROC, rounds))
      return 1;
  }
  return 0;
}
