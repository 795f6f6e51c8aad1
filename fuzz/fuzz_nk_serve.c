/*
** Fuzz the guest kernel through nk_serve with inputs that are programs of
** operations, so that mutation keeps reaching past the lookups: put caps
** built from a fuzzed PVM program (generic or SPI layout), put Data caps,
** mutate one field of a published cap and put the result, make Instances
** with overlays, invoke with fuzzed endpoints, arguments and gas, evict
** the JIT cache, or send a raw frame.  Compile, memory set-up and run are
** all reached.  fuzz/README.md gives the input format and the coverage.
**
** Checked after every request: the response frame is well formed; after
** every input: the heap is consistent and every cap the kernel accepted
** is found again (the directory and the kernel's views agree).
*/
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/nk.h"
#include "guest/nk_internal.h"
#include "nub/cap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAP (16u << 20)
#define IO (1u << 20)
#define MAX_CAPS 64
#define MAX_OPS 64
/* Memory set-up costs O(bytes) until issue 9 item 2 lands: an invoke
** whose mappings and overlays span more is skipped, not run. */
#define MAX_INVOKE_BYTES (64ull << 20)
#define MAX_GAS 100000u

enum {
  OP_RAW, OP_PUT_PROGRAM, OP_PUT_DATA, OP_MUTATE, OP_INSTANCE, OP_INVOKE, OP_EVICT, OP_FRAME,
  OP_PAGES, OP_COUNT
};

typedef struct reader { const uint8_t *p, *end; } reader;

/* Little-endian n bytes; past the end reads zeros. */
static uint64_t take(reader *r, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n && r->p < r->end; i++) v |= (uint64_t)*r->p++ << (8 * i);
  return v;
}

static size_t take_bytes(reader *r, size_t n, const uint8_t **out) {
  size_t left = (size_t)(r->end - r->p);
  if (n > left) n = left;
  *out = r->p;
  r->p += n;
  return n;
}

static uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)(uint32_t)v; }

typedef struct known {
  uint8_t *wire;
  size_t len;
  uint8_t hash[CAP_HASH_SIZE];
  nub_cap_kind kind;
} known;

static bool trace;               /* NUB_FUZZ_TRACE=1: say what each op did */
static nk_kernel *kernel;
static void *heap;
static uint8_t in[IO], out[4096];
static known caps[MAX_CAPS];
static unsigned ncaps;

static void start(const nub_pvm_engine *engine) {
  char err[200];
  nk_config cfg = {0};
  if (!heap && !(heap = aligned_alloc(4096, HEAP))) abort();
  cfg.heap_base = heap;
  cfg.heap_size = HEAP;
  cfg.engine = engine;
  if (nk_create(&cfg, &kernel, err, sizeof err)) abort();
}

/* One request; the reply's payload goes to *reply / *reply_len. */
static uint32_t serve(uint32_t fn, const uint8_t *payload, size_t len, const uint8_t **reply,
                      size_t *reply_len) {
  nub_request_header req = {NUB_REQUEST_MAGIC, fn, len};
  nub_response_header resp;
  memcpy(in, &req, sizeof req);
  if (len) memcpy(in + sizeof req, payload, len);
  size_t n = nk_serve(kernel, in, sizeof req + len, out, sizeof out);
  if (n < sizeof resp) __builtin_trap();
  memcpy(&resp, out, sizeof resp);
  if (resp.magic != NUB_RESPONSE_MAGIC || sizeof resp + resp.len != n) __builtin_trap();
  *reply = out + sizeof resp;
  *reply_len = (size_t)resp.len;
  return resp.status;
}

static void remember(const uint8_t *wire, size_t len, const uint8_t *hash) {
  nub_cap_view v;
  if (ncaps == MAX_CAPS || nub_cap_decode(wire, wire + len, &v, NULL)) return;
  for (unsigned i = 0; i < ncaps; i++)
    if (!memcmp(caps[i].hash, hash, CAP_HASH_SIZE)) return;
  if (!(caps[ncaps].wire = malloc(len ? len : 1))) abort();
  memcpy(caps[ncaps].wire, wire, len);
  memcpy(caps[ncaps].hash, hash, CAP_HASH_SIZE);
  caps[ncaps].len = len;
  caps[ncaps].kind = v.kind;
  ncaps++;
}

