/*
** nub bench: benchmarks that print figures (never pass/fail on time).
**
**   bench interp   the 30 M-instruction loop on the interpreter
**   bench jit      the loop and the bench .s kernels on the JIT, the
**                  interpreter and natively (C, -O2), plus compile time
**                  per KB at several program sizes
**   bench gas      program analysis with and without the GP 0.8 block
**                  cost model, per KB, next to JIT compile time
**   bench programs the C workloads as PVM programs against native
**                  (tools/bench_programs.c)
**   bench hash     SHA-256 on each path (SHA extensions, portable,
**                  libsodium), 64-byte pairs, SSZ roots of Data caps,
**                  and openssl's figure as the hardware limit
**   bench invoke   round trips and put_cap (tools/bench_invoke.c)
**   bench recovery replacing a dead guest (tools/bench_recovery.c)
**   bench compile  compile time per KB and compile memory per blob byte
**   bench cache    guest memory with the JIT cache bounded (bench_cache.c)
**   bench subvm    sub-VMs: fib via spawns, CALL/HALT ping-pong (bench_subvm.c)
**   bench lanes    invocations/s over lanes and over handles (bench_lanes.c)
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench/bench.h"
#include "../bench/native/native.h"
#include "../src/cap/cap_internal.h"
#include "cli.h"
#include "nub/jit.h"
#include <sodium.h>

#define LOOP_ITERATIONS 10000000u
#define RUNS 7
#define INTERP_RUNS 3
#define GAS 100000000000ll

/* Runs the 30 M-instruction loop on an engine; returns 0 and the median
** and best time in ns, or -1 (after printing why) on a wrong result. */
static int time_loop(const nub_pvm_engine *engine, uint64_t *median, uint64_t *best,
                     uint64_t *compile_ns) {
  size_t len;
  uint8_t *blob = bench_loop_blob(LOOP_ITERATIONS, &len);
  nub_pvm_program *prog = NULL;
  nub_pvm_mem *mem = NULL;
  nub_pvm_error err;
  void *code = NULL;
  uint64_t samples[RUNS];
  int rc = -1;
  if (!blob || nub_pvm_program_load(PVM_PROFILE_GP07, blob, len, &prog, &err) ||
      nub_pvm_mem_new(&mem, &err)) {
    fprintf(stderr, "bench: setup failed: %s\n", blob ? err.msg : "out of memory");
    goto out;
  }
  uint64_t t0 = bench_now_ns();
  if (engine->compile(prog, &code, &err)) { fprintf(stderr, "bench: compile: %s\n", err.msg); goto out; }
  *compile_ns = bench_now_ns() - t0;
  for (int run = 0; run < RUNS; run++) {
    nub_pvm_vm vm;
    if (nub_pvm_vm_init(&vm, prog, mem, engine, code, &err)) { fprintf(stderr, "bench: %s\n", err.msg); goto out; }
    vm.regs[0] = PVM_HALT_ADDRESS;
    vm.gas = 1000000000;
    uint64_t start = bench_now_ns();
    nub_pvm_status st = nub_pvm_vm_run(&vm);
    samples[run] = bench_now_ns() - start;
    int64_t used = 1000000000 - vm.gas;
    nub_pvm_vm_fini(&vm);
    if (st != PVM_HALT || vm.regs[7] != 3ull * LOOP_ITERATIONS ||
        (uint64_t)used != bench_loop_instructions(LOOP_ITERATIONS)) {
      fprintf(stderr, "bench: %s gave a wrong result (status %s, r7 %llu, gas used %lld)\n",
              engine->name, nub_pvm_status_name(st), (unsigned long long)vm.regs[7], (long long)used);
      goto out;
    }
  }
  *best = bench_min(samples, RUNS);
  *median = bench_median(samples, RUNS);
  rc = 0;
out:
  if (code) engine->release(code);
  nub_pvm_program_free(prog);
  nub_pvm_mem_free(mem);
  free(blob);
  return rc;
}

static int bench_interp(void) {
  uint64_t median, best, compile;
  double n = (double)bench_loop_instructions(LOOP_ITERATIONS);
  if (time_loop(&nub_pvm_engine_interp, &median, &best, &compile)) return 1;
  printf("interp loop: %.0f instructions (%u iterations x 3 + 4), %d runs\n", n,
         LOOP_ITERATIONS, RUNS);
  printf("  median %.2f ms  best %.2f ms\n", median / 1e6, best / 1e6);
  printf("  %.1f M instr/s (median), %.1f M instr/s (best)\n", n / (median / 1e3),
         n / (best / 1e3));
  return 0;
}

/* ---- kernels ---- */

/* One kernel: its guest memory (one read-write span, zero or filled by
** fill), its arguments in r7..r10, and the C version run on a copy of the
** same bytes. */
typedef struct kernel {
  const char *name;
  uint32_t mem_at, mem_len;
  void (*fill)(uint8_t *buf, uint32_t len);
  uint64_t args[4];
  uint64_t (*native)(uint8_t *buf);
  uint32_t check_at, check_from, check_len;   /* memory that must equal the input at check_from */
} kernel;

#define KMEM 0x100000u

static void fill_random(uint8_t *buf, uint32_t len) {
  uint64_t s = 0x2545F4914F6CDD1Dull;
  for (uint32_t i = 0; i < len; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    buf[i] = (uint8_t)s;
  }
}

