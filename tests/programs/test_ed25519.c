/*
** The ed25519 workload's Ed25519 (workloads/ed25519.c, the native build of
** the same source the guest runs) against RFC 8032 section 7.1 and
** libsodium: the test vectors verify and re-sign byte for byte, a flipped
** bit anywhere in message, R, S or public key fails, non-canonical S and y
** fail, and for a few hundred generated key pairs and messages the public
** keys, signatures and verdicts equal libsodium's.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ed25519.h"

/* RFC 8032 section 7.1: TEST 1, 2, 3 and TEST 1024 (a 1023-byte message). */
static const struct { const char *name, *sk, *pk, *msg, *sig; } RFC[] = {
  {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
   "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
   "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
  {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
   "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
   "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
   "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
  {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
   "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
   "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
   "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
  {"TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
   "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
   "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
   "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
   "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
   "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
   "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
   "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
   "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
   "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
   "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
   "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
   "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
   "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
   "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
   "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
   "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
   "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
   "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
   "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
   "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
   "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
   "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
   "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
   "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
   "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
   "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
   "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
   "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
   "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
   "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
   "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
   "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
   "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
   "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f45"
   "28ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
};
#define RFC_COUNT (sizeof RFC / sizeof RFC[0])
#define MSG_MAX 1024

typedef struct vec { uint8_t sk[32], pk[32], sig[64], msg[MSG_MAX]; size_t len; } vec;

static size_t unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t bin = 0;
  assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &bin, NULL), 0);
  return bin;
}

static void load(vec *v, size_t i) {
  assert_int_equal(unhex(v->sk, 32, RFC[i].sk), 32);
  assert_int_equal(unhex(v->pk, 32, RFC[i].pk), 32);
  assert_int_equal(unhex(v->sig, 64, RFC[i].sig), 64);
  v->len = unhex(v->msg, MSG_MAX, RFC[i].msg);
}

static int sodium_verifies(const uint8_t sig[64], const uint8_t *msg, size_t len,
                           const uint8_t pk[32]) {
  return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

static uint64_t rng(uint64_t *s) {   /* xorshift64*: the same inputs every run */
  *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1Dull;
}

static void fill(uint8_t *p, size_t n, uint64_t *s) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rng(s);
}

static int setup(void **state) {
  (void)state;
  return sodium_init() < 0;
}

static void sha512_equals_libsodium_at_every_length_to_300(void **state) {
  (void)state;
  uint8_t msg[300], a[64], b[64];
  uint64_t s = 0x5348413531320001ull;
  fill(msg, sizeof msg, &s);
  for (size_t n = 0; n <= sizeof msg; n++) {
    wl_sha512(a, msg, n);
    crypto_hash_sha512(b, msg, n);
    if (memcmp(a, b, 64)) fail_msg("SHA-512 of %zu bytes differs from libsodium's", n);
  }
}

static void rfc8032_vectors_verify_and_sign_byte_for_byte(void **state) {
  (void)state;
  for (size_t i = 0; i < RFC_COUNT; i++) {
    vec v;
    uint8_t pk[32], sig[64];
    load(&v, i);
    assert_int_equal(v.len, i == 3 ? 1023 : i);
    assert_true(sodium_verifies(v.sig, v.msg, v.len, v.pk));   /* the transcription */
    wl_ed25519_public_key(pk, v.sk);
    if (memcmp(pk, v.pk, 32)) fail_msg("%s: public key differs", RFC[i].name);
    wl_ed25519_sign(sig, v.msg, v.len, v.sk, v.pk);
    if (memcmp(sig, v.sig, 64)) fail_msg("%s: signature differs", RFC[i].name);
    if (!wl_ed25519_verify(v.sig, v.msg, v.len, v.pk)) fail_msg("%s: rejected", RFC[i].name);
  }
}

/* Every bit of R, S and the public key, and every bit of the first and
** last 8 message bytes, flipped one at a time: each must fail, as in
** libsodium. */
static void rfc8032_vectors_fail_with_any_bit_flipped(void **state) {
  (void)state;
  static const struct { const char *field; size_t offset, bytes; } fields[] = {
    {"R", 0, 32}, {"S", 32, 32}, {"public key", 0, 32}, {"message", 0, 8}, {"message end", 0, 8},
  };
  size_t tried = 0;
  for (size_t i = 0; i < RFC_COUNT; i++) {
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
      for (size_t byte = 0; byte < fields[f].bytes; byte++) {
        for (int bit = 0; bit < 8; bit++) {
          vec v;
          load(&v, i);
          uint8_t *p;
          if (f <= 1) p = v.sig + fields[f].offset + byte;
          else if (f == 2) p = v.pk + byte;
          else if (byte >= v.len) continue;
          else p = v.msg + (f == 3 ? byte : v.len - 1 - byte);
          *p ^= (uint8_t)(1u << bit);
          tried++;
          if (wl_ed25519_verify(v.sig, v.msg, v.len, v.pk))
            fail_msg("%s: accepted with bit %d of %s byte %zu flipped", RFC[i].name, bit,
                     fields[f].field, byte);
          if (sodium_verifies(v.sig, v.msg, v.len, v.pk))
            fail_msg("%s: libsodium accepts the flipped %s", RFC[i].name, fields[f].field);
        }
      }
    }
  }
  print_message("%zu flipped signatures rejected\n", tried);
}

