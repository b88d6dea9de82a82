//! `fsfeed publish`, run as a user runs it, against real far sides on
//! loopback: an HTTP receiver, a private RabbitMQ node, a tansu broker.
//! The test process appends (the writer); `fsfeed publish` opens the ledger
//! read-only beside it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fsfeed::Ledger;
use fsfeed_delivery::testkit::{
    append_workload, caught_up, check, expected, publisher, wait_until, HttpReceiver, Rabbit,
    Received, Tansu,
};
use fsfeed_delivery::Config;

/// Append ops `from..from+n` of this file's workload (seed 3).
fn append(ledger: &Ledger, from: usize, n: usize) {
    append_workload(ledger, 3, from, n)
}

/// `fsfeed publish --once --ledger LEDGER --config CONFIG`, to its end.
fn publish_once(ledger: &Path, config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fsfeed"))
        .args(["publish", "--once", "--ledger"])
        .arg(ledger)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// A running `fsfeed publish`, its stderr in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(ledger: &Path, config: &Path, extra: &[&str], log: PathBuf) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_fsfeed"))
            .args(["publish", "--ledger"])
            .arg(ledger)
            .arg("--config")
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    fn term(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn committed(ledger: &Ledger, name: &str) -> u64 {
    ledger.committed(name).unwrap().map(|p| p.seq).unwrap_or(0)
}

fn status_json(ledger: &Path) -> (String, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_fsfeed"))
        .args(["publish", "status", "--json", "--ledger"])
        .arg(ledger)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&text).unwrap();
    (text, v)
}

/// A far side the same scenario runs against.
enum Far {
    Http(HttpReceiver),
    Amqp(Rabbit),
    Kafka(Tansu),
}

impl Far {
    fn publisher(&self, name: &str, extra: &str) -> String {
        let (endpoint, keys) = match self {
            Far::Http(r) => (r.url(), String::new()),
            Far::Amqp(r) => (r.endpoint(), "amqp_exchange = \"fsfeed\"\n".into()),
            Far::Kafka(t) => (t.endpoint(), format!("kafka_topic = \"{name}\"\n")),
        };
        format!("[[publisher]]\nname = \"{name}\"\nendpoint = \"{endpoint}\"\n{keys}{extra}\n")
    }

    fn prepare(&self, name: &str) {
        match self {
            Far::Http(_) => {}
            Far::Amqp(r) => r.declare("fsfeed", name, name),
            Far::Kafka(t) => t.create_topic(name, 3),
        }
    }

    fn received(&self, name: &str, want: usize) -> Vec<Received> {
        match self {
            Far::Http(r) => r.received(),
            Far::Amqp(r) => r.drain(name),
            Far::Kafka(t) => t.read(name, 3, want, Duration::from_secs(60)),
        }
    }
}

/// SIGKILL of `fsfeed publish` mid-stream, a restart, then SIGTERM: every
/// record arrives, in order per object; the only duplicates are the batch
/// that was in flight and the acknowledged ones not yet committed; the
/// restarted process exits 0 on SIGTERM.
fn kill_and_restart(far: &Far, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ldir = dir.path().join("ledger");
    let ledger = Ledger::open(&ldir).unwrap();
    append(&ledger, 0, 4_000);
    far.prepare(name);
    let text = far.publisher(name, "format = \"native\"\nbatch_max = 200\n");
    let cfgfile = dir.path().join("publish.toml");
    std::fs::write(&cfgfile, &text).unwrap();
    let mut p = Proc::start(&ldir, &cfgfile, &[], dir.path().join("1.log"));
    wait_until(
        &format!("{name}: first batches"),
        Duration::from_secs(60),
        || committed(&ledger, name) > 1,
    );
    append(&ledger, 4_000, 6_000);
    p.kill();
    let at_kill = committed(&ledger, name);
    assert!(
        at_kill <= ledger.head_seq().unwrap(),
        "{name}: killed too late to count"
    );
    let mut p = Proc::start(&ldir, &cfgfile, &[], dir.path().join("2.log"));
    wait_until(
        &format!("{name}: all committed"),
        Duration::from_secs(120),
        || caught_up(&ledger, name),
    );
    let st = p.term();
    assert!(st.success(), "{name}: exit {st:?}: {}", p.log());
    let cfg = publisher(&text);
    let want = expected(&ledger, &cfg);
    assert!(want.len() >= 10_000, "{}", want.len());
    let got = far.received(name, want.len());
    // The kill may cut off the batch in flight and the (at most two)
    // acknowledged batches whose commit was not yet written.
    let dups = check(&want, &got, 3 * 200);
    eprintln!(
        "{name}: {} records, {dups} duplicates after SIGKILL",
        want.len()
    );
    let (_, v) = status_json(&ldir);
    let s = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    assert_eq!(s["state"], "stopped");
    assert_eq!(s["lag"], 0);
    assert_eq!(s["alive"], false);
}

#[test]
fn sigkill_and_restart_lose_nothing_on_every_transport() {
    kill_and_restart(&Far::Http(HttpReceiver::start()), "hook");
    kill_and_restart(&Far::Kafka(Tansu::start()), "kafka-events");
    kill_and_restart(&Far::Amqp(Rabbit::start()), "amqp-events");
}

/// Two `fsfeed publish` with the lock gate on one ledger: one sends, the
/// other waits; kill the leader and the other takes over, losing nothing.
#[test]
fn lock_gate_one_leader_and_a_takeover() {
    let dir = tempfile::tempdir().unwrap();
    let ldir = dir.path().join("ledger");
    let ledger = Ledger::open(&ldir).unwrap();
    append(&ledger, 0, 3_000);
    let rx = HttpReceiver::start();
    let far = Far::Http(rx);
    let text = far.publisher(
        "gated",
        "gate = \"lock\"\nbatch_max = 100\nformat = \"native\"",
    );
    let cfgfile = dir.path().join("publish.toml");
    std::fs::write(&cfgfile, &text).unwrap();
    let mut a = Proc::start(&ldir, &cfgfile, &[], dir.path().join("a.log"));
    wait_until("a leads", Duration::from_secs(30), || {
        a.log().contains("leading")
    });
    let mut b = Proc::start(&ldir, &cfgfile, &[], dir.path().join("b.log"));
    wait_until("everything sent", Duration::from_secs(60), || {
        caught_up(&ledger, "gated")
    });
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        !b.log().contains("leading"),
        "b sent while a led: {}",
        b.log()
    );
    let (_, v) = status_json(&ldir);
    assert_eq!(v[0]["pid"], a.child.id());
    assert_eq!(v[0]["state"], "running");
    a.kill();
    append(&ledger, 3_000, 3_000);
    wait_until("b takes over", Duration::from_secs(30), || {
        b.log().contains("leading")
    });
    wait_until("everything sent", Duration::from_secs(60), || {
        caught_up(&ledger, "gated")
    });
    assert!(b.term().success(), "{}", b.log());
    let cfg = publisher(&text);
    let want = expected(&ledger, &cfg);
    let Far::Http(rx) = &far else { unreachable!() };
    // The killed leader's batch in flight and its (at most two)
    // acknowledged batches not yet committed may arrive twice.
    check(&want, &rx.received(), 3 * 100);
}

