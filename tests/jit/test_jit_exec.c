/*
** The JIT's code choices for speed, each against the interpreter at the
** edge values a wrong choice would get wrong: guest addresses computed in
** the memory operand (32-bit wrap, high register bits, sign of the
** offset, page and 2^32 crossings, faults), in both code forms (FSGSBASE:
** gs:[base32 + disp]; without: ecx, then [r15 + rcx]); register-only
** rewrites (32-bit shifts whose sign extension is elided or folded,
** min/max, or_inv, xnor, neg_add_imm) under every aliasing of their
** operands, at sign bits and 32-bit boundaries; dynamic jumps through
** the self-relative table (every slot, invalid targets, odd addresses,
** past the end, the halt address, 32-bit wrap).  Every run compares
** status, pc, gas, registers, the exit argument and the mapped memory.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jit/jit_internal.h"
#include "jit_test_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct op { nub_pvm_op op; uint8_t ra, rb, rd; uint64_t x, y; } op;

/* ops, then a halt through r5 (which the cases leave alone). */
static nub_pvm_program *build(const op *ops, size_t n) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  for (size_t i = 0; i < n; i++)
    nub_pvm_builder_insn(b, ops[i].op, ops[i].ra, ops[i].rb, ops[i].rd, ops[i].x, ops[i].y);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  return jt_finish_gp07(b);
}

/* The guest pages of every run: read-write pages at the bottom of the
** accessible range, around 2^31 and at the top of 2^32, one read-only,
** each filled with a pattern so that every load reads something distinct. */
static const struct { uint32_t at; nub_pvm_access acc; } pages[] = {
  {0x10000, PVM_ACCESS_RW}, {0x20000, PVM_ACCESS_RO}, {0x7FFFF000, PVM_ACCESS_RW},
  {0x80000000, PVM_ACCESS_RW}, {0xFFFFF000, PVM_ACCESS_RW},
};
#define NPAGES ARRAY_LEN(pages)

typedef struct outcome {
  nub_pvm_status status;
  uint32_t pc;
  int64_t gas;
  uint64_t exit_arg;
  uint64_t regs[PVM_REGS];
  uint8_t mem[NPAGES][PVM_PAGE_SIZE];
} outcome;

static nub_pvm_mem *mem;
static bool with_pages = true;             /* false: ALU cases, no memory needed */

static void run(const nub_pvm_engine *e, const nub_pvm_program *prog, void *code,
                const uint64_t *regs, int64_t gas, outcome *o) {
  nub_pvm_error err;
  nub_pvm_vm vm;
  assert_int_equal(nub_pvm_mem_reset(mem, &err), PVM_OK);
  for (size_t p = 0; p < NPAGES && with_pages; p++) {
    uint8_t fill[PVM_PAGE_SIZE];
    for (uint32_t i = 0; i < PVM_PAGE_SIZE; i++) fill[i] = (uint8_t)(i * 7 + 0x81 + p * 16);
    assert_int_equal(nub_pvm_mem_map(mem, pages[p].at, PVM_PAGE_SIZE, pages[p].acc, &err), PVM_OK);
    assert_int_equal(nub_pvm_mem_write(mem, pages[p].at, fill, PVM_PAGE_SIZE, &err), PVM_OK);
  }
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, e, code, &err), PVM_OK);
  memcpy(vm.regs, regs, sizeof vm.regs);
  vm.gas = gas;
  o->status = nub_pvm_vm_run(&vm);
  o->pc = vm.pc;
  o->gas = vm.gas;
  o->exit_arg = o->status == PVM_FAULT || o->status == PVM_HOST ? vm.exit_arg : 0;
  memcpy(o->regs, vm.regs, sizeof o->regs);
  nub_pvm_vm_fini(&vm);
  for (size_t p = 0; p < NPAGES && with_pages; p++)
    assert_int_equal(nub_pvm_mem_read(mem, pages[p].at, o->mem[p], PVM_PAGE_SIZE, &err), PVM_OK);
}

static void same(const outcome *a, const outcome *b, const char *what) {
  if (a->status != b->status || a->pc != b->pc || a->gas != b->gas || a->exit_arg != b->exit_arg)
    fail_msg("%s: interp %s pc %u gas %lld arg 0x%llx, jit %s pc %u gas %lld arg 0x%llx", what,
             nub_pvm_status_name(a->status), a->pc, (long long)a->gas,
             (unsigned long long)a->exit_arg, nub_pvm_status_name(b->status), b->pc,
             (long long)b->gas, (unsigned long long)b->exit_arg);
  for (int i = 0; i < PVM_REGS; i++)
    if (a->regs[i] != b->regs[i])
      fail_msg("%s: r%d interp 0x%llx jit 0x%llx", what, i, (unsigned long long)a->regs[i],
               (unsigned long long)b->regs[i]);
  for (size_t p = 0; p < NPAGES; p++)
    if (memcmp(a->mem[p], b->mem[p], PVM_PAGE_SIZE))
      fail_msg("%s: page 0x%x differs", what, pages[p].at);
}

/* The JIT forms this CPU can run: without FSGSBASE always, with it when
** the kernel allows wrgsbase; both with merged gas checks, as
** nub_jit_compile makes them. */
static unsigned jit_forms(uint32_t forms[2]) {
  unsigned n = 0;
  forms[n++] = (nub_jit_cpu_features() & ~JIT_CPU_FSGSBASE) | JIT_GAS_MERGE;
  if (nub_jit_cpu_features() & JIT_CPU_FSGSBASE) forms[n++] = nub_jit_cpu_features() | JIT_GAS_MERGE;
  return n;
}

/* Run prog on the interpreter and on each JIT form from each of nregs
** register files; returns the status of the last run. */
static nub_pvm_status compare_many(const nub_pvm_program *prog, const uint64_t (*regs)[PVM_REGS],
                                   size_t nregs, int64_t gas, const char *what) {
  static outcome want, got;
  uint32_t forms[2];
  unsigned n = jit_forms(forms);
  nub_jit_code *code[2];
  nub_pvm_error err;
  /* cmocka puts its own SIGSEGV handler in place for every test */
  assert_int_equal(nub_jit_thread_prepare(&err), PVM_OK);
  for (unsigned f = 0; f < n; f++)
    assert_int_equal(jit_compile_features(prog, forms[f], &code[f], &err), PVM_OK);
  for (size_t r = 0; r < nregs; r++) {
    run(&nub_pvm_engine_interp, prog, NULL, regs[r], gas, &want);
    for (unsigned f = 0; f < n; f++) {
      char label[200];
      run(&nub_jit_engine, prog, code[f], regs[r], gas, &got);
      snprintf(label, sizeof label, "%s, registers %zu (%s)", what, r,
               forms[f] & JIT_CPU_FSGSBASE ? "gs:[base32]" : "[r15 + rcx]");
      same(&want, &got, label);
    }
  }
  for (unsigned f = 0; f < n; f++) nub_jit_code_free(code[f]);
  return want.status;
}

