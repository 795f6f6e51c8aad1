/*
** nub capabilities: content-addressed Data / Image / Instance / CNode
** objects, their SSZ wire form, SHA-256 hash_tree_root hashes, builders,
** the memory-building step of invoke, and the append-only directory.
**
** docs/wire.md is the normative description of every byte and hash here.
**
** Conventions: functions return an int status (0 = CAP_OK, else a
** nub_cap_errcode) and, when given a nub_cap_error, fill it with a message that
** names the field, the element index, the byte offset and the limit.
** Nothing reads outside the (wire, end) bounds it is given.
*/
#ifndef NUB_CAP_H
#define NUB_CAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAP_HASH_SIZE 32
#define CAP_PAGE_SIZE 4096u
#define CAP_REGS      13

/* The same facts as the engine's, tied: a cap's registers, pages and
** access bits are the PVM's. */
NUB_STATIC_ASSERT(CAP_REGS == PVM_REGS, "a cap holds the PVM's registers");
NUB_STATIC_ASSERT(CAP_PAGE_SIZE == PVM_PAGE_SIZE, "cap pages are PVM pages");

/* Union selectors of the SSZ `Cap` type (first wire byte). */
typedef enum nub_cap_kind {
  CAP_INSTANCE = 0,
  CAP_IMAGE = 1,
  CAP_DATA = 2,
  CAP_CNODE = 3,
  CAP_KIND_COUNT
} nub_cap_kind;

/* SSZ list limits and value limits (docs/wire.md, "Limits"). */
#define CAP_MAX_CODE_BYTES   (1u << 28)   /* Image.code ByteList limit */
#define CAP_MAX_ENDPOINTS    256u
#define CAP_MAX_MAPPINGS     256u
#define CAP_MAX_IMAGE_SLOTS  256u
#define CAP_MAX_OVERLAYS     256u
#define CAP_MAX_CNODE_SLOTS  65536u
#define CAP_MAX_KEY_LEN      8u
#define CAP_MAX_DATA_SIZE    (1ull << 32)
#define CAP_MAX_DATA_PAGES   (1u << 20)

/* Mapping access (same numbers as nub_pvm_access). */
#define CAP_ACCESS_RO 1u
#define CAP_ACCESS_RW 2u
NUB_STATIC_ASSERT(CAP_ACCESS_RO == PVM_ACCESS_RO && CAP_ACCESS_RW == PVM_ACCESS_RW,
                  "a mapping's access is the PVM's page access");

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

typedef enum nub_cap_errcode {
  CAP_OK = 0,
  CAP_ERR_TRUNCATED,   /* input ends inside a fixed part */
  CAP_ERR_OFFSET,      /* SSZ offset not where it must be */
  CAP_ERR_TRAILING,    /* bytes left after the last element of a list */
  CAP_ERR_LIMIT,       /* a list or value over its limit */
  CAP_ERR_SELECTOR,    /* unknown union selector */
  CAP_ERR_ORDER,       /* keys / addresses not strictly ascending */
  CAP_ERR_RESERVED,    /* a reserved value (bad access, profile, hash) */
  CAP_ERR_ALIGN,       /* address or size not page aligned */
  CAP_ERR_RANGE,       /* address range outside [0x10000, 2^32) */
  CAP_ERR_OVERLAP,     /* memory ranges overlap */
  CAP_ERR_CANONICAL,   /* a second encoding of the same value (zero page) */
  CAP_ERR_CODE,        /* the Image program failed nub_pvm_blob_parse */
  CAP_ERR_SENTINEL,    /* a computed hash equals the 32 x 0xFF sentinel */
  CAP_ERR_MISSING,     /* a referenced hash is not available */
  CAP_ERR_KIND,        /* a cap of another kind than required */
  CAP_ERR_PVM,         /* a pvm layer call failed (pvm_code says why) */
  CAP_ERR_FULL,        /* allocator or output buffer out of space */
  CAP_ERR_CORRUPT,     /* a directory region fails validation */
  CAP_ERR_BUSY,        /* directory writer kept a read retrying past its bound */
  CAP_ERR_ARG,         /* bad argument from the caller */
  CAP_ERR_NOMEM,
  CAP_ERR_COUNT
} nub_cap_errcode;

