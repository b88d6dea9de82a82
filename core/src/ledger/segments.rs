//! Sealed segments: each complete run of `rows` seqs (default 65,536) as
//! one Parquet file (zstd) under `LEDGER/segments/`, with the columns of
//! [`crate::columnar::schema`] (feature `segments`, on by default).
//!
//! | what | where |
//! |---|---|
//! | segment `k` | `segments/{first:020}-{last:020}.parquet`, seqs `k*rows+1 ..= (k+1)*rows` |
//! | a segment being written | `segments/.{name}.tmp` (hidden: pyarrow, DuckDB and Spark skip names starting with `.`) |
//! | the settings | meta `segments`: on or off, and `rows` |
//! | the last seq sealed | meta `sealed_seq` (a multiple of `rows`) |
//!
//! **The sealer** is a thread of the writing process. The writer's signal
//! rings it when the head completes a run or retention moves `first_seq`
//! past a run's end (and it looks every few seconds anyway, which also
//! retries after an error). It seals every complete run after `sealed_seq`:
//! reads the run's rows as `history()` does, writes them to the hidden
//! temporary name, fsyncs the file, renames it, fsyncs the directory, and
//! only then records `sealed_seq`. A kill at any point leaves either no file
//! or a complete one; a complete file not yet recorded is written again,
//! identically, after the next open. Leftover temporary files are removed
//! when the sealer starts.
//!
//! **Retention** removes a segment once all its seqs are below `first_seq`.
//! A run that retention had already cut into when its turn came is not
//! sealed (its rows are no longer all stored); `sealed_seq` passes it.
//!
//! **Reads.** `history()` reads a range from the segments when they cover
//! all of it and the filter is one the columns can decide (buckets,
//! prefix, suffix, kinds; a filter on S3 event names reads the row path),
//! and from the row path otherwise: the rows are the same either way. A
//! segment file that is missing or unreadable sends the range to the row
//! path: segments are derived data. `checksum()` does not include them, and
//! replicas agree whether or not they seal.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow_schema::SchemaRef;
use parking_lot::{Condvar, Mutex};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;

use super::{Inner, Ledger, SEGMENTS_DIR};
use crate::error::{Error, Result};
use crate::filter::Filter;

/// Rows per Parquet row group: a read of part of a segment skips the
/// groups outside its seqs (by their min and max `seq`).
const ROW_GROUP_ROWS: usize = 16_384;

/// How often the sealer looks without being rung (and retries after an
/// error).
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// The file name of the segment holding seqs `first..=last`.
pub fn file_name(first: u64, last: u64) -> String {
    format!("{first:020}-{last:020}.parquet")
}

/// `(first, last)` of a segment's file name; `None` for any other name.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".parquet")?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 20 || b.len() != 20 {
        return None;
    }
    let (first, last) = (a.parse().ok()?, b.parse().ok()?);
    (first <= last).then_some((first, last))
}

/// Seqs `first..=last` of segment `k`.
fn bounds_of(k: u64, rows: u64) -> (u64, u64) {
    (k * rows + 1, (k + 1) * rows)
}

fn dir_of(ledger: &Ledger) -> PathBuf {
    ledger.path().join(SEGMENTS_DIR)
}

/// Where the segment of seqs `first..=last` is (or would be).
pub(crate) fn path_of(ledger: &Ledger, first: u64, last: u64) -> PathBuf {
    dir_of(ledger).join(file_name(first, last))
}

/// `Error::Gap` when retention has passed `from`: a segment file read
/// meanwhile stays readable once removed (an open file), where the row path
/// would have failed.
pub(crate) fn check_retained(ledger: &Ledger, from: u64) -> Result<()> {
    let first = ledger.first_seq()?;
    if from < first {
        return Err(Error::Gap {
            expected: from,
            actual: first,
        });
    }
    Ok(())
}

