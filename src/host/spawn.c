/*
** Starting and ending nub-guest processes (spawn.h).
**
** The child of clone(CLONE_VM | CLONE_VFORK) shares our memory until its
** execve, like posix_spawn's: it may only make raw system calls on data
** the parent prepared (no allocation, no sanitizer interceptors), and the
** parent sleeps until it has exec'd or failed.
*/
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../chan/nk_chan.h"
#include "spawn.h"

#define CHILD_STACK (64u << 10)

/* Namespace sets to try, most isolated first.  Without user namespaces
** only root can create the others. */
static const struct { int clone_flag; uint32_t bit; const char *name; } ns_table[] = {
  {CLONE_NEWUSER, NUB_NS_USER, "user"},   {CLONE_NEWPID, NUB_NS_PID, "pid"},
  {CLONE_NEWNET, NUB_NS_NET, "net"},      {CLONE_NEWIPC, NUB_NS_IPC, "ipc"},
  {CLONE_NEWNS, NUB_NS_MOUNT, "mount"},   {CLONE_NEWUTS, NUB_NS_UTS, "uts"},
  {CLONE_NEWCGROUP, NUB_NS_CGROUP, "cgroup"},
  {0, NUB_NS_TIME, "time"},   /* unshared by the child, never a clone flag (not a candidate bit) */
};
#define NS_COUNT (sizeof ns_table / sizeof ns_table[0])
#define NS_ALL   0x7Fu
static const uint32_t ns_candidates[] = {NS_ALL, NS_ALL & ~NUB_NS_USER, 0};
#define CANDIDATES (sizeof ns_candidates / sizeof ns_candidates[0])

/* The first candidate that worked, shared by every spawn of the process. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t probed;
static char probe_notes[200];

static int clone_flags_of(uint32_t ns) {
  int f = 0;
  for (size_t i = 0; i < NS_COUNT; i++) if (ns & ns_table[i].bit) f |= ns_table[i].clone_flag;
  return f;
}

static void ns_names(uint32_t ns, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (size_t i = 0; i < NS_COUNT && used < len; i++)
    if (ns & ns_table[i].bit)
      used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "+" : "", ns_table[i].name);
  if (!used) snprintf(buf, len, "none");
}

/* ---- the child, between clone and execve ---- */

typedef struct child_args {
  const char *path;
  char *const *argv, *const *envp;
  int mem_fd;
  uint32_t ns;
  uint32_t *ns_out;             /* the child stores ns here before execve */
  bool drop_root;               /* root host: become NK_GUEST_ID before the user namespace */
  const char *uid_map, *gid_map;
  size_t uid_map_len, gid_map_len;
  const char *failed_step;      /* set by the child when it gives up */
  int failed_errno;
  bool userns_failed;           /* the failed step belongs to the user namespace */
  int time_errno;               /* the time namespace was refused (not fatal) */
} child_args;

#define NO_SANITIZE __attribute__((no_sanitize("address"), no_sanitize("undefined")))

NO_SANITIZE static int write_file(const char *path, const char *s, size_t len) {
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = syscall(SYS_write, fd, s, len);
  syscall(SYS_close, fd);
  return n == (long)len ? 0 : -1;
}

/* The kernel's sigaction, for raw rt_sigaction calls. */
typedef struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
} kernel_sigaction;

/* Our handlers must never run on the child's side of the shared memory:
** every signal goes back to its default action (signals are blocked
** since before clone), then the guest starts with an empty mask. */
NO_SANITIZE static int reset_signals(void) {
  kernel_sigaction dfl = {SIG_DFL, 0, NULL, 0};
  uint64_t none = 0;
  for (int sig = 1; sig < _NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP &&
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) && errno != EINVAL)
      return -1;
  return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
}

