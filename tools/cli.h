/*
** Shared helpers of the nub command line.
*/
#ifndef NUB_CLI_H
#define NUB_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nub/cap.h"
#include "nub/pvm.h"

typedef struct cli_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);   /* argv[0] is the command name */
} cli_command;

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
/* Parse an unsigned integer (decimal or 0x hex) that must fit in max. */
bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
bool cli_parse_i64(const char *s, int64_t *out);
/* Parse hex bytes (optional 0x prefix); caller frees *out. */
bool cli_parse_hex(const char *s, uint8_t **out, size_t *len);
/* ISA profile by name; false (with a message) if unknown. */
bool cli_profile(const char *cmd, const char *name, pvm_profile *out);
/* Engine by name: "interp" or "jit"; NULL (with a message) if unknown. */
const pvm_engine *cli_engine(const char *name);
/* Prints "nub <cmd>: <message>" to stderr and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Commands */
int cmd_vectors(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_fuzz_diff(int argc, char **argv);
int cmd_cap(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_disasm(int argc, char **argv);
int cmd_asm(int argc, char **argv);
/* nub bench invoke (tools/bench_invoke.c) */
int bench_invoke(int argc, char **argv);
/* nub bench recovery (tools/bench_recovery.c) */
int bench_recovery(int argc, char **argv);
/* nub bench cache (tools/bench_cache.c) */
int bench_cache(int argc, char **argv);
/* nub bench subvm (tools/bench_subvm.c) */
int bench_subvm(int argc, char **argv);

#endif
