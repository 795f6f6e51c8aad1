/*
** Builders: turn a program (GP standard program + arguments, or a bare
** generic blob + page map) into Data caps, an Image and a fresh Instance.
*/
#include <stdlib.h>

#include "cap_internal.h"

static uint64_t page_up(uint64_t x) {
  return (x + CAP_PAGE_SIZE - 1) / CAP_PAGE_SIZE * CAP_PAGE_SIZE;
}

void nub_cap_bundle_free(nub_cap_bundle *b) {
  for (uint32_t i = 0; b->items && i < b->count; i++) free(b->items[i].wire);
  free(b->items);
  memset(b, 0, sizeof *b);
}

void nub_cap_instance_fresh(const uint8_t image_hash[CAP_HASH_SIZE],
                        nub_cap_instance_spec *out) {
  static const uint8_t root_parent[CAP_HASH_SIZE];
  memset(out, 0, sizeof *out);
  memcpy(out->image_hash, image_hash, CAP_HASH_SIZE);
  nub_cap_hash_chain(root_parent, image_hash, out->image_hash_chain);
}

/* Hash wire (which the bundle now owns) and append it. */
static int bundle_take(nub_cap_bundle *b, uint8_t *wire, size_t len, nub_cap_error *err) {
  nub_cap_item *it = &b->items[b->count];
  int rc = nub_cap_hash_wire(wire, wire + len, it->hash, err);
  if (rc) {
    free(wire);
    return rc;
  }
  it->kind = (nub_cap_kind)wire[0];
  it->wire = wire;
  it->len = len;
  b->count++;
  return CAP_OK;
}

static int bundle_encode(nub_cap_bundle *b, const nub_cap_spec *s, nub_cap_error *err) {
  uint8_t *wire;
  size_t len;
  int rc = nub_cap_encode_alloc(s, &wire, &len, err);
  return rc ? rc : bundle_take(b, wire, len, err);
}

/* A mapping per region; a Data cap (page-rounded) for each region with
** bytes, whose hash becomes the mapping's source. */
static int region_mapping(nub_cap_bundle *b, const nub_cap_region *r, uint32_t i,
                          nub_cap_mapping *m, nub_cap_error *err) {
  uint8_t *wire;
  size_t len;
  int rc;
  memset(m, 0, sizeof *m);
  m->start = r->start;
  m->size = r->size;
  m->access = r->access;
  if (!r->len) return CAP_OK;
  if (r->len > r->size)
    return cap_fail(err, CAP_ERR_LIMIT, 0,
                    "build: region %u: %zu bytes do not fit its %u-byte range", i,
                    r->len, r->size);
  if ((rc = nub_cap_encode_data_alloc(page_up(r->len), r->bytes, r->len, &wire, &len, err)) ||
      (rc = bundle_take(b, wire, len, err)))
    return rc;
  memcpy(m->source, b->items[b->count - 1].hash, CAP_HASH_SIZE);
  return CAP_OK;
}

typedef struct program_parts {
  nub_pvm_profile profile;
  const uint8_t *code;
  size_t code_len;
  const nub_cap_region *regions;
  uint32_t region_count;
  nub_cap_endpoint entry;               /* the one endpoint, unless ... */
  const nub_cap_endpoint *entries;      /* ... entry_count of them are given */
  uint32_t entry_count;
  uint32_t heap_top, heap_limit;
} program_parts;

static int build_program(const program_parts *p, nub_cap_bundle *out, nub_cap_error *err) {
  nub_cap_mapping maps[CAP_MAX_MAPPINGS];
  nub_cap_spec image = {.kind = CAP_IMAGE}, inst = {.kind = CAP_INSTANCE};
  int rc = CAP_OK;
  memset(out, 0, sizeof *out);
  if (!nub_pvm_isa(p->profile))
    return cap_fail(err, CAP_ERR_RESERVED, 0, "build: %d is not a known ISA profile (there are %d)",
                    (int)p->profile, (int)PVM_PROFILE_COUNT);
  if (p->region_count > CAP_MAX_MAPPINGS)
    return cap_fail(err, CAP_ERR_LIMIT, 0, "build: %u regions exceed the mapping limit %u",
                    p->region_count, CAP_MAX_MAPPINGS);
  if (!(out->items = calloc(p->region_count + 2, sizeof *out->items)))
    return cap_fail(err, CAP_ERR_NOMEM, 0, "build: no memory");
  for (uint32_t i = 0; i < p->region_count && !rc; i++)
    rc = region_mapping(out, &p->regions[i], i, &maps[i], err);
  if (rc) goto fail;
  image.image.profile = (uint8_t)p->profile;
  image.image.heap_top = p->heap_top;
  image.image.heap_limit = p->heap_limit;
  image.image.code = p->code;
  image.image.code_len = p->code_len;
  image.image.endpoints = p->entry_count ? p->entries : &p->entry;
  image.image.endpoint_count = p->entry_count ? p->entry_count : 1;
  image.image.mappings = maps;
  image.image.mapping_count = p->region_count;
  if ((rc = bundle_encode(out, &image, err))) goto fail;
  out->image = out->count - 1;
  nub_cap_instance_fresh(out->items[out->image].hash, &inst.instance);
  if ((rc = bundle_encode(out, &inst, err))) goto fail;
  out->instance = out->count - 1;
  return CAP_OK;
fail:
  nub_cap_bundle_free(out);
  return rc;
}

