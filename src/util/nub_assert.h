/*
** NUB_ASSERT(cond): an invariant the code relies on without checking it
** otherwise (e.g. the JIT's predicted code lengths).  Checked when built
** with NUB_ASSERTS (the dev preset: -DNUB_ASSERTS=ON); compiled out
** otherwise, where the condition is not even evaluated.  A failure
** prints where and aborts: it is a bug in nub, never bad input.
*/
#ifndef NUB_UTIL_ASSERT_H
#define NUB_UTIL_ASSERT_H

#ifdef NUB_ASSERTS
#include <stdio.h>
#include <stdlib.h>
#define NUB_ASSERT(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: NUB_ASSERT(%s) failed\n", __FILE__, __LINE__, #cond); \
      abort();                                                                    \
    }                                                                             \
  } while (0)
#else
#define NUB_ASSERT(cond) ((void)0)
#endif

#endif
