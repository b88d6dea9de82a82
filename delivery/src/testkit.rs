//! Real far sides on loopback for the tests and benchmarks (cargo feature
//! `testkit`; not part of the API): an HTTP receiver in the process, a
//! private RabbitMQ node (Debian's `rabbitmq-server`) and a tansu broker
//! (built once by `scripts/tansu.sh`). Each stops what it started when
//! dropped, and each reads back what arrived as [`Received`] records.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One record as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its event id.
    pub event_id: String,
    /// `bucket/key`, when the transport carries it.
    pub key: Option<String>,
}

/// Op time of the first workload op the helpers append (2026-01-01).
const T0: i64 = 1_767_225_600_000_000;

/// Append ops `from..from+n` of the workload with `seed`.
pub fn append_workload(ledger: &fsfeed::Ledger, seed: u64, from: usize, n: usize) {
    let ops: Vec<_> = fsfeed::workload::Workload::new(seed, T0)
        .skip(from)
        .take(n)
        .collect();
    for chunk in ops.chunks(1000) {
        ledger.append_batch(chunk.to_vec()).expect("append");
    }
}

/// A new ledger in a temporary directory, holding `n` ops of the workload with `seed`.
pub fn ledger_with(seed: u64, n: usize) -> (tempfile::TempDir, fsfeed::Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = fsfeed::Ledger::open(dir.path().join("ledger")).expect("ledger");
    append_workload(&ledger, seed, 0, n);
    (dir, ledger)
}

/// Has cursor `name` committed everything up to the head?
pub fn caught_up(ledger: &fsfeed::Ledger, name: &str) -> bool {
    ledger.committed(name).expect("committed").map(|p| p.seq)
        == Some(ledger.head_seq().expect("head") + 1)
}

/// Wait until `f` is true; panic naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The runtime the tests and benchmarks run publishers on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The one `[[publisher]]` of a TOML config text.
pub fn publisher(toml: &str) -> crate::PublisherConfig {
    crate::Config::from_toml(toml)
        .expect("config")
        .publishers
        .remove(0)
}

/// Run one publisher over `ledger` to the head (`--once`): its report and counters.
pub fn run_once(
    ledger: &fsfeed::Ledger,
    cfg: crate::PublisherConfig,
) -> (crate::Report, crate::CounterValues) {
    let mut sup = crate::Supervisor::new(ledger.clone());
    sup.add(cfg, crate::Gate::Always).expect("publisher");
    let metrics = sup.metrics();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let report = runtime()
        .block_on(sup.run(
            stop,
            crate::RunOptions {
                once: true,
                ..Default::default()
            },
        ))
        .expect("run");
    (report, metrics.totals())
}

/// One publisher running in the background until [`Running::stop`].
pub struct Running {
    rt: tokio::runtime::Runtime,
    run: tokio::task::JoinHandle<crate::Result<crate::Report>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Its counters.
    pub metrics: Arc<crate::Metrics>,
}

impl Running {
    /// Start `cfg` over `ledger` behind `gate`.
    pub fn start(
        ledger: &fsfeed::Ledger,
        cfg: crate::PublisherConfig,
        gate: crate::Gate,
    ) -> Running {
        let mut sup = crate::Supervisor::new(ledger.clone());
        sup.add(cfg, gate).expect("publisher");
        let metrics = sup.metrics();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let rt = runtime();
        let run = rt.spawn(sup.run(rx, crate::RunOptions::default()));
        Running {
            rt,
            run,
            stop,
            metrics,
        }
    }

    /// Ask it to stop and wait for its report.
    pub fn stop(self) -> crate::Report {
        let _ = self.stop.send(true);
        self.rt
            .block_on(self.run)
            .expect("publisher task")
            .expect("run")
    }
}

/// One record a publisher should deliver.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Its event id.
    pub event_id: String,
    /// `bucket/key` of its object.
    pub key: String,
    /// Its seq.
    pub seq: u64,
}

