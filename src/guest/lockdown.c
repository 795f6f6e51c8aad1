/*
** nub-guest lockdown (docs/sandbox.md, "Lockdown").  Runs once, after the
** kernel is set up and before the first request: from here on the only
** way out of the process is the shared memory the host mapped.
*/
#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lockdown.h"

/* ---- the seccomp allow-list ----
** Why each one is needed at run time is in docs/sandbox.md; keep the two
** in step.  At most 13 entries. */
static const nk_syscall_rule rules[] = {
  {SYS_futex,         "futex",         NK_ARGS_FUTEX},   /* doorbells; the C library's locks (lanes) */
  {SYS_sched_yield,   "sched_yield",   NK_ARGS_ANY},     /* doorbell spin: let a co-located host run */
  {SYS_mmap,          "mmap",          NK_ARGS_W_XOR_X}, /* malloc, PVM windows, JIT code */
  {SYS_mprotect,      "mprotect",      NK_ARGS_W_XOR_X}, /* PVM page access, JIT RW -> RX */
  {SYS_munmap,        "munmap",        NK_ARGS_ANY},     /* free, windows, code */
  {SYS_mremap,        "mremap",        NK_ARGS_ANY},     /* realloc of large blocks */
  {SYS_brk,           "brk",           NK_ARGS_ANY},     /* malloc's main arena */
  {SYS_rt_sigreturn,  "rt_sigreturn",  NK_ARGS_ANY},     /* JIT page-fault exits */
  {SYS_clock_gettime, "clock_gettime", NK_ARGS_ANY},     /* when the vDSO falls back */
  {SYS_exit_group,    "exit_group",    NK_ARGS_ANY},     /* leaving */
  {SYS_pwritev,       "pwritev",       NK_ARGS_FD0},     /* caps into the heap memfd (fd 0) */
  {SYS_pread64,       "pread64",       NK_ARGS_FD0},     /* their pages' zero check, unmapped */
  {SYS_madvise,       "madvise",       NK_ARGS_POPULATE},/* page tables of a large request at once */
};

#define NRULES (sizeof rules / sizeof rules[0])
_Static_assert(NRULES <= 13, "the allow-list has at most 13 syscalls");

const nk_syscall_rule *nk_seccomp_rules(size_t *count) {
  *count = NRULES;
  return rules;
}

/* Linux 5.14's values, for C libraries that predate them (an older
** kernel answers EINVAL, and the caller faults the pages in instead). */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define DATA_NR      offsetof(struct seccomp_data, nr)
#define DATA_ARCH    offsetof(struct seccomp_data, arch)
#define DATA_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))   /* little-endian */
#define X32_SYSCALL_BIT 0x40000000u

/* Instructions after a rule's nr check: its argument checks and the allow. */
static size_t check_len(uint8_t check) {
  return check == NK_ARGS_W_XOR_X ? 4 : check == NK_ARGS_FUTEX ? 7 : check == NK_ARGS_FD0 ? 5
       : check == NK_ARGS_POPULATE ? 6 : 1;
}

/* Program:  arch check, x32 check, then per rule "nr == rule ? body :
** next rule", and the kill at the very end.  Every size is known in
** advance, so jumps to the kill are computed, not patched. */
size_t nk_seccomp_build(struct sock_filter *out, size_t cap, uint32_t kill_action) {
  size_t total = 4 + 1;
  for (size_t r = 0; r < NRULES; r++) total += 1 + check_len(rules[r].check);
  if (total > cap || total > 255) return 0;
  size_t kill = total - 1, n = 0;
#define EMIT(ins) (out[n] = (struct sock_filter)ins, n++)
#define TO_KILL ((uint8_t)(kill - n - 1))
  EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, TO_KILL));
  EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_NR));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, TO_KILL, 0));
  for (size_t r = 0; r < NRULES; r++) {
    EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)rules[r].nr, 0,
                  (uint8_t)check_len(rules[r].check)));
    switch (rules[r].check) {
    case NK_ARGS_W_XOR_X:
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(2)));
      EMIT(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, TO_KILL, 0));
      break;
    case NK_ARGS_FUTEX:
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(1)));
      EMIT(BPF_STMT(BPF_ALU | BPF_AND | BPF_K,
                    ~(uint32_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT, 3, 0));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE, 2, 0));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT_BITSET, 1, 0));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE_BITSET, 0, TO_KILL));
      break;
    case NK_ARGS_FD0:            /* the kernel reads fd as an unsigned int: both halves */
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(0)));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, TO_KILL));
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(0) + 4));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, TO_KILL));
      break;
    case NK_ARGS_POPULATE:       /* the kernel reads an int: the high half must be 0 too */
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(2)));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_READ, 1, 0));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 0, TO_KILL));
      EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, DATA_ARG_LO(2) + 4));
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, TO_KILL));
      break;
    default:
      break;
    }
    EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  EMIT(BPF_STMT(BPF_RET | BPF_K, kill_action));
