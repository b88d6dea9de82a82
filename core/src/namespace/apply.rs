//! Applying an op to the namespace (paths, edges, ids) and collecting garbage behind retention.

use std::borrow::Cow;

use super::keys::*;
use super::tx::split_dirs;
use super::*;
use crate::error::{Error, Result};
use crate::op::{Kind, Layout, Op};

/// What the namespace resolved for one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The op's path as of its seq when it is not the op's `key` (an FSO
    /// op named by `parent_id` and `name`); empty when it is: the event
    /// stores it so (format 7) and readers fill it in (`decode_event`).
    pub path: String,
    pub to_path: String,
    pub object_id: Option<u64>,
    pub is_dir: bool,
    /// What the live index knew of the object (object-store and legacy
    /// ops that name no size or eTag): the event carries it.
    pub size: Option<u64>,
    pub etag: String,
    /// An object-store or legacy rename whose source the live index held
    /// as not in the S3 view (`Event.unlisted`), and whether it replaced
    /// one that was (`Event.replaced`).
    pub unlisted: bool,
    pub replaced: bool,
    /// The live index entries a recursive delete, a directory's rename or
    /// a bucket's delete took (`Event.below`): stored beside the event.
    /// Boxed: every op's `Resolved` is moved several times, and 24 bytes
    /// more took each move past 128 (+1.1% of an FSO append's
    /// instructions, in `memcpy`).
    pub below: Option<Box<[crate::proto::BelowEntry]>>,
}

/// The key an op names: `key`, or the live path of directory `parent` (0:
/// the bucket root) joined with `name`.
pub(super) fn key_of<'k>(
    tx: &mut Tx<'_>,
    op: &Op,
    parent: Option<u64>,
    key: &'k str,
    name: &'k str,
    index: usize,
) -> Result<Cow<'k, str>> {
    match parent {
        None => Ok(Cow::Borrowed(key)),
        Some(0) => Ok(Cow::Borrowed(name)),
        Some(p) => {
            let (node, path) = tx.live_path(p, index)?;
            if !node.is_dir || node.volume != op.volume || node.bucket != op.bucket {
                return Err(Error::UnknownParent {
                    index,
                    parent_id: p,
                });
            }
            Ok(Cow::Owned(format!("{path}/{name}")))
        }
    }
}

/// The first seq retention keeps as of the op being applied: what the
/// retention limits (not the cursor guard) make of the ledger after the op
/// before it. A pure function of the ops, so replicas agree whatever their
/// batching; asked only when a closed edge is found.
pub(crate) type RetainedFrom<'a> = &'a mut dyn FnMut() -> Result<u64>;

/// A rename or delete of a path the namespace knows to be gone (it, or a
/// directory above it, was deleted or renamed away within retained
/// history) is `path_gone`: adopting it would make up an object the ledger
/// saw go. A going that retention has dropped is forgotten: the path is
/// adopted as one never seen (its closed edges are collected with it).
fn gone_check(
    tx: &mut Tx<'_>,
    b: &[u8],
    key: &str,
    index: usize,
    retained_from: RetainedFrom<'_>,
) -> Result<()> {
    match tx.known_gone(b, key)? {
        Some((gone, seq)) if seq >= retained_from()? => Err(Error::PathGone {
            index,
            path: key.to_string(),
            gone,
            seq,
        }),
        _ => Ok(()),
    }
}

