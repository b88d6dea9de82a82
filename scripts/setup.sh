#!/usr/bin/env bash
# Install what a fresh Debian machine lacks, then build RocksDB once.
# Idempotent: a second run checks and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# The peers of `make bench-compare` (and its smoke run in `make test`).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
# The push-delivery tests' AMQP broker (a private node per test, on loopback).
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
# PySpark 4 (the Spark data source's tests) runs on Java 17.
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
# `fsfeed watch` is measured against Watchman on the same workloads.
command -v watchman >/dev/null 2>&1 || need+=(watchman)
# `make bench-icount` counts instructions per append with callgrind.
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Real S3 consumers that check the S3 output: Python's aws-lambda-powertools
# and TypeScript's @types/aws-lambda under tsc.
# The Python package's tests, examples (pyarrow, pandas, the notebook's
# kernel), checks (mypy, ruff) and its build backend (maturin).
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
  --root-user-action=ignore -r tests/conformance/requirements.txt -r bindings/python/requirements-test.txt \
  -r tests/pubsub/requirements.txt -r tests/changelog/requirements.txt
(cd tests/conformance/ts && npm install --no-audit --no-fund --loglevel=error)
command -v cargo >/dev/null || { echo "setup: cargo is missing (install Rust with rustup)" >&2; exit 1; }
bash scripts/rocksdb-lib.sh >/dev/null
# Old clones' test binaries in the shared target directory.
bash scripts/prune-target.sh
# The push-delivery tests' Kafka-protocol broker, built once into the cache.
bash scripts/tansu.sh >/dev/null
