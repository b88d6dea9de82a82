//! Group commit led by the appenders (`ledger/writer.rs`): concurrent
//! appenders share write groups, a close while they append lets every
//! queued request finish or refuses it, and nothing acknowledged is lost.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use common::*;
use fsfeed::{Durability, Error};

#[test]
fn concurrent_single_op_appenders_get_disjoint_dense_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::Sync, None);
    let start = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let l = ledger.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..40)
                    .map(|i| l.append(commits(t * 1000 + i, 1).remove(0)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| {
            let got = t.join().unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "one appender's seqs grow"
            );
            got
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=640).collect::<Vec<_>>());
    assert_eq!(ledger.head_seq().unwrap(), 640);
}

#[test]
fn close_while_appending_finishes_or_refuses_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::Buffered, None);
    let go = Arc::new(AtomicBool::new(true));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let l = ledger.clone();
            let go = go.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0;
                while go.load(Ordering::Relaxed) || i < 5 {
                    match l.append_batch(commits(t * 100_000 + i * 3, 3)) {
                        Ok((a, b)) => acked.extend(a..=b),
                        Err(Error::LedgerClosed) => return (acked, true),
                        Err(e) => panic!("unexpected error {e}"),
                    }
                    i += 1;
                }
                (acked, false)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    ledger.close().unwrap();
    go.store(false, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in threads {
        let (a, refused) = t.join().unwrap();
        assert!(refused, "after close every appender is refused");
        acked.extend(a);
    }
    drop(ledger);
    acked.sort_unstable();
    assert!(!acked.is_empty());
    let reopened = open(dir.path(), Durability::Buffered, None);
    let head = reopened.head_seq().unwrap();
    assert_eq!(
        acked,
        (1..=head).collect::<Vec<_>>(),
        "every acknowledged seq is there, and only those"
    );
    let stored: Vec<u64> = all_keys(&reopened).into_iter().map(|(s, _)| s).collect();
    assert_eq!(stored, acked);
}
