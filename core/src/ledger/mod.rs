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
//!   head.beacon         the writer's head, for read-only openers to watch (`beacon`)
//! ```
//!
//! The module's files: `mod.rs` opens (and appends through the writer),
//! `read.rs` reads and waits, `cursor_store.rs` keeps named cursors,
//! `admin.rs` has stats, checkpoints, checksums and close, `retention.rs`
//! the retention settings and step, `writer.rs` the group commit,
//! `beacon.rs` the cross-process wake-ups, `keys.rs` the key encodings.
//!
//! # Writer and readers
//!
//! A process that opens the ledger for writing holds RocksDB's lock; its
//! appends are written one group at a time (see `writer`): the appender that
//! finds no write in progress leads, and drains every queued append into one
//! `WriteBatch` (events, time index entries, meta and the retention range
//! deletes), written once with the ledger's durability.
//! Readers in the same process wait on a condition variable that the writer
//! signals after each write. Read-only openers (other processes) use a RocksDB
//! secondary instance; the writer's beacon wakes them (see `beacon`).
//!
//! # Cursors of read-only openers
//!
//! A read-only opener cannot write into the primary's database, so it keeps
//! its named cursor positions in `cursors/NAME.json` beside it (written to a
//! temporary file, fsynced and renamed). Every opener reads both stores; for a
//! name in both, the newer commit wins, so a consumer can move between the
//! writer process and another process without losing its place. The writer's
//! retention guard counts both.

mod admin;
mod beacon;
mod blocks;
mod cursor_store;
mod keys;
mod read;
pub(crate) mod retention;
#[cfg(feature = "arrow")]
mod rows;
pub mod space;
#[cfg(feature = "segments")]
pub mod segments;
mod time_index;
mod writer;

pub use cursor_store::check_cursor_name;
pub(crate) use cursor_store::{lag, read_cursor_files, reader_wins};
pub use keys::ALL_CFS;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use prost::Message;
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, IteratorMode, Options,
    WriteOptions, DB,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::namespace;
use crate::op::Op;
use crate::proto::Event;
pub use crate::proto::Retention;
use crate::read::Position;
use keys::*;

/// The on-disk format version this build writes and reads. 2: the shadow
/// namespace keys its versions by when they closed (see `namespace`).
/// 3: closed forward edges have a tag of their own, so "is this directory
/// empty?" reads one key whatever its history. 4: the time index holds one
/// entry per 64 seqs instead of one per growth of the running max (format 3
/// entries stay valid), and the live index keeps the last known state of
/// object-store and legacy objects (the upgrade builds it from the stored
/// events). Format 2
/// and 3 ledgers are upgraded in place when opened read-write; read-only
/// openers read format 3 as it is and refuse format 2 until then, with
/// `unsupported_format`; format 1 ledgers are refused. 5: the ledger stores
/// whether it seals Parquet segments (`history::segments`); the upgrade
/// from 4 stores "on" (or what the opener asked for), and read-only openers
/// read format 4 as a ledger without segments. 6: events are stored in
/// blocks of up to 32 consecutive seqs per RocksDB value (`blocks`); the
/// single-event values of earlier formats stay readable as they are, so the
/// upgrade from 5 rewrites nothing, and read-only openers read format 5.
/// 7: an event whose path is its op's key (every op named by its key)
/// stores no path; readers fill it in (`decode_event`). Earlier events
/// keep theirs, so the upgrade from 6 rewrites nothing, and read-only
/// openers read format 6 (and 5) as they are. 8: the live index is
/// checkpointed off the write path (`namespace::live`). 9: a recursive
/// delete, a directory's rename or a bucket's delete of an object-store or
/// legacy bucket stores the live index entries it took beside its event
/// (`Event.below`, `namespace::below`), so it expands per object (earlier
/// events expand as they did), and the live index keys a directory's
/// marker as `key/`, apart from the file `key`: the upgrade from 8 moves
/// the stored markers. Read-only openers read format 8 as it is.
pub const FORMAT_VERSION: u32 = 9;

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
    /// Seal complete runs of seqs into Parquet segments (`history::segments`):
    /// `Some` sets and stores it, `None` keeps what is stored (on for a new
    /// ledger). Turning it off removes the segments; turning it on seals the
    /// ledger's history in the background. A build without the feature
    /// `segments` stores the setting and does not seal. Ignored by
    /// read-only openers.
    pub segments: Option<bool>,
    /// Seqs per segment, 64 to 1,048,576 (default 65,536): `Some` sets and
    /// stores it; a change drops the segments sealed with the old size (the
    /// sealer seals again).
    pub segment_rows: Option<u64>,
    /// Bytes that must stay free on the ledger's file system: an append or
    /// cursor commit that would leave less is refused as `disk_full` before
    /// anything is written (`space` module). `None`: 128 MiB
    /// ([`space::DEFAULT_MIN_FREE_BYTES`]); `Some(0)` turns the guard off.
    /// Not stored; ignored by read-only openers.
    pub min_free_bytes: Option<u64>,
    /// Open a ledger whose write-ahead log is damaged with what comes
    /// before the first bad record (RocksDB's point-in-time recovery),
    /// dropping that record and every later one. Off (the default), a bad
    /// record anywhere but at the very end of the log (where a crash can
    /// leave a torn write that was never acknowledged) fails the open as
    /// `corrupt`. A recovery tool, never a default: what it drops may have
    /// been acknowledged (`fsfeed verify --salvage`). Writable opens only.
    pub salvage: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            retention: None,
            durability: Durability::Sync,
            read_only: false,
            segments: None,
            segment_rows: None,
            min_free_bytes: None,
            salvage: false,
        }
    }
}

