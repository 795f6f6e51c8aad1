/*
** Publication: the guest heap, the cap directory inside it, and PUT_CAP.
** Every cap is decoded once, when published; the kernel keeps the view
** (indexed by the directory's insertion ordinal) for later invocations.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nk_internal.h"

static void *dir_alloc(void *ud, size_t size, size_t align) {
  nk_kernel *k = ud;
  return nk_heap_alloc_aligned(k->heap, size, align);
}

static void dir_free(void *ud, void *p) { nk_heap_free(((nk_kernel *)ud)->heap, p); }

/* Caps are stored through the heap's file when it has one (a Data cap's
** pages into its page image, the only copy; any other cap's wire into its
** record; docs/wire.md, "Stored once"): pwritev puts
** the bytes straight into the pages, where a store to a fresh page first
** takes a fault and has the page zeroed (measured on this VM, 1 MiB into
** fresh memfd pages: 1.0-1.3 ms by memcpy, 0.4-0.6 ms by pwrite).  From a
** page up: smaller copies fill no fresh page whole (4 KiB caps put as fast
** either way).  The source may be the shared request buffer: the kernel
** decodes and hashes only the heap copy, as after a memcpy.
**
** From NK_POPULATE_MIN the pages are populated first instead
** (MADV_POPULATE_WRITE) and filled by memcpy: pwritev leaves them out of
** our view of the file, and the decode's first read of each page after it
** cost as much again as the pwritev (this VM, thread CPU per MiB, pages
** then read once, alternating: 1 MiB and 16 MiB images 1.9-3.3 by pwritev
** against 1.5-3.4 populated, equal; 64-128 MiB 2.7-3.2 against 2.2-2.4;
** 512 MiB 3.1-5.4 against 1.6-2.7).  Where the kernel refuses it
** (Linux < 5.14), pwritev as before.  That is for bytes the kernel reads
** after storing them (PUT_CAP hashes a Data cap's pages; every record is
** decoded); the page image of a cap the host hashed is never read here
** (dir_store_pages, below). */
#define NK_PWRITE_MIN 4096u
#define NK_PWRITE_BLOCKS 64u       /* iovecs per call: 256 KiB of pages */

/* count blocks of len bytes, a source stride apart, stored back to back
** at dst through the heap file: the number of whole blocks stored (the
** caller copies the rest). */
static size_t write_blocks(nk_kernel *k, uint8_t *dst, const uint8_t *src, size_t len,
                           size_t count, size_t stride) {
  struct iovec iov[NK_PWRITE_BLOCKS];
  size_t done = 0;
  while (done < count) {
    size_t n = count - done < NK_PWRITE_BLOCKS ? count - done : NK_PWRITE_BLOCKS;
    for (size_t i = 0; i < n; i++)
      iov[i] = (struct iovec){(void *)(src + (done + i) * stride), len};
    off_t at = (off_t)(k->heap_fd_offset + (uint64_t)(dst + done * len - (uint8_t *)k->cfg.heap_base));
    ssize_t w = pwritev(k->heap_fd, iov, (int)n, at);
    if (w <= 0) break;
    k->bytes_through_fd += (size_t)w;
    size_t whole = (size_t)w / len, part = (size_t)w % len;
    if (part) {                  /* a short write inside a block: finish it by hand */
      memcpy(dst + (done + whole) * len + part, src + (done + whole) * stride + part, len - part);
      whole++;
    }
    done += whole;
  }
  return done;
}

static void dir_copy(void *ud, uint8_t *dst, const uint8_t *src, size_t len, size_t count,
                     size_t stride) {
  nk_kernel *k = ud;
  size_t done = 0;                 /* blocks stored */
  if (len * count >= NK_POPULATE_MIN && !k->populate_off && !nk_populate_write(dst, len * count))
    k->bytes_populated += len * count;               /* all by the memcpy below */
  else if (k->heap_fd >= 0 && len * count >= NK_PWRITE_MIN)
    done = write_blocks(k, dst, src, len, count, stride);
  for (; done < count; done++) memcpy(dst + done * len, src + done * stride, len);
}

