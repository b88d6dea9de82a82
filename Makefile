# fsfeed: `make demo` runs the main job on a local ledger; `make test` runs
# every test. Both run `make setup` first, which installs what a fresh
# Debian machine lacks and builds RocksDB once into ~/.cache/fsfeed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh

.PHONY: setup demo test test-rust test-conformance lint bench fmt fixtures

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup lint test-rust test-conformance

lint:
	$(ENV); cargo fmt --all -- --check
	$(ENV); cargo clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(ENV); cargo test --workspace --locked

# The S3 output against real consumers: Python aws-lambda-powertools, TypeScript @types/aws-lambda.
test-conformance:
	python3 -m pytest -q -W error tests/conformance
	npm --prefix tests/conformance/ts run --silent check

# Regenerate the golden fixtures in tests/fixtures after an intended rendering change.
fixtures:
	$(ENV); FSFEED_REGEN=1 cargo test -p fsfeed --test golden

bench: setup
	$(ENV); cargo bench -p fsfeed --locked

fmt:
	cargo fmt --all
