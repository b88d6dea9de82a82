//! Windows: a run of whole seqs read from the uploader's cursor, its
//! records (filtered by the sources, optionally deduplicated per object),
//! the object body and the object key. Reading ([`read_batches`]) and
//! cutting and rendering ([`Windower`]) run on separate threads.

use std::collections::HashMap;
use std::time::Duration;

use fsfeed::{Cursor, Gap, Record};
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
    /// Its records (after dedup), rendered as JSON and joined by commas.
    pub json: Vec<u8>,
    /// Op time of each record (µs), in order: one per record.
    pub times: Vec<i64>,
    /// Events retention dropped before the window.
    pub gap: Option<Gap>,
}

impl Window {
    /// How many records `json` holds.
    pub fn count(&self) -> usize {
        self.times.len()
    }

    /// Nothing to write?
    pub fn is_empty(&self) -> bool {
        self.count() == 0 && self.gap.is_none()
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
            "count": self.count(),
            "dedup": cfg.dedup.name(),
            "gap": self.gap,
        });
        let mut out = Vec::with_capacity(self.json.len() + 512);
        serde_json::to_writer(&mut out, &head).expect("JSON");
        out.pop(); // the header's closing brace
        out.extend_from_slice(b",\"records\":[");
        out.extend_from_slice(&self.json);
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

/// Read batches from `cursor` up to `until` (raised to the first seq a gap
/// moves it to) and hand them to `f` until it returns false: the reading
/// half of an upload, on a thread of its own.
pub fn read_batches(
    cursor: &mut Cursor,
    mut until: u64,
    mut f: impl FnMut(Result<fsfeed::Batch>) -> bool,
) {
    loop {
        let b = match cursor.read(1000, Duration::ZERO) {
            Ok(b) => b,
            Err(e) => {
                f(Err(e.into()));
                return;
            }
        };
        if let Some(g) = &b.gap {
            until = until.max(g.actual);
        }
        let (empty, next) = (b.is_empty(), b.next.seq);
        if empty || !f(Ok(b)) || next > until {
            return;
        }
    }
}

/// The window being filled.
struct Open {
    first_seq: u64,
    gap: Option<Gap>,
    json: Vec<u8>,
    /// Where each record's JSON ends in `json` (after its comma).
    ends: Vec<usize>,
    times: Vec<i64>,
    /// Each record's object (per-object dedup only).
    objects: Vec<(String, String, String)>,
    last_record_seq: Option<u64>,
}

impl Open {
    fn new(first_seq: u64, gap: Option<Gap>) -> Open {
        Open {
            first_seq,
            gap,
            json: Vec::new(),
            ends: Vec::new(),
            times: Vec::new(),
            objects: Vec::new(),
            last_record_seq: None,
        }
    }
}

/// Cuts the records of a cursor (from [`read_batches`]) into windows of
/// whole seqs, from the cursor's position to `until`: at most
/// `max_events_per_object` records (a seq is never split) and about
/// `max_bytes_per_object` bytes each; the first one exactly up to `fixed`
/// when given (a window planned before a crash). Records are filtered by
/// the sources, rendered by `renderer` and, with `dedup = "per_object"`,
/// deduplicated per object when the window closes.
pub struct Windower<'a> {
    cfg: &'a Config,
    renderer: std::sync::Arc<dyn fsfeed::render::Renderer>,
    until: u64,
    fixed: Option<u64>,
    open: Open,
}

