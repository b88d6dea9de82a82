//! The real Rust S3 event consumer (`aws_lambda_events`) parses every S3
//! message rendered from the fixture corpus, in every profile; key, size,
//! event name and time come back as the ops said.
mod common;

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
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

#[test]
fn every_profile_parses_in_aws_lambda_events() {
    let ops = common::corpus_ops();
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    for profile in [Profile::Aws, Profile::Ceph, Profile::Minio] {
        let r = Format::S3(S3Options {
            profile,
            ..Default::default()
        })
        .renderer();
        let rendered: Vec<(u64, serde_json::Value)> = records
            .iter()
            .filter_map(|rec| r.render(rec).map(|v| (rec.event.seq, v)))
            .collect();
        assert!(
            rendered.len() >= 30,
            "{profile:?}: {} records",
            rendered.len()
        );
        let msg = s3::message(rendered.iter().map(|(_, v)| v.clone()).collect()).to_string();
        let event: S3Event =
            serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert_eq!(event.records.len(), rendered.len());
        let by_seq: BTreeMap<u64, &Op> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| (i as u64 + 1, o))
            .collect();
        for ((seq, _), rec) in rendered.iter().zip(&event.records) {
            let op = by_seq[seq];
            let want_name = s3::event_name(op).unwrap();
            assert_eq!(rec.event_name.as_deref(), Some(want_name));
            assert!(
                s3::EVENT_NAMES.contains(&want_name),
                "{want_name} missing from EVENT_NAMES"
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
            let want_size = match &op.kind {
                Some(Kind::Commit(c)) => c.size.unwrap_or(0) as i64,
                Some(Kind::Truncate(t)) => t.size as i64,
                _ => 0,
            };
            assert_eq!(rec.s3.object.size, Some(want_size), "{profile:?} seq {seq}");
            assert_eq!(rec.event_time.timestamp_micros(), op.time_us / 1000 * 1000);
            assert_eq!(rec.s3.bucket.name.as_deref(), Some(op.bucket.as_str()));
            assert_eq!(rec.s3.object.sequencer.as_deref().map(str::len), Some(18));
        }
    }
}
