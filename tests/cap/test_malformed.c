/*
** Every class of malformed wire input is rejected with a specific code,
** the byte offset of the offending field and a message naming it.
** Cases start from a valid sample and change one thing.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "cap_test_util.h"

static void put32(uint8_t *p, uint64_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* A writable copy of a sample with room to grow. */
static uint8_t *load(const char *name, size_t *len) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  uint8_t *w = NULL;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s[i].name, name)) {
      w = calloc(s[i].len + 4096, 1);
      memcpy(w, s[i].wire, s[i].len);
      *len = s[i].len;
    }
  tu_samples_free(s, n);
  if (!w) fail_msg("no sample %s", name);
  return w;
}

/* Absolute start of the variable field whose offset sits at pos in the body. */
static size_t field(const uint8_t *w, size_t pos) { return 1 + get32(w + 1 + pos); }

#define expect(w, len, code, off, text) expect_at(w, len, code, off, text, __LINE__)
static void expect_at(const uint8_t *w, size_t len, int code, uint64_t off,
                      const char *text, int line) {
  nub_cap_view v;
  nub_cap_error err;
  memset(&err, 0, sizeof err);
  int rc = nub_cap_decode(w, w + len, &v, &err);
  if (rc != code || err.offset != off || !strstr(err.msg, text))
    fail_msg("line %d: got %s at %llu \"%s\", want %s at %llu containing \"%s\"", line,
             nub_cap_errcode_name(rc), (unsigned long long)err.offset, err.msg,
             nub_cap_errcode_name(code), (unsigned long long)off, text);
  assert_int_equal(v.kind, 0);   /* a failed decode leaves no half view */
  assert_null(v.wire);
}

/* A cap built from raw parts: selector, fixed part (offsets at var_pos
** are filled in), then the variable fields. */
static uint8_t *raw(uint8_t kind, const uint8_t *fixed, size_t fixed_len,
                    const size_t *var_pos, const uint8_t *const *vars,
                    const size_t *var_len, unsigned nvar, size_t *len) {
  size_t total = 1 + fixed_len, off = fixed_len;
  uint8_t *w, *p;
  for (unsigned i = 0; i < nvar; i++) total += var_len[i];
  w = calloc(total, 1);
  w[0] = kind;
  memcpy(w + 1, fixed, fixed_len);
  p = w + 1 + fixed_len;
  for (unsigned i = 0; i < nvar; i++) {
    put32(w + 1 + var_pos[i], off);
    if (var_len[i]) memcpy(p, vars[i], var_len[i]);
    p += var_len[i];
    off += var_len[i];
  }
  *len = total;
  return w;
}

/* A CNode whose slot list is exactly these bytes. */
static uint8_t *raw_cnode(const uint8_t *slots, size_t n, size_t *len) {
  static const size_t pos[] = {0};
  uint8_t fixed[4] = {0};
  const uint8_t *vars[] = {slots};
  size_t lens[] = {n};
  return raw(CAP_CNODE, fixed, 4, pos, vars, lens, 1, len);
}

static void test_union(void **state) {
  uint8_t w[16] = {4};
  (void)state;
  expect(w, 0, CAP_ERR_TRUNCATED, 0, "empty input");
  expect(w, 1, CAP_ERR_SELECTOR, 0, "selector 4");
  w[0] = 0xFF;
  expect(w, 16, CAP_ERR_SELECTOR, 0, "selector 255");
}

