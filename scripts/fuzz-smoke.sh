#!/usr/bin/env bash
# Run every libFuzzer target in BUILD_DIR briefly (NUB_FUZZ_SECONDS each,
# default 20).  Seeds come from fuzz/corpus/<target>/ when present; new
# inputs go to a scratch corpus so the tree stays clean.  Fails on the
# first crash, leak or timeout.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${NUB_FUZZ_SECONDS:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
found=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  found=$((found + 1))
  name=$(basename "$bin")
  mkdir -p "$scratch/$name"
  seeds=()
  [ -d "$root/fuzz/corpus/$name" ] && seeds=("$root/fuzz/corpus/$name")
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$scratch/$name-" -print_final_stats=1 \
    "$scratch/$name" "${seeds[@]}" 2>"$scratch/$name.log" || {
      echo "fuzz: $name FAILED"; tail -n 60 "$scratch/$name.log"
      for a in "$scratch/$name"-*; do [ -f "$a" ] && { echo "artifact: $a"; xxd "$a" | head -20; }; done
      exit 1; }
  grep -E 'stat::number_of_executed_units|stat::new_units_added' "$scratch/$name.log" | sed "s/^/  $name /"
done
[ "$found" -gt 0 ] || { echo "fuzz: no targets in $build"; exit 1; }
echo "fuzz: $found targets ran clean"
