//! The publishers' config: TOML, one `[[publisher]]` table each. Every key
//! is listed in `delivery/README.md`; an unknown key, a wrong type or a
//! value out of range is `invalid_config` naming the key, and nothing starts.
//!
//! ```toml
//! [[publisher]]
//! name = "audit"                                   # also the cursor name
//! endpoint = "amqp://guest:guest@127.0.0.1:5672/"  # or http(s)://host:port/path, kafka://host:port
//! amqp_exchange = "fsfeed"
//! format = "s3"
//! filter = { buckets = ["b1"], prefix = "logs/", events = ["s3:ObjectCreated:*"] }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fsfeed::{ExpandOptions, Filter, Format, Framing, OnGap, Start};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::{Endpoint, Scheme, Scrubber, Secret};

/// A whole config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The publishers, in file order.
    pub publishers: Vec<PublisherConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    publisher: Vec<RawPublisher>,
}

/// AMQP acknowledgement level (Ceph's `amqp-ack-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmqpAckLevel {
    /// Delivered once written to the broker's socket.
    None,
    /// Delivered once the broker confirmed it (publisher confirms).
    Broker,
}

/// Which leader gate a publisher from a config uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateKind {
    /// Always leads.
    Always,
    /// Leads while it holds an exclusive lock on the lease file.
    Lock,
}

/// Which records a publisher expands, as `expand = ["renames", "deletes"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ExpandKey {
    Renames,
    Deletes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublisher {
    name: String,
    endpoint: Endpoint,
    #[serde(default = "default_format")]
    format: String,
    s3_profile: Option<String>,
    s3: Option<toml::Table>,
    framing: Option<String>,
    #[serde(default)]
    filter: Filter,
    #[serde(default)]
    expand: Vec<ExpandKey>,
    start: Option<String>,
    on_gap: Option<String>,
    #[serde(default = "default_batch_max")]
    batch_max: u64,
    #[serde(default = "default_batch_bytes")]
    batch_bytes: u64,
    #[serde(default)]
    linger_ms: u64,
    #[serde(default = "default_gate")]
    gate: GateKind,
    lock_file: Option<PathBuf>,
    #[serde(default = "default_retry_initial")]
    retry_initial_ms: u64,
    #[serde(default = "default_retry_max")]
    retry_max_ms: u64,
    #[serde(default = "default_parked_retry")]
    parked_retry_ms: u64,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    http_per_record: bool,
    #[serde(default)]
    http_headers: BTreeMap<String, Secret>,
    http_bearer_token: Option<Secret>,
    #[serde(default = "yes")]
    verify_tls: bool,
    amqp_exchange: Option<String>,
    amqp_routing_key: Option<String>,
    #[serde(default = "default_ack_level")]
    amqp_ack_level: AmqpAckLevel,
    kafka_topic: Option<String>,
    #[serde(default)]
    kafka_options: BTreeMap<String, Secret>,
}

