//! The live index: the last known state of each live object of an
//! object-store or legacy bucket (`L` keys, one per object), what the
//! versioned edges are for FSO buckets.
//!
//! | key | value |
//! |---|---|
//! | `L B key` | prost `LiveObject`: size, eTag, version id, type, whether it is in the S3 view, the bucket's layout |
//! | `L B key/` | the same, for the marker of directory `key` (its `dir/` object; format 9: before, markers shared `L B key` with the file of their name) |
//! | `L` | the checkpoint marker (below) |
//!
//! Changed by the ops alone (replicas agree), and stored by checkpoints
//! (below):
//!
//! | op | the entry |
//! |---|---|
//! | `commit` | size, eTag and version from the op; in the S3 view |
//! | `create_file` | a new entry, not in the S3 view; over an entry (`overwrite`), nothing changes until the commit (S3 shows the old object) |
//! | `create_directory` | a directory, in the S3 view (its `dir/` marker, at `L B key/`); an op naming a directory (`is_dir`) is about its marker |
//! | `truncate` | the new size; the eTag is no longer known |
//! | `append` | size and eTag no longer known |
//! | `delete` | gone; a recursive one also removes every `key/...` entry (deleting a `dir/` marker alone leaves the objects below it, as in S3), and stores what it took beside its event (`below`) |
//! | `rename` | moves (a directory's, `is_dir`, with every `key/...` entry, storing what it took beside its event: `below`); an object never seen (not a directory) is adopted at the destination, in the S3 view, with nothing known; the event of a source not in the S3 view says so (`Event.unlisted`), and whether it replaced an object that was (`Event.replaced`) |
//! | ACL, times, attributes | unchanged; an object never seen is adopted, with nothing known |
//! | `bucket_delete` | every entry of the bucket goes, stored beside its event (`below`) |
//! | `volume_delete` | every entry of each of the volume's buckets goes |
//!
//! Events of ops that name no size or eTag themselves (ACL changes, times,
//! attributes, renames) carry the entry's, so renderers fill them without a
//! lookup at read time (`Event.size`, `Event.etag`). A resync lists the
//! entries as well as the FSO trees. The index holds the current state
//! only: an entry changed while a resync lists is listed as it is then, and
//! the events after the resync's seq bring the consumer to the same state.
//! The cost is one key written to the overlay per create, commit, truncate
//! or append of an object-store object, one lookup per op that reads its
//! entry, and the checkpoints.
//!
//! # FSO objects
//!
//! A file of an FSO bucket has its state under its object id, not its
//! path, so a directory rename still touches one edge:
//!
//! | key | value |
//! |---|---|
//! | `O object` | prost `LiveObject` (size, eTag, version, mtime) |
//!
//! | op | the entry |
//! |---|---|
//! | `commit` | size, eTag, version and mtime from the op |
//! | `truncate` | the new size; eTag and mtime no longer known |
//! | `append` | size, eTag and mtime no longer known |
//! | `set_times` with an `mtime` | the new mtime |
//! | `create_file` over a file (`overwrite`) | the replaced file's entry moves to the new object (S3 shows the old object until the commit) |
//! | `delete` of a file | gone; below a directory deleted recursively, the entries go with the directory's edges when its delete leaves retention |
//! | `rename`, ACL, attributes | unchanged |
//!
//! Events of ACL, times and attribute ops and of a file's rename carry the
//! file's state as it was before the op (`Event.size`, `Event.etag`), as
//! the object-store events above do; a directory's rename carries nothing.
//!
//! Written from now on: a ledger from before keeps no entry for a file not
//! committed since, and the state of such a file is unknown, not zero.
//!
//! # Off the write path: the overlay and its checkpoints (format 8)
//!
//! The `L` entries are not written in the append's batch. The writer keeps
//! what changed since the last checkpoint in memory ([`Overlay`]), and
//! every [`CHECKPOINT_EVERY`] seqs writes it as one sorted table file that
//! RocksDB ingests into CF `ns`, with the marker key `L` (alone; entry keys
//! always hold a bucket id) saying through which seq the stored entries
//! hold every op. A build that wrote no `L` key at all appended the
//! object-store stream 50% faster; one that kept the writes in memory and
//! wrote them sorted into the batch every 65,536 seqs, 6% (memtable
//! inserts, flushes and WAL bytes per key stayed). This one skips the
//! memtable and the WAL for them, and builds the file on a thread of its
//! own: +26% object-store, +10% demo mix (`append_probe`, paired rounds;
//! `bench/NOTES.md`).
//!
//! The stored index plus the ops of the events after the marker give the
//! index at the head, so nothing acknowledged is lost with the overlay:
//!
//! - the writer's open replays the events after the marker into its
//!   overlay, and a resync replays them over what it reads, in any
//!   process (`ledger::live_overlay`);
//! - a checkpoint first makes the events it covers durable (the WAL is
//!   synced; `Durability::None` has no WAL, and a marker past the head
//!   found on open makes the writer rebuild the index from the stored
//!   events, as the format 4 upgrade does);
//! - retention never deletes an event after the marker: a group commit
//!   whose range delete would reach past it writes the overlay and the
//!   marker in its own batch instead (tight retention, or a failed
//!   ingest), so the replay always finds its events;
//! - `close` (and a drop) checkpoints, so a closed ledger holds the whole
//!   index and replicas fed the same ops hold the same keys, whatever the
//!   batching.
//!
//! The file is built as `LEDGER/live-checkpoint.sst` and moved into the
//! database by the ingest; one a crash left behind is removed by the next
//! checkpoint.

