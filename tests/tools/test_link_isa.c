/*
** Instruction coverage of nub link (docs/toolchain.md section 9): every
** RV64EMAC+Zbb instruction form the translator accepts, in
** link_isa/cases.c, runs on every pair of edge inputs (shifts by >= 64,
** division by zero and INT_MIN / -1, 32-bit sign extension, misaligned
** loads and stores, x0 operands, compressed forms, calls, function
** pointers, jump tables, atomics) natively under qemu-riscv64 and as a
** PVM program on the interpreter and the JIT under gp07 and jamv1; every
** result must be equal.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "link_isa/cases.h"
#include "link_test_util.h"
#include "nub/jit.h"

static const char *const case_names[] = {
#define NAME(n) #n,
  ISA_CASES(NAME)
#undef NAME
};
#define NCASES (sizeof case_names / sizeof case_names[0])
static const uint64_t inputs[] = {ISA_INPUTS};
#define NIN (sizeof inputs / sizeof inputs[0])

static uint64_t *native;       /* NCASES * NIN * NIN results from qemu */

static int build_and_run_native(void **state) {
  (void)state;
  const char *src = getenv("NUB_SOURCE_DIR");
  static const char *const tools[] = {"clang-19", "ld.lld-19", "qemu-riscv64", NULL};
  lt_require_tools("test_link_isa", tools);
  if (!src) return -1;
  if (lt_sh("clang-19 " LT_CFLAGS " -c %s/tests/tools/link_isa/cases.c -o %s/cases.o", src, lt_dir) ||
      lt_sh("clang-19 " LT_CFLAGS " -c %s/tests/tools/link_isa/native_main.c -o %s/native.o", src,
            lt_dir) ||
      lt_sh("ld.lld-19 -static %s/cases.o %s/native.o -o %s/native.elf", lt_dir, lt_dir, lt_dir) ||
      lt_sh("ld.lld-19 --emit-relocs -e run_case -T %s/toolchain/pvm.ld %s/cases.o -o %s/pvm.elf",
            src, lt_dir, lt_dir) ||
      lt_sh("qemu-riscv64 %s/native.elf > %s/native.txt", lt_dir, lt_dir))
    return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/native.txt", lt_dir);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  native = calloc(NCASES * NIN * NIN, sizeof *native);
  size_t n = 0;
  unsigned long long v;
  while (n < NCASES * NIN * NIN && fscanf(f, "%llx", &v) == 1) native[n++] = v;
  fclose(f);
  if (n != NCASES * NIN * NIN) {
    fprintf(stderr, "qemu printed %zu results, want %zu\n", n, NCASES * NIN * NIN);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(native);
  lt_cleanup();
  return 0;
}

/* qemu-riscv64 7.2 (Debian 12) computes ctzw of a value whose low word is
** zero and whose bit 63 is set as 63, the 64-bit count; the Zbb spec says
** 32 (count in the least-significant word, 32 when it is zero), which is
** what PVM's trailing_zero_bits_32 gives.  Such results are compared with
** the spec instead, and counted. */
static unsigned qemu_deviations;

static uint64_t spec_value(unsigned c, uint64_t a, uint64_t qemu) {
  if (strcmp(case_names[c], "ctzw")) return qemu;
  uint64_t spec = (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32;
  if (spec != qemu) qemu_deviations++;
  return spec;
}

static void every_form_matches_qemu_on(nub_pvm_profile profile, const nub_pvm_engine *engine) {
  char path[128], msg[512];
  size_t elf_len, spi_len;
  snprintf(path, sizeof path, "%s/pvm.elf", lt_dir);
  uint8_t *elf = lt_read(path, &elf_len), *spi_bytes;
  assert_non_null(elf);
  link_export exp = {0, "run_case"};
  link_options opt = {.profile = profile, .exports = &exp, .export_count = 1, .stack_size = -1};
  if (link_program(elf, elf_len, &opt, &spi_bytes, &spi_len, NULL, msg, sizeof msg))
    fail_msg("nub link: %s", msg);
  free(elf);

  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  nub_pvm_error err;
  nub_pvm_program *prog;
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  void *code = NULL;
  assert_int_equal(nub_pvm_spi_parse(spi_bytes, spi_bytes + spi_len, &spi, &err), 0);
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, 0, &lay, &err), 0);
  assert_int_equal(nub_pvm_program_load(profile, spi.code_blob, spi.code_blob_len, &prog, &err), 0);
  assert_int_equal(nub_pvm_mem_new(&mem, &err), 0);
  assert_int_equal(nub_pvm_spi_load_memory(mem, &spi, &lay, NULL, 0, &err), 0);
  if (engine->compile) assert_int_equal(engine->compile(prog, &code, &err), 0);
  assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, engine, code, &err), 0);

  unsigned runs = 0, bad = 0;
  for (unsigned c = 0; c < NCASES; c++)
    for (unsigned i = 0; i < NIN; i++)
      for (unsigned j = 0; j < NIN; j++) {
        memcpy(vm.regs, lay.regs, sizeof vm.regs);
        vm.regs[7] = c;
        vm.regs[8] = inputs[i];
        vm.regs[9] = inputs[j];
        vm.gas = 1 << 30;
        nub_pvm_vm_set_pc(&vm, 0);
        nub_pvm_status st = nub_pvm_vm_run(&vm);
        uint64_t want = native[((size_t)c * NIN + i) * NIN + j];
        want = spec_value(c, inputs[i], want);
        runs++;
        if (st != PVM_HALT || vm.regs[7] != want) {
          if (bad++ < 20)
            fprintf(stderr, "%s %s: %s(0x%llx, 0x%llx): PVM %s r7 = 0x%llx, qemu 0x%llx\n",
                    nub_pvm_profile_name(profile), engine->name, case_names[c],
                    (unsigned long long)inputs[i], (unsigned long long)inputs[j],
                    nub_pvm_status_name(st), (unsigned long long)vm.regs[7],
                    (unsigned long long)want);
        }
      }
  printf("%s %s: %zu instruction forms, %u runs, %u differ from qemu-riscv64 "
         "(%u qemu results replaced by the spec's: ctzw)\n",
         nub_pvm_profile_name(profile), engine->name, NCASES, runs, bad, qemu_deviations);
  qemu_deviations = 0;
  nub_pvm_vm_fini(&vm);
  if (code) engine->release(code);
  nub_pvm_mem_free(mem);
  nub_pvm_program_free(prog);
  free(spi_bytes);
  assert_int_equal(bad, 0);
}

