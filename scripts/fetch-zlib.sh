#!/usr/bin/env bash
# Fetch zlib 1.3.1's C sources for the zlib workload (workloads/zlib_run.c)
# into DEST (under the build directory; never committed).  They come from
# the npm package zlib-sync 0.1.10, which ships zlib 1.3.1 unmodified in
# deps/zlib/; `npm pack` fetches the tarball without installing anything.
# The tarball is pinned by version and SHA-256 and cached in DEST.
#   usage: fetch-zlib.sh DEST
set -eu
dest=$1
pkg=zlib-sync@0.1.10
tarball=zlib-sync-0.1.10.tgz
sha256=bd2180fc18426cf464ecab1321bb31a1af81c36b927a28cdb26c3a56f302f2b6
files="adler32.c compress.c crc32.c deflate.c infback.c inffast.c inflate.c inftrees.c \
trees.c uncompr.c zutil.c crc32.h deflate.h gzguts.h inffast.h inffixed.h inflate.h \
inftrees.h trees.h zconf.h zlib.h zutil.h"

mkdir -p "$dest"
cd "$dest"
if [ ! -f "$tarball" ] || ! echo "$sha256  $tarball" | sha256sum -c --status; then
  rm -f "$tarball"
  command -v npm >/dev/null || { echo "fetch-zlib: npm not found (scripts/deps.sh installs it)" >&2; exit 1; }
  npm pack "$pkg" --silent >/dev/null || { echo "fetch-zlib: npm pack $pkg failed" >&2; exit 1; }
fi
if ! echo "$sha256  $tarball" | sha256sum -c --status; then
  echo "fetch-zlib: $tarball does not have SHA-256 $sha256" >&2
  exit 1
fi
rm -rf package zlib.tmp
tar xzf "$tarball"
mkdir zlib.tmp
for f in $files; do cp "package/deps/zlib/$f" zlib.tmp/; done
grep -q '#define ZLIB_VERSION "1.3.1"' zlib.tmp/zlib.h || { echo "fetch-zlib: not zlib 1.3.1" >&2; exit 1; }
rm -rf zlib package
mv zlib.tmp zlib
touch zlib/.stamp