#define SIEVE_N 2000000u
#define SORT_N 6000u
#define HASH_N 5000000u
#define COPY_N (256u << 10)
#define COPY_REPS 100u

static uint64_t native_sieve(uint8_t *buf) { return bench_native_sieve(SIEVE_N, buf); }
static uint64_t native_sort(uint8_t *buf) { return bench_native_sort((uint32_t *)buf, SORT_N); }
static uint64_t native_hash(uint8_t *buf) { (void)buf; return bench_native_hash(HASH_N, 1); }
static uint64_t native_memcpy(uint8_t *buf) {
  return bench_native_memcpy(buf, buf + 0x100000, COPY_N, COPY_REPS);
}

static const kernel kernels[] = {
  {"sieve", KMEM, SIEVE_N, NULL, {SIEVE_N, KMEM, 0, 0}, native_sieve, 0, 0, 0},
  {"sort", KMEM, SORT_N * 4, fill_random, {KMEM, SORT_N, 0, 0}, native_sort, 0, 0, 0},
  {"hash", 0, 0, NULL, {HASH_N, 1, 0, 0}, native_hash, 0, 0, 0},
  {"memcpy", KMEM, 0x100000 + COPY_N, fill_random,
   {KMEM, KMEM + 0x100000, COPY_N, COPY_REPS}, native_memcpy, KMEM, KMEM + 0x100000, COPY_N},
};

typedef struct timing {
  uint64_t jit, jam, interp, native, compile;   /* median ns */
  uint64_t jit_best, jam_best, native_best;     /* fastest run, ns */
  uint64_t result;
  uint32_t code_bytes, pvm_bytes;
} timing;

