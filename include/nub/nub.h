/*
** nub host API: publish capabilities into a guest kernel and invoke
** instances through a backend.
**
**   proc    the guest kernel runs in a separate, locked-down process
**           (nub-guest).  This is the isolation boundary.  (default)
**           The guest is a child of the handle's own keeper thread;
**           its death is noticed through a pidfd, so a SIGCHLD handler
**           reaping with waitpid(-1) is harmless (it only takes the exit
**           status the error message would have named).
**   inproc  the same kernel linked into the calling process, for tests,
**           sanitizers and debugging.  It is NOT a security boundary: a
**           hostile program that escapes the engine owns your process.
**
** All functions return NUB_OK (0) or a nub_errcode.  The nub_error a
** call takes (it may be NULL) is written only on failure, with the code
** and a message naming what went wrong, and never read: an
** uninitialised one is fine, and on success it keeps what it held.
**
** Threads: any thread may call any function on a handle, at the same
** time as others, but nub_close, which must overlap nothing.
**  - nub_invoke and nub_invoke_batch run on lanes (nub_options.lanes):
**    as many invocations run at once as there are lanes, sharing the
**    guest's caps and compiled programs (proc: each lane a thread of the
**    guest; inproc: the calling thread on the lane's state); the handle
**    starts a lane the first time all started ones are busy, and a call
**    that finds every lane busy sleeps until one is free.
**  - every other call (put_cap, evict, stats, nub_invoke_logged, ...)
**    goes through the one request buffer: such calls run one at a time,
**    alongside the invocations on lanes.  nub_put_cap copies and hashes
**    a cap of 256 KiB or more with one helper thread of the handle
**    (started at the first, joined by nub_close; all signals blocked but
**    those a fault raises, so a fault reading the caller's bytes reaches
**    the caller's handler, on that thread); two such puts at once on one
**    handle: one has it, the other works alone, as do all puts when the
**    thread could not be made.
**  - fork: a handle belongs to the process that opened it; a forked
**    child must not use or close it (a proc handle's guest, keeper and
**    lanes are the parent's; an inproc kernel's heap and buffers are
**    shared mappings the parent's kernel would see written).
**  - nub_lookup never waits for either (also not while a call is
**    replacing a dead guest).
** A guest that dies or hangs fails every call in flight, on every lane,
** with NUB_ERR_GUEST_DIED / NUB_ERR_TIMEOUT; one of them replaces it and
** re-publishes every cap before it returns.  nub_kernel_last_error speaks
** of the invocation that finished last, whichever thread made it.
*/
#ifndef NUB_NUB_H
#define NUB_NUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nub/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nub_errcode {
  NUB_OK = 0,
  NUB_ERR_ARG,             /* bad argument from the caller */
  NUB_ERR_NOMEM,           /* out of memory; put_cap: in the guest (heap full) */
  NUB_ERR_SYSTEM,          /* a host system call failed */
  NUB_ERR_SANDBOX,         /* the guest process could not be set up */
  NUB_ERR_GUEST_DIED,      /* the guest crashed or was killed; it was restarted */
  NUB_ERR_TIMEOUT,         /* the guest did not answer in time; it was restarted */
  NUB_ERR_PROTOCOL,        /* the guest's reply is malformed */
  NUB_ERR_GUEST,           /* the guest answered with an error status */
  NUB_ERR_REJECTED,        /* put_cap: the bytes are not a valid cap (msg: why) */
  NUB_ERR_TOO_LARGE,       /* a request does not fit the shared buffer */
  NUB_ERR_NOT_FOUND,       /* nub_lookup: no such cap */
} nub_errcode;

typedef struct nub_error {
  int code;                /* nub_errcode */
  char msg[256];
} nub_error;

NUB_API const char *nub_errcode_name(int code);

/* The library's version, NUB_VERSION_STRING of the build that made it
** (compare with the header's to catch a mismatched libnub.so). */
NUB_API const char *nub_version(void);
/* What a kernel error code (exit_arg of an InvocationResult whose
** exit_reason is NUB_EXIT_KERNEL_ERROR, include/nub/abi.h) means. */
NUB_API const char *nub_kernel_error_name(uint32_t code);

typedef enum nub_backend {
  NUB_BACKEND_PROC = 0,
  NUB_BACKEND_INPROC = 1,
} nub_backend;