typedef struct nub_cap_error {
  int code;                /* nub_cap_errcode */
  int pvm_code;            /* nub_pvm_errcode for CAP_ERR_CODE / CAP_ERR_PVM */
  uint64_t offset;         /* byte offset in the wire object, when it applies */
  uint8_t hash[CAP_HASH_SIZE];  /* CAP_ERR_MISSING / KIND: the hash */
  char msg[256];
} nub_cap_error;

NUB_API const char *nub_cap_errcode_name(int code);
NUB_API const char *nub_cap_kind_name(int kind);

/* Prepare libsodium and the zero-hash table.  Every function calls it
** lazily; call it up front to do the work (and libsodium's start-up) at a
** time of your choosing.  Thread safe.  (Named nub_cap_init, not
** cap_init: libcap exports cap_init, and a program links both.) */
NUB_API int nub_cap_init(void);

/* ------------------------------------------------------------------ */
/* Values carried by caps                                               */
/* ------------------------------------------------------------------ */

/* One 4 KiB page of a Data cap: its index and its 4096 bytes. */
typedef struct nub_cap_page {
  uint32_t index;
  const uint8_t *bytes;
} nub_cap_page;

typedef struct nub_cap_endpoint {
  uint8_t key;
  uint32_t entry_pc;
  uint32_t stack_top;      /* informational: one past the stack; 0 = none */
  uint64_t regs[CAP_REGS]; /* initial registers */
} nub_cap_endpoint;

typedef struct nub_cap_mapping {
  uint32_t start, size;    /* page aligned, start >= 0x10000, end <= 2^32 */
  uint8_t access;          /* CAP_ACCESS_RO or CAP_ACCESS_RW */
  uint8_t source[CAP_HASH_SIZE];  /* Data cap hash, all zero = zero fill */
} nub_cap_mapping;

/* A CNode or Image slot: key (0..8 bytes) -> cap hash. */
typedef struct nub_cap_slot {
  uint8_t key_len;
  uint8_t key[CAP_MAX_KEY_LEN];
  uint8_t hash[CAP_HASH_SIZE];
} nub_cap_slot;

/* Instance memory overlay: a Data cap written at address. */
typedef struct nub_cap_overlay {
  uint32_t address;
  uint8_t data[CAP_HASH_SIZE];
} nub_cap_overlay;

/* ------------------------------------------------------------------ */
/* Views: validated, zero-copy, read-only windows on wire bytes         */
/* ------------------------------------------------------------------ */

/* The slot list of an Image or a CNode (SSZ list of variable elements). */
typedef struct nub_cap_slots {
  const uint8_t *p;        /* offset table, then elements */
  uint32_t len;
  uint32_t count;
} nub_cap_slots;

typedef struct nub_cap_data_view {
  uint64_t size;           /* bytes, page multiple, <= 2^32 */
  uint32_t page_count;     /* non-zero pages present on the wire */
  uint32_t run_count;      /* maximal runs of consecutive page indexes */
  const uint8_t *pages;    /* page_count records of (u32 index, 4096 bytes) in
                              the wire; NULL for a Data cap stored once */
  /* Set by a directory that keeps page images (nub_cap_dir.page_images),
  ** NULL otherwise: the page bytes, page aligned, in wire order, and
  ** run_count pairs (first page index, page count) describing them.  Such
  ** a directory stores a Data cap's pages only there (docs/wire.md,
  ** "Stored once"): pages is NULL and indexes holds the page_count u32
  ** (LE) indexes.  nub_cap_data_page reads either form.  A view decoded
  ** from parts (nub_cap_decode_data_parts) has indexes but no bytes: image
  ** NULL, and nub_cap_data_page gives bytes NULL. */
  const uint8_t *image;
  const uint32_t *runs;
  const uint8_t *indexes;
} nub_cap_data_view;

typedef struct nub_cap_image_view {
  uint8_t profile;         /* nub_pvm_profile */
  uint32_t heap_top, heap_limit;   /* sbrk heap; 0, 0 = none */
  const uint8_t *code;     /* GP generic blob */
  uint32_t code_len;
  nub_pvm_blob blob;           /* parsed code, pointing into the wire */
  const uint8_t *endpoints;
  uint32_t endpoint_count;
  const uint8_t *mappings;
  uint32_t mapping_count;
  nub_cap_slots slots;
} nub_cap_image_view;

