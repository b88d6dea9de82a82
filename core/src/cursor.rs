//! Cursors: where a consumer is, and how it reads (DESIGN section 5b).
//!
//! A [`Position`] is the *next* record to read, `(seq, sub)`; `sub` numbers
//! the records one event expands into (0 for an event read as itself). A
//! committed position is where a restarted consumer resumes, as Kafka's
//! committed offset. A committed position never points past the head: its
//! `seq` is at most `head_seq + 1` (everything read).
//!
//! [`Cursor::read`] returns as soon as at least one record is there, or an
//! empty batch when the timeout passes; in-process it blocks on the writer's
//! signal, never on a sleep loop. When the cursor's position is older than
//! the ledger's first retained seq, the batch starts with a
//! [`Gap`] (`on_gap = report`) or the read fails with `Error::Gap`
//! (`on_gap = error`); events are never skipped silently.
//!
//! Filtered-out events still move the position, so a consumer that commits
//! `batch.next` after every batch does not rescan them.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::expand::{expands, ExpIter, ExpandOptions, Expansion, LiveFiles};
use crate::filter::Filter;
use crate::ledger::{check_cursor_name, lag, Ledger};
use crate::proto::Event;

/// Events a read scans per pass before it looks at the clock again.
const SCAN_CHUNK: usize = 4096;

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
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                Error::InvalidArgument(format!(
                    "start {s:?} is not earliest, latest, committed, a seq, SEQ:SUB or an RFC 3339 time"
                ))
            })?;
        Ok(Start::Time((t.unix_timestamp_nanos() / 1000) as i64))
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

/// How a cursor is opened.
#[derive(Debug, Clone, Default)]
pub struct CursorOptions {
    /// Where to start (default: the committed position).
    pub start: Start,
    /// Where a cursor with no committed position starts (default: earliest, so
    /// nothing already in the ledger is missed).
    pub on_missing: Option<Start>,
    /// Gap policy.
    pub on_gap: OnGap,
    /// Which events to deliver.
    pub filter: Filter,
    /// Which events to expand into per-object records.
    pub expand: ExpandOptions,
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

/// A listing of the live tree in progress.
struct Resync {
    files: LiveFiles,
    head: u64,
    time_us: i64,
    /// What `next` says until the listing is complete: an interrupted
    /// resync is not resumed, it starts again.
    resume: Position,
}

/// A reader's place in the ledger.
pub struct Cursor {
    ledger: Ledger,
    name: Option<String>,
    pos: Position,
    opts: CursorOptions,
    exp: Option<ExpIter>,
    resync: Option<Resync>,
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("name", &self.name)
            .field("position", &self.pos)
            .finish()
    }
}

impl Cursor {
    pub(crate) fn open(ledger: Ledger, name: Option<&str>, opts: CursorOptions) -> Result<Cursor> {
        if let Some(n) = name {
            check_cursor_name(n)?;
        }
        opts.filter.validate()?;
        let mut c = Cursor {
            ledger,
            name: name.map(str::to_string),
            pos: Position::new(1, 0),
            opts,
            exp: None,
            resync: None,
        };
        c.seek(c.opts.start)?;
        Ok(c)
    }

