/*
** Encoders: spec -> SSZ wire bytes.  They lay bytes out and leave every
** rule to nub_cap_decode, which checks what they wrote, so the encoder and
** the decoder cannot disagree about what is valid.
*/
#include <stdlib.h>

#include "cap_internal.h"

/* Sequential writer; with p == NULL it only counts. */
typedef struct wbuf {
  uint8_t *p;
  size_t n;
} wbuf;

static void put(wbuf *w, const void *src, size_t len) {
  if (w->p && len) memcpy(w->p + w->n, src, len);
  w->n += len;
}
static void put_le(wbuf *w, uint64_t v, unsigned bytes) {
  uint8_t b[8];
  cap_put_le(b, v, bytes);
  put(w, b, bytes);
}
static void put_regs(wbuf *w, const uint64_t *regs) {
  for (int i = 0; i < CAP_REGS; i++) put_le(w, regs[i], 8);
}

/* ---- pieces ---- */

static void put_slots(wbuf *w, const nub_cap_slot *s, uint32_t n) {
  size_t off = 4u * (size_t)n;
  for (uint32_t i = 0; i < n; i++) {
    put_le(w, off, 4);
    off += W_SLOT_FIXED + s[i].key_len;
  }
  for (uint32_t i = 0; i < n; i++) {
    put_le(w, W_SLOT_FIXED, 4);
    put(w, s[i].hash, CAP_HASH_SIZE);
    put(w, s[i].key, s[i].key_len);
  }
}

static void put_data(wbuf *w, const nub_cap_data_spec *d) {
  put_le(w, d->size, 8);
  put_le(w, W_DATA_FIXED, 4);
  for (uint32_t i = 0; i < d->page_count; i++) {
    if (cap_all_zero(d->pages[i].bytes, CAP_PAGE_SIZE)) continue;
    put_le(w, d->pages[i].index, 4);
    put(w, d->pages[i].bytes, CAP_PAGE_SIZE);
  }
}

static void put_image(wbuf *w, const nub_cap_image_spec *im) {
  size_t off = W_IMAGE_FIXED;
  put_le(w, im->profile, 1);
  put_le(w, im->heap_top, 4);
  put_le(w, im->heap_limit, 4);
  put_le(w, off, 4);
  put_le(w, off += im->code_len, 4);
  put_le(w, off += (size_t)im->endpoint_count * W_ENDPOINT, 4);
  put_le(w, off += (size_t)im->mapping_count * W_MAPPING, 4);
  put(w, im->code, im->code_len);
  for (uint32_t i = 0; i < im->endpoint_count; i++) {
    const nub_cap_endpoint *e = &im->endpoints[i];
    put_le(w, e->key, 1);
    put_le(w, e->entry_pc, 4);
    put_le(w, e->stack_top, 4);
    put_regs(w, e->regs);
  }
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    const nub_cap_mapping *m = &im->mappings[i];
    put_le(w, m->start, 4);
    put_le(w, m->size, 4);
    put_le(w, m->access, 1);
    put(w, m->source, CAP_HASH_SIZE);
  }
  put_slots(w, im->slots, im->slot_count);
}

static void put_instance(wbuf *w, const nub_cap_instance_spec *in) {
  put(w, in->image_hash, CAP_HASH_SIZE);
  put(w, in->image_hash_chain, CAP_HASH_SIZE);
  put(w, in->root_cnode, CAP_HASH_SIZE);
  put_le(w, W_INSTANCE_FIXED, 4);
  put_regs(w, in->regs);
  put_le(w, in->pc, 4);
  put_le(w, in->gas, 8);
  for (uint32_t i = 0; i < in->overlay_count; i++) {
    put_le(w, in->overlays[i].address, 4);
    put(w, in->overlays[i].data, CAP_HASH_SIZE);
  }
}

