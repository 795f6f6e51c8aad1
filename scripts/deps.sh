#!/usr/bin/env bash
# Install the Debian packages nub needs, only when something is missing.
# Idempotent: a machine that has everything runs no apt command at all.
#
#   scripts/deps.sh build   what the release CLI and library need (`make`)
#   scripts/deps.sh test    that plus what the tests, fuzzers and checks
#                           need (`make test`, `make dev`, `make fuzz`)
set -eu

# clang-19/lld-19: the C runtime and workloads, built for RV64E by every
# preset (nub bench programs needs them too).
build="cmake ninja-build gcc make pkg-config libsodium-dev clang-19 lld-19"
# cmocka: unit tests; zydis: the JIT tests' disassembler; python3: the SSZ
# cross-check and the export/layer checks; g++: public headers as C++17;
# libcap-dev: nub beside libcap; valgrind: nub exec under valgrind;
# clang/lld/compiler-rt 14: the libFuzzer targets; llvm-19 and qemu-user:
# the nub link tests (objdump, qemu-riscv64 as the reference).
test="$build python3 g++ libcmocka-dev libzydis-dev libcap-dev valgrind \
  clang-14 lld-14 libclang-rt-14-dev llvm-19 qemu-user"

case "${1:-test}" in
  build) packages=$build ;;
  test) packages=$test ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

# npm fetches the zlib sources of the zlib workload (scripts/fetch-zlib.sh);
# any npm will do (Debian's package if none is installed).
command -v npm >/dev/null 2>&1 || missing="$missing npm"

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
