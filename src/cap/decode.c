/*
** Strict wire decoding: the whole object is checked (offsets, lengths,
** limits, selector, sort order, reserved values, the Image program)
** before a view is handed out, so later field reads need no checks.
*/
#include <stdio.h>

#include "cap_internal.h"


/* A hash a cap refers to may be anything but the failure sentinel (and,
** for list entries, zero).  Named list[i].field, or list alone when
** field is NULL. */
static int check_ref(const uint8_t *h, uint64_t off, const char *list,
                     uint32_t i, const char *field, bool allow_zero,
                     nub_cap_error *err) {
  bool sentinel = nub_cap_hash_is_sentinel(h);
  char name[64];
  if (!sentinel && (allow_zero || !cap_all_zero(h, CAP_HASH_SIZE))) return CAP_OK;
  if (field) snprintf(name, sizeof name, "%s[%u].%s", list, i, field);
  else snprintf(name, sizeof name, "%s", list);
  if (sentinel)
    return cap_fail(err, CAP_ERR_RESERVED, off,
                    "%s is the 32 x 0xFF failure sentinel, never a cap", name);
  return cap_fail(err, CAP_ERR_RESERVED, off,
                  "%s is all zero; empty entries are omitted", name);
}

/* Hex of a key for messages. */
static const char *key_hex(const uint8_t *k, size_t n, char buf[2 * CAP_MAX_KEY_LEN + 3]) {
  static const char digits[] = "0123456789abcdef";
  size_t j = 0;
  buf[j++] = '0';
  buf[j++] = 'x';
  for (size_t i = 0; i < n && i < CAP_MAX_KEY_LEN; i++) {
    buf[j++] = digits[k[i] >> 4];
    buf[j++] = digits[k[i] & 15];
  }
  buf[j] = 0;
  return buf;
}

/* ---- Data ---- */

static int check_page(uint32_t idx, bool zero, uint64_t off, uint32_t i,
                      uint64_t npages, uint64_t prev, nub_cap_error *err) {
  if (idx >= npages)
    return cap_fail(err, CAP_ERR_RANGE, off,
                    "data.pages[%u].index %u is past the last page of a "
                    "%llu-page Data", i, idx, (unsigned long long)npages);
  if (i > 0 && idx <= prev)
    return cap_fail(err, CAP_ERR_ORDER, off,
                    "data.pages[%u].index %u %s page %llu before it; indexes "
                    "must strictly ascend", i, idx,
                    idx == prev ? "repeats" : "is below", (unsigned long long)prev);
  return zero ? cap_fail_zero_page(err, off + 4, i, idx) : CAP_OK;
}

int cap_fail_zero_page(nub_cap_error *err, uint64_t off, uint32_t i, uint32_t idx) {
  return cap_fail(err, CAP_ERR_CANONICAL, off,
                  "data.pages[%u] (page %u) is all zero; zero pages are omitted", i, idx);
}

/* c is the variant; its pages are read from the wire (indexes NULL) or,
** for a Data cap stored once, index i at indexes + 4i and its bytes at
** image + 4096i.  Offsets in errors are the wire's either way.  The page
** at position first_zero is the first all-zero one when the caller knows
** it (page_count: none); CAP_ZERO_READ reads every page's bytes. */
static int decode_data(ssz_span c, const uint8_t *indexes, const uint8_t *image,
                       uint64_t first_zero, nub_cap_data_view *v, nub_cap_error *err) {
  static const uint8_t at[] = {8};
  static const char *const names[] = {"pages"};
  ssz_span pages;
  int rc = ssz_container(c, W_DATA_FIXED, 1, at, names, "data", &pages, err);
  if (rc) return rc;
  v->size = cap_le64(c.p);
  if (v->size % CAP_PAGE_SIZE)
    return cap_fail(err, CAP_ERR_ALIGN, c.off,
                    "data.size %llu is not a multiple of 4096",
                    (unsigned long long)v->size);
  if (v->size > CAP_MAX_DATA_SIZE)
    return cap_fail(err, CAP_ERR_LIMIT, c.off,
                    "data.size %llu exceeds the limit 2^32",
                    (unsigned long long)v->size);
  if ((rc = ssz_list_fixed(pages, W_PAGE, CAP_MAX_DATA_PAGES, "data.pages",
                           &v->page_count, err)))
    return rc;
  v->pages = indexes ? NULL : pages.p;
  v->indexes = indexes;
  v->image = indexes ? image : NULL;
  v->run_count = 0;
  v->runs = NULL;
  for (uint32_t i = 0, prev = 0; i < v->page_count; i++) {
    nub_cap_page pg = nub_cap_data_page(v, i);   /* bytes NULL: decoded from parts */
    bool zero = first_zero == CAP_ZERO_READ ? cap_all_zero(pg.bytes, CAP_PAGE_SIZE)
                                            : i == first_zero;
    if ((rc = check_page(pg.index, zero, pages.off + (uint64_t)i * W_PAGE, i,
                         v->size / CAP_PAGE_SIZE, prev, err)))
      return rc;
    v->run_count += i == 0 || pg.index != prev + 1;
    prev = pg.index;
  }
  return CAP_OK;
}

