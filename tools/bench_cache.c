/*
** nub bench cache: the guest's memory with the JIT cache bounded by the
** memory budget (docs/abi.md, "The memory budget").  Publishes K Images of
** N add_64 each, invokes them in turn twice over proc, and prints the
** guest's resident memory (/proc/<guest pid>/status) with the cache's
** figures.  Figures only.
**
**   nub bench cache [--images K] [--insns N] [--budget BYTES] [--engine E]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nub/cap.h"
#include "nub/nub.h"

static long guest_status_kb(int pid, const char *key) {
  char path[64], line[256];
  long kb = -1;
  size_t klen = strlen(key);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, klen)) kb = atol(line + klen);
  fclose(f);
  return kb;
}

/* r9 = k (so that every Image differs), then n x "r7 += r8", then halt. */
static int publish(nub *n, uint32_t k, uint64_t insns, uint8_t instance[32], size_t *blob_len,
                   nub_error *err) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob = NULL;
  nub_cap_bundle caps = {0};
  int rc = -1;
  if (!b) return -1;
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 9, 0, 0, k, 0);
  for (uint64_t i = 0; i < insns; i++) nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, blob_len, NULL) ||
      nub_cap_build_generic(PVM_PROFILE_GP07, blob, *blob_len, NULL, 0, &caps, NULL))
    goto out;
  for (uint32_t i = 0; i < caps.count; i++) {
    nub_hash h;
    if (nub_put_cap(n, caps.items[i].wire, caps.items[i].len, h, err)) goto out;
  }
  memcpy(instance, caps.items[caps.instance].hash, 32);
  rc = 0;
out:
  nub_cap_bundle_free(&caps);
  nub_pvm_builder_free(b);
  free(blob);
  return rc;
}

int bench_cache(int argc, char **argv) {
  uint64_t images = 8, insns = 5000000, budget = NUB_DEFAULT_MEMORY_BUDGET;
  nub_options o;
  nub_options_init(&o);
  o.call_timeout_ms = 0;
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--images") && v && cli_parse_u64(v, 1024, &images) && images) i++;
    else if (!strcmp(argv[i], "--insns") && v && cli_parse_u64(v, 20000000, &insns)) i++;
    else if (!strcmp(argv[i], "--budget") && v && cli_parse_u64(v, UINT64_MAX, &budget)) i++;
    else if (!strcmp(argv[i], "--engine") && v) o.engine = argv[++i];
    else return cli_usage_error("bench", "cache takes --images K (1-1024), --insns N (<= 2e7), "
                                         "--budget BYTES, --engine E; got %s", argv[i]);
  }
  o.memory_budget = budget;
  nub *n;
  nub_error err;
  struct nub_sandbox_report rep;
  uint8_t (*inst)[32] = calloc(images, 32);
  size_t blob_len = 0;
  int rc = 1;
  if (!inst) return 1;
  if (nub_open(&o, &n, &err)) {
    fprintf(stderr, "bench cache: open: %s\n", err.msg);
    free(inst);
    return 1;
  }
  if (nub_sandbox_report(n, &rep, &err)) goto fail;
  long start = guest_status_kb(rep.guest_pid, "VmRSS:");
  for (uint32_t k = 0; k < images; k++)
    if (publish(n, k, insns, inst[k], &blob_len, &err)) goto fail;
  long published = guest_status_kb(rep.guest_pid, "VmRSS:");
  printf("JIT cache under a %llu MiB budget (%s): %llu Images of %llu add_64 (%zu-byte blobs), "
         "invoked in turn, twice\n", (unsigned long long)(budget >> 20), nub_engine_name(n),
         (unsigned long long)images, (unsigned long long)insns, blob_len);
  printf("  guest VmRSS at start %8ld KB, with the caps published %8ld KB\n", start, published);
  for (int round = 1; round <= 2; round++) {
    long most = 0;
    for (uint32_t k = 0; k < images; k++) {
      const uint64_t args[4] = {1, 1, 0, 0};
      nub_invocation_result r;
      if (nub_invoke(n, inst[k], 0, args, UINT64_MAX >> 1, &r, &err)) goto fail;
      if (r.exit_reason != NUB_EXIT_HALT || r.return_value != insns + 1) {
        fprintf(stderr, "bench cache: Image %u: exit %u (%u), r7 %llu\n", k, r.exit_reason,
                r.exit_arg, (unsigned long long)r.return_value);
        goto out;
      }
      long kb = guest_status_kb(rep.guest_pid, "VmRSS:");
      if (kb > most) most = kb;
    }
    struct nub_kernel_stats ks;
    if (nub_kernel_stats(n, &ks, &err)) goto fail;
    printf("  round %d: most VmRSS after an invoke %8ld KB; compiles %llu, hits %llu, "
           "evictions %llu; cache %llu programs, %llu MB\n", round, most,
           (unsigned long long)ks.jit_compiles, (unsigned long long)ks.jit_cache_hits,
           (unsigned long long)ks.jit_evictions, (unsigned long long)ks.jit_cache_entries,
           (unsigned long long)(ks.jit_cache_bytes >> 20));
  }
  printf("  guest VmHWM (peak resident) %8ld KB\n", guest_status_kb(rep.guest_pid, "VmHWM:"));
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "bench cache: %s (%s)\n", err.msg, nub_errcode_name(err.code));
out:
  nub_close(n);
  free(inst);
  return rc;
}
