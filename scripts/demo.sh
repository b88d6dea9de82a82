#!/usr/bin/env bash
# The main job on the embedded default: a local ledger directory.
# A realistic workload is appended, then read back through cursors.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build -q -p fsfeed-cli
fsfeed="$CARGO_TARGET_DIR/debug/fsfeed"
dir="${DEMO_LEDGER:-demo-ledger}"
rm -rf "$dir"

echo "== create a ledger that keeps the newest 50,000 events"
"$fsfeed" init --ledger "$dir" --max-events 50000

echo "== append 20,000 ops (volumes, buckets, files created, committed, renamed, deleted, ACLs)"
"$fsfeed" workload --events 20000 --seed 42 --start-us 1767225600000000 \
  | "$fsfeed" append --ledger "$dir"

echo "== the first 5 records"
"$fsfeed" tail --ledger "$dir" --from earliest --max 5

echo "== a backup job: deletes under warehouse/logs/, read with a named cursor and committed"
"$fsfeed" tail --ledger "$dir" --cursor backup --bucket warehouse --prefix logs/ \
  --kind delete --commit --max 3

echo "== what happened after 2026-01-01T00:00:10Z (first 3)"
"$fsfeed" tail --ledger "$dir" --from 2026-01-01T00:00:10Z --max 3

echo "== the same ops as S3 event notifications (aws profile), objects created under ingest/logs/"
"$fsfeed" tail --ledger "$dir" --format s3 --bucket ingest --prefix logs/ --event 's3:ObjectCreated:*' --max 2

echo "== and as HDFS inotify event batches"
"$fsfeed" tail --ledger "$dir" --format hdfs --from 6 --max 3

echo "== stats"
"$fsfeed" stats --ledger "$dir"
