/*
** JIT-specific behaviour: both leading-zero code paths, CPU feature
** checks, compile statistics, W^X, entry at every pc, register aliasing
** around rax/rdx (division, mul_upper) and sbrk, the fault handler's
** chaining to the handler installed before it, faults on several
** threads at once, the compile's memory bound and batched cold stubs.  Results are compared with the interpreter.
*/
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <immintrin.h>
#include <Zydis/Zydis.h>

#include "jit/jit_internal.h"
#include "jit_test_util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

typedef struct op { nub_pvm_op op; uint8_t ra, rb, rd; uint64_t x, y; } op;

/* Finish a builder (ending with a halt through r5 when asked) and load. */
static nub_pvm_program *load_built(nub_pvm_builder *b, bool halt) {
  if (halt) {
    nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
    nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  }
  return jt_finish_gp07(b);
}

static void add_ops(nub_pvm_builder *b, const op *ops, size_t n) {
  for (size_t i = 0; i < n; i++)
    nub_pvm_builder_insn(b, ops[i].op, ops[i].ra, ops[i].rb, ops[i].rd, ops[i].x, ops[i].y);
}

static nub_pvm_program *build(const op *ops, size_t n) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  add_ops(b, ops, n);
  return load_built(b, false);
}

/* before; then for r2 pages from r1 on: body, r1 += 4096; then halt. */
static nub_pvm_program *page_loop(const op *before, size_t nb, const op *body, size_t n) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint32_t loop = nub_pvm_builder_label(b);
  add_ops(b, before, nb);
  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_bind(b, loop);
  add_ops(b, body, n);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 1, 1, 0, 4096, 0);
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 2, 2, 0, (uint64_t)-1, 0);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 2, 0, 0, loop);
  return load_built(b, true);
}

/* One guest memory for the many short runs (a new 4 GiB reservation per
** run would dominate the test's time). */
static nub_pvm_mem *shared_mem;

/* Run prog from pc with regs on an engine (code: compiled by the caller
** or NULL to compile here), in a fresh (empty) memory. */
static result run_on(const nub_pvm_engine *e, const nub_pvm_program *prog, void *code, uint32_t pc,
                     const uint64_t *regs, int64_t gas) {
  nub_pvm_mem *mem = shared_mem;
  nub_pvm_vm vm;
  nub_pvm_error err;
  bool own = !code;
  result r;
  if (!mem) assert_int_equal(nub_pvm_mem_new(&shared_mem, &err), PVM_OK), mem = shared_mem;
  assert_int_equal(nub_pvm_mem_reset(mem, &err), PVM_OK);
  if (own) assert_int_equal(e->compile(prog, &code, &err), PVM_OK);
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, e, code, &err), PVM_OK);
  memcpy(vm.regs, regs, sizeof vm.regs);
  vm.gas = gas;
  nub_pvm_vm_set_pc(&vm, pc);
  r.status = nub_pvm_vm_run(&vm);
  r.pc = vm.pc;
  r.gas = vm.gas;
  memcpy(r.regs, vm.regs, sizeof r.regs);
  nub_pvm_vm_fini(&vm);
  if (own && code) e->release(code);
  return r;
}

static void same(const result *a, const result *b, const char *what) {
  if (a->status != b->status || a->pc != b->pc || a->gas != b->gas)
    fail_msg("%s: interp %s pc %u gas %lld, jit %s pc %u gas %lld", what,
             nub_pvm_status_name(a->status), a->pc, (long long)a->gas, nub_pvm_status_name(b->status),
             b->pc, (long long)b->gas);
  for (int i = 0; i < PVM_REGS; i++)
    if (a->regs[i] != b->regs[i])
      fail_msg("%s: r%d interp 0x%llx jit 0x%llx", what, i, (unsigned long long)a->regs[i],
               (unsigned long long)b->regs[i]);
}

/* Mnemonics in the compiled instructions (not the table after them). */
static unsigned count_mnemonic(const nub_jit_code *code, ZydisMnemonic mn) {
  ZydisDecoder d;
  ZydisDecodedInstruction ins;
  unsigned n = 0;
  ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  for (size_t off = 0; off < code->code_size; off += ins.length) {
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, NULL, code->exec + off,
                                                    code->code_size - off, &ins)))
      fail_msg("undecodable JIT code at offset %zu", off);
    n += ins.mnemonic == mn;
  }
  return n;
}

/* ---- leading zeros: lzcnt, or bsr when the CPU has no LZCNT ---- */

static void leading_zeros_both_paths(void **state) {
  static const uint64_t values[] = {
    0, 1, 2, 0x80, 0xFFFFFFFF, 0x80000000, 0x100000000ull, 0x7FFFFFFFFFFFFFFFull,
    0x8000000000000000ull, UINT64_MAX, 0x00000000FFFF0000ull, 0x0001000000000001ull,
  };
  const op ops[] = {
    {PVM_OP_LEADING_ZERO_BITS_64, .ra = 1, .rd = 2},
    {PVM_OP_LEADING_ZERO_BITS_32, .ra = 1, .rd = 3},
    {PVM_OP_LEADING_ZERO_BITS_64, .ra = 4, .rd = 4},   /* in place */
    {PVM_OP_LEADING_ZERO_BITS_32, .ra = 5, .rd = 5},
  };
  (void)state;
  nub_pvm_program *prog = build(ops, ARRAY_LEN(ops));
  uint32_t have = nub_jit_cpu_features();
  print_message("cpu: lzcnt %s\n", have & JIT_CPU_LZCNT ? "yes" : "no (bsr fallback runs)");
  nub_jit_code *fallback, *with_lzcnt;
  nub_jit_options no_lzcnt = {.disable = JIT_CPU_LZCNT};
  nub_pvm_error err;
  assert_int_equal(nub_jit_compile(prog, &no_lzcnt, &fallback, &err), PVM_OK);
  assert_int_equal(jit_compile_features(prog, have | JIT_CPU_LZCNT, &with_lzcnt, &err), PVM_OK);
  /* each compile uses exactly the instruction its features allow */
  assert_int_equal(count_mnemonic(fallback, ZYDIS_MNEMONIC_LZCNT), 0);
  assert_int_equal(count_mnemonic(fallback, ZYDIS_MNEMONIC_BSR), 4);
  assert_int_equal(count_mnemonic(with_lzcnt, ZYDIS_MNEMONIC_LZCNT), 4);
  assert_int_equal(count_mnemonic(with_lzcnt, ZYDIS_MNEMONIC_BSR), 0);
  assert_false(nub_jit_code_stats(fallback)->features & JIT_CPU_LZCNT);
  for (size_t i = 0; i < ARRAY_LEN(values); i++) {
    uint64_t regs[PVM_REGS] = {0};
    regs[1] = regs[4] = values[i];
    regs[5] = values[i] >> 7 | values[i] << 57;
    result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, 100);
    result got = run_on(&nub_jit_engine, prog, fallback, 0, regs, 100);
    same(&want, &got, "bsr fallback");
    if (have & JIT_CPU_LZCNT) {          /* only a CPU with LZCNT may run it */
      got = run_on(&nub_jit_engine, prog, with_lzcnt, 0, regs, 100);
      same(&want, &got, "lzcnt");
    }
  }
  nub_jit_code_free(fallback);
  nub_jit_code_free(with_lzcnt);
  nub_pvm_program_free(prog);
}

