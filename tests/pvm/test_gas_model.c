/*
** The block simulation (src/pvm/gas.c) against GP 0.8.0 A.9 transcribed
** literally, cycle by cycle, over random instruction sequences built from
** the A.10 rows: short blocks, blocks of loads, stores, multiplies and
** divisions that run short of units, blocks longer than the reorder
** buffer, blocks that run past the schedule's 512 cycles of cells, and
** move_reg renaming.  gas.c schedules most blocks without
** stepping cycles and simulates the rest; both paths must give the
** literal model's cost, and the runs must take both.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "pvm/pvm_internal.h"
#include "testutil.h"

#define MAX_INSNS 160
#define MAX_LONG 1000 /* blocks longer than program analysis hands the placer at once */
#ifndef ROUNDS
#define ROUNDS 4      /* times the shapes below are drawn */
#endif

/* One random instruction: register sets and units for the literal
** model, and the same as the simulation's record. */
typedef struct test_insn {
  uint8_t cycles, slots;
  bool move;
  uint16_t src, dst;
  uint64_t units;
  pvm_gas_insn sim;
  nub_pvm_op op;            /* and its registers A, B, D, for a program */
  uint8_t reg[3];
} test_insn;

/* ---- A.9, literally ---- */

enum { NONE, DEC, WAIT, EXE, FIN };
typedef struct entry {
  int state, left;
  uint16_t regs;
  int units[5];
  int deps[8], ndeps;
} entry;

static void units_of(uint64_t packed, int u[5]) {
  for (int k = 0; k < 5; k++) u[k] = (int)(packed >> (8 * k) & 0xff);
}

static uint32_t literal_cost(const test_insn *in, int n) {
  static entry r[MAX_LONG];
  static const int total[5] = {4, 4, 4, 1, 1};
  int t[5] = {4, 4, 4, 1, 1}, len = 0, i = 0, d = 4, e = 5;
  uint32_t c = 0;
  for (;;) {
    int live = 0;
    for (int j = 0; j < len; j++) live += r[j].state != NONE;
    if (i < n && in[i].slots <= d && live < 32) {          /* Xi' */
      const test_insn *x = &in[i++];
      if (x->move) {                                         /* Xi^mov */
        for (int j = 0; j < len; j++)
          r[j].regs = (r[j].regs & x->src) ? (uint16_t)(r[j].regs | x->dst)
                                           : (uint16_t)(r[j].regs & ~x->dst);
        d -= 1;
        continue;
      }
      entry *y = &r[len];                                    /* Xi^dec */
      y->ndeps = 0;
      for (int j = 0; j < len; j++) {
        if (r[j].regs & x->src) y->deps[y->ndeps++] = j;
        r[j].regs &= (uint16_t)~x->dst;
      }
      y->state = DEC;
      y->left = x->cycles;
      y->regs = x->dst;
      units_of(x->units, y->units);
      len++;
      d -= x->slots;
      continue;
    }
    int ready = -1;                                          /* S */
    for (int j = 0; j < len && ready < 0; j++) {
      if (r[j].state != WAIT) continue;
      bool ok = true;
      for (int k = 0; k < 5; k++) ok = ok && r[j].units[k] <= t[k];
      for (int k = 0; k < r[j].ndeps; k++) ok = ok && r[r[j].deps[k]].left == 0;
      if (ok) ready = j;
    }
    if (ready >= 0 && e > 0) {                               /* Xi'' */
      e--;
      for (int k = 0; k < 5; k++) t[k] -= r[ready].units[k];
      r[ready].state = EXE;
      continue;
    }
    if (i == n && live == 0) break;
    bool prefix_done = true;                                 /* Xi''' */
    for (int j = 0; j < len; j++) {
      entry *y = &r[j];
      int was = y->state, left = y->left;
      prefix_done = prefix_done && (was == FIN || was == NONE);
      if (was == EXE && left == 1)
        for (int k = 0; k < 5; k++) t[k] += y->units[k];
      if (prefix_done) y->state = NONE;
      else if (was == DEC) y->state = WAIT;
      else if (was == EXE && left == 0) y->state = FIN;
      if (was == EXE && left > 0) y->left--;
    }
    for (int k = 0; k < 5; k++) assert_true(t[k] <= total[k]);
    c++;
    d = 4;
    e = 5;
  }
  return c > 4 ? c - 3 : 1;
}