int cap_decode_data_stored(const uint8_t *head, size_t len, const uint8_t *indexes,
                           const uint8_t *image, uint64_t first_zero, nub_cap_view *out,
                           nub_cap_error *err) {
  ssz_span body = {head + 1, len - 1, 1};
  int rc;
  memset(out, 0, sizeof *out);
  if (len < CAP_DIR_DATA_HEAD || head[0] != CAP_DATA)
    return cap_fail(err, CAP_ERR_ARG, 0, "cap: a Data cap stored once needs its %u-byte head",
                    CAP_DIR_DATA_HEAD);
  out->kind = CAP_DATA;
  out->wire = head;
  out->len = len;
  if ((rc = decode_data(body, indexes, image, first_zero, &out->data, err))) memset(out, 0, sizeof *out);
  return rc;
}

int nub_cap_decode_data_parts(const uint8_t *head, size_t len, const uint8_t *indexes,
                              nub_cap_view *out, nub_cap_error *err) {
  if (!head || !indexes || len < CAP_DIR_DATA_HEAD + W_PAGE || (len - CAP_DIR_DATA_HEAD) % W_PAGE) {
    memset(out, 0, sizeof *out);
    return cap_fail(err, CAP_ERR_ARG, 0,
                    "cap: Data parts need a head, indexes and a length of 13 + 4100 n, n >= 1 "
                    "(got %zu)", len);
  }
  return cap_decode_data_stored(head, len, indexes, NULL, CAP_ZERO_NONE, out, err);
}

/* ---- slot lists (Image and CNode) ---- */

static int check_slot(ssz_span e, const char *what, uint32_t i,
                      const ssz_span *prev, nub_cap_error *err) {
  char a[20], b[20];
  uint32_t koff;
  size_t klen;
  if (e.len < W_SLOT_FIXED)
    return cap_fail(err, CAP_ERR_TRUNCATED, e.off,
                    "%s[%u]: %zu bytes, but its fixed part needs %u", what, i,
                    e.len, W_SLOT_FIXED);
  if ((koff = cap_le32(e.p)) != W_SLOT_FIXED)
    return cap_fail(err, CAP_ERR_OFFSET, e.off,
                    "%s[%u].key: offset %u must be %u, the end of the fixed part",
                    what, i, koff, W_SLOT_FIXED);
  if ((klen = e.len - W_SLOT_FIXED) > CAP_MAX_KEY_LEN)
    return cap_fail(err, CAP_ERR_LIMIT, e.off + W_SLOT_FIXED,
                    "%s[%u].key: %zu bytes exceed the limit %u", what, i, klen,
                    CAP_MAX_KEY_LEN);
  if (prev && cap_key_cmp(e.p + W_SLOT_FIXED, klen, prev->p + W_SLOT_FIXED,
                          prev->len - W_SLOT_FIXED) <= 0)
    return cap_fail(err, CAP_ERR_ORDER, e.off + W_SLOT_FIXED,
                    "%s[%u].key %s does not sort after slot %u's key %s; keys "
                    "must strictly ascend", what, i,
                    key_hex(e.p + W_SLOT_FIXED, klen, a), i - 1,
                    key_hex(prev->p + W_SLOT_FIXED, prev->len - W_SLOT_FIXED, b));
  return check_ref(e.p + 4, e.off + 4, what, i, "hash", false, err);
}

