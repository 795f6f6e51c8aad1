/*
** SHA-256 paths (src/cap/sha256.c): the FIPS 180-4 examples on every path
** this CPU has, the paths against libsodium on lengths 0..200 and on
** batches of 64-byte pairs, the dispatch hook, and the bulk merkleizer
** against a level-by-level reference built on libsodium alone.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "cap/cap_internal.h"

static void rand_bytes(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    p[i] = (uint8_t)(s >> 24);
  }
}

static void unhex(const char *hex, uint8_t out[32]) {
  for (int i = 0; i < 32; i++) {
    unsigned v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
}

/* The path a test runs on: the portable one, or the hardware one when
** the CPU has it (skipped, and reported as skipped, when it has not). */
static const cap_sha256_impl *path(void **state) {
  const cap_sha256_impl *impl = *state ? cap_sha256_hardware() : &cap_sha256_portable;
  if (!impl) {
    print_message("this CPU has no SHA extensions: nothing to test on the hardware path\n");
    skip();
  }
  return impl;
}

static int on_portable(void **state) { *state = NULL; return 0; }
static int on_hardware(void **state) { *state = (void *)1; return 0; }

/* FIPS 180-4 / NIST CSRC examples, plus the million 'a'. */
static void test_fips_examples(void **state) {
  static const struct { const char *msg; size_t repeat; const char *digest; } cases[] = {
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
     "klmnopqrlmnopqrsmnopqrstnopqrstu", 1,
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  const cap_sha256_impl *impl = path(state);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t unit = strlen(cases[i].msg), len = unit * cases[i].repeat;
    uint8_t *msg = malloc(len ? len : 1), got[32], want[32];
    for (size_t r = 0; r < cases[i].repeat; r++) memcpy(msg + r * unit, cases[i].msg, unit);
    unhex(cases[i].digest, want);
    impl->hash(msg, len, got);
    assert_memory_equal(got, want, 32);
    free(msg);
  }
}

/* Every length 0..200 (all padding cases: tail < 56, 56..63, whole
** blocks), at every alignment 0..3, against libsodium. */
static void test_lengths_match_libsodium(void **state) {
  const cap_sha256_impl *impl = path(state);
  uint8_t buf[204], got[32], want[32];
  for (size_t len = 0; len <= 200; len++)
    for (size_t align = 0; align < 4; align++) {
      rand_bytes(buf + align, len, len * 4 + align);
      crypto_hash_sha256(want, buf + align, len);
      impl->hash(buf + align, len, got);
      if (memcmp(got, want, 32)) fail_msg("%s: length %zu at offset %zu differs", impl->name, len, align);
    }
}

/* Batches of n = 0..40 64-byte messages (odd and even counts take the
** interleaved and the single step), unaligned and in place. */
static void test_pairs_match_libsodium(void **state) {
  const cap_sha256_impl *impl = path(state);
  enum { MAX = 40 };
  uint8_t *in = malloc(64 * MAX + 1), *work = malloc(64 * MAX), *out = malloc(32 * MAX + 2);
  for (size_t n = 0; n <= MAX; n++) {
    rand_bytes(in + 1, 64 * n, 1000 + n);
    memset(out, 0xA5, 32 * MAX + 2);
    impl->pairs(in + 1, out + 1, n);
    memcpy(work, in + 1, 64 * n);
    impl->pairs(work, work, n);                        /* out == in */
    for (size_t i = 0; i < n; i++) {
      uint8_t want[32];
      crypto_hash_sha256(want, in + 1 + 64 * i, 64);
      if (memcmp(out + 1 + 32 * i, want, 32) || memcmp(work + 32 * i, want, 32))
        fail_msg("%s: message %zu of %zu differs", impl->name, i, n);
    }
    assert_int_equal(out[1 + 32 * n], 0xA5);         /* nothing written past n digests */
    assert_int_equal(out[0], 0xA5);
  }
  free(in);
  free(work);
  free(out);
}

/* Long random messages: the path agrees with the portable one and with
** libsodium. */
static void test_long_messages_agree(void **state) {
  const cap_sha256_impl *impl = path(state);
  static const size_t lens[] = {1000, 4096, 65536 + 17, 1u << 20};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    uint8_t *msg = malloc(lens[i]), got[32], want[32];
    rand_bytes(msg, lens[i], 77 + i);
    cap_sha256_portable.hash(msg, lens[i], want);
    impl->hash(msg, lens[i], got);
    assert_memory_equal(got, want, 32);
    crypto_hash_sha256(want, msg, lens[i]);
    assert_memory_equal(got, want, 32);
    free(msg);
  }
}

/* The hook moves cap_sha256 and cap_sha256_pairs to the portable path
** and back to the best one (NULL). */
static void test_use_hook_chooses_the_path(void **state) {
  const cap_sha256_impl *hw = cap_sha256_hardware();
  uint8_t msg[64], a[32], b[32];
  (void)state;
  rand_bytes(msg, sizeof msg, 5);
  cap_sha256_use(&cap_sha256_portable);
  assert_ptr_equal(cap_sha256_active(), &cap_sha256_portable);
  cap_sha256(msg, sizeof msg, a);
  cap_sha256_use(NULL);
  assert_ptr_equal(cap_sha256_active(), hw ? hw : &cap_sha256_portable);
  cap_sha256_pairs(msg, b, 1);
  assert_memory_equal(a, b, 32);
  print_message("active path: %s\n", cap_sha256_active()->name);
}