fn default_format() -> String {
    "s3".into()
}
fn default_batch_max() -> u64 {
    1000
}
fn default_batch_bytes() -> u64 {
    1 << 20
}
fn default_gate() -> GateKind {
    GateKind::Always
}
fn default_retry_initial() -> u64 {
    100
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_parked_retry() -> u64 {
    60_000
}
fn default_timeout() -> u64 {
    10_000
}
fn yes() -> bool {
    true
}
fn default_ack_level() -> AmqpAckLevel {
    AmqpAckLevel::Broker
}

/// Largest `batch_max`: a batch is held in memory until acknowledged.
pub const MAX_BATCH: u64 = 100_000;

/// One publisher, checked.
#[derive(Clone)]
pub struct PublisherConfig {
    /// Its name, also its cursor's.
    pub name: String,
    /// Where it sends.
    pub endpoint: Endpoint,
    /// The records' format.
    pub format: Format,
    /// How records become messages.
    pub framing: Framing,
    /// One message per record (`s3-record`; `json-lines` except for an HTTP
    /// publisher without `http_per_record`, which posts the lines of a batch).
    pub per_record: bool,
    /// Which events it sends.
    pub filter: Filter,
    /// Which events it expands.
    pub expand: ExpandOptions,
    /// Where a publisher with no committed position starts.
    pub start: Start,
    /// What it does when retention overtook it.
    pub on_gap: OnGap,
    /// Most records per batch.
    pub batch_max: usize,
    /// Most bytes per message (a batch framed as one message is split to fit).
    pub batch_bytes: usize,
    /// How long a batch waits to fill once it has a record.
    pub linger: Duration,
    /// The leader gate.
    pub gate: GateKind,
    /// The lease file of the `lock` gate (default `LEDGER/publishers/NAME.lock`).
    pub lock_file: Option<PathBuf>,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often a parked publisher tries its batch again.
    pub parked_retry: Duration,
    /// How long one send may take before it counts as failed (and is retried).
    pub timeout: Duration,
    /// HTTP: extra request headers.
    pub http_headers: BTreeMap<String, Secret>,
    /// HTTP: `Authorization: Bearer` token.
    pub http_bearer_token: Option<Secret>,
    /// HTTPS: check the server's certificate.
    pub verify_tls: bool,
    /// AMQP: the exchange (it must exist).
    pub amqp_exchange: String,
    /// AMQP: the routing key (default: the publisher's name).
    pub amqp_routing_key: String,
    /// AMQP: when a message counts as delivered.
    pub amqp_ack_level: AmqpAckLevel,
    /// Kafka: the topic.
    pub kafka_topic: String,
    /// Kafka: extra librdkafka producer properties.
    pub kafka_options: BTreeMap<String, Secret>,
}

impl fmt::Debug for PublisherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("format", &self.format)
            .field("framing", &self.framing)
            .field("gate", &self.gate)
            .field("http_headers", &self.http_headers)
            .field("http_bearer_token", &self.http_bearer_token)
            .field("kafka_options", &self.kafka_options)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PublisherConfig {
    /// `NAME -> ENDPOINT` (password as `***`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.name, self.endpoint)
    }
}

impl Config {
    /// Read and check a config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        Config::from_toml(&read_file(path.as_ref()).map_err(Error::Config)?)
    }

    /// Parse and check a config. Errors name the line and key, never quote
    /// the line (it may hold a password).
    pub fn from_toml(text: &str) -> Result<Config> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Error::Config(toml_error(text, &e)))?;
        if raw.publisher.is_empty() {
            return Err(Error::Config(
                "no [[publisher]] table: nothing to publish".into(),
            ));
        }
        let mut publishers = Vec::with_capacity(raw.publisher.len());
        for p in raw.publisher {
            let c = check(p)?;
            if publishers
                .iter()
                .any(|o: &PublisherConfig| o.name == c.name)
            {
                return Err(name_twice(&c.name));
            }
            publishers.push(c);
        }
        Ok(Config { publishers })
    }
}

/// A config file's text, or the config error text naming the file (shared
/// by every fsfeed config's `from_file`).
pub fn read_file(path: &Path) -> std::result::Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A TOML parse error as a config error text: the line and key it is at,
/// never the line itself or a value it quotes (either may be a password).
/// Shared by every fsfeed config (publishers, the pub/sub service).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = match e.span() {
        Some(s) => {
            let start = s.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let from = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let key = text[from..]
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"'))
                .filter(|k| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            match key {
                Some(k) => format!("line {line}, key {k}: "),
                None => format!("line {line}: "),
            }
        }
        None => String::new(),
    };
    format!("{at}{}", without_values(e.message().trim_end()))
}

/// The error of a publisher name given twice (in a file, or to a supervisor).
pub(crate) fn name_twice(name: &str) -> Error {
    Error::Config(format!(
        "publisher name {name:?} appears twice (it names a cursor)"
    ))
}

/// A serde "invalid type/value" message without the value it quotes (the
/// value of a secret key typed wrong must not reach an error).
fn without_values(m: &str) -> String {
    if !(m.starts_with("invalid type") || m.starts_with("invalid value")) {
        return m.to_string();
    }
    let mut out = String::with_capacity(m.len());
    let mut quote: Option<char> = None;
    for ch in m.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '"' || ch == '`' => {
                quote = Some(ch);
                out.push_str("(value)");
            }
            None => out.push(ch),
        }
    }
    out
}