static int decode_slots(ssz_span s, uint32_t limit, const char *what,
                        nub_cap_slots *out, nub_cap_error *err) {
  ssz_span prev = {0};
  int rc = ssz_list_var(s, limit, what, &out->count, err);
  if (rc) return rc;
  out->p = s.p;
  out->len = (uint32_t)s.len;
  for (uint32_t i = 0; i < out->count; i++) {
    ssz_span e = ssz_list_elem(s, out->count, i);
    if ((rc = check_slot(e, what, i, i ? &prev : NULL, err))) return rc;
    prev = e;
  }
  return CAP_OK;
}

/* ---- Image ---- */

static int check_heap(ssz_span c, uint32_t top, uint32_t limit, nub_cap_error *err) {
  if (!limit && top)
    return cap_fail(err, CAP_ERR_RESERVED, c.off + IMG_HEAP_TOP,
                    "image.heap_top 0x%x is set but heap_limit is 0 (no heap)", top);
  if (limit && top < PVM_GUARD_END)
    return cap_fail(err, CAP_ERR_RANGE, c.off + IMG_HEAP_TOP,
                    "image.heap_top 0x%x is below 0x%x", top, PVM_GUARD_END);
  if (top > limit)
    return cap_fail(err, CAP_ERR_RANGE, c.off + IMG_HEAP_LIMIT,
                    "image.heap_limit 0x%x is below heap_top 0x%x", limit, top);
  return CAP_OK;
}

static int check_endpoints(ssz_span s, uint32_t n, nub_cap_error *err) {
  for (uint32_t i = 1; i < n; i++) {
    uint8_t key = s.p[(size_t)i * W_ENDPOINT], prev = s.p[(size_t)(i - 1) * W_ENDPOINT];
    if (key <= prev)
      return cap_fail(err, CAP_ERR_ORDER, s.off + (uint64_t)i * W_ENDPOINT,
                      "image.endpoints[%u].key %u %s endpoint %u's key %u; keys "
                      "must strictly ascend", i, key,
                      key == prev ? "repeats" : "is below", i - 1, prev);
  }
  return CAP_OK;
}

static int check_mapping(const uint8_t *m, uint64_t off, uint32_t i,
                         uint64_t prev_start, uint64_t prev_end, nub_cap_error *err) {
  uint64_t start = cap_le32(m + MAP_START), size = cap_le32(m + MAP_SIZE);
  if (start % CAP_PAGE_SIZE || size % CAP_PAGE_SIZE)
    return cap_fail(err, CAP_ERR_ALIGN, off + (start % CAP_PAGE_SIZE ? MAP_START : MAP_SIZE),
                    "image.mappings[%u]: %s 0x%llx is not page aligned", i,
                    start % CAP_PAGE_SIZE ? "start" : "size",
                    (unsigned long long)(start % CAP_PAGE_SIZE ? start : size));
  if (!size)
    return cap_fail(err, CAP_ERR_CANONICAL, off + MAP_SIZE,
                    "image.mappings[%u].size is 0; empty mappings are omitted", i);
  if (start < PVM_GUARD_END || start + size > CAP_MAX_DATA_SIZE)
    return cap_fail(err, CAP_ERR_RANGE, off,
                    "image.mappings[%u]: [0x%llx, 0x%llx) is outside [0x%x, 2^32)",
                    i, (unsigned long long)start, (unsigned long long)(start + size),
                    PVM_GUARD_END);
  if (i > 0 && start < prev_start)
    return cap_fail(err, CAP_ERR_ORDER, off,
                    "image.mappings[%u].start 0x%llx is below mapping %u's 0x%llx; "
                    "mappings must ascend", i, (unsigned long long)start, i - 1,
                    (unsigned long long)prev_start);
  if (i > 0 && start < prev_end)
    return cap_fail(err, CAP_ERR_OVERLAP, off,
                    "image.mappings[%u] at 0x%llx overlaps mapping %u, which ends "
                    "at 0x%llx", i, (unsigned long long)start, i - 1,
                    (unsigned long long)prev_end);
  if (m[MAP_ACCESS] != CAP_ACCESS_RO && m[MAP_ACCESS] != CAP_ACCESS_RW)
    return cap_fail(err, CAP_ERR_RESERVED, off + MAP_ACCESS,
                    "image.mappings[%u].access %u is neither RO (1) nor RW (2)",
                    i, m[MAP_ACCESS]);
  return check_ref(m + MAP_SOURCE, off + MAP_SOURCE, "image.mappings", i,
                   "source", true, err);
}

