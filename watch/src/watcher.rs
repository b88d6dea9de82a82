//! The watcher thread: kernel events to ops, and the diff that corrects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fsfeed::op::{Kind, SetAttr};
use fsfeed::{Error, Layout, Ledger, Op, Result};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use crate::tree::{self, Ignore, Mirror, Node};
use crate::{Options, Shared, COOKIE_PREFIX};

const INOTIFY: &str = "inotify";
const SCAN: &str = "scan";
const RESYNC: &str = "resync";

/// One kernel event, owned.
struct Raw {
    wd: i32,
    mask: EventMask,
    cookie: u32,
    name: Option<OsString>,
}

/// A moved-from waiting for its moved-to.
struct PendingMove {
    cookie: u32,
    rel: String,
    since: Instant,
}

pub(crate) struct Watcher {
    root: PathBuf,
    ledger: Ledger,
    volume: String,
    bucket: String,
    ignore: Ignore,
    options: Options,
    shared: Arc<Shared>,
    inotify: Inotify,
    /// Watch descriptor -> the directory it watches.
    wd_path: HashMap<i32, (WatchDescriptor, String)>,
    path_wd: BTreeMap<String, i32>,
    mirror: Mirror,
    moves: Vec<PendingMove>,
    /// Ops to append, with whether each came from a diff.
    ops: Vec<(Op, bool)>,
    unwatched: BTreeSet<String>,
    next_rescan: Instant,
    cookies: Vec<String>,
    /// Creates, closes and attribute changes whose path was gone when their
    /// event was read (its directory renamed since, say): (directory watch,
    /// name, when read), looked up where the directory is once the read's
    /// later events (the rename's among them) are handled, and again after
    /// the next reads for a grace (a rename's events may be queued just
    /// after its effect can be seen).
    vanished: Vec<(i32, String, Instant)>,
}

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::DONT_FOLLOW
        | WatchMask::EXCL_UNLINK
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(1)
        .max(1)
}

/// Set a create's owner, group and permissions from what `lstat` said.
fn owned(mut op: Op, n: &Node) -> Op {
    let owner = n.uid.map(|u| u.to_string()).unwrap_or_default();
    let group = n.gid.map(|g| g.to_string()).unwrap_or_default();
    match op.kind.as_mut() {
        Some(Kind::CreateFile(c)) => {
            c.owner = owner;
            c.group = group;
            c.perms = n.perms;
        }
        Some(Kind::CreateDirectory(c)) => {
            c.owner = owner;
            c.group = group;
            c.perms = n.perms;
        }
        _ => {}
    }
    op
}

impl Watcher {
    pub(crate) fn new(
        root: PathBuf,
        ledger: Ledger,
        volume: String,
        bucket: String,
        ignore: Ignore,
        options: Options,
        shared: Arc<Shared>,
    ) -> Result<Watcher> {
        let inotify = Inotify::init().map_err(Error::Io)?;
        Ok(Watcher {
            root,
            ledger,
            volume,
            bucket,
            ignore,
            next_rescan: Instant::now() + options.rescan_interval,
            options,
            shared,
            inotify,
            wd_path: HashMap::new(),
            path_wd: BTreeMap::new(),
            mirror: Mirror::new(),
            moves: Vec::new(),
            ops: Vec::new(),
            unwatched: BTreeSet::new(),
            cookies: Vec::new(),
            vanished: Vec::new(),
        })
    }

    /// The first diff: the namespace as the ledger has it against the tree.
    pub(crate) fn start(&mut self) -> Result<()> {
        self.load_mirror()?;
        self.reconcile("", RESYNC, RESYNC, false)?;
        self.flush()
    }

