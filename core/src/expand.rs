//! Expansion of renames and recursive deletes into per-object records, and
//! the resync listing (`ARCHITECTURE.md`, "The shadow namespace").
//!
//! | event | expanded into (each record carries the event's seq and a sub-index) |
//! |---|---|
//! | rename of a file (any layout) | sub 0: remove of the old key; sub 1: create of the new key |
//! | rename of an FSO directory | for the i-th file below it at seq - 1 (depth first, name order): sub 2i remove `old/rel`, sub 2i+1 create `new/rel` |
//! | recursive delete of an FSO directory | for the i-th file below it at seq - 1: sub i remove `dir/rel` |
//!
//! Only files are listed (the S3 view has objects, not directories). A
//! directory with no file below it expands into nothing: the cursor moves
//! past the event. The listing streams from the shadow namespace: memory
//! grows with the depth of the tree, not its size. A cursor keeps the
//! listing open between reads, so reading a million-record expansion in
//! batches costs one pass; resuming at `(seq, sub)` elsewhere skips `sub`
//! records once.

use std::sync::{Arc, Weak};

use rocksdb::DB;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::namespace::{self, Descendants};
use crate::op::{Kind, Layout};
use crate::proto::Event;

/// What an expanded record says happened to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The key is gone (old side of a rename, or deleted with its directory).
    Remove,
    /// The key appeared (new side of a rename).
    Create,
}

/// The per-object part of an expanded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Remove or create.
    pub action: Action,
    /// The object's key (within the bucket) this record is about.
    pub key: String,
    /// For a create from a rename: the object's key before it.
    pub from_key: Option<String>,
    /// The object's id, when the namespace knows it.
    pub object_id: Option<u64>,
}

/// Which events a cursor expands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Renames into remove + create pairs.
    pub renames: bool,
    /// Recursive directory deletes into a remove per file.
    pub deletes: bool,
}

/// Does `event` expand under `opts`?
pub(crate) fn expands(event: &Event, opts: ExpandOptions) -> bool {
    let Some(op) = &event.op else { return false };
    match &op.kind {
        Some(Kind::Rename(_)) => opts.renames,
        Some(Kind::Delete(d)) => {
            opts.deletes
                && d.recursive
                && op.is_dir
                && op.layout_enum() == Layout::Fso
                && op.object_id.is_some()
        }
        _ => false,
    }
}

fn join(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

/// The records of one expanded event, in sub order.
pub(crate) struct ExpIter {
    seq: u64,
    next_sub: u32,
    kind: ExpKind,
}

enum ExpKind {
    FileRename {
        from: String,
        to: String,
        object_id: Option<u64>,
    },
    DirRename {
        from: String,
        to: String,
        files: Descendants,
        pending_create: Option<(String, u64)>,
    },
    DirDelete {
        dir: String,
        files: Descendants,
    },
}

impl ExpIter {
    /// Start the expansion of `event` (which `expands`) from sub 0.
    pub(crate) fn new(db: &Arc<DB>, event: &Event) -> ExpIter {
        let op = event.op.as_ref().expect("expanded events have an op");
        let seq = event.seq;
        let at = seq.saturating_sub(1);
        let kind = match &op.kind {
            Some(Kind::Rename(_))
                if op.is_dir && op.layout_enum() == Layout::Fso && op.object_id.is_some() =>
            {
                ExpKind::DirRename {
                    from: event.path.clone(),
                    to: event.to_path.clone(),
                    files: Descendants::new(
                        db,
                        &op.volume,
                        &op.bucket,
                        op.object_id.unwrap_or(0),
                        at,
                    ),
                    pending_create: None,
                }
            }
            Some(Kind::Rename(_)) => ExpKind::FileRename {
                from: event.path.clone(),
                to: event.to_path.clone(),
                object_id: op.object_id,
            },
            _ => ExpKind::DirDelete {
                dir: event.path.clone(),
                files: Descendants::new(db, &op.volume, &op.bucket, op.object_id.unwrap_or(0), at),
            },
        };
        ExpIter {
            seq,
            next_sub: 0,
            kind,
        }
    }

    /// The seq of the expanded event.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The sub-index the next record gets.
    pub(crate) fn next_sub(&self) -> u32 {
        self.next_sub
    }

    /// Skip records until the next one is `sub`.
    pub(crate) fn skip_to(&mut self, sub: u32) -> Result<()> {
        while self.next_sub < sub {
            if self.next().transpose()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

impl Iterator for ExpIter {
    /// (sub, expansion)
    type Item = Result<(u32, Expansion)>;

    fn next(&mut self) -> Option<Self::Item> {
        let sub = self.next_sub;
        let exp = match &mut self.kind {
            ExpKind::FileRename {
                from,
                to,
                object_id,
            } => match sub {
                0 => Expansion {
                    action: Action::Remove,
                    key: from.clone(),
                    from_key: None,
                    object_id: *object_id,
                },
                1 => Expansion {
                    action: Action::Create,
                    key: to.clone(),
                    from_key: Some(from.clone()),
                    object_id: *object_id,
                },
                _ => return None,
            },
            ExpKind::DirRename {
                from,
                to,
                files,
                pending_create,
            } => match pending_create.take() {
                Some((rel, oid)) => Expansion {
                    action: Action::Create,
                    key: join(to, &rel),
                    from_key: Some(join(from, &rel)),
                    object_id: Some(oid),
                },
                None => match files.next()? {
                    Err(e) => return Some(Err(e)),
                    Ok((rel, oid)) => {
                        let key = join(from, &rel);
                        *pending_create = Some((rel, oid));
                        Expansion {
                            action: Action::Remove,
                            key,
                            from_key: None,
                            object_id: Some(oid),
                        }
                    }
                },
            },
            ExpKind::DirDelete { dir, files } => match files.next()? {
                Err(e) => return Some(Err(e)),
                Ok((rel, oid)) => Expansion {
                    action: Action::Remove,
                    key: join(dir, &rel),
                    from_key: None,
                    object_id: Some(oid),
                },
            },
        };
        self.next_sub += 1;
        Some(Ok((sub, exp)))
    }
}

/// Every live file of every FSO bucket at `seq`: (volume, bucket, key, object id).
/// Holds the database weakly, like [`Descendants`].
pub(crate) struct LiveFiles {
    db: Weak<DB>,
    seq: u64,
    buckets: std::vec::IntoIter<(String, String)>,
    current: Option<(String, String, Descendants)>,
}

impl LiveFiles {
    pub(crate) fn new(db: &Arc<DB>, seq: u64) -> Result<LiveFiles> {
        let buckets = namespace::live_buckets(db)?;
        Ok(LiveFiles {
            db: Arc::downgrade(db),
            seq,
            buckets: buckets.into_iter(),
            current: None,
        })
    }
}

impl Iterator for LiveFiles {
    type Item = Result<(String, String, String, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((v, b, files)) = &mut self.current {
                match files.next() {
                    Some(Ok((key, oid))) => return Some(Ok((v.clone(), b.clone(), key, oid))),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.current = None,
                }
            }
            let (v, b) = self.buckets.next()?;
            let Some(db) = self.db.upgrade() else {
                return Some(Err(Error::LedgerClosed));
            };
            let files = Descendants::new(&db, &v, &b, 0, self.seq);
            self.current = Some((v, b, files));
        }
    }
}
