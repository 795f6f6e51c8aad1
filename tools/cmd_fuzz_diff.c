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

static int compile_without(const pvm_program *prog, void **code, pvm_error *err) {
  jit_options o = {.disable = disabled_features};
  jit_code *c;
  int rc = jit_compile(prog, &o, &c, err);
  *code = rc ? NULL : c;
  return rc;
}

int cmd_fuzz_diff(int argc, char **argv) {
  static pvm_engine jit_without;
  fdiff_config cfg = {.profile = PVM_PROFILE_GP07, .seed = 1, .count = 10000, .max_insns = 48,
                      .ref = &pvm_engine_interp, .test = &jit_engine, .max_reports = 1,
                      .out = stdout};
  fdiff_stats st;
  int first = PVM_PROFILE_GP07, last = PVM_PROFILE_GP07;
  for (int i = 1; i < argc; i += 2) {         /* every option takes a value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t x;
    if (!v) {
      return cli_usage_error("fuzz-diff", "%s needs a value", a);
    } else if (!strcmp(a, "--count")) {
      if (!cli_parse_u64(v, UINT64_MAX, &cfg.count)) return cli_usage_error("fuzz-diff", "bad --count %s", v);
    } else if (!strcmp(a, "--seed")) {
      if (!cli_parse_u64(v, UINT64_MAX, &cfg.seed)) return cli_usage_error("fuzz-diff", "bad --seed %s", v);
    } else if (!strcmp(a, "--max-insns")) {
      if (!cli_parse_u64(v, 100000, &x) || x < 4)
        return cli_usage_error("fuzz-diff", "--max-insns must be 4..100000, not %s", v);
      cfg.max_insns = (unsigned)x;
    } else if (!strcmp(a, "--reports")) {
      if (!cli_parse_u64(v, 1000, &x) || x < 1)
        return cli_usage_error("fuzz-diff", "--reports must be 1..1000, not %s", v);
      cfg.max_reports = (unsigned)x;
    } else if (!strcmp(a, "--profile")) {
      if (!strcmp(v, "all")) {
        first = 0;
        last = PVM_PROFILE_COUNT - 1;
      } else {
        pvm_profile p;
        if (!cli_profile("fuzz-diff", v, &p)) return 2;
        first = last = (int)p;
      }
    } else if (!strcmp(a, "--save")) {
      cfg.save_dir = v;
    } else if (!strcmp(a, "--engine")) {
      if (!strcmp(v, "jit-no-lzcnt") || !strcmp(v, "jit-no-fsgsbase")) {
        disabled_features = !strcmp(v, "jit-no-lzcnt") ? JIT_CPU_LZCNT : JIT_CPU_FSGSBASE;
        jit_without = jit_engine;
        jit_without.name = !strcmp(v, "jit-no-lzcnt") ? "jit-no-lzcnt" : "jit-no-fsgsbase";
        jit_without.compile = compile_without;
        cfg.test = &jit_without;
      } else if (!(cfg.test = cli_engine(v))) {
        return 2;
      }
    } else {
      return cli_usage_error("fuzz-diff", "unexpected argument %s", a);
    }
  }
  /* one line per profile; the worst result decides the exit status */
  int worst = 0;
  uint64_t divergences = 0;
  for (int p = first; p <= last; p++) {
    cfg.profile = (pvm_profile)p;
    int rc = fdiff_run(&cfg, &st);
    unsigned ops, covered;
    fdiff_coverage(&st, cfg.profile, &covered, &ops);
    printf("fuzz-diff: %s vs %s, profile %s, seed %" PRIu64 ": %" PRIu64 " programs, %" PRIu64
           " runs (halt %" PRIu64 ", panic %" PRIu64 ", out-of-gas %" PRIu64 ", page-fault %" PRIu64
           ", host %" PRIu64 "), %" PRIu64 " gas used, opcodes %u/%u, %" PRIu64 " divergences\n",
           cfg.ref->name, cfg.test->name, pvm_profile_name(cfg.profile), cfg.seed, st.programs,
           st.runs, st.exits[PVM_HALT], st.exits[PVM_PANIC], st.exits[PVM_OOG], st.exits[PVM_FAULT],
           st.exits[PVM_HOST], st.gas_used, covered, ops, st.divergences);
    fflush(stdout);
    divergences += st.divergences;
    if (rc < 0) worst = -1;
    else if (rc > 0 && worst == 0) worst = 1;
  }
  if (last > first)
    printf("fuzz-diff: %d profiles, %" PRIu64 " divergences in all\n", last - first + 1, divergences);
  int rc = worst;
  return rc < 0 ? 2 : rc;
}
