/*
** nub gas: the gas cost of every basic block of a program under a
** profile's cost model (docs/gas.md), and a check against the
** "block-gas-costs" of a test vector.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/util/json.h"
#include "cli.h"
#include "vector.h"

#define MAX_CHECKS 16

typedef struct gas_opts {
  const char *file;
  const char *checks[MAX_CHECKS];
  int nchecks;
  nub_pvm_profile profile;
  bool spi, json;
} gas_opts;

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* A vector (or integration) JSON file: its "program" bytes and, when
** present, its "block-gas-costs". */
typedef struct json_program {
  json_doc *doc;
  uint8_t *program;
  size_t len;
  const json_value *costs;
} json_program;

static int read_json_program(const char *path, json_program *jp) {
  uint8_t *text;
  size_t len;
  json_error jerr;
  memset(jp, 0, sizeof *jp);
  if (cli_read_file(path, &text, &len)) return 1;
  int rc = json_parse((const char *)text, (const char *)text + len, &jp->doc, &jerr);
  free(text);
  if (rc) {
    fprintf(stderr, "nub gas: %s: JSON error at line %zu column %zu: %s\n", path, jerr.line,
            jerr.column, jerr.msg);
    return 1;
  }
  const json_value *root = json_root(jp->doc), *prog = json_get(root, "program");
  if (!prog || prog->type != JSON_ARRAY) {
    fprintf(stderr, "nub gas: %s: no \"program\" array\n", path);
    return 1;
  }
  jp->program = malloc(prog->count ? prog->count : 1);
  if (!jp->program) { fprintf(stderr, "nub gas: out of memory\n"); return 1; }
  size_t i = 0;
  for (const json_value *e = prog->child; e; e = e->next, i++) {
    uint64_t b;
    if (!json_to_u64(e, &b) || b > 255) {
      fprintf(stderr, "nub gas: %s: \"program\"[%zu] at offset %zu is not a byte\n", path, i,
              e->offset);
      return 1;
    }
    jp->program[i] = (uint8_t)b;
  }
  jp->len = prog->count;
  jp->costs = json_get(root, "block-gas-costs");
  if (jp->costs && jp->costs->type != JSON_OBJECT) {
    fprintf(stderr, "nub gas: %s: \"block-gas-costs\" is not an object\n", path);
    return 1;
  }
  return 0;
}

static void free_json_program(json_program *jp) {
  free(jp->program);
  json_free(jp->doc);
}

int cli_read_json_program(const char *path, uint8_t **program, size_t *len) {
  json_program jp;
  if (read_json_program(path, &jp)) { free_json_program(&jp); return 1; }
  *program = jp.program;
  *len = jp.len;
  jp.program = NULL;
  free_json_program(&jp);
  return 0;
}

static int load(const gas_opts *o, const char *path, const uint8_t *bytes, size_t len,
                nub_pvm_program **prog) {
  nub_pvm_error err;
  nub_pvm_spi spi;
  if (o->spi) {
    if (nub_pvm_spi_parse(bytes, bytes + len, &spi, &err)) goto fail;
    bytes = spi.code_blob;
    len = spi.code_blob_len;
  }
  if (nub_pvm_program_load(o->profile, bytes, len, prog, &err)) goto fail;
  return 0;
fail:
  fprintf(stderr, "nub gas: %s: %s (%s, offset %llu)\n", path, err.msg,
          nub_pvm_errcode_name(err.code), (unsigned long long)err.offset);
  return 1;
}

static void list_blocks(const gas_opts *o, const nub_pvm_program *prog) {
  uint32_t cur = 0, pc, cost, n = 0;
  uint64_t total = 0;
  bool basic;
  if (o->json) printf("{\"profile\": \"%s\", \"blocks\": [", nub_pvm_profile_name(o->profile));
  while (nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic)) {
    if (!basic) continue;
    if (o->json) printf("%s\n  {\"pc\": %u, \"cost\": %u}", n ? "," : "", pc, cost);
    else printf("%u %u\n", pc, cost);
    n++;
    total += cost;
  }
  if (o->json) printf("\n], \"count\": %u, \"total\": %llu}\n", n, (unsigned long long)total);
}

typedef struct diff_out { const char *path; } diff_out;

static void print_diff(void *ud, const char *msg) {
  printf("%s: %s\n", ((diff_out *)ud)->path, msg);
}

/* Load FILE: a vector JSON file's "program", else the file's bytes. */
static int load_file(const gas_opts *o, const char *path, nub_pvm_program **prog) {
  uint8_t *bytes;
  size_t len;
  int rc;
  if (ends_with(path, ".json")) {
    json_program jp;
    rc = read_json_program(path, &jp) || load(o, path, jp.program, jp.len, prog);
    free_json_program(&jp);
    return rc;
  }
  if (cli_read_file(path, &bytes, &len)) return 1;
  rc = load(o, path, bytes, len, prog);
  free(bytes);
  return rc;
}

