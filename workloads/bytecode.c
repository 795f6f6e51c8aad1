/*
** A small stack-machine interpreter.  Most opcodes dispatch through a
** switch the compiler turns into a jump table; the arithmetic ones go
** through a table of function pointers, so both kinds of indirect jump
** appear in the guest code.  The program it runs: for i in 0..n,
** acc = (acc * 31 + i ^ (i >> 3)) mod 2^61-1 plus a call to a subroutine
** that counts the set bits of i by a loop.
*/
#include "workload.h"

enum { OP_PUSH, OP_LOAD, OP_STORE, OP_ARITH, OP_JNZ, OP_JMP, OP_CALL, OP_RET, OP_DUP,
       OP_DROP, OP_HALT, OP_LT };
enum { A_ADD, A_SUB, A_MUL, A_XOR, A_SHR, A_AND, A_MOD, A_COUNT };

typedef uint64_t (*arith_fn)(uint64_t a, uint64_t b);
static uint64_t f_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t f_sub(uint64_t a, uint64_t b) { return a - b; }
static uint64_t f_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t f_xor(uint64_t a, uint64_t b) { return a ^ b; }
static uint64_t f_shr(uint64_t a, uint64_t b) { return a >> (b & 63); }
static uint64_t f_and(uint64_t a, uint64_t b) { return a & b; }
static uint64_t f_mod(uint64_t a, uint64_t b) { return b ? a % b : 0; }
static arith_fn const arith[A_COUNT] = {f_add, f_sub, f_mul, f_xor, f_shr, f_and, f_mod};

typedef struct insn { uint8_t op, arg8; int32_t arg; } insn;

/* Variables: 0 = i, 1 = n, 2 = acc, 3 = bits, 4 = tmp. */
#define I(op, a) {op, 0, a}
#define AR(f) {OP_ARITH, f, 0}
static const insn program[] = {
  /* 0 */ I(OP_LOAD, 0), I(OP_LOAD, 1), I(OP_LT, 0), I(OP_JNZ, 5), I(OP_HALT, 0),
  /* 5 */ I(OP_LOAD, 2), I(OP_PUSH, 31), AR(A_MUL), I(OP_LOAD, 0), I(OP_LOAD, 0),
  /* 10 */ I(OP_PUSH, 3), AR(A_SHR), AR(A_XOR), AR(A_ADD), I(OP_PUSH, -1),
  /* 15 */ I(OP_PUSH, 3), AR(A_SHR), AR(A_MOD), I(OP_STORE, 2), I(OP_CALL, 27),
  /* 20 */ I(OP_LOAD, 0), I(OP_PUSH, 1), AR(A_ADD), I(OP_STORE, 0), I(OP_JMP, 0),
  /* 25 */ I(OP_HALT, 0), I(OP_HALT, 0),
  /* 27: bits += popcount(i) by a loop over tmp */
  /* 27 */ I(OP_LOAD, 0), I(OP_STORE, 4),
  /* 29 */ I(OP_LOAD, 4), I(OP_JNZ, 32), I(OP_RET, 0),
  /* 32 */ I(OP_LOAD, 3), I(OP_LOAD, 4), I(OP_PUSH, 1), AR(A_AND), AR(A_ADD),
  /* 37 */ I(OP_STORE, 3), I(OP_LOAD, 4), I(OP_PUSH, 1), AR(A_SHR), I(OP_STORE, 4),
  /* 42 */ I(OP_JMP, 29),
};

static int run(const insn *code, uint64_t vars[8], uint64_t *steps) {
  uint64_t stack[64], calls[16];
  int sp = 0, csp = 0;
  uint32_t pc = 0;
  uint64_t count = 0;
  for (;;) {
    const insn *in = &code[pc++];
    count++;
    switch (in->op) {
    case OP_PUSH: stack[sp++] = (uint64_t)(int64_t)in->arg; break;
    case OP_LOAD: stack[sp++] = vars[in->arg & 7]; break;
    case OP_STORE: vars[in->arg & 7] = stack[--sp]; break;
    case OP_ARITH: sp--; stack[sp - 1] = arith[in->arg8 % A_COUNT](stack[sp - 1], stack[sp]); break;
    case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
    case OP_JNZ: if (stack[--sp]) pc = (uint32_t)in->arg; break;
    case OP_JMP: pc = (uint32_t)in->arg; break;
    case OP_CALL: if (csp == 16) return -1; calls[csp++] = pc; pc = (uint32_t)in->arg; break;
    case OP_RET: if (!csp) return -1; pc = (uint32_t)calls[--csp]; break;
    case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
    case OP_DROP: sp--; break;
    case OP_HALT: *steps = count; return 0;
    default: return -1;
    }
    if (sp < 0 || sp > 60) return -1;
  }
}

uint64_t wl_bytecode(uint64_t n, uint64_t verbose) {
  uint64_t vars[8] = {0, n, 1, 0, 0, 0, 0, 0}, steps = 0;
  if (run(program, vars, &steps)) return 0;
  if (verbose)
    nub_printf("bytecode: %llu iterations, %llu steps, acc %llu, bits %llu", (unsigned long long)n,
               (unsigned long long)steps, (unsigned long long)vars[2], (unsigned long long)vars[3]);
  return vars[2] * 0x9E3779B97F4A7C15ull ^ vars[3] ^ steps << 40;
}