/* The entry of a block a later branch jumps back to (its gas check) sits on
** a JIT_LOOP_ALIGN boundary, whatever precedes it, in both gas forms, and
** its check leaves by a 2-byte jl to a jmp before the entry, which goes
** to the block's out-of-gas stub (compile.c, loop_exit_jump). */
static void loop_entries_are_aligned_and_leave_by_a_short_jump(void **state) {
  (void)state;
  const uint32_t forms[] = {nub_jit_cpu_features() & ~JIT_CPU_FSGSBASE,
                            nub_jit_cpu_features() | JIT_CPU_FSGSBASE};
  unsigned loops = 0;
  for (unsigned before = 0; before < 8; before++) {
    op pre[8];
    for (unsigned k = 0; k < before; k++) pre[k] = (op){PVM_OP_ADD_64, 3, 4, 3, 0, 0};
    op body[] = {{PVM_OP_ADD_64, 5, 6, 5, 0, 0}};
    nub_pvm_program *prog = page_loop(pre, before, body, 1);
    for (unsigned f = 0; f < 2; f++) {
      nub_jit_code *code;
      nub_pvm_error err;
      assert_int_equal(jit_compile_features(prog, forms[f], &code, &err), PVM_OK);
      bool gas_reg = forms[f] & JIT_CPU_FSGSBASE;
      /* the interpreter's form names the targets */
      assert_int_equal(pvm_program_prepare_interp(prog, &err), PVM_OK);
      for (uint32_t i = 0; i < prog->insn_count; i++) {
        uint32_t t = prog->insns[i].target;
        if (t > i) continue;                    /* NO_TARGET or forward */
        uint32_t check = (gas_reg ? 6 : 7) + (prog->insns[t].gas > 127 ? 3 : 0);
        uint32_t k = jit_start_index(code->rank, &prog->blob, prog->insns[t].pc);
        const uint8_t *native = code->exec + code->body[k];
        assert_int_equal((uintptr_t)(native - check) % JIT_LOOP_ALIGN, 0);
        assert_int_equal(native[-2], 0x7C);      /* jl rel8, back over the alignment */
        const uint8_t *exit = native + (int8_t)native[-1];
        assert_true(exit < native - check);
        assert_int_equal(exit[0], 0xE9);        /* jmp rel32 to a stub */
        int32_t rel;
        memcpy(&rel, exit + 1, 4);
        size_t stub = (size_t)(exit + 5 + rel - code->exec);
        uint32_t block = 0;                      /* the loop head's gas block */
        while (prog->blocks[block].pc != prog->insns[t].pc) block++;
        assert_int_equal(stub, code->off_oog_stubs + (size_t)JIT_OOG_STUB * block);
        loops++;
      }
      nub_jit_code_free(code);
    }
    nub_pvm_program_free(prog);
  }
  assert_int_equal(loops, 16);
}

static void required_features_are_checked(void **state) {
  static const struct { uint32_t bit; const char *name; } need[] = {
    {JIT_CPU_BMI1, "BMI1"}, {JIT_CPU_BMI2, "BMI2"}, {JIT_CPU_POPCNT, "POPCNT"},
  };
  const op ops[] = {{.op = PVM_OP_TRAP}};
  (void)state;
  nub_pvm_program *prog = build(ops, 1);
  for (size_t i = 0; i < ARRAY_LEN(need); i++) {
    nub_jit_options o = {.disable = need[i].bit};
    nub_jit_code *code = (nub_jit_code *)1;
    nub_pvm_error err;
    assert_int_equal(nub_jit_compile(prog, &o, &code, &err), PVM_ERR_UNSUPPORTED);
    assert_null(code);
    assert_non_null(strstr(err.msg, need[i].name));
  }
  nub_pvm_program_free(prog);
}

/* ---- compile results ---- */

