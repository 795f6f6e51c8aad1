/*
** --profile on the commands that load programs (run, exec, disasm, asm):
** the program's bytes mean what the named profile says, and an unknown
** name is a usage error listing the known profiles.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "cli_capture.h"

/* r7 = popcount64(r7 | 0xF0) and halt: count_set_bits_64 is 101 under
** jamv1, which is sbrk under gp07 and gp08-draft. */
static char *popcount_program(nub_pvm_profile profile) {
  nub_pvm_builder *b = nub_pvm_builder_new(profile);
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_pvm_builder_insn(b, PVM_OP_OR_IMM, 7, 7, 0, 0xF0, 0);
  nub_pvm_builder_insn(b, PVM_OP_COUNT_SET_BITS_64, 7, 0, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_LOAD_IMM, 0, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
  if (nub_pvm_builder_finish(b, &blob, &len, &err)) fail_msg("builder: %s", err.msg);
  nub_pvm_builder_free(b);
  char *path = cli_write_temp(blob, len);
  free(blob);
  return path;
}

static void unknown_profile_lists_the_known_ones(void **state) {
  (void)state;
  static const struct { const char *name; cli_command_fn fn; } cmds[] = {
    {"run", cmd_run}, {"exec", cmd_exec}, {"disasm", cmd_disasm}, {"asm", cmd_asm},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    char *argv[] = {(char *)cmds[i].name, "x.pvm", "--profile", "gp09", "-o", "y", NULL}, *out;
    if (strcmp(cmds[i].name, "asm")) argv[4] = NULL;
    assert_int_equal(cli_capture(cmds[i].fn, argv, &out), 2);
    char want[128];
    snprintf(want, sizeof want, "nub %s: --profile must be gp07, gp08-draft or jamv1, not 'gp09'",
             cmds[i].name);
    if (!strstr(out, want)) fail_msg("%s printed: %s", cmds[i].name, out);
    free(out);
  }
}

static void run_loads_under_the_profile(void **state) {
  (void)state;
  char *path = popcount_program(PVM_PROFILE_JAMV1), *out;
  char *jamv1[] = {"run", path, "--profile", "jamv1", "--json", NULL};
  assert_int_equal(cli_capture(cmd_run, jamv1, &out), 0);
  if (!strstr(out, "\"status\":\"halt\"") || !strstr(out, "\"regs\":[18446744073709486080,0,0,0,0,0,0,4,"))
    fail_msg("jamv1: %s", out);
  free(out);
  /* the same bytes under gp07: 101 is sbrk, r7 is not the popcount */
  char *gp07[] = {"run", path, "--json", NULL};
  assert_int_equal(cli_capture(cmd_run, gp07, &out), 0);
  if (!strstr(out, "\"status\":\"halt\"") || strstr(out, ",0,0,0,0,0,0,4,")) fail_msg("gp07: %s", out);
  free(out);
  unlink(path);
  free(path);
}

static void exec_builds_the_image_for_the_profile(void **state) {
  (void)state;
  char *path = popcount_program(PVM_PROFILE_JAMV1), *out;
  char *argv[] = {"exec", path, "--format", "generic", "--backend", "inproc", "--profile",
                  "jamv1", "--regs", "65535", "--verbose", NULL};
  assert_int_equal(cli_capture(cmd_exec, argv, &out), 0);
  if (!strstr(out, "exit_reason:   0 (halt)") || !strstr(out, "return_value:  16 (0x10)"))
    fail_msg("exec: %s", out);
  free(out);
  unlink(path);
  free(path);
}

static void disasm_and_asm_use_the_profile(void **state) {
  (void)state;
  char *path = popcount_program(PVM_PROFILE_JAMV1), *out;
  char *jamv1[] = {"disasm", path, "--profile", "jamv1", NULL};
  assert_int_equal(cli_capture(cmd_disasm, jamv1, &out), 0);
  assert_non_null(strstr(out, "count_set_bits_64"));
  free(out);
  char *gp07[] = {"disasm", path, NULL};
  assert_int_equal(cli_capture(cmd_disasm, gp07, &out), 0);
  assert_null(strstr(out, "count_set_bits_64"));
  assert_non_null(strstr(out, "sbrk"));
  free(out);
  const char *text = "unlikely\ntrap\n";
  char *src = cli_write_temp(text, strlen(text)), bin[64];
  snprintf(bin, sizeof bin, "%s.pvm", src);
  char *as[] = {"asm", src, "-o", bin, "--profile", "jamv1", NULL};
  assert_int_equal(cli_capture(cmd_asm, as, &out), 0);
  free(out);
  uint8_t *blob;
  size_t len;
  assert_int_equal(cli_read_file(bin, &blob, &len), 0);
  assert_int_equal(blob[3], 2);                       /* unlikely is 2 in jamv1 */
  free(blob);
  char *as07[] = {"asm", src, "-o", bin, NULL};
  assert_int_equal(cli_capture(cmd_asm, as07, &out), 1);  /* no unlikely in gp07 */
  free(out);
  unlink(bin);
  unlink(src);
  unlink(path);
  free(src);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(unknown_profile_lists_the_known_ones),
    cmocka_unit_test(run_loads_under_the_profile),
    cmocka_unit_test(exec_builds_the_image_for_the_profile),
    cmocka_unit_test(disasm_and_asm_use_the_profile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
