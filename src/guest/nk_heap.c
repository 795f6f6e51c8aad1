/*
** Guest heap allocator: segregated free lists (one per power of two) over
** boundary-tagged blocks, coalescing on free.
**
**   region: | nk_heap header | block | block | ... | end sentinel |
**   block:  | size|used (8) | prev_size (8) | payload ...          |
**   free payload starts with next/prev offsets of its free list.
*/
#include "nk_heap.h"

#include <string.h>

#define BINS 48
#define HDR 16u
#define MIN_BLOCK 32u
#define USED 1ull

typedef struct block {
  uint64_t size_used;      /* total size, multiple of 16; bit 0 = in use */
  uint64_t prev_size;      /* size of the physically previous block, 0 first */
  uint64_t next_free;      /* offsets from the heap base; 0 = none */
  uint64_t prev_free;
} block;

struct nk_heap {
  uint64_t magic;
  uint64_t size;           /* bytes of the whole region */
  uint64_t first;          /* offset of the first block */
  uint64_t end;            /* offset of the end sentinel */
  uint64_t bins[BINS];     /* free list heads */
  uint64_t allocated_bytes, allocation_count, fragment_count, available_bytes;
};

#define HEAP_MAGIC 0x5041454842554E00ull   /* "\0NUBHEAP" */

_Static_assert(sizeof(struct nk_heap) <= NK_HEAP_HEADER_SIZE, "heap header fits its page");

static inline uint8_t *base_of(const nk_heap *h) { return (uint8_t *)h; }
static inline block *at(const nk_heap *h, uint64_t off) { return (block *)(base_of(h) + off); }
static inline uint64_t off_of(const nk_heap *h, const block *b) { return (uint64_t)((const uint8_t *)b - base_of(h)); }
static inline uint64_t size_of(const block *b) { return b->size_used & ~USED; }
static inline bool is_used(const block *b) { return b->size_used & USED; }
static inline block *next_block(const nk_heap *h, const block *b) { return at(h, off_of(h, b) + size_of(b)); }

static unsigned bin_of(uint64_t size) {
  unsigned b = 63u - (unsigned)__builtin_clzll(size);
  return b >= BINS ? BINS - 1 : b;
}

static void list_insert(nk_heap *h, block *b) {
  unsigned bin = bin_of(size_of(b));
  uint64_t off = off_of(h, b);
  b->prev_free = 0;
  b->next_free = h->bins[bin];
  if (h->bins[bin]) at(h, h->bins[bin])->prev_free = off;
  h->bins[bin] = off;
  h->fragment_count++;
  h->available_bytes += size_of(b) - HDR;
}

static void list_remove(nk_heap *h, block *b) {
  unsigned bin = bin_of(size_of(b));
  if (b->prev_free) at(h, b->prev_free)->next_free = b->next_free;
  else h->bins[bin] = b->next_free;
  if (b->next_free) at(h, b->next_free)->prev_free = b->prev_free;
  h->fragment_count--;
  h->available_bytes -= size_of(b) - HDR;
}

nk_heap *nk_heap_init(void *base, size_t size) {
  nk_heap *h = base;
  uint64_t first = NK_HEAP_HEADER_SIZE;
  if (((uintptr_t)base & (NK_HEAP_ALIGN - 1)) || size < first + MIN_BLOCK + HDR) return NULL;
  memset(h, 0, sizeof *h);
  h->magic = HEAP_MAGIC;
  h->size = size & ~(uint64_t)(NK_HEAP_ALIGN - 1);
  h->first = first;
  h->end = h->size - HDR;
  block *b = at(h, first), *end = at(h, h->end);
  b->size_used = h->end - first;
  b->prev_size = 0;
  end->size_used = USED;       /* size 0, in use: stops coalescing */
  end->prev_size = size_of(b);
  list_insert(h, b);
  return h;
}

/* Carve need bytes off the front of free block b (already unlinked). */
static void take(nk_heap *h, block *b, uint64_t need) {
  uint64_t size = size_of(b);
  if (size - need >= MIN_BLOCK) {
    block *rest = at(h, off_of(h, b) + need);
    rest->size_used = size - need;
    rest->prev_size = need;
    next_block(h, rest)->prev_size = size - need;
    list_insert(h, rest);
    size = need;
  }
  b->size_used = size | USED;
  h->allocated_bytes += size - HDR;
  h->allocation_count++;
}

