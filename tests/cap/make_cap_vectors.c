/*
** Writes the capability test vectors: one JSON file per sample cap,
** {"name", "kind", "wire": hex, "hash": hex}; with a second argument also
** the fuzz seeds (the small wires, and a small directory region).
**   make_cap_vectors tests/vectors/caps [fuzz/corpus]
** tests/cap/ssz_check.py recomputes every hash independently.
*/
#include <stdio.h>
#include <stdlib.h>

#include "cap_test_util.h"

static int write_vector(const char *dir, const tu_sample *s) {
  char path[512], *wire, *hash;
  uint8_t h[CAP_HASH_SIZE];
  nub_cap_error err;
  FILE *f;
  if (nub_cap_hash_wire(s->wire, s->wire + s->len, h, &err)) {
    fprintf(stderr, "%s: %s\n", s->name, err.msg);
    return 1;
  }
  snprintf(path, sizeof path, "%s/%s.json", dir, s->name);
  if (!(f = fopen(path, "w"))) {
    perror(path);
    return 1;
  }
  wire = tu_hex(s->wire, s->len);
  hash = tu_hex(h, sizeof h);
  fprintf(f, "{\n  \"name\": \"%s\",\n  \"kind\": \"%s\",\n  \"wire\": \"%s\",\n  \"hash\": \"%s\"\n}\n",
          s->name, nub_cap_kind_name(s->wire[0]), wire, hash);
  free(wire);
  free(hash);
  return fclose(f) != 0;
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!(f = fopen(path, "wb")) || fwrite(p, 1, n, f) != n) {
    perror(path);
    if (f) fclose(f);
    return 1;
  }
  return fclose(f) != 0;
}

/* A directory region holding the small samples, header at offset 0. */
static int write_region(const char *dir, const tu_sample *s, size_t n) {
  static _Alignas(64) uint8_t region[16384];
  nub_cap_bump bump;
  nub_cap_alloc alloc;
  nub_cap_dir d;
  nub_cap_dir_entry e;
  nub_cap_error err;
  uint8_t h[CAP_HASH_SIZE];
  bool inserted;
  nub_cap_bump_init(&bump, region, sizeof region);
  alloc = nub_cap_bump_allocator(&bump);
  if (nub_cap_dir_create(&d, region, sizeof region, &alloc, 8, &err)) return 1;
  for (size_t i = 0; i < n; i++)
    if (s[i].len < 1024 && nub_cap_dir_put(&d, s[i].wire, s[i].len, h, &e, NULL, &inserted, &err))
      return 1;
  return write_file(dir, "region", region, bump.used);
}

static int write_seeds(const char *root, const tu_sample *s, size_t n) {
  char dir[512];
  int bad = 0;
  snprintf(dir, sizeof dir, "%s/fuzz_cap_wire", root);
  for (size_t i = 0; i < n; i++)
    if (s[i].len <= 32768) bad |= write_file(dir, s[i].name, s[i].wire, s[i].len);
  snprintf(dir, sizeof dir, "%s/fuzz_cap_dir", root);
  return bad | write_region(dir, s, n);
}

int main(int argc, char **argv) {
  tu_sample *s;
  size_t n;
  int bad = 0;
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: make_cap_vectors VECTOR_DIR [FUZZ_CORPUS_ROOT]\n");
    return 2;
  }
  n = tu_samples(&s);
  for (size_t i = 0; i < n; i++) bad |= write_vector(argv[1], &s[i]);
  if (argc == 3) bad |= write_seeds(argv[2], s, n);
  tu_samples_free(s, n);
  printf("%zu vectors written to %s\n", n, argv[1]);
  return bad;
}
