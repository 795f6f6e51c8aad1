/*
** The lane's warm pin (src/guest/nk_invoke.c, pin_warm): the compiled
** program a lane's warm entry names is pinned without the cache lock
** while it is cached.  An evict never frees a pinned program, an evicted
** one is looked up (and compiled) again, the struct outlives its code
** while a warm entry names it, and uses made without the lock count in
** the LRU order.  In-process, under the sanitizers: a use after free, a
** double free or a leak fails the test.
*/
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "kernel_test_util.h"
#include "testutil.h"

#include "guest/nk_internal.h"
#include "nub/pvm.h"

#define HEAP_SIZE (32u << 20)
#define PROGRAMS 3

typedef struct fixture {
  void *heap;
  nk_kernel *k;
  nk_lane second;                   /* a lane besides the RPC path's (k->primary) */
  nub_cap_bundle prog[PROGRAMS];    /* r7 = r7 + r8 + 100 i */
} fixture;


static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kt_open(HEAP_SIZE, &f->heap, &f->k, &f->second);
  for (uint32_t i = 0; i < PROGRAMS; i++) {
    tu_add_bundle(&f->prog[i], 1, 100u * i);
    kt_publish(f->k, &f->prog[i]);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kt_close(HEAP_SIZE, f->heap, f->k, &f->second);
  for (uint32_t i = 0; i < PROGRAMS; i++) nub_cap_bundle_free(&f->prog[i]);
  free(f);
  return 0;
}

/* Program i on lane: r7 + r8 + 100 i, checked. */
static void invoke(fixture *f, nk_lane *lane, uint32_t i, uint64_t a, uint64_t b) {
  const nub_cap_bundle *p = &f->prog[i];
  nub_invoke_packet pk = {.initial_gas = 1000, .args = {a, b}};
  nub_invocation_result r;
  memcpy(pk.instance_hash, p->items[p->instance].hash, NUB_HASH_SIZE);
  nk_invoke_on(f->k, lane, &pk, &r);
  if (r.exit_reason != NUB_EXIT_HALT || r.return_value != a + b + 100u * i)
    fail_msg("program %u: exit %u arg %u value %llu (%s)", i, r.exit_reason, r.exit_arg,
             (unsigned long long)r.return_value, lane->last_error);
}

static uint32_t image_ordinal(fixture *f, uint32_t i) {
  uint32_t ordinal;
  const nub_cap_bundle *p = &f->prog[i];
  assert_non_null(nk_caps_find(f->k, p->items[p->image].hash, &ordinal));
  return ordinal;
}

static uint32_t pins(const nk_compiled *c) { return __atomic_load_n(&c->pins, __ATOMIC_RELAXED); }

/* The warm entry names the cached program (a lane_ref, no pin between
** invokes); an evict releases its code at once but keeps the struct the
** entry names, and the next invoke compiles again and lets it go. */
static void an_evict_releases_the_warm_program_and_the_next_invoke_compiles_again(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  invoke(f, &k->primary, 0, 1, 2);
  invoke(f, &k->primary, 0, 3, 4);          /* warm: pinned without the lock */
  assert_int_equal(k->stats.jit_compiles, 1);
  assert_int_equal(k->stats.jit_cache_hits, 1);
  nk_compiled *c = k->primary.warm.c;
  assert_non_null(c);
  assert_ptr_equal(k->compiled[image_ordinal(f, 0)], c);
  assert_int_equal(c->lane_refs, 1);
  assert_int_equal(pins(c), 0);
  assert_int_equal(nk_jit_cache_clear(k), 1);
  assert_int_equal(pins(c), NK_PIN_EVICTED);     /* never pinned again */
  assert_true(c->released);
  assert_null(c->prog);
  assert_null(k->compiled[image_ordinal(f, 0)]);
  invoke(f, &k->primary, 0, 5, 6);          /* the struct is read, then let go (freed) */
  assert_int_equal(k->stats.jit_compiles, 2);
  c = k->primary.warm.c;
  assert_ptr_equal(k->compiled[image_ordinal(f, 0)], c);
  assert_int_equal(c->lane_refs, 1);
  assert_int_equal(pins(c), 0);
  /* another Image on the lane: the entry names that one instead */
  invoke(f, &k->primary, 1, 1, 1);
  assert_int_equal(c->lane_refs, 0);
  assert_ptr_equal(k->primary.warm.c, k->compiled[image_ordinal(f, 1)]);
}