    /// The cursor's name (`None`: ephemeral).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The next position this cursor reads.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// The ledger it reads.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Move the cursor.
    pub fn seek(&mut self, start: Start) -> Result<()> {
        let b = self.ledger.bounds()?;
        let pos = match start {
            Start::Earliest => Position::new(b.first, 0),
            Start::Latest => Position::new(b.head + 1, 0),
            Start::Seq(0) => {
                return Err(Error::InvalidArgument("seq numbers start at 1".into()));
            }
            Start::Seq(s) => Position::new(s, 0),
            Start::Position(p) if p.seq == 0 => {
                return Err(Error::InvalidArgument("seq numbers start at 1".into()));
            }
            Start::Position(p) => p,
            Start::Time(t) => Position::new(self.ledger.seq_for_time(t)?, 0),
            Start::Committed => {
                let committed = match &self.name {
                    Some(n) => self.ledger.committed(n)?,
                    None => None,
                };
                match committed {
                    Some(p) => p,
                    None => {
                        let fallback = self.opts.on_missing.unwrap_or(Start::Earliest);
                        if fallback == Start::Committed {
                            return Err(Error::InvalidArgument(
                                "on_missing cannot be `committed`".into(),
                            ));
                        }
                        return self.seek(fallback);
                    }
                }
            }
        };
        if pos.seq > b.head + 1 || (pos.seq == b.head + 1 && pos.sub != 0) {
            return Err(Error::PositionOutOfRange {
                seq: pos.seq,
                sub: pos.sub,
                head: b.head,
            });
        }
        self.pos = pos;
        self.resync = None;
        Ok(())
    }

    /// List the live tree at the head as creates marked `resync` (the next
    /// reads deliver them), then continue after the head. What Gnotify and
    /// glusterfind do with a crawl, from the shadow namespace.
    pub fn resync(&mut self) -> Result<()> {
        let b = self.ledger.bounds()?;
        self.start_resync(b.head)
    }

    fn start_resync(&mut self, head: u64) -> Result<()> {
        let time_us = self
            .ledger
            .get(head)?
            .and_then(|e| e.op.map(|o| o.time_us))
            .unwrap_or(1);
        self.resync = Some(Resync {
            files: LiveFiles::new(&self.ledger.db()?, head)?,
            head,
            time_us,
            resume: self.pos,
        });
        Ok(())
    }

    /// Read up to `max` records, waiting up to `timeout` for the first.
    pub fn read(&mut self, max: usize, timeout: Duration) -> Result<Batch> {
        self.read_until(max, timeout, None)
    }

    /// As [`Cursor::read`], returning early (with what it has) once `cancel` is set.
    pub fn read_until(
        &mut self,
        max: usize,
        timeout: Duration,
        cancel: Option<&AtomicBool>,
    ) -> Result<Batch> {
        if max == 0 {
            return Err(Error::InvalidArgument(
                "max records must be at least 1".into(),
            ));
        }
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        let mut gap: Option<Gap> = None;
        loop {
            let b = self.ledger.bounds()?;
            if self.resync.is_none() && self.pos.seq < b.first {
                self.gap_at(b.first, &mut gap)?;
            }
            if self.resync.is_some() {
                let records = self.resync_records(max)?;
                if !records.is_empty() || gap.is_some() {
                    let next = match &self.resync {
                        Some(r) => r.resume,
                        None => self.pos,
                    };
                    return Ok(Batch { records, gap, next });
                }
                continue;
            }
            if self.pos.seq <= b.head {
                let records = self.scan_once(max, &mut gap)?;
                if !records.is_empty() || gap.is_some() {
                    return Ok(Batch {
                        records,
                        gap,
                        next: self.pos,
                    });
                }
                // Everything scanned was filtered out: look again (the head
                // may be further) before waiting.
                if self.pos.seq <= b.head && Instant::now() < deadline {
                    continue;
                }
            }
            let cancelled = cancel.map(|c| c.load(Ordering::SeqCst)).unwrap_or(false);
            if cancelled || !self.ledger.wait_for_head(self.pos.seq, deadline, cancel)? {
                return Ok(Batch {
                    records: Vec::new(),
                    gap,
                    next: self.pos,
                });
            }
        }
    }

    /// The position is before `first`: report or fail per policy.
    fn gap_at(&mut self, first: u64, gap: &mut Option<Gap>) -> Result<()> {
        let g = Gap {
            expected: gap.map(|g| g.expected).unwrap_or(self.pos.seq),
            actual: first,
        };
        match self.opts.on_gap {
            OnGap::Error => Err(Error::Gap {
                expected: g.expected,
                actual: g.actual,
            }),
            OnGap::Report => {
                *gap = Some(g);
                self.pos = Position::new(first, 0);
                Ok(())
            }
            OnGap::Resync => {
                *gap = Some(g);
                let head = self.ledger.bounds()?.head;
                self.start_resync(head)
            }
        }
    }

