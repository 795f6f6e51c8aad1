/*
** What a new user meets on the command line (issue 13), one table row per
** behaviour: the argv of a command, its exit code and text its stdout or
** stderr must (or must not) hold.  "$SRC/" in an argument is the source
** tree, "$TMP/" a scratch directory made for the run.
*/
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "nub/nub.h"

typedef int (*command_fn)(int argc, char **argv);

static char tmp_dir[64];
static char src_dir[4096];

static command_fn command(const char *name) {
  static const struct { const char *name; command_fn fn; } cmds[] = {
    {"run", cmd_run}, {"exec", cmd_exec}, {"disasm", cmd_disasm}, {"asm", cmd_asm},
    {"vectors", cmd_vectors}, {"cap", cmd_cap}, {"fuzz-diff", cmd_fuzz_diff}, {"bench", cmd_bench},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(cmds[i].name, name)) return cmds[i].fn;
  fail_msg("no command %s", name);
  return NULL;
}

static char *slurp(FILE *f) {
  long n = ftell(f);
  char *s = calloc((size_t)n + 1, 1);
  rewind(f);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return s;
}

/* Run argv (NULL-terminated, placeholders expanded) with stdout and stderr
** captured apart. */
static int run_cli(const char *const *args, char **out, char **err) {
  char *argv[32], buf[32][4200];
  int argc = 0;
  for (; args[argc]; argc++) {
    const char *a = args[argc];
    if (!strncmp(a, "$SRC/", 5)) snprintf(buf[argc], sizeof buf[argc], "%s/%s", src_dir, a + 5);
    else if (!strncmp(a, "$TMP/", 5)) snprintf(buf[argc], sizeof buf[argc], "%s/%s", tmp_dir, a + 5);
    else snprintf(buf[argc], sizeof buf[argc], "%s", a);
    argv[argc] = buf[argc];
  }
  argv[argc] = NULL;
  FILE *fo = tmpfile(), *fe = tmpfile();
  int saved_out = dup(1), saved_err = dup(2), rc;
  fflush(stdout);
  fflush(stderr);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  rc = command(argv[0])(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  *out = slurp(fo);
  *err = slurp(fe);
  return rc;
}

static unsigned count(const char *text, const char *part) {
  unsigned n = 0;
  for (const char *p = text; (p = strstr(p, part)); p += strlen(part)) n++;
  return n;
}

typedef struct cli_case {
  int item;                  /* of issue 13's CLI list */
  const char *why;
  const char *argv[16];
  int rc;
  const char *out[3];        /* in stdout */
  const char *err[2];        /* in stderr */
  const char *once;          /* exactly once in stdout + stderr */
  bool json;                 /* stdout is one JSON object on one line */
} cli_case;

#define FIB "$SRC/examples/fib.pvm"
#define ADD "$SRC/examples/add.pvm"
#define ADD_REGS "$SRC/examples/add_regs.pvm"
#define ARG10 "0a00000000000000"

/* rows leave trailing fields out: they are zero */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const cli_case cases[] = {
  /* 1. help with defaults, --opt=value, missing values */
  {1, "run --help", {"run", "--help"}, 0,
   {"usage: nub run FILE", "(default: 1000000000)", "(default: interp)"}, {0}, "--format"},
  {1, "run --help: format default", {"run", "-h"}, 0, {"(default: auto)", "(default: gp07)"}},
  {1, "exec --help", {"exec", "--help"}, 0, {"(default: proc)", "(default: jit)", "--data HEX"}},
  {1, "disasm --help", {"disasm", "--help"}, 0, {"usage: nub disasm FILE", "(default: 4194304)"}},
  {1, "asm --help", {"asm", "--help"}, 0, {"usage: nub asm FILE.s", "--mnemonics"}},
  {1, "vectors --help", {"vectors", "--help"}, 0, {"usage: nub vectors DIR|FILE...", "(default: interp)"}},
  {1, "fuzz-diff --help", {"fuzz-diff", "--help"}, 0, {"(default: 10000)", "(default: 48)"}},
  {1, "cap --help", {"cap", "--help"}, 0, {"build PROGRAM -o DIR"}},
  {1, "bench --help", {"bench", "--help"}, 0, {"usage: nub bench interp|jit|compile|gas|hash|invoke|cache|recovery|programs|subvm"}},
  {1, "--opt=value", {"run", FIB, "--format=spi", "--data=" ARG10}, 0, {"status: halt", "r7      0x0000000000000037  55"}},
  {1, "a missing value", {"run", FIB, "--format"}, 2, {0}, {"nub run: --format needs a value"}},
  {1, "an empty =value", {"exec", FIB, "--gas="}, 2, {0}, {"nub exec: --gas needs a value"}},
  {1, "a flag with a value", {"run", FIB, "--json=1"}, 2, {0}, {"--json takes no value"}},
  {1, "an unknown option", {"disasm", FIB, "--frmat", "spi"}, 2, {0}, {"unknown option --frmat (see nub disasm --help)"}},
  {1, "fuzz-diff value check", {"fuzz-diff", "--reports"}, 2, {0}, {"--reports needs a value"}},
  /* 2. formats */
  {2, "SPI detected", {"run", ADD, "--data", "02000000000000002800000000000000"}, 0, {"r7      0x000000000000002a  42"}},
  {2, "generic detected", {"exec", ADD_REGS, "--regs", "20,22", "--backend", "inproc"}, 0, {"return_value:  42"}},
  {2, "SPI as generic: a hint, one offset", {"run", ADD, "--format", "generic"}, 1, {0},
   {"this looks like an SPI program: try --format spi"}, "offset 3"},
  {2, "generic as SPI: a hint", {"exec", ADD_REGS, "--format", "spi", "--backend", "inproc"}, 1, {0},
   {"this looks like a generic blob: try --format generic"}},
  {2, "empty file", {"run", "$TMP/empty.pvm"}, 1, {0}, {"empty.pvm: empty file"}},
  {2, "assembler text", {"exec", "$SRC/examples/fib.s"}, 1, {0}, {"looks like assembler text, not a program: assemble it first"}},
  {2, "disasm detects too", {"disasm", ADD}, 0, {"; SPI container"}},
  /* 3. arguments mean one thing on run and exec */
  {3, "run --data", {"run", FIB, "--data", ARG10}, 0, {"r7      0x0000000000000037  55"}},
  {3, "exec --data", {"exec", FIB, "--data", ARG10, "--backend", "inproc"}, 0, {"return_value:  55 (0x37)", "exit_reason:   0 (halt)"}},
  {3, "exec SPI without data: fib's own length check traps", {"exec", FIB, "--backend", "inproc"}, 0, {"exit_reason:   1 (panic)"}},
  {3, "run --regs", {"run", ADD_REGS, "--regs", "20,22"}, 0, {"r7      0x000000000000002a  42"}},
  {3, "an empty register value", {"exec", FIB, "--regs", "1,,2"}, 2, {0}, {"--regs 1,,2: value 2 is empty"}},
  {3, "five registers", {"run", FIB, "--regs", "1,2,3,4,5"}, 2, {0}, {"more than 4 values"}},
  {3, "--args is --regs", {"exec", ADD_REGS, "--args", "20,22", "--backend", "inproc"}, 0, {"return_value:  42"}},
  {3, "--args and --regs", {"run", FIB, "--args", "1", "--regs", "1"}, 2, {0}, {"--args is the older spelling of --regs"}},
  {3, "--data on a generic blob", {"run", ADD_REGS, "--data", "00"}, 2, {0}, {"--data needs an SPI program"}},
  {3, "--data not hex", {"exec", FIB, "--data", "xyz"}, 2, {0}, {"--data must be hex bytes"}},
  /* 4. options checked before any work, one gas range */
  {4, "engine before the guest", {"exec", "/nonexistent", "--engine", "foo"}, 2, {0}, {"--engine must be jit or interp, not 'foo'"}},
  {4, "run gas range", {"run", "/nonexistent", "--gas", "-1"}, 2, {0}, {"--gas must be 0..9223372036854775807, not -1"}},
  {4, "exec gas range", {"exec", "/nonexistent", "--gas", "9223372036854775808"}, 2, {0}, {"--gas must be 0..9223372036854775807, not 9223372036854775808"}},
  {4, "endpoint range", {"exec", "/nonexistent", "--endpoint", "256"}, 2, {0}, {"--endpoint must be 0..255, not 256"}},
  {4, "backend choice", {"exec", "/nonexistent", "--backend", "vm"}, 2, {0}, {"--backend must be proc or inproc, not 'vm'"}},
  {4, "profile choice", {"run", "/nonexistent", "--profile", "gp09"}, 2, {0}, {"--profile must be gp07, gp08-draft or jamv1, not 'gp09'"}},
  /* 5. results people can read; --json is JSON only */
  {5, "kernel error by name", {"exec", ADD_REGS, "--endpoint", "5", "--backend", "inproc"}, 0,
   {"exit_reason:   4294967295 (kernel-error)", "exit_arg:      25 (no endpoint with the key: 5)"}},
  {5, "exec --json --verbose", {"exec", ADD_REGS, "--regs", "20,22", "--backend", "inproc", "--json", "-v"}, 0,
   {"\"return_value\":42"}, {"backend    inproc"}, NULL, true},
  {5, "exec --json kernel error", {"exec", ADD_REGS, "--endpoint", "7", "--backend", "inproc", "--json"}, 0,
   {"\"kernel_error\":\"no endpoint with the key\""}, {0}, NULL, true},
  {5, "run --json", {"run", FIB, "--data", ARG10, "--json"}, 0, {"\"status\":\"halt\""}, {0}, NULL, true},
  /* 6. vectors */
  {6, "non-vector JSON: one line", {"vectors", "$SRC/tests/vectors/caps"}, 1, {"0 passed, 0 failed"},
   {"JSON files that are not PVM vectors (no \"program\" member)", "no PVM vector found"}, "not PVM vectors"},
  {6, "an empty directory", {"vectors", "$TMP/none"}, 1, {"0 passed, 0 failed"}, {"no PVM vector found"}},
  {6, "subdirectories", {"vectors", "$TMP/nested"}, 0, {"1 passed, 0 failed"}},
  /* 7. caps from the command line */
  {7, "cap build", {"cap", "build", FIB, "--data", ARG10, "-o", "$TMP/caps"}, 0, {"instance", "/caps/image.cap", "/caps/data-0.cap"}},
  {7, "cap show a built cap", {"cap", "show", "$TMP/caps/instance.cap"}, 0, {"kind:      instance"}},
  {7, "exec a directory of caps", {"exec", "$TMP/caps", "--backend", "inproc"}, 0, {"return_value:  55"}},
  {7, "exec a directory without an Instance", {"exec", "$TMP/none", "--backend", "inproc"}, 1, {0}, {"needs exactly one"}},
  {7, "cap build needs -o", {"cap", "build", FIB}, 2, {0}, {"build needs an output directory (-o DIR)"}},
  /* 8. trace and panic reasons */
  {8, "trace operands and changes", {"run", ADD, "--data", "02000000000000002800000000000000", "--trace"}, 0,
   {"status: halt"}, {"load_ind_u64 r9, r7, 0", "-> r9=0x2"}},
  {8, "trap", {"run", "$TMP/trap.pvm"}, 0, {"panic:  trap instruction"}},
  {8, "invalid opcode", {"run", "$TMP/invalid.pvm"}, 0, {"panic:  invalid opcode 0xff"}},
  {8, "jump into a block", {"run", "$TMP/midblock.pvm"}, 0, {"panic:  jump to pc 3, which does not start a basic block"}},
  {8, "entry inside an instruction", {"run", "$TMP/midblock.pvm", "--pc", "1"}, 0, {"panic:  pc 1 is not an instruction start"}},
  {8, "djump to a bad address", {"run", "$TMP/djump.pvm"}, 0, {"jump_ind to address 0x3, not a jump table entry"}},
  {8, "store to a read-only page", {"run", "$TMP/rostore.pvm"}, 0, {"store_imm_u8 store to read-only address 0x10000"}},
  {8, "access below 0x10000", {"run", "$TMP/low.pvm"}, 0, {"below 0x10000"}},
  {8, "panic reason in JSON", {"run", "$TMP/trap.pvm", "--json"}, 0, {"\"panic_reason\":\"trap instruction\""}, {0}, NULL, true},
  /* 9. assembler */
  {9, "label in a block", {"asm", "$TMP/midlabel.s", "-o", "$TMP/midlabel.pvm"}, 1, {0},
   {"midlabel.s:3:1: label L17 is a branch target but does not start a basic block: put a terminator or `fallthrough` before it"}},
};
#pragma GCC diagnostic pop

/* Programs the panic rows run, assembled here. */
static const struct { const char *name, *text; } programs[] = {
  {"trap.pvm", "trap\n"},
  {"invalid.pvm", ".insn ff\n"},
  {"midblock.pvm", "load_imm r1, 1\nload_imm r2, 2\njump 3\n"},
  {"djump.pvm", "load_imm r1, 3\njump_ind r1, 0\n"},
  {"rostore.pvm", ".ro_data\n.byte 1\n.code\nstore_imm_u8 0x10000, 5\ntrap\n"},
  {"low.pvm", "store_imm_u8 0x100, 1\ntrap\n"},
};

static void write_text(const char *name, const void *p, size_t n) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static void make_inputs(void) {
  char path[4400], *text = NULL;
  size_t len;
  snprintf(path, sizeof path, "%s/none", tmp_dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/nested", tmp_dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/nested/sub", tmp_dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/tests/vectors/w3f-pvm/inst_add_32.json", src_dir);
  assert_int_equal(cli_read_file(path, (uint8_t **)&text, &len), 0);
  write_text("nested/sub/inst_add_32.json", text, len);
  free(text);
  write_text("empty.pvm", "", 0);
  static const char midlabel[] = "load_imm r1, 1\nload_imm r2, 2\nL17:\n  add_64 r1, r1, r2\n  jump L17\n";
  write_text("midlabel.s", midlabel, strlen(midlabel));
  for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
    uint8_t *blob;
    size_t n;
    nub_pvm_error err;
    if (nub_pvm_asm(PVM_PROFILE_GP07, programs[i].text, strlen(programs[i].text), &blob, &n, NULL, &err))
      fail_msg("%s: %s", programs[i].name, err.msg);
    write_text(programs[i].name, blob, n);
    free(blob);
  }
}

static void is_one_json_line(const char *why, const char *out) {
  size_t n = strlen(out);
  if (n < 3 || out[0] != '{' || out[n - 1] != '\n' || out[n - 2] != '}' || count(out, "\n") != 1)
    fail_msg("%s: stdout is not one JSON object: '%s'", why, out);
}

static int selected;         /* CLI_ITEM: run that item's rows and tests only; 0: all */

static void every_case_behaves(void **state) {
  (void)state;
  unsigned checked = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const cli_case *c = &cases[i];
    if (selected && c->item != selected) continue;
    char *out, *err;
    int rc = run_cli(c->argv, &out, &err);
    bool ok = rc == c->rc;
    for (int k = 0; k < 3 && c->out[k]; k++) ok = ok && strstr(out, c->out[k]);
    for (int k = 0; k < 2 && c->err[k]; k++) ok = ok && strstr(err, c->err[k]);
    if (c->once) ok = ok && count(out, c->once) + count(err, c->once) == 1;
    if (!ok)
      fail_msg("%s: rc %d (want %d)\nstdout: %s\nstderr: %s", c->why, rc, c->rc, out, err);
    if (c->json) is_one_json_line(c->why, out);
    free(out);
    free(err);
    checked++;
  }
  print_message("%u command lines checked\n", checked);
  assert_true(checked > 0);
}

