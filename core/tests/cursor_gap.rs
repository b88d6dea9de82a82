//! A cursor behind retention is told so in-band: a `Gap` first in the batch
//! (`report`), or `Error::Gap` without moving (`error`). Never a silent skip.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, Error, Gap, OnGap, Retention, Start};

#[test]
fn report_puts_the_gap_first_then_continues() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(5)),
    );
    ledger.append_batch(commits(0, 3)).unwrap();
    let c = ledger
        .cursor(Some("slow"), CursorOptions::default())
        .unwrap();
    c.commit(fsfeed::Position::new(2, 0)).unwrap();
    ledger.append_batch(commits(3, 10)).unwrap(); // keeps 9..=13
    let mut c = ledger
        .cursor(Some("slow"), CursorOptions::default())
        .unwrap();
    let b = c.read(100, Duration::ZERO).unwrap();
    assert_eq!(
        b.gap,
        Some(Gap {
            expected: 2,
            actual: 9
        })
    );
    assert_eq!(b.records.first().unwrap().event.seq, 9);
    assert_eq!(b.records.len(), 5);
    // Seq(1) is a gap too, even on a fresh cursor.
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Seq(1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        c.read(1, Duration::ZERO).unwrap().gap,
        Some(Gap {
            expected: 1,
            actual: 9
        })
    );
}

#[test]
fn error_fails_the_read_and_does_not_move() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(5)),
    );
    ledger.append_batch(commits(0, 20)).unwrap();
    let opts = CursorOptions {
        start: Start::Seq(3),
        on_gap: OnGap::Error,
        ..Default::default()
    };
    let mut c = ledger.cursor(None, opts).unwrap();
    match c.read(10, Duration::ZERO) {
        Err(Error::Gap {
            expected: 3,
            actual: 16,
        }) => {}
        other => panic!("expected a gap error, got {other:?}"),
    }
    assert_eq!(c.position().seq, 3);
    c.seek(Start::Earliest).unwrap();
    assert_eq!(c.read(10, Duration::ZERO).unwrap().records.len(), 5);
    assert_eq!(
        "resync?".parse::<OnGap>().unwrap_err().code(),
        "invalid_argument"
    );
}
