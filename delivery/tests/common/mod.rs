//! Shared helpers of the delivery tests: a ledger of workload events, what
//! a publisher should deliver, and the check of what arrived.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use fsfeed::workload::Workload;
use fsfeed::Ledger;
pub use fsfeed_delivery::testkit::{check, expected};

/// A ledger holding `n` workload ops.
pub fn ledger_with(n: usize) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("ledger")).unwrap();
    append(&ledger, 0, n);
    (dir, ledger)
}

/// Append ops `from..from+n` of the seed-7 workload.
pub fn append(ledger: &Ledger, from: usize, n: usize) {
    let ops: Vec<_> = Workload::new(7, 1_767_225_600_000_000)
        .skip(from)
        .take(n)
        .collect();
    for chunk in ops.chunks(1000) {
        ledger.append_batch(chunk.to_vec()).unwrap();
    }
}

/// Wait until `f` is true.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
