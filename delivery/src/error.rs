//! Errors of the delivery crate: a bad config (typed, names the key), the
//! core's errors, and what a transport says about a failed send.

use std::fmt;

/// The codes of this crate's own errors ([`Error::code`]); the others are
/// the core's (`fsfeed::error::ERROR_CODES`).
pub const ERROR_CODES: &[&str] = &["invalid_config", "publisher_failed"];

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config is wrong: a missing or unknown key, a value out of range,
    /// an endpoint that does not parse. Nothing was started.
    #[error("invalid config: {0}")]
    Config(String),
    /// The ledger said no.
    #[error(transparent)]
    Ledger(#[from] fsfeed::Error),
    /// A file of the delivery state (status, lease) could not be used.
    #[error("{0}")]
    Io(String),
    /// A publisher stopped on an error it cannot retry (`--once` reports it).
    #[error("publisher {name}: {message}")]
    Publisher {
        /// The publisher.
        name: String,
        /// What it said (secrets removed).
        message: String,
    },
}

impl Error {
    /// A stable code for the error kind, as the core's codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "invalid_config",
            Error::Ledger(e) => e.code(),
            Error::Io(_) => "io",
            Error::Publisher { .. } => "publisher_failed",
        }
    }
}

/// Whether a failed send may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The far side is away, busy or slow (a 5xx, 408, 429, a timeout, a
    /// refused connection, a broker nack): back off and send the same batch again.
    Retry,
    /// The far side rejected the batch for good (an HTTP 4xx, an unroutable
    /// AMQP message, a missing exchange): the publisher parks, its cursor
    /// stays, `status` shows why.
    Permanent,
}

/// A failed send. Its message never holds a secret: transports build it
/// from their own words and the publisher scrubs it once more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Retry or park.
    pub kind: FailKind,
    /// What happened.
    pub message: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> SendError {
        SendError {
            kind: FailKind::Retry,
            message: message.into(),
        }
    }

    /// A rejection for good.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            kind: FailKind::Permanent,
            message: message.into(),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}
