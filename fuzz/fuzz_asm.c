/*
** Arbitrary text never crashes the assembler; whatever assembles parses
** as a blob (or SPI container) and survives disasm -> asm byte for byte.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nub/pvm.h"

/* Beyond this the text of a disassembly gets large; `.zero` makes such
** outputs from a few bytes of input. */
#define ROUND_TRIP_MAX (1u << 20)

static void check(bool ok, const char *what, const char *detail) {
  if (ok) return;
  fprintf(stderr, "fuzz_asm: %s: %s\n", what, detail);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out, *again;
  size_t len, again_len, text_len;
  bool spi, spi_again;
  char *text;
  nub_pvm_error err;
  nub_pvm_blob blob;
  nub_pvm_spi s;
  if (nub_pvm_asm(PVM_PROFILE_GP07, (const char *)data, size, &out, &len, &spi, &err)) {
    check(err.msg[0] && err.offset <= size, "error without message or position", err.msg);
    return 0;
  }
  if (spi) {
    check(!nub_pvm_spi_parse(out, out + len, &s, &err), "SPI output does not parse", err.msg);
    check(!nub_pvm_blob_parse(s.code_blob, s.code_blob + s.code_blob_len, &blob, &err),
          "SPI code blob does not parse", err.msg);
  } else {
    check(!nub_pvm_blob_parse(out, out + len, &blob, &err), "blob does not parse", err.msg);
  }
  if (len <= ROUND_TRIP_MAX) {
    check(!nub_pvm_disasm(PVM_PROFILE_GP07, out, len, spi ? PVM_DISASM_SPI : 0, &text, &text_len,
                      &err), "disasm failed", err.msg);
    check(!nub_pvm_asm(PVM_PROFILE_GP07, text, text_len, &again, &again_len, &spi_again, &err),
          "reassembly failed", err.msg);
    check(again_len == len && !memcmp(again, out, len) && spi_again == spi,
          "disasm -> asm changed the bytes", text);
    free(again);
    free(text);
  }
  free(out);
  return 0;
}
