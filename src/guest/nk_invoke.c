/*
** INVOKE_CACHED: find the Instance and its Image, compile once per Image,
** build a fresh address space, run, and report an InvocationResult.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nk_internal.h"
#ifdef NUB_HAVE_JIT
#include "nub/jit.h"
#endif

static const pvm_engine *engines[8] = {
#ifdef NUB_HAVE_JIT
  &jit_engine,           /* first = the default */
#endif
  &pvm_engine_interp,
};

const pvm_engine *nk_engine_by_name(const char *name) {
  for (size_t i = 0; i < sizeof engines / sizeof engines[0] && engines[i]; i++)
    if (!name || !strcmp(name, engines[i]->name)) return engines[i];
  return NULL;
}

int nk_add_engine(const pvm_engine *engine) {
  for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
    if (engines[i] == engine) return 0;
    if (!engines[i]) { engines[i] = engine; return 0; }
  }
  return -1;
}

int nk_invoke_init(nk_kernel *k, char *err, size_t errlen) {
  pvm_error perr;
  if (pvm_mem_new(&k->mem, &perr)) {
    snprintf(err, errlen, "kernel: %s", perr.msg);
    return -1;
  }
  return 0;
}

static void free_compiled(const nk_kernel *k, nk_compiled *c) {
  if (!c) return;
  if (c->code) k->cfg.engine->release(c->code);
  pvm_program_free(c->prog);
  free(c);
}

void nk_jit_cache_clear(nk_kernel *k) {
  for (size_t i = 0; i < k->nviews; i++) {
    free_compiled(k, k->compiled[i]);
    k->compiled[i] = NULL;
  }
}

void nk_invoke_fini(nk_kernel *k) {
  nk_jit_cache_clear(k);
  free(k->compiled);
  free(k->views);
  pvm_mem_free(k->mem);
}

/* The Image's program, compiled on first use and cached by its ordinal. */
static nk_compiled *compiled_image(nk_kernel *k, const cap_image_view *im, uint32_t ordinal) {
  nk_compiled *c = k->compiled[ordinal];
  if (c) { k->stats.jit_cache_hits++; return c; }
  if (!(c = calloc(1, sizeof *c))) return NULL;
  if (pvm_program_load((pvm_profile)im->profile, im->code, im->code_len, &c->prog, NULL) ||
      k->cfg.engine->compile(c->prog, &c->code, NULL)) {
    free_compiled(k, c);
    return NULL;
  }
  k->stats.jit_compiles++;
  return k->compiled[ordinal] = c;
}

static const cap_view *lookup(void *ud, const uint8_t hash[CAP_HASH_SIZE]) {
  return nk_caps_find(ud, hash, NULL);
}

static uint32_t result(nk_kernel *k, uint8_t *out, size_t out_cap, size_t *out_len,
                       const nub_invocation_result *r) {
  k->stats.invocations++;
  if (r->exit_reason == NUB_EXIT_KERNEL_ERROR) k->stats.kernel_errors++;
  return nk_reply(out, out_cap, out_len, r, sizeof *r);
}

static uint32_t kernel_error(nk_kernel *k, uint8_t *out, size_t out_cap, size_t *out_len,
                             uint32_t code) {
  nub_invocation_result r = {NUB_EXIT_KERNEL_ERROR, code, 0, 0};
  return result(k, out, out_cap, out_len, &r);
}

/* The log section of a NUB_INVOKE_FLAG_LOG reply, written in place after
** the InvocationResult and the section header (abi.h). */
typedef struct log_out {
  uint8_t *records;
  size_t cap, len;
  uint32_t count, dropped;
} log_out;

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* One log host call: copy the message (cut to NUB_LOG_LINE_MAX) into the
** section while the budget lasts; phi7 = 0, or NUB_HOST_OOB when the
** message is not readable. */
static void service_log(pvm_vm *vm, const pvm_mem *mem, log_out *lo) {
  uint64_t addr = vm->regs[10], len = vm->regs[11];
  if (len > NUB_LOG_LINE_MAX) len = NUB_LOG_LINE_MAX;
  if (lo->len + NUB_LOG_RECORD_HEADER + len > lo->cap) {
    lo->dropped++;
    vm->regs[7] = 0;
    return;
  }
  uint8_t *rec = lo->records + lo->len;
  if (addr > UINT32_MAX ||
      pvm_mem_read(mem, (uint32_t)addr, rec + NUB_LOG_RECORD_HEADER, len, NULL)) {
    vm->regs[7] = NUB_HOST_OOB;
    return;
  }
  put_u32(rec, (uint32_t)(vm->regs[7] > UINT32_MAX ? UINT32_MAX : vm->regs[7]));
  put_u32(rec + 4, (uint32_t)len);
  lo->len += NUB_LOG_RECORD_HEADER + (size_t)len;
  lo->count++;
  vm->regs[7] = 0;
}

