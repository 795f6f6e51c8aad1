#!/usr/bin/env python3
"""Write the seed corpus of fuzz_nk_serve (fuzz/corpus/fuzz_nk_serve/).

Each seed is a program of operations in the input format of
fuzz/fuzz_nk_serve.c (fuzz/README.md): valid cap sets built from small PVM
programs, invocations that halt, fault, run out of gas or call the host,
Instances with overlays, field mutations and raw frames.  Opcode bytes are
GP 0.7 numbers (src/pvm/isa.c).  Run from the repository root.
"""
import os
import struct

OUT = "fuzz/corpus/fuzz_nk_serve"
RAW, PUT_PROGRAM, PUT_DATA, MUTATE, INSTANCE, INVOKE, EVICT, FRAME, PAGES = range(9)
JIT = 1

# GP 0.7 opcode bytes
TRAP, ECALLI, JUMP_IND, LOAD_IMM, LOAD_U64, STORE_U64 = 0, 10, 50, 51, 58, 62
BRANCH_NE_IMM, SBRK, ADD_IMM_64, ADD_64 = 82, 101, 149, 200
HALT = 0xFFFF0000          # jump_ind r12 + this = the halt address


def u(n, v):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def insn(op, ra=0, rb=0, rd=0, x=0, y=0):
    return bytes([op]) + u(2, ra + 13 * rb + 169 * rd) + u(4, x) + u(4, y)


def program(insns, profile=0, spi=None, regions=()):
    b = bytes([PUT_PROGRAM, profile | (0x10 if spi is not None else 0), len(insns) - 1])
    b += b"".join(insns)
    if spi is not None:
        ro, rw, heap_pages, stack_pages, args = spi
        b += bytes([len(ro)]) + ro + bytes([len(rw)]) + rw
        b += bytes([heap_pages, stack_pages, len(args)]) + args
    else:
        b += bytes([len(regions)])
        for gap, pages, rw, data in regions:
            b += bytes([gap, pages - 1, rw, len(data)]) + data
    return b


def invoke(pick, args=(0, 0, 0, 0), gas=1000, endpoint=None, any_kind=False, short=False):
    how = (1 if any_kind else 0) | (2 if endpoint is not None else 0) | 4 | (0x80 if short else 0)
    b = bytes([INVOKE, how, pick])
    if endpoint is not None:
        b += u(4, endpoint)
    args = tuple(args) + (0,) * (4 - len(args))
    return b + b"".join(u(8, a) for a in args) + u(3, gas)


def raw(fn, payload=b""):
    return bytes([RAW, fn]) + u(2, len(payload)) + payload


def data(pages, content):
    return bytes([PUT_DATA, pages]) + u(2, len(content)) + content


def instance(image_pick, overlays=(), pc=0, reg=0, value=0):
    b = bytes([INSTANCE, image_pick, len(overlays)])
    for data_pick, gap in overlays:
        b += bytes([data_pick, gap])
    return b + bytes([pc, reg]) + u(8, value)


def mutate(pick, field, value, other=0):
    return bytes([MUTATE, pick, field]) + u(8, value) + bytes([other])


ADD = [insn(ADD_64, 7, 8, 7), insn(JUMP_IND, 12, x=HALT)]
# r9 = [0x10000]; r7 += r9; [0x10000] = r7; halt
MEMORY = [insn(LOAD_U64, 9, x=0x10000), insn(ADD_64, 7, 9, 7), insn(STORE_U64, 7, x=0x10000),
          insn(JUMP_IND, 12, x=HALT)]
# r7 += 1 until r7 == 0: runs out of gas
LOOP = [insn(ADD_IMM_64, 7, 7, x=1), insn(BRANCH_NE_IMM, 7, x=0, y=0)]
# sbrk, then a host call; a load from an unmapped page
HOST = [insn(SBRK, 8, 7, 7), insn(ECALLI, x=77)]
FAULT = [insn(LOAD_U64, 7, x=0x90000)]
# SPI: return through r0
SPI_RET = [insn(LOAD_U64, 8, x=0x10000), insn(ADD_64, 7, 8, 7), insn(JUMP_IND, 0)]

