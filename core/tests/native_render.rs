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
