//! How readers in other processes learn of an append at once.
//!
//! A read-only opener is a RocksDB secondary: it sees new events only when
//! it catches up with the primary, and nothing tells it when to. So the
//! writer keeps a small file, `LEDGER/head.beacon`, and rewrites its 8 bytes
//! (the head seq, big-endian) after each group of appends. Readers watch it
//! with inotify: one watcher thread per read-only opener blocks on the
//! inotify descriptor and, when the file is written, wakes every waiting
//! reader of that opener, which then catches up.
//!
//! The writer's side is off the append path: an announcer thread waits on
//! the same signal as in-process readers and writes the beacon, then rests
//! for [`GAP`] before it looks again, so a busy writer pays for at most one
//! wake-up and one `pwrite` a millisecond (waking a waiting thread on every
//! group commit cost a third of single-op buffered appends on 2 cores),
//! and an idle one's next append is announced at once. The beacon holds
//! no data anyone needs: a missing or stale beacon (a writer from before
//! the beacon, a file system without inotify) only means readers fall back
//! to catching up on a timer.
//!
//! Neither thread touches RocksDB: the announcer writes a file, and the
//! watcher only counts announcements on the signal and wakes the waiting
//! readers, which catch up on their own threads. A process that exits
//! without closing its ledger has no thread of ours inside RocksDB while
//! its static destructors run (a watcher that caught up itself crashed
//! `fsfeed tail` at exit with "pthread lock: Invalid argument").

use std::fs::{File, OpenOptions as FileOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};
use parking_lot::Mutex;

use super::Signal;

/// The announcer's rest between two writes of the beacon.
const GAP: std::time::Duration = std::time::Duration::from_millis(1);

/// The beacon file of a ledger directory.
pub(crate) fn path(ledger: &Path) -> PathBuf {
    ledger.join("head.beacon")
}

/// The writer's announcer thread.
pub(crate) struct Announcer {
    thread: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Start announcing the head of `signal` in `LEDGER/head.beacon`.
    pub(crate) fn start(ledger: &Path, signal: Arc<Signal>) -> std::io::Result<Announcer> {
        let file = FileOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path(ledger))?;
        let thread = std::thread::Builder::new()
            .name("fsfeed-beacon".into())
            .spawn(move || announce(&file, &signal))?;
        Ok(Announcer {
            thread: Some(thread),
        })
    }

    /// Wait for the thread (after the signal was closed).
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn announce(file: &File, signal: &Signal) {
    let mut last = u64::MAX;
    loop {
        let head = {
            let mut s = signal.shared.lock();
            while !s.closed && s.bounds.head == last {
                signal.cond.wait(&mut s);
            }
            if s.closed {
                return;
            }
            s.bounds.head
        };
        // A failed write only slows readers down to their timer.
        let _ = file.write_at(&head.to_be_bytes(), 0);
        last = head;
        // Not waiting on the signal meanwhile: the writer's notify finds no
        // waiter and costs it nothing.
        std::thread::sleep(GAP);
    }
}

/// A read-only opener's watcher thread.
pub(crate) struct Watcher {
    watches: Mutex<Watches>,
    wd: WatchDescriptor,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Watcher {
    /// Watch the beacon of `ledger` for the opener whose signal this is;
    /// `None` when there is no beacon (or no inotify): readers then catch up
    /// on a timer.
    pub(crate) fn start(ledger: &Path, signal: Arc<Signal>) -> Option<Watcher> {
        let inotify = Inotify::init().ok()?;
        let wd = inotify
            .watches()
            .add(path(ledger), WatchMask::MODIFY)
            .ok()?;
        let watches = inotify.watches();
        let thread = std::thread::Builder::new()
            .name("fsfeed-watcher".into())
            .spawn(move || watch(inotify, &signal))
            .ok()?;
        Some(Watcher {
            watches: Mutex::new(watches),
            wd,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// End the thread: removing the watch wakes its read. A second call
    /// does nothing.
    pub(crate) fn stop(&self) {
        let _ = self.watches.lock().remove(self.wd.clone());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn watch(mut inotify: Inotify, signal: &Signal) {
    let mut buf = [0u8; 1024];
    loop {
        let Ok(events) = inotify.read_events_blocking(&mut buf) else {
            return;
        };
        let mut modified = false;
        for e in events {
            if e.mask.contains(inotify::EventMask::IGNORED) {
                // The watch was removed (the opener closes) or the file went.
                return;
            }
            modified |= e.mask.contains(inotify::EventMask::MODIFY);
        }
        if !modified {
            continue;
        }
        let mut s = signal.shared.lock();
        if s.closed {
            return;
        }
        s.beacon = s.beacon.wrapping_add(1);
        signal.cond.notify_all();
    }
}
