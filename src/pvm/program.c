/*
** Program loading: validation, basic-block analysis (varpi, A.5), gas
** blocks and the interpreter's pre-decoded instruction array.
*/
#include <stdlib.h>

#include "pvm_internal.h"

static bool bit_get(const uint8_t *set, uint64_t i) { return (set[i >> 3] >> (i & 7)) & 1; }
static void bit_set(uint8_t *set, uint64_t i) { set[i >> 3] |= (uint8_t)(1u << (i & 7)); }

/* 64 bits of the bitmask: the starts among pcs [64 w, 64 w + 64). */
static uint64_t mask_word(const nub_pvm_blob *b, uint64_t w) {
  uint64_t at = 8 * w, mask_len = ((uint64_t)b->code_len + 7) / 8, v = 0;
  if (at + 8 <= mask_len) {
    memcpy(&v, b->bitmask + at, 8);
  } else {
    for (uint64_t i = 0; at + i < mask_len; i++) v |= (uint64_t)b->bitmask[at + i] << (8 * i);
  }
  return v;
}

/* The first instruction of pc's window plus the starts before pc in it is
** at most a few synthetic traps short of the answer (or one past it when
** no instruction starts at pc); the two loops settle it. */
uint32_t pvm_program_index_at(const nub_pvm_program *prog, uint32_t pc) {
  uint32_t code_len = prog->blob.code_len, last = prog->insn_count - 1;
  if (pc > code_len) pc = code_len;
  uint64_t w = pc >> PVM_WINDOW_SHIFT, below = (1ull << (pc & 63)) - 1;
  uint64_t i = prog->window_first[w] +
               (uint64_t)__builtin_popcountll(mask_word(&prog->blob, w) & below);
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

bool nub_pvm_program_is_block_start(const nub_pvm_program *prog, uint64_t pc) {
  return pc < prog->blob.code_len && bit_get(prog->block_start, pc);
}

/* Room for the instructions the walk will produce: every bitmask start,
** plus a synthetic trap after each run of 25 or more bytes that starts
** nothing (a skip stops at 24), plus the final trap. */
static uint64_t max_insns(const nub_pvm_blob *b) {
  uint64_t starts = 0, words = ((uint64_t)b->code_len + 63) / 64;
  for (uint64_t w = 0; w < words; w++) starts += (uint64_t)__builtin_popcountll(mask_word(b, w));
  return starts + b->code_len / (PVM_MAX_SKIP + 1) + 1;
}

static uint64_t window_count(uint32_t code_len) { return ((uint64_t)code_len >> PVM_WINDOW_SHIFT) + 2; }

static void fill_insn(pvm_xinsn *x, const nub_pvm_insn *in) {
  x->op = in->op == PVM_OP_INVALID ? PVM_OP_TRAP : in->op;
  x->pc = in->pc;
  x->target = PVM_NO_TARGET;
  x->gas = 0;
  switch ((nub_pvm_format)in->format) {
  case PVM_FMT_REG_REG:
    x->a = in->ra; x->d = in->rd; x->b = 0;
    break;
  default:
    x->a = in->ra; x->b = in->rb; x->d = in->rd;
    break;
  }
  x->imm1 = (uint32_t)in->imm_x;
  x->imm2 = in->op == PVM_OP_LOAD_IMM_64 ? (uint32_t)(in->imm_x >> 32)
                                         : (uint32_t)in->imm_y;
}

static void synthetic_trap(pvm_xinsn *x, uint32_t pc) {
  memset(x, 0, sizeof *x);
  x->op = PVM_OP_TRAP;
  x->pc = pc;
  x->target = PVM_NO_TARGET;
}

/* Gas blocks run from a head to the next block-ending instruction (a
** terminator, an invalid opcode or a synthetic trap); the head carries
** the whole cost (>= 1), every other instruction 0.  gp07 charges 1 per
** instruction; the pipeline profiles simulate the block (A.9, gas.c) as
** the walk decodes it. */
typedef struct gas_walk {
  const pvm_gas_rules *rules;
  const nub_pvm_blob *blob;
  int unlikely_byte;       /* opcode of unlikely in the profile, -1 if none */
  uint32_t head;           /* index of the current block's first instruction */
  uint64_t count;          /* gp07: instructions in the block so far */
  pvm_gas_sim sim;
} gas_walk;

static uint8_t zeta_at(const nub_pvm_blob *b, int64_t at) {
  return at >= 0 && at < (int64_t)b->code_len ? b->code[at] : 0;
}

/* b (A.10): 1 when the target or the fall-through starts with the opcode
** byte of trap or unlikely (bytes past the code read as 0 = trap). */
static uint8_t branch_cycles(const gas_walk *g, const nub_pvm_insn *in) {
  uint8_t t = zeta_at(g->blob, in->target), f = zeta_at(g->blob, (int64_t)in->pc + in->len);
  bool cold = t == 0 || f == 0 || t == g->unlikely_byte || f == g->unlikely_byte;
  return cold ? 1 : 20;
}

static uint16_t role_regs(unsigned roles, const nub_pvm_insn *in) {
  uint16_t m = 0;
  if (roles & PVM_ROLE_A) m |= (uint16_t)(1u << in->ra);
  if (roles & PVM_ROLE_B) m |= (uint16_t)(1u << in->rb);
  if (roles & PVM_ROLE_D) m |= (uint16_t)(1u << in->rd);
  return m;
}

/* The simulation's view of one instruction; invalid opcodes and
** synthetic traps run as trap and are costed as trap. */
static void gas_insn_of(const gas_walk *g, const nub_pvm_insn *in, pvm_gas_insn *gi) {
  nub_pvm_op op = in && in->op != PVM_OP_INVALID ? (nub_pvm_op)in->op : PVM_OP_TRAP;
  const pvm_gas_row *r = &pvm_gas_rows[op];
  gi->move = op == PVM_OP_MOVE_REG;
  gi->units = r->units;
  if (op == PVM_OP_TRAP) {
    gi->src = gi->dst = 0;
  } else {
    gi->src = role_regs(r->src, in);
    gi->dst = role_regs(r->dst, in);
  }
  gi->cycles = r->cycle_rule == PVM_CYC_MEM ? g->rules->mem_cycles
             : r->cycle_rule == PVM_CYC_BRANCH ? branch_cycles(g, in) : r->cycles;
  bool overlap = r->slot_rule == PVM_SLOTS_P ? (gi->src & gi->dst) != 0
               : r->slot_rule == PVM_SLOTS_PS ? in->ra == in->rd : false;
  gi->slots = overlap ? r->slots_overlap : r->slots;
}

/* Add instruction n (in may be NULL for a synthetic trap). */
static void gas_add(nub_pvm_program *p, gas_walk *g, uint32_t n, const nub_pvm_insn *in, bool ends) {
  if (!g->rules->pipeline) {
    g->count++;
  } else {
    pvm_gas_insn gi;
    gas_insn_of(g, in, &gi);
    pvm_gas_sim_feed(&g->sim, &gi);
  }
  if (!ends) return;
  uint64_t cost = g->rules->pipeline ? pvm_gas_sim_end(&g->sim) : g->count;
  p->insns[g->head].gas = (uint32_t)(cost ? cost : 1);
  p->block_count++;
  g->head = n + 1;
  g->count = 0;
  if (g->rules->pipeline) pvm_gas_sim_begin(&g->sim);
}

/* The next bitmask start at or after pc, or code_len. */
static uint32_t next_start(const nub_pvm_blob *b, uint64_t pc) {
  while (pc < b->code_len) {
    uint64_t w = pc >> 6, bits = mask_word(b, w) >> (pc & 63);
    if (bits) return (uint32_t)(pc + (uint64_t)__builtin_ctzll(bits));
    pc = (w + 1) << 6;
  }
  return b->code_len;
}

/* Walk state: the next window whose first instruction is not yet known. */
typedef struct walk_state {
  uint64_t next_window;
  uint32_t n;              /* instructions so far */
} walk_state;

static pvm_xinsn *append(nub_pvm_program *p, walk_state *ws, uint32_t pc) {
  while (ws->next_window << PVM_WINDOW_SHIFT <= pc) p->window_first[ws->next_window++] = ws->n;
  return &p->insns[ws->n++];
}

/* One pass over the code: decode, pre-decode for the interpreter, mark
** varpi (A.5: pc 0 and each successor of a valid terminator, when it is a
** valid instruction), note static branch targets as pcs (resolved to
** indices once every block start is known) and cost each gas block. */
static void walk(nub_pvm_program *p) {
  const nub_pvm_blob *b = &p->blob;
  const nub_pvm_opinfo *isa = nub_pvm_isa(p->profile);
  gas_walk g = {pvm_gas_rules_of(p->profile), b, nub_pvm_opcode_of(p->profile, PVM_OP_UNLIKELY),
                0, 0, {0}};
  walk_state ws = {0, 0};
  bool after_term = false;
  pvm_gas_sim_begin(&g.sim);
  p->block_count = 0;
  /* GP 0.8.0 deblob (v_blob): from pc 0, each instruction valid and the
  ** next starting where the skip lands, ending exactly at the code end */
  bool chain = b->code_len > 0 && nub_pvm_blob_is_start(b, 0);
  for (uint32_t pc = next_start(b, 0); pc < b->code_len;) {
    nub_pvm_insn in;
    nub_pvm_decode(p->profile, b, pc, &in);
    uint32_t n = ws.n;
    pvm_xinsn *x = append(p, &ws, pc);
    fill_insn(x, &in);
    bool valid = in.op != PVM_OP_INVALID;
    uint8_t flags = valid ? isa[in.opcode].flags : 0;
    bool term = flags & PVM_OPF_TERM;
    if (valid && (pc == 0 || after_term)) bit_set(p->block_start, pc);
    if ((flags & PVM_OPF_BRANCH) && in.target >= 0 && in.target < (int64_t)b->code_len)
      x->target = (uint32_t)in.target;     /* a pc until resolve_targets */
    after_term = term;
    gas_add(p, &g, n, &in, !valid || term);
    chain = chain && valid;
    uint64_t next = (uint64_t)pc + in.len;
    if (next < b->code_len && !nub_pvm_blob_is_start(b, next)) {
      chain = false;
      after_term = false;
      synthetic_trap(append(p, &ws, (uint32_t)next), (uint32_t)next);
      gas_add(p, &g, ws.n - 1, NULL, true);
      next = next_start(b, next);
    }
    pc = (uint32_t)next;
  }
  synthetic_trap(append(p, &ws, b->code_len), b->code_len);
  gas_add(p, &g, ws.n - 1, NULL, true);
  for (uint64_t w = ws.next_window; w < window_count(b->code_len); w++) p->window_first[w] = ws.n;
  p->insn_count = ws.n;
  p->unrunnable = g.rules->first_run_check && !chain;
}

/* A program that fails the 0.8.0 deblob check still loads (Psi panics on
** it rather than rejecting it): every entry panics without charge, so
** keep only a trap at pc 0 and the final one, both free. */
static void make_unrunnable(nub_pvm_program *p) {
  uint32_t end = p->blob.code_len;
  synthetic_trap(&p->insns[0], 0);
  p->insn_count = 1;
  if (end) synthetic_trap(&p->insns[p->insn_count++], end);
  memset(p->block_start, 0, ((size_t)end + 8) / 8);
  for (uint64_t w = 0; w < window_count(end); w++) p->window_first[w] = w ? p->insn_count - 1 : 0;
  p->block_count = 0;
}

static int decode_all(nub_pvm_program *p, nub_pvm_error *err) {
  uint64_t cap = max_insns(&p->blob);
  p->insns = malloc(cap * sizeof *p->insns);
  if (!p->insns)
    return pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for %llu instructions",
                    (unsigned long long)cap);
  walk(p);
  if (p->unrunnable) make_unrunnable(p);
  if (p->insn_count < cap) {                /* give back the room the bound left over */
    pvm_xinsn *fit = realloc(p->insns, (size_t)p->insn_count * sizeof *p->insns);
    if (fit) p->insns = fit;
  }
  return PVM_OK;
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

int nub_pvm_program_load(nub_pvm_profile profile, const uint8_t *blob, size_t len,
                     nub_pvm_program **out, nub_pvm_error *err) {
  nub_pvm_program *p;
  int rc;
  *out = NULL;
  if (!nub_pvm_isa(profile)) return pvm_fail(err, PVM_ERR_ARG, 0, "program: unknown ISA profile %d", (int)profile);
  if (!blob && len) return pvm_fail(err, PVM_ERR_ARG, 0, "program: no bytes");
  p = calloc(1, sizeof *p);
  if (!p) return pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory");
  p->profile = profile;
  p->bytes = malloc(len ? len : 1);
  p->len = len;
  if (!p->bytes) { rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for %zu bytes", len); goto fail; }
  if (len) memcpy(p->bytes, blob, len);
  if ((rc = nub_pvm_blob_parse(p->bytes, p->bytes + len, &p->blob, err))) goto fail;
  p->block_start = calloc(((size_t)p->blob.code_len + 8) / 8, 1);
  p->jump_targets = malloc(((size_t)p->blob.jump_count + 1) * sizeof *p->jump_targets);
  p->window_first = malloc(window_count(p->blob.code_len) * sizeof *p->window_first);
  if (!p->block_start || !p->jump_targets || !p->window_first) {
    rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "program: no memory for block analysis");
    goto fail;
  }
  if ((rc = decode_all(p, err))) goto fail;
  resolve_targets(p);
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
  free(p->block_start);
  free(p->window_first);
  free(p->bytes);
  free(p);
}

/* Every instruction the walk produces covers a byte of its own (a
** synthetic trap follows an instruction of two or more bytes), so there
** are at most code_len + 1 of them. */
uint64_t nub_pvm_program_load_bytes(const nub_pvm_blob *b, size_t len) {
  uint64_t insns = (uint64_t)b->code_len + 1;
  return sizeof(nub_pvm_program) + len + insns * sizeof(pvm_xinsn) +
         ((uint64_t)b->code_len + 8) / 8 + ((uint64_t)b->jump_count + 1) * sizeof(uint32_t) +
         window_count(b->code_len) * sizeof(uint32_t);
}

size_t nub_pvm_program_bytes(const nub_pvm_program *p) {
  const nub_pvm_blob *b = &p->blob;
  return sizeof *p + p->len + (size_t)p->insn_count * sizeof *p->insns +
         ((size_t)b->code_len + 8) / 8 + ((size_t)b->jump_count + 1) * sizeof *p->jump_targets +
         window_count(b->code_len) * sizeof *p->window_first;
}

const nub_pvm_blob *nub_pvm_program_blob(const nub_pvm_program *p) { return &p->blob; }
nub_pvm_profile nub_pvm_program_profile(const nub_pvm_program *p) { return p->profile; }
uint32_t nub_pvm_program_block_count(const nub_pvm_program *p) { return p->block_count; }
uint32_t nub_pvm_program_insn_count(const nub_pvm_program *p) { return p->insn_count; }

/* insns[i] is a terminator that may continue at the next pc (fallthrough
** or a conditional branch): the implicit trap at the end of the code
** after it is then a block of its own, as in the draft's vectors. */
static bool falls_through_to_end(const nub_pvm_program *p, uint32_t i) {
  uint32_t pc = p->insns[i].pc;
  if (!nub_pvm_blob_is_start(&p->blob, pc)) return false;
  const nub_pvm_opinfo *info = &nub_pvm_isa(p->profile)[p->blob.code[pc]];
  if (!info->name || !(info->flags & PVM_OPF_TERM)) return false;
  return info->op == PVM_OP_FALLTHROUGH ||
         ((info->flags & PVM_OPF_BRANCH) && info->op != PVM_OP_JUMP &&
          info->op != PVM_OP_LOAD_IMM_JUMP);
}

bool nub_pvm_program_next_block(const nub_pvm_program *p, uint32_t *cursor, uint32_t *pc,
                            uint32_t *cost, bool *basic) {
  for (uint32_t i = *cursor; i < p->insn_count; i++) {
    if (!p->insns[i].gas) continue;
    *pc = p->insns[i].pc;
    *cost = p->insns[i].gas;
    *basic = nub_pvm_program_is_block_start(p, *pc) ||
             (*pc == p->blob.code_len && i > 0 && falls_through_to_end(p, i - 1));
    *cursor = i + 1;
    return true;
  }
  *cursor = p->insn_count;
  return false;
}

/* Gas charged when a run starts at pc (GP 0.8.0 A.4: the cost of the
** block holding pc, L(pc)).  gp07 charges the instructions left in the
** block; a pc at no instruction runs as a trap.  Under jamv1 a pc that is
** not a valid instruction panics before any charge (deblob's v_loc). */
int64_t nub_pvm_program_entry_cost(const nub_pvm_program *p, uint32_t pc) {
  const pvm_gas_rules *rules = pvm_gas_rules_of(p->profile);
  if (p->unrunnable) return 0;
  if (rules->first_run_check &&
      (!nub_pvm_blob_is_start(&p->blob, pc) || !nub_pvm_isa(p->profile)[p->blob.code[pc]].name))
    return 0;
  uint32_t i = exact_index(p, pc);
  if (i == PVM_NO_TARGET && !rules->pipeline)
    return nub_pvm_isa(p->profile)[0].gas;   /* runs as a trap */
  if (i == PVM_NO_TARGET) i = pvm_program_index_at(p, pc);
  if (p->insns[i].gas) return p->insns[i].gas;
  uint32_t head = i, end = i + 1;
  while (head > 0 && !p->insns[head].gas) head--;
  if (rules->pipeline) return p->insns[head].gas;
  /* gp07 mid-block: the share of the rest of the block, up to the next head */
  while (end < p->insn_count && !p->insns[end].gas) end++;
  return (int64_t)p->insns[head].gas * (end - i) / (end - head);
}
