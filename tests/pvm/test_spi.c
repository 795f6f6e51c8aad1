/*
** Standard program initialisation (GP A.7): container errors, layout
** arithmetic and the memory it produces.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

/* o = "RO", w = "RW!", z = 2 heap pages, s = 0x1800 stack, code = 4 bytes */
static const uint8_t spi_ok[] = {
  2, 0, 0,   3, 0, 0,   2, 0,   0x00, 0x18, 0,
  'R', 'O',  'R', 'W', '!',
  4, 0, 0, 0,  0, 0, 1, 0,
};

static void parses_fields(void **state) {
  (void)state;
  nub_pvm_spi spi;
  assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + sizeof spi_ok, &spi, NULL), PVM_OK);
  assert_int_equal(spi.ro_len, 2);
  assert_memory_equal(spi.ro_data, "RO", 2);
  assert_int_equal(spi.rw_len, 3);
  assert_memory_equal(spi.rw_data, "RW!", 3);
  assert_int_equal(spi.heap_pages, 2);
  assert_int_equal(spi.stack_size, 0x1800);
  assert_int_equal(spi.code_blob_len, 4);
}

static void rejects_malformed(void **state) {
  (void)state;
  nub_pvm_spi spi;
  nub_pvm_error err;
  for (size_t n = 0; n < 11; n++) {        /* inside the fixed header */
    assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + n, &spi, &err), PVM_ERR_TRUNCATED);
  }
  assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + 13, &spi, &err), PVM_ERR_TRUNCATED);
  assert_non_null(strstr(err.msg, "ro data"));
  assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + sizeof spi_ok - 1, &spi, &err), PVM_ERR_LENGTH);
  assert_int_equal(err.offset, 16);
  assert_non_null(strstr(err.msg, "code length 4"));
}

static void layout_follows_a42(void **state) {
  (void)state;
  nub_pvm_spi spi;
  nub_pvm_spi_layout l;
  assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + sizeof spi_ok, &spi, NULL), PVM_OK);
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, 5, &l, NULL), PVM_OK);
  assert_int_equal(l.ro_start, 0x10000);
  assert_int_equal(l.ro_size, 0x1000);
  assert_int_equal(l.rw_start, 0x30000);              /* 2 Z_Z + Z(2) */
  assert_int_equal(l.rw_size, 0x1000 + 2 * 0x1000);   /* P(3) + 2 pages */
  assert_int_equal(l.heap_top, 0x33000);
  assert_int_equal(l.stack_size, 0x2000);
  assert_int_equal(l.stack_start + l.stack_size, 0xFEFE0000u);
  assert_int_equal(l.args_start, 0xFEFF0000u);
  assert_int_equal(l.args_size, 0x1000);
  assert_true(l.regs[0] == 0xFFFF0000u);
  assert_true(l.regs[1] == 0xFEFE0000u);
  assert_true(l.regs[7] == 0xFEFF0000u);
  assert_true(l.regs[8] == 5);
}

static void layout_limit(void **state) {
  (void)state;
  nub_pvm_spi spi = {0};
  nub_pvm_spi_layout l;
  nub_pvm_error err;
  /* 3-byte fields can never overflow A.41, but builders pass u32 values */
  spi.ro_len = 0xFFFFFF;
  spi.rw_len = 0xFFFFFF;
  spi.heap_pages = 0xFFFF;
  spi.stack_size = 0xFFFFFF;
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, PVM_ARGS_MAX, &l, NULL), PVM_OK);
  spi.ro_len = 0xF0000000u;
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, 0, &l, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "more than 2^32"));
  spi.ro_len = 0;
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, PVM_ARGS_MAX + 1, &l, &err), PVM_ERR_LIMIT);
  assert_non_null(strstr(err.msg, "arguments"));
}

