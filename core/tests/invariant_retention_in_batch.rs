//! Invariant 3: retention is decided from ledger content inside the append
//! itself: when `append` returns, what it dropped is already gone, and the
//! settings are stored in the ledger so every opener agrees.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{Durability, Ledger, Retention};

#[test]
fn invariant_retention_in_batch_max_events() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::Sync,
        Some(Retention::default().with_max_events(100)),
    );
    ledger.append_batch(commits(0, 250)).unwrap();
    // No background work: the answer is there as soon as append returns.
    assert_eq!(ledger.first_seq().unwrap(), 151);
    assert!(ledger.get(150).unwrap().is_none());
    assert_eq!(ledger.get(151).unwrap().unwrap().path, "dir/k000150");
    assert_eq!(ledger.stats().unwrap().events, 100);
}

#[test]
fn invariant_retention_in_batch_max_bytes_matches_stats() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_bytes(5_000)),
    );
    for i in 0..40 {
        ledger.append_batch(commits(i * 10, 10)).unwrap();
        let s = ledger.stats().unwrap();
        assert!(s.bytes <= 5_000, "{} bytes retained", s.bytes);
        // Nothing more than needed was dropped: events here are under 100 bytes.
        if s.first_seq > 1 {
            assert!(s.bytes > 4_900, "{} bytes retained", s.bytes);
        }
    }
}

#[test]
fn invariant_retention_in_batch_max_age_by_op_time() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_age(Duration::from_secs(1))),
    );
    // Ops 1 ms apart: after 3000 ops, ops older than 1 s before the newest go.
    ledger.append_batch(commits(0, 3000)).unwrap();
    let first = ledger.first_seq().unwrap();
    let first_ev = ledger.get(first).unwrap().unwrap();
    let newest = ledger.get(3000).unwrap().unwrap();
    let age = newest.op.unwrap().time_us - first_ev.op.unwrap().time_us;
    assert!(age <= 1_000_000, "oldest retained is {age} µs old");
    assert_eq!(first, 2000, "the op at exactly the cutoff stays");
    // The time index was trimmed with it: a start time in dropped history is a gap.
    let seq = ledger.seq_for_time(T0).unwrap();
    assert!(seq < first);
}

#[test]
fn invariant_retention_in_batch_settings_are_stored_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open(
            dir.path(),
            Durability::Sync,
            Some(Retention::default().with_max_events(10)),
        );
        ledger.append_batch(commits(0, 5)).unwrap();
    }
    // A later opener that gives no settings gets the stored ones.
    let ledger = open(dir.path(), Durability::Sync, None);
    assert_eq!(ledger.retention().unwrap().max_events, Some(10));
    ledger.append_batch(commits(5, 20)).unwrap();
    assert_eq!(ledger.first_seq().unwrap(), 16);
    // Tightening applies at once, in its own batch.
    ledger
        .set_retention(Retention::default().with_max_events(3))
        .unwrap();
    assert_eq!(ledger.first_seq().unwrap(), 23);
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.retention().unwrap().max_events, Some(3));
    assert_eq!(reader.first_seq().unwrap(), 23);
}

#[test]
fn invariant_retention_in_batch_cursor_guard_up_to_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let r = Retention::default()
        .with_max_events(10)
        .keeping_for_cursors(Some(100), None);
    let ledger = open(dir.path(), Durability::None, Some(r));
    ledger.append_batch(commits(0, 20)).unwrap();
    let slow = ledger.cursor(Some("slow"), Default::default()).unwrap();
    slow.commit(fsfeed::Position::new(5, 0)).unwrap();
    ledger.append_batch(commits(20, 30)).unwrap();
    assert_eq!(
        ledger.first_seq().unwrap(),
        11,
        "held back... but 1..=10 were gone before the cursor came"
    );
    ledger.append_batch(commits(50, 5)).unwrap();
    assert_eq!(ledger.first_seq().unwrap(), 11);
    slow.commit(fsfeed::Position::new(40, 0)).unwrap();
    ledger.append_batch(commits(55, 1)).unwrap();
    assert_eq!(ledger.first_seq().unwrap(), 40, "released up to the cursor");
    ledger.append_batch(commits(56, 200)).unwrap();
    assert_eq!(ledger.head_seq().unwrap(), 256);
    assert_eq!(
        ledger.first_seq().unwrap(),
        157,
        "the hard limit wins over the cursor"
    );
    assert!(ledger.delete_cursor("slow").unwrap());
    ledger.append_batch(commits(256, 1)).unwrap();
    assert_eq!(ledger.first_seq().unwrap(), 248);
}
