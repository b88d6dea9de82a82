//! Events stored in blocks (format 6): one RocksDB value holds a run of
//! consecutive events, so the memtable insert, the skiplist search and the
//! per-entry overhead of an append are paid once per run instead of once
//! per event.
//!
//! Seqs fall into fixed runs of [`RUN`] (`1..=32`, `33..=64`, ...). The
//! value under key `k` (a seq, u64 big-endian, as before) is either
//!
//! - a **block**: the byte [`MARK`] (`0`) and then records, each a varint
//!   length and that many bytes of a prost `Event`, for seqs `k`, `k + 1`,
//!   ... up to at most the end of `k`'s run; or
//! - a **single event** (formats up to 5): a prost `Event` for seq `k`. A
//!   protobuf message never starts with byte 0 (field number 0 does not
//!   exist), so the first byte tells the two apart.
//!
//! A writer puts a block when a group commit starts a run, and merges its
//! later records into it when a later group continues the run: the column
//! family's merge operator ([`full_merge`], [`partial_merge`]) concatenates.
//! What a block holds therefore depends on seqs alone, not on how appends
//! were grouped, so replicas fed the same ops store the same values (the
//! `determinism` tests compare them across batchings). A block's key is
//! the run's first seq, except for the first block written after an
//! upgrade from format 5 mid-run, which starts at the seq after the
//! upgraded ledger's head; readers never assume alignment, they look up
//! the value at or before a seq.
//!
//! Retention deletes whole values only: the range delete stops at the
//! start of the run that holds the first seq kept (`writer::retain`).

use rocksdb::{DBRawIteratorWithThreadMode, MergeOperands, DB};

use super::keys::{decode_seq, seq_key};
use crate::error::{Error, Result};

/// Seqs per run: the most events one value holds. Small enough that
/// reading one event decodes little, large enough that a batched append
/// writes one value per 32 events.
pub(crate) const RUN: u64 = 32;

/// First byte of a block value.
pub(crate) const MARK: u8 = 0;

/// The first seq of the run holding `seq` (`seq >= 1`).
pub(crate) fn run_start(seq: u64) -> u64 {
    (seq.max(1) - 1) / RUN * RUN + 1
}

/// Whether `seq` is the last seq of its run.
pub(crate) fn ends_run(seq: u64) -> bool {
    seq % RUN == 0
}

/// Append one record (an encoded event) to a block or a merge operand.
pub(crate) fn push_record(buf: &mut Vec<u8>, event: &[u8]) {
    prost::encoding::encode_varint(event.len() as u64, buf);
    buf.extend_from_slice(event);
}

/// The name of the merge operator (stored in RocksDB's OPTIONS file).
pub(crate) const MERGE_NAME: &str = "fsfeed.event_blocks.v1";

/// Full merge: the block so far, then each operand's records.
pub(crate) fn full_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    // No existing value: the block's start was deleted by retention while
    // records were merged after it, which `writer::retain` never does. The
    // records still read as a block.
    let base = existing.unwrap_or(&[MARK]);
    let len = base.len() + operands.iter().map(|o| o.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(base);
    for o in operands {
        out.extend_from_slice(o);
    }
    Some(out)
}

/// Partial merge: operands' records, concatenated (no mark: the full
/// merge puts them after the block's own).
pub(crate) fn partial_merge(
    _key: &[u8],
    _existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(operands.iter().map(|o| o.len()).sum());
    for o in operands {
        out.extend_from_slice(o);
    }
    Some(out)
}

/// The events of one stored value under key seq `first`, in order, as
/// (seq, encoded event).
pub(crate) struct Records<'a> {
    next_seq: u64,
    rest: &'a [u8],
    /// A single-event value not yet returned.
    single: Option<&'a [u8]>,
}

/// Read the value stored under key `key_seq`.
pub(crate) fn records(key_seq: u64, value: &[u8]) -> Records<'_> {
    match value.split_first() {
        Some((&MARK, rest)) => Records {
            next_seq: key_seq,
            rest,
            single: None,
        },
        _ => Records {
            next_seq: key_seq,
            rest: &[],
            single: Some(value),
        },
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u64, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(v) = self.single.take() {
            return Some(Ok((self.next_seq, v)));
        }
        if self.rest.is_empty() {
            return None;
        }
        let seq = self.next_seq;
        let mut buf = self.rest;
        let record = prost::encoding::decode_varint(&mut buf)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= buf.len())
            .map(|n| buf.split_at(n));
        match record {
            Some((event, rest)) => {
                self.rest = rest;
                self.next_seq += 1;
                Some(Ok((seq, event)))
            }
            None => {
                self.rest = &[];
                Some(Err(Error::Corrupt(format!(
                    "the block holding event {seq} is cut short"
                ))))
            }
        }
    }
}

