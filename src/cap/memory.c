/*
** The memory of an invocation: an Image's mappings (zero fill or Data
** contents) in an empty nub_pvm_mem, the sbrk heap, then the Instance's
** overlay of Data caps.
**
** The work is per mapping, overlay and run of Data pages, never per byte
** (docs/architecture.md, "Memory of an invocation"): every Data cap is
** resolved and its runs counted first; mappings are then mapped read-write
** as fresh zeros, Data runs placed (copy-on-write from the directory's page
** images), overlays clear only what Data put under them, and read-only
** mappings get their access last, one mprotect each.
*/
#include <stdio.h>

#include "cap_internal.h"

/* Every Data cap the memory uses, resolved and checked before any work. */
typedef struct resolved {
  const nub_cap_data_view *map[CAP_MAX_MAPPINGS];   /* NULL = zero fill */
  const nub_cap_data_view *overlay[CAP_MAX_OVERLAYS];
  uint64_t runs;
} resolved;

/* The Data cap under hash, or an error naming what referred to it. */
static int find_data(nub_cap_lookup_fn lookup, void *ud, const uint8_t *hash,
                     const char *what, uint32_t i, uint64_t off,
                     const nub_cap_data_view **out, nub_cap_error *err) {
  const nub_cap_view *v = lookup(ud, hash);
  char hex[65];
  int rc;
  if (v && v->kind == CAP_DATA) {
    *out = &v->data;
    return CAP_OK;
  }
  if (v)
    rc = cap_fail(err, CAP_ERR_KIND, off, "memory: %s %u: %s is a %s cap, not Data",
                  what, i, cap_hex32(hash, hex), nub_cap_kind_name(v->kind));
  else
    rc = cap_fail(err, CAP_ERR_MISSING, off,
                  "memory: %s %u: Data cap %s is not in the directory", what, i,
                  cap_hex32(hash, hex));
  if (err) memcpy(err->hash, hash, CAP_HASH_SIZE);
  return rc;
}

/* A nub_pvm_mem failure, placed at the wire offset of the entry that caused it. */
static int mem_error(nub_cap_error *err, uint64_t off, const char *what, uint32_t i,
                     const nub_pvm_error *perr) {
  cap_fail(err, CAP_ERR_PVM, off, "memory: %s %u: %s", what, i, perr->msg);
  if (err) err->pvm_code = perr->code;
  return CAP_ERR_PVM;
}

static uint64_t mapping_off(const nub_cap_view *image, uint32_t i) {
  return (uint64_t)(image->image.mappings - image->wire) + (uint64_t)i * W_MAPPING;
}

static uint64_t overlay_off(const nub_cap_view *instance, uint32_t i) {
  return (uint64_t)(instance->instance.overlays - instance->wire) + (uint64_t)i * W_OVERLAY;
}

static int resolve(const nub_cap_view *image, const nub_cap_view *instance, nub_cap_lookup_fn lookup,
                   void *ud, resolved *r, nub_cap_error *err) {
  uint64_t prev_end = 0;
  char hex[65];
  int rc;
  r->runs = 0;
  for (uint32_t i = 0; i < image->image.mapping_count; i++) {
    uint64_t off = mapping_off(image, i);
    const nub_cap_data_view *d = NULL;
    nub_cap_mapping m;
    nub_cap_image_mapping(&image->image, i, &m);
    r->map[i] = NULL;
    if (cap_all_zero(m.source, CAP_HASH_SIZE)) continue;
    if ((rc = find_data(lookup, ud, m.source, "mapping", i, off + MAP_SOURCE, &d, err)))
      return rc;
    if (d->size > m.size)
      return cap_fail(err, CAP_ERR_LIMIT, off + MAP_SOURCE,
                      "memory: mapping %u: Data %s of %llu bytes is larger than the "
                      "mapping's %u bytes", i, cap_hex32(m.source, hex),
                      (unsigned long long)d->size, m.size);
    r->map[i] = d;
    r->runs += d->run_count;
  }
  for (uint32_t i = 0; instance && i < instance->instance.overlay_count; i++) {
    uint64_t off = overlay_off(instance, i), end;
    const nub_cap_data_view *d;
    nub_cap_overlay o;
    nub_cap_instance_overlay(&instance->instance, i, &o);
    if ((rc = find_data(lookup, ud, o.data, "overlay", i, off + 4, &d, err))) return rc;
    end = (uint64_t)o.address + d->size;
    if (end > CAP_MAX_DATA_SIZE)
      return cap_fail(err, CAP_ERR_RANGE, off,
                      "memory: overlay %u at 0x%x with %llu bytes runs past 2^32", i,
                      o.address, (unsigned long long)d->size);
    if (o.address < prev_end)
      return cap_fail(err, CAP_ERR_OVERLAP, off,
                      "memory: overlay %u at 0x%x overlaps overlay %u, which ends at 0x%llx",
                      i, o.address, i - 1, (unsigned long long)prev_end);
    prev_end = end;
    r->overlay[i] = d;
    r->runs += d->run_count;
  }
  if (r->runs > CAP_MEMORY_MAX_RUNS)
    return cap_fail(err, CAP_ERR_LIMIT, 0,
                    "memory: mappings and overlays place %llu runs of Data pages; the "
                    "limit is %u", (unsigned long long)r->runs, CAP_MEMORY_MAX_RUNS);
  return CAP_OK;
}

