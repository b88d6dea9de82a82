//! A bucket's delete closes its FSO tree (as the live index drops an
//! object-store bucket's entries): a bucket made again under the name
//! starts empty, the old paths are known gone while the delete is
//! retained, history before the delete still resolves, and the closed
//! tree is collected once the delete leaves retention.
mod common;

use common::*;
use fsfeed::{Durability, Layout, Op, Retention};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

fn paths(ledger: &fsfeed::Ledger, seq: u64) -> Vec<String> {
    ledger
        .tree_at("v", "b", seq)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

#[test]
fn a_bucket_made_again_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let (_, before) = ledger
        .append_batch(vec![
            fso(Op::bucket_create("v", "b")),
            fso(Op::create_file("v", "b", "a/x")),
            fso(Op::commit("v", "b", "a/x", 1, "e")),
            fso(Op::commit("v", "b", "top", 2, "e2")),
            fso(Op::create_directory("v", "b", "d")),
        ])
        .unwrap();
    let top = ledger
        .resolve_at("v", "b", "top", before)
        .unwrap()
        .unwrap()
        .0;
    assert!(ledger.object_state(top).unwrap().is_some());
    let deleted = ledger.append(fso(Op::bucket_delete("v", "b"))).unwrap();
    assert_eq!(
        paths(&ledger, before),
        ["a", "a/x", "d", "top"],
        "history stays"
    );
    assert!(
        paths(&ledger, deleted).is_empty(),
        "nothing after the delete"
    );
    assert_eq!(ledger.resolve_at("v", "b", "a/x", deleted).unwrap(), None);
    assert!(
        ledger.object_state(top).unwrap().is_none(),
        "the file's state went"
    );

    ledger.append(fso(Op::bucket_create("v", "b"))).unwrap();
    // The old names are free: a create without overwrite, a file where a
    // directory was, a directory where a file was.
    ledger
        .append_batch(vec![
            fso(Op::create_file("v", "b", "a/x")),
            fso(Op::create_file("v", "b", "d")),
            fso(Op::create_directory("v", "b", "top/sub")),
        ])
        .unwrap();
    let head = ledger.head_seq().unwrap();
    assert_eq!(paths(&ledger, head), ["a", "a/x", "d", "top", "top/sub"]);
    let listed: Vec<String> = resync_records(&ledger)
        .iter()
        .map(|r| r.event.path.clone())
        .collect();
    assert_eq!(
        listed,
        ["a/x", "d", "top/sub"],
        "only the new bucket's objects"
    );
}

#[test]
fn paths_that_went_with_the_bucket_are_known_gone() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::commit("v", "b", "dir/f", 1, "e")),
            fso(Op::commit("v", "b", "g", 1, "e")),
            fso(Op::bucket_delete("v", "b")),
            fso(Op::bucket_create("v", "b")),
        ])
        .unwrap();
    let head = ledger.head_seq().unwrap();
    for op in [
        Op::rename("v", "b", "g", "h"),
        Op::delete("v", "b", "dir/f", false),
        Op::delete("v", "b", "dir", true),
    ] {
        let err = ledger.append(fso(op)).unwrap_err();
        assert_eq!(err.code(), "path_gone", "{err}");
    }
    assert_eq!(
        ledger.head_seq().unwrap(),
        head,
        "refused ops wrote nothing"
    );
    // A commit re-creates a key, as an object store's later write would.
    ledger
        .append(fso(Op::commit("v", "b", "g", 3, "e3")))
        .unwrap();
}

#[test]
fn the_closed_tree_is_collected_when_the_delete_leaves_retention() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(100)),
    );
    let empty = ledger.namespace_keys().unwrap();
    let mut ops = Vec::new();
    for i in 0..300 {
        ops.push(fso(Op::commit(
            "v",
            "b",
            &format!("d{}/f{i}", i % 7),
            1,
            "e",
        )));
    }
    ops.push(fso(Op::bucket_delete("v", "b")));
    ledger.append_batch(ops).unwrap();
    assert!(ledger.namespace_keys().unwrap() > 300);
    // Past retention and a collection chunk: nothing of the old tree stays.
    for _ in 0..5000 {
        ledger
            .append(Op::commit("v", "obs", "k", 1, "e").at(T0))
            .unwrap();
    }
    let after = ledger.namespace_keys().unwrap();
    assert!(after <= empty + 1, "{empty} keys before, {after} after");
}

#[test]
fn a_volume_made_again_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let obs = |op: Op| op.with_layout(Layout::Obs).at(T0);
    let (_, before) = ledger
        .append_batch(vec![
            fso(Op::commit("v", "b", "dir/f", 1, "e")),
            fso(Op::commit("v", "b2", "g", 1, "e")),
            obs(Op::commit("v", "flat", "k", 1, "e")),
            fso(Op::commit("w", "b", "kept", 1, "e")),
            // Within the same batch as the delete: a pending tree goes too.
            fso(Op::commit("v", "b3", "new", 1, "e")),
            fso(Op::volume_delete("v")),
            fso(Op::volume_create("v")),
            fso(Op::bucket_create("v", "b")),
        ])
        .unwrap();
    assert!(paths(&ledger, before).is_empty());
    assert!(ledger.tree_at("v", "b2", before).unwrap().is_empty());
    assert!(ledger.tree_at("v", "b3", before).unwrap().is_empty());
    assert_eq!(
        ledger.tree_at("w", "b", before).unwrap()[0].path,
        "kept",
        "another volume's bucket of the same name stays"
    );
    // The old names are free, and the ones not made again are gone.
    ledger
        .append(fso(Op::create_file("v", "b", "dir/f")))
        .unwrap();
    let err = ledger
        .append(fso(Op::delete("v", "b2", "g", false)))
        .unwrap_err();
    assert_eq!(err.code(), "path_gone", "{err}");
    let mut listed: Vec<(String, String)> = resync_records(&ledger)
        .iter()
        .map(|r| {
            let op = r.event.op.as_ref().unwrap();
            (format!("{}/{}", op.volume, op.bucket), r.event.path.clone())
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("v/b".to_string(), "dir/f".to_string()),
            ("w/b".to_string(), "kept".to_string())
        ],
        "nothing of the deleted volume, the object-store bucket's entry included"
    );
}