/* NUB_JIT_PERF_MAP=1 names every gas block in /tmp/perf-PID.map: one line
** per block, in order, inside the code, with the block's pc; the entry
** and exits before them and the out-of-line code after them have a line
** each, and the lines cover the code to its end. */
static void perf_map_names_every_block(void **state) {
  const op ops[] = {{PVM_OP_LOAD_IMM, .ra = 1, .x = 5}, {.op = PVM_OP_FALLTHROUGH}};
  (void)state;
  /* L: fallthrough; add_64; jump L: the two blocks' checks merge, which
  ** puts a slow copy of the first out of line */
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint32_t loop = nub_pvm_builder_label(b);
  add_ops(b, ops, ARRAY_LEN(ops));
  nub_pvm_builder_bind(b, loop);
  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_ADD_64, 1, 1, 2, 0, 0);
  nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, loop);
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
  unlink(path);
  nub_pvm_program *prog = load_built(b, false);
  nub_jit_code *code, *quiet;
  nub_pvm_error err;
  assert_int_equal(setenv("NUB_JIT_PERF_MAP", "1", 1), 0);
  assert_int_equal(nub_jit_compile(prog, NULL, &code, &err), PVM_OK);
  assert_int_equal(unsetenv("NUB_JIT_PERF_MAP"), 0);
  assert_int_equal(nub_jit_compile(prog, NULL, &quiet, &err), PVM_OK);   /* writes nothing */
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[128], name[64];
  unsigned long at, size, end = 0;
  unsigned blocks = 0, pcs[8], lines = 0, tail = 0;
  uintptr_t lo = (uintptr_t)code->exec, hi = lo + code->code_size;
  while (fgets(line, sizeof line, f)) {
    assert_int_equal(sscanf(line, "%lx %lx %63[^\n]", &at, &size, name), 3);
    assert_true(at >= lo && size > 0 && at + size <= hi && at >= end);
    end = at + size;
    assert_int_equal(tail, 0);      /* the out-of-line code's line is the last */
    if (sscanf(name, "pvm pc %u", &pcs[blocks]) == 1) blocks++;
    else if (lines) tail = !strcmp(name, "nub-jit out-of-line code");
    lines++;
    assert_true(blocks < 8);
  }
  fclose(f);
  unlink(path);
  /* the entry/exit stubs, then every block with a body (its head is a
  ** bitmask start; the final trap's block has none) by its head's pc */
  unsigned k = 0;
  for (uint32_t j = 0; j < prog->block_count; j++)
    if (nub_pvm_blob_is_start(&prog->blob, prog->blocks[j].pc)) {
      assert_true(k < blocks);
      assert_int_equal(pcs[k++], prog->blocks[j].pc);
    }
  assert_int_equal(k, blocks);
  assert_true(blocks >= 3);     /* load_imm..fallthrough, L: fallthrough, add..jump */
  assert_int_equal(tail, 1);
  assert_int_equal(lines, blocks + 2);
  assert_int_equal(end, hi);
  nub_jit_code_free(quiet);
  nub_jit_code_free(code);
  nub_pvm_program_free(prog);
}

static void stats_and_w_xor_x(void **state) {
  const op ops[] = {
    {PVM_OP_LOAD_IMM, .ra = 1, .x = 5}, {PVM_OP_ADD_64, .ra = 1, .rb = 1, .rd = 2},
    {.op = PVM_OP_FALLTHROUGH}, {PVM_OP_ECALLI, .x = 3}, {.op = PVM_OP_TRAP},
  };
  (void)state;
  nub_pvm_program *prog = build(ops, ARRAY_LEN(ops));
  nub_jit_code *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_compile(prog, NULL, &code, &err), PVM_OK);
  const nub_jit_stats *s = nub_jit_code_stats(code);
  assert_false(prog->interp_ready);          /* the JIT decodes from the blob */
  assert_int_equal(s->insns, nub_pvm_program_insn_count(prog));
  assert_int_equal(s->blocks, nub_pvm_program_block_count(prog));
  assert_int_equal(s->pvm_bytes, nub_pvm_program_blob(prog)->code_len);
  assert_true(s->code_bytes > 0 && s->code_bytes == code->code_size);
  assert_true(s->table_bytes > 0);
  assert_true(s->compile_ns > 0);
  assert_int_equal(s->features & JIT_CPU_REQUIRED, JIT_CPU_REQUIRED);
  /* the code is mapped read+execute, never writable */
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  bool found = false;
  assert_non_null(maps);
  while (fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
    if ((uintptr_t)code->exec >= lo && (uintptr_t)code->exec < hi) {
      assert_string_equal(perms, "r-xp");
      found = true;
    }
  }
  fclose(maps);
  assert_true(found);
  nub_jit_code_free(code);
  nub_pvm_program_free(prog);
}

/* Block costs above 2^31 take the long form of the gas check (no profile
** has them yet; the analysis stores costs as u32). */
static void huge_block_cost(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint32_t next = nub_pvm_builder_label(b);
  nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, next);
  nub_pvm_builder_bind(b, next);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 7, 0, 0, 9, 0);
  nub_pvm_program *prog = load_built(b, false);
  uint32_t head = 1;                        /* load_imm and the final trap */
  assert_int_equal(prog->block_count, 2);
  assert_int_equal(prog->blob.code[prog->blocks[head].pc],
                   nub_pvm_opcode_of(PVM_PROFILE_GP07, PVM_OP_LOAD_IMM));
  assert_int_equal(prog->blocks[head].cost, 2);
  prog->blocks[head].cost = 0x80000005u;    /* before either engine reads it */
  void *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  static const int64_t gases[] = {0x80000006ll, 0x80000005ll, 0x80000004ll, 0xFFFFFFFFll,
                                  INT64_MAX, INT64_MIN + 5};
  for (size_t i = 0; i < ARRAY_LEN(gases); i++) {
    uint64_t regs[PVM_REGS] = {0};
    char what[64];
    snprintf(what, sizeof what, "gas %lld", (long long)gases[i]);
    result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, gases[i]);
    result got = run_on(&nub_jit_engine, prog, code, 0, regs, gases[i]);
    same(&want, &got, what);
  }
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

/* ---- entering anywhere (the code's entry memo hit and missed) ---- */

