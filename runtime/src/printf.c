/*
** printf-style formatting and logging through the log host call.  No
** floating point: the guest ISA has none, and %f would pull in soft-float.
*/
#include "nub_guest.h"

typedef struct out { char *buf; size_t cap, len; } out;

static void put(out *o, char c) {
  if (o->len + 1 < o->cap) o->buf[o->len] = c;
  o->len++;
}

static void put_padded(out *o, const char *s, size_t n, int width, int left, char pad) {
  int fill = width > (int)n ? width - (int)n : 0;
  if (!left) while (fill-- > 0) put(o, pad);
  for (size_t i = 0; i < n; i++) put(o, s[i]);
  if (left) while (fill-- > 0) put(o, ' ');
}

int nub_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap) {
  out o = {buf, cap, 0};
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') { put(&o, *f); continue; }
    int left = 0, width = 0, prec = -1, size = 0;
    char pad = ' ';
    for (f++; *f == '-' || *f == '0'; f++) {
      if (*f == '-') left = 1; else pad = '0';
    }
    for (; *f >= '0' && *f <= '9'; f++) width = width * 10 + (*f - '0');
    if (*f == '.') for (prec = 0, f++; *f >= '0' && *f <= '9'; f++) prec = prec * 10 + (*f - '0');
    for (; *f == 'l' || *f == 'z' || *f == 'j' || *f == 'h'; f++)
      if (*f != 'h') size++;
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    uint64_t u;
    int neg = 0;
    switch (*f) {
    case 'd': case 'i': {
      int64_t v = size ? va_arg(ap, int64_t) : va_arg(ap, int);
      neg = v < 0;
      u = neg ? 0 - (uint64_t)v : (uint64_t)v;
      do *--p = (char)('0' + u % 10); while (u /= 10);
      if (neg && pad == '0' && width) { put(&o, '-'); width--; }
      else if (neg) *--p = '-';
      put_padded(&o, p, (size_t)(end - p), width, left, left ? ' ' : pad);
      break;
    }
    case 'u': case 'x': case 'X': case 'p': {
      unsigned base = *f == 'u' ? 10 : 16;
      const char *digits = *f == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
      u = *f == 'p' ? (uint64_t)(uintptr_t)va_arg(ap, void *)
          : size ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
      do *--p = digits[u % base]; while (u /= base);
      if (*f == 'p') { *--p = 'x'; *--p = '0'; }
      put_padded(&o, p, (size_t)(end - p), width, left, left ? ' ' : pad);
      break;
    }
    case 'c': tmp[0] = (char)va_arg(ap, int); put_padded(&o, tmp, 1, width, left, ' '); break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      size_t n = 0;
      if (!s) s = "(null)";
      while (s[n] && (prec < 0 || n < (size_t)prec)) n++;
      put_padded(&o, s, n, width, left, ' ');
      break;
    }
    case '%': put(&o, '%'); break;
    case '\0': f--; break;
    default: put(&o, '%'); put(&o, *f); break;
    }
  }
  if (cap) buf[o.len < cap ? o.len : cap - 1] = '\0';
  return (int)o.len;
}

int nub_snprintf(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = nub_vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

static int vlog(int level, const char *fmt, va_list ap) {
  char msg[NUB_LOG_MAX];
  int n = nub_vsnprintf(msg, sizeof msg, fmt, ap);
  size_t len = n < (int)sizeof msg ? (size_t)n : sizeof msg - 1;
  nub_host_log((uint64_t)level, "", 0, msg, len);
  return n;
}

int nub_logf(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vlog(level, fmt, ap);
  va_end(ap);
  return n;
}

int nub_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vlog(NUB_LOG_INFO, fmt, ap);
  va_end(ap);
  return n;
}
