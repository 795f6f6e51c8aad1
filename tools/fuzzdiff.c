/*
** Differential fuzzer: program generator, lock-step runner, shrinker and
** reproducer writer (see fuzzdiff.h).
*/
#include "fuzzdiff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define REGION_BASE   0x20000u     /* eight pages of random access */
#define REGION_PAGES  8u
#define LOW_PAGE      0x10000u     /* the lowest page a guest may use */
#define TOP_PAGE      0xFFFFF000u  /* accesses here can wrap to 0 */
#define HEAP_BASE     0x28000u     /* sbrk grows from here */
#define MAX_EXITS     12u          /* resumptions per program */
#define MAX_JUMPS     6u

/* ---- random numbers (splitmix64) ---- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rnd(rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t below(rng *r, uint64_t n) { return n ? rnd(r) % n : 0; }
static bool chance(rng *r, unsigned percent) { return below(r, 100) < percent; }
static uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)(uint32_t)v; }

/* ---- a generated case ---- */

enum { IT_INSN, IT_BRANCH, IT_BRANCH_ABS, IT_BIND, IT_RAW };

typedef struct gitem {
  uint8_t kind, op, ra, rb, rd, nraw;
  bool removed;
  uint8_t raw[4];
  uint32_t label;
  int64_t target;
  uint64_t x, y;
} gitem;

typedef struct gcase {
  gitem *items;
  uint32_t nitems, cap;
  uint32_t nlabels;
  uint32_t jumps[MAX_JUMPS];
  bool jump_abs[MAX_JUMPS];
  uint32_t njumps;
  uint64_t regs[PVM_REGS];
  int64_t gas;
  uint8_t entry_mode;            /* 0: pc 0, 1: an instruction start, 2: any pc */
  uint32_t entry_pick;
  uint8_t page_acc[REGION_PAGES];
  uint8_t low_acc, top_acc;
  uint64_t mem_seed, action_seed;
  uint32_t heap_top, heap_limit;
} gcase;

static bool push_item(gcase *c, gitem it) {
  if (c->nitems == c->cap) {
    uint32_t cap = c->cap ? c->cap * 2 : 64;
    gitem *p = realloc(c->items, cap * sizeof *p);
    if (!p) return false;
    c->items = p;
    c->cap = cap;
  }
  c->items[c->nitems++] = it;
  return true;
}

/* Values that make interesting registers and immediates: addresses near
** page edges (with garbage above bit 32), jump-table addresses, the guard
** zone, the top of memory, extremes and plain noise. */
static uint64_t pick_value(rng *r, const gcase *c) {
  static const uint64_t special[] = {
    0, 1, 2, UINT64_MAX, 0x8000000000000000ull, 0x7FFFFFFFFFFFFFFFull, 0x80000000ull,
    0xFFFFFFFFull, 0x7FFFFFFFull, 0x100000000ull, 0xFFFFFFFF80000000ull, 31, 32, 63, 64,
  };
  switch (below(r, 10)) {
  case 0: case 1: return rnd(r);
  case 2: return (uint64_t)((int64_t)below(r, 33) - 16);
  case 3: case 4: case 5: {
    static const uint32_t offs[] = {0, 1, 2, 3, 4, 0xFF8, 0xFFC, 0xFFD, 0xFFE, 0xFFF};
    uint64_t page = REGION_BASE + (below(r, REGION_PAGES + 2) - 1) * PVM_PAGE_SIZE;
    uint64_t off = chance(r, 70) ? offs[below(r, sizeof offs / sizeof offs[0])] : below(r, PVM_PAGE_SIZE);
    uint64_t v = page + off;
    return chance(r, 15) ? v | rnd(r) << 32 : v;
  }
  case 6: return special[below(r, sizeof special / sizeof special[0])];
  case 7:
    if (chance(r, 20)) return PVM_HALT_ADDRESS;
    return 2 * below(r, c->njumps + 2) + chance(r, 10);
  case 8:
    return chance(r, 50) ? TOP_PAGE + PVM_PAGE_SIZE - below(r, 16)
                         : LOW_PAGE + below(r, 32) - 16;
  default: return below(r, 1u << 16);
  }
}

static uint64_t pick_offset(rng *r) {
  static const int64_t offs[] = {0, 1, -1, 4, -4, 8, 0xFFF, 0x1000, -0x1000, 0xFFC};
  return (uint64_t)(chance(r, 80) ? offs[below(r, sizeof offs / sizeof offs[0])]
                                  : (int64_t)(int32_t)rnd(r));
}

static uint8_t pick_reg(rng *r, const uint8_t *regs, unsigned nregs) {
  return chance(r, 5) ? (uint8_t)below(r, PVM_REGS) : regs[below(r, nregs)];
}

/* The profile's valid opcode bytes, or (invalid) the bytes that are not. */
static const uint8_t *opcodes_of(nub_pvm_profile profile, bool valid, unsigned *n) {
  static uint8_t ops[PVM_PROFILE_COUNT][2][256];
  static unsigned count[PVM_PROFILE_COUNT][2];
  if (!count[profile][valid]) {
    const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
    for (unsigned i = 0; i < 256; i++)
      if ((isa[i].name != NULL) == valid) ops[profile][valid][count[profile][valid]++] = (uint8_t)i;
  }
  *n = count[profile][valid];
  return ops[profile][valid];
}

