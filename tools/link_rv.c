/*
** RISC-V instruction decoder for nub link: the RV64 integer base, M, A,
** C (expanded to the 32-bit forms) and Zbb, plus the nub host-call
** instruction (custom-0, docs/toolchain.md).  Register numbers are not
** checked against RV64E here; the translator refuses x16..x31, gp, tp.
*/
#include "link.h"

static const char *const names[RV_KIND_COUNT] = {
#define RV_NAME(e, n, c) n,
  RV_LIST(RV_NAME)
#undef RV_NAME
};
static const uint8_t classes[RV_KIND_COUNT] = {
#define RV_CLASS(e, n, c) c,
  RV_LIST(RV_CLASS)
#undef RV_CLASS
};

const char *rv_name(rv_kind k) { return k < RV_KIND_COUNT ? names[k] : "?"; }
rv_class rv_class_of(rv_kind k) { return (rv_class)classes[k]; }

const char *rv_reg_name(unsigned x) {
  static const char *const abi[32] = {
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
    "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
    "s10", "s11", "t3", "t4", "t5", "t6"};
  return x < 32 ? abi[x] : "?";
}

static int64_t sext(uint64_t v, unsigned bits) {
  uint64_t m = 1ull << (bits - 1);
  v &= (bits == 64) ? ~0ull : ((1ull << bits) - 1);
  return (int64_t)((v ^ m) - m);
}

#define BITS(v, hi, lo) (((v) >> (lo)) & ((1u << ((hi) - (lo) + 1)) - 1))

static void set(rv_insn *o, rv_kind k, unsigned rd, unsigned rs1, unsigned rs2, int64_t imm) {
  o->kind = (uint16_t)k;
  o->rd = (uint8_t)rd;
  o->rs1 = (uint8_t)rs1;
  o->rs2 = (uint8_t)rs2;
  o->imm = imm;
}

