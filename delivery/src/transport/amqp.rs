//! AMQP 0.9.1 (RabbitMQ) through `lapin`, as Ceph's AMQP endpoint: the URI
//! is `amqp[s]://[user:password@]host[:port][/vhost]` (defaults guest/guest,
//! port 5672 or 5671, vhost `/`), the exchange must exist (it is declared
//! passively; a missing one parks the publisher), the routing key is
//! `amqp_routing_key` (default: the publisher's name, Ceph's topic). One
//! message per record, persistent (delivery mode 2), `mandatory`, with
//! `message_id` = the record's event id, `content_type`, and headers
//! `fsfeed-event-name`, `fsfeed-seq`, `fsfeed-key`.
//!
//! `amqp_ack_level = "broker"` turns on publisher confirms: a send returns
//! once the broker confirmed every message. A nack or a lost connection is
//! retried; a message the broker returns as unroutable parks the publisher.
//! `"none"`: a send returns once the messages are written to the socket.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{chain, content_type, Message};
use crate::config::{AmqpAckLevel, PublisherConfig};
use crate::error::SendError;
use crate::secret::{Endpoint, Secret};

/// The AMQP transport.
pub struct Amqp {
    endpoint: Endpoint,
    exchange: String,
    routing_key: String,
    ack: AmqpAckLevel,
    timeout: std::time::Duration,
    content_type: &'static str,
    conn: Option<(Connection, Channel)>,
}

impl Amqp {
    /// Not connected yet.
    pub fn new(cfg: &PublisherConfig) -> Amqp {
        Amqp {
            endpoint: cfg.endpoint.clone(),
            exchange: cfg.amqp_exchange.clone(),
            routing_key: cfg.amqp_routing_key.clone(),
            ack: cfg.amqp_ack_level,
            timeout: cfg.timeout,
            content_type: content_type(cfg.framing, true),
            conn: None,
        }
    }

    fn uri(&self) -> AMQPUri {
        let url = self.endpoint.url();
        let tls = url.scheme() == "amqps";
        let vhost = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
            .decode_utf8_lossy()
            .into_owned();
        AMQPUri {
            scheme: if tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.endpoint.user().unwrap_or("guest").to_string(),
                    password: self
                        .endpoint
                        .password()
                        .map(Secret::expose)
                        .unwrap_or(if self.endpoint.user().is_some() {
                            ""
                        } else {
                            "guest"
                        })
                        .to_string(),
                },
                host: url.host_str().unwrap_or_default().to_string(),
                port: url.port().unwrap_or(if tls { 5671 } else { 5672 }),
            },
            vhost: if vhost.is_empty() { "/".into() } else { vhost },
            query: AMQPQueryString {
                connection_timeout: Some(self.timeout.as_millis() as u64),
                ..Default::default()
            },
        }
    }

    fn fail(&self, what: &str, e: &lapin::Error) -> SendError {
        SendError::retry(format!("AMQP {what} at {}: {}", self.endpoint, chain(e)))
    }

    /// Connect, check the exchange, turn on confirms.
    pub async fn connect(&mut self) -> Result<(), SendError> {
        if let Some((c, ch)) = &self.conn {
            if c.status().connected() && ch.status().connected() {
                return Ok(());
            }
        }
        self.conn = None;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let conn = tokio::time::timeout(self.timeout, Connection::connect_uri(self.uri(), props))
            .await
            .map_err(|_| SendError::retry(format!("AMQP connect to {}: timed out", self.endpoint)))?
            .map_err(|e| self.fail("connect", &e))?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| self.fail("channel", &e))?;
        if let Err(e) = ch
            .exchange_declare(
                &self.exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        {
            let _ = conn.close(200, "exchange missing").await;
            let text = chain(&e);
            return Err(if text.contains("NOT_FOUND") || text.contains("404") {
                SendError::permanent(format!(
                    "AMQP exchange {:?} does not exist at {} (create it first, as Ceph requires)",
                    self.exchange, self.endpoint
                ))
            } else {
                self.fail("exchange check", &e)
            });
        }
        if self.ack == AmqpAckLevel::Broker {
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| self.fail("confirm.select", &e))?;
        }
        self.conn = Some((conn, ch));
        Ok(())
    }

    /// Publish every message; with confirms, wait for all of them.
    pub async fn send(&mut self, messages: &[Message]) -> Result<(), SendError> {
        self.connect().await?;
        let r = tokio::time::timeout(self.timeout, self.publish(messages)).await;
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(SendError::retry(format!(
                "AMQP at {}: no confirm within {} ms",
                self.endpoint,
                self.timeout.as_millis()
            ))),
        };
        if r.is_err() {
            // A channel that failed a publish is in an unknown state: start over.
            self.close().await;
        }
        r
    }

    async fn publish(&self, messages: &[Message]) -> Result<(), SendError> {
        let Some((_, ch)) = &self.conn else {
            return Err(SendError::retry("AMQP: not connected"));
        };
        let confirms = self.ack == AmqpAckLevel::Broker;
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let mut headers = FieldTable::default();
            if let Some(n) = m.event_name {
                headers.insert(
                    ShortString::from("fsfeed-event-name"),
                    AMQPValue::LongString(LongString::from(n)),
                );
            }
            headers.insert(
                ShortString::from("fsfeed-seq"),
                AMQPValue::LongLongInt(m.seq as i64),
            );
            if let Some(k) = &m.key {
                headers.insert(
                    ShortString::from("fsfeed-key"),
                    AMQPValue::LongString(LongString::from(k.as_str())),
                );
            }
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from(self.content_type))
                .with_message_id(ShortString::from(m.event_id.as_str()))
                .with_headers(headers);
            let c = ch
                .basic_publish(
                    &self.exchange,
                    &self.routing_key,
                    BasicPublishOptions {
                        mandatory: confirms,
                        immediate: false,
                    },
                    &m.payload,
                    props,
                )
                .await
                .map_err(|e| self.fail("publish", &e))?;
            pending.push((m, c));
        }
        for (m, c) in pending {
            match c.await.map_err(|e| self.fail("confirm", &e))? {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(returned)) => {
                    return Err(SendError::permanent(format!(
                        "AMQP message {} is unroutable: exchange {:?} has no queue bound for routing key {:?} ({} {})",
                        m.event_id,
                        self.exchange,
                        self.routing_key,
                        returned.reply_code,
                        returned.reply_text
                    )))
                }
                Confirmation::Nack(_) => {
                    return Err(SendError::retry(format!(
                        "AMQP broker at {} nacked message {}",
                        self.endpoint, m.event_id
                    )))
                }
            }
        }
        Ok(())
    }

    /// Close the connection.
    pub async fn close(&mut self) {
        if let Some((c, _)) = self.conn.take() {
            let _ =
                tokio::time::timeout(self.timeout, c.close(200, "fsfeed publisher closing")).await;
        }
    }
}
