/*
** nub disasm: print a program as assembler text (docs/asm.md).  Inputs
** above CLI_DISASM_MAX_INPUT (4 MiB) need --max-input: the text and the
** reassembly check take ~100 bytes of memory per input byte at worst.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt disasm_opts[] = {
  {"format", 0, CLI_FORMATS, "auto", "program format: auto takes whichever of SPI or generic blob parses"},
  {"profile", 0, CLI_PROFILES, "gp07", "ISA profile the code is decoded under"},
  {"max-input", 0, "BYTES", "4194304", "largest input read (up to 268435456); memory is ~100 bytes per input byte at worst"},
  {"out", 'o', "FILE", NULL, "write the text to FILE instead of stdout"},
  {0}};

const cli_spec cli_disasm_spec = {
  "disasm", "FILE", "print a program as assembler text: pc and bytes of every instruction, labels for branch and jump table targets",
  "nub asm on the text gives back the input byte for byte.\n"
  "Exit code: 0 printed, 1 on a bad program, 2 on a usage error.",
  1, 1, disasm_opts};

int cmd_disasm(int argc, char **argv) {
  cli_args a;
  int rc = cli_parse(&cli_disasm_spec, argc, argv, &a);
  uint64_t max_input = CLI_DISASM_MAX_INPUT;
  if (rc) return rc == CLI_HELP ? 0 : rc;
  const char *file = a.pos[0], *out_path = cli_get(&a, "out");
  nub_pvm_profile profile = (nub_pvm_profile)cli_choice(&a, "profile");
  if ((rc = cli_get_u64(&a, "max-input", 1, CLI_MAX_FILE_BYTES, &max_input))) return rc;
  uint8_t *bytes;
  size_t len, text_len;
  char *text;
  bool spi;
  nub_pvm_error err;
  /* bounded input bounds the memory: ~100 bytes per input byte at worst */
  if (cli_read_file_max(file, (size_t)max_input, "; disassembly needs up to ~100 bytes of "
                        "memory per input byte: raise the limit with --max-input BYTES",
                        &bytes, &len))
    return 1;
  if (cli_program_format("disasm", file, bytes, len, cli_choice(&a, "format"), &spi)) {
    free(bytes);
    return 1;
  }
  rc = nub_pvm_disasm(profile, bytes, len, spi ? PVM_DISASM_SPI : 0, &text, &text_len, &err);
  free(bytes);
  if (rc) {
    cli_pvm_error("disasm", file, &err);
    return 1;
  }
  if (out_path) rc = cli_write_file(out_path, text, text_len) ? 1 : 0;
  else if (fwrite(text, 1, text_len, stdout) != text_len) rc = 1;
  free(text);
  return rc;
}
