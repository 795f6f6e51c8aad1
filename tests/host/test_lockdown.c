/*
** The guest's seccomp allow-list (src/guest/lockdown.c), installed in
** forked children: each allowed call passes (with its argument checks),
** anything else kills the child with SIGSYS.  After the filter the child
** makes raw system calls only and leaves through exit_group.  pwritev
** passes on fd 0 only (the heap memfd), within the file's size, and so
** does pread64 (the zero check of pages stored through it); madvise
** with MADV_POPULATE_READ or MADV_POPULATE_WRITE only.
*/
#include <errno.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/lockdown.h"

typedef void (*child_fn)(void);

/* Runs fn in a child under the filter; returns the wait status. */
static int run_filtered(child_fn fn) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    nk_chan_report rep;
    char err[200];
    memset(&rep, 0, sizeof rep);
    if (nk_seccomp_install(&rep, err, sizeof err)) syscall(SYS_exit_group, 99);
    fn();
    syscall(SYS_exit_group, 0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

/* A child that ran `what` exited 0 (else the line of its failed CHECK). */
static void expect_exit0(int st, const char *what) {
  if (!WIFEXITED(st) || WEXITSTATUS(st))
    fail_msg("%s: child status 0x%x (a check at line %d mod 256 failed), want exit 0", what, st,
             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void expect_allowed(child_fn fn) { expect_exit0(run_filtered(fn), "allowed calls"); }

static void expect_killed(child_fn fn) {
  int st = run_filtered(fn);
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS) fail_msg("child status 0x%x, want SIGSYS", st);
}

/* A failed check exits with its line number (mod 256) for the message. */
#define CHECK(cond) do { if (!(cond)) syscall(SYS_exit_group, __LINE__ & 0xFF); } while (0)

static void memory_calls(void) {
  long p = syscall(SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p > 0);
  CHECK(syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_EXEC) == 0);    /* RW -> RX: W^X */
  CHECK(syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_WRITE) == 0);
  long q = syscall(SYS_mremap, p, 8192, 16384, MREMAP_MAYMOVE);
  CHECK(q > 0);
  CHECK(syscall(SYS_mprotect, q, 16384, PROT_NONE) == 0);
  CHECK(syscall(SYS_munmap, q, 16384) == 0);
  CHECK(syscall(SYS_brk, 0) > 0);
}

static void doorbell_calls(void) {
  uint32_t word = 1;
  struct timespec zero = {0, 0}, now;
  CHECK(syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0) == 0);
  CHECK(syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0);
  CHECK(syscall(SYS_futex, &word, FUTEX_WAIT, 0, &zero, NULL, 0) == -1);  /* value differs */
  /* the C library's lock and condition variable waits (lane threads) */
  CHECK(syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME,
                0, NULL, NULL, FUTEX_BITSET_MATCH_ANY) == -1);
  CHECK(syscall(SYS_futex, &word, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, 1, NULL, NULL,
                FUTEX_BITSET_MATCH_ANY) == 0);
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now) == 0);
  CHECK(syscall(SYS_sched_yield) == 0);
}

/* madvise: only the two populate advices (22, 23), over any memory the
** guest has; the memory reads back as written.  Linux < 5.14 answers
** EINVAL: passed by the filter all the same. */
static void populate_calls(void) {
  long p = syscall(SYS_mmap, 0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p > 0);
  CHECK(syscall(SYS_madvise, p, 65536, 23 /* MADV_POPULATE_WRITE */) == 0 || errno == EINVAL);
  ((volatile uint8_t *)p)[4096] = 7;
  CHECK(syscall(SYS_madvise, p + 4096, 8192, 22 /* MADV_POPULATE_READ */) == 0 || errno == EINVAL);
  CHECK(((volatile uint8_t *)p)[4096] == 7);
  CHECK(syscall(SYS_madvise, p + 1, 100, 22) == -1 && errno == EINVAL);   /* unaligned */
}

