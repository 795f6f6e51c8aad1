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
  {"mnemonics", 0, NULL, NULL, "print the mnemonic table of every profile (markdown, as in docs/asm.md) and exit"},
  {0}};

const cli_spec cli_asm_spec = {
  "asm", "FILE.s", "assemble text (docs/asm.md) into a generic blob, or an SPI program when the text uses .stack_size/.heap_pages/.ro_data/.rw_data",
  "Exit code: 0 assembled, 1 on an error in the text (printed as FILE:LINE: message), 2 on a usage error.",
  0, 1, asm_opts};

/* One row per semantic op (PVM_OP_LIST order): its opcode in each profile
** and what kind of instruction it is; docs/asm.md holds this output. */
void cli_print_mnemonics(FILE *f) {
  fprintf(f, "| mnemonic | format |");
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) fprintf(f, " %s |", nub_pvm_profile_name((nub_pvm_profile)p));
  fprintf(f, " kind |\n|---|---|");
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) fprintf(f, "---|");
  fprintf(f, "---|\n");
  for (int op = 0; op < PVM_OP_COUNT; op++) {
    const nub_pvm_opinfo *info = NULL;
    for (int p = 0; p < PVM_PROFILE_COUNT && !info; p++) {
      int code = nub_pvm_opcode_of((nub_pvm_profile)p, (nub_pvm_op)op);
      if (code >= 0) info = &nub_pvm_isa((nub_pvm_profile)p)[code];
    }
    if (!info) continue;
    fprintf(f, "| `%s` | %s |", info->name, nub_pvm_format_name((nub_pvm_format)info->format));
    for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
      int code = nub_pvm_opcode_of((nub_pvm_profile)p, (nub_pvm_op)op);
      if (code >= 0) fprintf(f, " %d |", code);
      else fprintf(f, " — |");
    }
    if (info->flags & PVM_OPF_BRANCH) fprintf(f, " branch (ends a block)");
    else if (info->flags & PVM_OPF_DJUMP) fprintf(f, " dynamic jump (ends a block)");
    else if (info->flags & PVM_OPF_TERM) fprintf(f, " ends a block");
    else if (info->flags & PVM_OPF_HOST) fprintf(f, " host call");
    else if (info->flags & PVM_OPF_LOAD) fprintf(f, " load %u byte%s", info->width, info->width > 1 ? "s" : "");
    else if (info->flags & PVM_OPF_STORE) fprintf(f, " store %u byte%s", info->width, info->width > 1 ? "s" : "");
    fprintf(f, " |\n");
  }
}

int cmd_asm(int argc, char **argv) {
  cli_args a;
  int rc = cli_parse(&cli_asm_spec, argc, argv, &a);
  if (rc) return rc == CLI_HELP ? 0 : rc;
  if (cli_flag(&a, "mnemonics")) {
    cli_print_mnemonics(stdout);
    return 0;
  }
  if (!a.npos) return cli_usage_error("asm", "missing FILE.s (usage: nub asm FILE.s -o FILE.pvm)");
  const char *file = a.pos[0], *out_path = cli_get(&a, "out");
  nub_pvm_profile profile = (nub_pvm_profile)cli_choice(&a, "profile");
  if (!out_path) return cli_usage_error("asm", "no output file (-o FILE)");
  uint8_t *text, *out;
  size_t len, out_len;
  nub_pvm_error err;
  if (cli_read_file(file, &text, &len)) return 1;
  rc = nub_pvm_asm(profile, (const char *)text, len, &out, &out_len, NULL, &err);
  free(text);
  if (rc) {
    fprintf(stderr, "%s:%s\n", file, err.msg);
    return 1;
  }
  rc = cli_write_file(out_path, out, out_len) ? 1 : 0;
  free(out);
  return rc;
}