/// A password in an endpoint, a bearer token and a header value appear in
/// no log line, status output or error, whether the far side accepts them
/// or refuses the login.
#[test]
fn secrets_never_appear_in_logs_status_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ldir = dir.path().join("ledger");
    let ledger = Ledger::open(&ldir).unwrap();
    append(&ledger, 0, 500);
    let rabbit = Rabbit::start();
    rabbit.add_user("alice", "Pa55-amqp-SECRET");
    rabbit.declare("fsfeed", "s-ok", "s-ok");
    let rx = HttpReceiver::start();
    let tansu = Tansu::start();
    let url = rx.url().replace("http://", "http://bob:Pa55-http-SECRET@");
    let amqp = |pw: &str| format!("amqp://alice:{pw}@127.0.0.1:{}/", rabbit.port());
    let text = format!(
        r#"
[[publisher]]
name = "s-ok"
endpoint = "{ok}"
amqp_exchange = "fsfeed"

[[publisher]]
name = "s-badlogin"
endpoint = "{bad}"
amqp_exchange = "fsfeed"
retry_initial_ms = 100
retry_max_ms = 200

[[publisher]]
name = "s-http"
endpoint = "{url}"
http_headers = {{ "X-Api-Key" = "Key-SECRET-2" }}

[[publisher]]
name = "s-bearer"
endpoint = "{plain}"
http_bearer_token = "Tok-SECRET-1"

[[publisher]]
name = "s-kafka"
endpoint = "kafka://carol:Pa55-kafka-SECRET@{kafka}"
kafka_topic = "t"
timeout_ms = 1000
retry_initial_ms = 100
retry_max_ms = 200
"#,
        ok = amqp("Pa55-amqp-SECRET"),
        bad = amqp("Wrong-SECRET-3"),
        kafka = tansu.bootstrap(),
        plain = rx.url(),
    );
    let cfgfile = dir.path().join("publish.toml");
    std::fs::write(&cfgfile, &text).unwrap();
    let mut p = Proc::start(&ldir, &cfgfile, &[], dir.path().join("p.log"));
    wait_until(
        "the good publishers deliver",
        Duration::from_secs(60),
        || {
            caught_up(&ledger, "s-ok")
                && caught_up(&ledger, "s-http")
                && caught_up(&ledger, "s-bearer")
        },
    );
    wait_until("the bad login fails", Duration::from_secs(30), || {
        p.log().contains("s-badlogin")
    });
    std::thread::sleep(Duration::from_secs(2));
    let (status, v) = status_json(&ldir);
    let human = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_fsfeed"))
            .args(["publish", "status", "--ledger"])
            .arg(&ldir)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(p.term().success());
    let log = p.log();
    let bad = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "s-badlogin")
        .unwrap();
    assert_eq!(bad["state"], "retrying", "{status}");
    assert!(
        bad["last_error"].as_str().unwrap().contains("AMQP"),
        "{status}"
    );
    assert!(status.contains("amqp://alice:***@127.0.0.1"), "{status}");
    // A bad config quoting a password: the error does not repeat it.
    std::fs::write(
        &cfgfile,
        "[[publisher]]\nname = \"x\"\nendpoint = \"ftp://u:Cfg-SECRET-4@h/\"\n",
    )
    .unwrap();
    let out = publish_once(&ldir, &cfgfile);
    assert_eq!(out.status.code(), Some(2));
    let cfg_err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(cfg_err.contains("invalid_config"), "{cfg_err}");
    for secret in ["SECRET", "Pa55", "Tok-", "Key-S", "Wrong-"] {
        for (what, text) in [
            ("log", &log),
            ("status", &status),
            ("status table", &human),
            ("config error", &cfg_err),
        ] {
            assert!(!text.contains(secret), "{secret:?} in the {what}:\n{text}");
        }
    }
    // What the receiver got did carry the credentials.
    let reqs = rx.requests();
    let has = |k: &str, v: &str| {
        reqs.iter()
            .any(|(h, _)| h.iter().any(|(a, b)| a == k && b == v))
    };
    assert!(has("authorization", "Bearer Tok-SECRET-1"));
    assert!(has("x-api-key", "Key-SECRET-2"));
    // bob:Pa55-http-SECRET, as basic auth.
    assert!(has("authorization", "Basic Ym9iOlBhNTUtaHR0cC1TRUNSRVQ="));
}