#undef TO_KILL
#undef EMIT
  return n;
}

/* ---- report helpers ---- */

static void note(nk_chan_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(nk_chan_report *rep, const char *fmt, ...) {
  size_t used = strnlen(rep->notes, sizeof rep->notes - 1);
  if (used && used + 2 < sizeof rep->notes) {
    memcpy(rep->notes + used, "; ", 3);
    used += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rep->notes + used, sizeof rep->notes - used, fmt, ap);
  va_end(ap);
}

/* Records the outcome of one step: ok, or failed with errno. */
static void outcome(nk_chan_report *rep, uint32_t bit, bool ok, const char *what) {
  if (ok) {
    rep->achieved |= bit;
  } else {
    rep->failed |= bit;
    note(rep, "%s: %s", what, strerror(errno));
  }
}

static int fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
  return -1;
}

/* ---- seccomp ---- */

int nk_seccomp_install(nk_chan_report *rep, char *err, size_t errlen) {
  struct sock_filter prog[96];
  uint32_t kill = SECCOMP_RET_KILL_PROCESS;
  if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &kill)) {
    /* Linux < 4.14: a forbidden call kills the thread that made it; a
    ** dead lane thread leaves its host waiter to the call timeout */
    note(rep, "seccomp: no SECCOMP_RET_KILL_PROCESS (%s), using KILL_THREAD", strerror(errno));
    kill = SECCOMP_RET_KILL_THREAD;
  }
  size_t n = nk_seccomp_build(prog, sizeof prog / sizeof prog[0], kill);
  if (!n) {
    snprintf(err, errlen, "seccomp filter does not fit its buffer");
    return -1;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
    return fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  /* TSYNC: every thread of the process (lane threads made before the
  ** filter) gets it, and no_new_privs with it; a thread that could not
  ** take it makes this fail */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog))
    return fail(err, errlen, "installing the seccomp filter");
  rep->achieved |= NUB_LOCK_NO_NEW_PRIVS | NUB_LOCK_SECCOMP;
  rep->seccomp_syscalls = (uint32_t)NRULES;
  rep->seccomp_insns = (uint32_t)n;
  return 0;
}

/* ---- the other steps ---- */

/* An empty read-only tmpfs becomes the root; the old root is detached.
** Needs a mount namespace we own (the host created one). */
static bool detach_fs(nk_chan_report *rep) {
  const char *step = "making / private";
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) goto fail;
  step = "mounting an empty tmpfs on /tmp";
  if (mount("nub-empty", "/tmp", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=4k,mode=0555"))
    goto fail;
  step = "pivot_root to the empty tmpfs";
  if (chdir("/tmp") || syscall(SYS_pivot_root, ".", ".")) goto fail;
  step = "detaching the old root";
  if (umount2(".", MNT_DETACH) || chdir("/")) goto fail;
  return true;
fail:
  note(rep, "filesystem: %s: %s", step, strerror(errno));
  return false;
}

/* Empty bounding set: nothing can ever regain a capability, even through
** an execve (there is none: the filter forbids it).  Needs CAP_SETPCAP,
** so it comes before drop_caps.  Caps past the kernel's last are EINVAL
** for PR_CAPBSET_READ, which ends the loop. */
static bool clear_bounding_set(void) {
  int cap = 0;
  for (; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) return false;
  return cap > 0 && errno == EINVAL;
}

/* Root without a user namespace (the host's fallback): become
** NK_GUEST_ID after the filesystem is detached, so the guest is not root
** outside either.  With a user namespace the host already mapped it.
** Each refusal is noted; the host checks the ids from outside. */
static void drop_root(nk_chan_report *rep) {
  if (setgroups(0, NULL)) note(rep, "dropping supplementary groups: %s", strerror(errno));
  if (setresgid(NK_GUEST_ID, NK_GUEST_ID, NK_GUEST_ID))
    note(rep, "setresgid(%u): %s", NK_GUEST_ID, strerror(errno));
  if (setresuid(NK_GUEST_ID, NK_GUEST_ID, NK_GUEST_ID))
    note(rep, "setresuid(%u): %s", NK_GUEST_ID, strerror(errno));
}

static bool drop_caps(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) ||
      syscall(SYS_capset, &hdr, data) || syscall(SYS_capget, &hdr, data))
    return false;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    if (data[i].effective | data[i].permitted | data[i].inheritable) {
      errno = EPERM;
      return false;
    }
  return true;
}

