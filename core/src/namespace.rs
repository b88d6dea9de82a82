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
//! children).
//!
//! A recursive delete closes the directory's edge only (O(1)); what was
//! below it becomes unreachable and is collected with it once the delete
//! falls out of retention. Edges closed before `first_seq` are removed by
//! the retention step of the append that moves `first_seq` past them.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use prost::Message;
use rocksdb::DB;

use crate::error::{Error, Result};
use crate::op::{Kind, Layout, Op};
use crate::proto::NsNode;

/// Column family of the namespace.
pub(crate) const CF_NS: &str = "ns";

const TAG_F: u8 = b'F';
const TAG_G: u8 = b'G';
const TAG_R: u8 = b'R';
const TAG_C: u8 = b'C';

/// The `deleted` of an open edge in keys.
const LIVE: u64 = u64::MAX;

fn bucket_id(volume: &str, bucket: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(volume.len() + bucket.len() + 2);
    b.extend_from_slice(volume.as_bytes());
    b.push(0);
    b.extend_from_slice(bucket.as_bytes());
    b.push(0);
    b
}

/// `tag B parent`: the edges of one directory, open (`F`) or closed (`G`).
fn dir_prefix_in(tag: u8, bucket: &[u8], parent: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + bucket.len() + 8 + 40);
    k.push(tag);
    k.extend_from_slice(bucket);
    k.extend_from_slice(&parent.to_be_bytes());
    k
}

/// `F B parent`: the open edges of one directory.
fn dir_prefix(bucket: &[u8], parent: u64) -> Vec<u8> {
    dir_prefix_in(TAG_F, bucket, parent)
}

/// `tag B parent name NUL`: the open (`F`) or closed (`G`) versions of a name.
fn name_prefix_in(tag: u8, bucket: &[u8], parent: u64, name: &str) -> Vec<u8> {
    let mut k = dir_prefix_in(tag, bucket, parent);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

/// The open edge at `parent/name` (its `deleted` is always `LIVE`).
fn f_key(bucket: &[u8], parent: u64, name: &str) -> Vec<u8> {
    let mut k = name_prefix_in(TAG_F, bucket, parent, name);
    k.extend_from_slice(&LIVE.to_be_bytes());
    k
}

/// A version of `parent/name` closed at `deleted`.
fn g_key(bucket: &[u8], parent: u64, name: &str, deleted: u64) -> Vec<u8> {
    let mut k = name_prefix_in(TAG_G, bucket, parent, name);
    k.extend_from_slice(&deleted.to_be_bytes());
    k
}

fn r_key(object: u64, deleted: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_R);
    k.extend_from_slice(&object.to_be_bytes());
    k.extend_from_slice(&deleted.to_be_bytes());
    k
}

fn c_key(deleted: u64, object: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_C);
    k.extend_from_slice(&deleted.to_be_bytes());
    k.extend_from_slice(&object.to_be_bytes());
    k
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// The `deleted` half of a versioned key (its last 8 bytes).
fn deleted_of(key: &[u8]) -> u64 {
    u64_at(key, key.len() - 8)
}

fn decode(v: &[u8]) -> Result<NsNode> {
    NsNode::decode(v).map_err(|e| Error::Corrupt(format!("namespace node: {e}")))
}

/// An F key's name: the tail after the dir prefix is `name NUL deleted`.
fn name_of(tail: &[u8]) -> Result<String> {
    if tail.len() < 9 || tail[tail.len() - 9] != 0 || tail[..tail.len() - 9].contains(&0) {
        return Err(Error::Corrupt("namespace key shape".into()));
    }
    String::from_utf8(tail[..tail.len() - 9].to_vec())
        .map_err(|_| Error::Corrupt("namespace name is not UTF-8".into()))
}

/// What an F value stores of an edge.
fn f_value(n: &NsNode) -> NsNode {
    NsNode {
        object_id: n.object_id,
        is_dir: n.is_dir,
        created_seq: n.created_seq,
        deleted_seq: n.deleted_seq,
        ..Default::default()
    }
}

/// The first object id an op at `seq` may assign.
pub fn derived_id(seq: u64, k: u64) -> u64 {
    (seq << 12) | (k & 0xFFF)
}

// ------------------------------------------------------------ write side