int nub_cap_build_generic(nub_pvm_profile profile, const uint8_t *blob, size_t blob_len,
                      const nub_cap_region *map, uint32_t count, nub_cap_bundle *out,
                      nub_cap_error *err) {
  program_parts p = {.profile = profile, .code = blob, .code_len = blob_len, .regions = map,
                     .region_count = map ? count : 0};
  return build_program(&p, out, err);
}

/* Append a region unless it is empty (empty mappings are not encoded). */
static void add_region(nub_cap_region *r, uint32_t *n, uint32_t start, uint64_t size,
                       uint8_t access, const uint8_t *bytes, size_t len) {
  if (!size) return;
  nub_cap_region x = {start, (uint32_t)size, access, bytes, len};
  r[(*n)++] = x;
}

int nub_cap_build_spi(nub_pvm_profile profile, const uint8_t *spi, size_t spi_len,
                  const uint8_t *args, uint32_t args_len, nub_cap_bundle *out, nub_cap_error *err) {
  static const uint32_t entry0 = 0;
  return nub_cap_build_spi_endpoints(profile, spi, spi_len, args, args_len, &entry0, 1, out, err);
}

int nub_cap_build_spi_endpoints(nub_pvm_profile profile, const uint8_t *spi, size_t spi_len,
                            const uint8_t *args, uint32_t args_len, const uint32_t *entry_pcs,
                            uint32_t count, nub_cap_bundle *out, nub_cap_error *err) {
  nub_pvm_spi s;
  nub_pvm_spi_layout l;
  nub_pvm_error perr;
  nub_cap_region r[5];
  program_parts p = {.profile = profile, .regions = r};
  nub_cap_endpoint *entries;
  uint64_t rw_data;
  int rc;
  memset(out, 0, sizeof *out);
  if (!count || count > CAP_MAX_ENDPOINTS)
    return cap_fail(err, CAP_ERR_LIMIT, 0, "build: %u endpoints, want 1..%u", count,
                    CAP_MAX_ENDPOINTS);
  if (nub_pvm_spi_parse(spi, spi + spi_len, &s, &perr))
    return cap_fail_pvm(err, CAP_ERR_PVM, 0, "build: spi", &perr);
  if (nub_pvm_spi_layout_compute(&s, args_len, &l, &perr))
    return cap_fail_pvm(err, CAP_ERR_PVM, 0, "build: spi layout", &perr);
  rw_data = page_up(s.rw_len);
  add_region(r, &p.region_count, l.ro_start, l.ro_size, CAP_ACCESS_RO, s.ro_data, s.ro_len);
  add_region(r, &p.region_count, l.rw_start, rw_data, CAP_ACCESS_RW, s.rw_data, s.rw_len);
  add_region(r, &p.region_count, (uint32_t)(l.rw_start + rw_data), l.rw_size - rw_data,
             CAP_ACCESS_RW, NULL, 0);
  add_region(r, &p.region_count, l.stack_start, l.stack_size, CAP_ACCESS_RW, NULL, 0);
  add_region(r, &p.region_count, l.args_start, l.args_size, CAP_ACCESS_RO, args, args_len);
  p.code = s.code_blob;
  p.code_len = s.code_blob_len;
  if (!(entries = calloc(count, sizeof *entries)))
    return cap_fail(err, CAP_ERR_NOMEM, 0, "build: no memory");
  for (uint32_t i = 0; i < count; i++) {
    entries[i].key = (uint8_t)i;
    entries[i].entry_pc = entry_pcs[i];
    entries[i].stack_top = (uint32_t)l.regs[1];
    memcpy(entries[i].regs, l.regs, sizeof entries[i].regs);
  }
  p.entries = entries;
  p.entry_count = count;
  /* the same sbrk heap nub_pvm_spi_load_memory sets up */
  p.heap_top = l.heap_top;
  p.heap_limit = l.stack_start - PVM_ZONE;
  rc = build_program(&p, out, err);
  free(entries);
  return rc;
}
