//! `Subscription`: a callback cursor's thread.

use std::sync::{Arc, Mutex};

use fsfeed::cursor::Subscription as CoreSubscription;
use pyo3::prelude::*;

use crate::errors::*;

/// A running callback subscription.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Subscription {
    pub(crate) inner: Mutex<Option<CoreSubscription>>,
    pub(crate) failure: Arc<Mutex<Option<PyErr>>>,
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
