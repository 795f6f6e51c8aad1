/*
** Private JIT structures shared by the compiler and the runtime.
*/
#ifndef NUB_JIT_INTERNAL_H
#define NUB_JIT_INTERNAL_H

#include <stddef.h>
#include <string.h>

#include "nub/jit.h"
#include "../pvm/pvm_internal.h"
#include "x86.h"

/* Host registers: rcx is the one scratch register (also the shift count
** and the guest address of an access without FSGSBASE), rsp the native stack
** with the run frame.  With FSGSBASE the guest memory base is the gs base
** (accesses are gs:[base32 + disp]) and r15 holds the gas counter; without it r15
** is the memory base ([r15 + rcx]) and gas lives in the frame. */
#define JIT_SCRATCH JIT_RCX
#define JIT_MEMBASE JIT_R15
#define JIT_GAS_REG JIT_R15
extern const jit_reg jit_guest_reg[PVM_REGS];

/* The run frame at [rsp] while guest code runs (see docs/jit.md). */
#define JIT_FRAME_GAS    0     /* int64: the gas counter */
#define JIT_FRAME_STATE  8     /* jit_vmstate * */
#define JIT_FRAME_KIND   16    /* u32: exit kind (nub_pvm_status) */
#define JIT_FRAME_DJUMP  20    /* u32: pc of the last dynamic jump */
#define JIT_FRAME_TMP    24    /* u64: entry target, then exit pc */
#define JIT_FRAME_OLDGS  32    /* u64: the gs base before entry (FSGSBASE) */
#define JIT_FRAME_TABLE  40    /* u64: address of the dynamic-jump table */
#define JIT_FRAME_SIZE   56    /* keeps rsp 16-byte aligned in guest code */
/* the caller's call pushed 8 bytes, the entry pushes 6 registers */
#define JIT_ENTRY_SAVED  6
NUB_STATIC_ASSERT((8 + 8 * JIT_ENTRY_SAVED + JIT_FRAME_SIZE) % 16 == 0,
                  "rsp is 16-byte aligned in guest code");
NUB_STATIC_ASSERT(JIT_FRAME_TABLE + 8 <= JIT_FRAME_SIZE, "the frame holds its last slot");

/* Loop entries (block heads a later branch jumps back to) start on this
** boundary: a 64-byte line (docs/jit.md, Performance). */
#define JIT_LOOP_ALIGN 64u

/* Per-run state the entry and exit code read and write (on nub_jit_run's
** stack; the fault handler reaches it through thread-local storage).  The
** registers are the VM's own (nub_pvm_vm.regs), read by the entry and
** written by the exit in place: copying them in and out cost ~30
** instructions a run, the pointer 3. */
typedef struct jit_vmstate {
  uint64_t *regs;          /* [PVM_REGS] */
  int64_t gas;
  uint8_t *mem_base;
  nub_pvm_mem *mem;
  uint32_t exit_pc;        /* pc of the instruction the exit refers to; out
                              of gas: the offset of its stub's end */
  uint32_t fault_page;     /* set by the fault handler */
  uint32_t keep_gs;        /* nonzero: the exit leaves the gs base at mem_base
                              (nub_jit_thread_keep_gs) */
} jit_vmstate;

#define JIT_ST_REGS     offsetof(jit_vmstate, regs)
#define JIT_ST_GAS      offsetof(jit_vmstate, gas)
#define JIT_ST_MEM_BASE offsetof(jit_vmstate, mem_base)
#define JIT_ST_MEM      offsetof(jit_vmstate, mem)
#define JIT_ST_EXIT_PC  offsetof(jit_vmstate, exit_pc)
#define JIT_ST_KEEP_GS  offsetof(jit_vmstate, keep_gs)

/* Side table row: the host instruction at native offset off performs the
** guest access of the instruction at pc (the handler recomputes its address). */
typedef struct jit_fault_entry {
  uint32_t off;
  uint32_t pc;
} jit_fault_entry;

/* A fault site inside a merged gas check's first block (compile.c,
** gas_pair): its exit gives back the second block's charge, gas. */
typedef struct jit_gas_refund {
  uint32_t off;
  uint32_t gas;
} jit_gas_refund;

