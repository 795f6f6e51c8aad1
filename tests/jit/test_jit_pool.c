/*
** The code pool (x86.c): a compile after a free writes into the freed
** program's pages.  Reused code runs exactly as the interpreter; nothing
** of the previous program stays executable or resident past the new
** code (int3 to the end of its last page, the pages after it unmapped); a pooled mapping is read-write, never executable; the pool
** stays within its bounds; compiles and frees on several threads at once
** share it safely; fresh pages, populated ahead of the compile, leave
** none resident past the code.
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "jit/jit_internal.h"
#include "jit_test_util.h"

#define PAGE 4096u

/* ---- programs ---- */

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* n random ALU instructions on r0..r11, looped `loops` times with r12 as
** the counter, then a halt through r5. */
static nub_pvm_program *random_program(uint64_t seed, unsigned n, unsigned loops) {
  static const nub_pvm_op ops3[] = {PVM_OP_ADD_64, PVM_OP_SUB_64, PVM_OP_MUL_64, PVM_OP_XOR,
                                    PVM_OP_SHLO_L_64, PVM_OP_ROT_R_64};
  static const nub_pvm_op opsi[] = {PVM_OP_ADD_IMM_64, PVM_OP_MUL_IMM_64, PVM_OP_XOR_IMM};
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint8_t r = 0; r < 12; r++)
    nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, r, 0, 0, rng_next(&s) & 0x7fffffff, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 12, 0, 0, loops, 0);
  nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
  uint32_t loop = nub_pvm_builder_label(b);
  nub_pvm_builder_bind(b, loop);
  for (unsigned i = 0; i < n; i++) {
    uint64_t x = rng_next(&s);
    uint8_t ra = (uint8_t)(x % 12), rb = (uint8_t)(x >> 8) % 12, rd = (uint8_t)(x >> 16) % 12;
    if (x >> 63)
      nub_pvm_builder_insn(b, ops3[(x >> 24) % 6], ra, rb, rd, 0, 0);
    else
      nub_pvm_builder_insn(b, opsi[(x >> 24) % 3], ra, rb, 0, (x >> 32) & 0xffff, 0);
  }
  nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 12, 12, 0, (uint64_t)-1, 0);
  nub_pvm_builder_branch(b, PVM_OP_BRANCH_NE_IMM, 12, 0, 0, loop);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 5, 0, 0, (uint64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 5, 0, 0, 0, 0);
  return jt_finish_gp07(b);
}

/* assert_* are not for other threads: failures come back as a message */
static const char *run_on(const nub_pvm_engine *e, const nub_pvm_program *prog, void *code,
                          nub_pvm_mem *mem, result *r) {
  nub_pvm_vm vm;
  nub_pvm_error err;
  if (nub_pvm_mem_reset(mem, &err) || nub_pvm_vm_init(&vm, prog, mem, e, code, &err))
    return "vm set-up failed";
  vm.gas = 1000000000;
  r->status = nub_pvm_vm_run(&vm);
  r->pc = vm.pc;
  r->gas = vm.gas;
  memcpy(r->regs, vm.regs, sizeof r->regs);
  nub_pvm_vm_fini(&vm);
  return NULL;
}

static bool same(const result *a, const result *b) {
  return a->status == b->status && a->pc == b->pc && a->gas == b->gas &&
         !memcmp(a->regs, b->regs, sizeof a->regs);
}

static nub_pvm_mem *mem;

static void expect_interp(const nub_pvm_program *prog, const nub_jit_code *code) {
  result want, got;
  assert_null(run_on(&nub_pvm_engine_interp, prog, NULL, mem, &want));
  assert_int_equal(want.status, PVM_HALT);
  assert_null(run_on(&nub_jit_engine, prog, (void *)code, mem, &got));
  if (!same(&want, &got))
    fail_msg("jit: %s pc %u gas %lld r0 0x%llx; interp: %s pc %u gas %lld r0 0x%llx",
             nub_pvm_status_name(got.status), got.pc, (long long)got.gas,
             (unsigned long long)got.regs[0], nub_pvm_status_name(want.status), want.pc,
             (long long)want.gas, (unsigned long long)want.regs[0]);
}

