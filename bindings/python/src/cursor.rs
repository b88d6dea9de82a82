//! `Cursor`: blocking, async and callback reads, commits and acks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fsfeed::notify::Notifier;
use fsfeed::render::Renderer;
use fsfeed::{Cursor as CoreCursor, Position as CorePos, Start};
use pyo3::prelude::*;

use crate::batch::*;
use crate::convert::*;
use crate::errors::*;
use crate::position::*;
use crate::subscription::*;
use crate::SIGNAL_SLICE;

/// A reader's place in a ledger.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Cursor {
    /// `None` once a subscription owns the core cursor.
    pub(crate) inner: Mutex<Option<CoreCursor>>,
    /// The core cursor's renderer (it outlives the cursor's move into a
    /// subscription).
    pub(crate) renderer: Arc<dyn Renderer>,
    pub(crate) name: Option<String>,
    pub(crate) notifier: Arc<Notifier>,
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
        py.detach(|| self.with(|c| c.read_rendered(limit)))
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
        // The subscription's thread renders with the cursor's renderer.
        let renderer = self.renderer.clone();
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
