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
//! is below it moved with it). In OBS buckets a key is the identity and a
//! rename moves it; a key first seen in the range by a commit is `NEW` (the
//! ledger cannot know whether an older version existed before it).
//!
//! A range that starts before the first retained event is a `gap` error: net
//! changes over lost history would be wrong.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
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
        // Flat buckets: the key is the identity.
        let id = Identity::Key(op.volume.clone(), op.bucket.clone(), event.path.clone());
        let mut t = touched.remove(&id).unwrap_or_else(|| {
            order.push(id.clone());
            Touched {
                volume: op.volume.clone(),
                bucket: op.bucket.clone(),
                before: match kind {
                    Kind::CreateFile(_) | Kind::CreateDirectory(_) | Kind::Commit(_) => None,
                    _ => Some(event.path.clone()),
                },
                after: Some(event.path.clone()),
                modified: false,
                fso: None,
            }
        });
        t.modified |= modifies;
        match kind {
            Kind::Delete(_) => t.after = None,
            Kind::Rename(_) => {
                t.after = Some(event.to_path.clone());
                let moved =
                    Identity::Key(op.volume.clone(), op.bucket.clone(), event.to_path.clone());
                order.push(moved.clone());
                touched.insert(moved, t);
                return true;
            }
            _ => t.after = Some(event.path.clone()),
        }
        touched.insert(id, t);
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
