/*
** nub exec: publish a program's caps (built from the program, or the wire
** files of a directory) into a guest kernel, invoke the Instance and print
** the InvocationResult.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "guest_run.h"
#include "nub/cap.h"
#include "nub/nub.h"

static const cli_opt exec_opts[] = {
  {"format", 0, CLI_FORMATS, "auto", "program format: auto takes whichever of SPI (GP A.7) or generic blob (A.2) parses"},
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile the Image declares"},
  {"backend", 0, "proc|inproc", "proc", "proc: the kernel in a locked-down process; inproc: in this process (tests)"},
  {"engine", 0, "jit|interp", "jit", "engine the guest kernel runs"},
  {"endpoint", 0, "KEY", "0", "endpoint key to invoke, 0..255"},
  {"exports", 0, "N", NULL, "endpoints 0..N-1 at the export slots of a nub link program (pcs 0, 5, 10, ...)"},
  {"gas", 0, "N", "1000000000", "initial gas, 0..9223372036854775807"},
  {"data", 0, "HEX", NULL, "argument bytes (SPI only): a Data cap mapped as the argument region, phi7 = its address, phi8 = its length (GP A.7)"},
  {"regs", 0, "A[,B,C,D]", NULL, "phi7..phi10 of the invocation (default: the endpoint's own registers, which --data sets)"},
  {"args", 0, "A[,B,C,D]", NULL, "the older spelling of --regs"},
  {"json", 0, NULL, NULL, "print the result as one JSON object (only JSON on stdout)"},
  {"verbose", 'v', NULL, NULL, "print backend, engine, sandbox report, cap hashes and kernel stats to stderr"},
  {"no-log", 0, NULL, NULL, "do not service the log host call (ecalli 100): it ends the invocation, as in the seed ABI"},
  {0}};

const cli_spec cli_exec_spec = {
  "exec", "FILE|DIR",
  "publish a program as caps (or the caps of a directory) and invoke its Instance in a guest kernel",
  "FILE is a program (built into Data, Image and Instance caps); DIR holds cap\n"
  "wire files (e.g. from nub cap build), one of them an Instance.\n"
  "A kernel error prints its name: exit_arg: 25 (no endpoint with the key: 5).\n"
  "Exit code: 0 when the invocation returned a result (any exit_reason, kernel\n"
  "errors included), 1 if the caps could not be built or published or the\n"
  "guest failed, 2 on a usage error.",
  1, 1, exec_opts};

typedef struct exec_cfg {
  const char *path;
  int format;
  bool json, verbose, no_log;
  nub_options nub;
  uint64_t endpoint, gas, exports;
  uint8_t *data;
  size_t data_len;
  uint64_t regs[4];
  unsigned nregs;
  nub_pvm_profile profile;
} exec_cfg;

static int parse_opts(int argc, char **argv, exec_cfg *o) {
  cli_args a;
  int rc = cli_parse(&cli_exec_spec, argc, argv, &a);
  memset(o, 0, sizeof *o);
  if (rc) return rc;
  nub_options_init(&o->nub);
  o->path = a.pos[0];
  o->format = cli_choice(&a, "format");
  o->profile = (nub_pvm_profile)cli_choice(&a, "profile");
  o->nub.backend = cli_choice(&a, "backend") ? NUB_BACKEND_INPROC : NUB_BACKEND_PROC;
  if (cli_given(&a, "engine")) o->nub.engine = cli_get(&a, "engine");
  o->json = cli_flag(&a, "json");
  o->verbose = cli_flag(&a, "verbose");
  o->no_log = cli_flag(&a, "no-log");
  if ((rc = cli_get_u64(&a, "gas", 0, CLI_MAX_GAS, &o->gas)) ||
      (rc = cli_get_u64(&a, "endpoint", 0, 255, &o->endpoint)))
    return rc;
  if (cli_given(&a, "exports") && (rc = cli_get_u64(&a, "exports", 1, CAP_MAX_ENDPOINTS, &o->exports)))
    return rc;
  if ((rc = cli_get_regs(&a, "exec", o->regs, &o->nregs))) return rc;
  if (cli_given(&a, "data") && (rc = cli_parse_data("exec", cli_get(&a, "data"), &o->data, &o->data_len)))
    return rc;
  return 0;
}

static void print_hash(FILE *f, const char *label, const uint8_t *h) {
  fprintf(f, "%-10s ", label);
  for (int i = 0; i < 32; i++) fprintf(f, "%02x", h[i]);
  fprintf(f, "\n");
}

static void print_result(const exec_cfg *o, const nub_invocation_result *r) {
  static const char *reasons[] = {"halt", "panic", "out-of-gas", "page-fault", "host-call"};
  bool kerr = r->exit_reason == NUB_EXIT_KERNEL_ERROR;
  if (o->json) {
    printf("{\"exit_reason\":%u,\"exit_arg\":%u,", r->exit_reason, r->exit_arg);
    if (kerr) printf("\"kernel_error\":\"%s\",", nub_kernel_error_name(r->exit_arg));
    printf("\"return_value\":%llu,\"gas_remaining\":%llu}\n", (unsigned long long)r->return_value,
           (unsigned long long)r->gas_remaining);
    return;
  }
  const char *name = r->exit_reason < 5 ? reasons[r->exit_reason] : kerr ? "kernel-error" : "?";
  printf("exit_reason:   %u (%s)\n", r->exit_reason, name);
  if (kerr && r->exit_arg == NUB_KERR_ENDPOINT_NOT_FOUND)
    printf("exit_arg:      %u (%s: %llu)\n", r->exit_arg, nub_kernel_error_name(r->exit_arg),
           (unsigned long long)o->endpoint);
  else if (kerr) printf("exit_arg:      %u (%s)\n", r->exit_arg, nub_kernel_error_name(r->exit_arg));
  else printf("exit_arg:      %u (0x%x)\n", r->exit_arg, r->exit_arg);
  printf("return_value:  %llu (0x%llx)\n", (unsigned long long)r->return_value,
         (unsigned long long)r->return_value);
  printf("gas_remaining: %llu\n", (unsigned long long)r->gas_remaining);
}

static void print_verbose(nub *n, const nub_cap_bundle *b) {
  struct nub_kernel_stats ks;
  struct nub_sandbox_report sr;
  fprintf(stderr, "backend    %s\nengine     %s\n", nub_backend_name(n), nub_engine_name(n));
  if (!nub_sandbox_report(n, &sr, NULL)) nub_sandbox_print(&sr, stderr);
  for (uint32_t i = 0; i < b->count; i++)
    print_hash(stderr, nub_cap_kind_name(b->items[i].kind), b->items[i].hash);
  if (!nub_kernel_stats(n, &ks, NULL))
    fprintf(stderr, "kernel     %llu caps, %llu invocations, %llu compiles\n",
            (unsigned long long)ks.caps_total, (unsigned long long)ks.invocations,
            (unsigned long long)ks.jit_compiles);
}

static void print_log(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  guest_log_print(ud, level, (const char *)msg, len);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, decoded as a cap (sorted by name); exactly
** one must be an Instance. */
static int load_dir(const char *dir, nub_cap_bundle *b) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL, path[4096];
  size_t n = 0, cap = 0;
  int rc = 1;
  uint32_t instances = 0;
  if (!d) { fprintf(stderr, "nub exec: cannot open directory %s\n", dir); return 1; }
  while ((e = readdir(d))) {
    struct stat st;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
    if (n == cap) {
      char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
      if (!nn) goto oom;
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) goto oom;
    n++;
  }
  if (n) qsort(names, n, sizeof *names, by_name);
  if (!(b->items = calloc(n ? n : 1, sizeof *b->items))) goto oom;
  for (size_t i = 0; i < n; i++) {
    nub_cap_item *it = &b->items[b->count];
    nub_cap_view v;
    nub_cap_error err;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (cli_read_file(path, &it->wire, &it->len)) goto out;
    b->count++;
    if (nub_cap_decode(it->wire, it->wire + it->len, &v, &err) || nub_cap_hash(&v, it->hash, &err)) {
      cli_cap_error("exec", path, &err);
      goto out;
    }
    it->kind = v.kind;
    if (v.kind == CAP_INSTANCE) { b->instance = b->count - 1; instances++; }
    if (v.kind == CAP_IMAGE) b->image = b->count - 1;
  }
  if (instances != 1) {
    fprintf(stderr, "nub exec: %s holds %u Instance caps among %u files; it needs exactly one\n",
            dir, instances, b->count);
    goto out;
  }
  rc = 0;
  goto out;