static bool page_is_zero(const uint8_t *p) {
  uint64_t any = 0, w;
  for (size_t i = 0; i < 4096; i += 8) {
    memcpy(&w, p + i, 8);
    if ((any |= w)) return false;
  }
  return true;
}

/* The page image of a cap the host hashed (REPUBLISH) goes into the heap
** file by pwritev, never populated, and is read back for the zero-page
** check by pread into a buffer of NK_CHECK_PAGES pages (as is one the host
** wrote into the file itself: PAGES_COMMIT), so neither touches the image
** through the heap mapping: each fresh page the guest maps costs a fault
** of ~5-8 us on this VM, more than the copy (1 MiB, thread CPU: populate +
** memcpy + the decode's read of each page 1.8 ms; pwritev and pread
** 0.4-0.6).  An invocation maps the pages later, copy-on-write.  What the
** file does not take is copied in memory, and read there. */
#define NK_CHECK_PAGES 16u

static void dir_store_pages(void *ud, uint8_t *dst, const uint8_t *src, size_t count,
                            size_t stride) {
  nk_kernel *k = ud;
  size_t stored = k->heap_fd >= 0 ? write_blocks(k, dst, src, 4096, count, stride) : 0;
  for (size_t j = stored; j < count; j++) memcpy(dst + j * 4096, src + j * stride, 4096);
}

static size_t dir_first_zero_page(void *ud, const uint8_t *pages, size_t count) {
  nk_kernel *k = ud;
  size_t i = 0;
  if (k->heap_fd < 0 || (!k->check_buf && !(k->check_buf = malloc(NK_CHECK_PAGES * 4096))))
    return SIZE_MAX;                 /* the directory reads them */
  while (i < count) {
    size_t n = count - i < NK_CHECK_PAGES ? count - i : NK_CHECK_PAGES;
    off_t at = (off_t)(k->heap_fd_offset + (uint64_t)(pages + i * 4096 - (uint8_t *)k->cfg.heap_base));
    ssize_t r = pread(k->heap_fd, k->check_buf, n * 4096, at);
    if (r < 4096) break;             /* the rest in memory */
    n = (size_t)r / 4096;
    for (size_t j = 0; j < n; j++)
      if (page_is_zero(k->check_buf + j * 4096)) return i + j;
    i += n;
  }
  for (; i < count; i++)
    if (page_is_zero(pages + i * 4096)) return i;
  return count;
}

/* The block PAGES_RESERVE holds, given back (a new reservation, a
** commit, the end). */
static void drop_reservation(nk_kernel *k) {
  if (k->reserved_image) nk_heap_free(k->heap, k->reserved_image);
  k->reserved_image = NULL;
  k->reserved_size = 0;
  k->reserved_pages = 0;
}

int nk_caps_init(nk_kernel *k, char *err, size_t errlen) {
  nub_cap_error cerr;
  nub_cap_alloc alloc = {dir_alloc, dir_free, k, dir_copy, dir_store_pages,
                         dir_first_zero_page};
  if (nub_cap_init()) { snprintf(err, errlen, "kernel: libsodium failed to start"); return -1; }
  k->heap = nk_heap_init(k->cfg.heap_base, k->cfg.heap_size);
  if (!k->heap) {
    snprintf(err, errlen, "kernel: heap region %p + %zu is misaligned or too small",
             k->cfg.heap_base, k->cfg.heap_size);
    return -1;
  }
  if (pthread_rwlock_init(&k->dir_lock, NULL)) {
    snprintf(err, errlen, "kernel: cannot create the directory lock");
    return -1;
  }
  k->dir_lock_made = true;
  if (nub_cap_dir_create(&k->dir, k->cfg.heap_base, k->cfg.heap_size, &alloc, 1024, &cerr)) {
    snprintf(err, errlen, "kernel: directory: %s", cerr.msg);
    return -1;
  }
  k->dir.page_images = true;     /* Data stored once, page aligned, for copy-on-write */
  if (k->dir.header_off != NK_DIRECTORY_OFFSET) {
    snprintf(err, errlen, "kernel: directory header at offset %llu, expected %u",
             (unsigned long long)k->dir.header_off, NK_DIRECTORY_OFFSET);
    return -1;
  }
  return 0;
}

