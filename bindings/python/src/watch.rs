//! `fsfeed.watch`: a local tree as a source (the `fsfeed-watch` crate).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;

use crate::convert::*;
use crate::errors::*;
use crate::ledger::Ledger;

/// A running watcher of a local tree (`fsfeed.watch`). `stop()` ends it;
/// so does leaving a `with` block.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Watch {
    inner: Mutex<Option<fsfeed_watch::Watch>>,
    root: PathBuf,
    bucket: String,
}

fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    fsfeed_watch::seconds(v, what).py_err()
}

impl Watch {
    fn with<T>(&self, f: impl FnOnce(&mut fsfeed_watch::Watch) -> PyResult<T>) -> PyResult<T> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| invalid("the watch's lock is poisoned"))?;
        match g.as_mut() {
            Some(w) => f(w),
            None => Err(invalid("the watch is stopped")),
        }
    }
}

/// Watch `path` and append what happens to it to `ledger` (see the
/// `fsfeed_watch` crate docs). Returns once the tree is listed, watched and
/// diffed against the namespace.
#[pyfunction]
#[pyo3(signature = (path, ledger, *, bucket = None, volume = "", ignore = Vec::new(), rescan_interval = 30.0))]
pub(crate) fn watch(
    py: Python<'_>,
    path: PathBuf,
    ledger: &Ledger,
    bucket: Option<String>,
    volume: &str,
    ignore: Vec<String>,
    rescan_interval: f64,
) -> PyResult<Watch> {
    let options = fsfeed_watch::Options {
        volume: volume.to_string(),
        bucket,
        ignore,
        rescan_interval: seconds(rescan_interval, "rescan_interval")?,
        ..Default::default()
    };
    let l = ledger.inner.clone();
    let w = py
        .detach(|| fsfeed_watch::watch(&path, &l, options))
        .py_err()?;
    Ok(Watch {
        root: w.root().to_path_buf(),
        bucket: w.bucket().to_string(),
        inner: Mutex::new(Some(w)),
    })
}

#[pymethods]
impl Watch {
    /// The watched directory, resolved.
    #[getter]
    fn root(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// The bucket the ops go to.
    #[getter]
    fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Wait until everything done to the tree before the call is appended
    /// (Watchman's cookie). `IoError` after `timeout` seconds.
    #[pyo3(signature = (timeout = 60.0))]
    fn sync(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let t = seconds(timeout, "timeout")?;
        self.with(|w| py.detach(|| w.sync(t)).py_err())
    }

    /// Counters: events, ops, diff_ops, overflows, rescans, watches,
    /// watch_failures, unwatched, ignored, skipped, append_errors, last_seq.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.with(|w| Ok(w.counters()))?;
        to_python(py, &c)
    }

    /// Stop watching (what was read is appended first); returns the
    /// counters. A second call is an `InvalidArgument`.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = self
            .inner
            .lock()
            .map_err(|_| invalid("the watch's lock is poisoned"))?
            .take()
            .ok_or_else(|| invalid("the watch is stopped"))?;
        let c = py.detach(|| w.stop()).py_err()?;
        to_python(py, &c)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let w = self
            .inner
            .lock()
            .map_err(|_| invalid("the watch's lock is poisoned"))?
            .take();
        if let Some(w) = w {
            py.detach(|| w.stop()).py_err()?;
        }
        Ok(false)
    }
}
