//! Ceph's PubSub performance counters, under their own names, served in
//! Prometheus text at `GET /metrics`:
//!
//! | name | counted |
//! |---|---|
//! | `pubsub_event_triggered` | per event with at least one notification (topic) associated |
//! | `pubsub_event_lost` | per such event that no subscription receives |
//! | `pubsub_store_ok` | per event and subscription that receives it (it is kept for that subscription) |
//! | `pubsub_store_fail` | per event and subscription that could not keep it (retention overtook the subscription) |
//! | `pubsub_push_ok` | per event and push subscription, acknowledged by the endpoint |
//! | `pubsub_push_fail` | per event and push subscription, in a failed push |
//! | `pubsub_push_pending` | gauge: events pushed and not yet acknowledged or failed |
//! | `pubsub_event_expired` | per event and subscription, dropped unacked after `events_retention_days` (fsfeed) |
//! | `pubsub_event_acked` | per event acked by a client (fsfeed) |
//! | `pubsub_event_pulled` | per event returned by a pull (fsfeed) |
//!
//! The names are Ceph's, without Prometheus' `_total` suffix, so that a
//! dashboard built for Ceph's `perf dump` names finds them.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `pubsub_event_triggered`.
    pub event_triggered: AtomicU64,
    /// `pubsub_event_lost`.
    pub event_lost: AtomicU64,
    /// `pubsub_store_ok`.
    pub store_ok: AtomicU64,
    /// `pubsub_store_fail`.
    pub store_fail: AtomicU64,
    /// `pubsub_push_ok`.
    pub push_ok: AtomicU64,
    /// `pubsub_push_fail`.
    pub push_fail: AtomicU64,
    /// `pubsub_push_pending`.
    pub push_pending: AtomicI64,
    /// `pubsub_event_expired`.
    pub event_expired: AtomicU64,
    /// `pubsub_event_acked`.
    pub event_acked: AtomicU64,
    /// `pubsub_event_pulled`.
    pub event_pulled: AtomicU64,
}

/// Add `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Prometheus text exposition (format 0.0.4).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "pubsub_event_triggered",
                "Events with at least one pubsub topic associated",
                &self.event_triggered,
            ),
            (
                "pubsub_event_lost",
                "Events with topics that no subscription received",
                &self.event_lost,
            ),
            (
                "pubsub_store_ok",
                "Events kept for a subscription, per subscription",
                &self.store_ok,
            ),
            (
                "pubsub_store_fail",
                "Events a subscription could not keep, per subscription",
                &self.store_fail,
            ),
            (
                "pubsub_push_ok",
                "Events pushed and acknowledged, per subscription",
                &self.push_ok,
            ),
            (
                "pubsub_push_fail",
                "Events in failed pushes, per subscription",
                &self.push_fail,
            ),
            (
                "pubsub_event_expired",
                "Events dropped unacked after events_retention_days, per subscription",
                &self.event_expired,
            ),
            (
                "pubsub_event_acked",
                "Events acked by clients",
                &self.event_acked,
            ),
            (
                "pubsub_event_pulled",
                "Events returned by pulls",
                &self.event_pulled,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP pubsub_push_pending Events pushed and not yet acknowledged or failed"
        );
        let _ = writeln!(out, "# TYPE pubsub_push_pending gauge");
        let _ = writeln!(
            out,
            "pubsub_push_pending {}",
            self.push_pending.load(Ordering::Relaxed)
        );
        out
    }
}
