/*
** Fuzz the JIT compiler with arbitrary blobs, each under every ISA profile
** (their opcode numbers, invalid bytes and gas models differ): whatever
** loads must compile and run exactly like the interpreter (status, pc,
** gas, registers and memory after every exit, resuming after host calls,
** faults and out-of-gas), or the target traps.
*/
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nub/jit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGES_AT  0x10000u
#define PAGES_END 0x28000u     /* guest pages live in [PAGES_AT, PAGES_END) */

static void setup(nub_pvm_mem *mem) {
  nub_pvm_mem_map(mem, PAGES_AT, PAGES_END - PAGES_AT, PVM_ACCESS_NONE, NULL);
  nub_pvm_mem_map(mem, PAGES_AT, 2 * PVM_PAGE_SIZE, PVM_ACCESS_RW, NULL);
  nub_pvm_mem_map(mem, PAGES_AT + 2 * PVM_PAGE_SIZE, PVM_PAGE_SIZE, PVM_ACCESS_RO, NULL);
  nub_pvm_mem_set_heap(mem, 0x20000, PAGES_END);
}

static void same_or_trap(const nub_pvm_vm *a, const nub_pvm_vm *b, nub_pvm_mem *ma, nub_pvm_mem *mb) {
  static uint8_t pa[PVM_PAGE_SIZE], pb[PVM_PAGE_SIZE];
  if (a->status != b->status || a->pc != b->pc || a->gas != b->gas ||
      memcmp(a->regs, b->regs, sizeof a->regs) ||
      ((a->status == PVM_HOST || a->status == PVM_FAULT) && a->exit_arg != b->exit_arg) ||
      nub_pvm_mem_mapped_pages(ma) != nub_pvm_mem_mapped_pages(mb))
    __builtin_trap();
  for (uint32_t at = PAGES_AT; at < PAGES_END; at += PVM_PAGE_SIZE) {
    if (nub_pvm_mem_access(ma, at) != nub_pvm_mem_access(mb, at)) __builtin_trap();
    if (nub_pvm_mem_access(ma, at) == PVM_ACCESS_NONE) continue;
    nub_pvm_mem_read(ma, at, pa, PVM_PAGE_SIZE, NULL);
    nub_pvm_mem_read(mb, at, pb, PVM_PAGE_SIZE, NULL);
    if (memcmp(pa, pb, PVM_PAGE_SIZE)) __builtin_trap();
  }
}

static void run_under(nub_pvm_profile profile, const uint8_t *data, size_t size) {
  static nub_pvm_mem *mem[2];
  const nub_pvm_engine *eng[2] = {&nub_pvm_engine_interp, &nub_jit_engine};
  nub_pvm_program *prog;
  nub_pvm_error err;
  nub_pvm_vm vm[2];
  void *code[2] = {NULL, NULL};
  int ok = 0;
  if ((!mem[0] && nub_pvm_mem_new(&mem[0], NULL)) || (!mem[1] && nub_pvm_mem_new(&mem[1], NULL))) return;
  if (nub_pvm_program_load(profile, data, size, &prog, &err) != PVM_OK) return;
  for (int k = 0; k < 2; k++) {
    setup(mem[k]);
    int rc = eng[k]->compile(prog, &code[k], &err);
    if (rc == PVM_ERR_UNSUPPORTED) goto out;
    if (rc || nub_pvm_vm_init(&vm[k], prog, mem[k], eng[k], code[k], &err)) __builtin_trap();
    for (int i = 0; i < PVM_REGS; i++) vm[k].regs[i] = PAGES_AT + (uint64_t)i * 0x7F9;
    vm[k].regs[0] = PVM_HALT_ADDRESS;
    vm[k].gas = 20000;
    ok++;
  }
  for (int step = 0; step < 6; step++) {
    nub_pvm_status st = nub_pvm_vm_run(&vm[0]);
    nub_pvm_vm_run(&vm[1]);
    same_or_trap(&vm[0], &vm[1], mem[0], mem[1]);
    if (st == PVM_FAULT && vm[0].exit_arg >= PAGES_AT && vm[0].exit_arg < PAGES_END)
      for (int k = 0; k < 2; k++)    /* inside what setup() clears for the next input */
        nub_pvm_mem_map(mem[k], (uint32_t)vm[k].exit_arg, PVM_PAGE_SIZE, PVM_ACCESS_RW, NULL);
    else if (st == PVM_OOG)
      for (int k = 0; k < 2; k++) vm[k].gas += 1000;
    else if (st != PVM_HOST)
      break;
  }
out:
  for (int k = 0; k < ok; k++) nub_pvm_vm_fini(&vm[k]);
  for (int k = 0; k < 2; k++)
    if (code[k]) eng[k]->release(code[k]);
  nub_pvm_program_free(prog);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) run_under((nub_pvm_profile)p, data, size);
  return 0;
}
