/*
** The C workloads (workloads/) built twice by clang-19 -O2: natively and as
** PVM programs (RV64E + nub link, build/guest/NAME.pvm).  Each program runs
** with the test input on the interpreter and the JIT, and through the host
** API on the inproc and proc backends; every digest must equal the native
** build's, and the log lines the guest prints through the log host call
** (ecalli 100, serviced by guest_run) must equal the native ones.
** Also: known answers of the sha256/blake2b workloads, the runtime's
** printf, and the log call's bounds (an unreadable message).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_run.h"
#include "nub/cap.h"
#include "nub/jit.h"
#include "nub/nub.h"
#include "workloads.h"

int nub_snprintf(char *buf, size_t cap, const char *fmt, ...);

#define GAS 20000000000ll
#define LOG_CAP (2 * GUEST_LOG_MAX)

typedef struct logbuf { char text[LOG_CAP + 2]; size_t len; } logbuf;   /* + newline, NUL */

static void log_append(logbuf *b, const char *msg, size_t len) {
  if (b->len + len > LOG_CAP) len = LOG_CAP - b->len;
  memcpy(b->text + b->len, msg, len);
  b->len += len;
  b->text[b->len++] = '\n';
  b->text[b->len] = 0;
}

static logbuf native_log;
static void native_sink(uint64_t level, const char *msg, uint64_t len) {
  (void)level;
  log_append(&native_log, msg, (size_t)len);
}

static void guest_sink(void *ud, uint64_t level, const char *msg, size_t len) {
  (void)level;
  log_append(ud, msg, len);
}

static void kernel_sink(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  (void)level;
  log_append(ud, (const char *)msg, len);
}

static uint8_t *read_program(const char *name, size_t *len) {
  char path[1024];
  const char *bin = getenv("NUB_BINARY_DIR");
  snprintf(path, sizeof path, "%s/guest/%s.pvm", bin ? bin : ".", name);
  FILE *f = fopen(path, "rb");
  if (!f) { fail_msg("cannot open %s (built by nub link)", path); return NULL; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)n);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static uint64_t native_digest(const wl_info *w, uint64_t verbose) {
  memset(&native_log, 0, sizeof native_log);
  nub_native_log_sink = native_sink;
  uint64_t d = w->native(w->test_n, verbose);
  nub_native_log_sink = NULL;
  return d;
}

/* Each workload on both engines, log lines and digest equal to native. */
static void every_workload_matches_native_on_both_engines(void **state) {
  (void)state;
  const nub_pvm_engine *engines[] = {&nub_pvm_engine_interp, &nub_jit_engine};
  int count = 0;
  for (const wl_info *w = wl_table; w->name; w++) {
    size_t len;
    uint8_t *prog = read_program(w->name, &len);
    uint64_t expect = native_digest(w, 1);
    assert_int_not_equal(expect, 0);          /* 0 is every workload's failure value */
    assert_true(native_log.len > 0);
    for (size_t e = 0; e < 2; e++) {
      logbuf log = {{0}, 0};
      guest_result r;
      nub_pvm_error err;
      int rc = guest_spi_run(prog, len, PVM_PROFILE_GP07, engines[e], w->test_n, 1, GAS, 1,
                             guest_sink, &log, &r, &err);
      if (rc) fail_msg("%s on %s: %s", w->name, engines[e]->name, err.msg);
      if (r.status != PVM_HALT || r.value != expect)
        fail_msg("%s on %s: %s at pc %u, digest %016llx, native %016llx", w->name,
                 engines[e]->name, nub_pvm_status_name(r.status), r.pc,
                 (unsigned long long)r.value, (unsigned long long)expect);
      assert_int_equal(r.log_calls, 1);
      assert_string_equal(log.text, native_log.text);
    }
    free(prog);
    count++;
  }
  printf("%d workloads matched native on interp and jit\n", count);
  assert_int_equal(count, NUB_WORKLOAD_COUNT);   /* the table holds every workload built */
}

/* A request larger than the heap (64 MiB of pvm.ld's region) gets NULL
** from the runtime's malloc: sha256 of 128 MiB returns its failure value
** 0 and halts, on both engines, without touching memory it does not own. */
static void heap_exhaustion_returns_null_not_a_fault(void **state) {
  (void)state;
  const nub_pvm_engine *engines[] = {&nub_pvm_engine_interp, &nub_jit_engine};
  size_t len;
  uint8_t *prog = read_program("sha256", &len);
  for (size_t e = 0; e < 2; e++) {
    guest_result r;
    nub_pvm_error err;
    assert_int_equal(guest_spi_run(prog, len, PVM_PROFILE_GP07, engines[e], 128u << 20, 0, GAS, 1,
                                   NULL, NULL, &r, &err), 0);
    assert_int_equal(r.status, PVM_HALT);
    assert_int_equal(r.value, 0);
    assert_true(r.gas_used < 10000);               /* no hashing happened */
  }
  free(prog);
}

