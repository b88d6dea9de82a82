//! The Arrow columns a history batch is built in, one row at a time.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};

use super::rows::*;

pub(crate) struct Columns {
    pub(super) seq: UInt64Builder,
    pub(super) time: TimestampMicrosecondBuilder,
    pub(super) kind: StringBuilder,
    pub(super) volume: StringBuilder,
    pub(super) bucket: StringBuilder,
    pub(super) key: StringBuilder,
    pub(super) to_key: StringBuilder,
    pub(super) layout: StringBuilder,
    pub(super) is_dir: BooleanBuilder,
    pub(super) size: UInt64Builder,
    pub(super) object_id: UInt64Builder,
    pub(super) txid: UInt64Builder,
    pub(super) principal: StringBuilder,
    pub(super) mtime: TimestampMillisecondBuilder,
    pub(super) source: StringBuilder,
}

impl Columns {
    pub(crate) fn new(rows: usize) -> Columns {
        let s = || StringBuilder::with_capacity(rows, rows * 16);
        Columns {
            seq: UInt64Builder::with_capacity(rows),
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            kind: s(),
            volume: s(),
            bucket: s(),
            key: StringBuilder::with_capacity(rows, rows * 48),
            to_key: s(),
            layout: s(),
            is_dir: BooleanBuilder::with_capacity(rows),
            size: UInt64Builder::with_capacity(rows),
            object_id: UInt64Builder::with_capacity(rows),
            txid: UInt64Builder::with_capacity(rows),
            principal: s(),
            mtime: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            source: s(),
        }
    }

    pub(crate) fn push(&mut self, r: &Row<'_>) {
        self.seq.append_value(r.seq);
        self.time.append_value(r.time_us);
        self.kind.append_value(kind_name(r.kind));
        self.volume.append_value(r.volume);
        self.bucket.append_value(r.bucket);
        self.key.append_value(r.path);
        if r.kind == RENAME {
            self.to_key.append_value(r.to_path);
        } else {
            self.to_key.append_null();
        }
        self.layout.append_value(match r.layout {
            1 => "fso",
            2 => "legacy",
            _ => "obs",
        });
        self.is_dir
            .append_value(r.is_dir || r.kind == CREATE_DIRECTORY);
        self.size.append_option(r.size);
        self.object_id.append_option(r.object_id);
        self.txid.append_option(r.txid);
        if r.principal.is_empty() {
            self.principal.append_null();
        } else {
            self.principal.append_value(r.principal);
        }
        self.mtime.append_option(r.mtime);
        if r.source.is_empty() {
            self.source.append_null();
        } else {
            self.source.append_value(r.source);
        }
    }

    pub(crate) fn finish(mut self, schema: SchemaRef) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.volume.finish()),
            Arc::new(self.bucket.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.to_key.finish()),
            Arc::new(self.layout.finish()),
            Arc::new(self.is_dir.finish()),
            Arc::new(self.size.finish()),
            Arc::new(self.object_id.finish()),
            Arc::new(self.txid.finish()),
            Arc::new(self.principal.finish()),
            Arc::new(self.mtime.finish()),
            Arc::new(self.source.finish()),
        ];
        RecordBatch::try_new(schema, cols)
            .map_err(|e| Error::Corrupt(format!("history batch: {e}")))
    }
}
