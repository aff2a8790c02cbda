# Keel: `make run` builds the image and boots it in QEMU; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := run
KEEL := bin/keel

.PHONY: deps build image run test test-unit lint format bench clean

deps:
	@builder/deps.sh

# TypeScript to dist/ (incremental enough: tsc takes a few seconds).
build: deps
	@npx tsc -p tsconfig.json

# The update signing key pair is made once per checkout (keys/ is not in git).
image: build
	@[ -f keys/keel-update.pub ] || $(KEEL) keys generate
	@$(KEEL) build

run: image
	@$(KEEL) qemu

# The whole suite: pure logic, host integration (as root), builder output, QEMU boots.
test: image
	@npx mocha

# Only the tests that need no root, no image and no QEMU: every test file but e2e/, with KEEL_TEST_TIER=unit
# leaving out what test/needs.ts marks as needing root.
test-unit: build
	@KEEL_TEST_TIER=unit npx mocha --no-config --timeout 20000 'dist/test/**/*.test.js' --ignore 'dist/test/e2e/**'

# Formatting (Prettier) and lint rules (ESLint with typescript-eslint: layering, 120-character lines).
lint: deps
	@npx prettier --check --log-level warn .
	@npx eslint --max-warnings 0 .

format: deps
	@npx prettier --write --log-level warn .

bench: image
	@node dist/test/bench/bench.js
	@node dist/test/bench/bench-init.js
	@node dist/test/bench/bench-update.js
	@node dist/test/bench/bench-containers.js

clean:
	rm -rf out dist build
