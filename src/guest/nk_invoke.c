/*
** INVOKE_CACHED: find the Instance and its Image, compile once per Image,
** build a fresh address space, run, and report an InvocationResult.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nk_internal.h"
#ifdef NUB_HAVE_JIT
#include "nub/jit.h"
#endif

static const nub_pvm_engine *engines[8] = {
#ifdef NUB_HAVE_JIT
  &nub_jit_engine,           /* first = the default */
#endif
  &nub_pvm_engine_interp,
};

const nub_pvm_engine *nk_engine_pick(const char *name, uint32_t cpu_features) {
  for (size_t i = 0; i < sizeof engines / sizeof engines[0] && engines[i]; i++) {
#ifdef NUB_HAVE_JIT
    /* the best engine is one this CPU runs: without them every invoke
    ** of the JIT would end in kernel error 50 */
    if (!name && engines[i] == &nub_jit_engine &&
        (cpu_features & JIT_CPU_REQUIRED) != JIT_CPU_REQUIRED)
      continue;
#endif
    if (!name || !strcmp(name, engines[i]->name)) return engines[i];
  }
  return NULL;
}

const nub_pvm_engine *nk_engine_by_name(const char *name) {
#ifdef NUB_HAVE_JIT
  return nk_engine_pick(name, nub_jit_cpu_features());
#else
  return nk_engine_pick(name, 0);
#endif
}

int nk_add_engine(const nub_pvm_engine *engine) {
  for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
    if (engines[i] == engine) return 0;
    if (!engines[i]) { engines[i] = engine; return 0; }
  }
  return -1;
}

int nk_invoke_init(nk_kernel *k, char *err, size_t errlen) {
  nub_pvm_error perr;
  if (nub_pvm_mem_new(&k->mem, &perr)) {
    snprintf(err, errlen, "kernel: %s", perr.msg);
    return -1;
  }
  k->heap_fd = -1;
  return 0;
}

int nk_use_heap_fd(nk_kernel *k, int fd, uint64_t offset, char *err, size_t errlen) {
  nub_pvm_error perr;
  if (nub_pvm_mem_set_backing(k->mem, fd, offset, k->cfg.heap_base, k->cfg.heap_size, &perr)) {
    snprintf(err, errlen, "kernel: %s", perr.msg);
    return -1;
  }
  k->heap_fd = fd;
  k->heap_fd_offset = offset;
  return 0;
}

static void free_compiled(const nk_kernel *k, nk_compiled *c) {
  if (!c) return;
  if (c->code) k->cfg.engine->release(c->code);
  nub_pvm_program_free(c->prog);
  free(c);
}

/* ---- the JIT cache: least recently used first out, within the budget ---- */

/* Marks an Image whose compile did not fit its bound: the bound depends
** only on the blob and the budget, so asking again would only repeat the
** work (and the evictions) to fail the same way.  Never on the list. */
static nk_compiled too_large;

static void unlink_compiled(nk_kernel *k, nk_compiled *c) {
  if (c->newer) c->newer->older = c->older; else k->newest = c->older;
  if (c->older) c->older->newer = c->newer; else k->oldest = c->newer;
  c->newer = c->older = NULL;
}

static void push_newest(nk_kernel *k, nk_compiled *c) {
  c->older = k->newest;
  c->newer = NULL;
  if (k->newest) k->newest->newer = c; else k->oldest = c;
  k->newest = c;
}

static void drop(nk_kernel *k, nk_compiled *c) {
  unlink_compiled(k, c);
  k->compiled[c->ordinal] = NULL;
  k->cache_bytes -= c->bytes;
  k->stats.jit_cache_entries--;
  free_compiled(k, c);
}

/* Evict the least recently used programs until need more bytes fit the
** budget beside the cache.  Programs of running frames stay. */
static void make_room(nk_kernel *k, uint64_t need) {
  nk_compiled *c = k->oldest;
  while (c && k->cache_bytes + need > k->budget) {
    nk_compiled *next = c->newer;
    if (!c->pins) {
      drop(k, c);
      k->stats.jit_evictions++;
    }
    c = next;
  }
}

uint64_t nk_jit_cache_clear(nk_kernel *k) {
  uint64_t n = 0;
  while (k->oldest) {
    drop(k, k->oldest);
    n++;
  }
  return n;
}

void nk_invoke_fini(nk_kernel *k) {
  nk_frames_fini(k);
  nk_jit_cache_clear(k);
  free(k->compiled);
  free(k->views);
  nub_pvm_mem_free(k->mem);
}

