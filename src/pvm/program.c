/*
** Program loading: validation, basic-block analysis (varpi, A.5) and gas
** blocks in one pass over the code; the interpreter's pre-decoded
** instruction array is built on the interpreter's first use.
*/
#include <stdlib.h>

#include "../util/nub_assert.h"
#include "pvm_internal.h"

/* The bitmask's starts (the walk counts them where it runs to the end). */
static uint32_t count_starts(const nub_pvm_blob *b) {
  uint64_t starts = 0, words = ((uint64_t)b->code_len + 63) / 64;
  for (uint64_t w = 0; w < words; w++) starts += (uint64_t)pvm_popcount64(pvm_mask_word(b, w));
  return (uint32_t)starts;
}

static uint64_t window_count(uint32_t code_len) { return ((uint64_t)code_len >> PVM_WINDOW_SHIFT) + 2; }

bool nub_pvm_program_is_block_start(const nub_pvm_program *prog, uint64_t pc) {
  return pc < prog->blob.code_len && pvm_bit_get(prog->block_start, pc);
}

/* ---- analysis: blocks and gas ---- */

/* The next bitmask start from a cursor over the mask's words (bits: the
** word's starts not taken yet), or end: in order from the words' bits
** (pc + skip would chain each step on the loads of the last); padding
** bits are zero (blob.c). */
#define NEXT_START_BITS(b_, word_, words_, bits_, end_, out_)                        \
  do {                                                                             \
    while (!(bits_) && ++(word_) < (words_)) (bits_) = pvm_mask_word((b_), (word_)); \
    (out_) = (bits_) ? (uint32_t)((word_) * 64 + (uint64_t)__builtin_ctzll(bits_)) : (end_); \
    (bits_) &= (bits_) - 1;                                                        \
  } while (0)

/* Gas blocks run from a head to the next block-ending instruction (a
** terminator, an invalid opcode or a synthetic trap); the head carries
** the whole cost (>= 1).  gp07 charges 1 per instruction, counted by the
** load's walk.  The pipeline profiles place each block (A.9: the fast
** placer, pvm_gas_fast_try, or the simulation, gas.c, for a block it
** gives up on) when its cost is first asked (pvm_block_cost): the load
** finds the blocks only.  A JIT-compiled program is mostly entered in a
** few of its blocks, and placing was ~30% of a jamv1 load + compile
** (docs/gas.md, "Lazy costs").
**
** Placing notes each instruction of a stretch of blocks (its row and
** where it is); every GAS_PENDING instructions or so, and at the end, a
** loop of the placer alone runs over them and fills in the blocks'
** costs, with only its own state live (inside the walk, the compiler
** kept 13 to 15 of the walk's values on the stack: docs/gas.md "Fifth
** round"). */
#define GAS_PENDING 512

/* zeta (A.4): the code, then zeros. */
static uint8_t zeta_at(const uint8_t *code, uint32_t code_len, int64_t at) {
  return at >= 0 && at < (int64_t)code_len ? code[at] : 0;
}

/* The simulation's view of an instruction under row g (a branch under
** the row of its b, PVM_GAS_OPS_HOT / _COLD), at[1] and at[2] the bytes
** after its opcode. */
static pvm_gas_insn gas_insn_of(const pvm_gas_op *g, const uint8_t *at) {
  unsigned z1 = at[1], z2 = at[2];
  uint64_t regs = g->regs[z1];
  uint64_t d = (z2 > 12 ? 12 : z2) & g->dst_mask;      /* rD of the three-register format */
  pvm_gas_insn x = g->insn | (regs & PVM_GAS_REG_BITS) | d << PVM_GI_DST;
  uint64_t overlap = regs >> (g->overlap_at + d) & 1;
  return x - ((uint64_t)g->overlap_saves << PVM_GI_SLOTS & -overlap);
}

/* The pipeline profiles' state: the instructions the walk noted, the
** fast placer and, for a block it gives up on, the simulation, fed the
** block from its head again, then the rest. */
typedef struct pvm_gas_state {
  pvm_gas_fast fast;
  pvm_gas_clock clock;
  bool slow;                               /* the open block is simulated */
  pvm_gas_block *blocks;                   /* the program's; costs from block_done on are owed */
  uint32_t block_done;
  /* the first entry's index in note of the block open when the batch
  ** began (so its entries before entry i are i - first, mod 2^32: it
  ** began before them); open_first finds the block open at entry i */
  uint32_t first;
  uint32_t ready, ready_dst, stop;         /* place_run: where it stopped and why */
  /* the instructions noted, in order: their row (every block's last has
  ** PVM_GOP_ENDS; a synthetic trap has the row of trap, byte 0) and where
  ** their opcode is (at[1], at[2] the bytes after it; in tail for the
  ** last 3 bytes of the code and the final trap) */
  struct gas_note { const pvm_gas_op *row; const uint8_t *at; } note[GAS_PENDING + 1];
  pvm_gas_op stop_row;                     /* the sentinel's after the last (place_run) */
  pvm_gas_insn batch[GAS_PENDING];
  uint8_t tail[8];                         /* zeta(code_len - 3 + i) */
  pvm_gas_sim sim;
} gas_state;

/* A cost placed: atomic, as engines on other threads may be reading
** the costs placed before (pvm_block_cost). */
static inline void set_cost(pvm_gas_block *k, uint32_t cost) {
  __atomic_store_n(&k->cost, cost, __ATOMIC_RELAXED);
}

/* Begin simulating the open block: its first `entries` instructions, again
** (none of them a branch or a synthetic trap: those end a block). */
static __attribute__((noinline)) void simulate_from_head(gas_state *gs, const nub_pvm_blob *b,
                                                         const pvm_gas_op *ops, uint32_t head,
                                                         uint32_t entries) {
  uint32_t queued = 0;
  pvm_gas_sim_begin(&gs->sim);
  for (uint32_t at = head; entries--; at = pvm_next_start(b, (uint64_t)at + 1)) {
    const uint8_t *op = (uint64_t)at + 3 <= b->code_len ? b->code + at
                                                         : gs->tail + (at + 3 - b->code_len);
    gs->batch[queued++] = gas_insn_of(&ops[b->code[at]], op);
    if (queued == GAS_PENDING) {
      pvm_gas_sim_feed(&gs->sim, gs->batch, queued);
      queued = 0;
    }
  }
  pvm_gas_sim_feed(&gs->sim, gs->batch, queued);
}

