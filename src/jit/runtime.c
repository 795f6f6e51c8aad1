/*
** JIT runtime: entering compiled code, turning its exits into the
** engine's exit state, and the SIGSEGV handler that maps hardware faults
** in guest memory accesses back to PVM page faults or panics.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "../util/nub_assert.h"
#include "jit_internal.h"

#define ALTSTACK_SIZE (256u << 10)

/* What the fault handler needs to know about the running guest.  Only
** this thread's own guest code can fault on this thread. */
typedef struct jit_thread {
  jit_vmstate *st;
  const nub_jit_code *code;
} jit_thread;

static __thread jit_thread tls_run __attribute__((tls_model("initial-exec")));
static __thread bool tls_prepared __attribute__((tls_model("initial-exec")));
static __thread bool tls_keep_gs __attribute__((tls_model("initial-exec")));

void nub_jit_thread_keep_gs(bool keep) { tls_keep_gs = keep; }

static struct sigaction prev_segv;
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static bool handler_installed;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;
static int key_errno;

uint64_t jit_rt_sbrk(nub_pvm_mem *mem, uint64_t size) { return pvm_mem_sbrk(mem, size); }

/* The side-table row for the host instruction at off, or NULL. */
static const jit_fault_entry *find_fault_site(const nub_jit_code *code, uint32_t off) {
  uint32_t lo = jit_lower_bound(code->faults, code->nfaults, sizeof *code->faults,
                                offsetof(jit_fault_entry, off), off);
  return lo < code->nfaults && code->faults[lo].off == off ? &code->faults[lo] : NULL;
}

/* The charge a fault at off gives back: a merged check's second block
** (compile.c, gas_pair), or 0. */
static uint32_t fault_refund(const nub_jit_code *code, uint32_t off) {
  uint32_t lo = jit_lower_bound(code->refunds, code->nrefunds, sizeof *code->refunds,
                                offsetof(jit_gas_refund, off), off);
  return lo < code->nrefunds && code->refunds[lo].off == off ? code->refunds[lo].gas : 0;
}

/* Anything that is not a guest access of the running code goes to the
** handler that was there before us (ASan, a debugger, the default). */
static void chain(int sig, siginfo_t *si, void *uc) {
  if (prev_segv.sa_flags & SA_SIGINFO) {
    prev_segv.sa_sigaction(sig, si, uc);
  } else if (prev_segv.sa_handler == SIG_DFL || prev_segv.sa_handler == SIG_IGN) {
    /* re-executing the instruction faults again and takes the default */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
  } else {
    prev_segv.sa_handler(sig);
  }
}