/* ---- random blocks from the A.10 rows ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Ops a block draws from: everything, or the ones that fight for units. */
static const nub_pvm_op busy_ops[] = {
  PVM_OP_LOAD_IND_U64, PVM_OP_LOAD_U32, PVM_OP_STORE_IND_U64, PVM_OP_STORE_IMM_U8,
  PVM_OP_STORE_U16, PVM_OP_DIV_U_64, PVM_OP_REM_S_32, PVM_OP_MUL_64, PVM_OP_MUL_UPPER_S_U,
  PVM_OP_TRAILING_ZERO_BITS_64, PVM_OP_ADD_64, PVM_OP_ECALLI, PVM_OP_MOVE_REG,
  PVM_OP_LOAD_IMM, PVM_OP_BRANCH_EQ,
};

/* Ops of 25 to 100 cycles, most on the one divider: blocks that run
** past the schedule's 512 cycles (its ring of cells wraps). */
static const nub_pvm_op long_ops[] = {
  PVM_OP_DIV_U_64, PVM_OP_REM_S_32, PVM_OP_DIV_S_32, PVM_OP_ECALLI, PVM_OP_LOAD_IND_U64,
  PVM_OP_STORE_U16, PVM_OP_ADD_64,
};

/* Divisions only: long blocks that keep the divider taken (the fast
** placer's cells move on inside the block). */
static const nub_pvm_op divider_ops[] = {
  PVM_OP_DIV_U_64, PVM_OP_REM_S_32, PVM_OP_DIV_S_32, PVM_OP_REM_U_64,
};

enum { ANY_OPS, BUSY_OPS, LONG_OPS, DIVIDER_OPS };

/* A random op of the kind asked for; with in_program, only ops that
** can sit inside a block (no terminator: each block of a program ends
** in a fallthrough). */
static test_insn random_insn_of(int ops, unsigned regs, bool in_program) {
  nub_pvm_op op;
  do {
    op = ops == BUSY_OPS ? busy_ops[next_rand() % (sizeof busy_ops / sizeof busy_ops[0])]
       : ops == LONG_OPS ? long_ops[next_rand() % (sizeof long_ops / sizeof long_ops[0])]
       : ops == DIVIDER_OPS ? divider_ops[next_rand() % (sizeof divider_ops / sizeof divider_ops[0])]
       : (nub_pvm_op)(next_rand() % PVM_OP_COUNT);
  } while (op == PVM_OP_SBRK || op == PVM_OP_INVALID ||
           (in_program && (nub_pvm_isa(PVM_PROFILE_JAMV1)[nub_pvm_opcode_of(PVM_PROFILE_JAMV1, op)].flags & PVM_OPF_TERM)));
  const pvm_gas_row *row = &pvm_gas_rows[op];
  unsigned reg[3] = {next_rand() % regs, next_rand() % regs, next_rand() % regs};   /* A, B, D */
  uint16_t src = 0, dst = 0;
  uint8_t srcs[2] = {PVM_GAS_NO_SRC, PVM_GAS_NO_SRC}, dreg = PVM_GAS_NO_DST, k = 0;
  for (unsigned r = 0; r < 3; r++) {
    if (row->src & (1u << r)) {
      src |= (uint16_t)(1u << reg[r]);
      srcs[k++] = (uint8_t)reg[r];
    }
    if (row->dst & (1u << r)) {
      dst |= (uint16_t)(1u << reg[r]);
      dreg = (uint8_t)reg[r];
    }
  }
  bool overlap = row->slot_rule == PVM_SLOTS_P ? (src & dst) != 0
               : row->slot_rule == PVM_SLOTS_PS ? reg[0] == reg[2] : false;
  test_insn x = {
    .cycles = row->cycle_rule == PVM_CYC_MEM ? 25
            : row->cycle_rule == PVM_CYC_BRANCH ? (next_rand() & 1 ? 20 : 1) : row->cycles,
    .slots = overlap ? row->slots_overlap : row->slots,
    .move = op == PVM_OP_MOVE_REG,
    .src = src, .dst = dst, .units = row->units,
  };
  x.sim = pvm_gas_insn_make(x.cycles, x.slots, x.move, srcs[0], srcs[1], dreg,
                            pvm_gas_use_of(row->units));
  x.op = op;
  for (int r = 0; r < 3; r++) x.reg[r] = (uint8_t)reg[r];
  return x;
}

