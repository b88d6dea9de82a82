//! The ledger: one RocksDB database holding the events, their time index,
//! cursor positions and metadata (`ARCHITECTURE.md`, "On disk").
//!
//! # On disk
//!
//! ```text
//! LEDGER_DIR/
//!   db/                 the RocksDB database (column families in `keys`)
//!   cursors/NAME.json   cursors committed by read-only openers (other processes)
//!   secondary/ID/       scratch of a read-only opener's RocksDB secondary instance
//! ```
//!
//! # Writer and readers
//!
//! A process that opens the ledger for writing holds RocksDB's lock; its
//! appends go through one writer thread (see `writer`) that drains every
//! queued append into one `WriteBatch`: events, time index entries, meta and
//! the retention range deletes, written once with the ledger's durability.
//! Readers in the same process wait on a condition variable that the writer
//! signals after each write. Read-only openers (other processes) use a RocksDB
//! secondary instance and poll it for new data every 20 ms while they wait.
//!
//! # Cursors of read-only openers
//!
//! A read-only opener cannot write into the primary's database, so it keeps
//! its named cursor positions in `cursors/NAME.json` beside it (written to a
//! temporary file, fsynced and renamed). Every opener reads both stores; for a
//! name in both, the newer commit wins, so a consumer can move between the
//! writer process and another process without losing its place. The writer's
//! retention guard counts both.

mod beacon;
mod keys;
pub(crate) mod retention;
mod writer;

pub use keys::ALL_CFS;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use prost::Message;
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Direction, FlushOptions,
    IteratorMode, Options, ReadOptions, WriteOptions, DB,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::op::Op;
pub use crate::proto::Retention;
use crate::proto::{CursorState, Event};
use crate::read::{Position, Start};
use keys::*;

/// The on-disk format version this build writes and reads. 2: the shadow
/// namespace keys its versions by when they closed (see `namespace`).
/// 3: closed forward edges have a tag of their own, so "is this directory
/// empty?" reads one key whatever its history. A format 2 ledger is upgraded
/// in place when opened read-write (read-only openers refuse it until then,
/// with `unsupported_format`); format 1 ledgers are refused.
pub const FORMAT_VERSION: u32 = 3;

/// How long a read-only opener waits between looks at the primary.
const SECONDARY_POLL: Duration = Duration::from_millis(20);
/// How often a read-only opener whose beacon watcher runs catches up anyway.
const WATCHED_POLL: Duration = Duration::from_secs(1);
/// Longest [`Ledger::close`] waits for other threads' calls to let go of the
/// database.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How an append is made durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The write-ahead log is fsynced once per group commit (the default):
    /// an acknowledged append survives a power cut.
    #[default]
    Sync,
    /// The write-ahead log is written but not fsynced: an acknowledged append
    /// survives a process crash, not a power cut.
    Buffered,
    /// No write-ahead log: for tests only; a crash loses recent appends.
    None,
}

impl Durability {
    /// Parse `sync`, `buffered` or `none`.
    pub fn parse(s: &str) -> Result<Durability> {
        match s {
            "sync" => Ok(Durability::Sync),
            "buffered" => Ok(Durability::Buffered),
            "none" => Ok(Durability::None),
            other => Err(Error::InvalidArgument(format!(
                "unknown durability {other:?} (sync, buffered, none)"
            ))),
        }
    }

    fn write_options(self) -> WriteOptions {
        let mut w = WriteOptions::default();
        match self {
            Durability::Sync => w.set_sync(true),
            Durability::Buffered => w.set_sync(false),
            Durability::None => w.disable_wal(true),
        }
        w
    }
}

impl Retention {
    /// No limits: keep everything.
    pub fn unlimited() -> Retention {
        Retention::default()
    }

    /// Keep at most `n` events.
    pub fn with_max_events(mut self, n: u64) -> Retention {
        self.max_events = Some(n);
        self
    }

    /// Keep events whose running-max op time is within `d` of the newest.
    pub fn with_max_age(mut self, d: Duration) -> Retention {
        self.max_age_us = Some(d.as_micros() as u64);
        self
    }

    /// Keep at most `b` bytes of events (keys + values).
    pub fn with_max_bytes(mut self, b: u64) -> Retention {
        self.max_bytes = Some(b);
        self
    }

