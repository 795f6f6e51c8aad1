/*
** The CALL/HALT kernel: an invocation is a stack of frames.  A frame is
** an Instance (its Image, type chain, 256 one-byte slots and, once it has
** been called, its own address space) plus the engine state running it.
** The engine exits on every `ecalli`; the loop here serves the kernel
** operations (nk_frames.h) and hands every other exit to the host.
**
**   root ──HOST_CALL──► child ──HOST_CALL──► grandchild
**     ◄──── HALT / REPLY: phi7, slot 0 ◄──────┘
**
** Data flow: only phi7..phi8 go down (phi9, phi10 of the caller) and
** only phi7 and the scratchpad slot 0 come back; a callee's memory is its
** own (copy-on-write from the Image's Data pages) and stays with its
** Instance in the caller's slot, so a re-called Instance sees its own
** earlier writes.  Every Instance and frame lives only as long as the
** invocation.  docs/kernel.md.
*/
#include <stdlib.h>
#include <string.h>

#include "nk_frames.h"
#include "nk_internal.h"
#include "../util/nub_assert.h"

enum { SLOT_EMPTY, SLOT_CAP, SLOT_INST, SLOT_DATA, SLOT_PENDING };

typedef struct nk_inst nk_inst;

/* CAP: a directory cap (bytes = its hash); INST: an Instance this slot
** owns; DATA: 32 bytes (a type chain); PENDING: inst is running above. */
typedef struct nk_slot {
  uint8_t kind;
  uint8_t bytes[CAP_HASH_SIZE];
  nk_inst *inst;
} nk_slot;

struct nk_inst {
  const nub_cap_view *image;
  uint32_t image_ordinal;
  const nub_cap_view *published;     /* Instance cap it came from (overlays), or NULL */
  uint8_t image_hash[CAP_HASH_SIZE];
  uint8_t chain[CAP_HASH_SIZE];
  nub_pvm_mem *mem;                  /* NULL until its first CALL */
  bool borrowed_mem;             /* the root's (its lane's mem) */
  uint64_t held;                 /* budget bytes: this struct + its memory */
  uint32_t slots_hi;             /* slots [slots_hi, 256) are empty */
  nk_inst *next;                 /* free list / release work list */
  nk_slot slots[NK_SLOTS];
};

typedef struct nk_frame {
  nk_inst *inst;
  nk_compiled *c;
  uint8_t origin;                /* the caller's slot it came from */
  bool yielded;                  /* suspended in HOST_YIELD, its caller handles */
  nub_pvm_vm vm;
} nk_frame;

struct nk_frames {
  nk_kernel *k;
  nk_frame stack[NK_MAX_DEPTH];
  uint32_t depth;                /* frames on the stack */
  uint32_t active;               /* the one running: depth - 1, or depth - 2
                                    while it handles a yield of the top */
  int64_t gas;
  uint64_t held;                 /* budget bytes of the invocation's memory */
  uint32_t memories;             /* Instances with an address space (root too) */
  nk_inst *free_insts;
  uint32_t free_count;
  nub_pvm_mem *pool[NK_MEM_POOL];
  uint32_t pool_count;
};

#define INST_POOL 256u

static const uint8_t zero_hash[CAP_HASH_SIZE];

void nk_frames_fini(nk_lane *lane) {
  struct nk_frames *F = lane->frames;
  if (!F) return;
  while (F->free_insts) {
    nk_inst *i = F->free_insts;
    F->free_insts = i->next;
    free(i);
  }
  for (uint32_t i = 0; i < F->pool_count; i++) nub_pvm_mem_free(F->pool[i]);
  free(F);
  lane->frames = NULL;
}

/* ---- Instances ---- */

static void set_slot_cap(nk_inst *i, uint32_t s, const uint8_t hash[CAP_HASH_SIZE]) {
  i->slots[s].kind = SLOT_CAP;
  memcpy(i->slots[s].bytes, hash, CAP_HASH_SIZE);
  if (s >= i->slots_hi) i->slots_hi = s + 1;
}

/* Slots with one-byte keys of a slot list (longer keys are not
** addressable by the one-byte ABI). */
static void fill_slots(nk_inst *i, const nub_cap_slots *list) {
  for (uint32_t j = 0; j < list->count; j++) {
    nub_cap_slot s;
    nub_cap_slots_get(list, j, &s);
    if (s.key_len == 1) set_slot_cap(i, s.key[0], s.hash);
  }
}

