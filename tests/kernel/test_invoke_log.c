/*
** The log host call through the guest kernel (NUB_INVOKE_FLAG_LOG,
** docs/abi.md, docs/runtime.md): messages come back in order with their
** level, unreadable ones set phi7 = OOB, the per-invocation budget drops
** the rest and counts them, reserved flag bits are refused, and without
** the flag the invocation stops at the call as in the seed.  Runs on
** every backend and engine (NUB_TEST_BACKEND, NUB_TEST_ENGINE).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nub/abi.h"
#include "nub/cap.h"
#include "nub/nub.h"

static const char message[] = "hello from the guest";
#define RO_LEN 8192u      /* message at 0x10000, then zeros */

/* An SPI program: `times` times { r7 = level; ecalli 100 with r10 = addr,
** r11 = len }, then halt with r7 as the last call left it. */
static uint8_t *log_program(uint64_t addr, uint64_t len, uint32_t times, size_t *out_len) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *code = NULL, *spi_bytes = NULL, ro[RO_LEN] = {0};
  size_t code_len;
  uint32_t loop = nub_pvm_builder_label(b);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 9, 0, 0, times, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM_64, 10, 0, 0, addr, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM_64, 11, 0, 0, len, 0);
  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, loop);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 7, 0, 0, 3, 0);
  nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, NUB_HOST_CALL_LOG, 0);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 9, 9, 0, (uint64_t)-1, 0);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 9, 0, 0, loop);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  assert_int_equal(nub_pvm_builder_finish(b, &code, &code_len, NULL), PVM_OK);
  nub_pvm_builder_free(b);
  memcpy(ro, message, sizeof message - 1);
  nub_pvm_spi spi = {ro, RO_LEN, NULL, 0, 0, 4096, code, (uint32_t)code_len};
  assert_int_equal(nub_pvm_spi_encode(&spi, &spi_bytes, out_len, NULL), PVM_OK);
  free(code);
  return spi_bytes;
}

typedef struct lines { uint32_t count; size_t bytes; char first[64]; uint32_t level; } lines;

static void collect(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  lines *l = ud;
  if (!l->count) {
    memcpy(l->first, msg, len < sizeof l->first - 1 ? len : sizeof l->first - 1);
    l->level = level;
  }
  l->count++;
  l->bytes += len;
}

static nub *open_nub(void) {
  nub_options o;
  nub *n;
  nub_error err;
  const char *backend = getenv("NUB_TEST_BACKEND");
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "proc") ? NUB_BACKEND_PROC : NUB_BACKEND_INPROC;
  o.engine = getenv("NUB_TEST_ENGINE");
  o.heap_size = 64u << 20;
  o.io_size = 8u << 20;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  return n;
}

static void publish(nub *n, const uint8_t *spi, size_t len, nub_cap_bundle *b) {
  nub_cap_error cerr;
  nub_error err;
  if (nub_cap_build_spi(PVM_PROFILE_GP07, spi, len, NULL, 0, b, &cerr)) fail_msg("build: %s", cerr.msg);
  for (uint32_t i = 0; i < b->count; i++) {
    nub_hash h;
    if (nub_put_cap(n, b->items[i].wire, b->items[i].len, h, &err)) fail_msg("put: %s", err.msg);
  }
}

static void log_lines_come_back_bounded(void **state) {
  (void)state;
  const uint32_t per_record = NUB_LOG_RECORD_HEADER + NUB_LOG_LINE_MAX;
  const uint32_t fit = NUB_INVOKE_LOG_MAX / per_record;       /* 15 records of 4 KiB */
  static const struct {
    const char *what;
    uint64_t addr, len;
    uint32_t times;
    uint32_t want_count, want_dropped;
    uint64_t want_r7;
    size_t want_bytes;
  } cases[] = {
    {"one message", 0x10000, sizeof message - 1, 1, 1, 0, 0, sizeof message - 1},
    {"three messages", 0x10000, sizeof message - 1, 3, 3, 0, 0, 3 * (sizeof message - 1)},
    {"unreadable (below 0x10000)", 0x100, 5, 2, 0, 0, NUB_HOST_OOB, 0},
    {"unreadable (above 2^32)", 0x100000000ull, 5, 1, 0, 0, NUB_HOST_OOB, 0},
    {"1 MiB asked, 4 KiB kept", 0x10000, 1u << 20, 1, 1, 0, 0, NUB_LOG_LINE_MAX},
  };
  nub *n = open_nub();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0] + 1; i++) {
    bool budget = i == sizeof cases / sizeof cases[0];   /* the last: over the budget */
    uint64_t addr = budget ? 0x10000 : cases[i].addr, len = budget ? NUB_LOG_LINE_MAX : cases[i].len;
    uint32_t times = budget ? fit + 5 : cases[i].times;
    size_t spi_len;
    uint8_t *spi = log_program(addr, len, times, &spi_len);
    nub_cap_bundle b;
    lines l = {0, 0, {0}, 0};
    uint32_t dropped = 99;
    nub_invocation_result r;
    nub_error err;
    publish(n, spi, spi_len, &b);
    if (nub_invoke_logged(n, b.items[b.instance].hash, 0, NULL, 1000000, &r, collect, &l,
                          &dropped, &err))
      fail_msg("%s: %s", budget ? "budget" : cases[i].what, err.msg);
    assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
    if (budget) {
      assert_int_equal(l.count, fit);
      assert_int_equal(dropped, 5);
      assert_int_equal(l.bytes, (size_t)fit * NUB_LOG_LINE_MAX);
    } else {
      assert_int_equal(l.count, cases[i].want_count);
      assert_int_equal(dropped, cases[i].want_dropped);
      assert_int_equal(r.return_value, cases[i].want_r7);
      assert_int_equal(l.bytes, cases[i].want_bytes);
      if (l.count) {
        assert_string_equal(l.first, message);
        assert_int_equal(l.level, 3);
      }
    }
    /* without the flag: the seed's behaviour, a stop at the call */
    const uint64_t args[4] = {0};
    assert_int_equal(nub_invoke(n, b.items[b.instance].hash, 0, args, 1000000, &r, &err), NUB_OK);
    assert_int_equal(r.exit_reason, NUB_EXIT_HOST_CALL);
    assert_int_equal(r.exit_arg, NUB_HOST_CALL_LOG);
    nub_cap_bundle_free(&b);
    free(spi);
  }
  nub_close(n);
}

static void reserved_invoke_flags_are_refused(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t spi_len, got;
  uint8_t *spi = log_program(0x10000, 4, 1, &spi_len);
  nub_cap_bundle b;
  nub_invoke_packet p;
  nub_invocation_result r;
  nub_error err;
  publish(n, spi, spi_len, &b);
  memset(&p, 0, sizeof p);
  memcpy(p.instance_hash, b.items[b.instance].hash, 32);
  p.flags = 2;
  p.initial_gas = 1000;
  assert_int_equal(nub_call_raw(n, NUB_FN_INVOKE_CACHED, &p, sizeof p, &r, sizeof r, &got, &err), NUB_OK);
  assert_int_equal(got, sizeof r);
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_BAD_FLAGS);
  nub_cap_bundle_free(&b);
  free(spi);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(log_lines_come_back_bounded),
    cmocka_unit_test(reserved_invoke_flags_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