    /// Hold the limits above back for the slowest registered cursor, up to
    /// the hard limits (`None`: no hard limit).
    pub fn keeping_for_cursors(
        mut self,
        hard_max_events: Option<u64>,
        hard_max_bytes: Option<u64>,
    ) -> Retention {
        self.keep_for_cursors = true;
        self.hard_max_events = hard_max_events;
        self.hard_max_bytes = hard_max_bytes;
        self
    }

    /// Retention settings as the bindings take them, a JSON object:
    /// `max_events`, `max_age` (seconds of op time), `max_bytes`,
    /// `keep_for_cursors`, `hard_max_events`, `hard_max_bytes` (camelCase
    /// accepted too); every key optional, unknown keys are an error.
    pub fn from_settings(v: serde_json::Value) -> Result<Retention> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            #[serde(default, alias = "maxEvents")]
            max_events: Option<u64>,
            #[serde(default, alias = "maxAge")]
            max_age: Option<f64>,
            #[serde(default, alias = "maxBytes")]
            max_bytes: Option<u64>,
            #[serde(default, alias = "keepForCursors")]
            keep_for_cursors: bool,
            #[serde(default, alias = "hardMaxEvents")]
            hard_max_events: Option<u64>,
            #[serde(default, alias = "hardMaxBytes")]
            hard_max_bytes: Option<u64>,
        }
        let s: Settings = serde_json::from_value(v)
            .map_err(|e| Error::InvalidArgument(format!("retention: {e}")))?;
        let max_age_us = match s.max_age {
            None => None,
            Some(a) if a.is_finite() && a > 0.0 => Some((a * 1e6).ceil() as u64),
            Some(a) => {
                return Err(Error::InvalidArgument(format!(
                    "retention: max_age is seconds > 0, not {a}"
                )))
            }
        };
        let r = Retention {
            max_events: s.max_events,
            max_age_us,
            max_bytes: s.max_bytes,
            keep_for_cursors: s.keep_for_cursors,
            hard_max_events: s.hard_max_events,
            hard_max_bytes: s.hard_max_bytes,
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max_events", self.max_events),
            ("max_age_us", self.max_age_us),
            ("max_bytes", self.max_bytes),
            ("hard_max_events", self.hard_max_events),
            ("hard_max_bytes", self.hard_max_bytes),
        ] {
            if v == Some(0) {
                return Err(Error::InvalidArgument(format!(
                    "retention {name} must be at least 1"
                )));
            }
        }
        if !self.keep_for_cursors
            && (self.hard_max_events.is_some() || self.hard_max_bytes.is_some())
        {
            return Err(Error::InvalidArgument(
                "hard retention limits only apply with keep_for_cursors".into(),
            ));
        }
        Ok(())
    }
}

/// How to open a ledger.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the ledger when the directory holds none (default true; ignored read-only).
    pub create: bool,
    /// Set (and store) these retention settings; `None` keeps what is stored.
    pub retention: Option<Retention>,
    /// Durability of appends (default `Sync`).
    pub durability: Durability,
    /// Open as a reader beside a writer in another process (RocksDB secondary).
    pub read_only: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            retention: None,
            durability: Durability::Sync,
            read_only: false,
        }
    }
}

/// First and last retained seq, as one opener sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub first: u64,
    pub head: u64,
}

struct Shared {
    bounds: Bounds,
    closed: bool,
}

/// What the writer shares with readers: the bounds and the signal they wait on.
/// Kept apart from `Inner` so the writer thread holds no handle on the ledger
/// (dropping the last `Ledger` stops the writer).
pub(crate) struct Signal {
    shared: Mutex<Shared>,
    cond: Condvar,
}

impl Signal {
    /// Publish new bounds and wake every waiting reader.
    pub(crate) fn publish(&self, bounds: Bounds) {
        let mut s = self.shared.lock();
        s.bounds = bounds;
        self.cond.notify_all();
    }
}

pub(crate) struct Inner {
    path: PathBuf,
    db: RwLock<Option<Arc<DB>>>,
    read_only: bool,
    durability: Durability,
    signal: Arc<Signal>,
    writer: Mutex<Option<writer::WriterHandle>>,
    secondary_dir: Option<PathBuf>,
    /// The writer's announcer of its head to other processes.
    announcer: Mutex<Option<beacon::Announcer>>,
    /// A read-only opener's watcher of the writer's announcements.
    watcher: Mutex<Option<beacon::Watcher>>,
    /// Wakes waiting readers when a cursor's subscription is stopped.
    pub(crate) generation: AtomicU64,
}

