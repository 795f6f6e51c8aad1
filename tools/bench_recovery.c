/*
** nub bench recovery: what replacing a dead guest costs over `proc`.
** Prints figures only (docs/sandbox.md, "Recovery"):
**   - an empty guest: the failing call (death noticed, new guest started),
**   - N small caps (default 100 000): publication, then the failing call
**     that restarts the guest and re-publishes them all, and the rate,
**   - one large Data cap (default 256 MiB): the same.
** The guest is killed with SIGKILL from outside while idle; the next call
** notices, fails with NUB_ERR_GUEST_DIED and recovers before returning.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../bench/bench.h"
#include "cli.h"
#include "nub/cap.h"
#include "nub/nub.h"

#define ROUNDS 3u              /* kills per case; the median is printed */

static int fail(const char *what, const nub_error *err) {
  fprintf(stderr, "bench recovery: %s: %s (%s)\n", what, err->msg, nub_errcode_name(err->code));
  return 1;
}

/* Kill the guest, time the call that notices; it must fail with
** GUEST_DIED and leave a guest holding every cap. */
static int time_recovery(nub *n, uint64_t *ns) {
  struct nub_sandbox_report r;
  nub_error err;
  uint64_t v;
  if (nub_sandbox_report(n, &r, &err)) return fail("report", &err);
  if (kill(r.guest_pid, SIGKILL)) { perror("bench recovery: kill"); return 1; }
  uint64_t t0 = bench_now_ns();
  int rc = nub_smoke(n, &v, &err);
  *ns = bench_now_ns() - t0;
  if (rc != NUB_ERR_GUEST_DIED) {
    fprintf(stderr, "bench recovery: the call after a kill returned %s: %s\n",
            nub_errcode_name(rc), rc ? err.msg : "(no error)");   /* err: failure only */
    return 1;
  }
  if (!strstr(err.msg, "re-published")) return fail("recovery", &err);
  return 0;
}

static int median_recovery(nub *n, double *ms) {
  uint64_t s[ROUNDS];
  for (uint32_t i = 0; i < ROUNDS; i++)
    if (time_recovery(n, &s[i])) return 1;
  *ms = (double)bench_median(s, ROUNDS) / 1e6;
  return 0;
}

/* Every cap is back: count them in the guest, look a few up. */
static int check_back(nub *n, uint64_t want, const nub_hash *sample, size_t nsample) {
  struct nub_kernel_stats ks;
  nub_error err;
  if (nub_kernel_stats(n, &ks, &err)) return fail("kernel_stats", &err);
  if (ks.caps_total != want) {
    fprintf(stderr, "bench recovery: %llu caps in the guest, %llu published\n",
            (unsigned long long)ks.caps_total, (unsigned long long)want);
    return 1;
  }
  for (size_t i = 0; i < nsample; i++) {
    size_t len;
    int rc = nub_lookup(n, sample[i], NULL, 0, &len, &err);
    if (rc != NUB_ERR_TOO_LARGE) return fail("lookup after recovery", &err);
  }
  return 0;
}

static nub *open_proc(const nub_options *base, size_t heap, size_t io) {
  nub_options o = *base;
  nub *n;
  nub_error err;
  o.heap_size = heap;
  o.io_size = io;
  if (nub_open(&o, &n, &err)) { fail("open", &err); return NULL; }
  return n;
}

/* count Data caps with no pages and distinct sizes: 17-byte wires whose
** hashes cost a few compressions, so publication is mostly the call. */
static int small_caps(const nub_options *opt, uint32_t count) {
  nub *n = open_proc(opt, 1u << 30, 8u << 20);
  nub_hash sample[4];
  int rc = 1;
  double ms;
  if (!n) return 1;
  uint64_t t0 = bench_now_ns();
  size_t bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *wire;
    size_t len;
    nub_hash h;
    nub_error err;
    if (nub_cap_encode_data_alloc(4096ull * (i + 1), NULL, 0, &wire, &len, NULL)) {
      fprintf(stderr, "bench recovery: cannot encode cap %u\n", i);
      goto out;
    }
    bytes += len;
    int prc = nub_put_cap(n, wire, len, h, &err);
    free(wire);
    if (prc) { fail("put_cap", &err); goto out; }
    if (i % (count / 4 + 1) == 0 && i / (count / 4 + 1) < 4) memcpy(sample[i / (count / 4 + 1)], h, sizeof h);
  }
  double put_s = (double)(bench_now_ns() - t0) / 1e9;
  printf("  %-30s %8.0f ms   %9.0f caps/s   (%u caps, %zu wire bytes)\n", "publish (put_cap each)",
         put_s * 1e3, count / put_s, count, bytes);
  if (median_recovery(n, &ms) || check_back(n, count, sample, 4)) goto out;
  printf("  %-30s %8.1f ms   %9.0f caps/s   (median of %u kills)\n", "kill -> failing call returns",
         ms, count / (ms / 1e3), ROUNDS);
  rc = 0;