/* A new Instance of image with chain; slots from cnode (may be NULL),
** then the Image's own slots, which win.  0 or a kernel error. */
static uint32_t inst_new(struct nk_frames *F, const nub_cap_view *image, uint32_t ordinal,
                         const uint8_t image_hash[CAP_HASH_SIZE],
                         const uint8_t chain[CAP_HASH_SIZE], const nub_cap_view *published,
                         nk_inst **out) {
  nk_kernel *k = F->k;
  const nub_cap_view *cnode = NULL;
  nk_inst *i;
  if (published && memcmp(published->instance.root_cnode, zero_hash, CAP_HASH_SIZE)) {
    cnode = nk_caps_find(k, published->instance.root_cnode, NULL);
    if (!cnode) return NUB_KERR_SLOT_EMPTY;
    if (cnode->kind != CAP_CNODE) return NUB_KERR_SLOT_KIND;
  }
  if (F->held + sizeof *i > k->budget) return NUB_KERR_OUT_OF_MEMORY;
  if ((i = F->free_insts)) {
    F->free_insts = i->next;
    F->free_count--;
  } else if (!(i = malloc(sizeof *i))) {
    return NUB_KERR_OUT_OF_MEMORY;
  } else {
    memset(i->slots, 0, sizeof i->slots);
  }
  i->image = image;
  i->image_ordinal = ordinal;
  i->published = published;
  memcpy(i->image_hash, image_hash, CAP_HASH_SIZE);
  memcpy(i->chain, chain, CAP_HASH_SIZE);
  i->mem = NULL;
  i->borrowed_mem = false;
  i->held = sizeof *i;
  i->slots_hi = 0;
  i->next = NULL;
  F->held += i->held;
  if (cnode) fill_slots(i, &cnode->cnode.slots);
  fill_slots(i, &image->image.slots);
  *out = i;
  return 0;
}

/* Give back i and every Instance its slots own: memories to the pool
** (reset), structs to the free list.  A work list, not recursion: a chain
** of Instances in slots can be as long as the budget allows. */
static void inst_release(struct nk_frames *F, nk_inst *i) {
  i->next = NULL;
  while (i) {
    nk_inst *x = i;
    i = i->next;
    for (uint32_t s = 0; s < x->slots_hi; s++)
      if (x->slots[s].kind == SLOT_INST) {     /* PENDING ones are frames' */
        x->slots[s].inst->next = i;
        i = x->slots[s].inst;
      }
    if (x->slots_hi) memset(x->slots, 0, x->slots_hi * sizeof x->slots[0]);
    if (x->mem) {
      F->memories--;
      if (!x->borrowed_mem) {
        if (F->pool_count < NK_MEM_POOL && !nub_pvm_mem_reset(x->mem, NULL))
          F->pool[F->pool_count++] = x->mem;
        else
          nub_pvm_mem_free(x->mem);
      }
    }
    F->held -= x->held;
    if (F->free_count < INST_POOL) {
      x->next = F->free_insts;
      F->free_insts = x;
      F->free_count++;
    } else {
      free(x);
    }
  }
}

/* Empty slot s of i, releasing what it owned. */
static void slot_clear(struct nk_frames *F, nk_inst *i, uint32_t s) {
  if (i->slots[s].kind == SLOT_INST) inst_release(F, i->slots[s].inst);
  i->slots[s].kind = SLOT_EMPTY;
  i->slots[s].inst = NULL;
}

static void slot_move(struct nk_frames *F, nk_inst *from, nk_inst *to, uint32_t s) {
  slot_clear(F, to, s);
  to->slots[s] = from->slots[s];
  if (s >= to->slots_hi && to->slots[s].kind != SLOT_EMPTY) to->slots_hi = s + 1;
  from->slots[s].kind = SLOT_EMPTY;
  from->slots[s].inst = NULL;
}

/* ---- gas and memory of a CALL ---- */

static uint64_t units(uint64_t bytes, uint64_t unit) { return (bytes + unit - 1) / unit; }

/* What every CALL into image pays besides the floor. */
static uint64_t frame_cost(const nub_cap_image_view *im) {
  uint64_t ro = units(im->code_len, 2u << 20);
  for (uint32_t j = 0; j < im->mapping_count; j++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, j, &m);
    if (m.access == CAP_ACCESS_RO) ro += units(m.size, 2u << 20);
  }
  return NK_GAS_CALL_FRAME + units(im->code_len, CAP_PAGE_SIZE) * NK_GAS_CODE_PAGE +
         ro * NK_GAS_RO_UNIT;
}

