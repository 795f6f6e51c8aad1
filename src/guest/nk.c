/*
** Guest kernel core: request framing, the dispatch table and the small
** diagnostic functions.  Publication and invocation live in nk_caps.c
** and nk_invoke.c.
*/
#include "nk_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22     /* Linux 5.14; older kernels answer EINVAL */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

__attribute__((section(".boot_info"), used))
const struct nub_boot_info nk_boot_info_section = {
  .magic = NUB_BOOT_MAGIC,
  .directory_va = NUB_GUEST_VA_BASE_DEFAULT + NK_DIRECTORY_OFFSET,
  .directory_type_id = NK_DIRECTORY_TYPE_ID,
  .guest_va_base = NUB_GUEST_VA_BASE_DEFAULT,
};

uint32_t nk_reply_error(uint8_t *out, size_t out_cap, size_t *out_len, uint32_t status,
                        const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = out_cap ? vsnprintf((char *)out, out_cap, fmt, ap) : 0;
  va_end(ap);
  *out_len = n < 0 ? 0 : (size_t)n < out_cap ? (size_t)n : out_cap ? out_cap - 1 : 0;
  return status;
}

uint32_t nk_reply(uint8_t *out, size_t out_cap, size_t *out_len, const void *data, size_t len) {
  if (len > out_cap)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_TOO_LARGE,
                          "reply of %zu bytes does not fit the %zu-byte output buffer", len,
                          out_cap);
  memcpy(out, data, len);
  *out_len = len;
  return NUB_RPC_OK;
}

static uint32_t expect_empty(const char *fn, size_t in_len, uint8_t *out, size_t out_cap,
                             size_t *out_len) {
  return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                        "%s takes no payload, got %zu bytes", fn, in_len);
}

static uint32_t fn_smoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len) {
  (void)k; (void)in;
  if (in_len) return expect_empty("smoke", in_len, out, out_cap, out_len);
  uint64_t v = NUB_SMOKE_VALUE;
  return nk_reply(out, out_cap, out_len, &v, sizeof v);
}

static uint32_t fn_heap_stats(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_cap, size_t *out_len) {
  (void)in;
  if (in_len) return expect_empty("heap_stats", in_len, out, out_cap, out_len);
  struct nub_heap_stats s;
  nk_heap_stats(k->heap, &s);
  return nk_reply(out, out_cap, out_len, &s, sizeof s);
}

static uint32_t fn_kernel_stats(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                                size_t out_cap, size_t *out_len) {
  (void)in;
  if (in_len) return expect_empty("kernel_stats", in_len, out, out_cap, out_len);
  struct nub_kernel_stats s;
  uint64_t caps = nk_caps_count(k);
  pthread_mutex_lock(&k->cache_lock);
  k->stats.caps_total = caps;
  k->stats.jit_cache_bytes = k->cache_bytes;
  k->stats.memory_budget = k->budget;
  s = k->stats;
  pthread_mutex_unlock(&k->cache_lock);
  return nk_reply(out, out_cap, out_len, &s, sizeof s);
}

static uint32_t fn_boot_info(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len) {
  (void)in;
  if (in_len) return expect_empty("get_boot_info", in_len, out, out_cap, out_len);
  struct nub_boot_info b;
  nk_boot_info(k, &b);
  return nk_reply(out, out_cap, out_len, &b, sizeof b);
}

static uint32_t fn_evict_jit(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len) {
  (void)in; (void)out_cap;
  if (in_len) return expect_empty("evict_jit_all", in_len, out, out_cap, out_len);
  nk_jit_cache_clear(k);       /* safe while lanes run: frames keep theirs */
  *out_len = 0;
  return NUB_RPC_OK;
}

void nk_boot_info(const nk_kernel *k, struct nub_boot_info *out) {
  memset(out, 0, sizeof *out);
  out->magic = NUB_BOOT_MAGIC;
  out->directory_va = (uint64_t)(uintptr_t)k->cfg.heap_base + NK_DIRECTORY_OFFSET;
  out->directory_type_id = NK_DIRECTORY_TYPE_ID;
  out->guest_va_base = (uint64_t)(uintptr_t)k->cfg.heap_base;
}

int nk_register(nk_kernel *k, uint32_t fn_id, nk_fn fn) {
  if (fn_id >= NUB_GUEST_FN_TABLE_SIZE || k->table[fn_id] || !fn) return -1;
  k->table[fn_id] = fn;
  return 0;
}

