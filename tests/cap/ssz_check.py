#!/usr/bin/env python3
"""Independent cross-check of the capability hashes (docs/wire.md).

Parses every tests/vectors/caps/*.json wire object with its own SSZ reader
and recomputes the SHA-256 hash_tree_root of the Cap union using only
hashlib and json, with a sparse merkleizer (a dict of non-zero nodes per
level) rather than the C library's streaming one.  Exit status 1 on any
mismatch.

    ssz_check.py VECTOR_DIR
"""
import hashlib
import json
import os
import sys

KINDS = {0: "instance", 1: "image", 2: "data", 3: "cnode"}
PROFILES = {0: "gp07", 1: "gp08-draft", 2: "jamv1"}   # Image.profile (docs/wire.md 2.2)
PAGE = 4096

LIMIT_CODE_CHUNKS = (1 << 28) // 32
LIMIT_ENDPOINTS = 256
LIMIT_MAPPINGS = 256
LIMIT_IMAGE_SLOTS = 256
LIMIT_OVERLAYS = 256
LIMIT_CNODE_SLOTS = 65536


def h(a, b):
    return hashlib.sha256(a + b).digest()


ZERO = [bytes(32)]
for _ in range(64):
    ZERO.append(h(ZERO[-1], ZERO[-1]))


def depth_of(limit):
    d = 0
    while (1 << d) < limit:
        d += 1
    return d