impl<'a> Windower<'a> {
    /// Windows from `first_seq` (the cursor's position) to `until`, with
    /// records rendered by `renderer` (the cursor's).
    pub fn new(
        cfg: &'a Config,
        renderer: std::sync::Arc<dyn fsfeed::render::Renderer>,
        first_seq: u64,
        until: u64,
        fixed: Option<u64>,
    ) -> Windower<'a> {
        Windower {
            cfg,
            renderer,
            until,
            fixed,
            open: Open::new(first_seq, None),
        }
    }

    /// Take one batch; `out` gets every window it closes.
    pub fn push(&mut self, batch: fsfeed::Batch, out: &mut impl FnMut(Window) -> bool) -> bool {
        if let Some(g) = batch.gap {
            self.until = self.until.max(g.actual);
            if self.open.ends.is_empty() {
                self.open.first_seq = self.open.first_seq.max(g.actual);
                self.open.gap = Some(g);
            } else {
                let last = g.expected.saturating_sub(1);
                if !self.close(last, Open::new(g.actual, Some(g)), out) {
                    return false;
                }
            }
        }
        for r in batch.records {
            let seq = r.position.seq;
            if seq > self.until {
                break;
            }
            if let Some(f) = self.fixed {
                if seq > f {
                    self.fixed = None;
                    if !self.close(f, Open::new(f + 1, None), out) {
                        return false;
                    }
                }
            } else {
                let o = &self.open;
                let full = o.ends.len() as u64 >= self.cfg.max_events_per_object
                    || o.json.len() as u64 >= self.cfg.max_bytes_per_object;
                if full
                    && o.last_record_seq.is_some_and(|s| s != seq)
                    && !self.close(seq - 1, Open::new(seq, None), out)
                {
                    return false;
                }
            }
            let Some(op) = &r.event.op else { continue };
            if !self.cfg.watches(&op.volume, r.bucket(), r.object_key()) {
                continue;
            }
            let o = &mut self.open;
            let mark = o.json.len();
            if self.renderer.render_to(&r, &mut o.json) {
                o.json.push(b',');
                o.ends.push(o.json.len());
                o.times.push(op.time_us);
                o.last_record_seq = Some(seq);
                if self.cfg.dedup == Dedup::PerObject {
                    o.objects.push(object_of(&r));
                }
            } else {
                o.json.truncate(mark);
            }
        }
        true
    }

    /// The last window (up to `fixed` or `until`), when there is one.
    pub fn finish(mut self, out: &mut impl FnMut(Window) -> bool) {
        let last = self.fixed.unwrap_or(self.until);
        if self.open.first_seq <= last || self.open.gap.is_some() {
            let last = last.max(self.open.first_seq.saturating_sub(1));
            self.close(last, Open::new(last + 1, None), out);
        }
    }

    fn close(&mut self, last_seq: u64, next: Open, out: &mut impl FnMut(Window) -> bool) -> bool {
        let mut o = std::mem::replace(&mut self.open, next);
        if self.cfg.dedup == Dedup::PerObject {
            let keep = last_of_each(&o.objects);
            let mut json = Vec::with_capacity(o.json.len());
            let mut times = Vec::with_capacity(keep.len());
            for i in keep {
                let from = if i == 0 { 0 } else { o.ends[i - 1] };
                json.extend_from_slice(&o.json[from..o.ends[i]]);
                times.push(o.times[i]);
            }
            o.json = json;
            o.times = times;
        }
        o.json.pop(); // the last comma
        out(Window {
            first_seq: o.first_seq,
            last_seq,
            json: o.json,
            times: o.times,
            gap: o.gap,
        })
    }
}