static void put(const uint8_t *wire, size_t len) {
  const uint8_t *reply;
  size_t n;
  if (len > IO - sizeof(nub_request_header)) return;
  if (serve(NUB_FN_PUT_CAP, wire, len, &reply, &n) != NUB_RPC_OK || n < CAP_HASH_SIZE)
    __builtin_trap();                                  /* PUT_CAP never fails as an RPC */
  if (trace)
    fprintf(stderr, "  put %zu bytes: %s%.*s\n", len, n == CAP_HASH_SIZE ? "ok, cap " : "refused: ",
            n > CAP_HASH_SIZE + 4 ? (int)(n - CAP_HASH_SIZE - 4) : 0, reply + CAP_HASH_SIZE + 4);
  if (n == CAP_HASH_SIZE && !nub_cap_hash_is_sentinel(reply)) remember(wire, len, reply);
  if (trace && n == CAP_HASH_SIZE) fprintf(stderr, "    table has %u caps\n", ncaps);
}

static void put_spec(const nub_cap_spec *spec) {
  uint8_t *wire;
  size_t len;
  if (nub_cap_encode_alloc(spec, &wire, &len, NULL)) return;
  put(wire, len);
  free(wire);
}

static const known *pick(reader *r, int kind) {
  unsigned start = (unsigned)take(r, 1);
  for (unsigned i = 0; i < ncaps; i++) {
    const known *k = &caps[(start + i) % ncaps];
    if (kind < 0 || k->kind == (nub_cap_kind)kind) return k;
  }
  return NULL;
}

/* Bytes an invocation of this Instance would build memory for. */
static uint64_t invoke_bytes(const uint8_t *hash) {
  const nub_cap_view *inst = nk_caps_find(kernel, hash, NULL), *image, *d;
  uint64_t total = 0;
  nub_cap_mapping m;
  nub_cap_overlay o;
  if (!inst || inst->kind != CAP_INSTANCE) return 0;
  if (!(image = nk_caps_find(kernel, inst->instance.image_hash, NULL)) || image->kind != CAP_IMAGE)
    return 0;
  for (uint32_t i = 0; i < image->image.mapping_count; i++) {
    nub_cap_image_mapping(&image->image, i, &m);
    total += m.size;
  }
  for (uint32_t i = 0; i < inst->instance.overlay_count; i++) {
    nub_cap_instance_overlay(&inst->instance, i, &o);
    if ((d = nk_caps_find(kernel, o.data, NULL)) && d->kind == CAP_DATA) total += d->data.size;
  }
  return total;
}

static void invoke(nub_invoke_packet *p, size_t len) {
  const uint8_t *reply;
  size_t n;
  p->initial_gas %= MAX_GAS;
  if (len == sizeof *p && invoke_bytes(p->instance_hash) > MAX_INVOKE_BYTES) return;
  if (serve(NUB_FN_INVOKE_CACHED, (const uint8_t *)p, len, &reply, &n) != NUB_RPC_OK ||
      n != sizeof(nub_invocation_result))
    __builtin_trap();
  if (trace) {
    nub_invocation_result res;
    memcpy(&res, reply, sizeof res);
    fprintf(stderr, "  invoke: exit %d arg %u r7 %llu gas left %llu\n", (int)res.exit_reason,
            res.exit_arg, (unsigned long long)res.return_value, (unsigned long long)res.gas_remaining);
  }
}

static void op_raw(reader *r) {
  uint32_t fn = (uint32_t)take(r, 1) % 16;
  const uint8_t *payload, *reply;
  size_t len = take_bytes(r, (size_t)take(r, 2), &payload), n;
  if (fn == NUB_FN_INVOKE_CACHED && len == sizeof(nub_invoke_packet)) {
    nub_invoke_packet p;
    memcpy(&p, payload, sizeof p);
    invoke(&p, sizeof p);
  } else if (fn == NUB_FN_PUT_CAP) {
    put(payload, len);
  } else {
    uint32_t status = serve(fn, payload, len, &reply, &n);
    if (trace)
      fprintf(stderr, "  fn %u, %zu-byte payload: status %u, %.*s\n", fn, len, status,
              status == NUB_RPC_OK ? 0 : (int)n, (const char *)reply);
  }
}

