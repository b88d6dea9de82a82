# fsfeed: `make demo` runs the main job on a local ledger; `make test` runs
# every test. Both run `make setup` first, which installs what a fresh
# Debian machine lacks and builds RocksDB once into ~/.cache/fsfeed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh

.PHONY: setup demo test test-rust test-python test-node test-conformance test-pubsub test-changelog test-watch test-airflow test-dist test-bench test-fuzz fuzz soak lint bench dist bench-python bench-spark bench-node bench-compare bench-push bench-pubsub bench-changelog bench-watch fmt fixtures python node

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup lint test-rust test-python test-node test-conformance test-pubsub test-changelog test-watch test-airflow test-dist test-bench test-fuzz

lint:
	$(ENV); cargo fmt --all -- --check
	$(ENV); cargo clippy --workspace --all-targets --locked -- -D warnings
	ruff check bindings/python examples/python tests/conformance tests/pubsub tests/changelog tests/airflow tests/packages changelog/bench examples/backup bench
	ruff format --check bindings/python examples/python tests/conformance tests/pubsub tests/changelog tests/airflow tests/packages changelog/bench examples/backup bench
	mypy --strict bindings/python/python/fsfeed examples/python/backup_changes.py
	$(ENV); cargo fmt --manifest-path fuzz/Cargo.toml -- --check
	$(ENV); cargo clippy --locked --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

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

# Build the Node addon (`npm install` runs bindings/node/scripts/build.sh with
# the machine's cargo) and install the package's dev dependencies.
node:
	$(ENV); npm --prefix bindings/node install --no-audit --no-fund --loglevel=error

# node --test (API, waiting, subscriptions, a second process, the SSE
# example), then tsc --strict over the declarations, the example and a file
# that assigns rendered records to @types/aws-lambda types.
test-node: node
	npm --prefix bindings/node test
	npm --prefix bindings/node run --silent typecheck

# The S3 output against real consumers: Python aws-lambda-powertools, TypeScript @types/aws-lambda.
test-conformance:
	python3 -m pytest -q -W error tests/conformance
	npm --prefix tests/conformance/ts run --silent check

# The pub/sub service (`fsfeed serve`) against boto3, raw v2/v4-signed HTTP,
# an HTTP endpoint and a private RabbitMQ node; the ledger is written by the
# test process (the Python package) while the server reads it.
test-pubsub: python
	$(ENV); cargo build --locked -p fsfeed-cli
	$(ENV); FSFEED_BIN="$$CARGO_TARGET_DIR/debug/fsfeed" python3 -m pytest -q -W error tests/pubsub

# The change-log uploader (`fsfeed changelog`) against moto's S3 server:
# windows, dedup, fetch, a crash between upload and commit, an unreachable
# store, the lease.
test-changelog: python node
	$(ENV); cargo build --locked -p fsfeed-cli
	$(ENV); FSFEED_BIN="$$CARGO_TARGET_DIR/debug/fsfeed" python3 -m pytest -q -W error tests/changelog

# `fsfeed watch` beside Watchman on the same tree and workloads: the sets
# of changed paths must be equal (bench/watch.py; `make bench-watch` is
# the full run with the figures).
test-watch: python
	$(ENV); cargo build --locked -p fsfeed-cli
	$(ENV); python3 bench/watch.py --fsfeed "$$CARGO_TARGET_DIR/debug/fsfeed" --files 2000 --writes 50 > /dev/null

# The installable packages, into dist/: the Python wheel (abi3, CPython 3.9
# and later, extras arrow, pandas, spark and airflow) and the npm tarball
# with the addon built for this platform.
dist: setup
	bash scripts/dist.sh

# The packages of `make dist` installed outside the repository (a fresh
# virtualenv, a fresh Node project without cargo); the README's Python and
# Node blocks run from those installs. And the parity of the bindings
# (bindings/parity.toml) against the core's public operations.
test-dist: python node dist
	python3 -m pytest -q -W error tests/packages

# fsfeed.airflow against Apache Airflow 3.3 from PyPI, in a virtualenv of its
# own (scripts/airflow-venv.sh) that gets the wheel of `make dist`: dag.test()
# for the sensor and the operator, a scheduler, dag-processor, triggerer and
# api-server on SQLite for the asset watcher.
test-airflow: python dist
	py=$$(bash scripts/airflow-venv.sh); \
	  "$$py" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall dist/fsfeed-*-abi3-*.whl; \
	  FSFEED_AIRFLOW_PY="$$py" python3 -m pytest -q -W error tests/airflow

