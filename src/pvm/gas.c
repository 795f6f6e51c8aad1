/*
** The gas cost model of GP 0.8.0 A.9: a cycle-by-cycle simulation of a
** small out-of-order CPU (4 decode slots and 5 starts per cycle, a
** 32-entry reorder buffer, execution units A/L/S/M/D = 4/4/4/1/1) over
** one basic block.  Program analysis feeds it each instruction as it
** decodes them; pvm_gas_sim_end runs it until every entry has retired.
**
** Representation: only live entries are kept, oldest first.  Retired
** entries always form a prefix of the buffer (an entry retires when it
** and every older one has finished), so retiring k entries is a shift by
** k, and a dependency set is a bit mask over live entries that shifts
** with them: a dependency on a retired entry is always met (it has 0
** cycles left), so dropping it changes nothing.
*/
#include "pvm_internal.h"

enum { ST_DEC = 1, ST_WAIT, ST_EXE, ST_FIN };

#define DECODE_PER_CYCLE 4
#define START_PER_CYCLE  5
/* A, L, S, M, D, one byte each */
#define UNITS_INIT       0x0101040404ull
/* a high bit per unit byte: subtracting a request borrows into it when a
** unit kind runs short */
#define UNITS_GUARD      0x8080808080ull

static bool units_fit(uint64_t need, uint64_t avail) {
  return (((avail | UNITS_GUARD) - need) & UNITS_GUARD) == UNITS_GUARD;
}

void pvm_gas_sim_begin(pvm_gas_sim *s, bool draft) {
  s->cycle = 0;
  s->avail = UNITS_INIT;
  s->decode_left = DECODE_PER_CYCLE;
  s->start_left = START_PER_CYCLE;
  s->n = 0;
  s->draft = draft;
}

/* S (A.9): the oldest waiting entry whose units are free and whose
** dependencies have no cycles left; -1 if none. */
static int ready_to_start(const pvm_gas_sim *s) {
  uint32_t busy = 0;
  for (int j = 0; j < s->n; j++)
    if (s->left[j]) busy |= 1u << j;
  for (int j = 0; j < s->n; j++)
    if (s->state[j] == ST_WAIT && !(s->deps[j] & busy) && units_fit(s->units[j], s->avail))
      return j;
  return -1;
}

/* Xi'' : start entry j. */
static void start(pvm_gas_sim *s, int j) {
  s->start_left--;
  s->avail -= s->units[j];
  s->state[j] = ST_EXE;
}

/* Xi''' : one cycle of the back end. */
static void tick(pvm_gas_sim *s) {
  int retire = 0;
  while (retire < s->n && s->state[retire] == ST_FIN) retire++;
  for (int j = retire; j < s->n; j++) {
    switch (s->state[j]) {
    case ST_DEC:
      s->state[j] = ST_WAIT;
      break;
    case ST_EXE:
      if (s->left[j] == 0) {
        s->state[j] = ST_FIN;
      } else {
        if (s->left[j] == 1) {
          s->avail += s->units[j];
          if (s->draft) s->regs[j] = 0;   /* the draft frees the registers here */
        }
        s->left[j]--;
      }
      break;
    default:
      break;
    }
  }
  if (retire) {
    int n = s->n - retire;
    memmove(s->state, s->state + retire, (size_t)n);
    memmove(s->left, s->left + retire, (size_t)n);
    memmove(s->regs, s->regs + retire, (size_t)n * sizeof s->regs[0]);
    memmove(s->units, s->units + retire, (size_t)n * sizeof s->units[0]);
    for (int j = 0; j < n; j++) s->deps[j] = s->deps[j + retire] >> retire;
    s->n = (uint8_t)n;
  }
  s->cycle++;
  s->decode_left = DECODE_PER_CYCLE;
  s->start_left = START_PER_CYCLE;
}

/* Xi^mov / Xi^dec */
static void decode(pvm_gas_sim *s, const pvm_gas_insn *in) {
  s->decode_left = (uint8_t)(s->decode_left - in->slots);
  if (in->move) {
    for (int j = 0; j < s->n; j++)
      s->regs[j] = (s->regs[j] & in->src) ? (uint16_t)(s->regs[j] | in->dst)
                                          : (uint16_t)(s->regs[j] & ~in->dst);
    return;
  }
  uint32_t deps = 0;
  for (int j = 0; j < s->n; j++) {
    if (s->regs[j] & in->src) deps |= 1u << j;
    s->regs[j] = (uint16_t)(s->regs[j] & ~in->dst);
  }
  int k = s->n++;
  s->state[k] = ST_DEC;
  s->left[k] = in->cycles;
  s->deps[k] = deps;
  s->regs[k] = in->dst;
  s->units[k] = in->units;
}

void pvm_gas_sim_feed(pvm_gas_sim *s, const pvm_gas_insn *in) {
  for (;;) {
    if (in->slots <= s->decode_left && s->n < PVM_GAS_ROB) {
      decode(s, in);
      return;
    }
    int j = s->start_left ? ready_to_start(s) : -1;
    if (j >= 0) start(s, j);
    else tick(s);
  }
}

uint32_t pvm_gas_sim_end(pvm_gas_sim *s) {
  for (;;) {
    int j = s->start_left ? ready_to_start(s) : -1;
    if (j >= 0) start(s, j);
    else if (s->n == 0) break;
    else tick(s);
  }
  return s->cycle > 4 ? (uint32_t)(s->cycle - 3) : 1;
}
