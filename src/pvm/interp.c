/*
** The reference interpreter and the VM binding shared by all engines.
*/
#include "pvm_internal.h"

static inline uint64_t rotr64(uint64_t v, uint32_t n) {
  n &= 63;
  return n ? (v >> n) | (v << (64 - n)) : v;
}
static inline uint64_t rotl64(uint64_t v, uint32_t n) {
  n &= 63;
  return n ? (v << n) | (v >> (64 - n)) : v;
}
static inline uint32_t rotr32(uint32_t v, uint32_t n) {
  n &= 31;
  return n ? (v >> n) | (v << (32 - n)) : v;
}
static inline uint32_t rotl32(uint32_t v, uint32_t n) {
  n &= 31;
  return n ? (v << n) | (v >> (32 - n)) : v;
}

static inline uint64_t sx32(uint32_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* Division and remainder never trap: GP defines every corner. */
static inline uint64_t div_u32(uint64_t a, uint64_t b) {
  return (uint32_t)b ? sx32((uint32_t)a / (uint32_t)b) : UINT64_MAX;
}
static inline uint64_t rem_u32(uint64_t a, uint64_t b) {
  return (uint32_t)b ? sx32((uint32_t)a % (uint32_t)b) : sx32((uint32_t)a);
}
static inline uint64_t div_s32(uint64_t a, uint64_t b) {
  int32_t x = (int32_t)a, y = (int32_t)b;
  if (y == 0) return UINT64_MAX;
  if (x == INT32_MIN && y == -1) return (uint64_t)(int64_t)x;
  return (uint64_t)(int64_t)(x / y);
}
static inline uint64_t rem_s32(uint64_t a, uint64_t b) {
  int32_t x = (int32_t)a, y = (int32_t)b;
  if (y == 0) return (uint64_t)(int64_t)x;
  if (x == INT32_MIN && y == -1) return 0;
  return (uint64_t)(int64_t)(x % y);
}
static inline uint64_t div_u64(uint64_t a, uint64_t b) { return b ? a / b : UINT64_MAX; }
static inline uint64_t rem_u64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static inline uint64_t div_s64(uint64_t a, uint64_t b) {
  int64_t x = (int64_t)a, y = (int64_t)b;
  if (y == 0) return UINT64_MAX;
  if (x == INT64_MIN && y == -1) return a;
  return (uint64_t)(x / y);
}
static inline uint64_t rem_s64(uint64_t a, uint64_t b) {
  int64_t x = (int64_t)a, y = (int64_t)b;
  if (y == 0) return a;
  if (x == INT64_MIN && y == -1) return 0;
  return (uint64_t)(x % y);
}

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

static inline uint64_t mulh_ss(uint64_t a, uint64_t b) {
  return (uint64_t)(((i128)(int64_t)a * (i128)(int64_t)b) >> 64);
}
static inline uint64_t mulh_uu(uint64_t a, uint64_t b) {
  return (uint64_t)(((u128)a * (u128)b) >> 64);
}
static inline uint64_t mulh_su(uint64_t a, uint64_t b) {
  return (uint64_t)(((i128)(int64_t)a * (i128)b) >> 64);
}

static nub_pvm_status interp_run(nub_pvm_vm *vm)
#include "interp_loop.h"

#define INTERP_TRACE
nub_pvm_status nub_pvm_interp_run_traced(nub_pvm_vm *vm, nub_pvm_trace_fn trace, void *ud)
#include "interp_loop.h"
#undef INTERP_TRACE

/* The interpreter's compile is its pre-decoding (once per program), so
** that a cache measuring the program after compiling counts it. */
static int interp_compile(const nub_pvm_program *prog, void **code, nub_pvm_error *err) {
  *code = NULL;
  return pvm_program_prepare_interp(prog, err);
}
static int interp_compile_within(const nub_pvm_program *prog, size_t max_bytes, void **code,
                                 nub_pvm_error *err) {
  *code = NULL;
  size_t need = pvm_program_interp_bytes(prog);
  if (!__atomic_load_n(&prog->interp_ready, __ATOMIC_ACQUIRE) && need > max_bytes)
    return pvm_fail(err, PVM_ERR_LIMIT, 0,
                    "interp: pre-decoding %u instructions needs %zu bytes, more than %zu",
                    prog->insn_count, need, max_bytes);
  return pvm_program_prepare_interp(prog, err);
}

static void interp_release(void *code) { (void)code; }
/* The pre-decoded instructions are built on the program's first run on
** the interpreter, not by load: a JIT-only program never needs them. */
static int interp_vm_init(nub_pvm_vm *vm, nub_pvm_error *err) {
  return pvm_program_prepare_interp(vm->prog, err);
}
static void interp_vm_fini(nub_pvm_vm *vm) { (void)vm; }

const nub_pvm_engine nub_pvm_engine_interp = {
  "interp", interp_compile, interp_release, interp_vm_init, interp_vm_fini, interp_run,
  interp_compile_within, NULL,
};

static bool stop_before_running(nub_pvm_vm *vm, nub_pvm_status status, nub_pvm_resume resume) {
  vm->status = (uint8_t)status;
  vm->resume = (uint8_t)resume;
  return false;
}

bool pvm_vm_resume_pc(nub_pvm_vm *vm, uint32_t *pc) {
  const nub_pvm_program *prog = vm->prog;
  uint32_t at;
  switch ((nub_pvm_resume)vm->resume) {
  case PVM_RESUME_DONE:
    return false;
  case PVM_RESUME_NEXT:
    at = vm->next_pc;
    break;
  case PVM_RESUME_RETRY:
    at = vm->pc;
    break;
  case PVM_RESUME_ENTER:
  default: {
    int64_t cost = nub_pvm_program_entry_cost(prog, vm->pc);
    if (vm->gas < cost) return stop_before_running(vm, PVM_OOG, PVM_RESUME_ENTER);
    vm->gas -= cost;
    at = vm->pc;
    break;
  }
  }
  /* Only bitmask starts are instructions: anywhere else (the code end
  ** after a host call, no instruction, any pc of an unrunnable program)
  ** what would run is a trap. */
  if (prog->unrunnable || !nub_pvm_blob_is_start(&prog->blob, at)) {
    vm->pc = at;
    return stop_before_running(vm, PVM_PANIC, PVM_RESUME_DONE);
  }
  *pc = at;
  return true;
}

int nub_pvm_vm_init(nub_pvm_vm *vm, const nub_pvm_program *prog, nub_pvm_mem *mem,
                const nub_pvm_engine *engine, void *code, nub_pvm_error *err) {
  memset(vm, 0, sizeof *vm);
  if (!prog || !mem || !engine) return pvm_fail(err, PVM_ERR_ARG, 0, "vm: program, memory and engine are required");
  vm->prog = prog;
  vm->mem = mem;
  vm->engine = engine;
  vm->code = code;
  vm->resume = PVM_RESUME_ENTER;
  return engine->vm_init(vm, err);
}

void nub_pvm_vm_fini(nub_pvm_vm *vm) {
  if (vm->engine) vm->engine->vm_fini(vm);
  vm->engine = NULL;
}

void nub_pvm_vm_set_pc(nub_pvm_vm *vm, uint32_t pc) {
  vm->pc = pc;
  vm->resume = PVM_RESUME_ENTER;
}

const char *nub_pvm_status_name(int status) {
  switch (status) {
  case PVM_HALT: return "halt";
  case PVM_PANIC: return "panic";
  case PVM_OOG: return "out-of-gas";
  case PVM_FAULT: return "page-fault";
  case PVM_HOST: return "host";
  }
  return "?";
}
