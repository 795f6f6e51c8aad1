/*
** A whole C program for the nub link test: SHA-256 blocks, a quicksort
** through a comparison function pointer with struct copies (memcpy),
** varargs, __int128, a switch-dispatched interpreter with a table of
** function pointers, memmove/memcmp, signed division.  work(seed) returns
** a checksum; test_link_isa runs it natively under qemu-riscv64 and as PVM
** at several optimisation levels and code models.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
void *memcpy(void *d, const void *s, size_t n) { unsigned char *a = d; const unsigned char *b = s; while (n--) *a++ = *b++; return d; }
void *memset(void *d, int c, size_t n) { unsigned char *a = d; while (n--) *a++ = (unsigned char)c; return d; }
void *memmove(void *d, const void *s, size_t n) { unsigned char *a = d; const unsigned char *b = s; if (a < b) while (n--) *a++ = *b++; else while (n--) a[n] = b[n]; return d; }
int memcmp(const void *x, const void *y, size_t n) { const unsigned char *a = x, *b = y; for (; n; n--, a++, b++) if (*a != *b) return *a - *b; return 0; }
static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static const uint32_t K[64] = {0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};
static void sha256_block(uint32_t h[8], const unsigned char *p) {
  uint32_t w[64], a,b,c,d,e,f,g,hh;
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4*i]<<24 | (uint32_t)p[4*i+1]<<16 | (uint32_t)p[4*i+2]<<8 | p[4*i+3];
  for (int i = 16; i < 64; i++) { uint32_t s0 = rotr(w[i-15],7)^rotr(w[i-15],18)^(w[i-15]>>3), s1 = rotr(w[i-2],17)^rotr(w[i-2],19)^(w[i-2]>>10); w[i] = w[i-16]+s0+w[i-7]+s1; }
  a=h[0];b=h[1];c=h[2];d=h[3];e=h[4];f=h[5];g=h[6];hh=h[7];
  for (int i = 0; i < 64; i++) { uint32_t t1 = hh + (rotr(e,6)^rotr(e,11)^rotr(e,25)) + ((e&f)^(~e&g)) + K[i] + w[i]; uint32_t t2 = (rotr(a,2)^rotr(a,13)^rotr(a,22)) + ((a&b)^(a&c)^(b&c)); hh=g; g=f; f=e; e=d+t1; d=c; c=b; b=a; a=t1+t2; }
  h[0]+=a;h[1]+=b;h[2]+=c;h[3]+=d;h[4]+=e;h[5]+=f;h[6]+=g;h[7]+=hh;
}

struct item { int64_t key; char tag[10]; };
static struct item items[300];
static int cmp_item(const void *x, const void *y) { const struct item *a = x, *b = y; return a->key < b->key ? -1 : a->key > b->key; }
static void qs(void *base, size_t n, size_t sz, int (*cmp)(const void *, const void *)) {
  unsigned char *b = base, tmp[64];
  if (n < 2) return;
  size_t i = 0; unsigned char *piv = b + (n - 1) * sz;
  for (size_t j = 0; j < n - 1; j++) if (cmp(b + j * sz, piv) < 0) { memcpy(tmp, b + i*sz, sz); memcpy(b + i*sz, b + j*sz, sz); memcpy(b + j*sz, tmp, sz); i++; }
  memcpy(tmp, b + i*sz, sz); memcpy(b + i*sz, piv, sz); memcpy(piv, tmp, sz);
  qs(b, i, sz, cmp); qs(b + (i + 1) * sz, n - i - 1, sz, cmp);
}
static uint64_t sum_va(int n, ...) { va_list ap; va_start(ap, n); uint64_t s = 0; for (int i = 0; i < n; i++) s = s * 31 + va_arg(ap, uint64_t); va_end(ap); return s; }
typedef uint64_t (*op_fn)(uint64_t, uint64_t);
static uint64_t op_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t op_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t op_div(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static uint64_t op_mulh(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 64); }
static const struct { const char *name; op_fn fn; } ops[] = {{"add", op_add}, {"mul", op_mul}, {"div", op_div}, {"mulh", op_mulh}};
static uint64_t interp(const unsigned char *code, int n, uint64_t x) {
  uint64_t acc = x;
  for (int pc = 0; pc < n; pc++) {
    switch (code[pc] % 9) {
    case 0: acc += 7; break; case 1: acc *= 3; break; case 2: acc ^= acc >> 5; break;
    case 3: acc = ops[code[pc] % 4].fn(acc, code[pc] + 1); break; case 4: acc -= 11; break;
    case 5: acc = (acc << 13) | (acc >> 51); break; case 6: acc = ~acc; break;
    case 7: acc += (int64_t)(int8_t)code[pc]; break; default: acc = acc * 0x9e3779b97f4a7c15ull; break;
    }
  }
  return acc;
}
uint64_t work(uint64_t seed) {
  static unsigned char buf[1000];
  uint32_t h[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19};
  uint64_t s = seed;
  for (int i = 0; i < 1000; i++) { s = s * 6364136223846793005ull + 1442695040888963407ull; buf[i] = (unsigned char)(s >> 33); }
  for (int i = 0; i + 64 <= 1000; i += 64) sha256_block(h, buf + i);
  for (int i = 0; i < 300; i++) { s = s * 6364136223846793005ull + 1; items[i].key = (int64_t)(s >> 20) % 1000 - 500; memset(items[i].tag, 'a' + i % 26, 9); items[i].tag[9] = 0; }
  qs(items, 300, sizeof items[0], cmp_item);
  uint64_t r = 0;
  for (int i = 0; i < 300; i++) r = r * 1000003 + (uint64_t)items[i].key + items[i].tag[3];
  for (int i = 0; i < 8; i++) r ^= (uint64_t)h[i] << (i * 4);
  r += sum_va(5, r, (uint64_t)3, seed, (uint64_t)-1, (uint64_t)h[0]);
  r += interp(buf, 1000, seed);
  struct item copy = items[7]; items[8] = copy; r += (uint64_t)items[8].key;
  memmove(buf + 1, buf, 500); r += buf[300] + (uint64_t)memcmp(buf, buf + 1, 10);
  r += (uint64_t)((int64_t)seed / -7) + (uint64_t)((int64_t)r % 13);
  return r;
}
