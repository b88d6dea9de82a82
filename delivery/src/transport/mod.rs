//! Transports: how messages reach the far side. Each has the same shape: a
//! connect step, `send(messages)` that returns once the far side has
//! acknowledged every message (or says why not: retry or park), and close.
//! Their configs live in [`crate::config::PublisherConfig`], whose `Debug`
//! and `Display` redact secrets.
//!
//! | endpoint | module | acknowledged when |
//! |---|---|---|
//! | `http(s)://` | `http` | the response is 2xx |
//! | `amqp(s)://` | `amqp` | written (`amqp_ack_level = "none"`) or confirmed by the broker (`"broker"`) |
//! | `kafka://` | `kafka` | the in-sync replicas have it (`acks=all`, idempotent producer) |

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;

use fsfeed::Framing;

use crate::config::PublisherConfig;
use crate::error::{Error, Result, SendError};
use crate::secret::Scheme;

/// One message on the wire: a framed record (per-record framings) or a
/// framed batch, with what a consumer needs to drop duplicates.
#[derive(Debug, Clone)]
pub struct Message {
    /// The bytes.
    pub payload: Vec<u8>,
    /// Event id of the first record in the message.
    pub event_id: String,
    /// Event id of the last record (the same as `event_id` for one record).
    pub last_event_id: String,
    /// How many records the message holds.
    pub records: usize,
    /// For a message of one record: its seq.
    pub seq: u64,
    /// For a message of one record: `bucket/key` of its object (the Kafka
    /// message key, so one object's records stay in one partition, in order).
    pub key: Option<String>,
    /// For a message of one record: its event name ([`fsfeed::event_name::of_record`]).
    pub event_name: Option<&'static str>,
}

/// `bucket/key` of a record's object: the Kafka message key and AMQP
/// `fsfeed-key` header of a message of one record.
pub fn message_key(r: &fsfeed::Record) -> String {
    format!("{}/{}", r.bucket(), r.object_key())
}

/// The MIME type of a framing's messages.
pub fn content_type(framing: Framing, per_record: bool) -> &'static str {
    match framing {
        Framing::HdfsProto => "application/x-protobuf",
        Framing::JsonLines if !per_record => "application/x-ndjson",
        _ => "application/json",
    }
}

/// A connected (or connecting) transport.
pub enum Transport {
    /// HTTP webhook.
    #[cfg(feature = "http")]
    Http(http::Http),
    /// AMQP 0.9.1.
    #[cfg(feature = "amqp")]
    Amqp(Box<amqp::Amqp>),
    /// Kafka.
    #[cfg(feature = "kafka")]
    Kafka(kafka::Kafka),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Transport {
    /// The transport for a publisher's endpoint. Building it does no I/O
    /// (the first send connects); an endpoint whose transport this build
    /// left out is `invalid_config`.
    pub fn new(cfg: &PublisherConfig) -> Result<Transport> {
        let missing = |f: &str| {
            Error::Config(format!(
                "publisher {:?}: this build has no {f} transport (cargo feature `{f}`)",
                cfg.name
            ))
        };
        match cfg.endpoint.scheme() {
            #[cfg(feature = "http")]
            Scheme::Http => Ok(Transport::Http(http::Http::new(cfg)?)),
            #[cfg(feature = "amqp")]
            Scheme::Amqp => Ok(Transport::Amqp(Box::new(amqp::Amqp::new(cfg)))),
            #[cfg(feature = "kafka")]
            Scheme::Kafka => Ok(Transport::Kafka(kafka::Kafka::new(cfg)?)),
            #[allow(unreachable_patterns)]
            Scheme::Http => Err(missing("http")),
            #[allow(unreachable_patterns)]
            Scheme::Amqp => Err(missing("amqp")),
            #[allow(unreachable_patterns)]
            Scheme::Kafka => Err(missing("kafka")),
        }
    }

    /// `http`, `amqp` or `kafka`.
    pub fn kind(&self) -> &'static str {
        match *self {
            #[cfg(feature = "http")]
            Transport::Http(_) => "http",
            #[cfg(feature = "amqp")]
            Transport::Amqp(_) => "amqp",
            #[cfg(feature = "kafka")]
            Transport::Kafka(_) => "kafka",
        }
    }

    /// Connect now (a send connects anyway when it has to).
    pub async fn connect(&mut self) -> std::result::Result<(), SendError> {
        match self {
            #[cfg(feature = "http")]
            Transport::Http(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Transport::Amqp(t) => t.connect().await,
            #[cfg(feature = "kafka")]
            Transport::Kafka(t) => t.connect().await,
        }
    }

    /// Send every message, in order; `Ok` once the far side acknowledged all.
    pub async fn send(&mut self, messages: &[Message]) -> std::result::Result<(), SendError> {
        match self {
            #[cfg(feature = "http")]
            Transport::Http(t) => t.send(messages).await,
            #[cfg(feature = "amqp")]
            Transport::Amqp(t) => t.send(messages).await,
            #[cfg(feature = "kafka")]
            Transport::Kafka(t) => t.send(messages).await,
        }
    }

    /// Close the connection (what was acknowledged stays acknowledged).
    pub async fn close(&mut self) {
        match self {
            #[cfg(feature = "http")]
            Transport::Http(_) => {}
            #[cfg(feature = "amqp")]
            Transport::Amqp(t) => t.close().await,
            #[cfg(feature = "kafka")]
            Transport::Kafka(t) => t.close().await,
        }
    }
}

/// An error and its sources, one line (client libraries put the useful
/// part in a source).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