/// Apply one op to the namespace at `seq`. Non-FSO ops pass through.
pub(crate) fn apply(
    tx: &mut Tx<'_>,
    op: &Op,
    seq: u64,
    index: usize,
    retained_from: RetainedFrom<'_>,
) -> Result<Resolved> {
    let plain = || Resolved {
        path: String::new(),
        to_path: match &op.kind {
            Some(Kind::Rename(r)) => r.to_key.clone(),
            _ => String::new(),
        },
        object_id: op.object_id,
        is_dir: op.is_dir,
        size: None,
        etag: String::new(),
        unlisted: false,
        replaced: false,
        below: None,
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
        let mut out = plain();
        // A directory renamed into itself: the namespace refuses it in an
        // FSO bucket (below), and so does the writer in the others (its
        // records would not replay: `b` to `b/x` moves `b/x` to `b/x/x`).
        // Not in `live::apply_effects`: a replay of the ops stored by an
        // earlier version must not fail.
        if let Kind::Rename(r) = kind {
            let from = op.key.trim_end_matches('/');
            if op.is_dir
                && r.to_key
                    .strip_prefix(from)
                    .is_some_and(|rest| rest.starts_with('/') && !rest.trim_matches('/').is_empty())
            {
                return Err(Error::RenameIntoSubtree {
                    index,
                    from: op.key.clone(),
                    to: r.to_key.clone(),
                });
            }
        }
        // A bucket's delete closes its tree, whatever layout the op names
        // (an object-store bucket has none): a bucket made again under the
        // name starts empty.
        if matches!(kind, Kind::BucketDelete(_)) && !op.bucket.is_empty() {
            close_tree(tx, &op.volume, &op.bucket, seq)?;
        }
        // A volume's delete does so for each of its buckets, and takes
        // their live index entries: a volume made again starts empty.
        if matches!(kind, Kind::VolumeDelete(_)) && !op.volume.is_empty() {
            for bucket in fso_buckets_of(tx, &op.volume)? {
                close_tree(tx, &op.volume, &bucket, seq)?;
            }
        }
        // The live index: a volume's delete takes its buckets' entries, a
        // bucket's its own, whatever layout the op names (an FSO bucket
        // has none). The same function replays the ops after a checkpoint.
        if let Some(k) = live::apply_effects(tx, op)? {
            out.size = k.size;
            out.etag = k.etag;
            out.unlisted = k.unlisted;
            out.replaced = k.replaced;
            out.below = k.below;
        }
        return Ok(out);
    }
    // The key: given, or the parent's live path + name.
    let key = key_of(tx, op, op.parent_id, &op.key, &op.name, index)?;
    let b = bucket_id(&op.volume, &op.bucket);
    let mut next_k = 1u64;
    let (dirs, name) = split_dirs(&key);
    let mut out = Resolved {
        path: if key == op.key {
            String::new()
        } else {
            key.to_string()
        },
        to_path: String::new(),
        object_id: op.object_id,
        is_dir: op.is_dir,
        size: None,
        etag: String::new(),
        unlisted: false,
        replaced: false,
        below: None,
    };
    match kind {
        Kind::CreateDirectory(_) => {
            let parent = tx.ensure_dirs(op, &b, dirs, seq, &mut next_k, index)?;
            match tx.live(op, &b, parent, name)? {
                Some(n) if n.is_dir => {
                    tx.list(&b, &n);
                    out.object_id = Some(n.object_id)
                }
                Some(_) => {
                    return Err(Error::AlreadyExists {
                        index,
                        path: key.into_owned(),
                    });
                }
                None => {
                    let id = op.object_id.unwrap_or(derived_id(seq, 0));
                    tx.open_edge(op, &b, parent, name, id, true, seq, true);
                    out.object_id = Some(id);
                }
            }
            out.is_dir = true;
        }
        Kind::CreateFile(c) => {
            let parent = tx.ensure_dirs(op, &b, dirs, seq, &mut next_k, index)?;
            // An overwrite keeps the key in the S3 view until its commit.
            let mut listed = false;
            let mut existing_file = None;
            if let Some(existing) = tx.live(op, &b, parent, name)? {
                existing_file = Some(existing.object_id);
                if !c.overwrite || existing.is_dir {
                    return Err(Error::AlreadyExists {
                        index,
                        path: key.into_owned(),
                    });
                }
                tx.close_edge(&b, &existing, seq);
                listed = in_s3_view(&existing);
            }
            let id = op.object_id.unwrap_or(derived_id(seq, 0));
            if let Some(existing) = existing_file {
                live::move_object_state(tx, existing, id)?;
            }
            tx.open_edge(op, &b, parent, name, id, op.is_dir, seq, listed);
            out.object_id = Some(id);
        }
        Kind::Delete(d) => {
            gone_check(tx, &b, &key, index, retained_from)?;
            let parent = tx.ensure_dirs(op, &b, dirs, seq, &mut next_k, index)?;
            if let Some(existing) = tx.live(op, &b, parent, name)? {
                if existing.is_dir
                    && !d.recursive
                    && tx.has_live_children(&b, existing.object_id)?
                {
                    return Err(Error::DirectoryNotEmpty {
                        index,
                        path: key.into_owned(),
                    });
                }
                tx.close_edge(&b, &existing, seq);
                if !existing.is_dir {
                    tx.del(live::o_key(existing.object_id));
                }
                out.object_id = Some(existing.object_id);
                out.is_dir = existing.is_dir;
            }
        }
        Kind::Rename(r) => {
            gone_check(tx, &b, &key, index, retained_from)?;
            let src = tx.find_or_adopt(op, &b, &key, op.is_dir, seq, &mut next_k, index, false)?;
            let to_key = key_of(tx, op, r.to_parent_id, &r.to_key, &r.to_name, index)?;
            if to_key == key {
                return Err(Error::RenameToSelf { index });
            }
            let (to_dirs, to_name) = split_dirs(&to_key);
            let (to_parent, walked) =
                tx.ensure_dirs_walked(op, &b, to_dirs, seq, &mut next_k, index)?;
            if walked.contains(&src.object_id) {
                return Err(Error::RenameIntoSubtree {
                    index,
                    from: key.into_owned(),
                    to: to_key.into_owned(),
                });
            }
            if tx.live(op, &b, to_parent, to_name)?.is_some() {
                return Err(Error::AlreadyExists {
                    index,
                    path: to_key.into_owned(),
                });
            }
            tx.close_edge(&b, &src, seq);
            tx.open_edge(
                op,
                &b,
                to_parent,
                to_name,
                src.object_id,
                src.is_dir,
                seq,
                in_s3_view(&src),
            );
            out.to_path = to_key.into_owned();
            out.object_id = Some(src.object_id);
            out.is_dir = src.is_dir;
            if let Some(k) = live::object_known(tx, src.object_id, src.is_dir)? {
                out.size = k.size;
                out.etag = k.etag;
            }
        }
        _ => {
            // Commit, append, truncate, ACLs, times, attributes: the object
            // is there (adopted if the namespace never saw it).
            let commit = matches!(kind, Kind::Commit(_));
            let node =
                tx.find_or_adopt(op, &b, &key, op.is_dir, seq, &mut next_k, index, commit)?;
            if commit {
                tx.list(&b, &node);
            }
            if let Some(k) = live::apply_object_state(tx, op, node.object_id, node.is_dir)? {
                out.size = k.size;
                out.etag = k.etag;
            }
            out.object_id = Some(node.object_id);
            out.is_dir = node.is_dir;
        }
    }
    Ok(out)
}