static void madvise_with(long advice) {
  long p = syscall(SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  syscall(SYS_madvise, p, 8192, advice);
}
static void madvise_dontneed(void) { madvise_with(MADV_DONTNEED); }
static void madvise_hugepage(void) { madvise_with(MADV_HUGEPAGE); }
static void madvise_normal(void) { madvise_with(MADV_NORMAL); }         /* 0 */
static void madvise_free(void) { madvise_with(MADV_FREE); }
static void madvise_remove(void) { madvise_with(MADV_REMOVE); }
static void madvise_dofork(void) { madvise_with(MADV_DOFORK); }
static void madvise_21(void) { madvise_with(21); }                      /* MADV_PAGEOUT */
static void madvise_24(void) { madvise_with(24); }                      /* past the two */
/* the kernel reads an int: 22 in the low half, anything in the high one */
static void madvise_high_half(void) { madvise_with((1l << 32) | 22); }

static void getpid_call(void) { syscall(SYS_getpid); }
static void open_call(void) { syscall(SYS_openat, -100, "/etc/hostname", 0); }
static void write_call(void) { syscall(SYS_write, 2, "x", 1); }
static void clone_call(void) { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
static void x32_call(void) { syscall(0x40000000 | SYS_getpid); }
static void wx_mmap(void) {
  syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static void wx_mprotect(void) {
  long p = syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  syscall(SYS_mprotect, p, 4096, PROT_WRITE | PROT_EXEC);
}
static void futex_requeue(void) {
  uint32_t a = 0, b = 0;
  syscall(SYS_futex, &a, FUTEX_CMP_REQUEUE, 1, 1, &b, 0);
}

static void pwritev_fd1(void) {
  struct iovec v = {"x", 1};
  syscall(SYS_pwritev, 1, &v, 1, 0, 0);
}
/* the kernel would read fd 2^32 as 0: the filter refuses it all the same */
static void pwritev_fd_high(void) {
  struct iovec v = {"x", 1};
  syscall(SYS_pwritev, 1ull << 32, &v, 1, 0, 0);
}

static void pread_fd1(void) {
  char c;
  syscall(SYS_pread64, 1, &c, 1, 0);
}
static void pread_fd_high(void) {
  char c;
  syscall(SYS_pread64, 1ull << 32, &c, 1, 0);
}

/* fd 0 is a memfd of 8192 bytes, mapped at *view; the filter is installed
** (with the whole lockdown when full) before fn runs. */
static int with_memfd_at_fd0(bool full, void (*fn)(const uint8_t *view)) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = memfd_create("t", 0);
    if (fd < 0 || ftruncate(fd, 8192) || dup2(fd, 0) != 0) syscall(SYS_exit_group, 98);
    const uint8_t *view = mmap(NULL, 8192, PROT_READ, MAP_SHARED, 0, 0);
    nk_chan_report rep;
    char err[200];
    memset(&rep, 0, sizeof rep);
    if (view == MAP_FAILED || (full ? nk_lockdown(0, 0, &rep, NULL, NULL, err, sizeof err)
                                    : nk_seccomp_install(&rep, err, sizeof err)))
      syscall(SYS_exit_group, 99);
    fn(view);
    syscall(SYS_exit_group, 0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

/* The kernel stores caps through its heap memfd, fd 0 (nk_caps.c). */
static void pwritev_fd0(const uint8_t *view) {
  struct iovec v[2] = {{"ab", 2}, {"cd", 2}};
  CHECK(syscall(SYS_pwritev, 0, v, 2, 4096, 0) == 4);
  CHECK(!memcmp(view + 4096, "abcd", 4));
}

/* RLIMIT_FSIZE is the memfd's size: writes inside it pass, the file
** never grows (a write across the end is cut there, one past it fails
** without the SIGXFSZ that would kill the guest). */
static void pwritev_within_fd0_size(const uint8_t *view) {
  struct iovec v = {"wxyz", 4};
  CHECK(syscall(SYS_pwritev, 0, &v, 1, 0, 0) == 4);
  CHECK(!memcmp(view, "wxyz", 4));
  CHECK(syscall(SYS_pwritev, 0, &v, 1, 8190, 0) == 2);
  CHECK(view[8190] == 'w' && view[8191] == 'x');
  CHECK(syscall(SYS_pwritev, 0, &v, 1, 8192, 0) == -1);   /* EFBIG, no SIGXFSZ */
}

/* ... and reads back what it stored there without mapping it (nk_caps.c). */
static void pread_fd0(const uint8_t *view) {
  struct iovec v = {"efgh", 4};
  char back[4];
  CHECK(syscall(SYS_pwritev, 0, &v, 1, 4100, 0) == 4);
  CHECK(syscall(SYS_pread64, 0, back, 4, 4100) == 4);
  CHECK(!memcmp(back, "efgh", 4) && !memcmp(view + 4100, "efgh", 4));
}

static void heap_writes_only_through_fd0(void **state) {
  (void)state;
  expect_exit0(with_memfd_at_fd0(false, pwritev_fd0), "pwritev on fd 0");
  expect_exit0(with_memfd_at_fd0(true, pwritev_within_fd0_size), "pwritev after the lockdown");
  expect_killed(pwritev_fd1);
  expect_killed(pwritev_fd_high);
  expect_exit0(with_memfd_at_fd0(true, pread_fd0), "pread64 on fd 0 after the lockdown");
  expect_killed(pread_fd1);
  expect_killed(pread_fd_high);
}

static void allowed_calls_pass(void **state) {
  (void)state;
  expect_allowed(memory_calls);
  expect_allowed(doorbell_calls);
  expect_allowed(populate_calls);
}

static void other_madvise_kills(void **state) {
  (void)state;
  child_fn killers[] = {madvise_dontneed, madvise_hugepage, madvise_normal, madvise_free,
                        madvise_remove, madvise_dofork, madvise_21, madvise_24,
                        madvise_high_half};
  for (size_t i = 0; i < sizeof killers / sizeof killers[0]; i++) expect_killed(killers[i]);
}

static void everything_else_kills(void **state) {
  (void)state;
  child_fn killers[] = {getpid_call, open_call, write_call, clone_call, x32_call, wx_mmap,
                        wx_mprotect, futex_requeue};
  for (size_t i = 0; i < sizeof killers / sizeof killers[0]; i++) expect_killed(killers[i]);
}

static void filter_shape(void **state) {
  (void)state;
  size_t n;
  const nk_syscall_rule *rules = nk_seccomp_rules(&n);
  assert_true(n > 0 && n <= 13);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) assert_int_not_equal(rules[i].nr, rules[j].nr);
  struct sock_filter prog[128];
  size_t len = nk_seccomp_build(prog, 128, 0);
  assert_true(len > 4 && len < 128);
  assert_int_equal(nk_seccomp_build(prog, len - 1, 0), 0);   /* too small: refused */
  /* the arch check comes first, the kill last */
  assert_int_equal(prog[0].code, BPF_LD | BPF_W | BPF_ABS);
  assert_int_equal(prog[0].k, offsetof(struct seccomp_data, arch));
  assert_int_equal(prog[len - 1].code, BPF_RET | BPF_K);
  /* the report says what was installed */
  pid_t pid = fork();
  if (pid == 0) {
    nk_chan_report rep;
    char err[200];
    memset(&rep, 0, sizeof rep);
    int ok = !nk_seccomp_install(&rep, err, sizeof err) && rep.seccomp_syscalls == n &&
             rep.seccomp_insns == len && (rep.achieved & NUB_LOCK_SECCOMP) &&
             (rep.achieved & NUB_LOCK_NO_NEW_PRIVS);
    syscall(SYS_exit_group, ok ? 0 : 1);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The whole lockdown (no namespaces) in a child that then sleeps on a
** futex, checked from outside through /proc: empty bounding set, no
** capabilities, and as root the ids of NK_GUEST_ID; where a step cannot
** be had (the bounding set needs CAP_SETPCAP) the report says so. */
static char *status_of(pid_t pid) {
  static char buf[8192];
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void expect_line(const char *status, const char *line) {
  if (!strstr(status, line)) fail_msg("status lacks '%s'", line);
}

static void lockdown_clears_bounding_set_and_root(void **state) {
  (void)state;
  uint32_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(shared != MAP_FAILED);
  nk_chan_report *rep = (nk_chan_report *)(shared + 16);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char err[200];
    memset(rep, 0, sizeof *rep);
    int rc = nk_lockdown(0, -1, rep, NULL, NULL, err, sizeof err);
    __atomic_store_n(&shared[0], rc ? 2 : 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&shared[1], __ATOMIC_SEQ_CST))
      syscall(SYS_futex, &shared[1], FUTEX_WAIT, 0, NULL, NULL, 0);
    syscall(SYS_exit_group, 0);
  }
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 5000 && !__atomic_load_n(&shared[0], __ATOMIC_SEQ_CST); i++) nanosleep(&ms, NULL);
  assert_int_equal(shared[0], 1);
  char *st = status_of(pid);
  print_message("    notes: %s\n", rep->notes);
  expect_line(st, "CapEff:\t0000000000000000");
  expect_line(st, "Seccomp:\t2");
  if (geteuid() == 0) {
    expect_line(st, "CapBnd:\t0000000000000000");
    expect_line(st, "Uid:\t65534\t65534\t65534\t65534");
    expect_line(st, "Gid:\t65534\t65534\t65534\t65534");
    assert_true(rep->achieved & NUB_LOCK_CAPBSET_CLEARED);
  } else {
    assert_true(rep->failed & NUB_LOCK_CAPBSET_CLEARED);
    assert_non_null(strstr(rep->notes, "clearing the capability bounding set: "));
  }
  __atomic_store_n(&shared[1], 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &shared[1], FUTEX_WAKE, 1, NULL, NULL, 0);
  int wst;
  assert_int_equal(waitpid(pid, &wst, 0), pid);
  assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
  munmap(shared, 4096);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(filter_shape),
    cmocka_unit_test(allowed_calls_pass),
    cmocka_unit_test(everything_else_kills),
    cmocka_unit_test(other_madvise_kills),
    cmocka_unit_test(heap_writes_only_through_fd0),
    cmocka_unit_test(lockdown_clears_bounding_set_and_root),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
