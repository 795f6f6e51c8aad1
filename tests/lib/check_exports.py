#!/usr/bin/env python3
"""The dynamic symbols libnub.so exports must be exactly the declarations
the public headers mark NUB_API, each under a prefix nub owns.

    check_exports.py LIBNUB_SO INCLUDE_DIR

Prints the symbols it found and every mismatch; exit 1 on any."""
import glob
import os
import re
import subprocess
import sys

# Every exported symbol carries the prefix nub owns.
ALLOWED_PREFIXES = ("nub_",)
# Defined by the linker in every shared object, not by nub.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}


UNMARKED = re.compile(r"(?:extern\s+)?(?:const\s+)?(?:struct\s+|enum\s+)?\w+[\s*]+\w+\s*[(\[;]")


def declared(include_dir):
    names = {}
    for path in sorted(glob.glob(os.path.join(include_dir, "*.h"))):
        for no, line in enumerate(open(path), 1):
            if UNMARKED.match(line) and not line.startswith(("typedef", "static", "return")) \
                    and not re.match(r"(struct|enum|union)\s+\w+;", line):
                names.setdefault("!unmarked", []).append(f"{os.path.basename(path)}:{no}: {line.strip()}")
            if not line.startswith("NUB_API "):
                continue
            m = re.match(r"NUB_API\s+[^(;\[]*?\**\b([A-Za-z_]\w*)\s*[(;\[]", line)
            if not m:
                sys.exit(f"{path}:{no}: cannot read the declared name: {line.strip()}")
            names[m.group(1)] = f"{os.path.basename(path)}:{no}"
    return names


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        name = line.split()[-1]
        if name in LINKER_SYMBOLS:
            continue
        # AddressSanitizer's one-definition-rule marker of an exported global.
        if name.startswith("__odr_asan."):
            name = name[len("__odr_asan."):]
        names.add(name)
    return names


def main():
    lib, include_dir = sys.argv[1], sys.argv[2]
    decl, exp = declared(include_dir), exported(lib)
    bad = 0
    for where in decl.pop("!unmarked", []):
        print(f"public declaration without NUB_API (never exported): {where}")
        bad += 1
    for name in sorted(exp - decl.keys()):
        print(f"exported but not declared NUB_API in a public header: {name}")
        bad += 1
    for name in sorted(decl.keys() - exp):
        print(f"declared NUB_API ({decl[name]}) but not exported: {name}")
        bad += 1
    for name in sorted(decl):
        if not name.startswith(ALLOWED_PREFIXES):
            print(f"public name outside the prefixes {ALLOWED_PREFIXES}: {name} ({decl[name]})")
            bad += 1
    for name in sorted(exp):
        print(f"  {name}")
    by_prefix = {}
    for name in exp:
        by_prefix[name.split("_")[0]] = by_prefix.get(name.split("_")[0], 0) + 1
    print(f"{len(exp)} exported symbols ({', '.join(f'{k}_: {v}' for k, v in sorted(by_prefix.items()))}),"
          f" {len(decl)} NUB_API declarations, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
