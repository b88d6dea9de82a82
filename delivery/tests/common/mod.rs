//! The delivery tests' workload: seed 7 of `fsfeed::workload`, through the
//! shared helpers of `fsfeed_delivery::testkit`.
#![allow(dead_code, unused_imports)]

use fsfeed::Ledger;
pub use fsfeed_delivery::testkit::{caught_up, check, expected, publisher, wait_until};

/// A ledger holding `n` workload ops.
pub fn ledger_with(n: usize) -> (tempfile::TempDir, Ledger) {
    fsfeed_delivery::testkit::ledger_with(7, n)
}

/// Append ops `from..from+n` of the workload.
pub fn append(ledger: &Ledger, from: usize, n: usize) {
    fsfeed_delivery::testkit::append_workload(ledger, 7, from, n)
}