static int64_t random_pc(rng *r, uint32_t n) { return (int64_t)below(r, (uint64_t)n * 6 + 8); }

/* One instruction of the profile with operands fitting its format and
** kind; only opcodes valid in the profile (sbrk only where it exists),
** and raw bytes only where the profile has no opcode. */
static gitem gen_insn(rng *r, nub_pvm_profile profile, const gcase *c, const uint8_t *regs,
                      unsigned nregs, uint32_t n) {
  const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
  unsigned nops, nbad;
  const uint8_t *ops = opcodes_of(profile, true, &nops), *bad = opcodes_of(profile, false, &nbad);
  gitem it;
  memset(&it, 0, sizeof it);
  uint64_t roll = below(r, 100);
  int opcode;
  if (roll < 3) opcode = nub_pvm_opcode_of(profile, PVM_OP_ECALLI);
  else if (roll < 5) opcode = nub_pvm_opcode_of(profile, PVM_OP_JUMP_IND);
  else if (roll < 6) opcode = nub_pvm_opcode_of(profile, PVM_OP_LOAD_IMM_JUMP_IND);
  else if (roll < 7 && nub_pvm_opcode_of(profile, PVM_OP_SBRK) >= 0) opcode = nub_pvm_opcode_of(profile, PVM_OP_SBRK);
  else if (roll < 8) {                       /* bytes that are no valid instruction */
    it.kind = IT_RAW;
    it.nraw = (uint8_t)(1 + below(r, 3));
    it.raw[0] = chance(r, 50) ? 0xFF : bad[below(r, nbad)];
    for (unsigned i = 1; i < it.nraw; i++) it.raw[i] = (uint8_t)rnd(r);
    return it;
  } else opcode = ops[below(r, nops)];
  const nub_pvm_opinfo *info = &isa[opcode];
  it.kind = IT_INSN;
  it.op = info->op;
  it.ra = pick_reg(r, regs, nregs);
  it.rb = pick_reg(r, regs, nregs);
  it.rd = pick_reg(r, regs, nregs);
  bool mem = info->flags & (PVM_OPF_LOAD | PVM_OPF_STORE);
  switch ((nub_pvm_format)info->format) {
  case PVM_FMT_IMM: it.x = chance(r, 70) ? below(r, 100) : sext32(rnd(r)); break;
  case PVM_FMT_REG_IMM64: it.x = pick_value(r, c); break;
  case PVM_FMT_IMM_IMM: it.x = sext32(pick_value(r, c)); it.y = sext32(pick_value(r, c)); break;
  case PVM_FMT_REG_IMM:
    it.x = mem || info->op == PVM_OP_LOAD_IMM ? sext32(pick_value(r, c))
         : chance(r, 70) ? 0 : pick_offset(r);
    break;
  case PVM_FMT_REG_IMM_IMM: it.x = pick_offset(r); it.y = sext32(pick_value(r, c)); break;
  case PVM_FMT_REG_REG_IMM: it.x = mem ? pick_offset(r) : sext32(pick_value(r, c)); break;
  case PVM_FMT_REG_REG_IMM_IMM: it.x = sext32(pick_value(r, c)); it.y = pick_offset(r); break;
  case PVM_FMT_OFFSET: case PVM_FMT_REG_IMM_OFFSET: case PVM_FMT_REG_REG_OFFSET:
    it.x = sext32(pick_value(r, c));
    if (chance(r, 90)) {
      it.kind = IT_BRANCH;
      it.label = (uint32_t)below(r, c->nlabels);
    } else {
      it.kind = IT_BRANCH_ABS;
      it.target = random_pc(r, n);
    }
    break;
  default: break;
  }
  return it;
}

