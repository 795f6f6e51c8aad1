/*
** Ed25519 signature verification (RFC 8032, pure Ed25519), the ed25519
** workload of the original nub's cross-engine table: n verifications of
** signatures made at start-up by up to 8 generated key pairs, one in four
** with a flipped bit (message, R, S or public key in turn) that must fail.
**
** Field elements mod p = 2^255 - 19 are five 51-bit limbs in uint64_t;
** products use unsigned __int128, which clang-19 compiles to mul + mulhu
** on RV64 (no compiler-rt call).  Points are extended twisted Edwards
** coordinates (X:Y:Z:T) with the complete formulas of RFC 8032 5.1.4, and
** [S]B + [k](-A) is one double-and-add pass over both scalars (Straus).
** Scalars mod L are reduced bit by bit: short code, under 2% of a verify
** natively (measured 2.4 us of 168).
** Not constant time: verification handles public data only, and signing
** exists to make the workload's input.
*/
#include "ed25519.h"
#include "workload.h"

typedef unsigned __int128 u128;
typedef struct fe { uint64_t v[5]; } fe;
typedef struct ge { fe x, y, z, t; } ge;

#define MASK51 ((1ull << 51) - 1)

/* ---- SHA-512 (FIPS 180-4) ---- */

static const uint64_t K512[80] = {
  0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
  0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
  0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
  0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
  0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
  0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
  0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
  0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
  0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
  0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
  0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
  0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
  0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
  0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
  0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
  0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
  0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
  0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
  0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
  0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

typedef struct sha512 { uint64_t h[8], total; uint8_t buf[128]; size_t fill; } sha512;

static uint64_t rotr(uint64_t x, unsigned n) { return x >> n | x << (64 - n); }

static void sha512_block(uint64_t h[8], const uint8_t *p) {
  uint64_t w[80], s[8];
  for (int i = 0; i < 16; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v = v << 8 | p[8 * i + j];
    w[i] = v;
  }
  for (int i = 16; i < 80; i++) {
    uint64_t s0 = rotr(w[i - 15], 1) ^ rotr(w[i - 15], 8) ^ w[i - 15] >> 7;
    uint64_t s1 = rotr(w[i - 2], 19) ^ rotr(w[i - 2], 61) ^ w[i - 2] >> 6;
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(s, h, sizeof s);
  for (int i = 0; i < 80; i++) {
    uint64_t e = s[4], a = s[0];
    uint64_t t1 = s[7] + (rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41)) + ((e & s[5]) ^ (~e & s[6])) +
                  K512[i] + w[i];
    uint64_t t2 = (rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39)) + ((a & s[1]) ^ (a & s[2]) ^ (s[1] & s[2]));
    memmove(s + 1, s, 7 * sizeof s[0]);
    s[4] += t1;
    s[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++) h[i] += s[i];
}

static void sha512_init(sha512 *c) {
  static const uint64_t iv[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
    0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
  };
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->fill = 0;
}

static void sha512_update(sha512 *c, const uint8_t *p, size_t n) {
  c->total += n;
  while (n) {
    size_t take = 128 - c->fill < n ? 128 - c->fill : n;
    if (c->fill == 0 && n >= 128) {
      sha512_block(c->h, p);
      take = 128;
    } else {
      memcpy(c->buf + c->fill, p, take);
      c->fill += take;
      if (c->fill == 128) { sha512_block(c->h, c->buf); c->fill = 0; }
    }
    p += take;
    n -= take;
  }
}

static void sha512_final(sha512 *c, uint8_t out[64]) {
  uint64_t bits = c->total * 8;
  c->buf[c->fill++] = 0x80;
  if (c->fill > 112) {
    memset(c->buf + c->fill, 0, 128 - c->fill);
    sha512_block(c->h, c->buf);
    c->fill = 0;
  }
  memset(c->buf + c->fill, 0, 120 - c->fill);   /* the length's top 64 bits are 0 */
  for (int i = 0; i < 8; i++) c->buf[120 + i] = (uint8_t)(bits >> (56 - 8 * i));
  sha512_block(c->h, c->buf);
  for (int i = 0; i < 64; i++) out[i] = (uint8_t)(c->h[i / 8] >> (56 - 8 * (i % 8)));
}

void wl_sha512(uint8_t out[64], const uint8_t *msg, size_t n) {
  sha512 c;
  sha512_init(&c);
  sha512_update(&c, msg, n);
  sha512_final(&c, out);
}

/* ---- GF(2^255 - 19): limbs below 2^52 between operations ---- */

static void fe_carry(fe *h) {
  uint64_t *v = h->v, c;
  for (int i = 0; i < 4; i++) { c = v[i] >> 51; v[i] &= MASK51; v[i + 1] += c; }
  c = v[4] >> 51;
  v[4] &= MASK51;
  v[0] += 19 * c;                           /* 2^255 = 19 (mod p) */
}

static void fe_add(fe *h, const fe *f, const fe *g) {
  for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
  fe_carry(h);
}

static void fe_sub(fe *h, const fe *f, const fe *g) {   /* f + 4p - g: no underflow */
  h->v[0] = f->v[0] + ((1ull << 53) - 76) - g->v[0];
  for (int i = 1; i < 5; i++) h->v[i] = f->v[i] + ((1ull << 53) - 4) - g->v[i];
  fe_carry(h);
}

static void fe_mul(fe *h, const fe *f, const fe *g) {
  const uint64_t *a = f->v, *b = g->v;
  uint64_t b19[5];
  u128 r[5];
  for (int i = 1; i < 5; i++) b19[i] = 19 * b[i];
  r[0] = (u128)a[0] * b[0] + (u128)a[1] * b19[4] + (u128)a[2] * b19[3] + (u128)a[3] * b19[2] +
         (u128)a[4] * b19[1];
  r[1] = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b19[4] + (u128)a[3] * b19[3] +
         (u128)a[4] * b19[2];
  r[2] = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] + (u128)a[3] * b19[4] +
         (u128)a[4] * b19[3];
  r[3] = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] + (u128)a[3] * b[0] +
         (u128)a[4] * b19[4];
  r[4] = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] + (u128)a[3] * b[1] +
         (u128)a[4] * b[0];
  for (int i = 0; i < 4; i++) { r[i + 1] += (uint64_t)(r[i] >> 51); r[i] &= MASK51; }
  uint64_t c = (uint64_t)(r[4] >> 51);
  for (int i = 0; i < 5; i++) h->v[i] = (uint64_t)r[i] & MASK51;
  h->v[0] += 19 * c;
  h->v[1] += h->v[0] >> 51;
  h->v[0] &= MASK51;
}

