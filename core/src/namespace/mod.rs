//! The versioned shadow namespace (`ARCHITECTURE.md`, "The shadow namespace").
//!
//! For FSO-layout buckets the ledger keeps, in CF `ns` and in the same write
//! batch as the event, the edges of the tree with the seq range each was
//! valid for. Children point at their directory's object id, not at its
//! path, so renaming a directory closes one edge and opens one: O(1)
//! whatever the subtree holds. Paths of any object at any retained seq
//! follow from the edges.
//!
//! # Keys (CF `ns`)
//!
//! `B` below is `volume NUL bucket NUL`; ids and seqs are u64 big-endian;
//! names never hold NUL. `LIVE` is `u64::MAX`: the `deleted` of an edge
//! that is still open. Every value is a prost `NsNode`.
//!
//! | key | meaning |
//! |---|---|
//! | `F B parent name NUL LIVE` | open edge; value: `object_id`, `is_dir`, `created_seq`, `deleted_seq` (0) |
//! | `G B parent name NUL deleted` | closed edge, same value with its `deleted_seq` |
//! | `R object deleted` | versioned reverse edge; value: the whole edge (bucket, `parent_id`, `name`, ...) |
//! | `C deleted object` | an edge closed at `deleted`, for garbage collection |
//! | `L B key` | the live index of object-store and legacy buckets (not FSO): value a prost `LiveObject`, the object's last known state (see `live`); written by checkpoints, not in each batch |
//! | `L` | the live index's checkpoint marker: every op through this seq is in the `L` entries |
//! | `O object` | an FSO file's last known state (see `live`) |
//! | `X seq chunk` | what an object-store or legacy op took from the live index, stored beside its event for its expansion (see `below`, format 9) |
//!
//! Closing an edge deletes its `F` key and writes its `G` key (format 3;
//! format 2 kept closed versions under `F` too). So the open children of a
//! directory are exactly its `F` keys, and "is this directory empty?" (a
//! non-recursive delete) reads the first of them, whatever history the
//! directory retains. Reads at a seq merge the two: `children_at` walks both
//! prefixes in key order (the part after the tag sorts the same), and a
//! name's version at `s` is its first `G` version closed after `s`, or else
//! its `F` one.
//!
//! An edge is valid at seq `s` when `created <= s` and (`deleted == 0` or
//! `s < deleted`): "at seq s" means after event `s` was applied. The edges
//! of one name (and of one object) never overlap in time, so they sort by
//! `deleted` in the order they were created, and the one valid at `s` is
//! the first with `deleted > s` if it was created by then: one seek (two
//! for a forward edge: `G`, then `F`).
//!
//! Keying versions by when they closed, with open edges at `LIVE`, makes
//! the two questions the writer asks on every op point lookups on keys it
//! can name: "what is at `parent/name` now?" is `F B parent name NUL LIVE`
//! and "where is object `o` now?" is `R o LIVE`. Point lookups go through
//! the bloom filters (whole keys, memtable and table files), so the common
//! answer, "nothing yet", costs no block read. The layout of format 1 kept
//! two more keys per live edge for those lookups; a create now writes two
//! keys, not four.
//!
//! # Object ids
//!
//! An op may carry the producer's `object_id`. Otherwise the ledger assigns
//! `seq << 12 | k`: `k = 0` for the object the op creates, `1, 2, ...` for
//! the parent directories it had to create on the way. Derived from seq
//! alone, so replicas agree.
//!
//! # What each op does (FSO buckets only)
//!
//! The ledger may be attached to a tree that existed before it: an op that
//! names a path the namespace has not seen (a commit, an ACL change, a
//! rename's source, a missing parent) creates it silently rather than
//! failing. The typed errors are the ones that contradict what the
//! namespace does know: `unknown_parent` (a `parent_id` that is not a live
//! directory), `already_exists` (a create over an existing path without
//! `overwrite`, a rename onto an existing path), `rename_into_subtree`,
//! `directory_not_empty` (a non-recursive delete of a directory with
//! children), and `path_gone`: a rename or delete of a path the namespace
//! saw go. Walking the path from the bucket root, the first segment with
//! no open edge decides: if a closed version of it (a `G` key) was closed
//! at a seq retention still keeps, that segment (the path, or a directory
//! above it) was deleted or renamed away, and the op is refused, with the
//! batch that holds it. "Retention still keeps" is judged as of the op
//! before, by the retention limits alone (not the cursor guard), so the
//! answer depends on the ops and not on how they were batched. Once the
//! going falls out of retention, the path is as one never seen again: it
//! is adopted, and the closed edges are collected with the op that closed
//! them. Commits, ACL and attribute changes of a gone path still adopt it
//! (an object store's later write of that key re-creates it).
//!
//! Each edge also says whether its object is in the bucket's S3 view: a
//! file unless it is `uncommitted` (made by `create_file`, or adopted by an
//! op other than a commit, and not committed since; an overwrite keeps the
//! state of the file it replaces, whose object S3 still shows until the
//! commit), a directory if it has a `marker` (a `create_directory` or a
//! commit made it explicit; one made as a missing parent has none).
//! Renames carry both. Expansions and resyncs list from them. The flags
//! default to what a ledger from before them meant (every file in the
//! view, no markers), so old ledgers need no upgrade.
//!
//! A recursive delete closes the directory's edge only (O(1)); what was
//! below it becomes unreachable and is collected with it once the delete
//! falls out of retention. A `bucket_delete` does the same for every entry
//! at the bucket's root (whatever layout the op names), and a
//! `volume_delete` for each bucket of the volume, so a bucket or volume
//! made again under the name starts empty and the old paths are known
//! gone. Edges closed before `first_seq` are removed by
//! the retention step of the append that moves `first_seq` past them.

use rocksdb::DB;

use crate::error::Result;

mod apply;
pub(crate) mod below;
mod key_order;
mod keys;
mod live;
mod query;
mod tx;
mod upgrade;

pub(crate) use apply::{apply, collect_garbage, Resolved};
pub(crate) use keys::in_s3_view;
pub(crate) use keys::CF_NS;
pub(crate) use live::object_state;
pub(crate) use live::{
    decode_live, marker as live_marker, rebuild as rebuild_live_index, rekey_markers,
    replay as replay_live, split_key as split_live_key, store_checkpoint as store_live_checkpoint,
    Overlay as LiveOverlay, CHECKPOINT_EVERY as LIVE_CHECKPOINT_EVERY, MARKER as LIVE_MARKER,
    TAG_L,
};
pub(crate) use query::live_buckets;
pub(crate) use query::node_at;
pub use query::{
    path_at, resolve_at, Child, Children, Descendants, Entry, ObjectPath, ObjectState, TreeEntry,
};
pub(crate) use tx::{merge_over, put_write, Write};
pub(crate) use tx::{Cache, Tx};
pub(crate) use upgrade::upgrade_from_format_2;

/// The first object id an op at `seq` may assign.
pub fn derived_id(seq: u64, k: u64) -> u64 {
    (seq << 12) | (k & 0xFFF)
}

/// Count of keys in CF `ns` (for tests of garbage collection).
pub fn key_count(db: &DB) -> Result<usize> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    it.status()?;
    Ok(n)
}
