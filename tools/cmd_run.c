/*
** nub run: load a program (generic blob or SPI), run it, print the exit.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "guest_run.h"

typedef struct run_opts {
  const char *file;
  bool spi, trace, json, no_log;
  uint64_t gas;
  uint32_t pc;
  uint8_t *args;
  size_t args_len;
  const pvm_engine *engine;
  pvm_profile profile;
  uint64_t reg_values[PVM_REGS];
  uint32_t reg_set;            /* bit r: --reg r=V given */
} run_opts;

static int parse_opts(int argc, char **argv, run_opts *o) {
  memset(o, 0, sizeof *o);
  o->gas = 1000000000;
  o->engine = &pvm_engine_interp;
  o->profile = PVM_PROFILE_GP07;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t x;
    if (!strcmp(a, "--format") && v) {
      if (!strcmp(v, "spi")) o->spi = true;
      else if (strcmp(v, "generic")) return cli_usage_error("run", "--format must be generic or spi");
      i++;
    } else if (!strcmp(a, "--gas") && v) {
      if (!cli_parse_u64(v, INT64_MAX, &o->gas)) return cli_usage_error("run", "bad --gas %s", v);
      i++;
    } else if (!strcmp(a, "--pc") && v) {
      if (!cli_parse_u64(v, UINT32_MAX, &x)) return cli_usage_error("run", "bad --pc %s", v);
      o->pc = (uint32_t)x;
      i++;
    } else if (!strcmp(a, "--args") && v) {
      free(o->args);
      if (!cli_parse_hex(v, &o->args, &o->args_len)) return cli_usage_error("run", "--args must be hex bytes");
      i++;
    } else if (!strcmp(a, "--engine") && v) {
      if (!(o->engine = cli_engine(v))) return 2;
      i++;
    } else if (!strcmp(a, "--profile") && v) {
      if (!cli_profile("run", v, &o->profile)) return 2;
      i++;
    } else if (!strcmp(a, "--trace")) {
      o->trace = true;
    } else if (!strcmp(a, "--json")) {
      o->json = true;
    } else if (!strcmp(a, "--reg") && v) {
      char *eq = strchr(v, '=');
      uint64_t r;
      if (!eq || eq - v > 2) return cli_usage_error("run", "--reg takes R=VALUE, got %s", v);
      char rname[3] = {v[0], eq - v == 2 ? v[1] : 0, 0};
      if (!cli_parse_u64(rname, PVM_REGS - 1, &r) || !cli_parse_u64(eq + 1, UINT64_MAX, &x))
        return cli_usage_error("run", "--reg takes R=VALUE with R in 0..%d, got %s", PVM_REGS - 1, v);
      o->reg_values[r] = x;
      o->reg_set |= 1u << r;
      i++;
    } else if (!strcmp(a, "--no-log")) {
      o->no_log = true;
    } else if (a[0] != '-' && !o->file) {
      o->file = a;
    } else {
      return cli_usage_error("run", "unexpected argument %s", a);
    }
  }
  if (!o->file) return cli_usage_error("run", "no program file");
  if (o->trace && o->engine != &pvm_engine_interp)
    return cli_usage_error("run", "--trace needs --engine interp");
  return 0;
}

static void trace_insn(void *ud, const pvm_vm *vm, uint32_t pc) {
  const pvm_blob *b = pvm_program_blob(vm->prog);
  const pvm_opinfo *isa = pvm_isa(pvm_program_profile(vm->prog));
  const char *name = pc < b->code_len && pvm_blob_is_start(b, pc) && isa[b->code[pc]].name
                         ? isa[b->code[pc]].name : "trap (no instruction)";
  (void)ud;
  fprintf(stderr, "trace pc=%-6u gas=%-10lld %s\n", pc, (long long)vm->gas, name);
}

static void print_result(const run_opts *o, const pvm_vm *vm) {
  if (o->json) {
    printf("{\"status\":\"%s\",\"pc\":%u,\"gas\":%lld,", pvm_status_name(vm->status), vm->pc,
           (long long)vm->gas);
    if (vm->status == PVM_FAULT) printf("\"page_fault_address\":%llu,", (unsigned long long)vm->exit_arg);
    if (vm->status == PVM_HOST) printf("\"host_call\":%llu,", (unsigned long long)vm->exit_arg);
    printf("\"regs\":[");
    for (int i = 0; i < PVM_REGS; i++) printf("%s%llu", i ? "," : "", (unsigned long long)vm->regs[i]);
    printf("]}\n");
    return;
  }
  printf("status: %s\n", pvm_status_name(vm->status));
  if (vm->status == PVM_FAULT) printf("fault:  page 0x%llx\n", (unsigned long long)vm->exit_arg);
  if (vm->status == PVM_HOST) printf("host:   ecalli %llu (resume at pc %u)\n", (unsigned long long)vm->exit_arg, vm->next_pc);
  printf("pc:     %u\ngas:    %lld\n", vm->pc, (long long)vm->gas);
  for (int i = 0; i < PVM_REGS; i++)
    printf("r%-2d     0x%016llx  %llu\n", i, (unsigned long long)vm->regs[i], (unsigned long long)vm->regs[i]);
}

int cmd_run(int argc, char **argv) {
  run_opts o;
  uint8_t *file = NULL;
  size_t len;
  pvm_program *prog = NULL;
  pvm_mem *mem = NULL;
  pvm_error err;
  pvm_vm vm;
  void *code = NULL;
  int rc = parse_opts(argc, argv, &o), vm_ok = 0;
  const uint8_t *blob;
  size_t blob_len;
  pvm_spi spi;
  pvm_spi_layout lay;
  if (rc) { free(o.args); return rc; }
  rc = 1;
  if (cli_read_file(o.file, &file, &len)) goto out;
  blob = file;
  blob_len = len;
  if (pvm_mem_new(&mem, &err)) goto fail;
  if (o.spi) {
    if (pvm_spi_parse(file, file + len, &spi, &err) ||
        pvm_spi_layout_compute(&spi, (uint32_t)o.args_len, &lay, &err) ||
        pvm_spi_load_memory(mem, &spi, &lay, o.args, (uint32_t)o.args_len, &err))
      goto fail;
    blob = spi.code_blob;
    blob_len = spi.code_blob_len;
  }
  if (pvm_program_load(o.profile, blob, blob_len, &prog, &err) ||
      o.engine->compile(prog, &code, &err) ||
      pvm_vm_init(&vm, prog, mem, o.engine, code, &err))
    goto fail;
  vm_ok = 1;
  if (o.spi) memcpy(vm.regs, lay.regs, sizeof vm.regs);
  for (int r = 0; r < PVM_REGS; r++)
    if (o.reg_set >> r & 1) vm.regs[r] = o.reg_values[r];
  vm.gas = (int64_t)o.gas;
  pvm_vm_set_pc(&vm, o.pc);
  if (o.trace) pvm_interp_run_traced(&vm, trace_insn, NULL);
  else if (o.no_log) pvm_vm_run(&vm);
  else guest_run(&vm, mem, guest_log_print, o.json ? stderr : stdout, NULL);
  print_result(&o, &vm);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "nub run: %s: %s (%s, offset %llu)\n", o.file, err.msg,
          pvm_errcode_name(err.code), (unsigned long long)err.offset);
out:
  if (vm_ok) pvm_vm_fini(&vm);
  if (code) o.engine->release(code);
  pvm_program_free(prog);
  pvm_mem_free(mem);
  free(file);
  free(o.args);
  return rc;
}
