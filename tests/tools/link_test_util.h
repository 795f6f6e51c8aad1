/*
** Helpers of the nub link tests: find clang-19 / ld.lld-19 / qemu-riscv64,
** compile and link RISC-V sources in a private temporary directory with
** the flags of docs/toolchain.md, and link them for PVM.
**
** A missing tool skips the test (exit 77, CTest SKIP_RETURN_CODE) with a
** loud reason -- except under CI=true, where it is a failure:
** scripts/deps.sh installs every tool.
*/
#ifndef LINK_TEST_UTIL_H
#define LINK_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"

#define LT_CFLAGS \
  "--target=riscv64 -march=rv64emac_zbb -mabi=lp64e -mcmodel=medlow -mno-relax -fno-pic " \
  "-msmall-data-limit=0 -ffreestanding -fno-builtin -ffunction-sections -fdata-sections -O2"

static char lt_dir[64];

/* 0 when every tool is on PATH; otherwise exits (77, or 1 under CI=true). */
static void lt_require_tools(const char *test, const char *const *tools) {
  for (; *tools; tools++) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", *tools);
    if (system(cmd) != 0) {
      const char *ci = getenv("CI");
      bool in_ci = ci && !strcmp(ci, "true");
      fprintf(stderr,
              "\n*** %s: %s: %s is not installed (scripts/deps.sh installs it) ***\n\n",
              test, in_ci ? "FAILED under CI=true" : "SKIPPED", *tools);
      exit(in_ci ? 1 : 77);
    }
  }
  snprintf(lt_dir, sizeof lt_dir, "/tmp/nub-link-test-XXXXXX");
  if (!mkdtemp(lt_dir)) {
    perror("mkdtemp");
    exit(1);
  }
}

static void lt_cleanup(void) {
  char cmd[128];
  if (!lt_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf %s", lt_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", lt_dir);
}

/* Runs a shell command (printf-style); returns its exit status. */
__attribute__((format(printf, 1, 2)))
static int lt_sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

static uint8_t *lt_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  uint8_t *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

#endif
