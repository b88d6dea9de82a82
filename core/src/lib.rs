//! # fsfeed
//!
//! A durable, replayable, correctly ordered change feed for filesystems and
//! object stores. A storage system appends each completed namespace
//! operation ([`Op`]) to an embedded RocksDB [`Ledger`]; consumers read it
//! through named [`Cursor`]s.
//!
//! ```
//! use std::time::Duration;
//! use fsfeed::{CursorOptions, Filter, Ledger, Op, Start};
//!
//! # fn main() -> fsfeed::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let ledger = Ledger::open(dir.path().join("ledger"))?;
//! ledger.append(Op::bucket_create("vol1", "b1").at(1_700_000_000_000_000))?;
//! let seq = ledger.append(Op::commit("vol1", "b1", "a/x.bin", 5, "9a0364b9").at(1_700_000_000_000_100))?;
//! assert_eq!(seq, 2);
//!
//! let opts = CursorOptions { filter: Filter::all().prefix("a/"), ..Default::default() };
//! let mut cursor = ledger.cursor(Some("backup"), opts)?;
//! let batch = cursor.read(100, Duration::from_millis(100))?;
//! assert_eq!(batch.records.len(), 1);
//! assert_eq!(batch.records[0].event.path, "a/x.bin");
//! cursor.commit(batch.next)?;               // a restart resumes after it
//! assert_eq!(ledger.cursor(Some("backup"), CursorOptions::default())?.position().seq, 3);
//! # let _ = Start::Earliest;
//! # Ok(())
//! # }
//! ```
//!
//! ## Invariants
//!
//! Each has a test named after it in `core/tests/`.
//!
//! 1. **Dense seq.** `seq` runs 1, 2, 3 ... with no holes; the retained
//!    events are exactly `first_seq..=head_seq`.
//! 2. **Acknowledged means durable.** `append` returns only after the write
//!    batch holding the events, their time index entries, the meta keys and
//!    the retention range deletes was written with the ledger's
//!    [`Durability`] (`Sync`, the default, fsyncs the write-ahead log).
//! 3. **Retention inside the append.** Max events, max age (by op time), max
//!    bytes, and the optional cursor guard are decided from ledger content
//!    alone, by the writer, inside the append's batch, with `delete_range`.
//!    No background thread decides what to delete.
//! 4. **Determinism.** The same ops in the same order give the same events on
//!    every replica ([`Ledger::checksum`] agrees): nothing the ledger stores
//!    comes from a clock or randomness, and how appends were grouped changes
//!    no stored value (events are kept in fixed runs of 32 seqs per value).
//!    (The cursor guard depends on local cursors; replicas agree while it is
//!    off or their cursors agree.)
//! 5. **Cursors stay in range.** A committed position never points past the
//!    head: its seq is at most `head_seq + 1`.
//!
//! ## Durability
//!
//! [`Durability::Sync`] fsyncs once per group commit: concurrent appenders
//! share one fsync. `Buffered` survives a process crash but not a power cut.
//! `None` disables the write-ahead log and is for tests.
//!
//! ## Multi-process use
//!
//! One process writes ([`Ledger::open`]); others read with
//! [`Ledger::open_read_only`] (a RocksDB secondary instance) and keep their
//! named cursors in `LEDGER/cursors/`, which the writer's retention guard
//! also counts.

// The modules, lowest layer first: each imports only modules declared above
// it (ARCHITECTURE.md, "Layers"; core/tests/layers.rs checks it).
pub mod error;
pub mod op;
pub mod namespace;
pub mod expand;
pub mod read;
pub mod event_id;
pub mod event_name;
pub mod filter;
pub mod render;
pub mod frame;
#[cfg(feature = "arrow")]
pub mod columnar;
pub mod ledger;
mod wire;
pub mod notify;
pub mod cursor;
pub mod changes;
#[cfg(feature = "arrow")]
pub mod history;
/// A deterministic demo workload (feature `workload`: the CLI's `fsfeed
/// workload`, the benches and the tests); not part of the library's API.
#[cfg(any(test, feature = "workload"))]
pub mod workload;

/// Generated protobuf types of `proto/fsfeed/v1/fsfeed.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/fsfeed.v1.rs"));
}

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

// The public API, on purpose: the nouns a user names. Everything else is
// reached through its module (`fsfeed::render::s3::S3Options`, ...).
pub use cursor::{Cursor, CursorOptions, Subscription};
pub use error::{Error, Result};
pub use event_id::EventId;
pub use expand::{Action, ExpandOptions, Expansion};
pub use filter::Filter;
pub use frame::Framing;
pub use ledger::{
    check_cursor_name, CursorInfo, Durability, Ledger, OpenOptions, Retention, RetentionInfo,
    SegmentsInfo, Stats, Verified, FORMAT_VERSION, SEGMENTS_DIR, SEGMENT_ROWS, SEGMENT_ROWS_RANGE,
};
pub use notify::{Notifier, Wake};
pub use op::{Acl, Layout, Op};
pub use proto::Event;
pub use read::{Batch, Gap, OnGap, Position, Record, Start};
pub use render::Format;
