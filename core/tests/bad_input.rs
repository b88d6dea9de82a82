//! Bad input gets a typed error with a stable code, and the ledger is
//! unchanged: malformed JSON, unknown kind, wrong types, bad keys, txids that
//! go back, renames onto themselves. A batch is all-or-nothing.
mod common;

use common::*;
use fsfeed::{Durability, Op};

fn code_of_json(text: &str) -> &'static str {
    Op::from_json(text, 1).unwrap_err().code()
}

#[test]
fn json_rejections_have_their_codes() {
    let t = T0;
    let cases = [
        ("{\"kind\":\"commit\",", "invalid_json"),
        ("not json", "invalid_json"),
        (
            &format!(r#"{{"kind":"explode","bucket":"b","key":"k","time_us":{t}}}"#),
            "unknown_kind",
        ),
        (
            &format!(r#"{{"kind":"commit","bucket":"b","key":"k","time_us":{t},"size":"big"}}"#),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"commit","bucket":"b","key":"k","time_us":{t},"colour":1}}"#),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"delete","bucket":"b","key":"k","time_us":{t},"size":1}}"#),
            "invalid_op",
        ),
        (r#"{"kind":"commit","bucket":"b","key":"k"}"#, "invalid_op"),
        (
            &format!(r#"{{"kind":"commit","bucket":"b","key":"","time_us":{t}}}"#),
            "invalid_key",
        ),
        (
            &format!(r#"{{"kind":"commit","bucket":"b","key":"a\u0000b","time_us":{t}}}"#),
            "invalid_key",
        ),
        (
            &format!(
                r#"{{"kind":"commit","bucket":"b","key":"{}","time_us":{t}}}"#,
                "k".repeat(1025)
            ),
            "invalid_key",
        ),
        (
            &format!(
                r#"{{"kind":"commit","bucket":"b","key":"a/../b","layout":"fso","time_us":{t}}}"#
            ),
            "invalid_key",
        ),
        (
            &format!(
                r#"{{"kind":"commit","bucket":"b","key":"a//b","layout":"fso","time_us":{t}}}"#
            ),
            "invalid_key",
        ),
        (
            &format!(r#"{{"kind":"commit","bucket":"b","key":"k","layout":"tree","time_us":{t}}}"#),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"rename","bucket":"b","key":"k","to_key":"k","time_us":{t}}}"#),
            "rename_to_self",
        ),
        (
            &format!(r#"{{"kind":"rename","bucket":"b","key":"k","time_us":{t}}}"#),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"commit","key":"k","time_us":{t}}}"#),
            "invalid_op",
        ),
        (
            &format!(
                r#"{{"kind":"commit","bucket":"b","key":"k","time_us":{t},"source_ip":"nowhere"}}"#
            ),
            "invalid_op",
        ),
        (
            &format!(
                r#"{{"kind":"acl_add","bucket":"b","key":"k","time_us":{t},"acls":[{{"type":"robot","rights":["read"]}}]}}"#
            ),
            "invalid_op",
        ),
        (
            &format!(
                r#"{{"kind":"set_attr","bucket":"b","key":"k","time_us":{t},"perms":420,"owner":"x"}}"#
            ),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"set_times","bucket":"b","key":"k","time_us":{t}}}"#),
            "invalid_op",
        ),
        (
            &format!(r#"{{"kind":"volume_create","volume":"v","bucket":"b","time_us":{t}}}"#),
            "invalid_op",
        ),
        (
            &format!(
                r#"{{"kind":"commit","bucket":"b","key":"k","time_us":{t},"method":"teleport"}}"#
            ),
            "invalid_op",
        ),
    ];
    for (text, code) in cases {
        assert_eq!(code_of_json(text), code, "{text}");
    }
    // A 1024-byte key is fine.
    let ok = format!(
        r#"{{"kind":"commit","bucket":"b","key":"{}","time_us":{t}}}"#,
        "k".repeat(1024)
    );
    assert!(Op::from_json(&ok, 1).is_ok());
}

#[test]
fn rejected_batches_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::Sync, None);
    ledger.append_batch(commits(0, 3)).unwrap();
    let before = (ledger.checksum().unwrap(), ledger.stats().unwrap().head_seq);

    // A bad op in the middle of a batch: nothing of the batch is written.
    let mut batch = commits(3, 5);
    batch[2].key = "x\0y".into();
    let e = ledger.append_batch(batch).unwrap_err();
    assert_eq!(e.code(), "invalid_key");
    assert!(matches!(e, fsfeed::Error::InvalidKey { index: 2, .. }));

    // txids must increase, across batches and within one.
    ledger
        .append(commits(10, 1).remove(0).with_txid(100))
        .unwrap();
    let mid = (ledger.checksum().unwrap(), ledger.head_seq().unwrap());
    let e = ledger
        .append(commits(11, 1).remove(0).with_txid(100))
        .unwrap_err();
    assert_eq!(e.code(), "txid_not_increasing");
    let batch = vec![
        commits(12, 1).remove(0).with_txid(200),
        commits(13, 1).remove(0),
        commits(14, 1).remove(0).with_txid(150),
    ];
    let e = ledger.append_batch(batch).unwrap_err();
    assert!(matches!(
        e,
        fsfeed::Error::TxidNotIncreasing {
            index: 2,
            txid: 150,
            last: 200
        }
    ));
    // Parent ids are not known yet to this ledger.
    let mut by_parent = Op::commit("v", "b", "", 1, "e").with_layout(fsfeed::Layout::Fso);
    by_parent.parent_id = Some(77);
    by_parent.name = "f".into();
    assert_eq!(
        ledger.append(by_parent).unwrap_err().code(),
        "unknown_parent"
    );
    assert_eq!(
        (ledger.checksum().unwrap(), ledger.head_seq().unwrap()),
        mid
    );

    // Op time is required.
    assert_eq!(
        ledger
            .append(commits(15, 1).remove(0).at(0))
            .unwrap_err()
            .code(),
        "invalid_op"
    );
    assert_eq!(ledger.head_seq().unwrap(), before.1 + 1);
}

#[test]
fn bad_arguments_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let e = fsfeed::Ledger::open_with(
        dir.path(),
        fsfeed::OpenOptions {
            retention: Some(fsfeed::Retention::default().with_max_events(0)),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(!dir.path().join("db").exists(), "nothing was created");
    assert_eq!(
        fsfeed::Durability::parse("fast").unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        "xml".parse::<fsfeed::render::Format>().unwrap_err().code(),
        "invalid_argument"
    );
    assert_eq!(
        "1:x".parse::<fsfeed::Position>().unwrap_err().code(),
        "invalid_argument"
    );
}

/// A ledger written by another format version (here 1, whose namespace
/// layout this build does not read) is refused with a typed error, and
/// opening it changes nothing.
#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::Buffered, None);
    ledger.append_batch(commits(0, 3)).unwrap();
    ledger.close().unwrap();
    {
        let db = raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        assert_eq!(
            db.get_cf(meta, b"format_version").unwrap().unwrap(),
            fsfeed::FORMAT_VERSION.to_be_bytes()
        );
        db.put_cf(meta, b"format_version", 1u32.to_be_bytes())
            .unwrap();
    }
    for read_only in [false, true] {
        let e = fsfeed::Ledger::open_with(
            dir.path(),
            fsfeed::OpenOptions {
                read_only,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "unsupported_format", "{e}");
        assert!(e.to_string().contains('1'), "{e}");
    }
    let db = raw_db(dir.path());
    let meta = db.cf_handle("meta").unwrap();
    assert_eq!(
        db.get_cf(meta, b"format_version").unwrap().unwrap(),
        1u32.to_be_bytes()
    );
}
