//! The one error type of fsfeed.
//!
//! Every variant has a stable string [`Error::code`] that the Python and Node
//! bindings expose unchanged; tests assert on codes, never on messages.
//! Errors from validation (`invalid_*`, `unknown_*`, `txid_not_increasing`,
//! `rename_to_self`) are raised before anything is written: the ledger is
//! unchanged. [`Error::Corrupt`] and [`Error::UnsupportedFormat`] mean the data
//! on disk is not what this version can read: stop, do not retry.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fsfeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An op is malformed: a field is missing, has the wrong type, or does not
    /// belong to its kind. `index` is the op's place in its batch (or the
    /// line number, counted from 1, when the op came from JSON lines).
    /// Fix the op; nothing was written.
    #[error("invalid op at {index}: {reason}")]
    InvalidOp {
        /// Place of the op in its batch (0-based), or line number (1-based) for JSON lines.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// JSON that does not parse, or has a value of the wrong type.
    #[error("invalid JSON at {index}: {reason}")]
    InvalidJson {
        /// Place of the op in its batch, or line number.
        index: usize,
        /// The parser's message.
        reason: String,
    },
    /// The op's `kind` is not one fsfeed knows.
    #[error("unknown op kind {kind:?} at {index}")]
    UnknownKind {
        /// Place of the op in its batch, or line number.
        index: usize,
        /// The kind that was given.
        kind: String,
    },
    /// A key (or rename target) is empty, longer than 1024 bytes, holds a NUL
    /// byte, or (FSO layout) has an empty, `.` or `..` segment.
    #[error("invalid key at {index}: {reason}")]
    InvalidKey {
        /// Place of the op in its batch, or line number.
        index: usize,
        /// What is wrong with the key.
        reason: String,
    },
    /// A producer txid that is not greater than the last one stored.
    #[error("txid {txid} at {index} does not follow the last txid {last}")]
    TxidNotIncreasing {
        /// Place of the op in its batch.
        index: usize,
        /// The txid given.
        txid: u64,
        /// The last txid the ledger holds (or that the batch set before it).
        last: u64,
    },
    /// A rename whose target is its source.
    #[error("rename onto itself at {index}")]
    RenameToSelf {
        /// Place of the op in its batch.
        index: usize,
    },
    /// An op names a parent object id that the ledger does not know.
    #[error("unknown parent id {parent_id} at {index}")]
    UnknownParent {
        /// Place of the op in its batch.
        index: usize,
        /// The parent id that was given.
        parent_id: u64,
    },
    /// A create over an existing path without `overwrite`, or a rename onto
    /// an existing path (FSO buckets, per the shadow namespace).
    #[error("{path:?} already exists (op {index})")]
    AlreadyExists {
        /// Place of the op in its batch.
        index: usize,
        /// The path.
        path: String,
    },
    /// A non-recursive delete of a directory that has children.
    #[error("directory {path:?} is not empty (op {index})")]
    DirectoryNotEmpty {
        /// Place of the op in its batch.
        index: usize,
        /// The directory.
        path: String,
    },
    /// A rename of a directory into its own subtree.
    #[error("cannot rename {from:?} into its own subtree {to:?} (op {index})")]
    RenameIntoSubtree {
        /// Place of the op in its batch.
        index: usize,
        /// Source path.
        from: String,
        /// Target path.
        to: String,
    },
    /// A rename or delete of a path the namespace knows to be gone (FSO
    /// buckets): the path, or the directory `gone` above it, was deleted or
    /// renamed away at `seq`, within retained history, and nothing was
    /// created there since. A path the ledger never saw is adopted instead.
    #[error("{path:?} is gone: {gone:?} was deleted or renamed away at seq {seq} (op {index})")]
    PathGone {
        /// Place of the op in its batch.
        index: usize,
        /// The path the op names.
        path: String,
        /// The path, or the directory above it, that went.
        gone: String,
        /// The seq at which it went.
        seq: u64,
    },
    /// A cursor is at a position older than the ledger's first retained seq
    /// and its gap policy is `error`. The cursor did not move: `seek` it.
    #[error("gap: expected seq {expected}, the ledger starts at {actual}")]
    Gap {
        /// The seq the cursor wanted next.
        expected: u64,
        /// The first seq the ledger still holds.
        actual: u64,
    },
    /// The ledger was closed (or its writer stopped) before the call finished.
    #[error("ledger is closed")]
    LedgerClosed,
    /// Another process holds the ledger for writing.
    #[error("ledger {path} is locked by another writer")]
    Locked {
        /// The ledger directory.
        path: PathBuf,
    },
    /// No ledger at the path (and the call does not create one).
    #[error("no ledger at {path}")]
    NotFound {
        /// The directory that was looked at.
        path: PathBuf,
    },
    /// A write on a ledger opened read-only.
    #[error("ledger is open read-only")]
    ReadOnly,
    /// A position past the ledger's head (commit or seek).
    #[error("position {seq}:{sub} is past the head {head}")]
    PositionOutOfRange {
        /// Seq of the position.
        seq: u64,
        /// Sub-index of the position.
        sub: u32,
        /// The ledger head.
        head: u64,
    },
    /// An argument that is not valid for the call (a zero batch size, an
    /// unknown format or policy name, a bad cursor name ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A string that is not an event id fsfeed wrote (see the `event_id` module):
    /// another system's id, or one altered or cut short.
    #[error("invalid event id {id:?}: {reason}")]
    InvalidEventId {
        /// The id given (at most 64 characters of it).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A subscription's callback returned an error (or panicked); the
    /// subscription stopped and did not commit that batch.
    #[error("callback failed: {0}")]
    Callback(String),
    /// RocksDB reported an error that is neither a full disk nor damage.
    #[error("storage error: {0}")]
    Storage(rocksdb::Error),
    /// The file system is full (`ENOSPC`, from RocksDB or a file of fsfeed's
    /// own), or the free-space guard (`OpenOptions::min_free_bytes`) refused
    /// the write. Nothing of the failed call was acknowledged; what was
    /// acknowledged before stays readable. After the guard refused, appends
    /// work again once space is freed; after RocksDB itself failed, once the
    /// ledger is reopened (ARCHITECTURE.md, "Reliability").
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// File system error outside RocksDB (cursor files, checkpoint target).
    #[error("io error: {0}")]
    Io(std::io::Error),
    /// Stored data that does not decode: the ledger is damaged. Stop.
    #[error("ledger data is corrupt: {0}")]
    Corrupt(String),
    /// A ledger written by a format version this build cannot read. Stop.
    #[error("ledger format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this build writes and reads.
        supported: u32,
    },
}