static bool gen_case(rng *r, nub_pvm_profile profile, unsigned max_insns, gcase *c) {
  uint8_t regs[PVM_REGS];
  unsigned nregs = 3 + (unsigned)below(r, 6);
  for (unsigned i = 0; i < nregs; i++) regs[i] = (uint8_t)below(r, PVM_REGS);
  uint32_t n = 4 + (uint32_t)below(r, max_insns - 3);
  c->nitems = 0;
  c->nlabels = 1 + n / 5;
  c->njumps = (uint32_t)below(r, MAX_JUMPS + 1);
  for (uint32_t j = 0; j < c->njumps; j++) {
    c->jump_abs[j] = chance(r, 15);
    /* an absolute entry must lie inside the code, which has at least n bytes */
    c->jumps[j] = c->jump_abs[j] ? (uint32_t)below(r, n) : (uint32_t)below(r, c->nlabels);
  }
  uint32_t *bind_at = malloc(c->nlabels * sizeof *bind_at);
  if (!bind_at) return false;
  /* never after the last instruction: a jump table entry must be inside the code */
  for (uint32_t l = 0; l < c->nlabels; l++) bind_at[l] = (uint32_t)below(r, n);
  for (uint32_t i = 0; i <= n; i++) {
    for (uint32_t l = 0; l < c->nlabels; l++) {
      if (bind_at[l] != i) continue;
      /* mostly a block start (after a terminator), sometimes mid-block */
      if (i > 0 && chance(r, 80) &&
          !push_item(c, (gitem){.kind = IT_INSN, .op = PVM_OP_FALLTHROUGH}))
        goto oom;
      if (!push_item(c, (gitem){.kind = IT_BIND, .label = l})) goto oom;
    }
    if (i == n) break;
    gitem it = gen_insn(r, profile, c, regs, nregs, n);
    /* a dynamic jump mostly goes through a table address loaded just before */
    if (it.kind == IT_INSN && it.op == PVM_OP_JUMP_IND && chance(r, 60)) {
      gitem li = {.kind = IT_INSN, .op = PVM_OP_LOAD_IMM, .ra = it.ra,
                  .x = chance(r, 15) ? sext32(PVM_HALT_ADDRESS) : 2 * (1 + below(r, c->njumps + 1))};
      it.x = 0;
      if (!push_item(c, li)) goto oom;
    }
    if (!push_item(c, it)) goto oom;
  }
  free(bind_at);
  for (unsigned i = 0; i < PVM_REGS; i++) c->regs[i] = pick_value(r, c);
  uint64_t g = below(r, 10);
  c->gas = g < 5 ? (int64_t)(20 + below(r, 300)) : g < 8 ? (int64_t)below(r, 20)
                                                          : (int64_t)(1000 + below(r, 5000));
  uint64_t e = below(r, 10);
  c->entry_mode = e < 8 ? 0 : e == 8 ? 1 : 2;
  c->entry_pick = (uint32_t)rnd(r);
  for (unsigned p = 0; p < REGION_PAGES; p++) {
    uint64_t a = below(r, 100);
    c->page_acc[p] = a < 45 ? PVM_ACCESS_RW : a < 70 ? PVM_ACCESS_RO : PVM_ACCESS_NONE;
  }
  c->low_acc = chance(r, 20) ? PVM_ACCESS_RW : PVM_ACCESS_NONE;
  c->top_acc = chance(r, 20) ? PVM_ACCESS_RW : chance(r, 10) ? PVM_ACCESS_RO : PVM_ACCESS_NONE;
  c->mem_seed = rnd(r);
  c->action_seed = rnd(r);
  c->heap_top = HEAP_BASE + (uint32_t)below(r, 0x2000);
  c->heap_limit = c->heap_top + (uint32_t)below(r, 0x8000);
  return true;
oom:
  free(bind_at);
  return false;
}

static int build_blob(nub_pvm_profile profile, const gcase *c, uint8_t **blob, size_t *len,
                      nub_pvm_error *err) {
  nub_pvm_builder *b = nub_pvm_builder_new(profile);
  if (!b) return PVM_ERR_NOMEM;
  for (uint32_t l = 0; l < c->nlabels; l++) nub_pvm_builder_label(b);
  for (uint32_t i = 0; i < c->nitems; i++) {
    const gitem *it = &c->items[i];
    if (it->removed) continue;
    switch (it->kind) {
    case IT_BIND: nub_pvm_builder_bind(b, it->label); break;
    case IT_INSN: nub_pvm_builder_insn(b, (nub_pvm_op)it->op, it->ra, it->rb, it->rd, it->x, it->y); break;
    case IT_BRANCH: nub_pvm_builder_branch(b, (nub_pvm_op)it->op, it->ra, it->rb, it->x, it->label); break;
    case IT_BRANCH_ABS:
      nub_pvm_builder_branch_abs(b, (nub_pvm_op)it->op, it->ra, it->rb, it->x, it->target, NULL);
      break;
    case IT_RAW: nub_pvm_builder_raw(b, it->raw, it->nraw); break;
    }
  }
  for (uint32_t j = 0; j < c->njumps; j++) {
    if (c->jump_abs[j]) nub_pvm_builder_jump_entry_abs(b, c->jumps[j]);
    else nub_pvm_builder_jump_entry(b, c->jumps[j]);
  }
  int rc = nub_pvm_builder_finish(b, blob, len, err);
  nub_pvm_builder_free(b);
  return rc;
}

/* ---- running both engines ---- */

typedef struct side {
  const nub_pvm_engine *engine;
  nub_pvm_mem *mem;
  void *code;
  nub_pvm_vm vm;
  bool vm_ok;
} side;

/* Pages a case may have mapped: the fixed ones plus every page a fault
** exit asked for.  Comparing and clearing these (rather than scanning
** the whole 4 GiB access table) keeps a case cheap. */
#define MAX_EXTRA 16u

typedef struct fdiff {
  const fdiff_config *cfg;
  fdiff_stats *stats;
  side s[2];
  uint8_t *page_a, *page_b;
  uint32_t extra[MAX_EXTRA];     /* fault pages mapped by respond() */
  unsigned nextra;
} fdiff;

static uint32_t entry_pc(const gcase *c, const nub_pvm_program *prog) {
  const nub_pvm_blob *b = nub_pvm_program_blob(prog);
  if (c->entry_mode == 0 || b->code_len == 0) return 0;
  if (c->entry_mode == 2) return c->entry_pick % (b->code_len + 2);
  for (uint32_t k = 0; k < b->code_len; k++) {
    uint32_t pc = (c->entry_pick + k) % b->code_len;
    if (nub_pvm_blob_is_start(b, pc)) return pc;
  }
  return 0;
}

