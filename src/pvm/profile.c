/*
** Per-profile execution semantics: what a profile changes beyond opcode
** numbering, terminators and gas (those are the ISA tables in isa.c).
*/
#include "pvm_internal.h"

static const nub_pvm_semantics semantics[PVM_PROFILE_COUNT] = {
  /* GP 0.7 and the Nov 2025 draft (whose vectors expect a panic, as
  ** PolkaVM did then): a store to a read-only page panics. */
  [PVM_PROFILE_GP07] = {.ro_store_faults = false},
  [PVM_PROFILE_GP08_DRAFT] = {.ro_store_faults = false},
  /* GP 0.8.0 A.7: "where RAM must be mutated and yet mutable access is
  ** not possible ... the exit reason is a fault" (PolkaVM 0.35 agrees). */
  [PVM_PROFILE_JAMV1] = {.ro_store_faults = true},
};

const nub_pvm_semantics *nub_pvm_profile_semantics(nub_pvm_profile profile) {
  return (unsigned)profile < PVM_PROFILE_COUNT ? &semantics[profile] : NULL;
}
