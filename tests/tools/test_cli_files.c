/*
** Input limits of the command line (tools/cli.c): every file a command
** reads is at most CLI_MAX_FILE_BYTES, refused before reading when its
** size is known and after max + 1 bytes when not (pipes, devices), with
** a message naming the file, its size and the limit; `nub disasm` takes
** at most CLI_DISASM_MAX_INPUT unless --max-input raises it.  Large files
** are sparse, so nothing here reads or allocates much.
*/
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "cli_capture.h"

/* A file of size bytes (sparse: holes read as zeros). */
static char *sparse_file(off_t size) {
  char *path = strdup("/tmp/nub-cli-limit-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, size), 0);
  close(fd);
  return path;
}

static void expect_has(const char *text, const char *part) {
  if (!strstr(text, part)) fail_msg("output '%s' lacks '%s'", text, part);
}

typedef struct read_case {
  const char *path;          /* NULL: a sparse file of size bytes */
  off_t size;
  size_t max;
  int rc;
  const char *says[2];       /* parts of the message when refused */
} read_case;

static size_t read_len;

static int do_read(void *ctx) {
  read_case *c = ctx;
  uint8_t *data = NULL;
  int rc = cli_read_file_max(c->path, c->max, "; hint", &data, &read_len);
  free(data);
  return rc;
}

static int do_read_default(void *ctx) {
  read_case *c = ctx;
  uint8_t *data = NULL;
  int rc = cli_read_file(c->path, &data, &read_len);
  free(data);
  return rc;
}

static void files_are_read_up_to_their_limit(void **state) {
  (void)state;
  read_case cases[] = {
    {NULL, 0, 1000, 0, {NULL, NULL}},
    {NULL, 1000, 1000, 0, {NULL, NULL}},
    {NULL, 1001, 1000, -1, {"is 1001 bytes", "over the limit of 1000 bytes; hint"}},
    {NULL, 300000, 65536, -1, {"is 300000 bytes", "limit of 65536 bytes"}},
    {"/dev/zero", 0, 1000, -1, {"/dev/zero holds more than 1000 bytes", "limit of 1000 bytes"}},
    {"/dev/zero", 0, 200000, -1, {"holds more than 200000 bytes", "; hint"}},
    {"/dev/null", 0, 1000, 0, {NULL, NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    read_case c = cases[i];
    char *made = c.path ? NULL : sparse_file(c.size), *out;
    if (made) c.path = made;
    int rc = cli_capture_call(do_read, &c, &out);
    print_message("    %s (%lld bytes, max %zu): rc %d %s", c.path, (long long)c.size, c.max, rc,
                  out[0] ? out : "\n");
    assert_int_equal(rc, c.rc);
    if (rc == 0) {
      assert_int_equal(read_len, (size_t)c.size);
      assert_string_equal(out, "");
    }
    for (int k = 0; k < 2 && c.says[k]; k++) expect_has(out, c.says[k]);
    if (made) {
      if (rc) expect_has(out, made);     /* the message names the file */
      unlink(made);
      free(made);
    }
    free(out);
  }
}

/* Every command's default: 256 MiB, refused from the size alone. */
static void files_above_the_largest_blob_are_refused(void **state) {
  (void)state;
  read_case c = {NULL, (off_t)CLI_MAX_FILE_BYTES + 1, 0, -1, {NULL, NULL}};
  char *path = sparse_file(c.size), *out, want[128];
  c.path = path;
  assert_int_equal(cli_capture_call(do_read_default, &c, &out), -1);
  print_message("    %s", out);
  snprintf(want, sizeof want, "%s is %zu bytes, over the limit of %zu bytes (256 MiB)", path,
           CLI_MAX_FILE_BYTES + 1, CLI_MAX_FILE_BYTES);
  expect_has(out, want);
  free(out);
  unlink(path);
  free(path);
}

typedef struct disasm_case {
  const char *file;          /* NULL: a sparse file of size bytes */
  off_t size;
  const char *max_input;     /* --max-input, or NULL */
  int rc;
  const char *says;
} disasm_case;

static int do_disasm(void *ctx) {
  disasm_case *c = ctx;
  char *argv[] = {"disasm", (char *)c->file, "--max-input", (char *)c->max_input, NULL};
  return cmd_disasm(c->max_input ? 4 : 2, argv);
}

static void disasm_input_is_bounded(void **state) {
  (void)state;
  char example[4096];
  const char *src = getenv("NUB_SOURCE_DIR");
  snprintf(example, sizeof example, "%s/examples/add_regs.pvm", src ? src : ".");
  disasm_case cases[] = {
    {example, 0, NULL, 0, "add_64 r7, r7, r8"},
    {NULL, (off_t)CLI_DISASM_MAX_INPUT + 1, NULL, 1,
     "over the limit of 4194304 bytes (4 MiB); disassembly needs up to ~100 bytes"},
    {NULL, (off_t)CLI_DISASM_MAX_INPUT + 1, NULL, 1, "raise the limit with --max-input BYTES"},
    /* raised: the limit passes, the zeros are then no blob */
    {NULL, (off_t)CLI_DISASM_MAX_INPUT + 1, "5000000", 1, "nub disasm: "},
    {"/dev/zero", 0, NULL, 1, "/dev/zero holds more than 4194304 bytes"},
    {example, 0, "268435457", 2, "--max-input must be 1..268435456, not 268435457"},
    {example, 0, "lots", 2, "--max-input must be 1..268435456, not lots"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    disasm_case c = cases[i];
    char *made = c.file ? NULL : sparse_file(c.size), *out;
    if (made) c.file = made;
    int rc = cli_capture_call(do_disasm, &c, &out);
    char first[200];
    snprintf(first, sizeof first, "%s", out);
    print_message("    disasm %s%s%s: rc %d: %.120s\n", c.file, c.max_input ? " --max-input " : "",
                  c.max_input ? c.max_input : "", rc, strtok(first, "\n") ? first : "");
    assert_int_equal(rc, c.rc);
    expect_has(out, c.says);
    if (c.max_input && c.rc == 1) assert_null(strstr(out, "over the limit"));
    if (made) {
      unlink(made);
      free(made);
    }
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(files_are_read_up_to_their_limit),
    cmocka_unit_test(files_above_the_largest_blob_are_refused),
    cmocka_unit_test(disasm_input_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
