//! Throughput of the ledger, with the physical limit in the same run.
//!
//! `cargo bench -p fsfeed --bench ledger`. Groups:
//! - `append/{sync,buffered}/batch-{1,100,1000}`: ops per second;
//! - `append_concurrent_sync/{1,4,16}`: single-op sync appenders sharing group commits;
//! - `retention/{none,active}`: buffered batch-1000 appends, with a max-events
//!   window that deletes in every batch vs none;
//! - `raw_rocksdb/buffered/batch-1000`: `WriteBatch` puts of the same bytes
//!   straight into RocksDB (same options, no fsync), the physical limit;
//! - `namespace_floor/{events,events+ns}/batch-1000`: raw RocksDB batches of
//!   the bytes an append writes (event, a time key per 64), without and with the
//!   shadow namespace keys the same op writes in an FSO bucket (format 3
//!   shapes: 2 for a create, 5 for a delete, 7 for a rename), and no lookups:
//!   the least any implementation that keeps the namespace in the append's
//!   batch can cost, to set beside `namespace_cost`;
//! - `scan`: events read per second through a cursor.

/// As the CLI and the bindings ship: mimalloc (a perf profile of batch appends: 140k events/s with glibc malloc, 275k with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::ledger;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, Durability, Layout, Op, Retention, Start};
use prost::Message;

const T0: i64 = 1_767_225_600_000_000;

/// Workload ops without txids, all in OBS layout: the plain ledger, no
/// shadow namespace, so a pool of them can be appended again and again.
fn ops(n: usize, seed: u64) -> Vec<Op> {
    Workload::new(seed, T0)
        .take(n)
        .map(|o| Op { txid: None, ..o }.with_layout(Layout::Obs))
        .collect()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, d) in [
        ("sync", Durability::Sync),
        ("buffered", Durability::Buffered),
    ] {
        for batch in [1usize, 100, 1000] {
            let pool = ops(batch * 64, 1);
            let (_dir, l) = ledger(d, None);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_with_input(
                BenchmarkId::new(name, format!("batch-{batch}")),
                &batch,
                |b, &batch| {
                    let mut i = 0;
                    // Cloning the ops is the caller's work: not timed.
                    b.iter_batched(
                        || {
                            let start = (i % 64) * batch;
                            i += 1;
                            pool[start..start + batch].to_vec()
                        },
                        |ops| l.append_batch(ops).unwrap(),
                        criterion::BatchSize::SmallInput,
                    )
                },
            );
        }
    }
    g.finish();
}