void *nk_heap_alloc(nk_heap *h, size_t n) {
  if (n > h->size) return NULL;
  uint64_t need = ((uint64_t)n + HDR + NK_HEAP_ALIGN - 1) & ~(uint64_t)(NK_HEAP_ALIGN - 1);
  if (need < MIN_BLOCK) need = MIN_BLOCK;
  for (unsigned bin = bin_of(need); bin < BINS; bin++) {
    for (uint64_t off = h->bins[bin]; off; off = at(h, off)->next_free) {
      block *b = at(h, off);
      if (size_of(b) < need) continue;   /* only possible in the first bin */
      list_remove(h, b);
      take(h, b, need);
      return (uint8_t *)b + HDR;
    }
  }
  return NULL;
}

/* A payload at an align-aligned address: the block in front of it, when
** it does not start there, becomes a free block of its own (so at least
** MIN_BLOCK), and nothing is padded.  A page image of one page takes 4 KiB
** and its header, not the 8 KiB a padded allocation took. */
void *nk_heap_alloc_aligned(nk_heap *h, size_t n, size_t align) {
  if (align <= NK_HEAP_ALIGN) return nk_heap_alloc(h, n);
  if ((align & (align - 1)) || align > NK_HEAP_MAX_ALIGN || n > h->size) return NULL;
  uint64_t need = ((uint64_t)n + HDR + NK_HEAP_ALIGN - 1) & ~(uint64_t)(NK_HEAP_ALIGN - 1);
  if (need < MIN_BLOCK) need = MIN_BLOCK;
  for (unsigned bin = bin_of(need); bin < BINS; bin++) {
    for (uint64_t off = h->bins[bin]; off; off = at(h, off)->next_free) {
      block *b = at(h, off);
      uint64_t size = size_of(b);
      uint64_t front = -((uintptr_t)b + HDR) & (align - 1);   /* a multiple of 16 */
      if (front && front < MIN_BLOCK) front += align;
      if (size < front || size - front < need) continue;
      list_remove(h, b);
      if (front) {                           /* the front stays free, the rest is ours */
        block *rest = at(h, off + front);
        rest->size_used = size - front;
        rest->prev_size = front;
        next_block(h, rest)->prev_size = size - front;
        b->size_used = front;
        list_insert(h, b);
        b = rest;
      }
      take(h, b, need);
      return (uint8_t *)b + HDR;
    }
  }
  return NULL;
}

void nk_heap_free(nk_heap *h, void *p) {
  if (!p) return;
  block *b = (block *)((uint8_t *)p - HDR);
  uint64_t size = size_of(b);
  h->allocated_bytes -= size - HDR;
  h->allocation_count--;
  block *next = next_block(h, b);
  if (!is_used(next)) {                      /* merge with the following block */
    list_remove(h, next);
    size += size_of(next);
  }
  if (b->prev_size) {                        /* and with the preceding one */
    block *prev = at(h, off_of(h, b) - b->prev_size);
    if (!is_used(prev)) {
      list_remove(h, prev);
      size += size_of(prev);
      b = prev;
    }
  }
  b->size_used = size;
  next_block(h, b)->prev_size = size;
  list_insert(h, b);
}

void nk_heap_stats(const nk_heap *h, struct nub_heap_stats *out) {
  out->allocated_bytes = h->allocated_bytes;
  out->allocation_count = h->allocation_count;
  out->fragment_count = h->fragment_count;
  out->available_bytes = h->available_bytes;
}

bool nk_heap_check(const nk_heap *h) {
  uint64_t off = h->first, prev = 0, used = 0, used_bytes = 0, free_blocks = 0, free_bytes = 0;
  while (off < h->end) {
    const block *b = at(h, off);
    uint64_t size = size_of(b);
    if (size < MIN_BLOCK || size % NK_HEAP_ALIGN || off + size > h->end || b->prev_size != prev)
      return false;
    if (is_used(b)) { used++; used_bytes += size - HDR; }
    else {
      if (prev && !is_used(at(h, off - prev))) return false;   /* unmerged neighbours */
      free_blocks++;
      free_bytes += size - HDR;
    }
    prev = size;
    off += size;
  }
  if (off != h->end || at(h, h->end)->prev_size != prev) return false;
  uint64_t listed = 0;
  for (unsigned bin = 0; bin < BINS; bin++)
    for (uint64_t o = h->bins[bin], back = 0; o; back = o, o = at(h, o)->next_free) {
      const block *b = at(h, o);
      if (is_used(b) || bin_of(size_of(b)) != bin || b->prev_free != back) return false;
      if (++listed > free_blocks) return false;
    }
  return listed == free_blocks && used == h->allocation_count &&
         used_bytes == h->allocated_bytes && free_blocks == h->fragment_count &&
         free_bytes == h->available_bytes;
}
