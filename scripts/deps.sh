#!/usr/bin/env bash
# Install the Debian packages nub needs, only when something is missing.
# Idempotent: a machine that has everything runs no apt command at all.
#
#   scripts/deps.sh build   what the release CLI and library need (`make`)
#   scripts/deps.sh test    that plus what the tests, fuzzers and checks
#                           need (`make test`, `make dev`, `make fuzz`)
set -eu

build="cmake ninja-build gcc make pkg-config libsodium-dev"
# cmocka: unit tests; zydis: the JIT tests' disassembler; python3: the SSZ
# cross-check and the export/layer checks; g++: public headers as C++17;
# libcap-dev: nub beside libcap; valgrind: nub exec under valgrind;
# clang/lld/compiler-rt: the libFuzzer targets.
test="$build python3 g++ libcmocka-dev libzydis-dev libcap-dev valgrind \
  clang-14 lld-14 libclang-rt-14-dev"

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

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
