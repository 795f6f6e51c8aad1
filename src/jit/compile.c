/*
** The compiler: one pass over the code of a loaded program, decoding each
** instruction from the blob and emitting x86-64 for it, gas blocks in
** order (their costs from the program analysis), cold stubs after the
** body, then the dynamic-jump table.  Every PVM instruction becomes a
** self-contained host sequence (no state carried across instructions,
** but for ecx from one access to the next through the same base,
** guest_mem, which an entry brings along: nub_jit_run), so execution can
** enter at any instruction's body.  Exits, fault sites and branch fixups
** name instructions by pc.
*/
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../util/nub_assert.h"
#include "jit_internal.h"

/* Guest register -> host register.  rcx (scratch), r15 (memory base) and
** rsp are the three host registers left. */
const jit_reg jit_guest_reg[PVM_REGS] = {
  JIT_RBX, JIT_RSI, JIT_RDI, JIT_RBP, JIT_R8, JIT_R9, JIT_R10,
  JIT_RAX, JIT_RDX, JIT_R11, JIT_R12, JIT_R13, JIT_R14,
};
NUB_STATIC_ASSERT(PVM_REGS + 3 == 16, "every guest register has a host register of its own");

/* ---- ISA facts, read from the one table in pvm.h ---- */

static const uint8_t op_widths[PVM_OP_COUNT] = {
#define OP_WIDTH(e, n, f, w, fl) [PVM_OP_##e] = w,
  PVM_OP_LIST(OP_WIDTH)
#undef OP_WIDTH
};
static const uint8_t op_flags[PVM_OP_COUNT] = {
#define OP_FLAGS(e, n, f, w, fl) [PVM_OP_##e] = fl,
  PVM_OP_LIST(OP_FLAGS)
#undef OP_FLAGS
};
static const uint8_t op_formats[PVM_OP_COUNT] = {
#define OP_FORMAT(e, n, f, w, fl) [PVM_OP_##e] = PVM_FMT_##f,
  PVM_OP_LIST(OP_FORMAT)
#undef OP_FORMAT
};

unsigned jit_op_width(unsigned op) { return op < PVM_OP_COUNT ? op_widths[op] : 0; }
bool jit_op_is_store(unsigned op) { return op < PVM_OP_COUNT && (op_flags[op] & PVM_OPF_STORE); }

/* ---- CPU features ---- */

static uint32_t cpu_features;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void read_cpuid(void) {
  unsigned a, b, c, d;
  uint32_t f = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_POPCNT)) f |= JIT_CPU_POPCNT;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (b & bit_BMI) f |= JIT_CPU_BMI1;
    if (b & bit_BMI2) f |= JIT_CPU_BMI2;
  }
  if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LZCNT)) f |= JIT_CPU_LZCNT;
  /* the kernel must allow wrgsbase in user mode, not only the CPU have it */
  if (getauxval(AT_HWCAP2) & 2 /* HWCAP2_FSGSBASE */) f |= JIT_CPU_FSGSBASE;
  cpu_features = f;
}

/* cpuid traps to the hypervisor in a VM, so it is asked once. */
uint32_t nub_jit_cpu_features(void) {
  pthread_once(&cpu_once, read_cpuid);
  return cpu_features;
}

/* ---- compiler state ---- */

/* The emission helpers are inlined into the cases of emit_decoded that
** use them, where the op, and with it the operand size, the widening and
** the ALU operation, is a constant and the encoders' branches on it fold
** away.  Out of line a load cost about 200 instructions of compile, and
** the helpers 2.1 M of the 16.5 M of the 229 KB program (docs/jit.md). */
#if defined(__SANITIZE_ADDRESS__)
#define EMIT_OUT_OF_LINE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMIT_OUT_OF_LINE 1
#endif
#endif
/* Sanitizer builds (dev, fuzz) leave the choice to the compiler: clang's
** ASan+UBSan build of this file took 14 minutes with every helper forced
** into every case. */
#ifdef EMIT_OUT_OF_LINE
#define EMIT_INLINE static inline
#else
#define EMIT_INLINE static inline __attribute__((always_inline))
#endif

/* An out-of-line exit, reached by a jcc whose rel32 is patched when the
** stub is emitted after the body. */
typedef struct cold_stub {
  uint32_t field;          /* offset of the jcc's rel32 */
  uint32_t idx;            /* pc of the instruction the exit reports */
  uint8_t kind;            /* nub_pvm_status */
} cold_stub;

/* A rel32 jump to the entry of the block headed by the start of index
** target (jit_start_index), which is emitted later. */
typedef struct block_fixup {
  uint32_t field;
  uint32_t target;
} block_fixup;

/* Two gas blocks whose checks are merged (docs/jit.md, "Merged checks
** at loop entries"): A's head charges A + B, and B, which only A's fall-through
** enters, has no check inline.  Below A + B the check goes to a slow copy
** of A (out of line, with A's own check) that falls into B's own check:
** the unmerged code, which is also what every other entry into A's
** instructions (resumption) and into B (branches, the jump table) uses. */
typedef struct gas_pair {
  uint32_t a_block, b_block;   /* block indices: their out-of-gas stubs */
  uint32_t a_start, b_start;   /* start indices of the two heads */
  uint32_t a_pc, b_pc;
  uint32_t slow_field;         /* the rel32 of the merged check's exit jump */
  uint32_t taken_field;        /* A's taken branch (rel32), 0: A ends in fallthrough */
  uint32_t taken_target;       /* its target pc */
  uint32_t b_entry;            /* B's own check (out of line), once emitted */
} gas_pair;

/* Fast A blocks of at most this many bytes of PVM code are merged: each
** is emitted twice (its slow copy), so this bounds the code it adds (at
** 32 the 229 KB bench program's native code grew 8.4%, at 16 1.0%, and
** the gains of bench sort and heap were the same at both). */
#define GAS_MERGE_MAX_BYTES 16u
/* check[] of a merged B: its entry is gas_pair.b_entry, not body - check. */
#define CHECK_MERGED 0xFFu

typedef struct compiler {
  jit_asm a;
  const nub_pvm_program *prog;
  uint32_t features;
  bool merge;              /* JIT_GAS_MERGE */
  bool gas_reg;            /* FSGSBASE: gas in r15, guest memory at gs:[base32 + disp] */
  bool lazy;               /* costs from the cost table (docs/jit.md "Lazy costs") */
  uint32_t n;              /* bitmask starts: the instructions with a body */
  uint32_t *body;          /* [start index]: native offset after the gas check */
  uint8_t *check;          /* [start index]: length of its gas check, 0 if none */
  uint32_t *rank;          /* jit_start_index's window table */
  uint8_t host_reg[256];   /* jit_reg of each register field as encoded
                              (jit_insn): A.5's min(12, field) and the
                              register map in one load */
  uint8_t op_of[256];      /* nub_pvm_op of each opcode byte under the
                              profile, PVM_OP_TRAP for an invalid one (the
                              same panic): all below PVM_OP_COUNT, so the
                              dispatch on it needs no range check */
  jit_fault_entry *faults;
  uint32_t nfaults, fault_cap;
  cold_stub *cold;
  uint32_t ncold, cold_cap;
  block_fixup *fixups;     /* forward jumps to block entries */
  uint32_t nfixups, fixup_cap;
  uint8_t *fwd_target;     /* [start index] bitset: a forward jump to it was emitted */
  gas_pair *pairs;         /* merged checks, in walk order */
  uint32_t npairs, pair_cap;
  uint32_t refund;         /* while a merged A is emitted: B's cost, which
                              every exit of A but the fall-through gives back */
  uint32_t merged_b_pc;    /* the head of the last merged B, UINT32_MAX
                              before any: one compare per block head */
  uint32_t addr_next;      /* without FSGSBASE: the pc of the instruction
                              that finds addr_reg's low half in ecx (the one
                              right after the access that put it there),
                              UINT32_MAX for none (guest_mem) */
  jit_reg addr_reg;
  uint32_t addr_reused;    /* accesses that found it there (for tests) */
  jit_gas_refund *refunds; /* fault sites inside merged A blocks */
  uint32_t nrefunds, refund_cap;
  uint32_t *copy_body;     /* the slow copies' body offsets, in pair order;
                              body[] takes them once nothing reads block
                              entries any more */
  uint32_t ncopy, copy_cap;
  bool oom;
  size_t walk_end;         /* the blocks' code ends here; out-of-line code follows */
  size_t code_size;        /* instructions end here; the table follows */
  size_t table_bytes;      /* the cost table's pages before the code (lazy), or 0 */
  size_t oog_stubs;        /* offset of the out-of-gas stubs (emit_oog_stubs) */
  jit_label exits[JIT_EXIT_PLACE + 1];
  jit_label origin, enter, sbrk_thunk, djump_out, djump_bad, table;
} compiler;

/* Room for element n of one of the compiler's arrays: the check inline,
** the growth (doubling, counted against the limit) out of line. */
static inline bool room_for(compiler *c, void **p, uint32_t *cap, uint32_t n, size_t elem) {
  if (__builtin_expect(n < *cap, 1)) return true;
  if (jit_asm_grow_array(&c->a, p, cap, (uint64_t)n + 1, elem)) return true;
  c->oom = true;
  return false;
}

/* if (cc) exit with kind at idx, out of line */
static void cold_exit(compiler *c, jit_cc cc, uint32_t idx, nub_pvm_status kind) {
  size_t field = jit_x86_jcc_forward(&c->a, cc);
  if (room_for(c, (void **)&c->cold, &c->cold_cap, c->ncold, sizeof *c->cold))
    c->cold[c->ncold++] = (cold_stub){(uint32_t)field, idx, (uint8_t)kind};
}

EMIT_INLINE void note_fault_site(compiler *c, uint32_t idx) {
  if (room_for(c, (void **)&c->faults, &c->fault_cap, c->nfaults, sizeof *c->faults))
    c->faults[c->nfaults++] = (jit_fault_entry){(uint32_t)jit_asm_pos(&c->a), idx};
  if (__builtin_expect(c->refund != 0, 0) &&
      room_for(c, (void **)&c->refunds, &c->refund_cap, c->nrefunds, sizeof *c->refunds))
    c->refunds[c->nrefunds++] = (jit_gas_refund){(uint32_t)jit_asm_pos(&c->a), c->refund};
}

/* rcx = the cost table's slot (a rip-relative load: the table is the
** mapping's first pages, compile_body) */
static void load_slot(compiler *c, uint32_t slot) {
  jit_asm *a = &c->a;
  uint8_t *p = jit_ins_begin(a);
  *p++ = (uint8_t)(0x40 | JIT_REX_W | ((JIT_SCRATCH & 8) ? JIT_REX_R : 0));
  *p++ = 0x8B;                             /* mov r64, [rip + disp32] */
  *p++ = (uint8_t)((JIT_SCRATCH & 7) << 3 | 5);
  int64_t disp = (int64_t)slot * 8 - (int64_t)(jit_asm_pos(a) + JIT_LOAD_SLOT_LEN);
  jit_ins_end(a, jit_put32(p, (uint32_t)(int32_t)disp));
}

/* gas += v (v <= INT32_MAX): a refund of a merged check's charge. */
static void gas_add(compiler *c, uint32_t v) {
  if (c->gas_reg) jit_x86_alu_ri(&c->a, JIT_ADD, true, JIT_GAS_REG, (int32_t)v);
  else jit_x86_alu_mi(&c->a, JIT_ADD, true, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), (int32_t)v);
}

/* Inline exit: rcx = the instruction's pc, then the shared exit of kind.
** Inside a merged A (a host call) B's charge is given back first. */
static void exit_now(compiler *c, uint32_t idx, nub_pvm_status kind) {
  if (c->refund) gas_add(c, c->refund);
  jit_x86_mov_ri(&c->a, JIT_SCRATCH, idx);
  jit_x86_jmp(&c->a, c->exits[kind]);
}

/* ---- shared code at the start of every program ---- */

/* Lazy costs: the cost table, the mapping's first pages (kept read-write
** when the code after them turns read+execute, map_code): a slot per gas
** block, the cost or JIT_COST_UNPLACED until nub_jit_run places it. */
static void emit_cost_table(compiler *c) {
  jit_asm *a = &c->a;
  const nub_pvm_program *p = c->prog;
  for (uint32_t k = 0; k < p->block_count; k++) {
    uint32_t cost = pvm_block_cost_known(p, k);
    uint64_t v = cost ? cost : JIT_COST_UNPLACED;
    uint8_t *at = jit_ins_begin(a);          /* (JIT_INS_MAX >= 8 bytes of room) */
    memcpy(at, &v, 8);
    jit_ins_end(a, at + 8);
  }
  jit_asm_align(a, PVM_PAGE_SIZE);         /* (int3s: data, never executable) */
  c->table_bytes = jit_asm_pos(a);
}

