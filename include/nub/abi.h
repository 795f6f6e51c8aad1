/*
** The host <-> guest ABI.  The first half mirrors the seed ABI
** (nub-arch-x86-abi, the original nub's crate) byte for byte: function ids,
** BootInfo, InvokePacket and InvocationResult, all little-endian,
** #[repr(C)] layouts.  The second half is nub's own framing of requests
** and responses in the shared buffers (docs/abi.md).
**
** Both sides treat the other as hostile: every length and offset read
** from a shared buffer is validated by the reader.
*/
#ifndef NUB_ABI_H
#define NUB_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "nub/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- function ids (seed) ---- */
#define NUB_FN_SMOKE          0u   /* -> u64 42 */
#define NUB_FN_KERNEL_STATS   1u   /* nub extension -> nub_kernel_stats */
#define NUB_FN_HEAP_STATS     2u   /* -> 4 x u64 */
#define NUB_FN_INVOKE_CACHED  3u   /* InvokePacket -> InvocationResult */
#define NUB_FN_PUT_CAP        4u   /* wire cap -> 32-byte hash or 32 x 0xFF (+ reason) */
#define NUB_FN_GET_BOOT_INFO  5u   /* -> BootInfo */
#define NUB_FN_EVICT_JIT_ALL  6u   /* -> empty; next invoke recompiles */
#define NUB_FN_LANE_START     7u   /* u32 LE lane index -> empty: the lane serves its slot */
/* ids >= 8 are nub extensions beyond the seed's table of 8 */
#define NUB_FN_REPUBLISH      8u   /* republish records -> nub_republish_reply */
#define NUB_FN_KERNEL_LAST_ERROR 9u /* nub extension: empty -> text of the last kernel error */
#define NUB_FN_PAGES_RESERVE  10u  /* nub_pages_reserve -> nub_pages_reserved */
#define NUB_FN_PAGES_COMMIT   11u  /* nub_pages_commit + indexes -> nub_republish_reply */
#define NUB_FN_TEST           15u  /* test guests only: fault injection */
#define NUB_GUEST_FN_TABLE_SIZE 16u

#define NUB_SMOKE_VALUE 42u
/* InvokePacket.endpoint_idx names an endpoint key, a byte: a larger
** value is refused (nub_invoke: NUB_ERR_ARG; the kernel: error 25). */
#define NUB_ENDPOINT_MAX 0xFFu
#define NUB_HASH_SIZE 32u
#define NUB_BOOT_MAGIC 0x4A41525F424F4F54ull   /* "JAR_BOOT" read big-endian */
#define NUB_GUEST_VA_BASE_DEFAULT 0x500000000000ull

typedef uint8_t nub_hash[NUB_HASH_SIZE];

/* BootInfo, heap stats and kernel stats are plain struct tags (no
** typedef), like `struct stat`: the host API functions of the same names
** (nub_boot_info(), ...) fill them. */

/* BootInfo (seed): 128 bytes, also placed in the guest kernel's
** `.boot_info` ELF section. */
struct nub_boot_info {
  uint64_t magic;               /* NUB_BOOT_MAGIC */
  uint64_t directory_va;        /* address of the cap directory header */
  uint64_t directory_type_id;   /* layout id of the directory */
  uint64_t guest_va_base;       /* base of the guest heap region */
  uint64_t reserved[12];        /* zero */
};

NUB_STATIC_ASSERT(sizeof(struct nub_boot_info) == 128, "BootInfo is 128 bytes");
NUB_STATIC_ASSERT(offsetof(struct nub_boot_info, magic) == 0, "BootInfo.magic");
NUB_STATIC_ASSERT(offsetof(struct nub_boot_info, directory_va) == 8, "BootInfo.directory_va");
NUB_STATIC_ASSERT(offsetof(struct nub_boot_info, directory_type_id) == 16, "BootInfo.directory_type_id");
NUB_STATIC_ASSERT(offsetof(struct nub_boot_info, guest_va_base) == 24, "BootInfo.guest_va_base");
NUB_STATIC_ASSERT(offsetof(struct nub_boot_info, reserved) == 32, "BootInfo._reserved");