/* What the layout itself cannot express: keys too long to copy, and
** sizes the 4-byte SSZ offsets cannot reach. */
static int check_spec(const nub_cap_spec *s, nub_cap_error *err) {
  const nub_cap_slot *slots = s->kind == CAP_IMAGE ? s->image.slots
                        : s->kind == CAP_CNODE ? s->cnode.slots : NULL;
  uint32_t n = s->kind == CAP_IMAGE ? s->image.slot_count
             : s->kind == CAP_CNODE ? s->cnode.slot_count : 0;
  if ((unsigned)s->kind >= CAP_KIND_COUNT)
    return cap_fail(err, CAP_ERR_SELECTOR, 0, "encode: kind %d is not a cap kind", (int)s->kind);
  for (uint32_t i = 0; i < n; i++)
    if (slots[i].key_len > CAP_MAX_KEY_LEN)
      return cap_fail(err, CAP_ERR_LIMIT, 0, "encode: slots[%u].key: %u bytes exceed the limit %u",
                      i, slots[i].key_len, CAP_MAX_KEY_LEN);
  if (s->kind == CAP_IMAGE && s->image.code_len > CAP_MAX_CODE_BYTES)
    return cap_fail(err, CAP_ERR_LIMIT, 0, "encode: image.code: %zu bytes exceed the limit %u",
                    s->image.code_len, CAP_MAX_CODE_BYTES);
  if (s->kind == CAP_IMAGE && (s->image.endpoint_count > CAP_MAX_ENDPOINTS ||
                               s->image.mapping_count > CAP_MAX_MAPPINGS ||
                               s->image.slot_count > CAP_MAX_IMAGE_SLOTS))
    return cap_fail(err, CAP_ERR_LIMIT, 0,
                    "encode: image has %u endpoints, %u mappings, %u slots (limits %u, %u, %u)",
                    s->image.endpoint_count, s->image.mapping_count, s->image.slot_count,
                    CAP_MAX_ENDPOINTS, CAP_MAX_MAPPINGS, CAP_MAX_IMAGE_SLOTS);
  if (s->kind == CAP_CNODE && n > CAP_MAX_CNODE_SLOTS)
    return cap_fail(err, CAP_ERR_LIMIT, 0, "encode: cnode has %u slots, limit %u", n,
                    CAP_MAX_CNODE_SLOTS);
  return CAP_OK;
}

static void put_cap(wbuf *w, const nub_cap_spec *s) {
  put_le(w, (uint64_t)s->kind, 1);
  switch (s->kind) {
  case CAP_DATA: put_data(w, &s->data); break;
  case CAP_IMAGE: put_image(w, &s->image); break;
  case CAP_INSTANCE: put_instance(w, &s->instance); break;
  default:
    put_le(w, W_CNODE_FIXED, 4);
    put_slots(w, s->cnode.slots, s->cnode.slot_count);
    break;
  }
}

int nub_cap_encode(const nub_cap_spec *spec, uint8_t *out, size_t out_cap, size_t *len,
               nub_cap_error *err) {
  wbuf count = {NULL, 0}, w = {out, 0};
  nub_cap_view v;
  int rc = check_spec(spec, err);
  if (rc) return rc;
  put_cap(&count, spec);
  *len = count.n;
  if (!out) return CAP_OK;
  if (out_cap < count.n)
    return cap_fail(err, CAP_ERR_FULL, 0, "encode: %s needs %zu bytes, buffer has %zu",
                    nub_cap_kind_name(spec->kind), count.n, out_cap);
  put_cap(&w, spec);
  return nub_cap_decode(out, out + w.n, &v, err);
}

