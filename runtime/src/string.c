/*
** Memory and string functions for guests.  clang emits calls to memcpy,
** memset and memmove for struct copies and zeroing even under
** -ffreestanding, so these are part of every guest program.  The build
** passes -fno-builtin, so the loops below are not turned back into calls
** to themselves.  Word-at-a-time when both pointers allow it: the PVM
** charges gas per instruction, and byte loops cost 8x.
*/
#include "nub_guest.h"

typedef uint64_t __attribute__((may_alias)) word;

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
    for (; n >= 32; n -= 32, d += 32, s += 32) {
      word a = ((const word *)s)[0], b = ((const word *)s)[1];
      word c = ((const word *)s)[2], e = ((const word *)s)[3];
      ((word *)d)[0] = a; ((word *)d)[1] = b; ((word *)d)[2] = c; ((word *)d)[3] = e;
    }
    for (; n >= 8; n -= 8, d += 8, s += 8) *(word *)d = *(const word *)s;
  }
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d == s || n == 0) return dst;
  if (d < s || d >= s + n) return memcpy(dst, src, n);
  /* Overlap with dst above src: copy backwards. */
  d += n;
  s += n;
  if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0)
    for (; n >= 8; n -= 8) { d -= 8; s -= 8; *(word *)d = *(const word *)s; }
  while (n--) *--d = *--s;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  if (n >= 16) {
    word w = (unsigned char)c * 0x0101010101010101ull;
    while ((uintptr_t)d & 7) { *d++ = (unsigned char)c; n--; }
    for (; n >= 32; n -= 32, d += 32) {
      ((word *)d)[0] = w; ((word *)d)[1] = w; ((word *)d)[2] = w; ((word *)d)[3] = w;
    }
    for (; n >= 8; n -= 8, d += 8) *(word *)d = w;
  }
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

void *memchr(const void *s, int c, size_t n) {
  const unsigned char *p = s;
  for (size_t i = 0; i < n; i++)
    if (p[i] == (unsigned char)c) return (void *)(p + i);
  return NULL;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) { a++; b++; }
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
    if (!*a) return 0;
  }
  return 0;
}

char *strchr(const char *s, int c) {
  for (;; s++) {
    if (*s == (char)c) return (char *)s;
    if (!*s) return NULL;
  }
}
