/*
** End-to-end tests of the guest kernel through the host API.  The same
** tests run on every backend and engine: NUB_TEST_BACKEND=inproc|proc,
** NUB_TEST_ENGINE=interp|jit.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/guest_ext.h"
#include "guest/nk.h"
#include "nub/cap.h"
#include "nub/nub.h"

static nub_options test_options(void) {
  nub_options o;
  const char *backend = getenv("NUB_TEST_BACKEND");
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "proc") ? NUB_BACKEND_PROC : NUB_BACKEND_INPROC;
  o.engine = getenv("NUB_TEST_ENGINE");
  o.heap_size = 64u << 20;
  o.io_size = 8u << 20;
  return o;
}

static nub *open_nub(void) {
  nub_options o = test_options();
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  return n;
}

static void put(nub *n, const uint8_t *wire, size_t len, uint8_t hash[32]) {
  nub_error err;
  if (nub_put_cap(n, wire, len, hash, &err)) fail_msg("put_cap: %s", err.msg);
}

static void put_bundle(nub *n, const nub_cap_bundle *b) {
  for (uint32_t i = 0; i < b->count; i++) {
    uint8_t h[32];
    put(n, b->items[i].wire, b->items[i].len, h);
    assert_memory_equal(h, b->items[i].hash, 32);
  }
}

static nub_invocation_result invoke(nub *n, const uint8_t *instance, uint32_t endpoint,
                                    uint64_t a, uint64_t b, uint64_t gas) {
  nub_invocation_result r;
  nub_error err;
  const uint64_t args[4] = {a, b, 0, 0};
  if (nub_invoke(n, instance, endpoint, args, gas, &r, &err)) fail_msg("invoke: %s", err.msg);
  return r;
}

/* r7 = r7 + r8, then halt (jump_ind to 0 + 0xFFFF0000). */
static uint8_t *add_program(size_t *len) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  nub_pvm_error err;
  nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, len, &err)) fail_msg("builder: %s", err.msg);
  nub_pvm_builder_free(b);
  return blob;
}

static void generic_bundle(const uint8_t *blob, size_t len, nub_cap_bundle *out) {
  nub_cap_error err;
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, out, &err)) fail_msg("build: %s", err.msg);
}

/* ---- the tests ---- */

static void smoke(void **state) {
  (void)state;
  nub *n = open_nub();
  uint64_t v = 0;
  nub_error err;
  assert_int_equal(nub_smoke(n, &v, &err), NUB_OK);
  assert_int_equal(v, 42);
  nub_close(n);
}

static void put_cap_returns_the_host_hash(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len), h[32], want[32];
  nub_cap_bundle b;
  generic_bundle(blob, len, &b);
  for (uint32_t i = 0; i < b.count; i++) {
    assert_int_equal(nub_cap_hash_wire(b.items[i].wire, b.items[i].wire + b.items[i].len, want, NULL), CAP_OK);
    put(n, b.items[i].wire, b.items[i].len, h);
    assert_memory_equal(h, want, 32);
    put(n, b.items[i].wire, b.items[i].len, h);      /* idempotent */
    assert_memory_equal(h, want, 32);
  }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, b.count);
  assert_int_equal(ks.caps_published, b.count);
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

/* What `nub cap show` says about the same bytes. */
static void decoder_reason(const uint8_t *wire, size_t len, char *out, size_t cap) {
  nub_cap_view v;
  nub_cap_error cerr;
  assert_int_not_equal(nub_cap_decode(wire, wire + len, &v, &cerr), CAP_OK);
  snprintf(out, cap, "%s (%s error at byte %llu)", cerr.msg, nub_cap_errcode_name(cerr.code),
           (unsigned long long)cerr.offset);
}

