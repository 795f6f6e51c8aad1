/*
** Shared helpers of the nub command line.
*/
#include "cli.h"

#include "nub/jit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_read_file(const char *path, uint8_t **data, size_t *len) {
  return cli_read_file_max(path, CLI_MAX_FILE_BYTES, "", data, len);
}

/* what: "is N bytes" or "holds more than N bytes" */
static int too_large(const char *path, const char *what, size_t max, const char *hint) {
  char mib[32] = "";
  if (max >= (1u << 20)) snprintf(mib, sizeof mib, " (%zu MiB)", max >> 20);
  fprintf(stderr, "nub: %s %s, over the limit of %zu bytes%s%s\n", path, what, max, mib, hint);
  return -1;
}

int cli_read_file_max(const char *path, size_t max, const char *hint, uint8_t **data,
                      size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t n = 0, cap = 65536;
  struct stat st;
  char what[64];
  if (!f) {
    fprintf(stderr, "nub: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  /* a regular file says its size: refuse before reading, read in one go */
  if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > max) {
      fclose(f);
      snprintf(what, sizeof what, "is %llu bytes", (unsigned long long)st.st_size);
      return too_large(path, what, max, hint);
    }
    cap = (size_t)st.st_size + 1;      /* + 1: the read that sees the end */
  }
  if (!(buf = malloc(cap))) {
    fclose(f);
    fprintf(stderr, "nub: %s: out of memory\n", path);
    return -1;
  }
  for (;;) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
    if (n > max) {                     /* a pipe or device: stops at max + 1 */
      free(buf);
      fclose(f);
      snprintf(what, sizeof what, "holds more than %zu bytes", max);
      return too_large(path, what, max, hint);
    }
    if (n == cap) {
      size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) { free(buf); fclose(f); fprintf(stderr, "nub: %s: out of memory\n", path); return -1; }
      buf = nb;
      cap = ncap;
    }
  }
  if (ferror(f)) {
    fprintf(stderr, "nub: cannot read %s: %s\n", path, strerror(errno));
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  *data = buf;
  *len = n;
  return 0;
}

int cli_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "nub: cannot write %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return -1;
  }
  return 0;
}

bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

bool cli_parse_i64(const char *s, int64_t *out) {
  char *end;
  if (!s || !*s) return false;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool cli_parse_hex(const char *s, uint8_t **out, size_t *len) {
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  size_t n = strlen(s);
  if (n % 2) return false;
  uint8_t *b = malloc(n / 2 + 1);
  if (!b) return false;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) { free(b); return false; }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *out = b;
  *len = n / 2;
  return true;
}

bool cli_profile(const char *cmd, const char *name, pvm_profile *out) {
  int p = pvm_profile_by_name(name);
  if (p < 0) {
    char known[128] = "";
    for (int k = 0; k < PVM_PROFILE_COUNT; k++) {
      size_t n = strlen(known);
      snprintf(known + n, sizeof known - n, "%s%s", k ? ", " : "", pvm_profile_name((pvm_profile)k));
    }
    cli_usage_error(cmd, "unknown profile '%s' (known: %s)", name, known);
    return false;
  }
  *out = (pvm_profile)p;
  return true;
}

const pvm_engine *cli_engine(const char *name) {
  if (!strcmp(name, "interp")) return &pvm_engine_interp;
  if (!strcmp(name, "jit")) return &jit_engine;
  fprintf(stderr, "nub: unknown engine '%s' (have: interp, jit)\n", name);
  return NULL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "nub %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}