int nk_create(const nk_config *cfg, nk_kernel **out, char *err, size_t errlen) {
  nk_kernel *k = calloc(1, sizeof *k);
  *out = NULL;
  if (!k) { snprintf(err, errlen, "kernel: out of memory"); return -1; }
  k->cfg = *cfg;
  k->budget = cfg->memory_budget ? cfg->memory_budget : NK_DEFAULT_MEMORY_BUDGET;
  if (nk_caps_init(k, err, errlen) || nk_invoke_init(k, err, errlen)) {
    nk_destroy(k);
    return -1;
  }
  k->table[NUB_FN_SMOKE] = fn_smoke;
  k->table[NUB_FN_KERNEL_STATS] = fn_kernel_stats;
  k->table[NUB_FN_HEAP_STATS] = fn_heap_stats;
  k->table[NUB_FN_INVOKE_CACHED] = nk_fn_invoke;
  k->table[NUB_FN_PUT_CAP] = nk_fn_put_cap;
  k->table[NUB_FN_GET_BOOT_INFO] = fn_boot_info;
  k->table[NUB_FN_EVICT_JIT_ALL] = fn_evict_jit;
  k->table[NUB_FN_LANE_START] = nk_fn_lane_start;
  k->table[NUB_FN_REPUBLISH] = nk_fn_republish;
  k->table[NUB_FN_PAGES_RESERVE] = nk_fn_pages_reserve;
  k->table[NUB_FN_PAGES_COMMIT] = nk_fn_pages_commit;
  k->table[NUB_FN_KERNEL_LAST_ERROR] = nk_fn_last_error;
  *out = k;
  return 0;
}

void nk_destroy(nk_kernel *k) {
  if (!k) return;
  nk_invoke_fini(k);
  nk_caps_fini(k);
  free(k);
}

void nk_populate_read(const void *p, size_t len) {
  if (len < NK_POPULATE_MIN) return;
  uintptr_t at = (uintptr_t)p & ~(uintptr_t)4095;
  (void)madvise((void *)at, (uintptr_t)p + len - at, MADV_POPULATE_READ);
}

int nk_populate_write(void *p, size_t len) {
  uintptr_t at = (uintptr_t)p & ~(uintptr_t)4095;
  return madvise((void *)at, (uintptr_t)p + len - at, MADV_POPULATE_WRITE);
}

/* The request's pages past those populated already, before the function
** reads them, once they come to NK_POPULATE_MIN bytes or more: the host
** wrote them through its own mapping, so the guest's first read of each
** page of a large request faulted.  The buffer stays mapped for the
** guest's life, so a range is populated once; fewer new bytes are left
** to fault in as they are read (and populated with a later range). */
static void map_request(nk_kernel *k, const uint8_t *in, size_t len) {
  if (in != k->in_seen) {
    k->in_seen = in;
    k->in_mapped = 0;
  }
  if (len <= k->in_mapped || len - k->in_mapped < NK_POPULATE_MIN) return;
  if (!k->populate_off) nk_populate_read(in + k->in_mapped, len - k->in_mapped);
  k->in_mapped = len;
}

size_t nk_serve(nk_kernel *k, const uint8_t *in, size_t in_cap, uint8_t *out, size_t out_cap) {
  nub_request_header req;
  nub_response_header resp = {NUB_RESPONSE_MAGIC, NUB_RPC_OK, 0};
  uint8_t *payload = out + sizeof resp;
  size_t cap = out_cap - sizeof resp, len = 0;
  if (out_cap < sizeof resp) return 0;
  if (in_cap < sizeof req) {
    resp.status = nk_reply_error(payload, cap, &len, NUB_RPC_BAD_FRAME,
                                 "request buffer of %zu bytes cannot hold a header", in_cap);
    goto reply;
  }
  memcpy(&req, in, sizeof req);          /* read the shared header once */
  if (req.magic != NUB_REQUEST_MAGIC) {
    resp.status = nk_reply_error(payload, cap, &len, NUB_RPC_BAD_FRAME,
                                 "bad request magic 0x%08x", req.magic);
  } else if (req.len > in_cap - sizeof req) {
    resp.status = nk_reply_error(payload, cap, &len, NUB_RPC_BAD_FRAME,
                                 "request length %llu exceeds the %zu-byte buffer",
                                 (unsigned long long)req.len, in_cap - sizeof req);
  } else if (req.fn_id >= NUB_GUEST_FN_TABLE_SIZE || !k->table[req.fn_id]) {
    resp.status = nk_reply_error(payload, cap, &len, NUB_RPC_UNKNOWN_FN,
                                 "unknown function id %u", req.fn_id);
  } else {
    map_request(k, in, sizeof req + (size_t)req.len);
    resp.status = k->table[req.fn_id](k, in + sizeof req, (size_t)req.len, payload, cap, &len);
  }
reply:
  resp.len = len;
  memcpy(out, &resp, sizeof resp);
  return sizeof resp + len;
}
