/*
** Host side: the backend interface shared by proc and inproc.
**
** A backend owns two buffers.  nub.c writes a request frame (header +
** payload) into `in`, calls ops->call(), then reads and validates the
** response frame in `out`.  The guest heap is visible read-only through
** heap_view for direct lookups.
*/
#ifndef NUB_HOST_H
#define NUB_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nub/cap.h"
#include "nub/nub.h"

typedef struct host_backend host_backend;

typedef struct host_backend_ops {
  const char *name;
  int (*open)(const nub_options *opt, host_backend **out, nub_error *err);
  /* Deliver the request frame in b->in and wait for the response frame in
  ** b->out.  On NUB_ERR_GUEST_DIED / NUB_ERR_TIMEOUT the guest is gone and
  ** restart() must be called before the next call. */
  int (*call)(host_backend *b, nub_error *err);
  /* Replace a dead guest with a fresh one (empty directory). */
  int (*restart)(host_backend *b, nub_error *err);
  void (*close)(host_backend *b);
  /* One raw round trip without a frame; NULL when there is no transport. */
  int (*ping)(host_backend *b, nub_error *err);
  /* For lane waiters, from any thread: whether the guest still runs, and
  ** killing it (not reaping: restart() does) so that every waiter sees it
  ** die.  NULL where the guest cannot die (inproc). */
  bool (*alive)(host_backend *b);
  void (*kill)(host_backend *b);
  /* Run p on started lane n on the calling thread (result and error text
  ** as host_lane_take gives them), instead of the slot handoff; NULL:
  ** lanes are threads behind slots. */
  int (*lane_run)(host_backend *b, uint32_t lane, const nub_invoke_packet *p,
                  nub_invocation_result *r, char *text, nub_error *err);
} host_backend_ops;

struct host_backend {
  const host_backend_ops *ops;
  uint8_t *in, *out;               /* request / response buffers */
  size_t in_cap, out_cap;
  const uint8_t *heap_view;        /* guest heap, read-only, at its guest VA */
  size_t heap_size;
  int heap_fd;                     /* the file the heap is mapped from, writable, or -1 */
  uint64_t heap_fd_off;            /* where in it the heap starts */
  const char *engine;              /* engine the guest runs */
  const char *exe_path;            /* executable carrying the kernel (.boot_info) */
  bool guest_gone;                 /* the guest was killed: restart before calling */
  /* Work for the calling thread while the guest serves the request just
  ** delivered (proc: between the doorbell and the wait); nub.c sets it
  ** around one call and runs it itself if the backend did not.  It must
  ** not touch in or out. */
  void (*overlap)(void *arg);
  void *overlap_arg;
  struct nub_sandbox_report report;
  /* Lanes: the slot area shared with the guest, lane_count slots (the
  ** lanes it serves; 0 = none). */
  nub_lane_slot *lane_slots;
  uint32_t lane_count;
  uint32_t call_timeout_ms;        /* a lane call that takes longer kills the guest; 0 = none */
};

extern const host_backend_ops host_inproc_ops;
extern const host_backend_ops host_proc_ops;

/* lanes.c: one slot's doorbell.  post: the slot is EMPTY and the
** caller's; wait: NUB_OK at DONE, or the guest died / timed out (then
** killed); take: the result, the slot EMPTY again. */
void host_lane_post(nub_lane_slot *s, const nub_invoke_packet *p, uint64_t job);
int host_lane_wait(host_backend *b, uint32_t lane, nub_lane_slot *s, nub_error *err);
int host_lane_take(nub_lane_slot *s, uint32_t lane, nub_invocation_result *r, char *text,
                   nub_error *err);

/* helper.c: a handle's put helper thread (nub_put_cap of a large cap).
** claim starts it at first use and fails while another put holds it (or
** it cannot start, or once it could not, or in a forked child: the put
** works alone); post queues fn(arg) for it
** (at most HOST_HELPER_JOBS outstanding), wait returns once every posted
** job has run, release hands it back (a job posted last may still run:
** the next claimer waits for it before it touches what the job writes);
** stop runs what is queued and joins it (nub_close).  for_hash:
** nub_cap_hash_with's helper on it. */
#define HOST_HELPER_JOBS 2u
typedef struct host_helper_job { void (*fn)(void *); void *arg; } host_helper_job;
typedef struct host_helper {
  pthread_mutex_t mx;
  pthread_cond_t work, idle;   /* a job was posted (or stop); every job is done */
  pthread_t thread;
  pid_t owner;                 /* the process that made the handle */
  bool started, failed, claimed, stop;
  unsigned posted, taken, done;
  host_helper_job jobs[HOST_HELPER_JOBS];
} host_helper;
void host_helper_init(host_helper *h);
bool host_helper_claim(host_helper *h);
void host_helper_release(host_helper *h);
void host_helper_post(host_helper *h, void (*fn)(void *), void *arg);
void host_helper_wait(host_helper *h);
void host_helper_stop(host_helper *h);
nub_cap_helper host_helper_for_hash(host_helper *h);

/* Test-only: when set (by a test, never by the library), called at the
** named points of the lane lease and of a guest replacement, so that a
** test can stand in for a preemption there (tests/host/test_lane_races.c).
** NULL in every use of the library: each point costs a load and a branch
** not taken.  lane: the lane concerned (LEASED_DRAINING, LANE_STARTED,
** LANE_MARKED). */
typedef enum host_test_point {
  HOST_TEST_LEASE,             /* invoke: past the recovery check, before the lease */
  HOST_TEST_LEASED_DRAINING,   /* lease_idle: lane made BUSY, then found a drain on */
  HOST_TEST_DRAIN_SCANNED,     /* drain_lanes: no lane BUSY, before the reset to UNSTARTED */
  HOST_TEST_LANE_STARTED,      /* lease_lane: lane started, before lane_mx is taken again */
  HOST_TEST_LANE_MARKED,       /* lease_lane: that lane marked IDLE or UNSTARTED, lane_mx held */
  HOST_TEST_DRAINED,           /* replace_guest: the drain is over, the generation not yet moved */
  HOST_TEST_REPLACED,          /* replace_guest: the new guest is up, lanes may be leased */
} host_test_point;
extern void (*host_test_hook)(nub *n, host_test_point point, uint32_t lane);

int host_fail(nub_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reserve `size` bytes at the guest VA base chosen by opt (or the next free
** slot) and map them with mmap flags/fd from offset; returns the address. */
void *host_map_guest_region(uint64_t requested_base, size_t size, int prot, int flags, int fd,
                            off_t offset, nub_error *err);

#endif