/* The fixed span: the low page, the region and the heap. */
#define SPAN_START LOW_PAGE
#define SPAN_END   (HEAP_BASE + 0x2000u + 0x8000u + PVM_PAGE_SIZE)

/* Apply acc to the pages [from, to) in maximal runs that need(page)
** selects: one system call per run, since each costs a TLB flush here. */
typedef bool (*page_pred)(const nub_pvm_mem *mem, const void *ud, uint32_t page);

static int apply_runs(nub_pvm_mem *mem, uint64_t from, uint64_t to, page_pred need, const void *ud,
                      nub_pvm_access acc, bool protect, nub_pvm_error *err) {
  for (uint64_t at = from; at < to;) {
    if (!need(mem, ud, (uint32_t)at)) { at += PVM_PAGE_SIZE; continue; }
    uint64_t end = at + PVM_PAGE_SIZE;
    while (end < to && need(mem, ud, (uint32_t)end)) end += PVM_PAGE_SIZE;
    int rc = protect ? nub_pvm_mem_protect(mem, (uint32_t)at, end - at, acc, err)
                     : nub_pvm_mem_map(mem, (uint32_t)at, end - at, acc, err);
    if (rc) return rc;
    at = end;
  }
  return PVM_OK;
}

static bool is_mapped(const nub_pvm_mem *mem, const void *ud, uint32_t page) {
  (void)ud;
  return nub_pvm_mem_access(mem, page) != PVM_ACCESS_NONE;
}

/* Desired access of a page in the fixed span. */
static nub_pvm_access planned(const gcase *c, uint32_t page) {
  if (page == LOW_PAGE) return (nub_pvm_access)c->low_acc;
  if (page >= REGION_BASE && page < REGION_BASE + REGION_PAGES * PVM_PAGE_SIZE)
    return (nub_pvm_access)c->page_acc[(page - REGION_BASE) / PVM_PAGE_SIZE];
  return PVM_ACCESS_NONE;
}
static bool wants_access(const nub_pvm_mem *mem, const void *ud, uint32_t page) {
  (void)mem;
  return planned(ud, page) != PVM_ACCESS_NONE;
}
static bool wants_ro(const nub_pvm_mem *mem, const void *ud, uint32_t page) {
  (void)mem;
  return planned(ud, page) == PVM_ACCESS_RO;
}

/* Unmap (zero-filled, inaccessible) every page the last case mapped. */
static int clear_memory(const fdiff *f, nub_pvm_mem *mem, nub_pvm_error *err) {
  int rc;
  if ((rc = apply_runs(mem, SPAN_START, SPAN_END, is_mapped, NULL, PVM_ACCESS_NONE, false, err)) ||
      (rc = apply_runs(mem, TOP_PAGE, (uint64_t)TOP_PAGE + PVM_PAGE_SIZE, is_mapped, NULL,
                       PVM_ACCESS_NONE, false, err)))
    return rc;
  for (unsigned i = 0; i < f->nextra; i++)
    if (nub_pvm_mem_access(mem, f->extra[i]) != PVM_ACCESS_NONE &&
        (rc = nub_pvm_mem_map(mem, f->extra[i], PVM_PAGE_SIZE, PVM_ACCESS_NONE, err)))
      return rc;
  return PVM_OK;
}

/* Map the case's pages read-write, fill in bytes, then make the
** read-only ones read-only. */
static int map_memory(const fdiff *f, const gcase *c, nub_pvm_mem *mem, nub_pvm_error *err) {
  int rc;
  rng r = {c->mem_seed};
  if ((rc = clear_memory(f, mem, err)) ||
      (rc = apply_runs(mem, SPAN_START, SPAN_END, wants_access, c, PVM_ACCESS_RW, false, err)) ||
      (c->top_acc && (rc = nub_pvm_mem_map(mem, TOP_PAGE, PVM_PAGE_SIZE, PVM_ACCESS_RW, err))))
    return rc;
  for (unsigned k = 0; k < 6; k++) {
    uint8_t bytes[64];
    unsigned p = (unsigned)below(&r, REGION_PAGES);
    uint32_t len = 1 + (uint32_t)below(&r, sizeof bytes);
    uint32_t at = REGION_BASE + p * PVM_PAGE_SIZE + (uint32_t)below(&r, PVM_PAGE_SIZE - len);
    for (uint32_t i = 0; i < len; i++) bytes[i] = (uint8_t)rnd(&r);
    if (c->page_acc[p] && (rc = nub_pvm_mem_write(mem, at, bytes, len, err))) return rc;
  }
  if ((rc = apply_runs(mem, SPAN_START, SPAN_END, wants_ro, c, PVM_ACCESS_RO, true, err)) ||
      (c->top_acc == PVM_ACCESS_RO &&
       (rc = nub_pvm_mem_protect(mem, TOP_PAGE, PVM_PAGE_SIZE, PVM_ACCESS_RO, err))))
    return rc;
  nub_pvm_mem_set_heap(mem, c->heap_top, c->heap_limit);
  return PVM_OK;
}