/* Pages of Data the memory of i places where the frame may write them. */
static uint64_t cow_pages(nk_kernel *k, const nk_inst *i) {
  const nub_cap_image_view *im = &i->image->image;
  uint64_t n = 0;
  for (uint32_t j = 0; j < im->mapping_count; j++) {
    nub_cap_mapping m;
    nub_cap_image_mapping(im, j, &m);
    const nub_cap_view *d = m.access == CAP_ACCESS_RW ? nk_caps_find(k, m.source, NULL) : NULL;
    if (d && d->kind == CAP_DATA) n += d->data.page_count;
  }
  for (uint32_t j = 0; i->published && j < i->published->instance.overlay_count; j++) {
    nub_cap_overlay o;
    nub_cap_instance_overlay(&i->published->instance, j, &o);
    const nub_cap_view *d = nk_caps_find(k, o.data, NULL);
    if (d && d->kind == CAP_DATA) n += d->data.page_count;
  }
  return n;
}

static uint32_t memory_cost(nk_kernel *k, const nk_inst *i, uint64_t *gas, uint64_t *cow) {
  uint64_t runs;
  if (nub_cap_memory_runs(i->image, i->published, nk_lookup, k, &runs, NULL))
    return NUB_KERR_MEMORY;
  *cow = cow_pages(k, i);
  *gas = runs * NUB_GAS_PER_DATA_RUN + *cow * NK_GAS_COW_PAGE;
  return 0;
}

/* Build i's address space: its mappings and sbrk range are held against
** the budget (the sbrk range cut to what is left). */
static uint32_t memory_build(struct nk_frames *F, nk_inst *i) {
  nk_kernel *k = F->k;
  const nub_cap_image_view *im = &i->image->image;
  uint64_t need = nk_mapping_bytes(im);
  nub_pvm_mem *m = NULL;
  if (F->memories >= NK_MAX_MEMORIES || F->held + need > k->budget)
    return NUB_KERR_OUT_OF_MEMORY;
  if (F->pool_count) {
    m = F->pool[--F->pool_count];
  } else if (nub_pvm_mem_new(&m, NULL) ||
             (k->heap_fd >= 0 && nub_pvm_mem_set_backing(m, k->heap_fd, k->heap_fd_offset,
                                                     k->cfg.heap_base, k->cfg.heap_size, NULL))) {
    nub_pvm_mem_free(m);
    return NUB_KERR_OUT_OF_MEMORY;
  }
  if (nub_cap_memory_build(m, i->image, i->published, nk_lookup, k, NULL)) {
    nub_pvm_mem_reset(m, NULL);
    F->pool[F->pool_count++] = m;     /* it came from the pool or is new: room */
    return NUB_KERR_MEMORY;
  }
  uint64_t room = k->budget - F->held - need;
  uint64_t heap = im->heap_limit > im->heap_top ? im->heap_limit - im->heap_top : 0;
  if (heap > room) {
    heap = room;
    nub_pvm_mem_set_heap(m, im->heap_top, im->heap_top + (uint32_t)room);
  }
  i->mem = m;
  i->held += need + heap;
  F->held += need + heap;
  F->memories++;
  return 0;
}

/* ---- the loop ---- */

typedef struct loop {
  nk_kernel *k;
  nk_lane *lane;
  struct nk_frames *F;
  nub_invocation_result *r;
  bool done;
  /* the root Instance, made by root_made */
  const nub_cap_view *root_image, *root_published;
  uint32_t root_ordinal;
  uint64_t root_held;          /* budget bytes of the root's memory */
} loop;

/* The root frame's Instance, made now if it is not yet: first, as if
** nothing else held any of the budget (its struct always fits), its
** memory's bytes then counted in it. */
static uint32_t root_made(loop *L) {
  struct nk_frames *F = L->F;
  const nub_cap_view *inst = L->root_published;
  nk_inst *root;
  uint32_t e;
  if (F->stack[0].inst) return 0;
  F->held -= L->root_held;
  e = inst_new(F, L->root_image, L->root_ordinal, inst->instance.image_hash,
               inst->instance.image_hash_chain, inst, &root);
  F->held += L->root_held;
  if (e) return e;
  root->mem = L->lane->mem;
  root->borrowed_mem = true;
  root->held += L->root_held;
  F->stack[0].inst = root;
  return 0;
}

