//! The S3 view of an FSO bucket replays: applying a cursor's expanded S3
//! records in order (`ObjectCreated:*` adds the key, `ObjectRemoved:*`
//! drops it) gives, after every op, exactly the objects a resync lists in
//! S3 form at that seq: the committed files, and the `dir/` markers of the
//! directories a `create_directory` (or a commit) made explicit, through
//! directory renames and recursive deletes at any depth, and deletes of the
//! whole bucket (made again by the ops after them). Object-store and legacy
//! buckets replay as well for the ops their records cover (see
//! `the_s3_view_of_other_layouts_replays`).
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use fsfeed::render::s3::{Profile, S3Options};
use fsfeed::{CursorOptions, Durability, ExpandOptions, Format, Layout, Ledger, Op, Start};
use proptest::prelude::*;

const PATHS: &[&str] = &["a", "b", "a/x", "a/y", "b/x", "a/x/z", "a/x/w", "c/d/e"];

fn op_of(kind: u8, p: usize, q: usize, flag: bool, i: usize) -> Op {
    op_in(Layout::Fso, kind, p, q, flag, i)
}

fn op_in(layout: Layout, kind: u8, p: usize, q: usize, flag: bool, i: usize) -> Op {
    let (p, q) = (PATHS[p % PATHS.len()], PATHS[q % PATHS.len()]);
    let op = match kind {
        0 => Op::create_directory("v", "b", p),
        1 => {
            let mut op = Op::create_file("v", "b", p);
            if let Some(fsfeed::op::Kind::CreateFile(c)) = &mut op.kind {
                c.overwrite = flag;
            }
            op
        }
        2 | 3 => Op::commit("v", "b", p, i as u64, "e"),
        4 => Op::delete("v", "b", p, flag),
        5 => Op::rename("v", "b", p, q),
        // The whole bucket, whatever it holds: made again by the next op.
        _ => Op::bucket_delete("v", "b"),
    };
    op.with_layout(layout).at(T0 + i as i64)
}

/// An op of the FSO bucket `v/b` (or another), at `T0`.
fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

/// A cursor of native records from `start`, expanding renames or not.
fn native(ledger: &Ledger, start: Start, renames: bool) -> fsfeed::Cursor {
    let expand = ExpandOptions {
        renames,
        deletes: false,
    };
    ledger
        .cursor(
            None,
            CursorOptions {
                start,
                expand,
                ..CursorOptions::default()
            },
        )
        .unwrap()
}

fn opts(start: Start) -> CursorOptions {
    CursorOptions {
        start,
        format: Format::S3(S3Options {
            profile: Profile::Ceph,
            ..S3Options::default()
        }),
        expand: ExpandOptions {
            renames: true,
            deletes: true,
        },
        ..CursorOptions::default()
    }
}

/// (eventName, object key) of every record the cursor has left.
fn drain(c: &mut fsfeed::Cursor) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let b = c.read(1000, Duration::ZERO).unwrap();
        if b.records.is_empty() {
            return out;
        }
        for r in &b.records {
            let v = c.renderer().render(r).unwrap();
            out.push((
                v["eventName"].as_str().unwrap().to_string(),
                v["s3"]["object"]["key"].as_str().unwrap().to_string(),
            ));
        }
    }
}

