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

int nk_lane_init(nk_kernel *k, nk_lane *lane, char *err, size_t errlen) {
  nub_pvm_error perr;
  memset(lane, 0, sizeof *lane);
  lane->kernel = k;
  if (nub_pvm_mem_new(&lane->mem, &perr) ||
      (k->heap_fd >= 0 && nub_pvm_mem_set_backing(lane->mem, k->heap_fd, k->heap_fd_offset,
                                                   k->cfg.heap_base, k->cfg.heap_size, &perr))) {
    snprintf(err, errlen, "kernel: %s", perr.msg);
    nub_pvm_mem_free(lane->mem);
    lane->mem = NULL;
    return -1;
  }
  return 0;
}

static void warm_let_go_locked(nk_warm *w);

/* The root vm is no longer bound to the warm entry's program. */
static void unbind_root(nk_lane *lane) {
  if (!lane->warm.vm) return;
  nub_pvm_vm_fini(lane->warm.vm);
  lane->warm.vm = NULL;
}

void nk_lane_fini(nk_lane *lane) {
  unbind_root(lane);
  if (lane->warm.c) {
    pthread_mutex_lock(&lane->kernel->cache_lock);
    warm_let_go_locked(&lane->warm);
    pthread_mutex_unlock(&lane->kernel->cache_lock);
  }
  nk_frames_settle(lane);
  nk_frames_fini(lane);
  nub_pvm_mem_free(lane->mem);
  lane->mem = NULL;
}

int nk_invoke_init(nk_kernel *k, char *err, size_t errlen) {
  k->heap_fd = -1;
  if (pthread_mutex_init(&k->cache_lock, NULL)) {
    snprintf(err, errlen, "kernel: cannot create the cache lock");
    return -1;
  }
  if (pthread_cond_init(&k->compiled_cv, NULL)) {
    pthread_mutex_destroy(&k->cache_lock);
    snprintf(err, errlen, "kernel: cannot create the cache condition");
    return -1;
  }
  k->cache_lock_made = true;
  return nk_lane_init(k, &k->primary, err, errlen);
}

int nk_use_heap_fd(nk_kernel *k, int fd, uint64_t offset, char *err, size_t errlen) {
  nub_pvm_error perr;
  if (nub_pvm_mem_set_backing(k->primary.mem, fd, offset, k->cfg.heap_base, k->cfg.heap_size,
                              &perr)) {
    snprintf(err, errlen, "kernel: %s", perr.msg);
    return -1;
  }
  k->heap_fd = fd;
  k->heap_fd_offset = offset;
  return 0;
}

/* prog and code: once no frame can run them. */
static void release_code(const nk_kernel *k, nk_compiled *c) {
  if (c->code) k->cfg.engine->release(c->code);
  nub_pvm_program_free(c->prog);
  c->code = NULL;
  c->prog = NULL;
}

/* ---- the JIT cache: least recently used first out, within the budget ----
** Every function here but the compile, pin_warm and the unpin runs under
** cache_lock. */

/* Marks an Image whose compile did not fit its bound: the bound depends
** only on the blob and the budget, so asking again would only repeat the
** work (and the evictions) to fail the same way.  Never on the list. */
static nk_compiled too_large;
/* Marks an Image a lane is compiling now: others wait for it. */
static nk_compiled compiling;

static void unlink_compiled(nk_kernel *k, nk_compiled *c) {
  if (c->newer) c->newer->older = c->older; else k->newest = c->older;
  if (c->older) c->older->newer = c->newer; else k->oldest = c->newer;
  c->newer = c->older = NULL;
}

static void insert_after(nk_kernel *k, nk_compiled *at, nk_compiled *c) {
  c->older = at;
  c->newer = at ? at->newer : k->oldest;
  if (c->newer) c->newer->older = c; else k->newest = c;
  if (at) at->newer = c; else k->oldest = c;
}

static uint64_t next_stamp(nk_kernel *k) {
  return __atomic_add_fetch(&k->use_clock, 1, __ATOMIC_RELAXED);
}

