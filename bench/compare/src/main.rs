//! `fsfeed-bench-compare`: fsfeed, Redis Streams and NATS JetStream on the
//! same op workload, at matched durability, in one run.
//!
//! `bench/compare.py` (what `make bench-compare` runs) starts `redis-server`
//! and `nats-server` on loopback in temporary directories, runs this binary
//! with their ports and data directories, adds the Python rows, and writes
//! `bench/results/latest.json`, the plots and `BENCHMARKS.md`. This binary
//! prints one JSON object of measured figures on stdout, progress on stderr.
//!
//! What each system gets:
//! - the same ops from [`fsfeed::workload::Workload`] (the demo's mix). fsfeed
//!   appends them as ops; Redis (`XADD`, one field) and JetStream (one
//!   message) get each op's protobuf encoding, the smallest honest payload
//!   a producer would send them;
//! - appends with batching (`append_batch` of 1,000; a pipeline of 1,000
//!   `XADD`; 1,000 async publishes, then their acks) and without (one op,
//!   wait for its acknowledgement, the next);
//! - one consumer with a position that it acknowledges per batch of up to
//!   1,000: a fsfeed named cursor (`read` then `commit`), a Redis consumer
//!   group (`XREADGROUP` then `XACK` of the batch's ids), a JetStream durable
//!   pull consumer with `AckPolicy::All` (ack of the batch's last message).
//!   Every consumer decodes each event (fsfeed's cursor does; the peers'
//!   loops call `Op::decode` on the payload);
//! - latency: one producer at a fixed rate, one op per append, one blocked
//!   consumer; the figure is the time from before the append call to the
//!   consumer holding the event.
//!
//! Durability: fsfeed `sync` against Redis `appendfsync always`; fsfeed
//! `buffered` against `appendfsync everysec`. Debian's nats-server 2.9.10 has
//! no `sync_interval` (added in 2.10): JetStream acknowledges before its
//! periodic fsync whatever is asked, so both its rows use its only setting.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use clap::Parser;
use fsfeed::workload::Workload;
use fsfeed::{CursorOptions, Durability, Event, Layout, Ledger, Op, OpenOptions, Start};
use futures_util::StreamExt;
use prost::Message;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const STREAM: &str = "fsfeed-bench";
const SUBJECT: &str = "ev";
const NATS_STREAM: &str = "EV";
const BATCH: usize = 1000;
/// Rounds of the append runs; each figure is the best of its rounds.
const ROUNDS: usize = 2;

/// Pairs of buffered batched runs with sealing on and off.
const SEGMENT_PAIRS: usize = 4;
/// fsfeed durability, its name, and Redis's matching `appendfsync`.
const DURABILITIES: [(&str, Durability, &str); 2] = [
    ("sync", Durability::Sync, "always"),
    ("buffered", Durability::Buffered, "everysec"),
];

/// Measure fsfeed against Redis Streams and NATS JetStream.
#[derive(Parser, Debug)]
struct Args {
    /// Events appended and consumed by the batched runs.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events of the unbatched runs (one fsync per op at `sync`).
    #[arg(long)]
    single_events: Option<usize>,
    /// Samples of the latency runs (per system and durability).
    #[arg(long, default_value_t = 4000)]
    latency_samples: usize,
    /// Appends per second of the latency runs.
    #[arg(long, default_value_t = 1000)]
    latency_rate: u64,
    /// Port of a running redis-server (started with appendonly yes).
    #[arg(long)]
    redis_port: u16,
    /// That server's data directory (its AOF is measured).
    #[arg(long)]
    redis_dir: PathBuf,
    /// Port of a running nats-server with JetStream.
    #[arg(long)]
    nats_port: u16,
    /// That server's JetStream store directory.
    #[arg(long)]
    nats_dir: PathBuf,
    /// Scratch directory for ledgers and raw files (on the same disk as the servers').
    #[arg(long)]
    work: PathBuf,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).expect("json")),
        Err(e) => {
            eprintln!("fsfeed-bench-compare: {e}");
            std::process::exit(1);
        }
    }
}

fn progress(msg: &str) {
    eprintln!("bench-compare: {msg}");
}

