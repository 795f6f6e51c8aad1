/*
** PVM JSON test vectors (the w3f v0.4 schema, plus "out-of-gas" and
** "host" exits with an optional "expected-host-call").
*/
#ifndef NUB_VECTOR_H
#define NUB_VECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

typedef struct vec_region {
  uint32_t address;
  uint32_t length;        /* page map: bytes; memory: contents length */
  uint8_t writable;
  uint8_t *contents;      /* memory chunks only */
} vec_region;

typedef struct pvm_vector {
  char name[128];
  uint64_t regs[PVM_REGS];
  uint32_t pc;
  int64_t gas;
  uint8_t *program;
  size_t program_len;
  vec_region *pages;   size_t npages;
  vec_region *memory;  size_t nmemory;
  int status;                      /* pvm_status */
  uint64_t exp_regs[PVM_REGS];
  uint32_t exp_pc;
  int64_t exp_gas;
  vec_region *exp_memory; size_t nexp_memory;
  int has_fault_address; uint32_t exp_fault_address;
  int has_host_call; uint32_t exp_host_call;
} pvm_vector;

/* Parse a vector file's bytes; on error fills why. */
int vector_parse(const char *text, size_t len, pvm_vector *v, char *why, size_t whylen);
void vector_free(pvm_vector *v);

/* Run a vector on an engine.  Returns 0 when everything matches;
** otherwise 1 with a description of every mismatch in why. */
int vector_check(const pvm_vector *v, const pvm_engine *engine, char *why, size_t whylen);

/* Map status names of the schema to pvm_status; -1 if unknown. */
int vector_status_by_name(const char *s);
const char *vector_status_name(int status);

#endif
