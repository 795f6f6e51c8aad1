/*
** Lanes across a guest replacement (src/host/nub.c, drain_lanes): the
** interleavings a preemption can make, written out with the test hook
** (host_test_hook, host.h) at the named points instead of sleeps.  After
** a replacement every lane must be UNSTARTED, else a call posted to a
** lane the new guest never started waits for call_timeout_ms (and kills
** the healthy new guest) or, without a timeout, forever.  proc only: the
** guest must die.
*/
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/host.h"
#include "host/host_test_util.h"

#define TIMEOUT_MS 1000u         /* what a call on a lane never started takes to fail */

/* Who the hook serves on this thread; the hook does nothing for others. */
enum role { NONE, STARTER, FIRST, SECOND, REPLACER, DRAIN_STARTER, DRAINER };
static _Thread_local enum role role;

static struct {
  pid_t pid;                      /* the guest to kill */
  nub_cap_bundle add;
  int starts;                     /* LANE_STARTED points passed, on any thread */
  sem_t second_at_lease, go, second_leased, replaced, drained, marked, drainer_done;
  int drainer_rc;
} S;

static void *run_drainer(void *arg);

/* SIGKILL the guest and wait until it is dead (a zombie or gone): its
** robust futexes are released by then, so lane waiters see it. */
static void kill_guest(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  assert_int_equal(kill(pid, SIGKILL), 0);
  for (int i = 0; i < 5000; i++) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    const char *paren = strrchr(buf, ')');
    if (paren && (paren[2] == 'Z' || paren[2] == 'X')) return;
    usleep(1000);
  }
  fail_msg("guest %d still runs 5 s after SIGKILL", (int)pid);
}

static pid_t guest_pid(nub *n) {
  struct nub_sandbox_report rep;
  assert_int_equal(nub_sandbox_report(n, &rep, NULL), NUB_OK);
  return rep.guest_pid;
}

static int add(nub *n, uint64_t x, nub_invocation_result *r, nub_error *err) {
  const uint64_t args[4] = {x, 1, 0, 0};
  return nub_invoke(n, S.add.items[S.add.instance].hash, 0, args, 100, r, err);
}

static void add_ok(nub *n, uint64_t x) {
  nub_invocation_result r;
  nub_error err;
  if (add(n, x, &r, &err)) fail_msg("add(%llu): %s (%s)", (unsigned long long)x, err.msg, nub_errcode_name(err.code));
  assert_int_equal(r.return_value, x + 1);
}

static void hook(nub *n, host_test_point point, uint32_t lane) {
  int start = point == HOST_TEST_LANE_STARTED ? __atomic_fetch_add(&S.starts, 1, __ATOMIC_SEQ_CST) : -1;
  switch (role) {
  case STARTER:   /* the first lane start: a second call starts the other lane meanwhile */
    if (start == 0) {
      role = NONE;
      add_ok(n, 5);
      role = STARTER;
    }
    break;
  case FIRST:     /* replaces the guest; its drain lets SECOND lease, then resets */
    if (point == HOST_TEST_DRAIN_SCANNED) {
      sem_post(&S.go);
      if (!tu_wait_for(&S.second_leased)) fail_msg("the second call never leased during the drain");
    } else if (point == HOST_TEST_REPLACED) {
      sem_post(&S.replaced);
    }
    break;
  case SECOND:    /* passed the recovery check before the replacement began */
    if (point == HOST_TEST_LEASE) {
      sem_post(&S.second_at_lease);
      tu_wait_for(&S.go);
    } else if (point == HOST_TEST_LEASED_DRAINING) {
      sem_post(&S.second_leased);
      tu_wait_for(&S.replaced);   /* gives the lane back only now */
    }
    break;
  case REPLACER:  /* in the starter's gap: the guest dies, a call replaces it */
    if (start == 0) {
      uint64_t v;
      nub_error err;
      kill_guest(S.pid);
      role = NONE;
      assert_int_equal(nub_smoke(n, &v, &err), NUB_ERR_GUEST_DIED);
      assert_non_null(strstr(err.msg, "guest restarted"));
      role = REPLACER;
    }
    break;
  case DRAIN_STARTER:  /* in the starter's gap: a replacement drains, then waits */
    if (start == 0) {
      pthread_t t;
      kill_guest(S.pid);
      assert_int_equal(pthread_create(&t, NULL, run_drainer, n), 0);
      assert_int_equal(pthread_detach(t), 0);
      if (!tu_wait_for(&S.drained)) fail_msg("the replacement never finished its drain");
    } else if (point == HOST_TEST_LANE_MARKED) {
      sem_post(&S.marked);
    }
    break;
  case DRAINER:   /* replacing: the drain is over, the generation moves only now */
    if (point == HOST_TEST_DRAINED) {
      sem_post(&S.drained);
      if (!tu_wait_for(&S.marked)) fail_msg("the starter never marked its lane");
    }
    break;
  case NONE:
    break;
  }
  (void)lane;
}

/* A call on a dead guest, which replaces it (role DRAINER). */
static void *run_drainer(void *arg) {
  uint64_t v;
  nub_error err;
  role = DRAINER;
  S.drainer_rc = nub_smoke(arg, &v, &err);
  role = NONE;
  sem_post(&S.drainer_done);
  return NULL;
}