oom:
  fprintf(stderr, "nub exec: %s: out of memory\n", dir);
out:
  closedir(d);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

/* phi7..phi10 of the invoked endpoint (an SPI program's argument pointer
** and length); zero when the Image is not among the caps. */
static void endpoint_regs(const nub_cap_bundle *b, uint8_t key, uint64_t args[4]) {
  nub_cap_view inst, im;
  nub_cap_endpoint ep;
  nub_cap_item *it = &b->items[b->instance];
  if (nub_cap_decode(it->wire, it->wire + it->len, &inst, NULL)) return;
  for (uint32_t i = 0; i < b->count; i++) {
    if (b->items[i].kind != CAP_IMAGE || memcmp(b->items[i].hash, inst.instance.image_hash, CAP_HASH_SIZE))
      continue;
    if (!nub_cap_decode(b->items[i].wire, b->items[i].wire + b->items[i].len, &im, NULL) &&
        nub_cap_image_find_endpoint(&im.image, key, &ep))
      memcpy(args, &ep.regs[7], 4 * sizeof args[0]);
  }
}

int cmd_exec(int argc, char **argv) {
  exec_cfg o;
  nub_cap_bundle b = {0};
  nub *n = NULL;
  nub_error err;
  nub_invocation_result r;
  uint64_t args[4] = {0};
  struct stat st;
  int rc = parse_opts(argc, argv, &o);
  if (rc) { free(o.data); return rc == CLI_HELP ? 0 : rc; }
  rc = 1;
  if (!stat(o.path, &st) && S_ISDIR(st.st_mode)) {
    if (o.data || o.exports) {
      rc = cli_usage_error("exec", "--data builds the argument region of a program; the caps of "
                           "%s are already built (use --regs; --exports is for a program)", o.path);
      goto out;
    }
    if (load_dir(o.path, &b)) goto out;
  } else if ((rc = cli_build_caps("exec", o.path, o.format, o.profile, o.data, o.data_len,
                                   (uint32_t)o.exports, &b))) {
    goto out;
  }
  rc = 1;
  endpoint_regs(&b, (uint8_t)o.endpoint, args);
  memcpy(args, o.regs, o.nregs * sizeof o.regs[0]);
  if (nub_open(&o.nub, &n, &err)) goto fail;
  for (uint32_t i = 0; i < b.count; i++) {
    nub_hash h;
    if (nub_put_cap(n, b.items[i].wire, b.items[i].len, h, &err)) goto fail;
  }
  if (o.no_log) {
    if (nub_invoke(n, b.items[b.instance].hash, (uint32_t)o.endpoint, args, o.gas, &r, &err))
      goto fail;
  } else {
    uint32_t dropped;
    /* log lines go to stderr when stdout carries JSON */
    if (nub_invoke_logged(n, b.items[b.instance].hash, (uint32_t)o.endpoint, args, o.gas, &r,
                          print_log, o.json ? stderr : stdout, &dropped, &err))
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
  nub_cap_bundle_free(&b);
  free(o.data);
  return rc;
}
