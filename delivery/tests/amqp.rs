//! The AMQP publisher against a real RabbitMQ node on loopback (Debian's
//! `rabbitmq-server`, a private node started and stopped by the test). One
//! test, so the node starts once: delivery, an outage, and the rejections
//! that park a publisher.

mod common;

use std::time::Duration;

use common::*;
use fsfeed_delivery::testkit::{run_once, Rabbit, Running};
use fsfeed_delivery::{Gate, Outcome, State};

fn config(rabbit: &Rabbit, name: &str, extra: &str) -> fsfeed_delivery::PublisherConfig {
    publisher(&format!(
        "[[publisher]]\nname = \"{name}\"\nendpoint = \"{}\"\namqp_exchange = \"fsfeed\"\n{extra}\n",
        rabbit.endpoint()
    ))
}

#[test]
fn amqp_delivery_outage_and_rejections() {
    let rabbit = Rabbit::start();
    rabbit.declare("fsfeed", "audit-q", "audit");

    // 1. 10,000 events through a stop and start of the broker.
    let (_d, ledger) = ledger_with(5_000);
    let cfg = config(
        &rabbit,
        "audit",
        "format = \"native\"\nbatch_max = 1000\ntimeout_ms = 3000\nretry_initial_ms = 50\nretry_max_ms = 500",
    );
    let p = Running::start(&ledger, cfg.clone(), Gate::Always);
    let metrics = p.metrics.clone();
    wait_until("the first half confirmed", Duration::from_secs(60), || {
        caught_up(&ledger, "audit")
    });
    let mut got = rabbit.drain("audit-q");
    let before = ledger.committed("audit").unwrap().unwrap();
    rabbit.stop_app();
    append(&ledger, 5_000, 5_000);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ledger.committed("audit").unwrap().unwrap(), before);
    assert!(metrics.totals().push_fail > 0, "{:?}", metrics.totals());
    rabbit.start_app();
    wait_until("everything confirmed", Duration::from_secs(120), || {
        caught_up(&ledger, "audit")
    });
    let report = p.stop();
    assert!(
        matches!(report.outcomes[0].1, Ok(Outcome::Stopped)),
        "{report:?}"
    );
    got.extend(rabbit.drain("audit-q"));
    let want = expected(&ledger, &cfg);
    assert!(want.len() >= 10_000);
    let dups = check(&want, &got, 1000 * (1 + metrics.totals().retries as usize));
    eprintln!(
        "amqp: {} records, {dups} duplicates, {:?}",
        want.len(),
        metrics.totals()
    );

    // 2. A routing key no queue is bound to: the broker returns the
    //    message; the publisher parks and its cursor stays.
    let cfg = config(&rabbit, "nowhere", "amqp_routing_key = \"no-such-key\"");
    let (report, _) = run_once(&ledger, cfg);
    let err = report
        .first_error()
        .expect("unroutable is an error")
        .to_string();
    assert!(err.contains("unroutable"), "{err}");
    assert_eq!(ledger.committed("nowhere").unwrap(), None);
    let st = fsfeed_delivery::status::read_all(&ledger).unwrap();
    let s = st.iter().find(|s| s.name == "nowhere").unwrap();
    assert_eq!(s.state, State::Parked);
    assert!(s.last_error.as_deref().unwrap().contains("unroutable"));

    // 3. An exchange that does not exist parks it too (Ceph requires it to exist).
    let mut cfg = config(&rabbit, "noexchange", "");
    cfg.amqp_exchange = "missing".into();
    let (report, _) = run_once(&ledger, cfg);
    let err = report
        .first_error()
        .expect("a missing exchange is an error")
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.contains("guest:guest"), "{err}");

    // 4. Ack level none still delivers everything while the broker is up.
    rabbit.declare("fsfeed", "fast-q", "fast");
    let cfg = config(
        &rabbit,
        "fast",
        "amqp_ack_level = \"none\"\nformat = \"native\"",
    );
    run_once(&ledger, cfg.clone());
    let want = expected(&ledger, &cfg);
    wait_until(
        "ack-level none messages queued",
        Duration::from_secs(30),
        || rabbit.drain_count("fast-q") >= want.len(),
    );
}
