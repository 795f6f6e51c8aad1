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

int vector_parse(const char *text, size_t len, pvm_vector *v, char *why, size_t whylen) {
  json_doc *doc;
  json_error jerr;
  int rc = -1;
  uint64_t pc, exp_pc, u;
  const json_value *root, *s;
  memset(v, 0, sizeof *v);
  if (json_parse(text, text + len, &doc, &jerr))
    return bad(why, whylen, "JSON error at line %zu column %zu (offset %zu): %s", jerr.line,
               jerr.column, jerr.offset, jerr.msg);
  root = json_root(doc);
  if (root->type != JSON_OBJECT) { bad(why, whylen, "top level is not an object"); goto out; }
  s = json_get(root, "name");
  if (s && s->type == JSON_STRING) snprintf(v->name, sizeof v->name, "%s", s->str);
  if (get_regs(root, "initial-regs", v->regs, why, whylen) ||
      get_u64(root, "initial-pc", UINT32_MAX, &pc, why, whylen) ||
      get_i64(root, "initial-gas", &v->gas, why, whylen) ||
      get_regions(root, "initial-page-map", true, &v->pages, &v->npages, why, whylen) ||
      get_regions(root, "initial-memory", false, &v->memory, &v->nmemory, why, whylen) ||
      get_bytes(json_get(root, "program"), "program", &v->program, &v->program_len, why, whylen) ||
      get_regs(root, "expected-regs", v->exp_regs, why, whylen) ||
      get_u64(root, "expected-pc", UINT32_MAX, &exp_pc, why, whylen) ||
      get_i64(root, "expected-gas", &v->exp_gas, why, whylen) ||
      get_regions(root, "expected-memory", false, &v->exp_memory, &v->nexp_memory, why, whylen))
    goto out;
  v->pc = (uint32_t)pc;
  v->exp_pc = (uint32_t)exp_pc;
  s = json_get(root, "expected-status");
  if (!s || s->type != JSON_STRING || (v->status = vector_status_by_name(s->str)) < 0) {
    bad(why, whylen, "\"expected-status\" must be one of halt, panic, page-fault, out-of-gas, host");
    goto out;
  }
  if (json_get(root, "expected-page-fault-address")) {
    if (get_u64(root, "expected-page-fault-address", UINT32_MAX, &u, why, whylen)) goto out;
    v->has_fault_address = 1;
    v->exp_fault_address = (uint32_t)u;
  }
  if (json_get(root, "expected-host-call")) {
    if (get_u64(root, "expected-host-call", UINT32_MAX, &u, why, whylen)) goto out;
    v->has_host_call = 1;
    v->exp_host_call = (uint32_t)u;
  }
  rc = 0;
out:
  json_free(doc);
  if (rc) vector_free(v);
  return rc;
}

static void free_regions(vec_region *r, size_t n) {
  for (size_t i = 0; r && i < n; i++) free(r[i].contents);
  free(r);
}