void nk_caps_fini(nk_kernel *k) {
  free(k->check_buf);
  if (k->heap) drop_reservation(k);
  for (size_t i = 0; i < k->nretired; i++) free(k->retired[i]);
  free(k->retired);
  free(k->views);
  if (k->dir_lock_made) pthread_rwlock_destroy(&k->dir_lock);
}

uint64_t nk_caps_bytes_through_fd(const nk_kernel *k) { return k->bytes_through_fd; }

uint64_t nk_caps_bytes_populated(const nk_kernel *k) { return k->bytes_populated; }

void nk_populate_off(nk_kernel *k, bool off) { k->populate_off = off; }

void nk_caps_hash_helper(nk_kernel *k, const nub_cap_helper *helper) { k->dir.hash_helper = helper; }

uint64_t nk_caps_count(nk_kernel *k) {
  pthread_rwlock_rdlock(&k->dir_lock);
  uint64_t n = k->nviews;
  pthread_rwlock_unlock(&k->dir_lock);
  return n;
}

/* The view lives on after the lock: view arrays are retired, not freed. */
const nub_cap_view *nk_caps_find(nk_kernel *k, const uint8_t hash[NUB_HASH_SIZE],
                             uint32_t *ordinal) {
  nub_cap_dir_entry e;
  const nub_cap_view *v = NULL;
  pthread_rwlock_rdlock(&k->dir_lock);
  if (!nub_cap_dir_find(&k->dir, hash, &e, NULL) && e.ordinal < k->nviews) {
    if (ordinal) *ordinal = e.ordinal;
    v = &k->views[e.ordinal];
  }
  pthread_rwlock_unlock(&k->dir_lock);
  return v;
}

/* Test hook (nk.h): a countdown to the kernel table allocation that fails. */
static uint32_t alloc_failure_countdown;

void nk_fail_allocation(uint32_t nth) { alloc_failure_countdown = nth; }

static void *table_realloc(void *p, size_t size) {
  if (alloc_failure_countdown && !--alloc_failure_countdown) return NULL;
  return realloc(p, size);
}

/* Room for extra more views (and compiled slots), made before the
** directory inserts anything: once a cap is in the directory, keeping its
** view cannot fail.  (A grow that failed after the insert left the
** directory one cap ahead of the views, and every later put was refused.) */
static int reserve_views(nk_kernel *k, size_t extra) {
  if (extra <= k->views_cap - k->nviews) return 0;
  size_t cap = k->views_cap ? k->views_cap : 256;
  while (cap - k->nviews < extra) cap *= 2;
  /* lanes may hold views of the old array: it is retired, not freed */
  void **ret = table_realloc(k->retired, (k->nretired + 1) * sizeof *ret);
  if (!ret) return -1;
  k->retired = ret;
  nub_cap_view *nv = table_realloc(NULL, cap * sizeof *nv);
  if (!nv) return -1;
  if (k->nviews) memcpy(nv, k->views, k->nviews * sizeof *nv);
  if (k->views) k->retired[k->nretired++] = k->views;
  k->views = nv;
  pthread_mutex_lock(&k->cache_lock);
  nk_compiled **nc = table_realloc(k->compiled, cap * sizeof *nc);
  if (nc) {
    memset(nc + k->views_cap, 0, (cap - k->views_cap) * sizeof *nc);
    k->compiled = nc;
    k->views_cap = cap;
  }
  pthread_mutex_unlock(&k->cache_lock);
  return nc ? 0 : -1;                   /* views grew alone: harmless, retried */
}

/* After reserve_views: -1 only if the directory and the views count
** inserts differently (never). */
static int keep_view(nk_kernel *k, uint32_t ordinal, const nub_cap_view *v) {
  if (ordinal != k->nviews || k->nviews == k->views_cap) return -1;
  k->views[k->nviews++] = *v;
  return 0;
}