/* `nub run` and `nub exec` give fib(n) for the same --data, for several n. */
static void run_and_exec_agree_on_fib(void **state) {
  (void)state;
  static const char *const ns[] = {"0000000000000000", "0100000000000000", ARG10, "5a00000000000000"};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    const char *run_argv[] = {"run", FIB, "--data", ns[i], "--json", NULL};
    const char *exec_argv[] = {"exec", FIB, "--data", ns[i], "--backend", "inproc", "--json", NULL};
    char *out, *err, *xout, *xerr;
    unsigned long long r7, ret;
    assert_int_equal(run_cli(run_argv, &out, &err), 0);
    assert_int_equal(run_cli(exec_argv, &xout, &xerr), 0);
    const char *regs = strstr(out, "\"regs\":[");
    assert_non_null(regs);
    for (int k = 0; k < 7; k++) regs = strchr(regs + 1, ',');   /* to r7 */
    assert_int_equal(sscanf(regs + 1, "%llu", &r7), 1);
    const char *rv = strstr(xout, "\"return_value\":");
    assert_non_null(rv);
    assert_int_equal(sscanf(rv + 15, "%llu", &ret), 1);
    assert_non_null(strstr(out, "\"status\":\"halt\""));
    assert_non_null(strstr(xout, "\"exit_reason\":0,"));
    if (r7 != ret) fail_msg("fib %s: run r7 %llu, exec %llu", ns[i], r7, ret);
    print_message("fib(%s): %llu on run and exec\n", ns[i], r7);
    free(out); free(err); free(xout); free(xerr);
  }
}

