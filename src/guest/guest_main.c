/*
** nub-guest: the guest kernel in its own process (docs/sandbox.md).
**
** Started by the host library with one memfd (channel, then heap) on fd 0
** and no other descriptor.  Boot: map the control page, read and check the
** configuration, map the whole channel, register the robust-list death
** notice, map the heap (at the host's address), create the kernel, lock
** down (keeping only the memfd on fd 0: invocations map Data pages from its heap part
** copy-on-write), report.
** Then serve one request per doorbell ring until told to exit.
*/
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "guest_ext.h"
#include "lockdown.h"
#include "nk.h"
#include "../chan/nk_chan.h"
#include "nub/jit.h"

#define ALTSTACK_SIZE (64u << 10)

static nk_chan_ctl *ctl;      /* the control page, mapped first */
static nk_chan ch;             /* the whole channel, once its size is known */

/* ---- boot failures: reported through the control page ---- */

static void boot_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void boot_fail(const char *fmt, ...) {
  char msg[NK_CHAN_MSG];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(ctl->boot_error, msg, sizeof msg);
  nk_store(&ctl->boot_state, NK_BOOT_FAILED);
  if (ch.ans) nk_chan_reply(ch.ans, 0);      /* else the host sees us exit */
  syscall(SYS_exit_group, 1);
  __builtin_unreachable();
}

/* ---- death notices ---- */

/* One-entry robust list: if this process dies while busy holds its tid,
** the kernel sets FUTEX_OWNER_DIED in busy and wakes the host. */
static struct robust_list robust_entry;
static struct robust_list_head robust_head;

