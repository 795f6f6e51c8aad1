/*
** The gas cost model of GP 0.8.0 A.9 (docs/gas.md): a small out-of-order
** CPU (4 decode slots and 5 starts per cycle, a 32-entry reorder buffer,
** execution units A/L/S/M/D = 4/4/4/1/1) run over one basic block.
** It is fed the instructions of a block in batches; pvm_gas_sim_end
** returns the cost.
**
** Times, not steps.  Entry i (the i-th instruction other than move_reg)
** decodes in cycle D_i, is WAIT from D_i + 1, starts in S_i, reaches 0
** cycles left in done_i = S_i + c_i (holding its units in [S_i, done_i)),
** is FIN from done_i + 1 and retires in the tick of the first cycle in
** which it and every older entry are FIN: P_i + 1, P_i = max done_0..i.
** So the block ends (nothing live, nothing to decode) in cycle
** P_last + 2; decoding is the in-order packing of decode slots, except
** that entry i >= 32 (and a move after it) waits for a free buffer entry
** until P_{i-32} + 2; and a dependency is met from the producer's done on.
** Each register is in the clobbered set of at most one entry, its
** `holder`, so an entry's dependencies are its sources' holders.
**
** Schedule (almost every block).  Place each entry as it is fed, oldest
** first: in the first cycle from max(D_i + 1, done of its dependencies) in
** which the units the older entries leave fit and fewer than 5 of them
** start.  If the result never uses more units in a cycle than there are,
** it is the cycle-by-cycle result (start the oldest ready entry that
** fits, at most 5 a cycle): by induction over cycles, an entry placed in
** cycle t is ready there and fits next to everything running, and one
** placed later did not fit next to the older entries alone, let alone
** next to all.  Cycles are counted in `use`, a byte per cycle; a younger
** entry that runs over the start of an older one and leaves it short is
** the one case the order of placing gets wrong ("exact" below).  L and S
** units always come with an A unit, so A, M and D are the only ones that
** can run short (a test checks the rows).
**
** Exact (about 1 block in 100 of real programs, and blocks whose waits
** reach past the cells).  The starts before the conflicting entry's
** decode cycle T are right, since later entries cannot change the past;
** entries placed at T or later go back to WAIT and the starts from T on
** are simulated: a start phase in each cycle in which something can
** change (a dependency or units come free, an entry becomes WAIT, the 5
** starts ran out), skipping the others.  After a reorder buffer's worth
** of entries it goes back to placing (resume_schedule).
**
** Program analysis runs the fast placer (pvm_gas_fast_entry, at the end
** of this file) inside its walk: the same placing with the units as bit
** planes over cycles; the blocks it gives up on come here.
**
** Ring slots: live entries are at most the last 32; a slot is reused 64
** entries later, after every entry that could name its previous occupant
** in `deps` has retired.  A holder 32 or more entries back has retired
** before the current decode, so it is never a dependency.
*/
#include "pvm_internal.h"
#include "../util/nub_assert.h"

#define DECODE_PER_CYCLE 4
#define START_PER_CYCLE  5
#define SLOT(i)          ((i) & (PVM_GAS_SLOTS - 1))
#define BIT(j)           (1ull << (j))
#define CELL(t)          ((t) & (PVM_GAS_CELLS - 1))
/* Units in use as a byte (pvm_gas_use_of): adding USE_BIAS sets a bit of
** USE_OVER when a unit kind runs short (A > 4, M > 1, D > 1), never
** carrying out of the byte while at most a full set plus one entry's
** units are added up. */
#define USE_BIAS         0x03u
#define USE_OVER         0xA8u
#define BYTES(b)         (0x0101010101010101ull * (b))
/* holder of no entry: 64 or more entries back, whatever the entry */
#define NONE             ((uint32_t)-64)
#define MAX_EXACT_WAIT   (1u << 20)

static uint32_t max32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint64_t rotr(uint64_t x, unsigned b) { return (x >> (b & 63)) | (x << (-b & 63)); }
static bool use_short(uint32_t use) { return ((use + USE_BIAS) & USE_OVER) != 0; }

