#!/usr/bin/env bash
# Keep the shared target directory from growing with every CI run: a test
# or bench binary's name carries a hash of how it was built, and the runs
# of a day left 188 stale ones behind (30 GB, 300 MB each with RocksDB
# linked in). This keeps the newest binary of each name in `deps/` of
# every profile and removes the others with their `.d` files.
# Cargo rebuilds a removed binary if a build still needs it.
set -euo pipefail
target="${CARGO_TARGET_DIR:-$HOME/.cache/fsfeed/target}"
for deps in "$target"/debug/deps "$target"/release/deps "$target"/*/release/deps; do
  [ -d "$deps" ] || continue
  # Executables named `name-<16 hex>`, newest first; all but the first of a name go.
  find "$deps" -maxdepth 1 -type f -perm -u+x -regextype posix-extended \
    -regex '.*/[A-Za-z0-9_]+-[0-9a-f]{16}' -printf '%T@ %p\n' |
    sort -rn |
    awk '{ n = $2; sub(/.*\//, "", n); sub(/-[0-9a-f]+$/, "", n); if (seen[n]++) print $2 }' |
    while read -r old; do rm -f "$old" "$old.d"; done
done