/* The first of n rows (stride bytes each, sorted by the uint32_t at
** key_off in each) whose key is not below key; n if none is. */
static inline uint32_t jit_lower_bound(const void *rows, uint32_t n, size_t stride,
                                       size_t key_off, uint32_t key) {
  const uint8_t *base = (const uint8_t *)rows + key_off;
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2, k;
    memcpy(&k, base + (size_t)mid * stride, sizeof k);
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Not a CPU feature but a choice of the compile, in the same bits:
** merged gas checks of fall-through pairs (docs/jit.md).  nub_jit_compile
** sets it unless nub_jit_options.disable has it; jit_compile_features
** callers (tests) pass it or not. */
#define JIT_GAS_MERGE 0x100u

/* Bitmask starts are numbered in pc order; rank[w] counts those before
** pc 64 w, so the index of the start at pc is a table read and a popcount. */
static inline uint64_t jit_rank_count(const nub_pvm_blob *b) { return ((uint64_t)b->code_len >> 6) + 1; }

/* popcnt: the JIT requires it (JIT_CPU_REQUIRED, checked before any
** compile), and pvm_popcount64's portable form was 12 instructions: 1.5 %
** of a compile, in the rank table and every static branch's target. */
static inline uint32_t jit_popcount64(uint64_t x) {
  uint64_t n;
  __asm__("popcnt %1, %0" : "=r"(n) : "rm"(x) : "cc");
  return (uint32_t)n;
}

static inline void jit_rank_fill(uint32_t *rank, const nub_pvm_blob *b) {
  uint32_t n = 0;
  for (uint64_t w = 0; w < jit_rank_count(b); w++) {
    rank[w] = n;
    n += jit_popcount64(pvm_mask_word(b, w));
  }
}

/* pc must be a bitmask start. */
static inline uint32_t jit_start_index(const uint32_t *rank, const nub_pvm_blob *b, uint32_t pc) {
  uint64_t below = (1ull << (pc & 63)) - 1;
  return rank[pc >> 6] + jit_popcount64(pvm_mask_word(b, pc >> 6) & below);
}

/* Bytes of one out-of-gas stub (a call rel32). */
#define JIT_OOG_STUB 5u

/* Lazy costs (docs/jit.md "Lazy costs"): a cost table slot not yet
** placed holds 2^63, which every gas check takes as out of gas; the stub
** then exits with JIT_EXIT_PLACE (an exit kind after the statuses), and
** nub_jit_run places the block and enters it again.  A slot is read by
** a rip-relative `mov rcx, [rip + disp32]` of JIT_LOAD_SLOT_LEN bytes. */
#define JIT_COST_UNPLACED (1ull << 63)
#define JIT_EXIT_PLACE (PVM_HOST + 1)
#define JIT_LOAD_SLOT_LEN 7u

/* The entry trampoline: returns the exit kind (a nub_pvm_status).  addr
** arrives in rcx, which the trampoline leaves alone: the low half of the
** base register of an access at target that reads its address from the
** instruction before (compile.c, guest_mem). */
typedef uint32_t (*jit_enter_fn)(jit_vmstate *st, const uint8_t *target, int64_t gas,
                                 uint64_t addr);

/* Offsets below this, added to a zero-extended 32-bit base, stay inside
** the memory window and its guard (the 8 bytes of the widest access
** included): such an access needs no 32-bit sum in ecx. */
#define JIT_REUSE_SPAN ((uint32_t)PVM_MEM_GUARD - 8u)

struct nub_jit_code {
  const nub_pvm_program *prog;
  uint8_t *exec;           /* read+execute mapping */
  size_t map_size;
  size_t native_size;      /* bytes written at exec: code and jump table */
  size_t code_pages;       /* native_size in whole pages: what of the
                              mapping may be resident (the rest was never
                              touched) */
  size_t code_size;        /* bytes of instructions at exec */
  const nub_pvm_opinfo *isa;  /* the profile's opcodes, for the fault handler */
  uint32_t *body;          /* [start index]: native offset of its body */
  uint32_t *rank;          /* jit_start_index's table */
  jit_fault_entry *faults; /* sorted by off */
  uint32_t nfaults;
  jit_gas_refund *refunds; /* sorted by off: the sites in merged blocks */
  uint32_t nrefunds;
  bool gas_reg;            /* gas in r15 (FSGSBASE), else at [rsp] */
  uint32_t gas_pairs;      /* merged gas checks (tests check they exist) */
  /* lazy costs (the pipeline profiles): the cost table at exec, a slot
  ** per gas block, JIT_COST_UNPLACED until nub_jit_run places it (atomic
  ** stores: VMs on many threads share it); NULL for costs known at
  ** compile (gp07) */
  uint64_t *costs;
  uint32_t addr_reused;    /* accesses that read ecx as the one before left it */
  uint32_t off_exit_fault, off_exit_panic;
  uint32_t off_oog_stubs;  /* the out-of-gas stub of block k ends at
                              off_oog_stubs + JIT_OOG_STUB (k + 1) */
  bool ro_store_faults;     /* the profile's rule for the fault handler */
  /* the last entry (atomic, one word: VMs on many threads share code):
  ** pc << 32 | (body offset + 1), 0 = none.  A warm invoke enters at the
  ** same pc every time; the rank and bitmask count was ~40 instructions. */
  uint64_t entry_memo;
  jit_enter_fn enter;
  nub_jit_stats stats;
};

/* nub_jit_compile with the feature set given rather than detected: tests use
** it to inspect code for features this CPU lacks (never run such code). */
int jit_compile_features(const nub_pvm_program *prog, uint32_t features, nub_jit_code **out,
                         nub_pvm_error *err);
/* ... and within max_bytes of memory (0 = no bound; nub_jit_options). */
int jit_compile_bounded(const nub_pvm_program *prog, uint32_t features, size_t max_bytes,
                        nub_jit_code **out, nub_pvm_error *err);

/* Runtime hooks the generated code calls. */
uint64_t jit_rt_sbrk(nub_pvm_mem *mem, uint64_t size);

/* The guest register a load or store adds its offset (the first
** immediate) to, modulo 2^32, or -1 for an absolute address: rB in the
** two-register forms (load_ind_*, store_ind_*), rA in store_imm_ind_*,
** none in the others.  The compiler emits accesses and the fault handler
** recomputes their addresses by this one rule. */
static inline int jit_access_base(unsigned format, unsigned ra, unsigned rb) {
  return format == PVM_FMT_REG_REG_IMM ? (int)rb : format == PVM_FMT_REG_IMM_IMM ? (int)ra : -1;
}

/* Width and direction of a guest memory instruction (0 width: none). */
unsigned jit_op_width(unsigned op);
bool jit_op_is_store(unsigned op);

/* ---- the compiler's decode (A.5), one function per format ----
**
** The compile walk dispatches once per instruction, on the op (a switch
** generated from PVM_OP_LIST), and each case decodes just its format with
** the functions below, inlined: pvm_decode's switch over the format and
** the copy into a pvm_xinsn cost a second unpredictable indirect jump per
** instruction (docs/jit.md, compile cost).  They give exactly the fields
** pvm_xinsn_fill makes of pvm_decode (test_jit_decode compares the two
** over random blobs), except that registers are left as encoded: the
** compiler maps each field to a host register with one table load that
** also clamps it to 12 (A.5), and jit_decode clamps; z is the instruction's window of at least
** JIT_DECODE_WINDOW bytes (zeta: zeros past the code), l its skip. */
typedef struct jit_insn {
  uint8_t op;              /* nub_pvm_op, PVM_OP_TRAP for an invalid opcode */
  uint8_t a, b, d;         /* register fields as encoded: a nibble, or d the whole
                              third byte of REG_REG_REG (0 where the format has
                              none); A.5 clamps them to 12 (pvm_reg) */
  uint32_t imm1;           /* nu_X, low 32 bits */
  uint32_t imm2;           /* nu_Y, or the high half of load_imm_64's nu_X */
  int64_t target;          /* pc + offset in the offset formats, else 0 */
} jit_insn;

#define JIT_DECODE_WINDOW (1u + PVM_MAX_SKIP + 8)

/* n (0..4) bytes at p, sign-extended to 32 bits; 4 bytes must be readable. */
static inline uint32_t jit_imm32(const uint8_t *p, unsigned n) {
  static const uint32_t mask[5] = {0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF};
  static const uint32_t sign[5] = {0, 0x80, 0x8000, 0x800000, 0x80000000};
  uint32_t v;
  memcpy(&v, p, 4);
  return ((v & mask[n]) ^ sign[n]) - sign[n];
}


static inline int64_t jit_offset_target(uint32_t pc, uint32_t imm) {
  return (int64_t)pc + (int32_t)imm;
}

#define JIT_DEC(f) static inline __attribute__((always_inline)) void jit_dec_##f( \
    const uint8_t *z, uint32_t l, uint32_t pc, jit_insn *x)
