//! The native format: the stored event as fsfeed keeps it.
//!
//! JSON: the op's canonical JSON fields (see [`crate::op`]) plus `seq`, `sub`
//! and `path` (the key as of that seq) and, for a rename, `to_path`; an
//! expanded record adds `"expanded": {"action", "key", "from_key", "object_id"}`
//! and a resync record `"resync": true`.
//! Bytes: the prost encoding of `fsfeed.v1.Event`.

use prost::Message;
use serde::Serialize;
use serde_json::Value;

use super::Renderer;
use crate::cursor::Record;
use crate::error::{Error, Result};
use crate::proto::Event;

/// The native renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Renderer for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn render(&self, record: &Record) -> Option<Value> {
        let mut v = to_json(&record.event, record.position.sub);
        if let Value::Object(m) = &mut v {
            if let Some(x) = &record.expansion {
                let mut e = serde_json::Map::new();
                e.insert(
                    "action".into(),
                    serde_json::to_value(x.action).expect("action"),
                );
                e.insert("key".into(), x.key.clone().into());
                if let Some(f) = &x.from_key {
                    e.insert("from_key".into(), f.clone().into());
                }
                if let Some(o) = x.object_id {
                    e.insert("object_id".into(), o.into());
                }
                m.insert("expanded".into(), Value::Object(e));
            }
            if record.resync {
                m.insert("resync".into(), true.into());
            }
        }
        Some(v)
    }

    /// The same object as `render`, from typed fields (no `Value` tree);
    /// keys in the op's field order, then `seq`, `sub`, `path`.
    fn render_with(&self, record: &Record, f: &mut dyn FnMut(&dyn erased_serde::Serialize)) {
        let Some(op) = &record.event.op else {
            if let Some(v) = self.render(record) {
                f(&v);
            }
            return;
        };
        let e = &record.event;
        let rec = NativeOut {
            op: crate::op::OpJson::from_op(op),
            seq: e.seq,
            sub: record.position.sub,
            path: &e.path,
            to_path: (!e.to_path.is_empty()).then_some(e.to_path.as_str()),
            expanded: record.expansion.as_ref().map(|x| ExpandedOut {
                action: x.action,
                key: &x.key,
                from_key: x.from_key.as_deref(),
                object_id: x.object_id,
            }),
            resync: record.resync.then_some(true),
        };
        f(&rec);
    }
}

#[derive(Serialize)]
struct NativeOut<'a> {
    #[serde(flatten)]
    op: crate::op::OpJson,
    seq: u64,
    sub: u32,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expanded: Option<ExpandedOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync: Option<bool>,
}

#[derive(Serialize)]
struct ExpandedOut<'a> {
    action: crate::expand::Action,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
}

/// The native JSON object of an event.
pub fn to_json(event: &Event, sub: u32) -> Value {
    let mut v = match &event.op {
        Some(op) => op.to_json_value(),
        None => Value::Object(Default::default()),
    };
    if let Value::Object(m) = &mut v {
        m.insert("seq".into(), event.seq.into());
        m.insert("sub".into(), sub.into());
        m.insert("path".into(), event.path.clone().into());
        if !event.to_path.is_empty() {
            m.insert("to_path".into(), event.to_path.clone().into());
        }
    }
    v
}

/// The protobuf bytes of an event.
pub fn to_proto(event: &Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decode protobuf bytes made by [`to_proto`].
pub fn from_proto(bytes: &[u8]) -> Result<Event> {
    Event::decode(bytes).map_err(|e| Error::InvalidArgument(format!("not an fsfeed event: {e}")))
}
