/*
** Generic program blobs (GP A.2) and single-instruction decoding (A.5).
** Every reader takes (ptr, end) bounds; nothing reads past end.
*/
#include <stdio.h>

#include "pvm_internal.h"

int pvm_fail(nub_pvm_error *err, int code, uint64_t offset, const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->code = code;
    err->offset = offset;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

const char *nub_pvm_errcode_name(int code) {
  static const char *names[] = {
    "ok", "truncated", "length", "limit", "encoding", "jump-table",
    "bitmask", "trailing", "align", "range", "unmapped", "argument",
    "out-of-memory", "system", "unsupported",
  };
  return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "?";
}

/* ---- compact naturals (GP C.6) ---- */

int nub_pvm_read_natural(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  if (p >= end) return PVM_ERR_TRUNCATED;
  uint8_t b0 = *p++;
  unsigned l = 0;
  while (l < 8 && (b0 & (0x80u >> l))) l++;
  if ((size_t)(end - p) < l) return PVM_ERR_TRUNCATED;
  uint64_t v = pvm_le_read(p, l);
  if (l < 8) v |= (uint64_t)(b0 & (0x7Fu >> l)) << (8 * l);
  /* canonical: a shorter prefix could not have held the value */
  if (l > 0 && v < (1ull << (7 * l))) return PVM_ERR_ENCODING;
  *pp = p + l;
  *out = v;
  return PVM_OK;
}

size_t nub_pvm_write_natural(uint8_t *out, uint64_t x) {
  unsigned l = 0;
  while (l < 8 && x >= (1ull << (7 * (l + 1)))) l++;
  if (l == 8) {
    out[0] = 0xFF;
    for (unsigned i = 0; i < 8; i++) out[1 + i] = (uint8_t)(x >> (8 * i));
    return 9;
  }
  out[0] = (uint8_t)((0xFF00u >> l) & 0xFF) | (uint8_t)(x >> (8 * l));
  for (unsigned i = 0; i < l; i++) out[1 + i] = (uint8_t)(x >> (8 * i));
  return 1 + l;
}

static int read_len(const uint8_t **p, const uint8_t *start, const uint8_t *end,
                    uint64_t limit, const char *field, uint64_t *out,
                    nub_pvm_error *err) {
  uint64_t at = (uint64_t)(*p - start);
  int rc = nub_pvm_read_natural(p, end, out);
  if (rc == PVM_ERR_TRUNCATED)
    return pvm_fail(err, rc, at, "%s: input ends inside the length at offset %llu",
                    field, (unsigned long long)at);
  if (rc)
    return pvm_fail(err, rc, at, "%s: non-canonical compact natural at offset %llu",
                    field, (unsigned long long)at);
  if (*out > limit)
    return pvm_fail(err, PVM_ERR_LIMIT, at, "%s: %llu exceeds the limit %llu",
                    field, (unsigned long long)*out, (unsigned long long)limit);
  return PVM_OK;
}

uint32_t nub_pvm_blob_jump_entry(const nub_pvm_blob *b, uint32_t i) {
  return (uint32_t)pvm_le_read(b->jump_table + (size_t)i * b->jump_entry_size,
                               b->jump_entry_size);
}

int nub_pvm_blob_parse(const uint8_t *p, const uint8_t *end, nub_pvm_blob *out,
                   nub_pvm_error *err) {
  const uint8_t *start = p;
  uint64_t jump_count, code_len;
  int rc;
  if (!p || !end || end < p)
    return pvm_fail(err, PVM_ERR_ARG, 0, "blob: no input");
  if ((rc = read_len(&p, start, end, PVM_MAX_JUMP_COUNT, "jump table length",
                     &jump_count, err)))
    return rc;
  if (p >= end)
    return pvm_fail(err, PVM_ERR_TRUNCATED, (uint64_t)(p - start),
                    "jump entry size: input ends at offset %llu",
                    (unsigned long long)(p - start));
  uint8_t z = *p++;
  if (z > 4)
    return pvm_fail(err, PVM_ERR_JUMP_TABLE, (uint64_t)(p - 1 - start),
                    "jump entry size %u at offset %llu exceeds 4", z,
                    (unsigned long long)(p - 1 - start));
  if ((rc = read_len(&p, start, end, PVM_MAX_CODE_LEN, "code length",
                     &code_len, err)))
    return rc;
  uint64_t jt_bytes = jump_count * z, mask_bytes = (code_len + 7) / 8;
  uint64_t have = (uint64_t)(end - p), need = jt_bytes + code_len + mask_bytes;
  if (have < need)
    return pvm_fail(err, PVM_ERR_TRUNCATED, (uint64_t)(end - start),
                    "blob: jump table (%llu B) + code (%llu B) + bitmask (%llu B) "
                    "need %llu bytes after offset %llu, only %llu present",
                    (unsigned long long)jt_bytes, (unsigned long long)code_len,
                    (unsigned long long)mask_bytes, (unsigned long long)need,
                    (unsigned long long)(p - start), (unsigned long long)have);
  if (have > need)
    return pvm_fail(err, PVM_ERR_TRAILING, (uint64_t)(p - start) + need,
                    "blob: %llu trailing bytes after the bitmask at offset %llu",
                    (unsigned long long)(have - need),
                    (unsigned long long)((uint64_t)(p - start) + need));
  out->jump_table = p;
  out->jump_count = (uint32_t)jump_count;
  out->jump_entry_size = z;
  out->code = p + jt_bytes;
  out->code_len = (uint32_t)code_len;
  out->bitmask = out->code + code_len;
  if (code_len % 8) {
    uint8_t last = out->bitmask[mask_bytes - 1];
    if (last >> (code_len % 8))
      return pvm_fail(err, PVM_ERR_BITMASK, (uint64_t)(end - 1 - start),
                      "bitmask: padding bits set in the last byte 0x%02x at offset %llu "
                      "(code length %llu)", last,
                      (unsigned long long)(end - 1 - start),
                      (unsigned long long)code_len);
  }
  /* Jump table entries may point anywhere: GP's djump panics when an
  ** entry that is not a basic-block start is used, so such an entry does
  ** not make the program invalid. */
  return PVM_OK;
}

/* ---- decoding ---- */

uint32_t nub_pvm_skip(const nub_pvm_blob *b, uint32_t pc) { return pvm_skip(b, pc); }

void nub_pvm_decode(nub_pvm_profile profile, const nub_pvm_blob *b, uint32_t pc,
                nub_pvm_insn *in) {
  pvm_decode(nub_pvm_isa(profile), b, pc, in);
}
