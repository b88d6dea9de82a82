//! Retention: which prefix of the log an append drops.
//!
//! The decision is a pure function of the ledger's own content and its
//! stored settings, made by the writer inside the append's write batch and
//! applied there with `delete_range` (invariant 3). Nothing here reads a
//! clock: two replicas fed the same ops with the same settings drop the same
//! events (invariant 4). The one input that is not ledger content is the
//! optional cursor guard (`keep_for_cursors`): it depends on where local
//! consumers are, so replicas only agree while it is off or their cursors agree.
//!
//! The new first seq is the largest of:
//! - `max_events`: `head - max_events + 1`;
//! - `max_bytes`: the first seq whose byte offset leaves at most `max_bytes`
//!   behind it (offsets are cumulative, so this is a search, not a scan);
//! - `max_age_us`: the first seq whose running-max op time is at least
//!   `max_time - max_age_us`. Op times may go backwards (clock skew between
//!   producers); using the running max keeps the dropped events a prefix.
//!
//! With `keep_for_cursors`, that candidate is lowered to the slowest
//! registered cursor's committed position, then raised again to the hard
//! limits (`hard_max_events`, `hard_max_bytes`). The newest event is always
//! kept, so `head_seq` stays readable.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::proto::Retention;

/// The writer's view of the log when it decides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub first: u64,
    pub head: u64,
    /// Bytes of every event ever appended (the offset after `head`).
    pub total_bytes: u64,
    /// Running max op time at `head`.
    pub max_time: i64,
    /// Offset of the event `first`, when known without a read.
    pub first_offset: Option<u64>,
    /// A lower bound of the running max op time at `first`.
    pub first_running_max: i64,
}

/// What the decision needs to look up.
pub(crate) trait Source {
    /// The byte offset of event `seq` (`first <= seq <= head`).
    fn offset_of(&mut self, seq: u64) -> Result<u64>;
    /// The first seq whose running-max op time is `>= time_us`.
    fn seq_for_time(&mut self, time_us: i64) -> Result<u64>;
    /// The smallest committed position (next seq to read) among named cursors.
    fn slowest_cursor(&mut self) -> Result<Option<u64>>;
}