/// Wrong input to `fsfeed publish`: typed errors, exit status 2, nothing started.
#[test]
fn bad_config_and_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ldir = dir.path().join("ledger");
    let ledger = Ledger::open(&ldir).unwrap();
    append(&ledger, 0, 10);
    let cfgfile = dir.path().join("c.toml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fsfeed"))
            .args(args)
            .output()
            .unwrap()
    };
    let cases: &[(&str, &str)] = &[
        ("", "no [[publisher]]"),
        ("[[publisher]]\nname = \"a\"\n", "endpoint"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nbatch_maxx = 3\n", "batch_maxx"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nbatch_max = 0\n", "batch_max"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nbatch_max = \"many\"\n", "batch_max"),
        ("[[publisher]]\nname = \"a b\"\nendpoint = \"http://h/\"\n", "cursor name"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"amqp://h/\"\n", "amqp_exchange is required"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"kafka://h:1\"\n", "kafka_topic is required"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nkafka_topic = \"t\"\n", "kafka_topic applies to kafka"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nformat = \"xml\"\n", "unknown format"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\ngate = \"raft\"\n", "gate"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nfilter = { events = [\"s3:Nope\"] }\n", "event pattern"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\non_gap = \"skip\"\n", "gap policy"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nstart = \"middle\"\n", "start"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"kafka://h:1\"\nkafka_topic = \"t\"\nkafka_options = { acks = \"0\" }\n", "may not set"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\n[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\n", "appears twice"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nframing = \"hdfs-proto\"\n", "does not apply"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"amqp://h/\"\namqp_exchange = \"x\"\nframing = \"s3-message\"\n", "one record per message"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nhttp_headers = { \"bad header\" = \"v\" }\n", "not a header name"),
        ("[[publisher]\n", "line 1"),
        ("[[publisher]]\nname = \"a\"\nendpoint = \"kafka://h:1\"\nkafka_topic = \"t\"\nkafka_options = { \"no.such.property\" = \"1\" }\n", "kafka producer settings"),
    ];
    let l = ldir.to_str().unwrap();
    let c = cfgfile.to_str().unwrap();
    for (text, want) in cases {
        std::fs::write(&cfgfile, text).unwrap();
        let out = run(&["publish", "--once", "--ledger", l, "--config", c]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(
            err.contains("invalid_config") && err.contains(want),
            "{text}: {err}"
        );
    }
    assert!(
        !ldir.join("publishers").exists(),
        "a bad config started something"
    );
    let out = run(&["publish", "--ledger", l]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["publish", "--ledger", l, "--config", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["publish", "status", "--ledger", "/nonexistent-ledger"]);
    assert_ne!(out.status.code(), Some(0));
}

/// `--once` drains to the head and exits 0; `--metrics` serves Prometheus
/// text while a daemon runs; a rejected batch parks the publisher and
/// `--once` fails with status 1.
#[test]
fn once_metrics_and_a_parked_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let ldir = dir.path().join("ledger");
    let ledger = Ledger::open(&ldir).unwrap();
    append(&ledger, 0, 1_000);
    let rx = HttpReceiver::start();
    let cfgfile = dir.path().join("c.toml");
    std::fs::write(
        &cfgfile,
        format!("[[publisher]]\nname = \"m\"\nendpoint = \"{}\"\nformat = \"s3\"\ns3_profile = \"ceph\"\n", rx.url()),
    )
    .unwrap();
    let port = fsfeed_delivery::testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut p = Proc::start(
        &ldir,
        &cfgfile,
        &["--metrics", &addr],
        dir.path().join("m.log"),
    );
    wait_until("delivered", Duration::from_secs(30), || {
        caught_up(&ledger, "m")
    });
    let mut body = String::new();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::Write;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    s.read_to_string(&mut body).unwrap();
    let pushed = rx.received().len();
    assert!(
        body.contains(&format!(
            "fsfeed_publisher_push_ok_total{{publisher=\"m\"}} {pushed}"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("fsfeed_publishers_push_ok_total {pushed}")),
        "{body}"
    );
    assert!(p.term().success());
    // The receiver now refuses every batch with 403: parked, and --once fails.
    rx.answer(fsfeed_delivery::testkit::Answer::Status(403));
    append(&ledger, 1_000, 500);
    let before = committed(&ledger, "m");
    let out = publish_once(&ldir, &cfgfile);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert_eq!(
        committed(&ledger, "m"),
        before,
        "a rejected batch was committed"
    );
    let (text, v) = status_json(&ldir);
    assert_eq!(v[0]["state"], "parked", "{text}");
    // The receiver is fixed; --once now drains the rest.
    rx.answer(fsfeed_delivery::testkit::Answer::Accept);
    let out = publish_once(&ldir, &cfgfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(caught_up(&ledger, "m"));
    let cfg = Config::from_file(&cfgfile).unwrap().publishers.remove(0);
    check(&expected(&ledger, &cfg), &rx.received(), 0);
}