static void every_form_matches_qemu_on_the_gp07_interpreter(void **s) {
  (void)s;
  every_form_matches_qemu_on(PVM_PROFILE_GP07, &nub_pvm_engine_interp);
}
static void every_form_matches_qemu_on_the_gp07_jit(void **s) {
  (void)s;
  every_form_matches_qemu_on(PVM_PROFILE_GP07, &nub_jit_engine);
}
static void every_form_matches_qemu_on_the_jamv1_interpreter(void **s) {
  (void)s;
  every_form_matches_qemu_on(PVM_PROFILE_JAMV1, &nub_pvm_engine_interp);
}
static void every_form_matches_qemu_on_the_jamv1_jit(void **s) {
  (void)s;
  every_form_matches_qemu_on(PVM_PROFILE_JAMV1, &nub_jit_engine);
}

/* program.c built with these flags (added to LT_CFLAGS, later ones win) */
static const char *const program_builds[] = {"-O0", "-O2", "-Os", "-O2 -mcmodel=medany"};

static void a_whole_program_matches_qemu_at_each_optimisation_level(void **state) {
  (void)state;
  const char *src = getenv("NUB_SOURCE_DIR");
  for (size_t k = 0; k < sizeof program_builds / sizeof program_builds[0]; k++) {
    const char *fl = program_builds[k];
    char path[256], msg[512], native_hex[32] = "";
    assert_int_equal(lt_sh("clang-19 " LT_CFLAGS " %s -c %s/tests/tools/link_isa/program.c -o %s/p.o",
                           fl, src, lt_dir), 0);
    assert_int_equal(lt_sh("clang-19 " LT_CFLAGS " %s -c %s/tests/tools/link_isa/program_entry.c "
                           "-o %s/pe.o", fl, src, lt_dir), 0);
    assert_int_equal(lt_sh("clang-19 " LT_CFLAGS " %s -DNATIVE -c %s/tests/tools/link_isa/"
                           "program_entry.c -o %s/pn.o", fl, src, lt_dir), 0);
    assert_int_equal(lt_sh("ld.lld-19 -static %s/p.o %s/pn.o -o %s/pn.elf && qemu-riscv64 "
                           "%s/pn.elf > %s/pn.txt", lt_dir, lt_dir, lt_dir, lt_dir, lt_dir), 0);
    assert_int_equal(lt_sh("ld.lld-19 --emit-relocs -T %s/toolchain/pvm.ld %s/p.o %s/pe.o -o "
                           "%s/pp.elf", src, lt_dir, lt_dir, lt_dir), 0);
    snprintf(path, sizeof path, "%s/pn.txt", lt_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long want = 0;
    assert_int_equal(fscanf(f, "%llx", &want), 1);
    fclose(f);
    snprintf(native_hex, sizeof native_hex, "%016llx", want);

    size_t elf_len, len;
    snprintf(path, sizeof path, "%s/pp.elf", lt_dir);
    uint8_t *elf = lt_read(path, &elf_len), *out;
    link_options opt = {.profile = PVM_PROFILE_GP07, .stack_size = -1};
    if (link_program(elf, elf_len, &opt, &out, &len, NULL, msg, sizeof msg))
      fail_msg("%s: nub link: %s", fl, msg);
    free(elf);
    const nub_pvm_engine *engines[2] = {&nub_pvm_engine_interp, &nub_jit_engine};
    for (int e = 0; e < 2; e++) {
      nub_pvm_spi spi;
      nub_pvm_spi_layout lay;
      nub_pvm_error err;
      nub_pvm_program *prog;
      nub_pvm_mem *mem;
      nub_pvm_vm vm;
      void *code = NULL;
      assert_int_equal(nub_pvm_spi_parse(out, out + len, &spi, &err), 0);
      assert_int_equal(nub_pvm_spi_layout_compute(&spi, 0, &lay, &err), 0);
      assert_int_equal(nub_pvm_program_load(PVM_PROFILE_GP07, spi.code_blob, spi.code_blob_len, &prog,
                                        &err), 0);
      assert_int_equal(nub_pvm_mem_new(&mem, &err), 0);
      assert_int_equal(nub_pvm_spi_load_memory(mem, &spi, &lay, NULL, 0, &err), 0);
      if (engines[e]->compile) assert_int_equal(engines[e]->compile(prog, &code, &err), 0);
      assert_int_equal(nub_pvm_vm_init(&vm, prog, mem, engines[e], code, &err), 0);
      memcpy(vm.regs, lay.regs, sizeof vm.regs);
      vm.gas = 1ll << 40;
      nub_pvm_status st = nub_pvm_vm_run(&vm);
      printf("program.c %-22s %-6s: PVM %s 0x%016llx, qemu-riscv64 0x%s\n", fl, engines[e]->name,
             nub_pvm_status_name(st), (unsigned long long)vm.regs[7], native_hex);
      assert_int_equal(st, PVM_HALT);
      assert_int_equal(vm.regs[7], want);
      nub_pvm_vm_fini(&vm);
      if (code) engines[e]->release(code);
      nub_pvm_mem_free(mem);
      nub_pvm_program_free(prog);
    }
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_form_matches_qemu_on_the_gp07_interpreter),
    cmocka_unit_test(every_form_matches_qemu_on_the_gp07_jit),
    cmocka_unit_test(every_form_matches_qemu_on_the_jamv1_interpreter),
    cmocka_unit_test(every_form_matches_qemu_on_the_jamv1_jit),
    cmocka_unit_test(a_whole_program_matches_qemu_at_each_optimisation_level),
  };
  return cmocka_run_group_tests(tests, build_and_run_native, teardown);
}
