/*
** The memory an invocation runs in, end to end through the host API:
** contents of Data pages, absent pages, overlays, read-only access, fresh
** memory per invocation, the gas paid for Data runs, and the two memory
** bombs of issue 9 finishing in milliseconds.  Runs on every backend and
** engine: NUB_TEST_BACKEND=inproc|proc, NUB_TEST_ENGINE=interp|jit.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "nub/cap.h"
#include "nub/nub.h"

#define PAGE 4096u
#define BIG (16u << 20)

static nub *open_nub(void) {
  nub_options o;
  const char *backend = getenv("NUB_TEST_BACKEND");
  nub_options_init(&o);
  o.backend = backend && !strcmp(backend, "proc") ? NUB_BACKEND_PROC : NUB_BACKEND_INPROC;
  o.engine = getenv("NUB_TEST_ENGINE");
  o.heap_size = 128u << 20;     /* 16 MiB Data caps, each stored once */
  o.io_size = 32u << 20;
  /* the memory bombs map 4 GiB: over the default budget (error 27, tested
  ** in test_budget); here the set-up itself is measured */
  o.memory_budget = 8ull << 30;
  nub *n;
  nub_error err;
  if (nub_open(&o, &n, &err)) fail_msg("nub_open: %s", err.msg);
  return n;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void put_wire(nub *n, const uint8_t *wire, size_t len, uint8_t hash[32]) {
  nub_error err;
  if (nub_put_cap(n, wire, len, hash, &err)) fail_msg("put_cap: %s", err.msg);
}

static void put_spec(nub *n, const nub_cap_spec *spec, uint8_t hash[32]) {
  uint8_t *wire;
  size_t len;
  nub_cap_error err;
  if (nub_cap_encode_alloc(spec, &wire, &len, &err)) fail_msg("encode: %s", err.msg);
  put_wire(n, wire, len, hash);
  free(wire);
}

/* Byte o of page p of Data cap number d: never zero. */
static uint8_t pattern(unsigned d, unsigned p, unsigned o) {
  return (uint8_t)((d * 31u + p * 7u + o) % 251u + 1u);
}

/* Data cap number d of npages pages; present[p] says which are non-zero.
** Its bytes go to *bytes (caller frees) when bytes is not NULL. */
static void put_data(nub *n, unsigned d, unsigned npages, const bool *present,
                     uint8_t hash[32], uint8_t **bytes) {
  uint8_t *b = calloc(npages ? npages : 1, PAGE), *wire;
  size_t len;
  for (unsigned p = 0; p < npages; p++)
    for (unsigned o = 0; present[p] && o < PAGE; o++) b[p * PAGE + o] = pattern(d, p, o);
  if (nub_cap_encode_data_alloc((uint64_t)npages * PAGE, b, (size_t)npages * PAGE, &wire, &len, NULL))
    fail_msg("encode data");
  put_wire(n, wire, len, hash);
  free(wire);
  if (bytes) *bytes = b;
  else free(b);
}

/* The probe: endpoint 0 returns the u64 at phi7; endpoint 1 stores phi8
** there first.  Blocks: 2 and 3 instructions. */
static uint8_t *probe_program(size_t *len, uint32_t *store_pc) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  nub_pvm_blob pb;
  const uint64_t halt = (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS;
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U64, 7, 7, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, halt, 0);
  nub_pvm_builder_insn(b, PVM_OP_STORE_IND_U64, 8, 7, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U64, 7, 7, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, halt, 0);
  if (nub_pvm_builder_finish(b, &blob, len, NULL)) fail_msg("builder");
  nub_pvm_builder_free(b);
  assert_int_equal(nub_pvm_blob_parse(blob, blob + *len, &pb, NULL), PVM_OK);
  uint32_t starts = 0;
  for (uint32_t pc = 0; pc < pb.code_len; pc++)
    if (nub_pvm_blob_is_start(&pb, pc) && ++starts == 3) *store_pc = pc;
  return blob;
}

