//! A local directory tree as a source: `fsfeed watch`.
//!
//! A [`Watch`] follows a tree with inotify and appends what happens to it
//! to an FSO bucket of a ledger (named after the tree unless told), so that
//! the ledger's consumers (cursors, S3 and HDFS renderers, delivery) see a
//! local file system as they see an object store. `ARCHITECTURE.md`, "A local
//! tree as a source", is the map; this page is the contract.
//!
//! # What is appended
//!
//! | on the tree | op |
//! |---|---|
//! | a file or directory appears | `create_file` (`perms`, `owner`, `group`: numeric ids) or `create_directory` |
//! | a file is closed after a write | `commit`, with `size` and `mtime` |
//! | a symbolic link appears | `create_file` and `commit` (it is never written: its size is the target's length) |
//! | a hard link to a file appears | `create_file` and `commit` with the file's size and mtime (no close after a write comes for it) |
//! | a name goes | `delete` (`recursive` for a directory) |
//! | a rename inside the tree | one `rename`, a directory's too (its subtree moves with it, O(1) in the ledger) |
//! | a move out of the tree | `delete` |
//! | a move into the tree | the creates of the subtree found there |
//! | `chmod`, `chown` | `set_attr` (`perms`; `owner` and `group`) |
//! | a file's mtime set without a write (`touch`, `utimes`) | `set_times` with `mtime` |
//!
//! Every op says in `source` what produced it: `inotify` (a kernel event),
//! `scan` (found while listing a directory that appeared, which closes the
//! window between a `mkdir` and its watch) or `resync` (a correction from a
//! diff, below).
//!
//! # Recovery by diff
//!
//! On start, on a queue overflow, after an append the namespace refused,
//! and on a timer for directories that could not be watched, the watcher
//! lists the tree (or that part of it) and compares it with what the ledger
//! holds: paths, types, sizes and mtimes from the namespace at the head
//! ([`fsfeed::Ledger::tree_at`]), and, for what this process saw itself,
//! permissions, owners and inode numbers. It appends only the ops that make
//! the namespace equal the tree, marked `resync`: a consumer sees a short
//! burst of corrections, each saying it is one. A directory
//! renamed while events were lost is one `rename` when this process knew
//! its inode; after a restart (inodes are not in the ledger) it is a delete
//! and the creates of its new subtree.
//!
//! # Limits
//!
//! A directory whose watch cannot be added (`max_user_watches`, or any other
//! refusal) is counted and logged, and rescanned every
//! [`Options::rescan_interval`] until a watch can be added. `--ignore`
//! globs (relative paths; `**` spans directories, `*` does not) leave
//! paths out; a directory matched by `dir/**` is left out with everything
//! below it and is not watched. Names that are not UTF-8, or that the
//! ledger cannot hold as a key, are skipped and counted.
//!
//! # Waiting for the watcher
//!
//! [`Watch::sync`] is Watchman's cookie: it creates a file named
//! `.fsfeed-cookie-*` in the root and waits until the watcher has read its
//! event, so everything that happened to the tree before the call has been
//! appended. Cookie files are never appended.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fsfeed::{Error, Ledger, Result};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;

mod tree;
mod watcher;

/// The prefix of [`Watch::sync`]'s cookie files.
pub const COOKIE_PREFIX: &str = ".fsfeed-cookie-";

/// How to watch a tree.
#[derive(Debug, Clone)]
pub struct Options {
    /// Volume of the bucket (default none).
    pub volume: String,
    /// Bucket to append to (default: the root directory's name).
    pub bucket: Option<String>,
    /// Paths to leave out, as globs relative to the root.
    pub ignore: Vec<String>,
    /// How often directories without a watch are listed again (30 s).
    pub rescan_interval: Duration,
    /// How long a moved-from event that is the last one read waits for its
    /// moved-to before the move counts as a move out of the tree (20 ms); any
    /// other event after it decides at once.
    pub move_grace: Duration,
    /// Most ops in one append (1,024).
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            volume: String::new(),
            bucket: None,
            ignore: Vec::new(),
            rescan_interval: Duration::from_secs(30),
            move_grace: Duration::from_millis(20),
            max_batch: 1024,
        }
    }
}