static uint32_t page_up(uint32_t n) { return (n + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE * PVM_PAGE_SIZE; }

/* Guest memory for one run: the kernel's span mapped once and rewritten
** before every run (so both the guest and the C version find their pages
** present, and page-fault cost stays out of the figures). */
static int prepare_memory(const kernel *k, nub_pvm_mem *mem, const uint8_t *input, nub_pvm_error *err) {
  int rc;
  if (!k->mem_len) return PVM_OK;
  if (nub_pvm_mem_access(mem, k->mem_at) != PVM_ACCESS_RW || nub_pvm_mem_mapped_pages(mem) !=
      page_up(k->mem_len) / PVM_PAGE_SIZE) {
    if ((rc = nub_pvm_mem_reset(mem, err)) ||
        (rc = nub_pvm_mem_map(mem, k->mem_at, page_up(k->mem_len), PVM_ACCESS_RW, err)))
      return rc;
  }
  if (input) return nub_pvm_mem_write(mem, k->mem_at, input, k->mem_len, err);
  uint8_t *zero = calloc(1, k->mem_len);
  if (!zero) {
    snprintf(err->msg, sizeof err->msg, "out of memory");
    return err->code = PVM_ERR_NOMEM;
  }
  rc = nub_pvm_mem_write(mem, k->mem_at, zero, k->mem_len, err);
  free(zero);
  return rc;
}

/* Median time of runs of the kernel on engine; *result = r7, which must
** be the same every run. */
static int time_engine(const kernel *k, const nub_pvm_engine *e, const nub_pvm_program *prog, void *code,
                       nub_pvm_mem *mem, const uint8_t *input, int runs, uint64_t *median,
                       uint64_t *best, uint64_t *result) {
  uint64_t samples[RUNS];
  nub_pvm_error err;
  for (int run = 0; run < runs; run++) {
    nub_pvm_vm vm;
    if (prepare_memory(k, mem, input, &err) || nub_pvm_vm_init(&vm, prog, mem, e, code, &err)) {
      fprintf(stderr, "bench %s: %s\n", k->name, err.msg);
      return -1;
    }
    vm.regs[0] = PVM_HALT_ADDRESS;
    for (int i = 0; i < 4; i++) vm.regs[7 + i] = k->args[i];
    vm.gas = GAS;
    uint64_t t0 = bench_now_ns();
    nub_pvm_status st = nub_pvm_vm_run(&vm);
    samples[run] = bench_now_ns() - t0;
    nub_pvm_vm_fini(&vm);
    if (st != PVM_HALT || (run && vm.regs[7] != *result)) {
      fprintf(stderr, "bench %s: %s ended with %s at pc %u (r7 %llu)\n", k->name, e->name,
              nub_pvm_status_name(st), vm.pc, (unsigned long long)vm.regs[7]);
      return -1;
    }
    *result = vm.regs[7];
  }
  *best = bench_min(samples, (size_t)runs);
  *median = bench_median(samples, (size_t)runs);
  return 0;
}

static int time_native(const kernel *k, const uint8_t *input, uint64_t *median, uint64_t *best,
                       uint64_t *result) {
  uint64_t samples[RUNS];
  size_t len = k->mem_len ? k->mem_len : 1;
  uint8_t *buf = malloc(len);
  if (!buf) return -1;
  for (int run = 0; run < RUNS; run++) {
    if (k->fill) memcpy(buf, input, len);
    else memset(buf, 0, len);
    uint64_t t0 = bench_now_ns();
    *result = k->native(buf);
    samples[run] = bench_now_ns() - t0;
  }
  free(buf);
  *best = bench_min(samples, RUNS);
  *median = bench_median(samples, RUNS);
  return 0;
}

/* The kernel's text assembled, loaded and compiled under profile. */
static int kernel_code(const kernel *k, nub_pvm_profile profile, nub_pvm_program **prog,
                       nub_jit_code **code) {
  const char *text = bench_source_text(k->name);
  uint8_t *blob = NULL;
  size_t len;
  nub_pvm_error err;
  *prog = NULL;
  *code = NULL;
  int rc = !text || nub_pvm_asm(profile, text, strlen(text), &blob, &len, NULL, &err) ||
           nub_pvm_program_load(profile, blob, len, prog, &err) ||
           nub_jit_compile(*prog, NULL, code, &err);
  if (rc) fprintf(stderr, "bench %s (%s): %s\n", k->name, nub_pvm_profile_name(profile),
                  text ? err.msg : "no source");
  free(blob);
  return rc ? -1 : 0;
}

static int bench_kernel(const kernel *k, nub_pvm_mem *mem, timing *t) {
  uint8_t *input = NULL;
  nub_pvm_program *prog = NULL, *jam_prog = NULL;
  nub_jit_code *code = NULL, *jam_code = NULL;
  nub_pvm_error err;
  uint64_t jit_r = 0, jam_r = 0, interp_r = 0, native_r = 0;
  int rc = -1;
  if (kernel_code(k, PVM_PROFILE_GP07, &prog, &code) ||
      kernel_code(k, PVM_PROFILE_JAMV1, &jam_prog, &jam_code))
    goto out;
  if (k->fill) {
    if (!(input = malloc(k->mem_len))) goto out;
    k->fill(input, k->mem_len);
  }
  t->compile = nub_jit_code_stats(code)->compile_ns;
  t->code_bytes = nub_jit_code_stats(code)->code_bytes;
  t->pvm_bytes = nub_jit_code_stats(code)->pvm_bytes;
  if (time_engine(k, &nub_jit_engine, prog, code, mem, input, RUNS, &t->jit, &t->jit_best, &jit_r))
    goto out;
  if (k->check_len) {                       /* the copy really happened */
    uint8_t *copy = malloc(k->check_len);
    bool same = copy && !nub_pvm_mem_read(mem, k->check_at, copy, k->check_len, &err) &&
                !memcmp(copy, input + (k->check_from - k->mem_at), k->check_len);
    free(copy);
    if (!same) { fprintf(stderr, "bench %s: the JIT run left wrong memory\n", k->name); goto out; }
  }
  /* jamv1: A.9 costs, placed as blocks are first entered (lazy costs) */
  if (time_engine(k, &nub_jit_engine, jam_prog, jam_code, mem, input, RUNS, &t->jam, &t->jam_best,
                  &jam_r))
    goto out;
  uint64_t interp_best;
  if (time_engine(k, &nub_pvm_engine_interp, prog, NULL, mem, input, INTERP_RUNS, &t->interp,
                  &interp_best, &interp_r) ||
      time_native(k, input, &t->native, &t->native_best, &native_r))
    goto out;
  if (jit_r != interp_r || jit_r != native_r || jam_r != jit_r) {
    fprintf(stderr, "bench %s: results differ: jit %llu, jamv1 %llu, interp %llu, native %llu\n",
            k->name, (unsigned long long)jit_r, (unsigned long long)jam_r,
            (unsigned long long)interp_r, (unsigned long long)native_r);
    goto out;
  }
  t->result = jit_r;
  rc = 0;
out:
  nub_jit_code_free(code);
  nub_jit_code_free(jam_code);
  nub_pvm_program_free(prog);
  nub_pvm_program_free(jam_prog);
  free(input);
  return rc;
}

/* ---- compile time ---- */

/* Thread CPU time: the machine may be shared, and loading and compiling
** are single-threaded computations. */
static uint64_t cpu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Load (nub_pvm_program_load) and compile (nub_jit_compile) of the synthetic
** program at several sizes, in thread CPU time, as two series of RUNS,
** each figure the fastest per byte of code.  Every run takes a program of
** its own (the same mix, another seed): run on one program again and
** again, the branch predictors learn the walk's way through it: 16
** programs of 16k instructions taken in turn loaded and compiled 21-29 %
** slower than one of them again and again (64k instructions: 2-10 %;
** docs/jit.md).  Cold: the code pool emptied before each load and
** compile, so the compile maps fresh pages (what a first compile in a
** process costs).  Warm: load,
** compile and free in a loop with nothing between, the compile into the
** pages the last one freed (the pool, on by default: every later compile
** in a running engine).  The warm series is not interleaved with cold
** compiles: on the dev VM a compile into fresh pages left the next load
** and compile a third slower (docs/jit.md).  load/KB and +warm/KB are
** the warm series'; +cold/KB is the cold series' load + compile.  The
** same blobs under gp07 (1 gas per instruction) and jamv1 (the A.9
** pipeline simulation at load): their opcodes are numbered alike in both. */
typedef struct compile_times {
  double load, compile;      /* fastest ns per byte of code */
  uint32_t native, pvm_bytes;
  uint64_t peak, kept;
} compile_times;

enum { SERIES_BLOBS = RUNS + 1 };   /* the warm series' first run is not measured */

static int compile_series(nub_pvm_profile profile, uint8_t *const blobs[SERIES_BLOBS],
                          const size_t lens[SERIES_BLOBS], bool cold, compile_times *t) {
  nub_pvm_error err;
  t->load = t->compile = INFINITY;
  for (int run = 0; run < RUNS + !cold; run++) {   /* warm: one more, unmeasured, first */
    nub_pvm_program *prog = NULL;
    nub_jit_code *code = NULL;
    if (cold) {
      nub_jit_set_code_pool(0, 0);                 /* empty: the compile maps fresh pages */
      nub_jit_set_code_pool(NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES);
    }
    uint64_t t0 = cpu_now_ns();
    if (nub_pvm_program_load(profile, blobs[run], lens[run], &prog, &err)) {
      fprintf(stderr, "bench: load of the %zu-byte blob: %s\n", lens[run], err.msg);
      return 1;
    }
    uint64_t t1 = cpu_now_ns();
    if (nub_jit_compile(prog, NULL, &code, &err)) {
      fprintf(stderr, "bench: compile: %s\n", err.msg);
      nub_pvm_program_free(prog);
      return 1;
    }
    uint64_t t2 = cpu_now_ns();
    const nub_jit_stats *st = nub_jit_code_stats(code);
    if (cold || run) {
      double bytes = st->pvm_bytes ? st->pvm_bytes : 1;
      if ((double)(t1 - t0) / bytes < t->load) t->load = (double)(t1 - t0) / bytes;
      if ((double)(t2 - t1) / bytes < t->compile) t->compile = (double)(t2 - t1) / bytes;
    }
    if (run == 0) {                                /* sizes: seed 0's program */
      t->native = st->code_bytes;
      t->pvm_bytes = st->pvm_bytes;
      t->peak = nub_pvm_program_bytes(prog) + st->peak_bytes;
      t->kept = nub_pvm_program_bytes(prog) + st->kept_bytes;
    }
    nub_jit_code_free(code);                       /* into the pool */
    nub_pvm_program_free(prog);
  }
  return 0;
}

static int bench_compile_scaling(void) {
  static const uint32_t sizes[] = {4096, 16384, 65536, 262144, 1048576};
  static const nub_pvm_profile profiles[] = {PVM_PROFILE_GP07, PVM_PROFILE_JAMV1};
  printf("\nload + compile, synthetic programs (the same instruction mix, another program\n"
         "each run), thread CPU time, fastest of %d per KB of PVM code; compile cold (pool\n"
         "emptied: fresh pages) and warm (load, compile, free in a loop: pooled pages); load\n"
         "is the warm series'; +cold is the cold series' load + compile; ms at the fastest\n"
         "per KB, sizes of the first program:\n", RUNS);
  printf("  %-7s %8s %10s %10s %9s %9s %9s %8s %8s %8s %9s %9s %7s %7s\n", "profile",
         "insns", "PVM bytes", "native B", "load", "cold", "warm", "load/KB", "cold/KB",
         "warm/KB", "+cold/KB", "+warm/KB", "peak/B", "kept/B");
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t *blobs[SERIES_BLOBS] = {0};
    size_t lens[SERIES_BLOBS];
    int rc = 0;
    for (int k = 0; k < SERIES_BLOBS && !rc; k++)
      if (!(blobs[k] = bench_mixed_blob(sizes[i], (uint64_t)k, &lens[k]))) {
        fprintf(stderr, "bench: synthetic program of %u instructions: builder failed\n", sizes[i]);
        rc = 1;
      }
    for (size_t pi = 0; pi < sizeof profiles / sizeof profiles[0] && !rc; pi++) {
      nub_pvm_profile profile = profiles[pi];
      compile_times c, w;
      if (compile_series(profile, blobs, lens, true, &c) ||
          compile_series(profile, blobs, lens, false, &w)) {
        rc = 1;
        break;
      }
      double kb = w.pvm_bytes / 1024.0, per_kb = 1024.0 / 1e3;   /* ns per byte -> us per KB */
      printf("  %-7s %8u %10u %10u %6.2f ms %6.2f ms %6.2f ms %5.1f us %5.1f us %5.1f us %6.1f us "
             "%6.1f us %6.1fx %6.1fx\n",
             nub_pvm_profile_name(profile), sizes[i], w.pvm_bytes, w.native,
             w.load * kb * per_kb / 1e3, c.compile * kb * per_kb / 1e3,
             w.compile * kb * per_kb / 1e3, w.load * per_kb, c.compile * per_kb,
             w.compile * per_kb, (c.load + c.compile) * per_kb, (w.load + w.compile) * per_kb,
             (double)c.peak / (double)lens[0], (double)c.kept / (double)lens[0]);
    }
    for (int k = 0; k < SERIES_BLOBS; k++) free(blobs[k]);
    if (rc) return 1;
  }
  return 0;
}