static void register_death_notice(uint32_t tid) {
  robust_entry.next = &robust_head.list;
  robust_head.list.next = &robust_entry;
  robust_head.futex_offset = (long)((uintptr_t)&ch.ans->busy - (uintptr_t)&robust_entry);
  robust_head.list_op_pending = NULL;
  if (syscall(SYS_set_robust_list, &robust_head, sizeof robust_head))
    boot_fail("set_robust_list: %s", strerror(errno));
  /* claim busy for the boot answer, keeping a waiting host's flag */
  uint32_t old = nk_load(&ch.ans->busy);
  while (!__atomic_compare_exchange_n(&ch.ans->busy, &old, tid | (old & FUTEX_WAITERS), false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
}

/* Fatal signals leave a note for the host before the process exits.  The
** JIT's SIGSEGV handler chains here for faults outside guest code. */
static void on_fatal(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  ctl->crash.code = si->si_code;
  ctl->crash.addr = (uint64_t)(uintptr_t)si->si_addr;
  ctl->crash.pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
  nk_store(&ctl->crash.signal, (uint32_t)sig);
  syscall(SYS_exit_group, 128 + sig);
}

static void install_crash_handlers(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
  void *stack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  stack_t ss = {.ss_sp = stack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (stack == MAP_FAILED || sigaltstack(&ss, NULL))
    boot_fail("signal stack: %s", strerror(errno));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL)) boot_fail("sigaction: %s", strerror(errno));
}

/* ---- mapping ---- */

static uint64_t fd_size(int fd, const char *what) {
  struct stat st;
  if (fstat(fd, &st)) boot_fail("fstat of the %s memfd: %s", what, strerror(errno));
  return (uint64_t)st.st_size;
}

static void *map_fd(void *at, uint64_t size, int prot, int fd, uint64_t off, const char *what) {
  int flags = MAP_SHARED | (at ? MAP_FIXED_NOREPLACE : 0);
  void *p = mmap(at, size, prot, flags, fd, (off_t)off);
  if (p == MAP_FAILED) boot_fail("mapping the %s: %s", what, strerror(errno));
  if (at && p != at) boot_fail("the %s could not be mapped at %p", what, at);
  return p;
}

/* The configuration comes from the host: copy it once, then check it
** against the memfd it describes. */
static void read_config(nk_chan_config *cfg) {
  memcpy(cfg, &ctl->config, sizeof *cfg);
  cfg->engine[sizeof cfg->engine - 1] = 0;
  if (cfg->magic != NK_CHAN_MAGIC || cfg->version != NK_CHAN_VERSION)
    boot_fail("control page magic 0x%x version %u, want 0x%x version %u", cfg->magic,
              cfg->version, NK_CHAN_MAGIC, NK_CHAN_VERSION);
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  if (!cfg->io_size || cfg->io_size % page || cfg->io_size > (1ull << 40))
    boot_fail("io_size %llu is not a page multiple in (0, 2^40]", (unsigned long long)cfg->io_size);
  if (!cfg->heap_size || cfg->heap_size % page || cfg->heap_va % page ||
      cfg->heap_size > (1ull << 46) || cfg->heap_va > (1ull << 47) - cfg->heap_size)
    boot_fail("heap 0x%llx+0x%llx is not page aligned in user space",
              (unsigned long long)cfg->heap_va, (unsigned long long)cfg->heap_size);
  if (cfg->lanes > NUB_MAX_LANES)
    boot_fail("%u lanes, at most %u", cfg->lanes, NUB_MAX_LANES);
  if (cfg->memory_budget < NUB_MIN_MEMORY_BUDGET)
    boot_fail("memory_budget %llu is below the %llu-byte minimum",
              (unsigned long long)cfg->memory_budget, (unsigned long long)NUB_MIN_MEMORY_BUDGET);
  uint64_t have = fd_size(NK_GUEST_FD, "guest");
  uint64_t need = nk_chan_size(cfg->io_size) + cfg->heap_size;     /* both bounded above */
  if (have < need)
    boot_fail("the memfd holds %llu bytes, channel and heap need %llu", (unsigned long long)have,
              (unsigned long long)need);
}

/* ---- lanes ---- */

/* nk_lockdown's last step before the rlimits and the filter: the lane
** threads, each with its engine set up and its death notice registered,
** waiting for LANE_START. */
static uint32_t lane_threads;     /* the checked copy of the configuration's */

/* ---- the hasher: a second thread for the hash of large Data caps ----
** A put of a Data cap from NK_HASH_HELPER_PAGES pages on hashes the right
** half of its page index space here while the serving thread hashes the
** left (nub_cap_helper): at 1 GiB the host's helper has finished its own
** copy and hash seconds before the guest's hash (perf sched timehist of a
** 1 GiB put: 2.5 s before), so the second vCPU is free for it.  One job
** at a time: only the serving thread publishes. */
enum { HASH_STARTING = 0, HASH_IDLE = 1, HASH_POSTED = 2, HASH_DONE = 3 };
static struct {
  uint32_t state;                    /* HASH_*, the futex word */
  void (*fn)(void *);
  void *arg;
  bool made;
} hasher;

static void *hasher_main(void *unused) {
  (void)unused;
  /* running: the C library's thread set-up (robust list, rseq, signal
  ** mask) is done, so the filter installed next finds nothing left */
  nk_store(&hasher.state, HASH_IDLE);
  nk_futex_wake(&hasher.state);
  for (;;) {
    uint32_t s;
    while ((s = nk_load(&hasher.state)) != HASH_POSTED) nk_futex_wait(&hasher.state, s, NULL);
    hasher.fn(hasher.arg);
    nk_store(&hasher.state, HASH_DONE);
    nk_futex_wake(&hasher.state);
  }
  return NULL;
}

static int hasher_start(void *ud, void (*fn)(void *), void *arg) {
  (void)ud;
  if (!hasher.made) return -1;
  hasher.fn = fn;
  hasher.arg = arg;
  nk_store(&hasher.state, HASH_POSTED);
  nk_futex_wake(&hasher.state);
  return 0;
}

static void hasher_wait(void *ud) {
  uint32_t s;
  (void)ud;
  while ((s = nk_load(&hasher.state)) != HASH_DONE) nk_futex_wait(&hasher.state, s, NULL);
  nk_store(&hasher.state, HASH_IDLE);
}

static const nub_cap_helper hash_helper = {hasher_start, hasher_wait, NULL, NK_HASH_HELPER_PAGES};

/* Made after the ids and capabilities are dropped, before the filter
** (nk_lockdown): the lane threads, then the hasher.  No hasher is no
** error: large caps are then hashed on one thread. */
static int make_threads(void *ud, char *err, size_t errlen) {
  pthread_t t;
  if (lane_threads && nk_lanes_spawn(ud, lane_threads, true, err, errlen)) return -1;
  if (!pthread_create(&t, NULL, hasher_main, NULL)) {
    uint32_t s;
    while ((s = nk_load(&hasher.state)) == HASH_STARTING) nk_futex_wait(&hasher.state, s, NULL);
    hasher.made = true;
    nk_caps_hash_helper(ud, &hash_helper);
  }
  return 0;
}

/* ---- serving ---- */

static uint32_t wait_request(uint32_t last) {
  nk_chan_ring *r = ch.ring;
  if (nk_spin_for(&r->req_seq, last, false)) return nk_load(&r->req_seq);
  nk_store_sc(&r->guest_sleeping, 1);
  uint32_t seq;
  while ((seq = nk_load_sc(&r->req_seq)) == last) nk_futex_wait(&r->req_seq, last, NULL);
  nk_store(&r->guest_sleeping, 0);
  return seq;
}

/* The response is composed in private memory and copied next to resp_seq
** at the end: the host polls that cache line, so writing it piecemeal
** would hand the line back and forth once per piece. */
static void serve(nk_kernel *k, size_t io_size, uint8_t *reply) {
  uint32_t last = 0;
  for (;;) {
    uint32_t seq = wait_request(last);
    last = seq;
    if (__atomic_load_n(&ch.ring->op, __ATOMIC_RELAXED) == NK_CHAN_OP_SERVE) {
      __builtin_prefetch(ch.in + 48);       /* the rest of a short request */
      size_t n = nk_serve(k, ch.in, io_size, reply, io_size);
      memcpy(ch.out, reply, n);
      guest_ext_after_serve(seq);
    }                                       /* PING, or anything else: no work */
    nk_chan_reply(ch.ans, seq);
  }
}

int main(void) {
  /* one malloc arena for every thread: another arena shrinks with
  ** madvise(MADV_DONTNEED), which the filter forbids (the main one with
  ** brk) */
  mallopt(M_ARENA_MAX, 1);
  /* a compile's large arrays stay in the heap when freed, for the next
  ** compile, instead of being faulted in again each time (nub/jit.h) */
  mallopt(M_MMAP_THRESHOLD, NUB_JIT_MALLOC_MMAP_BYTES);
  mallopt(M_TRIM_THRESHOLD, NUB_JIT_MALLOC_TRIM_BYTES);
  ctl = mmap(NULL, NK_CHAN_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, NK_GUEST_FD, 0);
  if (ctl == MAP_FAILED) {
    fprintf(stderr, "nub-guest: no control page on fd %d (%s); start me through the nub library\n",
            NK_GUEST_FD, strerror(errno));
    return 2;
  }
  nk_chan_config cfg;
  read_config(&cfg);
  ch = nk_chan_at(map_fd(NULL, nk_chan_size(cfg.io_size), PROT_READ | PROT_WRITE, NK_GUEST_FD, 0,
                         "channel"), cfg.io_size);
  munmap(ctl, NK_CHAN_CTL_SIZE);
  ctl = ch.ctl;
  uint32_t tid = (uint32_t)syscall(SYS_gettid);
  register_death_notice(tid);
  void *heap = map_fd((void *)(uintptr_t)cfg.heap_va, cfg.heap_size, PROT_READ | PROT_WRITE,
                      NK_GUEST_FD, nk_chan_size(cfg.io_size), "guest heap");
  install_crash_handlers();

  char err[NK_CHAN_MSG];
  if (guest_ext_init(&ch, cfg.io_size, err, sizeof err)) boot_fail("%s", err);
  const nub_pvm_engine *engine = nk_engine_by_name(cfg.engine[0] ? cfg.engine : NULL);
  if (!engine) boot_fail("unknown engine '%s'", cfg.engine);
  nub_pvm_error perr;
  if (engine == &nub_jit_engine) {
    if (nub_jit_thread_prepare(&perr)) boot_fail("%s", perr.msg);
    nub_jit_keep_handler();        /* no sigaction per invoke: the filter forbids it */
    nub_jit_thread_keep_gs(true);  /* nothing else here uses GS (its lanes keep it too) */
  }
  nk_config kc = {.heap_base = heap, .heap_size = cfg.heap_size, .engine = engine,
                  .memory_budget = cfg.memory_budget};
  nk_kernel *k = NULL;
  if (nk_create(&kc, &k, err, sizeof err)) boot_fail("kernel: %s", err);
  if (nk_use_heap_fd(k, NK_GUEST_FD, nk_chan_size(cfg.io_size), err, sizeof err)) boot_fail("%s", err);
  if (guest_ext_kernel(k, err, sizeof err)) boot_fail("%s", err);
  uint32_t lanes = lane_threads = cfg.lanes;
  if (lanes && nk_lanes_attach(k, ch.lanes, lanes, err, sizeof err)) boot_fail("%s", err);

  uint8_t *reply = mmap(NULL, cfg.io_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reply == MAP_FAILED) boot_fail("no memory for the reply buffer: %s", strerror(errno));

  nk_chan_report rep;
  memset(&rep, 0, sizeof rep);
  snprintf(rep.engine, sizeof rep.engine, "%s", engine->name);
  rep.achieved = NUB_LOCK_ROBUST_DEATH;
  if (nk_lockdown(cfg.namespaces, NK_GUEST_FD, &rep, make_threads, k, err, sizeof err))
    boot_fail("lockdown: %s", err);

  /* locked down: no more system calls outside the allow-list */
  memcpy(&ctl->report, &rep, sizeof rep);
  ctl->guest_tid = tid;
  nk_store(&ctl->boot_state, NK_BOOT_READY);
  nk_chan_reply(ch.ans, 0);
  serve(k, cfg.io_size, reply);
  return 0;
}
