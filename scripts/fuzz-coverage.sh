#!/usr/bin/env bash
# Branch coverage a libFuzzer target reaches: builds the fuzz targets with
# clang source-based coverage in build-cov/ (clang-14, as the fuzz preset),
# runs TARGET from its committed seed corpus for SECONDS with a fixed seed
# (scratch corpus; the tree stays clean), and prints llvm-cov's per-function
# report for FILES (default: the kernel's invoke path and memory set-up).
#   scripts/fuzz-coverage.sh fuzz_nk_serve 20
set -euo pipefail
target=${1:?usage: fuzz-coverage.sh TARGET [SECONDS] [FILES...]}
seconds=${2:-20}
shift $(( $# >= 2 ? 2 : 1 ))
root=$(cd "$(dirname "$0")/.." && pwd)
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(src/guest/nk_invoke.c src/cap/memory.c)
build="$root/build-cov"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_C_FLAGS_DEBUG=-O1 -g -fprofile-instr-generate -fcoverage-mapping" \
  -DNUB_FUZZ=ON -DNUB_TESTS=OFF >/dev/null
cmake --build "$build" --target "$target" >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus"
seeds=()
[ -d "$root/fuzz/corpus/$target" ] && seeds=("$root/fuzz/corpus/$target")
LLVM_PROFILE_FILE="$scratch/run.profraw" "$build/$target" -seed=1 -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$scratch/" "$scratch/corpus" "${seeds[@]}" \
  2>"$scratch/run.log" || { tail -n 40 "$scratch/run.log"; exit 1; }
grep -E '^Done' "$scratch/run.log" || true
llvm-profdata-14 merge -o "$scratch/run.profdata" "$scratch/run.profraw"
for f in "${files[@]}"; do
  llvm-cov-14 report "$build/$target" -instr-profile="$scratch/run.profdata" -show-functions \
    "$root/$f"
done
