#!/usr/bin/env bash
# Print the counts the test runners themselves printed (vectors, fuzz-diff,
# cap vectors, ...), each with the CTest name it came from, so a CI log
# shows the figures and not only "Passed".
set -eu
log=${1:-build-dev/Testing/Temporary/LastTest.log}
[ -f "$log" ] || { echo "test-summary: no $log"; exit 1; }
awk '
  /^[0-9]+\/[0-9]+ Testing: / { name = $3; next }
  /^[0-9]+ passed, [0-9]+ failed$/ || /^fuzz-diff: / || /^cap vectors: / ||
  /^ssz_check: / || /lookup rounds/ || / exported symbols / || /consumers built and run$/ ||
  / includes checked / || /^[0-9]+ checks, [0-9]+ failed$/ || /^[0-9]+ headers, / { printf "  %-22s %s\n", name, $0 }
' "$log"
