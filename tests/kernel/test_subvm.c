/*
** The CALL/HALT kernel end to end (docs/kernel.md): programs that spawn
** and call their own Image as sub-VMs.  fib(20) through 21 891 VMs, each
** kernel operation, the scratchpad slot, copy-on-write isolation, every
** kernel error of the frames, the depth limit, out-of-gas in a grandchild
** and exact gas.  Runs on every backend and engine:
** NUB_TEST_BACKEND=inproc|proc, NUB_TEST_ENGINE=interp|jit.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../bench/bench.h"
#include "guest/nk_frames.h"
#include "nub/cap.h"
#include "nub/nub.h"

#define RW_AT 0x20000u
#define GAS 100000000ull

static nub *open_nub_budget(uint64_t budget) {
  nub_options o;
  const char *backend = getenv("NUB_TEST_BACKEND");
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "proc") ? NUB_BACKEND_PROC : NUB_BACKEND_INPROC;
  o.engine = getenv("NUB_TEST_ENGINE");
  o.heap_size = 64u << 20;
  o.io_size = 8u << 20;
  if (budget) o.memory_budget = budget;
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  return n;
}

static nub *open_nub(void) { return open_nub_budget(0); }

static nub *open_engine(const char *engine) {
  nub_options o;
  const char *backend = getenv("NUB_TEST_BACKEND");
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "proc") ? NUB_BACKEND_PROC : NUB_BACKEND_INPROC;
  o.engine = engine;
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  return n;
}

/* A program from assembler text, published with an optional read-write
** mapping of one page at RW_AT whose first u64 is rw_word. */
typedef struct program {
  nub_cap_bundle caps;
  const uint8_t *instance, *image;
} program;

static void publish_sized(nub *n, const char *text, uint32_t rw_size, uint64_t rw_word,
                          program *p) {
  uint8_t *blob, page[8];
  size_t len;
  nub_pvm_error perr;
  nub_cap_error cerr;
  bool rw = rw_size > 0;
  memcpy(page, &rw_word, sizeof page);
  nub_cap_region region = {RW_AT, rw_size, CAP_ACCESS_RW, page, sizeof page};
  if (nub_pvm_asm(PVM_PROFILE_GP07, text, strlen(text), &blob, &len, NULL, &perr))
    fail_msg("asm: %s", perr.msg);
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, rw ? &region : NULL, rw ? 1 : 0,
                        &p->caps, &cerr))
    fail_msg("build: %s", cerr.msg);
  free(blob);
  for (uint32_t i = 0; i < p->caps.count; i++) {
    uint8_t h[32];
    nub_error err;
    if (nub_put_cap(n, p->caps.items[i].wire, p->caps.items[i].len, h, &err))
      fail_msg("put_cap: %s", err.msg);
  }
  p->instance = p->caps.items[p->caps.instance].hash;
  p->image = p->caps.items[p->caps.image].hash;
}

static void publish(nub *n, const char *text, bool rw, uint64_t rw_word, program *p) {
  publish_sized(n, text, rw ? 4096 : 0, rw_word, p);
}

static nub_invocation_result invoke(nub *n, const program *p, uint64_t a, uint64_t b,
                                    uint64_t gas) {
  nub_invocation_result r;
  nub_error err;
  const uint64_t args[4] = {a, b, 0, 0};
  if (nub_invoke(n, p->instance, 0, args, gas, &r, &err)) fail_msg("invoke: %s", err.msg);
  return r;
}

static struct nub_kernel_stats stats(nub *n) {
  struct nub_kernel_stats s;
  nub_error err;
  if (nub_kernel_stats(n, &s, &err)) fail_msg("kernel_stats: %s", err.msg);
  return s;
}

static void expect(nub_invocation_result r, uint32_t reason, uint64_t value) {
  if (r.exit_reason != reason || r.return_value != value)
    fail_msg("exit %u/%u value %llu, expected exit %u value %llu", r.exit_reason,
             r.exit_arg, (unsigned long long)r.return_value, reason,
             (unsigned long long)value);
}

static void expect_kernel_error(nub_invocation_result r, uint32_t code) {
  if (r.exit_reason != NUB_EXIT_KERNEL_ERROR || r.exit_arg != code)
    fail_msg("exit %u/%u, expected kernel error %u", r.exit_reason, r.exit_arg, code);
}

#define HALT "done: load_imm r2, -65536\n jump_ind r2, 0\n"

/* ---- fib and the ping-pong of `nub bench subvm` ---- */

