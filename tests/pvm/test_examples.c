/*
** examples/: every NAME.s assembles to the committed NAME.pvm, and the
** programs compute what their comments promise under the interpreter.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "cli.h"

typedef struct run_case {
  const char *example;
  uint64_t args[2];
  unsigned nargs;
  int status;
  uint64_t r7;
  bool in_regs;        /* a generic blob taking its arguments in r7, r8 (nub exec) */
} run_case;

static const run_case runs[] = {
  {"add", {2, 40}, 2, PVM_HALT, 42, false},
  {"add", {UINT64_MAX, 2}, 2, PVM_HALT, 1, false},
  {"add", {1}, 1, PVM_PANIC, 0, false},
  {"fib", {0}, 1, PVM_HALT, 0, false},
  {"fib", {1}, 1, PVM_HALT, 1, false},
  {"fib", {10}, 1, PVM_HALT, 55, false},
  {"fib", {93}, 1, PVM_HALT, 12200160415121876738ull, false},
  {"fib", {0}, 0, PVM_PANIC, 0, false},
  {"add_regs", {20, 22}, 2, PVM_HALT, 42, true},
  {"add_regs", {UINT64_MAX, 2}, 2, PVM_HALT, 1, true},
};
#define NRUNS (sizeof runs / sizeof runs[0])

static void path_of(char *out, size_t n, const char *name, const char *ext) {
  snprintf(out, n, "%s/examples/%s%s", getenv("NUB_SOURCE_DIR"), name, ext);
}

static void test_sources_match_binaries(void **state) {
  (void)state;
  char dir[4096], path[4200];
  unsigned checked = 0;
  assert_non_null(getenv("NUB_SOURCE_DIR"));
  snprintf(dir, sizeof dir, "%s/examples", getenv("NUB_SOURCE_DIR"));
  DIR *d = opendir(dir);
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name);
    if (l < 3 || strcmp(e->d_name + l - 2, ".s")) continue;
    char name[256];
    uint8_t *text, *want, *got;
    size_t text_len, want_len, got_len;
    bool spi;
    nub_pvm_error err;
    snprintf(name, sizeof name, "%.*s", (int)(l - 2), e->d_name);
    path_of(path, sizeof path, name, ".s");
    assert_int_equal(cli_read_file(path, &text, &text_len), 0);
    path_of(path, sizeof path, name, ".pvm");
    if (cli_read_file(path, &want, &want_len)) fail_msg("%s.s has no committed %s", name, path);
    if (nub_pvm_asm(PVM_PROFILE_GP07, (const char *)text, text_len, &got, &got_len, &spi, &err))
      fail_msg("%s.s: %s", name, err.msg);
    if (got_len != want_len || memcmp(got, want, got_len))
      fail_msg("%s.s no longer assembles to %s.pvm: run `make examples`", name, name);
    bool covered = false;
    for (size_t i = 0; i < NRUNS; i++) covered |= !strcmp(runs[i].example, name);
    if (!covered) fail_msg("example %s has no run case", name);
    free(text);
    free(want);
    free(got);
    checked++;
  }
  closedir(d);
  print_message("%u examples match their binaries\n", checked);
  assert_true(checked >= 2);
}

/* Run a loaded program on the interpreter from pc 0 with the given
** registers, then free it and its memory. */
static void run_loaded(nub_pvm_program *prog, nub_pvm_mem *mem, const uint64_t regs[PVM_REGS],
                       nub_pvm_vm *out) {
  nub_pvm_vm vm;
  nub_pvm_error err;
  if (nub_pvm_vm_init(&vm, prog, mem, &nub_pvm_engine_interp, NULL, &err)) fail_msg("load: %s", err.msg);
  memcpy(vm.regs, regs, sizeof vm.regs);
  vm.gas = 1000000;
  nub_pvm_vm_set_pc(&vm, 0);
  nub_pvm_vm_run(&vm);
  *out = vm;
  nub_pvm_vm_fini(&vm);
  nub_pvm_program_free(prog);
  nub_pvm_mem_free(mem);
}

/* Load an SPI program with arguments and run it. */
static void run_spi(const uint8_t *bytes, size_t len, const uint8_t *args, uint32_t args_len,
                    nub_pvm_vm *out) {
  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  nub_pvm_mem *mem;
  nub_pvm_program *prog;
  nub_pvm_error err;
  if (nub_pvm_spi_parse(bytes, bytes + len, &spi, &err) ||
      nub_pvm_spi_layout_compute(&spi, args_len, &lay, &err) || nub_pvm_mem_new(&mem, &err) ||
      nub_pvm_spi_load_memory(mem, &spi, &lay, args, args_len, &err) ||
      nub_pvm_program_load(PVM_PROFILE_GP07, spi.code_blob, spi.code_blob_len, &prog, &err))
    fail_msg("load: %s", err.msg);
  run_loaded(prog, mem, lay.regs, out);
}

/* Load a generic blob with r7, r8 = args (what nub exec --regs sets). */
static void run_generic(const uint8_t *bytes, size_t len, const uint64_t args[2], nub_pvm_vm *out) {
  nub_pvm_mem *mem;
  nub_pvm_program *prog;
  nub_pvm_error err;
  uint64_t regs[PVM_REGS] = {0};
  if (nub_pvm_mem_new(&mem, &err) || nub_pvm_program_load(PVM_PROFILE_GP07, bytes, len, &prog, &err))
    fail_msg("load: %s", err.msg);
  regs[7] = args[0];
  regs[8] = args[1];
  run_loaded(prog, mem, regs, out);
}

static void test_examples_compute(void **state) {
  (void)state;
  char path[4200];
  for (size_t i = 0; i < NRUNS; i++) {
    const run_case *c = &runs[i];
    uint8_t *bytes, args[16];
    size_t len;
    nub_pvm_vm vm;
    for (unsigned k = 0; k < c->nargs; k++)
      for (unsigned b = 0; b < 8; b++) args[8 * k + b] = (uint8_t)(c->args[k] >> (8 * b));
    path_of(path, sizeof path, c->example, ".pvm");
    assert_int_equal(cli_read_file(path, &bytes, &len), 0);
    if (c->in_regs) run_generic(bytes, len, c->args, &vm);
    else run_spi(bytes, len, args, 8 * c->nargs, &vm);
    if (vm.status != c->status || (c->status == PVM_HALT && vm.regs[7] != c->r7))
      fail_msg("%s(%u args): status %s r7 %llu, want %s %llu", c->example, c->nargs,
               nub_pvm_status_name(vm.status), (unsigned long long)vm.regs[7],
               nub_pvm_status_name(c->status), (unsigned long long)c->r7);
    free(bytes);
  }
  print_message("%zu example runs\n", NRUNS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sources_match_binaries),
    cmocka_unit_test(test_examples_compute),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
