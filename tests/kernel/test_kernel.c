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

static void put_bundle(nub *n, const cap_bundle *b) {
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
  pvm_builder *b = pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  pvm_error err;
  pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (pvm_builder_finish(b, &blob, len, &err)) fail_msg("builder: %s", err.msg);
  pvm_builder_free(b);
  return blob;
}

static void generic_bundle(const uint8_t *blob, size_t len, cap_bundle *out) {
  cap_error err;
  if (cap_build_generic(blob, len, NULL, 0, out, &err)) fail_msg("build: %s", err.msg);
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
  cap_bundle b;
  generic_bundle(blob, len, &b);
  for (uint32_t i = 0; i < b.count; i++) {
    assert_int_equal(cap_hash_wire(b.items[i].wire, b.items[i].wire + b.items[i].len, want, NULL), CAP_OK);
    put(n, b.items[i].wire, b.items[i].len, h);
    assert_memory_equal(h, want, 32);
    put(n, b.items[i].wire, b.items[i].len, h);      /* idempotent */
    assert_memory_equal(h, want, 32);
  }
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, b.count);
  assert_int_equal(ks.caps_published, b.count);
  cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void garbage_put_cap_is_rejected(void **state) {
  (void)state;
  nub *n = open_nub();
  const uint8_t garbage[] = {9, 1, 2, 3, 4, 5};
  uint8_t reply[64], h[32];
  size_t got;
  nub_error err;
  assert_int_equal(nub_call_raw(n, NUB_FN_PUT_CAP, garbage, sizeof garbage, reply, sizeof reply, &got, &err), NUB_OK);
  assert_int_equal(got, 32);
  for (int i = 0; i < 32; i++) assert_int_equal(reply[i], 0xFF);
  assert_int_equal(nub_put_cap(n, garbage, sizeof garbage, h, &err), NUB_ERR_REJECTED);
  assert_int_equal(nub_call_raw(n, NUB_FN_PUT_CAP, NULL, 0, reply, sizeof reply, &got, &err), NUB_OK);
  assert_int_equal(got, 32);
  assert_int_equal(reply[0] & reply[31], 0xFF);
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.put_cap_failures, 3);
  assert_int_equal(ks.caps_total, 0);
  nub_close(n);
}