/* The reason of a kernel error, for KERNEL_LAST_ERROR (the code alone
** travels in the InvocationResult). */
static void note(nk_kernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(nk_kernel *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->last_error, sizeof k->last_error, fmt, ap);
  va_end(ap);
}

uint32_t nk_fn_last_error(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
  if (in_len)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "kernel_last_error: %zu payload bytes, expected 0", in_len);
  return nk_reply(out, out_cap, out_len, k->last_error, strlen(k->last_error));
}

/* Load and compile into c within limit bytes: 0 or a PVM_ERR_* code
** (PVM_ERR_LIMIT: it needs more); the reason goes to last_error. */
static int load_and_compile(nk_kernel *k, const nub_cap_image_view *im, uint64_t limit,
                            nk_compiled *c) {
  const nub_pvm_engine *e = k->cfg.engine;
  nub_pvm_error err;
  const char *step = "load";
  int rc = nub_pvm_program_load((nub_pvm_profile)im->profile, im->code, im->code_len, &c->prog, &err);
  if (!rc) {
    size_t held = sizeof *c + nub_pvm_program_bytes(c->prog);
    step = "compile";
    if (held >= limit) {
      rc = PVM_ERR_LIMIT;
      snprintf(err.msg, sizeof err.msg, "the program analysis alone takes %zu bytes of %llu",
               held, (unsigned long long)limit);
    } else if (e->compile_within) {
      rc = e->compile_within(c->prog, limit - held, &c->code, &err);
    } else {
      rc = e->compile(c->prog, &c->code, &err);
    }
  }
  if (rc) {
    note(k, "%s (%s): %s", step, e->name, err.msg);
    if (c->code) e->release(c->code);
    nub_pvm_program_free(c->prog);
    c->code = NULL;
    c->prog = NULL;
  }
  return rc;
}

/* The Image's program, compiled on first use and cached by its ordinal.
** A compile may hold NK_COMPILE_BYTES_PER_BYTE per blob byte, never more
** than the budget.  The cache first makes room for what compiles usually
** need (NK_COMPILE_TYPICAL_PER_BYTE) and the compile gets all the room
** there is; only one that needs more empties the cache for the full
** bound and is compiled again, so the outcome does not depend on what is
** cached.  Returns 0 or a kernel error code. */
uint32_t nk_compiled_image(nk_kernel *k, const nub_cap_image_view *im, uint32_t ordinal,
                           nk_compiled **out) {
  const nub_pvm_engine *e = k->cfg.engine;
  nk_compiled *c = k->compiled[ordinal];
  if (c == &too_large) {
    note(k, "the Image's program was refused before: it needs more than the memory budget");
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (c) {
    k->stats.jit_cache_hits++;
    unlink_compiled(k, c);
    push_newest(k, c);
    *out = c;
    return 0;
  }
  uint64_t full = (uint64_t)im->code_len * NK_COMPILE_BYTES_PER_BYTE + NK_COMPILE_SLACK;
  uint64_t typical = (uint64_t)im->code_len * NK_COMPILE_TYPICAL_PER_BYTE + NK_COMPILE_SLACK;
  if (full > k->budget) full = k->budget;
  if (typical > full) typical = full;
  if (nub_pvm_program_load_bytes(&im->blob, im->code_len) + sizeof *c > full) {
    note(k, "loading a %llu-byte blob needs more than %llu bytes",
         (unsigned long long)im->code_len, (unsigned long long)full);
    k->compiled[ordinal] = &too_large;
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (!(c = calloc(1, sizeof *c))) {
    note(k, "out of memory for a compiled program");
    return NUB_KERR_OUT_OF_MEMORY;
  }
  make_room(k, typical);
  uint64_t room = k->budget - k->cache_bytes;
  int rc = load_and_compile(k, im, room < full ? room : full, c);
  if (rc == PVM_ERR_LIMIT && room < full) {
    make_room(k, full);
    rc = load_and_compile(k, im, full, c);
  }
  if (rc) {                 /* LIMIT: over the bound; NOMEM: the system's malloc */
    free(c);
    if (rc == PVM_ERR_LIMIT) k->compiled[ordinal] = &too_large;  /* refused every time */
    return rc == PVM_ERR_LIMIT || rc == PVM_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY
                                                     : NUB_KERR_COMPILE_FAILED;
  }
  c->bytes = sizeof *c + nub_pvm_program_bytes(c->prog) + (e->code_bytes ? e->code_bytes(c->code) : 0);
  c->ordinal = ordinal;
  k->compiled[ordinal] = c;
  push_newest(k, c);
  k->cache_bytes += c->bytes;
  k->stats.jit_cache_entries++;
  k->stats.jit_compiles++;
  *out = c;
  return 0;
}

/* Bytes of the image's mappings (overlaps counted twice): what an
** invocation can make accessible before it calls sbrk. */
uint64_t nk_mapping_bytes(const nub_cap_image_view *im) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < im->mapping_count; i++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, i, &m);
    sum += m.size;
  }
  return sum;
}

