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
