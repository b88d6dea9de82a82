//! Publisher status: what `fsfeed publish status` shows. A running
//! `fsfeed publish` rewrites `LEDGER/publishers/NAME.json` (atomically)
//! twice a second and when it stops; `status` reads those files and takes
//! each publisher's committed position and lag from the ledger itself.
//! Nothing in a status file is secret: endpoints print without their
//! password and error texts are scrubbed.

use std::path::{Path, PathBuf};

use fsfeed::{Ledger, Position};
use serde::{Deserialize, Serialize};

use crate::counters::CounterValues;
use crate::error::{Error, Result};

/// Where a publisher is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Opening its cursor and connecting.
    Starting,
    /// Its gate says another process leads; it waits.
    Standby,
    /// Sending, or waiting for events.
    Running,
    /// The last send failed and will be tried again after a backoff.
    Retrying,
    /// The far side rejected a batch for good (or the cursor cannot go
    /// on): the publisher holds its batch, tries it again every
    /// `parked_retry_ms`, and skips nothing.
    Parked,
    /// `--once` reached the head.
    Done,
    /// Stopped (SIGTERM, or the process ended).
    Stopped,
}

impl State {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Standby => "standby",
            State::Running => "running",
            State::Retrying => "retrying",
            State::Parked => "parked",
            State::Done => "done",
            State::Stopped => "stopped",
        }
    }
}

/// One publisher's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublisherStatus {
    /// The publisher (and cursor) name.
    pub name: String,
    /// Its endpoint, password as `***`.
    pub endpoint: String,
    /// `http`, `amqp` or `kafka`.
    pub transport: String,
    /// `always`, `lock` or `callback`.
    pub gate: String,
    /// The process running it.
    pub pid: u32,
    /// Where it is.
    pub state: State,
    /// Its committed position (the ledger's word, when read by `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<Position>,
    /// Events between the committed position and the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Whether the process that wrote this is still running (filled in by `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alive: Option<bool>,
    /// Its counters.
    pub counters: CounterValues,
    /// The last failure (secrets removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
    /// When this status was written (RFC 3339).
    pub updated: String,
}

/// The directory of a ledger's publisher state (status files, default lease files).
pub fn dir(ledger: &Path) -> PathBuf {
    ledger.join("publishers")
}

/// Write a status file atomically. A standby (another process leads the
/// same publisher under a lock gate) leaves the file of a live leader alone.
pub fn write(ledger: &Path, s: &PublisherStatus) -> Result<()> {
    let d = dir(ledger);
    std::fs::create_dir_all(&d).map_err(|e| Error::Io(format!("{}: {e}", d.display())))?;
    let path = d.join(format!("{}.json", s.name));
    if s.state == State::Standby {
        let other = std::fs::read(&path)
            .ok()
            .and_then(|t| serde_json::from_slice::<PublisherStatus>(&t).ok());
        if let Some(o) = other {
            if o.pid != s.pid && alive(o.pid) {
                return Ok(());
            }
        }
    }
    let tmp = d.join(format!(".{}.json.tmp", s.name));
    let bytes = serde_json::to_vec_pretty(s).expect("status serialises");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

/// Every publisher status of a ledger, by name, with the committed position
/// and lag from the ledger and whether its process is alive.
pub fn read_all(ledger: &Ledger) -> Result<Vec<PublisherStatus>> {
    let d = dir(ledger.path());
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::Io(format!("{}: {e}", d.display()))),
    };
    let cursors = ledger.cursors()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = match std::fs::read(e.path()) {
            Ok(t) => t,
            Err(_) => continue,
        };
        let mut s: PublisherStatus = serde_json::from_slice(&text).map_err(|err| {
            Error::Io(format!(
                "{}: not a publisher status: {err}",
                e.path().display()
            ))
        })?;
        if let Some(c) = cursors.iter().find(|c| c.name == s.name) {
            s.committed = Some(c.position);
            s.lag = Some(c.lag);
        }
        s.alive = Some(alive(s.pid));
        out.push(s);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Is process `pid` running (Linux: `/proc/PID` exists)?
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
