#!/usr/bin/env python3
"""Fail on an #include that points up the layer table of
docs/architecture.md ("a layer never includes a layer above it").

    check-layers.py SOURCE_DIR

The table is read from the doc (its first code block under "## Layers",
top layer first); every "..." include in src/ and tools/ is resolved to
a file and that file to a layer."""
import os
import re
import sys

# Public headers belong to the layer that implements them; abi.h and
# api.h define no code and sit below every layer.
PUBLIC = {"pvm.h": "src/pvm", "jit.h": "src/jit", "cap.h": "src/cap", "nub.h": "src/host",
          "abi.h": None, "api.h": None}


def layer_table(root):
    doc = open(os.path.join(root, "docs", "architecture.md")).read()
    section = doc.split("## Layers", 1)[1]
    block = section.split("```", 2)[1]
    order = re.findall(r"^\s+(src/\w+|tools/)", block, re.M)
    if len(order) < 3:
        sys.exit("docs/architecture.md: cannot read the layer table")
    # rank: bottom layer 1, upwards; None (abi.h, api.h) is 0
    return {name.rstrip("/"): len(order) - i for i, name in enumerate(order)}


def layer_of(path, root):
    rel = os.path.relpath(path, root)
    if rel.startswith("include/nub/"):
        name = os.path.basename(rel)
        if name not in PUBLIC:
            return "?"
        return PUBLIC[name]
    parts = rel.split(os.sep)
    if parts[0] == "src" and len(parts) > 2:
        return "src/" + parts[1]
    if parts[0] == "tools":
        return "tools"
    return "outside"   # bench/, tests/: not layers


def main():
    root = os.path.abspath(sys.argv[1])
    rank = layer_table(root)
    bad = checked = 0
    for top in ("src", "tools"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                mine = layer_of(path, root)
                for no, line in enumerate(open(path, errors="replace"), 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    inc = m.group(1)
                    cands = [os.path.join(dirpath, inc), os.path.join(root, "include", inc),
                             os.path.join(root, "src", inc)]
                    target = next((c for c in cands if os.path.exists(c)), None)
                    if target is None:
                        continue   # generated at build time
                    theirs = layer_of(os.path.normpath(target), root)
                    checked += 1
                    if theirs == "?":
                        print(f"{os.path.relpath(path, root)}:{no}: {inc}: a public header"
                              " missing from check-layers.py's table")
                        bad += 1
                    elif theirs == "outside" and mine != "tools":
                        print(f"{os.path.relpath(path, root)}:{no}: {inc}: a library layer"
                              " includes a file outside the layers")
                        bad += 1
                    elif theirs not in (None, "outside") and mine in rank and \
                            rank[theirs] > rank[mine]:
                        print(f"{os.path.relpath(path, root)}:{no}: {inc}: {mine} includes"
                              f" {theirs}, a layer above it (docs/architecture.md)")
                        bad += 1
    print(f"{checked} includes checked against {len(rank)} layers, {bad} upward")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
