/*
** The engine-level host side of the guest runtime: service the log host
** call and resume (docs/runtime.md).
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "guest_run.h"

nub_pvm_status guest_run(nub_pvm_vm *vm, const nub_pvm_mem *mem, guest_log_fn *log, void *ud,
                     uint64_t *log_calls) {
  char msg[GUEST_LOG_MAX];
  for (;;) {
    nub_pvm_status st = nub_pvm_vm_run(vm);
    if (st != PVM_HOST || vm->exit_arg != GUEST_HOST_LOG) return st;
    uint64_t addr = vm->regs[10], len = vm->regs[11];
    if (len > GUEST_LOG_MAX) len = GUEST_LOG_MAX;
    if (addr > UINT32_MAX || nub_pvm_mem_read(mem, (uint32_t)addr, msg, len, NULL)) {
      vm->regs[7] = GUEST_HOST_OOB;
    } else {
      if (log) log(ud, vm->regs[7], msg, (size_t)len);
      vm->regs[7] = 0;
    }
    if (log_calls) ++*log_calls;
  }
}

void guest_log_print(void *ud, uint64_t level, const char *msg, size_t len) {
  FILE *f = ud;
  (void)level;
  fputs("log: ", f);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)msg[i];
    if (c >= 0x20 && c < 0x7F) fputc(c, f);
    else fprintf(f, "\\x%02x", c);
  }
  fputc('\n', f);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int guest_spi_run(const uint8_t *spi_bytes, size_t len, nub_pvm_profile profile,
                  const nub_pvm_engine *engine, uint64_t a0, uint64_t a1, int64_t gas,
                  unsigned runs, guest_log_fn *log, void *ud, guest_result *out,
                  nub_pvm_error *err) {
  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  nub_pvm_program *prog = NULL;
  nub_pvm_mem *mem = NULL;
  void *code = NULL;
  int rc = -1;
  memset(out, 0, sizeof *out);
  if (nub_pvm_spi_parse(spi_bytes, spi_bytes + len, &spi, err) ||
      nub_pvm_spi_layout_compute(&spi, 0, &lay, err) || nub_pvm_mem_new(&mem, err))
    goto out;
  uint64_t t0 = now_ns();
  if (nub_pvm_program_load(profile, spi.code_blob, spi.code_blob_len, &prog, err) ||
      engine->compile(prog, &code, err))
    goto out;
  out->compile_ns = now_ns() - t0;
  for (unsigned i = 0; i < (runs ? runs : 1); i++) {
    nub_pvm_vm vm;
    bool last = i + 1 >= (runs ? runs : 1);
    if (nub_pvm_mem_reset(mem, err) || nub_pvm_spi_load_memory(mem, &spi, &lay, NULL, 0, err) ||
        nub_pvm_vm_init(&vm, prog, mem, engine, code, err))
      goto out;
    memcpy(vm.regs, lay.regs, sizeof vm.regs);
    vm.regs[7] = a0;
    vm.regs[8] = a1;
    vm.gas = gas;
    nub_pvm_vm_set_pc(&vm, 0);
    out->log_calls = 0;
    uint64_t start = now_ns();
    out->status = guest_run(&vm, mem, last ? log : NULL, ud, &out->log_calls);
    uint64_t ns = now_ns() - start;
    if (!i || ns < out->run_ns) out->run_ns = ns;
    out->pc = vm.pc;
    out->value = vm.regs[7];
    out->gas_used = gas - vm.gas;
    nub_pvm_vm_fini(&vm);
  }
  rc = 0;
out:
  if (code) engine->release(code);
  nub_pvm_program_free(prog);
  nub_pvm_mem_free(mem);
  return rc;
}
