/*
** ISA tables: the one place that knows opcode numbering, formats,
** terminators and gas costs (per instruction for gp07, the A.10 cost
** rows for the pipeline model) for each profile.
*/
#include <string.h>

#include "pvm_internal.h"
#include "../util/nub_assert.h"

typedef struct op_row {
  const char *name;
  uint8_t format, width, flags;
} op_row;

static const op_row op_rows[PVM_OP_COUNT] = {
#define ROW(e, n, f, w, fl) [PVM_OP_##e] = {n, PVM_FMT_##f, w, fl},
  PVM_OP_LIST(ROW)
#undef ROW
};

/* A profile is a list of (opcode byte, op) pairs plus a gas rule. */
typedef struct op_code { uint8_t byte; uint8_t op; } op_code;

static const op_code gp07_codes[] = {
  {0, PVM_OP_TRAP}, {1, PVM_OP_FALLTHROUGH}, {10, PVM_OP_ECALLI},
  {20, PVM_OP_LOAD_IMM_64},
  {30, PVM_OP_STORE_IMM_U8}, {31, PVM_OP_STORE_IMM_U16},
  {32, PVM_OP_STORE_IMM_U32}, {33, PVM_OP_STORE_IMM_U64},
  {40, PVM_OP_JUMP},
  {50, PVM_OP_JUMP_IND}, {51, PVM_OP_LOAD_IMM},
  {52, PVM_OP_LOAD_U8}, {53, PVM_OP_LOAD_I8}, {54, PVM_OP_LOAD_U16},
  {55, PVM_OP_LOAD_I16}, {56, PVM_OP_LOAD_U32}, {57, PVM_OP_LOAD_I32},
  {58, PVM_OP_LOAD_U64},
  {59, PVM_OP_STORE_U8}, {60, PVM_OP_STORE_U16}, {61, PVM_OP_STORE_U32},
  {62, PVM_OP_STORE_U64},
  {70, PVM_OP_STORE_IMM_IND_U8}, {71, PVM_OP_STORE_IMM_IND_U16},
  {72, PVM_OP_STORE_IMM_IND_U32}, {73, PVM_OP_STORE_IMM_IND_U64},
  {80, PVM_OP_LOAD_IMM_JUMP},
  {81, PVM_OP_BRANCH_EQ_IMM}, {82, PVM_OP_BRANCH_NE_IMM},
  {83, PVM_OP_BRANCH_LT_U_IMM}, {84, PVM_OP_BRANCH_LE_U_IMM},
  {85, PVM_OP_BRANCH_GE_U_IMM}, {86, PVM_OP_BRANCH_GT_U_IMM},
  {87, PVM_OP_BRANCH_LT_S_IMM}, {88, PVM_OP_BRANCH_LE_S_IMM},
  {89, PVM_OP_BRANCH_GE_S_IMM}, {90, PVM_OP_BRANCH_GT_S_IMM},
  {100, PVM_OP_MOVE_REG}, {101, PVM_OP_SBRK},
  {102, PVM_OP_COUNT_SET_BITS_64}, {103, PVM_OP_COUNT_SET_BITS_32},
  {104, PVM_OP_LEADING_ZERO_BITS_64}, {105, PVM_OP_LEADING_ZERO_BITS_32},
  {106, PVM_OP_TRAILING_ZERO_BITS_64}, {107, PVM_OP_TRAILING_ZERO_BITS_32},
  {108, PVM_OP_SIGN_EXTEND_8}, {109, PVM_OP_SIGN_EXTEND_16},
  {110, PVM_OP_ZERO_EXTEND_16}, {111, PVM_OP_REVERSE_BYTES},
  {120, PVM_OP_STORE_IND_U8}, {121, PVM_OP_STORE_IND_U16},
  {122, PVM_OP_STORE_IND_U32}, {123, PVM_OP_STORE_IND_U64},
  {124, PVM_OP_LOAD_IND_U8}, {125, PVM_OP_LOAD_IND_I8},
  {126, PVM_OP_LOAD_IND_U16}, {127, PVM_OP_LOAD_IND_I16},
  {128, PVM_OP_LOAD_IND_U32}, {129, PVM_OP_LOAD_IND_I32},
  {130, PVM_OP_LOAD_IND_U64},
  {131, PVM_OP_ADD_IMM_32}, {132, PVM_OP_AND_IMM}, {133, PVM_OP_XOR_IMM},
  {134, PVM_OP_OR_IMM}, {135, PVM_OP_MUL_IMM_32}, {136, PVM_OP_SET_LT_U_IMM},
  {137, PVM_OP_SET_LT_S_IMM}, {138, PVM_OP_SHLO_L_IMM_32},
  {139, PVM_OP_SHLO_R_IMM_32}, {140, PVM_OP_SHAR_R_IMM_32},
  {141, PVM_OP_NEG_ADD_IMM_32}, {142, PVM_OP_SET_GT_U_IMM},
  {143, PVM_OP_SET_GT_S_IMM}, {144, PVM_OP_SHLO_L_IMM_ALT_32},
  {145, PVM_OP_SHLO_R_IMM_ALT_32}, {146, PVM_OP_SHAR_R_IMM_ALT_32},
  {147, PVM_OP_CMOV_IZ_IMM}, {148, PVM_OP_CMOV_NZ_IMM},
  {149, PVM_OP_ADD_IMM_64}, {150, PVM_OP_MUL_IMM_64},
  {151, PVM_OP_SHLO_L_IMM_64}, {152, PVM_OP_SHLO_R_IMM_64},
  {153, PVM_OP_SHAR_R_IMM_64}, {154, PVM_OP_NEG_ADD_IMM_64},
  {155, PVM_OP_SHLO_L_IMM_ALT_64}, {156, PVM_OP_SHLO_R_IMM_ALT_64},
  {157, PVM_OP_SHAR_R_IMM_ALT_64}, {158, PVM_OP_ROT_R_64_IMM},
  {159, PVM_OP_ROT_R_64_IMM_ALT}, {160, PVM_OP_ROT_R_32_IMM},
  {161, PVM_OP_ROT_R_32_IMM_ALT},
  {170, PVM_OP_BRANCH_EQ}, {171, PVM_OP_BRANCH_NE},
  {172, PVM_OP_BRANCH_LT_U}, {173, PVM_OP_BRANCH_LT_S},
  {174, PVM_OP_BRANCH_GE_U}, {175, PVM_OP_BRANCH_GE_S},
  {180, PVM_OP_LOAD_IMM_JUMP_IND},
  {190, PVM_OP_ADD_32}, {191, PVM_OP_SUB_32}, {192, PVM_OP_MUL_32},
  {193, PVM_OP_DIV_U_32}, {194, PVM_OP_DIV_S_32}, {195, PVM_OP_REM_U_32},
  {196, PVM_OP_REM_S_32}, {197, PVM_OP_SHLO_L_32}, {198, PVM_OP_SHLO_R_32},
  {199, PVM_OP_SHAR_R_32}, {200, PVM_OP_ADD_64}, {201, PVM_OP_SUB_64},
  {202, PVM_OP_MUL_64}, {203, PVM_OP_DIV_U_64}, {204, PVM_OP_DIV_S_64},
  {205, PVM_OP_REM_U_64}, {206, PVM_OP_REM_S_64}, {207, PVM_OP_SHLO_L_64},
  {208, PVM_OP_SHLO_R_64}, {209, PVM_OP_SHAR_R_64}, {210, PVM_OP_AND},
  {211, PVM_OP_XOR}, {212, PVM_OP_OR}, {213, PVM_OP_MUL_UPPER_S_S},
  {214, PVM_OP_MUL_UPPER_U_U}, {215, PVM_OP_MUL_UPPER_S_U},
  {216, PVM_OP_SET_LT_U}, {217, PVM_OP_SET_LT_S}, {218, PVM_OP_CMOV_IZ},
  {219, PVM_OP_CMOV_NZ}, {220, PVM_OP_ROT_L_64}, {221, PVM_OP_ROT_L_32},
  {222, PVM_OP_ROT_R_64}, {223, PVM_OP_ROT_R_32}, {224, PVM_OP_AND_INV},
  {225, PVM_OP_OR_INV}, {226, PVM_OP_XNOR}, {227, PVM_OP_MAX},
  {228, PVM_OP_MAX_U}, {229, PVM_OP_MIN}, {230, PVM_OP_MIN_U},
};

