#!/bin/sh
# Every public header compiles alone as C++17 (and as C11) with warnings
# as errors: embedders include them from C++.
#   headers_cxx.sh INCLUDE_DIR CXX CC
set -u
inc=$1 cxx=$2 cc=$3
n=0 bad=0
for h in "$inc"/nub/*.h; do
  name=nub/$(basename "$h")
  n=$((n + 1))
  if ! printf '#include "%s"\nint main(void) { return 0; }\n' "$name" |
       "$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c++ -; then
    echo "C++17: $name does not compile"; bad=$((bad + 1))
  fi
  if ! printf '#include "%s"\nint main(void) { return 0; }\n' "$name" |
       "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c -; then
    echo "C11: $name does not compile"; bad=$((bad + 1))
  fi
done
echo "$n headers, $bad failures"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