/* c used at stamp now.  used only grows: a lane stamps without the lock,
** so its store may come after that of a later stamp (another lane's, or
** the lock holder's), which must stay. */
static void stamp_use(nk_compiled *c, uint64_t now) {
  uint64_t was = __atomic_load_n(&c->used, __ATOMIC_RELAXED);
  while (was < now && !__atomic_compare_exchange_n(&c->used, &was, now, true, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED)) {
  }
}

/* Used now, under the lock: the newest on the list. */
static void touch_locked(nk_kernel *k, nk_compiled *c) {
  uint64_t now = next_stamp(k);
  stamp_use(c, now);
  c->listed = now;
  if (c->newer || c->older || k->oldest == c) unlink_compiled(k, c);
  insert_after(k, k->newest, c);
}

/* Off the cache: no pin is taken any more.  prog and code go now, or with
** the last pin; the struct too, unless a lane's warm entry names it. */
static void drop(nk_kernel *k, nk_compiled *c) {
  unlink_compiled(k, c);
  k->compiled[c->ordinal] = NULL;
  k->cache_bytes -= c->bytes;
  k->stats.jit_cache_entries--;
  if (__atomic_fetch_or(&c->pins, NK_PIN_EVICTED, __ATOMIC_ACQ_REL) == 0) {
    release_code(k, c);
    c->released = true;
    if (!c->lane_refs) free(c);
  }
}

void nk_compiled_unpin(nk_kernel *k, nk_compiled *c) {
  if (__atomic_sub_fetch(&c->pins, 1, __ATOMIC_ACQ_REL) != NK_PIN_EVICTED) return;
  release_code(k, c);          /* the last pin of an evicted program: no one pins it again */
  pthread_mutex_lock(&k->cache_lock);
  c->released = true;
  bool unnamed = !c->lane_refs;
  pthread_mutex_unlock(&k->cache_lock);
  if (unnamed) free(c);
}

/* The lane's warm entry stops naming its program (under the lock). */
static void warm_let_go_locked(nk_warm *w) {
  nk_compiled *c = w->c;
  w->c = NULL;
  if (c && !--c->lane_refs && c->released) free(c);
}

/* Evict the least recently used programs until need more bytes fit the
** budget beside the cache and the compiles running.  Programs of running
** frames stay.  The list is by `listed`; one used since without the lock
** (pin_warm) moves up to its place by `used` first, so the order is
** exactly by last use. */
static void make_room(nk_kernel *k, uint64_t need) {
  nk_compiled *c = k->oldest;
  while (c && k->cache_bytes + k->compiling_bytes + need > k->budget) {
    nk_compiled *next = c->newer;
    uint64_t used = __atomic_load_n(&c->used, __ATOMIC_RELAXED);
    if (used != c->listed) {
      nk_compiled *at = c;
      c->listed = used;
      while (at->newer && at->newer->listed <= used) at = at->newer;
      if (at != c) {
        unlink_compiled(k, c);
        insert_after(k, at, c);
        c = next;
        continue;
      }
    }
    if (!(__atomic_load_n(&c->pins, __ATOMIC_ACQUIRE) & ~NK_PIN_EVICTED)) {
      drop(k, c);
      k->stats.jit_evictions++;
    }
    c = next;
  }
}

static uint64_t cache_clear_locked(nk_kernel *k) {
  uint64_t n = 0;
  while (k->oldest) {
    drop(k, k->oldest);
    n++;
  }
  return n;
}

uint64_t nk_jit_cache_clear(nk_kernel *k) {
  pthread_mutex_lock(&k->cache_lock);
  uint64_t n = cache_clear_locked(k);
  k->stats.jit_evictions += n;
  pthread_mutex_unlock(&k->cache_lock);
  return n;
}

void nk_invoke_fini(nk_kernel *k) {
  nk_lanes_fini(k);
  nk_lane_fini(&k->primary);
  if (k->cache_lock_made) {
    cache_clear_locked(k);
    pthread_cond_destroy(&k->compiled_cv);
    pthread_mutex_destroy(&k->cache_lock);
  }
  free(k->compiled);
}

