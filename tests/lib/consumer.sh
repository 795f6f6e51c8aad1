#!/bin/sh
# Install nub into a scratch prefix and build and run the README example
# (examples/embed.c) from outside the tree through every route: pkg-config
# (libnub.so, and libnub.a with --static bringing -lsodium) and the CMake
# package (nub::nub, nub::nub_static).  Each runs over the proc backend
# with no NUB_GUEST: the library finds nub-guest in PREFIX/libexec/nub,
# the path compiled into it.
#   consumer.sh BUILD_DIR SOURCE_DIR PREFIX CC "SANITIZER_FLAGS"
set -eu
build=$1 src=$2 prefix=$3 cc=$4 san=$5
case "$prefix" in
  "$build"/*) ;;
  *) echo "CMAKE_INSTALL_PREFIX ($prefix) must lie inside the build tree ($build):" \
          "this test installs there"; exit 1 ;;
esac
unset NUB_GUEST
work=$build/consumer-test
rm -rf "$prefix" "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
[ -x "$prefix/libexec/nub/nub-guest" ] || { echo "no nub-guest in $prefix/libexec/nub"; exit 1; }

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
libdir=$(pkg-config --variable=libdir nub)
static_libs=$(pkg-config --libs --static nub)
echo "pkg-config --libs --static nub: $static_libs"
case " $static_libs " in *" -lsodium "*) ;; *) echo "--static does not bring -lsodium"; exit 1 ;; esac

prog=$src/examples/add_regs.pvm
runs=0
run() {   # run NAME EXE
  out=$("$2" "$prog") || { echo "$1: failed: $out"; exit 1; }
  echo "$1: $out"
  case "$out" in *"exit 0 r7 42 "*) ;; *) echo "$1: wrong result"; exit 1 ;; esac
  runs=$((runs + 1))
}

# shellcheck disable=SC2086
$cc $san -o "$work/embed_pc" "$src/examples/embed.c" $(pkg-config --cflags --libs nub) \
  -Wl,-rpath,"$libdir"
run "pkg-config (libnub.so)" "$work/embed_pc"
# shellcheck disable=SC2086
$cc $san -o "$work/embed_pc_static" "$src/examples/embed.c" $(pkg-config --cflags nub) \
  "$libdir/libnub.a" $(echo "$static_libs" | sed 's/ -lnub / /; s/^-lnub / /')
run "pkg-config --static (libnub.a)" "$work/embed_pc_static"
if ldd "$work/embed_pc_static" | grep -q libnub; then echo "the static consumer loads libnub.so"; exit 1; fi

cmake -S "$src/tests/lib/consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" -DEMBED_SOURCE="$src/examples/embed.c" \
  >"$work/cmake.log"
cmake --build "$work/cmake" >>"$work/cmake.log"
run "find_package(nub) nub::nub" "$work/cmake/embed_shared"
run "find_package(nub) nub::nub_static" "$work/cmake/embed_static"
echo "$runs consumers built and run"
