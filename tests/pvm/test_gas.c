/*
** The gas cost model: the cost table covers every op, and block costs
** equal simulations walked by hand (docs/gas.md walks the first one).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_op_has_a_cost_row),
    cmocka_unit_test(block_costs_match_hand_walks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
