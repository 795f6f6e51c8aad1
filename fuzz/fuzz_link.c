/*
** libFuzzer target: nub link (tools/link.c) on arbitrary ELF images.  It
** must refuse with a message or produce an SPI container whose code loads.
*/
#include <stdint.h>
#include <stdlib.h>

#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  link_export e = {1, "add"};
  link_options opt = {.profile = PVM_PROFILE_GP07, .exports = &e, .export_count = size & 1,
                      .stack_size = -1};
  uint8_t *out;
  size_t len;
  char msg[512];
  if (link_program(data, size, &opt, &out, &len, NULL, msg, sizeof msg)) {
    if (!msg[0]) abort();
    return 0;
  }
  nub_pvm_spi spi;
  nub_pvm_error err;
  nub_pvm_program *prog;
  if (nub_pvm_spi_parse(out, out + len, &spi, &err) ||
      nub_pvm_program_load(PVM_PROFILE_GP07, spi.code_blob, spi.code_blob_len, &prog, &err))
    abort();
  nub_pvm_program_free(prog);
  free(out);
  return 0;
}