static nub_pvm_status compare(const nub_pvm_program *prog, const uint64_t *regs, int64_t gas,
                              const char *what) {
  return compare_many(prog, (const uint64_t(*)[PVM_REGS])regs, 1, gas, what);
}

static uint64_t sext32(uint32_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* ---- guest addresses ---- */

/* A store of an immediate through a base register (REG_IMM_IMM: the base
** is rA, the value the second immediate). */
static bool store_imm_ind(nub_pvm_op o) {
  return o == PVM_OP_STORE_IMM_IND_U8 || o == PVM_OP_STORE_IMM_IND_U16 ||
         o == PVM_OP_STORE_IMM_IND_U32 || o == PVM_OP_STORE_IMM_IND_U64;
}

/* Base register values and offsets whose sum mod 2^32 lands in each
** interesting place; the register's upper half must not count, nor the
** offset's sign extend into it. */
static const struct { uint64_t base; uint32_t off; } sums[] = {
  {0x10000, 8},                       /* plain */
  {0x100010000ull, 0x10},             /* upper half set: 0x10010 */
  {0xFFFFFFFF00010000ull, 0},         /* negative 64-bit value, 0x10000 */
  {0xFFFFFFF0, 0x10010},              /* wraps to 0x10000 */
  {0x10008, 0xFFFFFFF8},              /* offset -8: 0x10000 */
  {0x10000, 0xFFFFFFF8},              /* offset -8: 0xFFF8, below 0x10000: panic */
  {0x10FFC, 0},                       /* 8 bytes cross into an unmapped page */
  {0x7FFFFFF8, 0x10},                 /* across 2^31: 0x80000008 */
  {0x7FFFFFFC, 0},                    /* 8 bytes across 2^31: both pages mapped */
  {0, 0x80000000},                    /* offset 2^31, not -2^31 */
  {0x80000000, 0x80000000},           /* wraps to 0: panic */
  {0xFFFFFFF8, 0},                    /* the last 8 bytes */
  {0xFFFFFFFC, 0},                    /* 8 bytes across 2^32 */
  {0xFFFFFFFFFFFFFFFFull, 0},         /* 0xFFFFFFFF */
  {0x20004, 0},                       /* read-only page */
  {0x30000, 0x10},                    /* unmapped: fault */
};

/* Host registers of each encoding class as the base: rbx (r0), rbp (r3:
** no disp-less form), rax (r7), r12 (r10: needs a SIB), r13 (r11). */
static const uint8_t bases[] = {0, 3, 7, 10, 11};

static void indirect_accesses_wrap_modulo_2_32(void **state) {
  static const nub_pvm_op ops[] = {
    PVM_OP_LOAD_IND_U8, PVM_OP_LOAD_IND_I8, PVM_OP_LOAD_IND_U16, PVM_OP_LOAD_IND_I16,
    PVM_OP_LOAD_IND_U32, PVM_OP_LOAD_IND_I32, PVM_OP_LOAD_IND_U64, PVM_OP_STORE_IND_U8,
    PVM_OP_STORE_IND_U16, PVM_OP_STORE_IND_U32, PVM_OP_STORE_IND_U64, PVM_OP_STORE_IMM_IND_U8,
    PVM_OP_STORE_IMM_IND_U16, PVM_OP_STORE_IMM_IND_U32, PVM_OP_STORE_IMM_IND_U64,
  };
  unsigned runs = 0, statuses[PVM_HOST + 1] = {0};
  (void)state;
  for (size_t o = 0; o < ARRAY_LEN(ops); o++)
    for (size_t b = 0; b < ARRAY_LEN(bases); b++)
      for (int in_place = 0; in_place < 2; in_place++) {   /* value/destination = base */
        uint8_t base = bases[b], val = in_place ? base : 1;
        bool imm_store = store_imm_ind(ops[o]);
        if (imm_store && in_place) continue;
        for (size_t s = 0; s < ARRAY_LEN(sums); s++) {
          op insn = imm_store ? (op){ops[o], .ra = base, .x = sext32(sums[s].off), .y = sext32(0xA5C3E1F7)}
                              : (op){ops[o], .ra = val, .rb = base, .x = sext32(sums[s].off)};
          nub_pvm_program *prog = build(&insn, 1);
          uint64_t regs[PVM_REGS];
          for (int i = 0; i < PVM_REGS; i++) regs[i] = 0xF1E2D3C4B5A69788ull + (uint64_t)i;
          regs[base] = sums[s].base;
          char what[128];
          snprintf(what, sizeof what, "%s r%u, base r%u = 0x%llx, offset 0x%x",
                   nub_pvm_isa(PVM_PROFILE_GP07)[nub_pvm_opcode_of(PVM_PROFILE_GP07, ops[o])].name,
                   val, base, (unsigned long long)sums[s].base, sums[s].off);
          statuses[compare(prog, regs, 10, what)]++;
          nub_pvm_program_free(prog);
          runs++;
        }
      }
  /* every outcome the table aims at happened */
  assert_true(statuses[PVM_HALT] > 0 && statuses[PVM_PANIC] > 0 && statuses[PVM_FAULT] > 0);
  print_message("%u runs: %u halt, %u panic, %u page fault\n", runs, statuses[PVM_HALT],
                statuses[PVM_PANIC], statuses[PVM_FAULT]);
}

static void absolute_accesses_are_unsigned(void **state) {
  static const nub_pvm_op ops[] = {
    PVM_OP_LOAD_U8, PVM_OP_LOAD_I16, PVM_OP_LOAD_I32, PVM_OP_LOAD_U64, PVM_OP_STORE_U8,
    PVM_OP_STORE_U32, PVM_OP_STORE_U64, PVM_OP_STORE_IMM_U16, PVM_OP_STORE_IMM_U64,
  };
  static const uint32_t addrs[] = {0x10008, 0x7FFFFFFC, 0x80000000, 0x80000FF8, 0xFFFFFFF8,
                                   0xFFFFFFFC, 0x20000, 0x30000, 0x8000};
  unsigned runs = 0;
  (void)state;
  for (size_t o = 0; o < ARRAY_LEN(ops); o++)
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
      bool imm_store = ops[o] == PVM_OP_STORE_IMM_U16 || ops[o] == PVM_OP_STORE_IMM_U64;
      op insn = {ops[o], .ra = 7, .x = sext32(addrs[i]), .y = imm_store ? sext32(0xFFFF8001u) : 0};
      nub_pvm_program *prog = build(&insn, 1);
      uint64_t regs[PVM_REGS] = {0};
      regs[7] = 0x8877665544332211ull;
      char what[96];
      snprintf(what, sizeof what, "%s at 0x%x",
               nub_pvm_isa(PVM_PROFILE_GP07)[nub_pvm_opcode_of(PVM_PROFILE_GP07, ops[o])].name,
               addrs[i]);
      compare(prog, regs, 10, what);
      nub_pvm_program_free(prog);
      runs++;
    }
  print_message("%u runs\n", runs);
}


