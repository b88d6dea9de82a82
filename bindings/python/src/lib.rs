//! `fsfeed._native`: the Python face of the `fsfeed` crate.
//!
//! Thin by rule (`ARCHITECTURE.md`, "Front ends"): arguments are converted at the edge and
//! the core does the work. Records are rendered by the core's renderers and
//! handed over as dicts; filters, formats, gaps, expansion and errors are the
//! core's. What lives here is only what Python itself needs: the GIL released
//! around every wait, Ctrl-C checked between short waits, exceptions with the
//! core's stable codes, the Arrow C stream capsule, and the calls back into
//! Python for callbacks and asyncio wake-ups.

mod pyser;

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fsfeed::cursor::Subscription as CoreSubscription;
use fsfeed::history::{History as CoreHistory, HistoryOptions};
use fsfeed::notify::Notifier;
use fsfeed::render::{Format, Renderer};
use fsfeed::{
    Batch as CoreBatch, Cursor as CoreCursor, CursorOptions, Durability, Error, EventId,
    ExpandOptions, Filter, Layout, Ledger as CoreLedger, OnGap, Op as CoreOp, OpenOptions,
    Position as CorePos, Retention, Start,
};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList, PyType};

/// As the CLI: the writer allocates per op, and glibc malloc halves its rate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Longest stretch a blocking call waits with the GIL released before it
/// looks for a signal (Ctrl-C) again.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------- errors

/// Python class names of the core's error codes (`fsfeed.error::ERROR_CODES`).
const ERROR_CLASSES: &[(&str, &str)] = &[
    ("invalid_op", "InvalidOp"),
    ("invalid_json", "InvalidJson"),
    ("unknown_kind", "UnknownKind"),
    ("invalid_key", "InvalidKey"),
    ("txid_not_increasing", "TxidNotIncreasing"),
    ("rename_to_self", "RenameToSelf"),
    ("unknown_parent", "UnknownParent"),
    ("already_exists", "AlreadyExists"),
    ("directory_not_empty", "DirectoryNotEmpty"),
    ("rename_into_subtree", "RenameIntoSubtree"),
    ("gap", "GapError"),
    ("ledger_closed", "LedgerClosed"),
    ("ledger_locked", "LedgerLocked"),
    ("ledger_not_found", "LedgerNotFound"),
    ("read_only", "ReadOnly"),
    ("position_out_of_range", "PositionOutOfRange"),
    ("invalid_argument", "InvalidArgument"),
    ("invalid_event_id", "InvalidEventId"),
    ("callback_failed", "CallbackFailed"),
    ("storage", "StorageError"),
    ("io", "IoError"),
    ("corrupt", "CorruptError"),
    ("unsupported_format", "UnsupportedFormat"),
];

struct ErrorTypes {
    base: Py<PyType>,
    by_code: Vec<(&'static str, Py<PyType>)>,
}

static ERRORS: OnceLock<ErrorTypes> = OnceLock::new();

fn make_error_types(py: Python<'_>) -> PyResult<ErrorTypes> {
    // Class attributes are set after creation: `new_type`'s `dict` argument
    // is released before CPython reads it (pyo3 0.27), so it stays `None`.
    let base = PyErr::new_type(
        py,
        c"fsfeed.FsfeedError",
        Some(c"Every fsfeed error; `code` is the core's stable error code."),
        Some(&py.get_type::<PyException>()),
        None,
    )?;
    base.bind(py).setattr("code", "error")?;
    let mut by_code = Vec::new();
    for (code, class) in ERROR_CLASSES {
        let name = CString::new(format!("fsfeed.{class}")).expect("no NUL");
        let doc = CString::new(format!("fsfeed error `{code}`.")).expect("no NUL");
        let t = PyErr::new_type(py, &name, Some(&doc), Some(base.bind(py)), None)?;
        t.bind(py).setattr("code", *code)?;
        by_code.push((*code, t));
    }
    Ok(ErrorTypes { base, by_code })
}

fn error_type<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyType> {
    let e = ERRORS.get().expect("module initialised");
    e.by_code
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, t)| t.bind(py).clone())
        .unwrap_or_else(|| e.base.bind(py).clone())
}

