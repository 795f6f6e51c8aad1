/*
** libFuzzer target for directory readers on a hostile region: the input
** is the region (header at offset 0, as a bump-allocated directory lays it
** out).  Properties: no crash or out-of-region read; a verified lookup
** returns bytes that hash to the key.  The seqlock word is forced even: a
** writer stuck in its write section costs a reader its full retry budget
** (test_cap_dir covers that), which would only slow the search down.
*/
#include <stdlib.h>
#include <string.h>

#include "nub/cap.h"

#define TABLE_AT 64   /* the first table follows the 64-byte header */
#define SEQ_AT 16
#define SLOT 40

/* Whether [p, p + n) lies in the region (a Data cap stored once is a
** head, indexes and pages, each inside it). */
static int inside(const uint8_t *region, size_t size, const uint8_t *p, uint64_t n) {
  return p >= region && (size_t)(p - region) <= size && n <= size - (size_t)(p - region);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t rounded = size ? (size + 7) & ~(size_t)7 : 8;
  uint8_t *region = aligned_alloc(8, rounded), buf[1 << 16], got[CAP_HASH_SIZE];
  uint64_t count, capacity;
  nub_cap_dir d;
  nub_cap_error err;
  memcpy(region, data, size);
  if (size > SEQ_AT) region[SEQ_AT] &= 0xFE;
  if (nub_cap_dir_open(&d, region, size, 0, &err) == CAP_OK) {
    nub_cap_dir_stats(&d, &count, &capacity, &err);
    /* look up whatever hashes sit where the first table's slots would be */
    for (size_t at = TABLE_AT; at + CAP_HASH_SIZE <= size && at < TABLE_AT + 16 * SLOT; at += SLOT) {
      nub_cap_dir_entry e;
      size_t len;
      if (nub_cap_dir_find(&d, region + at, &e, &err) == CAP_OK &&
          (e.pages ? !inside(region, size, e.wire, CAP_DIR_DATA_HEAD) ||
                     !inside(region, size, e.indexes, 4 * (uint64_t)e.page_count) ||
                     !inside(region, size, e.pages, (uint64_t)e.page_count * CAP_PAGE_SIZE)
                   : !inside(region, size, e.wire, e.len)))
        abort();
      if (nub_cap_dir_get_verified(&d, region + at, buf, sizeof buf, &len, &err) == CAP_OK &&
          (nub_cap_hash_wire(buf, buf + len, got, &err) || memcmp(got, region + at, CAP_HASH_SIZE)))
        abort();
    }
  }
  free(region);
  return 0;
}