/* Compile memory per byte of blob for one-instruction programs: the
** analysis (nub_pvm_program_bytes) plus the JIT's peak (capacities of its
** code buffer and arrays) and what the compiled program keeps.  The
** kernel's bound, NK_COMPILE_BYTES_PER_BYTE, must stay above the worst. */
static int bench_compile_memory(void) {
  /* loop: each copy is `L: op; jump L` (count copies), a loop whose entry
  ** and its fall-through get a merged gas check and so a second copy of
  ** the entry out of line (docs/jit.md); 4105 loops was the worst count
  ** of about 120 tried (the code buffer's doubling) */
  static const struct { const char *name; nub_pvm_op op; uint8_t a, b, d; uint32_t loop; } shapes[] = {
    {"add_64 r7, r7, r8", PVM_OP_ADD_64, 7, 8, 7, 0},
    {"rem_s_64 r7, r7, r8", PVM_OP_REM_S_64, 7, 8, 7, 0},
    {"load_u64 r7, 0x20000", PVM_OP_LOAD_U64, 7, 0, 0, 0},
    {"fallthrough", PVM_OP_FALLTHROUGH, 0, 0, 0, 0},
    {"trap", PVM_OP_TRAP, 0, 0, 0, 0},
    {"ecalli 0", PVM_OP_ECALLI, 0, 0, 0, 0},
    {"sbrk r7, r8", PVM_OP_SBRK, 8, 0, 7, 0},
    {"jump_ind r8, 0", PVM_OP_JUMP_IND, 8, 0, 0, 0},
    {"move_reg r7, r8", PVM_OP_MOVE_REG, 8, 0, 7, 0},
    {"L: fallthrough; jump L", PVM_OP_FALLTHROUGH, 0, 0, 0, 4105},
  };
  enum { COUNT = 262144 };
  printf("\ncompile memory, %d copies of one instruction or the loops named (bytes per blob byte):\n",
         COUNT);
  printf("  %-22s %10s %10s %10s %8s %8s\n", "instruction", "PVM bytes", "load bound", "analysis",
         "peak", "kept");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
    uint8_t *blob = NULL;
    size_t len = 0;
    nub_pvm_program *prog = NULL;
    nub_jit_code *code = NULL;
    nub_pvm_error err;
    uint64_t imm = shapes[i].op == PVM_OP_LOAD_U64 ? 0x20000 : 0;
    uint32_t count = shapes[i].loop ? shapes[i].loop : COUNT;
    for (uint32_t k = 0; b && k < count; k++) {
      uint32_t label = shapes[i].loop ? nub_pvm_builder_label(b) : 0;
      if (shapes[i].loop) nub_pvm_builder_bind(b, label);
      nub_pvm_builder_insn(b, shapes[i].op, shapes[i].a, shapes[i].b, shapes[i].d, imm, 0);
      if (shapes[i].loop) nub_pvm_builder_branch(b, PVM_OP_JUMP, 0, 0, 0, label);
    }
    if (b) nub_pvm_builder_insn(b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
    if (!b || nub_pvm_builder_finish(b, &blob, &len, &err) ||
        nub_pvm_program_load(PVM_PROFILE_GP07, blob, len, &prog, &err) ||
        nub_jit_compile(prog, NULL, &code, &err)) {
      fprintf(stderr, "bench: %s: %s\n", shapes[i].name, b ? err.msg : "out of memory");
      nub_pvm_builder_free(b);
      nub_pvm_program_free(prog);
      free(blob);
      return 1;
    }
    double n = (double)len, analysis = (double)nub_pvm_program_bytes(prog);
    const nub_jit_stats *st = nub_jit_code_stats(code);
    printf("  %-22s %10zu %9.1fx %9.1fx %7.1fx %7.1fx\n", shapes[i].name, len,
           (double)nub_pvm_program_load_bytes(nub_pvm_program_blob(prog), len) / n, analysis / n,
           (analysis + (double)st->peak_bytes) / n, (analysis + (double)st->kept_bytes) / n);
    nub_jit_code_free(code);
    nub_pvm_builder_free(b);
    nub_pvm_program_free(prog);
    free(blob);
  }
  return 0;
}

