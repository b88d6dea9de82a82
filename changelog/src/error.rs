//! Errors of the change log.

/// Every `code()` a change-log error can have (besides the ledger's).
pub const ERROR_CODES: &[&str] = &[
    "invalid_config",
    "store_failed",
    "lease_lost",
    "io",
    "corrupt",
];

/// The change log's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad config or argument (names the key, never a value).
    #[error("invalid config: {0}")]
    Config(String),
    /// The ledger's error.
    #[error(transparent)]
    Ledger(#[from] fsfeed::Error),
    /// The S3 store failed (after retrying for `retry_for`); the text holds no secret.
    #[error("store failed: {0}")]
    Store(String),
    /// Another uploader holds the lease (or took it over).
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// An object in the bucket is no change-log object this build reads.
    #[error("corrupt change-log object: {0}")]
    Corrupt(String),
}

impl Error {
    /// A stable code per kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "invalid_config",
            Error::Ledger(e) => e.code(),
            Error::Store(_) => "store_failed",
            Error::LeaseLost(_) => "lease_lost",
            Error::Io(_) => "io",
            Error::Corrupt(_) => "corrupt",
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}