/// The set of `keys`, to compare with [`resync_keys`].
fn want(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn resync_keys(ledger: &Ledger) -> BTreeSet<String> {
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    c.resync().unwrap();
    drain(&mut c)
        .into_iter()
        .map(|(name, key)| {
            assert_eq!(name, "ObjectCreated:Put");
            key
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn replaying_the_expanded_s3_records_gives_what_resync_lists(
        ops in proptest::collection::vec((0u8..7, 0usize..8, 0usize..8, any::<bool>()), 1..40),
    ) {
        replays(ops.into_iter().enumerate().map(|(i, (k, p, q, flag))| op_of(k, p, q, flag, i)))?;
    }
}

/// Append `ops` one at a time (a refused one, already_exists or path_gone,
/// writes nothing); after each, the view replayed from the expanded S3
/// records (`ObjectCreated:*` adds the key, `ObjectRemoved:*` drops it)
/// must be what a resync lists.
fn replays(ops: impl Iterator<Item = Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let mut replay = ledger.cursor(None, opts(Start::Earliest)).unwrap();
    let mut view: BTreeSet<String> = BTreeSet::new();
    for (i, op) in ops.enumerate() {
        if ledger.append(op).is_err() {
            continue;
        }
        for (name, key) in drain(&mut replay) {
            if name.starts_with("ObjectCreated:") {
                view.insert(key);
            } else if name.starts_with("ObjectRemoved:") {
                view.remove(&key);
            }
        }
        prop_assert_eq!(
            &view,
            &resync_keys(&ledger),
            "after op {} (seq {})",
            i,
            ledger.head_seq().unwrap()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// The same for object-store and legacy buckets, whose view is the
    /// live index's: creates (overwrites too), commits, renames (of keys
    /// never seen: adopted at the destination; of files never committed:
    /// no records, `Event.unlisted`; of directories, with what they hold),
    /// deletes (recursive ones too) and deletes of the whole bucket: what
    /// the last three took is stored beside their events (format 9), and
    /// `create_directory` markers, kept apart from the file of their name
    /// (`dir/`, format 9).
    #[test]
    fn the_s3_view_of_other_layouts_replays(
        legacy in any::<bool>(),
        ops in proptest::collection::vec(
            (0u8..7, 0usize..8, 0usize..8, any::<bool>(), any::<bool>()),
            1..40,
        ),
    ) {
        let layout = if legacy { Layout::Legacy } else { Layout::Obs };
        replays(ops.into_iter().enumerate().map(|(i, (k, p, q, flag, dir))| {
            // Creates say `overwrite`: without it the producer says no
            // object is there, and the live index takes its word (no
            // lookup per create), where the namespace would refuse.
            let flag = k == 1 || flag;
            let op = op_in(layout, k, p, q, flag, i);
            // A rename or a delete may name a directory (a delete of one
            // alone is of its marker).
            if matches!(k, 4 | 5) && dir {
                op.dir()
            } else {
                op
            }
        }))?;
    }
}

/// The cases by name: a marker moves with its directory, an implicit
/// directory has none, a file created and never committed is no object, an
/// overwrite keeps the old object until its commit.
#[test]
fn markers_and_uncommitted_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::create_directory("v", "b", "d1/d2")),
            fso(Op::commit("v", "b", "d1/d2/f", 1, "e")),
            fso(Op::create_file("v", "b", "d1/d2/open")),
        ])
        .unwrap();
    assert_eq!(resync_keys(&ledger), want(&["d1/d2/", "d1/d2/f"]));
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    ledger
        .append(fso(Op::rename("v", "b", "d1/d2", "d1/d5")))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        vec![
            ("ObjectRemoved:Delete".to_string(), "d1/d2/".to_string()),
            ("ObjectCreated:Put".to_string(), "d1/d5/".to_string()),
            ("ObjectRemoved:Delete".to_string(), "d1/d2/f".to_string()),
            ("ObjectCreated:Put".to_string(), "d1/d5/f".to_string()),
        ]
    );
    assert_eq!(resync_keys(&ledger), want(&["d1/d5/", "d1/d5/f"]));
    ledger
        .append(fso(Op::delete("v", "b", "d1", true)))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        vec![
            ("ObjectRemoved:Delete".to_string(), "d1/d5/".to_string()),
            ("ObjectRemoved:Delete".to_string(), "d1/d5/f".to_string()),
        ]
    );
    assert_eq!(resync_keys(&ledger), want(&[]));
}