static test_insn random_insn(int ops, unsigned regs) { return random_insn_of(ops, regs, false); }

/* Feeds the block in random chunks, as program analysis feeds batches:
** the last one through pvm_gas_sim_block (feed, end, begin the next) as
** program analysis does, or through feed and end, then begin (again: a
** second begin changes nothing).  Either way the next block is begun. */
static uint32_t model_cost(pvm_gas_sim *s, const test_insn *in, int n, bool one_call) {
  static pvm_gas_insn recs[MAX_INSNS];
  for (int k = 0; k < n; k++) recs[k] = in[k].sim;
  if (!one_call) pvm_gas_sim_begin(s);
  for (int k = 0; k < n;) {
    int chunk = 1 + (int)(next_rand() % (unsigned)(n - k));
    if (one_call && k + chunk == n) return pvm_gas_sim_block(s, recs + k, (uint32_t)chunk);
    pvm_gas_sim_feed(s, recs + k, (uint32_t)chunk);
    k += chunk;
  }
  uint32_t cost = pvm_gas_sim_end(s);
  pvm_gas_sim_begin(s);
  return cost;
}

/* The same block through the fast placer, as program analysis runs it:
** placed entry by entry; once it gives up, the block so far and the
** rest go to the simulation (s), which gives the cost. */
static uint32_t fast_cost_at(pvm_gas_fast *f, pvm_gas_clock *k, pvm_gas_sim *s,
                             const test_insn *in, int n, int *given_up_at) {
  static pvm_gas_insn recs[MAX_LONG + 1];
  bool slow = false;
  *given_up_at = -1;
  for (int i = 0; i < n; i++) {
    pvm_gas_insn x = recs[i] = in[i].sim;
    pvm_gas_place place = pvm_gas_place_of(PVM_GI(x, CYCLES), PVM_GI(x, USE));
    if (!slow && !pvm_gas_fast_entry(f, k, &place, PVM_GI(x, SLOTS), PVM_GI(x, MOVE),
                                     PVM_GI(x, SRC0), PVM_GI(x, SRC1), PVM_GI(x, DST))) {
      slow = true;
      *given_up_at = i;
      pvm_gas_sim_begin(s);
      pvm_gas_sim_feed(s, recs, (uint32_t)i);
    }
    if (slow) pvm_gas_sim_feed(s, &x, 1);
  }
  uint32_t cost = pvm_gas_fast_end(f, k);
  return slow ? pvm_gas_sim_end(s) : cost;
}

static uint32_t fast_cost(pvm_gas_fast *f, pvm_gas_clock *k, pvm_gas_sim *s, const test_insn *in,
                          int n) {
  int given_up_at;
  return fast_cost_at(f, k, s, in, n, &given_up_at);
}

/* Shapes of random blocks: length, whether busy ops dominate, registers. */
typedef struct shape { const char *name; int min_len, max_len; int ops; unsigned regs; int count; } shape;
static const shape shapes[] = {
  {"short blocks of any op", 1, 12, ANY_OPS, 13, 1500},
  {"short busy blocks, few registers", 2, 16, BUSY_OPS, 4, 1500},
  {"longer busy blocks", 16, 48, BUSY_OPS, 6, 400},
  {"blocks past the reorder buffer", 40, MAX_INSNS, BUSY_OPS, 8, 150},
  {"long blocks of any op", 40, MAX_INSNS, ANY_OPS, 13, 100},
  {"blocks past 512 cycles", 10, 60, LONG_OPS, 6, 1000},
  {"long runs on the divider", 100, MAX_INSNS, DIVIDER_OPS, 13, 3},
};