/* ---- register-only rewrites ---- */

static const uint64_t edge_values[] = {
  0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x8000000000000000ull, UINT64_MAX,
  0xFFFFFFFF80000000ull, 0x123456789ABCDEF0ull,
};
#define NEDGE ARRAY_LEN(edge_values)
/* guest registers in rax, rdx, rbx and r12 (and r5 for halting) */
static const uint8_t alias_regs[] = {7, 8, 0, 10};
#define NALIAS ARRAY_LEN(alias_regs)

static const char *op_name(nub_pvm_op which) {
  return nub_pvm_isa(PVM_PROFILE_GP07)[nub_pvm_opcode_of(PVM_PROFILE_GP07, which)].name;
}

static void three_register_rewrites_under_aliasing(void **state) {
  static const nub_pvm_op ops[] = {
    PVM_OP_MAX, PVM_OP_MAX_U, PVM_OP_MIN, PVM_OP_MIN_U, PVM_OP_OR_INV, PVM_OP_XNOR,
  };
  static uint64_t regs[NEDGE * NEDGE][PVM_REGS];
  unsigned programs = 0;
  (void)state;
  with_pages = false;
  for (size_t o = 0; o < ARRAY_LEN(ops); o++)
    for (size_t d = 0; d < NALIAS; d++)
      for (size_t x = 0; x < NALIAS; x++)
        for (size_t y = 0; y < NALIAS; y++) {
          op insn = {ops[o], .ra = alias_regs[x], .rb = alias_regs[y], .rd = alias_regs[d]};
          nub_pvm_program *prog = build(&insn, 1);
          for (size_t i = 0; i < NEDGE * NEDGE; i++) {
            for (int r = 0; r < PVM_REGS; r++) regs[i][r] = 0x0101010101010101ull * (uint64_t)(r + 1);
            regs[i][alias_regs[x]] = edge_values[i / NEDGE];
            regs[i][alias_regs[y]] = edge_values[i % NEDGE];   /* wins when x = y */
          }
          char what[96];
          snprintf(what, sizeof what, "%s r%u, r%u -> r%u", op_name(ops[o]), alias_regs[x],
                   alias_regs[y], alias_regs[d]);
          compare_many(prog, (const uint64_t(*)[PVM_REGS])regs, NEDGE * NEDGE, 10, what);
          nub_pvm_program_free(prog);
          programs++;
        }
  with_pages = true;
  print_message("%u programs, %zu register files each\n", programs, NEDGE * NEDGE);
}

static void register_immediate_rewrites_under_aliasing(void **state) {
  static const nub_pvm_op ops[] = {
    PVM_OP_SHLO_R_IMM_32, PVM_OP_SHAR_R_IMM_32, PVM_OP_SHLO_L_IMM_32, PVM_OP_NEG_ADD_IMM_32,
    PVM_OP_NEG_ADD_IMM_64,
  };
  /* shift counts 0, 1, 31 and past the width (taken mod 32); the
  ** immediates as nu_X, so 0x80000000 reads as its sign extension */
  static const uint32_t imms[] = {0, 1, 17, 31, 32, 33, 63, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
  static uint64_t regs[NEDGE][PVM_REGS];
  unsigned programs = 0;
  (void)state;
  with_pages = false;
  for (size_t o = 0; o < ARRAY_LEN(ops); o++)
    for (size_t d = 0; d < NALIAS; d++)
      for (size_t x = 0; x < NALIAS; x++)
        for (size_t i = 0; i < ARRAY_LEN(imms); i++) {
          op insn = {ops[o], .ra = alias_regs[d], .rb = alias_regs[x], .x = sext32(imms[i])};
          nub_pvm_program *prog = build(&insn, 1);
          for (size_t v = 0; v < NEDGE; v++) {
            for (int r = 0; r < PVM_REGS; r++) regs[v][r] = 0x0101010101010101ull * (uint64_t)(r + 1);
            regs[v][alias_regs[x]] = edge_values[v];
          }
          char what[96];
          snprintf(what, sizeof what, "%s r%u, r%u, 0x%x", op_name(ops[o]), alias_regs[d],
                   alias_regs[x], imms[i]);
          compare_many(prog, (const uint64_t(*)[PVM_REGS])regs, NEDGE, 10, what);
          nub_pvm_program_free(prog);
          programs++;
        }
  with_pages = true;
  print_message("%u programs, %zu register files each\n", programs, NEDGE);
}

/* ---- dynamic jumps ---- */

/* jump_ind (or load_imm_jump_ind) r2 + off through a table of block
** starts, one instruction that starts no block and a repeat; each target
** leaves its mark in r1. */
static nub_pvm_program *djump_program(nub_pvm_op jump, uint32_t off) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint32_t l1 = nub_pvm_builder_label(b), l2 = nub_pvm_builder_label(b),
           mid = nub_pvm_builder_label(b);
  if (jump == PVM_OP_JUMP_IND) nub_pvm_builder_insn(b, jump, 2, 0, 0, sext32(off), 0);
  else nub_pvm_builder_insn(b, jump, 2, 2, 0, 77, sext32(off));   /* address from the old r2 */
  nub_pvm_builder_bind(b, l1);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 1, 0, 0, 11, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, l2);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 1, 0, 0, 22, 0);
  nub_pvm_builder_bind(b, mid);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 1, 0, 0, 33, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  nub_pvm_builder_jump_entry(b, l1);
  nub_pvm_builder_jump_entry(b, l2);
  nub_pvm_builder_jump_entry(b, mid);
  nub_pvm_builder_jump_entry(b, l1);
  return jt_finish_gp07(b);
}

