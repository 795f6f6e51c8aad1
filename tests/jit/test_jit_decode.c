/*
** The compiler's decode (jit_decode: the compile walk's per-op dispatch
** and per-format field decoders) against the one decoder, pvm_decode with
** pvm_xinsn_fill, over random blobs in every profile: short codes, so that
** most instructions sit in the end-of-code window (zeta's zero padding),
** bitmasks of every density (skips from 0 to the cap of 24), and every
** opcode byte (invalid ones decode to trap).
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>

#include <cmocka.h>

#include "jit/jit_internal.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void) {        /* xorshift64 */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Compares every bitmask start of a blob; counts decodes near the end
** (the window padded with zeros) and which ops were seen. */
static void compare_blob(const nub_pvm_opinfo *isa, const nub_pvm_blob *b, bool seen[256],
                         uint32_t *compared, uint32_t *padded) {
  for (uint32_t pc = 0; pc < b->code_len; pc++) {
    if (!nub_pvm_blob_is_start(b, pc)) continue;
    nub_pvm_insn in;
    pvm_xinsn want;
    jit_insn got;
    uint32_t len;
    pvm_decode(isa, b, pc, &in);
    pvm_xinsn_fill(&want, &in);
    jit_decode(isa, b, pc, &got, &len);
    if (len != in.len || got.op != want.op || got.a != want.a || got.b != want.b ||
        got.d != want.d || got.imm1 != want.imm1 || got.imm2 != want.imm2 ||
        got.target != in.target)
      fail_msg("pc %u of a %u-byte code, opcode %u: pvm_decode len %u op %u a %u b %u d %u "
               "imm %08x %08x target %lld; jit_decode len %u op %u a %u b %u d %u imm %08x "
               "%08x target %lld", pc, b->code_len, in.opcode, in.len, want.op, want.a,
               want.b, want.d, want.imm1, want.imm2, (long long)in.target, len, got.op,
               got.a, got.b, got.d, got.imm1, got.imm2, (long long)got.target);
    seen[in.opcode] = true;
    (*compared)++;
    if ((uint64_t)pc + JIT_DECODE_WINDOW > b->code_len) (*padded)++;
  }
}

static void jit_decode_matches_pvm_decode_on_random_blobs(void **state) {
  (void)state;
  enum { BLOBS = 20000, MAX_CODE = 160 };
  for (int p = 0; p < PVM_PROFILE_COUNT; p++) {
    const nub_pvm_opinfo *isa = nub_pvm_isa((nub_pvm_profile)p);
    bool seen[256] = {false};
    uint32_t compared = 0, padded = 0;
    for (int i = 0; i < BLOBS; i++) {
      /* exact-size buffers: ASan catches a read past the code or mask */
      uint32_t len = 1 + (uint32_t)(next_random() % MAX_CODE);
      uint8_t *code = malloc(len), *mask = calloc((len + 7) / 8, 1);
      assert_non_null(code);
      assert_non_null(mask);
      unsigned density = (unsigned)(next_random() % 64);   /* starts per 64 bytes */
      for (uint32_t j = 0; j < len; j++) {
        uint64_t r = next_random();
        /* registers past 12 and lengths past 4 are common in the bytes */
        code[j] = (uint8_t)r;
        if (j == 0 || (r >> 8) % 64 < density) mask[j >> 3] |= (uint8_t)(1u << (j & 7));
      }
      nub_pvm_blob b = {.code = code, .bitmask = mask, .code_len = len};
      compare_blob(isa, &b, seen, &compared, &padded);
      free(code);
      free(mask);
    }
    unsigned valid = 0, missed = 0;
    for (unsigned o = 0; o < 256; o++) {
      if (!isa[o].name) continue;
      valid++;
      if (!seen[o]) missed++;
    }
    printf("  %s: %u instructions compared (%u in the padded end window), %u of %u valid "
           "opcodes seen\n", nub_pvm_profile_name((nub_pvm_profile)p), compared, padded,
           valid - missed, valid);
    assert_int_equal(missed, 0);
    assert_true(padded > 0 && padded < compared);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(jit_decode_matches_pvm_decode_on_random_blobs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