/* merkleize(pack(bytes), 2^depth) level by level with libsodium. */
static void reference_root(const uint8_t *p, size_t len, unsigned depth, uint8_t out[32]) {
  size_t n = (size_t)1 << depth;
  uint8_t *level = calloc(n, 32);
  memcpy(level, p, len);
  for (; n > 1; n /= 2)
    for (size_t i = 0; i < n / 2; i++) crypto_hash_sha256(level + 32 * i, level + 64 * i, 64);
  memcpy(out, level, 32);
  free(level);
}

/* ssz_bytes_root (bulk subtrees) equals the reference for lengths that
** leave every kind of remainder, on both paths; and chunks appended
** after a misaligned start give the same root as one by one. */
static void test_bulk_merkle_matches_reference(void **state) {
  static const size_t lens[] = {0, 1, 31, 32, 33, 64, 95, 96, 100, 4096, 4097, 8191, 8192,
                                8224, 12345, 32768, 40000};
  uint8_t *buf = malloc(65536), got[32], want[32];
  (void)state;
  assert_int_equal(nub_cap_init(), CAP_OK);
  rand_bytes(buf, 65536, 9);
  for (int portable = 0; portable < 2; portable++) {
    cap_sha256_use(portable ? &cap_sha256_portable : NULL);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
      unsigned depth = ssz_depth((lens[i] + 31) / 32) + (i % 3);
      reference_root(buf, lens[i], depth, want);
      ssz_bytes_root(buf, lens[i], depth, got);
      if (memcmp(got, want, 32))
        fail_msg("%s: %zu bytes at depth %u differ", cap_sha256_active()->name, lens[i], depth);
    }
    for (uint64_t lead = 0; lead < 9; lead++) {
      ssz_merkle a, b;
      uint8_t ra[32], rb[32];
      ssz_merkle_init(&a);
      ssz_merkle_init(&b);
      for (uint64_t k = 0; k < lead; k++) {
        ssz_merkle_add(&a, buf + 32 * k);
        ssz_merkle_add(&b, buf + 32 * k);
      }
      ssz_merkle_add_chunks(&a, buf + 32 * lead, 700);
      for (uint64_t k = 0; k < 700; k++) ssz_merkle_add(&b, buf + 32 * (lead + k));
      ssz_merkle_root(&a, 10, ra);
      ssz_merkle_root(&b, 10, rb);
      assert_memory_equal(ra, rb, 32);
    }
  }
  cap_sha256_use(NULL);
  free(buf);
}

/* Data roots (pages hashed in batches, runs of consecutive pages added as
** runs) against docs/wire.md built from the reference merkleizer:
** dense caps longer than a batch, gaps inside and across batches, and
** a lone page far out. */
static void test_data_root_matches_reference(void **state) {
  static const char *const patterns[] = {
    "1", "11111111", "111111111", "1111111111111111111", "101", "0000000001",
    "110111111110111111111011", "100000000000000000000000000000001", "0111011101110111011",
  };
  (void)state;
  for (int portable = 0; portable < 2; portable++) {
    cap_sha256_use(portable ? &cap_sha256_portable : NULL);
    for (size_t t = 0; t < sizeof patterns / sizeof patterns[0]; t++) {
      size_t npages = strlen(patterns[t]), size = npages * 4096, wire_len;
      unsigned depth = ssz_depth(npages);
      uint8_t *bytes = calloc(npages, 4096), *leaves = calloc((size_t)1 << depth, 32), *wire;
      uint8_t pair[64] = {0}, root[32], want[32], got[32];
      nub_cap_error err;
      for (size_t i = 0; i < npages; i++)
        if (patterns[t][i] == '1') {
          rand_bytes(bytes + 4096 * i, 4096, 100 * t + i);
          reference_root(bytes + 4096 * i, 4096, 7, leaves + 32 * i);
        }
      reference_root(leaves, 32 * npages, depth, pair + 32);   /* pages_root */
      cap_put_le(pair, size, 8);                                /* chunk(size) */
      crypto_hash_sha256(root, pair, 64);
      memcpy(pair, root, 32);
      memset(pair + 32, 0, 32);
      pair[32] = CAP_DATA;                                      /* selector mix-in */
      crypto_hash_sha256(want, pair, 64);
      assert_int_equal(nub_cap_encode_data_alloc(size, bytes, size, &wire, &wire_len, &err), CAP_OK);
      assert_int_equal(nub_cap_hash_wire(wire, wire + wire_len, got, &err), CAP_OK);
      if (memcmp(got, want, 32))
        fail_msg("%s: Data pages %s hash differently", cap_sha256_active()->name, patterns[t]);
      free(bytes);
      free(leaves);
      free(wire);
    }
  }
  cap_sha256_use(NULL);
}

#define ON(fn, setup, label) {#fn " (" label ")", fn, setup, NULL, NULL}

int main(void) {
  const struct CMUnitTest tests[] = {
    ON(test_fips_examples, on_portable, "portable"),
    ON(test_fips_examples, on_hardware, "hardware"),
    ON(test_lengths_match_libsodium, on_portable, "portable"),
    ON(test_lengths_match_libsodium, on_hardware, "hardware"),
    ON(test_pairs_match_libsodium, on_portable, "portable"),
    ON(test_pairs_match_libsodium, on_hardware, "hardware"),
    ON(test_long_messages_agree, on_portable, "portable"),
    ON(test_long_messages_agree, on_hardware, "hardware"),
    cmocka_unit_test(test_use_hook_chooses_the_path),
    cmocka_unit_test(test_bulk_merkle_matches_reference),
    cmocka_unit_test(test_data_root_matches_reference),
  };
  if (sodium_init() < 0) return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