/* GP 0.8 numbering.  The draft of the vectors is GP 0.7 plus unlikely at
** 3; the final text (JamV1) puts unlikely at 2, drops sbrk (it became the
** grow_heap host call) and moves 102-111 down to 101-110. */
static const op_code gp08_draft_extra[] = {{3, PVM_OP_UNLIKELY}};
static const op_code jamv1_moved[] = {
  {2, PVM_OP_UNLIKELY},
  {101, PVM_OP_COUNT_SET_BITS_64}, {102, PVM_OP_COUNT_SET_BITS_32},
  {103, PVM_OP_LEADING_ZERO_BITS_64}, {104, PVM_OP_LEADING_ZERO_BITS_32},
  {105, PVM_OP_TRAILING_ZERO_BITS_64}, {106, PVM_OP_TRAILING_ZERO_BITS_32},
  {107, PVM_OP_SIGN_EXTEND_8}, {108, PVM_OP_SIGN_EXTEND_16},
  {109, PVM_OP_ZERO_EXTEND_16}, {110, PVM_OP_REVERSE_BYTES},
};

/* ---- gas cost tables (GP 0.8.0 A.10; the draft's rows are the same
** plus sbrk) ---- */

#define UA  0x0000000001ull        /* one ALU */
#define UA2 0x0000000002ull        /* two ALUs (trailing_zero_bits) */
#define UL  0x0000000101ull        /* ALU + load unit */
#define US  0x0000010001ull        /* ALU + store unit */
#define UM  0x0001000001ull        /* ALU + multiplier */
#define UD  0x0100000001ull        /* ALU + divider */
#define A PVM_ROLE_A
#define B PVM_ROLE_B
#define D PVM_ROLE_D
#define FIX(c, s)      c, PVM_CYC_FIXED, s, s, PVM_SLOTS_FIXED
#define P(c, a, b)     c, PVM_CYC_FIXED, b, a, PVM_SLOTS_P
#define PS(c, a, b)    c, PVM_CYC_FIXED, b, a, PVM_SLOTS_PS
#define MEM            0, PVM_CYC_MEM, 1, 1, PVM_SLOTS_FIXED
#define BR             0, PVM_CYC_BRANCH, 1, 1, PVM_SLOTS_FIXED
/* op: cycles and decode slots, source fields, destination fields, units.
** Register roles follow the semantics of A.5 (add_64: rD = rA + rB;
** add_imm_64: rA = rB + X).  A conditional move's destination is not a
** source (cmov_iz: rD = rA if rB = 0): the reading that gives all 39 789
** block costs of the draft's integration programs (docs/gas.md). */
static const struct { uint8_t op; pvm_gas_row row; } gas_rows[] = {
#define R(op, cost, src, dst, units) {PVM_OP_##op, {cost, src, dst, units}},
  R(MOVE_REG,           FIX(0, 1),  A,     D, 0)
  R(AND,                P(1, 1, 2), A | B, D, UA)
  R(XOR,                P(1, 1, 2), A | B, D, UA)
  R(OR,                 P(1, 1, 2), A | B, D, UA)
  R(ADD_64,             P(1, 1, 2), A | B, D, UA)
  R(SUB_64,             P(1, 1, 2), A | B, D, UA)
  R(ADD_32,             P(2, 2, 3), A | B, D, UA)
  R(SUB_32,             P(2, 2, 3), A | B, D, UA)
  R(AND_IMM,            P(1, 1, 2), B,     A, UA)
  R(XOR_IMM,            P(1, 1, 2), B,     A, UA)
  R(OR_IMM,             P(1, 1, 2), B,     A, UA)
  R(ADD_IMM_64,         P(1, 1, 2), B,     A, UA)
  R(SHLO_R_IMM_64,      P(1, 1, 2), B,     A, UA)
  R(SHAR_R_IMM_64,      P(1, 1, 2), B,     A, UA)
  R(SHLO_L_IMM_64,      P(1, 1, 2), B,     A, UA)
  R(ROT_R_64_IMM,       P(1, 1, 2), B,     A, UA)
  R(REVERSE_BYTES,      P(1, 1, 2), A,     D, UA)
  R(ADD_IMM_32,         P(2, 2, 3), B,     A, UA)
  R(SHLO_R_IMM_32,      P(2, 2, 3), B,     A, UA)
  R(SHAR_R_IMM_32,      P(2, 2, 3), B,     A, UA)
  R(SHLO_L_IMM_32,      P(2, 2, 3), B,     A, UA)
  R(ROT_R_32_IMM,       P(2, 2, 3), B,     A, UA)
  R(COUNT_SET_BITS_64,  FIX(1, 1),  A,     D, UA)
  R(COUNT_SET_BITS_32,  FIX(1, 1),  A,     D, UA)
  R(LEADING_ZERO_BITS_64, FIX(1, 1), A,    D, UA)
  R(LEADING_ZERO_BITS_32, FIX(1, 1), A,    D, UA)
  R(SIGN_EXTEND_8,      FIX(1, 1),  A,     D, UA)
  R(SIGN_EXTEND_16,     FIX(1, 1),  A,     D, UA)
  R(ZERO_EXTEND_16,     FIX(1, 1),  A,     D, UA)
  R(TRAILING_ZERO_BITS_64, FIX(2, 1), A,   D, UA2)
  R(TRAILING_ZERO_BITS_32, FIX(2, 1), A,   D, UA2)
  R(SHLO_L_64,          PS(1, 2, 3), A | B, D, UA)
  R(SHLO_R_64,          PS(1, 2, 3), A | B, D, UA)
  R(SHAR_R_64,          PS(1, 2, 3), A | B, D, UA)
  R(ROT_L_64,           PS(1, 2, 3), A | B, D, UA)
  R(ROT_R_64,           PS(1, 2, 3), A | B, D, UA)
  R(SHLO_L_32,          PS(2, 3, 4), A | B, D, UA)
  R(SHLO_R_32,          PS(2, 3, 4), A | B, D, UA)
  R(SHAR_R_32,          PS(2, 3, 4), A | B, D, UA)
  R(ROT_L_32,           PS(2, 3, 4), A | B, D, UA)
  R(ROT_R_32,           PS(2, 3, 4), A | B, D, UA)
  R(SHLO_L_IMM_ALT_64,  FIX(1, 3),  B,     A, UA)
  R(SHLO_R_IMM_ALT_64,  FIX(1, 3),  B,     A, UA)
  R(SHAR_R_IMM_ALT_64,  FIX(1, 3),  B,     A, UA)
  R(ROT_R_64_IMM_ALT,   FIX(1, 3),  B,     A, UA)
  R(SHLO_L_IMM_ALT_32,  FIX(2, 4),  B,     A, UA)
  R(SHLO_R_IMM_ALT_32,  FIX(2, 4),  B,     A, UA)
  R(SHAR_R_IMM_ALT_32,  FIX(2, 4),  B,     A, UA)
  R(ROT_R_32_IMM_ALT,   FIX(2, 4),  B,     A, UA)
  R(SET_LT_U,           FIX(3, 3),  A | B, D, UA)
  R(SET_LT_S,           FIX(3, 3),  A | B, D, UA)
  R(SET_LT_U_IMM,       FIX(3, 3),  B,     A, UA)
  R(SET_LT_S_IMM,       FIX(3, 3),  B,     A, UA)
  R(SET_GT_U_IMM,       FIX(3, 3),  B,     A, UA)
  R(SET_GT_S_IMM,       FIX(3, 3),  B,     A, UA)
  R(CMOV_IZ,            FIX(2, 2),  A | B, D, UA)
  R(CMOV_NZ,            FIX(2, 2),  A | B, D, UA)
  R(CMOV_IZ_IMM,        FIX(2, 3),  B, A, UA)
  R(CMOV_NZ_IMM,        FIX(2, 3),  B, A, UA)
  R(MAX,                P(3, 2, 3), A | B, D, UA)
  R(MAX_U,              P(3, 2, 3), A | B, D, UA)
  R(MIN,                P(3, 2, 3), A | B, D, UA)
  R(MIN_U,              P(3, 2, 3), A | B, D, UA)
  R(LOAD_IND_U8,        MEM,        B,     A, UL)
  R(LOAD_IND_I8,        MEM,        B,     A, UL)
  R(LOAD_IND_U16,       MEM,        B,     A, UL)
  R(LOAD_IND_I16,       MEM,        B,     A, UL)
  R(LOAD_IND_U32,       MEM,        B,     A, UL)
  R(LOAD_IND_I32,       MEM,        B,     A, UL)
  R(LOAD_IND_U64,       MEM,        B,     A, UL)
  R(LOAD_U8,            MEM,        0,     A, UL)
  R(LOAD_I8,            MEM,        0,     A, UL)
  R(LOAD_U16,           MEM,        0,     A, UL)
  R(LOAD_I16,           MEM,        0,     A, UL)
  R(LOAD_U32,           MEM,        0,     A, UL)
  R(LOAD_I32,           MEM,        0,     A, UL)
  R(LOAD_U64,           MEM,        0,     A, UL)
  R(STORE_IMM_IND_U8,   FIX(25, 1), A,     0, US)
  R(STORE_IMM_IND_U16,  FIX(25, 1), A,     0, US)
  R(STORE_IMM_IND_U32,  FIX(25, 1), A,     0, US)
  R(STORE_IMM_IND_U64,  FIX(25, 1), A,     0, US)
  R(STORE_IND_U8,       FIX(25, 1), A | B, 0, US)
  R(STORE_IND_U16,      FIX(25, 1), A | B, 0, US)
  R(STORE_IND_U32,      FIX(25, 1), A | B, 0, US)
  R(STORE_IND_U64,      FIX(25, 1), A | B, 0, US)
  R(STORE_IMM_U8,       FIX(25, 1), 0,     0, US)
  R(STORE_IMM_U16,      FIX(25, 1), 0,     0, US)
  R(STORE_IMM_U32,      FIX(25, 1), 0,     0, US)
  R(STORE_IMM_U64,      FIX(25, 1), 0,     0, US)
  R(STORE_U8,           FIX(25, 1), A,     0, US)
  R(STORE_U16,          FIX(25, 1), A,     0, US)
  R(STORE_U32,          FIX(25, 1), A,     0, US)
  R(STORE_U64,          FIX(25, 1), A,     0, US)
  R(BRANCH_EQ,          BR,         A | B, 0, UA)
  R(BRANCH_NE,          BR,         A | B, 0, UA)
  R(BRANCH_LT_U,        BR,         A | B, 0, UA)
  R(BRANCH_LT_S,        BR,         A | B, 0, UA)
  R(BRANCH_GE_U,        BR,         A | B, 0, UA)
  R(BRANCH_GE_S,        BR,         A | B, 0, UA)
  R(BRANCH_EQ_IMM,      BR,         A,     0, UA)
  R(BRANCH_NE_IMM,      BR,         A,     0, UA)
  R(BRANCH_LT_U_IMM,    BR,         A,     0, UA)
  R(BRANCH_LE_U_IMM,    BR,         A,     0, UA)
  R(BRANCH_GE_U_IMM,    BR,         A,     0, UA)
  R(BRANCH_GT_U_IMM,    BR,         A,     0, UA)
  R(BRANCH_LT_S_IMM,    BR,         A,     0, UA)
  R(BRANCH_LE_S_IMM,    BR,         A,     0, UA)
  R(BRANCH_GE_S_IMM,    BR,         A,     0, UA)
  R(BRANCH_GT_S_IMM,    BR,         A,     0, UA)
  R(DIV_U_32,           FIX(60, 4), A | B, D, UD)
  R(DIV_S_32,           FIX(60, 4), A | B, D, UD)
  R(REM_U_32,           FIX(60, 4), A | B, D, UD)
  R(REM_S_32,           FIX(60, 4), A | B, D, UD)
  R(DIV_U_64,           FIX(60, 4), A | B, D, UD)
  R(DIV_S_64,           FIX(60, 4), A | B, D, UD)
  R(REM_U_64,           FIX(60, 4), A | B, D, UD)
  R(REM_S_64,           FIX(60, 4), A | B, D, UD)
  R(AND_INV,            FIX(2, 3),  A | B, D, UA)
  R(OR_INV,             FIX(2, 3),  A | B, D, UA)
  R(XNOR,               P(2, 2, 3), A | B, D, UA)
  R(NEG_ADD_IMM_64,     FIX(2, 3),  B,     A, UA)
  R(NEG_ADD_IMM_32,     FIX(3, 4),  B,     A, UA)
  R(LOAD_IMM,           FIX(1, 1),  0,     A, 0)
  R(LOAD_IMM_64,        FIX(1, 2),  0,     A, 0)
  R(MUL_64,             P(3, 1, 2), A | B, D, UM)
  R(MUL_32,             P(4, 2, 3), A | B, D, UM)
  R(MUL_IMM_64,         P(3, 1, 2), B,     A, UM)
  R(MUL_IMM_32,         P(4, 2, 3), B,     A, UM)
  R(MUL_UPPER_S_S,      FIX(4, 4),  A | B, D, UM)
  R(MUL_UPPER_U_U,      FIX(4, 4),  A | B, D, UM)
  R(MUL_UPPER_S_U,      FIX(6, 4),  A | B, D, UM)
  R(TRAP,               FIX(2, 1),  0,     0, 0)
  R(FALLTHROUGH,        FIX(2, 1),  0,     0, 0)
  R(UNLIKELY,           FIX(40, 1), 0,     0, 0)
  R(JUMP,               FIX(15, 1), 0,     0, 0)
  R(LOAD_IMM_JUMP,      FIX(15, 1), 0,     A, 0)
  R(JUMP_IND,           FIX(22, 1), A,     0, 0)
  R(LOAD_IMM_JUMP_IND,  FIX(22, 1), B,     A, 0)
  R(ECALLI,             FIX(100, 4), 0,    0, UA)
  /* the draft only: GP 0.8.0 drops sbrk (it became the grow_heap host call) */
  R(SBRK,               FIX(100, 4), A,    D, UA)
#undef R
};
#undef UA
#undef UA2
#undef UL
#undef US
#undef UM
#undef UD
#undef A
#undef B
#undef D
#undef FIX
#undef P
#undef PS
#undef MEM
#undef BR

