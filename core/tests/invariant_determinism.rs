//! Invariant 4: the same ops in the same order give the same ledger on every
//! replica, whatever the grouping of appends, with retention active.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::workload::Workload;
use fsfeed::{Durability, Op, Retention};

fn retention() -> Retention {
    Retention::default()
        .with_max_events(3_000)
        .with_max_bytes(600_000)
        .with_max_age(Duration::from_secs(5))
}

/// Append `ops` in batches of 1, 2, ... up to `most` ops and round again
/// (a batch of one through `append`).
fn append_unevenly(ledger: &fsfeed::Ledger, ops: &[Op], most: usize) {
    let (mut i, mut n) = (0, 1);
    while i < ops.len() {
        let end = (i + n).min(ops.len());
        if n == 1 {
            ledger.append(ops[i].clone()).unwrap();
        } else {
            ledger.append_batch(ops[i..end].to_vec()).unwrap();
        }
        i = end;
        n = n % most + 1;
    }
}

#[test]
fn invariant_determinism_two_replicas_same_checksum() {
    let ops: Vec<Op> = Workload::new(99, T0).take(8_000).collect();
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = open(a_dir.path(), Durability::None, Some(retention()));
    let b = open(b_dir.path(), Durability::None, Some(retention()));
    // Replica A gets big batches; replica B single ops and odd batches.
    for chunk in ops.chunks(1000) {
        a.append_batch(chunk.to_vec()).unwrap();
    }
    append_unevenly(&b, &ops, 37);
    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(
        (sa.first_seq, sa.head_seq, sa.bytes),
        (sb.first_seq, sb.head_seq, sb.bytes)
    );
    assert!(sa.first_seq > 1, "retention was active");
    assert_eq!(a.checksum().unwrap(), b.checksum().unwrap());
    // Different ops give a different checksum (the check can fail).
    b.append(Op::delete("vol1", "b1", "x", false).at(T0 + 10_000_000_000))
        .unwrap();
    assert_ne!(a.checksum().unwrap(), b.checksum().unwrap());
}

/// Two replicas of `ops`, closed: A got batches of 1,000, B single ops and
/// batches of up to `most`.
fn two_replicas(
    ops: &[Op],
    retention: Option<Retention>,
    most: usize,
) -> (tempfile::TempDir, tempfile::TempDir) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = open(a_dir.path(), Durability::None, retention);
    let b = open(b_dir.path(), Durability::None, retention);
    for chunk in ops.chunks(1000) {
        a.append_batch(chunk.to_vec()).unwrap();
    }
    append_unevenly(&b, ops, most);
    if retention.is_some() {
        assert!(a.stats().unwrap().first_seq > 1, "retention was active");
    }
    a.close().unwrap();
    b.close().unwrap();
    (a_dir, b_dir)
}