static void test_data(void **state) {
  size_t len;
  uint8_t *w = load("data_one_page", &len);
  (void)state;
  expect(w, 10, CAP_ERR_TRUNCATED, 10, "fixed part needs 12");
  put32(w + 9, 13);
  expect(w, len, CAP_ERR_OFFSET, 9, "data.pages: offset 13 must be 12");
  put32(w + 9, 12);
  put64(w + 1, 4097);
  expect(w, len, CAP_ERR_ALIGN, 1, "data.size 4097 is not a multiple of 4096");
  put64(w + 1, (1ull << 32) + 4096);
  expect(w, len, CAP_ERR_LIMIT, 1, "exceeds the limit 2^32");
  put64(w + 1, 4096);
  expect(w, len - 1, CAP_ERR_TRAILING, 13, "4099 bytes leave 4099 trailing");
  expect(w, len + 5, CAP_ERR_TRAILING, 13 + 4100, "5 trailing after 1 elements of 4100");
  put32(w + 13, 1);
  expect(w, len, CAP_ERR_RANGE, 13, "data.pages[0].index 1 is past the last page");
  put32(w + 13, 0);
  memset(w + 17, 0, 4096);
  expect(w, len, CAP_ERR_CANONICAL, 17, "data.pages[0] (page 0) is all zero");
  free(w);
  w = load("data_odd_pages", &len);   /* pages 1 and 4 */
  put32(w + 13 + 4100, 1);
  expect(w, len, CAP_ERR_ORDER, 13 + 4100, "data.pages[1].index 1 repeats");
  put32(w + 13 + 4100, 0);
  expect(w, len, CAP_ERR_ORDER, 13 + 4100, "index 0 is below page 1");
  free(w);
}

static void test_image_fixed_part(void **state) {
  size_t len;
  uint8_t *w = load("image_full", &len), keep[4];
  (void)state;
  expect(w, 20, CAP_ERR_TRUNCATED, 20, "image: 19 bytes, but its fixed part needs 25");
  memcpy(keep, w + 10, 4);
  put32(w + 10, 24);
  expect(w, len, CAP_ERR_OFFSET, 10, "image.code: offset 24 must be 25");
  memcpy(w + 10, keep, 4);
  memcpy(keep, w + 14, 4);
  put32(w + 14, 20);
  expect(w, len, CAP_ERR_OFFSET, 14, "image.endpoints: offset 20 is below code's offset 25");
  memcpy(w + 14, keep, 4);
  memcpy(keep, w + 18, 4);
  put32(w + 18, (uint32_t)len);
  expect(w, len, CAP_ERR_OFFSET, 18, "image.mappings: offset 708 runs past the end of the 707-byte image");
  memcpy(w + 18, keep, 4);
  w[1] = PVM_PROFILE_COUNT;
  expect(w, len, CAP_ERR_RESERVED, 1, "image.profile 3 is not a known ISA profile");
  w[1] = 0;
  put32(w + 6, 0);
  expect(w, len, CAP_ERR_RESERVED, 2, "heap_top 0x30000 is set but heap_limit is 0");
  put32(w + 6, 0x80000);
  put32(w + 2, 0x1000);
  expect(w, len, CAP_ERR_RANGE, 2, "image.heap_top 0x1000 is below 0x10000");
  put32(w + 2, 0x90000);
  expect(w, len, CAP_ERR_RANGE, 6, "heap_limit 0x80000 is below heap_top 0x90000");
  free(w);
}

/* The program is validated by nub_pvm_blob_parse; its error offset is mapped
** into the wire object. */
static void test_image_code(void **state) {
  size_t len;
  uint8_t *w = load("image_full", &len);
  size_t code = field(w, 9);
  nub_cap_view v;
  nub_cap_error err;
  (void)state;
  w[code + 7] = 0x0F;   /* bitmask padding bit beyond the 3 code bytes */
  expect(w, len, CAP_ERR_CODE, code + 7, "image.code: bitmask");
  nub_cap_decode(w, w + len, &v, &err);
  assert_int_equal(err.pvm_code, PVM_ERR_BITMASK);
  w[code + 7] = 0x07;
  w[code + 3] = 3;      /* an entry outside the 3-byte code is valid: djump through it panics */
  assert_int_equal(nub_cap_decode(w, w + len, &v, &err), 0);
  free(w);
}

/* A code field over the 2^28-byte limit, without touching 256 MiB. */
static void test_image_code_limit(void **state) {
  size_t len = 1 + 25 + (1u << 28) + 1;
  uint8_t *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  (void)state;
  assert_true(w != MAP_FAILED);
  w[0] = CAP_IMAGE;
  for (int f = 0; f < 4; f++) put32(w + 10 + 4 * f, f ? (1u << 28) + 26 : 25);
  expect(w, len, CAP_ERR_LIMIT, 26, "image.code: 268435457 bytes exceed the limit 268435456");
  munmap(w, len);
}

