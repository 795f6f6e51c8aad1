/*
** A compile's room in the memory budget (src/guest/nk_invoke.c,
** compiled_locked): an Image is refused for good only when its compile
** had its full bound.  Short of room because another lane's compile
** holds it, a compile waits for that one; short because programs that
** run now are pinned, it fails that call only.  In-process, two lanes;
** the interleaving is written out with nk_test_hook (nk_internal.h).
*/
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "kernel_test_util.h"
#include "testutil.h"

#include "guest/nk_internal.h"
#include "nub/pvm.h"

#define HEAP_SIZE (64u << 20)
#define BIG_ADDS 4000u           /* the big program: r7 + r8 + 1, 4000 times */

typedef struct fixture {
  void *heap;
  nk_kernel *k;
  nk_lane second;                /* a lane besides the RPC path's (k->primary) */
  nub_cap_bundle big, small;     /* r7 + r8 + BIG_ADDS; r7 + r8 */
  uint64_t big_bytes;            /* the big program, compiled and cached */
} fixture;


static nub_invocation_result invoke(fixture *f, nk_lane *lane, const nub_cap_bundle *b) {
  nub_invoke_packet pk = {.initial_gas = 100000, .args = {2, 3}};
  nub_invocation_result r;
  memcpy(pk.instance_hash, b->items[b->instance].hash, NUB_HASH_SIZE);
  nk_invoke_on(f->k, lane, &pk, &r);
  return r;
}

static void invoke_ok(fixture *f, nk_lane *lane, const nub_cap_bundle *b, uint64_t want) {
  nub_invocation_result r = invoke(f, lane, b);
  if (r.exit_reason != NUB_EXIT_HALT || r.return_value != want)
    fail_msg("exit %u arg %u value %llu (%s)", r.exit_reason, r.exit_arg,
             (unsigned long long)r.return_value, lane->last_error);
}

static const nub_cap_image_view *image_of(fixture *f, const nub_cap_bundle *b, uint32_t *ordinal) {
  const nub_cap_view *v = nk_caps_find(f->k, b->items[b->image].hash, ordinal);
  assert_non_null(v);
  return &v->image;
}

/* The bound compiled_locked gives an Image's compile. */
static uint64_t full_bound(fixture *f, const nub_cap_bundle *b) {
  uint64_t full = (uint64_t)image_of(f, b, NULL)->code_len * NK_COMPILE_BYTES_PER_BYTE + NK_COMPILE_SLACK;
  return full < f->k->budget ? full : f->k->budget;
}

static void set_budget(nk_kernel *k, uint64_t budget) {
  pthread_mutex_lock(&k->cache_lock);
  k->budget = budget;
  pthread_mutex_unlock(&k->cache_lock);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kt_open(HEAP_SIZE, &f->heap, &f->k, &f->second);
  tu_add_bundle(&f->big, BIG_ADDS, 1);
  tu_add_bundle(&f->small, 0, 1);
  kt_publish(f->k, &f->big);
  kt_publish(f->k, &f->small);
  invoke_ok(f, &f->k->primary, &f->big, 5 + BIG_ADDS);   /* to measure it */
  f->big_bytes = f->k->primary.warm.c->bytes;
  nk_jit_cache_clear(f->k);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  nk_test_hook = NULL;
  kt_close(HEAP_SIZE, f->heap, f->k, &f->second);
  nub_cap_bundle_free(&f->big);
  nub_cap_bundle_free(&f->small);
  free(f);
  return 0;
}

/* ---- the hook: the big compile holds the whole budget until the small
** one has found it short ---- */

enum role { NONE, BIG, SMALL };
static _Thread_local enum role role;
static sem_t big_reserved, small_short;
static int small_waits;

static void wait_for(sem_t *sem) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += 5;
  while (sem_timedwait(sem, &t) && errno == EINTR) {
  }
}

static void hook(nk_kernel *k, nk_test_point point) {
  (void)k;
  if (role == BIG && point == NK_TEST_COMPILE_RESERVED) {
    sem_post(&big_reserved);
    wait_for(&small_short);        /* posted by SMALL's wait, or after its call */
  } else if (role == SMALL && point == NK_TEST_COMPILE_WAITS) {
    small_waits++;
    sem_post(&small_short);        /* under cache_lock: post only */
  }
}

typedef struct big_call {
  fixture *f;
  nub_invocation_result r;
} big_call;

static void *run_big(void *arg) {
  big_call *c = arg;
  role = BIG;
  c->r = invoke(c->f, &c->f->k->primary, &c->f->big);
  role = NONE;
  return NULL;
}