/// What a watcher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Kernel events read.
    pub events: u64,
    /// Ops appended, all sources.
    pub ops: u64,
    /// Ops appended from diffs (`source` = `resync`).
    pub diff_ops: u64,
    /// Queue overflows the kernel reported.
    pub overflows: u64,
    /// Diffs of the whole tree or of a part.
    pub rescans: u64,
    /// Directories watched now.
    pub watches: u64,
    /// Watches the kernel refused.
    pub watch_failures: u64,
    /// Directories without a watch now, rescanned on the timer.
    pub unwatched: u64,
    /// Paths left out by `ignore`.
    pub ignored: u64,
    /// Names skipped: not UTF-8, or not a key the ledger can hold.
    pub skipped: u64,
    /// Appends the ledger refused (each followed by a diff).
    pub append_errors: u64,
    /// The seq of the last op appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// State shared by the handle and the watcher thread.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) pause: AtomicBool,
    pub(crate) counters: Mutex<Counters>,
    /// Cookies the watcher has seen, with the condition [`Watch::sync`] waits on.
    pub(crate) cookies: Mutex<Cookies>,
    pub(crate) cookie_seen: Condvar,
}

#[derive(Default)]
pub(crate) struct Cookies {
    pub(crate) seen: std::collections::HashSet<String>,
    /// The watcher ended (with its error, if any, kept in `JoinHandle`).
    pub(crate) ended: bool,
}

impl Shared {
    pub(crate) fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock());
    }

    pub(crate) fn cookies_seen(&self, names: impl IntoIterator<Item = String>) {
        let mut c = self.cookies.lock();
        c.seen.extend(names);
        self.cookie_seen.notify_all();
    }
}

/// A running watcher. Dropping it stops it; [`Watch::stop`] also says how
/// it ended.
pub struct Watch {
    root: PathBuf,
    bucket: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
    next_cookie: AtomicU64,
}

/// A number of seconds from a binding (`rescan_interval`, a sync's
/// `timeout`): positive and finite, or `invalid_argument` naming `what`.
pub fn seconds(v: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{what} must be a positive number of seconds, not {v}"
            ))
        })
}

/// Check a root and options as [`watch`] does, without a ledger: the
/// resolved root and the bucket's name, or `invalid_argument`. The CLI
/// calls it before it opens (or creates) the ledger, so that bad input
/// changes nothing.
pub fn check(root: &Path, options: &Options) -> Result<(PathBuf, String)> {
    let root = std::fs::canonicalize(root)
        .map_err(|e| Error::InvalidArgument(format!("watch root {}: {e}", root.display())))?;
    if !root.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "watch root {} is not a directory",
            root.display()
        )));
    }
    let bucket = match &options.bucket {
        Some(b) => b.clone(),
        None => root
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "the root {} has no UTF-8 name to call its bucket: give one",
                    root.display()
                ))
            })?,
    };
    // The names must make valid ops: the same checks an append makes.
    fsfeed::op::validate(
        &fsfeed::Op::create_directory(&options.volume, &bucket, "x")
            .with_layout(fsfeed::Layout::Fso)
            .at(1),
        0,
    )
    .map_err(|e| Error::InvalidArgument(format!("bucket or volume: {e}")))?;
    if options.max_batch == 0 {
        return Err(Error::InvalidArgument(
            "max_batch must be at least 1".into(),
        ));
    }
    if options.rescan_interval.is_zero() {
        return Err(Error::InvalidArgument(
            "rescan_interval must be more than zero".into(),
        ));
    }
    tree::Ignore::new(&options.ignore)?;
    Ok((root, bucket))
}