static void test_image_endpoints(void **state) {
  size_t len;
  uint8_t *w = load("image_full", &len);   /* keys 250, 251, 252 */
  size_t ep = field(w, 13), maps = field(w, 17);
  (void)state;
  put32(w + 18, maps - 1 - 1);             /* endpoints end one byte early */
  expect(w, len, CAP_ERR_TRAILING, ep + 226, "image.endpoints: 338 bytes leave 112 trailing");
  put32(w + 18, maps - 1);
  w[ep + 113] = 250;
  expect(w, len, CAP_ERR_ORDER, ep + 113, "image.endpoints[1].key 250 repeats endpoint 0's key 250");
  w[ep + 113] = 9;
  expect(w, len, CAP_ERR_ORDER, ep + 113, "key 9 is below endpoint 0's key 250");
  free(w);
}

/* Lists one element over their limits. */
static void test_list_limits(void **state) {
  static const size_t img_pos[] = {9, 13, 17, 21}, inst_pos[] = {96};
  uint8_t fixed[216] = {0}, *big = calloc(65537 * 40, 1), *w;
  size_t blob_len, len;
  uint8_t *blob = tu_min_blob(&blob_len);
  const uint8_t *vars[4] = {blob, big, big, big};
  size_t lens[4] = {blob_len, 257 * 113, 0, 0};
  (void)state;
  w = raw(CAP_IMAGE, fixed, 25, img_pos, vars, lens, 4, &len);
  expect(w, len, CAP_ERR_LIMIT, 1 + 25 + blob_len + 256 * 113, "image.endpoints: 257 elements exceed the limit 256");
  free(w);
  lens[1] = 0;
  lens[2] = 257 * 41;
  w = raw(CAP_IMAGE, fixed, 25, img_pos, vars, lens, 4, &len);
  expect(w, len, CAP_ERR_LIMIT, 1 + 25 + blob_len + 256 * 41, "image.mappings: 257 elements exceed the limit 256");
  free(w);
  lens[2] = 0;
  lens[3] = 257 * 40;
  put32(big, 257 * 4);
  w = raw(CAP_IMAGE, fixed, 25, img_pos, vars, lens, 4, &len);
  expect(w, len, CAP_ERR_LIMIT, 1 + 25 + blob_len, "image.slots: 257 elements exceed the limit 256");
  free(w);
  put32(big, 0);
  vars[0] = big;
  lens[0] = 257 * 36;
  w = raw(CAP_INSTANCE, fixed, 216, inst_pos, vars, lens, 1, &len);
  expect(w, len, CAP_ERR_LIMIT, 217 + 256 * 36, "instance.overlays: 257 elements exceed the limit 256");
  free(w);
  put32(big, 65537 * 4);
  w = raw_cnode(big, 65537 * 40, &len);
  expect(w, len, CAP_ERR_LIMIT, 5, "cnode.slots: 65537 elements exceed the limit 65536");
  free(w);
  free(big);
  free(blob);
}