/* The big program's compile reserves the whole budget; meanwhile the
** small one, on another lane, finds no room.  Alone it fits, so it
** waits for the big compile and then compiles: both calls succeed, and
** the small Image is not refused afterwards. */
static void a_compile_short_of_room_held_by_another_compile_waits_for_it(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  /* room for the small compile's full bound beside the big program
  ** cached (pinned while it runs), and the big compile's bound is all of
  ** it */
  uint64_t small_full = full_bound(f, &f->small);
  set_budget(k, small_full + 2 * f->big_bytes);
  if (full_bound(f, &f->big) < k->budget)
    fail_msg("the big program's bound %llu is below the budget %llu: make it bigger",
             (unsigned long long)full_bound(f, &f->big), (unsigned long long)k->budget);
  sem_init(&big_reserved, 0, 0);
  sem_init(&small_short, 0, 0);
  nk_test_hook = hook;
  big_call big = {.f = f};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_big, &big), 0);
  wait_for(&big_reserved);
  pthread_mutex_lock(&k->cache_lock);
  assert_int_equal(k->compiling_bytes, k->budget);   /* the big compile holds it all */
  pthread_mutex_unlock(&k->cache_lock);
  role = SMALL;
  nub_invocation_result small = invoke(f, &f->second, &f->small);
  role = NONE;
  sem_post(&small_short);          /* if it did not wait, let the big one go on */
  pthread_join(t, NULL);
  nk_test_hook = NULL;
  if (small.exit_reason != NUB_EXIT_HALT)
    fail_msg("small: exit %u arg %u (%s)", small.exit_reason, small.exit_arg, f->second.last_error);
  assert_int_equal(small.return_value, 5);
  assert_int_equal(small_waits, 1);
  assert_int_equal(big.r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(big.r.return_value, 5 + BIG_ADDS);
  assert_int_equal(k->stats.jit_compiles, 3);   /* the big one twice (setup), the small once */
  assert_int_equal(k->compiling_bytes, 0);
  invoke_ok(f, &k->primary, &f->small, 5);
  invoke_ok(f, &f->second, &f->big, 5 + BIG_ADDS);
}

/* The big program pinned (a frame runs it) takes all but 16 bytes of
** the budget: the small compile cannot get its room, and that call
** fails with out-of-memory.  Once the pin is let go the next call evicts
** the big program and compiles the small one. */
static void a_compile_short_of_room_pinned_by_running_programs_fails_only_that_call(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  uint32_t ordinal;
  const nub_cap_image_view *im = image_of(f, &f->big, &ordinal);
  nk_compiled *pinned;
  assert_int_equal(nk_compiled_image(k, &f->second, im, ordinal, &pinned), 0);
  set_budget(k, k->cache_bytes + 16);
  nub_invocation_result r = invoke(f, &k->primary, &f->small);
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_OUT_OF_MEMORY);
  char reason[sizeof k->primary.last_error];
  memcpy(reason, k->primary.last_error, sizeof reason);
  nk_compiled_unpin(k, pinned);
  invoke_ok(f, &k->primary, &f->small, 5);   /* not refused: tried again, and it fits */
  assert_non_null(strstr(reason, "the next call tries again"));
  assert_null(k->compiled[ordinal]);         /* evicted for it */
  assert_int_equal(k->stats.jit_evictions, 2);   /* setup's clear, and this */
}

/* A program over its full bound is still refused at once, every time. */
static void a_compile_over_its_full_bound_is_refused_for_good(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  set_budget(k, f->big_bytes / 2);            /* the big one's bound: all of it, too little */
  nub_invocation_result r = invoke(f, &k->primary, &f->big);
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_OUT_OF_MEMORY);
  uint64_t compiles = k->stats.jit_compiles;
  r = invoke(f, &k->primary, &f->big);
  assert_int_equal(r.exit_arg, NUB_KERR_OUT_OF_MEMORY);
  assert_non_null(strstr(k->primary.last_error, "refused before"));
  assert_int_equal(k->stats.jit_compiles, compiles);
}

int main(void) {
  const struct CMUnitTest t[] = {
    cmocka_unit_test_setup_teardown(a_compile_short_of_room_held_by_another_compile_waits_for_it, setup, teardown),
    cmocka_unit_test_setup_teardown(a_compile_short_of_room_pinned_by_running_programs_fails_only_that_call, setup, teardown),
    cmocka_unit_test_setup_teardown(a_compile_over_its_full_bound_is_refused_for_good, setup, teardown),
  };
  return cmocka_run_group_tests_name("compile_room", t, NULL, NULL);
}