static void fib_20_through_sub_vms_is_6765(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, bench_source_text("subvm_fib"), false, 0, &p);
  struct nub_kernel_stats before = stats(n);
  nub_invocation_result r = invoke(n, &p, 20, 0, GAS);
  expect(r, NUB_EXIT_HALT, 6765);
  struct nub_kernel_stats after = stats(n);
  /* 21 891 VMs: the root and 21 890 frames it and they called */
  assert_int_equal(after.frames_created - before.frames_created, 21890);
  assert_int_equal(after.invocations - before.invocations, 1);
  /* every frame reused the Image's compiled program */
  assert_int_equal(after.jit_compiles - before.jit_compiles, 1);
  r = invoke(n, &p, 20, 0, GAS);      /* and again: nothing leaked into the next */
  expect(r, NUB_EXIT_HALT, 6765);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* One round costs its 6 + 3 instructions (1 gas each under gp07), the
** kernel-call floor and the CALL frame cost of a code page. */
static void a_call_halt_round_costs_the_table_exactly(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, bench_source_text("subvm_pingpong"), false, 0, &p);
  nub_invocation_result one = invoke(n, &p, 1, 0, GAS), two = invoke(n, &p, 2, 0, GAS);
  expect(one, NUB_EXIT_HALT, 1);
  expect(two, NUB_EXIT_HALT, 2);
  uint64_t round = 9 + NK_GAS_KERNEL_CALL + NK_GAS_CALL_FRAME + NK_GAS_CODE_PAGE + NK_GAS_RO_UNIT;
  assert_int_equal(one.gas_remaining - two.gas_remaining, round);
  /* gas one short of the second HOST_CALL's charge: out-of-gas at the
  ** call, checked before charging (the 4 instructions after the loop are
  ** not reached; the loop block's 6 are paid) */
  uint64_t used_one = GAS - one.gas_remaining, kernel = round - 9;
  nub_invocation_result r = invoke(n, &p, 2, 0, used_one - 4 + 6 + kernel - 1);
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(r.gas_remaining, kernel - 1);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* ---- operations ---- */

/* r7 = 0: the caller; r7 = 1: a callee that REPLYs (ecalli 0) with its
** r8 + 5 after checking it got the caller's r9, r10 as r7, r8. */
static const char *reply_src =
    "  branch_eq_imm r7, 1, callee\n"
    "  load_imm r7, -1\n load_imm r9, 3\n ecalli 18\n"       /* spawn into slot 3 */
    "  load_imm r7, 3\n load_imm r8, 0\n load_imm r9, 1\n load_imm r10, 37\n ecalli 26\n"
    "  mul_imm_64 r8, r8, 1000\n add_64 r7, r7, r8\n"       /* status 0 */
    "  jump done\n"
    "callee: add_imm_64 r7, r8, 5\n ecalli 0\n trap\n"
    HALT;

static void reply_returns_phi7_and_status_ok(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, reply_src, false, 0, &p);
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, 42);
  /* REPLY in the root frame is a host call 0, as before */
  nub_invocation_result r = invoke(n, &p, 1, 9, GAS);
  expect(r, NUB_EXIT_HOST_CALL, 14);
  assert_int_equal(r.exit_arg, 0);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* IMAGE_HASH_CHAIN of a spawned Instance: r7 = bytes 0..8 of its chain,
** the 32 bytes written at RW_AT, and bytes 8..16 read back (r8 = 1). */
static const char *chain_src =
    "  move_reg r11, r8\n"
    "  load_imm r7, -1\n load_imm r9, 4\n ecalli 18\n"       /* spawn into slot 4 */
    "  load_imm r7, 4\n load_imm r8, 5\n load_imm r9, 0x20000\n ecalli 20\n"
    "  branch_eq_imm r11, 0, done\n"
    "  load_u64 r7, 0x20008\n"
    "  jump done\n"
    HALT;

static void image_hash_chain_is_blake2b_of_parent_chain_and_image(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  const uint8_t zero[32] = {0};
  uint8_t root[32], child[32];
  uint64_t w0, w1;
  publish(n, chain_src, true, 0, &p);
  nub_cap_hash_chain(zero, p.image, root);     /* a fresh Instance chains from zero */
  nub_cap_hash_chain(root, p.image, child);
  memcpy(&w0, child, 8);
  memcpy(&w1, child + 8, 8);
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, w0);
  expect(invoke(n, &p, 0, 1, GAS), NUB_EXIT_HALT, w1);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

static void image_hash_chain_into_unwritable_memory_is_a_page_fault(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, chain_src, false, 0, &p);     /* nothing mapped at RW_AT */
  nub_invocation_result r = invoke(n, &p, 0, 0, GAS);
  assert_int_equal(r.exit_reason, NUB_EXIT_PAGE_FAULT);
  assert_int_equal(r.exit_arg, RW_AT);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* The scratchpad round trip.  r7 = 0: the root spawns X into slot 0 and C