/* Zero the cells [a, b) rounded out to 8: only when every cell is to be
** zero (the others are zero already; both arrays have 8 bytes of slack). */
static void zero_cells(pvm_gas_sim *s, unsigned a, unsigned b) {
  for (unsigned p = a & ~7u; p < b; p += 8) {
    memset(s->use + p, 0, 8);
    memset(s->starts + p, 0, 8);
  }
}

/* Zero the cells of the cycles [from, to) (all of them if that is 512 or
** more); exact unless `all`, when every cell ends up zero and the range
** may round out. */
static __attribute__((noinline)) void clear_cells(pvm_gas_sim *s, uint32_t from, uint32_t to,
                                                  bool all) {
  if (to - from >= PVM_GAS_CELLS) {
    memset(s->use, 0, sizeof s->use);
    memset(s->starts, 0, sizeof s->starts);
    return;
  }
  unsigned a = CELL(from), b = CELL(to);
  if (a > b || (a == b && from != to)) {
    if (all) zero_cells(s, a, PVM_GAS_CELLS);
    else memset(s->use + a, 0, PVM_GAS_CELLS - a), memset(s->starts + a, 0, PVM_GAS_CELLS - a);
    a = 0;
  }
  if (all) {
    zero_cells(s, a, b);
  } else {
    memset(s->use + a, 0, b - a);
    memset(s->starts + a, 0, b - a);
  }
}

/* Blocks run one after the other on one time line: a block's cycle 0,
** its origin, is the first cycle in which everything of the last one is
** done, from which on every cell is zero.  So nothing is cleared per
** block; moving the cells' window on (feed_schedule) clears what the
** blocks before used, a few hundred cycles at a time.  The time line
** starts over (cells cleared) past PVM_GAS_REBASE, which leaves a block
** 2^32 - 2^30 cycles, more than 64 MiB of code can take. */
static inline __attribute__((always_inline)) void begin(pvm_gas_sim *s) {
  uint32_t origin = max32(s->dirty, s->last_done);
  if (origin > PVM_GAS_REBASE) {
    memset(s->use, 0, sizeof s->use);
    memset(s->starts, 0, sizeof s->starts);
    memset(s->holder_done, 0, sizeof s->holder_done);
    s->base = s->dirty = origin = 0;
  }
  s->origin = origin;
  s->n = 0;
  s->cycle = origin;
  s->decode_left = DECODE_PER_CYCLE;
  s->exact = false;
  s->resumed = false;
  s->exact_wait = PVM_GAS_ROB;
  s->started = 0;
  s->last_done = origin;
  /* holder_done keeps the last block's: all before origin + 1, so met
  ** (unless the time line started over) */
  for (int r = 0; r < 16; r++) s->holder[r] = NONE;
}

void pvm_gas_sim_begin(pvm_gas_sim *s) { begin(s); }

/* Slots of the live entries entry i depends on: the holders of its
** sources at its decode, unless 32 or more entries back. */
static uint64_t deps_of(const pvm_gas_sim *s, uint32_t i) {
  uint32_t h0 = s->src_holder[SLOT(i)][0], h1 = s->src_holder[SLOT(i)][1];
  bool live0 = i - h0 < PVM_GAS_ROB, live1 = i - h1 < PVM_GAS_ROB;
  return (BIT(SLOT(h0)) & -(uint64_t)live0) | (BIT(SLOT(h1)) & -(uint64_t)live1);
}

/* ---- exact: start phases ---- */

/* The first cycle slot j may start once its dependencies have started:
** WAIT, and each of them done. */
static uint32_t met_at(const pvm_gas_sim *s, unsigned j) {
  uint32_t t = s->ready[j];
  for (uint64_t d = s->deps[j]; d; d &= d - 1) t = max32(t, s->done[__builtin_ctzll(d)]);
  return t;
}