typedef struct nub_options {
  nub_backend backend;
  const char *engine;          /* "jit" or "interp"; NULL = best available */
  uint64_t guest_va_base;      /* 0 = NUB_GUEST_VA_BASE_DEFAULT or the next free slot */
  size_t heap_size;            /* guest heap region (holds every cap) */
  size_t io_size;              /* each shared request/response buffer */
  const char *guest_path;      /* proc: nub-guest binary; NULL = $NUB_GUEST, else nub-guest
                                  next to the program, else the installed one
                                  (PREFIX/libexec/nub/nub-guest, compiled in) */
  uint32_t call_timeout_ms;    /* proc: a call that takes longer kills the guest; 0 = none */
  uint64_t memory_budget;      /* bounds what programs make the guest allocate
                                  (docs/abi.md, "The memory budget"): the JIT cache
                                  (compiled code + program analysis) with one compile
                                  (at most 80 bytes per blob byte) fit in it, evicting
                                  least recently used programs; so do an invocation's
                                  pages (its mappings; sbrk returns 0 past the budget).
                                  What cannot fit ends with kernel error
                                  NUB_KERR_OUT_OF_MEMORY, never a kill.  Not counted:
                                  heap_size, io_size and ~2 MiB of fixed kernel state.
                                  0 = NUB_DEFAULT_MEMORY_BUDGET.  Each lane's
                                  invocation is bounded by it separately. */
  uint32_t lanes;              /* invocations the guest runs at once, each on a
                                  lane (a thread of the guest kernel) that the
                                  handle starts when it is first needed; 0 = the
                                  CPUs this process may use, at most NUB_MAX_LANES */
} nub_options;

#define NUB_DEFAULT_HEAP_SIZE (1ull << 30)
#define NUB_DEFAULT_IO_SIZE   (80ull << 20)
#define NUB_DEFAULT_MEMORY_BUDGET (2ull << 30)
/* NUB_MIN_MEMORY_BUDGET is in nub/abi.h (the guest checks it too). */

NUB_API void nub_options_init(nub_options *opt);

typedef struct nub nub;

NUB_API int nub_open(const nub_options *opt, nub **out, nub_error *err);
NUB_API void nub_close(nub *n);

NUB_API int nub_smoke(nub *n, uint64_t *value, nub_error *err);
NUB_API int nub_heap_stats(nub *n, struct nub_heap_stats *out, nub_error *err);
NUB_API int nub_kernel_stats(nub *n, struct nub_kernel_stats *out, nub_error *err);
NUB_API int nub_boot_info(nub *n, struct nub_boot_info *out, nub_error *err);
NUB_API int nub_evict_jit(nub *n, nub_error *err);

/* Publish a cap given in its wire form; returns its hash.  Publication is
** permanent: the host keeps a copy of every published cap with its own
** hash of that copy (a cap of a page or more goes to the guest with that
** hash; a smaller one the guest hashes too, and must agree) and
** re-publishes them if the guest has to be restarted (Data caps of 256
** KiB or more are kept in a memfd of the handle, "nub-records", closed on
** exec).  Large caps use a helper thread of the handle, started at the
** first and ended by nub_close.  A call that finds the guest dead or hung fails
** with NUB_ERR_GUEST_DIED / NUB_ERR_TIMEOUT after a new guest holds every
** cap again (REPUBLISH frames, no re-hashing: docs/sandbox.md,
** "Recovery"); if that replacement fails, the next call retries it first.
** A refused cap is NUB_ERR_REJECTED (malformed: the message is the
** decoder's, as `nub cap show` gives it), NUB_ERR_NOMEM (the guest heap is
** full) or NUB_ERR_GUEST (a kernel fault); the handle stays usable. */
NUB_API int nub_put_cap(nub *n, const uint8_t *wire, size_t len, nub_hash out, nub_error *err);

/* Invoke a published Instance.  Kernel errors are reported in the result
** (exit_reason NUB_EXIT_KERNEL_ERROR), not as a failed call. */
NUB_API int nub_invoke(nub *n, const nub_hash instance, uint32_t endpoint, const uint64_t args[4],
               uint64_t initial_gas, nub_invocation_result *out, nub_error *err);

/* Many invocations at once, each on a lane (helper threads made for the
** call, up to nub_lanes(n) with the calling thread): out[i] and, if rcs
** is not NULL, rcs[i] answer reqs[i].  NUB_OK when every one succeeded;
** else the code of the lowest failed index, its message in err. */
typedef struct nub_invoke_req {
  nub_hash instance;
  uint32_t endpoint;
  uint64_t args[4];
  uint64_t initial_gas;
} nub_invoke_req;
NUB_API int nub_invoke_batch(nub *n, const nub_invoke_req *reqs, size_t count,
                             nub_invocation_result *out, int *rcs, nub_error *err);
/* The lanes this handle may run at once (nub_options.lanes, resolved). */
NUB_API uint32_t nub_lanes(const nub *n);

/* As nub_invoke, and the kernel services the guest's log host call
** (ecalli 100, docs/runtime.md) instead of stopping at it: each message
** is passed to log (raw bytes from the guest, at most NUB_LOG_LINE_MAX;
** sanitise before printing), in order, after the invocation.  At most
** NUB_INVOKE_LOG_MAX bytes are kept per invocation; *dropped (if not NULL)
** counts the messages past that. */
typedef void nub_log_fn(void *ud, uint32_t level, const uint8_t *msg, size_t len);
NUB_API int nub_invoke_logged(nub *n, const nub_hash instance, uint32_t endpoint, const uint64_t args[4],
                      uint64_t initial_gas, nub_invocation_result *out, nub_log_fn *log,
                      void *ud, uint32_t *dropped, nub_error *err);
