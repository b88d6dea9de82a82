//! The live index of object-store and legacy buckets
//! (`namespace::live`): events of ops that name no size or eTag carry the
//! object's last known ones, and a resync lists these buckets' objects
//! (with size, eTag and version) beside the FSO trees, so a resync after a
//! gap is never an empty success for them.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fsfeed::op::{Acl, Kind};
use fsfeed::render::s3::{Profile, S3Options};
use fsfeed::{CursorOptions, Durability, Format, Layout, Ledger, OnGap, Op, Retention, Start};
use serde_json::Value;

fn obs(op: Op) -> Op {
    op.with_layout(Layout::Obs).at(T0)
}

fn acl(key: &str) -> Op {
    obs(Op::acl_set(
        "v",
        "b",
        key,
        vec![Acl::new("user", "u", &["read"])],
    ))
}

fn s3() -> Format {
    Format::S3(S3Options {
        profile: Profile::Aws,
        ..S3Options::default()
    })
}

fn s3_ext() -> Format {
    Format::S3(S3Options {
        profile: Profile::Aws,
        extensions: true,
        ..S3Options::default()
    })
}

/// The S3 record of event `seq` (extensions on).
fn s3_of(l: &Ledger, seq: u64) -> Value {
    let mut c = l
        .cursor(
            None,
            CursorOptions {
                start: Start::Seq(seq),
                format: s3_ext(),
                ..Default::default()
            },
        )
        .unwrap();
    let b = c.read(1, Duration::ZERO).unwrap();
    assert_eq!(b.records[0].event.seq, seq);
    c.renderer().render(&b.records[0]).unwrap()
}

fn object(v: &Value) -> (Option<u64>, Option<String>) {
    let o = &v["s3"]["object"];
    (o["size"].as_u64(), o["eTag"].as_str().map(str::to_string))
}

/// (size, eTag, versionId) of an S3 record's object.
type State = (Option<u64>, Option<String>, Option<String>);

/// key -> state of every S3 record a resync lists.
fn resync(l: &Ledger) -> BTreeMap<String, State> {
    let mut c = l
        .cursor(
            None,
            CursorOptions {
                start: Start::Latest,
                format: s3(),
                ..Default::default()
            },
        )
        .unwrap();
    c.resync().unwrap();
    let mut out = BTreeMap::new();
    loop {
        let b = c.read(100, Duration::ZERO).unwrap();
        if b.records.is_empty() {
            return out;
        }
        for r in &b.records {
            assert!(r.resync);
            let v = c.renderer().render(r).unwrap();
            let o = &v["s3"]["object"];
            out.insert(
                o["key"].as_str().unwrap().to_string(),
                (
                    o["size"].as_u64(),
                    o["eTag"].as_str().map(str::to_string),
                    o["versionId"].as_str().map(str::to_string),
                ),
            );
        }
    }
}

