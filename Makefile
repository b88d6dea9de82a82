# fsfeed: `make demo` runs the main job on a local ledger; `make test` runs
# every test. Both run `make setup` first, which installs what a fresh
# Debian machine lacks and builds RocksDB once into ~/.cache/fsfeed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh

.PHONY: setup demo test test-rust lint bench fmt

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup lint test-rust

lint:
	$(ENV); cargo fmt --all -- --check
	$(ENV); cargo clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(ENV); cargo test --workspace --locked

bench: setup
	$(ENV); cargo bench -p fsfeed --locked

fmt:
	cargo fmt --all
