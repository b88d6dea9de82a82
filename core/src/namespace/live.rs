//! The live index: the last known state of each live object of an
//! object-store or legacy bucket (`L` keys, one per object), what the
//! versioned edges are for FSO buckets.
//!
//! | key | value |
//! |---|---|
//! | `L B key` | prost `LiveObject`: size, eTag, version id, type, whether it is in the S3 view, the bucket's layout |
//!
//! Written in the append's own batch, from the ops alone (replicas agree):
//!
//! | op | the entry |
//! |---|---|
//! | `commit` | size, eTag and version from the op; in the S3 view |
//! | `create_file` | a new entry, not in the S3 view; over an entry (`overwrite`), nothing changes until the commit (S3 shows the old object) |
//! | `create_directory` | a directory, in the S3 view (its `dir/` marker) |
//! | `truncate` | the new size; the eTag is no longer known |
//! | `append` | size and eTag no longer known |
//! | `delete` | gone; a recursive one also removes every `key/...` entry (deleting a `dir/` marker alone leaves the objects below it, as in S3) |
//! | `rename` | moves (a directory's, `is_dir`, with every `key/...` entry) |
//! | ACL, times, attributes | unchanged; an object never seen is adopted, with nothing known |
//! | `bucket_delete` | every entry of the bucket goes |
//! | `volume_delete` | every entry of each of the volume's buckets goes |
//!
//! Events of ops that name no size or eTag themselves (ACL changes, times,
//! attributes, renames) carry the entry's, so renderers fill them without a
//! lookup at read time (`Event.size`, `Event.etag`). A resync lists the
//! entries as well as the FSO trees. The index holds the current state
//! only: an entry changed while a resync lists is listed as it is then, and
//! the events after the resync's seq bring the consumer to the same state.
//! The cost is one key written per create, commit, truncate or append of
//! an object-store object, and one lookup per op that reads its entry.
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

use prost::Message;

use super::keys::{bucket_id, push_bucket_id, split_bucket, volume_prefix};
use super::Tx;
use crate::error::{Error, Result};
use crate::op::{Kind, Op};
use crate::proto::LiveObject;

pub(crate) const TAG_L: u8 = b'L';
pub(crate) const TAG_O: u8 = b'O';

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
        self.set(key, Some(o.encode_to_vec()));
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

/// What the live index knew of the op's object before it: (size, eTag),
/// for the event of an op that names neither.
pub(crate) type Known = (Option<u64>, String);

/// What an event carries of an entry's state.
fn known(o: &LiveObject) -> Option<Known> {
    Some((o.size, o.etag.clone()))
}

/// Apply an object-store or legacy op to the live index; returns what the
/// event carries of the object's state (ops that name no size or eTag).
pub(crate) fn apply_live(tx: &mut Tx<'_>, op: &Op) -> Result<Option<Known>> {
    let Some(kind) = op.kind.as_ref() else {
        return Ok(None);
    };
    let key = entry_key(&op.volume, &op.bucket, &op.key);
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
            if d.recursive {
                for (k, _) in tx.live_under(&below(&b(), &op.key))? {
                    tx.del(k);
                }
            }
            tx.del(key);
            Ok(None)
        }
        Kind::Rename(r) => {
            let to = entry_key(&op.volume, &op.bucket, &r.to_key);
            let src = tx.live_entry(&key)?;
            // A directory's objects move with it (legacy buckets).
            let moved = if op.is_dir {
                tx.live_under(&below(&b(), &op.key))?
            } else {
                Vec::new()
            };
            if let Some(o) = &src {
                tx.del(key);
                tx.put_live(to, o);
            }
            let b = b();
            let from_len = below(&b, &op.key).len();
            for (k, o) in moved {
                let mut dest = below(&b, &r.to_key);
                dest.extend_from_slice(&k[from_len..]);
                tx.del(k);
                tx.put_live(dest, &o);
            }
            Ok(src.as_ref().and_then(known))
        }
        Kind::AclAdd(_)
        | Kind::AclRemove(_)
        | Kind::AclSet(_)
        | Kind::SetTimes(_)
        | Kind::SetAttr(_) => Ok(tx.live_entry(&key)?.as_ref().and_then(known)),
        Kind::BucketDelete(_) => {
            // Everything the bucket held goes with it (a bucket made again
            // under the name starts empty).
            for (k, _) in tx.live_under(&l_key(&b(), ""))? {
                tx.del(k);
            }
            Ok(None)
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

/// Build the live index from the ops of the events stored, in seq order (a
/// format 3 ledger had none): what the first read-write open of one does
/// before it says format 4. Entries a cut-short build left are dropped
/// first, so running it again gives the same index. Objects whose last
/// write is no longer stored are not in it: the ledger does not know them.
pub(crate) fn rebuild(db: &rocksdb::DB, ops: impl Iterator<Item = Result<Op>>) -> Result<()> {
    use rocksdb::WriteBatch;

    let write = |tx: Tx<'_>| -> Result<()> {
        let mut b = WriteBatch::default();
        drop(tx.write_into(&mut b));
        Ok(db.write(b)?)
    };
    let mut clear = WriteBatch::default();
    let ns = db.cf_handle(super::CF_NS).expect("cf ns");
    clear.delete_range_cf(ns, [TAG_L], [TAG_L + 1]);
    db.write(clear)?;
    let mut tx = Tx::new(db, super::Cache::default());
    let mut pending = 0usize;
    for op in ops {
        let op = op?;
        if !tracks(&op) {
            continue;
        }
        apply_live(&mut tx, &op)?;
        tx.accept();
        pending += 1;
        if pending == 10_000 {
            write(tx)?;
            tx = Tx::new(db, super::Cache::default());
            pending = 0;
        }
    }
    write(tx)
}
