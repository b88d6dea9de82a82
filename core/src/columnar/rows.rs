//! Row parsing: the fields of a stored event read straight from its protobuf
//! bytes, without building the prost message.

use crate::error::Result;
use crate::wire::corrupt;
pub(super) use crate::wire::{bytes, fields, varint};
use prost::encoding::WireType;

// Field numbers of `proto/fsfeed/v1/fsfeed.proto` that rows read.
pub(super) const CREATE_DIRECTORY: u32 = 21;
pub(super) const COMMIT: u32 = 22;
pub(super) const TRUNCATE: u32 = 24;
pub(super) const RENAME: u32 = 26;
pub(super) const SET_TIMES: u32 = 30;

/// The op kind of an `Op.kind` oneof field number.
pub(super) fn kind_name(field: u32) -> &'static str {
    match field {
        20 => "create_file",
        21 => "create_directory",
        22 => "commit",
        23 => "append",
        24 => "truncate",
        25 => "delete",
        26 => "rename",
        27 => "acl_add",
        28 => "acl_remove",
        29 => "acl_set",
        30 => "set_times",
        31 => "set_attr",
        32 => "volume_create",
        33 => "volume_delete",
        34 => "bucket_create",
        35 => "bucket_delete",
        _ => "unknown",
    }
}

/// The fields of one stored event that a row holds, borrowed from its bytes.
///
/// prost decodes into owned structs (a `String` per field); a history row
/// only copies each field once more into Arrow buffers. Walking the wire
/// format with prost's own primitives (`decode_key`, `decode_varint`,
/// `skip_field`) and borrowing the strings does the same work without the
/// allocations (`benches/history.rs`: 1.57x the rows per second of a prost
/// decode of the same events). A test checks it against prost's decoding.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Row<'a> {
    pub(super) seq: u64,
    pub(super) time_us: i64,
    /// Field number of the op's kind (0: none).
    pub(super) kind: u32,
    pub(super) volume: &'a str,
    pub(super) bucket: &'a str,
    /// The event's path: stored, or else the op's key (format 7 stores
    /// none when it is the key; see `ledger::decode_event`).
    pub(super) path: &'a str,
    pub(super) to_path: &'a str,
    /// The op's `key`.
    pub(super) key: &'a str,
    pub(super) layout: i32,
    pub(super) is_dir: bool,
    pub(super) size: Option<u64>,
    pub(super) object_id: Option<u64>,
    pub(super) txid: Option<u64>,
    pub(super) principal: &'a str,
    /// A commit's or a `set_times`' modification time (milliseconds).
    pub(super) mtime: Option<i64>,
    /// `Op.source`: what produced the op, when the producer says.
    pub(super) source: &'a str,
}

pub(super) fn text<'a>(buf: &mut &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes(buf)?).map_err(|_| corrupt("invalid UTF-8 in a string"))
}

impl<'a> Row<'a> {
    /// The row of a stored event's bytes; `None` for an event without an op.
    pub(crate) fn parse(event: &'a [u8]) -> Result<Option<Row<'a>>> {
        let mut r = Row::default();
        let mut has_op = false;
        fields(event, |tag, wt, buf| {
            match (tag, wt) {
                (1, WireType::Varint) => r.seq = varint(buf)?,
                (2, WireType::LengthDelimited) => {
                    has_op = true;
                    r.op(bytes(buf)?)?;
                }
                (3, WireType::LengthDelimited) => r.path = text(buf)?,
                (4, WireType::LengthDelimited) => r.to_path = text(buf)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if r.path.is_empty() {
            r.path = r.key;
        }
        Ok(has_op.then_some(r))
    }

    pub(super) fn op(&mut self, op: &'a [u8]) -> Result<()> {
        fields(op, |tag, wt, buf| {
            match (tag, wt) {
                (1, WireType::Varint) => self.txid = Some(varint(buf)?),
                (2, WireType::Varint) => self.time_us = varint(buf)? as i64,
                (3, WireType::LengthDelimited) => self.volume = text(buf)?,
                (4, WireType::LengthDelimited) => self.bucket = text(buf)?,
                (5, WireType::LengthDelimited) => self.key = text(buf)?,
                (6, WireType::Varint) => self.layout = varint(buf)? as i32,
                (9, WireType::Varint) => self.object_id = Some(varint(buf)?),
                (10, WireType::Varint) => self.is_dir = varint(buf)? != 0,
                (11, WireType::LengthDelimited) => self.principal = text(buf)?,
                (14, WireType::LengthDelimited) => self.source = text(buf)?,
                (20..=35, WireType::LengthDelimited) => {
                    // A oneof: the last one wins, as in prost.
                    self.kind = tag;
                    self.size = None;
                    self.mtime = None;
                    let body = bytes(buf)?;
                    if tag == COMMIT || tag == TRUNCATE || tag == SET_TIMES {
                        let mut size = if tag == TRUNCATE { Some(0) } else { None };
                        let mut mtime = None;
                        // Commit: size 1, mtime 6; truncate: size 1;
                        // set_times: mtime 1.
                        fields(body, |t, w, b| {
                            match (tag, t, w) {
                                (SET_TIMES, 1, WireType::Varint)
                                | (COMMIT, 6, WireType::Varint) => mtime = Some(varint(b)? as i64),
                                (COMMIT | TRUNCATE, 1, WireType::Varint) => size = Some(varint(b)?),
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?;
                        self.size = size;
                        self.mtime = mtime;
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })
    }
}
