//! The Kafka publisher against a real Kafka-protocol broker (tansu) on
//! loopback, read back by explicit partition assignment from offset 0.

mod common;

use std::time::Duration;

use common::*;
use fsfeed_delivery::testkit::{Running, Tansu};
use fsfeed_delivery::{Gate, Outcome};

#[test]
fn kafka_delivers_every_record_keyed_in_order_through_an_outage() {
    let broker = Tansu::start();
    broker.create_topic("events", 3);
    let (_d, ledger) = ledger_with(5_000);
    let cfg = publisher(&format!(
        "[[publisher]]\nname = \"k\"\nendpoint = \"{}\"\nkafka_topic = \"events\"\nformat = \"native\"\nbatch_max = 1000\ntimeout_ms = 1500\nretry_initial_ms = 50\nretry_max_ms = 400\n",
        broker.endpoint()
    ));
    let p = Running::start(&ledger, cfg.clone(), Gate::Always);
    let metrics = p.metrics.clone();
    wait_until(
        "the first half acknowledged",
        Duration::from_secs(60),
        || caught_up(&ledger, "k"),
    );
    // The broker freezes; the second half is appended meanwhile.
    let before = ledger.committed("k").unwrap().unwrap();
    broker.pause();
    append(&ledger, 5_000, 5_000);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        ledger.committed("k").unwrap().unwrap(),
        before,
        "the committed position moved while the broker could acknowledge nothing"
    );
    assert!(metrics.totals().retries > 0, "{:?}", metrics.totals());
    broker.resume();
    wait_until("everything acknowledged", Duration::from_secs(120), || {
        caught_up(&ledger, "k")
    });
    let report = p.stop();
    assert!(
        matches!(report.outcomes[0].1, Ok(Outcome::Stopped)),
        "{report:?}"
    );
    let want = expected(&ledger, &cfg);
    assert!(want.len() >= 10_000);
    let got = broker.read("events", 3, want.len(), Duration::from_secs(60));
    // Only the batch in flight (1,000 records) may arrive twice per failure.
    let dups = check(&want, &got, 1000 * metrics.totals().retries as usize);
    eprintln!(
        "kafka: {} records, {dups} duplicates, {:?}",
        want.len(),
        metrics.totals()
    );
}
