/*
** Guest kernel internals shared by nk*.c.
*/
#ifndef NUB_NK_INTERNAL_H
#define NUB_NK_INTERNAL_H

#include <pthread.h>

#include "nk.h"
#include "nk_heap.h"
#include "nub/cap.h"

#define NK_DIRECTORY_TYPE_ID CAP_DIR_TYPE_ID

/* A program compiled for the kernel's engine, cached per Image, on a
** least-recently-used list.  pins is atomic: a lane pins the program its
** warm entry names without cache_lock (nk_invoke.c, "pin_warm"), and
** unpins without it.  Once NK_PIN_EVICTED is set (drop, under the lock)
** no pin is taken again; whoever leaves it at NK_PIN_EVICTED with no
** pins frees prog and code, and the struct goes when, besides, no lane's
** warm entry names it (lane_refs). */
#define NK_PIN_EVICTED 0x80000000u
typedef struct nk_compiled {
  nub_pvm_program *prog;
  void *code;              /* engine artifact (JIT code), may be NULL */
  uint64_t bytes;          /* memory prog and code hold */
  uint32_t ordinal;        /* of the Image */
  uint32_t pins;           /* frames running it, on any lane (| NK_PIN_EVICTED) */
  uint32_t lane_refs;      /* warm entries naming it (cache_lock) */
  bool released;           /* prog and code freed (cache_lock) */
  uint64_t used;           /* stamp of its last use (atomic: pin_warm sets it unlocked) */
  uint64_t listed;         /* the stamp its place on the list is by (cache_lock) */
  struct nk_compiled *newer, *older;
} nk_compiled;

/* What one invocation runs with: the root frame's address space, the
** frame stack and its pools, the reason of its last kernel error.  The
** RPC path (INVOKE_CACHED) has one; every started lane its own. */
/* What a warm invoke would find again (nk_invoke.c): the Instance and
** Image views, the endpoint, the mapped bytes and the Data runs of the
** lane's last successful lookup.  Caps never leave the directory and a
** view never moves (retired arrays live on), so an entry stays right for
** the kernel's life.  The compiled program of its last invoke (c) is
** named, not owned: pinned again without the cache lock while it is
** cached, looked up again once evicted (fn 6, the budget).  A lookup
** that failed is never kept (a later PUT_CAP may make it succeed).  One
** per lane: only the lane's thread touches it. */
#define NK_WARM_DATA 8u   /* Data caps of the memory kept per lane: mappings + overlays */
typedef struct nk_warm {
  bool valid;
  uint32_t endpoint_idx;
  uint8_t instance_hash[NUB_HASH_SIZE];
  const nub_cap_view *inst, *image;
  uint32_t image_ordinal;
  nub_cap_endpoint ep;
  uint64_t pages;               /* nk_mapping_bytes of the Image */
  uint64_t runs;                /* nub_cap_memory_runs of Image + Instance */
  bool bare;                    /* no mappings, no overlays: the memory is its heap range */
  bool root_cnode;              /* the Instance names a root CNode (checked before it runs) */
  uint32_t ndata;               /* the first Data caps the memory found */
  uint8_t data_hash[NK_WARM_DATA][NUB_HASH_SIZE];
  const nub_cap_view *data[NK_WARM_DATA];
  struct nk_compiled *c;        /* a lane_ref of it held, or NULL */
  /* The root frame's engine state (nk_frames_root_vm) while it is bound
  ** to c's program and code, the lane's memory and the kernel's engine,
  ** else NULL: the next invoke of c only sets its registers, gas and pc.
  ** Let go (vm_fini) before the entry names another program, while the
  ** lane_ref still keeps c's struct (its code may be freed already: no
  ** engine's vm_fini reads it); a pin without the lock succeeds only on a
  ** program not evicted, so its program and code are the bound ones. */
  nub_pvm_vm *vm;
} nk_warm;

typedef struct nk_lane {
  nub_pvm_mem *mem;
  bool mem_used;                /* mem may hold an invocation's pages: reset it first */
  struct nk_frames *frames;     /* nk_frames.c */
  struct nk_kernel *kernel;     /* the kernel the lane serves */
  nk_warm warm;
  char last_error[NUB_KERNEL_ERROR_TEXT_MAX + 1];
} nk_lane;

struct nk_lanes;                /* nk_lanes.c: lane threads and their slots */

/* Counters more than one lane bumps. */
#define NK_STAT_ADD(k, field, n) __atomic_add_fetch(&(k)->stats.field, (n), __ATOMIC_RELAXED)

