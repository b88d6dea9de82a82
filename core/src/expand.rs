//! Expansion of renames and recursive deletes into per-object records, and
//! the resync listing (`ARCHITECTURE.md`, "The shadow namespace").
//!
//! | event | expanded into (each record carries the event's seq and a sub-index) |
//! |---|---|
//! | rename of a file (any layout) | sub 0: remove of the old key; sub 1: create of the new key |
//! | rename of an FSO directory | its own marker's pair if it has one, then for each entry below it at seq - 1 (depth first, name order, a directory before its contents): remove `old/rel`, create `new/rel` |
//! | recursive delete of an FSO directory | its own marker's remove if it has one, then a remove `dir/rel` for each entry below it at seq - 1 |
//! | delete of a bucket (any layout) | a remove `rel` for each entry of its FSO tree at seq - 1, then for each entry the live index held (stored beside the event), then the event itself |
//! | rename of a directory, or recursive delete, in an object-store or legacy bucket (format 9) | from the live index entries the op took, stored beside the event (`namespace::below`), in key order, the op's own first: remove `old/rel` (and create `new/rel`); for a rename of an entry not in the S3 view onto one that was, a remove of the destination after its pair |
//!
//! The entries are the files and the directories with a `dir/` marker:
//! those a `create_directory` (or a commit of the directory) made
//! explicit; a directory that exists only as a parent has none. Each
//! record says whether its object is in the bucket's S3 view
//! ([`Expansion::listed`]): a file created and never committed is not, and
//! the S3 form skips it, so replaying the S3 records gives what a resync
//! lists at every seq. A directory with no entry below it and no marker
//! expands into nothing: the cursor moves past the event. The resync
//! listing (`LiveFiles`) walks the same entries. The listing streams from the shadow namespace: memory
//! grows with the depth of the tree, not its size. A cursor keeps the
//! listing open between reads, so reading a million-record expansion in
//! batches costs one pass; resuming at `(seq, sub)` elsewhere skips `sub`
//! records once.
//!
//! A bucket's delete closes the edges at its root, as a recursive delete of
//! each would (`ARCHITECTURE.md`, "The shadow namespace"), so it expands as
//! one: S3 and Ozone delete only empty buckets, but a ledger fed a delete of
//! a bucket it knows to hold objects tells an S3 consumer that they went,
//! and its replayed view matches a resync. The event itself comes last (its
//! own record, not an expansion: `BucketRemoved:Delete` for the S3 form's
//! extended table, the delete for the other formats), so a consumer that
//! expands deletes still reads the bucket's delete, even of an empty
//! bucket. An object-store bucket has no tree: its delete expands into a
//! remove per entry of the live index it took (none stored before format
//! 9), then itself. A volume's delete is not expanded (Ozone deletes only
//! empty volumes; its records would name several buckets).
//!
//! Retention drops an event's stored entries with the event. A cursor
//! whose read finds them gone part way (the event fell behind `first_seq`
//! while the read went on) stays inside the event, and its next look at
//! the bounds reports the gap, even when the next event is the first one
//! kept (`ExpIter::cut`); `changes` fails with the gap. Entries missing
//! while the event is retained are `corrupt`. The FSO walk has the same
//! window without the check: the closed edges it reads go with the event,
//! and a walk that finds fewer of them cannot tell; its cursor reports the
//! gap only when the next event is behind retention too.

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
    /// A directory's `dir/` marker (an explicit directory), not a file.
    pub is_dir: bool,
    /// In the bucket's S3 view before the event: a committed file or an
    /// explicit directory. The S3 form skips the others (a file created
    /// and never committed is no S3 object); other formats keep them.
    pub listed: bool,
}

/// Which events a cursor expands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Renames into remove + create pairs.
    pub renames: bool,
    /// Recursive directory deletes into a remove per file; a bucket's
    /// delete into a remove per object of its tree, then the delete.
    pub deletes: bool,
}