/// What `cfg` should deliver from the ledger: its records up to the head,
/// read by an ephemeral cursor with the same options.
pub fn expected(ledger: &fsfeed::Ledger, cfg: &crate::PublisherConfig) -> Vec<Expected> {
    let mut c = ledger
        .cursor(
            None,
            fsfeed::CursorOptions {
                start: fsfeed::Start::Earliest,
                filter: cfg.filter.clone(),
                expand: cfg.expand,
                format: cfg.format.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = Vec::new();
    loop {
        let b = c.read(1000, Duration::ZERO).unwrap();
        if b.is_empty() {
            return out;
        }
        for r in &b.records {
            out.push(Expected {
                event_id: fsfeed::EventId::new(r.position).to_string(),
                key: crate::transport::message_key(r),
                seq: r.position.seq,
            });
        }
    }
}

/// Everything expected arrived, nothing else did, each object's records
/// arrived in seq order (first arrivals), and at most `max_dups` arrived twice.
/// Returns the number of duplicates.
pub fn check(expected: &[Expected], received: &[Received], max_dups: usize) -> usize {
    let by_id: HashMap<&str, &Expected> =
        expected.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<&str, u64> = HashMap::new();
    let mut dups = 0;
    for r in received {
        let e = by_id
            .get(r.event_id.as_str())
            .unwrap_or_else(|| panic!("unexpected event id {}", r.event_id));
        if let Some(k) = &r.key {
            assert_eq!(k, &e.key, "message key of {}", r.event_id);
        }
        if !seen.insert(r.event_id.as_str()) {
            dups += 1;
            continue;
        }
        let last = last_seq.entry(e.key.as_str()).or_insert(0);
        assert!(
            e.seq >= *last,
            "{} (seq {}) arrived after seq {} of the same key {}",
            r.event_id,
            e.seq,
            last,
            e.key
        );
        *last = e.seq;
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !seen.contains(e.event_id.as_str()))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} records never arrived, e.g. {missing:?}",
        expected.len() - seen.len(),
        expected.len()
    );
    assert!(dups <= max_dups, "{dups} duplicates, more than {max_dups}");
    dups
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The event ids of the records in a message body: an S3 `{"Records":[..]}`
/// envelope, one S3 or native record, or JSON lines of them.
pub fn event_ids_of(body: &[u8]) -> Vec<String> {
    fn of(v: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(rs) = v.get("Records").and_then(|r| r.as_array()) {
            for r in rs {
                of(r, out);
            }
            return;
        }
        let id = v
            .get("eventId")
            .or_else(|| v.pointer("/fsfeedEventData/eventId"))
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .or_else(|| {
                let seq = v.get("seq")?.as_u64()?;
                let sub = v.get("sub").and_then(|s| s.as_u64()).unwrap_or(0);
                Some(fsfeed::EventId::new(fsfeed::Position::new(seq, sub as u32)).to_string())
            });
        out.extend(id);
    }
    let mut out = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
            of(&v, &mut out);
        }
    }
    out
}

/// What the HTTP receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 and keep the body.
    Accept,
    /// This status, body dropped.
    Status(u16),
}