/* The kernel error table: every code of include/nub/abi.h has its own name. */
static void kernel_errors_have_names(void **state) {
  (void)state;
  static const uint32_t codes[] = {NUB_KERR_BAD_PACKET, NUB_KERR_INSTANCE_NOT_FOUND,
    NUB_KERR_NOT_AN_INSTANCE, NUB_KERR_IMAGE_NOT_FOUND, NUB_KERR_NOT_AN_IMAGE,
    NUB_KERR_ENDPOINT_NOT_FOUND, NUB_KERR_MEMORY, 27, NUB_KERR_COMPILE_FAILED};
  const char *unknown = nub_kernel_error_name(999);
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *name = nub_kernel_error_name(codes[i]);
    if (!strcmp(name, unknown)) fail_msg("kernel error %u has no name", codes[i]);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(name, nub_kernel_error_name(codes[j]))) fail_msg("codes %u and %u share a name", codes[i], codes[j]);
  }
}

/* The choice metavar of --profile lists the profiles in nub_pvm_profile order
** (cli_choice's index is the profile). */
static void profile_choices_follow_the_enum(void **state) {
  (void)state;
  char want[128] = "";
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    size_t n = strlen(want);
    snprintf(want + n, sizeof want - n, "%s%s", p ? "|" : "", nub_pvm_profile_name((nub_pvm_profile)p));
  }
  assert_string_equal(want, CLI_PROFILES);
}

