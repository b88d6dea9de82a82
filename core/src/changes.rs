//! Net changes over a range: what a backup tool wants (glusterfind's output).
//!
//! `changes(since, until)` reads the events `since..=until` and reports one
//! row per object touched, collapsed:
//!
//! | before the range | after it | row |
//! |---|---|---|
//! | absent | present | `NEW` (final key) |
//! | present | absent | `DELETE` (key before) |
//! | absent | absent | nothing (created and deleted inside the range) |
//! | present, key changed | present | `RENAME` (`from_key` -> key), plus `MODIFY` of the new key if its content or metadata changed |
//! | present, same key | present, changed | `MODIFY` |
//!
//! In FSO buckets objects are followed by id through the shadow namespace:
//! "before" is the object's path at `since - 1`, "after" its path at `until`,
//! so a file created under a directory that is then renamed shows up as
//! `NEW` at its final path, and a directory rename is one `RENAME` row (what
//! is below it moved with it). In OBS and legacy buckets a key is the
//! identity and a rename moves it; a directory's rename or a recursive
//! delete moves or deletes each object it took (format 9 stores them
//! beside the event; one stored before is about its own key alone). A key
//! first seen in the range by a commit is `NEW` (the ledger cannot know
//! whether an older version existed before it).
//!
//! A range that starts before the first retained event is a `gap` error: net
//! changes over lost history would be wrong.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::op::{Kind, Layout};
use crate::read::Start;

/// What happened to a path over the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeKind {
    /// Created in the range.
    New,
    /// Changed in place.
    Modify,
    /// Moved (from `from_key`).
    Rename,
    /// Gone.
    Delete,
}

/// One row of net changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happened.
    pub change: ChangeKind,
    /// Volume.
    pub volume: String,
    /// Bucket.
    pub bucket: String,
    /// The key (after the range; before it for `DELETE`).
    pub key: String,
    /// For `RENAME`: the key before the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Object(u64),
    Key(String, String, String),
}

#[derive(Debug)]
struct Touched {
    volume: String,
    bucket: String,
    before: Option<String>,
    after: Option<String>,
    modified: bool,
    fso: Option<u64>,
}

