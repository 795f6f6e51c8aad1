/*
** The nub_error contract (nub.h): written only on failure, never read.
** Every call that succeeds leaves a caller's nub_error byte for byte as it
** was (here: a poison pattern; under valgrind, nub_exec_valgrind_* check
** that nothing reads an uninitialised one).  Run on proc and inproc.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "host/host_test_util.h"

static void poison(nub_error *e) { memset(e, 0xA5, sizeof *e); }

static void expect_untouched(const nub_error *e, const char *call) {
  nub_error want;
  poison(&want);
  if (memcmp(e, &want, sizeof want)) fail_msg("%s succeeded and wrote its nub_error", call);
}

static void successful_calls_leave_err_untouched(void **state) {
  nub_options o = ht_options(NULL);
  nub *n = NULL;
  nub_error err;
  nub_cap_bundle b = {0};
  ht_add_bundle(&b);

  poison(&err);
  assert_int_equal(nub_open(&o, &n, &err), NUB_OK);
  expect_untouched(&err, "nub_open");
  for (uint32_t i = 0; i < b.count; i++) {
    nub_hash h;
    assert_int_equal(nub_put_cap(n, b.items[i].wire, b.items[i].len, h, &err), NUB_OK);
    expect_untouched(&err, "nub_put_cap");
  }
  const uint64_t args[4] = {40, 2, 0, 0};
  nub_invocation_result r;
  assert_int_equal(nub_invoke(n, b.items[b.instance].hash, 0, args, 100, &r, &err), NUB_OK);
  expect_untouched(&err, "nub_invoke");
  assert_int_equal(r.return_value, 42);

  uint64_t v;
  struct nub_heap_stats hs;
  struct nub_kernel_stats ks;
  struct nub_boot_info bi;
  struct nub_sandbox_report sr;
  uint8_t wire[4096];
  size_t len;
  assert_int_equal(nub_smoke(n, &v, &err), NUB_OK);
  expect_untouched(&err, "nub_smoke");
  assert_int_equal(nub_heap_stats(n, &hs, &err), NUB_OK);
  expect_untouched(&err, "nub_heap_stats");
  assert_int_equal(nub_kernel_stats(n, &ks, &err), NUB_OK);
  expect_untouched(&err, "nub_kernel_stats");
  assert_int_equal(nub_boot_info(n, &bi, &err), NUB_OK);
  expect_untouched(&err, "nub_boot_info");
  assert_int_equal(nub_sandbox_report(n, &sr, &err), NUB_OK);
  expect_untouched(&err, "nub_sandbox_report");
  assert_int_equal(nub_lookup(n, b.items[b.instance].hash, wire, sizeof wire, &len, &err), NUB_OK);
  expect_untouched(&err, "nub_lookup");
  assert_int_equal(nub_evict_jit(n, &err), NUB_OK);
  expect_untouched(&err, "nub_evict_jit");
  if (o.backend == NUB_BACKEND_PROC) {
    assert_int_equal(nub_ping(n, &err), NUB_OK);
    expect_untouched(&err, "nub_ping");
  }
  /* and a failure does write it */
  assert_int_equal(nub_invoke(n, b.items[b.instance].hash, 0x100, args, 100, &r, &err), NUB_ERR_ARG);
  assert_int_equal(err.code, NUB_ERR_ARG);
  assert_non_null(strstr(err.msg, "endpoint 256"));
  nub_close(n);
  nub_cap_bundle_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(successful_calls_leave_err_untouched),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
