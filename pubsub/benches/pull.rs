//! The pub/sub service's pull-and-ack rate, side by side in one run with an
//! in-process cursor reading and rendering the same events:
//!
//! - **in-process**: a cursor in the S3 format (Ceph profile) over the
//!   events, each rendered to JSON;
//! - **batch-acked**: one client pulls 1,000 events per request and acks
//!   them with one request (the repeated `event-id` extension);
//! - **per-event acks, 8 clients**: eight clients, each on its own
//!   subscription, pull 1,000 events per request and ack each event with
//!   a request of its own (the Ceph API as it is).
//!
//! The server is the real one (`fsfeed_pubsub::serve` on loopback, ledger
//! opened read-only, state synced per ack); the clients sign with S3 v2.
//!
//! `make bench-pubsub` (or `cargo bench -p fsfeed-pubsub --bench pull`);
//! `FSFEED_PUBSUB_EVENTS` (default 50,000) sets the events appended,
//! `FSFEED_PUBSUB_ACKS` (default 5,000) the events each per-event client acks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use fsfeed::render::s3::{Profile, S3Options};
use fsfeed::{CursorOptions, Format, Ledger, Op, OpenOptions, Start};
use hmac::{Hmac, Mac};
use sha1::Sha1;

const KEY: &str = "AKBENCH";
const SECRET: &str = "bench-secret";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A v2-signed request.
fn signed(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    query: &str,
) -> reqwest::RequestBuilder {
    let date = httpdate();
    let sts = format!("{}\n\n\n{date}\n{path}", method.as_str());
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).expect("hmac");
    mac.update(sts.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let url = if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    };
    client
        .request(method, url)
        .header("Date", date)
        .header("Authorization", format!("AWS {KEY}:{sig}"))
}

fn httpdate() -> String {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc().format(&f).expect("date")
}

