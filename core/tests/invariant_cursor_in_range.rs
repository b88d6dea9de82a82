//! Invariant 5: a committed cursor position never points past the head.
mod common;

use common::*;
use fsfeed::{CursorOptions, Durability, Position, Start};

#[test]
fn invariant_cursor_in_range_commit_and_seek_past_head_fail() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 5)).unwrap();
    let mut c = ledger.cursor(Some("c1"), CursorOptions::default()).unwrap();
    // head + 1 (everything read) is fine; past it is not.
    c.commit(Position::new(6, 0)).unwrap();
    for bad in [
        Position::new(7, 0),
        Position::new(6, 1),
        Position::new(u64::MAX, 0),
    ] {
        let e = c.commit(bad).unwrap_err();
        assert_eq!(e.code(), "position_out_of_range");
    }
    assert_eq!(ledger.committed("c1").unwrap(), Some(Position::new(6, 0)));
    assert_eq!(
        c.seek(Start::Seq(9)).unwrap_err().code(),
        "position_out_of_range"
    );
    assert_eq!(
        c.seek(Start::Seq(0)).unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        c.position(),
        Position::new(1, 0),
        "a failed seek does not move"
    );
    let stats = ledger.stats().unwrap();
    assert_eq!(stats.cursors.len(), 1);
    assert!(stats.cursors[0].position.seq <= stats.head_seq + 1);
    assert_eq!(stats.cursors[0].lag, 0);
}

#[test]
fn invariant_cursor_in_range_unnamed_cursor_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let c = ledger.cursor(None, CursorOptions::default()).unwrap();
    assert_eq!(
        c.commit(Position::new(1, 0)).unwrap_err().code(),
        "invalid_argument"
    );
    let e = ledger
        .cursor(Some("bad/name"), CursorOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
}
