//! Two figures criterion does not give: the append-to-wakeup latency of a
//! blocked reader (p50 / p99 over many samples), and resident memory after
//! appending many events. `cargo bench -p fsfeed --bench wakeup_memory
//! [-- EVENTS]` (default 10,000,000 events for the memory figure).

/// As the CLI and the bindings ship: mimalloc (a perf profile of batch appends: 140k events/s with glibc malloc, 275k with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, Durability, Op, Start};

mod common;
use common::rss_mib;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let (_dir, ledger) = common::ledger(Durability::Buffered, None);

    // Wakeup latency: a reader blocked in read(); the writer appends one op
    // and records the time; the reader records when it got it.
    let samples = 2000;
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut cursor = ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Latest,
                ..Default::default()
            },
        )
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(samples);
        while lat.len() < samples {
            let b = cursor.read(1, Duration::from_secs(10)).unwrap();
            let got = Instant::now();
            if !b.records.is_empty() {
                let sent: Instant = rx.recv().unwrap();
                lat.push(got.saturating_duration_since(sent));
            }
        }
        lat
    });
    let mut ops = Workload::new(5, 1_767_225_600_000_000);
    for _ in 0..samples {
        let op = ops.next().unwrap();
        std::thread::sleep(Duration::from_micros(300));
        let sent = Instant::now();
        tx.send(sent).unwrap();
        ledger.append(op).unwrap();
    }
    let mut lat = reader.join().unwrap();
    lat.sort();
    // `sent` is taken before the append, so this includes the write itself.
    println!(
        "wakeup (append start -> reader has the record, buffered): p50 {:?} p99 {:?} max {:?} over {} samples",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
        lat.len()
    );

    // Memory after many appends.
    let rss0 = rss_mib();
    let start = Instant::now();
    let mut batch: Vec<Op> = Vec::with_capacity(1000);
    for (i, op) in Workload::new(6, 1_767_225_600_000_000)
        .take(events)
        .enumerate()
    {
        batch.push(Op { txid: None, ..op });
        if batch.len() == 1000 {
            ledger.append_batch(std::mem::take(&mut batch)).unwrap();
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!("{} events, RSS {:.0} MiB", i + 1, rss_mib());
        }
    }
    if !batch.is_empty() {
        ledger.append_batch(batch).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "memory: RSS {:.0} MiB before, {:.0} MiB after {} events ({:.0} events/s buffered batch-1000 incl. op generation)",
        rss0,
        rss_mib(),
        events,
        events as f64 / secs
    );
}