out:
  nub_close(n);
  return rc;
}

/* One Data cap of mib MiB whose every page is non-zero. */
static int large_cap(const nub_options *opt, uint32_t mib) {
  size_t size = (size_t)mib << 20;
  uint8_t *bytes = malloc(size), *wire = NULL;
  size_t len;
  nub *n = NULL;
  nub_hash h;
  nub_error err;
  int rc = 1;
  double ms;
  if (!bytes) { fprintf(stderr, "bench recovery: no memory for %u MiB\n", mib); return 1; }
  for (size_t i = 0; i < size; i += 64) bytes[i] = (uint8_t)(i >> 12 | 1);
  if (nub_cap_encode_data_alloc(size, bytes, size, &wire, &len, NULL)) {
    fprintf(stderr, "bench recovery: cannot encode the %u MiB cap\n", mib);
    goto out;
  }
  nub_options slow = *opt;
  slow.call_timeout_ms = 0;      /* the guest hashes the whole cap once: seconds */
  if (!(n = open_proc(&slow, 2 * size + (64u << 20), len + (1u << 20)))) goto out;
  uint64_t t0 = bench_now_ns();
  if (nub_put_cap(n, wire, len, h, &err)) { fail("put_cap", &err); goto out; }
  double put_ms = (double)(bench_now_ns() - t0) / 1e6;
  printf("  %-30s %8.0f ms   %9.1f MB/s   (%zu-byte wire)\n", "publish (put_cap)", put_ms,
         len / (put_ms * 1e3), len);
  if (median_recovery(n, &ms) || check_back(n, 1, &h, 1)) goto out;
  printf("  %-30s %8.1f ms   %9.1f MB/s   (median of %u kills)\n", "kill -> failing call returns",
         ms, len / (ms * 1e3), ROUNDS);
  rc = 0;
out:
  nub_close(n);
  free(wire);
  free(bytes);
  return rc;
}

static int empty_guest(const nub_options *opt) {
  nub *n = open_proc(opt, 64u << 20, 1u << 20);
  double ms;
  int rc = 1;
  if (!n) return 1;
  if (!median_recovery(n, &ms)) {
    printf("  %-30s %8.1f ms   (median of %u kills)\n", "kill -> failing call returns", ms,
           ROUNDS);
    rc = 0;
  }
  nub_close(n);
  return rc;
}

int bench_recovery(int argc, char **argv) {
  nub_options opt;
  uint32_t caps = 100000, mib = 256;
  nub_options_init(&opt);
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) opt.engine = argv[++i];
    else if (!strcmp(argv[i], "--caps") && i + 1 < argc) caps = (uint32_t)strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--large-mib") && i + 1 < argc) mib = (uint32_t)strtoul(argv[++i], NULL, 0);
    else return cli_usage_error("bench", "recovery takes [--caps N] [--large-mib M] [--engine E]");
  }
  if (!caps || caps > (1u << 20) || !mib || mib > 4096)
    return cli_usage_error("bench", "recovery: --caps in [1, 2^20], --large-mib in [1, 4096]");
  printf("recovery over proc: SIGKILL the idle guest, time the next call\n");
  printf("empty guest\n");
  if (empty_guest(&opt)) return 1;
  printf("%u small caps\n", caps);
  if (small_caps(&opt, caps)) return 1;
  printf("one %u MiB Data cap\n", mib);
  return large_cap(&opt, mib);
}