/// One request the receiver got: its headers (lowercase names) and body.
pub type Request = (Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct HttpState {
    received: Vec<Received>,
    arrivals: Vec<Instant>,
    requests: Vec<Request>,
    answer: Option<Answer>,
}

/// An HTTP receiver on `127.0.0.1`, in this process, on its own runtime.
pub struct HttpReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    rt: tokio::runtime::Runtime,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl HttpReceiver {
    /// Start one on a free port.
    pub fn start() -> HttpReceiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut r = HttpReceiver {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            state: Arc::new(Mutex::new(HttpState {
                answer: Some(Answer::Accept),
                ..Default::default()
            })),
            rt,
            server: None,
        };
        r.resume();
        r
    }

    /// `http://127.0.0.1:PORT/events`.
    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// What it answers from now on.
    pub fn answer(&self, a: Answer) {
        self.state.lock().answer = Some(a);
    }

    /// Stop listening: connections are refused until [`HttpReceiver::resume`].
    pub fn refuse(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = self.rt.block_on(s);
        }
    }

    /// Listen again on the same port.
    pub fn resume(&mut self) {
        if self.server.is_some() {
            return;
        }
        let state = self.state.clone();
        let addr = self.addr;
        let listener = self.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => return l,
                    Err(e) if Instant::now() > deadline => panic!("rebind {addr}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let mut s = state.lock();
                    let answer = s.answer.unwrap_or(Answer::Accept);
                    let hs = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    s.requests.push((hs, body.to_vec()));
                    match answer {
                        Answer::Accept => {
                            let now = Instant::now();
                            for id in event_ids_of(&body) {
                                s.received.push(Received {
                                    event_id: id,
                                    key: None,
                                });
                                s.arrivals.push(now);
                            }
                            axum::http::StatusCode::OK
                        }
                        Answer::Status(c) => axum::http::StatusCode::from_u16(c)
                            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                    }
                }
            },
        );
        self.server = Some(self.rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Every record accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    /// When each accepted record arrived (the same order as [`HttpReceiver::received`]).
    pub fn arrivals(&self) -> Vec<Instant> {
        self.state.lock().arrivals.clone()
    }

    /// Every request so far (accepted or not): headers and body.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().requests.clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.refuse();
    }
}

