/*
** Error reporting and names for the capability layer.
*/
#include <stdarg.h>
#include <stdio.h>

#include "cap_internal.h"

int cap_fail(nub_cap_error *err, int code, uint64_t offset, const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->code = code;
    err->pvm_code = 0;
    err->offset = offset;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

int cap_fail_pvm(nub_cap_error *err, int code, uint64_t base, const char *prefix,
                 const nub_pvm_error *perr) {
  cap_fail(err, code, base + perr->offset, "%s: %s", prefix, perr->msg);
  if (err) err->pvm_code = perr->code;
  return code;
}

const char *cap_hex32(const uint8_t h[CAP_HASH_SIZE], char buf[65]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < CAP_HASH_SIZE; i++) {
    buf[2 * i] = digits[h[i] >> 4];
    buf[2 * i + 1] = digits[h[i] & 15];
  }
  buf[64] = 0;
  return buf;
}

const char *nub_cap_errcode_name(int code) {
  static const char *names[CAP_ERR_COUNT] = {
    "ok", "truncated", "offset", "trailing", "limit", "selector", "order",
    "reserved", "align", "range", "overlap", "canonical", "code", "sentinel",
    "missing", "kind", "pvm", "full", "corrupt", "busy", "argument",
    "out-of-memory",
  };
  return (unsigned)code < CAP_ERR_COUNT ? names[code] : "?";
}

const char *nub_cap_kind_name(int kind) {
  static const char *names[CAP_KIND_COUNT] = {"instance", "image", "data", "cnode"};
  return (unsigned)kind < CAP_KIND_COUNT ? names[kind] : "?";
}
