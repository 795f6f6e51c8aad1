/*
** Content hashes: the SHA-256 SSZ hash_tree_root of the Cap union
** (docs/wire.md, "Hashes"), computed straight from a validated view.
*/
#include <sodium.h>
#include <stdlib.h>

#include "cap_internal.h"

const uint8_t nub_cap_sentinel_hash[CAP_HASH_SIZE] = {
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

bool nub_cap_hash_is_sentinel(const uint8_t h[CAP_HASH_SIZE]) {
  return memcmp(h, nub_cap_sentinel_hash, CAP_HASH_SIZE) == 0;
}

#define KEY_DEPTH  0    /* ByteList[8]: one chunk */


/* Vector[uint64, 13]: 104 bytes packed into 4 chunks. */
static void regs_root(const uint8_t *packed, uint8_t out[32]) {
  ssz_bytes_root(packed, W_REGS, 2, out);
}

static void regs_root_values(const uint64_t *regs, uint8_t out[32]) {
  uint8_t packed[W_REGS];
  for (int i = 0; i < CAP_REGS; i++) cap_put_le(packed + 8 * i, regs[i], 8);
  regs_root(packed, out);
}

/* A list of composite elements: merkleize the element roots to the
** limit's depth, then mix in the length. */
typedef void (*elem_root_fn)(const void *list, uint32_t i, uint8_t out[32]);

static void list_root(const void *list, uint32_t n, uint32_t limit,
                      elem_root_fn fn, uint8_t out[32]) {
  ssz_merkle m;
  uint8_t r[32];
  ssz_merkle_init(&m);
  for (uint32_t i = 0; i < n; i++) {
    fn(list, i, r);
    ssz_merkle_add(&m, r);
  }
  ssz_merkle_root(&m, ssz_depth(limit), r);
  ssz_mix_in(r, n, out);
}

/* ---- Data: merkleize([size, pages_root], 2) ---- */

/* Pages hashed together (16 KiB of first-level digests on the stack): a
** page's first level is one pairs call of 64; every further level of all
** the batch's pages is one call. */
#define PAGE_BATCH 8
_Static_assert(PAGE_BATCH == NUB_CAP_LOAD_PAGES, "a loader fills one batch");
#define PAGE_LEVEL1 (CAP_PAGE_SIZE / 2)     /* 64 digests of one page */

/* Where the hash reads page bytes: the view's own (NULL source), or
** batches a loader copies into buf, checked for all-zero pages as they
** come (the decode from parts did not read them). */
typedef struct page_source {
  nub_cap_page_loader load;
  void *ud;
  uint8_t *buf;                   /* PAGE_BATCH pages */
  uint32_t zero;                  /* the first all-zero page's position, or UINT32_MAX */
} page_source;

/* Roots of pages first .. first+n-1 (n <= PAGE_BATCH) to buf[0 .. 32n). */
static void page_roots(const nub_cap_data_view *d, page_source *src, uint32_t first, uint32_t n,
                       uint8_t *buf) {
  if (src) src->load(src->ud, first, n, src->buf);
  for (uint32_t j = 0; j < n; j++) {
    const uint8_t *bytes = src ? src->buf + (size_t)j * CAP_PAGE_SIZE
                               : nub_cap_data_page(d, first + j).bytes;
    if (src && src->zero == UINT32_MAX && cap_all_zero(bytes, CAP_PAGE_SIZE)) src->zero = first + j;
    cap_sha256_pairs(bytes, buf + (size_t)PAGE_LEVEL1 * j, CAP_PAGE_SIZE / 64);
  }
  /* each page's digests stay a power-of-two run, so levels never mix pages */
  for (size_t nodes = (size_t)n * (PAGE_LEVEL1 / 64); nodes >= n; nodes /= 2)
    cap_sha256_pairs(buf, buf, nodes);
}

/* The root of depth `depth` over the pages at view positions [first,
** end), whose indexes are base .. base + 2^depth - 1, into out.  Stops at
** a source's first all-zero page (the cap is refused, the root unused). */
static void pages_root(const nub_cap_data_view *d, page_source *src, uint32_t first,
                       uint32_t end, uint64_t base, unsigned depth, uint8_t out[32]) {
  uint8_t buf[PAGE_BATCH * PAGE_LEVEL1];
  ssz_merkle m;
  ssz_merkle_init(&m);
  for (uint32_t i = first; i < end; i += PAGE_BATCH) {
    uint32_t n = end - i < PAGE_BATCH ? end - i : PAGE_BATCH;
    page_roots(d, src, i, n, buf);
    if (src && src->zero != UINT32_MAX) {
      memset(out, 0, 32);            /* joined and hashed on, then thrown away */
      return;
    }
    /* runs of consecutive page indices go in as runs of chunks */
    for (uint32_t j = 0; j < n;) {
      uint32_t index = nub_cap_data_page(d, i + j).index, run = 1;
      while (j + run < n && nub_cap_data_page(d, i + j + run).index == index + run) run++;
      ssz_merkle_add_zeros(&m, index - base - m.count);
      ssz_merkle_add_chunks(&m, buf + 32 * (size_t)j, run);
      j += run;
    }
  }
  ssz_merkle_root(&m, depth, out);
}

/* The right half of a split Data root, run by the helper. */
typedef struct half_job {
  const nub_cap_data_view *d;
  page_source *src;
  uint32_t first, end;
  uint64_t base;
  unsigned depth;
  uint8_t root[32];
} half_job;

static void run_half(void *arg) {
  half_job *j = arg;
  pages_root(j->d, j->src, j->first, j->end, j->base, j->depth, j->root);
}

/* A Data cap of at least helper->min_pages pages is hashed in two halves
** of its index space, the right one by the helper (the tree's two
** subtrees, joined by one pair), when a helper is given and takes it.
** src: NULL (the view's bytes), or one source per half (the first for the
** whole when the helper does not take the right half). */
static void data_root(const nub_cap_data_view *d, const nub_cap_helper *helper,
                      page_source src[2], uint8_t out[32]) {
  uint64_t npages = d->size / CAP_PAGE_SIZE;
  unsigned depth = ssz_depth(npages);
  uint8_t leaves[2][32];
  if (helper && depth && d->page_count >= helper->min_pages && d->page_count >= 2) {
    uint64_t mid = 1ull << (depth - 1);
    uint32_t lo = 0, hi = d->page_count;            /* the first page at or past mid */
    while (lo < hi) {
      uint32_t m = lo + (hi - lo) / 2;
      if (nub_cap_data_page(d, m).index < mid) lo = m + 1;
      else hi = m;
    }
    half_job right = {d, src ? &src[1] : NULL, lo, d->page_count, mid, depth - 1, {0}};
    if (lo < d->page_count && !helper->start(helper->ud, run_half, &right)) {
      uint8_t left[32];
      pages_root(d, src, 0, lo, 0, depth - 1, left);
      helper->wait(helper->ud);
      ssz_pair(left, right.root, leaves[1]);
      goto done;
    }
  }
  pages_root(d, src, 0, d->page_count, 0, depth, leaves[1]);
done:
  ssz_chunk_u64(d->size, leaves[0]);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 2, out);
}

