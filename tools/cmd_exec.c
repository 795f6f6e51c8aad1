/*
** nub exec: build caps from a program, publish them into a guest kernel,
** invoke the Instance and print the InvocationResult.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "guest_run.h"
#include "nub/cap.h"
#include "nub/nub.h"

typedef struct exec_opts {
  const char *file;
  bool spi, json, verbose, no_log;
  nub_options nub;
  uint32_t endpoint;
  uint32_t exports;        /* --exports N: endpoints 0..N-1 at pc 5K (nub link) */
  uint64_t args[4];
  uint64_t gas;
  pvm_profile profile;
} exec_opts;

static bool parse_args(const char *s, uint64_t args[4]) {
  char buf[256], *save = NULL;
  int n = 0;
  if (strlen(s) >= sizeof buf) return false;
  strcpy(buf, s);
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n == 4 || !cli_parse_u64(tok, UINT64_MAX, &args[n])) return false;
    n++;
  }
  return n > 0;
}

static int parse_opts(int argc, char **argv, exec_opts *o) {
  memset(o, 0, sizeof *o);
  nub_options_init(&o->nub);
  o->spi = true;
  o->gas = 1000000000;
  o->profile = PVM_PROFILE_GP07;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t x;
    if (!strcmp(a, "--format") && v) {
      if (strcmp(v, "spi") && strcmp(v, "generic")) return cli_usage_error("exec", "--format must be spi or generic");
      o->spi = !strcmp(v, "spi");
      i++;
    } else if (!strcmp(a, "--backend") && v) {
      if (!strcmp(v, "proc")) o->nub.backend = NUB_BACKEND_PROC;
      else if (!strcmp(v, "inproc")) o->nub.backend = NUB_BACKEND_INPROC;
      else return cli_usage_error("exec", "--backend must be proc or inproc");
      i++;
    } else if (!strcmp(a, "--profile") && v) {
      if (!cli_profile("exec", v, &o->profile)) return 2;
      i++;
    } else if (!strcmp(a, "--engine") && v) {
      o->nub.engine = v;
      i++;
    } else if (!strcmp(a, "--endpoint") && v) {
      if (!cli_parse_u64(v, UINT32_MAX, &x)) return cli_usage_error("exec", "bad --endpoint %s", v);
      o->endpoint = (uint32_t)x;
      i++;
    } else if (!strcmp(a, "--exports") && v) {
      if (!cli_parse_u64(v, CAP_MAX_ENDPOINTS, &x) || !x)
        return cli_usage_error("exec", "--exports takes 1..%u", CAP_MAX_ENDPOINTS);
      o->exports = (uint32_t)x;
      i++;
    } else if (!strcmp(a, "--args") && v) {
      if (!parse_args(v, o->args)) return cli_usage_error("exec", "--args takes 1 to 4 comma-separated u64 values");
      i++;
    } else if (!strcmp(a, "--gas") && v) {
      if (!cli_parse_u64(v, UINT64_MAX, &o->gas)) return cli_usage_error("exec", "bad --gas %s", v);
      i++;
    } else if (!strcmp(a, "--json")) {
      o->json = true;
    } else if (!strcmp(a, "--no-log")) {
      o->no_log = true;
    } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
      o->verbose = true;
    } else if (a[0] != '-' && !o->file) {
      o->file = a;
    } else {
      return cli_usage_error("exec", "unexpected argument %s", a);
    }
  }
  if (!o->file) return cli_usage_error("exec", "no program file");
  return 0;
}

static void print_hash(const char *label, const uint8_t *h) {
  printf("%-10s ", label);
  for (int i = 0; i < 32; i++) printf("%02x", h[i]);
  printf("\n");
}

