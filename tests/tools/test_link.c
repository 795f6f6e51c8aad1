/*
** nub link (docs/toolchain.md): every refusal names what it refuses --
** the instruction, its address and its symbol, or the section, relocation
** or ELF field -- and the accepted conventions work: exports at pc 5K,
** the host-call instruction, ret to the initial ra halts, code addresses
** in data.  Sources are small assembly or C files compiled by clang-19.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli.h"
#include "link_test_util.h"

/* Writes src to DIR/name.{s,c}, compiles (cflags added to LT_CFLAGS or
** replacing the target flags when they start with '!') and links it
** (ldflags, "" = with toolchain/pvm.ld).  Returns the ELF path or NULL. */
static const char *build(const char *name, const char *ext, const char *src, const char *cflags,
                         const char *ldflags) {
  static char elf[256];
  char path[256];
  const char *root = getenv("NUB_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/%s.%s", lt_dir, name, ext);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(src, f);
  fclose(f);
  snprintf(elf, sizeof elf, "%s/%s.elf", lt_dir, name);
  const char *flags = cflags[0] == '!' ? cflags + 1 : LT_CFLAGS;
  if (lt_sh("clang-19 -Wno-unused-command-line-argument %s %s -c %s -o %s/%s.o 2>&1", flags, cflags[0] == '!' ? "" : cflags, path,
            lt_dir, name))
    return NULL;
  if (!strcmp(ldflags, "-r")) {   /* the object itself */
    snprintf(elf, sizeof elf, "%s/%s.o", lt_dir, name);
    return elf;
  }
  char ld[512];
  if (ldflags[0]) snprintf(ld, sizeof ld, "%s", ldflags);
  else snprintf(ld, sizeof ld, "-T %s/toolchain/pvm.ld", root);
  if (lt_sh("ld.lld-19 --emit-relocs %s %s/%s.o -o %s 2>/dev/null", ld, lt_dir, name, elf))
    return NULL;
  return elf;
}

static int link_file(const char *elf_path, const link_options *opt, uint8_t **out, size_t *out_len,
                     char *msg, size_t msg_len) {
  size_t len;
  uint8_t *elf = lt_read(elf_path, &len);
  assert_non_null(elf);
  int rc = link_program(elf, len, opt, out, out_len, NULL, msg, msg_len);
  free(elf);
  return rc;
}

static void expect_has(const char *text, const char *part) {
  if (!strstr(text, part)) fail_msg("message '%s' lacks '%s'", text, part);
}

typedef struct refusal {
  const char *sentence;   /* what is refused */
  const char *ext;        /* "s" or "c" */
  const char *src;
  const char *cflags, *ldflags;
  bool generic;
  const char *want[4];    /* parts of the message */
} refusal;

#define START ".globl _start\n.type _start,@function\n_start:\n"
#define NORVC ".option norvc\n"

