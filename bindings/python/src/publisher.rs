//! `Publisher`: push delivery (the `fsfeed-delivery` crate) from Python, with
//! a host callable as the leader gate. Thin: the config, the publisher loop,
//! the gates, retries and status are the delivery crate's; this file only
//! runs it on a thread of its own and calls the callable with the GIL.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

use fsfeed_delivery::{Config, Gate, Report, RunOptions, Supervisor};
use pyo3::prelude::*;
use tokio::sync::watch;

use crate::convert::to_python;
use crate::errors::*;
use crate::ledger::Ledger;

/// A delivery error as its Python exception (`InvalidConfig`,
/// `PublisherFailed`, `IoError`, or the ledger's own), with `code`.
pub(crate) fn delivery_err(e: fsfeed_delivery::Error) -> PyErr {
    match e {
        fsfeed_delivery::Error::Ledger(e) => to_py(e),
        other => coded(other.code(), other.to_string()),
    }
}

/// The first failure of a run, raised.
fn report(r: fsfeed_delivery::Result<Report>) -> PyResult<()> {
    let report = r.map_err(delivery_err)?;
    match report.outcomes.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(delivery_err(e)),
        None => Ok(()),
    }
}

struct Running {
    stop: watch::Sender<bool>,
    thread: JoinHandle<fsfeed_delivery::Result<Report>>,
}

/// The publishers of a config over one ledger.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Publisher {
    ledger: fsfeed::Ledger,
    config: Config,
    leader: Option<Py<PyAny>>,
    running: Mutex<Option<Running>>,
}

impl Publisher {
    fn supervisor(&self, py: Python<'_>) -> PyResult<Supervisor> {
        let Some(leader) = &self.leader else {
            return Supervisor::from_config(self.ledger.clone(), &self.config)
                .map_err(delivery_err);
        };
        let mut sup = Supervisor::new(self.ledger.clone());
        for p in &self.config.publishers {
            let f = leader.clone_ref(py);
            // An exception from the callable means "not leading".
            let gate = Gate::callback(move || {
                Python::attach(|py| {
                    f.call0(py)
                        .and_then(|r| r.bind(py).is_truthy())
                        .unwrap_or(false)
                })
            });
            sup.add(p.clone(), gate).map_err(delivery_err)?;
        }
        Ok(sup)
    }
}

#[pymethods]
impl Publisher {
    /// Publishers from a TOML config text (`delivery/README.md` lists every
    /// key) over `ledger`: a `Ledger` of this process, or a path, opened
    /// read-only beside the writer. `leader`, a callable returning a bool,
    /// gates every publisher instead of the config's `gate` keys: they send
    /// only while it returns true (an exception counts as false).
    #[new]
    #[pyo3(signature = (ledger, config, *, leader=None))]
    fn new(
        py: Python<'_>,
        ledger: &Bound<'_, PyAny>,
        config: &str,
        leader: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = Config::from_toml(config).map_err(delivery_err)?;
        if let Some(l) = &leader {
            if !l.is_callable() {
                return Err(invalid("leader must be a callable returning a bool"));
            }
        }
        let ledger = match ledger.cast::<Ledger>() {
            Ok(l) => l.get().inner.clone(),
            Err(_) => {
                let path: PathBuf = ledger
                    .extract()
                    .map_err(|_| invalid("ledger must be an fsfeed.Ledger or a path"))?;
                py.detach(|| fsfeed::Ledger::open_read_only(&path))
                    .py_err()?
            }
        };
        Ok(Publisher {
            ledger,
            config,
            leader: leader.map(Bound::unbind),
            running: Mutex::new(None),
        })
    }

    /// Run every publisher to the head, then return; raises the first failure
    /// (`PublisherFailed` for a rejection). The GIL is released meanwhile.
    fn run_once(&self, py: Python<'_>) -> PyResult<()> {
        let sup = self.supervisor(py)?;
        let rt = runtime()?;
        let (_tx, rx) = watch::channel(false);
        let opts = RunOptions {
            once: true,
            ..Default::default()
        };
        report(py.detach(|| rt.block_on(sup.run(rx, opts))))
    }

    /// Run every publisher on a thread of its own until `stop()`.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            return Err(invalid("the publisher is already running"));
        }
        let sup = self.supervisor(py)?;
        let rt = runtime()?;
        let (stop, rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("fsfeed-publisher".into())
            .spawn(move || rt.block_on(sup.run(rx, RunOptions::default())))
            .map_err(|e| delivery_err(fsfeed_delivery::Error::Io(format!("thread: {e}"))))?;
        *running = Some(Running { stop, thread });
        Ok(())
    }

    /// Finish the batches in flight, commit them, and stop; raises what
    /// failed, if anything did. Nothing to do when not running.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(r) = r else { return Ok(()) };
        let _ = r.stop.send(true);
        let joined = py.detach(|| r.thread.join());
        match joined {
            Ok(result) => report(result),
            Err(_) => Err(delivery_err(fsfeed_delivery::Error::Io(
                "the publisher thread panicked".into(),
            ))),
        }
    }

    /// True between `start()` and `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Every publisher's status, as `fsfeed publish status --json` prints it.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let all = py
            .detach(|| fsfeed_delivery::status::read_all(&self.ledger))
            .map_err(delivery_err)?;
        to_python(py, &all)
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

impl Drop for Publisher {
    fn drop(&mut self) {
        // Ask it to stop; joining here could wait on a callable that needs the GIL.
        if let Some(r) = self
            .running
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = r.stop.send(true);
        }
    }
}
