#!/usr/bin/env bash
# Build RocksDB's static library once per librocksdb-sys version and keep it in
# a cache outside the work tree. Every later cargo build (any profile, any
# workspace member, clippy, maturin, napi) links that archive through
# ROCKSDB_LIB_DIR + ROCKSDB_STATIC instead of compiling RocksDB's C++ again
# (18 to 22 minutes on a 2-core machine).
#
# Prints the directory holding librocksdb.a on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${FSFEED_CACHE:-$HOME/.cache/fsfeed}"
ver=$(awk '/^name = "librocksdb-sys"/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
[ -n "$ver" ] || { echo "librocksdb-sys not in Cargo.lock" >&2; exit 1; }
# The features given to librocksdb-sys change what the archive holds: key on them too.
feat=$(grep -E '^rocksdb *=' Cargo.toml | md5sum | cut -c1-8)
# Hardware CRC32C when this machine's CPU has SSE 4.2 and PCLMUL (every
# x86-64 CPU since 2010): RocksDB checksums each WAL record, and its
# portable software CRC was 5% of a batched append's CPU. The archive is
# built for the machine it is built on, so the flags follow the CPU and key
# the cache.
simd=""
if [ "$(uname -m)" = x86_64 ] && grep -qw sse4_2 /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then
  simd="-sse42"
fi
dir="$cache/rocksdb/$ver-$feat$simd"
if [ -f "$dir/librocksdb.a" ]; then
  echo "$dir"
  exit 0
fi
echo "building RocksDB $ver from source once (about 20 minutes on 2 cores); cached in $dir" >&2
# A target directory of its own: the target features below must not
# change the flags of the workspace's own target directory.
target="$cache/rocksdb-build"
flags=""
[ -z "$simd" ] || flags="-Ctarget-feature=+sse4.1,+sse4.2,+pclmulqdq"
# No debug info in the C++ (faster to build, 45 MB instead of 1.5 GB).
env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC -u CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR="$target" \
  CARGO_PROFILE_RELEASE_DEBUG=false RUSTFLAGS="$flags" \
  cargo build --release --locked -p librocksdb-sys >&2
lib=$(ls -t "$target"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1)
[ -n "$lib" ] || { echo "librocksdb.a not found after the build" >&2; exit 1; }
mkdir -p "$dir.tmp"
cp "$lib" "$dir.tmp/librocksdb.a"
strip --strip-debug "$dir.tmp/librocksdb.a" 2>/dev/null || true
rm -rf "$dir"
mv "$dir.tmp" "$dir"
rm -rf "$target"
echo "$dir"
