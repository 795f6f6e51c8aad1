/*
** Lanes (include/nub/nub.h, "Threads"; docs/kernel.md, "Lanes"): many
** host threads invoking through one handle while caps are published and
** the JIT cache is evicted; one compile per Image however many lanes ask;
** the guest dying under a lane fails every call in flight, and the next
** calls run on a fresh guest holding every cap.  NUB_TEST_BACKEND picks
** proc (default) or inproc; the crash tests need proc.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/guest_ext.h"
#include "host/host.h"
#include "host/host_test_util.h"

#define THREADS 4
#define PER_THREAD 10000
#define PUBLISHED 8            /* bundles the publisher adds while the threads run */

static bool is_proc(void) {
  const char *b = getenv("NUB_TEST_BACKEND");
  return !b || strcmp(b, "inproc");
}

/* r7 counts down to 0 (a loop of r7 iterations), then ecalli call (0: halt). */
static void loop_bundle(uint32_t call, nub_cap_bundle *out) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_cap_error cerr;
  uint32_t loop = nub_pvm_builder_label(b);
  nub_pvm_builder_bind(b, loop);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, (uint64_t)-1, 0);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 7, 0, 0, loop);
  if (call) nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, call, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, &len, &err)) fail_msg("builder: %s", err.msg);
  nub_pvm_builder_free(b);
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, out, &cerr)) fail_msg("build: %s", cerr.msg);
  free(blob);
}

typedef struct worker {
  nub *n;
  const nub_cap_bundle *b;
  uint64_t id;
  uint32_t ok, wrong, failed;
  nub_error first;
} worker;

static void *hammer(void *arg) {
  worker *w = arg;
  for (uint64_t i = 0; i < PER_THREAD; i++) {
    uint64_t args[4] = {w->id << 32, i, 0, 0};
    nub_invocation_result r;
    nub_error err;
    if (nub_invoke(w->n, w->b->items[w->b->instance].hash, 0, args, 100, &r, &err)) {
      if (!w->failed++) w->first = err;
    } else if (r.exit_reason == NUB_EXIT_HALT && r.return_value == (w->id << 32) + i) {
      w->ok++;
    } else {
      w->wrong++;
    }
  }
  return NULL;
}

static uint64_t stat_invocations(nub *n) {
  struct nub_kernel_stats s;
  nub_error err;
  if (nub_kernel_stats(n, &s, &err)) fail_msg("stats: %s", err.msg);
  return s.invocations;
}

/* 4 threads x 10 000 invocations over 2 lanes; meanwhile the main thread
** publishes PUBLISHED new Images and runs each (a compile while the lanes
** run), and evicts every compiled program half way. */
static void threads_share_two_lanes_while_caps_are_published_and_evicted(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.lanes = 2;
  nub *n = ht_open(&o);
  assert_int_equal(nub_lanes(n), 2);
  nub_cap_bundle add, extra[PUBLISHED];
  ht_add_bundle(&add);
  ht_publish(n, &add);
  uint64_t before = stat_invocations(n);
  worker w[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.n = n, .b = &add, .id = (uint64_t)i + 1};
    assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
  }
  for (uint64_t k = 0; k < PUBLISHED; k++) {
    nub_error err;
    tu_add_bundle(&extra[k], 1, k + 100);
    ht_publish(n, &extra[k]);
    if (k == PUBLISHED / 2 && nub_evict_jit(n, &err)) fail_msg("evict: %s", err.msg);
    const uint64_t args[4] = {3, 4, 0, 0};
    nub_invocation_result r;
    if (nub_invoke(n, extra[k].items[extra[k].instance].hash, 0, args, 100, &r, &err))
      fail_msg("invoke of published %llu: %s", (unsigned long long)k, err.msg);
    assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
    assert_int_equal(r.return_value, 7 + k + 100);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    if (w[i].failed) fail_msg("thread %d: %u calls failed, first: %s", i, w[i].failed, w[i].first.msg);
    assert_int_equal(w[i].wrong, 0);
    assert_int_equal(w[i].ok, PER_THREAD);
  }
  /* nothing lost or doubled: the kernel ran exactly these */
  assert_int_equal(stat_invocations(n) - before, THREADS * PER_THREAD + PUBLISHED);
  struct nub_kernel_stats s;
  assert_int_equal(nub_kernel_stats(n, &s, NULL), NUB_OK);
  assert_true(s.jit_evictions >= 1);
  for (int k = 0; k < PUBLISHED; k++) nub_cap_bundle_free(&extra[k]);
  nub_cap_bundle_free(&add);
  nub_close(n);
}