/* Threads: the RPC path and every lane share the directory and the JIT
** cache.  dir_lock guards the directory, views and nviews (PUT_CAP and
** REPUBLISH write; lookups read, briefly): a view array that grows is
** retired, never freed while the kernel lives, so a view pointer stays
** valid without the lock.  cache_lock guards compiled[], the list, the
** lane_refs and the cache counters (pins: nk_compiled); a compile runs outside it, its Image marked as
** compiling so that a second lane waits for it (compiled_cv) instead of
** compiling it again. */
struct nk_kernel {
  nk_config cfg;
  nk_heap *heap;
  nub_cap_dir dir;
  pthread_rwlock_t dir_lock;
  bool dir_lock_made, cache_lock_made;
  nub_cap_view *views;         /* by directory ordinal: decoded once at put_cap */
  void **retired;              /* view arrays replaced by larger ones */
  size_t nretired;
  nk_compiled **compiled;  /* by ordinal of the Image; NULL = not compiled */
  size_t nviews, views_cap;
  pthread_mutex_t cache_lock;
  pthread_cond_t compiled_cv;   /* a compile finished */
  nk_compiled *newest, *oldest;   /* the cache, by `listed` (stale: `used` is later) */
  uint64_t use_clock;      /* the last use stamp (atomic) */
  uint64_t cache_bytes;    /* sum of their bytes */
  uint64_t compiling_bytes;  /* bounds of the compiles running now */
  uint64_t budget;         /* cfg.memory_budget or the default */
  int heap_fd;             /* backing of every frame's memory, or -1 */
  uint64_t heap_fd_offset;
  nk_lane primary;         /* the RPC path's invocations */
  struct nk_lanes *lanes;  /* NULL until slots are attached */
  uint64_t bytes_through_fd; /* cap bytes stored by pwritev (nk_caps.c) */
  uint8_t *check_buf;      /* pages read back for the zero check (nk_caps.c) */
  uint8_t *reserved_image;  /* PAGES_RESERVE's block, until PAGES_COMMIT (nk_caps.c) */
  size_t reserved_size;
  uint32_t reserved_pages;
  uint64_t bytes_populated;  /* cap bytes copied into pages populated first */
  bool populate_off;       /* test hook: never madvise (nk_populate_off) */
  const uint8_t *in_seen;  /* the request buffer nk_serve last read, */
  size_t in_mapped;        /* its bytes from the start populated (map_request) */
  nk_fn table[NUB_GUEST_FN_TABLE_SIZE];
  struct nub_kernel_stats stats;
};

/* Test-only: when set (by a test, never by the kernel), called at the
** named points of a compile or a lane's serve loop, so that a test can
** stand in for a preemption there (tests/kernel/test_compile_room.c,
** test_lane_threads.c).  NULL in every kernel: the points are off the
** warm path but for one predicted branch after a lane's DONE store. */
typedef enum nk_test_point {
  NK_TEST_COMPILE_RESERVED,   /* its room reserved, cache_lock let go, before compiling */
  NK_TEST_COMPILE_WAITS,      /* under cache_lock: waiting for other compiles' room */
  NK_TEST_LANE_SETTLE,        /* a lane thread, after its DONE store, before nk_invoke_settle */
  NK_TEST_LANE_SETTLED,       /* a lane thread, after nk_invoke_settle */
} nk_test_point;
extern void (*nk_test_hook)(nk_kernel *k, nk_test_point point);
#define NK_TEST_POINT(k, point)                                                \
  do {                                                                         \
    void (*hook_)(nk_kernel *, nk_test_point) = nk_test_hook;  /* read once */ \
    if (__builtin_expect(hook_ != NULL, 0)) hook_(k, point);                   \
  } while (0)

