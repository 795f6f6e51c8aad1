/*
** The differential fuzzer itself: it must notice an engine that differs
** from the interpreter, shrink the program to the instruction at fault
** and print a reproducer that `nub vectors` reads, fails on the faulty
** engine and passes on the interpreter.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzzdiff.h"
#include "vector.h"

/* The interpreter, except that a program containing an xor reports r2 off
** by one. */
static bool has_xor(const nub_pvm_program *prog) {
  const nub_pvm_blob *b = nub_pvm_program_blob(prog);
  int xor_op = nub_pvm_opcode_of(PVM_PROFILE_GP07, PVM_OP_XOR);
  for (uint32_t pc = 0; pc < b->code_len; pc++)
    if (nub_pvm_blob_is_start(b, pc) && b->code[pc] == xor_op) return true;
  return false;
}

static nub_pvm_status faulty_run(nub_pvm_vm *vm) {
  nub_pvm_status st = nub_pvm_engine_interp.run(vm);
  if (has_xor(vm->prog)) vm->regs[2]++;
  return st;
}

static nub_pvm_engine faulty;

static void detects_shrinks_and_reproduces(void **state) {
  (void)state;
  faulty = nub_pvm_engine_interp;
  faulty.name = "faulty";
  faulty.run = faulty_run;
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fdiff_config cfg = {.seed = 3, .count = 200, .max_insns = 40, .ref = &nub_pvm_engine_interp,
                      .test = &faulty, .max_reports = 1, .out = out};
  fdiff_stats st;
  assert_int_equal(fdiff_run(&cfg, &st), 1);
  fclose(out);
  assert_int_equal(st.divergences, 1);
  assert_true(st.programs < 200);                 /* stopped at the first report */
  assert_non_null(strstr(text, "DIVERGENCE"));
  assert_non_null(strstr(text, " to 1 instructions"));   /* only the xor is left */
  const char *json = strchr(text, '{');
  assert_non_null(json);
  pvm_vector v;
  char why[2048];
  if (vector_parse(json, strlen(json), &v, why, sizeof why)) fail_msg("reproducer: %s", why);
  assert_int_equal(vector_check(&v, &nub_pvm_engine_interp, why, sizeof why), 0);
  assert_int_equal(vector_check(&v, &faulty, why, sizeof why), 1);
  assert_non_null(strstr(why, "r2"));
  vector_free(&v);
  free(text);
}

static void agrees_with_itself(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  fdiff_config cfg = {.seed = 9, .count = 300, .max_insns = 40, .ref = &nub_pvm_engine_interp,
                      .test = &nub_pvm_engine_interp, .out = out};
  fdiff_stats st;
  assert_int_equal(fdiff_run(&cfg, &st), 0);
  fclose(out);
  assert_int_equal(st.programs, 300);
  assert_int_equal(st.divergences, 0);
  /* every kind of exit happens, and the runs resume after the resumable ones */
  for (int s = PVM_HALT; s <= PVM_HOST; s++) assert_true(st.exits[s] > 0);
  assert_true(st.runs > st.programs);
  unsigned missing = 0;
  for (unsigned b = 0; b < 256; b++)
    missing += nub_pvm_isa(PVM_PROFILE_GP07)[b].name && !st.opcode_programs[b];
  assert_int_equal(missing, 0);
  free(text);
}

/* Every profile: the generator makes programs the builder accepts (it
** refuses ops the profile lacks: sbrk under jamv1), every opcode of the
** profile shows up, and every kind of exit happens. */
static void every_profile_uses_its_own_opcodes(void **state) {
  (void)state;
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    fdiff_config cfg = {.profile = (nub_pvm_profile)p, .seed = 11, .count = 400, .max_insns = 40,
                        .ref = &nub_pvm_engine_interp, .test = &nub_pvm_engine_interp, .out = out};
    fdiff_stats st;
    int rc = fdiff_run(&cfg, &st);
    fclose(out);
    if (rc) fail_msg("%s: %s", nub_pvm_profile_name((nub_pvm_profile)p), text);
    assert_int_equal(st.programs, 400);
    for (int s = PVM_HALT; s <= PVM_HOST; s++) assert_true(st.exits[s] > 0);
    unsigned covered, total;
    fdiff_coverage(&st, (nub_pvm_profile)p, &covered, &total);
    assert_int_equal(total, nub_pvm_isa_count((nub_pvm_profile)p));
    assert_int_equal(covered, total);
    free(text);
  }
  fdiff_config bad = {.profile = PVM_PROFILE_COUNT, .count = 1, .ref = &nub_pvm_engine_interp,
                      .test = &nub_pvm_engine_interp, .out = stderr};
  fdiff_stats st;
  assert_int_equal(fdiff_run(&bad, &st), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(detects_shrinks_and_reproduces),
    cmocka_unit_test(agrees_with_itself),
    cmocka_unit_test(every_profile_uses_its_own_opcodes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
