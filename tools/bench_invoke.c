/*
** nub bench invoke: what a call costs through each backend.  Prints
** figures only (docs/sandbox.md, "Costs"):
**   - the raw doorbell round trip of the proc channel (no frame, no work),
**   - warm invoke round trips of a trivial program, proc and inproc,
**   - the JIT cache: compiles vs invocations, and invokes that recompile,
**   - put_cap throughput, proc and inproc,
**   - put_cap of 1 MiB Data caps and of one 1 GiB Data cap, proc and
**     inproc (--put: the put_cap figures alone),
**   - nub_lookup from the host's copy and from the guest's directory,
**   - cold sandbox start: nub_open to the first smoke reply,
**   - memory set-up: invokes whose caps map 4 GiB (docs/architecture.md,
**     "Memory of an invocation").
*/
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
  nub_cap_bundle add;            /* the trivial program's Image and Instance */
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

static int publish(nub *n, const nub_cap_bundle *b) {
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
    if (nub_cap_encode_data_alloc(sizeof page, page, sizeof page, &wire, &len, NULL)) goto out;
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

/* ---- put_cap of large Data caps (issue 16, hashing) ----
** The whole path over proc: the copy into the request buffer, the guest's
** copy into its heap, decode, hash, and the host's record of the wire;
** the same caps decoded and hashed in this process give hashing's share. */
/* 32 caps moved the mean by 15% between runs of the same build on an idle
** machine; 128 (a 512 MiB heap: page image and record per cap) keep the
** median within a few percent */
#define MIB_CAPS 128u
#define GIB (1ull << 30)

/* CPU seconds of this process (every thread) and of the guest process
** (its CPU clock, in ns; /proc/<pid>/stat in clock ticks where that clock
** is not ours to read; -1 if neither): on a shared machine the wall clock
** mostly measures waiting for a core.  guest_cpu_tick says which. */
static double host_cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static bool guest_cpu_tick;

static double guest_cpu_s(nub *n) {
  struct nub_sandbox_report r;
  struct timespec t;
  clockid_t clock;
  char path[64], buf[1024];
  unsigned long user, sys;
  if (nub_sandbox_report(n, &r, NULL) || !r.isolated) return -1;
  if (!clock_getcpuclockid((pid_t)r.guest_pid, &clock) && !clock_gettime(clock, &t)) {
    guest_cpu_tick = false;
    return (double)t.tv_sec + t.tv_nsec / 1e9;
  }
  guest_cpu_tick = true;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)r.guest_pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[got] = 0;
  const char *p = strrchr(buf, ')');     /* the name may hold spaces */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &user, &sys) != 2)
    return -1;
  return (double)(user + sys) / (double)sysconf(_SC_CLK_TCK);
}

/* A dense Data cap of size bytes, every page distinct and non-zero. */
static uint8_t *dense_data_wire(uint64_t size, uint32_t seed, size_t *len) {
  uint8_t *bytes = malloc(size), *wire = NULL;
  if (!bytes) return NULL;
  uint64_t s = 0x9E3779B97F4A7C15ull ^ seed;
  for (uint64_t i = 0; i < size; i += 8) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    memcpy(bytes + i, &s, 8);
  }
  if (nub_cap_encode_data_alloc(size, bytes, size, &wire, len, NULL)) wire = NULL;
  free(bytes);
  return wire;
}

static nub *open_large(const bench_ctx *c, nub_backend backend, size_t wire_len, size_t heap) {
  nub_options o = c->opt;
  nub *n;
  nub_error err;
  o.backend = backend;
  o.io_size = (wire_len + (64u << 10) + 4095) & ~(size_t)4095;
  o.heap_size = heap;
  o.call_timeout_ms = 600000;      /* the portable hash of 1 GiB takes most of a minute */
  if (nub_open(&o, &n, &err)) {
    printf("  (skipped: no %s handle with a %zu MiB heap and %zu MiB buffers: %s)\n",
           backend == NUB_BACKEND_PROC ? "proc" : "inproc", heap >> 20, o.io_size >> 20, err.msg);
    return NULL;
  }
  return n;
}