/* Where place_run stopped before count, or place_searching (gs->stop). */
enum { GAS_STOP_SEARCH, GAS_STOP_MOVE, GAS_STOP_GIVE_UP, GAS_STOP_NONE };

/* Entry x decoded and placed in its ready cycle if its units are free
** there (pvm_gas_fast_try), with the registers and slots as gas_insn_of
** finds them; move and last as the row says (constants in place_run). */
static inline __attribute__((always_inline)) bool note_try(gas_state *gs, pvm_gas_clock *k,
                                                           const struct gas_note *x,
                                                           uint32_t *ready, unsigned *dst,
                                                           bool move, bool last) {
  const pvm_gas_op *row = x->row;
  const pvm_gas_regs *regs = &row->fast_regs[x->at[1]];
  unsigned d = row->rd_of[x->at[2]];
  *dst = regs->dst + d;                    /* one of them is 0 */
  return pvm_gas_fast_try_as(&gs->fast, k, &row->place, row->slots_of[regs->overlap >> d & 1],
                             move, regs->src0, regs->src1, *dst, ready, last);
}

/* The placer alone over the entries from `from` to the sentinel after
** the last (its row has PVM_GOP_STOP), calling nothing (what it keeps
** then stays in registers), filling in the costs of the blocks that end
** there.  Returns the sentinel's index, or where it stopped: an entry not
** placed in its ready cycle (GAS_STOP_SEARCH, gs->ready), or a block's
** last entry, placed, whose block needs the cells moved on
** (GAS_STOP_MOVE: pvm_gas_fast_end).  One test of the row's flags sends
** move_reg, a block's last entry and the sentinel off the common path. */
static __attribute__((noinline)) uint32_t place_run(gas_state *gs, uint32_t from) {
  pvm_gas_clock k = gs->clock;
  pvm_gas_block *blk = gs->blocks + gs->block_done;
  const struct gas_note *x = gs->note + from;
  for (;; x++) {
    unsigned flags = x->row->flags, dst;
    if (PVM_LIKELY(!(flags & (PVM_GOP_ENDS | PVM_GOP_MOVE)))) {
      if (!note_try(gs, &k, x, &gs->ready, &dst, false, false)) goto search;
      continue;
    }
    if (flags & PVM_GOP_MOVE) {
      (void)note_try(gs, &k, x, &gs->ready, &dst, true, false);
      continue;
    }
    if (flags & PVM_GOP_STOP) break;
    /* the block's last entry (pvm_gas_fast_try_as) */
    if (!note_try(gs, &k, x, &gs->ready, &dst, false, true)) goto search;
    uint32_t cost = pvm_gas_fast_end_near(&gs->fast, &k);
    if (!cost) {
      gs->stop = GAS_STOP_MOVE;
      break;
    }
    set_cost(blk++, cost);
    continue;
  search:
    gs->ready_dst = dst;
    gs->stop = GAS_STOP_SEARCH;
    break;
  }
  gs->clock = k;
  gs->block_done = (uint32_t)(blk - gs->blocks);
  return (uint32_t)(x - gs->note);
}

/* The open block's cost. */
static void block_cost(gas_state *gs, uint32_t cost) { set_cost(&gs->blocks[gs->block_done++], cost); }

/* The index in note of the first entry of the block open at entry i: the
** one after the last block's last entry before i, looked for where it is
** needed rather than kept per block. */
static uint32_t open_first(const gas_state *gs, uint32_t i) {
  while (i > 0 && !(gs->note[i - 1].row->flags & PVM_GOP_ENDS)) i--;
  return i > 0 ? i : gs->first;
}

/* After an entry that needed a search the next ones often do too (a run
** of divisions or stores): placed here, the search called in the loop,
** until one is placed in its ready cycle (GAS_STOP_NONE; returns the
** entry after it) or the placer gives up (GAS_STOP_GIVE_UP at the entry
** returned). */
static __attribute__((noinline)) uint32_t place_searching(gas_state *gs, uint32_t i,
                                                          uint32_t count) {
  gs->stop = GAS_STOP_NONE;
  for (; i < count; i++) {
    const struct gas_note *x = &gs->note[i];
    uint32_t ready;
    unsigned dst;
    bool at_ready = note_try(gs, &gs->clock, x, &ready, &dst, x->row->move, false);
    if (!at_ready && !pvm_gas_fast_place_later(&gs->fast, &gs->clock, &x->row->place, dst, ready)) {
      gs->stop = GAS_STOP_GIVE_UP;
      return i;
    }
    if (x->row->flags & PVM_GOP_ENDS) block_cost(gs, pvm_gas_fast_end(&gs->fast, &gs->clock));
    if (at_ready) return i + 1;
  }
  return count;
}

/* Entries [i, count) of a block the placer gave up on, to the simulation
** (its cost when it ends there); returns the entry after the last fed. */
static uint32_t feed_slow(gas_state *gs, uint32_t i, uint32_t count) {
  uint32_t queued = 0;
  for (; i < count; i++) {
    const pvm_gas_op *row = gs->note[i].row;
    gs->batch[queued++] = gas_insn_of(row, gs->note[i].at);
    if (row->flags & PVM_GOP_ENDS) {
      gs->slow = false;
      (void)pvm_gas_fast_end(&gs->fast, &gs->clock);    /* the placer's next block begun */
      block_cost(gs, pvm_gas_sim_block(&gs->sim, gs->batch, queued));
      return i + 1;
    }
  }
  pvm_gas_sim_feed(&gs->sim, gs->batch, queued);
  return count;
}