/* Slot j (its deps and ready set, every older entry waiting or not as it
** will be) is WAIT: blocked, and listed with each dependency that waits,
** or from `at` on free to start.  The start phases then visit only the
** entries not blocked: in doom's simulated blocks 86 % of the visits were
** to entries whose dependency had not started. */
static void enter_waiting(pvm_gas_sim *s, unsigned j) {
  uint64_t b = s->deps[j] & s->waiting;
  s->dependents[j] = 0;
  s->waiting |= BIT(j);
  if (!b) {
    s->at[j] = met_at(s, j);
    return;
  }
  s->blocked |= BIT(j);
  for (; b; b &= b - 1) s->dependents[__builtin_ctzll(b)] |= BIT(j);
}

/* The start phase of cycle t (A.9's S and Xi'' until nothing more can
** start); returns the next cycle in which one can start something. */
static uint32_t start_phase(pvm_gas_sim *s, uint32_t t) {
  uint32_t busy = 0;                  /* units of the running entries */
  uint32_t next = UINT32_MAX;
  for (uint64_t r = s->running; r; r &= r - 1) {
    int k = __builtin_ctzll(r);
    if (s->done[k] <= t) {
      s->running &= ~BIT(k);
    } else {
      busy += s->units[k];
      next = min32(next, s->done[k]);
    }
  }
  unsigned budget = START_PER_CYCLE;
  unsigned oldest = SLOT(s->n);      /* slot of entry n - 64: age order from there */
  /* a blocked entry starts after its dependencies, which are older */
  for (uint64_t w = rotr(s->waiting & ~s->blocked, oldest); w; w &= w - 1) {
    int j = SLOT(__builtin_ctzll(w) + oldest);
    if (s->at[j] > t) { next = min32(next, s->at[j]); continue; }
    if (use_short(busy + s->units[j])) continue;   /* until a running entry frees them */
    busy += s->units[j];
    s->start[j] = t;
    s->done[j] = t + s->cycles[j];
    s->waiting &= ~BIT(j);
    s->running |= BIT(j);
    next = min32(next, s->done[j]);
    /* those it held up: free from their dependencies' done on, later
    ** than this phase (done > t), so not visited in it */
    for (uint64_t d = s->dependents[j]; d; d &= d - 1) {
      int k = __builtin_ctzll(d);
      if (s->deps[k] & s->waiting) continue;
      s->blocked &= ~BIT(k);
      s->at[k] = met_at(s, k);
    }
    if (--budget == 0) { next = t + 1; break; }
  }
  for (; s->started < s->n && !(s->waiting & BIT(SLOT(s->started))); s->started++) {
    int k = SLOT(s->started);
    s->last_done = max32(s->last_done, s->done[k]);
    s->prefix_done[k] = s->last_done;
  }
  NUB_ASSERT(next > t);
  return next;
}

/* Decide the starts of every cycle before t. */
static void run_until(pvm_gas_sim *s, uint32_t t) {
  while (s->sched < t) s->sched = min32(start_phase(s, s->sched), t);
}

/* Back to simulating from the current decode cycle T: entries that
** would start at T or later wait again. */
static void go_exact(pvm_gas_sim *s) {
  uint32_t first = s->n > PVM_GAS_ROB ? s->n - PVM_GAS_ROB : 0, t = s->cycle;
  s->exact = true;
  s->exact_count++;
  s->exact_since = s->n;
  /* placing again did not last a reorder buffer: wait twice as long
  ** before the next try (a block that conflicts throughout pays for
  ** a logarithmic number of tries) */
  if (s->resumed && s->n - s->resumed_at < PVM_GAS_ROB)
    s->exact_wait = min32(2 * s->exact_wait, MAX_EXACT_WAIT);
  s->sched = t;
  s->waiting = s->running = s->blocked = 0;
  s->started = s->n;
  for (uint32_t i = first; i < s->n; i++) {   /* oldest first: dependencies first */
    int k = SLOT(i);
    if (s->start[k] >= t) {
      s->deps[k] = deps_of(s, i);
      enter_waiting(s, (unsigned)k);
      if (s->started == s->n) s->started = i;
    } else if (s->done[k] > t) {
      s->running |= BIT(k);
    }
  }
  s->last_done = s->started ? s->prefix_done[SLOT(s->started - 1)] : s->origin;
}

