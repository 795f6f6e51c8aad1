/*
** Standard program initialisation (GP A.7): the SPI container and the
** memory/register layout it implies.
*/
#include <stdlib.h>

#include "pvm_internal.h"

static uint64_t page_up(uint64_t x) {
  return (x + PVM_PAGE_SIZE - 1) / PVM_PAGE_SIZE * PVM_PAGE_SIZE;
}
static uint64_t zone_up(uint64_t x) {
  return (x + PVM_ZONE - 1) / PVM_ZONE * PVM_ZONE;
}

static int take(const uint8_t **p, const uint8_t *start, const uint8_t *end,
                unsigned n, const char *field, uint64_t *out, nub_pvm_error *err) {
  if ((size_t)(end - *p) < n)
    return pvm_fail(err, PVM_ERR_TRUNCATED, (uint64_t)(*p - start),
                    "spi: %s (%u bytes) truncated at offset %llu", field, n,
                    (unsigned long long)(*p - start));
  *out = pvm_le_read(*p, n);
  *p += n;
  return PVM_OK;
}

int nub_pvm_spi_parse(const uint8_t *p, const uint8_t *end, nub_pvm_spi *out,
                  nub_pvm_error *err) {
  const uint8_t *start = p;
  uint64_t ro_len = 0, rw_len = 0, heap_pages = 0, stack_size = 0, code_len = 0;
  int rc;
  if (!p || !end || end < p) return pvm_fail(err, PVM_ERR_ARG, 0, "spi: no input");
  if ((rc = take(&p, start, end, 3, "ro length", &ro_len, err)) ||
      (rc = take(&p, start, end, 3, "rw length", &rw_len, err)) ||
      (rc = take(&p, start, end, 2, "heap pages", &heap_pages, err)) ||
      (rc = take(&p, start, end, 3, "stack size", &stack_size, err)))
    return rc;
  if ((uint64_t)(end - p) < ro_len + rw_len)
    return pvm_fail(err, PVM_ERR_TRUNCATED, (uint64_t)(p - start),
                    "spi: ro data (%llu B) + rw data (%llu B) run past the end "
                    "(%llu bytes left at offset %llu)",
                    (unsigned long long)ro_len, (unsigned long long)rw_len,
                    (unsigned long long)(end - p), (unsigned long long)(p - start));
  out->ro_data = p; out->ro_len = (uint32_t)ro_len; p += ro_len;
  out->rw_data = p; out->rw_len = (uint32_t)rw_len; p += rw_len;
  out->heap_pages = (uint32_t)heap_pages;
  out->stack_size = (uint32_t)stack_size;
  if ((rc = take(&p, start, end, 4, "code length", &code_len, err))) return rc;
  if ((uint64_t)(end - p) != code_len)
    return pvm_fail(err, PVM_ERR_LENGTH, (uint64_t)(p - 4 - start),
                    "spi: code length %llu at offset %llu but %llu bytes follow",
                    (unsigned long long)code_len,
                    (unsigned long long)(p - 4 - start),
                    (unsigned long long)(end - p));
  out->code_blob = p;
  out->code_blob_len = (uint32_t)code_len;
  return PVM_OK;
}

