//! The native format: canonical op JSON plus seq, sub and path; proto bytes
//! that decode back to the same event.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::render::{native, Format};
use fsfeed::{Acl, CursorOptions, Durability, Op};

#[test]
fn json_and_proto_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let ops = vec![
        Op::rename("vol1", "b1", "a b/x+y.bin", "c/x.bin")
            .at(T0)
            .with_txid(7)
            .by("alice", "REQ1", "10.0.0.1"),
        Op::acl_set(
            "vol1",
            "b1",
            "c/x.bin",
            vec![Acl::new("user", "bob", &["read"])],
        )
        .at(T0 + 1),
    ];
    ledger.append_batch(ops.clone()).unwrap();
    let mut c = ledger.cursor(None, CursorOptions::default()).unwrap();
    let batch = c.read(10, Duration::ZERO).unwrap();
    let r = Format::Native.renderer();
    let v = r.render(&batch.records[0]).unwrap();
    assert_eq!(v["seq"], 1);
    assert_eq!(v["sub"], 0);
    assert_eq!(v["kind"], "rename");
    assert_eq!(v["key"], "a b/x+y.bin");
    assert_eq!(v["path"], "a b/x+y.bin");
    assert_eq!(v["to_key"], "c/x.bin");
    assert_eq!(v["to_path"], "c/x.bin");
    assert_eq!(v["txid"], 7);
    assert_eq!(v["time_us"], T0);
    // The op part of the native JSON parses back into the same op.
    let mut op_json = v.clone();
    for k in ["seq", "sub", "path", "to_path"] {
        op_json.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(Op::from_json_value(op_json, 0).unwrap(), ops[0]);
    let acl = r.render(&batch.records[1]).unwrap();
    assert_eq!(acl["acls"][0]["rights"][0], "read");
    // Proto bytes.
    let bytes = native::to_proto(&batch.records[1].event);
    assert_eq!(native::from_proto(&bytes).unwrap(), batch.records[1].event);
    assert_eq!(
        native::from_proto(b"\xff\xff").unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn every_kind_survives_the_json_round_trip() {
    let ops: Vec<Op> = fsfeed::workload::Workload::new(3, T0).take(3000).collect();
    for op in ops {
        let back = Op::from_json(&op.to_json_value().to_string(), 0).unwrap();
        assert_eq!(back, op);
    }
}

/// `render_to` (the typed fast path the CLI and bindings use) writes the same
/// object as `render`, for every format, plain, expanded and resync records.
#[test]
fn render_to_writes_what_render_gives() {
    use fsfeed::render::s3::S3Options;
    use fsfeed::{ExpandOptions, Layout, OnGap, Start};
    let dir = tempfile::tempdir().unwrap();
    let mut records = corpus_records(dir.path());
    let dir2 = tempfile::tempdir().unwrap();
    let l = open(dir2.path(), Durability::None, None);
    let fso = |op: Op, i: i64| op.with_layout(Layout::Fso).at(T0 + i);
    l.append_batch(vec![
        fso(Op::create_directory("v", "b", "d"), 0),
        fso(Op::create_file("v", "b", "d/f1"), 1),
        fso(Op::create_file("v", "b", "d/sub/f2"), 2),
        fso(Op::rename("v", "b", "d", "e"), 3),
        fso(Op::delete("v", "b", "e", true), 4),
    ])
    .unwrap();
    let opts = CursorOptions {
        start: Start::Earliest,
        on_gap: OnGap::Report,
        expand: ExpandOptions {
            renames: true,
            deletes: true,
        },
        ..Default::default()
    };
    let mut c = l.cursor(None, opts).unwrap();
    records.extend(c.read(1000, Duration::ZERO).unwrap().records);
    l.append(fso(Op::create_file("v", "b", "g/h"), 5)).unwrap();
    c.resync().unwrap();
    let resync = c.read(1000, Duration::ZERO).unwrap().records;
    assert!(resync.iter().any(|r| r.resync));
    records.extend(resync);
    assert!(records.iter().any(|r| r.expansion.is_some()));
    for format in [
        Format::Native,
        Format::S3(S3Options::default()),
        Format::Hdfs,
    ] {
        let r = format.renderer();
        for rec in &records {
            let mut out = Vec::new();
            let wrote = r.render_to(rec, &mut out);
            match r.render(rec) {
                Some(v) => {
                    assert!(wrote);
                    let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, v, "{} at {:?}", r.name(), rec.position);
                }
                None => assert!(!wrote && out.is_empty()),
            }
        }
    }
}