/// A core error as its Python exception, with `code` and the error's fields.
fn to_py(e: Error) -> PyErr {
    Python::attach(|py| {
        let t = error_type(py, e.code());
        let err = PyErr::from_type(t, e.to_string());
        let v = err.value(py);
        let _ = v.setattr("code", e.code());
        match &e {
            Error::Gap { expected, actual } => {
                let _ = v.setattr("expected", *expected);
                let _ = v.setattr("actual", *actual);
            }
            Error::InvalidOp { index, .. }
            | Error::InvalidJson { index, .. }
            | Error::UnknownKind { index, .. }
            | Error::InvalidKey { index, .. } => {
                let _ = v.setattr("index", *index);
            }
            _ => {}
        }
        err
    })
}

fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(Error::InvalidArgument(msg.into()))
}

trait OrPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPy<T> for fsfeed::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

// ---------------------------------------------------------------- conversions

fn to_json(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<serde_json::Value> {
    pythonize::depythonize(obj).map_err(|e| invalid(format!("{what}: {e}")))
}

fn to_python<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| invalid(format!("conversion to Python: {e}")))
}

/// A non-negative count from a Python int (negative: `InvalidArgument`).
fn count(v: i64, what: &str) -> PyResult<usize> {
    if v < 1 {
        return Err(invalid(format!("{what} must be at least 1, not {v}")));
    }
    Ok(v as usize)
}

/// Seconds (float, `None` = forever) as a Duration.
fn seconds(v: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(invalid(format!(
            "{what} must be a number of seconds >= 0, not {s}"
        ))),
    }
}

/// Microseconds since the epoch of a timezone-aware `datetime`, if `obj` is one.
fn datetime_us(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let py = obj.py();
    let dt = py.import("datetime")?.getattr("datetime")?;
    if !obj.is_instance(&dt)? {
        return Ok(None);
    }
    if obj.getattr("tzinfo")?.is_none() {
        return Err(invalid(
            "a naive datetime is ambiguous: give it a tzinfo (datetime.timezone.utc)",
        ));
    }
    let s: f64 = obj.call_method0("timestamp")?.extract()?;
    Ok(Some((s * 1_000_000.0).round() as i64))
}

/// `"earliest" | "latest" | "committed" | "SEQ:SUB" | RFC 3339`, an int seq,
/// an aware `datetime`, a `Position` or a `{"seq", "sub"}` dict.
fn to_start(obj: &Bound<'_, PyAny>) -> PyResult<Start> {
    if let Ok(p) = obj.extract::<PyRef<'_, Position>>() {
        return Ok(Start::Position(p.0));
    }
    if let Ok(s) = obj.extract::<String>() {
        return s.parse().py_err();
    }
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid("start cannot be a bool"));
    }
    if let Ok(n) = obj.extract::<i64>() {
        if n < 1 {
            return Err(invalid(format!("seq numbers start at 1, not {n}")));
        }
        return Ok(Start::Seq(n as u64));
    }
    if let Some(us) = datetime_us(obj)? {
        return Ok(Start::Time(us));
    }
    if obj.is_instance_of::<PyDict>() {
        return Ok(Start::Position(Position::from_dict(obj)?.0));
    }
    Err(invalid(format!(
        "start must be 'earliest', 'latest', 'committed', a seq, a datetime or a Position, not {}",
        obj.get_type().name()?
    )))
}

fn to_op(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<CoreOp> {
    if let Ok(op) = obj.extract::<PyRef<'_, Op>>() {
        return Ok(op.0.clone());
    }
    if !obj.is_instance_of::<PyDict>() {
        return Err(to_py(Error::InvalidOp {
            index,
            reason: format!(
                "an op is an fsfeed.Op or a dict, not {}",
                obj.get_type().name()?
            ),
        }));
    }
    let v = pythonize::depythonize::<serde_json::Value>(obj).map_err(|e| {
        to_py(Error::InvalidJson {
            index,
            reason: e.to_string(),
        })
    })?;
    CoreOp::from_json_value(v, index).py_err()
}

