/*
** The 356 draft programs (tests/vectors/pvm-newgas/programs, GP 0.8 draft
** numbering = gp08-draft) re-encoded with the final GP 0.8.0 numbering
** (jamv1) and run through their steps on the interpreter and the JIT:
** each must end every run in the status, pc, registers and memory the
** draft vector asserts.  Only opcode bytes differ between the two
** numberings, so re-encoding maps the opcode byte of every instruction
** start (decoded under gp08-draft) to the same op's byte under jamv1,
** and checks that both decodes agree on every operand.
**
** Counted separately, never skipped silently:
** - programs that use sbrk have no jamv1 form (sbrk became a host call);
** - where the draft asserts a panic for a store to a read-only page,
**   jamv1 must end in a page fault at the same pc on that page (GP 0.8.0
**   A.7) with the same registers and memory.
** Gas: the two engines must agree on it to the unit, and the re-encoded
** program must cost what the draft vector says, block by block
** ("block-gas-costs") and at every assert (docs/gas.md: re-encoding
** changes no block cost).  The same step runner also runs the unmodified
** programs under gp08-draft and checks them against the same assertions
** (minus gas; `nub vectors --profile gp08-draft` checks that).
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "nub/jit.h"
#include "util/json.h"

#define MAX_ASSERTS 8
#define MAX_MAPS    16

/* The state after one `run`, as the engines leave it. */
typedef struct exit_state {
  nub_pvm_status status;
  uint32_t pc;
  int64_t gas;
  uint64_t regs[PVM_REGS];
  uint64_t exit_arg;
} exit_state;

typedef struct outcome {
  exit_state at[MAX_ASSERTS];   /* at each assert step */
  unsigned nasserts;
  unsigned ro_rule;             /* asserts where a panic became a read-only page fault */
  char why[256];                /* first mismatch with the vector, "" if none */
} outcome;