/* Block k's cost if its check takes it as an immediate, else 0 (the cost
** table's slot): every block under gp07; under lazy costs the blocks the
** table was written with placed (a snapshot: placing goes on on other
** threads while this compiles, and a block's stub, check and refunds
** must all take the same form). */
static uint32_t imm_cost(const compiler *c, uint32_t k) {
  if (!c->lazy) return c->prog->blocks[k].cost;
  uint64_t v;
  if (c->a.oom) return 0;                  /* (the code is dropped) */
  memcpy(&v, c->a.code + 8 * (size_t)k, 8);
  return v <= INT32_MAX ? (uint32_t)v : 0;
}


/* uint32_t enter(jit_vmstate *st (rdi), target (rsi), int64 gas (rdx),
**                 addr (rcx: left alone for the body, guest_mem)) */
static void emit_enter(compiler *c) {
  static const jit_reg saved[JIT_ENTRY_SAVED] = {JIT_RBX, JIT_RBP, JIT_R12,
                                                 JIT_R13, JIT_R14, JIT_R15};
  jit_asm *a = &c->a;
  jit_label_bind(a, c->enter);
  for (unsigned i = 0; i < JIT_ENTRY_SAVED; i++) jit_x86_push(a, saved[i]);
  jit_x86_alu_ri(a, JIT_SUB, true, JIT_RSP, JIT_FRAME_SIZE);
  jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), JIT_RDX);
  jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_STATE), JIT_RDI);
  jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_TMP), JIT_RSI);
  jit_x86_lea_label(a, JIT_RSI, c->table);
  jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_TABLE), JIT_RSI);
  jit_x86_load(a, JIT_U64, JIT_MEMBASE, jit_mem_bd(JIT_RDI, JIT_ST_MEM_BASE));
  if (c->gas_reg) {                        /* gs base = memory, r15 = gas */
    /* a wrgsbase costs ~12 ns here: none when the base is the memory
    ** already (a thread that keeps it, nub_jit_thread_keep_gs), and the
    ** exit restores only a base that differs from the one it finds */
    jit_label same = jit_label_new(a), restore = jit_label_new(a);
    jit_x86_rdgsbase(a, JIT_RSI);
    jit_x86_alu_rr(a, JIT_CMP, true, JIT_RSI, JIT_MEMBASE);
    jit_x86_jcc8(a, JIT_CC_E, same);
    jit_x86_wrgsbase(a, JIT_MEMBASE);
    jit_label_bind(a, same);
    jit_x86_alu_mi(a, JIT_CMP, false, jit_mem_bd(JIT_RDI, JIT_ST_KEEP_GS), 0);
    jit_x86_jcc8(a, JIT_CC_E, restore);
    jit_x86_mov_rr(a, true, JIT_RSI, JIT_MEMBASE);
    jit_label_bind(a, restore);
    jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_OLDGS), JIT_RSI);
    jit_x86_mov_rr(a, true, JIT_GAS_REG, JIT_RDX);
  }
  int last = -1;
  jit_x86_load(a, JIT_U64, JIT_RDI, jit_mem_bd(JIT_RDI, JIT_ST_REGS));   /* the VM's registers */
  for (int r = 0; r < PVM_REGS; r++) {     /* the register holding them goes last */
    if (jit_guest_reg[r] == JIT_RDI) { last = r; continue; }
    jit_x86_load(a, JIT_U64, jit_guest_reg[r], jit_mem_bd(JIT_RDI, (int32_t)(8 * r)));
  }
  if (last >= 0) jit_x86_load(a, JIT_U64, JIT_RDI, jit_mem_bd(JIT_RDI, (int32_t)(8 * last)));
  jit_x86_jmp_m(a, jit_mem_bd(JIT_RSP, JIT_FRAME_TMP));
}

/* One entry per exit kind, then the common path that stores the guest
** state and returns the kind.  rcx holds the instruction's pc. */
static void emit_exits(compiler *c) {
  static const jit_reg saved[JIT_ENTRY_SAVED] = {JIT_R15, JIT_R14, JIT_R13,
                                                 JIT_R12, JIT_RBP, JIT_RBX};
  jit_asm *a = &c->a;
  jit_label common = jit_label_new(a);
  int last = c->lazy ? JIT_EXIT_PLACE : PVM_HOST;
  for (int k = 0; k <= last; k++) {
    jit_label_bind(a, c->exits[k]);
    jit_x86_store_imm(a, 4, jit_mem_bd(JIT_RSP, JIT_FRAME_KIND), k);
    if (k < last) jit_x86_jmp(a, common);
  }
  jit_label_bind(a, common);
  if (c->gas_reg) jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), JIT_GAS_REG);
  jit_x86_store(a, 8, jit_mem_bd(JIT_RSP, JIT_FRAME_TMP), JIT_SCRATCH);
  jit_x86_load(a, JIT_U64, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_STATE));
  jit_x86_load(a, JIT_U64, JIT_SCRATCH, jit_mem_bd(JIT_SCRATCH, JIT_ST_REGS));
  for (int r = 0; r < PVM_REGS; r++)
    jit_x86_store(a, 8, jit_mem_bd(JIT_SCRATCH, (int32_t)(8 * r)), jit_guest_reg[r]);
  jit_x86_load(a, JIT_U64, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_STATE));
  jit_x86_load(a, JIT_U64, JIT_RAX, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS));
  jit_x86_store(a, 8, jit_mem_bd(JIT_SCRATCH, JIT_ST_GAS), JIT_RAX);
  jit_x86_load(a, JIT_U32, JIT_RAX, jit_mem_bd(JIT_RSP, JIT_FRAME_TMP));
  jit_x86_store(a, 4, jit_mem_bd(JIT_SCRATCH, JIT_ST_EXIT_PC), JIT_RAX);
  if (c->gas_reg) {                        /* the base to leave, if it is not */
    jit_label kept = jit_label_new(a);
    jit_x86_load(a, JIT_U64, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_OLDGS));
    jit_x86_rdgsbase(a, JIT_RAX);
    jit_x86_alu_rr(a, JIT_CMP, true, JIT_RAX, JIT_SCRATCH);
    jit_x86_jcc8(a, JIT_CC_E, kept);
    jit_x86_wrgsbase(a, JIT_SCRATCH);
    jit_label_bind(a, kept);
  }
  jit_x86_load(a, JIT_U32, JIT_RAX, jit_mem_bd(JIT_RSP, JIT_FRAME_KIND));
  jit_x86_alu_ri(a, JIT_ADD, true, JIT_RSP, JIT_FRAME_SIZE);
  for (unsigned i = 0; i < JIT_ENTRY_SAVED; i++) jit_x86_pop(a, saved[i]);
  jit_x86_ret(a);
}

/* Out-of-gas exits: one `call oog_common` (JIT_OOG_STUB bytes) per gas
** block, in block order, before the body, so a block's check jumps
** straight to its stub: no list of pending stubs, no patching.  The common
** part turns the return address into its offset in the code, which
** nub_jit_run maps back to the block.  A stub of `mov ecx, pc; jmp exit`
** per block after the body cost 10 bytes, 5 more than this, and the
** cold-list work (a third of the blocks' compile instructions). */
static void emit_oog_stubs(compiler *c) {
  jit_asm *a = &c->a;
  const nub_pvm_program *p = c->prog;
  jit_label common = jit_label_new(a), slot_common = jit_label_new(a), unplaced = jit_label_new(a);
  if (c->lazy) {
    /* a check from the cost table: rcx is its charge; an unplaced
    ** block's (JIT_COST_UNPLACED, negative) is given back here, so that
    ** the exit's gas is what it was whatever the slot holds by then, and
    ** exits to be placed (a placed one never changes: nub_jit_run gives
    ** it back from the slot, as an immediate's) */
    jit_label_bind(a, slot_common);
    jit_x86_test_rr(a, true, JIT_SCRATCH, JIT_SCRATCH);
    jit_x86_jcc8(a, JIT_CC_NS, common);
    if (c->gas_reg) jit_x86_alu_rr(a, JIT_ADD, true, JIT_GAS_REG, JIT_SCRATCH);
    else jit_x86_alu_mr(a, JIT_ADD, true, jit_mem_bd(JIT_RSP, 8 + JIT_FRAME_GAS), JIT_SCRATCH);
    jit_x86_jmp(a, unplaced);
  }
  jit_label_bind(a, common);
  for (int k = PVM_OOG; ; k = JIT_EXIT_PLACE) {
    jit_x86_lea_label(a, JIT_SCRATCH, c->origin);        /* the mapping's start */
    jit_x86_alu_mr(a, JIT_SUB, true, jit_mem_bd(JIT_RSP, 0), JIT_SCRATCH);
    jit_x86_pop(a, JIT_SCRATCH);
    jit_x86_jmp(a, c->exits[k]);
    if (k == JIT_EXIT_PLACE || !c->lazy) break;
    jit_label_bind(a, unplaced);
  }
  c->oog_stubs = jit_asm_pos(a);
  if (p->unrunnable || a->oom) return;
  size_t to = a->labels[common], to_slot = c->lazy ? a->labels[slot_common] : to;
  for (uint32_t k = 0; k < p->block_count && !a->oom; k++) {   /* call common */
    size_t t = imm_cost(c, k) ? to : to_slot;
    uint8_t *at = jit_ins_begin(a);
    at[0] = 0xE8;
    jit_put32(at + 1, (uint32_t)(int32_t)((int64_t)t - (int64_t)(jit_asm_pos(a) + JIT_OOG_STUB)));
    jit_ins_end(a, at + JIT_OOG_STUB);
  }
}

/* Dynamic jumps that miss the table: rcx = the address rotated right by
** one.  The halt address is the only miss that is not a panic. */
static void emit_djump_stubs(compiler *c) {
  jit_asm *a = &c->a;
  jit_label halt = jit_label_new(a);
  jit_label_bind(a, c->djump_out);
  jit_x86_alu_ri(a, JIT_CMP, false, JIT_SCRATCH, (int32_t)(PVM_HALT_ADDRESS >> 1));
  jit_x86_jcc8(a, JIT_CC_E, halt);
  jit_label_bind(a, c->djump_bad);
  jit_x86_load(a, JIT_U32, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_DJUMP));
  jit_x86_jmp(a, c->exits[PVM_PANIC]);
  jit_label_bind(a, halt);
  jit_x86_load(a, JIT_U32, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_DJUMP));
  jit_x86_jmp(a, c->exits[PVM_HALT]);
}

/* sbrk: rcx = size in, old top out.  Saves the caller-saved registers
** that hold guest values around a call into C. */
static void emit_sbrk_thunk(compiler *c) {
  enum { SAVED = 8, FRAME = 8 + 8 * SAVED + 8 };   /* pad, saved, return address */
  static const jit_reg saved[SAVED] = {JIT_RAX, JIT_RDX, JIT_RSI, JIT_RDI,
                                       JIT_R8, JIT_R9, JIT_R10, JIT_R11};
  NUB_STATIC_ASSERT(FRAME % 16 == 0, "the C call is made with rsp 16-byte aligned");
  jit_asm *a = &c->a;
  jit_label_bind(a, c->sbrk_thunk);
  for (unsigned i = 0; i < SAVED; i++) jit_x86_push(a, saved[i]);
  jit_x86_alu_ri(a, JIT_SUB, true, JIT_RSP, 8);          /* realign for the call */
  jit_x86_load(a, JIT_U64, JIT_RDI, jit_mem_bd(JIT_RSP, FRAME + JIT_FRAME_STATE));
  jit_x86_load(a, JIT_U64, JIT_RDI, jit_mem_bd(JIT_RDI, JIT_ST_MEM));
  jit_x86_mov_rr(a, true, JIT_RSI, JIT_SCRATCH);
  jit_x86_mov_ri(a, JIT_RAX, (uint64_t)(uintptr_t)&jit_rt_sbrk);
  jit_x86_call_r(a, JIT_RAX);
  jit_x86_mov_rr(a, true, JIT_SCRATCH, JIT_RAX);
  jit_x86_alu_ri(a, JIT_ADD, true, JIT_RSP, 8);
  for (unsigned i = SAVED; i-- > 0;) jit_x86_pop(a, saved[i]);
  jit_x86_ret(a);
}

/* ---- instruction helpers ---- */

#define R(x) jit_guest_reg[x]