/// The writer's cache of open-edge lookups (`F .. LIVE` and `R .. LIVE`
/// keys), present and absent. The writer is the only one that writes the
/// namespace, so the cache stays true as long as it absorbs every batch that
/// was written and is cleared when a write fails. Two generations: when the
/// young one is full it becomes the old one, and a hit in the old one moves
/// back, so what the workload keeps touching stays (a cache that started
/// over when full missed on every hot name right after).
#[derive(Default)]
pub(crate) struct Cache {
    young: CacheMap,
    old: CacheMap,
}

/// SipHash was a tenth of the writer's time in lookups of short keys.
type CacheMap = HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>;

/// Most entries one generation of the cache holds (about 100 bytes each).
const CACHE_ENTRIES: usize = 65_536;

impl Cache {
    fn cacheable(key: &[u8]) -> bool {
        matches!(key.first(), Some(&TAG_F) | Some(&TAG_R))
            && key.len() >= 17
            && deleted_of(key) == LIVE
    }

    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.young.len() >= CACHE_ENTRIES && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    /// The cached value, decoded from the cache's own bytes.
    fn get_node(&mut self, key: &[u8]) -> Option<Result<Option<NsNode>>> {
        if let Some(v) = self.young.get(key) {
            return Some(v.as_deref().map(decode).transpose());
        }
        let (k, v) = self.old.remove_entry(key)?;
        let node = v.as_deref().map(decode).transpose();
        self.insert(k, v);
        Some(node)
    }

    /// Forget everything (after a failed write).
    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

/// A pending write: the new value, or `None` for a delete.
type Write = Option<Vec<u8>>;

/// Pending namespace writes of one group commit, over the database. Writes
/// of the request being checked can be taken back: each records what it
/// replaced. A hash map: the writer asks for single keys on every op, and
/// for a prefix in order only when it deletes a directory or collects
/// garbage; those sort the few pending keys with the prefix. (An ordered
/// map spent a tenth of the writer's time comparing long keys.)
pub(crate) struct Tx<'a> {
    db: &'a DB,
    writes: HashMap<Vec<u8>, Write, foldhash::fast::RandomState>,
    /// For the request being checked: (key, what `writes` held before).
    undo: Vec<(Vec<u8>, Option<Write>)>,
    cache: Cache,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(db: &'a DB, cache: Cache) -> Tx<'a> {
        Tx {
            db,
            // A group of 1,000 workload ops writes about 1,600 keys.
            writes: HashMap::with_capacity_and_hasher(2048, Default::default()),
            undo: Vec::new(),
            cache,
        }
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_NS).expect("cf ns")
    }

    /// The node at `key`: pending writes, then the cache, then the
    /// database. Decoded from the bytes where they lie (no copy of them).
    fn get_node(&mut self, key: &[u8]) -> Result<Option<NsNode>> {
        if let Some(v) = self.writes.get(key) {
            return v.as_deref().map(decode).transpose();
        }
        let cacheable = Cache::cacheable(key);
        if cacheable {
            if let Some(node) = self.cache.get_node(key) {
                return node;
            }
        }
        let v = self.db.get_cf(self.cf(), key)?;
        let node = v.as_deref().map(decode).transpose();
        if cacheable {
            self.cache.insert(key.to_vec(), v);
        }
        node
    }

    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let before = self.writes.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    fn put(&mut self, key: Vec<u8>, node: &NsNode) {
        self.set(key, Some(node.encode_to_vec()));
    }