use std::collections::HashMap;

use prost::Message;

use super::keys::{bucket_id, push_bucket_id, split_bucket, volume_prefix};
use super::tx::Write;
use super::Tx;
use crate::error::{Error, Result};
use crate::op::{Kind, Op};
use crate::proto::{BelowEntry, LiveObject};

pub(crate) const TAG_L: u8 = b'L';
pub(crate) const TAG_O: u8 = b'O';

/// The checkpoint marker: the seq through which the stored `L` entries
/// hold every op (u64 big-endian). Sorts before every entry.
pub(crate) const MARKER: &[u8] = &[TAG_L];

/// Seqs between two checkpoints of the overlay: what an open or a resync
/// replays at most (a few tenths of a second here).
pub(crate) const CHECKPOINT_EVERY: u64 = 65_536;

/// Pending `L` writes of a map (`None`: deleted).
pub(crate) type Writes = HashMap<Vec<u8>, Write, foldhash::fast::RandomState>;

/// The `L` writes since the last checkpoint, kept by the writer in its
/// [`Cache`](super::Cache): what the stored index lacks of the head.
#[derive(Default)]
pub(crate) struct Overlay {
    /// Written since the checkpoint in flight (or the last one).
    pub(crate) entries: Writes,
    /// What a checkpoint in flight is storing, on a thread of its own
    /// (`entries` win over it).
    pub(crate) frozen: Option<std::sync::Arc<Writes>>,
    /// The stored marker.
    pub(crate) through: u64,
    /// A checkpoint failed: the next group commit writes the overlay in
    /// its batch.
    pub(crate) force: bool,
}

impl Overlay {
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Write> {
        self.entries
            .get(key)
            .or_else(|| self.frozen.as_ref()?.get(key))
    }

    /// Every entry under `prefix` not in `skip` (the newer writes).
    pub(crate) fn under<'a>(
        &'a self,
        prefix: &'a [u8],
        skip: &'a Writes,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Write)> + 'a {
        let frozen = self.frozen.iter().flat_map(|f| f.iter());
        self.entries
            .iter()
            .chain(frozen.filter(|(k, _)| !self.entries.contains_key(*k)))
            .filter(move |(k, _)| k.starts_with(prefix) && !skip.contains_key(*k))
    }

    /// Take in a written batch's `L` writes.
    pub(crate) fn absorb(&mut self, writes: Vec<(Vec<u8>, Write)>) {
        self.entries.extend(writes);
    }

