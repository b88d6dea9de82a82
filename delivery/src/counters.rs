//! Counters per publisher and in total, with Ceph's PubSub names where they
//! fit (`pubsub_event_triggered`, `pubsub_event_lost`, `pubsub_push_ok`,
//! `pubsub_push_fail`, `pubsub_push_pending`), plus bytes and retries. They
//! are in `fsfeed publish status --json` and, on `--metrics`, in
//! Prometheus text:
//!
//! - `fsfeed_publisher_<counter>_total{publisher="NAME"}` per publisher
//!   (`fsfeed_publisher_push_pending{publisher}` for the gauge);
//! - `fsfeed_publishers_<counter>_total` summed over the process's publishers.
//!
//! | counter | counts |
//! |---|---|
//! | `event_triggered` | records the publisher read to send |
//! | `event_lost` | events retention removed before the publisher read them (gaps) |
//! | `push_ok` | records the far side acknowledged |
//! | `push_fail` | records of sends that failed (each attempt) |
//! | `push_pending` | records sent and not yet acknowledged (gauge) |
//! | `bytes` | payload bytes acknowledged |
//! | `retries` | sends tried again after a failure |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    publisher: String,
}

/// The names and help texts, in the order status shows them.
const COUNTERS: [(&str, &str); 6] = [
    ("event_triggered", "Records read to be sent"),
    (
        "event_lost",
        "Events removed by retention before they were read (gaps)",
    ),
    ("push_ok", "Records acknowledged by the far side"),
    ("push_fail", "Records of failed send attempts"),
    ("bytes", "Payload bytes acknowledged"),
    ("retries", "Sends tried again after a failure"),
];

/// Every publisher's counters, and the Prometheus registry that shows them.
pub struct Metrics {
    registry: Registry,
    per: Vec<Family<Labels, Counter>>,
    all: Vec<Counter>,
    pending: Family<Labels, Gauge>,
    pending_all: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty set.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut per = Vec::new();
        let mut all = Vec::new();
        for (name, help) in COUNTERS {
            let f = Family::<Labels, Counter>::default();
            registry.register(format!("fsfeed_publisher_{name}"), help, f.clone());
            per.push(f);
            let c = Counter::default();
            registry.register(
                format!("fsfeed_publishers_{name}"),
                format!("{help}, all publishers"),
                c.clone(),
            );
            all.push(c);
        }
        let pending = Family::<Labels, Gauge>::default();
        registry.register(
            "fsfeed_publisher_push_pending",
            "Records sent and not yet acknowledged",
            pending.clone(),
        );
        let pending_all = Gauge::default();
        registry.register(
            "fsfeed_publishers_push_pending",
            "Records sent and not yet acknowledged, all publishers",
            pending_all.clone(),
        );
        Metrics {
            registry,
            per,
            all,
            pending,
            pending_all,
        }
    }

    /// The counters of publisher `name` (made on first use).
    pub fn publisher(&self, name: &str) -> Counters {
        let l = Labels {
            publisher: name.to_string(),
        };
        Counters {
            mine: self
                .per
                .iter()
                .map(|f| f.get_or_create(&l).clone())
                .collect(),
            all: self.all.clone(),
            pending: self.pending.get_or_create(&l).clone(),
            pending_all: self.pending_all.clone(),
        }
    }

    /// The totals over every publisher.
    pub fn totals(&self) -> CounterValues {
        CounterValues::of(&self.all, &self.pending_all)
    }

    /// Prometheus text exposition (version 0.0.4 / OpenMetrics text).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// One publisher's counters (each bump also bumps the total).
#[derive(Clone, Debug)]
pub struct Counters {
    mine: Vec<Counter>,
    all: Vec<Counter>,
    pending: Gauge,
    pending_all: Gauge,
}

/// Index of a counter in [`COUNTERS`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum C {
    Triggered = 0,
    Lost = 1,
    Ok = 2,
    Fail = 3,
    Bytes = 4,
    Retries = 5,
}

impl Counters {
    pub(crate) fn add(&self, c: C, n: u64) {
        self.mine[c as usize].inc_by(n);
        self.all[c as usize].inc_by(n);
    }

    pub(crate) fn set_pending(&self, n: i64) {
        let old = self.pending.set(n);
        self.pending_all.inc_by(n - old);
    }

    /// The values now.
    pub fn values(&self) -> CounterValues {
        CounterValues::of(&self.mine, &self.pending)
    }
}

/// Counter values, as status shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CounterValues {
    /// Records read to be sent.
    pub event_triggered: u64,
    /// Events lost to retention before they were read.
    pub event_lost: u64,
    /// Records acknowledged.
    pub push_ok: u64,
    /// Records of failed send attempts.
    pub push_fail: u64,
    /// Records in flight.
    pub push_pending: i64,
    /// Payload bytes acknowledged.
    pub bytes: u64,
    /// Retried sends.
    pub retries: u64,
}

impl CounterValues {
    fn of(c: &[Counter], pending: &Gauge) -> CounterValues {
        CounterValues {
            event_triggered: c[0].get(),
            event_lost: c[1].get(),
            push_ok: c[2].get(),
            push_fail: c[3].get(),
            bytes: c[4].get(),
            retries: c[5].get(),
            push_pending: pending.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_add_to_the_total_and_show_in_prometheus_text() {
        let m = Metrics::new();
        let a = m.publisher("a");
        let b = m.publisher("b");
        a.add(C::Ok, 3);
        b.add(C::Ok, 4);
        a.set_pending(5);
        b.set_pending(2);
        a.set_pending(1);
        assert_eq!(a.values().push_ok, 3);
        assert_eq!(m.totals().push_ok, 7);
        assert_eq!(m.totals().push_pending, 3);
        let t = m.prometheus_text();
        assert!(
            t.contains("fsfeed_publisher_push_ok_total{publisher=\"a\"} 3"),
            "{t}"
        );
        assert!(t.contains("fsfeed_publishers_push_ok_total 7"), "{t}");
        assert!(
            t.contains("fsfeed_publisher_push_pending{publisher=\"b\"} 2"),
            "{t}"
        );
    }
}