typedef struct tally { unsigned total, equal, diffs; } tally;

/* One --check file against FILE, or against its own program. */
static int check_one(const gas_opts *o, const char *path, tally *t) {
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  json_program jp;
  nub_pvm_program *prog = NULL;
  vec_block_cost *want = NULL;
  size_t nwant;
  char why[200];
  int rc = 1;
  if (read_json_program(path, &jp)) goto fail;
  if (o->file ? load_file(o, o->file, &prog) : load(o, path, jp.program, jp.len, &prog)) goto fail;
  if (!jp.costs) {
    fprintf(stderr, "nub gas: %s: no \"block-gas-costs\" to check against\n", path);
    goto fail;
  }
  if (vector_block_costs(jp.costs, &want, &nwant, why, sizeof why)) {
    fprintf(stderr, "nub gas: %s: %s\n", path, why);
    goto fail;
  }
  diff_out out = {base};
  unsigned d, eq = vector_compare_block_costs(prog, want, nwant, print_diff, &out, &d);
  printf("%s: %u of %zu block costs equal\n", base, eq, nwant);
  t->total += (unsigned)nwant;
  t->equal += eq;
  t->diffs += d;
  rc = 0;
fail:
  free(want);
  nub_pvm_program_free(prog);
  free_json_program(&jp);
  return rc;
}

static int run_checks(const gas_opts *o) {
  tally t = {0, 0, 0};
  for (int i = 0; i < o->nchecks; i++)
    if (check_one(o, o->checks[i], &t)) return 1;
  if (o->nchecks > 1) printf("total: %u of %u block costs equal\n", t.equal, t.total);
  return t.diffs || t.equal != t.total ? 1 : 0;
}

static const cli_opt gas_opts_table[] = {
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile: numbering and gas model"},
  {"format", 0, "generic|spi", "generic", "FILE is a generic blob or an SPI program"},
  {"json", 0, NULL, NULL, "print the blocks as JSON"},
  {"check", 0, "VECTOR.json", NULL, "compare with the vector's block-gas-costs (repeatable)"},
  {0}};

const cli_spec cli_gas_spec = {
  "gas", "[FILE]", "gas cost of every basic block (docs/gas.md)",
  "FILE may be a vector JSON file (its \"program\" is used).  With --check, the\n"
  "program comes from FILE or from each vector; every difference is printed,\n"
  "then \"N of M block costs equal\".  Exit code 1 if any differs.",
  0, 1, gas_opts_table};

int cmd_gas(int argc, char **argv) {
  gas_opts o = {.profile = PVM_PROFILE_GP07};
  char name[32];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL, *eq;
    if (cli_is_help(a)) { cli_help(&cli_gas_spec, stdout); return 0; }
    if (!strncmp(a, "--", 2) && (eq = strchr(a, '=')) && (size_t)(eq - a) < sizeof name) {
      memcpy(name, a, (size_t)(eq - a));       /* --opt=value */
      name[eq - a] = 0;
      a = name, v = eq + 1;
    }
    bool takes = !strcmp(a, "--format") || !strcmp(a, "--profile") || !strcmp(a, "--check");
    if (takes && !v && !(v = i + 1 < argc ? argv[++i] : NULL))
      return cli_usage_error("gas", "%s needs a value", a);
    if (!takes && v) return cli_usage_error("gas", "%s takes no value", a);
    if (!strcmp(a, "--format")) {
      if (!strcmp(v, "spi")) o.spi = true;
      else if (strcmp(v, "generic"))
        return cli_usage_error("gas", "--format must be generic or spi, not '%s'", v);
    } else if (!strcmp(a, "--profile")) {
      if (!cli_profile("gas", v, &o.profile)) return 2;
    } else if (!strcmp(a, "--check")) {
      if (o.nchecks == MAX_CHECKS)
        return cli_usage_error("gas", "at most %d --check files", MAX_CHECKS);
      o.checks[o.nchecks++] = v;
    } else if (!strcmp(a, "--json")) {
      o.json = true;
    } else if (a[0] != '-' && !o.file) {
      o.file = a;
    } else {
      return cli_usage_error("gas", "unexpected argument %s", a);
    }
  }
  if (o.nchecks) {
    if (o.json) return cli_usage_error("gas", "--json lists blocks; it does not go with --check");
    if (o.file && o.nchecks > 1) return cli_usage_error("gas", "one --check file per program");
    return run_checks(&o);
  }
  if (!o.file) return cli_usage_error("gas", "no program file");
  nub_pvm_program *prog = NULL;
  if (load_file(&o, o.file, &prog)) return 1;
  list_blocks(&o, prog);
  nub_pvm_program_free(prog);
  return 0;
}