NO_SANITIZE static int guest_child(void *p) {
  child_args *a = p;
  const char *step = "resetting signal handlers";
  if (reset_signals()) goto fail;
  /* The memfd stays, every other descriptor closes (this is our copy of
  ** the fd table: no CLONE_FILES), so the slots below exist under any
  ** RLIMIT_NOFILE.  The executable is opened now, while we may still be
  ** root. */
  step = "closing the other descriptors";
  unsigned mfd = (unsigned)a->mem_fd;
  if ((mfd > 0 && syscall(SYS_close_range, 0u, mfd - 1, 0u)) ||
      syscall(SYS_close_range, mfd + 1, ~0u, 0u))
    goto fail;
  step = "opening the guest executable";
  long xfd = syscall(SYS_openat, AT_FDCWD, a->path, O_RDONLY | O_CLOEXEC);
  if (xfd < 0) goto fail;
  unsigned x = (unsigned)xfd;
  if (a->ns & NUB_NS_USER) {
    a->userns_failed = true;
    if (a->drop_root) {
      /* root host: become NK_GUEST_ID first (every capability goes), then
      ** create the user and mount namespaces as that user, so the guest's
      ** "root inside" is NK_GUEST_ID outside, not root.  pid, net, ipc,
      ** uts and cgroup came with clone and stay root's. */
      step = "dropping supplementary groups";
      if (syscall(SYS_setgroups, 0, NULL)) goto fail;
      step = "setresgid to the guest id";
      if (syscall(SYS_setresgid, NK_GUEST_ID, NK_GUEST_ID, NK_GUEST_ID)) goto fail;
      step = "setresuid to the guest id";
      if (syscall(SYS_setresuid, NK_GUEST_ID, NK_GUEST_ID, NK_GUEST_ID)) goto fail;
      /* changing ids made us undumpable: /proc/self would stay root's */
      step = "PR_SET_DUMPABLE after the id change";
      if (syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0)) goto fail;
      step = "unshare of the user and mount namespaces";
      if (syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS)) goto fail;
    }
    /* map our uid/gid to root inside, so the guest may set up its mount
    ** namespace; it drops every capability before serving */
    step = "writing /proc/self/setgroups";
    if (write_file("/proc/self/setgroups", "deny", 4)) goto fail;
    step = "writing /proc/self/uid_map";
    if (write_file("/proc/self/uid_map", a->uid_map, a->uid_map_len)) goto fail;
    step = "writing /proc/self/gid_map";
    if (write_file("/proc/self/gid_map", a->gid_map, a->gid_map_len)) goto fail;
    a->userns_failed = false;
  }
  /* time namespace (Linux >= 5.6; becomes the guest's at execve): not
  ** fatal, the host reports it when refused */
  a->time_errno = 0;
  if (syscall(SYS_unshare, CLONE_NEWTIME)) a->time_errno = errno;
  else a->ns |= NUB_NS_TIME;
  step = "PR_SET_PDEATHSIG";
  if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) goto fail;
  /* The memfd becomes fd 0 (NK_GUEST_FD), without close-on-exec */
  step = "moving the executable's descriptor off fd 0";
  unsigned m = (unsigned)a->mem_fd;
  if (x == NK_GUEST_FD) {
    long nx = syscall(SYS_fcntl, x, F_DUPFD_CLOEXEC, 1);
    if (nx < 0 || syscall(SYS_close, x)) goto fail;
    x = (unsigned)nx;
  }
  step = "moving the memfd to fd 0";
  if (m != NK_GUEST_FD ? syscall(SYS_dup3, m, NK_GUEST_FD, 0) < 0 || syscall(SYS_close, m)
                       : syscall(SYS_fcntl, m, F_SETFD, 0) < 0)
    goto fail;
  *a->ns_out = a->ns;
  /* by descriptor: the guest may run as NK_GUEST_ID, which need not be
  ** allowed to walk the path (a build tree under /root); the descriptor
  ** is close-on-exec, so the guest starts with fd 0 alone */
  step = "execveat";
  syscall(SYS_execveat, x, "", a->argv, a->envp, AT_EMPTY_PATH);
fail:
  a->failed_errno = errno;
  a->failed_step = step;
  syscall(SYS_exit_group, 127);
  return 127;
}

/* ---- spawning ---- */

static bool ns_unavailable(int e) {
  return e == EPERM || e == EINVAL || e == ENOSPC || e == EUSERS || e == EACCES;
}

