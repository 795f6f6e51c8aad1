/*
** The guest heap: the region toolchain/pvm.ld reserves between
** __nub_heap_start and __nub_heap_end (zero pages of the SPI read-write
** area, so it costs nothing in the program file; its size is the link's
** --defsym=__nub_heap_size=N) managed by a segregated-fit allocator with
** boundary tags: free blocks are listed by size class (a power of two,
** found with one clz), a request takes the first fitting block of its
** own class or any block of the next non-empty class (a bitmap).  One
** free list measured 4.8x native on the heap workload: long lists of
** small blocks were scanned for every large request.  The PVM address space is fresh on
** every invocation, so there is no state to carry; sbrk exists only
** under gp07 and is not used.
**
**   block:  [ size | used ] [ prev_size ]  payload ...            16 B header
**   free:   payload starts with next/prev free-list links
**
** Fresh memory comes from a bump pointer (`top`); a block freed at the
** top lowers it again, other frees are coalesced with free neighbours and
** listed.
*/
#include "nub_guest.h"

extern unsigned char __nub_heap_start[], __nub_heap_end[];

typedef struct block {
  size_t size;       /* bytes including this header; bit 0 = in use */
  size_t prev_size;  /* size of the block below, 0 for the first */
} block;

typedef struct free_links { block *next, *prev; } free_links;

#define HDR sizeof(block)
#define MIN_BLOCK (HDR + sizeof(free_links))

#define heap __nub_heap_start
#define HEAP_BYTES ((size_t)(__nub_heap_end - __nub_heap_start))
static size_t top;              /* bytes of heap[] handed out so far */
static size_t top_prev;         /* size of the highest block, 0 if none */
#define CLASSES 64
static block *free_lists[CLASSES];     /* class c: sizes in [2^c, 2^(c+1)) */
static uint64_t nonempty;              /* bit c: free_lists[c] has blocks */
static size_t used_bytes, peak_bytes;

static size_t bsize(const block *b) { return b->size & ~(size_t)1; }
static int in_use(const block *b) { return (int)(b->size & 1); }
static free_links *links(block *b) { return (free_links *)(b + 1); }
static block *next_block(block *b) { return (block *)((unsigned char *)b + bsize(b)); }
static block *prev_block(block *b) { return (block *)((unsigned char *)b - b->prev_size); }
static int is_top(block *b) { return (unsigned char *)next_block(b) == heap + top; }

static unsigned size_class(size_t size) { return 63u - (unsigned)__builtin_clzll(size); }

static void list_remove(block *b) {
  free_links *l = links(b);
  unsigned c = size_class(bsize(b));
  if (l->prev) links(l->prev)->next = l->next;
  else if (!(free_lists[c] = l->next)) nonempty &= ~(1ull << c);
  if (l->next) links(l->next)->prev = l->prev;
}

static void list_push(block *b) {
  unsigned c = size_class(bsize(b));
  links(b)->prev = NULL;
  links(b)->next = free_lists[c];
  if (free_lists[c]) links(free_lists[c])->prev = b;
  free_lists[c] = b;
  nonempty |= 1ull << c;
}

/* A free block of at least need bytes, or NULL. */
static block *find_free(size_t need) {
  unsigned c = size_class(need);
  if (nonempty >> c & 1)
    for (block *b = free_lists[c]; b; b = links(b)->next)
      if (bsize(b) >= need) return b;
  uint64_t above = c + 1 < CLASSES ? nonempty >> (c + 1) << (c + 1) : 0;
  return above ? free_lists[__builtin_ctzll(above)] : NULL;
}

static void set_size(block *b, size_t size, int used) {
  b->size = size | (size_t)used;
  if ((unsigned char *)b + size < heap + top) next_block(b)->prev_size = size;
}

void *malloc(size_t n) {
  if (n > HEAP_BYTES) return NULL;
  size_t need = (n + HDR + 15) & ~(size_t)15;
  if (need < MIN_BLOCK) need = MIN_BLOCK;
  block *b = find_free(need);
  if (b) {
    size_t have = bsize(b);
    list_remove(b);
    if (have - need >= MIN_BLOCK) {       /* split: the rest stays free */
      set_size(b, need, 1);
      block *rest = next_block(b);
      rest->prev_size = need;
      set_size(rest, have - need, 0);
      list_push(rest);
    } else {
      set_size(b, have, 1);
    }
    used_bytes += bsize(b);
    if (used_bytes > peak_bytes) peak_bytes = used_bytes;
    return b + 1;
  }
  if (need > HEAP_BYTES - top) return NULL;
  b = (block *)(heap + top);
  b->prev_size = top_prev;
  top_prev = need;
  top += need;
  b->size = need | 1;
  used_bytes += need;
  if (used_bytes > peak_bytes) peak_bytes = used_bytes;
  return b + 1;
}

void free(void *p) {
  if (!p) return;
  block *b = (block *)p - 1;
  used_bytes -= bsize(b);
  size_t size = bsize(b);
  if (b->prev_size && !in_use(prev_block(b))) {    /* merge with the block below */
    block *prev = prev_block(b);
    list_remove(prev);
    size += bsize(prev);
    b = prev;
  }
  if ((unsigned char *)b + size < heap + top) {    /* merge with the block above */
    block *next = (block *)((unsigned char *)b + size);
    if (!in_use(next)) { list_remove(next); size += bsize(next); }
  }
  b->size = size;
  if (is_top(b)) {                                 /* give the tail back */
    top = (size_t)((unsigned char *)b - heap);
    top_prev = b->prev_size;
    return;
  }
  set_size(b, size, 0);
  list_push(b);
}

void *calloc(size_t count, size_t size) {
  if (size && count > (size_t)-1 / size) return NULL;
  void *p = malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (!n) { free(p); return NULL; }
  block *b = (block *)p - 1;
  size_t have = bsize(b) - HDR;
  if (n <= have) return p;
  void *q = malloc(n);
  if (!q) return NULL;
  memcpy(q, p, have);
  free(p);
  return q;
}

void nub_heap_stats_get(nub_heap_stats *out) {
  out->used = used_bytes;
  out->peak = peak_bytes;
  out->capacity = HEAP_BYTES;
}