/* End the invocation with the active frame's exit. */
static uint32_t finish(loop *L, uint32_t reason, uint32_t arg) {
  nk_frame *f = &L->F->stack[L->F->active];
  L->r->exit_reason = reason;
  L->r->exit_arg = arg;
  L->r->return_value = f->vm.regs[7];
  L->r->gas_remaining = L->F->gas > 0 ? (uint64_t)L->F->gas : 0;
  L->done = true;
  return 0;
}

static uint32_t slot_arg(uint64_t v, uint32_t *s) {
  if (v >= NK_SLOTS) return NUB_KERR_SLOT_RANGE;
  *s = (uint32_t)v;
  return 0;
}

/* An Image for DERIVE_SPAWN: the running one or one named by a slot. */
static uint32_t spawn_image(loop *L, nk_frame *f, uint64_t operand, const nub_cap_view **image,
                            uint32_t *ordinal, const uint8_t **hash) {
  uint32_t s, e;
  if (operand == NK_SELF_IMAGE) {
    *image = f->inst->image;
    *ordinal = f->inst->image_ordinal;
    *hash = f->inst->image_hash;
    return 0;
  }
  if ((e = slot_arg(operand, &s))) return e;
  nk_slot *sl = &f->inst->slots[s];
  if (sl->kind == SLOT_EMPTY) return NUB_KERR_SLOT_EMPTY;
  if (sl->kind == SLOT_PENDING) return NUB_KERR_PENDING;
  if (sl->kind != SLOT_CAP) return NUB_KERR_SLOT_KIND;
  *image = nk_caps_find(L->k, sl->bytes, ordinal);
  if (!*image) return NUB_KERR_IMAGE_NOT_FOUND;
  if ((*image)->kind != CAP_IMAGE) return NUB_KERR_SLOT_KIND;
  *hash = sl->bytes;
  return 0;
}

static uint32_t op_derive_spawn(loop *L, nk_frame *f) {
  const nub_cap_view *image;
  const uint8_t *image_hash;
  uint8_t chain[CAP_HASH_SIZE];
  uint32_t ordinal, dst, e;
  nk_inst *child;
  if ((e = spawn_image(L, f, f->vm.regs[7], &image, &ordinal, &image_hash)) ||
      (e = slot_arg(f->vm.regs[9], &dst)))
    return e;
  if (f->inst->slots[dst].kind == SLOT_PENDING) return NUB_KERR_PENDING;
  nub_cap_hash_chain(f->inst->chain, image_hash, chain);
  if ((e = inst_new(L->F, image, ordinal, image_hash, chain, NULL, &child))) return e;
  slot_clear(L->F, f->inst, dst);
  f->inst->slots[dst].kind = SLOT_INST;
  f->inst->slots[dst].inst = child;
  if (dst >= f->inst->slots_hi) f->inst->slots_hi = dst + 1;
  f->vm.regs[7] = 0;
  return 0;
}

