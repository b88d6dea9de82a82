//! Golden fixtures: the corpus in `tests/fixtures/corpus.jsonl` (every op
//! kind, nasty keys) rendered in every format and profile, compared byte for
//! byte with the files beside it. Python and Node suites read the same files.
//!
//! Regenerate after an intended change with `make fixtures`
//! (`FSFEED_REGEN=1 cargo test -p fsfeed --test golden`), and review the diff.
mod common;

use std::path::PathBuf;

use fsfeed::render::hdfs;
use fsfeed::render::s3::{self, Profile, S3Options};
use fsfeed::render::Format;
use fsfeed::Record;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn render_all(format: &Format, records: &[Record]) -> Vec<serde_json::Value> {
    let r = format.renderer();
    records.iter().filter_map(|rec| r.render(rec)).collect()
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s.into_bytes()
}

fn check(name: &str, actual: Vec<u8>) {
    let path = fixtures().join(name);
    if std::env::var_os("FSFEED_REGEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run `make fixtures`", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its rendering; if the change is intended, run `make fixtures` and review the diff"
    );
}

#[test]
fn golden_renderings_match_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let records = common::corpus_records(dir.path());
    assert_eq!(records.len(), 39);
    check(
        "native.json",
        pretty(&render_all(&Format::Native, &records).into()),
    );
    for (name, profile) in [
        ("aws", Profile::Aws),
        ("ceph", Profile::Ceph),
        ("minio", Profile::Minio),
    ] {
        let opts = S3Options {
            profile,
            ..Default::default()
        };
        let recs = render_all(&Format::S3(opts.clone()), &records);
        check(&format!("s3-{name}.json"), pretty(&s3::message(recs)));
        // fsfeed's own event kinds, which a cursor gets only when it asks.
        let ext = S3Options {
            extensions: true,
            ..opts
        };
        let recs = render_all(&Format::S3(ext), &records);
        check(
            &format!("s3-{name}-extensions.json"),
            pretty(&s3::message(recs)),
        );
    }
    check(
        "hdfs.json",
        pretty(&render_all(&Format::Hdfs, &records).into()),
    );
    let sync = hdfs::txid(&records.last().unwrap().event);
    check("hdfs.pb", hdfs::events_list(&records, sync));
}