static void fe_sq(fe *h, const fe *f) { fe_mul(h, f, f); }

static void fe_sqn(fe *h, const fe *f, int n) {
  fe_sq(h, f);
  while (--n > 0) fe_sq(h, h);
}

static void fe_frombytes(fe *h, const uint8_t s[32]) {   /* ignores bit 255 */
  h->v[0] = wl_load64(s) & MASK51;
  h->v[1] = wl_load64(s + 6) >> 3 & MASK51;
  h->v[2] = wl_load64(s + 12) >> 6 & MASK51;
  h->v[3] = wl_load64(s + 19) >> 1 & MASK51;
  h->v[4] = wl_load64(s + 24) >> 12 & MASK51;
}

static void fe_tobytes(uint8_t s[32], const fe *f) {   /* the value mod p, < p */
  fe h = *f;
  fe_carry(&h);
  fe_carry(&h);                              /* h < 2^255 + 2^52: subtract p at most once */
  uint64_t q = (h.v[0] + 19) >> 51;          /* q = 1 iff h + 19 >= 2^255, iff h >= p */
  for (int i = 1; i < 5; i++) q = (h.v[i] + q) >> 51;
  h.v[0] += 19 * q;
  for (int i = 0; i < 4; i++) { h.v[i + 1] += h.v[i] >> 51; h.v[i] &= MASK51; }
  h.v[4] &= MASK51;                          /* drops q * 2^255 */
  uint64_t w[4] = {h.v[0] | h.v[1] << 51, h.v[1] >> 13 | h.v[2] << 38,
                   h.v[2] >> 26 | h.v[3] << 25, h.v[3] >> 39 | h.v[4] << 12};
  for (int i = 0; i < 32; i++) s[i] = (uint8_t)(w[i / 8] >> (8 * (i % 8)));
}

