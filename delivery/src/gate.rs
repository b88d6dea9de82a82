//! Leader gates: a publisher sends only while its gate says it leads. When
//! leadership moves, the new leader resumes from the committed position
//! (its cursor is opened afresh at `committed`), so nothing acknowledged is
//! sent twice beyond the window in flight, and nothing is skipped.
//!
//! - `always`: leads.
//! - `lock`: leads while it holds an exclusive lock (`flock`) on a lease
//!   file, by default `LEDGER/publishers/NAME.lock`: one publisher among
//!   processes on a host. The kernel drops the lock when the holder dies,
//!   however it dies; a standby tries again every [`STANDBY_POLL`].
//! - a callback: the host's own answer (its consensus leader), asked before
//!   every batch; it must be cheap.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often a publisher that does not lead asks its gate again.
pub const STANDBY_POLL: Duration = Duration::from_millis(250);

/// A host callback: `true` while this process should publish.
pub type LeaderFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// A leader gate.
pub enum Gate {
    /// Always leads.
    Always,
    /// Leads while holding the lock on this file.
    Lock(LockGate),
    /// Leads while the callback says so.
    Callback(LeaderFn),
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::Always => f.write_str("always"),
            Gate::Lock(l) => write!(f, "lock({})", l.path.display()),
            Gate::Callback(_) => f.write_str("callback"),
        }
    }
}

impl Gate {
    /// A lock gate on `path` (created if missing; its directory too).
    pub fn lock(path: impl Into<PathBuf>) -> Gate {
        Gate::Lock(LockGate {
            path: path.into(),
            held: None,
        })
    }

    /// A gate that asks `f`.
    pub fn callback(f: impl Fn() -> bool + Send + Sync + 'static) -> Gate {
        Gate::Callback(Arc::new(f))
    }

    /// `always`, `lock` or `callback`.
    pub fn kind(&self) -> &'static str {
        match self {
            Gate::Always => "always",
            Gate::Lock(_) => "lock",
            Gate::Callback(_) => "callback",
        }
    }

    /// Does this process lead now? A lock gate takes the lock when it is
    /// free and then keeps it; an error opening the lease file is `Err`.
    pub fn leading(&mut self) -> std::io::Result<bool> {
        match self {
            Gate::Always => Ok(true),
            Gate::Lock(l) => l.try_take(),
            Gate::Callback(f) => {
                let f = f.clone();
                // A panicking host callback is "not leading", not a crash.
                Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())).unwrap_or(false))
            }
        }
    }

    /// Give up leadership (a lock gate unlocks its lease file).
    pub fn release(&mut self) {
        if let Gate::Lock(l) = self {
            l.held = None;
        }
    }
}

/// The `lock` gate's state.
pub struct LockGate {
    path: PathBuf,
    held: Option<File>,
}

impl LockGate {
    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn try_take(&mut self) -> std::io::Result<bool> {
        if self.held.is_some() {
            return Ok(true);
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?;
        match f.try_lock() {
            Ok(()) => {
                // Who holds it, for a human reading the file.
                f.set_len(0)?;
                writeln!(f, "{}", std::process::id())?;
                self.held = Some(f);
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_holder_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/p.lock");
        let mut a = Gate::lock(&p);
        let mut b = Gate::lock(&p);
        assert!(a.leading().unwrap());
        assert!(a.leading().unwrap());
        assert!(!b.leading().unwrap());
        a.release();
        assert!(b.leading().unwrap());
        assert!(!a.leading().unwrap());
    }

    #[test]
    fn a_panicking_callback_does_not_lead() {
        let mut g = Gate::callback(|| panic!("host bug"));
        assert!(!g.leading().unwrap());
        let mut g = Gate::callback(|| true);
        assert!(g.leading().unwrap());
    }
}
