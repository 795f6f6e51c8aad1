/*
** nub run: load a program (generic blob or SPI), run it, print the exit.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "guest_run.h"
#include "nub/jit.h"

static const cli_opt run_opts[] = {
  {"format", 0, CLI_FORMATS, "auto", "program format: auto takes whichever of SPI (GP A.7) or generic blob (A.2) parses"},
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile the code is decoded under"},
  {"engine", 0, "interp|jit", "interp", "engine that runs the program"},
  {"gas", 0, "N", "1000000000", "initial gas, 0..9223372036854775807"},
  {"pc", 0, "N", "0", "entry pc"},
  {"data", 0, "HEX", NULL, "argument bytes (SPI only): mapped as the argument region, phi7 = its address, phi8 = its length (GP A.7)"},
  {"regs", 0, "A[,B,C,D]", NULL, "set phi7..phi10 after the program's set-up (overrides what --data put there)"},
  {"args", 0, "A[,B,C,D]", NULL, "the older spelling of --regs"},
  {"trace", 0, NULL, NULL, "print every instruction with its operands and the registers it changed (stderr; interp only)"},
  {"json", 0, NULL, NULL, "print the result as one JSON object"},
  {"no-log", 0, NULL, NULL, "do not service the log host call (ecalli 100): it ends the run"},
  {0}};

const cli_spec cli_run_spec = {
  "run", "FILE", "run a program and print status, pc, gas and registers",
  "A panic names its cause (invalid opcode, jump to a non-block pc, ...).\n"
  "Exit code: 0 when the program ran (whatever its status: halt, panic,\n"
  "out-of-gas, page-fault, host), 1 if it could not be loaded, 2 on a usage error.",
  1, 1, run_opts};

typedef struct run_cfg {
  const char *file;
  int format;
  bool trace, json, no_log;
  uint64_t gas, pc;
  uint8_t *data;
  size_t data_len;
  uint64_t regs[4];
  unsigned nregs;
  const nub_pvm_engine *engine;
  nub_pvm_profile profile;
} run_cfg;

static int parse_opts(int argc, char **argv, run_cfg *o) {
  cli_args a;
  int rc = cli_parse(&cli_run_spec, argc, argv, &a);
  memset(o, 0, sizeof *o);
  if (rc) return rc;
  o->file = a.pos[0];
  o->format = cli_choice(&a, "format");
  o->profile = (nub_pvm_profile)cli_choice(&a, "profile");
  o->engine = cli_choice(&a, "engine") ? &nub_jit_engine : &nub_pvm_engine_interp;
  o->trace = cli_flag(&a, "trace");
  o->json = cli_flag(&a, "json");
  o->no_log = cli_flag(&a, "no-log");
  if ((rc = cli_get_u64(&a, "gas", 0, CLI_MAX_GAS, &o->gas)) ||
      (rc = cli_get_u64(&a, "pc", 0, UINT32_MAX, &o->pc)))
    return rc;
  if ((rc = cli_get_regs(&a, "run", o->regs, &o->nregs))) return rc;
  if (cli_given(&a, "data") && (rc = cli_parse_data("run", cli_get(&a, "data"), &o->data, &o->data_len)))
    return rc;
  if (o->trace && o->engine != &nub_pvm_engine_interp)
    return cli_usage_error("run", "--trace needs --engine interp");
  return 0;
}

/* --trace: each instruction with its operands; the registers the previous
** one changed on the line after it. */
typedef struct tracer {
  uint64_t regs[PVM_REGS];
  bool started;
} tracer;

static void print_changes(tracer *t, const uint64_t *regs) {
  bool any = false;
  for (int i = 0; i < PVM_REGS; i++)
    if (regs[i] != t->regs[i]) {
      fprintf(stderr, "%s r%d=0x%llx", any ? "" : "               ->", i, (unsigned long long)regs[i]);
      any = true;
    }
  if (any) fputc('\n', stderr);
  memcpy(t->regs, regs, sizeof t->regs);
}

static void print_operands(const nub_pvm_insn *in) {
  char r[3][8];
  snprintf(r[0], sizeof r[0], "r%u", in->ra);
  snprintf(r[1], sizeof r[1], "r%u", in->rb);
  snprintf(r[2], sizeof r[2], "r%u", in->rd);
  long long x = (long long)in->imm_x, y = (long long)in->imm_y, t = (long long)in->target;
  switch (in->format) {
  case PVM_FMT_IMM: fprintf(stderr, " %lld", x); break;
  case PVM_FMT_REG_IMM64: fprintf(stderr, " %s, 0x%llx", r[0], (unsigned long long)in->imm_x); break;
  case PVM_FMT_IMM_IMM: fprintf(stderr, " %lld, %lld", x, y); break;
  case PVM_FMT_OFFSET: fprintf(stderr, " @%lld", t); break;
  case PVM_FMT_REG_IMM: fprintf(stderr, " %s, %lld", r[0], x); break;
  case PVM_FMT_REG_IMM_IMM: fprintf(stderr, " %s, %lld, %lld", r[0], x, y); break;
  case PVM_FMT_REG_IMM_OFFSET: fprintf(stderr, " %s, %lld, @%lld", r[0], x, t); break;
  case PVM_FMT_REG_REG: fprintf(stderr, " %s, %s", r[2], r[0]); break;
  case PVM_FMT_REG_REG_IMM: fprintf(stderr, " %s, %s, %lld", r[0], r[1], x); break;
  case PVM_FMT_REG_REG_OFFSET: fprintf(stderr, " %s, %s, @%lld", r[0], r[1], t); break;
  case PVM_FMT_REG_REG_IMM_IMM: fprintf(stderr, " %s, %s, %lld, %lld", r[0], r[1], x, y); break;
  case PVM_FMT_REG_REG_REG: fprintf(stderr, " %s, %s, %s", r[2], r[0], r[1]); break;
  default: break;
  }
}

