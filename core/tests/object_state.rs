//! The state of FSO files (`O` keys, `namespace::live`): what each op does
//! to it, through `Ledger::tree_at` and `Ledger::object_state`.

mod common;

use fsfeed::namespace::ObjectState;
use fsfeed::op::{Commit, Kind};
use fsfeed::{Durability, Layout, Ledger, Op, Retention};

const T: i64 = 1_767_225_600_000_000;

fn fso(op: Op, i: i64) -> Op {
    op.with_layout(Layout::Fso).at(T + i)
}

fn commit(key: &str, size: u64, mtime: i64, i: i64) -> Op {
    let mut op = Op::commit("v", "b", key, size, &format!("e{size}"));
    if let Some(Kind::Commit(c)) = op.kind.as_mut() {
        c.mtime = Some(mtime);
    }
    fso(op, i)
}

fn state(l: &Ledger, key: &str) -> Option<ObjectState> {
    let head = l.head_seq().unwrap();
    l.tree_at("v", "b", head)
        .unwrap()
        .into_iter()
        .find(|e| e.path == key)
        .map(|e| e.state)
}

#[test]
fn each_op_does_what_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), Durability::Buffered, None);
    l.append_batch(vec![
        fso(Op::create_directory("v", "b", "d"), 0),
        fso(Op::create_file("v", "b", "d/f"), 1),
    ])
    .unwrap();
    assert_eq!(
        state(&l, "d/f"),
        Some(ObjectState::default()),
        "created, nothing known"
    );
    l.append(commit("d/f", 10, 1_000, 2)).unwrap();
    let s = state(&l, "d/f").unwrap();
    assert_eq!(
        s,
        ObjectState {
            size: Some(10),
            etag: Some("e10".into()),
            version_id: None,
            mtime_ms: Some(1_000)
        }
    );
    // A directory rename keeps it: the state follows the object.
    l.append(fso(Op::rename("v", "b", "d", "d2").dir(), 3))
        .unwrap();
    assert_eq!(state(&l, "d2/f").unwrap().size, Some(10));
    // set_times moves the mtime only.
    l.append(fso(Op::set_times("v", "b", "d2/f", Some(2_000), None), 4))
        .unwrap();
    let s = state(&l, "d2/f").unwrap();
    assert_eq!((s.size, s.mtime_ms), (Some(10), Some(2_000)));
    // truncate: new size, eTag and mtime unknown.
    l.append(fso(Op::truncate("v", "b", "d2/f", 3), 5)).unwrap();
    assert_eq!(
        state(&l, "d2/f").unwrap(),
        ObjectState {
            size: Some(3),
            ..Default::default()
        }
    );
    // append: nothing known.
    l.append(fso(Op::append("v", "b", "d2/f", false), 6))
        .unwrap();
    assert_eq!(state(&l, "d2/f").unwrap(), ObjectState::default());
    // An overwrite keeps the replaced file's state until its commit.
    l.append(commit("d2/f", 4, 3_000, 7)).unwrap();
    let mut over = Op::create_file("v", "b", "d2/f");
    if let Some(Kind::CreateFile(c)) = over.kind.as_mut() {
        c.overwrite = true;
    }
    let before = l.tree_at("v", "b", l.head_seq().unwrap()).unwrap();
    l.append(fso(over, 8)).unwrap();
    let after = l.tree_at("v", "b", l.head_seq().unwrap()).unwrap();
    let (old, new) = (&before[1], &after[1]);
    assert_ne!(old.object_id, new.object_id, "a new object");
    assert_eq!(new.state.size, Some(4));
    assert_eq!(
        l.object_state(old.object_id).unwrap(),
        None,
        "moved, not copied"
    );
    // A delete forgets it.
    let id = new.object_id;
    l.append(fso(Op::delete("v", "b", "d2/f", false), 9))
        .unwrap();
    assert_eq!(l.object_state(id).unwrap(), None);
    assert_eq!(state(&l, "d2/f"), None);
    // Directories have none; a tree at an old seq still lists then.
    assert_eq!(l.tree_at("v", "b", 2).unwrap().len(), 2);
    assert!(l.tree_at("v", "b", 99).is_err());
    assert!(l
        .tree_at("v", "other", l.head_seq().unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn a_recursive_delete_drops_the_states_below_when_it_leaves_retention() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(
        dir.path(),
        Durability::Buffered,
        Some(Retention::unlimited().with_max_events(100)),
    );
    l.append_batch(vec![
        fso(Op::create_directory("v", "b", "d"), 0),
        commit("d/a", 1, 1, 1),
        commit("d/sub/b", 2, 2, 2),
    ])
    .unwrap();
    let ids: Vec<u64> = l
        .tree_at("v", "b", 3)
        .unwrap()
        .iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.object_id)
        .collect();
    assert_eq!(ids.len(), 2);
    l.append(fso(Op::delete("v", "b", "d", true).dir(), 3))
        .unwrap();
    // Unreachable, kept until the delete leaves retention.
    assert!(l.object_state(ids[0]).unwrap().is_some());
    // Garbage collection runs once a chunk of seqs (4096) has left retention.
    l.append_batch((0..5_000).map(|i| commit("x", 1, 1, 10 + i)).collect())
        .unwrap();
    for id in ids {
        assert_eq!(
            l.object_state(id).unwrap(),
            None,
            "collected with the directory"
        );
    }
}