JIT_DEC(NONE) { (void)z; (void)l; (void)pc; *x = (jit_insn){0}; }
JIT_DEC(IMM) {
  (void)pc;
  *x = (jit_insn){.imm1 = pvm_imm32_clamp(z + 1, (int)l)};
}
JIT_DEC(REG_IMM64) {
  uint64_t v;
  (void)l; (void)pc;
  memcpy(&v, z + 2, 8);
  *x = (jit_insn){.a = z[1] & 15, .imm1 = (uint32_t)v, .imm2 = (uint32_t)(v >> 32)};
}
JIT_DEC(IMM_IMM) {
  unsigned lx = pvm_min4(z[1] % 8);
  int ly = (int)l - (int)lx - 1;
  (void)pc;
  *x = (jit_insn){.imm1 = jit_imm32(z + 2, lx), .imm2 = pvm_imm32_clamp(z + 2 + lx, ly)};
}
JIT_DEC(OFFSET) {
  uint32_t i = pvm_imm32_clamp(z + 1, (int)l);
  *x = (jit_insn){.imm1 = i, .target = jit_offset_target(pc, i)};
}
JIT_DEC(REG_IMM) {
  (void)pc;
  *x = (jit_insn){.a = z[1] & 15, .imm1 = pvm_imm32_clamp(z + 2, (int)l - 1)};
}
JIT_DEC(REG_IMM_IMM) {
  unsigned lx = pvm_min4((z[1] >> 4) % 8);
  int ly = (int)l - (int)lx - 1;
  (void)pc;
  *x = (jit_insn){.a = z[1] & 15, .imm1 = jit_imm32(z + 2, lx),
                  .imm2 = pvm_imm32_clamp(z + 2 + lx, ly)};
}
JIT_DEC(REG_IMM_OFFSET) {
  jit_dec_REG_IMM_IMM(z, l, pc, x);
  x->target = jit_offset_target(pc, x->imm2);
}
JIT_DEC(REG_REG) {                          /* D = low nibble, A = high nibble */
  (void)l; (void)pc;
  *x = (jit_insn){.a = z[1] >> 4, .d = z[1] & 15};
}
JIT_DEC(REG_REG_IMM) {                      /* A = low nibble, B = high nibble */
  (void)pc;
  *x = (jit_insn){.a = z[1] & 15, .b = z[1] >> 4,
                  .imm1 = pvm_imm32_clamp(z + 2, (int)l - 1)};
}
JIT_DEC(REG_REG_OFFSET) {
  jit_dec_REG_REG_IMM(z, l, pc, x);
  x->target = jit_offset_target(pc, x->imm1);
}
JIT_DEC(REG_REG_IMM_IMM) {
  unsigned lx = pvm_min4(z[2] % 8);
  int ly = (int)l - (int)lx - 2;
  (void)pc;
  *x = (jit_insn){.a = z[1] & 15, .b = z[1] >> 4,
                  .imm1 = jit_imm32(z + 3, lx), .imm2 = pvm_imm32_clamp(z + 3 + lx, ly)};
}
JIT_DEC(REG_REG_REG) {                      /* D = whole third byte */
  (void)l; (void)pc;
  *x = (jit_insn){.a = z[1] & 15, .b = z[1] >> 4, .d = z[2]};
}
#undef JIT_DEC

/* The instruction at bitmask start pc, decoded as the compile walk does
** (its per-op dispatch, without the emission): for tests. */
void jit_decode(const nub_pvm_opinfo *isa, const nub_pvm_blob *b, uint32_t pc, jit_insn *x,
                uint32_t *len);

#endif
