/*
** Writes the capability test vectors: one JSON file per sample cap,
** {"name", "kind", "wire": hex, "hash": hex}.
**   make_cap_vectors DIR      (DIR = tests/vectors/caps)
** tests/cap/ssz_check.py recomputes every hash independently.
*/
#include <stdio.h>
#include <stdlib.h>

#include "cap_test_util.h"

static int write_vector(const char *dir, const tu_sample *s) {
  char path[512], *wire, *hash;
  uint8_t h[CAP_HASH_SIZE];
  cap_error err;
  FILE *f;
  if (cap_hash_wire(s->wire, s->wire + s->len, h, &err)) {
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
          s->name, cap_kind_name(s->wire[0]), wire, hash);
  free(wire);
  free(hash);
  return fclose(f) != 0;
}

int main(int argc, char **argv) {
  tu_sample *s;
  size_t n;
  int bad = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: make_cap_vectors DIR\n");
    return 2;
  }
  n = tu_samples(&s);
  for (size_t i = 0; i < n; i++) bad |= write_vector(argv[1], &s[i]);
  tu_samples_free(s, n);
  printf("%zu vectors written to %s\n", n, argv[1]);
  return bad;
}