/// The first seq whose offset is `>= target`, searching `lo..=head` (galloping
/// from `lo`, then bisecting): `head + 1` when none is.
fn first_with_offset_at_least(
    src: &mut impl Source,
    lo: u64,
    head: u64,
    target: u64,
) -> Result<u64> {
    if lo > head || src.offset_of(lo)? >= target {
        return Ok(lo);
    }
    // Invariant: offset(bad) < target; offset(good) >= target or good == head + 1.
    let mut bad = lo;
    let mut step = 1u64;
    let mut good = loop {
        let probe = bad.saturating_add(step);
        if probe > head {
            break head + 1;
        }
        if src.offset_of(probe)? >= target {
            break probe;
        }
        bad = probe;
        step = step.saturating_mul(2);
    };
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if src.offset_of(mid)? >= target {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(good)
}

fn bytes_boundary(src: &mut impl Source, v: &View, max_bytes: u64) -> Result<u64> {
    let first_offset = match v.first_offset {
        Some(o) => o,
        None => src.offset_of(v.first)?,
    };
    if v.total_bytes - first_offset <= max_bytes {
        return Ok(v.first);
    }
    first_with_offset_at_least(src, v.first, v.head, v.total_bytes - max_bytes)
}

fn count_boundary(v: &View, max_events: u64) -> u64 {
    (v.head + 1).saturating_sub(max_events).max(v.first)
}

/// The new first seq; `v.first` when nothing is dropped.
pub(crate) fn new_first(r: &Retention, v: &View, src: &mut impl Source) -> Result<u64> {
    Ok(decide(r, v, src)?.0)
}

/// The new first seq, and a lower bound of the running max op time there
/// (`v.first_running_max` unless the age limit says more): the next
/// decision skips its time lookup while the cutoff stays below it.
pub(crate) fn decide(r: &Retention, v: &View, src: &mut impl Source) -> Result<(u64, i64)> {
    if v.head == 0 || v.first > v.head {
        return Ok((v.first, v.first_running_max));
    }
    let mut target = v.first;
    if let Some(m) = r.max_events {
        target = target.max(count_boundary(v, m));
    }
    if let Some(b) = r.max_bytes {
        target = target.max(bytes_boundary(src, v, b)?);
    }
    // (the first seq whose running max reaches the cutoff, the cutoff)
    let mut by_age = None;
    if let Some(age) = r.max_age_us {
        let cutoff = v.max_time.saturating_sub(age.min(i64::MAX as u64) as i64);
        if cutoff > v.first_running_max {
            let seq = src.seq_for_time(cutoff)?;
            target = target.max(seq);
            by_age = Some((seq, cutoff));
        }
    }
    if r.keep_for_cursors && target > v.first {
        if let Some(slowest) = src.slowest_cursor()? {
            target = target.min(slowest.max(v.first));
        }
        if let Some(m) = r.hard_max_events {
            target = target.max(count_boundary(v, m));
        }
        if let Some(b) = r.hard_max_bytes {
            target = target.max(bytes_boundary(src, v, b)?);
        }
    }
    let target = target.min(v.head).max(v.first);
    // The running max never falls, so at any seq at or after the first one
    // that reaches the cutoff it is at least the cutoff.
    let floor = match by_age {
        Some((seq, cutoff)) if target >= seq => cutoff.max(v.first_running_max),
        _ => v.first_running_max,
    };
    Ok((target, floor))
}

impl Retention {
    /// No limits: keep everything.
    pub fn unlimited() -> Retention {
        Retention::default()
    }

    /// Keep at most `n` events.
    pub fn with_max_events(mut self, n: u64) -> Retention {
        self.max_events = Some(n);
        self
    }

    /// Keep events whose running-max op time is within `d` of the newest.
    pub fn with_max_age(mut self, d: Duration) -> Retention {
        self.max_age_us = Some(d.as_micros() as u64);
        self
    }

    /// Keep at most `b` bytes of events (keys + values).
    pub fn with_max_bytes(mut self, b: u64) -> Retention {
        self.max_bytes = Some(b);
        self
    }

    /// Hold the limits above back for the slowest registered cursor, up to
    /// the hard limits (`None`: no hard limit).
    pub fn keeping_for_cursors(
        mut self,
        hard_max_events: Option<u64>,
        hard_max_bytes: Option<u64>,
    ) -> Retention {
        self.keep_for_cursors = true;
        self.hard_max_events = hard_max_events;
        self.hard_max_bytes = hard_max_bytes;
        self
    }

    /// Retention settings as the bindings take them, a JSON object:
    /// `max_events`, `max_age` (seconds of op time), `max_bytes`,
    /// `keep_for_cursors`, `hard_max_events`, `hard_max_bytes` (camelCase
    /// accepted too); every key optional, unknown keys are an error.
    pub fn from_settings(v: serde_json::Value) -> Result<Retention> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            #[serde(default, alias = "maxEvents")]
            max_events: Option<u64>,
            #[serde(default, alias = "maxAge")]
            max_age: Option<f64>,
            #[serde(default, alias = "maxBytes")]
            max_bytes: Option<u64>,
            #[serde(default, alias = "keepForCursors")]
            keep_for_cursors: bool,
            #[serde(default, alias = "hardMaxEvents")]
            hard_max_events: Option<u64>,
            #[serde(default, alias = "hardMaxBytes")]
            hard_max_bytes: Option<u64>,
        }
        let s: Settings = serde_json::from_value(v)
            .map_err(|e| Error::InvalidArgument(format!("retention: {e}")))?;
        let max_age_us = match s.max_age {
            None => None,
            Some(a) if a.is_finite() && a > 0.0 => Some((a * 1e6).ceil() as u64),
            Some(a) => {
                return Err(Error::InvalidArgument(format!(
                    "retention: max_age is seconds > 0, not {a}"
                )))
            }
        };
        let r = Retention {
            max_events: s.max_events,
            max_age_us,
            max_bytes: s.max_bytes,
            keep_for_cursors: s.keep_for_cursors,
            hard_max_events: s.hard_max_events,
            hard_max_bytes: s.hard_max_bytes,
        };
        r.validate()?;
        Ok(r)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max_events", self.max_events),
            ("max_age_us", self.max_age_us),
            ("max_bytes", self.max_bytes),
            ("hard_max_events", self.hard_max_events),
            ("hard_max_bytes", self.hard_max_bytes),
        ] {
            if v == Some(0) {
                return Err(Error::InvalidArgument(format!(
                    "retention {name} must be at least 1"
                )));
            }
        }
        if !self.keep_for_cursors
            && (self.hard_max_events.is_some() || self.hard_max_bytes.is_some())
        {
            return Err(Error::InvalidArgument(
                "hard retention limits only apply with keep_for_cursors".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory log: (size, time) per seq from 1.
    struct Model {
        events: Vec<(u64, i64)>,
        cursor: Option<u64>,
    }

    impl Model {
        fn offset(&self, seq: u64) -> u64 {
            self.events[..(seq - 1) as usize].iter().map(|e| e.0).sum()
        }
        fn view(&self, first: u64) -> View {
            let head = self.events.len() as u64;
            View {
                first,
                head,
                total_bytes: self.offset(head + 1),
                max_time: self.events.iter().map(|e| e.1).max().unwrap_or(0),
                first_offset: Some(self.offset(first)),
                first_running_max: i64::MIN,
            }
        }
    }

    impl Source for Model {
        fn offset_of(&mut self, seq: u64) -> Result<u64> {
            Ok(self.offset(seq))
        }
        fn seq_for_time(&mut self, t: i64) -> Result<u64> {
            let mut max = i64::MIN;
            for (i, e) in self.events.iter().enumerate() {
                max = max.max(e.1);
                if max >= t {
                    return Ok(i as u64 + 1);
                }
            }
            Ok(self.events.len() as u64 + 1)
        }
        fn slowest_cursor(&mut self) -> Result<Option<u64>> {
            Ok(self.cursor)
        }
    }

    fn model(n: usize) -> Model {
        Model {
            events: (0..n).map(|i| (10, 1_000 + i as i64 * 100)).collect(),
            cursor: None,
        }
    }

    #[test]
    fn max_events_keeps_the_newest_n() {
        let mut m = model(10);
        let r = Retention::default().with_max_events(3);
        assert_eq!(new_first(&r, &m.view(1), &mut m).unwrap(), 8);
        assert_eq!(new_first(&r, &m.view(9), &mut m).unwrap(), 9);
    }

    #[test]
    fn max_bytes_finds_the_boundary_by_offsets() {
        for n in 1..40 {
            let mut m = model(n);
            for max in [1u64, 9, 10, 11, 25, 30, 1000] {
                let r = Retention::default().with_max_bytes(max);
                let got = new_first(&r, &m.view(1), &mut m).unwrap();
                let keep = ((max / 10) as usize).clamp(1, n);
                assert_eq!(got, (n - keep + 1) as u64, "n={n} max={max}");
            }
        }
    }

    #[test]
    fn max_age_uses_the_running_max_time() {
        let mut m = Model {
            events: vec![(1, 100), (1, 500), (1, 200), (1, 600), (1, 700)],
            cursor: None,
        };
        // cutoff = 700 - 150 = 550: running maxima 100, 500, 500, 600, 700.
        let r = Retention::default().with_max_age(std::time::Duration::from_micros(150));
        assert_eq!(new_first(&r, &m.view(1), &mut m).unwrap(), 4);
    }

    #[test]
    fn cursor_guard_holds_back_soft_limits_up_to_the_hard_limit() {
        let mut m = model(100);
        m.cursor = Some(20);
        let soft = Retention::default()
            .with_max_events(10)
            .keeping_for_cursors(None, None);
        assert_eq!(new_first(&soft, &m.view(1), &mut m).unwrap(), 20);
        let hard = Retention::default()
            .with_max_events(10)
            .keeping_for_cursors(Some(50), None);
        assert_eq!(new_first(&hard, &m.view(1), &mut m).unwrap(), 51);
        m.cursor = None;
        assert_eq!(new_first(&soft, &m.view(1), &mut m).unwrap(), 91);
    }

    #[test]
    fn an_age_decision_bounds_the_running_max_at_the_new_first() {
        let mut m = Model {
            events: vec![(1, 100), (1, 500), (1, 200), (1, 600), (1, 700)],
            cursor: None,
        };
        let r = Retention::default().with_max_age(std::time::Duration::from_micros(150));
        // cutoff 550, reached at seq 4 (running max 600): at least 550 there.
        assert_eq!(decide(&r, &m.view(1), &mut m).unwrap(), (4, 550));
        // Nothing to look up while the cutoff is below the bound.
        m.events.push((1, 690));
        let mut v = m.view(4);
        v.first_running_max = 550;
        assert_eq!(decide(&r, &v, &mut m).unwrap(), (4, 550));
        // A cursor holds the first back before the seq that reaches the
        // cutoff: the bound says nothing new.
        let guarded = r.keeping_for_cursors(None, None);
        m.cursor = Some(2);
        assert_eq!(decide(&guarded, &m.view(1), &mut m).unwrap(), (2, i64::MIN));
    }

    #[test]
    fn the_newest_event_is_always_kept() {
        let mut m = Model {
            events: vec![(5, 1), (500, 2)],
            cursor: None,
        };
        let r = Retention::default().with_max_bytes(10);
        assert_eq!(new_first(&r, &m.view(1), &mut m).unwrap(), 2);
    }
}
