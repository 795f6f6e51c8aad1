/*
** nub asm: assemble text (docs/asm.md) into a generic blob or SPI container.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_asm(int argc, char **argv) {
  const char *file = NULL, *out_path = NULL;
  pvm_profile profile = PVM_PROFILE_GP07;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-o") && v) {
      out_path = v;
      i++;
    } else if (!strcmp(a, "--profile") && v) {
      if (!cli_profile("asm", v, &profile)) return 2;
      i++;
    } else if (a[0] != '-' && !file) {
      file = a;
    } else {
      return cli_usage_error("asm", "unexpected argument %s", a);
    }
  }
  if (!file) return cli_usage_error("asm", "no source file");
  if (!out_path) return cli_usage_error("asm", "no output file (-o FILE)");
  uint8_t *text, *out;
  size_t len, out_len;
  pvm_error err;
  if (cli_read_file(file, &text, &len)) return 1;
  int rc = pvm_asm(profile, (const char *)text, len, &out, &out_len, NULL, &err);
  free(text);
  if (rc) {
    fprintf(stderr, "%s:%s\n", file, err.msg);
    return 1;
  }
  rc = cli_write_file(out_path, out, out_len) ? 1 : 0;
  free(out);
  return rc;
}