static void side_release(side *sd) {
  if (sd->vm_ok) nub_pvm_vm_fini(&sd->vm);
  if (sd->code) sd->engine->release(sd->code);
  sd->vm_ok = false;
  sd->code = NULL;
}

static int side_setup(const fdiff *f, side *sd, const gcase *c, const nub_pvm_program *prog,
                      nub_pvm_error *err) {
  int rc;
  if ((rc = map_memory(f, c, sd->mem, err)) ||
      (rc = sd->engine->compile(prog, &sd->code, err)) ||
      (rc = nub_pvm_vm_init(&sd->vm, prog, sd->mem, sd->engine, sd->code, err)))
    return rc;
  sd->vm_ok = true;
  memcpy(sd->vm.regs, c->regs, sizeof c->regs);
  sd->vm.gas = c->gas;
  nub_pvm_vm_set_pc(&sd->vm, entry_pc(c, prog));
  return PVM_OK;
}

typedef struct range_list { uint32_t addr[64]; uint64_t len[64]; uint8_t acc[64]; unsigned n; bool full; } range_list;

static void collect_range(void *ud, uint32_t addr, uint64_t len, nub_pvm_access acc) {
  range_list *l = ud;
  if (l->n == 64) { l->full = true; return; }
  l->addr[l->n] = addr;
  l->len[l->n] = len;
  l->acc[l->n++] = (uint8_t)acc;
}

static bool same_page(fdiff *f, uint32_t at, char *why, size_t n) {
  nub_pvm_access a = nub_pvm_mem_access(f->s[0].mem, at), b = nub_pvm_mem_access(f->s[1].mem, at);
  if (a != b) {
    snprintf(why, n, "access of page 0x%x: %d vs %d", at, a, b);
    return false;
  }
  if (a == PVM_ACCESS_NONE) return true;
  nub_pvm_mem_read(f->s[0].mem, at, f->page_a, PVM_PAGE_SIZE, NULL);
  nub_pvm_mem_read(f->s[1].mem, at, f->page_b, PVM_PAGE_SIZE, NULL);
  if (!memcmp(f->page_a, f->page_b, PVM_PAGE_SIZE)) return true;
  for (unsigned k = 0;; k++)
    if (f->page_a[k] != f->page_b[k]) {
      snprintf(why, n, "memory[0x%x]: 0x%02x vs 0x%02x", at + k, f->page_a[k], f->page_b[k]);
      return false;
    }
}

/* Same number of mapped pages, and every page the case can reach has the
** same access and bytes. */
static bool same_memory(fdiff *f, char *why, size_t n) {
  uint32_t pa = nub_pvm_mem_mapped_pages(f->s[0].mem), pb = nub_pvm_mem_mapped_pages(f->s[1].mem);
  if (pa != pb) {
    snprintf(why, n, "%u mapped pages vs %u", pa, pb);
    return false;
  }
  for (uint32_t at = SPAN_START; at < SPAN_END; at += PVM_PAGE_SIZE)
    if (!same_page(f, at, why, n)) return false;
  if (!same_page(f, TOP_PAGE, why, n)) return false;
  for (unsigned i = 0; i < f->nextra; i++)
    if (!same_page(f, f->extra[i], why, n)) return false;
  return true;
}

static bool same_exit(fdiff *f, char *why, size_t n) {
  const nub_pvm_vm *a = &f->s[0].vm, *b = &f->s[1].vm;
  if (a->status != b->status) {
    snprintf(why, n, "status %s vs %s", nub_pvm_status_name(a->status), nub_pvm_status_name(b->status));
    return false;
  }
  if (a->pc != b->pc) { snprintf(why, n, "pc %u vs %u", a->pc, b->pc); return false; }
  if (a->gas != b->gas) {
    snprintf(why, n, "gas %lld vs %lld", (long long)a->gas, (long long)b->gas);
    return false;
  }
  for (int i = 0; i < PVM_REGS; i++)
    if (a->regs[i] != b->regs[i]) {
      snprintf(why, n, "r%d 0x%llx vs 0x%llx", i, (unsigned long long)a->regs[i],
               (unsigned long long)b->regs[i]);
      return false;
    }
  if ((a->status == PVM_HOST || a->status == PVM_FAULT) && a->exit_arg != b->exit_arg) {
    snprintf(why, n, "exit argument 0x%llx vs 0x%llx", (unsigned long long)a->exit_arg,
             (unsigned long long)b->exit_arg);
    return false;
  }
  if (a->status == PVM_HOST && a->next_pc != b->next_pc) {
    snprintf(why, n, "next pc %u vs %u", a->next_pc, b->next_pc);
    return false;
  }
  return same_memory(f, why, n);
}

