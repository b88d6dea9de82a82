//! The write side: a transaction over the namespace inside the append's batch, with its read cache.

use std::collections::HashMap;

use rocksdb::DB;

use super::keys::*;
use super::*;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::proto::NsNode;

/// The writer's cache of open-edge lookups (`F .. LIVE` and `R .. LIVE`
/// keys) and live index entries (`L` keys), present and absent. The writer is the only one that writes the
/// namespace, so the cache stays true as long as it absorbs every batch that
/// was written and is cleared when a write fails. Two generations: when the
/// young one is full it becomes the old one, and a hit in the old one moves
/// back, so what the workload keeps touching stays (a cache that started
/// over when full missed on every hot name right after).
#[derive(Default)]
pub(crate) struct Cache {
    pub(super) young: CacheMap,
    pub(super) old: CacheMap,
    /// The live index's writes since its last checkpoint (not a cache:
    /// what the stored index lacks; `clear` keeps it).
    pub(crate) live: super::live::Overlay,
}

/// SipHash was a tenth of the writer's time in lookups of short keys.
pub(super) type CacheMap = HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>;

/// Most entries one generation of the cache holds (about 100 bytes each).
pub(super) const CACHE_ENTRIES: usize = 65_536;

impl Cache {
    pub(super) fn cacheable(key: &[u8]) -> bool {
        match key.first() {
            Some(&TAG_F) | Some(&TAG_R) => key.len() >= 17 && deleted_of(key) == LIVE,
            // The live index's entries (`namespace::live`).
            Some(&super::live::TAG_L) | Some(&super::live::TAG_O) => true,
            _ => false,
        }
    }

    /// The cached raw value, if cached.
    pub(super) fn get_bytes(&mut self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(v) = self.young.get(key) {
            return Some(v.clone());
        }
        let (k, v) = self.old.remove_entry(key)?;
        self.insert(k, v.clone());
        Some(v)
    }

    pub(super) fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.young.len() >= CACHE_ENTRIES && !self.young.contains_key(&key) {
            // The old generation's table becomes the young one, emptied: a
            // young generation grown from nothing rehashed its entries on
            // the way to full (3.6% of the demo mix's append samples).
            let mut recycled = std::mem::take(&mut self.old);
            recycled.clear();
            self.old = std::mem::replace(&mut self.young, recycled);
        }
        self.young.insert(key, value);
    }

    /// The cached value, decoded from the cache's own bytes.
    pub(super) fn get_node(&mut self, key: &[u8]) -> Option<Result<Option<NsNode>>> {
        if let Some(v) = self.young.get(key) {
            return Some(v.as_deref().map(decode).transpose());
        }
        let (k, v) = self.old.remove_entry(key)?;
        let node = v.as_deref().map(decode).transpose();
        self.insert(k, v);
        Some(node)
    }

    /// Forget what the cache knew of `keys` (the overlay's entries, once a
    /// checkpoint stored them: the cache may hold what was read before).
    pub(crate) fn forget<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) {
        for k in keys {
            self.young.remove(k);
            self.old.remove(k);
        }
    }

    /// Forget every cached lookup (after a failed write). The overlay
    /// stays: it holds only writes that were written.
    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

/// A pending write: the new value, or `None` for a delete.
pub(crate) type Write = Option<Vec<u8>>;

/// Add `write` of `key` to `batch`: a put, or a delete for `None`.
pub(crate) fn put_write(
    batch: &mut rocksdb::WriteBatch,
    cf: &rocksdb::ColumnFamily,
    key: &[u8],
    write: &Write,
) {
    match write {
        Some(v) => batch.put_cf(cf, key, v),
        None => batch.delete_cf(cf, key),
    }
}

