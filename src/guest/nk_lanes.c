/*
** Lanes: threads that each run invocations posted to their own slot
** (include/nub/abi.h, "lanes"; docs/kernel.md, "Lanes"), sharing the
** directory and the JIT cache with each other and with the RPC path.
**
**   host                         slot n                 lane n's thread
**   STARTING, LANE_START(n) --->  EMPTY  <--- the kernel, before it answers
**   packet, READY ----------->  READY  ---> RUNNING, run on lane n's state
**   (sleeps on owner)            DONE   <--- result, error text; wake owner
**   reads the result, EMPTY -->  EMPTY      (spins, then sleeps on status)
**
** Where the threads come from is the embedder's choice: nub-guest makes
** them all before its seccomp filter (nk_lanes_spawn) and LANE_START
** only lets one go; inproc has LANE_START make each when it is started.
*/
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nk_internal.h"
#include "../chan/nk_chan.h"
#ifdef NUB_HAVE_JIT
#include "nub/jit.h"
#endif

enum { RUN_WAIT = 0, RUN_SERVE = 1, RUN_END = 2 };

typedef struct nk_lane_thread {
  nk_kernel *k;
  nub_lane_slot *slot;
  nk_lane lane;
  uint32_t run;                  /* RUN_*, a private futex of a made, waiting thread */
  bool made, death_notice;
  char prep_error[NUB_KERNEL_ERROR_TEXT_MAX];   /* set up failed (nk_lanes_spawn) */
  pthread_t thread;
  uint32_t tid;
  struct robust_list_head robust;
  struct robust_list entry;
} nk_lane_thread;

struct nk_lanes {
  nub_lane_slot *slots;
  uint32_t count;                /* slots */
  uint32_t spawned;              /* threads made by nk_lanes_spawn */
  bool fixed;                    /* no thread is made after nk_lanes_spawn */
  bool direct;                   /* no threads: nk_lane_invoke on the caller's */
  uint32_t ready;                /* spawned threads set up (private futex) */
  pthread_mutex_t lock;          /* LANE_START against nk_lanes_fini */
  nk_lane_thread t[NUB_MAX_LANES];
};

