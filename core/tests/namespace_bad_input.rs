//! Namespace rejections are typed and write nothing: unknown parent id, a
//! directory renamed into its own subtree, a create over an existing path
//! without overwrite, a non-recursive delete of a non-empty directory, a
//! rename or delete of a path the namespace knows to be gone.
mod common;

use common::*;
use fsfeed::{Durability, Layout, Op, Retention};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

/// What a refused batch must leave unchanged.
fn snapshot(ledger: &fsfeed::Ledger) -> (u64, u64, usize) {
    (
        ledger.checksum().unwrap(),
        ledger.head_seq().unwrap(),
        ledger.namespace_keys().unwrap(),
    )
}

#[test]
fn every_rejection_has_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::create_directory("v", "b", "a/b")),
            fso(Op::create_file("v", "b", "a/b/f")),
            fso(Op::commit("v", "b", "a/b/f", 1, "e")),
        ])
        .unwrap();
    let snapshot = || snapshot(&ledger);
    let before = snapshot();
    let mut by_parent = fso(Op::commit("v", "b", "", 1, "e"));
    by_parent.parent_id = Some(999_999);
    by_parent.name = "x".into();
    let (file_id, _) = ledger.resolve_at("v", "b", "a/b/f", 3).unwrap().unwrap();
    let mut under_file = fso(Op::commit("v", "b", "", 1, "e"));
    under_file.parent_id = Some(file_id);
    under_file.name = "x".into();
    let cases: Vec<(Vec<Op>, &str)> = vec![
        (vec![by_parent], "unknown_parent"),
        (vec![under_file], "unknown_parent"),
        (
            vec![fso(Op::rename("v", "b", "a", "a/b/c"))],
            "rename_into_subtree",
        ),
        (
            vec![fso(Op::rename("v", "b", "a/b", "a/b/x"))],
            "rename_into_subtree",
        ),
        (
            vec![fso(Op::create_file("v", "b", "a/b/f"))],
            "already_exists",
        ),
        (
            vec![fso(Op::create_directory("v", "b", "a/b/f"))],
            "already_exists",
        ),
        (
            vec![fso(Op::rename("v", "b", "a/b/f", "a/b"))],
            "already_exists",
        ),
        (
            vec![fso(Op::delete("v", "b", "a", false))],
            "directory_not_empty",
        ),
        // A good op first: the whole batch is refused.
        (
            vec![
                fso(Op::commit("v", "b", "a/ok", 1, "e")),
                fso(Op::delete("v", "b", "a/b", false)),
            ],
            "directory_not_empty",
        ),
    ];
    for (ops, code) in cases {
        let e = ledger.append_batch(ops).unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert_eq!(snapshot(), before, "{code} changed the ledger");
    }
    // A path through a file names the file, wherever it is on the path
    // (walked afresh, and through directories this group walked before).
    for (ops, file) in [
        (vec![fso(Op::create_file("v", "b", "a/b/f/x"))], "a/b/f"),
        (
            vec![fso(Op::commit("v", "b", "a/b/f/y/z", 1, "e"))],
            "a/b/f",
        ),
        (
            vec![
                fso(Op::create_file("v", "b", "a/b/g")),
                fso(Op::create_directory("v", "b", "a/b/f/d")),
            ],
            "a/b/f",
        ),
    ] {
        let e = ledger.append_batch(ops).unwrap_err();
        assert_eq!(e.code(), "invalid_op", "{e}");
        let want = format!("`{file}` is a file, not a directory");
        assert!(e.to_string().contains(&want), "{e}");
        assert_eq!(snapshot(), before, "{e} changed the ledger");
    }
    // The same ops done right are accepted.
    let mut over = fso(Op::create_file("v", "b", "a/b/f"));
    if let Some(fsfeed::op::Kind::CreateFile(c)) = &mut over.kind {
        c.overwrite = true;
    }
    ledger.append(over).unwrap();
    ledger.append(fso(Op::delete("v", "b", "a", true))).unwrap();
}

#[test]
fn parent_id_ops_resolve_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let s = ledger
        .append(fso(Op::create_directory("v", "b", "logs/2026")))
        .unwrap();
    let (dir_id, is_dir) = ledger
        .resolve_at("v", "b", "logs/2026", s)
        .unwrap()
        .unwrap();
    assert!(is_dir);
    let mut op = fso(Op::commit("v", "b", "", 5, "e"));
    op.parent_id = Some(dir_id);
    op.name = "app.log".into();
    let s2 = ledger.append(op).unwrap();
    let ev = ledger.get(s2).unwrap().unwrap();
    assert_eq!(ev.path, "logs/2026/app.log");
    let mut mv = fso(Op::rename("v", "b", "", ""));
    mv.parent_id = Some(dir_id);
    mv.name = "app.log".into();
    if let Some(fsfeed::op::Kind::Rename(r)) = &mut mv.kind {
        r.to_key.clear();
        r.to_parent_id = Some(0);
        r.to_name = "top.log".into();
    }
    let s3 = ledger.append(mv).unwrap();
    let ev = ledger.get(s3).unwrap().unwrap();
    assert_eq!(
        (ev.path.as_str(), ev.to_path.as_str()),
        ("logs/2026/app.log", "top.log")
    );
}

