/*
** The put helper thread (src/host/helper.c) at the edges of its life:
** a thread that cannot be made is asked for once and the puts work alone;
** a forked child that uses its parent's handle against nub.h's rule does
** not wait for ever on the parent's thread; a fault while the helper reads the caller's bytes reaches the
** caller's handler instead of killing the process with it blocked.
** Inproc, so the child has the whole kernel in its own address space.
** pthread_create is wrapped (-Wl,--wrap) so a test can make it fail.
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "host_test_util.h"

#define LARGE (300u << 10) /* over the helper's 256 KiB threshold */

static int fail_create, create_calls;
int __real_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
  __atomic_add_fetch(&create_calls, 1, __ATOMIC_RELAXED);
  if (__atomic_load_n(&fail_create, __ATOMIC_RELAXED)) return EAGAIN;
  return __real_pthread_create(t, a, f, arg);
}

static nub *open_inproc(void) {
  nub_options o = ht_options(NULL);
  o.backend = NUB_BACKEND_INPROC;
  o.io_size = 4u << 20;
  o.heap_size = 96u << 20;
  return ht_open(&o);
}

static uint8_t *data_wire(size_t size, unsigned seed, size_t *len) {
  uint8_t *bytes = malloc(size), *wire = NULL;
  assert_non_null(bytes);
  for (size_t i = 0; i < size; i++) bytes[i] = (uint8_t)(i * 7 + seed * 31 + 1);
  assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, len, NULL), NUB_OK);
  free(bytes);
  return wire;
}

/* Put, then check the stored wire and the hash against the host's own. */
static int put_checked(nub *n, size_t size, unsigned seed) {
  size_t len;
  uint8_t *wire = data_wire(size, seed, &len);
  nub_hash h, want;
  nub_error err;
  int rc = nub_put_cap(n, wire, len, h, &err);
  uint8_t *got = malloc(len);
  size_t got_len = 0;
  if (rc == NUB_OK) {
    if (nub_cap_hash_wire(wire, wire + len, want, NULL) || memcmp(h, want, 32) ||
        nub_lookup(n, h, got, len, &got_len, NULL) || got_len != len || memcmp(got, wire, len))
      rc = -1;
  }
  free(got);
  free(wire);
  return rc;
}

static void a_helper_that_cannot_be_made_is_asked_for_once(void **state) {
  (void)state;
  nub *n = open_inproc();
  int before = create_calls;
  fail_create = 1;
  for (unsigned i = 0; i < 3; i++) assert_int_equal(put_checked(n, LARGE, i), NUB_OK);
  fail_create = 0;
  assert_int_equal(create_calls - before, 1);
  assert_int_equal(put_checked(n, LARGE, 9), NUB_OK); /* still alone: not asked again */
  assert_int_equal(create_calls - before, 1);
  nub_close(n);
}

/* Run fn in a child with a 20 s alarm; its exit status, or 128 + signal. */
static int in_child(int (*fn)(void *), void *arg) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(20);
    _exit(fn(arg));
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static int child_puts_and_closes(void *arg) {
  nub *n = arg;
  int rc = put_checked(n, LARGE, 2);
  if (rc) { fprintf(stderr, "child put: %d\n", rc); return 1; }
  nub_close(n);
  return 0;
}

/* nub.h forbids a child to use its parent's handle (an inproc kernel's
** heap and buffers are shared mappings: the child's put is seen by the
** parent's kernel, so the parent does not put after it here); a child
** that does anyway must not wait for ever on a thread it does not have. */
static void a_forked_child_that_puts_anyway_does_not_wait_on_the_parents_helper(void **state) {
  (void)state;
  nub *n = open_inproc();
  assert_int_equal(put_checked(n, LARGE, 1), NUB_OK); /* the parent's helper runs */
  assert_int_equal(in_child(child_puts_and_closes, n), 0);
  nub_close(n);
}

static void bus_handler(int sig) {
  (void)sig;
  _exit(3);
}

/* The wire in a file mapping cut short at three quarters: the helper's
** half (the upper one) reads past the file's end. */
static int child_puts_a_truncated_mapping(void *arg) {
  (void)arg;
  size_t len;
  uint8_t *wire = data_wire(1u << 20, 5, &len);
  FILE *f = tmpfile();
  if (!f || fwrite(wire, 1, len, f) != len || fflush(f)) return 1;
  int fd = fileno(f);
  uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED || ftruncate(fd, (off_t)(len / 4 * 3 & ~(size_t)4095))) return 1;
  struct sigaction sa = {0};
  sa.sa_handler = bus_handler;
  sigaction(SIGBUS, &sa, NULL);
  nub *n = open_inproc();
  nub_hash h;
  nub_put_cap(n, map, len, h, NULL);
  return 2; /* the put read every byte: the file was not cut */
}

static void a_fault_reading_the_callers_bytes_reaches_the_callers_handler(void **state) {
  (void)state;
  assert_int_equal(in_child(child_puts_a_truncated_mapping, NULL), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_helper_that_cannot_be_made_is_asked_for_once),
    cmocka_unit_test(a_forked_child_that_puts_anyway_does_not_wait_on_the_parents_helper),
    cmocka_unit_test(a_fault_reading_the_callers_bytes_reaches_the_callers_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