fn to_filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Filter> {
    match obj {
        None => Ok(Filter::all()),
        Some(o) if o.is_none() => Ok(Filter::all()),
        Some(o) => Filter::from_json_value(to_json(o, "filter")?).py_err(),
    }
}

// ---------------------------------------------------------------- Position

/// The next record to read: event `seq`, record `sub` of its expansion.
#[pyclass(module = "fsfeed._native", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Position(CorePos);

#[pymethods]
impl Position {
    #[new]
    #[pyo3(signature = (seq, sub = 0))]
    fn new(seq: i64, sub: i64) -> PyResult<Position> {
        if seq < 0 || sub < 0 || sub > i64::from(u32::MAX) {
            return Err(invalid(format!("position ({seq}, {sub}) is out of range")));
        }
        Ok(Position(CorePos::new(seq as u64, sub as u32)))
    }

    /// Sequence number of the event.
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }

    /// Index of the record within the event's expansion.
    #[getter]
    fn sub(&self) -> u32 {
        self.0.sub
    }

    /// `{"seq": .., "sub": ..}`.
    #[allow(clippy::wrong_self_convention)] // pyo3 methods take `&self`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.0)
    }

    /// The position of a `{"seq": .., "sub": ..}` dict (`sub` may be left out).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Position> {
        let v = to_json(d, "position")?;
        serde_json::from_value::<CorePos>(v)
            .map(Position)
            .map_err(|e| invalid(format!("position: {e}")))
    }

    /// The event id of the record at this position (the S3 records'
    /// `eventId`, the pull service's ack id): stable, `SEQ-SUB` in hex.
    #[getter]
    fn event_id(&self) -> String {
        EventId::new(self.0).to_string()
    }

    /// The position of the record an event id names; anything that is not
    /// an fsfeed event id raises `InvalidEventId`.
    #[staticmethod]
    fn from_event_id(event_id: &str) -> PyResult<Position> {
        EventId::parse(event_id)
            .map(|id| Position(id.position()))
            .py_err()
    }

    fn __repr__(&self) -> String {
        format!("Position(seq={}, sub={})", self.0.seq, self.0.sub)
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }
}

// ---------------------------------------------------------------- Op

/// One namespace operation, built with the class methods or from a dict in
/// the canonical JSON form (`Op.from_dict`).
#[pyclass(module = "fsfeed._native", frozen)]
#[derive(Clone)]
struct Op(CoreOp);

#[pymethods]
impl Op {
    /// Create (open for writing) a file.
    #[staticmethod]
    fn create_file(volume: &str, bucket: &str, key: &str) -> Op {
        Op(CoreOp::create_file(volume, bucket, key))
    }

    /// Create a directory.
    #[staticmethod]
    fn create_directory(volume: &str, bucket: &str, key: &str) -> Op {
        Op(CoreOp::create_directory(volume, bucket, key))
    }

    /// Commit (close) an object: its final size and eTag.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, size, etag = ""))]
    fn commit(volume: &str, bucket: &str, key: &str, size: u64, etag: &str) -> Op {
        Op(CoreOp::commit(volume, bucket, key, size, etag))
    }

    /// Append to a file.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, new_block = false))]
    fn append(volume: &str, bucket: &str, key: &str, new_block: bool) -> Op {
        Op(CoreOp::append(volume, bucket, key, new_block))
    }

    /// Truncate a file to `size` bytes.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, size))]
    fn truncate(volume: &str, bucket: &str, key: &str, size: u64) -> Op {
        Op(CoreOp::truncate(volume, bucket, key, size))
    }

    /// Delete an object or (with `recursive`) a directory and all below it.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, recursive = false))]
    fn delete(volume: &str, bucket: &str, key: &str, recursive: bool) -> Op {
        Op(CoreOp::delete(volume, bucket, key, recursive))
    }

    /// Rename `key` to `to_key`.
    #[staticmethod]
    fn rename(volume: &str, bucket: &str, key: &str, to_key: &str) -> Op {
        Op(CoreOp::rename(volume, bucket, key, to_key))
    }

