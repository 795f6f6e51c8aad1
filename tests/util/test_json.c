/*
** The JSON reader: exact 64-bit integers, strict syntax, located errors.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "util/json.h"

static json_doc *parse_ok(const char *s) {
  json_doc *d;
  json_error e;
  if (json_parse(s, s + strlen(s), &d, &e)) fail_msg("parse '%s': %s", s, e.msg);
  return d;
}

static int parse_err(const char *s, json_error *e) {
  json_doc *d;
  int rc = json_parse(s, s + strlen(s), &d, e);
  if (rc == 0) json_free(d);
  return rc;
}

static void integers_are_exact(void **state) {
  (void)state;
  json_doc *d = parse_ok("[18446744073709551615, -9223372036854775808, 9007199254740993, -0, 0]");
  const json_value *r = json_root(d);
  uint64_t u;
  int64_t i;
  assert_true(json_to_u64(json_at(r, 0), &u) && u == UINT64_MAX);
  assert_false(json_to_i64(json_at(r, 0), &i));
  assert_true(json_to_i64(json_at(r, 1), &i) && i == INT64_MIN);
  assert_false(json_to_u64(json_at(r, 1), &u));
  assert_true(json_to_u64(json_at(r, 2), &u) && u == 9007199254740993ull);   /* 2^53 + 1 */
  assert_true(json_to_u64(json_at(r, 3), &u) && u == 0);                     /* -0 */
  assert_int_equal(r->count, 5);
  assert_null(json_at(r, 5));
  json_free(d);
}

static void objects_strings_literals(void **state) {
  (void)state;
  json_doc *d = parse_ok(" {\"a\": [true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"f\": 1.5e3} ");
  const json_value *r = json_root(d);
  assert_int_equal(r->type, JSON_OBJECT);
  assert_int_equal(json_get(r, "a")->count, 3);
  assert_true(json_at(json_get(r, "a"), 0)->boolean);
  assert_int_equal(json_at(json_get(r, "a"), 2)->type, JSON_NULL);
  assert_string_equal(json_get(r, "s")->str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
  assert_int_equal(json_get(r, "f")->type, JSON_REAL);
  assert_null(json_get(r, "missing"));
  assert_null(json_get(json_get(r, "a"), "a"));       /* not an object */
  json_free(d);
}

static void errors_are_located(void **state) {
  (void)state;
  json_error e;
  assert_int_not_equal(parse_err("[1,\n  2,,3]", &e), 0);
  assert_int_equal(e.line, 2);
  assert_int_equal(e.column, 5);
  assert_int_not_equal(parse_err("18446744073709551616", &e), 0);
  assert_non_null(strstr(e.msg, "64 bits"));
  assert_int_not_equal(parse_err("01", &e), 0);
  assert_non_null(strstr(e.msg, "leading zero"));
  assert_int_not_equal(parse_err("{\"a\" 1}", &e), 0);
  assert_non_null(strstr(e.msg, "':'"));
  assert_int_not_equal(parse_err("\"abc", &e), 0);
  assert_non_null(strstr(e.msg, "unterminated"));
  assert_int_not_equal(parse_err("\"\\ud800x\"", &e), 0);
  assert_non_null(strstr(e.msg, "surrogate"));
  assert_int_not_equal(parse_err("[1] x", &e), 0);
  assert_non_null(strstr(e.msg, "trailing"));
  assert_int_not_equal(parse_err("tru", &e), 0);
  assert_int_not_equal(parse_err("\"a\tb\"", &e), 0);
  assert_non_null(strstr(e.msg, "control character"));
  assert_int_not_equal(parse_err("", &e), 0);
}

static void depth_is_bounded(void **state) {
  (void)state;
  char deep[2 * JSON_MAX_DEPTH + 8];
  json_error e;
  size_t n = JSON_MAX_DEPTH + 1;
  memset(deep, '[', n);
  memset(deep + n, ']', n);
  deep[2 * n] = 0;
  assert_int_not_equal(parse_err(deep, &e), 0);
  assert_non_null(strstr(e.msg, "nesting"));
  deep[0] = ' ';
  deep[2 * n - 1] = 0;
  json_doc *d = parse_ok(deep);
  json_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(integers_are_exact),
    cmocka_unit_test(objects_strings_literals),
    cmocka_unit_test(errors_are_located),
    cmocka_unit_test(depth_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