static void every_entry_point(void **state) {
  const op ops[] = {
    {PVM_OP_LOAD_IMM, .ra = 1, .x = 7},
    {PVM_OP_ADD_IMM_64, .ra = 2, .rb = 1, .x = 3},
    {PVM_OP_ECALLI, .x = 1},
    {PVM_OP_MUL_64, .ra = 1, .rb = 2, .rd = 3},
    {.op = PVM_OP_FALLTHROUGH},
    {PVM_OP_LOAD_IMM_64, .ra = 4, .x = 0x123456789ull},
    {PVM_OP_SHLO_L_IMM_64, .ra = 5, .rb = 4, .x = 4},
    {PVM_OP_JUMP_IND, .ra = 0, .x = 0},
  };
  (void)state;
  nub_pvm_program *prog = build(ops, ARRAY_LEN(ops));
  uint32_t len = nub_pvm_program_blob(prog)->code_len;
  void *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  for (uint32_t pc = 0; pc <= len + 2; pc++)
    for (int64_t gas = 0; gas < 12; gas += 3) {
      uint64_t regs[PVM_REGS] = {PVM_HALT_ADDRESS, 1, 2, 3, 4, 5};
      char what[64];
      snprintf(what, sizeof what, "entry at pc %u with gas %lld", pc, (long long)gas);
      result want = run_on(&nub_pvm_engine_interp, prog, NULL, pc, regs, gas);
      result got = run_on(&nub_jit_engine, prog, code, pc, regs, gas);
      same(&want, &got, what);
    }
  /* the code keeps its last entry (entry_memo): back to front, each
  ** again (the memo's entry, nub_jit_run's fast path), short of its
  ** entry charge too */
  static const int64_t again[] = {100, 100, 0, 1, 2, 100};
  for (uint32_t pc = len + 3; pc-- > 0;)
    for (size_t i = 0; i < ARRAY_LEN(again); i++) {
      uint64_t regs[PVM_REGS] = {PVM_HALT_ADDRESS, 1, 2, 3, 4, 5};
      char what[64];
      snprintf(what, sizeof what, "entry at pc %u with gas %lld, back to front", pc,
               (long long)again[i]);
      result want = run_on(&nub_pvm_engine_interp, prog, NULL, pc, regs, again[i]);
      result got = run_on(&nub_jit_engine, prog, code, pc, regs, again[i]);
      same(&want, &got, what);
    }
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

/* ---- the GS base (FSGSBASE: guest memory at gs:) ---- */

/* A thread that keeps its GS base (nub_jit_thread_keep_gs) finds it at
** the memory after a run, and a run on that memory writes none; one that
** does not gets back the base it had at entry.  Results are the
** interpreter's either way.  Without FSGSBASE the code never touches GS
** (checked by the flag alone: rdgsbase itself would fault). */
__attribute__((target("fsgsbase"))) static uint64_t read_gs(void) { return _readgsbase_u64(); }
__attribute__((target("fsgsbase"))) static void write_gs(uint64_t v) { _writegsbase_u64(v); }

static void the_gs_base_is_kept_or_given_back_at_exit(void **state) {
  const op ops[] = {
    {PVM_OP_ADD_64, .ra = 1, .rb = 2, .rd = 7},
    {PVM_OP_JUMP_IND, .ra = 0, .x = 0},
  };
  (void)state;
  nub_pvm_program *prog = build(ops, ARRAY_LEN(ops));
  void *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  bool fsgsbase = (nub_jit_cpu_features() & JIT_CPU_FSGSBASE) != 0;
  uint64_t before = fsgsbase ? read_gs() : 0, base = 0;
  static const struct { bool keep; bool set_zero; bool at_memory; } steps[] = {
    {false, true, false}, {true, false, true}, {true, false, true},
    {false, false, true},   /* the base found at entry is the memory's: it stays */
    {false, true, false},
  };
  for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
    uint64_t regs[PVM_REGS] = {PVM_HALT_ADDRESS, 40, 2};
    if (fsgsbase && steps[i].set_zero) write_gs(0);
    nub_jit_thread_keep_gs(steps[i].keep);
    result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, 100);
    result got = run_on(&nub_jit_engine, prog, code, 0, regs, 100);
    same(&want, &got, "add");
    assert_int_equal(got.regs[7], 42);
    if (!fsgsbase) continue;
    base = (uint64_t)(uintptr_t)shared_mem->base;
    uint64_t gs = read_gs();
    if ((gs == base) != steps[i].at_memory)
      fail_msg("step %zu: gs base 0x%llx, the memory at 0x%llx", i, (unsigned long long)gs,
               (unsigned long long)base);
    if (!steps[i].at_memory) assert_int_equal(gs, 0);
  }
  nub_jit_thread_keep_gs(false);
  if (fsgsbase) write_gs(before);
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

/* ---- registers that the host code uses implicitly ---- */

static void register_aliasing(void **state) {
  static const nub_pvm_op ops3[] = {
    PVM_OP_DIV_U_32, PVM_OP_DIV_S_32, PVM_OP_REM_U_32, PVM_OP_REM_S_32, PVM_OP_DIV_U_64,
    PVM_OP_DIV_S_64, PVM_OP_REM_U_64, PVM_OP_REM_S_64, PVM_OP_MUL_UPPER_S_S,
    PVM_OP_MUL_UPPER_U_U, PVM_OP_MUL_UPPER_S_U, PVM_OP_SUB_32, PVM_OP_SUB_64, PVM_OP_ROT_L_64,
    PVM_OP_ROT_R_32, PVM_OP_SHLO_L_64, PVM_OP_SHAR_R_32, PVM_OP_MAX, PVM_OP_MIN_U, PVM_OP_OR_INV,
    PVM_OP_AND_INV, PVM_OP_XNOR, PVM_OP_SET_LT_S, PVM_OP_CMOV_IZ, PVM_OP_CMOV_NZ, PVM_OP_ADD_32,
  };
  /* guest registers held in rax, rdx, rbx and r12 */
  static const uint8_t regs_used[] = {7, 8, 0, 10};
  static const uint64_t values[][2] = {
    {100, 7}, {(uint64_t)-100, 7}, {5, 0}, {0x8000000000000000ull, UINT64_MAX},
    {0xFFFFFFFF80000000ull, 0xFFFFFFFFull}, {UINT64_MAX, UINT64_MAX}, {0x123456789ull, 33},
  };
  unsigned programs = 0;
  (void)state;
  for (size_t o = 0; o < ARRAY_LEN(ops3); o++)
    for (size_t a = 0; a < 4; a++)
      for (size_t b = 0; b < 4; b++)
        for (size_t d = 0; d < 4; d++) {
          op prog_ops[] = {{ops3[o], .ra = regs_used[a], .rb = regs_used[b], .rd = regs_used[d]}};
          nub_pvm_program *prog = build(prog_ops, 1);
          void *code;
          nub_pvm_error err;
          assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
          for (size_t v = 0; v < ARRAY_LEN(values); v++) {
            uint64_t regs[PVM_REGS];
            for (int i = 0; i < PVM_REGS; i++) regs[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
            regs[regs_used[a]] = values[v][0];
            regs[regs_used[b]] = values[v][1];
            char what[96];
            snprintf(what, sizeof what, "%s r%u r%u -> r%u, values %zu",
                     nub_pvm_isa(PVM_PROFILE_GP07)[nub_pvm_opcode_of(PVM_PROFILE_GP07, ops3[o])].name,
                     regs_used[a], regs_used[b], regs_used[d], v);
            result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, 10);
            result got = run_on(&nub_jit_engine, prog, code, 0, regs, 10);
            same(&want, &got, what);
          }
          nub_jit_engine.release(code);
          nub_pvm_program_free(prog);
          programs++;
        }
  print_message("%u programs compared\n", programs);
}