static const refusal refusals[] = {
  {"ecall is refused at its address and symbol", "s", START "ecall\nret\n", "", "", false,
   {"0x70000000 <_start>", "ecall (00000073)", "host-call instruction"}},
  {"ebreak is refused", "s", START "nop\nebreak\nret\n", "", "", false,
   {"0x70000002 <_start+0x2>", "ebreak", "unimp"}},
  {"fence.i is refused", "s", START "fence.i\nret\n", "", "", false, {"fence.i", "self-modifying"}},
  {"a CSR read is refused", "s", START "csrr a0, cycle\nret\n", "", "", false,
   {"csr*", "CSR 0xc00"}},
  {"orc.b is refused", "s", START "orc.b a0, a0\nret\n", "", "", false, {"orc.b", "no PVM equivalent"}},
  {"a gp-relative access is refused", "s", START "ld a0, 8(gp)\nret\n", "", "", false,
   {"<_start>", "ld", "gp (x3)"}},
  {"a tp use is refused", "s", START "mv a0, tp\nret\n", "", "", false, {"tp (x4)"}},
  {"a floating-point instruction is refused", "s", START ".word 0x00053007\nret\n", "", "", false,
   {"<_start>", "floating point"}},
  {"a register RV64E lacks is refused", "s", START ".word 0x00050813\nret\n", "", "", false,
   {"addi", "a6 (x16)", "RV64E"}},
  {"an unknown instruction is refused", "s", START ".word 0x02000057\nret\n", "", "", false,
   {"unknown instruction", "(02000057)", "RV64EMAC+Zbb"}},
  {"an indirect jump with an offset is refused", "s", START "jalr ra, 8(a0)\nret\n", "", "", false,
   {"jalr", "offset 8"}},
  {"a jump into the middle of an instruction is refused", "s",
   START NORVC "j .+6\naddi a0, a0, 1\nret\n", "", "", false,
   {"<_start>", "jal", "0x70000006 is not the start of an instruction"}},
  {"a load from a code address is refused", "s",
   START "lui a0, %hi(_start)\nlw a0, %lo(_start)(a0)\nret\n", "", "", false,
   {"lw", "code as data"}},
  {"a PC-relative code address in data is refused", "s",
   START "ret\n.section .rodata\n.word _start - .\n", "", "", false,
   {"R_RISCV_ADD32", "0x10000", "_start", "-fno-pic"}},
  {"thread-local storage is refused", "c",
   "__thread long x;\nlong _start(void) { return x; }\n", "", "", false, {"thread-local"}},
  {"GOT (PIC) code is refused", "c",
   "extern long g;\nlong g = 3;\nlong _start(void) { return g; }\n", "-fpic", "", false,
   {"R_RISCV_GOT_HI20", "PIC"}},
  {"a program without an entry is refused", "s",
   ".globl foo\nfoo:\nret\n", "", "", false, {"no entry point", "_start", "--export 0="}},
  {"an RV64I (not RV64E) program is refused", "s", START "ret\n",
   "!--target=riscv64 -march=rv64imac -mabi=lp64 -mno-relax", "", false, {"not RV64E"}},
  {"a hard-float program is refused", "s", START "ret\n",
   "!--target=riscv64 -march=rv64imafdc -mabi=lp64d -mno-relax", "", false, {"hard-float"}},
  {"an object file (not linked) is refused", "s", START "ret\n", "", "-r", false,
   {"ELF type 1", "ET_EXEC"}},
  {"data linked outside the SPI layout is refused", "s",
   START "ret\n.data\n.quad 1\n", "", "-e _start", false,
   {"section .data", "toolchain/pvm.ld"}},
  {"--format generic with data is refused", "s", START "ret\n.data\n.quad 1\n", "", "", true,
   {"--format generic", "8 bytes of read-write data"}},
};

static void each_unsupported_case_is_refused_with_a_message_naming_it(void **state) {
  (void)state;
  unsigned n = 0;
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    const refusal *r = &refusals[i];
    char name[16], msg[512];
    snprintf(name, sizeof name, "refuse%zu", i);
    const char *elf = build(name, r->ext, r->src, r->cflags, r->ldflags);
    if (!elf) fail_msg("%s: the source does not build", r->sentence);
    link_options opt = {.profile = PVM_PROFILE_GP07, .generic = r->generic, .stack_size = -1};
    uint8_t *out = NULL;
    size_t out_len;
    if (!link_file(elf, &opt, &out, &out_len, msg, sizeof msg)) {
      free(out);
      fail_msg("%s: nub link accepted it", r->sentence);
    }
    for (int k = 0; k < 4 && r->want[k]; k++)
      if (!strstr(msg, r->want[k])) fail_msg("%s: message '%s' lacks '%s'", r->sentence, msg, r->want[k]);
    n++;
  }
  printf("%u refusals, each naming its case\n", n);
}

static void bytes_that_are_not_an_elf_are_refused(void **state) {
  (void)state;
  static const uint8_t junk[80] = "not an elf";
  uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  link_options opt = {.profile = PVM_PROFILE_GP07, .stack_size = -1};
  uint8_t *out;
  size_t len;
  char msg[512];
  assert_int_not_equal(link_program(junk, sizeof junk, &opt, &out, &len, NULL, msg, sizeof msg), 0);
  expect_has(msg, "not an ELF");
  elf[16] = 2;            /* ET_EXEC */
  elf[18] = 243;          /* EM_RISCV */
  elf[48] = 0x8;          /* RVE */
  elf[40] = 0x40;         /* section headers at 64 ... */
  elf[58] = 64;           /* ... of 64 bytes ... */
  elf[60] = 3;            /* ... three of them: past the end */
  assert_int_not_equal(link_program(elf, sizeof elf, &opt, &out, &len, NULL, msg, sizeof msg), 0);
  expect_has(msg, "section headers");
  expect_has(msg, "do not fit the 64-byte file");
}