static inline int32_t simm(uint32_t v) { return (int32_t)v; }
static inline uint64_t sext(uint32_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* d = v; zero by xor (2-3 bytes against 5-6): no flags are live between
** PVM instructions. */
EMIT_INLINE void load_imm(jit_asm *a, jit_reg d, uint64_t v) {
  if (v == 0) jit_x86_alu_rr(a, JIT_XOR, false, d, d);
  else jit_x86_mov_ri(a, d, v);
}

EMIT_INLINE void mov64(jit_asm *a, jit_reg d, jit_reg s) {
  if (d != s) jit_x86_mov_rr(a, true, d, s);
}

EMIT_INLINE void sx32(jit_asm *a, jit_reg d, jit_reg s) { jit_x86_ext_rr(a, JIT_I32, d, s); }

/* d = a op b in 64 or 32 bits (32: sign-extended result). */
EMIT_INLINE void alu3(jit_asm *a, jit_alu op, bool w, bool commutative, jit_reg d,
                 jit_reg x, jit_reg y) {
  if (d == x) {
    jit_x86_alu_rr(a, op, w, d, y);
  } else if (d == y && commutative) {
    jit_x86_alu_rr(a, op, w, d, x);
  } else if (d == y) {                     /* d = x - d */
    jit_x86_unary(a, JIT_NEG, w, d);
    jit_x86_alu_rr(a, JIT_ADD, w, d, x);
  } else {
    jit_x86_mov_rr(a, w, d, x);
    jit_x86_alu_rr(a, op, w, d, y);
  }
  if (!w) sx32(a, d, d);
}

EMIT_INLINE void mul3(jit_asm *a, bool w, jit_reg d, jit_reg x, jit_reg y) {
  if (d == y) {
    jit_x86_imul_rr(a, w, d, x);
  } else {
    if (d != x) jit_x86_mov_rr(a, w, d, x);
    jit_x86_imul_rr(a, w, d, y);
  }
  if (!w) sx32(a, d, d);
}

/* d = cond ? 1 : 0 after a compare already emitted. */
EMIT_INLINE void set_flag(jit_asm *a, jit_cc cc, jit_reg d) {
  jit_x86_setcc(a, cc, JIT_SCRATCH);
  jit_x86_ext_rr(a, JIT_U8, d, JIT_SCRATCH);
}

EMIT_INLINE void cmp_imm(jit_asm *a, jit_reg r, uint32_t imm) {
  if (imm == 0) jit_x86_test_rr(a, true, r, r);
  else jit_x86_alu_ri(a, JIT_CMP, true, r, simm(imm));
}

/* d = f(x, imm) for and/or/xor with a sign-extended immediate. */
EMIT_INLINE void alu_imm(jit_asm *a, jit_alu op, jit_reg d, jit_reg x, uint32_t imm) {
  if (op == JIT_AND && (imm == 0xFF || imm == 0xFFFF)) {   /* byte and half masks */
    jit_x86_ext_rr(a, imm == 0xFF ? JIT_U8 : JIT_U16, d, x);   /* one movzx, not mov + and */
    return;
  }
  mov64(a, d, x);
  jit_x86_alu_ri(a, op, true, d, simm(imm));
}

/* d = x shifted by an immediate; 32-bit forms sign-extend the result. */
EMIT_INLINE void shift_imm(jit_asm *a, jit_shift op, bool w, jit_reg d, jit_reg x, uint32_t n) {
  n &= w ? 63 : 31;
  if (!w && n && op == JIT_SHR) {          /* bit 31 is 0: the zero-extension is the sign's */
    jit_x86_mov_rr(a, false, d, x);
    jit_x86_shift_ri(a, JIT_SHR, false, d, (uint8_t)n);
    return;
  }
  if (!w && op == JIT_SAR) {               /* sar of the sign-extended value: 2, not 3 */
    sx32(a, d, x);
    if (n) jit_x86_shift_ri(a, JIT_SAR, true, d, (uint8_t)n);
    return;
  }
  if (!w) {
    if (n) {
      jit_x86_mov_rr(a, false, d, x);
      jit_x86_shift_ri(a, op, false, d, (uint8_t)n);
      sx32(a, d, d);
    } else {
      sx32(a, d, x);
    }
    return;
  }
  mov64(a, d, x);
  if (n) jit_x86_shift_ri(a, op, true, d, (uint8_t)n);
}

/* d = value shifted by count (registers), BMI2. */
EMIT_INLINE void shiftx(jit_asm *a, jit_shiftx op, bool w, jit_reg d, jit_reg value, jit_reg count) {
  jit_x86_shiftx(a, op, w, d, value, count);
  if (!w) sx32(a, d, d);
}

/* d = rotate(value, rcx) by cl. */
EMIT_INLINE void rotate_cl(jit_asm *a, jit_shift op, bool w, jit_reg d, jit_reg count,
                      jit_reg value_reg, bool value_is_imm, uint32_t imm) {
  jit_x86_mov_rr(a, true, JIT_SCRATCH, count);
  if (value_is_imm) jit_x86_mov_ri(a, d, w ? sext(imm) : imm);
  else if (d != value_reg) jit_x86_mov_rr(a, w, d, value_reg);
  jit_x86_shift_cl(a, op, w, d);
  if (!w) sx32(a, d, d);
}

/* d = (u)max/min: compare, then cmov (into y's register when d is y). */
EMIT_INLINE void select3(jit_asm *a, jit_cc take_y, jit_reg d, jit_reg x, jit_reg y) {
  jit_x86_alu_rr(a, JIT_CMP, true, x, y);
  if (d == y) {                            /* d holds y already: take x unless cc */
    jit_x86_cmov(a, (jit_cc)(take_y ^ 1), true, d, x);
    return;
  }
  mov64(a, d, x);                          /* mov leaves the flags */
  jit_x86_cmov(a, take_y, true, d, y);
}

/* Division and remainder with every GP corner case handled in code, so
** the CPU never raises #DE.  Its labels are closed at its end (patched and
** forgotten: 16 bytes per div/rem otherwise), as leading_zeros' are: the
** only emitters that make labels, so the walk needs no label count check
** around every instruction. */
static void divrem(jit_asm *a, bool w, bool is_signed, bool rem, jit_reg d, jit_reg x,
                   jit_reg y) {
  uint32_t labels = a->nlabels, fixups = a->nfixups;
  jit_label zero = jit_label_new(a), done = jit_label_new(a), minus1 = jit_label_new(a);
  jit_x86_test_rr(a, w, y, y);
  jit_x86_jcc8(a, JIT_CC_E, zero);
  if (is_signed) {
    jit_x86_alu_ri(a, JIT_CMP, w, y, -1);
    jit_x86_jcc8(a, JIT_CC_E, minus1);
  }
  jit_x86_push(a, JIT_RAX);
  jit_x86_push(a, JIT_RDX);
  jit_x86_mov_rr(a, w, JIT_SCRATCH, y);
  jit_x86_mov_rr(a, w, JIT_RAX, x);
  if (is_signed) jit_x86_cqo(a, w);
  else jit_x86_alu_rr(a, JIT_XOR, false, JIT_RDX, JIT_RDX);
  jit_x86_unary(a, is_signed ? JIT_IDIV : JIT_DIV, w, JIT_SCRATCH);
  jit_x86_mov_rr(a, w, JIT_SCRATCH, rem ? JIT_RDX : JIT_RAX);
  jit_x86_pop(a, JIT_RDX);
  jit_x86_pop(a, JIT_RAX);
  if (w) jit_x86_mov_rr(a, true, d, JIT_SCRATCH);
  else sx32(a, d, JIT_SCRATCH);
  jit_x86_jmp8(a, done);
  if (is_signed) {                         /* y = -1: x / -1 = -x (wrapping), x % -1 = 0 */
    jit_label_bind(a, minus1);
    if (rem) {
      jit_x86_alu_rr(a, JIT_XOR, false, d, d);
    } else {
      jit_x86_mov_rr(a, w, JIT_SCRATCH, x);
      jit_x86_unary(a, JIT_NEG, w, JIT_SCRATCH);
      if (w) jit_x86_mov_rr(a, true, d, JIT_SCRATCH);
      else sx32(a, d, JIT_SCRATCH);
    }
    jit_x86_jmp8(a, done);
  }
  jit_label_bind(a, zero);                 /* y = 0: quotient all ones, remainder x */
  if (!rem) jit_x86_mov_ri(a, d, UINT64_MAX);
  else if (w) mov64(a, d, x);
  else sx32(a, d, x);
  jit_label_bind(a, done);
  jit_asm_close_scope(a, labels, fixups);
}

/* High 64 bits of x * y: signed x signed, unsigned x unsigned, or signed
** x unsigned (the unsigned product minus y when x is negative). */
static void mul_upper(jit_asm *a, nub_pvm_op op, jit_reg d, jit_reg x, jit_reg y) {
  if (op == PVM_OP_MUL_UPPER_U_U) {
    /* BMI2 mulx multiplies by rdx and writes two registers of our choice:
    ** 1-4 register moves against 9 instructions with two pushes and pops
    ** (the hottest block of bench programs ed25519 is a run of these) */
    if (x == JIT_RDX || y == JIT_RDX) {
      jit_x86_mulx(a, d, JIT_SCRATCH, x == JIT_RDX ? y : x);
    } else if (d == JIT_RDX) {
      jit_x86_mov_rr(a, true, JIT_RDX, x);
      jit_x86_mulx(a, JIT_RDX, JIT_SCRATCH, y);
    } else {                                 /* rcx keeps the guest's rdx */
      jit_x86_mov_rr(a, true, JIT_SCRATCH, JIT_RDX);
      jit_x86_mov_rr(a, true, JIT_RDX, x);
      jit_x86_mulx(a, d, JIT_RDX, y);
      jit_x86_mov_rr(a, true, JIT_RDX, JIT_SCRATCH);
    }
    return;
  }
  jit_x86_push(a, JIT_RAX);
  jit_x86_push(a, JIT_RDX);
  jit_x86_mov_rr(a, true, JIT_SCRATCH, y);
  jit_x86_mov_rr(a, true, JIT_RAX, x);
  if (op == PVM_OP_MUL_UPPER_S_U) {
    jit_x86_mov_rr(a, true, JIT_RDX, JIT_RAX);
    jit_x86_shift_ri(a, JIT_SAR, true, JIT_RDX, 63);
    jit_x86_alu_rr(a, JIT_AND, true, JIT_RDX, JIT_SCRATCH);
    jit_x86_push(a, JIT_RDX);
  }
  jit_x86_unary(a, op == PVM_OP_MUL_UPPER_S_S ? JIT_IMUL1 : JIT_MUL, true, JIT_SCRATCH);
  if (op == PVM_OP_MUL_UPPER_S_U) {
    jit_x86_pop(a, JIT_SCRATCH);
    jit_x86_alu_rr(a, JIT_SUB, true, JIT_RDX, JIT_SCRATCH);
  }
  jit_x86_mov_rr(a, true, JIT_SCRATCH, JIT_RDX);
  jit_x86_pop(a, JIT_RDX);
  jit_x86_pop(a, JIT_RAX);
  jit_x86_mov_rr(a, true, d, JIT_SCRATCH);
}

/* Leading zeros with lzcnt, or bsr: bsr gives the top set bit b and
** leaves ZF for zero input; width-1-b = b ^ (width-1), and zero maps to
** (2*width-1) ^ (width-1) = width. */
static void leading_zeros(compiler *c, bool w, jit_reg d, jit_reg x) {
  jit_asm *a = &c->a;
  if (c->features & JIT_CPU_LZCNT) {
    jit_x86_bitop(a, JIT_LZCNT, w, d, x);
    return;
  }
  uint32_t labels = a->nlabels, fixups = a->nfixups;
  jit_label nonzero = jit_label_new(a);
  unsigned top = w ? 63 : 31;
  jit_x86_bitop(a, JIT_BSR, w, JIT_SCRATCH, x);
  jit_x86_jcc8(a, JIT_CC_NE, nonzero);
  jit_x86_mov_ri(a, JIT_SCRATCH, 2 * top + 1);
  jit_label_bind(a, nonzero);
  jit_x86_alu_ri(a, JIT_XOR, false, JIT_SCRATCH, (int32_t)top);
  jit_x86_mov_rr(a, false, d, JIT_SCRATCH);
  jit_asm_close_scope(a, labels, fixups);
}

/* Guest address into ecx: base register (host; JIT_NOREG: none) +
** offset, mod 2^32. */
EMIT_INLINE void guest_addr(jit_asm *a, jit_reg base, uint32_t offset) {
  if (base == JIT_NOREG) jit_x86_mov_ri(a, JIT_SCRATCH, offset);
  else if (offset == 0) jit_x86_mov_rr(a, false, JIT_SCRATCH, base);
  else jit_x86_lea(a, false, JIT_SCRATCH, jit_mem_bd(base, simm(offset)));
}

/* The operand of a guest access at base + off (mod 2^32), noted as a
** fault site of idx; next: the pc after it.  With FSGSBASE it is one
** instruction: under the address-size prefix the CPU sums base32 + disp32
** modulo 2^32 and adds the gs base to the zero-extended result, which is
** the guest's wrap, so no address goes through ecx (one host instruction
** less per access; the fault handler recomputes the address from the
** decoded instruction, jit_access_base).  Without it: base32 into ecx,
** then [r15 + rcx + off] for 0 <= off < JIT_REUSE_SPAN, and the next
** instruction, if it is an access through the same base, finds ecx set
** (four words copied through two bases: 2 host instructions instead of
** 8; bench/memcpy.s's loop 0.96 -> 0.75 ms in a hand-written copy).  Past 2^32 such a sum lands
** in the window's 64 KiB guard, where the wrapped address (below
** PVM_GUARD_END, never accessible) would have faulted too, and the
** handler reports that one.  Any other offset: the address into ecx
** (`lea`), then [r15 + rcx].  An entry into the middle of a block
** brings ecx with it (nub_jit_run, entry_addr).  gs is c->gas_reg, a
** constant where load and store call this: the operand's form is then
** known to the encoder, which folds its tests of the segment, the index
** and the base (one operand for both forms left them to run time: the
** 229 KB compile took 2 % more instructions with FSGSBASE, 6 % more
** without). */
EMIT_INLINE jit_mem guest_mem(compiler *c, bool gs, uint32_t idx, uint32_t next, jit_reg base,
                              uint32_t off) {
  if (gs) {
    note_fault_site(c, idx);
    jit_x86_addr32(&c->a);
    return (jit_mem){(uint8_t)base, JIT_NOREG, 0, simm(off), JIT_SEG_GS};
  }
  if (base != JIT_NOREG && off < JIT_REUSE_SPAN) {
    if (c->addr_next != idx || c->addr_reg != base) jit_x86_mov_rr(&c->a, false, JIT_SCRATCH, base);
    else c->addr_reused++;
    note_fault_site(c, idx);
    c->addr_next = next;
    c->addr_reg = base;
    return jit_mem_bi(JIT_MEMBASE, JIT_SCRATCH, 0, (int32_t)off);
  }
  guest_addr(&c->a, base, off);
  note_fault_site(c, idx);
  c->addr_next = UINT32_MAX;
  return jit_mem_bi(JIT_MEMBASE, JIT_SCRATCH, 0, 0);
}

/* A load into the base register: ecx no longer holds its low half. */
EMIT_INLINE void load(compiler *c, uint32_t idx, uint32_t next, jit_ext kind, jit_reg d,
                      jit_reg base, uint32_t off) {
  if (c->gas_reg) {
    jit_x86_load(&c->a, kind, d, guest_mem(c, true, idx, next, base, off));
    return;
  }
  jit_x86_load(&c->a, kind, d, guest_mem(c, false, idx, next, base, off));
  if (d == base) c->addr_next = UINT32_MAX;
}

EMIT_INLINE void store(compiler *c, uint32_t idx, uint32_t next, unsigned size, jit_reg v,
                       jit_reg base, uint32_t off) {
  if (c->gas_reg) jit_x86_store(&c->a, size, guest_mem(c, true, idx, next, base, off), v);
  else jit_x86_store(&c->a, size, guest_mem(c, false, idx, next, base, off), v);
}

EMIT_INLINE void store_imm(compiler *c, uint32_t idx, uint32_t next, unsigned size, uint32_t v,
                           jit_reg base, uint32_t off) {
  if (c->gas_reg) jit_x86_store_imm(&c->a, size, guest_mem(c, true, idx, next, base, off), simm(v));
  else jit_x86_store_imm(&c->a, size, guest_mem(c, false, idx, next, base, off), simm(v));
}

/* A block's gas check sits right before its head's body; its length is
** a function of the cost and of whether it leaves by a loop entry's exit
** jump (emit_gas_check), and check[] keeps it for block_entry().  Only
** the asserts use it: the walk takes the length from the emitted bytes. */
#ifdef NUB_ASSERTS
static size_t gas_check_len(const compiler *c, uint32_t cost, bool near) {
  size_t jcc = near ? 2 : 6;               /* jl | js: rel8 to a loop's exit jump, or rel32 */
  if (!cost)                               /* mov rcx, [slot]; sub r15 | [rsp], rcx */
    return JIT_LOAD_SLOT_LEN + (c->gas_reg ? 3 : 4) + jcc;   /* (gas at [rsp + 0]) */
  NUB_STATIC_ASSERT(JIT_FRAME_GAS == 0, "gas at [rsp]: no displacement");
  if (c->gas_reg)                          /* sub r15, imm8 | imm32 | rcx */
    return (cost <= 127 ? 4 : cost <= INT32_MAX ? 7 : 5 + 3) + jcc;
  return (cost <= 127 ? 5 : cost <= INT32_MAX ? 8 : 5 + 4) + jcc;   /* sub [rsp], ... */
}
#endif

/* B's own check of the merged pair whose B heads start k. */
static size_t merged_entry(const compiler *c, uint32_t k) {
  uint32_t lo = jit_lower_bound(c->pairs, c->npairs, sizeof *c->pairs,
                                offsetof(gas_pair, b_start), k);
  NUB_ASSERT(c->oom || (lo < c->npairs && c->pairs[lo].b_start == k));
  return lo < c->npairs ? c->pairs[lo].b_entry : 0;
}

/* Entry of the block whose head is start k: its gas check (a merged B's
** is out of line, emitted after the walk: only forward jumps and the
** jump table reach it, never a backward branch, since B is no loop
** target). */
static size_t block_entry(const compiler *c, uint32_t k) {
  if (__builtin_expect(c->check[k] != CHECK_MERGED, 1)) return c->body[k] - c->check[k];
  return merged_entry(c, k);
}

/* Where the code of block k begins in the walk's order (perf map). */
static size_t inline_entry(const compiler *c, uint32_t k) {
  return c->body[k] - (c->check[k] == CHECK_MERGED ? 0 : c->check[k]);
}

/* Jump (cc JIT_ALWAYS) or branch to the block headed by the block start
** at pc t. */
EMIT_INLINE void jump_block(compiler *c, jit_cc cc, uint32_t t, uint32_t from) {
  uint32_t k = jit_start_index(c->rank, &c->prog->blob, t);
  if (t <= from) {                          /* emitted already: direct */
    jit_x86_jcc_at(&c->a, cc, block_entry(c, k));
    return;
  }
  size_t field = jit_x86_jcc_forward(&c->a, cc);
  c->fwd_target[k >> 3] |= (uint8_t)(1u << (k & 7));
  if (room_for(c, (void **)&c->fixups, &c->fixup_cap, c->nfixups, sizeof *c->fixups))
    c->fixups[c->nfixups++] = (block_fixup){(uint32_t)field, k};
}

/* Jump to a static target's block entry, or panic at idx (the pc) when
** the target is not a block start; next: the instruction after idx (an
** unconditional jump there is none). */
EMIT_INLINE void branch(compiler *c, uint32_t idx, uint32_t next, int64_t target, jit_cc cc,
                        bool always) {
  if (target < 0 || !nub_pvm_program_is_block_start(c->prog, (uint64_t)target)) {
    if (always) exit_now(c, idx, PVM_PANIC);
    else cold_exit(c, cc, idx, PVM_PANIC);
    return;
  }
  if (!always && c->refund)                /* a merged A's exit: refund B (emit_gas_copies) */
    c->pairs[c->npairs - 1].taken_field = (uint32_t)jit_x86_jcc_forward(&c->a, cc);
  else if (!always) jump_block(c, cc, (uint32_t)target, idx);
  else if (target != next) jump_block(c, JIT_ALWAYS, (uint32_t)target, idx);
}

/* ecx holds the target address; validate it through the table. */
static void djump(compiler *c, uint32_t idx) {
  jit_asm *a = &c->a;
  jit_x86_store_imm(a, 4, jit_mem_bd(JIT_RSP, JIT_FRAME_DJUMP), (int32_t)idx);
  jit_x86_shift_ri(a, JIT_ROR, false, JIT_SCRATCH, 1);   /* odd -> bit 31 set */
  jit_x86_alu_ri(a, JIT_CMP, false, JIT_SCRATCH, (int32_t)c->prog->blob.jump_count);
  jit_x86_jcc(a, JIT_CC_A, c->djump_out);
  /* rcx = &table[k] (the table's address is in the frame), then plus the
  ** slot's content: no second register is needed (before: a push/pop of
  ** rax around a lea of the table, 6 instructions against 4) */
  jit_x86_shift_ri(a, JIT_SHL, true, JIT_SCRATCH, 3);
  jit_x86_alu_rm(a, JIT_ADD, true, JIT_SCRATCH, jit_mem_bd(JIT_RSP, JIT_FRAME_TABLE));
  jit_x86_alu_rm(a, JIT_ADD, true, JIT_SCRATCH, jit_mem_bd(JIT_SCRATCH, 0));
  jit_x86_jmp_r(a, JIT_SCRATCH);
}

/* Host condition of each conditional branch, plus one (0: not one). */
static const uint8_t branch_cc1[PVM_OP_COUNT] = {
  [PVM_OP_BRANCH_EQ_IMM] = JIT_CC_E + 1,   [PVM_OP_BRANCH_NE_IMM] = JIT_CC_NE + 1,
  [PVM_OP_BRANCH_LT_U_IMM] = JIT_CC_B + 1, [PVM_OP_BRANCH_LE_U_IMM] = JIT_CC_BE + 1,
  [PVM_OP_BRANCH_GE_U_IMM] = JIT_CC_AE + 1, [PVM_OP_BRANCH_GT_U_IMM] = JIT_CC_A + 1,
  [PVM_OP_BRANCH_LT_S_IMM] = JIT_CC_L + 1, [PVM_OP_BRANCH_LE_S_IMM] = JIT_CC_LE + 1,
  [PVM_OP_BRANCH_GE_S_IMM] = JIT_CC_GE + 1, [PVM_OP_BRANCH_GT_S_IMM] = JIT_CC_G + 1,
  [PVM_OP_BRANCH_EQ] = JIT_CC_E + 1, [PVM_OP_BRANCH_NE] = JIT_CC_NE + 1,
  [PVM_OP_BRANCH_LT_U] = JIT_CC_B + 1, [PVM_OP_BRANCH_LT_S] = JIT_CC_L + 1,
  [PVM_OP_BRANCH_GE_U] = JIT_CC_AE + 1, [PVM_OP_BRANCH_GE_S] = JIT_CC_GE + 1,
};

/* How each load widens its value (loads have a width, so 0 is free). */
static jit_ext load_ext(unsigned width, bool is_signed) {
  switch (width) {
  case 1: return is_signed ? JIT_I8 : JIT_U8;
  case 2: return is_signed ? JIT_I16 : JIT_U16;
  case 4: return is_signed ? JIT_I32 : JIT_U32;
  default: return JIT_U64;
  }
}

/* The BMI2 shift behind each immediate-value ("alt") shift. */
static jit_shiftx alt_shift(nub_pvm_op op) {
  switch (op) {
  case PVM_OP_SHLO_R_IMM_ALT_32: case PVM_OP_SHLO_R_IMM_ALT_64: return JIT_SHRX;
  case PVM_OP_SHAR_R_IMM_ALT_32: case PVM_OP_SHAR_R_IMM_ALT_64: return JIT_SARX;
  default: return JIT_SHLX;
  }
}

/* ---- one instruction ---- */

/* The host register a guest access adds its offset to (jit_access_base's
** rule), JIT_NOREG for an absolute address. */
EMIT_INLINE jit_reg access_base(const compiler *c, nub_pvm_op op, const jit_insn *x) {
  int base = jit_access_base(op_formats[op], x->a, x->b);
  return base < 0 ? JIT_NOREG : (jit_reg)c->host_reg[base];
}

/* idx: the instruction's pc, which its exits and fault sites report;
** next: the pc after it.  Inlined into each case of emit_decoded with op
** a constant, so that all but op's own case fold away. */
EMIT_INLINE void emit_insn(compiler *c, uint32_t idx, uint32_t next, nub_pvm_op op,
                           const jit_insn *x) {
  jit_asm *a = &c->a;
  const jit_reg A = c->host_reg[x->a], B = c->host_reg[x->b], D = c->host_reg[x->d];
  const uint32_t i1 = x->imm1, i2 = x->imm2;

  if (op_flags[op] & PVM_OPF_LOAD) {
    jit_ext k = load_ext(op_widths[op], op_flags[op] & PVM_OPF_SIGNED);
    load(c, idx, next, k, A, access_base(c, op, x), i1);
    return;
  }
  if (op_flags[op] & PVM_OPF_STORE) {      /* value: rA, or the second immediate */
    jit_reg base = access_base(c, op, x);
    if (op_formats[op] == PVM_FMT_IMM_IMM || op_formats[op] == PVM_FMT_REG_IMM_IMM)
      store_imm(c, idx, next, op_widths[op], i2, base, i1);
    else
      store(c, idx, next, op_widths[op], A, base, i1);
    return;
  }
  if (branch_cc1[op]) {
    if (op_formats[op] == PVM_FMT_REG_REG_OFFSET) jit_x86_alu_rr(a, JIT_CMP, true, A, B);
    else cmp_imm(a, A, i1);
    branch(c, idx, next, x->target, (jit_cc)(branch_cc1[op] - 1), false);
    return;
  }

  switch (op) {
  /* control */
  case PVM_OP_TRAP: exit_now(c, idx, PVM_PANIC); break;
  case PVM_OP_FALLTHROUGH: case PVM_OP_UNLIKELY: break;
  case PVM_OP_ECALLI: exit_now(c, idx, PVM_HOST); break;
  case PVM_OP_JUMP: branch(c, idx, next, x->target, JIT_CC_E, true); break;
  case PVM_OP_LOAD_IMM_JUMP:
    jit_x86_mov_ri(a, A, sext(i1));
    branch(c, idx, next, x->target, JIT_CC_E, true);
    break;
  case PVM_OP_JUMP_IND:
    guest_addr(a, A, i1);
    djump(c, idx);
    break;
  case PVM_OP_LOAD_IMM_JUMP_IND:             /* address from the old B */
    guest_addr(a, B, i2);
    jit_x86_mov_ri(a, A, sext(i1));
    djump(c, idx);
    break;

  /* immediates and moves */
  case PVM_OP_LOAD_IMM_64: load_imm(a, A, (uint64_t)i1 | (uint64_t)i2 << 32); break;
  case PVM_OP_LOAD_IMM: load_imm(a, A, sext(i1)); break;
  case PVM_OP_MOVE_REG: mov64(a, D, A); break;
  case PVM_OP_SBRK:
    jit_x86_mov_rr(a, true, JIT_SCRATCH, A);
    jit_x86_call(a, c->sbrk_thunk);
    jit_x86_mov_rr(a, true, D, JIT_SCRATCH);
    break;

  /* D <- f(A) */
  case PVM_OP_COUNT_SET_BITS_64: jit_x86_bitop(a, JIT_POPCNT, true, D, A); break;
  case PVM_OP_COUNT_SET_BITS_32: jit_x86_bitop(a, JIT_POPCNT, false, D, A); break;
  case PVM_OP_LEADING_ZERO_BITS_64: leading_zeros(c, true, D, A); break;
  case PVM_OP_LEADING_ZERO_BITS_32: leading_zeros(c, false, D, A); break;
  case PVM_OP_TRAILING_ZERO_BITS_64: jit_x86_bitop(a, JIT_TZCNT, true, D, A); break;
  case PVM_OP_TRAILING_ZERO_BITS_32: jit_x86_bitop(a, JIT_TZCNT, false, D, A); break;
  case PVM_OP_SIGN_EXTEND_8: jit_x86_ext_rr(a, JIT_I8, D, A); break;
  case PVM_OP_SIGN_EXTEND_16: jit_x86_ext_rr(a, JIT_I16, D, A); break;
  case PVM_OP_ZERO_EXTEND_16: jit_x86_ext_rr(a, JIT_U16, D, A); break;
  case PVM_OP_REVERSE_BYTES: mov64(a, D, A); jit_x86_bswap(a, true, D); break;

  /* A <- f(B, imm) */
  case PVM_OP_ADD_IMM_32:
    if (i1) { jit_x86_lea(a, false, A, jit_mem_bd(B, simm(i1))); sx32(a, A, A); }
    else sx32(a, A, B);
    break;
  case PVM_OP_ADD_IMM_64:
    if (A == B) { if (i1) jit_x86_alu_ri(a, JIT_ADD, true, A, simm(i1)); }
    else if (i1) jit_x86_lea(a, true, A, jit_mem_bd(B, simm(i1)));
    else jit_x86_mov_rr(a, true, A, B);
    break;
  case PVM_OP_AND_IMM: alu_imm(a, JIT_AND, A, B, i1); break;
  case PVM_OP_XOR_IMM: alu_imm(a, JIT_XOR, A, B, i1); break;
  case PVM_OP_OR_IMM: alu_imm(a, JIT_OR, A, B, i1); break;
  case PVM_OP_MUL_IMM_32: jit_x86_imul_rri(a, false, A, B, simm(i1)); sx32(a, A, A); break;
  case PVM_OP_MUL_IMM_64: jit_x86_imul_rri(a, true, A, B, simm(i1)); break;
  case PVM_OP_SET_LT_U_IMM: cmp_imm(a, B, i1); set_flag(a, JIT_CC_B, A); break;
  case PVM_OP_SET_LT_S_IMM: cmp_imm(a, B, i1); set_flag(a, JIT_CC_L, A); break;
  case PVM_OP_SET_GT_U_IMM: cmp_imm(a, B, i1); set_flag(a, JIT_CC_A, A); break;
  case PVM_OP_SET_GT_S_IMM: cmp_imm(a, B, i1); set_flag(a, JIT_CC_G, A); break;
  case PVM_OP_SHLO_L_IMM_32: shift_imm(a, JIT_SHL, false, A, B, i1); break;
  case PVM_OP_SHLO_R_IMM_32: shift_imm(a, JIT_SHR, false, A, B, i1); break;
  case PVM_OP_SHAR_R_IMM_32: shift_imm(a, JIT_SAR, false, A, B, i1); break;
  case PVM_OP_SHLO_L_IMM_64: shift_imm(a, JIT_SHL, true, A, B, i1); break;
  case PVM_OP_SHLO_R_IMM_64: shift_imm(a, JIT_SHR, true, A, B, i1); break;
  case PVM_OP_SHAR_R_IMM_64: shift_imm(a, JIT_SAR, true, A, B, i1); break;
  case PVM_OP_SHLO_L_IMM_ALT_32:
  case PVM_OP_SHLO_R_IMM_ALT_32:
  case PVM_OP_SHAR_R_IMM_ALT_32:
  case PVM_OP_SHLO_L_IMM_ALT_64:
  case PVM_OP_SHLO_R_IMM_ALT_64:
  case PVM_OP_SHAR_R_IMM_ALT_64: {
    bool w = op == PVM_OP_SHLO_L_IMM_ALT_64 || op == PVM_OP_SHLO_R_IMM_ALT_64 ||
             op == PVM_OP_SHAR_R_IMM_ALT_64;
    jit_x86_mov_ri(a, JIT_SCRATCH, w ? sext(i1) : i1);
    shiftx(a, alt_shift(op), w, A, JIT_SCRATCH, B);
    break;
  }
  case PVM_OP_NEG_ADD_IMM_32:
  case PVM_OP_NEG_ADD_IMM_64: {
    bool w = op == PVM_OP_NEG_ADD_IMM_64;
    if (A != B) {                          /* imm - B: 2 instructions, not 3 */
      load_imm(a, A, w ? sext(i1) : i1);
      jit_x86_alu_rr(a, JIT_SUB, w, A, B);
    } else {
      jit_x86_unary(a, JIT_NEG, w, A);
      if (i1) jit_x86_alu_ri(a, JIT_ADD, w, A, simm(i1));
    }
    if (!w) sx32(a, A, A);
    break;
  }
  case PVM_OP_CMOV_IZ_IMM:
  case PVM_OP_CMOV_NZ_IMM:
    jit_x86_mov_ri(a, JIT_SCRATCH, sext(i1));
    jit_x86_test_rr(a, true, B, B);
    jit_x86_cmov(a, op == PVM_OP_CMOV_IZ_IMM ? JIT_CC_E : JIT_CC_NE, true, A, JIT_SCRATCH);
    break;
  case PVM_OP_ROT_R_64_IMM: jit_x86_rorx(a, true, A, B, (uint8_t)(i1 & 63)); break;
  case PVM_OP_ROT_R_32_IMM:
    jit_x86_rorx(a, false, A, B, (uint8_t)(i1 & 31));
    sx32(a, A, A);
    break;
  case PVM_OP_ROT_R_64_IMM_ALT: rotate_cl(a, JIT_ROR, true, A, B, 0, true, i1); break;
  case PVM_OP_ROT_R_32_IMM_ALT: rotate_cl(a, JIT_ROR, false, A, B, 0, true, i1); break;

  /* D <- f(A, B) */
  case PVM_OP_ADD_32:
  case PVM_OP_ADD_64: {
    bool w = op == PVM_OP_ADD_64;
    if (D != A && D != B) {
      jit_x86_lea(a, w, D, jit_mem_bi(A, B, 0, 0));
      if (!w) sx32(a, D, D);
    } else {
      alu3(a, JIT_ADD, w, true, D, A, B);
    }
    break;
  }
  case PVM_OP_SUB_32: alu3(a, JIT_SUB, false, false, D, A, B); break;
  case PVM_OP_SUB_64: alu3(a, JIT_SUB, true, false, D, A, B); break;
  case PVM_OP_AND: alu3(a, JIT_AND, true, true, D, A, B); break;
  case PVM_OP_XOR: alu3(a, JIT_XOR, true, true, D, A, B); break;
  case PVM_OP_OR: alu3(a, JIT_OR, true, true, D, A, B); break;
  case PVM_OP_MUL_32: mul3(a, false, D, A, B); break;
  case PVM_OP_MUL_64: mul3(a, true, D, A, B); break;
  case PVM_OP_DIV_U_32: divrem(a, false, false, false, D, A, B); break;
  case PVM_OP_DIV_S_32: divrem(a, false, true, false, D, A, B); break;
  case PVM_OP_REM_U_32: divrem(a, false, false, true, D, A, B); break;
  case PVM_OP_REM_S_32: divrem(a, false, true, true, D, A, B); break;
  case PVM_OP_DIV_U_64: divrem(a, true, false, false, D, A, B); break;
  case PVM_OP_DIV_S_64: divrem(a, true, true, false, D, A, B); break;
  case PVM_OP_REM_U_64: divrem(a, true, false, true, D, A, B); break;
  case PVM_OP_REM_S_64: divrem(a, true, true, true, D, A, B); break;
  case PVM_OP_SHLO_L_32: shiftx(a, JIT_SHLX, false, D, A, B); break;
  case PVM_OP_SHLO_R_32: shiftx(a, JIT_SHRX, false, D, A, B); break;
  case PVM_OP_SHAR_R_32: shiftx(a, JIT_SARX, false, D, A, B); break;
  case PVM_OP_SHLO_L_64: shiftx(a, JIT_SHLX, true, D, A, B); break;
  case PVM_OP_SHLO_R_64: shiftx(a, JIT_SHRX, true, D, A, B); break;
  case PVM_OP_SHAR_R_64: shiftx(a, JIT_SARX, true, D, A, B); break;
  case PVM_OP_MUL_UPPER_S_S:
  case PVM_OP_MUL_UPPER_U_U:
  case PVM_OP_MUL_UPPER_S_U: mul_upper(a, op, D, A, B); break;
  case PVM_OP_SET_LT_U: jit_x86_alu_rr(a, JIT_CMP, true, A, B); set_flag(a, JIT_CC_B, D); break;
  case PVM_OP_SET_LT_S: jit_x86_alu_rr(a, JIT_CMP, true, A, B); set_flag(a, JIT_CC_L, D); break;
  case PVM_OP_CMOV_IZ:
  case PVM_OP_CMOV_NZ:
    jit_x86_test_rr(a, true, B, B);
    jit_x86_cmov(a, op == PVM_OP_CMOV_IZ ? JIT_CC_E : JIT_CC_NE, true, D, A);
    break;
  case PVM_OP_ROT_L_64: rotate_cl(a, JIT_ROL, true, D, B, A, false, 0); break;
  case PVM_OP_ROT_L_32: rotate_cl(a, JIT_ROL, false, D, B, A, false, 0); break;
  case PVM_OP_ROT_R_64: rotate_cl(a, JIT_ROR, true, D, B, A, false, 0); break;
  case PVM_OP_ROT_R_32: rotate_cl(a, JIT_ROR, false, D, B, A, false, 0); break;
  case PVM_OP_AND_INV: jit_x86_andn(a, true, D, B, A); break;
  case PVM_OP_OR_INV:                      /* A | ~B = ~(~A & B): andn has 3 operands */
    jit_x86_andn(a, true, D, A, B);
    jit_x86_unary(a, JIT_NOT, true, D);
    break;
  case PVM_OP_XNOR:                        /* ~(A ^ B), commutative */
    alu3(a, JIT_XOR, true, true, D, A, B);
    jit_x86_unary(a, JIT_NOT, true, D);
    break;
  case PVM_OP_MAX: select3(a, JIT_CC_L, D, A, B); break;
  case PVM_OP_MAX_U: select3(a, JIT_CC_B, D, A, B); break;
  case PVM_OP_MIN: select3(a, JIT_CC_G, D, A, B); break;
  case PVM_OP_MIN_U: select3(a, JIT_CC_A, D, A, B); break;
  default:
    /* loads and branches were handled above; nothing else exists */
    exit_now(c, idx, PVM_PANIC);
    break;
  }
}

/* The one dispatch per instruction: on op, the op of the opcode byte z[0]
** (op_of, read by the walk one instruction ahead), each case decoding its
** format (jit_dec_*) and emitting (emit_insn) inline.  z is the
** instruction's window, l its skip.  Inline
** in the walk (emit_walk, a function of its own): the call and its six
** saved registers were 1.4 M of the 13.6 M instructions of the 229 KB
** compile.  op_of has no op outside the cases: without the jump's range
** check (a compare and a branch per instruction, 1.5 % of a compile). */
EMIT_INLINE void emit_decoded(compiler *c, unsigned op, const uint8_t *z, uint32_t l,
                              uint32_t pc) {
  jit_insn x;
  switch (op) {
#define OP_CASE(e, n, f, w, fl) \
  case PVM_OP_##e: \
    jit_dec_##f(z, l, pc, &x); \
    emit_insn(c, pc, pc + 1 + l, PVM_OP_##e, &x); \
    break;
  PVM_OP_LIST(OP_CASE)
#undef OP_CASE
  default:
    NUB_ASSERT(!"an op of op_of");
    __builtin_unreachable();
  }
}

/* The window of the instruction at pc: the code itself, or its zeta
** (A.4: zeros past the end) copied into buf near the end. */
static inline const uint8_t *decode_window(const nub_pvm_blob *b, uint32_t pc,
                                           uint8_t buf[JIT_DECODE_WINDOW]) {
  if ((uint64_t)pc + JIT_DECODE_WINDOW <= b->code_len) return b->code + pc;
  pvm_zeta(b, pc, buf, JIT_DECODE_WINDOW);
  return buf;
}

void jit_decode(const nub_pvm_opinfo *isa, const nub_pvm_blob *b, uint32_t pc, jit_insn *x,
                uint32_t *len) {
  uint8_t buf[JIT_DECODE_WINDOW];
  const uint8_t *z = decode_window(b, pc, buf);
  uint32_t l = pvm_skip(b, pc);
  *len = 1 + l;
  switch (isa[z[0]].op) {
#define OP_CASE(e, n, f, w, fl) \
  case PVM_OP_##e: jit_dec_##f(z, l, pc, x); x->op = PVM_OP_##e; break;
  PVM_OP_LIST(OP_CASE)
#undef OP_CASE
  default: *x = (jit_insn){.op = PVM_OP_TRAP}; break;
  }
  x->a = pvm_reg(x->a);                     /* A.5: min(12, field) */
  x->b = pvm_reg(x->b);
  x->d = pvm_reg(x->d);
}

/* ---- the whole program ---- */

/* Gas check at the head of block k: the counter is signed, so jl after
** the subtraction is exactly "gas < cost" even when it wraps.  Under lazy
** costs the charge is slot's (rcx), and js takes JIT_COST_UNPLACED
** (2^63) as more than any gas (nub_jit_run keeps the gas it enters with
** above -2^62, so nothing else wraps).  Its length with the jump is
** gas_check_len(c, cost, near). */
EMIT_INLINE void emit_gas_sub(compiler *c, uint32_t slot, uint32_t cost) {
  jit_asm *a = &c->a;
  if (!cost) {
    load_slot(c, slot);
    if (c->gas_reg) jit_x86_alu_rr(a, JIT_SUB, true, JIT_GAS_REG, JIT_SCRATCH);
    else jit_x86_alu_mr(a, JIT_SUB, true, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), JIT_SCRATCH);
  } else if (c->gas_reg && cost <= INT32_MAX) {
    jit_x86_alu_ri(a, JIT_SUB, true, JIT_GAS_REG, (int32_t)cost);
  } else if (c->gas_reg) {
    jit_x86_mov_ri(a, JIT_SCRATCH, cost);
    jit_x86_alu_rr(a, JIT_SUB, true, JIT_GAS_REG, JIT_SCRATCH);
  } else if (cost <= INT32_MAX) {         /* the operand made where it is used: made
                                             above, it was stored to the stack at every head */
    jit_x86_alu_mi(a, JIT_SUB, true, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), (int32_t)cost);
  } else {
    jit_x86_mov_ri(a, JIT_SCRATCH, cost);
    jit_x86_alu_mr(a, JIT_SUB, true, jit_mem_bd(JIT_RSP, JIT_FRAME_GAS), JIT_SCRATCH);
  }
}