/* ---- Image ---- */

static void endpoint_root(const void *list, uint32_t i, uint8_t out[32]) {
  const uint8_t *e = (const uint8_t *)list + (size_t)i * W_ENDPOINT;
  uint8_t leaves[4][32];
  ssz_chunk_u64(e[EP_KEY], leaves[0]);
  ssz_chunk_u64(cap_le32(e + EP_PC), leaves[1]);
  ssz_chunk_u64(cap_le32(e + EP_STACK), leaves[2]);
  regs_root(e + EP_REGS, leaves[3]);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 4, out);
}

static void mapping_root(const void *list, uint32_t i, uint8_t out[32]) {
  const uint8_t *m = (const uint8_t *)list + (size_t)i * W_MAPPING;
  uint8_t leaves[4][32];
  ssz_chunk_u64(cap_le32(m + MAP_START), leaves[0]);
  ssz_chunk_u64(cap_le32(m + MAP_SIZE), leaves[1]);
  ssz_chunk_u64(m[MAP_ACCESS], leaves[2]);
  memcpy(leaves[3], m + MAP_SOURCE, 32);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 4, out);
}

/* Slot {key: ByteList[8], hash: Bytes32}. */
static void slot_root(const void *list, uint32_t i, uint8_t out[32]) {
  nub_cap_slot s;
  uint8_t leaves[2][32];
  nub_cap_slots_get((const nub_cap_slots *)list, i, &s);
  ssz_bytes_root(s.key, s.key_len, KEY_DEPTH, leaves[0]);
  ssz_mix_in(leaves[0], s.key_len, leaves[0]);
  memcpy(leaves[1], s.hash, 32);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 2, out);
}

static void image_root(const nub_cap_image_view *im, uint8_t out[32]) {
  uint8_t leaves[7][32];
  ssz_chunk_u64(im->profile, leaves[0]);
  ssz_chunk_u64(im->heap_top, leaves[1]);
  ssz_chunk_u64(im->heap_limit, leaves[2]);
  ssz_bytes_root(im->code, im->code_len, ssz_depth(CAP_MAX_CODE_BYTES / 32), leaves[3]);
  ssz_mix_in(leaves[3], im->code_len, leaves[3]);
  list_root(im->endpoints, im->endpoint_count, CAP_MAX_ENDPOINTS, endpoint_root, leaves[4]);
  list_root(im->mappings, im->mapping_count, CAP_MAX_MAPPINGS, mapping_root, leaves[5]);
  list_root(&im->slots, im->slots.count, CAP_MAX_IMAGE_SLOTS, slot_root, leaves[6]);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 7, out);
}

/* ---- Instance ---- */

static void overlay_root(const void *list, uint32_t i, uint8_t out[32]) {
  const uint8_t *o = (const uint8_t *)list + (size_t)i * W_OVERLAY;
  uint8_t leaves[2][32];
  ssz_chunk_u64(cap_le32(o), leaves[0]);
  memcpy(leaves[1], o + 4, 32);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 2, out);
}