/// What an op of a flat bucket does to one key.
#[derive(Clone, Copy)]
enum Effect<'a> {
    /// Created or committed (before the range: absent, when first seen
    /// so); `true` when its content changed.
    Create(&'a str, bool),
    /// Changed in place (`true`: content or metadata).
    Change(&'a str, bool),
    Delete(&'a str),
    /// From, to.
    Rename(&'a str, &'a str),
}

/// Fold one effect on a key of a flat bucket into `touched`.
fn flat(
    order: &mut Vec<Identity>,
    touched: &mut HashMap<Identity, Touched>,
    volume: &str,
    bucket: &str,
    effect: Effect<'_>,
) {
    let path = match effect {
        Effect::Rename(from, to) => return rename(order, touched, volume, bucket, from, to),
        Effect::Create(path, _) | Effect::Change(path, _) | Effect::Delete(path) => path,
    };
    let id = Identity::Key(volume.to_string(), bucket.to_string(), path.to_string());
    let mut t = touched.remove(&id).unwrap_or_else(|| {
        order.push(id.clone());
        Touched {
            volume: volume.to_string(),
            bucket: bucket.to_string(),
            before: match effect {
                Effect::Create(..) => None,
                _ => Some(path.to_string()),
            },
            after: Some(path.to_string()),
            modified: false,
            fso: None,
        }
    });
    match effect {
        Effect::Delete(_) => t.after = None,
        Effect::Create(_, m) | Effect::Change(_, m) => {
            t.modified |= m;
            t.after = Some(path.to_string());
        }
        Effect::Rename(..) => {}
    }
    touched.insert(id, t);
}

/// A key of a flat bucket moved: what was known of it goes with it.
fn rename(
    order: &mut Vec<Identity>,
    touched: &mut HashMap<Identity, Touched>,
    volume: &str,
    bucket: &str,
    from: &str,
    to: &str,
) {
    let key = |k: &str| Identity::Key(volume.to_string(), bucket.to_string(), k.to_string());
    let id = key(from);
    let mut t = touched.remove(&id).unwrap_or_else(|| {
        order.push(id);
        Touched {
            volume: volume.to_string(),
            bucket: bucket.to_string(),
            before: Some(from.to_string()),
            after: None,
            modified: false,
            fso: None,
        }
    });
    t.after = Some(to.to_string());
    let moved = key(to);
    order.push(moved.clone());
    touched.insert(moved, t);
}

/// Feed `f` the per-object effects of an event that stored the objects it
/// took (`crate::expand`): a rename's are remove/create pairs, each a
/// rename of one object (the remove of an object it replaced, after a
/// pair, is left out, as a file's rename onto a key leaves it out); a
/// recursive delete's are removes.
fn each_taken(
    ledger: &Ledger,
    event: &crate::proto::Event,
    mut f: impl FnMut(Effect<'_>),
) -> Result<()> {
    use crate::expand::{Action, ExpIter};
    let rename = event
        .op
        .as_ref()
        .is_some_and(|op| matches!(op.kind, Some(Kind::Rename(_))));
    let mut it = ExpIter::new(&ledger.db()?, event)?;
    for x in it.by_ref() {
        let Some(x) = x?.1 else { continue };
        match (x.action, &x.from_key) {
            (Action::Create, Some(from)) => f(Effect::Rename(from, &x.key)),
            (Action::Remove, _) if !rename => f(Effect::Delete(&x.key)),
            _ => {}
        }
    }
    if it.cut() {
        // What the event took ran out: retention dropped it with the event
        // while it was read (a gap), or it is lost.
        return Err(Error::Gap {
            expected: event.seq,
            actual: ledger.first_after_cut(event.seq)?,
        });
    }
    Ok(())
}

impl Ledger {
    /// The net changes between `since` (inclusive) and `until` (inclusive,
    /// default the head): one row per path, see [`crate::changes`].
    pub fn changes(&self, since: Start, until: Option<u64>) -> Result<Vec<Change>> {
        changes(self, since, until)
    }
}

fn changes(ledger: &Ledger, since: Start, until: Option<u64>) -> Result<Vec<Change>> {
    let b = ledger.bounds()?;
    let until = until.unwrap_or(b.head).min(b.head);
    let start = ledger.range_start(since, &b)?;
    let mut order: Vec<Identity> = Vec::new();
    let mut touched: HashMap<Identity, Touched> = HashMap::new();
    let mut failure = None;
    let before_seq = start - 1;
    ledger.scan_with(start, |seq, event| {
        if seq > until {
            return false;
        }
        let Some(op) = &event.op else { return true };
        let Some(kind) = &op.kind else { return true };
        if matches!(
            kind,
            Kind::VolumeCreate(_)
                | Kind::VolumeDelete(_)
                | Kind::BucketCreate(_)
                | Kind::BucketDelete(_)
        ) {
            return true;
        }
        let modifies = !matches!(
            kind,
            Kind::CreateFile(_) | Kind::CreateDirectory(_) | Kind::Rename(_) | Kind::Delete(_)
        );
        if op.layout_enum() == Layout::Fso && op.object_id.is_some() {
            let oid = op.object_id.unwrap_or(0);
            let id = Identity::Object(oid);
            if !touched.contains_key(&id) {
                let before = if before_seq == 0 {
                    None
                } else {
                    match ledger.path_at(oid, before_seq) {
                        Ok(p) => p.map(|p| p.key),
                        Err(e) => {
                            failure = Some(e);
                            return false;
                        }
                    }
                };
                order.push(id.clone());
                touched.insert(
                    id.clone(),
                    Touched {
                        volume: op.volume.clone(),
                        bucket: op.bucket.clone(),
                        before,
                        after: None,
                        modified: false,
                        fso: Some(oid),
                    },
                );
            }
            if modifies {
                touched.get_mut(&id).expect("inserted").modified = true;
            }
            return true;
        }
        // Flat buckets: the key is the identity. A directory's rename or a
        // recursive delete that stored the objects it took (format 9) is
        // a rename or a delete of each of them.
        if event.below.is_some() && matches!(kind, Kind::Rename(_) | Kind::Delete(_)) {
            if let Err(e) = each_taken(ledger, &event, |effect| {
                flat(&mut order, &mut touched, &op.volume, &op.bucket, effect)
            }) {
                failure = Some(e);
                return false;
            }
            return true;
        }
        let effect = match kind {
            Kind::Delete(_) => Effect::Delete(&event.path),
            Kind::Rename(_) => Effect::Rename(&event.path, &event.to_path),
            Kind::CreateFile(_) | Kind::CreateDirectory(_) | Kind::Commit(_) => {
                Effect::Create(&event.path, modifies)
            }
            _ => Effect::Change(&event.path, modifies),
        };
        flat(&mut order, &mut touched, &op.volume, &op.bucket, effect);
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in order {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(mut t) = touched.remove(&id) else {
            continue;
        };
        if let Some(oid) = t.fso {
            t.after = ledger.path_at(oid, until)?.map(|p| p.key);
        }
        let row = |change, key: &str, from: Option<&String>| Change {
            change,
            volume: t.volume.clone(),
            bucket: t.bucket.clone(),
            key: key.to_string(),
            from_key: from.cloned(),
        };
        match (&t.before, &t.after) {
            (None, Some(a)) => rows.push(row(ChangeKind::New, a, None)),
            (Some(b), None) => rows.push(row(ChangeKind::Delete, b, None)),
            (None, None) => {}
            (Some(b), Some(a)) => {
                if a != b {
                    rows.push(row(ChangeKind::Rename, a, Some(b)));
                }
                if t.modified {
                    rows.push(row(ChangeKind::Modify, a, None));
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        (&a.volume, &a.bucket, &a.key, a.change).cmp(&(&b.volume, &b.bucket, &b.key, b.change))
    });
    Ok(rows)
}