static int bench_jit(void) {
  double load[3] = {0};
  uint64_t jit_med, jit_best, nub_jit_compile, int_med, int_best, int_compile;
  nub_pvm_mem *mem = NULL;
  nub_pvm_error err;
  if (getloadavg(load, 3) < 0) load[0] = -1;
  printf("nub bench jit: times are medians of %d runs (interpreter %d); jit/nat compares\n"
         "medians, (best) the fastest runs; jit and interp run the gp07 encoding, jamv1 the\n"
         "JIT on the jamv1 one (A.9 gas, costs placed as blocks are first entered); load\n"
         "average %.2f at start\n", RUNS, INTERP_RUNS, load[0]);
  if (time_loop(&nub_jit_engine, &jit_med, &jit_best, &nub_jit_compile) ||
      time_loop(&nub_pvm_engine_interp, &int_med, &int_best, &int_compile))
    return 1;
  printf("\n%-8s %20s %10s %10s %10s %10s %8s %8s %10s %8s\n", "kernel", "result (r7)", "jit",
         "jamv1", "interp", "native", "jit/nat", "(best)", "compile", "code");
  printf("%-8s %20u %7.2f ms %10s %7.2f ms %10s %8s %8s %7.1f us %8s   (30 M instructions; best jit %.2f ms)\n",
         "loop", 3 * LOOP_ITERATIONS, jit_med / 1e6, "-", int_med / 1e6, "-", "-", "-",
         nub_jit_compile / 1e3, "-", jit_best / 1e6);
  if (nub_pvm_mem_new(&mem, &err)) { fprintf(stderr, "bench: %s\n", err.msg); return 1; }
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    timing t;
    if (bench_kernel(&kernels[i], mem, &t)) { nub_pvm_mem_free(mem); return 1; }
    printf("%-8s %20llu %7.2f ms %7.2f ms %7.2f ms %7.2f ms %7.2fx %7.2fx %7.1f us %6u B\n",
           kernels[i].name, (unsigned long long)t.result, t.jit / 1e6, t.jam / 1e6, t.interp / 1e6,
           t.native / 1e6, (double)t.jit / (double)t.native,
           (double)t.jit_best / (double)t.native_best, t.compile / 1e3, t.code_bytes);
  }
  nub_pvm_mem_free(mem);
  printf("results agree: jit = jamv1 = interpreter = native for every kernel\n");
  return bench_compile_scaling() || bench_compile_memory();
}

