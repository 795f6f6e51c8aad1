/*
** The gas cost model of GP 0.8.0 A.9: a cycle-by-cycle simulation of a
** small out-of-order CPU (4 decode slots and 5 starts per cycle, a
** 32-entry reorder buffer, execution units A/L/S/M/D = 4/4/4/1/1) over
** one basic block.  Program analysis feeds it each instruction as it
** decodes them; pvm_gas_sim_end runs it until every entry has retired.
**
** Representation: the reorder buffer is a ring of 64 slots holding the
** live entries in order from `base`; states, dependency sets and the
** clobbered-register sets (kept per register: writers[i] = the entries
** whose r_j holds i) are 64-bit slot masks.  Retired entries always form
** a prefix (an entry retires when it and every older one has finished),
** and a dependency on a retired entry is always met (0 cycles left), so
** retiring is clearing bits.  With 64 slots for at most 32 live entries a
** slot is reused only 64 entries later, after every entry that could
** name its previous occupant has retired.
**
** The draft's A.53 also empties r_j when entry j completes; 0.8.0 does
** not.  Nothing can observe it (a dependency on a completed entry is
** met), so one simulation serves both.
**
** Speed: an executing entry keeps the cycle at which it reaches 0 cycles
** left rather than a count, so a cycle costs O(1) unless an entry
** completes in it; and cycles in which nothing can decode, start, finish
** or retire (waiting out a 25-cycle load, a 60-cycle division) are
** skipped in one step (`nub bench gas` prints the cost per KB).
*/
#include "pvm_internal.h"

#define DECODE_PER_CYCLE 4
#define START_PER_CYCLE  5
/* A, L, S, M, D, one byte each */
#define UNITS_INIT       0x0101040404ull
/* a high bit per unit byte: subtracting a request borrows into it when a
** unit kind runs short */
#define UNITS_GUARD      0x8080808080ull
#define SLOT(i)          ((i) & (PVM_GAS_SLOTS - 1))

static bool units_fit(uint64_t need, uint64_t avail) {
  return (((avail | UNITS_GUARD) - need) & UNITS_GUARD) == UNITS_GUARD;
}

static uint64_t rotr(uint64_t x, unsigned b) { return (x >> (b & 63)) | (x << (-b & 63)); }
static uint64_t rotl(uint64_t x, unsigned b) { return (x << (b & 63)) | (x >> (-b & 63)); }

void pvm_gas_sim_begin(pvm_gas_sim *s) {
  s->cycle = 0;
  s->next_done = UINT32_MAX;
  s->last_done = 0;
  s->avail = UNITS_INIT;
  s->decode_left = DECODE_PER_CYCLE;
  s->start_left = START_PER_CYCLE;
  s->n = 0;
  s->base = 0;
  s->dec = s->wait = s->exe = s->fin = s->zero = s->met = 0;
  memset(s->writers, 0, sizeof s->writers);
}

static uint64_t live(const pvm_gas_sim *s) { return rotl((1ull << s->n) - 1, s->base); }

/* S (A.9): the oldest waiting entry whose units are free and whose
** dependencies have no cycles left; -1 if none.  Dependencies are met only
** in a tick, which keeps `met` up to date. */
static int ready_to_start(const pvm_gas_sim *s) {
  for (uint64_t c = rotr(s->met, s->base); c; c &= c - 1) {
    int j = SLOT(__builtin_ctzll(c) + s->base);
    if (units_fit(s->units[j], s->avail)) return j;
  }
  return -1;
}

/* Xi'' : start entry j. */
static void start(pvm_gas_sim *s, int j) {
  s->start_left--;
  s->done[j] = s->cycle + s->cycles[j];
  if (s->done[j] < s->next_done) s->next_done = s->done[j];
  if (s->done[j] > s->last_done) s->last_done = s->done[j];
  s->avail -= s->units[j];
  s->wait &= ~(1ull << j);
  s->met &= ~(1ull << j);
  s->exe |= 1ull << j;
}

static void complete(pvm_gas_sim *s);