pvm_gas_row pvm_gas_rows[PVM_OP_COUNT];

/* A profile starts from the GP 0.7 codes, drops the ops in `drop`, and
** adds (or renumbers) the pairs in `extra`. */
typedef struct profile_def {
  const char *name;
  const op_code *extra;
  unsigned nextra;
  nub_pvm_op drop_lo, drop_hi;   /* ops [drop_lo, drop_hi] of the 0.7 codes are not taken over */
  uint8_t gas_per_insn;
  pvm_gas_rules gas;
} profile_def;

#define COUNT_OF(a) (sizeof (a) / sizeof (a)[0])
static const profile_def profiles[PVM_PROFILE_COUNT] = {
  [PVM_PROFILE_GP07] = {"gp07", NULL, 0, PVM_OP_INVALID, PVM_OP_INVALID, 1,
                        {.pipeline = false}},
  /* the draft: m = 25 ("L2HIT"); its A.46-A.53 give the same costs as
  ** 0.8.0's (docs/gas.md) */
  [PVM_PROFILE_GP08_DRAFT] = {"gp08-draft", gp08_draft_extra, COUNT_OF(gp08_draft_extra),
                              PVM_OP_INVALID, PVM_OP_INVALID, 1,
                              {.pipeline = true, .mem_cycles = 25}},
  /* GP 0.8.0: m = 25, deblob checks every instruction of the code */
  [PVM_PROFILE_JAMV1] = {"jamv1", jamv1_moved, COUNT_OF(jamv1_moved),
                         PVM_OP_SBRK, PVM_OP_REVERSE_BYTES, 1,
                         {.pipeline = true, .mem_cycles = 25, .first_run_check = true}},
};
static unsigned ncodes[PVM_PROFILE_COUNT];

