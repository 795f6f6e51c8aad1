/*
** nub: command line front end.  Each command's options are data (a
** cli_spec next to its code); `nub help CMD` and `nub CMD --help` print them.
*/
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nub/jit.h"
#include "nub/nub.h"

static const cli_command commands[] = {
  {&cli_vectors_spec, cmd_vectors},
  {&cli_run_spec, cmd_run},
  {&cli_exec_spec, cmd_exec},
  {&cli_bench_spec, cmd_bench},
  {&cli_fuzz_diff_spec, cmd_fuzz_diff},
  {&cli_disasm_spec, cmd_disasm},
  {&cli_asm_spec, cmd_asm},
  {&cli_gas_spec, cmd_gas},
  {&cli_link_spec, cmd_link},
  {&cli_cap_spec, cmd_cap},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f, "usage: nub <command> [args]   (nub <command> --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-10s %s\n", commands[i].spec->name, commands[i].spec->summary);
  fprintf(f, "\n  --version  print the version\n"
             "\nexit codes: 0 done, 1 failed (bad input, failed vectors, divergence), 2 usage error\n");
}

static const cli_command *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(name, commands[i].spec->name)) return &commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  const cli_command *c;
  /* as nub-guest, where the compiles of `proc` run (nub/jit.h) */
  mallopt(M_MMAP_THRESHOLD, NUB_JIT_MALLOC_MMAP_BYTES);
  mallopt(M_TRIM_THRESHOLD, NUB_JIT_MALLOC_TRIM_BYTES);
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("nub %s\n", nub_version());
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "help") && (c = find(argv[2]))) {
    cli_help(c->spec, stdout);
    return 0;
  }
  if (argc < 2 || cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if ((c = find(argv[1]))) return c->run(argc - 1, argv + 1);
  fprintf(stderr, "nub: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