impl From<rocksdb::Error> for Error {
    /// RocksDB's checksum and format failures are `corrupt` and a full disk
    /// is `disk_full`; the rest stays `storage`.
    fn from(e: rocksdb::Error) -> Error {
        let message = e.to_string();
        match e.kind() {
            rocksdb::ErrorKind::Corruption => Error::Corrupt(message),
            _ if is_no_space(&message) => Error::DiskFull(message),
            _ => Error::Storage(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            Error::DiskFull(e.to_string())
        } else {
            Error::Io(e)
        }
    }
}

/// RocksDB reports `ENOSPC` as an IO error whose text is the OS's
/// (`No space left on device`), and its own space checks as `NoSpace`.
fn is_no_space(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("NoSpace")
}

impl Error {
    /// The stable code of this error, shared by every binding.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidOp { .. } => "invalid_op",
            Error::InvalidJson { .. } => "invalid_json",
            Error::UnknownKind { .. } => "unknown_kind",
            Error::InvalidKey { .. } => "invalid_key",
            Error::TxidNotIncreasing { .. } => "txid_not_increasing",
            Error::RenameToSelf { .. } => "rename_to_self",
            Error::UnknownParent { .. } => "unknown_parent",
            Error::AlreadyExists { .. } => "already_exists",
            Error::DirectoryNotEmpty { .. } => "directory_not_empty",
            Error::RenameIntoSubtree { .. } => "rename_into_subtree",
            Error::PathGone { .. } => "path_gone",
            Error::Gap { .. } => "gap",
            Error::LedgerClosed => "ledger_closed",
            Error::Locked { .. } => "ledger_locked",
            Error::NotFound { .. } => "ledger_not_found",
            Error::ReadOnly => "read_only",
            Error::PositionOutOfRange { .. } => "position_out_of_range",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::InvalidEventId { .. } => "invalid_event_id",
            Error::Callback(_) => "callback_failed",
            Error::Storage(_) => "storage",
            Error::DiskFull(_) => "disk_full",
            Error::Io(_) => "io",
            Error::Corrupt(_) => "corrupt",
            Error::UnsupportedFormat { .. } => "unsupported_format",
        }
    }

    /// True for errors caused by the caller's input (the ledger is unchanged
    /// and retrying the same input fails the same way).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidOp { .. }
                | Error::InvalidJson { .. }
                | Error::UnknownKind { .. }
                | Error::InvalidKey { .. }
                | Error::TxidNotIncreasing { .. }
                | Error::RenameToSelf { .. }
                | Error::UnknownParent { .. }
                | Error::AlreadyExists { .. }
                | Error::DirectoryNotEmpty { .. }
                | Error::RenameIntoSubtree { .. }
                | Error::PathGone { .. }
                | Error::InvalidArgument(_)
                | Error::InvalidEventId { .. }
        )
    }

    /// The place in its batch of the op this error is about, if it is
    /// about one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Error::InvalidOp { index, .. }
            | Error::InvalidJson { index, .. }
            | Error::UnknownKind { index, .. }
            | Error::InvalidKey { index, .. }
            | Error::TxidNotIncreasing { index, .. }
            | Error::RenameToSelf { index }
            | Error::UnknownParent { index, .. }
            | Error::AlreadyExists { index, .. }
            | Error::DirectoryNotEmpty { index, .. }
            | Error::RenameIntoSubtree { index, .. }
            | Error::PathGone { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The same error with its op index replaced (used when a batch-relative
    /// index becomes a line number).
    pub fn with_index(self, new: usize) -> Self {
        match self {
            Error::InvalidOp { reason, .. } => Error::InvalidOp { index: new, reason },
            Error::InvalidJson { reason, .. } => Error::InvalidJson { index: new, reason },
            Error::UnknownKind { kind, .. } => Error::UnknownKind { index: new, kind },
            Error::InvalidKey { reason, .. } => Error::InvalidKey { index: new, reason },
            Error::TxidNotIncreasing { txid, last, .. } => Error::TxidNotIncreasing {
                index: new,
                txid,
                last,
            },
            Error::RenameToSelf { .. } => Error::RenameToSelf { index: new },
            Error::UnknownParent { parent_id, .. } => Error::UnknownParent {
                index: new,
                parent_id,
            },
            Error::AlreadyExists { path, .. } => Error::AlreadyExists { index: new, path },
            Error::DirectoryNotEmpty { path, .. } => Error::DirectoryNotEmpty { index: new, path },
            Error::RenameIntoSubtree { from, to, .. } => Error::RenameIntoSubtree {
                index: new,
                from,
                to,
            },
            Error::PathGone {
                path, gone, seq, ..
            } => Error::PathGone {
                index: new,
                path,
                gone,
                seq,
            },
            other => other,
        }
    }
}

/// All codes, for bindings that build one exception class per code.
pub const ERROR_CODES: &[&str] = &[
    "invalid_op",
    "invalid_json",
    "unknown_kind",
    "invalid_key",
    "txid_not_increasing",
    "rename_to_self",
    "unknown_parent",
    "already_exists",
    "directory_not_empty",
    "rename_into_subtree",
    "path_gone",
    "gap",
    "ledger_closed",
    "ledger_locked",
    "ledger_not_found",
    "read_only",
    "position_out_of_range",
    "invalid_argument",
    "invalid_event_id",
    "callback_failed",
    "storage",
    "disk_full",
    "io",
    "corrupt",
    "unsupported_format",
];