/// A bucket's delete, of a bucket the ledger knows to hold objects, expands
/// into a remove per object of its S3 view, then the delete itself (an
/// object-store bucket's, per object of its live index); an empty
/// bucket's delete into the delete alone. The name comes again, empty.
#[test]
fn a_bucket_delete_removes_what_the_bucket_held() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger
        .append_batch(vec![
            fso(Op::create_directory("v", "b", "d1/d2")),
            fso(Op::commit("v", "b", "d1/d2/f", 1, "e")),
            fso(Op::commit("v", "b", "d1/g", 1, "e")),
            fso(Op::commit("v", "b", "top", 1, "e")),
            fso(Op::create_file("v", "b", "d1/open")),
        ])
        .unwrap();
    assert_eq!(
        resync_keys(&ledger),
        want(&["d1/d2/", "d1/d2/f", "d1/g", "top"])
    );
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    // With the S3 form's extensions, the delete's own record comes last.
    let extended = |start| {
        let mut o = opts(start);
        if let Format::S3(s3) = &mut o.format {
            s3.extensions = true;
        }
        o
    };
    let mut ext = ledger.cursor(None, extended(Start::Latest)).unwrap();
    let seq = ledger.append(fso(Op::bucket_delete("v", "b"))).unwrap();
    let removes = |keys: &[&str]| {
        keys.iter()
            .map(|k| ("ObjectRemoved:Delete".to_string(), k.to_string()))
            .collect::<Vec<_>>()
    };
    // Depth first, in name order; the uncommitted file is no object, and
    // the implicit `d1` has no marker.
    assert_eq!(
        drain(&mut c),
        removes(&["d1/d2/", "d1/d2/f", "d1/g", "top"])
    );
    assert_eq!(resync_keys(&ledger), want(&[]));
    let b = ext.read(100, Duration::ZERO).unwrap();
    let names: Vec<String> = b
        .records
        .iter()
        .map(|r| {
            ext.renderer().render(r).unwrap()["eventName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("BucketRemoved:Delete")
    );
    assert_eq!(names.len(), 5);
    let last = b.records.last().unwrap();
    assert!(last.expansion.is_none());
    // Sub 3 is the uncommitted file, which has no S3 form.
    assert_eq!((last.position.seq, last.position.sub), (seq, 5));
    // A cursor that stopped inside the expansion goes on from there.
    let mut part = ledger.cursor(None, extended(Start::Seq(seq))).unwrap();
    assert_eq!(part.read(3, Duration::ZERO).unwrap().records.len(), 3);
    let rest = part.read(100, Duration::ZERO).unwrap().records;
    assert_eq!(
        rest.iter().map(|r| r.position.sub).collect::<Vec<_>>(),
        vec![4, 5]
    );
    // The bucket comes again, empty; its next delete expands into itself.
    ledger
        .append(fso(Op::commit("v", "b", "new", 1, "e")))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        vec![("ObjectCreated:Put".to_string(), "new".to_string())]
    );
    ledger.append(fso(Op::bucket_delete("v", "b"))).unwrap();
    assert_eq!(drain(&mut c), removes(&["new"]));
    let seq = ledger.append(fso(Op::bucket_delete("v", "b"))).unwrap();
    assert_eq!(drain(&mut c), vec![]);
    let own = |start| {
        let mut x = ledger.cursor(None, extended(start)).unwrap();
        x.read(100, Duration::ZERO).unwrap().records
    };
    let empty = own(Start::Seq(seq));
    assert_eq!(empty.len(), 1);
    assert!(empty[0].expansion.is_none());
    assert_eq!((empty[0].position.seq, empty[0].position.sub), (seq, 0));
    // An object-store bucket has no tree: its delete lists what the live
    // index held (stored beside the event), then itself.
    let obs = |op: Op| op.with_layout(Layout::Obs).at(T0);
    ledger
        .append_batch(vec![
            obs(Op::commit("v", "o", "k", 1, "e")),
            obs(Op::create_file("v", "o", "open")),
        ])
        .unwrap();
    let seq = ledger.append(obs(Op::bucket_delete("v", "o"))).unwrap();
    let records = own(Start::Seq(seq));
    let listed: Vec<_> = records
        .iter()
        .map(|r| r.expansion.as_ref().map(|x| (x.key.as_str(), x.listed)))
        .collect();
    // The uncommitted file has no S3 form.
    assert_eq!(listed, vec![Some(("k", true)), None]);
    let mut c = ledger.cursor(None, opts(Start::Seq(seq))).unwrap();
    assert_eq!(drain(&mut c), removes(&["k"]));
    // Emptied, its delete is itself alone.
    let seq = ledger.append(obs(Op::bucket_delete("v", "o"))).unwrap();
    let alone = own(Start::Seq(seq));
    assert_eq!(alone.len(), 1);
    assert!(alone[0].expansion.is_none());
}

/// (eventName, key) pairs, as `drain` gives them.
fn recs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect()
}