/// Close every open edge at the root of `volume/bucket` at `seq`, as a
/// recursive delete of each would: what is below a directory becomes
/// unreachable and is collected with it once the delete leaves retention.
/// The cost is one close per entry at the root (S3 and Ozone delete only
/// empty buckets, so usually none). The paths are then known gone: a later
/// rename or delete of one is `path_gone` while the delete is retained.
fn close_tree(tx: &mut Tx<'_>, volume: &str, bucket: &str, seq: u64) -> Result<()> {
    let b = bucket_id(volume, bucket);
    let prefix = dir_prefix(&b, 0);
    let mut names = Vec::new();
    tx.scan_prefix(&prefix, |k, _| {
        names.push(name_of(&k[prefix.len()..])?);
        Ok(true)
    })?;
    for name in names {
        let Some(edge) = tx.live_in(volume, bucket, &b, 0, &name)? else {
            continue;
        };
        tx.close_edge(&b, &edge, seq);
        if !edge.is_dir {
            tx.del(live::o_key(edge.object_id));
        }
    }
    Ok(())
}

/// The buckets of `volume` with an open edge: a scan of the volume's `F`
/// keys (pending ones included), each bucket named once. Its cost grows
/// with the volume's live edges; Ozone deletes only empty volumes.
fn fso_buckets_of(tx: &Tx<'_>, volume: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    tx.scan_prefix(&volume_prefix(TAG_F, volume), |k, _| {
        let (_, bucket, _) = split_bucket(&k[1..])
            .ok_or_else(|| Error::Corrupt("namespace key without bucket".into()))?;
        let bucket = std::str::from_utf8(bucket)
            .map_err(|_| Error::Corrupt("namespace bucket is not UTF-8".into()))?;
        if out.last().map(String::as_str) != Some(bucket) {
            out.push(bucket.to_string());
        }
        Ok(true)
    })?;
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
pub(super) fn drop_subtree(tx: &mut Tx<'_>, b: &[u8], dir: u64) -> Result<()> {
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
            } else {
                tx.del(live::o_key(node.object_id));
            }
        }
    }
    Ok(())
}