static const struct { int resource; const char *name; } zero_limits[] = {
  {RLIMIT_NOFILE, "RLIMIT_NOFILE"},     /* no new descriptors */
  {RLIMIT_NPROC, "RLIMIT_NPROC"},       /* no new processes */
  {RLIMIT_FSIZE, "RLIMIT_FSIZE"},       /* no file writes past keep_fd's end (below) */
  {RLIMIT_CORE, "RLIMIT_CORE"},         /* no core dumps of guest memory */
  {RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"},
  {RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"},
  {RLIMIT_LOCKS, "RLIMIT_LOCKS"},
};

/* Every limit 0, but RLIMIT_FSIZE: the size of keep_fd, so that the
** kernel can store caps into its own heap through the memfd (pwritev,
** docs/sandbox.md) yet never make the file one byte longer.  A write past
** it fails with EFBIG (the kernel then copies by hand) rather than
** raising SIGXFSZ, whose default would kill the guest. */
static bool set_limits(int keep_fd, nk_chan_report *rep) {
  bool all = true;
  off_t end = keep_fd >= 0 ? lseek(keep_fd, 0, SEEK_END) : 0;
  if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR) {
    note(rep, "ignoring SIGXFSZ: %s", strerror(errno));
    all = false;
  }
  for (size_t i = 0; i < sizeof zero_limits / sizeof zero_limits[0]; i++) {
    rlim_t lim = zero_limits[i].resource == RLIMIT_FSIZE && end > 0 ? (rlim_t)end : 0;
    struct rlimit zero = {lim, lim};
    if (setrlimit(zero_limits[i].resource, &zero)) {
      note(rep, "%s: %s", zero_limits[i].name, strerror(errno));
      all = false;
    }
  }
  return all;
}

/* All descriptors but keep (-1: none). */
static bool close_fds(int keep) {
  if (keep < 0) return syscall(SYS_close_range, 0u, ~0u, 0u) == 0;
  return (keep == 0 || syscall(SYS_close_range, 0u, (unsigned)keep - 1, 0u) == 0) &&
         syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0;
}

int nk_lockdown(uint32_t namespaces, int keep_fd, nk_chan_report *rep,
                int (*make_threads)(void *ud, char *err, size_t errlen), void *ud, char *err,
                size_t errlen) {
  rep->namespaces = namespaces;
  if (namespaces & NUB_NS_MOUNT) {
    if (detach_fs(rep)) rep->achieved |= NUB_LOCK_FS_DETACHED;
    else rep->failed |= NUB_LOCK_FS_DETACHED;
  }
  outcome(rep, NUB_LOCK_CAPBSET_CLEARED, clear_bounding_set(),
          "clearing the capability bounding set");
  /* the host checks the ids from outside (NUB_LOCK_UNPRIVILEGED) */
  if (!(namespaces & NUB_NS_USER) && getuid() == 0) drop_root(rep);
  /* after every change of ids: they clear the parent-death signal */
  outcome(rep, NUB_LOCK_PDEATHSIG, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0,
          "PR_SET_PDEATHSIG");
  outcome(rep, NUB_LOCK_FDS_CLOSED, close_fds(keep_fd), "close_range");
  outcome(rep, NUB_LOCK_NOT_DUMPABLE, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE");
  outcome(rep, NUB_LOCK_CAPS_DROPPED, drop_caps(), "dropping capabilities");
  /* threads copy the ids, capabilities and bounding set of this one:
  ** made now, they have what it has; RLIMIT_NPROC = 0 and the filter
  ** forbid making any later */
  if (make_threads && make_threads(ud, err, errlen)) return -1;
  if (set_limits(keep_fd, rep)) rep->achieved |= NUB_LOCK_RLIMITS;
  else rep->failed |= NUB_LOCK_RLIMITS;
  if (nk_seccomp_install(rep, err, errlen)) {
    rep->failed |= NUB_LOCK_SECCOMP;
    return -1;
  }
  return 0;
}