static uint32_t reason_class(int cap_code) {
  switch (cap_code) {
  case CAP_ERR_FULL: case CAP_ERR_NOMEM: return NUB_PUT_CAP_NO_MEMORY;
  /* the kernel decodes its own heap copy: an argument error is its fault */
  case CAP_ERR_CORRUPT: case CAP_ERR_BUSY: case CAP_ERR_ARG: return NUB_PUT_CAP_INTERNAL;
  default: return NUB_PUT_CAP_INVALID;
  }
}

/* The rejection reply: the seed's 32 x 0xFF, then the reason class and a
** printable ASCII reason of at most NUB_PUT_CAP_REASON_MAX bytes. */
static uint32_t reject(nk_kernel *k, uint32_t reason, const char *text, uint8_t *out,
                       size_t out_cap, size_t *out_len) {
  uint8_t reply[NUB_HASH_SIZE + 4 + NUB_PUT_CAP_REASON_MAX];
  size_t n = 0;
  NK_STAT_ADD(k, put_cap_failures, 1);
  memset(reply, 0xFF, NUB_HASH_SIZE);
  memcpy(reply + NUB_HASH_SIZE, &reason, 4);
  for (; text[n] && n < NUB_PUT_CAP_REASON_MAX; n++) {
    uint8_t c = (uint8_t)text[n];
    reply[NUB_HASH_SIZE + 4 + n] = c >= 0x20 && c < 0x7F ? c : '?';
  }
  if (!n) reply[NUB_HASH_SIZE + 4 + n++] = '?';
  /* an output buffer too small for the reason still gets the sentinel */
  size_t len = NUB_HASH_SIZE + 4 + n <= out_cap ? NUB_HASH_SIZE + 4 + n : NUB_HASH_SIZE;
  return nk_reply(out, out_cap, out_len, reply, len);
}

/* PUT_CAP never fails as an RPC: a cap that cannot be accepted gets the
** 32 x 0xFF reply the ABI defines, with the reason after it. */
static uint32_t put_cap(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t out_cap, size_t *out_len) {
  uint8_t hash[NUB_HASH_SIZE];
  char text[320];                   /* a nub_cap_error message and more; reject() cuts */
  nub_cap_dir_entry entry;
  nub_cap_view view;
  nub_cap_error cerr;
  bool inserted = false;
  if (reserve_views(k, 1)) {
    snprintf(text, sizeof text, "kernel: no memory to grow its table of %zu caps", k->nviews);
    return reject(k, NUB_PUT_CAP_NO_MEMORY, text, out, out_cap, out_len);
  }
  /* nub_cap_dir_put copies the bytes into the heap before it decodes them */
  if (nub_cap_dir_put(&k->dir, in, in_len, hash, &entry, &view, &inserted, &cerr)) {
    uint32_t reason = reason_class(cerr.code);
    if (reason == NUB_PUT_CAP_INVALID)   /* the words of `nub cap show` */
      snprintf(text, sizeof text, "%s (%s error at byte %llu)", cerr.msg,
               nub_cap_errcode_name(cerr.code), (unsigned long long)cerr.offset);
    else
      snprintf(text, sizeof text, "%s (%s)", cerr.msg, nub_cap_errcode_name(cerr.code));
    return reject(k, reason, text, out, out_cap, out_len);
  }
  if (inserted) {
    if (keep_view(k, entry.ordinal, &view)) {
      snprintf(text, sizeof text, "kernel: directory ordinal %u, but %zu views", entry.ordinal,
               k->nviews);
      return reject(k, NUB_PUT_CAP_INTERNAL, text, out, out_cap, out_len);
    }
    k->stats.caps_published++;
  }
  return nk_reply(out, out_cap, out_len, hash, sizeof hash);
}

