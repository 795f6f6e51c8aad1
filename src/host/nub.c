/*
** The host API (include/nub/nub.h): request framing, reply validation,
** the record of published caps and recovery after a guest dies.
*/
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../chan/nk_chan.h"
#include "elf.h"
#include "host.h"
#include "../guest/nk.h"
#include "nub/cap.h"

typedef struct published {
  nub_hash hash;
  uint8_t *wire;             /* the host's copy (copy_alloc), or NULL: in the record file */
  uint64_t off;              /* where in the record file, when wire is NULL */
  size_t len;
} published;

/* A lane, as the handle sees it. */
enum { LANE_UNSTARTED, LANE_STARTING, LANE_IDLE, LANE_BUSY };

/* Threads (nub.h): calls over the request buffer, lane starts, the
** replacement of a dead guest and a put's record (record_put) hold
** call_lock.  An invocation leases an
** idle lane and gives it back without a lock (lease_idle, give_back:
** atomics on lane_state and draining); starting a lane, waiting for one,
** draining and a changed error text take lane_mx.  Lookups read
** the heap view, dir_off (fixed at open), the record under `lock`, and
** `epoch`.  Lock order: call_lock, then lane_mx, then lock. */
struct nub {
  host_backend *b;
  pthread_mutex_t call_lock;
  pthread_mutex_t lane_mx;
  pthread_cond_t lane_cv;    /* a lane came free, or the draining ended */
  uint32_t lane_waiters;     /* threads in a wait on lane_cv (atomic): a give-back wakes only these */
  uint8_t lane_state[NUB_MAX_LANES];   /* LANE_* (atomic) */
  uint32_t lane_limit;       /* lanes this handle may start */
  bool draining;             /* a replacement waits for BUSY lanes: no new leases (atomic) */
  bool last_error_set;       /* last_error is not empty (atomic) */
  uint64_t gen;              /* guests started since open, under call_lock */
  uint64_t next_job;
  bool last_error_lane;      /* the last invocation ran on a lane: its error text is here */
  char last_error[NUB_KERNEL_ERROR_TEXT_MAX + 1];
  pthread_rwlock_t lock;     /* the record: put_cap writes, lookups read */
  published *caps;           /* every cap ever published, for re-publication */
  size_t ncaps, caps_cap;
  uint32_t *index;           /* open addressing over caps, slot = index + 1 */
  size_t index_cap;
  uint64_t dir_off;          /* directory header in the heap view (BootInfo, checked) */
  uint64_t epoch;            /* odd from a guest's death until its successor holds every cap */
  host_helper helper;        /* the second thread of large puts (helper.c) */
  /* A populated record for the next large put (the helper's claimer
  ** only): made by the helper while the guest stores the last one. */
  uint8_t *spare;
  size_t spare_len, spare_want;
  /* The record file (a memfd, -1 until the first streamed put): records
  ** of large Data caps, written and read by the kernel, never mapped
  ** (put_streamed).  Extents are bumped from rec_end, under `lock`. */
  int rec_fd;
  uint64_t rec_end, rec_size;
};