** into slot 1, calls C (r7 = 1) and returns what C returned (r8 = 0) or the
** chain of what slot 0 holds afterwards (r8 = 1).  C returns X's chain
** (its slot 0) and leaves a new Instance Y of its own in slot 0. */
static const char *scratch_src =
    "  branch_eq_imm r7, 1, callee\n"
    "  move_reg r11, r8\n"
    "  load_imm r7, -1\n load_imm r9, 0\n ecalli 18\n"       /* X into slot 0 */
    "  load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"       /* C into slot 1 */
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 1\n ecalli 26\n"
    "  branch_eq_imm r11, 0, done\n"
    "  load_imm r7, 0\n load_imm r8, -1\n load_imm r9, 0\n ecalli 20\n"
    "  jump done\n"
    "callee: load_imm r7, 0\n load_imm r8, -1\n load_imm r9, 0\n ecalli 20\n"
    "  move_reg r12, r7\n"
    "  load_imm r7, -1\n load_imm r9, 0\n ecalli 18\n"       /* Y into slot 0 */
    "  move_reg r7, r12\n"
    "  jump done\n"
    HALT;

static void the_scratchpad_slot_goes_down_and_comes_back(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  const uint8_t zero[32] = {0};
  uint8_t root[32], x[32], y[32];
  uint64_t wx, wy;
  publish(n, scratch_src, false, 0, &p);
  nub_cap_hash_chain(zero, p.image, root);
  nub_cap_hash_chain(root, p.image, x);        /* X and C: children of the root */
  nub_cap_hash_chain(x, p.image, y);           /* Y: a child of C */
  memcpy(&wx, x, 8);
  memcpy(&wy, y, 8);
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, wx);
  expect(invoke(n, &p, 0, 1, GAS), NUB_EXIT_HALT, wy);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* r7 = 0 or 1: the root calls a callee (r7 = 2) that yields key 42 with
** r8 = 7; the root answers with CALL_RESUME (0) or DROP_RESUME (1). */
static const char *yield_src =
    "  branch_eq_imm r7, 2, callee\n"
    "  move_reg r11, r7\n"
    "  load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 2\n ecalli 26\n"
    "  mul_imm_64 r12, r8, 10000\n"                            /* 1 = YIELDED */
    "  branch_eq_imm r11, 1, drop\n"
    "  add_64 r7, r7, r9\n"                                    /* 42 + 7 */
    "  ecalli 27\n"                                            /* callee returns 1049 */
    "  mul_imm_64 r8, r8, 100000\n add_64 r7, r7, r8\n add_64 r7, r7, r12\n"
    "  jump done\n"
    "drop: ecalli 28\n"
    "  mul_imm_64 r8, r8, 100000\n add_64 r7, r7, r8\n add_64 r7, r7, r12\n"
    /* the dropped Instance is back in slot 1: call it again, fresh */
    "  move_reg r10, r7\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 2\n ecalli 26\n"
    "  ecalli 28\n"                                            /* dropped again */
    "  add_64 r7, r7, r10\n"
    "  jump done\n"
    "callee: load_imm r7, 42\n load_imm r8, 7\n ecalli 16\n"
    "  add_imm_64 r7, r7, 1000\n"
    "  jump done\n"
    HALT;

static void host_yield_is_caught_by_the_caller_and_resumed_or_dropped(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, yield_src, false, 0, &p);
  /* resumed: 49 + 1000 from the callee, status 0 after, 10000 for YIELDED */
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, 11049);
  /* dropped: 42 + 10000, then the second call yields again: 42 */
  expect(invoke(n, &p, 1, 0, GAS), NUB_EXIT_HALT, 10042 + 42);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* A's Image names B's published Instance in slot 1; A's Instance's CNode
** names B's Image in slot 2.  A calls slot 1 (r7 = 5 -> 105), spawns from
** slot 2 into 3 and calls that (7 -> 107), and returns the sum. */
static const char *slots_src =
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 5\n ecalli 26\n"
    "  move_reg r11, r7\n"
    "  load_imm r7, 2\n load_imm r9, 3\n ecalli 18\n"
    "  load_imm r7, 3\n load_imm r8, 0\n load_imm r9, 7\n ecalli 26\n"
    "  add_64 r7, r7, r11\n"
    "  jump done\n"
    HALT;

static void put_spec(nub *n, const nub_cap_spec *spec, uint8_t hash[32]) {
  uint8_t *wire;
  size_t len;
  nub_cap_error cerr;
  nub_error err;
  if (nub_cap_encode_alloc(spec, &wire, &len, &cerr)) fail_msg("encode: %s", cerr.msg);
  if (nub_put_cap(n, wire, len, hash, &err)) fail_msg("put_cap: %s", err.msg);
  free(wire);
}

