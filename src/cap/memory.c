/*
** The memory of an invocation: an Image's mappings (zero fill or Data
** contents) in an empty pvm_mem, the sbrk heap, then the Instance's
** overlay of Data caps.
*/
#include <stdio.h>

#include "cap_internal.h"

static const uint8_t zero_page[CAP_PAGE_SIZE];

/* The Data cap under hash, or an error naming what referred to it. */
static int find_data(cap_lookup_fn lookup, void *ud, const uint8_t *hash,
                     const char *what, uint32_t i, uint64_t off,
                     const cap_data_view **out, cap_error *err) {
  const cap_view *v = lookup(ud, hash);
  char hex[65];
  int rc;
  if (v && v->kind == CAP_DATA) {
    *out = &v->data;
    return CAP_OK;
  }
  if (v)
    rc = cap_fail(err, CAP_ERR_KIND, off, "memory: %s %u: %s is a %s cap, not Data",
                  what, i, cap_hex32(hash, hex), cap_kind_name(v->kind));
  else
    rc = cap_fail(err, CAP_ERR_MISSING, off,
                  "memory: %s %u: Data cap %s is not in the directory", what, i,
                  cap_hex32(hash, hex));
  if (err) memcpy(err->hash, hash, CAP_HASH_SIZE);
  return rc;
}

/* A pvm_mem failure, placed at the wire offset of the entry that caused it. */
static int mem_error(cap_error *err, uint64_t off, const char *what, uint32_t i,
                     const pvm_error *perr) {
  cap_fail(err, CAP_ERR_PVM, off, "memory: %s %u: %s", what, i, perr->msg);
  if (err) err->pvm_code = perr->code;
  return CAP_ERR_PVM;
}

/* Write the Data's pages at base; with zero_gaps, its zero pages too. */
static int write_data(pvm_mem *mem, uint32_t base, const cap_data_view *d,
                      bool zero_gaps, pvm_error *perr) {
  uint64_t next = 0, npages = d->size / CAP_PAGE_SIZE;
  int rc = 0;
  for (uint32_t i = 0; i <= d->page_count && !rc; i++) {
    cap_page pg = i < d->page_count ? cap_data_page(d, i) : (cap_page){(uint32_t)npages, NULL};
    for (; zero_gaps && next < pg.index && !rc; next++)
      rc = pvm_mem_write(mem, base + (uint32_t)(next * CAP_PAGE_SIZE), zero_page,
                         CAP_PAGE_SIZE, perr);
    if (pg.bytes && !rc)
      rc = pvm_mem_write(mem, base + pg.index * CAP_PAGE_SIZE, pg.bytes, CAP_PAGE_SIZE, perr);
    next = (uint64_t)pg.index + 1;
  }
  return rc;
}

static int map_one(pvm_mem *mem, const cap_view *image, uint32_t i,
                   cap_lookup_fn lookup, void *ud, cap_error *err) {
  const cap_image_view *im = &image->image;
  uint64_t off = (uint64_t)(im->mappings - image->wire) + (uint64_t)i * W_MAPPING;
  const cap_data_view *d;
  cap_mapping m;
  pvm_error perr;
  char hex[65];
  int rc;
  cap_image_mapping(im, i, &m);
  if (pvm_mem_map(mem, m.start, m.size, (pvm_access)m.access, &perr))
    return mem_error(err, off, "mapping", i, &perr);
  if (cap_all_zero(m.source, CAP_HASH_SIZE)) return CAP_OK;
  if ((rc = find_data(lookup, ud, m.source, "mapping", i, off + MAP_SOURCE, &d, err)))
    return rc;
  if (d->size > m.size)
    return cap_fail(err, CAP_ERR_LIMIT, off + MAP_SOURCE,
                    "memory: mapping %u: Data %s of %llu bytes is larger than the "
                    "mapping's %u bytes", i, cap_hex32(m.source, hex),
                    (unsigned long long)d->size, m.size);
  if (write_data(mem, m.start, d, false, &perr))
    return mem_error(err, off, "mapping", i, &perr);
  return CAP_OK;
}

static int overlay_one(pvm_mem *mem, const cap_view *instance, uint32_t i,
                       uint64_t *prev_end, cap_lookup_fn lookup, void *ud,
                       cap_error *err) {
  const cap_instance_view *in = &instance->instance;
  uint64_t off = (uint64_t)(in->overlays - instance->wire) + (uint64_t)i * W_OVERLAY;
  const cap_data_view *d;
  cap_overlay o;
  pvm_error perr;
  uint64_t end;
  int rc;
  cap_instance_overlay(in, i, &o);
  if ((rc = find_data(lookup, ud, o.data, "overlay", i, off + 4, &d, err)))
    return rc;
  end = (uint64_t)o.address + d->size;
  if (end > CAP_MAX_DATA_SIZE)
    return cap_fail(err, CAP_ERR_RANGE, off,
                    "memory: overlay %u at 0x%x with %llu bytes runs past 2^32", i,
                    o.address, (unsigned long long)d->size);
  if (o.address < *prev_end)
    return cap_fail(err, CAP_ERR_OVERLAP, off,
                    "memory: overlay %u at 0x%x overlaps overlay %u, which ends at 0x%llx",
                    i, o.address, i - 1, (unsigned long long)*prev_end);
  for (uint64_t a = o.address; a < end; a += CAP_PAGE_SIZE)
    if (pvm_mem_access(mem, (uint32_t)a) == PVM_ACCESS_NONE)
      return cap_fail(err, CAP_ERR_RANGE, off,
                      "memory: overlay %u covers page 0x%llx, which no mapping maps",
                      i, (unsigned long long)a);
  *prev_end = end;
  if (write_data(mem, o.address, d, true, &perr))
    return mem_error(err, off, "overlay", i, &perr);
  return CAP_OK;
}

int cap_memory_build(pvm_mem *mem, const cap_view *image,
                     const cap_view *instance, cap_lookup_fn lookup, void *ud,
                     cap_error *err) {
  uint64_t prev_end = 0;
  int rc;
  if (!image || image->kind != CAP_IMAGE || (instance && instance->kind != CAP_INSTANCE))
    return cap_fail(err, CAP_ERR_KIND, 0, "memory: needs an Image view and an Instance view or NULL");
  if (pvm_mem_mapped_pages(mem))
    return cap_fail(err, CAP_ERR_ARG, 0, "memory: mem already maps %u pages; it must be empty",
                    pvm_mem_mapped_pages(mem));
  for (uint32_t i = 0; i < image->image.mapping_count; i++)
    if ((rc = map_one(mem, image, i, lookup, ud, err))) return rc;
  pvm_mem_set_heap(mem, image->image.heap_top, image->image.heap_limit);
  for (uint32_t i = 0; instance && i < instance->instance.overlay_count; i++)
    if ((rc = overlay_one(mem, instance, i, &prev_end, lookup, ud, err))) return rc;
  return CAP_OK;
}
