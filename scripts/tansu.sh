#!/usr/bin/env bash
# Build tansu, the Kafka-protocol broker the push-delivery tests run on
# loopback (no Apache Kafka in the registries here), once per version into a
# cache outside the work tree, as rocksdb-lib.sh does for RocksDB: about 17
# minutes on 2 cores the first time, nothing after.
#
# Prints the path of the tansu binary on stdout; progress goes to stderr.
# Called by `make setup`; the Kafka tests (delivery/, cli/tests/publish.rs)
# start it through fsfeed_delivery::testkit::Tansu.
set -euo pipefail
ver=0.6.0
cache="${FSFEED_CACHE:-$HOME/.cache/fsfeed}"
root="$cache/tansu-$ver"
if [ -x "$root/bin/tansu" ]; then
  echo "$root/bin/tansu"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v cmake >/dev/null 2>&1; then
  echo "tansu: installing cmake" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake >/dev/null
fi
echo "building tansu $ver once (about 17 minutes on 2 cores); cached in $root" >&2
# Its own target directory: the workspace's lock file does not apply to it.
CARGO_TARGET_DIR="$cache/tansu-target" cargo install tansu --version "$ver" \
  --no-default-features --features dynostore --locked --root "$root.tmp" >&2 \
  || CARGO_TARGET_DIR="$cache/tansu-target" cargo install tansu --version "$ver" \
    --no-default-features --features dynostore --root "$root.tmp" >&2
rm -rf "$root"
mv "$root.tmp" "$root"
rm -rf "$cache/tansu-target"
echo "$root/bin/tansu"
