//! `checkpoint(dir)` writes a ledger that opens on its own, at that point.
mod common;

use common::*;
use fsfeed::{CursorOptions, Durability, Ledger, Position};

#[test]
fn a_checkpoint_opens_as_a_ledger_of_that_point() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir.path().join("a"), Durability::Sync, None);
    ledger.append_batch(commits(0, 50)).unwrap();
    ledger
        .cursor(Some("c"), CursorOptions::default())
        .unwrap()
        .commit(Position::new(20, 0))
        .unwrap();
    let cp = dir.path().join("cp");
    ledger.checkpoint(&cp).unwrap();
    ledger.append_batch(commits(50, 5)).unwrap();
    let copy = Ledger::open(&cp).unwrap();
    assert_eq!(copy.head_seq().unwrap(), 50);
    assert_eq!(copy.committed("c").unwrap(), Some(Position::new(20, 0)));
    assert_eq!(copy.append(commits(99, 1).remove(0)).unwrap(), 51);
    let e = ledger.checkpoint(&cp).unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "target not empty");
}

#[test]
fn a_closed_ledger_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.close().unwrap();
    ledger.close().unwrap();
    assert!(ledger.is_closed());
    assert_eq!(
        ledger.append(commits(0, 1).remove(0)).unwrap_err().code(),
        "ledger_closed"
    );
    assert_eq!(ledger.stats().unwrap_err().code(), "ledger_closed");
    // The database was released: it opens again.
    assert!(Ledger::open(dir.path()).is_ok());
}