# Sub-VMs (docs/kernel.md): r7 = n; n > 0 spawns its own Image into slot 1
# (ecalli 18) and calls it with n - 1 (ecalli 26); 0 halts
M1 = 0xFFFFFFFF
COUNTDOWN = [insn(BRANCH_NE_IMM, 7, x=0, y=2), insn(JUMP_IND, 12, x=HALT),
             insn(ADD_IMM_64, 11, 7, x=0), insn(LOAD_IMM, 7, x=M1), insn(LOAD_IMM, 9, x=1),
             insn(ECALLI, x=18), insn(LOAD_IMM, 7, x=1), insn(LOAD_IMM, 8, x=0),
             insn(ADD_IMM_64, 9, 11, x=M1), insn(ECALLI, x=26), insn(JUMP_IND, 12, x=HALT)]
# the other kernel operations from the root: yield, resume, drop, chain
KERNEL_OPS = [insn(LOAD_IMM, 7, x=M1), insn(LOAD_IMM, 9, x=2), insn(ECALLI, x=18),
              insn(LOAD_IMM, 7, x=2), insn(LOAD_IMM, 8, x=3), insn(LOAD_IMM, 9, x=0x10000),
              insn(ECALLI, x=20), insn(ECALLI, x=28), insn(ECALLI, x=27), insn(ECALLI, x=16)]

SEEDS = {
    # tables below: the order caps enter the harness's table (pick = index)
    "smoke_and_stats": bytes([0]) + raw(0) + raw(1) + raw(2) + raw(5) + raw(6) + raw(99),
    # [Image, Instance]
    "add_interp": bytes([0]) + program(ADD) + invoke(1, (40, 2)) + invoke(1, (1, 2), gas=1),
    "add_jit": bytes([JIT]) + program(ADD) + invoke(1, (40, 2)) + bytes([EVICT]) + invoke(1, (5, 6)),
    # [Data, Image, Instance]
    "memory_rw": bytes([0]) + program(MEMORY, regions=[(0, 1, 1, b"\x05")]) + invoke(2, (10,)) +
                 invoke(2, (10,), endpoint=1) + invoke(0, any_kind=True) + invoke(2, short=True),
    "loop_out_of_gas_jit": bytes([JIT]) + program(LOOP) + invoke(1, gas=50),
    "host_call_and_fault": bytes([0]) + program(HOST, regions=[(1, 2, 1, b"")]) + invoke(1, (1,)) +
                           program(FAULT) + invoke(3),
    "spi": bytes([0]) + program(SPI_RET, spi=(b"\x07" * 8, b"\x09" * 8, 1, 1, b"args")) +
           invoke(9, (3,)),
    # Data caps as overlays: [Data, Image, Instance, Data, Instance']
    "overlay": bytes([0]) + program(MEMORY, regions=[(0, 2, 1, b"\x01")]) +
               data(1, b"\x2a" * 16) + instance(1, [(3, 0)]) + invoke(4, (1,)) +
               mutate(2, 0, 0, other=0) + invoke(5),   # an Instance whose image is a Data cap
    # a mapping made read-only, sourced from a missing cap, an odd profile,
    # a broken code byte; each Image gets an Instance and is invoked
    "mutated_image": bytes([0]) + program(MEMORY, regions=[(0, 1, 1, b"\x05")]) +
                     mutate(1, 7, 1 << 8) + instance(3) + invoke(4) +
                     mutate(1, 8, 0, other=1) + instance(5) + invoke(6) +
                     mutate(1, 0, 2 << 8) + instance(7) + invoke(8) +
                     mutate(1, 9, 3 << 8) + instance(9) + invoke(10),
    "mutated_instance": bytes([0]) + program(ADD) + mutate(1, 2, 1 << 8) + invoke(2, (1, 1)) +
                        mutate(1, 1, (7 << 8) | (5 << 16)) + invoke(3, (0, 4)) +
                        mutate(1, 5, 0x1234) + invoke(4) + mutate(1, 0, 0, other=0) + invoke(5),
    "other_profiles": bytes([0]) + program(ADD, profile=1) + instance(0) + invoke(3, (2, 2)) +
                      program(ADD, profile=2) + instance(4) + invoke(7, (3, 3)),
    # [Data, Image, Instance, Image, Instance]: a chain of 5, out of gas deep
    # and shallow (MAX_GAS); then the other operations (a zero Data cap is not put)
    "sub_vms": bytes([JIT]) + program(COUNTDOWN, regions=[(0, 1, 1, b"\x05")]) +
               invoke(2, (5,), gas=1 << 20) + invoke(2, (300,), gas=(1 << 24) - 1) +
               invoke(2, (50,), gas=20000) +
               program(KERNEL_OPS, regions=[(0, 1, 1, b"")]) + invoke(4, gas=1 << 20),
    "raw_frames": bytes([0]) + bytes([FRAME, 1]) + u(2, 16) + struct.pack("<IIQ", 0x5152424E, 0, 0) +
                  bytes([FRAME, 0]) + u(2, 16) + struct.pack("<IIQ", 0x5152424E, 4, 99) +
                  raw(4, b"") + raw(4, b"\x09\x01\x02") + raw(3, b"\x00" * 80),
}


