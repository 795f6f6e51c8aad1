/*
** nub PVM engine: program blobs, memory, virtual machine state and the
** engine interface shared by the interpreter and the JIT.
**
** Conventions: functions return an int status (0 = PVM_OK, else a
** nub_pvm_errcode) and, when given a nub_pvm_error, fill it with a message that
** names the field, the byte offset and the limit involved.
*/
#ifndef NUB_PVM_H
#define NUB_PVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PVM_REGS         13
#define PVM_PAGE_SIZE    4096u
#define PVM_PAGE_SHIFT   12
#define PVM_PAGE_COUNT   (1u << 20)            /* pages in the 4 GiB space */
#define PVM_GUARD_END    0x10000u              /* access below this panics */
#define PVM_HALT_ADDRESS 0xFFFF0000u           /* djump here halts */
#define PVM_JUMP_ALIGN   2u                    /* Z_A */
#define PVM_MAX_SKIP     24u
NUB_STATIC_ASSERT(PVM_PAGE_SIZE == 1u << PVM_PAGE_SHIFT, "the page size is 2^PVM_PAGE_SHIFT");
NUB_STATIC_ASSERT((uint64_t)PVM_PAGE_COUNT * PVM_PAGE_SIZE == 1ull << 32,
                  "the pages cover the 32-bit address space");

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

typedef enum nub_pvm_errcode {
  PVM_OK = 0,
  PVM_ERR_TRUNCATED,       /* input ends inside a field */
  PVM_ERR_LENGTH,          /* a length field disagrees with the input */
  PVM_ERR_LIMIT,           /* a value exceeds a documented limit */
  PVM_ERR_ENCODING,        /* malformed or non-canonical encoding */
  PVM_ERR_JUMP_TABLE,      /* bad jump table entry size or entry */
  PVM_ERR_BITMASK,         /* bitmask padding bits set */
  PVM_ERR_TRAILING,        /* bytes left after the last field */
  PVM_ERR_ALIGN,           /* address or length not page aligned */
  PVM_ERR_RANGE,           /* address range outside the 4 GiB space */
  PVM_ERR_UNMAPPED,        /* host access to an unmapped page */
  PVM_ERR_ARG,             /* bad argument from the caller */
  PVM_ERR_NOMEM,
  PVM_ERR_SYS,             /* a system call failed (errno in msg) */
  PVM_ERR_UNSUPPORTED,     /* engine cannot run here */
} nub_pvm_errcode;

typedef struct nub_pvm_error {
  int code;                /* nub_pvm_errcode */
  uint64_t offset;         /* byte offset in the input, when it applies */
  char msg[200];
} nub_pvm_error;

NUB_API const char *nub_pvm_errcode_name(int code);

/* ------------------------------------------------------------------ */
/* ISA profiles and the instruction table                               */
/* ------------------------------------------------------------------ */

/* An ISA profile fixes opcode numbering, terminators and gas costs.  New
** profiles are new table data; the engines switch on nub_pvm_op, never on
** raw opcode bytes. */
typedef enum nub_pvm_profile {
  PVM_PROFILE_GP07 = 0,    /* Gray Paper 0.7.x, 1 gas per instruction */
  PVM_PROFILE_GP08_DRAFT,  /* Nov 2025 draft of GP 0.8: 0.7 numbering + unlikely = 3 */
  PVM_PROFILE_JAMV1,       /* GP 0.8.0 final (JamV1): unlikely = 2, no sbrk */
  PVM_PROFILE_COUNT
} nub_pvm_profile;

typedef enum nub_pvm_format {
  PVM_FMT_NONE,            /* A.5.1  no arguments */
  PVM_FMT_IMM,             /* A.5.2  one immediate */
  PVM_FMT_REG_IMM64,       /* A.5.3  reg + 64-bit immediate */
  PVM_FMT_IMM_IMM,         /* A.5.4  two immediates */
  PVM_FMT_OFFSET,          /* A.5.5  one offset */
  PVM_FMT_REG_IMM,         /* A.5.6  reg + immediate */
  PVM_FMT_REG_IMM_IMM,     /* A.5.7  reg + two immediates */
  PVM_FMT_REG_IMM_OFFSET,  /* A.5.8  reg + immediate + offset */
  PVM_FMT_REG_REG,         /* A.5.9  two regs */
  PVM_FMT_REG_REG_IMM,     /* A.5.10 two regs + immediate */
  PVM_FMT_REG_REG_OFFSET,  /* A.5.11 two regs + offset */
  PVM_FMT_REG_REG_IMM_IMM, /* A.5.12 two regs + two immediates */
  PVM_FMT_REG_REG_REG,     /* A.5.13 three regs */
  PVM_FMT_COUNT
} nub_pvm_format;