/* The entries [0, count) the walk noted, to the placer, or to the
** simulation for a block the placer gives up on; the costs of the
** blocks that end there are filled in. */
static __attribute__((noinline)) void gas_place(gas_state *gs, const nub_pvm_blob *b,
                                                const pvm_gas_op *ops, uint32_t count) {
  /* pcs rise: the last few may be within 3 bytes of the code's end,
  ** where zeta reads zeros (the final trap is at code_len) */
  for (uint32_t j = count; j-- > 0;) {
    uint64_t pc = (uint64_t)(gs->note[j].at - b->code);
    if (pc + 3 <= b->code_len) break;
    gs->note[j].at = gs->tail + (pc + 3 - b->code_len);
  }
  gs->note[count] = (struct gas_note){&gs->stop_row, gs->tail};
  for (uint32_t i = 0; i < count;) {
    if (gs->slow) {
      i = feed_slow(gs, i, count);
      continue;
    }
    uint32_t from = i;
    if ((i = place_run(gs, i)) == count) break;
    const pvm_gas_op *row = gs->note[i].row;
    if (gs->stop == GAS_STOP_MOVE) {
      block_cost(gs, pvm_gas_fast_end(&gs->fast, &gs->clock));
      i++;
      continue;
    }
    /* the search's first step inline (about 135 host instructions saved
    ** where it places the entry; not in place_searching, whose runs of
    ** divisions or stores it seldom places) */
    if (pvm_gas_fast_near(&gs->fast, &gs->clock, &row->place, gs->ready_dst, gs->ready, false) ||
        pvm_gas_fast_place_later(&gs->fast, &gs->clock, &row->place, gs->ready_dst, gs->ready)) {
      if (row->flags & PVM_GOP_ENDS) block_cost(gs, pvm_gas_fast_end(&gs->fast, &gs->clock));
      /* two searches in a row (place_run placed nothing): a run of them,
      ** likely; place_searching leaves gs->stop GAS_STOP_SEARCH otherwise */
      i = i == from ? place_searching(gs, i + 1, count) : i + 1;
      if (gs->stop != GAS_STOP_GIVE_UP) continue;
    }
    /* give up: the block from its head again, entry i on as they come */
    gs->slow = true;
    simulate_from_head(gs, b, ops, gs->blocks[gs->block_done].pc, i - open_first(gs, i));
  }
  gs->first = open_first(gs, count) - count;   /* the next entries start at 0 again */
}

/* A branch at pc, len bytes: its backward target marked as a loop
** target when it starts a block.  Out of line and decoding only the
** target: inlined with the whole decode, it cost about 135 host
** instructions a branch and took registers the walk's loop then kept on
** the stack (docs/gas.md "Sixth round"). */
static __attribute__((noinline)) void branch_seen(nub_pvm_program *p, const nub_pvm_opinfo *isa,
                                                  uint32_t pc, uint32_t len) {
  const nub_pvm_blob *b = &p->blob;
  int64_t target = pvm_decode_target(&isa[b->code[pc]], b, pc, len - 1);
  /* a backward target is a block start or not by now */
  if (target >= 0 && target <= pc && pvm_bit_get(p->block_start, (uint64_t)target))
    pvm_bit_set(p->loop_target, (uint64_t)target);
}

/* One pass over the code: decode, mark varpi (A.5: pc 0 and each
** successor of a valid terminator, when it is a valid instruction), note
** the block starts later branches jump back to, and list the gas blocks
** (gp07 with their costs, the pipeline profiles' 0: not yet placed).
** Only branches are decoded in full, for their targets; the profile's
** pvm_gas_op row says what the opcode byte is (valid, terminator,
** branch).  Branch targets need no resolving: an engine checks varpi at
** the target.  What the loop updates is in locals: the bitsets take
** byte stores, which may alias any field read through p.  Inlined once
** per kind of cost (jamv1's load of the 64k-instruction bench program:
** 3.40 -> 3.23 M host instructions). */
static inline __attribute__((always_inline)) void walk(nub_pvm_program *p, bool per_insn) {
  const nub_pvm_blob *b = &p->blob;
  const nub_pvm_opinfo *isa = nub_pvm_isa(p->profile);
  const pvm_gas_op *ops = pvm_gas_ops(p->profile);
  const pvm_gas_rules *rules = pvm_gas_rules_of(p->profile);
  const uint8_t *code = b->code;
  uint8_t *block_start = p->block_start;
  pvm_gas_block *blocks = p->blocks;
  bool first_run_check = rules->first_run_check;
  /* n: the instructions besides the bitmask's starts (synthetic traps, the
  ** final one); count: the open block's; visited: all of them so far */
  uint32_t code_len = b->code_len, n = 0, count = 0, nblocks = 0, visited = 0;
  /* GP 0.8.0 deblob (v_blob): from pc 0, each instruction valid and the
  ** next starting where the skip lands, ending exactly at the code end;
  ** a program that fails it keeps no analysis (make_unrunnable) */
  if (first_run_check && !(code_len > 0 && nub_pvm_blob_is_start(b, 0))) goto unrunnable;
  /* the open block ends; the next one's head */
#define END_BLOCK(next_head_)                                                              \
  do {                                                                                     \
    blocks[nblocks++] = (pvm_gas_block){head, per_insn ? count : 0};                       \
    visited += count;                                                                      \
    head = (next_head_);                                                                   \
    count = 0;                                                                             \
  } while (0)
  /* starts in order from the bitmask's bits (pc + skip would chain each
  ** step on the loads of the last); padding bits are zero (blob.c) */
  uint64_t word = 0, words = ((uint64_t)code_len + 63) / 64, bits = pvm_mask_word(b, 0);
#define NEXT_START(out) NEXT_START_BITS(b, word, words, bits, code_len, out)
  uint32_t pc, head = 0;                   /* head: the open block's first pc */
  NEXT_START(pc);
  head = pc;
  /* varpi: pc 0, and (where a block ends, below) a terminator's successor,
  ** when valid; marked ahead, so the loop carries no flag for it */
  if (pc == 0 && pc < code_len && (ops[code[0]].flags & PVM_GOP_VALID)) pvm_bit_set(block_start, 0);
  while (pc < code_len) {
    uint32_t next;
    NEXT_START(next);
    /* the distance to the next start, 1 + skip while at most 25: written
    ** out where it is used (kept in a local, it was kept on the stack) */
#define DIST (next - pc)
#define LEN (DIST > PVM_MAX_SKIP + 1 ? PVM_MAX_SKIP + 1 : DIST)
    unsigned flags = ops[code[pc]].flags;
    count++;
    /* the rest is rare: one test for all of it */
    if (PVM_UNLIKELY((flags & (PVM_GOP_ENDS | PVM_GOP_BRANCH)) || DIST > PVM_MAX_SKIP + 1)) {
      if (flags & PVM_GOP_BRANCH) branch_seen(p, isa, pc, LEN);
      if (first_run_check && !(flags & PVM_GOP_VALID)) goto unrunnable;   /* invalid: ENDS */
      if (flags & PVM_GOP_ENDS) {
        /* a terminator's successor (where the skip lands) starts a basic block */
        if ((flags & PVM_GOP_TERM) && DIST <= PVM_MAX_SKIP + 1 && next < code_len &&
            (ops[code[next]].flags & PVM_GOP_VALID))
          pvm_bit_set(block_start, next);
        END_BLOCK(pc + LEN);
      }
      if (DIST > PVM_MAX_SKIP + 1) {
        /* the skip lands where nothing starts: a synthetic trap there
        ** ends the block (or is one) */
        if (first_run_check) goto unrunnable;
        n++;
        count++;
        END_BLOCK(next);
      }
    }
    pc = next;
#undef LEN
#undef DIST
  }
#undef NEXT_START
  /* the final trap at code_len: the open block's last instruction, or a
  ** block of its own (head = code_len) */
  n++;
  count++;
  END_BLOCK(code_len);
#undef END_BLOCK
  p->block_count = nblocks;
  p->insn_count = visited;
  p->start_count = visited - n;         /* every start is visited once */
  NUB_ASSERT(p->start_count == count_starts(b));
  p->unrunnable = false;
  return;
unrunnable:
  p->start_count = count_starts(b);
  p->block_count = 0;
  p->unrunnable = true;
}