fn concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_concurrent_sync");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let pool = Arc::new(ops(1024, 2));
    for threads in [1usize, 4, 16] {
        let (_dir, l) = ledger(Durability::Sync, None);
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let l = l.clone();
                        let pool = pool.clone();
                        std::thread::spawn(move || {
                            for i in 0..iters as usize {
                                l.append(pool[(t * 64 + i) % pool.len()].clone()).unwrap();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn retention(c: &mut Criterion) {
    let mut g = c.benchmark_group("retention");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let pool = ops(64_000, 3);
    g.throughput(Throughput::Elements(1000));
    for (name, r) in [
        ("none", None),
        ("active", Some(Retention::default().with_max_events(20_000))),
    ] {
        let (_dir, l) = ledger(Durability::Buffered, r);
        // Fill past the window so every measured batch deletes.
        for chunk in pool.chunks(1000).take(30) {
            l.append_batch(chunk.to_vec()).unwrap();
        }
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter_batched(
                || {
                    let s = (i % 64) * 1000;
                    i += 1;
                    pool[s..s + 1000].to_vec()
                },
                |ops| l.append_batch(ops).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn raw_rocksdb(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_rocksdb");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    // The same bytes the ledger stores: encoded events with seq keys.
    let values: Vec<Vec<u8>> = ops(64_000, 1)
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            fsfeed::Event {
                seq: i as u64 + 1,
                // Format 7 stores no path when it is the key.
                path: String::new(),
                to_path: String::new(),
                offset: 0,
                op: Some(op),
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&o, dir.path()).unwrap();
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(false);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("buffered/batch-1000", |b| {
        let mut seq = 0u64;
        b.iter(|| {
            let mut batch = rocksdb::WriteBatch::default();
            for _ in 0..1000 {
                let v = &values[(seq % values.len() as u64) as usize];
                seq += 1;
                batch.put(seq.to_be_bytes(), v);
            }
            db.write_opt(batch, &w).unwrap();
        })
    });
    g.finish();
}

/// The writes of one op as `(cf, key, value)`; `None`: a delete.
type RawWrites = Vec<(usize, Vec<u8>, Option<Vec<u8>>)>;

/// What an append of `op` at `seq` writes: the event, its time key (one per
/// 64 seqs) and, with `ns`, the namespace keys of an FSO bucket in format
/// 3's shapes (lengths as stored; the lookups that decide them are left out).
fn raw_writes(op: &Op, seq: u64, ns: bool) -> RawWrites {
    use fsfeed::op::Kind;
    let event = fsfeed::Event {
        seq,
        // Format 7 stores no path when it is the key.
        path: String::new(),
        to_path: String::new(),
        offset: 0,
        op: Some(op.clone()),
        ..Default::default()
    }
    .encode_to_vec();
    let mut out: RawWrites = vec![(0, seq.to_be_bytes().to_vec(), Some(event))];
    // Format 4: one time key per 64 seqs.
    if seq % 64 == 0 {
        let mut time = op.time_us.to_be_bytes().to_vec();
        time.extend_from_slice(&seq.to_be_bytes());
        out.push((1, time, Some(vec![1])));
    }
    if !ns {
        return out;
    }
    let (dir, name) = op.key.rsplit_once('/').unwrap_or(("", &op.key));
    let parent = dir
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 64
        + 1;
    let f = |name: &str, deleted: u64| {
        let mut k = b"F".to_vec();
        k.extend_from_slice(format!("{}\0{}\0", op.volume, op.bucket).as_bytes());
        k.extend_from_slice(&parent.to_be_bytes());
        k.extend_from_slice(name.as_bytes());
        k.push(0);
        k.extend_from_slice(&deleted.to_be_bytes());
        k
    };
    let r = |object: u64, deleted: u64| {
        let mut k = b"R".to_vec();
        k.extend_from_slice(&object.to_be_bytes());
        k.extend_from_slice(&deleted.to_be_bytes());
        k
    };
    // Values as long as format 3's: an F/G value holds ids and seqs, an R
    // value the whole edge.
    let f_val = vec![7u8; 14];
    let r_val = vec![7u8; 30 + op.volume.len() + op.bucket.len() + name.len()];
    let old = (seq / 2) << 12;
    let close = |out: &mut RawWrites| {
        out.push((2, f(name, u64::MAX), None));
        let mut g = f(name, seq);
        g[0] = b'G';
        out.push((2, g, Some(f_val.clone())));
        out.push((2, r(old, u64::MAX), None));
        out.push((2, r(old, seq), Some(r_val.clone())));
        let mut c = b"C".to_vec();
        c.extend_from_slice(&seq.to_be_bytes());
        c.extend_from_slice(&old.to_be_bytes());
        out.push((2, c, Some(vec![])));
    };
    match op.kind.as_ref() {
        Some(Kind::CreateFile(_)) | Some(Kind::CreateDirectory(_)) => {
            out.push((2, f(name, u64::MAX), Some(f_val.clone())));
            out.push((2, r(seq << 12, u64::MAX), Some(r_val.clone())));
        }
        Some(Kind::Delete(_)) => close(&mut out),
        Some(Kind::Rename(_)) => {
            close(&mut out);
            out.push((
                2,
                f(&format!("{name}.moved"), u64::MAX),
                Some(f_val.clone()),
            ));
            out.push((2, r(old, u64::MAX), Some(r_val.clone())));
        }
        _ => {}
    }
    out
}

fn namespace_floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("namespace_floor");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let pool = ops(64_000, 9);
    g.throughput(Throughput::Elements(1000));
    for (name, ns) in [("events", false), ("events+ns", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open_cf(&o, dir.path(), ["events", "time", "ns"]).unwrap();
        let cfs: Vec<_> = ["events", "time", "ns"]
            .iter()
            .map(|n| db.cf_handle(n).unwrap())
            .collect();
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(false);
        let mut seq = 0u64;
        g.bench_function(format!("{name}/batch-1000"), |b| {
            b.iter_batched(
                || {
                    (0..1000)
                        .map(|_| {
                            seq += 1;
                            raw_writes(&pool[(seq % pool.len() as u64) as usize], seq, ns)
                        })
                        .collect::<Vec<_>>()
                },
                |writes| {
                    let mut batch = rocksdb::WriteBatch::default();
                    // The ledger writes a group's namespace keys in key order
                    // (the memtable inserts neighbours faster); so does this.
                    let mut ns: Vec<_> = writes.iter().flatten().filter(|w| w.0 == 2).collect();
                    ns.sort_by(|a, b| a.1.cmp(&b.1));
                    // Format 6 stores a run of 32 events per value: so do
                    // these (a run cut by the batch's edge is put as it is).
                    let mut blocks: Vec<(usize, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
                    for (_, k, v) in writes.iter().flatten().filter(|w| w.0 == 0) {
                        let seq = u64::from_be_bytes(k.as_slice().try_into().unwrap());
                        let run = (seq - 1) / 32 * 32 + 1;
                        if blocks.last().is_none_or(|b| b.1 != run.to_be_bytes()) {
                            blocks.push((0, run.to_be_bytes().to_vec(), Some(vec![0])));
                        }
                        let block = blocks.last_mut().unwrap().2.as_mut().unwrap();
                        let event = v.as_ref().unwrap();
                        prost::encoding::encode_varint(event.len() as u64, block);
                        block.extend_from_slice(event);
                    }
                    let time = writes.iter().flatten().filter(|w| w.0 == 1);
                    for (cf, k, v) in blocks.iter().chain(time).chain(ns) {
                        match v {
                            Some(v) => batch.put_cf(cfs[*cf], k, v),
                            None => batch.delete_cf(cfs[*cf], k),
                        }
                    }
                    db.write_opt(batch, &w).unwrap();
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let (_dir, l) = ledger(Durability::None, None);
    for chunk in ops(100_000, 4).chunks(1000) {
        l.append_batch(chunk.to_vec()).unwrap();
    }
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("cursor_read_100k", |b| {
        b.iter(|| {
            let mut c = l
                .cursor(
                    None,
                    CursorOptions {
                        start: Start::Earliest,
                        ..Default::default()
                    },
                )
                .unwrap();
            let mut n = 0;
            while n < 100_000 {
                n += c.read(1000, Duration::ZERO).unwrap().records.len();
            }
        })
    });
    g.finish();
}

/// The cost of the shadow namespace on plain appends: the same workload with
/// every bucket FSO (tracked) vs OBS (not), fresh ops each iteration.
fn namespace_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("namespace_cost");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1000));
    for (name, layout) in [("obs", Layout::Obs), ("fso", Layout::Fso)] {
        let (_dir, l) = ledger(Durability::Buffered, None);
        let mut gen = Workload::new(9, T0);
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (&mut gen)
                        .take(1000)
                        .map(|o| Op { txid: None, ..o }.with_layout(layout))
                        .collect::<Vec<_>>()
                },
                |batch| l.append_batch(batch).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    append,
    concurrent,
    retention,
    raw_rocksdb,
    scan,
    namespace_cost,
    namespace_floor
);
criterion_main!(benches);
