/*
** nub_guest.h: the one header of the freestanding guest runtime (runtime/).
**
** A guest program is C compiled for RV64E (lp64e ABI, M, A, C, Zbb) by
** clang-19 and turned into a PVM SPI program by `nub link`
** (docs/toolchain.md: flags, register map, export marker).  This header
** fixes what the runtime offers on top (docs/runtime.md):
**
**   entry      uint64_t NAME(uint64_t a0, uint64_t a1): phi7 and phi8 on
**              entry (nub exec: the first two --args words; nub run with
**              an SPI program: the argument region's address and length),
**              the result in phi7; returning jumps to phi0 = halt.
**   host calls ecalli N with arguments in phi7..phi12 and the result in
**              phi7 (nub_host_call below).
**   log        host call NUB_HOST_LOG (100, JIP-1 "log"): phi7 = level,
**              phi8/phi9 = target (pointer, length), phi10/phi11 = message
**              (pointer, length).  nub run and the test/bench drivers
**              print the message and resume.
**   heap       malloc/calloc/realloc/free over pvm.ld's heap region
**              (zero pages of the SPI rw area; no sbrk).
**
** The same sources also compile natively (NUB_GUEST_NATIVE defined by
** the build): then the C library supplies memory and string functions
** and malloc, and the host calls are plain functions (runtime/native.c).
*/
#ifndef NUB_GUEST_H
#define NUB_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define NUB_HOST_LOG 100u    /* JIP-1 log */

enum { NUB_LOG_ERROR = 0, NUB_LOG_WARN = 1, NUB_LOG_INFO = 2, NUB_LOG_DEBUG = 3,
       NUB_LOG_TRACE = 4 };

/* NUB_EXPORT(KEY, fn); at file scope exports fn as endpoint KEY (0..255)
** of the Image: nub link finds the symbol __nub_export_KEY, an alias of fn,
** and puts a jump to it at pc 5 * KEY (docs/toolchain.md). */
#ifdef NUB_GUEST_NATIVE
#define NUB_EXPORT(key, fn) _Static_assert(1, "native builds export nothing")
#else
#define NUB_EXPORT(key, fn) \
  __asm__(".globl __nub_export_" #key "\n\t.set __nub_export_" #key ", " #fn)
#endif

/* Host calls.  The guest build compiles nub_host_callN to `ecalli N`. */
uint64_t nub_host_log(uint64_t level, const char *target, uint64_t target_len,
                      const char *msg, uint64_t msg_len);

/* printf-style logging through NUB_HOST_LOG, one message per call
** (truncated to NUB_LOG_MAX bytes).  Conversions: %d %i %u %x %X %c %s %p
** %% with flags '-', '0', width, precision for %s, and l/ll/z/j/h. */
#define NUB_LOG_MAX 512
int nub_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int nub_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nub_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap);
int nub_snprintf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef NUB_GUEST_NATIVE
#include <stdlib.h>
#include <string.h>
/* Native builds: where log messages go (NULL drops them). */
extern void (*nub_native_log_sink)(uint64_t level, const char *msg, uint64_t len);
#else
/* Freestanding C library subset (runtime/src/string.c, malloc.c). */
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* Heap: a first-fit allocator with boundary tags over toolchain/pvm.ld's
** __nub_heap_start .. __nub_heap_end (1 MiB unless the link says
** --defsym=__nub_heap_size=N).  The address space starts fresh on every
** invocation, so does the heap. */
void *malloc(size_t n);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void abort(void) __attribute__((noreturn));
#endif

/* Heap figures (guest only; natively all zero). */
typedef struct nub_heap_stats { size_t used, peak, capacity; } nub_heap_stats;
void nub_heap_stats_get(nub_heap_stats *out);

#endif