/* ---- placing: the pipeline profiles' costs ---- */

/* A branch's row for its b (A.10): PVM_GAS_OPS_COLD for b = 1, when the
** target or the fall-through starts with the opcode byte of trap or
** unlikely (bytes past the code read as 0), else PVM_GAS_OPS_HOT. */
static __attribute__((noinline)) unsigned branch_rows(const nub_pvm_program *p, uint32_t pc,
                                                      uint32_t len) {
  const nub_pvm_blob *b = &p->blob;
  const uint8_t *code = b->code;
  int unlikely_byte = nub_pvm_opcode_of(p->profile, PVM_OP_UNLIKELY);
  int64_t target = pvm_decode_target(&nub_pvm_isa(p->profile)[code[pc]], b, pc, len - 1);
  uint8_t t = zeta_at(code, b->code_len, target), f = zeta_at(code, b->code_len, (int64_t)pc + len);
  return t == 0 || f == 0 || t == unlikely_byte || f == unlikely_byte ? PVM_GAS_OPS_COLD
                                                                      : PVM_GAS_OPS_HOT;
}

/* The placer's state at its start, once per program: placing goes on
** from any block after one it finished (a block's cost depends on its
** own instructions only, and the placer moves its clock on at each
** block's end), so a stretch costs no set-up (the ~10 KB of it were a
** fifth of placing 65536 one-instruction blocks a stretch at a time). */
static void place_begin(const nub_pvm_program *p, gas_state *gs) {
  const nub_pvm_blob *b = &p->blob;
  const pvm_gas_op *ops = pvm_gas_ops(p->profile);
  memset(&gs->sim, 0, sizeof gs->sim);     /* the simulation starts from zero cells */
  pvm_gas_fast_init(&gs->fast);
  gs->clock = (pvm_gas_clock){.left = 4};
  gs->slow = false;
  gs->blocks = p->blocks;
  for (int i = 0; i < 8; i++)
    gs->tail[i] = zeta_at(b->code, b->code_len, (int64_t)b->code_len - 3 + i);
  gs->stop_row = ops[0];                   /* trap's, which ends a block: read like one */
  gs->stop_row.flags |= PVM_GOP_STOP;
}