static void malformed_caps_are_rejected_with_the_decoders_reason(void **state) {
  (void)state;
  nub *n = open_nub();
  uint8_t *data, *cut, *extra;
  size_t data_len;
  assert_int_equal(nub_cap_encode_data_alloc(8192, (const uint8_t *)"abc", 3, &data, &data_len, NULL), CAP_OK);
  cut = malloc(data_len);
  extra = calloc(1, data_len + 1);
  memcpy(cut, data, data_len);
  memcpy(extra, data, data_len);
  const uint8_t selector9[] = {9, 1, 2, 3, 4, 5};
  const struct { const char *name; const uint8_t *wire; size_t len; const char *code; } cases[] = {
    {"unknown selector", selector9, sizeof selector9, "(selector error at byte 0)"},
    {"zero-length cap", selector9, 0, "cap: empty input, no union selector (truncated error at byte 0)"},
    {"Data cap cut inside its fixed part", cut, 4, "data: 3 bytes, but its fixed part needs 12 (truncated error at byte 4)"},
    {"Data cap one byte short", cut, data_len - 1, "(trailing error at byte 13)"},
    {"Data cap with a trailing byte", extra, data_len + 1, "1 trailing after 1 elements of 4100 bytes (trailing error at byte 4113)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char want[512], text[256];
    uint8_t reply[512], h[32];
    uint32_t reason;
    size_t got;
    nub_error err;
    decoder_reason(cases[i].wire, cases[i].len, want, sizeof want);
    if (!strstr(want, cases[i].code)) fail_msg("%s: %s", cases[i].name, want);
    /* the raw reply: the seed's sentinel, the class, the reason */
    assert_int_equal(nub_call_raw(n, NUB_FN_PUT_CAP, cases[i].wire, cases[i].len, reply,
                                  sizeof reply, &got, &err), NUB_OK);
    assert_true(got > 36 && got <= 36 + NUB_PUT_CAP_REASON_MAX);
    for (int j = 0; j < 32; j++) assert_int_equal(reply[j], 0xFF);
    memcpy(&reason, reply + 32, 4);
    assert_int_equal(reason, NUB_PUT_CAP_INVALID);
    snprintf(text, sizeof text, "%.*s", (int)(got - 36), (const char *)reply + 36);
    assert_string_equal(text, want);
    /* the API: REJECTED with the same words */
    assert_int_equal(nub_put_cap(n, cases[i].wire, cases[i].len, h, &err), NUB_ERR_REJECTED);
    if (!strstr(err.msg, want)) fail_msg("%s: '%s' lacks '%s'", cases[i].name, err.msg, want);
  }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.put_cap_failures, 2 * (sizeof cases / sizeof cases[0]));
  assert_int_equal(ks.caps_total, 0);
  uint8_t h[32];
  put(n, data, data_len, h);                          /* the handle still publishes */
  free(data);
  free(cut);
  free(extra);
  nub_close(n);
}

static uint8_t *distinct_data(uint64_t i, uint64_t size, size_t *len) {
  uint8_t *wire, bytes[8192];
  size_t fill = size < sizeof bytes ? (size_t)size : sizeof bytes;
  memset(bytes, 0x3C, fill);
  memcpy(bytes, &i, sizeof i);
  if (nub_cap_encode_data_alloc(size, bytes, fill, &wire, len, NULL)) fail_msg("encode data %llu", (unsigned long long)i);
  return wire;
}

/* A full heap says so (NUB_ERR_NOMEM, not REJECTED), and is no death. */
static void a_full_heap_says_so(void **state) {
  (void)state;
  nub_options o = test_options();
  o.heap_size = 1u << 20;
  nub *n;
  nub_error err;
  uint8_t h[32], hashes[16][32], *d;
  size_t len, got, published = 0;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  /* more bytes than the whole heap: refused before they are decoded */
  uint8_t *big = calloc(1, 2u << 20);
  assert_int_equal(nub_put_cap(n, big, 2u << 20, h, &err), NUB_ERR_NOMEM);
  assert_non_null(strstr(err.msg, "the guest has no memory for the 2097152-byte cap: "
                                  "dir: 2097152 bytes exceed the region (full)"));
  free(big);
  /* 96 KiB Data caps of non-zero pages until the heap is full */
  static uint8_t page[96u << 10];
  int rc = NUB_OK;
  for (uint64_t i = 0; i < 16 && rc == NUB_OK; i++) {
    memset(page, 0x11, sizeof page);
    memcpy(page, &i, sizeof i);
    assert_int_equal(nub_cap_encode_data_alloc(sizeof page, page, sizeof page, &d, &len, NULL), CAP_OK);
    rc = nub_put_cap(n, d, len, hashes[published], &err);
    if (rc == NUB_OK) published++;
    free(d);
  }
  assert_int_equal(rc, NUB_ERR_NOMEM);
  assert_true(published >= 1);
  assert_non_null(strstr(err.msg, "the guest has no memory for the"));
  assert_non_null(strstr(err.msg, "dir: allocator has no"));
  assert_non_null(strstr(err.msg, "(full)"));
  /* everything published before is still there, and the guest never died */
  for (size_t i = 0; i < published; i++)
    if (nub_lookup(n, hashes[i], NULL, 0, &got, &err) != NUB_ERR_TOO_LARGE || got < sizeof page)
      fail_msg("lookup %zu: %s", i, err.msg);
  struct nub_sandbox_report r;
  assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
  assert_int_equal(r.restarts, 0);
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, published);
  assert_int_equal(ks.put_cap_failures, 2);
  nub_close(n);
}

/* The kernel's nth table allocation from now fails: through the test
** guest's NUB_FN_TEST over proc, directly in this process for inproc. */
static void fail_allocation(nub *n, bool proc, uint8_t nth) {
  const uint8_t op[2] = {NK_TEST_FAIL_ALLOCATION, nth};
  size_t got;
  nub_error err;
  if (!proc) { nk_fail_allocation(nth); return; }
  if (nub_call_raw(n, NUB_FN_TEST, op, sizeof op, NULL, 0, &got, &err))
    fail_msg("fail_allocation: %s", err.msg);
}