/// The indexes to keep for one entry per key, holding its last state, in
/// the order of those last states.
pub fn last_of_each<K: std::hash::Hash + Eq>(keys: &[K]) -> Vec<usize> {
    let mut last: HashMap<&K, usize> = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        last.insert(k, i);
    }
    (0..keys.len())
        .filter(|i| last.get(&keys[*i]) == Some(i))
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
            ..Default::default()
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
            let keys: Vec<_> = records.iter().map(|(r, _)| object_of(r)).collect();
            let got: Vec<usize> = last_of_each(&keys).into_iter().map(|i| records[i].1).collect();
            let want: Vec<usize> = model.into_iter().map(|(_, _, i)| i).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_create_then_a_delete_leaves_the_delete() {
        let r = [
            (rec(1, Op::commit("v", "b", "x", 1, "e")), 0),
            (rec(2, Op::commit("v", "b", "y", 1, "e")), 1),
            (rec(3, Op::delete("v", "b", "x", false)), 2),
        ];
        let keys: Vec<_> = r.iter().map(|(r, _)| object_of(r)).collect();
        let got: Vec<usize> = last_of_each(&keys).into_iter().map(|i| r[i].1).collect();
        assert_eq!(got, vec![1, 2]);
    }

    fn cfg(max_events: u64, dedup: &str) -> Config {
        Config::from_toml(&format!(
            "max_events_per_object = {max_events}\ndedup = '{dedup}'\n\
             [dest]\nendpoint='http://h:1'\nbucket='b'\naccess_key='a'\nsecret_key='s'\n"
        ))
        .unwrap()
    }

    /// Records `subs[i]` times at seq `first + i`, each op touching key k(seq).
    fn records(first: u64, subs: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        for (i, n) in subs.iter().enumerate() {
            let seq = first + i as u64;
            for sub in 0..*n as u32 {
                let mut r = rec(seq, Op::commit("v", "b", &format!("k{seq}"), 1, "e"));
                r.position.sub = sub;
                out.push(r);
            }
        }
        out
    }

    fn cut(
        cfg: &Config,
        first: u64,
        until: u64,
        fixed: Option<u64>,
        batches: Vec<fsfeed::Batch>,
    ) -> Vec<Window> {
        let renderer: std::sync::Arc<dyn fsfeed::render::Renderer> =
            std::sync::Arc::new(fsfeed::render::native::Native);
        let mut w = Windower::new(cfg, renderer, first, until, fixed);
        let mut got = Vec::new();
        let mut out = |x: Window| {
            got.push(x);
            true
        };
        for b in batches {
            assert!(w.push(b, &mut out));
        }
        w.finish(&mut out);
        got
    }

    fn batches(records: Vec<Record>, size: usize) -> Vec<fsfeed::Batch> {
        records
            .chunks(size)
            .map(|c| fsfeed::Batch {
                records: c.to_vec(),
                gap: None,
                next: fsfeed::Position::new(c.last().unwrap().position.seq + 1, 0),
            })
            .collect()
    }

    fn seqs_of(w: &Window) -> Vec<(u64, u64)> {
        let v: serde_json::Value =
            serde_json::from_slice(&[b"[", w.json.as_slice(), b"]"].concat()).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["seq"].as_u64().unwrap(), r["sub"].as_u64().unwrap()))
            .collect()
    }

    proptest! {
        /// However the records come in batches: the windows cover the seqs
        /// from the start to `until` end to end, never split a seq, close
        /// at the first seq that starts with `max` records held, and
        /// together hold every record once, in order.
        #[test]
        fn windows_cover_every_seq_once_and_never_split_one(
            subs in proptest::collection::vec(1u8..4, 1..80),
            max in 1u64..12,
            size in 1usize..30,
            cut_at in proptest::option::of(0usize..80),
        ) {
            let c = cfg(max, "none");
            let all = records(10, &subs);
            let until = 10 + subs.len() as u64 - 1;
            let fixed = cut_at.map(|i| 10 + (i % subs.len()) as u64);
            let ws = cut(&c, 10, until, fixed, batches(all.clone(), size));
            let mut next = 10;
            let mut seen = Vec::new();
            for (i, w) in ws.iter().enumerate() {
                prop_assert_eq!(w.first_seq, next);
                prop_assert!(w.last_seq >= w.first_seq);
                if i == 0 {
                    if let Some(f) = fixed {
                        prop_assert_eq!(w.last_seq, f);
                    }
                }
                let got = seqs_of(w);
                prop_assert_eq!(got.len(), w.count());
                prop_assert!(got.iter().all(|(s, _)| (w.first_seq..=w.last_seq).contains(s)));
                // Full only at a seq's start: before its last seq began, it held fewer than max.
                let last = got.last().map(|(s, _)| *s);
                let before = got.iter().filter(|(s, _)| Some(*s) != last).count() as u64;
                prop_assert!((i == 0 && fixed.is_some()) || before < max);
                seen.extend(got);
                next = w.last_seq + 1;
            }
            prop_assert_eq!(next, until + 1);
            let want: Vec<(u64, u64)> = all.iter().map(|r| (r.position.seq, r.position.sub as u64)).collect();
            prop_assert_eq!(seen, want);
        }
    }

    #[test]
    fn a_gap_closes_the_open_window_and_starts_the_next_at_the_first_seq_held() {
        let c = cfg(100, "none");
        let mut b = batches(records(1, &[1, 1, 1]), 10);
        let mut later = batches(records(8, &[1, 1]), 10);
        later[0].gap = Some(Gap {
            expected: 4,
            actual: 8,
        });
        b.extend(later);
        let ws = cut(&c, 1, 9, None, b);
        assert_eq!(ws.len(), 2);
        assert_eq!((ws[0].first_seq, ws[0].last_seq, ws[0].count()), (1, 3, 3));
        assert!(ws[0].gap.is_none());
        assert_eq!((ws[1].first_seq, ws[1].last_seq, ws[1].count()), (8, 9, 2));
        assert_eq!(ws[1].gap.map(|g| (g.expected, g.actual)), Some((4, 8)));
    }

    #[test]
    fn a_gap_past_until_still_covers_the_first_seq_held() {
        let c = cfg(100, "none");
        let mut b = batches(records(20, &[1]), 10);
        b[0].gap = Some(Gap {
            expected: 1,
            actual: 20,
        });
        let ws = cut(&c, 1, 5, None, b);
        assert_eq!(ws.len(), 1);
        assert_eq!(
            (ws[0].first_seq, ws[0].last_seq, ws[0].count()),
            (20, 20, 1)
        );
    }

    #[test]
    fn per_object_dedup_keeps_the_last_state_in_each_window() {
        let c = cfg(100, "per_object");
        let ops = [
            Op::commit("v", "b", "x", 1, "e"),
            Op::commit("v", "b", "y", 1, "e"),
            Op::delete("v", "b", "x", false),
        ];
        let all: Vec<Record> = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| rec(i as u64 + 1, op))
            .collect();
        let ws = cut(&c, 1, 3, None, batches(all, 2));
        assert_eq!(ws.len(), 1);
        assert_eq!(seqs_of(&ws[0]), vec![(2, 0), (3, 0)]);
        assert_eq!(ws[0].times.len(), 2);
    }
}