/* The check of block k; exit: a loop entry's exit jump (loop_exit_jump),
** which then goes to the block's stub, or 0 (a rel32 to the stub). */
EMIT_INLINE void emit_gas_check(compiler *c, uint32_t k, uint32_t cost, size_t exit) {
  jit_asm *a = &c->a;
  size_t start = jit_asm_pos(a), stub = c->oog_stubs + (size_t)k * JIT_OOG_STUB;
  (void)start;
  emit_gas_sub(c, k, cost);
  if (exit) {
    jit_asm_patch_rel32(a, exit + 1, stub);
    jit_x86_jcc_at(a, cost ? JIT_CC_L : JIT_CC_S, exit);
  } else {
    jit_x86_jcc_rel32(a, cost ? JIT_CC_L : JIT_CC_S, stub);
  }
  /* block_entry() finds the check by this length */
  NUB_ASSERT(a->oom || jit_asm_pos(a) - start == gas_check_len(c, cost, exit != 0));
}

/* A loop entry's way out of its check: a `jmp rel32` (to the block's
** out-of-gas stub, or to a merged check's slow path) before the entry's
** alignment, which the check reaches with a 2-byte jl instead of a
** 6-byte one; the way in by fall-through jumps over it (and over the
** nops).  Four bytes less in the loop: bench/memcpy.s's copy loop
** (sub [rsp], 11; jl and eleven instructions) was 68 bytes, across two
** 64-byte lines, and ran 1.3x slower than the same loop in 64 bytes (a
** hand-written copy of both, in one process: 0.90 against 0.68-0.73 ms).
** Returns the offset of the jmp. */
static size_t loop_exit_jump(compiler *c) {
  jit_asm *a = &c->a;
  uint8_t *p = jit_ins_begin(a);
  p[0] = 0xEB;                             /* jmp rel8 over it: patched below */
  p[1] = 0;
  p[2] = 0xE9;                             /* jmp rel32: emit_gas_check, or the pair's slow path */
  memset(p + 3, 0, 4);
  jit_ins_end(a, p + 7);
  size_t at = jit_asm_pos(a) - 5;
  jit_x86_nop_align(a, JIT_LOOP_ALIGN);
  if (!a->oom) a->code[at - 1] = (uint8_t)(jit_asm_pos(a) - at);   /* 5 + at most 63 */
  return at;
}