/* A failed allocation while publishing refuses that one cap and leaves the
** directory and the kernel's views agreeing: the next puts succeed and
** every published cap is found and invocable. */
static void a_failed_allocation_does_not_wedge_publishing(void **state) {
  (void)state;
  nub_options o = test_options();
  char guest[4096];
  bool proc = o.backend == NUB_BACKEND_PROC;
  snprintf(guest, sizeof guest, "%s/nub-guest-test", getenv("NUB_BINARY_DIR"));
  o.guest_path = guest;
  /* the kernel grows its tables at the first cap and at every 256th */
  const struct { unsigned before; uint8_t nth; } cases[] = {{0, 1}, {0, 2}, {256, 1}, {256, 2}};
  size_t prog_len;
  uint8_t *prog = add_program(&prog_len);
  nub_cap_bundle b;
  generic_bundle(prog, prog_len, &b);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    nub *n;
    nub_error err;
    uint8_t h[32], *d;
    size_t len, got;
    unsigned published = 0;
    if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
    for (; published < cases[c].before; published++) {
      d = distinct_data(published, 4096, &len);
      put(n, d, len, h);
      free(d);
    }
    fail_allocation(n, proc, cases[c].nth);
    const nub_cap_item *first = &b.items[0];
    assert_int_equal(nub_put_cap(n, first->wire, first->len, h, &err), NUB_ERR_NOMEM);
    assert_non_null(strstr(err.msg, "kernel: no memory to grow its table"));
    assert_int_equal(nub_lookup(n, first->hash, NULL, 0, &got, NULL), NUB_ERR_NOT_FOUND);
    put_bundle(n, &b);                              /* the retry and the rest succeed */
    published += b.count;
    for (unsigned i = 0; i < 300; i++, published++) {
      d = distinct_data(1000 + i, 4096, &len);
      put(n, d, len, h);
      free(d);
      if (nub_lookup(n, h, NULL, 0, &got, &err) != NUB_ERR_TOO_LARGE) fail_msg("lookup: %s", err.msg);
    }
    nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 40, 2, 100);
    assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
    assert_int_equal(r.return_value, 42);
    for (uint32_t i = 0; i < b.count; i++)
      if (nub_lookup(n, b.items[i].hash, NULL, 0, &got, &err) != NUB_ERR_TOO_LARGE || got != b.items[i].len)
        fail_msg("lookup of bundle item %u: %s", i, err.msg);
    struct nub_kernel_stats ks;
    struct nub_sandbox_report sr;
    assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
    assert_int_equal(ks.caps_total, published);
    assert_int_equal(ks.put_cap_failures, 1);
    assert_int_equal(nub_sandbox_report(n, &sr, NULL), NUB_OK);
    assert_int_equal(sr.restarts, 0);
    nub_close(n);
  }
  nk_fail_allocation(0);
  nub_cap_bundle_free(&b);
  free(prog);
}

static void add_returns_the_sum_with_the_right_gas(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len);
  nub_cap_bundle b;
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 40, 2, 1000);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.exit_arg, 0);
  assert_int_equal(r.return_value, 42);
  assert_int_equal(r.gas_remaining, 1000 - 2);     /* one block of two instructions */
  r = invoke(n, b.items[b.instance].hash, 0, UINT64_MAX, 2, 2);
  assert_int_equal(r.return_value, 1);
  assert_int_equal(r.gas_remaining, 0);
  r = invoke(n, b.items[b.instance].hash, 0, 1, 2, 1);   /* cannot pay the block */
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(r.gas_remaining, 1);
  assert_int_equal(r.return_value, 1);                    /* phi7 = the argument */
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void spi_program_with_memory(void **state) {
  (void)state;
  /* r7 = [rw] + r7; [rw] = r7; halt through r0 (the SPI return address) */
  nub_pvm_spi_layout lay;
  nub_pvm_spi spi = {0};
  uint8_t *code, *wire;
  size_t code_len, wire_len;
  nub_cap_bundle b;
  nub_cap_error cerr;
  const uint8_t rw[8] = {5};
  spi.rw_data = rw;
  spi.rw_len = sizeof rw;
  spi.stack_size = 4096;
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, 0, &lay, NULL), PVM_OK);
  nub_pvm_builder *pb = nub_pvm_builder_new(PVM_PROFILE_GP07);
  nub_pvm_builder_insn(pb, PVM_OP_LOAD_U64, 8, 0, 0, lay.rw_start, 0);
  nub_pvm_builder_insn(pb, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  nub_pvm_builder_insn(pb, PVM_OP_STORE_U64, 7, 0, 0, lay.rw_start, 0);
  nub_pvm_builder_insn(pb, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  assert_int_equal(nub_pvm_builder_finish(pb, &code, &code_len, NULL), PVM_OK);
  nub_pvm_builder_free(pb);
  spi.code_blob = code;
  spi.code_blob_len = (uint32_t)code_len;
  assert_int_equal(nub_pvm_spi_encode(&spi, &wire, &wire_len, NULL), PVM_OK);
  if (nub_cap_build_spi(PVM_PROFILE_GP07, wire, wire_len, NULL, 0, &b, &cerr)) fail_msg("build: %s", cerr.msg);
  nub *n = open_nub();
  put_bundle(n, &b);
  for (int i = 0; i < 2; i++) {   /* memory is fresh every time: 5 + 10 twice */
    /* the rw Data page is one run, paid before the program runs */
    nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 10, 0,
                                     100 + NUB_GAS_PER_DATA_RUN);
    assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
    assert_int_equal(r.return_value, 15);
    assert_int_equal(r.gas_remaining, 100 - 4);
  }
  nub_cap_bundle_free(&b);
  free(code);
  free(wire);
  nub_close(n);
}