static nub_pvm_opinfo tables[PVM_PROFILE_COUNT][256];
static int16_t opcode_of[PVM_PROFILE_COUNT][PVM_OP_COUNT];
static pvm_gas_op gas_ops[PVM_PROFILE_COUNT][3 * 256];

static void add_code(nub_pvm_profile p, op_code c) {
  const op_row *r = &op_rows[c.op];
  tables[p][c.byte] = (nub_pvm_opinfo){r->name, c.op, r->format, r->flags, r->width,
                                   profiles[p].gas_per_insn};
  opcode_of[p][c.op] = c.byte;
  ncodes[p]++;
}

static void build_profile(nub_pvm_profile p) {
  const profile_def *d = &profiles[p];
  nub_pvm_opinfo *t = tables[p];
  for (unsigned i = 0; i < 256; i++)
    t[i] = (nub_pvm_opinfo){NULL, PVM_OP_INVALID, PVM_FMT_NONE, 0, 0,
                        d->gas_per_insn};
  for (unsigned i = 0; i < PVM_OP_COUNT; i++) opcode_of[p][i] = -1;
  for (unsigned i = 0; i < COUNT_OF(gp07_codes); i++) {
    nub_pvm_op op = (nub_pvm_op)gp07_codes[i].op;
    if (d->drop_lo != PVM_OP_INVALID && op >= d->drop_lo && op <= d->drop_hi) continue;
    add_code(p, gp07_codes[i]);
  }
  for (unsigned i = 0; i < d->nextra; i++) add_code(p, d->extra[i]);
}

