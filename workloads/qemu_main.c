/*
** A Linux entry for a workload's guest objects under qemu-riscv64 (user
** mode), an independent check of the RV64E build that needs no nub link:
** `qemu-riscv64 NAME.qemu N` prints nub_main(N, 0) as 16 hex digits and
** exits.  RV64E Linux takes the system call number in t0 (there is no a7).
*/
#include "nub_guest.h"

uint64_t nub_main(uint64_t n, uint64_t verbose);

/* The heap the runtime's malloc manages (pvm.ld provides it for the PVM;
** here the link points __nub_heap_start/_end at this array). */
_Alignas(4096) unsigned char qemu_heap[QEMU_HEAP_BYTES];
void qemu_cstart(const long *sp) __attribute__((noreturn));

/* The initial stack holds argc, then argv[]. */
__asm__(".globl _start\n_start:\n  mv a0, sp\n  call qemu_cstart\n");

static long sys3(long nr, long a, long b, long c) {
  register long a0 __asm__("a0") = a;
  register long a1 __asm__("a1") = b;
  register long a2 __asm__("a2") = c;
  register long t0 __asm__("t0") = nr;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(t0) : "memory");
  return a0;
}

void qemu_cstart(const long *sp) {
  char buf[24];
  const char *arg = sp[0] > 1 ? (const char *)sp[2] : "0";
  uint64_t n = 0;
  for (; *arg >= '0' && *arg <= '9'; arg++) n = n * 10 + (uint64_t)(*arg - '0');
  int len = nub_snprintf(buf, sizeof buf, "%016llx\n", (unsigned long long)nub_main(n, 0));
  sys3(64, 1, (long)buf, len);        /* write */
  sys3(93, 0, 0, 0);                  /* exit */
  __builtin_unreachable();
}