static void exits_are_reported(void **state) {
  (void)state;
  nub_pvm_builder *pb = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  nub_cap_bundle b;
  /* endpoint 0: ecalli 77; the following trap panics.  r7 survives. */
  nub_pvm_builder_insn(pb, PVM_OP_ECALLI, 0, 0, 0, 77, 0);
  nub_pvm_builder_insn(pb, PVM_OP_LOAD_U8, 7, 0, 0, 0x20000, 0);
  assert_int_equal(nub_pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  nub_pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  nub *n = open_nub();
  put_bundle(n, &b);
  nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 3, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_HOST_CALL);
  assert_int_equal(r.exit_arg, 77);
  assert_int_equal(r.return_value, 3);
  assert_int_equal(r.gas_remaining, 50 - 3);
  nub_cap_bundle_free(&b);
  free(blob);

  /* a load from an unmapped page: page fault with the address */
  pb = nub_pvm_builder_new(PVM_PROFILE_GP07);
  nub_pvm_builder_insn(pb, PVM_OP_LOAD_U8, 7, 0, 0, 0x20010, 0);
  assert_int_equal(nub_pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  nub_pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  r = invoke(n, b.items[b.instance].hash, 0, 0, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_PAGE_FAULT);
  assert_int_equal(r.exit_arg, 0x20000);
  nub_cap_bundle_free(&b);
  free(blob);

  /* an empty program runs into the implicit trap */
  pb = nub_pvm_builder_new(PVM_PROFILE_GP07);
  assert_int_equal(nub_pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  nub_pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  r = invoke(n, b.items[b.instance].hash, 0, 0, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_PANIC);
  assert_int_equal(r.gas_remaining, 49);
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

/* KERNEL_LAST_ERROR names the reason of the last invocation's error. */
static void expect_reason(nub *n, const char *want) {
  char text[NUB_KERNEL_ERROR_TEXT_MAX + 1];
  nub_error err;
  if (nub_kernel_last_error(n, text, sizeof text, &err)) fail_msg("last_error: %s", err.msg);
  if (want[0] ? !strstr(text, want) : text[0] != 0)
    fail_msg("kernel_last_error is \"%s\", expected \"%s\"", text, want);
}

static void expect_kernel_error(nub_invocation_result r, uint32_t code) {
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, code);
  assert_int_equal(r.return_value, 0);
  assert_int_equal(r.gas_remaining, 0);
}

static void put_spec(nub *n, const nub_cap_spec *spec, uint8_t hash[32]) {
  uint8_t *wire;
  size_t len;
  nub_cap_error err;
  if (nub_cap_encode_alloc(spec, &wire, &len, &err)) fail_msg("encode: %s", err.msg);
  put(n, wire, len, hash);
  free(wire);
}

static void kernel_errors(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len), data_hash[32], inst_hash[32], reply[64];
  nub_cap_bundle b;
  nub_cap_spec spec;
  size_t got;
  nub_invocation_result r;
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  const uint8_t *image_hash = b.items[b.image].hash;

  /* 10: a packet of the wrong length */
  nub_invoke_packet p = {0};
  assert_int_equal(nub_call_raw(n, NUB_FN_INVOKE_CACHED, &p, sizeof p - 1, reply, sizeof reply, &got, NULL), NUB_OK);
  assert_int_equal(got, sizeof r);
  memcpy(&r, reply, sizeof r);
  expect_kernel_error(r, NUB_KERR_BAD_PACKET);
  expect_reason(n, "invoke packet of 79 bytes, expected 80");

  /* 21: nothing under that hash */
  uint8_t missing[32];
  memset(missing, 0x5A, sizeof missing);
  expect_kernel_error(invoke(n, missing, 0, 0, 0, 10), NUB_KERR_INSTANCE_NOT_FOUND);

  /* 22: the hash is a Data cap */
  uint8_t *data;
  size_t data_len;
  assert_int_equal(nub_cap_encode_data_alloc(4096, (const uint8_t *)"x", 1, &data, &data_len, NULL), CAP_OK);
  put(n, data, data_len, data_hash);
  free(data);
  expect_kernel_error(invoke(n, data_hash, 0, 0, 0, 10), NUB_KERR_NOT_AN_INSTANCE);

  /* 23: an Instance of an Image nobody published */
  memset(&spec, 0, sizeof spec);
  spec.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(missing, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_IMAGE_NOT_FOUND);

  /* 24: an Instance whose image hash names a Data cap */
  nub_cap_instance_fresh(data_hash, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_NOT_AN_IMAGE);

  /* 25: no endpoint with key 5; an index above 255 is no key (never
  ** truncated to endpoint 0): nub_invoke refuses it, the kernel too */
  expect_kernel_error(invoke(n, b.items[b.instance].hash, 5, 0, 0, 10), NUB_KERR_ENDPOINT_NOT_FOUND);
  expect_reason(n, "endpoint 5: no such key");
  assert_int_equal(invoke(n, b.items[b.instance].hash, 0, 1, 1, 10).exit_reason, NUB_EXIT_HALT);
  expect_reason(n, "");                /* the last invocation had none */
  static const uint32_t too_large[] = {0x100, 0x1FF, UINT32_MAX};
  for (size_t i = 0; i < sizeof too_large / sizeof too_large[0]; i++) {
    nub_invocation_result res;
    nub_error err;
    const uint64_t args[4] = {0};
    assert_int_equal(nub_invoke(n, b.items[b.instance].hash, too_large[i], args, 10, &res, &err),
                     NUB_ERR_ARG);
    nub_invoke_packet raw = {.endpoint_idx = too_large[i], .initial_gas = 10};
    memcpy(raw.instance_hash, b.items[b.instance].hash, NUB_HASH_SIZE);
    got = 0;
    assert_int_equal(nub_call_raw(n, NUB_FN_INVOKE_CACHED, &raw, sizeof raw, &res, sizeof res,
                                  &got, NULL), NUB_OK);
    assert_int_equal(got, sizeof res);
    expect_kernel_error(res, NUB_KERR_ENDPOINT_NOT_FOUND);
    expect_reason(n, "above the largest key 255");
  }

  /* 26: a mapping whose Data cap was never published */
  nub_cap_mapping m = {0x10000, 0x1000, CAP_ACCESS_RO, {0}};
  nub_cap_endpoint ep = {0};
  memset(m.source, 0x77, sizeof m.source);
  memset(&spec, 0, sizeof spec);
  spec.kind = CAP_IMAGE;
  spec.image.profile = PVM_PROFILE_GP07;
  spec.image.code = blob;
  spec.image.code_len = len;
  spec.image.endpoints = &ep;
  spec.image.endpoint_count = 1;
  spec.image.mappings = &m;
  spec.image.mapping_count = 1;
  uint8_t image2[32];
  put_spec(n, &spec, image2);
  memset(&spec, 0, sizeof spec);
  spec.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(image2, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_MEMORY);
  expect_reason(n, "memory: ");


  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.kernel_errors, 7 + 3);   /* the three endpoints above 255 sent raw */
  (void)image_hash;
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

/* An engine whose compile always fails, to reach error 50. */
static int failing_compile(const nub_pvm_program *prog, void **code, nub_pvm_error *err) {
  (void)prog; (void)code;
  if (err) snprintf(err->msg, sizeof err->msg, "injected compile failure");
  return PVM_ERR_UNSUPPORTED;
}

static nub_pvm_engine failing_engine;

static void compile_failure(void **state) {
  (void)state;
  nub_options o = test_options();
  /* the test guest (nub-guest-test) adds the same engine to itself */
  char guest[4096];
  snprintf(guest, sizeof guest, "%s/nub-guest-test", getenv("NUB_BINARY_DIR"));
  o.guest_path = guest;
  failing_engine = nub_pvm_engine_interp;
  failing_engine.name = "test-failing-compile";
  failing_engine.compile = failing_compile;
  failing_engine.compile_within = NULL;    /* the kernel would call it instead */
  assert_int_equal(nk_add_engine(&failing_engine), 0);
  o.engine = failing_engine.name;
  nub *n;
  assert_int_equal(nub_open(&o, &n, NULL), NUB_OK);
  size_t len;
  uint8_t *blob = add_program(&len);
  nub_cap_bundle b;
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  expect_kernel_error(invoke(n, b.items[b.instance].hash, 0, 0, 0, 10), NUB_KERR_COMPILE_FAILED);
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void heap_stats_move_with_publications(void **state) {
  (void)state;
  nub *n = open_nub();
  struct nub_heap_stats before, after;
  uint8_t *data, h[32];
  size_t len;
  assert_int_equal(nub_heap_stats(n, &before, NULL), NUB_OK);
  assert_true(before.available_bytes > 0);
  assert_true(before.allocation_count > 0);        /* the directory itself */
  uint8_t page[4096];
  memset(page, 0xAB, sizeof page);
  assert_int_equal(nub_cap_encode_data_alloc(8192, page, sizeof page, &data, &len, NULL), CAP_OK);
  put(n, data, len, h);
  assert_int_equal(nub_heap_stats(n, &after, NULL), NUB_OK);
  assert_true(after.allocated_bytes >= before.allocated_bytes + len);
  assert_true(after.allocation_count > before.allocation_count);
  assert_true(after.available_bytes <= before.available_bytes - len);
  put(n, data, len, h);                                /* same cap: no growth */
  struct nub_heap_stats again;
  assert_int_equal(nub_heap_stats(n, &again, NULL), NUB_OK);
  assert_memory_equal(&again, &after, sizeof again);
  free(data);
  nub_close(n);
}

static void boot_info(void **state) {
  (void)state;
  nub *n = open_nub();
  struct nub_boot_info bi;
  assert_int_equal(nub_boot_info(n, &bi, NULL), NUB_OK);
  assert_true(bi.magic == NUB_BOOT_MAGIC);
  assert_true(bi.directory_type_id == CAP_DIR_TYPE_ID);
  assert_true(bi.guest_va_base % 4096 == 0);
  assert_true(bi.guest_va_base >= NUB_GUEST_VA_BASE_DEFAULT);
  assert_true(bi.directory_va == bi.guest_va_base + NK_DIRECTORY_OFFSET);
  for (int i = 0; i < 12; i++) assert_true(bi.reserved[i] == 0);
  /* the section every kernel executable carries describes the default base */
  assert_true(nk_boot_info_section.magic == NUB_BOOT_MAGIC);
  assert_true(nk_boot_info_section.guest_va_base == NUB_GUEST_VA_BASE_DEFAULT);
  if (bi.guest_va_base == NUB_GUEST_VA_BASE_DEFAULT)
    assert_memory_equal(&bi, &nk_boot_info_section, sizeof bi);
  /* read from the ELF of the kernel's executable, without a round trip:
  ** nub-guest for proc, this test program for inproc */
  struct nub_boot_info elf;
  nub_error err;
  if (nub_boot_info_elf(n, &elf, &err)) fail_msg("boot_info_elf: %s", err.msg);
  assert_memory_equal(&elf, &nk_boot_info_section, sizeof elf);
  if (bi.guest_va_base == NUB_GUEST_VA_BASE_DEFAULT) assert_memory_equal(&elf, &bi, sizeof bi);
  nub_close(n);
}

static void evict_forces_a_recompile(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len);
  nub_cap_bundle b;
  struct nub_kernel_stats ks;
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  for (int i = 0; i < 3; i++) invoke(n, b.items[b.instance].hash, 0, 1, 2, 100);
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.jit_compiles, 1);          /* the second invoke did not recompile */
  assert_int_equal(ks.jit_cache_hits, 2);
  assert_int_equal(nub_evict_jit(n, NULL), NUB_OK);
  assert_int_equal(invoke(n, b.items[b.instance].hash, 0, 1, 2, 100).return_value, 3);
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.jit_compiles, 2);
  assert_int_equal(ks.jit_evictions, 1);
  assert_int_equal(ks.invocations, 4);
  /* the recompiled program is cached again */
  assert_int_equal(invoke(n, b.items[b.instance].hash, 0, 4, 5, 100).return_value, 9);
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.jit_compiles, 2);
  assert_int_equal(ks.jit_cache_hits, 3);
  nub_cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void unknown_fn_and_bad_payloads(void **state) {
  (void)state;
  nub *n = open_nub();
  uint8_t reply[64];
  size_t got;
  nub_error err;
  assert_int_equal(nub_call_raw(n, 99, NULL, 0, reply, sizeof reply, &got, &err), NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, "unknown function id 99"));
  assert_int_equal(nub_call_raw(n, NUB_FN_SMOKE, "x", 1, reply, sizeof reply, &got, &err), NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, "no payload"));
  uint64_t v;
  assert_int_equal(nub_smoke(n, &v, NULL), NUB_OK);     /* still serving */
  nub_close(n);
}

