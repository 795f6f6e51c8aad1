/*
** nub x86-64 JIT: compiles a loaded PVM program to native code and runs
** it with exactly the interpreter's semantics (status, pc, gas, registers,
** memory), behind the same nub_pvm_engine interface.
**
** Guest code runs on the calling thread, inside the 4 GiB window of its
** nub_pvm_mem; faults arrive as SIGSEGV and are turned into page-fault or
** panic exits by a process-wide handler that chains to the previous one
** for anything outside JIT code.  Once a thread is prepared, running
** needs no system calls except mmap/mprotect (sbrk) and rt_sigreturn
** (fault exits).
*/
#ifndef NUB_JIT_H
#define NUB_JIT_H

#include "nub/pvm.h"

#ifdef __cplusplus
extern "C" {
#endif

NUB_API extern const nub_pvm_engine nub_jit_engine;

/* CPU features the compiler uses.  LZCNT is optional (a bsr sequence
** replaces it); the others are required. */
#define JIT_CPU_LZCNT  0x1u
#define JIT_CPU_BMI1   0x2u    /* andn, tzcnt */
#define JIT_CPU_BMI2   0x4u    /* shlx/shrx/sarx, rorx */
#define JIT_CPU_POPCNT 0x8u
#define JIT_CPU_FSGSBASE 0x10u /* wrgsbase in user mode: guest memory via gs, gas in r15 */
#define JIT_CPU_REQUIRED (JIT_CPU_BMI1 | JIT_CPU_BMI2 | JIT_CPU_POPCNT)

/* Features of this CPU (cpuid), JIT_CPU_* bits. */
NUB_API uint32_t nub_jit_cpu_features(void);

typedef struct nub_jit_options {
  uint32_t disable;        /* JIT_CPU_* to avoid even if present (tests) */
  size_t max_bytes;        /* memory the compile may hold at once: native
                              code buffer, side tables and work arrays;
                              beyond it PVM_ERR_LIMIT.  0 = no bound */
} nub_jit_options;

typedef struct nub_jit_stats {
  uint64_t compile_ns;     /* wall time of nub_jit_compile */
  uint32_t pvm_bytes;      /* guest code bytes */
  uint32_t insns;          /* decoded instructions incl. synthetic traps */
  uint32_t blocks;         /* gas blocks */
  uint32_t code_bytes;     /* native instructions and stubs */
  uint32_t table_bytes;    /* jump table + side tables */
  uint32_t features;       /* JIT_CPU_* used */
  uint64_t peak_bytes;     /* most memory the compile held at once */
  uint64_t kept_bytes;     /* memory the compiled code holds (pages of
                              native code, side tables) */
} nub_jit_stats;

typedef struct nub_jit_code nub_jit_code;

/* Compile prog (which must outlive the code).  opt may be NULL.  Fails
** with PVM_ERR_UNSUPPORTED when the CPU lacks a required feature. */
NUB_API int nub_jit_compile(const nub_pvm_program *prog, const nub_jit_options *opt, nub_jit_code **out,
                nub_pvm_error *err);
NUB_API void nub_jit_code_free(nub_jit_code *code);
NUB_API const nub_jit_stats *nub_jit_code_stats(const nub_jit_code *code);

/* Freed code mappings are kept (read-write) for the next compile, which
** then writes into pages already faulted in: at most maps mappings (16 at
** most) holding at most bytes of pages that may be resident, per process,
** outside every compile's max_bytes (defaults below).  Thread-safe.
** Lowering the bound unmaps the oldest at once; (0, 0) empties the pool
** and keeps it empty (a first compile's cost, or an idle process giving
** its memory back). */
#define NUB_JIT_POOL_MAPS 4u
#define NUB_JIT_POOL_BYTES ((size_t)32 << 20)
NUB_API void nub_jit_set_code_pool(unsigned maps, size_t bytes);

/* A compile's arrays besides the code (a few bytes per PVM byte) come
** from malloc.  glibc's moving mmap threshold gives the heap's top back
** after a large compile, so the next one faults those pages in again
** (where a fault is dear, as in a paravirtualized VM, that doubled a
** 1-4 MB program's load + compile; docs/embedding.md).  nub-guest and
** the nub tool set these (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD);
** a process that compiles large programs itself may do the same (or set
** GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...).
** The library never changes the process's malloc. */
#define NUB_JIT_MALLOC_MMAP_BYTES (32 << 20)
#define NUB_JIT_MALLOC_TRIM_BYTES (64 << 20)

/* Install the fault handler (once per process) and a signal stack for
** the calling thread (once per thread).  nub_jit_run does this lazily; call
** it before a seccomp filter that forbids sigaction/sigaltstack/mmap
** (and see nub_jit_keep_handler). */
NUB_API int nub_jit_thread_prepare(nub_pvm_error *err);

/* keep: compiled code run on the calling thread may leave the thread's
** GS base at the guest memory it ran on (FSGSBASE CPUs), for a thread
** on which nothing else uses GS, such as nub-guest's lane threads: a run
** on the same memory again then writes no GS base (each wrgsbase ~12 ns
** on a 2-vCPU KVM guest, two a run).  Off by default: the base found at
** entry is restored at exit. */
NUB_API void nub_jit_thread_keep_gs(bool keep);

/* From now on trust that the fault handler stays installed: by default
** every compile through nub_jit_engine checks it (sigaction) and
** re-installs it if a test harness or another library replaced it.  For a
** process that changes no handlers once prepared, such as nub-guest under
** its seccomp filter (where the check would be a forbidden system call);
** call it after nub_jit_thread_prepare. */
NUB_API void nub_jit_keep_handler(void);

/* Run a VM bound to nub_jit_engine on the calling thread (= nub_jit_engine.run). */
NUB_API nub_pvm_status nub_jit_run(nub_pvm_vm *vm);

#ifdef __cplusplus
}
#endif
#endif