/* ---- gas cost model ---- */

#define GAS_RUNS 9

/* Fastest of GAS_RUNS nub_pvm_program_load under each of two profiles and
** every block's cost asked (the pipeline profiles place a block when its
** cost is first asked: this is all of them, in order), in CPU ns; the two
** alternate so that drift on a shared machine hits both. */
static int time_loads(const nub_pvm_profile profile[2], const uint8_t *blob, size_t len,
                      uint64_t best[2], uint32_t *blocks) {
  best[0] = best[1] = UINT64_MAX;
  for (int run = 0; run < 2 * GAS_RUNS; run++) {
    nub_pvm_program *prog;
    nub_pvm_error err;
    uint64_t t0 = cpu_now_ns();
    if (nub_pvm_program_load(profile[run & 1], blob, len, &prog, &err)) {
      fprintf(stderr, "bench: load (%s): %s\n", nub_pvm_profile_name(profile[run & 1]), err.msg);
      return 1;
    }
    uint32_t cursor = 0, pc, cost;
    bool basic;
    while (nub_pvm_program_next_block(prog, &cursor, &pc, &cost, &basic)) {}
    uint64_t t = cpu_now_ns() - t0;
    if (t < best[run & 1]) best[run & 1] = t;
    *blocks = nub_pvm_program_block_count(prog);
    nub_pvm_program_free(prog);
  }
  return 0;
}

/* One program: analysis under gp07 (1 gas per instruction: today's
** analysis), under the pipeline model, and the JIT compile of it. */
static int gas_row(const char *name, const uint8_t *blob, size_t len, nub_pvm_profile model) {
  uint64_t both[2], jit = UINT64_MAX;
  uint32_t blocks, code_len;
  nub_pvm_program *prog;
  nub_pvm_error err;
  const nub_pvm_profile profiles[2] = {PVM_PROFILE_GP07, model};
  if (time_loads(profiles, blob, len, both, &blocks)) return 1;   /* blocks: the model's */
  uint64_t plain = both[0], costed = both[1];
  if (nub_pvm_program_load(PVM_PROFILE_GP07, blob, len, &prog, &err)) {
    fprintf(stderr, "bench: %s: %s\n", name, err.msg);
    return 1;
  }
  code_len = nub_pvm_program_blob(prog)->code_len;
  for (int run = 0; run < GAS_RUNS; run++) {
    nub_jit_code *code;
    uint64_t t0 = cpu_now_ns();
    if (nub_jit_compile(prog, NULL, &code, &err)) {
      fprintf(stderr, "bench: compile %s: %s\n", name, err.msg);
      nub_pvm_program_free(prog);
      return 1;
    }
    uint64_t t = cpu_now_ns() - t0;
    if (t < jit) jit = t;
    nub_jit_code_free(code);
  }
  nub_pvm_program_free(prog);
  double kb = code_len / 1024.0, cost = costed > plain ? (double)(costed - plain) : 0;
  printf("  %-12s %9u %7u %10.1f %10.1f %10.1f %10.1f %8.0f %%\n", name, code_len, blocks,
         plain / 1e3 / kb, costed / 1e3 / kb, cost / 1e3 / kb, jit / 1e3 / kb,
         100.0 * cost / (double)(plain + jit));
  if (!strcmp(name, "doom"))
    printf("  doom: analysis %.2f ms (gp07) / %.2f ms (%s), JIT compile %.2f ms\n", plain / 1e6,
           costed / 1e6, nub_pvm_profile_name(model), jit / 1e6);
  return 0;
}

static int bench_gas(int argc, char **argv) {
  const char *doom = argc > 2 ? argv[2] : "tests/vectors/pvm-newgas/integration/doom.json";
  printf("nub bench gas: program analysis (decode, blocks, every block's gas) and JIT compile\n"
         "per KB of code, thread CPU time, fastest of %d; \"cost\" is what the gp08-draft block\n"
         "simulation adds to gp07's 1 per instruction, \"added\" is that over gp07 analysis +\n"
         "JIT compile (a JIT run places only the blocks it enters: docs/gas.md)\n",
         GAS_RUNS);
  printf("  %-12s %9s %7s %10s %10s %10s %10s %10s\n", "program", "code B", "blocks",
         "gp07 us/KB", "gp08 us/KB", "cost us/KB", "jit us/KB", "added");
  static const uint32_t sizes[] = {16384, 262144};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t len;
    char name[32];
    uint8_t *blob = bench_mixed_blob(sizes[i], 0, &len);
    snprintf(name, sizeof name, "mixed %uk", sizes[i] / 1024);
    if (!blob) { fprintf(stderr, "bench: synthetic program: builder failed\n"); return 1; }
    int rc = gas_row(name, blob, len, PVM_PROFILE_GP08_DRAFT);
    free(blob);
    if (rc) return 1;
  }
  const char *integration[] = {"pinky", "prime-sieve", "doom"};
  for (size_t i = 0; i < 3; i++) {
    char path[4096];
    const char *slash = strrchr(doom, '/');
    uint8_t *blob;
    size_t len;
    snprintf(path, sizeof path, "%.*s%s.json", slash ? (int)(slash - doom + 1) : 0, doom,
             integration[i]);
    if (cli_read_json_program(path, &blob, &len)) {
      fprintf(stderr, "bench gas: give the path of doom.json (tests/vectors/pvm-newgas/integration)\n");
      return 1;
    }
    int rc = gas_row(integration[i], blob, len, PVM_PROFILE_GP08_DRAFT);
    free(blob);
    if (rc) return 1;
  }
  return 0;
}

