//! History throughput (feature `arrow`): events per second into Arrow record
//! batches vs decoding the same events with prost (`Ledger::scan`), in one run.
//!
//! `cargo bench -p fsfeed --features arrow --bench history`

/// As the CLI and the bindings ship: mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

mod common;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fsfeed::history::HistoryOptions;
use fsfeed::workload::Workload;
use fsfeed::Durability;

const N: u64 = 300_000;

fn bench(c: &mut Criterion) {
    let (_dir, l) = common::ledger(Durability::Buffered, None);
    let ops: Vec<_> = Workload::new(5, 1_767_225_600_000_000)
        .take(N as usize)
        .collect();
    for chunk in ops.chunks(10_000) {
        l.append_batch(chunk.to_vec()).unwrap();
    }
    let mut g = c.benchmark_group("history");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(N));
    g.bench_function("arrow_batches", |b| {
        b.iter(|| {
            let h = l.history(HistoryOptions::default()).unwrap();
            let rows: usize = h.map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows as u64, N);
        })
    });
    g.bench_function("prost_scan_baseline", |b| {
        b.iter(|| {
            let mut from = 1;
            let mut n = 0;
            loop {
                let evs = l.scan(from, 65_536).unwrap();
                let Some(last) = evs.last() else { break };
                from = last.seq + 1;
                n += evs.len();
            }
            assert_eq!(n as u64, N);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
