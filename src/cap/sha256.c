/*
** SHA-256 (FIPS 180-4) for the cap hashes: a portable C compression
** function and one using the x86 SHA extensions, chosen at run time by
** cpuid (docs/wire.md, "Hashes").  Besides whole messages it hashes
** many 64-byte messages per call (cap_sha256_pairs), the only shape SSZ
** merkleization needs: the second block of such a message is the
** constant padding block, whose schedule (W + K) is precomputed.
*/
#include "cap_internal.h"

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t IV[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* W[i] + K[i] of the padding block of a 64-byte message (0x80, zeros,
** bit length 512): the schedule the second block of every pair uses. */
static const uint32_t PAD_KW[64] = {
  0xc28a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf374,
  0x649b69c1, 0xf0fe4786, 0x0fe1edc6, 0x240cf254, 0x4fe9346f, 0x6cc984be, 0x61b9411e, 0x16f988fa,
  0xf2c65152, 0xa88e5a6d, 0xb019fc65, 0xb9d99ec7, 0x9a1231c3, 0xe70eeaa0, 0xfdb1232b, 0xc7353eb0,
  0x3069bad5, 0xcb976d5f, 0x5a0f118f, 0xdc1eeefd, 0x0a35b689, 0xde0b7a04, 0x58f4ca9d, 0xe15d5b16,
  0x007f3e86, 0x37088980, 0xa507ea32, 0x6fab9537, 0x17406110, 0x0d8cd6f1, 0xcdaa3b6d, 0xc0bbbe37,
  0x83613bda, 0xdb48a363, 0x0b02e931, 0x6fd15ca7, 0x521afaca, 0x31338431, 0x6ed41a95, 0x6d437890,
  0xc39c91f2, 0x9eccabbd, 0xb5c9a0e6, 0x532fb63c, 0xd2c741c6, 0x07237ea3, 0xa4954b68, 0x4c191d76,
};

typedef void compress_fn(uint32_t st[8], const uint8_t *blocks, size_t n);

static inline uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void put_state(const uint32_t st[8], uint8_t out[32]) {
  for (int i = 0; i < 8; i++) put_be32(out + 4 * i, st[i]);
}

/* Whole message: full blocks straight from p, then one or two blocks of
** tail and padding. */
static void hash_with(compress_fn *compress, const uint8_t *p, size_t len, uint8_t out[32]) {
  uint32_t st[8];
  uint8_t tail[128] = {0};
  size_t full = len / 64, rest = len % 64, tail_len = rest < 56 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  memcpy(st, IV, sizeof st);
  compress(st, p, full);
  if (rest) memcpy(tail, p + 64 * full, rest);
  tail[rest] = 0x80;
  for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
  compress(st, tail, tail_len / 64);
  put_state(st, out);
}

/* ---- portable ---- */

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))
#define BSIG0(x) (ROR(x, 2) ^ ROR(x, 13) ^ ROR(x, 22))
#define BSIG1(x) (ROR(x, 6) ^ ROR(x, 11) ^ ROR(x, 25))
#define SSIG0(x) (ROR(x, 7) ^ ROR(x, 18) ^ (x) >> 3)
#define SSIG1(x) (ROR(x, 17) ^ ROR(x, 19) ^ (x) >> 10)
#define CH(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))

/* 64 rounds over a schedule with K already added. */
static void rounds_portable(uint32_t st[8], const uint32_t kw[64]) {
  uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
  uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
  for (int i = 0; i < 64; i += 8) {
#define R(a, b, c, d, e, f, g, h, j)                           \
    do {                                                       \
      uint32_t t1 = h + BSIG1(e) + CH(e, f, g) + kw[i + j];    \
      d += t1;                                                 \
      h = t1 + BSIG0(a) + MAJ(a, b, c);                        \
    } while (0)
    R(a, b, c, d, e, f, g, h, 0);
    R(h, a, b, c, d, e, f, g, 1);
    R(g, h, a, b, c, d, e, f, 2);
    R(f, g, h, a, b, c, d, e, 3);
    R(e, f, g, h, a, b, c, d, 4);
    R(d, e, f, g, h, a, b, c, 5);
    R(c, d, e, f, g, h, a, b, 6);
    R(b, c, d, e, f, g, h, a, 7);
#undef R
  }
  st[0] += a; st[1] += b; st[2] += c; st[3] += d;
  st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

static void compress_portable(uint32_t st[8], const uint8_t *p, size_t n) {
  uint32_t w[64];
  for (; n; n--, p += 64) {
    for (int i = 0; i < 16; i++) w[i] = be32(p + 4 * i);
    for (int i = 16; i < 64; i++)
      w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) + w[i - 16];
    for (int i = 0; i < 64; i++) w[i] += K[i];
    rounds_portable(st, w);
  }
}

