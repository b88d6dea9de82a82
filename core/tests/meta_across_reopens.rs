//! The writer stores a meta key (first seq, physical first, last txid, max
//! op time) only in the group commits that change it. A ledger reopened
//! between its appends, where some groups change a key and others do not,
//! holds what a ledger fed the same ops in other batches holds, and goes
//! on alike.
mod common;

use common::*;
use fsfeed::{Durability, Ledger, Op, Retention};

fn reopen(ledger: Ledger, dir: &std::path::Path, retention: Option<Retention>) -> Ledger {
    ledger.close().unwrap();
    drop(ledger);
    open(dir, Durability::Buffered, retention)
}

/// The max op time and the last txid: 200 commits, a txid on two ops in
/// three, the others a millisecond apart but every fifth op, and every op
/// that takes a time index entry (each 64th seq), at `T0`: the running max
/// that entry stores is the max the writer reloaded.
#[test]
fn max_time_and_last_txid_read_back_after_reopens() {
    let ops: Vec<Op> = (0..200u64)
        .map(|i| {
            let old = i % 5 == 4 || (i + 1) % 64 == 0;
            let time = if old { T0 } else { T0 + i as i64 * 1000 };
            let op = Op::commit("vol1", "b1", &format!("dir/k{i:04}"), i, "etag").at(time);
            if i % 3 == 2 {
                op
            } else {
                op.with_txid(1000 + i)
            }
        })
        .collect();
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = open(a_dir.path(), Durability::Buffered, None);
    for op in &ops {
        a.append(op.clone()).unwrap();
        a = reopen(a, a_dir.path(), None);
    }
    let b = open(b_dir.path(), Durability::Buffered, None);
    b.append_batch(ops.clone()).unwrap();

    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(
        (sa.head_seq, sa.bytes, sa.last_txid),
        (sb.head_seq, sb.bytes, sb.last_txid)
    );
    assert_eq!(sa.last_txid, Some(1000 + 199));
    assert_eq!(a.checksum().unwrap(), b.checksum().unwrap());
    // The time index, built from the max op time at each 64th seq.
    for ms in (0..200).step_by(7) {
        let t = T0 + ms * 1000;
        assert_eq!(
            a.seq_for_time(t).unwrap(),
            b.seq_for_time(t).unwrap(),
            "{ms} ms"
        );
    }
    // The stored last txid still refuses one that does not grow.
    for ledger in [&a, &b] {
        let e = ledger
            .append(
                Op::commit("vol1", "b1", "late", 1, "e")
                    .at(T0)
                    .with_txid(1199),
            )
            .unwrap_err();
        assert_eq!(e.code(), "txid_not_increasing");
    }
}

/// The first seq and where physical deletion got to (`phys_first`, which
/// moves only at every 4,096th seq): 9,000 commits under a 1,000-event
/// limit, in batches of 100 with a reopen after each, and in batches of
/// 1,000. Closed, the two hold the same keys.
#[test]
fn first_and_physical_first_read_back_after_reopens() {
    let retention = || {
        Some(Retention {
            max_events: Some(1000),
            ..Default::default()
        })
    };
    let ops = commits(0, 9000);
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = open(a_dir.path(), Durability::Buffered, retention());
    for chunk in ops.chunks(100) {
        a.append_batch(chunk.to_vec()).unwrap();
        a = reopen(a, a_dir.path(), retention());
    }
    let mut b = open(b_dir.path(), Durability::Buffered, retention());
    for chunk in ops.chunks(1000) {
        b.append_batch(chunk.to_vec()).unwrap();
    }
    b = reopen(b, b_dir.path(), retention());
    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(
        (sa.first_seq, sa.head_seq, sa.events, sa.bytes),
        (sb.first_seq, sb.head_seq, sb.events, sb.bytes)
    );
    assert_eq!(sa.first_seq, 8001);
    assert_eq!(all_keys(&a), all_keys(&b));
    // The events below the last cut (8,192) are gone from both.
    let (va, vb) = (a.verify().unwrap(), b.verify().unwrap());
    assert_eq!(va.keys, vb.keys);
}