static void note(outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(outcome *o, const char *fmt, ...) {
  if (o->why[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->why, sizeof o->why, fmt, ap);
  va_end(ap);
}

static uint64_t u64_field(const json_value *obj, const char *key) {
  uint64_t v;
  if (!json_to_u64(json_get(obj, key), &v)) fail_msg("field %s is missing or not a u64", key);
  return v;
}

static const char *status_word(nub_pvm_status st) {
  static const char *const words[] = {"halt", "panic", "out-of-gas", "page-fault", "ecalli"};
  return (unsigned)st < 5 ? words[st] : "?";
}

typedef struct region { uint32_t address, length; } region;

/* Every mapped page equals the asserted image: the listed bytes, zero
** elsewhere. */
static void compare_memory(const nub_pvm_mem *mem, const region *maps, unsigned nmaps,
                           const json_value *want, outcome *o) {
  static uint8_t page[PVM_PAGE_SIZE], image[PVM_PAGE_SIZE];
  for (unsigned m = 0; m < nmaps; m++)
    for (uint64_t a = maps[m].address; a < (uint64_t)maps[m].address + maps[m].length; a += PVM_PAGE_SIZE) {
      memset(image, 0, sizeof image);
      for (const json_value *c = want ? want->child : NULL; c; c = c->next) {
        uint64_t at = u64_field(c, "address");
        const json_value *bytes = json_get(c, "contents");
        size_t k = 0;
        for (const json_value *b = bytes ? bytes->child : NULL; b; b = b->next, k++)
          if (at + k >= a && at + k < a + PVM_PAGE_SIZE) image[at + k - a] = (uint8_t)b->u;
      }
      if (nub_pvm_mem_read(mem, (uint32_t)a, page, sizeof page, NULL)) {
        note(o, "page 0x%llx unreadable", (unsigned long long)a);
        return;
      }
      for (uint32_t j = 0; j < PVM_PAGE_SIZE; j++)
        if (page[j] != image[j]) {
          note(o, "memory[0x%llx] = 0x%02x, the vector says 0x%02x", (unsigned long long)(a + j),
               page[j], image[j]);
          return;
        }
    }
}

/* One assert step against the state after the last run. */
static void check_assert(const json_value *s, const nub_pvm_vm *vm, const nub_pvm_mem *mem,
                         const region *maps, unsigned nmaps, outcome *o) {
  const json_value *status = json_get(s, "status"), *regs = json_get(s, "regs");
  const char *want = status && status->type == JSON_STRING ? status->str : "?";
  const char *got = status_word(vm->status);
  uint64_t pc = u64_field(s, "pc");
  if (strcmp(want, got)) {
    /* GP 0.8.0: a store to a read-only page faults where the draft panics */
    bool ro_fault = !strcmp(want, "panic") && vm->status == PVM_FAULT &&
                    nub_pvm_profile_semantics(nub_pvm_program_profile(vm->prog))->ro_store_faults &&
                    nub_pvm_mem_access(mem, (uint32_t)vm->exit_arg) == PVM_ACCESS_RO;
    if (ro_fault) o->ro_rule++;
    else note(o, "status %s, the vector says %s", got, want);
  } else if (vm->status == PVM_FAULT && vm->exit_arg != u64_field(s, "page_fault_address")) {
    note(o, "page fault at 0x%llx, the vector says 0x%llx", (unsigned long long)vm->exit_arg,
         (unsigned long long)u64_field(s, "page_fault_address"));
  }
  if (vm->pc != pc) note(o, "pc %u, the vector says %llu", vm->pc, (unsigned long long)pc);
  for (int r = 0; r < PVM_REGS; r++) {
    uint64_t v;
    if (!json_to_u64(json_at(regs, (size_t)r), &v)) fail_msg("assert: regs[%d] missing", r);
    if (vm->regs[r] != v)
      note(o, "r%d = 0x%llx, the vector says 0x%llx", r, (unsigned long long)vm->regs[r],
           (unsigned long long)v);
  }
  compare_memory(mem, maps, nmaps, json_get(s, "memory"), o);
}

/* Run the vector's steps on blob under profile with engine. */
static void run_steps(nub_pvm_profile profile, const uint8_t *blob, size_t len, const nub_pvm_engine *engine,
                      const json_value *root, nub_pvm_mem *mem, outcome *o) {
  nub_pvm_program *prog;
  nub_pvm_error err;
  nub_pvm_vm vm;
  void *code = NULL;
  region maps[MAX_MAPS];
  unsigned nmaps = 0;
  int64_t gas;
  memset(o, 0, sizeof *o);
  if (nub_pvm_program_load(profile, blob, len, &prog, &err)) {
    note(o, "does not load: %s", err.msg);
    return;
  }
  assert_int_equal(nub_pvm_mem_reset(mem, &err), PVM_OK);
  assert_int_equal(engine->compile(prog, &code, &err), PVM_OK);
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, engine, code, &err), PVM_OK);
  if (!json_to_i64(json_get(root, "initial-gas"), &gas)) fail_msg("initial-gas missing");
  vm.gas = gas;
  nub_pvm_vm_set_pc(&vm, (uint32_t)u64_field(root, "initial-pc"));
  for (const json_value *s = json_get(root, "steps")->child; s; s = s->next) {
    const char *kind = json_get(s, "kind")->str;
    if (!strcmp(kind, "set-reg")) {
      uint64_t r = u64_field(s, "reg");
      assert_true(r < PVM_REGS);
      vm.regs[r] = u64_field(s, "value");
    } else if (!strcmp(kind, "map")) {
      const json_value *w = json_get(s, "is_writable");
      assert_true(nmaps < MAX_MAPS);
      maps[nmaps] = (region){(uint32_t)u64_field(s, "address"), (uint32_t)u64_field(s, "length")};
      assert_int_equal(nub_pvm_mem_map(mem, maps[nmaps].address, maps[nmaps].length,
                                   w && w->boolean ? PVM_ACCESS_RW : PVM_ACCESS_RO, &err), PVM_OK);
      nmaps++;
    } else if (!strcmp(kind, "write")) {
      const json_value *c = json_get(s, "contents");
      uint8_t *bytes = malloc(c->count + 1);
      size_t k = 0;
      for (const json_value *b = c->child; b; b = b->next) bytes[k++] = (uint8_t)b->u;
      assert_int_equal(nub_pvm_mem_write(mem, (uint32_t)u64_field(s, "address"), bytes, k, &err), PVM_OK);
      free(bytes);
    } else if (!strcmp(kind, "run")) {
      nub_pvm_vm_run(&vm);
    } else if (!strcmp(kind, "assert")) {
      assert_true(o->nasserts < MAX_ASSERTS);
      exit_state *x = &o->at[o->nasserts++];
      x->status = (nub_pvm_status)vm.status;
      x->pc = vm.pc;
      x->gas = vm.gas;
      memcpy(x->regs, vm.regs, sizeof x->regs);
      x->exit_arg = vm.status == PVM_FAULT || vm.status == PVM_HOST ? vm.exit_arg : 0;
      check_assert(s, &vm, mem, maps, nmaps, o);
    } else {
      fail_msg("unknown step kind %s", kind);
    }
  }
  nub_pvm_vm_fini(&vm);
  engine->release(code);
  nub_pvm_program_free(prog);
}

