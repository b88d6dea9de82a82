//! `Ledger::close` releases the database even while readers are midway
//! through a stream that holds it between calls: the directory can be opened
//! again at once (RocksDB's lock is free), and the reader's next step says
//! `ledger_closed` instead of reading a database that should be closed.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, ExpandOptions, Layout, Op, Start};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso)
}

/// A ledger whose last event renames directory `d` holding 1,000 files.
fn with_big_directory(dir: &std::path::Path) -> (fsfeed::Ledger, u64) {
    let ledger = open(dir, Durability::None, None);
    let files: Vec<Op> = (0..1000)
        .map(|i| fso(Op::commit("v", "b", &format!("d/f{i:04}"), 1, "e")).at(T0 + i))
        .collect();
    ledger.append_batch(files).unwrap();
    let seq = ledger
        .append(fso(Op::rename("v", "b", "d", "e")).at(T0 + 1000))
        .unwrap();
    (ledger, seq)
}

#[test]
fn a_children_iterator_left_open_does_not_keep_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, seq) = with_big_directory(dir.path());
    let (d, _) = ledger.resolve_at("v", "b", "d", seq - 1).unwrap().unwrap();
    let mut children = ledger.children_at("v", "b", d, seq - 1).unwrap();
    assert_eq!(children.next().unwrap().unwrap().name, "f0000");
    ledger.close().unwrap();
    let again = open(dir.path(), Durability::None, None);
    assert_eq!(again.head_seq().unwrap(), seq);
    // What it had read ahead it still gives; then the closed ledger says so.
    let rest: Vec<_> = children.collect();
    assert!(rest.len() < 999, "it read {} more children", rest.len());
    let last = rest.last().unwrap();
    assert_eq!(last.as_ref().unwrap_err().code(), "ledger_closed");
    assert!(rest[..rest.len() - 1].iter().all(|c| c.is_ok()));
}

#[test]
fn a_cursor_midway_through_an_expansion_does_not_keep_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, seq) = with_big_directory(dir.path());
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Seq(seq),
                expand: ExpandOptions {
                    renames: true,
                    deletes: false,
                },
                ..Default::default()
            },
        )
        .unwrap();
    let b = c.read(10, Duration::ZERO).unwrap();
    assert_eq!(b.records.len(), 10);
    assert_eq!(b.next.seq, seq, "stopped inside the expansion");
    ledger.close().unwrap();
    let again = open(dir.path(), Durability::None, None);
    assert_eq!(again.head_seq().unwrap(), seq);
    let e = c.read(10, Duration::ZERO).unwrap_err();
    assert_eq!(e.code(), "ledger_closed");
}
