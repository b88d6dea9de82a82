//! `Position`: where a reader is, and the event id codec.

use fsfeed::{EventId, Position as CorePos};
use pyo3::prelude::*;

use crate::convert::*;
use crate::errors::*;

/// The next record to read: event `seq`, record `sub` of its expansion.
#[pyclass(module = "fsfeed._native", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Position(pub(crate) CorePos);

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
    pub(crate) fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Position> {
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