static void load_memory(void **state) {
  (void)state;
  nub_pvm_spi spi;
  nub_pvm_spi_layout l;
  nub_pvm_mem *mem;
  uint8_t buf[4];
  const uint8_t args[] = {9, 8, 7, 6, 5};
  assert_int_equal(nub_pvm_spi_parse(spi_ok, spi_ok + sizeof spi_ok, &spi, NULL), PVM_OK);
  assert_int_equal(nub_pvm_spi_layout_compute(&spi, sizeof args, &l, NULL), PVM_OK);
  assert_int_equal(nub_pvm_mem_new(&mem, NULL), PVM_OK);
  assert_int_equal(nub_pvm_spi_load_memory(mem, &spi, &l, args, sizeof args, NULL), PVM_OK);
  assert_int_equal(nub_pvm_mem_access(mem, l.ro_start), PVM_ACCESS_RO);
  assert_int_equal(nub_pvm_mem_access(mem, l.rw_start + 0x2000), PVM_ACCESS_RW);
  assert_int_equal(nub_pvm_mem_access(mem, l.rw_start + 0x3000), PVM_ACCESS_NONE);
  assert_int_equal(nub_pvm_mem_access(mem, l.stack_start), PVM_ACCESS_RW);
  assert_int_equal(nub_pvm_mem_access(mem, l.args_start), PVM_ACCESS_RO);
  assert_int_equal(nub_pvm_mem_read(mem, l.rw_start, buf, 3, NULL), PVM_OK);
  assert_memory_equal(buf, "RW!", 3);
  assert_int_equal(nub_pvm_mem_read(mem, l.args_start + 1, buf, 4, NULL), PVM_OK);
  assert_memory_equal(buf, args + 1, 4);
  assert_int_equal(nub_pvm_mem_heap_top(mem), l.heap_top);
  assert_int_equal(nub_pvm_mem_mapped_pages(mem), 1 + 3 + 2 + 1);
  nub_pvm_mem_free(mem);
}

static void memory_errors(void **state) {
  (void)state;
  nub_pvm_mem *mem;
  nub_pvm_error err;
  uint8_t b = 1;
  assert_int_equal(nub_pvm_mem_new(&mem, NULL), PVM_OK);
  assert_int_equal(nub_pvm_mem_map(mem, 0x10001, 0x1000, PVM_ACCESS_RW, &err), PVM_ERR_ALIGN);
  assert_int_equal(nub_pvm_mem_map(mem, 0xF000, 0x1000, PVM_ACCESS_RW, &err), PVM_ERR_RANGE);
  assert_int_equal(nub_pvm_mem_map(mem, 0xFFFFF000u, 0x2000, PVM_ACCESS_RW, &err), PVM_ERR_RANGE);
  assert_int_equal(nub_pvm_mem_write(mem, 0x20000, &b, 1, &err), PVM_ERR_UNMAPPED);
  assert_non_null(strstr(err.msg, "0x20000"));
  assert_int_equal(nub_pvm_mem_map(mem, 0x20000, 0x1000, PVM_ACCESS_RO, &err), PVM_OK);
  assert_int_equal(nub_pvm_mem_write(mem, 0x20FFF, &b, 1, &err), PVM_OK);   /* host may fill RO */
  assert_int_equal(nub_pvm_mem_write(mem, 0x20FFF, "ab", 2, &err), PVM_ERR_UNMAPPED);
  assert_int_equal(nub_pvm_mem_reset(mem, &err), PVM_OK);
  assert_int_equal(nub_pvm_mem_access(mem, 0x20000), PVM_ACCESS_NONE);
  assert_int_equal(nub_pvm_mem_mapped_pages(mem), 0);
  assert_int_equal(nub_pvm_mem_map(mem, 0x20000, 0x1000, PVM_ACCESS_RW, &err), PVM_OK);
  assert_int_equal(nub_pvm_mem_read(mem, 0x20FFF, &b, 1, &err), PVM_OK);
  assert_int_equal(b, 0);                                             /* reset zeroes */
  nub_pvm_mem_free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(parses_fields),
    cmocka_unit_test(rejects_malformed),
    cmocka_unit_test(layout_follows_a42),
    cmocka_unit_test(layout_limit),
    cmocka_unit_test(load_memory),
    cmocka_unit_test(memory_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