/* Publish the probe as an Image with these mappings and an Instance with
** these overlays; inst receives the Instance hash. */
static void publish(nub *n, const nub_cap_mapping *maps, uint32_t nmaps, const nub_cap_overlay *ovs,
                    uint32_t novs, uint8_t inst[32]) {
  size_t len;
  uint32_t store_pc = 0;
  uint8_t *blob = probe_program(&len, &store_pc), image[32];
  nub_cap_endpoint eps[2] = {{.key = 0, .entry_pc = 0}, {.key = 1, .entry_pc = store_pc}};
  nub_cap_spec s;
  memset(&s, 0, sizeof s);
  s.kind = CAP_IMAGE;
  s.image.profile = PVM_PROFILE_GP07;
  s.image.code = blob;
  s.image.code_len = len;
  s.image.endpoints = eps;
  s.image.endpoint_count = 2;
  s.image.mappings = maps;
  s.image.mapping_count = nmaps;
  put_spec(n, &s, image);
  memset(&s, 0, sizeof s);
  s.kind = CAP_INSTANCE;
  nub_cap_instance_fresh(image, &s.instance);
  s.instance.overlays = ovs;
  s.instance.overlay_count = novs;
  put_spec(n, &s, inst);
  free(blob);
}

static nub_invocation_result invoke(nub *n, const uint8_t inst[32], uint32_t ep, uint64_t a,
                                    uint64_t b, uint64_t gas) {
  nub_invocation_result r;
  nub_error err;
  const uint64_t args[4] = {a, b, 0, 0};
  if (nub_invoke(n, inst, ep, args, gas, &r, &err)) fail_msg("invoke: %s", err.msg);
  return r;
}

static nub_cap_mapping mapping(uint32_t start, uint32_t pages, uint8_t access, const uint8_t *src) {
  nub_cap_mapping m = {start, pages * PAGE, access, {0}};
  if (src) memcpy(m.source, src, 32);
  return m;
}

static nub_cap_overlay overlay(uint32_t address, const uint8_t *data) {
  nub_cap_overlay o = {address, {0}};
  memcpy(o.data, data, 32);
  return o;
}

/* ---- a small memory with every kind of page, and its model ---- */

#define LO 0x10000u
#define HI 0x28000u

typedef struct layout {
  nub *n;
  uint8_t inst[32], s_hash[32];
  uint8_t model[HI - LO];     /* the bytes every invocation must see */
  bool ro[(HI - LO) / PAGE];
  uint64_t runs;
} layout;

static void model_data(layout *l, uint32_t at, const uint8_t *bytes, unsigned npages) {
  memcpy(l->model + (at - LO), bytes, (size_t)npages * PAGE);
}

/*   0x10000 M0  8 pages RO  Data S (pages 0 1 3 5 of 6), under O0 = U at 0x10000
**                           (3 pages, only page 1): S page 0 is cleared
**   0x18000 M1  8 pages RW  Data S, under O1 = empty 2-page Data at 0x19000
**   0x20000 M2  4 pages RW  zero fill, under O2 = V at 0x22000 (4 pages:
**   0x24000 M3  4 pages RO  Data T (4 pages)   0 2 3 present), spanning M2 and M3
**   runs: S 3 + S 3 + T 1 + U 1 + empty 0 + V 2 = 10 */
static void small_layout(layout *l) {
  static const bool s_pages[6] = {1, 1, 0, 1, 0, 1}, t_pages[4] = {1, 1, 1, 1},
                    u_pages[3] = {0, 1, 0}, e_pages[2] = {0, 0}, v_pages[4] = {1, 0, 1, 1};
  uint8_t t[32], u[32], e[32], v[32], *sb, *tb, *ub, *eb, *vb;
  memset(l, 0, sizeof *l);
  l->n = open_nub();
  put_data(l->n, 1, 6, s_pages, l->s_hash, &sb);
  put_data(l->n, 2, 4, t_pages, t, &tb);
  put_data(l->n, 3, 3, u_pages, u, &ub);
  put_data(l->n, 4, 2, e_pages, e, &eb);
  put_data(l->n, 5, 4, v_pages, v, &vb);
  nub_cap_mapping maps[4] = {mapping(0x10000, 8, CAP_ACCESS_RO, l->s_hash),
                         mapping(0x18000, 8, CAP_ACCESS_RW, l->s_hash),
                         mapping(0x20000, 4, CAP_ACCESS_RW, NULL),
                         mapping(0x24000, 4, CAP_ACCESS_RO, t)};
  nub_cap_overlay ovs[3] = {overlay(0x10000, u), overlay(0x19000, e), overlay(0x22000, v)};
  publish(l->n, maps, 4, ovs, 3, l->inst);
  model_data(l, 0x10000, sb, 6);
  model_data(l, 0x18000, sb, 6);
  model_data(l, 0x24000, tb, 4);
  model_data(l, 0x10000, ub, 3);
  model_data(l, 0x19000, eb, 2);
  model_data(l, 0x22000, vb, 4);
  for (uint32_t a = LO; a < HI; a += PAGE)
    l->ro[(a - LO) / PAGE] = a < 0x18000 || a >= 0x24000;
  l->runs = 10;
  free(sb); free(tb); free(ub); free(eb); free(vb);
}