/// Seal every complete run after `sealed_seq` (stopping early, with
/// `ledger_closed`, once `stop` is set); then remove the segments that
/// retention has passed. Returns the last seq sealed.
pub(crate) fn seal_pending(ledger: &Ledger, stop: &AtomicBool) -> Result<u64> {
    let _turn = ledger.inner.seal_lock.lock();
    let settings = ledger.segment_settings()?;
    let mut sealed = ledger.sealed_seq()?;
    if !settings.enabled {
        return Ok(sealed);
    }
    let rows = settings.rows;
    let schema = crate::columnar::schema();
    loop {
        let k = sealed / rows;
        let (first, last) = bounds_of(k, rows);
        if ledger.bounds()?.head < last {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            return Err(Error::LedgerClosed);
        }
        if first >= ledger.first_seq()? {
            match ledger.rows_of(first, last, &Filter::all(), &schema, stop) {
                Ok(Some(batch)) => write_segment(&dir_of(ledger), first, last, &batch)?,
                // No event of the run has an op: nothing to store.
                Ok(None) => {}
                // Retention cut into the run while it was read.
                Err(Error::Gap { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        ledger.set_sealed_seq(last)?;
        sealed = last;
    }
    remove_retired(ledger)?;
    Ok(sealed)
}

/// Write `batch` as the segment `first..=last`: to a hidden temporary
/// name, fsynced, then renamed, and the directory fsynced.
fn write_segment(dir: &Path, first: u64, last: u64, batch: &RecordBatch) -> Result<()> {
    fs::create_dir_all(dir)?;
    let name = file_name(first, last);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp)?;
    let mut w =
        ArrowWriter::try_new(&file, batch.schema(), Some(properties()?)).map_err(parquet_err)?;
    w.write(batch).map_err(parquet_err)?;
    w.close().map_err(parquet_err)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(&name))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// A Parquet error as the ledger's (`io`: writing is all that can fail).
pub(crate) fn parquet_err(e: parquet::errors::ParquetError) -> Error {
    Error::Io(std::io::Error::other(e))
}

/// How segments (and exports) are written.
pub(crate) fn properties() -> Result<WriterProperties> {
    // zstd level 1: at the default level 3 the sealer's work made
    // buffered batched appends 13% slower (median of 4 paired runs of 1M
    // demo ops, `append_probe` PROBE_SEGMENTS=on|off), at level 1 5%.
    let level = ZstdLevel::try_new(1).map_err(parquet_err)?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .build())
}

/// Remove the segments whose seqs are all below `first_seq`.
fn remove_retired(ledger: &Ledger) -> Result<()> {
    let first = ledger.first_seq()?;
    let Ok(entries) = fs::read_dir(dir_of(ledger)) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some((_, last)) = name.to_str().and_then(parse_name) {
            if last < first {
                fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}

/// Whether the segments in `ledger_dir` were sealed with other columns
/// than [`crate::columnar::schema`]'s (by a version before a column was
/// added): the footer of the first one found decides, as one sealer seals
/// them all. Reads would pass them by (`read_segment`), so a writable open
/// removes them and the sealer seals the retained history again.
pub(crate) fn stale(ledger_dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(ledger_dir.join(SEGMENTS_DIR)) else {
        return false;
    };
    let schema = crate::columnar::schema();
    for e in entries.flatten() {
        if e.file_name().to_str().and_then(parse_name).is_none() {
            continue;
        }
        return match File::open(e.path()).map(ParquetRecordBatchReaderBuilder::try_new) {
            Ok(Ok(b)) => b.schema().fields() != schema.fields(),
            // Unreadable: reads fall back for that file alone.
            _ => false,
        };
    }
    false
}

/// Remove what a sealer killed mid-write left: hidden temporary files.
fn remove_temporary(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_str().is_some_and(|n| n.starts_with('.')) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The rows of `from..=to` that pass `filter`, read from the segments, or
/// `None` when the segments cannot answer (not sealed that far, a filter
/// on event names, a file missing or unreadable): the caller reads the row
/// path then.
pub(crate) fn read(
    ledger: &Ledger,
    from: u64,
    to: u64,
    filter: &Filter,
    schema: &SchemaRef,
) -> Result<Option<Option<RecordBatch>>> {
    if !filter.events.is_empty() {
        return Ok(None);
    }
    let settings = ledger.segment_settings()?;
    if !settings.enabled || to > ledger.sealed_seq()? {
        return Ok(None);
    }
    let rows = settings.rows;
    let mut parts = Vec::new();
    for k in (from - 1) / rows..=(to - 1) / rows {
        if ledger.is_closed() {
            return Err(Error::LedgerClosed);
        }
        let (first, last) = bounds_of(k, rows);
        match read_segment(&path_of(ledger, first, last), from, to, filter, schema) {
            Some(mut batches) => parts.append(&mut batches),
            None => return Ok(None),
        }
    }
    check_retained(ledger, from)?;
    let parts: Vec<RecordBatch> = parts.into_iter().filter(|b| b.num_rows() > 0).collect();
    if parts.is_empty() {
        return Ok(Some(None));
    }
    match arrow_select::concat::concat_batches(schema, &parts) {
        Ok(b) => Ok(Some(Some(b))),
        Err(_) => Ok(None),
    }
}

/// The rows of one segment file in `from..=to` that pass `filter`; `None`
/// when the file cannot be read as a segment.
fn read_segment(
    path: &Path,
    from: u64,
    to: u64,
    filter: &Filter,
    schema: &SchemaRef,
) -> Option<Vec<RecordBatch>> {
    let file = File::open(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
    if builder.schema().fields() != schema.fields() {
        return None;
    }
    let md = builder.metadata().clone();
    let groups: Vec<usize> = (0..md.num_row_groups())
        .filter(|&i| {
            let seqs = md.row_group(i).column(0).statistics();
            match seqs {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(&lo), Some(&hi)) => (lo as u64) <= to && (hi as u64) >= from,
                    _ => true,
                },
                _ => true,
            }
        })
        .collect();
    let reader = builder
        .with_row_groups(groups)
        .with_batch_size(ROW_GROUP_ROWS)
        .build()
        .ok()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.ok()?;
        let batch = batch.with_schema(schema.clone()).ok()?;
        let mask = mask_of(&batch, from, to, filter)?;
        out.push(arrow_select::filter::filter_record_batch(&batch, &mask).ok()?);
    }
    Some(out)
}

/// Which rows of `batch` are in `from..=to` and pass `filter`
/// ([`Filter::matches_fields`]: all but event names, on the columns).
fn mask_of(batch: &RecordBatch, from: u64, to: u64, filter: &Filter) -> Option<BooleanArray> {
    let col = |name: &str| batch.column_by_name(name);
    let seq = col("seq")?.as_any().downcast_ref::<UInt64Array>()?;
    let kind = col("kind")?.as_any().downcast_ref::<StringArray>()?;
    let bucket = col("bucket")?.as_any().downcast_ref::<StringArray>()?;
    let key = col("key")?.as_any().downcast_ref::<StringArray>()?;
    let to_key = col("to_key")?.as_any().downcast_ref::<StringArray>()?;
    let keep = (0..batch.num_rows()).map(|i| {
        let s = seq.value(i);
        let to_key = if to_key.is_null(i) {
            ""
        } else {
            to_key.value(i)
        };
        Some(
            s >= from
                && s <= to
                && filter.matches_fields(bucket.value(i), kind.value(i), key.value(i), to_key),
        )
    });
    Some(keep.collect())
}

/// What wakes the sealer: the writer's signal rings it when a run completes
/// or retention passes a run's end.
#[derive(Default)]
pub(crate) struct Bell {
    rung: Mutex<bool>,
    cond: Condvar,
}

impl Bell {
    pub(crate) fn ring(&self) {
        *self.rung.lock() = true;
        self.cond.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let mut rung = self.rung.lock();
        if !*rung {
            self.cond.wait_for(&mut rung, timeout);
        }
        *rung = false;
    }
}

/// The writing process's sealer thread.
pub(crate) struct Sealer {
    stop: Arc<AtomicBool>,
    bell: Arc<Bell>,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Start sealing for the ledger `inner` (held weakly: the thread keeps
    /// the ledger open only while it seals a run).
    pub(crate) fn start(inner: Weak<Inner>, dir: &Path, bell: Arc<Bell>) -> Result<Sealer> {
        remove_temporary(&dir.join(SEGMENTS_DIR));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, b) = (stop.clone(), bell.clone());
        let thread = std::thread::Builder::new()
            .name("fsfeed-sealer".into())
            .spawn(move || loop {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                {
                    let Some(inner) = inner.upgrade() else { return };
                    // Not a user's handle: it does not keep the sealer going.
                    let ledger = Ledger::internal(inner);
                    // An error (a full disk, say) is retried at the next
                    // look; meanwhile `stats()` shows it.
                    match seal_pending(&ledger, &s) {
                        Ok(_) => *ledger.inner.seal_error.lock() = None,
                        Err(Error::LedgerClosed) => {}
                        Err(e) => *ledger.inner.seal_error.lock() = Some(e.to_string()),
                    }
                }
                b.wait(LOOK_EVERY);
            })?;
        bell.ring();
        Ok(Sealer {
            stop,
            bell,
            thread: Some(thread),
        })
    }

    /// Stop the thread and wait for it (it stops within a chunk of rows),
    /// unless this is the sealer itself letting go of the last handle.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.bell.ring();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