/* Place blocks from k on: block k whole, then the next blocks not yet
** placed while fewer than `budget` instructions were noted.  Returns the
** number of blocks it placed that had no cost before.  Under gas_lock,
** after place_begin. */
static uint32_t place_blocks(const nub_pvm_program *p, gas_state *gs, uint32_t k,
                             uint64_t budget) {
  const nub_pvm_blob *b = &p->blob;
  const pvm_gas_op *ops = pvm_gas_ops(p->profile);
  const uint8_t *code = b->code;
  uint32_t code_len = b->code_len, noted = 0, fresh = 0;
  uint64_t total = 0;
  if (!p->gas_begun) {
    place_begin(p, gs);
    ((nub_pvm_program *)p)->gas_begun = true;
  }
  gs->block_done = k;
  gs->first = 0;
#define NOTE(row_, at_) (gs->note[noted++] = (struct gas_note){(row_), (at_)})
  /* the bitmask's starts from block k's head on, in order from the
  ** words' bits (cur: the next one; pvm_next_start per instruction was a
  ** third of placing 65536 two-instruction blocks) */
  uint32_t head = p->blocks[k].pc, cur;
  uint64_t word = head >> 6, words = ((uint64_t)code_len + 63) / 64,
           bits = head < code_len ? pvm_mask_word(b, word) & (~0ull << (head & 63)) : 0;
#define NEXT_START(out) NEXT_START_BITS(b, word, words, bits, code_len, out)
  NEXT_START(cur);
  for (uint32_t j = k; j < p->block_count; j++) {
    if (j > k && (total + noted >= budget || pvm_block_cost_known(p, j))) break;
    fresh += !pvm_block_cost_known(p, j);
    /* the block's instructions as the load's walk found them: bitmask
    ** starts up to one that ends it, a synthetic trap where a skip lands
    ** on no start, the final trap at code_len; a head at no start (cur is
    ** past it) is a synthetic trap alone, or the final one */
    uint32_t pc = p->blocks[j].pc;
    if (noted > GAS_PENDING - 2) {         /* room for an instruction and a trap */
      total += noted;
      gas_place(gs, b, ops, noted);
      noted = 0;
    }
    if (pc != cur || pc >= code_len) {
      NOTE(&ops[0], code + pc);
      continue;
    }
    for (;;) {
      const pvm_gas_op *row = &ops[code[pc]];
      unsigned flags = row->flags;
      NEXT_START(cur);
      /* the rest is rare: one test for all of it (the common step was
      ** 55 host instructions with each test on its own) */
      if (PVM_UNLIKELY((flags & (PVM_GOP_ENDS | PVM_GOP_BRANCH)) ||
                       cur - pc > PVM_MAX_SKIP + 1 || cur >= code_len)) {
        uint32_t dist = cur - pc, len = dist > PVM_MAX_SKIP + 1 ? PVM_MAX_SKIP + 1 : dist;
        if ((flags & PVM_GOP_BRANCH) && (flags & PVM_GOP_BRANCH_CYCLES))
          row += branch_rows(p, pc, len);
        NOTE(row, code + pc);
        if (flags & PVM_GOP_ENDS) break;
        if (dist > PVM_MAX_SKIP + 1) {     /* the skip lands where nothing starts */
          NOTE(&ops[0], code + pc + len);
          break;
        }
        if (cur >= code_len) {             /* the final trap, in this block */
          NOTE(&ops[0], code + code_len);
          break;
        }
      } else {
        NOTE(row, code + pc);
      }
      pc = cur;
      if (PVM_UNLIKELY(noted > GAS_PENDING - 2)) {
        total += noted;
        gas_place(gs, b, ops, noted);
        noted = 0;
      }
    }
  }
#undef NEXT_START
#undef NOTE
  gas_place(gs, b, ops, noted);
  NUB_ASSERT(!gs->slow);
  return fresh;
}

/* Instructions a lazy placing notes at least (then the block it is in
** ends): ~7 us of placing, against the ~0.2 us a JIT exit and re-entry
** for it costs (nub_jit_run). */
#define GAS_LAZY_INSNS 256

uint32_t pvm_block_cost_slow(const nub_pvm_program *prog, uint32_t k) {
  nub_pvm_program *p = (nub_pvm_program *)prog;   /* costs are a cache of the analysis */
  pthread_mutex_lock(&p->gas_lock);
  if (!pvm_block_cost_known(p, k)) {
    NUB_ASSERT(p->gas);
    p->costs_left -= place_blocks(p, p->gas, k, GAS_LAZY_INSNS);
    if (!p->costs_left) {                  /* every block placed: the state goes */
      free(p->gas);
      p->gas = NULL;
    }
  }
  pthread_mutex_unlock(&p->gas_lock);
  return pvm_block_cost_known(p, k);
}

void pvm_program_place_list(const nub_pvm_program *prog, const uint32_t *ks, uint32_t n) {
  nub_pvm_program *p = (nub_pvm_program *)prog;
  pthread_mutex_lock(&p->gas_lock);
  for (uint32_t i = 0; i < n && p->costs_left; i++) {
    if (pvm_block_cost_known(p, ks[i])) continue;
    p->costs_left -= place_blocks(p, p->gas, ks[i], 0);
  }
  if (!p->costs_left) {
    free(p->gas);
    p->gas = NULL;
  }
  pthread_mutex_unlock(&p->gas_lock);
}

static int analyse(nub_pvm_program *p, nub_pvm_error *err) {
  bool pipeline = pvm_gas_rules_of(p->profile)->pipeline;
  if (pipeline) walk(p, false);
  else walk(p, true);
  if (pipeline && p->block_count) {
    /* about 26 KB, kept until every block is placed; stop_row is a
    ** 64-byte aligned row */
    p->gas = aligned_alloc(_Alignof(gas_state), sizeof(gas_state));
    if (!p->gas) return pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for the gas model");
    p->costs_left = p->block_count;
    p->gas_begun = false;
  }
  return PVM_OK;
}

/* A program that fails the 0.8.0 deblob check still loads (Psi panics on
** it rather than rejecting it): every entry panics without charge, so
** it keeps only a trap at pc 0 and the final one, both free. */
static void make_unrunnable(nub_pvm_program *p) {
  uint32_t end = p->blob.code_len;
  p->insn_count = end ? 2 : 1;
  memset(p->block_start, 0, ((size_t)end + 8) / 8);
  memset(p->loop_target, 0, ((size_t)end + 8) / 8);
  p->block_count = 0;
}