/* Where a register role of a format comes from, as pvm_decode reads it
** (A.5): the low or high nibble of the byte after the opcode, or the
** whole byte after that (rD of the three-register format); a role the
** format lacks reads register 0 (the decoder leaves it 0); no role at
** all is NO_SRC / NO_DST. */
enum { FIELD_NONE, FIELD_ZERO, FIELD_LO, FIELD_HI, FIELD_NEXT };

static unsigned reg_field(nub_pvm_format f, unsigned role) {
  if (!role) return FIELD_NONE;
  switch (f) {
  case PVM_FMT_REG_IMM64: case PVM_FMT_REG_IMM: case PVM_FMT_REG_IMM_IMM:
  case PVM_FMT_REG_IMM_OFFSET:
    return role == PVM_ROLE_A ? FIELD_LO : FIELD_ZERO;
  case PVM_FMT_REG_REG:                        /* D low nibble, A high */
    return role == PVM_ROLE_D ? FIELD_LO : role == PVM_ROLE_A ? FIELD_HI : FIELD_ZERO;
  case PVM_FMT_REG_REG_IMM: case PVM_FMT_REG_REG_OFFSET: case PVM_FMT_REG_REG_IMM_IMM:
    return role == PVM_ROLE_A ? FIELD_LO : role == PVM_ROLE_B ? FIELD_HI : FIELD_ZERO;
  case PVM_FMT_REG_REG_REG:
    return role == PVM_ROLE_A ? FIELD_LO : role == PVM_ROLE_B ? FIELD_HI : FIELD_NEXT;
  default:
    return FIELD_ZERO;
  }
}

