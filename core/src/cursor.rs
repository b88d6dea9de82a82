//! Cursors: where a consumer is, and how it reads (`ARCHITECTURE.md`, "A read").
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::expand::{expands, ExpIter, ExpandOptions, LiveFiles};
use crate::filter::Filter;
use crate::ledger::{check_cursor_name, lag, Ledger};
use crate::notify::{Notifier, Wake};
use crate::proto::Event;
use crate::read::{Batch, Gap, OnGap, Position, Record, Start};
use crate::render::{Format, Renderer};

/// Events a read scans per pass before it looks at the clock again.
const SCAN_CHUNK: usize = 4096;

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
    /// The output format. The cursor skips records that have no form in it
    /// (an op with no S3 event, in S3 format), so a batch is never empty
    /// while events remain; its position still moves past them.
    pub format: Format,
}

/// A listing of the live tree in progress.
struct Resync {
    /// Peekable: the batch that takes the last entries ends the resync,
    /// even when they fill it exactly.
    files: std::iter::Peekable<LiveFiles>,
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
    renderer: Arc<dyn Renderer>,
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("name", &self.name)
            .field("position", &self.pos)
            .finish()
    }
}

impl Ledger {
    /// A cursor (named: durable; `None`: ephemeral) over this ledger.
    pub fn cursor(&self, name: Option<&str>, opts: CursorOptions) -> Result<Cursor> {
        Cursor::open(self.clone(), name, opts)
    }
}