/* The embedder's answer to an exit, applied identically to both sides.
** Returns false when execution is over. */
static bool respond(fdiff *f, rng *r, nub_pvm_status st) {
  uint64_t v = rnd(r), w = rnd(r);
  for (int k = 0; k < 2; k++) {
    nub_pvm_vm *vm = &f->s[k].vm;
    switch (st) {
    case PVM_HOST:
      vm->regs[7] = v;
      if (w & 1) vm->regs[w % PVM_REGS] = w;
      /* sometimes the embedder moves on elsewhere: a fresh entry, charged */
      if ((w >> 8) % 8 == 0)
        nub_pvm_vm_set_pc(vm, (w >> 16) & 1 ? vm->next_pc
                                       : (uint32_t)(v % (nub_pvm_program_blob(vm->prog)->code_len + 4)));
      break;
    case PVM_FAULT:
      if (k == 0 && f->nextra < MAX_EXTRA) f->extra[f->nextra++] = (uint32_t)vm->exit_arg;
      nub_pvm_mem_map(f->s[k].mem, (uint32_t)vm->exit_arg, PVM_PAGE_SIZE,
                  (w % 4) ? PVM_ACCESS_RW : PVM_ACCESS_RO, NULL);
      break;
    case PVM_OOG:
      vm->gas += (int64_t)(v % 400);
      break;
    default:
      return false;
    }
  }
  return true;
}

/* What the reproducer needs: the state before one run and the
** reference's result of it. */
typedef struct capture {
  unsigned run;                  /* which run to capture */
  bool taken;
  uint64_t regs[PVM_REGS];
  int64_t gas;
  uint32_t pc;
  nub_pvm_mem *before;               /* copy of the reference memory */
} capture;

static int copy_memory(nub_pvm_mem *from, nub_pvm_mem *to, uint8_t *page) {
  range_list l = {.n = 0};
  if (nub_pvm_mem_reset(to, NULL)) return -1;
  nub_pvm_mem_ranges(from, collect_range, &l);
  for (unsigned i = 0; i < l.n; i++) {
    if (nub_pvm_mem_map(to, l.addr[i], l.len[i], (nub_pvm_access)l.acc[i], NULL)) return -1;
    for (uint64_t off = 0; off < l.len[i]; off += PVM_PAGE_SIZE) {
      nub_pvm_mem_read(from, (uint32_t)(l.addr[i] + off), page, PVM_PAGE_SIZE, NULL);
      nub_pvm_mem_write(to, (uint32_t)(l.addr[i] + off), page, PVM_PAGE_SIZE, NULL);
    }
  }
  return 0;
}

/* The reference's state before a run, as a fresh entry: a resumption
** without charge becomes an entry whose charge is added to the gas. */
static void take_capture(fdiff *f, capture *cap) {
  const nub_pvm_vm *vm = &f->s[0].vm;
  memcpy(cap->regs, vm->regs, sizeof cap->regs);
  cap->gas = vm->gas;
  cap->pc = vm->resume == PVM_RESUME_NEXT ? vm->next_pc : vm->pc;
  if (vm->resume == PVM_RESUME_NEXT || vm->resume == PVM_RESUME_RETRY)
    cap->gas += nub_pvm_program_entry_cost(vm->prog, cap->pc);
  cap->taken = copy_memory(f->s[0].mem, cap->before, f->page_a) == 0;
}

/* Run a case on both engines.  0: all exits agreed; 1: divergence (why,
** *at_run); -1: setup failed on both (why). */
static int play(fdiff *f, const gcase *c, const uint8_t *blob, size_t len, char *why, size_t n,
                unsigned *at_run, capture *cap, bool count) {
  nub_pvm_program *prog = NULL;
  nub_pvm_error err[2];
  int rc[2], result = 0;
  rng r = {c->action_seed};
  *at_run = 0;
  if (nub_pvm_program_load(f->cfg->profile, blob, len, &prog, &err[0])) {
    snprintf(why, n, "generated program does not load: %s", err[0].msg);
    return -1;
  }
  for (int k = 0; k < 2; k++) rc[k] = side_setup(f, &f->s[k], c, prog, &err[k]);
  f->nextra = 0;
  if (rc[0] || rc[1]) {
    if (rc[0] && rc[1]) { snprintf(why, n, "setup: %s", err[0].msg); result = -1; }
    else { snprintf(why, n, "setup fails only on %s: %s", f->s[rc[1] ? 1 : 0].engine->name,
                    err[rc[1] ? 1 : 0].msg); result = 1; }
    goto out;
  }
  for (unsigned run = 0; run < MAX_EXITS; run++) {
    if (cap && cap->run == run) take_capture(f, cap);
    int64_t gas = f->s[0].vm.gas;
    nub_pvm_status st = nub_pvm_vm_run(&f->s[0].vm);
    nub_pvm_vm_run(&f->s[1].vm);
    if (count) {
      f->stats->runs++;
      f->stats->exits[st]++;
      f->stats->gas_used += (uint64_t)(gas - f->s[0].vm.gas);
    }
    if (!same_exit(f, why, n)) {
      *at_run = run;
      result = 1;
      break;
    }
    if (!respond(f, &r, st)) break;
  }
out:
  for (int k = 0; k < 2; k++) side_release(&f->s[k]);
  nub_pvm_program_free(prog);
  return result;
}

/* ---- reporting ---- */

static void json_u64s(FILE *o, const uint64_t *v, unsigned n) {
  fputc('[', o);
  for (unsigned i = 0; i < n; i++) fprintf(o, "%s%" PRIu64, i ? ", " : "", v[i]);
  fputc(']', o);
}

static void json_bytes(FILE *o, const uint8_t *v, size_t n) {
  fputc('[', o);
  for (size_t i = 0; i < n; i++) fprintf(o, "%s%u", i ? ", " : "", v[i]);
  fputc(']', o);
}