    /// Up to `max` records of the resync in progress; ends it when listed.
    fn resync_records(&mut self, max: usize) -> Result<Vec<Record>> {
        let mut records = Vec::new();
        let filter = self.opts.filter.clone();
        let Some(r) = &mut self.resync else {
            return Ok(records);
        };
        while records.len() < max {
            match r.files.next() {
                None => {
                    self.pos = Position::new(r.head + 1, 0);
                    self.resync = None;
                    break;
                }
                Some(Err(e)) => return Err(e),
                Some(Ok((volume, bucket, key, object_id))) => {
                    let op = crate::op::Op {
                        time_us: r.time_us,
                        volume,
                        bucket,
                        key: key.clone(),
                        layout: crate::op::Layout::Fso as i32,
                        object_id: Some(object_id),
                        kind: Some(crate::op::Kind::Commit(Default::default())),
                        ..Default::default()
                    };
                    let event = Event {
                        seq: r.head,
                        op: Some(op),
                        path: key,
                        to_path: String::new(),
                        offset: 0,
                    };
                    if filter.matches(&event) {
                        records.push(Record {
                            position: Position::new(r.head + 1, 0),
                            event,
                            expansion: None,
                            resync: true,
                        });
                    }
                }
            }
        }
        Ok(records)
    }

    /// Deliver the records of an expanding event from the position's sub
    /// (or 0), at most until `records` holds `max`. True when the expansion
    /// is complete (the position moved past the event).
    fn expand_event(
        &mut self,
        event: &Event,
        max: usize,
        records: &mut Vec<Record>,
    ) -> Result<bool> {
        let seq = event.seq;
        // An expansion usually fills the batch: size it once rather than
        // growing (and copying) a vector of large records step by step.
        records.reserve(max.min(65_536).saturating_sub(records.len()));
        let start = if self.pos.seq == seq { self.pos.sub } else { 0 };
        let mut it = match self.exp.take() {
            Some(e) if e.seq() == seq && e.next_sub() == start => e,
            _ => {
                let mut e = ExpIter::new(&self.ledger.db()?, event);
                e.skip_to(start)?;
                e
            }
        };
        loop {
            if records.len() >= max {
                self.pos = Position::new(seq, it.next_sub());
                self.exp = Some(it);
                return Ok(false);
            }
            match it.next() {
                None => {
                    self.pos = Position::new(seq + 1, 0);
                    return Ok(true);
                }
                Some(Err(e)) => return Err(e),
                Some(Ok((sub, x))) => {
                    if self.opts.filter.matches_expanded(event, &x) {
                        records.push(Record {
                            position: Position::new(seq, sub),
                            event: event.clone(),
                            expansion: Some(x),
                            resync: false,
                        });
                    }
                }
            }
        }
    }

