//! Exceptions: one class per core error code, raised with `code` and the error's fields.

use std::ffi::CString;
use std::sync::OnceLock;

use fsfeed::Error;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Python class names of the core's error codes (`fsfeed::error::ERROR_CODES`),
/// then the delivery crate's.
pub(crate) const ERROR_CLASSES: &[(&str, &str)] = &[
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
    ("path_gone", "PathGone"),
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
    ("disk_full", "DiskFull"),
    ("io", "IoError"),
    ("corrupt", "CorruptError"),
    ("unsupported_format", "UnsupportedFormat"),
    // The delivery crate's own codes (`fsfeed_delivery::error::ERROR_CODES`).
    ("invalid_config", "InvalidConfig"),
    ("publisher_failed", "PublisherFailed"),
    // The change log's own codes (`fsfeed_changelog::error::ERROR_CODES`).
    ("store_failed", "StoreFailed"),
    ("lease_lost", "LeaseLost"),
];

pub(crate) struct ErrorTypes {
    pub(crate) base: Py<PyType>,
    pub(crate) by_code: Vec<(&'static str, Py<PyType>)>,
}

pub(crate) static ERRORS: OnceLock<ErrorTypes> = OnceLock::new();

pub(crate) fn make_error_types(py: Python<'_>) -> PyResult<ErrorTypes> {
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

pub(crate) fn error_type<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyType> {
    let e = ERRORS.get().expect("module initialised");
    e.by_code
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, t)| t.bind(py).clone())
        .unwrap_or_else(|| e.base.bind(py).clone())
}

/// A core error as its Python exception, with `code` and the error's fields.
pub(crate) fn to_py(e: Error) -> PyErr {
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

/// An error of another fsfeed crate (delivery, change log) as the Python
/// exception of its `code`, with `code`.
pub(crate) fn coded(code: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let err = PyErr::from_type(error_type(py, code), message);
        let _ = err.value(py).setattr("code", code);
        err
    })
}

/// The tokio runtime a binding call that drives async crates runs on; a
/// runtime that cannot start is an `IoError`.
pub(crate) fn runtime() -> PyResult<tokio::runtime::Runtime> {
    fsfeed_delivery::runtime().map_err(|e| coded("io", format!("runtime: {e}")))
}

pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(Error::InvalidArgument(msg.into()))
}

pub(crate) trait OrPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPy<T> for fsfeed::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
