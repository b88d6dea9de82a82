//! Event history as Arrow record batches (feature `arrow`), for dataframes:
//! pyarrow, polars and pandas in the Python package, Arrow IPC in Node.
//!
//! One row per stored event in `since..=until` that the filter passes, in seq
//! order, streamed in batches: batch `i` holds the rows of the `i`-th run of
//! [`HistoryOptions::batch_rows`] seqs (fewer rows with a filter; a run with
//! none gives no batch). Runs are read by up to four threads (one per core),
//! run `i` by thread `i % threads`, each at most one finished batch ahead of
//! the reader: memory holds two batches per thread, not the range. Reading
//! and parsing the stored events is most of the cost, and it is what the
//! threads share. Dropping the history stops its threads and waits for them;
//! closing the ledger stops them too (the next batch is `ledger_closed`), so
//! neither keeps the database open. The columns ([`schema`]):
//!
//! | column | type | from |
//! |---|---|---|
//! | `seq` | uint64 | the event's seq |
//! | `time` | timestamp[us, UTC] | the op's time |
//! | `kind` | utf8 | op kind (`commit`, `rename`, ...) |
//! | `volume`, `bucket` | utf8 | |
//! | `key` | utf8 | the key as of that seq (a rename: before it) |
//! | `to_key` | utf8, null | a rename's new key |
//! | `layout` | utf8 | `obs`, `fso`, `legacy` |
//! | `is_dir` | bool | |
//! | `size` | uint64, null | commit and truncate |
//! | `object_id` | uint64, null | FSO object id |
//! | `txid` | uint64, null | the producer's txid |
//! | `principal` | utf8, null | who did it |
//!
//! The range is fixed when the history is opened (`until` defaults to the
//! head then); a range that starts before the first retained event fails
//! with `Error::Gap` rather than silently starting later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
pub use arrow_schema::ArrowError;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::Ledger;
use crate::read::Start;
use crossbeam_channel::Receiver;

/// Sealed Parquet segments (feature `segments`): see the module.
#[cfg(feature = "segments")]
pub use crate::ledger::segments;

#[cfg(feature = "segments")]
pub mod export;

/// What [`Ledger::history`] reads.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// First event: a seq, a time (running-max op time), a position, or
    /// `Earliest` (default).
    pub since: Start,
    /// Last event, inclusive: a seq, or a time (events before it); `None`:
    /// the head when the history is opened.
    pub until: Option<Start>,
    /// Which events become rows.
    pub filter: Filter,
    /// Seqs per batch, so rows per batch at most (default 65,536).
    pub batch_rows: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            since: Start::Earliest,
            until: None,
            filter: Filter::all(),
            batch_rows: 65_536,
        }
    }
}

pub use crate::columnar::schema;

/// A streaming reader of history batches.
pub struct History {
    schema: SchemaRef,
    /// Runs of `batch_rows` seqs in the range, and the next one to hand out.
    chunks: u64,
    next_chunk: u64,
    /// One channel per worker; chunk `i` comes from worker `i % workers`.
    results: Vec<Receiver<Result<Option<RecordBatch>>>>,
    failed: bool,
    /// Set on drop: the workers stop within 1,024 rows.
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// Most threads one history reads with.
const MAX_WORKERS: usize = 4;

impl Ledger {
    /// The stored events of a range as Arrow record batches, streamed (see
    /// [`crate::history`]).
    pub fn history(&self, opts: HistoryOptions) -> Result<History> {
        History::open(self, opts)
    }

    /// The seqs `(first, last)` that [`Ledger::history`] (and
    /// `Ledger::export`) would read for `since` and `until` now; `None`
    /// when the range is empty. A start before the first retained event is
    /// `Error::Gap`. What a caller that splits a range into parts (a Spark
    /// source's partitions) plans with.
    pub fn history_range(&self, since: Start, until: Option<Start>) -> Result<Option<(u64, u64)>> {
        let b = self.bounds()?;
        let first = self.range_start(since, &b)?;
        let last = self.range_until(until, &b)?;
        Ok((first <= last).then_some((first, last)))
    }
}

impl History {
    fn open(ledger: &Ledger, opts: HistoryOptions) -> Result<History> {
        if opts.batch_rows == 0 {
            return Err(Error::InvalidArgument(
                "batch_rows must be at least 1".into(),
            ));
        }
        opts.filter.validate()?;
        let b = ledger.bounds()?;
        let since = ledger.range_start(opts.since, &b)?;
        let until = ledger.range_until(opts.until, &b)?;
        let schema = schema();
        let width = opts.batch_rows as u64;
        let chunks = if since > until {
            0
        } else {
            (until - since) / width + 1
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = (cores.min(MAX_WORKERS) as u64).min(chunks) as usize;
        // Built first: if a worker cannot start, dropping it stops (and
        // joins) the ones that did.
        let mut history = History {
            schema,
            chunks,
            next_chunk: 0,
            results: Vec::with_capacity(workers),
            failed: false,
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::with_capacity(workers),
        };
        for w in 0..workers {
            // One finished batch waits per worker while it reads the next:
            // the reader gets ahead by one batch a worker, no more.
            let (tx, rx) = crossbeam_channel::bounded(1);
            let (ledger, filter) = (ledger.clone(), opts.filter.clone());
            let (schema, stopped) = (history.schema.clone(), history.stop.clone());
            let read = move || {
                let mut i = w as u64;
                while i < chunks {
                    let from = since + i * width;
                    let to = (from + width - 1).min(until);
                    let r = read_chunk(&ledger, from, to, &filter, &schema, &stopped);
                    let stop = r.is_err();
                    // A closed channel: the history was dropped.
                    if tx.send(r).is_err() || stop {
                        return;
                    }
                    i += workers as u64;
                }
            };
            let handle = std::thread::Builder::new()
                .name("fsfeed-history".into())
                .spawn(read)?;
            history.workers.push(handle);
            history.results.push(rx);
        }
        Ok(history)
    }

    /// The columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, or `None` at the end of the range.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while !self.failed && self.next_chunk < self.chunks {
            let rx = &self.results[(self.next_chunk % self.results.len() as u64) as usize];
            self.next_chunk += 1;
            match rx.recv() {
                Ok(Ok(Some(batch))) => return Ok(Some(batch)),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => {
                    self.failed = true;
                    return Err(Error::Corrupt("a history reader thread stopped".into()));
                }
            }
        }
        Ok(None)
    }
}

/// Dropping a history stops its workers and waits for them, so no thread of
/// it reads the ledger afterwards (and a closed ledger can be opened again).
impl Drop for History {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A worker waiting to hand over a batch sees the channel closed.
        self.results.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The rows of seqs `from..=to` that pass `filter` (`None`: no row passed):
/// from the sealed segments when they can answer, else from the stored
/// events.
fn read_chunk(
    ledger: &Ledger,
    from: u64,
    to: u64,
    filter: &Filter,
    schema: &SchemaRef,
    stop: &AtomicBool,
) -> Result<Option<RecordBatch>> {
    #[cfg(feature = "segments")]
    if let Some(rows) = segments::read(ledger, from, to, filter, schema)? {
        return Ok(rows);
    }
    ledger.rows_of(from, to, filter, schema, stop)
}

impl Iterator for History {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
            .map_err(|e| ArrowError::ExternalError(Box::new(e)))
            .transpose()
    }
}

impl arrow_array::RecordBatchReader for History {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