static nub *open_two_lanes(void) {
  nub_options o = ht_options(NULL);
  o.lanes = 2;
  o.call_timeout_ms = TIMEOUT_MS;
  nub *n = ht_open(&o);
  ht_add_bundle(&S.add);
  ht_publish(n, &S.add);
  S.starts = 0;
  sem_init(&S.second_at_lease, 0, 0);
  sem_init(&S.go, 0, 0);
  sem_init(&S.second_leased, 0, 0);
  sem_init(&S.replaced, 0, 0);
  sem_init(&S.drained, 0, 0);
  sem_init(&S.marked, 0, 0);
  sem_init(&S.drainer_done, 0, 0);
  host_test_hook = hook;
  return n;
}

static void close_two_lanes(nub *n) {
  host_test_hook = NULL;
  nub_cap_bundle_free(&S.add);
  nub_close(n);
}

typedef struct call {
  nub *n;
  enum role role;
  uint64_t x;
  int rc;
  nub_error err;
  nub_invocation_result r;
} call;

static void *run_call(void *arg) {
  call *c = arg;
  role = c->role;
  c->rc = add(c->n, c->x, &c->r, &c->err);
  role = NONE;
  return NULL;
}

/* Both lanes started and idle, on a guest that is dead now. */
static void two_idle_lanes_then_kill(nub *n) {
  role = STARTER;
  add_ok(n, 1);               /* lane 0; the hook runs add(5) on lane 1 meanwhile */
  role = NONE;
  assert_int_equal(S.starts, 2);
  S.pid = guest_pid(n);
  kill_guest(S.pid);
}

/* The new guest was never killed again, and both lanes serve. */
static void replaced_once_then_both_lanes_serve(nub *n) {
  struct nub_sandbox_report rep;
  assert_int_equal(nub_sandbox_report(n, &rep, NULL), NUB_OK);
  assert_int_equal(rep.restarts, 1);
  assert_int_not_equal(rep.guest_pid, S.pid);
  for (uint64_t x = 30; x < 34; x++) add_ok(n, x);
  close_two_lanes(n);
}

/* The first call starts lane 0, the hook replaces the guest in its gap
** as `as`: the call succeeds on lane 0 started again in the new guest. */
static void starter_call(nub *n, enum role as) {
  nub_invocation_result r;
  nub_error err;
  S.pid = guest_pid(n);
  role = as;
  int rc = add(n, 10, &r, &err);
  role = NONE;
  if (rc) fail_msg("the starter's call: %s (%s)", nub_errcode_name(rc), err.msg);
  assert_int_equal(S.starts, 2);          /* started in the old guest, then in the new one */
  assert_int_equal(r.return_value, 11);
}

/* FIRST's call finds the guest dead and replaces it; SECOND passed the
** recovery check before, and its lock-free lease takes the idle lane 1
** after the drain found nothing BUSY but before it reset the lanes.  It
** sees the drain and gives the lane back after the replacement: as
** UNSTARTED, so its call starts lane 1 in the new guest and succeeds. */
static void a_lane_leased_during_a_drain_is_started_again_in_the_new_guest(void **state) {
  (void)state;
  nub *n = open_two_lanes();
  two_idle_lanes_then_kill(n);
  call second = {.n = n, .role = SECOND, .x = 20};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_call, &second), 0);
  if (!tu_wait_for(&S.second_at_lease)) fail_msg("the second call never reached its lease");
  call first = {.n = n, .role = FIRST, .x = 10};
  run_call(&first);
  pthread_join(t, NULL);
  assert_int_equal(first.rc, NUB_ERR_GUEST_DIED);
  assert_non_null(strstr(first.err.msg, "guest restarted"));
  if (second.rc)
    fail_msg("second call: %s (%s)", nub_errcode_name(second.rc), second.err.msg);
  assert_int_equal(second.r.return_value, 21);
  replaced_once_then_both_lanes_serve(n);
}

/* The starter of lane 0 has started it (LANE_START answered) and let go
** of the call lock; before it marks the lane IDLE the guest dies and a
** call replaces it (the drain leaves a STARTING lane to its starter).
** The starter sees the replacement and starts the lane again in the new
** guest: its call succeeds. */
static void a_lane_started_just_before_a_replacement_is_started_again(void **state) {
  (void)state;
  nub *n = open_two_lanes();
  starter_call(n, REPLACER);
  replaced_once_then_both_lanes_serve(n);
}

/* As above, but the starter takes lane_mx while the replacement is
** between its drain and the new generation: only the drain tells it that
** the lane's guest is gone.  Marked IDLE, the lane would be leased after
** the replacement and the call posted to a lane the new guest never
** started (it fails after TIMEOUT_MS, killing the new guest); marked
** UNSTARTED, it is started again in the new guest. */
static void a_lane_started_while_a_replacement_drains_is_started_again(void **state) {
  (void)state;
  nub *n = open_two_lanes();
  starter_call(n, DRAIN_STARTER);
  if (!tu_wait_for(&S.drainer_done)) fail_msg("the replacing call never returned");
  assert_int_equal(S.drainer_rc, NUB_ERR_GUEST_DIED);
  replaced_once_then_both_lanes_serve(n);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test(a_lane_leased_during_a_drain_is_started_again_in_the_new_guest),
    cmocka_unit_test(a_lane_started_just_before_a_replacement_is_started_again),
    cmocka_unit_test(a_lane_started_while_a_replacement_drains_is_started_again),
  };
  return cmocka_run_group_tests_name("lane_races", t, NULL, NULL);
}