static void dynamic_jumps_through_every_slot(void **state) {
  static const uint64_t targets[] = {
    0, 1, 2, 3, 4, 6, 8, 10, 12, 0x80000000, 0xFFFFFFFE, PVM_HALT_ADDRESS,
    PVM_HALT_ADDRESS - 2, 0x100000002ull, 0xFFFFFFFFFFFF0000ull, 0xFFFFFFFF00000004ull,
  };
  static const uint32_t offs[] = {0, 2, 0xFFFFFFFE, 0x10000};
  static const nub_pvm_op ops[] = {PVM_OP_JUMP_IND, PVM_OP_LOAD_IMM_JUMP_IND};
  static uint64_t regs[ARRAY_LEN(targets)][PVM_REGS];
  unsigned statuses[PVM_HOST + 1] = {0};
  (void)state;
  with_pages = false;
  for (size_t v = 0; v < ARRAY_LEN(targets); v++) {
    for (int r = 0; r < PVM_REGS; r++) regs[v][r] = 0x0101010101010101ull * (uint64_t)(r + 1);
    regs[v][2] = targets[v];
  }
  for (size_t o = 0; o < ARRAY_LEN(ops); o++)
    for (size_t i = 0; i < ARRAY_LEN(offs); i++) {
      nub_pvm_program *prog = djump_program(ops[o], offs[i]);
      char what[96];
      snprintf(what, sizeof what, "%s r2 + 0x%x", op_name(ops[o]), offs[i]);
      for (size_t v = 0; v < ARRAY_LEN(targets); v++)
        statuses[compare_many(prog, (const uint64_t(*)[PVM_REGS])&regs[v], 1, 100, what)]++;
      nub_pvm_program_free(prog);
    }
  with_pages = true;
  /* valid slots halt after their target, the rest panic or halt directly */
  assert_true(statuses[PVM_HALT] > 0 && statuses[PVM_PANIC] > 0);
  print_message("%u halt, %u panic\n", statuses[PVM_HALT], statuses[PVM_PANIC]);
}

/* ---- merged gas checks (compile.c, gas_pair) ----
**
** A loop like bench sort's inner one: P, then A (a load, an optional host
** call, a count, a forward branch out, or a fallthrough) and B, its
** fall-through (a store, an optional host call, the back edge to A), then
** two halting exits C and T; D jumps through the table into B or A.  A
** and B get one merged check (unless A's branch goes to the loop's
** latch).  Every bitmask start is an entry, every gas
** budget from 0 past the whole run, each register row a path (the taken
** exit, a page fault or panic in A or in B, a dynamic jump into B or A);
** the exits are answered as fuzz-diff does (a host call continues, a
** fault maps the page, out-of-gas adds 2) and both engines must agree
** after every exit: out of gas at A, at B, with exactly A + B, A + B - 1,
** in the slow copy, and the gas left at each fault or host call. */
typedef struct merge_shape {
  const char *name;
  bool a_fallthrough;      /* A ends in fallthrough (no taken exit) */
  bool host_in_a, host_in_b;
  bool to_latch;           /* A's branch goes to the loop's latch L (B falls into L):
                              a "continue", as hot as the fall-through, so no merge */
  unsigned pairs;          /* merged checks the compile must make */
} merge_shape;

static nub_pvm_program *merge_program(const merge_shape *m, nub_pvm_profile prof) {
  nub_pvm_builder *b = nub_pvm_builder_new(prof);
  uint32_t la = nub_pvm_builder_label(b), lb = nub_pvm_builder_label(b),
           lt = nub_pvm_builder_label(b), ld = nub_pvm_builder_label(b),
           ll = nub_pvm_builder_label(b);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 10, 0, 0, ld);           /* P */
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 9, 9, 0, 1, 0);
  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, la);                                              /* A */
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U32, 2, 3, 0, 0, 0);
  if (m->host_in_a) nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, 5, 0);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 1, 1, 0, 1, 0);
  if (m->a_fallthrough) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  else nub_pvm_builder_branch(b, PVM_OP_BRANCH_EQ, 1, 4, 0, m->to_latch ? ll : lt);
  nub_pvm_builder_bind(b, lb);                                              /* B */
  nub_pvm_builder_insn(b, PVM_OP_STORE_IND_U32, 2, 6, 0, 0, 0);
  if (m->host_in_b) nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, 6, 0);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 6, 6, 0, 4, 0);
  if (m->to_latch) {
    nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
    nub_pvm_builder_bind(b, ll);                                            /* L */
  }
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE, 1, 8, 0, la);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 7, 0, 0, 1, 0);                  /* C */
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, lt);                                              /* T */
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 7, 0, 0, 2, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, ld);                                              /* D */
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 10, 0, 0, 0, 0);
  nub_pvm_builder_jump_entry(b, lb);
  nub_pvm_builder_jump_entry(b, la);
  return jt_finish(b, prof);
}

/* The exits of one run until it ends (at most MERGE_STEPS), and the
** first page at the end. */
#define MERGE_STEPS 12
typedef struct steps {
  unsigned n;
  struct { nub_pvm_status status; uint32_t pc; int64_t gas; uint64_t arg; uint64_t regs[PVM_REGS]; } at[MERGE_STEPS];
  uint8_t page[PVM_PAGE_SIZE];
} steps;