/// Pending namespace writes of one group commit, over the database. Writes
/// of the request being checked can be taken back: each records what it
/// replaced. A hash map: the writer asks for single keys on every op, and
/// for a prefix in order only when it deletes a directory or collects
/// garbage; those sort the few pending keys with the prefix. (An ordered
/// map spent a tenth of the writer's time comparing long keys.)
pub(crate) struct Tx<'a> {
    pub(super) db: &'a DB,
    pub(crate) writes: super::live::Writes,
    /// For the request being checked: (key, what `writes` held before).
    pub(super) undo: Vec<(Vec<u8>, Option<Write>)>,
    /// No request with writes accepted yet: every pending write is the
    /// checked request's, so dropping it empties `writes`, and no undo is
    /// recorded (a copy of every key written: 3% of an object-store
    /// append). The first request of every group, and most groups' only
    /// one.
    fresh: bool,
    pub(super) cache: Cache,
    /// Where lookups build their key (no allocation per lookup).
    key_buf: Vec<u8>,
    /// Where `dir_paths` lookups build theirs.
    path_buf: Vec<u8>,
    /// Directory paths walked in this group commit: `B` and the path's
    /// segments joined by `/` -> what [`Tx::ensure_dirs`] returned for
    /// them. A group's ops mostly name a few directories again and again;
    /// each walk was a lookup (key built, hashed, node decoded) per
    /// segment. Emptied when a directory's edge closes (a rename or delete
    /// moves or ends every path below it) and when a request is dropped
    /// (it may have made the directories); it lives as long as the `Tx`.
    dir_paths: HashMap<Vec<u8>, (u64, Vec<u64>), foldhash::fast::RandomState>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(db: &'a DB, cache: Cache) -> Tx<'a> {
        Tx::for_ops(db, cache, 1024)
    }

    /// A transaction for a group of `ops` ops. The table of pending writes
    /// is sized for them: made at 2,048 entries for every group, it was
    /// 7% of a single-op append's instructions (allocated and its control
    /// bytes set each time).
    pub(crate) fn for_ops(db: &'a DB, cache: Cache, ops: usize) -> Tx<'a> {
        Tx {
            db,
            // A group of 1,000 workload ops writes about 1,600 keys.
            writes: HashMap::with_capacity_and_hasher(
                ops.saturating_mul(2).clamp(16, 2048),
                Default::default(),
            ),
            undo: Vec::new(),
            fresh: true,
            cache,
            key_buf: Vec::new(),
            path_buf: Vec::new(),
            dir_paths: HashMap::default(),
        }
    }

    pub(super) fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_NS).expect("cf ns")
    }

    /// The node at `key`: pending writes, then the cache, then the
    /// database. Decoded from the bytes where they lie (no copy of them).
    pub(super) fn get_node(&mut self, key: &[u8]) -> Result<Option<NsNode>> {
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

    /// The raw value at `key`: pending writes, then the database (keys the
    /// cache does not keep).
    pub(super) fn get_raw(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        // Only `L` keys are in the overlay.
        if key.first() == Some(&super::live::TAG_L) {
            if let Some(v) = self.cache.live.get(key) {
                return Ok(v.clone());
            }
        }
        let cacheable = Cache::cacheable(key);
        if cacheable {
            if let Some(v) = self.cache.get_bytes(key) {
                return Ok(v);
            }
        }
        let v = self.db.get_cf(self.cf(), key)?;
        if cacheable {
            self.cache.insert(key.to_vec(), v.clone());
        }
        Ok(v)
    }

    pub(super) fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.fresh {
            self.writes.insert(key, value);
            return;
        }
        let before = self.writes.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    pub(super) fn put(&mut self, key: Vec<u8>, node: &NsNode) {
        self.set(key, Some(encode_node(node)));
    }

    pub(super) fn del(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    /// Visit every stored key with `prefix` in order (pending writes win,
    /// then the live index's overlay); `f` returns false to stop.
    pub(super) fn scan_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut pending: Vec<(&Vec<u8>, &Write)> = self
            .writes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        // The overlay holds only `L` keys: scanned for those alone.
        if prefix.first() == Some(&super::live::TAG_L) {
            pending.extend(self.cache.live.under(prefix, &self.writes));
        }
        pending.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut it = self.db.raw_iterator_cf(self.cf());
        it.seek(prefix);
        merge_over(
            &mut it,
            |k| k.starts_with(prefix),
            pending.into_iter().map(|(k, v)| (k.as_slice(), v)),
            |k, v| match v {
                Some(v) => f(k, v),
                None => Ok(true),
            },
        )
    }

    /// Keep the checked request's writes.
    pub(crate) fn accept(&mut self) {
        self.undo.clear();
        if !self.writes.is_empty() {
            self.fresh = false;
        }
    }

    /// Drop the checked request's writes.
    pub(crate) fn reject(&mut self) {
        if self.fresh {
            if !self.writes.is_empty() {
                self.writes.clear();
                self.dir_paths.clear();
            }
            return;
        }
        // The walks it cached may name directories it made.
        if !self.undo.is_empty() {
            self.dir_paths.clear();
        }
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

    /// Add every accepted write to the batch, but the live index's (`L`
    /// keys), returned in no particular order for the writer's overlay (a
    /// hash map; a checkpoint sorts what it stores). Returns the cache with
    /// the others in it: keep it if the batch is written, clear it if not.
    pub(crate) fn write_into(
        mut self,
        batch: &mut rocksdb::WriteBatch,
    ) -> (Cache, Vec<(Vec<u8>, Write)>) {
        self.reject();
        let cf = self.db.cf_handle(CF_NS).expect("cf ns");
        let mut cache = self.cache;
        // The overlay answers for the live index's writes until a
        // checkpoint stores them (which drops what the cache knew of them:
        // `Cache::forget`). They are not sorted: sorting them was 6.6% of
        // an object-store append's instructions, for a hash map.
        let mut live = Vec::with_capacity(self.writes.len());
        let mut writes = Vec::with_capacity(self.writes.len());
        for (k, v) in self.writes {
            if k.first() == Some(&super::live::TAG_L) {
                live.push((k, v));
            } else {
                writes.push((k, v));
            }
        }
        // In key order: RocksDB inserts neighbours into its memtable faster
        // than keys in hash order (75k against 80k ops/s when unsorted).
        // Sorted on integers past the keys' shared prefixes (`key_order`).
        let order = super::key_order::key_order(&writes, |w| w.0.as_slice());
        for i in order {
            let (k, v) = std::mem::take(&mut writes[i as usize]);
            put_write(batch, cf, &k, &v);
            if Cache::cacheable(&k) {
                cache.insert(k, v);
            }
        }
        (cache, live)
    }

    /// The open edge at `parent/name`, as its F value holds it (object id,
    /// is_dir, created): enough to walk through a directory.
    pub(super) fn live_slim(
        &mut self,
        b: &[u8],
        parent: u64,
        name: &str,
    ) -> Result<Option<NsNode>> {
        let mut k = std::mem::take(&mut self.key_buf);
        f_key_into(&mut k, b, parent, name);
        let node = self.get_node(&k);
        self.key_buf = k;
        node
    }

    /// The open edge at `parent/name` of the op's bucket, if any.
    pub(super) fn live(
        &mut self,
        op: &Op,
        b: &[u8],
        parent: u64,
        name: &str,
    ) -> Result<Option<NsNode>> {
        self.live_in(&op.volume, &op.bucket, b, parent, name)
    }

    /// The open edge at `parent/name` of `volume/bucket` (`b` its id), if any.
    pub(super) fn live_in(
        &mut self,
        volume: &str,
        bucket: &str,
        b: &[u8],
        parent: u64,
        name: &str,
    ) -> Result<Option<NsNode>> {
        Ok(self.live_slim(b, parent, name)?.map(|mut n| {
            n.volume = volume.to_string();
            n.bucket = bucket.to_string();
            n.parent_id = parent;
            n.name = name.to_string();
            n
        }))
    }

    /// The open edge of `object`, if any.
    pub(super) fn place(&mut self, object: u64) -> Result<Option<NsNode>> {
        self.get_node(&r_key(object, LIVE))
    }

    /// Whether `dir` has an open child: its first `F` key, if any. Closed
    /// versions live under `G`, so however much history the directory
    /// retains, this reads one key (format 2 walked every closed version).
    pub(super) fn has_live_children(&self, bucket: &[u8], dir: u64) -> Result<bool> {
        let mut found = false;
        self.scan_prefix(&dir_prefix(bucket, dir), |_, _| {
            found = true;
            Ok(false)
        })?;
        Ok(found)
    }

    /// Open a live edge `(parent, name) -> object` at `seq` (`listed`: in
    /// the S3 view); returns it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_edge(
        &mut self,
        op: &Op,
        b: &[u8],
        parent: u64,
        name: &str,
        object: u64,
        is_dir: bool,
        seq: u64,
        listed: bool,
    ) -> NsNode {
        let node = NsNode {
            volume: op.volume.clone(),
            bucket: op.bucket.clone(),
            parent_id: parent,
            name: name.to_string(),
            object_id: object,
            is_dir,
            created_seq: seq,
            deleted_seq: 0,
            ..Default::default()
        };
        let mut node = node;
        set_in_s3_view(&mut node, listed);
        self.put(f_key(b, parent, name), &f_value(&node));
        self.put(r_key(object, LIVE), &node);
        node
    }

    /// Put the live edge described by `live` in the S3 view (a commit named
    /// it, or a create_directory made the directory explicit). Only its `F`
    /// value is rewritten: while an edge is open its `F` value is what
    /// says whether it is listed (listings and lookups read it, and closing
    /// the edge copies it into the closed versions); the open `R` version's
    /// flag is the one the edge was opened with. One write per commit of a
    /// created file, not two.
    pub(super) fn list(&mut self, b: &[u8], live: &NsNode) {
        if in_s3_view(live) {
            return;
        }
        let mut n = f_value(live);
        set_in_s3_view(&mut n, true);
        self.put(f_key(b, live.parent_id, &live.name), &n);
    }

    /// Close the live edge described by `live` at `seq`: its versions move
    /// from `LIVE` to `seq` (the forward one from `F` to `G`).
    pub(super) fn close_edge(&mut self, b: &[u8], live: &NsNode, seq: u64) {
        if live.is_dir {
            // Every path below it moves or goes.
            self.dir_paths.clear();
        }
        let mut closed = live.clone();
        closed.deleted_seq = seq;
        self.del(f_key(b, live.parent_id, &live.name));
        self.put(g_key(b, live.parent_id, &live.name, seq), &f_value(&closed));
        self.del(r_key(live.object_id, LIVE));
        self.put(r_key(live.object_id, seq), &closed);
        self.put(c_key(seq, live.object_id), &NsNode::default());
    }

    /// The live path (key within its bucket) of a live object.
    pub(super) fn live_path(&mut self, object: u64, index: usize) -> Result<(NsNode, String)> {
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
    /// A path walked before in this group is answered from `dir_paths`.
    pub(super) fn ensure_dirs(
        &mut self,
        op: &Op,
        b: &[u8],
        dirs: &str,
        seq: u64,
        next_k: &mut u64,
        index: usize,
    ) -> Result<u64> {
        if dirs.is_empty() {
            return Ok(0);
        }
        self.walk_cached(op, b, dirs, seq, next_k, index, |(parent, _)| *parent)
    }

    /// [`Tx::ensure_dirs`], and the ids walked (the last is the one
    /// returned): a rename checks that its target is not below itself.
    pub(super) fn ensure_dirs_walked(
        &mut self,
        op: &Op,
        b: &[u8],
        dirs: &str,
        seq: u64,
        next_k: &mut u64,
        index: usize,
    ) -> Result<(u64, Vec<u64>)> {
        if dirs.is_empty() {
            return Ok((0, Vec::new()));
        }
        self.walk_cached(op, b, dirs, seq, next_k, index, Clone::clone)
    }

    /// What `f` makes of this group's walk of `dirs`: from `dir_paths`,
    /// or walked now and stored there.
    #[allow(clippy::too_many_arguments)]
    fn walk_cached<T>(
        &mut self,
        op: &Op,
        b: &[u8],
        dirs: &str,
        seq: u64,
        next_k: &mut u64,
        index: usize,
        f: impl Fn(&(u64, Vec<u64>)) -> T,
    ) -> Result<T> {
        if let Some(hit) = self.cached_walk(b, dirs, &f) {
            return Ok(hit);
        }
        let walk = self.walk_dirs(op, b, dirs, seq, next_k, index)?;
        let out = f(&walk);
        let mut path = Vec::new();
        dir_path_key_into(&mut path, b, dirs);
        self.dir_paths.insert(path, walk);
        Ok(out)
    }

    /// What `f` makes of this group's walk of `dirs`, if `dir_paths` holds
    /// one (looked up through `path_buf`: no key allocated).
    fn cached_walk<T>(
        &mut self,
        b: &[u8],
        dirs: &str,
        f: impl FnOnce(&(u64, Vec<u64>)) -> T,
    ) -> Option<T> {
        let mut path = std::mem::take(&mut self.path_buf);
        dir_path_key_into(&mut path, b, dirs);
        let out = self.dir_paths.get(path.as_slice()).map(f);
        self.path_buf = path;
        out
    }

    /// Walk `dirs` (segments joined by `/`) from the bucket root, creating
    /// missing directories: the id of the last one and the ids walked.
    fn walk_dirs(
        &mut self,
        op: &Op,
        b: &[u8],
        dirs: &str,
        seq: u64,
        next_k: &mut u64,
        index: usize,
    ) -> Result<(u64, Vec<u64>)> {
        let mut parent = 0u64;
        let mut walked = Vec::with_capacity(4);
        let mut end = 0;
        for name in dirs.split('/') {
            end += name.len();
            match self.live_slim(b, parent, name)? {
                Some(n) if n.is_dir => parent = n.object_id,
                Some(_) => {
                    return Err(Error::InvalidOp {
                        index,
                        reason: format!("`{}` is a file, not a directory", &dirs[..end]),
                    })
                }
                None => {
                    let id = derived_id(seq, *next_k);
                    *next_k += 1;
                    self.open_edge(op, b, parent, name, id, true, seq, false);
                    parent = id;
                }
            }
            walked.push(parent);
            end += 1;
        }
        Ok((parent, walked))
    }

    /// The seq at which `parent/name` was last closed (deleted or renamed
    /// away), if a closed version of it is still retained.
    pub(super) fn last_closed(&self, b: &[u8], parent: u64, name: &str) -> Result<Option<u64>> {
        let mut last = None;
        self.scan_prefix(&name_prefix_in(TAG_G, b, parent, name), |k, _| {
            last = Some(deleted_of(k));
            Ok(true)
        })?;
        Ok(last)
    }

    /// Does the namespace know `key` to be gone? Walking from the bucket
    /// root, the first segment without an open edge decides: if a closed
    /// version of it is retained, the path (or a directory above it) was
    /// deleted or renamed away at that seq: `Some((prefix, seq))`. `None`
    /// when the path is live or was never seen (it is then adopted).
    pub(super) fn known_gone(&mut self, b: &[u8], key: &str) -> Result<Option<(String, u64)>> {
        let mut parent = 0u64;
        let mut from = 0;
        // Directories walked in this group are live: only the last
        // segment is left to look at.
        let (dirs, _) = split_dirs(key);
        if !dirs.is_empty() {
            if let Some(p) = self.cached_walk(b, dirs, |(p, _)| *p) {
                parent = p;
                from = dirs.len() + 1;
            }
        }
        let mut end = from;
        for name in key[from..].split('/') {
            end += name.len();
            match self.live_slim(b, parent, name)? {
                Some(n) if n.is_dir => parent = n.object_id,
                // Live (a file on the way is ensure_dirs' error to give).
                Some(_) => return Ok(None),
                None => {
                    return Ok(self
                        .last_closed(b, parent, name)?
                        .map(|seq| (key[..end].to_string(), seq)))
                }
            }
            end += 1;
        }
        Ok(None)
    }

    /// Find the object at `key`, creating it (and its parents) when the
    /// namespace has not seen it (`listed`: in the S3 view). Returns its
    /// live node.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn find_or_adopt(
        &mut self,
        op: &Op,
        b: &[u8],
        key: &str,
        is_dir: bool,
        seq: u64,
        next_k: &mut u64,
        index: usize,
        listed: bool,
    ) -> Result<NsNode> {
        let (dirs, name) = split_dirs(key);
        let parent = self.ensure_dirs(op, b, dirs, seq, next_k, index)?;
        if let Some(n) = self.live(op, b, parent, name)? {
            return Ok(n);
        }
        let id = op.object_id.unwrap_or(derived_id(seq, 0));
        Ok(self.open_edge(op, b, parent, name, id, is_dir, seq, listed))
    }
}