/* InvokePacket (seed): 80 bytes, read unaligned by the guest. */
typedef struct nub_invoke_packet {
  uint8_t instance_hash[NUB_HASH_SIZE];
  uint32_t endpoint_idx;        /* low byte selects the endpoint key */
  uint32_t flags;               /* the seed's _pad (zero); nub: NUB_INVOKE_FLAG_* */
  uint64_t args[4];             /* overlay phi7..phi10 */
  uint64_t initial_gas;
} nub_invoke_packet;

NUB_STATIC_ASSERT(sizeof(nub_invoke_packet) == 80, "InvokePacket is 80 bytes");
NUB_STATIC_ASSERT(offsetof(nub_invoke_packet, instance_hash) == 0, "InvokePacket.instance_hash");
NUB_STATIC_ASSERT(offsetof(nub_invoke_packet, endpoint_idx) == 32, "InvokePacket.endpoint_idx");
NUB_STATIC_ASSERT(offsetof(nub_invoke_packet, flags) == 36, "InvokePacket._pad");

/* InvokePacket.flags (nub; 0 = the seed's behaviour, a 24-byte reply).
** NUB_INVOKE_FLAG_LOG: the kernel services the log host call (ecalli
** NUB_HOST_CALL_LOG, JIP-1: phi7 level, phi10/phi11 message) and resumes;
** the reply is the InvocationResult followed by a log section:
**   u32 count, u32 dropped, then count records { u32 level, u32 len, len bytes }
** at most NUB_INVOKE_LOG_MAX bytes of records, each message cut to
** NUB_LOG_LINE_MAX; messages past the budget are counted in dropped.  An
** unreadable message sets phi7 = NUB_HOST_OOB and adds no record; once
** the budget is spent messages are not read at all (phi7 = 0, dropped
** counts them), so one invocation copies at most NUB_INVOKE_LOG_MAX +
** NUB_LOG_LINE_MAX bytes.  A kernel error reply stays 24 bytes.  Other
** bits are reserved and refused (kernel error 11). */
#define NUB_INVOKE_FLAG_LOG  1u
#define NUB_HOST_CALL_LOG    100u
#define NUB_HOST_OOB         0xFFFFFFFFFFFFFFFDull
#define NUB_INVOKE_LOG_MAX   (64u << 10)
#define NUB_LOG_LINE_MAX     4096u
#define NUB_LOG_SECTION_HEADER 8u
#define NUB_LOG_RECORD_HEADER  8u
NUB_STATIC_ASSERT(offsetof(nub_invoke_packet, args) == 40, "InvokePacket.args");
NUB_STATIC_ASSERT(offsetof(nub_invoke_packet, initial_gas) == 72, "InvokePacket.initial_gas");

/* InvocationResult (seed): 24 bytes. */
typedef struct nub_invocation_result {
  uint32_t exit_reason;         /* NUB_EXIT_* */
  uint32_t exit_arg;            /* fault address, host call id, or kernel error */
  uint64_t return_value;        /* phi7 */
  uint64_t gas_remaining;       /* >= 0 */
} nub_invocation_result;

NUB_STATIC_ASSERT(sizeof(nub_invocation_result) == 24, "InvocationResult is 24 bytes");
NUB_STATIC_ASSERT(offsetof(nub_invocation_result, exit_reason) == 0, "InvocationResult.exit_reason");
NUB_STATIC_ASSERT(offsetof(nub_invocation_result, exit_arg) == 4, "InvocationResult.exit_arg");
NUB_STATIC_ASSERT(offsetof(nub_invocation_result, return_value) == 8, "InvocationResult.return_value");
NUB_STATIC_ASSERT(offsetof(nub_invocation_result, gas_remaining) == 16, "InvocationResult.gas_remaining");