const nub_cap_view *nk_lookup(void *k, const uint8_t hash[CAP_HASH_SIZE]) {
  return nk_caps_find(k, hash, NULL);
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
  if (!k->last_error[0]) note(k, "kernel error %u", code);
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
static void service_log(nub_pvm_vm *vm, const nub_pvm_mem *mem, log_out *lo) {
  uint64_t addr = vm->regs[10], len = vm->regs[11];
  if (len > NUB_LOG_LINE_MAX) len = NUB_LOG_LINE_MAX;
  if (lo->len + NUB_LOG_RECORD_HEADER + len > lo->cap) {
    lo->dropped++;
    vm->regs[7] = 0;
    return;
  }
  uint8_t *rec = lo->records + lo->len;
  if (addr > UINT32_MAX ||
      nub_pvm_mem_read(mem, (uint32_t)addr, rec + NUB_LOG_RECORD_HEADER, len, NULL)) {
    vm->regs[7] = NUB_HOST_OOB;
    return;
  }
  put_u32(rec, (uint32_t)(vm->regs[7] > UINT32_MAX ? UINT32_MAX : vm->regs[7]));
  put_u32(rec + 4, (uint32_t)len);
  lo->len += NUB_LOG_RECORD_HEADER + (size_t)len;
  lo->count++;
  vm->regs[7] = 0;
}

/* nk_host_fn for the log call, in whichever frame makes it. */
static bool log_host(void *ud, nub_pvm_vm *vm, const nub_pvm_mem *mem) {
  if (vm->exit_arg != NUB_HOST_CALL_LOG) return false;
  service_log(vm, mem, ud);
  return true;
}

/* Run ep of the image on a fresh copy of its memory plus the overlay.  The
** Data runs the memory places are paid first; without the gas for them
** the program never starts (out-of-gas, gas and registers untouched).
** sbrk stops (returns 0, as at heap_limit) where the mappings and the
** heap together would pass the budget: room bytes of heap at most.  With
** lo, the log host call is serviced in place and the program resumes. */
static int run(nk_kernel *k, nk_compiled *c, const nub_cap_view *image, uint32_t image_ordinal,
               const nub_cap_view *inst, const nub_cap_endpoint *ep, const nub_invoke_packet *p,
               uint64_t room, nub_invocation_result *r, log_out *lo) {
  const nub_cap_image_view *im = &image->image;
  int64_t gas = p->initial_gas > INT64_MAX ? INT64_MAX : (int64_t)p->initial_gas;
  uint64_t runs;
  nub_pvm_vm vm;
  nub_pvm_error perr;
  nub_cap_error cerr;
  if (nub_pvm_mem_reset(k->mem, &perr)) {
    note(k, "memory reset: %s", perr.msg);
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (nub_cap_memory_runs(image, inst, nk_lookup, k, &runs, &cerr)) {
    note(k, "memory: %s", cerr.msg);
    return cerr.code == CAP_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY : NUB_KERR_MEMORY;
  }
  if (runs * NUB_GAS_PER_DATA_RUN > (uint64_t)gas) {
    *r = (nub_invocation_result){NUB_EXIT_OUT_OF_GAS, 0, p->args[0], (uint64_t)gas};
    return 0;
  }
  gas -= (int64_t)(runs * NUB_GAS_PER_DATA_RUN);
  if (nub_cap_memory_build(k->mem, image, inst, nk_lookup, k, &cerr)) {
    note(k, "memory: %s", cerr.msg);
    return cerr.code == CAP_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY : NUB_KERR_MEMORY;
  }
  uint64_t heap = im->heap_limit > im->heap_top ? im->heap_limit - im->heap_top : 0;
  if (heap > room) {
    heap = room;
    nub_pvm_mem_set_heap(k->mem, im->heap_top, im->heap_top + (uint32_t)room);
  }
  if (nub_pvm_vm_init(&vm, c->prog, k->mem, k->cfg.engine, c->code, &perr)) {
    note(k, "engine start (%s): %s", k->cfg.engine->name, perr.msg);
    return NUB_KERR_ENGINE_START;
  }
  memcpy(vm.regs, ep->regs, sizeof vm.regs);
  memcpy(&vm.regs[7], p->args, sizeof p->args);
  vm.gas = gas;
  nub_pvm_vm_set_pc(&vm, ep->entry_pc);
  /* the frames hold the mappings and the sbrk range of each memory */
  uint32_t code = nk_frames_run(k, &vm, c, image, image_ordinal, inst,
                                k->budget - room + heap, lo ? log_host : NULL, lo, r);
  nub_pvm_vm_fini(&vm);
  nub_pvm_mem_reset(k->mem, NULL);     /* give the pages back now, not at the next invoke */
  return (int)code;
}

uint32_t nk_fn_invoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len) {
  nub_invoke_packet p;
  nub_invocation_result r;
  nub_cap_endpoint ep;
  uint32_t image_ordinal;
  k->last_error[0] = 0;              /* KERNEL_LAST_ERROR speaks of this invocation */
  if (in_len != sizeof p) {
    note(k, "invoke packet of %zu bytes, expected %zu", in_len, sizeof p);
    return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_PACKET);
  }
  memcpy(&p, in, sizeof p);          /* read the shared packet once */
  if (p.flags & ~NUB_INVOKE_FLAG_LOG) return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_FLAGS);
  const nub_cap_view *inst = nk_caps_find(k, p.instance_hash, NULL);
  if (!inst) return kernel_error(k, out, out_cap, out_len, NUB_KERR_INSTANCE_NOT_FOUND);
  if (inst->kind != CAP_INSTANCE) return kernel_error(k, out, out_cap, out_len, NUB_KERR_NOT_AN_INSTANCE);
  const nub_cap_view *image = nk_caps_find(k, inst->instance.image_hash, &image_ordinal);
  if (!image) return kernel_error(k, out, out_cap, out_len, NUB_KERR_IMAGE_NOT_FOUND);
  if (image->kind != CAP_IMAGE) return kernel_error(k, out, out_cap, out_len, NUB_KERR_NOT_AN_IMAGE);
  if (p.endpoint_idx > NUB_ENDPOINT_MAX ||   /* never a truncated key */
      !nub_cap_image_find_endpoint(&image->image, (uint8_t)p.endpoint_idx, &ep)) {
    note(k, "endpoint %u: %s", p.endpoint_idx,
         p.endpoint_idx > NUB_ENDPOINT_MAX ? "above the largest key 255" : "no such key");
    return kernel_error(k, out, out_cap, out_len, NUB_KERR_ENDPOINT_NOT_FOUND);
  }
  /* an invocation's pages (mappings + sbrk) stay within the budget */
  uint64_t pages = nk_mapping_bytes(&image->image);
  if (pages > k->budget) {
    note(k, "the Image maps %llu bytes, over the memory budget of %llu",
         (unsigned long long)pages, (unsigned long long)k->budget);
    return kernel_error(k, out, out_cap, out_len, NUB_KERR_OUT_OF_MEMORY);
  }
  nk_compiled *c;
  uint32_t code = nk_compiled_image(k, &image->image, image_ordinal, &c);
  if (code) return kernel_error(k, out, out_cap, out_len, code);
  const size_t head = sizeof r + NUB_LOG_SECTION_HEADER;
  log_out lo = {out + head, 0, 0, 0, 0};
  bool logged = p.flags & NUB_INVOKE_FLAG_LOG;
  if (logged) {
    if (out_cap < head) return kernel_error(k, out, out_cap, out_len, NUB_KERR_BAD_FLAGS);
    lo.cap = out_cap - head < NUB_INVOKE_LOG_MAX ? out_cap - head : NUB_INVOKE_LOG_MAX;
  }
  code = (uint32_t)run(k, c, image, image_ordinal, inst, &ep, &p, k->budget - pages, &r,
                       logged ? &lo : NULL);
  if (code) return kernel_error(k, out, out_cap, out_len, code);
  if (!logged) return result(k, out, out_cap, out_len, &r);
  k->stats.invocations++;
  memcpy(out, &r, sizeof r);
  put_u32(out + sizeof r, lo.count);
  put_u32(out + sizeof r + 4, lo.dropped);
  *out_len = head + lo.len;
  return NUB_RPC_OK;
}
