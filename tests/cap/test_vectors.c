/*
** The committed capability vectors (tests/vectors/caps/NAME.json): each wire
** object decodes, has the recorded kind and hash, and re-encodes to the
** same bytes.  ssz_check.py checks the same hashes independently.
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cap/cap_internal.h"
#include "cap_test_util.h"
#include "util/json.h"

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = 0;
  *len = (size_t)n;
  return buf;
}

static const char *str_field(const json_value *obj, const char *key) {
  const json_value *v = json_get(obj, key);
  if (!v || v->type != JSON_STRING) fail_msg("vector lacks string field %s", key);
  return v->str;
}

/* One vector; returns its kind. */
static int check_vector(const char *path) {
  size_t len, wire_len, hash_len, again_len;
  char *text = read_text(path, &len);
  json_doc *doc;
  json_error jerr;
  nub_cap_view v;
  nub_cap_spec spec;
  nub_cap_error err;
  uint8_t h[CAP_HASH_SIZE], *wire, *want, *again;
  if (json_parse(text, text + len, &doc, &jerr)) fail_msg("%s: %s", path, jerr.msg);
  wire = tu_unhex(str_field(json_root(doc), "wire"), &wire_len);
  want = tu_unhex(str_field(json_root(doc), "hash"), &hash_len);
  assert_non_null(wire);
  assert_non_null(want);
  assert_int_equal(hash_len, CAP_HASH_SIZE);
  if (nub_cap_decode(wire, wire + wire_len, &v, &err)) fail_msg("%s: %s", path, err.msg);
  assert_string_equal(nub_cap_kind_name(v.kind), str_field(json_root(doc), "kind"));
  assert_int_equal(nub_cap_hash(&v, h, &err), CAP_OK);
  assert_memory_equal(h, want, CAP_HASH_SIZE);
  assert_int_equal(nub_cap_spec_from_view(&v, &spec, &err), CAP_OK);
  again = tu_encode(&spec, &again_len);
  assert_int_equal(again_len, wire_len);
  assert_memory_equal(again, wire, wire_len);
  nub_cap_spec_free(&spec);
  free(again);
  free(wire);
  free(want);
  json_free(doc);
  free(text);
  return v.kind;
}

static void test_vectors(void **state) {
  const char *src = getenv("NUB_SOURCE_DIR");
  char dir[512], path[1024];
  struct dirent *e;
  DIR *d;
  unsigned n = 0, kinds = 0;
  (void)state;
  snprintf(dir, sizeof dir, "%s/tests/vectors/caps", src ? src : ".");
  assert_non_null(d = opendir(dir));
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    kinds |= 1u << check_vector(path);
    n++;
  }
  closedir(d);
  printf("cap vectors: %u checked, all kinds present: %s\n", n, kinds == 0xF ? "yes" : "no");
  assert_true(n > 0);
  assert_int_equal(kinds, 0xF);
}

/* The vectors are exactly what the generator makes from the samples. */
static void test_vectors_match_samples(void **state) {
  const char *src = getenv("NUB_SOURCE_DIR");
  tu_sample *s;
  size_t n = tu_samples(&s);
  char path[1024];
  (void)state;
  for (size_t i = 0; i < n; i++) {
    size_t len, wire_len;
    char *text;
    json_doc *doc;
    json_error jerr;
    uint8_t *wire;
    snprintf(path, sizeof path, "%s/tests/vectors/caps/%s.json", src ? src : ".", s[i].name);
    text = read_text(path, &len);
    assert_int_equal(json_parse(text, text + len, &doc, &jerr), 0);
    wire = tu_unhex(str_field(json_root(doc), "wire"), &wire_len);
    assert_int_equal(wire_len, s[i].len);
    assert_memory_equal(wire, s[i].wire, wire_len);
    free(wire);
    json_free(doc);
    free(text);
  }
  tu_samples_free(s, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vectors),
    cmocka_unit_test(test_vectors_match_samples),
  };
  if (getenv("NUB_TEST_SHA256_PORTABLE")) cap_sha256_use(&cap_sha256_portable);
  print_message("SHA-256 path: %s\n", cap_sha256_active()->name);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