/* exit_reason values */
#define NUB_EXIT_HALT        0u
#define NUB_EXIT_PANIC       1u
#define NUB_EXIT_OUT_OF_GAS  2u
#define NUB_EXIT_PAGE_FAULT  3u
#define NUB_EXIT_HOST_CALL   4u
#define NUB_EXIT_KERNEL_ERROR 0xFFFFFFFFu

/* exit_arg when exit_reason == NUB_EXIT_KERNEL_ERROR */
#define NUB_KERR_BAD_PACKET         10u
#define NUB_KERR_BAD_FLAGS          11u  /* nub: reserved InvokePacket.flags bits set */
#define NUB_KERR_INSTANCE_NOT_FOUND 21u
#define NUB_KERR_NOT_AN_INSTANCE    22u
#define NUB_KERR_IMAGE_NOT_FOUND    23u
#define NUB_KERR_NOT_AN_IMAGE       24u
#define NUB_KERR_ENDPOINT_NOT_FOUND 25u
#define NUB_KERR_MEMORY             26u  /* nub: a mapping's Data cap is missing, or
                                            more than CAP_MEMORY_MAX_RUNS Data runs */
#define NUB_KERR_OUT_OF_MEMORY      27u  /* nub: over the guest's memory budget */
#define NUB_KERR_ENGINE_START       28u  /* nub: the engine could not start the program */
#define NUB_KERR_COMPILE_FAILED     50u
/* The CALL/HALT kernel (docs/kernel.md, "Errors"): the codes of the
** reference's table, some widened to every kernel operation. */
#define NUB_KERR_SLOT_RANGE         31u  /* a slot operand is not 0..255 (or is 0 where
                                            the scratchpad cannot be used) */
#define NUB_KERR_CALL_SLOT_EMPTY    40u  /* HOST_CALL on an empty slot */
#define NUB_KERR_DEPTH_LIMIT        51u  /* HOST_CALL past NK_MAX_DEPTH frames */
#define NUB_KERR_YIELD              71u  /* HOST_YIELD with no caller to catch it, or
                                            CALL_RESUME / DROP_RESUME with no caught yield */
#define NUB_KERR_SLOT_EMPTY         72u  /* an operand slot (not HOST_CALL's) is empty */
#define NUB_KERR_SLOT_KIND          73u  /* an operand slot holds the wrong kind of cap */
#define NUB_KERR_PENDING            74u  /* a slot whose Instance is running (or yielded)
                                            is used, or a frame returns or calls while it
                                            holds a caught yield */
/* KERNEL_LAST_ERROR's reply: the reason of the last kernel error, UTF-8,
** at most this many bytes, no terminator; empty if there was none. */
#define NUB_KERNEL_ERROR_TEXT_MAX   240u

/* PUT_CAP rejection (the seed's 32 x 0xFF, then a nub extension):
**   32 x 0xFF | u32 reason class | reason text, 1..NUB_PUT_CAP_REASON_MAX
** printable ASCII bytes, no NUL.  A bare 32 x 0xFF (a seed guest) gives no
** reason.  docs/abi.md. */
#define NUB_PUT_CAP_INVALID    1u   /* the bytes are not a valid cap */
#define NUB_PUT_CAP_NO_MEMORY  2u   /* the guest heap is full, or the kernel's own memory */
#define NUB_PUT_CAP_INTERNAL   3u   /* the kernel's directory failed */
#define NUB_PUT_CAP_REASON_MAX 200u

/* nub: gas an invocation pays before its program runs, per run of
** consecutive Data pages its mappings and overlays place (each is one
** copy-on-write mapping; docs/abi.md, "Invocation").  An invocation whose
** gas does not cover it ends out-of-gas before running, gas unchanged.
** A run's mmap and its share of the reset measured ~3 us, about what
** 3000 instructions take. */
/* The smallest nub_options.memory_budget (host and guest refuse less). */
#define NUB_MIN_MEMORY_BUDGET (4ull << 20)