/// Watch `root` (a directory) and append what happens to it to `ledger`.
///
/// Before it returns, the tree has been listed, every directory watched and
/// the diff against the namespace appended, so the namespace at the head
/// lists the tree. Errors: `invalid_argument` for a root that is not a
/// directory, a bad glob or bucket name; `read_only` for a read-only
/// ledger; `io` when inotify cannot start. A root removed or moved away
/// while watched ends the watcher with `io` ([`Watch::sync`], [`Watch::stop`]
/// and [`Watch::wait`] return it).
pub fn watch(root: &Path, ledger: &Ledger, options: Options) -> Result<Watch> {
    let (root, bucket) = check(root, &options)?;
    if ledger.is_read_only() {
        return Err(Error::ReadOnly);
    }
    let ignore = tree::Ignore::new(&options.ignore)?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        pause: AtomicBool::new(false),
        counters: Mutex::new(Counters::default()),
        cookies: Mutex::new(Cookies::default()),
        cookie_seen: Condvar::new(),
    });
    let mut w = watcher::Watcher::new(
        root.clone(),
        ledger.clone(),
        options.volume.clone(),
        bucket.clone(),
        ignore,
        options.clone(),
        shared.clone(),
    )?;
    w.start()?;
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("fsfeed-watch".into())
        .spawn(move || {
            let r = w.run();
            let mut c = thread_shared.cookies.lock();
            c.ended = true;
            thread_shared.cookie_seen.notify_all();
            r
        })
        .map_err(Error::Io)?;
    Ok(Watch {
        root,
        bucket,
        shared,
        thread: Some(thread),
        next_cookie: AtomicU64::new(0),
    })
}

impl Watch {
    /// The tree's root, as resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bucket the ops go to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// What the watcher has done so far.
    pub fn counters(&self) -> Counters {
        self.shared.counters.lock().clone()
    }

    /// Wait until everything that happened to the tree before this call is
    /// appended (Watchman's cookie). `io` (timed out) after `timeout`; the
    /// watcher's own error if it ended.
    pub fn sync(&mut self, timeout: Duration) -> Result<()> {
        let n = self.next_cookie.fetch_add(1, Ordering::Relaxed);
        let name = format!("{COOKIE_PREFIX}{}-{n}", std::process::id());
        let path = self.root.join(&name);
        std::fs::write(&path, b"").map_err(Error::Io)?;
        let deadline = Instant::now() + timeout;
        let outcome = {
            let mut c = self.shared.cookies.lock();
            loop {
                if c.seen.remove(&name) {
                    break Ok(());
                }
                if c.ended {
                    break Err(None);
                }
                if self
                    .shared
                    .cookie_seen
                    .wait_until(&mut c, deadline)
                    .timed_out()
                {
                    break Err(Some(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the watcher did not see its cookie within {timeout:?}"),
                    ))));
                }
            }
        };
        let _ = std::fs::remove_file(&path);
        match outcome {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => match self.finish() {
                Err(e) => Err(e),
                Ok(()) => Err(Error::InvalidArgument("the watcher was stopped".into())),
            },
        }
    }

    /// Stop reading the kernel's events (they queue up, and overflow once the
    /// queue is full) until [`Watch::resume`]: for tests of the recovery.
    #[doc(hidden)]
    pub fn pause(&self) {
        self.shared.pause.store(true, Ordering::SeqCst);
    }

    /// Read the kernel's events again after [`Watch::pause`].
    #[doc(hidden)]
    pub fn resume(&self) {
        self.shared.pause.store(false, Ordering::SeqCst);
    }

    /// Stop the watcher: the events read so far are appended first. Returns
    /// the counters, or the error that ended the watcher.
    pub fn stop(mut self) -> Result<Counters> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.finish()?;
        Ok(self.counters())
    }

    /// Whether the watcher thread has ended (stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Join the thread, once.
    fn finish(&mut self) -> Result<()> {
        match self.thread.take() {
            None => Ok(()),
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(Error::InvalidArgument("the watcher thread panicked".into()))
            }),
        }
    }

    /// Wait for the watcher to end by itself (an error, or [`Watch::stop`]
    /// from elsewhere): what `fsfeed watch` does until a signal.
    pub fn wait(mut self) -> Result<Counters> {
        self.finish()?;
        Ok(self.counters())
    }

    /// A flag that stops the watcher when set (for a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }
}

/// Stops a [`Watch`] from another thread, and reads its counters.
#[derive(Clone)]
pub struct Stopper(Arc<Shared>);

impl Stopper {
    /// Ask the watcher to stop; it ends within a poll interval.
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }

    /// The watcher's counters, read without the [`Watch`] (which a
    /// [`Watch::sync`] may be holding on another thread).
    pub fn counters(&self) -> Counters {
        self.0.counters.lock().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.finish();
    }
}