def merkleize(nodes, limit):
    """nodes: {index: 32-byte chunk}; missing leaves are zero chunks."""
    depth = depth_of(limit)
    assert all(i < (1 << depth) for i in nodes), "more chunks than the limit"
    layer = dict(nodes)
    for d in range(depth):
        parents = {}
        for i in {k // 2 for k in layer}:
            parents[i] = h(layer.get(2 * i, ZERO[d]), layer.get(2 * i + 1, ZERO[d]))
        layer = parents
    return layer.get(0, ZERO[depth])


def chunks_of(data):
    data = data + bytes(-len(data) % 32)
    return {i: data[32 * i:32 * i + 32] for i in range(len(data) // 32)}


def uint_chunk(v):
    return v.to_bytes(32, "little")


def mix_in(root, n):
    return h(root, uint_chunk(n))


def container(*field_roots):
    return merkleize(dict(enumerate(field_roots)), len(field_roots))


def list_root(elem_roots, limit):
    return mix_in(merkleize(dict(enumerate(elem_roots)), limit), len(elem_roots))


def u(b, off, n):
    return int.from_bytes(b[off:off + n], "little")


def split_fixed(b, elem):
    assert len(b) % elem == 0, "list length is not a multiple of the element size"
    return [b[i:i + elem] for i in range(0, len(b), elem)]


def split_variable(b):
    if not b:
        return []
    first = u(b, 0, 4)
    n = first // 4
    offs = [u(b, 4 * i, 4) for i in range(n)] + [len(b)]
    return [b[offs[i]:offs[i + 1]] for i in range(n)]


def fields(body, fixed, offset_positions):
    """The variable-size fields of a container, by their 4-byte offsets."""
    offs = [u(body, p, 4) for p in offset_positions] + [len(body)]
    assert offs[0] == fixed, "first offset is not the end of the fixed part"
    return [body[offs[i]:offs[i + 1]] for i in range(len(offset_positions))]


def regs_root(b):   # Vector[uint64, 13]: 104 bytes packed in 4 chunks
    return merkleize(chunks_of(b), 4)


def slot_root(e):   # {key: ByteList[8], hash: Bytes32}
    assert u(e, 0, 4) == 36
    key, cap = e[36:], e[4:36]
    return container(mix_in(merkleize(chunks_of(key), 1), len(key)), cap)


def data_root(body):
    size = u(body, 0, 8)
    (pages,) = fields(body, 12, [8])
    roots = {}
    for rec in split_fixed(pages, 4 + PAGE):
        roots[u(rec, 0, 4)] = merkleize(chunks_of(rec[4:]), PAGE // 32)
    return container(uint_chunk(size), merkleize(roots, size // PAGE))


def image_root(body):
    assert body[0] in PROFILES, "image.profile %d is reserved" % body[0]
    code, endpoints, mappings, slots = fields(body, 25, [9, 13, 17, 21])
    eps = [container(uint_chunk(e[0]), uint_chunk(u(e, 1, 4)), uint_chunk(u(e, 5, 4)),
                     regs_root(e[9:113])) for e in split_fixed(endpoints, 113)]
    maps = [container(uint_chunk(u(m, 0, 4)), uint_chunk(u(m, 4, 4)), uint_chunk(m[8]),
                      m[9:41]) for m in split_fixed(mappings, 41)]
    return container(uint_chunk(body[0]), uint_chunk(u(body, 1, 4)), uint_chunk(u(body, 5, 4)),
                     mix_in(merkleize(chunks_of(code), LIMIT_CODE_CHUNKS), len(code)),
                     list_root(eps, LIMIT_ENDPOINTS), list_root(maps, LIMIT_MAPPINGS),
                     list_root([slot_root(e) for e in split_variable(slots)],
                               LIMIT_IMAGE_SLOTS))


def instance_root(body):
    (overlays,) = fields(body, 216, [96])
    ovs = [container(uint_chunk(u(o, 0, 4)), o[4:36]) for o in split_fixed(overlays, 36)]
    return container(body[0:32], body[32:64], body[64:96], list_root(ovs, LIMIT_OVERLAYS),
                     regs_root(body[100:204]), uint_chunk(u(body, 204, 4)),
                     uint_chunk(u(body, 208, 8)))


def cnode_root(body):
    (slots,) = fields(body, 4, [0])
    return container(list_root([slot_root(e) for e in split_variable(slots)],
                               LIMIT_CNODE_SLOTS))


ROOTS = {0: instance_root, 1: image_root, 2: data_root, 3: cnode_root}


def nub_cap_hash(wire):
    selector = wire[0]
    return mix_in(ROOTS[selector](wire[1:]), selector)


def check(path):
    with open(path) as f:
        v = json.load(f)
    wire = bytes.fromhex(v["wire"])
    if KINDS.get(wire[0]) != v["kind"]:
        return "kind %r but selector %d" % (v["kind"], wire[0])
    got = nub_cap_hash(wire).hex()
    if got == "ff" * 32:
        return "hash is the failure sentinel"
    if got != v["hash"]:
        return "hash %s, vector says %s" % (got, v["hash"])
    return None


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    names = sorted(n for n in os.listdir(sys.argv[1]) if n.endswith(".json"))
    failed = passed = 0
    kinds = set()
    profiles = set()
    for name in names:
        path = os.path.join(sys.argv[1], name)
        try:
            problem = check(path)
        except (AssertionError, KeyError, ValueError, IndexError) as e:
            problem = "cannot parse: %r" % (e,)
        if problem:
            failed += 1
            print("FAIL %s: %s" % (name, problem))
        else:
            passed += 1
            with open(path) as f:
                v = json.load(f)
            kinds.add(v["kind"])
            if v["kind"] == "image":
                profiles.add(PROFILES[bytes.fromhex(v["wire"])[1]])
    missing = set(KINDS.values()) - kinds
    if missing:
        print("FAIL: no passing vector of kind %s" % ", ".join(sorted(missing)))
        failed += 1
    missing = set(PROFILES.values()) - profiles
    if missing:
        print("FAIL: no passing image vector with profile %s" % ", ".join(sorted(missing)))
        failed += 1
    print("ssz_check: %d vectors, %d passed, %d failed; image profiles %s" %
          (len(names), passed, failed, ", ".join(sorted(profiles))))
    return 1 if failed or not names else 0


if __name__ == "__main__":
    sys.exit(main())