static void emit_cold(compiler *c) {
  for (uint32_t i = 0; i < c->ncold; i++) {
    jit_asm_patch_rel32(&c->a, c->cold[i].field, jit_asm_pos(&c->a));
    exit_now(c, c->cold[i].idx, (nub_pvm_status)c->cold[i].kind);
  }
  c->ncold = 0;
}

/* Pending cold stubs (panics of branches to no block start: a hostile
** program can make every instruction one) are emitted in batches, behind
** a jump, so that their list stays small: kept to the end, it cost 12
** bytes (20 with the array's growth) per stub, when out-of-gas exits were
** cold stubs a third of a compile's peak memory for programs of one-byte
** blocks. */
#define COLD_BATCH 4096u

static void flush_cold(compiler *c) {
  jit_asm *a = &c->a;
  uint32_t labels = a->nlabels, fixups = a->nfixups;
  jit_label over = jit_label_new(a);
  jit_x86_jmp(a, over);
  emit_cold(c);
  jit_label_bind(a, over);
  jit_asm_close_scope(a, labels, fixups);
}

/* Table slot k (address 2k), 8 bytes, holds the distance from the slot
** itself to its target's block entry, or to the panic stub: djump adds
** the slot to its own address. */
static void table_slot(jit_asm *a, size_t to) {
  uint64_t rel = (uint64_t)to - (uint64_t)jit_asm_pos(a);   /* negative: wraps */
  jit_asm_u32(a, (uint32_t)rel);
  jit_asm_u32(a, (uint32_t)(rel >> 32));
}