static void trace_insn(void *ud, const nub_pvm_vm *vm, uint32_t pc) {
  tracer *t = ud;
  const nub_pvm_blob *b = nub_pvm_program_blob(vm->prog);
  nub_pvm_profile profile = nub_pvm_program_profile(vm->prog);
  const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
  nub_pvm_insn in;
  if (t->started) print_changes(t, vm->regs);
  else memcpy(t->regs, vm->regs, sizeof t->regs);
  t->started = true;
  fprintf(stderr, "trace pc=%-6u gas=%-10lld ", pc, (long long)vm->gas);
  if (pc >= b->code_len || !nub_pvm_blob_is_start(b, pc) || !isa[b->code[pc]].name) {
    fprintf(stderr, "trap (no instruction)\n");
    return;
  }
  nub_pvm_decode(profile, b, pc, &in);
  fprintf(stderr, "%s", isa[in.opcode].name);
  print_operands(&in);
  fputc('\n', stderr);
}

static void print_result(const run_cfg *o, const nub_pvm_vm *vm) {
  char why[256];
  const char *reason = cli_panic_reason(vm, why, sizeof why);
  if (o->json) {
    printf("{\"status\":\"%s\",\"pc\":%u,\"gas\":%lld,", nub_pvm_status_name(vm->status), vm->pc,
           (long long)vm->gas);
    if (vm->status == PVM_FAULT) printf("\"page_fault_address\":%llu,", (unsigned long long)vm->exit_arg);
    if (vm->status == PVM_HOST) printf("\"host_call\":%llu,", (unsigned long long)vm->exit_arg);
    if (*reason) {                     /* reasons hold no quotes or backslashes */
      printf("\"panic_reason\":\"%s\",", reason);
    }
    printf("\"regs\":[");
    for (int i = 0; i < PVM_REGS; i++) printf("%s%llu", i ? "," : "", (unsigned long long)vm->regs[i]);
    printf("]}\n");
    return;
  }
  printf("status: %s\n", nub_pvm_status_name(vm->status));
  if (*reason) printf("panic:  %s\n", reason);
  if (vm->status == PVM_FAULT) printf("fault:  page 0x%llx\n", (unsigned long long)vm->exit_arg);
  if (vm->status == PVM_HOST) printf("host:   ecalli %llu (resume at pc %u)\n", (unsigned long long)vm->exit_arg, vm->next_pc);
  printf("pc:     %u\ngas:    %lld\n", vm->pc, (long long)vm->gas);
  for (int i = 0; i < PVM_REGS; i++)
    printf("r%-2d     0x%016llx  %llu\n", i, (unsigned long long)vm->regs[i], (unsigned long long)vm->regs[i]);
}

int cmd_run(int argc, char **argv) {
  run_cfg o;
  uint8_t *file = NULL;
  size_t len;
  nub_pvm_program *prog = NULL;
  nub_pvm_mem *mem = NULL;
  nub_pvm_error err;
  nub_pvm_vm vm;
  void *code = NULL;
  int rc = parse_opts(argc, argv, &o), vm_ok = 0;
  const uint8_t *blob;
  size_t blob_len;
  bool spi = false;
  nub_pvm_spi s;
  nub_pvm_spi_layout lay;
  if (rc) { free(o.data); return rc == CLI_HELP ? 0 : rc; }
  rc = 1;
  if (cli_read_file(o.file, &file, &len) ||
      cli_program_format("run", o.file, file, len, o.format, &spi))
    goto out;
  if (o.data && !spi) {
    rc = cli_usage_error("run", "--data needs an SPI program: %s is a generic blob, which has no "
                         "argument region (set registers with --regs)", o.file);
    goto out;
  }
  blob = file;
  blob_len = len;
  if (nub_pvm_mem_new(&mem, &err)) goto fail;
  if (spi) {
    if (nub_pvm_spi_parse(file, file + len, &s, &err) ||
        nub_pvm_spi_layout_compute(&s, (uint32_t)o.data_len, &lay, &err) ||
        nub_pvm_spi_load_memory(mem, &s, &lay, o.data, (uint32_t)o.data_len, &err))
      goto fail;
    blob = s.code_blob;
    blob_len = s.code_blob_len;
  }
  if (nub_pvm_program_load(o.profile, blob, blob_len, &prog, &err) ||
      o.engine->compile(prog, &code, &err) ||
      nub_pvm_vm_init(&vm, prog, mem, o.engine, code, &err))
    goto fail;
  vm_ok = 1;
  if (spi) memcpy(vm.regs, lay.regs, sizeof vm.regs);
  memcpy(&vm.regs[7], o.regs, o.nregs * sizeof o.regs[0]);
  vm.gas = (int64_t)o.gas;
  nub_pvm_vm_set_pc(&vm, (uint32_t)o.pc);
  if (o.trace) {
    tracer t = {0};
    nub_pvm_interp_run_traced(&vm, trace_insn, &t);
    if (t.started) print_changes(&t, vm.regs);
  } else if (o.no_log) {
    nub_pvm_vm_run(&vm);
  } else {                       /* log lines to stderr when stdout carries JSON */
    guest_run(&vm, mem, guest_log_print, o.json ? stderr : stdout, NULL);
  }
  print_result(&o, &vm);
  rc = 0;
  goto out;
fail:
  cli_pvm_error("run", o.file, &err);
out:
  if (vm_ok) nub_pvm_vm_fini(&vm);
  if (code) o.engine->release(code);
  nub_pvm_program_free(prog);
  nub_pvm_mem_free(mem);
  free(file);
  free(o.data);
  return rc;
}