/* and_imm with the byte and half masks (movzx, which needs a REX prefix
** for sil, dil and bpl) and with other masks, every register pair of a
** few, against the interpreter. */
static void and_imm_masks(void **state) {
  static const uint64_t masks[] = {0xFF, 0xFFFF, 0x7F, (uint64_t)-256, UINT64_MAX, 0};
  static const uint8_t regs_used[] = {1, 2, 3, 7, 8, 12};   /* rsi rdi rbp rax rdx r14 */
  unsigned programs = 0;
  (void)state;
  for (size_t m = 0; m < ARRAY_LEN(masks); m++)
    for (size_t a = 0; a < ARRAY_LEN(regs_used); a++)
      for (size_t b = 0; b < ARRAY_LEN(regs_used); b++) {
        op ops[] = {{PVM_OP_AND_IMM, .ra = regs_used[a], .rb = regs_used[b], .x = masks[m]}};
        nub_pvm_program *prog = build(ops, 1);
        uint64_t regs[PVM_REGS];
        for (int i = 0; i < PVM_REGS; i++) regs[i] = 0x8899AABBCCDDEEF1ull * (uint64_t)(i + 1);
        char what[64];
        snprintf(what, sizeof what, "and_imm r%u, r%u, 0x%llx", regs_used[a], regs_used[b],
                 (unsigned long long)masks[m]);
        result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, 10);
        result got = run_on(&nub_jit_engine, prog, NULL, 0, regs, 10);
        same(&want, &got, what);
        nub_pvm_program_free(prog);
        programs++;
      }
  print_message("%u programs compared\n", programs);
}

static void sbrk_keeps_every_register(void **state) {
  const op ops[] = {{PVM_OP_SBRK, .ra = 1, .rd = 3}, {PVM_OP_SBRK, .ra = 7, .rd = 8}};
  (void)state;
  nub_pvm_program *prog = build(ops, ARRAY_LEN(ops));
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  void *code;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_mem_new(&mem, &err), PVM_OK);
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, &nub_jit_engine, code, &err), PVM_OK);
  nub_pvm_mem_set_heap(mem, 0x50000, 0x60000);
  for (int i = 0; i < PVM_REGS; i++) vm.regs[i] = 0xA5A5000000000000ull | (uint64_t)i;
  vm.regs[1] = 0x1001;
  vm.regs[7] = 16;
  vm.gas = 10;
  assert_int_equal(nub_pvm_vm_run(&vm), PVM_PANIC);
  assert_int_equal(vm.regs[3], 0x50000);
  assert_int_equal(vm.regs[8], 0x51001);
  for (int i = 0; i < PVM_REGS; i++)
    if (i != 1 && i != 3 && i != 7 && i != 8)
      assert_true(vm.regs[i] == (0xA5A5000000000000ull | (uint64_t)i));
  assert_int_equal(nub_pvm_mem_access(mem, 0x51000), PVM_ACCESS_RW);
  nub_pvm_vm_fini(&vm);
  nub_jit_engine.release(code);
  nub_pvm_mem_free(mem);
  nub_pvm_program_free(prog);
}

/* ---- the fault handler ---- */

/* A write through a bad pointer the compiler cannot see through. */
static void real_crash(void) {
  volatile int *volatile bad = (volatile int *)(uintptr_t)16;
  *bad = 1;
}

static void child_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)si; (void)uc;
  _exit(42);
}

/* A fault the JIT does not own goes to whoever handled SIGSEGV before it;
** a guest fault in between is still the JIT's. */
static void foreign_faults_are_chained(void **state) {
  (void)state;
  const op ops[] = {{PVM_OP_LOAD_U8, .ra = 1, .x = 0x70000}};
  nub_pvm_program *prog = build(ops, 1);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = child_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    uint64_t regs[PVM_REGS] = {0};
    result r = run_on(&nub_jit_engine, prog, NULL, 0, regs, 10);   /* installs the JIT handler */
    if (r.status != PVM_FAULT) _exit(3);
    real_crash();
    _exit(4);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 42);
  nub_pvm_program_free(prog);
}

/* Run by a re-executed copy of this test: the JIT's handler goes on top
** of whatever the process had (ASan's under the sanitizer build, else the
** default), then a real crash must reach that. */
static int crash_after_prepare(void) {
  const op ops[] = {{PVM_OP_LOAD_U8, .ra = 1, .x = 0x70000}};
  uint64_t regs[PVM_REGS] = {0};
  nub_pvm_program *prog = build(ops, 1);
  result r = run_on(&nub_jit_engine, prog, NULL, 0, regs, 10);
  if (r.status != PVM_FAULT) return 3;
  real_crash();
  return 0;
}

