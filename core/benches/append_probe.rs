//! A quick probe of the append path, for A/B runs of two builds side by
//! side on a noisy machine (where criterion's statistics wander): it prints
//! one line, `N events in S s = R ev/s`, per round.
//!
//! `cargo bench -p fsfeed --bench append_probe`, with the environment:
//! - `PROBE_EVENTS` (default 300000) demo-mix workload ops, generated before timing;
//! - `PROBE_LAYOUT`: `mix` (the demo's, a third FSO; default), `obs` (every bucket object-store) or `fso` (every bucket FSO);
//! - `PROBE_DURABILITY`: `buffered` (default) or `sync`;
//! - `PROBE_MODE`: `batch` (`append_batch` of 1,000; default) or `single` (one `append` at a time);
//! - `PROBE_THREADS` (default 1): with `single`, appenders sharing the ledger
//!   (object-store ops without txids, so they may interleave);
//! - `PROBE_ROUNDS` (default 1): rounds, each on a fresh ledger;
//! - `PROBE_SEGMENTS`: `on` (default: the writer seals Parquet segments in
//!   the background) or `off`.
//!
//! Each line also gives the calling thread's CPU time (Linux), steadier
//! than wall time on a shared VM; with one caller it is the ledger's own
//! work, without RocksDB's background flushes and compactions.
//!
//! The session notes of the appender-led group commit, the sparse time
//! index and the live index compared builds with medians of 7 interleaved
//! runs of this probe.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use fsfeed::workload::Workload;
use fsfeed::{Durability, Layout, Ledger, Op, OpenOptions};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn number(name: &str, default: usize) -> usize {
    env(name, &default.to_string())
        .parse()
        .unwrap_or_else(|_| panic!("{name} must be a whole number"))
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`):
/// unlike wall time, not inflated by the moments a noisy VM host takes
/// the CPU away.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let n = number("PROBE_EVENTS", 300_000);
    let layout = match env("PROBE_LAYOUT", "mix").as_str() {
        "mix" => None,
        "obs" => Some(Layout::Obs),
        "fso" => Some(Layout::Fso),
        other => panic!("PROBE_LAYOUT is mix, obs or fso, not {other}"),
    };
    let durability = match env("PROBE_DURABILITY", "buffered").as_str() {
        "buffered" => Durability::Buffered,
        "sync" => Durability::Sync,
        other => panic!("PROBE_DURABILITY is buffered or sync, not {other}"),
    };
    let single = match env("PROBE_MODE", "batch").as_str() {
        "batch" => false,
        "single" => true,
        other => panic!("PROBE_MODE is batch or single, not {other}"),
    };
    let threads = number("PROBE_THREADS", 1).max(1);
    let segments = match env("PROBE_SEGMENTS", "on").as_str() {
        "on" => true,
        "off" => false,
        other => panic!("PROBE_SEGMENTS is on or off, not {other}"),
    };
    let ops: Vec<Op> = Workload::new(1, 1_767_225_600_000_000)
        .take(n)
        .map(|o| match layout {
            Some(l) => o.with_layout(l),
            None => o,
        })
        .collect();
    for _ in 0..number("PROBE_ROUNDS", 1) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let l = Ledger::open_with(
            dir.path(),
            OpenOptions {
                durability,
                segments: Some(segments),
                ..Default::default()
            },
        )
        .expect("open");
        let t = Instant::now();
        let cpu = thread_cpu_ns();
        if single && threads > 1 {
            let per = n / threads;
            std::thread::scope(|sc| {
                for k in 0..threads {
                    let (l, ops) = (l.clone(), &ops);
                    sc.spawn(move || {
                        for o in &ops[k * per..(k + 1) * per] {
                            let mut o = o.clone().with_layout(Layout::Obs);
                            o.txid = None;
                            l.append(o).expect("append");
                        }
                    });
                }
            });
        } else if single {
            for o in &ops {
                l.append(o.clone()).expect("append");
            }
        } else {
            for c in ops.chunks(1000) {
                l.append_batch(c.to_vec()).expect("append");
            }
        }
        let s = t.elapsed().as_secs_f64();
        print!("{n} events in {s:.3} s = {:.0} ev/s", n as f64 / s);
        // The calling thread's CPU time: with one caller, the ledger's own
        // work (RocksDB's flushes and compactions run on other threads).
        match (cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => {
                let c = (b - a) as f64 / 1e9;
                println!("; caller CPU {c:.3} s = {:.0} ev/CPU-s", n as f64 / c)
            }
            _ => println!(),
        }
    }
}
