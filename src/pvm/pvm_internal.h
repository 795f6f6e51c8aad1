/*
** Private helpers shared by the PVM engine modules (and the JIT, which
** reads the same tables and program analysis).
*/
#ifndef NUB_PVM_INTERNAL_H
#define NUB_PVM_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "nub/pvm.h"

#define PVM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PVM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Fill err (if any) and return code. */
int pvm_fail(pvm_error *err, int code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline uint64_t pvm_le_read(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* X_n (A.16): sign-extend an n-byte little-endian value to 64 bits. */
static inline uint64_t pvm_sext(uint64_t v, unsigned n) {
  if (n == 0) return 0;
  if (n >= 8) return v;
  unsigned sh = 64 - 8 * n;
  return (uint64_t)((int64_t)(v << sh) >> sh);
}

/* ---- loaded program ---- */

/* Interpreter instruction: 24 bytes, pre-decoded so the hot loop never
** looks at instruction bytes.  Sequential flow is always index + 1:
** synthetic traps fill every place where execution would land on a byte
** that does not start a valid instruction. */
typedef struct pvm_xinsn {
  uint8_t op;              /* pvm_op (INVALID -> trap) */
  uint8_t a, b, d;         /* register indices (meaning per format) */
  uint32_t pc;
  uint32_t imm1;           /* nu_X (sign-extend from 32 bits at use) */
  uint32_t imm2;           /* nu_Y, or high half of load_imm_64 */
  uint32_t target;         /* insn index of a static target, or PVM_NO_TARGET */
  uint32_t gas;            /* charged when a block is entered here, else 0 */
} pvm_xinsn;

#define PVM_NO_TARGET 0xFFFFFFFFu

struct pvm_program {
  pvm_profile profile;
  pvm_blob blob;           /* views into bytes */
  uint8_t *bytes;          /* owned copy of the blob */
  uint32_t *jump_targets;  /* jump table resolved to insn index or NO_TARGET */
  uint8_t *block_start;    /* bitset over code_len + 1 bits (varpi) */
  pvm_xinsn *insns;        /* sorted by pc; last is a synthetic trap */
  uint32_t insn_count;
  uint32_t block_count;
};

/* Index of the instruction whose pc is the largest <= pc. */
uint32_t pvm_program_index_at(const pvm_program *prog, uint32_t pc);

/* ---- memory ---- */

#define PVM_MEM_WINDOW   (1ull << 32)
#define PVM_MEM_GUARD    (1ull << 16)  /* slack past 4 GiB for wide accesses */

struct pvm_mem {
  uint8_t *base;           /* 4 GiB window + guard, PROT_NONE where unmapped */
  uint8_t *access;         /* PVM_PAGE_COUNT + 1 entries of pvm_access */
  uint32_t mapped_pages;
  uint32_t heap_top, heap_limit;
  uint32_t lo_page, hi_page;  /* bounds of pages ever mapped, for reset */
};

/* Outcome of a guest access check: PVM_OK, or PVM_PANIC / PVM_FAULT with
** the fault page in *fault. */
int pvm_mem_check(const pvm_mem *mem, uint32_t addr, uint32_t len, bool write,
                  uint32_t *fault);

/* sbrk (A.5.9): returns the old heap top, 0 when it cannot grow. */
uint64_t pvm_mem_sbrk(pvm_mem *mem, uint64_t size);

#endif
