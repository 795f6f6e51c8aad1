/*
** nub asm: assemble text (docs/asm.md) into a generic blob or SPI container.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt asm_opts[] = {
  {"out", 'o', "FILE", NULL, "output program (required)"},
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile whose mnemonics and opcodes the text uses"},
  {0}};

const cli_spec cli_asm_spec = {
  "asm", "FILE.s", "assemble text (docs/asm.md) into a generic blob, or an SPI program when the text uses .stack_size/.heap_pages/.ro_data/.rw_data",
  "Exit code: 0 assembled, 1 on an error in the text (printed as FILE:LINE: message), 2 on a usage error.",
  1, 1, asm_opts};

int cmd_asm(int argc, char **argv) {
  cli_args a;
  int rc = cli_parse(&cli_asm_spec, argc, argv, &a);
  if (rc) return rc == CLI_HELP ? 0 : rc;
  const char *file = a.pos[0], *out_path = cli_get(&a, "out");
  pvm_profile profile = (pvm_profile)cli_choice(&a, "profile");
  if (!out_path) return cli_usage_error("asm", "no output file (-o FILE)");
  uint8_t *text, *out;
  size_t len, out_len;
  pvm_error err;
  if (cli_read_file(file, &text, &len)) return 1;
  rc = pvm_asm(profile, (const char *)text, len, &out, &out_len, NULL, &err);
  free(text);
  if (rc) {
    fprintf(stderr, "%s:%s\n", file, err.msg);
    return 1;
  }
  rc = cli_write_file(out_path, out, out_len) ? 1 : 0;
  free(out);
  return rc;
}