/// Does `event` expand under `opts`?
pub(crate) fn expands(event: &Event, opts: ExpandOptions) -> bool {
    let Some(op) = &event.op else { return false };
    match &op.kind {
        Some(Kind::Rename(_)) => opts.renames,
        Some(Kind::BucketDelete(_)) => opts.deletes && !op.bucket.is_empty(),
        Some(Kind::Delete(d)) => {
            opts.deletes
                && d.recursive
                && if op.layout_enum() == Layout::Fso {
                    op.is_dir && op.object_id.is_some()
                } else {
                    // Format 9 stores what it took (`Event.below`).
                    event.below.is_some()
                }
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
    /// Records made and not yet handed out, in order.
    queue: std::collections::VecDeque<Expansion>,
    /// What is still to be listed below a directory: (old prefix, new
    /// prefix for a rename), the walk.
    below: Option<(String, Option<String>, Descendants)>,
    /// The live index entries the event took, stored beside it (object-
    /// store and legacy buckets, format 9: `namespace::below`), listed
    /// after the walk.
    taken: Option<Taken>,
    /// The event itself is the last record (a bucket's delete), not yet
    /// handed out.
    itself: bool,
    /// The stored entries ran out before their count: retention dropped
    /// them with the event while this expansion was read.
    cut: bool,
}

/// Reads the entries an event took, a stored chunk at a time.
struct Taken {
    db: Weak<DB>,
    seq: u64,
    /// The next chunk to read, and how many entries are left to list.
    chunk: u32,
    left: u64,
    entries: std::vec::IntoIter<crate::proto::BelowEntry>,
    /// Prefixes: the op's key (empty for a bucket's delete) and, for a
    /// rename, its destination.
    from: String,
    to: Option<String>,
    /// Retention dropped entries not yet listed.
    cut: bool,
}

impl Taken {
    /// The next entry, reading the next chunk when one is used up. `None`
    /// at the end, or when the rest is missing (`cut`): retention dropped
    /// it with the event, or it is lost, which the reader tells apart.
    fn next(&mut self) -> Result<Option<crate::proto::BelowEntry>> {
        if self.left == 0 {
            return Ok(None);
        }
        if let Some(e) = self.entries.next() {
            self.left -= 1;
            return Ok(Some(e));
        }
        let db = self.db.upgrade().ok_or(Error::LedgerClosed)?;
        let Some(chunk) = namespace::below::read(&db, self.seq, self.chunk)? else {
            self.left = 0;
            self.cut = true;
            return Ok(None);
        };
        if chunk.is_empty() {
            return Err(Error::Corrupt(format!(
                "entries of event {}: chunk {} is empty",
                self.seq, self.chunk
            )));
        }
        self.chunk += 1;
        self.entries = chunk.into_iter();
        self.next()
    }

    /// `prefix` joined with an entry's `rel` (empty: the prefix itself).
    fn key(prefix: &str, rel: &str) -> String {
        if rel.is_empty() {
            prefix.to_string()
        } else {
            join(prefix, rel)
        }
    }
}

impl ExpIter {
    /// Start the expansion of `event` (which `expands`) from sub 0.
    pub(crate) fn new(db: &Arc<DB>, event: &Event) -> Result<ExpIter> {
        let op = event.op.as_ref().expect("expanded events have an op");
        let seq = event.seq;
        let at = seq.saturating_sub(1);
        let fso = op.layout_enum() == Layout::Fso;
        // In the S3 view before the event: an FSO object as the namespace
        // had it; any other layout's unless the live index held it as not
        // (a rename of a file never committed: `Event.unlisted`).
        let listed = |object: Option<u64>| -> Result<bool> {
            match object {
                Some(o) if fso => {
                    Ok(namespace::node_at(db, o, at)?.is_some_and(|n| namespace::in_s3_view(&n)))
                }
                _ => Ok(!fso && !event.unlisted),
            }
        };
        let mut queue = std::collections::VecDeque::new();
        let mut below = None;
        let dir = op.is_dir && fso && op.object_id.is_some();
        let itself = matches!(op.kind, Some(Kind::BucketDelete(_)));
        // What the op took from the live index (format 9): its own entry
        // and those below it, or the bucket's.
        let taken = event.below.filter(|_| !fso || itself).map(|left| Taken {
            db: Arc::downgrade(db),
            seq,
            chunk: 0,
            left,
            entries: Vec::new().into_iter(),
            // Without a trailing `/` (`dir/` names the directory too).
            from: if itself {
                String::new()
            } else {
                event.path.trim_end_matches('/').to_string()
            },
            to: matches!(op.kind, Some(Kind::Rename(_)))
                .then(|| event.to_path.trim_end_matches('/').to_string()),
            cut: false,
        });
        match &op.kind {
            // The entries it took give every record (a directory's rename
            // or a recursive delete).
            _ if taken.is_some() && !itself => {}
            Some(Kind::BucketDelete(_)) => {
                // Every entry of the bucket's tree (its root is directory
                // 0) as the delete found it, then the delete.
                let walk = Descendants::new(db, &op.volume, &op.bucket, 0, at);
                below = Some((String::new(), None, walk));
            }
            Some(Kind::Rename(_)) => {
                let listed = listed(op.object_id)?;
                queue.push_back(Expansion {
                    action: Action::Remove,
                    key: event.path.clone(),
                    from_key: None,
                    object_id: op.object_id,
                    is_dir: dir,
                    listed,
                });
                queue.push_back(Expansion {
                    action: Action::Create,
                    key: event.to_path.clone(),
                    from_key: Some(event.path.clone()),
                    object_id: op.object_id,
                    is_dir: dir,
                    listed,
                });
                // A source not in the S3 view replaced an object that was
                // (object-store and legacy buckets): the view loses it.
                if event.replaced && !fso {
                    queue.push_back(Expansion {
                        action: Action::Remove,
                        key: event.to_path.clone(),
                        from_key: None,
                        object_id: None,
                        is_dir: false,
                        listed: true,
                    });
                }
                if dir {
                    let walk =
                        Descendants::new(db, &op.volume, &op.bucket, op.object_id.unwrap_or(0), at);
                    below = Some((event.path.clone(), Some(event.to_path.clone()), walk));
                }
            }
            _ => {
                queue.push_back(Expansion {
                    action: Action::Remove,
                    key: event.path.clone(),
                    from_key: None,
                    object_id: op.object_id,
                    is_dir: true,
                    listed: listed(op.object_id)?,
                });
                let walk =
                    Descendants::new(db, &op.volume, &op.bucket, op.object_id.unwrap_or(0), at);
                below = Some((event.path.clone(), None, walk));
            }
        }
        // A directory's own records come only when it has a marker: the S3
        // view has no other trace of it.
        if dir || below.is_some() {
            queue.retain(|x| x.listed);
        }
        Ok(ExpIter {
            seq,
            next_sub: 0,
            queue,
            below,
            taken,
            itself,
            cut: false,
        })
    }

    /// Whether the expansion ended short, its stored entries missing: a
    /// gap when retention dropped them with the event while it was read
    /// (the event is behind the stored `first_seq`), `corrupt` otherwise.
    /// The reader must say which, not go on as if it had listed them all.
    pub(crate) fn cut(&self) -> bool {
        self.cut
    }

    /// The seq of the expanded event.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The sub-index the next record gets.
    pub(crate) fn next_sub(&self) -> u32 {
        self.next_sub
    }

    /// The event's own record, once, when it ends its expansion.
    fn take_itself(&mut self) -> Option<Result<(u32, Option<Expansion>)>> {
        if !std::mem::take(&mut self.itself) {
            return None;
        }
        let sub = self.next_sub;
        self.next_sub += 1;
        Some(Ok((sub, None)))
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
    /// (sub, expansion), or (sub, `None`) for the event itself.
    type Item = Result<(u32, Option<Expansion>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.queue.is_empty() && self.below.is_none() {
            if let Some(t) = self.taken.as_mut() {
                match t.next() {
                    Err(e) => return Some(Err(e)),
                    Ok(None) => {
                        if t.cut {
                            // What is left, the event's own record too,
                            // went with it.
                            self.cut = true;
                            self.itself = false;
                        }
                        self.taken = None
                    }
                    Ok(Some(e)) => {
                        let old = Taken::key(&t.from, &e.rel);
                        self.queue.push_back(Expansion {
                            action: Action::Remove,
                            key: old.clone(),
                            from_key: None,
                            object_id: None,
                            is_dir: e.is_dir,
                            listed: e.listed,
                        });
                        if let Some(to) = &t.to {
                            let new = Taken::key(to, &e.rel);
                            // Not in the S3 view, over an object that was:
                            // the view loses it.
                            let lost = e.replaced.then(|| Expansion {
                                action: Action::Remove,
                                key: new.clone(),
                                from_key: None,
                                object_id: None,
                                is_dir: e.replaced_is_dir,
                                listed: true,
                            });
                            self.queue.push_back(Expansion {
                                action: Action::Create,
                                key: new,
                                from_key: Some(old),
                                object_id: None,
                                is_dir: e.is_dir,
                                listed: e.listed,
                            });
                            self.queue.extend(lost);
                        }
                    }
                }
            }
        }
        if self.queue.is_empty() {
            let Some((from, to, walk)) = self.below.as_mut() else {
                return self.take_itself();
            };
            match walk.next() {
                None => {
                    // Then what the op took from the live index, if it
                    // stored any (a bucket's delete), then the event.
                    self.below = None;
                    return self.next();
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(e)) => {
                    let old = join(from, &e.rel);
                    self.queue.push_back(Expansion {
                        action: Action::Remove,
                        key: old.clone(),
                        from_key: None,
                        object_id: Some(e.object_id),
                        is_dir: e.is_dir,
                        listed: e.listed,
                    });
                    if let Some(to) = to {
                        self.queue.push_back(Expansion {
                            action: Action::Create,
                            key: join(to, &e.rel),
                            from_key: Some(old),
                            object_id: Some(e.object_id),
                            is_dir: e.is_dir,
                            listed: e.listed,
                        });
                    }
                }
            }
        }
        let x = self.queue.pop_front()?;
        let sub = self.next_sub;
        self.next_sub += 1;
        Some(Ok((sub, Some(x))))
    }
}

/// One object a resync lists.
pub(crate) struct Listed {
    pub volume: String,
    pub bucket: String,
    pub key: String,
    /// FSO objects: the namespace's id.
    pub object_id: Option<u64>,
    pub is_dir: bool,
    /// In the bucket's S3 view.
    pub listed: bool,
    pub layout: i32,
    /// From the live index (object-store and legacy buckets) or the
    /// object's state (FSO files).
    pub size: Option<u64>,
    pub etag: String,
    pub version_id: String,
}

/// Entries of the live index read at a time: the database is held only
/// while a chunk is read.
const LIVE_CHUNK: usize = 256;

/// Every live file and explicit directory of every FSO bucket at `seq`,
/// then every entry of the live index (object-store and legacy buckets, as
/// the index holds them while it is read). Holds the database weakly, like
/// [`Descendants`].
pub(crate) struct LiveFiles {
    db: Weak<DB>,
    seq: u64,
    buckets: std::vec::IntoIter<(String, String)>,
    current: Option<(String, String, Descendants)>,
    /// The live index: entries read and not yet listed, and the key to
    /// read on after (`None` once read to the end).
    live: std::collections::VecDeque<Listed>,
    live_after: Option<Vec<u8>>,
    /// The live index's writes after its checkpoint marker, replayed.
    overlay: std::collections::BTreeMap<Vec<u8>, namespace::Write>,
}

impl LiveFiles {
    /// `overlay`: the live index's writes since its checkpoint, replayed
    /// from the events after its marker (`ledger::live_overlay`).
    pub(crate) fn new(
        db: &Arc<DB>,
        seq: u64,
        overlay: std::collections::BTreeMap<Vec<u8>, namespace::Write>,
    ) -> Result<LiveFiles> {
        let buckets = namespace::live_buckets(db)?;
        Ok(LiveFiles {
            db: Arc::downgrade(db),
            seq,
            buckets: buckets.into_iter(),
            current: None,
            live: Default::default(),
            live_after: Some(namespace::LIVE_MARKER.to_vec()),
            overlay,
        })
    }

    /// Read the next chunk of the live index: the stored entries with the
    /// writes of the ops after its checkpoint marker over them (the writer
    /// keeps those in memory, `namespace::live`; the caller replays them).
    fn read_live(&mut self) -> Result<()> {
        use std::ops::Bound;

        let Some(after) = self.live_after.take() else {
            return Ok(());
        };
        let db = self.db.upgrade().ok_or(Error::LedgerClosed)?;
        let over = self
            .overlay
            .range::<[u8], _>((Bound::Excluded(after.as_slice()), Bound::Unbounded))
            .map(|(k, v)| (k.as_slice(), v));
        let cf = db.cf_handle(namespace::CF_NS).expect("cf ns");
        let mut it = db.raw_iterator_cf(cf);
        it.seek(&after);
        let live = &mut self.live;
        let mut last: Option<Vec<u8>> = None;
        namespace::merge_over(
            &mut it,
            |k| k.first() == Some(&namespace::TAG_L),
            over,
            |k, v| {
                if k <= after.as_slice() || k == namespace::LIVE_MARKER {
                    return Ok(true);
                }
                last = Some(k.to_vec());
                // `None`: deleted since the checkpoint.
                if let Some(v) = v {
                    let (volume, bucket, mut key) = namespace::split_live_key(k)?;
                    let o = namespace::decode_live(v)?;
                    // A marker's key is `dir/` (format 9): it lists the
                    // directory, as an FSO marker does.
                    if o.is_dir && key.ends_with('/') {
                        key.pop();
                    }
                    live.push_back(Listed {
                        volume,
                        bucket,
                        key,
                        object_id: None,
                        is_dir: o.is_dir,
                        listed: o.listed,
                        layout: o.layout,
                        size: o.size,
                        etag: o.etag,
                        version_id: o.version_id,
                    });
                }
                Ok(live.len() < LIVE_CHUNK)
            },
        )?;
        // Stopped at a full chunk: the next one reads on after its last
        // key. Read to the end: nothing more.
        if self.live.len() == LIVE_CHUNK {
            self.live_after = last;
        }
        Ok(())
    }
}

impl Iterator for LiveFiles {
    type Item = Result<Listed>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((v, b, files)) = &mut self.current {
                match files.next() {
                    Some(Ok(e)) => {
                        // A file's state, as the head knows it (as the
                        // live index of the other layouts).
                        let state = if e.is_dir {
                            Ok(None)
                        } else {
                            match self.db.upgrade() {
                                Some(db) => namespace::object_state(&db, e.object_id),
                                None => Err(Error::LedgerClosed),
                            }
                        };
                        let state = match state {
                            Ok(s) => s.unwrap_or_default(),
                            Err(e) => return Some(Err(e)),
                        };
                        return Some(Ok(Listed {
                            volume: v.clone(),
                            bucket: b.clone(),
                            key: e.rel,
                            object_id: Some(e.object_id),
                            is_dir: e.is_dir,
                            listed: e.listed,
                            layout: Layout::Fso as i32,
                            size: state.size,
                            etag: state.etag,
                            version_id: state.version_id,
                        }));
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.current = None,
                }
            }
            let Some((v, b)) = self.buckets.next() else {
                // The FSO trees are listed: the live index.
                if let Some(l) = self.live.pop_front() {
                    return Some(Ok(l));
                }
                self.live_after.as_ref()?;
                if let Err(e) = self.read_live() {
                    return Some(Err(e));
                }
                if self.live.is_empty() {
                    return None;
                }
                continue;
            };
            let Some(db) = self.db.upgrade() else {
                return Some(Err(Error::LedgerClosed));
            };
            let files = Descendants::new(&db, &v, &b, 0, self.seq);
            self.current = Some((v, b, files));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    /// An object-store or legacy recursive delete expands only when it
    /// stored what it took (format 9): one stored before expands as it
    /// did, into nothing (the event stays whole).
    #[test]
    fn other_layouts_expand_recursive_deletes_stored_with_what_they_took() {
        let deletes = ExpandOptions {
            renames: false,
            deletes: true,
        };
        for layout in [Layout::Obs, Layout::Legacy] {
            let event = |below: Option<u64>, recursive: bool| Event {
                seq: 7,
                op: Some(
                    Op::delete("v", "b", "d", recursive)
                        .dir()
                        .with_layout(layout),
                ),
                below,
                ..Event::default()
            };
            assert!(expands(&event(Some(2), true), deletes), "{layout:?}");
            assert!(expands(&event(Some(0), true), deletes), "{layout:?}");
            assert!(!expands(&event(None, true), deletes), "{layout:?}");
            assert!(!expands(&event(Some(2), true), ExpandOptions::default()));
            assert!(!expands(&event(None, false), deletes), "{layout:?}");
        }
        // FSO: by its object id, as before.
        let fso = Event {
            op: Some(
                Op::delete("v", "b", "d", true)
                    .dir()
                    .with_layout(Layout::Fso),
            ),
            ..Event::default()
        };
        assert!(!expands(&fso, deletes));
    }

    /// A bucket's delete of 2,500 objects stores three chunks. With the
    /// last two gone while it is read, the expansion ends after the first,
    /// says it was cut, and leaves out the delete's own record (the
    /// readers tell a gap from `corrupt`).
    #[test]
    fn an_expansion_cut_by_retention_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::Ledger::open_with(
            dir.path(),
            crate::OpenOptions {
                durability: crate::Durability::None,
                ..Default::default()
            },
        )
        .unwrap();
        let obs = |op: Op| op.with_layout(Layout::Obs).at(1_767_225_600_000_000);
        let mut ops: Vec<Op> = (0..2500)
            .map(|i| obs(Op::commit("v", "b", &format!("k{i:04}"), 1, "e")))
            .collect();
        ops.push(obs(Op::bucket_delete("v", "b")));
        ledger.append_batch(ops).unwrap();
        let event = ledger.get(2501).unwrap().unwrap();
        assert_eq!(event.below, Some(2500));
        let db = ledger.db().unwrap();
        let read = || -> (usize, bool, Option<Error>) {
            let mut it = ExpIter::new(&db, &event).unwrap();
            let mut n = 0;
            for x in it.by_ref() {
                match x {
                    Ok(_) => n += 1,
                    Err(e) => return (n, it.cut(), Some(e)),
                }
            }
            (n, it.cut(), None)
        };
        assert!(matches!(read(), (2501, false, None)));
        let ns = db.cf_handle(namespace::CF_NS).unwrap();
        for chunk in [1u32, 2] {
            let mut k = vec![namespace::below::TAG_X];
            k.extend_from_slice(&2501u64.to_be_bytes());
            k.extend_from_slice(&chunk.to_be_bytes());
            db.delete_cf(ns, k).unwrap();
        }
        let (n, cut, err) = read();
        assert!(err.is_none(), "{err:?}");
        assert_eq!((n, cut), (1024, true));
    }
}
