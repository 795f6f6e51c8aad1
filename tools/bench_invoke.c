/*
** nub bench invoke: what a call costs through each backend.  Prints
** figures only (docs/sandbox.md, "Costs"):
**   - the raw doorbell round trip of the proc channel (no frame, no work),
**   - warm invoke round trips of a trivial program, proc and inproc,
**   - the JIT cache: compiles vs invocations, and invokes that recompile,
**   - put_cap throughput, proc and inproc,
**   - nub_lookup from the host's copy and from the guest's directory,
**   - cold sandbox start: nub_open to the first smoke reply.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench/bench.h"
#include "cli.h"
#include "nub/cap.h"
#include "nub/nub.h"

#define WARMUP 2000u
#define CALLS 20000u
#define PUT_CAPS 3000u
#define COLD_STARTS 20u
#define COLD_GAP_MS 20u      /* between starts: the last guest's namespaces are torn down async */

typedef struct bench_ctx {
  nub_options opt;
  cap_bundle add;            /* the trivial program's Image and Instance */
  uint64_t *samples;
} bench_ctx;

static int fail(const char *what, const nub_error *err) {
  fprintf(stderr, "bench invoke: %s: %s (%s)\n", what, err->msg, nub_errcode_name(err->code));
  return 1;
}

static nub *open_backend(bench_ctx *c, nub_backend backend) {
  nub_options o = c->opt;
  nub *n;
  nub_error err;
  o.backend = backend;
  if (nub_open(&o, &n, &err)) { fail("open", &err); return NULL; }
  return n;
}

static void print_dist(const char *label, uint64_t *s, size_t n, double raw_median) {
  double med = (double)bench_median(s, n) / 1e3, p99 = (double)bench_percentile(s, n, 99) / 1e3;
  printf("  %-28s median %7.2f us   p99 %7.2f us", label, med, p99);
  if (raw_median > 0) printf("   %.2fx raw", med / raw_median);
  printf("\n");
}

/* CALLS timed round trips of one kind after WARMUP untimed ones. */
static int time_calls(bench_ctx *c, nub *n, bool ping, double *median_us, const char *label,
                      double raw) {
  const uint64_t args[4] = {20, 22, 0, 0};
  const uint8_t *inst = c->add.items[c->add.instance].hash;
  nub_invocation_result r;
  nub_error err;
  for (uint32_t i = 0; i < WARMUP + CALLS; i++) {
    uint64_t t0 = bench_now_ns();
    int rc = ping ? nub_ping(n, &err) : nub_invoke(n, inst, 0, args, 1000, &r, &err);
    uint64_t t = bench_now_ns() - t0;
    if (rc) return fail(ping ? "ping" : "invoke", &err);
    if (!ping && r.return_value != 42) {
      fprintf(stderr, "bench invoke: wrong result %llu\n", (unsigned long long)r.return_value);
      return 1;
    }
    if (i >= WARMUP) c->samples[i - WARMUP] = t;
  }
  *median_us = (double)bench_median(c->samples, CALLS) / 1e3;
  print_dist(label, c->samples, CALLS, raw);
  return 0;
}

static int publish(nub *n, const cap_bundle *b) {
  for (uint32_t i = 0; i < b->count; i++) {
    nub_hash h;
    nub_error err;
    if (nub_put_cap(n, b->items[i].wire, b->items[i].len, h, &err)) return fail("put_cap", &err);
  }
  return 0;
}

/* The JIT cache at work: every warm invoke above hit it; evicting before
** each invoke makes every one recompile. */
#define RECOMPILES 200u
static int jit_cache(bench_ctx *c, nub *n, const char *label) {
  const uint64_t args[4] = {20, 22, 0, 0};
  struct nub_kernel_stats before, after;
  nub_invocation_result r;
  nub_error err;
  if (nub_kernel_stats(n, &before, &err)) return fail("kernel_stats", &err);
  for (uint32_t i = 0; i < RECOMPILES; i++) {
    if (nub_evict_jit(n, &err)) return fail("evict", &err);
    uint64_t t0 = bench_now_ns();
    if (nub_invoke(n, c->add.items[c->add.instance].hash, 0, args, 1000, &r, &err))
      return fail("invoke", &err);
    c->samples[i] = bench_now_ns() - t0;
  }
  if (nub_kernel_stats(n, &after, &err)) return fail("kernel_stats", &err);
  printf("  %-28s %llu compile(s) for %llu invocations (%llu cache hits)\n", "jit cache, warm runs",
         (unsigned long long)before.jit_compiles, (unsigned long long)before.invocations,
         (unsigned long long)before.jit_cache_hits);
  print_dist(label, c->samples, RECOMPILES, 0);
  printf("  %-28s %llu compiles for %u more invocations\n", "",
         (unsigned long long)(after.jit_compiles - before.jit_compiles), RECOMPILES);
  return 0;
}

static int round_trips(bench_ctx *c) {
  double raw = 0, med;
  int rc = 1;
  nub *p = open_backend(c, NUB_BACKEND_PROC), *q = NULL;
  if (!p) return 1;
  printf("round trips, %u calls each after %u warm-up calls (engine %s)\n", CALLS, WARMUP,
         nub_engine_name(p));
  if (time_calls(c, p, true, &raw, "raw doorbell ping (proc)", 0) || publish(p, &c->add) ||
      time_calls(c, p, false, &med, "warm invoke (proc)", raw) ||
      jit_cache(c, p, "invoke after evict (proc)"))
    goto out;
  if (!(q = open_backend(c, NUB_BACKEND_INPROC)) || publish(q, &c->add) ||
      time_calls(c, q, false, &med, "warm invoke (inproc)", 0))
    goto out;
  rc = 0;
out:
  nub_close(p);
  nub_close(q);
  return rc;
}