/* docs/asm.md carries the output of `nub asm --mnemonics` between markers. */
static void the_mnemonic_table_in_docs_is_current(void **state) {
  (void)state;
  static const char begin[] = "<!-- mnemonics: generated by `nub asm --mnemonics`, do not edit -->\n";
  static const char end[] = "<!-- end mnemonics -->";
  char path[4400], *doc, *out, *err;
  size_t len;
  const char *argv[] = {"asm", "--mnemonics", NULL};
  snprintf(path, sizeof path, "%s/docs/asm.md", src_dir);
  assert_int_equal(cli_read_file(path, (uint8_t **)&doc, &len), 0);
  doc = realloc(doc, len + 1);
  doc[len] = 0;
  assert_int_equal(run_cli(argv, &out, &err), 0);
  char *b = strstr(doc, begin), *e = b ? strstr(b, end) : NULL;
  if (!b || !e) fail_msg("docs/asm.md lacks the mnemonic table markers");
  b += strlen(begin);
  *e = 0;
  if (strcmp(b, out))
    fail_msg("docs/asm.md's mnemonic table is stale: replace it with the output of "
             "`nub asm --mnemonics`:\n%s", out);
  assert_true(count(out, "\n| `") > 100);
  free(doc);
  free(out);
  free(err);
}