/* One program, encoded for a profile: r7 = popcount64(r7 + r8); when r9
** is 0 store r7's low byte to the read-only page 0x20000 (then trap),
** else halt.  count_set_bits_64 is 102 under gp07 and 101 under jamv1,
** where 101 is gp07's sbrk: an Image run under the wrong profile returns
** another r7. */
typedef struct profile_program {
  nub_pvm_profile profile;
  nub_pvm_program *prog;       /* the same bytes, loaded here for the expected costs */
  nub_cap_bundle caps;
  uint32_t store_pc, halt_pc;
} profile_program;

static void build_profile_program(profile_program *pp, nub_pvm_profile profile) {
  nub_pvm_builder *b = nub_pvm_builder_new(profile);
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_cap_error cerr;
  const nub_cap_region ro = {0x20000, 0x1000, CAP_ACCESS_RO, NULL, 0};
  uint32_t halt = nub_pvm_builder_label(b);
  nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_COUNT_SET_BITS_64, 7, 0, 7, 0, 0);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 9, 0, 0, halt);
  nub_pvm_builder_insn(b, PVM_OP_STORE_U8, 7, 0, 0, 0x20000, 0);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, halt);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 0, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  if (nub_pvm_builder_finish(b, &blob, &len, &err)) fail_msg("builder: %s", err.msg);
  nub_pvm_builder_free(b);
  pp->profile = profile;
  assert_int_equal(nub_pvm_program_load(profile, blob, len, &pp->prog, &err), PVM_OK);
  /* the blocks: [add, popcount, branch] [store, trap] [load_imm, jump_ind] */
  const nub_pvm_blob *pb = nub_pvm_program_blob(pp->prog);
  uint32_t heads[3], n = 0;
  for (uint32_t pc = 0; pc < pb->code_len && n < 3; pc++)
    if (nub_pvm_program_is_block_start(pp->prog, pc)) heads[n++] = pc;
  assert_int_equal(n, 3);
  pp->store_pc = heads[1];
  pp->halt_pc = heads[2];
  if (nub_cap_build_generic(profile, blob, len, &ro, 1, &pp->caps, &cerr)) fail_msg("build: %s", cerr.msg);
  free(blob);
}