/* Xi''' : one cycle of the back end.  The cases read the state before
** the cycle: a finished prefix retires, DEC becomes WAIT, an executing
** entry with 0 cycles left finishes, the others count down and free
** their units on reaching 0. */
static void tick(pvm_gas_sim *s) {
  int retire = __builtin_ctzll(~rotr(s->fin, s->base));
  uint64_t done = s->exe & s->zero, unmet = s->dec;
  s->fin |= done;
  s->exe &= ~done;
  s->wait |= s->dec;
  s->dec = 0;
  if (retire) {
    uint64_t gone = rotl((1ull << retire) - 1, s->base);
    s->fin &= ~gone;
    s->base = (uint8_t)SLOT(s->base + retire);
    s->n = (uint8_t)(s->n - retire);
  }
  s->cycle++;
  s->decode_left = DECODE_PER_CYCLE;
  s->start_left = START_PER_CYCLE;
  if (s->cycle == s->next_done) {
    complete(s);
    unmet = s->wait & ~s->met;
  }
  uint64_t busy = live(s) & ~s->zero;
  for (; unmet; unmet &= unmet - 1) {
    int j = __builtin_ctzll(unmet);
    if (!(s->deps[j] & busy)) s->met |= 1ull << j;
  }
}

/* Entries reaching 0 cycles left in this cycle free their units. */
static void complete(pvm_gas_sim *s) {
  s->next_done = UINT32_MAX;
  for (uint64_t c = s->exe & ~s->zero; c; c &= c - 1) {
    int j = __builtin_ctzll(c);
    if (s->done[j] != s->cycle) {
      if (s->done[j] < s->next_done) s->next_done = s->done[j];
      continue;
    }
    s->avail += s->units[j];
    s->zero |= 1ull << j;
  }
}

/* Called when nothing can decode except by retiring and nothing can
** start: if no tick before the first executing entry reaches 0 cycles
** changes anything but the counters, take all but the last at once. */
static void skip_idle(pvm_gas_sim *s) {
  if (s->dec || (s->exe & s->zero) || ((s->fin >> s->base) & 1)) return;
  if (s->next_done != UINT32_MAX && s->next_done - s->cycle > 1) s->cycle = s->next_done - 1;
}

/* Entries whose clobbered registers meet the set regs. */
static uint64_t writers_of(const pvm_gas_sim *s, uint16_t regs) {
  uint64_t m = 0;
  for (; regs; regs &= (uint16_t)(regs - 1)) m |= s->writers[__builtin_ctz(regs)];
  return m;
}

/* Xi^mov / Xi^dec, O(registers named). */
static void decode(pvm_gas_sim *s, const pvm_gas_insn *in) {
  s->decode_left = (uint8_t)(s->decode_left - in->slots);
  uint64_t readers = writers_of(s, in->src) & live(s);
  if (in->move) {
    /* r_j gains the destination when it meets the source, else loses it */
    for (uint16_t d = in->dst; d; d &= (uint16_t)(d - 1)) s->writers[__builtin_ctz(d)] = readers;
    return;
  }
  int k = SLOT(s->base + s->n++);
  uint64_t bit = 1ull << k;
  /* writers keeps bits of retired entries (ANDed with live when read);
  ** drop them every 32 slots, before their slots come round again */
  if (!(k & 31))
    for (int r = 0; r < PVM_REGS; r++) s->writers[r] &= live(s) & ~bit;
  for (uint16_t d = in->dst; d; d &= (uint16_t)(d - 1)) s->writers[__builtin_ctz(d)] = bit;
  s->dec |= bit;
  s->zero = in->cycles ? s->zero & ~bit : s->zero | bit;
  s->cycles[k] = in->cycles;
  s->deps[k] = readers;
  s->units[k] = in->units;
}

void pvm_gas_sim_feed(pvm_gas_sim *s, const pvm_gas_insn *in) {
  for (;;) {
    if (in->slots <= s->decode_left && s->n < PVM_GAS_ROB) {
      decode(s, in);
      return;
    }
    int j = s->start_left ? ready_to_start(s) : -1;
    if (j >= 0) {
      start(s, j);
    } else {
      if (s->n == PVM_GAS_ROB && s->start_left) skip_idle(s);
      tick(s);
    }
  }
}

/* Once nothing is left to decode and every entry has started, the rest is
** fixed: entry j is FIN one cycle after it reaches 0 left and retires one
** cycle after every older entry is FIN, so the last retirement (the end)
** is 2 cycles after the latest completion, or the next cycle if that has
** passed. */
uint32_t pvm_gas_sim_end(pvm_gas_sim *s) {
  for (;;) {
    int j = s->start_left ? ready_to_start(s) : -1;
    if (j >= 0) {
      start(s, j);
    } else if (s->n == 0) {
      break;
    } else if (!s->dec && !s->wait) {
      s->cycle = s->last_done + 2 > s->cycle + 1 ? s->last_done + 2 : s->cycle + 1;
      break;
    } else {
      if (s->start_left) skip_idle(s);
      tick(s);
    }
  }
  return s->cycle > 4 ? s->cycle - 3 : 1;
}
