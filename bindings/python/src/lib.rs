//! `fsfeed._native`: the Python face of the `fsfeed` crate.
//!
//! Thin by rule (`ARCHITECTURE.md`, "Front ends"): arguments are converted at the edge and
//! the core does the work. Records are rendered by the core's renderers and
//! handed over as dicts; filters, formats, gaps, expansion and errors are the
//! core's. What lives here is only what Python itself needs: the GIL released
//! around every wait, Ctrl-C checked between short waits, exceptions with the
//! core's stable codes, the Arrow C stream capsule, and the calls back into
//! Python for callbacks and asyncio wake-ups.

mod batch;
mod convert;
mod cursor;
mod errors;
mod history;
mod ledger;
mod op;
mod position;
mod changelog;
mod publisher;
mod pyser;
mod subscription;
mod watch;

use std::time::Duration;

use pyo3::prelude::*;

use crate::batch::*;
use crate::changelog::*;
use crate::cursor::*;
use crate::errors::*;
use crate::history::*;
use crate::ledger::*;
use crate::op::*;
use crate::position::*;
use crate::publisher::*;
use crate::subscription::*;
use crate::watch::*;

/// As the CLI: the writer allocates per op, and glibc malloc halves its rate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Longest stretch a blocking call waits with the GIL released before it
/// looks for a signal (Ctrl-C) again.
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(50);

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
    let mut codes: Vec<&str> = Vec::new();
    for c in fsfeed::error::ERROR_CODES
        .iter()
        .chain(fsfeed_delivery::error::ERROR_CODES)
        .chain(fsfeed_changelog::error::ERROR_CODES)
    {
        if !codes.contains(c) {
            codes.push(c);
        }
    }
    m.add("ERROR_CODES", codes)?;
    m.add_class::<Ledger>()?;
    m.add_class::<Cursor>()?;
    m.add_class::<Batch>()?;
    m.add_class::<Position>()?;
    m.add_class::<Op>()?;
    m.add_class::<Subscription>()?;
    m.add_class::<History>()?;
    m.add_class::<Publisher>()?;
    m.add_class::<ChangeLog>()?;
    m.add_class::<Watch>()?;
    m.add_function(wrap_pyfunction!(crate::watch::watch, m)?)?;
    Ok(())
}
