/*
** The kernel's engine choice: "best" is the JIT only on a CPU with the
** features it needs (JIT_CPU_REQUIRED), the interpreter otherwise; a
** named engine is that engine.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guest/nk.h"
#include "nub/jit.h"

static void best_engine_follows_the_cpu_features(void **state) {
  static const struct {
    const char *name;
    uint32_t features;
    const nub_pvm_engine *want;
  } cases[] = {
    {NULL, JIT_CPU_REQUIRED, &nub_jit_engine},
    {NULL, JIT_CPU_REQUIRED | JIT_CPU_BMI1 | 0x80000000u, &nub_jit_engine},
    {NULL, 0, &nub_pvm_engine_interp},
    {NULL, JIT_CPU_REQUIRED & ~JIT_CPU_BMI2, &nub_pvm_engine_interp},
    {NULL, JIT_CPU_REQUIRED & ~JIT_CPU_POPCNT, &nub_pvm_engine_interp},
    {"interp", JIT_CPU_REQUIRED, &nub_pvm_engine_interp},
    {"jit", JIT_CPU_REQUIRED, &nub_jit_engine},
    {"nope", JIT_CPU_REQUIRED, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_ptr_equal(nk_engine_pick(cases[i].name, cases[i].features), cases[i].want);
}

static void best_engine_on_this_cpu_is_one_it_runs(void **state) {
  const nub_pvm_engine *e = nk_engine_by_name(NULL);
  uint32_t f = nub_jit_cpu_features();
  assert_ptr_equal(e, (f & JIT_CPU_REQUIRED) == JIT_CPU_REQUIRED ? &nub_jit_engine
                                                                 : &nub_pvm_engine_interp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(best_engine_follows_the_cpu_features),
    cmocka_unit_test(best_engine_on_this_cpu_is_one_it_runs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