/* One instruction once exact: decoding waits for the start phases of
** the cycles it skips. */
static void feed_exact(pvm_gas_sim *s, pvm_gas_insn x) {
  unsigned slots = PVM_GI(x, SLOTS), src0 = PVM_GI(x, SRC0), dst = PVM_GI(x, DST);
  if (slots > s->decode_left) {            /* the next cycle */
    run_until(s, s->cycle + 1);
    s->cycle++;
    s->decode_left = DECODE_PER_CYCLE;
  }
  if (s->n >= PVM_GAS_ROB) {               /* wait until entry n - 32 retires */
    uint32_t old = s->n - PVM_GAS_ROB;
    while (s->started <= old) s->sched = start_phase(s, s->sched);
    uint32_t t = s->prefix_done[SLOT(old)] + 2;
    if (t > s->cycle) {
      run_until(s, t);
      s->cycle = t;
      s->decode_left = DECODE_PER_CYCLE;
    }
  }
  s->decode_left -= slots;
  if (PVM_GI(x, MOVE)) {
    s->holder[dst] = s->holder[src0];
    return;
  }
  uint32_t i = s->n;
  int j = SLOT(i);
  s->src_holder[j][0] = s->holder[src0];
  s->src_holder[j][1] = s->holder[PVM_GI(x, SRC1)];
  s->holder[dst] = i;
  s->ready[j] = s->cycle + 1;
  s->cycles[j] = (uint8_t)PVM_GI(x, CYCLES);
  s->units[j] = (uint8_t)PVM_GI(x, USE);
  s->deps[j] = deps_of(s, i);
  enter_waiting(s, (unsigned)j);
  s->n = i + 1;
}

/* ---- schedule: units in use per cycle ---- */

/* Add units (a use byte) to the cells [p, q), p < q; any cycle now
** short?  Whole words of 8 cycles, then the rest under a mask (the
** cells have 8 bytes of slack). */
static inline bool add_use(uint8_t *use, unsigned p, unsigned q, uint8_t units) {
  NUB_ASSERT(p < q);
  uint64_t each = BYTES(units), over = 0, v;
  for (; q - p > 8; p += 8) {
    memcpy(&v, use + p, 8);
    v += each;
    memcpy(use + p, &v, 8);
    over |= v + BYTES(USE_BIAS);
  }
  uint64_t mask = ~0ull >> (64 - 8 * (q - p));
  memcpy(&v, use + p, 8);
  v += each & mask;
  memcpy(use + p, &v, 8);
  over |= (v + BYTES(USE_BIAS)) & mask;
  return (over & BYTES(USE_OVER)) != 0;
}

/* The first cycle from t, before end, in which units fit next to those in
** use and fewer than 5 entries start (end if none): 8 cycles at a time.
** Out of line: the schedule loop tests the first cycle itself. */
static __attribute__((noinline)) uint32_t first_fit(const pvm_gas_sim *s, uint32_t t, uint32_t end,
                                                    uint8_t units) {
  while (t < end) {
    unsigned p = CELL(t), n = PVM_GAS_CELLS - p < 8 ? PVM_GAS_CELLS - p : 8;
    uint64_t use, starts;
    memcpy(&use, s->use + p, 8);          /* both have 8 bytes of slack */
    memcpy(&starts, s->starts + p, 8);
    /* per byte: bit 3, 5 or 7 when a unit kind runs short; bit 3 when 5 start */
    uint64_t bad = ((use + BYTES(units + USE_BIAS)) & BYTES(USE_OVER)) |
                   ((starts + BYTES(8 - START_PER_CYCLE)) & BYTES(8));
    uint64_t good = ~(bad | bad << 2 | bad << 4) & BYTES(0x80);
    if (n < 8) good &= (1ull << 8 * n) - 1;
    if (good) return t + (uint32_t)__builtin_ctzll(good) / 8;
    t += n;
  }
  return end;
}