static void slots_come_from_the_image_and_the_instance_cnode(void **state) {
  (void)state;
  nub *n = open_nub();
  program a, b;
  nub_cap_view view;
  nub_cap_spec image, inst, cnode = {.kind = CAP_CNODE};
  nub_cap_error cerr;
  uint8_t image_hash[32], inst_hash[32], cnode_hash[32];
  publish(n, "add_imm_64 r7, r7, 100\n" HALT, false, 0, &b);
  publish(n, slots_src, false, 0, &a);
  const nub_cap_item *ai = &a.caps.items[a.caps.image];
  if (nub_cap_decode(ai->wire, ai->wire + ai->len, &view, &cerr) ||
      nub_cap_spec_from_view(&view, &image, &cerr))
    fail_msg("image: %s", cerr.msg);
  nub_cap_slot image_slot = {1, {1}, {0}}, cnode_slot = {1, {2}, {0}};
  memcpy(image_slot.hash, b.instance, 32);
  memcpy(cnode_slot.hash, b.image, 32);
  image.image.slots = &image_slot;
  image.image.slot_count = 1;
  put_spec(n, &image, image_hash);
  cnode.cnode.slots = &cnode_slot;
  cnode.cnode.slot_count = 1;
  put_spec(n, &cnode, cnode_hash);
  inst.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(image_hash, &inst.instance);
  memcpy(inst.instance.root_cnode, cnode_hash, 32);
  put_spec(n, &inst, inst_hash);
  program root = {.instance = inst_hash, .image = image_hash};
  expect(invoke(n, &root, 0, 0, GAS), NUB_EXIT_HALT, 212);
  /* a CNode that is not published: the root cannot have its slots */
  memset(inst.instance.root_cnode, 0x5A, 32);
  put_spec(n, &inst, inst_hash);
  expect_kernel_error(invoke(n, &root, 0, 0, GAS), NUB_KERR_SLOT_EMPTY);
  /* ... also when the program only halts (its root Instance is made up
  ** front when it has a root CNode, not at its first kernel operation) */
  nub_cap_spec plain = {.kind = CAP_INSTANCE};
  uint8_t plain_hash[32];
  nub_cap_instance_fresh(b.image, &plain.instance);
  memset(plain.instance.root_cnode, 0x5A, 32);
  put_spec(n, &plain, plain_hash);
  program halts = {.instance = plain_hash, .image = b.image};
  expect_kernel_error(invoke(n, &halts, 0, 0, GAS), NUB_KERR_SLOT_EMPTY);
  memset(plain.instance.root_cnode, 0, 32);   /* none: it runs */
  put_spec(n, &plain, plain_hash);
  expect(invoke(n, &halts, 0, 0, GAS), NUB_EXIT_HALT, 100);
  image.image.slots = NULL;             /* the spec's own arrays, not ours */
  image.image.slot_count = 0;
  nub_cap_spec_free(&image);
  nub_cap_bundle_free(&a.caps);
  nub_cap_bundle_free(&b.caps);
  nub_close(n);
}

/* n x add_64 (r10 = 0), then tail: a program whose compiled form holds
** about 17 bytes per blob byte. */
static char *padded(unsigned n, const char *tail) {
  size_t cap = (size_t)n * 24 + strlen(tail) + 1, at = 0;
  char *text = malloc(cap);
  for (unsigned i = 0; i < n; i++) at += (size_t)snprintf(text + at, cap - at, "add_64 r10, r10, r10\n");
  snprintf(text + at, cap - at, "%s", tail);
  return text;
}

/* A caller and a callee too large to be cached together: compiling the
** callee must not evict the code its caller is waiting in (the frames pin
** it).  The callee fails to fit (27) or runs; either way the caller's
** code stays valid, and each program alone still runs. */
static void a_callee_compile_never_evicts_its_caller(void **state) {
  (void)state;
  nub *n = open_nub_budget(4u << 20);
  program a, b;
  nub_cap_view view;
  nub_cap_spec image, inst;
  nub_cap_error cerr;
  uint8_t image_hash[32], inst_hash[32];
  char *callee = padded(40000, "add_imm_64 r7, r7, 100\n" HALT);
  char *caller = padded(40000, "load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 5\n ecalli 26\n"
                               "add_imm_64 r7, r7, 1\n" HALT);
  publish(n, callee, false, 0, &b);
  publish(n, caller, false, 0, &a);
  const nub_cap_item *ai = &a.caps.items[a.caps.image];
  if (nub_cap_decode(ai->wire, ai->wire + ai->len, &view, &cerr) ||
      nub_cap_spec_from_view(&view, &image, &cerr))
    fail_msg("image: %s", cerr.msg);
  nub_cap_slot slot = {1, {1}, {0}};
  memcpy(slot.hash, b.instance, 32);
  image.image.slots = &slot;
  image.image.slot_count = 1;
  put_spec(n, &image, image_hash);
  inst.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(image_hash, &inst.instance);
  put_spec(n, &inst, inst_hash);
  program root = {.instance = inst_hash, .image = image_hash};
  struct nub_kernel_stats before = stats(n);
  nub_invocation_result r = invoke(n, &root, 0, 0, GAS);
  struct nub_kernel_stats after = stats(n);
  if (r.exit_reason == NUB_EXIT_KERNEL_ERROR) assert_int_equal(r.exit_arg, NUB_KERR_OUT_OF_MEMORY);
  else expect(r, NUB_EXIT_HALT, 106);
  /* the caller was compiled and is still cached: nothing was evicted */
  assert_int_equal(after.jit_evictions - before.jit_evictions, 0);
  printf("caller + callee under 4 MiB: exit %u/%u, cache %llu bytes in %llu programs\n",
         r.exit_reason, r.exit_arg, (unsigned long long)after.jit_cache_bytes,
         (unsigned long long)after.jit_cache_entries);
  expect(invoke(n, &b, 1, 0, GAS), NUB_EXIT_HALT, 101);
  image.image.slots = NULL;
  image.image.slot_count = 0;
  nub_cap_spec_free(&image);
  nub_cap_bundle_free(&a.caps);
  nub_cap_bundle_free(&b.caps);
  free(callee);
  free(caller);
  nub_close(n);
}