static nub_jit_code *compile(const nub_pvm_program *prog) {
  nub_jit_code *code;
  nub_pvm_error err;
  if (nub_jit_compile(prog, NULL, &code, &err)) fail_msg("compile: %s", err.msg);
  return code;
}

/* The permissions of the mapping holding addr ("r-xp", ...), or "" when
** nothing is mapped there. */
static void perms_at(const void *addr, char out[8]) {
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  out[0] = 0;
  assert_non_null(maps);
  while (fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)addr >= lo &&
        (uintptr_t)addr < hi) {
      memcpy(out, perms, 8);
      break;
    }
  }
  fclose(maps);
}

static int setup(void **state) {
  nub_pvm_error err;
  (void)state;
  nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
  return nub_pvm_mem_new(&mem, &err);
}

static int teardown(void **state) {
  (void)state;
  nub_pvm_mem_free(mem);
  nub_jit_set_code_pool(0, 0);
  return 0;
}

static int empty_pool(void **state) {
  (void)state;
  nub_jit_set_code_pool(0, 0);
  nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
  return 0;
}

/* ---- reuse ---- */

/* A big program's pages, freed, then a small one and a bigger one
** compiled into them: each runs as the interpreter, in the pooled pages. */
static void reused_code_runs_like_the_interpreter(void **state) {
  static const struct { uint64_t seed; unsigned n, loops; } progs[] = {
    {1, 20000, 3}, {2, 300, 50}, {3, 700, 20}, {4, 40000, 2}, {5, 5, 1000},
  };
  unsigned maps;
  size_t bytes;
  (void)state;
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    nub_pvm_program *prog = random_program(progs[i].seed, progs[i].n, progs[i].loops);
    jit_pool_usage(&maps, &bytes);
    assert_int_equal(maps, i ? 1 : 0);           /* the previous program's mapping */
    nub_jit_code *code = compile(prog);
    jit_pool_usage(&maps, &bytes);
    assert_int_equal(maps, 0);                   /* taken by this compile */
    expect_interp(prog, code);
    nub_jit_code_free(code);
    nub_pvm_program_free(prog);
  }
}

/* After a 40000-instruction program, a 300-instruction one in the same
** mapping: past its code, int3 to the end of the page; after that page,
** nothing of the old code is mapped executable or resident. */
static void nothing_of_the_old_code_stays_past_the_new(void **state) {
  (void)state;
  nub_pvm_program *big = random_program(7, 40000, 1), *small = random_program(8, 300, 5);
  nub_jit_code *code = compile(big);
  uint8_t *old = code->exec;
  size_t old_pages = code->code_pages;
  char perms[8];
  assert_true(old_pages > 16 * PAGE);
  nub_jit_code_free(code);
  perms_at(old, perms);
  assert_string_equal(perms, "rw-p");            /* pooled: read-write, not executable */
  perms_at(old + old_pages - 1, perms);
  assert_string_equal(perms, "rw-p");

  uint8_t *copy = malloc(old_pages);
  assert_non_null(copy);
  memcpy(copy, old, old_pages);                  /* the old code, still readable */
  code = compile(small);
  assert_ptr_equal(code->exec, old);             /* shrunk in place */
  assert_true(code->code_pages < old_pages);
  assert_true(code->native_size < code->code_pages);
  for (size_t i = code->native_size; i < code->code_pages; i++)
    if (code->exec[i] != 0xCC) fail_msg("byte %zu past the code is 0x%02x, not int3", i, code->exec[i]);
  perms_at(code->exec, perms);
  assert_string_equal(perms, "r-xp");
  /* the pages after it held old code: unmapped, so the mapping is the
  ** code's pages, what the stats count */
  assert_int_equal(code->map_size, code->code_pages);
  /* and whatever is mapped there now (another mapping may land in the
  ** hole) is neither executable nor the old code */
  for (size_t off = code->code_pages; off < old_pages; off += PAGE) {
    perms_at(old + off, perms);
    if (!perms[0]) continue;
    if (perms[2] == 'x') fail_msg("page at +%zu past the code is executable (%s)", off, perms);
    if (perms[0] == 'r' && !memcmp(old + off, copy + off, PAGE))
      fail_msg("page at +%zu past the code still holds the old code", off);
  }
  free(copy);
  assert_true(nub_jit_code_stats(code)->kept_bytes >= code->code_pages);
  expect_interp(small, code);
  nub_jit_code_free(code);
  nub_pvm_program_free(big);
  nub_pvm_program_free(small);
}

