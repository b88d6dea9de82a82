//! The real Rust S3 event consumer (`aws_lambda_events`) parses every S3
//! message rendered from the fixture corpus, in every profile; key, size,
//! event name and time come back as the ops said.
mod common;

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use fsfeed::event_name;
use fsfeed::op::Kind;
use fsfeed::render::s3::{self, Profile, S3Options};
use fsfeed::render::Format;
use fsfeed::Op;

/// Undo the profile's key encoding (`+` is a space, `%XX` a byte).
fn decode_key(profile: Profile, key: &str) -> String {
    if profile == Profile::Ceph {
        return key.to_string();
    }
    let b = key.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
                );
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The corpus rendered in `opts`, as (seq, record JSON).
fn rendered(opts: S3Options, records: &[fsfeed::Record]) -> Vec<(u64, serde_json::Value)> {
    let r = Format::S3(opts).renderer();
    records
        .iter()
        .filter_map(|rec| r.render(rec).map(|v| (rec.event.seq, v)))
        .collect()
}

#[test]
fn every_profile_parses_in_aws_lambda_events() {
    let ops = common::corpus_ops();
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    let by_seq: BTreeMap<u64, &Op> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| (i as u64 + 1, o))
        .collect();
    for profile in [Profile::Aws, Profile::Ceph, Profile::Minio] {
        for extensions in [false, true] {
            let rendered = rendered(
                S3Options {
                    profile,
                    extensions,
                    ..Default::default()
                },
                &records,
            );
            let want = if extensions { 30 } else { 18 };
            assert!(
                rendered.len() >= want,
                "{profile:?}: {} records",
                rendered.len()
            );
            let msg = s3::message(rendered.iter().map(|(_, v)| v.clone()).collect()).to_string();
            let event: S3Event =
                serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
            assert_eq!(event.records.len(), rendered.len());
            for ((seq, _), rec) in rendered.iter().zip(&event.records) {
                let op = by_seq[seq];
                let event = &records[*seq as usize - 1].event;
                let want_name = event_name::of_op(op).unwrap();
                assert_eq!(rec.event_name.as_deref(), Some(want_name));
                // AWS sends ObjectAcl:Put with the object's size and eTag:
                // standard when the live index knew both.
                let aws_acl = profile == Profile::Aws
                    && want_name == "ObjectAcl:Put"
                    && event.size.is_some()
                    && !event.etag.is_empty();
                assert!(
                    extensions || event_name::standard(want_name) || aws_acl,
                    "{profile:?} wrote {want_name} without extensions"
                );
                let mut want_key = match &op.kind {
                    Some(Kind::Rename(rn)) => rn.to_key.clone(),
                    _ => op.key.clone(),
                };
                let is_dir = op.is_dir || matches!(op.kind, Some(Kind::CreateDirectory(_)));
                if is_dir && !want_key.ends_with('/') {
                    want_key.push('/');
                }
                let key = rec.s3.object.key.clone().unwrap_or_default();
                assert_eq!(decode_key(profile, &key), want_key, "{profile:?} seq {seq}");
                // The size is the op's, a directory marker's 0, or what the
                // event carries from the live index; never made up.
                let want_size = match &op.kind {
                    Some(Kind::Commit(c)) => c.size.map(|s| s as i64),
                    Some(Kind::Truncate(t)) => Some(t.size as i64),
                    Some(Kind::CreateDirectory(_)) => Some(0),
                    Some(Kind::Delete(_)) => None,
                    _ => event.size.map(|s| s as i64),
                };
                assert_eq!(rec.s3.object.size, want_size, "{profile:?} seq {seq}");
                assert_eq!(rec.event_time.timestamp_micros(), op.time_us / 1000 * 1000);
                assert_eq!(rec.s3.bucket.name.as_deref(), Some(op.bucket.as_str()));
                assert_eq!(rec.s3.object.sequencer.as_deref().map(str::len), Some(18));
            }
        }
    }
}

/// What the S3 records say is what the ledger knows: `ObjectCreated:*`
/// records carry an integer size and a non-empty eTag wherever the op gave
/// them; no record anywhere has an empty eTag, or a size neither the op nor
/// the live index (as the event carries it) gave.
#[test]
fn records_hold_no_made_up_size_or_etag() {
    let ops = common::corpus_ops();
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    let mut created_checked = 0;
    for profile in [Profile::Aws, Profile::Ceph, Profile::Minio] {
        for extensions in [false, true] {
            let opts = S3Options {
                profile,
                extensions,
                ..Default::default()
            };
            for (seq, v) in rendered(opts, &records) {
                let op = &ops[seq as usize - 1];
                let event = &records[seq as usize - 1].event;
                let obj = &v["s3"]["object"];
                let name = v["eventName"].as_str().unwrap();
                assert_ne!(obj["eTag"], "", "{profile:?} seq {seq}: empty eTag");
                let known = match &op.kind {
                    Some(Kind::Commit(c)) => (c.size, !c.etag.is_empty()),
                    Some(Kind::CreateDirectory(_)) => (Some(0), true),
                    Some(Kind::Truncate(t)) => (Some(t.size), false),
                    Some(Kind::Delete(_)) => (None, false),
                    // What the live index knew, as the event carries it.
                    _ => (event.size, !event.etag.is_empty()),
                };
                assert_eq!(obj["size"].as_u64(), known.0, "{profile:?} seq {seq}");
                assert_eq!(obj.get("size").is_some(), known.0.is_some());
                assert_eq!(obj.get("eTag").is_some(), known.1, "{profile:?} seq {seq}");
                if name.starts_with("ObjectCreated:") && known.0.is_some() && known.1 {
                    assert!(obj["size"].is_u64() && !obj["eTag"].as_str().unwrap().is_empty());
                    created_checked += 1;
                }
                if name.starts_with("ObjectRemoved:") {
                    assert!(obj.get("size").is_none() && obj.get("eTag").is_none());
                }
            }
        }
    }
    assert!(created_checked >= 6 * 14, "{created_checked}");
}

/// A cursor in S3 format over events that mostly have no S3 form returns
/// only non-empty batches and ends at the head.
#[test]
fn an_s3_cursor_over_formless_events_returns_no_empty_batch() {
    use fsfeed::{CursorOptions, Durability};
    let dir = tempfile::tempdir().unwrap();
    let ledger = common::open(dir.path(), Durability::None, None);
    let mut ops = Vec::new();
    for i in 0..20_000u64 {
        let t = common::T0 + i as i64;
        // 1 in 1000 ops has an S3 form (a commit); the rest are create_file
        // and set_times, which have none without extensions.
        ops.push(if i % 1000 == 999 {
            Op::commit("v", "b", &format!("k{i}"), i, "e").at(t)
        } else if i % 2 == 0 {
            Op::create_file("v", "b", &format!("k{i}")).at(t)
        } else {
            Op::set_times("v", "b", &format!("k{}", i - 1), Some(1), None).at(t)
        });
    }
    ledger.append_batch(ops).unwrap();
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                format: Format::S3(S3Options::default()),
                start: fsfeed::Start::Earliest,
                ..Default::default()
            },
        )
        .unwrap();
    let mut got = 0;
    loop {
        let b = c.read(7, std::time::Duration::ZERO).unwrap();
        if b.is_empty() {
            break;
        }
        assert!(!b.records.is_empty(), "an empty batch at {}", b.next);
        for r in &b.records {
            assert!(c.renderer().render(r).is_some());
        }
        got += b.records.len();
    }
    assert_eq!(got, 20);
    assert_eq!(c.position().seq, 20_001, "the cursor ends at the head");
}
