#!/bin/sh
# Run a command (valgrind around nub-nosan) with NUB_GUEST pointing at a
# copy of the guest in a world-searchable directory.  Why: the guest is
# started after setresuid to the guest id; under valgrind
# (--trace-children=no) that start fails with exit 127 when the checkout
# lies under a 0700 directory, such as mktemp -d's (seen: chmod 755 of that
# directory alone fixes it), while without valgrind the host executes the
# guest through an fd it opened before, so the path does not matter.
# usage: valgrind_proc.sh GUEST COMMAND...
set -eu
guest=$1; shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "$guest" "$dir/nub-guest"
rc=0
NUB_GUEST="$dir/nub-guest" "$@" || rc=$?
exit $rc