static void random_blocks_cost_what_a9_says(void **state) {
  (void)state;
  static pvm_gas_sim sim, fast_sim;   /* zero-initialised, as program analysis starts it */
  static pvm_gas_fast fast;
  static test_insn block[MAX_INSNS];
  unsigned exact = 0, total = 0, past_cells = 0, resumed = 0, rebased = 0, exact_one_call = 0;
  unsigned placed_fast = 0;
  pvm_gas_clock clock = {.left = 4};
  pvm_gas_fast_init(&fast);
  pvm_gas_sim_begin(&sim);   /* pvm_gas_sim_block begins the next block itself */
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    const shape *sh = &shapes[k];
    for (int b = 0; b < sh->count * ROUNDS; b++) {
      /* blocks share one time line; now and then move it to just before
      ** it starts over, so some blocks begin past PVM_GAS_REBASE */
      uint32_t origin_before = sim.origin, exact_before = sim.exact_count;
      if (b % 50 == 49) {
        sim.last_done = PVM_GAS_REBASE - (next_rand() % 2000);
        pvm_gas_sim_begin(&sim);
        /* (forward only: the cells past the origin are zero) */
        uint32_t to = PVM_GAS_REBASE - (next_rand() % 2000);
        if (to > clock.last_done) clock.last_done = to;
        (void)pvm_gas_fast_end(&fast, &clock);
      }
      uint32_t slow_before = fast.slow_count;
      uint32_t resumed_before = sim.resume_count;
      bool one_call = b & 1;
      int n = sh->min_len + (int)(next_rand() % (unsigned)(sh->max_len - sh->min_len + 1));
      for (int i = 0; i < n; i++) block[i] = random_insn(sh->ops, sh->regs);
      test_insn *last = &block[n - 1];       /* the block ends in a real instruction */
      last->move = false;
      if (!last->cycles) {
        last->cycles = 2;
        last->src = 0;
      }
      last->sim = pvm_gas_insn_make(last->cycles, last->slots, false,
                                    last->src ? PVM_GI(last->sim, SRC0) : PVM_GAS_NO_SRC,
                                    last->src ? PVM_GI(last->sim, SRC1) : PVM_GAS_NO_SRC,
                                    PVM_GI(last->sim, DST), PVM_GI(last->sim, USE));
      uint32_t want = literal_cost(block, n), got = model_cost(&sim, block, n, one_call);
      if (want != got) fail_msg("%s, block %d (%d instructions): cost %u, A.9 says %u", sh->name, b, n, got, want);
      got = fast_cost(&fast, &clock, &fast_sim, block, n);
      if (want != got) fail_msg("%s, block %d (%d instructions): fast placer %u, A.9 says %u", sh->name, b, n, got, want);
      placed_fast += fast.slow_count == slow_before;
      rebased += sim.origin < origin_before;
      exact += sim.exact_count != exact_before;
      exact_one_call += one_call && sim.exact_count != exact_before;
      resumed += sim.resume_count != resumed_before;
      past_cells += want > PVM_GAS_CELLS;
      total++;
    }
  }
  printf("%u random blocks equal, %u of them simulated after a conflict (%u ended by "
         "pvm_gas_sim_block, %u placing again once all had started), %u past %u cycles, %u after "
         "the time line started over\n", total, exact, exact_one_call, resumed, past_cells,
         PVM_GAS_CELLS, rebased);
  /* both paths ran */
  assert_true(exact > 0);
  assert_true(exact < total);
  assert_true(past_cells > 0);
  assert_true(resumed > 0 && resumed < exact);
  assert_true(rebased > 0);
  assert_true(exact_one_call > 0 && exact_one_call < exact);
  printf("fast placer: %u of them placed, the others given up on and simulated; %u entries "
         "searched past their ready cycle, %u moves of the cells inside a block, %u time line "
         "starts over\n", placed_fast, fast.search_count, fast.slide_count, fast.rebase_count);
  assert_true(placed_fast > 0 && placed_fast < total);
  assert_true(fast.search_count > 0);
  assert_true(fast.slide_count > 0);
  assert_true(fast.rebase_count > 0);
}