static void add_returns_the_sum_with_the_right_gas(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len);
  cap_bundle b;
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
  cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void spi_program_with_memory(void **state) {
  (void)state;
  /* r7 = [rw] + r7; [rw] = r7; halt through r0 (the SPI return address) */
  pvm_spi_layout lay;
  pvm_spi spi = {0};
  uint8_t *code, *wire;
  size_t code_len, wire_len;
  cap_bundle b;
  cap_error cerr;
  const uint8_t rw[8] = {5};
  spi.rw_data = rw;
  spi.rw_len = sizeof rw;
  spi.stack_size = 4096;
  assert_int_equal(pvm_spi_layout_compute(&spi, 0, &lay, NULL), PVM_OK);
  pvm_builder *pb = pvm_builder_new(PVM_PROFILE_GP07);
  pvm_builder_insn(pb, PVM_OP_LOAD_U64, 8, 0, 0, lay.rw_start, 0);
  pvm_builder_insn(pb, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  pvm_builder_insn(pb, PVM_OP_STORE_U64, 7, 0, 0, lay.rw_start, 0);
  pvm_builder_insn(pb, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  assert_int_equal(pvm_builder_finish(pb, &code, &code_len, NULL), PVM_OK);
  pvm_builder_free(pb);
  spi.code_blob = code;
  spi.code_blob_len = (uint32_t)code_len;
  assert_int_equal(pvm_spi_encode(&spi, &wire, &wire_len, NULL), PVM_OK);
  if (cap_build_spi(wire, wire_len, NULL, 0, &b, &cerr)) fail_msg("build: %s", cerr.msg);
  nub *n = open_nub();
  put_bundle(n, &b);
  for (int i = 0; i < 2; i++) {   /* memory is fresh every time: 5 + 10 twice */
    nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 10, 0, 100);
    assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
    assert_int_equal(r.return_value, 15);
    assert_int_equal(r.gas_remaining, 100 - 4);
  }
  cap_bundle_free(&b);
  free(code);
  free(wire);
  nub_close(n);
}

static void exits_are_reported(void **state) {
  (void)state;
  pvm_builder *pb = pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  cap_bundle b;
  /* endpoint 0: ecalli 77; the following trap panics.  r7 survives. */
  pvm_builder_insn(pb, PVM_OP_ECALLI, 0, 0, 0, 77, 0);
  pvm_builder_insn(pb, PVM_OP_LOAD_U8, 7, 0, 0, 0x20000, 0);
  assert_int_equal(pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  nub *n = open_nub();
  put_bundle(n, &b);
  nub_invocation_result r = invoke(n, b.items[b.instance].hash, 0, 3, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_HOST_CALL);
  assert_int_equal(r.exit_arg, 77);
  assert_int_equal(r.return_value, 3);
  assert_int_equal(r.gas_remaining, 50 - 3);
  cap_bundle_free(&b);
  free(blob);

  /* a load from an unmapped page: page fault with the address */
  pb = pvm_builder_new(PVM_PROFILE_GP07);
  pvm_builder_insn(pb, PVM_OP_LOAD_U8, 7, 0, 0, 0x20010, 0);
  assert_int_equal(pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  r = invoke(n, b.items[b.instance].hash, 0, 0, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_PAGE_FAULT);
  assert_int_equal(r.exit_arg, 0x20000);
  cap_bundle_free(&b);
  free(blob);

  /* an empty program runs into the implicit trap */
  pb = pvm_builder_new(PVM_PROFILE_GP07);
  assert_int_equal(pvm_builder_finish(pb, &blob, &len, NULL), PVM_OK);
  pvm_builder_free(pb);
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  r = invoke(n, b.items[b.instance].hash, 0, 0, 0, 50);
  assert_int_equal(r.exit_reason, NUB_EXIT_PANIC);
  assert_int_equal(r.gas_remaining, 49);
  cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

static void expect_kernel_error(nub_invocation_result r, uint32_t code) {
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, code);
  assert_int_equal(r.return_value, 0);
  assert_int_equal(r.gas_remaining, 0);
}

static void put_spec(nub *n, const cap_spec *spec, uint8_t hash[32]) {
  uint8_t *wire;
  size_t len;
  cap_error err;
  if (cap_encode_alloc(spec, &wire, &len, &err)) fail_msg("encode: %s", err.msg);
  put(n, wire, len, hash);
  free(wire);
}

static void kernel_errors(void **state) {
  (void)state;
  nub *n = open_nub();
  size_t len;
  uint8_t *blob = add_program(&len), data_hash[32], inst_hash[32], reply[64];
  cap_bundle b;
  cap_spec spec;
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

  /* 21: nothing under that hash */
  uint8_t missing[32];
  memset(missing, 0x5A, sizeof missing);
  expect_kernel_error(invoke(n, missing, 0, 0, 0, 10), NUB_KERR_INSTANCE_NOT_FOUND);

  /* 22: the hash is a Data cap */
  uint8_t *data;
  size_t data_len;
  assert_int_equal(cap_encode_data_alloc(4096, (const uint8_t *)"x", 1, &data, &data_len, NULL), CAP_OK);
  put(n, data, data_len, data_hash);
  free(data);
  expect_kernel_error(invoke(n, data_hash, 0, 0, 0, 10), NUB_KERR_NOT_AN_INSTANCE);

  /* 23: an Instance of an Image nobody published */
  memset(&spec, 0, sizeof spec);
  spec.kind = CAP_INSTANCE;
  cap_instance_fresh(missing, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_IMAGE_NOT_FOUND);

  /* 24: an Instance whose image hash names a Data cap */
  cap_instance_fresh(data_hash, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_NOT_AN_IMAGE);

  /* 25: no endpoint with key 5 (only the low byte of the index counts) */
  expect_kernel_error(invoke(n, b.items[b.instance].hash, 5, 0, 0, 10), NUB_KERR_ENDPOINT_NOT_FOUND);
  assert_int_equal(invoke(n, b.items[b.instance].hash, 0x100, 1, 1, 10).exit_reason, NUB_EXIT_HALT);

  /* 26: a mapping whose Data cap was never published */
  cap_mapping m = {0x10000, 0x1000, CAP_ACCESS_RO, {0}};
  cap_endpoint ep = {0};
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
  cap_instance_fresh(image2, &spec.instance);
  put_spec(n, &spec, inst_hash);
  expect_kernel_error(invoke(n, inst_hash, 0, 0, 0, 10), NUB_KERR_MEMORY);

  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.kernel_errors, 7);
  (void)image_hash;
  cap_bundle_free(&b);
  free(blob);
  nub_close(n);
}

/* An engine whose compile always fails, to reach error 50. */
static int failing_compile(const pvm_program *prog, void **code, pvm_error *err) {
  (void)prog; (void)code;
  if (err) snprintf(err->msg, sizeof err->msg, "injected compile failure");
  return PVM_ERR_UNSUPPORTED;
}

static pvm_engine failing_engine;

static void compile_failure(void **state) {
  (void)state;
  nub_options o = test_options();
  /* the test guest (nub-guest-test) adds the same engine to itself */
  char guest[4096];
  snprintf(guest, sizeof guest, "%s/nub-guest-test", getenv("NUB_BINARY_DIR"));
  o.guest_path = guest;
  failing_engine = pvm_engine_interp;
  failing_engine.name = "test-failing-compile";
  failing_engine.compile = failing_compile;
  assert_int_equal(nk_add_engine(&failing_engine), 0);
  o.engine = failing_engine.name;
  nub *n;
  assert_int_equal(nub_open(&o, &n, NULL), NUB_OK);
  size_t len;
  uint8_t *blob = add_program(&len);
  cap_bundle b;
  generic_bundle(blob, len, &b);
  put_bundle(n, &b);
  expect_kernel_error(invoke(n, b.items[b.instance].hash, 0, 0, 0, 10), NUB_KERR_COMPILE_FAILED);
  cap_bundle_free(&b);
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
  assert_int_equal(cap_encode_data_alloc(8192, page, sizeof page, &data, &len, NULL), CAP_OK);
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
  cap_bundle b;
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
  cap_bundle_free(&b);
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

/* A REPUBLISH payload: header, then (hash, len, wire) per item of b
** (hashes as given); returns its length. */
static size_t republish_frame(uint8_t *buf, const cap_bundle *b, uint32_t reserved) {
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
  cap_bundle b;
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
  cap_bundle two = {0};
  two.count = 2;
  two.items = calloc(2, sizeof *two.items);
  assert_int_equal(cap_encode_data_alloc(sizeof page, page, sizeof page, &two.items[0].wire, &two.items[0].len, NULL), CAP_OK);
  assert_int_equal(cap_hash_wire(two.items[0].wire, two.items[0].wire + two.items[0].len, two.items[0].hash, NULL), CAP_OK);
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
  cap_bundle_free(&b);
  free(frame);
  free(blob);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(smoke),
    cmocka_unit_test(put_cap_returns_the_host_hash),
    cmocka_unit_test(garbage_put_cap_is_rejected),
    cmocka_unit_test(add_returns_the_sum_with_the_right_gas),
    cmocka_unit_test(spi_program_with_memory),
    cmocka_unit_test(exits_are_reported),
    cmocka_unit_test(kernel_errors),
    cmocka_unit_test(compile_failure),
    cmocka_unit_test(heap_stats_move_with_publications),
    cmocka_unit_test(boot_info),
    cmocka_unit_test(evict_forces_a_recompile),
    cmocka_unit_test(unknown_fn_and_bad_payloads),
    cmocka_unit_test(republish_stores_records_and_names_bad_ones),
  };
  nub_options o = test_options();
  printf("backend: %s, engine: %s\n", o.backend == NUB_BACKEND_PROC ? "proc" : "inproc",
         o.engine ? o.engine : "default");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