static int decode32(uint32_t w, rv_insn *o) {
  unsigned rd = BITS(w, 11, 7), rs1 = BITS(w, 19, 15), rs2 = BITS(w, 24, 20);
  unsigned f3 = BITS(w, 14, 12), f7 = BITS(w, 31, 25), f12 = BITS(w, 31, 20);
  int64_t imm_i = sext(w >> 20, 12);
  int64_t imm_s = sext((BITS(w, 31, 25) << 5) | BITS(w, 11, 7), 12);
  switch (w & 0x7f) {
  case 0x37: set(o, RV_LUI, rd, 0, 0, sext(w & 0xfffff000u, 32)); return 0;
  case 0x17: set(o, RV_AUIPC, rd, 0, 0, sext(w & 0xfffff000u, 32)); return 0;
  case 0x6f:
    set(o, RV_JAL, rd, 0, 0,
        sext((BITS(w, 31, 31) << 20) | (BITS(w, 19, 12) << 12) | (BITS(w, 20, 20) << 11) |
                 (BITS(w, 30, 21) << 1), 21));
    return 0;
  case 0x67:
    if (f3) return -1;
    set(o, RV_JALR, rd, rs1, 0, imm_i);
    return 0;
  case 0x63: {
    static const int8_t k[8] = {RV_BEQ, RV_BNE, -1, -1, RV_BLT, RV_BGE, RV_BLTU, RV_BGEU};
    if (k[f3] < 0) return -1;
    set(o, (rv_kind)k[f3], 0, rs1, rs2,
        sext((BITS(w, 31, 31) << 12) | (BITS(w, 7, 7) << 11) | (BITS(w, 30, 25) << 5) |
                 (BITS(w, 11, 8) << 1), 13));
    return 0;
  }
  case 0x03: {
    static const int8_t k[8] = {RV_LB, RV_LH, RV_LW, RV_LD, RV_LBU, RV_LHU, RV_LWU, -1};
    if (k[f3] < 0) return -1;
    set(o, (rv_kind)k[f3], rd, rs1, 0, imm_i);
    return 0;
  }
  case 0x23: {
    static const int8_t k[8] = {RV_SB, RV_SH, RV_SW, RV_SD, -1, -1, -1, -1};
    if (k[f3] < 0) return -1;
    set(o, (rv_kind)k[f3], 0, rs1, rs2, imm_s);
    return 0;
  }
  case 0x13:
    switch (f3) {
    case 0: set(o, RV_ADDI, rd, rs1, 0, imm_i); return 0;
    case 2: set(o, RV_SLTI, rd, rs1, 0, imm_i); return 0;
    case 3: set(o, RV_SLTIU, rd, rs1, 0, imm_i); return 0;
    case 4: set(o, RV_XORI, rd, rs1, 0, imm_i); return 0;
    case 6: set(o, RV_ORI, rd, rs1, 0, imm_i); return 0;
    case 7: set(o, RV_ANDI, rd, rs1, 0, imm_i); return 0;
    case 1:
      if (BITS(w, 31, 26) == 0) { set(o, RV_SLLI, rd, rs1, 0, BITS(w, 25, 20)); return 0; }
      switch (f12) {
      case 0x600: set(o, RV_CLZ, rd, rs1, 0, 0); return 0;
      case 0x601: set(o, RV_CTZ, rd, rs1, 0, 0); return 0;
      case 0x602: set(o, RV_CPOP, rd, rs1, 0, 0); return 0;
      case 0x604: set(o, RV_SEXTB, rd, rs1, 0, 0); return 0;
      case 0x605: set(o, RV_SEXTH, rd, rs1, 0, 0); return 0;
      }
      return -1;
    case 5:
      if (f12 == 0x287) { set(o, RV_ORCB, rd, rs1, 0, 0); return 0; }
      if (f12 == 0x6b8) { set(o, RV_REV8, rd, rs1, 0, 0); return 0; }
      switch (BITS(w, 31, 26)) {
      case 0x00: set(o, RV_SRLI, rd, rs1, 0, BITS(w, 25, 20)); return 0;
      case 0x10: set(o, RV_SRAI, rd, rs1, 0, BITS(w, 25, 20)); return 0;
      case 0x18: set(o, RV_RORI, rd, rs1, 0, BITS(w, 25, 20)); return 0;
      }
      return -1;
    }
    return -1;
  case 0x1b:
    if (f3 == 0) { set(o, RV_ADDIW, rd, rs1, 0, imm_i); return 0; }
    if (f3 == 1) {
      if (f7 == 0) { set(o, RV_SLLIW, rd, rs1, 0, rs2); return 0; }
      if (f12 == 0x600) { set(o, RV_CLZW, rd, rs1, 0, 0); return 0; }
      if (f12 == 0x601) { set(o, RV_CTZW, rd, rs1, 0, 0); return 0; }
      if (f12 == 0x602) { set(o, RV_CPOPW, rd, rs1, 0, 0); return 0; }
      return -1;
    }
    if (f3 == 5) {
      if (f7 == 0x00) { set(o, RV_SRLIW, rd, rs1, 0, rs2); return 0; }
      if (f7 == 0x20) { set(o, RV_SRAIW, rd, rs1, 0, rs2); return 0; }
      if (f7 == 0x30) { set(o, RV_RORIW, rd, rs1, 0, rs2); return 0; }
    }
    return -1;
  case 0x33: {
    static const int8_t base[8] = {RV_ADD, RV_SLL, RV_SLT, RV_SLTU, RV_XOR, RV_SRL, RV_OR, RV_AND};
    static const int8_t alt[8] = {RV_SUB, -1, -1, -1, RV_XNOR, RV_SRA, RV_ORN, RV_ANDN};
    static const int8_t mul[8] = {RV_MUL, RV_MULH, RV_MULHSU, RV_MULHU, RV_DIV, RV_DIVU, RV_REM, RV_REMU};
    static const int8_t mm[8] = {-1, -1, -1, -1, RV_MIN, RV_MINU, RV_MAX, RV_MAXU};
    static const int8_t rot[8] = {-1, RV_ROL, -1, -1, -1, RV_ROR, -1, -1};
    const int8_t *t = f7 == 0x00 ? base : f7 == 0x20 ? alt : f7 == 0x01 ? mul
                    : f7 == 0x05 ? mm : f7 == 0x30 ? rot : NULL;
    if (!t || t[f3] < 0) return -1;
    set(o, (rv_kind)t[f3], rd, rs1, rs2, 0);
    return 0;
  }
  case 0x3b: {
    static const int8_t base[8] = {RV_ADDW, RV_SLLW, -1, -1, -1, RV_SRLW, -1, -1};
    static const int8_t alt[8] = {RV_SUBW, -1, -1, -1, -1, RV_SRAW, -1, -1};
    static const int8_t mul[8] = {RV_MULW, -1, -1, -1, RV_DIVW, RV_DIVUW, RV_REMW, RV_REMUW};
    static const int8_t rot[8] = {-1, RV_ROLW, -1, -1, -1, RV_RORW, -1, -1};
    if (f7 == 0x04 && f3 == 4 && rs2 == 0) { set(o, RV_ZEXTH, rd, rs1, 0, 0); return 0; }
    const int8_t *t = f7 == 0x00 ? base : f7 == 0x20 ? alt : f7 == 0x01 ? mul
                    : f7 == 0x30 ? rot : NULL;
    if (!t || t[f3] < 0) return -1;
    set(o, (rv_kind)t[f3], rd, rs1, rs2, 0);
    return 0;
  }
  case 0x0f:
    if (f3 == 0) { set(o, RV_FENCE, 0, 0, 0, 0); return 0; }
    if (f3 == 1) { set(o, RV_FENCEI, 0, 0, 0, 0); return 0; }
    return -1;
  case 0x73:
    if (w == 0x00000073u) { set(o, RV_ECALL, 0, 0, 0, 0); return 0; }
    if (w == 0x00100073u) { set(o, RV_EBREAK, 0, 0, 0, 0); return 0; }
    if (w == 0xc0001073u) { set(o, RV_UNIMP, 0, 0, 0, 0); return 0; }
    if (f3 != 0 && f3 != 4) { set(o, RV_CSR, rd, rs1, 0, f12); return 0; }
    return -1;
  case 0x2f: {
    unsigned f5 = BITS(w, 31, 27);
    bool d = f3 == 3;
    if (f3 != 2 && f3 != 3) return -1;
    switch (f5) {
    case 0x02: if (rs2) return -1; set(o, d ? RV_LRD : RV_LRW, rd, rs1, 0, 0); return 0;
    case 0x03: set(o, d ? RV_SCD : RV_SCW, rd, rs1, rs2, 0); return 0;
    case 0x01: set(o, d ? RV_AMOSWAPD : RV_AMOSWAPW, rd, rs1, rs2, 0); return 0;
    case 0x00: set(o, d ? RV_AMOADDD : RV_AMOADDW, rd, rs1, rs2, 0); return 0;
    case 0x04: set(o, d ? RV_AMOXORD : RV_AMOXORW, rd, rs1, rs2, 0); return 0;
    case 0x0c: set(o, d ? RV_AMOANDD : RV_AMOANDW, rd, rs1, rs2, 0); return 0;
    case 0x08: set(o, d ? RV_AMOORD : RV_AMOORW, rd, rs1, rs2, 0); return 0;
    case 0x10: set(o, d ? RV_AMOMIND : RV_AMOMINW, rd, rs1, rs2, 0); return 0;
    case 0x14: set(o, d ? RV_AMOMAXD : RV_AMOMAXW, rd, rs1, rs2, 0); return 0;
    case 0x18: set(o, d ? RV_AMOMINUD : RV_AMOMINUW, rd, rs1, rs2, 0); return 0;
    case 0x1c: set(o, d ? RV_AMOMAXUD : RV_AMOMAXUW, rd, rs1, rs2, 0); return 0;
    }
    return -1;
  }
  case 0x0b:   /* custom-0: the nub host call, I-type with rd = rs1 = x0, funct3 0 */
    if (f3 || rd || rs1) return -1;
    set(o, RV_HOSTCALL, 0, 0, 0, (int64_t)(w >> 20));
    return 0;
  }
  return -1;
}