#define NUB_GAS_PER_DATA_RUN        3000u

/* HEAP_STATS reply (seed): 4 x u64 LE. */
struct nub_heap_stats {
  uint64_t allocated_bytes;
  uint64_t allocation_count;
  uint64_t fragment_count;      /* free blocks in the heap */
  uint64_t available_bytes;
};

NUB_STATIC_ASSERT(sizeof(struct nub_heap_stats) == 32, "heap stats are 32 bytes");

/* KERNEL_STATS reply (nub extension): 13 x u64 LE. */
struct nub_kernel_stats {
  uint64_t invocations;
  uint64_t jit_compiles;        /* programs compiled (cache misses) */
  uint64_t jit_cache_hits;
  uint64_t jit_evictions;       /* compiled programs dropped: by EVICT_JIT_ALL
                                   or to stay within the memory budget */
  uint64_t caps_published;      /* caps new to the directory (PUT_CAP, REPUBLISH) */
  uint64_t caps_total;          /* caps in the directory */
  uint64_t put_cap_failures;    /* caps refused (PUT_CAP, a REPUBLISH record) */
  uint64_t kernel_errors;       /* invocations ending in NUB_EXIT_KERNEL_ERROR */
  uint64_t jit_cache_bytes;     /* memory the cached programs hold now */
  uint64_t jit_cache_entries;   /* programs in the cache now */
  uint64_t memory_budget;       /* the guest's budget (nub_options) */
  uint64_t frames_created;      /* sub-VM frames entered by HOST_CALL (docs/kernel.md) */
  uint64_t pages_copied;        /* Data pages mapped copy-on-write into writable
                                   frame memory (each copied at most once) */
};

NUB_STATIC_ASSERT(sizeof(struct nub_kernel_stats) == 104, "kernel stats are 104 bytes");

/* REPUBLISH (nub extension): caps with the hashes the host computed,
** many per frame after a guest is replaced, one per frame for a put of a
** large cap (nub_put_cap); the guest decodes each copy but does not hash
** it (docs/abi.md).
**
**   payload:  nub_republish_header | record | record | ...  (count records)
**   record:   hash [32] | len u64 | wire [len]             (packed, no padding)
**   reply:    nub_republish_reply */
typedef struct nub_republish_header {
  uint32_t count;               /* records that follow */
  uint32_t reserved;            /* zero */
} nub_republish_header;

typedef struct nub_republish_record {
  uint8_t hash[NUB_HASH_SIZE];
  uint64_t len;                 /* wire bytes that follow */
} nub_republish_record;

typedef struct nub_republish_reply {
  uint32_t stored;              /* records stored (all of them, or an error status) */
  uint32_t inserted;            /* of those, new to the directory */
} nub_republish_reply;

NUB_STATIC_ASSERT(sizeof(nub_republish_header) == 8, "republish header is 8 bytes");
NUB_STATIC_ASSERT(sizeof(nub_republish_record) == 40, "republish record header is 40 bytes");
NUB_STATIC_ASSERT(offsetof(nub_republish_record, len) == 32, "republish record len");
NUB_STATIC_ASSERT(sizeof(nub_republish_reply) == 8, "republish reply is 8 bytes");

/* PAGES_RESERVE and PAGES_COMMIT (nub extension): a Data cap with pages
** whose page bytes the host writes straight into the guest's heap file
** (docs/abi.md): the guest holds a page-aligned block for the page image
** (one at a time; a new reservation gives the last one back), the host
** writes page i at heap offset heap_offset + 4096 i, then commits the
** wire's head and page indexes with its hash.  The guest checks and
** decodes what it holds (nub_cap_dir_put_placed), as for REPUBLISH.
**
**   reserve:  nub_pages_reserve                 -> nub_pages_reserved
**   commit:   nub_pages_commit | index u32 x n  -> nub_republish_reply */
typedef struct nub_pages_reserve {
  uint32_t pages;               /* 1 .. 2^20: the wire's page count n */
  uint32_t runs;                /* 1 .. pages: runs of consecutive page indexes */
} nub_pages_reserve;

