/*
** The inproc backend: the guest kernel linked into this process.  Same
** kernel, same frames, no isolation; for tests, sanitizers, debugging.
** The heap is a memfd, as in proc, so invocations map Data pages
** copy-on-write; without memfds it is anonymous memory and they copy.
*/
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../guest/nk.h"
#include "host.h"

typedef struct inproc {
  host_backend b;
  nk_kernel *kernel;
  void *heap;
  size_t heap_size;
  int heap_fd;             /* -1 when the heap is anonymous memory */
  nub_options opt;
  char *kernel_file;       /* the ELF file that carries the kernel (.boot_info) */
  nub_lane_slot *slots;    /* opt.lanes of them; LANE_START makes each lane's thread */
  nub_cap_helper hash_helper;   /* half the hash of a large Data cap on a thread */
  pthread_t hasher;
  void (*hash_fn)(void *);
  void *hash_arg;
} inproc;

/* Large Data caps are hashed on two threads, as in nub-guest (its hasher):
** here a thread per cap of NK_HASH_HELPER_PAGES pages or more. */
static void *run_hasher(void *arg) {
  inproc *p = arg;
  p->hash_fn(p->hash_arg);
  return NULL;
}

static int hasher_start(void *ud, void (*fn)(void *), void *arg) {
  inproc *p = ud;
  p->hash_fn = fn;
  p->hash_arg = arg;
  return pthread_create(&p->hasher, NULL, run_hasher, p);
}

static void hasher_wait(void *ud) { pthread_join(((inproc *)ud)->hasher, NULL); }

static int start_kernel(inproc *p, nub_error *err) {
  char msg[200];
  nk_config cfg = {p->heap, p->heap_size, nk_engine_by_name(p->opt.engine),
                   p->opt.memory_budget};
  if (!cfg.engine)
    return host_fail(err, NUB_ERR_ARG, "inproc: unknown engine '%s'", p->opt.engine);
  memset(p->slots, 0, p->opt.lanes * sizeof *p->slots);
  if (nk_create(&cfg, &p->kernel, msg, sizeof msg) ||
      (p->heap_fd >= 0 && nk_use_heap_fd(p->kernel, p->heap_fd, 0, msg, sizeof msg)) ||
      nk_lanes_attach(p->kernel, p->slots, p->opt.lanes, msg, sizeof msg))
    return host_fail(err, NUB_ERR_SANDBOX, "inproc: kernel: %s", msg);
  nk_lanes_direct(p->kernel);
  p->hash_helper = (nub_cap_helper){hasher_start, hasher_wait, p, NK_HASH_HELPER_PAGES};
  nk_caps_hash_helper(p->kernel, &p->hash_helper);
  p->b.engine = cfg.engine->name;
  return NUB_OK;
}

/* The kernel (and its .boot_info section) is in this library: the program
** itself when linked statically, libnub.so when linked against it. */
struct find_object { uintptr_t base; const char *name; };

static int find_object(struct dl_phdr_info *info, size_t size, void *ud) {
  struct find_object *f = ud;
  if (info->dlpi_addr != f->base) return 0;
  f->name = info->dlpi_name;
  return 1;
}

static char *kernel_file(void) {
  Dl_info info;
  struct find_object f = {0, NULL};
  if (dladdr((void *)&nk_create, &info) && info.dli_fbase) {
    f.base = (uintptr_t)info.dli_fbase;
    dl_iterate_phdr(find_object, &f);
  }
  /* the main program has an empty name */
  return strdup(f.name && f.name[0] ? f.name : "/proc/self/exe");
}

static void inproc_close(host_backend *b) {
  inproc *p = (inproc *)b;
  if (!p) return;
  nk_destroy(p->kernel);
  if (p->heap) munmap(p->heap, p->heap_size);
  if (p->heap_fd >= 0) close(p->heap_fd);
  free(p->b.in);
  free(p->b.out);
  free(p->kernel_file);
  free(p->slots);
  free(p);
}