/* S + L (a valid S, not reduced) and a public key whose y is p + 1 (the
** identity with a non-canonical y) are refused (RFC 8032 5.1.7 and 5.1.3). */
static void non_canonical_s_and_public_key_fail(void **state) {
  (void)state;
  static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                0xa2, 0xde, 0xf9, 0xde, 0x14, [31] = 0x10};
  for (size_t i = 0; i < RFC_COUNT; i++) {
    vec v;
    load(&v, i);
    unsigned carry = 0;
    for (int j = 0; j < 32; j++) {
      carry += (unsigned)v.sig[32 + j] + L[j];
      v.sig[32 + j] = (uint8_t)carry;
      carry >>= 8;
    }
    assert_int_equal(carry, 0);   /* S + L < 2^256 for these S */
    assert_false(wl_ed25519_verify(v.sig, v.msg, v.len, v.pk));
    assert_false(sodium_verifies(v.sig, v.msg, v.len, v.pk));
  }
  vec v;
  load(&v, 0);
  uint8_t pk[32];                 /* p + 1 = 2^255 - 18, little-endian */
  memset(pk, 0xff, 32);
  pk[0] = 0xee;
  pk[31] = 0x7f;
  assert_false(wl_ed25519_verify(v.sig, v.msg, v.len, pk));
}

/* Generated seeds and messages: public keys and signatures equal
** libsodium's; each signature verifies, and with one random bit flipped in
** message, R, S or key both implementations refuse it. */
static void generated_keys_agree_with_libsodium(void **state) {
  (void)state;
  enum { PAIRS = 300 };
  uint64_t s = 0x4544323535313921ull;
  int rejected = 0;
  for (int t = 0; t < PAIRS; t++) {
    uint8_t seed[32], pk[32], sk[64], sig[64], mine_pk[32], mine_sig[64], msg[300];
    size_t len = (size_t)(rng(&s) % sizeof msg);
    fill(seed, 32, &s);
    fill(msg, len, &s);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    assert_int_equal(crypto_sign_detached(sig, NULL, msg, len, sk), 0);
    wl_ed25519_public_key(mine_pk, seed);
    wl_ed25519_sign(mine_sig, msg, len, seed, mine_pk);
    if (memcmp(pk, mine_pk, 32) || memcmp(sig, mine_sig, 64))
      fail_msg("pair %d: key or signature differs from libsodium's", t);
    if (!wl_ed25519_verify(sig, msg, len, pk)) fail_msg("pair %d: libsodium's signature rejected", t);
    uint64_t r = rng(&s);
    uint8_t *p = (r & 3) == 0 && len ? msg + (r >> 8) % len
               : (r & 3) == 3        ? pk + (r >> 8) % 32
                                     : sig + (r >> 8) % 64;
    *p ^= (uint8_t)(1u << (r >> 4 & 7));
    int mine = wl_ed25519_verify(sig, msg, len, pk), theirs = sodium_verifies(sig, msg, len, pk);
    if (mine || theirs) fail_msg("pair %d: a flipped bit verifies (nub %d, libsodium %d)", t, mine, theirs);
    rejected++;
  }
  print_message("%d key pairs as libsodium, %d corrupted signatures rejected by both\n", PAIRS,
                rejected);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sha512_equals_libsodium_at_every_length_to_300),
    cmocka_unit_test(rfc8032_vectors_verify_and_sign_byte_for_byte),
    cmocka_unit_test(rfc8032_vectors_fail_with_any_bit_flipped),
    cmocka_unit_test(non_canonical_s_and_public_key_fail),
    cmocka_unit_test(generated_keys_agree_with_libsodium),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
