/*
** nub link: a RISC-V ELF (RV64EMAC + Zbb, linked with toolchain/pvm.ld
** and --emit-relocs) -> an SPI program or a generic blob
** (docs/toolchain.md).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "link.h"

static const cli_opt link_opts[] = {
  {"o", 'o', "OUT.pvm", NULL, "the program to write"},
  {"profile", 0, "gp07|jamv1", "gp07", "ISA profile of the output"},
  {"format", 0, "spi|generic", "spi", "SPI program (GP A.7) or a bare generic blob"},
  {"export", 0, "KEY=SYMBOL", NULL, "export SYMBOL as endpoint KEY (repeatable)"},
  {"stack-size", 0, "N", NULL, "stack bytes (default: from the ELF / linker script)"},
  {"verbose", 'v', NULL, NULL, "print what was translated"},
  {0}};

const cli_spec cli_link_spec = {
  "link", "IN.elf", "RISC-V ELF -> PVM program (docs/toolchain.md)",
  "Translates a RISC-V RV64EMAC+Zbb ELF built with clang-19/lld-19 and\n"
  "toolchain/pvm.ld; anything it cannot translate is refused with the\n"
  "instruction, its address and its symbol.",
  1, 1, link_opts};

int cmd_link(int argc, char **argv) {
  const char *file = NULL, *out_path = NULL;
  for (int i = 1; i < argc; i++)
    if (cli_is_help(argv[i])) { cli_help(&cli_link_spec, stdout); return 0; }
  link_options opt = {.profile = PVM_PROFILE_GP07, .stack_size = -1};
  link_export exports[LINK_MAX_EXPORTS];
  bool verbose = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t x;
    if (!strcmp(a, "-o") && v) {
      out_path = v;
      i++;
    } else if (!strcmp(a, "--profile") && v) {
      if (!cli_profile("link", v, &opt.profile)) return 2;
      i++;
    } else if (!strcmp(a, "--format") && v) {
      if (!strcmp(v, "spi")) opt.generic = false;
      else if (!strcmp(v, "generic")) opt.generic = true;
      else return cli_usage_error("link", "--format takes spi or generic, not %s", v);
      i++;
    } else if (!strcmp(a, "--export") && v) {
      const char *eq = strchr(v, '=');
      char key[16];
      if (!eq || eq == v || (size_t)(eq - v) >= sizeof key || !eq[1])
        return cli_usage_error("link", "--export takes KEY=SYMBOL, not %s", v);
      memcpy(key, v, (size_t)(eq - v));
      key[eq - v] = 0;
      if (!cli_parse_u64(key, LINK_MAX_EXPORTS - 1, &x))
        return cli_usage_error("link", "--export key %s is not 0..%u", key, LINK_MAX_EXPORTS - 1);
      if (opt.export_count == LINK_MAX_EXPORTS)
        return cli_usage_error("link", "more than %u --export options", LINK_MAX_EXPORTS);
      exports[opt.export_count++] = (link_export){(uint32_t)x, eq + 1};
      i++;
    } else if (!strcmp(a, "--stack-size") && v) {
      if (!cli_parse_u64(v, (1u << 24) - 1, &x))
        return cli_usage_error("link", "--stack-size %s is not 0..%u", v, (1u << 24) - 1);
      opt.stack_size = (int64_t)x;
      i++;
    } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
      verbose = true;
    } else if (a[0] != '-' && !file) {
      file = a;
    } else {
      return cli_usage_error("link", "unexpected argument %s", a);
    }
  }
  if (!file) return cli_usage_error("link", "no input ELF file");
  if (!out_path) return cli_usage_error("link", "no output file (-o FILE)");
  opt.exports = exports;
  uint8_t *elf, *out;
  size_t len, out_len;
  char msg[512];
  link_stats st;
  if (cli_read_file(file, &elf, &len)) return 1;
  int rc = link_program(elf, len, &opt, &out, &out_len, &st, msg, sizeof msg);
  free(elf);
  if (rc) {
    fprintf(stderr, "nub link: %s: %s\n", file, msg);
    return 1;
  }
  rc = cli_write_file(out_path, out, out_len) ? 1 : 0;
  free(out);
  if (!rc && verbose)
    printf("%s: %u RISC-V instructions -> %u bytes of PVM code, %u jump table entries, "
           "%u export slots; ro %u B, rw %u B, %u zero pages, stack %u B\n",
           out_path, st.rv_insns, st.pvm_bytes, st.jump_entries, st.exports, st.ro_len,
           st.rw_len, st.heap_pages, st.stack_size);
  return rc;
}