    /// Until stopped: read, handle, append.
    pub(crate) fn run(&mut self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                self.expire_moves(true)?;
                self.find_vanished(true)?;
                return self.flush();
            }
            if self.shared.pause.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            self.wait_readable()?;
            let raws = self.read(&mut buf)?;
            let n = raws.len() as u64;
            if n > 0 {
                self.shared.count(|c| c.events += n);
            }
            for raw in raws {
                if raw.mask.contains(EventMask::Q_OVERFLOW) {
                    // The queue lost events: whatever else was read is
                    // older than the listing about to be made.
                    self.shared.count(|c| c.overflows += 1);
                    tracing::warn!(root = %self.root.display(), "inotify queue overflow: diffing the tree");
                    self.flush()?;
                    self.moves.clear();
                    self.vanished.clear();
                    self.reconcile("", RESYNC, RESYNC, true)?;
                    break;
                }
                self.handle(raw)?;
            }
            self.expire_moves(false)?;
            self.find_vanished(false)?;
            if !self.unwatched.is_empty() && Instant::now() >= self.next_rescan {
                for rel in self.unwatched.clone() {
                    if !self.unwatched.contains(&rel) {
                        continue;
                    }
                    self.reconcile(&rel, RESYNC, RESYNC, true)?;
                }
                self.next_rescan = Instant::now() + self.options.rescan_interval;
            }
            self.flush()?;
        }
    }

    /// Block in poll(2) until an event, the oldest pending move's grace,
    /// the rescan timer or a stop check (every 100 ms).
    fn wait_readable(&self) -> Result<()> {
        let mut timeout = Duration::from_millis(100);
        if let Some(m) = self.moves.first() {
            timeout = timeout
                .min((m.since + self.options.move_grace).saturating_duration_since(Instant::now()));
        }
        if let Some((_, _, since)) = self.vanished.first() {
            timeout = timeout
                .min((*since + self.options.move_grace).saturating_duration_since(Instant::now()));
        }
        if !self.unwatched.is_empty() {
            timeout = timeout.min(self.next_rescan.saturating_duration_since(Instant::now()));
        }
        let ts = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let mut fds = [rustix::event::PollFd::new(
            &self.inotify,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(Error::Io(e.into())),
        }
    }

    /// Every event the kernel has queued now.
    fn read(&mut self, buf: &mut [u8]) -> Result<Vec<Raw>> {
        let mut out = Vec::new();
        loop {
            match self.inotify.read_events(buf) {
                Ok(events) => {
                    let before = out.len();
                    out.extend(events.map(|e| Raw {
                        wd: e.wd.get_watch_descriptor_id(),
                        mask: e.mask,
                        cookie: e.cookie,
                        name: e.name.map(|n| n.to_os_string()),
                    }));
                    if out.len() == before {
                        return Ok(out);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn lstat(&self, rel: &str) -> Option<Node> {
        std::fs::symlink_metadata(self.abs(rel))
            .ok()
            .map(|md| Node::of(&md))
    }

    fn op(&self, op: Op, source: &str) -> Op {
        op.with_layout(Layout::Fso).at(now_us()).from_source(source)
    }

    fn push(&mut self, op: Op, source: &str) {
        let op = self.op(op, source);
        self.ops.push((op, source == RESYNC));
    }

    fn handle(&mut self, raw: Raw) -> Result<()> {
        if raw.mask.contains(EventMask::IGNORED) {
            if let Some((_, path)) = self.wd_path.remove(&raw.wd) {
                if self.path_wd.get(&path) == Some(&raw.wd) {
                    self.path_wd.remove(&path);
                }
                self.count_watches();
            }
            return Ok(());
        }
        // The kernel queues a rename's two halves one after the other: a
        // moved-from followed by anything but its moved-to left the tree
        // (waiting for the grace then would put its delete after the ops of
        // later events, a `sync` cookie's among them).
        let its_moved_to = raw.mask.contains(EventMask::MOVED_TO)
            && self.moves.iter().any(|m| m.cookie == raw.cookie);
        if !self.moves.is_empty() && !its_moved_to {
            self.expire_moves(true)?;
        }
        let Some((_, dir)) = self.wd_path.get(&raw.wd) else {
            return Ok(());
        };
        let dir = dir.clone();
        if raw
            .mask
            .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF)
        {
            if dir.is_empty() {
                // Not the caller's input: the tree went away under the
                // watcher (`io`, as a read of a vanished file would be).
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "the watched root {} was removed or moved away",
                        self.root.display()
                    ),
                )));
            }
            // The parent's event says what happened to the name.
            return Ok(());
        }
        let Some(name) = raw.name else {
            return Ok(());
        };
        let Some(name) = name.to_str() else {
            self.shared.count(|c| c.skipped += 1);
            return Ok(());
        };
        if dir.is_empty() && name.starts_with(COOKIE_PREFIX) {
            if raw.mask.contains(EventMask::CREATE) {
                self.cookies.push(name.to_string());
            }
            return Ok(());
        }
        let rel = tree::join(&dir, name);
        let is_dir = raw.mask.contains(EventMask::ISDIR);
        if self.ignore.is_ignored(&rel, is_dir) {
            self.shared.count(|c| c.ignored += 1);
            if raw.mask.contains(EventMask::MOVED_TO) {
                // Renamed to an ignored name: as a move out.
                if let Some(i) = self.moves.iter().position(|m| m.cookie == raw.cookie) {
                    let m = self.moves.remove(i);
                    self.moved_out(&m.rel);
                }
            }
            return Ok(());
        }
        if !tree::valid_key(&rel) {
            self.shared.count(|c| c.skipped += 1);
            return Ok(());
        }
        if raw
            .mask
            .intersects(EventMask::CREATE | EventMask::CLOSE_WRITE | EventMask::ATTRIB)
        {
            // One lstat for the event, handed to its handler.
            let Ok(md) = std::fs::symlink_metadata(self.abs(&rel)) else {
                self.vanished
                    .push((raw.wd, name.to_string(), Instant::now()));
                return Ok(());
            };
            if raw.mask.contains(EventMask::CREATE) {
                self.created(&rel, &md)?;
            } else if raw.mask.contains(EventMask::CLOSE_WRITE) {
                self.closed(&rel, Node::of(&md))?;
            } else {
                self.attrib(&rel, Node::of(&md))?;
            }
        } else if raw.mask.contains(EventMask::DELETE) {
            self.deleted(&rel);
        } else if raw.mask.contains(EventMask::MOVED_FROM) {
            self.moves.push(PendingMove {
                cookie: raw.cookie,
                rel,
                since: Instant::now(),
            });
        } else if raw.mask.contains(EventMask::MOVED_TO) {
            match self.moves.iter().position(|m| m.cookie == raw.cookie) {
                Some(i) => {
                    let m = self.moves.remove(i);
                    self.renamed(&m.rel, &rel)?;
                }
                None => self.reconcile(&rel, INOTIFY, SCAN, false)?,
            }
        }
        Ok(())
    }

    /// Look for each vanished path where its directory is now: a file
    /// created (or closed) just before its directory was renamed is there,
    /// under the new name. One not found is looked for again after the next
    /// reads until the move grace has passed (`last`: this is the last
    /// look); what is never found was deleted or moved on, which has events
    /// of its own.
    fn find_vanished(&mut self, last: bool) -> Result<()> {
        let mut keep = Vec::new();
        for (wd, name, since) in std::mem::take(&mut self.vanished) {
            let Some((_, dir)) = self.wd_path.get(&wd) else {
                continue;
            };
            let rel = tree::join(dir, &name);
            let Some(n) = self.lstat(&rel) else {
                if !last && since.elapsed() < self.options.move_grace {
                    keep.push((wd, name, since));
                }
                continue;
            };
            if !tree::valid_key(&rel) || self.ignore.is_ignored(&rel, n.is_dir) {
                continue;
            }
            self.reconcile(&rel, INOTIFY, SCAN, false)?;
        }
        self.vanished = keep;
        Ok(())
    }

    /// A name appeared; `md` is its lstat.
    fn created(&mut self, rel: &str, md: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let n = Node::of(md);
        match self.mirror.get(rel) {
            // Already listed (by the scan of a new directory), and watched.
            Some(m) if m.is_dir && n.is_dir && self.path_wd.contains_key(rel) => Ok(()),
            Some(m) if !m.is_dir && !n.is_dir => Ok(()),
            None if md.is_file() => {
                let op = owned(Op::create_file(&self.volume, &self.bucket, rel), &n);
                self.push(op, INOTIFY);
                if md.nlink() > 1 {
                    // A new hard link (one of several names of its inode):
                    // complete as it appears, and no close after write will
                    // come for it.
                    self.push(self.commit(rel, &n), INOTIFY);
                    self.mirror.insert(rel.to_string(), n);
                    return Ok(());
                }
                // A regular file: its size comes with the close after write.
                self.mirror.insert(
                    rel.to_string(),
                    Node {
                        size: None,
                        mtime_ms: None,
                        ..n
                    },
                );
                Ok(())
            }
            // A directory (watched, then listed), a link, or a type change.
            _ => self.reconcile(rel, INOTIFY, SCAN, false),
        }
    }

    /// Closed after a write; `n` is its lstat.
    fn closed(&mut self, rel: &str, n: Node) -> Result<()> {
        match self.mirror.get(rel) {
            Some(m) if m.is_dir || n.is_dir => return self.reconcile(rel, INOTIFY, SCAN, false),
            Some(_) => {}
            None => {
                let op = owned(Op::create_file(&self.volume, &self.bucket, rel), &n);
                self.push(op, INOTIFY);
            }
        }
        self.push(self.commit(rel, &n), INOTIFY);
        self.mirror.insert(rel.to_string(), n);
        Ok(())
    }

    fn commit(&self, rel: &str, n: &Node) -> Op {
        let mut op = Op::commit(&self.volume, &self.bucket, rel, n.size.unwrap_or(0), "");
        if let Some(Kind::Commit(c)) = op.kind.as_mut() {
            c.size = n.size;
            c.mtime = n.mtime_ms;
        }
        op
    }

    /// Attributes changed; `n` is its lstat.
    fn attrib(&mut self, rel: &str, n: Node) -> Result<()> {
        let Some(m) = self.mirror.get(rel).cloned() else {
            return Ok(());
        };
        if m.is_dir != n.is_dir {
            return self.reconcile(rel, INOTIFY, SCAN, false);
        }
        let ops = self.attr_ops(rel, &m, &n, true);
        for op in ops {
            self.push(op, INOTIFY);
        }
        let mut kept = n;
        if !kept.is_dir {
            // Size and mtime in the mirror are what the ledger was told.
            kept.size = m.size;
            if m.mtime_ms.is_none() {
                kept.mtime_ms = None;
            }
        }
        self.mirror.insert(rel.to_string(), kept);
        Ok(())
    }

    /// The set_attr and set_times that take the ledger from `m` to `n`
    /// (only what `m` knows can differ).
    fn attr_ops(&self, rel: &str, m: &Node, n: &Node, times: bool) -> Vec<Op> {
        let mut out = Vec::new();
        let dir = |op: Op| if n.is_dir { op.dir() } else { op };
        if m.perms.is_some() && m.perms != n.perms {
            out.push(dir(Op::set_attr(
                &self.volume,
                &self.bucket,
                rel,
                SetAttr {
                    perms: n.perms,
                    ..Default::default()
                },
            )));
        }
        if (m.uid.is_some() && m.uid != n.uid) || (m.gid.is_some() && m.gid != n.gid) {
            out.push(dir(Op::set_attr(
                &self.volume,
                &self.bucket,
                rel,
                SetAttr {
                    owner: n.uid.map(|u| u.to_string()),
                    group: n.gid.map(|g| g.to_string()),
                    ..Default::default()
                },
            )));
        }
        if times && !n.is_dir && m.mtime_ms.is_some() && m.mtime_ms != n.mtime_ms {
            out.push(Op::set_times(
                &self.volume,
                &self.bucket,
                rel,
                n.mtime_ms,
                None,
            ));
        }
        out
    }

    fn deleted(&mut self, rel: &str) {
        let Some(m) = self.mirror.get(rel) else {
            return;
        };
        let is_dir = m.is_dir;
        let op = Op::delete(&self.volume, &self.bucket, rel, is_dir);
        self.push(if is_dir { op.dir() } else { op }, INOTIFY);
        tree::remove_subtree(&mut self.mirror, rel);
        self.unwatch(rel);
    }

    fn moved_out(&mut self, rel: &str) {
        self.deleted(rel);
    }

    fn renamed(&mut self, from: &str, to: &str) -> Result<()> {
        let Some(m) = self.mirror.get(from).cloned() else {
            // Never known under its old name: as a move in.
            return self.reconcile(to, INOTIFY, SCAN, false);
        };
        if tree::within(to, from) {
            // The kernel refuses this; a stale mirror could say it.
            return self.reconcile("", RESYNC, RESYNC, true);
        }
        if let Some(t) = self.mirror.get(to) {
            // A rename over an existing name replaces it.
            let op = Op::delete(&self.volume, &self.bucket, to, t.is_dir);
            let op = if t.is_dir { op.dir() } else { op };
            self.push(op, INOTIFY);
            tree::remove_subtree(&mut self.mirror, to);
            self.unwatch(to);
        }
        let op = Op::rename(&self.volume, &self.bucket, from, to);
        self.push(if m.is_dir { op.dir() } else { op }, INOTIFY);
        tree::move_subtree(&mut self.mirror, from, to);
        self.move_watches(from, to);
        Ok(())
    }

    /// Moved-from events whose moved-to did not come within the grace (or
    /// `all`: another event came first): moves out of the tree.
    fn expire_moves(&mut self, all: bool) -> Result<()> {
        let grace = self.options.move_grace;
        while let Some(m) = self.moves.first() {
            if !all && m.since.elapsed() < grace {
                break;
            }
            let m = self.moves.remove(0);
            self.moved_out(&m.rel);
        }
        Ok(())
    }

    fn move_watches(&mut self, from: &str, to: &str) {
        for k in tree::subtree_keys(&self.path_wd, from) {
            let new = format!("{to}{}", &k[from.len()..]);
            if let Some(wd) = self.path_wd.remove(&k) {
                self.path_wd.insert(new.clone(), wd);
                if let Some(e) = self.wd_path.get_mut(&wd) {
                    e.1 = new;
                }
            }
        }
    }

    /// Forget (and remove) the watches of `rel` and below.
    fn unwatch(&mut self, rel: &str) {
        for (_, wd) in tree::remove_subtree(&mut self.path_wd, rel) {
            if let Some((d, _)) = self.wd_path.remove(&wd) {
                let _ = self.inotify.watches().remove(d);
            }
        }
        for k in tree::subtree_keys(
            &BTreeMap::from_iter(self.unwatched.iter().map(|k| (k.clone(), ()))),
            rel,
        ) {
            self.unwatched.remove(&k);
        }
        self.count_watches();
    }

    fn count_watches(&self) {
        let (w, u) = (self.wd_path.len() as u64, self.unwatched.len() as u64);
        self.shared.count(|c| {
            c.watches = w;
            c.unwatched = u;
        });
    }

    /// Watch directory `rel` (before it is listed). A refusal is counted
    /// and the directory joins those rescanned on the timer.
    fn add_watch(&mut self, rel: &str) {
        match self.inotify.watches().add(self.abs(rel), mask()) {
            Ok(wd) => {
                let id = wd.get_watch_descriptor_id();
                if let Some(old) = self.path_wd.insert(rel.to_string(), id) {
                    if old != id {
                        self.wd_path.remove(&old);
                    }
                }
                if let Some((_, old)) = self.wd_path.insert(id, (wd, rel.to_string())) {
                    if old != rel && self.path_wd.get(&old) == Some(&id) {
                        self.path_wd.remove(&old);
                    }
                }
                self.unwatched.remove(rel);
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => {
                if self.unwatched.insert(rel.to_string()) {
                    self.shared.count(|c| c.watch_failures += 1);
                    tracing::warn!(
                        dir = %self.abs(rel).display(),
                        error = %e,
                        "cannot watch a directory (see fs.inotify.max_user_watches); it is rescanned every {:?}",
                        self.options.rescan_interval
                    );
                }
            }
        }
    }

    /// List `rel` and below (watching each directory first).
    fn scan(&mut self, rel: &str) -> Result<BTreeMap<String, Node>> {
        let mut found = BTreeMap::new();
        let mut dirs = Vec::new();
        if rel.is_empty() {
            dirs.push(String::new());
        } else if let Some(n) = self.lstat(rel) {
            if n.is_dir {
                dirs.push(rel.to_string());
            }
            found.insert(rel.to_string(), n);
        }
        let (mut skipped, mut ignored) = (0u64, 0u64);
        while let Some(d) = dirs.pop() {
            self.add_watch(&d);
            let entries = match std::fs::read_dir(self.abs(&d)) {
                Ok(e) => e,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    continue
                }
                Err(e) => {
                    tracing::warn!(dir = %self.abs(&d).display(), error = %e, "cannot list a directory");
                    continue;
                }
            };
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    skipped += 1;
                    continue;
                };
                if d.is_empty() && name.starts_with(COOKIE_PREFIX) {
                    self.cookies.push(name.to_string());
                    continue;
                }
                let child = tree::join(&d, name);
                let Ok(md) = std::fs::symlink_metadata(self.abs(&child)) else {
                    continue;
                };
                let n = Node::of(&md);
                if self.ignore.is_ignored(&child, n.is_dir) {
                    ignored += 1;
                    continue;
                }
                if !tree::valid_key(&child) {
                    skipped += 1;
                    continue;
                }
                if n.is_dir {
                    dirs.push(child.clone());
                }
                found.insert(child, n);
            }
        }
        self.shared.count(|c| {
            c.skipped += skipped;
            c.ignored += ignored;
        });
        Ok(found)
    }

    /// Make the mirror (and so the ledger) under `rel` equal the tree:
    /// list it, then append the renames (when `renames`, by inode), deletes,
    /// creates, commits and attribute changes that differ. `top` is the
    /// source of the ops about `rel` itself, `rest` of those below it.
    fn reconcile(&mut self, rel: &str, top: &str, rest: &str, renames: bool) -> Result<()> {
        if top == RESYNC {
            self.shared.count(|c| c.rescans += 1);
        }
        let found = self.scan(rel)?;
        let source = |p: &str| if p == rel { top } else { rest };
        let gone_top = |mirror: &Mirror| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for k in tree::subtree_keys(mirror, rel) {
                let differs = match found.get(&k) {
                    None => true,
                    Some(f) => f.is_dir != mirror[&k].is_dir,
                };
                if differs && !out.last().is_some_and(|top| tree::within(&k, top)) {
                    out.push(k);
                }
            }
            out
        };
        if renames {
            let mut by_ino: HashMap<(u64, bool), Option<String>> = HashMap::new();
            for (p, n) in &found {
                if !self.mirror.contains_key(p) {
                    if let Some(i) = n.ino {
                        by_ino
                            .entry((i, n.is_dir))
                            .and_modify(|e| *e = None)
                            .or_insert_with(|| Some(p.clone()));
                    }
                }
            }
            for g in gone_top(&self.mirror) {
                let Some(m) = self.mirror.get(&g).cloned() else {
                    continue;
                };
                let Some(ino) = m.ino else { continue };
                let Some(Some(to)) = by_ino.get(&(ino, m.is_dir)).cloned() else {
                    continue;
                };
                let parent = tree::parent(&to);
                if self.mirror.contains_key(&to)
                    || tree::within(&to, &g)
                    || !(parent.is_empty() || self.mirror.get(parent).is_some_and(|p| p.is_dir))
                {
                    continue;
                }
                let op = Op::rename(&self.volume, &self.bucket, &g, &to);
                self.push(if m.is_dir { op.dir() } else { op }, RESYNC);
                tree::move_subtree(&mut self.mirror, &g, &to);
                self.move_watches(&g, &to);
                by_ino.remove(&(ino, m.is_dir));
            }
        }
        for g in gone_top(&self.mirror) {
            let is_dir = self.mirror[&g].is_dir;
            let op = Op::delete(&self.volume, &self.bucket, &g, is_dir);
            self.push(if is_dir { op.dir() } else { op }, source(&g));
            tree::remove_subtree(&mut self.mirror, &g);
            let keep_watch = found.get(&g).is_some_and(|f| f.is_dir);
            if !keep_watch {
                for (_, wd) in tree::remove_subtree(&mut self.path_wd, &g) {
                    self.wd_path.remove(&wd);
                }
            }
        }
        for (p, n) in found {
            let src = source(&p);
            match self.mirror.get(&p).cloned() {
                None if n.is_dir => {
                    let op = owned(Op::create_directory(&self.volume, &self.bucket, &p), &n);
                    self.push(op, src);
                }
                None => {
                    let op = owned(Op::create_file(&self.volume, &self.bucket, &p), &n);
                    self.push(op, src);
                    self.push(self.commit(&p, &n), src);
                }
                Some(m) => {
                    if !n.is_dir && (m.size != n.size || m.mtime_ms != n.mtime_ms) {
                        self.push(self.commit(&p, &n), src);
                    }
                    for op in self.attr_ops(&p, &m, &n, false) {
                        self.push(op, src);
                    }
                }
            }
            self.mirror.insert(p, n);
        }
        self.count_watches();
        Ok(())
    }

    /// The mirror from the namespace at the head.
    fn load_mirror(&mut self) -> Result<()> {
        let head = self.ledger.head_seq()?;
        self.mirror = self
            .ledger
            .tree_at(&self.volume, &self.bucket, head)?
            .iter()
            .map(|e| (e.path.clone(), Node::from_ledger(e)))
            .collect();
        Ok(())
    }

    /// Append what is pending, in batches; a batch the namespace refuses
    /// (the mirror was wrong) is followed by a reload and a diff of the
    /// whole tree. Then wake the `sync` callers whose cookies were read.
    fn flush(&mut self) -> Result<()> {
        let mut attempts = 0;
        while !self.ops.is_empty() {
            let n = self.ops.len().min(self.options.max_batch);
            let chunk: Vec<(Op, bool)> = self.ops.drain(..n).collect();
            let diff = chunk.iter().filter(|(_, d)| *d).count() as u64;
            match self
                .ledger
                .append_batch(chunk.into_iter().map(|(op, _)| op).collect())
            {
                Ok((_, last)) => self.shared.count(|c| {
                    c.ops += n as u64;
                    c.diff_ops += diff;
                    c.last_seq = Some(last);
                }),
                Err(e) if e.is_invalid_input() && attempts < 3 => {
                    attempts += 1;
                    self.shared.count(|c| c.append_errors += 1);
                    tracing::warn!(error = %e, "the ledger refused an op: diffing the tree against it");
                    self.ops.clear();
                    self.load_mirror()?;
                    self.reconcile("", RESYNC, RESYNC, false)?;
                }
                Err(e) => return Err(e),
            }
        }
        if !self.cookies.is_empty() {
            self.shared.cookies_seen(std::mem::take(&mut self.cookies));
        }
        Ok(())
    }
}