/// The encoded event `seq`, if stored: from the value at the run's start
/// (one point lookup), else from the value at or before `seq`.
pub(crate) fn get(db: &DB, seq: u64) -> Result<Option<Vec<u8>>> {
    let cf = db.cf_handle(super::keys::CF_EVENTS).expect("cf events");
    if let Some(v) = db.get_pinned_cf(cf, seq_key(run_start(seq)))? {
        if let Some(found) = pick(run_start(seq), &v, seq)? {
            return Ok(Some(found));
        }
    }
    let mut it = db.raw_iterator_cf(cf);
    it.seek_for_prev(seq_key(seq));
    let found = match (it.key(), it.value()) {
        (Some(k), Some(v)) => {
            let key = decode_seq(k).ok_or_else(|| Error::Corrupt("events key".into()))?;
            pick(key, v, seq)?
        }
        _ => None,
    };
    it.status()?;
    Ok(found)
}

/// For the writer at open: the key of the block value that holds `head`,
/// if it is one and `head` does not end its run, so the next event is merged
/// into it (a format 5 ledger's head is a single event: the next event
/// starts a block of its own).
pub(crate) fn open_block(db: &DB, head: u64) -> Result<Option<u64>> {
    if head == 0 || ends_run(head) {
        return Ok(None);
    }
    let cf = db.cf_handle(super::keys::CF_EVENTS).expect("cf events");
    let mut it = db.raw_iterator_cf(cf);
    it.seek_for_prev(seq_key(head));
    let found = match (it.key(), it.value()) {
        (Some(k), Some(v)) if v.first() == Some(&MARK) => {
            decode_seq(k).filter(|&key| key <= head && run_start(key) == run_start(head))
        }
        _ => None,
    };
    it.status()?;
    Ok(found)
}

fn pick(key: u64, value: &[u8], seq: u64) -> Result<Option<Vec<u8>>> {
    if seq < key || seq - key >= RUN {
        return Ok(None);
    }
    for r in records(key, value) {
        let (s, bytes) = r?;
        if s == seq {
            return Ok(Some(bytes.to_vec()));
        }
    }
    Ok(None)
}

/// Position `it` on the value that holds `from` or, if none does, on the
/// first value after it.
fn seek<D: rocksdb::DBAccess>(it: &mut DBRawIteratorWithThreadMode<'_, D>, from: u64) {
    it.seek_for_prev(seq_key(from));
    let holds = it
        .key()
        .and_then(decode_seq)
        .is_some_and(|k| k <= from && from - k < RUN);
    if !holds {
        it.seek(seq_key(from));
    }
}

/// Visit the stored events from `from` on, in seq order, from an iterator
/// not yet positioned: `f(seq, bytes)` returns false to stop.
pub(crate) fn visit<D: rocksdb::DBAccess>(
    it: &mut DBRawIteratorWithThreadMode<'_, D>,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool>,
) -> Result<()> {
    seek(it, from);
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let key = decode_seq(k).ok_or_else(|| Error::Corrupt("events key".into()))?;
        for r in records(key, v) {
            let (seq, bytes) = r?;
            if seq >= from && !f(seq, bytes)? {
                return Ok(());
            }
        }
        it.next();
    }
    it.status()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_fixed_spans_of_seqs() {
        assert_eq!(run_start(1), 1);
        assert_eq!(run_start(32), 1);
        assert_eq!(run_start(33), 33);
        assert_eq!(run_start(64), 33);
        assert!(ends_run(64) && !ends_run(63));
    }

    #[test]
    fn a_block_reads_back_its_records_and_a_single_event_reads_as_one() {
        let mut v = vec![MARK];
        push_record(&mut v, b"\x08\x05");
        push_record(&mut v, b"\x08\x06\x10\x01");
        let got: Vec<(u64, Vec<u8>)> = records(5, &v)
            .map(|r| r.map(|(s, b)| (s, b.to_vec())))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            got,
            vec![(5, b"\x08\x05".to_vec()), (6, b"\x08\x06\x10\x01".to_vec())]
        );
        let single: Vec<_> = records(9, b"\x08\x09").collect::<Result<_>>().unwrap();
        assert_eq!(single, vec![(9, &b"\x08\x09"[..])]);
        assert_eq!(pick(5, &v, 6).unwrap(), Some(b"\x08\x06\x10\x01".to_vec()));
        assert_eq!(pick(5, &v, 7).unwrap(), None);
        assert_eq!(pick(5, &v, 4).unwrap(), None);
    }

    #[test]
    fn a_cut_block_is_corrupt_not_a_panic() {
        let mut v = vec![MARK];
        push_record(&mut v, b"\x08\x05\x10\x01");
        v.truncate(v.len() - 1);
        let r: Vec<_> = records(5, &v).collect();
        assert!(matches!(r.as_slice(), [Err(Error::Corrupt(_))]));
        // A length beyond usize or the value.
        let r: Vec<_> = records(5, &[MARK, 0xff, 0xff, 0xff]).collect();
        assert!(matches!(r.as_slice(), [Err(Error::Corrupt(_))]));
    }
}