/// In an object-store bucket, the rename of a file created and never
/// committed moves no S3 object: no records, unless it replaces one that
/// was in the view, which is removed. A key never seen is adopted.
#[test]
fn object_store_renames_of_files_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let obs = |op: Op| op.with_layout(Layout::Obs).at(T0);
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    ledger
        .append_batch(vec![
            obs(Op::create_file("v", "o", "open")),
            obs(Op::commit("v", "o", "kept", 1, "e")),
        ])
        .unwrap();
    assert_eq!(drain(&mut c), recs(&[("ObjectCreated:Put", "kept")]));
    // Elsewhere: nothing to say.
    ledger
        .append(obs(Op::rename("v", "o", "open", "moved")))
        .unwrap();
    assert_eq!(drain(&mut c), vec![]);
    // Onto an object: that object is gone.
    ledger
        .append(obs(Op::rename("v", "o", "moved", "kept")))
        .unwrap();
    assert_eq!(drain(&mut c), recs(&[("ObjectRemoved:Delete", "kept")]));
    assert_eq!(resync_keys(&ledger), want(&[]));
    // Committed where it went, it is an object again.
    ledger
        .append(obs(Op::commit("v", "o", "kept", 2, "f")))
        .unwrap();
    assert_eq!(drain(&mut c), recs(&[("ObjectCreated:Put", "kept")]));
    // A key the ledger never saw, renamed: adopted where it went.
    ledger
        .append(obs(Op::rename("v", "o", "unseen", "seen")))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[
            ("ObjectRemoved:Delete", "unseen"),
            ("ObjectCreated:Put", "seen")
        ])
    );
    assert_eq!(resync_keys(&ledger), want(&["kept", "seen"]));
    // The native records say which renames moved no S3 object.
    let mut n = native(&ledger, Start::Earliest, false);
    let b = n.read(100, Duration::ZERO).unwrap();
    let flags: Vec<(String, Option<bool>, Option<bool>)> = b
        .records
        .iter()
        .map(|r| n.renderer().render(r).unwrap())
        .filter(|v| v["kind"] == "rename")
        .map(|v| {
            (
                v["to_path"].as_str().unwrap().to_string(),
                v.get("unlisted").and_then(|x| x.as_bool()),
                v.get("replaced").and_then(|x| x.as_bool()),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            ("moved".to_string(), Some(true), None),
            ("kept".to_string(), Some(true), Some(true)),
            ("seen".to_string(), None, None),
        ]
    );
}