    /// Every entry with `writes` over it, sorted: what a checkpoint in the
    /// batch stores.
    pub(crate) fn merged(&self, writes: &[(Vec<u8>, Write)]) -> Vec<(Vec<u8>, Write)> {
        let mut all: HashMap<&[u8], &Write, foldhash::fast::RandomState> = HashMap::default();
        for (k, v) in self.frozen.iter().flat_map(|f| f.iter()) {
            all.insert(k, v);
        }
        for (k, v) in &self.entries {
            all.insert(k, v);
        }
        for (k, v) in writes {
            all.insert(k, v);
        }
        let mut out: Vec<(Vec<u8>, Write)> = all
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.clone()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A checkpoint in flight failed: what it held goes back under the
    /// newer writes.
    pub(crate) fn thaw(&mut self) {
        if let Some(f) = self.frozen.take() {
            for (k, v) in f.iter() {
                self.entries.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// Write `entries` and the marker at `through` as one sorted table file at
/// `path` and have RocksDB ingest it into CF `ns` (moved in: no memtable,
/// no WAL). The caller made the events through `through` durable.
pub(crate) fn store_checkpoint(
    db: &rocksdb::DB,
    path: &std::path::Path,
    opts: &rocksdb::Options,
    entries: &Writes,
    through: u64,
) -> Result<()> {
    let mut sorted: Vec<(&Vec<u8>, &Write)> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let _ = std::fs::remove_file(path);
    let written = (|| -> Result<()> {
        let mut w = rocksdb::SstFileWriter::create(opts);
        w.open(path)?;
        w.put(MARKER, through.to_be_bytes())?;
        for (k, v) in sorted {
            match v {
                Some(v) => w.put(k, v)?,
                None => w.delete(k)?,
            }
        }
        w.finish()?;
        let ns = db.cf_handle(super::CF_NS).expect("cf ns");
        let mut io = rocksdb::IngestExternalFileOptions::default();
        io.set_move_files(true);
        db.ingest_external_file_cf_opts(ns, &io, vec![path])?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// The stored marker (`None`: a ledger from before format 8, whose index
/// was written in each batch and is whole).
pub(crate) fn marker(db: &rocksdb::DB) -> Result<Option<u64>> {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    db.get_pinned_cf(cf, MARKER)?
        .map(|v| {
            v.as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt("live index marker".into()))
        })
        .transpose()
}

/// Apply the ops of the events after the marker, in seq order, over the
/// stored index: the `L` writes that bring it to the last of them (what
/// the writer's overlay held). Nothing is written.
pub(crate) fn replay(db: &rocksdb::DB, ops: impl Iterator<Item = Result<Op>>) -> Result<Writes> {
    let mut tx = Tx::new(db, super::Cache::default());
    for op in ops {
        apply_effects(&mut tx, &op?)?;
        tx.accept();
    }
    Ok(std::mem::take(&mut tx.writes))
}

/// `O object`: the state of an FSO object.
pub(crate) fn o_key(object: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(TAG_O);
    k.extend_from_slice(&object.to_be_bytes());
    k
}

/// `L B key`.
pub(crate) fn l_key(bucket: &[u8], key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + bucket.len() + key.len());
    k.push(TAG_L);
    k.extend_from_slice(bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The entry key of `volume/bucket/key`: [`l_key`] of the bucket's id,
/// built in one allocation (one per object-store op).
pub(crate) fn entry_key(volume: &str, bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + volume.len() + 1 + bucket.len() + 1 + key.len());
    k.push(TAG_L);
    push_bucket_id(&mut k, volume, bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The entry key of directory `key`'s marker: `key/` (format 9; the file
/// of the same name is `key`).
fn marker_key(volume: &str, bucket: &str, key: &str) -> Vec<u8> {
    let mut k = entry_key(volume, bucket, key.trim_end_matches('/'));
    k.push(b'/');
    k
}

/// (volume, bucket, key) of an entry key.
pub(crate) fn split_key(k: &[u8]) -> Result<(String, String, String)> {
    let Some((volume, bucket, key)) = split_bucket(k.get(1..).unwrap_or_default()) else {
        return Err(Error::Corrupt("live index key shape".into()));
    };
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::Corrupt("live index key is not UTF-8".into()))
    };
    Ok((text(volume)?, text(bucket)?, text(key)?))
}

/// Does `op` change the live index (an object-store or legacy bucket's op,
/// or any bucket's delete)?
pub(crate) fn tracks(op: &Op) -> bool {
    !op.bucket.is_empty()
        && (op.layout_enum() != crate::op::Layout::Fso
            || matches!(op.kind, Some(Kind::BucketDelete(_))))
}

pub(crate) fn decode_live(v: &[u8]) -> Result<LiveObject> {
    LiveObject::decode(v).map_err(|e| Error::Corrupt(format!("live index entry: {e}")))
}

impl Tx<'_> {
    fn live_entry(&mut self, key: &[u8]) -> Result<Option<LiveObject>> {
        self.get_raw(key)?.as_deref().map(decode_live).transpose()
    }

    fn put_live(&mut self, key: Vec<u8>, o: &LiveObject) {
        self.set(key, Some(encode_live(o)));
    }

    /// Every entry under `prefix`, in key order.
    fn live_under(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, LiveObject)>> {
        let mut out = Vec::new();
        self.scan_prefix(prefix, |k, v| {
            out.push((k.to_vec(), decode_live(v)?));
            Ok(true)
        })?;
        Ok(out)
    }
}

/// `o.encode_to_vec()`, written out with `crate::wire`: one of these per
/// object-store create, commit or delete, where prost's measured the entry
/// first and wrote byte by byte through `BufMut` (test
/// `live_entries_encode_as_prost_does`).
fn encode_live(o: &LiveObject) -> Vec<u8> {
    use crate::wire::{put_flag, put_opt, put_scalar, put_str};
    // Every field named: one added to the proto later does not compile
    // until it is encoded here.
    let LiveObject {
        size,
        etag,
        version_id,
        is_dir,
        listed,
        layout,
        mtime,
    } = o;
    let mut b = Vec::with_capacity(24 + etag.len() + version_id.len());
    put_opt(&mut b, 1, *size);
    put_str(&mut b, 2, etag);
    put_str(&mut b, 3, version_id);
    put_flag(&mut b, 4, *is_dir);
    put_flag(&mut b, 5, *listed);
    put_scalar(&mut b, 6, *layout as u64);
    put_opt(&mut b, 7, mtime.map(|m| m as u64));
    b
}

/// Apply an FSO op's effect on the state of object `object` (the op's
/// own, resolved by the namespace; `is_dir` as resolved); returns what the
/// event carries of the file's state, as [`apply_live`] does for the other
/// layouts (ACL, times and attribute ops, which name no size or eTag).
pub(crate) fn apply_object_state(
    tx: &mut Tx<'_>,
    op: &Op,
    object: u64,
    is_dir: bool,
) -> Result<Option<Known>> {
    if is_dir {
        return Ok(None);
    }
    let key = o_key(object);
    let fresh = || LiveObject {
        listed: true,
        layout: op.layout,
        ..Default::default()
    };
    match op.kind.as_ref() {
        Some(Kind::Commit(c)) => tx.put_live(
            key,
            &LiveObject {
                size: c.size,
                etag: c.etag.clone(),
                version_id: c.version_id.clone(),
                mtime: c.mtime,
                ..fresh()
            },
        ),
        Some(Kind::Truncate(t)) => {
            let o = tx.live_entry(&key)?.unwrap_or_else(fresh);
            tx.put_live(
                key,
                &LiveObject {
                    size: Some(t.size),
                    etag: String::new(),
                    mtime: None,
                    ..o
                },
            );
        }
        Some(Kind::Append(_)) => {
            if let Some(o) = tx.live_entry(&key)? {
                tx.put_live(
                    key,
                    &LiveObject {
                        size: None,
                        etag: String::new(),
                        mtime: None,
                        ..o
                    },
                );
            }
        }
        Some(Kind::SetTimes(t)) if t.mtime.is_some() => {
            let o = tx.live_entry(&key)?;
            let carried = o.as_ref().and_then(known);
            tx.put_live(
                key,
                &LiveObject {
                    mtime: t.mtime,
                    ..o.unwrap_or_else(fresh)
                },
            );
            return Ok(carried);
        }
        Some(
            Kind::AclAdd(_)
            | Kind::AclRemove(_)
            | Kind::AclSet(_)
            | Kind::SetTimes(_)
            | Kind::SetAttr(_),
        ) => return Ok(tx.live_entry(&key)?.as_ref().and_then(known)),
        _ => {}
    }
    Ok(None)
}

/// What the event of a rename carries of an FSO file's state (`None` for
/// a directory or a file whose state is unknown).
pub(crate) fn object_known(tx: &mut Tx<'_>, object: u64, is_dir: bool) -> Result<Option<Known>> {
    if is_dir {
        return Ok(None);
    }
    Ok(tx.live_entry(&o_key(object))?.as_ref().and_then(known))
}

/// The state of an FSO file moves to the object that replaces it.
pub(crate) fn move_object_state(tx: &mut Tx<'_>, from: u64, to: u64) -> Result<()> {
    if let Some(o) = tx.live_entry(&o_key(from))? {
        tx.del(o_key(from));
        tx.put_live(o_key(to), &o);
    }
    Ok(())
}

/// The state of an FSO object at the head, if known.
pub(crate) fn object_state(db: &rocksdb::DB, object: u64) -> Result<Option<LiveObject>> {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    db.get_pinned_cf(cf, o_key(object))?
        .as_deref()
        .map(decode_live)
        .transpose()
}

/// What the live index knew of the op's object before it, for its event.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Size and eTag, for the event of an op that names neither.
    pub size: Option<u64>,
    pub etag: String,
    /// A rename's source was not in the S3 view (`Event.unlisted`)...
    pub unlisted: bool,
    /// ...and its destination was, and is replaced (`Event.replaced`).
    pub replaced: bool,
    /// The entries a recursive delete, a directory's rename or a bucket's
    /// delete took, as the op found them: the ledger stores them beside
    /// the event (`Event.below`, [`BelowEntry`]).
    pub below: Option<Box<[BelowEntry]>>,
}

/// What an event carries of an entry's state.
fn known(o: &LiveObject) -> Option<Known> {
    Some(Known {
        size: o.size,
        etag: o.etag.clone(),
        ..Known::default()
    })
}

/// What an event that took the entries `below` carries.
fn took(below: Vec<BelowEntry>) -> Option<Known> {
    Some(Known {
        below: Some(below.into_boxed_slice()),
        ..Known::default()
    })
}

/// The entry `rel` past the op's key, as the op found it.
fn entry_of(rel: &[u8], o: &LiveObject) -> Result<BelowEntry> {
    // A marker's key ends with `/`; its record names the directory.
    let rel = match rel {
        [r @ .., b'/'] if o.is_dir => r,
        r => r,
    };
    Ok(BelowEntry {
        rel: String::from_utf8(rel.to_vec())
            .map_err(|_| Error::Corrupt("live index key is not UTF-8".into()))?,
        is_dir: o.is_dir,
        listed: o.listed,
        ..BelowEntry::default()
    })
}

/// The op's own entry and those below it (`key/...`), in key order, as
/// [`BelowEntry`]s: the own one first, with `rel` empty. An own entry
/// never seen is adopted as the rename of one is: an object in the S3
/// view, unless the op names a directory (one never seen was implicit).
/// For a rename, `to` is the destination's entry key: an entry not in the
/// S3 view that lands on one that is says so (`replaced`), as
/// `Event.replaced` does for a file's rename. `key`: the op's own entry
/// key, as the caller built it.
fn own_and_below(
    tx: &mut Tx<'_>,
    own: Option<&LiveObject>,
    op: &Op,
    key: &[u8],
    below: &[(Vec<u8>, LiveObject)],
    from_len: usize,
    to: Option<(&[u8], &[u8])>,
) -> Result<Vec<BelowEntry>> {
    let mut out = Vec::with_capacity(below.len() + 1);
    let own = match own {
        Some(o) => Some(entry_of(b"", o)?),
        None if !op.is_dir => Some(BelowEntry {
            rel: String::new(),
            listed: true,
            ..BelowEntry::default()
        }),
        None => None,
    };
    if let Some(mut e) = own {
        if let Some((own_to, _)) = to {
            mark_replaced(tx, &mut e, own_to, key)?;
        }
        out.push(e);
    }
    for (k, o) in below {
        let mut e = entry_of(&k[from_len..], o)?;
        if let Some((_, below_to)) = to {
            let mut dest = below_to.to_vec();
            dest.extend_from_slice(e.rel.as_bytes());
            mark_replaced(tx, &mut e, &dest, k)?;
        }
        out.push(e);
    }
    Ok(out)
}

/// Entry `e`, at `here` and not in the S3 view, renamed to `dest` where an
/// entry that is: `replaced` (one lookup, for entries not in the view).
fn mark_replaced(tx: &mut Tx<'_>, e: &mut BelowEntry, dest: &[u8], here: &[u8]) -> Result<()> {
    if e.listed || dest == here {
        return Ok(());
    }
    if let Some(d) = tx.live_entry(dest)?.filter(|d| d.listed) {
        e.replaced = true;
        e.replaced_is_dir = d.is_dir;
    }
    Ok(())
}

/// What `op` does to the live index (a volume's delete drops its
/// buckets' entries; an object-store, legacy or bucket-delete op goes
/// through [`apply_live`]): the one function the writer and a replay call.
pub(crate) fn apply_effects(tx: &mut Tx<'_>, op: &Op) -> Result<Option<Known>> {
    if matches!(op.kind, Some(Kind::VolumeDelete(_))) && !op.volume.is_empty() {
        drop_volume(tx, &op.volume)?;
    }
    if tracks(op) {
        return apply_live(tx, op);
    }
    Ok(None)
}

/// Apply an object-store or legacy op to the live index; returns what the
/// event carries of the object's state (ops that name no size or eTag).
pub(crate) fn apply_live(tx: &mut Tx<'_>, op: &Op) -> Result<Option<Known>> {
    let Some(kind) = op.kind.as_ref() else {
        return Ok(None);
    };
    // A directory's marker is its `dir/` object (format 9), not the file
    // of its name: `key/`, which sorts first among the entries below it.
    let names_dir = op.is_dir || matches!(kind, Kind::CreateDirectory(_));
    let key = if names_dir {
        marker_key(&op.volume, &op.bucket, &op.key)
    } else {
        entry_key(&op.volume, &op.bucket, &op.key)
    };
    // The bucket's id alone, for the ops that list entries below a key.
    let b = || bucket_id(&op.volume, &op.bucket);
    let fresh = |listed: bool| LiveObject {
        is_dir: op.is_dir,
        listed,
        layout: op.layout,
        ..Default::default()
    };
    match kind {
        Kind::Commit(c) => {
            tx.put_live(
                key,
                &LiveObject {
                    size: c.size,
                    etag: c.etag.clone(),
                    version_id: c.version_id.clone(),
                    ..fresh(true)
                },
            );
            Ok(None)
        }
        Kind::CreateFile(c) => {
            // Without `overwrite` the producer says there is no object.
            if !c.overwrite || tx.live_entry(&key)?.is_none() {
                tx.put_live(key, &fresh(false));
            }
            Ok(None)
        }
        Kind::CreateDirectory(_) => {
            tx.put_live(
                key,
                &LiveObject {
                    is_dir: true,
                    ..fresh(true)
                },
            );
            Ok(None)
        }
        Kind::Truncate(t) => {
            let o = tx.live_entry(&key)?.unwrap_or_else(|| fresh(true));
            tx.put_live(
                key,
                &LiveObject {
                    size: Some(t.size),
                    etag: String::new(),
                    ..o
                },
            );
            Ok(None)
        }
        Kind::Append(_) => {
            let o = tx.live_entry(&key)?.unwrap_or_else(|| fresh(true));
            tx.put_live(
                key,
                &LiveObject {
                    size: None,
                    etag: String::new(),
                    ..o
                },
            );
            Ok(None)
        }
        Kind::Delete(d) => {
            if !d.recursive {
                tx.del(key);
                return Ok(None);
            }
            // A directory's marker is the first entry below it.
            let own = if names_dir {
                None
            } else {
                tx.live_entry(&key)?
            };
            let prefix = below(&b(), &op.key);
            let under = tx.live_under(&prefix)?;
            let took_ = own_and_below(tx, own.as_ref(), op, &key, &under, prefix.len(), None)?;
            for (k, _) in under {
                tx.del(k);
            }
            tx.del(key);
            Ok(took(took_))
        }
        Kind::Rename(r) => {
            // A directory's marker moves with what is below it.
            let to = entry_key(&op.volume, &op.bucket, &r.to_key);
            let src = if names_dir {
                None
            } else {
                tx.live_entry(&key)?
            };
            // A source not in the S3 view that replaces one that is: the
            // view loses the destination's object.
            let replaced = match &src {
                Some(o) if !o.listed && to != key => tx.live_entry(&to)?.is_some_and(|d| d.listed),
                _ => false,
            };
            // A directory's objects move with it (legacy buckets).
            let moved = if op.is_dir {
                tx.live_under(&below(&b(), &op.key))?
            } else {
                Vec::new()
            };
            let b = b();
            let from_len = below(&b, &op.key).len();
            // A directory's rename: the entries it moved, its own first.
            let taken = if op.is_dir {
                let below_to = below(&b, &r.to_key);
                let dests = Some((to.as_slice(), below_to.as_slice()));
                Some(own_and_below(
                    tx,
                    src.as_ref(),
                    op,
                    &key,
                    &moved,
                    from_len,
                    dests,
                )?)
            } else {
                None
            };
            // Every source goes before any destination is written: a
            // directory renamed into itself (`b` to `b/x`, which a store
            // refuses but the index does not check) keeps what it moved.
            if src.is_some() {
                tx.del(key);
            }
            for (k, _) in &moved {
                tx.del(k.clone());
            }
            match &src {
                Some(o) => tx.put_live(to, o),
                // An object never seen is adopted, as the namespace does
                // for FSO paths: it is at `to` now, in the S3 view (its
                // rename's records say so), with nothing known. Not a
                // directory: one never seen was implicit (no marker), and
                // what it held moves below.
                None if !op.is_dir => tx.put_live(to, &fresh(true)),
                None => {}
            }
            for (k, o) in moved {
                let mut dest = below(&b, &r.to_key);
                dest.extend_from_slice(&k[from_len..]);
                tx.put_live(dest, &o);
            }
            // A file created and never committed moves, but no S3 object
            // does: its event says so, and the rename's S3 records are
            // left out.
            let k = src.as_ref().and_then(|o| {
                known(o).map(|k| Known {
                    unlisted: !o.listed,
                    replaced,
                    ..k
                })
            });
            Ok(match taken {
                Some(t) => Some(Known {
                    below: Some(t.into_boxed_slice()),
                    ..k.unwrap_or_default()
                }),
                None => k,
            })
        }
        Kind::AclAdd(_)
        | Kind::AclRemove(_)
        | Kind::AclSet(_)
        | Kind::SetTimes(_)
        | Kind::SetAttr(_) => Ok(tx.live_entry(&key)?.as_ref().and_then(known)),
        Kind::BucketDelete(_) => {
            // Everything the bucket held goes with it (a bucket made again
            // under the name starts empty).
            let prefix = l_key(&b(), "");
            let under = tx.live_under(&prefix)?;
            let mut taken = Vec::with_capacity(under.len());
            for (k, o) in &under {
                taken.push(entry_of(&k[prefix.len()..], o)?);
            }
            for (k, _) in under {
                tx.del(k);
            }
            Ok(took(taken))
        }
        Kind::VolumeCreate(_) | Kind::VolumeDelete(_) | Kind::BucketCreate(_) => Ok(None),
    }
}

/// A volume's delete: every entry of each of its buckets goes (a volume
/// made again starts empty). A scan of the volume's entries.
pub(crate) fn drop_volume(tx: &mut Tx<'_>, volume: &str) -> Result<()> {
    for (k, _) in tx.live_under(&volume_prefix(TAG_L, volume))? {
        tx.del(k);
    }
    Ok(())
}

/// `L B key/`: the entries below a directory key.
fn below(bucket: &[u8], key: &str) -> Vec<u8> {
    let mut k = l_key(bucket, key.trim_end_matches('/'));
    k.push(b'/');
    k
}

/// The format 9 upgrade: a directory's marker, stored under `key` until
/// format 8, moves to `key/` (`marker_key`), in `batch`. The events after
/// the checkpoint marker are replayed on open with format 9's keys, so
/// only the stored entries move.
pub(crate) fn rekey_markers(db: &rocksdb::DB, batch: &mut rocksdb::WriteBatch) -> Result<()> {
    let cf = db.cf_handle(super::CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    it.seek(MARKER);
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        if k.first() != Some(&TAG_L) {
            break;
        }
        if k != MARKER && !k.ends_with(b"/") && decode_live(v)?.is_dir {
            let mut to = k.to_vec();
            to.push(b'/');
            batch.delete_cf(cf, k);
            batch.put_cf(cf, to, v);
        }
        it.next();
    }
    it.status()?;
    Ok(())
}

/// Build the live index from the ops of the events stored, in seq order (a
/// format 3 ledger had none): what the first read-write open of one does
/// before it says format 4. Entries a cut-short build left are dropped
/// first, so running it again gives the same index. Objects whose last
/// write is no longer stored are not in it: the ledger does not know them.
/// The same when a marker is found past the head (`Overlay`). The last
/// batch stores the marker at `through` (the head: the last seq of `ops`).
pub(crate) fn rebuild(
    db: &rocksdb::DB,
    ops: impl Iterator<Item = Result<Op>>,
    through: u64,
) -> Result<()> {
    use rocksdb::WriteBatch;

    let ns = db.cf_handle(super::CF_NS).expect("cf ns");
    let write = |tx: Tx<'_>, last: bool| -> Result<()> {
        let mut b = WriteBatch::default();
        if last {
            b.put_cf(ns, MARKER, through.to_be_bytes());
        }
        let (_, live) = tx.write_into(&mut b);
        for (k, v) in live {
            super::tx::put_write(&mut b, ns, &k, &v);
        }
        Ok(db.write(b)?)
    };
    let mut clear = WriteBatch::default();
    clear.delete_range_cf(ns, [TAG_L], [TAG_L + 1]);
    db.write(clear)?;
    let mut tx = Tx::new(db, super::Cache::default());
    let mut pending = 0usize;
    for op in ops {
        apply_effects(&mut tx, &op?)?;
        tx.accept();
        pending += 1;
        if pending == 10_000 {
            write(tx, false)?;
            tx = Tx::new(db, super::Cache::default());
            pending = 0;
        }
    }
    write(tx, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_entries_encode_as_prost_does() {
        let mut n = 0;
        for size in [None, Some(0), Some(1), Some(u64::MAX)] {
            for etag in ["", "\"e\""] {
                for version_id in ["", "v1"] {
                    for bits in 0..4 {
                        for layout in [0, 1, 2, -1] {
                            for mtime in [None, Some(0), Some(-1), Some(1_767_225_600_000)] {
                                let o = LiveObject {
                                    size,
                                    etag: etag.into(),
                                    version_id: version_id.into(),
                                    is_dir: bits & 1 != 0,
                                    listed: bits & 2 != 0,
                                    layout,
                                    mtime,
                                };
                                assert_eq!(encode_live(&o), o.encode_to_vec(), "{o:?}");
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(n, 4 * 2 * 2 * 4 * 4 * 4);
    }
}