    /// One pass over at most [`SCAN_CHUNK`] events from the position.
    fn scan_once(&mut self, max: usize, gap: &mut Option<Gap>) -> Result<Vec<Record>> {
        let mut records = Vec::new();
        let expand = self.opts.expand;
        // In the middle of an event's expansion: finish (or continue) it first.
        if self.pos.sub > 0 {
            match self.ledger.get(self.pos.seq)? {
                Some(event) if expands(&event, expand) => {
                    if !self.expand_event(&event, max, &mut records)? {
                        return Ok(records);
                    }
                }
                // A sub-position on an event that does not expand (or is
                // gone, which the scan below reports): move past it.
                Some(_) => self.pos = Position::new(self.pos.seq + 1, 0),
                None => self.pos = Position::new(self.pos.seq, 0),
            }
        }
        let mut scanned = 0usize;
        let mut expected = self.pos.seq;
        let mut err = None;
        let filter = self.opts.filter.clone();
        let ledger = self.ledger.clone();
        ledger.scan_with(expected, |seq, event| {
            if seq != expected {
                // Retention dropped events between our look at the bounds and
                // the read: the same gap rules apply.
                if records.is_empty() && gap.is_none() {
                    self.pos = Position::new(expected, 0);
                    if let Err(e) = self.gap_at(seq, gap) {
                        err = Some(e);
                        return false;
                    }
                    if self.resync.is_some() {
                        return false;
                    }
                } else {
                    return false;
                }
            }
            scanned += 1;
            expected = seq + 1;
            if expands(&event, expand) {
                match self.expand_event(&event, max, &mut records) {
                    Ok(true) => {}
                    Ok(false) => return false,
                    Err(e) => {
                        err = Some(e);
                        return false;
                    }
                }
            } else {
                if filter.matches(&event) {
                    records.push(Record::plain(event));
                }
                self.pos = Position::new(expected, 0);
            }
            records.len() < max && scanned < SCAN_CHUNK
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(records),
        }
    }

    /// Store `pos` as this cursor's committed position (named cursors only).
    pub fn commit(&self, pos: Position) -> Result<()> {
        let name = self.name.as_deref().ok_or_else(|| {
            Error::InvalidArgument("an unnamed cursor has nowhere to commit".into())
        })?;
        self.ledger.store_cursor(name, pos)
    }

    /// Commit the cursor's current position.
    pub fn commit_current(&self) -> Result<()> {
        self.commit(self.pos)
    }

    /// Events between the cursor's position and the head.
    pub fn lag(&self) -> Result<u64> {
        Ok(lag(self.ledger.bounds()?.head, self.pos))
    }

    /// Run `callback` on its own thread for every non-empty batch; returning
    /// `Ok` commits the batch (named cursors), returning `Err` stops the
    /// subscription and [`Subscription::stop`] / [`Subscription::join`] give
    /// the error back. Reads wait at most `max_wait` before looking for a stop.
    pub fn subscribe<F>(
        mut self,
        max: usize,
        max_wait: Duration,
        mut callback: F,
    ) -> Result<Subscription>
    where
        F: FnMut(&Batch) -> std::result::Result<(), String> + Send + 'static,
    {
        if max == 0 {
            return Err(Error::InvalidArgument(
                "max records must be at least 1".into(),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ledger = self.ledger.clone();
        let thread = std::thread::Builder::new()
            .name("fsfeed-subscription".into())
            .spawn(move || -> Result<()> {
                let mut committed = self.pos;
                while !flag.load(Ordering::SeqCst) {
                    let batch = self.read_until(max, max_wait, Some(&flag))?;
                    if !batch.is_empty() {
                        callback(&batch).map_err(Error::Callback)?;
                    }
                    if self.name.is_some() && batch.next != committed {
                        self.commit(batch.next)?;
                        committed = batch.next;
                    }
                }
                Ok(())
            })?;
        Ok(Subscription {
            stop,
            ledger,
            thread: Some(thread),
        })
    }
}

/// A running callback subscription; stopping it is prompt and joins its thread.
pub struct Subscription {
    stop: Arc<AtomicBool>,
    ledger: Ledger,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Subscription {
    /// Ask the thread to stop, wait for it, and return how it ended: `Ok` or
    /// the error that stopped it (the callback's, or a read's).
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        self.ledger.wake_readers();
        self.finish()
    }

    /// Wait for the subscription to end by itself (an error) or by `stop`
    /// from a clone of its stop handle.
    pub fn join(mut self) -> Result<()> {
        self.finish()
    }

    /// True while the thread runs.
    pub fn is_running(&self) -> bool {
        self.thread
            .as_ref()
            .map(|t| !t.is_finished())
            .unwrap_or(false)
    }

    fn finish(&mut self) -> Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(Error::Callback("the callback panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.ledger.wake_readers();
        let _ = self.finish();
    }
}
