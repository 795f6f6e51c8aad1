/*
** The proc backend's channel between the host library and nub-guest
** (docs/sandbox.md): the control page layout, the boot handshake and the
** futex doorbell.  Header-only: the guest executable and the host
** library both compile it.
**
**   one memfd, the guest's fd 0 (its only descriptor)
**   +----------------+ 0
**   | control page   |
**   +----------------+ NK_CHAN_CTL_SIZE
**   | request frame  |
**   +----------------+ + io_size
**   | answer line    | 16 bytes
**   | response frame | io_size
**   +----------------+ NK_CHAN_LANES_OFF(io_size), a page boundary
**   | lane slots     | NUB_MAX_LANES x 512 bytes (nub_lane_slot, abi.h)
**   +----------------+ nk_chan_size(io_size): the heap offset
**   | guest heap     | kernel, every published cap, directory;
**   |                | guest RW, host RO, both at heap_va
**   +----------------+ + heap_size
**
** Doorbell.  The host posts request `seq` by storing req_seq = seq (control
** page); the guest answers by storing resp_seq = seq, then exchanging busy
** for 0 (answer line).
** Each side spins a short while (nk_spin_for), then sleeps in FUTEX_WAIT: the
** guest on req_seq (announced by guest_sleeping), the host on busy, which
** it first claims with the guest's tid and FUTEX_WAITERS.  busy is also
** the futex word of a one-entry robust list the guest registers, so a
** guest that dies under a sleeping host has the kernel set
** FUTEX_OWNER_DIED in it and wake the host at once.  Wake-ups carry no
** meaning: each side acts only on the sequence number it expects, so a
** stale or replayed wake-up just sends it back to sleep.
**
** Lanes have a doorbell of their own per slot (abi.h): the lane thread
** sleeps on its status word, the host on its owner word, which each lane
** thread registers as a robust futex like busy.
**
** Both sides treat the page as hostile: the host reads only sequence
** words, the busy word and bounded report fields; the guest reads its
** configuration once and checks it against the memfd.
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

#include "nub/abi.h"    /* NUB_NS_*, NUB_LOCK_*: the report's bits */

#define NK_CHAN_MAGIC    0x4E48434Bu   /* "KCHN" little-endian */
#define NK_CHAN_VERSION  4u    /* 2: one memfd on fd 0; 3: memory_budget in the config;
                                  4: lanes and their slots */
#define NK_CHAN_CTL_SIZE 4096u

/* The only descriptor the host hands to the guest: channel, then heap.
** fd 0 exists under any RLIMIT_NOFILE. */
#define NK_GUEST_FD 0

/* The uid and gid (outside every namespace) a root host's guest runs as:
** "nobody"/"nogroup" on Debian.  A non-root host's guest has its ids. */
#define NK_GUEST_ID 65534u

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
  uint64_t memory_budget;       /* nub_options.memory_budget, never 0 */
  uint32_t namespaces;          /* NUB_NS_* the host created the guest in */
  uint32_t lanes;               /* lane threads to make (0..NUB_MAX_LANES) */
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
  /* boot */
  uint32_t boot_state;          /* NK_BOOT_* */
  uint32_t guest_tid;           /* gettid() in the guest's own pid namespace */
  nk_chan_config config;
  nk_chan_report report;
  nk_chan_crash crash;
  char boot_error[NK_CHAN_MSG];
} nk_chan_ctl;

/* Host -> guest: the ring words, right before the request frame, so the
** word the guest waits on and the start of the request share a cache line
** (and the rest of a short request the neighbouring one). */
typedef struct nk_chan_ring {
  uint32_t req_seq;             /* futex word the guest sleeps on */
  uint32_t op;                  /* NK_CHAN_OP_* of req_seq */
  uint32_t guest_sleeping;      /* guest is (about to be) in FUTEX_WAIT */
  uint32_t pad;
} nk_chan_ring;

/* Guest -> host: the answer words, right before the response frame, so the
** word the host waits on and a short response arrive in one cache line. */
typedef struct nk_chan_answer {
  uint32_t resp_seq;            /* last request answered */
  uint32_t busy;                /* 0, or tid | FUTEX_WAITERS while the host sleeps; robust futex */
  uint32_t pad[2];
} nk_chan_answer;