typedef struct nub_pages_reserved {
  uint64_t heap_offset;         /* page 0, from the heap's start; page aligned */
  uint64_t size;                /* bytes held: 4096 pages + 8 runs */
} nub_pages_reserved;

typedef struct nub_pages_commit {
  uint8_t hash[NUB_HASH_SIZE];
  uint64_t len;                 /* the wire's length: 13 + 4100 n */
  uint8_t head[13];             /* the wire's first 13 bytes */
  uint8_t reserved[3];          /* zero */
} nub_pages_commit;

NUB_STATIC_ASSERT(sizeof(nub_pages_reserve) == 8, "pages reserve is 8 bytes");
NUB_STATIC_ASSERT(sizeof(nub_pages_reserved) == 16, "pages reserved is 16 bytes");
NUB_STATIC_ASSERT(sizeof(nub_pages_commit) == 56, "pages commit is 56 bytes");
NUB_STATIC_ASSERT(offsetof(nub_pages_commit, head) == 40, "pages commit head");

/* ---- lanes (the original nub's "parallel invoke"; docs/abi.md, "Lanes") ----
** Lane n serves the 512-byte slot n of a slot area both sides map: the
** host posts an InvokePacket (status EMPTY -> READY), the lane's thread
** runs it (READY -> RUNNING -> DONE) and the host takes the result
** (DONE -> EMPTY).  NUB_FN_LANE_START starts lane n once its slot says
** STARTING; the guest answers after setting it EMPTY.  The host sleeps on
** `owner` (the lane thread's tid | FUTEX_WAITERS), a robust futex: a
** guest that dies sets FUTEX_OWNER_DIED in it and wakes the host; the
** lane sleeps on `status`, announced by lane_sleeping. */
#define NUB_MAX_LANES          64u
#define NUB_LANE_SLOT_SIZE     512u
#define NUB_LANE_EMPTY         0u
#define NUB_LANE_READY         1u
#define NUB_LANE_RUNNING       2u
#define NUB_LANE_DONE          3u
#define NUB_LANE_STOP          4u   /* the lane's thread ends (inproc close) */
#define NUB_LANE_STARTING      5u
#define NUB_LANE_EVICT_JIT_READY 6u /* the seed's; nub evicts with fn 6 while lanes run */

typedef struct nub_lane_slot {
  uint32_t status;              /* NUB_LANE_*; the futex the lane sleeps on */
  uint32_t owner;               /* the seed's _pad0; nub: robust futex the host sleeps on */
  uint64_t job_id;              /* the host's; the guest leaves it alone */
  nub_invoke_packet packet;     /* host -> guest */
  nub_invocation_result result; /* guest -> host, valid at DONE */
  uint32_t lane_sleeping;       /* the lane is (about to be) in FUTEX_WAIT on status */
  uint32_t error_len;           /* bytes of error: a kernel error's reason, like fn 9's */
  char error[NUB_KERNEL_ERROR_TEXT_MAX];
  uint8_t reserved[NUB_LANE_SLOT_SIZE - 128 - NUB_KERNEL_ERROR_TEXT_MAX];
} nub_lane_slot;

NUB_STATIC_ASSERT(sizeof(nub_lane_slot) == NUB_LANE_SLOT_SIZE, "a lane slot is 512 bytes");
NUB_STATIC_ASSERT(offsetof(nub_lane_slot, job_id) == 8, "ParallelInvokeSlot.job_id");
NUB_STATIC_ASSERT(offsetof(nub_lane_slot, packet) == 16, "ParallelInvokeSlot.packet");
NUB_STATIC_ASSERT(offsetof(nub_lane_slot, result) == 96, "ParallelInvokeSlot.result");
NUB_STATIC_ASSERT(offsetof(nub_lane_slot, error) == 128, "lane slot error text");

