//! Rendering throughput, each against a plain `serde_json::to_writer` of an
//! equivalent derived struct in the same run:
//! - `s3/fsfeed`: S3 records rendered from stored events (key encoding, time
//!   formatting, every field) vs `s3/derived_baseline`: serialising an
//!   already-built struct with the same fields and values (checked to write
//!   the same bytes);
//! - `hdfs_proto/events_list`: records into `EventsListProto` bytes vs
//!   `hdfs_proto/prost_baseline`: encoding the already-built message.

/// As the CLI and the bindings ship: mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

mod common;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fsfeed::render::s3::{S3Options, S3};
use fsfeed::render::{hdfs, Renderer};
use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, Durability, Record};
use prost::Message;
use serde::{Deserialize, Serialize};

const N: usize = 10_000;

fn records() -> (tempfile::TempDir, Vec<Record>) {
    let (dir, l) = common::ledger(Durability::None, None);
    let ops: Vec<_> = Workload::new(3, 1_767_225_600_000_000)
        .take(N + 100)
        .collect();
    l.append_batch(ops).unwrap();
    let mut c = l.cursor(None, CursorOptions::default()).unwrap();
    let mut out = Vec::new();
    while out.len() < N {
        out.extend(c.read(N, Duration::ZERO).unwrap().records);
    }
    out.truncate(N);
    (dir, out)
}

/// The same fields and values as an S3 record, as plain owned data: the
/// baseline's output is checked to be byte-identical to fsfeed's.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flat {
    event_version: String,
    event_source: String,
    aws_region: String,
    event_time: String,
    event_name: String,
    user_identity: Id,
    request_parameters: Req,
    response_elements: Resp,
    s3: Entity,
    fsfeed_event_data: Ext,
}
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Id {
    principal_id: String,
}
#[derive(Serialize, Deserialize)]
struct Req {
    #[serde(rename = "sourceIPAddress")]
    ip: String,
}
#[derive(Serialize, Deserialize)]
struct Resp {
    #[serde(rename = "x-amz-request-id")]
    a: String,
    #[serde(rename = "x-amz-id-2")]
    b: String,
}
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    s3_schema_version: String,
    configuration_id: String,
    bucket: Bucket,
    object: Object,
}
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bucket {
    name: String,
    owner_identity: Id,
    arn: String,
}
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    sequencer: String,
}
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ext {
    seq: u64,
    sub: u32,
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    txid: Option<u64>,
    op: String,
    layout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expanded_from: Option<String>,
    is_directory: bool,
    is_recursive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_overwrite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rename_from_key: Option<String>,
    raw_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync: Option<bool>,
}

fn bench(c: &mut Criterion) {
    let (_dir, recs) = records();
    // Extensions on: every op kind with an S3 name renders, as before they
    // were opt-in, so the figure compares with earlier runs.
    let s3 = S3::new(S3Options {
        extensions: true,
        ..Default::default()
    });
    let baseline: Vec<Flat> = recs
        .iter()
        .filter_map(|r| s3.render(r))
        .map(|v| serde_json::from_value(v).expect("the baseline has every field"))
        .collect();
    // Same bytes out, or the comparison is not like for like.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in &recs {
        s3.render_to(r, &mut ours);
    }
    for f in &baseline {
        serde_json::to_writer(&mut theirs, f).unwrap();
    }
    assert_eq!(ours, theirs, "baseline output differs from fsfeed's");
    let rendered = baseline.len() as u64;
    let mut g = c.benchmark_group("s3");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(rendered));
    let mut buf = Vec::with_capacity(1 << 20);
    g.bench_function("fsfeed", |b| {
        b.iter(|| {
            buf.clear();
            for r in &recs {
                s3.render_to(r, &mut buf);
            }
            buf.len()
        })
    });
    g.bench_function("derived_baseline", |b| {
        b.iter(|| {
            buf.clear();
            for f in &baseline {
                serde_json::to_writer(&mut buf, f).unwrap();
            }
            buf.len()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("hdfs_proto");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("events_list", |b| {
        b.iter(|| hdfs::events_list(&recs, 1).len())
    });
    let built = hdfs::decode_events_list(&hdfs::events_list(&recs, 1)).unwrap();
    assert_eq!(built.encode_to_vec(), hdfs::events_list(&recs, 1));
    g.bench_function("prost_baseline", |b| b.iter(|| built.encode_to_vec().len()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
