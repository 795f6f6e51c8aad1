/*
** Fuzz the SPI container parser, the layout arithmetic and memory setup.
*/
#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static nub_pvm_mem *mem;
  nub_pvm_spi spi;
  nub_pvm_spi_layout lay;
  static const uint8_t args[] = {1, 2, 3, 4, 5, 6, 7, 8};
  if (!mem && nub_pvm_mem_new(&mem, NULL)) return 0;
  if (nub_pvm_spi_parse(data, data + size, &spi, NULL) != PVM_OK) return 0;
  if (nub_pvm_spi_layout_compute(&spi, sizeof args, &lay, NULL) != PVM_OK) return 0;
  nub_pvm_mem_reset(mem, NULL);
  if (nub_pvm_spi_load_memory(mem, &spi, &lay, args, sizeof args, NULL) != PVM_OK) __builtin_trap();
  return 0;
}