/* PAGES_RESERVE, the pages written into the block as a host does, then
** PAGES_COMMIT: n = 1..8 pages; how: bit 0 a gap before every other index,
** bit 1 page 0 left zero, bit 2 one run fewer reserved than used, bit 3 a
** length one page off, bit 4 nothing written; fill u8, hash u8.  The
** reserved block must lie in the heap, page aligned, of the size asked
** for; a committed cap is found again (checked at the end). */
static void op_pages(reader *r) {
  unsigned n = (unsigned)take(r, 1) % 8 + 1, how = (unsigned)take(r, 1);
  uint8_t fill = (uint8_t)take(r, 1), hash = (uint8_t)take(r, 1), frame[sizeof(nub_pages_commit) + 32];
  uint32_t indexes[8], runs = 0;
  for (unsigned i = 0; i < n; i++) {
    indexes[i] = how & 1 ? 2 * i : i;
    runs += i == 0 || indexes[i] != indexes[i - 1] + 1;
  }
  nub_pages_reserve q = {n, how & 4 && runs > 1 ? runs - 1 : runs};
  nub_pages_reserved got;
  const uint8_t *reply;
  size_t len;
  if (serve(NUB_FN_PAGES_RESERVE, (const uint8_t *)&q, sizeof q, &reply, &len) != NUB_RPC_OK)
    return;
  memcpy(&got, reply, sizeof got);
  if (len != sizeof got || got.heap_offset % 4096 || got.size != 4096ull * n + 8ull * q.runs ||
      got.heap_offset > HEAP || got.size > HEAP - got.heap_offset)
    __builtin_trap();
  uint8_t *block = (uint8_t *)heap + got.heap_offset;
  for (unsigned i = 0; i < n && !(how & 16); i++)
    memset(block + 4096 * (size_t)i, i == 0 && how & 2 ? 0 : fill | 1, 4096);
  uint8_t *wire = malloc(CAP_DIR_DATA_HEAD + (4 + 4096) * (size_t)n);
  uint64_t size = 4096ull * (indexes[n - 1] + 1);
  uint32_t at = 12;
  if (!wire) abort();
  wire[0] = 2;
  memcpy(wire + 1, &size, 8);
  memcpy(wire + 9, &at, 4);
  for (unsigned i = 0; i < n; i++) {
    memcpy(wire + CAP_DIR_DATA_HEAD + (4 + 4096) * (size_t)i, &indexes[i], 4);
    memcpy(wire + CAP_DIR_DATA_HEAD + (4 + 4096) * (size_t)i + 4, block + 4096 * (size_t)i, 4096);
  }
  nub_pages_commit c;
  memset(&c, 0, sizeof c);
  memset(c.hash, hash, sizeof c.hash);
  c.len = CAP_DIR_DATA_HEAD + (4 + 4096) * (uint64_t)n + (how & 8 ? 4100 : 0);
  memcpy(c.head, wire, sizeof c.head);
  memcpy(frame, &c, sizeof c);
  memcpy(frame + sizeof c, indexes, 4 * (size_t)n);
  uint32_t status = serve(NUB_FN_PAGES_COMMIT, frame, sizeof c + 4 * (size_t)n, &reply, &len);
  if (trace)
    fprintf(stderr, "  pages %u (how 0x%x): status %u, %.*s\n", n, how, status,
            status == NUB_RPC_OK ? 0 : (int)len, (const char *)reply);
  if (status == NUB_RPC_OK) remember(wire, CAP_DIR_DATA_HEAD + (4 + 4096) * (size_t)n, c.hash);
  free(wire);
}