fn run(a: &Args) -> Res<Value> {
    if a.events < BATCH {
        return Err(format!("--events must be at least {BATCH}").into());
    }
    if a.latency_samples < ROUNDS || a.latency_rate == 0 {
        return Err(format!(
            "--latency-samples must be at least {ROUNDS} and --latency-rate at least 1"
        )
        .into());
    }
    let single = a
        .single_events
        .unwrap_or((a.events / 50).max(1000))
        .min(a.events);
    fs::create_dir_all(&a.work)?;
    progress(&format!("generating {} workload ops", a.events));
    let ops: Vec<Op> = Workload::new(7, 1_767_225_600_000_000)
        .take(a.events)
        .collect();
    let payloads: Vec<Bytes> = ops.iter().map(|o| Bytes::from(o.encode_to_vec())).collect();
    let payload_mean = payloads.iter().map(|p| p.len()).sum::<usize>() as f64 / ops.len() as f64;

    let mut out = json!({
        "events": a.events,
        "single_events": single,
        "batch": BATCH,
        "payload_bytes_mean": payload_mean,
    });

    let mut con =
        redis::Client::open(format!("redis://127.0.0.1:{}/", a.redis_port))?.get_connection()?;
    let redis_version: String = redis_info_field(&mut con, "redis_version")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (nats_version, js) = rt.block_on(async {
        let client = async_nats::connect(format!("127.0.0.1:{}", a.nats_port)).await?;
        let version = client.server_info().version.clone();
        Res::Ok((version, jetstream::new(client)))
    })?;
    let obs: Vec<Op> = ops
        .iter()
        .map(|o| o.clone().with_layout(Layout::Obs))
        .collect();

    // Appends. The systems take turns, run after run, for `ROUNDS` rounds,
    // and each figure is the best of its rounds: a shared disk's slow
    // moments then hit every system, not whichever ran at that time.
    // Consumption and disk bytes come from the first round's buffered
    // batched stores.
    let mut append = json!({});
    let mut consume = json!({});
    let mut bytes = json!({});
    let keep = |v: &mut Value, sys: &str, d: &str, how: &str, rate: f64| {
        let cur = v[sys][d][how].as_f64().unwrap_or(0.0);
        v[sys][d][how] = json!(cur.max(rate));
    };
    for round in 0..ROUNDS {
        for (name, d, fsync) in DURABILITIES {
            let first = round == 0 && d == Durability::Buffered;
            // fsfeed.
            let dir = a.work.join(format!("ledger-{name}-batch"));
            let _ = fs::remove_dir_all(&dir);
            let (rate, l) = fsfeed_append(&dir, d, &ops, BATCH)?;
            l.close()?;
            drop(l);
            if first {
                let l = open_ledger(&dir, d)?;
                // Every complete run sealed (untimed), then the ledger's
                // bytes and the segments' apart.
                let sealed = l.seal()?;
                let segments = dir_size(&dir.join(fsfeed::SEGMENTS_DIR));
                bytes["fsfeed"] = json!((dir_size(&dir) - segments) as f64 / ops.len() as f64);
                if sealed > 0 {
                    bytes["fsfeed_segments"] = json!(segments as f64 / sealed as f64);
                }
                consume["fsfeed"] = json!(fsfeed_consume(&l, ops.len())?);
                l.close()?;
            }
            let _ = fs::remove_dir_all(&dir);
            keep(&mut append, "fsfeed", name, "batch", rate);
            progress(&format!("round {round}: fsfeed {name} batched {rate:.0}/s"));
            // Redis.
            redis_fsync(&mut con, fsync)?;
            let before = dir_size(&a.redis_dir);
            let rate = redis_append(&mut con, &payloads, BATCH)?;
            if first {
                // everysec: let the last second reach the file before measuring it.
                std::thread::sleep(Duration::from_millis(1500));
                let grown = dir_size(&a.redis_dir).saturating_sub(before);
                bytes["redis"] = json!(grown as f64 / ops.len() as f64);
                consume["redis"] = json!(redis_consume(&mut con, ops.len())?);
            }
            redis::cmd("DEL").arg(STREAM).query::<()>(&mut con)?;
            keep(&mut append, "redis", name, "batch", rate);
            progress(&format!("round {round}: redis {name} batched {rate:.0}/s"));
            // JetStream.
            let (rate, b, c) = rt.block_on(nats_batched(&js, &a.nats_dir, &payloads, first))?;
            if first {
                bytes["nats"] = json!(b);
                consume["nats"] = json!(c);
            }
            keep(&mut append, "nats", name, "batch", rate);
            progress(&format!("round {round}: nats {name} batched {rate:.0}/s"));
        }
        for (name, d, fsync) in DURABILITIES {
            let dir = a.work.join(format!("ledger-{name}-single"));
            let _ = fs::remove_dir_all(&dir);
            let (f, l) = fsfeed_append(&dir, d, &ops[..single], 1)?;
            l.close()?;
            drop(l);
            let _ = fs::remove_dir_all(&dir);
            redis_fsync(&mut con, fsync)?;
            let r = redis_append(&mut con, &payloads[..single], 1)?;
            redis::cmd("DEL").arg(STREAM).query::<()>(&mut con)?;
            let n = rt.block_on(async {
                nats_stream(&js).await?;
                nats_append(&js, &payloads[..single], 1).await
            })?;
            keep(&mut append, "fsfeed", name, "single", f);
            keep(&mut append, "redis", name, "single", r);
            keep(&mut append, "nats", name, "single", n);
            progress(&format!(
                "round {round}: one at a time, {name}: fsfeed {f:.0}/s, redis {r:.0}/s, nats {n:.0}/s"
            ));
        }
        // The same ops with the namespace off (object-store layout for every
        // bucket): what the shadow namespace costs fsfeed's appends.
        let dir = a.work.join("ledger-no-namespace");
        let _ = fs::remove_dir_all(&dir);
        let (rate, l) = fsfeed_append(&dir, Durability::Buffered, &obs, BATCH)?;
        l.close()?;
        drop(l);
        let _ = fs::remove_dir_all(&dir);
        keep(
            &mut append,
            "fsfeed",
            "buffered_no_namespace",
            "batch",
            rate,
        );
        progress(&format!(
            "round {round}: fsfeed buffered batched, namespace off {rate:.0}/s"
        ));
    }
    drop(obs);
    rt.block_on(js.delete_stream(NATS_STREAM))?;

    // What sealing Parquet segments costs buffered batched appends: pairs
    // of runs with sealing on and off, one right after the other, in
    // alternating order; the median rate of each. The machine's speed
    // drifts by more than the cost between rounds, so the pairs sit together.
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for pair in 0..SEGMENT_PAIRS {
        for sealing in [pair % 2 == 0, pair % 2 == 1] {
            let dir = a.work.join("ledger-segments");
            let rate = fsfeed_append_segments(&dir, &ops, sealing)?;
            if sealing {
                on.push(rate)
            } else {
                off.push(rate)
            }
            progress(&format!(
                "segments pair {pair}: sealing {}: {rate:.0}/s",
                if sealing { "on" } else { "off" }
            ));
        }
    }
    out["segments_cost"] = json!({
        "pairs": SEGMENT_PAIRS,
        "on": on,
        "off": off,
        "on_median": median(&on),
        "off_median": median(&off),
    });

    // Latency, each system at both durabilities. The systems take turns in
    // `ROUNDS` rounds of an equal share of the samples, pooled per system.
    let mut latency = json!({});
    let share = a.latency_samples.div_ceil(ROUNDS);
    for (name, d, fsync) in DURABILITIES {
        progress(&format!(
            "latency {name}: {} samples at {}/s",
            share * ROUNDS,
            a.latency_rate
        ));
        let (mut f, mut r, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let dir = a.work.join(format!("ledger-latency-{name}"));
            let _ = fs::remove_dir_all(&dir);
            f.extend(fsfeed_latency(&dir, d, &ops, share, a.latency_rate)?);
            let _ = fs::remove_dir_all(&dir);
            redis_fsync(&mut con, fsync)?;
            r.extend(redis_latency(
                a.redis_port,
                &payloads,
                share,
                a.latency_rate,
            )?);
            n.extend(rt.block_on(nats_latency(a.nats_port, &payloads, share, a.latency_rate))?);
        }
        latency["fsfeed"][name] = summary(f);
        latency["redis"][name] = summary(r);
        latency["nats"][name] = summary(n);
    }

    // The limits: raw RocksDB with the bytes the ledger stores, and the disk.
    progress("raw RocksDB WriteBatch");
    let values: Vec<Vec<u8>> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            Event {
                seq: i as u64 + 1,
                // Format 7 stores no path when it is the key.
                path: String::new(),
                to_path: String::new(),
                offset: 0,
                op: Some(op.clone()),
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    let raw_buffered = raw_rocksdb(&a.work.join("raw-buffered"), &values, false)?;
    let raw_sync = raw_rocksdb(&a.work.join("raw-sync"), &values, true)?;
    let stored_mean = values.iter().map(|v| v.len()).sum::<usize>() as f64 / values.len() as f64;
    progress("disk: fsync rate and sequential write");
    let fsyncs = fsync_rate(&a.work.join("fsync.bin"), Duration::from_secs(2))?;
    let seq = seq_write(&a.work.join("seq.bin"), 256)?;

    out["event_bytes_mean"] = json!(stored_mean);
    out["rounds"] = json!(ROUNDS);
    out["versions"] = json!({"redis": redis_version, "nats": nats_version});
    out["append"] = append;
    out["consume"] = consume;
    out["bytes_per_event"] = bytes;
    out["latency_us"] = latency;
    out["limits"] = json!({
        "raw_rocksdb_buffered_batch": raw_buffered,
        "raw_rocksdb_sync_batch": raw_sync,
        "fsync_per_s": fsyncs,
        "seq_write_mib_s": seq,
    });
    Ok(out)
}

fn open_ledger(dir: &Path, durability: Durability) -> Res<Ledger> {
    Ok(Ledger::open_with(
        dir,
        OpenOptions {
            durability,
            ..OpenOptions::default()
        },
    )?)
}

/// Appends `ops` (in batches of `batch`, or one by one when 1); ops per second.
fn fsfeed_append(dir: &Path, d: Durability, ops: &[Op], batch: usize) -> Res<(f64, Ledger)> {
    let l = open_ledger(dir, d)?;
    let t = if batch > 1 {
        let chunks: Vec<Vec<Op>> = ops.chunks(batch).map(|c| c.to_vec()).collect();
        let t = Instant::now();
        for c in chunks {
            l.append_batch(c)?;
        }
        t.elapsed()
    } else {
        let owned = ops.to_vec();
        let t = Instant::now();
        for op in owned {
            l.append(op)?;
        }
        t.elapsed()
    };
    Ok((ops.len() as f64 / t.as_secs_f64(), l))
}

/// Buffered batched appends of `ops` into a fresh ledger, sealing Parquet
/// segments or not; ops per second.
fn fsfeed_append_segments(dir: &Path, ops: &[Op], sealing: bool) -> Res<f64> {
    let _ = fs::remove_dir_all(dir);
    let l = Ledger::open_with(
        dir,
        OpenOptions {
            durability: Durability::Buffered,
            segments: Some(sealing),
            ..OpenOptions::default()
        },
    )?;
    l.close()?;
    drop(l);
    let (rate, l) = fsfeed_append(dir, Durability::Buffered, ops, BATCH)?;
    l.close()?;
    drop(l);
    let _ = fs::remove_dir_all(dir);
    Ok(rate)
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fsfeed_consume(l: &Ledger, total: usize) -> Res<f64> {
    let mut c = l.cursor(
        Some("bench"),
        CursorOptions {
            start: Start::Earliest,
            ..CursorOptions::default()
        },
    )?;
    let t = Instant::now();
    let mut n = 0;
    while n < total {
        let b = c.read(BATCH, Duration::from_secs(5))?;
        if b.records.is_empty() {
            return Err(format!("fsfeed consumer stalled at {n} of {total}").into());
        }
        n += b.records.len();
        c.commit(b.next)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

fn redis_info_field(con: &mut redis::Connection, field: &str) -> Res<String> {
    let info: String = redis::cmd("INFO").arg("server").query(con)?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("redis INFO has no {field}").into())
}

fn redis_fsync(con: &mut redis::Connection, policy: &str) -> Res<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg(policy)
        .query::<()>(con)?;
    Ok(())
}

fn redis_append(con: &mut redis::Connection, payloads: &[Bytes], batch: usize) -> Res<f64> {
    redis::cmd("DEL").arg(STREAM).query::<()>(con)?;
    let t = Instant::now();
    if batch > 1 {
        for c in payloads.chunks(batch) {
            let mut p = redis::pipe();
            for v in c {
                p.cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("e")
                    .arg(&v[..])
                    .ignore();
            }
            p.query::<()>(con)?;
        }
    } else {
        for v in payloads {
            redis::cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg("e")
                .arg(&v[..])
                .query::<String>(con)?;
        }
    }
    Ok(payloads.len() as f64 / t.elapsed().as_secs_f64())
}

/// Decodes the ops of one `XREADGROUP` reply; returns their ids.
fn redis_decode(reply: redis::streams::StreamReadReply) -> Res<Vec<String>> {
    let mut ids = Vec::new();
    for key in reply.keys {
        for sid in key.ids {
            match sid.map.get("e") {
                Some(redis::Value::BulkString(b)) => {
                    Op::decode(&b[..])?;
                }
                other => return Err(format!("unexpected stream entry {other:?}").into()),
            }
            ids.push(sid.id);
        }
    }
    Ok(ids)
}

fn redis_consume(con: &mut redis::Connection, total: usize) -> Res<f64> {
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg("g")
        .arg("0")
        .query::<()>(con)?;
    let t = Instant::now();
    let mut n = 0;
    while n < total {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(BATCH)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query(con)?;
        let ids = redis_decode(reply)?;
        if ids.is_empty() {
            return Err(format!("redis consumer stalled at {n} of {total}").into());
        }
        n += ids.len();
        redis::cmd("XACK")
            .arg(STREAM)
            .arg("g")
            .arg(&ids)
            .query::<u64>(con)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

async fn nats_stream(js: &jetstream::Context) -> Res<jetstream::stream::Stream> {
    let _ = js.delete_stream(NATS_STREAM).await;
    Ok(js
        .create_stream(jetstream::stream::Config {
            name: NATS_STREAM.into(),
            subjects: vec![SUBJECT.into()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?)
}

async fn nats_append(js: &jetstream::Context, payloads: &[Bytes], batch: usize) -> Res<f64> {
    let t = Instant::now();
    if batch > 1 {
        for c in payloads.chunks(batch) {
            let mut acks = Vec::with_capacity(c.len());
            for v in c {
                acks.push(js.publish(SUBJECT, v.clone()).await?);
            }
            for a in acks {
                a.await?;
            }
        }
    } else {
        for v in payloads {
            js.publish(SUBJECT, v.clone()).await?.await?;
        }
    }
    Ok(payloads.len() as f64 / t.elapsed().as_secs_f64())
}

fn pull_config(durable: Option<&str>) -> jetstream::consumer::pull::Config {
    jetstream::consumer::pull::Config {
        durable_name: durable.map(str::to_string),
        ack_policy: jetstream::consumer::AckPolicy::All,
        max_ack_pending: 100_000,
        ..Default::default()
    }
}

async fn nats_consume(stream: &jetstream::stream::Stream, total: usize) -> Res<f64> {
    let consumer = stream.create_consumer(pull_config(Some("c"))).await?;
    let t = Instant::now();
    let mut n = 0;
    while n < total {
        let want = BATCH.min(total - n);
        let mut msgs = consumer
            .batch()
            .max_messages(want)
            .expires(Duration::from_secs(5))
            .messages()
            .await?;
        let mut last = None;
        while let Some(m) = msgs.next().await {
            let m = m?;
            Op::decode(&m.payload[..])?;
            n += 1;
            last = Some(m);
        }
        match last {
            Some(m) => m.ack().await?,
            None => return Err(format!("nats consumer stalled at {n} of {total}").into()),
        }
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// One batched JetStream run into a new stream; with `measure`, also its
/// store bytes per event and a consumer's rate over it.
async fn nats_batched(
    js: &jetstream::Context,
    store: &Path,
    payloads: &[Bytes],
    measure: bool,
) -> Res<(f64, f64, f64)> {
    let stream = nats_stream(js).await?;
    let before = dir_size(store);
    let rate = nats_append(js, payloads, BATCH).await?;
    if !measure {
        return Ok((rate, 0.0, 0.0));
    }
    let grown = dir_size(store).saturating_sub(before);
    let consume = nats_consume(&stream, payloads.len()).await?;
    Ok((rate, grown as f64 / payloads.len() as f64, consume))
}

/// Send times, in ns since `base`, one slot per sample.
struct Clock {
    base: Instant,
    sent: Vec<AtomicU64>,
}

impl Clock {
    fn new(n: usize) -> Arc<Clock> {
        Arc::new(Clock {
            base: Instant::now(),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
    /// Waits for sample `i`'s slot in the schedule, then stamps it.
    fn pace_and_stamp(&self, i: usize, t0: u64, rate: u64) {
        let due = t0 + i as u64 * 1_000_000_000 / rate;
        let now = self.now();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        self.sent[i].store(self.now(), Ordering::SeqCst);
    }
    fn latency_us(&self, i: usize) -> f64 {
        (self.now() - self.sent[i].load(Ordering::SeqCst)) as f64 / 1000.0
    }
}

fn fsfeed_latency(dir: &Path, d: Durability, ops: &[Op], n: usize, rate: u64) -> Res<Vec<f64>> {
    let l = open_ledger(dir, d)?;
    let clock = Clock::new(n);
    let mut c = l.cursor(
        None,
        CursorOptions {
            start: Start::Latest,
            ..CursorOptions::default()
        },
    )?;
    let ck = clock.clone();
    let consumer = std::thread::spawn(move || -> Res<Vec<f64>> {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let b = c.read(BATCH, Duration::from_secs(5))?;
            if b.records.is_empty() {
                return Err("fsfeed latency consumer timed out".into());
            }
            for _ in &b.records {
                lat.push(ck.latency_us(lat.len()));
            }
        }
        Ok(lat)
    });
    let t0 = clock.now();
    for (i, op) in ops.iter().cycle().take(n).enumerate() {
        let op = op.clone();
        clock.pace_and_stamp(i, t0, rate);
        l.append(op)?;
    }
    let lat = consumer.join().map_err(|_| "consumer panicked")??;
    l.close()?;
    Ok(lat)
}

fn redis_latency(port: u16, payloads: &[Bytes], n: usize, rate: u64) -> Res<Vec<f64>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut prod = client.get_connection()?;
    let mut cons = client.get_connection()?;
    let key = format!("{STREAM}-latency");
    redis::cmd("DEL").arg(&key).query::<()>(&mut prod)?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query::<()>(&mut prod)?;
    let clock = Clock::new(n);
    let ck = clock.clone();
    let k2 = key.clone();
    let consumer = std::thread::spawn(move || -> Res<Vec<f64>> {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(5000)
                .arg("STREAMS")
                .arg(&k2)
                .arg(">")
                .query(&mut cons)?;
            let Some(reply) = reply else {
                return Err("redis latency consumer timed out".into());
            };
            let got = reply.keys.iter().map(|k| k.ids.len()).sum::<usize>();
            for _ in 0..got {
                lat.push(ck.latency_us(lat.len()));
            }
            let ids = redis_decode(reply)?;
            redis::cmd("XACK")
                .arg(&k2)
                .arg("g")
                .arg(&ids)
                .query::<u64>(&mut cons)?;
        }
        Ok(lat)
    });
    let t0 = clock.now();
    for (i, v) in payloads.iter().cycle().take(n).enumerate() {
        clock.pace_and_stamp(i, t0, rate);
        redis::cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("e")
            .arg(&v[..])
            .query::<String>(&mut prod)?;
    }
    let lat = consumer.join().map_err(|_| "consumer panicked")??;
    redis::cmd("DEL").arg(&key).query::<()>(&mut prod)?;
    Ok(lat)
}

async fn nats_latency(port: u16, payloads: &[Bytes], n: usize, rate: u64) -> Res<Vec<f64>> {
    let client = async_nats::connect(format!("127.0.0.1:{port}")).await?;
    let js = jetstream::new(client);
    let stream = nats_stream(&js).await?;
    let consumer = stream.create_consumer(pull_config(Some("lat"))).await?;
    let mut messages = consumer.messages().await?;
    let clock = Clock::new(n);
    let ck = clock.clone();
    let task = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let Ok(Some(m)) = next else {
                return Err::<Vec<f64>, String>("nats latency consumer timed out".into());
            };
            lat.push(ck.latency_us(lat.len()));
            let m = m.map_err(|e| e.to_string())?;
            Op::decode(&m.payload[..]).map_err(|e| e.to_string())?;
            m.ack().await.map_err(|e| e.to_string())?;
        }
        Ok(lat)
    });
    let t0 = clock.now();
    for (i, v) in payloads.iter().cycle().take(n).enumerate() {
        let due = t0 + i as u64 * 1_000_000_000 / rate;
        let now = clock.now();
        if due > now {
            tokio::time::sleep(Duration::from_nanos(due - now)).await;
        }
        clock.sent[i].store(clock.now(), Ordering::SeqCst);
        js.publish(SUBJECT, v.clone()).await?.await?;
    }
    let lat = task
        .await?
        .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
    js.delete_stream(NATS_STREAM).await?;
    Ok(lat)
}

/// p50, p99, p99.9, max and a 101-point percentile curve, in µs.
fn summary(mut lat: Vec<f64>) -> Value {
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let curve: Vec<f64> = (0..=100).map(|i| pct(i as f64 / 100.0)).collect();
    json!({
        "samples": lat.len(),
        "p50": pct(0.5),
        "p99": pct(0.99),
        "p999": pct(0.999),
        "max": pct(1.0),
        "percentiles": curve,
    })
}

/// `WriteBatch` puts of `values`, 1,000 a batch, stored as the ledger's
/// format 6 stores events: runs of 32 seqs per value (byte 0, then each
/// event with its varint length) under the run's first seq, big-endian.
fn raw_rocksdb(dir: &Path, values: &[Vec<u8>], sync: bool) -> Res<f64> {
    let _ = fs::remove_dir_all(dir);
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&o, dir)?;
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(sync);
    let t = Instant::now();
    let mut block = Vec::new();
    for (i, chunk) in values.chunks(BATCH).enumerate() {
        let mut batch = rocksdb::WriteBatch::default();
        let mut start = None;
        for (j, v) in chunk.iter().enumerate() {
            let seq = (i * BATCH + j) as u64 + 1;
            if start.is_none() {
                start = Some(seq);
                block.clear();
                block.push(0);
            }
            prost::encoding::encode_varint(v.len() as u64, &mut block);
            block.extend_from_slice(v);
            // A run ends at a multiple of 32, or where the batch ends (a
            // run cut by a batch is put as it is).
            if seq % 32 == 0 || j + 1 == chunk.len() {
                batch.put(start.take().unwrap_or(seq).to_be_bytes(), &block);
            }
        }
        db.write_opt(batch, &w)?;
    }
    let rate = values.len() as f64 / t.elapsed().as_secs_f64();
    drop(db);
    let _ = fs::remove_dir_all(dir);
    Ok(rate)
}

/// 4 KiB writes, each followed by `fdatasync`, for `span`; per second.
fn fsync_rate(path: &Path, span: Duration) -> Res<f64> {
    let mut f = fs::File::create(path)?;
    let block = vec![7u8; 4096];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < span {
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(path)?;
    Ok(rate)
}

/// `mib` MiB written in 1 MiB chunks, then one fsync; MiB per second.
fn seq_write(path: &Path, mib: usize) -> Res<f64> {
    let mut f = fs::File::create(path)?;
    let chunk = vec![7u8; 1 << 20];
    let t = Instant::now();
    for _ in 0..mib {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    let rate = mib as f64 / t.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(path)?;
    Ok(rate)
}

/// Bytes of the files below `dir` (0 when it does not exist).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