static uint32_t op_image_hash_chain(loop *L, nk_frame *f) {
  uint64_t *regs = f->vm.regs;
  uint8_t id[CAP_HASH_SIZE];
  uint32_t src, dst = 0, e;
  if ((e = slot_arg(regs[7], &src))) return e;
  if (regs[8] != NK_NO_SLOT && (e = slot_arg(regs[8], &dst))) return e;
  nk_slot *sl = &f->inst->slots[src];
  if (sl->kind == SLOT_EMPTY) return NUB_KERR_SLOT_EMPTY;
  if (sl->kind == SLOT_PENDING) return NUB_KERR_PENDING;
  if (sl->kind == SLOT_INST) {
    memcpy(id, sl->inst->chain, sizeof id);
  } else if (sl->kind == SLOT_CAP) {
    const nub_cap_view *v = nk_caps_find(L->k, sl->bytes, NULL);
    if (!v) return NUB_KERR_SLOT_EMPTY;
    if (v->kind == CAP_INSTANCE) memcpy(id, v->instance.image_hash_chain, sizeof id);
    else if (v->kind == CAP_IMAGE) memcpy(id, sl->bytes, sizeof id);
    else return NUB_KERR_SLOT_KIND;
  } else {
    return NUB_KERR_SLOT_KIND;
  }
  if (regs[9]) {                      /* and into the frame's memory */
    uint64_t a = regs[9];
    nub_pvm_mem *m = f->inst->mem;
    if (a + CAP_HASH_SIZE > (uint64_t)PVM_PAGE_COUNT * CAP_PAGE_SIZE || nub_pvm_mem_access(m, (uint32_t)a) != PVM_ACCESS_RW)
      return finish(L, PVM_FAULT, (uint32_t)(a & ~(uint64_t)(CAP_PAGE_SIZE - 1)));
    uint32_t last = (uint32_t)(a + CAP_HASH_SIZE - 1);
    if (nub_pvm_mem_access(m, last) != PVM_ACCESS_RW)
      return finish(L, PVM_FAULT, last & ~(CAP_PAGE_SIZE - 1));
    if (nub_pvm_mem_write(m, (uint32_t)a, id, sizeof id, NULL)) return NUB_KERR_MEMORY;
  }
  if (regs[8] != NK_NO_SLOT) {
    if (f->inst->slots[dst].kind == SLOT_PENDING) return NUB_KERR_PENDING;
    slot_clear(L->F, f->inst, dst);
    f->inst->slots[dst].kind = SLOT_DATA;
    memcpy(f->inst->slots[dst].bytes, id, sizeof id);
    if (dst >= f->inst->slots_hi) f->inst->slots_hi = dst + 1;
  }
  memcpy(&regs[7], id, sizeof regs[7]);
  return 0;
}

/* The Instance in slot s for HOST_CALL: owned, or made from a published
** Instance cap (it stays owned by the slot afterwards). */
static uint32_t callee(loop *L, nk_inst *parent, uint32_t s, nk_inst **out) {
  nk_slot *sl = &parent->slots[s];
  if (sl->kind == SLOT_EMPTY) return NUB_KERR_CALL_SLOT_EMPTY;
  if (sl->kind == SLOT_PENDING) return NUB_KERR_PENDING;
  if (sl->kind == SLOT_INST) {
    *out = sl->inst;
    return 0;
  }
  if (sl->kind != SLOT_CAP) return NUB_KERR_SLOT_KIND;
  const nub_cap_view *v = nk_caps_find(L->k, sl->bytes, NULL), *image;
  uint32_t ordinal, e;
  if (!v) return NUB_KERR_INSTANCE_NOT_FOUND;
  if (v->kind != CAP_INSTANCE) return NUB_KERR_SLOT_KIND;
  if (!(image = nk_caps_find(L->k, v->instance.image_hash, &ordinal)))
    return NUB_KERR_IMAGE_NOT_FOUND;
  if (image->kind != CAP_IMAGE) return NUB_KERR_NOT_AN_IMAGE;
  if ((e = inst_new(L->F, image, ordinal, v->instance.image_hash,
                    v->instance.image_hash_chain, v, out)))
    return e;
  sl->kind = SLOT_INST;
  sl->inst = *out;
  return 0;
}

/* Check before charge: the gas for cost, or the invocation ends
** out-of-gas in the active frame. */
static bool pay(loop *L, uint64_t cost) {
  if (L->F->gas < 0 || (uint64_t)L->F->gas < cost) {
    finish(L, PVM_OOG, 0);
    return false;
  }
  L->F->gas -= (int64_t)cost;
  return true;
}

