//! `stats()` counts the bytes of exactly the events between the bounds it
//! reports, however many appends land while it reads: its bounds, byte
//! count, first offset and last txid come from one state of the ledger.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use fsfeed::{Durability, Ledger};

/// Append batches of 25 from another thread while `reader` reports stats
/// (and a third thread asks it for its head, which makes a read-only
/// opener catch up with the writer meanwhile), until `reports` reports
/// (or 4,000 batches); every report's bytes must be what its events
/// occupy, and its last txid its head's.
fn bytes_match_bounds(writer: &Ledger, reader: &Ledger, reports: usize) {
    let done = AtomicBool::new(false);
    let enough = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                reader.head_seq().unwrap();
            }
        });
        s.spawn(|| {
            let mut i = 0;
            while !enough.load(Ordering::SeqCst) && i < 4000 {
                let mut ops = commits(i * 25, 25);
                for (k, op) in ops.iter_mut().enumerate() {
                    op.txid = Some(i * 25 + k as u64 + 1);
                }
                writer.append_batch(ops).unwrap();
                i += 1;
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut seen = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let st = reader.stats().unwrap();
            seen.push((st.first_seq, st.head_seq, st.bytes, st.last_txid));
            if seen.len() >= reports {
                enough.store(true, Ordering::SeqCst);
            }
        }
        seen
    });
    assert!(
        seen.len() > 10,
        "only {} reports while appending",
        seen.len()
    );
    let end = writer.stats().unwrap();
    assert_eq!(end.first_seq, 1);
    assert_eq!(end.head_seq % 25, 0);
    let start = writer.get(1).unwrap().unwrap().offset;
    let offset = |seq: u64| {
        if seq > end.head_seq {
            start + end.bytes
        } else {
            writer.get(seq).unwrap().unwrap().offset
        }
    };
    for &(first, head, bytes, txid) in &seen {
        assert_eq!(first, 1);
        assert_eq!(
            bytes,
            offset(head + 1) - offset(first),
            "stats at head {head} counted bytes of other events"
        );
        // Each event's txid is its seq here.
        assert_eq!(txid, (head > 0).then_some(head), "txid of another head");
    }
}

#[test]
fn the_writers_stats_count_the_events_they_report() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    bytes_match_bounds(&ledger, &ledger, 2000);
}

#[test]
fn a_read_only_openers_stats_count_the_events_they_report() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::Buffered, None);
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    bytes_match_bounds(&ledger, &reader, 1000);
}
