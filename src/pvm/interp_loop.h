/*
** The interpreter loop, included twice by interp.c: once plain and once
** with INTERP_TRACE defined, so tracing costs nothing when it is off.
**
** Direct-threaded over pvm_xinsn: sequential flow is ip + 1, and gas is
** charged only where a block is entered (ENTER), never per instruction.
*/

#ifdef INTERP_TRACE
#define TRACE_HOOK() do { memcpy(vm->regs, r, sizeof r); vm->gas = gas; \
                          trace(ud, vm, ip->pc); } while (0)
#else
#define TRACE_HOOK() ((void)0)
#endif

#define DISPATCH() do { TRACE_HOOK(); goto *labels[ip->op]; } while (0)
#define NEXT()     do { ip++; DISPATCH(); } while (0)
#define ENTER(p)   do { ip = (p); if (PVM_UNLIKELY(gas < (int64_t)ip->gas)) goto out_of_gas; \
                        gas -= ip->gas; DISPATCH(); } while (0)
#define BRANCH(c)  do { if (c) { if (PVM_UNLIKELY(ip->target == PVM_NO_TARGET)) goto panic; \
                        ENTER(insns + ip->target); } ENTER(ip + 1); } while (0)

#define RA r[ip->a]
#define RB r[ip->b]
#define RD r[ip->d]
#define IMM1 ((uint64_t)(int64_t)(int32_t)ip->imm1)
#define IMM2 ((uint64_t)(int64_t)(int32_t)ip->imm2)

#define MEM_OK(addr, n, need) \
  (acc[(addr) >> PVM_PAGE_SHIFT] >= (need) && \
   acc[((uint64_t)(addr) + (n) - 1) >> PVM_PAGE_SHIFT] >= (need))

#define LOAD(dst, T, ext, addr_expr) do { \
    uint32_t addr_ = (uint32_t)(addr_expr); T v_; \
    if (PVM_UNLIKELY(!MEM_OK(addr_, sizeof(T), PVM_ACCESS_RO))) { \
      fault_addr = addr_; fault_len = sizeof(T); fault_write = false; goto mem_slow; } \
    memcpy(&v_, base + addr_, sizeof(T)); dst = ext(v_); NEXT(); } while (0)

#define STORE(T, value, addr_expr) do { \
    uint32_t addr_ = (uint32_t)(addr_expr); T v_ = (T)(value); \
    if (PVM_UNLIKELY(!MEM_OK(addr_, sizeof(T), PVM_ACCESS_RW))) { \
      fault_addr = addr_; fault_len = sizeof(T); fault_write = true; goto mem_slow; } \
    memcpy(base + addr_, &v_, sizeof(T)); NEXT(); } while (0)

#define ZX(v) ((uint64_t)(v))
#define SX8(v) ((uint64_t)(int64_t)(int8_t)(v))
#define SX16(v) ((uint64_t)(int64_t)(int16_t)(v))
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

