/*
** Fuzz the SPI container parser, the layout arithmetic and memory setup.
*/
#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static pvm_mem *mem;
  pvm_spi spi;
  pvm_spi_layout lay;
  static const uint8_t args[] = {1, 2, 3, 4, 5, 6, 7, 8};
  if (!mem && pvm_mem_new(&mem, NULL)) return 0;
  if (pvm_spi_parse(data, data + size, &spi, NULL) != PVM_OK) return 0;
  if (pvm_spi_layout_compute(&spi, sizeof args, &lay, NULL) != PVM_OK) return 0;
  pvm_mem_reset(mem, NULL);
  if (pvm_spi_load_memory(mem, &spi, &lay, args, sizeof args, NULL) != PVM_OK) __builtin_trap();
  return 0;
}