static uint32_t op_host_call(loop *L, nk_frame *f) {
  struct nk_frames *F = L->F;
  uint64_t *regs = f->vm.regs;
  uint64_t mem_gas = 0, cow = 0;
  uint32_t s, e;
  nub_cap_endpoint ep;
  nk_inst *child;
  nk_compiled *c;
  if ((e = slot_arg(regs[7], &s))) return e;
  if (s == NK_SCRATCHPAD) return NUB_KERR_SLOT_RANGE;
  if (F->active != F->depth - 1) return NUB_KERR_PENDING;
  if (F->depth >= NK_MAX_DEPTH) return NUB_KERR_DEPTH_LIMIT;
  if ((e = callee(L, f->inst, s, &child))) return e;
  const nub_cap_image_view *im = &child->image->image;
  if (!nub_cap_image_find_endpoint(im, (uint8_t)(regs[8] & 0xFF), &ep))
    return NUB_KERR_ENDPOINT_NOT_FOUND;
  if (!child->mem && (e = memory_cost(L->k, child, &mem_gas, &cow))) return e;
  if (!pay(L, NK_GAS_KERNEL_CALL + frame_cost(im) + mem_gas)) return 0;
  if ((e = nk_compiled_image(L->k, L->lane, im, child->image_ordinal, &c))) return e;
  if (!child->mem) {
    if ((e = memory_build(L->F, child))) {
      nk_compiled_unpin(L->k, c);
      return e;
    }
    NK_STAT_ADD(L->k, pages_copied, cow);
  }
  nk_frame *n = &F->stack[F->depth];
  if (nub_pvm_vm_init(&n->vm, c->prog, child->mem, L->k->cfg.engine, c->code, NULL)) {
    nk_compiled_unpin(L->k, c);
    return NUB_KERR_COMPILE_FAILED;
  }
  memcpy(n->vm.regs, ep.regs, sizeof n->vm.regs);
  n->vm.regs[7] = regs[9];
  n->vm.regs[8] = regs[10];
  nub_pvm_vm_set_pc(&n->vm, ep.entry_pc);
  n->inst = child;
  n->c = c;
  n->origin = (uint8_t)s;
  n->yielded = false;                /* the frame keeps c's pin until it is popped */
  f->inst->slots[s].kind = SLOT_PENDING;
  slot_move(L->F, f->inst, child, NK_SCRATCHPAD);
  F->active = F->depth++;
  NK_STAT_ADD(L->k, frames_created, 1);
  return 0;
}

/* Take frame top off the stack; its Instance goes back to its slot. */
static void pop(loop *L) {
  struct nk_frames *F = L->F;
  nk_frame *f = &F->stack[F->depth - 1], *p = f - 1;
  nk_slot *origin = &p->inst->slots[f->origin];
  nub_pvm_vm_fini(&f->vm);
  nk_compiled_unpin(L->k, f->c);
  origin->kind = SLOT_INST;
  origin->inst = f->inst;
  F->depth--;
  F->active = F->depth - 1;
}

/* HALT or REPLY of the active frame. */
static uint32_t frame_return(loop *L, nk_frame *f, uint32_t reason, uint32_t arg) {
  struct nk_frames *F = L->F;
  if (F->active != F->depth - 1) return NUB_KERR_PENDING;
  if (F->active == 0) return finish(L, reason, arg);
  nk_frame *p = f - 1;
  slot_move(L->F, f->inst, p->inst, NK_SCRATCHPAD);
  p->vm.regs[7] = f->vm.regs[7];
  p->vm.regs[8] = NK_STATUS_OK;
  pop(L);
  return 0;
}

static uint32_t op_host_yield(loop *L, nk_frame *f) {
  struct nk_frames *F = L->F;
  if (F->active != F->depth - 1) return NUB_KERR_PENDING;
  if (F->active == 0) return NUB_KERR_YIELD;
  nk_frame *p = f - 1;
  f->yielded = true;
  slot_move(L->F, f->inst, p->inst, NK_SCRATCHPAD);
  p->vm.regs[7] = f->vm.regs[7];
  p->vm.regs[8] = NK_STATUS_YIELDED;
  p->vm.regs[9] = f->vm.regs[8];
  F->active--;
  return 0;
}

/* CALL_RESUME (resume) or DROP_RESUME of the caught yield. */
static uint32_t op_resume(loop *L, nk_frame *f, bool resume) {
  struct nk_frames *F = L->F;
  if (F->active + 2 != F->depth || !F->stack[F->depth - 1].yielded) return NUB_KERR_YIELD;
  nk_frame *y = &F->stack[F->depth - 1];
  if (resume) {
    slot_move(L->F, f->inst, y->inst, NK_SCRATCHPAD);
    y->vm.regs[7] = f->vm.regs[7];
    y->vm.regs[8] = NK_STATUS_OK;
    y->yielded = false;
    F->active++;
  } else {
    pop(L);
    f->vm.regs[8] = NK_STATUS_OK;
  }
  return 0;
}

static bool kernel_op(uint64_t id) {
  return id == NK_OP_REPLY || id == NK_OP_HOST_YIELD || id == NK_OP_DERIVE_SPAWN ||
         id == NK_OP_IMAGE_HASH_CHAIN || id == NK_OP_HOST_CALL || id == NK_OP_CALL_RESUME ||
         id == NK_OP_DROP_RESUME;
}