/* A whole request frame, header included, into a normal or a 20-byte
** output buffer. */
static void op_frame(reader *r) {
  uint8_t small = (uint8_t)take(r, 1) & 1;
  const uint8_t *frame;
  size_t len = take_bytes(r, take(r, 2), &frame);
  nub_request_header req;
  memcpy(in, frame, len);
  if (len >= sizeof req) {                       /* bound the run time of an invoke */
    memcpy(&req, in, sizeof req);
    if (req.fn_id == NUB_FN_INVOKE_CACHED) return;
  }
  nk_serve(kernel, in, len, out, small ? 20 : sizeof out);
}

/* A program of fuzzed instructions; branches go to fuzzed instructions. */
static uint8_t *gen_program(reader *r, nub_pvm_profile profile, size_t *len) {
  const nub_pvm_opinfo *isa = nub_pvm_isa(profile);
  uint8_t valid[256];
  unsigned nvalid = 0, n = (unsigned)take(r, 1) % 32 + 1;
  uint32_t labels[32];
  uint8_t *blob = NULL;
  for (unsigned i = 0; i < 256; i++) if (isa[i].name) valid[nvalid++] = (uint8_t)i;
  nub_pvm_builder *b = nub_pvm_builder_new(profile);
  if (!b) abort();
  for (unsigned i = 0; i < n; i++) labels[i] = nub_pvm_builder_label(b);
  for (unsigned i = 0; i < n; i++) {
    uint8_t sel = (uint8_t)take(r, 1);          /* an opcode byte, or an index of one */
    const nub_pvm_opinfo *info = isa[sel].name ? &isa[sel] : &isa[valid[sel % nvalid]];
    uint64_t regs = take(r, 2), x = sext32(take(r, 4)), y = take(r, 4);
    uint8_t ra = regs % 13, rb = regs / 13 % 13, rd = regs / 169 % 13;
    nub_pvm_builder_bind(b, labels[i]);
    if (info->flags & PVM_OPF_BRANCH)
      nub_pvm_builder_branch(b, (nub_pvm_op)info->op, ra, rb, x, labels[y % n]);
    else
      nub_pvm_builder_insn(b, (nub_pvm_op)info->op, ra, rb, rd, x, sext32(y));
  }
  if (nub_pvm_builder_finish(b, &blob, len, NULL)) blob = NULL;
  nub_pvm_builder_free(b);
  return blob;
}

static void op_put_program(reader *r) {
  uint8_t mode = (uint8_t)take(r, 1);
  nub_pvm_profile profile = (nub_pvm_profile)(mode % PVM_PROFILE_COUNT);
  size_t len;
  uint8_t *blob = gen_program(r, profile, &len);
  nub_cap_bundle bundle;
  int rc;
  if (!blob) return;
  if (mode & 0x10) {                              /* SPI: RO, RW, heap, stack, args */
    nub_pvm_spi spi = {0};
    const uint8_t *args;
    uint8_t *wire;
    size_t wire_len;
    spi.ro_len = (uint32_t)take_bytes(r, take(r, 1), &spi.ro_data);
    spi.rw_len = (uint32_t)take_bytes(r, take(r, 1), &spi.rw_data);
    spi.heap_pages = (uint32_t)take(r, 1) % 4;
    spi.stack_size = (uint32_t)take(r, 1) % 4 * 4096;
    spi.code_blob = blob;
    spi.code_blob_len = (uint32_t)len;
    size_t args_len = take_bytes(r, take(r, 1), &args);
    if (nub_pvm_spi_encode(&spi, &wire, &wire_len, NULL)) { free(blob); return; }
    rc = nub_cap_build_spi(profile, wire, wire_len, args, (uint32_t)args_len, &bundle, NULL);
    free(wire);
  } else {                                        /* generic: up to 3 regions */
    nub_cap_region map[3];
    uint32_t count = (uint32_t)take(r, 1) % 4, at = 0x10000;
    for (uint32_t i = 0; i < count; i++) {
      at += (uint32_t)take(r, 1) % 4 * 4096;
      map[i].start = at;
      map[i].size = ((uint32_t)take(r, 1) % 8 + 1) * 4096;
      map[i].access = take(r, 1) & 1 ? CAP_ACCESS_RW : CAP_ACCESS_RO;
      map[i].len = take_bytes(r, take(r, 1), &map[i].bytes);
      at += map[i].size;
    }
    rc = nub_cap_build_generic(profile, blob, len, map, count, &bundle, NULL);
  }
  free(blob);
  if (rc) return;
  for (uint32_t i = 0; i < bundle.count; i++) put(bundle.items[i].wire, bundle.items[i].len);
  nub_cap_bundle_free(&bundle);
}