/// What [`Ledger::verify`] read of an intact ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// First retained seq.
    pub first_seq: u64,
    /// Last seq.
    pub head_seq: u64,
    /// Events decoded (every retained one).
    pub events: u64,
    /// Keys read, over every column family.
    pub keys: u64,
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
    /// Read-only openers: how many times the writer's beacon was seen to
    /// change; a waiting reader catches up when it moves.
    beacon: u64,
}

/// What the writer shares with readers: the bounds and the signal they wait on.
/// Kept apart from `Inner` so the writer's state holds no handle on the
/// ledger (dropping the last `Ledger` stops the writer).
pub(crate) struct Signal {
    shared: Mutex<Shared>,
    cond: Condvar,
    /// Seqs per sealed segment (0: no sealer runs in this process).
    seal_rows: AtomicU64,
    /// Rung when the head completes a run of `seal_rows` seqs, or `first`
    /// passes the end of one.
    #[cfg(feature = "segments")]
    seal_bell: Arc<segments::Bell>,
}

impl Signal {
    fn new(bounds: Bounds) -> Signal {
        Signal {
            shared: Mutex::new(Shared {
                bounds,
                closed: false,
                beacon: 0,
            }),
            cond: Condvar::new(),
            seal_rows: AtomicU64::new(0),
            #[cfg(feature = "segments")]
            seal_bell: Default::default(),
        }
    }

    /// Publish new bounds and wake every waiting reader (and the sealer,
    /// when a run completed or retention passed one).
    pub(crate) fn publish(&self, bounds: Bounds) {
        let mut s = self.shared.lock();
        let rows = self.seal_rows.load(Ordering::Relaxed);
        let crossed = rows > 0
            && (s.bounds.head / rows != bounds.head / rows
                || s.bounds.first.saturating_sub(1) / rows
                    != bounds.first.saturating_sub(1) / rows);
        s.bounds = bounds;
        self.cond.notify_all();
        drop(s);
        #[cfg(feature = "segments")]
        if crossed {
            self.seal_bell.ring();
        }
        #[cfg(not(feature = "segments"))]
        let _ = crossed;
    }
}

/// Whether a ledger seals segments, and the seqs per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSettings {
    pub enabled: bool,
    pub rows: u64,
}

/// Seqs per sealed segment, unless the ledger was told otherwise.
pub const SEGMENT_ROWS: u64 = 65_536;

/// The range [`OpenOptions::segment_rows`] accepts.
pub const SEGMENT_ROWS_RANGE: std::ops::RangeInclusive<u64> = 64..=1 << 20;

impl SegmentSettings {
    pub(crate) fn new(enabled: bool) -> SegmentSettings {
        SegmentSettings {
            enabled,
            rows: SEGMENT_ROWS,
        }
    }

    /// One byte (1: on), then `rows` big-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = vec![u8::from(self.enabled)];
        v.extend_from_slice(&self.rows.to_be_bytes());
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<SegmentSettings> {
        let bad = || Error::Corrupt("segment settings".into());
        if v.len() != 9 || v[0] > 1 {
            return Err(bad());
        }
        let rows = u64::from_be_bytes(v[1..].try_into().map_err(|_| bad())?);
        if rows == 0 {
            return Err(bad());
        }
        Ok(SegmentSettings {
            enabled: v[0] == 1,
            rows,
        })
    }
}

pub(crate) struct Inner {
    path: PathBuf,
    db: RwLock<Option<Arc<DB>>>,
    read_only: bool,
    durability: Durability,
    signal: Arc<Signal>,
    /// Refuses writes that would leave less than the reserve free.
    pub(crate) space: Arc<space::SpaceGuard>,
    writer: Mutex<Option<writer::WriterHandle>>,
    secondary_dir: Option<PathBuf>,
    /// The writer's announcer of its head to other processes.
    announcer: Mutex<Option<beacon::Announcer>>,
    /// A read-only opener's watcher of the writer's announcements (`None`:
    /// a writer, or no beacon to watch).
    watcher: Option<beacon::Watcher>,
    /// Wakes waiting readers when a cursor's subscription is stopped.
    pub(crate) generation: AtomicU64,
    /// A read-only opener's catch-ups with the writer: held by each, and by
    /// reads that must see one state across several lookups (`stats`).
    pub(crate) catching_up: Mutex<()>,
    /// The writer's sealer of Parquet segments, when sealing is on.
    #[cfg(feature = "segments")]
    sealer: Mutex<Option<segments::Sealer>>,
    /// Held while sealing: the sealer thread and `Ledger::seal` take turns.
    #[cfg(feature = "segments")]
    pub(crate) seal_lock: Mutex<()>,
    /// Why this process's sealer last failed (cleared when it succeeds).
    #[cfg(feature = "segments")]
    pub(crate) seal_error: Mutex<Option<String>>,
}