static void foreign_faults_still_crash(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    execl("/proc/self/exe", "test_jit", "--crash-after-prepare", (char *)NULL);
    _exit(5);
  }
  close(fds[1]);
  char out[8192];
  size_t n = 0;
  ssize_t got;
  while (n < sizeof out - 1 && (got = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)got;
  out[n] = 0;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
  /* ASan reports the crash and exits non-zero */
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3);
  assert_non_null(strstr(out, "AddressSanitizer: SEGV"));
#else
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
#endif
}

/* Once compiled and prepared, running needs only mmap (sbrk and the
** embedder mapping pages), mprotect and rt_sigreturn (fault exits): the
** child runs faults, sbrk, host calls and out-of-gas, then a second VM
** set-up, under a seccomp filter that kills the process on any other
** system call. */
static int run_under_seccomp(const nub_pvm_program *prog, void *code) {
  static const int allowed[] = {SYS_mmap, SYS_mprotect, SYS_rt_sigreturn, SYS_exit_group, SYS_exit};
  struct sock_filter f[4 + 2 * ARRAY_LEN(allowed)];
  unsigned n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (size_t i = 0; i < ARRAY_LEN(allowed); i++) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i], 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  f[n - 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_filter last = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  struct sock_filter all[sizeof f / sizeof f[0] + 1];
  memcpy(all, f, n * sizeof f[0]);
  all[n++] = last;
  struct sock_fprog fp = {(unsigned short)n, all};
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  nub_pvm_error err;
  if (nub_pvm_mem_new(&mem, &err) || nub_pvm_vm_init(&vm, prog, mem, &nub_jit_engine, code, &err)) return 10;
  nub_pvm_mem_set_heap(mem, 0x80000, 0x90000);
  vm.regs[1] = 0x40000;
  vm.gas = 30;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp))
    return 11;
  unsigned faults = 0, hosts = 0, oogs = 0;
  for (;;) {
    nub_pvm_status st = nub_pvm_vm_run(&vm);
    if (st == PVM_FAULT) {
      faults++;
      if (nub_pvm_mem_map(mem, (uint32_t)vm.exit_arg, PVM_PAGE_SIZE, PVM_ACCESS_RW, NULL)) return 12;
    } else if (st == PVM_HOST) {
      hosts++;
    } else if (st == PVM_OOG) {
      oogs++;
      vm.gas += 30;
    } else {
      break;
    }
  }
  /* r1: 16 stores one page apart; r3: the old heap top */
  if (vm.status != PVM_HALT || faults != 16 || hosts != 16 || oogs == 0 || vm.regs[3] != 0x80000)
    return 13;
  /* a VM set-up on a prepared thread neither checks the handler nor
  ** allocates (an in-process sub-VM CALL makes one per call) */
  nub_pvm_vm_fini(&vm);
  if (nub_pvm_vm_init(&vm, prog, mem, &nub_jit_engine, code, &err)) return 14;
  vm.gas = 0;
  if (nub_pvm_vm_run(&vm) != PVM_OOG) return 15;
  nub_pvm_vm_fini(&vm);
  return 0;
}

static void runs_without_system_calls(void **state) {
  (void)state;
  const op before[] = {
    {PVM_OP_LOAD_IMM, .ra = 2, .x = 16},
    {PVM_OP_LOAD_IMM, .ra = 4, .x = 0x1000},
    {PVM_OP_SBRK, .ra = 4, .rd = 3},                          /* r3 = sbrk(r4) */
  };
  const op body[] = {
    {PVM_OP_STORE_IND_U64, .ra = 2, .rb = 1},                  /* fault, map, retry */
    {PVM_OP_ECALLI, .x = 7},
  };
  nub_pvm_program *prog = page_loop(before, ARRAY_LEN(before), body, ARRAY_LEN(body));
  nub_pvm_error err;
  void *code;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  /* the raw exit: ASan's _exit would run a leak check that needs more */
  if (pid == 0) syscall(SYS_exit_group, run_under_seccomp(prog, code));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) fail_msg("the child was killed by signal %d (a forbidden system call?)",
                                    WTERMSIG(status));
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

/* Threads sharing one compiled program fault, get their page mapped and
** resume, each in its own memory: the handler's state is per thread. */
typedef struct thread_job { const nub_pvm_program *prog; void *code; unsigned faults; uint64_t sum; int rc; } thread_job;

static void *fault_loop(void *arg) {
  thread_job *j = arg;
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  nub_pvm_error err;
  j->rc = -1;
  if (nub_pvm_mem_new(&mem, &err)) return NULL;
  if (nub_pvm_vm_init(&vm, j->prog, mem, &nub_jit_engine, j->code, &err)) { nub_pvm_mem_free(mem); return NULL; }
  vm.regs[1] = 0x100000;
  vm.regs[2] = 64;
  vm.gas = 1000000;
  for (;;) {
    nub_pvm_status st = nub_pvm_vm_run(&vm);
    if (st == PVM_FAULT) {
      j->faults++;
      if (nub_pvm_mem_map(mem, (uint32_t)vm.exit_arg, PVM_PAGE_SIZE, PVM_ACCESS_RW, &err)) break;
      continue;
    }
    if (st == PVM_HALT) { j->sum = vm.regs[3]; j->rc = 0; }
    break;
  }
  nub_pvm_vm_fini(&vm);
  nub_pvm_mem_free(mem);
  return NULL;
}