impl Cursor {
    fn open(ledger: Ledger, name: Option<&str>, opts: CursorOptions) -> Result<Cursor> {
        if let Some(n) = name {
            check_cursor_name(n)?;
        }
        opts.filter.validate()?;
        let renderer: Arc<dyn Renderer> = Arc::from(opts.format.renderer());
        let mut c = Cursor {
            ledger,
            name: name.map(str::to_string),
            pos: Position::new(1, 0),
            opts,
            exp: None,
            resync: None,
            renderer,
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

    /// The cursor's output format.
    pub fn format(&self) -> &Format {
        &self.opts.format
    }

    /// The renderer of the cursor's format: every record a read returns has
    /// a form in it. Shared: a binding keeps a clone to render batches that
    /// a subscription (which owns the cursor) hands it.
    pub fn renderer(&self) -> &Arc<dyn Renderer> {
        &self.renderer
    }

    /// The position after the record at `pos`: what committing that record
    /// stores. `(seq, sub + 1)` inside an event this cursor expands,
    /// `(seq + 1, 0)` after an event read as itself.
    pub fn position_after(&self, pos: Position) -> Result<Position> {
        let expanding = match self.ledger.get(pos.seq)? {
            Some(e) => expands(&e, self.opts.expand),
            None => false,
        };
        Ok(if expanding {
            Position::new(pos.seq, pos.sub.saturating_add(1))
        } else {
            Position::new(pos.seq + 1, 0)
        })
    }

    /// Read up to `limit` records and render each to JSON with the cursor's
    /// renderer, discarding the bytes; returns how many were read. The
    /// bindings' benchmarks use it as the core's own rate on the same cursor
    /// (`_read_core` in Python, `readCore` in Node).
    pub fn read_rendered(&mut self, limit: u64) -> Result<u64> {
        let mut read = 0u64;
        let mut buf = Vec::new();
        while read < limit {
            let b = self.read((limit - read).min(1000) as usize, Duration::ZERO)?;
            if b.is_empty() {
                break;
            }
            for r in &b.records {
                buf.clear();
                self.renderer.render_to(r, &mut buf);
                std::hint::black_box(&buf);
            }
            read += b.records.len() as u64;
        }
        Ok(read)
    }

    /// Consume the record named by an event id (the S3 `eventId`, the pull
    /// service's ack id): commit the position after it. Returns the position
    /// committed. A string that is no fsfeed event id is `invalid_event_id`;
    /// an id past the head is `position_out_of_range`. Nothing changes on error.
    pub fn ack(&self, event_id: &str) -> Result<Position> {
        let id = crate::event_id::EventId::parse(event_id)?;
        let next = self.position_after(id.position())?;
        self.commit(next)?;
        Ok(next)
    }

    /// Read what is there now; when nothing is, register `wake` to be called
    /// once the ledger's head moves past this cursor's position (`true`), or
    /// the notifier stops or the ledger closes (`false`), and return `None`.
    /// The one wait of the event-loop readers (Python's `aiter`, Node's
    /// Promise reads): they read again when woken, and no thread waits per
    /// reader. `wake` is called from the notifier's thread, possibly at once.
    pub fn read_or_notify(
        &mut self,
        max: usize,
        notifier: &Notifier,
        wake: Wake,
    ) -> Result<Option<Batch>> {
        let b = self.read(max, Duration::ZERO)?;
        if !b.is_empty() {
            return Ok(Some(b));
        }
        notifier.when_head_reaches(self.pos.seq, wake)?;
        Ok(None)
    }

    /// Move the cursor.
    pub fn seek(&mut self, start: Start) -> Result<()> {
        let b = self.ledger.bounds()?;
        let pos = match start {
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
            other => self.ledger.resolve_start(other, &b)?,
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
        let db = self.ledger.db()?;
        let overlay = crate::ledger::live_overlay(&db)?;
        self.resync = Some(Resync {
            files: LiveFiles::new(&db, head, overlay)?.peekable(),
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
                let records = self.scan_once(max, b.head, &mut gap)?;
                if !records.is_empty() || gap.is_some() {
                    return Ok(Batch {
                        records,
                        gap,
                        next: self.pos,
                    });
                }
                // Everything scanned was filtered out or had no form in the
                // format: scan on (the head may be further) before waiting,
                // whatever the timeout, so that no batch comes back empty
                // while events remain.
                let cancelled = cancel.map(|c| c.load(Ordering::SeqCst)).unwrap_or(false);
                if self.pos.seq <= b.head && !cancelled {
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
        loop {
            // Full, with more to list: the next read goes on.
            if records.len() >= max && r.files.peek().is_some() {
                break;
            }
            match r.files.next() {
                None => {
                    // Listed: this batch's `next` is after the head, so a
                    // consumer that commits the batch holding the last
                    // entries is past the resync (when they filled the
                    // batch exactly, an empty batch used to say so).
                    self.pos = Position::new(r.head + 1, 0);
                    self.resync = None;
                    break;
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(l)) => {
                    // What the entry is: a committed file (with what the
                    // live index knows of it), an explicit directory, or a
                    // file created and never committed (which has no S3
                    // form).
                    let kind = match (l.is_dir, l.listed) {
                        (true, _) => crate::op::Kind::CreateDirectory(Default::default()),
                        (false, true) => crate::op::Kind::Commit(crate::proto::Commit {
                            size: l.size,
                            etag: l.etag,
                            version_id: l.version_id,
                            ..Default::default()
                        }),
                        (false, false) => crate::op::Kind::CreateFile(Default::default()),
                    };
                    let op = crate::op::Op {
                        time_us: r.time_us,
                        volume: l.volume,
                        bucket: l.bucket,
                        key: l.key.clone(),
                        layout: l.layout,
                        object_id: l.object_id,
                        is_dir: l.is_dir,
                        kind: Some(kind),
                        ..Default::default()
                    };
                    let event = Event {
                        seq: r.head,
                        op: Some(op),
                        path: l.key,
                        ..Default::default()
                    };
                    let rec = Record {
                        position: Position::new(r.head + 1, 0),
                        event,
                        expansion: None,
                        resync: true,
                    };
                    if filter.matches(&rec.event) && self.renderer.has_form(&rec) {
                        records.push(rec);
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
                let mut e = ExpIter::new(&self.ledger.db()?, event)?;
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
                None if it.cut() => {
                    // The stored entries ran out. Retention dropped them
                    // with the event (in one batch with `first_seq`) while
                    // this read went on: stay inside the event, and the
                    // next look at the bounds reports the gap (the next
                    // event may be the first one kept, which would hide
                    // it). Missing while the event is retained: lost.
                    self.ledger.first_after_cut(seq)?;
                    self.pos = Position::new(seq, it.next_sub());
                    return Ok(false);
                }
                None => {
                    self.pos = Position::new(seq + 1, 0);
                    return Ok(true);
                }
                Some(Err(e)) => return Err(e),
                Some(Ok((sub, x))) => {
                    let matches = match &x {
                        Some(x) => self.opts.filter.matches_expanded(event, x),
                        // The event itself, after its expansion.
                        None => self.opts.filter.matches(event),
                    };
                    if matches {
                        let rec = Record {
                            position: Position::new(seq, sub),
                            event: event.clone(),
                            expansion: x,
                            resync: false,
                        };
                        if self.renderer.has_form(&rec) {
                            records.push(rec);
                        }
                    }
                }
            }
        }
    }

    /// One pass over at most [`SCAN_CHUNK`] events from the position.
    /// Records from the position on, up to `head`: the head this read saw
    /// published. Events past it may already be in the database (the writer
    /// publishes after its write returns), and a batch that ran into them
    /// would end at a position that committing refuses as past the head.
    fn scan_once(&mut self, max: usize, head: u64, gap: &mut Option<Gap>) -> Result<Vec<Record>> {
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
        let renderer = self.renderer.clone();
        let ledger = self.ledger.clone();
        ledger.scan_with(expected, |seq, event| {
            if seq > head {
                return false;
            }
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
                    let rec = Record::plain(event);
                    if renderer.has_form(&rec) {
                        records.push(rec);
                    }
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
