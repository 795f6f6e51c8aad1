/*
** Guest kernel internals shared by nk*.c.
*/
#ifndef NUB_NK_INTERNAL_H
#define NUB_NK_INTERNAL_H

#include "nk.h"
#include "nk_heap.h"
#include "nub/cap.h"

#define NK_DIRECTORY_TYPE_ID CAP_DIR_TYPE_ID

/* A program compiled for the kernel's engine, cached per Image, on a
** least-recently-used list. */
typedef struct nk_compiled {
  nub_pvm_program *prog;
  void *code;              /* engine artifact (JIT code), may be NULL */
  uint64_t bytes;          /* memory prog and code hold */
  uint32_t ordinal;        /* of the Image */
  uint32_t pins;           /* frames running it: never evicted while > 0 */
  struct nk_compiled *newer, *older;
} nk_compiled;

struct nk_kernel {
  nk_config cfg;
  nk_heap *heap;
  nub_cap_dir dir;
  nub_cap_view *views;         /* by directory ordinal: decoded once at put_cap */
  nk_compiled **compiled;  /* by ordinal of the Image; NULL = not compiled */
  size_t nviews, views_cap;
  nk_compiled *newest, *oldest;   /* the cache, by last use */
  uint64_t cache_bytes;    /* sum of their bytes */
  uint64_t budget;         /* cfg.memory_budget or the default */
  nub_pvm_mem *mem;            /* the invocation lane's address space (root frame) */
  int heap_fd;             /* backing of every frame's memory, or -1 */
  uint64_t heap_fd_offset;
  uint64_t bytes_through_fd; /* cap bytes stored by pwritev (nk_caps.c) */
  struct nk_frames *frames;  /* nk_frames.c: the call stack and its pools */
  nk_fn table[NUB_GUEST_FN_TABLE_SIZE];
  struct nub_kernel_stats stats;
  char last_error[NUB_KERNEL_ERROR_TEXT_MAX + 1];   /* KERNEL_LAST_ERROR */
};

uint32_t nk_reply(uint8_t *out, size_t out_cap, size_t *out_len, const void *data, size_t len);
uint32_t nk_reply_error(uint8_t *out, size_t out_cap, size_t *out_len, uint32_t status,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* nk_caps.c: the heap, the directory and publication */
int nk_caps_init(nk_kernel *k, char *err, size_t errlen);
uint64_t nk_caps_count(const nk_kernel *k);
/* The decoded cap stored under hash and its ordinal, or NULL. */
const nub_cap_view *nk_caps_find(const nk_kernel *k, const uint8_t hash[NUB_HASH_SIZE],
                             uint32_t *ordinal);
uint32_t nk_fn_put_cap(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t out_cap, size_t *out_len);
uint32_t nk_fn_republish(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len);

/* nk_invoke.c: the JIT cache and invocation */
int nk_invoke_init(nk_kernel *k, char *err, size_t errlen);
void nk_invoke_fini(nk_kernel *k);
/* Drop every compiled program; returns how many were dropped. */
uint64_t nk_jit_cache_clear(nk_kernel *k);
uint32_t nk_fn_invoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len);
/* The Image's compiled program from the cache (or compiled now): 0 or a
** kernel error code. */
uint32_t nk_compiled_image(nk_kernel *k, const nub_cap_image_view *im, uint32_t ordinal,
                           nk_compiled **out);
uint64_t nk_mapping_bytes(const nub_cap_image_view *im);
const nub_cap_view *nk_lookup(void *k, const uint8_t hash[CAP_HASH_SIZE]);

/* nk_frames.c: the CALL/HALT loop (docs/kernel.md) */
void nk_frames_fini(nk_kernel *k);
/* A host call the kernel answers itself (not a frame op): true when it
** was serviced and the frame resumes; false sends it to the host. */
typedef bool (*nk_host_fn)(void *ud, nub_pvm_vm *vm, const nub_pvm_mem *mem);
/* Run the root frame vm (Instance inst of image, compiled c, its memory
** built in k->mem and holding held bytes of the budget) and every frame
** it calls until the invocation ends; fills r.  host (may be NULL) sees
** every other ecalli first.  Returns 0 or a kernel error code. */
uint32_t nk_frames_run(nk_kernel *k, nub_pvm_vm *vm, nk_compiled *c, const nub_cap_view *image,
                       uint32_t image_ordinal, const nub_cap_view *inst, uint64_t held,
                       nk_host_fn host, void *host_ud, nub_invocation_result *r);
uint32_t nk_fn_last_error(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len);

#endif
