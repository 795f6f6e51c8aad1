/*
** `nub cap hash` and `nub cap show` on wire files.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cap_test_util.h"
#include "cli.h"
#include "cli_capture.h"

/* `nub cap VERB [PATH]` with stdout and stderr captured into *out. */
static int run(const char *verb, const char *path, char **out) {
  char *argv[] = {"cap", (char *)verb, (char *)path, NULL};
  return cli_capture(cmd_cap, argv, out);
}

static void test_hash_and_show_every_sample(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  (void)state;
  for (size_t i = 0; i < n; i++) {
    uint8_t h[CAP_HASH_SIZE];
    nub_cap_error err;
    char *path = cli_write_temp(s[i].wire, s[i].len), *out, *hex, kind[32];
    assert_int_equal(nub_cap_hash_wire(s[i].wire, s[i].wire + s[i].len, h, &err), CAP_OK);
    hex = tu_hex(h, sizeof h);
    assert_int_equal(run("hash", path, &out), 0);
    assert_int_equal(strlen(out), 65);
    assert_memory_equal(out, hex, 64);
    free(out);
    assert_int_equal(run("show", path, &out), 0);
    snprintf(kind, sizeof kind, "kind:      %s\n", nub_cap_kind_name(s[i].wire[0]));
    assert_non_null(strstr(out, kind));
    assert_non_null(strstr(out, hex));
    free(out);
    unlink(path);
    free(path);
    free(hex);
  }
  tu_samples_free(s, n);
}

static void test_show_fields(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  (void)state;
  for (size_t i = 0; i < n; i++) {
    char *path, *out;
    if (strcmp(s[i].name, "image_full")) continue;
    path = cli_write_temp(s[i].wire, s[i].len);
    assert_int_equal(run("show", path, &out), 0);
    assert_non_null(strstr(out, "heap:      top 0x30000 limit 0x80000"));
    assert_non_null(strstr(out, "[1] key 251 entry_pc 251 stack_top 0xfeee5000"));
    assert_non_null(strstr(out, "[1] 0x00020000+0x1000 RW source (none)"));
    assert_non_null(strstr(out, "[4] key 0x0102030405060708 -> "));
    free(out);
    unlink(path);
    free(path);
  }
  tu_samples_free(s, n);
}

static void test_errors(void **state) {
  static const uint8_t bad[] = {CAP_CNODE, 5, 0, 0, 0};
  char *path = cli_write_temp(bad, sizeof bad), *out;
  (void)state;
  assert_int_equal(run("hash", path, &out), 1);
  assert_non_null(strstr(out, "cnode.slots: offset 5 must be 4"));
  assert_non_null(strstr(out, "(offset error at byte 1)"));
  free(out);
  assert_int_equal(run("show", "/nonexistent/cap", &out), 1);
  assert_non_null(strstr(out, "cannot open"));
  free(out);
  assert_int_equal(run("frob", path, &out), 2);
  free(out);
  assert_int_equal(run("hash", NULL, &out), 2);
  assert_non_null(strstr(out, "usage"));
  free(out);
  unlink(path);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hash_and_show_every_sample),
    cmocka_unit_test(test_show_fields),
    cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
