#!/usr/bin/env bash
# Instructions per appended event, counted by valgrind's callgrind inside
# `Ledger::append_batch` on the calling thread: validation, the namespace,
# encoding, RocksDB's WAL write and memtable inserts (not RocksDB's
# background flushes and compactions). `append_probe`'s workload, buffered,
# `append_batch` of 1,000 (and `append`, one op per call: ICOUNT_MODE),
# segments off, on a fresh ledger per layout.
#
# The count repeats to about 0.02% run to run, where wall-clock rates on
# a shared VM wander by 30-50%: it resolves a 1% change in one run, for
# A/B of small changes. It counts instructions, not cache misses, so it
# does not see what a random-key memtable insert costs in misses; check a
# change that moves memory traffic with `append_probe` rounds as well.
#
# usage: bench/icount.sh [PROBE_BINARY]
#   PROBE_BINARY: an append_probe built aside (to compare two builds);
#   default: build this tree's.
# ICOUNT_EVENTS (default 30000) ops per layout; ICOUNT_LAYOUTS (default
# "obs mix fso"); ICOUNT_MODE (default "batch" and "single"): `single`
# counts `Ledger::append`, one op per call, so each op pays a group
# commit of its own (what a single-op appender costs per call).
set -euo pipefail
cd "$(dirname "$0")/.."
# The shared target directory and the prebuilt RocksDB, as every make target.
source scripts/env.sh
command -v valgrind >/dev/null || { echo "icount: valgrind is missing (make setup installs it)" >&2; exit 1; }
events="${ICOUNT_EVENTS:-30000}"
probe="${1:-}"
if [ -z "$probe" ]; then
  probe=$(cargo bench -p fsfeed --bench append_probe --no-run --locked --message-format=json |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "append_probe" and m.get("executable"):
        print(m["executable"])')
fi
[ -x "$probe" ] || { echo "icount: no append_probe binary at '$probe'" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for mode in ${ICOUNT_MODE:-batch single}; do
  case "$mode" in
    # `append_batch*` toggles on entering append_batch; `append` (exact)
    # covers the append_batch it calls.
    batch) toggle='fsfeed::ledger::Ledger::append_batch*' label="" ;;
    single) toggle='fsfeed::ledger::Ledger::append' label=" single" ;;
    *) echo "icount: ICOUNT_MODE is batch or single, not '$mode'" >&2; exit 1 ;;
  esac
  for layout in ${ICOUNT_LAYOUTS:-obs mix fso}; do
    PROBE_LAYOUT="$layout" PROBE_MODE="$mode" PROBE_SEGMENTS=off PROBE_EVENTS="$events" \
      valgrind --tool=callgrind --toggle-collect="$toggle" \
      --callgrind-out-file="$out/cg.out" "$probe" > "$out/log" 2>&1 ||
      { cat "$out/log" >&2; exit 1; }
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
    [ -n "$total" ] && [ "$total" -gt 0 ] || { cat "$out/log" >&2; exit 1; }
    echo "icount $layout$label: $((total / events)) instructions per event ($total for $events events)"
  done
done