/// A handle on an open ledger; cheap to clone, shared between threads.
#[derive(Clone)]
pub struct Ledger {
    /// Shared by every handle that came from `open` (none for the sealer's
    /// own): when the last one goes, the sealer stops, even in the middle
    /// of a run, so that no thread of ours is inside RocksDB when the
    /// process exits (its static destructors then crash it). Dropped
    /// before `inner` (fields drop in order): the sealer is joined while
    /// this handle still holds the ledger, so the ledger closes on this
    /// thread. Dropped after, a sealer that held the ledger for a look
    /// could be the last holder and close it on its own thread, after
    /// `drop` returned: an open right after found it `locked`.
    _users: Option<Arc<Users>>,
    pub(crate) inner: Arc<Inner>,
}

/// Dropped with the last handle that came from `open`.
struct Users {
    inner: std::sync::Weak<Inner>,
}

impl Drop for Users {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.stop_sealer();
        }
    }
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
    /// Sealed Parquet segments.
    pub segments: SegmentsInfo,
}

/// Sealed segments, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentsInfo {
    /// The stored setting: does the writer seal?
    pub enabled: bool,
    /// Seqs per segment.
    pub rows: u64,
    /// The last seq sealed (0: none).
    pub sealed_seq: u64,
    /// Why this process's sealer last failed, until it next succeeds (a
    /// full disk, say; it retries every few seconds). Absent when it has
    /// not failed, and for read-only openers, whose process does not seal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
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

pub(crate) fn cf_options(name: &str) -> Options {
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
        // Level 0's filters (the newest files, each asked by every lookup)
        // stay pinned, not looked up in the block cache per lookup: -1.6%
        // instructions per all-FSO op at 100,000 ops (`make bench-icount`,
        // 3 runs each); the deeper levels' stay bounded by the cache.
        b.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // The same question in the memtable: a bloom filter of whole keys
        // answers "absent" without walking the skiplist.
        o.set_memtable_prefix_bloom_ratio(0.05);
        o.set_memtable_whole_key_filtering(true);
        // Namespace keys land at random places in the memtable's skiplist,
        // and a random insert into a large one is a chain of cache misses:
        // those inserts were the largest single cost of an append (a quarter
        // of the demo mix's time). A 4 MiB memtable stays mostly in the CPU's
        // cache; the flushes it makes four times as often run on RocksDB's
        // background threads. Against 16 MiB, in paired probe runs
        // (`append_probe`, 0.5M-1M ops): demo mix median +5%, all
        // object-store +17%.
        o.set_write_buffer_size(4 << 20);
    }
    if name == keys::CF_EVENTS {
        o.set_merge_operator(
            blocks::MERGE_NAME,
            blocks::full_merge,
            blocks::partial_merge,
        );
    }
    if name == keys::CF_TIME {
        // Small keys, small memtables: memory stays bounded (see db_options).
        o.set_write_buffer_size(16 << 20);
    }
    o.set_block_based_table_factory(&b);
    o
}