void nk_note(nk_lane *lane, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(lane->last_error, sizeof lane->last_error, fmt, ap);
  va_end(ap);
}

/* The RPC path's (lanes report theirs in their slots). */
uint32_t nk_fn_last_error(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
  if (in_len)
    return nk_reply_error(out, out_cap, out_len, NUB_RPC_BAD_PAYLOAD,
                          "kernel_last_error: %zu payload bytes, expected 0", in_len);
  return nk_reply(out, out_cap, out_len, k->primary.last_error, strlen(k->primary.last_error));
}

/* Load and compile into c within limit bytes: 0 or a PVM_ERR_* code
** (PVM_ERR_LIMIT: it needs more); the reason goes to last_error. */
static int load_and_compile(nk_kernel *k, nk_lane *lane, const nub_cap_image_view *im,
                            uint64_t limit, nk_compiled *c) {
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
    nk_note(lane, "%s (%s): %s", step, e->name, err.msg);
    if (c->code) e->release(c->code);
    nub_pvm_program_free(c->prog);
    c->code = NULL;
    c->prog = NULL;
  }
  return rc;
}

void (*nk_test_hook)(nk_kernel *k, nk_test_point point);

/* The budget neither the cache nor the compiles running hold. */
static uint64_t room_left(const nk_kernel *k) {
  uint64_t taken = k->cache_bytes + k->compiling_bytes;
  return taken < k->budget ? k->budget - taken : 0;
}

/* Compile within the room the cache leaves (at most limit), holding
** that much of the budget for the compile meanwhile; cache_lock is held
** on entry and exit, not during the compile. */
static int compile_unlocked(nk_kernel *k, nk_lane *lane, const nub_cap_image_view *im,
                            uint64_t limit, nk_compiled *c, uint64_t *used) {
  uint64_t room = room_left(k);
  *used = room < limit ? room : limit;
  k->compiling_bytes += *used;
  pthread_mutex_unlock(&k->cache_lock);
  NK_TEST_POINT(k, NK_TEST_COMPILE_RESERVED);
  int rc = load_and_compile(k, lane, im, *used, c);
  pthread_mutex_lock(&k->cache_lock);
  k->compiling_bytes -= *used;
  return rc;
}

