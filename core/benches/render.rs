//! Rendering throughput, each against a plain `serde_json::to_writer` of an
//! equivalent derived struct in the same run:
//! - `s3/fsfeed`: S3 records rendered from stored events (key encoding, time
//!   formatting, every field) vs `s3/derived_baseline`: serialising an
//!   already-built struct with the same fields and values;
//! - `hdfs_proto`: records into `EventsListProto` bytes.

/// As the CLI and the bindings ship: mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fsfeed::render::s3::{S3Options, S3};
use fsfeed::render::{hdfs, Renderer};
use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, Durability, Ledger, OpenOptions, Record};
use serde::Serialize;

const N: usize = 10_000;

fn records() -> (tempfile::TempDir, Vec<Record>) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_with(
        dir.path(),
        OpenOptions {
            durability: Durability::None,
            ..Default::default()
        },
    )
    .unwrap();
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

/// The same fields and values as an S3 record, as plain owned data.
#[derive(Serialize)]
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
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Id {
    principal_id: String,
}
#[derive(Serialize)]
struct Req {
    #[serde(rename = "sourceIPAddress")]
    ip: String,
}
#[derive(Serialize)]
struct Resp {
    #[serde(rename = "x-amz-request-id")]
    a: String,
    #[serde(rename = "x-amz-id-2")]
    b: String,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    s3_schema_version: String,
    configuration_id: String,
    bucket: Bucket,
    object: Object,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bucket {
    name: String,
    owner_identity: Id,
    arn: String,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    key: String,
    size: u64,
    #[serde(rename = "eTag")]
    etag: String,
    sequencer: String,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ext {
    seq: u64,
    sub: u32,
    event_id: String,
    op: String,
    layout: String,
    is_directory: bool,
    is_recursive: bool,
    raw_key: String,
}

fn flat(v: &serde_json::Value) -> Flat {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Flat {
        event_version: s("/eventVersion"),
        event_source: s("/eventSource"),
        aws_region: s("/awsRegion"),
        event_time: s("/eventTime"),
        event_name: s("/eventName"),
        user_identity: Id {
            principal_id: s("/userIdentity/principalId"),
        },
        request_parameters: Req {
            ip: s("/requestParameters/sourceIPAddress"),
        },
        response_elements: Resp {
            a: s("/responseElements/x-amz-request-id"),
            b: s("/responseElements/x-amz-id-2"),
        },
        s3: Entity {
            s3_schema_version: s("/s3/s3SchemaVersion"),
            configuration_id: s("/s3/configurationId"),
            bucket: Bucket {
                name: s("/s3/bucket/name"),
                owner_identity: Id {
                    principal_id: s("/s3/bucket/ownerIdentity/principalId"),
                },
                arn: s("/s3/bucket/arn"),
            },
            object: Object {
                key: s("/s3/object/key"),
                size: v
                    .pointer("/s3/object/size")
                    .and_then(|x| x.as_u64())
                    .unwrap_or(0),
                etag: s("/s3/object/eTag"),
                sequencer: s("/s3/object/sequencer"),
            },
        },
        fsfeed_event_data: Ext {
            seq: v
                .pointer("/fsfeedEventData/seq")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
            sub: 0,
            event_id: s("/fsfeedEventData/eventId"),
            op: s("/fsfeedEventData/op"),
            layout: s("/fsfeedEventData/layout"),
            is_directory: false,
            is_recursive: false,
            raw_key: s("/fsfeedEventData/rawKey"),
        },
    }
}

fn bench(c: &mut Criterion) {
    let (_dir, recs) = records();
    let s3 = S3::new(S3Options::default());
    let baseline: Vec<Flat> = recs
        .iter()
        .filter_map(|r| s3.render(r))
        .map(|v| flat(&v))
        .collect();
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