/// In a legacy bucket, a directory's rename moves what the live index held
/// below it: a remove/create pair per object. A file never committed moves
/// without S3 records, and one that lands on an object removes it. A
/// recursive delete removes each object below, and the key itself when it
/// is an object (here in an object-store bucket). A directory renamed into
/// itself is refused, and its batch writes nothing.
#[test]
fn directories_of_other_layouts_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let lg = |op: Op| op.with_layout(Layout::Legacy).at(T0);
    ledger
        .append_batch(vec![
            lg(Op::commit("v", "g", "d/a", 1, "e")),
            lg(Op::commit("v", "g", "d/e/b", 1, "e")),
            lg(Op::create_file("v", "g", "d/open")),
            lg(Op::commit("v", "g", "n/open", 1, "e")),
        ])
        .unwrap();
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    ledger
        .append(lg(Op::rename("v", "g", "d", "n").dir()))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[
            ("ObjectRemoved:Delete", "d/a"),
            ("ObjectCreated:Put", "n/a"),
            ("ObjectRemoved:Delete", "d/e/b"),
            ("ObjectCreated:Put", "n/e/b"),
            ("ObjectRemoved:Delete", "n/open"),
        ])
    );
    assert_eq!(resync_keys(&ledger), want(&["n/a", "n/e/b"]));
    let head = ledger.head_seq().unwrap();
    let err = ledger
        .append_batch(vec![
            lg(Op::commit("v", "g", "x", 1, "e")),
            lg(Op::rename("v", "g", "n", "n/e").dir()),
        ])
        .unwrap_err();
    assert_eq!(err.code(), "rename_into_subtree");
    assert_eq!(ledger.head_seq().unwrap(), head);
    ledger
        .append(lg(Op::delete("v", "g", "n", true).dir()))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[
            ("ObjectRemoved:Delete", "n/a"),
            ("ObjectRemoved:Delete", "n/e/b"),
        ])
    );
    assert_eq!(resync_keys(&ledger), want(&[]));
    let obs = |op: Op| op.with_layout(Layout::Obs).at(T0);
    ledger
        .append_batch(vec![
            obs(Op::commit("v", "o", "k", 1, "e")),
            obs(Op::commit("v", "o", "k/x", 1, "e")),
            obs(Op::commit("v", "o", "kk", 1, "e")),
        ])
        .unwrap();
    drain(&mut c);
    ledger.append(obs(Op::delete("v", "o", "k", true))).unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[
            ("ObjectRemoved:Delete", "k"),
            ("ObjectRemoved:Delete", "k/x"),
        ])
    );
    assert_eq!(resync_keys(&ledger), want(&["kk"]));
    // The native form keeps the file never committed: it moved.
    let mut n = native(&ledger, Start::Seq(5), true);
    let b = n.read(5, Duration::ZERO).unwrap();
    let keys: Vec<(String, bool)> = b
        .records
        .iter()
        .map(|r| {
            let x = r.expansion.as_ref().unwrap();
            (x.key.clone(), x.listed)
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("d/a".to_string(), true),
            ("n/a".to_string(), true),
            ("d/e/b".to_string(), true),
            ("n/e/b".to_string(), true),
            ("d/open".to_string(), false),
        ]
    );
    // Unexpanded, the native records say how many entries each directory
    // op took: the rename and the delete three each (the never committed
    // file included; no marker of `d` or `n`), the object-store delete
    // `k` and `k/x`. Other records have no `below`.
    let mut n = native(&ledger, Start::Seq(5), false);
    let b = n.read(100, Duration::ZERO).unwrap();
    let below: Vec<(u64, u64)> = b
        .records
        .iter()
        .map(|r| n.renderer().render(r).unwrap())
        .filter_map(|v| Some((v["seq"].as_u64()?, v.get("below")?.as_u64()?)))
        .collect();
    assert_eq!(below, vec![(5, 3), (6, 3), (10, 2)]);
}

/// In an object-store or legacy bucket a directory's marker is the `dir/`
/// object, apart from the file of the same name (format 9): each is
/// created, listed and deleted on its own.
#[test]
fn a_marker_and_the_file_of_its_name_are_two_objects() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let obs = |op: Op| op.with_layout(Layout::Obs).at(T0);
    let mut c = ledger.cursor(None, opts(Start::Latest)).unwrap();
    ledger
        .append_batch(vec![
            obs(Op::commit("v", "o", "a", 1, "e")),
            obs(Op::create_directory("v", "o", "a")),
        ])
        .unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[("ObjectCreated:Put", "a"), ("ObjectCreated:Put", "a/")])
    );
    assert_eq!(resync_keys(&ledger), want(&["a", "a/"]));
    ledger
        .append(obs(Op::delete("v", "o", "a", false)))
        .unwrap();
    assert_eq!(drain(&mut c), recs(&[("ObjectRemoved:Delete", "a")]));
    assert_eq!(resync_keys(&ledger), want(&["a/"]));
    ledger
        .append(obs(Op::delete("v", "o", "a", false).dir()))
        .unwrap();
    assert_eq!(drain(&mut c), recs(&[("ObjectRemoved:Delete", "a/")]));
    assert_eq!(resync_keys(&ledger), want(&[]));
    // A directory named with its trailing `/` is the same directory.
    ledger
        .append_batch(vec![
            obs(Op::create_directory("v", "o", "d")),
            obs(Op::commit("v", "o", "d/f", 1, "e")),
        ])
        .unwrap();
    drain(&mut c);
    ledger
        .append(obs(Op::rename("v", "o", "d/", "n/").dir()))
        .unwrap();
    assert_eq!(
        drain(&mut c),
        recs(&[
            ("ObjectRemoved:Delete", "d/"),
            ("ObjectCreated:Put", "n/"),
            ("ObjectRemoved:Delete", "d/f"),
            ("ObjectCreated:Put", "n/f"),
        ])
    );
    assert_eq!(resync_keys(&ledger), want(&["n/", "n/f"]));
}
