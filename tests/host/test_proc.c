/*
** The proc backend: lockdown as seen from outside the guest, and recovery
** from every fault the test guest (nub-guest-test) can inject through
** NUB_FN_TEST: a forbidden system call, a W+X mapping, a crash, a hang,
** an exit, garbage responses, doorbell abuse, and an outside kill.
** After each death the next call must find a fresh guest holding every
** cap published before.
*/
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/guest_ext.h"
#include "host_test_util.h"

static nub_options test_guest_options(uint32_t timeout_ms) {
  nub_options o = ht_options("nub-guest-test");
  o.backend = NUB_BACKEND_PROC;
  o.call_timeout_ms = timeout_ms;
  return o;
}

static struct nub_sandbox_report report_of(nub *n) {
  struct nub_sandbox_report r;
  assert_int_equal(nub_sandbox_report(n, &r, NULL), NUB_OK);
  return r;
}

/* Inject fault op; returns the error code, message in err. */
static int inject(nub *n, uint8_t op, nub_error *err) {
  uint8_t reply[64];
  size_t got;
  return nub_call_raw(n, NUB_FN_TEST, &op, 1, reply, sizeof reply, &got, err);
}

static void expect_msg(const nub_error *err, const char *part) {
  print_message("    %s: %s\n", nub_errcode_name(err->code), err->msg);
  if (!strstr(err->msg, part)) fail_msg("message '%s' lacks '%s'", err->msg, part);
}

/* The fault killed the guest; the next call runs on a new one holding the
** caps published before.  Returns the new report. */
static struct nub_sandbox_report expect_recovered(nub *n, const nub_cap_bundle *b, int32_t old_pid,
                                                  uint32_t restarts) {
  struct nub_sandbox_report r = report_of(n);
  assert_int_equal(r.restarts, restarts);
  assert_true(r.guest_pid != old_pid);
  assert_true(r.lockdown & NUB_LOCK_SECCOMP);
  uint64_t v;
  assert_int_equal(nub_smoke(n, &v, NULL), NUB_OK);
  assert_int_equal(v, NUB_SMOKE_VALUE);
  nub_invocation_result res = ht_add(n, b, 20, 22);      /* re-published Image + Instance */
  assert_int_equal(res.exit_reason, NUB_EXIT_HALT);
  assert_int_equal(res.return_value, 42);
  uint8_t wire[4096];
  size_t len;
  assert_int_equal(nub_lookup(n, b->items[b->instance].hash, wire, sizeof wire, &len, NULL), NUB_OK);
  assert_int_equal(len, b->items[b->instance].len);
  return r;
}

/* Opens the test guest with the add caps published and checked. */
static nub *open_with_caps(uint32_t timeout_ms, nub_cap_bundle *b) {
  nub_options o = test_guest_options(timeout_ms);
  nub *n = ht_open(&o);
  ht_add_bundle(b);
  ht_publish(n, b);
  assert_int_equal(ht_add(n, b, 1, 2).return_value, 3);
  return n;
}

