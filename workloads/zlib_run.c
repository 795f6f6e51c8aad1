/*
** zlib 1.3.1, unmodified (fetched by scripts/fetch-zlib.sh, built with
** the configuration macros Z_SOLO and Z_PREFIX only): deflate n bytes of
** generated text at level 6, inflate them again and compare.  The digest
** is the CRC-32 of the compressed stream and its length.
*/
#include "workload.h"
#include "zlib.h"

static voidpf zalloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return calloc(items, size);
}

static void zfree(voidpf opaque, voidpf p) {
  (void)opaque;
  free(p);
}

static void make_text(uint8_t *p, uint64_t n) {
  static const char *words[16] = {"the ", "capability ", "of ", "a ", "guest ", "program ",
                                  "runs ", "under ", "gas, ", "and ", "its ", "memory ",
                                  "pages ", "are ", "fresh. ", "PVM\n"};
  uint64_t s = 0x5A4C494200000006ull, i = 0;
  while (i < n) {
    uint64_t r = wl_rand(&s);
    const char *w = (r & 0x300) == 0x300 ? NULL : words[r & 15];
    if (!w) { p[i++] = (uint8_t)(r >> 16); continue; }   /* some noise */
    for (; *w && i < n; w++) p[i++] = (uint8_t)*w;
  }
}

uint64_t wl_zlib(uint64_t n, uint64_t verbose) {
  z_stream zs;
  uint64_t digest = 0;
  uLong bound;
  uint8_t *in = malloc(n ? n : 1), *packed = NULL, *back = malloc(n ? n : 1);
  if (!in || !back) goto out;
  make_text(in, n);
  memset(&zs, 0, sizeof zs);
  zs.zalloc = zalloc;
  zs.zfree = zfree;
  if (deflateInit(&zs, 6) != Z_OK) goto out;
  bound = deflateBound(&zs, (uLong)n);
  if (!(packed = malloc(bound))) { deflateEnd(&zs); goto out; }
  zs.next_in = in;
  zs.avail_in = (uInt)n;
  zs.next_out = packed;
  zs.avail_out = (uInt)bound;
  int rc = deflate(&zs, Z_FINISH);
  uLong packed_len = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) goto out;

  memset(&zs, 0, sizeof zs);
  zs.zalloc = zalloc;
  zs.zfree = zfree;
  if (inflateInit(&zs) != Z_OK) goto out;
  zs.next_in = packed;
  zs.avail_in = (uInt)packed_len;
  zs.next_out = back;
  zs.avail_out = (uInt)n;
  rc = inflate(&zs, Z_FINISH);
  uLong back_len = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || back_len != n || memcmp(in, back, n)) goto out;
  digest = (uint64_t)crc32(0, packed, (uInt)packed_len) << 32 | packed_len;
  if (verbose)
    nub_printf("zlib %s: %llu bytes -> %lu deflated -> %lu inflated, crc32 %08llx", zlibVersion(),
               (unsigned long long)n, (unsigned long)packed_len, (unsigned long)back_len,
               (unsigned long long)(digest >> 32));
out:
  free(in);
  free(packed);
  free(back);
  return digest;
}
