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
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::Ledger;
use crate::read::Start;
use crossbeam_channel::Receiver;

mod columns;
mod rows;

use columns::Columns;
pub(crate) use rows::Row;

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

/// The columns of a history batch.
pub fn schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let u = |n: &str, null: bool| Field::new(n, DataType::UInt64, null);
    Arc::new(Schema::new(vec![
        u("seq", false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("kind", false),
        s("volume", false),
        s("bucket", false),
        s("key", false),
        s("to_key", true),
        s("layout", false),
        Field::new("is_dir", DataType::Boolean, false),
        u("size", true),
        u("object_id", true),
        u("txid", true),
        s("principal", true),
    ]))
}

/// A streaming reader of history batches.
pub struct History {
    schema: SchemaRef,
    /// Runs of `batch_rows` seqs in the range, and the next one to hand out.
    chunks: u64,
    next_chunk: u64,
    /// One channel per worker; chunk `i` comes from worker `i % workers`.
    results: Vec<Receiver<Result<Option<RecordBatch>>>>,
    failed: bool,
    /// Set on drop: the workers stop within [`CHECK_ROWS`] rows.
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// Rows a worker reads between looks at whether it should stop (the history
/// was dropped, or the ledger closed).
const CHECK_ROWS: u64 = 1024;

/// Most threads one history reads with.
const MAX_WORKERS: usize = 4;

impl Ledger {
    /// The stored events of a range as Arrow record batches, streamed (see
    /// [`crate::history`]).
    pub fn history(&self, opts: HistoryOptions) -> Result<History> {
        History::open(self, opts)
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
        let until = match opts.until {
            None | Some(Start::Latest) => b.head,
            Some(Start::Seq(n)) => n.min(b.head),
            Some(Start::Position(p)) => p.seq.min(b.head),
            Some(Start::Time(t)) => ledger.seq_for_time(t)?.saturating_sub(1).min(b.head),
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "history: until must be a seq or a time, not {other:?}"
                )))
            }
        };
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

/// The rows of seqs `from..=to` that pass `filter` (`None`: no row passed).
/// Seqs are dense, so a run that does not start at `from` or stops short of
/// `to` lost events to retention while it was read: a gap. Every
/// [`CHECK_ROWS`] rows it stops if `stop` is set or the ledger closed
/// (`ledger_closed`), so neither waits for a whole run.
fn read_chunk(
    ledger: &Ledger,
    from: u64,
    to: u64,
    filter: &Filter,
    schema: &SchemaRef,
    stop: &AtomicBool,
) -> Result<Option<RecordBatch>> {
    let first = ledger.first_seq()?;
    if from < first {
        return Err(Error::Gap {
            expected: from,
            actual: first,
        });
    }
    // Sized for a full run, up to 65,536 rows (a larger batch_rows, or a
    // filter that keeps few rows, grows the builders as rows come).
    let mut cols = Columns::new(((to - from + 1) as usize).min(65_536));
    let all = filter.is_all();
    let mut expected = from;
    let mut rows = 0;
    let mut failed = None;
    ledger.scan_raw(from, |seq, bytes| {
        if seq > to {
            return false;
        }
        if seq != expected {
            failed = Some(Error::Gap {
                expected,
                actual: seq,
            });
            return false;
        }
        if (expected - from) % CHECK_ROWS == CHECK_ROWS - 1
            && (stop.load(Ordering::Relaxed) || ledger.is_closed())
        {
            failed = Some(Error::LedgerClosed);
            return false;
        }
        expected += 1;
        // Rows come straight from the stored bytes; only a filter needs the
        // decoded event.
        let keep = all
            || match crate::ledger::decode_event(bytes) {
                Ok(ev) => filter.matches(&ev),
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            };
        if keep {
            match Row::parse(bytes) {
                Ok(Some(row)) => {
                    cols.push(&row);
                    rows += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
        }
        seq < to
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if expected <= to {
        return Err(Error::Gap {
            expected,
            actual: ledger.first_seq()?.max(expected + 1),
        });
    }
    if rows == 0 {
        return Ok(None);
    }
    cols.finish(schema.clone()).map(Some)
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

#[cfg(test)]
mod tests {
    use super::rows::kind_name;
    use super::*;
    use crate::op::Kind;
    use prost::Message;

    /// The row prost's full decoding gives.
    fn via_prost(ev: &crate::proto::Event) -> Row<'_> {
        let op = ev.op.as_ref().unwrap();
        let kind = match &op.kind {
            None => 0,
            Some(k) => (20..=35)
                .find(|n| kind_name(*n) == crate::op::kind_name(k))
                .unwrap(),
        };
        Row {
            seq: ev.seq,
            time_us: op.time_us,
            kind,
            volume: &op.volume,
            bucket: &op.bucket,
            path: &ev.path,
            to_path: &ev.to_path,
            layout: op.layout,
            is_dir: op.is_dir,
            size: match &op.kind {
                Some(Kind::Commit(c)) => c.size,
                Some(Kind::Truncate(t)) => Some(t.size),
                _ => None,
            },
            object_id: op.object_id,
            txid: op.txid,
            principal: &op.principal,
        }
    }

    #[test]
    fn rows_match_prost_decoding_for_a_varied_workload() {
        let ops = crate::workload::Workload::new(11, 1_767_225_600_000_000).take(5000);
        for (i, op) in ops.enumerate() {
            let op = crate::Op {
                txid: Some(i as u64 * 3),
                principal: if i % 2 == 0 {
                    "alice".into()
                } else {
                    String::new()
                },
                ..op
            };
            let ev = crate::proto::Event {
                seq: i as u64 + 1,
                path: op.key.clone(),
                to_path: match &op.kind {
                    Some(Kind::Rename(r)) => r.to_key.clone(),
                    _ => String::new(),
                },
                offset: i as u64 * 300,
                op: Some(op),
                ..Default::default()
            };
            let bytes = ev.encode_to_vec();
            assert_eq!(
                Row::parse(&bytes).unwrap().unwrap(),
                via_prost(&ev),
                "op {i}"
            );
        }
        // No op: no row. Garbage: corrupt, not a panic.
        let bare = crate::proto::Event {
            seq: 5,
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(Row::parse(&bare).unwrap(), None);
        assert_eq!(Row::parse(&[0x12, 0x7f, 1]).unwrap_err().code(), "corrupt");
        assert_eq!(
            Row::parse(&[0x1a, 2, 0xff, 0xfe]).unwrap_err().code(),
            "corrupt"
        );
    }
}
