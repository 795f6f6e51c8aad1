/*
** The proc backend's channel between the host library and nub-guest
** (docs/sandbox.md): the control page layout, the boot handshake and the
** futex doorbell.  Header-only: the guest executable and the host
** library both compile it.
**
**   chan memfd (fd 3 in the guest)      heap memfd (fd 4)
**   +----------------+ 0                +---------------------------+
**   | control page   |                  | guest heap: kernel, every |
**   +----------------+ NK_CHAN_CTL_SIZE | published cap, directory  |
**   | request buffer |  guest: RO       |  guest RW, host RO, both  |
**   +----------------+ + io_size        |  at heap_va               |
**   | response buffer|  guest: RW       +---------------------------+
**   +----------------+ + io_size
**
** Doorbell.  The host posts request `seq` by storing busy = guest tid,
** then req_seq = seq; the guest answers by storing resp_seq = seq, then
** busy = 0.  Each side spins a short, adaptive while, then sleeps in
** FUTEX_WAIT: the guest on req_seq (announced by guest_sleeping), the
** host on busy (announced by FUTEX_WAITERS in busy).  busy is also the
** futex word of a one-entry robust list the guest registers, so when the
** guest dies with a request outstanding the kernel sets FUTEX_OWNER_DIED
** in it and wakes the host at once.  Wake-ups carry no meaning: each
** side acts only on the sequence number it expects, so a stale or
** replayed wake-up just sends it back to sleep.
**
** Both sides treat the page as hostile: the host reads only sequence
** words, the busy word and bounded report fields; the guest reads its
** configuration once and checks it against the memfds.
*/
#ifndef NUB_NK_CHAN_H
#define NUB_NK_CHAN_H

#include <errno.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nub/nub.h"    /* NUB_NS_*, NUB_LOCK_*: the report's bits */

#define NK_CHAN_MAGIC    0x4E48434Bu   /* "KCHN" little-endian */
#define NK_CHAN_VERSION  1u
#define NK_CHAN_CTL_SIZE 4096u

/* Descriptors the host hands to the guest (everything else is closed). */
#define NK_CHAN_FD 3    /* control page + request + response buffers */
#define NK_HEAP_FD 4    /* guest heap */

/* What the guest does with request seq (ctl->op). */
enum {
  NK_CHAN_OP_SERVE = 0,   /* nk_serve() the request buffer */
  NK_CHAN_OP_PING  = 1,   /* answer at once: the raw round trip */
};

/* ctl->boot_state */
enum { NK_BOOT_PENDING = 0, NK_BOOT_READY = 1, NK_BOOT_FAILED = 2 };

#define NK_CHAN_NOTES 480u
#define NK_CHAN_MSG   240u

/* Written by the host before the guest starts; read once by the guest. */
typedef struct nk_chan_config {
  uint32_t magic, version;
  uint64_t io_size;             /* each of the request and response buffers */
  uint64_t heap_va;             /* where both sides map the heap */
  uint64_t heap_size;
  uint32_t namespaces;          /* NUB_NS_* the host created the guest in */
  uint32_t flags;               /* reserved, zero */
  char engine[32];              /* "jit", "interp" or "" (best) */
} nk_chan_config;

/* Written by the guest during boot; the host copies it with bounds. */
typedef struct nk_chan_report {
  uint32_t achieved;            /* NUB_LOCK_* */
  uint32_t failed;              /* NUB_LOCK_* attempted and not achieved */
  uint32_t namespaces;          /* NUB_NS_* the guest was created in */
  uint32_t seccomp_syscalls;    /* syscalls on the allow-list */
  uint32_t seccomp_insns;       /* BPF instructions of the filter */
  uint32_t pad;
  char engine[32];              /* engine the kernel runs */
  char notes[NK_CHAN_NOTES];    /* what failed and why, '; '-separated */
} nk_chan_report;

/* Written by the guest's fatal-signal handler just before it exits. */
typedef struct nk_chan_crash {
  uint32_t signal;              /* 0: no crash recorded */
  int32_t code;                 /* si_code */
  uint64_t addr;                /* si_addr */
  uint64_t pc;
} nk_chan_crash;

typedef struct nk_chan_ctl {
  /* host -> guest */
  uint32_t req_seq;             /* futex word the guest sleeps on */
  uint32_t op;                  /* NK_CHAN_OP_* of req_seq */
  uint32_t guest_sleeping;      /* guest is (about to be) in FUTEX_WAIT */
  uint8_t pad0[52];
  /* guest -> host */
  uint32_t resp_seq;            /* last request answered */
  uint32_t busy;                /* guest tid while a request is out; robust futex */
  uint8_t pad1[56];
  /* boot */
  uint32_t boot_state;          /* NK_BOOT_* */
  uint32_t guest_tid;           /* gettid() in the guest's own pid namespace */
  nk_chan_config config;
  nk_chan_report report;
  nk_chan_crash crash;
  char boot_error[NK_CHAN_MSG];
} nk_chan_ctl;

