//! The example from the Ozone schema discussion: renaming `myfiles` is one
//! stored event, and the expanded read gives exactly three removes and three
//! creates with the right paths, each at the rename's seq.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{Action, CursorOptions, Durability, ExpandOptions, Layout, Op, Position, Start};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso)
}

#[test]
fn renaming_myfiles_expands_into_three_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let t = T0;
    // As in the example, the directories exist only as the files' parents
    // (an explicit `create_directory` would add its `dir/` marker's pair).
    ledger
        .append_batch(vec![
            fso(Op::commit("vol1", "bucket1", "myfiles/f1", 1, "e1")).at(t + 1),
            fso(Op::commit("vol1", "bucket1", "myfiles/f2", 2, "e2")).at(t + 2),
            fso(Op::commit("vol1", "bucket1", "myfiles/subdir/f1", 3, "e3")).at(t + 3),
        ])
        .unwrap();
    let before = ledger.head_seq().unwrap();
    let seq = ledger
        .append(fso(Op::rename("vol1", "bucket1", "myfiles", "myfiles-RENAMED")).at(t + 4))
        .unwrap();
    assert_eq!(seq, before + 1, "one stored event");
    let ev = ledger.get(seq).unwrap().unwrap();
    assert!(
        ev.op.as_ref().unwrap().is_dir,
        "the ledger knows it renamed a directory"
    );

    let opts = CursorOptions {
        start: Start::Seq(seq),
        expand: ExpandOptions {
            renames: true,
            deletes: false,
        },
        ..Default::default()
    };
    let mut c = ledger.cursor(None, opts).unwrap();
    let b = c.read(100, Duration::ZERO).unwrap();
    let got: Vec<(Position, Action, String)> = b
        .records
        .iter()
        .map(|r| {
            let x = r.expansion.as_ref().unwrap();
            (r.position, x.action, x.key.clone())
        })
        .collect();
    let want = vec![
        (
            Position::new(seq, 0),
            Action::Remove,
            "myfiles/f1".to_string(),
        ),
        (
            Position::new(seq, 1),
            Action::Create,
            "myfiles-RENAMED/f1".to_string(),
        ),
        (
            Position::new(seq, 2),
            Action::Remove,
            "myfiles/f2".to_string(),
        ),
        (
            Position::new(seq, 3),
            Action::Create,
            "myfiles-RENAMED/f2".to_string(),
        ),
        (
            Position::new(seq, 4),
            Action::Remove,
            "myfiles/subdir/f1".to_string(),
        ),
        (
            Position::new(seq, 5),
            Action::Create,
            "myfiles-RENAMED/subdir/f1".to_string(),
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(b.next, Position::new(seq + 1, 0));

    // The S3 rendering of the expanded records: deletes then puts, keys as of the rename.
    let s3 = fsfeed::render::Format::S3(Default::default()).renderer();
    let names: Vec<String> = b
        .records
        .iter()
        .map(|r| {
            let v = s3.render(r).unwrap();
            format!(
                "{} {}",
                v["eventName"].as_str().unwrap(),
                v["s3"]["object"]["key"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names[0], "ObjectRemoved:Delete myfiles/f1");
    assert_eq!(names[5], "ObjectCreated:Put myfiles-RENAMED/subdir/f1");

    // Later changes under the new name do not change the expansion of that seq.
    ledger
        .append(fso(Op::commit("vol1", "bucket1", "myfiles-RENAMED/f3", 4, "e4")).at(t + 5))
        .unwrap();
    ledger
        .append(fso(Op::delete("vol1", "bucket1", "myfiles-RENAMED/f1", false)).at(t + 6))
        .unwrap();
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Seq(seq),
                expand: ExpandOptions {
                    renames: true,
                    deletes: false,
                },
                ..Default::default()
            },
        )
        .unwrap();
    let again = c.read(6, Duration::ZERO).unwrap();
    assert_eq!(again.records.len(), 6);
    assert_eq!(
        again.records[5].expansion.as_ref().unwrap().key,
        "myfiles-RENAMED/subdir/f1"
    );
}

#[test]
fn a_cursor_commits_and_resumes_inside_an_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let mut ops = vec![fso(Op::create_directory("v", "b", "d")).at(T0)];
    for i in 0..50 {
        ops.push(fso(Op::commit("v", "b", &format!("d/f{i:03}"), 1, "e")).at(T0 + 1));
    }
    ops.push(fso(Op::rename("v", "b", "d", "e")).at(T0 + 2));
    ops.push(fso(Op::delete("v", "b", "e", true)).at(T0 + 3));
    ledger.append_batch(ops).unwrap();
    let opts = || CursorOptions {
        expand: ExpandOptions {
            renames: true,
            deletes: true,
        },
        ..Default::default()
    };
    let mut all = Vec::new();
    let mut c = ledger.cursor(Some("svc"), opts()).unwrap();
    loop {
        let b = c.read(7, Duration::ZERO).unwrap();
        if b.records.is_empty() {
            break;
        }
        all.extend(b.records.iter().map(|r| (r.position, r.expansion.clone())));
        c.commit(b.next).unwrap();
        // A new cursor object each time: resumes from the committed (seq, sub).
        c = ledger.cursor(Some("svc"), opts()).unwrap();
    }
    // 51 plain events + 102 rename records (the explicit directory's marker,
    // then 50 files) + 51 delete records.
    assert_eq!(all.len(), 1 + 50 + 102 + 51);
    let mut positions: Vec<Position> = all.iter().map(|(p, _)| *p).collect();
    let sorted = positions.clone();
    positions.dedup();
    assert_eq!(positions, sorted, "no record twice");
    let deletes: Vec<_> = all
        .iter()
        .filter_map(|(_, x)| x.as_ref())
        .filter(|x| x.key.starts_with("e/") && x.action == Action::Remove)
        .collect();
    assert_eq!(deletes.len(), 50);
}