/* A program pinned by a running frame (here: held through
** nk_compiled_image) survives an evict with its code; the warm pin of the
** lane that names it fails and compiles again; the last unpin frees it. */
static void a_pinned_program_outlives_an_evict(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  nk_compiled *held;
  invoke(f, &k->primary, 0, 1, 2);
  nk_compiled *c = k->primary.warm.c;
  const nub_cap_view *image = nk_caps_find(k, f->prog[0].items[f->prog[0].image].hash, NULL);
  assert_int_equal(nk_compiled_image(k, &f->second, &image->image, image_ordinal(f, 0), &held), 0);
  assert_ptr_equal(held, c);
  assert_int_equal(pins(c), 1);
  assert_int_equal(nk_jit_cache_clear(k), 1);
  assert_int_equal(pins(c), NK_PIN_EVICTED | 1);
  assert_false(c->released);
  assert_non_null(c->prog);
  assert_true(nub_pvm_program_blob(c->prog)->code_len > 0);   /* still there (ASan) */
  invoke(f, &k->primary, 0, 7, 8);          /* not pinned again: a new compile */
  assert_int_equal(k->stats.jit_compiles, 2);
  assert_ptr_not_equal(k->primary.warm.c, c);
  assert_int_equal(c->lane_refs, 0);
  assert_non_null(c->prog);
  nk_compiled_unpin(k, c);                  /* the last pin: code and struct go (LSan) */
}

/* Lane one uses A, lane two B, lane one A again through the warm pin
** (stamped, not moved on the list).  A compile that needs room for one
** more program evicts B, the least recently used, not A, the oldest on
** the list. */
static void uses_without_the_lock_count_in_the_lru_order(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  invoke(f, &k->primary, 0, 1, 2);
  invoke(f, &f->second, 1, 1, 2);
  invoke(f, &k->primary, 0, 1, 2);
  nk_compiled *a = k->compiled[image_ordinal(f, 0)], *b = k->compiled[image_ordinal(f, 1)];
  assert_int_equal(k->stats.jit_cache_hits, 1);
  assert_ptr_equal(k->oldest, a);           /* listed before B, used after it */
  assert_true(a->used > b->used);
  const nub_cap_view *im2 = nk_caps_find(k, f->prog[2].items[f->prog[2].image].hash, NULL);
  uint64_t need = (uint64_t)im2->image.code_len * NK_COMPILE_TYPICAL_PER_BYTE + NK_COMPILE_SLACK;
  uint64_t budget = k->budget;
  k->budget = k->cache_bytes + need - 1;    /* one program must go */
  invoke(f, &f->second, 2, 1, 2);
  k->budget = budget;
  assert_int_equal(k->stats.jit_evictions, 1);
  assert_ptr_equal(k->compiled[image_ordinal(f, 0)], a);
  assert_null(k->compiled[image_ordinal(f, 1)]);
  assert_non_null(k->compiled[image_ordinal(f, 2)]);
  invoke(f, &k->primary, 0, 2, 3);          /* still the warm pin */
  assert_int_equal(k->stats.jit_compiles, 3);
}

