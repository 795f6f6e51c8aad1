/*
** The gas cost model: the cost table covers every op, and block costs
** equal simulations walked by hand (docs/gas.md walks the first one).
** The program analysis keeps gas as a block list; entry costs and blocks
** read from it equal those read from the interpreter's pre-decoded walk.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pvm/pvm_internal.h"
#include "testutil.h"

static void every_op_has_a_cost_row(void **state) {
  (void)state;
  for (int op = 0; op < PVM_OP_COUNT; op++) {
    const pvm_gas_row *r = &pvm_gas_rows[op];
    if (r->slots < 1 || r->slots > 4 || r->slots_overlap < 1)
      fail_msg("op %d: decode slots %u / %u", op, r->slots, r->slots_overlap);
    if (r->cycle_rule == PVM_CYC_FIXED && r->cycles == 0 && op != PVM_OP_MOVE_REG)
      fail_msg("op %d: no cycles", op);
    /* gas.c counts only A, M and D per cycle: L and S come with an A */
    unsigned a = r->units & 0xff, l = r->units >> 8 & 0xff, s = r->units >> 16 & 0xff;
    unsigned m = r->units >> 24 & 0xff, d = r->units >> 32 & 0xff;
    if (l > a || s > a || a > 4 || m > 1 || d > 1 || r->units >> 40)
      fail_msg("op %d: units %#llx", op, (unsigned long long)r->units);
    /* the fast placer's planes: at most 2 ALUs, and M or D, not both */
    if (a > 2 || (m && d)) fail_msg("op %d: units %#llx", op, (unsigned long long)r->units);
    /* and at most two source registers and one destination */
    if (__builtin_popcount(r->dst) > 1 || __builtin_popcount(r->src) > 2)
      fail_msg("op %d: roles %u -> %u", op, r->src, r->dst);
  }
}

typedef struct block { uint32_t pc, cost; } block;
typedef struct gas_case {
  const char *name;
  nub_pvm_profile profile;
  uint8_t blob[24];
  size_t len;
  block blocks[4];
  unsigned nblocks;
} gas_case;

#define DRAFT PVM_PROFILE_GP08_DRAFT
#define JAMV1 PVM_PROFILE_JAMV1
#define GP07  PVM_PROFILE_GP07

static const gas_case cases[] = {
  /* load_ind_u64 r1, r2, 0 | add_64 r3, r1, r1 | jump 0: the docs/gas.md walk, 29 - 3 */
  {"load, dependent add, jump", DRAFT, {0, 0, 7, 130, 0x21, 200, 0x11, 3, 40, 0xFB, 0x25}, 11,
   {{0, 26}}, 1},
  {"the same under jamv1", JAMV1, {0, 0, 7, 130, 0x21, 200, 0x11, 3, 40, 0xFB, 0x25}, 11,
   {{0, 26}}, 1},
  {"the same under gp07: 1 per instruction", GP07,
   {0, 0, 7, 130, 0x21, 200, 0x11, 3, 40, 0xFB, 0x25}, 11, {{0, 3}}, 1},
  /* trap alone: decode 0, wait 1, 2 cycles, finish 4, retire 5 */
  {"trap", DRAFT, {0, 0, 1, 0, 0x01}, 5, {{0, 2}}, 1},
  /* four load_imm decode in cycle 0, the trap in cycle 1: 6 - 3 */
  {"four load_imm and a trap", JAMV1,
   {0, 0, 13, 51, 7, 1, 51, 8, 2, 51, 9, 3, 51, 10, 4, 0, 0x49, 0x12}, 18, {{0, 3}}, 1},
  /* jump_ind alone: 22 cycles from cycle 1, finish 24, retire 25 */
  {"jump_ind, then load_imm and trap", DRAFT,
   {0, 0, 6, 50, 0, 51, 7, 42, 0, 0x25}, 10, {{0, 22}, {2, 2}}, 2},
  /* branch_eq_imm whose fall-through is a trap costs 1 cycle (b); the
  ** implicit trap after a final fallthrough is a block of its own */
  {"cold branch", DRAFT, {0, 0, 8, 81, 7, 4, 0, 51, 7, 2, 0, 153}, 12,
   {{0, 1}, {3, 2}, {4, 2}}, 3},
  {"fallthrough at the end", JAMV1, {0, 0, 1, 1, 0x01}, 5, {{0, 2}, {1, 2}}, 2},
};

