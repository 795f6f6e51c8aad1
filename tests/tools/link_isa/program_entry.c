/* Entries of program.c: _start for PVM (export 0, returns in a0) and,
** with -DNATIVE, a Linux _start that prints work()'s result in hex. */
typedef unsigned long long u64;
u64 work(u64);
#ifndef NATIVE
u64 _start(void) { return work(12345); }
#else
static long sys3(long n, long a, long b, long c) {
  register long a0 __asm__("a0") = a, a1 __asm__("a1") = b, a2 __asm__("a2") = c;
  register long t0 __asm__("t0") = n;   /* addi a7, t0, 0: RV64E has no a7 */
  __asm__ volatile(".word 0x00028893\n ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(t0) : "memory");
  return a0;
}
void native_main(void) {
  char o[17];
  u64 v = work(12345);
  for (int i = 0; i < 16; i++) o[i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  o[16] = '\n';
  sys3(64, 1, (long)o, 17);
  sys3(93, 0, 0, 0);
}
__asm__(".globl _start\n_start:\n call native_main\n unimp\n");
#endif
