/*
** nub bench lanes: invocations per second with L host threads, for L = 1
** up to the CPUs this process may use, on one handle with L lanes and on
** L handles of one lane each, for a CPU-bound program (a loop calibrated
** to ~1 ms) and a trivial one (r7 + r8).  The trivial program's rate per
** lane is set against the warm RPC invoke (INVOKE_CACHED over the request
** buffer, what nub_invoke was before lanes).  "guest cores": CPU seconds
** the guests used per second of the figure (/proc/<pid>/stat; inproc:
** this whole process), to tell a lane that waits from a machine that has
** no core to give.  Figures only.
**
**   nub bench lanes [--engine E] [--backend proc|inproc] [--ms N]
*/
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/bench.h"
#include "cli.h"
#include "nub/cap.h"
#include "nub/nub.h"

#define MAX_THREADS 64

typedef struct prog {
  uint8_t instance[32];
  uint64_t arg;                  /* r7 */
  uint64_t want;                 /* r7 at the halt */
} prog;

/* r7 counts down to 0 (loop), or r7 = r7 + r8 (add). */
static int publish(nub *n, bool loop, uint8_t instance[32]) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  nub_pvm_error perr;
  nub_cap_error cerr;
  nub_cap_bundle cb = {0};
  nub_error err;
  int rc = -1;
  if (loop) {
    uint32_t top = nub_pvm_builder_label(b);
    nub_pvm_builder_bind(b, top);
    nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, (uint64_t)-1, 0);
    nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 7, 0, 0, top);
  } else {
    nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  }
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, &len, &perr)) {
    nub_pvm_builder_free(b);
    fprintf(stderr, "bench lanes: builder: %s\n", perr.msg);
    return -1;
  }
  nub_pvm_builder_free(b);
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, &cb, &cerr)) {
    fprintf(stderr, "bench lanes: build: %s\n", cerr.msg);
    goto out;
  }
  for (uint32_t i = 0; i < cb.count; i++)
    if (nub_put_cap(n, cb.items[i].wire, cb.items[i].len, instance, &err)) {
      fprintf(stderr, "bench lanes: put_cap: %s\n", err.msg);
      goto out;
    }
  memcpy(instance, cb.items[cb.instance].hash, 32);
  rc = 0;
out:
  nub_cap_bundle_free(&cb);
  free(blob);
  return rc;
}

typedef struct runner {
  nub *n;
  const prog *p;
  uint64_t deadline, done;
  bool raw;                      /* INVOKE_CACHED over the request buffer */
  int failed;
} runner;

static void *run(void *arg) {
  runner *r = arg;
  const uint64_t args[4] = {r->p->arg, r->p->arg ? 0 : 1, 0, 0};
  nub_invoke_packet pk = {.initial_gas = 1ull << 40};
  memcpy(pk.instance_hash, r->p->instance, 32);
  memcpy(pk.args, args, sizeof args);
  do {
    for (int i = 0; i < 16; i++) {   /* the clock every 16 calls */
      nub_invocation_result res;
      nub_error err;
      size_t got;
      int rc = r->raw ? nub_call_raw(r->n, NUB_FN_INVOKE_CACHED, &pk, sizeof pk, &res,
                                     sizeof res, &got, &err)
                      : nub_invoke(r->n, r->p->instance, 0, args, 1ull << 40, &res, &err);
      if (rc || res.exit_reason != NUB_EXIT_HALT || res.return_value != r->p->want) {
        fprintf(stderr, "bench lanes: invoke: %s\n", rc ? err.msg : "wrong result");
        r->failed = 1;
        return NULL;
      }
      r->done++;
    }
  } while (bench_now_ns() < r->deadline);
  return NULL;
}

/* CPU seconds the handles' guests have used: /proc/<pid>/stat for proc
** guests, this process's own for inproc. */
static double cpu_seconds(nub **handles, uint32_t nh) {
  double sum = 0;
  for (uint32_t i = 0; i < nh; i++) {
    struct nub_sandbox_report rep;
    if (nub_sandbox_report(handles[i], &rep, NULL) || !rep.isolated) {
      struct rusage ru;
      getrusage(RUSAGE_SELF, &ru);
      return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
             ru.ru_stime.tv_usec / 1e6;
    }
    char path[64];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)rep.guest_pid);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    /* pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
      ut = st = 0;
    fclose(f);
    sum += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  }
  return sum;
}

static double cores_used;      /* of the last rate(): CPU seconds per second */

/* Invocations per second of threads runners, runner i on handles[i % nh]. */
static double rate(nub **handles, uint32_t nh, const prog *const *progs, uint32_t threads,
                   uint64_t ms, bool raw) {
  runner r[MAX_THREADS];
  pthread_t t[MAX_THREADS];
  uint32_t used = threads < nh ? threads : nh;
  double c0 = cpu_seconds(handles, used);
  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < threads; i++) {
    r[i] = (runner){handles[i % nh], progs[i % nh], t0 + ms * 1000000u, 0, raw, 0};
    if (pthread_create(&t[i], NULL, run, &r[i])) return -1;
  }
  uint64_t done = 0;
  int failed = 0;
  for (uint32_t i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    done += r[i].done;
    failed |= r[i].failed;
  }
  double s = (double)(bench_now_ns() - t0) / 1e9;
  cores_used = (cpu_seconds(handles, used) - c0) / s;
  return failed ? -1 : (double)done / s;
}