static void faults_on_many_threads(void **state) {
  (void)state;
  /* for r2 pages: store r1 to [r1], r3 += load [r1] */
  const op before[] = {{PVM_OP_LOAD_IMM, .ra = 3}};
  const op body[] = {
    {PVM_OP_STORE_IND_U64, .ra = 1, .rb = 1},
    {PVM_OP_LOAD_IND_U64, .ra = 4, .rb = 1},
    {PVM_OP_ADD_64, .ra = 3, .rb = 4, .rd = 3},
  };
  nub_pvm_program *prog = page_loop(before, ARRAY_LEN(before), body, ARRAY_LEN(body));
  nub_pvm_error err;
  void *code;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  enum { NT = 4 };
  pthread_t th[NT];
  thread_job jobs[NT];
  for (int i = 0; i < NT; i++) {
    jobs[i] = (thread_job){prog, code, 0, 0, -1};
    assert_int_equal(pthread_create(&th[i], NULL, fault_loop, &jobs[i]), 0);
  }
  uint64_t want = 0;
  for (uint64_t k = 0; k < 64; k++) want += 0x100000 + k * 4096;
  for (int i = 0; i < NT; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(jobs[i].rc, 0);
    assert_int_equal(jobs[i].faults, 64);
    assert_true(jobs[i].sum == want);
  }
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

/* Lazy costs (jamv1): threads that start together on one compiled
** program place its blocks (and the code's cost table slots) at once;
** each run, out of gas at one of the blocks or halting, ends as the
** interpreter's does on a program of its own.  A chain of 600 blocks of
** one instruction and a fallthrough: stretches of about 128 blocks, so
** the threads race for several. */
enum { LAZY_THREADS = 4, LAZY_BLOCKS = 600 };

typedef struct lazy_job {
  const nub_pvm_program *prog;
  void *code;
  pthread_barrier_t *start;
  int64_t gas;
  result got;
  int rc;
} lazy_job;

static void *lazy_run(void *arg) {
  lazy_job *j = arg;
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  nub_pvm_error err;
  j->rc = -1;
  if (nub_pvm_mem_new(&mem, &err)) return NULL;
  if (!nub_pvm_vm_init(&vm, j->prog, mem, &nub_jit_engine, j->code, &err)) {
    vm.regs[0] = PVM_HALT_ADDRESS;
    vm.gas = j->gas;
    pthread_barrier_wait(j->start);
    j->got.status = nub_pvm_vm_run(&vm);
    j->got.pc = vm.pc;
    j->got.gas = vm.gas;
    memcpy(j->got.regs, vm.regs, sizeof vm.regs);
    nub_pvm_vm_fini(&vm);
    j->rc = 0;
  }
  nub_pvm_mem_free(mem);
  return NULL;
}

static nub_pvm_program *lazy_chain(void) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_JAMV1);
  for (int i = 0; i < LAZY_BLOCKS; i++) {
    nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, 1, 0);
    nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  }
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  return jt_finish(b, PVM_PROFILE_JAMV1);
}

static void lazy_costs_are_placed_by_many_threads_at_once(void **state) {
  (void)state;
  nub_pvm_error err;
  nub_pvm_program *ref = lazy_chain();
  int64_t full = 1000000, left;
  uint64_t zero[PVM_REGS] = {0};
  zero[0] = PVM_HALT_ADDRESS;
  result whole = run_on(&nub_pvm_engine_interp, ref, NULL, 0, zero, full);
  assert_int_equal(whole.status, PVM_HALT);
  assert_int_equal(whole.regs[7], LAZY_BLOCKS);
  left = full - whole.gas;                  /* what the whole chain costs */
  for (int round = 0; round < 12; round++) {
    nub_pvm_program *prog = lazy_chain();
    void *code;
    assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, LAZY_THREADS);
    pthread_t th[LAZY_THREADS];
    lazy_job jobs[LAZY_THREADS];
    for (int i = 0; i < LAZY_THREADS; i++) {
      /* out of gas early, midway, near the end, or halting */
      int64_t gas = i == LAZY_THREADS - 1 ? full : left * (round * LAZY_THREADS + i + 1) / 50;
      jobs[i] = (lazy_job){prog, code, &start, gas, {0}, -1};
      assert_int_equal(pthread_create(&th[i], NULL, lazy_run, &jobs[i]), 0);
    }
    for (int i = 0; i < LAZY_THREADS; i++) {
      pthread_join(th[i], NULL);
      assert_int_equal(jobs[i].rc, 0);
      char what[64];
      snprintf(what, sizeof what, "round %d, thread %d, gas %lld", round, i, (long long)jobs[i].gas);
      result want = run_on(&nub_pvm_engine_interp, ref, NULL, 0, zero, jobs[i].gas);
      same(&want, &jobs[i].got, what);
    }
    pthread_barrier_destroy(&start);
    nub_jit_engine.release(code);
    nub_pvm_program_free(prog);
  }
  nub_pvm_program_free(ref);
}

/* The fault handler takes the read-only store rule from the code that
** faulted: the same bytes compiled for gp07 (panic) and jamv1 (fault),
** run turn about on one thread and one memory, each exit equal to the
** interpreter's. */
static void read_only_store_rule_is_per_code(void **state) {
  (void)state;
  const nub_pvm_profile profiles[] = {PVM_PROFILE_GP07, PVM_PROFILE_JAMV1};
  nub_pvm_program *prog[2];
  void *code[2];
  nub_pvm_mem *mem;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_mem_new(&mem, &err), PVM_OK);
  for (int k = 0; k < 2; k++) {
    nub_pvm_builder *b = nub_pvm_builder_new(profiles[k]);
    uint8_t *blob;
    size_t len;
    nub_pvm_builder_insn(b, PVM_OP_STORE_IND_U32, 1, 2, 0, 0x10, 0);
    assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, &err), PVM_OK);
    nub_pvm_builder_free(b);
    assert_int_equal(nub_pvm_program_load(profiles[k], blob, len, &prog[k], &err), PVM_OK);
    free(blob);
    assert_int_equal(nub_jit_engine.compile(prog[k], &code[k], &err), PVM_OK);
    assert_int_equal(((nub_jit_code *)code[k])->ro_store_faults,
                     nub_pvm_profile_semantics(profiles[k])->ro_store_faults);
  }
  for (int round = 0; round < 4; round++) {
    int k = round & 1;
    nub_pvm_status want = k ? PVM_FAULT : PVM_PANIC;
    for (int e = 0; e < 2; e++) {
      const nub_pvm_engine *eng = e ? &nub_jit_engine : &nub_pvm_engine_interp;
      nub_pvm_vm vm;
      assert_int_equal(nub_pvm_mem_reset(mem, &err), PVM_OK);
      assert_int_equal(nub_pvm_mem_map(mem, 0x30000, 0x1000, PVM_ACCESS_RO, &err), PVM_OK);
      assert_int_equal(nub_pvm_vm_init(&vm, prog[k], mem, eng, e ? code[k] : NULL, &err), PVM_OK);
      vm.regs[1] = 0xAABBCCDD;
      vm.regs[2] = 0x30000;
      vm.gas = 100;
      if (nub_pvm_vm_run(&vm) != want)
        fail_msg("%s on %s: %s", eng->name, nub_pvm_profile_name(profiles[k]), nub_pvm_status_name(vm.status));
      assert_int_equal(vm.pc, 0);
      assert_int_equal(vm.gas, 100 - nub_pvm_program_entry_cost(prog[k], 0));
      if (want == PVM_FAULT) assert_int_equal(vm.exit_arg, 0x30000);
      nub_pvm_vm_fini(&vm);
    }
  }
  for (int k = 0; k < 2; k++) {
    nub_jit_engine.release(code[k]);
    nub_pvm_program_free(prog[k]);
  }
  nub_pvm_mem_free(mem);
}

