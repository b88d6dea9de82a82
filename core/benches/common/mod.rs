//! Helpers shared by the benchmarks (each uses some of them).
#![allow(dead_code)]

use fsfeed::{Durability, Ledger, OpenOptions, Retention};

/// A new ledger in a temporary directory (dropping the directory removes it).
pub fn ledger(durability: Durability, retention: Option<Retention>) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_with(
        dir.path(),
        OpenOptions {
            durability,
            retention,
            ..Default::default()
        },
    )
    .unwrap();
    (dir, l)
}

/// Resident memory of this process, MiB (Linux; NaN elsewhere).
pub fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