/* REPUBLISH: (hash, wire) records from the host, which hashed each cap
** itself (many after a replacement, one for a put of a large cap); stored
** without hashing (the copy is still decoded, for the kept view).  Views for every record are reserved
** first.  Stops at the first bad record; those before it stay stored
** (storing is idempotent). */
static uint32_t republish(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len) {
  nub_republish_header h;
  nub_republish_reply r = {0, 0};
  size_t at = sizeof h;
  if (in_len < sizeof h)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "republish: %zu-byte payload has no %zu-byte header", in_len, sizeof h);
  memcpy(&h, in, sizeof h);
  if (h.reserved)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "republish: reserved header word is 0x%x, not 0", h.reserved);
  if (h.count > (in_len - sizeof h) / (sizeof(nub_republish_record) + 1))
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "republish: %u records cannot fit %zu bytes (41 or more each)", h.count,
                          in_len - sizeof h);
  if (reserve_views(k, h.count))
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_NO_MEMORY,
                          "republish: out of memory for %u more views", h.count);
  for (; r.stored < h.count; r.stored++) {
    nub_republish_record rec;
    nub_cap_dir_entry entry;
    nub_cap_view view;
    nub_cap_error cerr;
    bool inserted = false;
    if (in_len - at < sizeof rec)
      return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                            "republish: record %u at offset %zu: %zu bytes left, the header "
                            "needs %zu", r.stored, at, in_len - at, sizeof rec);
    memcpy(&rec, in + at, sizeof rec);
    at += sizeof rec;
    if (rec.len > in_len - at)
      return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                            "republish: record %u at offset %zu: length %llu exceeds the %zu "
                            "bytes left", r.stored, at - sizeof rec,
                            (unsigned long long)rec.len, in_len - at);
    if (nub_cap_dir_put_hashed(&k->dir, in + at, (size_t)rec.len, rec.hash, &entry, &view,
                           &inserted, &cerr)) {
      k->stats.put_cap_failures++;
      return nk_reply_error(out, out_cap, out_len,
                            reason_class(cerr.code) == NUB_PUT_CAP_NO_MEMORY ? NUB_RPC_NO_MEMORY
                                                                             : NUB_RPC_INTERNAL,
                            "republish: record %u at offset %zu: %s (%s)", r.stored,
                            at - sizeof rec, cerr.msg, nub_cap_errcode_name(cerr.code));
    }
    if (inserted && keep_view(k, entry.ordinal, &view)) {
      k->stats.put_cap_failures++;
      return nk_reply_error(out, out_cap, out_len, NUB_RPC_INTERNAL,
                            "republish: record %u: directory ordinal %u, but %zu views", r.stored,
                            entry.ordinal, k->nviews);
    }
    if (inserted) {
      r.inserted++;
      k->stats.caps_published++;
    }
    at += (size_t)rec.len;
  }
  if (at != in_len)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "republish: %zu bytes after record %u", in_len - at, h.count);
  return nk_reply(out, out_cap, out_len, &r, sizeof r);
}

/* PAGES_RESERVE: a page-aligned block for a page image the host writes
** into the heap file itself (docs/abi.md); one at a time. */
static uint32_t pages_reserve(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_cap, size_t *out_len) {
  nub_pages_reserve q;
  drop_reservation(k);
  if (in_len != sizeof q)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "pages_reserve: %zu-byte payload, expected %zu", in_len, sizeof q);
  memcpy(&q, in, sizeof q);
  if (!q.pages || q.pages > CAP_MAX_DATA_PAGES || !q.runs || q.runs > q.pages)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "pages_reserve: %u pages in %u runs; 1 <= runs <= pages <= %u",
                          q.pages, q.runs, CAP_MAX_DATA_PAGES);
  size_t size = (size_t)q.pages * 4096 + (size_t)q.runs * 8;
  uint8_t *p = nk_heap_alloc_aligned(k->heap, size, 4096);
  if (!p)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_NO_MEMORY,
                          "pages_reserve: the heap has no %zu bytes for a %u-page image", size,
                          q.pages);
  k->reserved_image = p;
  k->reserved_size = size;
  k->reserved_pages = q.pages;
  nub_pages_reserved r = {(uint64_t)(p - (uint8_t *)k->cfg.heap_base), size};
  return nk_reply(out, out_cap, out_len, &r, sizeof r);
}

