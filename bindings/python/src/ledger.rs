//! `Ledger`: open, append, cursors, history, changes, stats, close.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fsfeed::history::HistoryOptions;
use fsfeed::notify::Notifier;
use fsfeed::render::Format;
use fsfeed::{
    CursorOptions, Durability, ExpandOptions, Ledger as CoreLedger, OnGap, OpenOptions, Retention,
    Start,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::changelog::changelog_err;
use crate::convert::*;
use crate::cursor::*;
use crate::errors::*;
use crate::history::*;

/// An fsfeed ledger: a RocksDB directory of events.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Ledger {
    pub(crate) inner: CoreLedger,
    pub(crate) notifier: Arc<Notifier>,
}

pub(crate) fn to_retention(obj: &Bound<'_, PyAny>) -> PyResult<Retention> {
    // An fsfeed.Retention (dataclass) gives its dict; a dict is taken as is.
    let v = if obj.hasattr("to_dict")? && !obj.is_instance_of::<PyDict>() {
        to_json(&obj.call_method0("to_dict")?, "retention")?
    } else {
        to_json(obj, "retention")?
    };
    Retention::from_settings(v).py_err()
}

#[pymethods]
impl Ledger {
    /// Open (or create) the ledger at `path`.
    #[staticmethod]
    #[pyo3(signature = (path, *, retention = None, durability = "sync", read_only = false, create = true, segments = None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        retention: Option<&Bound<'_, PyAny>>,
        durability: &str,
        read_only: bool,
        create: bool,
        segments: Option<bool>,
    ) -> PyResult<Ledger> {
        let retention = match retention {
            Some(r) if !r.is_none() => Some(to_retention(r)?),
            _ => None,
        };
        let opts = OpenOptions {
            create,
            retention,
            durability: Durability::parse(durability).py_err()?,
            read_only,
            segments,
            ..OpenOptions::default()
        };
        let inner = py.detach(|| CoreLedger::open_with(&path, opts)).py_err()?;
        let notifier = Arc::new(Notifier::new(inner.clone()));
        Ok(Ledger { inner, notifier })
    }

    /// Append one op (an `Op` or a canonical dict); returns its seq.
    fn append(&self, py: Python<'_>, op: &Bound<'_, PyAny>) -> PyResult<u64> {
        let op = to_op(op, 0)?;
        py.detach(|| self.inner.append(op)).py_err()
    }

    /// Append ops atomically, in order; returns their seqs.
    fn append_batch(&self, py: Python<'_>, ops: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
        if ops.is_instance_of::<PyDict>() || ops.extract::<String>().is_ok() {
            return Err(invalid("append_batch takes a list of ops"));
        }
        let mut v = Vec::new();
        for (i, o) in ops.try_iter()?.enumerate() {
            v.push(to_op(&o?, i)?);
        }
        if v.is_empty() {
            return Ok(Vec::new());
        }
        let (first, last) = py.detach(|| self.inner.append_batch(v)).py_err()?;
        Ok((first..=last).collect())
    }

    /// A cursor. Named cursors keep their committed position across runs.
    #[pyo3(signature = (name = None, *, start = None, format = "native", s3_profile = None,
        s3_settings = None, filter = None, on_gap = "report", expand_renames = false,
        expand_deletes = false))]
    #[allow(clippy::too_many_arguments)]
    fn cursor(
        &self,
        py: Python<'_>,
        name: Option<&str>,
        start: Option<&Bound<'_, PyAny>>,
        format: &str,
        s3_profile: Option<&str>,
        s3_settings: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        on_gap: &str,
        expand_renames: bool,
        expand_deletes: bool,
    ) -> PyResult<Cursor> {
        let settings = match s3_settings {
            Some(s) if !s.is_none() => Some(to_json(s, "s3_settings")?),
            _ => None,
        };
        let format = Format::from_parts(format, s3_profile, settings).py_err()?;
        let start = match start {
            Some(s) if !s.is_none() => to_start(s)?,
            _ => Start::Committed,
        };
        let opts = CursorOptions {
            start,
            on_missing: None,
            on_gap: on_gap.parse::<OnGap>().py_err()?,
            filter: to_filter(filter)?,
            expand: ExpandOptions {
                renames: expand_renames,
                deletes: expand_deletes,
            },
            format,
        };
        let c = py.detach(|| self.inner.cursor(name, opts)).py_err()?;
        Ok(Cursor {
            renderer: c.renderer().clone(),
            inner: Mutex::new(Some(c)),
            name: name.map(str::to_string),
            notifier: self.notifier.clone(),
        })
    }

    /// Events of a range as Arrow data: `pyarrow.table(h)`, `polars.from_arrow(h)`,
    /// `h.to_pandas()`. `since` / `until` take a seq, an aware datetime or a
    /// Position; `until` is inclusive and defaults to the head now. Batch `i`
    /// holds the rows of the `i`-th run of `batch_rows` seqs; the core reads
    /// runs on up to four threads, in order.
    #[pyo3(signature = (*, since = None, until = None, filter = None, batch_rows = 65536))]
    fn history(
        &self,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        batch_rows: i64,
    ) -> PyResult<History> {
        let opts = HistoryOptions {
            since: opt_start(since)?.unwrap_or(Start::Earliest),
            until: opt_start(until)?,
            filter: to_filter(filter)?,
            batch_rows: count(batch_rows, "batch_rows")?,
        };
        let h = self.inner.history(opts).py_err()?;
        Ok(History {
            inner: Mutex::new(Some(h)),
        })
    }

    /// The seqs `(first, last)` that `history(since=, until=)` would read
    /// now, or `None` for an empty range; a start before the first retained
    /// event raises `GapError`. For splitting a range into parts.
    #[pyo3(signature = (*, since = None, until = None))]
    fn history_range(
        &self,
        py: Python<'_>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<(u64, u64)>> {
        let since = opt_start(since)?.unwrap_or(Start::Earliest);
        let until = opt_start(until)?;
        py.detach(|| self.inner.history_range(since, until))
            .py_err()
    }

    /// Net changes since `since` (through `until`, default the head): one
    /// dict per path, `{"change": NEW|MODIFY|RENAME|DELETE, "volume",
    /// "bucket", "key", "from_key"?}`.
    #[pyo3(signature = (*, since, until = None))]
    fn changes<'py>(
        &self,
        py: Python<'py>,
        since: &Bound<'py, PyAny>,
        until: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let since = to_start(since)?;
        let until = match until {
            Some(n) if n < 1 => return Err(invalid(format!("until must be a seq >= 1, not {n}"))),
            Some(n) => Some(n as u64),
            None => None,
        };
        let rows = py.detach(|| self.inner.changes(since, until)).py_err()?;
        to_python(py, &rows)
    }

    /// Write history as Parquet files to `dest`, a directory or
    /// `s3://BUCKET[/PREFIX]` (with `store`, a TOML file of endpoint and
    /// keys), as `fsfeed export --parquet` does: one file per run of the
    /// segment size, named by seqs, read by Spark, DuckDB, polars and
    /// pyarrow as one table. `since` and `until` (inclusive) are seqs or
    /// times; with `cursor` only what is new since the last export with it
    /// is written, and the cursor is committed after each file. Returns the
    /// report: `{"dest", "files", "copied", "rows", "bytes", "first_seq"?,
    /// "last_seq"?, "removed"?, "committed"?, "gap"?}`.
    #[pyo3(signature = (dest, *, since = None, until = None, cursor = None, store = None, skip_gap = false))]
    #[allow(clippy::too_many_arguments)]
    fn export_parquet<'py>(
        &self,
        py: Python<'py>,
        dest: &Bound<'py, PyAny>,
        since: Option<&Bound<'py, PyAny>>,
        until: Option<&Bound<'py, PyAny>>,
        cursor: Option<String>,
        store: Option<PathBuf>,
        skip_gap: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        use fsfeed_changelog::export::{bound, export, Request, Target};
        let dest: String = match dest.extract::<PathBuf>() {
            Ok(p) => p
                .to_str()
                .ok_or_else(|| invalid("dest must be valid UTF-8"))?
                .to_string(),
            Err(_) => return Err(invalid("dest must be a path or an s3:// URL")),
        };
        let req = Request {
            since: bound("since", opt_start(since)?).map_err(changelog_err)?,
            until: bound("until", opt_start(until)?).map_err(changelog_err)?,
            cursor,
            skip_gap,
        };
        let target = Target::parse(&dest, store.as_deref()).map_err(changelog_err)?;
        let ledger = self.inner.clone();
        let rt = runtime()?;
        let report = py
            .detach(|| rt.block_on(export(&ledger, &target, req)))
            .map_err(changelog_err)?;
        to_python(py, &report)
    }

    /// Counters and settings: first and head seq, events, bytes, retention, cursors.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = py.detach(|| self.inner.stats()).py_err()?;
        to_python(py, &s)
    }

    /// Read every stored key with its checksum verified and decode every
    /// event: `{"first_seq", "head_seq", "events", "keys"}`, or
    /// `CorruptError` naming the damage (`fsfeed verify`).
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = py.detach(|| self.inner.verify()).py_err()?;
        to_python(py, &v)
    }

    /// The tree of FSO bucket `bucket` at `seq` (default: the head), each
    /// directory before what is below it: `[{"path", "object_id",
    /// "is_dir", "listed", "size"?, "etag"?, "version_id"?, "mtime_ms"?}]`
    /// (a file's state is the head's; a field is there only when known).
    #[pyo3(signature = (bucket, *, volume = "", seq = None))]
    fn tree<'py>(
        &self,
        py: Python<'py>,
        bucket: &str,
        volume: &str,
        seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = py
            .detach(|| {
                let seq = match seq {
                    Some(s) => s,
                    None => self.inner.head_seq()?,
                };
                self.inner.tree_at(volume, bucket, seq)
            })
            .py_err()?;
        to_python(py, &t)
    }

    /// Every named cursor: `[{"name", "position", "lag", "store",
    /// "updated_us"}]`, as `fsfeed cursors --json` lists them.
    fn cursors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = py.detach(|| self.inner.cursors()).py_err()?;
        to_python(py, &c)
    }

    /// Forget a named cursor, so that it no longer holds retention back;
    /// False when there was none of that name.
    fn delete_cursor(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        py.detach(|| self.inner.delete_cursor(name)).py_err()
    }

    /// Store new retention settings (an `fsfeed.Retention` or a dict, as
    /// `open(retention=)` takes); what they drop is deleted at once.
    fn set_retention(&self, py: Python<'_>, retention: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = to_retention(retention)?;
        py.detach(|| self.inner.set_retention(r)).py_err()
    }

    /// The retention settings in force, as a dict of the limits that are set.
    #[getter]
    fn retention<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = py.detach(|| self.inner.retention()).py_err()?;
        to_python(py, &fsfeed::RetentionInfo::from(&r))
    }

    /// A checksum (FNV-1a 64) over every retained event: replicas fed the
    /// same ops agree on it.
    fn checksum(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.inner.checksum()).py_err()
    }

    /// Last appended seq (0 when none).
    #[getter]
    fn head_seq(&self) -> PyResult<u64> {
        self.inner.head_seq().py_err()
    }

    /// First retained seq.
    #[getter]
    fn first_seq(&self) -> PyResult<u64> {
        self.inner.first_seq().py_err()
    }

    /// True for a reader opened beside a writer in another process.
    #[getter]
    fn read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// Seal every complete run of seqs into its Parquet segment now (the
    /// writer also does it in the background); returns the last seq sealed.
    fn seal(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.inner.seal()).py_err()
    }

    /// The last seq sealed into Parquet segments (0: none).
    #[getter]
    fn sealed_seq(&self) -> PyResult<u64> {
        self.inner.sealed_seq().py_err()
    }

    /// Whether the ledger seals Parquet segments (its stored setting).
    #[getter]
    fn segments(&self) -> PyResult<bool> {
        self.inner.segments_enabled().py_err()
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Copy a consistent snapshot of the ledger into `dir` (writer only).
    fn checkpoint(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.checkpoint(&dir)).py_err()
    }

    /// Close: later calls raise `LedgerClosed`; waiting readers wake, and
    /// open histories stop. Once it returns, the directory can be opened again.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            // Close first: waiting readers then wake to `LedgerClosed`.
            let r = self.inner.close();
            self.notifier.stop();
            r
        })
        .py_err()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Ledger({:?}{})",
            self.inner.path(),
            if self.inner.is_read_only() {
                ", read_only=True"
            } else {
                ""
            }
        )
    }
}
