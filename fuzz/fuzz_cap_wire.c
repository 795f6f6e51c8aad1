/*
** libFuzzer target for the cap wire decoder.  Properties: no crash; a
** rejected input gets an error code and message; an accepted input hashes
** (never to the sentinel), its fields read back through every accessor,
** and re-encoding its spec gives back exactly the input (one wire form
** per value).  A directory storing Data once (docs/wire.md, "Stored
** once") accepts and refuses exactly the same inputs, with the same error
** code, offset and text, stores them under the same hash and gives back
** the same bytes.
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
    return 0;
  }
  check(nub_cap_hash(&v, h, &err) == CAP_OK && !nub_cap_hash_is_sentinel(h), "hash");
  stored_once(data, size, CAP_OK, NULL, h);
  read_fields(&v);
  check(nub_cap_spec_from_view(&v, &spec, &err) == CAP_OK, "spec");
  check(nub_cap_encode_alloc(&spec, &again, &len, &err) == CAP_OK, "re-encode");
  check(len == size && !memcmp(again, data, size), "re-encoding differs from the input");
  free(again);
  nub_cap_spec_free(&spec);
  return 0;
}