/* Re-encode a gp08-draft blob for jamv1.  Returns 0 (out: the jamv1
** bytes), or 1 when the program uses sbrk, which jamv1 lacks. */
static int reencode(const uint8_t *blob, size_t len, uint8_t **out) {
  const nub_pvm_opinfo *draft = nub_pvm_isa(PVM_PROFILE_GP08_DRAFT), *final = nub_pvm_isa(PVM_PROFILE_JAMV1);
  nub_pvm_blob b, nb;
  nub_pvm_error err;
  int invalid = -1;   /* a byte that is no opcode in jamv1 */
  for (int i = 255; i >= 0 && invalid < 0; i--)
    if (!final[i].name) invalid = i;
  assert_true(invalid >= 0);
  if (nub_pvm_blob_parse(blob, blob + len, &b, &err)) fail_msg("draft blob: %s", err.msg);
  uint8_t *copy = malloc(len);
  memcpy(copy, blob, len);
  size_t code_at = (size_t)(b.code - blob);
  for (uint32_t pc = 0; pc < b.code_len; pc++) {
    if (!nub_pvm_blob_is_start(&b, pc)) continue;
    const nub_pvm_opinfo *d = &draft[b.code[pc]];
    if (d->name && d->op == PVM_OP_SBRK) { free(copy); return 1; }
    if (d->name) {
      int byte = nub_pvm_opcode_of(PVM_PROFILE_JAMV1, (nub_pvm_op)d->op);
      assert_true(byte >= 0);
      copy[code_at + pc] = (uint8_t)byte;
    } else if (final[b.code[pc]].name) {
      copy[code_at + pc] = (uint8_t)invalid;   /* stays an invalid instruction */
    }
  }
  /* the two decodes agree on everything but the opcode byte */
  assert_int_equal(nub_pvm_blob_parse(copy, copy + len, &nb, &err), PVM_OK);
  for (uint32_t pc = 0; pc < b.code_len; pc++) {
    if (!nub_pvm_blob_is_start(&b, pc)) continue;
    nub_pvm_insn x, y;
    nub_pvm_decode(PVM_PROFILE_GP08_DRAFT, &b, pc, &x);
    nub_pvm_decode(PVM_PROFILE_JAMV1, &nb, pc, &y);
    if (x.op != y.op || x.len != y.len || x.ra != y.ra || x.rb != y.rb || x.rd != y.rd ||
        x.imm_x != y.imm_x || x.imm_y != y.imm_y || (x.op != PVM_OP_INVALID && x.target != y.target))
      fail_msg("pc %u: %s re-encodes as %s", pc, draft[x.opcode].name ? draft[x.opcode].name : "(invalid)",
               final[y.opcode].name ? final[y.opcode].name : "(invalid)");
  }
  *out = copy;
  return 0;
}

static bool same_exits(const outcome *a, const outcome *b, char *why, size_t n) {
  if (a->nasserts != b->nasserts) { snprintf(why, n, "assert count"); return false; }
  for (unsigned i = 0; i < a->nasserts; i++) {
    const exit_state *x = &a->at[i], *y = &b->at[i];
    if (x->status != y->status || x->pc != y->pc || x->gas != y->gas || x->exit_arg != y->exit_arg ||
        memcmp(x->regs, y->regs, sizeof x->regs)) {
      snprintf(why, n, "assert %u: %s pc %u gas %lld vs %s pc %u gas %lld", i,
               nub_pvm_status_name(x->status), x->pc, (long long)x->gas, nub_pvm_status_name(y->status),
               y->pc, (long long)y->gas);
      return false;
    }
  }
  return true;
}