static int inproc_open(const nub_options *opt, host_backend **out, nub_error *err) {
  inproc *p = calloc(1, sizeof *p);
  int rc;
  *out = NULL;
  if (!p) return host_fail(err, NUB_ERR_NOMEM, "inproc: out of memory");
  p->b.ops = &host_inproc_ops;
  p->heap_fd = -1;
  p->b.heap_fd = -1;
  p->opt = *opt;
  p->heap_size = opt->heap_size;
  p->b.in_cap = p->b.out_cap = opt->io_size;
  p->b.in = malloc(p->b.in_cap);
  p->b.out = malloc(p->b.out_cap);
  p->slots = aligned_alloc(64, (opt->lanes ? opt->lanes : 1) * sizeof *p->slots);
  p->b.lane_slots = p->slots;
  p->b.lane_count = opt->lanes;
  if (!p->b.in || !p->b.out || !p->slots) { rc = host_fail(err, NUB_ERR_NOMEM, "inproc: no memory for buffers"); goto fail; }
  p->heap_fd = memfd_create("nub-heap-inproc", MFD_CLOEXEC);
  if (p->heap_fd >= 0 && ftruncate(p->heap_fd, (off_t)p->heap_size)) {
    close(p->heap_fd);
    p->heap_fd = -1;
  }
  p->heap = host_map_guest_region(opt->guest_va_base, p->heap_size, PROT_READ | PROT_WRITE,
                                  p->heap_fd >= 0 ? MAP_SHARED
                                                  : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                  p->heap_fd, 0, err);
  if (!p->heap) { rc = err ? err->code : NUB_ERR_SYSTEM; goto fail; }
  if ((rc = start_kernel(p, err))) goto fail;
  p->b.heap_view = p->heap;
  p->b.heap_size = p->heap_size;
  p->b.heap_fd = p->heap_fd;       /* closed by inproc_close */
  p->b.heap_fd_off = 0;
  if (!(p->b.exe_path = p->kernel_file = kernel_file())) {
    rc = host_fail(err, NUB_ERR_NOMEM, "inproc: out of memory");
    goto fail;
  }
  *out = &p->b;
  return NUB_OK;
fail:
  inproc_close(&p->b);
  return rc;
}

static int inproc_call(host_backend *b, nub_error *err) {
  inproc *p = (inproc *)b;
  (void)err;
  nk_serve(p->kernel, b->in, b->in_cap, b->out, b->out_cap);
  return NUB_OK;
}

/* A lane is the calling thread on the lane's state: a thread handoff
** would cost more than the invocation (7 us against 0.6 us for a warm
** trivial one, `nub bench lanes --backend inproc` with one free core). */
static int inproc_lane_run(host_backend *b, uint32_t lane, const nub_invoke_packet *pk,
                           nub_invocation_result *r, char *text, nub_error *err) {
  inproc *p = (inproc *)b;
  if (nk_lane_invoke(p->kernel, lane, pk, r, text))
    return host_fail(err, NUB_ERR_PROTOCOL, "inproc: lane %u is not started", lane);
  for (char *c = text; *c; c++)       /* as host_lane_take leaves it */
    if ((uint8_t)*c < 0x20 || (uint8_t)*c >= 0x7F) *c = '?';
  return NUB_OK;
}

/* The kernel cannot die in-process; a restart is a fresh kernel. */
static int inproc_restart(host_backend *b, nub_error *err) {
  inproc *p = (inproc *)b;
  nk_destroy(p->kernel);
  p->kernel = NULL;
  return start_kernel(p, err);
}

const host_backend_ops host_inproc_ops = {
  "inproc", inproc_open, inproc_call, inproc_restart, inproc_close, NULL,  /* no transport */
  NULL, NULL,                /* lives and dies with this process */
  inproc_lane_run,
};