static void run_steps(const nub_pvm_engine *e, const nub_pvm_program *prog, void *code,
                      const uint64_t *regs, int64_t gas, uint32_t entry, steps *s) {
  outcome o;
  nub_pvm_error err;
  nub_pvm_vm vm;
  run(e, prog, code, regs, 0, &o);                     /* maps and fills the pages */
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, e, code, &err), PVM_OK);
  memcpy(vm.regs, regs, sizeof vm.regs);
  vm.gas = gas;
  nub_pvm_vm_set_pc(&vm, entry);
  s->n = 0;
  while (s->n < MERGE_STEPS) {
    nub_pvm_status st = nub_pvm_vm_run(&vm);
    s->at[s->n].status = st;
    s->at[s->n].pc = vm.pc;
    s->at[s->n].gas = vm.gas;
    s->at[s->n].arg = st == PVM_FAULT || st == PVM_HOST ? vm.exit_arg : 0;
    memcpy(s->at[s->n++].regs, vm.regs, sizeof vm.regs);
    if (st == PVM_OOG) vm.gas += 2;
    else if (st == PVM_FAULT)
      assert_int_equal(nub_pvm_mem_map(mem, (uint32_t)vm.exit_arg, PVM_PAGE_SIZE, PVM_ACCESS_RW, &err), PVM_OK);
    else if (st == PVM_HOST) vm.regs[11] += 100;
    else break;
  }
  nub_pvm_vm_fini(&vm);
  assert_int_equal(nub_pvm_mem_read(mem, pages[0].at, s->page, PVM_PAGE_SIZE, &err), PVM_OK);
}

static void same_steps(const steps *a, const steps *b, const char *what) {
  if (a->n != b->n) fail_msg("%s: interp %u exits, jit %u", what, a->n, b->n);
  for (unsigned i = 0; i < a->n; i++) {
    if (a->at[i].status != b->at[i].status || a->at[i].pc != b->at[i].pc ||
        a->at[i].gas != b->at[i].gas || a->at[i].arg != b->at[i].arg)
      fail_msg("%s, exit %u: interp %s pc %u gas %lld arg 0x%llx, jit %s pc %u gas %lld arg 0x%llx",
               what, i, nub_pvm_status_name(a->at[i].status), a->at[i].pc,
               (long long)a->at[i].gas, (unsigned long long)a->at[i].arg,
               nub_pvm_status_name(b->at[i].status), b->at[i].pc, (long long)b->at[i].gas,
               (unsigned long long)b->at[i].arg);
    if (memcmp(a->at[i].regs, b->at[i].regs, sizeof a->at[i].regs))
      fail_msg("%s, exit %u: registers differ", what, i);
  }
  if (memcmp(a->page, b->page, PVM_PAGE_SIZE)) fail_msg("%s: page 0x%x differs", what, pages[0].at);
}

/* ---- an access through the base the access before used ---- */

/* build() of two accesses, the second's base field encoded as raw. */
static nub_pvm_program *build_second_base_raw(const op *ops, int raw) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  nub_pvm_encoding enc = PVM_ENCODING_AUTO;
  if (store_imm_ind(ops[1].op)) enc.raw_ra = (int16_t)raw;
  else enc.raw_rb = (int16_t)raw;
  nub_pvm_builder_insn(b, ops[0].op, ops[0].ra, ops[0].rb, ops[0].rd, ops[0].x, ops[0].y);
  nub_pvm_builder_insn_enc(b, ops[1].op, ops[1].ra, ops[1].rb, ops[1].rd, ops[1].x, ops[1].y, &enc);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  return jt_finish_gp07(b);
}

/* Without FSGSBASE an access at base + off (0 <= off < JIT_REUSE_SPAN)
** puts base32 in ecx and reads [r15 + rcx + off], and the next one
** through the same base finds ecx set.  Pairs through one base at the
** offsets around the span's end, the 2^32 wrap (into the guard: the
** wrapped address panics), a first load that overwrites the base, and
** each run also entered at the second access and resumed there after its
** page fault (nub_jit_run brings ecx); then the same through two bases,
** and with an instruction between the two (neither reuses ecx), and
** through r12 named by fields 12 and 15 (A.5: both r12, so it does). */
static void accesses_through_one_base_reuse_its_address(void **state) {
  static const struct { nub_pvm_op first, second; bool into_base; } pairs[] = {
    {PVM_OP_LOAD_IND_U64, PVM_OP_LOAD_IND_U64, false},
    {PVM_OP_LOAD_IND_U64, PVM_OP_LOAD_IND_U64, true},      /* the base changes */
    {PVM_OP_LOAD_IND_I8, PVM_OP_STORE_IND_U32, false},
    {PVM_OP_STORE_IND_U64, PVM_OP_LOAD_IND_I32, false},
    {PVM_OP_STORE_IMM_IND_U16, PVM_OP_STORE_IMM_IND_U64, false},
    {PVM_OP_LOAD_IND_U16, PVM_OP_STORE_IMM_IND_U8, true},
  };
  static const uint32_t offs[] = {0, 8, 0x1000, JIT_REUSE_SPAN - 1, JIT_REUSE_SPAN, 0xFFFFFFF8};
  static const uint64_t base_values[] = {
    0x10000, 0x100010000ull, 0xFFFFFFF8, 0xFFFFFFFFFFFFFFF0ull, 0x7FFFFFF8, 0x1000F000, 0x20000,
  };
  unsigned runs = 0, reused = 0, statuses[PVM_HOST + 1] = {0};
  nub_pvm_error err;
  (void)state;
  assert_int_equal(nub_jit_thread_prepare(&err), PVM_OK);
  enum { ONE_BASE, TWO_BASES, APART, ALIASED, SHAPES };
  for (int shape = 0; shape < SHAPES; shape++)
  for (size_t p = 0; p < ARRAY_LEN(pairs); p++)
    for (size_t o1 = 0; o1 < ARRAY_LEN(offs); o1++)
      for (size_t o2 = 0; o2 < ARRAY_LEN(offs); o2++) {
        const uint8_t base = shape == ALIASED ? 12 : 10;
        nub_pvm_op ops2[2] = {pairs[p].first, pairs[p].second};
        uint32_t off[2] = {offs[o1], offs[o2]};
        op insn[3];
        for (int i = 0; i < 2; i++) {
          uint8_t b = shape == TWO_BASES && i == 1 ? 9 : base;
          bool imm = store_imm_ind(ops2[i]);
          uint8_t val = i == 0 && pairs[p].into_base ? base : (uint8_t)(1 + i);
          insn[i == 0 ? 0 : shape == APART ? 2 : 1] =
              imm ? (op){ops2[i], .ra = b, .x = sext32(off[i]), .y = sext32(0x5A3C1E07)}
                  : (op){ops2[i], .ra = val, .rb = b, .x = sext32(off[i])};
        }
        if (shape == APART) insn[1] = (op){PVM_OP_ADD_IMM_64, .ra = 3, .rb = 4, .x = 1};
        nub_pvm_program *prog = shape == ALIASED ? build_second_base_raw(insn, 15)
                                                 : build(insn, shape == APART ? 3 : 2);
        const nub_pvm_blob *blob = nub_pvm_program_blob(prog);
        uint32_t second = 1 + nub_pvm_skip(blob, 0);
        if (shape == APART) second += 1 + nub_pvm_skip(blob, second);
        nub_jit_code *code;
        assert_int_equal(jit_compile_features(prog, (nub_jit_cpu_features() & ~JIT_CPU_FSGSBASE) |
                                                        JIT_GAS_MERGE, &code, &err), PVM_OK);
        bool first_loads = ops2[0] == PVM_OP_LOAD_IND_U64 || ops2[0] == PVM_OP_LOAD_IND_I8 ||
                           ops2[0] == PVM_OP_LOAD_IND_U16;
        bool first_sets = off[0] < JIT_REUSE_SPAN && !(pairs[p].into_base && first_loads);
        assert_int_equal(code->addr_reused, (shape == ONE_BASE || shape == ALIASED) && first_sets &&
                                                off[1] < JIT_REUSE_SPAN);
        reused += code->addr_reused;
        for (size_t v = 0; v < ARRAY_LEN(base_values); v++) {
          uint64_t regs[PVM_REGS];
          char what[160];
          for (int i = 0; i < PVM_REGS; i++) regs[i] = 0x0123456789ABCDEFull * (uint64_t)(i + 1);
          regs[base] = regs[9] = base_values[v];
          snprintf(what, sizeof what, "pair %zu, offsets 0x%x 0x%x, base 0x%llx", p, off[0], off[1],
                   (unsigned long long)base_values[v]);
          statuses[compare(prog, regs, 100, what)]++;
          for (int entry = 0; entry < 2; entry++) {      /* from pc 0; at the second access */
            static steps want, got;
            run_steps(&nub_pvm_engine_interp, prog, NULL, regs, 100, entry ? second : 0, &want);
            run_steps(&nub_jit_engine, prog, code, regs, 100, entry ? second : 0, &got);
            same_steps(&want, &got, what);
          }
          runs++;
        }
        nub_jit_code_free(code);
        nub_pvm_program_free(prog);
      }
  assert_true(reused > 0 && statuses[PVM_HALT] > 0 && statuses[PVM_PANIC] > 0 &&
              statuses[PVM_FAULT] > 0);
  print_message("%u register files, %u programs reused ecx: %u halt, %u panic, %u page fault\n",
                runs, reused, statuses[PVM_HALT], statuses[PVM_PANIC], statuses[PVM_FAULT]);
}