impl PublisherConfig {
    /// A publisher to `endpoint` with every other key at its default (the
    /// Rust API's starting point; a config file goes through [`Config::from_toml`]).
    pub fn new(name: &str, endpoint: &str) -> Result<PublisherConfig> {
        let mut t = toml::Table::new();
        t.insert("name".into(), name.into());
        t.insert("endpoint".into(), endpoint.into());
        let raw: RawPublisher = t
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.message().trim_end().to_string()))?;
        check(raw)
    }

    /// Every secret of this publisher, for scrubbing error texts.
    pub fn scrubber(&self) -> Scrubber {
        let mut s = Scrubber::default();
        if let Some(p) = self.endpoint.password() {
            s.add(p);
        }
        if let Some(t) = &self.http_bearer_token {
            s.add(t);
        }
        for v in self
            .http_headers
            .values()
            .chain(self.kafka_options.values())
        {
            s.add(v);
        }
        s
    }

    /// Check the settings that can be changed after [`PublisherConfig::new`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("publisher {:?}: {m}", self.name)));
        fsfeed::check_cursor_name(&self.name).map_err(|e| Error::Config(format!("name: {e}")))?;
        self.filter
            .validate()
            .map_err(|e| Error::Config(format!("publisher {:?}: {e}", self.name)))?;
        if self.batch_max == 0 || self.batch_max as u64 > MAX_BATCH {
            return bad(format!("batch_max must be 1 to {MAX_BATCH}"));
        }
        if self.batch_bytes < 1024 {
            return bad("batch_bytes must be at least 1024".into());
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return bad("retry_initial_ms must be at least 1 and at most retry_max_ms".into());
        }
        if self.timeout.is_zero() || self.parked_retry.is_zero() {
            return bad("timeout_ms and parked_retry_ms must be at least 1".into());
        }
        let per_record = self.per_record;
        fsfeed::frame::Framer::new(&self.format, self.framing)
            .map_err(|e| Error::Config(format!("publisher {:?}: {e}", self.name)))?;
        match self.endpoint.scheme() {
            Scheme::Http => {}
            Scheme::Amqp => {
                if self.amqp_exchange.is_empty() {
                    return bad("amqp_exchange is required for an amqp endpoint".into());
                }
                if !per_record {
                    return bad("AMQP sends one record per message: framing must be s3-record or json-lines".into());
                }
            }
            Scheme::Kafka => {
                if self.kafka_topic.is_empty() {
                    return bad("kafka_topic is required for a kafka endpoint".into());
                }
                if !per_record {
                    return bad("Kafka sends one record per message: framing must be s3-record or json-lines".into());
                }
            }
        }
        Ok(())
    }
}