/* The pages of d at base; its absent pages are left as they are. */
static int place_data(nub_pvm_mem *mem, uint32_t base, const nub_cap_data_view *d, nub_pvm_error *perr) {
  int rc = 0;
  if (d->image) {                 /* one place per run, from the page image */
    const uint8_t *src = d->image;
    for (uint32_t r = 0; r < d->run_count && !rc; r++) {
      uint64_t len = (uint64_t)d->runs[2 * r + 1] * CAP_PAGE_SIZE;
      rc = nub_pvm_mem_place(mem, base + d->runs[2 * r] * CAP_PAGE_SIZE, src, len, perr);
      src += len;
    }
    return rc;
  }
  for (uint32_t i = 0; i < d->page_count && !rc; i++) {   /* no image: page by page */
    nub_cap_page pg = nub_cap_data_page(d, i);
    rc = nub_pvm_mem_place(mem, base + pg.index * CAP_PAGE_SIZE, pg.bytes, CAP_PAGE_SIZE, perr);
  }
  return rc;
}

/* Overlay i over mapped pages: clear what the mappings' Data put under it
** (fresh zero fill needs nothing), then place its own pages.  *next is the
** first mapping that can still meet this or a later overlay. */
static int overlay_one(nub_pvm_mem *mem, const nub_cap_view *image, const nub_cap_view *instance,
                       const resolved *r, uint32_t i, uint32_t *next, nub_cap_error *err) {
  const nub_cap_data_view *d = r->overlay[i];
  uint64_t off = overlay_off(instance, i), end;
  nub_cap_overlay o;
  nub_pvm_error perr;
  uint32_t hole;
  nub_cap_instance_overlay(&instance->instance, i, &o);
  end = (uint64_t)o.address + d->size;
  if (nub_pvm_mem_find_unmapped(mem, o.address, d->size, &hole))
    return cap_fail(err, CAP_ERR_RANGE, off,
                    "memory: overlay %u covers page 0x%x, which no mapping maps", i, hole);
  for (uint32_t j = *next; j < image->image.mapping_count; j++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(&image->image, j, &m);
    if (m.start >= end) break;
    uint64_t data_end = r->map[j] ? m.start + r->map[j]->size : m.start;
    uint64_t lo = o.address > m.start ? o.address : m.start;
    uint64_t hi = end < data_end ? end : data_end;
    if (lo < hi && r->map[j]->page_count && nub_pvm_mem_clear(mem, (uint32_t)lo, hi - lo, &perr))
      return mem_error(err, off, "overlay", i, &perr);
    if ((uint64_t)m.start + m.size <= end) *next = j + 1;   /* later overlays start past it */
  }
  if (place_data(mem, o.address, d, &perr)) return mem_error(err, off, "overlay", i, &perr);
  return CAP_OK;
}

static int check_views(nub_pvm_mem *mem, const nub_cap_view *image, const nub_cap_view *instance,
                       nub_cap_error *err) {
  if (!image || image->kind != CAP_IMAGE || (instance && instance->kind != CAP_INSTANCE))
    return cap_fail(err, CAP_ERR_KIND, 0, "memory: needs an Image view and an Instance view or NULL");
  if (mem && nub_pvm_mem_mapped_pages(mem))
    return cap_fail(err, CAP_ERR_ARG, 0, "memory: mem already maps %u pages; it must be empty",
                    nub_pvm_mem_mapped_pages(mem));
  return CAP_OK;
}

int nub_cap_memory_runs(const nub_cap_view *image, const nub_cap_view *instance, nub_cap_lookup_fn lookup,
                    void *ud, uint64_t *runs, nub_cap_error *err) {
  resolved r;
  int rc = check_views(NULL, image, instance, err);
  if (!rc) rc = resolve(image, instance, lookup, ud, &r, err);
  *runs = rc ? 0 : r.runs;
  return rc;
}

/* The mappings and overlays of a memory that has some (out of line: the
** bare case then needs no register saves nor this frame's arrays). */
__attribute__((noinline)) static int build_placed(nub_pvm_mem *mem, const nub_cap_view *image,
                                                  const nub_cap_view *instance,
                                                  nub_cap_lookup_fn lookup, void *ud,
                                                  nub_cap_error *err) {
  const nub_cap_image_view *im = &image->image;
  resolved r;
  nub_pvm_error perr;
  uint32_t next = 0;
  int rc;
  if ((rc = resolve(image, instance, lookup, ud, &r, err))) return rc;
  /* read-write first, so that placing and clearing never need mprotect */
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, i, &m);
    if (nub_pvm_mem_map(mem, m.start, m.size, PVM_ACCESS_RW, &perr) ||
        (r.map[i] && place_data(mem, m.start, r.map[i], &perr)))
      return mem_error(err, mapping_off(image, i), "mapping", i, &perr);
  }
  nub_pvm_mem_set_heap(mem, im->heap_top, im->heap_limit);
  for (uint32_t i = 0; instance && i < instance->instance.overlay_count; i++)
    if ((rc = overlay_one(mem, image, instance, &r, i, &next, err))) return rc;
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, i, &m);
    if (m.access == CAP_ACCESS_RO && nub_pvm_mem_protect(mem, m.start, m.size, PVM_ACCESS_RO, &perr))
      return mem_error(err, mapping_off(image, i), "mapping", i, &perr);
  }
  return CAP_OK;
}

int nub_cap_memory_build(nub_pvm_mem *mem, const nub_cap_view *image,
                     const nub_cap_view *instance, nub_cap_lookup_fn lookup, void *ud,
                     nub_cap_error *err) {
  int rc;
  if ((rc = check_views(mem, image, instance, err))) return rc;
  const nub_cap_image_view *im = &image->image;
  if (!im->mapping_count && !(instance && instance->instance.overlay_count)) {
    nub_pvm_mem_set_heap(mem, im->heap_top, im->heap_limit);   /* nothing to look up or place */
    return CAP_OK;
  }
  return build_placed(mem, image, instance, lookup, ud, err);
}