/* ---- hashing ---- */

#define HASH_MIN_NS 300000000ull   /* each figure: at least this long, best pass */
#define PAIRS_BATCH 4096u          /* 64-byte messages per pairs call (256 KiB) */

typedef void hash_pass_fn(const void *ctx, const uint8_t *buf, size_t len, uint8_t *out);

static uint64_t thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Best MB/s of passes of fn over len bytes, repeated for HASH_MIN_NS;
** *cpu_mbps (if asked) from this thread's CPU time of its best pass, the
** figure without the time other processes took the core. */
static double best_mbps_cpu(hash_pass_fn *fn, const void *ctx, const uint8_t *buf, size_t len,
                            uint8_t *out, double *cpu_mbps) {
  uint64_t best = UINT64_MAX, best_cpu = UINT64_MAX, spent = 0;
  for (int pass = 0; pass < 3 || spent < HASH_MIN_NS; pass++) {
    uint64_t t0 = bench_now_ns(), c0 = thread_cpu_ns();
    fn(ctx, buf, len, out);
    uint64_t t = bench_now_ns() - t0, c = thread_cpu_ns() - c0;
    spent += t;
    if (t < best) best = t;
    if (c < best_cpu) best_cpu = c;
  }
  if (cpu_mbps) *cpu_mbps = (double)len / (best_cpu / 1e3);
  return (double)len / (best / 1e3);
}

static double best_mbps(hash_pass_fn *fn, const void *ctx, const uint8_t *buf, size_t len,
                        uint8_t *out) {
  return best_mbps_cpu(fn, ctx, buf, len, out, NULL);
}

static void pass_long(const void *ctx, const uint8_t *buf, size_t len, uint8_t *out) {
  ((const cap_sha256_impl *)ctx)->hash(buf, len, out);
}
static void pass_pairs(const void *ctx, const uint8_t *buf, size_t len, uint8_t *out) {
  ((const cap_sha256_impl *)ctx)->pairs(buf, out, len / 64);
}
/* One message per call: what the merkleizer paid before pairs. */
static void pass_pairs_single(const void *ctx, const uint8_t *buf, size_t len, uint8_t *out) {
  for (size_t i = 0; i < len / 64; i++) ((const cap_sha256_impl *)ctx)->pairs(buf + 64 * i, out + 32 * i, 1);
}
/* libsodium's SHA-256, one call per message: the merkleizer before
** sha256.c, as a path cap_sha256_use can take. */
static void sodium_hash(const uint8_t *p, size_t len, uint8_t out[32]) {
  crypto_hash_sha256(out, p, len);
}
static void sodium_pairs(const uint8_t *in, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) crypto_hash_sha256(out + 32 * i, in + 64 * i, 64);
}
static const cap_sha256_impl sodium_sha256 = {"libsodium", sodium_hash, sodium_pairs};
static void pass_cap_hash(const void *ctx, const uint8_t *buf, size_t len, uint8_t *out) {
  nub_cap_error err;
  (void)buf; (void)len;
  if (nub_cap_hash((const nub_cap_view *)ctx, out, &err)) fprintf(stderr, "bench hash: %s\n", err.msg);
}

/* openssl's own SHA-256 speed on 16 KiB blocks (its best path on this
** CPU), in MB/s; 0 when openssl is not installed or says nothing usable. */
static double openssl_sha256_mbps(void) {
  char line[512];
  double kbps = 0;
  FILE *f = popen("openssl speed -evp sha256 -bytes 16384 -seconds 1 2>/dev/null", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    double v;
    if (sscanf(line, "sha256 %lfk", &v) == 1 || sscanf(line, "SHA256 %lfk", &v) == 1) kbps = v;
  }
  pclose(f);
  return kbps / 1e3;
}