/* Non-zero bytes of the pages in l, as {address, contents} chunks. */
static void json_memory(FILE *o, nub_pvm_mem *mem, const range_list *l, uint8_t *page) {
  bool first = true;
  fputc('[', o);
  for (unsigned i = 0; i < l->n; i++)
    for (uint64_t off = 0; off < l->len[i]; off += PVM_PAGE_SIZE) {
      uint32_t at = (uint32_t)(l->addr[i] + off);
      nub_pvm_mem_read(mem, at, page, PVM_PAGE_SIZE, NULL);
      for (uint32_t k = 0; k < PVM_PAGE_SIZE;) {
        if (!page[k]) { k++; continue; }
        uint32_t end = k;
        while (end < PVM_PAGE_SIZE && page[end]) end++;
        fprintf(o, "%s{\"address\": %u, \"contents\": ", first ? "" : ", ", at + k);
        json_bytes(o, page + k, end - k);
        fputc('}', o);
        first = false;
        k = end;
      }
    }
  fputc(']', o);
}

/* The reproducer: the captured state, run once on the reference for the
** expected values (this uses up cap->before). */
static void write_vector(FILE *o, fdiff *f, const char *name, const uint8_t *blob, size_t len,
                         const capture *cap) {
  range_list l = {.n = 0};
  nub_pvm_program *prog = NULL;
  void *code = NULL;
  nub_pvm_vm vm;
  nub_pvm_error err;
  nub_pvm_mem_ranges(cap->before, collect_range, &l);
  fprintf(o, "{\n  \"name\": \"%s\",\n  \"initial-regs\": ", name);
  json_u64s(o, cap->regs, PVM_REGS);
  fprintf(o, ",\n  \"initial-pc\": %u,\n  \"initial-page-map\": [", cap->pc);
  for (unsigned i = 0; i < l.n; i++)
    fprintf(o, "%s{\"address\": %u, \"length\": %" PRIu64 ", \"is-writable\": %s}", i ? ", " : "",
            l.addr[i], l.len[i], l.acc[i] == PVM_ACCESS_RW ? "true" : "false");
  fprintf(o, "],\n  \"initial-memory\": ");
  json_memory(o, cap->before, &l, f->page_a);
  fprintf(o, ",\n  \"initial-gas\": %lld,\n  \"program\": ", (long long)cap->gas);
  json_bytes(o, blob, len);
  if (nub_pvm_program_load(f->cfg->profile, blob, len, &prog, &err) ||
      f->cfg->ref->compile(prog, &code, &err) ||
      nub_pvm_vm_init(&vm, prog, cap->before, f->cfg->ref, code, &err)) {
    fprintf(o, "\n}\n");
    if (code) f->cfg->ref->release(code);
    nub_pvm_program_free(prog);
    return;
  }
  memcpy(vm.regs, cap->regs, sizeof vm.regs);
  vm.gas = cap->gas;
  nub_pvm_vm_set_pc(&vm, cap->pc);
  nub_pvm_status st = nub_pvm_vm_run(&vm);
  static const char *names[] = {"halt", "panic", "out-of-gas", "page-fault", "host"};
  fprintf(o, ",\n  \"expected-status\": \"%s\",\n  \"expected-regs\": ", names[st]);
  json_u64s(o, vm.regs, PVM_REGS);
  fprintf(o, ",\n  \"expected-pc\": %u,\n  \"expected-memory\": ", vm.pc);
  json_memory(o, cap->before, &l, f->page_a);
  fprintf(o, ",\n  \"expected-gas\": %lld", (long long)vm.gas);
  if (st == PVM_FAULT) fprintf(o, ",\n  \"expected-page-fault-address\": %" PRIu64, vm.exit_arg);
  if (st == PVM_HOST) fprintf(o, ",\n  \"expected-host-call\": %" PRIu64, vm.exit_arg);
  fprintf(o, "\n}\n");
  nub_pvm_vm_fini(&vm);
  if (code) f->cfg->ref->release(code);
  nub_pvm_program_free(prog);
}

/* Remove instructions while the divergence stays. */
static void shrink(fdiff *f, gcase *c) {
  char why[256];
  unsigned at;
  bool progress = true;
  while (progress) {
    progress = false;
    for (uint32_t i = c->nitems; i-- > 0;) {
      gitem *it = &c->items[i];
      if (it->kind == IT_BIND || it->removed) continue;
      it->removed = true;
      uint8_t *blob = NULL;
      size_t len;
      bool keep = false;
      if (build_blob(f->cfg->profile, c, &blob, &len, NULL) == PVM_OK)
        keep = play(f, c, blob, len, why, sizeof why, &at, NULL, false) == 1;
      free(blob);
      if (keep) progress = true;
      else it->removed = false;
    }
  }
}

