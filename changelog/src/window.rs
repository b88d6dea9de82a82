//! Windows: a run of whole seqs read from the uploader's cursor, its
//! records (filtered by the sources, optionally deduplicated per object),
//! the object body and the object key.

use std::collections::HashMap;
use std::time::Duration;

use fsfeed::{Cursor, Gap, Position, Record, Start};
use serde_json::json;

use crate::config::{Config, Dedup};
use crate::error::Result;

/// Version of the object body.
pub const BODY_VERSION: u32 = 1;

/// One window of seqs.
#[derive(Debug, Clone)]
pub struct Window {
    /// First seq of the window.
    pub first_seq: u64,
    /// Last seq of the window.
    pub last_seq: u64,
    /// Its records, in order (after dedup), rendered as JSON.
    pub records: Vec<Vec<u8>>,
    /// Op time of each record (µs), parallel to `records`.
    pub times: Vec<i64>,
    /// Events retention dropped before the window.
    pub gap: Option<Gap>,
}

impl Window {
    /// Nothing to write?
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.gap.is_none()
    }

    /// The object body (JSON, before gzip): the header fields, then the
    /// records as rendered.
    pub fn body(&self, cfg: &Config) -> Vec<u8> {
        let t = |us: Option<&i64>| us.map(|u| fsfeed::render::s3::rfc3339_ms(*u));
        let head = json!({
            "version": BODY_VERSION,
            "job": cfg.job,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_time": t(self.times.iter().min()),
            "last_time": t(self.times.iter().max()),
            "count": self.records.len(),
            "dedup": cfg.dedup.name(),
            "gap": self.gap,
        });
        let size: usize = self.records.iter().map(|r| r.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 512);
        serde_json::to_writer(&mut out, &head).expect("JSON");
        out.pop(); // the header's closing brace
        out.extend_from_slice(b",\"records\":[");
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(r);
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The object key: `PREFIX/YYYY/MM/DD/HHMMSS-FIRST-LAST.json.gz`, by the
    /// op time of the window's first record (`fallback_us` when it has none),
    /// so that a retried upload of the same window overwrites the same key
    /// and listing gives time order.
    pub fn key(&self, cfg: &Config, fallback_us: i64) -> String {
        let us = self.times.first().copied().unwrap_or(fallback_us);
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let name = format!(
            "{:04}/{:02}/{:02}/{:02}{:02}{:02}-{:020}-{:020}.json.gz",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.first_seq,
            self.last_seq
        );
        if cfg.dest.prefix.is_empty() {
            name
        } else {
            format!("{}/{name}", cfg.dest.prefix)
        }
    }
}

/// The (bucket, key, version) a record is about: what per-object dedup keys on.
fn object_of(r: &Record) -> (String, String, String) {
    let version = match (
        &r.expansion,
        r.event.op.as_ref().and_then(|o| o.kind.as_ref()),
    ) {
        (None, Some(fsfeed::proto::op::Kind::Commit(c))) => c.version_id.clone(),
        _ => String::new(),
    };
    (r.bucket().to_string(), r.object_key().to_string(), version)
}