/* Runs an SPI program from pc with a0, a1; returns the status. */
static nub_pvm_status run_spi(const uint8_t *bytes, size_t len, nub_pvm_profile profile, uint32_t pc,
                          uint64_t a0, uint64_t a1, nub_pvm_vm *vm, nub_pvm_program **prog, nub_pvm_mem **mem) {
  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  nub_pvm_error err;
  assert_int_equal(nub_pvm_spi_parse(bytes, bytes + len, &spi, &err), 0);
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, 0, &lay, &err), 0);
  assert_int_equal(nub_pvm_program_load(profile, spi.code_blob, spi.code_blob_len, prog, &err), 0);
  assert_int_equal(nub_pvm_mem_new(mem, &err), 0);
  assert_int_equal(nub_pvm_spi_load_memory(*mem, &spi, &lay, NULL, 0, &err), 0);
  assert_int_equal(nub_pvm_vm_init(vm, *prog, *mem, &nub_pvm_engine_interp, NULL, &err), 0);
  memcpy(vm->regs, lay.regs, sizeof vm->regs);
  vm->regs[7] = a0;
  vm->regs[8] = a1;
  vm->gas = 1000000;
  nub_pvm_vm_set_pc(vm, pc);
  return nub_pvm_vm_run(vm);
}

static void done(nub_pvm_vm *vm, nub_pvm_program *prog, nub_pvm_mem *mem) {
  nub_pvm_vm_fini(vm);
  nub_pvm_mem_free(mem);
  nub_pvm_program_free(prog);
}

static const char exports_src[] =
  "long add(long a, long b) { return a + b; }\n"
  "long mul(long a, long b) { return a * b; }\n"
  "long _start(long a, long b) { return a - b; }\n"
  "__asm__(\".globl __nub_export_2\\n.set __nub_export_2, mul\");\n";

static void exports_sit_at_pc_5k_from_symbols_and_the_command_line(void **state) {
  (void)state;
  const char *elf = build("exports", "c", exports_src, "", "");
  assert_non_null(elf);
  link_export e = {3, "add"};
  link_options opt = {.profile = PVM_PROFILE_GP07, .exports = &e, .export_count = 1, .stack_size = -1};
  uint8_t *out;
  size_t len;
  char msg[512];
  nub_pvm_vm vm;
  nub_pvm_program *prog;
  nub_pvm_mem *mem;
  if (link_file(elf, &opt, &out, &len, msg, sizeof msg)) fail_msg("%s", msg);
  static const struct { uint32_t pc; nub_pvm_status st; uint64_t r7; } rows[] = {
    {0, PVM_HALT, 30},      /* _start: 40 - 10 */
    {5, PVM_PANIC, 0},      /* export 1 is missing: a trap */
    {10, PVM_HALT, 400},    /* __nub_export_2 = mul */
    {15, PVM_HALT, 50},     /* --export 3=add */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    nub_pvm_status st = run_spi(out, len, PVM_PROFILE_GP07, rows[i].pc, 40, 10, &vm, &prog, &mem);
    assert_int_equal(st, rows[i].st);
    if (st == PVM_HALT) assert_int_equal(vm.regs[7], rows[i].r7);
    done(&vm, prog, mem);
  }
  free(out);
}

static void exports_become_image_endpoints_k_at_pc_5k(void **state) {
  (void)state;
  const char *elf = build("exports", "c", exports_src, "", "");
  assert_non_null(elf);
  link_export e = {3, "add"};
  link_options opt = {.profile = PVM_PROFILE_GP07, .exports = &e, .export_count = 1, .stack_size = -1};
  uint8_t *out;
  size_t len;
  char msg[512];
  if (link_file(elf, &opt, &out, &len, msg, sizeof msg)) fail_msg("%s", msg);
  static const uint32_t pcs[4] = {0, 5, 10, 15};
  nub_cap_bundle b;
  nub_cap_error err;
  nub_cap_view v;
  assert_int_equal(nub_cap_build_spi_endpoints(PVM_PROFILE_GP07, out, len, NULL, 0, pcs, 4, &b, &err), 0);
  const nub_cap_item *im = &b.items[b.image];
  assert_int_equal(nub_cap_decode(im->wire, im->wire + im->len, &v, &err), 0);
  assert_int_equal(v.image.endpoint_count, 4);
  for (uint32_t k = 0; k < 4; k++) {
    nub_cap_endpoint ep;
    nub_cap_image_endpoint(&v.image, k, &ep);
    assert_int_equal(ep.key, k);
    assert_int_equal(ep.entry_pc, 5 * k);
    assert_int_equal(ep.regs[0], PVM_HALT_ADDRESS);   /* ret from the export halts */
  }
  nub_cap_bundle_free(&b);
  assert_int_not_equal(nub_cap_build_spi_endpoints(PVM_PROFILE_GP07, out, len, NULL, 0, pcs, 0, &b, &err), 0);
  free(out);
}

