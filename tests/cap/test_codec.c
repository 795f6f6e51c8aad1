/*
** Round trips, hashes and view accessors of the capability wire codec.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "cap/cap_internal.h"
#include "cap_test_util.h"

static void decode_ok(const uint8_t *wire, size_t len, nub_cap_view *v) {
  nub_cap_error err;
  int rc = nub_cap_decode(wire, wire + len, v, &err);
  if (rc) fail_msg("decode: %s (%s at %llu)", err.msg, nub_cap_errcode_name(rc),
                   (unsigned long long)err.offset);
}

/* encode -> decode -> spec -> encode is byte-identical; the hash is the
** same from the view, from the wire and on a second run. */
static void test_roundtrip_every_sample(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  uint32_t kinds = 0;
  (void)state;
  for (size_t i = 0; i < n; i++) {
    nub_cap_view v;
    nub_cap_spec spec;
    nub_cap_error err;
    uint8_t h1[32], h2[32], h3[32], *again;
    size_t len;
    decode_ok(s[i].wire, s[i].len, &v);
    kinds |= 1u << v.kind;
    assert_int_equal(nub_cap_spec_from_view(&v, &spec, &err), CAP_OK);
    again = tu_encode(&spec, &len);
    assert_int_equal(len, s[i].len);
    assert_memory_equal(again, s[i].wire, len);
    assert_int_equal(nub_cap_hash(&v, h1, &err), CAP_OK);
    assert_int_equal(nub_cap_hash_wire(again, again + len, h2, &err), CAP_OK);
    assert_int_equal(nub_cap_hash(&v, h3, &err), CAP_OK);
    assert_memory_equal(h1, h2, 32);
    assert_memory_equal(h1, h3, 32);
    assert_false(nub_cap_hash_is_sentinel(h1));
    nub_cap_spec_free(&spec);
    free(again);
  }
  assert_int_equal(kinds, 0xF);   /* every kind took part */
  tu_samples_free(s, n);
}

/* Every sample hashes differently (kinds and contents separate). */
static void test_hashes_distinct(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  uint8_t (*h)[32] = calloc(n, 32);
  nub_cap_error err;
  (void)state;
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(nub_cap_hash_wire(s[i].wire, s[i].wire + s[i].len, h[i], &err), CAP_OK);
    for (size_t j = 0; j < i; j++) assert_memory_not_equal(h[i], h[j], 32);
  }
  free(h);
  tu_samples_free(s, n);
}

static void sha(const uint8_t *a, const uint8_t *b, uint8_t out[32]) {
  uint8_t buf[64];
  memcpy(buf, a, 32);
  memcpy(buf + 32, b, 32);
  crypto_hash_sha256(out, buf, 64);
}

/* Two hashes worked out by hand with bare SHA-256 calls. */
static void test_hash_by_hand(void **state) {
  uint8_t wire_data[] = {CAP_DATA, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0};
  uint8_t wire_cnode[] = {CAP_CNODE, 4, 0, 0, 0};
  uint8_t zero[32] = {0}, sel[32] = {0}, root[32], want[32], got[32], z[32];
  nub_cap_error err;
  (void)state;
  /* empty Data: H(H(size=0 || pages_root=0) || selector 2) */
  sha(zero, zero, root);
  sel[0] = CAP_DATA;
  sha(root, sel, want);
  assert_int_equal(nub_cap_hash_wire(wire_data, wire_data + sizeof wire_data, got, &err), CAP_OK);
  assert_memory_equal(got, want, 32);
  /* empty CNode: H(mix_in(zero subtree of 2^16, 0) || selector 3) */
  memset(z, 0, 32);
  for (int i = 0; i < 16; i++) sha(z, z, z);
  sha(z, zero, root);
  sel[0] = CAP_CNODE;
  sha(root, sel, want);
  assert_int_equal(nub_cap_hash_wire(wire_cnode, wire_cnode + sizeof wire_cnode, got, &err), CAP_OK);
  assert_memory_equal(got, want, 32);
}