/* PUT_CAPS distinct Data caps of one page. */
static int put_cap_throughput(bench_ctx *c, nub_backend backend, const char *label) {
  uint8_t page[4096];
  uint8_t *wire = NULL;
  size_t len = 0;
  uint64_t total = 0;
  nub *n = open_backend(c, backend);
  int rc = 1;
  if (!n) return 1;
  for (uint32_t i = 0; i < PUT_CAPS; i++) {
    nub_hash h;
    nub_error err;
    memset(page, 0, sizeof page);
    memcpy(page, &i, sizeof i);
    free(wire);
    if (cap_encode_data_alloc(sizeof page, page, sizeof page, &wire, &len, NULL)) goto out;
    uint64_t t0 = bench_now_ns();
    if (nub_put_cap(n, wire, len, h, &err)) { fail("put_cap", &err); goto out; }
    total += bench_now_ns() - t0;
  }
  printf("  %-28s %9.0f caps/s   %7.1f MB/s   (%zu-byte wire)\n", label,
         PUT_CAPS / (total / 1e9), PUT_CAPS * (double)len / (total / 1e3), len);
  rc = 0;
out:
  free(wire);
  nub_close(n);
  return rc;
}

/* nub_lookup of a one-page Data cap: published through the handle (the
** host's copy) and put raw (the guest's directory, copied and hashed). */
#define LOOKUPS 2000u
static int lookups(bench_ctx *c) {
  uint8_t page[4096], buf[8192], *wire[2] = {NULL, NULL};
  size_t len[2], got;
  nub_hash h[2];
  nub_error err;
  int rc = 1;
  nub *n = open_backend(c, NUB_BACKEND_PROC);
  if (!n) return 1;
  for (int k = 0; k < 2; k++) {
    memset(page, 0x5A + k, sizeof page);
    if (cap_encode_data_alloc(sizeof page, page, sizeof page, &wire[k], &len[k], NULL)) goto out;
  }
  if (nub_put_cap(n, wire[0], len[0], h[0], &err)) { fail("put_cap", &err); goto out; }
  if (nub_call_raw(n, NUB_FN_PUT_CAP, wire[1], len[1], h[1], sizeof h[1], &got, &err)) {
    fail("raw put_cap", &err);
    goto out;
  }
  printf("nub_lookup of a %zu-byte Data cap, %u lookups each\n", len[0], LOOKUPS);
  for (int k = 0; k < 2; k++) {
    for (uint32_t i = 0; i < LOOKUPS; i++) {
      size_t l;
      uint64_t t0 = bench_now_ns();
      if (nub_lookup(n, h[k], buf, sizeof buf, &l, &err)) { fail("lookup", &err); goto out; }
      c->samples[i] = bench_now_ns() - t0;
    }
    print_dist(k ? "put raw: guest directory" : "published: host's copy", c->samples, LOOKUPS, 0);
  }
  rc = 0;
out:
  free(wire[0]);
  free(wire[1]);
  nub_close(n);
  return rc;
}

static int cold_start(bench_ctx *c) {
  double guest_ms[COLD_STARTS];
  for (uint32_t i = 0; i < COLD_STARTS; i++) {
    struct timespec gap = {0, COLD_GAP_MS * 1000000L};
    nanosleep(&gap, NULL);
    uint64_t t0 = bench_now_ns(), v;
    nub_error err;
    nub *n = open_backend(c, NUB_BACKEND_PROC);
    if (!n) return 1;
    int rc = nub_smoke(n, &v, &err);
    c->samples[i] = bench_now_ns() - t0;
    struct nub_sandbox_report r;
    nub_sandbox_report(n, &r, NULL);
    guest_ms[i] = r.start_ms;
    nub_close(n);
    if (rc) return fail("smoke", &err);
  }
  double sum = 0;
  for (uint32_t i = 0; i < COLD_STARTS; i++) sum += guest_ms[i];
  printf("cold sandbox start (nub_open to the first smoke reply), %u starts %u ms apart\n",
         COLD_STARTS, COLD_GAP_MS);
  printf("  %-28s median %7.2f ms   best %6.2f ms   spawn to ready %.2f ms (mean)\n", "proc",
         bench_median(c->samples, COLD_STARTS) / 1e6, bench_min(c->samples, COLD_STARTS) / 1e6,
         sum / COLD_STARTS);
  return 0;
}

int bench_invoke(int argc, char **argv) {
  bench_ctx c;
  size_t len;
  cap_error cerr;
  int rc = 1;
  memset(&c, 0, sizeof c);
  nub_options_init(&c.opt);
  c.opt.heap_size = 256u << 20;
  c.opt.io_size = 1u << 20;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) c.opt.engine = argv[++i];
    else return cli_usage_error("bench", "invoke takes [--engine jit|interp]");
  }
  uint8_t *blob = bench_add_blob(&len);
  c.samples = calloc(CALLS, sizeof *c.samples);
  if (!blob || !c.samples || cap_build_generic(blob, len, NULL, 0, &c.add, &cerr)) {
    fprintf(stderr, "bench invoke: cannot build the program\n");
    goto out;
  }
  if (round_trips(&c)) goto out;
  printf("put_cap, %u distinct Data caps\n", PUT_CAPS);
  if (put_cap_throughput(&c, NUB_BACKEND_PROC, "proc") ||
      put_cap_throughput(&c, NUB_BACKEND_INPROC, "inproc") || lookups(&c) || cold_start(&c))
    goto out;
  rc = 0;
out:
  cap_bundle_free(&c.add);
  free(c.samples);
  free(blob);
  return rc;
}