static int fe_is_odd(const fe *f) {
  uint8_t s[32];
  fe_tobytes(s, f);
  return s[0] & 1;
}

static int fe_equal(const fe *f, const fe *g) {
  uint8_t a[32], b[32];
  fe_tobytes(a, f);
  fe_tobytes(b, g);
  return memcmp(a, b, 32) == 0;
}

/* z^(2^250 - 1), and z^11 on the side: the common part of inversion
** (z^(p-2) = z^(2^255-21)) and the square root exponent (p-5)/8 = 2^252-3. */
static void fe_pow2250m1(fe *out, fe *z11, const fe *z) {
  fe z2, z9, t, e5, e10, e20, e50, e100;
  fe_sq(&z2, z);
  fe_sqn(&t, &z2, 2);
  fe_mul(&z9, &t, z);
  fe_mul(z11, &z9, &z2);
  fe_sq(&t, z11);
  fe_mul(&e5, &t, &z9);                          /* 2^5 - 1 */
  fe_sqn(&t, &e5, 5);   fe_mul(&e10, &t, &e5);   /* 2^10 - 1 */
  fe_sqn(&t, &e10, 10); fe_mul(&e20, &t, &e10);
  fe_sqn(&t, &e20, 20); fe_mul(&t, &t, &e20);    /* 2^40 - 1 */
  fe_sqn(&t, &t, 10);   fe_mul(&e50, &t, &e10);
  fe_sqn(&t, &e50, 50); fe_mul(&e100, &t, &e50);
  fe_sqn(&t, &e100, 100); fe_mul(&t, &t, &e100); /* 2^200 - 1 */
  fe_sqn(&t, &t, 50);   fe_mul(out, &t, &e50);   /* 2^250 - 1 */
}

static void fe_invert(fe *out, const fe *z) {
  fe t, z11;
  fe_pow2250m1(&t, &z11, z);
  fe_sqn(&t, &t, 5);
  fe_mul(out, &t, &z11);
}

static void fe_pow22523(fe *out, const fe *z) {
  fe t, z11;
  fe_pow2250m1(&t, &z11, z);
  fe_sqn(&t, &t, 2);
  fe_mul(out, &t, z);
}

/* Constants as little-endian encodings. */
static const uint8_t D_BYTES[32] = {     /* d = -121665/121666 */
  0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75, 0xab, 0xd8, 0x41, 0x41, 0x4d, 0x0a, 0x70, 0x00,
  0x98, 0xe8, 0x79, 0x77, 0x79, 0x40, 0xc7, 0x8c, 0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52};
static const uint8_t SQRTM1_BYTES[32] = {   /* 2^((p-1)/4), a square root of -1 */
  0xb0, 0xa0, 0x0e, 0x4a, 0x27, 0x1b, 0xee, 0xc4, 0x78, 0xe4, 0x2f, 0xad, 0x06, 0x18, 0x43, 0x2f,
  0xa7, 0xd7, 0xfb, 0x3d, 0x99, 0x00, 0x4d, 0x2b, 0x0b, 0xdf, 0xc1, 0x4f, 0x80, 0x24, 0x83, 0x2b};
static const ge BASE = {   /* the base point: y = 4/5, x even; limbs of x, y, 1, xy */
  {{0x62d608f25d51aull, 0x412a4b4f6592aull, 0x75b7171a4b31dull, 0x1ff60527118feull, 0x216936d3cd6e5ull}},
  {{0x6666666666658ull, 0x4ccccccccccccull, 0x1999999999999ull, 0x3333333333333ull, 0x6666666666666ull}},
  {{1, 0, 0, 0, 0}},
  {{0x68ab3a5b7dda3ull, 0x00eea2a5eadbbull, 0x2af8df483c27eull, 0x332b375274732ull, 0x67875f0fd78b7ull}},
};
static const uint64_t L_WORDS[4] = {     /* L = 2^252 + 27742317777372353535851937790883648493 */
  0x5812631a5cf5d3edull, 0x14def9dea2f79cd6ull, 0, 0x1000000000000000ull};

/* ---- points ---- */

