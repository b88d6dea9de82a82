//! The HTTP webhook publisher against a real receiver on loopback, through
//! the crate's public API (`Supervisor`).

mod common;

use std::time::Duration;

use common::*;
use fsfeed_delivery::testkit::{run_once, runtime, Answer, HttpReceiver, Running};
use fsfeed_delivery::{Gate, Outcome, PublisherConfig, RunOptions, State, Supervisor};
use tokio::sync::watch;

#[test]
fn ten_thousand_events_arrive_once_in_order() {
    let (_d, ledger) = ledger_with(10_000);
    let rx = HttpReceiver::start();
    let cfg = publisher(&format!(
        "[[publisher]]\nname = \"hook\"\nendpoint = \"{}\"\nformat = \"native\"\nbatch_max = 500\n",
        rx.url()
    ));
    let want = expected(&ledger, &cfg);
    assert!(want.len() >= 10_000, "{}", want.len());
    let (report, t) = run_once(&ledger, cfg);
    assert!(
        matches!(report.outcomes[0].1, Ok(Outcome::Drained)),
        "{report:?}"
    );
    let dups = check(&want, &rx.received(), 0);
    assert_eq!(dups, 0);
    assert!(caught_up(&ledger, "hook"));
    assert_eq!(t.push_ok, want.len() as u64);
    assert_eq!(t.event_triggered, want.len() as u64);
    assert_eq!(t.push_fail, 0);
    // Batches of JSON lines, with the first and last event ids in headers.
    let reqs = rx.requests();
    assert_eq!(reqs.len(), want.len().div_ceil(500));
    let h = |i: usize, k: &str| {
        reqs[i]
            .0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(h(0, "content-type"), "application/x-ndjson");
    assert_eq!(h(0, "x-fsfeed-event-id"), want[0].event_id);
    assert_eq!(h(0, "x-fsfeed-last-event-id"), want[499].event_id);
    assert_eq!(h(0, "x-fsfeed-records"), "500");
}

/// The receiver answers 500, then refuses connections, then accepts:
/// nothing is lost, the committed position never passes what it accepted,
/// and the publisher shows `retrying` with the error meanwhile.
#[test]
fn an_outage_loses_nothing() {
    let (_d, ledger) = ledger_with(2_000);
    let mut rx = HttpReceiver::start();
    let cfg = publisher(&format!(
        "[[publisher]]\nname = \"hook\"\nendpoint = \"{}\"\nbatch_max = 100\nretry_initial_ms = 20\nretry_max_ms = 100\ntimeout_ms = 1000\n",
        rx.url()
    ));
    let p = Running::start(&ledger, cfg.clone(), Gate::Always);
    let metrics = p.metrics.clone();
    wait_until("first half", Duration::from_secs(30), || {
        caught_up(&ledger, "hook")
    });
    let before = ledger.committed("hook").unwrap().unwrap();
    rx.answer(Answer::Status(500));
    append(&ledger, 2_000, 2_000);
    wait_until("failures", Duration::from_secs(10), || {
        metrics.totals().retries >= 2
    });
    rx.refuse();
    let retries = metrics.totals().retries;
    wait_until("refused connections", Duration::from_secs(10), || {
        metrics.totals().retries >= retries + 2
    });
    // The status file is rewritten twice a second.
    wait_until("status says retrying", Duration::from_secs(5), || {
        let st = fsfeed_delivery::status::read_all(&ledger).unwrap();
        st.first()
            .is_some_and(|s| s.state == State::Retrying && s.last_error.is_some())
    });
    assert_eq!(ledger.committed("hook").unwrap().unwrap(), before);
    rx.answer(Answer::Accept);
    rx.resume();
    wait_until("everything", Duration::from_secs(30), || {
        caught_up(&ledger, "hook")
    });
    p.stop();
    check(&expected(&ledger, &cfg), &rx.received(), 0);
}

/// A host callback gate: nothing is sent while it says no; once it says
/// yes, the publisher sends from the committed position.
#[test]
fn a_callback_gate_holds_sending_until_it_leads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (_d, ledger) = ledger_with(500);
    let rx = HttpReceiver::start();
    let cfg = PublisherConfig::new("gated", &rx.url()).unwrap();
    let leads = Arc::new(AtomicBool::new(false));
    let l2 = leads.clone();
    let p = Running::start(
        &ledger,
        cfg.clone(),
        Gate::callback(move || l2.load(Ordering::SeqCst)),
    );
    wait_until("status says standby", Duration::from_secs(5), || {
        let st = fsfeed_delivery::status::read_all(&ledger).unwrap();
        st.first().map(|s| s.state) == Some(State::Standby)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.requests().is_empty());
    leads.store(true, Ordering::SeqCst);
    wait_until("sent", Duration::from_secs(30), || {
        caught_up(&ledger, "gated")
    });
    p.stop();
    check(&expected(&ledger, &cfg), &rx.received(), 0);
}

/// Bad input to the Rust API: typed errors, nothing started.
#[test]
fn bad_api_input_is_refused() {
    let (_d, ledger) = ledger_with(10);
    assert_eq!(
        PublisherConfig::new("a b", "http://h/").unwrap_err().code(),
        "invalid_config"
    );
    assert_eq!(
        PublisherConfig::new("a", "gopher://h/").unwrap_err().code(),
        "invalid_config"
    );
    let mut cfg = PublisherConfig::new("a", "http://127.0.0.1:1/").unwrap();
    cfg.batch_max = 0;
    let mut sup = Supervisor::new(ledger.clone());
    assert_eq!(
        sup.add(cfg.clone(), Gate::Always).unwrap_err().code(),
        "invalid_config"
    );
    cfg.batch_max = 10;
    sup.add(cfg.clone(), Gate::Always).unwrap();
    assert!(sup
        .add(cfg, Gate::Always)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    let (_tx, stop) = watch::channel(false);
    let empty = Supervisor::new(ledger);
    assert_eq!(
        runtime()
            .block_on(empty.run(stop, RunOptions::default()))
            .unwrap_err()
            .code(),
        "invalid_config"
    );
}