static void hash_portable(const uint8_t *p, size_t len, uint8_t out[32]) {
  hash_with(compress_portable, p, len, out);
}

static void pairs_portable(const uint8_t *in, uint8_t *out, size_t n) {
  for (; n; n--, in += 64, out += 32) {
    uint32_t st[8];
    memcpy(st, IV, sizeof st);
    compress_portable(st, in, 1);
    rounds_portable(st, PAD_KW);
    put_state(st, out);
  }
}

const cap_sha256_impl cap_sha256_portable = {"portable", hash_portable, pairs_portable};

/* ---- x86 SHA extensions ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* The state lives as two vectors, ABEF and CDGH, the order the
** sha256rnds2 instruction wants; each macro step is 4 rounds. */
#define KV(k, i) _mm_loadu_si128((const __m128i *)((k) + 4 * (i)))
#define BSWAP_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll)
#define LOAD_MSG(p, i) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p) + (i)), BSWAP_MASK)
#define ROUNDS4(s0, s1, wk)                                         \
  do {                                                              \
    __m128i wk_ = (wk);                                             \
    s1 = _mm_sha256rnds2_epu32(s1, s0, wk_);                        \
    s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(wk_, 0x0E)); \
  } while (0)
/* m0..m3 = W[t-16..t-1] in four vectors: m0 becomes W[t..t+3]. */
#define SCHEDULE(m0, m1, m2, m3)                                                      \
  m0 = _mm_sha256msg2_epu32(                                                          \
      _mm_add_epi32(_mm_sha256msg1_epu32(m0, m1), _mm_alignr_epi8(m3, m2, 4)), m3)

SHA_TARGET static inline void state_load(const uint32_t st[8], __m128i *abef, __m128i *cdgh) {
  __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xB1);   /* CDAB */
  __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)), 0x1B);
  *abef = _mm_alignr_epi8(dcba, efgh, 8);
  *cdgh = _mm_blend_epi16(efgh, dcba, 0xF0);
}

/* abef, cdgh back to the state order A..D, E..H. */
SHA_TARGET static inline void state_order(__m128i abef, __m128i cdgh, __m128i *abcd,
                                          __m128i *efgh) {
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  *abcd = _mm_blend_epi16(feba, dchg, 0xF0);
  *efgh = _mm_alignr_epi8(dchg, feba, 8);
}

/* The 64 rounds of one message block held in m0..m3. */
#define BLOCK_ROUNDS(s0, s1, m0, m1, m2, m3)                                     \
  do {                                                                           \
    ROUNDS4(s0, s1, _mm_add_epi32(m0, KV(K, 0)));                                \
    ROUNDS4(s0, s1, _mm_add_epi32(m1, KV(K, 1)));                                \
    ROUNDS4(s0, s1, _mm_add_epi32(m2, KV(K, 2)));                                \
    ROUNDS4(s0, s1, _mm_add_epi32(m3, KV(K, 3)));                                \
    for (int g_ = 4; g_ < 16; g_ += 4) {                                         \
      SCHEDULE(m0, m1, m2, m3); ROUNDS4(s0, s1, _mm_add_epi32(m0, KV(K, g_)));     \
      SCHEDULE(m1, m2, m3, m0); ROUNDS4(s0, s1, _mm_add_epi32(m1, KV(K, g_ + 1))); \
      SCHEDULE(m2, m3, m0, m1); ROUNDS4(s0, s1, _mm_add_epi32(m2, KV(K, g_ + 2))); \
      SCHEDULE(m3, m0, m1, m2); ROUNDS4(s0, s1, _mm_add_epi32(m3, KV(K, g_ + 3))); \
    }                                                                            \
  } while (0)

SHA_TARGET static void compress_shani(uint32_t st[8], const uint8_t *p, size_t n) {
  __m128i s0, s1, abcd, efgh;
  state_load(st, &s0, &s1);
  for (; n; n--, p += 64) {
    __m128i save0 = s0, save1 = s1;
    __m128i m0 = LOAD_MSG(p, 0), m1 = LOAD_MSG(p, 1), m2 = LOAD_MSG(p, 2), m3 = LOAD_MSG(p, 3);
    BLOCK_ROUNDS(s0, s1, m0, m1, m2, m3);
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  state_order(s0, s1, &abcd, &efgh);
  _mm_storeu_si128((__m128i *)st, abcd);
  _mm_storeu_si128((__m128i *)(st + 4), efgh);
}

static void hash_shani(const uint8_t *p, size_t len, uint8_t out[32]) {
  hash_with(compress_shani, p, len, out);
}

/* Digest bytes (big-endian words) of a final ABEF/CDGH state. */
SHA_TARGET static inline void store_digest(__m128i abef, __m128i cdgh, uint8_t *out) {
  const __m128i word_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
  __m128i abcd, efgh;
  state_order(abef, cdgh, &abcd, &efgh);
  _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(abcd, word_swap));
  _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(efgh, word_swap));
}

