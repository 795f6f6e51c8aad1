/*
** The guest heap: a boundary-tag allocator that owns one fixed region.
** Everything the host may read (the cap directory and the caps) lives
** here.  Links are offsets from the region base, so the region means the
** same at any address.
*/
#ifndef NUB_NK_HEAP_H
#define NUB_NK_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/abi.h"

typedef struct nk_heap nk_heap;

#define NK_HEAP_ALIGN 16u
#define NK_HEAP_HEADER_SIZE 4096u   /* the first block starts here */

/* Set up a heap in [base, base + size); base must be 16-aligned.
** Returns NULL if the region is too small for the bookkeeping. */
nk_heap *nk_heap_init(void *base, size_t size);
void *nk_heap_alloc(nk_heap *h, size_t n);     /* NULL when full */
/* n bytes at an align-aligned address (a power of two up to
** NK_HEAP_MAX_ALIGN); NULL when no free block holds them so. */
#define NK_HEAP_MAX_ALIGN 4096u
void *nk_heap_alloc_aligned(nk_heap *h, size_t n, size_t align);
void nk_heap_free(nk_heap *h, void *p);        /* NULL is a no-op */
void nk_heap_stats(const nk_heap *h, struct nub_heap_stats *out);
/* Walk every block and free list; false if any invariant is broken. */
bool nk_heap_check(const nk_heap *h);

#endif