/* ---- memory ---- */

/* r7 = 1: the callee reads the u64 at RW_AT, writes it + 1, returns what
** it read.  r7 = 0: the root spawns one callee, calls it twice and returns
** first * 10^6 + second * 10^3 + its own word at RW_AT. */
static const char *cow_src =
    "  branch_eq_imm r7, 1, callee\n"
    "  load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 1\n ecalli 26\n"
    "  mul_imm_64 r11, r7, 1000000\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 1\n ecalli 26\n"
    "  mul_imm_64 r12, r7, 1000\n"
    "  load_u64 r7, 0x20000\n"
    "  add_64 r7, r7, r11\n add_64 r7, r7, r12\n"
    "  jump done\n"
    "callee: load_u64 r7, 0x20000\n add_imm_64 r8, r7, 1\n store_u64 r8, 0x20000\n"
    "  jump done\n"
    HALT;

static void a_callee_writes_its_own_copy_and_keeps_it_between_calls(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, cow_src, true, 111, &p);
  struct nub_kernel_stats before = stats(n);
  /* first call reads 111, second its own 112; the root still has 111 */
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, 111112111ull);
  struct nub_kernel_stats after = stats(n);
  /* one Data page shared copy-on-write into the callee's memory, once */
  assert_int_equal(after.pages_copied - before.pages_copied, 1);
  assert_int_equal(after.frames_created - before.frames_created, 2);
  /* nothing survives the invocation */
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, 111112111ull);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* ---- errors, limits, gas ---- */

/* r7 = n: call a fresh Instance of itself with n - 1; 0 returns at once;
** r8 = 1: the frame with n = 0 loops forever instead. */
static const char *countdown_src =
    "  branch_eq_imm r7, 0, bottom\n"
    "  move_reg r11, r7\n move_reg r12, r8\n"
    "  load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
    "  load_imm r7, 1\n load_imm r8, 0\n add_imm_64 r9, r11, -1\n move_reg r10, r12\n ecalli 26\n"
    "  add_imm_64 r7, r7, 1\n"
    "  jump done\n"
    "bottom: branch_eq_imm r8, 0, done\n"
    "spin: jump spin\n"
    HALT;

static void the_depth_limit_is_error_51(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, countdown_src, false, 0, &p);
  /* n + 1 frames: the deepest stack allowed, then one more */
  expect(invoke(n, &p, NK_MAX_DEPTH - 1, 0, GAS), NUB_EXIT_HALT, NK_MAX_DEPTH - 1);
  expect_kernel_error(invoke(n, &p, NK_MAX_DEPTH, 0, GAS), NUB_KERR_DEPTH_LIMIT);
  expect(invoke(n, &p, 3, 0, GAS), NUB_EXIT_HALT, 3);   /* the kernel lives on */
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

static void out_of_gas_in_a_grandchild_ends_the_whole_chain(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, countdown_src, false, 0, &p);
  struct nub_kernel_stats before = stats(n);
  nub_invocation_result r = invoke(n, &p, 2, 1, 100000);
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(r.gas_remaining, 0);
  assert_int_equal(stats(n).frames_created - before.frames_created, 2);
  expect(invoke(n, &p, 2, 0, GAS), NUB_EXIT_HALT, 2);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* Each frame's memory holds its mappings against the memory budget: with
