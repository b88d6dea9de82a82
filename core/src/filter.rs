//! Filters a cursor applies in the core, before any rendering.
//!
//! Every condition given must hold. Prefix and suffix match the raw key
//! (never an encoded form); a rename matches when either its source or its
//! target key matches, so a consumer of `a/` hears of objects renamed into or
//! out of `a/`. Ops without a key (volume and bucket ops) never match a
//! prefix or suffix filter.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event_name;
use crate::op::KINDS;
use crate::proto::Event;

/// Which events a cursor delivers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only these buckets (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
    /// Only keys starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only keys ending with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Only these op kinds, by canonical name (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Only events whose S3 event name matches one of these (`s3:ObjectCreated:*`,
    /// `ObjectRemoved:Delete`); ops without an S3 name never match (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

impl Filter {
    /// A filter that lets everything through.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Only `bucket` (adds to the set).
    pub fn bucket(mut self, bucket: &str) -> Filter {
        self.buckets.push(bucket.to_string());
        self
    }

    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: &str) -> Filter {
        self.prefix = Some(prefix.to_string());
        self
    }

    /// Only keys ending with `suffix`.
    pub fn suffix(mut self, suffix: &str) -> Filter {
        self.suffix = Some(suffix.to_string());
        self
    }

    /// Only op kind `kind` (adds to the set).
    pub fn kind(mut self, kind: &str) -> Filter {
        self.kinds.push(kind.to_string());
        self
    }

    /// Parse the JSON form `{"buckets":[..],"prefix":..,"suffix":..,"kinds":[..]}`.
    pub fn from_json_value(v: serde_json::Value) -> Result<Filter> {
        let f: Filter = serde_json::from_value(v)
            .map_err(|e| Error::InvalidArgument(format!("filter: {e}")))?;
        f.validate()?;
        Ok(f)
    }

    /// Only S3 event names matching `pattern` (adds to the set).
    pub fn event(mut self, pattern: &str) -> Filter {
        self.events.push(pattern.to_string());
        self
    }

    /// Check that every kind is known and every event pattern is well formed.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.events.iter().find(|p| {
            let p = p.strip_prefix("s3:").unwrap_or(p);
            // A `*` anywhere but at the end (found by the `filter` fuzz
            // target: slicing off the last byte split a multi-byte character).
            let head = p.strip_suffix('*').unwrap_or(p);
            p.is_empty() || head.contains('*')
        }) {
            return Err(Error::InvalidArgument(format!(
                "filter: event pattern {p:?} must be an S3 event name, optionally ending in `*`"
            )));
        }
        if let Some(p) = self
            .events
            .iter()
            .find(|p| !event_name::all().any(|n| event_name::matches(p, n)))
        {
            return Err(Error::InvalidArgument(format!(
                "filter: event pattern {p:?} matches no S3 event fsfeed writes ({})",
                event_name::all().collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(k) = self.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(Error::InvalidArgument(format!(
                "filter: unknown op kind {k:?} (one of {})",
                KINDS.join(", ")
            )));
        }
        Ok(())
    }

    /// True when the filter lets everything through.
    pub fn is_all(&self) -> bool {
        self == &Filter::default()
    }

    /// Does a record expanded from `event` pass? Prefix and suffix apply to
    /// the expanded key; event names to `ObjectRemoved:Delete` (remove) and
    /// `ObjectCreated:Put` (create).
    pub fn matches_expanded(&self, event: &Event, x: &crate::expand::Expansion) -> bool {
        let Some(op) = &event.op else { return false };
        if !self.buckets.is_empty() && !self.buckets.contains(&op.bucket) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == op.kind_name()) {
            return false;
        }
        let name = event_name::expanded(x.action);
        if !self.events.is_empty() && !self.events.iter().any(|p| event_name::matches(p, name)) {
            return false;
        }
        self.prefix.as_deref().is_none_or(|p| x.key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| x.key.ends_with(s))
    }

    /// Does `event` pass?
    pub fn matches(&self, event: &Event) -> bool {
        let Some(op) = &event.op else { return false };
        if !self.events.is_empty() {
            let Some(name) = event_name::of_op(op) else {
                return false;
            };
            if !self.events.iter().any(|p| event_name::matches(p, name)) {
                return false;
            }
        }
        self.matches_fields(&op.bucket, op.kind_name(), &event.path, &event.to_path)
    }

    /// Every condition but event names, on an event's fields: its bucket,
    /// op kind name, key and a rename's target key (empty for others). What
    /// [`Filter::matches`] checks after the event name, and what a read of
    /// history's columns checks on each row.
    pub(crate) fn matches_fields(&self, bucket: &str, kind: &str, key: &str, to_key: &str) -> bool {
        if !self.buckets.is_empty() && !self.buckets.iter().any(|b| b == bucket) {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return false;
        }
        if self.prefix.is_none() && self.suffix.is_none() {
            return true;
        }
        let key_ok = |k: &str| {
            !k.is_empty()
                && self.prefix.as_deref().is_none_or(|p| k.starts_with(p))
                && self.suffix.as_deref().is_none_or(|s| k.ends_with(s))
        };
        key_ok(key) || key_ok(to_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn ev(op: Op) -> Event {
        let to_path = match &op.kind {
            Some(crate::op::Kind::Rename(r)) => r.to_key.clone(),
            _ => String::new(),
        };
        Event {
            seq: 1,
            path: op.key.clone(),
            to_path,
            offset: 0,
            op: Some(op),
            ..Default::default()
        }
    }

    #[test]
    fn prefix_and_suffix_match_the_raw_key() {
        let f = Filter::all().prefix("a b/").suffix(".bin");
        assert!(f.matches(&ev(Op::commit("v", "b", "a b/x.bin", 1, "e"))));
        assert!(!f.matches(&ev(Op::commit("v", "b", "a+b/x.bin", 1, "e"))));
        assert!(!f.matches(&ev(Op::commit("v", "b", "a b/x.txt", 1, "e"))));
        assert!(!f.matches(&ev(Op::bucket_create("v", "b"))));
    }

    #[test]
    fn a_rename_matches_on_either_side() {
        let f = Filter::all().prefix("a/");
        assert!(f.matches(&ev(Op::rename("v", "b", "tmp/x", "a/x"))));
        assert!(f.matches(&ev(Op::rename("v", "b", "a/x", "tmp/x"))));
        assert!(!f.matches(&ev(Op::rename("v", "b", "tmp/x", "tmp/y"))));
    }

    #[test]
    fn event_patterns_must_match_a_known_event() {
        assert!(Filter::all().event("s3:ObjectCreated:*").validate().is_ok());
        assert!(Filter::all()
            .event("ObjectRemoved:Delete")
            .validate()
            .is_ok());
        assert!(Filter::all().event("*").validate().is_ok());
        let e = Filter::all().event("s3:Nope:*").validate().unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(Filter::all()
            .event("s3:ObjectCreated:Putt")
            .validate()
            .is_err());
    }

    #[test]
    fn s3_event_names() {
        let f = Filter::all().event("s3:ObjectCreated:*");
        assert!(f.matches(&ev(Op::commit("v", "b", "k", 1, "e"))));
        assert!(!f.matches(&ev(Op::delete("v", "b", "k", false))));
        assert!(!f.matches(&ev(Op::create_file("v", "b", "k"))));
        assert_eq!(
            Filter::all()
                .event("s3:*Created")
                .validate()
                .unwrap_err()
                .code(),
            "invalid_argument"
        );
    }

    #[test]
    fn buckets_and_kinds() {
        let f = Filter::all().bucket("b1").kind("delete");
        assert!(f.matches(&ev(Op::delete("v", "b1", "k", false))));
        assert!(!f.matches(&ev(Op::delete("v", "b2", "k", false))));
        assert!(!f.matches(&ev(Op::commit("v", "b1", "k", 1, "e"))));
        assert_eq!(
            Filter::all().kind("remove").validate().unwrap_err().code(),
            "invalid_argument"
        );
    }
}