    /// Create a volume.
    #[staticmethod]
    fn volume_create(volume: &str) -> Op {
        Op(CoreOp::volume_create(volume))
    }

    /// Delete a volume.
    #[staticmethod]
    fn volume_delete(volume: &str) -> Op {
        Op(CoreOp::volume_delete(volume))
    }

    /// Create a bucket.
    #[staticmethod]
    fn bucket_create(volume: &str, bucket: &str) -> Op {
        Op(CoreOp::bucket_create(volume, bucket))
    }

    /// Delete a bucket.
    #[staticmethod]
    fn bucket_delete(volume: &str, bucket: &str) -> Op {
        Op(CoreOp::bucket_delete(volume, bucket))
    }

    /// The op of a dict in the canonical JSON form (validated).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Op> {
        to_op(d, 0).map(Op)
    }

    /// A copy at this time: microseconds since the epoch, or an aware datetime.
    fn at(&self, time: &Bound<'_, PyAny>) -> PyResult<Op> {
        let us = match datetime_us(time)? {
            Some(us) => us,
            None => time
                .extract::<i64>()
                .map_err(|_| invalid("time is microseconds since the epoch or a datetime"))?,
        };
        if us <= 0 {
            return Err(invalid(format!("time must be after the epoch, not {us}")));
        }
        Ok(Op(self.0.clone().at(us)))
    }

    /// A copy with the producer's transaction id.
    fn with_txid(&self, txid: u64) -> Op {
        Op(self.0.clone().with_txid(txid))
    }

    /// A copy in this bucket layout: `obs`, `fso` or `legacy`.
    fn with_layout(&self, layout: &str) -> PyResult<Op> {
        let l = Layout::parse(layout)
            .ok_or_else(|| invalid(format!("unknown layout {layout:?} (obs, fso, legacy)")))?;
        Ok(Op(self.0.clone().with_layout(l)))
    }

    /// A copy with who did it: principal, request id, source IP.
    #[pyo3(signature = (principal, request_id = "", source_ip = ""))]
    fn by(&self, principal: &str, request_id: &str, source_ip: &str) -> Op {
        Op(self.0.clone().by(principal, request_id, source_ip))
    }

    /// The op kind (`commit`, `rename`, ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind_name()
    }

    /// The canonical JSON form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.0.to_json_value())
    }

    fn __repr__(&self) -> String {
        format!("Op({})", self.0.to_json_value())
    }
}

// ---------------------------------------------------------------- Batch

/// What one read returns.
#[pyclass(module = "fsfeed._native", frozen)]
struct Batch {
    records: Py<PyList>,
    gap: Option<Py<PyAny>>,
    next: CorePos,
}

#[pymethods]
impl Batch {
    /// The records, as dicts in the cursor's format.
    #[getter]
    fn records(&self, py: Python<'_>) -> Py<PyList> {
        self.records.clone_ref(py)
    }

    /// `{"expected": seq, "actual": first_seq}` when the cursor fell behind
    /// retention before these records, else `None`.
    #[getter]
    fn gap(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.gap.as_ref().map(|g| g.clone_ref(py))
    }

    /// The position after this batch: commit it once the batch is handled.
    #[getter]
    fn next(&self) -> Position {
        Position(self.next)
    }

    /// True when the batch holds no record and no gap.
    #[getter]
    fn empty(&self, py: Python<'_>) -> bool {
        self.records.bind(py).is_empty() && self.gap.is_none()
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.records.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Batch(records={}, gap={}, next={})",
            self.records.bind(py).len(),
            if self.gap.is_some() { "True" } else { "False" },
            self.next
        )
    }
}

