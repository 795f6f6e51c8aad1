/*
** The kernel's lane threads and their slots (src/guest/nk_lanes.c),
** in-process and under the sanitizers: nub-guest runs them without (it
** is built without), and the inproc backend runs lanes on its callers'
** threads, so this is where the slot loop meets ASan.  Host threads post
** to slots with the host library's own doorbell (src/host/lanes.c).
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "chan/nk_chan.h"
#include "guest/nk.h"
#include "host/host.h"
#include "host/host_test_util.h"

#define LANES 2
#define PER_LANE 3000
#define HEAP_SIZE (32u << 20)

typedef struct fixture {
  void *heap;
  nub_lane_slot *slots;
  nk_kernel *k;
  uint8_t in[16384], out[16384];
} fixture;

/* One request frame through nk_serve; the response status and payload. */
static uint32_t serve(fixture *f, uint32_t fn, const void *payload, size_t len, void *reply,
                      size_t cap, size_t *got) {
  nub_request_header req = {NUB_REQUEST_MAGIC, fn, len};
  nub_response_header resp;
  memcpy(f->in, &req, sizeof req);
  if (len) memcpy(f->in + sizeof req, payload, len);
  nk_serve(f->k, f->in, sizeof f->in, f->out, sizeof f->out);
  memcpy(&resp, f->out, sizeof resp);
  *got = (size_t)resp.len < cap ? (size_t)resp.len : cap;
  if (*got) memcpy(reply, f->out + sizeof resp, *got);
  return resp.status;
}

static void start_lane(fixture *f, uint32_t n) {
  char msg[256];
  size_t got;
  nk_store(&f->slots[n].status, NUB_LANE_STARTING);
  uint32_t st = serve(f, NUB_FN_LANE_START, &n, sizeof n, msg, sizeof msg - 1, &got);
  msg[got] = 0;
  if (st != NUB_RPC_OK) fail_msg("lane_start %u: %u %s", n, st, msg);
  assert_int_equal(nk_load(&f->slots[n].status), NUB_LANE_EMPTY);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  char err[256];
  f->heap = mmap(NULL, HEAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  f->slots = aligned_alloc(64, LANES * sizeof *f->slots);
  memset(f->slots, 0, LANES * sizeof *f->slots);
  nk_config cfg = {f->heap, HEAP_SIZE, nk_engine_by_name("interp"), 0};
  if (nk_create(&cfg, &f->k, err, sizeof err) || nk_lanes_attach(f->k, f->slots, LANES, err, sizeof err))
    fail_msg("kernel: %s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  nk_destroy(f->k);                  /* stops and joins every lane thread */
  free(f->slots);
  munmap(f->heap, HEAP_SIZE);
  free(f);
  return 0;
}

typedef struct poster {
  nub_lane_slot *slot;
  uint32_t lane;
  const uint8_t *instance;
  uint32_t ok;
} poster;

static void *post_many(void *arg) {
  poster *p = arg;
  static const host_backend_ops ops = {"test", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  host_backend b = {.ops = &ops};
  for (uint64_t i = 0; i < PER_LANE; i++) {
    nub_invoke_packet pk = {.initial_gas = 100, .args = {i, p->lane * 1000000ull}};
    nub_invocation_result r;
    char text[NUB_KERNEL_ERROR_TEXT_MAX + 1];
    memcpy(pk.instance_hash, p->instance, NUB_HASH_SIZE);
    host_lane_post(p->slot, &pk, i);
    if (host_lane_wait(&b, p->lane, p->slot, NULL) ||
        host_lane_take(p->slot, p->lane, &r, text, NULL))
      return NULL;
    if (r.exit_reason == NUB_EXIT_HALT && r.return_value == i + p->lane * 1000000ull) p->ok++;
  }
  return NULL;
}

/* Two lane threads serve their slots while the RPC path publishes; the
** kernel's stats count every invocation once; nk_destroy ends them. */
static void lane_threads_serve_their_slots(void **state) {
  fixture *f = *state;
  nub_cap_bundle add;
  uint8_t hash[NUB_HASH_SIZE + 4 + NUB_PUT_CAP_REASON_MAX];
  size_t got;
  ht_add_bundle(&add);
  for (uint32_t i = 0; i < add.count; i++)
    assert_int_equal(serve(f, NUB_FN_PUT_CAP, add.items[i].wire, add.items[i].len, hash,
                           sizeof hash, &got), NUB_RPC_OK);
  for (uint32_t n = 0; n < LANES; n++) start_lane(f, n);
  poster p[LANES];
  pthread_t t[LANES];
  for (uint32_t n = 0; n < LANES; n++) {
    p[n] = (poster){&f->slots[n], n, add.items[add.instance].hash, 0};
    assert_int_equal(pthread_create(&t[n], NULL, post_many, &p[n]), 0);
  }
  /* publishing and evicting while they run */
  for (int i = 0; i < 50; i++) {
    uint8_t *d;
    size_t len;
    uint8_t byte = (uint8_t)i;
    assert_int_equal(nub_cap_encode_data_alloc(4096, &byte, 1, &d, &len, NULL), CAP_OK);
    assert_int_equal(serve(f, NUB_FN_PUT_CAP, d, len, hash, sizeof hash, &got), NUB_RPC_OK);
    assert_int_equal(got, NUB_HASH_SIZE);
    free(d);
    if (i == 25) assert_int_equal(serve(f, NUB_FN_EVICT_JIT_ALL, NULL, 0, hash, 0, &got), NUB_RPC_OK);
  }
  for (uint32_t n = 0; n < LANES; n++) {
    pthread_join(t[n], NULL);
    assert_int_equal(p[n].ok, PER_LANE);
  }
  struct nub_kernel_stats s;
  assert_int_equal(serve(f, NUB_FN_KERNEL_STATS, NULL, 0, &s, sizeof s, &got), NUB_RPC_OK);
  assert_int_equal(s.invocations, LANES * PER_LANE);
  assert_int_equal(s.caps_published, add.count + 50);
  /* a lane already running, a lane past the slots, a slot not STARTING */
  uint32_t n = 0;
  char msg[256];
  assert_int_equal(serve(f, NUB_FN_LANE_START, &n, sizeof n, msg, sizeof msg, &got), NUB_RPC_BAD_PAYLOAD);
  n = LANES;
  assert_int_equal(serve(f, NUB_FN_LANE_START, &n, sizeof n, msg, sizeof msg, &got), NUB_RPC_BAD_PAYLOAD);
  nub_cap_bundle_free(&add);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(lane_threads_serve_their_slots, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