/* The signal context's slot of each host register (ModRM order). */
static const uint8_t greg_slot[16] = {
  REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
  REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

/* The guest address of the access at pc, from its operands and the guest
** registers in the context: the faulting instruction wrote nothing, so
** its base register still holds what the address was computed from (with
** FSGSBASE the code never puts the address in a register). */
static uint32_t fault_address(const nub_jit_code *code, uint32_t pc, const greg_t *gr) {
  nub_pvm_insn in;
  pvm_decode(code->isa, &code->prog->blob, pc, &in);
  int base = jit_access_base(in.format, in.ra, in.rb);
  uint32_t addr = (uint32_t)in.imm_x;
  if (base >= 0) addr += (uint32_t)gr[greg_slot[jit_guest_reg[base]]];
  return addr;
}

static void on_segv(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  const nub_jit_code *code = tls_run.code;
  greg_t *gr = uc->uc_mcontext.gregs;
  if (code) {
    uintptr_t off = (uintptr_t)gr[REG_RIP] - (uintptr_t)code->exec;
    const jit_fault_entry *site = off < code->code_size ? find_fault_site(code, (uint32_t)off) : NULL;
    if (site) {
      /* a fault site is a valid load or store: its op is the profile's */
      unsigned op = code->isa[code->prog->blob.code[site->pc]].op;
      uint32_t page = 0;
      int rc = pvm_mem_check(tls_run.st->mem, fault_address(code, site->pc, gr), jit_op_width(op),
                             jit_op_is_store(op), code->ro_store_faults, &page);
      if (rc != PVM_OK) {
        /* gas in r15, or at [rsp] (the frame: no guest access runs with
        ** anything pushed) */
        uint32_t back = fault_refund(code, (uint32_t)off);
        if (back && code->gas_reg) gr[REG_R15] += back;
        else if (back) *(int64_t *)(uintptr_t)gr[REG_RSP] += back;
        tls_run.st->fault_page = page;
        gr[REG_RCX] = (greg_t)site->pc;
        gr[REG_RIP] = (greg_t)(uintptr_t)(code->exec + (rc == PVM_FAULT ? code->off_exit_fault
                                                                          : code->off_exit_panic));
        return;
      }
    }
  }
  chain(sig, si, ucv);
}

static void free_altstack(void *p) {
  stack_t off;
  memset(&off, 0, sizeof off);
  off.ss_flags = SS_DISABLE;
  sigaltstack(&off, NULL);
  munmap(p, ALTSTACK_SIZE);
}

/* Ours unless someone replaced it since (a test harness, a later library):
** then ours goes back on top and chains to theirs. */
static bool handler_kept;

void nub_jit_keep_handler(void) { __atomic_store_n(&handler_kept, true, __ATOMIC_RELEASE); }

static int ensure_handler(nub_pvm_error *err) {
  struct sigaction cur, sa;
  int rc = PVM_OK;
  if (__atomic_load_n(&handler_kept, __ATOMIC_ACQUIRE)) return PVM_OK;
  pthread_mutex_lock(&handler_lock);
  if (sigaction(SIGSEGV, NULL, &cur)) {
    /* cannot even look (a seccomp filter): keep what was installed before */
    if (!handler_installed)
      rc = pvm_fail(err, PVM_ERR_SYS, 0, "jit: reading the SIGSEGV handler: %s", strerror(errno));
  } else if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_segv) {
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    prev_segv = cur;
    if (sigaction(SIGSEGV, &sa, NULL))
      rc = pvm_fail(err, PVM_ERR_SYS, 0, "jit: installing the SIGSEGV handler: %s", strerror(errno));
    else
      handler_installed = true;
  }
  pthread_mutex_unlock(&handler_lock);
  return rc;
}

static void create_key(void) { key_errno = pthread_key_create(&altstack_key, free_altstack); }

/* A thread that already has a signal stack (ASan gives threads one)
** keeps it; otherwise it gets ours, freed when the thread exits. */
static int prepare_altstack(nub_pvm_error *err) {
  stack_t cur;
  if (sigaltstack(NULL, &cur))
    return pvm_fail(err, PVM_ERR_SYS, 0, "jit: sigaltstack: %s", strerror(errno));
  if (!(cur.ss_flags & SS_DISABLE)) return PVM_OK;
  void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return pvm_fail(err, PVM_ERR_SYS, 0, "jit: signal stack: %s", strerror(errno));
  stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) {
    int e = errno;
    munmap(p, ALTSTACK_SIZE);
    return pvm_fail(err, PVM_ERR_SYS, 0, "jit: sigaltstack: %s", strerror(e));
  }
  pthread_setspecific(altstack_key, p);
  return PVM_OK;
}

int nub_jit_thread_prepare(nub_pvm_error *err) {
  int rc = ensure_handler(err);
  if (rc || tls_prepared) return rc;
  pthread_once(&key_once, create_key);
  if (key_errno)
    return pvm_fail(err, PVM_ERR_SYS, 0, "jit: pthread_key_create: %s", strerror(key_errno));
  if ((rc = prepare_altstack(err))) return rc;
  tls_prepared = true;
  return PVM_OK;
}

/* ---- running ---- */

static nub_pvm_status stop(nub_pvm_vm *vm, nub_pvm_status status, nub_pvm_resume resume) {
  vm->status = (uint8_t)status;
  vm->resume = (uint8_t)resume;
  return status;
}

/* The block whose out-of-gas stub exited (compile.c: the stubs are in
** block order and report where they end). */
static uint32_t oog_block(const nub_jit_code *code, const jit_vmstate *st) {
  uint32_t k = (st->exit_pc - code->off_oog_stubs) / JIT_OOG_STUB - 1;
  NUB_ASSERT(k < code->prog->block_count);
  return k;
}

/* Lazy costs: place the blocks from k on (pvm_block_cost places a
** stretch) and fill in their slots.  A slot only ever goes from
** JIT_COST_UNPLACED to the cost. */
static void place_slots(const nub_jit_code *code, uint32_t k) {
  const nub_pvm_program *prog = code->prog;
  (void)pvm_block_cost(prog, k);
  for (uint32_t cost; k < prog->block_count && (cost = pvm_block_cost_known(prog, k)); k++)
    __atomic_store_n(&code->costs[k], (uint64_t)cost, __ATOMIC_RELAXED);
}

