/*
** The test guest's extension: NUB_FN_TEST injects the faults the host must
** survive (guest_ext.h lists them).  Linked only into nub-guest-test.
*/
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest_ext.h"
#include "nk_internal.h"

static nk_chan test_ch;
static size_t test_io_size;
static uint8_t pending;          /* fault to apply after the answer is written */
static uint8_t forge;            /* NK_FORGE_* for the answer after the next one */
static bool forge_armed;         /* the TEST request itself has been answered */
static bool lie_next_put;        /* NK_TEST_LYING_HASH armed */

static uint32_t reply_msg(uint8_t *out, size_t out_cap, size_t *out_len, uint32_t status,
                          const char *msg) {
  int n = snprintf((char *)out, out_cap, "%s", msg);
  *out_len = n < 0 ? 0 : (size_t)n < out_cap ? (size_t)n : out_cap;
  return status;
}

static int64_t elapsed_ms(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ((int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 + (t.tv_nsec - t0->tv_nsec)) / 1000000;
}

/* A writer that never lets a reader see a stable directory: the seqlock
** word (header + 16) goes odd and keeps changing (odd + 2, + 2, ...) for
** NK_TEST_BUMP_MS, then even again. */
static void bump_seq(nk_kernel *k) {
  uint64_t *seq = (uint64_t *)(void *)(k->dir.base + k->dir.header_off + 16);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  __atomic_add_fetch(seq, 1, __ATOMIC_RELEASE);
  do {
    for (int i = 0; i < 1000; i++) {
      __atomic_add_fetch(seq, 2, __ATOMIC_RELEASE);
      for (int j = 0; j < 20; j++) __builtin_ia32_pause();
    }
  } while (elapsed_ms(&t0) < NK_TEST_BUMP_MS);
  __atomic_add_fetch(seq, 1, __ATOMIC_RELEASE);
}

/* A well-formed table (2^19 slots) whose every slot holds a stranger's
** hash: without a bound, a lookup of an absent hash walks all of it. */
static int fill_table(nk_kernel *k) {
  const uint64_t capacity = 1u << 19;
  uint8_t *h = k->dir.base + k->dir.header_off;
  uint8_t *t = nk_heap_alloc(k->heap, capacity * 40);
  if (!t) return -1;
  for (uint64_t i = 0; i < capacity; i++) {
    memset(t + i * 40, 0x33, 32);
    memcpy(t + i * 40 + 24, &i, sizeof i);      /* distinct strangers */
    uint64_t rel = 8;
    memcpy(t + i * 40 + 32, &rel, sizeof rel);
  }
  uint64_t seq = __atomic_load_n((uint64_t *)(void *)(h + 16), __ATOMIC_RELAXED);
  uint64_t off = (uint64_t)(t - h);
  __atomic_store_n((uint64_t *)(void *)(h + 16), seq + 1, __ATOMIC_RELEASE);
  __atomic_store_n((uint64_t *)(void *)(h + 24), off, __ATOMIC_RELAXED);
  __atomic_store_n((uint64_t *)(void *)(h + 32), capacity, __ATOMIC_RELAXED);
  __atomic_store_n((uint64_t *)(void *)(h + 16), seq + 2, __ATOMIC_RELEASE);
  return 0;
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
  if (in_len == 2 && in[0] == NK_TEST_FAIL_ALLOCATION) {
    nk_fail_allocation(in[1]);
    return NUB_RPC_OK;
  }
  if (in_len == 2 && in[0] == NK_TEST_FORGE_PUT_REPLY) {
    if (!in[1] || in[1] >= NK_FORGE_COUNT)
      return reply_msg(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD, "test: unknown forgery");
    forge = in[1];
    forge_armed = false;
    return NUB_RPC_OK;
  }
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
  case NK_TEST_LYING_HASH:
    lie_next_put = true;
    return NUB_RPC_OK;
  case NK_TEST_SEQ_BUMP:
    bump_seq(k);
    return NUB_RPC_OK;
  case NK_TEST_FULL_TABLE:
    return fill_table(k) ? reply_msg(out, out_cap, out_len, NUB_RPC_INTERNAL, "test: no heap for the table")
                         : NUB_RPC_OK;
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

/* Replace the answer just written by forgery kind. */
static void forge_reply(uint8_t kind) {
  uint8_t p[NUB_HASH_SIZE + 4 + NUB_PUT_CAP_REASON_MAX + 1];
  uint32_t reason = kind == NK_FORGE_UNKNOWN_CLASS ? 9 : NUB_PUT_CAP_INVALID;
  size_t len = NUB_HASH_SIZE + 4 + 10;
  memset(p, 0xFF, NUB_HASH_SIZE);
  memcpy(p + NUB_HASH_SIZE, &reason, 4);
  memset(p + NUB_HASH_SIZE + 4, 'r', sizeof p - NUB_HASH_SIZE - 4);
  if (kind == NK_FORGE_CONTROL_BYTE) p[NUB_HASH_SIZE + 4 + 3] = 7;
  if (kind == NK_FORGE_LONG_REASON) len = sizeof p;
  if (kind == NK_FORGE_NO_TEXT) len = NUB_HASH_SIZE + 4;
  if (kind == NK_FORGE_SHORT) len = NUB_HASH_SIZE + 1;
  if (kind == NK_FORGE_HASH_AND_MORE) p[5] = 0x12;
  if (kind == NK_FORGE_BARE_SENTINEL) len = NUB_HASH_SIZE;
  nub_response_header h = {NUB_RESPONSE_MAGIC, NUB_RPC_OK, len};
  memcpy(test_ch.out, &h, sizeof h);
  memcpy(test_ch.out + sizeof h, p, len);
}

/* A PUT_CAP answer (status OK, 32 bytes) with the first hash bit flipped;
** a REPUBLISH or PAGES_COMMIT answer (status OK, 8 bytes) claiming one
** more record stored. */
static void lie_about_put(void) {
  nub_request_header q;
  nub_response_header h;
  nub_republish_reply r;
  memcpy(&q, test_ch.in, sizeof q);
  memcpy(&h, test_ch.out, sizeof h);
  if (h.status != NUB_RPC_OK) return;
  if (q.fn_id == NUB_FN_PUT_CAP && h.len == NUB_HASH_SIZE) {
    test_ch.out[sizeof h] ^= 1;
  } else if ((q.fn_id == NUB_FN_REPUBLISH || q.fn_id == NUB_FN_PAGES_COMMIT) &&
             h.len == sizeof r) {
    memcpy(&r, test_ch.out + sizeof h, sizeof r);
    r.stored++;
    memcpy(test_ch.out + sizeof h, &r, sizeof r);
  } else {
    return;
  }
  lie_next_put = false;
}

void guest_ext_after_serve(uint32_t seq) {
  if (lie_next_put) lie_about_put();
  if (forge && forge_armed) {
    forge_reply(forge);
    forge = 0;
  } else if (forge) {
    forge_armed = true;
  }
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
static int failing_compile(const nub_pvm_program *prog, void **code, nub_pvm_error *err) {
  if (err) snprintf(err->msg, sizeof err->msg, "injected compile failure");
  return PVM_ERR_UNSUPPORTED;
}

static nub_pvm_engine failing_engine, crashing_engine;

static nub_pvm_status crashing_run(nub_pvm_vm *vm) {
  nub_pvm_status st = nub_pvm_engine_interp.run(vm);
  if (st == PVM_HOST && vm->exit_arg == NK_TEST_CRASH_CALL)
    *(volatile uint64_t *)(uintptr_t)8 = 1;      /* SIGSEGV: the fatal handler ends the guest */
  return st;
}

int guest_ext_init(const nk_chan *ch, size_t io_size, char *err, size_t errlen) {
  test_ch = *ch;
  test_io_size = io_size;
  failing_engine = nub_pvm_engine_interp;
  failing_engine.name = "test-failing-compile";
  failing_engine.compile = failing_compile;
  crashing_engine = nub_pvm_engine_interp;
  crashing_engine.name = NK_TEST_CRASH_ENGINE;
  crashing_engine.run = crashing_run;
  failing_engine.compile_within = NULL;    /* the kernel would call it instead */
  if (nk_add_engine(&failing_engine) || nk_add_engine(&crashing_engine)) {
    snprintf(err, errlen, "test: cannot add the test engines");
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
