/*
** Arbitrary bytes: whatever nub_pvm_blob_parse (or, with the first byte odd,
** nub_pvm_spi_parse) accepts disassembles, and the text assembles back to the
** same bytes.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nub/pvm.h"

static void check(bool ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_disasm: %s: %s\n", what, detail);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out;
  size_t len, text_len;
  bool spi;
  char *text;
  nub_pvm_error err;
  nub_pvm_blob blob;
  nub_pvm_spi s;
  if (size < 1) return 0;
  bool want_spi = data[0] & 1;
  const uint8_t *in = data + 1, *end = data + size;
  if (want_spi) {
    if (nub_pvm_spi_parse(in, end, &s, &err) ||
        nub_pvm_blob_parse(s.code_blob, s.code_blob + s.code_blob_len, &blob, &err))
      return 0;
  } else if (nub_pvm_blob_parse(in, end, &blob, &err)) {
    return 0;
  }
  check(!nub_pvm_disasm(PVM_PROFILE_GP07, in, size - 1, want_spi ? PVM_DISASM_SPI : 0, &text,
                    &text_len, &err), "disasm failed", err.msg);
  check(!nub_pvm_asm(PVM_PROFILE_GP07, text, text_len, &out, &len, &spi, &err),
        "reassembly failed", err.msg);
  check(len == size - 1 && !memcmp(out, in, len) && spi == want_spi,
        "disasm -> asm changed the bytes", text);
  free(out);
  free(text);
  return 0;
}
