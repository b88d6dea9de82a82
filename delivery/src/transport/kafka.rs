//! Kafka through `rdkafka` (bundled librdkafka: the Rust client with an
//! idempotent producer). The endpoint is Ceph's `kafka://[user:password@]host[:port]`
//! (port 9092 by default); user info turns on SASL PLAIN (`SASL_PLAINTEXT`,
//! or what `kafka_options` set). The producer is idempotent with
//! `acks=all`, so the broker keeps each partition's order across the
//! client's own retries; one message per record, key `bucket/key` (one
//! object's records stay in one partition, in order), headers
//! `fsfeed-event-name`, `fsfeed-seq`, `fsfeed-event-id`.
//!
//! A send enqueues every message, then waits for every delivery report. A
//! failed report is retried as a batch on a new producer, except
//! rejections that cannot pass later (message too large, topic
//! authorization, an invalid topic), which park the publisher.
//! `kafka_options` may add any librdkafka producer property except the
//! ones that make the delivery guarantee (`enable.idempotence`, `acks`).

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::Message;
use crate::config::PublisherConfig;
use crate::error::{Error, Result, SendError};
use crate::secret::Endpoint;

/// Properties the publisher sets itself and a config may not change.
const FIXED: &[&str] = &[
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "metadata.broker.list",
];

/// The Kafka transport.
pub struct Kafka {
    config: ClientConfig,
    endpoint: Endpoint,
    topic: String,
    timeout: Duration,
    producer: Option<FutureProducer>,
}

impl Kafka {
    /// The producer's settings (no I/O yet).
    pub fn new(cfg: &PublisherConfig) -> Result<Kafka> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", cfg.endpoint.host_port(9092))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", cfg.timeout.as_millis().to_string())
            .set("linger.ms", "1")
            .set("client.id", format!("fsfeed-{}", cfg.name));
        if let Some(user) = cfg.endpoint.user() {
            c.set("security.protocol", "SASL_PLAINTEXT")
                .set("sasl.mechanisms", "PLAIN")
                .set("sasl.username", user)
                .set(
                    "sasl.password",
                    cfg.endpoint.password().map(|p| p.expose()).unwrap_or(""),
                );
        }
        for (k, v) in &cfg.kafka_options {
            if FIXED.contains(&k.as_str()) {
                return Err(Error::Config(format!(
                    "publisher {:?}: kafka_options may not set {k:?} (the publisher sets it for at-least-once delivery)",
                    cfg.name
                )));
            }
            c.set(k, v.expose());
        }
        // librdkafka checks every property when a client is made: a bad
        // one is the config's fault, said now rather than at the first send.
        // The producer made here is the one the first send uses (making and
        // dropping one costs its threads' start and stop).
        let producer: FutureProducer = c.create().map_err(|e| {
            Error::Config(cfg.scrubber().scrub(&format!(
                "publisher {:?}: kafka producer settings: {e}",
                cfg.name
            )))
        })?;
        Ok(Kafka {
            config: c,
            endpoint: cfg.endpoint.clone(),
            topic: cfg.kafka_topic.clone(),
            timeout: cfg.timeout,
            producer: Some(producer),
        })
    }

    fn producer(&mut self) -> std::result::Result<&FutureProducer, SendError> {
        if self.producer.is_none() {
            let p: FutureProducer = self.config.create().map_err(|e| {
                // A property librdkafka does not know is the config's fault.
                SendError::permanent(format!("Kafka producer for {}: {e}", self.endpoint))
            })?;
            self.producer = Some(p);
        }
        Ok(self.producer.as_ref().expect("just made"))
    }

    /// Fetch the topic's metadata: the broker connection and the topic's
    /// partitions are ready before the first batch (without it, librdkafka
    /// held the first batch about a second while it looked them up).
    pub async fn connect(&mut self) -> std::result::Result<(), SendError> {
        let producer = self.producer()?.clone();
        let (topic, timeout) = (self.topic.clone(), self.timeout);
        let r = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|_| ())
        })
        .await
        .expect("metadata fetch does not panic");
        r.map_err(|e| SendError::retry(format!("Kafka at {}: metadata: {e}", self.endpoint)))
    }

    /// Enqueue every message, then wait for all delivery reports.
    pub async fn send(&mut self, messages: &[Message]) -> std::result::Result<(), SendError> {
        let r = self.produce(messages).await;
        if r.is_err() {
            // An idempotent producer that failed a delivery may be fenced or
            // out of sequence: the batch goes again on a new one.
            self.producer = None;
        }
        r
    }

    async fn produce(&mut self, messages: &[Message]) -> std::result::Result<(), SendError> {
        let topic = self.topic.clone();
        let endpoint = self.endpoint.to_string();
        let timeout = self.timeout;
        let producer = self.producer()?.clone();
        let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
        for (i, m) in messages.iter().enumerate() {
            let mut headers = OwnedHeaders::new_with_capacity(3);
            if let Some(n) = m.event_name {
                headers = headers.insert(Header {
                    key: "fsfeed-event-name",
                    value: Some(n),
                });
            }
            let seq = m.seq.to_string();
            headers = headers
                .insert(Header {
                    key: "fsfeed-seq",
                    value: Some(&seq),
                })
                .insert(Header {
                    key: "fsfeed-event-id",
                    value: Some(&m.event_id),
                });
            let mut rec = FutureRecord::to(&topic)
                .payload(&m.payload)
                .headers(headers);
            if let Some(k) = &m.key {
                rec = rec.key(k.as_str());
            }
            let started = tokio::time::Instant::now();
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        pending.push_back((i, f));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        // The local queue is full: wait for the oldest report.
                        match pending.pop_front() {
                            Some((j, f)) => report(&messages[j], f.await, &endpoint)?,
                            None => {
                                if started.elapsed() > timeout {
                                    return Err(SendError::retry(format!(
                                        "Kafka at {endpoint}: local queue full"
                                    )));
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await
                            }
                        }
                    }
                    Err((e, _)) => return Err(classify(&e, &messages[i], &endpoint)),
                }
            }
        }
        while let Some((j, f)) = pending.pop_front() {
            report(&messages[j], f.await, &endpoint)?;
        }
        Ok(())
    }

    /// Wait for what is still queued, then drop the producer.
    pub async fn close(&mut self) {
        if let Some(p) = self.producer.take() {
            let t = self.timeout;
            let _ = tokio::task::spawn_blocking(move || p.flush(t)).await;
        }
    }
}

fn report(
    m: &Message,
    r: <DeliveryFuture as std::future::Future>::Output,
    endpoint: &str,
) -> std::result::Result<(), SendError> {
    match r {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(classify(&e, m, endpoint)),
        Err(_) => Err(SendError::retry(format!(
            "Kafka at {endpoint}: the producer went away before message {} was acknowledged",
            m.event_id
        ))),
    }
}

fn classify(e: &KafkaError, m: &Message, endpoint: &str) -> SendError {
    let text = format!("Kafka at {endpoint}: message {}: {e}", m.event_id);
    let permanent = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    );
    if permanent {
        SendError::permanent(text)
    } else {
        SendError::retry(text)
    }
}