#[test]
fn ops_without_size_carry_the_last_known_state() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    let (_, last) = l
        .append_batch(vec![
            obs(Op::commit("v", "b", "a/x", 5, "e1")),
            acl("a/x"),
            obs(Op::truncate("v", "b", "a/x", 2)),
            acl("a/x"),
            obs(Op::append("v", "b", "a/x", false)),
            acl("a/x"),
            acl("never-seen"),
            obs(Op::commit("v", "b", "a/x", 9, "e9")),
            obs(Op::delete("v", "b", "a/x", false)),
            acl("a/x"),
        ])
        .unwrap();
    assert_eq!(last, 10);
    assert_eq!(object(&s3_of(&l, 2)), (Some(5), Some("e1".into())));
    assert_eq!(
        object(&s3_of(&l, 4)),
        (Some(2), None),
        "a truncate forgets the eTag"
    );
    assert_eq!(
        object(&s3_of(&l, 6)),
        (None, None),
        "an append forgets both"
    );
    assert_eq!(object(&s3_of(&l, 7)), (None, None), "nothing is made up");
    assert_eq!(
        object(&s3_of(&l, 10)),
        (None, None),
        "deleted, then adopted"
    );
    // Without extensions the aws profile sends the ACL event AWS sends
    // (with size and eTag) and nothing it could not fill.
    let mut c = l
        .cursor(
            None,
            CursorOptions {
                start: Start::Earliest,
                format: s3(),
                ..Default::default()
            },
        )
        .unwrap();
    let names: Vec<(u64, String)> = c
        .read(100, Duration::ZERO)
        .unwrap()
        .records
        .iter()
        .map(|r| {
            (
                r.event.seq,
                c.renderer().render(r).unwrap()["eventName"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let want = [
        (1, "ObjectCreated:Put"),
        (2, "ObjectAcl:Put"),
        (8, "ObjectCreated:Put"),
        (9, "ObjectRemoved:Delete"),
    ];
    assert_eq!(names, want.map(|(s, n)| (s, n.to_string())));
    // Native records say the same, under names of their own.
    let e = l.get(2).unwrap().unwrap();
    let v = fsfeed::render::native::to_json(&e, 0);
    assert_eq!(
        (v["object_size"].as_u64(), v["object_etag"].as_str()),
        (Some(5), Some("e1"))
    );
    assert!(
        fsfeed::render::native::to_json(&l.get(7).unwrap().unwrap(), 0)
            .get("object_size")
            .is_none()
    );
}

#[test]
fn a_resync_lists_object_store_and_legacy_buckets_with_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    let mut versioned = Op::commit("v", "b", "k/v", 3, "e3");
    if let Some(Kind::Commit(c)) = &mut versioned.kind {
        c.version_id = "v1".into();
    }
    let legacy = |op: Op| op.with_layout(Layout::Legacy).at(T0);
    l.append_batch(vec![
        obs(Op::commit("v", "b", "a/x", 5, "e1")),
        obs(Op::commit("v", "b", "a/y", 6, "e2")),
        obs(Op::commit("v", "b", "gone", 1, "e")),
        obs(Op::delete("v", "b", "gone", false)),
        obs(versioned),
        obs(Op::create_file("v", "b", "pending")),
        obs(Op::create_directory("v", "b", "d")),
        obs(Op::commit("v", "b", "t", 8, "e8")),
        obs(Op::truncate("v", "b", "t", 4)),
        legacy(Op::commit("v", "lg", "p/q", 7, "e7")),
        legacy(Op::commit("v", "lg", "p/r", 1, "e1")),
        legacy(Op::rename("v", "lg", "p", "s").dir()),
        legacy(Op::commit("v", "lg", "z", 2, "e2")),
        legacy(Op::rename("v", "lg", "z", "w")),
        // A key never seen, renamed: adopted where it went, nothing known.
        obs(Op::rename("v", "b", "unseen", "seen")),
        Op::commit("v", "f", "fso/file", 4, "e4")
            .with_layout(Layout::Fso)
            .at(T0),
    ])
    .unwrap();
    let got = resync(&l);
    let s = |x: &str| Some(x.to_string());
    let want: BTreeMap<_, _> = [
        ("a/x", (Some(5), s("e1"), None)),
        ("a/y", (Some(6), s("e2"), None)),
        ("k/v", (Some(3), s("e3"), s("v1"))),
        ("d/", (Some(0), s("d41d8cd98f00b204e9800998ecf8427e"), None)),
        ("t", (Some(4), None, None)),
        ("s/q", (Some(7), s("e7"), None)),
        ("s/r", (Some(1), s("e1"), None)),
        ("w", (Some(2), s("e2"), None)),
        ("seen", (None, None, None)),
        // FSO: the namespace lists it, with its state (`O` keys).
        ("fso/file", (Some(4), s("e4"), None)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    // A recursive delete takes everything below the key.
    l.append(obs(Op::delete("v", "b", "a", true))).unwrap();
    let got = resync(&l);
    assert!(
        !got.contains_key("a/x") && !got.contains_key("a/y"),
        "{got:?}"
    );
    assert!(got.contains_key("k/v"));
}

#[test]
fn a_gap_resyncs_object_store_buckets_too() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: Some(2),
        ..Default::default()
    };
    let l = open(dir.path(), Durability::None, Some(retention));
    // More objects than one chunk of the listing (256).
    let ops: Vec<Op> = (0..600)
        .map(|i| obs(Op::commit("v", "b", &format!("o{i:04}"), i, "e")))
        .collect();
    l.append_batch(ops).unwrap();
    let mut c = l
        .cursor(
            Some("late"),
            CursorOptions {
                start: Start::Seq(1),
                on_gap: OnGap::Resync,
                format: s3(),
                ..Default::default()
            },
        )
        .unwrap();
    let mut keys = Vec::new();
    let mut gaps = 0;
    loop {
        let b = c.read(100, Duration::ZERO).unwrap();
        gaps += b.gap.iter().count();
        if b.records.is_empty() {
            break;
        }
        for r in &b.records {
            if r.resync {
                let v = c.renderer().render(r).unwrap();
                keys.push(v["s3"]["object"]["key"].as_str().unwrap().to_string());
            }
        }
        c.commit(b.next).unwrap();
    }
    assert_eq!(gaps, 1);
    let want: Vec<String> = (0..600).map(|i| format!("o{i:04}")).collect();
    assert_eq!(keys, want, "every object, once, in key order");
    // The last 100 filled their batch exactly, and that batch still ended
    // the resync: committing it put the cursor after the head (found by
    // the soak, whose reader committed only batches with records).
    assert_eq!(
        l.committed("late").unwrap(),
        Some(fsfeed::Position::new(601, 0))
    );
}

#[test]
fn upgrading_a_format_3_ledger_builds_the_index_from_its_events() {
    let dir = tempfile::tempdir().unwrap();
    {
        let l = open(dir.path(), Durability::None, None);
        l.append_batch(obs_history()).unwrap();
        l.close().unwrap();
    }
    let before = {
        let l = open(dir.path(), Durability::None, None);
        let r = resync(&l);
        l.close().unwrap();
        r
    };
    {
        // As format 3 left it: no live index.
        let db = raw_db(dir.path());
        let ns = db.cf_handle("ns").unwrap();
        db.delete_range_cf(ns, b"L", b"M").unwrap();
        db.put_cf(
            db.cf_handle("meta").unwrap(),
            b"format_version",
            3u32.to_be_bytes(),
        )
        .unwrap();
    }
    let l = open(dir.path(), Durability::None, None);
    assert_eq!(resync(&l), before);
    assert_eq!(before.len(), 2);
    l.append(acl("c")).unwrap();
    assert_eq!(object(&s3_of(&l, 5)), (Some(7), Some("e3".into())));
}

#[test]
fn a_deleted_bucket_takes_its_entries_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(vec![
        obs(Op::commit("v", "b", "old", 1, "e1")),
        obs(Op::commit("v", "other", "kept", 2, "e2")),
        obs(Op::bucket_delete("v", "b")),
        obs(Op::bucket_create("v", "b")),
        obs(Op::commit("v", "b", "new", 3, "e3")),
    ])
    .unwrap();
    let got: Vec<String> = resync(&l).into_keys().collect();
    assert_eq!(got, vec!["kept".to_string(), "new".to_string()]);
    // A bucket_delete that names the FSO layout does the same.
    l.append(
        Op::bucket_delete("v", "other")
            .with_layout(Layout::Fso)
            .at(T0),
    )
    .unwrap();
    let got: Vec<String> = resync(&l).into_keys().collect();
    assert_eq!(got, vec!["new".to_string()]);
}

fn legacy(op: Op) -> Op {
    op.with_layout(Layout::Legacy).at(T0)
}

/// 2,000 legacy commits below `d` (seqs 1 to 2000), then a recursive
/// delete of `d` (seq 2001) that takes them all.
fn commits_then_recursive_delete(ledger: &Ledger) {
    let ops: Vec<Op> = (0..2000)
        .map(|i| legacy(Op::commit("v", "g", &format!("d/k{i:05}"), 1, "e")))
        .collect();
    ledger.append_batch(ops).unwrap();
    ledger
        .append(legacy(Op::delete("v", "g", "d", true).dir()))
        .unwrap();
}

/// What a recursive delete took is stored beside its event and counts in
/// its bytes: the next event's offset is past them, and `stats` counts
/// them while the event is retained.
#[test]
fn what_a_directory_op_took_counts_in_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    commits_then_recursive_delete(&ledger);
    ledger
        .append(legacy(Op::commit("v", "g", "x", 1, "e")))
        .unwrap();
    let offset = |seq| ledger.get(seq).unwrap().unwrap().offset;
    let (before, delete, after) = (offset(2000) - offset(1999), offset(2001), offset(2002));
    // Each entry is at least its name (`k00000`, 6 bytes) and a flag.
    assert!(
        after - delete > 2000 * 7,
        "the delete counts {} bytes, a commit {before}",
        after - delete
    );
    // Retained bytes run from the first event to the end of the head.
    let stats = ledger.stats().unwrap();
    assert!(stats.bytes > after, "{} <= {after}", stats.bytes);
}

