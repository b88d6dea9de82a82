//! Framing: the one module that puts rendered records on the wire. An S3
//! message per batch or per record parses in the real consumer, JSON lines
//! are one record each, an `EventsListProto` carries the batch's txids, and
//! a framing that does not fit the format is refused.
mod common;

use aws_lambda_events::event::s3::S3Event;
use fsfeed::frame::{self, Framer};
use fsfeed::render::hdfs;
use fsfeed::render::s3::S3Options;
use fsfeed::{Batch, Format, Framing, Gap, Position};

fn s3() -> Format {
    Format::S3(S3Options::default())
}

#[test]
fn s3_messages_per_batch_and_per_record_parse_in_aws_lambda_events() {
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    let renderer = s3().renderer();
    let with_form: Vec<_> = records.iter().filter(|r| renderer.has_form(r)).collect();

    let mut one = Vec::new();
    Framer::new(&s3(), Framing::S3Message)
        .unwrap()
        .message(&records, None, &mut one);
    let event: S3Event = serde_json::from_slice(&one).unwrap();
    assert_eq!(event.records.len(), with_form.len());

    let mut n = 0;
    Framer::new(&s3(), Framing::S3PerRecord)
        .unwrap()
        .each(&records, |r, bytes| {
            let e: S3Event = serde_json::from_slice(bytes).unwrap();
            assert_eq!(e.records.len(), 1);
            assert_eq!(
                e.records[0].s3.object.sequencer.as_deref().map(str::len),
                Some(18)
            );
            assert!(renderer.has_form(r));
            n += 1;
        });
    assert_eq!(n, with_form.len());
}

#[test]
fn json_lines_hold_one_record_each_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    for format in [Format::Native, s3(), Format::Hdfs] {
        let framer = Framer::new(&format, Framing::JsonLines).unwrap();
        let mut out = Vec::new();
        framer.lines(&records, &mut out);
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let r = format.renderer();
        let want: Vec<_> = records.iter().filter_map(|x| r.render(x)).collect();
        assert_eq!(lines.len(), want.len(), "{format:?}");
        assert!(out.ends_with(b"\n"));
    }
}

#[test]
fn hdfs_proto_carries_the_batch_and_its_txids() {
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    let framer = Framer::new(&Format::Hdfs, Framing::HdfsProto).unwrap();
    let mut out = Vec::new();
    framer.message(&records, Some(99_999), &mut out);
    let list = hdfs::decode_events_list(&out).unwrap();
    let with_form = records
        .iter()
        .filter(|r| !hdfs::record_events(r).is_empty())
        .count();
    assert_eq!(list.batch.len(), with_form);
    assert_eq!(list.sync_txid, 99_999);
    assert_eq!(list.first_txid, list.batch[0].txid);
    assert_eq!(list.last_txid, list.batch.last().unwrap().txid);
    // Without a sync txid, the last record's.
    let mut out = Vec::new();
    framer.message(&records, None, &mut out);
    let list = hdfs::decode_events_list(&out).unwrap();
    assert_eq!(list.sync_txid, list.last_txid);
}

#[test]
fn a_framing_that_does_not_fit_the_format_is_refused() {
    for (format, framing) in [
        (Format::Native, Framing::S3Message),
        (Format::Hdfs, Framing::S3PerRecord),
        (Format::Native, Framing::HdfsProto),
        (s3(), Framing::HdfsProto),
    ] {
        let e = Framer::new(&format, framing).unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{format:?} {framing:?}");
    }
    for bad in ["", "s3", "S3-MESSAGE", "json_lines", "hdfs"] {
        assert_eq!(
            bad.parse::<Framing>().unwrap_err().code(),
            "invalid_argument"
        );
    }
    for f in [
        Framing::S3Message,
        Framing::S3PerRecord,
        Framing::JsonLines,
        Framing::HdfsProto,
    ] {
        assert_eq!(f.name().parse::<Framing>().unwrap(), f);
    }
}

#[test]
fn a_batch_and_a_gap_as_json() {
    let b = Batch {
        records: Vec::new(),
        gap: Some(Gap {
            expected: 3,
            actual: 10,
        }),
        next: Position::new(10, 0),
    };
    let v: serde_json::Value =
        serde_json::from_slice(&frame::batch_json(&b, Format::Native.renderer().as_ref())).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"records": [], "gap": {"expected": 3, "actual": 10}, "next": {"seq": 10, "sub": 0}})
    );
    let g: serde_json::Value = serde_json::from_slice(&frame::gap_line(&b.gap.unwrap())).unwrap();
    assert_eq!(g, serde_json::json!({"gap": {"expected": 3, "actual": 10}}));
}