/* Many lanes asking for one new Image at once: it is compiled once. */
static void lanes_asking_for_one_image_compile_it_once(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.lanes = 4;
  nub *n = ht_open(&o);
  nub_cap_bundle b;
  loop_bundle(0, &b);
  ht_publish(n, &b);
  nub_invoke_req reqs[16];
  nub_invocation_result out[16];
  int rcs[16];
  for (int i = 0; i < 16; i++) {
    reqs[i] = (nub_invoke_req){.endpoint = 0, .args = {1000 + (uint64_t)i}, .initial_gas = 1u << 20};
    memcpy(reqs[i].instance, b.items[b.instance].hash, NUB_HASH_SIZE);
  }
  nub_error err;
  if (nub_invoke_batch(n, reqs, 16, out, rcs, &err)) fail_msg("batch: %s", err.msg);
  for (int i = 0; i < 16; i++) {
    assert_int_equal(rcs[i], NUB_OK);
    assert_int_equal(out[i].exit_reason, NUB_EXIT_HALT);
    assert_int_equal(out[i].return_value, 0);
  }
  struct nub_kernel_stats s;
  assert_int_equal(nub_kernel_stats(n, &s, NULL), NUB_OK);
  assert_int_equal(s.jit_compiles, 1);
  assert_int_equal(s.jit_cache_hits, 15);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* Bad counts are refused; a kernel error on a lane carries its reason. */
static void lane_limits_and_errors(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  nub *n;
  nub_error err;
  o.lanes = NUB_MAX_LANES + 1;
  assert_int_equal(nub_open(&o, &n, &err), NUB_ERR_ARG);
  assert_non_null(strstr(err.msg, "lanes 65"));
  o.lanes = 0;                           /* the CPUs this process may use */
  n = ht_open(&o);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  assert_true(nub_lanes(n) >= 1 && nub_lanes(n) <= NUB_MAX_LANES);
  assert_true((long)nub_lanes(n) <= cpus);
  nub_hash missing;
  memset(missing, 0x5A, sizeof missing);
  nub_invocation_result r;
  assert_int_equal(nub_invoke(n, missing, 0, NULL, 10, &r, &err), NUB_OK);
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_INSTANCE_NOT_FOUND);
  /* LANE_START validates what it is given */
  uint32_t lane = NUB_MAX_LANES;
  size_t got;
  assert_int_equal(nub_call_raw(n, NUB_FN_LANE_START, &lane, sizeof lane, NULL, 0, &got, &err),
                   NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, "lane 64"));
  lane = 0;                              /* running already (the invoke above) */
  assert_int_equal(nub_call_raw(n, NUB_FN_LANE_START, &lane, sizeof lane, NULL, 0, &got, &err),
                   NUB_ERR_GUEST);
  assert_non_null(strstr(err.msg, "lane 0 is running"));
  assert_int_equal(nub_call_raw(n, NUB_FN_LANE_START, &lane, 3, NULL, 0, &got, &err),
                   NUB_ERR_GUEST);
  nub_close(n);
}

typedef struct call {
  nub *n;
  const nub_cap_bundle *b;
  uint64_t count, gas;           /* gas 0: unbounded */
  int rc;
  nub_error err;
  nub_invocation_result r;
} call;

