//! The free-space guard: appends and cursor commits are refused as
//! `disk_full` while the ledger's file system has less than
//! [`OpenOptions::min_free_bytes`](super::OpenOptions) free, before RocksDB
//! is asked to write.
//!
//! Why before: a write-ahead-log append that fails with `ENOSPC` puts
//! RocksDB in a background-error state that it does not leave on its own
//! (its automatic recovery covers flushes and compactions, and its C API has
//! no `Resume`), so every later write would fail until the ledger is
//! reopened. Refusing while a reserve is still free keeps the database
//! writable: the caller gets `disk_full`, nothing is written, and the next
//! append after space is freed goes through with the next seq. The reserve
//! also leaves room for the memtable flushes and compactions RocksDB runs
//! on its own. If the disk fills anyway (another process took the reserve
//! between two looks), the append still gets `disk_full`, nothing
//! acknowledged is lost, and reopening the ledger once space is freed
//! writes again (ARCHITECTURE.md, "Reliability").
//!
//! A look is one `statvfs`: taken at most every `RECHECK` (100 ms), or at once when
//! what was written since the last look could have eaten into the reserve.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// The default reserve: room for RocksDB to flush every memtable
/// (96 MiB together) and compact.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 128 << 20;

/// Longest time between two looks at the free space.
const RECHECK: Duration = Duration::from_millis(100);

/// Look again at once when the estimate comes this close to the reserve.
const MARGIN: u64 = 16 << 20;

pub(crate) struct SpaceGuard {
    dir: PathBuf,
    reserve: u64,
    state: Mutex<Look>,
}

struct Look {
    /// Free bytes at the last look (`None`: not looked yet).
    free: Option<u64>,
    at: Instant,
    /// Bytes let through since.
    written: u64,
}

impl SpaceGuard {
    pub(crate) fn new(dir: PathBuf, reserve: u64) -> SpaceGuard {
        SpaceGuard {
            dir,
            reserve,
            state: Mutex::new(Look {
                free: None,
                at: Instant::now(),
                written: 0,
            }),
        }
    }

    /// May `bytes` more be written? `disk_full` if that would leave less
    /// than the reserve free.
    pub(crate) fn admit(&self, bytes: u64) -> Result<()> {
        if self.reserve == 0 {
            return Ok(());
        }
        let mut look = self.state.lock();
        let estimate = look.free.map(|f| f.saturating_sub(look.written));
        let stale = match estimate {
            None => true,
            Some(e) => look.at.elapsed() >= RECHECK || e < self.reserve + bytes + MARGIN,
        };
        if stale {
            let st = rustix::fs::statvfs(&self.dir)
                .map_err(|e| Error::Io(std::io::Error::from_raw_os_error(e.raw_os_error())))?;
            look.free = Some(st.f_bavail.saturating_mul(st.f_frsize));
            look.at = Instant::now();
            look.written = 0;
        }
        let free = look.free.unwrap_or(0).saturating_sub(look.written);
        if free < self.reserve.saturating_add(bytes) {
            return Err(Error::DiskFull(format!(
                "{free} bytes free on the ledger's file system, {} must stay free \
                 (OpenOptions::min_free_bytes); {bytes} more were refused",
                self.reserve
            )));
        }
        look.written += bytes;
        Ok(())
    }
}
