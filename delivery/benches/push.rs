//! Push delivery against real servers on loopback, side by side in one run:
//! events/s delivered by a publisher (`fsfeed_delivery::Supervisor`, --once)
//! against a plain client loop sending the same bytes in the same batches
//! with the same acknowledgement level (reqwest POSTs; lapin publishes with
//! publisher confirms; an idempotent `acks=all` rdkafka producer), and the
//! append-to-delivered latency of a running HTTP publisher.
//!
//! `make bench-push` (or `cargo bench -p fsfeed-delivery --bench push`);
//! `FSFEED_PUSH_EVENTS` sets the events per transport (default 50,000),
//! `FSFEED_PUSH_ROUNDS` the alternating rounds whose medians are compared (default 3).

use std::time::{Duration, Instant};

use fsfeed::frame::Framer;
use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, EventId, Ledger, Start};
use fsfeed_delivery::publisher::frame;
use fsfeed_delivery::testkit::{
    caught_up, ledger_with, publisher, run_once, runtime, HttpReceiver, Rabbit, Running, Tansu,
};
use fsfeed_delivery::transport::Message;
use fsfeed_delivery::{Gate, PublisherConfig};

const BATCH: usize = 1000;
const SEED: u64 = 11;

/// The messages a publisher with `cfg` sends, one Vec per batch, framed in
/// advance by the publisher's own `frame`: what the plain loops send.
fn messages(l: &Ledger, cfg: &PublisherConfig) -> Vec<Vec<Message>> {
    let mut c = l
        .cursor(
            None,
            CursorOptions {
                start: Start::Earliest,
                format: cfg.format.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let framer = Framer::new(&cfg.format, cfg.framing).unwrap();
    let mut out = Vec::new();
    loop {
        let b = c.read(BATCH, Duration::ZERO).unwrap();
        if b.records.is_empty() {
            return out;
        }
        out.push(frame(&framer, cfg, &b.records));
    }
}

fn publisher_rate(l: &Ledger, cfg: PublisherConfig, n: usize) -> f64 {
    let t = Instant::now();
    let (r, _) = run_once(l, cfg);
    assert!(r.first_error().is_none(), "{r:?}");
    n as f64 / t.elapsed().as_secs_f64()
}

fn http_plain(url: &str, msgs: &[Vec<Message>], n: usize) -> f64 {
    let rt = runtime();
    let t = Instant::now();
    let client = reqwest::Client::new();
    rt.block_on(async {
        for b in msgs {
            for m in b {
                let r = client
                    .post(url)
                    .header("content-type", "application/x-ndjson")
                    .header("x-fsfeed-event-id", &m.event_id)
                    .header("x-fsfeed-last-event-id", &m.last_event_id)
                    .header("x-fsfeed-records", m.records)
                    .body(m.payload.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await;
            }
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn amqp_plain(port: u16, msgs: &[Vec<Message>], n: usize) -> f64 {
    use lapin::options::*;
    use lapin::types::{AMQPValue, FieldTable};
    let rt = runtime();
    let t = Instant::now();
    rt.block_on(async {
        let props = lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let conn = lapin::Connection::connect(&format!("amqp://127.0.0.1:{port}/%2f"), props)
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for b in msgs {
            let mut pending = Vec::with_capacity(b.len());
            for m in b {
                let mut headers = FieldTable::default();
                headers.insert(
                    "fsfeed-event-name".into(),
                    AMQPValue::LongString(m.event_name.unwrap_or_default().into()),
                );
                headers.insert("fsfeed-seq".into(), AMQPValue::LongLongInt(m.seq as i64));
                headers.insert(
                    "fsfeed-key".into(),
                    AMQPValue::LongString(m.key.as_deref().unwrap_or_default().into()),
                );
                pending.push(
                    ch.basic_publish(
                        "fsfeed",
                        "plain",
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &m.payload,
                        lapin::BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into())
                            .with_message_id(m.event_id.as_str().into())
                            .with_headers(headers),
                    )
                    .await
                    .unwrap(),
                );
            }
            for c in pending {
                assert!(c.await.unwrap().is_ack());
            }
        }
        let _ = conn.close(200, "done").await;
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn kafka_plain(bootstrap: &str, msgs: &[Vec<Message>], n: usize) -> f64 {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let rt = runtime();
    // Made inside the timed part, as the publisher makes its own.
    let t = Instant::now();
    let p: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    rt.block_on(async {
        for b in msgs {
            let mut pending = Vec::with_capacity(b.len());
            for m in b {
                let seq = m.seq.to_string();
                let h = OwnedHeaders::new_with_capacity(3)
                    .insert(Header {
                        key: "fsfeed-event-name",
                        value: m.event_name,
                    })
                    .insert(Header {
                        key: "fsfeed-seq",
                        value: Some(&seq),
                    })
                    .insert(Header {
                        key: "fsfeed-event-id",
                        value: Some(&m.event_id),
                    });
                let key = m.key.as_deref().unwrap_or_default();
                let r = FutureRecord::to("plain")
                    .key(key)
                    .payload(&m.payload)
                    .headers(h);
                pending.push(p.send_result(r).map_err(|(e, _)| e).unwrap());
            }
            for f in pending {
                f.await.unwrap().unwrap();
            }
        }
    });
    // Closed inside the timed part, as the publisher closes its own.
    drop(p);
    n as f64 / t.elapsed().as_secs_f64()
}

fn http_latency() -> (f64, f64, usize) {
    let (_d, l) = ledger_with(SEED, 10);
    let rx = HttpReceiver::start();
    let cfg = PublisherConfig::new("lat", &rx.url()).unwrap();
    let p = Running::start(&l, cfg, Gate::Always);
    while !caught_up(&l, "lat") {
        std::thread::sleep(Duration::from_millis(5));
    }
    let base = rx.received().len();
    let mut sent = Vec::new();
    let mut w = Workload::new(SEED, 1_767_225_600_000_000).skip(10);
    let samples = 500;
    while sent.len() < samples {
        let op = w.next().unwrap();
        let t = Instant::now();
        let seq = l.append(op).unwrap();
        sent.push((seq, t));
        std::thread::sleep(Duration::from_millis(4));
    }
    std::thread::sleep(Duration::from_millis(500));
    p.stop();
    let got = rx.received();
    let at = rx.arrivals();
    let mut lat = Vec::new();
    for (i, r) in got.iter().enumerate().skip(base) {
        let seq = EventId::parse(&r.event_id).unwrap().position().seq;
        if let Some((_, t)) = sent.iter().find(|(s, _)| *s == seq) {
            lat.push(at[i].duration_since(*t).as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    (q(0.5), q(0.99), lat.len())
}

/// `rounds` alternating runs of the plain loop and a publisher (named
/// `NAME-ROUND`, so each starts from the beginning): the median events/s of each.
fn compare(
    rounds: usize,
    mut plain: impl FnMut() -> f64,
    mut ours: impl FnMut(usize) -> f64,
) -> (f64, f64) {
    let mut p = Vec::new();
    let mut o = Vec::new();
    for r in 0..rounds {
        p.push(plain());
        o.push(ours(r));
    }
    (median(o), median(p))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("FSFEED_PUSH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let rounds: usize = std::env::var("FSFEED_PUSH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let (_d, l) = ledger_with(SEED, n);
    let mut rows = Vec::new();

    let rx = HttpReceiver::start();
    let cfg = |r: usize| {
        publisher(&format!(
            "[[publisher]]\nname = \"http-{r}\"\nendpoint = \"{}\"\nformat = \"native\"\nbatch_max = {BATCH}\n",
            rx.url()
        ))
    };
    let msgs = messages(&l, &cfg(0));
    let (ours, plain) = compare(
        rounds,
        || http_plain(&rx.url(), &msgs, n),
        |r| publisher_rate(&l, cfg(r), n),
    );
    rows.push(("HTTP (POST per 1000-record batch, 2xx)", ours, plain));
    drop(rx);

    let rabbit = Rabbit::start();
    rabbit.declare("fsfeed", "bench-q", "amqp");
    rabbit.declare("fsfeed", "plain-q", "plain");
    let cfg = |r: usize| {
        publisher(&format!(
            "[[publisher]]\nname = \"amqp-{r}\"\nendpoint = \"{}\"\namqp_exchange = \"fsfeed\"\namqp_routing_key = \"amqp\"\nformat = \"native\"\nbatch_max = {BATCH}\n",
            rabbit.endpoint()
        ))
    };
    let msgs = messages(&l, &cfg(0));
    let (ours, plain) = compare(
        rounds,
        || amqp_plain(rabbit.port(), &msgs, n),
        |r| publisher_rate(&l, cfg(r), n),
    );
    rows.push(("AMQP (persistent, publisher confirms)", ours, plain));
    drop(rabbit);

    let tansu = Tansu::start();
    tansu.create_topic("kafka", 3);
    tansu.create_topic("plain", 3);
    let cfg = |r: usize| {
        publisher(&format!(
            "[[publisher]]\nname = \"kafka-{r}\"\nendpoint = \"{}\"\nkafka_topic = \"kafka\"\nformat = \"native\"\nbatch_max = {BATCH}\n",
            tansu.endpoint()
        ))
    };
    let t = Instant::now();
    let msgs = messages(&l, &cfg(0));
    let framing = n as f64 / t.elapsed().as_secs_f64();
    let (ours, plain) = compare(
        rounds,
        || kafka_plain(&tansu.bootstrap(), &msgs, n),
        |r| publisher_rate(&l, cfg(r), n),
    );
    rows.push(("Kafka (idempotent, acks=all)", ours, plain));
    drop(tansu);

    println!(
        "push delivery, {n} events per transport, batches of {BATCH}, median of {rounds} alternating rounds"
    );
    println!("| transport | publisher events/s | plain client events/s | publisher / plain |");
    println!("|---|---:|---:|---:|");
    for (t, ours, plain) in rows {
        println!(
            "| {t} | {ours:.0} | {plain:.0} | {:.0}% |",
            100.0 * ours / plain
        );
    }
    println!(
        "the publisher's own work, read and frame alone (Kafka's messages, one thread): {framing:.0} events/s"
    );
    let (p50, p99, k) = http_latency();
    println!(
        "append-to-delivered latency (HTTP, one op every 4 ms, {k} samples): p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
}
