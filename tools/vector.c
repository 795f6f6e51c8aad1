/*
** Loading and checking PVM JSON test vectors.
*/
#include "vector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/util/json.h"

static const char *const status_names[] = {"halt", "panic", "out-of-gas", "page-fault", "host"};

int vector_status_by_name(const char *s) {
  for (int i = 0; i < 5; i++)
    if (!strcmp(s, status_names[i])) return i;
  if (!strcmp(s, "ecalli")) return PVM_HOST;
  return -1;
}

const char *vector_status_name(int status) {
  return status >= 0 && status < 5 ? status_names[status] : "?";
}

static int bad(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return -1;
}

static int get_u64(const json_value *o, const char *key, uint64_t max, uint64_t *out,
                   char *why, size_t n) {
  const json_value *v = json_get(o, key);
  if (!v) return bad(why, n, "missing \"%s\"", key);
  if (!json_to_u64(v, out) || *out > max)
    return bad(why, n, "\"%s\" at offset %zu is not an integer in 0..%llu", key,
               v->offset, (unsigned long long)max);
  return 0;
}

static int get_i64(const json_value *o, const char *key, int64_t *out, char *why, size_t n) {
  const json_value *v = json_get(o, key);
  if (!v) return bad(why, n, "missing \"%s\"", key);
  if (!json_to_i64(v, out))
    return bad(why, n, "\"%s\" at offset %zu is not a 64-bit signed integer", key, v->offset);
  return 0;
}

static int get_bytes(const json_value *arr, const char *what, uint8_t **out, size_t *len,
                     char *why, size_t n) {
  if (!arr || arr->type != JSON_ARRAY) return bad(why, n, "\"%s\" is not an array", what);
  uint8_t *b = malloc(arr->count ? arr->count : 1);
  size_t i = 0;
  if (!b) return bad(why, n, "out of memory");
  for (const json_value *e = arr->child; e; e = e->next, i++) {
    uint64_t x;
    if (!json_to_u64(e, &x) || x > 255) {
      free(b);
      return bad(why, n, "\"%s\"[%zu] at offset %zu is not a byte", what, i, e->offset);
    }
    b[i] = (uint8_t)x;
  }
  *out = b;
  *len = arr->count;
  return 0;
}

static int get_regs(const json_value *o, const char *key, uint64_t regs[PVM_REGS],
                    char *why, size_t n) {
  const json_value *a = json_get(o, key);
  if (!a || a->type != JSON_ARRAY || a->count != PVM_REGS)
    return bad(why, n, "\"%s\" must be an array of %d integers", key, PVM_REGS);
  int i = 0;
  for (const json_value *e = a->child; e; e = e->next, i++)
    if (!json_to_u64(e, &regs[i]))
      return bad(why, n, "\"%s\"[%d] at offset %zu is not a u64", key, i, e->offset);
  return 0;
}

static int get_regions(const json_value *o, const char *key, bool page_map,
                       vec_region **out, size_t *count, char *why, size_t n) {
  const json_value *a = json_get(o, key);
  if (!a || a->type != JSON_ARRAY) return bad(why, n, "\"%s\" must be an array", key);
  vec_region *r = calloc(a->count ? a->count : 1, sizeof *r);
  if (!r) return bad(why, n, "out of memory");
  *out = r;
  *count = a->count;
  for (const json_value *e = a->child; e; e = e->next, r++) {
    uint64_t addr, length;
    if (get_u64(e, "address", UINT32_MAX, &addr, why, n)) return -1;
    r->address = (uint32_t)addr;
    if (page_map) {
      const json_value *w = json_get(e, "is-writable");
      if (get_u64(e, "length", UINT32_MAX, &length, why, n)) return -1;
      if (!w || w->type != JSON_BOOL) return bad(why, n, "\"%s\": missing \"is-writable\"", key);
      r->length = (uint32_t)length;
      r->writable = w->boolean;
    } else {
      size_t len;
      if (get_bytes(json_get(e, "contents"), "contents", &r->contents, &len, why, n)) return -1;
      r->length = (uint32_t)len;
    }
  }
  return 0;
}