    fn del(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    /// Visit every stored key with `prefix` in order (pending writes win);
    /// `f` returns false to stop.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut pending: Vec<(&Vec<u8>, &Write)> = self
            .writes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        pending.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut pend = pending.into_iter().peekable();
        let mut it = self.db.raw_iterator_cf(self.cf());
        it.seek(prefix);
        loop {
            let db_key = match it.key() {
                Some(k) if it.valid() && k.starts_with(prefix) => Some(k.to_vec()),
                _ => None,
            };
            let take_pending = match (&db_key, pend.peek()) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(d), Some((p, _))) => p.as_slice() <= d.as_slice(),
            };
            if take_pending {
                let (k, v) = pend.next().expect("peeked");
                if db_key.as_deref() == Some(k.as_slice()) {
                    it.next();
                }
                if let Some(v) = v {
                    if !f(k, v)? {
                        return Ok(());
                    }
                }
            } else {
                let k = db_key.expect("db key");
                let v = it.value().unwrap_or_default().to_vec();
                it.next();
                if !f(&k, &v)? {
                    return Ok(());
                }
            }
        }
        it.status()?;
        Ok(())
    }

    /// Keep the checked request's writes.
    pub(crate) fn accept(&mut self) {
        self.undo.clear();
    }

    /// Drop the checked request's writes.
    pub(crate) fn reject(&mut self) {
        while let Some((key, before)) = self.undo.pop() {
            match before {
                Some(v) => {
                    self.writes.insert(key, v);
                }
                None => {
                    self.writes.remove(&key);
                }
            }
        }
    }

    /// Add every accepted write to the batch. Returns the cache with those
    /// writes in it: keep it if the batch is written, clear it if not.
    pub(crate) fn write_into(mut self, batch: &mut rocksdb::WriteBatch) -> Cache {
        self.reject();
        let cf = self.db.cf_handle(CF_NS).expect("cf ns");
        let mut cache = self.cache;
        // In key order: RocksDB inserts neighbours into its memtable faster
        // than keys in hash order (75k against 80k ops/s when unsorted).
        let mut writes: Vec<(Vec<u8>, Write)> = self.writes.into_iter().collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in writes {
            match &v {
                Some(v) => batch.put_cf(cf, &k, v),
                None => batch.delete_cf(cf, &k),
            }
            if Cache::cacheable(&k) {
                cache.insert(k, v);
            }
        }
        cache
    }

    /// The open edge at `parent/name`, as its F value holds it (object id,
    /// is_dir, created): enough to walk through a directory.
    fn live_slim(&mut self, b: &[u8], parent: u64, name: &str) -> Result<Option<NsNode>> {
        self.get_node(&f_key(b, parent, name))
    }

    /// The open edge at `parent/name`, if any.
    fn live(&mut self, op: &Op, b: &[u8], parent: u64, name: &str) -> Result<Option<NsNode>> {
        Ok(self.live_slim(b, parent, name)?.map(|mut n| {
            n.volume = op.volume.clone();
            n.bucket = op.bucket.clone();
            n.parent_id = parent;
            n.name = name.to_string();
            n
        }))
    }

    /// The open edge of `object`, if any.
    fn place(&mut self, object: u64) -> Result<Option<NsNode>> {
        self.get_node(&r_key(object, LIVE))
    }

    /// Whether `dir` has an open child: its first `F` key, if any. Closed
    /// versions live under `G`, so however much history the directory
    /// retains, this reads one key (format 2 walked every closed version).
    fn has_live_children(&self, bucket: &[u8], dir: u64) -> Result<bool> {
        let mut found = false;
        self.scan_prefix(&dir_prefix(bucket, dir), |_, _| {
            found = true;
            Ok(false)
        })?;
        Ok(found)
    }

    /// Open a live edge `(parent, name) -> object` at `seq`; returns it.
    fn open_edge(
        &mut self,
        op: &Op,
        parent: u64,
        name: &str,
        object: u64,
        is_dir: bool,
        seq: u64,
    ) -> NsNode {
        let b = bucket_id(&op.volume, &op.bucket);
        let node = NsNode {
            volume: op.volume.clone(),
            bucket: op.bucket.clone(),
            parent_id: parent,
            name: name.to_string(),
            object_id: object,
            is_dir,
            created_seq: seq,
            deleted_seq: 0,
        };
        self.put(f_key(&b, parent, name), &f_value(&node));
        self.put(r_key(object, LIVE), &node);
        node
    }

    /// Close the live edge described by `live` at `seq`: its versions move
    /// from `LIVE` to `seq` (the forward one from `F` to `G`).
    fn close_edge(&mut self, live: &NsNode, seq: u64) {
        let b = bucket_id(&live.volume, &live.bucket);
        let mut closed = live.clone();
        closed.deleted_seq = seq;
        self.del(f_key(&b, live.parent_id, &live.name));
        self.put(
            g_key(&b, live.parent_id, &live.name, seq),
            &f_value(&closed),
        );
        self.del(r_key(live.object_id, LIVE));
        self.put(r_key(live.object_id, seq), &closed);
        self.put(c_key(seq, live.object_id), &NsNode::default());
    }

    /// The live path (key within its bucket) of a live object.
    fn live_path(&mut self, object: u64, index: usize) -> Result<(NsNode, String)> {
        let unknown = || Error::UnknownParent {
            index,
            parent_id: object,
        };
        let node = self.place(object)?.ok_or_else(unknown)?;
        let mut parts = vec![node.name.clone()];
        let mut parent = node.parent_id;
        let mut guard = 0;
        while parent != 0 {
            let p = self.place(parent)?.ok_or_else(unknown)?;
            parts.push(p.name.clone());
            parent = p.parent_id;
            guard += 1;
            if guard > 4096 {
                return Err(Error::Corrupt("namespace cycle".into()));
            }
        }
        parts.reverse();
        Ok((node, parts.join("/")))
    }

    /// Walk `dirs` from the bucket root, creating missing directories.
    /// Returns the id of the last one (0: the root) and the ids walked.
    fn ensure_dirs(
        &mut self,
        op: &Op,
        dirs: &[&str],
        seq: u64,
        next_k: &mut u64,
        index: usize,
    ) -> Result<(u64, Vec<u64>)> {
        let b = bucket_id(&op.volume, &op.bucket);
        let mut parent = 0u64;
        let mut walked = Vec::with_capacity(dirs.len());
        for (i, name) in dirs.iter().enumerate() {
            match self.live_slim(&b, parent, name)? {
                Some(n) if n.is_dir => parent = n.object_id,
                Some(_) => {
                    return Err(Error::InvalidOp {
                        index,
                        reason: format!("`{}` is a file, not a directory", dirs[..=i].join("/")),
                    })
                }
                None => {
                    let id = derived_id(seq, *next_k);
                    *next_k += 1;
                    self.open_edge(op, parent, name, id, true, seq);
                    parent = id;
                }
            }
            walked.push(parent);
        }
        Ok((parent, walked))
    }

    /// Find the object at `key`, creating it (and its parents) when the
    /// namespace has not seen it. Returns its live node.
    fn find_or_adopt(
        &mut self,
        op: &Op,
        key: &str,
        is_dir: bool,
        seq: u64,
        next_k: &mut u64,
        index: usize,
    ) -> Result<NsNode> {
        let parts: Vec<&str> = key.split('/').collect();
        let (name, dirs) = parts.split_last().expect("non-empty key");
        let (parent, _) = self.ensure_dirs(op, dirs, seq, next_k, index)?;
        let b = bucket_id(&op.volume, &op.bucket);
        if let Some(n) = self.live(op, &b, parent, name)? {
            return Ok(n);
        }
        let id = op.object_id.unwrap_or(derived_id(seq, 0));
        Ok(self.open_edge(op, parent, name, id, is_dir, seq))
    }
}

