/*
** Shared helpers of the nub command line.
*/
#ifndef NUB_CLI_H
#define NUB_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nub/cap.h"
#include "nub/pvm.h"

/* Options and help of a command, as data: the parser applies defaults,
** accepts `--name value`, `--name=value` and -x aliases, checks choices,
** and `--help` prints the table (with every default) to stdout.
**
**   static const cli_opt opts[] = {
**     {"format", 0, "generic|spi", "spi", "program format"},
**     {"json", 0, NULL, NULL, "print the result as one JSON object"},
**     {0}};
**   static const cli_spec spec = {"run", "FILE", "run a program", NULL, 1, 1, opts};
**   cli_args a;
**   int rc = cli_parse(&spec, argc, argv, &a);
**   if (rc) return rc == CLI_HELP ? 0 : rc;
**   ... cli_get(&a, "format"), cli_flag(&a, "json"), a.pos[0] ... */
typedef struct cli_opt {
  const char *name;        /* long name without the dashes */
  char alias;              /* -x spelling, 0 for none */
  const char *metavar;     /* value placeholder; NULL: a flag.  A metavar of
                              lower-case words separated by '|' is the list
                              of allowed values, checked by the parser */
  const char *def;         /* default (used when absent, shown by --help) */
  const char *help;
} cli_opt;

typedef struct cli_spec {
  const char *name;        /* command name: "run" */
  const char *args;        /* positional synopsis: "FILE" */
  const char *summary;     /* one line, for `nub help` */
  const char *details;     /* more --help text after the options, or NULL */
  unsigned min_pos, max_pos;
  const cli_opt *opts;     /* ends with {0} */
} cli_spec;

#define CLI_MAX_OPTS 24
#define CLI_HELP (-1)      /* cli_parse: --help was printed */

typedef struct cli_args {
  const cli_spec *spec;
  const char *val[CLI_MAX_OPTS];   /* value given, else the default, else NULL */
  bool given[CLI_MAX_OPTS];
  char **pos;                      /* positionals (compacted into argv) */
  int npos;
} cli_args;

/* Parse argv (argv[0] is the command name); positionals are moved to the
** front of argv[1..].  Returns 0, CLI_HELP after printing the help, or 2
** after a usage error naming the option ("--format needs a value"). */
int cli_parse(const cli_spec *s, int argc, char **argv, cli_args *a);
void cli_help(const cli_spec *s, FILE *f);
bool cli_is_help(const char *arg);   /* -h or --help */
/* The value of option name (given or default), NULL if neither. */
const char *cli_get(const cli_args *a, const char *name);
bool cli_flag(const cli_args *a, const char *name);
bool cli_given(const cli_args *a, const char *name);
/* Index of the value of a choice option in its metavar list ("generic|spi":
** 0 or 1), -1 if the option has no value. */
int cli_choice(const cli_args *a, const char *name);
/* An unsigned option in [min, max]; else prints "--gas must be MIN..MAX,
** not X" and returns 2. Absent without default: *out untouched, 0. */
int cli_get_u64(const cli_args *a, const char *name, uint64_t min, uint64_t max, uint64_t *out);

/* A command of the nub CLI: its spec (for `nub help` and --help) and its
** entry point (argv[0] is the command name). */
typedef struct cli_command {
  const cli_spec *spec;
  int (*run)(int argc, char **argv);
} cli_command;

/* The ISA profiles as a choice metavar, in nub_pvm_profile order. */
#define CLI_PROFILES "gp07|gp08-draft|jamv1"
/* The largest gas run and exec take (the engines count gas in an int64). */
#define CLI_MAX_GAS ((uint64_t)INT64_MAX)

/* --format of run, exec and cap build: the choice metavar and its values. */
#define CLI_FORMATS "auto|generic|spi"
enum { CLI_FORMAT_AUTO, CLI_FORMAT_GENERIC, CLI_FORMAT_SPI };
/* Decide whether the bytes of path are an SPI program (A.7) or a generic
** blob (A.2) under format (CLI_FORMAT_*): auto takes whichever parses.
** Returns 0, or 1 after printing why the bytes are neither: an empty file,
** assembler text, or the parse error with a hint when the other format
** would have parsed ("this looks like an SPI program: try --format spi"). */
int cli_program_format(const char *cmd, const char *path, const uint8_t *bytes, size_t len,
                       int format, bool *spi);
