//! `ChangeLog`: the change log for backup (the `fsfeed-changelog` crate)
//! from Python. Thin: windows, dedup, the lease, uploads and fetch are the
//! crate's; this file converts arguments and releases the GIL.

use std::path::PathBuf;

use fsfeed_changelog::{fetch, uploader, Config, Uploader};
use pyo3::prelude::*;

use crate::convert::to_python;
use crate::errors::*;
use crate::ledger::Ledger;

/// A change-log error as its Python exception (`InvalidConfig`,
/// `StoreFailed`, `LeaseLost`, `IoError`, `CorruptError`, or the ledger's
/// own), with `code`.
pub(crate) fn changelog_err(e: fsfeed_changelog::Error) -> PyErr {
    match e {
        fsfeed_changelog::Error::Ledger(e) => to_py(e),
        other => coded(other.code(), other.to_string()),
    }
}

/// An RFC 3339 string or a datetime, as Unix µs.
fn time_arg(v: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    let text: String = if let Ok(s) = v.extract::<String>() {
        s
    } else {
        v.call_method0("isoformat")
            .and_then(|s| s.extract())
            .map_err(|_| invalid(format!("{name} must be an RFC 3339 string or a datetime")))?
    };
    fsfeed::op::parse_time_us(&text).ok_or_else(|| {
        invalid(format!(
            "{name} {text:?} is not an RFC 3339 time with a zone (a naive datetime has none)"
        ))
    })
}

/// A change log: its config, and the ledger it uploads (`None`: fetch only).
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct ChangeLog {
    config: Config,
    ledger: Option<fsfeed::Ledger>,
}

impl ChangeLog {
    /// The ledger `call` needs, or the error saying it was not given.
    fn ledger_for(&self, call: &str) -> PyResult<fsfeed::Ledger> {
        self.ledger.clone().ok_or_else(|| {
            invalid(format!(
                "{call} needs a ledger: ChangeLog(config, ledger=...)"
            ))
        })
    }
}

#[pymethods]
impl ChangeLog {
    /// A change log from a TOML config: a path to a file, or the text
    /// itself (`changelog/README.md` lists every key). `ledger` (an
    /// `fsfeed.Ledger` of this process, or a path opened read-only) is
    /// needed to upload and for `status()`; `fetch()` needs none.
    #[new]
    #[pyo3(signature = (config, *, ledger=None))]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        ledger: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = if let Ok(p) = config.extract::<PathBuf>() {
            if p.is_file() {
                Config::from_file(&p)
            } else {
                let text: String = config
                    .extract()
                    .map_err(|_| invalid("config must be a path or the TOML text"))?;
                Config::from_toml(&text)
            }
        } else {
            return Err(invalid("config must be a path or the TOML text"));
        }
        .map_err(changelog_err)?;
        let ledger = match ledger {
            None => None,
            Some(l) => Some(match l.cast::<Ledger>() {
                Ok(l) => l.get().inner.clone(),
                Err(_) => {
                    let path: PathBuf = l
                        .extract()
                        .map_err(|_| invalid("ledger must be an fsfeed.Ledger or a path"))?;
                    py.detach(|| fsfeed::Ledger::open_read_only(&path))
                        .py_err()?
                }
            }),
        };
        Ok(ChangeLog { config, ledger })
    }

    /// Upload everything from the committed position to the head as it
    /// stood, in windows, then give the lease up; returns `{"objects",
    /// "events", "not_leader"}`. The GIL is released meanwhile.
    fn run_once<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger_for("run_once")?;
        let cfg = self.config.clone();
        let rt = runtime()?;
        let r = py
            .detach(|| {
                rt.block_on(async { Uploader::new(ledger, cfg)?.run_once_and_release().await })
            })
            .map_err(changelog_err)?;
        to_python(py, &r)
    }

    /// The uploader's counters, committed seq, lag and the lease object, as
    /// `fsfeed changelog status --json` prints them.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ledger = self.ledger_for("status")?;
        let cfg = self.config.clone();
        let rt = runtime()?;
        let v = py
            .detach(|| rt.block_on(uploader::status_report(&ledger, &cfg, true)))
            .map_err(changelog_err)?;
        to_python(py, &v)
    }

    /// Every record with op time in `[start, end)` (RFC 3339 strings or
    /// aware datetimes), read back from the bucket; with `net=True` one net
    /// change per object (`NEW`, `MODIFY`, `DELETE`, `RENAME`).
    #[pyo3(signature = (start, end, *, net=false))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        end: &Bound<'py, PyAny>,
        net: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (from, to) = (time_arg(start, "start")?, time_arg(end, "end")?);
        let cfg = self.config.clone();
        let rt = runtime()?;
        let rows = py
            .detach(|| rt.block_on(fetch::rows(&cfg, from, to, net)))
            .map_err(changelog_err)?;
        to_python(py, &rows)
    }

    /// The config's `[dest]` table without its keys: `endpoint`, `region`,
    /// `bucket`, `prefix`, `path_style`, `verify_tls` (what a backup tool
    /// needs to reach the same store).
    #[getter]
    fn dest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = &self.config.dest;
        to_python(
            py,
            &serde_json::json!({
                "endpoint": d.endpoint, "region": d.region, "bucket": d.bucket,
                "prefix": d.prefix, "path_style": d.path_style, "verify_tls": d.verify_tls,
            }),
        )
    }

    /// The `[dest]` keys (`access_key`, `secret_key`, with `env:NAME`
    /// resolved), for a tool that reads and writes the same store. Secrets:
    /// keep them out of logs.
    fn dest_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = &self.config.dest;
        to_python(
            py,
            &serde_json::json!({"access_key": d.access_key.expose(), "secret_key": d.secret_key.expose()}),
        )
    }
}
