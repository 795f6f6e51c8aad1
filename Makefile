# nub front door.  `make` builds the release CLI at build/nub,
# `make run` runs the bundled example, `make test` builds the dev preset
# (ASan + UBSan) and runs every test, then a short run of every fuzz target.

.PHONY: all build run test deps dev fuzz fuzz-smoke clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

dev: deps
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev

# The bundled example (r7 = r7 + r8) published as caps and invoked in a
# sandboxed guest process, with the sandbox report.
run: build
	@build/nub exec examples/add.pvm --format generic --args 20,22 --backend proc --verbose

test: dev
	@ctest --preset dev
	@$(MAKE) --no-print-directory fuzz-smoke

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

fuzz-smoke: fuzz
	@./scripts/fuzz-smoke.sh build-fuzz

clean:
	rm -rf build build-dev build-fuzz