typedef struct nub_cap_instance_view {
  const uint8_t *image_hash;
  const uint8_t *image_hash_chain;
  const uint8_t *root_cnode;       /* all zero = empty cnode */
  const uint8_t *overlays;
  uint32_t overlay_count;
  uint64_t regs[CAP_REGS];
  uint32_t pc;
  uint64_t gas;                    /* <= INT64_MAX */
} nub_cap_instance_view;

typedef struct nub_cap_cnode_view {
  nub_cap_slots slots;
} nub_cap_cnode_view;

typedef struct nub_cap_view {
  nub_cap_kind kind;
  const uint8_t *wire;     /* the bytes the view reads; they must not change */
  size_t len;
  union {
    nub_cap_data_view data;
    nub_cap_image_view image;
    nub_cap_instance_view instance;
    nub_cap_cnode_view cnode;
  };
} nub_cap_view;

/* Strictly validate the whole object in [wire, end) and fill a view. */
NUB_API int nub_cap_decode(const uint8_t *wire, const uint8_t *end, nub_cap_view *out,
               nub_cap_error *err);
/* A Data cap with pages decoded from its parts, not its whole wire: the
** wire's first CAP_DIR_DATA_HEAD (13) bytes at head, its length len (13 +
** 4100 n, n >= 1) and its n page indexes (u32 LE each) at indexes.  Every
** check and error of nub_cap_decode but the one that reads page bytes (no
** page all zero), which nub_cap_hash_data_loaded makes as it hashes them
** (so a cap with a zero page and a bad index after it is refused here for
** the index, where nub_cap_decode names the page).  The view reads head
** and indexes (pages and image NULL). */
NUB_API int nub_cap_decode_data_parts(const uint8_t *head, size_t len, const uint8_t *indexes,
                                      nub_cap_view *out, nub_cap_error *err);
/* Point a view at an identical copy of its bytes (e.g. after the
** directory stored them): O(1), no validation needed. */
NUB_API void nub_cap_view_rebase(nub_cap_view *v, const uint8_t *new_wire);

/* Field access on valid views (i below the count; no checks needed). */
NUB_API nub_cap_page nub_cap_data_page(const nub_cap_data_view *d, uint32_t i);
/* Bytes of page page_index, NULL when that page is all zero. */
NUB_API const uint8_t *nub_cap_data_find_page(const nub_cap_data_view *d, uint32_t page_index);
NUB_API void nub_cap_image_endpoint(const nub_cap_image_view *im, uint32_t i, nub_cap_endpoint *out);
NUB_API bool nub_cap_image_find_endpoint(const nub_cap_image_view *im, uint8_t key,
                             nub_cap_endpoint *out);
NUB_API void nub_cap_image_mapping(const nub_cap_image_view *im, uint32_t i, nub_cap_mapping *out);
NUB_API void nub_cap_instance_overlay(const nub_cap_instance_view *in, uint32_t i,
                          nub_cap_overlay *out);
NUB_API void nub_cap_slots_get(const nub_cap_slots *s, uint32_t i, nub_cap_slot *out);
NUB_API bool nub_cap_slots_find(const nub_cap_slots *s, const uint8_t *key, size_t key_len,
                    nub_cap_slot *out);

/* ------------------------------------------------------------------ */
/* Hashes                                                               */
/* ------------------------------------------------------------------ */

/* 32 x 0xFF: put_cap's failure reply; no cap may hash to it. */
NUB_API extern const uint8_t nub_cap_sentinel_hash[CAP_HASH_SIZE];
NUB_API bool nub_cap_hash_is_sentinel(const uint8_t h[CAP_HASH_SIZE]);

/* SHA-256 SSZ hash_tree_root of the Cap union (selector mixed in). */
NUB_API int nub_cap_hash(const nub_cap_view *v, uint8_t out[CAP_HASH_SIZE], nub_cap_error *err);
/* A second thread for hashing large Data caps: start(ud, fn, arg) runs
** fn(arg) on it and returns 0 (or non-zero: the caller does the work
** itself), wait(ud) returns once fn has returned.  A Data cap of at least
** min_pages pages is hashed in two halves of its page index space, the
** right one by the helper; the hash is nub_cap_hash's. */
typedef struct nub_cap_helper {
  int (*start)(void *ud, void (*fn)(void *), void *arg);
  void (*wait)(void *ud);
  void *ud;
  uint32_t min_pages;
} nub_cap_helper;
NUB_API int nub_cap_hash_with(const nub_cap_view *v, const nub_cap_helper *helper,
                              uint8_t out[CAP_HASH_SIZE], nub_cap_error *err);