static nub *open_handle(const char *engine, nub_backend backend, uint32_t lanes) {
  nub_options o;
  nub *n;
  nub_error err;
  nub_options_init(&o);
  o.engine = engine;
  o.backend = backend;
  o.lanes = lanes;
  o.heap_size = 64u << 20;
  o.io_size = 1u << 20;
  if (nub_open(&o, &n, &err)) {
    fprintf(stderr, "bench lanes: open: %s\n", err.msg);
    return NULL;
  }
  return n;
}

/* The loop count that takes ~1 ms on this engine. */
static uint64_t calibrate(nub *n, const uint8_t instance[32]) {
  const uint64_t probe = 1000000;
  const uint64_t args[4] = {probe, 0, 0, 0};
  nub_invocation_result r;
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; i++) {
    uint64_t t0 = bench_now_ns();
    if (nub_invoke(n, instance, 0, args, 1ull << 40, &r, NULL)) return 0;
    uint64_t dt = bench_now_ns() - t0;
    if (dt < best) best = dt;
  }
  uint64_t count = probe * 1000000u / (best ? best : 1);
  return count ? count : 1;
}

int bench_lanes(int argc, char **argv) {
  const char *engine = NULL;
  nub_backend backend = NUB_BACKEND_PROC;
  uint64_t ms = 300;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) engine = argv[++i];
    else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
      const char *b = argv[++i];
      if (!strcmp(b, "inproc")) backend = NUB_BACKEND_INPROC;
      else if (strcmp(b, "proc")) return cli_usage_error("bench", "lanes: --backend proc|inproc");
    } else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = strtoull(argv[++i], NULL, 10);
    else return cli_usage_error("bench", "lanes: unknown option '%s' (--engine E, --backend B, --ms N)", argv[i]);
  }
  if (!ms) return cli_usage_error("bench", "lanes: --ms must be at least 1");
  cpu_set_t set;
  uint32_t cpus = sched_getaffinity(0, sizeof set, &set) ? 1 : (uint32_t)CPU_COUNT(&set);
  if (cpus > MAX_THREADS) cpus = MAX_THREADS;
  if (cpus < 2) cpus = 2;            /* 2 lanes at least, to show what they do */
  nub *h[MAX_THREADS + 1] = {0};
  prog cpu[MAX_THREADS + 1], trivial[MAX_THREADS + 1];
  const prog *pc[MAX_THREADS + 1], *pt[MAX_THREADS + 1];
  int rc = 1;
  /* h[0] is the handle with a lane per CPU; h[1..cpus] have one lane each */
  for (uint32_t i = 0; i <= cpus; i++) {
    if (!(h[i] = open_handle(engine, backend, i ? 1 : cpus)) || publish(h[i], true, cpu[i].instance) ||
        publish(h[i], false, trivial[i].instance))
      goto out;
    trivial[i].arg = 0, trivial[i].want = 1;   /* 0 + 1 */
    pc[i] = &cpu[i];
    pt[i] = &trivial[i];
  }
  uint64_t loops = calibrate(h[0], cpu[0].instance);
  if (!loops) goto out;
  for (uint32_t i = 0; i <= cpus; i++) cpu[i].arg = loops, cpu[i].want = 0;
  printf("lanes: %s, engine %s, %u CPUs; %llu ms per figure; invocations/s (x: against 1)\n",
         backend == NUB_BACKEND_PROC ? "proc" : "inproc", nub_engine_name(h[0]), cpus,
         (unsigned long long)ms);
  double warm = rate(h, 1, pt, 1, ms, true);
  if (warm < 0) goto out;
  printf("  warm RPC invoke (INVOKE_CACHED, 1 thread): %10.0f /s  %6.2f us\n", warm, 1e6 / warm);
  printf("  %-7s %-3s %29s %29s\n", "program", "L", "one handle, L lanes", "L handles, 1 lane");
  printf("  %-7s %-3s %29s %29s\n", "", "", "inv/s (x) guest cores", "inv/s (x) guest cores");
  const char *names[2] = {"cpu-1ms", "trivial"};
  const prog *const *sets[2] = {pc, pt};
  for (int k = 0; k < 2; k++) {
    double base = 0;
    for (uint32_t L = 1; L <= cpus; L++) {
      double one = rate(h, 1, sets[k], L, ms, false), one_cores = cores_used;
      double sep = rate(h + 1, L, sets[k] + 1, L, ms, false), sep_cores = cores_used;
      if (one < 0 || sep < 0) goto out;
      if (L == 1) base = one;
      printf("  %-7s %-3u %9.0f (%4.2fx) %6.2f %13.0f (%4.2fx) %6.2f\n", names[k], L, one,
             one / base, one_cores, sep, sep / base, sep_cores);
    }
    if (k == 1)
      printf("  trivial, 1 lane: %.2f us per invocation, %.2fx the warm RPC invoke's time\n",
             1e6 / base, warm / base);
  }
  rc = 0;
out:
  for (uint32_t i = 0; i <= cpus; i++) nub_close(h[i]);
  return rc;
}
