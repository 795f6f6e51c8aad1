/*
** nub: command line front end.
*/
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
  {"vectors", "run PVM JSON test vectors: vectors DIR|FILE... [--engine E] [--profile P] [--verbose]", cmd_vectors},
  {"run", "run a program: run FILE [--format generic|spi] [--profile P] [--gas N] [--pc N] [--args HEX] [--engine E] [--trace] [--json]", cmd_run},
  {"exec", "publish a program as caps and invoke it: exec FILE [--format spi|generic] [--profile P] [--backend proc|inproc] [--engine jit|interp] [--endpoint E] [--args a,b,c,d] [--gas G] [--json] [--verbose]", cmd_exec},
  {"bench", "benchmarks: bench interp|jit|hash|gas | bench invoke [--engine E] | bench recovery [--caps N] [--large-mib M]", cmd_bench},
  {"fuzz-diff", "differential fuzzing, JIT vs interpreter: fuzz-diff [--profile P|all] [--count N] [--seed S] [--max-insns K] [--save DIR] [--reports N] [--engine jit|jit-no-lzcnt|jit-no-fsgsbase]", cmd_fuzz_diff},
  {"disasm", "print a program as assembler text: disasm FILE [--format generic|spi] [--profile P] [--max-input BYTES] [-o OUT]", cmd_disasm},
  {"asm", "assemble a program: asm FILE.s -o FILE.pvm [--profile P]", cmd_asm},
  {"gas", "gas cost of every basic block: gas FILE [--profile P] [--format generic|spi] [--json] | gas [FILE] --check VECTOR.json...", cmd_gas},
  {"cap", "capabilities: cap hash FILE | cap show FILE (SSZ wire bytes)", cmd_cap},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f, "usage: nub <command> [args]\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "nub: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
