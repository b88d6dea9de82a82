//! The ordering example from the Ozone review: d1/d2/d3/F1; the renames
//! `d1/d2 -> d1/d5` and `d1/d2/d3/F1 -> d1/d2/F1`, applied in either order,
//! give paths that are consistent at every seq.
mod common;

use common::*;
use fsfeed::{Durability, Layout, Op};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso)
}

fn setup() -> (tempfile::TempDir, fsfeed::Ledger, u64) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append(fso(Op::commit("v", "b", "d1/d2/d3/F1", 1, "e")).at(T0))
        .unwrap();
    let (f1, _) = ledger
        .resolve_at("v", "b", "d1/d2/d3/F1", 1)
        .unwrap()
        .unwrap();
    (dir, ledger, f1)
}

#[test]
fn directory_rename_first() {
    let (_d, ledger, f1) = setup();
    let s2 = ledger
        .append(fso(Op::rename("v", "b", "d1/d2", "d1/d5")).at(T0 + 1))
        .unwrap();
    // After it, F1 lives under d1/d5: the second rename names that path.
    let s3 = ledger
        .append(fso(Op::rename("v", "b", "d1/d5/d3/F1", "d1/d5/F1")).at(T0 + 2))
        .unwrap();
    assert_eq!(ledger.path_at(f1, 1).unwrap().unwrap().key, "d1/d2/d3/F1");
    assert_eq!(ledger.path_at(f1, s2).unwrap().unwrap().key, "d1/d5/d3/F1");
    assert_eq!(ledger.path_at(f1, s3).unwrap().unwrap().key, "d1/d5/F1");
    // And the old name is gone at the right moment.
    assert!(ledger
        .resolve_at("v", "b", "d1/d2/d3/F1", s2)
        .unwrap()
        .is_none());
    assert!(ledger
        .resolve_at("v", "b", "d1/d2/d3/F1", s2 - 1)
        .unwrap()
        .is_some());
    // A rename naming a path that no longer exists adopts it as new: never
    // `d1/d2/d3/F1 -> d1/d2/F1` after d1/d2 has gone.
    let e = ledger.get(s3).unwrap().unwrap();
    assert_eq!(
        (e.path.as_str(), e.to_path.as_str()),
        ("d1/d5/d3/F1", "d1/d5/F1")
    );
}

#[test]
fn file_rename_first() {
    let (_d, ledger, f1) = setup();
    let s2 = ledger
        .append(fso(Op::rename("v", "b", "d1/d2/d3/F1", "d1/d2/F1")).at(T0 + 1))
        .unwrap();
    let s3 = ledger
        .append(fso(Op::rename("v", "b", "d1/d2", "d1/d5")).at(T0 + 2))
        .unwrap();
    assert_eq!(ledger.path_at(f1, s2).unwrap().unwrap().key, "d1/d2/F1");
    assert_eq!(ledger.path_at(f1, s3).unwrap().unwrap().key, "d1/d5/F1");
    let (d3, _) = ledger
        .resolve_at("v", "b", "d1/d5/d3", s3)
        .unwrap()
        .unwrap();
    assert_eq!(ledger.path_at(d3, s2).unwrap().unwrap().key, "d1/d2/d3");
    // children_at follows the versions.
    let names = |seq| -> Vec<String> {
        let (d2, _) = ledger.resolve_at("v", "b", "d1", seq).unwrap().unwrap();
        let sub: Vec<_> = ledger
            .children_at("v", "b", d2, seq)
            .unwrap()
            .map(|c| c.unwrap().name)
            .collect();
        sub
    };
    assert_eq!(names(1), vec!["d2"]);
    assert_eq!(names(s3), vec!["d5"]);
}
