#!/usr/bin/env bash
# Install the Debian packages nub needs, only when something is missing.
# Idempotent: a machine that has everything runs no apt command at all.
set -eu

packages="cmake ninja-build gcc make pkg-config python3 \
  libsodium-dev libcmocka-dev libzydis-dev \
  clang-14 lld-14 libclang-rt-14-dev \
  clang-19 lld-19 llvm-19 qemu-user"

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