/* Zero runs appended in O(log n) give the same root as chunk by chunk. */
static void test_merkle_zero_runs(void **state) {
  static const uint64_t runs[][3] = {{0, 5, 1}, {3, 0, 2}, {1, 6, 0}, {7, 9, 3}, {0, 0, 0},
                                     {13, 2, 17}};
  uint8_t chunk[32];
  (void)state;
  assert_int_equal(nub_cap_init(), CAP_OK);
  for (size_t t = 0; t < sizeof runs / sizeof runs[0]; t++) {
    ssz_merkle a, b;
    uint8_t ra[32], rb[32];
    ssz_merkle_init(&a);
    ssz_merkle_init(&b);
    for (int part = 0; part < 3; part++) {
      memset(chunk, part + 1, 32);
      ssz_merkle_add(&a, chunk);
      ssz_merkle_add(&b, chunk);
      ssz_merkle_add_zeros(&a, runs[t][part]);
      for (uint64_t k = 0; k < runs[t][part]; k++) ssz_merkle_add(&b, ssz_zero(0));
    }
    ssz_merkle_root(&a, 6, ra);
    ssz_merkle_root(&b, 6, rb);
    assert_memory_equal(ra, rb, 32);
  }
}

static const uint8_t *sample(tu_sample *s, size_t n, const char *name, size_t *len) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s[i].name, name)) {
      *len = s[i].len;
      return s[i].wire;
    }
  fail_msg("no sample %s", name);
  return NULL;
}

static void test_image_accessors(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s), len;
  const uint8_t *wire = sample(s, n, "image_full", &len);
  nub_cap_view v;
  nub_cap_endpoint ep;
  nub_cap_mapping m;
  nub_cap_slot slot;
  static const uint8_t key8[] = {1, 2, 3, 4, 5, 6, 7, 8}, k00[] = {0, 0, 0};
  (void)state;
  decode_ok(wire, len, &v);
  assert_int_equal(v.kind, CAP_IMAGE);
  assert_int_equal(v.image.heap_top, 0x30000);
  assert_int_equal(v.image.heap_limit, 0x80000);
  assert_int_equal(v.image.blob.code_len, 3);
  assert_int_equal(v.image.blob.jump_count, 1);
  assert_int_equal(v.image.endpoint_count, 3);
  assert_true(nub_cap_image_find_endpoint(&v.image, 251, &ep));
  assert_int_equal(ep.key, 251);
  assert_int_equal(ep.entry_pc, 251);
  assert_int_equal(ep.stack_top, 0xFEFE0000u - 251 * CAP_PAGE_SIZE);
  assert_int_equal(ep.regs[3], (251ull << 3) ^ 3 * 0x0101010101010101ull);
  assert_false(nub_cap_image_find_endpoint(&v.image, 0, &ep));
  assert_false(nub_cap_image_find_endpoint(&v.image, 253, &ep));
  nub_cap_image_mapping(&v.image, 2, &m);
  assert_int_equal(m.start, 0xFFFFF000u);
  assert_int_equal(m.size, 0x1000);
  assert_int_equal(m.access, CAP_ACCESS_RW);
  assert_int_equal(v.image.slots.count, 5);
  assert_true(nub_cap_slots_find(&v.image.slots, NULL, 0, &slot));   /* the empty key */
  assert_int_equal(slot.key_len, 0);
  assert_true(nub_cap_slots_find(&v.image.slots, key8, 8, &slot));
  assert_memory_equal(slot.key, key8, 8);
  assert_true(nub_cap_slots_find(&v.image.slots, k00, 2, &slot));   /* 0x0000 */
  assert_int_equal(slot.key_len, 2);
  assert_true(nub_cap_slots_find(&v.image.slots, k00, 1, &slot));   /* 0x00 */
  assert_int_equal(slot.key_len, 1);
  assert_false(nub_cap_slots_find(&v.image.slots, key8 + 1, 1, &slot));   /* 0x02 */
  assert_false(nub_cap_slots_find(&v.image.slots, key8, 7, &slot));
  tu_samples_free(s, n);
}