/* ---- framing in the shared buffers (nub) ----
**
**   input buffer:   nub_request_header  | payload (len bytes)
**   output buffer:  nub_response_header | payload (len bytes)
**
** The reader checks magic, that len fits the buffer it was read from, and
** copies the payload out (or reads it once) before acting on it. */

#define NUB_REQUEST_MAGIC  0x5152424Eu   /* "NBRQ" little-endian */
#define NUB_RESPONSE_MAGIC 0x5352424Eu   /* "NBRS" little-endian */

typedef struct nub_request_header {
  uint32_t magic;
  uint32_t fn_id;
  uint64_t len;
} nub_request_header;

typedef struct nub_response_header {
  uint32_t magic;
  uint32_t status;              /* NUB_RPC_* */
  uint64_t len;
} nub_response_header;

NUB_STATIC_ASSERT(sizeof(nub_request_header) == 16, "request header is 16 bytes");
NUB_STATIC_ASSERT(sizeof(nub_response_header) == 16, "response header is 16 bytes");

/* Response status.  Anything but OK carries a UTF-8 message as payload. */
#define NUB_RPC_OK             0u
#define NUB_RPC_UNKNOWN_FN     1u
#define NUB_RPC_BAD_FRAME      2u   /* bad magic or length */
#define NUB_RPC_BAD_PAYLOAD    3u   /* payload of the wrong size for the fn */
#define NUB_RPC_TOO_LARGE      4u   /* reply does not fit the output buffer */
#define NUB_RPC_INTERNAL       5u   /* guest-side failure */
#define NUB_RPC_NO_MEMORY      6u   /* nub: the guest heap (or the kernel's memory) has no
                                       room: REPUBLISH; the host says NUB_ERR_NOMEM */

/* ---- the sandbox report's bits (nub_sandbox_report, and the guest's
** lockdown report over the channel: docs/sandbox.md) ---- */

/* Namespaces the guest process runs in. */
#define NUB_NS_USER    0x01u
#define NUB_NS_PID     0x02u
#define NUB_NS_NET     0x04u
#define NUB_NS_IPC     0x08u
#define NUB_NS_MOUNT   0x10u
#define NUB_NS_UTS     0x20u
#define NUB_NS_CGROUP  0x40u
#define NUB_NS_TIME    0x80u   /* where the kernel has it (Linux >= 5.6) */

/* Lockdown steps of the guest process. */
#define NUB_LOCK_FDS_CLOSED    0x001u  /* no file descriptors left */
#define NUB_LOCK_NO_NEW_PRIVS  0x002u
#define NUB_LOCK_RLIMITS       0x004u  /* NOFILE, NPROC, CORE, MEMLOCK, MSGQUEUE, LOCKS = 0; FSIZE = memfd size */
#define NUB_LOCK_CAPS_DROPPED  0x008u  /* no capabilities, even inside its user namespace */
#define NUB_LOCK_FS_DETACHED   0x010u  /* its root is an empty read-only tmpfs */
#define NUB_LOCK_SECCOMP       0x020u  /* seccomp allow-list; anything else kills it */
#define NUB_LOCK_NOT_DUMPABLE  0x040u  /* no ptrace, no core dump */
#define NUB_LOCK_PDEATHSIG     0x080u  /* dies with the thread that started it */
#define NUB_LOCK_ROBUST_DEATH  0x100u  /* its death wakes a waiting host at once */
#define NUB_LOCK_CAPBSET_CLEARED 0x200u /* empty capability bounding set */
#define NUB_LOCK_UNPRIVILEGED  0x400u  /* uid and gid outside every namespace are not 0 */

#ifdef __cplusplus
}
#endif
#endif