/* ---- memory ---- */

/* 20 000 remainders (three local labels each), each in its own block: a
** bound below what the code keeps fails with PVM_ERR_LIMIT, the same code
** compiles within the unbounded peak or 1.5 x what it keeps, and never
** holds more than its bound. */
static void compile_memory_is_bounded(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  for (int i = 0; i < 20000; i++) {
    nub_pvm_builder_insn(b, PVM_OP_REM_S_64, 7, 8, 7, 0, 0);
    nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  }
  nub_pvm_program *prog = load_built(b, true);
  nub_jit_code *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_compile(prog, NULL, &code, &err), PVM_OK);
  nub_jit_stats st = *nub_jit_code_stats(code);
  nub_jit_code_free(code);
  assert_true(st.peak_bytes > st.code_bytes);
  assert_true(st.kept_bytes >= st.code_bytes && st.kept_bytes <= st.peak_bytes);
  /* labels and cold stubs no longer pile up: the peak stays near what is kept */
  assert_true(st.peak_bytes < 2 * st.kept_bytes);
  /* below what the code alone needs: refused (a bound between that and
  ** the unbounded peak may fit, by growing the buffers less) */
  const size_t limits[] = {4096, st.code_bytes / 2, st.kept_bytes - 1};
  for (size_t i = 0; i < ARRAY_LEN(limits); i++) {
    nub_jit_options o = {.disable = 0, .max_bytes = limits[i]};
    assert_int_equal(nub_jit_compile(prog, &o, &code, &err), PVM_ERR_LIMIT);
    assert_null(code);
    assert_non_null(strstr(err.msg, "limit"));
  }
  const size_t fit[] = {st.peak_bytes, st.kept_bytes + st.kept_bytes / 2};
  for (size_t i = 0; i < ARRAY_LEN(fit); i++) {
    nub_jit_options o = {.disable = 0, .max_bytes = fit[i]};
    assert_int_equal(nub_jit_compile(prog, &o, &code, &err), PVM_OK);
    assert_true(nub_jit_code_stats(code)->peak_bytes <= fit[i]);
    assert_int_equal(nub_jit_code_stats(code)->code_bytes, st.code_bytes);
    nub_jit_code_free(code);
  }
  nub_pvm_program_free(prog);
}

/* Each of the 20000 blocks has its own out-of-gas stub, found by its
** position (compile.c, emit_oog_stubs), and other cold stubs are emitted
** every 4096 behind a jump: out of gas in the first block, the last, and
** blocks before, at and after such a batch exits exactly as the
** interpreter. */
static void out_of_gas_across_cold_stub_batches(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  for (int i = 0; i < 10000; i++) nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, 1, 0),
                                  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  nub_pvm_program *prog = load_built(b, true);
  const int64_t gases[] = {1, 4095 * 2, 4096 * 2, 4097 * 2 + 1, 8192 * 2, 19999 * 2, 20000 * 2,
                           1 << 20};
  uint64_t regs[PVM_REGS] = {0};
  void *code;
  nub_pvm_error err;
  assert_int_equal(nub_jit_engine.compile(prog, &code, &err), PVM_OK);
  for (size_t i = 0; i < ARRAY_LEN(gases); i++) {
    result want = run_on(&nub_pvm_engine_interp, prog, NULL, 0, regs, gases[i]);
    result got = run_on(&nub_jit_engine, prog, code, 0, regs, gases[i]);
    same(&want, &got, "out of gas");
  }
  nub_jit_engine.release(code);
  nub_pvm_program_free(prog);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--crash-after-prepare")) return crash_after_prepare();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(leading_zeros_both_paths),
    cmocka_unit_test(required_features_are_checked),
    cmocka_unit_test(loop_entries_are_aligned_and_leave_by_a_short_jump),
    cmocka_unit_test(stats_and_w_xor_x),
    cmocka_unit_test(perf_map_names_every_block),
    cmocka_unit_test(huge_block_cost),
    cmocka_unit_test(every_entry_point),
    cmocka_unit_test(register_aliasing),
    cmocka_unit_test(the_gs_base_is_kept_or_given_back_at_exit),
    cmocka_unit_test(and_imm_masks),
    cmocka_unit_test(sbrk_keeps_every_register),
    cmocka_unit_test(foreign_faults_are_chained),
    cmocka_unit_test(foreign_faults_still_crash),
    cmocka_unit_test(faults_on_many_threads),
    cmocka_unit_test(lazy_costs_are_placed_by_many_threads_at_once),
    cmocka_unit_test(read_only_store_rule_is_per_code),
    cmocka_unit_test(runs_without_system_calls),
    cmocka_unit_test(compile_memory_is_bounded),
    cmocka_unit_test(out_of_gas_across_cold_stub_batches),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  nub_pvm_mem_free(shared_mem);
  return failed;
}
