//! `Batch`: one read's records (dicts rendered by the core), gap and next position.

use fsfeed::render::Renderer;
use fsfeed::{Batch as CoreBatch, Position as CorePos};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::*;
use crate::errors::*;
use crate::position::*;

/// What one read returns.
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct Batch {
    pub(crate) records: Py<PyList>,
    pub(crate) gap: Option<Py<PyAny>>,
    pub(crate) next: CorePos,
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
pub(crate) fn to_batch(py: Python<'_>, b: &CoreBatch, renderer: &dyn Renderer) -> PyResult<Batch> {
    let list = PyList::empty(py);
    let mut failed = None;
    for r in &b.records {
        renderer.render_with(r, &mut |rec| match crate::pyser::to_python(py, rec) {
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