int nub_pvm_program_load(nub_pvm_profile profile, const uint8_t *blob, size_t len,
                     nub_pvm_program **out, nub_pvm_error *err) {
  nub_pvm_program *p;
  int rc;
  *out = NULL;
  if (!nub_pvm_isa(profile)) return pvm_fail(err, PVM_ERR_ARG, 0, "program: unknown ISA profile %d", (int)profile);
  if (!blob && len) return pvm_fail(err, PVM_ERR_ARG, 0, "program: no bytes");
  p = calloc(1, sizeof *p);
  if (!p) return pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory");
  pthread_mutex_init(&p->interp_lock, NULL);
  pthread_mutex_init(&p->gas_lock, NULL);
  p->profile = profile;
  p->bytes = malloc(len ? len : 1);
  p->len = len;
  if (!p->bytes) { rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for %zu bytes", len); goto fail; }
  if (len) memcpy(p->bytes, blob, len);
  if ((rc = nub_pvm_blob_parse(p->bytes, p->bytes + len, &p->blob, err))) goto fail;
  /* every instruction the walk produces covers a byte of its own
  ** (nub_pvm_program_load_bytes): at most code_len + 1, as many blocks */
  uint64_t cap = (uint64_t)p->blob.code_len + 1;
  p->block_start = calloc(((size_t)p->blob.code_len + 8) / 8, 1);
  p->loop_target = calloc(((size_t)p->blob.code_len + 8) / 8, 1);
  /* one block per instruction at most; pages past the last block are
  ** never touched, and given back below */
  p->blocks = malloc(cap * sizeof *p->blocks);
  if (!p->block_start || !p->loop_target || !p->blocks) {
    rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for block analysis");
    goto fail;
  }
  if ((rc = analyse(p, err))) goto fail;
  if (p->unrunnable) make_unrunnable(p);
  if (p->block_count < cap) {
    pvm_gas_block *fit = realloc(p->blocks, ((size_t)p->block_count + 1) * sizeof *p->blocks);
    if (fit) p->blocks = fit;
  }
  *out = p;
  return PVM_OK;
fail:
  nub_pvm_program_free(p);
  return rc;
}

void nub_pvm_program_free(nub_pvm_program *p) {
  if (!p) return;
  free(p->insns);
  free(p->jump_targets);
  free(p->window_first);
  free(p->blocks);
  free(p->block_start);
  free(p->loop_target);
  free(p->bytes);
  free(p->gas);
  pthread_mutex_destroy(&p->interp_lock);
  pthread_mutex_destroy(&p->gas_lock);
  free(p);
}

/* ---- the interpreter's form ---- */

/* The first instruction of pc's window plus the starts before pc in it is
** at most a few synthetic traps short of the answer (or one past it when
** no instruction starts at pc); the two loops settle it. */
uint32_t pvm_program_index_at(const nub_pvm_program *prog, uint32_t pc) {
  uint32_t code_len = prog->blob.code_len, last = prog->insn_count - 1;
  if (pc > code_len) pc = code_len;
  uint64_t w = pc >> PVM_WINDOW_SHIFT, below = (1ull << (pc & 63)) - 1;
  uint64_t i = prog->window_first[w] +
               (uint64_t)pvm_popcount64(pvm_mask_word(&prog->blob, w) & below);
  if (i > last) i = last;
  while (i > 0 && prog->insns[i].pc > pc) i--;
  while (i < last && prog->insns[i + 1].pc <= pc) i++;
  return (uint32_t)i;
}

static uint32_t exact_index(const nub_pvm_program *prog, uint64_t pc) {
  if (pc > prog->blob.code_len) return PVM_NO_TARGET;
  uint32_t i = pvm_program_index_at(prog, (uint32_t)pc);
  return prog->insns[i].pc == pc ? i : PVM_NO_TARGET;
}


static void synthetic_trap(pvm_xinsn *x, uint32_t pc) {
  memset(x, 0, sizeof *x);
  x->op = PVM_OP_TRAP;
  x->pc = pc;
  x->target = PVM_NO_TARGET;
}

/* Walk state: the next window whose first instruction is not yet known,
** and the next gas block to place. */
typedef struct walk_state {
  pvm_xinsn *insns;
  uint32_t *window_first;
  uint64_t next_window;
  uint32_t n;              /* instructions so far */
  uint32_t block;
  gas_state *gs;           /* placing as it decodes (pipeline blocks not all placed), or NULL */
  const pvm_gas_op *ops;   /* the profile's rows (with gs) */
  uint32_t noted;          /* gs->note's entries not yet placed */
} walk_state;

/* The instruction at pc (opcode row `row`, len bytes; a trap: row 0) noted
** for the placer, which runs when the notes fill (pre-decoding places
** every block in the same pass: a walk of its own was 40 host
** instructions an instruction, a third of a jamv1 interpreter's first
** use). */
static inline void predecode_note(const nub_pvm_program *p, walk_state *ws, uint32_t pc,
                                  uint32_t len, bool trap) {
  const uint8_t *code = p->blob.code;
  const pvm_gas_op *row = trap ? &ws->ops[0] : &ws->ops[code[pc]];
  if (PVM_UNLIKELY((row->flags & PVM_GOP_BRANCH) && (row->flags & PVM_GOP_BRANCH_CYCLES)))
    row += branch_rows(p, pc, len);
  ws->gs->note[ws->noted] = (struct gas_note){row, code + pc};
  if (PVM_UNLIKELY(++ws->noted == GAS_PENDING)) {
    gas_place(ws->gs, &p->blob, ws->ops, ws->noted);
    ws->noted = 0;
  }
}

static pvm_xinsn *append(walk_state *ws, uint32_t pc) {
  while (ws->next_window << PVM_WINDOW_SHIFT <= pc) ws->window_first[ws->next_window++] = ws->n;
  return &ws->insns[ws->n++];
}

/* The cost of the block x heads on x, 0 elsewhere (every block placed). */
static void place_gas(const nub_pvm_program *p, walk_state *ws, pvm_xinsn *x) {
  x->gas = 0;
  if (ws->block < p->block_count && p->blocks[ws->block].pc == x->pc)
    x->gas = pvm_block_cost_known(p, ws->block++);
}

/* The same afterwards, when pre-decoding placed the blocks. */
static void put_costs(const nub_pvm_program *p, pvm_xinsn *insns, uint32_t n) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    insns[i].gas = 0;
    if (k < p->block_count && p->blocks[k].pc == insns[i].pc) insns[i].gas = pvm_block_cost_known(p, k++);
  }
}