static void test_data_instance_accessors(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s), len;
  const uint8_t *wire = sample(s, n, "data_sparse_4gib", &len);
  nub_cap_view v;
  nub_cap_overlay ov;
  nub_cap_page pg;
  (void)state;
  decode_ok(wire, len, &v);
  assert_int_equal(v.data.size, CAP_MAX_DATA_SIZE);
  assert_int_equal(v.data.page_count, 3);
  pg = nub_cap_data_page(&v.data, 2);
  assert_int_equal(pg.index, 0xFFFFF);
  assert_ptr_equal(nub_cap_data_find_page(&v.data, 0x7FFFF), nub_cap_data_page(&v.data, 1).bytes);
  assert_null(nub_cap_data_find_page(&v.data, 1));
  assert_null(nub_cap_data_find_page(&v.data, 0x100000));
  wire = sample(s, n, "instance_full", &len);
  decode_ok(wire, len, &v);
  assert_int_equal(v.instance.pc, 0xDEADBEEF);
  assert_int_equal(v.instance.gas, INT64_MAX);
  assert_int_equal(v.instance.regs[12], ~0ull - 12);
  assert_int_equal(v.instance.overlay_count, 3);
  nub_cap_instance_overlay(&v.instance, 1, &ov);
  assert_int_equal(ov.address, 0x12000);
  tu_samples_free(s, n);
}

/* A view moved to a copy reads only the copy. */
static void test_rebase(void **state) {
  tu_sample *s;
  size_t n = tu_samples(&s);
  (void)state;
  for (size_t i = 0; i < n; i++) {
    uint8_t *copy = malloc(s[i].len), h1[32], h2[32];
    nub_cap_view v;
    nub_cap_spec spec;
    nub_cap_error err;
    size_t len;
    memcpy(copy, s[i].wire, s[i].len);
    decode_ok(copy, s[i].len, &v);
    assert_int_equal(nub_cap_hash(&v, h1, &err), CAP_OK);
    nub_cap_view_rebase(&v, s[i].wire);
    memset(copy, 0xEE, s[i].len);   /* the old bytes are gone */
    free(copy);
    assert_int_equal(nub_cap_hash(&v, h2, &err), CAP_OK);
    assert_memory_equal(h1, h2, 32);
    assert_int_equal(nub_cap_spec_from_view(&v, &spec, &err), CAP_OK);
    free(tu_encode(&spec, &len));
    assert_int_equal(len, s[i].len);
    nub_cap_spec_free(&spec);
  }
  tu_samples_free(s, n);
}

static void test_hash_chain_and_fresh_instance(void **state) {
  uint8_t parent[32] = {0}, image[32], want[32], got[32], buf[64];
  nub_cap_instance_spec in;
  (void)state;
  tu_hash(image, 9);
  memcpy(buf + 32, image, 32);
  memset(buf, 0, 32);
  crypto_generichash(want, 32, buf, 64, NULL, 0);
  nub_cap_hash_chain(parent, image, got);
  assert_memory_equal(got, want, 32);
  nub_cap_instance_fresh(image, &in);
  assert_memory_equal(in.image_hash_chain, want, 32);
  assert_memory_equal(in.image_hash, image, 32);
  /* a child chains onto its parent's chain */
  memcpy(buf, want, 32);
  crypto_generichash(want, 32, buf, 64, NULL, 0);
  nub_cap_hash_chain(in.image_hash_chain, image, got);
  assert_memory_equal(got, want, 32);
}

