/*
** nub link: RISC-V (RV64EMAC + Zbb) ELF -> PVM program (docs/toolchain.md).
**
** link_rv.c decodes RISC-V instructions (compressed ones expanded),
** link_elf.c reads the ELF through (ptr, end), link.c translates.
*/
#ifndef NUB_LINK_H
#define NUB_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

/* ---- RISC-V instructions ---- */

/* X(ENUM, mnemonic, class) */
#define RV_LIST(X) \
  X(LUI, "lui", RVC_LUI) X(AUIPC, "auipc", RVC_AUIPC) \
  X(JAL, "jal", RVC_JAL) X(JALR, "jalr", RVC_JALR) \
  X(BEQ, "beq", RVC_BRANCH) X(BNE, "bne", RVC_BRANCH) X(BLT, "blt", RVC_BRANCH) \
  X(BGE, "bge", RVC_BRANCH) X(BLTU, "bltu", RVC_BRANCH) X(BGEU, "bgeu", RVC_BRANCH) \
  X(LB, "lb", RVC_LOAD) X(LH, "lh", RVC_LOAD) X(LW, "lw", RVC_LOAD) X(LD, "ld", RVC_LOAD) \
  X(LBU, "lbu", RVC_LOAD) X(LHU, "lhu", RVC_LOAD) X(LWU, "lwu", RVC_LOAD) \
  X(SB, "sb", RVC_STORE) X(SH, "sh", RVC_STORE) X(SW, "sw", RVC_STORE) X(SD, "sd", RVC_STORE) \
  X(ADDI, "addi", RVC_OPIMM) X(SLTI, "slti", RVC_OPIMM) X(SLTIU, "sltiu", RVC_OPIMM) \
  X(XORI, "xori", RVC_OPIMM) X(ORI, "ori", RVC_OPIMM) X(ANDI, "andi", RVC_OPIMM) \
  X(SLLI, "slli", RVC_OPIMM) X(SRLI, "srli", RVC_OPIMM) X(SRAI, "srai", RVC_OPIMM) \
  X(ADDIW, "addiw", RVC_OPIMM) X(SLLIW, "slliw", RVC_OPIMM) X(SRLIW, "srliw", RVC_OPIMM) \
  X(SRAIW, "sraiw", RVC_OPIMM) X(RORI, "rori", RVC_OPIMM) X(RORIW, "roriw", RVC_OPIMM) \
  X(ADD, "add", RVC_OP) X(SUB, "sub", RVC_OP) X(SLL, "sll", RVC_OP) X(SLT, "slt", RVC_OP) \
  X(SLTU, "sltu", RVC_OP) X(XOR, "xor", RVC_OP) X(SRL, "srl", RVC_OP) X(SRA, "sra", RVC_OP) \
  X(OR, "or", RVC_OP) X(AND, "and", RVC_OP) \
  X(ADDW, "addw", RVC_OP) X(SUBW, "subw", RVC_OP) X(SLLW, "sllw", RVC_OP) \
  X(SRLW, "srlw", RVC_OP) X(SRAW, "sraw", RVC_OP) \
  X(MUL, "mul", RVC_OP) X(MULH, "mulh", RVC_OP) X(MULHSU, "mulhsu", RVC_OP) \
  X(MULHU, "mulhu", RVC_OP) X(DIV, "div", RVC_OP) X(DIVU, "divu", RVC_OP) \
  X(REM, "rem", RVC_OP) X(REMU, "remu", RVC_OP) X(MULW, "mulw", RVC_OP) \
  X(DIVW, "divw", RVC_OP) X(DIVUW, "divuw", RVC_OP) X(REMW, "remw", RVC_OP) \
  X(REMUW, "remuw", RVC_OP) \
  X(ANDN, "andn", RVC_OP) X(ORN, "orn", RVC_OP) X(XNOR, "xnor", RVC_OP) \
  X(MAX, "max", RVC_OP) X(MAXU, "maxu", RVC_OP) X(MIN, "min", RVC_OP) X(MINU, "minu", RVC_OP) \
  X(ROL, "rol", RVC_OP) X(ROR, "ror", RVC_OP) X(ROLW, "rolw", RVC_OP) X(RORW, "rorw", RVC_OP) \
  X(CLZ, "clz", RVC_UNARY) X(CTZ, "ctz", RVC_UNARY) X(CPOP, "cpop", RVC_UNARY) \
  X(CLZW, "clzw", RVC_UNARY) X(CTZW, "ctzw", RVC_UNARY) X(CPOPW, "cpopw", RVC_UNARY) \
  X(SEXTB, "sext.b", RVC_UNARY) X(SEXTH, "sext.h", RVC_UNARY) X(ZEXTH, "zext.h", RVC_UNARY) \
  X(REV8, "rev8", RVC_UNARY) X(ORCB, "orc.b", RVC_REFUSE) \
  X(FENCE, "fence", RVC_NOP) X(FENCEI, "fence.i", RVC_REFUSE) \
  X(ECALL, "ecall", RVC_REFUSE) X(EBREAK, "ebreak", RVC_REFUSE) X(CSR, "csr*", RVC_REFUSE) \
  X(UNIMP, "unimp", RVC_TRAP) X(HOSTCALL, "nub.hostcall", RVC_HOSTCALL) \
  X(LRW, "lr.w", RVC_LR) X(LRD, "lr.d", RVC_LR) X(SCW, "sc.w", RVC_SC) X(SCD, "sc.d", RVC_SC) \
  X(AMOSWAPW, "amoswap.w", RVC_AMO) X(AMOADDW, "amoadd.w", RVC_AMO) \
  X(AMOXORW, "amoxor.w", RVC_AMO) X(AMOANDW, "amoand.w", RVC_AMO) \
  X(AMOORW, "amoor.w", RVC_AMO) X(AMOMINW, "amomin.w", RVC_AMO) \
  X(AMOMAXW, "amomax.w", RVC_AMO) X(AMOMINUW, "amominu.w", RVC_AMO) \
  X(AMOMAXUW, "amomaxu.w", RVC_AMO) \
  X(AMOSWAPD, "amoswap.d", RVC_AMO) X(AMOADDD, "amoadd.d", RVC_AMO) \
  X(AMOXORD, "amoxor.d", RVC_AMO) X(AMOANDD, "amoand.d", RVC_AMO) \
  X(AMOORD, "amoor.d", RVC_AMO) X(AMOMIND, "amomin.d", RVC_AMO) \
  X(AMOMAXD, "amomax.d", RVC_AMO) X(AMOMINUD, "amominu.d", RVC_AMO) \
  X(AMOMAXUD, "amomaxu.d", RVC_AMO)

