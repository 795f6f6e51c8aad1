/*
** Private helpers of the capability layer: error filling, little-endian
** access, the SSZ reader, SHA-256 and the merkleizer.
*/
#ifndef NUB_CAP_INTERNAL_H
#define NUB_CAP_INTERNAL_H

#include <string.h>

#include "nub/cap.h"

int cap_fail(nub_cap_error *err, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copy a pvm error into err as code (CAP_ERR_CODE or CAP_ERR_PVM), with
** its offset shifted by base and its message after prefix. */
int cap_fail_pvm(nub_cap_error *err, int code, uint64_t base, const char *prefix,
                 const nub_pvm_error *perr);
/* Hex of a hash into buf (65 bytes). */
const char *cap_hex32(const uint8_t h[CAP_HASH_SIZE], char buf[65]);

/* GCC leaves the byte loop a loop (nub_cap_image_endpoint's 13 registers took
** ~10% of a warm inproc invoke): whole words are loaded as words. */
static inline uint64_t cap_le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (n == 8) { memcpy(&v, p, 8); return v; }
  if (n == 4) { uint32_t w; memcpy(&w, p, 4); return w; }
#endif
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}
static inline uint32_t cap_le32(const uint8_t *p) { return (uint32_t)cap_le(p, 4); }
static inline uint64_t cap_le64(const uint8_t *p) { return cap_le(p, 8); }
static inline void cap_put_le(uint8_t *p, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline bool cap_all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* ---- wire layout (docs/wire.md) ---- */

#define W_ENDPOINT   113u   /* key 1, entry_pc 4, stack_top 4, regs 104 */
#define W_MAPPING    41u    /* start 4, size 4, access 1, source 32 */
#define W_OVERLAY    36u    /* address 4, data 32 */
#define W_PAGE       4100u  /* index 4, bytes 4096 */
#define W_SLOT_FIXED 36u    /* key offset 4, hash 32; then the key bytes */
#define W_DATA_FIXED 12u    /* size 8, pages offset 4 */
#define W_IMAGE_FIXED 25u   /* profile 1, heap_top 4, heap_limit 4, 4 offsets */
#define W_INSTANCE_FIXED 216u
#define W_CNODE_FIXED 4u
#define W_REGS       (8u * CAP_REGS)
NUB_STATIC_ASSERT(W_ENDPOINT == 1 + 4 + 4 + W_REGS && W_MAPPING == 4 + 4 + 1 + CAP_HASH_SIZE &&
                  W_OVERLAY == 4 + CAP_HASH_SIZE && W_SLOT_FIXED == 4 + CAP_HASH_SIZE &&
                  W_PAGE == 4 + CAP_PAGE_SIZE,
                  "wire sizes follow the register count, the hash size and the page size");
NUB_STATIC_ASSERT(CAP_HASH_SIZE == 32, "a cap hash is a SHA-256 digest (cap_sha256 writes 32 bytes)");

/* Offsets of fields inside the fixed parts. */
enum {
  IMG_PROFILE = 0, IMG_HEAP_TOP = 1, IMG_HEAP_LIMIT = 5, IMG_CODE = 9,
  IMG_ENDPOINTS = 13, IMG_MAPPINGS = 17, IMG_SLOTS = 21,
  INST_IMAGE = 0, INST_CHAIN = 32, INST_CNODE = 64, INST_OVERLAYS = 96,
  INST_REGS = 100, INST_PC = 204, INST_GAS = 208,
  EP_KEY = 0, EP_PC = 1, EP_STACK = 5, EP_REGS = 9,
  MAP_START = 0, MAP_SIZE = 4, MAP_ACCESS = 8, MAP_SOURCE = 9,
};

/* ---- SSZ reader ---- */

/* A piece of the wire: bytes and their absolute offset in the object. */
typedef struct ssz_span {
  const uint8_t *p;
  size_t len;
  uint64_t off;
} ssz_span;

/* Decode a Data cap stored once (docs/wire.md, "Stored once"): the wire's
** CAP_DIR_DATA_HEAD-byte head, its length, the page indexes (u32 each)
** and the page bytes back to back.  Checks and errors are nub_cap_decode's
** (offsets the wire's); the view's pages is NULL, indexes and image set.
** first_zero: the position of the first all-zero page, from whoever
** stored the pages and checked them (page_count or more: none; the image
** is then not read, and may be NULL), or CAP_ZERO_READ to read them. */
#define CAP_ZERO_READ UINT64_MAX
#define CAP_ZERO_NONE (UINT64_MAX - 1)      /* checked elsewhere, or later */
/* The error of an all-zero page: position i, index idx, its bytes at off. */
int cap_fail_zero_page(nub_cap_error *err, uint64_t off, uint32_t i, uint32_t idx);
int cap_decode_data_stored(const uint8_t *head, size_t len, const uint8_t *indexes,
                           const uint8_t *image, uint64_t first_zero, nub_cap_view *out,
                           nub_cap_error *err);

/* Split a container into its 1..8 variable fields.  fixed = size of the
** fixed part, var_at[i] = where field i's 4-byte offset sits in it. */

int ssz_container(ssz_span c, size_t fixed, unsigned nvar,
                  const uint8_t *var_at, const char *const *names,
                  const char *what, ssz_span *vars, nub_cap_error *err);
/* A list of fixed-size elements: count = len / elem, no bytes left over. */
int ssz_list_fixed(ssz_span s, size_t elem, uint32_t limit, const char *what,
                   uint32_t *count, nub_cap_error *err);
/* A list of variable-size elements: validates the offset table. */
int ssz_list_var(ssz_span s, uint32_t limit, const char *what, uint32_t *count,
                 nub_cap_error *err);
/* Element i of a validated variable list. */
ssz_span ssz_list_elem(ssz_span s, uint32_t count, uint32_t i);

/* ---- SHA-256 (sha256.c) ---- */

/* One implementation: a whole message, and n 64-byte messages at in
** (64 bytes apart) to n digests at out (32 bytes apart); out may equal
** in (each digest lands over bytes already read). */
typedef struct cap_sha256_impl {
  const char *name;                 /* "sha-ni" or "portable" */
  void (*hash)(const uint8_t *p, size_t len, uint8_t out[32]);
  void (*pairs)(const uint8_t *in, uint8_t *out, size_t n);
} cap_sha256_impl;

extern const cap_sha256_impl cap_sha256_portable;
/* The SHA-extension path, or NULL when this CPU (or build) has none. */
const cap_sha256_impl *cap_sha256_hardware(void);
/* The path cap_sha256 and cap_sha256_pairs take: the hardware one when
** present, unless cap_sha256_use chose another. */
const cap_sha256_impl *cap_sha256_active(void);
/* Test and benchmark hook: route every cap hash through impl (e.g.
** &cap_sha256_portable); NULL goes back to the best path. */
void cap_sha256_use(const cap_sha256_impl *impl);
void cap_sha256(const uint8_t *p, size_t len, uint8_t out[32]);
void cap_sha256_pairs(const uint8_t *in, uint8_t *out, size_t n);

/* ---- merkleization (SHA-256) ---- */

#define SSZ_MAX_DEPTH 48

void ssz_pair(const uint8_t a[32], const uint8_t b[32], uint8_t out[32]);
/* Root of an all-zero subtree of 2^depth chunks. */
const uint8_t *ssz_zero(unsigned depth);
/* ceil(log2(n)), 0 for n <= 1: the depth SSZ pads a limit of n chunks to. */
unsigned ssz_depth(uint64_t n);
/* uint256 little-endian chunk of v. */
void ssz_chunk_u64(uint64_t v, uint8_t out[32]);
/* mix_in_length / mix_in_selector: H(root || uint256(v)). */
void ssz_mix_in(const uint8_t root[32], uint64_t v, uint8_t out[32]);

/* Streaming merkleizer: subtrees are appended left to right. */
typedef struct ssz_merkle {
  uint8_t node[SSZ_MAX_DEPTH + 1][32];  /* pending left siblings per level */
  uint64_t count;                       /* chunks appended so far */
} ssz_merkle;

void ssz_merkle_init(ssz_merkle *m);
/* Append one chunk. */
void ssz_merkle_add(ssz_merkle *m, const uint8_t chunk[32]);
/* Append n chunks stored contiguously at p, whole subtrees at a time
** (many pairs per cap_sha256_pairs call). */
void ssz_merkle_add_chunks(ssz_merkle *m, const uint8_t *p, uint64_t n);
/* Append n zero chunks in O(log n) hashes. */
void ssz_merkle_add_zeros(ssz_merkle *m, uint64_t n);
/* Root padded to 2^depth chunks (count must be <= 2^depth). */
void ssz_merkle_root(ssz_merkle *m, unsigned depth, uint8_t out[32]);
/* merkleize(pack(bytes), 2^depth chunks). */
void ssz_bytes_root(const uint8_t *p, size_t len, unsigned depth,
                    uint8_t out[32]);
/* merkleize of n leaves (padded to the next power of two). */
void ssz_leaves_root(const uint8_t (*leaves)[32], unsigned n, uint8_t out[32]);

/* ---- shared by decode, hash and encode ---- */

/* CAP_ERR_SENTINEL if h is the failure sentinel (kind names the cap). */
int cap_refuse_sentinel(const uint8_t h[CAP_HASH_SIZE], int kind, nub_cap_error *err);

/* Compare two keys: lexicographic, a proper prefix sorts first. */
int cap_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