/// Every key and value of column family `cf` of a closed ledger.
fn stored(dir: &std::path::Path, cf: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = raw_db(dir);
    let h = db.cf_handle(cf).unwrap();
    db.iterator_cf(h, rocksdb::IteratorMode::Start)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// The two replicas hold the same keys and values in `cfs`.
fn assert_same_stored(a: &std::path::Path, b: &std::path::Path, cfs: &[&str], what: &str) {
    for cf in cfs {
        let (sa, sb) = (stored(a, cf), stored(b, cf));
        assert!(!sa.is_empty(), "{what}: {cf} holds keys");
        assert_eq!(sa.len(), sb.len(), "{what}: {cf}: as many keys");
        assert!(sa == sb, "{what}: {cf}: the same keys and values");
    }
}

/// Format 6 stores events in blocks of 32 seqs: the same ops give the same
/// stored keys and values in the events, time and namespace column
/// families, whether they came in batches of 1,000 (each run written whole
/// by one put) or one by one and in odd batches (runs built by merges).
#[test]
fn stored_blocks_are_the_same_whatever_the_batching() {
    let ops: Vec<Op> = Workload::new(7, T0).take(5_000).collect();
    let (a_dir, b_dir) = two_replicas(&ops, Some(retention()), 45);
    assert_same_stored(
        a_dir.path(),
        b_dir.path(),
        &["events", "time", "ns"],
        "blocks",
    );
    // The events are in blocks: far fewer values than events, and each
    // starts a run of 32 (a fresh ledger is aligned).
    let events = stored(a_dir.path(), "events");
    let head = 5_000u64;
    assert!(
        events.len() as u64 <= head / 32 + 2,
        "{} values",
        events.len()
    );
    for (k, v) in &events {
        let key = u64::from_be_bytes(k.as_slice().try_into().unwrap());
        assert_eq!(key % 32, 1, "key {key} starts a run");
        assert_eq!(v[0], 0, "a block value");
    }
}

/// With retention, what goes physically (events, time index entries, the
/// namespace's closed edges) is cut at multiples of 4,096 seqs: cut where
/// each group commit ended, it left thousands of closed edges more in one
/// replica than in the other, fed the same ops in other batches.
#[test]
fn retention_deletes_the_same_whatever_the_batching() {
    let ops: Vec<Op> = Workload::new(5, T0).take(140_000).collect();
    let retention = Retention::default().with_max_events(50_000);
    let (a_dir, b_dir) = two_replicas(&ops, Some(retention), 701);
    assert_same_stored(
        a_dir.path(),
        b_dir.path(),
        &["events", "time", "ns"],
        "retention",
    );
}

/// Format 8 keeps the live index's writes in memory and stores them every
/// 65,536 seqs (or in the batch, when retention would delete an event
/// after its marker): where those checkpoints fall depends on the batching,
/// but a closed ledger holds the same `ns` keys and values either way.
#[test]
fn the_live_index_is_the_same_whatever_the_batching() {
    let ops: Vec<Op> = Workload::new(5, T0).take(140_000).collect();
    let (a_dir, b_dir) = two_replicas(&ops, None, 701);
    assert_same_stored(a_dir.path(), b_dir.path(), &["ns"], "live index");
    let live = stored(a_dir.path(), "ns")
        .iter()
        .filter(|(k, _)| k.first() == Some(&b'L'))
        .count();
    assert!(live > 1_000, "{live} live index keys");
}

/// Ops of a legacy and an object-store bucket whose recursive deletes,
/// directory renames and bucket deletes take entries from the live index:
/// commits and creates of `dN/fM`, and every 16th op or so one of those.
fn directory_ops(n: usize) -> Vec<Op> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|i| {
            let (bucket, layout) = match next(2) {
                0 => ("lg", fsfeed::Layout::Legacy),
                _ => ("ob", fsfeed::Layout::Obs),
            };
            let d = next(10);
            let key = format!("d{d}/f{}", next(40));
            let op = match next(64) {
                0..=1 => Op::delete("v", bucket, &format!("d{d}"), true).dir(),
                2..=3 => {
                    let to = (d + 1 + next(9)) % 10;
                    Op::rename("v", bucket, &format!("d{d}"), &format!("d{to}")).dir()
                }
                4 => Op::bucket_delete("v", bucket),
                5..=30 => Op::create_file("v", bucket, &key),
                _ => Op::commit("v", bucket, &key, i as u64, "e"),
            };
            op.with_layout(layout).at(T0 + i as i64 * 1000)
        })
        .collect()
}

/// Format 9 stores the entries such ops took beside their events (`X`
/// keys in `ns`): the same keys whatever the batching, and retention drops
/// those of the events it drops (below its cut, a multiple of 4,096).
#[test]
fn what_directory_ops_took_is_stored_the_same_whatever_the_batching() {
    let ops = directory_ops(30_000);
    let retention = Retention::default().with_max_events(6_000);
    let (a_dir, b_dir) = two_replicas(&ops, Some(retention), 53);
    assert_same_stored(a_dir.path(), b_dir.path(), &["events", "ns"], "taken");
    let first = {
        let l = open(a_dir.path(), Durability::None, None);
        let first = l.stats().unwrap().first_seq;
        l.close().unwrap();
        first
    };
    let seqs: Vec<u64> = stored(a_dir.path(), "ns")
        .iter()
        .filter(|(k, _)| k.first() == Some(&b'X'))
        .map(|(k, _)| u64::from_be_bytes(k[1..9].try_into().unwrap()))
        .collect();
    assert!(seqs.len() > 100, "{} keys", seqs.len());
    let cut = first / 4096 * 4096;
    assert!(cut > 4096, "retention cut at {cut}");
    assert!(seqs.iter().all(|s| *s >= cut), "none below {cut}");
}