** 3 MiB per Instance and an 8 MiB budget, two frames fit, three do not. */
static void frames_share_the_memory_budget(void **state) {
  (void)state;
  nub *n = open_nub_budget(8u << 20);
  program p;
  publish_sized(n, countdown_src, 3u << 20, 0, &p);
  expect(invoke(n, &p, 1, 0, GAS), NUB_EXIT_HALT, 1);
  expect_kernel_error(invoke(n, &p, 2, 0, GAS), NUB_KERR_OUT_OF_MEMORY);
  expect(invoke(n, &p, 1, 0, GAS), NUB_EXIT_HALT, 1);   /* all given back */
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* Slot churn: every frame fills slots 1..255 with Instances, then calls
** slot 1, which does the same.  Each Instance holds its struct against
** the budget: with 4 MiB the second frame's spawns run out (27), and all
** of it is given back. */
static const char *fill_src =
    "  load_imm r11, 1\n fallthrough\n"
    "fill: load_imm r7, -1\n move_reg r9, r11\n ecalli 18\n"
    "  add_imm_64 r11, r11, 1\n"
    "  branch_lt_u_imm r11, 256, fill\n"
    "  load_imm r7, 1\n load_imm r8, 0\n ecalli 26\n"
    "  jump done\n"
    HALT;

static void filling_slots_is_bounded_by_the_budget(void **state) {
  (void)state;
  nub *n = open_nub_budget(4u << 20);
  program p;
  publish(n, fill_src, false, 0, &p);
  for (int i = 0; i < 2; i++)
    expect_kernel_error(invoke(n, &p, 0, 0, GAS), NUB_KERR_OUT_OF_MEMORY);
  nub_cap_bundle_free(&p.caps);
  publish(n, "load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n" HALT, false, 0, &p);
  expect(invoke(n, &p, 0, 0, GAS), NUB_EXIT_HALT, 0);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

typedef struct error_case {
  const char *name, *src;
  uint32_t code;
} error_case;

static const error_case error_cases[] = {
  {"HOST_CALL slot 300", "load_imm r7, 300\n ecalli 26\n" HALT, NUB_KERR_SLOT_RANGE},
  {"HOST_CALL on the scratchpad", "load_imm r7, 0\n ecalli 26\n" HALT, NUB_KERR_SLOT_RANGE},
  {"DERIVE_SPAWN into slot 256", "load_imm r7, -1\n load_imm r9, 256\n ecalli 18\n" HALT,
   NUB_KERR_SLOT_RANGE},
  {"HOST_CALL on an empty slot", "load_imm r7, 5\n ecalli 26\n" HALT, NUB_KERR_CALL_SLOT_EMPTY},
  {"HOST_YIELD in the root", "ecalli 16\n" HALT, NUB_KERR_YIELD},
  {"CALL_RESUME with nothing caught", "ecalli 27\n" HALT, NUB_KERR_YIELD},
  {"DROP_RESUME with nothing caught", "ecalli 28\n" HALT, NUB_KERR_YIELD},
  {"DERIVE_SPAWN from an empty slot", "load_imm r7, 3\n load_imm r9, 1\n ecalli 18\n" HALT,
   NUB_KERR_SLOT_EMPTY},
  {"IMAGE_HASH_CHAIN of an empty slot", "load_imm r7, 3\n load_imm r8, -1\n load_imm r9, 0\n ecalli 20\n" HALT,
   NUB_KERR_SLOT_EMPTY},
  /* slot 2 gets Data (a chain): neither an Image nor an Instance */
  {"DERIVE_SPAWN from a Data slot",
   "load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
   "load_imm r7, 1\n load_imm r8, 2\n load_imm r9, 0\n ecalli 20\n"
   "load_imm r7, 2\n load_imm r9, 3\n ecalli 18\n" HALT, NUB_KERR_SLOT_KIND},
  {"HOST_CALL on a Data slot",
   "load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
   "load_imm r7, 1\n load_imm r8, 2\n load_imm r9, 0\n ecalli 20\n"
   "load_imm r7, 2\n ecalli 26\n" HALT, NUB_KERR_SLOT_KIND},
  {"HOST_CALL to an absent endpoint",
   "load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
   "load_imm r7, 1\n load_imm r8, 9\n ecalli 26\n" HALT, NUB_KERR_ENDPOINT_NOT_FOUND},
};

static void each_kernel_error_of_the_frames(void **state) {
  (void)state;
  nub *n = open_nub();
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    program p;
    publish(n, error_cases[i].src, false, 0, &p);
    nub_invocation_result r = invoke(n, &p, 0, 0, GAS);
    if (r.exit_reason != NUB_EXIT_KERNEL_ERROR || r.exit_arg != error_cases[i].code)
      fail_msg("%s: exit %u/%u, expected kernel error %u", error_cases[i].name,
               r.exit_reason, r.exit_arg, error_cases[i].code);
    nub_cap_bundle_free(&p.caps);
  }
  nub_close(n);
}

/* 74: a frame that holds a caught yield uses the yielder's slot, calls
** or returns.  r8 selects which. */
static const char *pending_src =
    "  branch_eq_imm r7, 2, callee\n"
    "  move_reg r11, r8\n"
    "  load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 2\n ecalli 26\n"
    "  branch_eq_imm r11, 1, call\n"
    "  branch_eq_imm r11, 2, spawn\n"
    "  jump done\n"                                           /* 0: return */
    "call: load_imm r7, -1\n load_imm r9, 3\n ecalli 18\n load_imm r7, 3\n ecalli 26\n jump done\n"
    "spawn: load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n jump done\n"
    "callee: ecalli 16\n jump done\n"
    HALT;

static void a_frame_holding_a_caught_yield_is_error_74(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  publish(n, pending_src, false, 0, &p);
  for (uint64_t how = 0; how < 3; how++)
    expect_kernel_error(invoke(n, &p, 0, how, GAS), NUB_KERR_PENDING);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

/* Spawning in a loop into one slot: every old Instance is released, so
** the loop ends out of gas, never out of memory. */
static const char *churn_src =
    "loop: load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
    "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 0\n ecalli 26\n"
    "  jump loop\n";

static void spawning_and_calling_in_a_loop_ends_out_of_gas(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  /* the callee (r7 = 0 from r9) runs the same loop: a chain as deep as
  ** the depth limit; a flat loop is the root's own */
  publish(n, "branch_eq_imm r8, 7, flat\n jump done\n"
             "flat: load_imm r7, -1\n load_imm r9, 1\n ecalli 18\n"
             "  load_imm r7, 1\n load_imm r8, 0\n load_imm r9, 0\n ecalli 26\n"
             "  load_imm r8, 7\n jump flat\n" HALT, false, 0, &p);
  nub_invocation_result r = invoke(n, &p, 0, 7, 20000000);
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  nub_cap_bundle_free(&p.caps);
  program q;
  publish(n, churn_src, false, 0, &q);
  expect_kernel_error(invoke(n, &q, 0, 0, GAS), NUB_KERR_DEPTH_LIMIT);
  nub_cap_bundle_free(&q.caps);
  nub_close(n);
}

/* Random sequences of kernel operations with awkward operands, the same
** program in every frame: each ends in a defined exit or a kernel error
** of the table, identically (exit, value, gas) on the interpreter and the
** JIT, and the kernels live on. */
static void random_kernel_operations_agree_on_both_engines(void **state) {
  (void)state;
  /* per register r7..r10; a callee whose r7 (our r9) is 9 halts at once */
  static const int64_t operands[4][8] = {{-1, -1, 1, 2, 3, 0, 256, 255},
                                         {0, 0, 0, -1, -1, 1, 2, 3},
                                         {9, 9, 9, 1, 2, 3, 0, 256},
                                         {0, 1, 2, 9, 0, 0, 5, -1}};
  static const unsigned ops[] = {18, 18, 18, 18, 26, 26, 26, 20, 20, 0, 16, 27, 28};
  static const uint32_t codes[] = {NUB_KERR_ENDPOINT_NOT_FOUND, NUB_KERR_SLOT_RANGE,
                                   NUB_KERR_CALL_SLOT_EMPTY, NUB_KERR_DEPTH_LIMIT,
                                   NUB_KERR_YIELD, NUB_KERR_SLOT_EMPTY, NUB_KERR_SLOT_KIND,
                                   NUB_KERR_PENDING};
  nub *interp = open_engine("interp"), *jit = open_engine("jit");
  uint32_t seed = 12345, kinds[8] = {0};
  for (int prog = 0; prog < 150; prog++) {
    char text[4096];
    size_t at = (size_t)snprintf(text, sizeof text, "branch_eq_imm r7, 9, done\n");
    for (int step = 0; step < 1 + prog % 6; step++) {
      for (int r = 7; r <= 10; r++) {
        seed = seed * 1103515245u + 12345u;
        at += (size_t)snprintf(text + at, sizeof text - at, "load_imm r%d, %lld\n", r,
                               (long long)operands[r - 7][(seed >> 16) % 8]);
      }
      seed = seed * 1103515245u + 12345u;
      at += (size_t)snprintf(text + at, sizeof text - at, "ecalli %u\n", ops[(seed >> 16) % 13]);
    }
    /* done (a branch target) must start a block: ecalli does not end one */
    snprintf(text + at, sizeof text - at, "fallthrough\n%s", HALT);
    program a, b;
    publish(interp, text, prog % 2, 5, &a);
    publish(jit, text, prog % 2, 5, &b);
    nub_invocation_result x = invoke(interp, &a, 0, 0, 2000000), y = invoke(jit, &b, 0, 0, 2000000);
    if (memcmp(&x, &y, sizeof x))
      fail_msg("program %d: interp %u/%u %llu gas %llu, jit %u/%u %llu gas %llu\n%s", prog,
               x.exit_reason, x.exit_arg, (unsigned long long)x.return_value,
               (unsigned long long)x.gas_remaining, y.exit_reason, y.exit_arg,
               (unsigned long long)y.return_value, (unsigned long long)y.gas_remaining, text);
    bool known = x.exit_reason <= NUB_EXIT_HOST_CALL;
    for (size_t i = 0; !known && i < sizeof codes / sizeof codes[0]; i++)
      known = x.exit_reason == NUB_EXIT_KERNEL_ERROR && x.exit_arg == codes[i];
    if (!known) fail_msg("program %d: exit %u/%u\n%s", prog, x.exit_reason, x.exit_arg, text);
    kinds[x.exit_reason == NUB_EXIT_KERNEL_ERROR ? 5 : x.exit_reason]++;
    nub_cap_bundle_free(&a.caps);
    nub_cap_bundle_free(&b.caps);
  }
  printf("exits: halt %u, host %u, out-of-gas %u, page fault %u, kernel error %u\n", kinds[0],
         kinds[4], kinds[2], kinds[3], kinds[5]);
  /* some programs ended in a kernel error, some in a halt or host call */
  assert_true(kinds[5] > 0 && kinds[0] + kinds[4] > 0);
  program f;
  publish(jit, bench_source_text("subvm_fib"), false, 0, &f);
  expect(invoke(jit, &f, 10, 0, GAS), NUB_EXIT_HALT, 55);
  nub_cap_bundle_free(&f.caps);
  nub_close(interp);
  nub_close(jit);
}

/* The log host call (ecalli 100) made by a called frame is answered in
** the kernel like the root's (NUB_INVOKE_FLAG_LOG): the child's line comes
** back, from the child's own memory, and the child then halts with 33. */
static const char *child_log_src =
    "  branch_eq_imm r7, 7, child\n"
    "  load_imm r7, -1\n load_imm r9, 4\n ecalli 18\n"                  /* spawn into slot 4 */
    "  load_imm r7, 4\n load_imm r8, 0\n load_imm r9, 7\n load_imm r10, 0\n ecalli 26\n"
    "  jump done\n"
    "child: store_imm_u32 0x20000, 0x6c6c6568\n store_imm_u8 0x20004, 0x6f\n"  /* "hello" */
    "  load_imm r10, 0x20000\n load_imm r11, 5\n load_imm r7, 2\n ecalli 100\n"
    "  load_imm r7, 33\n jump done\n"
    HALT;

typedef struct log_seen { uint32_t count, level; char text[16]; } log_seen;

static void seen(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  log_seen *l = ud;
  l->count++;
  l->level = level;
  memcpy(l->text, msg, len < sizeof l->text - 1 ? len : sizeof l->text - 1);
}

static void a_called_frame_logs_through_the_kernel(void **state) {
  (void)state;
  nub *n = open_nub();
  program p;
  nub_invocation_result r;
  nub_error err;
  log_seen l = {0};
  uint32_t dropped = 1;
  const uint64_t args[4] = {0, 0, 0, 0};
  publish(n, child_log_src, true, 0, &p);
  if (nub_invoke_logged(n, p.instance, 0, args, GAS, &r, seen, &l, &dropped, &err))
    fail_msg("invoke: %s", err.msg);
  expect(r, NUB_EXIT_HALT, 33);
  assert_int_equal(l.count, 1);
  assert_int_equal(l.level, 2);
  assert_string_equal(l.text, "hello");
  assert_int_equal(dropped, 0);
  /* without the flag the call leaves the kernel, as every other ecalli */
  r = invoke(n, &p, 0, 0, GAS);
  assert_int_equal(r.exit_reason, NUB_EXIT_HOST_CALL);
  assert_int_equal(r.exit_arg, NUB_HOST_CALL_LOG);
  nub_cap_bundle_free(&p.caps);
  nub_close(n);
}

int main(void) {
  const char *backend = getenv("NUB_TEST_BACKEND"), *engine = getenv("NUB_TEST_ENGINE");
  printf("backend: %s, engine: %s\n", backend ? backend : "inproc", engine ? engine : "default");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(fib_20_through_sub_vms_is_6765),
    cmocka_unit_test(a_call_halt_round_costs_the_table_exactly),
    cmocka_unit_test(reply_returns_phi7_and_status_ok),
    cmocka_unit_test(image_hash_chain_is_blake2b_of_parent_chain_and_image),
    cmocka_unit_test(image_hash_chain_into_unwritable_memory_is_a_page_fault),
    cmocka_unit_test(the_scratchpad_slot_goes_down_and_comes_back),
    cmocka_unit_test(host_yield_is_caught_by_the_caller_and_resumed_or_dropped),
    cmocka_unit_test(slots_come_from_the_image_and_the_instance_cnode),
    cmocka_unit_test(a_callee_compile_never_evicts_its_caller),
    cmocka_unit_test(a_callee_writes_its_own_copy_and_keeps_it_between_calls),
    cmocka_unit_test(the_depth_limit_is_error_51),
    cmocka_unit_test(out_of_gas_in_a_grandchild_ends_the_whole_chain),
    cmocka_unit_test(frames_share_the_memory_budget),
    cmocka_unit_test(filling_slots_is_bounded_by_the_budget),
    cmocka_unit_test(each_kernel_error_of_the_frames),
    cmocka_unit_test(a_frame_holding_a_caught_yield_is_error_74),
    cmocka_unit_test(spawning_and_calling_in_a_loop_ends_out_of_gas),
    cmocka_unit_test(random_kernel_operations_agree_on_both_engines),
    cmocka_unit_test(a_called_frame_logs_through_the_kernel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
