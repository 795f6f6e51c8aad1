/*
** nub disasm: print a program as assembler text (docs/asm.md).  Inputs
** above CLI_DISASM_MAX_INPUT (4 MiB) need --max-input: the text and the
** reassembly check take ~100 bytes of memory per input byte at worst.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_disasm(int argc, char **argv) {
  const char *file = NULL, *out_path = NULL;
  unsigned flags = 0;
  uint64_t max_input = CLI_DISASM_MAX_INPUT;
  pvm_profile profile = PVM_PROFILE_GP07;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--format") && v) {
      if (!strcmp(v, "spi")) flags |= PVM_DISASM_SPI;
      else if (strcmp(v, "generic")) return cli_usage_error("disasm", "--format must be generic or spi");
      i++;
    } else if (!strcmp(a, "--profile") && v) {
      if (!cli_profile("disasm", v, &profile)) return 2;
      i++;
    } else if (!strcmp(a, "--max-input") && v) {
      if (!cli_parse_u64(v, CLI_MAX_FILE_BYTES, &max_input))
        return cli_usage_error("disasm", "--max-input must be a byte count up to %zu",
                               CLI_MAX_FILE_BYTES);
      i++;
    } else if (!strcmp(a, "-o") && v) {
      out_path = v;
      i++;
    } else if (a[0] != '-' && !file) {
      file = a;
    } else {
      return cli_usage_error("disasm", "unexpected argument %s", a);
    }
  }
  if (!file) return cli_usage_error("disasm", "no program file");
  uint8_t *bytes;
  size_t len, text_len;
  char *text;
  pvm_error err;
  /* bounded input bounds the memory: ~100 bytes per input byte at worst */
  if (cli_read_file_max(file, (size_t)max_input, "; disassembly needs up to ~100 bytes of "
                        "memory per input byte: raise the limit with --max-input BYTES",
                        &bytes, &len))
    return 1;
  int rc = pvm_disasm(profile, bytes, len, flags, &text, &text_len, &err);
  free(bytes);
  if (rc) {
    fprintf(stderr, "nub disasm: %s: %s (%s, offset %llu)\n", file, err.msg,
            pvm_errcode_name(err.code), (unsigned long long)err.offset);
    return 1;
  }
  if (out_path) rc = cli_write_file(out_path, text, text_len) ? 1 : 0;
  else if (fwrite(text, 1, text_len, stdout) != text_len) rc = 1;
  free(text);
  return rc;
}