/* Count an entry's units in the cells of [t, t + cycles) and its start
** at t; false if some cycle now runs short.  Most entries run at most 8
** cycles without wrapping: one word under a mask. */
static inline __attribute__((always_inline)) bool take_cells(pvm_gas_sim *s, uint32_t t, unsigned cycles, uint8_t use) {
  unsigned a = CELL(t);
  s->starts[a]++;
  if (!use) return true;
  if (cycles <= 8 && a + cycles <= PVM_GAS_CELLS) {
    uint64_t mask = ~0ull >> (64 - 8 * cycles), v;
    memcpy(&v, s->use + a, 8);            /* 8 bytes of slack past the cells */
    v += BYTES(use) & mask;
    memcpy(s->use + a, &v, 8);
    return ((v + BYTES(USE_BIAS)) & mask & BYTES(USE_OVER)) == 0;
  }
  unsigned b = CELL(t + cycles);
  if (a < b) return !add_use(s->use, a, b, use);
  /* wrapped: both halves are counted */
  bool over_tail = add_use(s->use, a, PVM_GAS_CELLS, use);
  bool over_head = b > 0 && add_use(s->use, 0, b, use);
  return !over_tail && !over_head;
}

/* The schedule ran short at entry i (slot j, already decoded): simulate
** from the current decode cycle on. */
static __attribute__((noinline)) void conflict(pvm_gas_sim *s, uint32_t i) {
  unsigned j = SLOT(i);
  s->n = i;
  go_exact(s);
  s->deps[j] = deps_of(s, i);
  enter_waiting(s, j);
  s->n = i + 1;
}

/* Schedule instructions while placing works; returns how many were
** consumed (the last one may have turned the block exact).  The state
** the loop changes is kept in locals and the rare paths are out of line,
** so they stay in registers: the cells are bytes, and a store through
** them would make the compiler reload every field. */
static inline __attribute__((always_inline)) uint32_t feed_schedule(pvm_gas_sim *s,
    const pvm_gas_insn *in, uint32_t count) {
  uint32_t n = s->n, cycle = s->cycle, left = s->decode_left, last_done = s->last_done;
  uint32_t base = s->base;
  for (uint32_t k = 0; k < count; k++) {
    pvm_gas_insn x = in[k];
    unsigned slots = PVM_GI(x, SLOTS), cycles = PVM_GI(x, CYCLES);
    unsigned src0 = PVM_GI(x, SRC0), src1 = PVM_GI(x, SRC1), dst = PVM_GI(x, DST);
    uint8_t use = (uint8_t)PVM_GI(x, USE);
    NUB_ASSERT(slots >= 1 && slots <= DECODE_PER_CYCLE && (PVM_GI(x, MOVE) || cycles > 0));
    if (slots > left) {                   /* the next cycle */
      cycle++;
      left = DECODE_PER_CYCLE;
    }
    if (n >= PVM_GAS_ROB) {               /* wait until entry n - 32 retires */
      uint32_t t = s->prefix_done[SLOT(n - PVM_GAS_ROB)] + 2;
      if (t > cycle) {
        cycle = t;
        left = DECODE_PER_CYCLE;
      }
    }
    left -= slots;
    if (PVM_GI(x, MOVE)) {
      /* Xi^mov: the source's holder gains the destination, every other
      ** entry loses it (one source register, so one holder at most) */
      s->holder[dst] = s->holder[src0];
      s->holder_done[dst] = s->holder_done[src0];
      continue;
    }
    /* Xi^dec.  A holder 32 or more entries back has retired before this
    ** decode (its done is below cycle + 1), so its done can be taken
    ** as is: no liveness test. */
    uint32_t i = n;
    unsigned j = SLOT(i);
    uint32_t ready = max32(cycle + 1, max32(s->holder_done[src0], s->holder_done[src1]));
    s->src_holder[j][0] = s->holder[src0];
    s->src_holder[j][1] = s->holder[src1];
    s->holder[dst] = i;
    s->ready[j] = cycle + 1;
    s->cycles[j] = (uint8_t)cycles;
    s->units[j] = use;
    n = i + 1;
    /* place it: the first cycle from ready in which its units fit next
    ** to the older entries' and fewer than 5 of them start */
    if (PVM_UNLIKELY(ready + cycles + 64 > base + PVM_GAS_CELLS) && cycle + 1 != base) {
      clear_cells(s, base, cycle + 1, false);   /* no later entry starts before cycle + 1 */
      base = cycle + 1;
    }
    uint32_t end = base + PVM_GAS_CELLS, t = ready;
    if (s->starts[CELL(t)] >= START_PER_CYCLE || use_short(s->use[CELL(t)] + use))
      t = first_fit(s, t, end, use);
    uint32_t done = t + cycles;
    bool fits = done <= end && take_cells(s, t, cycles, use);
    if (PVM_UNLIKELY(!fits)) {            /* a cycle runs short: simulate from here */
      s->cycle = cycle;
      s->decode_left = left;
      s->last_done = last_done;
      s->base = base;
      /* the cells hold units up to done at most (up to end when it did not fit) */
      s->dirty = max32(s->dirty, max32(last_done, min32(done, end)));
      conflict(s, i);
      return k + 1;
    }
    s->holder_done[dst] = done;
    s->start[j] = t;
    s->done[j] = done;
    last_done = max32(last_done, done);
    s->prefix_done[j] = last_done;
  }
  s->n = s->started = n;
  s->cycle = cycle;
  s->decode_left = left;
  s->last_done = last_done;
  s->base = base;
  s->dirty = max32(s->dirty, last_done);   /* every placed entry is done by last_done */
  return count;
}