static void test_image_mappings(void **state) {
  size_t len;
  uint8_t *w = load("image_full", &len);
  size_t m0 = field(w, 17), m1 = m0 + 41, m2 = m1 + 41;
  uint8_t keep[41];
  (void)state;
  memcpy(keep, w + m0, 41);
  put32(w + m0, 0x10001);
  expect(w, len, CAP_ERR_ALIGN, m0, "image.mappings[0]: start 0x10001 is not page aligned");
  put32(w + m0, 0x10000);
  put32(w + m0 + 4, 0x2001);
  expect(w, len, CAP_ERR_ALIGN, m0 + 4, "image.mappings[0]: size 0x2001 is not page aligned");
  put32(w + m0 + 4, 0);
  expect(w, len, CAP_ERR_CANONICAL, m0 + 4, "image.mappings[0].size is 0");
  put32(w + m0 + 4, 0x2000);
  put32(w + m0, 0x1000);
  expect(w, len, CAP_ERR_RANGE, m0, "[0x1000, 0x3000) is outside [0x10000, 2^32)");
  put32(w + m0, 0x30000);
  put32(w + m0 + 4, 0x1000);
  expect(w, len, CAP_ERR_ORDER, m1, "image.mappings[1].start 0x20000 is below mapping 0's 0x30000");
  memcpy(w + m0, keep, 41);
  put32(w + m1, 0x11000);
  expect(w, len, CAP_ERR_OVERLAP, m1, "image.mappings[1] at 0x11000 overlaps mapping 0, which ends at 0x12000");
  put32(w + m1, 0x20000);
  put32(w + m2 + 4, 0x2000);
  expect(w, len, CAP_ERR_RANGE, m2, "[0xfffff000, 0x100001000) is outside");
  put32(w + m2 + 4, 0x1000);
  w[m0 + 8] = 0;
  expect(w, len, CAP_ERR_RESERVED, m0 + 8, "image.mappings[0].access 0 is neither RO (1) nor RW (2)");
  w[m0 + 8] = 3;
  expect(w, len, CAP_ERR_RESERVED, m0 + 8, "access 3");
  w[m0 + 8] = 1;
  memset(w + m0 + 9, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, m0 + 9, "image.mappings[0].source is the 32 x 0xFF failure sentinel");
  free(w);
}

/* Slot lists, on a CNode with keys "", a, aa, ... and on the Image. */
static void test_slots(void **state) {
  size_t len, slots;
  uint8_t *w = load("cnode_key_lengths", &len), bytes[80] = {0}, *r;
  (void)state;
  slots = field(w, 0);
  expect(w, 4, CAP_ERR_TRUNCATED, 4, "cnode: 3 bytes, but its fixed part needs 4");
  put32(w + 1, 5);
  expect(w, len, CAP_ERR_OFFSET, 1, "cnode.slots: offset 5 must be 4");
  put32(w + 1, 4);
  w[slots + get32(w + slots + 4) + 36] = 'b';   /* key "a" -> "b": "aa" no longer sorts after it */
  expect(w, len, CAP_ERR_ORDER, slots + get32(w + slots + 8) + 36,
         "cnode.slots[2].key 0x6161 does not sort after slot 1's key 0x62");
  w[slots + get32(w + slots + 4) + 36] = 'a';
  memset(w + slots + get32(w + slots) + 4, 0, 32);
  expect(w, len, CAP_ERR_RESERVED, slots + get32(w + slots) + 4, "cnode.slots[0].hash is all zero");
  memset(w + slots + get32(w + slots) + 4, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, slots + get32(w + slots) + 4, "cnode.slots[0].hash is the 32 x 0xFF");
  free(w);
  /* the offset table and the elements themselves */
  r = raw_cnode(bytes, 3, &len);
  expect(r, len, CAP_ERR_TRUNCATED, 5, "3 bytes cannot hold the first element offset");
  free(r);
  put32(bytes, 6);
  r = raw_cnode(bytes, 80, &len);
  expect(r, len, CAP_ERR_OFFSET, 5, "first offset 6 is not a positive multiple of 4");
  put32(bytes, 0);
  memcpy(r + 5, bytes, 4);
  expect(r, len, CAP_ERR_OFFSET, 5, "first offset 0");
  put32(r + 5, 84);
  expect(r, len, CAP_ERR_OFFSET, 5, "first offset 84 runs past the end of the 80-byte list");
  put32(r + 5, 8);
  put32(r + 9, 4);
  expect(r, len, CAP_ERR_OFFSET, 9, "cnode.slots[1]: offset 4 is below the previous element's");
  put32(r + 9, 81);
  expect(r, len, CAP_ERR_OFFSET, 9, "cnode.slots[1]: offset 81 is past the end of the list");
  put32(r + 9, 40);   /* element 0 = 32 bytes, element 1 = 40 bytes */
  expect(r, len, CAP_ERR_TRUNCATED, 13, "cnode.slots[0]: 32 bytes, but its fixed part needs 36");
  put32(r + 9, 44);   /* element 0 = 36 bytes, key offset 0 */
  expect(r, len, CAP_ERR_OFFSET, 13, "cnode.slots[0].key: offset 0 must be 36");
  put32(r + 13, 36);
  r[17] = 1;          /* a non-zero hash */
  put32(r + 5 + 44, 36);
  r[5 + 44 + 4] = 1;
  expect(r, len, CAP_ERR_ORDER, 5 + 44 + 36, "cnode.slots[1].key 0x does not sort after slot 0's key 0x");
  free(r);
  memset(bytes, 0, sizeof bytes);
  put32(bytes, 4);
  put32(bytes + 4, 36);
  bytes[8] = 1;
  r = raw_cnode(bytes, 4 + 36 + 9, &len);
  expect(r, len, CAP_ERR_LIMIT, 5 + 40, "cnode.slots[0].key: 9 bytes exceed the limit 8");
  free(r);
  w = load("image_full", &len);
  slots = field(w, 21);
  memset(w + slots + get32(w + slots + 12) + 4, 0, 32);
  expect(w, len, CAP_ERR_RESERVED, slots + get32(w + slots + 12) + 4, "image.slots[3].hash is all zero");
  free(w);
}

