# fsfeed: `make demo` runs the main job on a local ledger; `make test` runs
# every test. Both run `make setup` first, which installs what a fresh
# Debian machine lacks and builds RocksDB once into ~/.cache/fsfeed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh

.PHONY: setup demo test test-rust test-python test-conformance lint bench bench-python fmt fixtures python

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup lint test-rust test-python test-conformance

lint:
	$(ENV); cargo fmt --all -- --check
	$(ENV); cargo clippy --workspace --all-targets --locked -- -D warnings
	ruff check bindings/python examples/python tests/conformance
	ruff format --check bindings/python examples/python tests/conformance
	mypy --strict bindings/python/python/fsfeed examples/python/airflow_trigger.py examples/python/backup_changes.py

test-rust:
	$(ENV); cargo test --workspace --locked

# Build and install the Python package (what `pip install .` does, without
# fetching maturin again), check its stubs against the module, run its tests
# (which also run examples/python, the notebook included).
python:
	$(ENV); PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --root-user-action=ignore \
	  --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .

test-python: python
	python3 -m mypy.stubtest fsfeed._native
	python3 -m pytest -q -W error bindings/python/tests

# The S3 output against real consumers: Python aws-lambda-powertools, TypeScript @types/aws-lambda.
test-conformance:
	python3 -m pytest -q -W error tests/conformance
	npm --prefix tests/conformance/ts run --silent check

# Regenerate the golden fixtures in tests/fixtures after an intended rendering change.
fixtures:
	$(ENV); FSFEED_REGEN=1 cargo test -p fsfeed --test golden

bench: setup
	$(ENV); cargo bench -p fsfeed --features arrow --locked

# Python reads and history against the Rust core, in one run.
bench-python: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); python3 bindings/python/bench/bench_read.py

fmt:
	cargo fmt --all
