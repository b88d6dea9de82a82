//! The properties fsfeed's fuzz targets check, one function a target.
//!
//! Each takes the fuzzer's bytes and panics when the property fails; a
//! target that only checked "no panic" would miss a parser that accepts
//! garbage or loses fields. The binaries in `fuzz_targets/` (built by
//! `cargo fuzz`) call them, and `tests/corpora.rs` replays every committed
//! input through them on a plain stable build, so each crash the fuzzer
//! found stays a regression test.
//!
//! | target | input | property |
//! |---|---|---|
//! | `op_json` | an op's JSON text | parsed and valid, or a typed invalid-input error; a parsed op survives its canonical JSON and its protobuf encoding unchanged |
//! | `event_proto` | stored event bytes | prost decodes, or not; a decoded event re-encodes to itself, and every renderer (native, S3 aws and ceph, HDFS) gives JSON or no form, the same from `render` and `render_to` |
//! | `history_row` | stored event bytes | the hand-written row parser of history reads exactly what prost decodes |
//! | `event_id` | text, and 12 bytes as a position | ids, positions and starts parse or give their typed error; what parses prints back to itself |
//! | `filter` | filter JSON, then an event's fields | a filter parses or is `invalid_argument`; it survives its JSON form; `matches` agrees with a model written from the documented rules |
//! | `config` | a selector byte, then TOML | publisher, change-log and service configs load or give the typed `invalid_config` error; neither the error nor the loaded config's `Debug` shows a secret of the input |
//! | `pubsub_request` | a request as text, signed (v2) or not | the pub/sub service answers every request without a panic or a 500, never with a secret key in the body, and with JSON that parses where it says JSON |

use std::sync::{Arc, OnceLock};

use fsfeed::render::s3::S3Options;
use fsfeed::{Error, Event, EventId, Filter, Format, Op, Position, Record, Start};
use prost::Message;

/// With `FSFEED_FUZZ_TRACE` set, say what an input gave (to see what the
/// seeds reach).
fn trace(what: std::fmt::Arguments<'_>) {
    if std::env::var_os("FSFEED_FUZZ_TRACE").is_some() {
        eprintln!("{what}");
    }
}

/// The codes of errors caused by input alone.
fn assert_invalid_input(e: &Error) {
    assert!(
        e.is_invalid_input(),
        "an input error must be typed as one, got {} ({e})",
        e.code()
    );
}

/// `op_json`: one op's JSON line, as `fsfeed append` and the bindings take it.
pub fn op_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let op = match Op::from_json(text, 3) {
        Ok(op) => op,
        Err(e) => return assert_invalid_input(&e),
    };
    if let Err(e) = fsfeed::op::validate(&op, 3) {
        return assert_invalid_input(&e);
    }
    let canonical = op.to_json_value();
    let again = Op::from_json_value(canonical.clone(), 3).unwrap_or_else(|e| {
        panic!("the canonical JSON of a parsed op must parse: {e}\n{canonical}")
    });
    assert_eq!(again, op, "canonical JSON changed the op");
    let decoded = Op::decode(op.encode_to_vec().as_slice()).expect("an op's own encoding decodes");
    assert_eq!(decoded, op, "protobuf changed the op");
}

fn formats() -> &'static [Format] {
    static FORMATS: OnceLock<Vec<Format>> = OnceLock::new();
    FORMATS.get_or_init(|| {
        let ceph = S3Options {
            profile: "ceph".parse().expect("a profile"),
            ..S3Options::default()
        };
        vec![
            Format::Native,
            Format::S3(S3Options::default()),
            Format::S3(ceph),
            Format::Hdfs,
        ]
    })
}

/// `event_proto`: the bytes of a stored event, as the ledger reads them.
pub fn event_proto(data: &[u8]) {
    let Ok(event) = Event::decode(data) else {
        return;
    };
    let again = Event::decode(event.encode_to_vec().as_slice()).expect("an event's own encoding");
    assert_eq!(again, event, "re-encoding changed the event");
    let _ = Filter::all().kind("rename").prefix("a/").matches(&event);
    let record = Record::plain(event);
    for format in formats() {
        let r = format.renderer();
        let value = r.render(&record);
        let mut out = Vec::new();
        let wrote = r.render_to(&record, &mut out);
        assert_eq!(
            value.is_some(),
            wrote,
            "{}: render and render_to disagree",
            r.name()
        );
        assert_eq!(r.has_form(&record), wrote, "{}: has_form", r.name());
        if wrote {
            let parsed: serde_json::Value = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{}: render_to wrote no JSON: {e}", r.name()));
            assert!(parsed.is_object(), "{}: a record is an object", r.name());
        }
    }
}

