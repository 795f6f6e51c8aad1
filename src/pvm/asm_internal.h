/*
** The assembler's instruction model, shared by the assembler (text ->
** model -> builder) and the disassembler (bytes -> model -> text and
** builder), so that both drive the builder with the same calls.
*/
#ifndef NUB_PVM_ASM_INTERNAL_H
#define NUB_PVM_ASM_INTERNAL_H

#include "pvm_internal.h"

typedef struct pvm_asm_insn {
  uint8_t opcode;          /* a valid opcode of the profile */
  uint8_t reg[3];          /* ra, rb, rd: index by pvm_opnd - PVM_OPND_RA */
  int16_t raw[3];          /* PVM_RAW_AUTO or the register field as encoded */
  uint64_t imm[2];         /* nu_X, nu_Y (the one holding the offset is unused) */
  int8_t width[2];         /* PVM_WIDTH_AUTO or explicit widths of X, Y, offsets too */
  bool target_label;       /* branch target is builder label `label` ... */
  uint32_t label;
  int64_t target;          /* ... at this pc (for names), or this absolute pc */
} pvm_asm_insn;

static inline void pvm_asm_emit(nub_pvm_builder *b, nub_pvm_profile profile, const pvm_asm_insn *t) {
  const nub_pvm_opinfo *info = &nub_pvm_isa(profile)[t->opcode];
  nub_pvm_encoding e = {t->width[0], t->width[1], t->raw[0], t->raw[1], t->raw[2]};
  nub_pvm_op op = (nub_pvm_op)info->op;
  if (!(info->flags & PVM_OPF_BRANCH))
    nub_pvm_builder_insn_enc(b, op, t->reg[0], t->reg[1], t->reg[2], t->imm[0], t->imm[1], &e);
  else if (t->target_label)
    nub_pvm_builder_branch_enc(b, op, t->reg[0], t->reg[1], t->imm[0], t->label, &e);
  else
    nub_pvm_builder_branch_abs(b, op, t->reg[0], t->reg[1], t->imm[0], t->target, &e);
}

#endif
