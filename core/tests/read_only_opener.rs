//! A read-only opener (another process's view, a RocksDB secondary) sees new
//! events while it waits, keeps its cursors beside the ledger, and the
//! writer's retention guard counts them.
mod common;

use std::time::{Duration, Instant};

use common::*;
use fsfeed::{CursorOptions, Durability, Ledger, Position, Retention};

#[test]
fn a_reader_sees_appends_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), Durability::Sync, None);
    writer.append_batch(commits(0, 3)).unwrap();
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(reader.head_seq().unwrap(), 3);
    let start = Instant::now();
    let b = read_while_appending(&reader, &writer, commits(3, 2), Duration::from_millis(100));
    assert_eq!(
        b.records.iter().map(|r| r.event.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(
        reader.append(commits(9, 1).remove(0)).unwrap_err().code(),
        "read_only"
    );
    assert_eq!(
        reader.checkpoint(dir.path().join("cp")).unwrap_err().code(),
        "read_only"
    );
}

#[test]
fn reader_cursors_are_durable_visible_and_hold_retention() {
    let dir = tempfile::tempdir().unwrap();
    let r = Retention::default()
        .with_max_events(5)
        .keeping_for_cursors(None, None);
    let writer = open(dir.path(), Durability::Sync, Some(r));
    writer.append_batch(commits(0, 5)).unwrap();
    {
        let reader = Ledger::open_read_only(dir.path()).unwrap();
        let c = reader
            .cursor(Some("etl"), CursorOptions::default())
            .unwrap();
        c.commit(Position::new(3, 0)).unwrap();
        assert!(dir.path().join("cursors/etl.json").exists());
    }
    writer.append_batch(commits(5, 10)).unwrap();
    assert_eq!(
        writer.first_seq().unwrap(),
        3,
        "held for the reader's cursor"
    );
    let info = writer.stats().unwrap().cursors;
    assert_eq!(info.len(), 1);
    assert_eq!(
        (info[0].name.as_str(), info[0].store, info[0].lag),
        ("etl", "reader", 13)
    );
    // The same name opened in the writer process resumes where the reader was.
    let c = writer
        .cursor(Some("etl"), CursorOptions::default())
        .unwrap();
    assert_eq!(c.position(), Position::new(3, 0));
    c.commit(Position::new(12, 0)).unwrap();
    writer.append_batch(commits(15, 1)).unwrap();
    assert_eq!(writer.first_seq().unwrap(), 12);
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.committed("etl").unwrap(),
        Some(Position::new(12, 0)),
        "newest commit wins"
    );
}

#[test]
fn opening_what_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let e = Ledger::open_read_only(dir.path().join("nothing")).unwrap_err();
    assert_eq!(e.code(), "ledger_not_found");
    let _w = open(dir.path(), Durability::None, None);
    let e = Ledger::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "ledger_locked", "{e}");
}