static void print_result(const exec_opts *o, const nub_invocation_result *r) {
  static const char *reasons[] = {"halt", "panic", "out-of-gas", "page-fault", "host-call"};
  if (o->json) {
    printf("{\"exit_reason\":%u,\"exit_arg\":%u,\"return_value\":%llu,\"gas_remaining\":%llu}\n",
           r->exit_reason, r->exit_arg, (unsigned long long)r->return_value,
           (unsigned long long)r->gas_remaining);
    return;
  }
  const char *name = r->exit_reason < 5 ? reasons[r->exit_reason]
                   : r->exit_reason == NUB_EXIT_KERNEL_ERROR ? "kernel-error" : "?";
  printf("exit_reason:   %u (%s)\n", r->exit_reason, name);
  printf("exit_arg:      %u (0x%x)\n", r->exit_arg, r->exit_arg);
  printf("return_value:  %llu (0x%llx)\n", (unsigned long long)r->return_value,
         (unsigned long long)r->return_value);
  printf("gas_remaining: %llu\n", (unsigned long long)r->gas_remaining);
}

static void print_verbose(nub *n, const cap_bundle *b) {
  struct nub_kernel_stats ks;
  struct nub_sandbox_report sr;
  printf("backend    %s\nengine     %s\n", nub_backend_name(n), nub_engine_name(n));
  if (!nub_sandbox_report(n, &sr, NULL)) nub_sandbox_print(&sr, stdout);
  for (uint32_t i = 0; i < b->count; i++) print_hash(cap_kind_name(b->items[i].kind), b->items[i].hash);
  if (!nub_kernel_stats(n, &ks, NULL))
    printf("kernel     %llu caps, %llu invocations, %llu compiles\n",
           (unsigned long long)ks.caps_total, (unsigned long long)ks.invocations,
           (unsigned long long)ks.jit_compiles);
}

static void print_log(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  guest_log_print(ud, level, (const char *)msg, len);
}

static int build_caps(const exec_opts *o, const uint8_t *file, size_t len, cap_bundle *b) {
  cap_error err;
  uint32_t pcs[CAP_MAX_ENDPOINTS];
  for (uint32_t k = 0; k < o->exports; k++) pcs[k] = 5 * k;   /* docs/toolchain.md */
  if (o->exports && !o->spi) {
    fprintf(stderr, "nub exec: --exports needs --format spi\n");
    return 1;
  }
  int rc = o->exports ? cap_build_spi_endpoints(o->profile, file, len, NULL, 0, pcs, o->exports,
                                                b, &err)
         : o->spi ? cap_build_spi(o->profile, file, len, NULL, 0, b, &err)
                  : cap_build_generic(o->profile, file, len, NULL, 0, b, &err);
  if (rc) fprintf(stderr, "nub exec: %s: %s (%s, offset %llu)\n", o->file, err.msg,
                  cap_errcode_name(err.code), (unsigned long long)err.offset);
  return rc;
}

int cmd_exec(int argc, char **argv) {
  exec_opts o;
  uint8_t *file = NULL;
  size_t len;
  cap_bundle b = {0};
  nub *n = NULL;
  nub_error err;
  nub_invocation_result r;
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc;
  rc = 1;
  if (cli_read_file(o.file, &file, &len) || build_caps(&o, file, len, &b)) goto out;
  if (nub_open(&o.nub, &n, &err)) goto fail;
  for (uint32_t i = 0; i < b.count; i++) {
    nub_hash h;
    if (nub_put_cap(n, b.items[i].wire, b.items[i].len, h, &err)) goto fail;
  }
  if (o.no_log) {
    if (nub_invoke(n, b.items[b.instance].hash, o.endpoint, o.args, o.gas, &r, &err)) goto fail;
  } else {
    uint32_t dropped;
    if (nub_invoke_logged(n, b.items[b.instance].hash, o.endpoint, o.args, o.gas, &r, print_log,
                          o.json ? stderr : stdout, &dropped, &err))
      goto fail;
    if (dropped) fprintf(stderr, "nub exec: %u log messages dropped (over %u bytes)\n", dropped,
                         NUB_INVOKE_LOG_MAX);
  }
  if (o.verbose) print_verbose(n, &b);
  print_result(&o, &r);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "nub exec: %s (%s)\n", err.msg, nub_errcode_name(err.code));
out:
  nub_close(n);
  cap_bundle_free(&b);
  free(file);
  return rc;
}