/* Through the host API: caps published into a guest kernel, invoked with
** args (n, 0), and (n, 1) with the kernel servicing the log call. */
static void run_backend(nub_backend backend) {
  for (const wl_info *w = wl_table; w->name; w++) {
    size_t len;
    uint8_t *prog = read_program(w->name, &len);
    uint64_t expect = native_digest(w, 0);
    nub_options opt;
    nub *n = NULL;
    nub_error err;
    nub_cap_bundle b = {0};
    nub_cap_error cerr;
    nub_invocation_result r;
    nub_options_init(&opt);
    opt.backend = backend;
    if (nub_open(&opt, &n, &err)) fail_msg("nub_open: %s", err.msg);
    if (nub_cap_build_spi(PVM_PROFILE_GP07, prog, len, NULL, 0, &b, &cerr))
      fail_msg("%s: nub_cap_build_spi: %s", w->name, cerr.msg);
    for (uint32_t i = 0; i < b.count; i++) {
      nub_hash h;
      if (nub_put_cap(n, b.items[i].wire, b.items[i].len, h, &err)) fail_msg("put_cap: %s", err.msg);
    }
    const uint64_t args[4] = {w->test_n, 0, 0, 0}, verbose[4] = {w->test_n, 1, 0, 0};
    if (nub_invoke(n, b.items[b.instance].hash, 0, args, (uint64_t)GAS, &r, &err))
      fail_msg("invoke: %s", err.msg);
    if (r.exit_reason != 0 || r.return_value != expect)
      fail_msg("%s via %s: exit %u, digest %016llx, native %016llx", w->name,
               nub_backend_name(n), r.exit_reason, (unsigned long long)r.return_value,
               (unsigned long long)expect);
    /* verbose: the kernel services the log call, the lines equal native */
    logbuf log = {{0}, 0};
    uint32_t dropped = 1;
    uint64_t expect_verbose = native_digest(w, 1);
    if (nub_invoke_logged(n, b.items[b.instance].hash, 0, verbose, (uint64_t)GAS, &r, kernel_sink,
                          &log, &dropped, &err))
      fail_msg("invoke_logged: %s", err.msg);
    assert_int_equal(r.exit_reason, 0);
    assert_int_equal(r.return_value, expect_verbose);
    assert_int_equal(dropped, 0);
    assert_string_equal(log.text, native_log.text);
    /* without the flag, the seed's behaviour: a stop at the log call */
    assert_int_equal(nub_invoke(n, b.items[b.instance].hash, 0, verbose, (uint64_t)GAS, &r, &err), NUB_OK);
    assert_int_equal(r.exit_reason, 4);
    assert_int_equal(r.exit_arg, GUEST_HOST_LOG);
    nub_cap_bundle_free(&b);
    nub_close(n);
    free(prog);
  }
}

static void every_workload_matches_native_inproc(void **state) { (void)state; run_backend(NUB_BACKEND_INPROC); }
static void every_workload_matches_native_proc(void **state) { (void)state; run_backend(NUB_BACKEND_PROC); }

/* Known answers: SHA-256, BLAKE2b-512 and SHA3-256 of the generated input
** (first 8 digest bytes, little-endian) at padding boundaries, and the
** sieve's digest, computed independently (Python: hashlib, a plain sieve). */
static void hash_and_sieve_workloads_give_known_digests(void **state) {
  (void)state;
  static const struct { const char *name; uint64_t n, digest; } cases[] = {
    {"sha256", 0, 0x141cfc9842c4b0e3ull},   /* e3b0c442...: SHA-256 of "" */
    {"sha256", 55, 0xc4d5d4a7fb71cc9cull},
    {"sha256", 56, 0x7041644655d1636dull},
    {"sha256", 64, 0x6235a1c4384ee7abull},
    {"sha256", 4096, 0x5c0eab69a95a0aedull},
    {"blake2b", 0, 0x03590142f7026a78ull},
    {"blake2b", 128, 0xf7463c3705a22610ull},
    {"blake2b", 129, 0xf1f3b592ae5ee58full},
    {"blake2b", 4096, 0xcad8b78bad227ad7ull},
    {"keccak", 0, 0x66d71ebff8c6ffa7ull},    /* a7ffc6f8...: SHA3-256 of "" */
    {"keccak", 135, 0xda4b72f726be02ceull},
    {"keccak", 136, 0x52955dd2101ede50ull},
    {"keccak", 4096, 0x3e22f8e4b4f1f6caull},
    {"sieve", 100, 0xcd7cbb01bf715253ull},     /* 25 primes */
    {"sieve", 10000, 0x71b38f1f7d45b78bull},   /* 1229 primes */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const wl_info *w = wl_table;
    while (strcmp(w->name, cases[i].name)) w++;
    uint64_t got = w->native(cases[i].n, 0);
    if (got != cases[i].digest)
      fail_msg("%s(%llu) = %016llx, expected %016llx", cases[i].name,
               (unsigned long long)cases[i].n, (unsigned long long)got,
               (unsigned long long)cases[i].digest);
  }
}

