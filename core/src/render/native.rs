//! The native format: the stored event as fsfeed keeps it.
//!
//! JSON: the op's canonical JSON fields (see [`crate::op`]) plus `seq`, `sub`
//! and `path` (the key as of that seq) and, for a rename, `to_path`; an
//! expanded record adds `"expanded": {"action", "key", "from_key",
//! "object_id", "is_dir"}` (`is_dir` only for a directory's marker)
//! and a resync record `"resync": true`. An op that names no size or eTag
//! itself (ACL changes, times, attributes, a rename) in an object-store or
//! legacy bucket adds `object_size` and `object_etag`: what the live index
//! knew of the object then, each only when known. A rename there of a file
//! created and never committed adds `"unlisted": true` (it moves no S3
//! object), and `"replaced": true` when it replaced one that was in the S3
//! view (`Event.unlisted`, `Event.replaced`). A recursive delete, a
//! directory's rename or a bucket's delete there adds `below`: how many
//! live index entries it took (its own first, then every key below it,
//! directory markers and files never committed included), which an
//! expansion lists one by one (`Event.below`).
//! Bytes: the prost encoding of `fsfeed.v1.Event`.

use prost::Message;
use serde::Serialize;
use serde_json::Value;

use super::Renderer;
use crate::error::{Error, Result};
use crate::proto::Event;
use crate::read::Record;

/// The native renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Renderer for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn has_form(&self, _record: &Record) -> bool {
        true
    }

    fn render(&self, record: &Record) -> Option<Value> {
        Some(NativeOut::of(&record.event, record.position.sub, record).value())
    }

    /// The same object as `render`, from typed fields (no `Value` tree);
    /// keys in the op's field order, then `seq`, `sub`, `path`.
    fn render_with(&self, record: &Record, f: &mut dyn FnMut(&dyn erased_serde::Serialize)) {
        f(&NativeOut::of(&record.event, record.position.sub, record));
    }

    /// The same object again, serialised with its concrete type (no
    /// dynamic dispatch per field): the bulk writers' path.
    fn render_to(&self, record: &Record, out: &mut Vec<u8>) -> bool {
        let native = NativeOut::of(&record.event, record.position.sub, record);
        serde_json::to_writer(out, &native).expect("writing to a Vec");
        true
    }
}

/// The native JSON object, the one shape both `render` and `render_with`
/// (and [`to_json`]) give.
#[derive(Serialize)]
struct NativeOut<'a> {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    op: Option<crate::op::OpJson<'a>>,
    seq: u64,
    sub: u32,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expanded: Option<ExpandedOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync: Option<bool>,
    /// The object's last known size and eTag from the live index, on an op
    /// that names neither (`Event.size`, `Event.etag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    object_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_etag: Option<&'a str>,
    /// A rename of an object not in the S3 view (`Event.unlisted`), and
    /// whether it replaced one that was (`Event.replaced`).
    #[serde(skip_serializing_if = "Option::is_none")]
    unlisted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<bool>,
    /// How many live index entries a directory op took (`Event.below`).
    #[serde(skip_serializing_if = "Option::is_none")]
    below: Option<u64>,
}

#[derive(Serialize)]
struct ExpandedOut<'a> {
    action: crate::expand::Action,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
    /// A directory's marker (an explicit directory), not a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_dir: Option<bool>,
}

impl<'a> NativeOut<'a> {
    /// The object of `event` at sub-index `sub`, with the expansion and
    /// resync mark of `record` when there is one.
    fn of(event: &'a Event, sub: u32, record: impl Into<Option<&'a Record>>) -> NativeOut<'a> {
        let record = record.into();
        NativeOut {
            op: event.op.as_ref().map(crate::op::OpJson::from_op),
            seq: event.seq,
            sub,
            path: &event.path,
            to_path: (!event.to_path.is_empty()).then_some(event.to_path.as_str()),
            expanded: record
                .and_then(|r| r.expansion.as_ref())
                .map(|x| ExpandedOut {
                    action: x.action,
                    key: &x.key,
                    from_key: x.from_key.as_deref(),
                    object_id: x.object_id,
                    is_dir: x.is_dir.then_some(true),
                }),
            resync: record.is_some_and(|r| r.resync).then_some(true),
            object_size: event.size,
            object_etag: (!event.etag.is_empty()).then_some(event.etag.as_str()),
            unlisted: event.unlisted.then_some(true),
            replaced: event.replaced.then_some(true),
            below: event.below,
        }
    }

    fn value(&self) -> Value {
        serde_json::to_value(self).expect("native JSON is always serialisable")
    }
}

/// The native JSON object of an event.
pub fn to_json(event: &Event, sub: u32) -> Value {
    NativeOut::of(event, sub, None).value()
}

/// The protobuf bytes of an event.
pub fn to_proto(event: &Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decode protobuf bytes made by [`to_proto`].
pub fn from_proto(bytes: &[u8]) -> Result<Event> {
    Event::decode(bytes).map_err(|e| Error::InvalidArgument(format!("not an fsfeed event: {e}")))
}
