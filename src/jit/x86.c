/*
** The code buffer, labels and fixups of the x86-64 encoder; the encoders
** themselves are inline in x86.h.  Each instruction is written straight
** into the code buffer after one growth check for its longest possible
** length, and only its bytes are counted.  (It used to be assembled in a
** local buffer and copied 8 bytes at a time: the copy read bytes just
** stored one at a time, a store-forwarding stall that perf put at half of
** the encoder's time.)
*/
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nub/jit.h"
#include "x86.h"

#define PAGE 4096u

/* Populating a fresh code buffer ahead of the encoders (populate_ahead):
** the head left to fault, and each stretch's bounds. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23           /* Linux 5.14 uapi; older headers lack it */
#endif
#define POPULATE_HEAD (8u << 10)
#define POPULATE_MIN (16u << 10)
#define POPULATE_MAX (1u << 20)

/* ---- the code pool (x86.h) ---- */

#define POOL_SLOTS 16u     /* the most nub_jit_set_code_pool accepts */

typedef struct pooled {
  uint8_t *map;
  size_t size;             /* of the mapping */
  size_t dirty;            /* bytes from its start that may be resident */
} pooled;

static struct {
  pthread_mutex_t lock;
  unsigned max_maps;
  size_t max_bytes;
  unsigned n;              /* e[0] is the oldest */
  size_t bytes;            /* the sum of dirty */
  pooled e[POOL_SLOTS];
} pool = {PTHREAD_MUTEX_INITIALIZER, NUB_JIT_POOL_MAPS, NUB_JIT_POOL_BYTES, 0, 0, {{0}}};

static pooled pool_remove(unsigned i) {
  pooled got = pool.e[i];
  pool.bytes -= got.dirty;
  memmove(pool.e + i, pool.e + i + 1, (--pool.n - i) * sizeof *pool.e);
  return got;
}

/* Remove the oldest until within bounds, into out (the caller unmaps
** them after unlocking); how many. */
static unsigned pool_evict(pooled *out) {
  unsigned k = 0;
  while (pool.n && (pool.n > pool.max_maps || pool.bytes > pool.max_bytes))
    out[k++] = pool_remove(0);
  return k;
}

static void unmap_all(const pooled *v, unsigned k) {
  for (unsigned i = 0; i < k; i++) munmap(v[i].map, v[i].size);
}

void nub_jit_set_code_pool(unsigned maps, size_t bytes) {
  pooled victims[POOL_SLOTS];
  pthread_mutex_lock(&pool.lock);
  pool.max_maps = maps < POOL_SLOTS ? maps : POOL_SLOTS;
  pool.max_bytes = bytes;
  unsigned k = pool_evict(victims);
  pthread_mutex_unlock(&pool.lock);
  unmap_all(victims, k);
}

void jit_pool_usage(unsigned *maps, size_t *bytes) {
  pthread_mutex_lock(&pool.lock);
  *maps = pool.n;
  *bytes = pool.bytes;
  pthread_mutex_unlock(&pool.lock);
}

