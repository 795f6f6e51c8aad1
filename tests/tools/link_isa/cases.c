/*
** The RISC-V side of the nub link coverage test: one function per
** instruction form (inline assembly pins the form; `.option norvc` keeps
** the 32-bit encoding, c.* names the compressed one), all called through
** run_case(index, a, b).  Compiled once by clang-19; the object is linked
** both for PVM (nub link) and as a Linux program for qemu-riscv64.
*/
#include "cases.h"

typedef unsigned long long u64;
typedef u64 (*case_fn)(u64, u64);

#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop"

/* r = a OP b, 32-bit encoding */
#define RR(op) \
  static u64 t_##op(u64 a, u64 b) { u64 r; \
    __asm__ volatile(NORVC(#op " %0, %1, %2") : "=r"(r) : "r"(a), "r"(b)); return r; }
ISA_RR(RR)

#define RI(name, op, imm) \
  static u64 t_##name(u64 a, u64 b) { u64 r; (void)b; \
    __asm__ volatile(NORVC(op " %0, %1, " #imm) : "=r"(r) : "r"(a)); return r; }
RI(addi_neg2048, "addi", -2048) RI(addi_2047, "addi", 2047) RI(slti_neg1, "slti", -1)
RI(sltiu_neg1, "sltiu", -1) RI(sltiu_1, "sltiu", 1) RI(xori_neg1, "xori", -1)
RI(ori_0x555, "ori", 0x555) RI(andi_neg16, "andi", -16) RI(slli_0, "slli", 0)
RI(slli_63, "slli", 63) RI(srli_1, "srli", 1) RI(srli_63, "srli", 63) RI(srai_1, "srai", 1)
RI(srai_63, "srai", 63) RI(addiw_7, "addiw", 7) RI(addiw_neg1, "addiw", -1)
RI(slliw_31, "slliw", 31) RI(srliw_0, "srliw", 0) RI(srliw_31, "srliw", 31)
RI(sraiw_31, "sraiw", 31) RI(rori_13, "rori", 13) RI(roriw_7, "roriw", 7)

#define R1(name, op) \
  static u64 t_##name(u64 a, u64 b) { u64 r; (void)b; \
    __asm__ volatile(NORVC(op " %0, %1") : "=r"(r) : "r"(a)); return r; }
R1(clz, "clz") R1(ctz, "ctz") R1(cpop, "cpop") R1(clzw, "clzw") R1(ctzw, "ctzw")
R1(cpopw, "cpopw") R1(sext_b, "sext.b") R1(sext_h, "sext.h") R1(zext_h, "zext.h")
R1(rev8, "rev8")

/* x0 operands */
#define RZ(name, text) \
  static u64 t_##name(u64 a, u64 b) { u64 r; (void)b; \
    __asm__ volatile(NORVC(text) : "=r"(r) : "r"(a)); return r; }
RZ(neg_sub_zero, "sub %0, zero, %1") RZ(negw_subw_zero, "subw %0, zero, %1")
RZ(snez_sltu_zero, "sltu %0, zero, %1") RZ(sltz_slt_zero, "slt %0, %1, zero")
RZ(sgtz_slt_zero, "slt %0, zero, %1") RZ(sext_w_addw_zero, "addw %0, %1, zero")
RZ(div_by_zero_reg, "div %0, %1, zero") RZ(divw_by_zero_reg, "divw %0, %1, zero")
RZ(remu_zero_dividend, "remu %0, zero, %1") RZ(mul_by_zero_reg, "mul %0, %1, zero")
static u64 t_div_zero_dividend_same_rd(u64 a, u64 b) {
  (void)b;
  __asm__ volatile(NORVC("div %0, zero, %0") : "+r"(a));
  return a;
}

/* compressed forms: a in a0, b in a1, result in a0 */
#define C2(name, text) \
  static u64 t_##name(u64 a, u64 b) { \
    register u64 x __asm__("a0") = a, y __asm__("a1") = b; \
    __asm__ volatile(text : "+r"(x) : "r"(y)); return x; }
C2(c_add, "c.add a0, a1") C2(c_sub, "c.sub a0, a1") C2(c_xor, "c.xor a0, a1")
C2(c_or, "c.or a0, a1") C2(c_and, "c.and a0, a1") C2(c_subw, "c.subw a0, a1")
C2(c_addw, "c.addw a0, a1") C2(c_mv, "c.mv a0, a1") C2(c_addi, "c.addi a0, -17")
C2(c_addiw, "c.addiw a0, 31") C2(c_li, "c.li a0, -32") C2(c_lui, "c.lui a0, 0xfffe1")
C2(c_srli, "c.srli a0, 33") C2(c_srai, "c.srai a0, 63") C2(c_andi, "c.andi a0, -3")
C2(c_slli, "c.slli a0, 17")

static u64 t_lui_pos(u64 a, u64 b) { u64 r; (void)a; (void)b; __asm__ volatile("lui %0, 0x7ffff" : "=r"(r)); return r; }
static u64 t_lui_neg(u64 a, u64 b) { u64 r; (void)a; (void)b; __asm__ volatile("lui %0, 0x80000" : "=r"(r)); return r; }
static u64 t_li_64bit(u64 a, u64 b) { u64 r; (void)b; __asm__ volatile("li %0, 0x123456789abcdef" : "=r"(r)); return r ^ a; }

/* memory: a and b written to a buffer, then a load at an offset */
static unsigned char buf[64] __attribute__((aligned(16)));
static void fill(u64 a, u64 b) {
  for (int i = 0; i < 64; i++) buf[i] = (unsigned char)(i * 37 + 11);
  __asm__ volatile("sd %1, 0(%0)\n sd %2, 8(%0)" : : "r"(buf), "r"(a), "r"(b) : "memory");
}
#define LD(name, op, off) \
  static u64 t_##name(u64 a, u64 b) { u64 r; fill(a, b); \
    __asm__ volatile(NORVC(op " %0, " #off "(%1)") : "=r"(r) : "r"(buf) : "memory"); return r; }
LD(lb, "lb", 7) LD(lh, "lh", 6) LD(lw, "lw", 4) LD(ld, "ld", 8) LD(lbu, "lbu", 15)
LD(lhu, "lhu", 14) LD(lwu, "lwu", 12) LD(lh_misaligned, "lh", 7) LD(lw_misaligned, "lw", 5)
LD(ld_misaligned, "ld", 3) LD(lhu_misaligned, "lhu", 13) LD(lwu_misaligned, "lwu", 11)
/* a store at an offset, then the two words around it */
#define ST(name, op, off) \
  static u64 t_##name(u64 a, u64 b) { u64 x, y; fill(0, 0); \
    __asm__ volatile(NORVC(op " %0, " #off "(%1)") : : "r"(a), "r"(buf) : "memory"); \
    __asm__ volatile("ld %0, 0(%2)\n ld %1, 8(%2)" : "=r"(x), "=r"(y) : "r"(buf) : "memory"); \
    return x ^ (y * 3) ^ b; }
ST(sb, "sb", 5) ST(sh_misaligned, "sh", 3) ST(sw_misaligned, "sw", 7) ST(sd_misaligned, "sd", 5)
ST(store_zero, "sd", 1)
static u64 t_c_lw_c_sw(u64 a, u64 b) {
  register u64 x __asm__("a0") = a;
  register unsigned char *p __asm__("a1") = buf;
  fill(b, a);
  __asm__ volatile("c.sw a0, 4(a1)\n c.lw a0, 0(a1)" : "+r"(x) : "r"(p) : "memory");
  return x;
}
static u64 t_c_ld_c_sd(u64 a, u64 b) {
  register u64 x __asm__("a0") = a;
  register unsigned char *p __asm__("a1") = buf;
  fill(b, b);
  __asm__ volatile("c.sd a0, 8(a1)\n c.ld a0, 8(a1)\n c.addi a0, 1" : "+r"(x) : "r"(p) : "memory");
  return x;
}
static u64 t_stack_sp(u64 a, u64 b) {
  u64 r;
  __asm__ volatile("addi sp, sp, -16\n c.sdsp %1, 8(sp)\n c.swsp %2, 4(sp)\n c.ldsp %0, 8(sp)\n"
                   " c.lwsp %2, 4(sp)\n add %0, %0, %2\n addi sp, sp, 16"
                   : "=&r"(r) : "r"(a), "r"(b) : "memory");
  return r;
}

/* branches: 1 if taken */
#define BR(name, text) \
  static u64 t_##name(u64 a, u64 b) { u64 r; \
    __asm__ volatile(NORVC("li %0, 1\n " text ", 1f\n li %0, 0\n1:") : "=&r"(r) : "r"(a), "r"(b)); \
    return r; }
BR(beq, "beq %1, %2") BR(bne, "bne %1, %2") BR(blt, "blt %1, %2") BR(bge, "bge %1, %2")
BR(bltu, "bltu %1, %2") BR(bgeu, "bgeu %1, %2") BR(beqz, "beqz %1") BR(bnez, "bnez %1")
BR(bltz, "bltz %1") BR(bgez, "bgez %1") BR(blez, "blez %1") BR(bgtz, "bgtz %1")
BR(bltu_zero_never, "bltu %1, zero") BR(bgeu_zero_always, "bgeu %1, zero")
#define CBR(name, op) \
  static u64 t_##name(u64 a, u64 b) { register u64 x __asm__("a0") = a; u64 r; (void)b; \
    __asm__ volatile("li %0, 1\n " op " a0, 1f\n li %0, 0\n1:" : "=&r"(r) : "r"(x)); return r; }
CBR(c_beqz, "c.beqz") CBR(c_bnez, "c.bnez")

/* calls, function pointers, jump tables, address formation */
__attribute__((noinline)) static u64 callee(u64 a, u64 b) { return a * 3 + (b >> 1); }
static u64 t_jal_call(u64 a, u64 b) { return callee(a, b) + callee(b, a); }
static u64 f0(u64 a) { return a + 1; }
static u64 f1(u64 a) { return a ^ 0x55; }
static u64 f2(u64 a) { return a << 3; }
static u64 (*const fns[3])(u64) = {f0, f1, f2};
static u64 t_jalr_fnptr(u64 a, u64 b) {
  u64 (*volatile f)(u64) = fns[b % 3];
  return f(a);
}
static u64 (*fns_rw[3])(u64) = {f2, f0, f1};   /* writable: .data, R_RISCV_64 */
static u64 t_jalr_fnptr_rw_data(u64 a, u64 b) {
  fns_rw[(a + 1) % 3] = fns[b % 3];               /* a jump-table address stored at run time */
  return fns_rw[a % 3](b) + fns_rw[(a + 1) % 3](a);
}
__attribute__((noinline)) static u64 sw(u64 a, u64 b) {
  switch (a & 7) {
  case 0: return b + 1;
  case 1: return b * 7;
  case 2: return b - 3;
  case 3: return b ^ 9;
  case 4: return b << 2;
  case 5: return b / 3;
  case 6: return ~b;
  default: return b % 11;
  }
}
static u64 t_switch_table(u64 a, u64 b) { return sw(a, b) + sw(b, a); }
static const u64 table[4] = {0x1111, 0x22222222, 0x333333333333ull, 0x4444444444444444ull};
static u64 t_global_table(u64 a, u64 b) { return table[a & 3] + table[b & 3] * 2; }
__attribute__((noinline)) static u64 fib(u64 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static u64 t_recursion(u64 a, u64 b) { return fib(a % 16) + b; }

/* atomics: old value and the memory after, mixed */
static u64 cell[2];
#define AMO(name, op) \
  static u64 t_##name(u64 a, u64 b) { u64 r; cell[0] = a; cell[1] = ~a; \
    __asm__ volatile(NORVC(op " %0, %2, (%1)") : "=&r"(r) : "r"(cell), "r"(b) : "memory"); \
    return r ^ (cell[0] * 5) ^ (cell[1] << 1); }
AMO(amoadd_w, "amoadd.w") AMO(amoadd_d, "amoadd.d") AMO(amoswap_w, "amoswap.w")
AMO(amoswap_d, "amoswap.d") AMO(amoand_d, "amoand.d") AMO(amoor_w, "amoor.w")
AMO(amoxor_d, "amoxor.d") AMO(amomin_w, "amomin.w") AMO(amomax_w, "amomax.w")
AMO(amominu_w, "amominu.w") AMO(amomaxu_w, "amomaxu.w") AMO(amomin_d, "amomin.d")
AMO(amomaxu_d, "amomaxu.d")
static u64 t_amoadd_rd_is_rs1(u64 a, u64 b) {
  register u64 p __asm__("a0") = (u64)cell;
  register u64 y __asm__("a1") = b;
  cell[0] = a;
  __asm__ volatile("amoadd.d a0, a1, (a0)" : "+r"(p) : "r"(y) : "memory");
  return p ^ (cell[0] << 2);
}
static u64 t_amoswap_rd_is_rs2(u64 a, u64 b) {
  register u64 p __asm__("a0") = (u64)cell;
  register u64 y __asm__("a1") = b;
  cell[0] = a;
  __asm__ volatile("amoswap.w a1, a1, (a0)" : "+r"(y) : "r"(p) : "memory");
  return y ^ (cell[0] << 2);
}
static u64 t_lr_sc_w(u64 a, u64 b) {
  u64 old, fail;
  cell[0] = a;
  __asm__ volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)" : "=&r"(old), "=&r"(fail) : "r"(cell), "r"(b) : "memory");
  return old ^ (fail << 40) ^ (cell[0] * 3);
}
static u64 t_lr_sc_d(u64 a, u64 b) {
  u64 old, fail;
  cell[0] = a;
  __asm__ volatile("lr.d %0, (%2)\n sc.d %1, %3, (%2)" : "=&r"(old), "=&r"(fail) : "r"(cell), "r"(b) : "memory");
  return old ^ (fail << 40) ^ (cell[0] * 3);
}

#define FN(name) t_##name,
static const case_fn cases[] = {ISA_CASES(FN)};
const unsigned isa_case_count = sizeof cases / sizeof cases[0];

u64 run_case(u64 i, u64 a, u64 b) {
  return i < sizeof cases / sizeof cases[0] ? cases[i](a, b) : 0xdeadull;
}
