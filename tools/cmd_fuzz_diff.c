/*
** nub fuzz-diff: differential fuzzing of the JIT against the interpreter.
*/
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fuzzdiff.h"
#include "nub/jit.h"

/* The JIT compiled without a feature this CPU has: LZCNT (the bsr
** fallback) or FSGSBASE (guest memory at [r15 + rcx], gas in the frame). */
static uint32_t disabled_features;

static int compile_without(const nub_pvm_program *prog, void **code, nub_pvm_error *err) {
  nub_jit_options o = {.disable = disabled_features};
  nub_jit_code *c;
  int rc = nub_jit_compile(prog, &o, &c, err);
  *code = rc ? NULL : c;
  return rc;
}

static const cli_opt fuzz_diff_opts[] = {
  {"profile", 0, CLI_PROFILES "|all", "gp07", "ISA profile of the random programs; all: each profile in turn"},
  {"count", 0, "N", "10000", "programs per profile"},
  {"seed", 0, "S", "1", "random seed"},
  {"max-insns", 0, "K", "48", "instructions per program, 4..100000"},
  {"reports", 0, "N", "1", "divergences reported before stopping, 1..1000"},
  {"save", 0, "DIR", NULL, "write every divergence as a vector JSON file to DIR"},
  {"engine", 0, "jit|interp|jit-no-lzcnt|jit-no-fsgsbase", "jit", "engine tested against the interpreter (jit-no-lzcnt: the JIT's bsr fallback; jit-no-fsgsbase: gas in the frame, memory at [r15 + x])"},
  {0}};

const cli_spec cli_fuzz_diff_spec = {
  "fuzz-diff", "", "differential fuzzing, JIT vs interpreter: random programs compared after every exit, gas to the unit",
  "Prints one line per profile; a divergence prints a shrunk vector JSON.\n"
  "Exit code: 0 no divergence, 1 a divergence, 2 on a usage or set-up error.",
  0, 0, fuzz_diff_opts};

int cmd_fuzz_diff(int argc, char **argv) {
  static nub_pvm_engine jit_without;
  fdiff_config cfg = {.profile = PVM_PROFILE_GP07, .ref = &nub_pvm_engine_interp, .test = &nub_jit_engine,
                      .out = stdout};
  fdiff_stats st;
  cli_args a;
  uint64_t insns = 0, reports = 0;
  int first, last, rc = cli_parse(&cli_fuzz_diff_spec, argc, argv, &a);
  if (rc) return rc == CLI_HELP ? 0 : rc;
  if ((rc = cli_get_u64(&a, "count", 0, UINT64_MAX, &cfg.count)) ||
      (rc = cli_get_u64(&a, "seed", 0, UINT64_MAX, &cfg.seed)) ||
      (rc = cli_get_u64(&a, "max-insns", 4, 100000, &insns)) ||
      (rc = cli_get_u64(&a, "reports", 1, 1000, &reports)))
    return rc;
  cfg.max_insns = (unsigned)insns;
  cfg.max_reports = (unsigned)reports;
  cfg.save_dir = cli_get(&a, "save");
  first = last = cli_choice(&a, "profile");
  if (first == PVM_PROFILE_COUNT) {             /* all */
    first = 0;
    last = PVM_PROFILE_COUNT - 1;
  }
  switch (cli_choice(&a, "engine")) {
  case 1: cfg.test = &nub_pvm_engine_interp; break;
  case 2: case 3:              /* jit-no-lzcnt, jit-no-fsgsbase */
    disabled_features = cli_choice(&a, "engine") == 2 ? JIT_CPU_LZCNT : JIT_CPU_FSGSBASE;
    jit_without = nub_jit_engine;
    jit_without.name = cli_get(&a, "engine");
    jit_without.compile = compile_without;
    cfg.test = &jit_without;
    break;
  default: break;
  }
  /* one line per profile; the worst result decides the exit status */
  int worst = 0;
  uint64_t divergences = 0;
  for (int p = first; p <= last; p++) {
    cfg.profile = (nub_pvm_profile)p;
    rc = fdiff_run(&cfg, &st);
    unsigned ops, covered;
    fdiff_coverage(&st, cfg.profile, &covered, &ops);
    printf("fuzz-diff: %s vs %s, profile %s, seed %" PRIu64 ": %" PRIu64 " programs, %" PRIu64
           " runs (halt %" PRIu64 ", panic %" PRIu64 ", out-of-gas %" PRIu64 ", page-fault %" PRIu64
           ", host %" PRIu64 "), %" PRIu64 " gas used, opcodes %u/%u, %" PRIu64 " divergences\n",
           cfg.ref->name, cfg.test->name, nub_pvm_profile_name(cfg.profile), cfg.seed, st.programs,
           st.runs, st.exits[PVM_HALT], st.exits[PVM_PANIC], st.exits[PVM_OOG], st.exits[PVM_FAULT],
           st.exits[PVM_HOST], st.gas_used, covered, ops, st.divergences);
    fflush(stdout);
    divergences += st.divergences;
    if (rc < 0) worst = -1;
    else if (rc > 0 && worst == 0) worst = 1;
  }
  if (last > first)
    printf("fuzz-diff: %d profiles, %" PRIu64 " divergences in all\n", last - first + 1, divergences);
  return worst < 0 ? 2 : worst;
}