/* A warm pin stamps its use without the lock, so its store may land
** after that of a later stamp (another lane's, or touch_locked's): the
** later one stays.  Here the later stamp is stored first and the clock
** wound back, as if the pin had taken its stamp before it. */
static void a_use_stamped_late_never_takes_back_a_later_one(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  invoke(f, &k->primary, 0, 1, 2);
  nk_compiled *c = k->primary.warm.c;
  uint64_t later = __atomic_add_fetch(&k->use_clock, 2, __ATOMIC_RELAXED);
  __atomic_store_n(&c->used, later, __ATOMIC_RELAXED);
  __atomic_store_n(&k->use_clock, later - 2, __ATOMIC_RELAXED);
  invoke(f, &k->primary, 0, 3, 4);          /* warm: stamps later - 1 */
  assert_int_equal(k->stats.jit_cache_hits, 1);
  assert_int_equal(k->use_clock, later - 1);
  assert_int_equal(c->used, later);
  invoke(f, &k->primary, 0, 5, 6);          /* stamps later: no change */
  invoke(f, &k->primary, 0, 7, 8);          /* later + 1: newer, taken */
  assert_int_equal(c->used, later + 1);
}

/* The spec's cap published; its hash in out. */
/* An Image without mappings (its memory is only its heap range: the warm
** entry sets the range without the memory build) and an Instance
** without overlays: r7 = sbrk(r8) from the Image's heap top, on a fresh
** heap every invoke; past the heap limit sbrk returns 0. */
static void a_bare_memory_is_its_heap_range_on_every_invoke(void **state) {
  fixture *f = *state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t image_hash[CAP_HASH_SIZE], inst_hash[CAP_HASH_SIZE];
  nub_pvm_builder_insn(b, PVM_OP_SBRK, 8, 0, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  kt_publish_heap_program(f->k, b, image_hash, inst_hash);
  static const struct { uint64_t size, top; } cases[] = {
    {0x1000, 0x10000}, {0x1000, 0x10000}, {0x10000, 0x10000}, {0x10001, 0}, {0, 0x10000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nub_invoke_packet pk = {.initial_gas = 1000, .args = {0, cases[i].size}};
    nub_invocation_result r;
    memcpy(pk.instance_hash, inst_hash, NUB_HASH_SIZE);
    nk_invoke_on(f->k, &f->k->primary, &pk, &r);
    if (r.exit_reason != NUB_EXIT_HALT || r.return_value != cases[i].top)
      fail_msg("case %zu: exit %u value 0x%llx, expected 0x%llx (%s)", i, r.exit_reason,
               (unsigned long long)r.return_value, (unsigned long long)cases[i].top,
               f->k->primary.last_error);
  }
  assert_true(f->k->primary.warm.bare);
}

/* The kernel's engine, counting the VM set-ups and tear-downs. */
static const nub_pvm_engine *inner;
static uint32_t vm_inits, vm_finis;

static int counted_vm_init(nub_pvm_vm *vm, nub_pvm_error *err) {
  vm_inits++;
  return inner->vm_init(vm, err);
}

static void counted_vm_fini(nub_pvm_vm *vm) {
  vm_finis++;
  inner->vm_fini(vm);
}

/* The root frame's vm stays bound to the warm entry's program across
** invokes (nk_warm.vm: no vm_init or vm_fini on the warm path), and is
** bound again (the old binding let go first) to whatever the entry names
** after another Image or an evict.  Under ASan a vm left on freed code
** fails too. */
static void the_root_vm_stays_bound_to_the_warm_program_until_the_entry_names_another(void **state) {
  fixture *f = *state;
  nk_kernel *k = f->k;
  nk_warm *w = &f->second.warm;
  static nub_pvm_engine counted;
  inner = k->cfg.engine;
  counted = *inner;
  counted.vm_init = counted_vm_init;
  counted.vm_fini = counted_vm_fini;
  k->cfg.engine = &counted;                 /* nothing compiled yet */
  vm_inits = vm_finis = 0;
  static const struct { uint32_t program; bool evict_first; uint32_t inits; } steps[] = {
    {0, false, 1}, {0, false, 1}, {0, false, 1}, {1, false, 2}, {1, true, 3}, {1, false, 3},
    {0, false, 4}, {0, false, 4},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    if (steps[i].evict_first) nk_jit_cache_clear(k);
    invoke(f, &f->second, steps[i].program, i, 1);
    assert_non_null(w->vm);
    assert_non_null(w->c);
    if (w->vm->prog != w->c->prog || w->vm->code != w->c->code)
      fail_msg("step %zu: the root vm is not bound to the warm program", i);
    if (vm_inits != steps[i].inits || vm_finis != steps[i].inits - 1)
      fail_msg("step %zu: %u vm set-ups and %u tear-downs, expected %u and %u", i, vm_inits,
               vm_finis, steps[i].inits, steps[i].inits - 1);
  }
  assert_int_equal(k->stats.jit_compiles, 4);     /* 0, 1, 1 after the evict, 0 again */
  nk_lane_fini(&f->second);                       /* lets the last binding go */
  assert_int_equal(vm_finis, vm_inits);
  char err[256];
  if (nk_lane_init(k, &f->second, err, sizeof err)) fail_msg("%s", err);   /* for teardown */
}

/* A program that returns phi2 and then changes it, and by phi8 halts
** (0), makes an unserved host call (1) or faults (a page address): on a
** bound vm every invoke still starts at the endpoint, from its registers
** and the gas given, after an out-of-gas stop before the first
** instruction, a host call or a page fault too. */
static void every_warm_invoke_starts_from_the_endpoint_registers_and_its_gas(void **state) {
  fixture *f = *state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  nub_cap_bundle prog;
  nub_cap_error cerr;
  uint32_t halt = nub_pvm_builder_label(b), host = nub_pvm_builder_label(b);
  nub_pvm_builder_insn(b, PVM_OP_MOVE_REG, 2, 0, 7, 0, 0);          /* r7 = r2 */
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 2, 2, 0, 5, 0);        /* r2 += 5 */
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_EQ_IMM, 8, 0, 0, halt);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_EQ_IMM, 8, 0, 1, host);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U64, 10, 8, 0, 0, 0);     /* r10 = [r8]: faults */
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, halt);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 8, 8, 0, 7, 0);        /* r8 += 7 */
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_bind(b, host);
  nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, 77, 0);
  nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
  assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, NULL), PVM_OK);
  nub_pvm_builder_free(b);
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, &prog, &cerr)) fail_msg("build: %s", cerr.msg);
  free(blob);
  kt_publish(f->k, &prog);
  static const struct { uint64_t gas, r8; uint32_t exit, arg; } cases[] = {
    {1000, 0, NUB_EXIT_HALT, 0},       {1000, 0, NUB_EXIT_HALT, 0},
    {0, 0, NUB_EXIT_OUT_OF_GAS, 0},    {1000, 0, NUB_EXIT_HALT, 0},
    {2, 0, NUB_EXIT_OUT_OF_GAS, 0},    {1000, 0, NUB_EXIT_HALT, 0},
    {1000, 1, NUB_EXIT_HOST_CALL, 77}, {1000, 0, NUB_EXIT_HALT, 0},
    {1000, 0x7000008, NUB_EXIT_PAGE_FAULT, 0x7000000}, {1000, 0, NUB_EXIT_HALT, 0},
  };
  uint64_t halt_gas = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nub_invoke_packet pk = {.initial_gas = cases[i].gas, .args = {11, cases[i].r8}};
    nub_invocation_result r;
    memcpy(pk.instance_hash, prog.items[prog.instance].hash, NUB_HASH_SIZE);
    nk_invoke_on(f->k, &f->second, &pk, &r);
    if (r.exit_reason != cases[i].exit || r.exit_arg != cases[i].arg ||
        (r.exit_reason != NUB_EXIT_OUT_OF_GAS && r.return_value != 0))
      fail_msg("case %zu: exit %u arg 0x%x value %llu, expected exit %u arg 0x%x value 0 (%s)", i,
               r.exit_reason, r.exit_arg, (unsigned long long)r.return_value, cases[i].exit,
               cases[i].arg, f->second.last_error);
    if (r.exit_reason == NUB_EXIT_HALT) {
      if (halt_gas && r.gas_remaining != halt_gas)
        fail_msg("case %zu: %llu gas left, the first run left %llu", i,
                 (unsigned long long)r.gas_remaining, (unsigned long long)halt_gas);
      halt_gas = r.gas_remaining;
      assert_true(halt_gas > 0 && halt_gas < 1000);
    } else if (r.exit_reason == NUB_EXIT_OUT_OF_GAS) {
      assert_int_equal(r.gas_remaining, cases[i].gas);   /* untouched: it never started */
    }
  }
  assert_non_null(f->second.warm.vm);
  nub_cap_bundle_free(&prog);
}