/* The re-encoded program's costs against the draft vector's: every basic
** block's cost and the gas at every assert.  Returns true when all equal. */
static bool same_gas_as_draft(const uint8_t *jam, size_t len, const json_value *root,
                              const outcome *o, char *why, size_t n) {
  const json_value *costs = json_get(root, "block-gas-costs");
  nub_pvm_program *prog;
  nub_pvm_error err;
  uint32_t cur = 0, pc, cost;
  size_t blocks = 0;
  bool basic;
  if (nub_pvm_program_load(PVM_PROFILE_JAMV1, jam, len, &prog, &err)) fail_msg("jamv1: %s", err.msg);
  while (nub_pvm_program_next_block(prog, &cur, &pc, &cost, &basic)) {
    char key[16];
    uint64_t want;
    if (!basic) continue;
    blocks++;
    snprintf(key, sizeof key, "%u", pc);
    if (!json_to_u64(json_get(costs, key), &want) || want != cost) {
      snprintf(why, n, "block %u costs %u under jamv1, the draft vector lists %s", pc, cost,
               json_get(costs, key) ? "another cost" : "no such block");
      nub_pvm_program_free(prog);
      return false;
    }
  }
  nub_pvm_program_free(prog);
  if (blocks != costs->count) {
    snprintf(why, n, "%zu blocks under jamv1, %zu in the draft vector", blocks, costs->count);
    return false;
  }
  unsigned k = 0;
  for (const json_value *s = json_get(root, "steps")->child; s; s = s->next) {
    int64_t want;
    if (strcmp(json_get(s, "kind")->str, "assert")) continue;
    if (!json_to_i64(json_get(s, "gas"), &want) || k >= o->nasserts || o->at[k].gas != want) {
      snprintf(why, n, "assert %u: gas %lld under jamv1, %lld in the draft vector", k,
               k < o->nasserts ? (long long)o->at[k].gas : -1LL, (long long)want);
      return false;
    }
    k++;
  }
  return true;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void draft_programs_run_the_same_under_jamv1(void **state) {
  (void)state;
  const char *src = getenv("NUB_SOURCE_DIR");
  char dir[512], path[1024];
  snprintf(dir, sizeof dir, "%s/tests/vectors/pvm-newgas/programs", src ? src : ".");
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open %s", dir);
  char **names = NULL;
  size_t nnames = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
    names = realloc(names, (nnames + 1) * sizeof *names);
    names[nnames++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, nnames, sizeof *names, by_name);

  nub_pvm_mem *mem;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_mem_new(&mem, &err), PVM_OK);
  const nub_pvm_engine *engines[2] = {&nub_pvm_engine_interp, &nub_jit_engine};
  unsigned reencoded = 0, changed = 0, same = 0, ro_rule = 0, no_form = 0, failed = 0, draft_ok = 0;
  unsigned gas_same = 0;
  for (size_t i = 0; i < nnames; i++) {
    uint8_t *text, *blob, *jam = NULL;
    size_t text_len;
    json_doc *doc;
    json_error jerr;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    assert_int_equal(cli_read_file(path, &text, &text_len), 0);
    if (json_parse((char *)text, (char *)text + text_len, &doc, &jerr))
      fail_msg("%s: %s", names[i], jerr.msg);
    const json_value *root = json_root(doc), *prog = json_get(root, "program");
    blob = malloc(prog->count + 1);
    size_t len = 0;
    for (const json_value *b = prog->child; b; b = b->next) blob[len++] = (uint8_t)b->u;

    /* the draft program as it is, under its own profile, on the interpreter */
    outcome draft, out[2];
    run_steps(PVM_PROFILE_GP08_DRAFT, blob, len, &nub_pvm_engine_interp, root, mem, &draft);
    if (!draft.why[0]) draft_ok++;
    else printf("  %s: gp08-draft: %s\n", names[i], draft.why);

    if (reencode(blob, len, &jam)) {
      no_form++;
      printf("  %s: uses sbrk: no jamv1 form\n", names[i]);
    } else {
      reencoded++;
      changed += memcmp(jam, blob, len) != 0;
      for (int e = 0; e < 2; e++) run_steps(PVM_PROFILE_JAMV1, jam, len, engines[e], root, mem, &out[e]);
      char why[256];
      bool agree = same_exits(&out[0], &out[1], why, sizeof why);
      if (!agree) printf("  %s: jamv1: interp and jit differ: %s\n", names[i], why);
      for (int e = 0; e < 2; e++)
        if (out[e].why[0]) printf("  %s: jamv1 on %s: %s\n", names[i], engines[e]->name, out[e].why);
      if (!agree || out[0].why[0] || out[1].why[0]) failed++;
      else if (out[0].ro_rule) ro_rule++;
      else same++;
      if (same_gas_as_draft(jam, len, root, &out[0], why, sizeof why)) gas_same++;
      else printf("  %s: jamv1 gas: %s\n", names[i], why);
    }
    free(jam);
    free(blob);
    json_free(doc);
    free(text);
    free(names[i]);
  }
  free(names);
  nub_pvm_mem_free(mem);
  printf("jamv1 re-encoding of %zu draft programs: %u re-encoded (%u with other bytes), %u same, "
         "%u differ only by the read-only store rule (page fault under jamv1, panic in the draft), "
         "%u without a jamv1 form (sbrk), %u failed; on interp and jit, gas equal to the unit\n",
         nnames, reencoded, changed, same, ro_rule, no_form, failed);
  printf("gp08-draft: %u of %zu draft programs end as their vectors assert (status, pc, registers, "
         "memory)\n", draft_ok, nnames);
  printf("jamv1 gas: %u of %u re-encoded programs cost what the draft vector says (every block, "
         "every assert)\n", gas_same, reencoded);
  assert_int_equal(nnames, 356);
  assert_int_equal(reencoded + no_form, nnames);
  assert_int_equal(failed, 0);
  assert_int_equal(same + ro_rule, reencoded);
  assert_true(ro_rule > 0);
  assert_true(changed > 0);
  assert_int_equal(draft_ok, nnames);
  assert_int_equal(gas_same, reencoded);
}

