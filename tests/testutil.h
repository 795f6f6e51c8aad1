/*
** Helpers for engine tests: build small programs from raw instruction
** bytes and run them on any engine.  Include after <cmocka.h>.
*/
#ifndef NUB_TESTUTIL_H
#define NUB_TESTUTIL_H

#include <errno.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nub/cap.h"
#include "nub/pvm.h"

typedef struct tinsn { uint8_t b[32]; uint8_t n; } tinsn;
/* One instruction from its bytes: I(190, 0x87, 9) */
#define I(...) ((tinsn){{__VA_ARGS__}, (uint8_t)sizeof((uint8_t[]){__VA_ARGS__})})

/* Generic blob from instructions (each starts a bitmask bit) and an
** optional jump table with entry size z. */
static inline uint8_t *tb_blob(const tinsn *ins, size_t n, const uint32_t *jt, size_t njt,
                               uint8_t z, size_t *len) {
  size_t code_len = 0;
  for (size_t i = 0; i < n; i++) code_len += ins[i].n;
  size_t mask_len = (code_len + 7) / 8, cap = 32 + njt * z + code_len + mask_len;
  uint8_t *b = calloc(cap, 1), *p = b;
  p += nub_pvm_write_natural(p, njt);
  *p++ = z;
  p += nub_pvm_write_natural(p, code_len);
  for (size_t i = 0; i < njt; i++)
    for (unsigned k = 0; k < z; k++) *p++ = (uint8_t)(jt[i] >> (8 * k));
  uint8_t *code = p, *mask = p + code_len;
  size_t pc = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(code + pc, ins[i].b, ins[i].n);
    mask[pc / 8] |= (uint8_t)(1u << (pc % 8));
    pc += ins[i].n;
  }
  *len = (size_t)(mask + mask_len - b);
  return b;
}

typedef struct tvm {
  nub_pvm_program *prog;
  nub_pvm_mem *mem;
  nub_pvm_vm vm;
  void *code;
  const nub_pvm_engine *engine;
} tvm;

/* Engine under test: tests may override before loading. */
static const nub_pvm_engine *tvm_engine = &nub_pvm_engine_interp;
/* Profile programs load under: tests may override before loading. */
static nub_pvm_profile tvm_profile = PVM_PROFILE_GP07;

static inline void tvm_load_jt(tvm *t, const tinsn *ins, size_t n, const uint32_t *jt,
                               size_t njt, uint8_t z) {
  size_t len;
  nub_pvm_error err;
  uint8_t *blob = tb_blob(ins, n, jt, njt, z, &len);
  memset(t, 0, sizeof *t);
  t->engine = tvm_engine;
  assert_int_equal(nub_pvm_program_load(tvm_profile, blob, len, &t->prog, &err), PVM_OK);
  free(blob);
  assert_int_equal(nub_pvm_mem_new(&t->mem, &err), PVM_OK);
  assert_int_equal(t->engine->compile(t->prog, &t->code, &err), PVM_OK);
  assert_int_equal(nub_pvm_vm_init(&t->vm, t->prog, t->mem, t->engine, t->code, &err), PVM_OK);
  t->vm.gas = 1000;
}

#define tvm_load(t, ins) tvm_load_jt(t, ins, sizeof(ins) / sizeof((ins)[0]), NULL, 0, 0)

static inline void tvm_free(tvm *t) {
  nub_pvm_vm_fini(&t->vm);
  if (t->code) t->engine->release(t->code);
  nub_pvm_program_free(t->prog);
  nub_pvm_mem_free(t->mem);
}

static inline void tvm_map(tvm *t, uint32_t addr, uint32_t len, nub_pvm_access acc) {
  nub_pvm_error err;
  assert_int_equal(nub_pvm_mem_map(t->mem, addr, len, acc, &err), PVM_OK);
}

/* r7 = r7 + r8, then `adds` times r7 += imm, then halt: an Image and a
** fresh Instance (the add program of the host and kernel tests). */
static inline void tu_add_bundle(nub_cap_bundle *out, uint32_t adds, uint64_t imm) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob;
  size_t len;
  nub_pvm_error err;
  nub_cap_error cerr;
  nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  for (uint32_t i = 0; i < adds; i++) nub_pvm_builder_insn(b, PVM_OP_ADD_IMM_64, 7, 7, 0, imm, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, &len, &err)) fail_msg("builder: %s", err.msg);
  nub_pvm_builder_free(b);
  if (nub_cap_build_generic(PVM_PROFILE_GP07, blob, len, NULL, 0, out, &cerr)) fail_msg("build: %s", cerr.msg);
  free(blob);
}

/* A dense Data cap's wire (13-byte head, then a u32 index and 4096 bytes
** per page) spoiled at page k, as the put paths must refuse it: the
** page's bytes all zero, or its index swapped with page k + 1's. */
static inline void tu_data_zero_page(uint8_t *wire, uint32_t k) {
  memset(wire + 13 + (size_t)k * 4100 + 4, 0, 4096);
}
static inline void tu_data_swap_indexes(uint8_t *wire, uint32_t k) {
  uint8_t *a = wire + 13 + (size_t)k * 4100, t[4];
  memcpy(t, a, 4);
  memcpy(a, a + 4100, 4);
  memcpy(a + 4100, t, 4);
}

/* Wait for sem, at most 5 s rather than hanging: false if it timed out
** (the main thread fails the test; another thread goes on, and the
** test's checks fail). */
static inline bool tu_wait_for(sem_t *sem) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += 5;
  while (sem_timedwait(sem, &t))
    if (errno != EINTR) return false;
  return true;
}

#endif
