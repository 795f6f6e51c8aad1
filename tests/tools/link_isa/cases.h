/*
** Instruction-form cases of the nub link coverage test (test_link_isa.c):
** shared by the RISC-V side (cases.c, compiled by clang-19) and the host
** side (the names).  X(name) in the order of the case table.
*/
#ifndef LINK_ISA_CASES_H
#define LINK_ISA_CASES_H

#define ISA_RR(X) \
  X(add) X(sub) X(sll) X(slt) X(sltu) X(xor) X(srl) X(sra) X(or) X(and) \
  X(addw) X(subw) X(sllw) X(srlw) X(sraw) \
  X(mul) X(mulh) X(mulhsu) X(mulhu) X(div) X(divu) X(rem) X(remu) \
  X(mulw) X(divw) X(divuw) X(remw) X(remuw) \
  X(andn) X(orn) X(xnor) X(max) X(maxu) X(min) X(minu) X(rol) X(ror) X(rolw) X(rorw)

#define ISA_CASES(X) \
  ISA_RR(X) \
  X(addi_neg2048) X(addi_2047) X(slti_neg1) X(sltiu_neg1) X(sltiu_1) X(xori_neg1) \
  X(ori_0x555) X(andi_neg16) X(slli_0) X(slli_63) X(srli_1) X(srli_63) X(srai_1) \
  X(srai_63) X(addiw_7) X(addiw_neg1) X(slliw_31) X(srliw_0) X(srliw_31) X(sraiw_31) \
  X(rori_13) X(roriw_7) \
  X(clz) X(ctz) X(cpop) X(clzw) X(ctzw) X(cpopw) X(sext_b) X(sext_h) X(zext_h) X(rev8) \
  X(neg_sub_zero) X(negw_subw_zero) X(snez_sltu_zero) X(sltz_slt_zero) X(sgtz_slt_zero) \
  X(sext_w_addw_zero) X(div_by_zero_reg) X(divw_by_zero_reg) X(remu_zero_dividend) \
  X(div_zero_dividend_same_rd) X(mul_by_zero_reg) \
  X(c_add) X(c_sub) X(c_xor) X(c_or) X(c_and) X(c_subw) X(c_addw) X(c_mv) X(c_addi) \
  X(c_addiw) X(c_li) X(c_lui) X(c_srli) X(c_srai) X(c_andi) X(c_slli) \
  X(lui_pos) X(lui_neg) X(li_64bit) \
  X(lb) X(lh) X(lw) X(ld) X(lbu) X(lhu) X(lwu) X(lh_misaligned) X(lw_misaligned) \
  X(ld_misaligned) X(lhu_misaligned) X(lwu_misaligned) X(sb) X(sh_misaligned) \
  X(sw_misaligned) X(sd_misaligned) X(store_zero) X(c_lw_c_sw) X(c_ld_c_sd) X(stack_sp) \
  X(beq) X(bne) X(blt) X(bge) X(bltu) X(bgeu) X(beqz) X(bnez) X(bltz) X(bgez) X(blez) \
  X(bgtz) X(bltu_zero_never) X(bgeu_zero_always) X(c_beqz) X(c_bnez) \
  X(jal_call) X(jalr_fnptr) X(jalr_fnptr_rw_data) X(switch_table) X(global_table) X(recursion) \
  X(amoadd_w) X(amoadd_d) X(amoswap_w) X(amoswap_d) X(amoand_d) X(amoor_w) X(amoxor_d) \
  X(amomin_w) X(amomax_w) X(amominu_w) X(amomaxu_w) X(amomin_d) X(amomaxu_d) \
  X(amoadd_rd_is_rs1) X(amoswap_rd_is_rs2) X(lr_sc_w) X(lr_sc_d)

/* Inputs: every case runs on every (a, b) pair. */
#define ISA_INPUTS \
  0x0ull, 0x1ull, 0x2ull, 0xffffffffffffffffull, 0xfffffffffffffffeull, 0x5ull, 0x1full, \
  0x20ull, 0x3full, 0x40ull, 0x41ull, 0x7fffffffull, 0x80000000ull, 0xffffffffull, \
  0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, 0x123456789abcdef0ull, \
  0xfedcba9876543210ull, 0xfffffffffffffff9ull

#endif
