/*
** The kernel's lane threads and their slots (src/guest/nk_lanes.c),
** in-process and under the sanitizers: nub-guest runs them without (it
** is built without), and the inproc backend runs lanes on its callers'
** threads, so this is where the slot loop meets ASan.  Host threads post
** to slots with the host library's own doorbell (src/host/lanes.c).
*/
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "chan/nk_chan.h"
#include "guest/nk.h"
#include "guest/nk_internal.h"
#include "host/host.h"
#include "host/host_test_util.h"
#include "kernel_test_util.h"

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

/* Publish one cap through the RPC path; its hash in h. */
/* r7 = the heap's first word, which then becomes r7: sbrk(r8) gives its
** address; a fresh memory reads 0. */
static void publish_swap(fixture *f, uint8_t image_hash[NUB_HASH_SIZE], uint8_t inst_hash[NUB_HASH_SIZE]) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  nub_pvm_builder_insn(b, PVM_OP_SBRK, 8, 0, 9, 0, 0);               /* r9 = sbrk(r8) */
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U64, 10, 9, 0, 0, 0);      /* r10 = [r9] */
  nub_pvm_builder_insn(b, PVM_OP_STORE_IND_U64, 7, 9, 0, 0, 0);      /* [r9] = r7 */
  nub_pvm_builder_insn(b, PVM_OP_MOVE_REG, 10, 0, 7, 0, 0);          /* r7 = r10 */
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  kt_publish_heap_program(f->k, b, image_hash, inst_hash);
}

/* What the settle hook saw on lane 0's thread after its first DONE. */
static struct {
  nk_kernel *k;
  uint32_t ordinal;               /* of the swap program's Image */
  uint32_t passes;                /* NK_TEST_LANE_SETTLE points passed */
  uint64_t invocations;           /* counted by then */
  uint32_t pins;                  /* of the program, by then */
  bool posted_in_time;
  sem_t posted;                   /* the host has posted the next call */
  uint32_t settled;               /* NK_TEST_LANE_SETTLED points passed */
  sem_t settled_sem;              /* posted at each: the host's DONE comes before it */
  uint32_t kept_memory;           /* of them, with lane 0's memory still in use */
} S;

/* The lane's memory: its heap page (publish_swap's heap_top) mapped or not. */
static bool holds_memory(const nk_lane *lane) {
  return lane->mem_used || nub_pvm_mem_access(lane->mem, 0x10000) != PVM_ACCESS_NONE;
}

static void settle_hook(nk_kernel *k, nk_test_point point) {
  if (k != S.k) return;
  if (point == NK_TEST_LANE_SETTLED) {
    S.settled++;
    if (holds_memory(nk_lanes_lane(k, 0))) S.kept_memory++;
    sem_post(&S.settled_sem);
    return;
  }
  if (point != NK_TEST_LANE_SETTLE || S.passes++) return;
  S.invocations = __atomic_load_n(&k->stats.invocations, __ATOMIC_RELAXED);
  pthread_mutex_lock(&k->cache_lock);
  const nk_compiled *c = k->compiled[S.ordinal];
  S.pins = c ? __atomic_load_n(&c->pins, __ATOMIC_RELAXED) : ~0u;
  pthread_mutex_unlock(&k->cache_lock);
  S.posted_in_time = tu_wait_for(&S.posted);   /* the next call waits in the slot meanwhile */
}

static nub_invocation_result call(nub_lane_slot *s, const uint8_t inst[NUB_HASH_SIZE], uint64_t x,
                                  uint64_t job, bool then_post_back) {
  static const host_backend_ops ops = {"test", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  host_backend b = {.ops = &ops};
  nub_invoke_packet pk = {.initial_gas = 100, .args = {x, 4096}};
  nub_invocation_result r;
  char text[NUB_KERNEL_ERROR_TEXT_MAX + 1];
  memcpy(pk.instance_hash, inst, NUB_HASH_SIZE);
  host_lane_post(s, &pk, job);
  if (then_post_back) sem_post(&S.posted);
  assert_int_equal(host_lane_wait(&b, 0, s, NULL), NUB_OK);
  assert_int_equal(host_lane_take(s, 0, &r, text, NULL), NUB_OK);
  if (r.exit_reason != NUB_EXIT_HALT) fail_msg("job %llu: exit %u arg %u: %s", (unsigned long long)job, r.exit_reason, r.exit_arg, text);
  return r;
}

/* A lane gives its invocation's Instances and memory back after its DONE
** store (nk_invoke_settle), so the host may post the next call before
** that work is done; the hook holds the lane thread there until it has.
** The next call must still run on a fresh memory (the first call's
** store is not seen), and everything the host can see of the first call
** (its count, the program's pin) must be done before DONE. */
static void the_next_call_posted_before_a_lane_settles_runs_on_a_fresh_memory(void **state) {
  fixture *f = *state;
  uint8_t image[NUB_HASH_SIZE], inst[NUB_HASH_SIZE];
  publish_swap(f, image, inst);
  assert_non_null(nk_caps_find(f->k, image, &S.ordinal));
  start_lane(f, 0);
  S.k = f->k;
  S.passes = 0;
  S.posted_in_time = false;
  S.settled = S.kept_memory = 0;
  sem_init(&S.posted, 0, 0);
  sem_init(&S.settled_sem, 0, 0);
  nk_test_hook = settle_hook;
  nub_invocation_result first = call(&f->slots[0], inst, 111, 1, false);
  nub_invocation_result second = call(&f->slots[0], inst, 222, 2, true);
  nub_invocation_result third = call(&f->slots[0], inst, 333, 3, false);
  /* the lane passes its points after the DONE the host has seen */
  bool settled = true;
  for (int i = 0; i < 3; i++) settled = settled && tu_wait_for(&S.settled_sem);
  nk_test_hook = NULL;
  sem_destroy(&S.posted);
  sem_destroy(&S.settled_sem);
  assert_true(settled);
  assert_true(S.posted_in_time);
  assert_int_equal(S.passes, 3);
  assert_int_equal(S.settled, 3);
  assert_int_equal(S.kept_memory, 0);           /* the settle gave each call's pages back */
  assert_int_equal(first.return_value, 0);
  assert_int_equal(second.return_value, 0);     /* not 111 */
  assert_int_equal(third.return_value, 0);
  assert_int_equal(second.gas_remaining, first.gas_remaining);
  assert_int_equal(S.invocations, 1);
  assert_int_equal(S.pins, 0);
  assert_int_equal(f->k->stats.invocations, 3);
  assert_int_equal(f->k->stats.kernel_errors, 0);
}

/* The RPC path (INVOKE on the primary lane) settles before its reply:
** once the host has the result, the memory is back in the pool. */
static void an_invoke_gives_its_memory_back_once_its_result_is_out(void **state) {
  fixture *f = *state;
  uint8_t image[NUB_HASH_SIZE], inst[NUB_HASH_SIZE];
  publish_swap(f, image, inst);
  nub_invoke_packet pk = {.initial_gas = 100, .args = {111, 4096}};
  nub_invocation_result r;
  size_t got;
  memcpy(pk.instance_hash, inst, NUB_HASH_SIZE);
  assert_int_equal(serve(f, NUB_FN_INVOKE_CACHED, &pk, sizeof pk, &r, sizeof r, &got), NUB_RPC_OK);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_false(holds_memory(&f->k->primary));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(an_invoke_gives_its_memory_back_once_its_result_is_out, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(lane_threads_serve_their_slots, setup, teardown),
    cmocka_unit_test_setup_teardown(the_next_call_posted_before_a_lane_settles_runs_on_a_fresh_memory,
                                    setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