static int get_status(const json_value *o, const char *key, int *out, char *why, size_t n) {
  const json_value *s = json_get(o, key);
  if (!s || s->type != JSON_STRING || (*out = vector_status_by_name(s->str)) < 0)
    return bad(why, n, "\"%s\" must be one of halt, panic, page-fault, out-of-gas, host, ecalli",
               key);
  return 0;
}

static int by_pc(const void *a, const void *b) {
  uint32_t x = ((const vec_block_cost *)a)->pc, y = ((const vec_block_cost *)b)->pc;
  return x < y ? -1 : x > y;
}

int vector_block_costs(const json_value *costs, vec_block_cost **out, size_t *n,
                       char *why, size_t whylen) {
  if (!costs || costs->type != JSON_OBJECT)
    return bad(why, whylen, "\"block-gas-costs\" must be an object");
  vec_block_cost *c = malloc((costs->count ? costs->count : 1) * sizeof *c);
  size_t i = 0;
  if (!c) return bad(why, whylen, "out of memory");
  for (const json_value *m = costs->child; m; m = m->next, i++) {
    char *end;
    uint64_t pc = strtoull(m->key, &end, 10), cost;
    if (*end || end == m->key || m->key[0] == '-' || pc > UINT32_MAX || !json_to_u64(m, &cost) ||
        cost > UINT32_MAX) {
      free(c);
      return bad(why, whylen, "\"block-gas-costs\" entry \"%s\" at offset %zu is not a pc and "
                 "a cost in 0..2^32-1", m->key, m->offset);
    }
    c[i] = (vec_block_cost){(uint32_t)pc, (uint32_t)cost};
  }
  qsort(c, costs->count, sizeof *c, by_pc);
  *out = c;
  *n = costs->count;
  return 0;
}

static vec_step *add_step(pvm_vector *v, size_t *cap, int kind) {
  if (v->nsteps == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    vec_step *ns = realloc(v->steps, ncap * sizeof *ns);
    if (!ns) return NULL;
    v->steps = ns;
    *cap = ncap;
  }
  vec_step *st = &v->steps[v->nsteps++];
  memset(st, 0, sizeof *st);
  st->kind = kind;
  return st;
}

/* The w3f schema as steps: map pages, write memory, set registers, run,
** assert the expected-* fields. */
static int parse_w3f(const json_value *root, pvm_vector *v, char *why, size_t n) {
  vec_region *pages = NULL, *memory = NULL;
  size_t npages = 0, nmemory = 0, cap = 0;
  uint64_t regs[PVM_REGS], pc;
  vec_assert e;
  int rc = -1;
  memset(&e, 0, sizeof e);
  if (get_regs(root, "initial-regs", regs, why, n) ||
      get_regions(root, "initial-page-map", true, &pages, &npages, why, n) ||
      get_regions(root, "initial-memory", false, &memory, &nmemory, why, n) ||
      get_regs(root, "expected-regs", e.regs, why, n) ||
      get_u64(root, "expected-pc", UINT32_MAX, &pc, why, n) ||
      get_i64(root, "expected-gas", &e.gas, why, n) ||
      get_regions(root, "expected-memory", false, &e.memory, &e.nmemory, why, n) ||
      get_status(root, "expected-status", &e.status, why, n))
    goto out;
  e.pc = (uint32_t)pc;
  if (json_get(root, "expected-page-fault-address")) {
    uint64_t u;
    if (get_u64(root, "expected-page-fault-address", UINT32_MAX, &u, why, n)) goto out;
    e.has_fault_address = 1;
    e.fault_address = (uint32_t)u;
  }
  if (json_get(root, "expected-host-call")) {
    uint64_t u;
    if (get_u64(root, "expected-host-call", UINT32_MAX, &u, why, n)) goto out;
    e.has_host_call = 1;
    e.host_call = (uint32_t)u;
  }
  for (size_t i = 0; i < npages; i++) {
    vec_step *st = add_step(v, &cap, VEC_MAP);
    if (!st) { bad(why, n, "out of memory"); goto out; }
    st->region = pages[i];
  }
  for (size_t i = 0; i < nmemory; i++) {
    vec_step *st = add_step(v, &cap, VEC_WRITE);
    if (!st) { bad(why, n, "out of memory"); goto out; }
    st->region = memory[i];
    memory[i].contents = NULL;
  }
  for (int r = 0; r < PVM_REGS; r++) {
    vec_step *st = add_step(v, &cap, VEC_SET_REG);
    if (!st) { bad(why, n, "out of memory"); goto out; }
    st->reg = (uint32_t)r;
    st->value = regs[r];
  }
  vec_step *run = add_step(v, &cap, VEC_RUN), *check = run ? add_step(v, &cap, VEC_ASSERT) : NULL;
  if (!check) { bad(why, n, "out of memory"); goto out; }
  check->expect = e;
  e.memory = NULL;
  rc = 0;
out:
  free(pages);
  for (size_t i = 0; memory && i < nmemory; i++) free(memory[i].contents);
  free(memory);
  for (size_t i = 0; e.memory && i < e.nmemory; i++) free(e.memory[i].contents);
  free(e.memory);
  return rc;
}