static uint32_t serve(loop *L, nk_frame *f, uint32_t id) {
  /* HOST_CALL checks its whole charge itself, once it knows the callee */
  uint64_t cost = NK_GAS_KERNEL_CALL + (id == NK_OP_CALL_RESUME ? NK_GAS_CALL_FRAME : 0);
  uint32_t e;
  if ((e = root_made(L))) return e;
  if (id != NK_OP_HOST_CALL && !pay(L, cost)) return 0;
  switch (id) {
  case NK_OP_REPLY: return frame_return(L, f, PVM_HOST, NK_OP_REPLY);
  case NK_OP_HOST_YIELD: return op_host_yield(L, f);
  case NK_OP_DERIVE_SPAWN: return op_derive_spawn(L, f);
  case NK_OP_IMAGE_HASH_CHAIN: return op_image_hash_chain(L, f);
  case NK_OP_HOST_CALL: return op_host_call(L, f);
  case NK_OP_CALL_RESUME: return op_resume(L, f, true);
  default: return op_resume(L, f, false);
  }
}

static uint32_t frames_get(nk_kernel *k, nk_lane *lane) {
  if (!lane->frames && !(lane->frames = calloc(1, sizeof *lane->frames)))
    return NUB_KERR_OUT_OF_MEMORY;
  lane->frames->k = k;
  return 0;
}

nub_pvm_vm *nk_frames_root_vm(nk_kernel *k, nk_lane *lane) {
  return frames_get(k, lane) ? NULL : &lane->frames->stack[0].vm;
}

/* The root frame runs c under its caller's pin; every frame above holds
** one of its own.  Its Instance is made when it first asks the kernel
** for something: a program that runs and halts (or only makes host
** calls) never needs one, and making and releasing it was ~115 of a warm
** invoke's ~1 100 instructions (callgrind).  Only one with a root CNode
** gets it at once: the CNode must be found before the program runs. */
uint32_t nk_frames_run(nk_kernel *k, nk_lane *lane, nk_compiled *c, const nk_warm *w,
                       uint64_t held, nk_host_fn host, void *host_ud, nub_invocation_result *r) {
  uint32_t e = 0;
  loop L = {k, lane, lane->frames, r, false, w->image, w->inst, w->image_ordinal, held};
  struct nk_frames *F = L.F;
  nk_frame *f0 = &F->stack[0];   /* its vm set up by the caller (nk_frames_root_vm) */
  NUB_ASSERT(!f0->inst);         /* nk_frames_settle gave the last one back */
  F->held = held;
  F->memories = 1;
  F->depth = F->active = 0;
  F->gas = f0->vm.gas;
  if (w->root_cnode && (e = root_made(&L))) return e;
  f0->c = c;
  f0->origin = 0;
  f0->yielded = false;
  F->depth = 1;
  while (!L.done && !e) {
    nk_frame *f = &F->stack[F->active];
    f->vm.gas = F->gas;
    nub_pvm_status st = nub_pvm_vm_run(&f->vm);
    F->gas = f->vm.gas;
    if (st == PVM_HOST && kernel_op(f->vm.exit_arg) &&
        !(f->vm.exit_arg == NK_OP_REPLY && F->active == 0))
      e = serve(&L, f, (uint32_t)f->vm.exit_arg);
    else if (st == PVM_HOST && host && host(host_ud, &f->vm, f->inst ? f->inst->mem : lane->mem))
      continue;                  /* answered in the kernel: the frame resumes */
    else if (st == PVM_HALT)         /* the root alone: the end (frame_return's first case) */
      e = F->depth == 1 ? finish(&L, PVM_HALT, 0) : frame_return(&L, f, PVM_HALT, 0);
    else
      e = finish(&L, st, st == PVM_FAULT || st == PVM_HOST ? (uint32_t)f->vm.exit_arg : 0);
  }
  /* frames above the root now (their pins: another lane may need the
  ** room); the root's Instance tree in nk_frames_settle */
  while (F->depth > 1) {
    nk_frame *f = &F->stack[--F->depth];
    nub_pvm_vm_fini(&f->vm);
    nk_compiled_unpin(k, f->c);
    inst_release(F, f->inst);
  }
  return e;
}

/* The root's Instance and every one in its slots, with their memories
** (reset into the pool): only this lane's next invocation needs them
** back, so a lane does it after its DONE store. */
void nk_frames_settle(nk_lane *lane) {
  struct nk_frames *F = lane->frames;
  if (!F || !F->stack[0].inst) return;
  inst_release(F, F->stack[0].inst);
  F->stack[0].inst = NULL;
}