/* Semantic operations, independent of any profile's numbering.
** X(ENUM, mnemonic, format, memory width, flags) */
#define PVM_OP_LIST(X) \
  X(TRAP,               "trap",                  NONE,            0, PVM_OPF_TERM) \
  X(FALLTHROUGH,        "fallthrough",           NONE,            0, PVM_OPF_TERM) \
  X(UNLIKELY,           "unlikely",              NONE,            0, 0) \
  X(ECALLI,             "ecalli",                IMM,             0, PVM_OPF_HOST) \
  X(LOAD_IMM_64,        "load_imm_64",           REG_IMM64,       0, 0) \
  X(STORE_IMM_U8,       "store_imm_u8",          IMM_IMM,         1, PVM_OPF_STORE) \
  X(STORE_IMM_U16,      "store_imm_u16",         IMM_IMM,         2, PVM_OPF_STORE) \
  X(STORE_IMM_U32,      "store_imm_u32",         IMM_IMM,         4, PVM_OPF_STORE) \
  X(STORE_IMM_U64,      "store_imm_u64",         IMM_IMM,         8, PVM_OPF_STORE) \
  X(JUMP,               "jump",                  OFFSET,          0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(JUMP_IND,           "jump_ind",              REG_IMM,         0, PVM_OPF_TERM | PVM_OPF_DJUMP) \
  X(LOAD_IMM,           "load_imm",              REG_IMM,         0, 0) \
  X(LOAD_U8,            "load_u8",               REG_IMM,         1, PVM_OPF_LOAD) \
  X(LOAD_I8,            "load_i8",               REG_IMM,         1, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_U16,           "load_u16",              REG_IMM,         2, PVM_OPF_LOAD) \
  X(LOAD_I16,           "load_i16",              REG_IMM,         2, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_U32,           "load_u32",              REG_IMM,         4, PVM_OPF_LOAD) \
  X(LOAD_I32,           "load_i32",              REG_IMM,         4, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_U64,           "load_u64",              REG_IMM,         8, PVM_OPF_LOAD) \
  X(STORE_U8,           "store_u8",              REG_IMM,         1, PVM_OPF_STORE) \
  X(STORE_U16,          "store_u16",             REG_IMM,         2, PVM_OPF_STORE) \
  X(STORE_U32,          "store_u32",             REG_IMM,         4, PVM_OPF_STORE) \
  X(STORE_U64,          "store_u64",             REG_IMM,         8, PVM_OPF_STORE) \
  X(STORE_IMM_IND_U8,   "store_imm_ind_u8",      REG_IMM_IMM,     1, PVM_OPF_STORE) \
  X(STORE_IMM_IND_U16,  "store_imm_ind_u16",     REG_IMM_IMM,     2, PVM_OPF_STORE) \
  X(STORE_IMM_IND_U32,  "store_imm_ind_u32",     REG_IMM_IMM,     4, PVM_OPF_STORE) \
  X(STORE_IMM_IND_U64,  "store_imm_ind_u64",     REG_IMM_IMM,     8, PVM_OPF_STORE) \
  X(LOAD_IMM_JUMP,      "load_imm_jump",         REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_EQ_IMM,      "branch_eq_imm",         REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_NE_IMM,      "branch_ne_imm",         REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LT_U_IMM,    "branch_lt_u_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LE_U_IMM,    "branch_le_u_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GE_U_IMM,    "branch_ge_u_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GT_U_IMM,    "branch_gt_u_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LT_S_IMM,    "branch_lt_s_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LE_S_IMM,    "branch_le_s_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GE_S_IMM,    "branch_ge_s_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GT_S_IMM,    "branch_gt_s_imm",       REG_IMM_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(MOVE_REG,           "move_reg",              REG_REG,         0, 0) \
  X(SBRK,               "sbrk",                  REG_REG,         0, 0) \
  X(COUNT_SET_BITS_64,  "count_set_bits_64",     REG_REG,         0, 0) \
  X(COUNT_SET_BITS_32,  "count_set_bits_32",     REG_REG,         0, 0) \
  X(LEADING_ZERO_BITS_64,  "leading_zero_bits_64",  REG_REG,      0, 0) \
  X(LEADING_ZERO_BITS_32,  "leading_zero_bits_32",  REG_REG,      0, 0) \
  X(TRAILING_ZERO_BITS_64, "trailing_zero_bits_64", REG_REG,      0, 0) \
  X(TRAILING_ZERO_BITS_32, "trailing_zero_bits_32", REG_REG,      0, 0) \
  X(SIGN_EXTEND_8,      "sign_extend_8",         REG_REG,         0, 0) \
  X(SIGN_EXTEND_16,     "sign_extend_16",        REG_REG,         0, 0) \
  X(ZERO_EXTEND_16,     "zero_extend_16",        REG_REG,         0, 0) \
  X(REVERSE_BYTES,      "reverse_bytes",         REG_REG,         0, 0) \
  X(STORE_IND_U8,       "store_ind_u8",          REG_REG_IMM,     1, PVM_OPF_STORE) \
  X(STORE_IND_U16,      "store_ind_u16",         REG_REG_IMM,     2, PVM_OPF_STORE) \
  X(STORE_IND_U32,      "store_ind_u32",         REG_REG_IMM,     4, PVM_OPF_STORE) \
  X(STORE_IND_U64,      "store_ind_u64",         REG_REG_IMM,     8, PVM_OPF_STORE) \
  X(LOAD_IND_U8,        "load_ind_u8",           REG_REG_IMM,     1, PVM_OPF_LOAD) \
  X(LOAD_IND_I8,        "load_ind_i8",           REG_REG_IMM,     1, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_IND_U16,       "load_ind_u16",          REG_REG_IMM,     2, PVM_OPF_LOAD) \
  X(LOAD_IND_I16,       "load_ind_i16",          REG_REG_IMM,     2, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_IND_U32,       "load_ind_u32",          REG_REG_IMM,     4, PVM_OPF_LOAD) \
  X(LOAD_IND_I32,       "load_ind_i32",          REG_REG_IMM,     4, PVM_OPF_LOAD | PVM_OPF_SIGNED) \
  X(LOAD_IND_U64,       "load_ind_u64",          REG_REG_IMM,     8, PVM_OPF_LOAD) \
  X(ADD_IMM_32,         "add_imm_32",            REG_REG_IMM,     0, 0) \
  X(AND_IMM,            "and_imm",               REG_REG_IMM,     0, 0) \
  X(XOR_IMM,            "xor_imm",               REG_REG_IMM,     0, 0) \
  X(OR_IMM,             "or_imm",                REG_REG_IMM,     0, 0) \
  X(MUL_IMM_32,         "mul_imm_32",            REG_REG_IMM,     0, 0) \
  X(SET_LT_U_IMM,       "set_lt_u_imm",          REG_REG_IMM,     0, 0) \
  X(SET_LT_S_IMM,       "set_lt_s_imm",          REG_REG_IMM,     0, 0) \
  X(SHLO_L_IMM_32,      "shlo_l_imm_32",         REG_REG_IMM,     0, 0) \
  X(SHLO_R_IMM_32,      "shlo_r_imm_32",         REG_REG_IMM,     0, 0) \
  X(SHAR_R_IMM_32,      "shar_r_imm_32",         REG_REG_IMM,     0, 0) \
  X(NEG_ADD_IMM_32,     "neg_add_imm_32",        REG_REG_IMM,     0, 0) \
  X(SET_GT_U_IMM,       "set_gt_u_imm",          REG_REG_IMM,     0, 0) \
  X(SET_GT_S_IMM,       "set_gt_s_imm",          REG_REG_IMM,     0, 0) \
  X(SHLO_L_IMM_ALT_32,  "shlo_l_imm_alt_32",     REG_REG_IMM,     0, 0) \
  X(SHLO_R_IMM_ALT_32,  "shlo_r_imm_alt_32",     REG_REG_IMM,     0, 0) \
  X(SHAR_R_IMM_ALT_32,  "shar_r_imm_alt_32",     REG_REG_IMM,     0, 0) \
  X(CMOV_IZ_IMM,        "cmov_iz_imm",           REG_REG_IMM,     0, 0) \
  X(CMOV_NZ_IMM,        "cmov_nz_imm",           REG_REG_IMM,     0, 0) \
  X(ADD_IMM_64,         "add_imm_64",            REG_REG_IMM,     0, 0) \
  X(MUL_IMM_64,         "mul_imm_64",            REG_REG_IMM,     0, 0) \
  X(SHLO_L_IMM_64,      "shlo_l_imm_64",         REG_REG_IMM,     0, 0) \
  X(SHLO_R_IMM_64,      "shlo_r_imm_64",         REG_REG_IMM,     0, 0) \
  X(SHAR_R_IMM_64,      "shar_r_imm_64",         REG_REG_IMM,     0, 0) \
  X(NEG_ADD_IMM_64,     "neg_add_imm_64",        REG_REG_IMM,     0, 0) \
  X(SHLO_L_IMM_ALT_64,  "shlo_l_imm_alt_64",     REG_REG_IMM,     0, 0) \
  X(SHLO_R_IMM_ALT_64,  "shlo_r_imm_alt_64",     REG_REG_IMM,     0, 0) \
  X(SHAR_R_IMM_ALT_64,  "shar_r_imm_alt_64",     REG_REG_IMM,     0, 0) \
  X(ROT_R_64_IMM,       "rot_r_64_imm",          REG_REG_IMM,     0, 0) \
  X(ROT_R_64_IMM_ALT,   "rot_r_64_imm_alt",      REG_REG_IMM,     0, 0) \
  X(ROT_R_32_IMM,       "rot_r_32_imm",          REG_REG_IMM,     0, 0) \
  X(ROT_R_32_IMM_ALT,   "rot_r_32_imm_alt",      REG_REG_IMM,     0, 0) \
  X(BRANCH_EQ,          "branch_eq",             REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_NE,          "branch_ne",             REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LT_U,        "branch_lt_u",           REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_LT_S,        "branch_lt_s",           REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GE_U,        "branch_ge_u",           REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(BRANCH_GE_S,        "branch_ge_s",           REG_REG_OFFSET,  0, PVM_OPF_TERM | PVM_OPF_BRANCH) \
  X(LOAD_IMM_JUMP_IND,  "load_imm_jump_ind",     REG_REG_IMM_IMM, 0, PVM_OPF_TERM | PVM_OPF_DJUMP) \
  X(ADD_32,             "add_32",                REG_REG_REG,     0, 0) \
  X(SUB_32,             "sub_32",                REG_REG_REG,     0, 0) \
  X(MUL_32,             "mul_32",                REG_REG_REG,     0, 0) \
  X(DIV_U_32,           "div_u_32",              REG_REG_REG,     0, 0) \
  X(DIV_S_32,           "div_s_32",              REG_REG_REG,     0, 0) \
  X(REM_U_32,           "rem_u_32",              REG_REG_REG,     0, 0) \
  X(REM_S_32,           "rem_s_32",              REG_REG_REG,     0, 0) \
  X(SHLO_L_32,          "shlo_l_32",             REG_REG_REG,     0, 0) \
  X(SHLO_R_32,          "shlo_r_32",             REG_REG_REG,     0, 0) \
  X(SHAR_R_32,          "shar_r_32",             REG_REG_REG,     0, 0) \
  X(ADD_64,             "add_64",                REG_REG_REG,     0, 0) \
  X(SUB_64,             "sub_64",                REG_REG_REG,     0, 0) \
  X(MUL_64,             "mul_64",                REG_REG_REG,     0, 0) \
  X(DIV_U_64,           "div_u_64",              REG_REG_REG,     0, 0) \
  X(DIV_S_64,           "div_s_64",              REG_REG_REG,     0, 0) \
  X(REM_U_64,           "rem_u_64",              REG_REG_REG,     0, 0) \
  X(REM_S_64,           "rem_s_64",              REG_REG_REG,     0, 0) \
  X(SHLO_L_64,          "shlo_l_64",             REG_REG_REG,     0, 0) \
  X(SHLO_R_64,          "shlo_r_64",             REG_REG_REG,     0, 0) \
  X(SHAR_R_64,          "shar_r_64",             REG_REG_REG,     0, 0) \
  X(AND,                "and",                   REG_REG_REG,     0, 0) \
  X(XOR,                "xor",                   REG_REG_REG,     0, 0) \
  X(OR,                 "or",                    REG_REG_REG,     0, 0) \
  X(MUL_UPPER_S_S,      "mul_upper_s_s",         REG_REG_REG,     0, 0) \
  X(MUL_UPPER_U_U,      "mul_upper_u_u",         REG_REG_REG,     0, 0) \
  X(MUL_UPPER_S_U,      "mul_upper_s_u",         REG_REG_REG,     0, 0) \
  X(SET_LT_U,           "set_lt_u",              REG_REG_REG,     0, 0) \
  X(SET_LT_S,           "set_lt_s",              REG_REG_REG,     0, 0) \
  X(CMOV_IZ,            "cmov_iz",               REG_REG_REG,     0, 0) \
  X(CMOV_NZ,            "cmov_nz",               REG_REG_REG,     0, 0) \
  X(ROT_L_64,           "rot_l_64",              REG_REG_REG,     0, 0) \
  X(ROT_L_32,           "rot_l_32",              REG_REG_REG,     0, 0) \
  X(ROT_R_64,           "rot_r_64",              REG_REG_REG,     0, 0) \
  X(ROT_R_32,           "rot_r_32",              REG_REG_REG,     0, 0) \
  X(AND_INV,            "and_inv",               REG_REG_REG,     0, 0) \
  X(OR_INV,             "or_inv",                REG_REG_REG,     0, 0) \
  X(XNOR,               "xnor",                  REG_REG_REG,     0, 0) \
  X(MAX,                "max",                   REG_REG_REG,     0, 0) \
  X(MAX_U,              "max_u",                 REG_REG_REG,     0, 0) \
  X(MIN,                "min",                   REG_REG_REG,     0, 0) \
  X(MIN_U,              "min_u",                 REG_REG_REG,     0, 0)

/* Op flags */
#define PVM_OPF_TERM   0x01  /* ends a basic block (set T) */
#define PVM_OPF_BRANCH 0x02  /* static target (jump, branch, load_imm_jump) */
#define PVM_OPF_DJUMP  0x04  /* dynamic jump through the jump table */
#define PVM_OPF_LOAD   0x08
#define PVM_OPF_STORE  0x10
#define PVM_OPF_HOST   0x20  /* exits to the embedder */
#define PVM_OPF_SIGNED 0x40  /* a load that sign-extends its value (else zero-extends) */

typedef enum nub_pvm_op {
#define PVM_OP_ENUM(e, n, f, w, fl) PVM_OP_##e,
  PVM_OP_LIST(PVM_OP_ENUM)
#undef PVM_OP_ENUM
  PVM_OP_COUNT,
  PVM_OP_INVALID = 0xFF    /* opcode byte not defined: behaves as trap */
} nub_pvm_op;

/* One row of a profile's 256-entry opcode table. */
typedef struct nub_pvm_opinfo {
  const char *name;        /* NULL when the byte is not a valid opcode */
  uint8_t op;              /* nub_pvm_op, PVM_OP_INVALID if not valid */
  uint8_t format;          /* nub_pvm_format */
  uint8_t flags;           /* PVM_OPF_* in this profile */
  uint8_t width;           /* memory access width in bytes, 0 if none */
  uint8_t gas;             /* gp07: gas per instruction (GP 0.8: docs/gas.md) */
} nub_pvm_opinfo;

NUB_API const nub_pvm_opinfo *nub_pvm_isa(nub_pvm_profile profile);      /* 256 rows */
NUB_API const char *nub_pvm_profile_name(nub_pvm_profile profile);
NUB_API int nub_pvm_profile_by_name(const char *name);           /* -1 if unknown */
/* Opcode byte of a semantic op in a profile, -1 if the profile lacks it. */
NUB_API int nub_pvm_opcode_of(nub_pvm_profile profile, nub_pvm_op op);
/* Opcode byte for a mnemonic, -1 if none. */
NUB_API int nub_pvm_opcode_by_name(nub_pvm_profile profile, const char *name, size_t len);
NUB_API const char *nub_pvm_format_name(nub_pvm_format f);
/* Number of valid opcodes in a profile. */
NUB_API unsigned nub_pvm_isa_count(nub_pvm_profile profile);

/* What a profile changes in execution besides numbering and gas.  Table
** data (src/pvm/profile.c) that the engines read through the program,
** never per instruction in a hot loop. */
typedef struct nub_pvm_semantics {
  bool ro_store_faults;    /* a store to a read-only page is a page fault
                              (GP 0.8.0, jamv1) rather than a panic (GP 0.7) */
} nub_pvm_semantics;
NUB_API const nub_pvm_semantics *nub_pvm_profile_semantics(nub_pvm_profile profile);  /* NULL if unknown */

/* ------------------------------------------------------------------ */
/* Program blobs                                                        */
/* ------------------------------------------------------------------ */

/* Hard limits checked by every decoder. */
#define PVM_MAX_CODE_LEN    (64u << 20)   /* 64 MiB of instruction bytes */
#define PVM_MAX_JUMP_COUNT  (16u << 20)   /* jump table entries */

/* A parsed view of a GP generic program blob (A.2); points into the
** caller's bytes, which must outlive it. */
typedef struct nub_pvm_blob {
  const uint8_t *code;
  const uint8_t *bitmask;          /* packed LSB-first, (code_len+7)/8 */
  const uint8_t *jump_table;       /* jump_count * jump_entry_size bytes */
  uint32_t code_len;
  uint32_t jump_count;
  uint8_t jump_entry_size;         /* 0..4 */
} nub_pvm_blob;

/* Decode a JAM compact natural (GP C.6) at *p; advances *p. */
NUB_API int nub_pvm_read_natural(const uint8_t **p, const uint8_t *end, uint64_t *out);
/* Encode a compact natural into out (>= 9 bytes); returns length. */
NUB_API size_t nub_pvm_write_natural(uint8_t *out, uint64_t x);

/* Parse and validate a generic blob occupying exactly [p, end). */
NUB_API int nub_pvm_blob_parse(const uint8_t *p, const uint8_t *end, nub_pvm_blob *out,
                   nub_pvm_error *err);
/* Jump table entry i (i < jump_count). */
NUB_API uint32_t nub_pvm_blob_jump_entry(const nub_pvm_blob *b, uint32_t i);
/* Bitmask bit of byte pc (0 past the end). */
static inline bool nub_pvm_blob_is_start(const nub_pvm_blob *b, uint64_t pc) {
  return pc < b->code_len && ((b->bitmask[pc >> 3] >> (pc & 7)) & 1);
}

/* One decoded instruction (GP A.5), for disassembly, the JIT and tools.
** Register fields are clamped to 12; raw_* keep the encoded fields so
** tools can reproduce the bytes exactly (for REG_IMM and REG_IMM64 raw_ra
** is the whole byte, whose high nibble the decoder ignores; raw_rd of
** REG_REG_REG is the whole third byte). */
typedef struct nub_pvm_insn {
  uint32_t pc;
  uint32_t len;            /* 1 + skip(pc): distance to the next start */
  uint8_t opcode;          /* raw byte at pc */
  uint8_t op;              /* nub_pvm_op or PVM_OP_INVALID */
  uint8_t format;          /* nub_pvm_format */
  uint8_t ra, rb, rd;      /* clamped register indices */
  uint8_t raw_ra, raw_rb, raw_rd;  /* register fields as encoded */
  uint8_t lx, ly;          /* immediate byte lengths actually read */
  uint64_t imm_x;          /* nu_X, sign-extended (load_imm_64: raw) */
  uint64_t imm_y;          /* nu_Y, sign-extended */
  int64_t target;          /* static branch target pc (may be out of range) */
} nub_pvm_insn;

/* Decode the instruction at pc (pc need not be a valid start; bytes past
** the code read as zero, as zeta in A.4). */
NUB_API void nub_pvm_decode(nub_pvm_profile profile, const nub_pvm_blob *b, uint32_t pc,
                nub_pvm_insn *out);
/* skip(pc) per A.3. */
NUB_API uint32_t nub_pvm_skip(const nub_pvm_blob *b, uint32_t pc);

/* ------------------------------------------------------------------ */
/* Program builder: the binary encoder                                  */
/* ------------------------------------------------------------------ */

/* Builds a generic blob from instructions, labels and jump table entries.
** Calls never fail on their own: the first error (bad register, immediate
** that does not fit, wrong kind of op, OOM, ...) is remembered and
** reported by nub_pvm_builder_finish with the instruction index, so a
** generator can emit a whole program and check once. */
typedef struct nub_pvm_builder nub_pvm_builder;

NUB_API nub_pvm_builder *nub_pvm_builder_new(nub_pvm_profile profile);          /* NULL on OOM */
NUB_API void nub_pvm_builder_free(nub_pvm_builder *b);
NUB_API uint32_t nub_pvm_builder_label(nub_pvm_builder *b);                 /* new unbound label */
NUB_API void nub_pvm_builder_bind(nub_pvm_builder *b, uint32_t label);      /* label = next instruction */
/* Any non-branch instruction.  Registers follow the format's GP naming
** (see nub_pvm_insn): reg+imm formats use ra; REG_REG uses rd (dst) and ra;
** REG_REG_IMM / _OFFSET / _IMM_IMM use ra, rb; REG_REG_REG uses ra, rb,
** rd.  Unused arguments are ignored.  Immediates are the semantic 64-bit
** values (nu_X, nu_Y after sign extension); the shortest encoding that
** decodes to them is used.  load_imm_64 takes any value. */
NUB_API void nub_pvm_builder_insn(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint8_t rd,
                      uint64_t imm_x, uint64_t imm_y);
/* Static control flow to a label: jump, load_imm_jump, branch_*_imm
** (imm is nu_X) and branch_* (ra, rb).  Offset widths are relaxed. */
NUB_API void nub_pvm_builder_branch(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm,
                        uint32_t label);
NUB_API void nub_pvm_builder_jump_entry(nub_pvm_builder *b, uint32_t label);  /* append a jump-table entry */
/* Lay out (offset widths shrink from 4 bytes to a fixed point), resolve
** labels and emit the GP generic blob.  On error err->offset is the index
** of the instruction (every call that adds code counts, from 0) or, for
** PVM_ERR_JUMP_TABLE, of the jump table entry.  The caller frees *blob.
** The builder may be finished once. */
NUB_API int nub_pvm_builder_finish(nub_pvm_builder *b, uint8_t **blob, size_t *len, nub_pvm_error *err);

/* Exact encodings, for tools that must reproduce given bytes (the
** assembler) and for generators of unusual but valid programs. */
#define PVM_WIDTH_AUTO (-1)
#define PVM_RAW_AUTO   (-1)
typedef struct nub_pvm_encoding {
  int8_t width_x, width_y;        /* bytes of nu_X / nu_Y (offsets too):
                                     0..4, 8 for load_imm_64; AUTO = shortest */
  int16_t raw_ra, raw_rb, raw_rd; /* register field as encoded (13..15 and,
                                     in byte fields, more decode to r12 or
                                     carry ignored bits); AUTO = the register */
} nub_pvm_encoding;
#define PVM_ENCODING_AUTO \
  ((nub_pvm_encoding){PVM_WIDTH_AUTO, PVM_WIDTH_AUTO, PVM_RAW_AUTO, PVM_RAW_AUTO, PVM_RAW_AUTO})

/* As nub_pvm_builder_insn / _branch with encoding choices (enc may be NULL).
** An instruction directly followed by nub_pvm_builder_bytes gets its last
** immediate or offset as 4 bytes, since the decoder would read the
** following bytes into a shorter one (an explicit other width is an
** error). */
NUB_API void nub_pvm_builder_insn_enc(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb, uint8_t rd,
                          uint64_t imm_x, uint64_t imm_y, const nub_pvm_encoding *enc);
NUB_API void nub_pvm_builder_branch_enc(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb,
                            uint64_t imm, uint32_t label, const nub_pvm_encoding *enc);
/* Branch to an absolute pc that need not be a label (nor inside the code). */
NUB_API void nub_pvm_builder_branch_abs(nub_pvm_builder *b, nub_pvm_op op, uint8_t ra, uint8_t rb,
                            uint64_t imm, int64_t target, const nub_pvm_encoding *enc);
/* An instruction start followed verbatim by bytes[0..n) (1 <= n <= 25):
** invalid opcodes, truncated or otherwise unusual encodings. */
NUB_API void nub_pvm_builder_raw(nub_pvm_builder *b, const uint8_t *bytes, size_t n);
/* Code bytes that start no instruction (padding, unreachable bytes). */
NUB_API void nub_pvm_builder_bytes(nub_pvm_builder *b, const uint8_t *bytes, size_t n);
NUB_API void nub_pvm_builder_jump_entry_abs(nub_pvm_builder *b, uint32_t pc);
/* Jump table entry size 0..4; by default the smallest that holds every
** entry (at least 1 when there are entries). */
NUB_API void nub_pvm_builder_jump_size(nub_pvm_builder *b, unsigned size);

/* ------------------------------------------------------------------ */
/* Assembler text (docs/asm.md)                                         */
/* ------------------------------------------------------------------ */

#define PVM_DISASM_SPI 1u      /* the input is an SPI container */

/* Disassemble a generic blob (or an SPI container) into assembler text:
** one line per instruction with its pc and bytes in a comment, labels
** for branch and jump table targets.  nub_pvm_asm turns the text back into
** the same bytes, unusual encodings included.  *text is NUL-terminated;
** the caller frees it. */
NUB_API int nub_pvm_disasm(nub_pvm_profile profile, const uint8_t *in, size_t len, unsigned flags,
               char **text, size_t *text_len, nub_pvm_error *err);

/* Assemble text into a generic blob, or into an SPI container when the
** text uses SPI directives (*is_spi says which; may be NULL).  Errors
** start with "LINE:COLUMN: " and err->offset is the byte offset in text.
** The caller frees *out. */
NUB_API int nub_pvm_asm(nub_pvm_profile profile, const char *text, size_t len, uint8_t **out,
            size_t *out_len, bool *is_spi, nub_pvm_error *err);

/* ------------------------------------------------------------------ */
/* Standard program (SPI, GP A.7)                                       */
/* ------------------------------------------------------------------ */

#define PVM_ZONE      0x10000u     /* Z_Z */
#define PVM_ARGS_MAX  0x1000000u   /* Z_I */

typedef struct nub_pvm_spi {
  const uint8_t *ro_data;  uint32_t ro_len;    /* o */
  const uint8_t *rw_data;  uint32_t rw_len;    /* w */
  uint32_t heap_pages;                         /* z */
  uint32_t stack_size;                         /* s */
  const uint8_t *code_blob; uint32_t code_blob_len;  /* c (generic blob) */
} nub_pvm_spi;

/* The memory and register layout Y(p, a) produces. */
typedef struct nub_pvm_spi_layout {
  uint32_t ro_start, ro_size;        /* RO data, page-rounded size */
  uint32_t rw_start, rw_size;        /* RW data + heap pages */
  uint32_t heap_start, heap_top;     /* h (for sbrk) and initial top */
  uint32_t stack_start, stack_size;  /* RW, stack_start + size = top */
  uint32_t args_start, args_size;    /* RO */
  uint64_t regs[PVM_REGS];
} nub_pvm_spi_layout;

NUB_API int nub_pvm_spi_parse(const uint8_t *p, const uint8_t *end, nub_pvm_spi *out,
                  nub_pvm_error *err);
/* Encode an SPI container (the inverse of nub_pvm_spi_parse); checks the
** field limits (o, w, s < 2^24, z < 2^16, c < 2^32).  Caller frees *out. */
NUB_API int nub_pvm_spi_encode(const nub_pvm_spi *spi, uint8_t **out, size_t *len, nub_pvm_error *err);
/* Compute the layout for args of args_len bytes; checks A.41. */
NUB_API int nub_pvm_spi_layout_compute(const nub_pvm_spi *spi, uint32_t args_len,
                           nub_pvm_spi_layout *out, nub_pvm_error *err);
struct nub_pvm_mem;
/* Map the layout into mem (which should be empty) and copy o, w and the
** arguments in; also sets the sbrk heap. */
NUB_API int nub_pvm_spi_load_memory(struct nub_pvm_mem *mem, const nub_pvm_spi *spi,
                        const nub_pvm_spi_layout *layout, const uint8_t *args,
                        uint32_t args_len, nub_pvm_error *err);

/* ------------------------------------------------------------------ */
/* Loaded programs                                                      */
/* ------------------------------------------------------------------ */

/* A validated, owned program with its basic-block analysis and the
** interpreter's pre-decoded form.  Immutable after load but for caches
** filled on first use (under the gp08-draft and jamv1 profiles a gas
** block's cost is computed when first asked or entered; the
** interpreter's form when it first runs), each thread-safe: it may be
** shared by any number of VMs and threads. */
typedef struct nub_pvm_program nub_pvm_program;

NUB_API int nub_pvm_program_load(nub_pvm_profile profile, const uint8_t *blob, size_t len,
                     nub_pvm_program **out, nub_pvm_error *err);
NUB_API void nub_pvm_program_free(nub_pvm_program *prog);
NUB_API const nub_pvm_blob *nub_pvm_program_blob(const nub_pvm_program *prog);
NUB_API nub_pvm_profile nub_pvm_program_profile(const nub_pvm_program *prog);
/* pc is in the basic-block start set (varpi, A.5). */
NUB_API bool nub_pvm_program_is_block_start(const nub_pvm_program *prog, uint64_t pc);
/* Gas charged on entering at pc: the block cost at a block start, the
** cost of the rest of the block elsewhere. */
NUB_API int64_t nub_pvm_program_entry_cost(const nub_pvm_program *prog, uint32_t pc);
NUB_API uint32_t nub_pvm_program_block_count(const nub_pvm_program *prog);
/* Gas blocks in pc order: start at *cursor = 0; each call gives the next
** block's first pc, its cost and whether it is a basic block: one in
** varpi, or the implicit trap at the end of the code after a final
** fallthrough or conditional branch (the other gas blocks begin after an invalid opcode or at a
** synthetic trap, and are reached only by a mid-block initial pc).
** False after the last block. */
NUB_API bool nub_pvm_program_next_block(const nub_pvm_program *prog, uint32_t *cursor, uint32_t *pc,
                                    uint32_t *cost, bool *basic);
NUB_API uint32_t nub_pvm_program_insn_count(const nub_pvm_program *prog);
/* Memory (bytes) nub_pvm_program_load of the len-byte blob b may allocate at
** its peak: a bound from code_len and jump_count, so a caller can refuse
** a program before loading it. */
NUB_API uint64_t nub_pvm_program_load_bytes(const nub_pvm_blob *b, size_t len);
/* Memory a loaded program holds: its copy of the blob and the analysis
** (pre-decoded instructions, varpi bitset, resolved jump table). */
NUB_API size_t nub_pvm_program_bytes(const nub_pvm_program *prog);

/* ------------------------------------------------------------------ */
/* Memory                                                               */
/* ------------------------------------------------------------------ */

typedef enum nub_pvm_access {
  PVM_ACCESS_NONE = 0,
  PVM_ACCESS_RO = 1,
  PVM_ACCESS_RW = 2,
} nub_pvm_access;

/* A 4 GiB guest address space with per-page access.  Backed by one
** reserved host window so both engines address it as base + u32. */
typedef struct nub_pvm_mem nub_pvm_mem;

NUB_API int nub_pvm_mem_new(nub_pvm_mem **out, nub_pvm_error *err);
NUB_API void nub_pvm_mem_free(nub_pvm_mem *mem);
/* Make [addr, addr+len) accessible, zero-filled; page-aligned. */
NUB_API int nub_pvm_mem_map(nub_pvm_mem *mem, uint32_t addr, uint64_t len, nub_pvm_access acc,
                nub_pvm_error *err);
/* Change access of mapped or unmapped pages without touching contents;
** PVM_ACCESS_NONE keeps the bytes but makes them inaccessible. */
NUB_API int nub_pvm_mem_protect(nub_pvm_mem *mem, uint32_t addr, uint64_t len,
                    nub_pvm_access acc, nub_pvm_error *err);
/* Host-side copies; every page touched must be mapped (any access). */
NUB_API int nub_pvm_mem_write(nub_pvm_mem *mem, uint32_t addr, const void *src, uint64_t len,
                  nub_pvm_error *err);
NUB_API int nub_pvm_mem_read(const nub_pvm_mem *mem, uint32_t addr, void *dst, uint64_t len,
                 nub_pvm_error *err);
NUB_API nub_pvm_access nub_pvm_mem_access(const nub_pvm_mem *mem, uint32_t addr);
/* Drop every mapping: all pages inaccessible and zero again. */
NUB_API int nub_pvm_mem_reset(nub_pvm_mem *mem, nub_pvm_error *err);
/* sbrk state: the heap grows from top up to limit (exclusive). */
NUB_API void nub_pvm_mem_set_heap(nub_pvm_mem *mem, uint32_t top, uint32_t limit);
NUB_API uint32_t nub_pvm_mem_heap_top(const nub_pvm_mem *mem);
/* Number of accessible pages. */
NUB_API uint32_t nub_pvm_mem_mapped_pages(const nub_pvm_mem *mem);
/* Calls fn for each maximal run of pages with the same access != NONE. */
typedef void (*nub_pvm_mem_range_fn)(void *ud, uint32_t addr, uint64_t len,
                                 nub_pvm_access acc);
NUB_API void nub_pvm_mem_ranges(const nub_pvm_mem *mem, nub_pvm_mem_range_fn fn, void *ud);

/* Copy-on-write set-up (docs/architecture.md, "Memory of an invocation").
** Let nub_pvm_mem_place map pages instead of copying them: the size bytes at
** base in this process are a MAP_SHARED mapping of fd from offset (base,
** size and offset page aligned).  The caller keeps fd open and never changes
** bytes once they may have been placed.  fd -1 forgets the backing. */
NUB_API int nub_pvm_mem_set_backing(nub_pvm_mem *mem, int fd, uint64_t offset, const void *base, uint64_t size,
                        nub_pvm_error *err);
/* Give the mapped pages [addr, addr+len) a private copy of the len bytes
** at src (page multiples), keeping their access: one copy-on-write mapping
** per run of equal access when src is a page-aligned part of the backing,
** else a copy.  Writes to the pages never reach src. */
NUB_API int nub_pvm_mem_place(nub_pvm_mem *mem, uint32_t addr, const void *src, uint64_t len,
                  nub_pvm_error *err);
/* Make the mapped pages [addr, addr+len) zero again, keeping their access:
** one fresh mapping per run of equal access, no byte written. */
NUB_API int nub_pvm_mem_clear(nub_pvm_mem *mem, uint32_t addr, uint64_t len, nub_pvm_error *err);
/* The first page of [addr, addr+len) that is not mapped, if any. */
NUB_API bool nub_pvm_mem_find_unmapped(const nub_pvm_mem *mem, uint32_t addr, uint64_t len,
                           uint32_t *page);
/* Host work done since nub_pvm_mem_new (for tests and benchmarks). */
typedef struct nub_pvm_mem_work {
  uint64_t mmaps;          /* mmap calls (fresh, copy-on-write, reset) */
  uint64_t mprotects;      /* mprotect calls */
  uint64_t pages_copied;   /* pages written by nub_pvm_mem_write / _place copies */
} nub_pvm_mem_work;
NUB_API void nub_pvm_mem_get_work(const nub_pvm_mem *mem, nub_pvm_mem_work *out);

/* ------------------------------------------------------------------ */
/* Virtual machines and engines                                         */
/* ------------------------------------------------------------------ */

typedef enum nub_pvm_status {
  PVM_HALT = 0,            /* djump to the halt address */
  PVM_PANIC = 1,           /* trap, invalid instruction, bad jump, ... */
  PVM_OOG = 2,             /* could not pay for the next block */
  PVM_FAULT = 3,           /* page fault; exit_arg = page address */
  PVM_HOST = 4,            /* ecalli; exit_arg = immediate */
} nub_pvm_status;

NUB_API const char *nub_pvm_status_name(int status);

/* How the next nub_pvm_vm_run continues; set by the engine on exit. */
typedef enum nub_pvm_resume {
  PVM_RESUME_ENTER = 0,    /* charge for the block entered at pc */
  PVM_RESUME_RETRY,        /* page fault: re-run the instruction at pc */
  PVM_RESUME_NEXT,         /* host call: continue at next_pc */
  PVM_RESUME_DONE,         /* halted or panicked: running again panics */
} nub_pvm_resume;

struct nub_pvm_engine;

/* Architectural state of one VM.  The embedder may read and write regs,
** gas and memory between runs; changing pc must go through
** nub_pvm_vm_set_pc so that resumption state stays consistent. */
typedef struct nub_pvm_vm {
  uint64_t regs[PVM_REGS];
  int64_t gas;
  uint32_t pc;             /* pc of the exit (see nub_pvm_status) */
  uint32_t next_pc;        /* after PVM_HOST: where execution resumes */
  uint64_t exit_arg;       /* fault page address or host call id */
  uint8_t status;          /* nub_pvm_status of the last run */
  uint8_t resume;          /* nub_pvm_resume */
  /* bound objects (not owned) */
  const nub_pvm_program *prog;
  nub_pvm_mem *mem;
  const struct nub_pvm_engine *engine;
  void *code;              /* engine artifact for prog (JIT code) */
} nub_pvm_vm;

/* An execution engine.  compile() turns a program into an artifact that
** many VMs may share (the interpreter needs none); run() executes until
** an exit and stores it in vm->status/pc/next_pc/exit_arg.
** compile_within() and code_bytes() are optional (NULL: the engine's
** artifacts need no memory worth bounding): compile using at most
** max_bytes of memory for the artifact and the work arrays, failing with
** PVM_ERR_LIMIT beyond; and the bytes an artifact holds.
** vm_fini() must not read vm->prog or vm->code: the guest kernel keeps an
** idle lane's VM bound across invocations and may finish it after another
** lane has released that program and artifact (docs/kernel.md). */
typedef struct nub_pvm_engine {
  const char *name;
  int (*compile)(const nub_pvm_program *prog, void **code, nub_pvm_error *err);
  void (*release)(void *code);
  int (*vm_init)(nub_pvm_vm *vm, nub_pvm_error *err);
  void (*vm_fini)(nub_pvm_vm *vm);
  nub_pvm_status (*run)(nub_pvm_vm *vm);
  int (*compile_within)(const nub_pvm_program *prog, size_t max_bytes, void **code,
                        nub_pvm_error *err);
  size_t (*code_bytes)(const void *code);
} nub_pvm_engine;

NUB_API extern const nub_pvm_engine nub_pvm_engine_interp;

/* Bind a VM to a program, memory and engine.  code must come from
** engine->compile(prog) (NULL is fine for the interpreter).  Registers,
** gas and pc start at zero. */
NUB_API int nub_pvm_vm_init(nub_pvm_vm *vm, const nub_pvm_program *prog, nub_pvm_mem *mem,
                const nub_pvm_engine *engine, void *code, nub_pvm_error *err);
NUB_API void nub_pvm_vm_fini(nub_pvm_vm *vm);
NUB_API void nub_pvm_vm_set_pc(nub_pvm_vm *vm, uint32_t pc);
static inline nub_pvm_status nub_pvm_vm_run(nub_pvm_vm *vm) { return vm->engine->run(vm); }

/* Tracing hook for the interpreter (`nub run --trace`); NULL disables. */
typedef void (*nub_pvm_trace_fn)(void *ud, const nub_pvm_vm *vm, uint32_t pc);
NUB_API nub_pvm_status nub_pvm_interp_run_traced(nub_pvm_vm *vm, nub_pvm_trace_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