static void op_put_data(reader *r) {
  uint64_t pages = take(r, 1) % 64;
  const uint8_t *bytes;
  size_t len = take_bytes(r, take(r, 2), &bytes);
  uint8_t *wire;
  size_t wire_len;
  if (len > pages * 4096) len = (size_t)pages * 4096;
  if (nub_cap_encode_data_alloc(pages * 4096, bytes, len, &wire, &wire_len, NULL)) return;
  put(wire, wire_len);
  free(wire);
}

/* Change one field of a published cap and put what the encoder accepts. */
static void op_mutate(reader *r) {
  const known *k = pick(r, -1);
  unsigned field = (unsigned)take(r, 1);
  uint64_t value = take(r, 8);
  const known *other = pick(r, -1);
  nub_cap_view v;
  nub_cap_spec spec;
  uint8_t code[4096];
  if (!k || nub_cap_decode(k->wire, k->wire + k->len, &v, NULL) || nub_cap_spec_from_view(&v, &spec, NULL))
    return;
  if (spec.kind == CAP_IMAGE) {
    nub_cap_image_spec *im = &spec.image;
    nub_cap_endpoint *ep = im->endpoint_count ? (nub_cap_endpoint *)&im->endpoints[value % im->endpoint_count] : NULL;
    nub_cap_mapping *m = im->mapping_count ? (nub_cap_mapping *)&im->mappings[value % im->mapping_count] : NULL;
    switch (field % 10) {
    case 0: im->profile = (uint8_t)(value >> 8); break;
    case 1: im->heap_top = (uint32_t)(value >> 8); im->heap_limit = (uint32_t)(value >> 32); break;
    case 2: if (ep) ep->entry_pc = (uint32_t)(value >> 8); break;
    case 3: if (ep) ep->regs[(value >> 8) % CAP_REGS] = value >> 16; break;
    case 4: if (ep) ep->key = (uint8_t)(value >> 8); break;
    case 5: if (m) m->start = (uint32_t)(value >> 24) & ~0xFFFu; break;
    case 6: if (m) m->size = (uint32_t)(value >> 24) & ~0xFFFu; break;
    case 7: if (m) m->access = (uint8_t)(value >> 8) % 4; break;
    case 8:
      if (m && other) memcpy(m->source, other->hash, CAP_HASH_SIZE);
      else if (m) memset(m->source, 0, CAP_HASH_SIZE);
      break;
    case 9:                                        /* one code byte */
      if (im->code_len && im->code_len <= sizeof code) {
        memcpy(code, im->code, im->code_len);
        code[(value >> 8) % im->code_len] ^= (uint8_t)(value >> 40) | 1;
        im->code = code;
      }
      break;
    }
  } else if (spec.kind == CAP_INSTANCE) {
    nub_cap_instance_spec *is = &spec.instance;
    switch (field % 6) {
    case 0: if (other) memcpy(is->image_hash, other->hash, CAP_HASH_SIZE); break;
    case 5: memcpy(is->image_hash, &value, sizeof value); break;   /* most likely unpublished */
    case 1: is->regs[(value >> 8) % CAP_REGS] = value >> 16; break;
    case 2: is->pc = (uint32_t)(value >> 8); break;
    case 3: is->gas = value >> 8; break;
    case 4:
      if (is->overlay_count)
        ((nub_cap_overlay *)is->overlays)[(value >> 8) % is->overlay_count].address = (uint32_t)(value >> 32);
      break;
    }
  } else if (spec.kind == CAP_DATA && spec.data.page_count) {
    nub_cap_page *pg = (nub_cap_page *)&spec.data.pages[(value >> 8) % spec.data.page_count];
    if (field & 1) spec.data.size = (value >> 16) & 0x1FFFFF000ull;
    else pg->index = (uint32_t)(value >> 16) % 1024;
  }
  put_spec(&spec);
  nub_cap_spec_free(&spec);
}