/* Turn the exit of compiled code into the interpreter's exit state; the
** code reports the pc, the rest comes from the program. */
static nub_pvm_status finish(nub_pvm_vm *vm, const jit_vmstate *st, uint32_t kind) {
  const nub_pvm_program *prog = vm->prog;
  vm->gas = st->gas;                      /* the exit wrote the registers in place */
  vm->pc = st->exit_pc;
  switch ((nub_pvm_status)kind) {
  case PVM_OOG: {                         /* a block head: refund its charge */
    const nub_jit_code *code = vm->code;
    uint32_t k = oog_block(code, st);
    vm->pc = prog->blocks[k].pc;           /* (lazy: its slot held the program's cost) */
    vm->gas = (int64_t)((uint64_t)st->gas + pvm_block_cost_known(prog, k));
    return stop(vm, PVM_OOG, PVM_RESUME_ENTER);
  }
  case PVM_HOST: {                        /* ecalli: its immediate, and where the walk goes on */
    nub_pvm_insn in;
    nub_pvm_decode(prog->profile, &prog->blob, st->exit_pc, &in);
    vm->exit_arg = (uint32_t)in.imm_x;
    vm->next_pc = st->exit_pc + in.len;
    return stop(vm, PVM_HOST, PVM_RESUME_NEXT);
  }
  case PVM_FAULT:
    vm->exit_arg = st->fault_page;
    return stop(vm, PVM_FAULT, PVM_RESUME_RETRY);
  case PVM_HALT:
    return stop(vm, PVM_HALT, PVM_RESUME_DONE);
  case PVM_PANIC:
  default:
    return stop(vm, PVM_PANIC, PVM_RESUME_DONE);
  }
}

/* The native offset of the body of the start at pc. */
static uint32_t body_offset(nub_jit_code *code, const nub_pvm_blob *b, uint32_t pc) {
  uint64_t m = __atomic_load_n(&code->entry_memo, __ATOMIC_RELAXED);
  if (m && (uint32_t)(m >> 32) == pc) return (uint32_t)m - 1;
  uint32_t off = code->body[jit_start_index(code->rank, b, pc)];
  __atomic_store_n(&code->entry_memo, (uint64_t)pc << 32 | ((uint64_t)off + 1), __ATOMIC_RELAXED);
  return off;
}

/* rcx on entry at pc: without FSGSBASE an access may read its address
** from ecx as the instruction before left it (compile.c, guest_mem), so
** an entry there brings its base register's low half.  A block start
** (a warm invoke's) never reads it: a bit test; an instruction other than
** a load or store (the one after a host call, mostly): its op; only an
** access is decoded.  pc is a bitmask start, inside the code. */
static uint64_t entry_addr(const nub_jit_code *code, const nub_pvm_vm *vm, uint32_t pc) {
  nub_pvm_insn in;
  if (code->gas_reg || nub_pvm_program_is_block_start(vm->prog, pc) ||
      !jit_op_width(code->isa[vm->prog->blob.code[pc]].op))
    return 0;
  pvm_decode(code->isa, &vm->prog->blob, pc, &in);
  int base = jit_access_base(in.format, in.ra, in.rb);
  return base < 0 ? 0 : (uint32_t)vm->regs[base];
}