static int parse_step(const json_value *o, size_t i, pvm_vector *v, size_t *cap, char *why,
                      size_t n) {
  const json_value *k = json_get(o, "kind");
  uint64_t u;
  if (!k || k->type != JSON_STRING) return bad(why, n, "steps[%zu]: missing \"kind\"", i);
  char sub[160];
  int rc = -1;
  vec_step *st;
  if (!strcmp(k->str, "set-reg")) {
    if (!(st = add_step(v, cap, VEC_SET_REG))) return bad(why, n, "out of memory");
    if (get_u64(o, "reg", PVM_REGS - 1, &u, sub, sizeof sub) ||
        get_u64(o, "value", UINT64_MAX, &st->value, sub, sizeof sub)) goto fail;
    st->reg = (uint32_t)u;
  } else if (!strcmp(k->str, "map")) {
    const json_value *w = json_get(o, "is_writable");
    if (!(st = add_step(v, cap, VEC_MAP))) return bad(why, n, "out of memory");
    if (get_u64(o, "address", UINT32_MAX, &u, sub, sizeof sub)) goto fail;
    st->region.address = (uint32_t)u;
    if (get_u64(o, "length", UINT32_MAX, &u, sub, sizeof sub)) goto fail;
    st->region.length = (uint32_t)u;
    if (!w || w->type != JSON_BOOL) { bad(sub, sizeof sub, "missing \"is_writable\""); goto fail; }
    st->region.writable = w->boolean;
  } else if (!strcmp(k->str, "write")) {
    size_t len;
    if (!(st = add_step(v, cap, VEC_WRITE))) return bad(why, n, "out of memory");
    if (get_u64(o, "address", UINT32_MAX, &u, sub, sizeof sub)) goto fail;
    st->region.address = (uint32_t)u;
    if (get_bytes(json_get(o, "contents"), "contents", &st->region.contents, &len, sub, sizeof sub))
      goto fail;
    if (len > UINT32_MAX) { bad(sub, sizeof sub, "\"contents\" longer than 2^32"); goto fail; }
    st->region.length = (uint32_t)len;
  } else if (!strcmp(k->str, "run")) {
    if (!add_step(v, cap, VEC_RUN)) return bad(why, n, "out of memory");
  } else if (!strcmp(k->str, "assert")) {
    if (!(st = add_step(v, cap, VEC_ASSERT))) return bad(why, n, "out of memory");
    vec_assert *e = &st->expect;
    if (get_status(o, "status", &e->status, sub, sizeof sub) ||
        get_i64(o, "gas", &e->gas, sub, sizeof sub) ||
        get_u64(o, "pc", UINT32_MAX, &u, sub, sizeof sub) ||
        get_regs(o, "regs", e->regs, sub, sizeof sub) ||
        get_regions(o, "memory", false, &e->memory, &e->nmemory, sub, sizeof sub))
      goto fail;
    e->pc = (uint32_t)u;
    if (json_get(o, "page_fault_address")) {
      if (get_u64(o, "page_fault_address", UINT32_MAX, &u, sub, sizeof sub)) goto fail;
      e->has_fault_address = 1;
      e->fault_address = (uint32_t)u;
    }
  } else {
    return bad(why, n, "steps[%zu]: unknown kind \"%s\" (set-reg, map, write, run, assert)", i,
               k->str);
  }
  return 0;
fail:
  bad(why, n, "steps[%zu] (%s): %s", i, k->str, sub);
  return rc;
}