int nub_cap_encode_alloc(const nub_cap_spec *spec, uint8_t **out, size_t *len,
                     nub_cap_error *err) {
  size_t n;
  int rc = nub_cap_encode(spec, NULL, 0, &n, err);
  *out = NULL;
  if (rc) return rc;
  if (!(*out = malloc(n ? n : 1)))
    return cap_fail(err, CAP_ERR_NOMEM, 0, "encode: no memory for %zu bytes", n);
  if ((rc = nub_cap_encode(spec, *out, n, len, err))) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

int nub_cap_encode_data_alloc(uint64_t size, const uint8_t *bytes, size_t len,
                          uint8_t **out, size_t *out_len, nub_cap_error *err) {
  uint8_t tail[CAP_PAGE_SIZE];
  uint64_t full = len / CAP_PAGE_SIZE, n = (len + CAP_PAGE_SIZE - 1) / CAP_PAGE_SIZE;
  nub_cap_spec s = {.kind = CAP_DATA};
  nub_cap_page *pages;
  int rc;
  *out = NULL;
  if (len > size || size > CAP_MAX_DATA_SIZE)
    return cap_fail(err, CAP_ERR_LIMIT, 0,
                    "encode: %zu content bytes in a %llu-byte Data (limit 2^32)", len,
                    (unsigned long long)size);
  if (!(pages = malloc((size_t)(n ? n : 1) * sizeof *pages)))
    return cap_fail(err, CAP_ERR_NOMEM, 0, "encode: no memory for %llu pages",
                    (unsigned long long)n);
  for (uint64_t i = 0; i < n; i++) {
    pages[i].index = (uint32_t)i;
    pages[i].bytes = bytes + i * CAP_PAGE_SIZE;
  }
  if (n > full) {   /* the partial last page, zero padded */
    memset(tail, 0, sizeof tail);
    memcpy(tail, bytes + full * CAP_PAGE_SIZE, len - full * CAP_PAGE_SIZE);
    pages[full].bytes = tail;
  }
  s.data.size = size;
  s.data.pages = pages;
  s.data.page_count = (uint32_t)n;
  rc = nub_cap_encode_alloc(&s, out, out_len, err);
  free(pages);
  return rc;
}

/* ---- view -> spec ---- */

static void *alloc_array(size_t n, size_t elem, int *rc) {
  void *p = n ? calloc(n, elem) : NULL;
  if (n && !p) *rc = CAP_ERR_NOMEM;
  return p;
}

static nub_cap_slot *slots_from(const nub_cap_slots *src, int *rc) {
  nub_cap_slot *s;
  if (!(s = alloc_array(src->count, sizeof *s, rc))) return NULL;
  for (uint32_t i = 0; i < src->count; i++) nub_cap_slots_get(src, i, &s[i]);
  return s;
}

static int image_spec_from(const nub_cap_image_view *v, nub_cap_image_spec *s) {
  int rc = CAP_OK;
  nub_cap_endpoint *ep = alloc_array(v->endpoint_count, sizeof *ep, &rc);
  nub_cap_mapping *mp = alloc_array(v->mapping_count, sizeof *mp, &rc);
  s->profile = v->profile;
  s->heap_top = v->heap_top;
  s->heap_limit = v->heap_limit;
  s->code = v->code;
  s->code_len = v->code_len;
  s->endpoints = ep;
  s->endpoint_count = ep ? v->endpoint_count : 0;
  s->mappings = mp;
  s->mapping_count = mp ? v->mapping_count : 0;
  s->slots = slots_from(&v->slots, &rc);
  s->slot_count = s->slots ? v->slots.count : 0;
  for (uint32_t i = 0; ep && i < v->endpoint_count; i++) nub_cap_image_endpoint(v, i, &ep[i]);
  for (uint32_t i = 0; mp && i < v->mapping_count; i++) nub_cap_image_mapping(v, i, &mp[i]);
  return rc;
}

static int instance_spec_from(const nub_cap_instance_view *v, nub_cap_instance_spec *s) {
  int rc = CAP_OK;
  nub_cap_overlay *ov = alloc_array(v->overlay_count, sizeof *ov, &rc);
  memcpy(s->image_hash, v->image_hash, CAP_HASH_SIZE);
  memcpy(s->image_hash_chain, v->image_hash_chain, CAP_HASH_SIZE);
  memcpy(s->root_cnode, v->root_cnode, CAP_HASH_SIZE);
  memcpy(s->regs, v->regs, sizeof s->regs);
  s->pc = v->pc;
  s->gas = v->gas;
  s->overlays = ov;
  s->overlay_count = ov ? v->overlay_count : 0;
  for (uint32_t i = 0; ov && i < v->overlay_count; i++) nub_cap_instance_overlay(v, i, &ov[i]);
  return rc;
}

static int data_spec_from(const nub_cap_data_view *v, nub_cap_data_spec *s) {
  int rc = CAP_OK;
  nub_cap_page *pg = alloc_array(v->page_count, sizeof *pg, &rc);
  s->size = v->size;
  s->pages = pg;
  s->page_count = pg ? v->page_count : 0;
  for (uint32_t i = 0; pg && i < v->page_count; i++) pg[i] = nub_cap_data_page(v, i);
  return rc;
}

int nub_cap_spec_from_view(const nub_cap_view *v, nub_cap_spec *out, nub_cap_error *err) {
  int rc = CAP_OK;
  memset(out, 0, sizeof *out);
  out->kind = v->kind;
  switch (v->kind) {
  case CAP_DATA: rc = data_spec_from(&v->data, &out->data); break;
  case CAP_IMAGE: rc = image_spec_from(&v->image, &out->image); break;
  case CAP_INSTANCE: rc = instance_spec_from(&v->instance, &out->instance); break;
  default:
    out->cnode.slots = slots_from(&v->cnode.slots, &rc);
    out->cnode.slot_count = out->cnode.slots ? v->cnode.slots.count : 0;
    break;
  }
  if (rc) {
    nub_cap_spec_free(out);
    return cap_fail(err, CAP_ERR_NOMEM, 0, "spec: no memory for the %s's arrays",
                    nub_cap_kind_name(v->kind));
  }
  return CAP_OK;
}

void nub_cap_spec_free(nub_cap_spec *s) {
  switch (s->kind) {
  case CAP_DATA: free((void *)s->data.pages); break;
  case CAP_IMAGE:
    free((void *)s->image.endpoints);
    free((void *)s->image.mappings);
    free((void *)s->image.slots);
    break;
  case CAP_INSTANCE: free((void *)s->instance.overlays); break;
  default: free((void *)s->cnode.slots); break;
  }
  memset(s, 0, sizeof *s);
}
