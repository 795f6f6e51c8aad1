# nub front door.  `make` builds the release CLI at build/nub,
# `make run` runs the bundled example, `make check` builds the dev preset
# (ASan + UBSan) and runs every test (the everyday path), `make test` does
# the same and then a short run of every fuzz target (README: how long).
# `make examples` reassembles examples/*.pvm from examples/*.s.
# `make fuzz-diff-long` fuzzes the JIT against the interpreter for millions
# of programs; `make bench-jit` prints the JIT figures.

.PHONY: all build run examples check test deps test-deps dev fuzz fuzz-smoke fuzz-diff-long \
        bench-jit install clean

all: build

# Build packages only for the release CLI and library; the test set
# (cmocka, valgrind, libcap-dev, clang, ...) only for dev, test and fuzz.
deps:
	@./scripts/deps.sh build

test-deps:
	@./scripts/deps.sh test

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

# The library (libnub.a, libnub.so), headers, nub.pc, the CMake package,
# nub-guest (PREFIX/libexec/nub, where the library looks) and the CLI.
PREFIX ?= /usr/local
install: deps
	@cmake --preset release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build --preset release
	@cmake --install build

# examples/add_regs.pvm (r7 = r7 + r8) published as caps and invoked in a
# sandboxed guest process (the proc backend), with the sandbox report:
# r7 ends as 42.  Then examples/add.pvm, an SPI program adding its two u64
# argument words (2 and 40), on the interpreter.
run: build
	@./build/nub exec examples/add_regs.pvm --regs 20,22 --backend proc --verbose
	@./build/nub run examples/add.pvm --data 02000000000000002800000000000000

examples: build
	@for s in examples/*.s; do ./build/nub asm $$s -o $${s%.s}.pvm || exit 1; done

dev: test-deps
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev

check: dev
	@ctest --preset dev --parallel $(shell nproc)
	@echo "runner figures:" && ./scripts/test-summary.sh

test: dev
	@ctest --preset dev
	@echo "runner figures:" && ./scripts/test-summary.sh
	@$(MAKE) --no-print-directory fuzz-smoke

fuzz: test-deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

fuzz-smoke: fuzz
	@./scripts/fuzz-smoke.sh build-fuzz

# Differential fuzzing of the JIT against the interpreter, far beyond the
# 100 000 programs CI runs (release build; FUZZ_DIFF_COUNT programs per
# profile / FUZZ_DIFF_SEED / FUZZ_DIFF_PROFILE: gp07, gp08-draft, jamv1 or all).
FUZZ_DIFF_COUNT ?= 5000000
FUZZ_DIFF_SEED ?= $(shell date +%s)
FUZZ_DIFF_PROFILE ?= all
fuzz-diff-long: build
	@mkdir -p build/fuzz-diff
	@./build/nub fuzz-diff --profile $(FUZZ_DIFF_PROFILE) --count $(FUZZ_DIFF_COUNT) \
	  --seed $(FUZZ_DIFF_SEED) --reports 10 --save build/fuzz-diff

# JIT, interpreter and native figures (run on a quiet machine).
bench-jit: build
	@./build/nub bench jit

clean:
	rm -rf build build-dev build-fuzz