int vector_parse(const char *text, size_t len, pvm_vector *v, char *why, size_t whylen) {
  json_doc *doc;
  json_error jerr;
  int rc = -1;
  uint64_t pc;
  const json_value *root, *s, *steps;
  memset(v, 0, sizeof *v);
  v->profile = PVM_PROFILE_GP07;
  if (json_parse(text, text + len, &doc, &jerr))
    return bad(why, whylen, "JSON error at line %zu column %zu (offset %zu): %s", jerr.line,
               jerr.column, jerr.offset, jerr.msg);
  root = json_root(doc);
  if (root->type != JSON_OBJECT) { bad(why, whylen, "top level is not an object"); goto out; }
  s = json_get(root, "name");
  if (s && s->type == JSON_STRING) snprintf(v->name, sizeof v->name, "%s", s->str);
  if (get_u64(root, "initial-pc", UINT32_MAX, &pc, why, whylen) ||
      get_i64(root, "initial-gas", &v->gas, why, whylen) ||
      get_bytes(json_get(root, "program"), "program", &v->program, &v->program_len, why, whylen))
    goto out;
  v->pc = (uint32_t)pc;
  if (json_get(root, "block-gas-costs")) {
    if (vector_block_costs(json_get(root, "block-gas-costs"), &v->block_costs,
                           &v->nblock_costs, why, whylen))
      goto out;
    v->has_block_costs = 1;
  }
  steps = json_get(root, "steps");
  if (steps) {
    size_t cap = 0, i = 0;
    if (steps->type != JSON_ARRAY) { bad(why, whylen, "\"steps\" must be an array"); goto out; }
    for (const json_value *e = steps->child; e; e = e->next, i++)
      if (parse_step(e, i, v, &cap, why, whylen)) goto out;
  } else if (parse_w3f(root, v, why, whylen)) {
    goto out;
  }
  rc = 0;
out:
  json_free(doc);
  if (rc) vector_free(v);
  return rc;
}

void vector_free(pvm_vector *v) {
  free(v->program);
  for (size_t i = 0; i < v->nsteps; i++) {
    free(v->steps[i].region.contents);
    for (size_t k = 0; k < v->steps[i].expect.nmemory; k++)
      free(v->steps[i].expect.memory[k].contents);
    free(v->steps[i].expect.memory);
  }
  free(v->steps);
  free(v->block_costs);
  memset(v, 0, sizeof *v);
}

/* ---- checking ---- */

typedef struct report { char *buf; size_t len, cap; int mismatches; } report;

static void mismatch(report *r, const char *fmt, ...) {
  va_list ap;
  r->mismatches++;
  if (r->len + 2 >= r->cap) return;
  if (r->len) r->len += (size_t)snprintf(r->buf + r->len, r->cap - r->len, "; ");
  if (r->len >= r->cap) { r->len = r->cap - 1; return; }
  va_start(ap, fmt);
  int n = vsnprintf(r->buf + r->len, r->cap - r->len, fmt, ap);
  va_end(ap);
  r->len += n > 0 ? (size_t)n : 0;
  if (r->len >= r->cap) r->len = r->cap - 1;
}