static void emit_table(compiler *c) {
  jit_asm *a = &c->a;
  jit_asm_align(a, 8);
  jit_label_bind(a, c->table);
  size_t bad = a->oom ? 0 : a->labels[c->djump_bad];
  const nub_pvm_program *p = c->prog;
  table_slot(a, bad);
  for (uint32_t j = 0; j < p->blob.jump_count; j++) {
    uint32_t t = nub_pvm_blob_jump_entry(&p->blob, j);
    table_slot(a, p->unrunnable || !nub_pvm_program_is_block_start(p, t)
                  ? bad : block_entry(c, jit_start_index(c->rank, &p->blob, t)));
  }
}

static void patch_block_jumps(compiler *c) {
  for (uint32_t i = 0; i < c->nfixups; i++)
    jit_asm_patch_rel32(&c->a, c->fixups[i].field, block_entry(c, c->fixups[i].target));
}

/* The static target of the instruction at start pc with skip l when it
** is a branch (PVM_OPF_BRANCH; row its opcode's row): its format's decode
** alone, not jit_decode's switch over every op (95 instructions a call). */
static bool branch_target_at(const nub_pvm_opinfo *row, const nub_pvm_blob *b, uint32_t pc,
                             uint32_t l, int64_t *target) {
  if (!row->name || !(op_flags[row->op] & PVM_OPF_BRANCH)) return false;
  uint8_t buf[JIT_DECODE_WINDOW];
  const uint8_t *z = decode_window(b, pc, buf);
  jit_insn x;
  switch (row->format) {
  case PVM_FMT_OFFSET: jit_dec_OFFSET(z, l, pc, &x); break;
  case PVM_FMT_REG_IMM_OFFSET: jit_dec_REG_IMM_OFFSET(z, l, pc, &x); break;
  case PVM_FMT_REG_REG_OFFSET: jit_dec_REG_REG_OFFSET(z, l, pc, &x); break;
  default: return false;
  }
  *target = x.target;
  return true;
}

/* Whether block j, of at most 64 bytes, ends in a branch to pc t. */
static bool short_block_branches_to(const compiler *c, uint32_t j, uint32_t t) {
  const nub_pvm_program *p = c->prog;
  const nub_pvm_blob *b = &p->blob;
  uint32_t head = p->blocks[j].pc, stop = j + 1 < p->block_count ? p->blocks[j + 1].pc : b->code_len;
  if (head >= b->code_len || stop > b->code_len || stop - head > 64 ||
      !nub_pvm_blob_is_start(b, head))
    return false;
  uint32_t last = stop - 1;
  while (last > head && !nub_pvm_blob_is_start(b, last)) last--;
  int64_t target;
  return branch_target_at(&nub_pvm_isa(p->profile)[b->code[last]], b, last, pvm_skip(b, last),
                          &target) && target == (int64_t)t;
}

/* Whether the gas block headed at pc t (a block start) ends in a branch
** to pc to: a loop's latch, which A's taken exit reaching it makes the
** loop's "continue", a path as hot as the fall-through (bench sieve's
** composites: merged, the refund's extra jump made it 1.12x slower). */
static bool ends_in_branch_to(const compiler *c, const pvm_gas_block *from, uint32_t t,
                              uint32_t to) {
  const nub_pvm_program *prog = c->prog;
  const pvm_gas_block *end = prog->blocks + prog->block_count, *lo = from, *hi = end;
  /* the last block with pc <= t (from->pc <= t): galloping from A's
  ** fall-through, as a forward branch in a loop is short (a binary search
  ** over all blocks was 146 instructions a call) */
  for (size_t step = 1; (size_t)(end - lo) > step; step <<= 1) {
    if (lo[step].pc > t) { hi = lo + step; break; }
    lo += step;
  }
  while (hi - lo > 1) {
    const pvm_gas_block *mid = lo + (hi - lo) / 2;
    if (mid->pc <= t) lo = mid;
    else hi = mid;
  }
  if (lo->pc != t || lo + 1 >= end) return false;
  /* long: the refund is small beside it (and the scan bounded) */
  return short_block_branches_to(c, (uint32_t)(lo - prog->blocks), to);
}