static void the_stack_size_comes_from_the_option_the_symbol_or_the_script(void **state) {
  (void)state;
  char ld[512];
  snprintf(ld, sizeof ld, "--defsym=__nub_stack_size=0x20000 -T %s/toolchain/pvm.ld",
           getenv("NUB_SOURCE_DIR"));
  static const struct { const char *ld; int64_t option; uint32_t want; } rows[] = {
    {"", -1, 0x10000},          /* toolchain/pvm.ld's default */
    {NULL, -1, 0x20000},        /* --defsym=__nub_stack_size */
    {NULL, 4096, 4096},         /* nub link --stack-size wins */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const char *elf = build("stack", "c", exports_src, "", rows[i].ld ? rows[i].ld : ld);
    assert_non_null(elf);
    link_options opt = {.profile = PVM_PROFILE_GP07, .stack_size = rows[i].option};
    uint8_t *out;
    size_t len;
    char msg[512];
    nub_pvm_spi spi;
    nub_pvm_error err;
    if (link_file(elf, &opt, &out, &len, msg, sizeof msg)) fail_msg("%s", msg);
    assert_int_equal(nub_pvm_spi_parse(out, out + len, &spi, &err), 0);
    assert_int_equal(spi.stack_size, rows[i].want);
    free(out);
  }
}

static const char hostcall_src[] =
  "long _start(long a, long b) {\n"
  "  register long x __asm__(\"a0\") = a * 2, y __asm__(\"a1\") = b;\n"
  "  __asm__ volatile(\".insn i 0x0b, 0, x0, x0, 100\" : \"+r\"(x), \"+r\"(y) : : \"memory\");\n"
  "  return x + 1;\n}\n";

static void the_host_call_instruction_becomes_ecalli_and_resumes(void **state) {
  (void)state;
  const char *elf = build("hostcall", "c", hostcall_src, "", "");
  assert_non_null(elf);
  link_options opt = {.profile = PVM_PROFILE_JAMV1, .stack_size = -1};
  uint8_t *out;
  size_t len;
  char msg[512];
  nub_pvm_vm vm;
  nub_pvm_program *prog;
  nub_pvm_mem *mem;
  if (link_file(elf, &opt, &out, &len, msg, sizeof msg)) fail_msg("%s", msg);
  assert_int_equal(run_spi(out, len, PVM_PROFILE_JAMV1, 0, 21, 5, &vm, &prog, &mem), PVM_HOST);
  assert_int_equal(vm.exit_arg, 100);
  assert_int_equal(vm.regs[7], 42);    /* the argument, in a0 = phi7 */
  vm.regs[7] = 1000;                   /* the host's answer */
  assert_int_equal(nub_pvm_vm_run(&vm), PVM_HALT);
  assert_int_equal(vm.regs[7], 1001);
  done(&vm, prog, mem);
  free(out);
}

static int cli_link_verbose(void) {
  char elf[256], out[256];
  snprintf(elf, sizeof elf, "%s/exports.elf", lt_dir);
  snprintf(out, sizeof out, "%s/exports.pvm", lt_dir);
  char *argv[] = {"link", elf, "-o", out, "--profile", "jamv1", "--export", "3=add", "-v", NULL};
  return cmd_link(9, argv);
}

static void the_command_writes_the_program_and_reports_its_sizes(void **state) {
  (void)state;
  assert_non_null(build("exports", "c", exports_src, "", ""));
  assert_int_equal(cli_link_verbose(), 0);
  char path[256];
  size_t len;
  snprintf(path, sizeof path, "%s/exports.pvm", lt_dir);
  uint8_t *bytes = lt_read(path, &len);
  assert_non_null(bytes);
  nub_pvm_vm vm;
  nub_pvm_program *prog;
  nub_pvm_mem *mem;
  assert_int_equal(run_spi(bytes, len, PVM_PROFILE_JAMV1, 15, 7, 8, &vm, &prog, &mem), PVM_HALT);
  assert_int_equal(vm.regs[7], 15);
  done(&vm, prog, mem);
  free(bytes);
  char *argv[] = {"link", path, "-o", path, "--export", "nokey", NULL};
  assert_int_equal(cmd_link(6, argv), 2);
}

static int setup(void **state) {
  (void)state;
  static const char *const tools[] = {"clang-19", "ld.lld-19", NULL};
  lt_require_tools("test_link", tools);
  return getenv("NUB_SOURCE_DIR") ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  lt_cleanup();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(each_unsupported_case_is_refused_with_a_message_naming_it),
    cmocka_unit_test(bytes_that_are_not_an_elf_are_refused),
    cmocka_unit_test(exports_sit_at_pc_5k_from_symbols_and_the_command_line),
    cmocka_unit_test(exports_become_image_endpoints_k_at_pc_5k),
    cmocka_unit_test(the_stack_size_comes_from_the_option_the_symbol_or_the_script),
    cmocka_unit_test(the_host_call_instruction_becomes_ecalli_and_resumes),
    cmocka_unit_test(the_command_writes_the_program_and_reports_its_sizes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