/* Programs of random blocks (each ending in a fallthrough), loaded: the
** walk runs the fast placer and, for the blocks it gives up on,
** simulates them from their head again.  Every block costs what A.9
** says, and some blocks were given up on (the placer run here on the
** same blocks in the same order makes the same choices). */
/* Finishes bld (and frees it), loads it under jamv1 and checks that its
** first n blocks cost what the literal A.9 says of blocks[b] (lens[b]). */
static void program_costs_what_a9_says(nub_pvm_builder *bld, const test_insn *const *blocks,
                                       const int *lens, int n, const char *name) {
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_pvm_program *prog;
  assert_int_equal(nub_pvm_builder_finish(bld, &blob, &len, &err), 0);
  nub_pvm_builder_free(bld);
  if (nub_pvm_program_load(PVM_PROFILE_JAMV1, blob, len, &prog, &err)) fail_msg("%s", err.msg);
  uint32_t cursor = 0, pc, cost;
  bool basic;
  for (int b = 0; b < n; b++) {
    assert_true(nub_pvm_program_next_block(prog, &cursor, &pc, &cost, &basic));
    uint32_t want = literal_cost(blocks[b], lens[b]);
    if (cost != want) fail_msg("%s, block %d at pc %u: cost %u, A.9 says %u", name, b, pc, cost, want);
  }
  nub_pvm_program_free(prog);
  free(blob);
}

static void random_programs_cost_what_a9_says(void **state) {
  (void)state;
  static test_insn blocks[300][MAX_INSNS + 1];
  static int lens[300];
  static pvm_gas_fast fast;
  static pvm_gas_sim sim;
  unsigned total = 0, given_up = 0;
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    const shape *sh = &shapes[k];
    int nblocks = sh->count / 5 < 300 ? sh->count / 5 : 300;
    nub_pvm_builder *bld = nub_pvm_builder_new(PVM_PROFILE_JAMV1);
    pvm_gas_clock clock = {.left = 4};
    pvm_gas_fast_init(&fast);
    assert_non_null(bld);
    for (int b = 0; b < nblocks; b++) {
      int n = sh->min_len + (int)(next_rand() % (unsigned)(sh->max_len - sh->min_len + 1));
      for (int i = 0; i < n; i++) {
        test_insn *x = &blocks[b][i];
        *x = random_insn_of(sh->ops, sh->regs, true);
        nub_pvm_builder_insn(bld, x->op, x->reg[0], x->reg[1], x->reg[2], next_rand() % 300,
                             next_rand() % 300);
      }
      test_insn *end = &blocks[b][n];
      *end = (test_insn){.cycles = 2, .slots = 1, .op = PVM_OP_FALLTHROUGH,
                         .sim = pvm_gas_insn_make(2, 1, false, PVM_GAS_NO_SRC, PVM_GAS_NO_SRC,
                                                  PVM_GAS_NO_DST, 0)};
      nub_pvm_builder_insn(bld, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
      lens[b] = n + 1;
      uint32_t slow_before = fast.slow_count;
      (void)fast_cost(&fast, &clock, &sim, blocks[b], lens[b]);
      given_up += fast.slow_count != slow_before;
    }
    const test_insn *rows[300];
    for (int b = 0; b < nblocks; b++) rows[b] = blocks[b];
    program_costs_what_a9_says(bld, rows, lens, nblocks, sh->name);
    total += (uint32_t)nblocks;
  }
  printf("%u blocks of random programs equal, %u of them given up on by the fast placer\n", total,
         given_up);
  assert_true(given_up > 0 && given_up < total);
}

