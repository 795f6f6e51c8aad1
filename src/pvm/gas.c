/*
** The gas cost model of GP 0.8.0 A.9 (docs/gas.md): a small out-of-order
** CPU (4 decode slots and 5 starts per cycle, a 32-entry reorder buffer,
** execution units A/L/S/M/D = 4/4/4/1/1) run over one basic block.
** Program analysis feeds it each instruction as it decodes them;
** pvm_gas_sim_end returns the cost.
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
** starts ran out), skipping the others.
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
/* A, L, S, M, D, one byte each, with a guard bit per byte: subtracting
** more units than are free borrows from the guard. */
#define UNITS_GUARD      0x8080808080ull
#define UNITS_FREE       (0x0101040404ull | UNITS_GUARD)
#define SLOT(i)          ((i) & (PVM_GAS_SLOTS - 1))
#define BIT(j)           (1ull << (j))
#define CELL(t)          ((t) & (PVM_GAS_CELLS - 1))
/* A cycle's units in use as one byte: A in bits 0-3, M in 4-5, D in 6-7.
** Adding USE_BIAS sets a bit of USE_OVER when a unit kind runs short
** (A > 4, M > 1, D > 1), never carrying out of the byte. */
#define USE_BIAS         0x03u
#define USE_OVER         0xA8u
#define BYTES(b)         (0x0101010101010101ull * (b))
/* holder of no entry: 64 or more entries back, whatever the entry */
#define NONE             ((uint32_t)-64)
#define REG_NONE         14          /* never written: reads as NONE */
#define REG_SINK         15          /* writes of no register land here */

static bool units_short(uint64_t free) { return (free & UNITS_GUARD) != UNITS_GUARD; }
static uint32_t max32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint64_t rotr(uint64_t x, unsigned b) { return (x >> (b & 63)) | (x << (-b & 63)); }

/* Zero the cells of the cycles [from, to), at most all of them. */
static void clear_cells(pvm_gas_sim *s, uint32_t from, uint32_t to) {
  if (to - from >= PVM_GAS_CELLS) {
    memset(s->use, 0, sizeof s->use);
    memset(s->starts, 0, sizeof s->starts);
    return;
  }
  unsigned a = CELL(from), b = CELL(to);
  if (a > b || (a == b && from != to)) {
    memset(s->use + a, 0, PVM_GAS_CELLS - a);
    memset(s->starts + a, 0, PVM_GAS_CELLS - a);
    a = 0;
  }
  memset(s->use + a, 0, b - a);
  memset(s->starts + a, 0, b - a);
}

void pvm_gas_sim_begin(pvm_gas_sim *s) {
  s->n = 0;
  s->cycle = 0;
  s->decode_left = DECODE_PER_CYCLE;
  s->exact = false;
  s->started = 0;
  s->last_done = 0;
  if (s->dirty > s->base) clear_cells(s, s->base, s->dirty);   /* the last block's */
  s->base = s->dirty = 0;
  for (int r = 0; r < 16; r++) s->holder[r] = NONE;
}

/* ---- exact: start phases ---- */

