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
    let mut i = 0;
    let mut n = 1;
    while i < ops.len() {
        let end = (i + n).min(ops.len());
        b.append_batch(ops[i..end].to_vec()).unwrap();
        i = end;
        n = n % 37 + 1;
    }
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
