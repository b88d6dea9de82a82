//! Resync lists the live tree at the head as creates marked `resync`, then
//! the stream goes on; `changes` collapses a range into one row per path;
//! closed edges are collected as retention passes them.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::changes::ChangeKind;
use fsfeed::{CursorOptions, Durability, Layout, OnGap, Op, Position, Retention, Start};

fn fso(op: Op, t: i64) -> Op {
    op.with_layout(Layout::Fso).at(T0 + t)
}

#[test]
fn on_gap_resync_lists_the_live_tree_then_continues() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(3)),
    );
    ledger
        .append_batch(vec![
            fso(Op::commit("v", "b", "a/x", 1, "e"), 0),
            fso(Op::commit("v", "b", "a/y", 1, "e"), 1),
            fso(Op::commit("v", "b", "z", 1, "e"), 2),
            fso(Op::delete("v", "b", "a/x", false), 3),
            fso(Op::rename("v", "b", "z", "c/z"), 4),
        ])
        .unwrap();
    let opts = CursorOptions {
        start: Start::Seq(1),
        on_gap: OnGap::Resync,
        ..Default::default()
    };
    let mut c = ledger.cursor(Some("r"), opts).unwrap();
    let b = c.read(100, Duration::ZERO).unwrap();
    assert_eq!(b.gap.map(|g| (g.expected, g.actual)), Some((1, 3)));
    let keys: Vec<(&str, bool)> = b
        .records
        .iter()
        .map(|r| (r.event.path.as_str(), r.resync))
        .collect();
    assert_eq!(keys, vec![("a/y", true), ("c/z", true)]);
    assert_eq!(b.next, Position::new(6, 0), "after the head");
    let s3 = fsfeed::render::Format::S3(Default::default())
        .renderer()
        .render(&b.records[0])
        .unwrap();
    assert_eq!(s3["fsfeedEventData"]["resync"], true);
    assert_eq!(s3["eventName"], "ObjectCreated:Put");
    ledger
        .append(fso(Op::commit("v", "b", "new", 1, "e"), 5))
        .unwrap();
    let b = c.read(100, Duration::ZERO).unwrap();
    assert_eq!(b.records.len(), 1);
    assert!(!b.records[0].resync);
    // An explicit resync from anywhere.
    c.resync().unwrap();
    let b = c.read(1, Duration::ZERO).unwrap();
    assert!(b.records[0].resync);
    assert_eq!(
        b.next,
        Position::new(7, 0),
        "mid-resync, next stays where the cursor was"
    );
}

/// The rows of `changes` from `since` are `want`: (change, key, from_key).
fn assert_rows(ledger: &fsfeed::Ledger, since: u64, want: &[(ChangeKind, &str, Option<&str>)]) {
    let rows = ledger.changes(Start::Seq(since), None).unwrap();
    let got: Vec<(ChangeKind, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.change, r.key.as_str(), r.from_key.as_deref()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn changes_collapse_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::commit("v", "b", "keep", 1, "e"), 0),
            fso(Op::commit("v", "b", "edit", 1, "e"), 1),
            fso(Op::commit("v", "b", "gone", 1, "e"), 2),
            fso(Op::commit("v", "b", "dir/moved", 1, "e"), 3),
            fso(Op::commit("v", "obs-less", "x", 1, "e"), 4),
        ])
        .unwrap();
    let since = ledger.head_seq().unwrap() + 1;
    ledger
        .append_batch(vec![
            fso(Op::commit("v", "b", "edit", 2, "e2"), 10),
            fso(Op::delete("v", "b", "gone", false), 11),
            fso(Op::rename("v", "b", "dir", "dir2"), 12),
            fso(Op::commit("v", "b", "fresh", 1, "e"), 13),
            fso(Op::commit("v", "b", "tmp", 1, "e"), 14),
            fso(Op::delete("v", "b", "tmp", false), 15),
            fso(Op::commit("v", "b", "dir2/later", 1, "e"), 16),
            fso(Op::rename("v", "b", "dir2", "dir3"), 17),
            Op::rename("v", "flat", "p", "q").at(T0 + 18),
        ])
        .unwrap();
    assert_rows(
        &ledger,
        since,
        &[
            (ChangeKind::Rename, "dir3", Some("dir")),
            (ChangeKind::New, "dir3/later", None),
            (ChangeKind::Modify, "edit", None),
            (ChangeKind::New, "fresh", None),
            (ChangeKind::Delete, "gone", None),
            (ChangeKind::Rename, "q", Some("p")),
        ],
    );
    assert_eq!(
        ledger.changes(Start::Seq(0), None).unwrap_err().code(),
        "invalid_argument"
    );
}

/// In a legacy bucket a directory's rename is a rename of each object it
/// moved, and a recursive delete a delete of each: the objects the live
/// index held then (stored beside the event, format 9).
#[test]
fn changes_of_legacy_directories_are_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let lg = |op: Op, t: i64| op.with_layout(Layout::Legacy).at(T0 + t);
    ledger
        .append_batch(vec![
            lg(Op::commit("v", "g", "d/a", 1, "e"), 0),
            lg(Op::commit("v", "g", "d/e/b", 1, "e"), 1),
            lg(Op::commit("v", "g", "x/old", 1, "e"), 2),
        ])
        .unwrap();
    let since = ledger.head_seq().unwrap() + 1;
    ledger
        .append_batch(vec![
            lg(Op::commit("v", "g", "d/new", 1, "e"), 10),
            lg(Op::rename("v", "g", "d", "n").dir(), 11),
            lg(Op::commit("v", "g", "n/a", 2, "e2"), 12),
            lg(Op::delete("v", "g", "x", true).dir(), 13),
        ])
        .unwrap();
    assert_rows(
        &ledger,
        since,
        &[
            (ChangeKind::Modify, "n/a", None),
            (ChangeKind::Rename, "n/a", Some("d/a")),
            (ChangeKind::Rename, "n/e/b", Some("d/e/b")),
            (ChangeKind::New, "n/new", None),
            (ChangeKind::Delete, "x/old", None),
        ],
    );
}

#[test]
fn closed_edges_are_collected_as_retention_passes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(100)),
    );
    let mut t = 0;
    // A steady tree: 10 files rewritten (overwrite), renamed and deleted many times.
    for round in 0..1000 {
        let k = format!("d{}/f{}", round % 3, round % 10);
        let mut create = fso(Op::create_file("v", "b", &k), t);
        if let Some(fsfeed::op::Kind::CreateFile(c)) = &mut create.kind {
            c.overwrite = true;
        }
        t += 1;
        ledger
            .append_batch(vec![
                create,
                fso(Op::rename("v", "b", &k, &format!("{k}.x")), t),
            ])
            .unwrap();
        t += 1;
        ledger
            .append(fso(Op::delete("v", "b", &format!("{k}.x"), false), t))
            .unwrap();
        t += 1;
        if round == 500 {
            ledger
                .append(fso(Op::delete("v", "b", "d0", true), t))
                .unwrap();
        }
    }
    // 3000 events went through; only ~100 are retained, and garbage
    // collection runs every 4096 seqs at most: the namespace holds the live
    // tree, the retained history and at most one chunk of closed edges.
    let keys = ledger.namespace_keys().unwrap();
    assert!(keys < 4096 * 6, "namespace keys {keys}");
    for _ in 0..2000 {
        ledger
            .append(fso(Op::commit("v", "b", "steady", 1, "e"), t))
            .unwrap();
        t += 1;
    }
    let after = ledger.namespace_keys().unwrap();
    assert!(after < 200, "after collection: {after} keys");
}