static void *one_call(void *arg) {
  call *c = arg;
  const uint64_t args[4] = {c->count, 0, 0, 0};
  c->rc = nub_invoke(c->n, c->b->items[c->b->instance].hash, 0, args,
                     c->gas ? c->gas : UINT64_MAX >> 1, &c->r, &c->err);
  return NULL;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* What the host reads from a slot is the guest's: an error text too long
** is a protocol error (and not copied), bytes outside printable ASCII
** become '?', a death notice in owner fails the wait at once. */
static void hostile_slot_fields_are_checked(void **state) {
  (void)state;
  static const host_backend_ops ops = {"test", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  host_backend b = {.ops = &ops};
  nub_lane_slot s;
  nub_invocation_result r;
  char text[NUB_KERNEL_ERROR_TEXT_MAX + 1];
  nub_error err;
  memset(&s, 0, sizeof s);
  s.status = NUB_LANE_DONE;
  s.result.exit_reason = NUB_EXIT_HALT;
  s.result.return_value = 77;
  s.error_len = NUB_KERNEL_ERROR_TEXT_MAX + 1;
  assert_int_equal(host_lane_wait(&b, 3, &s, &err), NUB_OK);
  assert_int_equal(host_lane_take(&s, 3, &r, text, &err), NUB_ERR_PROTOCOL);
  assert_non_null(strstr(err.msg, "lane 3: error text of 241 bytes, at most 240"));
  assert_string_equal(text, "");
  assert_int_equal(s.status, NUB_LANE_EMPTY);
  s.status = NUB_LANE_DONE;
  s.error_len = 3;
  memcpy(s.error, "a\x07" "b", 3);
  assert_int_equal(host_lane_take(&s, 3, &r, text, &err), NUB_OK);
  assert_string_equal(text, "a?b");
  assert_int_equal(r.return_value, 77);
  s.status = NUB_LANE_RUNNING;              /* never DONE, but the guest died */
  s.owner = 1234 | FUTEX_OWNER_DIED;
  assert_int_equal(host_lane_wait(&b, 3, &s, &err), NUB_ERR_GUEST_DIED);
  assert_non_null(strstr(err.msg, "lane 3"));
}

/* A long program on one lane holds up nothing: while it runs, another
** thread's invocations on the other lane, a publication and an eviction
** all finish.  (Its gas is about a second of interpretation, the rest a
** few ms: 1e9 in the guest process, 3e8 inproc where the interpreter runs
** under the sanitizers.  With 3e8 in the guest process the long one once
** finished first on a machine loaded 4-fold.) */
static void a_long_program_does_not_hold_up_the_other_lanes(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.lanes = 2;
  o.engine = "interp";
  nub *n = ht_open(&o);
  nub_cap_bundle slow, add, late;
  loop_bundle(0, &slow);
  ht_add_bundle(&add);
  ht_publish(n, &slow);
  ht_publish(n, &add);
  ht_add(n, &add, 1, 1);                      /* compiled, a lane started */
  call c = {.n = n, .b = &slow, .count = UINT64_MAX,
            .gas = o.backend == NUB_BACKEND_INPROC ? 300000000 : 1000000000};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, one_call, &c), 0);
  sleep_ms(20);
  for (uint64_t i = 0; i < 200; i++) assert_int_equal(ht_add(n, &add, i, 1).return_value, i + 1);
  tu_add_bundle(&late, 1, 7);
  ht_publish(n, &late);
  assert_int_equal(nub_evict_jit(n, NULL), NUB_OK);
  const uint64_t args[4] = {1, 2, 0, 0};
  nub_invocation_result r;
  assert_int_equal(nub_invoke(n, late.items[late.instance].hash, 0, args, 100, &r, NULL), NUB_OK);
  assert_int_equal(r.return_value, 10);
  /* the long one is still running: nothing above waited for it */
  struct nub_kernel_stats s;
  assert_int_equal(nub_kernel_stats(n, &s, NULL), NUB_OK);
  uint64_t before = s.invocations;
  pthread_join(t, NULL);
  assert_int_equal(c.rc, NUB_OK);
  assert_int_equal(c.r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(nub_kernel_stats(n, &s, NULL), NUB_OK);
  assert_int_equal(s.invocations, before + 1);
  nub_cap_bundle_free(&slow);
  nub_cap_bundle_free(&add);
  nub_cap_bundle_free(&late);
  nub_close(n);
}

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* One lane, busy with a long program (in the guest process): three more
** calls queue for it asleep, the one in flight waits asleep too, so this
** process uses a fraction of a core meanwhile (spinning waiters would
** take all the cores they get), and every queued call then succeeds. */
static void calls_queued_for_a_busy_lane_sleep(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.lanes = 1;
  o.engine = "interp";
  nub *n = ht_open(&o);
  nub_cap_bundle slow, add;
  loop_bundle(0, &slow);
  ht_add_bundle(&add);
  ht_publish(n, &slow);
  ht_publish(n, &add);
  call c[4] = {{.n = n, .b = &slow, .count = UINT64_MAX, .gas = 300000000},
               {.n = n, .b = &add, .count = 5}, {.n = n, .b = &add, .count = 6},
               {.n = n, .b = &add, .count = 7}};
  pthread_t t[4];
  assert_int_equal(pthread_create(&t[0], NULL, one_call, &c[0]), 0);
  sleep_ms(20);
  for (int i = 1; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, one_call, &c[i]), 0);
  sleep_ms(10);
  double cpu0 = cpu_now(), wall0 = wall_now();
  pthread_join(t[0], NULL);
  double cpu = cpu_now() - cpu0, wall = wall_now() - wall0;
  print_message("    host CPU %.1f ms over %.1f ms of queueing\n", cpu * 1e3, wall * 1e3);
  assert_int_equal(c[0].rc, NUB_OK);
  assert_int_equal(c[0].r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_true(wall > 0.05);                 /* the long program did keep the lane busy */
  assert_true(cpu < 0.25 * wall);
  for (int i = 1; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(c[i].rc, NUB_OK);
    assert_int_equal(c[i].r.return_value, c[i].count);   /* r7 + r8 with r8 = 0 */
  }
  nub_cap_bundle_free(&slow);
  nub_cap_bundle_free(&add);
  nub_close(n);
}

/* Two lanes run long loops; a third lane's program kills the guest.
** Every call in flight fails with NUB_ERR_GUEST_DIED, none waits
** forever; then every call succeeds on the restarted guest, which holds
** every cap again. */
static void a_lane_that_kills_the_guest_fails_every_call_in_flight(void **state) {
  (void)state;
  nub_options o = ht_options("nub-guest-test");
  o.lanes = 3;
  o.engine = NK_TEST_CRASH_ENGINE;
  nub *n = ht_open(&o);
  nub_cap_bundle slow, crash, add;
  loop_bundle(0, &slow);
  loop_bundle(NK_TEST_CRASH_CALL, &crash);
  ht_add_bundle(&add);
  ht_publish(n, &slow);
  ht_publish(n, &crash);
  ht_publish(n, &add);
  call c[3] = {{.n = n, .b = &slow, .count = 4000000000ull}, {.n = n, .b = &slow, .count = 4000000000ull}, {.n = n, .b = &crash, .count = 1}};
  pthread_t t[3];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, one_call, &c[i]), 0);
  sleep_ms(200);                          /* both loops run (seconds of work each) */
  assert_int_equal(pthread_create(&t[2], NULL, one_call, &c[2]), 0);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    if (c[i].rc != NUB_ERR_GUEST_DIED)
      fail_msg("call %d: %s (%s), expected guest-died", i, nub_errcode_name(c[i].rc),
               c[i].rc ? c[i].err.msg : "no error");
  }
  /* one replacement, and the others say so */
  struct nub_sandbox_report rep;
  assert_int_equal(nub_sandbox_report(n, &rep, NULL), NUB_OK);
  assert_int_equal(rep.restarts, 1);
  for (int i = 0; i < 3; i++) assert_non_null(strstr(c[i].err.msg, "restarted"));
  /* all calls succeed after the restart, on every lane */
  nub_invoke_req reqs[30];
  nub_invocation_result out[30];
  for (int i = 0; i < 30; i++) {
    reqs[i] = (nub_invoke_req){.endpoint = 0, .args = {(uint64_t)i, 1000}, .initial_gas = 100};
    memcpy(reqs[i].instance, add.items[add.instance].hash, NUB_HASH_SIZE);
  }
  nub_error err;
  if (nub_invoke_batch(n, reqs, 30, out, NULL, &err)) fail_msg("after restart: %s", err.msg);
  for (int i = 0; i < 30; i++) assert_int_equal(out[i].return_value, (uint64_t)i + 1000);
  c[0].count = 1000;                      /* the slow program too: its cap was re-published */
  one_call(&c[0]);
  assert_int_equal(c[0].rc, NUB_OK);
  assert_int_equal(c[0].r.exit_reason, NUB_EXIT_HALT);
  nub_cap_bundle_free(&slow);
  nub_cap_bundle_free(&crash);
  nub_cap_bundle_free(&add);
  nub_close(n);
}

