/*
** The proc backend: the guest kernel in a locked-down nub-guest process
** (docs/sandbox.md).  Requests and responses travel through a shared
** memfd with a futex doorbell (src/chan/nk_chan.h); the guest heap is a
** second memfd the host maps read-only at the guest's own address.
**
** Everything the guest can write is hostile: the host reads only the
** sequence and busy words, a response header copied once and bounded,
** and report fields it bounds and sanitises.  A guest that dies, hangs
** past the call timeout or breaks the doorbell protocol is killed and
** reaped, and the call fails with a message saying what happened.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../chan/nk_chan.h"
#include "host.h"
#include "spawn.h"

#define BOOT_TIMEOUT_MS 10000u   /* a guest slower than this to start is broken */
#define LIVENESS_MS     50u      /* longest FUTEX_WAIT between checks that the guest lives */

#define LOCK_KNOWN (2 * NUB_LOCK_CAPBSET_CLEARED - 1)   /* every NUB_LOCK_* bit the guest reports */

typedef struct proc {
  host_backend b;
  char *guest_path;
  char engine_req[32];           /* what the caller asked for; "" = best */
  char engine[32];               /* what the guest reports it runs */
  uint64_t va_request;
  uint32_t timeout_ms;
  size_t io_size, heap_size, chan_size;
  uint64_t memory_budget;
  uint8_t *chan;                 /* control page, request, answer, response: RW */
  nk_chan ch;
  nk_chan_ctl *ctl;
  uint8_t *heap;                 /* the guest heap, RO, at the guest's address */
  host_child child;
  bool alive;
  uint32_t seq, tid;
  uint32_t lanes;                /* lane threads the guest makes */
  /* child and alive against lane waiters' alive() / kill(): the calling
  ** thread buries, any thread may ask or kill */
  pthread_mutex_t life;
  /* The keeper: a thread of the handle's own that spawns every guest.
  ** A guest dies with the thread that made it (PR_SET_PDEATHSIG), and any
  ** thread calling into the handle may have to replace the guest: made
  ** by the keeper, the guest lives as long as the handle. */
  pthread_t keeper;
  bool keeper_made, keeper_quit;
  pthread_mutex_t keeper_mx;
  pthread_cond_t keeper_cv;
  struct spawn_job *job;
} proc;

typedef struct spawn_job {
  int fd, rc;
  bool done;
  nub_error err;
} spawn_job;

static void *keeper_main(void *arg) {
  proc *p = arg;
  pthread_mutex_lock(&p->keeper_mx);
  for (;;) {
    while (!p->job && !p->keeper_quit) pthread_cond_wait(&p->keeper_cv, &p->keeper_mx);
    if (!p->job) break;
    spawn_job *j = p->job;
    j->rc = host_spawn_guest(p->guest_path, j->fd, &p->ctl->config.namespaces, &p->child, &j->err);
    j->done = true;
    p->job = NULL;
    pthread_cond_broadcast(&p->keeper_cv);
  }
  pthread_mutex_unlock(&p->keeper_mx);
  return NULL;
}

/* host_spawn_guest on the keeper thread. */
static int spawn_by_keeper(proc *p, int fd, nub_error *err) {
  spawn_job j = {.fd = fd};
  pthread_mutex_lock(&p->keeper_mx);
  p->job = &j;
  pthread_cond_broadcast(&p->keeper_cv);
  while (!j.done) pthread_cond_wait(&p->keeper_cv, &p->keeper_mx);
  pthread_mutex_unlock(&p->keeper_mx);
  if (j.rc && err) *err = j.err;
  return j.rc;
}

static size_t page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

/* ---- ending a guest ---- */