static uint64_t model_u64(const layout *l, uint32_t addr) {
  uint64_t v;
  memcpy(&v, l->model + (addr - LO), 8);
  return v;
}

static uint64_t gas_for(const layout *l) { return l->runs * NUB_GAS_PER_DATA_RUN + 100; }

/* Every page: its first, a middle and its last u64, as the model says. */
static void expect_model(const layout *l) {
  for (uint32_t page = LO; page < HI; page += PAGE) {
    const uint32_t at[3] = {page, page + 0x7F8, page + PAGE - 8};
    for (int i = 0; i < 3; i++) {
      nub_invocation_result r = invoke(l->n, l->inst, 0, at[i], 0, gas_for(l));
      if (r.exit_reason != NUB_EXIT_HALT || r.return_value != model_u64(l, at[i]))
        fail_msg("u64 at 0x%x: exit %u value 0x%llx, want 0x%llx", at[i], r.exit_reason,
                 (unsigned long long)r.return_value, (unsigned long long)model_u64(l, at[i]));
    }
  }
}

/* ---- the tests ---- */

static void data_pages_read_back_exactly_and_absent_pages_read_zero(void **state) {
  (void)state;
  layout *l = malloc(sizeof *l);
  small_layout(l);
  assert_int_equal(model_u64(l, 0x12000), 0);            /* S page 2 is absent */
  assert_true(model_u64(l, 0x11000) != 0);               /* U page 1 */
  expect_model(l);
  nub_invocation_result r = invoke(l->n, l->inst, 0, HI, 0, gas_for(l));
  assert_int_equal(r.exit_reason, NUB_EXIT_PAGE_FAULT);  /* past the last mapping */
  assert_int_equal(r.exit_arg, HI);
  nub_close(l->n);
  free(l);
}

static void overlays_replace_what_they_cover_and_keep_its_access(void **state) {
  (void)state;
  layout *l = malloc(sizeof *l);
  small_layout(l);
  /* zero pages of an overlay hide the Data of the mapping under them */
  assert_int_equal(invoke(l->n, l->inst, 0, 0x10000, 0, gas_for(l)).return_value, 0);
  assert_int_equal(invoke(l->n, l->inst, 0, 0x19000, 0, gas_for(l)).return_value, 0);
  assert_int_equal(invoke(l->n, l->inst, 0, 0x1B000, 0, gas_for(l)).return_value,
                   model_u64(l, 0x1B000));               /* S page 3 past the overlay */
  /* V spans the RW zero fill and the RO mapping of T: each keeps its access */
  nub_invocation_result r = invoke(l->n, l->inst, 1, 0x22000, 77, gas_for(l));
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.return_value, 77);
  r = invoke(l->n, l->inst, 1, 0x24000, 77, gas_for(l));
  assert_int_equal(r.exit_reason, NUB_EXIT_PANIC);
  nub_close(l->n);
  free(l);
}

