/*
** The guest kernel: serves the RPC ABI of include/nub/abi.h over a pair of
** request/response buffers.  It cannot tell which backend carries it: the
** proc guest's serve loop and the inproc backend both call nk_serve().
*/
#ifndef NUB_NK_H
#define NUB_NK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/abi.h"
#include "nub/cap.h"
#include "nub/pvm.h"

typedef struct nk_kernel nk_kernel;

typedef struct nk_config {
  void *heap_base;              /* region the kernel owns, mapped read-write */
  size_t heap_size;
  const nub_pvm_engine *engine;     /* runs invocations */
  uint64_t memory_budget;       /* bytes for the JIT cache, a compile and an
                                   invocation's pages together (docs/abi.md);
                                   0 = NK_DEFAULT_MEMORY_BUDGET */
} nk_config;

#define NK_DEFAULT_MEMORY_BUDGET (2ull << 30)   /* = NUB_DEFAULT_MEMORY_BUDGET */
/* A compile may hold at most this many bytes per byte of program blob
** (plus NK_COMPILE_SLACK), and never more than the budget.  Measured
** peaks (`nub bench compile`: analysis + JIT, capacities counted): 10x for
** add_64, 17x for rem_s_64, 34x for one-byte fallthroughs, 33x for
** jump_ind, 40x for one-byte traps, 72x for 4105 loops of `L:
** fallthrough; jump L` (merged gas checks copy each loop's entry), the
** worst found. */
#define NK_COMPILE_BYTES_PER_BYTE 80u
/* What the cache frees before a compile: enough for most programs
** (add_64 10x, rem_s_64 17x); a compile that needs more retries once with
** the full bound after emptying the cache as far as that needs. */
#define NK_COMPILE_TYPICAL_PER_BYTE 24u
#define NK_COMPILE_SLACK (1u << 20)

/* Offset of the cap directory header from the heap base: BootInfo's
** directory_va is heap_base + NK_DIRECTORY_OFFSET.  The directory header
** is the heap's first allocation (after the page-sized heap header and a
** 16-byte block header); nk_create checks it landed there. */
#define NK_DIRECTORY_OFFSET (4096u + 16u)

/* Engine by name ("interp", "jit", or one added with nk_add_engine);
** NULL = the best available. */
const nub_pvm_engine *nk_engine_by_name(const char *name);
/* The same for a CPU with cpu_features (JIT_CPU_*): a NULL name skips the
** JIT where the CPU lacks JIT_CPU_REQUIRED (the interpreter runs; the
** engine name in the sandbox report and nub_engine_name says so). */
const nub_pvm_engine *nk_engine_pick(const char *name, uint32_t cpu_features);
/* Make an extra engine selectable by name (test guests add fault-injecting
** engines this way).  Process-wide; returns -1 when the table is full. */
int nk_add_engine(const nub_pvm_engine *engine);

int nk_create(const nk_config *cfg, nk_kernel **out, char *err, size_t errlen);
void nk_destroy(nk_kernel *k);
/* The heap region is fd's bytes from offset (a MAP_SHARED mapping):
** invocations map Data pages copy-on-write from it instead of copying
** them.  fd must stay open as long as the kernel lives. */
int nk_use_heap_fd(nk_kernel *k, int fd, uint64_t offset, char *err, size_t errlen);
/* Bytes of caps stored into the heap through that fd (pwritev) rather
** than by memcpy: a figure for tests and benchmarks (nk_caps.c). */
uint64_t nk_caps_bytes_through_fd(const nk_kernel *k);
/* Bytes of caps copied into heap pages populated first (from 64 KiB,
** MADV_POPULATE_WRITE, nk_caps.c): the same kind of figure. */
uint64_t nk_caps_bytes_populated(const nk_kernel *k);
/* Test hook: the kernel never populates (as on Linux < 5.14), so that
** the paths without it stay tested; production kernels never call it. */
void nk_populate_off(nk_kernel *k, bool off);
/* A second thread for the hash of large Data caps at publication
** (nub_cap_helper; NULL: none), from NK_HASH_HELPER_PAGES pages: 16 MiB,
** ~8 ms of hashing per half, against a thread handoff.  nub-guest makes
** one before its lockdown; inproc starts a thread per such cap. */
#define NK_HASH_HELPER_PAGES 4096u
void nk_caps_hash_helper(nk_kernel *k, const nub_cap_helper *helper);

/* Lanes (NUB_FN_LANE_START; docs/kernel.md, "Lanes"): slots is an area
** of count (1..NUB_MAX_LANES) slots the host maps too; lane n serves slot
** n once LANE_START(n) started it.  Without nk_lanes_spawn, LANE_START
** makes the lane's thread.  nk_destroy ends every lane's thread (after
** the invocation it runs, if any). */
int nk_lanes_attach(nk_kernel *k, nub_lane_slot *slots, uint32_t count, char *err,
                    size_t errlen);
/* Lanes without threads (inproc): LANE_START sets up lane n's state and
** nk_lane_invoke runs invocations on it on the calling thread, which must
** have the lane to itself (the host's lease); no slot handoff, so a lane
** costs what INVOKE_CACHED costs.  Call right after nk_lanes_attach. */
void nk_lanes_direct(nk_kernel *k);
/* Run p on started lane n (direct lanes only): 0, r and the kernel
** error's reason (NUL-terminated) filled; -1 if n is not such a lane. */
int nk_lane_invoke(nk_kernel *k, uint32_t n, const nub_invoke_packet *p,
                   nub_invocation_result *r, char error[NUB_KERNEL_ERROR_TEXT_MAX + 1]);
/* Make count lane threads now, for a process about to forbid thread
** creation (nub-guest, before its seccomp filter): each prepares the
** engine for itself and, with death_notice, registers a robust-list entry
** on its slot's owner word; they wait for LANE_START, which from then on
** only lets one go.  Returns once all are set up. */
int nk_lanes_spawn(nk_kernel *k, uint32_t count, bool death_notice, char *err, size_t errlen);

/* A handler reads its payload (in shared memory: copy before you validate)
** and writes its reply into out.  Returns a NUB_RPC_* status; on failure
** the reply is a message. */
typedef uint32_t (*nk_fn)(nk_kernel *k, const uint8_t *in, size_t in_len,
                          uint8_t *out, size_t out_cap, size_t *out_len);

/* Add a handler to a free slot of the dispatch table (test guests add
** NUB_FN_TEST this way; production kernels never do). */
int nk_register(nk_kernel *k, uint32_t fn_id, nk_fn fn);

/* Fault injection for tests (the test guest's NUB_FN_TEST, in-process
** tests): the nth allocation from now of a kernel's own tables fails;
** 0 = none.  Process-wide; production hosts never call it. */
void nk_fail_allocation(uint32_t nth);

/* Serve one request frame from in[0, in_cap) into out[0, out_cap).  Never
** trusts in.  Returns the bytes of the response frame written (0 only if
** out_cap cannot hold a response header). */
size_t nk_serve(nk_kernel *k, const uint8_t *in, size_t in_cap, uint8_t *out, size_t out_cap);

void nk_boot_info(const nk_kernel *k, struct nub_boot_info *out);

/* The BootInfo of the default configuration, in the `.boot_info` section of
** every executable that links the kernel. */
extern const struct nub_boot_info nk_boot_info_section;

#endif