/* A lane whose program runs past the call timeout: the guest is killed,
** the other lane's call in flight fails too, and the next calls succeed. */
static void a_hung_lane_is_killed_at_the_timeout(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.lanes = 2;
  o.engine = "interp";
  o.call_timeout_ms = 300;
  nub *n = ht_open(&o);
  nub_cap_bundle slow, add;
  loop_bundle(0, &slow);
  ht_add_bundle(&add);
  ht_publish(n, &slow);
  ht_publish(n, &add);
  call c[2] = {{.n = n, .b = &slow, .count = UINT64_MAX}, {.n = n, .b = &slow, .count = UINT64_MAX}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, one_call, &c[i]), 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    if (c[i].rc != NUB_ERR_TIMEOUT && c[i].rc != NUB_ERR_GUEST_DIED)
      fail_msg("call %d: %s, expected timeout or guest-died", i, nub_errcode_name(c[i].rc));
  }
  assert_true(c[0].rc == NUB_ERR_TIMEOUT || c[1].rc == NUB_ERR_TIMEOUT);
  assert_int_equal(ht_add(n, &add, 2, 3).return_value, 5);
  nub_cap_bundle_free(&slow);
  nub_cap_bundle_free(&add);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest both[] = {
    cmocka_unit_test(threads_share_two_lanes_while_caps_are_published_and_evicted),
    cmocka_unit_test(lanes_asking_for_one_image_compile_it_once),
    cmocka_unit_test(lane_limits_and_errors),
    cmocka_unit_test(a_long_program_does_not_hold_up_the_other_lanes),
    cmocka_unit_test(hostile_slot_fields_are_checked),
  };
  /* a guest that can die, a lane in another process: proc only (inproc
  ** runs the tests above alone) */
  const struct CMUnitTest proc_only[] = {
    cmocka_unit_test(calls_queued_for_a_busy_lane_sleep),
    cmocka_unit_test(a_lane_that_kills_the_guest_fails_every_call_in_flight),
    cmocka_unit_test(a_hung_lane_is_killed_at_the_timeout),
  };
  int failed = cmocka_run_group_tests_name("lanes", both, NULL, NULL);
  if (is_proc()) failed += cmocka_run_group_tests_name("lanes_proc", proc_only, NULL, NULL);
  return failed;
}