_Static_assert(sizeof(nk_chan_ctl) <= NK_CHAN_CTL_SIZE, "control page overflow");
/* docs/sandbox.md lists these offsets */
_Static_assert(__builtin_offsetof(nk_chan_ctl, resp_seq) == 64, "guest words on their own line");
_Static_assert(__builtin_offsetof(nk_chan_ctl, busy) == 68, "busy");
_Static_assert(__builtin_offsetof(nk_chan_ctl, boot_state) == 128, "boot_state");
_Static_assert(__builtin_offsetof(nk_chan_ctl, config) == 136, "config");

/* ---- futex and spinning ---- */

static inline long nk_futex_wait(uint32_t *word, uint32_t expect, const struct timespec *rel) {
  return syscall(SYS_futex, word, FUTEX_WAIT, expect, rel, NULL, 0);
}

static inline void nk_futex_wake(uint32_t *word) {
  syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static inline uint32_t nk_load(const uint32_t *w) { return __atomic_load_n(w, __ATOMIC_ACQUIRE); }
static inline void nk_store(uint32_t *w, uint32_t v) { __atomic_store_n(w, v, __ATOMIC_RELEASE); }
/* Sequentially consistent pair for the "store my flag, load theirs"
** handshakes, so one side always sees the other's store. */
static inline uint32_t nk_load_sc(const uint32_t *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }
static inline void nk_store_sc(uint32_t *w, uint32_t v) { __atomic_store_n(w, v, __ATOMIC_SEQ_CST); }

static inline uint64_t nk_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);   /* vDSO: no system call */
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Adaptive spinning.  Measured here: a futex-only round trip costs
** 12-30 us (waking an idle vCPU is dear under this hypervisor), spinning on
** both sides ~0.6 us when both vCPUs are free, and spinning against a busy
** vCPU makes things worse (the spinner keeps its peer from a CPU).  So a
** wait spins for NK_SPIN_NS only in spin mode and only while the peer is
** awake, else for NK_SPIN_MINI_NS (which still beats sleeping at once), then
** sleeps.  Spin mode is a credit: +1 for a wait that spinning caught, -3
** for a full spin that missed.  Every NK_SPIN_PROBE-th sequence number both
** sides spin fully, so a pair that fell back to sleeping finds out when it
** could spin again. */
#define NK_SPIN_NS      20000u
#define NK_SPIN_MINI_NS 1500u
#define NK_SPIN_PROBE   64u
#define NK_SPIN_CREDIT  8

typedef struct nk_spin {
  int32_t credit;        /* > 0: spin mode */
} nk_spin;

static inline void nk_spin_init(nk_spin *s) { s->credit = NK_SPIN_CREDIT; }

/* Spins until (*w == v) == equal or the budget is spent; returns whether
** the condition was met.  seq: the number waited for; peer_asleep: the
** other side was sleeping when we last looked. */
static inline bool nk_spin_for(nk_spin *s, const uint32_t *w, uint32_t v, bool equal,
                               uint32_t seq, bool peer_asleep) {
  bool probe = seq % NK_SPIN_PROBE == 0;
  bool full = probe || (s->credit > 0 && !peer_asleep);
  uint64_t budget = full ? NK_SPIN_NS : NK_SPIN_MINI_NS, start = nk_now_ns();
  for (uint32_t i = 1;; i++) {
    if ((nk_load(w) == v) == equal) {
      if (s->credit < NK_SPIN_CREDIT) s->credit++;
      if (probe && s->credit < NK_SPIN_CREDIT / 2) s->credit = NK_SPIN_CREDIT / 2;
      return true;
    }
    __builtin_ia32_pause();
    if (!(i & 31) && nk_now_ns() - start > budget) {
      if (full && s->credit > -NK_SPIN_CREDIT) s->credit -= 3;
      return false;
    }
  }
}

/* Guest: answer request seq and wake the host if it sleeps; returns
** whether it did. */
static inline bool nk_chan_answer(nk_chan_ctl *c, uint32_t seq) {
  nk_store(&c->resp_seq, seq);
  uint32_t old = __atomic_exchange_n(&c->busy, 0, __ATOMIC_ACQ_REL);
  if (old & FUTEX_WAITERS) nk_futex_wake(&c->busy);
  return (old & FUTEX_WAITERS) != 0;
}

#endif