/* Kill (if needed) and reap; describe the end in buf. */
static void bury(proc *p, char *buf, size_t len) {
  char how[96] = "was not running";
  pthread_mutex_lock(&p->life);
  if (p->alive) host_reap_child(&p->child, true, how, sizeof how);
  p->alive = false;
  pthread_mutex_unlock(&p->life);
  p->b.guest_gone = true;
  nk_chan_crash crash;
  memcpy(&crash, &p->ctl->crash, sizeof crash);      /* hostile: numbers only */
  if (crash.signal && crash.signal < 65)
    snprintf(buf, len, "%s after SIG%s (code %d) at address 0x%llx, pc 0x%llx", how,
             sigabbrev_np((int)crash.signal) ? sigabbrev_np((int)crash.signal) : "?",
             crash.code, (unsigned long long)crash.addr, (unsigned long long)crash.pc);
  else
    snprintf(buf, len, "%s", how);
}

static int guest_died(proc *p, nub_error *err) {
  char how[200];
  bury(p, how, sizeof how);
  return host_fail(err, NUB_ERR_GUEST_DIED, "guest process %s", how);
}

static int guest_timed_out(proc *p, uint32_t ms, nub_error *err) {
  char how[200];
  bury(p, how, sizeof how);
  return host_fail(err, NUB_ERR_TIMEOUT, "guest did not answer within %u ms; it was killed", ms);
}

static int guest_broke_protocol(proc *p, uint32_t busy, uint32_t seq, nub_error *err) {
  char how[200];
  uint32_t answered = nk_load(&p->ch.ans->resp_seq);
  bury(p, how, sizeof how);
  return host_fail(err, NUB_ERR_PROTOCOL,
                   "guest broke the doorbell protocol (busy word 0x%x, answered %u for request "
                   "%u); it was killed", busy, answered, seq);
}