/// What the namespace resolved for one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub path: String,
    pub to_path: String,
    pub object_id: Option<u64>,
    pub is_dir: bool,
}

/// The key an op names: `key`, or the live path of directory `parent` (0:
/// the bucket root) joined with `name`.
fn key_of(
    tx: &mut Tx<'_>,
    op: &Op,
    parent: Option<u64>,
    key: &str,
    name: &str,
    index: usize,
) -> Result<String> {
    match parent {
        None => Ok(key.to_string()),
        Some(0) => Ok(name.to_string()),
        Some(p) => {
            let (node, path) = tx.live_path(p, index)?;
            if !node.is_dir || node.volume != op.volume || node.bucket != op.bucket {
                return Err(Error::UnknownParent {
                    index,
                    parent_id: p,
                });
            }
            Ok(format!("{path}/{name}"))
        }
    }
}

/// Apply one op to the namespace at `seq`. Non-FSO ops pass through.
pub(crate) fn apply(tx: &mut Tx<'_>, op: &Op, seq: u64, index: usize) -> Result<Resolved> {
    let plain = || Resolved {
        path: op.key.clone(),
        to_path: match &op.kind {
            Some(Kind::Rename(r)) => r.to_key.clone(),
            _ => String::new(),
        },
        object_id: op.object_id,
        is_dir: op.is_dir,
    };
    let kind = op.kind.as_ref().expect("validated op has a kind");
    if op.layout_enum() != Layout::Fso
        || op.bucket.is_empty()
        || matches!(
            kind,
            Kind::BucketCreate(_)
                | Kind::BucketDelete(_)
                | Kind::VolumeCreate(_)
                | Kind::VolumeDelete(_)
        )
    {
        return Ok(plain());
    }
    // The key: given, or the parent's live path + name.
    let key = key_of(tx, op, op.parent_id, &op.key, &op.name, index)?;
    let b = bucket_id(&op.volume, &op.bucket);
    let mut next_k = 1u64;
    let parts: Vec<&str> = key.split('/').collect();
    let (name, dirs) = parts.split_last().expect("non-empty key");
    let mut out = Resolved {
        path: key.clone(),
        to_path: String::new(),
        object_id: op.object_id,
        is_dir: op.is_dir,
    };
    match kind {
        Kind::CreateDirectory(_) => {
            let (parent, _) = tx.ensure_dirs(op, dirs, seq, &mut next_k, index)?;
            match tx.live(op, &b, parent, name)? {
                Some(n) if n.is_dir => out.object_id = Some(n.object_id),
                Some(_) => {
                    return Err(Error::AlreadyExists { index, path: key });
                }
                None => {
                    let id = op.object_id.unwrap_or(derived_id(seq, 0));
                    tx.open_edge(op, parent, name, id, true, seq);
                    out.object_id = Some(id);
                }
            }
            out.is_dir = true;
        }
        Kind::CreateFile(c) => {
            let (parent, _) = tx.ensure_dirs(op, dirs, seq, &mut next_k, index)?;
            if let Some(existing) = tx.live(op, &b, parent, name)? {
                if !c.overwrite || existing.is_dir {
                    return Err(Error::AlreadyExists { index, path: key });
                }
                tx.close_edge(&existing, seq);
            }
            let id = op.object_id.unwrap_or(derived_id(seq, 0));
            tx.open_edge(op, parent, name, id, op.is_dir, seq);
            out.object_id = Some(id);
        }
        Kind::Delete(d) => {
            let (parent, _) = tx.ensure_dirs(op, dirs, seq, &mut next_k, index)?;
            if let Some(existing) = tx.live(op, &b, parent, name)? {
                if existing.is_dir
                    && !d.recursive
                    && tx.has_live_children(&b, existing.object_id)?
                {
                    return Err(Error::DirectoryNotEmpty { index, path: key });
                }
                tx.close_edge(&existing, seq);
                out.object_id = Some(existing.object_id);
                out.is_dir = existing.is_dir;
            }
        }
        Kind::Rename(r) => {
            let src = tx.find_or_adopt(op, &key, op.is_dir, seq, &mut next_k, index)?;
            let to_key = key_of(tx, op, r.to_parent_id, &r.to_key, &r.to_name, index)?;
            if to_key == key {
                return Err(Error::RenameToSelf { index });
            }
            let to_parts: Vec<&str> = to_key.split('/').collect();
            let (to_name, to_dirs) = to_parts.split_last().expect("non-empty key");
            let (to_parent, walked) = tx.ensure_dirs(op, to_dirs, seq, &mut next_k, index)?;
            if walked.contains(&src.object_id) {
                return Err(Error::RenameIntoSubtree {
                    index,
                    from: key,
                    to: to_key,
                });
            }
            if tx.live(op, &b, to_parent, to_name)?.is_some() {
                return Err(Error::AlreadyExists {
                    index,
                    path: to_key,
                });
            }
            tx.close_edge(&src, seq);
            tx.open_edge(op, to_parent, to_name, src.object_id, src.is_dir, seq);
            out.to_path = to_key;
            out.object_id = Some(src.object_id);
            out.is_dir = src.is_dir;
        }
        _ => {
            // Commit, append, truncate, ACLs, times, attributes: the object
            // is there (adopted if the namespace never saw it).
            let node = tx.find_or_adopt(op, &key, op.is_dir, seq, &mut next_k, index)?;
            out.object_id = Some(node.object_id);
            out.is_dir = node.is_dir;
        }
    }
    Ok(out)
}