nub_pvm_status nub_jit_run(nub_pvm_vm *vm) {
  nub_jit_code *code = vm->code;
  jit_vmstate state, *st = &state;   /* lives for one run: finish() copies it out */
  for (;;) {
    uint32_t pc, off;
    uint64_t addr, m = __atomic_load_n(&code->entry_memo, __ATOMIC_RELAXED);
    if (vm->resume == PVM_RESUME_ENTER && m && (uint32_t)(m >> 32) == vm->pc) {
      /* The pc of the last entry again (a warm invoke's endpoint): the memo
      ** holds only a pc pvm_vm_resume_pc let run (a start of a runnable
      ** program), so what is left of it is the ENTER charge.  ~30 of a warm
      ** invoke's instructions (callgrind). */
      int64_t cost = nub_pvm_program_entry_cost(vm->prog, vm->pc);
      if (vm->gas < cost) return stop(vm, PVM_OOG, PVM_RESUME_ENTER);
      vm->gas -= cost;
      off = (uint32_t)m - 1;
      addr = entry_addr(code, vm, vm->pc);
    } else {
      if (!pvm_vm_resume_pc(vm, &pc)) return (nub_pvm_status)vm->status;
      off = body_offset(code, &vm->prog->blob, pc);
      addr = entry_addr(code, vm, pc);
    }
    /* vm_init installed the handler; a thread without its own signal stack
    ** still handles faults, on its normal stack */
    if (!tls_prepared) (void)nub_jit_thread_prepare(NULL);
    st->regs = vm->regs;
    st->mem = vm->mem;
    st->mem_base = vm->mem->base;
    st->keep_gs = tls_keep_gs;
    /* under lazy costs the checks test the sign of gas - cost (compile.c,
    ** emit_gas_sub): gas far below zero (only an embedder sets it so) runs
    ** as -2^62, which nothing can charge (every check fails) */
    int64_t gas = vm->gas, below = 0;
    if (code->costs && gas < INT64_MIN / 2) below = gas - INT64_MIN / 2, gas = INT64_MIN / 2;
    jit_thread saved = tls_run;
    tls_run.st = st;
    tls_run.code = code;
    uint32_t kind = code->enter(st, code->exec + off, gas, addr);
    tls_run = saved;
    st->gas += below;
    if (kind != JIT_EXIT_PLACE) return finish(vm, st, kind);
    /* a block not placed (its stub gave the charge back): place it, then
    ** what its check and head do: charge it or stop out of gas there; a
    ** synthetic trap's head panics, a start's body runs (a resumption at
    ** the head would not do: jamv1 charges nothing at a pc that is no
    ** instruction) */
    uint32_t k = oog_block(code, st);
    place_slots(code, k);
    int64_t cost = pvm_block_cost_known(vm->prog, k);
    vm->gas = st->gas;
    vm->pc = vm->prog->blocks[k].pc;
    if (vm->gas < cost) return stop(vm, PVM_OOG, PVM_RESUME_ENTER);
    vm->gas -= cost;
    if (!nub_pvm_blob_is_start(&vm->prog->blob, vm->pc)) return stop(vm, PVM_PANIC, PVM_RESUME_DONE);
    vm->resume = PVM_RESUME_RETRY;
  }
}

/* ---- the engine ---- */

/* The handler check (a sigaction) is made per compile, not per VM set-up:
** it was 0.38 of the 0.59 us of an in-process sub-VM CALL+HALT (bench
** subvm, jit inproc ping-pong). */
static int engine_compile(const nub_pvm_program *prog, void **code, nub_pvm_error *err) {
  nub_jit_code *c;
  int rc = ensure_handler(err);
  *code = NULL;
  if (rc) return rc;
  rc = nub_jit_compile(prog, NULL, &c, err);
  *code = rc ? NULL : c;
  return rc;
}

static void engine_release(void *code) { nub_jit_code_free(code); }

static int engine_compile_within(const nub_pvm_program *prog, size_t max_bytes, void **code,
                                 nub_pvm_error *err) {
  nub_jit_options o = {.disable = 0, .max_bytes = max_bytes ? max_bytes : 1};
  nub_jit_code *c;
  int rc = ensure_handler(err);
  *code = NULL;
  if (rc) return rc;
  rc = nub_jit_compile(prog, &o, &c, err);
  *code = rc ? NULL : c;
  return rc;
}

static size_t engine_code_bytes(const void *code) {
  return code ? (size_t)nub_jit_code_stats(code)->kept_bytes : 0;
}

static int engine_vm_init(nub_pvm_vm *vm, nub_pvm_error *err) {
  const nub_jit_code *code = vm->code;
  if (!code || code->prog != vm->prog)
    return pvm_fail(err, PVM_ERR_ARG, 0, "jit: the code was not compiled for this program");
  return tls_prepared ? PVM_OK : nub_jit_thread_prepare(err);   /* no system call once prepared */
}

static void engine_vm_fini(nub_pvm_vm *vm) { (void)vm; }

const nub_pvm_engine nub_jit_engine = {
  "jit", engine_compile, engine_release, engine_vm_init, engine_vm_fini, nub_jit_run,
  engine_compile_within, engine_code_bytes,
};