typedef struct worker {
  fixture *f;
  nk_lane *lane;
  uint32_t program;
  const uint64_t *evicts;          /* the evicting thread's count */
  bool done;
} worker;

#define STORM_INVOKES 1200u
#define STORM_WAIT_EVERY 8u        /* a worker waits for an evict every 8 invokes */

static void *invoke_many(void *arg) {
  worker *w = arg;
  for (uint64_t i = 0; i < STORM_INVOKES; i++) {
    if (i % STORM_WAIT_EVERY == 0) {   /* the next invoke finds its program evicted */
      uint64_t seen = __atomic_load_n(w->evicts, __ATOMIC_ACQUIRE);
      while (__atomic_load_n(w->evicts, __ATOMIC_ACQUIRE) == seen) sched_yield();
    }
    invoke(w->f, w->lane, w->program, i, 1);
  }
  __atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
  return NULL;
}

/* Two lanes invoke their programs through the warm pin while this thread
** evicts the whole cache over and over (each lane waits for an evict
** every 8 invokes, so they overlap on any machine): every result is
** right, every invoke counted, and nothing is used after it is freed
** (ASan). */
static void lanes_pin_while_another_thread_evicts(void **state) {
  fixture *f = *state;
  uint64_t evicts = 0;
  worker w[2] = {{f, &f->k->primary, 0, &evicts, false}, {f, &f->second, 1, &evicts, false}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, invoke_many, &w[i]), 0);
  while (!__atomic_load_n(&w[0].done, __ATOMIC_ACQUIRE) || !__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE)) {
    nk_jit_cache_clear(f->k);
    __atomic_add_fetch(&evicts, 1, __ATOMIC_RELEASE);
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  assert_int_equal(f->k->stats.invocations, 2 * STORM_INVOKES);
  assert_int_equal(f->k->stats.kernel_errors, 0);
  /* each wait saw the cache emptied: the invoke after it compiled */
  assert_true(f->k->stats.jit_compiles >= 2 * STORM_INVOKES / STORM_WAIT_EVERY);
  assert_int_equal(f->k->stats.jit_compiles + f->k->stats.jit_cache_hits, 2 * STORM_INVOKES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(an_evict_releases_the_warm_program_and_the_next_invoke_compiles_again,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(a_pinned_program_outlives_an_evict, setup, teardown),
    cmocka_unit_test_setup_teardown(uses_without_the_lock_count_in_the_lru_order, setup, teardown),
    cmocka_unit_test_setup_teardown(a_use_stamped_late_never_takes_back_a_later_one, setup, teardown),
    cmocka_unit_test_setup_teardown(lanes_pin_while_another_thread_evicts, setup, teardown),
    cmocka_unit_test_setup_teardown(a_bare_memory_is_its_heap_range_on_every_invoke, setup, teardown),
    cmocka_unit_test_setup_teardown(the_root_vm_stays_bound_to_the_warm_program_until_the_entry_names_another,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(every_warm_invoke_starts_from_the_endpoint_registers_and_its_gas,
                                    setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