static void report(fdiff *f, gcase *c, uint64_t index) {
  FILE *o = f->cfg->out;
  char why[256], name[96];
  unsigned at;
  uint8_t *blob = NULL;
  size_t len;
  uint32_t before = 0, after = 0;
  for (uint32_t i = 0; i < c->nitems; i++) before += c->items[i].kind != IT_BIND;
  shrink(f, c);
  for (uint32_t i = 0; i < c->nitems; i++) after += c->items[i].kind != IT_BIND && !c->items[i].removed;
  if (build_blob(f->cfg->profile, c, &blob, &len, NULL)) return;
  play(f, c, blob, len, why, sizeof why, &at, NULL, false);
  capture cap = {.run = at};
  if (nub_pvm_mem_new(&cap.before, NULL)) { free(blob); return; }
  play(f, c, blob, len, why, sizeof why, &at, &cap, false);
  snprintf(name, sizeof name, "fuzz_diff_s%" PRIu64 "_p%" PRIu64, f->cfg->seed, index);
  fprintf(o, "DIVERGENCE in program %" PRIu64 " (profile %s, seed %" PRIu64 ") at run %u (%s vs %s): %s\n"
          "shrunk from %u to %u instructions; reproducer (state before that run, %s):\n",
          index, nub_pvm_profile_name(f->cfg->profile), f->cfg->seed, at, f->cfg->ref->name,
          f->cfg->test->name, why, before, after, nub_pvm_profile_name(f->cfg->profile));
  char *text = NULL;
  size_t text_len = 0;
  FILE *mf = cap.taken ? open_memstream(&text, &text_len) : NULL;
  if (mf) {
    write_vector(mf, f, name, blob, len, &cap);
    fclose(mf);
    fputs(text, o);
  }
  if (text && f->cfg->save_dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", f->cfg->save_dir, name);
    FILE *fp = fopen(path, "w");
    if (fp && fputs(text, fp) >= 0 && fclose(fp) == 0) fprintf(o, "saved %s\n", path);
    else fprintf(o, "cannot write %s: %s\n", path, strerror(errno));
  }
  free(text);
  nub_pvm_mem_free(cap.before);
  free(blob);
}

/* ---- driver ---- */

static void note_opcodes(fdiff_stats *s, nub_pvm_profile profile, const gcase *c) {
  uint8_t seen[256] = {0};
  for (uint32_t i = 0; i < c->nitems; i++) {
    const gitem *it = &c->items[i];
    if (it->kind == IT_INSN || it->kind == IT_BRANCH || it->kind == IT_BRANCH_ABS) {
      int b = nub_pvm_opcode_of(profile, (nub_pvm_op)it->op);
      if (b >= 0) seen[b] = 1;
    }
  }
  for (unsigned b = 0; b < 256; b++) s->opcode_programs[b] += seen[b];
}

void fdiff_coverage(const fdiff_stats *stats, nub_pvm_profile profile, unsigned *covered,
                    unsigned *total) {
  const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
  *covered = *total = 0;
  for (unsigned b = 0; isa && b < 256; b++)
    if (isa[b].name) ++*total, *covered += stats->opcode_programs[b] > 0;
}

int fdiff_run(const fdiff_config *cfg, fdiff_stats *stats) {
  fdiff f = {.cfg = cfg, .stats = stats};
  gcase c = {0};
  int result = 0;
  char why[256];
  unsigned at, max_reports = cfg->max_reports ? cfg->max_reports : 1;
  memset(stats, 0, sizeof *stats);
  if (!nub_pvm_isa(cfg->profile)) {
    fprintf(cfg->out, "fuzz-diff: unknown ISA profile %d\n", (int)cfg->profile);
    return -1;
  }
  f.s[0].engine = cfg->ref;
  f.s[1].engine = cfg->test;
  f.page_a = malloc(PVM_PAGE_SIZE);
  f.page_b = malloc(PVM_PAGE_SIZE);
  if (!f.page_a || !f.page_b || nub_pvm_mem_new(&f.s[0].mem, NULL) || nub_pvm_mem_new(&f.s[1].mem, NULL)) {
    fprintf(cfg->out, "fuzz-diff: cannot allocate guest memory\n");
    result = -1;
    goto out;
  }
  for (uint64_t i = 0; i < cfg->count; i++) {
    rng r = {cfg->seed * 0x100000001B3ull ^ i};
    uint8_t *blob = NULL;
    size_t len;
    nub_pvm_error err;
    if (!gen_case(&r, cfg->profile, cfg->max_insns < 4 ? 4 : cfg->max_insns, &c)) {
      fprintf(cfg->out, "fuzz-diff: out of memory\n");
      result = -1;
      break;
    }
    if (build_blob(cfg->profile, &c, &blob, &len, &err)) {
      fprintf(cfg->out, "fuzz-diff: program %" PRIu64 ": the generator made an invalid program: %s\n",
              i, err.msg);
      result = -1;
      break;
    }
    note_opcodes(stats, cfg->profile, &c);
    stats->programs++;
    int rc = play(&f, &c, blob, len, why, sizeof why, &at, NULL, true);
    free(blob);
    if (rc < 0) {
      fprintf(cfg->out, "fuzz-diff: program %" PRIu64 ": %s\n", i, why);
      result = -1;
      break;
    }
    if (rc == 1) {
      stats->divergences++;
      result = 1;
      report(&f, &c, i);
      if (stats->divergences >= max_reports) break;
    }
  }
out:
  free(c.items);
  nub_pvm_mem_free(f.s[0].mem);
  nub_pvm_mem_free(f.s[1].mem);
  free(f.page_a);
  free(f.page_b);
  return result;
}
