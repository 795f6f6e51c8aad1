/*
** nub vectors: run PVM JSON test vectors and report every mismatch.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "vector.h"

typedef struct tally {
  unsigned passed, failed;
  bool verbose;
  const pvm_engine *engine;
  pvm_profile profile;
} tally;

static void run_file(const char *path, tally *t) {
  uint8_t *text;
  size_t len;
  pvm_vector v;
  char why[2048];
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  if (cli_read_file(path, &text, &len)) { t->failed++; return; }
  if (vector_parse((const char *)text, len, &v, why, sizeof why)) {
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

static int run_dir(const char *dir, tally *t) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0;
  if (!d) { fprintf(stderr, "nub vectors: cannot open directory %s\n", dir); return -1; }
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      char **nn = realloc(names, cap * sizeof *names);
      if (!nn) break;
      names = nn;
    }
    names[n] = malloc(strlen(dir) + l + 2);
    if (!names[n]) break;
    sprintf(names[n++], "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) { run_file(names[i], t); free(names[i]); }
  free(names);
  return 0;
}

int cmd_vectors(int argc, char **argv) {
  tally t = {0, 0, false, &pvm_engine_interp, PVM_PROFILE_GP07};
  int inputs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
      if (!(t.engine = cli_engine(argv[++i]))) return 2;
    } else if (!strcmp(argv[i], "--profile") && i + 1 < argc) {
      if (!cli_profile("vectors", argv[++i], &t.profile)) return 2;
    } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
      t.verbose = true;
    } else if (argv[i][0] == '-') {
      return cli_usage_error("vectors", "unknown option %s", argv[i]);
    }
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (!strcmp(argv[i], "--engine") || !strcmp(argv[i], "--profile")) { i++; continue; }
    if (argv[i][0] == '-') continue;
    inputs++;
    if (stat(argv[i], &st)) { fprintf(stderr, "nub vectors: no such file %s\n", argv[i]); t.failed++; continue; }
    if (S_ISDIR(st.st_mode)) { if (run_dir(argv[i], &t)) t.failed++; }
    else run_file(argv[i], &t);
  }
  if (!inputs) return cli_usage_error("vectors", "give a directory or vector files");
  printf("%u passed, %u failed\n", t.passed, t.failed);
  return t.failed ? 1 : 0;
}
