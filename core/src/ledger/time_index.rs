//! The time index (CF `time`): which seq an op time starts at.
//!
//! An entry `(t, s)` says that the running maximum of op times over seqs
//! `1..=s` is `t` (keys sort by time, then seq; both grow together). Format 4
//! writes one entry every [`TIME_STRIDE`] seqs, at each seq that is a
//! multiple of it, with the value [`STRIDE_MARK`]: one memtable insert per
//! stride instead of one per event (the key per event cost 12-15% of a
//! batched append). Format 3 wrote an entry, with an empty value, at every
//! seq where the running maximum grew; such entries stay valid and are read
//! as they are, so the upgrade rewrites nothing.
//!
//! "The first seq whose running max reaches `t`" is then: the entries around
//! `t` bound a run of at most a stride of seqs (format 3 entries on both
//! sides name the seq itself), and the events of that run say which. The
//! writer deletes events only up to a stride entry it keeps (see
//! `writer::retain`), so the run's events are there whenever the entry
//! before it is.

use rocksdb::DB;

use super::keys::*;
use super::{decode_event, Error, Result};

/// Seqs between two format 4 time index entries.
pub(crate) const TIME_STRIDE: u64 = 64;

/// The value of a format 4 (stride) entry; format 3 entries are empty.
pub(crate) const STRIDE_MARK: &[u8] = &[1];

/// One decoded entry: time, seq, and whether it marks a growth of the
/// running maximum (format 3) rather than a stride.
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    growth: bool,
}

fn entry(k: &[u8], v: &[u8]) -> Result<Entry> {
    let (_, seq) = decode_time_key(k).ok_or_else(|| Error::Corrupt("time key".into()))?;
    Ok(Entry {
        seq,
        growth: v.is_empty(),
    })
}

/// The first seq at or below `head` whose running-max op time reaches
/// `time_us` (times below zero count as zero, as in the keys), from what is
/// stored. `None`: no stored seq up to `head` reaches it.
///
/// When the run that holds the answer starts below the events still
/// stored (dropped by retention), the answer is the run's first seq: a seq
/// in dropped history, which is what a reader is told as a gap.
pub(crate) fn first_seq_at(db: &DB, time_us: i64, head: u64) -> Result<Option<u64>> {
    let cf = db.cf_handle(CF_TIME).expect("cf time");
    let t = time_us.max(0);
    let probe = time_key(t, 0);
    let mut it = db.raw_iterator_cf(cf);
    it.seek(probe);
    let next = match (it.key(), it.value()) {
        (Some(k), Some(v)) => Some(entry(k, v)?),
        _ => None,
    };
    it.status()?;
    // No key is (t, 0): seqs start at 1, so this is the last entry below t.
    it.seek_for_prev(probe);
    let prev = match (it.key(), it.value()) {
        (Some(k), Some(v)) => Some(entry(k, v)?),
        _ => None,
    };
    it.status()?;
    drop(it);
    if let Some(n) = next {
        if n.growth && prev.is_none_or(|p| p.growth) {
            // Format 3 on both sides: `n` is where the maximum reached t.
            return Ok((n.seq <= head).then_some(n.seq));
        }
    }
    let lo = prev.map_or(1, |p| p.seq + 1);
    let hi = next.map_or(head, |n| n.seq.min(head));
    if lo > hi {
        return Ok(None);
    }
    let events = db.cf_handle(CF_EVENTS).expect("cf events");
    let mut it = db.raw_iterator_cf(events);
    let mut expect = lo;
    let mut found = None;
    super::blocks::visit(&mut it, lo, |seq, bytes| {
        if seq > hi || seq != expect {
            return Ok(false);
        }
        let time = decode_event(bytes)?.op.map_or(0, |o| o.time_us);
        if time.max(0) >= t {
            found = Some(seq);
            return Ok(false);
        }
        expect += 1;
        Ok(true)
    })?;
    if found.is_some() {
        return Ok(found);
    }
    if expect <= hi {
        return missing(expect, lo);
    }
    // No event of the run reaches t, so the run ends at `head` before the
    // entry after it.
    Ok(next.filter(|n| n.seq <= head).map(|n| n.seq))
}

/// Event `seq` of a run that starts at `lo` is not stored: at the start of
/// the run that is retention (the answer may be among the dropped events,
/// so it is the run's first seq); anywhere else, a hole.
fn missing(seq: u64, lo: u64) -> Result<Option<u64>> {
    if seq == lo {
        Ok(Some(lo))
    } else {
        Err(Error::Corrupt(format!("event {seq} is missing")))
    }
}