/// The entries a recursive delete took, stored beside it, missing while
/// the event is retained (lost behind the ledger's back): a cursor that
/// expands it reads `corrupt`, not an expansion that ends short as if it
/// had listed them all.
#[test]
fn a_missing_chunk_of_what_a_directory_op_took_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open(dir.path(), Durability::Sync, None);
        commits_then_recursive_delete(&ledger);
        ledger.close().unwrap();
    }
    let read = || {
        let ledger = open(dir.path(), Durability::Sync, None);
        let mut c = ledger
            .cursor(
                None,
                CursorOptions {
                    start: Start::Seq(2001),
                    format: s3(),
                    expand: fsfeed::ExpandOptions {
                        renames: false,
                        deletes: true,
                    },
                    ..CursorOptions::default()
                },
            )
            .unwrap();
        let mut n = 0;
        loop {
            match c.read(500, Duration::ZERO) {
                Ok(b) if b.records.is_empty() => return Ok(n),
                Ok(b) => n += b.records.len(),
                Err(e) => return Err((n, e.code())),
            }
        }
    };
    assert_eq!(read(), Ok(2000));
    {
        let db = raw_db(dir.path());
        let ns = db.cf_handle("ns").unwrap();
        let mut k = vec![b'X'];
        k.extend_from_slice(&2001u64.to_be_bytes());
        k.extend_from_slice(&1u32.to_be_bytes());
        assert!(db.get_cf(ns, &k).unwrap().is_some());
        db.delete_cf(ns, &k).unwrap();
    }
    assert_eq!(read(), Err((1000, "corrupt")));
}
