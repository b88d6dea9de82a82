//! Errors: the service's own (config, ledger, state store) and what a
//! request gets back (an HTTP status with an S3 error code).

/// Every `code()` a service error can have.
pub const ERROR_CODES: &[&str] = &["invalid_config", "io", "corrupt", "request"];

/// The service's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad config file, or a bad argument to the service (names the key, never a value).
    #[error("invalid config: {0}")]
    Config(String),
    /// The ledger's error.
    #[error(transparent)]
    Ledger(#[from] fsfeed::Error),
    /// The state store failed (`DIR/pubsub/`).
    #[error("pubsub state: {0}")]
    Io(String),
    /// The state store holds something this build cannot read.
    #[error("pubsub state is corrupt: {0}")]
    Corrupt(String),
    /// A request was refused.
    #[error("{0}")]
    Request(#[from] ApiError),
}

impl Error {
    /// A stable code per kind (the ledger's own codes for its errors).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "invalid_config",
            Error::Ledger(e) => e.code(),
            Error::Io(_) => "io",
            Error::Corrupt(_) => "corrupt",
            Error::Request(_) => "request",
        }
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Error {
        Error::Io(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}

/// A refused request: the HTTP status and the S3 error `Code` of its XML
/// body. The message never holds a key, a signature or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// S3 error code (`AccessDenied`, `NoSuchKey`, ...).
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 403 `AccessDenied`: unsigned, or not the caller's to touch.
    pub fn access_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "AccessDenied", message)
    }

    /// 403 `InvalidAccessKeyId`.
    pub fn invalid_access_key() -> ApiError {
        ApiError::new(
            403,
            "InvalidAccessKeyId",
            "The AWS access key Id you provided does not exist in our records.",
        )
    }

    /// 403 `SignatureDoesNotMatch`.
    pub fn signature_mismatch() -> ApiError {
        ApiError::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }

    /// 403 `RequestTimeTooSkewed`.
    pub fn time_skewed() -> ApiError {
        ApiError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        )
    }

    /// 400 `InvalidArgument`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidArgument", message)
    }

    /// 400 `MalformedXML`.
    pub fn malformed_xml(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "MalformedXML", message)
    }

    /// 400 `EntityTooLarge`.
    pub fn too_large() -> ApiError {
        ApiError::new(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size (1 MiB).",
        )
    }

    /// 400 `RequestTimeout`: the body did not arrive in time.
    pub fn timeout() -> ApiError {
        ApiError::new(
            400,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    }

    /// 404 `NoSuchKey` (a topic, subscription or notification).
    pub fn no_such(what: &str, name: &str) -> ApiError {
        ApiError::new(404, "NoSuchKey", format!("{what} {name:?} does not exist"))
    }

    /// 404 `NoSuchBucket`.
    pub fn no_such_bucket(name: &str) -> ApiError {
        ApiError::new(
            404,
            "NoSuchBucket",
            format!("bucket {name:?} does not exist"),
        )
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }

    /// 500 `InternalError` (the detail goes to the log, not to the client).
    pub fn internal() -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// 503 `ServiceUnavailable` (the ledger cannot be read right now).
    pub fn unavailable() -> ApiError {
        ApiError::new(
            503,
            "ServiceUnavailable",
            "Please reduce your request rate.",
        )
    }
}