/* Run ep of the image on a fresh copy of its memory plus the overlay. */
static int run(nk_kernel *k, const nk_compiled *c, const cap_view *image,
               const cap_view *inst, const cap_endpoint *ep, const nub_invoke_packet *p,
               nub_invocation_result *r, log_out *lo) {
  pvm_vm vm;
  if (pvm_mem_reset(k->mem, NULL) || cap_memory_build(k->mem, image, inst, lookup, k, NULL))
    return NUB_KERR_MEMORY;
  if (pvm_vm_init(&vm, c->prog, k->mem, k->cfg.engine, c->code, NULL))
    return NUB_KERR_COMPILE_FAILED;
  memcpy(vm.regs, ep->regs, sizeof vm.regs);
  memcpy(&vm.regs[7], p->args, sizeof p->args);
  vm.gas = p->initial_gas > INT64_MAX ? INT64_MAX : (int64_t)p->initial_gas;
  pvm_vm_set_pc(&vm, ep->entry_pc);
  pvm_status st = pvm_vm_run(&vm);
  while (lo && st == PVM_HOST && vm.exit_arg == NUB_HOST_CALL_LOG) {
    service_log(&vm, k->mem, lo);
    st = pvm_vm_run(&vm);
  }
  r->exit_reason = (uint32_t)st;
  r->exit_arg = st == PVM_FAULT || st == PVM_HOST ? (uint32_t)vm.exit_arg : 0;
  r->return_value = vm.regs[7];
  r->gas_remaining = vm.gas > 0 ? (uint64_t)vm.gas : 0;
  pvm_vm_fini(&vm);
  return 0;
}

uint32_t nk_fn_invoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len) {
  nub_invoke_packet p;
  nub_invocation_result r;
  cap_endpoint ep;
  uint32_t image_ordinal;
  if (in_len != sizeof p) return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_PACKET);
  memcpy(&p, in, sizeof p);          /* read the shared packet once */
  if (p.flags & ~NUB_INVOKE_FLAG_LOG) return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_FLAGS);
  const cap_view *inst = nk_caps_find(k, p.instance_hash, NULL);
  if (!inst) return kernel_error(k, out, out_cap, out_len, NUB_KERR_INSTANCE_NOT_FOUND);
  if (inst->kind != CAP_INSTANCE) return kernel_error(k, out, out_cap, out_len, NUB_KERR_NOT_AN_INSTANCE);
  const cap_view *image = nk_caps_find(k, inst->instance.image_hash, &image_ordinal);
  if (!image) return kernel_error(k, out, out_cap, out_len, NUB_KERR_IMAGE_NOT_FOUND);
  if (image->kind != CAP_IMAGE) return kernel_error(k, out, out_cap, out_len, NUB_KERR_NOT_AN_IMAGE);
  if (!cap_image_find_endpoint(&image->image, (uint8_t)(p.endpoint_idx & 0xFF), &ep))
    return kernel_error(k, out, out_cap, out_len, NUB_KERR_ENDPOINT_NOT_FOUND);
  const nk_compiled *c = compiled_image(k, &image->image, image_ordinal);
  if (!c) return kernel_error(k, out, out_cap, out_len, NUB_KERR_COMPILE_FAILED);
  const size_t head = sizeof r + NUB_LOG_SECTION_HEADER;
  log_out lo = {out + head, 0, 0, 0, 0};
  bool logged = p.flags & NUB_INVOKE_FLAG_LOG;
  if (logged) {
    if (out_cap < head) return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_FLAGS);
    lo.cap = out_cap - head < NUB_INVOKE_LOG_MAX ? out_cap - head : NUB_INVOKE_LOG_MAX;
  }
  uint32_t code = run(k, c, image, inst, &ep, &p, &r, logged ? &lo : NULL);
  if (code) return kernel_error(k, out, out_cap, out_len, code);
  if (!logged) return result(k, out, out_cap, out_len, &r);
  k->stats.invocations++;
  memcpy(out, &r, sizeof r);
  put_u32(out + sizeof r, lo.count);
  put_u32(out + sizeof r + 4, lo.dropped);
  *out_len = head + lo.len;
  return NUB_RPC_OK;
}