static int decode16(uint32_t h, rv_insn *o) {
  unsigned f3 = BITS(h, 15, 13);
  unsigned rdp = 8 + BITS(h, 4, 2), rs1p = 8 + BITS(h, 9, 7);
  unsigned rd = BITS(h, 11, 7), rs2 = BITS(h, 6, 2);
  int64_t imm6 = sext((BITS(h, 12, 12) << 5) | BITS(h, 6, 2), 6);
  unsigned lw_off = (BITS(h, 12, 10) << 3) | (BITS(h, 6, 6) << 2) | (BITS(h, 5, 5) << 6);
  unsigned ld_off = (BITS(h, 12, 10) << 3) | (BITS(h, 6, 5) << 6);
  if (h == 0) { set(o, RV_UNIMP, 0, 0, 0, 0); return 0; }
  switch (h & 3) {
  case 0:
    switch (f3) {
    case 0: {
      unsigned nz = (BITS(h, 12, 11) << 4) | (BITS(h, 10, 7) << 6) | (BITS(h, 6, 6) << 2) |
                    (BITS(h, 5, 5) << 3);
      if (!nz) return -1;
      set(o, RV_ADDI, rdp, 2, 0, nz);
      return 0;
    }
    case 2: set(o, RV_LW, rdp, rs1p, 0, lw_off); return 0;
    case 3: set(o, RV_LD, rdp, rs1p, 0, ld_off); return 0;
    case 6: set(o, RV_SW, 0, rs1p, rdp, lw_off); return 0;
    case 7: set(o, RV_SD, 0, rs1p, rdp, ld_off); return 0;
    }
    return -1;
  case 1:
    switch (f3) {
    case 0: set(o, RV_ADDI, rd, rd, 0, imm6); return 0;     /* c.nop when rd = 0 */
    case 1: if (!rd) return -1; set(o, RV_ADDIW, rd, rd, 0, imm6); return 0;
    case 2: set(o, RV_ADDI, rd, 0, 0, imm6); return 0;
    case 3:
      if (rd == 2) {
        int64_t nz = sext((BITS(h, 12, 12) << 9) | (BITS(h, 6, 6) << 4) | (BITS(h, 5, 5) << 6) |
                              (BITS(h, 4, 3) << 7) | (BITS(h, 2, 2) << 5), 10);
        if (!nz) return -1;
        set(o, RV_ADDI, 2, 2, 0, nz);
        return 0;
      }
      if (!imm6) return -1;
      set(o, RV_LUI, rd, 0, 0, imm6 * 4096);
      return 0;
    case 4: {
      unsigned sh = (BITS(h, 12, 12) << 5) | BITS(h, 6, 2);
      switch (BITS(h, 11, 10)) {
      case 0: set(o, RV_SRLI, rs1p, rs1p, 0, sh); return 0;
      case 1: set(o, RV_SRAI, rs1p, rs1p, 0, sh); return 0;
      case 2: set(o, RV_ANDI, rs1p, rs1p, 0, imm6); return 0;
      }
      static const int8_t k0[4] = {RV_SUB, RV_XOR, RV_OR, RV_AND};
      static const int8_t k1[4] = {RV_SUBW, RV_ADDW, -1, -1};
      int8_t k = (BITS(h, 12, 12) ? k1 : k0)[BITS(h, 6, 5)];
      if (k < 0) return -1;
      set(o, (rv_kind)k, rs1p, rs1p, rdp, 0);
      return 0;
    }
    case 5:
      set(o, RV_JAL, 0, 0, 0,
          sext((BITS(h, 12, 12) << 11) | (BITS(h, 11, 11) << 4) | (BITS(h, 10, 9) << 8) |
                   (BITS(h, 8, 8) << 10) | (BITS(h, 7, 7) << 6) | (BITS(h, 6, 6) << 7) |
                   (BITS(h, 5, 3) << 1) | (BITS(h, 2, 2) << 5), 12));
      return 0;
    case 6: case 7:
      set(o, f3 == 6 ? RV_BEQ : RV_BNE, 0, rs1p, 0,
          sext((BITS(h, 12, 12) << 8) | (BITS(h, 11, 10) << 3) | (BITS(h, 6, 5) << 6) |
                   (BITS(h, 4, 3) << 1) | (BITS(h, 2, 2) << 5), 9));
      return 0;
    }
    return -1;
  case 2:
    switch (f3) {
    case 0: set(o, RV_SLLI, rd, rd, 0, (BITS(h, 12, 12) << 5) | BITS(h, 6, 2)); return 0;
    case 2:
      if (!rd) return -1;
      set(o, RV_LW, rd, 2, 0, (BITS(h, 12, 12) << 5) | (BITS(h, 6, 4) << 2) | (BITS(h, 3, 2) << 6));
      return 0;
    case 3:
      if (!rd) return -1;
      set(o, RV_LD, rd, 2, 0, (BITS(h, 12, 12) << 5) | (BITS(h, 6, 5) << 3) | (BITS(h, 4, 2) << 6));
      return 0;
    case 4:
      if (!BITS(h, 12, 12)) {
        if (!rs2) { if (!rd) return -1; set(o, RV_JALR, 0, rd, 0, 0); return 0; }
        set(o, RV_ADD, rd, 0, rs2, 0);
        return 0;
      }
      if (!rs2 && !rd) { set(o, RV_EBREAK, 0, 0, 0, 0); return 0; }
      if (!rs2) { set(o, RV_JALR, 1, rd, 0, 0); return 0; }
      set(o, RV_ADD, rd, rd, rs2, 0);
      return 0;
    case 6: set(o, RV_SW, 0, 2, rs2, (BITS(h, 12, 9) << 2) | (BITS(h, 8, 7) << 6)); return 0;
    case 7: set(o, RV_SD, 0, 2, rs2, (BITS(h, 12, 10) << 3) | (BITS(h, 9, 7) << 6)); return 0;
    }
    return -1;
  }
  return -1;
}

int rv_decode(const uint8_t *p, const uint8_t *end, rv_insn *out) {
  out->kind = RV_KIND_COUNT;
  out->rd = out->rs1 = out->rs2 = 0;
  out->imm = 0;
  if (end - p < 2) { out->len = (uint8_t)(end - p); out->raw = end > p ? p[0] : 0; return -1; }
  uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8;
  if ((h & 3) != 3) {
    out->len = 2;
    out->raw = h;
    return decode16(h, out);
  }
  if (end - p < 4 || (h & 0x1c) == 0x1c) {   /* truncated, or a 48-bit+ encoding */
    out->len = end - p < 4 ? (uint8_t)(end - p) : 4;
    out->raw = h;
    return -1;
  }
  out->len = 4;
  out->raw = h | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return decode32(out->raw, out);
}