/* MIB_CAPS distinct 1 MiB Data caps, then (proc and inproc) one of 1 GiB
** timed from nub_put_cap's call to its return. */
static int put_cap_large(const bench_ctx *c, nub_backend backend) {
  const char *name = backend == NUB_BACKEND_PROC ? "proc" : "inproc";
  size_t len = 0, heap;
  uint64_t total = 0, hash_total = 0, best = UINT64_MAX, t0, t, each[MIB_CAPS];
  double host_cpu = 0, guest_cpu = 0, c0 = 0, g0 = 0;
  char label[64];
  nub_hash h;
  nub_error err;
  nub *n = NULL;
  uint8_t *wire = NULL;
  int rc = 1;
  printf("put_cap, large distinct Data caps (%s)\n", name);
  for (uint32_t i = 0; i < MIB_CAPS; i++) {
    if (!(wire = dense_data_wire(1u << 20, i, &len))) goto oom;
    if (!n && !(n = open_large(c, backend, len, 512u << 20))) { free(wire); return 0; }
    g0 = guest_cpu_s(n), c0 = host_cpu_s();   /* reading the guest's is not the put's */
    t0 = bench_now_ns();
    if (nub_put_cap(n, wire, len, h, &err)) { fail("put_cap", &err); goto out; }
    total += each[i] = t = bench_now_ns() - t0;
    host_cpu += host_cpu_s() - c0;
    guest_cpu += guest_cpu_s(n) - g0;
    if (t < best) best = t;
    /* the same cap decoded and hashed here, without the copies */
    t0 = bench_now_ns();
    if (nub_cap_hash_wire(wire, wire + len, h, NULL)) {
      fprintf(stderr, "bench invoke: the 1 MiB Data cap does not hash\n");
      goto out;
    }
    hash_total += bench_now_ns() - t0;
    free(wire);
    wire = NULL;
  }
  snprintf(label, sizeof label, "1 MiB (%s)", name);
  printf("  %-28s %9.1f caps/s   %7.1f MB/s   (%zu-byte wire, %u caps)\n", label,
         MIB_CAPS / (total / 1e9), MIB_CAPS * (double)len / (total / 1e3), len, MIB_CAPS);
  /* on a shared machine the mean is mostly waiting for a core */
  snprintf(label, sizeof label, "1 MiB (%s), best", name);
  printf("  %-28s %9.2f ms      %7.1f MB/s   (the fastest of the %u)\n", label,
         best / 1e6, (double)len / (best / 1e3), MIB_CAPS);
  snprintf(label, sizeof label, "1 MiB (%s), median", name);
  printf("  %-28s %9.2f ms      %7.1f MB/s   (p90 %.2f ms)\n", label,
         bench_median(each, MIB_CAPS) / 1e6, (double)len / (bench_median(each, MIB_CAPS) / 1e3),
         bench_percentile(each, MIB_CAPS, 90) / 1e6);
  snprintf(label, sizeof label, "1 MiB (%s), CPU", name);
  if (backend == NUB_BACKEND_PROC)
    printf("  %-28s %9.2f ms host  %5.2f ms guest   (CPU per cap%s)\n", label,
           host_cpu * 1e3 / MIB_CAPS, guest_cpu * 1e3 / MIB_CAPS,
           guest_cpu_tick ? "; the guest's in clock ticks" : "");
  else
    printf("  %-28s %9.2f ms   (CPU per cap, the kernel's included)\n", label,
           host_cpu * 1e3 / MIB_CAPS);
  printf("  %-28s %9.1f caps/s   %7.1f MB/s   (the share of put_cap that is hashing)\n",
         "1 MiB decode + hash alone", MIB_CAPS / (hash_total / 1e9),
         MIB_CAPS * (double)len / (hash_total / 1e3));
  nub_close(n);
  n = NULL;
  if (!(wire = dense_data_wire(GIB, 0, &len))) {
    printf("  (1 GiB skipped: no memory for the cap and its wire)\n");
    return 0;
  }
  /* the heap holds the cap, stored once (its page image and a record of
  ** 1 MiB: docs/wire.md, "Stored once"), and the directory */
  heap = NUB_DEFAULT_HEAP_SIZE;
  if (heap < len + (256u << 20)) {
    printf("  (the default %llu MiB guest heap cannot hold the %zu-byte cap: this handle gets"
           " %zu MiB)\n", (unsigned long long)(NUB_DEFAULT_HEAP_SIZE >> 20), len,
           (len + (256u << 20)) >> 20);
    heap = (len + (256u << 20) + 4095) & ~(size_t)4095;
  }
  if (!(n = open_large(c, backend, len, heap))) { rc = 0; goto out; }
  g0 = guest_cpu_s(n), c0 = host_cpu_s();
  t0 = bench_now_ns();
  if (nub_put_cap(n, wire, len, h, &err)) { fail("put_cap", &err); goto out; }
  total = bench_now_ns() - t0;
  snprintf(label, sizeof label, "1 GiB (%s)", name);
  printf("  %-28s %9.2f s        %7.1f MB/s   (%zu-byte wire, one cap)\n", label,
         total / 1e9, (double)len / (total / 1e3), len);
  snprintf(label, sizeof label, "1 GiB (%s), CPU", name);
  if (backend == NUB_BACKEND_PROC)
    printf("  %-28s %9.2f s host   %5.2f s guest\n", label, host_cpu_s() - c0,
           guest_cpu_s(n) - g0);
  else
    printf("  %-28s %9.2f s\n", label, host_cpu_s() - c0);
  rc = 0;
out:
  free(wire);
  nub_close(n);
  return rc;
oom:
  fprintf(stderr, "bench invoke: cannot build a large Data cap\n");
  goto out;
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
    if (nub_cap_encode_data_alloc(sizeof page, page, sizeof page, &wire[k], &len[k], NULL)) goto out;
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

/* ---- memory set-up ---- */

#define MEM_CALLS 20u
#define BIG_DATA (16u << 20)
#define BIG_MAPPINGS 255u

static int put_spec(nub *n, const nub_cap_spec *s, nub_hash h) {
  uint8_t *wire;
  size_t len;
  nub_error err;
  if (nub_cap_encode_alloc(s, &wire, &len, NULL)) return 1;
  int rc = nub_put_cap(n, wire, len, h, &err);
  free(wire);
  return rc ? fail("put_cap", &err) : 0;
}

/* An Image of the add program with these mappings, and an Instance of it
** with these overlays; inst receives the Instance hash. */
static int publish_memory(nub *n, const uint8_t *blob, size_t len, const nub_cap_mapping *maps,
                          uint32_t nmaps, const nub_cap_overlay *ovs, uint32_t novs, nub_hash inst) {
  nub_cap_endpoint ep = {0};
  nub_cap_spec s;
  nub_hash image;
  memset(&s, 0, sizeof s);
  s.kind = CAP_IMAGE;
  s.image.profile = PVM_PROFILE_GP07;
  s.image.code = blob;
  s.image.code_len = len;
  s.image.endpoints = &ep;
  s.image.endpoint_count = 1;
  s.image.mappings = maps;
  s.image.mapping_count = nmaps;
  if (put_spec(n, &s, image)) return 1;
  memset(&s, 0, sizeof s);
  s.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(image, &s.instance);
  s.instance.overlays = ovs;
  s.instance.overlay_count = novs;
  return put_spec(n, &s, inst);
}

/* Median of MEM_CALLS invokes of inst with gas. */
static int time_memory(bench_ctx *c, nub *n, const nub_hash inst, uint64_t gas, const char *label) {
  const uint64_t args[4] = {1, 2, 0, 0};
  nub_invocation_result r;
  nub_error err;
  for (uint32_t i = 0; i < MEM_CALLS; i++) {
    uint64_t t0 = bench_now_ns();
    if (nub_invoke(n, inst, 0, args, gas, &r, &err)) return fail("invoke", &err);
    c->samples[i] = bench_now_ns() - t0;
    if (r.exit_reason == NUB_EXIT_KERNEL_ERROR) {
      fprintf(stderr, "bench invoke: %s: kernel error %u\n", label, r.exit_arg);
      return 1;
    }
  }
  printf("  %-44s median %9.3f ms   (exit %u)\n", label,
         bench_median(c->samples, MEM_CALLS) / 1e6, r.exit_reason);
  return 0;
}

static int memory_setup(bench_ctx *c, nub_backend backend, const char *name) {
  nub_options o = c->opt;
  nub *n;
  nub_error err;
  nub_hash data, inst;
  uint8_t *wire = NULL, *bytes = NULL, *blob;
  size_t len, blob_len;
  char label[64];
  int rc = 1;
  o.backend = backend;
  o.heap_size = 256u << 20;
  o.io_size = 32u << 20;
  o.memory_budget = 8ull << 30;    /* the 4 GiB mapping is over the default budget */
  if (nub_open(&o, &n, &err)) return fail("open", &err);
  if (!(blob = bench_add_blob(&blob_len))) goto out;
  /* 4 GiB - 64 KiB read-write, overlaid by an empty Data cap as large */
  nub_cap_mapping all = {0x10000, 0xFFFF0000u, CAP_ACCESS_RW, {0}};
  if (nub_cap_encode_data_alloc(all.size, NULL, 0, &wire, &len, NULL)) goto out;
  if (nub_put_cap(n, wire, len, data, &err)) { fail("put_cap", &err); goto out; }
  nub_cap_overlay ov = {0x10000, {0}};
  memcpy(ov.data, data, sizeof data);
  if (publish_memory(n, blob, blob_len, &all, 1, &ov, 1, inst)) goto out;
  snprintf(label, sizeof label, "4 GiB RW + empty overlay, gas 0 (%s)", name);
  if (time_memory(c, n, inst, 0, label)) goto out;
  /* 255 read-only mappings of one dense 16 MiB Data cap */
  free(wire);
  wire = NULL;
  if (!(bytes = malloc(BIG_DATA))) goto out;
  for (uint32_t i = 0; i < BIG_DATA; i++) bytes[i] = (uint8_t)(i / 4096 * 7 + i % 251 + 1);
  if (nub_cap_encode_data_alloc(BIG_DATA, bytes, BIG_DATA, &wire, &len, NULL)) goto out;
  if (nub_put_cap(n, wire, len, data, &err)) { fail("put_cap", &err); goto out; }
  nub_cap_mapping maps[BIG_MAPPINGS];
  for (uint32_t i = 0; i < BIG_MAPPINGS; i++) {
    maps[i] = (nub_cap_mapping){0x10000 + i * BIG_DATA, BIG_DATA, CAP_ACCESS_RO, {0}};
    memcpy(maps[i].source, data, sizeof data);
  }
  if (publish_memory(n, blob, blob_len, maps, BIG_MAPPINGS, NULL, 0, inst)) goto out;
  snprintf(label, sizeof label, "255 RO x 16 MiB Data, gas 10^9 (%s)", name);
  if (time_memory(c, n, inst, 1000000000ull, label)) goto out;
  rc = 0;
out:
  free(bytes);
  free(wire);
  free(blob);
  nub_close(n);
  return rc;
}

int bench_invoke(int argc, char **argv) {
  bench_ctx c;
  size_t len;
  nub_cap_error cerr;
  bool put_only = false;
  int rc = 1;
  memset(&c, 0, sizeof c);
  nub_options_init(&c.opt);
  c.opt.heap_size = 256u << 20;
  c.opt.io_size = 1u << 20;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) c.opt.engine = argv[++i];
    else if (!strcmp(argv[i], "--put")) put_only = true;
    else return cli_usage_error("bench", "invoke takes [--engine jit|interp] [--put]");
  }
  uint8_t *blob = bench_add_blob(&len);
  c.samples = calloc(CALLS, sizeof *c.samples);
  if (!blob || !c.samples || nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, &c.add, &cerr)) {
    fprintf(stderr, "bench invoke: cannot build the program\n");
    goto out;
  }
  if (!put_only && round_trips(&c)) goto out;
  printf("put_cap, %u distinct Data caps\n", PUT_CAPS);
  if (put_cap_throughput(&c, NUB_BACKEND_PROC, "proc") ||
      put_cap_throughput(&c, NUB_BACKEND_INPROC, "inproc") || (!put_only && lookups(&c)))
    goto out;
  if (put_cap_large(&c, NUB_BACKEND_PROC) || put_cap_large(&c, NUB_BACKEND_INPROC)) goto out;
  if (put_only) { rc = 0; goto out; }
  if (cold_start(&c)) goto out;
  printf("memory set-up: invokes of a 2-instruction program, %u each\n", MEM_CALLS);
  if (memory_setup(&c, NUB_BACKEND_PROC, "proc") || memory_setup(&c, NUB_BACKEND_INPROC, "inproc"))
    goto out;
  rc = 0;
out:
  nub_cap_bundle_free(&c.add);
  free(c.samples);
  free(blob);
  return rc;
}
