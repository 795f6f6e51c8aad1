/*
** Field access on validated views.  nub_cap_decode checked every offset and
** length, so these only read.
*/
#include "cap_internal.h"


nub_cap_page nub_cap_data_page(const nub_cap_data_view *d, uint32_t i) {
  if (!d->pages) {                 /* stored once: indexes, then the page image */
    nub_cap_page pg = {cap_le32(d->indexes + 4 * (size_t)i),
                       d->image ? d->image + (size_t)i * CAP_PAGE_SIZE : NULL};
    return pg;
  }
  const uint8_t *rec = d->pages + (size_t)i * W_PAGE;
  nub_cap_page pg = {cap_le32(rec), rec + 4};
  return pg;
}

const uint8_t *nub_cap_data_find_page(const nub_cap_data_view *d, uint32_t page_index) {
  uint32_t lo = 0, hi = d->page_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    nub_cap_page pg = nub_cap_data_page(d, mid);
    if (pg.index == page_index) return pg.bytes;
    if (pg.index < page_index) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

void nub_cap_image_endpoint(const nub_cap_image_view *im, uint32_t i, nub_cap_endpoint *out) {
  const uint8_t *e = im->endpoints + (size_t)i * W_ENDPOINT;
  out->key = e[EP_KEY];
  out->entry_pc = cap_le32(e + EP_PC);
  out->stack_top = cap_le32(e + EP_STACK);
  for (int r = 0; r < CAP_REGS; r++) out->regs[r] = cap_le(e + EP_REGS + 8 * r, 8);
}

bool nub_cap_image_find_endpoint(const nub_cap_image_view *im, uint8_t key,
                             nub_cap_endpoint *out) {
  uint32_t lo = 0, hi = im->endpoint_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    uint8_t k = im->endpoints[(size_t)mid * W_ENDPOINT + EP_KEY];
    if (k == key) {
      nub_cap_image_endpoint(im, mid, out);
      return true;
    }
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

void nub_cap_image_mapping(const nub_cap_image_view *im, uint32_t i, nub_cap_mapping *out) {
  const uint8_t *m = im->mappings + (size_t)i * W_MAPPING;
  out->start = cap_le32(m + MAP_START);
  out->size = cap_le32(m + MAP_SIZE);
  out->access = m[MAP_ACCESS];
  memcpy(out->source, m + MAP_SOURCE, CAP_HASH_SIZE);
}

void nub_cap_instance_overlay(const nub_cap_instance_view *in, uint32_t i,
                          nub_cap_overlay *out) {
  const uint8_t *o = in->overlays + (size_t)i * W_OVERLAY;
  out->address = cap_le32(o);
  memcpy(out->data, o + 4, CAP_HASH_SIZE);
}

/* Element i of a slot list: its bytes start at offset table[i]. */
static const uint8_t *slot_at(const nub_cap_slots *s, uint32_t i, size_t *key_len) {
  uint32_t start = cap_le32(s->p + 4 * (size_t)i);
  uint32_t end = i + 1 < s->count ? cap_le32(s->p + 4 * (size_t)i + 4) : s->len;
  *key_len = end - start - W_SLOT_FIXED;
  return s->p + start;
}

void nub_cap_slots_get(const nub_cap_slots *s, uint32_t i, nub_cap_slot *out) {
  size_t klen;
  const uint8_t *e = slot_at(s, i, &klen);
  memset(out, 0, sizeof *out);
  out->key_len = (uint8_t)klen;
  memcpy(out->key, e + W_SLOT_FIXED, klen);
  memcpy(out->hash, e + 4, CAP_HASH_SIZE);
}

bool nub_cap_slots_find(const nub_cap_slots *s, const uint8_t *key, size_t key_len,
                    nub_cap_slot *out) {
  uint32_t lo = 0, hi = s->count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    size_t klen;
    const uint8_t *e = slot_at(s, mid, &klen);
    int c = cap_key_cmp(e + W_SLOT_FIXED, klen, key, key_len);
    if (c == 0) {
      nub_cap_slots_get(s, mid, out);
      return true;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

/* Move one pointer from the old copy of the bytes to the new one. */
static const uint8_t *moved(const uint8_t *p, uintptr_t from, uintptr_t to) {
  return p ? (const uint8_t *)(to + ((uintptr_t)p - from)) : NULL;
}

void nub_cap_view_rebase(nub_cap_view *v, const uint8_t *new_wire) {
  uintptr_t from = (uintptr_t)v->wire, to = (uintptr_t)new_wire;
  switch (v->kind) {
  case CAP_DATA:                   /* a Data cap stored once reads no wire */
    v->data.pages = moved(v->data.pages, from, to);
    break;
  case CAP_IMAGE:
    v->image.code = moved(v->image.code, from, to);
    v->image.blob.code = moved(v->image.blob.code, from, to);
    v->image.blob.bitmask = moved(v->image.blob.bitmask, from, to);
    v->image.blob.jump_table = moved(v->image.blob.jump_table, from, to);
    v->image.endpoints = moved(v->image.endpoints, from, to);
    v->image.mappings = moved(v->image.mappings, from, to);
    v->image.slots.p = moved(v->image.slots.p, from, to);
    break;
  case CAP_INSTANCE:
    v->instance.image_hash = moved(v->instance.image_hash, from, to);
    v->instance.image_hash_chain = moved(v->instance.image_hash_chain, from, to);
    v->instance.root_cnode = moved(v->instance.root_cnode, from, to);
    v->instance.overlays = moved(v->instance.overlays, from, to);
    break;
  default:
    v->cnode.slots.p = moved(v->cnode.slots.p, from, to);
    break;
  }
  v->wire = new_wire;
}
