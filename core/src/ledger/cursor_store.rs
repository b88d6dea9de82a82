//! The cursor store: named cursors committed through the writer (column
//! family `cursors`) or by read-only openers (`LEDGER/cursors/NAME.json`);
//! for a name in both, the newer commit wins (the one rule, `cursor_state`).

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;
use rocksdb::DB;

use super::keys::*;
use super::*;
use crate::error::{Error, Result};
use crate::proto::CursorState;
use crate::read::Position;

impl Ledger {
    /// The committed position of a named cursor, from either store.
    pub fn committed(&self, name: &str) -> Result<Option<Position>> {
        check_cursor_name(name)?;
        Ok(self.cursor_state(name)?.map(|(p, _, _)| p))
    }

    fn cursor_state(&self, name: &str) -> Result<Option<(Position, i64, &'static str)>> {
        let db = self.db()?;
        let cf = db.cf_handle(CF_CURSORS).expect("cf cursors");
        let in_db = match db.get_cf(cf, name.as_bytes())? {
            Some(v) => {
                let st = CursorState::decode(v.as_slice())
                    .map_err(|e| Error::Corrupt(format!("cursor {name}: {e}")))?;
                let p = st.position.unwrap_or_default();
                Some((Position::new(p.seq, p.sub), st.updated_us, "writer"))
            }
            None => None,
        };
        let in_file = read_cursor_file(&self.inner.path, name)?.map(|(p, t)| (p, t, "reader"));
        Ok(match (in_db, in_file) {
            (Some(a), Some(b)) => Some(if reader_wins(a.1, b.1) { b } else { a }),
            (a, b) => a.or(b),
        })
    }

    /// Commit a named cursor's position without holding the cursor: what a
    /// pipeline whose reader runs ahead of the far side's acknowledgements
    /// (a push publisher) stores once a batch is acknowledged. The same rules
    /// as [`crate::Cursor::commit`]: a position past the head is
    /// `position_out_of_range`, and nothing changes on error.
    pub fn commit(&self, name: &str, pos: Position) -> Result<()> {
        check_cursor_name(name)?;
        self.store_cursor(name, pos)
    }

    /// Store a cursor's committed position (durable per the ledger's durability;
    /// read-only openers fsync their cursor file).
    pub(crate) fn store_cursor(&self, name: &str, pos: Position) -> Result<()> {
        let b = self.bounds()?;
        if pos.seq > b.head + 1 || (pos.seq == b.head + 1 && pos.sub != 0) {
            return Err(Error::PositionOutOfRange {
                seq: pos.seq,
                sub: pos.sub,
                head: b.head,
            });
        }
        let now = crate::op::now_us();
        if self.inner.read_only {
            return write_cursor_file(&self.inner.path, name, pos, now);
        }
        let db = self.db()?;
        let cf = db.cf_handle(CF_CURSORS).expect("cf cursors");
        let st = CursorState {
            position: Some(crate::proto::Position {
                seq: pos.seq,
                sub: pos.sub,
            }),
            updated_us: now,
        };
        let value = st.encode_to_vec();
        self.inner.space.admit((name.len() + value.len()) as u64)?;
        db.put_cf_opt(
            cf,
            name.as_bytes(),
            value,
            &self.inner.durability.write_options(),
        )?;
        Ok(())
    }

    /// Forget a named cursor in both stores (it no longer holds retention back).
    pub fn delete_cursor(&self, name: &str) -> Result<bool> {
        check_cursor_name(name)?;
        let mut found = false;
        if !self.inner.read_only {
            let db = self.db()?;
            let cf = db.cf_handle(CF_CURSORS).expect("cf cursors");
            found |= db.get_cf(cf, name.as_bytes())?.is_some();
            db.delete_cf_opt(cf, name.as_bytes(), &self.inner.durability.write_options())?;
        }
        let f = cursor_file(&self.inner.path, name);
        if f.exists() {
            fs::remove_file(&f)?;
            found = true;
        }
        Ok(found)
    }

