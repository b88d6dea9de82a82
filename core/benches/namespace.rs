//! Shadow namespace figures, side by side in one run:
//! - the append of a directory rename whose subtree holds 1 file vs N files
//!   (default N = 1,000,000): the ratio should be near 1 (O(1) rename);
//! - expanding that rename through a cursor: records per second and resident
//!   memory growth while it streams;
//! - `path_at` cost by depth (1, 8, 32, 128);
//! - a non-recursive delete of a directory whose retained history holds N
//!   closed children (created and deleted), with one open child last in name
//!   order, so it fails with `directory_not_empty` and writes nothing. Format
//!   2 walked every closed version to learn that (0.96 ms for 1,000, 110 ms
//!   for 100,000); format 3 reads the open edges only, and what it still
//!   skips is the deletes of the closed ones that compaction has not yet
//!   dropped (RocksDB tombstones; all of them here, in the memtable).
//!
//! `cargo bench -p fsfeed --bench namespace [-- N]`. The cost of namespace
//! tracking on plain appends is the criterion group `namespace_cost` in the
//! `ledger` bench.

/// As the CLI and the bindings ship: mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use fsfeed::{CursorOptions, Durability, ExpandOptions, Layout, Ledger, Op, Start};

const T0: i64 = 1_767_225_600_000_000;

mod common;
use common::rss_mib;

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of appending a rename of `dir` back and forth.
fn rename_cost(l: &Ledger, dir: &str, rounds: usize) -> Duration {
    let other = format!("{dir}-renamed");
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (from, to) = if i % 2 == 0 {
            (dir, other.as_str())
        } else {
            (other.as_str(), dir)
        };
        let op = fso(Op::rename("v", "b", from, to));
        let t = Instant::now();
        l.append(op).unwrap();
        times.push(t.elapsed());
    }
    median(times)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let (_dir, l) = common::ledger(Durability::Buffered, None);
    l.append(fso(Op::commit("v", "b", "small/f", 1, "e")))
        .unwrap();
    let start = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        // 1000 files per directory, two levels.
        batch.push(fso(Op::commit(
            "v",
            "b",
            &format!("big/d{:04}/f{:04}", i / 1000, i % 1000),
            1,
            "e",
        )));
        if batch.len() == 10_000 {
            l.append_batch(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        l.append_batch(batch).unwrap();
    }
    eprintln!("built {n} files in {:.1}s", start.elapsed().as_secs_f64());

    // Interleave the two so machine noise hits both alike.
    let mut small = Vec::new();
    let mut big = Vec::new();
    for _ in 0..10 {
        small.push(rename_cost(&l, "small", 20));
        big.push(rename_cost(&l, "big", 20));
    }
    let (s, b) = (median(small), median(big));
    println!(
        "rename append: subtree of 1 file {:?}, of {n} files {:?}: ratio {:.2}",
        s,
        b,
        b.as_secs_f64() / s.as_secs_f64()
    );

    // Expand one rename of the big tree.
    let seq = l.append(fso(Op::rename("v", "b", "big", "big2"))).unwrap();
    let opts = CursorOptions {
        start: Start::Seq(seq),
        expand: ExpandOptions {
            renames: true,
            deletes: false,
        },
        ..Default::default()
    };
    let mut c = l.cursor(None, opts).unwrap();
    let rss0 = rss_mib();
    let mut peak = rss0;
    let mut records = 0usize;
    let t = Instant::now();
    while records < 2 * n {
        let got = c.read(10_000, Duration::ZERO).unwrap().records.len();
        if got == 0 {
            break;
        }
        records += got;
        peak = peak.max(rss_mib());
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "expansion: {records} records in {secs:.2}s = {:.0} records/s; RSS {:.0} MiB before, peak {:.0} MiB (growth {:.0} MiB)",
        records as f64 / secs,
        rss0,
        peak,
        peak - rss0
    );

    // path_at by depth.
    for depth in [1usize, 8, 32, 128] {
        let key = (0..depth)
            .map(|i| format!("p{i}"))
            .collect::<Vec<_>>()
            .join("/")
            + "/leaf";
        let s = l.append(fso(Op::commit("v", "b", &key, 1, "e"))).unwrap();
        let (oid, _) = l.resolve_at("v", "b", &key, s).unwrap().unwrap();
        let rounds = 20_000;
        let t = Instant::now();
        for _ in 0..rounds {
            assert!(l.path_at(oid, s).unwrap().is_some());
        }
        println!(
            "path_at depth {depth:>3}: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / rounds as f64
        );
    }

    // rmdir of a churned directory, by how many closed children it retains.
    let mut line = Vec::new();
    for churned in [0usize, 1_000, 100_000] {
        let dir = format!("churn{churned}");
        for start in (0..churned).step_by(10_000) {
            let end = (start + 10_000).min(churned);
            let files = |i: usize| format!("{dir}/f{i:06}");
            l.append_batch(
                (start..end)
                    .map(|i| fso(Op::create_file("v", "b", &files(i))))
                    .collect(),
            )
            .unwrap();
            l.append_batch(
                (start..end)
                    .map(|i| fso(Op::delete("v", "b", &files(i), false)))
                    .collect(),
            )
            .unwrap();
        }
        l.append(fso(Op::commit("v", "b", &format!("{dir}/zzz"), 1, "e")))
            .unwrap();
        let times: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let e = l
                    .append(fso(Op::delete("v", "b", &dir, false)))
                    .unwrap_err();
                assert_eq!(e.code(), "directory_not_empty");
                t.elapsed()
            })
            .collect();
        line.push(format!("{churned} closed children {:?}", median(times)));
    }
    println!("non-recursive delete of a directory: {}", line.join(", "));
}