static int bench_hash(void) {
  const cap_sha256_impl *hw = cap_sha256_hardware();
  const cap_sha256_impl *paths[3] = {hw, &cap_sha256_portable, &sodium_sha256};
  static const uint64_t data_sizes[] = {1u << 20, 64u << 20};
  size_t long_len = 1u << 20, pairs_len = 64 * PAIRS_BATCH;
  uint8_t *buf = malloc(long_len), *out = malloc(pairs_len / 2), digest[32];
  double load[3] = {0};
  int rc = 1;
  if (!buf || !out || sodium_init() < 0 || nub_cap_init()) goto out;
  if (getloadavg(load, 3) < 0) load[0] = -1;
  for (size_t i = 0; i < long_len; i++) buf[i] = (uint8_t)(i * 131 + (i >> 9));
  printf("nub bench hash: SHA-256 MB/s (input bytes), best pass of >= %.1f s; SHA extensions: %s;"
         " load average %.2f\n", HASH_MIN_NS / 1e9, hw ? "present" : "absent", load[0]);
  printf("  %-12s %14s %14s %16s\n", "path", "1 MiB message", "64-byte pairs", "pairs one/call");
  for (int i = 0; i < 3; i++) {
    if (!paths[i]) continue;
    printf("  %-12s %9.0f MB/s %9.0f MB/s %11.0f MB/s\n", paths[i]->name,
           best_mbps(pass_long, paths[i], buf, long_len, digest),
           best_mbps(pass_pairs, paths[i], buf, pairs_len, out),
           best_mbps(pass_pairs_single, paths[i], buf, pairs_len, out));
  }
  double limit = openssl_sha256_mbps();
  if (limit > 0)
    printf("  %-12s %9.0f MB/s   (openssl speed -evp sha256 -bytes 16384 -seconds 1: the hardware"
           " limit)\n", "openssl", limit);
  else
    printf("  openssl: not installed or no figure (no hardware limit in this run)\n");

  printf("\nSSZ root (nub_cap_hash) of a dense Data cap, MB/s of data: wall clock (thread CPU time);\n"
         "libsodium is the merkleizer before sha256.c (one call per pair)\n");
  printf("  %-12s %20s %20s\n", "path", "1 MiB", "64 MiB");
  for (int i = 0; i < 3; i++) {
    double mbps[2], cpu[2];
    if (!paths[i]) continue;
    cap_sha256_use(paths[i]);
    for (int s = 0; s < 2; s++) {
      uint8_t *bytes = malloc(data_sizes[s]), *wire = NULL;
      size_t len;
      nub_cap_view v;
      nub_cap_error err;
      if (!bytes) goto out;
      for (uint64_t b = 0; b < data_sizes[s]; b++) bytes[b] = (uint8_t)(b * 131 + (b >> 12) + 1);
      if (nub_cap_encode_data_alloc(data_sizes[s], bytes, data_sizes[s], &wire, &len, &err) ||
          nub_cap_decode(wire, wire + len, &v, &err)) {
        fprintf(stderr, "bench hash: %s\n", err.msg);
        free(bytes);
        free(wire);
        goto out;
      }
      free(bytes);
      mbps[s] = best_mbps_cpu(pass_cap_hash, &v, NULL, data_sizes[s], digest, &cpu[s]);
      free(wire);
    }
    printf("  %-12s %7.0f (%6.0f) MB/s %7.0f (%6.0f) MB/s\n", paths[i]->name, mbps[0], cpu[0],
           mbps[1], cpu[1]);
  }
  rc = 0;
out:
  cap_sha256_use(NULL);
  free(buf);
  free(out);
  return rc;
}

const cli_spec cli_bench_spec = {
  "bench", "interp|jit|compile|gas|hash|invoke|cache|recovery|programs|subvm|lanes",
  "benchmarks that print figures (run on a quiet machine)",
  "interp  the 30 M-instruction loop on the interpreter (M instr/s)\n"
  "jit     JIT, interpreter and native (C, -O2) times for the loop and the bench/*.s\n"
  "        kernels, compile time per KB\n"
  "hash    SHA-256 MB/s on each path, SSZ roots of Data caps, openssl as the limit\n"
  "compile compile time per KB at several sizes, compile memory per blob byte\n"
  "gas     program analysis with and without the GP 0.8 cost model, per KB\n"
  "invoke  round trips, put_cap throughput, lookups, cold sandbox start, memory\n"
  "        set-up; takes --engine jit|interp (default: jit); --put: the put_cap\n"
  "        figures alone (4 KiB, 1 MiB and 1 GiB Data caps, proc and inproc)\n"
  "cache   guest memory and JIT cache figures under a memory budget\n"
  "        (--images K --insns N --budget BYTES --engine E)\n"
  "recovery  replacing a killed guest with N small caps and one large cap\n"
  "        (--caps N --large-mib M)\n"
  "programs  the C workloads on the JIT and interpreter against native\n"
  "        (--quick --only NAME --dir DIR)\n"
  "subvm   fib(20) through sub-VMs and a CALL/HALT ping-pong (--engine E --rounds N)\n"
  "lanes   invocations/s on 1..CPUs lanes of one handle and on as many handles, a\n"
  "        1 ms program and a trivial one (--engine E --backend proc|inproc --ms N)",
  1, 1, NULL};

int cmd_bench(int argc, char **argv) {
  if (argc >= 2 && cli_is_help(argv[1])) { cli_help(&cli_bench_spec, stdout); return 0; }
  if (argc < 2)
    return cli_usage_error("bench", "which benchmark? (interp, jit, compile, invoke, cache, hash, "
                           "recovery, gas, programs, subvm, lanes)");
  if (!strcmp(argv[1], "interp")) return bench_interp();
  if (!strcmp(argv[1], "jit")) return bench_jit();
  if (!strcmp(argv[1], "compile")) return bench_compile_scaling() || bench_compile_memory();
  if (!strcmp(argv[1], "invoke")) return bench_invoke(argc, argv);
  if (!strcmp(argv[1], "cache")) return bench_cache(argc, argv);
  if (!strcmp(argv[1], "hash")) return bench_hash();
  if (!strcmp(argv[1], "recovery")) return bench_recovery(argc, argv);
  if (!strcmp(argv[1], "gas")) return bench_gas(argc, argv);
  if (!strcmp(argv[1], "programs")) return bench_programs(argc, argv);
  if (!strcmp(argv[1], "subvm")) return bench_subvm(argc, argv);
  if (!strcmp(argv[1], "lanes")) return bench_lanes(argc, argv);
  return cli_usage_error("bench", "unknown benchmark '%s' (have: interp, jit, compile, invoke, "
                         "cache, hash, recovery, gas, programs, subvm, lanes)", argv[1]);
}