int nub_pvm_spi_layout_compute(const nub_pvm_spi *spi, uint32_t args_len,
                           nub_pvm_spi_layout *out, nub_pvm_error *err) {
  const uint64_t Z = PVM_ZONE, I = PVM_ARGS_MAX;
  uint64_t rw_heap = (uint64_t)spi->rw_len + (uint64_t)spi->heap_pages * PVM_PAGE_SIZE;
  uint64_t total = 5 * Z + zone_up(spi->ro_len) + zone_up(rw_heap) +
                   zone_up(spi->stack_size) + I;
  if (total > (1ull << 32))
    return pvm_fail(err, PVM_ERR_LIMIT, 0,
                    "spi: layout needs %llu bytes (ro %u, rw %u + %u heap pages, "
                    "stack %u), more than 2^32 (A.41)",
                    (unsigned long long)total, spi->ro_len, spi->rw_len,
                    spi->heap_pages, spi->stack_size);
  if (args_len > I)
    return pvm_fail(err, PVM_ERR_LIMIT, 0,
                    "spi: arguments of %u bytes exceed Z_I = %llu", args_len,
                    (unsigned long long)I);
  memset(out, 0, sizeof *out);
  out->ro_start = (uint32_t)Z;
  out->ro_size = (uint32_t)page_up(spi->ro_len);
  out->rw_start = (uint32_t)(2 * Z + zone_up(spi->ro_len));
  out->rw_size = (uint32_t)(page_up(spi->rw_len) +
                            (uint64_t)spi->heap_pages * PVM_PAGE_SIZE);
  out->heap_start = out->rw_start;
  out->heap_top = out->rw_start + out->rw_size;
  out->stack_size = (uint32_t)page_up(spi->stack_size);
  out->stack_start = (uint32_t)((1ull << 32) - 2 * Z - I - out->stack_size);
  out->args_start = (uint32_t)((1ull << 32) - Z - I);
  out->args_size = (uint32_t)page_up(args_len);
  out->regs[0] = PVM_HALT_ADDRESS;
  out->regs[1] = (1ull << 32) - 2 * Z - I;
  out->regs[7] = out->args_start;
  out->regs[8] = args_len;
  return PVM_OK;
}

int nub_pvm_spi_load_memory(nub_pvm_mem *mem, const nub_pvm_spi *spi, const nub_pvm_spi_layout *l,
                        const uint8_t *args, uint32_t args_len, nub_pvm_error *err) {
  int rc;
  if ((rc = nub_pvm_mem_map(mem, l->ro_start, l->ro_size, PVM_ACCESS_RO, err)) ||
      (rc = nub_pvm_mem_map(mem, l->rw_start, l->rw_size, PVM_ACCESS_RW, err)) ||
      (rc = nub_pvm_mem_map(mem, l->stack_start, l->stack_size, PVM_ACCESS_RW, err)) ||
      (rc = nub_pvm_mem_map(mem, l->args_start, l->args_size, PVM_ACCESS_RO, err)) ||
      (rc = nub_pvm_mem_write(mem, l->ro_start, spi->ro_data, spi->ro_len, err)) ||
      (rc = nub_pvm_mem_write(mem, l->rw_start, spi->rw_data, spi->rw_len, err)) ||
      (rc = nub_pvm_mem_write(mem, l->args_start, args, args_len, err)))
    return rc;
  nub_pvm_mem_set_heap(mem, l->heap_top, l->stack_start - PVM_ZONE);
  return PVM_OK;
}

int nub_pvm_spi_encode(const nub_pvm_spi *spi, uint8_t **out, size_t *len, nub_pvm_error *err) {
  static const struct { const char *field; unsigned bytes; } fields[4] = {
    {"ro length", 3}, {"rw length", 3}, {"heap pages", 2}, {"stack size", 3},
  };
  const uint64_t values[4] = {spi->ro_len, spi->rw_len, spi->heap_pages, spi->stack_size};
  uint64_t total = 11 + (uint64_t)spi->ro_len + spi->rw_len + 4 + spi->code_blob_len;
  uint8_t *buf, *p;
  *out = NULL;
  *len = 0;
  for (int i = 0; i < 4; i++)
    if (values[i] >> (8 * fields[i].bytes))
      return pvm_fail(err, PVM_ERR_LIMIT, 0, "spi: %s %llu does not fit %u bytes",
                      fields[i].field, (unsigned long long)values[i], fields[i].bytes);
  if (!(buf = malloc(total)))
    return pvm_fail(err, PVM_ERR_NOMEM, 0, "spi: out of memory for %llu bytes",
                    (unsigned long long)total);
  p = buf;
  for (int i = 0; i < 4; i++) {
    pvm_le_write(p, values[i], fields[i].bytes);
    p += fields[i].bytes;
  }
  if (spi->ro_len) memcpy(p, spi->ro_data, spi->ro_len);
  p += spi->ro_len;
  if (spi->rw_len) memcpy(p, spi->rw_data, spi->rw_len);
  p += spi->rw_len;
  pvm_le_write(p, spi->code_blob_len, 4);
  p += 4;
  if (spi->code_blob_len) memcpy(p, spi->code_blob, spi->code_blob_len);
  *out = buf;
  *len = (size_t)total;
  return PVM_OK;
}
