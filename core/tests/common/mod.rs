//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use fsfeed::{Durability, Ledger, Op, OpenOptions, Retention};

/// Op time of the first test op: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000_000;

/// `n` commit ops on distinct keys, one millisecond apart from `T0 + start_ms`.
pub fn commits(start: u64, n: u64) -> Vec<Op> {
    (start..start + n)
        .map(|i| {
            Op::commit("vol1", "b1", &format!("dir/k{i:06}"), i, "etag").at(T0 + i as i64 * 1000)
        })
        .collect()
}

/// A ledger with the given durability and retention.
pub fn open(dir: &Path, durability: Durability, retention: Option<Retention>) -> Ledger {
    Ledger::open_with(
        dir,
        OpenOptions {
            durability,
            retention,
            ..Default::default()
        },
    )
    .expect("open ledger")
}

/// Every retained (seq, key) in order.
pub fn all_keys(ledger: &Ledger) -> Vec<(u64, String)> {
    ledger
        .scan(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.path))
        .collect()
}