/* A compile into fresh pages populates them a stretch ahead of the cursor
** (x86.c, populate_ahead; 5 to 60000 instructions: one stretch to
** nine): the code runs as the interpreter, and no page
** populated past the code stays resident (mincore) in what the program
** keeps; a small program's reservation is not cut back (its code fits
** in the head, which is left to fault). */
static void fresh_pages_run_and_none_stays_past_the_code(void **state) {
  static const struct { uint64_t seed; unsigned n; } progs[] = {
    {11, 5}, {12, 300}, {13, 3000}, {14, 20000}, {15, 60000},
  };
  (void)state;
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    nub_pvm_program *prog = random_program(progs[i].seed, progs[i].n, 2);
    nub_jit_set_code_pool(0, 0);
    nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
    nub_jit_code *code = compile(prog);
    size_t pages = code->code_pages / PAGE, rest = (code->map_size - code->code_pages) / PAGE;
    unsigned char *in = malloc(pages + rest + 1);
    assert_non_null(in);
    assert_int_equal(mincore(code->exec, code->map_size, in), 0);
    for (size_t k = 0; k < pages; k++)
      if (!(in[k] & 1)) fail_msg("program %zu: code page %zu not resident", i, k);
    for (size_t k = pages; k < pages + rest; k++)
      if (in[k] & 1) fail_msg("program %zu: page %zu past the code's %zu is resident", i, k, pages);
    free(in);
    /* a small program's code fits in the head left to fault: nothing
    ** populated past it, so the rest stays mapped (no unmap, no flush) */
    if (progs[i].n <= 5) assert_true(code->map_size > code->code_pages);
    expect_interp(prog, code);
    nub_jit_code_free(code);
    nub_pvm_program_free(prog);
  }
}

/* ---- bounds ---- */

static void pool_stays_within_its_bounds(void **state) {
  enum { N = 8 };
  static const unsigned sizes[N] = {10, 3000, 200, 9000, 50, 20000, 700, 1};
  nub_pvm_program *prog[N];
  nub_jit_code *code[N];
  size_t max_pages = 0;
  unsigned maps;
  size_t bytes;
  (void)state;
  for (int i = 0; i < N; i++) {
    prog[i] = random_program(100 + (uint64_t)i, sizes[i], 1);
    code[i] = compile(prog[i]);
    if (code[i]->code_pages > max_pages) max_pages = code[i]->code_pages;
  }
  const struct { unsigned maps; size_t bytes; } bounds[] = {
    {2, 3 * PAGE}, {3, 1 << 20}, {16, 8 * PAGE}, {1, max_pages - PAGE}, {100, 64 << 20},
  };
  for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
    nub_jit_set_code_pool(bounds[k].maps, bounds[k].bytes);
    unsigned cap = bounds[k].maps < 16 ? bounds[k].maps : 16;
    for (int i = 0; i < N; i++) {
      nub_jit_code_free(code[i]);
      jit_pool_usage(&maps, &bytes);
      if (maps > cap || bytes > bounds[k].bytes)
        fail_msg("bound %u maps %zu bytes: the pool holds %u maps %zu bytes", bounds[k].maps,
                 bounds[k].bytes, maps, bytes);
    }
    jit_pool_usage(&maps, &bytes);
    assert_true(maps > 0);                         /* each bound kept something */
    for (int i = 0; i < N; i++) {
      code[i] = compile(prog[i]);
      jit_pool_usage(&maps, &bytes);
      assert_true(maps <= cap && bytes <= bounds[k].bytes);
    }
    for (int i = 0; i < N; i++) expect_interp(prog[i], code[i]);
  }
  /* lowering the bound unmaps at once; (0, 0) empties and keeps it empty */
  for (int i = 0; i < N; i++) nub_jit_code_free(code[i]);
  nub_jit_set_code_pool(1, 1 << 20);
  jit_pool_usage(&maps, &bytes);
  assert_int_equal(maps, 1);
  nub_jit_set_code_pool(0, 0);
  jit_pool_usage(&maps, &bytes);
  assert_true(maps == 0 && bytes == 0);
  code[0] = compile(prog[0]);
  nub_jit_code_free(code[0]);
  jit_pool_usage(&maps, &bytes);
  assert_int_equal(maps, 0);
  for (int i = 0; i < N; i++) nub_pvm_program_free(prog[i]);
  nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
}