/* The hash of a Data view whose page bytes the caller hands over as the
** hash needs them: load puts the bytes of the n <= NUB_CAP_LOAD_PAGES
** pages at view positions first .. first+n-1 back to back at buf (a
** buffer of the hasher's), in ascending order of first; the hash reads
** only buf.  With a helper, load is called on two threads at once, for
** disjoint pages.  For a caller that copies each page where it goes as it
** is hashed, reading the bytes once (the host's put: its record and the
** request buffer).  The view usually comes from nub_cap_decode_data_parts;
** an all-zero page among those loaded is refused as nub_cap_decode refuses
** it (canonical, the first by position).  The hash is nub_cap_hash's. */
#define NUB_CAP_LOAD_PAGES 8u
typedef void (*nub_cap_page_loader)(void *ud, uint32_t first, uint32_t n, uint8_t *buf);
NUB_API int nub_cap_hash_data_loaded(const nub_cap_view *v, const nub_cap_helper *helper,
                                     nub_cap_page_loader load, void *ud,
                                     uint8_t out[CAP_HASH_SIZE], nub_cap_error *err);
/* nub_cap_decode + nub_cap_hash. */
NUB_API int nub_cap_hash_wire(const uint8_t *wire, const uint8_t *end,
                  uint8_t out[CAP_HASH_SIZE], nub_cap_error *err);
/* Image hash chain: out = BLAKE2b-256(parent || image_hash).  A fresh
** Instance uses parent = 32 zero bytes. */
NUB_API void nub_cap_hash_chain(const uint8_t parent[CAP_HASH_SIZE],
                    const uint8_t image_hash[CAP_HASH_SIZE],
                    uint8_t out[CAP_HASH_SIZE]);

/* ------------------------------------------------------------------ */
/* Encoders                                                             */
/* ------------------------------------------------------------------ */

typedef struct nub_cap_data_spec {
  uint64_t size;
  const nub_cap_page *pages;   /* ascending index; all-zero pages are dropped */
  uint32_t page_count;
} nub_cap_data_spec;

typedef struct nub_cap_image_spec {
  uint8_t profile;
  uint32_t heap_top, heap_limit;
  const uint8_t *code;
  size_t code_len;
  const nub_cap_endpoint *endpoints;  /* ascending key */
  uint32_t endpoint_count;
  const nub_cap_mapping *mappings;    /* ascending start, disjoint */
  uint32_t mapping_count;
  const nub_cap_slot *slots;          /* ascending key */
  uint32_t slot_count;
} nub_cap_image_spec;

typedef struct nub_cap_instance_spec {
  uint8_t image_hash[CAP_HASH_SIZE];
  uint8_t image_hash_chain[CAP_HASH_SIZE];
  uint8_t root_cnode[CAP_HASH_SIZE];
  const nub_cap_overlay *overlays;    /* ascending address */
  uint32_t overlay_count;
  uint64_t regs[CAP_REGS];
  uint32_t pc;
  uint64_t gas;
} nub_cap_instance_spec;

typedef struct nub_cap_cnode_spec {
  const nub_cap_slot *slots;          /* ascending key */
  uint32_t slot_count;
} nub_cap_cnode_spec;

typedef struct nub_cap_spec {
  nub_cap_kind kind;
  union {
    nub_cap_data_spec data;
    nub_cap_image_spec image;
    nub_cap_instance_spec instance;
    nub_cap_cnode_spec cnode;
  };
} nub_cap_spec;

/* Encode spec.  *len receives the wire size; with out == NULL only the
** size is computed.  The bytes written are validated by nub_cap_decode, so an
** encoder never produces a wire object the decoder would reject. */
NUB_API int nub_cap_encode(const nub_cap_spec *spec, uint8_t *out, size_t out_cap, size_t *len,
               nub_cap_error *err);
/* Same, into a malloc'd buffer (free() it). */
NUB_API int nub_cap_encode_alloc(const nub_cap_spec *spec, uint8_t **out, size_t *len,
                     nub_cap_error *err);
/* A Data cap of size bytes whose first len bytes are bytes (rest zero). */
NUB_API int nub_cap_encode_data_alloc(uint64_t size, const uint8_t *bytes, size_t len,
                          uint8_t **out, size_t *out_len, nub_cap_error *err);