/* Blocks longer than what program analysis hands the placer at once
** (512 instructions): a run of add_64 the placer takes without a search,
** then busy ops over few registers, so that some blocks are given up on
** past the 512th instruction (after the first part of the block was
** placed) and others are placed whole; every block costs what A.9 says. */
static void blocks_longer_than_the_placers_batch_cost_what_a9_says(void **state) {
  (void)state;
  enum { NBLOCKS = 10, BATCH = 512 };
  static test_insn blocks[NBLOCKS][MAX_LONG + 1];
  static int lens[NBLOCKS];
  static pvm_gas_fast fast;
  static pvm_gas_sim sim;
  unsigned given_up_late = 0, placed_whole = 0;
  nub_pvm_builder *bld = nub_pvm_builder_new(PVM_PROFILE_JAMV1);
  pvm_gas_clock clock = {.left = 4};
  pvm_gas_fast_init(&fast);
  assert_non_null(bld);
  for (int b = 0; b < NBLOCKS; b++) {
    int plain = 520 + (int)(next_rand() % 60), n = plain + 150 + (int)(next_rand() % 250);
    for (int i = 0; i < n; i++) {
      test_insn *x = &blocks[b][i];
      /* the busy part over 3 registers, or (every third block) none */
      bool busy = i >= plain && b % 3 != 2;
      *x = busy ? random_insn_of(BUSY_OPS, 3, true) : random_insn_of(ANY_OPS, 13, true);
      if (!busy && x->cycles > 3) {
        *x = random_insn_of(BUSY_OPS, 13, true);
        while (x->op != PVM_OP_ADD_64) *x = random_insn_of(BUSY_OPS, 13, true);
      }
      nub_pvm_builder_insn(bld, x->op, x->reg[0], x->reg[1], x->reg[2], next_rand() % 300,
                           next_rand() % 300);
    }
    blocks[b][n] = (test_insn){.cycles = 2, .slots = 1, .op = PVM_OP_FALLTHROUGH,
                               .sim = pvm_gas_insn_make(2, 1, false, PVM_GAS_NO_SRC,
                                                        PVM_GAS_NO_SRC, PVM_GAS_NO_DST, 0)};
    nub_pvm_builder_insn(bld, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
    lens[b] = n + 1;
    int at;
    (void)fast_cost_at(&fast, &clock, &sim, blocks[b], lens[b], &at);
    given_up_late += at >= BATCH;
    placed_whole += at < 0;
  }
  const test_insn *rows[NBLOCKS];
  for (int b = 0; b < NBLOCKS; b++) rows[b] = blocks[b];
  program_costs_what_a9_says(bld, rows, lens, NBLOCKS, "long blocks");
  printf("%d blocks of %d+ instructions equal, %u given up on past instruction %d, %u placed "
         "whole\n", NBLOCKS, BATCH, given_up_late, BATCH, placed_whole);
  assert_true(given_up_late > 0);
  assert_true(placed_whole > 0);
}

/* Program analysis decodes only a branch's target (pvm_decode_target):
** for every start of random code (random opcode bytes, random starts,
** short codes so the last bytes read zeta's zeros), under each profile,
** it gives the target pvm_decode gives. */
static void branch_targets_as_analysis_reads_them_are_the_decoders(void **state) {
  (void)state;
  enum { CODE = 2048 };
  static uint8_t code[CODE], mask[CODE / 8 + 1];
  unsigned compared = 0, branches = 0;
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    const nub_pvm_opinfo *isa = nub_pvm_isa((nub_pvm_profile)p);
    for (int round = 0; round < 40; round++) {
      uint32_t len = round < 20 ? 1 + (uint32_t)round : CODE - (uint32_t)(next_rand() % 64);
      for (uint32_t i = 0; i < len; i++) code[i] = (uint8_t)next_rand();
      memset(mask, 0, sizeof mask);
      for (uint32_t i = 0; i < len; i++)
        if (i == 0 || next_rand() % 4 == 0) mask[i / 8] |= (uint8_t)(1u << (i % 8));
      nub_pvm_blob b = {.code = code, .bitmask = mask, .code_len = len};
      for (uint32_t pc = 0; pc < len; pc++) {
        if (!nub_pvm_blob_is_start(&b, pc) || !isa[code[pc]].name) continue;
        nub_pvm_insn in;
        pvm_decode(isa, &b, pc, &in);
        int64_t t = pvm_decode_target(&isa[code[pc]], &b, pc, pvm_skip(&b, pc));
        if (t != in.target)
          fail_msg("profile %d, pc %u of %u, opcode %u: %lld, the decoder %lld", p, pc, len,
                   code[pc], (long long)t, (long long)in.target);
        compared++;
        branches += (isa[code[pc]].flags & PVM_OPF_BRANCH) != 0;
      }
    }
  }
  printf("%u targets equal, %u of branches\n", compared, branches);
  assert_true(branches > 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(random_blocks_cost_what_a9_says),
    cmocka_unit_test(random_programs_cost_what_a9_says),
    cmocka_unit_test(blocks_longer_than_the_placers_batch_cost_what_a9_says),
    cmocka_unit_test(branch_targets_as_analysis_reads_them_are_the_decoders),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