/* The start phase of cycle t (A.9's S and Xi'' until nothing more can
** start); returns the next cycle in which one can start something. */
static uint32_t start_phase(pvm_gas_sim *s, uint32_t t) {
  uint64_t free = UNITS_FREE;
  uint32_t next = UINT32_MAX;
  for (uint64_t r = s->running; r; r &= r - 1) {
    int k = __builtin_ctzll(r);
    if (s->done[k] <= t) {
      s->running &= ~BIT(k);
    } else {
      free -= s->units[k];
      next = min32(next, s->done[k]);
    }
  }
  unsigned budget = START_PER_CYCLE;
  unsigned oldest = SLOT(s->n);      /* slot of entry n - 64: age order from there */
  for (uint64_t w = rotr(s->waiting, oldest); w; w &= w - 1) {
    int j = SLOT(__builtin_ctzll(w) + oldest);
    if (s->ready[j] > t) { next = min32(next, s->ready[j]); continue; }
    if (s->deps[j] & s->waiting) continue;         /* met only after those start */
    uint32_t met = 0;
    for (uint64_t d = s->deps[j]; d; d &= d - 1) met = max32(met, s->done[__builtin_ctzll(d)]);
    if (met > t) { next = min32(next, met); continue; }
    if (units_short(free - s->units[j])) continue; /* until a running entry frees them */
    free -= s->units[j];
    s->start[j] = t;
    s->done[j] = t + s->cycles[j];
    s->waiting &= ~BIT(j);
    s->running |= BIT(j);
    next = min32(next, s->done[j]);
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
  s->sched = t;
  s->waiting = s->running = 0;
  s->started = s->n;
  for (uint32_t i = first; i < s->n; i++) {
    int k = SLOT(i);
    if (s->start[k] >= t) {
      s->waiting |= BIT(k);
      if (s->started == s->n) s->started = i;
    } else if (s->done[k] > t) {
      s->running |= BIT(k);
    }
  }
  s->last_done = s->started ? s->prefix_done[SLOT(s->started - 1)] : 0;
}

/* ---- decoding ---- */

/* The decode slots of this cycle are used up: the next cycle. */
static void next_cycle(pvm_gas_sim *s) {
  if (s->exact) run_until(s, s->cycle + 1);
  s->cycle++;
  s->decode_left = DECODE_PER_CYCLE;
}

/* The buffer holds 32 live entries: decode waits until entry n - 32 has
** retired, from cycle P_{n-32} + 2 on. */
static void make_room(pvm_gas_sim *s) {
  uint32_t old = s->n - PVM_GAS_ROB;
  if (s->exact)
    while (s->started <= old) s->sched = start_phase(s, s->sched);
  uint32_t t = s->prefix_done[SLOT(old)] + 2;
  if (t <= s->cycle) return;
  if (s->exact) run_until(s, t);
  s->cycle = t;
  s->decode_left = DECODE_PER_CYCLE;
}

/* ---- schedule: units in use per cycle ---- */

/* Add units (a use byte) to the cells [p, q); any cycle now short? */
static bool add_use(uint8_t *use, unsigned p, unsigned q, uint8_t units) {
  uint64_t each = BYTES(units), over = 0;
  for (; p < q; p += 8) {       /* 8 cycles at a time; use has 8 bytes of slack */
    uint64_t w, mask = q - p >= 8 ? ~0ull : (1ull << 8 * (q - p)) - 1;
    memcpy(&w, use + p, 8);
    w += each & mask;
    memcpy(use + p, &w, 8);
    over |= (w + BYTES(USE_BIAS)) & mask;
  }
  return (over & BYTES(USE_OVER)) != 0;
}

/* The first cycle from t, before end, in which units fit next to those in
** use and fewer than 5 entries start (end if none): 8 cycles at a time. */
static uint32_t first_fit(const pvm_gas_sim *s, uint32_t t, uint32_t end, uint8_t units) {
  if (t < end && s->starts[CELL(t)] < START_PER_CYCLE &&
      !((s->use[CELL(t)] + units + USE_BIAS) & USE_OVER))
    return t;                             /* mostly */
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

/* Place an entry: returns its start, or 0 if the schedule is not the
** simulation's (a cycle runs short) or its run reaches past the cells. */
static uint32_t place(pvm_gas_sim *s, uint32_t ready, uint32_t cycles, uint8_t units) {
  uint32_t floor = s->cycle + 1;           /* no later entry starts before */
  if (ready + cycles + 64 > s->base + PVM_GAS_CELLS && floor != s->base) {
    clear_cells(s, s->base, floor);        /* cycles before floor are done with */
    s->base = floor;
  }
  uint32_t end = s->base + PVM_GAS_CELLS, t = first_fit(s, ready, end, units);
  uint32_t done = t + cycles;
  if (done > end) return 0;
  s->starts[CELL(t)]++;
  s->dirty = max32(s->dirty, done);
  if (!units) return t;
  unsigned a = CELL(t), b = CELL(done);
  if (a < b) return add_use(s->use, a, b, units) ? 0 : t;
  /* wrapped: both halves are counted, whatever the first says */
  bool over_tail = add_use(s->use, a, PVM_GAS_CELLS, units);
  bool over_head = add_use(s->use, 0, b, units);
  return over_tail || over_head ? 0 : t;
}

/* Xi^dec: append an entry. */
static void decode(pvm_gas_sim *s, const pvm_gas_insn *in) {
  uint32_t i = s->n;
  int j = SLOT(i);
  /* at most two sources and one destination, without branches */
  unsigned src2 = in->src & (in->src - 1u);
  uint32_t h0 = s->holder[__builtin_ctz(in->src | 1u << REG_NONE)];
  uint32_t h1 = s->holder[__builtin_ctz(src2 | 1u << REG_NONE)];
  NUB_ASSERT(!(src2 & (src2 - 1u)) && !(in->dst & (in->dst - 1u)));
  s->holder[__builtin_ctz(in->dst | 1u << REG_SINK)] = i;
  bool live0 = i - h0 < PVM_GAS_ROB, live1 = i - h1 < PVM_GAS_ROB;
  uint64_t deps = (BIT(SLOT(h0)) & -(uint64_t)live0) | (BIT(SLOT(h1)) & -(uint64_t)live1);
  s->ready[j] = s->cycle + 1;
  s->cycles[j] = in->cycles;
  s->units[j] = in->units;
  s->deps[j] = deps;
  if (!s->exact) {
    uint32_t ready = max32(s->cycle + 1, max32(live0 ? s->done[SLOT(h0)] : 0,
                                               live1 ? s->done[SLOT(h1)] : 0));
    uint8_t use = (uint8_t)((in->units & 0xf) | (in->units >> 20 & 0x30) | (in->units >> 26 & 0xc0));
    uint32_t start = place(s, ready, in->cycles, use);
    if (start) {
      uint32_t done = start + in->cycles;
      s->start[j] = start;
      s->done[j] = done;
      s->last_done = max32(s->last_done, done);
      s->prefix_done[j] = s->last_done;
      s->started = s->n = i + 1;
      return;
    }
    go_exact(s);
  }
  s->waiting |= BIT(j);
  s->n = i + 1;
}

void pvm_gas_sim_feed(pvm_gas_sim *s, const pvm_gas_insn *in) {
  NUB_ASSERT(in->slots >= 1 && in->slots <= DECODE_PER_CYCLE && (in->move || in->cycles > 0));
  if (in->slots > s->decode_left) next_cycle(s);
  if (s->n >= PVM_GAS_ROB) make_room(s);
  s->decode_left = (uint8_t)(s->decode_left - in->slots);
  if (in->move) {
    /* Xi^mov: the source's holder gains the destination, every other
    ** entry loses it (one source register, so one holder at most) */
    NUB_ASSERT(__builtin_popcount(in->src) == 1 && __builtin_popcount(in->dst) == 1);
    s->holder[__builtin_ctz(in->dst)] = s->holder[__builtin_ctz(in->src)];
    return;
  }
  decode(s, in);
}

uint32_t pvm_gas_sim_end(pvm_gas_sim *s) {
  if (s->exact)
    while (s->waiting) s->sched = start_phase(s, s->sched);
  uint32_t cycles = s->last_done + 2;
  return cycles > 4 ? cycles - 3 : 1;
}