/* "nub CMD: PATH: message (CODE, offset N)", the offset left out when the
** message already names it. */
void cli_pvm_error(const char *cmd, const char *path, const nub_pvm_error *err);
/* --regs: 1 to 4 comma-separated u64 values for phi7..phi10; else a usage
** error naming the empty or bad element (returns 2). */
int cli_parse_regs(const char *cmd, const char *s, uint64_t regs[4], unsigned *count);
/* The registers of --regs or of --args, its older spelling (an error if
** both are given); *count stays 0 when neither is. */
int cli_get_regs(const cli_args *a, const char *cmd, uint64_t regs[4], unsigned *count);
/* --data: hex bytes, at most PVM_ARGS_MAX of them; caller frees. */
int cli_parse_data(const char *cmd, const char *s, uint8_t **out, size_t *len);

/* Caps of a program file (format as cli_program_format): the Data caps,
** Image and Instance the SPI or generic builder makes, with data as the
** SPI argument region; exports > 0 makes endpoints 0..exports-1 at pcs
** 0, 5, 10, ... (the export slots of nub link, docs/toolchain.md).
** Returns 0, 1 after printing why, 2 on --data or exports with a generic
** blob. */
int cli_build_caps(const char *cmd, const char *path, int format, nub_pvm_profile profile,
                   const uint8_t *data, size_t data_len, uint32_t exports, nub_cap_bundle *out);
/* "nub CMD: PATH: message (CODE, offset N)" for a cap error. */
void cli_cap_error(const char *cmd, const char *path, const nub_cap_error *err);

/* Why a run that ended in a panic at vm->pc panicked, from the state at
** the exit (the instruction at pc, the registers it read); "" when it did
** not panic.  Costs the engines nothing. */
const char *cli_panic_reason(const nub_pvm_vm *vm, char *buf, size_t cap);

/* The largest file a command reads: the largest code blob an Image may
** carry (256 MiB); a program, cap or text file beyond it is refused. */
#define CLI_MAX_FILE_BYTES ((size_t)CAP_MAX_CODE_BYTES)
/* Inputs of nub disasm: its memory is ~100 bytes per input byte at worst
** (1-byte instructions: text, line model, reassembly check), so 4 MiB
** peak at ~400 MB; --max-input raises it up to CLI_MAX_FILE_BYTES. */
#define CLI_DISASM_MAX_INPUT ((size_t)4 << 20)

/* Read a whole file of at most CLI_MAX_FILE_BYTES; returns 0 or prints an
** error naming the path (and, when too large, its size and the limit). */
int cli_read_file(const char *path, uint8_t **data, size_t *len);
/* The same with a limit of max bytes; hint ends the too-large message
** (e.g. how to raise the limit), "" for none. */
int cli_read_file_max(const char *path, size_t max, const char *hint, uint8_t **data,
                      size_t *len);
int cli_write_file(const char *path, const void *data, size_t len);
/* The "program" bytes of a vector or integration JSON file (nub gas). */
int cli_read_json_program(const char *path, uint8_t **program, size_t *len);
/* Parse an unsigned integer (decimal or 0x hex) that must fit in max. */
bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
bool cli_parse_i64(const char *s, int64_t *out);
/* Parse hex bytes (optional 0x prefix); caller frees *out. */
bool cli_parse_hex(const char *s, uint8_t **out, size_t *len);
/* ISA profile by name; false (with a message) if unknown. */
bool cli_profile(const char *cmd, const char *name, nub_pvm_profile *out);
/* Engine by name: "interp" or "jit"; NULL (with a message) if unknown. */
const nub_pvm_engine *cli_engine(const char *name);
/* Prints "nub <cmd>: <message>" to stderr and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Commands and their option tables */
extern const cli_spec cli_vectors_spec, cli_gas_spec, cli_link_spec, cli_run_spec, cli_exec_spec, cli_bench_spec,
    cli_fuzz_diff_spec, cli_disasm_spec, cli_asm_spec, cli_cap_spec;
int cmd_vectors(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_fuzz_diff(int argc, char **argv);
int cmd_cap(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_disasm(int argc, char **argv);
int cmd_asm(int argc, char **argv);
int cmd_gas(int argc, char **argv);
/* The mnemonic table of docs/asm.md (nub asm --mnemonics). */
void cli_print_mnemonics(FILE *f);
int cmd_link(int argc, char **argv);
/* nub bench invoke (tools/bench_invoke.c) */
int bench_invoke(int argc, char **argv);
/* nub bench recovery (tools/bench_recovery.c) */
int bench_recovery(int argc, char **argv);
/* nub bench cache (tools/bench_cache.c) */
int bench_cache(int argc, char **argv);
/* nub bench lanes (tools/bench_lanes.c) */
int bench_lanes(int argc, char **argv);
/* nub bench subvm (tools/bench_subvm.c) */
int bench_subvm(int argc, char **argv);

/* nub bench programs (tools/bench_programs.c) */
int bench_programs(int argc, char **argv);

#endif