{
  static const void *const labels[PVM_OP_COUNT] = {
#define LABEL(e, n, f, w, fl) [PVM_OP_##e] = &&op_##e,
    PVM_OP_LIST(LABEL)
#undef LABEL
  };
  const nub_pvm_program *prog = vm->prog;
  /* vm_init built the pre-decoded form; this only fails on a VM that
  ** another engine set up, when memory runs out */
  if (PVM_UNLIKELY(pvm_program_prepare_interp(prog, NULL))) {
    vm->status = PVM_PANIC;
    vm->resume = PVM_RESUME_DONE;
    return PVM_PANIC;
  }
  const pvm_xinsn *const insns = prog->insns;
  nub_pvm_mem *mem = vm->mem;
  uint8_t *const base = mem->base;
  const uint8_t *const acc = mem->access;
  const uint32_t *const jt = prog->jump_targets;
  const uint64_t jt_limit = (uint64_t)prog->blob.jump_count * PVM_JUMP_ALIGN;
  uint32_t start;
  if (!pvm_vm_resume_pc(vm, &start)) return (nub_pvm_status)vm->status;
  const pvm_xinsn *ip = insns + pvm_program_index_at(prog, start);
  uint64_t r[PVM_REGS];
  int64_t gas = vm->gas;
  uint32_t fault_addr = 0, fault_len = 0, fault_page = 0;
  bool fault_write = false;
  uint64_t djump_addr;

  memcpy(r, vm->regs, sizeof r);
  DISPATCH();

  /* ---- control ---- */
op_TRAP:
  goto panic;
op_FALLTHROUGH:
op_UNLIKELY:
  ENTER(ip + 1);
op_ECALLI:
  vm->status = PVM_HOST;
  vm->exit_arg = ip->imm1;
  vm->next_pc = ip[1].pc;
  vm->resume = PVM_RESUME_NEXT;
  goto exit_at_ip;
op_JUMP:
  BRANCH(1);
op_LOAD_IMM_JUMP:
  RA = IMM1;
  BRANCH(1);
op_JUMP_IND:
  djump_addr = (uint32_t)(RA + IMM1);
  goto djump;
op_LOAD_IMM_JUMP_IND:
  djump_addr = (uint32_t)(RB + IMM2);   /* old value of B, even when A == B */
  RA = IMM1;
  goto djump;
op_BRANCH_EQ_IMM:   BRANCH(RA == IMM1);
op_BRANCH_NE_IMM:   BRANCH(RA != IMM1);
op_BRANCH_LT_U_IMM: BRANCH(RA < IMM1);
op_BRANCH_LE_U_IMM: BRANCH(RA <= IMM1);
op_BRANCH_GE_U_IMM: BRANCH(RA >= IMM1);
op_BRANCH_GT_U_IMM: BRANCH(RA > IMM1);
op_BRANCH_LT_S_IMM: BRANCH((int64_t)RA < (int64_t)IMM1);
op_BRANCH_LE_S_IMM: BRANCH((int64_t)RA <= (int64_t)IMM1);
op_BRANCH_GE_S_IMM: BRANCH((int64_t)RA >= (int64_t)IMM1);
op_BRANCH_GT_S_IMM: BRANCH((int64_t)RA > (int64_t)IMM1);
op_BRANCH_EQ:   BRANCH(RA == RB);
op_BRANCH_NE:   BRANCH(RA != RB);
op_BRANCH_LT_U: BRANCH(RA < RB);
op_BRANCH_LT_S: BRANCH((int64_t)RA < (int64_t)RB);
op_BRANCH_GE_U: BRANCH(RA >= RB);
op_BRANCH_GE_S: BRANCH((int64_t)RA >= (int64_t)RB);

  /* ---- immediates and moves ---- */
op_LOAD_IMM_64: RA = (uint64_t)ip->imm1 | (uint64_t)ip->imm2 << 32; NEXT();
op_LOAD_IMM:    RA = IMM1; NEXT();
op_MOVE_REG:    RD = RA; NEXT();
op_SBRK:        RD = pvm_mem_sbrk(mem, RA); NEXT();

  /* ---- loads and stores ---- */
op_LOAD_U8:  LOAD(RA, uint8_t, ZX, IMM1);
op_LOAD_I8:  LOAD(RA, uint8_t, SX8, IMM1);
op_LOAD_U16: LOAD(RA, uint16_t, ZX, IMM1);
op_LOAD_I16: LOAD(RA, uint16_t, SX16, IMM1);
op_LOAD_U32: LOAD(RA, uint32_t, ZX, IMM1);
op_LOAD_I32: LOAD(RA, uint32_t, SX32, IMM1);
op_LOAD_U64: LOAD(RA, uint64_t, ZX, IMM1);
op_LOAD_IND_U8:  LOAD(RA, uint8_t, ZX, RB + IMM1);
op_LOAD_IND_I8:  LOAD(RA, uint8_t, SX8, RB + IMM1);
op_LOAD_IND_U16: LOAD(RA, uint16_t, ZX, RB + IMM1);
op_LOAD_IND_I16: LOAD(RA, uint16_t, SX16, RB + IMM1);
op_LOAD_IND_U32: LOAD(RA, uint32_t, ZX, RB + IMM1);
op_LOAD_IND_I32: LOAD(RA, uint32_t, SX32, RB + IMM1);
op_LOAD_IND_U64: LOAD(RA, uint64_t, ZX, RB + IMM1);
op_STORE_U8:  STORE(uint8_t, RA, IMM1);
op_STORE_U16: STORE(uint16_t, RA, IMM1);
op_STORE_U32: STORE(uint32_t, RA, IMM1);
op_STORE_U64: STORE(uint64_t, RA, IMM1);
op_STORE_IMM_U8:  STORE(uint8_t, IMM2, IMM1);
op_STORE_IMM_U16: STORE(uint16_t, IMM2, IMM1);
op_STORE_IMM_U32: STORE(uint32_t, IMM2, IMM1);
op_STORE_IMM_U64: STORE(uint64_t, IMM2, IMM1);
op_STORE_IMM_IND_U8:  STORE(uint8_t, IMM2, RA + IMM1);
op_STORE_IMM_IND_U16: STORE(uint16_t, IMM2, RA + IMM1);
op_STORE_IMM_IND_U32: STORE(uint32_t, IMM2, RA + IMM1);
op_STORE_IMM_IND_U64: STORE(uint64_t, IMM2, RA + IMM1);
op_STORE_IND_U8:  STORE(uint8_t, RA, RB + IMM1);
op_STORE_IND_U16: STORE(uint16_t, RA, RB + IMM1);
op_STORE_IND_U32: STORE(uint32_t, RA, RB + IMM1);
op_STORE_IND_U64: STORE(uint64_t, RA, RB + IMM1);

  /* ---- two registers (D <- f(A)) ---- */
op_COUNT_SET_BITS_64:     RD = (uint64_t)__builtin_popcountll(RA); NEXT();
op_COUNT_SET_BITS_32:     RD = (uint64_t)__builtin_popcount((uint32_t)RA); NEXT();
op_LEADING_ZERO_BITS_64:  RD = RA ? (uint64_t)__builtin_clzll(RA) : 64; NEXT();
op_LEADING_ZERO_BITS_32:  RD = (uint32_t)RA ? (uint64_t)__builtin_clz((uint32_t)RA) : 32; NEXT();
op_TRAILING_ZERO_BITS_64: RD = RA ? (uint64_t)__builtin_ctzll(RA) : 64; NEXT();
op_TRAILING_ZERO_BITS_32: RD = (uint32_t)RA ? (uint64_t)__builtin_ctz((uint32_t)RA) : 32; NEXT();
op_SIGN_EXTEND_8:  RD = SX8(RA); NEXT();
op_SIGN_EXTEND_16: RD = SX16(RA); NEXT();
op_ZERO_EXTEND_16: RD = (uint16_t)RA; NEXT();
op_REVERSE_BYTES:  RD = __builtin_bswap64(RA); NEXT();

  /* ---- two registers and an immediate (A <- f(B, X)) ---- */
op_ADD_IMM_32:  RA = SX32(RB + IMM1); NEXT();
op_AND_IMM:     RA = RB & IMM1; NEXT();
op_XOR_IMM:     RA = RB ^ IMM1; NEXT();
op_OR_IMM:      RA = RB | IMM1; NEXT();
op_MUL_IMM_32:  RA = SX32(RB * IMM1); NEXT();
op_SET_LT_U_IMM: RA = RB < IMM1; NEXT();
op_SET_LT_S_IMM: RA = (int64_t)RB < (int64_t)IMM1; NEXT();
op_SET_GT_U_IMM: RA = RB > IMM1; NEXT();
op_SET_GT_S_IMM: RA = (int64_t)RB > (int64_t)IMM1; NEXT();
op_SHLO_L_IMM_32: RA = SX32((uint32_t)RB << (ip->imm1 & 31)); NEXT();
op_SHLO_R_IMM_32: RA = SX32((uint32_t)RB >> (ip->imm1 & 31)); NEXT();
op_SHAR_R_IMM_32: RA = (uint64_t)(int64_t)((int32_t)RB >> (ip->imm1 & 31)); NEXT();
op_SHLO_L_IMM_ALT_32: RA = SX32(ip->imm1 << (RB & 31)); NEXT();
op_SHLO_R_IMM_ALT_32: RA = SX32(ip->imm1 >> (RB & 31)); NEXT();
op_SHAR_R_IMM_ALT_32: RA = (uint64_t)(int64_t)((int32_t)ip->imm1 >> (RB & 31)); NEXT();
op_NEG_ADD_IMM_32: RA = SX32(IMM1 - RB); NEXT();
op_CMOV_IZ_IMM: if (RB == 0) RA = IMM1; NEXT();
op_CMOV_NZ_IMM: if (RB != 0) RA = IMM1; NEXT();
op_ADD_IMM_64:  RA = RB + IMM1; NEXT();
op_MUL_IMM_64:  RA = RB * IMM1; NEXT();
op_SHLO_L_IMM_64: RA = RB << (ip->imm1 & 63); NEXT();
op_SHLO_R_IMM_64: RA = RB >> (ip->imm1 & 63); NEXT();
op_SHAR_R_IMM_64: RA = (uint64_t)((int64_t)RB >> (ip->imm1 & 63)); NEXT();
op_NEG_ADD_IMM_64: RA = IMM1 - RB; NEXT();
op_SHLO_L_IMM_ALT_64: RA = IMM1 << (RB & 63); NEXT();
op_SHLO_R_IMM_ALT_64: RA = IMM1 >> (RB & 63); NEXT();
op_SHAR_R_IMM_ALT_64: RA = (uint64_t)((int64_t)IMM1 >> (RB & 63)); NEXT();
op_ROT_R_64_IMM:     RA = rotr64(RB, ip->imm1); NEXT();
op_ROT_R_64_IMM_ALT: RA = rotr64(IMM1, (uint32_t)RB); NEXT();
op_ROT_R_32_IMM:     RA = SX32(rotr32((uint32_t)RB, ip->imm1)); NEXT();
op_ROT_R_32_IMM_ALT: RA = SX32(rotr32(ip->imm1, (uint32_t)RB)); NEXT();

  /* ---- three registers (D <- f(A, B)) ---- */
op_ADD_32: RD = SX32(RA + RB); NEXT();
op_SUB_32: RD = SX32((uint32_t)RA - (uint32_t)RB); NEXT();
op_MUL_32: RD = SX32(RA * RB); NEXT();
op_DIV_U_32: RD = div_u32(RA, RB); NEXT();
op_DIV_S_32: RD = div_s32(RA, RB); NEXT();
op_REM_U_32: RD = rem_u32(RA, RB); NEXT();
op_REM_S_32: RD = rem_s32(RA, RB); NEXT();
op_SHLO_L_32: RD = SX32((uint32_t)RA << (RB & 31)); NEXT();
op_SHLO_R_32: RD = SX32((uint32_t)RA >> (RB & 31)); NEXT();
op_SHAR_R_32: RD = (uint64_t)(int64_t)((int32_t)RA >> (RB & 31)); NEXT();
op_ADD_64: RD = RA + RB; NEXT();
op_SUB_64: RD = RA - RB; NEXT();
op_MUL_64: RD = RA * RB; NEXT();
op_DIV_U_64: RD = div_u64(RA, RB); NEXT();
op_DIV_S_64: RD = div_s64(RA, RB); NEXT();
op_REM_U_64: RD = rem_u64(RA, RB); NEXT();
op_REM_S_64: RD = rem_s64(RA, RB); NEXT();
op_SHLO_L_64: RD = RA << (RB & 63); NEXT();
op_SHLO_R_64: RD = RA >> (RB & 63); NEXT();
op_SHAR_R_64: RD = (uint64_t)((int64_t)RA >> (RB & 63)); NEXT();
op_AND: RD = RA & RB; NEXT();
op_XOR: RD = RA ^ RB; NEXT();
op_OR:  RD = RA | RB; NEXT();
op_MUL_UPPER_S_S: RD = mulh_ss(RA, RB); NEXT();
op_MUL_UPPER_U_U: RD = mulh_uu(RA, RB); NEXT();
op_MUL_UPPER_S_U: RD = mulh_su(RA, RB); NEXT();
op_SET_LT_U: RD = RA < RB; NEXT();
op_SET_LT_S: RD = (int64_t)RA < (int64_t)RB; NEXT();
op_CMOV_IZ: if (RB == 0) RD = RA; NEXT();
op_CMOV_NZ: if (RB != 0) RD = RA; NEXT();
op_ROT_L_64: RD = rotl64(RA, (uint32_t)RB); NEXT();
op_ROT_L_32: RD = SX32(rotl32((uint32_t)RA, (uint32_t)RB)); NEXT();
op_ROT_R_64: RD = rotr64(RA, (uint32_t)RB); NEXT();
op_ROT_R_32: RD = SX32(rotr32((uint32_t)RA, (uint32_t)RB)); NEXT();
op_AND_INV: RD = RA & ~RB; NEXT();
op_OR_INV:  RD = RA | ~RB; NEXT();
op_XNOR:    RD = ~(RA ^ RB); NEXT();
op_MAX:   RD = (int64_t)RA > (int64_t)RB ? RA : RB; NEXT();
op_MAX_U: RD = RA > RB ? RA : RB; NEXT();
op_MIN:   RD = (int64_t)RA < (int64_t)RB ? RA : RB; NEXT();
op_MIN_U: RD = RA < RB ? RA : RB; NEXT();

  /* ---- exits ---- */
djump:
  if (djump_addr == PVM_HALT_ADDRESS) {
    vm->status = PVM_HALT;
    vm->resume = PVM_RESUME_DONE;
    goto exit_at_ip;
  }
  if (djump_addr == 0 || djump_addr > jt_limit || (djump_addr & 1) ||
      jt[djump_addr / 2 - 1] == PVM_NO_TARGET)
    goto panic;
  ENTER(insns + jt[djump_addr / 2 - 1]);

mem_slow:
  if (pvm_mem_check(mem, fault_addr, fault_len, fault_write,
                    nub_pvm_profile_semantics(prog->profile)->ro_store_faults,
                    &fault_page) == PVM_FAULT) {
    vm->status = PVM_FAULT;
    vm->exit_arg = fault_page;
    vm->resume = PVM_RESUME_RETRY;
    goto exit_at_ip;
  }
  goto panic;

panic:
  vm->status = PVM_PANIC;
  vm->resume = PVM_RESUME_DONE;
  goto exit_at_ip;

out_of_gas:
  vm->status = PVM_OOG;
  vm->resume = PVM_RESUME_ENTER;
exit_at_ip:
  vm->pc = ip->pc;
  memcpy(vm->regs, r, sizeof r);
  vm->gas = gas;
  return (nub_pvm_status)vm->status;
}

#undef TRACE_HOOK
#undef DISPATCH
#undef NEXT
#undef ENTER
#undef BRANCH
#undef RA
#undef RB
#undef RD
#undef IMM1
#undef IMM2
#undef MEM_OK
#undef LOAD
#undef STORE
#undef ZX
#undef SX8
#undef SX16
#undef SX32