/* Register patterns: fields of src0, src1, dst and the slot rule, as the
** rows use them (a few dozen at most). */
#define MAX_PATTERNS 32
typedef struct reg_pattern { uint8_t field[3], slot_rule; } reg_pattern;
static reg_pattern patterns[MAX_PATTERNS];
static unsigned npatterns;
static uint64_t pattern_regs[MAX_PATTERNS][256];

static unsigned field_reg(unsigned field, unsigned byte, unsigned none) {
  unsigned r = field == FIELD_LO ? byte & 15 : field == FIELD_HI ? byte >> 4 : 0;
  return field == FIELD_NONE ? none : r > 12 ? 12 : r;
}

static void fill_pattern(unsigned k) {
  const reg_pattern *pt = &patterns[k];
  for (unsigned byte = 0; byte < 256; byte++) {
    unsigned s0 = field_reg(pt->field[0], byte, PVM_GAS_NO_SRC);
    unsigned s1 = field_reg(pt->field[1], byte, PVM_GAS_NO_SRC);
    unsigned d = field_reg(pt->field[2], byte, PVM_GAS_NO_DST);
    uint64_t entry = pvm_gas_insn_make(0, 0, false, s0, s1, d, 0);
    /* rD from the byte after: one overlap bit per value it can take */
    bool next = pt->field[2] == FIELD_NEXT;
    for (unsigned rd = 0; rd <= (next ? 12u : 0u); rd++) {
      unsigned dd = next ? rd : d;
      bool overlap = pt->slot_rule == PVM_SLOTS_P ? dd == s0 || dd == s1
                   : pt->slot_rule == PVM_SLOTS_PS ? dd == s0 : false;
      if (overlap) entry |= next ? 1ull << (PVM_GAS_OVERLAP_NEXT + rd) : PVM_GAS_OVERLAP;
    }
    pattern_regs[k][byte] = entry;
  }
}

/* The fast placer's table of a register pattern (pvm_gas_regs). */
static reg_pattern fast_patterns[MAX_PATTERNS];
static unsigned nfast_patterns;
static pvm_gas_regs fast_pattern_regs[MAX_PATTERNS][256];
/* rD of the three-register format for each byte value, and none */
static uint8_t rd_clamped[256], rd_none[256];

static void fill_fast_pattern(unsigned k) {
  const reg_pattern *pt = &fast_patterns[k];
  bool next = pt->field[2] == FIELD_NEXT;
  for (unsigned byte = 0; byte < 256; byte++) {
    unsigned s0 = field_reg(pt->field[0], byte, PVM_GAS_NO_SRC);
    unsigned s1 = field_reg(pt->field[1], byte, PVM_GAS_NO_SRC);
    unsigned d = field_reg(pt->field[2], byte, PVM_GAS_NO_DST);
    pvm_gas_regs *e = &fast_pattern_regs[k][byte];
    e->src0 = (uint8_t)s0;
    e->src1 = (uint8_t)s1;
    e->dst = (uint8_t)(next ? 0 : d);
    e->overlap = 0;
    for (unsigned rd = 0; rd <= 12; rd++) {
      unsigned dd = next ? rd : d;
      bool overlap = pt->slot_rule == PVM_SLOTS_P ? dd == s0 || dd == s1
                   : pt->slot_rule == PVM_SLOTS_PS ? dd == s0 : false;
      e->overlap |= (uint16_t)(overlap << rd);
    }
  }
}