static void block_costs_match_hand_walks(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const gas_case *c = &cases[i];
    nub_pvm_program *prog;
    nub_pvm_error err;
    if (nub_pvm_program_load(c->profile, c->blob, c->len, &prog, &err))
      fail_msg("%s: %s", c->name, err.msg);
    uint32_t cur = 0, pc, cost;
    unsigned k = 0;
    bool basic;
    while (nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic)) {
      if (!basic) continue;
      if (k >= c->nblocks || c->blocks[k].pc != pc || c->blocks[k].cost != cost)
        fail_msg("%s: block %u: pc %u cost %u, expected pc %u cost %u", c->name, k, pc, cost,
                 k < c->nblocks ? c->blocks[k].pc : 0, k < c->nblocks ? c->blocks[k].cost : 0);
      k++;
    }
    if (k != c->nblocks) fail_msg("%s: %u blocks, expected %u", c->name, k, c->nblocks);
    nub_pvm_program_free(prog);
  }
}

/* ---- the block list against the pre-decoded walk ---- */

static uint64_t next_rand(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* A random blob: up to 100 code bytes (valid opcodes of the profile, a
** few invalid and register bytes), a bitmask with starts at random, two
** jump table entries. */
static size_t random_blob(nub_pvm_profile profile, uint64_t *s, uint8_t *out) {
  const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
  uint32_t code_len = (uint32_t)(next_rand(s) % 100);
  size_t n = 0;
  out[n++] = 2;                              /* jump table: 2 entries of 1 byte */
  out[n++] = 1;
  out[n++] = (uint8_t)code_len;
  out[n++] = (uint8_t)(next_rand(s) % (code_len + 2));
  out[n++] = (uint8_t)(next_rand(s) % (code_len + 2));
  for (uint32_t i = 0; i < code_len; i++) {
    uint8_t byte = (uint8_t)next_rand(s);
    if (next_rand(s) % 4) while (!isa[byte].name) byte = (uint8_t)next_rand(s);
    out[n++] = byte;
  }
  /* one blob in four has gaps of 25 bytes and more: synthetic traps */
  unsigned density = next_rand(s) % 4 ? 35u : 3u;
  for (uint32_t i = 0; i < (code_len + 7) / 8; i++) {
    uint8_t m = 0;
    for (int b = 0; b < 8; b++)
      if (next_rand(s) % 100 < (i == 0 && b == 0 ? 90u : density)) m |= (uint8_t)(1u << b);
    if (i == (code_len + 7) / 8 - 1 && code_len % 8) m &= (uint8_t)((1u << (code_len % 8)) - 1);
    out[n++] = m;
  }
  return n;
}

/* The entry cost as read from the pre-decoded walk (what the program kept
** before the block list): the block of the instruction at or before pc;
** gp07 charges the share of the block left. */
static int64_t walk_entry_cost(const nub_pvm_program *p, uint32_t pc) {
  const pvm_gas_rules *rules = pvm_gas_rules_of(p->profile);
  const nub_pvm_opinfo *isa = nub_pvm_isa(p->profile);
  if (p->unrunnable) return 0;
  if (rules->first_run_check && (!nub_pvm_blob_is_start(&p->blob, pc) || !isa[p->blob.code[pc]].name))
    return 0;
  uint32_t i = pvm_program_index_at(p, pc);
  bool exact = pc <= p->blob.code_len && p->insns[i].pc == pc;
  if (!exact && !rules->pipeline) return isa[0].gas;
  if (p->insns[i].gas) return p->insns[i].gas;
  uint32_t head = i, end = i + 1;
  while (head > 0 && !p->insns[head].gas) head--;
  if (rules->pipeline) return p->insns[head].gas;
  while (end < p->insn_count && !p->insns[end].gas) end++;
  return (int64_t)p->insns[head].gas * (end - i) / (end - head);
}

static void the_block_list_agrees_with_the_predecoded_walk(void **state) {
  (void)state;
  uint64_t seed = 42;
  unsigned checked = 0, unrunnable = 0, traps = 0;
  for (int profile = 0; profile < PVM_PROFILE_COUNT; profile++) {
    for (int k = 0; k < 3000; k++) {
      uint8_t blob[256];
      size_t len = random_blob((nub_pvm_profile)profile, &seed, blob);
      nub_pvm_program *p;
      nub_pvm_error err;
      if (nub_pvm_program_load((nub_pvm_profile)profile, blob, len, &p, &err))
        fail_msg("profile %d blob %d: %s", profile, k, err.msg);
      assert_false(p->interp_ready);          /* loading pre-decodes nothing */
      assert_int_equal(pvm_program_prepare_interp(p, &err), PVM_OK);
      unrunnable += p->unrunnable;
      if (!p->unrunnable) traps += p->insn_count - p->start_count - 1;   /* synthetic ones */
      /* the blocks are the walk's heads, in order, with their costs */
      uint32_t cur = 0, pc, cost, i = 0;
      bool basic;
      while (nub_pvm_program_next_block(p, &cur, &pc, &cost, &basic)) {
        while (i < p->insn_count && !p->insns[i].gas) i++;
        assert_true(i < p->insn_count);
        assert_int_equal(pc, p->insns[i].pc);
        assert_int_equal(cost, p->insns[i].gas);
        i++;
      }
      while (i < p->insn_count) assert_int_equal(p->insns[i++].gas, 0);
      /* asked twice at each pc (the second from the program's memo of
      ** the last entry), then once more back to front */
      for (uint32_t at = 0; at <= p->blob.code_len + 2; at++) {
        int64_t first = nub_pvm_program_entry_cost(p, at), again = nub_pvm_program_entry_cost(p, at);
        if (first != walk_entry_cost(p, at) || again != first)
          fail_msg("profile %d blob %d pc %u: entry cost %lld then %lld, the walk's %lld", profile,
                   k, at, (long long)first, (long long)again, (long long)walk_entry_cost(p, at));
        checked++;
      }
      for (uint32_t at = p->blob.code_len + 3; at-- > 0;)
        if (nub_pvm_program_entry_cost(p, at) != walk_entry_cost(p, at))
          fail_msg("profile %d blob %d pc %u: entry cost back to front", profile, k, at);
      nub_pvm_program_free(p);
    }
  }
  assert_true(checked > 100000);
  assert_true(traps > 500);
  assert_true(unrunnable > 0 && unrunnable < 3000);   /* jamv1 rejects some, not all */
}

/* ---- the walk's rows against decoding ---- */

/* The simulation's record of a decoded instruction, derived the long way
** from the decoder's fields and the A.10 row (what program analysis did
** per instruction before its per-opcode rows); NULL is a trap. */
static pvm_gas_insn decoded_gas_insn(const nub_pvm_program *p, const nub_pvm_insn *in) {
  nub_pvm_op op = in && in->op != PVM_OP_INVALID ? (nub_pvm_op)in->op : PVM_OP_TRAP;
  const pvm_gas_row *r = &pvm_gas_rows[op];
  const nub_pvm_blob *b = &p->blob;
  uint8_t regs[3] = {0, 0, 0}, srcs[2] = {PVM_GAS_NO_SRC, PVM_GAS_NO_SRC}, dst = PVM_GAS_NO_DST;
  unsigned k = 0;
  if (in) regs[0] = in->ra, regs[1] = in->rb, regs[2] = in->rd;
  for (unsigned role = 0; role < 3; role++) {
    if (r->src & (1u << role)) srcs[k++] = regs[role];
    if (r->dst & (1u << role)) dst = regs[role];
  }
  uint8_t cycles = r->cycles;
  if (r->cycle_rule == PVM_CYC_MEM) cycles = pvm_gas_rules_of(p->profile)->mem_cycles;
  if (r->cycle_rule == PVM_CYC_BRANCH) {
    int64_t at[2] = {in->target, (int64_t)in->pc + in->len};
    int unlikely = nub_pvm_opcode_of(p->profile, PVM_OP_UNLIKELY);
    bool cold = false;
    for (int i = 0; i < 2; i++) {
      uint8_t z = at[i] >= 0 && at[i] < (int64_t)b->code_len ? b->code[at[i]] : 0;
      cold = cold || z == 0 || z == unlikely;
    }
    cycles = cold ? 1 : 20;
  }
  bool overlap = r->slot_rule == PVM_SLOTS_P ? dst == srcs[0] || dst == srcs[1]
               : r->slot_rule == PVM_SLOTS_PS ? in->ra == in->rd : false;
  return pvm_gas_insn_make(cycles, overlap ? r->slots_overlap : r->slots, op == PVM_OP_MOVE_REG,
                           srcs[0], srcs[1], dst, pvm_gas_use_of(r->units));
}

/* Block costs the long way: step pc by 1 + skip, decode every
** instruction, feed the simulation one at a time. */
static uint32_t decoded_block_costs(const nub_pvm_program *p, pvm_gas_block *out) {
  static pvm_gas_sim sim;
  const nub_pvm_blob *b = &p->blob;
  const nub_pvm_opinfo *isa = nub_pvm_isa(p->profile);
  uint32_t n = 0, head = 0;
  bool open = false;
  pvm_gas_sim_begin(&sim);
  for (uint32_t pc = pvm_next_start(b, 0);;) {
    nub_pvm_insn in;
    bool end = pc >= b->code_len, ends = true;
    if (!end) pvm_decode(isa, b, pc, &in);
    if (!open) head = pc, open = true;
    pvm_gas_insn x = decoded_gas_insn(p, end ? NULL : &in);
    pvm_gas_sim_feed(&sim, &x, 1);
    if (!end) ends = in.op == PVM_OP_INVALID || (isa[in.opcode].flags & PVM_OPF_TERM);
    if (ends) {
      out[n++] = (pvm_gas_block){head, pvm_gas_sim_end(&sim)};
      pvm_gas_sim_begin(&sim);
      open = false;
    }
    if (end) return n;
    uint64_t next = (uint64_t)pc + in.len;
    if (in.len == PVM_MAX_SKIP + 1 && next < b->code_len && !nub_pvm_blob_is_start(b, next)) {
      pvm_gas_insn trap = decoded_gas_insn(p, NULL);
      if (!open) head = (uint32_t)next;
      pvm_gas_sim_feed(&sim, &trap, 1);
      out[n++] = (pvm_gas_block){head, pvm_gas_sim_end(&sim)};
      pvm_gas_sim_begin(&sim);
      open = false;
      next = pvm_next_start(b, next);
    }
    pc = (uint32_t)next;
  }
}

static void the_walk_costs_blocks_as_decoding_each_instruction_does(void **state) {
  (void)state;
  static const nub_pvm_profile profiles[] = {PVM_PROFILE_GP08_DRAFT, PVM_PROFILE_JAMV1};
  uint64_t seed = 7;
  unsigned blocks = 0, programs = 0;
  for (size_t pi = 0; pi < sizeof profiles / sizeof profiles[0]; pi++) {
    for (int k = 0; k < 4000; k++) {
      uint8_t blob[256];
      pvm_gas_block want[128];
      size_t len = random_blob(profiles[pi], &seed, blob);
      nub_pvm_program *p;
      nub_pvm_error err;
      if (nub_pvm_program_load(profiles[pi], blob, len, &p, &err))
        fail_msg("profile %d blob %d: %s", (int)profiles[pi], k, err.msg);
      if (!p->unrunnable) {
        uint32_t n = decoded_block_costs(p, want);
        if (n != p->block_count)
          fail_msg("profile %d blob %d: %u blocks, decoding gives %u", (int)profiles[pi], k,
                   p->block_count, n);
        /* costs are placed when first asked, a stretch from there on:
        ** asked in order, backwards (each stretch from a block of its
        ** own), all at once (as the interpreter's pre-decoding places
        ** them), or every third block alone first (the JIT's tight
        ** loops), they are the same */
        if (k % 4 == 2) assert_int_equal(pvm_program_prepare_interp(p, &err), PVM_OK);
        if (k % 4 == 3) {
          uint32_t list[128], m = 0;
          for (uint32_t j = n; j-- > 0;)
            if (j % 3 == 0) list[m++] = j;
          pvm_program_place_list(p, list, m);
          for (uint32_t j = 0; j < n; j++)
            if ((j % 3 == 0) != (pvm_block_cost_known(p, j) != 0))
              fail_msg("profile %d blob %d: block %u placed by the list: %u", (int)profiles[pi],
                       k, j, pvm_block_cost_known(p, j));
        }
        for (uint32_t j = 0; j < n; j++) {
          uint32_t i = k % 4 == 1 ? n - 1 - j : j, cost = pvm_block_cost(p, i);
          if (p->blocks[i].pc != want[i].pc || cost != want[i].cost)
            fail_msg("profile %d blob %d block %u: pc %u cost %u, decoding gives pc %u cost %u",
                     (int)profiles[pi], k, i, p->blocks[i].pc, cost, want[i].pc, want[i].cost);
        }
        blocks += n;
        programs++;
      }
      nub_pvm_program_free(p);
    }
  }
  printf("%u blocks of %u random programs cost as decoded\n", blocks, programs);
  assert_true(programs > 4000 && blocks > 10000);
}

/* The interpreter pre-decodes at its compile, within compile_within's
** bound, and the program's size counts the form from then on. */
static void the_interpreter_predecodes_at_its_compile_within_its_bound(void **state) {
  (void)state;
  static const uint8_t blob[] = {0, 0, 7, 130, 0x21, 200, 0x11, 3, 40, 0xFB, 0x25};
  nub_pvm_program *p;
  nub_pvm_error err;
  void *code = (void *)1;
  assert_int_equal(nub_pvm_program_load(GP07, blob, sizeof blob, &p, &err), PVM_OK);
  size_t before = nub_pvm_program_bytes(p), need = pvm_program_interp_bytes(p);
  assert_false(p->interp_ready);
  assert_true(need >= p->insn_count * sizeof(pvm_xinsn));
  assert_int_equal(nub_pvm_engine_interp.compile_within(p, need - 1, &code, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "pre-decoding"));
  assert_false(p->interp_ready);
  assert_int_equal(nub_pvm_program_bytes(p), before);
  assert_int_equal(nub_pvm_engine_interp.compile_within(p, need, &code, &err), PVM_OK);
  assert_null(code);
  assert_true(p->interp_ready);
  assert_int_equal(nub_pvm_program_bytes(p), before + need);
  nub_pvm_program_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_op_has_a_cost_row),
    cmocka_unit_test(block_costs_match_hand_walks),
    cmocka_unit_test(the_block_list_agrees_with_the_predecoded_walk),
    cmocka_unit_test(the_walk_costs_blocks_as_decoding_each_instruction_does),
    cmocka_unit_test(the_interpreter_predecodes_at_its_compile_within_its_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