/* Back from simulating to placing, a reorder buffer's worth of entries
** after the conflict (twice as many each time placing did not last as
** long).  The start phases run on until every entry
** decoded so far has started: with no younger entry in the way, that is
** where placing them oldest first puts them too.  The cells are rebuilt
** from those starts for the cycles from the next decode on, and later
** entries are placed around them; if one runs a cycle short, go_exact
** takes back every start from its decode cycle on, as before. */
static bool resume_schedule(pvm_gas_sim *s) {
  if (s->n - s->exact_since < s->exact_wait) return false;
  while (s->waiting) s->sched = start_phase(s, s->sched);
  uint32_t base = s->cycle + 1, end = base + PVM_GAS_CELLS, dirty = base;
  uint32_t first = s->n > PVM_GAS_ROB ? s->n - PVM_GAS_ROB : 0;
  for (uint32_t i = first; i < s->n; i++) dirty = max32(dirty, s->done[SLOT(i)]);
  if (dirty > end) {
    /* the cells cannot hold them all: take those starts back, simulate on */
    go_exact(s);
    s->exact_wait = min32(2 * s->exact_wait, MAX_EXACT_WAIT);
    return false;
  }
  if (s->dirty > s->base) clear_cells(s, s->base, s->dirty, true);
  for (uint32_t i = first; i < s->n; i++) {
    int k = SLOT(i);
    uint32_t from = max32(s->start[k], base), to = s->done[k];
    if (s->start[k] >= base) s->starts[CELL(s->start[k])]++;
    if (from >= to) continue;
    if (!s->units[k]) continue;
    unsigned a = CELL(from), b = CELL(to);
    if (a < b) {
      add_use(s->use, a, b, s->units[k]);
    } else {
      add_use(s->use, a, PVM_GAS_CELLS, s->units[k]);
      if (b) add_use(s->use, 0, b, s->units[k]);
    }
  }
  /* a holder's done: the slot still holds it when fewer than 64 back */
  for (int reg = 0; reg < 16; reg++)
    s->holder_done[reg] = s->n - s->holder[reg] < PVM_GAS_SLOTS ? s->done[SLOT(s->holder[reg])] : 0;
  s->base = base;
  s->dirty = dirty;
  s->exact = false;
  s->resumed = true;
  s->resume_count++;
  s->resumed_at = s->n;
  s->running = 0;
  NUB_ASSERT(s->started == s->n);
  return true;
}