# The fuzz targets (fuzz/, cargo-fuzz): every committed input (corpora and
# the inputs of past crashes) through its property on a plain build, then
# each target for FUZZ_TEST_SECONDS under libFuzzer.
FUZZ_TEST_SECONDS ?= 10
test-fuzz: setup
	$(ENV); cargo test --locked --manifest-path fuzz/Cargo.toml --test corpora
	FUZZ_SCRATCH=1 bash scripts/fuzz.sh $(FUZZ_TEST_SECONDS)

# A fuzzing campaign: each target for FUZZ_SECONDS, corpora grown and
# minimised, one line of figures per target (fuzz/last-run.txt).
FUZZ_SECONDS ?= 600
fuzz: setup
	FUZZ_CMIN=1 bash scripts/fuzz.sh $(FUZZ_SECONDS)

# The soak (core/tests/soak.rs): KILLS rounds of SIGKILL to a 4-thread sync
# appender and a reader process, then SOAK_SECONDS of a writer with
# retention and eight reader processes; figures in soak-summary.json.
KILLS ?= 1000
SOAK_SECONDS ?= 600
soak: setup
	$(ENV); FSFEED_SOAK_KILLS=$(KILLS) FSFEED_SOAK_SECONDS=$(SOAK_SECONDS) \
	  FSFEED_SOAK_SUMMARY=$(CURDIR)/soak-summary.json \
	  cargo test --release --locked -p fsfeed --features workload --test soak -- \
	  --ignored --exact soak_kills soak_load --nocapture --test-threads=1

# Regenerate the golden fixtures in tests/fixtures after an intended rendering change.
fixtures:
	$(ENV); FSFEED_REGEN=1 cargo test -p fsfeed --test golden

bench: setup
	$(ENV); cargo bench -p fsfeed --features arrow --locked

# Python reads and history against the Rust core, in one run.
bench-python: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); python3 bindings/python/bench/bench_read.py

# The Spark data source (batch rows/s against pyarrow.table(history()), and
# a stream's append-to-foreachBatch latency), in one run.
bench-spark: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); cd bindings/python/bench && python3 bench_spark.py

# Node reads against the Rust core, in one run.
bench-node: setup node
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); node bindings/node/bench/read.mjs

# Push delivery against real RabbitMQ, tansu and an HTTP receiver: a
# publisher's events/s against a plain client loop, and append-to-delivered latency.
bench-push: setup
	$(ENV); cargo bench -p fsfeed-delivery --bench push --locked

# The pub/sub service: events/s pulled and acked over HTTP (batch acks, and
# one ack per event with 8 clients) against an in-process cursor, in one run.
bench-pubsub: setup
	$(ENV); cargo bench -p fsfeed-pubsub --bench pull --locked

# The change-log uploader against a boto3 loop PUTting the same bytes to
# moto's S3 server, in one run (events/s of each).
bench-changelog: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); python3 changelog/bench/upload.py

# Instructions per appended event (valgrind's callgrind, in append_batch),
# per layout, batched and one op per call: repeatable to about 0.02%, for
# A/B of small changes on a noisy machine. `bash bench/icount.sh OTHER_PROBE` counts another build.
bench-icount: setup
	$(ENV); bash bench/icount.sh

bench-watch: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli
	$(ENV); python3 bench/watch.py --fsfeed "$$CARGO_TARGET_DIR/release/fsfeed" --files 10000 --writes 300

fmt:
	cargo fmt --all

# fsfeed against Redis Streams and NATS JetStream (Debian's servers, started
# and stopped by the script) on the same workload, in one run: writes
# bench/results/latest.json, the plots beside it and BENCHMARKS.md.
EVENTS ?= 1000000
bench-compare: setup python
	$(ENV); cargo build --release --locked -p fsfeed-cli -p fsfeed-bench-compare
	$(ENV); python3 bench/compare.py --events $(EVENTS)

# The same command, small, into a scratch directory: the servers start, every
# figure and ratio is measured and non-zero, the report is written.
test-bench: python
	$(ENV); cargo build --release --locked -p fsfeed-cli -p fsfeed-bench-compare
	$(ENV); out=$$(mktemp -d); python3 bench/compare.py --events 5000 --latency-samples 200 --out $$out; \
	  test -s $$out/BENCHMARKS.md && test -s $$out/throughput.png && test -s $$out/latency.png; rm -rf $$out
	$(ENV); ICOUNT_EVENTS=2000 ICOUNT_LAYOUTS=mix bash bench/icount.sh