int host_spawn_guest(const char *path, int mem_fd, uint32_t *ns_out, host_child *out,
                     nub_error *err) {
  char uid_map[32], gid_map[32], *argv[] = {"nub-guest", NULL}, *envp[] = {NULL};
  child_args a = {.path = path, .argv = argv, .envp = envp, .mem_fd = mem_fd,
                  .ns_out = ns_out, .uid_map = uid_map, .gid_map = gid_map};
  /* never root outside: a root host's guest becomes NK_GUEST_ID */
  a.drop_root = geteuid() == 0;
  a.uid_map_len = (size_t)snprintf(uid_map, sizeof uid_map, "0 %u 1",
                                   a.drop_root ? NK_GUEST_ID : (unsigned)geteuid());
  a.gid_map_len = (size_t)snprintf(gid_map, sizeof gid_map, "0 %u 1",
                                   a.drop_root ? NK_GUEST_ID : (unsigned)getegid());
  void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    return host_fail(err, NUB_ERR_SYSTEM, "guest: no stack for clone: %s", strerror(errno));
  memset(out, 0, sizeof *out);
  out->pidfd = -1;
  int rc = NUB_OK;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_mutex_lock(&probe_lock);
  for (size_t i = probed;; i++) {
    int pidfd = -1;
    a.ns = ns_candidates[i];
    a.failed_step = NULL;
    a.userns_failed = false;
    int flags = clone_flags_of(a.ns);
    if (a.drop_root && (a.ns & NUB_NS_USER)) flags &= ~(CLONE_NEWUSER | CLONE_NEWNS);  /* the child's */
    pid_t pid = clone(guest_child, (char *)stack + CHILD_STACK,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | flags | SIGCHLD, &a, &pidfd);
    int e = errno;
    if (pid > 0 && a.failed_step) {
      host_child dead = {pid, pidfd, 0, ""};
      host_reap_child(&dead, false, NULL, 0);
      e = a.failed_errno;
    }
    if (pid > 0 && !a.failed_step) {
      out->pid = pid;
      out->pidfd = pidfd;
      out->namespaces = a.ns;                   /* with NUB_NS_TIME if the child got it */
      probed = i;
      int used = snprintf(out->notes, sizeof out->notes, "%s", probe_notes);
      if (a.time_errno && used >= 0 && (size_t)used < sizeof out->notes)
        snprintf(out->notes + used, sizeof out->notes - (size_t)used,
                 "%stime namespace: unshare: %s", used ? "; " : "", strerror(a.time_errno));
      break;
    }
    /* namespace trouble: note it once and try the next set */
    bool userns_step = pid > 0 && a.failed_step && a.userns_failed;
    if (i + 1 < CANDIDATES && (pid < 0 ? ns_unavailable(e) : userns_step)) {
      char names[64];
      ns_names(a.ns, names, sizeof names);
      if (!probe_notes[0])
        snprintf(probe_notes, sizeof probe_notes, "namespaces %s: %s: %s", names,
                 pid < 0 ? "clone" : a.failed_step, strerror(e));
      continue;
    }
    rc = pid < 0 ? host_fail(err, NUB_ERR_SANDBOX, "guest: clone: %s", strerror(e))
                 : host_fail(err, NUB_ERR_SANDBOX, "guest %s: %s: %s", path, a.failed_step,
                             strerror(e));
    break;
  }
  pthread_mutex_unlock(&probe_lock);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  munmap(stack, CHILD_STACK);
  return rc;
}

/* ---- ending ---- */

static const char *signal_note(int sig) {
  return sig == SIGSYS ? " (a system call outside the seccomp allow-list)"
       : "";
}

int host_reap_child(host_child *c, bool kill_first, char *how, size_t howlen) {
  siginfo_t si;
  int code = -1;
  if (c->pidfd < 0) return -1;
  /* pidfd_send_signal cannot hit a recycled pid; where it does not exist
  ** (Linux < 5.1, valgrind 3.19), kill: the child is ours and unreaped
  ** (its pid stays ours), unless a SIGCHLD handler took it.  Without the
  ** kill, the wait below would never return. */
  if (kill_first && syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) &&
      errno == ENOSYS)
    kill(c->pid, SIGKILL);
  memset(&si, 0, sizeof si);
  int r;
  do r = waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | __WALL);
  while (r && errno == EINTR);
  if (!r) {
    code = si.si_code;
    if (how && code == CLD_EXITED)
      snprintf(how, howlen, "exited with status %d", si.si_status);
    else if (how)
      snprintf(how, howlen, "killed by SIG%s%s",
               sigabbrev_np(si.si_status) ? sigabbrev_np(si.si_status) : "?",
               signal_note(si.si_status));
  } else if (how && errno == ECHILD) {
    /* reaped by someone else, e.g. a SIGCHLD handler calling waitpid(-1) */
    snprintf(how, howlen, "ended (its exit status was taken by another wait in this process)");
  } else if (how) {
    snprintf(how, howlen, "could not be reaped: %s", strerror(errno));
  }
  close(c->pidfd);
  c->pidfd = -1;
  return code;
}