/* Whether block k (a loop's entry at pc) and the next block B get one
** merged check: B is A's fall-through (A ends in fallthrough, or in a
** conditional branch forward to a block start: its taken exit, usually a
** loop's exit, pays the refund, never a loop's back edge) and nothing
** else jumps to B but the jump table (no loop target, no forward jump
** emitted before A): B's own check is then out of line.  A is short
** (it is emitted twice) and not itself a merged B.  Only loop entries:
** merging every such pair of the 229 KB bench program grew its code by
** 36% and its compile time by half, for checks that run once.  Fills *p. */
static bool merge_with_next(compiler *c, const pvm_gas_block *k, uint32_t pc, gas_pair *p) {
  const nub_pvm_program *prog = c->prog;
  const nub_pvm_blob *b = &prog->blob;
  if (k + 1 >= prog->blocks + prog->block_count || !nub_pvm_blob_is_start(b, pc)) return false;
  uint32_t bpc = k[1].pc;
  if (bpc - pc > GAS_MERGE_MAX_BYTES || bpc >= b->code_len || !nub_pvm_blob_is_start(b, bpc) ||
      pvm_bit_get(prog->loop_target, bpc))
    return false;
  uint64_t ca = imm_cost(c, (uint32_t)(k - prog->blocks)), cb = imm_cost(c, (uint32_t)(k + 1 - prog->blocks));
  if (!ca || !cb || ca + cb > INT32_MAX) return false;   /* two immediates (lazy: placed) */
  uint32_t bk = jit_start_index(c->rank, b, bpc);
  if (c->fwd_target[bk >> 3] & (1u << (bk & 7))) return false;
  uint32_t last = bpc - 1;
  while (last > pc && !nub_pvm_blob_is_start(b, last)) last--;
  /* A's last instruction ends at bpc: its skip is at most 16 - 1, below
  ** the 24 where a synthetic trap could come between */
  NUB_STATIC_ASSERT(GAS_MERGE_MAX_BYTES <= PVM_MAX_SKIP, "no synthetic trap inside A");
  /* the opcode alone rejects all but fallthrough and the conditional
  ** branches, and takes fallthrough: only a branch's target is decoded */
  const nub_pvm_opinfo *row = &nub_pvm_isa(prog->profile)[b->code[last]];
  int64_t target = 0;
  bool fallthrough = row->name && row->op == PVM_OP_FALLTHROUGH;
  if (!fallthrough &&
      !(row->name && branch_cc1[row->op] && branch_target_at(row, b, last, bpc - last - 1, &target) &&
        target > last && nub_pvm_program_is_block_start(prog, (uint64_t)target) &&
        !ends_in_branch_to(c, k + 1, (uint32_t)target, pc)))
    return false;
  *p = (gas_pair){
    .a_block = (uint32_t)(k - prog->blocks), .b_block = (uint32_t)(k + 1 - prog->blocks),
    .a_start = jit_start_index(c->rank, b, pc), .b_start = bk, .a_pc = pc, .b_pc = bpc,
    .taken_target = fallthrough ? 0 : (uint32_t)target,
  };
  return true;
}

/* A gas block's head at pc (the next block in the program's list):
** align a loop's entry, then the gas check (merged, or none for a merged
** B: CHECK_MERGED). */
EMIT_INLINE uint8_t block_head(compiler *c, const pvm_gas_block *k, uint32_t pc) {
  jit_asm *a = &c->a;
  c->refund = 0;
  c->addr_next = UINT32_MAX;               /* jumps arrive here: ecx unknown */
  if (pc == c->merged_b_pc) return CHECK_MERGED;
  if (c->ncold >= COLD_BATCH) flush_cold(c);   /* before the block entry */
  /* a loop's entry at the start of a 64-byte line: where it fell across
  ** one, the 30 M-iteration loop of bench jit ran at half speed; at 32
  ** bytes into one, sort and sieve ran up to 1.7x slower than at 0 */
  bool loop = pvm_bit_get(c->prog->loop_target, pc);
  size_t exit = loop ? loop_exit_jump(c) : 0, start = jit_asm_pos(a);
  gas_pair p;
  uint32_t kk = (uint32_t)(k - c->prog->blocks);
  if (loop && c->merge && merge_with_next(c, k, pc, &p) &&
      room_for(c, (void **)&c->pairs, &c->pair_cap, c->npairs, sizeof *c->pairs)) {
    uint32_t cb = imm_cost(c, kk + 1), cost = imm_cost(c, kk) + cb;
    emit_gas_sub(c, kk, cost);
    jit_x86_jcc_at(a, JIT_CC_L, exit);
    p.slow_field = (uint32_t)exit + 1;
    NUB_ASSERT(a->oom || jit_asm_pos(a) - start == gas_check_len(c, cost, true));
    c->pairs[c->npairs++] = p;
    c->merged_b_pc = p.b_pc;
    c->refund = cb;
  } else {
    emit_gas_check(c, kk, imm_cost(c, kk), exit);
  }
  return (uint8_t)(jit_asm_pos(a) - start);   /* gas_check_len (the asserts) */
}

/* After the walk, per merged pair: the slow path of its check (undo the
** charge, then A's own check), A's copy, B's own check (the entry of B
** for everything but A's fall-through) with a jump to B's body, and the
** refund on A's taken exit.  The copy's instructions become the bodies
** of A's starts (resumption enters there: the unmerged code). */
static void emit_gas_copies(compiler *c) {
  jit_asm *a = &c->a;
  const nub_pvm_program *prog = c->prog;
  const nub_pvm_blob *b = &prog->blob;
  uint8_t buf[JIT_DECODE_WINDOW];
  c->refund = 0;
  for (uint32_t i = 0; i < c->npairs && !a->oom; i++) {
    gas_pair *p = &c->pairs[i];
    uint32_t ca = imm_cost(c, p->a_block), cb = imm_cost(c, p->b_block);
    jit_asm_patch_rel32(a, p->slow_field, jit_asm_pos(a));
    c->addr_next = UINT32_MAX;             /* A's copy: the walk's rule from A's head */
    gas_add(c, ca + cb);
    emit_gas_check(c, p->a_block, ca, 0);
    for (uint32_t pc = p->a_pc; pc < p->b_pc;) {
      const uint8_t *z = decode_window(b, pc, buf);
      uint32_t l = pvm_skip(b, pc);
      if (room_for(c, (void **)&c->copy_body, &c->copy_cap, c->ncopy, sizeof *c->copy_body))
        c->copy_body[c->ncopy++] = (uint32_t)jit_asm_pos(a);
      emit_decoded(c, c->op_of[z[0]], z, l, pc);
      pc += 1 + l;
    }
    p->b_entry = (uint32_t)jit_asm_pos(a);
    emit_gas_check(c, p->b_block, cb, 0);
    jit_x86_jcc_at(a, JIT_ALWAYS, c->body[p->b_start]);
    if (p->taken_field) {
      jit_asm_patch_rel32(a, p->taken_field, jit_asm_pos(a));
      gas_add(c, cb);
      jump_block(c, JIT_ALWAYS, p->taken_target, p->b_pc - 1);
    }
  }
}

/* Once nothing reads block entries: A's starts resume in their copies. */
static void move_copied_bodies(compiler *c) {
  uint32_t j = 0;
  for (uint32_t i = 0; i < c->npairs && j < c->ncopy; i++)
    for (uint32_t k = c->pairs[i].a_start; k < c->pairs[i].b_start && j < c->ncopy; k++)
      c->body[k] = c->copy_body[j++];
}

/* A trap the walk puts where no instruction starts (or at the code end). */
static void emit_synthetic_trap(compiler *c, const pvm_gas_block **k, uint32_t pc) {
  if (*k < c->prog->blocks + c->prog->block_count && (*k)->pc == pc) block_head(c, (*k)++, pc);
  exit_now(c, pc, PVM_PANIC);
}

/* pvm_skip of the start at pc where pc + 65 <= code_len: its first case,
** the 8 bitmask bytes from pc + 1 all inside the mask. */
static inline uint32_t skip_inside(const uint8_t *bitmask, uint32_t pc) {
  uint64_t w;
  memcpy(&w, bitmask + ((pc + 1) >> 3), 8);
  return (uint32_t)__builtin_ctzll((w >> ((pc + 1) & 7)) | (1ull << PVM_MAX_SKIP));
}

/* The walk of the program analysis (program.c), decoding each bitmask
** start from the blob and emitting it at once: nothing per instruction
** is kept but its body offset and gas check length.  Not inlined into
** jit_compile_bounded, and with its state in locals (the next head's pc,
** the arrays, where the code's end is near): inlined there, with the
** label count compared around every instruction, the walk took 64
** instructions per PVM instruction (52 so, before emit_decoded was
** inlined into it). */
static __attribute__((noinline)) void emit_walk(compiler *c) {
  jit_asm *a = &c->a;
  const nub_pvm_program *p = c->prog;
  const nub_pvm_blob *b = &p->blob;
  const pvm_gas_block *k = p->blocks, *kend = p->blocks + p->block_count;
  uint32_t *body = c->body;
  uint8_t *check = c->check;
  const uint32_t code_len = b->code_len;
  const uint8_t *code = b->code, *bitmask = b->bitmask;   /* not reloaded through b */
  /* below inside, the window is the code itself and skip_inside holds */
  const uint32_t inside = code_len > 64 ? code_len - 64 : 0;
  uint32_t head = k < kend ? k->pc : UINT32_MAX;   /* no pc is UINT32_MAX */
  uint32_t n = 0;
  uint8_t buf[JIT_DECODE_WINDOW];
  /* pc is always a bitmask start here, which pvm_decode would check; one
  ** compare per instruction below inside, the end's only past it */
  uint32_t pc = pvm_next_start(b, 0);
  unsigned op = pc < code_len ? c->op_of[code[pc]] : PVM_OP_TRAP;
  for (;;) {
    const uint8_t *z;
    uint32_t l;
    uint64_t next;
    unsigned next_op;    /* read now: the switch's jump (mispredicted about
                            as often as the ops vary) then waits for no load */
    if (__builtin_expect(pc < inside, 1)) {
      z = code + pc;
      l = skip_inside(bitmask, pc);
      next = (uint64_t)pc + 1 + l;         /* below code_len: l <= 24 */
      next_op = c->op_of[code[next]];
    } else {
      if (pc >= code_len) break;
      z = decode_window(b, pc, buf);
      l = pvm_skip(b, pc);
      next = (uint64_t)pc + 1 + l;
      next_op = next < code_len ? c->op_of[code[next]] : PVM_OP_TRAP;
    }
    if (pc == head) {                      /* check[] is zeroed: heads only */
      check[n] = block_head(c, k++, pc);
      head = k < kend ? k->pc : UINT32_MAX;
    }
    body[n++] = (uint32_t)jit_asm_pos(a);
    emit_decoded(c, op, z, l, pc);
    /* only a skip cut at 24 can land where nothing starts */
    if (l == PVM_MAX_SKIP && next < code_len && !nub_pvm_blob_is_start(b, next)) {
      emit_synthetic_trap(c, &k, (uint32_t)next);
      head = k < kend ? k->pc : UINT32_MAX;
      next = pvm_next_start(b, next);
      next_op = next < code_len ? c->op_of[code[next]] : PVM_OP_TRAP;
    }
    pc = (uint32_t)next;
    op = next_op;
  }
  emit_synthetic_trap(c, &k, code_len);
  NUB_ASSERT(a->oom || c->oom || (n == c->n && k == kend));
}

/* Lazy costs: the blocks of tight loops (one or two blocks of at most
** 64 bytes each, the second ending in the back edge) placed before the
** cost table is written, so that their checks take immediates and a
** two-block one can get a merged check as under gp07.  A check from the
** table made bench jit's sieve and sort 5-12% slower under jamv1 than
** under gp07.  Placing every loop head and the block after it cost 1.8
** us/KB of the 229 KB program's warm compile (6.2 -> 8.0); the tight
** loops' blocks cost 0.3-0.5. */
static void place_tight_loops(compiler *c) {
  const nub_pvm_program *p = c->prog;
  uint32_t list[256], n = 0;
  for (uint32_t k = 0; k < p->block_count; k++) {
    uint32_t pc = p->blocks[k].pc;
    if (pc >= p->blob.code_len || !pvm_bit_get(p->loop_target, pc)) continue;
    if (short_block_branches_to(c, k, pc)) {
      list[n++] = k;
    } else if (k + 1 < p->block_count && short_block_branches_to(c, k + 1, pc) &&
               p->blocks[k + 1].pc - pc <= 64) {
      list[n++] = k;
      list[n++] = k + 1;
    }
    if (n >= 254) pvm_program_place_list(p, list, n), n = 0;
  }
  pvm_program_place_list(p, list, n);
}