/* Every byte of every page mapped by the steps so far must equal the
** expected image: the listed bytes, zero elsewhere. */
static void compare_memory(const pvm_vector *v, size_t upto, const vec_assert *e,
                           const nub_pvm_mem *mem, report *rep) {
  uint8_t page[PVM_PAGE_SIZE], want[PVM_PAGE_SIZE];
  for (size_t i = 0; i < upto; i++) {
    const vec_region *m = &v->steps[i].region;
    if (v->steps[i].kind != VEC_MAP) continue;
    for (uint64_t a = m->address; a < (uint64_t)m->address + m->length; a += PVM_PAGE_SIZE) {
      memset(want, 0, sizeof want);
      for (size_t k = 0; k < e->nmemory; k++) {
        const vec_region *x = &e->memory[k];
        for (uint32_t j = 0; j < x->length; j++) {
          uint64_t at = (uint64_t)x->address + j;
          if (at >= a && at < a + PVM_PAGE_SIZE) want[at - a] = x->contents[j];
        }
      }
      if (nub_pvm_mem_read(mem, (uint32_t)a, page, PVM_PAGE_SIZE, NULL)) {
        mismatch(rep, "memory: page 0x%llx unreadable", (unsigned long long)a);
        continue;
      }
      for (uint32_t j = 0; j < PVM_PAGE_SIZE; j++)
        if (page[j] != want[j]) {
          mismatch(rep, "memory[0x%llx]: expected 0x%02x, got 0x%02x",
                   (unsigned long long)(a + j), want[j], page[j]);
          break;
        }
    }
  }
}

static void compare_state(const pvm_vector *v, size_t step, const nub_pvm_vm *vm, const nub_pvm_mem *mem,
                          report *rep) {
  const vec_assert *e = &v->steps[step].expect;
  if ((int)vm->status != e->status)
    mismatch(rep, "status: expected %s, got %s", vector_status_name(e->status),
             vector_status_name(vm->status));
  if (vm->pc != e->pc) mismatch(rep, "pc: expected %u, got %u", e->pc, vm->pc);
  if (vm->gas != e->gas)
    mismatch(rep, "gas: expected %lld, got %lld", (long long)e->gas, (long long)vm->gas);
  for (int i = 0; i < PVM_REGS; i++)
    if (vm->regs[i] != e->regs[i])
      mismatch(rep, "r%d: expected %llu (0x%llx), got %llu (0x%llx)", i,
               (unsigned long long)e->regs[i], (unsigned long long)e->regs[i],
               (unsigned long long)vm->regs[i], (unsigned long long)vm->regs[i]);
  if (e->has_fault_address && (vm->status != PVM_FAULT || vm->exit_arg != e->fault_address))
    mismatch(rep, "page fault address: expected 0x%x, got 0x%llx", e->fault_address,
             (unsigned long long)vm->exit_arg);
  if (e->has_host_call && (vm->status != PVM_HOST || vm->exit_arg != e->host_call))
    mismatch(rep, "host call: expected %u, got %llu", e->host_call,
             (unsigned long long)vm->exit_arg);
  compare_memory(v, step, e, mem, rep);
}

typedef struct diff_sink { report *rep; } diff_sink;

static void block_diff(void *ud, const char *msg) { mismatch(((diff_sink *)ud)->rep, "%s", msg); }