/* The walk of analyse() again, pre-decoding for the interpreter; static
** targets are noted as pcs and resolved once every index is known. */
static void predecode(const nub_pvm_program *p, walk_state *ws) {
  const nub_pvm_blob *b = &p->blob;
  const nub_pvm_opinfo *isa = nub_pvm_isa(p->profile);
  for (uint32_t pc = pvm_next_start(b, 0); pc < b->code_len;) {
    nub_pvm_insn in;
    pvm_decode(isa, b, pc, &in);
    pvm_xinsn *x = append(ws, pc);
    pvm_xinsn_fill(x, &in);
    x->target = PVM_NO_TARGET;
    if (ws->gs) predecode_note(p, ws, pc, in.len, false);
    else place_gas(p, ws, x);
    uint8_t flags = in.op != PVM_OP_INVALID ? isa[in.opcode].flags : 0;
    if ((flags & PVM_OPF_BRANCH) && in.target >= 0 && in.target < (int64_t)b->code_len)
      x->target = (uint32_t)in.target;     /* a pc until resolved */
    uint64_t next = (uint64_t)pc + in.len;
    /* only a skip cut at 24 can land where nothing starts */
    if (in.len == PVM_MAX_SKIP + 1 && next < b->code_len && !nub_pvm_blob_is_start(b, next)) {
      pvm_xinsn *t = append(ws, (uint32_t)next);
      synthetic_trap(t, (uint32_t)next);
      if (ws->gs) predecode_note(p, ws, (uint32_t)next, 1, true);
      else place_gas(p, ws, t);
      next = pvm_next_start(b, next);
    }
    pc = (uint32_t)next;
  }
  pvm_xinsn *end = append(ws, b->code_len);
  synthetic_trap(end, b->code_len);
  if (!ws->gs) place_gas(p, ws, end);
  if (ws->gs) {
    predecode_note(p, ws, b->code_len, 1, true);
    gas_place(ws->gs, b, ws->ops, ws->noted);
    NUB_ASSERT(!ws->gs->slow && ws->gs->block_done == p->block_count);
  }
  for (uint64_t w = ws->next_window; w < window_count(b->code_len); w++) ws->window_first[w] = ws->n;
}

/* An unrunnable program: a trap at pc 0 and the final one, both free. */
static void predecode_unrunnable(const nub_pvm_program *p, walk_state *ws) {
  uint32_t end = p->blob.code_len;
  synthetic_trap(&ws->insns[0], 0);
  ws->n = 1;
  if (end) synthetic_trap(&ws->insns[ws->n++], end);
  for (uint64_t w = 0; w < window_count(end); w++) ws->window_first[w] = w ? ws->n - 1 : 0;
}

/* Static targets (pcs after the walk) and jump table entries become
** instruction indices, or NO_TARGET when they are not in varpi. */
static void resolve_targets(nub_pvm_program *p) {
  const nub_pvm_blob *b = &p->blob;
  for (uint32_t i = 0; i < p->insn_count; i++) {
    pvm_xinsn *x = &p->insns[i];
    if (x->target == PVM_NO_TARGET) continue;
    x->target = nub_pvm_program_is_block_start(p, x->target) ? exact_index(p, x->target)
                                                         : PVM_NO_TARGET;
  }
  for (uint32_t j = 0; j < b->jump_count; j++) {
    uint32_t t = nub_pvm_blob_jump_entry(b, j);
    p->jump_targets[j] = nub_pvm_program_is_block_start(p, t) ? exact_index(p, t)
                                                          : PVM_NO_TARGET;
  }
}

static int build_interp(nub_pvm_program *p, nub_pvm_error *err) {
  const nub_pvm_blob *b = &p->blob;
  walk_state ws = {0};
  ws.insns = malloc((size_t)p->insn_count * sizeof *ws.insns);
  ws.window_first = malloc(window_count(b->code_len) * sizeof *ws.window_first);
  uint32_t *jt = malloc(((size_t)b->jump_count + 1) * sizeof *jt);
  if (!ws.insns || !ws.window_first || !jt) {
    free(ws.insns);
    free(ws.window_first);
    free(jt);
    return pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for %u pre-decoded instructions",
                    p->insn_count);
  }
  /* blocks not all placed: placed as the walk decodes them, under the
  ** lock (costs asked meanwhile wait, then find them placed) */
  pthread_mutex_lock(&p->gas_lock);
  if (p->costs_left && !p->unrunnable) {
    ws.gs = p->gas;
    ws.ops = pvm_gas_ops(p->profile);
    if (!p->gas_begun) place_begin(p, ws.gs), p->gas_begun = true;
    ws.gs->block_done = 0;
    ws.gs->first = 0;
  }
  if (p->unrunnable) predecode_unrunnable(p, &ws);
  else predecode(p, &ws);
  if (ws.gs) {
    p->costs_left = 0;
    free(p->gas);
    p->gas = NULL;
  }
  pthread_mutex_unlock(&p->gas_lock);
  NUB_ASSERT(ws.n == p->insn_count);
  if (ws.gs) put_costs(p, ws.insns, ws.n);
  p->insns = ws.insns;
  p->window_first = ws.window_first;
  p->jump_targets = jt;
  resolve_targets(p);
  return PVM_OK;
}

int pvm_program_prepare_interp(const nub_pvm_program *prog, nub_pvm_error *err) {
  /* the form is a cache of the immutable analysis: built once, under the
  ** program's lock, and published with release order */
  nub_pvm_program *p = (nub_pvm_program *)prog;
  if (__atomic_load_n(&p->interp_ready, __ATOMIC_ACQUIRE)) return PVM_OK;
  int rc = PVM_OK;
  pthread_mutex_lock(&p->interp_lock);
  if (!p->interp_ready && !(rc = build_interp(p, err)))
    __atomic_store_n(&p->interp_ready, true, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&p->interp_lock);
  return rc;
}

/* ---- sizes ---- */

static uint64_t interp_bytes(const nub_pvm_blob *b, uint64_t insns) {
  return insns * sizeof(pvm_xinsn) + ((uint64_t)b->jump_count + 1) * sizeof(uint32_t) +
         window_count(b->code_len) * sizeof(uint32_t);
}

size_t pvm_program_interp_bytes(const nub_pvm_program *p) {
  return (size_t)interp_bytes(&p->blob, p->insn_count);
}

/* Every instruction the walk produces covers a byte of its own (a
** synthetic trap follows an instruction of two or more bytes), so there
** are at most code_len + 1 of them, and as many gas blocks.  The bound
** includes the interpreter's form and the gas model's state (kept until
** every block is placed). */
uint64_t nub_pvm_program_load_bytes(const nub_pvm_blob *b, size_t len) {
  uint64_t insns = (uint64_t)b->code_len + 1;
  return sizeof(nub_pvm_program) + len + insns * sizeof(pvm_gas_block) +
         2 * (((uint64_t)b->code_len + 8) / 8) + interp_bytes(b, insns) + sizeof(gas_state);
}

