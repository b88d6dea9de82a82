#!/usr/bin/env bash
# `npm install`'s build step. In the repository: compile the addon with the
# machine's cargo and put it where index.js loads it. From the tarball of
# `make dist`: check that the addon it carries loads. In the repository the
# build links the RocksDB archive cached by scripts/rocksdb-lib.sh
# (scripts/env.sh), so RocksDB's C++ is not compiled again.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(cd ../.. && pwd)
if [ ! -f "$repo/bindings/node/Cargo.toml" ]; then
  # Installed from the tarball of `make dist`, outside the repository: the
  # addon built for this platform is in the package.
  if [ -f fsfeed.node ] && node -e "require('./fsfeed.node')" 2>/dev/null; then
    exit 0
  fi
  echo "fsfeed: the native addon in this package does not load on this machine" >&2
  echo "  ($(uname -sm)); build the package from the fsfeed repository with \`make dist\`" >&2
  node -e "require('./fsfeed.node')" >&2 || true
  exit 1
fi
if [ -f "$repo/scripts/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$repo/scripts/env.sh"
fi
command -v cargo >/dev/null || { echo "fsfeed: cargo is needed to build the native module (install Rust with rustup)" >&2; exit 1; }
cargo build --release --locked -p fsfeed-node --manifest-path "$repo/Cargo.toml" >&2
target=${CARGO_TARGET_DIR:-$repo/target}
cp "$target/release/libfsfeed_node.so" fsfeed.node.tmp
mv fsfeed.node.tmp fsfeed.node