typedef enum rv_kind {
#define RV_ENUM(e, n, c) RV_##e,
  RV_LIST(RV_ENUM)
#undef RV_ENUM
  RV_KIND_COUNT
} rv_kind;

typedef enum rv_class {
  RVC_LUI, RVC_AUIPC, RVC_JAL, RVC_JALR, RVC_BRANCH, RVC_LOAD, RVC_STORE,
  RVC_OPIMM, RVC_OP, RVC_UNARY, RVC_NOP, RVC_TRAP, RVC_HOSTCALL, RVC_LR,
  RVC_SC, RVC_AMO, RVC_REFUSE,
} rv_class;

typedef struct rv_insn {
  uint16_t kind;           /* rv_kind */
  uint8_t len;             /* 2 (compressed) or 4 */
  uint8_t rd, rs1, rs2;    /* x0..x31 */
  int64_t imm;             /* sign-extended; branch/jal: offset from pc */
  uint32_t raw;            /* the encoding (16 bits when compressed) */
} rv_insn;

/* Decodes the instruction at p.  Returns 0, or -1 when the bytes are no
** RV64 integer instruction this decoder knows (floating point, vector,
** privileged...): *out->raw and len are still set. */
int rv_decode(const uint8_t *p, const uint8_t *end, rv_insn *out);
const char *rv_name(rv_kind k);
rv_class rv_class_of(rv_kind k);
/* ABI name of register x (0..31). */
const char *rv_reg_name(unsigned x);

/* ---- the linker ---- */

typedef struct link_export {
  uint32_t key;            /* endpoint: pc = 5 * key */
  const char *symbol;
} link_export;

typedef struct link_options {
  nub_pvm_profile profile;
  bool generic;            /* --format generic: the code blob alone */
  const link_export *exports;   /* --export KEY=SYMBOL, added to __nub_export_K */
  uint32_t export_count;
  int64_t stack_size;      /* --stack-size, -1 = __nub_stack_size or the default */
} link_options;

#define LINK_DEFAULT_STACK (64u << 10)
#define LINK_EXPORT_STRIDE 5u     /* bytes per export slot: jump with a 4-byte offset */
#define LINK_MAX_EXPORTS   256u

typedef struct link_stats {
  uint32_t rv_insns, pvm_bytes, jump_entries, exports;
  uint32_t ro_len, rw_len, heap_pages, stack_size;
} link_stats;

/* Translate the ELF image [elf, elf+len).  On success *out (malloc'd) is
** an SPI container or a generic blob; on failure msg holds an error that
** names the instruction, its address and its symbol (or the section,
** relocation or field at fault). */
int link_program(const uint8_t *elf, size_t len, const link_options *opt, uint8_t **out,
                 size_t *out_len, link_stats *stats, char *msg, size_t msg_len);

#endif