/* PAGES_COMMIT: the reservation is used up whatever happens; the cap is
** stored as REPUBLISH stores one (the host's hash, the kernel's checks). */
static uint32_t pages_commit(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len) {
  nub_pages_commit c;
  nub_republish_reply r = {0, 0};
  nub_cap_dir_entry entry;
  nub_cap_view view;
  nub_cap_error cerr;
  bool inserted = false;
  uint8_t *image = k->reserved_image;
  size_t size = k->reserved_size, n = k->reserved_pages;
  k->reserved_image = NULL;
  drop_reservation(k);
  if (!image)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "pages_commit: no pages reserved");
  uint32_t rc = NUB_RPC_BAD_PAYLOAD;
  if (in_len < sizeof c) {
    nk_reply_error(out, out_cap, out_len, rc, "pages_commit: %zu-byte payload has no %zu-byte "
                   "header", in_len, sizeof c);
    goto fail;
  }
  memcpy(&c, in, sizeof c);
  if (c.reserved[0] | c.reserved[1] | c.reserved[2]) {
    nk_reply_error(out, out_cap, out_len, rc, "pages_commit: reserved bytes are not zero");
    goto fail;
  }
  if (c.len != 13 + 4100 * (uint64_t)n || in_len != sizeof c + 4 * n) {
    nk_reply_error(out, out_cap, out_len, rc, "pages_commit: wire length %llu and %zu bytes of "
                   "indexes for %zu reserved pages (want %llu and %zu)",
                   (unsigned long long)c.len, in_len - sizeof c, n,
                   (unsigned long long)(13 + 4100 * (uint64_t)n), 4 * n);
    goto fail;
  }
  if (reserve_views(k, 1)) {
    rc = NUB_RPC_NO_MEMORY;
    nk_reply_error(out, out_cap, out_len, rc, "pages_commit: out of memory for one more view");
    goto fail;
  }
  /* the directory takes the image from here on */
  if (nub_cap_dir_put_placed(&k->dir, c.head, (size_t)c.len, in + sizeof c, image, size, c.hash,
                             &entry, &view, &inserted, &cerr)) {
    k->stats.put_cap_failures++;
    return nk_reply_error(out, out_cap, out_len,
                          reason_class(cerr.code) == NUB_PUT_CAP_NO_MEMORY ? NUB_RPC_NO_MEMORY
                                                                           : NUB_RPC_INTERNAL,
                          "pages_commit: %s (%s)", cerr.msg, nub_cap_errcode_name(cerr.code));
  }
  if (inserted && keep_view(k, entry.ordinal, &view)) {
    k->stats.put_cap_failures++;
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_INTERNAL,
                          "pages_commit: directory ordinal %u, but %zu views", entry.ordinal,
                          k->nviews);
  }
  r.stored = 1;
  if (inserted) {
    r.inserted = 1;
    k->stats.caps_published++;
  }
  return nk_reply(out, out_cap, out_len, &r, sizeof r);
fail:
  nk_heap_free(k->heap, image);
  return rc;
}

/* The RPCs that write the directory, under its write lock (lanes'
** lookups wait, briefly).  A publication (PUT_CAP, REPUBLISH) first gives
** a PAGES_RESERVE block back: the host reserves right before it commits,
** and falls back to PUT_CAP when it refuses a cap after reserving. */
typedef uint32_t dir_rpc(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len);

static uint32_t dir_locked(dir_rpc *fn, bool publishes, nk_kernel *k, const uint8_t *in,
                           size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len) {
  pthread_rwlock_wrlock(&k->dir_lock);
  if (publishes) drop_reservation(k);
  uint32_t rc = fn(k, in, in_len, out, out_cap, out_len);
  pthread_rwlock_unlock(&k->dir_lock);
  return rc;
}

uint32_t nk_fn_put_cap(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t out_cap, size_t *out_len) {
  return dir_locked(put_cap, true, k, in, in_len, out, out_cap, out_len);
}

uint32_t nk_fn_republish(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, size_t *out_len) {
  return dir_locked(republish, true, k, in, in_len, out, out_cap, out_len);
}

uint32_t nk_fn_pages_reserve(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len) {
  return dir_locked(pages_reserve, false, k, in, in_len, out, out_cap, out_len);
}

uint32_t nk_fn_pages_commit(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_cap, size_t *out_len) {
  return dir_locked(pages_commit, false, k, in, in_len, out, out_cap, out_len);
}