void vector_free(pvm_vector *v) {
  free(v->program);
  free_regions(v->pages, v->npages);
  free_regions(v->memory, v->nmemory);
  free_regions(v->exp_memory, v->nexp_memory);
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

static int build_memory(const pvm_vector *v, pvm_mem *mem, report *rep) {
  pvm_error err;
  for (size_t i = 0; i < v->npages; i++)
    if (pvm_mem_map(mem, v->pages[i].address, v->pages[i].length,
                    v->pages[i].writable ? PVM_ACCESS_RW : PVM_ACCESS_RO, &err)) {
      mismatch(rep, "setup: page map %zu: %s", i, err.msg);
      return -1;
    }
  for (size_t i = 0; i < v->nmemory; i++)
    if (pvm_mem_write(mem, v->memory[i].address, v->memory[i].contents, v->memory[i].length, &err)) {
      mismatch(rep, "setup: initial memory %zu: %s", i, err.msg);
      return -1;
    }
  return 0;
}

/* Every byte of every page in the page map must equal the expected image:
** the listed bytes, zero elsewhere. */
static void compare_memory(const pvm_vector *v, const pvm_mem *mem, report *rep) {
  uint8_t page[PVM_PAGE_SIZE], want[PVM_PAGE_SIZE];
  for (size_t i = 0; i < v->npages; i++) {
    for (uint64_t a = v->pages[i].address; a < (uint64_t)v->pages[i].address + v->pages[i].length;
         a += PVM_PAGE_SIZE) {
      memset(want, 0, sizeof want);
      for (size_t k = 0; k < v->nexp_memory; k++) {
        const vec_region *e = &v->exp_memory[k];
        for (uint32_t j = 0; j < e->length; j++) {
          uint64_t x = (uint64_t)e->address + j;
          if (x >= a && x < a + PVM_PAGE_SIZE) want[x - a] = e->contents[j];
        }
      }
      if (pvm_mem_read(mem, (uint32_t)a, page, PVM_PAGE_SIZE, NULL)) {
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

int vector_check(const pvm_vector *v, const pvm_engine *engine, char *why, size_t whylen) {
  report rep = {why, 0, whylen, 0};
  pvm_program *prog = NULL;
  pvm_mem *mem = NULL;
  pvm_vm vm;
  pvm_error err;
  void *code = NULL;
  int vm_ok = 0;
  why[0] = 0;
  if (pvm_mem_new(&mem, &err)) { mismatch(&rep, "setup: %s", err.msg); goto out; }
  if (build_memory(v, mem, &rep)) goto out;
  if (pvm_program_load(PVM_PROFILE_GP07, v->program, v->program_len, &prog, &err)) {
    /* GP A.1: a blob that does not decode panics without running */
    if (v->status != PVM_PANIC || v->exp_gas != v->gas)
      mismatch(&rep, "program: rejected (%s) but the vector expects %s", err.msg,
               vector_status_name(v->status));
    goto out;
  }
  if (engine->compile(prog, &code, &err)) { mismatch(&rep, "compile: %s", err.msg); goto out; }
  if (pvm_vm_init(&vm, prog, mem, engine, code, &err)) { mismatch(&rep, "vm: %s", err.msg); goto out; }
  vm_ok = 1;
  memcpy(vm.regs, v->regs, sizeof vm.regs);
  vm.gas = v->gas;
  pvm_vm_set_pc(&vm, v->pc);
  pvm_status st = pvm_vm_run(&vm);

  if ((int)st != v->status)
    mismatch(&rep, "status: expected %s, got %s", vector_status_name(v->status),
             vector_status_name(st));
  if (vm.pc != v->exp_pc) mismatch(&rep, "pc: expected %u, got %u", v->exp_pc, vm.pc);
  if (vm.gas != v->exp_gas)
    mismatch(&rep, "gas: expected %lld, got %lld", (long long)v->exp_gas, (long long)vm.gas);
  for (int i = 0; i < PVM_REGS; i++)
    if (vm.regs[i] != v->exp_regs[i])
      mismatch(&rep, "r%d: expected %llu (0x%llx), got %llu (0x%llx)", i,
               (unsigned long long)v->exp_regs[i], (unsigned long long)v->exp_regs[i],
               (unsigned long long)vm.regs[i], (unsigned long long)vm.regs[i]);
  if (v->has_fault_address && (st != PVM_FAULT || vm.exit_arg != v->exp_fault_address))
    mismatch(&rep, "page fault address: expected 0x%x, got 0x%llx", v->exp_fault_address,
             (unsigned long long)vm.exit_arg);
  if (v->has_host_call && (st != PVM_HOST || vm.exit_arg != v->exp_host_call))
    mismatch(&rep, "host call: expected %u, got %llu", v->exp_host_call,
             (unsigned long long)vm.exit_arg);
  compare_memory(v, mem, &rep);
out:
  if (vm_ok) pvm_vm_fini(&vm);
  if (code) engine->release(code);
  pvm_program_free(prog);
  pvm_mem_free(mem);
  return rep.mismatches ? 1 : 0;
}