/// A handle on an open ledger; cheap to clone, shared between threads.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) inner: Arc<Inner>,
}

/// One cursor as `stats` and `cursors` report it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CursorInfo {
    /// Cursor name.
    pub name: String,
    /// Committed position (next record to read).
    pub position: Position,
    /// Events between the position and the head.
    pub lag: u64,
    /// `writer` (CF `cursors`) or `reader` (`cursors/NAME.json`).
    pub store: &'static str,
    /// Wall-clock time of the commit, µs since the epoch.
    pub updated_us: i64,
}

/// What `stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// First retained seq (`head_seq + 1` when no event is retained).
    pub first_seq: u64,
    /// Last appended seq (0 when none was).
    pub head_seq: u64,
    /// Retained events.
    pub events: u64,
    /// Bytes of retained events (keys + values).
    pub bytes: u64,
    /// The last producer txid stored.
    pub last_txid: Option<u64>,
    /// Retention settings in force.
    pub retention: RetentionInfo,
    /// Named cursors.
    pub cursors: Vec<CursorInfo>,
}

/// Retention settings, for reports.
#[derive(Debug, Clone, Serialize, Default)]
#[allow(missing_docs)]
pub struct RetentionInfo {
    pub max_events: Option<u64>,
    pub max_age_us: Option<u64>,
    pub max_bytes: Option<u64>,
    pub keep_for_cursors: bool,
    pub hard_max_events: Option<u64>,
    pub hard_max_bytes: Option<u64>,
}

impl From<&Retention> for RetentionInfo {
    fn from(r: &Retention) -> Self {
        RetentionInfo {
            max_events: r.max_events,
            max_age_us: r.max_age_us,
            max_bytes: r.max_bytes,
            keep_for_cursors: r.keep_for_cursors,
            hard_max_events: r.hard_max_events,
            hard_max_bytes: r.hard_max_bytes,
        }
    }
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::Lz4);
    let mut b = BlockBasedOptions::default();
    b.set_block_size(16 * 1024);
    if name == keys::CF_NS {
        // The namespace is read by point lookups while writing (is this name
        // taken?), most of them for names that do not exist yet: bloom
        // filters answer those without reading blocks.
        b.set_bloom_filter(10.0, false);
        b.set_cache_index_and_filter_blocks(true);
        // The same question in the memtable: a bloom filter of whole keys
        // answers "absent" without walking the skiplist.
        o.set_memtable_prefix_bloom_ratio(0.05);
        o.set_memtable_whole_key_filtering(true);
    }
    if name == keys::CF_NS || name == keys::CF_TIME {
        // Small keys, small memtables: memory stays bounded (see db_options).
        o.set_write_buffer_size(16 << 20);
    }
    o.set_block_based_table_factory(&b);
    o
}

fn db_options(create: bool) -> Options {
    let mut o = Options::default();
    o.create_if_missing(create);
    o.create_missing_column_families(create);
    o.set_max_background_jobs(2);
    o.set_keep_log_file_num(4);
    o.set_max_total_wal_size(256 << 20);
    // All memtables together: keeps resident memory under 256 MiB after
    // 10 million events (it was 288 MiB without a cap).
    o.set_db_write_buffer_size(96 << 20);
    o
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    ALL_CFS
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n)))
        .collect()
}

fn map_open_error(e: rocksdb::Error, path: &Path) -> Error {
    let msg = e.to_string();
    if msg.contains("lock") || msg.contains("LOCK") {
        Error::Locked {
            path: path.to_path_buf(),
        }
    } else {
        Error::Storage(e)
    }
}

/// A valid cursor name: 1 to 128 of `[A-Za-z0-9._-]`, not starting with `.`.
pub(crate) fn check_cursor_name(name: &str) -> Result<()> {
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

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.read_only)
            .finish()
    }
}

