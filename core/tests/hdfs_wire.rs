//! HDFS inotify protobuf: field numbers checked against hand-assembled bytes,
//! and every event of the corpus decodes back to what was rendered.
mod common;

use std::time::Duration;

use fsfeed::render::hdfs::{self, wire, HdfsEvent};
use fsfeed::{CursorOptions, Durability, Op};

/// Every record of a small ledger, from the start.
fn all_records(ledger: &fsfeed::Ledger) -> Vec<fsfeed::Record> {
    ledger
        .cursor(None, CursorOptions::default())
        .unwrap()
        .read(10, Duration::ZERO)
        .unwrap()
        .records
}

#[test]
fn field_numbers_match_a_hand_checked_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = common::open(dir.path(), Durability::None, None);
    // An unlink of /v/b/k at 1 ms, producer txid 7.
    ledger
        .append(Op::delete("v", "b", "k", false).at(1_000).with_txid(7))
        .unwrap();
    let records = all_records(&ledger);
    let bytes = hdfs::events_list(&records, 9);
    #[rustfmt::skip]
    let unlink = [0x0A, 6, b'/', b'v', b'/', b'b', b'/', b'k', // path = 1
                  0x10, 1]; // timestamp = 2
    let mut event = vec![0x08, 5, 0x12, unlink.len() as u8]; // EventProto{type=1: UNLINK(5), contents=2}
    event.extend_from_slice(&unlink);
    let mut batch = vec![0x08, 7, 0x12, event.len() as u8]; // EventBatchProto{txid=1, events=2}
    batch.extend_from_slice(&event);
    // EventsListProto{firstTxid=2, lastTxid=3, syncTxid=4, batch=5}
    let mut list = vec![0x10, 7, 0x18, 7, 0x20, 9, 0x2A, batch.len() as u8];
    list.extend_from_slice(&batch);
    assert_eq!(bytes, list);
}

#[test]
fn the_corpus_round_trips_through_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    let bytes = hdfs::events_list(&records, 42);
    let list = hdfs::decode_events_list(&bytes).unwrap();
    assert_eq!(
        list.batch.len(),
        records.len(),
        "every op kind has an HDFS event"
    );
    assert_eq!(
        (list.first_txid, list.last_txid, list.sync_txid),
        (1000, 1038, 42)
    );
    let mut types = std::collections::BTreeSet::new();
    for (batch, rec) in list.batch.iter().zip(&records) {
        assert_eq!(batch.txid, hdfs::txid(&rec.event));
        let want = hdfs::events(&rec.event);
        assert_eq!(batch.events.len(), want.len());
        for (wire_ev, ev) in batch.events.iter().zip(&want) {
            let back = HdfsEvent::from_proto(wire_ev).unwrap();
            assert_eq!(back.to_json(), ev.to_json());
            assert_eq!(back.to_proto(), *wire_ev);
            types.insert(wire_ev.r#type);
        }
    }
    assert_eq!(
        types.len(),
        7,
        "CREATE, CLOSE, APPEND, RENAME, METADATA, UNLINK, TRUNCATE"
    );
    let bad = wire::EventProto {
        r#type: 4,
        contents: vec![0xff],
    };
    assert_eq!(
        HdfsEvent::from_proto(&bad).unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        hdfs::decode_events_list(b"\x2a\xff").unwrap_err().code(),
        "invalid_argument"
    );
}

#[test]
fn metadata_events_carry_only_their_type_s_fields() {
    for op in common::corpus_ops() {
        let ev = fsfeed::Event {
            seq: 1,
            path: op.key.clone(),
            to_path: String::new(),
            offset: 0,
            op: Some(op),
            ..Default::default()
        };
        for e in hdfs::events(&ev) {
            let j = e.to_json();
            if j["eventType"] != "METADATA" {
                continue;
            }
            let allowed: &[&str] = match j["metadataType"].as_str().unwrap() {
                "TIMES" => &["mtime", "atime"],
                "REPLICATION" => &["replication"],
                "OWNER" => &["ownerName", "groupName"],
                "PERMS" => &["perms"],
                "ACLS" => &["acls"],
                "XATTRS" => &["xAttrs", "xAttrsRemoved"],
                other => panic!("unknown metadataType {other}"),
            };
            for k in j.as_object().unwrap().keys() {
                assert!(
                    ["eventType", "path", "metadataType"].contains(&k.as_str())
                        || allowed.contains(&k.as_str()),
                    "{k} in {j}"
                );
            }
        }
    }
}

/// What an op does not say is left out of the HDFS JSON (never `""`, `0`
/// or a default mode), and the protobuf form, which must carry Hadoop's
/// required fields, reads back as the same unknowns.
#[test]
fn fields_the_op_does_not_give_are_left_out() {
    use fsfeed::op::{Kind, SetAttr};
    let dir = tempfile::tempdir().unwrap();
    let ledger = common::open(dir.path(), Durability::None, None);
    let mut full = Op::create_file("v", "b", "full");
    if let Some(Kind::CreateFile(c)) = &mut full.kind {
        c.replication = Some(3);
        c.owner = "alice".into();
        c.group = "staff".into();
        c.perms = Some(0o640);
    }
    let owner_only = SetAttr {
        owner: Some("bob".into()),
        ..Default::default()
    };
    ledger
        .append_batch(vec![
            Op::create_file("v", "b", "bare"),
            full,
            Op::create_directory("v", "b", "d"),
            Op::set_attr("v", "b", "full", owner_only),
        ])
        .unwrap();
    let records = all_records(&ledger);
    let json: Vec<serde_json::Value> = records
        .iter()
        .map(|r| hdfs::record_events(r)[0].to_json())
        .collect();
    let keys = |j: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = j.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let bare = [
        "ctime",
        "eventType",
        "iNodeType",
        "overwrite",
        "path",
        "symlinkTarget",
    ];
    assert_eq!(keys(&json[0]), bare, "{}", json[0]);
    assert_eq!(keys(&json[2]), bare, "{}", json[2]);
    assert_eq!(json[1]["replication"], 3);
    assert_eq!(json[1]["ownerName"], "alice");
    assert_eq!(json[1]["groupName"], "staff");
    assert_eq!(json[1]["perms"], 0o640);
    assert_eq!(json[3]["metadataType"], "OWNER");
    assert_eq!(json[3]["ownerName"], "bob");
    assert!(json[3].get("groupName").is_none(), "{}", json[3]);
    // Through Hadoop's protobuf and back: the same events, unknowns included.
    let bytes = hdfs::events_list(&records, 4);
    let list = hdfs::decode_events_list(&bytes).unwrap();
    for (batch, want) in list.batch.iter().zip(&json) {
        let back = HdfsEvent::from_proto(&batch.events[0]).unwrap();
        assert_eq!(back.to_json(), *want);
    }
    // The bare create's required fields are there, empty; its optional
    // ones are absent.
    let wire::EventProto { contents, .. } = &list.batch[0].events[0];
    let create = <wire::CreateEventProto as prost::Message>::decode(contents.as_slice()).unwrap();
    assert_eq!(
        (
            create.owner_name.as_str(),
            create.group_name.as_str(),
            create.perms.perm
        ),
        ("", "", 0)
    );
    assert_eq!(
        (
            create.replication,
            create.default_block_size,
            create.erasure_coded
        ),
        (None, None, None)
    );
}
