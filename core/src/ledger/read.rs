//! Reading the ledger: bounds, the one `Start` resolver, the one wait, and
//! events by seq, range and time; the shadow namespace's questions at a seq.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rocksdb::ReadOptions;

use super::keys::*;
use super::*;
use crate::error::{Error, Result};
use crate::proto::Event;
use crate::read::{Position, Start};

impl Ledger {
    /// First and last retained seq. A read-only opener catches up first.
    pub(crate) fn bounds(&self) -> Result<Bounds> {
        if self.inner.read_only {
            self.refresh()?;
        }
        self.view()
    }

    /// First and last retained seq as this opener last saw them, without
    /// catching up: what its database handle holds. Reads that follow a
    /// `bounds()` (a cursor read, `changes`) use this instead of catching
    /// up with the primary a second or third time.
    pub(super) fn view(&self) -> Result<Bounds> {
        let s = self.inner.signal.shared.lock();
        if s.closed {
            return Err(Error::LedgerClosed);
        }
        Ok(s.bounds)
    }

    /// The one resolver from a [`Start`] to a position. `Committed` is the
    /// caller's to resolve (it knows which cursor): here it is an error.
    pub(crate) fn resolve_start(&self, start: Start, b: &Bounds) -> Result<Position> {
        Ok(match start {
            Start::Seq(0) | Start::Position(Position { seq: 0, .. }) => {
                return Err(Error::InvalidArgument("seq numbers start at 1".into()))
            }
            Start::Earliest => Position::new(b.first, 0),
            Start::Latest => Position::new(b.head + 1, 0),
            Start::Seq(s) => Position::new(s, 0),
            Start::Position(p) => p,
            Start::Time(t) => Position::new(self.seq_for_time(t)?, 0),
            Start::Committed => {
                return Err(Error::InvalidArgument(
                    "since must be a seq, a time or a position (not committed)".into(),
                ))
            }
        })
    }

    /// The first seq of a range that starts at `since`; a start before the
    /// first retained event is a gap.
    pub(crate) fn range_start(&self, since: Start, b: &Bounds) -> Result<u64> {
        let start = self.resolve_start(since, b)?.seq;
        if start < b.first {
            return Err(Error::Gap {
                expected: start,
                actual: b.first,
            });
        }
        Ok(start)
    }

