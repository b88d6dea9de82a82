#!/usr/bin/env bash
# `npm install`'s build step: compile the addon with the machine's cargo and
# put it where index.js loads it. Inside the fsfeed repository it links the
# RocksDB archive cached by scripts/rocksdb-lib.sh (scripts/env.sh), so
# RocksDB's C++ is not compiled again.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(cd ../.. && pwd)
if [ -f "$repo/scripts/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$repo/scripts/env.sh"
fi
command -v cargo >/dev/null || { echo "fsfeed: cargo is needed to build the native module (install Rust with rustup)" >&2; exit 1; }
cargo build --release --locked -p fsfeed-node --manifest-path "$repo/Cargo.toml" >&2
target=${CARGO_TARGET_DIR:-$repo/target}
cp "$target/release/libfsfeed_node.so" fsfeed.node.tmp
mv fsfeed.node.tmp fsfeed.node
