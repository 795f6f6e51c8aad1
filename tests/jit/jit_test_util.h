/*
** Shared by the JIT tests: finish a builder's program and load it under
** GP 0.7; the end state of a run, compared between engines.  Include after
** <cmocka.h>.
*/
#ifndef NUB_JIT_TEST_UTIL_H
#define NUB_JIT_TEST_UTIL_H

#include <stdlib.h>

#include "nub/pvm.h"

/* Finishes b (and frees it); the program it built, loaded under prof. */
static inline nub_pvm_program *jt_finish(nub_pvm_builder *b, nub_pvm_profile prof) {
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_pvm_program *prog;
  int rc = nub_pvm_builder_finish(b, &blob, &len, &err);
  nub_pvm_builder_free(b);
  if (rc) fail_msg("builder: %s", err.msg);
  assert_int_equal(nub_pvm_program_load(prof, blob, len, &prog, &err), PVM_OK);
  free(blob);
  return prog;
}

static inline nub_pvm_program *jt_finish_gp07(nub_pvm_builder *b) { return jt_finish(b, PVM_PROFILE_GP07); }

/* What a run ends with, compared between engines. */
typedef struct result {
  nub_pvm_status status;
  uint32_t pc;
  int64_t gas;
  uint64_t regs[PVM_REGS];
} result;

#endif