/* The spec a view describes (arrays malloc'd, pages point into the view's
** wire); free with nub_cap_spec_free. */
NUB_API int nub_cap_spec_from_view(const nub_cap_view *v, nub_cap_spec *out, nub_cap_error *err);
NUB_API void nub_cap_spec_free(nub_cap_spec *s);

/* ------------------------------------------------------------------ */
/* Builders                                                             */
/* ------------------------------------------------------------------ */

typedef struct nub_cap_item {
  nub_cap_kind kind;
  uint8_t *wire;           /* malloc'd */
  size_t len;
  uint8_t hash[CAP_HASH_SIZE];
} nub_cap_item;

/* The caps a builder made: Data caps first, then the Image, then the
** Instance. */
typedef struct nub_cap_bundle {
  nub_cap_item *items;
  uint32_t count;
  uint32_t image, instance;       /* indexes into items */
} nub_cap_bundle;

NUB_API void nub_cap_bundle_free(nub_cap_bundle *b);

/* From a GP standard program (A.7) and argument bytes: Data caps for RO,
** RW and args, an Image for ISA profile `profile` (the kernel loads its
** code under that profile) with mappings RO / RW / heap / stack / args,
** the sbrk heap, endpoint 0 with the SPI registers, and a fresh Instance.
** An unknown profile is CAP_ERR_RESERVED. */
NUB_API int nub_cap_build_spi(nub_pvm_profile profile, const uint8_t *spi, size_t spi_len,
                  const uint8_t *args, uint32_t args_len, nub_cap_bundle *out, nub_cap_error *err);

/* The same with endpoints 0..count-1 (1 <= count <= 256) entering at
** entry_pcs[i], each with the SPI registers: nub link's export slots
** (docs/toolchain.md) are endpoint K at pc 5K. */
NUB_API int nub_cap_build_spi_endpoints(nub_pvm_profile profile, const uint8_t *spi, size_t spi_len,
                                    const uint8_t *args, uint32_t args_len, const uint32_t *entry_pcs,
                                    uint32_t count, nub_cap_bundle *out, nub_cap_error *err);

/* One entry of a caller's page map: [start, start+size) with access;
** the first len bytes come from bytes (len <= size), the rest is zero. */
typedef struct nub_cap_region {
  uint32_t start, size;
  uint8_t access;
  const uint8_t *bytes;
  size_t len;
} nub_cap_region;

/* From a bare generic blob: an Image for ISA profile `profile` with one
** mapping per region (ascending, disjoint), endpoint 0 (pc 0, zero
** registers), no heap; a Data cap per region with bytes; and a fresh
** Instance. */
NUB_API int nub_cap_build_generic(nub_pvm_profile profile, const uint8_t *blob, size_t blob_len,
                      const nub_cap_region *map, uint32_t count, nub_cap_bundle *out,
                      nub_cap_error *err);

/* A fresh Instance of an Image: chain from a zero parent, empty cnode,
** no overlay, zero registers, pc and gas. */
NUB_API void nub_cap_instance_fresh(const uint8_t image_hash[CAP_HASH_SIZE],
                        nub_cap_instance_spec *out);

/* ------------------------------------------------------------------ */
/* Memory of an invocation                                              */
/* ------------------------------------------------------------------ */

/* Returns the decoded cap stored under hash, or NULL if there is none. */
typedef const nub_cap_view *(*nub_cap_lookup_fn)(void *ud,
                                         const uint8_t hash[CAP_HASH_SIZE]);

/* Most runs of Data pages (nub_cap_data_view.run_count, summed over every
** mapping and overlay) one address space may place: each is a system call
** and a host memory area (docs/architecture.md, "Memory of an invocation"). */
#define CAP_MEMORY_MAX_RUNS 8192u

/* Map image's mappings into the empty mem (zero fill or Data contents),
** set the sbrk heap, then write the Instance's overlay (instance may be
** NULL).  Absent Data pages cost nothing; a Data cap with a page image is
** placed with one nub_pvm_mem_place per run (copy-on-write when mem has the
** directory's region as backing); read-only mappings get their access
** last, one nub_pvm_mem_protect each.  Errors name the mapping / overlay index
** and the hash. */
NUB_API int nub_cap_memory_build(nub_pvm_mem *mem, const nub_cap_view *image,
                     const nub_cap_view *instance, nub_cap_lookup_fn lookup, void *ud,
                     nub_cap_error *err);