/* An Instance of a published Image with overlays of published Data caps. */
static void op_instance(reader *r) {
  const known *image = pick(r, CAP_IMAGE);
  nub_cap_overlay overlays[4];
  nub_cap_spec spec;
  uint32_t count = (uint32_t)take(r, 1) % 5, at = 0x10000;
  memset(&spec, 0, sizeof spec);
  spec.kind = CAP_INSTANCE;
  if (!image) return;
  nub_cap_instance_fresh(image->hash, &spec.instance);
  for (uint32_t i = 0; i < count; i++) {
    const known *d = pick(r, CAP_DATA);
    if (!d) return;
    at += (uint32_t)take(r, 1) * 4096;
    overlays[i].address = at;
    memcpy(overlays[i].data, d->hash, CAP_HASH_SIZE);
    at += 4096;
  }
  spec.instance.overlays = overlays;
  spec.instance.overlay_count = count;
  spec.instance.pc = (uint32_t)take(r, 1);
  spec.instance.regs[take(r, 1) % CAP_REGS] = take(r, 8);
  put_spec(&spec);
}

static void op_invoke(reader *r) {
  nub_invoke_packet p;
  uint8_t how = (uint8_t)take(r, 1);
  const known *k = pick(r, how & 1 ? -1 : CAP_INSTANCE);
  memset(&p, 0, sizeof p);
  if (k) memcpy(p.instance_hash, k->hash, CAP_HASH_SIZE);
  else p.instance_hash[0] = how;                 /* nothing published: not found */
  p.endpoint_idx = how & 2 ? (uint32_t)take(r, 4) : 0;
  for (int i = 0; i < 4; i++) p.args[i] = how & 4 ? take(r, 8) : sext32(take(r, 2));
  p.initial_gas = take(r, 3);
  invoke(&p, how & 0x80 ? sizeof p - 1 : sizeof p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, data + size};
  const uint8_t *reply;
  size_t n;
  if (!size) return 0;
  trace = getenv("NUB_FUZZ_TRACE") != NULL;
  uint8_t flags = (uint8_t)take(&r, 1);
  const nub_pvm_engine *engine = flags & 1 ? nk_engine_by_name("jit") : NULL;
  start(engine ? engine : &nub_pvm_engine_interp);
  for (unsigned ops = 0; r.p < r.end && ops < MAX_OPS; ops++) {
    unsigned op = (unsigned)take(&r, 1) % OP_COUNT;
    if (trace) fprintf(stderr, "op %u\n", op);
    switch (op) {
    case OP_RAW: op_raw(&r); break;
    case OP_PUT_PROGRAM: op_put_program(&r); break;
    case OP_PUT_DATA: op_put_data(&r); break;
    case OP_MUTATE: op_mutate(&r); break;
    case OP_INSTANCE: op_instance(&r); break;
    case OP_INVOKE: op_invoke(&r); break;
    case OP_EVICT: serve(NUB_FN_EVICT_JIT_ALL, NULL, 0, &reply, &n); break;
    case OP_FRAME: op_frame(&r); break;
    case OP_PAGES: op_pages(&r); break;
    }
  }
  if (!nk_heap_check(kernel->heap)) __builtin_trap();
  for (unsigned i = 0; i < ncaps; i++) {            /* the directory and the views agree */
    const nub_cap_view *v = nk_caps_find(kernel, caps[i].hash, NULL);
    nub_cap_dir_entry e;
    uint8_t *back = malloc(caps[i].len ? caps[i].len : 1);
    if (!back) abort();
    if (!v || v->len != caps[i].len || nub_cap_dir_find(&kernel->dir, caps[i].hash, &e, NULL) ||
        e.len != caps[i].len)
      __builtin_trap();
    nub_cap_dir_entry_copy(&e, back);             /* a Data cap stored once: put together */
    if (memcmp(back, caps[i].wire, caps[i].len)) __builtin_trap();
    free(back);
    free(caps[i].wire);
  }
  ncaps = 0;
  nk_destroy(kernel);
  kernel = NULL;
  return 0;
}
