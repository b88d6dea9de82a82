//! `History`: events of a range as an Arrow C stream.

use std::sync::Mutex;

use fsfeed::history::History as CoreHistory;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::*;

/// A range of events as an Arrow stream (one pass).
#[pyclass(module = "fsfeed._native", frozen)]
pub(crate) struct History {
    pub(crate) inner: Mutex<Option<CoreHistory>>,
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