/* RFC 8032 5.1.4 addition; complete (it also doubles and takes the identity). */
static void ge_add(ge *r, const ge *p, const ge *q) {
  fe d2, a, b, c, d, e, f, g, h, t;
  fe_frombytes(&d2, D_BYTES);
  fe_add(&d2, &d2, &d2);
  fe_sub(&a, &p->y, &p->x);
  fe_sub(&t, &q->y, &q->x);
  fe_mul(&a, &a, &t);
  fe_add(&b, &p->y, &p->x);
  fe_add(&t, &q->y, &q->x);
  fe_mul(&b, &b, &t);
  fe_mul(&c, &p->t, &q->t);
  fe_mul(&c, &c, &d2);
  fe_mul(&d, &p->z, &q->z);
  fe_add(&d, &d, &d);
  fe_sub(&e, &b, &a);
  fe_sub(&f, &d, &c);
  fe_add(&g, &d, &c);
  fe_add(&h, &b, &a);
  fe_mul(&r->x, &e, &f);
  fe_mul(&r->y, &g, &h);
  fe_mul(&r->t, &e, &h);
  fe_mul(&r->z, &f, &g);
}

/* RFC 8032 5.1.4 doubling (4 squarings, 4 multiplications). */
static void ge_double(ge *r, const ge *p) {
  fe a, b, c, e, f, g, h, t;
  fe_sq(&a, &p->x);
  fe_sq(&b, &p->y);
  fe_sq(&c, &p->z);
  fe_add(&c, &c, &c);
  fe_add(&h, &a, &b);
  fe_add(&t, &p->x, &p->y);
  fe_sq(&t, &t);
  fe_sub(&e, &h, &t);
  fe_sub(&g, &a, &b);
  fe_add(&f, &c, &g);
  fe_mul(&r->x, &e, &f);
  fe_mul(&r->y, &g, &h);
  fe_mul(&r->t, &e, &h);
  fe_mul(&r->z, &f, &g);
}

static void ge_identity(ge *p) {
  memset(p, 0, sizeof *p);
  p->y.v[0] = 1;
  p->z.v[0] = 1;
}

static void ge_encode(uint8_t s[32], const ge *p) {
  fe zi, x, y;
  fe_invert(&zi, &p->z);
  fe_mul(&x, &p->x, &zi);
  fe_mul(&y, &p->y, &zi);
  fe_tobytes(s, &y);
  s[31] |= (uint8_t)(fe_is_odd(&x) << 7);
}

/* RFC 8032 5.1.3: 0 if s is no point's (canonical) encoding. */
static int ge_decode(ge *p, const uint8_t s[32]) {
  uint8_t canon[32];
  fe u, v, v3, x2, t, d;
  int sign = s[31] >> 7;
  fe_frombytes(&p->y, s);
  fe_tobytes(canon, &p->y);
  canon[31] |= (uint8_t)(sign << 7);
  if (memcmp(canon, s, 32)) return 0;          /* y >= p */
  memset(&p->z, 0, sizeof p->z);
  p->z.v[0] = 1;
  fe_frombytes(&d, D_BYTES);
  fe_sq(&u, &p->y);
  fe_mul(&v, &u, &d);
  fe_sub(&u, &u, &p->z);                       /* u = y^2 - 1 */
  fe_add(&v, &v, &p->z);                       /* v = d y^2 + 1 */
  fe_sq(&v3, &v);
  fe_mul(&v3, &v3, &v);
  fe_sq(&t, &v3);
  fe_mul(&t, &t, &v);
  fe_mul(&t, &t, &u);                          /* u v^7 */
  fe_pow22523(&t, &t);
  fe_mul(&t, &t, &v3);
  fe_mul(&p->x, &t, &u);                       /* x = u v^3 (u v^7)^((p-5)/8) */
  fe_sq(&x2, &p->x);
  fe_mul(&x2, &x2, &v);
  if (!fe_equal(&x2, &u)) {
    fe zero = {{0}}, neg_u;
    fe_sub(&neg_u, &zero, &u);
    if (!fe_equal(&x2, &neg_u)) return 0;      /* no square root: not on the curve */
    fe_frombytes(&t, SQRTM1_BYTES);
    fe_mul(&p->x, &p->x, &t);
  }
  uint8_t xs[32], zero32[32] = {0};
  fe_tobytes(xs, &p->x);
  if (sign && !memcmp(xs, zero32, 32)) return 0;
  if ((xs[0] & 1) != sign) {
    fe zero = {{0}};
    fe_sub(&p->x, &zero, &p->x);
  }
  fe_mul(&p->t, &p->x, &p->y);
  return 1;
}