static void writes_stay_in_their_invocation(void **state) {
  (void)state;
  layout *l = malloc(sizeof *l);
  nub_error err;
  small_layout(l);
  uint8_t before[8 * PAGE], after[8 * PAGE];
  size_t blen, alen;
  assert_int_equal(nub_lookup(l->n, l->s_hash, before, sizeof before, &blen, &err), NUB_OK);
  for (uint32_t page = LO; page < HI; page += PAGE) {
    nub_invocation_result r = invoke(l->n, l->inst, 1, page + 16, 0xDEADBEEFull, gas_for(l));
    if (l->ro[(page - LO) / PAGE]) {
      assert_int_equal(r.exit_reason, NUB_EXIT_PANIC);   /* read-only stays read-only */
    } else {
      assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
      assert_int_equal(r.return_value, 0xDEADBEEFull);
    }
  }
  expect_model(l);                                       /* every invocation starts fresh */
  assert_int_equal(nub_lookup(l->n, l->s_hash, after, sizeof after, &alen, &err), NUB_OK);
  assert_int_equal(alen, blen);                          /* and the Data cap never changed */
  assert_memory_equal(after, before, blen);
  nub_close(l->n);
  free(l);
}

static void data_runs_are_paid_before_the_program_runs(void **state) {
  (void)state;
  layout *l = malloc(sizeof *l);
  small_layout(l);
  uint64_t cost = l->runs * NUB_GAS_PER_DATA_RUN;
  nub_invocation_result r = invoke(l->n, l->inst, 0, 0x11000, 0, cost + 100);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.gas_remaining, 100 - 2);
  r = invoke(l->n, l->inst, 0, 0x11000, 0, cost + 1);     /* memory paid, the block not */
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(r.gas_remaining, 1);
  r = invoke(l->n, l->inst, 0, 0x11000, 0, cost - 1);     /* memory not paid: never runs */
  assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
  assert_int_equal(r.gas_remaining, cost - 1);
  assert_int_equal(r.return_value, 0x11000);              /* phi7 = the argument */
  nub_close(l->n);
  free(l);
}

/* A lane keeps the lookups of its last invoke (nk_invoke.c, nk_warm):
** the same Instance and endpoint again must give the same result, gas
** included, on memory as fresh as the first time; another endpoint or
** Instance is looked up again. */
static void warm_invokes_repeat_the_cold_one_exactly(void **state) {
  (void)state;
  layout *l = malloc(sizeof *l);
  small_layout(l);
  static const uint32_t at[] = {0x18010, 0x1A008, 0x20000, 0x22FF8};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    nub_invocation_result first, again;
    for (uint32_t ep = 0; ep < 2; ep++) {   /* each switch of endpoint is a fresh lookup */
      first = invoke(l->n, l->inst, ep, at[i], 0x5A5A0000ull + i, gas_for(l));
      again = invoke(l->n, l->inst, ep, at[i], 0x5A5A0000ull + i, gas_for(l));
      assert_int_equal(first.exit_reason, NUB_EXIT_HALT);
      assert_int_equal(first.return_value, ep ? 0x5A5A0000ull + i : model_u64(l, at[i]));
      assert_memory_equal(&again, &first, sizeof first);
    }
    /* the store of the last two invokes is gone */
    first = invoke(l->n, l->inst, 0, at[i], 0, gas_for(l));
    assert_int_equal(first.return_value, model_u64(l, at[i]));
  }
  /* the Data runs are paid on the warm path too: never runs without them */
  uint64_t cost = l->runs * NUB_GAS_PER_DATA_RUN;
  for (int i = 0; i < 2; i++) {
    nub_invocation_result r = invoke(l->n, l->inst, 0, 0x11000, 0, cost - 1);
    assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
    assert_int_equal(r.gas_remaining, cost - 1);
  }
  /* a failed lookup between two invokes of the Instance changes nothing */
  uint8_t unknown[32];
  memset(unknown, 0x42, sizeof unknown);
  nub_invocation_result r = invoke(l->n, unknown, 0, 0, 0, gas_for(l));
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_INSTANCE_NOT_FOUND);
  r = invoke(l->n, l->inst, 0, 0x18010, 0, gas_for(l));
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.return_value, model_u64(l, 0x18010));
  nub_close(l->n);
  free(l);
}