static void merged_gas_checks_stop_where_the_interpreter_stops(void **state) {
  static const merge_shape shapes[] = {
    {"A branches out", false, false, false, false, 1},
    {"A falls through", true, false, false, false, 1},
    {"host call in A", false, true, false, false, 1},
    {"host call in B", false, false, true, false, 1},
    {"A branches to the latch", false, false, false, true, 0},
  };
  /* r3: A's load address, r6: B's store address, r4: the count at which
  ** A's branch leaves, r8: the loop count, r10: D's table address (0: no D) */
  static const struct { const char *name; uint64_t r3, r6, r4, r10; } rows[] = {
    {"three iterations", 0x10000, 0x10100, 100, 0},
    {"taken exit in the second", 0x10000, 0x10100, 2, 0},
    {"page fault in A", 0x30000, 0x10100, 100, 0},
    {"page fault in B", 0x10000, 0x40000, 100, 0},
    {"panic in A", 0x100, 0x10100, 100, 0},
    {"panic in B", 0x10000, 0xFF00, 100, 0},
    {"dynamic jump into B", 0x10000, 0x10100, 100, 2},
    {"dynamic jump into A", 0x10000, 0x10100, 100, 4},
  };
  static steps want, got;
  unsigned runs = 0, exits[PVM_HOST + 1] = {0};
  uint32_t forms[2];
  unsigned nforms = jit_forms(forms);
  nub_pvm_error err;
  (void)state;
  assert_int_equal(nub_jit_thread_prepare(&err), PVM_OK);
  /* gp07: the checks' immediates; jamv1: the cost table's slots (lazy
  ** costs), its A.9 costs larger */
  static const struct { nub_pvm_profile prof; int64_t max_gas; } profs[] = {
    {PVM_PROFILE_GP07, 28}, {PVM_PROFILE_JAMV1, 60},
  };
  for (size_t ps = 0; ps < 2 * ARRAY_LEN(shapes); ps++) {
    size_t s = ps % ARRAY_LEN(shapes), pi = ps / ARRAY_LEN(shapes);
    nub_pvm_program *prog = merge_program(&shapes[s], profs[pi].prof);
    nub_jit_code *code[2];
    for (unsigned f = 0; f < nforms; f++) {
      assert_int_equal(jit_compile_features(prog, forms[f] | JIT_GAS_MERGE, &code[f], &err), PVM_OK);
      assert_int_equal(code[f]->gas_pairs, shapes[s].pairs);   /* A and B, or none */
    }
    for (size_t r = 0; r < ARRAY_LEN(rows); r++) {
      uint64_t regs[PVM_REGS] = {0};
      regs[0] = PVM_HALT_ADDRESS;
      regs[3] = rows[r].r3, regs[6] = rows[r].r6, regs[4] = rows[r].r4, regs[8] = 3;
      regs[10] = rows[r].r10;
      for (uint32_t entry = 0; entry < prog->blob.code_len; entry++) {
        if (!nub_pvm_blob_is_start(&prog->blob, entry)) continue;
        for (int64_t gas = 0; gas <= profs[pi].max_gas; gas++) {
          run_steps(&nub_pvm_engine_interp, prog, NULL, regs, gas, entry, &want);
          for (unsigned f = 0; f < nforms; f++) {
            char what[200];
            snprintf(what, sizeof what, "%s, %s, %s, entry %u, gas %lld (%s)", shapes[s].name,
                     nub_pvm_profile_name(profs[pi].prof), rows[r].name, entry, (long long)gas,
                     forms[f] & JIT_CPU_FSGSBASE ? "gas in r15" : "gas in the frame");
            run_steps(&nub_jit_engine, prog, code[f], regs, gas, entry, &got);
            same_steps(&want, &got, what);
          }
          runs++;
          for (unsigned i = 0; i < want.n; i++) exits[want.at[i].status]++;
        }
      }
    }
    for (unsigned f = 0; f < nforms; f++) nub_jit_code_free(code[f]);
    nub_pvm_program_free(prog);
  }
  /* every kind of exit was reached */
  for (int k = PVM_HALT; k <= PVM_HOST; k++) assert_true(exits[k] > 0);
  print_message("%u runs: %u halt, %u panic, %u out-of-gas, %u page-fault, %u host exits\n", runs,
                exits[PVM_HALT], exits[PVM_PANIC], exits[PVM_OOG], exits[PVM_FAULT],
                exits[PVM_HOST]);
}