/// `history_row`: the same bytes through history's own row parser.
pub fn history_row(data: &[u8]) {
    if let Err(e) = fsfeed::columnar::check_row_parser(data) {
        panic!("{e}");
    }
}

/// `event_id`: ids, positions and starts as text, and one position as bytes.
pub fn event_id(data: &[u8]) {
    if data.len() >= 12 {
        let seq = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let sub = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        let p = Position::new(seq, sub);
        assert_eq!(
            p.to_string()
                .parse::<Position>()
                .expect("a printed position"),
            p
        );
        if seq > 0 {
            let id = EventId::new(p);
            let text = id.to_string();
            assert_eq!(text.len(), EventId::LEN);
            assert_eq!(EventId::parse(&text).expect("a printed id parses"), id);
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match EventId::parse(s) {
        Ok(id) => {
            assert_eq!(id.to_string(), s, "an id prints back as it was given");
            assert!(id.position().seq >= 1);
        }
        Err(e) => assert_eq!(e.code(), "invalid_event_id"),
    }
    match s.parse::<Position>() {
        Ok(p) => assert_eq!(p.to_string().parse::<Position>().expect("printed"), p),
        Err(e) => assert_eq!(e.code(), "invalid_argument"),
    }
    if let Err(e) = s.parse::<Start>() {
        assert_eq!(e.code(), "invalid_argument");
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
        if let Err(e) = Start::from_json_value(&v) {
            assert_eq!(e.code(), "invalid_argument");
        }
    }
}

/// The documented filter rules, written again from the module docs: every
/// condition given must hold; a pattern may start with `s3:` and end in
/// `*`; prefix and suffix apply to a non-empty key or rename target.
fn filter_model(f: &Filter, event: &Event) -> bool {
    let Some(op) = &event.op else { return false };
    let glob = |pattern: &str, name: &str| {
        let p = pattern.strip_prefix("s3:").unwrap_or(pattern);
        match p.strip_suffix('*') {
            Some(head) => name.starts_with(head),
            None => p == name,
        }
    };
    let event_ok = f.events.is_empty()
        || fsfeed::event_name::of_op(op).is_some_and(|n| f.events.iter().any(|p| glob(p, n)));
    let key_ok = |k: &str| {
        !k.is_empty()
            && f.prefix.as_deref().is_none_or(|p| k.starts_with(p))
            && f.suffix.as_deref().is_none_or(|s| k.ends_with(s))
    };
    let keys_ok =
        (f.prefix.is_none() && f.suffix.is_none()) || key_ok(&event.path) || key_ok(&event.to_path);
    (f.buckets.is_empty() || f.buckets.contains(&op.bucket))
        && (f.kinds.is_empty() || f.kinds.iter().any(|k| k == op.kind_name()))
        && event_ok
        && keys_ok
}

/// `filter`: filter JSON, a NUL, then `kind\0bucket\0key\0to_key`.
pub fn filter(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let Some(Ok(text)) = parts.next().map(std::str::from_utf8) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let f = match Filter::from_json_value(value) {
        Ok(f) => f,
        Err(e) => return assert_eq!(e.code(), "invalid_argument", "{e}"),
    };
    let json = serde_json::to_value(&f).expect("a filter serialises");
    assert_eq!(
        Filter::from_json_value(json).expect("a filter's own JSON"),
        f
    );
    let mut field = || {
        parts
            .next()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let (kind, bucket, key, to_key) = (field(), field(), field(), field());
    let op = match kind.as_bytes().first().map(|b| b % 8) {
        Some(0) => Op::create_file("v", &bucket, &key),
        Some(1) => Op::commit("v", &bucket, &key, 1, "e"),
        Some(2) => Op::rename("v", &bucket, &key, &to_key),
        Some(3) => Op::delete("v", &bucket, &key, false),
        Some(4) => Op::acl_set("v", &bucket, &key, vec![]),
        Some(5) => Op::bucket_create("v", &bucket),
        Some(6) => Op::create_directory("v", &bucket, &key),
        _ => Op::truncate("v", &bucket, &key, 0),
    };
    let to_path = match &op.kind {
        Some(fsfeed::op::Kind::Rename(r)) => r.to_key.clone(),
        _ => String::new(),
    };
    let event = Event {
        seq: 1,
        path: op.key.clone(),
        to_path,
        op: Some(op),
        ..Default::default()
    };
    assert_eq!(
        f.matches(&event),
        filter_model(&f, &event),
        "filter {f:?} on {event:?}"
    );
}

/// The secrets of a TOML text, by key name (`*secret*`, `*password*`,
/// `*token*`) and as the password of an endpoint URL (a key with
/// `endpoint` or `url` in its name), and every other string in it
/// (keys and values), so that a secret that is also written elsewhere in
/// the input is not counted as leaked when it shows.
fn secrets(text: &str) -> (Vec<String>, Vec<String>) {
    fn walk(v: &toml::Value, key: &str, secret: &mut Vec<String>, other: &mut Vec<String>) {
        match v {
            toml::Value::String(s) => {
                // What of an endpoint URL may show: all but its password
                // (its user name, encoded, may hold the same text).
                let k = key.to_ascii_lowercase();
                let mut shown = s.clone();
                let url = if k.contains("endpoint") || k.contains("url") {
                    url::Url::parse(s).ok()
                } else {
                    None
                };
                if let Some(mut u) = url {
                    if let Some(p) = u.password().map(str::to_string) {
                        secret.push(p.clone());
                        // Decoded as the endpoint keeps it.
                        secret.push(
                            percent_encoding::percent_decode_str(&p)
                                .decode_utf8_lossy()
                                .into_owned(),
                        );
                        let _ = u.set_password(None);
                        shown = u.to_string();
                    }
                }
                if k.contains("secret") || k.contains("password") || k.contains("token") {
                    secret.push(s.clone());
                } else {
                    other.push(shown);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|x| walk(x, key, secret, other)),
            toml::Value::Table(t) => {
                for (k, x) in t {
                    other.push(k.clone());
                    walk(x, k, secret, other);
                }
            }
            _ => {}
        }
    }
    let (mut secret, mut other) = (Vec::new(), Vec::new());
    if let Ok(t) = text.parse::<toml::Table>() {
        for (k, x) in &t {
            other.push(k.clone());
            walk(x, k, &mut secret, &mut other);
        }
    }
    // Short or word-like values could show for other reasons (a message
    // naming a key): a secret counts when it holds a digit and a letter,
    // is 8 bytes or more, and is written nowhere else in the input.
    secret.retain(|s| {
        s.len() >= 8
            && s.bytes().any(|b| b.is_ascii_digit())
            && s.bytes().any(|b| b.is_ascii_alphabetic())
            && !other.iter().any(|o| o.contains(s.as_str()))
    });
    (secret, other)
}

/// `config`: the first byte picks the config (publishers, change log, the
/// pub/sub service), the rest is its TOML.
pub fn config(data: &[u8]) {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let shown: Result<String, (&'static str, String)> = match which % 3 {
        0 => fsfeed_delivery::Config::from_toml(text)
            .map(|c| format!("{c:?}"))
            .map_err(|e| (e.code(), e.to_string())),
        1 => fsfeed_changelog::Config::from_toml(text)
            .map(|c| format!("{c:?}"))
            .map_err(|e| (e.code(), e.to_string())),
        _ => fsfeed_pubsub::Config::from_toml(text)
            .map(|c| format!("{c:?}"))
            .map_err(|e| (e.code(), e.to_string())),
    };
    trace(format_args!("{shown:?}"));
    let (secret, _) = secrets(text);
    let out = match &shown {
        Ok(debug) => debug,
        Err((code, message)) => {
            assert_eq!(
                *code, "invalid_config",
                "a config error is typed: {message}"
            );
            message
        }
    };
    for s in &secret {
        assert!(!out.contains(s.as_str()), "secret {s:?} shown: {out}");
    }
}

struct Server {
    _dir: tempfile::TempDir,
    svc: Arc<fsfeed_pubsub::Service>,
    rt: tokio::runtime::Runtime,
}

const ACCESS_KEY: &str = "FUZZAK";
const SECRET_KEY: &str = "fuzz-secret-9f3b2c";

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // On tmpfs where there is one: the state store syncs each change.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        let path = dir.path().join("ledger");
        let writer = fsfeed::Ledger::open(&path).expect("a ledger");
        writer
            .append(Op::bucket_create("vol1", "photos").by("alice", "", ""))
            .expect("an append");
        writer.close().expect("close");
        let config = format!(
            "[[users]]\nuid = \"alice\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let svc = {
            let _g = rt.enter();
            fsfeed_pubsub::Service::open(
                fsfeed::Ledger::open_read_only(&path).expect("read-only"),
                fsfeed_pubsub::Config::from_toml(&config).expect("the fuzz config"),
            )
            .expect("the service")
        };
        Server {
            _dir: dir,
            svc: Arc::new(svc),
            rt,
        }
    })
}

/// The v2 signature a client computes (AWS's "Signing and authenticating
/// REST requests"), written apart from the service's check.
fn sign_v2(method: &str, path: &str, query: &str, content_type: &str, amz_date: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    const SUB: &[&str] = &[
        "acl",
        "delete",
        "location",
        "notification",
        "policy",
        "tagging",
        "uploads",
        "versioning",
        "versions",
    ];
    let mut sub: Vec<String> = query
        .split('&')
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("");
            SUB.contains(&k)
        })
        .map(str::to_string)
        .collect();
    sub.sort();
    let mut resource = path.to_string();
    if !sub.is_empty() {
        resource.push('?');
        resource.push_str(&sub.join("&"));
    }
    let string_to_sign = format!("{method}\n\n{content_type}\n\nx-amz-date:{amz_date}\n{resource}");
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(SECRET_KEY.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `pubsub_request`: `S METHOD TARGET` (signed) or `U METHOD TARGET`
/// (unsigned) or `A METHOD TARGET AUTHORIZATION` (that header as given), a
/// newline, the content type (may be empty), a newline, the body.
pub fn pubsub_request(data: &[u8]) {
    use axum::http::{Method, Request};
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let (Some(first), Some(ctype)) = (lines.next(), lines.next()) else {
        return;
    };
    let body = lines.next().unwrap_or_default().to_vec();
    let (Ok(first), Ok(ctype)) = (std::str::from_utf8(first), std::str::from_utf8(ctype)) else {
        return;
    };
    let mut words = first.splitn(4, ' ');
    let (Some(mode), Some(method), Some(target)) = (words.next(), words.next(), words.next())
    else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = target.parse::<axum::http::Uri>() else {
        return;
    };
    if uri.scheme().is_some() || !target.starts_with('/') {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    let amz_date = now
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("a date");
    let mut req = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header("host", "localhost");
    if !ctype.is_empty() {
        let Ok(v) = axum::http::HeaderValue::from_str(ctype) else {
            return;
        };
        req = req.header("content-type", v);
    }
    req = req.header("x-amz-date", amz_date.as_str());
    match mode {
        "S" => {
            let sig = sign_v2(
                method.as_str(),
                uri.path(),
                uri.query().unwrap_or(""),
                ctype,
                &amz_date,
            );
            req = req.header("authorization", format!("AWS {ACCESS_KEY}:{sig}"));
        }
        "A" => {
            let Ok(v) = axum::http::HeaderValue::from_str(words.next().unwrap_or("")) else {
                return;
            };
            req = req.header("authorization", v);
        }
        _ => {}
    }
    let Ok(req) = req.body(http_body_util::Full::new(bytes::Bytes::from(body))) else {
        return;
    };
    let s = server();
    let resp =
        s.rt.block_on(fsfeed_pubsub::http::handle(s.svc.clone(), req))
            .expect("infallible");
    let status = resp.status().as_u16();
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let bytes =
        s.rt.block_on(http_body_util::BodyExt::collect(resp.into_body()))
            .expect("a full body")
            .to_bytes();
    trace(format_args!("{status} {}", String::from_utf8_lossy(&bytes)));
    assert_ne!(status, 500, "{}", String::from_utf8_lossy(&bytes));
    let text = String::from_utf8_lossy(&bytes);
    // Unless a request carried it (this one or an earlier one, as the name
    // of a subscription it made): answers quote names and parameters.
    // libFuzzer learns the key from these very comparisons, so it will.
    static SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if String::from_utf8_lossy(data).contains(SECRET_KEY) {
        SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    assert!(
        SENT.load(std::sync::atomic::Ordering::Relaxed) || !text.contains(SECRET_KEY),
        "the secret key in an answer: {text}"
    );
    if json && !bytes.is_empty() {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("an answer said JSON and is not: {e}: {text}"));
    }
}
