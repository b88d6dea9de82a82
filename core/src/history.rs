//! Event history as Arrow record batches (feature `arrow`), for dataframes:
//! pyarrow, polars and pandas in the Python package, Arrow IPC in Node.
//!
//! One row per stored event in `since..=until` that the filter passes, in seq
//! order, streamed in batches of at most [`HistoryOptions::batch_rows`] rows:
//! memory holds one batch, not the range. The columns ([`schema`]):
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

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::cursor::Start;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ledger::Ledger;
use crate::op::Kind;
use crate::proto::Event;

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
    /// Rows per batch (default 65,536).
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
    ledger: Ledger,
    next: u64,
    until: u64,
    filter: Filter,
    batch_rows: usize,
    schema: SchemaRef,
}

impl History {
    pub(crate) fn open(ledger: &Ledger, opts: HistoryOptions) -> Result<History> {
        if opts.batch_rows == 0 {
            return Err(Error::InvalidArgument(
                "batch_rows must be at least 1".into(),
            ));
        }
        opts.filter.validate()?;
        let b = ledger.bounds()?;
        let since = crate::changes::since_seq(ledger, opts.since, &b)?;
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
        Ok(History {
            ledger: ledger.clone(),
            next: since,
            until,
            filter: opts.filter,
            batch_rows: opts.batch_rows,
            schema: schema(),
        })
    }

    /// The columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, or `None` at the end of the range.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.next > self.until {
                return Ok(None);
            }
            let first = self.ledger.first_seq()?;
            if self.next < first {
                // Retention passed the reader while it streamed.
                return Err(Error::Gap {
                    expected: self.next,
                    actual: first,
                });
            }
            let mut cols = Columns::new(self.batch_rows.min(65_536));
            let (until, max, filter) = (self.until, self.batch_rows, &self.filter);
            let mut last = None;
            let mut rows = 0;
            self.ledger.scan_with(self.next, |seq, ev| {
                if seq > until {
                    return false;
                }
                last = Some(seq);
                if filter.matches(&ev) && cols.push(&ev) {
                    rows += 1;
                }
                rows < max
            })?;
            // Nothing at or after `next` up to `until`: the range is done.
            self.next = last.map(|s| s + 1).unwrap_or(self.until + 1);
            if rows > 0 {
                return cols.finish(self.schema.clone()).map(Some);
            }
        }
    }
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

struct Columns {
    seq: UInt64Builder,
    time: TimestampMicrosecondBuilder,
    kind: StringBuilder,
    volume: StringBuilder,
    bucket: StringBuilder,
    key: StringBuilder,
    to_key: StringBuilder,
    layout: StringBuilder,
    is_dir: BooleanBuilder,
    size: UInt64Builder,
    object_id: UInt64Builder,
    txid: UInt64Builder,
    principal: StringBuilder,
}

impl Columns {
    fn new(rows: usize) -> Columns {
        let s = || StringBuilder::with_capacity(rows, rows * 16);
        Columns {
            seq: UInt64Builder::with_capacity(rows),
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            kind: s(),
            volume: s(),
            bucket: s(),
            key: StringBuilder::with_capacity(rows, rows * 48),
            to_key: s(),
            layout: s(),
            is_dir: BooleanBuilder::with_capacity(rows),
            size: UInt64Builder::with_capacity(rows),
            object_id: UInt64Builder::with_capacity(rows),
            txid: UInt64Builder::with_capacity(rows),
            principal: s(),
        }
    }

    /// Add a row; false (nothing added) for an event without an op.
    fn push(&mut self, ev: &Event) -> bool {
        let Some(op) = &ev.op else { return false };
        self.seq.append_value(ev.seq);
        self.time.append_value(op.time_us);
        self.kind.append_value(op.kind_name());
        self.volume.append_value(&op.volume);
        self.bucket.append_value(&op.bucket);
        self.key.append_value(&ev.path);
        match &op.kind {
            Some(Kind::Rename(_)) => self.to_key.append_value(&ev.to_path),
            _ => self.to_key.append_null(),
        }
        self.layout.append_value(op.layout_enum().name());
        self.is_dir
            .append_value(op.is_dir || matches!(op.kind, Some(Kind::CreateDirectory(_))));
        self.size.append_option(match &op.kind {
            Some(Kind::Commit(c)) => c.size,
            Some(Kind::Truncate(t)) => Some(t.size),
            _ => None,
        });
        self.object_id.append_option(op.object_id);
        self.txid.append_option(op.txid);
        if op.principal.is_empty() {
            self.principal.append_null();
        } else {
            self.principal.append_value(&op.principal);
        }
        true
    }

    fn finish(mut self, schema: SchemaRef) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.volume.finish()),
            Arc::new(self.bucket.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.to_key.finish()),
            Arc::new(self.layout.finish()),
            Arc::new(self.is_dir.finish()),
            Arc::new(self.size.finish()),
            Arc::new(self.object_id.finish()),
            Arc::new(self.txid.finish()),
            Arc::new(self.principal.finish()),
        ];
        RecordBatch::try_new(schema, cols)
            .map_err(|e| Error::Corrupt(format!("history batch: {e}")))
    }
}