fn db_options(create: bool, salvage: bool) -> Options {
    let mut o = Options::default();
    // A bad log record is an error unless it is the last one (a write torn
    // by a crash, never acknowledged); RocksDB's default (point in time)
    // would stop replaying at any bad record and open without the records
    // after it, acknowledged or not.
    o.set_wal_recovery_mode(if salvage {
        rocksdb::DBRecoveryMode::PointInTime
    } else {
        rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords
    });
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

/// The column families as a writable (`writable`) or read-only open
/// wants them.
///
/// A writable open updates `meta` in place in the memtable. Every group
/// commit rewrites the same six 8-byte keys (head, first, bytes, ...), and
/// as new versions each was a skiplist insert among every version since
/// the last flush: half the instructions of a single-op append (61k
/// against 42k per op, `append_probe` one op per call, object-store). In
/// place, the memtable holds one version of each key. The cost: a read of
/// `meta` may see a value newer than a snapshot it goes through, or than
/// the batch's other writes while that batch is being applied; the
/// ledger reads its bounds from the writer's published ones instead
/// (`Ledger::verify` included). A read-only opener's catch-up applies
/// batches while its other threads read `meta`, so it keeps versions.
fn descriptors(writable: bool) -> Vec<ColumnFamilyDescriptor> {
    ALL_CFS
        .iter()
        .map(|n| {
            let mut o = cf_options(n);
            if writable && *n == keys::CF_META {
                o.set_inplace_update_support(true);
            }
            ColumnFamilyDescriptor::new(*n, o)
        })
        .collect()
}

fn map_open_error(e: rocksdb::Error, path: &Path) -> Error {
    let msg = e.to_string();
    // RocksDB's "While lock file: .../LOCK: Resource temporarily
    // unavailable" (another process) or "lock hold by current process ...
    // /LOCK" (this one); not any message with "lock" in it: a "block
    // checksum mismatch" is damage.
    if e.kind() == rocksdb::ErrorKind::IOError && msg.contains("/LOCK") {
        Error::Locked {
            path: path.to_path_buf(),
        }
    } else {
        Error::from(e)
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
        if let Some(n) = opts.segment_rows {
            if !SEGMENT_ROWS_RANGE.contains(&n) {
                return Err(Error::InvalidArgument(format!(
                    "segment_rows must be {} to {}, not {n}",
                    SEGMENT_ROWS_RANGE.start(),
                    SEGMENT_ROWS_RANGE.end()
                )));
            }
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
            let mut o = db_options(false, false);
            o.set_max_open_files(-1);
            // With every table file open (-1), RocksDB loads table handlers on
            // each catch-up with max_file_opening_threads (16) new threads per
            // column family: 80 thread starts and about 6 ms per catch-up on
            // this machine, nearly all of a read-only reader's wake-up latency.
            // One thread opens the few new files a catch-up brings.
            o.set_max_file_opening_threads(1);
            let cfs = descriptors(false);
            let db =
                DB::open_cf_descriptors_as_secondary(&o, &db_path, &sec, cfs).map_err(|e| {
                    // A writer creating the ledger right now has made the
                    // database but not yet its column families (found by
                    // the soak's reader process): not there yet.
                    if e.to_string().contains("Column family not found") {
                        Error::NotFound { path: path.clone() }
                    } else {
                        map_open_error(e, &path)
                    }
                })?;
            (db, Some(sec))
        } else {
            fs::create_dir_all(&path)?;
            let mut o = db_options(opts.create, opts.salvage);
            // RocksDB refuses in-place updates (`meta`, `descriptors`) with
            // concurrent memtable writes; the writer is the one thread that
            // writes most batches anyway.
            o.set_allow_concurrent_memtable_write(false);
            let db = DB::open_cf_descriptors(&o, &db_path, descriptors(true))
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
                if found == 8 && !opts.read_only {
                    // Format 9 stores more beside the events that expand,
                    // from now on, and keys a directory's marker as
                    // `key/`: the stored markers move, with the version.
                    let mut w = WriteOptions::default();
                    w.set_sync(true);
                    let mut b = rocksdb::WriteBatch::default();
                    crate::namespace::rekey_markers(&db, &mut b)?;
                    b.put_cf(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes());
                    db.write_opt(b, &w)?;
                } else if (2..=7).contains(&found) && !opts.read_only {
                    let head = read_bounds(&db)?.head;
                    if found <= 3 {
                        upgrade_to_format_4(&db, found, head)?;
                    }
                    // Format 5 stores the segment settings: below, as for
                    // a new ledger (absent: on, or what the opener asked).
                    // Format 6 reads format 5's events as they are, and
                    // format 7 format 6's. Format 8 keeps the live index
                    // off the write path: the index of a format 7 ledger,
                    // written in every batch, holds every op through its
                    // head (the marker, `namespace::live`).
                    let mut w = WriteOptions::default();
                    w.set_sync(true);
                    let mut b = rocksdb::WriteBatch::default();
                    let ns = db.cf_handle(CF_NS).expect("cf ns");
                    b.put_cf(ns, crate::namespace::LIVE_MARKER, head.to_be_bytes());
                    // Format 9's marker keys (above).
                    crate::namespace::rekey_markers(&db, &mut b)?;
                    b.put_cf(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes());
                    db.write_opt(b, &w)?;
                } else if found != FORMAT_VERSION && !((3..=8).contains(&found) && opts.read_only) {
                    return Err(Error::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            // A database without its format key, after the waits above: a
            // secondary skips a table file it cannot open (a damaged
            // properties block), so this is how damage to the meta column
            // family shows to a reader. The writable open refuses the same
            // file as corrupt.
            None if opts.read_only && db_path.join("CURRENT").exists() => {
                return Err(Error::Corrupt(format!(
                    "{}: the format version cannot be read (`fsfeed verify --salvage` \
                     opens it for writing and names the damaged file)",
                    path.display()
                )));
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
                let ns = db.cf_handle(CF_NS).expect("cf ns");
                b.put_cf(ns, crate::namespace::LIVE_MARKER, 0u64.to_be_bytes());
                db.write_opt(b, &w)?;
            }
        }
        let bounds = read_bounds(&db)?;
        let segments = if opts.read_only {
            None
        } else {
            Some(segment_settings_on_open(&db, &path, &opts)?)
        };
        let signal = Arc::new(Signal::new(bounds));
        // Watch first, then catch up (below): an append between the two is
        // seen by one or the other.
        let watcher = match opts.read_only {
            true => beacon::Watcher::start(&path, signal.clone()),
            false => None,
        };
        let inner = Arc::new(Inner {
            path: path.clone(),
            db: RwLock::new(Some(db.clone())),
            read_only: opts.read_only,
            durability: opts.durability,
            signal,
            space: Arc::new(space::SpaceGuard::new(
                path.clone(),
                opts.min_free_bytes.unwrap_or(space::DEFAULT_MIN_FREE_BYTES),
            )),
            writer: Mutex::new(None),
            secondary_dir,
            announcer: Mutex::new(None),
            watcher,
            generation: AtomicU64::new(0),
            catching_up: Mutex::new(()),
            #[cfg(feature = "segments")]
            sealer: Mutex::new(None),
            #[cfg(feature = "segments")]
            seal_lock: Mutex::new(()),
            #[cfg(feature = "segments")]
            seal_error: Mutex::new(None),
        });
        let users = Some(Arc::new(Users {
            inner: Arc::downgrade(&inner),
        }));
        let ledger = Ledger {
            inner,
            _users: users,
        };
        if opts.read_only {
            ledger.refresh()?;
        } else {
            let a = beacon::Announcer::start(&path, ledger.inner.signal.clone())?;
            *ledger.inner.announcer.lock() = Some(a);
            let handle = writer::spawn(
                ledger.inner.signal.clone(),
                path.clone(),
                db,
                opts.durability,
                ledger.inner.space.clone(),
            )?;
            *ledger.inner.writer.lock() = Some(handle);
            if let Some(r) = opts.retention {
                ledger.set_retention(r)?;
            }
            #[cfg(feature = "segments")]
            if let Some(s) = segments.filter(|s| s.enabled) {
                let signal = &ledger.inner.signal;
                signal.seal_rows.store(s.rows, Ordering::Relaxed);
                let sealer = segments::Sealer::start(
                    Arc::downgrade(&ledger.inner),
                    &path,
                    signal.seal_bell.clone(),
                )?;
                *ledger.inner.sealer.lock() = Some(sealer);
            }
            #[cfg(not(feature = "segments"))]
            let _ = segments;
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
        writer::call(&self.writer()?, req)
    }

    /// The writer, to queue a request or wait between group commits.
    pub(crate) fn writer(&self) -> Result<writer::WriterRef> {
        self.inner
            .writer
            .lock()
            .as_ref()
            .map(|w| w.sender())
            .ok_or(Error::LedgerClosed)
    }

    /// The retention settings in force.
    pub fn retention(&self) -> Result<Retention> {
        let db = self.db()?;
        read_retention(&db)
    }
}

impl Inner {
    /// Stop the sealer (it lets go of the database within a chunk of rows).
    pub(crate) fn stop_sealer(&self) {
        #[cfg(feature = "segments")]
        {
            let sealer = self.sealer.lock().take();
            if let Some(mut s) = sealer {
                s.stop();
            }
        }
    }

    /// End the beacon's thread (announcer or watcher); the signal is closed.
    fn stop_beacon(&self) {
        if let Some(mut a) = self.announcer.lock().take() {
            a.join();
        }
        if let Some(w) = &self.watcher {
            w.stop();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_sealer();
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

/// Bring a format 2 or 3 ledger to format 4's keys: format 3 only moved
/// closed forward edges to a tag of their own, and format 4 reads format
/// 3's time index as it is; format 4 also keeps the live index of
/// object-store and legacy buckets, built from the stored events. Running it
/// again after a kill gives the same keys.
fn upgrade_to_format_4(db: &DB, found: u32, head: u64) -> Result<()> {
    if found == 2 {
        crate::namespace::upgrade_from_format_2(db)?;
    }
    crate::namespace::rebuild_live_index(db, stored_ops_after(db, 0), head)
}

/// The live index's writes since its last checkpoint, replayed from the
/// events after its marker (`namespace::live`): what a resync lists over
/// the stored entries, in any process. Empty for a format 7 ledger read by
/// this build (no marker: its index was written in every batch).
pub(crate) fn live_overlay(
    db: &DB,
) -> Result<std::collections::BTreeMap<Vec<u8>, namespace::Write>> {
    Ok(match namespace::live_marker(db)? {
        Some(m) => namespace::replay_live(db, stored_ops_after(db, m))?
            .into_iter()
            .collect(),
        None => Default::default(),
    })
}

/// The ops of the events stored after seq `after`, in seq order, whether
/// retention still keeps them or they only wait for their range delete:
/// what a rebuild or a replay of the live index applies.
pub(crate) fn stored_ops_after(db: &DB, after: u64) -> impl Iterator<Item = Result<Op>> + '_ {
    let events = db.cf_handle(CF_EVENTS).expect("cf events");
    let mut it = db.raw_iterator_cf(events);
    it.seek(seq_key(blocks::run_start(after.saturating_add(1))));
    // One stored value at a time (a block holds up to 32 events).
    let mut value: std::vec::IntoIter<Result<Event>> = Vec::new().into_iter();
    let mut done = false;
    let events = std::iter::from_fn(move || loop {
        if let Some(e) = value.next() {
            return Some(e);
        }
        if done {
            return None;
        }
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            done = true;
            return it.status().err().map(|e| Err(e.into()));
        };
        let key = decode_seq(k).unwrap_or(0);
        value = blocks::records(key, v)
            .filter(|r| !matches!(r, Ok((seq, _)) if *seq <= after))
            .map(|r| r.and_then(|(_, bytes)| decode_event(bytes)))
            .collect::<Vec<_>>()
            .into_iter();
        it.next();
    });
    events.filter_map(|e| e.map(|e| e.op).transpose())
}

/// The directory of sealed segments in a ledger directory.
pub const SEGMENTS_DIR: &str = "segments";

/// The segment settings a writable open leaves stored: what is stored, or
/// on for a ledger that has none, changed to `want` when given. Turning
/// sealing off removes the segments (and forgets how far they went).
fn segment_settings_on_open(db: &DB, path: &Path, opts: &OpenOptions) -> Result<SegmentSettings> {
    let meta = db.cf_handle(CF_META).expect("cf meta");
    let stored = db
        .get_cf(meta, META_SEGMENTS)?
        .map(|v| SegmentSettings::decode(&v))
        .transpose()?;
    let base = stored.unwrap_or_else(|| SegmentSettings::new(true));
    let settings = SegmentSettings {
        enabled: opts.segments.unwrap_or(base.enabled),
        rows: opts.segment_rows.unwrap_or(base.rows),
    };
    // Segments of older columns are sealed again.
    #[cfg(feature = "segments")]
    let stale = settings.enabled && segments::stale(path);
    #[cfg(not(feature = "segments"))]
    let stale = false;
    if stored == Some(settings) && !stale {
        return Ok(settings);
    }
    // Segments sealed with another size or other columns, or none wanted:
    // gone.
    let drop_segments =
        stale || !settings.enabled || stored.is_some_and(|s| s.rows != settings.rows);
    if drop_segments {
        match fs::remove_dir_all(path.join(SEGMENTS_DIR)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let mut b = rocksdb::WriteBatch::default();
    b.put_cf(meta, META_SEGMENTS, settings.encode());
    if drop_segments {
        b.delete_cf(meta, META_SEALED);
    }
    let mut w = WriteOptions::default();
    w.set_sync(true);
    db.write_opt(b, &w)?;
    Ok(settings)
}

impl Ledger {
    /// A handle for the ledger's own threads, which does not count as a
    /// user's (see `Ledger::_users`).
    #[cfg(feature = "segments")]
    pub(crate) fn internal(inner: Arc<Inner>) -> Ledger {
        Ledger {
            inner,
            _users: None,
        }
    }

    /// The stored segment settings (a ledger without any, format 4 read
    /// by a read-only opener: off).
    pub(crate) fn segment_settings(&self) -> Result<SegmentSettings> {
        let db = self.db()?;
        let meta = db.cf_handle(CF_META).expect("cf meta");
        match db.get_cf(meta, META_SEGMENTS)? {
            Some(v) => SegmentSettings::decode(&v),
            None => Ok(SegmentSettings::new(false)),
        }
    }

    /// The last seq the sealer has passed (0: none): every complete run of
    /// seqs up to it is a segment, unless retention had cut into it.
    pub fn sealed_seq(&self) -> Result<u64> {
        let db = self.db()?;
        let meta = db.cf_handle(CF_META).expect("cf meta");
        Ok(get_u64(&db, meta, META_SEALED)?.unwrap_or(0))
    }

    #[cfg(feature = "segments")]
    pub(crate) fn set_sealed_seq(&self, seq: u64) -> Result<()> {
        let db = self.db()?;
        let meta = db.cf_handle(CF_META).expect("cf meta");
        // With the appends' own durability: in the log after the events it
        // covers, so no crash keeps it and loses them.
        let w = self.inner.durability.write_options();
        Ok(db.put_cf_opt(meta, META_SEALED, seq.to_be_bytes(), &w)?)
    }

    /// Whether this ledger seals Parquet segments (its stored setting).
    pub fn segments_enabled(&self) -> Result<bool> {
        Ok(self.segment_settings()?.enabled)
    }

    /// Seal every complete run of seqs now, on the calling thread, rather
    /// than wait for the background sealer; returns the last seq sealed
    /// (see [`Ledger::sealed_seq`]). A ledger that does not seal returns
    /// what is sealed, unchanged. Read-only openers: `read_only`.
    #[cfg(feature = "segments")]
    pub fn seal(&self) -> Result<u64> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        segments::seal_pending(self, &stop)
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

/// A stored event as readers see it. Format 7 stores no `path` when it is
/// the op's `key` (every op named by its key); it is filled in here, and
/// in the row parser of history (`columnar::rows`), by the same rule: an
/// empty stored path is the op's key. (No event's path is empty unless its
/// key is: an op named by `parent_id` and `name` has no key and a path.)
pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event> {
    let mut ev = Event::decode(bytes).map_err(|e| Error::Corrupt(format!("event: {e}")))?;
    if ev.path.is_empty() {
        if let Some(op) = &ev.op {
            ev.path = op.key.clone();
        }
    }
    Ok(ev)
}

/// Append `op`'s fields other than 9 and 10 to `buf`, in tag order, each
/// left out at its default, as prost's generated code does; the offset in
/// `buf` where fields 9 and 10 belong. Written out rather than prost's
/// `op.encode` with the two fields changed first: the op is borrowed, and
/// this is 9% fewer instructions per object-store append (`make
/// bench-icount`).
fn encode_op_split(op: &Op, buf: &mut Vec<u8>) -> usize {
    use crate::proto::op::Kind;
    use crate::proto::{Commit, CreateFile};
    use crate::wire::{put_flag, put_message, put_opt, put_scalar, put_str};
    // Every field named: one added to the proto later does not compile
    // until it is encoded here.
    let Op {
        txid,
        time_us,
        volume,
        bucket,
        key,
        layout,
        parent_id,
        name,
        object_id: _,
        is_dir: _,
        principal,
        request_id,
        source_ip,
        source,
        kind,
    } = op;
    put_opt(buf, 1, *txid);
    put_scalar(buf, 2, *time_us as u64);
    put_str(buf, 3, volume);
    put_str(buf, 4, bucket);
    put_str(buf, 5, key);
    put_scalar(buf, 6, *layout as u64);
    put_opt(buf, 7, *parent_id);
    put_str(buf, 8, name);
    let split = buf.len();
    put_str(buf, 11, principal);
    put_str(buf, 12, request_id);
    put_str(buf, 13, source_ip);
    put_str(buf, 14, source);
    match kind {
        // The two kinds most ops are, written out; the rest by prost.
        Some(Kind::CreateFile(c)) => put_message(buf, 20, |buf| {
            let CreateFile {
                overwrite,
                recursive,
                replication,
                owner,
                group,
                perms,
            } = c;
            put_flag(buf, 1, *overwrite);
            put_flag(buf, 2, *recursive);
            put_opt(buf, 3, replication.map(u64::from));
            put_str(buf, 4, owner);
            put_str(buf, 5, group);
            put_opt(buf, 6, perms.map(u64::from));
        }),
        Some(Kind::Commit(c)) => put_message(buf, 22, |buf| {
            let Commit {
                size,
                etag,
                version_id,
                hsync,
                method,
                mtime,
            } = c;
            put_opt(buf, 1, *size);
            put_str(buf, 2, etag);
            put_str(buf, 3, version_id);
            put_flag(buf, 4, *hsync);
            put_str(buf, 5, method);
            put_opt(buf, 6, mtime.map(|m| m as u64));
        }),
        Some(kind) => kind.encode(buf),
        None => {}
    }
    split
}

/// Append to `buf` the encoding of `ev` whose op is `op` with `object_id`
/// and `is_dir` set (`ev.op` itself is not read): the bytes `ev.encode`
/// writes for that event. The op is encoded into `scratch` without those
/// two fields (the namespace sets them on the stored event, and the op is
/// borrowed), and they are spliced in where they belong; its length is
/// then known, so it is not measured first (prost's `ev.encode` measures a
/// nested message before it writes it, then again for its length prefix).
/// Fields go in tag order, each left out at its default, as prost's
/// generated code does (test `encode_event_writes_what_prost_writes`).
pub(crate) fn encode_event(
    ev: &Event,
    op: &Op,
    object_id: Option<u64>,
    is_dir: bool,
    scratch: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) {
    use crate::wire::{put_flag, put_len, put_opt, put_scalar, put_str, uint_len};
    // Every field named: one added to the proto does not compile until it
    // is written here. The op is the caller's, with fields 9 and 10 from
    // the namespace.
    let Event {
        seq,
        op: _,
        path,
        to_path,
        offset,
        size,
        etag,
        unlisted,
        replaced,
        below,
    } = ev;
    put_scalar(buf, 1, *seq);
    scratch.clear();
    let split = encode_op_split(op, scratch);
    let mid = object_id.map_or(0, |id| uint_len(9, id)) + if is_dir { 2 } else { 0 };
    put_len(buf, 2, scratch.len() + mid);
    buf.extend_from_slice(&scratch[..split]);
    put_opt(buf, 9, object_id);
    put_flag(buf, 10, is_dir);
    buf.extend_from_slice(&scratch[split..]);
    put_str(buf, 3, path);
    put_str(buf, 4, to_path);
    put_scalar(buf, 5, *offset);
    put_opt(buf, 6, *size);
    put_str(buf, 7, etag);
    put_flag(buf, 8, *unlisted);
    put_flag(buf, 9, *replaced);
    put_opt(buf, 10, *below);
}

/// Feed `f` a stored event's bytes in their full form, as format 6 stored
/// them: a path format 7 left out (it is the op's key) is put back where
/// prost writes it, as field 3 right after the op (field 2). What
/// `Ledger::checksum` sums, so that the sum does not depend on the format.
pub(crate) fn full_form(event: &[u8], mut f: impl FnMut(&[u8])) -> Result<()> {
    use crate::wire::{bytes, fields};
    use prost::encoding::{encode_key, encode_varint, WireType};
    // The op's `key` and where the op field ends, if it is there.
    let mut op: Option<(&[u8], usize)> = None;
    let mut has_path = false;
    fields(event, |tag, wt, buf| match (tag, wt) {
        (2, WireType::LengthDelimited) => {
            let mut key: &[u8] = &[];
            fields(bytes(buf)?, |t, w, b| {
                if (t, w) == (5, WireType::LengthDelimited) {
                    key = bytes(b)?;
                    return Ok(true);
                }
                Ok(false)
            })?;
            op = Some((key, event.len() - buf.len()));
            Ok(true)
        }
        (3, _) => {
            has_path = true;
            Ok(false)
        }
        _ => Ok(false),
    })?;
    match op {
        Some((key, end)) if !has_path && !key.is_empty() => {
            let mut path = Vec::with_capacity(key.len() + 6);
            encode_key(3, WireType::LengthDelimited, &mut path);
            encode_varint(key.len() as u64, &mut path);
            path.extend_from_slice(key);
            f(&event[..end]);
            f(&path);
            f(&event[end..]);
        }
        _ => f(event),
    }
    Ok(())
}

fn get_u64(db: &DB, cf: &rocksdb::ColumnFamily, key: &[u8]) -> Result<Option<u64>> {
    db.get_pinned_cf(cf, key)?
        .map(|v| {
            decode_u64(&v)
                .ok_or_else(|| Error::Corrupt(format!("meta {}", String::from_utf8_lossy(key))))
        })
        .transpose()
}

/// The stored bounds (absent: an empty ledger).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Layout, Op};
    use prost::Message;

    fn full(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        full_form(bytes, |b| out.extend_from_slice(b)).unwrap();
        out
    }

    #[test]
    fn encode_event_writes_what_prost_writes() {
        // Kept across events, as the writer keeps it: what the last op
        // left there must not reach the next.
        let mut scratch = vec![0x55];
        let mut check = |ev: &Event| {
            let op = ev.op.clone().expect("every stored event has its op");
            // Fields 9 and 10 as the caller sent them, not as stored: the
            // stored ones come from the namespace.
            let sent = Op {
                object_id: Some(77),
                is_dir: !op.is_dir,
                ..op.clone()
            };
            let mut buf = vec![0xAA];
            encode_event(ev, &sent, op.object_id, op.is_dir, &mut scratch, &mut buf);
            assert_eq!(buf[1..], ev.encode_to_vec()[..], "{ev:?}");
        };
        // Every kind of op the workload makes, in each layout, and every
        // event field at its default or not (a zero that is present, for
        // the optional size).
        let ops = crate::workload::Workload::new(7, 1_767_225_600_000_000).take(3000);
        for (i, op) in ops.enumerate() {
            let i = i as u64;
            let layout = [Layout::Obs, Layout::Fso, Layout::Legacy][i as usize % 3];
            let ev = Event {
                seq: [0, 1, i << 40][i as usize % 3],
                path: if i % 2 == 0 {
                    String::new()
                } else {
                    format!("p/{i}")
                },
                to_path: if i % 5 == 0 {
                    format!("to/{i}")
                } else {
                    String::new()
                },
                offset: [0, 200, u64::MAX][i as usize % 3],
                op: Some(Op {
                    is_dir: i % 11 == 0,
                    object_id: [None, Some(0), Some(i)][i as usize % 3],
                    txid: [None, Some(0), Some(i << 20)][(i / 3) as usize % 3],
                    parent_id: [None, Some(0), Some(i)][(i / 9) as usize % 3],
                    time_us: [0, -5, op.time_us][(i / 2) as usize % 3],
                    source: if i % 13 == 0 {
                        "watch".into()
                    } else {
                        String::new()
                    },
                    ..op.with_layout(layout)
                }),
                size: [None, Some(0), Some(i * 1000)][(i / 3) as usize % 3],
                etag: if i % 4 == 0 {
                    String::new()
                } else {
                    "\"e\"".into()
                },
                unlisted: i % 7 == 0,
                replaced: i % 3 == 0,
                below: [None, Some(0), Some(i << 30)][(i / 5) as usize % 3],
            };
            check(&ev);
        }
        // The kinds encoded by hand, each field present or not, at zero or
        // not, and bodies long enough for a two-byte length.
        use crate::proto::op::Kind;
        use crate::proto::{Commit, CreateFile};
        for bits in 0u32..256 {
            let on = |b: u32| bits & (1 << b) != 0;
            let text = |b: u32, s: &str| {
                if on(b) {
                    s.repeat(if on(7) { 70 } else { 1 })
                } else {
                    String::new()
                }
            };
            let kinds = [
                Kind::CreateFile(CreateFile {
                    overwrite: on(0),
                    recursive: on(1),
                    replication: on(2).then_some(if on(6) { 0 } else { 3 }),
                    owner: text(3, "o"),
                    group: text(4, "g"),
                    perms: on(5).then_some(if on(6) { 0 } else { 0o644 }),
                }),
                Kind::Commit(Commit {
                    size: on(0).then_some(if on(6) { 0 } else { 1 << 40 }),
                    etag: text(1, "e"),
                    version_id: text(2, "v"),
                    hsync: on(3),
                    method: text(4, "m"),
                    mtime: on(5).then_some(if on(6) { -1 } else { 1_767_225_600_000 }),
                }),
            ];
            for kind in kinds {
                check(&Event {
                    seq: 9,
                    op: Some(Op {
                        kind: Some(kind),
                        key: "k".into(),
                        ..Op::default()
                    }),
                    ..Default::default()
                });
            }
        }
        check(&Event {
            op: Some(Op::default()),
            ..Default::default()
        });
        check(&Event {
            op: Some(Op {
                layout: 0,
                principal: "p".into(),
                request_id: "r".into(),
                source_ip: "::1".into(),
                name: "n".into(),
                ..Op::default()
            }),
            ..Default::default()
        });
    }

    #[test]
    fn the_full_form_puts_back_a_path_left_out_and_reads_as_the_same_event() {
        let mut op = Op::commit("v", "b", "dir/key", 7, "e");
        op.time_us = 5;
        let with_path = Event {
            seq: 3,
            op: Some(op.clone()),
            path: "dir/key".into(),
            offset: 99,
            size: Some(1),
            ..Default::default()
        };
        let stored = Event {
            path: String::new(),
            ..with_path.clone()
        };
        // Format 7's bytes read as format 6's, and format 6's stay as they are.
        assert_eq!(full(&stored.encode_to_vec()), with_path.encode_to_vec());
        assert_eq!(full(&with_path.encode_to_vec()), with_path.encode_to_vec());
        assert_eq!(decode_event(&stored.encode_to_vec()).unwrap(), with_path);
        // A path that is not the key is stored, and an op without a key
        // (named by parent id and name) keeps its path.
        let other = Event {
            path: "elsewhere".into(),
            ..with_path.clone()
        };
        assert_eq!(full(&other.encode_to_vec()), other.encode_to_vec());
        let mut by_id = op;
        by_id.key = String::new();
        let by_id = Event {
            op: Some(by_id),
            path: "d/name".into(),
            ..with_path.clone()
        };
        assert_eq!(full(&by_id.encode_to_vec()), by_id.encode_to_vec());
        assert_eq!(decode_event(&by_id.encode_to_vec()).unwrap(), by_id);
        // No op: nothing to put back.
        let bare = Event {
            seq: 1,
            ..Default::default()
        };
        assert_eq!(full(&bare.encode_to_vec()), bare.encode_to_vec());
        // Cut bytes are corrupt, not a panic.
        let bytes = stored.encode_to_vec();
        for cut in 1..bytes.len() {
            let _ = full_form(&bytes[..cut], |_| {});
        }
        assert!(full_form(&bytes[..bytes.len() - 1], |_| {}).is_err());
    }
}