/* A fault that kills the guest: the call fails with code and a message
** naming what happened, the guest is replaced, the caps are back. */
static void fault_recovers(uint8_t op, int code, const char *why, uint32_t timeout_ms) {
  nub_cap_bundle b;
  nub *n = open_with_caps(timeout_ms, &b);
  int32_t pid = report_of(n).guest_pid;
  nub_error err;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(inject(n, op, &err), code);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("    noticed and restarted in %.2f ms\n",
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  expect_msg(&err, why);
  expect_msg(&err, "guest restarted with 2 caps re-published");
  expect_recovered(n, &b, pid, 1);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

static void forbidden_syscall_recovers(void **state) {
  (void)state;
  fault_recovers(NK_TEST_SYSCALL, NUB_ERR_GUEST_DIED, "killed by SIGSYS (a system call outside", 0);
}

static void wx_mapping_recovers(void **state) {
  (void)state;
  fault_recovers(NK_TEST_WX, NUB_ERR_GUEST_DIED, "killed by SIGSYS", 0);
}

static void crash_recovers(void **state) {
  (void)state;
  fault_recovers(NK_TEST_SEGV, NUB_ERR_GUEST_DIED, "after SIGSEGV (code 1) at address 0x10", 0);
}

static void hang_is_killed_after_the_timeout(void **state) {
  (void)state;
  fault_recovers(NK_TEST_HANG, NUB_ERR_TIMEOUT, "did not answer within 300 ms", 300);
}

static void exit_recovers(void **state) {
  (void)state;
  fault_recovers(NK_TEST_EXIT, NUB_ERR_GUEST_DIED, "exited with status 3", 0);
}

static void broken_doorbell_is_a_protocol_error(void **state) {
  (void)state;
  /* no timeout: only the busy word can end this call */
  fault_recovers(NK_TEST_BAD_BUSY, NUB_ERR_PROTOCOL, "broke the doorbell protocol", 0);
}

static void scribbled_control_page_recovers(void **state) {
  (void)state;
  fault_recovers(NK_TEST_SCRIBBLE, NUB_ERR_PROTOCOL, "broke the doorbell protocol (busy word 0xa5a5a5a5", 0);
}

/* A directory the guest garbled: lookups never crash; a published cap
** comes from the host's copy, anything else is a protocol error. */
static void garbage_directory_fails_lookups(void **state) {
  (void)state;
  nub_cap_bundle b;
  nub *n = open_with_caps(0, &b);
  uint8_t wire[4096];
  size_t len;
  nub_error err;
  nub_hash unknown;
  memset(unknown, 0x5A, sizeof unknown);
  assert_int_equal(inject(n, NK_TEST_HEAP_GARBAGE, &err), NUB_OK);
  assert_int_equal(nub_lookup(n, unknown, wire, sizeof wire, &len, &err), NUB_ERR_PROTOCOL);
  expect_msg(&err, "fails validation");
  assert_int_equal(nub_lookup(n, b.items[b.instance].hash, wire, sizeof wire, &len, &err), NUB_OK);
  assert_int_equal(len, b.items[b.instance].len);
  assert_memory_equal(wire, b.items[b.instance].wire, len);
  int32_t pid = report_of(n).guest_pid;
  assert_int_equal(inject(n, NK_TEST_SEGV, NULL), NUB_ERR_GUEST_DIED);   /* a fresh guest */
  expect_recovered(n, &b, pid, 1);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* Garbage in the response buffer is rejected; the guest lives on. */
static void garbage_responses_are_protocol_errors(void **state) {
  (void)state;
  nub_cap_bundle b;
  nub *n = open_with_caps(0, &b);
  int32_t pid = report_of(n).guest_pid;
  nub_error err;
  assert_int_equal(inject(n, NK_TEST_BAD_MAGIC, &err), NUB_ERR_PROTOCOL);
  expect_msg(&err, "bad response magic");
  assert_int_equal(inject(n, NK_TEST_BAD_LEN, &err), NUB_ERR_PROTOCOL);
  expect_msg(&err, "response length 18446744073709551615 exceeds");
  struct nub_sandbox_report r = report_of(n);
  assert_int_equal(r.guest_pid, pid);
  assert_int_equal(r.restarts, 0);
  assert_int_equal(ht_add(n, &b, 40, 2).return_value, 42);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* Wrong sequence numbers with wake-ups before the real answer. */
static void stale_wakeups_are_ignored(void **state) {
  (void)state;
  nub_cap_bundle b;
  nub *n = open_with_caps(0, &b);
  int32_t pid = report_of(n).guest_pid;
  for (int i = 0; i < 3; i++) {
    nub_error err;
    assert_int_equal(inject(n, NK_TEST_STALE, &err), NUB_OK);
    assert_int_equal(ht_add(n, &b, (uint64_t)i, 1).return_value, (uint64_t)i + 1);
  }
  assert_int_equal(report_of(n).guest_pid, pid);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* Killed from outside between calls: noticed by the next call. */
static void outside_kill_recovers(void **state) {
  (void)state;
  nub_cap_bundle b;
  nub *n = open_with_caps(0, &b);
  int32_t pid = report_of(n).guest_pid;
  assert_int_equal(kill(pid, SIGKILL), 0);
  uint64_t v;
  nub_error err;
  assert_int_equal(nub_smoke(n, &v, &err), NUB_ERR_GUEST_DIED);
  expect_msg(&err, "killed by SIGKILL");
  expect_recovered(n, &b, pid, 1);
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* A host that reaps every child (a SIGCHLD handler calling waitpid(-1),
** as servers do) takes the guest's exit status: the death must still be
** noticed by the next call at once (the pidfd), with or without a call
** timeout, and the call after it must succeed on a new guest. */
static volatile sig_atomic_t reaped_by_handler;

static void reap_everything(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) reaped_by_handler++;
  errno = saved;
}

static double ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void reaping_host_notices_an_idle_death(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = reap_everything;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &sa, &old), 0);
  alarm(60);                                /* a hang (timeout 0) fails here, not at CTest's limit */
  static const uint32_t timeouts[] = {0, 10000};
  for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
    nub_cap_bundle b;
    nub *n = open_with_caps(timeouts[i], &b);
    int32_t pid = report_of(n).guest_pid;
    reaped_by_handler = 0;
    assert_int_equal(kill(pid, SIGKILL), 0);
    /* wait until the handler has reaped it: its status is gone */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (kill(pid, 0) == 0 && ms_since(&t0) < 5000) sched_yield();
    assert_int_equal(kill(pid, 0), -1);
    /* the handler may run on another thread (the handle's keeper): it
    ** counts just after its waitpid, so give it the moment */
    while (!reaped_by_handler && ms_since(&t0) < 5000) sched_yield();
    assert_true(reaped_by_handler >= 1);
    uint64_t v;
    nub_error err;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(nub_smoke(n, &v, &err), NUB_ERR_GUEST_DIED);
    double ms = ms_since(&t0);
    print_message("    call_timeout_ms %u: noticed and restarted in %.2f ms\n", timeouts[i], ms);
    expect_msg(&err, "exit status was taken by another wait");
    assert_true(ms < 2000);                 /* not a timeout, and no hang */
    expect_recovered(n, &b, pid, 1);
    nub_cap_bundle_free(&b);
    nub_close(n);
  }
  alarm(0);
  assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
}

/* Several deaths in a row: each restart re-publishes everything. */
static void repeated_deaths(void **state) {
  (void)state;
  nub_cap_bundle b;
  nub *n = open_with_caps(0, &b);
  static const uint8_t ops[] = {NK_TEST_SEGV, NK_TEST_SYSCALL, NK_TEST_EXIT};
  for (uint32_t i = 0; i < sizeof ops; i++) {
    int32_t pid = report_of(n).guest_pid;
    assert_int_equal(inject(n, ops[i], NULL), NUB_ERR_GUEST_DIED);
    expect_recovered(n, &b, pid, i + 1);
  }
  nub_cap_bundle_free(&b);
  nub_close(n);
}

/* ---- lockdown, checked from outside ---- */

static char *proc_file(int32_t pid, const char *name) {
  static char buf[8192];
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void expect_status_line(const char *status, const char *line) {
  if (!strstr(status, line)) fail_msg("guest /proc status lacks '%s'", line);
}

/* The guest is in its own namespace of this kind (/proc/<pid>/ns/<kind>). */
static void expect_other_ns(int32_t pid, const char *kind) {
  char self_path[64], guest_path[64], self_ns[256], guest_ns[256];
  snprintf(self_path, sizeof self_path, "/proc/self/ns/%s", kind);
  snprintf(guest_path, sizeof guest_path, "/proc/%d/ns/%s", (int)pid, kind);
  ssize_t a = readlink(self_path, self_ns, sizeof self_ns - 1);
  ssize_t c = readlink(guest_path, guest_ns, sizeof guest_ns - 1);
  assert_true(a > 0 && c > 0);
  self_ns[a] = guest_ns[c] = 0;
  print_message("    %s: host %s, guest %s\n", kind, self_ns, guest_ns);
  assert_string_not_equal(self_ns, guest_ns);
}

static void guest_is_locked_down(void **state) {
  (void)state;
  nub_options o = ht_options(NULL);
  o.backend = NUB_BACKEND_PROC;
  nub *n = ht_open(&o);
  struct nub_sandbox_report r = report_of(n);
  assert_true(r.isolated);
  uint32_t required = NUB_LOCK_SECCOMP | NUB_LOCK_NO_NEW_PRIVS | NUB_LOCK_FDS_CLOSED |
                      NUB_LOCK_RLIMITS | NUB_LOCK_CAPS_DROPPED | NUB_LOCK_NOT_DUMPABLE |
                      NUB_LOCK_UNPRIVILEGED;
  /* the bounding set needs CAP_SETPCAP: root, or root inside a user namespace */
  if (geteuid() == 0 || (r.namespaces & NUB_NS_USER)) required |= NUB_LOCK_CAPBSET_CLEARED;
  assert_int_equal(r.lockdown & required, required);
  assert_true(r.seccomp_syscalls > 0 && r.seccomp_syscalls <= 13);
  /* whatever could not be had is explained */
  if (r.namespaces != 0xFF || r.lockdown_failed) assert_true(r.notes[0] != 0);
  if (!(r.namespaces & NUB_NS_TIME)) assert_non_null(strstr(r.notes, "time namespace: "));
  /* never root outside: a root host's guest is NK_GUEST_ID (65534) */
  unsigned uid = geteuid() == 0 ? 65534u : (unsigned)geteuid();
  unsigned gid = geteuid() == 0 ? 65534u : (unsigned)getegid();
  assert_int_equal(r.guest_uid, uid);
  assert_int_equal(r.guest_gid, gid);
  if (r.namespaces & NUB_NS_MOUNT) assert_true(r.lockdown & NUB_LOCK_FS_DETACHED);
  assert_string_equal(nub_sandbox_level(&r), r.namespaces ? "proc+ns+seccomp" : "proc+seccomp");

  char *status = proc_file(r.guest_pid, "status");
  assert_non_null(status);
  expect_status_line(status, "Seccomp:\t2");
  expect_status_line(status, "NoNewPrivs:\t1");
  expect_status_line(status, "CapEff:\t0000000000000000");
  expect_status_line(status, "CapPrm:\t0000000000000000");
  if (required & NUB_LOCK_CAPBSET_CLEARED) expect_status_line(status, "CapBnd:\t0000000000000000");
  char ids[64];
  snprintf(ids, sizeof ids, "Uid:\t%u\t%u\t%u\t%u", uid, uid, uid, uid);
  expect_status_line(status, ids);
  snprintf(ids, sizeof ids, "Gid:\t%u\t%u\t%u\t%u", gid, gid, gid, gid);
  expect_status_line(status, ids);
  char fd_path[64];
  snprintf(fd_path, sizeof fd_path, "/proc/%d/fd", (int)r.guest_pid);
  /* not dumpable: only root, or the owner of the guest's user namespace
  ** (this user, capable there), may look at its descriptors and namespaces */
  if (geteuid() == 0 || (r.namespaces & NUB_NS_USER)) {
    DIR *d = opendir(fd_path);
    assert_non_null(d);
    int open_fds = 0;
    for (struct dirent *e; (e = readdir(d));) open_fds += e->d_name[0] != '.';
    closedir(d);
    /* not even stdin: only the memfd on fd 0, whose heap part invocations
    ** map copy-on-write */
    assert_int_equal(open_fds, 1);
    char heap_fd[96], target[256];
    snprintf(heap_fd, sizeof heap_fd, "%s/0", fd_path);
    ssize_t tl = readlink(heap_fd, target, sizeof target - 1);
    assert_true(tl > 0);
    target[tl] = 0;
    assert_non_null(strstr(target, "memfd:nub-guest"));
    if (r.namespaces & NUB_NS_NET) expect_other_ns(r.guest_pid, "net");
    if (r.namespaces & NUB_NS_USER) expect_other_ns(r.guest_pid, "user");
    if (r.namespaces & NUB_NS_TIME) expect_other_ns(r.guest_pid, "time");
  } else {
    assert_int_equal(access(fd_path, R_OK), -1);
  }
  nub_close(n);
  /* closing reaps it */
  assert_null(proc_file(r.guest_pid, "status"));
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int rc = fputs(text, f) < 0;
  return fclose(f) || rc ? -1 : 0;
}

/* Where user namespaces are refused, the guest gets the others, and the
** report says which set failed and why.  A user namespace of our own with
** max_user_namespaces = 0 plays that kernel (and max_time_namespaces = 0
** one without time namespaces).  As root, the test maps
** 65534 into it as well (the parent writes the map), and the guest, root
** there without a user namespace of its own, must drop to it itself. */
static void namespace_fallback_is_reported(void **state) {
  (void)state;
  bool root = geteuid() == 0;
  char uid_map[64], gid_map[64], path[64];
  snprintf(uid_map, sizeof uid_map, root ? "0 0 1\n65534 65534 1" : "0 %u 1", (unsigned)geteuid());
  snprintf(gid_map, sizeof gid_map, root ? "0 0 1\n65534 65534 1" : "0 %u 1", (unsigned)getegid());
  int go[2], mapped[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(mapped), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int step = 1;
    char c;
    if (unshare(CLONE_NEWUSER) || write(go[1], "u", 1) != 1 || read(mapped[0], &c, 1) != 1 ||
        (!root && (write_file("/proc/self/setgroups", "deny") ||
                   write_file("/proc/self/uid_map", uid_map) ||
                   write_file("/proc/self/gid_map", gid_map))) ||
        write_file("/proc/sys/user/max_user_namespaces", "0") ||
        write_file("/proc/sys/user/max_time_namespaces", "0"))
      _exit(step);
    nub_options o = ht_options(NULL);
    o.backend = NUB_BACKEND_PROC;
    nub *n;
    uint64_t v;
    struct nub_sandbox_report r;
    step = 2;
    if (nub_open(&o, &n, NULL) || nub_smoke(n, &v, NULL) || nub_sandbox_report(n, &r, NULL)) _exit(step);
    printf("    notes: %s\n", r.notes);
    fflush(stdout);
    step = 3;
    if (r.namespaces != (0x7Fu & ~NUB_NS_USER)) _exit(step);
    step = 4;
    if (!strstr(r.notes, "namespaces user+pid+net+ipc+mount+uts+cgroup: ")) _exit(step);
    step = 7;                             /* refused, reported, not fatal */
    if (!strstr(r.notes, "time namespace: unshare: No space left on device")) _exit(step);
    step = 5;
    uint32_t want = NUB_LOCK_SECCOMP | NUB_LOCK_FS_DETACHED | NUB_LOCK_CAPS_DROPPED |
                    NUB_LOCK_CAPBSET_CLEARED;
    if ((r.lockdown & want) != want) _exit(step);
    /* root: the guest became 65534; otherwise 65534 is not mapped here, and
    ** the refusal is reported (the guest is root only in this namespace) */
    step = 6;
    if (root ? r.guest_uid != 65534 || !(r.lockdown & NUB_LOCK_UNPRIVILEGED)
             : !(r.lockdown_failed & NUB_LOCK_UNPRIVILEGED) || !strstr(r.notes, "setresuid(65534): "))
      _exit(step);
    nub_close(n);
    _exit(0);
  }
  close(go[1]);
  close(mapped[0]);
  char c;
  assert_int_equal(read(go[0], &c, 1), 1);
  if (root) {   /* only a writer outside may map more than its own id */
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    assert_int_equal(write_file(path, uid_map), 0);
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    assert_int_equal(write_file(path, gid_map), 0);
  }
  assert_int_equal(write(mapped[1], "m", 1), 1);
  close(go[0]);
  close(mapped[1]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fail_msg("fallback child failed at step %d (status 0x%x)",
                                                   WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
}

/* Guests start under a tiny RLIMIT_NOFILE: the host needs two free
** descriptors (the memfd and the pidfd), the guest gets the memfd as its
** fd 0.  5 leaves exactly 3 and 4 free next to stdin, stdout and stderr;
** 16 failed before ("moving the memfds to fds 3 and 4"). */
static void low_fd_limits_still_start_guests(void **state) {
  (void)state;
  static const rlim_t limits[] = {5, 16};
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      struct rlimit rl = {limits[i], limits[i]};
      int step = 1;
      if (close_range(3, ~0u, 0) || setrlimit(RLIMIT_NOFILE, &rl)) _exit(step);
      nub_options o = test_guest_options(0);
      nub *n;
      nub_error err;
      nub_cap_bundle b;
      step = 2;
      if (nub_open(&o, &n, &err)) {
        printf("    limit %u: %s\n", (unsigned)limits[i], err.msg);
        fflush(stdout);
        _exit(step);
      }
      ht_add_bundle(&b);
      nub_hash h;
      step = 3;
      for (uint32_t c = 0; c < b.count; c++)
        if (nub_put_cap(n, b.items[c].wire, b.items[c].len, h, NULL)) _exit(step);
      const uint64_t args[4] = {20, 22, 0, 0};
      nub_invocation_result r;
      step = 4;
      if (nub_invoke(n, b.items[b.instance].hash, 0, args, 100, &r, NULL) || r.return_value != 42)
        _exit(step);
      /* and after a restart */
      int32_t guest = report_of(n).guest_pid;
      step = 5;
      if (kill(guest, SIGKILL) || nub_invoke(n, b.items[b.instance].hash, 0, args, 100, &r, NULL) !=
                                      NUB_ERR_GUEST_DIED)
        _exit(step);
      step = 6;
      if (nub_invoke(n, b.items[b.instance].hash, 0, args, 100, &r, NULL) || r.return_value != 42)
        _exit(step);
      printf("    RLIMIT_NOFILE %u: invoked 20 + 22 = %llu, also after a restart\n",
             (unsigned)limits[i], (unsigned long long)r.return_value);
      fflush(stdout);
      nub_close(n);
      nub_cap_bundle_free(&b);
      _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
      fail_msg("RLIMIT_NOFILE %u: child failed at step %d (status 0x%x)", (unsigned)limits[i],
               WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
  }
}

static void setup_failures_are_reported(void **state) {
  (void)state;
  nub_options o = test_guest_options(0);
  nub *n;
  nub_error err;
  o.guest_path = "/nonexistent/nub-guest";
  assert_int_equal(nub_open(&o, &n, &err), NUB_ERR_SANDBOX);
  expect_msg(&err, "/nonexistent/nub-guest");
  o.guest_path = "/bin/true";                  /* exits without booting */
  assert_int_equal(nub_open(&o, &n, &err), NUB_ERR_SANDBOX);
  expect_msg(&err, "exited with status 0");
  o = test_guest_options(0);
  o.engine = "no-such-engine";
  assert_int_equal(nub_open(&o, &n, &err), NUB_ERR_SANDBOX);
  expect_msg(&err, "unknown engine 'no-such-engine'");
}

/* A root host's guest runs as an unprivileged id that may not walk the
** path to nub-guest (here a 0700 directory): the host's side opens it and
** the guest starts from the descriptor. */
static void guest_in_a_private_directory_starts(void **state) {
  (void)state;
  nub_options o = test_guest_options(0);
  char dir[] = "/tmp/nub-private-XXXXXX", path[64], cmd[4200];
  nub_cap_bundle b;
  assert_non_null(mkdtemp(dir));                 /* mode 0700 */
  snprintf(path, sizeof path, "%s/nub-guest", dir);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", o.guest_path, path);
  assert_int_equal(system(cmd), 0);
  o.guest_path = path;
  ht_add_bundle(&b);
  nub *n = ht_open(&o);
  ht_publish(n, &b);
  assert_int_equal(ht_add(n, &b, 20, 22).return_value, 42);
  nub_close(n);
  nub_cap_bundle_free(&b);
  unlink(path);
  rmdir(dir);
}

/* Each guest's heap sits at the same address in host and guest: the
** default, the next free 64 GiB slot, or the one asked for. */
static void heaps_at_their_addresses(void **state) {
  (void)state;
  nub_options o = test_guest_options(0);
  nub_cap_bundle b;
  ht_add_bundle(&b);
  nub *n[3];
  uint64_t want[3] = {0, 0, 0x400000000000ull};
  for (int i = 0; i < 3; i++) {
    o.guest_va_base = want[i];
    n[i] = ht_open(&o);
    ht_publish(n[i], &b);
  }
  uint64_t base[3];
  for (int i = 0; i < 3; i++) {
    struct nub_boot_info bi;
    uint8_t wire[4096];
    size_t len;
    assert_int_equal(nub_boot_info(n[i], &bi, NULL), NUB_OK);
    base[i] = bi.guest_va_base;
    assert_int_equal(nub_lookup(n[i], b.items[b.instance].hash, wire, sizeof wire, &len, NULL), NUB_OK);
    assert_int_equal(ht_add(n[i], &b, (uint64_t)i, 40).return_value, (uint64_t)i + 40);
  }
  assert_true(base[0] == NUB_GUEST_VA_BASE_DEFAULT);
  assert_true(base[1] == NUB_GUEST_VA_BASE_DEFAULT + (1ull << 36));
  assert_true(base[2] == 0x400000000000ull);
  for (int i = 0; i < 3; i++) nub_close(n[i]);
  nub_cap_bundle_free(&b);
}

static void ping_and_inproc_report(void **state) {
  (void)state;
  nub_options o = test_guest_options(0);
  nub *n = ht_open(&o);
  for (int i = 0; i < 100; i++) assert_int_equal(nub_ping(n, NULL), NUB_OK);
  nub_close(n);
  o.backend = NUB_BACKEND_INPROC;
  n = ht_open(&o);
  assert_int_equal(nub_ping(n, NULL), NUB_ERR_ARG);
  struct nub_sandbox_report r = report_of(n);
  assert_false(r.isolated);
  assert_string_equal(nub_sandbox_level(&r), "inproc");
  assert_non_null(strstr(r.notes, "no isolation"));
  assert_int_equal(r.guest_uid, -1);             /* no guest process to have ids */
  assert_int_equal(r.guest_gid, -1);
  nub_close(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(guest_is_locked_down),
    cmocka_unit_test(setup_failures_are_reported),
    cmocka_unit_test(guest_in_a_private_directory_starts),
    cmocka_unit_test(low_fd_limits_still_start_guests),
    cmocka_unit_test(namespace_fallback_is_reported),
    cmocka_unit_test(ping_and_inproc_report),
    cmocka_unit_test(heaps_at_their_addresses),
    cmocka_unit_test(forbidden_syscall_recovers),
    cmocka_unit_test(wx_mapping_recovers),
    cmocka_unit_test(crash_recovers),
    cmocka_unit_test(hang_is_killed_after_the_timeout),
    cmocka_unit_test(exit_recovers),
    cmocka_unit_test(broken_doorbell_is_a_protocol_error),
    cmocka_unit_test(garbage_responses_are_protocol_errors),
    cmocka_unit_test(scribbled_control_page_recovers),
    cmocka_unit_test(garbage_directory_fails_lookups),
    cmocka_unit_test(stale_wakeups_are_ignored),
    cmocka_unit_test(outside_kill_recovers),
    cmocka_unit_test(reaping_host_notices_an_idle_death),
    cmocka_unit_test(repeated_deaths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
