//! Invariant 1: seq is dense from 1, and the retained events are exactly
//! first_seq..=head_seq, whatever the batching, concurrency and reopens.
mod common;

use std::sync::Arc;

use common::*;
use fsfeed::{Durability, Retention};

#[test]
fn invariant_dense_seq_across_batches_threads_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(open(dir.path(), Durability::Buffered, None));
    assert_eq!(ledger.append_batch(commits(0, 10)).unwrap(), (1, 10));
    assert_eq!(ledger.append(commits(10, 1).remove(0)).unwrap(), 11);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let l = ledger.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..50 {
                    let (a, b) = l.append_batch(commits(1000 + t * 100 + i, 2)).unwrap();
                    assert_eq!(b, a + 1, "a batch gets consecutive seqs");
                    got.push(a);
                }
                got
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let head = ledger.head_seq().unwrap();
    assert_eq!(head, 11 + 8 * 50 * 2);
    let seqs: Vec<u64> = all_keys(&ledger).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
    ledger.close().unwrap();
    drop(ledger);

    let ledger = open(dir.path(), Durability::Buffered, None);
    assert_eq!(ledger.head_seq().unwrap(), head);
    assert_eq!(ledger.append(commits(5000, 1).remove(0)).unwrap(), head + 1);
}

#[test]
fn invariant_dense_seq_retained_window_is_first_to_head() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(25)),
    );
    for i in 0..20 {
        ledger.append_batch(commits(i * 7, 7)).unwrap();
        let (first, head) = (ledger.first_seq().unwrap(), ledger.head_seq().unwrap());
        let seqs: Vec<u64> = all_keys(&ledger).into_iter().map(|(s, _)| s).collect();
        assert_eq!(seqs, (first..=head).collect::<Vec<_>>());
        assert!(head - first < 25);
    }
}
