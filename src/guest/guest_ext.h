/*
** Extension points of the guest executable.  nub-guest links
** guest_ext.c (no extensions); nub-guest-test links guest_test.c, which
** registers NUB_FN_TEST for fault injection.  Production guests can never
** run these faults: the code is not in them.
*/
#ifndef NUB_GUEST_EXT_H
#define NUB_GUEST_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "nk.h"
#include "../chan/nk_chan.h"

/* NUB_FN_TEST sub-operations: the first payload byte. */
enum {
  NK_TEST_SYSCALL   = 1,  /* a system call outside the allow-list */
  NK_TEST_SEGV      = 2,  /* a write to an unmapped address */
  NK_TEST_HANG      = 3,  /* spin forever without system calls */
  NK_TEST_BAD_MAGIC = 4,  /* response frame with a wrong magic */
  NK_TEST_BAD_LEN   = 5,  /* response frame claiming 2^64-1 payload bytes */
  NK_TEST_STALE     = 6,  /* a stale resp_seq and a wake-up, then the real answer */
  NK_TEST_BAD_BUSY  = 7,  /* busy cleared under a sleeping host, without an answer */
  NK_TEST_EXIT      = 8,  /* exit_group(3) */
  NK_TEST_WX        = 9,  /* mmap of a writable and executable page */
  NK_TEST_SCRIBBLE  = 10, /* garbage over the whole channel: control page, answer, frames */
  NK_TEST_HEAP_GARBAGE = 11, /* garbage over the directory past magic, layout id, seqlock */
  NK_TEST_FAIL_ALLOCATION = 12, /* 2 bytes {12, n}: the nth kernel table allocation fails */
  NK_TEST_FORGE_PUT_REPLY = 13, /* 2 bytes {13, k}: the next reply is forged rejection k */
  NK_TEST_SEQ_BUMP  = 14, /* keep the directory's seqlock odd and changing for NK_TEST_BUMP_MS */
  NK_TEST_FULL_TABLE = 15, /* swap in a 2^19-slot directory table whose every slot is a stranger's */
  NK_TEST_LYING_HASH = 16, /* the next PUT_CAP reply carries a hash with one bit flipped,
                              or the next REPUBLISH or PAGES_COMMIT reply one record
                              more stored */
  NK_TEST_LIBC_PATHS = 17, /* the C library's rare paths: all inside the allow-list? */
};

/* NK_TEST_FORGE_PUT_REPLY forgeries: what a hostile guest may answer to
** PUT_CAP (the host must call each a protocol error). */
enum {
  NK_FORGE_CONTROL_BYTE = 1,  /* a reason with a BEL byte in it */
  NK_FORGE_LONG_REASON  = 2,  /* a reason of NUB_PUT_CAP_REASON_MAX + 1 bytes */
  NK_FORGE_UNKNOWN_CLASS = 3, /* reason class 9 */
  NK_FORGE_NO_TEXT      = 4,  /* sentinel and class, no text */
  NK_FORGE_SHORT        = 5,  /* the sentinel and 1 byte */
  NK_FORGE_HASH_AND_MORE = 6, /* a hash followed by a reason */
  NK_FORGE_BARE_SENTINEL = 7, /* the seed's 32 x 0xFF alone: valid, no reason */
  NK_FORGE_COUNT
};

#define NK_TEST_BUMP_MS 1500u

/* The test guest's engine "test-crash-call": the interpreter, except that
** a program making this host call (ecalli) crashes the whole guest with
** SIGSEGV, from whichever lane runs it. */
#define NK_TEST_CRASH_ENGINE "test-crash-call"
#define NK_TEST_CRASH_CALL 0xDEADu

/* Called before the engine is chosen (extra engines go in here) and
** after the kernel is created (extra functions); both before lockdown.
** Return 0 or -1 with a message. */
int guest_ext_init(const nk_chan *ch, size_t io_size, char *err, size_t errlen);
int guest_ext_kernel(nk_kernel *k, char *err, size_t errlen);
/* Called after each served request, before it is answered. */
void guest_ext_after_serve(uint32_t seq);

#endif