int host_fail(nub_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* The wire's hash is the cap layer's. */
_Static_assert(NUB_HASH_SIZE == CAP_HASH_SIZE, "nub_hash is a cap hash");

const char *nub_version(void) { return NUB_VERSION_STRING; }

const char *nub_errcode_name(int code) {
  static const char *names[] = {
    "ok", "argument", "out-of-memory", "system", "sandbox", "guest-died", "timeout",
    "protocol", "guest-error", "rejected", "too-large", "not-found",
  };
  return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "?";
}

const char *nub_kernel_error_name(uint32_t code) {
  switch (code) {
  case NUB_KERR_BAD_PACKET: return "bad invoke packet";
  case NUB_KERR_INSTANCE_NOT_FOUND: return "no cap with the instance hash";
  case NUB_KERR_NOT_AN_INSTANCE: return "the instance hash names a cap that is not an Instance";
  case NUB_KERR_IMAGE_NOT_FOUND: return "the Instance's Image is not published";
  case NUB_KERR_NOT_AN_IMAGE: return "the Instance's image hash names a cap that is not an Image";
  case NUB_KERR_ENDPOINT_NOT_FOUND: return "no endpoint with the key";
  case NUB_KERR_MEMORY: return "memory set-up failed: a mapping's Data cap is missing or too many Data runs";
  case NUB_KERR_OUT_OF_MEMORY: return "out of memory: over the guest's memory budget";
  case NUB_KERR_COMPILE_FAILED: return "the Image's code failed to load or compile";
  }
  return "unknown kernel error";
}

void nub_options_init(nub_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->backend = NUB_BACKEND_PROC;
  opt->heap_size = NUB_DEFAULT_HEAP_SIZE;
  opt->io_size = NUB_DEFAULT_IO_SIZE;
  opt->call_timeout_ms = 10000;
  opt->memory_budget = NUB_DEFAULT_MEMORY_BUDGET;
}

/* ---- frames ---- */

static void copy_message(char *dst, size_t cap, const uint8_t *src, size_t len) {
  size_t n = len < cap - 1 ? len : cap - 1;
  for (size_t i = 0; i < n; i++) dst[i] = src[i] >= 0x20 && src[i] < 0x7F ? (char)src[i] : '?';
  dst[n] = 0;
}

/* dst[0, len) := src[0, len), its pages populated first when asked
** (MADV_POPULATE_WRITE: one call instead of a fault per page; where the
** kernel lacks it, EINVAL, the copy faults them in).  dst need not be
** page aligned (the request buffer's payload is not): the populate starts
** at its page, which the span before it may populate too. */
typedef struct span_job {
  uint8_t *dst;
  const uint8_t *src;
  size_t len;
  bool populate;
} span_job;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23    /* Linux 5.14 uapi, as the guest and JIT define it */
#endif

static void run_span(void *arg) {
  span_job *j = arg;
  if (j->populate && j->len) {
    uintptr_t at = (uintptr_t)j->dst & ~(uintptr_t)4095;
    (void)madvise((void *)at, (uintptr_t)j->dst + j->len - at, MADV_POPULATE_WRITE);
  }
  memcpy(j->dst, j->src, j->len);
}

/* The request buffer is shared memory the host maps once per guest: its
** pages are fresh on their first use, and a copy into them took a fault
** per page (~4.0-4.5 ms per MiB of copy on this VM, 128 x 1 MiB and 512
** MiB into a fresh memfd mapping, against 1.5-2.7 ms populated first).
** Populating pages already there costs 11-57 us per MiB. */
#define POPULATED_REQUEST_BYTES (64u << 10)

static void fill_request(uint8_t *dst, const void *src, size_t len) {
  run_span(&(span_job){dst, src, len, len >= POPULATED_REQUEST_BYTES});
}

/* Send fn with the len payload bytes already in place after the request
** header; copy a reply of at most reply_cap bytes out. */
static int send_frame(nub *n, uint32_t fn, size_t len, void *reply, size_t reply_cap,
                      size_t *reply_len, nub_error *err) {
  host_backend *b = n->b;
  nub_request_header req = {NUB_REQUEST_MAGIC, fn, len};
  nub_response_header resp;
  int rc;
  memcpy(b->in, &req, sizeof req);
  if ((rc = b->ops->call(b, err))) return rc;
  memcpy(&resp, b->out, sizeof resp);     /* read the shared header once */
  if (resp.magic != NUB_RESPONSE_MAGIC)
    return host_fail(err, NUB_ERR_PROTOCOL, "fn %u: bad response magic 0x%08x", fn, resp.magic);
  if (resp.len > b->out_cap - sizeof resp)
    return host_fail(err, NUB_ERR_PROTOCOL, "fn %u: response length %llu exceeds the %zu-byte buffer",
                     fn, (unsigned long long)resp.len, b->out_cap - sizeof resp);
  if (resp.status != NUB_RPC_OK) {
    char msg[200];
    copy_message(msg, sizeof msg, b->out + sizeof resp, (size_t)resp.len);
    return host_fail(err, resp.status == NUB_RPC_NO_MEMORY ? NUB_ERR_NOMEM : NUB_ERR_GUEST,
                     "fn %u: guest error %u: %s", fn, resp.status, msg);
  }
  if (resp.len > reply_cap)
    return host_fail(err, NUB_ERR_PROTOCOL, "fn %u: reply of %llu bytes, at most %zu expected",
                     fn, (unsigned long long)resp.len, reply_cap);
  if (resp.len) memcpy(reply, b->out + sizeof resp, (size_t)resp.len);
  *reply_len = (size_t)resp.len;
  return NUB_OK;
}

/* Send fn with payload; copy a reply of at most reply_cap bytes out. */
static int rpc_raw(nub *n, uint32_t fn, const void *payload, size_t len, void *reply,
                   size_t reply_cap, size_t *reply_len, nub_error *err) {
  host_backend *b = n->b;
  if (len > b->in_cap - sizeof(nub_request_header))
    return host_fail(err, NUB_ERR_TOO_LARGE, "request of %zu bytes exceeds the %zu-byte buffer",
                     len, b->in_cap - sizeof(nub_request_header));
  if (len) fill_request(b->in + sizeof(nub_request_header), payload, len);
  return send_frame(n, fn, len, reply, reply_cap, reply_len, err);
}

/* rpc_raw for a reply of exactly want bytes. */
static int rpc_once(nub *n, uint32_t fn, const void *payload, size_t len, void *reply,
                    size_t want, nub_error *err) {
  size_t got;
  int rc = rpc_raw(n, fn, payload, len, reply, want, &got, err);
  if (!rc && got != want)
    return host_fail(err, NUB_ERR_PROTOCOL, "fn %u: reply of %zu bytes, expected %zu", fn, got,
                     want);
  return rc;
}

static int republish(nub *n, nub_error *err);
static int ready(nub *n, nub_error *err);
static int recover(nub *n, int rc, nub_error *err);

static bool recovering(const nub *n) { return __atomic_load_n(&n->epoch, __ATOMIC_ACQUIRE) & 1; }

void (*host_test_hook)(nub *n, host_test_point point, uint32_t lane);

#define TEST_POINT(n, point, lane)                                                         \
  do {                                                                                     \
    if (__builtin_expect(host_test_hook != NULL, 0)) host_test_hook(n, point, lane);       \
  } while (0)

/* Before a restart maps a new guest over the old one: the old one is
** killed, so every invocation still waiting on one of its lanes sees it
** die and returns; until they have, no lane is leased.  Started lanes are
** gone with it: every lane is UNSTARTED once the new guest is up.  Who
** holds a lane settles it, never the drain: a lease (BUSY) gives it back
** UNSTARTED once its guest died or a drain is on, a starter (STARTING)
** stores UNSTARTED when a replacement came between its LANE_START and its
** store; the drain turns only IDLE lanes UNSTARTED, by compare-and-swap,
** so that it never overwrites a lease that lease_idle took meanwhile. */
static uint8_t lane_state(const nub *n, uint32_t i) {
  return __atomic_load_n(&n->lane_state[i], __ATOMIC_SEQ_CST);
}

static void set_lane_state(nub *n, uint32_t i, uint8_t st) {
  __atomic_store_n(&n->lane_state[i], st, __ATOMIC_SEQ_CST);
}

static bool any_lane(const nub *n, uint8_t st1, uint8_t st2) {
  for (uint32_t i = 0; i < n->lane_limit; i++)
    if (lane_state(n, i) == st1 || lane_state(n, i) == st2) return true;
  return false;
}

/* Under lane_mx: sleep unless a lane is st1 or st2 by now.  A give-back
** stores a lane's state, then reads lane_waiters; a waiter counts itself,
** then reads the states: one of the two sees the other (sequentially
** consistent), and a give-back that sees a waiter wakes it under
** lane_mx, which the waiter holds until it sleeps. */
static void wait_lane_cv(nub *n, uint8_t st1, uint8_t st2) {
  __atomic_add_fetch(&n->lane_waiters, 1, __ATOMIC_SEQ_CST);
  if (!any_lane(n, st1, st2)) pthread_cond_wait(&n->lane_cv, &n->lane_mx);
  __atomic_sub_fetch(&n->lane_waiters, 1, __ATOMIC_SEQ_CST);
}

/* The lease of lane i ends: IDLE again, or UNSTARTED when its guest died. */
static void give_back(nub *n, uint32_t i, bool taken) {
  set_lane_state(n, i, taken ? LANE_IDLE : LANE_UNSTARTED);
  if (__atomic_load_n(&n->lane_waiters, __ATOMIC_SEQ_CST)) {
    pthread_mutex_lock(&n->lane_mx);
    pthread_cond_broadcast(&n->lane_cv);
    pthread_mutex_unlock(&n->lane_mx);
  }
}

/* No lane is leased from here on; wait for the BUSY ones to be given
** back (a lease sets BUSY, then reads draining; this sets draining, then
** reads the states: one of the two sees the other). */
static void drain_lanes(nub *n) {
  if (n->b->ops->kill) n->b->ops->kill(n->b);
  pthread_mutex_lock(&n->lane_mx);
  __atomic_store_n(&n->draining, true, __ATOMIC_SEQ_CST);
  while (any_lane(n, LANE_BUSY, LANE_BUSY)) {
    __atomic_add_fetch(&n->lane_waiters, 1, __ATOMIC_SEQ_CST);
    if (any_lane(n, LANE_BUSY, LANE_BUSY)) pthread_cond_wait(&n->lane_cv, &n->lane_mx);
    __atomic_sub_fetch(&n->lane_waiters, 1, __ATOMIC_SEQ_CST);
  }
  TEST_POINT(n, HOST_TEST_DRAIN_SCANNED, 0);
  for (uint32_t i = 0; i < NUB_MAX_LANES; i++) {
    uint8_t idle = LANE_IDLE;
    __atomic_compare_exchange_n(&n->lane_state[i], &idle, LANE_UNSTARTED, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&n->lane_mx);
}

static void drained(nub *n) {
  pthread_mutex_lock(&n->lane_mx);
  __atomic_store_n(&n->draining, false, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast(&n->lane_cv);
  pthread_mutex_unlock(&n->lane_mx);
}

/* Replace the guest and re-publish every cap (under call_lock).  From the
** moment a guest is known dead until its successor holds every cap, the
** epoch is odd and nub_lookup answers from the host's copy; a failed
** attempt leaves it odd, and the next call tries again before doing
** anything else. */
static int replace_guest(nub *n, nub_error *err) {
  int rc;
  if (!recovering(n)) __atomic_add_fetch(&n->epoch, 1, __ATOMIC_SEQ_CST);
  drain_lanes(n);
  TEST_POINT(n, HOST_TEST_DRAINED, 0);
  __atomic_add_fetch(&n->gen, 1, __ATOMIC_RELEASE);
  rc = n->b->ops->restart(n->b, err);
  drained(n);
  TEST_POINT(n, HOST_TEST_REPLACED, 0);
  if (rc || (rc = republish(n, err))) return rc;
  __atomic_add_fetch(&n->epoch, 1, __ATOMIC_SEQ_CST);
  return NUB_OK;
}

/* After a dead guest: restart it and re-publish every cap.  The failed
** call still fails (its effect is unknown); the next one finds a fresh
** guest with every cap. */
static int recover(nub *n, int rc, nub_error *err) {
  nub_error rerr;
  if (rc != NUB_ERR_GUEST_DIED && rc != NUB_ERR_TIMEOUT && !n->b->guest_gone) return rc;
  /* only now: err is written on failure alone, so on success it may be
  ** uninitialised (nub.h) */
  size_t used = err ? strnlen(err->msg, sizeof err->msg) : 0;
  if (replace_guest(n, &rerr)) {
    if (err) snprintf(err->msg + used, sizeof err->msg - used, "; restart failed: %s", rerr.msg);
    return rc;
  }
  if (err)
    snprintf(err->msg + used, sizeof err->msg - used,
             "; guest restarted with %zu caps re-published", n->ncaps);
  return rc;
}

/* Before a call: finish a replacement that failed last time. */
static int ready(nub *n, nub_error *err) {
  int rc;
  if (!recovering(n)) return NUB_OK;
  if ((rc = replace_guest(n, err)) && err) {
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    snprintf(err->msg, sizeof err->msg, "replacing the dead guest: %.200s", msg);
  }
  return rc;
}

static int rpc(nub *n, uint32_t fn, const void *payload, size_t len, void *reply, size_t want,
               nub_error *err) {
  pthread_mutex_lock(&n->call_lock);
  int rc = ready(n, err);
  if (!rc) rc = recover(n, rpc_once(n, fn, payload, len, reply, want, err), err);
  pthread_mutex_unlock(&n->call_lock);
  return rc;
}

int nub_call_raw(nub *n, uint32_t fn_id, const void *payload, size_t len, void *reply,
                 size_t reply_cap, size_t *reply_len, nub_error *err) {
  int rc;
  if (!payload && len) return host_fail(err, NUB_ERR_ARG, "call_raw: no payload bytes");
  pthread_mutex_lock(&n->call_lock);
  if (!(rc = ready(n, err)))
    rc = recover(n, rpc_raw(n, fn_id, payload, len, reply, reply_cap, reply_len, err), err);
  pthread_mutex_unlock(&n->call_lock);
  if (fn_id == NUB_FN_INVOKE_CACHED)   /* its error text is the RPC path's */
    __atomic_store_n(&n->last_error_lane, false, __ATOMIC_RELAXED);
  return rc;
}

/* ---- the record of published caps ---- */

static size_t slot_of(const nub *n, const nub_hash h) {
  uint64_t k;
  memcpy(&k, h, sizeof k);
  size_t mask = n->index_cap - 1, i = (size_t)k & mask;
  while (n->index[i] && memcmp(n->caps[n->index[i] - 1].hash, h, NUB_HASH_SIZE)) i = (i + 1) & mask;
  return i;
}

static bool is_recorded(const nub *n, const nub_hash h) {
  return n->index_cap && n->index[slot_of(n, h)];
}

static int grow_index(nub *n) {
  size_t cap = n->index_cap ? n->index_cap * 2 : 64;
  uint32_t *old = n->index;
  size_t old_cap = n->index_cap;
  n->index = calloc(cap, sizeof *n->index);
  if (!n->index) { n->index = old; return -1; }
  n->index_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i]) n->index[slot_of(n, n->caps[old[i] - 1].hash)] = old[i];
  free(old);
  return 0;
}

/* The host's copy of a cap.  From POPULATED_COPY_BYTES up it is mapped
** with MAP_POPULATE: the kernel fills the pages in one call instead of a
** fault per 4 KiB page during the copy (1 MiB into fresh memory, thread
** CPU, 3 x 256 copies here: 0.68-0.82 ms by malloc + memcpy, 0.55-0.66 ms
** populated first; perf of 1 MiB puts had page faults at ~20% of the
** host's samples, the copy itself ~5%).  Huge pages cost more on this VM,
** 2.3-3.1 ms per MiB: the hypervisor took their blocks back (docs/sandbox.md). */
#define POPULATED_COPY_BYTES (256u << 10)

static uint8_t *copy_alloc(size_t len, bool populate) {
  if (len < POPULATED_COPY_BYTES) return malloc(len ? len : 1);
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void copy_free(uint8_t *p, size_t len) {
  if (p && len >= POPULATED_COPY_BYTES) munmap(p, len);
  else free(p);
}

/* ---- the record file ----
** Records of large Data caps live in a memfd the host writes with pwritev
** and reads with pread, and never maps: on this VM the first touch of a
** page a process has not touched before costs ~5-8 us (a hypervisor fault
** even when the kernel populated it), so a 1 MiB record in fresh memory
** cost 1.9-2.0 ms per MiB of copying whether populated or not, and 2.4
** with huge pages, against 0.27-0.35 ms by pwrite into a fresh memfd
** (32 x 1 MiB, three rounds).  Extents are page aligned and bumped from
** rec_end; one given back is punched out of the file (its pages freed),
** and the end rolls back when it was the last.  Under the write lock. */
#define REC_FILE_STEP (64ull << 20)     /* the file grows (sparse) by this much at least */

static int rec_reserve(nub *n, size_t len, uint64_t *off) {
  if (n->rec_fd < 0 && (n->rec_fd = memfd_create("nub-records", MFD_CLOEXEC)) < 0) return -1;
  uint64_t at = (n->rec_end + 4095) & ~4095ull, end = at + len;
  if (end > n->rec_size) {
    uint64_t size = n->rec_size * 2 > end ? n->rec_size * 2 : end;
    size = (size + REC_FILE_STEP - 1) / REC_FILE_STEP * REC_FILE_STEP;
    if (ftruncate(n->rec_fd, (off_t)size)) return -1;
    n->rec_size = size;
  }
  n->rec_end = end;
  *off = at;
  return 0;
}

static void rec_release(nub *n, uint64_t off, size_t len) {
  if (off + len == n->rec_end) n->rec_end = off;
  (void)fallocate(n->rec_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* A record's bytes into dst: 0, or -1 (errno) if the file will not give them. */
static int record_read(const nub *n, const published *c, uint8_t *dst) {
  if (c->wire) {
    memcpy(dst, c->wire, c->len);
    return 0;
  }
  for (size_t done = 0; done < c->len;) {
    ssize_t r = pread(n->rec_fd, dst + done, c->len - done, (off_t)(c->off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

/* Callers hold the write lock.  wire is the host's own copy (copy_alloc),
** or NULL for a record at off in the record file; the record takes it, or
** gives it back if the hash is already recorded. */
static int record(nub *n, const nub_hash h, uint8_t *wire, uint64_t off, size_t len) {
  if (is_recorded(n, h)) {
    if (wire) copy_free(wire, len);
    else rec_release(n, off, len);
    return 0;
  }
  if ((n->ncaps + 1) * 2 > n->index_cap && grow_index(n)) return -1;
  if (n->ncaps == n->caps_cap) {
    size_t cap = n->caps_cap ? n->caps_cap * 2 : 64;
    published *c = realloc(n->caps, cap * sizeof *c);
    if (!c) return -1;
    n->caps = c;
    n->caps_cap = cap;
  }
  published *p = &n->caps[n->ncaps];
  p->wire = wire;
  p->off = off;
  memcpy(p->hash, h, NUB_HASH_SIZE);
  p->len = len;
  n->index[slot_of(n, h)] = (uint32_t)++n->ncaps;
  return 0;
}

/* A put's record, made under call_lock (then the write lock).  A
** replacement, also under call_lock, so re-publishes every cap a put
** stored in the guest and the host recorded, never a cap the old guest
** stored but the record lacks yet, and never walks n->caps while a put
** moves it (realloc).  On failure an extent of the record file is given
** back; a copy stays the caller's. */
static int record_put(nub *n, const nub_hash h, uint8_t *wire, uint64_t off, size_t len,
                      nub_hash out, nub_error *err) {
  pthread_rwlock_wrlock(&n->lock);
  int rc = record(n, h, wire, off, len);
  if (rc && !wire) rec_release(n, off, len);
  pthread_rwlock_unlock(&n->lock);
  if (rc) return host_fail(err, NUB_ERR_NOMEM, "put_cap: out of memory recording the cap");
  memcpy(out, h, NUB_HASH_SIZE);
  return NUB_OK;
}

static bool is_failure_sentinel(const uint8_t *h) {
  for (size_t i = 0; i < NUB_HASH_SIZE; i++) if (h[i] != 0xFF) return false;
  return true;
}

/* One PUT_CAP round trip: the hash, or the guest's reason for refusing the
** cap (32 x 0xFF | u32 class | text, docs/abi.md), checked and mapped to
** an error code. */
static int put_once(nub *n, const uint8_t *wire, size_t len, nub_hash out, nub_error *err) {
  uint8_t reply[NUB_HASH_SIZE + 4 + NUB_PUT_CAP_REASON_MAX];
  const uint8_t *text = reply + NUB_HASH_SIZE + 4;
  uint32_t reason;
  size_t got;
  int rc = rpc_raw(n, NUB_FN_PUT_CAP, wire, len, reply, sizeof reply, &got, err);
  if (rc) return rc;
  if (got < NUB_HASH_SIZE || (got > NUB_HASH_SIZE && !is_failure_sentinel(reply)))
    return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: reply of %zu bytes is neither a 32-byte "
                     "hash nor 32 x 0xFF and a reason", got);
  if (!is_failure_sentinel(reply)) {
    memcpy(out, reply, NUB_HASH_SIZE);
    return NUB_OK;
  }
  if (got == NUB_HASH_SIZE)
    return host_fail(err, NUB_ERR_REJECTED, "put_cap: the guest rejected the %zu-byte cap "
                     "(no reason given)", len);
  if (got <= NUB_HASH_SIZE + 4)
    return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: rejection of %zu bytes has no reason text",
                     got);
  got -= NUB_HASH_SIZE + 4;
  for (size_t i = 0; i < got; i++)
    if (text[i] < 0x20 || text[i] >= 0x7F)
      return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: reason byte %zu is 0x%02x, not "
                       "printable ASCII", i, text[i]);
  memcpy(&reason, reply + NUB_HASH_SIZE, sizeof reason);
  switch (reason) {
  case NUB_PUT_CAP_INVALID:
    return host_fail(err, NUB_ERR_REJECTED, "put_cap: rejected the %zu-byte cap: %.*s", len,
                     (int)got, (const char *)text);
  case NUB_PUT_CAP_NO_MEMORY:
    return host_fail(err, NUB_ERR_NOMEM, "put_cap: the guest has no memory for the %zu-byte "
                     "cap: %.*s", len, (int)got, (const char *)text);
  case NUB_PUT_CAP_INTERNAL:
    return host_fail(err, NUB_ERR_GUEST, "put_cap: the guest kernel failed on the %zu-byte "
                     "cap: %.*s", len, (int)got, (const char *)text);
  default:
    return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: unknown rejection class %u", reason);
  }
}

/* One cap by PUT_CAP, the guest hashing it: for a cap whose record does
** not fit a REPUBLISH frame. */
static int republish_one(nub *n, size_t i, nub_error *err) {
  const published *c = &n->caps[i];
  uint8_t *wire = c->wire ? c->wire : malloc(c->len);
  nub_hash h;
  if (!wire) return host_fail(err, NUB_ERR_NOMEM, "re-publishing cap %zu: out of memory", i);
  if (!c->wire && record_read(n, c, wire)) {
    free(wire);
    return host_fail(err, NUB_ERR_SYSTEM, "re-publishing cap %zu: its record file: %s", i,
                     strerror(errno));
  }
  int rc = put_once(n, wire, c->len, h, err);
  if (!c->wire) free(wire);
  if (!rc && memcmp(h, n->caps[i].hash, NUB_HASH_SIZE))
    return host_fail(err, NUB_ERR_PROTOCOL, "re-publishing cap %zu gave a different hash", i);
  return rc;
}

/* Caps [first, first + count) are in the frame: the guest must say it
** stored every one, each new to it (it is a fresh guest). */
static int send_republish(nub *n, size_t first, uint32_t count, size_t len, nub_error *err) {
  nub_republish_header h = {count, 0};
  nub_republish_reply r;
  size_t got;
  memcpy(n->b->in + sizeof(nub_request_header), &h, sizeof h);
  int rc = send_frame(n, NUB_FN_REPUBLISH, len, &r, sizeof r, &got, err);
  if (rc) return rc;
  if (got != sizeof r || r.stored != count || r.inserted != count)
    return host_fail(err, NUB_ERR_PROTOCOL,
                     "re-publishing caps %zu..%zu: the guest answered %zu bytes, %u stored, %u "
                     "new, for %u records", first, first + count - 1, got, got == sizeof r ? r.stored : 0,
                     got == sizeof r ? r.inserted : 0, count);
  return NUB_OK;
}

/* Every published cap into a fresh guest, in publication order, as
** REPUBLISH frames filled up to the request buffer: the guest stores the
** hashes the host computed at first publication instead of hashing again.
** The directory count is checked at the end. */
static int republish(nub *n, nub_error *err) {
  host_backend *b = n->b;
  const size_t start = sizeof(nub_request_header) + sizeof(nub_republish_header);
  const size_t room = b->in_cap - sizeof(nub_request_header);
  size_t first = 0, at = start;
  uint32_t count = 0;
  int rc;
  for (size_t i = 0; i < n->ncaps; i++) {
    const published *c = &n->caps[i];
    nub_republish_record rec;
    size_t need = sizeof rec + c->len;
    if (need > room - sizeof(nub_republish_header)) {   /* only alone, the old way */
      if (count && (rc = send_republish(n, first, count, at - sizeof(nub_request_header), err)))
        return rc;
      if ((rc = republish_one(n, i, err))) return rc;
      first = i + 1, at = start, count = 0;
      continue;
    }
    if (need > b->in_cap - at || count == UINT32_MAX) {
      if ((rc = send_republish(n, first, count, at - sizeof(nub_request_header), err))) return rc;
      first = i, at = start, count = 0;
    }
    memcpy(rec.hash, c->hash, NUB_HASH_SIZE);
    rec.len = c->len;
    memcpy(b->in + at, &rec, sizeof rec);
    if (c->wire) {
      fill_request(b->in + at + sizeof rec, c->wire, c->len);
    } else if (record_read(n, c, b->in + at + sizeof rec)) {
      return host_fail(err, NUB_ERR_SYSTEM, "re-publishing cap %zu: its record file: %s", i,
                       strerror(errno));
    }
    at += need;
    count++;
  }
  if (count && (rc = send_republish(n, first, count, at - sizeof(nub_request_header), err)))
    return rc;
  nub_cap_dir d;
  nub_cap_error ce;
  uint64_t in_dir, capacity;
  if (nub_cap_dir_open(&d, b->heap_view, b->heap_size, n->dir_off, &ce) ||
      nub_cap_dir_stats(&d, &in_dir, &capacity, &ce))
    return host_fail(err, NUB_ERR_PROTOCOL, "after re-publishing: %s", ce.msg);
  if (in_dir != n->ncaps)
    return host_fail(err, NUB_ERR_PROTOCOL, "after re-publishing %zu caps the directory holds %llu",
                     n->ncaps, (unsigned long long)in_dir);
  return NUB_OK;
}

/* BootInfo, asked once at open, places the directory for nub_lookup.  It
** comes from the guest, so it must describe our own heap view. */
static int locate_directory(nub *n, nub_error *err) {
  const host_backend *b = n->b;
  struct nub_boot_info bi;
  uint64_t base = (uint64_t)(uintptr_t)b->heap_view;
  int rc = rpc_once(n, NUB_FN_GET_BOOT_INFO, NULL, 0, &bi, sizeof bi, err);
  if (rc) return rc;
  if (bi.magic != NUB_BOOT_MAGIC || bi.directory_type_id != CAP_DIR_TYPE_ID ||
      bi.guest_va_base != base || bi.directory_va < base || bi.directory_va - base >= b->heap_size)
    return host_fail(err, NUB_ERR_PROTOCOL,
                     "boot info (magic 0x%llx, layout 0x%llx, base 0x%llx, directory 0x%llx) does "
                     "not describe the guest heap at 0x%llx", (unsigned long long)bi.magic,
                     (unsigned long long)bi.directory_type_id, (unsigned long long)bi.guest_va_base,
                     (unsigned long long)bi.directory_va, (unsigned long long)base);
  n->dir_off = bi.directory_va - base;
  return NUB_OK;
}

/* ---- API ---- */

/* The CPUs this process may run on, at most NUB_MAX_LANES. */
static uint32_t default_lanes(void) {
  cpu_set_t set;
  int count = sched_getaffinity(0, sizeof set, &set) ? 1 : CPU_COUNT(&set);
  return count < 1 ? 1 : count > (int)NUB_MAX_LANES ? NUB_MAX_LANES : (uint32_t)count;
}

int nub_open(const nub_options *opt, nub **out, nub_error *err) {
  nub_options o;
  nub *n;
  int rc;
  *out = NULL;
  if (opt) o = *opt; else nub_options_init(&o);
  if (!o.heap_size) o.heap_size = NUB_DEFAULT_HEAP_SIZE;
  if (!o.io_size) o.io_size = NUB_DEFAULT_IO_SIZE;
  if (o.io_size < 4096)
    return host_fail(err, NUB_ERR_ARG, "io_size %zu is below the 4096-byte minimum", o.io_size);
  if (!o.memory_budget) o.memory_budget = NUB_DEFAULT_MEMORY_BUDGET;
  if (o.memory_budget < NUB_MIN_MEMORY_BUDGET)
    return host_fail(err, NUB_ERR_ARG, "memory_budget %llu is below the %llu-byte minimum",
                     (unsigned long long)o.memory_budget,
                     (unsigned long long)NUB_MIN_MEMORY_BUDGET);
  const host_backend_ops *ops = o.backend == NUB_BACKEND_INPROC ? &host_inproc_ops
                              : o.backend == NUB_BACKEND_PROC ? &host_proc_ops : NULL;
  if (!ops) return host_fail(err, NUB_ERR_ARG, "backend %d is not available in this build", (int)o.backend);
  if (o.lanes > NUB_MAX_LANES)
    return host_fail(err, NUB_ERR_ARG, "lanes %u is above the maximum %u", o.lanes,
                     NUB_MAX_LANES);
  if (!o.lanes) o.lanes = default_lanes();
  if (!(n = calloc(1, sizeof *n))) return host_fail(err, NUB_ERR_NOMEM, "out of memory");
  if (pthread_rwlock_init(&n->lock, NULL)) {
    free(n);
    return host_fail(err, NUB_ERR_SYSTEM, "cannot create the record's lock");
  }
  pthread_mutex_init(&n->call_lock, NULL);
  pthread_mutex_init(&n->lane_mx, NULL);
  pthread_cond_init(&n->lane_cv, NULL);
  host_helper_init(&n->helper);
  n->rec_fd = -1;
  n->lane_limit = o.lanes;
  if ((rc = ops->open(&o, &n->b, err))) { n->b = NULL; nub_close(n); return rc; }
  if (n->b->lane_count < n->lane_limit) n->lane_limit = n->b->lane_count;
  if ((rc = locate_directory(n, err))) { nub_close(n); return rc; }
  *out = n;
  return NUB_OK;
}

void nub_close(nub *n) {
  if (!n) return;
  if (n->b) n->b->ops->close(n->b);
  host_helper_stop(&n->helper);
  if (n->spare) munmap(n->spare, n->spare_len);
  pthread_cond_destroy(&n->lane_cv);
  pthread_mutex_destroy(&n->lane_mx);
  pthread_mutex_destroy(&n->call_lock);
  for (size_t i = 0; i < n->ncaps; i++) copy_free(n->caps[i].wire, n->caps[i].len);
  if (n->rec_fd >= 0) close(n->rec_fd);
  free(n->caps);
  free(n->index);
  pthread_rwlock_destroy(&n->lock);
  free(n);
}

const char *nub_engine_name(const nub *n) { return n->b->engine; }

const struct nub_pvm_engine *nub_engine_by_name(const char *name) {
  return nk_engine_by_name(name);
}
const char *nub_backend_name(const nub *n) { return n->b->ops->name; }

int nub_smoke(nub *n, uint64_t *value, nub_error *err) {
  return rpc(n, NUB_FN_SMOKE, NULL, 0, value, sizeof *value, err);
}

int nub_heap_stats(nub *n, struct nub_heap_stats *out, nub_error *err) {
  return rpc(n, NUB_FN_HEAP_STATS, NULL, 0, out, sizeof *out, err);
}

int nub_kernel_stats(nub *n, struct nub_kernel_stats *out, nub_error *err) {
  return rpc(n, NUB_FN_KERNEL_STATS, NULL, 0, out, sizeof *out, err);
}

int nub_boot_info(nub *n, struct nub_boot_info *out, nub_error *err) {
  int rc = rpc(n, NUB_FN_GET_BOOT_INFO, NULL, 0, out, sizeof *out, err);
  if (!rc && out->magic != NUB_BOOT_MAGIC)
    return host_fail(err, NUB_ERR_PROTOCOL, "boot info magic 0x%016llx is not JAR_BOOT",
                     (unsigned long long)out->magic);
  return rc;
}

int nub_evict_jit(nub *n, nub_error *err) {
  return rpc(n, NUB_FN_EVICT_JIT_ALL, NULL, 0, NULL, 0, err);
}

/* The host's record of a cap: its own copy of the caller's bytes and its
** own hash of that copy.  REPUBLISH hands the recorded hash to the next
** guest unchecked, so it must be the host's hash of exactly the bytes it
** keeps (never of the request buffer, which the guest can write). */
typedef struct record_job {
  const uint8_t *src;
  size_t len;
  bool done;
  uint8_t *copy;             /* copy_alloc'd; NULL if out of memory */
  nub_hash hash;
  nub_cap_error err;
  int rc;
} record_job;

static void run_record_job(void *arg) {
  record_job *j = arg;
  j->done = true;
  if (!(j->copy = copy_alloc(j->len, true))) return;
  memcpy(j->copy, j->src, j->len);
  j->rc = nub_cap_hash_wire(j->copy, j->copy + j->len, j->hash, &j->err);
}

/* Caps the guest hashes (PUT_CAP): the record is copied and hashed while
** the guest copies, decodes and hashes its own copy, on the calling thread
** between the doorbell and the wait (proc; inproc runs it after the
** call).  For small caps, and for a cap the host's decoder refuses (the
** guest's reason is the one the caller gets). */
static int put_by_guest(nub *n, const uint8_t *wire, size_t len, nub_hash out, nub_error *err) {
  record_job job = {.src = wire, .len = len};
  int rc;
  pthread_mutex_lock(&n->call_lock);
  n->b->overlap = run_record_job;
  n->b->overlap_arg = &job;
  if (!(rc = ready(n, err))) rc = put_once(n, wire, len, out, err);
  n->b->overlap = NULL;          /* never during a recovery's REPUBLISH */
  rc = recover(n, rc, err);
  if (rc) goto fail;
  if (!job.done) run_record_job(&job);
  if (!job.copy) {
    rc = host_fail(err, NUB_ERR_NOMEM, "put_cap: out of memory copying the %zu-byte cap", len);
    goto fail;
  }
  if (job.rc) {
    rc = host_fail(err, NUB_ERR_PROTOCOL, "put_cap: the guest accepted a cap the host rejects: %s",
                   job.err.msg);
    goto fail;
  }
  if (memcmp(out, job.hash, NUB_HASH_SIZE)) {
    rc = host_fail(err, NUB_ERR_PROTOCOL,
                   "put_cap: the guest's hash of the %zu-byte cap differs from the host's", len);
    goto fail;
  }
  if ((rc = record_put(n, job.hash, job.copy, 0, len, out, err))) goto fail;
  pthread_mutex_unlock(&n->call_lock);
  return NUB_OK;
fail:
  pthread_mutex_unlock(&n->call_lock);
  copy_free(job.copy, len);
  return rc;
}

/* From HASHED_PUT_BYTES on a cap goes with the host's hash as a one-record
** REPUBLISH frame (docs/abi.md): the host hashes its own copy anyway (to
** keep the record), so the guest need not hash it again; it decodes and
** stores it.  Distinct Data caps over proc, hashed on one side against
** both (load ~7, 2 vCPUs, 2000-5000 puts): 13-byte wire median 8.8 against
** 9.4 us (equal), 4 KiB 22.8-29.0 against 33.5-34.7 us, 64 KiB 185 against
** 267 us; so every cap of a page or more, whatever its kind (smaller
** ones keep PUT_CAP, as does one the host cannot decode or hash: the
** caller gets the guest's own words for it). */
#define HASHED_PUT_BYTES 4096u

/* From HELPED_PUT_BYTES on the handle's helper thread (helper.c) does
** half of the host's work: populating and filling half of the record,
** copying half of it into the request buffer, hashing half of the pages.
** Below it the hand-offs cost more than they save (64 KiB caps over proc,
** load ~7: median 240 us with the helper, 197 us without). */
#define HELPED_PUT_BYTES (256u << 10)

/* Up to SPARE_RECORD_BYTES the helper populates a spare record of the
** size of a put while the guest stores that put, so that the next put of
** up to that size copies into populated pages: populating 1 MiB is ~0.5 ms
** of CPU, a third of the host's work on the cap, and the helper is idle
** while the guest works.  The handle holds at most one (freed by
** nub_close), never more than this. */
#define SPARE_RECORD_BYTES (16u << 20)
_Static_assert(HELPED_PUT_BYTES >= POPULATED_COPY_BYTES, "records of helped puts are mappings");

static void make_spare(void *arg) {
  nub *n = arg;
  if (n->spare) return;
  void *p = mmap(NULL, n->spare_want, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return;
  n->spare = p;
  n->spare_len = n->spare_want;
}

/* The spare as the record of a len-byte cap (its tail beyond the pages
** of len unmapped, so copy_free frees it whole), or NULL if it is too
** small (then it is freed) or there is none.  The caller holds the
** helper, and has waited for it. */
static uint8_t *take_spare(nub *n, size_t len) {
  uint8_t *p = n->spare;
  size_t pages = (len + 4095) & ~(size_t)4095;
  if (!p) return NULL;
  n->spare = NULL;
  if (n->spare_len < pages) {
    munmap(p, n->spare_len);
    return NULL;
  }
  if (n->spare_len > pages) munmap(p + pages, n->spare_len - pages);
  return p;
}

/* The halves of a copy: the helper's from `half` on (posted), the
** calling thread's before it; the whole on this thread without a helper. */
static void copy_halves(host_helper *hh, bool helped, uint8_t *dst, const uint8_t *src,
                        size_t len, size_t half, bool populate) {
  span_job hi = {dst + half, src + half, len - half, populate};
  span_job lo = {dst, src, helped ? half : len, populate};
  if (helped) host_helper_post(hh, run_span, &hi);
  run_span(&lo);
  if (helped) host_helper_wait(hh);
}

/* The answer to a one-cap store (a one-record REPUBLISH, or PAGES_COMMIT
** of `pages` pages): the guest's error in the put's words, or exactly one
** cap stored, new or found. */
static int stored_one(int rc, const nub_error *e, const nub_republish_reply *r, size_t got,
                      size_t len, uint32_t pages, nub_error *err) {
  char what[80];
  if (rc == NUB_ERR_NOMEM)
    return host_fail(err, rc, "put_cap: the guest has no memory for the %zu-byte cap: %s", len,
                     e->msg);
  if (rc == NUB_ERR_GUEST)
    return host_fail(err, rc, "put_cap: the guest kernel failed on the %zu-byte cap: %s", len,
                     e->msg);
  if (rc) return host_fail(err, rc, "%s", e->msg);
  if (got == sizeof *r && r->stored == 1 && r->inserted <= 1) return NUB_OK;
  if (pages)
    snprintf(what, sizeof what, "the %u committed pages of one %zu-byte cap", pages, len);
  else
    snprintf(what, sizeof what, "one %zu-byte record", len);
  return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: the guest answered %zu bytes, %u stored, "
                   "%u new, for %s", got, got == sizeof *r ? r->stored : 0,
                   got == sizeof *r ? r->inserted : 0, what);
}

/* The one-record frame whose wire is already in place: the guest must
** say it stored it (new, or already there: inserted 1 or 0). */
static int send_hashed(nub *n, const nub_hash h, size_t len, nub_error *err) {
  nub_republish_header hd = {1, 0};
  nub_republish_record rec;
  nub_republish_reply r;
  nub_error e;
  size_t got;
  uint8_t *frame = n->b->in + sizeof(nub_request_header);
  memcpy(rec.hash, h, NUB_HASH_SIZE);
  rec.len = len;
  memcpy(frame, &hd, sizeof hd);
  memcpy(frame + sizeof hd, &rec, sizeof rec);
  int rc = send_frame(n, NUB_FN_REPUBLISH, sizeof hd + sizeof rec + len, &r, sizeof r, &got, &e);
  return stored_one(rc, &e, &r, got, len, 0, err);
}

/* A cap sent with the host's hash.  The record is the host's copy of the
** caller's bytes; the guest gets a copy of the record (never of the
** caller's buffer, which may change) and the hash of exactly those bytes.
** With the helper: both copies and the hash in halves on two threads, the
** copy into the request buffer beside the hash.  *refused (nothing sent):
** the host's decoder or hash refuses the cap. */
static int put_hashed(nub *n, const uint8_t *wire, size_t len, nub_hash out, bool *refused,
                      nub_error *err) {
  host_helper *hh = &n->helper;
  bool helped = len >= HELPED_PUT_BYTES && host_helper_claim(hh);
  size_t half = (len / 2) & ~(size_t)4095;           /* page aligned, for the populate */
  nub_cap_helper ch = host_helper_for_hash(hh);
  nub_cap_view v;
  nub_cap_error ce;
  nub_hash h;
  int rc;
  uint8_t *copy = NULL;
  if (helped) {
    host_helper_wait(hh);                            /* the spare it may be making */
    copy = take_spare(n, len);
  }
  bool populated = copy != NULL;
  if (!copy && !(copy = copy_alloc(len, !helped))) {
    if (helped) host_helper_release(hh);
    return host_fail(err, NUB_ERR_NOMEM, "put_cap: out of memory copying the %zu-byte cap", len);
  }
  copy_halves(hh, helped, copy, wire, len, half, helped && !populated);
  if (nub_cap_decode(copy, copy + len, &v, &ce)) {
    if (helped) host_helper_release(hh);
    copy_free(copy, len);
    *refused = true;
    return NUB_OK;
  }
  pthread_mutex_lock(&n->call_lock);
  if (!(rc = ready(n, err))) {
    uint8_t *dst = n->b->in + sizeof(nub_request_header) + sizeof(nub_republish_header) +
                   sizeof(nub_republish_record);
    bool fresh = len >= POPULATED_REQUEST_BYTES;     /* each thread populates its half */
    span_job hi = {dst + half, copy + half, len - half, fresh};
    if (helped) host_helper_post(hh, run_span, &hi);
    run_span(&(span_job){dst, copy, helped ? half : len, fresh});
    int hrc = nub_cap_hash_with(&v, helped ? &ch : NULL, h, &ce);
    if (helped) host_helper_wait(hh);   /* its copy, when the hash gave it no half */
    if (helped && !hrc && len <= SPARE_RECORD_BYTES) {
      n->spare_want = (len + 4095) & ~(size_t)4095;  /* while the guest stores this one */
      host_helper_post(hh, make_spare, n);
    }
    if (helped) host_helper_release(hh);
    helped = false;
    if (hrc) {
      pthread_mutex_unlock(&n->call_lock);
      copy_free(copy, len);
      *refused = true;
      return NUB_OK;
    }
    rc = send_hashed(n, h, len, err);
  }
  if (helped) host_helper_release(hh);
  if (!(rc = recover(n, rc, err))) rc = record_put(n, h, copy, 0, len, out, err);
  pthread_mutex_unlock(&n->call_lock);
  if (rc) copy_free(copy, len);
  return rc;
}

/* From STREAMED_PUT_BYTES a Data cap with pages is streamed, when the
** guest's heap is a file the host can write (always over proc): the head
** and page indexes are copied and decoded on their own
** (nub_cap_decode_data_parts); the guest reserves a block for the page
** image (PAGES_RESERVE); each page is then copied once from the caller's
** bytes into a small buffer of the hasher's (nub_cap_hash_data_loaded,
** both threads) and from there into the record file and into the guest's
** heap file at the block (pwritev); PAGES_COMMIT hands over the hash, the
** head and the indexes.  So the guest and the record file get exactly the
** bytes hashed, neither side maps a fresh page, and the request buffer
** carries 4 bytes per page, not the wire.  Proc, `nub bench invoke --put`:
** 1 MiB caps 270 -> 618 MB/s, a 1 GiB cap 9.0 -> 2.5 s (docs/sandbox.md,
** "Large caps"). */
#define STREAMED_PUT_BYTES POPULATED_COPY_BYTES

typedef struct stream_put {
  const uint8_t *wire;       /* the caller's bytes */
  const uint8_t *indexes;    /* the host's copy of the page indexes */
  int fd;                    /* the record file */
  uint64_t off;              /* the record's offset in it */
  int heap_fd;               /* the guest's heap file, */
  uint64_t heap_at;          /*   page 0 at this offset in it (PAGES_RESERVE) */
  int failed;                /* errno of a failed write (atomic), or 0 */
  pthread_t caller;          /* writes the record file first, the helper the heap file */
} stream_put;

static int pwritev_all(int fd, struct iovec *iov, int count, uint64_t off) {
  while (count > 0) {
    ssize_t w = pwritev(fd, iov, count, (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    off += (uint64_t)w;
    for (; count > 0 && (size_t)w >= iov->iov_len; iov++, count--) w -= (ssize_t)iov->iov_len;
    if (count > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* The loader of put_streamed (on both threads, for disjoint pages). */
static void stream_pages(void *ud, uint32_t first, uint32_t count, uint8_t *buf) {
  stream_put *s = ud;
  struct iovec iov[2 * NUB_CAP_LOAD_PAGES];
  for (uint32_t j = 0; j < count; j++) {
    size_t at = CAP_DIR_DATA_HEAD + (size_t)(first + j) * (4 + 4096);
    const uint8_t *index = s->indexes + 4 * (size_t)(first + j);
    uint8_t *page = buf + (size_t)j * 4096;
    memcpy(page, s->wire + at + 4, 4096);
    iov[2 * j] = (struct iovec){(void *)index, 4};
    iov[2 * j + 1] = (struct iovec){page, 4096};
  }
  /* Each write holds its file's inode lock, and the two threads run in
  ** step: they write the files in opposite orders.  perf of 256 proc puts
  ** of 1 MiB: the spin on the lock (rwsem_spin_on_owner) fell from 13 %
  ** of the hash's samples to 6 % (no change in wall time beyond noise). */
  struct iovec pages = {buf, (size_t)count * 4096};
  uint64_t rec_at = s->off + CAP_DIR_DATA_HEAD + (uint64_t)first * (4 + 4096),
           heap_at = s->heap_at + (uint64_t)first * 4096;
  bool rec_first = pthread_equal(pthread_self(), s->caller);
  if ((rec_first && pwritev_all(s->fd, iov, (int)(2 * count), rec_at)) ||
      pwritev_all(s->heap_fd, &pages, 1, heap_at) ||
      (!rec_first && pwritev_all(s->fd, iov, (int)(2 * count), rec_at)))
    __atomic_store_n(&s->failed, errno ? errno : EIO, __ATOMIC_RELAXED);
}

/* PAGES_RESERVE: where in the guest's heap file the pages go.  The
** guest's answer is checked: the block must lie in the heap, page
** aligned, of the size asked for. */
static int reserve_pages(nub *n, size_t len, uint32_t pages, uint32_t runs, uint64_t *heap_at,
                         nub_error *err) {
  nub_pages_reserve q = {pages, runs};
  nub_pages_reserved r;
  nub_error e;
  size_t got;
  uint64_t want = (uint64_t)pages * 4096 + (uint64_t)runs * 8;
  memcpy(n->b->in + sizeof(nub_request_header), &q, sizeof q);
  int rc = send_frame(n, NUB_FN_PAGES_RESERVE, sizeof q, &r, sizeof r, &got, &e);
  if (rc == NUB_ERR_NOMEM)
    return host_fail(err, rc, "put_cap: the guest has no memory for the %zu-byte cap: %s", len,
                     e.msg);
  if (rc) return host_fail(err, rc, "%s", e.msg);
  if (got != sizeof r || r.heap_offset % 4096 || r.size != want ||
      r.heap_offset > n->b->heap_size || r.size > n->b->heap_size - r.heap_offset)
    return host_fail(err, NUB_ERR_PROTOCOL, "put_cap: the guest reserved %llu bytes at heap "
                     "offset 0x%llx (%zu-byte answer) for %u pages in %u runs",
                     got == sizeof r ? (unsigned long long)r.size : 0,
                     got == sizeof r ? (unsigned long long)r.heap_offset : 0, got, pages, runs);
  *heap_at = n->b->heap_fd_off + r.heap_offset;
  return NUB_OK;
}

/* PAGES_COMMIT of the reserved pages: the guest must say it stored them. */
static int commit_pages(nub *n, const nub_hash h, const uint8_t *head, size_t len,
                        const uint8_t *indexes, uint32_t pages, nub_error *err) {
  nub_pages_commit c;
  nub_republish_reply r;
  nub_error e;
  size_t got;
  uint8_t *frame = n->b->in + sizeof(nub_request_header);
  memset(&c, 0, sizeof c);
  memcpy(c.hash, h, NUB_HASH_SIZE);
  c.len = len;
  memcpy(c.head, head, sizeof c.head);
  memcpy(frame, &c, sizeof c);
  memcpy(frame + sizeof c, indexes, 4 * (size_t)pages);
  int rc = send_frame(n, NUB_FN_PAGES_COMMIT, sizeof c + 4 * (size_t)pages, &r, sizeof r, &got, &e);
  return stored_one(rc, &e, &r, got, len, pages, err);
}

/* The shape of a Data cap with pages (read once from the caller's bytes,
** to pick the path; the copies are what is checked). */
static bool data_with_pages(const uint8_t *wire, size_t len) {
  return len > CAP_DIR_DATA_HEAD && wire[0] == 2 && (len - CAP_DIR_DATA_HEAD) % (4 + 4096) == 0;
}

static void release_record(nub *n, uint64_t off, size_t len) {
  pthread_rwlock_wrlock(&n->lock);
  rec_release(n, off, len);
  pthread_rwlock_unlock(&n->lock);
}

/* *refused (nothing sent, nothing kept): the parts' decode or the hash
** refuses the cap; the caller then asks the guest, for its words. */
static int put_streamed(nub *n, const uint8_t *wire, size_t len, nub_hash out, bool *refused,
                        nub_error *err) {
  const uint32_t pages = (uint32_t)((len - CAP_DIR_DATA_HEAD) / (4 + 4096));
  host_helper *hh = &n->helper;
  uint8_t head[CAP_DIR_DATA_HEAD], *indexes = malloc(4 * (size_t)pages);
  nub_cap_view v;
  nub_cap_error ce;
  nub_hash h;
  uint64_t off;
  int rc;
  if (!indexes) return host_fail(err, NUB_ERR_NOMEM, "put_cap: out of memory for %u page indexes", pages);
  memcpy(head, wire, sizeof head);
  for (uint32_t i = 0; i < pages; i++)
    memcpy(indexes + 4 * (size_t)i, wire + CAP_DIR_DATA_HEAD + (size_t)i * (4 + 4096), 4);
  if (nub_cap_decode_data_parts(head, len, indexes, &v, &ce)) {
    free(indexes);
    *refused = true;
    return NUB_OK;
  }
  pthread_rwlock_wrlock(&n->lock);
  rc = rec_reserve(n, len, &off);
  pthread_rwlock_unlock(&n->lock);
  struct iovec hv = {head, sizeof head};
  if (rc || pwritev_all(n->rec_fd, &hv, 1, off)) {   /* no record file: the guest's path */
    if (!rc) release_record(n, off, len);
    free(indexes);
    *refused = true;
    return NUB_OK;
  }
  bool helped = host_helper_claim(hh), streamed = true;
  nub_cap_helper ch = host_helper_for_hash(hh);
  stream_put sp = {wire, indexes, n->rec_fd, off, -1, 0, 0, pthread_self()};
  pthread_mutex_lock(&n->call_lock);
  /* the heap file under call_lock: a replacement closes it and makes another */
  if (!(rc = ready(n, err)) && (sp.heap_fd = n->b->heap_fd) < 0)
    streamed = false;
  else if (!rc)
    rc = reserve_pages(n, len, pages, v.data.run_count, &sp.heap_at, err);
  if (!rc && streamed) {
    int hrc = nub_cap_hash_data_loaded(&v, helped ? &ch : NULL, stream_pages, &sp, h, &ce);
    if (helped) host_helper_release(hh);
    helped = false;
    if (hrc || sp.failed)            /* the guest's reservation goes with its next put */
      streamed = false;              /* the guest's words, or the guest's own path */
    else
      rc = commit_pages(n, h, head, len, indexes, pages, err);
  }
  if (helped) host_helper_release(hh);
  if (!streamed) {
    pthread_mutex_unlock(&n->call_lock);
    release_record(n, off, len);
    free(indexes);
    *refused = true;
    return NUB_OK;
  }
  if (!(rc = recover(n, rc, err)))
    rc = record_put(n, h, NULL, off, len, out, err);
  else
    release_record(n, off, len);
  pthread_mutex_unlock(&n->call_lock);
  free(indexes);
  return rc;
}

int nub_put_cap(nub *n, const uint8_t *wire, size_t len, nub_hash out, nub_error *err) {
  const size_t room = n->b->in_cap - sizeof(nub_request_header);
  const size_t frame = sizeof(nub_republish_header) + sizeof(nub_republish_record);
  if (!wire && len) return host_fail(err, NUB_ERR_ARG, "put_cap: no bytes");
  if (len > room)
    return host_fail(err, NUB_ERR_TOO_LARGE, "request of %zu bytes exceeds the %zu-byte buffer",
                     len, room);
  if (len >= HASHED_PUT_BYTES && len <= room - frame) {
    bool refused = false;
    int rc = len >= STREAMED_PUT_BYTES && data_with_pages(wire, len)
                 ? put_streamed(n, wire, len, out, &refused, err)
                 : put_hashed(n, wire, len, out, &refused, err);
    if (!refused) return rc;
  }
  return put_by_guest(n, wire, len, out, err);
}

/* ---- lanes ---- */

/* Start lane i (LANE_STARTING, ours): STARTING in its slot, LANE_START,
** and the slot must say EMPTY after.  Under call_lock, so after any
** replacement the lane is started in the guest that runs now; *gen
** gets that guest's generation (a replacement may follow as soon as
** call_lock is let go). */
static int start_lane(nub *n, uint32_t i, uint64_t *gen, nub_error *err) {
  uint32_t index = i;
  int rc;
  pthread_mutex_lock(&n->call_lock);
  if (!(rc = ready(n, err))) {
    nub_lane_slot *s = &n->b->lane_slots[i];
    nk_store(&s->status, NUB_LANE_STARTING);   /* owner stays: the lane's death notice */
    rc = recover(n, rpc_once(n, NUB_FN_LANE_START, &index, sizeof index, NULL, 0, err), err);
    uint32_t st = nk_load(&s->status);
    if (!rc && st != NUB_LANE_EMPTY)
      rc = host_fail(err, NUB_ERR_PROTOCOL, "lane %u: started, but its slot says %u, not EMPTY",
                     i, st);
  }
  *gen = __atomic_load_n(&n->gen, __ATOMIC_ACQUIRE);
  pthread_mutex_unlock(&n->call_lock);
  return rc;
}

/* An idle lane made BUSY, without a lock: a compare-and-swap, then the
** draining flag (drain_lanes); leased while draining, it is given back
** UNSTARTED: the drain may have passed it by as BUSY, and its guest is
** being replaced.  False: none. */
static bool lease_idle(nub *n, uint32_t *lane) {
  for (uint32_t i = 0; i < n->lane_limit; i++) {
    uint8_t idle = LANE_IDLE;
    if (lane_state(n, i) == LANE_IDLE &&
        __atomic_compare_exchange_n(&n->lane_state[i], &idle, LANE_BUSY, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
      if (!__atomic_load_n(&n->draining, __ATOMIC_SEQ_CST)) {
        *lane = i;
        return true;
      }
      TEST_POINT(n, HOST_TEST_LEASED_DRAINING, i);
      give_back(n, i, false);
      return false;
    }
  }
  return false;
}

/* A lane for one invocation: an idle one, else one started now (up to
** lane_limit), else wait (condition variable: no spinning) for one to
** come free.  Measured (callgrind, inproc add, per warm invoke): the two
** lock pairs of lane_mx a lease and its give-back took were ~110
** instructions and 4 locked instructions; lease_idle and give_back take
** ~25 and 2 (the compare-and-swap, the store). */
static int lease_lane(nub *n, uint32_t *lane, nub_error *err) {
  if (lease_idle(n, lane)) return NUB_OK;
  pthread_mutex_lock(&n->lane_mx);     /* draining and starts change only under it */
  for (;;) {
    uint32_t unstarted = NUB_MAX_LANES;
    for (uint32_t i = 0; !n->draining && i < n->lane_limit; i++) {
      uint8_t st = LANE_IDLE;
      if (__atomic_compare_exchange_n(&n->lane_state[i], &st, LANE_BUSY, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
        pthread_mutex_unlock(&n->lane_mx);
        *lane = i;
        return NUB_OK;
      }
      if (st == LANE_UNSTARTED && unstarted == NUB_MAX_LANES) unstarted = i;
    }
    if (unstarted < NUB_MAX_LANES) {
      set_lane_state(n, unstarted, LANE_STARTING);
      pthread_mutex_unlock(&n->lane_mx);
      uint64_t gen;
      int rc = start_lane(n, unstarted, &gen, err);
      TEST_POINT(n, HOST_TEST_LANE_STARTED, unstarted);
      pthread_mutex_lock(&n->lane_mx);
      if (rc) {
        set_lane_state(n, unstarted, LANE_UNSTARTED);
        pthread_cond_broadcast(&n->lane_cv);
        pthread_mutex_unlock(&n->lane_mx);
        return rc;
      }
      /* A replacement since LANE_START (begun: draining; done: gen moved)
      ** took the lane's thread with the guest it ran in: start it again. */
      bool gone = n->draining || __atomic_load_n(&n->gen, __ATOMIC_ACQUIRE) != gen;
      set_lane_state(n, unstarted, gone ? LANE_UNSTARTED : LANE_IDLE);   /* taken next turn */
      TEST_POINT(n, HOST_TEST_LANE_MARKED, unstarted);
      continue;
    }
    if (n->draining) pthread_cond_wait(&n->lane_cv, &n->lane_mx);   /* until drained() */
    else wait_lane_cv(n, LANE_IDLE, LANE_UNSTARTED);
  }
}

/* The lane's error text as the handle's last.  The usual case, no text
** after no text, changes nothing and takes no lock. */
static void note_lane_error(nub *n, const char *text) {
  if (!text[0] && !__atomic_load_n(&n->last_error_set, __ATOMIC_ACQUIRE) &&
      __atomic_load_n(&n->last_error_lane, __ATOMIC_ACQUIRE))
    return;
  pthread_mutex_lock(&n->lane_mx);
  memcpy(n->last_error, text, strlen(text) + 1);
  __atomic_store_n(&n->last_error_set, text[0] != 0, __ATOMIC_RELEASE);
  __atomic_store_n(&n->last_error_lane, true, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&n->lane_mx);
}


/* Post, wait, take.  A guest that died (or was killed for a timeout)
** fails every call in flight on any lane; the first of them to get here
** replaces it, and the others find it replaced. */
static int invoke_on_lane(nub *n, const nub_invoke_packet *p, nub_invocation_result *out,
                          nub_error *err) {
  char text[NUB_KERNEL_ERROR_TEXT_MAX + 1];
  uint32_t i;
  int rc;
  if (recovering(n)) {
    pthread_mutex_lock(&n->call_lock);
    rc = ready(n, err);
    pthread_mutex_unlock(&n->call_lock);
    if (rc) return rc;
  }
  TEST_POINT(n, HOST_TEST_LEASE, 0);
  if ((rc = lease_lane(n, &i, err))) return rc;
  /* stable while we are in flight: a replacement drains first */
  uint64_t gen = __atomic_load_n(&n->gen, __ATOMIC_ACQUIRE);
  nub_lane_slot *s = &n->b->lane_slots[i];
  bool taken;
  if (n->b->ops->lane_run) {
    rc = n->b->ops->lane_run(n->b, i, p, out, text, err);
    taken = true;
  } else {
    host_lane_post(s, p, __atomic_add_fetch(&n->next_job, 1, __ATOMIC_RELAXED));
    rc = host_lane_wait(n->b, i, s, err);
    if ((taken = !rc)) rc = host_lane_take(s, i, out, text, err);
  }
  if (taken) note_lane_error(n, text);
  give_back(n, i, taken);
  if (taken) return rc;
  pthread_mutex_lock(&n->call_lock);
  if (__atomic_load_n(&n->gen, __ATOMIC_ACQUIRE) == gen) {
    rc = recover(n, rc, err);
  } else if (err) {
    size_t used = strnlen(err->msg, sizeof err->msg);
    snprintf(err->msg + used, sizeof err->msg - used, "; guest restarted by another call");
  }
  pthread_mutex_unlock(&n->call_lock);
  return rc;
}

int nub_invoke(nub *n, const nub_hash instance, uint32_t endpoint, const uint64_t args[4],
               uint64_t initial_gas, nub_invocation_result *out, nub_error *err) {
  nub_invoke_packet p;
  if (endpoint > NUB_ENDPOINT_MAX)   /* the key is a byte: 256 would run endpoint 0 */
    return host_fail(err, NUB_ERR_ARG, "invoke: endpoint %u is above the largest key %u",
                     endpoint, NUB_ENDPOINT_MAX);
  memset(&p, 0, sizeof p);
  memcpy(p.instance_hash, instance, NUB_HASH_SIZE);
  p.endpoint_idx = endpoint;
  if (args) memcpy(p.args, args, sizeof p.args);
  p.initial_gas = initial_gas;
  if (!n->lane_limit) return rpc(n, NUB_FN_INVOKE_CACHED, &p, sizeof p, out, sizeof *out, err);
  return invoke_on_lane(n, &p, out, err);
}

typedef struct batch {
  nub *n;
  const nub_invoke_req *reqs;
  nub_invocation_result *out;
  int *rcs;
  size_t count, next;
  pthread_mutex_t mx;
  size_t failed_at;              /* lowest failed index, count if none */
  nub_error first;
} batch;

static void *batch_worker(void *arg) {
  batch *B = arg;
  size_t i;
  while ((i = __atomic_fetch_add(&B->next, 1, __ATOMIC_RELAXED)) < B->count) {
    const nub_invoke_req *q = &B->reqs[i];
    nub_error e;
    int rc = nub_invoke(B->n, q->instance, q->endpoint, q->args, q->initial_gas, &B->out[i], &e);
    if (B->rcs) B->rcs[i] = rc;
    if (rc) {
      pthread_mutex_lock(&B->mx);
      if (i < B->failed_at) {
        B->failed_at = i;
        B->first = e;
      }
      pthread_mutex_unlock(&B->mx);
    }
  }
  return NULL;
}

int nub_invoke_batch(nub *n, const nub_invoke_req *reqs, size_t count,
                     nub_invocation_result *out, int *rcs, nub_error *err) {
  if (count && (!reqs || !out)) return host_fail(err, NUB_ERR_ARG, "invoke_batch: no requests");
  batch B = {n, reqs, out, rcs, count, 0, PTHREAD_MUTEX_INITIALIZER, count, {0, ""}};
  pthread_t helpers[NUB_MAX_LANES];
  size_t want = count < n->lane_limit ? count : n->lane_limit, made = 0;
  for (; made + 1 < want; made++)       /* the calling thread is one of them */
    if (pthread_create(&helpers[made], NULL, batch_worker, &B)) break;
  batch_worker(&B);
  for (size_t i = 0; i < made; i++) pthread_join(helpers[i], NULL);
  pthread_mutex_destroy(&B.mx);
  if (B.failed_at == count) return NUB_OK;
  return host_fail(err, B.first.code, "invoke_batch: request %zu: %s", B.failed_at,
                   B.first.msg);
}

uint32_t nub_lanes(const nub *n) { return n->lane_limit; }

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The log section of a reply (abi.h: count, dropped, records), checked
** whole before the first message is handed out. */
static int check_log_section(const uint8_t *p, const uint8_t *end, uint32_t *count,
                             uint32_t *dropped, nub_error *err) {
  const uint8_t *start = p;
  if (end - p < NUB_LOG_SECTION_HEADER)
    return host_fail(err, NUB_ERR_PROTOCOL, "invoke: log section of %zu bytes, below its %u-byte header",
                     (size_t)(end - p), NUB_LOG_SECTION_HEADER);
  *count = get_u32(p);
  *dropped = get_u32(p + 4);
  p += NUB_LOG_SECTION_HEADER;
  for (uint32_t i = 0; i < *count; i++) {
    if (end - p < NUB_LOG_RECORD_HEADER)
      return host_fail(err, NUB_ERR_PROTOCOL, "invoke: log record %u of %u truncated at offset %zu",
                       i, *count, (size_t)(p - start));
    uint32_t len = get_u32(p + 4);
    if (len > NUB_LOG_LINE_MAX || (size_t)(end - p - NUB_LOG_RECORD_HEADER) < len)
      return host_fail(err, NUB_ERR_PROTOCOL, "invoke: log record %u at offset %zu has length %u "
                       "(limit %u, %zu bytes left)", i, (size_t)(p - start), len, NUB_LOG_LINE_MAX,
                       (size_t)(end - p - NUB_LOG_RECORD_HEADER));
    p += NUB_LOG_RECORD_HEADER + len;
  }
  if (p != end)
    return host_fail(err, NUB_ERR_PROTOCOL, "invoke: %zu bytes after the %u log records",
                     (size_t)(end - p), *count);
  return NUB_OK;
}

int nub_invoke_logged(nub *n, const nub_hash instance, uint32_t endpoint, const uint64_t args[4],
                      uint64_t initial_gas, nub_invocation_result *out, nub_log_fn *log,
                      void *ud, uint32_t *dropped, nub_error *err) {
  const size_t cap = sizeof *out + NUB_LOG_SECTION_HEADER + NUB_INVOKE_LOG_MAX;
  nub_invoke_packet p;
  uint8_t *reply;
  size_t got;
  uint32_t count = 0, lost = 0;
  int rc;
  if (dropped) *dropped = 0;
  if (!(reply = malloc(cap))) return host_fail(err, NUB_ERR_NOMEM, "invoke: out of memory");
  memset(&p, 0, sizeof p);
  memcpy(p.instance_hash, instance, NUB_HASH_SIZE);
  p.endpoint_idx = endpoint;
  p.flags = NUB_INVOKE_FLAG_LOG;
  if (args) memcpy(p.args, args, sizeof p.args);
  p.initial_gas = initial_gas;
  pthread_mutex_lock(&n->call_lock);
  if (!(rc = ready(n, err)))
    rc = recover(n, rpc_raw(n, NUB_FN_INVOKE_CACHED, &p, sizeof p, reply, cap, &got, err), err);
  pthread_mutex_unlock(&n->call_lock);
  __atomic_store_n(&n->last_error_lane, false, __ATOMIC_RELAXED);
  if (rc) goto out;
  if (got < sizeof *out) {
    rc = host_fail(err, NUB_ERR_PROTOCOL, "invoke: reply of %zu bytes, below %zu", got, sizeof *out);
    goto out;
  }
  memcpy(out, reply, sizeof *out);
  if (got == sizeof *out && out->exit_reason == NUB_EXIT_KERNEL_ERROR) goto out;
  if ((rc = check_log_section(reply + sizeof *out, reply + got, &count, &lost, err))) goto out;
  if (dropped) *dropped = lost;
  const uint8_t *q = reply + sizeof *out + NUB_LOG_SECTION_HEADER;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t len = get_u32(q + 4);
    if (log) log(ud, get_u32(q), q + NUB_LOG_RECORD_HEADER, len);
    q += NUB_LOG_RECORD_HEADER + len;
  }
out:
  free(reply);
  return rc;
}

int nub_kernel_last_error(nub *n, char *text, size_t cap, nub_error *err) {
  char reply[NUB_KERNEL_ERROR_TEXT_MAX];
  size_t got = 0;
  if (!text || !cap) return host_fail(err, NUB_ERR_ARG, "kernel_last_error: no room for the text");
  pthread_mutex_lock(&n->lane_mx);
  if (__atomic_load_n(&n->last_error_lane, __ATOMIC_ACQUIRE)) {   /* checked and made printable when taken */
    snprintf(text, cap, "%s", n->last_error);
    pthread_mutex_unlock(&n->lane_mx);
    return NUB_OK;
  }
  pthread_mutex_unlock(&n->lane_mx);
  int rc = nub_call_raw(n, NUB_FN_KERNEL_LAST_ERROR, NULL, 0, reply, sizeof reply, &got, err);
  if (rc) return rc;
  size_t len = got < cap - 1 ? got : cap - 1;
  for (size_t i = 0; i < len; i++)    /* the guest's bytes: printable ASCII only */
    text[i] = reply[i] >= 0x20 && reply[i] < 0x7F ? reply[i] : '?';
  text[len] = 0;
  return NUB_OK;
}

int nub_ping(nub *n, nub_error *err) {
  int rc;
  if (!n->b->ops->ping)
    return host_fail(err, NUB_ERR_ARG, "ping: the %s backend has no transport", n->b->ops->name);
  pthread_mutex_lock(&n->call_lock);
  if (!(rc = ready(n, err))) rc = recover(n, n->b->ops->ping(n->b, err), err);
  pthread_mutex_unlock(&n->call_lock);
  return rc;
}

/* The guest's directory, read through the heap view; every read bounded
** (CAP_DIR_READ_SLOTS, CAP_DIR_READ_MS) and the copy checked against hash. */
static int lookup_guest(const nub *n, const nub_hash hash, uint8_t *wire, size_t cap,
                        size_t *len, nub_error *err) {
  const host_backend *b = n->b;
  nub_cap_dir d;
  nub_cap_dir_entry e;
  nub_cap_error ce;
  int rc;
  if ((rc = nub_cap_dir_open(&d, b->heap_view, b->heap_size, n->dir_off, &ce)) ||
      (rc = nub_cap_dir_get_verified(&d, hash, wire, cap, len, &ce)) == CAP_OK)
    return rc ? host_fail(err, NUB_ERR_PROTOCOL, "lookup: %s", ce.msg) : NUB_OK;
  if (rc == CAP_ERR_MISSING) return host_fail(err, NUB_ERR_NOT_FOUND, "lookup: %s", ce.msg);
  if (rc == CAP_ERR_FULL && !nub_cap_dir_find(&d, hash, &e, NULL)) {
    *len = (size_t)e.len;
    return host_fail(err, NUB_ERR_TOO_LARGE, "lookup: %s", ce.msg);
  }
  return host_fail(err, NUB_ERR_PROTOCOL, "lookup: %s", ce.msg);
}

/* The host's own copy: NUB_ERR_NOT_FOUND if this handle never published it. */
static int lookup_record(nub *n, const nub_hash hash, uint8_t *wire, size_t cap, size_t *len,
                         nub_error *err) {
  int rc = NUB_ERR_NOT_FOUND;
  pthread_rwlock_rdlock(&n->lock);
  uint32_t at = is_recorded(n, hash) ? n->index[slot_of(n, hash)] : 0;
  if (at) {
    const published *c = &n->caps[at - 1];
    *len = c->len;
    if (c->len > cap) {
      rc = host_fail(err, NUB_ERR_TOO_LARGE, "lookup: entry of %zu bytes, buffer holds %zu",
                     c->len, cap);
    } else {
      rc = record_read(n, c, wire) ? host_fail(err, NUB_ERR_SYSTEM, "lookup: the record "
                                               "file: %s", strerror(errno)) : NUB_OK;
    }
  }
  pthread_rwlock_unlock(&n->lock);
  return rc;
}

/* A cap published through this handle comes from the host's own copy:
** trusted, so not hashed again, and whatever the guest does (stalls,
** garbles its directory, is being replaced) it is never reported missing.
** Any other hash is looked up in the guest's directory; a read that
** overlapped a replacement (the heap was remapped underneath) says so. */
int nub_lookup(nub *n, const nub_hash hash, uint8_t *wire, size_t cap, size_t *len,
               nub_error *err) {
  if (!hash || !len || (!wire && cap)) return host_fail(err, NUB_ERR_ARG, "lookup: missing argument");
  int rc = lookup_record(n, hash, wire, cap, len, err);
  if (rc != NUB_ERR_NOT_FOUND) return rc;
  uint64_t e0 = __atomic_load_n(&n->epoch, __ATOMIC_ACQUIRE);
  if (!(e0 & 1)) {
    rc = lookup_guest(n, hash, wire, cap, len, err);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (rc == NUB_OK || __atomic_load_n(&n->epoch, __ATOMIC_ACQUIRE) == e0) return rc;
  }
  char hex[2 * NUB_HASH_SIZE + 1];
  for (size_t i = 0; i < NUB_HASH_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", hash[i]);
  return host_fail(err, NUB_ERR_NOT_FOUND,
                   "lookup: no cap under %s was published through this handle (the guest is "
                   "being replaced)", hex);
}

int nub_boot_info_elf(nub *n, struct nub_boot_info *out, nub_error *err) {
  return host_elf_boot_info(n->b->exe_path, out, err);
}

/* ---- the sandbox report ---- */

int nub_sandbox_report(nub *n, struct nub_sandbox_report *out, nub_error *err) {
  if (!out) return host_fail(err, NUB_ERR_ARG, "sandbox_report: no output");
  *out = n->b->report;
  if (!out->isolated) {
    out->guest_uid = out->guest_gid = -1;         /* no guest process */
    snprintf(out->engine, sizeof out->engine, "%s", n->b->engine);
    snprintf(out->notes, sizeof out->notes,
             "%s: the kernel runs inside this process; no isolation", n->b->ops->name);
  }
  return NUB_OK;
}

const char *nub_sandbox_level(const struct nub_sandbox_report *r) {
  if (!r->isolated) return "inproc";
  if (!(r->lockdown & NUB_LOCK_SECCOMP)) return "proc";
  return r->namespaces ? "proc+ns+seccomp" : "proc+seccomp";
}

static const char *const ns_names[] = {"user", "pid", "net", "ipc", "mount", "uts", "cgroup",
                                       "time"};
static const char *const lock_names[] = {
  "fds-closed", "no-new-privs", "rlimits", "caps-dropped", "fs-detached", "seccomp",
  "not-dumpable", "pdeathsig", "robust-death", "capbset-cleared", "unprivileged-ids",
};

static void print_bits(FILE *f, const char *label, uint32_t bits, const char *const *names,
                       size_t count) {
  const char *sep = "";
  fprintf(f, "%-11s", label);
  if (!bits) fprintf(f, "(none)");
  for (size_t i = 0; i < count; i++)
    if (bits & (1u << i)) {
      fprintf(f, "%s%s", sep, names[i]);
      sep = " ";
    }
  fprintf(f, "\n");
}

void nub_sandbox_print(const struct nub_sandbox_report *r, FILE *f) {
  fprintf(f, "%-11s%s", "sandbox", nub_sandbox_level(r));
  if (r->isolated)
    fprintf(f, " (guest pid %d, started in %.2f ms, %u restarts)", (int)r->guest_pid,
            r->start_ms, r->restarts);
  fprintf(f, "\n");
  if (r->isolated) {
    print_bits(f, "namespaces", r->namespaces, ns_names, sizeof ns_names / sizeof ns_names[0]);
    fprintf(f, "%-11suid %lld gid %lld outside its namespaces\n", "ids", (long long)r->guest_uid,
            (long long)r->guest_gid);
    print_bits(f, "lockdown", r->lockdown, lock_names, sizeof lock_names / sizeof lock_names[0]);
    print_bits(f, "not had", r->lockdown_failed, lock_names, sizeof lock_names / sizeof lock_names[0]);
    fprintf(f, "%-11s%u system calls allowed (%u BPF instructions); any other kills the guest\n",
            "seccomp", r->seccomp_syscalls, r->seccomp_insns);
  }
  if (r->notes[0]) fprintf(f, "%-11s%s\n", "notes", r->notes);
}