static void test_instance(void **state) {
  size_t len;
  uint8_t *w = load("instance_full", &len);
  size_t ov = field(w, 96);
  (void)state;
  assert_int_equal(ov, 217);
  expect(w, 100, CAP_ERR_TRUNCATED, 100, "instance: 99 bytes, but its fixed part needs 216");
  put32(w + 97, 200);
  expect(w, len, CAP_ERR_OFFSET, 97, "instance.overlays: offset 200 must be 216");
  put32(w + 97, 216);
  put64(w + 209, 1ull << 63);
  expect(w, len, CAP_ERR_LIMIT, 209, "instance.gas_remaining 9223372036854775808 exceeds");
  put64(w + 209, 0);
  memset(w + 1, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, 1, "instance.image_hash is the 32 x 0xFF failure sentinel");
  memset(w + 1, 0, 32);   /* zero is fine here: a kernel handle */
  memset(w + 33, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, 33, "instance.image_hash_chain is the 32 x 0xFF");
  memset(w + 33, 0, 32);
  memset(w + 65, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, 65, "instance.root_cnode is the 32 x 0xFF");
  memset(w + 65, 0, 32);
  expect(w, len - 1, CAP_ERR_TRAILING, ov + 72, "instance.overlays: 107 bytes leave 35 trailing");
  put32(w + ov, 0x10001);
  expect(w, len, CAP_ERR_ALIGN, ov, "instance.overlays[0].address 0x10001 is not page aligned");
  put32(w + ov, 0x1000);
  expect(w, len, CAP_ERR_RANGE, ov, "instance.overlays[0].address 0x1000 is below 0x10000");
  put32(w + ov, 0x12000);
  expect(w, len, CAP_ERR_ORDER, ov + 36, "overlays[1].address 0x12000 does not follow overlay 0's 0x12000");
  put32(w + ov, 0x10000);
  memset(w + ov + 36 + 4, 0, 32);
  expect(w, len, CAP_ERR_RESERVED, ov + 40, "instance.overlays[1].data is all zero");
  memset(w + ov + 36 + 4, 0xFF, 32);
  expect(w, len, CAP_ERR_RESERVED, ov + 40, "instance.overlays[1].data is the 32 x 0xFF");
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_union),
    cmocka_unit_test(test_data),
    cmocka_unit_test(test_image_fixed_part),
    cmocka_unit_test(test_image_code),
    cmocka_unit_test(test_image_code_limit),
    cmocka_unit_test(test_image_endpoints),
    cmocka_unit_test(test_list_limits),
    cmocka_unit_test(test_image_mappings),
    cmocka_unit_test(test_slots),
    cmocka_unit_test(test_instance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