/* What nub_cap_memory_build would place, without touching memory: the runs of
** Data pages summed over mappings and overlays (what invocations charge
** gas for).  Fails as nub_cap_memory_build would on missing or wrong-kind
** Data caps, and with CAP_ERR_LIMIT past CAP_MEMORY_MAX_RUNS. */
NUB_API int nub_cap_memory_runs(const nub_cap_view *image, const nub_cap_view *instance,
                    nub_cap_lookup_fn lookup, void *ud, uint64_t *runs,
                    nub_cap_error *err);

/* ------------------------------------------------------------------ */
/* Directory                                                            */
/* ------------------------------------------------------------------ */

/* Header magic ("NCAPDIR1") and layout id (reported in BootInfo): bump
** CAP_DIR_TYPE_ID whenever the region layout changes. */
#define CAP_DIR_MAGIC   0x315249445041434Eull
#define CAP_DIR_TYPE_ID 0x0000000200280010ull  /* v2, 40 B slots, 16 B records
                                                   (v2: Data records may point at
                                                   their page image) */

/* Memory for the directory.  alloc returns size bytes aligned to align
** inside the region (NULL when full; align is 8, or 4096 for page images); free (optional) takes back an
** allocation the directory never published.  copy (optional) stores
** count blocks of len bytes, block i read at src + i * stride, at dst +
** i * len in memory alloc returned: a writer whose region is a file can
** write through the file, so fresh pages are neither zero-filled nor
** faulted in first (the guest kernel's pwritev); memcpy when NULL.  It
** must store every byte (falling back to memcpy itself if need be).
** For a put whose hash the caller vouches for (nub_cap_dir_put_hashed,
** nub_cap_dir_put_placed) the directory reads no page bytes itself when
** the allocator has these two (each optional): store_pages stores the
** count pages of a page image as copy would (len 4096) but never maps
** them first (the guest kernel: pwritev); first_zero_page gives the
** position of the first all-zero page of the count at pages (count if
** none), read without mapping them (the guest: pread of its heap file),
** or SIZE_MAX if it cannot tell (then the directory reads them). */
typedef struct nub_cap_alloc {
  void *(*alloc)(void *ud, size_t size, size_t align);
  void (*free)(void *ud, void *p);
  void *ud;
  void (*copy)(void *ud, uint8_t *dst, const uint8_t *src, size_t len, size_t count,
               size_t stride);
  void (*store_pages)(void *ud, uint8_t *dst, const uint8_t *src, size_t count,
                      size_t stride);
  size_t (*first_zero_page)(void *ud, const uint8_t *pages, size_t count);
} nub_cap_alloc;

/* A bump allocator over [base, base+size), for tests and simple hosts. */
typedef struct nub_cap_bump {
  uint8_t *base;
  size_t size, used;
  size_t undo[2][2];       /* (start, used before it) of the two newest
                              allocations: free undoes them, newest first
                              (start SIZE_MAX: none) */
} nub_cap_bump;
NUB_API void nub_cap_bump_init(nub_cap_bump *b, void *base, size_t size);
NUB_API nub_cap_alloc nub_cap_bump_allocator(nub_cap_bump *b);

/* A handle on a directory region.  Writers create it (one writer at a
** time; callers serialize writers); readers open a region, possibly a
** read-only mapping written by someone else, and validate all they read. */
typedef struct nub_cap_dir {
  uint8_t *base;           /* the region */
  size_t size;
  uint64_t header_off;     /* the header's offset in the region */
  nub_cap_alloc alloc;         /* writers only */
  bool page_images;        /* writers: store each Data cap with pages once,
                              as a page image (nub_cap_data_view.image) and
                              a record pointing at it; off after
                              nub_cap_dir_create, set before the first put */
  const nub_cap_helper *hash_helper;   /* writers: hash large Data caps on
                              a second thread (NULL: one) */
} nub_cap_dir;

/* An entry's wire is whole at wire when pages is NULL; a Data cap stored
** once (docs/wire.md, "Stored once") has at wire only the wire's first
** CAP_DIR_DATA_HEAD bytes, at indexes its page_count u32 page indexes and
** at pages its page bytes back to back: nub_cap_dir_entry_copy puts the
** len bytes of the wire together. */
#define CAP_DIR_DATA_HEAD 13u     /* selector, size u64, pages offset u32 */
typedef struct nub_cap_dir_entry {
  const uint8_t *wire;     /* inside the region */
  uint64_t len;            /* of the whole wire */
  uint32_t ordinal;        /* 0, 1, 2, ... in insertion order */
  uint8_t kind;
  uint32_t page_count;     /* stored once: pages at indexes and pages */
  const uint8_t *indexes;
  const uint8_t *pages;
} nub_cap_dir_entry;