/* The runtime's formatter (the same source the guest runs). */
static void runtime_printf_formats_like_c(void **state) {
  (void)state;
  char buf[64];
  int n = nub_snprintf(buf, sizeof buf, "%d|%i|%4x|%04X|%-3c|%s|%.2s", 42, -7, 255u, 255u, 'x',
                       "abc", "abc");
  assert_string_equal(buf, "42|-7|  ff|00FF|x  |abc|ab");
  assert_int_equal(n, 26);
  nub_snprintf(buf, sizeof buf, "%llu %lld %zu %p %%", 18446744073709551615ull,
               (long long)-9223372036854775807ll - 1, (size_t)7, (void *)0x10);
  assert_string_equal(buf, "18446744073709551615 -9223372036854775808 7 0x10 %");
  nub_snprintf(buf, sizeof buf, "%05d|%-5d|%s", -42, 3, (const char *)NULL);
  assert_string_equal(buf, "-0042|3    |(null)");
  n = nub_snprintf(buf, 4, "abcdef");                  /* truncated, still terminated */
  assert_string_equal(buf, "abc");
  assert_int_equal(n, 6);
}

/* The log call's bounds: a message at an unmapped address is not read
** (phi7 = OOB), one longer than GUEST_LOG_MAX is cut, and both resume. */
static void log_call_with_bad_message_resumes_with_oob(void **state) {
  (void)state;
  static const struct { uint64_t addr, len, want_r7; size_t want_len; } cases[] = {
    {0x100, 5, GUEST_HOST_OOB, 0},               /* below 0x10000: never mapped */
    {0x200000000ull, 5, GUEST_HOST_OOB, 0},      /* above 2^32 */
    {0x20000, 1u << 20, 0, GUEST_LOG_MAX},       /* mapped page, cut to the limit */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
    uint8_t *blob = NULL;
    size_t len;
    nub_pvm_program *prog = NULL;
    nub_pvm_mem *mem = NULL;
    nub_pvm_vm vm;
    uint64_t calls = 0;
    size_t got_len = 0;
    assert_non_null(b);
    nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM_64, 10, 0, 0, cases[i].addr, 0);
    nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM_64, 11, 0, 0, cases[i].len, 0);
    nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, GUEST_HOST_LOG, 0);
    nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
    assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, NULL), 0);
    nub_pvm_builder_free(b);
    assert_int_equal(nub_pvm_program_load(PVM_PROFILE_GP07, blob, len, &prog, NULL), 0);
    assert_int_equal(nub_pvm_mem_new(&mem, NULL), 0);
    assert_int_equal(nub_pvm_mem_map(mem, 0x20000, 2 * GUEST_LOG_MAX, PVM_ACCESS_RW, NULL), 0);
    assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, &nub_pvm_engine_interp, NULL, NULL), 0);
    vm.regs[0] = PVM_HALT_ADDRESS;
    vm.gas = 1000;
    logbuf log = {{0}, 0};
    nub_pvm_status st = guest_run(&vm, mem, guest_sink, &log, &calls);
    got_len = log.len ? log.len - 1 : 0;         /* minus the newline */
    assert_int_equal(st, PVM_HALT);
    assert_int_equal(vm.regs[7], cases[i].want_r7);
    assert_int_equal(calls, 1);
    assert_int_equal(got_len, cases[i].want_len);
    nub_pvm_vm_fini(&vm);
    nub_pvm_mem_free(mem);
    nub_pvm_program_free(prog);
    free(blob);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(hash_and_sieve_workloads_give_known_digests),
    cmocka_unit_test(runtime_printf_formats_like_c),
    cmocka_unit_test(log_call_with_bad_message_resumes_with_oob),
    cmocka_unit_test(every_workload_matches_native_on_both_engines),
    cmocka_unit_test(heap_exhaustion_returns_null_not_a_fault),
    cmocka_unit_test(every_workload_matches_native_inproc),
    cmocka_unit_test(every_workload_matches_native_proc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