/* Lazy costs (jamv1, docs/jit.md "Lazy costs"): the compile places the
** loop heads and the block after each (the merged pair A, B: immediates,
** as under gp07) and writes the rest of the cost table unplaced; a run
** places the blocks it enters, and agrees with the interpreter on a
** program of its own (whose costs the interpreter places all at once); a
** compile once every block is placed starts with every slot placed. */
static void lazy_costs_are_placed_as_blocks_are_entered(void **state) {
  static const merge_shape shape = {"A branches out", false, false, false, false, 1};
  static steps want, got;
  uint32_t forms[2];
  unsigned nforms = jit_forms(forms);
  nub_pvm_error err;
  (void)state;
  assert_int_equal(nub_jit_thread_prepare(&err), PVM_OK);
  uint64_t regs[PVM_REGS] = {0};
  regs[0] = PVM_HALT_ADDRESS;
  regs[3] = 0x10000, regs[6] = 0x10100, regs[4] = 100, regs[8] = 3;
  for (unsigned f = 0; f < nforms; f++) {
    nub_pvm_program *jp = merge_program(&shape, PVM_PROFILE_JAMV1),
                    *ip = merge_program(&shape, PVM_PROFILE_JAMV1);
    nub_jit_code *code, *again;
    assert_int_equal(jit_compile_features(jp, forms[f] | JIT_GAS_MERGE, &code, &err), PVM_OK);
    uint32_t n = jp->block_count, heads = 0, at_compile = 0, after_run = 0;
    assert_int_equal(code->gas_pairs, 1);
    for (uint32_t k = 0; k < n; k++) {
      bool head = jp->blocks[k].pc < jp->blob.code_len && pvm_bit_get(jp->loop_target, jp->blocks[k].pc),
           after = k > 0 && jp->blocks[k - 1].pc < jp->blob.code_len &&
                   pvm_bit_get(jp->loop_target, jp->blocks[k - 1].pc);
      heads += head;
      if (code->costs[k] == JIT_COST_UNPLACED) {
        assert_false(head || after);
        continue;
      }
      assert_true(head || after);
      assert_int_equal(code->costs[k], pvm_block_cost_known(jp, k));
      at_compile++;
    }
    assert_true(heads >= 1 && at_compile >= 2 && at_compile < n);
    run_steps(&nub_jit_engine, jp, code, regs, 1000, 0, &got);
    run_steps(&nub_pvm_engine_interp, ip, NULL, regs, 1000, 0, &want);
    same_steps(&want, &got, "the first runs");
    for (uint32_t k = 0; k < n; k++) {
      if (code->costs[k] == JIT_COST_UNPLACED) continue;
      assert_int_equal(code->costs[k], pvm_block_cost_known(jp, k));
      after_run++;
    }
    assert_true(after_run > at_compile);
    assert_int_equal(pvm_program_prepare_interp(jp, &err), PVM_OK);   /* places every block */
    assert_int_equal(jit_compile_features(jp, forms[f] | JIT_GAS_MERGE, &again, &err), PVM_OK);
    for (uint32_t k = 0; k < n; k++) assert_true(again->costs[k] == pvm_block_cost_known(jp, k));
    for (int64_t gas = 0; gas <= 60; gas += 7) {
      char what[64];
      snprintf(what, sizeof what, "placed at compile, gas %lld", (long long)gas);
      run_steps(&nub_pvm_engine_interp, ip, NULL, regs, gas, 0, &want);
      run_steps(&nub_jit_engine, jp, again, regs, gas, 0, &got);
      same_steps(&want, &got, what);
    }
    nub_jit_code_free(code);
    nub_jit_code_free(again);
    nub_pvm_program_free(jp);
    nub_pvm_program_free(ip);
  }
}

/* Random loops whose entries get merged checks (A: loads, stores, host
** calls, sbrk; ending in a fallthrough or a branch to B, past the loop or
** out), some Bs with a latch of their own, and a jump table into every
** A, B and after-loop block; every entry pc, gas 0-40 and the extremes,
** both code forms, every profile, resumed after every exit.  Without
** exit_now's refund seed 3 fails, without the fault handler's seed 0.
** RANDOM_LOOP_SEEDS sets the count (90 ran clean: 15 minutes under ASan). */
static uint64_t rv_state;
static uint32_t rv(uint32_t n) {
  rv_state = rv_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rv_state >> 33) % n;
}

static void rv_insn(nub_pvm_builder *b, nub_pvm_profile prof, bool in_b) {
  switch (rv(in_b ? 6 : 8)) {
  case 0: nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U32, 2, 3, 0, rv(3) * 4, 0); break;
  case 1: nub_pvm_builder_insn(b, PVM_OP_STORE_IND_U32, 2, 6, 0, rv(3) * 4, 0); break;
  case 2: nub_pvm_builder_insn(b, PVM_OP_ECALLI, 0, 0, 0, rv(3), 0); break;
  case 3: nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 2, 2, 0, 3, 0); break;
  case 4: nub_pvm_builder_insn(b, PVM_OP_STORE_IMM_IND_U32, 3, 0, 0, 8, 0x55); break;
  case 5:
    if (prof != PVM_PROFILE_JAMV1) nub_pvm_builder_insn(b, PVM_OP_SBRK, 9, 0, 11, 0, 0);
    else nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 11, 11, 0, 1, 0);
    break;
  case 6: nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 6, 6, 0, 4, 0); break;
  default: nub_pvm_builder_insn(b, PVM_OP_LOAD_IND_U32, 12, 6, 0, 0, 0); break;
  }
}