/// The invalid sequence from the Ozone review: renaming or deleting what
/// the ledger saw go is `path_gone`, whether the path itself went or a
/// directory above it did, and a batch holding one writes nothing. A path
/// the ledger never saw is still adopted, and so is one whose going fell
/// out of retention (its closed edges were collected with it).
#[test]
fn a_rename_or_delete_of_a_path_known_gone_is_path_gone() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::create_file("v", "b", "gone")),
            fso(Op::delete("v", "b", "gone", false)),
            fso(Op::create_file("v", "b", "moved")),
            fso(Op::rename("v", "b", "moved", "elsewhere")),
            fso(Op::create_file("v", "b", "d1/d2/f")),
            fso(Op::rename("v", "b", "d1/d2", "d1/d5")),
            fso(Op::create_file("v", "b", "r/x/f")),
            fso(Op::delete("v", "b", "r", true)),
        ])
        .unwrap();
    let snapshot = || snapshot(&ledger);
    let before = snapshot();
    let cases: Vec<(Vec<Op>, &str, u64)> = vec![
        (vec![fso(Op::delete("v", "b", "gone", false))], "gone", 2),
        (vec![fso(Op::rename("v", "b", "gone", "back"))], "gone", 2),
        (vec![fso(Op::delete("v", "b", "moved", false))], "moved", 4),
        (vec![fso(Op::rename("v", "b", "moved", "m2"))], "moved", 4),
        // Through a directory renamed away, and one deleted recursively.
        (
            vec![fso(Op::delete("v", "b", "d1/d2/f", false))],
            "d1/d2",
            6,
        ),
        (vec![fso(Op::rename("v", "b", "d1/d2/f", "g"))], "d1/d2", 6),
        (vec![fso(Op::delete("v", "b", "r/x/f", false))], "r", 8),
        (vec![fso(Op::rename("v", "b", "r/x", "x"))], "r", 8),
        // A good op first, and one the batch itself makes gone.
        (
            vec![
                fso(Op::commit("v", "b", "ok", 1, "e")),
                fso(Op::create_file("v", "b", "tmp")),
                fso(Op::delete("v", "b", "tmp", false)),
                fso(Op::delete("v", "b", "tmp", false)),
            ],
            "tmp",
            11,
        ),
    ];
    for (ops, gone, at) in cases {
        let e = ledger.append_batch(ops).unwrap_err();
        assert_eq!(e.code(), "path_gone", "{e}");
        match &e {
            fsfeed::Error::PathGone { gone: g, seq, .. } => {
                assert_eq!((g.as_str(), *seq), (gone, at), "{e}")
            }
            other => panic!("{other}"),
        }
        assert!(e.is_invalid_input());
        assert_eq!(snapshot(), before, "{gone}: the ledger changed");
    }
    // Never seen: adopted. Live again after a re-create: accepted.
    ledger
        .append(fso(Op::delete("v", "b", "never/seen", false)))
        .unwrap();
    ledger
        .append(fso(Op::rename("v", "b", "other/unseen", "other/seen")))
        .unwrap();
    ledger
        .append(fso(Op::create_file("v", "b", "gone")))
        .unwrap();
    ledger
        .append(fso(Op::delete("v", "b", "gone", false)))
        .unwrap();
    ledger
        .append(fso(Op::create_directory("v", "b", "d1/d2")))
        .unwrap();
    ledger
        .append(fso(Op::rename("v", "b", "d1/d2", "d1/d3")))
        .unwrap();
}

#[test]
fn once_retention_collected_the_going_the_path_is_adopted_again() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention::default().with_max_events(2);
    let ledger = open(dir.path(), Durability::None, Some(retention));
    ledger.append(fso(Op::create_file("v", "b", "f"))).unwrap();
    ledger
        .append(fso(Op::delete("v", "b", "f", false)))
        .unwrap();
    let e = ledger
        .append(fso(Op::delete("v", "b", "f", false)))
        .unwrap_err();
    assert_eq!(e.code(), "path_gone");
    // Two more ops push the delete (seq 2) out of the two retained.
    ledger
        .append(fso(Op::commit("v", "b", "x", 1, "e")))
        .unwrap();
    ledger
        .append(fso(Op::commit("v", "b", "y", 1, "e")))
        .unwrap();
    assert!(ledger.first_seq().unwrap() > 2);
    ledger
        .append(fso(Op::delete("v", "b", "f", false)))
        .unwrap();
}