static void test_sentinel_refused(void **state) {
  nub_cap_error err;
  uint8_t h[32];
  (void)state;
  assert_int_equal(cap_refuse_sentinel(nub_cap_sentinel_hash, CAP_DATA, &err), CAP_ERR_SENTINEL);
  assert_non_null(strstr(err.msg, "sentinel"));
  tu_hash(h, 1);
  assert_int_equal(cap_refuse_sentinel(h, CAP_DATA, &err), CAP_OK);
  memset(h, 0xFF, 31);   /* 31 x 0xFF is just a hash */
  assert_false(nub_cap_hash_is_sentinel(h));
}

static void test_encode_errors(void **state) {
  nub_cap_slot slot = {9, {0}, {1}};
  nub_cap_endpoint eps[2] = {{.key = 5}, {.key = 4}};
  uint8_t buf[8];
  size_t len, blob_len;
  uint8_t *blob = tu_min_blob(&blob_len);
  nub_cap_spec s = {.kind = CAP_CNODE};
  nub_cap_error err;
  (void)state;
  s.cnode.slots = &slot;
  s.cnode.slot_count = 1;
  assert_int_equal(nub_cap_encode(&s, NULL, 0, &len, &err), CAP_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "key"));
  s.cnode.slot_count = 0;
  assert_int_equal(nub_cap_encode(&s, NULL, 0, &len, &err), CAP_OK);
  assert_int_equal(len, 5);
  assert_int_equal(nub_cap_encode(&s, buf, 4, &len, &err), CAP_ERR_FULL);
  s.kind = CAP_IMAGE;
  memset(&s.image, 0, sizeof s.image);
  s.image.code = blob;
  s.image.code_len = blob_len;
  s.image.endpoints = eps;
  s.image.endpoint_count = 2;
  assert_int_equal(nub_cap_encode_alloc(&s, &blob, &len, &err), CAP_ERR_ORDER);
  assert_null(blob);
  s.kind = (nub_cap_kind)7;
  assert_int_equal(nub_cap_encode(&s, NULL, 0, &len, &err), CAP_ERR_SELECTOR);
  free((void *)s.image.code);
}

static void test_dense_data_encoder(void **state) {
  uint8_t *content = calloc(5 * CAP_PAGE_SIZE, 1), *wire;
  size_t len;
  nub_cap_view v;
  nub_cap_error err;
  (void)state;
  content[2 * CAP_PAGE_SIZE + 17] = 1;   /* only page 2 is non-zero */
  content[5 * CAP_PAGE_SIZE - 1] = 2;    /* and page 4 */
  assert_int_equal(nub_cap_encode_data_alloc(8 * CAP_PAGE_SIZE, content, 5 * CAP_PAGE_SIZE,
                                         &wire, &len, &err), CAP_OK);
  decode_ok(wire, len, &v);
  assert_int_equal(v.data.size, 8 * CAP_PAGE_SIZE);
  assert_int_equal(v.data.page_count, 2);
  assert_int_equal(nub_cap_data_page(&v.data, 0).index, 2);
  assert_int_equal(nub_cap_data_page(&v.data, 1).index, 4);
  free(wire);
  assert_int_equal(nub_cap_encode_data_alloc(CAP_PAGE_SIZE, content, CAP_PAGE_SIZE + 1, &wire,
                                         &len, &err), CAP_ERR_LIMIT);
  assert_int_equal(nub_cap_encode_data_alloc(CAP_PAGE_SIZE + 1, content, 1, &wire, &len, &err),
                   CAP_ERR_ALIGN);
  free(content);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_roundtrip_every_sample),
    cmocka_unit_test(test_hashes_distinct),
    cmocka_unit_test(test_hash_by_hand),
    cmocka_unit_test(test_merkle_zero_runs),
    cmocka_unit_test(test_image_accessors),
    cmocka_unit_test(test_data_instance_accessors),
    cmocka_unit_test(test_rebase),
    cmocka_unit_test(test_hash_chain_and_fresh_instance),
    cmocka_unit_test(test_sentinel_refused),
    cmocka_unit_test(test_encode_errors),
    cmocka_unit_test(test_dense_data_encoder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