/* ---- threads ---- */

enum { THREADS = 4, ROUNDS = 40, KINDS = 3 };
static nub_pvm_program *kinds[KINDS];
static result expected[KINDS];

typedef struct worker {
  unsigned id;
  char error[256];
} worker;

static void *compile_run_free(void *arg) {
  worker *w = arg;
  nub_pvm_mem *m;
  nub_pvm_error err;
  if (nub_pvm_mem_new(&m, &err)) {
    snprintf(w->error, sizeof w->error, "mem: %s", err.msg);
    return NULL;
  }
  for (unsigned r = 0; r < ROUNDS && !w->error[0]; r++) {
    unsigned k = (w->id + r) % KINDS;
    nub_jit_code *code;
    result got;
    const char *bad;
    if (nub_jit_compile(kinds[k], NULL, &code, &err)) {
      snprintf(w->error, sizeof w->error, "compile: %s", err.msg);
      break;
    }
    if ((bad = run_on(&nub_jit_engine, kinds[k], code, m, &got)))
      snprintf(w->error, sizeof w->error, "%s", bad);
    else if (!same(&got, &expected[k]))
      snprintf(w->error, sizeof w->error, "thread %u round %u program %u: not the interpreter's result",
               w->id, r, k);
    nub_jit_code_free(code);
  }
  nub_pvm_mem_free(m);
  return NULL;
}

static void threads_share_the_pool(void **state) {
  static const unsigned sizes[KINDS] = {50, 2000, 8000};
  pthread_t t[THREADS];
  worker w[THREADS];
  unsigned maps;
  size_t bytes;
  (void)state;
  nub_jit_set_code_pool(3, 256 * PAGE);
  for (int k = 0; k < KINDS; k++) {
    kinds[k] = random_program(200 + (uint64_t)k, sizes[k], 3);
    assert_null(run_on(&nub_pvm_engine_interp, kinds[k], NULL, mem, &expected[k]));
    assert_int_equal(expected[k].status, PVM_HALT);
  }
  for (unsigned i = 0; i < THREADS; i++) {
    w[i] = (worker){.id = i};
    assert_int_equal(pthread_create(&t[i], NULL, compile_run_free, &w[i]), 0);
  }
  for (unsigned i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    if (w[i].error[0]) fail_msg("%s", w[i].error);
  }
  jit_pool_usage(&maps, &bytes);
  assert_true(maps >= 1 && maps <= 3 && bytes <= 256 * PAGE);
  for (int k = 0; k < KINDS; k++) nub_pvm_program_free(kinds[k]);
  nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(reused_code_runs_like_the_interpreter, empty_pool),
    cmocka_unit_test_setup(nothing_of_the_old_code_stays_past_the_new, empty_pool),
    cmocka_unit_test_setup(fresh_pages_run_and_none_stays_past_the_code, empty_pool),
    cmocka_unit_test_setup(pool_stays_within_its_bounds, empty_pool),
    cmocka_unit_test_setup(threads_share_the_pool, empty_pool),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