/* A failed lookup is not kept: once the missing Data cap is published,
** the same invoke runs. */
static void an_invoke_missing_a_data_cap_runs_once_it_is_published(void **state) {
  (void)state;
  nub *n = open_nub();
  uint8_t *b = calloc(1, PAGE), *wire, d[32], inst[32];
  size_t len;
  for (unsigned o = 0; o < PAGE; o++) b[o] = pattern(9, 0, o);
  if (nub_cap_encode_data_alloc(PAGE, b, PAGE, &wire, &len, NULL)) fail_msg("encode data");
  assert_int_equal(nub_cap_hash_wire(wire, wire + len, d, NULL), CAP_OK);
  nub_cap_mapping maps[1] = {mapping(0x10000, 2, CAP_ACCESS_RW, NULL)};
  nub_cap_overlay ovs[1] = {overlay(0x10000, d)};
  publish(n, maps, 1, ovs, 1, inst);          /* the overlay's Data is not there yet */
  for (int i = 0; i < 2; i++) {
    nub_invocation_result r = invoke(n, inst, 0, 0x10008, 0, NUB_GAS_PER_DATA_RUN + 100);
    assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
    assert_int_equal(r.exit_arg, NUB_KERR_MEMORY);
  }
  uint8_t got[32];
  put_wire(n, wire, len, got);
  assert_memory_equal(got, d, 32);
  uint64_t want;
  memcpy(&want, b + 8, 8);
  nub_invocation_result r = invoke(n, inst, 0, 0x10008, 0, NUB_GAS_PER_DATA_RUN + 100);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.return_value, want);
  free(wire);
  free(b);
  nub_close(n);
}

/* Issue 9: ~350 bytes of caps made every gas-0 invoke write 4 GiB (4.9-8.7 s). */
static void an_empty_overlay_over_a_4gib_mapping_takes_milliseconds(void **state) {
  (void)state;
  nub *n = open_nub();
  uint8_t data[32], inst[32], *wire;
  size_t len;
  nub_cap_mapping all = mapping(0x10000, 0xFFFF0u, CAP_ACCESS_RW, NULL);
  assert_int_equal(nub_cap_encode_data_alloc(all.size, NULL, 0, &wire, &len, NULL), CAP_OK);
  put_wire(n, wire, len, data);
  free(wire);
  nub_cap_overlay ov = overlay(0x10000, data);
  publish(n, &all, 1, &ov, 1, inst);
  double worst = 0;
  for (int i = 0; i < 3; i++) {
    double t0 = now_ms();
    nub_invocation_result r = invoke(n, inst, 0, 0x10000, 0, 0);
    double t = now_ms() - t0;
    worst = t > worst ? t : worst;
    assert_int_equal(r.exit_reason, NUB_EXIT_OUT_OF_GAS);
    assert_int_equal(r.gas_remaining, 0);
  }
  if (worst >= 1000) fail_msg("a gas-0 invoke took %.1f ms", worst);
  /* the whole window is there, zero, writable */
  nub_invocation_result r = invoke(n, inst, 1, 0xFFFFFFF8u, 5, 10);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.return_value, 5);
  assert_int_equal(invoke(n, inst, 0, 0xFFFFFFF8u, 0, 10).return_value, 0);
  assert_int_equal(invoke(n, inst, 0, 0x10000, 0, 10).return_value, 0);
  nub_close(n);
}

