//! `Op`: one namespace operation, from the builders or a dict.

use fsfeed::{Layout, Op as CoreOp};
use pyo3::prelude::*;

use crate::convert::*;
use crate::errors::*;

/// One namespace operation, built with the class methods or from a dict in
/// the canonical JSON form (`Op.from_dict`).
#[pyclass(module = "fsfeed._native", frozen)]
#[derive(Clone)]
pub(crate) struct Op(pub(crate) CoreOp);

#[pymethods]
impl Op {
    /// Create (open for writing) a file.
    #[staticmethod]
    fn create_file(volume: &str, bucket: &str, key: &str) -> Op {
        Op(CoreOp::create_file(volume, bucket, key))
    }

    /// Create a directory.
    #[staticmethod]
    fn create_directory(volume: &str, bucket: &str, key: &str) -> Op {
        Op(CoreOp::create_directory(volume, bucket, key))
    }

    /// Commit (close) an object: its final size and eTag.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, size, etag = ""))]
    fn commit(volume: &str, bucket: &str, key: &str, size: u64, etag: &str) -> Op {
        Op(CoreOp::commit(volume, bucket, key, size, etag))
    }

    /// Append to a file.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, new_block = false))]
    fn append(volume: &str, bucket: &str, key: &str, new_block: bool) -> Op {
        Op(CoreOp::append(volume, bucket, key, new_block))
    }

    /// Truncate a file to `size` bytes.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, size))]
    fn truncate(volume: &str, bucket: &str, key: &str, size: u64) -> Op {
        Op(CoreOp::truncate(volume, bucket, key, size))
    }

    /// Delete an object or (with `recursive`) a directory and all below it.
    #[staticmethod]
    #[pyo3(signature = (volume, bucket, key, *, recursive = false))]
    fn delete(volume: &str, bucket: &str, key: &str, recursive: bool) -> Op {
        Op(CoreOp::delete(volume, bucket, key, recursive))
    }

    /// Rename `key` to `to_key`.
    #[staticmethod]
    fn rename(volume: &str, bucket: &str, key: &str, to_key: &str) -> Op {
        Op(CoreOp::rename(volume, bucket, key, to_key))
    }

    /// Create a volume.
    #[staticmethod]
    fn volume_create(volume: &str) -> Op {
        Op(CoreOp::volume_create(volume))
    }

    /// Delete a volume.
    #[staticmethod]
    fn volume_delete(volume: &str) -> Op {
        Op(CoreOp::volume_delete(volume))
    }

    /// Create a bucket.
    #[staticmethod]
    fn bucket_create(volume: &str, bucket: &str) -> Op {
        Op(CoreOp::bucket_create(volume, bucket))
    }

    /// Delete a bucket.
    #[staticmethod]
    fn bucket_delete(volume: &str, bucket: &str) -> Op {
        Op(CoreOp::bucket_delete(volume, bucket))
    }

    /// The op of a dict in the canonical JSON form (validated).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Op> {
        to_op(d, 0).map(Op)
    }

    /// A copy at this time: microseconds since the epoch, or an aware datetime.
    fn at(&self, time: &Bound<'_, PyAny>) -> PyResult<Op> {
        let us = match datetime_us(time)? {
            Some(us) => us,
            None => time
                .extract::<i64>()
                .map_err(|_| invalid("time is microseconds since the epoch or a datetime"))?,
        };
        if us <= 0 {
            return Err(invalid(format!("time must be after the epoch, not {us}")));
        }
        Ok(Op(self.0.clone().at(us)))
    }

    /// A copy with the producer's transaction id.
    fn with_txid(&self, txid: u64) -> Op {
        Op(self.0.clone().with_txid(txid))
    }

    /// A copy in this bucket layout: `obs`, `fso` or `legacy`.
    fn with_layout(&self, layout: &str) -> PyResult<Op> {
        let l = Layout::parse(layout)
            .ok_or_else(|| invalid(format!("unknown layout {layout:?} (obs, fso, legacy)")))?;
        Ok(Op(self.0.clone().with_layout(l)))
    }

    /// A copy with who did it: principal, request id, source IP.
    #[pyo3(signature = (principal, request_id = "", source_ip = ""))]
    fn by(&self, principal: &str, request_id: &str, source_ip: &str) -> Op {
        Op(self.0.clone().by(principal, request_id, source_ip))
    }

    /// The op kind (`commit`, `rename`, ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind_name()
    }

    /// The canonical JSON form as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.0.to_json_value())
    }

    fn __repr__(&self) -> String {
        format!("Op({})", self.0.to_json_value())
    }
}