/// The records of a batch as Python objects: each renderer hands its typed
/// record to `pyser`, which builds the dicts directly (no JSON text or
/// `Value` tree in between) with cached keys. Which fields a record has is
/// the renderer's.
fn to_batch(py: Python<'_>, b: &CoreBatch, renderer: &dyn Renderer) -> PyResult<Batch> {
    let list = PyList::empty(py);
    let mut failed = None;
    for r in &b.records {
        renderer.render_with(r, &mut |rec| match pyser::to_python(py, rec) {
            Ok(o) => {
                if let Err(e) = list.append(o) {
                    failed = Some(e);
                }
            }
            Err(e) => failed = Some(invalid(format!("records: {e}"))),
        });
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    let records = list;
    let gap = match &b.gap {
        Some(g) => Some(to_python(py, g)?.unbind()),
        None => None,
    };
    Ok(Batch {
        records: records.unbind(),
        gap,
        next: b.next,
    })
}

// ---------------------------------------------------------------- Ledger

/// An fsfeed ledger: a RocksDB directory of events.
#[pyclass(module = "fsfeed._native", frozen)]
struct Ledger {
    inner: CoreLedger,
    notifier: Arc<Notifier>,
}

fn to_retention(obj: &Bound<'_, PyAny>) -> PyResult<Retention> {
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
    #[pyo3(signature = (path, *, retention = None, durability = "sync", read_only = false, create = true))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        retention: Option<&Bound<'_, PyAny>>,
        durability: &str,
        read_only: bool,
        create: bool,
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
            format: format.clone(),
        };
        let c = py.detach(|| self.inner.cursor(name, opts)).py_err()?;
        Ok(Cursor {
            inner: Mutex::new(Some(c)),
            renderer: format.renderer(),
            format,
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
            since: match since {
                Some(s) if !s.is_none() => to_start(s)?,
                _ => Start::Earliest,
            },
            until: match until {
                Some(s) if !s.is_none() => Some(to_start(s)?),
                _ => None,
            },
            filter: to_filter(filter)?,
            batch_rows: count(batch_rows, "batch_rows")?,
        };
        let h = self.inner.history(opts).py_err()?;
        Ok(History {
            inner: Mutex::new(Some(h)),
        })
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

    /// Counters and settings: first and head seq, events, bytes, retention, cursors.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = py.detach(|| self.inner.stats()).py_err()?;
        to_python(py, &s)
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

// ---------------------------------------------------------------- Cursor

/// A reader's place in a ledger.
#[pyclass(module = "fsfeed._native", frozen)]
struct Cursor {
    /// `None` once a subscription owns the core cursor.
    inner: Mutex<Option<CoreCursor>>,
    format: Format,
    renderer: Box<dyn Renderer>,
    name: Option<String>,
    notifier: Arc<Notifier>,
}

impl Cursor {
    fn with<T>(&self, f: impl FnOnce(&mut CoreCursor) -> fsfeed::Result<T>) -> PyResult<T> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(c) => f(c).py_err(),
            None => Err(invalid("this cursor now belongs to a subscription")),
        }
    }

    /// Read with the GIL released, in slices that let Ctrl-C through.
    fn read_blocking(
        &self,
        py: Python<'_>,
        max: usize,
        timeout: Option<Duration>,
    ) -> PyResult<Batch> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE),
                None => SIGNAL_SLICE,
            };
            let b = py.detach(|| self.with(|c| c.read(max, slice)))?;
            let done = deadline.map(|d| Instant::now() >= d).unwrap_or(false);
            if !b.is_empty() || done {
                return to_batch(py, &b, self.renderer.as_ref());
            }
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl Cursor {
    /// Up to `max` records; waits up to `timeout` seconds (`None`: until
    /// there is one) for the first, with the GIL released. Ctrl-C interrupts.
    #[pyo3(signature = (*, max = 1000, timeout = None))]
    fn read(&self, py: Python<'_>, max: i64, timeout: Option<f64>) -> PyResult<Batch> {
        let max = count(max, "max")?;
        let timeout = seconds(timeout, "timeout")?;
        self.read_blocking(py, max, timeout)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next non-empty batch (blocks; iteration never ends by itself).
    fn __next__(&self, py: Python<'_>) -> PyResult<Batch> {
        self.read_blocking(py, 1000, None)
    }

    /// `async for batch in cursor.aiter()`: batches without blocking the
    /// event loop and without a thread per waiting reader.
    #[pyo3(signature = (*, max = 1000))]
    fn aiter<'py>(slf: &Bound<'py, Self>, max: i64) -> PyResult<Bound<'py, PyAny>> {
        let max = count(max, "max")?;
        slf.py()
            .import("fsfeed._aio")?
            .call_method1("aiter", (slf, max))
    }

    /// The asyncio reader's one step (the core's `read_or_notify`): the
    /// batch there is now, or `None` after registering `wake(reached: bool)`,
    /// which the notifier thread calls once the head moves past this
    /// cursor's position (`False`: the ledger closed).
    fn _read_or_notify(
        &self,
        py: Python<'_>,
        max: i64,
        wake: Py<PyAny>,
    ) -> PyResult<Option<Batch>> {
        let max = count(max, "max")?;
        let notifier = self.notifier.clone();
        let got = py.detach(|| {
            self.with(|c| {
                c.read_or_notify(
                    max,
                    &notifier,
                    Box::new(move |reached| {
                        Python::attach(|py| {
                            if let Err(e) = wake.call1(py, (reached,)) {
                                e.write_unraisable(py, None);
                            }
                        })
                    }),
                )
            })
        })?;
        got.map(|b| to_batch(py, &b, self.renderer.as_ref()))
            .transpose()
    }

    /// Consume the record an event id names: commit the position after it
    /// (named cursors) and return that position. `InvalidEventId` for a
    /// string that is not an fsfeed event id; nothing changes on error.
    fn ack(&self, py: Python<'_>, event_id: &str) -> PyResult<Position> {
        py.detach(|| self.with(|c| c.ack(event_id))).map(Position)
    }

    /// Store a position as this (named) cursor's committed one; default: the
    /// position after everything read so far.
    #[pyo3(signature = (position = None))]
    fn commit(&self, py: Python<'_>, position: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let pos = match position {
            None => None,
            Some(p) if p.is_none() => None,
            Some(p) => match to_start(p)? {
                Start::Position(p) => Some(p),
                Start::Seq(s) => Some(CorePos::new(s, 0)),
                _ => {
                    return Err(invalid(
                        "commit takes a Position, a {seq, sub} dict or a seq",
                    ))
                }
            },
        };
        py.detach(|| {
            self.with(|c| match pos {
                Some(p) => c.commit(p),
                None => c.commit_current(),
            })
        })
    }

    /// Move to `start` (as `Ledger.cursor`'s `start`).
    fn seek(&self, py: Python<'_>, start: &Bound<'_, PyAny>) -> PyResult<()> {
        let s = to_start(start)?;
        py.detach(|| self.with(|c| c.seek(s)))
    }

    /// List the live tree at the head as `resync` creates, then go on from the head.
    fn resync(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.with(|c| c.resync()))
    }

    /// Benchmark baseline: read and render up to `limit` records to JSON in
    /// Rust alone (the same reads and renderer, no Python objects); returns how
    /// many rendered (what `read()` would have handed to Python). The binding's overhead is `read()` against this, same cursor kind.
    fn _read_core(&self, py: Python<'_>, limit: i64) -> PyResult<u64> {
        let limit = count(limit, "limit")? as u64;
        py.detach(|| self.with(|c| fsfeed::render::read_rendered(c, limit)))
    }

    /// Events between the cursor's position and the head.
    fn lag(&self) -> PyResult<u64> {
        self.with(|c| c.lag())
    }

    /// The next position to read.
    #[getter]
    fn position(&self) -> PyResult<Position> {
        self.with(|c| Ok(Position(c.position())))
    }

    /// The cursor's name (`None`: ephemeral).
    #[getter]
    fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// Call `callback(batch)` on a thread of its own for every non-empty
    /// batch; returning commits the batch (named cursors). An exception stops
    /// the subscription and `stop()` / `join()` raise it. The cursor then
    /// belongs to the subscription.
    #[pyo3(signature = (callback, *, max = 1000, max_wait = 0.1))]
    fn subscribe(
        &self,
        py: Python<'_>,
        callback: Py<PyAny>,
        max: i64,
        max_wait: f64,
    ) -> PyResult<Subscription> {
        let max = count(max, "max")?;
        let wait = seconds(Some(max_wait), "max_wait")?.unwrap_or(SIGNAL_SLICE);
        if !callback.bind(py).is_callable() {
            return Err(invalid("callback must be callable"));
        }
        let core = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| invalid("this cursor already belongs to a subscription"))?;
        let failure: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
        let fail = failure.clone();
        // The subscription's thread renders with its own renderer of the
        // same format: renderers hold only settings.
        let renderer = self.format.renderer();
        let sub = py
            .detach(|| {
                core.subscribe(max, wait, move |b| {
                    Python::attach(|py| {
                        let r = to_batch(py, b, renderer.as_ref())
                            .and_then(|batch| callback.call1(py, (batch,)));
                        match r {
                            Ok(_) => Ok(()),
                            Err(e) => {
                                let msg = e.to_string();
                                *fail.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                Err(msg)
                            }
                        }
                    })
                })
            })
            .py_err()?;
        Ok(Subscription {
            inner: Mutex::new(Some(sub)),
            failure,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Cursor(name={:?}, format={:?})",
            self.name,
            self.renderer.name()
        )
    }
}

