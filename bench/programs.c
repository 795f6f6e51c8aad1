/*
** PVM benchmark programs built in code, so they need no assembler.
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "nub/pvm.h"

uint8_t *bench_loop_blob(uint32_t n, size_t *len) {
  const uint8_t code[] = {
    51, 0x07,                                   /* 0  load_imm r7, 0 */
    51, 0x08, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24),
                                                /* 2  load_imm r8, n */
    1,                                          /* 8  fallthrough */
    149, 0x77, 0x03,                            /* 9  add_imm_64 r7, r7, 3 */
    149, 0x88, 0xFF,                            /* 12 add_imm_64 r8, r8, -1 */
    82, 0x08, 0xFA,                             /* 15 branch_ne_imm r8, 0, 9 */
    50, 0x00,                                   /* 18 jump_ind r0, 0 */
  };
  const uint32_t starts[] = {0, 2, 8, 9, 12, 15, 18};
  size_t code_len = sizeof code, mask_len = (code_len + 7) / 8;
  uint8_t *blob = calloc(3 + code_len + mask_len, 1);
  if (!blob) return NULL;
  blob[0] = 0;              /* no jump table */
  blob[1] = 0;              /* entry size */
  blob[2] = (uint8_t)code_len;
  memcpy(blob + 3, code, code_len);
  for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
    blob[3 + code_len + starts[i] / 8] |= (uint8_t)(1u << (starts[i] % 8));
  *len = 3 + code_len + mask_len;
  return blob;
}

uint64_t bench_loop_instructions(uint32_t n) { return 3 + 3ull * n + 1; }

uint8_t *bench_add_blob(size_t *len) {
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint8_t *blob = NULL;
  if (!b) return NULL;
  nub_pvm_builder_insn(b, PVM_OP_ADD_64, 7, 8, 7, 0, 0);
  nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 12, 0, 0, (uint64_t)(int64_t)(int32_t)PVM_HALT_ADDRESS, 0);
  if (nub_pvm_builder_finish(b, &blob, len, NULL)) blob = NULL;
  nub_pvm_builder_free(b);
  return blob;
}

const char *bench_source_text(const char *name) {
  for (const bench_source *s = bench_sources; s->name; s++)
    if (!strcmp(s->name, name)) return s->text;
  return NULL;
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

uint8_t *bench_mixed_blob(uint32_t n, uint64_t seed, size_t *len) {
  static const nub_pvm_op alu[] = {
    PVM_OP_ADD_64, PVM_OP_SUB_64, PVM_OP_XOR, PVM_OP_AND, PVM_OP_OR, PVM_OP_MUL_64,
    PVM_OP_ADD_32, PVM_OP_SHLO_L_64, PVM_OP_SHAR_R_64, PVM_OP_SET_LT_U, PVM_OP_CMOV_IZ, PVM_OP_MAX,
  };
  static const nub_pvm_op alu_imm[] = {
    PVM_OP_ADD_IMM_64, PVM_OP_AND_IMM, PVM_OP_XOR_IMM, PVM_OP_SHLO_L_IMM_64, PVM_OP_MUL_IMM_64,
    PVM_OP_ADD_IMM_32, PVM_OP_SET_LT_U_IMM,
  };
  nub_pvm_builder *b = nub_pvm_builder_new(PVM_PROFILE_GP07);
  uint32_t nlabels = (n + 7) / 8;           /* one per block of 8, all bound */
  uint64_t s = 12345 + seed * 0x9E3779B97F4A7C15ull;
  uint8_t *blob = NULL;
  if (!b) return NULL;
  for (uint32_t l = 0; l < nlabels; l++) nub_pvm_builder_label(b);
  for (uint32_t i = 0; i < n; i++) {
    uint8_t ra = (uint8_t)(1 + lcg(&s) % 12), rb = (uint8_t)(1 + lcg(&s) % 12),
            rd = (uint8_t)(1 + lcg(&s) % 12);
    uint64_t k = lcg(&s) % 100;
    if (i % 8 == 0) {                       /* a block start every 8 instructions */
      if (i) nub_pvm_builder_insn(b, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
      nub_pvm_builder_bind(b, i / 8);
    }
    if (k < 55) {
      nub_pvm_builder_insn(b, alu[lcg(&s) % (sizeof alu / sizeof alu[0])], ra, rb, rd, 0, 0);
    } else if (k < 75) {
      nub_pvm_builder_insn(b, alu_imm[lcg(&s) % (sizeof alu_imm / sizeof alu_imm[0])], ra, rb, 0,
                       lcg(&s) % 5000, 0);
    } else if (k < 85) {
      nub_pvm_builder_insn(b, k & 1 ? PVM_OP_LOAD_IND_U64 : PVM_OP_LOAD_IND_U32, ra, rb, 0,
                       8 * (lcg(&s) % 64), 0);
    } else if (k < 93) {
      nub_pvm_builder_insn(b, k & 1 ? PVM_OP_STORE_IND_U64 : PVM_OP_STORE_IND_U32, ra, rb, 0,
                       8 * (lcg(&s) % 64), 0);
    } else if (k < 99) {
      uint32_t to = (uint32_t)((i / 8 + nlabels - 8 + lcg(&s) % 16) % nlabels);
      nub_pvm_builder_branch(b, k & 1 ? PVM_OP_BRANCH_LT_U : PVM_OP_BRANCH_NE_IMM, ra, rb, 7, to);
    } else {
      nub_pvm_builder_insn(b, PVM_OP_JUMP_IND, 0, 0, 0, 0, 0);
    }
  }
  for (uint32_t l = 0; l < nlabels; l += 16) nub_pvm_builder_jump_entry(b, l);
  if (nub_pvm_builder_finish(b, &blob, len, NULL)) blob = NULL;
  nub_pvm_builder_free(b);
  return blob;
}

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

uint64_t bench_median(uint64_t *s, size_t n) {
  qsort(s, n, sizeof *s, cmp_u64);
  return n ? s[n / 2] : 0;
}

uint64_t bench_percentile(uint64_t *s, size_t n, unsigned pct) {
  qsort(s, n, sizeof *s, cmp_u64);
  if (!n) return 0;
  size_t rank = (n * pct + 99) / 100;
  return s[rank ? rank - 1 : 0];
}

uint64_t bench_min(const uint64_t *s, size_t n) {
  uint64_t m = n ? s[0] : 0;
  for (size_t i = 1; i < n; i++) if (s[i] < m) m = s[i];
  return m;
}