/* The reason of the last invocation's kernel error (exit_reason
** NUB_EXIT_KERNEL_ERROR: why the compile, the memory or the engine
** failed), as text in text[cap] (NUL-terminated, cut to fit, at most
** NUB_KERNEL_ERROR_TEXT_MAX bytes; non-printable bytes become '?');
** empty if the last invocation had none.  KERNEL_LAST_ERROR, fn 9. */
NUB_API int nub_kernel_last_error(nub *n, char *text, size_t cap, nub_error *err);

/* Send any fn id with any payload and return the raw reply payload (for
** tests and tools; the typed calls above are the API).  A reply longer
** than reply_cap is NUB_ERR_PROTOCOL. */
NUB_API int nub_call_raw(nub *n, uint32_t fn_id, const void *payload, size_t len, void *reply,
                 size_t reply_cap, size_t *reply_len, nub_error *err);

/* ---- the sandbox (proc backend; docs/sandbox.md) ---- */

/* NUB_NS_* and NUB_LOCK_* (the report's bits) are in nub/abi.h: the guest
** reports them over the channel too. */

/* What isolation the guest actually got.  Namespaces and lockdown steps
** are best effort where the kernel refuses them (notes says which and
** why); seccomp and no_new_privs are not: without them the guest refuses
** to start. */
struct nub_sandbox_report {
  bool isolated;               /* false: inproc, no boundary at all */
  int32_t guest_pid;           /* host pid of the guest process */
  int64_t guest_uid, guest_gid; /* its ids outside its namespaces (/proc); -1: unknown, inproc */
  uint32_t namespaces;         /* NUB_NS_* */
  uint32_t lockdown;           /* NUB_LOCK_* achieved */
  uint32_t lockdown_failed;    /* NUB_LOCK_* attempted and not achieved */
  uint32_t seccomp_syscalls;   /* system calls on the allow-list */
  uint32_t seccomp_insns;      /* BPF instructions of the filter */
  uint32_t restarts;           /* guests replaced since nub_open */
  double start_ms;             /* spawn to ready, current guest */
  char engine[32];             /* engine the guest kernel runs */
  char notes[480];             /* what could not be had and why, '; '-separated */
};

NUB_API int nub_sandbox_report(nub *n, struct nub_sandbox_report *out, nub_error *err);
/* "inproc", "proc+seccomp" or "proc+ns+seccomp". */
NUB_API const char *nub_sandbox_level(const struct nub_sandbox_report *r);
/* The report as text, one fact per line (nub exec --verbose). */
NUB_API void nub_sandbox_print(const struct nub_sandbox_report *r, FILE *f);

/* One raw doorbell round trip through shared memory, no RPC frame (the
** floor under every call; for benchmarks).  NUB_ERR_ARG on inproc. */
NUB_API int nub_ping(nub *n, nub_error *err);

/* Look a cap up without a round trip.  A cap published through this
** handle comes from the host's own copy (the one it re-publishes from):
** whatever the guest does, or while it is being replaced, such a cap is
** never reported missing.  Any other hash is looked up directly in the
** guest heap, which the host maps read-only at the guest's own address:
** the directory is validated against BootInfo's magic and layout id,
** every offset checked, and the wire bytes copied into wire (cap bytes)
** and checked to hash to `hash`.  That read is bounded whatever the guest
** does: at most CAP_DIR_READ_SLOTS (65 536) slot reads and, while the
** guest's writer keeps the directory changing, CAP_DIR_READ_MS (100 ms)
** of retries, plus hashing at most cap bytes.
**
** NUB_ERR_NOT_FOUND if absent (also: not published through this handle
** while the guest is being replaced), NUB_ERR_TOO_LARGE if cap is too
** small (*len gets the size needed), NUB_ERR_PROTOCOL if the guest's
** directory is malformed or its writer stalled the read past the bound.
** Thread-safe (see the top). */
NUB_API int nub_lookup(nub *n, const nub_hash hash, uint8_t *wire, size_t cap, size_t *len,
               nub_error *err);

/* BootInfo as stored in the `.boot_info` ELF section of the executable
** that carries the kernel (nub-guest for proc, this program for inproc),
** read without a round trip. */
NUB_API int nub_boot_info_elf(nub *n, struct nub_boot_info *out, nub_error *err);

/* Name of the engine and backend in use. */
NUB_API const char *nub_engine_name(const nub *n);
NUB_API const char *nub_backend_name(const nub *n);

/* The engine registry the guest kernel picks from ("jit", "interp"),
** for running a nub_pvm_program in-process (include nub/pvm.h to use
** it). NULL name = the best this CPU runs: the JIT only where it has
** the features the JIT requires. NULL for an unknown name. */
struct nub_pvm_engine;
NUB_API const struct nub_pvm_engine *nub_engine_by_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
