//! The read side: an object's path, a key's object and a directory's children at any retained seq.

use std::sync::{Arc, Weak};

use rocksdb::DB;

use super::keys::*;
use crate::error::{Error, Result};
use crate::proto::NsNode;

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
    /// In the bucket's S3 view: a committed file, or an explicit
    /// directory (its `dir/` marker).
    pub listed: bool,
}

pub(super) fn valid_at(n: &NsNode, seq: u64) -> bool {
    n.created_seq <= seq && (n.deleted_seq == 0 || seq < n.deleted_seq)
}

/// The reverse edge of `object` valid at `seq`, with an iterator the caller
/// reuses (creating one per lookup was most of `path_at`'s cost): the first
/// version that closed after `seq`, if it was open by then.
pub(super) fn reverse_at(
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

/// The edge of `object` valid at `seq`, if it existed then.
pub(crate) fn node_at(db: &DB, object: u64, seq: u64) -> Result<Option<NsNode>> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    reverse_at(&mut it, object, seq)
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
    pub(super) db: Weak<DB>,
    /// `B dir`: the key after its tag, open (`F`) and closed (`G`) alike.
    pub(super) prefix: Vec<u8>,
    /// Where the next chunk starts, without the tag.
    pub(super) next_key: Vec<u8>,
    pub(super) seq: u64,
    pub(super) buf: std::collections::VecDeque<Child>,
    pub(super) done: bool,
}

pub(super) const CHUNK: usize = 256;

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
    pub(super) fn fill(&mut self) -> Result<()> {
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
                    listed: in_s3_view(&n),
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

/// One entry below a directory: a file, or a directory with a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the directory walked.
    pub rel: String,
    /// Object id.
    pub object_id: u64,
    /// A directory (listed, so its `dir/` marker is in the S3 view).
    pub is_dir: bool,
    /// In the bucket's S3 view (see [`Child::listed`]).
    pub listed: bool,
}

/// Every file below a directory at a seq, and every directory with a
/// marker (listed: made explicit), depth first in name order (a directory
/// before what is below it), with paths relative to the directory. Memory
/// grows with depth, not size. Like [`Children`], it holds the database
/// weakly.
pub struct Descendants {
    pub(super) db: Weak<DB>,
    pub(super) volume: String,
    pub(super) bucket: String,
    pub(super) seq: u64,
    pub(super) stack: Vec<(String, Children)>,
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
    type Item = Result<Entry>;

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
                    let entry = Entry {
                        rel,
                        object_id: c.object_id,
                        is_dir: c.is_dir,
                        listed: c.listed,
                    };
                    if c.is_dir {
                        let Some(db) = self.db.upgrade() else {
                            return Some(Err(Error::LedgerClosed));
                        };
                        let ch =
                            Children::new(&db, &self.volume, &self.bucket, c.object_id, self.seq);
                        self.stack.push((entry.rel.clone(), ch));
                        if c.listed {
                            return Some(Ok(entry));
                        }
                    } else {
                        return Some(Ok(entry));
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
        let Some((v, b, _)) = split_bucket(&k[1..]) else {
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

/// What the ledger knows of an FSO file at the head (`namespace::live`,
/// "FSO objects"): each field only when an op said it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectState {
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// eTag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Version id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Modification time, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<i64>,
}

impl From<crate::proto::LiveObject> for ObjectState {
    fn from(o: crate::proto::LiveObject) -> ObjectState {
        ObjectState {
            size: o.size,
            etag: (!o.etag.is_empty()).then_some(o.etag),
            version_id: (!o.version_id.is_empty()).then_some(o.version_id),
            mtime_ms: o.mtime,
        }
    }
}

/// One entry of a bucket's tree (`Ledger::tree_at`). As JSON, the state's
/// fields sit beside the others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeEntry {
    /// Path within the bucket.
    pub path: String,
    /// Object id.
    pub object_id: u64,
    /// True for a directory.
    pub is_dir: bool,
    /// In the bucket's S3 view (see [`Child::listed`]).
    pub listed: bool,
    /// The file's state at the head (directories: none).
    #[serde(flatten)]
    pub state: ObjectState,
}