    /// Every named cursor, by name, with its lag.
    pub fn cursors(&self) -> Result<Vec<CursorInfo>> {
        let b = self.bounds()?;
        let db = self.db()?;
        let mut all = all_cursor_states(&db, &self.inner.path)?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &mut all {
            c.lag = lag(b.head, c.position);
        }
        Ok(all)
    }
}

/// A valid cursor name: 1 to 128 of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_cursor_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "cursor name {name:?} must be 1 to 128 of [A-Za-z0-9._-], not starting with `.`"
        )))
    }
}

fn cursor_file(ledger: &Path, name: &str) -> PathBuf {
    ledger.join("cursors").join(format!("{name}.json"))
}

#[derive(serde::Deserialize, Serialize)]
struct CursorFile {
    name: String,
    seq: u64,
    sub: u32,
    updated_us: i64,
}

fn read_cursor_file(ledger: &Path, name: &str) -> Result<Option<(Position, i64)>> {
    let f = cursor_file(ledger, name);
    match fs::read(&f) {
        Ok(bytes) => {
            let c: CursorFile = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", f.display())))?;
            Ok(Some((Position::new(c.seq, c.sub), c.updated_us)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_cursor_file(ledger: &Path, name: &str, pos: Position, now: i64) -> Result<()> {
    use std::io::Write;
    let dir = ledger.join("cursors");
    fs::create_dir_all(&dir)?;
    let body = serde_json::to_vec(&CursorFile {
        name: name.to_string(),
        seq: pos.seq,
        sub: pos.sub,
        updated_us: now,
    })
    .expect("cursor file JSON");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, cursor_file(ledger, name))?;
    fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Every cursor of the reader store: name -> (position, updated_us).
pub(crate) fn read_cursor_files(
    ledger: &Path,
) -> Result<std::collections::BTreeMap<String, (Position, i64)>> {
    let mut out = std::collections::BTreeMap::new();
    let dir = ledger.join("cursors");
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        if check_cursor_name(name).is_err() {
            continue;
        }
        if let Some(state) = read_cursor_file(ledger, name)? {
            out.insert(name.to_string(), state);
        }
    }
    Ok(out)
}

/// Every cursor from both stores; for a name in both, the newer wins.
pub(crate) fn all_cursor_states(db: &DB, ledger: &Path) -> Result<Vec<CursorInfo>> {
    let mut out: std::collections::BTreeMap<String, CursorInfo> = Default::default();
    let cf = db.cf_handle(CF_CURSORS).expect("cf cursors");
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item?;
        let name = String::from_utf8_lossy(&k).into_owned();
        let st =
            CursorState::decode(&*v).map_err(|e| Error::Corrupt(format!("cursor {name}: {e}")))?;
        let p = st.position.unwrap_or_default();
        out.insert(
            name.clone(),
            CursorInfo {
                name,
                position: Position::new(p.seq, p.sub),
                lag: 0,
                store: "writer",
                updated_us: st.updated_us,
            },
        );
    }
    for (name, (pos, t)) in read_cursor_files(ledger)? {
        let newer = out
            .get(&name)
            .map(|c| reader_wins(c.updated_us, t))
            .unwrap_or(true);
        if newer {
            out.insert(
                name.clone(),
                CursorInfo {
                    name,
                    position: pos,
                    lag: 0,
                    store: "reader",
                    updated_us: t,
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// The one rule for a name committed in both stores: the newer commit wins,
/// and the writer's on a tie. Times are the commits' `updated_us`.
pub(crate) fn reader_wins(writer_us: i64, reader_us: i64) -> bool {
    reader_us > writer_us
}

/// Events between a committed position and the head.
pub(crate) fn lag(head: u64, pos: Position) -> u64 {
    (head + 1).saturating_sub(pos.seq)
}