static const pvm_gas_regs *fast_pattern_of(const unsigned field[3], unsigned slot_rule) {
  reg_pattern want = {{(uint8_t)field[0], (uint8_t)field[1], (uint8_t)field[2]}, (uint8_t)slot_rule};
  for (unsigned k = 0; k < nfast_patterns; k++)
    if (!memcmp(&fast_patterns[k], &want, sizeof want)) return fast_pattern_regs[k];
  NUB_ASSERT(nfast_patterns < MAX_PATTERNS);
  fast_patterns[nfast_patterns] = want;
  fill_fast_pattern(nfast_patterns);
  return fast_pattern_regs[nfast_patterns++];
}

static unsigned pattern_of(const unsigned field[3], unsigned slot_rule) {
  reg_pattern want = {{(uint8_t)field[0], (uint8_t)field[1], (uint8_t)field[2]}, (uint8_t)slot_rule};
  for (unsigned k = 0; k < npatterns; k++)
    if (!memcmp(&patterns[k], &want, sizeof want)) return k;
  NUB_ASSERT(npatterns < MAX_PATTERNS);
  patterns[npatterns] = want;
  fill_pattern(npatterns);
  return npatterns++;
}

/* The analysis row of an opcode byte (pvm_gas_op): its opcode table entry
** plus its A.10 row with m resolved; an invalid byte runs as trap. */
static void build_gas_op(nub_pvm_profile p, unsigned byte) {
  const nub_pvm_opinfo *info = &tables[p][byte];
  bool valid = info->name != NULL;
  nub_pvm_op op = valid ? (nub_pvm_op)info->op : PVM_OP_TRAP;
  const pvm_gas_row *r = &pvm_gas_rows[op];
  pvm_gas_op *g = &gas_ops[p][byte];
  memset(g, 0, sizeof *g);
  if (valid) g->flags |= PVM_GOP_VALID;
  if (valid && (info->flags & PVM_OPF_TERM)) g->flags |= PVM_GOP_TERM;
  if (valid && (info->flags & PVM_OPF_BRANCH)) g->flags |= PVM_GOP_BRANCH;
  if (!valid || (info->flags & PVM_OPF_TERM)) g->flags |= PVM_GOP_ENDS;
  if (r->cycle_rule == PVM_CYC_BRANCH) g->flags |= PVM_GOP_BRANCH_CYCLES;
  if (op == PVM_OP_MOVE_REG) g->flags |= PVM_GOP_MOVE;
  unsigned cycles = r->cycle_rule == PVM_CYC_MEM ? profiles[p].gas.mem_cycles
                  : r->cycle_rule == PVM_CYC_BRANCH ? 0 : r->cycles;
  /* P: a source is the destination; PS: rA = rD, and A is the first
  ** source of every PS row; a fixed row has one count */
  g->overlap_saves = r->slot_rule == PVM_SLOTS_FIXED ? 0 : (uint8_t)(r->slots - r->slots_overlap);
  nub_pvm_format f = (nub_pvm_format)info->format;
  unsigned field[3] = {FIELD_NONE, FIELD_NONE, reg_field(f, r->dst)}, k = 0;
  for (unsigned role = PVM_ROLE_A; role <= PVM_ROLE_D; role <<= 1)
    if (r->src & role) field[k++] = reg_field(f, role);
  NUB_ASSERT(field[0] != FIELD_NEXT && field[1] != FIELD_NEXT);
  g->dst_mask = field[2] == FIELD_NEXT ? 15 : 0;
  g->overlap_at = field[2] == FIELD_NEXT ? PVM_GAS_OVERLAP_NEXT : 63;
  g->regs = pattern_regs[pattern_of(field, r->slot_rule)];
  NUB_ASSERT(r->slots <= 15);
  g->fast_regs = fast_pattern_of(field, r->slot_rule);
  g->slots_of[0] = r->slots;
  g->slots_of[1] = r->slot_rule == PVM_SLOTS_FIXED ? r->slots : r->slots_overlap;
  g->rd_of = field[2] == FIELD_NEXT ? rd_clamped : rd_none;
  g->insn = pvm_gas_insn_make(cycles, r->slots, op == PVM_OP_MOVE_REG, 0, 0, 0,
                              pvm_gas_use_of(r->units));
  g->place = pvm_gas_place_of(cycles, pvm_gas_use_of(r->units));
  g->move = op == PVM_OP_MOVE_REG;
  /* the rows for b = 20 and b = 1 (PVM_GAS_OPS_HOT / _COLD) */
  for (unsigned b = 1; b <= 2; b++) {
    pvm_gas_op *alt = &gas_ops[p][b * 256 + byte];
    *alt = *g;
    if (g->flags & PVM_GOP_BRANCH_CYCLES) {
      alt->insn = g->insn | (b == 1 ? 20 : 1) << PVM_GI_CYCLES;
      alt->place = pvm_gas_place_of(b == 1 ? 20 : 1, pvm_gas_use_of(r->units));
    }
  }
}