/* Pairs, several messages at a time: sha256rnds2 takes ~4 cycles to
** give its result but can start every cycle, so independent messages
** fill the gaps.  Measured on an AMD EPYC (Zen 4), MB/s of input: one
** chain 1 270, two 1 850, four whole messages 2 070-2 300 (they spill
** registers: 16 xmm), the pipeline below (first blocks of two messages
** next to the padding blocks of the previous two) 2 380-2 620.
** Lane l keeps its state in s0_l/s1_l and its schedule in m0_l..m3_l. */
#define LANES1(F, ...) F(0, __VA_ARGS__)
#define LANES2(F, ...) F(0, __VA_ARGS__) F(1, __VA_ARGS__)
#define L_LOAD(l, in)                                                            \
  __m128i s0_##l = iv0, s1_##l = iv1, m0_##l = LOAD_MSG(in, 4 * l),              \
          m1_##l = LOAD_MSG(in, 4 * l + 1), m2_##l = LOAD_MSG(in, 4 * l + 2),    \
          m3_##l = LOAD_MSG(in, 4 * l + 3), t0_##l, t1_##l;
#define L_ROUNDS(l, j, g) ROUNDS4(s0_##l, s1_##l, _mm_add_epi32(m##j##_##l, KV(K, g)));
#define L_SCHED(l, a, b, c, d, g)                                                \
  SCHEDULE(m##a##_##l, m##b##_##l, m##c##_##l, m##d##_##l); L_ROUNDS(l, a, g)
#define L_FEED(l, unused)                                                        \
  s0_##l = _mm_add_epi32(s0_##l, iv0); s1_##l = _mm_add_epi32(s1_##l, iv1);      \
  t0_##l = s0_##l; t1_##l = s1_##l;
#define L_PAD(l, g) ROUNDS4(s0_##l, s1_##l, KV(PAD_KW, g));
#define L_STORE(l, out)                                                          \
  store_digest(_mm_add_epi32(s0_##l, t0_##l), _mm_add_epi32(s1_##l, t1_##l), (out) + 32 * l);

#define PAIRS_STEP(LANES, in, out)                                               \
  do {                                                                           \
    LANES(L_LOAD, in)                                                            \
    LANES(L_ROUNDS, 0, 0) LANES(L_ROUNDS, 1, 1)                                  \
    LANES(L_ROUNDS, 2, 2) LANES(L_ROUNDS, 3, 3)                                  \
    for (int g = 4; g < 16; g += 4) {                                            \
      LANES(L_SCHED, 0, 1, 2, 3, g)                                              \
      LANES(L_SCHED, 1, 2, 3, 0, g + 1)                                          \
      LANES(L_SCHED, 2, 3, 0, 1, g + 2)                                          \
      LANES(L_SCHED, 3, 0, 1, 2, g + 3)                                          \
    }                                                                            \
    LANES(L_FEED, 0)                                                             \
    for (int g = 0; g < 16; g++) { LANES(L_PAD, g) }                             \
    LANES(L_STORE, out)                                                          \
  } while (0)

/* The software pipeline of pairs_shani: step i runs the first blocks of
** messages 2i and 2i+1 (lanes 0, 1) interleaved with the padding blocks
** of messages 2i-2 and 2i-1 (lanes 2, 3, digests to prev_out), four
** chains with fewer live registers than four whole messages. */
#define P_STORE(l, p) \
  store_digest(_mm_add_epi32(s0_##l, t0_##l), _mm_add_epi32(s1_##l, t1_##l), (p) + 32 * (l - 2));
#define PIPE_GROUP(FIRST, PAD, j, g)                                             \
  if (FIRST) { LANES2(L_ROUNDS, j, g) }                                          \
  if (PAD) { L_PAD(2, g) L_PAD(3, g) }
#define PIPE_SCHED(FIRST, PAD, a, b, c, d, g)                                    \
  if (FIRST) { LANES2(L_SCHED, a, b, c, d, g) }                                  \
  if (PAD) { L_PAD(2, g) L_PAD(3, g) }
#define PIPE_STEP(FIRST, PAD, in, prev_out)                                      \
  do {                                                                           \
    __m128i s0_0 = iv0, s1_0 = iv1, s0_1 = iv0, s1_1 = iv1, t0_0, t1_0, t0_1, t1_1; \
    __m128i m0_0 = iv0, m1_0 = iv0, m2_0 = iv0, m3_0 = iv0;                      \
    __m128i m0_1 = iv0, m1_1 = iv0, m2_1 = iv0, m3_1 = iv0;                      \
    if (FIRST) {                                                                 \
      m0_0 = LOAD_MSG(in, 0); m1_0 = LOAD_MSG(in, 1);                            \
      m2_0 = LOAD_MSG(in, 2); m3_0 = LOAD_MSG(in, 3);                            \
      m0_1 = LOAD_MSG(in, 4); m1_1 = LOAD_MSG(in, 5);                            \
      m2_1 = LOAD_MSG(in, 6); m3_1 = LOAD_MSG(in, 7);                            \
    }                                                                            \
    PIPE_GROUP(FIRST, PAD, 0, 0) PIPE_GROUP(FIRST, PAD, 1, 1)                    \
    PIPE_GROUP(FIRST, PAD, 2, 2) PIPE_GROUP(FIRST, PAD, 3, 3)                    \
    for (int g = 4; g < 16; g += 4) {                                            \
      PIPE_SCHED(FIRST, PAD, 0, 1, 2, 3, g)                                      \
      PIPE_SCHED(FIRST, PAD, 1, 2, 3, 0, g + 1)                                  \
      PIPE_SCHED(FIRST, PAD, 2, 3, 0, 1, g + 2)                                  \
      PIPE_SCHED(FIRST, PAD, 3, 0, 1, 2, g + 3)                                  \
    }                                                                            \
    if (PAD) { P_STORE(2, prev_out) P_STORE(3, prev_out) }                       \
    if (FIRST) {                                                                 \
      LANES2(L_FEED, 0)                                                          \
      s0_2 = s0_0; s1_2 = s1_0; t0_2 = t0_0; t1_2 = t1_0;                        \
      s0_3 = s0_1; s1_3 = s1_1; t0_3 = t0_1; t1_3 = t1_1;                        \
    }                                                                            \
  } while (0)

SHA_TARGET static void pairs_shani(const uint8_t *in, uint8_t *out, size_t n) {
  __m128i iv0, iv1;
  state_load(IV, &iv0, &iv1);
  if (n >= 4) {
    __m128i s0_2 = iv0, s1_2 = iv1, t0_2 = iv0, t1_2 = iv1;
    __m128i s0_3 = iv0, s1_3 = iv1, t0_3 = iv0, t1_3 = iv1;
    PIPE_STEP(1, 0, in, out);
    for (n -= 2, in += 128; n >= 2; n -= 2, in += 128, out += 64) PIPE_STEP(1, 1, in, out);
    PIPE_STEP(0, 1, in, out);
    out += 64;
  } else if (n >= 2) {
    PAIRS_STEP(LANES2, in, out);
    n -= 2, in += 128, out += 64;
  }
  if (n) PAIRS_STEP(LANES1, in, out);
}

static const cap_sha256_impl sha256_shani = {"sha-ni", hash_shani, pairs_shani};

static bool cpu_has_sha(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return false;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#else
static bool cpu_has_sha(void) { return false; }
#endif

/* ---- dispatch ---- */

static int hw_state;             /* 0 unknown, 1 absent, 2 present */
static const cap_sha256_impl *chosen;

const cap_sha256_impl *cap_sha256_hardware(void) {
  int s = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);
  if (!s) {       /* cpuid may trap to the hypervisor: ask once */
    s = cpu_has_sha() ? 2 : 1;
    __atomic_store_n(&hw_state, s, __ATOMIC_RELAXED);
  }
#if defined(__x86_64__) && defined(__GNUC__)
  if (s == 2) return &sha256_shani;
#endif
  return NULL;
}

const cap_sha256_impl *cap_sha256_active(void) {
  const cap_sha256_impl *impl = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
  if (impl) return impl;
  impl = cap_sha256_hardware();
  return impl ? impl : &cap_sha256_portable;
}

void cap_sha256_use(const cap_sha256_impl *impl) { __atomic_store_n(&chosen, impl, __ATOMIC_RELEASE); }

void cap_sha256(const uint8_t *p, size_t len, uint8_t out[32]) {
  cap_sha256_active()->hash(p, len, out);
}

void cap_sha256_pairs(const uint8_t *in, uint8_t *out, size_t n) {
  cap_sha256_active()->pairs(in, out, n);
}
