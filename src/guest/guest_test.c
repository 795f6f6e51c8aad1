/*
** The test guest's extension: NUB_FN_TEST injects the faults the host must
** survive (guest_ext.h lists them).  Linked only into nub-guest-test.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest_ext.h"

static nk_chan test_ch;
static size_t test_io_size;
static uint8_t pending;          /* fault to apply after the answer is written */

static uint32_t reply_msg(uint8_t *out, size_t out_cap, size_t *out_len, uint32_t status,
                          const char *msg) {
  int n = snprintf((char *)out, out_cap, "%s", msg);
  *out_len = n < 0 ? 0 : (size_t)n < out_cap ? (size_t)n : out_cap;
  return status;
}

/* Library paths the kernel reaches only on errors or with large inputs
** (docs/sandbox.md, "What was audited"): messages of every errno and of
** floats, large blocks that malloc maps, grows with mremap and unmaps,
** many small ones on brk, and allocations that fail.  A forbidden call
** kills the guest before it answers. */
static uint32_t libc_paths(uint8_t *out, size_t out_cap, size_t *out_len) {
  char msg[256];
  size_t chars = 0;
  for (int e = 0; e < 134; e++) {
    snprintf(msg, sizeof msg, "%d %s %f %g %.3e", e, strerror(e), 1.5, 2.25, 1e300);
    chars += strlen(msg);
  }
  uint8_t *big = malloc(64u << 20), *bigger;
  if (!big) return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: no 64 MiB block");
  memset(big, 1, 64u << 20);
  if (!(bigger = realloc(big, 192u << 20))) {
    free(big);
    return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: no 192 MiB block");
  }
  memset(bigger + (64u << 20), 2, 128u << 20);
  free(bigger);
  void *small[4096];
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) small[i] = malloc(16 + i * 64);
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) free(small[i]);
  volatile size_t huge = (size_t)1 << 46, count = (size_t)1 << 40;
  void *none[2] = {malloc(huge), calloc(count, count)};
  void *map = mmap(NULL, (size_t)1 << 47, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (none[0] || none[1] || map != MAP_FAILED)
    return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: an impossible allocation worked");
  snprintf(msg, sizeof msg, "test: libc paths ok (%zu message bytes, mmap: %s)", chars,
           strerror(errno));
  return reply_msg(out, out_cap, out_len, NUB_RPC_OK, msg);
}

static uint32_t fn_test(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_cap, size_t *out_len) {
  *out_len = 0;
  if (in_len != 1) return reply_msg(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD, "test: want 1 byte");
  uint8_t op = in[0];
  switch (op) {
  case NK_TEST_SYSCALL:
    syscall(SYS_getpid);
    return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: getpid was allowed");
  case NK_TEST_WX: {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL,
                     p == MAP_FAILED ? "test: W+X mmap failed" : "test: W+X mmap was allowed");
  }
  case NK_TEST_SEGV: {
    uint32_t *volatile unmapped = (uint32_t *)(uintptr_t)16;   /* opaque to the optimiser */
    *unmapped = 1;
    return reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: survived a write to 16");
  }
  case NK_TEST_HANG:
    for (;;) __asm__ volatile("" ::: "memory");
  case NK_TEST_EXIT:
    syscall(SYS_exit_group, 3);
    return NUB_RPC_INTERNAL;
  case NK_TEST_LIBC_PATHS:
    return libc_paths(out, out_cap, out_len);
  case NK_TEST_HEAP_GARBAGE: {
    struct nub_boot_info bi;
    nk_boot_info(k, &bi);
    /* past magic, layout id and seqlock: the reader must validate the rest */
    memset((uint8_t *)(uintptr_t)bi.directory_va + 24, 0xA5, 4096);
    return NUB_RPC_OK;
  }
  case NK_TEST_BAD_MAGIC:
  case NK_TEST_BAD_LEN:
  case NK_TEST_STALE:
  case NK_TEST_BAD_BUSY:
  case NK_TEST_SCRIBBLE:
    pending = op;
    return NUB_RPC_OK;
  default:
    return reply_msg(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD, "test: unknown sub-op");
  }
}

static void pause_ms(unsigned ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* A wrong sequence number with a wake-up: the host must go back to sleep. */
static void false_answer(uint32_t seq) {
  nk_store(&test_ch.ans->resp_seq, seq);
  nk_futex_wake(&test_ch.ans->busy);
  pause_ms(5);
}

void guest_ext_after_serve(uint32_t seq) {
  if (!pending) return;
  nub_response_header h;
  memcpy(&h, test_ch.out, sizeof h);
  switch (pending) {
  case NK_TEST_BAD_MAGIC:
    h.magic = ~NUB_RESPONSE_MAGIC;
    break;
  case NK_TEST_BAD_LEN:
    h.len = UINT64_MAX;
    break;
  case NK_TEST_STALE:
    false_answer(seq - 2);
    false_answer(seq + 1);
    nk_store(&test_ch.ans->resp_seq, seq - 1);
    break;
  case NK_TEST_BAD_BUSY:
    /* once the host sleeps on busy: "done" without an answer, then
    ** silence; only the busy word tells */
    while (!(nk_load(&test_ch.ans->busy) & FUTEX_WAITERS)) __builtin_ia32_pause();
    nk_store(&test_ch.ans->busy, 0);
    nk_futex_wake(&test_ch.ans->busy);
    for (;;) __asm__ volatile("" ::: "memory");
  case NK_TEST_SCRIBBLE:
    memset(test_ch.ctl, 0xA5, nk_chan_size(test_io_size));   /* control page, answer, frames */
    nk_futex_wake(&test_ch.ans->busy);
    for (;;) __asm__ volatile("" ::: "memory");
  default:
    break;
  }
  memcpy(test_ch.out, &h, sizeof h);
  pending = 0;
}

/* An engine whose compile always fails, for kernel error 50 (the kernel
** tests select it by name on both backends). */
static int failing_compile(const pvm_program *prog, void **code, pvm_error *err) {
  if (err) snprintf(err->msg, sizeof err->msg, "injected compile failure");
  return PVM_ERR_UNSUPPORTED;
}

static pvm_engine failing_engine;

int guest_ext_init(const nk_chan *ch, size_t io_size, char *err, size_t errlen) {
  test_ch = *ch;
  test_io_size = io_size;
  failing_engine = pvm_engine_interp;
  failing_engine.name = "test-failing-compile";
  failing_engine.compile = failing_compile;
  if (nk_add_engine(&failing_engine)) {
    snprintf(err, errlen, "test: cannot add the failing engine");
    return -1;
  }
  return 0;
}

int guest_ext_kernel(nk_kernel *k, char *err, size_t errlen) {
  if (nk_register(k, NUB_FN_TEST, fn_test)) {
    snprintf(err, errlen, "test: cannot register NUB_FN_TEST");
    return -1;
  }
  return 0;
}