/* The smallest mapping of at least size, else the largest; the newest of
** equals (its pages are the likeliest to be in cache). */
uint8_t *jit_pool_take(size_t size, size_t *dirty) {
  pooled got = {0};
  pthread_mutex_lock(&pool.lock);
  unsigned best = pool.n;
  for (unsigned i = pool.n; i-- > 0;) {
    size_t s = pool.e[i].size, b = best < pool.n ? pool.e[best].size : 0;
    if (best == pool.n || ((s >= size) != (b >= size) ? s >= size : s >= size ? s < b : s > b))
      best = i;
  }
  if (best < pool.n) got = pool_remove(best);
  pthread_mutex_unlock(&pool.lock);
  *dirty = 0;
  if (got.map) {         /* shrinking releases the pages past size */
    void *p = got.size == size ? got.map : mremap(got.map, got.size, size, MREMAP_MAYMOVE);
    if (p != MAP_FAILED) {
      *dirty = got.dirty < size ? got.dirty : size;
      return p;
    }
    munmap(got.map, got.size);
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* W^X: the mapping goes back to read-write (from read+execute, never
** both) here, before any compile can take it. */
void jit_pool_put(uint8_t *map, size_t map_size, size_t dirty) {
  pooled victims[POOL_SLOTS + 1];
  unsigned k = 0;
  pthread_mutex_lock(&pool.lock);
  bool keep = pool.max_maps && dirty <= pool.max_bytes;
  pthread_mutex_unlock(&pool.lock);
  if (!keep || mprotect(map, map_size, PROT_READ | PROT_WRITE)) {
    munmap(map, map_size);
    return;
  }
  pthread_mutex_lock(&pool.lock);
  if (pool.n == POOL_SLOTS) victims[k++] = pool_remove(0);
  pool.e[pool.n++] = (pooled){map, map_size, dirty};
  pool.bytes += dirty;
  k += pool_evict(victims + k);
  pthread_mutex_unlock(&pool.lock);
  unmap_all(victims, k);
}

/* ---- the code buffer ---- */

/* The code lives in its own read-write mapping, which the compiler later
** turns into the executable one without copying.  It grows by a quarter
** (mremap moves pages, it copies nothing), so what it holds beyond the
** code stays small: the compile's memory bound counts capacity.  No
** madvise(MADV_HUGEPAGE): nub-guest's seccomp filter forbids it, and on a
** 57 MB buffer it saved 27% of the page faults but no measurable time
** (docs/sandbox.md). */
/* Where the code goes (cap bytes at code, len of them written), and with
** it where an encoder may start.  No buffer yet (code NULL): the spare
** buffer with no room, so the cursor is never a null pointer and the
** first encoder grows the mapping. */
static void set_code(jit_asm *a, uint8_t *code, size_t cap, size_t len) {
  if (!code) code = a->spare, cap = 0;
  size_t lim = code == a->map && a->ready < cap ? a->ready : cap;
  a->code = code;
  a->cap = cap;
  a->at = code + len;
  a->room = lim >= JIT_INS_MAX ? code + lim - JIT_INS_MAX + 1 : code;
}

static bool grow(jit_asm *a, size_t need) {
  if (a->oom) return false;
  size_t len = jit_asm_pos(a);
  if (len + need <= a->map_size) return true;
  size_t cap = a->map_size ? a->map_size + a->map_size / 4 : 4 * PAGE,
         others = a->held - a->map_size;
  if (cap < len + need) cap = len + need;
  cap = (cap + PAGE - 1) / PAGE * PAGE;
  if (a->limit && others + cap > a->limit) {      /* the most that fits */
    cap = a->limit > others ? (a->limit - others) / PAGE * PAGE : 0;
    if (cap < len + need) { a->oom = a->over_limit = true; return false; }
  }
  void *p = a->map ? mremap(a->map, a->map_size, cap, MREMAP_MAYMOVE)
                   : jit_pool_take(cap, &a->dirty);
  if (!p || p == MAP_FAILED) { a->oom = true; return false; }
  if (!a->map)           /* a fresh one's head faults in (populate_ahead) */
    a->ready = a->dirty > POPULATE_HEAD ? a->dirty : POPULATE_HEAD < cap ? POPULATE_HEAD : cap;
  a->map = p;
  a->held = others + cap;
  if (a->held > a->peak) a->peak = a->held;
  a->map_size = cap;
  set_code(a, p, cap, len);
  return true;
}

/* After OOM the bytes go to the spare buffer and are dropped: the cursor
** wraps to its start, so every instruction fits. */
static void use_spare(jit_asm *a) {
  a->oom = true;
  set_code(a, a->spare, sizeof a->spare, 0);
}

/* Fresh pages past the first POPULATE_HEAD bytes are populated a stretch
** ahead of the cursor rather than faulted in one at a time by the
** encoders' stores.  Measured on the dev VM (a paravirtualized guest
** kernel): a write fault on a fresh page costs 9.4-10 us,
** MADV_POPULATE_WRITE 0.5 us a page and the first store to the populated
** page another 4.5-5.8 (the hypervisor's, not a fault the guest sees);
** cold compiles, 229 KB program, 14.5-14.9 -> 11.2-11.3 us/KB (warm
** 6.3-6.8 in both; docs/jit.md).  Each stretch is a quarter of what is
** ready, 16 KiB to 1 MiB, so populated pages past the code are few; they
** count as dirty, and jit_asm_take unmaps them with the rest.  The head
** is left to fault: a small program's code fits in it, and populating
** past its code would cost that unmap (a TLB flush, most of a small
** compile: with no head and 64 KiB stretches, a 256-instruction
** program's cold compile took 31 us/KB instead of 22; docs/jit.md).
** Where the kernel refuses the advice (before 5.14) the pages fault in
** as before and nothing more counts as dirty.  nub-guest's seccomp
** filter allows madvise with this advice and MADV_POPULATE_READ only. */
static int populate_works = 1;     /* 0 once the kernel refused it */

static bool populate_ahead(jit_asm *a) {
  size_t from = a->ready, to;
  if (a->code != a->map || from >= a->map_size) return false;
  size_t stretch = from / 4 < POPULATE_MIN ? POPULATE_MIN
                 : from / 4 > POPULATE_MAX ? POPULATE_MAX : from / 4;
  to = from + stretch;
  to = (to + PAGE - 1) / PAGE * PAGE;
  if (to > a->map_size) to = a->map_size;
  bool populated = false;
  if (__atomic_load_n(&populate_works, __ATOMIC_RELAXED)) {
    if (!madvise(a->map + from, to - from, MADV_POPULATE_WRITE)) populated = true;
    else if (errno == EINVAL) __atomic_store_n(&populate_works, 0, __ATOMIC_RELAXED);
    else populated = true;               /* some of it may be */
  }
  a->ready = to;
  if (populated && to > a->dirty) a->dirty = to;
  set_code(a, a->code, a->cap, jit_asm_pos(a));
  return true;
}

/* Populate ahead until JIT_INS_MAX bytes fit before ready, growing the
** mapping once all of it is ready: each step raises ready or map_size. */
void jit_asm_make_room(jit_asm *a) {
  while (a->at >= a->room) {
    if (populate_ahead(a)) continue;
    if (!grow(a, JIT_INS_MAX)) {
      use_spare(a);
      return;
    }
  }
}

bool jit_asm_charge(jit_asm *a, size_t bytes) {
  if (a->oom) return false;
  if (a->limit && (bytes > a->limit || a->held > a->limit - bytes)) {
    a->oom = a->over_limit = true;
    return false;
  }
  a->held += bytes;
  if (a->held > a->peak) a->peak = a->held;
  return true;
}

bool jit_asm_grow_array(jit_asm *a, void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap) return true;
  uint64_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  if (ncap > UINT32_MAX || !jit_asm_charge(a, (size_t)(ncap - *cap) * elem)) {
    a->oom = true;
    return false;
  }
  void *np = realloc(*p, (size_t)ncap * elem);
  if (!np) { a->oom = true; return false; }
  *p = np;
  *cap = (uint32_t)ncap;
  return true;
}

/* ---- buffer, labels and fixups ---- */

void jit_asm_init(jit_asm *a) {
  memset(a, 0, sizeof *a);
  set_code(a, NULL, 0, 0);
}

void jit_asm_free(jit_asm *a) {
  if (a->map) munmap(a->map, a->map_size);
  free(a->labels);
  free(a->fixups);
  jit_asm_init(a);
}

/* An encoder may write up to JIT_INS_MAX bytes past the cursor (x86.h),
** jit_x86_nop_align up to NOP_SPAN from where it starts. */
#define NOP_SPAN 64u
#define WRITE_SLACK (NOP_SPAN > JIT_INS_MAX ? NOP_SPAN : JIT_INS_MAX)
static void note_dirty(jit_asm *a) {
  size_t end = (jit_asm_pos(a) + WRITE_SLACK + PAGE - 1) / PAGE * PAGE;
  if (end > a->map_size) end = a->map_size;
  if (end > a->dirty) a->dirty = end;
}

void jit_asm_reset(jit_asm *a) {
  if (a->map && !a->oom) note_dirty(a);
  set_code(a, a->map, a->map_size, 0);
  a->nlabels = 0;
  a->nfixups = 0;
  a->oom = false;
  a->scope_error = NULL;
}

/* The untouched rest of the reservation stays mapped when nothing is in
** it: it costs no memory, and unmapping it costs a TLB flush, most of the
** time of a small compile. */
uint8_t *jit_asm_take(jit_asm *a, size_t *mapped) {
  uint8_t *code = a->map;
  size_t len = jit_asm_pos(a), size = (len + PAGE - 1) / PAGE * PAGE;
  if (!size) size = PAGE;
  note_dirty(a);
  memset(code + len, 0xCC, size - len);
  *mapped = a->map_size;
  if (a->dirty > size) {
    *mapped = size;
    if (munmap(code + size, a->map_size - size)) {
      munmap(code, a->map_size);
      code = NULL;
    }
  }
  a->map = NULL;
  a->map_size = a->dirty = a->ready = 0;
  set_code(a, NULL, 0, 0);
  return code;
}

void jit_asm_reserve(jit_asm *a, size_t code_bytes, uint32_t labels, uint32_t fixups) {
  if (a->oom) return;
  if (a->limit && a->limit - a->held < code_bytes)     /* grow() takes what fits */
    code_bytes = jit_asm_pos(a) + 1;
  if (!grow(a, code_bytes)) {
    use_spare(a);
    return;
  }
  if (!jit_asm_grow_array(a, (void **)&a->labels, &a->label_cap, labels, sizeof *a->labels) ||
      !jit_asm_grow_array(a, (void **)&a->fixups, &a->fixup_cap, fixups, sizeof *a->fixups))
    use_spare(a);
}

jit_label jit_label_new(jit_asm *a) {
  if (!jit_asm_grow_array(a, (void **)&a->labels, &a->label_cap, a->nlabels + 1,
                          sizeof *a->labels)) {
    use_spare(a);
    return 0;
  }
  a->labels[a->nlabels] = JIT_UNBOUND;
  return a->nlabels++;
}

void jit_label_bind(jit_asm *a, jit_label l) {
  if (l < a->nlabels) a->labels[l] = (uint32_t)jit_asm_pos(a);
}

void jit_asm_add_fixup(jit_asm *a, uint32_t at, jit_label l, uint8_t size) {
  if (a->oom) return;
  if (!jit_asm_grow_array(a, (void **)&a->fixups, &a->fixup_cap, a->nfixups + 1,
                          sizeof *a->fixups)) {
    use_spare(a);
    return;
  }
  a->fixups[a->nfixups++] = (jit_fixup){at, l, size};
}

/* jit_rr_bits (x86.h): for reg << 4 | rm, REX.R and REX.B, and the
** ModRM byte of the pair in byte 2. */
#define RR(i) \
  ((((i) >> 4 & 8u) >> 1 | ((i) & 8u) >> 3) | (0xC0u | ((i) >> 4 & 7u) << 3 | ((i) & 7u)) << 16)
#define RR4(i) RR(i), RR((i) + 1), RR((i) + 2), RR((i) + 3)
#define RR16(i) RR4(i), RR4((i) + 4), RR4((i) + 8), RR4((i) + 12)
#define RR64(i) RR16(i), RR16((i) + 16), RR16((i) + 32), RR16((i) + 48)
const uint32_t jit_rr_bits[256] = {RR64(0), RR64(64), RR64(128), RR64(192)};
#undef RR64
#undef RR16
#undef RR4
#undef RR

/* Write the displacement of one fixup; NULL or what is wrong. */
static const char *patch(jit_asm *a, const jit_fixup *f) {
  if (f->label >= a->nlabels || a->labels[f->label] == JIT_UNBOUND)
    return "jump to an unbound label";
  int64_t d = (int64_t)a->labels[f->label] - (int64_t)(f->at + f->size);
  if (f->size == 1) {
    if (!jit_fits8(d)) return "short jump out of range";
    a->code[f->at] = (uint8_t)(int8_t)d;
  } else {
    int32_t d32 = (int32_t)d;
    memcpy(a->code + f->at, &d32, 4);
  }
  return NULL;
}

void jit_asm_close_scope(jit_asm *a, uint32_t first_label, uint32_t first_fixup) {
  uint32_t kept = first_fixup;
  if (a->oom) return;
  for (uint32_t i = first_fixup; i < a->nfixups; i++) {
    if (a->fixups[i].label < first_label) {
      a->fixups[kept++] = a->fixups[i];
    } else if (!a->scope_error) {
      a->scope_error = patch(a, &a->fixups[i]);
    }
  }
  a->nfixups = kept;
  if (first_label < a->nlabels) a->nlabels = first_label;
}

int jit_asm_finish(jit_asm *a, const char **what) {
  if (a->oom) { *what = "out of memory"; return -1; }
  if (a->scope_error) { *what = a->scope_error; return -1; }
  for (uint32_t i = 0; i < a->nfixups; i++)
    if ((*what = patch(a, &a->fixups[i]))) return -1;
  return 0;
}

/* ---- the encoders with a fixup, out of line ---- */

void jit_x86_lea_label(jit_asm *a, jit_reg dst, jit_label l) {
  uint8_t *p = jit_ins_begin(a);
  *p++ = (uint8_t)(0x40 | JIT_REX_W | ((dst & 8) ? JIT_REX_R : 0));
  *p++ = 0x8D;
  *p++ = (uint8_t)((dst & 7) << 3 | 5);          /* mod 00 rm 101: [rip + disp32] */
  jit_ins_end(a, jit_put32(p, 0));
  jit_asm_add_fixup(a, (uint32_t)jit_asm_pos(a) - 4, l, 4);
}

void jit_x86_call(jit_asm *a, jit_label l) {
  uint8_t *p = jit_ins_begin(a);
  bool bound = jit_label_bound(a, l);
  *p++ = 0xE8;
  p = jit_put32(p, bound ? (uint32_t)((int64_t)a->labels[l] - (int64_t)(jit_asm_pos(a) + 5)) : 0);
  jit_ins_end(a, p);
  if (!bound) jit_asm_add_fixup(a, (uint32_t)jit_asm_pos(a) - 4, l, 4);
}

/* The recommended nops of 1 to 9 bytes (Intel SDM, "NOP"). */
static const uint8_t nops[9][9] = {
  {0x90}, {0x66, 0x90}, {0x0F, 0x1F, 0x00}, {0x0F, 0x1F, 0x40, 0x00},
  {0x0F, 0x1F, 0x44, 0x00, 0x00}, {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00},
  {0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00}, {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
  {0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};

/* Eight 9-byte nops in a row: a padding's whole 9-byte nops are a prefix of it. */
#define NOP9 0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00
static const uint8_t nop9s[8 * 9] = {NOP9, NOP9, NOP9, NOP9, NOP9, NOP9, NOP9, NOP9};
#undef NOP9

/* Nops of 9 bytes, then one of the rest (1 to 9): NOP_SPAN bytes of 9-byte
** nops copied at once (n <= 64, x86.h), the last nop over them (what lands
** past the padding, note_dirty counts).  A loop of
** 9-byte copies ended after 0 to 6 of them, a mispredicted exit about
** once per loop entry (docs/jit.md). */
void jit_x86_nop_align(jit_asm *a, unsigned n) {
  unsigned pad = (unsigned)(-jit_asm_pos(a) & (n - 1));
  if (!pad || a->oom) return;
  if (jit_asm_pos(a) + NOP_SPAN > a->cap && !grow(a, NOP_SPAN)) {
    use_spare(a);
    return;
  }
  uint8_t *p = a->at;
  unsigned whole = (pad - 1) / 9 * 9;            /* bytes of 9-byte nops */
  memcpy(p, nop9s, NOP_SPAN);
  memcpy(p + whole, nops[pad - whole - 1], 9);
  a->at = p + pad;
}

void jit_asm_align(jit_asm *a, unsigned n) {
  while (jit_asm_pos(a) % n && !a->oom) {
    uint8_t *p = jit_ins_begin(a);
    *p++ = 0xCC;
    jit_ins_end(a, p);
  }
}