fn check(p: RawPublisher) -> Result<PublisherConfig> {
    let name = p.name.clone();
    let bad = |m: String| Error::Config(format!("publisher {name:?}: {m}"));
    let s3 = match p.s3 {
        Some(t) => Some(serde_json::to_value(t).map_err(|e| bad(format!("s3: {e}")))?),
        None => None,
    };
    let format = Format::from_parts(&p.format, p.s3_profile.as_deref(), s3)
        .map_err(|e| bad(e.to_string()))?;
    let scheme = p.endpoint.scheme();
    let framing = match &p.framing {
        Some(f) => f.parse().map_err(|e: fsfeed::Error| bad(e.to_string()))?,
        None => match (&format, scheme, p.http_per_record) {
            (Format::S3(_), Scheme::Http, false) => Framing::S3Message,
            (Format::S3(_), _, _) => Framing::S3PerRecord,
            _ => Framing::JsonLines,
        },
    };
    let only = |key: &str, wanted: Scheme, set: bool| -> Result<()> {
        if set && scheme != wanted {
            return Err(bad(format!(
                "{key} applies to {} endpoints only",
                match wanted {
                    Scheme::Http => "http",
                    Scheme::Amqp => "amqp",
                    Scheme::Kafka => "kafka",
                }
            )));
        }
        Ok(())
    };
    only("http_per_record", Scheme::Http, p.http_per_record)?;
    only("http_headers", Scheme::Http, !p.http_headers.is_empty())?;
    only(
        "http_bearer_token",
        Scheme::Http,
        p.http_bearer_token.is_some(),
    )?;
    only("amqp_exchange", Scheme::Amqp, p.amqp_exchange.is_some())?;
    only(
        "amqp_routing_key",
        Scheme::Amqp,
        p.amqp_routing_key.is_some(),
    )?;
    only("kafka_topic", Scheme::Kafka, p.kafka_topic.is_some())?;
    only("kafka_options", Scheme::Kafka, !p.kafka_options.is_empty())?;
    if p.http_per_record && p.framing.is_some() {
        return Err(bad("give http_per_record or framing, not both".into()));
    }
    if p.http_bearer_token.is_some() && p.endpoint.user().is_some() {
        return Err(bad(
            "give user info in the endpoint (basic auth) or http_bearer_token, not both".into(),
        ));
    }
    if p.lock_file.is_some() && p.gate != GateKind::Lock {
        return Err(bad("lock_file applies to gate = \"lock\" only".into()));
    }
    for k in p.http_headers.keys() {
        let ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !ok {
            return Err(bad(format!("http_headers: {k:?} is not a header name")));
        }
    }
    let on_missing = match p.start.as_deref() {
        None | Some("earliest") => Start::Earliest,
        Some("latest") => Start::Latest,
        Some(other) => {
            return Err(bad(format!(
                "start {other:?} is not earliest or latest (where a new publisher begins)"
            )))
        }
    };
    let on_gap = match p.on_gap.as_deref() {
        None => OnGap::Report,
        Some(g) => g.parse().map_err(|e: fsfeed::Error| bad(e.to_string()))?,
    };
    let per_record = match framing {
        Framing::S3PerRecord => true,
        Framing::S3Message | Framing::HdfsProto => false,
        Framing::JsonLines => scheme != Scheme::Http || p.http_per_record,
    };
    let c = PublisherConfig {
        per_record,
        amqp_routing_key: p.amqp_routing_key.unwrap_or_else(|| p.name.clone()),
        name: p.name,
        endpoint: p.endpoint,
        format,
        framing,
        filter: p.filter,
        expand: ExpandOptions {
            renames: p.expand.contains(&ExpandKey::Renames),
            deletes: p.expand.contains(&ExpandKey::Deletes),
        },
        start: on_missing,
        on_gap,
        batch_max: p.batch_max.min(MAX_BATCH + 1) as usize,
        batch_bytes: p.batch_bytes.min(usize::MAX as u64) as usize,
        linger: Duration::from_millis(p.linger_ms),
        gate: p.gate,
        lock_file: p.lock_file,
        retry_initial: Duration::from_millis(p.retry_initial_ms),
        retry_max: Duration::from_millis(p.retry_max_ms),
        parked_retry: Duration::from_millis(p.parked_retry_ms),
        timeout: Duration::from_millis(p.timeout_ms),
        http_headers: p.http_headers,
        http_bearer_token: p.http_bearer_token,
        verify_tls: p.verify_tls,
        amqp_exchange: p.amqp_exchange.unwrap_or_default(),
        amqp_ack_level: p.amqp_ack_level,
        kafka_topic: p.kafka_topic.unwrap_or_default(),
        kafka_options: p.kafka_options,
    };
    c.validate()?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_key_not_the_value() {
        let e = Config::from_toml(
            "[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nhttp_bearer_token = 12345678\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 4, key http_bearer_token"), "{e}");
        assert!(!e.contains("12345678"), "{e}");
        let e = Config::from_toml(
            "[[publisher]]\nname = \"a\"\nendpoint = \"http://h/\"\nbatch_max = \"hunter2\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("key batch_max") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn defaults_and_framing_per_transport() {
        let c = Config::from_toml(
            "[[publisher]]\nname = \"h\"\nendpoint = \"http://h/\"\n[[publisher]]\nname = \"k\"\nendpoint = \"kafka://h\"\nkafka_topic = \"t\"\nformat = \"native\"\n",
        )
        .unwrap();
        let (h, k) = (&c.publishers[0], &c.publishers[1]);
        assert_eq!((h.framing, h.per_record), (Framing::S3Message, false));
        assert_eq!((k.framing, k.per_record), (Framing::JsonLines, true));
        assert_eq!(h.batch_max, 1000);
        assert_eq!(h.gate, GateKind::Always);
        assert_eq!(h.amqp_routing_key, "h");
        assert_eq!(h.start, Start::Earliest);
    }
}
