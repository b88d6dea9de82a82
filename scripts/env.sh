# Sourced by the Makefile's recipes: one target directory and one prebuilt
# RocksDB archive for every cargo command (tests, clippy, CLI, bindings).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fsfeed/target}"
# CI builds each commit once: incremental state (21 GB of the target
# directory once) only fills the disk there.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
ROCKSDB_LIB_DIR="$(bash "$(dirname "${BASH_SOURCE[0]}")/rocksdb-lib.sh")" || return 1
export ROCKSDB_LIB_DIR
export ROCKSDB_STATIC=1