NUB_API int nub_cap_dir_create(nub_cap_dir *d, void *base, size_t size, const nub_cap_alloc *alloc,
                   uint32_t min_capacity, nub_cap_error *err);
/* Open a region for reading; header_off is the header's offset in it. */
NUB_API int nub_cap_dir_open(nub_cap_dir *d, const void *base, size_t size, uint64_t header_off,
                 nub_cap_error *err);
/* Decode, hash and store wire (copied into the region first, so a caller
** whose input may change underneath is safe).  Idempotent: the same bytes
** give the same entry.  view (optional) is a view of the stored bytes. */
NUB_API int nub_cap_dir_put(nub_cap_dir *d, const uint8_t *wire, size_t len,
                uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                nub_cap_view *view, bool *inserted, nub_cap_error *err);
/* The same for a caller that already knows the hash (a host re-publishing
** what it hashed at first publication): the copy is decoded for the view
** but not hashed; the caller is trusted to give the hash of wire. */
NUB_API int nub_cap_dir_put_hashed(nub_cap_dir *d, const uint8_t *wire, size_t len,
                       const uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                       nub_cap_view *view, bool *inserted, nub_cap_error *err);
/* A Data cap with pages whose page bytes are already in the region (the
** host wrote them into the guest's heap file: docs/abi.md, PAGES_COMMIT),
** with a vouched-for hash: image is an allocation of the directory's
** allocator, page aligned, of image_size bytes, holding the wire's n
** pages back to back (len = 13 + 4100 n); head is the wire's first
** CAP_DIR_DATA_HEAD bytes and indexes its n page indexes.  The record is
** made here and everything decoded as nub_cap_dir_put_hashed would; the
** runs go after the pages, so image_size must hold 4096 n + 8 x runs.  The
** directory takes image: it keeps it, or gives it back (a duplicate, an
** error of any kind). */
NUB_API int nub_cap_dir_put_placed(nub_cap_dir *d, const uint8_t *head, size_t len,
                                   const uint8_t *indexes, uint8_t *image, size_t image_size,
                                   const uint8_t hash[CAP_HASH_SIZE], nub_cap_dir_entry *entry,
                                   nub_cap_view *view, bool *inserted, nub_cap_error *err);
/* Every read is bounded, whatever the region holds (docs/wire.md,
** "Reader"): at most CAP_DIR_READ_SLOTS slot reads over all its retries
** (one probe sequence longer than that is CAP_ERR_CORRUPT, and a writer
** refuses to make one: CAP_ERR_FULL), and once a writer makes it retry,
** at most CAP_DIR_READ_MS of retrying (then CAP_ERR_BUSY). */
#define CAP_DIR_READ_SLOTS (1u << 16)
#define CAP_DIR_READ_MS 100u
/* Find hash; CAP_ERR_MISSING if absent.  No allocation.  Safe against a
** concurrent writer; entry->wire stays valid (records never move), but in
** a hostile region its bytes may change: copy and check them with
** nub_cap_dir_get_verified. */
NUB_API int nub_cap_dir_find(const nub_cap_dir *d, const uint8_t hash[CAP_HASH_SIZE],
                 nub_cap_dir_entry *entry, nub_cap_error *err);
/* The entry's len wire bytes into out, put together if it is stored once. */
NUB_API void nub_cap_dir_entry_copy(const nub_cap_dir_entry *e, uint8_t *out);
/* Find hash, copy its wire into buf and check the copy hashes to hash. */
NUB_API int nub_cap_dir_get_verified(const nub_cap_dir *d, const uint8_t hash[CAP_HASH_SIZE],
                         uint8_t *buf, size_t buf_cap, size_t *len,
                         nub_cap_error *err);
/* Entries and slot capacity (read under the seqlock). */
NUB_API int nub_cap_dir_stats(const nub_cap_dir *d, uint64_t *count, uint64_t *capacity,
                  nub_cap_error *err);

#ifdef __cplusplus
}
#endif
#endif
