/*
** Helpers for the in-process kernel tests: a kernel on an anonymous heap
** with a lane besides the RPC path's (k->primary), and caps published
** through nk_serve's PUT_CAP as a host would.  Include after <cmocka.h>.
*/
#ifndef NUB_KERNEL_TEST_UTIL_H
#define NUB_KERNEL_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "guest/nk_internal.h"
#include "nub/cap.h"

static inline void kt_open(size_t heap_size, void **heap, nk_kernel **k, nk_lane *second) {
  char err[256];
  *heap = mmap(NULL, heap_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (*heap == MAP_FAILED) fail_msg("kernel: no %zu-byte heap", heap_size);
  nk_config cfg = {*heap, heap_size, nk_engine_by_name(NULL), 0};
  if (nk_create(&cfg, k, err, sizeof err) || nk_lane_init(*k, second, err, sizeof err))
    fail_msg("kernel: %s", err);
}

static inline void kt_close(size_t heap_size, void *heap, nk_kernel *k, nk_lane *second) {
  nk_lane_fini(second);
  nk_destroy(k);
  munmap(heap, heap_size);
}

/* PUT_CAP of one wire; the call must succeed. */
static inline void kt_put_cap(nk_kernel *k, const uint8_t *wire, size_t len) {
  nub_request_header req = {NUB_REQUEST_MAGIC, NUB_FN_PUT_CAP, (uint32_t)len};
  nub_response_header resp;
  uint8_t *in = malloc(sizeof req + len), out[4096];
  assert_non_null(in);
  memcpy(in, &req, sizeof req);
  memcpy(in + sizeof req, wire, len);
  nk_serve(k, in, sizeof req + len, out, sizeof out);
  free(in);
  memcpy(&resp, out, sizeof resp);
  assert_int_equal(resp.status, NUB_RPC_OK);
}

/* A gp07 Image of code with one endpoint at pc 0 (*ep) and a heap from
** 0x10000 to 0x20000. */
static inline nub_cap_spec kt_heap_image(const uint8_t *code, size_t code_len, nub_cap_endpoint *ep) {
  nub_cap_spec image = {.kind = CAP_IMAGE};
  *ep = (nub_cap_endpoint){0};
  image.image.profile = PVM_PROFILE_GP07;
  image.image.heap_top = 0x10000;
  image.image.heap_limit = 0x20000;
  image.image.code = code;
  image.image.code_len = code_len;
  image.image.endpoints = ep;
  image.image.endpoint_count = 1;
  return image;
}

/* PUT_CAP of spec's wire: it must succeed and answer the wire's hash
** (out). */
static inline void kt_put_spec(nk_kernel *k, const nub_cap_spec *spec, uint8_t out[NUB_HASH_SIZE]) {
  uint8_t *wire, *in, reply[sizeof(nub_response_header) + NUB_HASH_SIZE + 4 + NUB_PUT_CAP_REASON_MAX];
  size_t len;
  nub_cap_error cerr;
  nub_response_header resp;
  if (nub_cap_encode_alloc(spec, &wire, &len, &cerr)) fail_msg("encode: %s", cerr.msg);
  if (nub_cap_hash_wire(wire, wire + len, out, &cerr)) fail_msg("hash: %s", cerr.msg);
  nub_request_header req = {NUB_REQUEST_MAGIC, NUB_FN_PUT_CAP, (uint32_t)len};
  assert_non_null(in = malloc(sizeof req + len));
  memcpy(in, &req, sizeof req);
  memcpy(in + sizeof req, wire, len);
  nk_serve(k, in, sizeof req + len, reply, sizeof reply);
  free(in);
  free(wire);
  memcpy(&resp, reply, sizeof resp);
  assert_int_equal(resp.status, NUB_RPC_OK);
  assert_int_equal(resp.len, NUB_HASH_SIZE);
  assert_memory_equal(reply + sizeof resp, out, NUB_HASH_SIZE);
}

/* The builder's code (b freed) published as a heap Image (kt_heap_image)
** and a fresh Instance of it. */
static inline void kt_publish_heap_program(nk_kernel *k, nub_pvm_builder *b,
                                           uint8_t image_hash[NUB_HASH_SIZE],
                                           uint8_t inst_hash[NUB_HASH_SIZE]) {
  uint8_t *code;
  size_t code_len;
  assert_int_equal(nub_pvm_builder_finish(b, &code, &code_len, NULL), PVM_OK);
  nub_pvm_builder_free(b);
  nub_cap_endpoint ep;
  nub_cap_spec image = kt_heap_image(code, code_len, &ep), inst = {.kind = CAP_INSTANCE};
  kt_put_spec(k, &image, image_hash);
  nub_cap_instance_fresh(image_hash, &inst.instance);
  kt_put_spec(k, &inst, inst_hash);
  free(code);
}

static inline void kt_publish(nk_kernel *k, const nub_cap_bundle *b) {
  for (uint32_t j = 0; j < b->count; j++) kt_put_cap(k, b->items[j].wire, b->items[j].len);
}

#endif
