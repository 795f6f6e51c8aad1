/*
** The host's checks of a PUT_CAP rejection (docs/abi.md): a hostile guest
** (nub-guest-test forging the reply) gets a protocol error for every
** malformed reason, never a crash or a garbled message, and the handle
** keeps working.  The honest reasons are tested on both backends in
** tests/kernel/test_kernel.c.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guest/guest_ext.h"
#include "host_test_util.h"

static void forged_rejections_are_checked(void **state) {
  (void)state;
  const struct { uint8_t forgery; int code; const char *msg; } cases[] = {
    {NK_FORGE_CONTROL_BYTE, NUB_ERR_PROTOCOL, "put_cap: reason byte 3 is 0x07, not printable ASCII"},
    {NK_FORGE_LONG_REASON, NUB_ERR_PROTOCOL, "fn 4: reply of 237 bytes, at most 236 expected"},
    {NK_FORGE_UNKNOWN_CLASS, NUB_ERR_PROTOCOL, "put_cap: unknown rejection class 9"},
    {NK_FORGE_NO_TEXT, NUB_ERR_PROTOCOL, "put_cap: rejection of 36 bytes has no reason text"},
    {NK_FORGE_SHORT, NUB_ERR_PROTOCOL, "put_cap: rejection of 33 bytes has no reason text"},
    {NK_FORGE_HASH_AND_MORE, NUB_ERR_PROTOCOL,
     "put_cap: reply of 46 bytes is neither a 32-byte hash nor 32 x 0xFF and a reason"},
    {NK_FORGE_BARE_SENTINEL, NUB_ERR_REJECTED, "(no reason given)"},
  };
  nub_options o = ht_options("nub-guest-test");
  o.backend = NUB_BACKEND_PROC;
  nub *n = ht_open(&o);
  nub_cap_bundle b;
  ht_add_bundle(&b);
  int32_t pid = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint8_t op[2] = {NK_TEST_FORGE_PUT_REPLY, cases[i].forgery};
    const nub_cap_item *cap = &b.items[i % b.count];
    nub_hash h;
    nub_error err;
    size_t got;
    if (nub_call_raw(n, NUB_FN_TEST, op, sizeof op, NULL, 0, &got, &err))
      fail_msg("forge %u: %s", cases[i].forgery, err.msg);
    assert_int_equal(nub_put_cap(n, cap->wire, cap->len, h, &err), cases[i].code);
    print_message("    forgery %u: %s: %s\n", cases[i].forgery, nub_errcode_name(err.code), err.msg);
    if (!strstr(err.msg, cases[i].msg)) fail_msg("'%s' lacks '%s'", err.msg, cases[i].msg);
    for (const char *c = err.msg; *c; c++) assert_true(*c >= 0x20 && *c < 0x7F);
    /* the same guest publishes the same cap honestly next time */
    assert_int_equal(nub_put_cap(n, cap->wire, cap->len, h, &err), NUB_OK);
    assert_memory_equal(h, cap->hash, NUB_HASH_SIZE);
    struct nub_sandbox_report r;
    assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
    if (!pid) pid = r.guest_pid;
    assert_int_equal(r.guest_pid, pid);
    assert_int_equal(r.restarts, 0);
  }
  ht_publish(n, &b);
  assert_int_equal(ht_add(n, &b, 40, 2).return_value, 42);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(forged_rejections_are_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