/* Issue 9: 255 read-only mappings of one 16 MiB Data cap took 13.9 s. */
static void read_only_mappings_of_a_16mib_data_cap_take_milliseconds(void **state) {
  (void)state;
  nub *n = open_nub();
  bool *all = malloc(BIG / PAGE);
  uint8_t data[32], inst[32], *bytes;
  for (unsigned p = 0; p < BIG / PAGE; p++) all[p] = true;
  put_data(n, 9, BIG / PAGE, all, data, &bytes);
  nub_cap_mapping *maps = calloc(255, sizeof *maps);
  for (uint32_t i = 0; i < 255; i++) maps[i] = mapping(0x10000 + i * BIG, BIG / PAGE, CAP_ACCESS_RO, data);
  publish(n, maps, 255, NULL, 0, inst);
  const uint32_t last = 0x10000 + 254 * BIG + BIG - 8;
  uint64_t want, gas = 255ull * NUB_GAS_PER_DATA_RUN + 10;
  memcpy(&want, bytes + BIG - 8, 8);
  double worst = 0;
  for (int i = 0; i < 3; i++) {
    double t0 = now_ms();
    nub_invocation_result r0 = invoke(n, inst, 0, last, 0, 0);          /* cannot pay: no set-up */
    nub_invocation_result r1 = invoke(n, inst, 0, last, 0, gas);        /* set up, read, halt */
    double t = now_ms() - t0;
    worst = t > worst ? t : worst;
    assert_int_equal(r0.exit_reason, NUB_EXIT_OUT_OF_GAS);
    assert_int_equal(r0.gas_remaining, 0);
    assert_int_equal(r1.exit_reason, NUB_EXIT_HALT);
    assert_int_equal(r1.return_value, want);
    assert_int_equal(r1.gas_remaining, 10 - 2);
  }
  if (worst >= 1000) fail_msg("two invokes took %.1f ms", worst);
  assert_int_equal(invoke(n, inst, 1, last, 1, gas).exit_reason, NUB_EXIT_PANIC);
  assert_int_equal(invoke(n, inst, 0, last, 0, gas).return_value, want);
  free(maps);
  free(all);
  free(bytes);
  nub_close(n);
}

/* 255 mappings of a Data cap with 33 runs place 8415 runs: over the limit. */
static void more_data_runs_than_the_limit_is_a_memory_error(void **state) {
  (void)state;
  nub *n = open_nub();
  bool alternate[66];
  uint8_t data[32], inst[32];
  for (unsigned p = 0; p < 66; p++) alternate[p] = p % 2 == 0;
  put_data(n, 3, 66, alternate, data, NULL);
  nub_cap_mapping maps[255];
  for (uint32_t i = 0; i < 255; i++) maps[i] = mapping(0x10000 + i * 66 * PAGE, 66, CAP_ACCESS_RW, data);
  publish(n, maps, 255, NULL, 0, inst);
  nub_invocation_result r = invoke(n, inst, 0, 0x10000, 0, UINT64_MAX);
  assert_int_equal(r.exit_reason, NUB_EXIT_KERNEL_ERROR);
  assert_int_equal(r.exit_arg, NUB_KERR_MEMORY);
  uint32_t fit = CAP_MEMORY_MAX_RUNS / 33;                 /* 248 mappings: 8184 runs */
  publish(n, maps, fit, NULL, 0, inst);
  r = invoke(n, inst, 0, 0x10000 + (fit - 1) * 66 * PAGE + 64 * PAGE, 0, fit * 33ull * NUB_GAS_PER_DATA_RUN + 2);
  assert_int_equal(r.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(r.gas_remaining, 0);
  assert_int_equal(r.return_value & 0xFF, pattern(3, 64, 0));
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(data_pages_read_back_exactly_and_absent_pages_read_zero),
    cmocka_unit_test(overlays_replace_what_they_cover_and_keep_its_access),
    cmocka_unit_test(writes_stay_in_their_invocation),
    cmocka_unit_test(data_runs_are_paid_before_the_program_runs),
    cmocka_unit_test(warm_invokes_repeat_the_cold_one_exactly),
    cmocka_unit_test(an_invoke_missing_a_data_cap_runs_once_it_is_published),
    cmocka_unit_test(an_empty_overlay_over_a_4gib_mapping_takes_milliseconds),
    cmocka_unit_test(read_only_mappings_of_a_16mib_data_cap_take_milliseconds),
    cmocka_unit_test(more_data_runs_than_the_limit_is_a_memory_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
