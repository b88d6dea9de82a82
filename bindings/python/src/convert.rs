//! Conversions at the edge: Python values into the core's types and back.

use std::time::Duration;

use fsfeed::{Error, Filter, Op as CoreOp, Start};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::*;
use crate::op::*;
use crate::position::*;

pub(crate) fn to_json(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<serde_json::Value> {
    pythonize::depythonize(obj).map_err(|e| invalid(format!("{what}: {e}")))
}

pub(crate) fn to_python<'py>(
    py: Python<'py>,
    v: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| invalid(format!("conversion to Python: {e}")))
}

/// A non-negative count from a Python int (negative: `InvalidArgument`).
pub(crate) fn count(v: i64, what: &str) -> PyResult<usize> {
    if v < 1 {
        return Err(invalid(format!("{what} must be at least 1, not {v}")));
    }
    Ok(v as usize)
}

/// Seconds (float, `None` = forever) as a Duration.
pub(crate) fn seconds(v: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(invalid(format!(
            "{what} must be a number of seconds >= 0, not {s}"
        ))),
    }
}

/// Microseconds since the epoch of a timezone-aware `datetime`, if `obj` is one.
pub(crate) fn datetime_us(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let py = obj.py();
    let dt = py.import("datetime")?.getattr("datetime")?;
    if !obj.is_instance(&dt)? {
        return Ok(None);
    }
    if obj.getattr("tzinfo")?.is_none() {
        return Err(invalid(
            "a naive datetime is ambiguous: give it a tzinfo (datetime.timezone.utc)",
        ));
    }
    let s: f64 = obj.call_method0("timestamp")?.extract()?;
    Ok(Some((s * 1_000_000.0).round() as i64))
}

/// `"earliest" | "latest" | "committed" | "SEQ:SUB" | RFC 3339`, an int seq,
/// an aware `datetime`, a `Position` or a `{"seq", "sub"}` dict.
/// An optional start argument: absent or Python's None is `None`.
pub(crate) fn opt_start(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Start>> {
    match obj {
        Some(o) if !o.is_none() => to_start(o).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn to_start(obj: &Bound<'_, PyAny>) -> PyResult<Start> {
    if let Ok(p) = obj.extract::<PyRef<'_, Position>>() {
        return Ok(Start::Position(p.0));
    }
    if let Ok(s) = obj.extract::<String>() {
        return s.parse().py_err();
    }
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid("start cannot be a bool"));
    }
    if let Ok(n) = obj.extract::<i64>() {
        if n < 1 {
            return Err(invalid(format!("seq numbers start at 1, not {n}")));
        }
        return Ok(Start::Seq(n as u64));
    }
    if let Some(us) = datetime_us(obj)? {
        return Ok(Start::Time(us));
    }
    if obj.is_instance_of::<PyDict>() {
        return Ok(Start::Position(Position::from_dict(obj)?.0));
    }
    Err(invalid(format!(
        "start must be 'earliest', 'latest', 'committed', a seq, a datetime or a Position, not {}",
        obj.get_type().name()?
    )))
}

pub(crate) fn to_op(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<CoreOp> {
    if let Ok(op) = obj.extract::<PyRef<'_, Op>>() {
        return Ok(op.0.clone());
    }
    if !obj.is_instance_of::<PyDict>() {
        return Err(to_py(Error::InvalidOp {
            index,
            reason: format!(
                "an op is an fsfeed.Op or a dict, not {}",
                obj.get_type().name()?
            ),
        }));
    }
    let v = pythonize::depythonize::<serde_json::Value>(obj).map_err(|e| {
        to_py(Error::InvalidJson {
            index,
            reason: e.to_string(),
        })
    })?;
    CoreOp::from_json_value(v, index).py_err()
}

pub(crate) fn to_filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Filter> {
    match obj {
        None => Ok(Filter::all()),
        Some(o) if o.is_none() => Ok(Filter::all()),
        Some(o) => Filter::from_json_value(to_json(o, "filter")?).py_err(),
    }
}
