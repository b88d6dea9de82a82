//! Exports for engines (feature `segments`): a range of history as Parquet
//! files that Spark, DuckDB, polars and pyarrow read as one table.
//!
//! [`Ledger::export`] cuts `since..=until` (both ends inclusive) at the
//! ledger's segment boundaries (seqs `k*rows+1 ..= (k+1)*rows`, `rows` the
//! segment size, 65,536 unless set, also when sealing is off) and yields
//! one [`ExportFile`] per piece that holds a row, in seq order:
//!
//! - a piece that is a whole sealed segment is that segment's bytes, as
//!   stored (checked to be a Parquet file of [`schema`](super::schema));
//! - any other piece (the ends of the range, the unsealed tail) is encoded
//!   from its rows as `history()` reads them, with the sealer's settings
//!   (zstd level 1, row groups of 16,384 rows).
//!
//! Each file is named `{first:020}-{last:020}.parquet` by the seqs of its
//! piece, so that files of successive exports never share a name unless
//! they hold the same seqs. Memory holds one piece, not the range.
//!
//! Where the files go (a directory or an S3 bucket), the cursor that makes
//! exports incremental and what a killed export leaves are the caller's:
//! `fsfeed export --parquet` in the `fsfeed-changelog` crate.

use std::fs::File;
use std::io::{Read, Seek};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use super::segments;
use crate::error::Result;
use crate::filter::Filter;
use crate::ledger::Ledger;
use crate::read::Start;

/// What [`Ledger::export`] writes.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// First event: a seq, a time (running-max op time), or `Earliest`
    /// (default). Before the first retained event: `Error::Gap`.
    pub since: Start,
    /// Last event, inclusive: a seq or a time (events before it); `None`:
    /// the head when the export is opened.
    pub until: Option<Start>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            since: Start::Earliest,
            until: None,
        }
    }
}

/// One Parquet file of an export.
#[derive(Clone)]
pub struct ExportFile {
    /// First seq of the piece (the file may have no row of it: an event
    /// without an op has no row).
    pub first: u64,
    /// Last seq of the piece.
    pub last: u64,
    /// Rows in the file.
    pub rows: u64,
    /// The file: a whole Parquet file.
    pub bytes: Vec<u8>,
    /// A sealed segment's bytes, copied (not encoded again).
    pub copied: bool,
}

impl ExportFile {
    /// `{first:020}-{last:020}.parquet`.
    pub fn name(&self) -> String {
        segments::file_name(self.first, self.last)
    }
}

impl std::fmt::Debug for ExportFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportFile")
            .field("first", &self.first)
            .field("last", &self.last)
            .field("rows", &self.rows)
            .field("bytes", &self.bytes.len())
            .field("copied", &self.copied)
            .finish()
    }
}

/// The files of one export, in seq order (an iterator).
pub struct Export {
    ledger: Ledger,
    /// The range, fixed when the export was opened (`None`: empty).
    range: Option<(u64, u64)>,
    next: u64,
    /// The ledger's segment settings: the size pieces are cut at, and
    /// whether sealed segments can be copied.
    rows: u64,
    sealing: bool,
    failed: bool,
}

impl Ledger {
    /// The Parquet files of a range of history (see [`crate::history::export`]).
    pub fn export(&self, opts: ExportOptions) -> Result<Export> {
        let range = self.history_range(opts.since, opts.until)?;
        let settings = self.segment_settings()?;
        Ok(Export {
            ledger: self.clone(),
            range,
            next: range.map_or(1, |(first, _)| first),
            rows: settings.rows,
            sealing: settings.enabled,
            failed: false,
        })
    }
}

impl Export {
    /// The seqs exported, `(first, last)`; `None` for an empty range.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.range
    }

    /// The pieces' seq ranges, in order (whether or not they will hold a
    /// row): what the export can write, by name.
    pub fn pieces(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut next = self.range.map_or(1, |(first, _)| first);
        while let Some(piece) = self.piece_from(next) {
            out.push(piece);
            next = piece.1 + 1;
        }
        out
    }

    /// The piece that starts at `from`: up to the end of its segment run
    /// or of the range; `None` past the range.
    fn piece_from(&self, from: u64) -> Option<(u64, u64)> {
        let (_, until) = self.range?;
        (from <= until).then(|| (from, (((from - 1) / self.rows + 1) * self.rows).min(until)))
    }

    /// The next file, or `None` at the end of the range.
    pub fn next_file(&mut self) -> Result<Option<ExportFile>> {
        while !self.failed {
            let Some((first, last)) = self.piece_from(self.next) else {
                break;
            };
            self.next = last + 1;
            match self.piece(first, last) {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    fn piece(&self, first: u64, last: u64) -> Result<Option<ExportFile>> {
        let whole = (first - 1) % self.rows == 0 && last - first + 1 == self.rows;
        if whole {
            if let Some(f) = self.copy_segment(first, last)? {
                return Ok(Some(f));
            }
        }
        let opts = super::HistoryOptions {
            since: Start::Seq(first),
            until: Some(Start::Seq(last)),
            filter: Filter::all(),
            batch_rows: (last - first + 1) as usize,
        };
        let mut h = self.ledger.history(opts)?;
        let Some(batch) = h.next_batch()? else {
            return Ok(None);
        };
        Ok(Some(ExportFile {
            first,
            last,
            rows: batch.num_rows() as u64,
            bytes: encode(&batch)?,
            copied: false,
        }))
    }

    /// The sealed segment `first..=last` as stored; `None` when it is not
    /// sealed or its file cannot be read as a segment (the rows are read
    /// then, as `history()` does).
    fn copy_segment(&self, first: u64, last: u64) -> Result<Option<ExportFile>> {
        let l = &self.ledger;
        if !self.sealing || last > l.sealed_seq()? {
            return Ok(None);
        }
        let Ok(mut file) = File::open(segments::path_of(l, first, last)) else {
            return Ok(None);
        };
        // The footer: a Parquet file of the history's columns.
        let rows = match file
            .try_clone()
            .map(ParquetRecordBatchReaderBuilder::try_new)
        {
            Ok(Ok(b)) if b.schema().fields() == super::schema().fields() => {
                b.metadata().file_metadata().num_rows() as u64
            }
            _ => return Ok(None),
        };
        let mut bytes = Vec::new();
        if file.rewind().is_err() || file.read_to_end(&mut bytes).is_err() {
            return Ok(None);
        }
        segments::check_retained(l, first)?;
        Ok(Some(ExportFile {
            first,
            last,
            rows,
            bytes,
            copied: true,
        }))
    }
}

/// `batch` as one Parquet file, written as the sealer writes segments.
fn encode(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(segments::properties()?))
        .map_err(segments::parquet_err)?;
    w.write(batch).map_err(segments::parquet_err)?;
    w.into_inner().map_err(segments::parquet_err)
}

impl Iterator for Export {
    type Item = Result<ExportFile>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_file().transpose()
    }
}