unsigned vector_compare_block_costs(const nub_pvm_program *prog, const vec_block_cost *want,
                                    size_t nwant, void (*diff)(void *ud, const char *msg),
                                    void *ud, unsigned *ndiff) {
  char msg[160];
  unsigned equal = 0;
  uint32_t cur = 0, pc = 0, cost = 0;
  size_t k = 0;
  bool basic = false, more = nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic);
  *ndiff = 0;
  while (more || k < nwant) {
    if (more && !basic) {
      more = nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic);
      continue;
    }
    if (more && (k == nwant || pc < want[k].pc)) {
      snprintf(msg, sizeof msg, "block %u: not in the vector (cost %u here)", pc, cost);
      more = nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic);
    } else if (!more || want[k].pc < pc) {
      snprintf(msg, sizeof msg, "block %u: in the vector (cost %u) but not a basic block here",
               want[k].pc, want[k].cost);
      k++;
    } else {
      bool same = want[k].cost == cost;
      snprintf(msg, sizeof msg, "block %u: cost expected %u, got %u", pc, want[k].cost, cost);
      k++;
      more = nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic);
      if (same) { equal++; continue; }
    }
    (*ndiff)++;
    diff(ud, msg);
  }
  return equal;
}

int vector_check(const pvm_vector *v, const nub_pvm_engine *engine, char *why, size_t whylen) {
  report rep = {why, 0, whylen, 0};
  nub_pvm_program *prog = NULL;
  nub_pvm_mem *mem = NULL;
  nub_pvm_vm vm;
  nub_pvm_error err;
  void *code = NULL;
  int vm_ok = 0;
  bool ran = false;
  why[0] = 0;
  if (nub_pvm_mem_new(&mem, &err)) { mismatch(&rep, "setup: %s", err.msg); goto out; }
  if (nub_pvm_program_load(v->profile, v->program, v->program_len, &prog, &err)) {
    /* GP A.1: a blob that does not decode panics without running */
    for (size_t i = 0; i < v->nsteps; i++)
      if (v->steps[i].kind == VEC_ASSERT &&
          (v->steps[i].expect.status != PVM_PANIC || v->steps[i].expect.gas != v->gas))
        mismatch(&rep, "program: rejected (%s) but the vector expects %s", err.msg,
                 vector_status_name(v->steps[i].expect.status));
    goto out;
  }
  if (v->has_block_costs) {
    diff_sink sink = {&rep};
    unsigned ndiff;
    vector_compare_block_costs(prog, v->block_costs, v->nblock_costs, block_diff, &sink, &ndiff);
  }
  if (engine->compile(prog, &code, &err)) { mismatch(&rep, "compile: %s", err.msg); goto out; }
  if (nub_pvm_vm_init(&vm, prog, mem, engine, code, &err)) { mismatch(&rep, "vm: %s", err.msg); goto out; }
  vm_ok = 1;
  vm.gas = v->gas;
  nub_pvm_vm_set_pc(&vm, v->pc);
  for (size_t i = 0; i < v->nsteps; i++) {
    const vec_step *st = &v->steps[i];
    switch ((vec_step_kind)st->kind) {
    case VEC_SET_REG:
      vm.regs[st->reg] = st->value;
      break;
    case VEC_MAP:
      if (nub_pvm_mem_map(mem, st->region.address, st->region.length,
                      st->region.writable ? PVM_ACCESS_RW : PVM_ACCESS_RO, &err)) {
        mismatch(&rep, "step %zu: map: %s", i, err.msg);
        goto out;
      }
      break;
    case VEC_WRITE:
      if (nub_pvm_mem_write(mem, st->region.address, st->region.contents, st->region.length, &err)) {
        mismatch(&rep, "step %zu: write: %s", i, err.msg);
        goto out;
      }
      break;
    case VEC_RUN:
      nub_pvm_vm_run(&vm);
      ran = true;
      break;
    case VEC_ASSERT:
      if (!ran) { mismatch(&rep, "step %zu: assert before any run", i); goto out; }
      compare_state(v, i, &vm, mem, &rep);
      break;
    }
  }
out:
  if (vm_ok) nub_pvm_vm_fini(&vm);
  if (code) engine->release(code);
  nub_pvm_program_free(prog);
  nub_pvm_mem_free(mem);
  return rep.mismatches ? 1 : 0;
}
