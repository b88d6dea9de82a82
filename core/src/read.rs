//! The read nouns: where a reader is ([`Position`]), where it starts
//! ([`Start`]), what a read returns ([`Batch`] of [`Record`]s, maybe after a
//! [`Gap`]) and what it does about a gap ([`OnGap`]).
//!
//! The rung of the Op -> Event -> Record -> Batch ladder that every reader
//! shares (see `ARCHITECTURE.md`): this module imports nothing of the
//! ledger, so the cursor, the renderers, the framing and the writer all
//! import it and none of them imports another to get these types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::expand::Expansion;
use crate::proto::Event;

/// The next record to read: event `seq`, record `sub` of its expansion.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// Sequence number of the event.
    pub seq: u64,
    /// Index of the record within the event's expansion (0 when not expanded).
    #[serde(default)]
    pub sub: u32,
}

impl Position {
    /// A position.
    pub const fn new(seq: u64, sub: u32) -> Position {
        Position { seq, sub }
    }
}

/// `SEQ` or `SEQ:SUB`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.sub)
    }
}

impl FromStr for Position {
    type Err = Error;

    fn from_str(s: &str) -> Result<Position> {
        let bad = || Error::InvalidArgument(format!("position {s:?} is not SEQ or SEQ:SUB"));
        let (seq, sub) = match s.split_once(':') {
            Some((a, b)) => (a, b),
            None => (s, "0"),
        };
        Ok(Position {
            seq: seq.parse().map_err(|_| bad())?,
            sub: sub.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The first retained event.
    Earliest,
    /// After the head: only what is appended from now on.
    Latest,
    /// This seq (older than the first retained one: a gap is reported).
    Seq(u64),
    /// The first event whose running-max op time is at or after this many
    /// microseconds since the epoch.
    Time(i64),
    /// An exact position.
    Position(Position),
    /// The cursor's committed position; the `on_missing` choice when it has none.
    #[default]
    Committed,
}

impl FromStr for Start {
    type Err = Error;

    /// `earliest`, `latest`, `committed`, a seq, `SEQ:SUB`, or an RFC 3339 time.
    fn from_str(s: &str) -> Result<Start> {
        match s {
            "earliest" => return Ok(Start::Earliest),
            "latest" => return Ok(Start::Latest),
            "committed" => return Ok(Start::Committed),
            _ => {}
        }
        if let Ok(seq) = s.parse::<u64>() {
            return Ok(Start::Seq(seq));
        }
        if s.contains(':') && !s.contains('T') {
            return Ok(Start::Position(s.parse()?));
        }
        let t = crate::op::parse_time_us(s).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "start {s:?} is not earliest, latest, committed, a seq, SEQ:SUB or an RFC 3339 time"
            ))
        })?;
        Ok(Start::Time(t))
    }
}

impl Start {
    /// A start as JSON from a binding: a seq (number), a string as
    /// [`Start::from_str`] takes it, or a position `{"seq", "sub"}`.
    pub fn from_json_value(v: &serde_json::Value) -> Result<Start> {
        match v {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(0) | None => Err(Error::InvalidArgument(format!(
                    "start seq must be a whole number >= 1, not {n}"
                ))),
                Some(seq) => Ok(Start::Seq(seq)),
            },
            serde_json::Value::String(s) => s.parse(),
            serde_json::Value::Object(_) => serde_json::from_value::<Position>(v.clone())
                .map(Start::Position)
                .map_err(|e| Error::InvalidArgument(format!("start position: {e}"))),
            other => Err(Error::InvalidArgument(format!(
                "start must be a seq, a string or a position, not {other}"
            ))),
        }
    }
}

/// What a cursor does when its position is older than the first retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnGap {
    /// Put a [`Gap`] first in the batch and continue from the first retained event.
    #[default]
    Report,
    /// Fail the read with `Error::Gap`; the cursor does not move.
    Error,
    /// Put the [`Gap`] first, then list the live tree at the head as creates
    /// marked `resync`, then continue after the head (FSO buckets: the ones
    /// the shadow namespace knows).
    Resync,
}

impl FromStr for OnGap {
    type Err = Error;

    fn from_str(s: &str) -> Result<OnGap> {
        match s {
            "report" => Ok(OnGap::Report),
            "error" => Ok(OnGap::Error),
            "resync" => Ok(OnGap::Resync),
            other => Err(Error::InvalidArgument(format!(
                "unknown gap policy {other:?} (report, error, resync)"
            ))),
        }
    }
}

/// Events between where a cursor was and where the ledger now starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The seq the cursor wanted next.
    pub expected: u64,
    /// The first seq the ledger still held.
    pub actual: u64,
}

/// One delivered record: an event at a position.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where this record is (commit the batch's `next`, not this).
    pub position: Position,
    /// The stored event (for a resync record: a synthetic commit).
    pub event: Event,
    /// For a record expanded from a rename or recursive delete: which object
    /// and what happened to it.
    pub expansion: Option<Expansion>,
    /// True for the synthetic creates of a resync.
    pub resync: bool,
}

impl Record {
    /// A record of an event read as itself.
    pub fn plain(event: Event) -> Record {
        Record {
            position: Position::new(event.seq, 0),
            event,
            expansion: None,
            resync: false,
        }
    }

    /// The bucket of the record's object (empty for volume ops).
    pub fn bucket(&self) -> &str {
        self.event
            .op
            .as_ref()
            .map(|o| o.bucket.as_str())
            .unwrap_or("")
    }

    /// The key (within the bucket) this record is about: an expanded
    /// record's object, a rename's new key (what its S3 record names), else
    /// the event's key as of its seq. What a push sink keys messages by, so
    /// that one object's records stay in order in one partition.
    pub fn object_key(&self) -> &str {
        if let Some(x) = &self.expansion {
            return &x.key;
        }
        if !self.event.to_path.is_empty() {
            return &self.event.to_path;
        }
        &self.event.path
    }
}

/// What one read returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The records, in order.
    pub records: Vec<Record>,
    /// A gap before the records, if the cursor fell behind retention.
    pub gap: Option<Gap>,
    /// The position after this batch: commit it once the batch is handled.
    pub next: Position,
}

impl Batch {
    /// True when the batch holds no record and no gap.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.gap.is_none()
    }
}