/// Remove every edge closed before `first` (and what hung below a deleted
/// directory). Called by the writer's retention step, in the same batch.
pub(crate) fn collect_garbage(tx: &mut Tx<'_>, first: u64) -> Result<()> {
    let mut closed = Vec::new();
    tx.scan_prefix(&[TAG_C], |k, _| {
        let deleted = u64_at(k, 1);
        if deleted >= first {
            return Ok(false);
        }
        closed.push((k.to_vec(), deleted, u64_at(k, 9)));
        Ok(true)
    })?;
    for (ckey, deleted, object) in closed {
        tx.del(ckey);
        let Some(node) = tx.get_node(&r_key(object, deleted))? else {
            continue;
        };
        let b = bucket_id(&node.volume, &node.bucket);
        tx.del(r_key(object, deleted));
        tx.del(g_key(&b, node.parent_id, &node.name, deleted));
        // A deleted directory: collect what was below it, at every version.
        if node.is_dir && tx.place(object)?.is_none() {
            drop_subtree(tx, &b, object)?;
        }
    }
    Ok(())
}

/// Remove every edge below `dir`, whose own edge is gone. Edges below it
/// that closed earlier were collected (or are collected in this pass: their
/// `C` keys come first); open ones are unreachable, and so is what hangs
/// below the open directories among them.
fn drop_subtree(tx: &mut Tx<'_>, b: &[u8], dir: u64) -> Result<()> {
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let mut entries = Vec::new();
        for tag in [TAG_F, TAG_G] {
            tx.scan_prefix(&dir_prefix_in(tag, b, d), |k, v| {
                entries.push((k.to_vec(), decode(v)?));
                Ok(true)
            })?;
        }
        for (fk, node) in entries {
            let deleted = deleted_of(&fk);
            tx.del(fk);
            tx.del(r_key(node.object_id, deleted));
            if deleted != LIVE {
                tx.del(c_key(deleted, node.object_id));
            } else if node.is_dir {
                stack.push(node.object_id);
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------ read side

/// Where an object was at some seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// Volume.
    pub volume: String,
    /// Bucket.
    pub bucket: String,
    /// Key within the bucket.
    pub key: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// One child of a directory at some seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Name within the directory.
    pub name: String,
    /// Object id.
    pub object_id: u64,
    /// True for a directory.
    pub is_dir: bool,
}

fn valid_at(n: &NsNode, seq: u64) -> bool {
    n.created_seq <= seq && (n.deleted_seq == 0 || seq < n.deleted_seq)
}

/// The reverse edge of `object` valid at `seq`, with an iterator the caller
/// reuses (creating one per lookup was most of `path_at`'s cost): the first
/// version that closed after `seq`, if it was open by then.
fn reverse_at(
    it: &mut rocksdb::DBRawIteratorWithThreadMode<'_, DB>,
    object: u64,
    seq: u64,
) -> Result<Option<NsNode>> {
    it.seek(r_key(object, seq.saturating_add(1)));
    if !it.valid() {
        it.status()?;
        return Ok(None);
    }
    let k = it.key().unwrap_or_default();
    if k.len() != 17 || k[0] != TAG_R || u64_at(k, 1) != object {
        return Ok(None);
    }
    let n = decode(it.value().unwrap_or_default())?;
    Ok(valid_at(&n, seq).then_some(n))
}

/// The path of `object` at `seq`, if it existed then.
pub fn path_at(db: &DB, object: u64, seq: u64) -> Result<Option<ObjectPath>> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    let Some(node) = reverse_at(&mut it, object, seq)? else {
        return Ok(None);
    };
    let mut parts = vec![node.name.clone()];
    let mut parent = node.parent_id;
    let mut guard = 0;
    while parent != 0 {
        let Some(p) = reverse_at(&mut it, parent, seq)? else {
            return Ok(None);
        };
        parts.push(p.name);
        parent = p.parent_id;
        guard += 1;
        if guard > 4096 {
            return Err(Error::Corrupt("namespace cycle".into()));
        }
    }
    parts.reverse();
    Ok(Some(ObjectPath {
        volume: node.volume,
        bucket: node.bucket,
        key: parts.join("/"),
        is_dir: node.is_dir,
    }))
}

/// The object at `key` in a bucket at `seq`.
pub fn resolve_at(
    db: &DB,
    volume: &str,
    bucket: &str,
    key: &str,
    seq: u64,
) -> Result<Option<(u64, bool)>> {
    let b = bucket_id(volume, bucket);
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut parent = 0u64;
    let mut found = None;
    let mut it = db.raw_iterator_cf(cf);
    for name in key.split('/') {
        // The first closed version of the name that closed after `seq`, or
        // else the open one.
        let prefix = name_prefix_in(TAG_G, &b, parent, name);
        let mut key = prefix.clone();
        key.extend_from_slice(&seq.saturating_add(1).to_be_bytes());
        it.seek(&key);
        let mut hit = match it.key() {
            Some(k) if it.valid() && k.starts_with(&prefix) && k.len() == prefix.len() + 8 => {
                Some(decode(it.value().unwrap_or_default())?)
            }
            _ => None,
        };
        if hit.is_none() {
            let open = f_key(&b, parent, name);
            it.seek(&open);
            if it.valid() && it.key() == Some(open.as_slice()) {
                hit = Some(decode(it.value().unwrap_or_default())?);
            }
        }
        it.status()?;
        let Some(n) = hit.filter(|n| valid_at(n, seq)) else {
            return Ok(None);
        };
        parent = n.object_id;
        found = Some((n.object_id, n.is_dir));
    }
    Ok(found)
}

/// Children of a directory at a seq, in name order, read in chunks so that
/// memory does not grow with the directory.
///
/// It holds the database weakly: once the ledger is closed, the next chunk
/// fails with `ledger_closed`, and an iterator left alive does not keep the
/// database (and its lock) open.
pub struct Children {
    db: Weak<DB>,
    /// `B dir`: the key after its tag, open (`F`) and closed (`G`) alike.
    prefix: Vec<u8>,
    /// Where the next chunk starts, without the tag.
    next_key: Vec<u8>,
    seq: u64,
    buf: std::collections::VecDeque<Child>,
    done: bool,
}

const CHUNK: usize = 256;

impl Children {
    pub(crate) fn new(db: &Arc<DB>, volume: &str, bucket: &str, dir: u64, seq: u64) -> Children {
        let prefix = dir_prefix(&bucket_id(volume, bucket), dir)[1..].to_vec();
        Children {
            db: Arc::downgrade(db),
            next_key: prefix.clone(),
            prefix,
            seq,
            buf: Default::default(),
            done: false,
        }
    }

    /// The next chunk: the open and the closed versions of the directory's
    /// names, merged in key order (both keep `name NUL deleted` after the
    /// tag), keeping those valid at `seq`.
    fn fill(&mut self) -> Result<()> {
        let db = self.db.upgrade().ok_or(Error::LedgerClosed)?;
        let cf = db.cf_handle(CF_NS).expect("cf ns");
        let seek = |tag: u8| {
            let mut it = db.raw_iterator_cf(cf);
            let mut k = Vec::with_capacity(1 + self.next_key.len());
            k.push(tag);
            k.extend_from_slice(&self.next_key);
            it.seek(&k);
            it
        };
        let (mut open, mut closed) = (seek(TAG_F), seek(TAG_G));
        // The key of `it` after its tag, while it is in the directory (an
        // `F` iterator past the directory may stand on a `G` key).
        fn body<'k>(
            it: &'k rocksdb::DBRawIteratorWithThreadMode<'_, DB>,
            tag: u8,
            prefix: &[u8],
        ) -> Option<&'k [u8]> {
            it.key()
                .filter(|k| it.valid() && k.first() == Some(&tag) && k[1..].starts_with(prefix))
                .map(|k| &k[1..])
        }
        let mut scanned = 0;
        while scanned < CHUNK * 4 && self.buf.len() < CHUNK {
            let take_closed = match (
                body(&open, TAG_F, &self.prefix),
                body(&closed, TAG_G, &self.prefix),
            ) {
                (None, None) => {
                    open.status()?;
                    closed.status()?;
                    self.done = true;
                    break;
                }
                (Some(o), Some(c)) => c < o,
                (Some(_), None) => false,
                (None, Some(_)) => true,
            };
            let it = if take_closed { &mut closed } else { &mut open };
            let k = &it.key().expect("in the directory")[1..];
            let n = decode(it.value().unwrap_or_default())?;
            if valid_at(&n, self.seq) {
                let name = name_of(&k[self.prefix.len()..])?;
                self.buf.push_back(Child {
                    name,
                    object_id: n.object_id,
                    is_dir: n.is_dir,
                });
            }
            // Resume after this key: the buffer is reused, nothing allocated.
            self.next_key.clear();
            self.next_key.extend_from_slice(k);
            self.next_key.push(0);
            scanned += 1;
            it.next();
        }
        Ok(())
    }
}

