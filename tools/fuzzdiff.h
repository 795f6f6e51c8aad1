/*
** Differential fuzzing of two PVM engines: random valid programs with
** random memory maps and register values, run in lock step on both; after
** every exit the status, pc, gas, registers, exit argument and all mapped
** memory must agree.  Host calls, page faults and out-of-gas exits are
** answered the same way on both sides (set registers, map the page, add
** gas) and execution resumes.  A divergence is shrunk by removing
** instructions and reported as a vector JSON that `nub vectors` reads.
*/
#ifndef NUB_FUZZDIFF_H
#define NUB_FUZZDIFF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nub/pvm.h"

typedef struct fdiff_config {
  nub_pvm_profile profile;         /* ISA the programs are generated and loaded under */
  uint64_t seed;
  uint64_t count;              /* programs */
  unsigned max_insns;          /* per program (>= 4) */
  const nub_pvm_engine *ref;       /* the reference (the interpreter) */
  const nub_pvm_engine *test;      /* the engine under test */
  const char *save_dir;        /* reproducers are also written here (may be NULL) */
  unsigned max_reports;        /* stop after this many divergences (0: 1) */
  FILE *out;                   /* progress and reproducers */
} fdiff_config;

typedef struct fdiff_stats {
  uint64_t programs, runs, divergences;
  uint64_t gas_used;                   /* by the reference: about the instructions run */
  uint64_t exits[PVM_HOST + 1];        /* by status */
  uint32_t opcode_programs[256];       /* programs containing each opcode */
} fdiff_stats;

/* Counts of an fdiff_stats: programs containing each valid opcode of the
** profile (covered of total). */
void fdiff_coverage(const fdiff_stats *stats, nub_pvm_profile profile, unsigned *covered,
                    unsigned *total);

/* Returns 0 when nothing diverged, 1 on divergence, -1 on a setup error
** (message on cfg->out). */
int fdiff_run(const fdiff_config *cfg, fdiff_stats *stats);

#endif
