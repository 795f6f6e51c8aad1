/*
** PVM JSON test vectors: the w3f v0.4 schema (plus "out-of-gas" and
** "host" exits with an optional "expected-host-call") and the multi-step
** schema of the new-gas-model vectors (steps set-reg, map, write, run,
** assert; "block-gas-costs").  A w3f vector is read as the steps
** map/write/set-reg, run, assert.
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

/* What an assert step (or a w3f vector's expected-*) checks. */
typedef struct vec_assert {
  int status;                      /* nub_pvm_status */
  uint64_t regs[PVM_REGS];
  uint32_t pc;
  int64_t gas;
  vec_region *memory; size_t nmemory;
  int has_fault_address; uint32_t fault_address;
  int has_host_call; uint32_t host_call;
} vec_assert;

typedef enum vec_step_kind { VEC_SET_REG, VEC_MAP, VEC_WRITE, VEC_RUN, VEC_ASSERT } vec_step_kind;

typedef struct vec_step {
  int kind;                        /* vec_step_kind */
  uint32_t reg; uint64_t value;    /* set-reg */
  vec_region region;               /* map (length, writable) / write (contents) */
  vec_assert expect;               /* assert */
} vec_step;

typedef struct vec_block_cost { uint32_t pc, cost; } vec_block_cost;

typedef struct pvm_vector {
  char name[128];
  nub_pvm_profile profile;             /* the ISA and gas model to run under; parse sets gp07 */
  uint32_t pc;
  int64_t gas;
  uint8_t *program;
  size_t program_len;
  vec_step *steps; size_t nsteps;
  vec_block_cost *block_costs; size_t nblock_costs;   /* sorted by pc */
  int has_block_costs;
} pvm_vector;

/* Parse a vector file's bytes; on error fills why. */
int vector_parse(const char *text, size_t len, pvm_vector *v, char *why, size_t whylen);
void vector_free(pvm_vector *v);

/* Run a vector on an engine under v->profile, and compare its block
** costs when it lists them.  Returns 0 when everything matches;
** otherwise 1 with a description of every mismatch in why. */
int vector_check(const pvm_vector *v, const nub_pvm_engine *engine, char *why, size_t whylen);

/* Map status names of the schema to nub_pvm_status; -1 if unknown. */
int vector_status_by_name(const char *s);
const char *vector_status_name(int status);

/* Compare prog's basic-block costs with want (sorted by pc), calling diff
** with a message for every difference.  Returns the number of equal
** costs; *ndiff counts the differences. */
unsigned vector_compare_block_costs(const nub_pvm_program *prog, const vec_block_cost *want,
                                    size_t nwant, void (*diff)(void *ud, const char *msg),
                                    void *ud, unsigned *ndiff);
/* "block-gas-costs" of a vector as a sorted array (caller frees); -1
** with why on a bad entry. */
struct json_value;
int vector_block_costs(const struct json_value *costs, vec_block_cost **out, size_t *n,
                       char *why, size_t whylen);

#endif