_Static_assert(sizeof(nk_chan_ctl) <= NK_CHAN_CTL_SIZE, "control page overflow");
_Static_assert(sizeof(nk_chan_ring) == 16 && sizeof(nk_chan_answer) == 16,
               "the frames follow at 16-byte alignment");
/* docs/sandbox.md lists these offsets */
_Static_assert(__builtin_offsetof(nk_chan_ctl, boot_state) == 0, "boot_state");
_Static_assert(__builtin_offsetof(nk_chan_ctl, config) == 8, "config");

/* The chan memfd for io_size-byte buffers (a page multiple):
**   0                    control page
**   4096                 ring words (16 bytes), then the request frame
**   4096 + 64 + io_size  answer words (16 bytes), then the response frame */
typedef struct nk_chan {
  nk_chan_ctl *ctl;
  nk_chan_ring *ring;
  uint8_t *in;
  nk_chan_answer *ans;
  uint8_t *out;
  nub_lane_slot *lanes;
} nk_chan;

#define NK_CHAN_ANSWER_OFF(io) (NK_CHAN_CTL_SIZE + 64 + (uint64_t)(io))

#define NK_CHAN_LANES_OFF(io) \
  ((NK_CHAN_ANSWER_OFF(io) + sizeof(nk_chan_answer) + (uint64_t)(io) + 4095) & ~(uint64_t)4095)
#define NK_CHAN_LANES_SIZE ((uint64_t)NUB_MAX_LANES * NUB_LANE_SLOT_SIZE)

static inline uint64_t nk_chan_size(uint64_t io_size) {
  return NK_CHAN_LANES_OFF(io_size) + NK_CHAN_LANES_SIZE;
}

static inline nk_chan nk_chan_at(void *base, uint64_t io_size) {
  uint8_t *b = base;
  nk_chan ch = {(nk_chan_ctl *)b, (nk_chan_ring *)(b + NK_CHAN_CTL_SIZE),
                b + NK_CHAN_CTL_SIZE + sizeof(nk_chan_ring),
                (nk_chan_answer *)(b + NK_CHAN_ANSWER_OFF(io_size)),
                b + NK_CHAN_ANSWER_OFF(io_size) + sizeof(nk_chan_answer),
                (nub_lane_slot *)(void *)(b + NK_CHAN_LANES_OFF(io_size))};
  return ch;
}

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

/* Spinning.  Measured here: a futex-only round trip costs 12-30 us (waking
** an idle vCPU is dear under this hypervisor), spinning on both sides
** ~0.6 us when each side has a vCPU.  Once a pair has slept, the scheduler
** tends to wake both onto one vCPU, where a spinner only keeps its peer
** from running; so the spin yields its vCPU every ~1.3 us.  Apart, the
** yield returns at once; together, it runs the peer; on a busy machine it
** lets the others on.  Every wait spins up to NK_SPIN_NS, then sleeps.
** (Budgets that adapt to misses did worse: a co-located pair misses, learns
** to sleep and stays together, ~15 us a round trip where 0.6 us is
** possible.) */
#define NK_SPIN_NS 10000u

/* Spins until (*w == v) == equal or NK_SPIN_NS pass; returns whether the
** condition was met. */
static inline bool nk_spin_for(const uint32_t *w, uint32_t v, bool equal) {
  uint64_t start = nk_now_ns();
  for (uint32_t i = 1;; i++) {
    if ((nk_load(w) == v) == equal) return true;
    __builtin_ia32_pause();
    if (!(i & 63)) {
      if (nk_now_ns() - start > NK_SPIN_NS) return false;
      syscall(SYS_sched_yield);
    }
  }
}

/* Guest: answer request seq and wake the host if it sleeps. */
static inline void nk_chan_reply(nk_chan_answer *a, uint32_t seq) {
  nk_store(&a->resp_seq, seq);
  uint32_t old = __atomic_exchange_n(&a->busy, 0, __ATOMIC_ACQ_REL);
  if (old & FUTEX_WAITERS) nk_futex_wake(&a->busy);
}

#endif