impl Iterator for Children {
    type Item = Result<Child>;

    fn next(&mut self) -> Option<Result<Child>> {
        while self.buf.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buf.pop_front().map(Ok)
    }
}

/// Every file below a directory at a seq, depth first in name order, with
/// its path relative to the directory. Memory grows with depth, not size.
/// Like [`Children`], it holds the database weakly.
pub struct Descendants {
    db: Weak<DB>,
    volume: String,
    bucket: String,
    seq: u64,
    stack: Vec<(String, Children)>,
}

impl Descendants {
    pub(crate) fn new(db: &Arc<DB>, volume: &str, bucket: &str, dir: u64, seq: u64) -> Descendants {
        let root = Children::new(db, volume, bucket, dir, seq);
        Descendants {
            db: Arc::downgrade(db),
            volume: volume.to_string(),
            bucket: bucket.to_string(),
            seq,
            stack: vec![(String::new(), root)],
        }
    }
}

impl Iterator for Descendants {
    /// (relative path, object id)
    type Item = Result<(String, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (prefix, it) = self.stack.last_mut()?;
            match it.next() {
                None => {
                    self.stack.pop();
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(c)) => {
                    let rel = if prefix.is_empty() {
                        c.name.clone()
                    } else {
                        format!("{prefix}/{}", c.name)
                    };
                    if c.is_dir {
                        let Some(db) = self.db.upgrade() else {
                            return Some(Err(Error::LedgerClosed));
                        };
                        let ch =
                            Children::new(&db, &self.volume, &self.bucket, c.object_id, self.seq);
                        self.stack.push((rel, ch));
                    } else {
                        return Some(Ok((rel, c.object_id)));
                    }
                }
            }
        }
    }
}