/// Read the next window from `cursor` (positioned at the window's first
/// seq): whole seqs up to `until`, at most `max_events_per_object` records
/// (a seq is never split) and about `max_bytes_per_object` bytes; with
/// `fixed_last`, exactly up to that seq (a window planned before a crash).
/// `None` when the cursor is at `until`. The cursor ends after the window.
pub fn read_window(
    cursor: &mut Cursor,
    cfg: &Config,
    until: u64,
    fixed_last: Option<u64>,
) -> Result<Option<Window>> {
    let start = cursor.position();
    if start.seq > until && fixed_last.is_none() {
        return Ok(None);
    }
    let until = fixed_last.unwrap_or(until);
    let renderer = cursor.renderer().clone();
    let mut kept: Vec<(Record, Vec<u8>)> = Vec::new();
    let mut bytes = 0u64;
    let mut gap = None;
    let mut first_seq = start.seq;
    let mut last_seq = until;
    'outer: loop {
        let b = cursor.read(1000, Duration::ZERO)?;
        if let Some(g) = b.gap {
            first_seq = first_seq.max(g.actual);
            gap = Some(g);
        }
        if b.records.is_empty() {
            break;
        }
        for r in b.records {
            let seq = r.position.seq;
            if seq > until {
                break 'outer;
            }
            let full = fixed_last.is_none()
                && (kept.len() as u64 >= cfg.max_events_per_object
                    || bytes >= cfg.max_bytes_per_object);
            if full && kept.last().is_some_and(|(k, _)| k.position.seq != seq) {
                last_seq = seq - 1;
                break 'outer;
            }
            let Some(op) = &r.event.op else { continue };
            if !cfg.watches(&op.volume, r.bucket(), r.object_key()) {
                continue;
            }
            let mut buf = Vec::with_capacity(400);
            if renderer.render_to(&r, &mut buf) {
                bytes += buf.len() as u64;
                kept.push((r, buf));
            }
        }
    }
    if last_seq < first_seq {
        last_seq = first_seq;
    }
    cursor.seek(Start::Position(Position::new(last_seq + 1, 0)))?;
    let kept = match cfg.dedup {
        Dedup::None => kept,
        Dedup::PerObject => dedup(kept),
    };
    let times = kept
        .iter()
        .map(|(r, _)| r.event.op.as_ref().map(|o| o.time_us).unwrap_or(0))
        .collect();
    Ok(Some(Window {
        first_seq,
        last_seq,
        records: kept.into_iter().map(|(_, v)| v).collect(),
        times,
        gap,
    }))
}

/// One entry per (bucket, key, version), holding its last state, in the
/// order of those last states.
pub fn dedup<T>(records: Vec<(Record, T)>) -> Vec<(Record, T)> {
    let mut last: HashMap<(String, String, String), usize> = HashMap::new();
    for (i, (r, _)) in records.iter().enumerate() {
        last.insert(object_of(r), i);
    }
    records
        .into_iter()
        .enumerate()
        .filter(|(i, (r, _))| last.get(&object_of(r)) == Some(i))
        .map(|(_, x)| x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fsfeed::{Event, Op};
    use proptest::prelude::*;

    fn rec(seq: u64, op: Op) -> Record {
        Record::plain(Event {
            seq,
            path: op.key.clone(),
            op: Some(op),
            to_path: String::new(),
            offset: 0,
        })
    }

    proptest! {
        /// Against a model: the last state of every (bucket, key) in the
        /// window, in the order those last states came.
        #[test]
        fn per_object_dedup_keeps_each_objects_last_state(ops in proptest::collection::vec((0u8..3, 0u8..4, any::<bool>()), 0..60)) {
            let records: Vec<(Record, usize)> = ops
                .iter()
                .enumerate()
                .map(|(i, (b, k, del))| {
                    let (bucket, key) = (format!("b{b}"), format!("k{k}"));
                    let op = if *del { Op::delete("v", &bucket, &key, false) } else { Op::commit("v", &bucket, &key, i as u64, "e") };
                    (rec(i as u64 + 1, op), i)
                })
                .collect();
            let mut model: Vec<(String, String, usize)> = Vec::new();
            for (i, (b, k, _)) in ops.iter().enumerate() {
                let (bucket, key) = (format!("b{b}"), format!("k{k}"));
                model.retain(|(mb, mk, _)| !(mb == &bucket && mk == &key));
                model.push((bucket, key, i));
            }
            let got: Vec<usize> = dedup(records).into_iter().map(|(_, i)| i).collect();
            let want: Vec<usize> = model.into_iter().map(|(_, _, i)| i).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_create_then_a_delete_leaves_the_delete() {
        let r = vec![
            (rec(1, Op::commit("v", "b", "x", 1, "e")), 0),
            (rec(2, Op::commit("v", "b", "y", 1, "e")), 1),
            (rec(3, Op::delete("v", "b", "x", false)), 2),
        ];
        let got: Vec<usize> = dedup(r).into_iter().map(|(_, i)| i).collect();
        assert_eq!(got, vec![1, 2]);
    }
}
