/*
** libFuzzer target for the cap wire decoder.  Properties: no crash; a
** rejected input gets an error code and message; an accepted input hashes
** (never to the sentinel), its fields read back through every accessor,
** and re-encoding its spec gives back exactly the input (one wire form
** per value).
*/
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nub_cap_view v;
  nub_cap_spec spec;
  nub_cap_error err;
  uint8_t h[CAP_HASH_SIZE], *again;
  size_t len;
  if (nub_cap_decode(data, data + size, &v, &err)) {
    check(err.code > CAP_OK && err.code < CAP_ERR_COUNT && err.msg[0], "error without detail");
    return 0;
  }
  check(nub_cap_hash(&v, h, &err) == CAP_OK && !nub_cap_hash_is_sentinel(h), "hash");
  read_fields(&v);
  check(nub_cap_spec_from_view(&v, &spec, &err) == CAP_OK, "spec");
  check(nub_cap_encode_alloc(&spec, &again, &len, &err) == CAP_OK, "re-encode");
  check(len == size && !memcmp(again, data, size), "re-encoding differs from the input");
  free(again);
  nub_cap_spec_free(&spec);
  return 0;
}
