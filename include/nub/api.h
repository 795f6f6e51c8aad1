/*
** nub library conventions shared by every public header: the version,
** the export marker and a static assertion that C and C++ both accept.
*/
#ifndef NUB_API_H
#define NUB_API_H

/* The one home of the version (CMake reads it from here). */
#define NUB_VERSION_MAJOR 0
#define NUB_VERSION_MINOR 1
#define NUB_VERSION_PATCH 0
#define NUB_VERSION_STRING "0.1.0"
/* One number to compare: 0x00MMmmpp. */
#define NUB_VERSION_NUMBER \
  ((NUB_VERSION_MAJOR << 16) | (NUB_VERSION_MINOR << 8) | NUB_VERSION_PATCH)

/* The library is built with hidden visibility: only declarations marked
** NUB_API are exported from libnub.so (a CTest, `exported_symbols`,
** checks the list against these headers). */
#if defined(__GNUC__) || defined(__clang__)
#define NUB_API __attribute__((visibility("default")))
#else
#define NUB_API
#endif

/* Layout checks in the public headers, valid in C11 and C++11 alike. */
#ifdef __cplusplus
#define NUB_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NUB_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#endif