static int check_mappings(ssz_span s, uint32_t n, nub_cap_error *err) {
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *m = s.p + (size_t)i * W_MAPPING, *p = m - W_MAPPING;
    uint64_t ps = i ? cap_le32(p + MAP_START) : 0, pe = i ? ps + cap_le32(p + MAP_SIZE) : 0;
    int rc = check_mapping(m, s.off + (uint64_t)i * W_MAPPING, i, ps, pe, err);
    if (rc) return rc;
  }
  return CAP_OK;
}

static int decode_code(ssz_span code, nub_cap_image_view *v, nub_cap_error *err) {
  nub_pvm_error perr;
  if (code.len > CAP_MAX_CODE_BYTES)
    return cap_fail(err, CAP_ERR_LIMIT, code.off,
                    "image.code: %zu bytes exceed the limit %u", code.len,
                    CAP_MAX_CODE_BYTES);
  v->code = code.p;
  v->code_len = (uint32_t)code.len;
  if (nub_pvm_blob_parse(code.p, code.p + code.len, &v->blob, &perr))
    return cap_fail_pvm(err, CAP_ERR_CODE, code.off, "image.code", &perr);
  return CAP_OK;
}

static int decode_image(ssz_span c, nub_cap_image_view *v, nub_cap_error *err) {
  static const uint8_t at[] = {IMG_CODE, IMG_ENDPOINTS, IMG_MAPPINGS, IMG_SLOTS};
  static const char *const names[] = {"code", "endpoints", "mappings", "slots"};
  ssz_span f[4];
  int rc = ssz_container(c, W_IMAGE_FIXED, 4, at, names, "image", f, err);
  if (rc) return rc;
  v->profile = c.p[IMG_PROFILE];
  v->heap_top = cap_le32(c.p + IMG_HEAP_TOP);
  v->heap_limit = cap_le32(c.p + IMG_HEAP_LIMIT);
  if (v->profile >= PVM_PROFILE_COUNT)
    return cap_fail(err, CAP_ERR_RESERVED, c.off + IMG_PROFILE,
                    "image.profile %u is not a known ISA profile (there are %d)",
                    v->profile, (int)PVM_PROFILE_COUNT);
  if ((rc = check_heap(c, v->heap_top, v->heap_limit, err)) ||
      (rc = decode_code(f[0], v, err)) ||
      (rc = ssz_list_fixed(f[1], W_ENDPOINT, CAP_MAX_ENDPOINTS, "image.endpoints",
                           &v->endpoint_count, err)) ||
      (rc = check_endpoints(f[1], v->endpoint_count, err)) ||
      (rc = ssz_list_fixed(f[2], W_MAPPING, CAP_MAX_MAPPINGS, "image.mappings",
                           &v->mapping_count, err)) ||
      (rc = check_mappings(f[2], v->mapping_count, err)) ||
      (rc = decode_slots(f[3], CAP_MAX_IMAGE_SLOTS, "image.slots", &v->slots, err)))
    return rc;
  v->endpoints = f[1].p;
  v->mappings = f[2].p;
  return CAP_OK;
}

/* ---- Instance ---- */

static int check_overlays(ssz_span s, uint32_t n, nub_cap_error *err) {
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *o = s.p + (size_t)i * W_OVERLAY;
    uint64_t off = s.off + (uint64_t)i * W_OVERLAY;
    uint32_t addr = cap_le32(o), prev = i ? cap_le32(o - W_OVERLAY) : 0;
    if (addr % CAP_PAGE_SIZE)
      return cap_fail(err, CAP_ERR_ALIGN, off,
                      "instance.overlays[%u].address 0x%x is not page aligned", i, addr);
    if (addr < PVM_GUARD_END)
      return cap_fail(err, CAP_ERR_RANGE, off,
                      "instance.overlays[%u].address 0x%x is below 0x%x", i, addr,
                      PVM_GUARD_END);
    if (i > 0 && addr <= prev)
      return cap_fail(err, CAP_ERR_ORDER, off,
                      "instance.overlays[%u].address 0x%x does not follow overlay "
                      "%u's 0x%x; addresses must strictly ascend", i, addr, i - 1, prev);
    int rc = check_ref(o + 4, off + 4, "instance.overlays", i, "data", false, err);
    if (rc) return rc;
  }
  return CAP_OK;
}