static void instance_root(const nub_cap_instance_view *in, uint8_t out[32]) {
  uint8_t leaves[7][32];
  memcpy(leaves[0], in->image_hash, 32);
  memcpy(leaves[1], in->image_hash_chain, 32);
  memcpy(leaves[2], in->root_cnode, 32);
  list_root(in->overlays, in->overlay_count, CAP_MAX_OVERLAYS, overlay_root, leaves[3]);
  regs_root_values(in->regs, leaves[4]);
  ssz_chunk_u64(in->pc, leaves[5]);
  ssz_chunk_u64(in->gas, leaves[6]);
  ssz_leaves_root((const uint8_t(*)[32])leaves, 7, out);
}

int cap_refuse_sentinel(const uint8_t h[CAP_HASH_SIZE], int kind, nub_cap_error *err) {
  char hex[65];
  if (!nub_cap_hash_is_sentinel(h)) return CAP_OK;
  return cap_fail(err, CAP_ERR_SENTINEL, 0,
                  "cap: %s hashes to the reserved failure sentinel %s",
                  nub_cap_kind_name(kind), cap_hex32(h, hex));
}

int nub_cap_hash(const nub_cap_view *v, uint8_t out[CAP_HASH_SIZE], nub_cap_error *err) {
  return nub_cap_hash_with(v, NULL, out, err);
}

int nub_cap_hash_with(const nub_cap_view *v, const nub_cap_helper *helper,
                      uint8_t out[CAP_HASH_SIZE], nub_cap_error *err) {
  uint8_t root[32];
  if (nub_cap_init())
    return cap_fail(err, CAP_ERR_NOMEM, 0, "cap: libsodium failed to initialise");
  switch (v->kind) {
  case CAP_DATA: data_root(&v->data, helper, NULL, root); break;
  case CAP_IMAGE: image_root(&v->image, root); break;
  case CAP_INSTANCE: instance_root(&v->instance, root); break;
  case CAP_CNODE:   /* a one-field container's root is the field's root */
    list_root(&v->cnode.slots, v->cnode.slots.count, CAP_MAX_CNODE_SLOTS, slot_root, root);
    break;
  default:
    return cap_fail(err, CAP_ERR_ARG, 0, "cap: view of unknown kind %d", (int)v->kind);
  }
  ssz_mix_in(root, (uint64_t)v->kind, out);
  return cap_refuse_sentinel(out, v->kind, err);
}

int nub_cap_hash_data_loaded(const nub_cap_view *v, const nub_cap_helper *helper,
                             nub_cap_page_loader load, void *ud, uint8_t out[CAP_HASH_SIZE],
                             nub_cap_error *err) {
  uint8_t root[32];
  if (v->kind != CAP_DATA || !load)
    return cap_fail(err, CAP_ERR_ARG, 0, "cap: a loaded hash needs a Data view and a loader");
  if (nub_cap_init())
    return cap_fail(err, CAP_ERR_NOMEM, 0, "cap: libsodium failed to initialise");
  uint8_t *bufs = malloc(2 * (size_t)PAGE_BATCH * CAP_PAGE_SIZE);
  if (!bufs) return cap_fail(err, CAP_ERR_NOMEM, 0, "cap: no memory for the loaded pages");
  page_source src[2] = {{load, ud, bufs, UINT32_MAX},
                        {load, ud, bufs + (size_t)PAGE_BATCH * CAP_PAGE_SIZE, UINT32_MAX}};
  data_root(&v->data, helper, src, root);
  free(bufs);
  uint32_t zero = src[0].zero < src[1].zero ? src[0].zero : src[1].zero;
  if (zero != UINT32_MAX)
    return cap_fail_zero_page(err, CAP_DIR_DATA_HEAD + (uint64_t)zero * W_PAGE + 4, zero,
                              nub_cap_data_page(&v->data, zero).index);
  ssz_mix_in(root, CAP_DATA, out);
  return cap_refuse_sentinel(out, CAP_DATA, err);
}

int nub_cap_hash_wire(const uint8_t *wire, const uint8_t *end,
                  uint8_t out[CAP_HASH_SIZE], nub_cap_error *err) {
  nub_cap_view v;
  int rc = nub_cap_decode(wire, end, &v, err);
  return rc ? rc : nub_cap_hash(&v, out, err);
}

void nub_cap_hash_chain(const uint8_t parent[CAP_HASH_SIZE],
                    const uint8_t image_hash[CAP_HASH_SIZE],
                    uint8_t out[CAP_HASH_SIZE]) {
  uint8_t buf[2 * CAP_HASH_SIZE];
  nub_cap_init();
  memcpy(buf, parent, CAP_HASH_SIZE);
  memcpy(buf + CAP_HASH_SIZE, image_hash, CAP_HASH_SIZE);
  crypto_generichash(out, CAP_HASH_SIZE, buf, sizeof buf, NULL, 0);
}
