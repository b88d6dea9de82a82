//! A format 2 ledger (closed forward edges kept under `F`, beside the open
//! ones) is upgraded in place by the first read-write open: the namespace
//! answers the same at every seq, and the format on disk says 3. A read-only
//! opener refuses it until then and changes nothing.
mod common;

use common::*;
use fsfeed::{Durability, Layout, Ledger, Op, OpenOptions};

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

/// Every namespace answer the tests compare, at every seq.
fn answers(l: &Ledger, dirs: &[&str], objects: &[u64]) -> Vec<String> {
    let head = l.head_seq().unwrap();
    let mut out = Vec::new();
    for seq in 0..=head {
        let root: Vec<String> = l
            .children_at("v", "b", 0, seq)
            .unwrap()
            .map(|c| c.unwrap().name)
            .collect();
        out.push(format!("{seq} / {root:?}"));
        for d in dirs {
            let Some((id, _)) = l.resolve_at("v", "b", d, seq).unwrap() else {
                out.push(format!("{seq} {d} absent"));
                continue;
            };
            let names: Vec<String> = l
                .children_at("v", "b", id, seq)
                .unwrap()
                .map(|c| c.unwrap().name)
                .collect();
            out.push(format!("{seq} {d} {names:?}"));
        }
        for o in objects {
            out.push(format!(
                "{seq} {o} {:?}",
                l.path_at(*o, seq).unwrap().map(|p| p.key)
            ));
        }
    }
    out
}

fn keys_tagged(db: &rocksdb::DB, tag: u8) -> usize {
    db.iterator_cf(db.cf_handle("ns").unwrap(), rocksdb::IteratorMode::Start)
        .filter(|kv| kv.as_ref().unwrap().0.first() == Some(&tag))
        .count()
}

/// A ledger with closed edges (two renames, a delete); its answers, the
/// objects they name, and the number of closed edges.
fn written(dir: &std::path::Path) -> (Vec<String>, Vec<u64>, usize) {
    let l = open(dir, Durability::None, None);
    l.append_batch(vec![
        fso(Op::commit("v", "b", "a/x", 1, "e")),
        fso(Op::commit("v", "b", "a/y", 1, "e")),
        fso(Op::commit("v", "b", "c", 1, "e")),
    ])
    .unwrap();
    l.append(fso(Op::rename("v", "b", "a", "d"))).unwrap();
    l.append(fso(Op::delete("v", "b", "d/x", false))).unwrap();
    l.append(fso(Op::rename("v", "b", "c", "d/c"))).unwrap();
    let objects: Vec<u64> = ["d/y", "d/c", "d"]
        .iter()
        .map(|k| l.resolve_at("v", "b", k, 6).unwrap().unwrap().0)
        .collect();
    let before = answers(&l, &["a", "d"], &objects);
    l.close().unwrap();
    let closed = keys_tagged(&raw_db(dir), b'G');
    assert_eq!(closed, 3, "two renames and a delete close three edges");
    (before, objects, closed)
}

/// Back to format 2: the first `n` closed forward edges under `F` again (all
/// of them: a format 2 ledger; fewer: one whose upgrade was cut short).
fn downgrade(dir: &std::path::Path, n: usize) {
    let db = raw_db(dir);
    let ns = db.cf_handle("ns").unwrap();
    let closed: Vec<_> = db
        .iterator_cf(ns, rocksdb::IteratorMode::Start)
        .map(|kv| kv.unwrap())
        .filter(|(k, _)| k[0] == b'G')
        .take(n)
        .collect();
    for (k, v) in &closed {
        let mut f = k.to_vec();
        f[0] = b'F';
        db.put_cf(ns, &f, v).unwrap();
        db.delete_cf(ns, k).unwrap();
    }
    let meta = db.cf_handle("meta").unwrap();
    db.put_cf(meta, b"format_version", 2u32.to_be_bytes())
        .unwrap();
}

/// Opened read-write: the same answers, every closed edge under `G`, and
/// the current format on disk.
fn check_upgraded(dir: &std::path::Path, before: &[String], objects: &[u64], closed: usize) {
    let l = open(dir, Durability::None, None);
    assert_eq!(answers(&l, &["a", "d"], objects), before);
    // `d` holds `y` and `c`; its history also holds the closed `x`.
    let e = l.append(fso(Op::delete("v", "b", "d", false))).unwrap_err();
    assert_eq!(e.code(), "directory_not_empty");
    l.close().unwrap();
    let db = raw_db(dir);
    assert_eq!(keys_tagged(&db, b'G'), closed);
    let meta = db.cf_handle("meta").unwrap();
    assert_eq!(
        db.get_cf(meta, b"format_version").unwrap().unwrap(),
        fsfeed::FORMAT_VERSION.to_be_bytes()
    );
    assert_eq!(fsfeed::FORMAT_VERSION, 9);
    // Format 5's segment setting: stored, on.
    assert_eq!(
        db.get_cf(meta, b"segments").unwrap().unwrap()[0],
        1,
        "sealing on"
    );
}

#[test]
fn a_format_2_ledger_is_upgraded_by_a_writable_open() {
    let dir = tempfile::tempdir().unwrap();
    let (before, objects, closed) = written(dir.path());
    downgrade(dir.path(), closed);
    let e = Ledger::open_with(
        dir.path(),
        OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "unsupported_format");
    assert_eq!(
        keys_tagged(&raw_db(dir.path()), b'G'),
        0,
        "a reader changed nothing"
    );
    check_upgraded(dir.path(), &before, &objects, closed);
}

#[test]
fn an_upgrade_cut_short_finishes_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let (before, objects, closed) = written(dir.path());
    // Some edges already moved, the version still 2: a crash midway.
    downgrade(dir.path(), 1);
    assert_eq!(keys_tagged(&raw_db(dir.path()), b'G'), closed - 1);
    check_upgraded(dir.path(), &before, &objects, closed);
}