static int scalar_bit(const uint8_t s[32], int i) { return s[i >> 3] >> (i & 7) & 1; }

/* r = [a]B + [b]Q: one doubling per bit, one addition where either bit is set. */
/* q may be NULL when b is zero. */
static void ge_straus(ge *r, const uint8_t a[32], const uint8_t b[32], const ge *q) {
  ge table[4];
  table[1] = BASE;
  if (q) {
    table[2] = *q;
    ge_add(&table[3], &BASE, q);
  }
  ge_identity(r);
  int i = 255;
  while (i >= 0 && !scalar_bit(a, i) && !scalar_bit(b, i)) i--;
  for (; i >= 0; i--) {
    ge_double(r, r);
    int k = scalar_bit(a, i) | scalar_bit(b, i) << 1;
    if (k) ge_add(r, r, &table[k]);
  }
}

/* ---- scalars mod L ---- */

static int words_ge_l(const uint64_t r[4]) {
  for (int i = 3; i >= 0; i--)
    if (r[i] != L_WORDS[i]) return r[i] > L_WORDS[i];
  return 1;
}

/* out = x mod L for a 512-bit x (8 little-endian words). */
static void sc_reduce(uint8_t out[32], const uint64_t x[8]) {
  uint64_t r[4] = {0};
  for (int i = 511; i >= 0; i--) {              /* r < L < 2^253, so 2r + 1 fits */
    r[3] = r[3] << 1 | r[2] >> 63;
    r[2] = r[2] << 1 | r[1] >> 63;
    r[1] = r[1] << 1 | r[0] >> 63;
    r[0] = r[0] << 1 | (x[i / 64] >> (i % 64) & 1);
    if (words_ge_l(r)) {
      uint64_t borrow = 0;
      for (int j = 0; j < 4; j++) {
        uint64_t d = r[j] - L_WORDS[j] - borrow;
        borrow = (r[j] < L_WORDS[j]) | ((r[j] == L_WORDS[j]) & borrow);
        r[j] = d;
      }
    }
  }
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(r[i / 8] >> (8 * (i % 8)));
}

static void sc_reduce_hash(uint8_t out[32], const uint8_t h[64]) {
  uint64_t x[8];
  for (int i = 0; i < 8; i++) x[i] = wl_load64(h + 8 * i);
  sc_reduce(out, x);
}

