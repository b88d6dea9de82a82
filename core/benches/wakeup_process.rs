//! Append-to-wakeup latency of a reader in another process (a read-only
//! opener blocked in `read`), p50 / p99 / max, in one run for both ways a
//! reader learns of an append:
//!
//! - `beacon`: the writer's announcer rewrites `LEDGER/head.beacon` and the
//!   reader's inotify watcher catches up at once (what fsfeed does);
//! - `poll`: the reader catches up with the writer every 20 ms, what every
//!   read-only opener did before the beacon, and what one still does when it
//!   finds no beacon (the file is removed before it opens).
//!
//! `cargo bench -p fsfeed --bench wakeup_process [-- SAMPLES]` (default 2,000
//! per way). Each op's time is the wall clock just before its append; the
//! reader subtracts it from the wall clock when its read returns (one
//! machine, one clock).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fsfeed::{CursorOptions, Durability, Ledger, Op, OpenOptions, Start};

const CHILD: &str = "FSFEED_WAKEUP_CHILD";

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The reader process: open read-only, say `ready`, then print each record's
/// append-to-wakeup latency in µs until `samples` were read.
fn child(path: &str, samples: usize) {
    let ledger = Ledger::open_read_only(path).unwrap();
    let mut c = ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Latest,
                ..Default::default()
            },
        )
        .unwrap();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut n = 0;
    while n < samples {
        let b = c.read(1000, Duration::from_secs(30)).unwrap();
        let got = now_us();
        for r in &b.records {
            let sent = r.event.op.as_ref().unwrap().time_us;
            writeln!(out, "{}", got - sent).unwrap();
            n += 1;
        }
        out.flush().unwrap();
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(ledger: &Ledger, path: &str, samples: usize, label: &str) {
    let mut reader = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{path}\n{samples}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let feeder = {
        let ledger = ledger.clone();
        std::thread::spawn(move || {
            for i in 0..samples {
                // Appends 3 to 5 ms apart: the reader is waiting for each.
                std::thread::sleep(Duration::from_micros(3000 + (i as u64 * 7919) % 2000));
                let op = Op::commit("v", "b", &format!("k{i}"), 1, "e").at(now_us());
                ledger.append(op).unwrap();
            }
        })
    };
    let mut lat: Vec<i64> = lines
        .take(samples)
        .map(|l| l.unwrap().parse().unwrap())
        .collect();
    feeder.join().unwrap();
    assert!(reader.wait().unwrap().success());
    lat.sort_unstable();
    println!(
        "wakeup_process/{label:<6} samples {:>5}  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        lat.len(),
        percentile(&lat, 0.50) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        *lat.last().unwrap() as f64 / 1000.0,
    );
}

fn main() {
    if let Ok(v) = std::env::var(CHILD) {
        let (path, n) = v.split_once('\n').unwrap();
        child(path, n.parse().unwrap());
        return;
    }
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let ledger = Ledger::open_with(
        &path,
        OpenOptions {
            durability: Durability::Buffered,
            ..Default::default()
        },
    )
    .unwrap();
    let p = path.to_str().unwrap();
    measure(&ledger, p, samples, "beacon");
    // Without the file, a new reader finds nothing to watch: it polls.
    std::fs::remove_file(path.join("head.beacon")).unwrap();
    measure(&ledger, p, samples, "poll");
}
