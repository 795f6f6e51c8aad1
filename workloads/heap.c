/*
** The runtime's allocator under churn: n random malloc / calloc / realloc
** / free operations over 256 slots of 1 B to 64 KiB, every block filled
** with a pattern and checked before it is freed or grown (a block that
** overlaps another or loses its contents shows as a wrong digest; the
** digest hashes contents only, so it does not depend on addresses).
*/
#include "workload.h"

#define SLOTS 256

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001B3ull; }

static void fill(uint8_t *p, size_t from, size_t to, uint8_t tag) {
  for (size_t j = from; j < to; j++) p[j] = (uint8_t)(tag + j * 7);
}

static int intact(const uint8_t *p, size_t len, uint8_t tag) {
  for (size_t j = 0; j < len; j++)
    if (p[j] != (uint8_t)(tag + j * 7)) return 0;
  return 1;
}

uint64_t wl_heap(uint64_t n, uint64_t verbose) {
  uint8_t *p[SLOTS] = {0}, tag[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint64_t s = 0x4845415000000007ull, h = 0xCBF29CE484222325ull, ops[4] = {0};
  int ok = 1;
  for (uint64_t i = 0; i < n && ok; i++) {
    uint64_t r = wl_rand(&s);
    unsigned k = (unsigned)(r % SLOTS);
    size_t want = 1 + (size_t)(r >> 20) % ((r >> 12 & 15) == 0 ? 65536 : 256);
    if (p[k]) {
      if (!intact(p[k], size[k], tag[k])) { ok = 0; break; }
      h = mix(h, size[k]);
      if ((r >> 8 & 3) == 0) {                        /* grow or shrink */
        uint8_t *q = realloc(p[k], want);
        if (!q) { ok = 0; break; }
        if (!intact(q, want < size[k] ? want : size[k], tag[k])) { ok = 0; break; }
        if (want > size[k]) fill(q, size[k], want, tag[k]);
        p[k] = q;
        size[k] = want;
        ops[2]++;
      } else {
        free(p[k]);
        p[k] = NULL;
        ops[3]++;
      }
    } else if (r >> 10 & 1) {
      if (!(p[k] = calloc(want, 1))) { ok = 0; break; }
      for (size_t j = 0; j < want; j++)
        if (p[k][j]) { ok = 0; break; }
      tag[k] = (uint8_t)(r >> 56);
      fill(p[k], 0, want, tag[k]);
      size[k] = want;
      ops[1]++;
    } else {
      if (!(p[k] = malloc(want))) { ok = 0; break; }
      tag[k] = (uint8_t)(r >> 56);
      fill(p[k], 0, want, tag[k]);
      size[k] = want;
      ops[0]++;
    }
  }
  for (unsigned k = 0; k < SLOTS; k++) {
    if (p[k] && !intact(p[k], size[k], tag[k])) ok = 0;
    free(p[k]);
  }
  if (verbose)
    nub_printf("heap: %llu operations (%llu malloc, %llu calloc, %llu realloc, %llu free), %s",
               (unsigned long long)n, (unsigned long long)ops[0], (unsigned long long)ops[1],
               (unsigned long long)ops[2], (unsigned long long)ops[3], ok ? "intact" : "CORRUPTED");
  return ok ? mix(h, ops[0] ^ ops[1] << 16 ^ ops[2] << 32 ^ ops[3] << 48) : 0;
}