/* out = (a * b + c) mod L. */
static void sc_muladd(uint8_t out[32], const uint8_t a[32], const uint8_t b[32],
                      const uint8_t c[32]) {
  uint64_t x[8] = {0}, aw[4], bw[4];
  for (int i = 0; i < 4; i++) { aw[i] = wl_load64(a + 8 * i); bw[i] = wl_load64(b + 8 * i); }
  for (int i = 0; i < 4; i++) x[i] = wl_load64(c + 8 * i);
  for (int i = 0; i < 4; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < 4; j++) {
      u128 t = (u128)aw[i] * bw[j] + x[i + j] + carry;
      x[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    for (int k = i + 4; carry && k < 8; k++) {
      u128 t = (u128)x[k] + carry;
      x[k] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
  }
  sc_reduce(out, x);
}

/* ---- RFC 8032 5.1.5 - 5.1.7 ---- */

static void expand_secret(uint8_t h[64], const uint8_t sk[32]) {
  wl_sha512(h, sk, 32);
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
}

void wl_ed25519_public_key(uint8_t pk[32], const uint8_t sk[32]) {
  uint8_t h[64], zero[32] = {0};
  ge a;
  expand_secret(h, sk);
  ge_straus(&a, h, zero, NULL);
  ge_encode(pk, &a);
}

void wl_ed25519_sign(uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t sk[32],
                     const uint8_t pk[32]) {
  uint8_t h[64], d[64], r[32], k[32], zero[32] = {0};
  sha512 c;
  ge p;
  expand_secret(h, sk);
  sha512_init(&c);
  sha512_update(&c, h + 32, 32);
  sha512_update(&c, msg, n);
  sha512_final(&c, d);
  sc_reduce_hash(r, d);
  ge_straus(&p, r, zero, NULL);
  ge_encode(sig, &p);                          /* R = [r]B */
  sha512_init(&c);
  sha512_update(&c, sig, 32);
  sha512_update(&c, pk, 32);
  sha512_update(&c, msg, n);
  sha512_final(&c, d);
  sc_reduce_hash(k, d);
  sc_muladd(sig + 32, k, h, r);                /* S = (r + k s) mod L */
}

/* The verification, also giving the encoding of [S]B - [k]A it compared
** with R (zeros when S or A is rejected before). */
static int verify(const uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t pk[32],
                  uint8_t check[32]) {
  uint64_t s[4];
  uint8_t d[64], k[32];
  sha512 c;
  ge a, q;
  memset(check, 0, 32);
  for (int i = 0; i < 4; i++) s[i] = wl_load64(sig + 32 + 8 * i);
  if (words_ge_l(s)) return 0;                 /* S must be below L */
  if (!ge_decode(&a, pk)) return 0;
  sha512_init(&c);
  sha512_update(&c, sig, 32);
  sha512_update(&c, pk, 32);
  sha512_update(&c, msg, n);
  sha512_final(&c, d);
  sc_reduce_hash(k, d);
  fe zero = {{0}};
  fe_sub(&a.x, &zero, &a.x);                   /* -A */
  fe_sub(&a.t, &zero, &a.t);
  ge_straus(&q, sig + 32, k, &a);
  ge_encode(check, &q);
  /* [S]B = R + [k]A, compared as encodings: the encoding of a point is
  ** unique, and bytes that decode to no point (RFC 8032 step 1 for R)
  ** equal no encoding, so R need not be decoded. */
  return memcmp(check, sig, 32) == 0;
}

int wl_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t pk[32]) {
  uint8_t check[32];
  return verify(sig, msg, n, pk, check);
}

/* ---- the workload ---- */

#define KEYS 8
#define MSG_MAX (16 + 37 * (KEYS - 1))

uint64_t wl_ed25519(uint64_t n, uint64_t verbose) {
  uint8_t sk[KEYS][32], pk[KEYS][32], sig[KEYS][64], msg[KEYS][MSG_MAX];
  uint8_t s2[64], p2[32], m2[MSG_MAX], check[32];
  uint64_t keys = n < KEYS ? n : KEYS, h = 0xcbf29ce484222325ull, valid = 0;
  for (uint64_t j = 0; j < keys; j++) {
    size_t len = 16 + 37 * j;
    wl_fill(sk[j], 32, 0x45443235353139ull + j);
    wl_fill(msg[j], len, 0x4d53470000ull + j);
    wl_ed25519_public_key(pk[j], sk[j]);
    wl_ed25519_sign(sig[j], msg[j], len, sk[j], pk[j]);
    h = (h ^ wl_load64(sig[j]) ^ wl_load64(sig[j] + 32)) * 0x100000001b3ull;
  }
  for (uint64_t i = 0; i < n; i++) {
    uint64_t j = i % keys;
    size_t len = 16 + 37 * j;
    int bad = i % 4 == 3;
    memcpy(s2, sig[j], 64);
    memcpy(p2, pk[j], 32);
    memcpy(m2, msg[j], len);
    if (bad) {                                 /* message, R, S, public key in turn */
      uint64_t bit = i / 4 * 97;
      switch (i / 4 % 4) {
      case 0: m2[bit / 8 % len] ^= (uint8_t)(1u << bit % 8); break;
      case 1: s2[bit / 8 % 32] ^= (uint8_t)(1u << bit % 8); break;
      case 2: s2[32 + bit / 8 % 32] ^= (uint8_t)(1u << bit % 8); break;
      default: p2[bit / 8 % 32] ^= (uint8_t)(1u << bit % 8); break;
      }
    }
    int ok = verify(s2, m2, len, p2, check);
    if (ok == bad) return 0;                   /* a wrong verdict */
    valid += (uint64_t)ok;
    h = (h ^ wl_load64(check) ^ (uint64_t)ok) * 0x100000001b3ull;
  }
  if (verbose)
    nub_printf("ed25519: %llu signatures by %llu keys verified, %llu valid",
               (unsigned long long)n, (unsigned long long)keys, (unsigned long long)valid);
  return h;
}