    /// The last seq of a range ending at `until`, inclusive: a seq (at most
    /// the head), a time (the events before it), or `None`: the head. For
    /// history's ranges (feature `arrow`).
    #[cfg(feature = "arrow")]
    pub(crate) fn range_until(&self, until: Option<Start>, b: &Bounds) -> Result<u64> {
        Ok(match until {
            None | Some(Start::Latest) => b.head,
            Some(Start::Seq(n)) => n.min(b.head),
            Some(Start::Position(p)) => p.seq.min(b.head),
            Some(Start::Time(t)) => self.seq_for_time(t)?.saturating_sub(1).min(b.head),
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "until must be a seq or a time, not {other:?}"
                )))
            }
        })
    }

    /// Last appended seq (0 when none).
    pub fn head_seq(&self) -> Result<u64> {
        Ok(self.bounds()?.head)
    }

    /// First retained seq (`head_seq + 1` when nothing is retained).
    pub fn first_seq(&self) -> Result<u64> {
        Ok(self.bounds()?.first)
    }

    /// For a reader whose expansion of event `seq` ran out of the entries
    /// stored beside it (`ExpIter::cut`): the first retained seq, when
    /// retention dropped them with the event while the expansion was read
    /// (a gap from `seq`). The stored bounds decide, not the published
    /// ones: the range delete and `first_seq` are in one batch, which the
    /// writer publishes after its write. Missing while the event is
    /// retained, they are lost: `corrupt`.
    pub(crate) fn first_after_cut(&self, seq: u64) -> Result<u64> {
        let first = read_bounds(&*self.db()?)?.first;
        if first <= seq {
            return Err(Error::Corrupt(format!(
                "the entries event {seq} took are missing"
            )));
        }
        Ok(first)
    }

    /// Read-only openers: catch up with the primary and reload the bounds.
    pub(super) fn refresh(&self) -> Result<()> {
        self.refreshed(|_, _| Ok(()))
    }

    /// [`Ledger::refresh`], then `f` on the database and the bounds that
    /// catch-up published, before any other catch-up of this opener: its
    /// database changes only when it catches up, so what `f` reads is one
    /// state (`stats`). One catch-up at a time, its bounds published
    /// before the next: the view never goes back to an older catch-up's.
    pub(super) fn refreshed<T>(&self, f: impl FnOnce(&DB, Bounds) -> Result<T>) -> Result<T> {
        let db = self.db()?;
        let _turn = self.inner.catching_up.lock();
        db.try_catch_up_with_primary()?;
        let b = read_bounds(&db)?;
        self.inner.signal.shared.lock().bounds = b;
        f(&db, b)
    }

    /// Wake every waiting reader (used to stop subscriptions promptly).
    pub(crate) fn wake_readers(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        let _s = self.inner.signal.shared.lock();
        self.inner.signal.cond.notify_all();
    }

    /// Block until `head >= seq`, the deadline passes, or `cancel` is set.
    /// Returns whether the head reached `seq`.
    pub(crate) fn wait_for_head(
        &self,
        seq: u64,
        deadline: Instant,
        cancel: Option<&AtomicBool>,
    ) -> Result<bool> {
        let cancelled = || cancel.map(|c| c.load(Ordering::SeqCst)).unwrap_or(false);
        // A read-only opener is woken by its beacon watcher; it also catches
        // up on a timer, every 20 ms without a watcher (no beacon yet: a
        // writer from before it) and every second with one (a safety net).
        let tick = match (self.inner.read_only, self.inner.watcher.is_some()) {
            (false, _) => None,
            (true, true) => Some(WATCHED_POLL),
            (true, false) => Some(SECONDARY_POLL),
        };
        // The beacon count before this opener catches up: an announcement
        // after it makes the loop below catch up again, so none is missed.
        let mut seen = self.inner.signal.shared.lock().beacon;
        if tick.is_some() {
            self.refresh()?;
        }
        let mut s = self.inner.signal.shared.lock();
        loop {
            if s.closed {
                return Err(Error::LedgerClosed);
            }
            if s.bounds.head >= seq {
                return Ok(true);
            }
            let now = Instant::now();
            if cancelled() || now >= deadline {
                return Ok(false);
            }
            match tick {
                None => {
                    self.inner.signal.cond.wait_until(&mut s, deadline);
                }
                Some(t) => {
                    let timed_out = self
                        .inner
                        .signal
                        .cond
                        .wait_until(&mut s, deadline.min(now + t))
                        .timed_out();
                    // The reader catches up on its own thread: the watcher
                    // only counts announcements, so no thread of ours is in
                    // RocksDB when the process exits without closing.
                    if timed_out || s.beacon != seen {
                        seen = s.beacon;
                        drop(s);
                        self.refresh()?;
                        s = self.inner.signal.shared.lock();
                    }
                }
            }
        }
    }

    /// The event stored under `seq`, if retained. A read-only opener answers
    /// from its last catch-up with the writer (every cursor read, `head_seq`
    /// and `first_seq` catch up).
    pub fn get(&self, seq: u64) -> Result<Option<Event>> {
        if seq < self.view()?.first {
            return Ok(None);
        }
        let db = self.db()?;
        let found = super::blocks::get(&db, seq)?;
        found.map(|v| decode_event(&v)).transpose()
    }

    /// Up to `limit` retained events from `from` on, in seq order.
    pub fn scan(&self, from: u64, limit: usize) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        self.scan_with(from, |_, e| {
            out.push(e);
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Visit retained events from `from` on; `f(seq, event)` returns false to stop.
    pub(crate) fn scan_with(&self, from: u64, mut f: impl FnMut(u64, Event) -> bool) -> Result<()> {
        let mut failed = None;
        self.scan_raw(from, |seq, bytes| match decode_event(bytes) {
            Ok(ev) => f(seq, ev),
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Visit the stored bytes (a prost `Event`) of retained events from
    /// `from` on, without decoding; `f(seq, bytes)` returns false to stop.
    pub(crate) fn scan_raw(&self, from: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> Result<()> {
        let db = self.db()?;
        let cf = db.cf_handle(CF_EVENTS).expect("cf events");
        let mut ro = ReadOptions::default();
        ro.fill_cache(true);
        let mut it = db.raw_iterator_cf_opt(cf, ro);
        // Events below first_seq may linger until their run is deleted.
        let from = from.max(self.view()?.first);
        super::blocks::visit(&mut it, from, |seq, bytes| Ok(f(seq, bytes)))
    }

    /// The first seq whose running-max op time is at or after `time_us`
    /// (Kafka's offsetsForTimes). `head + 1` when none is. May be older than
    /// `first_seq` when events at or after that time were dropped by
    /// retention: a cursor started there reports the gap.
    pub fn seq_for_time(&self, time_us: i64) -> Result<u64> {
        let b = self.bounds()?;
        let db = self.db()?;
        Ok(super::time_index::first_seq_at(&db, time_us, b.head)?.unwrap_or(b.head + 1))
    }

    /// Where object `object_id` was at `seq` (FSO buckets), if it existed then.
    /// `seq` counts after event `seq` was applied.
    pub fn path_at(
        &self,
        object_id: u64,
        seq: u64,
    ) -> Result<Option<crate::namespace::ObjectPath>> {
        let db = self.db()?;
        crate::namespace::path_at(&db, object_id, seq)
    }

    /// The object at `key` in an FSO bucket at `seq`: (object id, is a directory).
    pub fn resolve_at(
        &self,
        volume: &str,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> Result<Option<(u64, bool)>> {
        let db = self.db()?;
        crate::namespace::resolve_at(&db, volume, bucket, key, seq)
    }

    /// The children of directory `dir` (0: the bucket root) at `seq`, in name
    /// order, streaming.
    pub fn children_at(
        &self,
        volume: &str,
        bucket: &str,
        dir: u64,
        seq: u64,
    ) -> Result<crate::namespace::Children> {
        Ok(crate::namespace::Children::new(
            &self.db()?,
            volume,
            bucket,
            dir,
            seq,
        ))
    }

    /// What the ledger knows of FSO file `object_id` at the head: its size,
    /// eTag, version and mtime as the last ops that named them said. `None`
    /// when nothing is known (a directory, a file never committed, or one
    /// last committed before the ledger kept these).
    pub fn object_state(&self, object_id: u64) -> Result<Option<crate::namespace::ObjectState>> {
        let db = self.db()?;
        Ok(crate::namespace::object_state(&db, object_id)?.map(Into::into))
    }

    /// Every entry of an FSO bucket at `seq`: each directory (explicit or
    /// made as a parent) before what is below it, in name order, with the
    /// files' state at the head ([`Ledger::object_state`]; for `seq` below
    /// the head, a file's state may be newer than `seq`). `seq` must be
    /// retained.
    pub fn tree_at(
        &self,
        volume: &str,
        bucket: &str,
        seq: u64,
    ) -> Result<Vec<crate::namespace::TreeEntry>> {
        let b = self.bounds()?;
        if seq > b.head || (seq + 1 < b.first && b.head > 0) {
            return Err(Error::InvalidArgument(format!(
                "seq {seq} is not retained (first {}, head {})",
                b.first, b.head
            )));
        }
        let db = self.db()?;
        let mut out = Vec::new();
        let mut stack: Vec<(String, crate::namespace::Children)> = vec![(
            String::new(),
            crate::namespace::Children::new(&db, volume, bucket, 0, seq),
        )];
        while let Some((prefix, it)) = stack.last_mut() {
            let Some(child) = it.next() else {
                stack.pop();
                continue;
            };
            let child = child?;
            let path = format!("{prefix}{}", child.name);
            let state = if child.is_dir {
                Default::default()
            } else {
                crate::namespace::object_state(&db, child.object_id)?
                    .map(Into::into)
                    .unwrap_or_default()
            };
            out.push(crate::namespace::TreeEntry {
                path: path.clone(),
                object_id: child.object_id,
                is_dir: child.is_dir,
                listed: child.listed,
                state,
            });
            if child.is_dir {
                let below =
                    crate::namespace::Children::new(&db, volume, bucket, child.object_id, seq);
                stack.push((format!("{path}/"), below));
            }
        }
        Ok(out)
    }

    /// Keys in the shadow namespace's column family (to see garbage collection work).
    pub fn namespace_keys(&self) -> Result<usize> {
        let db = self.db()?;
        crate::namespace::key_count(&db)
    }
}