size_t nub_pvm_program_bytes(const nub_pvm_program *p) {
  const nub_pvm_blob *b = &p->blob;
  size_t n = sizeof *p + p->len + ((size_t)p->block_count + 1) * sizeof *p->blocks +
             2 * (((size_t)b->code_len + 8) / 8);
  /* the placer's state, counted while it may be held (it goes once every
  ** block is placed, under the lock this does not take) */
  if (pvm_gas_rules_of(p->profile)->pipeline && p->block_count) n += sizeof(gas_state);
  if (__atomic_load_n(&p->interp_ready, __ATOMIC_ACQUIRE)) n += interp_bytes(b, p->insn_count);
  return n;
}

const nub_pvm_blob *nub_pvm_program_blob(const nub_pvm_program *p) { return &p->blob; }
nub_pvm_profile nub_pvm_program_profile(const nub_pvm_program *p) { return p->profile; }
uint32_t nub_pvm_program_block_count(const nub_pvm_program *p) { return p->block_count; }
uint32_t nub_pvm_program_insn_count(const nub_pvm_program *p) { return p->insn_count; }

/* ---- gas blocks ---- */

/* The last start before pc, or -1. */
static int64_t prev_start(const nub_pvm_blob *b, uint32_t pc) {
  for (int64_t w = (int64_t)(pc >> 6); w >= 0; w--) {
    uint64_t bits = pvm_mask_word(b, (uint64_t)w);
    if ((uint64_t)w == pc >> 6) bits &= (1ull << (pc & 63)) - 1;
    if (bits) return w * 64 + 63 - __builtin_clzll(bits);
  }
  return -1;
}

/* Index of the block holding pc: the last head at or before it (block 0
** for a pc before the first instruction). */
static uint32_t block_at(const nub_pvm_program *p, uint32_t pc) {
  uint32_t lo = 0, hi = p->block_count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (p->blocks[mid].pc <= pc) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* The instruction before the final trap is a terminator that may continue
** at the next pc (fallthrough or a conditional branch): the implicit trap
** at the end of the code after it is then a block of its own, as in the
** draft's vectors. */
static bool falls_through_to_end(const nub_pvm_program *p) {
  const nub_pvm_blob *b = &p->blob;
  int64_t pc = prev_start(b, b->code_len);
  if (pc < 0 || (uint64_t)pc + 1 + nub_pvm_skip(b, (uint32_t)pc) != b->code_len) return false;
  const nub_pvm_opinfo *info = &nub_pvm_isa(p->profile)[b->code[pc]];
  if (!info->name || !(info->flags & PVM_OPF_TERM)) return false;
  return info->op == PVM_OP_FALLTHROUGH ||
         ((info->flags & PVM_OPF_BRANCH) && info->op != PVM_OP_JUMP &&
          info->op != PVM_OP_LOAD_IMM_JUMP);
}

bool nub_pvm_program_next_block(const nub_pvm_program *p, uint32_t *cursor, uint32_t *pc,
                            uint32_t *cost, bool *basic) {
  if (*cursor >= p->block_count) {
    *cursor = p->block_count;
    return false;
  }
  const pvm_gas_block *k = &p->blocks[*cursor];
  *pc = k->pc;
  *cost = pvm_block_cost(p, (*cursor)++);
  *basic = nub_pvm_program_is_block_start(p, k->pc) ||
           (k->pc == p->blob.code_len && k->pc > 0 && falls_through_to_end(p));
  return true;
}

/* Gas charged when a run starts at pc (GP 0.8.0 A.4: the cost of the
** block holding pc, L(pc)).  gp07 charges the instructions left in the
** block; a pc at no instruction runs as a trap.  Under jamv1 a pc that is
** not a valid instruction panics before any charge (deblob's v_loc). */
/* Kept out of line: the memo's hit path then needs no register saves. */
__attribute__((noinline)) static int64_t entry_cost(const nub_pvm_program *p, uint32_t pc) {
  const pvm_gas_rules *rules = pvm_gas_rules_of(p->profile);
  const nub_pvm_blob *b = &p->blob;
  if (p->unrunnable) return 0;
  if (rules->first_run_check &&
      (!nub_pvm_blob_is_start(b, pc) || !nub_pvm_isa(p->profile)[b->code[pc]].name))
    return 0;
  /* a synthetic trap or the final one is the last instruction of its
  ** block (gp07: 1 left), as much as a pc at no instruction (a trap, 1):
  ** only bitmask starts need telling apart */
  bool start = nub_pvm_blob_is_start(b, pc);
  if (!start && !rules->pipeline) return nub_pvm_isa(p->profile)[0].gas;   /* runs as a trap */
  uint32_t ki = block_at(p, pc > b->code_len ? b->code_len : pc);
  const pvm_gas_block *k = &p->blocks[ki];
  if (k->pc == pc || rules->pipeline) return pvm_block_cost(p, ki);
  /* gp07 mid-block (every instruction before pc in it is a start): one
  ** per instruction left */
  uint64_t before = 0;
  for (uint64_t w = k->pc >> 6; w <= pc >> 6; w++) {
    uint64_t bits = pvm_mask_word(b, w);
    if (w == k->pc >> 6) bits &= ~((1ull << (k->pc & 63)) - 1);
    if (w == pc >> 6) bits &= (1ull << (pc & 63)) - 1;
    before += (uint64_t)pvm_popcount64(bits);
  }
  return (int64_t)k->cost - (int64_t)before;
}

int64_t nub_pvm_program_entry_cost(const nub_pvm_program *p, uint32_t pc) {
  uint64_t *memo = (uint64_t *)&p->entry_memo;   /* a cache, not the program's state */
  uint64_t m = __atomic_load_n(memo, __ATOMIC_RELAXED);
  if (m && m >> 32 == pc) return (int64_t)(uint32_t)m - 1;
  int64_t cost = entry_cost(p, pc);
  if (cost >= 0 && cost < UINT32_MAX)
    __atomic_store_n(memo, (uint64_t)pc << 32 | (uint64_t)(cost + 1), __ATOMIC_RELAXED);
  return cost;
}
