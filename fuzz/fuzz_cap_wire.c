/*
** libFuzzer target for the cap wire decoder.  Properties: no crash; a
** rejected input gets an error code and message; an accepted input hashes
** (never to the sentinel), its fields read back through every accessor,
** and re-encoding its spec gives back exactly the input (one wire form
** per value).  A directory storing Data once (docs/wire.md, "Stored
** once") accepts and refuses exactly the same inputs, with the same error
** code, offset and text, stores them under the same hash and gives back
** the same bytes.  A Data cap with pages decoded from its parts (head and
** indexes, nub_cap_decode_data_parts) and hashed from a page loader
** (nub_cap_hash_data_loaded), as the host streams large caps, accepts and
** refuses the same inputs with the same error and gives the same hash (an
** input with a zero page and a bad index after it: the parts name the
** index, the decoder the page).
*/
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nub/cap.h"

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_cap_wire: %s\n", what);
    abort();
  }
}

static void read_fields(const nub_cap_view *v) {
  nub_cap_endpoint ep;
  nub_cap_slot slot;
  const nub_cap_slots *slots = v->kind == CAP_IMAGE ? &v->image.slots
                         : v->kind == CAP_CNODE ? &v->cnode.slots : NULL;
  if (v->kind == CAP_IMAGE)
    for (unsigned k = 0; k < 256; k++)
      if (nub_cap_image_find_endpoint(&v->image, (uint8_t)k, &ep)) check(ep.key == k, "endpoint key");
  for (uint32_t i = 0; slots && i < slots->count; i++) {
    nub_cap_slot found;
    nub_cap_slots_get(slots, i, &slot);
    check(nub_cap_slots_find(slots, slot.key, slot.key_len, &found), "slot not found by its key");
    check(!memcmp(found.hash, slot.hash, CAP_HASH_SIZE), "slot found under the wrong key");
  }
  for (uint32_t i = 0; v->kind == CAP_DATA && i < v->data.page_count; i++) {
    nub_cap_page pg = nub_cap_data_page(&v->data, i);
    check(nub_cap_data_find_page(&v->data, pg.index) == pg.bytes, "data page lookup");
  }
}

/* The input through a stored-once directory: its outcome, hash and bytes
** must be the plain decoder's. */
static void stored_once(const uint8_t *data, size_t size, int want, const nub_cap_error *want_err,
                        const uint8_t *want_hash) {
  size_t region = 2 * size + (64u << 10);
  uint8_t *mem = aligned_alloc(4096, (region + 4095) & ~(size_t)4095), h[CAP_HASH_SIZE];
  nub_cap_bump bump;
  nub_cap_dir d;
  nub_cap_dir_entry e;
  nub_cap_view v;
  nub_cap_error err;
  bool inserted;
  check(mem != NULL, "no memory");
  nub_cap_bump_init(&bump, mem, region);
  nub_cap_alloc a = nub_cap_bump_allocator(&bump);
  check(nub_cap_dir_create(&d, mem, region, &a, 8, &err) == CAP_OK, "directory");
  d.page_images = true;
  int rc = size ? nub_cap_dir_put(&d, data, size, h, &e, &v, &inserted, &err) : want;
  check(rc == want, "stored once: another outcome than the decoder's");
  if (rc && size) {
    check(err.offset == want_err->offset && !strcmp(err.msg, want_err->msg),
          "stored once: another error than the decoder's");
  } else if (!rc) {
    uint8_t *back = malloc(size);
    check(back != NULL, "no memory");
    check(!memcmp(h, want_hash, CAP_HASH_SIZE), "stored once: another hash");
    nub_cap_dir_entry_copy(&e, back);
    check(e.len == size && !memcmp(back, data, size), "stored once: other bytes back");
    free(back);
    read_fields(&v);
  }
  free(mem);
}

static void load_pages(void *ud, uint32_t first, uint32_t n, uint8_t *buf) {
  const uint8_t *wire = ud;
  check(n <= NUB_CAP_LOAD_PAGES, "loaded: too many pages at once");
  for (uint32_t j = 0; j < n; j++)
    memcpy(buf + (size_t)j * 4096, wire + CAP_DIR_DATA_HEAD + (size_t)(first + j) * 4100 + 4, 4096);
}

/* An input shaped like a Data cap with pages, from its parts. */
static void from_parts(const uint8_t *data, size_t size, int want, const nub_cap_error *want_err,
                       const uint8_t *want_hash) {
  if (size < CAP_DIR_DATA_HEAD + 4100 || data[0] != CAP_DATA || (size - CAP_DIR_DATA_HEAD) % 4100)
    return;
  size_t n = (size - CAP_DIR_DATA_HEAD) / 4100;
  uint8_t *idx = malloc(4 * n), h[CAP_HASH_SIZE];
  nub_cap_view v;
  nub_cap_error err;
  check(idx != NULL, "no memory");
  for (size_t i = 0; i < n; i++) memcpy(idx + 4 * i, data + CAP_DIR_DATA_HEAD + i * 4100, 4);
  int rc = nub_cap_decode_data_parts(data, size, idx, &v, &err);
  if (rc && want == CAP_ERR_CANONICAL && want_err->offset >= CAP_DIR_DATA_HEAD) {
    /* a zero page the decoder found first; the parts see a bad index after it */
    check(rc != CAP_ERR_CANONICAL && err.offset > want_err->offset,
          "from parts: an index error before the decoder's zero page");
    free(idx);
    return;
  }
  if (!rc) rc = nub_cap_hash_data_loaded(&v, NULL, load_pages, (void *)data, h, &err);
  check(rc == want, "from parts: another outcome than the decoder's");
  if (rc) check(err.offset == want_err->offset && !strcmp(err.msg, want_err->msg),
                "from parts: another error than the decoder's");
  else check(!memcmp(h, want_hash, CAP_HASH_SIZE), "from parts: another hash");
  free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nub_cap_view v;
  nub_cap_spec spec;
  nub_cap_error err;
  uint8_t h[CAP_HASH_SIZE], *again;
  size_t len;
  if (nub_cap_decode(data, data + size, &v, &err)) {
    check(err.code > CAP_OK && err.code < CAP_ERR_COUNT && err.msg[0], "error without detail");
    stored_once(data, size, err.code, &err, NULL);
    from_parts(data, size, err.code, &err, NULL);
    return 0;
  }
  check(nub_cap_hash(&v, h, &err) == CAP_OK && !nub_cap_hash_is_sentinel(h), "hash");
  stored_once(data, size, CAP_OK, NULL, h);
  from_parts(data, size, CAP_OK, NULL, h);
  read_fields(&v);
  check(nub_cap_spec_from_view(&v, &spec, &err) == CAP_OK, "spec");
  check(nub_cap_encode_alloc(&spec, &again, &len, &err) == CAP_OK, "re-encode");
  check(len == size && !memcmp(again, data, size), "re-encoding differs from the input");
  free(again);
  nub_cap_spec_free(&spec);
  return 0;
}
