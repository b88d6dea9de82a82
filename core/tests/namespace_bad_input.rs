//! Namespace rejections are typed and write nothing: unknown parent id, a
//! directory renamed into its own subtree, a create over an existing path
//! without overwrite, a non-recursive delete of a non-empty directory.
mod common;

use common::*;
use fsfeed::{Durability, Layout, Op};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
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
    let snapshot = || {
        (
            ledger.checksum().unwrap(),
            ledger.head_seq().unwrap(),
            ledger.namespace_keys().unwrap(),
        )
    };
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