def data_wire(pages, fill):
    """A Data cap of `pages` dense pages: selector 2, size, pages offset 12,
    then (index u32, 4096 bytes) per page."""
    w = bytes([2]) + u(8, pages * 4096) + u(4, 12)
    for i in range(pages):
        w += u(4, i) + bytes([fill + i]) * 4096
    return w


def hashed(wire, tail=b"", count=1, h=0):
    """A REPUBLISH frame of one record, as nub_put_cap sends a cap of a page
    or more: the guest stores it under the given hash without hashing."""
    return struct.pack("<II", count, 0) + bytes([h]) + bytes(range(31)) + u(8, len(wire)) + \
        wire + tail


# nub_put_cap's path for caps of a page or more (fn 8, one record): stored,
# stored again (found: nothing new), a record with bytes after it, a count
# the payload cannot hold, a record whose wire is one byte short.
SEEDS["hashed_puts"] = bytes([0]) + raw(8, hashed(data_wire(2, 0x41))) + \
    raw(8, hashed(data_wire(2, 0x41))) + raw(8, hashed(data_wire(1, 0x61), b"\x00" * 3, h=1)) + \
    raw(8, hashed(data_wire(1, 0x71), count=2, h=2)) + raw(8, hashed(data_wire(1, 0x72), h=3)[:-1])


def pages(n, how, fill, h):
    """PAGES_RESERVE of n pages, the pages written, PAGES_COMMIT (fuzz_nk_serve.c, op_pages)."""
    return bytes([PAGES, n - 1, how, fill, h])


# nub_put_cap's path for Data caps from 256 KiB (fn 10 and 11): committed
# dense and with gaps, found again, then a zero page, too few runs, a
# length a page off, a block left as it was; a commit with no block.
SEEDS["reserved_pages"] = bytes([0]) + pages(3, 0, 0x41, 1) + pages(4, 1, 0x51, 2) + \
    pages(3, 0, 0x41, 1) + pages(2, 2, 0x61, 3) + pages(5, 5, 0x71, 4) + pages(2, 8, 0x11, 5) + \
    pages(1, 16, 0x21, 6) + raw(11, bytes(56) + bytes(4))


def wire_vector(name):
    with open(os.path.join("fuzz/corpus/fuzz_cap_wire", name), "rb") as f:
        return f.read()


# The cap vectors (tests/vectors/caps, as fuzz_cap_wire's seeds) put raw:
# CNodes, full Images and Instances, an empty Image, the SPI caps.
SEEDS["wire_vectors"] = bytes([0]) + b"".join(
    raw(4, wire_vector(n)) for n in ("cnode_empty", "cnode_key_lengths", "image_full",
                                     "image_minimal", "instance_full", "data_empty")) + \
    invoke(0) + invoke(1, any_kind=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    for name, seed in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(seed)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