static int compile_body(compiler *c, nub_pvm_error *err) {
  jit_asm *a = &c->a;
  const nub_pvm_program *p = c->prog;
  /* about 12 bytes per instruction and 10 per cold stub */
  jit_asm_reserve(a, (size_t)p->insn_count * 24 + 4096, 64, 64);
  for (int k = 0; k <= JIT_EXIT_PLACE; k++) c->exits[k] = jit_label_new(a);
  c->origin = jit_label_new(a);
  c->enter = jit_label_new(a);
  c->sbrk_thunk = jit_label_new(a);
  c->djump_out = jit_label_new(a);
  c->djump_bad = jit_label_new(a);
  c->table = jit_label_new(a);

  jit_label_bind(a, c->origin);
  if (c->lazy) {
    place_tight_loops(c);
    emit_cost_table(c);
  }
  emit_enter(c);
  emit_exits(c);
  emit_djump_stubs(c);
  emit_sbrk_thunk(c);
  emit_oog_stubs(c);
  /* an unrunnable program panics at every entry before any code runs
  ** (nub_jit_run): it has no bodies */
  if (!p->unrunnable) emit_walk(c);
  c->walk_end = jit_asm_pos(a);
  emit_gas_copies(c);
  patch_block_jumps(c);
  emit_cold(c);
  c->code_size = jit_asm_pos(a);
  emit_table(c);
  const char *what = NULL;
  if (a->over_limit)
    return pvm_fail(err, PVM_ERR_LIMIT, 0,
                    "jit: compiling %u instructions needs more than the %zu-byte limit",
                    c->n, a->limit);
  if (c->oom || jit_asm_finish(a, &what))
    return pvm_fail(err, c->oom || a->oom ? PVM_ERR_NOMEM : PVM_ERR_LIMIT, 0, "jit: %s",
                    what ? what : "out of memory");
  if (jit_asm_pos(a) > INT32_MAX)
    return pvm_fail(err, PVM_ERR_LIMIT, 0, "jit: native code of %zu bytes exceeds 2 GiB",
                    jit_asm_pos(a));
  return PVM_OK;
}

/* W^X: the code was written into a private read-write mapping (fresh,
** or a pooled one a freed program used), which is now flipped to
** read-execute once; it is never both.  jit_asm_take has filled the rest
** of the last page with int3 and unmapped any page after it that could
** still hold a previous program's code, so nothing but this code is
** executable or resident beyond the pages the stats count. */
static int map_code(nub_jit_code *code, jit_asm *a, size_t table_bytes, nub_pvm_error *err) {
  size_t len = jit_asm_pos(a), mapped,
         size = (len + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE * PVM_PAGE_SIZE;
  uint8_t *p = jit_asm_take(a, &mapped);
  if (!p) return pvm_fail(err, PVM_ERR_SYS, 0, "jit: munmap past the code: %s", strerror(errno));
  code->exec = p;
  code->map_size = mapped;
  code->native_size = len;
  code->code_pages = size;
  if (mprotect(p + table_bytes, size - table_bytes, PROT_READ | PROT_EXEC))
    return pvm_fail(err, PVM_ERR_SYS, 0, "jit: mprotect to read+execute: %s", strerror(errno));
  return PVM_OK;
}

/* NUB_JIT_PERF_MAP=1: one line per gas block ("START SIZE pvm pc N") in
** /tmp/perf-PID.map, so perf report and perf top name the guest blocks
** the time goes to (the Linux perf JIT map convention); the entry and
** exits before them and the out-of-line code after them (merged checks'
** slow copies and refunds, cold paths) have a line each.  Off by default:
** the map grows with every compile and is never trimmed. */
static pthread_mutex_t perf_map_lock = PTHREAD_MUTEX_INITIALIZER;

static void write_perf_map(const compiler *c, const uint8_t *exec) {
  const char *on = getenv("NUB_JIT_PERF_MAP");
  if (!on || !*on || !strcmp(on, "0")) return;
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
  pthread_mutex_lock(&perf_map_lock);
  FILE *f = fopen(path, "a");
  if (f) {
    const nub_pvm_program *p = c->prog;
    size_t start = c->table_bytes;         /* the cost table is no code */
    uint32_t head = UINT32_MAX;
    for (uint32_t j = 0; j <= p->block_count; j++) {
      size_t end = c->walk_end;
      if (j < p->block_count) {    /* heads that are no bitmask start have no body */
        if (p->unrunnable || !nub_pvm_blob_is_start(&p->blob, p->blocks[j].pc)) continue;
        end = inline_entry(c, jit_start_index(c->rank, &p->blob, p->blocks[j].pc));
      }
      if (end > start) {
        unsigned long at = (unsigned long)(uintptr_t)(exec + start);
        if (head == UINT32_MAX) fprintf(f, "%lx %zx nub-jit entry and exits\n", at, end - start);
        else fprintf(f, "%lx %zx pvm pc %u\n", at, end - start, head);
      }
      start = end;
      if (j < p->block_count) head = p->blocks[j].pc;
    }
    if (c->code_size > start)
      fprintf(f, "%lx %zx nub-jit out-of-line code\n", (unsigned long)(uintptr_t)(exec + start),
              c->code_size - start);
    fclose(f);
  }
  pthread_mutex_unlock(&perf_map_lock);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int check_cpu(uint32_t have, nub_pvm_error *err) {
  static const struct { uint32_t bit; const char *what; } need[] = {
    {JIT_CPU_BMI1, "BMI1 (andn, tzcnt)"},
    {JIT_CPU_BMI2, "BMI2 (shlx, shrx, sarx, rorx)"},
    {JIT_CPU_POPCNT, "POPCNT"},
  };
  for (unsigned i = 0; i < sizeof need / sizeof need[0]; i++)
    if (!(have & need[i].bit))
      return pvm_fail(err, PVM_ERR_UNSUPPORTED, 0, "jit: the CPU lacks %s", need[i].what);
  return PVM_OK;
}

int nub_jit_compile(const nub_pvm_program *prog, const nub_jit_options *opt, nub_jit_code **out,
                nub_pvm_error *err) {
  uint32_t features = (nub_jit_cpu_features() | JIT_GAS_MERGE) & ~(opt ? opt->disable : 0);
  int rc = check_cpu(features, err);
  if (rc) {
    *out = NULL;
    return rc;
  }
  return jit_compile_bounded(prog, features, opt ? opt->max_bytes : 0, out, err);
}

int jit_compile_features(const nub_pvm_program *prog, uint32_t features, nub_jit_code **out,
                         nub_pvm_error *err) {
  return jit_compile_bounded(prog, features, 0, out, err);
}

int jit_compile_bounded(const nub_pvm_program *prog, uint32_t features, size_t max_bytes,
                        nub_jit_code **out, nub_pvm_error *err) {
  uint64_t t0 = now_ns();
  compiler c;
  nub_jit_code *code = NULL;
  uint32_t starts = prog->unrunnable ? 0 : prog->start_count;
  size_t body_bytes = (size_t)starts * sizeof *c.body,
         rank_bytes = jit_rank_count(&prog->blob) * sizeof *c.rank;
  int rc;
  *out = NULL;
  memset(&c, 0, sizeof c);
  c.prog = prog;
  c.features = features;
  c.gas_reg = features & JIT_CPU_FSGSBASE;
  c.merge = features & JIT_GAS_MERGE;
  c.lazy = pvm_gas_rules_of(prog->profile)->pipeline && !prog->unrunnable;
  c.merged_b_pc = UINT32_MAX;
  c.addr_next = UINT32_MAX;
  c.n = starts;
  jit_asm_init(&c.a);
  c.a.limit = max_bytes;
  if (!jit_asm_charge(&c.a, sizeof *code + body_bytes + rank_bytes + starts + starts / 8 + 1)) {
    rc = pvm_fail(err, PVM_ERR_LIMIT, 0,
                  "jit: compiling %u instructions needs more than the %zu-byte limit",
                  prog->insn_count, max_bytes);
    goto fail;
  }
  code = calloc(1, sizeof *code);
  c.body = malloc(body_bytes ? body_bytes : 1);
  c.check = calloc(starts ? starts : 1, 1);
  c.rank = malloc(rank_bytes);
  c.fwd_target = calloc(starts / 8 + 1, 1);
  if (!code || !c.body || !c.check || !c.rank || !c.fwd_target) {
    rc = pvm_fail(err, PVM_ERR_NOMEM, 0, "jit: out of memory");
    goto fail;
  }
  jit_rank_fill(c.rank, &prog->blob);
  for (unsigned r = 0; r < sizeof c.host_reg; r++) c.host_reg[r] = (uint8_t)R(pvm_reg(r));
  const nub_pvm_opinfo *isa = nub_pvm_isa(prog->profile);
  for (unsigned o = 0; o < sizeof c.op_of; o++)
    c.op_of[o] = isa[o].op < PVM_OP_COUNT ? isa[o].op : PVM_OP_TRAP;
  if ((rc = compile_body(&c, err))) goto fail;
  size_t native = jit_asm_pos(&c.a),
         pages = (native + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE * PVM_PAGE_SIZE;
  if ((rc = map_code(code, &c.a, c.table_bytes, err))) goto fail;
  write_perf_map(&c, code->exec);
  move_copied_bodies(&c);
  code->prog = prog;
  code->isa = nub_pvm_isa(prog->profile);
  code->code_size = c.code_size;
  code->body = c.body;
  code->rank = c.rank;
  code->faults = c.faults;
  code->nfaults = c.nfaults;
  code->refunds = c.refunds;
  code->nrefunds = c.nrefunds;
  code->gas_reg = c.gas_reg;
  code->gas_pairs = c.npairs;
  if (c.lazy) code->costs = (uint64_t *)(void *)code->exec;
  code->addr_reused = c.addr_reused;
  code->off_exit_fault = c.a.labels[c.exits[PVM_FAULT]];
  code->off_exit_panic = c.a.labels[c.exits[PVM_PANIC]];
  code->off_oog_stubs = (uint32_t)c.oog_stubs;
  code->ro_store_faults = nub_pvm_profile_semantics(prog->profile)->ro_store_faults;
  code->enter = (jit_enter_fn)(void *)(code->exec + c.a.labels[c.enter]);
  code->stats = (nub_jit_stats){
    .pvm_bytes = prog->blob.code_len, .insns = prog->insn_count,
    .blocks = prog->block_count, .code_bytes = (uint32_t)(c.code_size - c.table_bytes),
    .table_bytes = (uint32_t)(native - c.code_size + c.table_bytes + body_bytes + rank_bytes +
                              (size_t)c.nfaults * sizeof *c.faults +
                              (size_t)c.nrefunds * sizeof *c.refunds),
    .features = c.features & ~JIT_GAS_MERGE,
    .peak_bytes = c.a.peak,
    .kept_bytes = sizeof *code + pages + body_bytes + rank_bytes +
                  (size_t)c.fault_cap * sizeof *c.faults +
                  (size_t)c.refund_cap * sizeof *c.refunds,
  };
  free(c.check);
  free(c.cold);
  free(c.fixups);
  free(c.fwd_target);
  free(c.pairs);
  free(c.copy_body);
  jit_asm_free(&c.a);
  code->stats.compile_ns = now_ns() - t0;
  *out = code;
  return PVM_OK;
fail:
  free(c.body);
  free(c.check);
  free(c.rank);
  free(c.faults);
  free(c.refunds);
  free(c.cold);
  free(c.fixups);
  free(c.fwd_target);
  free(c.pairs);
  free(c.copy_body);
  jit_asm_free(&c.a);
  if (code && code->exec) munmap(code->exec, code->map_size);
  free(code);
  return rc;
}

void nub_jit_code_free(nub_jit_code *code) {
  if (!code) return;
  if (code->exec) jit_pool_put(code->exec, code->map_size, code->code_pages);
  free(code->body);
  free(code->rank);
  free(code->faults);
  free(code->refunds);
  free(code);
}

const nub_jit_stats *nub_jit_code_stats(const nub_jit_code *code) { return &code->stats; }