static int decode_instance(ssz_span c, nub_cap_instance_view *v, nub_cap_error *err) {
  static const uint8_t at[] = {INST_OVERLAYS};
  static const char *const names[] = {"overlays"};
  ssz_span ov;
  int rc = ssz_container(c, W_INSTANCE_FIXED, 1, at, names, "instance", &ov, err);
  if (rc) return rc;
  v->image_hash = c.p + INST_IMAGE;
  v->image_hash_chain = c.p + INST_CHAIN;
  v->root_cnode = c.p + INST_CNODE;
  for (int i = 0; i < CAP_REGS; i++) v->regs[i] = cap_le64(c.p + INST_REGS + 8 * i);
  v->pc = cap_le32(c.p + INST_PC);
  v->gas = cap_le64(c.p + INST_GAS);
  if ((rc = check_ref(v->image_hash, c.off + INST_IMAGE, "instance.image_hash",
                      0, NULL, true, err)) ||
      (rc = check_ref(v->image_hash_chain, c.off + INST_CHAIN,
                      "instance.image_hash_chain", 0, NULL, true, err)) ||
      (rc = check_ref(v->root_cnode, c.off + INST_CNODE, "instance.root_cnode",
                      0, NULL, true, err)))
    return rc;
  if (v->gas > INT64_MAX)
    return cap_fail(err, CAP_ERR_LIMIT, c.off + INST_GAS,
                    "instance.gas_remaining %llu exceeds the limit 2^63-1",
                    (unsigned long long)v->gas);
  if ((rc = ssz_list_fixed(ov, W_OVERLAY, CAP_MAX_OVERLAYS, "instance.overlays",
                           &v->overlay_count, err)) ||
      (rc = check_overlays(ov, v->overlay_count, err)))
    return rc;
  v->overlays = ov.p;
  return CAP_OK;
}

/* ---- CNode ---- */

static int decode_cnode(ssz_span c, nub_cap_cnode_view *v, nub_cap_error *err) {
  static const uint8_t at[] = {0};
  static const char *const names[] = {"slots"};
  ssz_span s;
  int rc = ssz_container(c, W_CNODE_FIXED, 1, at, names, "cnode", &s, err);
  return rc ? rc : decode_slots(s, CAP_MAX_CNODE_SLOTS, "cnode.slots", &v->slots, err);
}

int nub_cap_decode(const uint8_t *wire, const uint8_t *end, nub_cap_view *out,
               nub_cap_error *err) {
  ssz_span body;
  int rc;
  memset(out, 0, sizeof *out);
  if (!wire || !end || end < wire)
    return cap_fail(err, CAP_ERR_ARG, 0, "cap: no input");
  if (end == wire)
    return cap_fail(err, CAP_ERR_TRUNCATED, 0, "cap: empty input, no union selector");
  if (wire[0] >= CAP_KIND_COUNT)
    return cap_fail(err, CAP_ERR_SELECTOR, 0,
                    "cap: selector %u is none of Instance 0, Image 1, Data 2, CNode 3",
                    wire[0]);
  out->kind = (nub_cap_kind)wire[0];
  out->wire = wire;
  out->len = (size_t)(end - wire);
  body.p = wire + 1;
  body.len = out->len - 1;
  body.off = 1;
  switch (out->kind) {
  case CAP_DATA: rc = decode_data(body, NULL, NULL, CAP_ZERO_READ, &out->data, err); break;
  case CAP_IMAGE: rc = decode_image(body, &out->image, err); break;
  case CAP_INSTANCE: rc = decode_instance(body, &out->instance, err); break;
  default: rc = decode_cnode(body, &out->cnode, err); break;
  }
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}