/* The instructions from k on once placing has stopped at k (out of line:
** feed_schedule is inlined in both callers). */
static __attribute__((noinline)) void feed_rest(pvm_gas_sim *s, const pvm_gas_insn *in,
                                                uint32_t k, uint32_t count) {
  for (; k < count; k++) {
    if (resume_schedule(s)) {
      k += feed_schedule(s, in + k, count - k) - 1;
      continue;
    }
    NUB_ASSERT(PVM_GI(in[k], SLOTS) >= 1 && PVM_GI(in[k], SLOTS) <= DECODE_PER_CYCLE &&
               (PVM_GI(in[k], MOVE) || PVM_GI(in[k], CYCLES) > 0));
    feed_exact(s, in[k]);
  }
}

void pvm_gas_sim_feed(pvm_gas_sim *s, const pvm_gas_insn *in, uint32_t count) {
  uint32_t k = s->exact ? 0 : feed_schedule(s, in, count);
  if (k < count) feed_rest(s, in, k, count);
}

uint32_t pvm_gas_sim_end(pvm_gas_sim *s) {
  if (s->exact)
    while (s->waiting) s->sched = start_phase(s, s->sched);
  uint32_t cycles = s->last_done + 2 - s->origin;
  return cycles > 4 ? cycles - 3 : 1;
}

uint32_t pvm_gas_sim_block(pvm_gas_sim *s, const pvm_gas_insn *in, uint32_t count) {
  uint32_t k = s->exact ? 0 : feed_schedule(s, in, count);
  if (k < count) feed_rest(s, in, k, count);
  uint32_t cost = pvm_gas_sim_end(s);
  begin(s);
  return cost;
}

/* ---- the fast placer (pvm_gas_fast_entry) ---- */

void pvm_gas_fast_init(pvm_gas_fast *f) {
  memset(f, 0, sizeof *f);
  memset(f->cell + PVM_GAS_C_ONES * PVM_GAS_PLANE, 0xff, PVM_GAS_PLANE);
  memset(f->cell + (PVM_GAS_C_ONES + 1) * PVM_GAS_PLANE, 0xff, PVM_GAS_PLANE);
}

static uint8_t *plane(pvm_gas_fast *f, unsigned i) { return f->cell + i * PVM_GAS_PLANE; }

static const int cell_planes[] = {PVM_GAS_C_A1, PVM_GAS_C_A1 + 1, PVM_GAS_C_A1 + 2, PVM_GAS_C_A4,
                                  PVM_GAS_C_M, PVM_GAS_C_D};

/* Make `to` (a multiple of 8, at least base) the first cycle the cells
** hold: the cells from there on move down, the rest are zero. */
static void slide(pvm_gas_fast *f, uint32_t to) {
  uint32_t by = to - f->base > PVM_GAS_SPAN ? PVM_GAS_SPAN : to - f->base, keep = PVM_GAS_SPAN - by;
  for (size_t p = 0; p < sizeof cell_planes / sizeof cell_planes[0]; p++) {
    uint8_t *c = plane(f, cell_planes[p]);
    memmove(c, c + by / 8, keep / 8);
    memset(c + keep / 8, 0, by / 8);
  }
  memmove(f->starts, f->starts + by, keep);
  memset(f->starts + keep, 0, by);
  f->base = to;
}

/* Between blocks every cell from the origin on is zero, and the cells
** before it are never read again: zero the ones used and start the
** cells at the origin (or the time line over, past PVM_GAS_REBASE). */
uint32_t pvm_gas_fast_move(pvm_gas_fast *f, uint32_t origin) {
  uint32_t used = origin - f->base + 1;
  if (used > PVM_GAS_SPAN) used = PVM_GAS_SPAN;
  for (size_t p = 0; p < sizeof cell_planes / sizeof cell_planes[0]; p++)
    memset(plane(f, cell_planes[p]), 0, (used + 7) / 8);
  memset(f->starts, 0, used);
  if (origin > PVM_GAS_REBASE) {
    f->rebase_count++;
    origin = 0;
  }
  f->base = origin & ~7u;
  return origin;
}

static uint64_t span_mask(uint32_t off, unsigned n) { return (~0ull >> (64 - n)) << (off % 8); }

/* An entry's planes, as the row gives them (pvm_gas_place: offsets from
** the placer's state), for the search: what it cannot take (A_(5-j)),
** the M or D plane it tests, A_(4-j) for the marks, and the one it marks. */
typedef struct search_planes {
  const uint8_t *avoid, *test;
  const uint8_t *from;
  uint8_t *mark;
} search_planes;

