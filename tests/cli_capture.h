/*
** Running a CLI command in-process with stdout and stderr captured, and
** temporary input files, for the tests of tools/.  Include after
** <cmocka.h>.
*/
#ifndef NUB_TESTS_CLI_CAPTURE_H
#define NUB_TESTS_CLI_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fn(ctx) with stdout and stderr captured into *out (the caller frees);
** returns fn's result. */
static inline int cli_capture_call(int (*fn)(void *ctx), void *ctx, char **out) {
  FILE *cap = tmpfile();
  assert_non_null(cap);
  int saved_out = dup(1), saved_err = dup(2);
  fflush(stdout);
  fflush(stderr);
  dup2(fileno(cap), 1);
  dup2(fileno(cap), 2);
  int rc = fn(ctx);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  long n = ftell(cap);
  rewind(cap);
  *out = calloc((size_t)n + 1, 1);
  assert_int_equal(fread(*out, 1, (size_t)n, cap), (size_t)n);
  fclose(cap);
  return rc;
}

/* fn(argc, argv) with argv NULL-terminated; its output into *out (the
** caller frees); returns fn's exit code. */
typedef int (*cli_command_fn)(int argc, char **argv);

typedef struct cli_command_call {
  cli_command_fn fn;
  char **argv;
} cli_command_call;

static inline int cli_command_run(void *ctx) {
  cli_command_call *c = ctx;
  int argc = 0;
  while (c->argv[argc]) argc++;
  return c->fn(argc, c->argv);
}

static inline int cli_capture(cli_command_fn fn, char **argv, char **out) {
  cli_command_call c = {fn, argv};
  return cli_capture_call(cli_command_run, &c, out);
}

/* A temporary file holding p[0..n); the caller unlinks and frees the path. */
static inline char *cli_write_temp(const void *p, size_t n) {
  char *path = strdup("/tmp/nub-cli-test-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
  return path;
}

#endif