/// Buckets with open edges in the namespace (volume, bucket), one seek each.
pub(crate) fn live_buckets(db: &DB) -> Result<Vec<(String, String)>> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut out = Vec::new();
    let mut it = db.raw_iterator_cf(cf);
    it.seek([TAG_F]);
    while it.valid() {
        let k = it.key().unwrap_or_default();
        if k.first() != Some(&TAG_F) {
            break;
        }
        let mut parts = k[1..].splitn(3, |b| *b == 0);
        let (Some(v), Some(b), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Corrupt("namespace key without bucket".into()));
        };
        let text = |x: &[u8]| {
            String::from_utf8(x.to_vec())
                .map_err(|_| Error::Corrupt("namespace bucket is not UTF-8".into()))
        };
        let (volume, bucket) = (text(v)?, text(b)?);
        // Skip to the next bucket: the successor of `B` (its last byte is NUL).
        let mut next = vec![TAG_F];
        next.extend_from_slice(&bucket_id(&volume, &bucket));
        *next.last_mut().expect("bucket id") = 1;
        out.push((volume, bucket));
        it.seek(&next);
    }
    it.status()?;
    Ok(out)
}

/// Upgrade a format 2 namespace in place: move every closed forward edge
/// from `F` to `G` (same key after the tag, same value). In batches of
/// 10,000 edges (a put and a delete each); a crash midway leaves format 2 on
/// disk, and the next writable open moves what is left. Returns how many
/// edges moved.
pub(crate) fn upgrade_from_format_2(db: &DB) -> Result<u64> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    it.seek([TAG_F]);
    let mut batch = rocksdb::WriteBatch::default();
    let mut moved = 0u64;
    while it.valid() {
        let k = it.key().unwrap_or_default();
        if k.first() != Some(&TAG_F) {
            break;
        }
        if k.len() >= 9 && deleted_of(k) != LIVE {
            let mut g = k.to_vec();
            g[0] = TAG_G;
            batch.put_cf(cf, &g, it.value().unwrap_or_default());
            batch.delete_cf(cf, k);
            moved += 1;
            if batch.len() >= 20_000 {
                db.write(std::mem::take(&mut batch))?;
            }
        }
        it.next();
    }
    it.status()?;
    db.write(batch)?;
    Ok(moved)
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