/* Tables are built once, before any thread can race on them. */
__attribute__((constructor)) static void build_tables(void) {
  for (unsigned byte = 0; byte < 256; byte++) rd_clamped[byte] = (uint8_t)(byte > 12 ? 12 : byte);
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) build_profile((nub_pvm_profile)p);
  for (unsigned i = 0; i < COUNT_OF(gas_rows); i++) pvm_gas_rows[gas_rows[i].op] = gas_rows[i].row;
  for (int p = 0; p < PVM_PROFILE_COUNT; p++)
    for (unsigned byte = 0; byte < 256; byte++) build_gas_op((nub_pvm_profile)p, byte);
}

const pvm_gas_op *pvm_gas_ops(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? gas_ops[profile] : NULL;
}

const pvm_gas_rules *pvm_gas_rules_of(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? &profiles[profile].gas : NULL;
}

const nub_pvm_opinfo *nub_pvm_isa(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? tables[profile] : NULL;
}

const char *nub_pvm_profile_name(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? profiles[profile].name : "?";
}

int nub_pvm_profile_by_name(const char *name) {
  for (int p = 0; p < PVM_PROFILE_COUNT; p++)
    if (strcmp(name, profiles[p].name) == 0) return p;
  return -1;
}

int nub_pvm_opcode_of(nub_pvm_profile profile, nub_pvm_op op) {
  if ((unsigned)profile >= PVM_PROFILE_COUNT || (unsigned)op >= PVM_OP_COUNT)
    return -1;
  return opcode_of[profile][op];
}

int nub_pvm_opcode_by_name(nub_pvm_profile profile, const char *name, size_t len) {
  const nub_pvm_opinfo *t = nub_pvm_isa(profile);
  if (!t) return -1;
  for (int i = 0; i < 256; i++)
    if (t[i].name && strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0)
      return i;
  return -1;
}

unsigned nub_pvm_isa_count(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? ncodes[profile] : 0;
}

const char *nub_pvm_format_name(nub_pvm_format f) {
  static const char *names[PVM_FMT_COUNT] = {
    "none", "imm", "reg_imm64", "imm_imm", "offset", "reg_imm", "reg_imm_imm",
    "reg_imm_offset", "reg_reg", "reg_reg_imm", "reg_reg_offset",
    "reg_reg_imm_imm", "reg_reg_reg",
  };
  return (unsigned)f < PVM_FMT_COUNT ? names[f] : "?";
}

/* ---- formats (A.5.1 .. A.5.13) ---- */

#define O(x) PVM_OPND_##x
static const pvm_format_info format_infos[PVM_FMT_COUNT] = {
  /*                          operands                       fixed offset     trailing  x  y */
  [PVM_FMT_NONE]            = {{0},                              1, 0,         0,        0, 0},
  [PVM_FMT_IMM]             = {{O(X)},                           1, 0,         O(X),     1, 0},
  [PVM_FMT_REG_IMM64]       = {{O(RA), O(X)},                    2, 0,         0,        1, 0},
  [PVM_FMT_IMM_IMM]         = {{O(X), O(Y)},                     2, 0,         O(Y),     1, 1},
  [PVM_FMT_OFFSET]          = {{O(TARGET)},                      1, O(X),      O(X),     1, 0},
  [PVM_FMT_REG_IMM]         = {{O(RA), O(X)},                    2, 0,         O(X),     1, 0},
  [PVM_FMT_REG_IMM_IMM]     = {{O(RA), O(X), O(Y)},              2, 0,         O(Y),     1, 1},
  [PVM_FMT_REG_IMM_OFFSET]  = {{O(RA), O(X), O(TARGET)},         2, O(Y),      O(Y),     1, 1},
  [PVM_FMT_REG_REG]         = {{O(RD), O(RA)},                   2, 0,         0,        0, 0},
  [PVM_FMT_REG_REG_IMM]     = {{O(RA), O(RB), O(X)},             2, 0,         O(X),     1, 0},
  [PVM_FMT_REG_REG_OFFSET]  = {{O(RA), O(RB), O(TARGET)},        2, O(X),      O(X),     1, 0},
  [PVM_FMT_REG_REG_IMM_IMM] = {{O(RA), O(RB), O(X), O(Y)},       3, 0,         O(Y),     1, 1},
  [PVM_FMT_REG_REG_REG]     = {{O(RD), O(RA), O(RB)},            3, 0,         0,        0, 0},
};
#undef O

const pvm_format_info *pvm_format_info_of(nub_pvm_format f) {
  return (unsigned)f < PVM_FMT_COUNT ? &format_infos[f] : &format_infos[PVM_FMT_NONE];
}

pvm_regfield pvm_format_regfield(nub_pvm_format f, pvm_opnd reg) {
  if ((f == PVM_FMT_REG_IMM || f == PVM_FMT_REG_IMM64) && reg == PVM_OPND_RA)
    return PVM_REGF_LOW_NIBBLE_BYTE;
  if (f == PVM_FMT_REG_REG_REG && reg == PVM_OPND_RD) return PVM_REGF_BYTE;
  return PVM_REGF_NIBBLE;
}

int pvm_regfield_decode(pvm_regfield kind, unsigned raw) {
  if (raw > (kind == PVM_REGF_NIBBLE ? 15u : 255u)) return -1;
  if (kind == PVM_REGF_LOW_NIBBLE_BYTE) raw &= 15;
  return raw > 12 ? 12 : (int)raw;
}
