/*
** nub vectors: run PVM JSON test vectors and report every mismatch.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/util/json.h"
#include "vector.h"

typedef struct tally {
  unsigned passed, failed, not_vectors;
  bool verbose;
  const nub_pvm_engine *engine;
  nub_pvm_profile profile;
  char first_not_vector[512];
} tally;

/* JSON without a "program" member is some other JSON (cap vectors, a
** package file), counted once in the summary; a broken vector is a failure. */
static bool is_vector(const char *text, size_t len) {
  json_doc *doc;
  json_error err;
  bool yes;
  if (json_parse(text, text + len, &doc, &err)) return true;
  yes = json_get(json_root(doc), "program") != NULL;
  json_free(doc);
  return yes;
}

static void run_file(const char *path, tally *t) {
  uint8_t *text;
  size_t len;
  pvm_vector v;
  char why[2048];
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  if (cli_read_file(path, &text, &len)) { t->failed++; return; }
  if (!is_vector((const char *)text, len)) {
    if (!t->not_vectors++) snprintf(t->first_not_vector, sizeof t->first_not_vector, "%s", path);
  } else if (vector_parse((const char *)text, len, &v, why, sizeof why)) {
    printf("FAIL %s: bad vector: %s\n", base, why);
    t->failed++;
  } else {
    v.profile = t->profile;
    if (vector_check(&v, t->engine, why, sizeof why)) {
      printf("FAIL %s: %s\n", v.name[0] ? v.name : base, why);
      t->failed++;
    } else {
      if (t->verbose) printf("ok   %s\n", v.name[0] ? v.name : base);
      t->passed++;
    }
    vector_free(&v);
  }
  free(text);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAX_DEPTH 8

/* The *.json files of dir in name order, then its subdirectories (up to
** MAX_DEPTH levels: w3f-pvm/programs/...). */
static int run_dir(const char *dir, tally *t, int depth) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0;
  if (!d) { fprintf(stderr, "nub vectors: cannot open directory %s\n", dir); return -1; }
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    struct stat st;
    bool json = l >= 6 && !strcmp(e->d_name + l - 5, ".json");
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      char **nn = realloc(names, cap * sizeof *names);
      if (!nn) break;
      names = nn;
    }
    names[n] = malloc(strlen(dir) + l + 2);
    if (!names[n]) break;
    sprintf(names[n], "%s/%s", dir, e->d_name);
    if (json || (depth < MAX_DEPTH && !stat(names[n], &st) && S_ISDIR(st.st_mode))) n++;
    else free(names[n]);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  for (int pass = 0; pass < 2; pass++)          /* files, then subdirectories */
    for (size_t i = 0; i < n; i++) {
      size_t l = strlen(names[i]);
      bool json = l >= 6 && !strcmp(names[i] + l - 5, ".json");
      if (pass == 0 && json) run_file(names[i], t);
      if (pass == 1 && !json && run_dir(names[i], t, depth + 1)) t->failed++;
    }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return 0;
}

static const cli_opt vectors_opts[] = {
  {"engine", 0, "interp|jit", "interp", "engine that runs the vectors"},
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile: numbering, gas model and semantics"},
  {"verbose", 'v', NULL, NULL, "print a line for every vector that passes too"},
  {0}};

const cli_spec cli_vectors_spec = {
  "vectors", "DIR|FILE...", "run PVM JSON test vectors: one line per failure, then \"N passed, M failed\"",
  "A directory is searched for *.json files, subdirectories included (8 levels);\n"
  "JSON that is not a PVM vector is skipped with one line saying how many.\n"
  "Exit code: 0 if none failed and at least one vector ran, 1 otherwise, 2 on a usage error.",
  1, UINT32_MAX / 2, vectors_opts};

int cmd_vectors(int argc, char **argv) {
  tally t = {.engine = &nub_pvm_engine_interp};
  cli_args a;
  int rc = cli_parse(&cli_vectors_spec, argc, argv, &a);
  if (rc) return rc == CLI_HELP ? 0 : rc;
  if (cli_choice(&a, "engine") == 1) t.engine = cli_engine("jit");
  t.verbose = cli_flag(&a, "verbose");
  t.profile = (nub_pvm_profile)cli_choice(&a, "profile");
  for (int i = 0; i < a.npos; i++) {
    struct stat st;
    const char *in = a.pos[i];
    if (stat(in, &st)) { fprintf(stderr, "nub vectors: no such file %s\n", in); t.failed++; continue; }
    if (S_ISDIR(st.st_mode)) { if (run_dir(in, &t, 1)) t.failed++; }
    else run_file(in, &t);
  }
  if (t.not_vectors)
    fprintf(stderr, "nub vectors: skipped %u JSON file%s that %s not PVM vectors (no \"program\" "
            "member), e.g. %s\n", t.not_vectors, t.not_vectors > 1 ? "s" : "",
            t.not_vectors > 1 ? "are" : "is", t.first_not_vector);
  printf("%u passed, %u failed\n", t.passed, t.failed);
  if (!t.passed && !t.failed) fprintf(stderr, "nub vectors: no PVM vector found\n");
  return t.failed || !t.passed ? 1 : 0;
}