/* The front end itself (tools/nub.c): --version and `nub help CMD`. */
static void version_and_help_command(void **state) {
  (void)state;
  static const struct { const char *args, *want; } runs[] = {
    {"--version", "nub 0.1."}, {"help run", "(default: 1000000000)"}, {"exec --help", "(default: proc)"},
    {"", "exit codes: 0 done, 1 failed"},
  };
  const char *bin = getenv("NUB_BINARY_DIR");
  assert_non_null(bin);
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char cmd[4400], buf[8192];
    snprintf(cmd, sizeof cmd, "%s/nub %s 2>&1", bin, runs[i].args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    pclose(p);
    if (!strstr(buf, runs[i].want)) fail_msg("nub %s printed '%s'", runs[i].args, buf);
  }
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4400];
  if (!d) return;
  while ((e = readdir(d))) {
    struct stat st;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (!lstat(path, &st) && S_ISDIR(st.st_mode)) remove_tree(path);
    else unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static int setup(void **state) {
  (void)state;
  const char *src = getenv("NUB_SOURCE_DIR");
  snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nub-cli-usage-XXXXXX");
  if (!mkdtemp(tmp_dir)) return -1;
  make_inputs();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  remove_tree(tmp_dir);
  return 0;
}

int main(void) {
  static const struct { int item; struct CMUnitTest test; } all[] = {
    {0, cmocka_unit_test(every_case_behaves)},
    {1, cmocka_unit_test(profile_choices_follow_the_enum)},
    {1, cmocka_unit_test(version_and_help_command)},
    {3, cmocka_unit_test(run_and_exec_agree_on_fib)},
    {5, cmocka_unit_test(kernel_errors_have_names)},
    {9, cmocka_unit_test(the_mnemonic_table_in_docs_is_current)},
  };
  struct CMUnitTest tests[sizeof all / sizeof all[0]];
  size_t n = 0;
  const char *item = getenv("CLI_ITEM");
  selected = item ? atoi(item) : 0;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (!selected || !all[i].item || all[i].item == selected) tests[n++] = all[i].test;
  return _cmocka_run_group_tests("test_cli_usage", tests, n, setup, teardown);
}