/// Run a command, failing with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// A tansu broker (Kafka protocol) on loopback with memory storage.
pub struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// The binary: `$FSFEED_TANSU`, else what `scripts/tansu.sh` built.
    pub fn binary() -> PathBuf {
        if let Ok(p) = std::env::var("FSFEED_TANSU") {
            return p.into();
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        PathBuf::from(home).join(".cache/fsfeed/tansu-0.6.0/bin/tansu")
    }

    /// Start one on a free port and wait until it answers.
    pub fn start() -> Tansu {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("tansu.log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(Tansu::binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("tansu.err")).expect("log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (run scripts/tansu.sh): {e}",
                    Tansu::binary().display()
                )
            });
        let t = Tansu {
            child,
            port,
            log,
            _dir: dir,
        };
        wait_port(port, Duration::from_secs(30));
        t
    }

    /// `kafka://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's log file.
    pub fn log(&self) -> &std::path::Path {
        &self.log
    }

    /// Freeze the broker (SIGSTOP): an outage that keeps its memory.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }

    /// Create a topic with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let r = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .expect("create_topics");
        for x in r {
            x.unwrap_or_else(|e| panic!("create topic {topic}: {e:?}"));
        }
    }

    /// Every message of `topic` (partitions `0..partitions`, from offset 0,
    /// by explicit assignment, not a consumer group), reading until at
    /// least `want` arrived and nothing more came for a second, or `timeout` passed.
    pub fn read(
        &self,
        topic: &str,
        partitions: i32,
        want: usize,
        timeout: Duration,
    ) -> Vec<Received> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::{Headers, Message};
        use rdkafka::{Offset, TopicPartitionList};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "fsfeed-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut last = Instant::now();
        while Instant::now() < deadline
            && (out.len() < want || last.elapsed() < Duration::from_secs(1))
        {
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    let id = m.headers().and_then(|h| {
                        h.iter()
                            .find(|x| x.key == "fsfeed-event-id")
                            .and_then(|x| x.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    });
                    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                    out.push(Received {
                        event_id: id.expect("fsfeed-event-id header"),
                        key,
                    });
                }
                Some(Err(e)) => panic!("consume {topic}: {e}"),
                None => {}
            }
        }
        out
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private RabbitMQ node on loopback (its own name, ports, and data
/// directory, owned by the `rabbitmq` user as Debian's scripts require).
pub struct Rabbit {
    child: Child,
    port: u16,
    dir: PathBuf,
    node: String,
    /// The node's own epmd (Erlang's port mapper), stopped with it: a
    /// shared one on 4369 would outlive the test.
    epmd: u16,
}

impl Rabbit {
    /// Start a node and wait until it accepts AMQP.
    pub fn start() -> Rabbit {
        let port = free_port();
        let dist = free_port();
        let epmd = free_port();
        let node = format!("fsfeedtest{port}@localhost");
        let dir = PathBuf::from(format!("/tmp/fsfeed-rabbit-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("rabbit dir");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins");
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq", &dir.to_string_lossy()])
            .status();
        let child = Command::new("rabbitmq-server")
            .envs(Rabbit::env(&dir, &node, port, dist, epmd))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("out.log")).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start rabbitmq-server (Debian package rabbitmq-server)");
        let r = Rabbit {
            child,
            port,
            dir,
            node,
            epmd,
        };
        wait_port(port, Duration::from_secs(90));
        r.ctl(&["await_startup"]);
        r
    }

    fn env(
        dir: &std::path::Path,
        node: &str,
        port: u16,
        dist: u16,
        epmd: u16,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("ERL_EPMD_PORT", epmd.to_string()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_NODENAME", node.to_string()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_DIST_PORT", dist.to_string()),
            (
                "RABBITMQ_MNESIA_BASE",
                dir.join("mnesia").to_string_lossy().into_owned(),
            ),
            ("RABBITMQ_LOGS", "-".into()),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.join("enabled_plugins").to_string_lossy().into_owned(),
            ),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
        ]
    }

    fn ctl(&self, args: &[&str]) -> String {
        run(Command::new("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd.to_string()))
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/`.
    pub fn endpoint(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/", self.port)
    }

    /// The AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Add a user (administrator of vhost `/`).
    pub fn add_user(&self, user: &str, password: &str) {
        self.ctl(&["add_user", user, password]);
        self.ctl(&["set_permissions", "-p", "/", user, ".*", ".*", ".*"]);
    }

    /// Stop the broker application (connections drop; the node stays).
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"]);
    }

    /// Start it again.
    pub fn start_app(&self) {
        self.ctl(&["start_app"]);
        self.ctl(&["await_startup"]);
    }

    /// Declare a durable topic exchange and a durable queue bound to it by `routing_key`.
    pub fn declare(&self, exchange: &str, queue: &str, routing_key: &str) {
        self.block_on(async {
            let (conn, ch) = self.channel().await;
            use lapin::options::*;
            use lapin::types::FieldTable;
            ch.exchange_declare(
                exchange,
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("exchange");
            ch.queue_declare(
                queue,
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
            ch.queue_bind(
                queue,
                exchange,
                routing_key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
            let _ = conn.close(200, "done").await;
        });
    }

    /// Take every message now in `queue` (basic.get until empty).
    pub fn drain(&self, queue: &str) -> Vec<Received> {
        self.block_on(async {
            let (conn, ch) = self.channel().await;
            let mut out = Vec::new();
            while let Some(m) = ch
                .basic_get(queue, lapin::options::BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
            {
                let p = &m.delivery.properties;
                let key = p
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("fsfeed-key").cloned())
                    .and_then(|v| match v {
                        lapin::types::AMQPValue::LongString(s) => Some(s.to_string()),
                        _ => None,
                    });
                out.push(Received {
                    event_id: p
                        .message_id()
                        .as_ref()
                        .map(|s| s.to_string())
                        .expect("message_id"),
                    key,
                });
            }
            let _ = conn.close(200, "done").await;
            out
        })
    }

    /// How many messages `queue` holds now.
    pub fn drain_count(&self, queue: &str) -> usize {
        self.block_on(async {
            let (conn, ch) = self.channel().await;
            let q = ch
                .queue_declare(
                    queue,
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await
                .expect("queue");
            let _ = conn.close(200, "done").await;
            q.message_count() as usize
        })
    }

    async fn channel(&self) -> (lapin::Connection, lapin::Channel) {
        let props = lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let conn = lapin::Connection::connect(
            &format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port),
            props,
        )
        .await
        .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        (conn, ch)
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd.to_string())
            .output();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd.to_string(), "-kill"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
