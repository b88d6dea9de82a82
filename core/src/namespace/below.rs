//! What an object-store or legacy op took from the live index, stored
//! beside its event (format 9), so that it expands into a record per
//! object as of its seq (`expand`).
//!
//! | key | value |
//! |---|---|
//! | `X seq chunk` (u64, u32 big-endian) | prost `BelowChunk`: up to [`CHUNK`] entries, in key order |
//!
//! The live index holds the current state only: once a recursive delete,
//! a directory's rename or a bucket's delete has changed it, a reader can
//! no longer list what the op took. So the writer lists it (it scans the
//! entries anyway, to delete or move them) and writes the list in the
//! append's own batch, and the event says how many entries there are
//! (`Event.below`; absent for every other event and for events stored
//! before format 9, which expand as they did). The list is a pure
//! function of the ops before the event, so replicas hold the same keys.
//!
//! Retention drops the keys of the events it drops, in the batch that
//! drops them: a `delete_range` up to the cut, added only when a key lies
//! below it (a seek; most ledgers never write one).

use prost::Message;
use rocksdb::{WriteBatch, DB};

use crate::error::{Error, Result};
use crate::proto::{BelowChunk, BelowEntry};

pub(crate) const TAG_X: u8 = b'X';

/// Entries per stored value.
pub(crate) const CHUNK: usize = 1024;

fn x_key(seq: u64, chunk: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = TAG_X;
    k[1..9].copy_from_slice(&seq.to_be_bytes());
    k[9..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// Put the entries the event at `seq` took into `batch` (nothing when
/// there are none); the bytes put, [`stored_len`].
pub(crate) fn store(db: &DB, batch: &mut WriteBatch, seq: u64, entries: &[BelowEntry]) -> u64 {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    let mut bytes = 0;
    for (key, value) in stored(seq, entries) {
        bytes += (key.len() + value.len()) as u64;
        batch.put_cf(cf, key, value);
    }
    bytes
}

/// The keys and values of what the event at `seq` took.
fn stored(seq: u64, entries: &[BelowEntry]) -> impl Iterator<Item = ([u8; 13], Vec<u8>)> + '_ {
    entries.chunks(CHUNK).enumerate().map(move |(i, chunk)| {
        let value = BelowChunk {
            entries: chunk.to_vec(),
        }
        .encode_to_vec();
        (x_key(seq, i as u32), value)
    })
}

/// The bytes [`store`] puts for `entries` (keys and values), which the
/// event's count of bytes includes: what retention counts, so the writer's
/// "known gone" judgement counts them too before they are stored.
pub(crate) fn stored_len(entries: &[BelowEntry]) -> u64 {
    entries
        .chunks(CHUNK)
        .map(|chunk| {
            let value = prost::encoding::message::encoded_len_repeated(1, chunk);
            (x_key(0, 0).len() + value) as u64
        })
        .sum()
}

/// Chunk `chunk` of what the event at `seq` took, or `None` when it is
/// not stored (retention dropped it with the event).
pub(crate) fn read(db: &DB, seq: u64, chunk: u32) -> Result<Option<Vec<BelowEntry>>> {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    let Some(v) = db.get_pinned_cf(cf, x_key(seq, chunk))? else {
        return Ok(None);
    };
    let c = BelowChunk::decode(&*v)
        .map_err(|e| Error::Corrupt(format!("entries of event {seq}: {e}")))?;
    Ok(Some(c.entries))
}

/// Drop what the events before `cut` took, when anything is stored below
/// it: the database's keys, or `pending_min`, the least seq whose keys
/// `batch` puts (a range delete added after them drops them too).
pub(crate) fn drop_before(
    db: &DB,
    batch: &mut WriteBatch,
    cut: u64,
    pending_min: Option<u64>,
) -> Result<()> {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    let end = x_key(cut, 0);
    let stored = {
        let mut it = db.raw_iterator_cf(cf);
        it.seek([TAG_X]);
        let below = it.valid() && it.key().is_some_and(|k| k < end.as_slice());
        it.status()?;
        below
    };
    if stored || pending_min.is_some_and(|s| s < cut) {
        batch.delete_range_cf(cf, &[TAG_X][..], &end[..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_seq_then_chunk_and_after_every_seq_below() {
        assert!(x_key(1, u32::MAX) < x_key(2, 0));
        assert!(x_key(255, 0) < x_key(256, 0));
        assert!([TAG_X].as_slice() < x_key(0, 0).as_slice());
        assert!(x_key(u64::MAX, u32::MAX).as_slice() < [TAG_X + 1].as_slice());
    }

    #[test]
    fn stored_len_is_what_store_puts() {
        let entry = |i: usize| BelowEntry {
            rel: format!("d{}/k{i}", i % 7),
            is_dir: i % 5 == 0,
            listed: i % 3 != 0,
            replaced: i % 11 == 0,
            replaced_is_dir: i % 22 == 0,
        };
        for n in [0, 1, 2, 1023, 1024, 1025, 3000] {
            let entries: Vec<BelowEntry> = (0..n).map(entry).collect();
            let put: u64 = stored(u64::MAX, &entries)
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum();
            assert_eq!(stored_len(&entries), put, "{n} entries");
            assert_eq!(stored(1, &entries).count(), n.div_ceil(CHUNK));
        }
    }
}
