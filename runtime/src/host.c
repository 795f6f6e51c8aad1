/*
** Host-call stubs: each is one `ecalli N` with its arguments already in
** phi7..phi12 (a0..a5) by the calling convention and the result in phi7.
** NUB_ECALLI is the encoding `nub link` translates to ecalli
** (docs/toolchain.md).
*/
#include "nub_guest.h"

#define NUB_STR2(x) #x
#define NUB_STR(x) NUB_STR2(x)
/* A custom-0 I-type instruction whose immediate is the host-call id. */
#define NUB_ECALLI(n) ".insn i 0x0b, 0, x0, x0, " NUB_STR(n)

__attribute__((noinline)) uint64_t nub_host_log(uint64_t level, const char *target,
                                                uint64_t target_len, const char *msg,
                                                uint64_t msg_len) {
  register uint64_t a0 __asm__("a0") = level;
  register const char *a1 __asm__("a1") = target;
  register uint64_t a2 __asm__("a2") = target_len;
  register const char *a3 __asm__("a3") = msg;
  register uint64_t a4 __asm__("a4") = msg_len;
  __asm__ volatile(NUB_ECALLI(100) : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4) : "memory");
  return a0;
}

void abort(void) { __builtin_trap(); }
