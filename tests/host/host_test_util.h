/*
** Helpers for the host-library tests: options for the proc backend, the
** "add two arguments" program as caps, publication.  Include after
** <cmocka.h>.
*/
#ifndef NUB_HOST_TEST_UTIL_H
#define NUB_HOST_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nub/cap.h"
#include "nub/nub.h"
#include "testutil.h"

/* Options for the backend named by NUB_TEST_BACKEND (default proc) with
** the given guest executable from the build tree (NULL: nub-guest). */
static inline nub_options ht_options(const char *guest) {
  static char path[4096];
  const char *dir = getenv("NUB_BINARY_DIR"), *backend = getenv("NUB_TEST_BACKEND");
  nub_options o;
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "inproc") ? NUB_BACKEND_INPROC : NUB_BACKEND_PROC;
  o.heap_size = 64u << 20;
  o.io_size = 1u << 20;
  snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", guest ? guest : "nub-guest");
  o.guest_path = path;
  return o;
}

static inline nub *ht_open(const nub_options *o) {
  nub *n;
  nub_error err;
  if (nub_open(o, &n, &err)) fail_msg("nub_open: %s (%s)", err.msg, nub_errcode_name(err.code));
  return n;
}

/* r7 = r7 + r8, then halt: an Image and a fresh Instance. */
static inline void ht_add_bundle(nub_cap_bundle *out) { tu_add_bundle(out, 0, 0); }

static inline void ht_publish(nub *n, const nub_cap_bundle *b) {
  for (uint32_t i = 0; i < b->count; i++) {
    nub_hash h;
    nub_error err;
    if (nub_put_cap(n, b->items[i].wire, b->items[i].len, h, &err)) fail_msg("put_cap: %s", err.msg);
    assert_memory_equal(h, b->items[i].hash, NUB_HASH_SIZE);
  }
}

/* Invoke the add Instance; returns the invocation result. */
static inline nub_invocation_result ht_add(nub *n, const nub_cap_bundle *b, uint64_t x, uint64_t y) {
  const uint64_t args[4] = {x, y, 0, 0};
  nub_invocation_result r;
  nub_error err;
  if (nub_invoke(n, b->items[b->instance].hash, 0, args, 100, &r, &err))
    fail_msg("invoke: %s (%s)", err.msg, nub_errcode_name(err.code));
  return r;
}

#endif