#define RV_LOOPS 3
static nub_pvm_program *rv_program(nub_pvm_profile prof, unsigned *nlabels) {
  nub_pvm_builder *b = nub_pvm_builder_new(prof);
  uint32_t la[RV_LOOPS], lb[RV_LOOPS], lc = nub_pvm_builder_label(b), ld = nub_pvm_builder_label(b);
  uint32_t lt[RV_LOOPS];
  for (int i = 0; i < RV_LOOPS; i++) {
    la[i] = nub_pvm_builder_label(b); lb[i] = nub_pvm_builder_label(b); lt[i] = nub_pvm_builder_label(b);
  }
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 10, 0, 0, ld);
  for (int i = 0; i < RV_LOOPS; i++) {
    nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 1, 0, 0, 0, 0);
    nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
    nub_pvm_builder_bind(b, la[i]);
    unsigned na = rv(3) + (rv(2) ? 0 : 1);
    for (unsigned k = 0; k < na; k++) rv_insn(b, prof, false);
    nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 1, 1, 0, 1, 0);
    unsigned end = rv(4);
    if (end == 0) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
    else nub_pvm_builder_branch(b, PVM_OP_BRANCH_EQ, 1, 4, 0, end == 1 ? lb[i] : end == 2 ? lt[i] : lc);
    nub_pvm_builder_bind(b, lb[i]);
    unsigned nb = rv(3);
    for (unsigned k = 0; k < nb; k++) rv_insn(b, prof, true);
    if (rv(2)) {                            /* a latch of its own */
      nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
    }
    nub_pvm_builder_branch(b, PVM_OP_BRANCH_LT_U, 1, 8, 0, la[i]);
    nub_pvm_builder_bind(b, lt[i]);
    nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, 1, 0);
    nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  }
  nub_pvm_builder_bind(b, lc);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 7, 0, 0, 99, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, ld);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 10, 0, 0, 0, 0);
  unsigned n = 0;
  for (int i = 0; i < RV_LOOPS; i++) {
    nub_pvm_builder_jump_entry(b, la[i]); nub_pvm_builder_jump_entry(b, lb[i]);
    nub_pvm_builder_jump_entry(b, lt[i]); n += 3;
  }
  *nlabels = n;
  return jt_finish(b, prof);
}

static void random_loops_with_merged_checks_agree_with_the_interpreter(void **state) {
  static steps want, got;
  uint32_t forms[2];
  unsigned nforms = jit_forms(forms), pairs = 0, runs = 0;
  nub_pvm_error err;
  (void)state;
  const char *env = getenv("RANDOM_LOOP_SEEDS");
  unsigned seeds = env ? (unsigned)atoi(env) : 4;
  assert_int_equal(nub_jit_thread_prepare(&err), PVM_OK);
  static const struct { uint64_t r3, r6; } addrs[] = {
    {0x10000, 0x10100}, {0x30000, 0x10100}, {0x10000, 0x40000}, {0x100, 0x10100}, {0x10000, 0xFF00},
  };
  for (unsigned seed = 0; seed < seeds; seed++) {
    nub_pvm_profile prof = (nub_pvm_profile)(seed % 3);
    rv_state = seed * 0x9E3779B97F4A7C15ull + 1;
    unsigned nl;
    nub_pvm_program *prog = rv_program(prof, &nl);
    nub_jit_code *code[2];
    for (unsigned f = 0; f < nforms; f++) {
      assert_int_equal(jit_compile_features(prog, forms[f], &code[f], &err), PVM_OK);
      pairs += code[f]->gas_pairs;
    }
    for (unsigned r = 0; r < 6; r++) {
      uint64_t regs[PVM_REGS] = {0};
      regs[0] = PVM_HALT_ADDRESS;
      regs[3] = addrs[r % 5].r3, regs[6] = addrs[r % 5].r6;
      regs[4] = 1 + rv(3), regs[8] = 1 + rv(3), regs[9] = 4096;
      regs[10] = r == 5 ? 2 * (1 + rv(nl)) : 0;
      for (uint32_t entry = 0; entry < prog->blob.code_len; entry++) {
        if (!nub_pvm_blob_is_start(&prog->blob, entry)) continue;
        for (int64_t g = 0; g <= 44; g++) {
          static const int64_t far[] = {INT64_MAX, INT64_MAX - 5, -1, INT64_MIN};
          int64_t gas = g <= 40 ? g : far[g - 41];
          run_steps(&nub_pvm_engine_interp, prog, NULL, regs, gas, entry, &want);
          for (unsigned f = 0; f < nforms; f++) {
            char what[200];
            snprintf(what, sizeof what, "seed %u profile %d row %u entry %u gas %lld form %u", seed,
                     (int)prof, r, entry, (long long)gas, f);
            run_steps(&nub_jit_engine, prog, code[f], regs, gas, entry, &got);
            same_steps(&want, &got, what);
          }
          runs++;
        }
      }
    }
    for (unsigned f = 0; f < nforms; f++) nub_jit_code_free(code[f]);
    nub_pvm_program_free(prog);
  }
  assert_true(pairs > 0);
  print_message("%u runs, %u merged pairs compiled\n", runs, pairs);
}

int main(void) {
  nub_pvm_error err;
  if (nub_pvm_mem_new(&mem, &err)) {
    fprintf(stderr, "guest memory: %s\n", err.msg);
    return 1;
  }
  if (!(nub_jit_cpu_features() & JIT_CPU_FSGSBASE))
    printf("note: no FSGSBASE here, only the [r15 + rcx] form runs\n");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(indirect_accesses_wrap_modulo_2_32),
    cmocka_unit_test(absolute_accesses_are_unsigned),
    cmocka_unit_test(three_register_rewrites_under_aliasing),
    cmocka_unit_test(register_immediate_rewrites_under_aliasing),
    cmocka_unit_test(dynamic_jumps_through_every_slot),
    cmocka_unit_test(merged_gas_checks_stop_where_the_interpreter_stops),
    cmocka_unit_test(lazy_costs_are_placed_as_blocks_are_entered),
    cmocka_unit_test(accesses_through_one_base_reuse_its_address),
    cmocka_unit_test(random_loops_with_merged_checks_agree_with_the_interpreter),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  nub_pvm_mem_free(mem);
  return failed;
}