/* The pidfd turns readable when the guest has exited, reaped or not: a
** SIGCHLD handler elsewhere in the process calling waitpid(-1) can take
** its exit status, never this notice (waitid on it would fail). */
static bool child_exited(proc *p) {
  struct pollfd pfd = {.fd = p->child.pidfd, .events = POLLIN};
  int r;
  do r = poll(&pfd, 1, 0);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

/* ---- the doorbell, host side ---- */

/* Wait until the guest answers seq.  tid: the guest's tid once booted (0
** while booting, when the guest claims busy itself).  Before sleeping we claim busy (tid | FUTEX_WAITERS) and
** check once that the guest still lives: from then on its death sets
** FUTEX_OWNER_DIED and wakes us (robust list), and a death the kernel
** could not report that way is noticed within LIVENESS_MS. */
static int wait_answer(proc *p, uint32_t seq, uint32_t tid, uint32_t timeout_ms, nub_error *err) {
  nk_chan_answer *c = p->ch.ans;
  uint64_t t0 = nk_now_ns();
  if (nk_spin_for(&c->resp_seq, seq, true)) return NUB_OK;
  uint64_t deadline = timeout_ms ? t0 + (uint64_t)timeout_ms * 1000000u : UINT64_MAX;
  uint32_t mine = tid | FUTEX_WAITERS;
  uint64_t liveness = 500000;      /* ns; doubled before each sleep */
  bool claimed = false;
  for (;;) {
    uint32_t v = nk_load(&c->busy);
    if (nk_load(&c->resp_seq) == seq) {
      /* back to idle (0) unless the guest's answer already did it */
      if (claimed) __atomic_compare_exchange_n(&c->busy, &v, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
      return NUB_OK;
    }
    if (v & FUTEX_OWNER_DIED) return guest_died(p, err);
    if (tid && (claimed ? v != mine : v != 0)) return guest_broke_protocol(p, v, seq, err);
    if (!(v & FUTEX_WAITERS)) {
      uint32_t want = tid ? mine : v | FUTEX_WAITERS;   /* booting: the guest put its tid */
      if (!__atomic_compare_exchange_n(&c->busy, &v, want, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        continue;
      claimed = true;
      if (child_exited(p)) return guest_died(p, err);
      continue;
    }
    uint64_t t = nk_now_ns();
    if (t >= deadline) return guest_timed_out(p, timeout_ms, err);
    /* 1, 2, 4 ... ms, then every LIVENESS_MS: a guest that died just
    ** before we claimed busy is found quickly, a long call costs little */
    if (liveness < LIVENESS_MS * 1000000ull) liveness *= 2;
    uint64_t slice = deadline - t < liveness ? deadline - t : liveness;
    struct timespec ts = {(time_t)(slice / 1000000000u), (long)(slice % 1000000000u)};
    if (nk_futex_wait(&c->busy, v, &ts) && errno == ETIMEDOUT && child_exited(p))
      return guest_died(p, err);
  }
}

/* Ring for request seq with op, then wait for its answer. */
static int ring(proc *p, uint32_t op, nub_error *err) {
  nk_chan_ring *c = p->ch.ring;
  if (!p->alive)
    return host_fail(err, NUB_ERR_GUEST_DIED, "guest process is not running (restart it)");
  uint32_t seq = ++p->seq;
  __atomic_store_n(&c->op, op, __ATOMIC_RELAXED);
  nk_store_sc(&c->req_seq, seq);
  if (nk_load_sc(&c->guest_sleeping)) nk_futex_wake(&c->req_seq);
  if (p->b.overlap) p->b.overlap(p->b.overlap_arg);
  return wait_answer(p, seq, p->tid, p->timeout_ms, err);
}

/* ---- starting a guest ---- */

static int make_memfd(const char *name, size_t size, int *fd, nub_error *err) {
  *fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  /* sealed size: the guest can never make our mappings fault (SIGBUS) */
  if (*fd < 0 || ftruncate(*fd, (off_t)size) ||
      fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
    return host_fail(err, NUB_ERR_SYSTEM, "proc: %s memfd of %zu bytes: %s", name, size,
                     strerror(errno));
  return NUB_OK;
}

/* Map a fresh memfd (channel, then heap: nk_chan.h); a restart maps it
** over the old one at the same addresses, so b->in and heap_view never
** move. */
static int map_regions(proc *p, int fd, nub_error *err) {
  void *at = p->chan;
  off_t heap_off = (off_t)p->chan_size;
  void *c = mmap(at, p->chan_size, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
  if (c == MAP_FAILED)
    return host_fail(err, NUB_ERR_SYSTEM, "proc: mapping the channel: %s", strerror(errno));
  p->chan = c;
  if (p->heap) {
    if (mmap(p->heap, p->heap_size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, heap_off) == MAP_FAILED)
      return host_fail(err, NUB_ERR_SYSTEM, "proc: mapping the guest heap: %s", strerror(errno));
  } else {
    p->heap = host_map_guest_region(p->va_request, p->heap_size, PROT_READ, MAP_SHARED, fd,
                                    heap_off, err);
    if (!p->heap) return err ? err->code : NUB_ERR_SYSTEM;
  }
  p->ch = nk_chan_at(p->chan, p->io_size);
  p->ctl = p->ch.ctl;
  p->b.in = p->ch.in;
  p->b.lane_slots = p->ch.lanes;
  p->b.heap_view = p->heap;
  return NUB_OK;
}

static void write_config(proc *p) {
  nk_chan_ctl *c = p->ctl;
  c->config.magic = NK_CHAN_MAGIC;
  c->config.version = NK_CHAN_VERSION;
  c->config.io_size = p->io_size;
  c->config.heap_va = (uint64_t)(uintptr_t)p->heap;
  c->config.heap_size = p->heap_size;
  c->config.memory_budget = p->memory_budget;
  c->config.lanes = p->lanes;
  memcpy(c->config.engine, p->engine_req, sizeof c->config.engine);
  p->ch.ans->resp_seq = UINT32_MAX;      /* boot answers request 0 */
}

/* Printable ASCII only, always terminated: guest strings end up in logs. */
static void copy_text(char *dst, size_t cap, const char *src, size_t src_cap) {
  size_t i = 0;
  for (; i + 1 < cap && i < src_cap && src[i]; i++)
    dst[i] = src[i] >= 0x20 && src[i] < 0x7F ? src[i] : '?';
  dst[i] = 0;
}

/* The guest's real, effective, saved and fs ids as the kernel shows them
** from outside (/proc/<pid>/status): the lowest of each line, since one
** 0 among them is enough to be root.  -1 where unreadable. */
static void read_ids(pid_t pid, int64_t *uid, int64_t *gid) {
  char path[64], line[256];
  *uid = *gid = -1;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    unsigned long v[4];
    int64_t *out = !strncmp(line, "Uid:", 4) ? uid : !strncmp(line, "Gid:", 4) ? gid : NULL;
    if (out && sscanf(line + 4, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) == 4) {
      unsigned long low = v[0];
      for (int i = 1; i < 4; i++) if (v[i] < low) low = v[i];
      *out = (int64_t)low;
    }
  }
  fclose(f);
}

static void take_report(proc *p, double start_ms) {
  nk_chan_report r;
  struct nub_sandbox_report *out = &p->b.report;
  memcpy(&r, &p->ctl->report, sizeof r);
  uint32_t restarts = out->restarts;
  memset(out, 0, sizeof *out);
  out->isolated = true;
  out->guest_pid = p->child.pid;
  out->namespaces = p->child.namespaces;          /* what we created, not what it claims */
  out->lockdown = r.achieved & LOCK_KNOWN;
  out->lockdown_failed = r.failed & LOCK_KNOWN;
  /* never taken from the guest: checked from outside */
  read_ids(p->child.pid, &out->guest_uid, &out->guest_gid);
  if (out->guest_uid > 0 && out->guest_gid > 0) out->lockdown |= NUB_LOCK_UNPRIVILEGED;
  else out->lockdown_failed |= NUB_LOCK_UNPRIVILEGED;
  out->seccomp_syscalls = r.seccomp_syscalls;
  out->seccomp_insns = r.seccomp_insns;
  out->restarts = restarts;
  out->start_ms = start_ms;
  copy_text(out->engine, sizeof out->engine, r.engine, sizeof r.engine);
  copy_text(p->engine, sizeof p->engine, r.engine, sizeof r.engine);
  copy_text(out->notes, sizeof out->notes, p->child.notes, sizeof p->child.notes);
  size_t used = strlen(out->notes);
  if (used && r.notes[0] && used + 2 < sizeof out->notes) {
    memcpy(out->notes + used, "; ", 3);
    used += 2;
  }
  copy_text(out->notes + used, sizeof out->notes - used, r.notes, sizeof r.notes);
  used = strlen(out->notes);
  if (!(out->lockdown & NUB_LOCK_UNPRIVILEGED) && used + 2 < sizeof out->notes)
    snprintf(out->notes + used, sizeof out->notes - used,
             "%sids outside its namespaces: uid %lld gid %lld (root, or unreadable)",
             used ? "; " : "", (long long)out->guest_uid, (long long)out->guest_gid);
}

static int start_guest(proc *p, nub_error *err) {
  int fd = -1, rc;
  uint64_t t0 = nk_now_ns();
  /* one descriptor for both: the host needs two free (this and the
  ** pidfd), the guest one, under any RLIMIT_NOFILE */
  if (p->b.heap_fd >= 0) close(p->b.heap_fd);   /* the dead guest's: its fd is free again */
  p->b.heap_fd = -1;
  if ((rc = make_memfd("nub-guest", p->chan_size + p->heap_size, &fd, err)) ||
      (rc = map_regions(p, fd, err)))
    goto out;
  write_config(p);
  p->seq = 0;
  p->tid = 0;
  if ((rc = spawn_by_keeper(p, fd, err)))
    goto out;
  /* kept: the host writes large Data caps' pages into the heap through it
  ** (PAGES_RESERVE, nub.c); closed before the next guest's is made, so a
  ** restart still needs only two free descriptors */
  p->b.heap_fd = fd;
  p->b.heap_fd_off = p->chan_size;
  fd = -1;
  p->alive = true;
  p->b.guest_gone = false;
  if ((rc = wait_answer(p, 0, 0, BOOT_TIMEOUT_MS, err))) {
    /* it may have said why before it could answer */
    char msg[NK_CHAN_MSG];
    copy_text(msg, sizeof msg, p->ctl->boot_error, sizeof p->ctl->boot_error);
    size_t used = err ? strlen(err->msg) : 0;
    if (err)
      snprintf(err->msg + used, sizeof err->msg - used, " while starting %s%s%s", p->guest_path,
               msg[0] ? ": " : "", msg);
    rc = NUB_ERR_SANDBOX;
    if (err) err->code = rc;
    goto out;
  }
  uint32_t state = nk_load(&p->ctl->boot_state);
  if (state != NK_BOOT_READY) {
    char msg[NK_CHAN_MSG], how[200];
    copy_text(msg, sizeof msg, p->ctl->boot_error, sizeof p->ctl->boot_error);
    bury(p, how, sizeof how);
    rc = host_fail(err, NUB_ERR_SANDBOX, "guest %s failed to start: %s", p->guest_path,
                   state == NK_BOOT_FAILED ? msg : "no boot state");
    goto out;
  }
  p->tid = nk_load(&p->ctl->guest_tid) & FUTEX_TID_MASK;
  if (!p->tid) {
    char how[200];
    bury(p, how, sizeof how);
    rc = host_fail(err, NUB_ERR_SANDBOX, "guest %s reported thread id 0", p->guest_path);
    goto out;
  }
  take_report(p, (double)(nk_now_ns() - t0) / 1e6);
out:
  if (fd >= 0) close(fd);
  return rc;
}

/* ---- finding nub-guest ---- */

#ifndef NUB_GUEST_INSTALL_PATH
#define NUB_GUEST_INSTALL_PATH "/usr/local/libexec/nub/nub-guest"
#endif

/* nub_options.guest_path, else $NUB_GUEST, else nub-guest next to the
** program (a build tree), else the installed one (libexec). */
static char *guest_path(const nub_options *opt) {
  const char *env = getenv("NUB_GUEST");
  if (opt->guest_path) return strdup(opt->guest_path);
  if (env && env[0]) return strdup(env);
  char self[PATH_MAX], *path = NULL;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return strdup(NUB_GUEST_INSTALL_PATH);
  self[n] = 0;
  if (asprintf(&path, "%s/nub-guest", dirname(self)) < 0) return NULL;
  if (access(path, X_OK) == 0) return path;
  free(path);
  return strdup(NUB_GUEST_INSTALL_PATH);
}

/* ---- ops ---- */

static void proc_close(host_backend *b) {
  proc *p = (proc *)b;
  if (!p) return;
  if (p->alive) {
    char how[200];
    bury(p, how, sizeof how);
  }
  if (p->keeper_made) {
    pthread_mutex_lock(&p->keeper_mx);
    p->keeper_quit = true;
    pthread_cond_broadcast(&p->keeper_cv);
    pthread_mutex_unlock(&p->keeper_mx);
    pthread_join(p->keeper, NULL);
  }
  pthread_cond_destroy(&p->keeper_cv);
  pthread_mutex_destroy(&p->keeper_mx);
  if (p->chan) munmap(p->chan, p->chan_size);
  if (p->heap) munmap(p->heap, p->heap_size);
  if (p->b.heap_fd >= 0) close(p->b.heap_fd);
  if (p->b.out) munmap(p->b.out, p->b.out_cap);
  free(p->guest_path);
  pthread_mutex_destroy(&p->life);
  free(p);
}

static int proc_open(const nub_options *opt, host_backend **out, nub_error *err) {
  proc *p = calloc(1, sizeof *p);
  int rc;
  *out = NULL;
  if (!p) return host_fail(err, NUB_ERR_NOMEM, "proc: out of memory");
  p->b.ops = &host_proc_ops;
  p->child.pidfd = -1;
  p->b.heap_fd = -1;
  pthread_mutex_init(&p->life, NULL);
  pthread_mutex_init(&p->keeper_mx, NULL);
  pthread_cond_init(&p->keeper_cv, NULL);
  p->lanes = p->b.lane_count = opt->lanes;
  p->b.call_timeout_ms = opt->call_timeout_ms;
  p->io_size = page_round(opt->io_size);
  p->heap_size = page_round(opt->heap_size);
  p->memory_budget = opt->memory_budget;
  p->chan_size = nk_chan_size(p->io_size);
  p->va_request = opt->guest_va_base;
  p->timeout_ms = opt->call_timeout_ms;
  if (opt->engine && strlen(opt->engine) >= sizeof p->engine_req) {
    rc = host_fail(err, NUB_ERR_ARG, "proc: engine name '%s' is too long", opt->engine);
    goto fail;
  }
  if (opt->engine) strcpy(p->engine_req, opt->engine);
  if (!(p->guest_path = guest_path(opt))) {
    rc = host_fail(err, NUB_ERR_SANDBOX, "proc: cannot locate nub-guest: %s", strerror(errno));
    goto fail;
  }
  if (access(p->guest_path, X_OK)) {
    rc = host_fail(err, NUB_ERR_SANDBOX, "proc: guest executable %s: %s (set nub_options.guest_path or NUB_GUEST)",
                   p->guest_path, strerror(errno));
    goto fail;
  }
  /* responses are copied out of shared memory into this private buffer */
  p->b.in_cap = p->b.out_cap = p->io_size;
  p->b.out = mmap(NULL, p->b.out_cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p->b.out == MAP_FAILED) {
    p->b.out = NULL;
    rc = host_fail(err, NUB_ERR_NOMEM, "proc: no memory for the response buffer");
    goto fail;
  }
  p->b.heap_size = p->heap_size;
  p->b.exe_path = p->guest_path;
  p->b.engine = p->engine;
  if (pthread_create(&p->keeper, NULL, keeper_main, p)) {
    rc = host_fail(err, NUB_ERR_SYSTEM, "proc: cannot make the keeper thread");
    goto fail;
  }
  p->keeper_made = true;
  if ((rc = start_guest(p, err))) goto fail;
  *out = &p->b;
  return NUB_OK;
fail:
  proc_close(&p->b);
  return rc;
}

static int proc_call(host_backend *b, nub_error *err) {
  proc *p = (proc *)b;
  int rc = ring(p, NK_CHAN_OP_SERVE, err);
  if (rc) return rc;
  /* one bounded copy of the answer; the core validates the copy */
  nub_response_header h;
  memcpy(&h, p->ch.out, sizeof h);
  size_t n = h.len <= b->out_cap - sizeof h ? (size_t)h.len : 0;
  memcpy(b->out, &h, sizeof h);
  memcpy(b->out + sizeof h, p->ch.out + sizeof h, n);
  /* the guest has read the request's second line: own it again before the
  ** next call writes there (the ring line it polls cannot be kept) */
  __builtin_prefetch(b->in + 48, 1);
  return NUB_OK;
}

static int proc_ping(host_backend *b, nub_error *err) {
  return ring((proc *)b, NK_CHAN_OP_PING, err);
}

static int proc_restart(host_backend *b, nub_error *err) {
  proc *p = (proc *)b;
  if (p->alive) {
    char how[200];
    bury(p, how, sizeof how);
  }
  uint32_t restarts = p->b.report.restarts + 1;
  int rc = start_guest(p, err);
  p->b.report.restarts = restarts;
  return rc;
}

static bool proc_alive(host_backend *b) {
  proc *p = (proc *)b;
  pthread_mutex_lock(&p->life);
  bool alive = p->alive && !child_exited(p);
  pthread_mutex_unlock(&p->life);
  return alive;
}

/* SIGKILL through the pidfd (never a recycled pid); restart() reaps. */
static void proc_kill(host_backend *b) {
  proc *p = (proc *)b;
  pthread_mutex_lock(&p->life);
  if (p->alive && syscall(SYS_pidfd_send_signal, p->child.pidfd, SIGKILL, NULL, 0) &&
      errno == ENOSYS)
    kill(p->child.pid, SIGKILL);
  pthread_mutex_unlock(&p->life);
}

const host_backend_ops host_proc_ops = {
  "proc", proc_open, proc_call, proc_restart, proc_close, proc_ping, proc_alive, proc_kill,
  NULL,                      /* lanes are the guest's threads */
};
