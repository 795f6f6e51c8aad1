/*
** Running programs built with the guest runtime (runtime/, docs/runtime.md)
** on the engine: the log host call is serviced and the program resumed.
*/
#ifndef NUB_GUEST_RUN_H
#define NUB_GUEST_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "nub/pvm.h"

#define GUEST_HOST_LOG 100u            /* JIP-1 log: phi7 level, phi10/11 message */
#define GUEST_LOG_MAX 4096u            /* longer messages are cut to this */
#define GUEST_HOST_OOB 0xFFFFFFFFFFFFFFFDull   /* phi7 when the message is unreadable */

typedef void guest_log_fn(void *ud, uint64_t level, const char *msg, size_t len);

/* Runs vm until an exit other than ecalli GUEST_HOST_LOG; each log call
** reads at most GUEST_LOG_MAX bytes of the message from mem, passes them
** to log (if not NULL), sets phi7 = 0 (GUEST_HOST_OOB if the message is
** not readable) and resumes.  Each call costs the program its ecalli's
** gas like any instruction; *log_calls (if not NULL) counts them. */
nub_pvm_status guest_run(nub_pvm_vm *vm, const nub_pvm_mem *mem, guest_log_fn *log, void *ud,
                     uint64_t *log_calls);

/* A log sink printing "log: MESSAGE" lines (non-printable bytes as \xNN)
** to the FILE * in ud. */
void guest_log_print(void *ud, uint64_t level, const char *msg, size_t len);



/* One SPI program run by guest_spi_run: phi7 = a0, phi8 = a1 after the
** SPI layout (no argument bytes), gas as given. */
typedef struct guest_result {
  nub_pvm_status status;
  uint32_t pc;
  uint64_t value;             /* phi7 at the exit */
  int64_t gas_used;
  uint64_t compile_ns;        /* nub_pvm_program_load + engine compile */
  uint64_t run_ns;            /* best of the runs, memory set-up excluded */
  uint64_t log_calls;         /* of the last run */
} guest_result;

/* Loads the SPI program, compiles it once on engine and runs it `runs`
** times (>= 1) on fresh memory, each with the log call serviced (log gets
** the last run's lines only).  Returns 0, or -1 with err set when the
** program cannot be loaded or compiled; a run that does not halt is a
** result (out->status), not an error. */
int guest_spi_run(const uint8_t *spi, size_t len, nub_pvm_profile profile, const nub_pvm_engine *engine,
                  uint64_t a0, uint64_t a1, int64_t gas, unsigned runs, guest_log_fn *log,
                  void *ud, guest_result *out, nub_pvm_error *err);
#endif