static SECONDARY_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Ledger {
    /// Open (or create) the ledger in `path` for writing, with defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger> {
        Ledger::open_with(path, OpenOptions::default())
    }

    /// Open a ledger written by another process, read-only.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Ledger> {
        Ledger::open_with(
            path,
            OpenOptions {
                read_only: true,
                create: false,
                ..Default::default()
            },
        )
    }

    /// Open with explicit options.
    pub fn open_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Ledger> {
        let path = path.as_ref().to_path_buf();
        if let Some(r) = &opts.retention {
            r.validate()?;
        }
        let db_path = path.join("db");
        let exists = db_path.join("CURRENT").exists();
        if !exists && (opts.read_only || !opts.create) {
            return Err(Error::NotFound { path });
        }
        let (db, secondary_dir) = if opts.read_only {
            if opts.retention.is_some() {
                return Err(Error::ReadOnly);
            }
            remove_stale_secondaries(&path.join("secondary"));
            let n = SECONDARY_COUNTER.fetch_add(1, Ordering::Relaxed);
            let sec = path
                .join("secondary")
                .join(format!("{}-{n}", std::process::id()));
            fs::create_dir_all(&sec)?;
            let mut o = db_options(false);
            o.set_max_open_files(-1);
            // With every table file open (-1), RocksDB loads table handlers on
            // each catch-up with max_file_opening_threads (16) new threads per
            // column family: 80 thread starts and about 6 ms per catch-up on
            // this machine, nearly all of a read-only reader's wake-up latency.
            // One thread opens the few new files a catch-up brings.
            o.set_max_file_opening_threads(1);
            let db = DB::open_cf_descriptors_as_secondary(&o, &db_path, &sec, descriptors())
                .map_err(|e| map_open_error(e, &path))?;
            (db, Some(sec))
        } else {
            fs::create_dir_all(&path)?;
            let db = DB::open_cf_descriptors(&db_options(opts.create), &db_path, descriptors())
                .map_err(|e| map_open_error(e, &path))?;
            (db, None)
        };
        let db = Arc::new(db);
        let meta = db.cf_handle(CF_META).expect("cf meta");
        let mut format = db.get_cf(meta, META_FORMAT)?;
        if format.is_none() && opts.read_only {
            // A secondary opened while the primary itself was opening (and
            // rewriting its manifest) can miss what the WAL holds: catch up
            // a few times before calling the ledger missing.
            for _ in 0..50 {
                std::thread::sleep(SECONDARY_POLL);
                db.try_catch_up_with_primary()?;
                format = db.get_cf(meta, META_FORMAT)?;
                if format.is_some() {
                    break;
                }
            }
        }
        match format {
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| Error::Corrupt("format_version".into()))?,
                );
                if found == 2 && !opts.read_only {
                    // Format 3 only moved closed forward edges to a tag of
                    // their own: upgrade in place, then say so on disk.
                    crate::namespace::upgrade_from_format_2(&db)?;
                    let mut w = WriteOptions::default();
                    w.set_sync(true);
                    db.put_cf_opt(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes(), &w)?;
                } else if found != FORMAT_VERSION {
                    return Err(Error::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None if opts.read_only => {
                return Err(Error::NotFound { path });
            }
            None => {
                let mut w = WriteOptions::default();
                w.set_sync(true);
                let mut b = rocksdb::WriteBatch::default();
                b.put_cf(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes());
                b.put_cf(meta, META_FIRST, 1u64.to_be_bytes());
                b.put_cf(meta, META_HEAD, 0u64.to_be_bytes());
                db.write_opt(b, &w)?;
            }
        }
        let bounds = read_bounds(&db)?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            db: RwLock::new(Some(db.clone())),
            read_only: opts.read_only,
            durability: opts.durability,
            signal: Arc::new(Signal {
                shared: Mutex::new(Shared {
                    bounds,
                    closed: false,
                }),
                cond: Condvar::new(),
            }),
            writer: Mutex::new(None),
            secondary_dir,
            announcer: Mutex::new(None),
            watcher: Mutex::new(None),
            generation: AtomicU64::new(0),
        });
        let ledger = Ledger { inner };
        if opts.read_only {
            // Watch first, then catch up: an append between the two is seen
            // by one or the other.
            let w = beacon::Watcher::start(&path, Arc::downgrade(&ledger.inner));
            *ledger.inner.watcher.lock() = w;
            ledger.refresh()?;
        } else {
            let a = beacon::Announcer::start(&path, ledger.inner.signal.clone())?;
            *ledger.inner.announcer.lock() = Some(a);
            let handle = writer::spawn(
                ledger.inner.signal.clone(),
                path.clone(),
                db,
                opts.durability,
            )?;
            *ledger.inner.writer.lock() = Some(handle);
            if let Some(r) = opts.retention {
                ledger.set_retention(r)?;
            }
        }
        Ok(ledger)
    }

    /// The ledger directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True when opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The durability of appends.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    pub(crate) fn db(&self) -> Result<Arc<DB>> {
        self.inner
            .db
            .read()
            .as_ref()
            .cloned()
            .ok_or(Error::LedgerClosed)
    }

    /// Append one op; returns its seq once it is durable.
    pub fn append(&self, op: Op) -> Result<u64> {
        Ok(self.append_batch(vec![op])?.1)
    }

    /// Append ops atomically: all are written or none. Returns the first and
    /// last seq they got, once durable. An empty batch writes nothing and
    /// returns `(head + 1, head)`.
    pub fn append_batch(&self, ops: Vec<Op>) -> Result<(u64, u64)> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        for (i, op) in ops.iter().enumerate() {
            crate::op::validate(op, i)?;
        }
        if ops.is_empty() {
            let b = self.bounds()?;
            return Ok((b.head + 1, b.head));
        }
        self.writer_call(writer::Request::Append(ops))
    }

    /// Change the retention settings (stored in the ledger); anything they
    /// drop is deleted at once, in its own write batch.
    pub fn set_retention(&self, retention: Retention) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        retention.validate()?;
        self.writer_call(writer::Request::SetRetention(retention))
            .map(|_| ())
    }

    fn writer_call(&self, req: writer::Request) -> Result<(u64, u64)> {
        let handle = self
            .inner
            .writer
            .lock()
            .as_ref()
            .map(|w| w.sender())
            .ok_or(Error::LedgerClosed)?;
        writer::call(&handle, req)
    }

    /// The retention settings in force.
    pub fn retention(&self) -> Result<Retention> {
        let db = self.db()?;
        read_retention(&db)
    }

    /// First and last retained seq. A read-only opener catches up first.
    pub(crate) fn bounds(&self) -> Result<Bounds> {
        if self.inner.read_only {
            self.refresh()?;
        }
        self.view()
    }

    /// First and last retained seq as this opener last saw them, without
    /// catching up: what its database handle holds. Reads that follow a
    /// `bounds()` (a cursor read, `changes`) use this instead of catching
    /// up with the primary a second or third time.
    fn view(&self) -> Result<Bounds> {
        let s = self.inner.signal.shared.lock();
        if s.closed {
            return Err(Error::LedgerClosed);
        }
        Ok(s.bounds)
    }

    /// The one resolver from a [`Start`] to a position. `Committed` is the
    /// caller's to resolve (it knows which cursor): here it is an error.
    pub(crate) fn resolve_start(&self, start: Start, b: &Bounds) -> Result<Position> {
        Ok(match start {
            Start::Seq(0) | Start::Position(Position { seq: 0, .. }) => {
                return Err(Error::InvalidArgument("seq numbers start at 1".into()))
            }
            Start::Earliest => Position::new(b.first, 0),
            Start::Latest => Position::new(b.head + 1, 0),
            Start::Seq(s) => Position::new(s, 0),
            Start::Position(p) => p,
            Start::Time(t) => Position::new(self.seq_for_time(t)?, 0),
            Start::Committed => {
                return Err(Error::InvalidArgument(
                    "since must be a seq, a time or a position (not committed)".into(),
                ))
            }
        })
    }

    /// The first seq of a range that starts at `since`; a start before the
    /// first retained event is a gap.
    pub(crate) fn range_start(&self, since: Start, b: &Bounds) -> Result<u64> {
        let start = self.resolve_start(since, b)?.seq;
        if start < b.first {
            return Err(Error::Gap {
                expected: start,
                actual: b.first,
            });
        }
        Ok(start)
    }

    /// Last appended seq (0 when none).
    pub fn head_seq(&self) -> Result<u64> {
        Ok(self.bounds()?.head)
    }

    /// First retained seq (`head_seq + 1` when nothing is retained).
    pub fn first_seq(&self) -> Result<u64> {
        Ok(self.bounds()?.first)
    }

    /// Read-only openers: catch up with the primary and reload the bounds.
    fn refresh(&self) -> Result<()> {
        let db = self.db()?;
        db.try_catch_up_with_primary()?;
        let b = read_bounds(&db)?;
        let mut s = self.inner.signal.shared.lock();
        s.bounds = b;
        Ok(())
    }

    /// Read-only openers: catch up with the writer and wake every waiting
    /// reader (the beacon watcher calls it when the writer announces).
    pub(crate) fn catch_up_and_wake(&self) -> Result<()> {
        self.refresh()?;
        let _s = self.inner.signal.shared.lock();
        self.inner.signal.cond.notify_all();
        Ok(())
    }

    /// Wake every waiting reader (used to stop subscriptions promptly).
    pub(crate) fn wake_readers(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        let _s = self.inner.signal.shared.lock();
        self.inner.signal.cond.notify_all();
    }

    /// Block until `head >= seq`, the deadline passes, or `cancel` is set.
    /// Returns whether the head reached `seq`.
    pub(crate) fn wait_for_head(
        &self,
        seq: u64,
        deadline: Instant,
        cancel: Option<&AtomicBool>,
    ) -> Result<bool> {
        let cancelled = || cancel.map(|c| c.load(Ordering::SeqCst)).unwrap_or(false);
        // A read-only opener is woken by its beacon watcher; it also catches
        // up on a timer, every 20 ms without a watcher (no beacon yet: a
        // writer from before it) and every second with one (a safety net).
        let tick = match (self.inner.read_only, self.inner.watcher.lock().is_some()) {
            (false, _) => None,
            (true, true) => Some(WATCHED_POLL),
            (true, false) => Some(SECONDARY_POLL),
        };
        if tick.is_some() {
            self.refresh()?;
        }
        let mut s = self.inner.signal.shared.lock();
        loop {
            if s.closed {
                return Err(Error::LedgerClosed);
            }
            if s.bounds.head >= seq {
                return Ok(true);
            }
            let now = Instant::now();
            if cancelled() || now >= deadline {
                return Ok(false);
            }
            match tick {
                None => {
                    self.inner.signal.cond.wait_until(&mut s, deadline);
                }
                Some(t) => {
                    let woke = !self
                        .inner
                        .signal
                        .cond
                        .wait_until(&mut s, deadline.min(now + t))
                        .timed_out();
                    if !woke {
                        drop(s);
                        self.refresh()?;
                        s = self.inner.signal.shared.lock();
                    }
                }
            }
        }
    }

    /// The event stored under `seq`, if retained. A read-only opener answers
    /// from its last catch-up with the writer (every cursor read, `head_seq`
    /// and `first_seq` catch up).
    pub fn get(&self, seq: u64) -> Result<Option<Event>> {
        if seq < self.view()?.first {
            return Ok(None);
        }
        let db = self.db()?;
        let cf = db.cf_handle(CF_EVENTS).expect("cf events");
        let found = db.get_pinned_cf(cf, seq_key(seq))?;
        found.map(|v| decode_event(&v)).transpose()
    }

    /// Up to `limit` retained events from `from` on, in seq order.
    pub fn scan(&self, from: u64, limit: usize) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        self.scan_with(from, |_, e| {
            out.push(e);
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Visit retained events from `from` on; `f(seq, event)` returns false to stop.
    pub(crate) fn scan_with(&self, from: u64, mut f: impl FnMut(u64, Event) -> bool) -> Result<()> {
        let mut failed = None;
        self.scan_raw(from, |seq, bytes| match decode_event(bytes) {
            Ok(ev) => f(seq, ev),
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Visit the stored bytes (a prost `Event`) of retained events from
    /// `from` on, without decoding; `f(seq, bytes)` returns false to stop.
    pub(crate) fn scan_raw(&self, from: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> Result<()> {
        let db = self.db()?;
        let cf = db.cf_handle(CF_EVENTS).expect("cf events");
        let mut ro = ReadOptions::default();
        ro.fill_cache(true);
        let mut it = db.raw_iterator_cf_opt(cf, ro);
        // Events below first_seq may linger until their chunk is deleted.
        it.seek(seq_key(from.max(self.view()?.first)));
        while it.valid() {
            let seq = it
                .key()
                .and_then(decode_seq)
                .ok_or_else(|| Error::Corrupt("events key".into()))?;
            if !f(seq, it.value().unwrap_or_default()) {
                return Ok(());
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// The first seq whose running-max op time is at or after `time_us`
    /// (Kafka's offsetsForTimes). `head + 1` when none is. May be older than
    /// `first_seq` when events at or after that time were dropped by
    /// retention: a cursor started there reports the gap.
    pub fn seq_for_time(&self, time_us: i64) -> Result<u64> {
        let b = self.bounds()?;
        let db = self.db()?;
        let cf = db.cf_handle(CF_TIME).expect("cf time");
        let mut it = db.iterator_cf(
            cf,
            IteratorMode::From(&time_key(time_us, 0), Direction::Forward),
        );
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                let (_, seq) =
                    decode_time_key(&k).ok_or_else(|| Error::Corrupt("time key".into()))?;
                Ok(seq)
            }
            None => Ok(b.head + 1),
        }
    }

    /// Where object `object_id` was at `seq` (FSO buckets), if it existed then.
    /// `seq` counts after event `seq` was applied.
    pub fn path_at(
        &self,
        object_id: u64,
        seq: u64,
    ) -> Result<Option<crate::namespace::ObjectPath>> {
        let db = self.db()?;
        crate::namespace::path_at(&db, object_id, seq)
    }

    /// The object at `key` in an FSO bucket at `seq`: (object id, is a directory).
    pub fn resolve_at(
        &self,
        volume: &str,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> Result<Option<(u64, bool)>> {
        let db = self.db()?;
        crate::namespace::resolve_at(&db, volume, bucket, key, seq)
    }

    /// The children of directory `dir` (0: the bucket root) at `seq`, in name
    /// order, streaming.
    pub fn children_at(
        &self,
        volume: &str,
        bucket: &str,
        dir: u64,
        seq: u64,
    ) -> Result<crate::namespace::Children> {
        Ok(crate::namespace::Children::new(
            &self.db()?,
            volume,
            bucket,
            dir,
            seq,
        ))
    }

    /// Keys in the shadow namespace's column family (to see garbage collection work).
    pub fn namespace_keys(&self) -> Result<usize> {
        let db = self.db()?;
        crate::namespace::key_count(&db)
    }

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
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        })
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
        db.put_cf_opt(
            cf,
            name.as_bytes(),
            st.encode_to_vec(),
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

    /// Counts and sizes, with every cursor.
    pub fn stats(&self) -> Result<Stats> {
        let b = self.bounds()?;
        let db = self.db()?;
        let meta = db.cf_handle(CF_META).expect("cf meta");
        let total = get_u64(&db, meta, META_TOTAL_BYTES)?.unwrap_or(0);
        let first_offset = if b.first <= b.head {
            self.get(b.first)?.map(|e| e.offset).unwrap_or(total)
        } else {
            total
        };
        let last_txid = get_u64(&db, meta, META_LAST_TXID)?.filter(|t| *t > 0);
        let retention = read_retention(&db)?;
        Ok(Stats {
            first_seq: b.first,
            head_seq: b.head,
            events: (b.head + 1).saturating_sub(b.first),
            bytes: total.saturating_sub(first_offset),
            last_txid,
            retention: (&retention).into(),
            cursors: self.cursors()?,
        })
    }

    /// A consistent copy of the ledger in `dir` (which must not exist or be
    /// empty): a RocksDB checkpoint of the database plus the reader cursor files.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        let dir = dir.as_ref();
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            return Err(Error::InvalidArgument(format!(
                "checkpoint target {} is not empty",
                dir.display()
            )));
        }
        fs::create_dir_all(dir)?;
        let db = self.db()?;
        if self.inner.durability == Durability::None {
            for name in ALL_CFS {
                db.flush_cf(db.cf_handle(name).expect("cf"))?;
            }
        }
        rocksdb::checkpoint::Checkpoint::new(&db)?.create_checkpoint(dir.join("db"))?;
        let src = self.inner.path.join("cursors");
        if src.is_dir() {
            let dst = dir.join("cursors");
            fs::create_dir_all(&dst)?;
            for entry in fs::read_dir(&src)? {
                let entry = entry?;
                if entry
                    .path()
                    .extension()
                    .map(|e| e == "json")
                    .unwrap_or(false)
                {
                    fs::copy(entry.path(), dst.join(entry.file_name()))?;
                }
            }
        }
        Ok(())
    }

    /// A checksum over every retained event (seq and stored bytes), FNV-1a
    /// 64: replicas fed the same ops agree on it.
    pub fn checksum(&self) -> Result<u64> {
        let db = self.db()?;
        let cf = db.cf_handle(CF_EVENTS).expect("cf events");
        let mut h: u64 = 0xcbf29ce484222325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        };
        let mut it = db.raw_iterator_cf(cf);
        it.seek(seq_key(self.bounds()?.first));
        while it.valid() {
            feed(it.key().unwrap_or_default());
            feed(it.value().unwrap_or_default());
            it.next();
        }
        it.status()?;
        Ok(h)
    }

    /// Stop the writer, wake every reader with `LedgerClosed`, and release
    /// the database. Idempotent.
    ///
    /// It waits (up to 2 s) for calls still running in other
    /// threads to let go of the database, so that once it returns the
    /// directory can be opened again, here or by another process. None holds
    /// it long: history readers look every 1,024 rows and stop, and
    /// iterators over the namespace (`children_at`, expansions, resync) hold
    /// it only while they read a chunk. A call that holds it past the wait
    /// keeps the database open until it returns.
    ///
    /// A writable ledger also flushes its memtables to table files first, so
    /// a clean close leaves no write-ahead log behind: the next open replays
    /// nothing, and the directory holds the compressed tables only (after a
    /// million workload ops: 118 MB of tables, where the unflushed ledger
    /// also held 124 MB of log). Everything acknowledged was already durable
    /// (or, with `buffered`, in the log); a flush that fails is reported, and
    /// the ledger is closed all the same.
    pub fn close(&self) -> Result<()> {
        let writer = self.inner.writer.lock().take();
        let flush = writer.is_some();
        if let Some(w) = writer {
            w.stop();
        }
        {
            let mut s = self.inner.signal.shared.lock();
            s.closed = true;
            self.inner.signal.cond.notify_all();
        }
        self.inner.stop_beacon();
        let db = self.inner.db.write().take();
        let mut flushed = Ok(());
        if let Some(db) = db {
            // Holders do not signal when they let go, and they let go within
            // a chunk of work: a short poll, bounded.
            let since = Instant::now();
            while Arc::strong_count(&db) > 1 && since.elapsed() < CLOSE_WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
            if flush {
                let cfs: Vec<_> = ALL_CFS
                    .iter()
                    .map(|n| db.cf_handle(n).expect("every column family is open"))
                    .collect();
                flushed = db
                    .flush_cfs_opt(&cfs, &FlushOptions::default())
                    .map_err(Error::from);
            }
        }
        if let Some(sec) = &self.inner.secondary_dir {
            let _ = fs::remove_dir_all(sec);
        }
        flushed
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.signal.shared.lock().closed
    }
}

impl Inner {
    /// End the beacon's thread (announcer or watcher); the signal is closed.
    fn stop_beacon(&self) {
        if let Some(mut a) = self.announcer.lock().take() {
            a.join();
        }
        if let Some(w) = self.watcher.lock().take() {
            w.stop();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = self.writer.lock().take() {
            w.stop();
        }
        {
            let mut s = self.signal.shared.lock();
            s.closed = true;
            self.signal.cond.notify_all();
        }
        self.stop_beacon();
        self.db.write().take();
        if let Some(sec) = &self.secondary_dir {
            let _ = fs::remove_dir_all(sec);
        }
    }
}

/// Remove the scratch directories of read-only openers whose process is gone
/// (killed before it could clean up). Linux only: elsewhere they stay.
fn remove_stale_secondaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Events between a committed position and the head.
pub(crate) fn lag(head: u64, pos: Position) -> u64 {
    (head + 1).saturating_sub(pos.seq)
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event> {
    Event::decode(bytes).map_err(|e| Error::Corrupt(format!("event: {e}")))
}

fn get_u64(db: &DB, cf: &rocksdb::ColumnFamily, key: &[u8]) -> Result<Option<u64>> {
    match db.get_pinned_cf(cf, key)? {
        Some(v) => Ok(Some(decode_u64(&v).ok_or_else(|| {
            Error::Corrupt(format!("meta {}", String::from_utf8_lossy(key)))
        })?)),
        None => Ok(None),
    }
}

fn read_bounds(db: &DB) -> Result<Bounds> {
    let meta = db.cf_handle(CF_META).expect("cf meta");
    Ok(Bounds {
        first: get_u64(db, meta, META_FIRST)?.unwrap_or(1),
        head: get_u64(db, meta, META_HEAD)?.unwrap_or(0),
    })
}

fn read_retention(db: &DB) -> Result<Retention> {
    let meta = db.cf_handle(CF_META).expect("cf meta");
    match db.get_pinned_cf(meta, META_RETENTION)? {
        Some(v) => Retention::decode(&*v).map_err(|e| Error::Corrupt(format!("retention: {e}"))),
        None => Ok(Retention::default()),
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
        let newer = out.get(&name).map(|c| t > c.updated_us).unwrap_or(true);
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
