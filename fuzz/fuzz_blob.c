/*
** Fuzz the generic blob decoder and program analysis under every ISA
** profile (gp07's gas is a count, jamv1's and gp08-draft's the A.9
** pipeline placer), then run whatever loads on the interpreter with a
** small gas budget over a few pages.
*/
#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_under(nub_pvm_profile profile, const uint8_t *data, size_t size) {
  static nub_pvm_mem *mem;
  nub_pvm_blob blob;
  nub_pvm_program *prog;
  nub_pvm_error err;
  nub_pvm_vm vm;
  if (!mem && nub_pvm_mem_new(&mem, NULL)) return;
  if (nub_pvm_blob_parse(data, data + size, &blob, &err) != PVM_OK) {
    /* the loader must agree with the parser */
    if (nub_pvm_program_load(profile, data, size, &prog, &err) == PVM_OK) __builtin_trap();
    return;
  }
  if (nub_pvm_program_load(profile, data, size, &prog, &err) != PVM_OK) __builtin_trap();
  nub_pvm_mem_reset(mem, NULL);
  nub_pvm_mem_map(mem, 0x10000, 0x2000, PVM_ACCESS_RW, NULL);
  nub_pvm_mem_map(mem, 0x12000, 0x1000, PVM_ACCESS_RO, NULL);
  nub_pvm_mem_set_heap(mem, 0x20000, 0x40000);
  if (nub_pvm_vm_init(&vm, prog, mem, &nub_pvm_engine_interp, NULL, &err) == PVM_OK) {
    for (int i = 0; i < PVM_REGS; i++) vm.regs[i] = 0x10000u + (uint64_t)i * 0x800;
    vm.gas = 20000;
    for (int step = 0; step < 4; step++) {       /* resume after host calls and faults */
      nub_pvm_status st = nub_pvm_vm_run(&vm);
      if (st != PVM_HOST && st != PVM_FAULT) break;
      if (st == PVM_FAULT) nub_pvm_mem_map(mem, (uint32_t)vm.exit_arg, PVM_PAGE_SIZE, PVM_ACCESS_RW, NULL);
    }
    nub_pvm_vm_fini(&vm);
  }
  nub_pvm_program_free(prog);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) run_under((nub_pvm_profile)p, data, size);
  return 0;
}