static void futex_wait_private(uint32_t *w, uint32_t v) {
  syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake_private(uint32_t *w) {
  syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* Wait until the slot's status is no longer st: spin, then sleep with
** lane_sleeping announced (the host wakes the status futex only then). */
static void wait_change(nub_lane_slot *s, uint32_t st) {
  if (nk_spin_for(&s->status, st, false)) return;
  nk_store_sc(&s->lane_sleeping, 1);
  while (nk_load_sc(&s->status) == st) nk_futex_wait(&s->status, st, NULL);
  nk_store(&s->lane_sleeping, 0);
}

static void serve_one(nk_lane_thread *t) {
  nub_lane_slot *s = t->slot;
  nub_invoke_packet p;
  nub_invocation_result r;
  memcpy(&p, &s->packet, sizeof p);             /* the host's: read once */
  nk_invoke_on(t->k, &t->lane, &p, &r);
  size_t n = t->lane.last_error[0] ? strnlen(t->lane.last_error, sizeof s->error) : 0;
  memcpy(&s->result, &r, sizeof r);
  if (n) memcpy(s->error, t->lane.last_error, n);
  s->error_len = (uint32_t)n;
  nk_store(&s->status, NUB_LANE_DONE);
  uint32_t old = __atomic_exchange_n(&s->owner, t->tid, __ATOMIC_ACQ_REL);
  if (old & FUTEX_WAITERS) nk_futex_wake(&s->owner);
  /* The slot is the host's now; what is left is this lane's alone and
  ** done before it reads the slot again (serve), whatever the host posts
  ** meanwhile. */
  NK_TEST_POINT(t->k, NK_TEST_LANE_SETTLE);
  nk_invoke_settle(&t->lane);
  NK_TEST_POINT(t->k, NK_TEST_LANE_SETTLED);
}

static void serve(nk_lane_thread *t) {
  nub_lane_slot *s = t->slot;
  for (;;) {
    uint32_t st = nk_load(&s->status);
    if (st == NUB_LANE_READY) {
      if (__atomic_compare_exchange_n(&s->status, &st, NUB_LANE_RUNNING, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE))
        serve_one(t);
    } else if (st == NUB_LANE_STOP && !t->k->lanes->fixed) {
      /* nub-guest's threads never end: past the filter, a thread's exit
      ** (its stack given back with madvise) would kill the guest */
      nk_store(&s->status, NUB_LANE_EMPTY);
      return;
    } else {
      wait_change(s, st);            /* EMPTY, DONE, or anything a host wrote */
    }
  }
}

/* The thread's own set-up: the engine's signal stack, and with a death
** notice, a robust-list entry on the slot's owner word, so that the
** process's death sets FUTEX_OWNER_DIED there and wakes a waiting host. */
static void prepare(nk_lane_thread *t) {
  t->tid = (uint32_t)syscall(SYS_gettid);
#ifdef NUB_HAVE_JIT
  nub_pvm_error perr;
  if (t->k->cfg.engine == &nub_jit_engine && nub_jit_thread_prepare(&perr)) {
    snprintf(t->prep_error, sizeof t->prep_error, "%s", perr.msg);
    return;
  }
#endif
  if (t->death_notice) {
    t->entry.next = &t->robust.list;
    t->robust.list.next = &t->entry;
    t->robust.futex_offset = (long)((uintptr_t)&t->slot->owner - (uintptr_t)&t->entry);
    t->robust.list_op_pending = NULL;
    if (syscall(SYS_set_robust_list, &t->robust, sizeof t->robust)) {
      snprintf(t->prep_error, sizeof t->prep_error, "set_robust_list: %s", strerror(errno));
      return;
    }
  }
  nk_store(&t->slot->owner, t->tid);
}

static void *lane_main(void *arg) {
  nk_lane_thread *t = arg;
  struct nk_lanes *L = t->k->lanes;
  if (!t->made) {                          /* nk_lanes_spawn: set up, then wait */
    prepare(t);
#ifdef NUB_HAVE_JIT
    /* nub-guest's: nothing else on the thread uses GS, so a warm invoke
    ** on its memory writes no GS base (two wrgsbase a run, ~24 ns) */
    nub_jit_thread_keep_gs(true);
#endif
    __atomic_add_fetch(&L->ready, 1, __ATOMIC_RELEASE);
    futex_wake_private(&L->ready);
    uint32_t run;
    while ((run = __atomic_load_n(&t->run, __ATOMIC_ACQUIRE)) == RUN_WAIT)
      futex_wait_private(&t->run, RUN_WAIT);
    if (run != RUN_SERVE) return NULL;
  } else {
    prepare(t);
  }
  serve(t);
  return NULL;
}

int nk_lanes_attach(nk_kernel *k, nub_lane_slot *slots, uint32_t count, char *err,
                    size_t errlen) {
  struct nk_lanes *L;
  if (k->lanes || !slots || !count || count > NUB_MAX_LANES) {
    snprintf(err, errlen, "kernel: lanes: %u slots (1..%u, once)", count, NUB_MAX_LANES);
    return -1;
  }
  if (!(L = calloc(1, sizeof *L))) {
    snprintf(err, errlen, "kernel: lanes: out of memory");
    return -1;
  }
  if (pthread_mutex_init(&L->lock, NULL)) {
    free(L);
    snprintf(err, errlen, "kernel: lanes: cannot create a lock");
    return -1;
  }
  L->slots = slots;
  L->count = count;
  for (uint32_t i = 0; i < NUB_MAX_LANES; i++) {
    L->t[i].k = k;
    L->t[i].slot = i < count ? &slots[i] : NULL;
  }
  k->lanes = L;
  return 0;
}

void nk_lanes_direct(nk_kernel *k) {
  if (k->lanes && !k->lanes->fixed) k->lanes->direct = true;
}

nk_lane *nk_lanes_lane(nk_kernel *k, uint32_t n) {
  return k->lanes && n < k->lanes->count ? &k->lanes->t[n].lane : NULL;
}

int nk_lane_invoke(nk_kernel *k, uint32_t n, const nub_invoke_packet *p,
                   nub_invocation_result *r, char error[NUB_KERNEL_ERROR_TEXT_MAX + 1]) {
  struct nk_lanes *L = k->lanes;
  if (!L || !L->direct || n >= L->count || L->t[n].run != RUN_SERVE) return -1;
  nk_lane *lane = &L->t[n].lane;
  nk_invoke_on(k, lane, p, r);
  error[0] = 0;                  /* no error (the usual case): no 129-byte copy */
  if (lane->last_error[0]) memcpy(error, lane->last_error, NUB_KERNEL_ERROR_TEXT_MAX + 1);
  nk_invoke_settle(lane);
  return 0;
}

int nk_lanes_spawn(nk_kernel *k, uint32_t count, bool death_notice, char *err, size_t errlen) {
  struct nk_lanes *L = k->lanes;
  if (!L || L->fixed || count > L->count) {
    snprintf(err, errlen, "kernel: lanes: cannot make %u lane threads for %u slots", count,
             L ? L->count : 0);
    return -1;
  }
  L->fixed = true;
  for (; L->spawned < count; L->spawned++) {
    nk_lane_thread *t = &L->t[L->spawned];
    t->death_notice = death_notice;
    int e = pthread_create(&t->thread, NULL, lane_main, t);
    if (e) {
      snprintf(err, errlen, "kernel: lane thread %u: %s", L->spawned, strerror(e));
      return -1;
    }
  }
  uint32_t ready;
  while ((ready = __atomic_load_n(&L->ready, __ATOMIC_ACQUIRE)) < count)
    futex_wait_private(&L->ready, ready);
  for (uint32_t i = 0; i < count; i++)
    if (L->t[i].prep_error[0]) {
      snprintf(err, errlen, "kernel: lane thread %u: %s", i, L->t[i].prep_error);
      return -1;
    }
  return 0;
}

static uint32_t start(nk_kernel *k, uint32_t n, uint8_t *out, size_t out_cap, size_t *out_len) {
  struct nk_lanes *L = k->lanes;
  nk_lane_thread *t = &L->t[n];
  char msg[200];
  if (t->run != RUN_WAIT)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD, "lane %u is running", n);
  if (L->fixed && n >= L->spawned)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "lane %u: this guest has %u lane threads", n, L->spawned);
  uint32_t st = nk_load(&t->slot->status);
  if (st != NUB_LANE_STARTING)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "lane %u: its slot says %u, not STARTING (%u)", n, st,
                          NUB_LANE_STARTING);
  if (nk_lane_init(k, &t->lane, msg, sizeof msg))
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_INTERNAL, "lane %u: %s", n, msg);
  nk_store(&t->slot->status, NUB_LANE_EMPTY);
  if (L->direct) {
    t->run = RUN_SERVE;
    return NUB_RPC_OK;
  }
  if (L->fixed) {
    __atomic_store_n(&t->run, RUN_SERVE, __ATOMIC_RELEASE);
    futex_wake_private(&t->run);
    return NUB_RPC_OK;
  }
  t->made = true;
  t->run = RUN_SERVE;
  int e = pthread_create(&t->thread, NULL, lane_main, t);
  if (e) {
    t->made = false;
    t->run = RUN_WAIT;
    nk_lane_fini(&t->lane);
    nk_store(&t->slot->status, NUB_LANE_STARTING);
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_INTERNAL, "lane %u: thread: %s", n,
                          strerror(e));
  }
  return NUB_RPC_OK;
}