static nub_invocation_result invoke4(nub *n, const nub_cap_bundle *b, uint64_t r7, uint64_t r8,
                                     uint64_t r9, uint64_t gas) {
  nub_invocation_result r;
  nub_error err;
  const uint64_t args[4] = {r7, r8, r9, 0};
  if (nub_invoke(n, b->items[b->instance].hash, 0, args, gas, &r, &err)) fail_msg("invoke: %s", err.msg);
  return r;
}

/* A jamv1 Image and a gp07 Image in one guest: each is loaded under its
** own profile, charged by its own cost model (expected gas from the
** program analysis of the same bytes under the same profile) and follows
** its own read-only store rule (jamv1: page fault; gp07: panic). */
static void images_run_under_their_own_profile(void **state) {
  (void)state;
  profile_program pp[2];
  build_profile_program(&pp[0], PVM_PROFILE_JAMV1);
  build_profile_program(&pp[1], PVM_PROFILE_GP07);
  assert_memory_not_equal(pp[0].caps.items[pp[0].caps.image].hash,
                          pp[1].caps.items[pp[1].caps.image].hash, 32);
  assert_int_equal(pp[0].caps.items[pp[0].caps.image].wire[1], PVM_PROFILE_JAMV1);  /* profile byte */
  assert_int_equal(pp[1].caps.items[pp[1].caps.image].wire[1], PVM_PROFILE_GP07);
  nub *n = open_nub();
  for (int k = 0; k < 2; k++) put_bundle(n, &pp[k].caps);
  const uint64_t gas = 1000, a = 0xFF00000000ull, b = 3;   /* popcount64 10, popcount32 2 */
  for (int round = 0; round < 2; round++)   /* alternating, warm the second time */
    for (int k = 0; k < 2; k++) {
      const profile_program *p = &pp[k];
      int64_t entry = nub_pvm_program_entry_cost(p->prog, 0);
      nub_invocation_result r = invoke4(n, &p->caps, a, b, 1, gas);
      assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
      assert_int_equal(r.return_value, 10);
      assert_int_equal(r.gas_remaining, gas - entry - nub_pvm_program_entry_cost(p->prog, p->halt_pc));
      r = invoke4(n, &p->caps, a, b, 0, gas);
      bool faults = nub_pvm_profile_semantics(p->profile)->ro_store_faults;
      assert_int_equal(faults, p->profile == PVM_PROFILE_JAMV1);
      assert_int_equal(r.exit_reason, faults ? NUB_EXIT_PAGE_FAULT : NUB_EXIT_PANIC);
      assert_int_equal(r.exit_arg, faults ? 0x20000 : 0);
      assert_int_equal(r.return_value, 10);
      assert_int_equal(r.gas_remaining, gas - entry - nub_pvm_program_entry_cost(p->prog, p->store_pc));
    }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.jit_compiles, 2);           /* once per Image, each under its profile */
  nub_close(n);
  for (int k = 0; k < 2; k++) {
    nub_cap_bundle_free(&pp[k].caps);
    nub_pvm_program_free(pp[k].prog);
  }
}

