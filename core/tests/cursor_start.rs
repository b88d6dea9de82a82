//! Where a cursor starts: earliest, latest, a seq, a time, a position, or
//! its committed position (falling back to `on_missing`).
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, Position, Start};

fn first_seq_read(ledger: &fsfeed::Ledger, start: Start) -> Option<u64> {
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                start,
                ..Default::default()
            },
        )
        .unwrap();
    c.read(1, Duration::ZERO)
        .unwrap()
        .records
        .first()
        .map(|r| r.event.seq)
}

#[test]
fn every_start_variant() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 10)).unwrap(); // op times T0 + i ms, seq i+1
    assert_eq!(first_seq_read(&ledger, Start::Earliest), Some(1));
    assert_eq!(first_seq_read(&ledger, Start::Latest), None);
    assert_eq!(first_seq_read(&ledger, Start::Seq(7)), Some(7));
    assert_eq!(
        first_seq_read(&ledger, Start::Position(Position::new(3, 0))),
        Some(3)
    );
    assert_eq!(first_seq_read(&ledger, Start::Time(T0 + 4_000)), Some(5));
    assert_eq!(first_seq_read(&ledger, Start::Time(T0 + 4_001)), Some(6));
    assert_eq!(first_seq_read(&ledger, Start::Time(T0 + 60_000_000)), None);
    let t: Start = "2026-01-01T00:00:00.004Z".parse().unwrap();
    assert_eq!(first_seq_read(&ledger, t), Some(5));
    assert_eq!("earliest".parse::<Start>().unwrap(), Start::Earliest);
    assert_eq!(
        "12:3".parse::<Start>().unwrap(),
        Start::Position(Position::new(12, 3))
    );
    assert_eq!(
        "yesterday".parse::<Start>().unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn committed_resumes_and_falls_back_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 10)).unwrap();
    let latest = CursorOptions {
        on_missing: Some(Start::Latest),
        ..Default::default()
    };
    let c = ledger.cursor(Some("new"), latest).unwrap();
    assert_eq!(c.position(), Position::new(11, 0));
    let mut c = ledger
        .cursor(Some("svc"), CursorOptions::default())
        .unwrap();
    assert_eq!(
        c.position(),
        Position::new(1, 0),
        "default on_missing is earliest"
    );
    let b = c.read(3, Duration::ZERO).unwrap();
    c.commit(b.next).unwrap();
    drop(c);
    ledger.close().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let mut c = ledger
        .cursor(Some("svc"), CursorOptions::default())
        .unwrap();
    assert_eq!(c.read(1, Duration::ZERO).unwrap().records[0].event.seq, 4);
}
