//! A blocked read returns as soon as an append lands, and an empty batch on
//! timeout; filtered-out events still move the position.
mod common;

use std::time::{Duration, Instant};

use common::*;
use fsfeed::{CursorOptions, Durability, Filter, Start};

#[test]
fn a_blocked_read_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let batch = read_while_appending(&ledger, &ledger, commits(0, 3), Duration::from_millis(100));
    assert!(
        !batch.records.is_empty(),
        "woken by the append, not the timeout"
    );
    assert_eq!(batch.records[0].event.seq, 1);
}

#[test]
fn a_read_with_nothing_new_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 2)).unwrap();
    let mut c = latest_cursor(&ledger);
    let t = Instant::now();
    let batch = c.read(10, Duration::from_millis(50)).unwrap();
    assert!(batch.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(batch.next.seq, 3);
    assert_eq!(
        c.read(0, Duration::ZERO).unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn filters_skip_but_advance() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let mut ops = commits(0, 10);
    ops[4].key = "other/x".into();
    ops[7].bucket = "b2".into();
    ops[7].key = "dir/in-b2".into();
    ledger.append_batch(ops).unwrap();
    let filter = Filter::all().bucket("b1").prefix("dir/").suffix("5");
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                filter,
                start: Start::Earliest,
                ..Default::default()
            },
        )
        .unwrap();
    let batch = c.read(100, Duration::ZERO).unwrap();
    let keys: Vec<_> = batch
        .records
        .iter()
        .map(|r| r.event.path.as_str())
        .collect();
    assert_eq!(keys, vec!["dir/k000005"]);
    assert_eq!(batch.next.seq, 11, "filtered events moved the position");
    let only_kind = Filter::all().kind("commit").kind("delete");
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                filter: only_kind,
                start: Start::Earliest,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(c.read(100, Duration::ZERO).unwrap().records.len(), 10);
    let bad = CursorOptions {
        filter: Filter::all().kind("nope"),
        ..Default::default()
    };
    assert_eq!(
        ledger.cursor(None, bad).unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn max_bounds_the_batch_and_lag_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 10)).unwrap();
    let mut c = ledger.cursor(Some("c"), CursorOptions::default()).unwrap();
    assert_eq!(c.lag().unwrap(), 10);
    let b = c.read(4, Duration::ZERO).unwrap();
    assert_eq!(b.records.len(), 4);
    assert_eq!(c.lag().unwrap(), 6);
    c.commit(b.next).unwrap();
    let stats = ledger.stats().unwrap();
    assert_eq!(stats.cursors[0].lag, 6);
}