uint32_t nk_reply(uint8_t *out, size_t out_cap, size_t *out_len, const void *data, size_t len);
uint32_t nk_reply_error(uint8_t *out, size_t out_cap, size_t *out_len, uint32_t status,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* nk_caps.c: the heap, the directory and publication */
/* From NK_POPULATE_MIN bytes the kernel fills the page tables of memory
** it is about to read (the request) or write (a cap's copy in the heap)
** in one madvise, MADV_POPULATE_READ or _WRITE (nk.c), rather than by
** faults (a read fault maps up to 16 pages, 64 KiB).  Where the kernel
** lacks them (Linux < 5.14: EINVAL) the pages fault in as before:
** nk_populate_read ignores it, nk_populate_write returns -1. */
#define NK_POPULATE_MIN (64u << 10)
void nk_populate_read(const void *p, size_t len);
int nk_populate_write(void *p, size_t len);

int nk_caps_init(nk_kernel *k, char *err, size_t errlen);
uint64_t nk_caps_count(nk_kernel *k);
/* The decoded cap stored under hash and its ordinal, or NULL. */
const nub_cap_view *nk_caps_find(nk_kernel *k, const uint8_t hash[NUB_HASH_SIZE],
                             uint32_t *ordinal);
void nk_caps_fini(nk_kernel *k);
uint32_t nk_fn_put_cap(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t out_cap, size_t *out_len);
uint32_t nk_fn_republish(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len);
uint32_t nk_fn_pages_reserve(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len);
uint32_t nk_fn_pages_commit(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_cap, size_t *out_len);

/* nk_invoke.c: the JIT cache and invocation */
int nk_invoke_init(nk_kernel *k, char *err, size_t errlen);
void nk_invoke_fini(nk_kernel *k);
/* A lane's execution state (memory backed like every frame's). */
int nk_lane_init(nk_kernel *k, nk_lane *lane, char *err, size_t errlen);
void nk_lane_fini(nk_lane *lane);
/* Run packet p (read once, in private memory) on lane: r gets the result,
** a kernel error folded in (its reason in lane->last_error). */
void nk_invoke_on(nk_kernel *k, nk_lane *lane, const nub_invoke_packet *p,
                  nub_invocation_result *r);
/* What only the lane's next invoke needs done, once r is out (a lane
** slot's DONE store, the copy of the reply): the Instances of the
** invocation given back and the lane's memory reset.  Everything another
** thread or the host can see (pins, counters, the error text) is done by
** nk_invoke_on.  Skipped or failed, the next invoke does it first. */
void nk_invoke_settle(nk_lane *lane);
/* Drop every compiled program; returns how many were dropped (those
** frames still run are freed when the last one lets go). */
uint64_t nk_jit_cache_clear(nk_kernel *k);
uint32_t nk_fn_invoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len);
/* The Image's compiled program from the cache (or compiled now), pinned
** for the caller: 0 or a kernel error code (its reason in
** lane->last_error). */
uint32_t nk_compiled_image(nk_kernel *k, nk_lane *lane, const nub_cap_image_view *im,
                           uint32_t ordinal, nk_compiled **out);
void nk_compiled_unpin(nk_kernel *k, nk_compiled *c);
uint64_t nk_mapping_bytes(const nub_cap_image_view *im);
const nub_cap_view *nk_lookup(void *k, const uint8_t hash[CAP_HASH_SIZE]);

/* nk_frames.c: the CALL/HALT loop (docs/kernel.md) */
void nk_frames_fini(nk_lane *lane);
/* A host call the kernel answers itself (not a frame op): true when it
** was serviced and the frame resumes; false sends it to the host. */
typedef bool (*nk_host_fn)(void *ud, nub_pvm_vm *vm, const nub_pvm_mem *mem);
/* The root frame's engine state on lane, set up in place by the caller
** (no copy in or out of the frame); NULL when out of memory. */
nub_pvm_vm *nk_frames_root_vm(nk_kernel *k, nk_lane *lane);
/* Run the root frame (nk_frames_root_vm: the warm entry's Instance and
** Image, compiled c, its memory built in lane->mem and holding held
** bytes of the budget) and every frame it calls until the invocation
** ends; fills r.  host (may be NULL) sees every other ecalli first.
** Returns 0 or a kernel error code.  Every frame above the root is gone
** (and its pin) on return; the root's Instance, if one was made, is
** given back by nk_frames_settle or the next run. */
uint32_t nk_frames_run(nk_kernel *k, nk_lane *lane, nk_compiled *c, const nk_warm *w,
                       uint64_t held, nk_host_fn host, void *host_ud, nub_invocation_result *r);
void nk_frames_settle(nk_lane *lane);
/* The reason of a kernel error, for KERNEL_LAST_ERROR and lane slots. */
void nk_note(nk_lane *lane, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint32_t nk_fn_last_error(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len);

/* nk_lanes.c */
uint32_t nk_fn_lane_start(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len);
void nk_lanes_fini(nk_kernel *k);
/* Test-only: slot n's lane thread's lane (NULL: none); read it on that
** thread (NK_TEST_LANE_SETTLED). */
nk_lane *nk_lanes_lane(nk_kernel *k, uint32_t n);

#endif