// ---------------------------------------------------------------- Subscription

/// A running callback subscription.
#[pyclass(module = "fsfeed._native", frozen)]
struct Subscription {
    inner: Mutex<Option<CoreSubscription>>,
    failure: Arc<Mutex<Option<PyErr>>>,
}

impl Subscription {
    fn end(&self, py: Python<'_>, stop: bool) -> PyResult<()> {
        let sub = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        let r = match sub {
            Some(s) => py.detach(|| if stop { s.stop() } else { s.join() }),
            None => Ok(()),
        };
        if let Some(e) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        r.py_err()
    }
}

#[pymethods]
impl Subscription {
    /// Stop promptly and wait for the thread; raises what stopped it, if anything did.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, true)
    }

    /// Wait until the subscription ends by itself (an error) and raise it.
    fn join(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, false)
    }

    /// True while the callback thread runs.
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.is_running())
            .unwrap_or(false)
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
        self.stop(py)?;
        Ok(false)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Joining needs the callback thread to get the GIL: release it.
        if let Some(s) = self
            .inner
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Python::attach(|py| py.detach(move || drop(s)));
        }
    }
}

// ---------------------------------------------------------------- History

/// A range of events as an Arrow stream (one pass).
#[pyclass(module = "fsfeed._native", frozen)]
struct History {
    inner: Mutex<Option<CoreHistory>>,
}