/* Are the entry's units free in the cells of [t, t + cycles)?  A word
** (57 cycles) at a time. */
static bool cells_free(const search_planes *pl, uint32_t off, unsigned cycles) {
  for (uint32_t end = off + cycles; off < end;) {
    unsigned n = end - off < PVM_GAS_SHORT ? end - off : PVM_GAS_SHORT;
    if ((pvm_gas_word(pl->avoid + off / 8) | pvm_gas_word(pl->test + off / 8)) & span_mask(off, n))
      return false;
    off += n;
  }
  return true;
}

/* Take them: A_k |= A_(k-j) for k = 4..1 over the cycles, unrolled
** (a loop over the planes cost 8 host instructions more a search). */
static void mark_bits(pvm_gas_fast *f, const search_planes *pl, uint32_t off, unsigned cycles) {
  uint8_t *a4 = (uint8_t *)f + PVM_GAS_CELLS_AT + PVM_GAS_C_A4 * PVM_GAS_PLANE;
  f->starts[off]++;
  for (uint32_t end = off + cycles; off < end;) {
    unsigned n = end - off < PVM_GAS_SHORT ? end - off : PVM_GAS_SHORT, at = off / 8;
    uint64_t m = span_mask(off, n);
    pvm_gas_or(a4 + at, pvm_gas_word(pl->from + at) & m);
    pvm_gas_or(a4 - PVM_GAS_PLANE + at, pvm_gas_word(pl->from - PVM_GAS_PLANE + at) & m);
    pvm_gas_or(a4 - 2 * PVM_GAS_PLANE + at, pvm_gas_word(pl->from - 2 * PVM_GAS_PLANE + at) & m);
    pvm_gas_or(a4 - 3 * PVM_GAS_PLANE + at, pvm_gas_word(pl->from - 3 * PVM_GAS_PLANE + at) & m);
    pvm_gas_or(pl->mark + at, m);
    off += n;
  }
}

static uint32_t give_up(pvm_gas_fast *f) {
  f->slow_count++;
  return 0;
}

/* The first cycle from t in which the entry's units are free and fewer
** than 5 entries start: where placing puts it.  If its units are taken
** in a later cycle it runs, a younger entry started before an older one
** and left it short (A.9 would have delayed the older one): give up.
** Give up too when the cells cannot hold its cycles even moved on to
** the decode cycle (nothing starts before it). */
uint32_t pvm_gas_fast_search(pvm_gas_fast *f, uint32_t t, unsigned cycles, unsigned from_cells,
                             unsigned test_cells, unsigned mark_cells, uint32_t cycle) {
  uint8_t *state = (uint8_t *)f;
  search_planes pl = {state + from_cells + PVM_GAS_PLANE, state + test_cells, state + from_cells,
                      state + mark_cells};
  uint32_t lowest = (cycle + 1) & ~7u;      /* the cells may move on to here */
  f->search_count++;
  for (;;) {
    if (t + cycles > f->base + PVM_GAS_SPAN) {
      if (lowest <= f->base) return give_up(f);
      slide(f, lowest);
      f->slide_count++;
      if (t + cycles > f->base + PVM_GAS_SPAN) return give_up(f);
    }
    uint32_t off = t - f->base;
    uint64_t free = ~(pvm_gas_word(pl.avoid + off / 8) | pvm_gas_word(pl.test + off / 8)) >>
                    (off % 8);
    free &= ~0ull >> 8;                    /* the 56 cycles from t */
    if (!free) {
      t += 56;
      continue;
    }
    t += (uint32_t)__builtin_ctzll(free);
    off = t - f->base;
    if (t + cycles > f->base + PVM_GAS_SPAN) continue;
    if (f->starts[off] >= START_PER_CYCLE) {
      t++;
      continue;
    }
    if (!cells_free(&pl, off, cycles)) return give_up(f);
    mark_bits(f, &pl, off, cycles);
    return t;
  }
}