/* The Image's program, compiled on first use and cached by its ordinal.
** A compile may hold NK_COMPILE_BYTES_PER_BYTE per blob byte, never more
** than the budget.  The cache first makes room for what compiles usually
** need (NK_COMPILE_TYPICAL_PER_BYTE) and the compile gets all the room
** there is; only one that needs more empties the cache for the full
** bound and is compiled again, so the outcome does not depend on what is
** cached.  Nor on other lanes: while compiles of other Images hold the
** room it lacks, it waits for them (they hold no room while they wait,
** so they cannot wait for each other).  Refused for good (too_large)
** only when it had its full bound; short of it because programs running
** now are pinned in the cache, this call fails and the next tries again.
** Lanes asking for an Image another lane compiles wait for that
** compile.  Returns 0 or a kernel error code. */
static uint32_t compiled_locked(nk_kernel *k, nk_lane *lane, const nub_cap_image_view *im,
                                uint32_t ordinal, nk_compiled **out) {
  const nub_pvm_engine *e = k->cfg.engine;
  nk_compiled *c;
  while ((c = k->compiled[ordinal]) == &compiling)
    pthread_cond_wait(&k->compiled_cv, &k->cache_lock);
  if (c == &too_large) {
    nk_note(lane, "the Image's program was refused before: it needs more than the memory budget");
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (c) {
    NK_STAT_ADD(k, jit_cache_hits, 1);
    touch_locked(k, c);
    __atomic_add_fetch(&c->pins, 1, __ATOMIC_ACQUIRE);   /* cached: never NK_PIN_EVICTED here */
    *out = c;
    return 0;
  }
  uint64_t full = (uint64_t)im->code_len * NK_COMPILE_BYTES_PER_BYTE + NK_COMPILE_SLACK;
  uint64_t typical = (uint64_t)im->code_len * NK_COMPILE_TYPICAL_PER_BYTE + NK_COMPILE_SLACK;
  if (full > k->budget) full = k->budget;
  if (typical > full) typical = full;
  if (nub_pvm_program_load_bytes(&im->blob, im->code_len) + sizeof *c > full) {
    nk_note(lane, "loading a %llu-byte blob needs more than %llu bytes",
            (unsigned long long)im->code_len, (unsigned long long)full);
    k->compiled[ordinal] = &too_large;
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (!(c = calloc(1, sizeof *c))) {
    nk_note(lane, "out of memory for a compiled program");
    return NUB_KERR_OUT_OF_MEMORY;
  }
  k->compiled[ordinal] = &compiling;
  make_room(k, typical);
  uint64_t used;
  int rc = compile_unlocked(k, lane, im, full, c, &used);
  while (rc == PVM_ERR_LIMIT && used < full) {
    make_room(k, full);
    if (room_left(k) < full && k->compiling_bytes) {
      NK_TEST_POINT(k, NK_TEST_COMPILE_WAITS);
      pthread_cond_wait(&k->compiled_cv, &k->cache_lock);
      continue;
    }
    rc = compile_unlocked(k, lane, im, full, c, &used);
    if (rc == PVM_ERR_LIMIT && used < full)
      nk_note(lane, "compiling needs up to %llu bytes, %llu were free beside the programs "
              "running now: not refused, the next call tries again",
              (unsigned long long)full, (unsigned long long)used);
    break;
  }
  /* k->compiled may have moved (a publish grew it): index it again */
  k->compiled[ordinal] = NULL;
  pthread_cond_broadcast(&k->compiled_cv);
  if (rc) {                 /* LIMIT: over the bound; NOMEM: the system's malloc */
    free(c);
    if (rc == PVM_ERR_LIMIT && used == full) k->compiled[ordinal] = &too_large;  /* every time */
    return rc == PVM_ERR_LIMIT || rc == PVM_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY
                                                     : NUB_KERR_COMPILE_FAILED;
  }
  c->bytes = sizeof *c + nub_pvm_program_bytes(c->prog) + (e->code_bytes ? e->code_bytes(c->code) : 0);
  c->ordinal = ordinal;
  c->pins = 1;
  k->compiled[ordinal] = c;
  touch_locked(k, c);
  k->cache_bytes += c->bytes;
  k->stats.jit_cache_entries++;
  k->stats.jit_compiles++;
  *out = c;
  return 0;
}

uint32_t nk_compiled_image(nk_kernel *k, nk_lane *lane, const nub_cap_image_view *im,
                           uint32_t ordinal, nk_compiled **out) {
  pthread_mutex_lock(&k->cache_lock);
  uint32_t code = compiled_locked(k, lane, im, ordinal, out);
  pthread_mutex_unlock(&k->cache_lock);
  return code;
}

/* The compiled program of the lane's warm Image, pinned.  The one the
** warm entry names (its struct kept by the entry's lane_ref) is pinned
** with a compare-and-swap while it is cached: no lock, the use stamped
** for the LRU order.  Else (first use, another Image, evicted) the cache
** is asked under the lock, as nk_compiled_image, and the entry names
** what it gives.  Measured (callgrind, inproc add, per warm invoke): the
** lock pair, the list moves and the unpin's lock were ~190 instructions. */
static uint32_t pin_warm(nk_kernel *k, nk_lane *lane, nk_compiled **out) {
  nk_warm *w = &lane->warm;
  nk_compiled *c = w->c;
  if (c && c->ordinal == w->image_ordinal) {
    uint32_t pins = __atomic_load_n(&c->pins, __ATOMIC_RELAXED);
    while (!(pins & NK_PIN_EVICTED))
      if (__atomic_compare_exchange_n(&c->pins, &pins, pins + 1, true, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        stamp_use(c, next_stamp(k));
        NK_STAT_ADD(k, jit_cache_hits, 1);
        *out = c;
        return 0;
      }
  }
  unbind_root(lane);          /* while c's struct is kept: the entry may let go of it */
  pthread_mutex_lock(&k->cache_lock);
  uint32_t code = compiled_locked(k, lane, &w->image->image, w->image_ordinal, out);
  if (!code && *out != c) {
    warm_let_go_locked(w);
    w->c = *out;
    w->c->lane_refs++;
  }
  pthread_mutex_unlock(&k->cache_lock);
  return code;
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

/* nub_cap_lookup_fn of the memory on lane: resolve() records the Data
** caps it finds (the first NK_WARM_DATA), and the memory build of every
** invoke of that Instance finds them again without the directory lock. */
static const nub_cap_view *lookup_recording(void *ud, const uint8_t hash[CAP_HASH_SIZE]) {
  nk_lane *lane = ud;
  nk_warm *w = &lane->warm;
  const nub_cap_view *v = nk_caps_find(lane->kernel, hash, NULL);
  if (v && w->ndata < NK_WARM_DATA) {
    memcpy(w->data_hash[w->ndata], hash, CAP_HASH_SIZE);
    w->data[w->ndata++] = v;
  }
  return v;
}

static const nub_cap_view *lookup_warm(void *ud, const uint8_t hash[CAP_HASH_SIZE]) {
  const nk_lane *lane = ud;
  const nk_warm *w = &lane->warm;
  for (uint32_t i = 0; i < w->ndata; i++)
    if (!memcmp(w->data_hash[i], hash, CAP_HASH_SIZE)) return w->data[i];
  return nk_caps_find(lane->kernel, hash, NULL);
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
** lo, the log host call is serviced in place and the program resumes.
** The root vm stays bound to the warm program (nk_warm.vm): vm_init and
** vm_fini were ~95 of a warm invoke's ~630 instructions (callgrind).
** The memory's pages go back in nk_invoke_settle, after the result is
** out.  Inlined into invoke, its one caller: ~20 instructions of call a
** warm invoke (callgrind). */
__attribute__((always_inline)) static inline int run(nk_kernel *k, nk_lane *lane, nk_compiled *c,
                                                     nk_warm *w, const nub_invoke_packet *p,
                                                     nub_invocation_result *r, log_out *lo) {
  const nub_cap_view *image = w->image, *inst = w->inst;
  const nub_cap_image_view *im = &image->image;
  int64_t gas = p->initial_gas > INT64_MAX ? INT64_MAX : (int64_t)p->initial_gas;
  uint64_t runs = w->runs, room = k->budget - w->pages;
  nub_pvm_vm *vm;
  nub_pvm_error perr;
  nub_cap_error cerr;
  if (__builtin_expect(lane->mem_used, 0)) {   /* no settle since its last invoke */
    nk_frames_settle(lane);
    if (nub_pvm_mem_reset(lane->mem, &perr)) {
      nk_note(lane, "memory reset: %s", perr.msg);
      return NUB_KERR_OUT_OF_MEMORY;
    }
  }
  if (runs * NUB_GAS_PER_DATA_RUN > (uint64_t)gas) {
    *r = (nub_invocation_result){NUB_EXIT_OUT_OF_GAS, 0, p->args[0], (uint64_t)gas};
    return 0;
  }
  gas -= (int64_t)(runs * NUB_GAS_PER_DATA_RUN);
  lane->mem_used = true;
  if (w->bare)   /* what nub_cap_memory_build does for it, on the memory just reset */
    nub_pvm_mem_set_heap(lane->mem, im->heap_top, im->heap_limit);
  else if (nub_cap_memory_build(lane->mem, image, inst, lookup_warm, lane, &cerr)) {
    nk_note(lane, "memory: %s", cerr.msg);
    return cerr.code == CAP_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY : NUB_KERR_MEMORY;
  }
  uint64_t heap = im->heap_limit > im->heap_top ? im->heap_limit - im->heap_top : 0;
  if (heap > room) {
    heap = room;
    nub_pvm_mem_set_heap(lane->mem, im->heap_top, im->heap_top + (uint32_t)room);
  }
  if (!(vm = w->vm)) {
    if (!(vm = nk_frames_root_vm(k, lane))) return NUB_KERR_OUT_OF_MEMORY;
    if (nub_pvm_vm_init(vm, c->prog, lane->mem, k->cfg.engine, c->code, &perr)) {
      nk_note(lane, "engine start (%s): %s", k->cfg.engine->name, perr.msg);
      return NUB_KERR_ENGINE_START;
    }
    w->vm = vm;
  }
  memcpy(vm->regs, w->ep.regs, sizeof vm->regs);
  memcpy(&vm->regs[7], p->args, sizeof p->args);
  vm->gas = gas;
  nub_pvm_vm_set_pc(vm, w->ep.entry_pc);
  /* the frames hold the mappings and the sbrk range of each memory */
  return (int)nk_frames_run(k, lane, c, w, k->budget - room + heap, lo ? log_host : NULL, lo, r);
}

/* Find and check what p names into lane->warm: 0 or a kernel error code
** (the entry is left invalid). */
static uint32_t resolve(nk_kernel *k, nk_lane *lane, const nub_invoke_packet *p) {
  nk_warm *w = &lane->warm;
  nub_cap_error cerr;
  w->valid = false;
  const nub_cap_view *inst = nk_caps_find(k, p->instance_hash, NULL);
  if (!inst) return NUB_KERR_INSTANCE_NOT_FOUND;
  if (inst->kind != CAP_INSTANCE) return NUB_KERR_NOT_AN_INSTANCE;
  const nub_cap_view *image = nk_caps_find(k, inst->instance.image_hash, &w->image_ordinal);
  if (!image) return NUB_KERR_IMAGE_NOT_FOUND;
  if (image->kind != CAP_IMAGE) return NUB_KERR_NOT_AN_IMAGE;
  if (p->endpoint_idx > NUB_ENDPOINT_MAX ||   /* never a truncated key */
      !nub_cap_image_find_endpoint(&image->image, (uint8_t)p->endpoint_idx, &w->ep)) {
    nk_note(lane, "endpoint %u: %s", p->endpoint_idx,
            p->endpoint_idx > NUB_ENDPOINT_MAX ? "above the largest key 255" : "no such key");
    return NUB_KERR_ENDPOINT_NOT_FOUND;
  }
  /* an invocation's pages (mappings + sbrk) stay within the budget */
  w->pages = nk_mapping_bytes(&image->image);
  if (w->pages > k->budget) {
    nk_note(lane, "the Image maps %llu bytes, over the memory budget of %llu",
            (unsigned long long)w->pages, (unsigned long long)k->budget);
    return NUB_KERR_OUT_OF_MEMORY;
  }
  w->ndata = 0;
  if (nub_cap_memory_runs(image, inst, lookup_recording, lane, &w->runs, &cerr)) {
    nk_note(lane, "memory: %s", cerr.msg);
    return cerr.code == CAP_ERR_NOMEM ? NUB_KERR_OUT_OF_MEMORY : NUB_KERR_MEMORY;
  }
  w->bare = !image->image.mapping_count && !inst->instance.overlay_count;
  w->root_cnode = memcmp(inst->instance.root_cnode, (uint8_t[CAP_HASH_SIZE]){0}, CAP_HASH_SIZE);
  memcpy(w->instance_hash, p->instance_hash, NUB_HASH_SIZE);
  w->endpoint_idx = p->endpoint_idx;
  w->inst = inst;
  w->image = image;
  w->valid = true;
  return 0;
}

/* Find, check, compile and run p on lane: 0 (r filled) or a kernel error
** code (its reason in lane->last_error).  The same Instance and endpoint
** as the lane's last invoke skip the lookups (lane->warm); compile
** checks, the JIT cache and the memory are the same either way. */
__attribute__((always_inline)) static inline uint32_t invoke(nk_kernel *k, nk_lane *lane,
                                                             const nub_invoke_packet *p,
                                                             nub_invocation_result *r,
                                                             log_out *lo) {
  nk_warm *w = &lane->warm;
  uint32_t code;
  if (p->flags & ~NUB_INVOKE_FLAG_LOG) return NUB_KERR_BAD_FLAGS;
  if (!(w->valid && w->endpoint_idx == p->endpoint_idx &&
        !memcmp(w->instance_hash, p->instance_hash, NUB_HASH_SIZE)) &&
      (code = resolve(k, lane, p)))
    return code;
  nk_compiled *c;
  if ((code = pin_warm(k, lane, &c))) return code;
  code = (uint32_t)run(k, lane, c, w, p, r, lo);
  nk_compiled_unpin(k, c);
  return code;
}

/* Kernel errors folded into the result, counted.  Inlined with invoke
** into its two callers: two calls less, ~25 instructions of a warm
** invoke (callgrind). */
__attribute__((always_inline)) static inline void invoke_counted(nk_kernel *k, nk_lane *lane,
                                                                 const nub_invoke_packet *p,
                                                                 nub_invocation_result *r,
                                                                 log_out *lo) {
  lane->last_error[0] = 0;           /* KERNEL_LAST_ERROR speaks of this invocation */
  uint32_t code = invoke(k, lane, p, r, lo);
  NK_STAT_ADD(k, invocations, 1);
  if (code) {
    *r = (nub_invocation_result){NUB_EXIT_KERNEL_ERROR, code, 0, 0};
    if (!lane->last_error[0]) nk_note(lane, "kernel error %u", code);
    NK_STAT_ADD(k, kernel_errors, 1);
  }
}

void nk_invoke_on(nk_kernel *k, nk_lane *lane, const nub_invoke_packet *p,
                  nub_invocation_result *r) {
  if (p->flags & NUB_INVOKE_FLAG_LOG) {   /* the log needs the RPC path's reply buffer */
    lane->last_error[0] = 0;
    nk_note(lane, "the log flag is served by INVOKE_CACHED (fn 3), not by lanes");
    *r = (nub_invocation_result){NUB_EXIT_KERNEL_ERROR, NUB_KERR_BAD_FLAGS, 0, 0};
    NK_STAT_ADD(k, invocations, 1);
    NK_STAT_ADD(k, kernel_errors, 1);
    return;
  }
  invoke_counted(k, lane, p, r, NULL);
}

void nk_invoke_settle(nk_lane *lane) {
  if (!lane->mem_used) return;
  nk_frames_settle(lane);
  if (!nub_pvm_mem_reset(lane->mem, NULL)) lane->mem_used = false;   /* else: run() again */
}

uint32_t nk_fn_invoke(nk_kernel *k, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_cap, size_t *out_len) {
  nk_lane *lane = &k->primary;
  nub_invoke_packet p;
  nub_invocation_result r;
  const size_t head = sizeof r + NUB_LOG_SECTION_HEADER;
  log_out lo = {out + head, 0, 0, 0, 0};
  if (in_len != sizeof p) {
    lane->last_error[0] = 0;
    nk_note(lane, "invoke packet of %zu bytes, expected %zu", in_len, sizeof p);
    r = (nub_invocation_result){NUB_EXIT_KERNEL_ERROR, NUB_KERR_BAD_PACKET, 0, 0};
    NK_STAT_ADD(k, invocations, 1);
    NK_STAT_ADD(k, kernel_errors, 1);
    return nk_reply(out, out_cap, out_len, &r, sizeof r);
  }
  memcpy(&p, in, sizeof p);          /* read the shared packet once */
  bool logged = p.flags & NUB_INVOKE_FLAG_LOG;
  if (logged) {
    if (out_cap < head) p.flags = ~0u;   /* no room for the log: refused as bad flags */
    else lo.cap = out_cap - head < NUB_INVOKE_LOG_MAX ? out_cap - head : NUB_INVOKE_LOG_MAX;
  }
  invoke_counted(k, lane, &p, &r, logged ? &lo : NULL);
  nk_invoke_settle(lane);
  if (!logged || r.exit_reason == NUB_EXIT_KERNEL_ERROR)
    return nk_reply(out, out_cap, out_len, &r, sizeof r);
  memcpy(out, &r, sizeof r);
  put_u32(out + sizeof r, lo.count);
  put_u32(out + sizeof r + 4, lo.dropped);
  *out_len = head + lo.len;
  return NUB_RPC_OK;
}