#[pymethods]
impl History {
    /// The Arrow PyCapsule interface: an `ArrowArrayStream` capsule.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema; // Only the native schema is offered.
        let h = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| invalid("this history was already read (it streams once)"))?;
        let stream = arrow_array::ffi_stream::FFI_ArrowArrayStream::new(Box::new(h));
        PyCapsule::new(py, stream, Some(c"arrow_array_stream".to_owned()))
    }

    /// All of it as a `pyarrow.Table`.
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("pyarrow")?.call_method1("table", (slf,))
    }

    /// All of it as a `pandas.DataFrame` (through pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_arrow(slf)?.call_method0("to_pandas")
    }
}

// ---------------------------------------------------------------- module

/// The native half of the `fsfeed` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    if ERRORS.get().is_none() {
        let _ = ERRORS.set(make_error_types(py)?);
    }
    let e = ERRORS.get().expect("set above");
    m.add("FsfeedError", e.base.bind(py))?;
    for ((_, class), (_, t)) in ERROR_CLASSES.iter().zip(&e.by_code) {
        m.add(*class, t.bind(py))?;
    }
    m.add("ERROR_CODES", fsfeed::error::ERROR_CODES.to_vec())?;
    m.add_class::<Ledger>()?;
    m.add_class::<Cursor>()?;
    m.add_class::<Batch>()?;
    m.add_class::<Position>()?;
    m.add_class::<Op>()?;
    m.add_class::<Subscription>()?;
    m.add_class::<History>()?;
    Ok(())
}