/* The re-encoder itself: sbrk has no jamv1 form; `unlikely` moves from 3
** to 2; a byte that is no opcode in the draft but one in jamv1 (2) stays
** an invalid instruction; the moved ops (102-111 -> 101-110) move. */
static void reencoder_maps_opcode_bytes(void **state) {
  (void)state;
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP08_DRAFT);
  const uint8_t raw2 = 2;
  uint8_t *blob, *jam;
  size_t len;
  nub_pvm_error err;
  nub_pvm_builder_insn(b, PVM_OP_UNLIKELY, 0, 0, 0, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_REVERSE_BYTES, 1, 0, 2, 0, 0);
  nub_pvm_builder_raw(b, &raw2, 1);
  assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, &err), PVM_OK);
  nub_pvm_builder_free(b);
  assert_int_equal(reencode(blob, len, &jam), 0);
  nub_pvm_blob pb;
  assert_int_equal(nub_pvm_blob_parse(jam, jam + len, &pb, &err), PVM_OK);
  assert_int_equal(pb.code[0], 2);                          /* unlikely */
  assert_int_equal(pb.code[1], 110);                        /* reverse_bytes: 111 -> 110 */
  assert_null(nub_pvm_isa(PVM_PROFILE_JAMV1)[pb.code[3]].name); /* still no instruction */
  free(jam);
  free(blob);
  b = nub_pvm_builder_new(PVM_PROFILE_GP08_DRAFT);
  nub_pvm_builder_insn(b, PVM_OP_SBRK, 1, 0, 2, 0, 0);
  assert_int_equal(nub_pvm_builder_finish(b, &blob, &len, &err), PVM_OK);
  nub_pvm_builder_free(b);
  jam = NULL;
  assert_int_equal(reencode(blob, len, &jam), 1);
  assert_null(jam);
  free(blob);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(reencoder_maps_opcode_bytes),
    cmocka_unit_test(draft_programs_run_the_same_under_jamv1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