#[test]
fn a_commit_mtime_and_a_source_are_in_the_op_json() {
    let op = Op::from_json(
        r#"{"kind":"commit","bucket":"b","key":"k","time_us":5,"size":3,"mtime":1234,"source":"inotify"}"#,
        0,
    )
    .unwrap();
    assert!(matches!(
        &op.kind,
        Some(Kind::Commit(Commit {
            mtime: Some(1234),
            ..
        }))
    ));
    assert_eq!(op.source, "inotify");
    let back = op.to_json_value();
    assert_eq!(back["mtime"], 1234);
    assert_eq!(back["source"], "inotify");
    // `mtime` belongs to commits and set_times only; a source has a limit.
    assert!(Op::from_json(
        r#"{"kind":"delete","bucket":"b","key":"k","time_us":5,"mtime":1}"#,
        0
    )
    .is_err());
    let long = "x".repeat(65);
    let e = Op::from_json(
        &format!(r#"{{"kind":"delete","bucket":"b","key":"k","time_us":5,"source":"{long}"}}"#),
        0,
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_op");
}

/// Events of FSO ops that name no size or eTag (ACLs, times, attributes,
/// a file's rename) carry the file's state, as object-store events carry
/// the live index's; a directory's rename and a file never committed carry
/// nothing.
#[test]
fn fso_events_of_ops_without_a_size_carry_the_files_state() {
    let dir = tempfile::tempdir().unwrap();
    let l = common::open(dir.path(), Durability::Buffered, None);
    let attr = Op::set_attr(
        "v",
        "b",
        "d/f",
        fsfeed::op::SetAttr {
            perms: Some(0o600),
            ..Default::default()
        },
    );
    let (first, _) = l
        .append_batch(vec![
            fso(Op::create_directory("v", "b", "d"), 0),
            fso(Op::create_file("v", "b", "d/f"), 1),
            fso(Op::create_file("v", "b", "d/g"), 2),
            commit("d/f", 10, 1_000, 3),
            fso(Op::acl_set("v", "b", "d/f", vec![]), 4),
            fso(Op::set_times("v", "b", "d/f", Some(2_000), None), 5),
            fso(attr, 6),
            fso(Op::rename("v", "b", "d/f", "d/h"), 7),
            fso(Op::rename("v", "b", "d", "e").dir(), 8),
            fso(Op::set_times("v", "b", "e/g", Some(3_000), None), 9),
        ])
        .unwrap();
    let carried = |seq: u64| {
        let e = l.get(seq).unwrap().unwrap();
        (e.size, e.etag)
    };
    for (i, what) in [(4, "acl"), (5, "set_times"), (6, "set_attr"), (7, "rename")] {
        assert_eq!(
            carried(first + i),
            (Some(10), "e10".to_string()),
            "{what} carries the state"
        );
    }
    assert_eq!(
        carried(first + 8),
        (None, String::new()),
        "a directory's rename"
    );
    assert_eq!(carried(first + 9), (None, String::new()), "never committed");
    let v = fsfeed::render::native::to_json(&l.get(first + 4).unwrap().unwrap(), 0);
    assert_eq!(
        (v["object_size"].as_u64(), v["object_etag"].as_str()),
        (Some(10), Some("e10"))
    );
}