/// The bytes a directory op's stored entries take count in the
/// retention that judges a going, whether the op was appended before the
/// request or earlier in it: here they alone push the delete of `f` (seq
/// 2) out of `max_bytes`, so a rename of `f` right after is adopted either
/// way. Counted only once stored, the batch holding both refused it.
#[test]
fn bytes_of_stored_entries_count_the_same_in_a_request() {
    let lg = |op: Op| op.with_layout(Layout::Legacy).at(T0);
    let mut ops = vec![
        fso(Op::create_file("v", "b", "f")),
        fso(Op::delete("v", "b", "f", false)),
    ];
    ops.extend((0..200).map(|i| lg(Op::commit("v", "lg", &format!("d/k{i:03}"), 1, "e"))));
    let delete = lg(Op::delete("v", "lg", "d", true).dir());
    let rename = fso(Op::rename("v", "b", "f", "g"));
    // The offsets without retention: the limit keeps seq 2 until the
    // delete's entries count, and not after.
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = open(probe_dir.path(), Durability::None, None);
    probe.append_batch(ops.clone()).unwrap();
    probe.append(delete.clone()).unwrap();
    probe
        .append(lg(Op::commit("v", "lg", "x", 1, "e")))
        .unwrap();
    let offset = |seq| probe.get(seq).unwrap().unwrap().offset;
    let max_bytes = offset(204) - offset(2) - 1;
    let retention = Retention::default().with_max_bytes(max_bytes);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(a_dir.path(), Durability::None, Some(retention));
    let b = open(b_dir.path(), Durability::None, Some(retention));
    for l in [&a, &b] {
        l.append_batch(ops.clone()).unwrap();
        assert_eq!(l.first_seq().unwrap(), 1);
    }
    a.append(delete.clone()).unwrap();
    assert!(a.first_seq().unwrap() > 2);
    a.append(rename.clone()).unwrap();
    b.append_batch(vec![delete, rename]).unwrap();
    assert_eq!(a.checksum().unwrap(), b.checksum().unwrap());
}

mod batching {
    use super::*;
    use proptest::prelude::*;

    fn op_of(kind: u8, a: u8, b: u8, i: usize) -> Op {
        let name = |n: u8| format!("d{}/f{}", n % 2, n / 2);
        let op = match kind {
            0 => Op::create_file("v", "b", &name(a)),
            1 => Op::delete("v", "b", &name(a), false),
            2 => Op::rename("v", "b", &name(a), &name(b)),
            3 => Op::rename("v", "b", &format!("d{}", a % 2), &format!("d{}", 2 + b % 2)),
            4 => Op::delete("v", "b", &format!("d{}", a % 3), true),
            // Legacy directory ops store what they took, which counts in
            // the bytes retention judges goings by.
            5 => {
                return Op::commit("v", "lg", &format!("l{}/k{b}", a % 2), 1, "e")
                    .with_layout(Layout::Legacy)
                    .at(T0 + i as i64 * 1000)
            }
            _ => {
                return Op::delete("v", "lg", &format!("l{}", a % 2), true)
                    .dir()
                    .with_layout(Layout::Legacy)
                    .at(T0 + i as i64 * 1000)
            }
        };
        op.with_layout(Layout::Fso).at(T0 + i as i64 * 1000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Whether a rename or delete is `path_gone` depends on the ops,
        /// not on how they were batched, even as retention drops the
        /// goings that would decide it: one op per append, and all the
        /// ops before a refused one in a single batch, refuse the same ops
        /// and end with the same ledger.
        #[test]
        fn path_gone_decisions_do_not_depend_on_batching(
            ops in proptest::collection::vec((0u8..7, 0u8..6, 0u8..6), 10..70),
            max_events in 3u64..12,
        ) {
            let retention = Retention::default().with_max_events(max_events).with_max_bytes(3_000);
            let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let a = open(a_dir.path(), Durability::None, Some(retention));
            let b = open(b_dir.path(), Durability::None, Some(retention));
            let ops: Vec<Op> = ops.iter().enumerate().map(|(i, (k, x, y))| op_of(*k, *x, *y, i)).collect();
            let mut batch: Vec<Op> = Vec::new();
            for op in ops {
                match b.append(op.clone()) {
                    Ok(_) => batch.push(op),
                    Err(e) if e.code() == "path_gone" => {
                        // Last in a batch of everything since the last refusal: refused there too.
                        let mut with = batch.clone();
                        with.push(op.clone());
                        let n = with.len();
                        let e = a.append_batch(with).unwrap_err();
                        prop_assert_eq!(e.code(), "path_gone");
                        let at_last = matches!(e, fsfeed::Error::PathGone { index, .. } if index == n - 1);
                        prop_assert!(at_last, "refused at another op: {}", e);
                        a.append_batch(std::mem::take(&mut batch)).unwrap();
                        // And alone, after that batch.
                        prop_assert_eq!(a.append(op).unwrap_err().code(), "path_gone");
                    }
                    // Other refusals (a rename onto a live name ...) are not under test.
                    Err(_) => {}
                }
            }
            if !batch.is_empty() {
                a.append_batch(batch).unwrap();
            }
            prop_assert_eq!(a.head_seq().unwrap(), b.head_seq().unwrap());
            prop_assert_eq!(a.first_seq().unwrap(), b.first_seq().unwrap());
            prop_assert_eq!(a.checksum().unwrap(), b.checksum().unwrap());
        }
    }
}
