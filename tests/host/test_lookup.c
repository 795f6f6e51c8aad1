/*
** nub_lookup: direct reads of the guest's directory through the host's
** read-only view of the guest heap, while another thread keeps publishing
** (the directory grows and rehashes underneath).  Every cap published
** before a lookup starts is found with its exact bytes, caps never
** published are never found, and at the end the guest agrees on both.
** Runs on the backend named by NUB_TEST_BACKEND (default proc).
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "host_test_util.h"

#define PRESENT 1500
#define ABSENT 300

typedef struct cap {
  uint8_t *wire;
  size_t len;
  nub_hash hash;
} cap;

typedef struct world {
  nub *n;
  cap present[PRESENT], absent[ABSENT];
  uint32_t published;        /* caps [0, published) are in; written by the publisher */
  int publisher_rc;
} world;

static void make_cap(cap *c, uint32_t seed) {
  uint8_t bytes[96];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(seed * 131 + i * 7 + (seed >> 8));
  memcpy(bytes, &seed, sizeof seed);
  if (cap_encode_data_alloc(4096, bytes, sizeof bytes, &c->wire, &c->len, NULL) ||
      cap_hash_wire(c->wire, c->wire + c->len, c->hash, NULL))
    fail_msg("cannot build cap %u", seed);
}

static void *publisher(void *arg) {
  world *w = arg;
  for (uint32_t i = 0; i < PRESENT; i++) {
    nub_hash h;
    nub_error err;
    if ((w->publisher_rc = nub_put_cap(w->n, w->present[i].wire, w->present[i].len, h, &err)))
      return NULL;
    if (memcmp(h, w->present[i].hash, NUB_HASH_SIZE)) { w->publisher_rc = -1; return NULL; }
    __atomic_store_n(&w->published, i + 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

/* Looks c up; found must agree with expect (-1: either is fine). */
static void check_lookup(world *w, const cap *c, int expect) {
  uint8_t buf[8192];
  size_t len = 0;
  nub_error err;
  int rc = nub_lookup(w->n, c->hash, buf, sizeof buf, &len, &err);
  if (rc != NUB_OK && rc != NUB_ERR_NOT_FOUND)
    fail_msg("%s (%s)", err.msg, nub_errcode_name(rc));
  if (expect >= 0 && (rc == NUB_OK) != expect)
    fail_msg("lookup found=%d, expected %d", rc == NUB_OK, expect);
  if (rc == NUB_OK) {
    assert_int_equal(len, c->len);
    assert_memory_equal(buf, c->wire, len);
  }
}

static void lookups_agree_while_the_guest_inserts(void **state) {
  (void)state;
  world *w = calloc(1, sizeof *w);
  nub_options o = ht_options(NULL);
  w->n = ht_open(&o);
  for (uint32_t i = 0; i < PRESENT; i++) make_cap(&w->present[i], i);
  for (uint32_t i = 0; i < ABSENT; i++) make_cap(&w->absent[i], 1000000 + i);

  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, publisher, w), 0);
  uint64_t during = 0, rng = 0x9E3779B97F4A7C15ull;
  for (;;) {
    uint32_t done = __atomic_load_n(&w->published, __ATOMIC_ACQUIRE);
    if (done == PRESENT) break;
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t r = (uint32_t)(rng >> 33);
    if (done) check_lookup(w, &w->present[r % done], 1);                /* published: found */
    check_lookup(w, &w->present[done + r % (PRESENT - done)], -1);      /* in flight: either */
    check_lookup(w, &w->absent[r % ABSENT], 0);                        /* never published */
    during++;
  }
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(w->publisher_rc, 0);
  print_message("    %s: %llu lookup rounds during %d insertions\n", nub_backend_name(w->n),
                (unsigned long long)during, PRESENT);
  assert_true(during > 0);

  /* afterwards: all there, none of the others; the guest agrees */
  struct nub_kernel_stats ks;
  assert_int_equal(nub_kernel_stats(w->n, &ks, NULL), NUB_OK);
  assert_int_equal(ks.caps_total, PRESENT);
  for (uint32_t i = 0; i < PRESENT; i++) check_lookup(w, &w->present[i], 1);
  for (uint32_t i = 0; i < ABSENT; i++) check_lookup(w, &w->absent[i], 0);
  for (uint32_t i = 0; i < PRESENT; i += 97) {
    nub_invocation_result r;
    assert_int_equal(nub_invoke(w->n, w->present[i].hash, 0, NULL, 10, &r, NULL), NUB_OK);
    assert_int_equal(r.exit_arg, NUB_KERR_NOT_AN_INSTANCE);     /* the guest has it */
  }
  for (uint32_t i = 0; i < ABSENT; i += 31) {
    nub_invocation_result r;
    assert_int_equal(nub_invoke(w->n, w->absent[i].hash, 0, NULL, 10, &r, NULL), NUB_OK);
    assert_int_equal(r.exit_arg, NUB_KERR_INSTANCE_NOT_FOUND);  /* the guest does not */
  }
  for (uint32_t i = 0; i < PRESENT; i++) free(w->present[i].wire);
  for (uint32_t i = 0; i < ABSENT; i++) free(w->absent[i].wire);
  nub_close(w->n);
  free(w);
}

static void lookup_reports_sizes(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  nub *n = ht_open(&o);
  cap c;
  make_cap(&c, 7);
  nub_hash h;
  assert_int_equal(nub_put_cap(n, c.wire, c.len, h, NULL), NUB_OK);
  uint8_t small[8];
  size_t len = 0;
  nub_error err;
  assert_int_equal(nub_lookup(n, c.hash, small, sizeof small, &len, &err), NUB_ERR_TOO_LARGE);
  assert_int_equal(len, c.len);                        /* the size it needs */
  assert_int_equal(nub_lookup(n, c.hash, NULL, 0, NULL, &err), NUB_ERR_ARG);
  free(c.wire);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(lookups_agree_while_the_guest_inserts),
    cmocka_unit_test(lookup_reports_sizes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