/// A key's directories (its segments but the last, joined by `/`; empty
/// at the bucket root) and its name.
pub(super) fn split_dirs(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// The key of [`Tx::ensure_dirs`]' walks of `dirs` in bucket `b`, into
/// `path`: `B`, then `dirs` (segments joined by `/`; a segment holds
/// neither `/` nor NUL).
fn dir_path_key_into(path: &mut Vec<u8>, b: &[u8], dirs: &str) {
    path.clear();
    path.extend_from_slice(b);
    path.extend_from_slice(dirs.as_bytes());
}

/// Visit, in key order, the stored keys from where `it` stands while
/// `within` holds them, with the `pending` writes (in key order) over them:
/// a pending write wins over the stored key it names. `f` gets each key
/// and its value, `None` for a pending delete, and returns false to stop.
/// What a prefix scan of the writer's transaction and a resync's reading
/// of the live index (stored entries under the replayed overlay) share.
pub(crate) fn merge_over<'p>(
    it: &mut rocksdb::DBRawIteratorWithThreadMode<'_, DB>,
    within: impl Fn(&[u8]) -> bool,
    pending: impl Iterator<Item = (&'p [u8], &'p Write)>,
    mut f: impl FnMut(&[u8], Option<&[u8]>) -> Result<bool>,
) -> Result<()> {
    let mut pend = pending.peekable();
    loop {
        let stored = match it.key() {
            Some(k) if it.valid() && within(k) => Some(k.to_vec()),
            _ => None,
        };
        let take_pending = match (&stored, pend.peek()) {
            (None, None) => break,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(d), Some((p, _))) => *p <= d.as_slice(),
        };
        let more = if take_pending {
            let (k, v) = pend.next().expect("peeked");
            if stored.as_deref() == Some(k) {
                it.next();
            }
            f(k, v.as_deref())?
        } else {
            let k = stored.expect("a stored key");
            let v = it.value().unwrap_or_default().to_vec();
            it.next();
            f(&k, Some(&v))?
        };
        if !more {
            return Ok(());
        }
    }
    it.status()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::apply;
    use crate::op::Layout;

    fn db(dir: &std::path::Path) -> DB {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        DB::open_cf(&o, dir, [CF_NS]).unwrap()
    }

    fn fso(op: Op) -> Op {
        op.with_layout(Layout::Fso).at(1)
    }

    fn write(db: &DB, tx: Tx<'_>) {
        let mut batch = rocksdb::WriteBatch::default();
        tx.write_into(&mut batch);
        db.write(batch).unwrap();
    }

    /// A request dropped after it made directories takes its walks with
    /// it: the next request of the group makes them again (a walk cached
    /// from the dropped one would name directories never written).
    #[test]
    fn a_dropped_request_takes_its_directory_walks() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let mut tx = Tx::new(&db, Cache::default());
        let mut retained = || Ok(1);
        let op = fso(Op::create_file("v", "b", "a/b/f"));
        apply(&mut tx, &op, 1, 0, &mut retained).unwrap();
        tx.reject();
        let op = fso(Op::create_file("v", "b", "a/b/g"));
        apply(&mut tx, &op, 1, 0, &mut retained).unwrap();
        tx.accept();
        write(&db, tx);
        let a = resolve_at(&db, "v", "b", "a", 1).unwrap();
        let g = resolve_at(&db, "v", "b", "a/b/g", 1).unwrap();
        assert_eq!(a.map(|(_, is_dir)| is_dir), Some(true));
        assert!(g.is_some(), "a/b/g resolves");
        assert_eq!(resolve_at(&db, "v", "b", "a/b/f", 1).unwrap(), None);
    }

    /// Dropping a request takes back its writes and nothing else, whether
    /// it is the first with writes (no undo is recorded then) or comes
    /// after an accepted one (its undo puts back what it overwrote).
    #[test]
    fn a_dropped_request_leaves_the_accepted_writes_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let mut tx = Tx::new(&db, Cache::default());
        tx.accept();
        let w = |v: &str| Some(v.as_bytes().to_vec());
        tx.set(b"k1".to_vec(), w("a"));
        tx.set(b"k2".to_vec(), w("b"));
        tx.reject();
        assert!(tx.writes.is_empty());
        tx.set(b"k1".to_vec(), w("a"));
        tx.set(b"k2".to_vec(), None);
        tx.accept();
        let accepted = tx.writes.clone();
        tx.set(b"k1".to_vec(), w("c"));
        tx.set(b"k2".to_vec(), w("d"));
        tx.set(b"k3".to_vec(), None);
        tx.set(b"k1".to_vec(), None);
        tx.reject();
        assert_eq!(tx.writes, accepted);
        tx.set(b"k4".to_vec(), w("e"));
        tx.accept();
        tx.set(b"k4".to_vec(), w("f"));
        tx.reject();
        assert_eq!(tx.writes.get(b"k4".as_slice()), Some(&w("e")));
        assert_eq!(tx.writes.len(), 3);
    }

    /// A directory renamed within a group moves the walks through it: a
    /// later op of the group that names the old path makes a new
    /// directory there, and one that names the new path finds the moved
    /// one.
    #[test]
    fn a_directory_renamed_in_the_group_moves_its_walks() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let mut tx = Tx::new(&db, Cache::default());
        let mut retained = || Ok(1);
        let ops = [
            Op::create_file("v", "b", "d1/x/f1"),
            Op::rename("v", "b", "d1/x", "d2"),
            Op::create_file("v", "b", "d1/x/f2"),
            Op::create_file("v", "b", "d2/f3"),
        ];
        for (i, op) in ops.into_iter().enumerate() {
            apply(&mut tx, &fso(op), 1 + i as u64, i, &mut retained).unwrap();
        }
        tx.accept();
        write(&db, tx);
        let at = |key: &str| resolve_at(&db, "v", "b", key, 4).unwrap().map(|(id, _)| id);
        let moved = at("d2").expect("d2 is the renamed d1/x");
        let remade = at("d1/x").expect("d1/x is made again by f2's create");
        assert_ne!(moved, remade);
        for key in ["d2/f1", "d1/x/f2", "d2/f3"] {
            assert!(at(key).is_some(), "{key} resolves");
        }
        for key in ["d1/x/f1", "d2/f2", "d1/x/f3"] {
            assert_eq!(at(key), None, "{key} does not resolve");
        }
    }
}