async fn call(
    client: &reqwest::Client,
    m: reqwest::Method,
    base: &str,
    path: &str,
    q: &str,
) -> Vec<u8> {
    let r = signed(client, m, base, path, q)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body = r.bytes().await.expect("body").to_vec();
    assert!(
        status.is_success(),
        "{path}?{q}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    body
}

#[derive(serde::Deserialize)]
struct Page {
    events: Vec<Ev>,
}

#[derive(serde::Deserialize)]
struct Ev {
    id: String,
}

async fn pull(client: &reqwest::Client, base: &str, sub: &str) -> Vec<String> {
    let body = call(
        client,
        reqwest::Method::GET,
        base,
        &format!("/subscriptions/{sub}"),
        "events&max-entries=1000",
    )
    .await;
    let p: Page = serde_json::from_slice(&body).expect("page");
    p.events.into_iter().map(|e| e.id).collect()
}

fn main() {
    let n = env_usize("FSFEED_PUBSUB_EVENTS", 50_000);
    let per_client = env_usize("FSFEED_PUBSUB_ACKS", 5_000).min(n);
    let clients = 8usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger");
    let writer = Ledger::open_with(
        &path,
        OpenOptions {
            durability: fsfeed::Durability::Buffered,
            ..Default::default()
        },
    )
    .expect("ledger");
    writer
        .append(Op::bucket_create("vol1", "photos").by("bench", "", ""))
        .expect("append");
    let cfg = fsfeed_pubsub::Config::from_toml(&format!(
        "[[users]]\nuid = \"bench\"\naccess_key = \"{KEY}\"\nsecret_key = \"{SECRET}\"\n"
    ))
    .expect("config");
    let reader = if std::env::var("FSFEED_PUBSUB_SAME").is_ok() {
        writer.clone()
    } else {
        Ledger::open_read_only(&path).expect("read-only")
    };
    let svc = Arc::new(fsfeed_pubsub::Service::open(reader, cfg).expect("service"));

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = server_rt.spawn(fsfeed_pubsub::serve(svc.clone(), listener, stop_rx));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .expect("client");
    rt.block_on(async {
        call(&client, reqwest::Method::PUT, &base, "/topics/t", "").await;
        call(
            &client,
            reqwest::Method::PUT,
            &base,
            "/subscriptions/batch",
            "topic=t",
        )
        .await;
        for i in 0..clients {
            call(
                &client,
                reqwest::Method::PUT,
                &base,
                &format!("/subscriptions/one{i}"),
                "topic=t",
            )
            .await;
        }
        call(
            &client,
            reqwest::Method::PUT,
            &base,
            "/notifications/bucket/photos",
            "topic=t",
        )
        .await;
    });
    let first = writer.head_seq().expect("head") + 1;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let ops = chunk
            .iter()
            .map(|i| Op::commit("vol1", "photos", &format!("dir/obj-{i:08}"), 1024, "etag"))
            .collect();
        writer.append_batch(ops).expect("append");
    }
    // The service's tracker follows appends as they come (in `serve`);
    // here it reads them before the clock starts, as it would have.
    svc.catch_up().expect("tracker");
    println!(
        "pubsub pull/ack bench: {n} events appended; server and clients on loopback, one process"
    );

    // In-process: a cursor reading and rendering the same events.
    let t = Instant::now();
    let mut c = writer
        .cursor(
            None,
            CursorOptions {
                start: Start::Seq(first),
                format: Format::S3(S3Options {
                    profile: Profile::Ceph,
                    ..S3Options::default()
                }),
                ..Default::default()
            },
        )
        .expect("cursor");
    let read = c.read_rendered(n as u64).expect("read");
    assert_eq!(read as usize, n);
    let inproc = n as f64 / t.elapsed().as_secs_f64();

    // One client, pulls of 1,000, one ack request per pull.
    let batch = rt.block_on(async {
        let t = Instant::now();
        let mut got = 0usize;
        while got < n {
            let ids = pull(&client, &base, "batch").await;
            assert!(!ids.is_empty(), "ran dry at {got}");
            let mut q = String::from("ack");
            for id in &ids {
                q.push_str("&event-id=");
                q.push_str(id);
            }
            call(
                &client,
                reqwest::Method::POST,
                &base,
                "/subscriptions/batch",
                &q,
            )
            .await;
            got += ids.len();
        }
        assert_eq!(got, n);
        n as f64 / t.elapsed().as_secs_f64()
    });

    // Eight clients, one ack request per event.
    let per_event = rt.block_on(async {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..clients {
            let client = client.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let sub = format!("one{i}");
                let path = format!("/subscriptions/{sub}");
                let mut acked = 0usize;
                while acked < per_client {
                    let ids = pull(&client, &base, &sub).await;
                    for id in ids.iter().take(per_client - acked) {
                        call(
                            &client,
                            reqwest::Method::POST,
                            &base,
                            &path,
                            &format!("ack&event-id={id}"),
                        )
                        .await;
                        acked += 1;
                    }
                }
                acked
            }));
        }
        let mut total = 0usize;
        for t in tasks {
            total += t.await.expect("client");
        }
        total as f64 / t.elapsed().as_secs_f64()
    });

    println!("| reader | events/s | of in-process |");
    println!("|---|---:|---:|");
    println!("| in-process cursor (S3 ceph, rendered) | {inproc:.0} | 100% |");
    println!(
        "| 1 client, pulls of 1,000, one ack request per pull | {batch:.0} | {:.0}% |",
        100.0 * batch / inproc
    );
    println!(
        "| {clients} clients, pulls of 1,000, one ack request per event | {per_event:.0} | {:.0}% |",
        100.0 * per_event / inproc
    );
    println!(
        "targets: batch-acked >= 25% of in-process ({}), per-event acks >= 10,000 events/s with 8 clients ({})",
        if batch / inproc >= 0.25 { "met" } else { "NOT met" },
        if per_event >= 10_000.0 { "met" } else { "NOT met" }
    );
    let _ = stop.send(true);
    let _ = server_rt.block_on(server);
    server_rt.shutdown_timeout(Duration::from_secs(5));
    rt.shutdown_timeout(Duration::from_secs(5));
}