/* A REPUBLISH payload: header, then (hash, len, wire) per item of b
** (hashes as given); returns its length. */
static size_t republish_frame(uint8_t *buf, const nub_cap_bundle *b, uint32_t reserved) {
  nub_republish_header h = {b->count, reserved};
  size_t at = sizeof h;
  memcpy(buf, &h, sizeof h);
  for (uint32_t i = 0; i < b->count; i++) {
    nub_republish_record r;
    memcpy(r.hash, b->items[i].hash, 32);
    r.len = b->items[i].len;
    memcpy(buf + at, &r, sizeof r);
    memcpy(buf + at + sizeof r, b->items[i].wire, b->items[i].len);
    at += sizeof r + b->items[i].len;
  }
  return at;
}

/* REPUBLISH (fn 8) stores records under the given hashes, keeps views
** (the program runs), is idempotent, and names the record and offset of
** every malformed frame, storing the records before it. */
static void republish_stores_records_and_names_bad_ones(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len, got;
  uint8_t *blob = add_program(&len), *frame = malloc(1u << 16);
  nub_cap_bundle b;
  nub_republish_reply r;
  nub_error err;
  generic_bundle(blob, len, &b);
  size_t flen = republish_frame(frame, &b, 0);
  assert_int_equal(nub_call_raw(n, NUB_FN_REPUBLISH, frame, flen, &r, sizeof r, &got, &err), NUB_OK);
  assert_int_equal(got, sizeof r);
  assert_int_equal(r.stored, b.count);
  assert_int_equal(r.inserted, b.count);
  assert_int_equal(invoke(n, b.items[b.instance].hash, 0, 40, 2, 100).return_value, 42);
  assert_int_equal(nub_call_raw(n, NUB_FN_REPUBLISH, frame, flen, &r, sizeof r, &got, &err), NUB_OK);
  assert_int_equal(r.stored, b.count);
  assert_int_equal(r.inserted, 0);                     /* all there already */

  static const struct { const char *what; size_t len; uint32_t count, reserved; uint64_t rec_len; const char *msg; } bad[] = {
    {"short header", 4, 0, 0, 0, "4-byte payload has no 8-byte header"},
    {"reserved word", 8, 0, 7, 0, "reserved header word is 0x7"},
    {"count past the payload", 8 + 20, 1, 0, 0, "1 records cannot fit 20 bytes"},
    {"long record", 8 + 40 + 4, 1, 0, 5, "record 0 at offset 8: length 5 exceeds the 4 bytes left"},
    {"trailing bytes", 8 + 3, 0, 0, 0, "3 bytes after record 0"},
    {"bad wire", 8 + 40 + 4, 1, 0, 4, "record 0 at offset 8: "},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t buf[64];
    nub_republish_header h = {bad[i].count, bad[i].reserved};
    nub_republish_record rec;
    memset(buf, 0xEE, sizeof buf);
    memcpy(buf, &h, sizeof h);
    memset(&rec, 0x42, sizeof rec);
    rec.len = bad[i].rec_len;
    memcpy(buf + sizeof h, &rec, sizeof rec);
    int rc = nub_call_raw(n, NUB_FN_REPUBLISH, buf, bad[i].len, &r, sizeof r, &got, &err);
    if (rc != NUB_ERR_GUEST || !strstr(err.msg, bad[i].msg))
      fail_msg("%s: %s \"%s\", want \"%s\"", bad[i].what, nub_errcode_name(rc), err.msg, bad[i].msg);
  }
  /* a bad record after good ones: those before it stay stored */
  struct nub_kernel_stats before, after;
  assert_int_equal(nub_kernel_stats(n, &before, NULL), NUB_OK);
  uint8_t page[4096] = {1};
  nub_cap_bundle two = {0};
  two.count = 2;
  two.items = calloc(2, sizeof *two.items);
  assert_int_equal(nub_cap_encode_data_alloc(sizeof page, page, sizeof page, &two.items[0].wire, &two.items[0].len, NULL), CAP_OK);
  assert_int_equal(nub_cap_hash_wire(two.items[0].wire, two.items[0].wire + two.items[0].len, two.items[0].hash, NULL), CAP_OK);
  two.items[1].wire = (uint8_t *)"\x09\x09\x09";
  two.items[1].len = 3;
  flen = republish_frame(frame, &two, 0);
  assert_int_equal(nub_call_raw(n, NUB_FN_REPUBLISH, frame, flen, &r, sizeof r, &got, &err), NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, "record 1 at offset"));
  /* a good record, then 10 bytes where the next record header should be */
  two.count = 1;
  flen = republish_frame(frame, &two, 0);
  nub_republish_header h2 = {2, 0};
  memcpy(frame, &h2, sizeof h2);
  memset(frame + flen, 0, 10);
  char want[96];
  snprintf(want, sizeof want, "record 1 at offset %zu: 10 bytes left, the header needs 40", flen);
  assert_int_equal(nub_call_raw(n, NUB_FN_REPUBLISH, frame, flen + 10, &r, sizeof r, &got, &err), NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, want));
  two.count = 2;
  assert_int_equal(nub_kernel_stats(n, &after, NULL), NUB_OK);
  assert_int_equal(after.caps_total, before.caps_total + 1);
  free(two.items[0].wire);
  free(two.items);
  uint64_t v;
  assert_int_equal(nub_smoke(n, &v, NULL), NUB_OK);     /* still serving */
  nub_cap_bundle_free(&b);
  free(frame);
  free(blob);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(smoke),
    cmocka_unit_test(put_cap_returns_the_host_hash),
    cmocka_unit_test(malformed_caps_are_rejected_with_the_decoders_reason),
    cmocka_unit_test(a_full_heap_says_so),
    cmocka_unit_test(a_failed_allocation_does_not_wedge_publishing),
    cmocka_unit_test(add_returns_the_sum_with_the_right_gas),
    cmocka_unit_test(spi_program_with_memory),
    cmocka_unit_test(exits_are_reported),
    cmocka_unit_test(kernel_errors),
    cmocka_unit_test(compile_failure),
    cmocka_unit_test(heap_stats_move_with_publications),
    cmocka_unit_test(boot_info),
    cmocka_unit_test(evict_forces_a_recompile),
    cmocka_unit_test(unknown_fn_and_bad_payloads),
    cmocka_unit_test(images_run_under_their_own_profile),
    cmocka_unit_test(republish_stores_records_and_names_bad_ones),
  };
  nub_options o = test_options();
  printf("backend: %s, engine: %s\n", o.backend == NUB_BACKEND_PROC ? "proc" : "inproc",
         o.engine ? o.engine : "default");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