uint32_t nk_fn_lane_start(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
  struct nk_lanes *L = k->lanes;
  uint32_t n;
  if (in_len != sizeof n)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "lane_start: %zu payload bytes, expected 4 (the lane index)", in_len);
  memcpy(&n, in, sizeof n);
  if (!L)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "lane_start: this kernel has no lane slots");
  if (n >= L->count)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "lane_start: lane %u, but %u slots", n, L->count);
  *out_len = 0;
  pthread_mutex_lock(&L->lock);
  uint32_t rc = start(k, n, out, out_cap, out_len);
  pthread_mutex_unlock(&L->lock);
  return rc;
}

/* Every lane's thread ends: a serving one at STOP once its invocation is
** done, a waiting one (nk_lanes_spawn) at RUN_END. */
void nk_lanes_fini(nk_kernel *k) {
  struct nk_lanes *L = k->lanes;
  if (!L) return;
  pthread_mutex_lock(&L->lock);
  for (uint32_t i = 0; i < NUB_MAX_LANES; i++) {
    nk_lane_thread *t = &L->t[i];
    bool spawned = i < L->spawned;
    if (L->direct && t->lane.mem) nk_lane_fini(&t->lane);
    if (!t->made && !spawned) continue;
    if (t->run == RUN_SERVE) {
      /* after the invocation it may still run (the host waits for none) */
      uint32_t st = nk_load(&t->slot->status);
      while (st == NUB_LANE_READY || st == NUB_LANE_RUNNING ||
             !__atomic_compare_exchange_n(&t->slot->status, &st, NUB_LANE_STOP, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        usleep(1000);
        st = nk_load(&t->slot->status);
      }
      nk_futex_wake(&t->slot->status);
    } else {
      __atomic_store_n(&t->run, RUN_END, __ATOMIC_RELEASE);
      futex_wake_private(&t->run);
    }
    pthread_join(t->thread, NULL);
    if (t->lane.mem) nk_lane_fini(&t->lane);
  }
  pthread_mutex_unlock(&L->lock);
  pthread_mutex_destroy(&L->lock);
  free(L);
  k->lanes = NULL;
}
