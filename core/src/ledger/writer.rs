//! Group commit, led by the appenders themselves.
//!
//! An appender puts its (already validated) ops on a queue. If no one is
//! writing, it becomes the leader: it takes the queue's requests from the
//! front (up to [`MAX_GROUP_OPS`] ops, its own first), checks each against
//! the ledger state (txids, parents), builds one `WriteBatch` with every
//! event, its time index entry, the retention range deletes and the meta
//! keys, writes it once with the ledger's durability, publishes the new head
//! to readers and answers every request of the group. Appenders that arrive
//! while it writes wait on their own slot; when the leader is done it hands
//! the lead to the first of them, which writes everything queued by then as
//! the next group. A request that fails its check is answered with its error
//! and leaves no trace in the batch; the others in the group are written.
//!
//! An appender alone writes on its own thread: no hand-off to another
//! thread and back. A dedicated writer thread did this work before; the two
//! context switches of its round trip were most of a single buffered append
//! (7k appends/s one at a time, against 57k/s now, on a 2-core VM). There is
//! still one writer at a time (the `writer` mutex), so everything below
//! reads and writes the state exactly as that thread did.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Condvar, Mutex};
use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};

use super::blocks;
use super::keys::*;
use super::retention::{self, Source, View};
use super::time_index::{self, STRIDE_MARK, TIME_STRIDE};
use super::{decode_event, get_u64, read_retention, Bounds, Durability, Signal};
use crate::error::{Error, Result};
use crate::namespace::LIVE_CHECKPOINT_EVERY;
use crate::namespace::{self, Resolved};
use crate::op::Op;
use crate::proto::{Event, Retention};

/// Most ops one group commit writes.
pub(crate) const MAX_GROUP_OPS: usize = 65_536;

/// Physical deletion runs when the first retained seq has moved this far past
/// what was last deleted. `first_seq` itself moves exactly, in every append
/// (readers never see events below it); the range deletes of the events and
/// the time index are issued in chunks because RocksDB's reads slow down with
/// every range tombstone in a memtable (one per append made retention cost
/// 2.6x the append itself). The rule depends on seqs alone, so replicas still
/// hold identical databases.
pub(crate) const DELETE_CHUNK: u64 = 4096;

pub(crate) enum Request {
    Append(Vec<Op>),
    SetRetention(Retention),
}

impl Request {
    /// The ops it appends (what a group's size counts).
    fn ops(&self) -> usize {
        match self {
            Request::Append(o) => o.len(),
            Request::SetRetention(_) => 0,
        }
    }
}

/// Where one request waits for its answer, or for the lead.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    cond: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    /// The previous leader handed this request's appender the lead.
    Lead,
    Done(Result<(u64, u64)>),
}

impl Slot {
    /// Answer the request (once; a later answer is ignored).
    fn send(&self, res: Result<(u64, u64)>) {
        let mut s = self.state.lock();
        if !matches!(*s, SlotState::Done(_)) {
            *s = SlotState::Done(res);
            self.cond.notify_one();
        }
    }

    fn hand_lead(&self) {
        let mut s = self.state.lock();
        if matches!(*s, SlotState::Waiting) {
            *s = SlotState::Lead;
            self.cond.notify_one();
        }
    }

    /// Wait until answered (`Ok`) or handed the lead (`Err(())`).
    fn wait(&self) -> std::result::Result<Result<(u64, u64)>, ()> {
        let mut s = self.state.lock();
        loop {
            match std::mem::take(&mut *s) {
                SlotState::Done(r) => return Ok(r),
                SlotState::Lead => return Err(()),
                SlotState::Waiting => self.cond.wait(&mut s),
            }
        }
    }
}

type Reply = Arc<Slot>;

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Request, Reply)>,
    /// Someone holds the lead. Requests are only queued behind a leader:
    /// whoever finds the queue without one takes the lead.
    leading: bool,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Notified when the lead is given up with nothing queued.
    idle: Condvar,
    /// The state of the one writer; `None` once stopped.
    writer: Mutex<Option<Writer>>,
}

pub(crate) struct WriterHandle {
    shared: Arc<Shared>,
}

impl WriterHandle {
    pub(crate) fn sender(&self) -> WriterRef {
        WriterRef(self.shared.clone())
    }

    /// Let what is queued be written, refuse what comes after, and drop the
    /// writer's state (its handle on the database), storing the live
    /// index's overlay first (on failure, or after a crash, the next open
    /// replays it from the events).
    pub(crate) fn stop(self) {
        let mut q = self.shared.queue.lock();
        q.closed = true;
        while q.leading {
            self.shared.idle.wait(&mut q);
        }
        drop(q);
        let writer = self.shared.writer.lock().take();
        if let Some(mut w) = writer {
            let _ = w.checkpoint();
        }
    }
}

/// What an appender holds while its request is written.
#[derive(Clone)]
pub(crate) struct WriterRef(Arc<Shared>);

impl WriterRef {
    /// Run `f` with no group commit under way: none is between its write
    /// and the bounds it publishes (what `Ledger::verify` needs to read
    /// the published bounds and a snapshot that agree).
    pub(crate) fn between_commits<T>(&self, f: impl FnOnce() -> T) -> T {
        let _writer = self.0.writer.lock();
        f()
    }
}

/// Queue a request and wait for its answer, leading the group commit if no
/// one is.
pub(crate) fn call(w: &WriterRef, req: Request) -> Result<(u64, u64)> {
    let shared = &w.0;
    let slot = Arc::new(Slot::default());
    let lead = {
        let mut q = shared.queue.lock();
        if q.closed {
            return Err(Error::LedgerClosed);
        }
        q.waiting.push_back((req, slot.clone()));
        !std::mem::replace(&mut q.leading, true)
    };
    if !lead {
        if let Ok(res) = slot.wait() {
            return res;
        }
    }
    shared.lead();
    slot.wait().unwrap_or(Err(Error::LedgerClosed))
}

impl Shared {
    /// Write one group from the front of the queue (the caller's request is
    /// first), then hand the lead to the next queued request or give it up.
    fn lead(&self) {
        let group = {
            let mut q = self.queue.lock();
            let mut group = Vec::new();
            let mut ops = 0;
            while let Some((req, _)) = q.waiting.front() {
                let n = req.ops();
                if !group.is_empty() && ops + n > MAX_GROUP_OPS {
                    break;
                }
                ops += n;
                group.push(q.waiting.pop_front().expect("front was there"));
            }
            group
        };
        let slots: Vec<Reply> = group.iter().map(|(_, s)| s.clone()).collect();
        {
            let mut w = self.writer.lock();
            let panicked = match w.as_mut() {
                Some(writer) => catch_unwind(AssertUnwindSafe(|| writer.process(group))).is_err(),
                None => false,
            };
            if panicked {
                // A bug: the state may be half-changed, so no more writes.
                w.take();
            }
        }
        // Answered by `process`, or refused because the writer is gone.
        for s in &slots {
            s.send(Err(Error::LedgerClosed));
        }
        let mut q = self.queue.lock();
        match q.waiting.front() {
            Some((_, next)) => next.hand_lead(),
            None => {
                q.leading = false;
                self.idle.notify_all();
            }
        }
    }
}

#[derive(Clone, Debug)]
struct State {
    first: u64,
    head: u64,
    total_bytes: u64,
    max_time: i64,
    last_txid: u64,
    retention: Retention,
    first_offset: Option<u64>,
    first_running_max: i64,
    phys_first: u64,
    /// Time index keys below this one are deleted: the cleanup scan starts
    /// here instead of skipping over every deleted entry again.
    time_floor: Option<[u8; 16]>,
    /// The key of the block that holds `head` when `head` does not end its
    /// run: the next event is merged into it (`blocks`).
    open_block: Option<u64>,
}

/// Reader-store cursors: name -> (position, updated_us).
type FileCursors = BTreeMap<String, (crate::read::Position, i64)>;

struct Writer {
    signal: Arc<Signal>,
    path: std::path::PathBuf,
    db: Arc<DB>,
    durability: Durability,
    space: Arc<super::space::SpaceGuard>,
    state: State,
    /// Live namespace entries, between group commits.
    ns_cache: Option<namespace::Cache>,
    /// Reader cursor files, cached by the directory's modification time.
    file_cursors: Option<(SystemTime, FileCursors)>,
    /// The live index's checkpoint in flight, and the head it stores.
    checkpointing: Option<(std::thread::JoinHandle<Result<()>>, u64)>,
    /// The last group's `Pending`, emptied, for the next one: its buffers
    /// grown afresh for every group were 6% of a single-op append's
    /// instructions.
    spare: Pending,
}

pub(crate) fn spawn(
    signal: Arc<Signal>,
    path: std::path::PathBuf,
    db: Arc<DB>,
    durability: Durability,
    space: Arc<super::space::SpaceGuard>,
) -> Result<WriterHandle> {
    let state = load_state(&db)?;
    let mut ns_cache = namespace::Cache::default();
    ns_cache.live = open_overlay(&db, state.head)?;
    let w = Writer {
        signal,
        path,
        db,
        durability,
        space,
        state,
        ns_cache: Some(ns_cache),
        file_cursors: None,
        checkpointing: None,
        spare: Pending::default(),
    };
    Ok(WriterHandle {
        shared: Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            idle: Condvar::new(),
            writer: Mutex::new(Some(w)),
        }),
    })
}

/// The live index's overlay at `head`: the ops of the events after the
/// stored marker, replayed (`namespace::live`). A marker past the head
/// means events it covered were lost (no WAL, or a salvage): the index is
/// rebuilt from the stored events, as the format 4 upgrade built it.
fn open_overlay(db: &DB, head: u64) -> Result<namespace::LiveOverlay> {
    let Some(through) = namespace::live_marker(db)? else {
        return Err(Error::Corrupt(
            "the live index's checkpoint marker is missing".into(),
        ));
    };
    if through > head {
        namespace::rebuild_live_index(db, super::stored_ops_after(db, 0), head)?;
        return Ok(namespace::LiveOverlay {
            through: head,
            ..Default::default()
        });
    }
    if through == head {
        return Ok(namespace::LiveOverlay {
            through,
            ..Default::default()
        });
    }
    // Up to the first event that cannot be read: a damaged ledger still
    // opens (`verify` and every read of the damage say `corrupt`), and its
    // index lacks only what no reader can read either.
    let readable =
        super::stored_ops_after(db, through).take_while(|r| !matches!(r, Err(Error::Corrupt(_))));
    Ok(namespace::LiveOverlay {
        entries: namespace::replay_live(db, readable)?,
        through,
        ..Default::default()
    })
}

/// Where a checkpoint builds its table file before RocksDB takes it.
const LIVE_SST: &str = "live-checkpoint.sst";

fn load_state(db: &DB) -> Result<State> {
    let meta = db.cf_handle(CF_META).expect("cf meta");
    let b = super::read_bounds(db)?;
    let total_bytes = get_u64(db, meta, META_TOTAL_BYTES)?.unwrap_or(0);
    let max_time = get_u64(db, meta, META_MAX_TIME)?
        .map(|t| t as i64)
        .unwrap_or(i64::MIN);
    let last_txid = get_u64(db, meta, META_LAST_TXID)?.unwrap_or(0);
    let first_offset = (b.first > b.head).then_some(total_bytes);
    let phys_first = get_u64(db, meta, META_PHYS_FIRST)?.unwrap_or(b.first);
    let open_block = blocks::open_block(db, b.head)?;
    // Running max at `first`: the last time index entry at or before it.
    let time = db.cf_handle(CF_TIME).expect("cf time");
    let mut first_running_max = i64::MIN;
    for item in db.iterator_cf(time, IteratorMode::Start) {
        let (k, _) = item?;
        let (t, s) = decode_time_key(&k).ok_or_else(|| Error::Corrupt("time key".into()))?;
        if s > b.first {
            break;
        }
        first_running_max = t;
    }
    Ok(State {
        first: b.first,
        head: b.head,
        total_bytes,
        max_time,
        last_txid,
        retention: read_retention(db)?,
        first_offset,
        first_running_max,
        phys_first,
        time_floor: None,
        open_block,
    })
}

/// Events and time entries of the batch being built, for retention lookups.
#[derive(Default)]
struct Pending {
    /// Seq of the first pending event.
    base: u64,
    offsets: Vec<u64>,
    /// Where the running max of op times grows: (new max, seq).
    times: Vec<(i64, u64)>,
    /// The time index entries of the batch: (running max, seq).
    strides: Vec<(i64, u64)>,
    /// Encoding buffers, reused for every event of the group: the event,
    /// and its op (`encode_stored`).
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// The block value (or merge operand) being built, its key, and
    /// whether it continues a stored block.
    block: Vec<u8>,
    block_key: u64,
    block_merge: bool,
    /// The least seq whose taken entries the batch stores
    /// (`namespace::below`).
    below_min: Option<u64>,
}

impl Pending {
    /// Empty, its buffers kept. Every field is named, so one added later
    /// cannot carry a group's state into the next unnoticed.
    fn clear(&mut self) {
        let Pending {
            base,
            offsets,
            times,
            strides,
            buf,
            scratch,
            block,
            block_key,
            block_merge,
            below_min,
        } = self;
        *base = 0;
        offsets.clear();
        times.clear();
        strides.clear();
        buf.clear();
        scratch.clear();
        block.clear();
        *block_key = 0;
        *block_merge = false;
        *below_min = None;
    }

    /// Put the block being built into the batch (a merge when it continues
    /// a stored block) and note which block stays open.
    fn flush_block(&mut self, db: &DB, batch: &mut WriteBatch, st: &mut State) {
        if self.block.is_empty() {
            return;
        }
        let events = db.cf_handle(CF_EVENTS).expect("cf events");
        let key = seq_key(self.block_key);
        if self.block_merge {
            batch.merge_cf(events, key, &self.block);
        } else {
            batch.put_cf(events, key, &self.block);
        }
        self.block.clear();
        st.open_block = (!blocks::ends_run(st.head)).then_some(self.block_key);
    }
}

struct Lookup<'a> {
    w: &'a mut Writer,
    pending: &'a Pending,
}

/// The byte offset of event `seq`: pending in this group, or stored.
fn offset_in(db: &DB, pending: &Pending, seq: u64) -> Result<u64> {
    if !pending.offsets.is_empty() && seq >= pending.base {
        return Ok(pending.offsets[(seq - pending.base) as usize]);
    }
    let v =
        blocks::get(db, seq)?.ok_or_else(|| Error::Corrupt(format!("event {seq} is missing")))?;
    Ok(decode_event(&v)?.offset)
}

/// The first seq whose running-max op time is `>= time_us` (below zero
/// counting as zero, as in the index), stored up to `stored_head` or
/// pending (`None`: none is).
fn seq_for_time_in(
    db: &DB,
    stored_head: u64,
    pending: &Pending,
    time_us: i64,
) -> Result<Option<u64>> {
    if let Some(s) = time_index::first_seq_at(db, time_us, stored_head)? {
        return Ok(Some(s));
    }
    Ok(first_reaching(&pending.times, time_us))
}

/// The first growth point of `times` that reaches `time_us`.
fn first_reaching(times: &[(i64, u64)], time_us: i64) -> Option<u64> {
    times
        .iter()
        .find(|(t, _)| t.max(&0) >= &time_us.max(0))
        .map(|(_, s)| *s)
}

impl Source for Lookup<'_> {
    fn offset_of(&mut self, seq: u64) -> Result<u64> {
        offset_in(&self.w.db, self.pending, seq)
    }

    fn seq_for_time(&mut self, time_us: i64) -> Result<u64> {
        let stored = self.w.state.head;
        Ok(seq_for_time_in(&self.w.db, stored, self.pending, time_us)?.unwrap_or(u64::MAX))
    }

    fn slowest_cursor(&mut self) -> Result<Option<u64>> {
        self.w.slowest_cursor()
    }
}

/// The ledger as it would be after the ops of a request checked so far,
/// for [`Writer::retained_from`]: stored and pending events, then `extra`
/// (offset and running-max time entry of each), with no cursor guard.
struct Pure<'a> {
    db: &'a DB,
    /// The last stored seq.
    stored_head: u64,
    pending: &'a Pending,
    /// Seq of `extra[0]`.
    base: u64,
    extra: &'a [u64],
    extra_times: &'a [(i64, u64)],
}

/// What [`Writer::retained_from`] counted of one request's checked ops:
/// the offset of each, the bytes and running max op time after the last,
/// and where that max grew.
#[derive(Default)]
struct Counted {
    offsets: Vec<u64>,
    total: u64,
    max_time: i64,
    times: Vec<(i64, u64)>,
    scratch: Vec<u8>,
    buf: Vec<u8>,
}

impl Source for Pure<'_> {
    fn offset_of(&mut self, seq: u64) -> Result<u64> {
        if seq >= self.base {
            return Ok(self.extra[(seq - self.base) as usize]);
        }
        offset_in(self.db, self.pending, seq)
    }

    fn seq_for_time(&mut self, time_us: i64) -> Result<u64> {
        if let Some(s) = seq_for_time_in(self.db, self.stored_head, self.pending, time_us)? {
            return Ok(s);
        }
        Ok(first_reaching(self.extra_times, time_us).unwrap_or(u64::MAX))
    }

    fn slowest_cursor(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// What an event stored in `stored` bytes counts for in offsets, the
/// retained bytes and `max_bytes`: 8 bytes of key, and its full encoding,
/// the path included when format 7 left it out (it is the op's key). So
/// the counts do not depend on the format: a ledger upgraded from format 6
/// and one created at 7, fed the same ops, give every event the same
/// offset.
fn counted_len(stored: usize, ev: &Event, op: &Op) -> u64 {
    let elided = if ev.path.is_empty() && !op.key.is_empty() {
        prost::encoding::string::encoded_len(3, &op.key)
    } else {
        0
    };
    (stored + elided) as u64 + 8
}

/// The bytes `op` stores as the event at `seq` resolved as `res`, at byte
/// `offset`, encoded into `buf` (`scratch` holds the op's); what
/// `Ledger::total_bytes` counts for it. The op is borrowed, not moved into
/// the event and encoded from there.
fn encode_stored(
    op: &Op,
    res: Resolved,
    seq: u64,
    offset: u64,
    scratch: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) -> u64 {
    let (object_id, is_dir) = (res.object_id, res.is_dir);
    // A path that is the op's key is not stored twice (format 7).
    let path = if res.path == op.key {
        String::new()
    } else {
        res.path
    };
    let ev = Event {
        seq,
        path,
        to_path: res.to_path,
        offset,
        op: None,
        size: res.size,
        etag: res.etag,
        unlisted: res.unlisted,
        replaced: res.replaced,
        below: res.below.as_ref().map(|b| b.len() as u64),
    };
    buf.clear();
    super::encode_event(&ev, op, object_id, is_dir, scratch, buf);
    counted_len(buf.len(), &ev, op)
}

impl Writer {
    /// Check one request against the state it would be applied to (txids)
    /// and apply it to the shadow namespace, which resolves each op's paths.
    /// On error the request's namespace writes are dropped.
    fn prepare(
        &self,
        ops: &[Op],
        st: &State,
        pending: &Pending,
        tx: &mut namespace::Tx<'_>,
    ) -> Result<Vec<Resolved>> {
        let mut last = st.last_txid;
        let mut out = Vec::with_capacity(ops.len());
        let mut counted = None;
        for (i, op) in ops.iter().enumerate() {
            if let Some(t) = op.txid {
                if t <= last {
                    tx.reject();
                    return Err(Error::TxidNotIncreasing {
                        index: i,
                        txid: t,
                        last,
                    });
                }
                last = t;
            }
            let mut retained_from = || self.retained_from(st, pending, ops, &out, &mut counted);
            match namespace::apply(tx, op, st.head + 1 + i as u64, i, &mut retained_from) {
                Ok(res) => out.push(res),
                Err(e) => {
                    tx.reject();
                    return Err(e);
                }
            }
        }
        tx.accept();
        Ok(out)
    }

    /// The first seq the retention limits keep once the request's ops
    /// checked so far (`done`) are appended after `st` and `pending`: what
    /// a "known gone" path is judged against. The cursor guard is left out
    /// (it depends on consumers, not on the ops), so replicas fed the same
    /// ops agree however the ops were batched. `counted` keeps what earlier
    /// calls for the same request counted, so each op (and the entries a
    /// directory op took) is counted once, however many of the request's
    /// ops find a closed edge.
    fn retained_from(
        &self,
        st: &State,
        pending: &Pending,
        ops: &[Op],
        done: &[Resolved],
        counted: &mut Option<Counted>,
    ) -> Result<u64> {
        let c = counted.get_or_insert_with(|| Counted {
            total: st.total_bytes,
            max_time: st.max_time,
            ..Counted::default()
        });
        for (k, (op, res)) in ops.iter().zip(done).enumerate().skip(c.offsets.len()) {
            let seq = st.head + 1 + k as u64;
            c.offsets.push(c.total);
            // As `apply` counts it: the entries a directory op took, then
            // the event.
            let taken = res.below.as_deref().map_or(0, namespace::below::stored_len);
            c.total +=
                taken + encode_stored(op, res.clone(), seq, c.total, &mut c.scratch, &mut c.buf);
            if op.time_us > c.max_time {
                c.max_time = op.time_us;
                c.times.push((c.max_time, seq));
            }
        }
        let view = View {
            first: st.first,
            head: st.head + done.len() as u64,
            total_bytes: c.total,
            max_time: c.max_time,
            first_offset: st.first_offset,
            first_running_max: st.first_running_max,
        };
        let mut limits = st.retention;
        limits.keep_for_cursors = false;
        let mut src = Pure {
            db: &self.db,
            stored_head: self.state.head,
            pending,
            base: st.head + 1,
            extra: &c.offsets,
            extra_times: &c.times,
        };
        retention::new_first(&limits, &view, &mut src)
    }

    fn apply(
        &self,
        op: &Op,
        res: Resolved,
        st: &mut State,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) {
        let time = self.db.cf_handle(CF_TIME).expect("cf time");
        let seq = st.head + 1;
        if let Some(t) = op.txid {
            st.last_txid = t;
        }
        let time_us = op.time_us;
        let offset = st.total_bytes;
        // What a directory op took is stored beside its event and counts
        // with it, so byte retention and `stats` see it.
        let mut taken = 0;
        if let Some(below) = res.below.as_deref() {
            taken = namespace::below::store(&self.db, batch, seq, below);
            if !below.is_empty() {
                pending.below_min.get_or_insert(seq);
            }
        }
        let counted =
            taken + encode_stored(op, res, seq, offset, &mut pending.scratch, &mut pending.buf);
        let bytes = &pending.buf;
        if pending.block.is_empty() {
            // A new value: the run's start, or the rest of the open block.
            match st.open_block.take() {
                Some(key) => {
                    pending.block_key = key;
                    pending.block_merge = true;
                }
                None => {
                    pending.block_key = seq;
                    pending.block_merge = false;
                    pending.block.push(blocks::MARK);
                }
            }
        }
        blocks::push_record(&mut pending.block, bytes);
        if pending.offsets.is_empty() {
            pending.base = seq;
        }
        pending.offsets.push(offset);
        st.total_bytes += counted;
        if time_us > st.max_time {
            st.max_time = time_us;
            pending.times.push((time_us, seq));
        }
        if seq % TIME_STRIDE == 0 {
            batch.put_cf(time, time_key(st.max_time, seq), STRIDE_MARK);
            pending.strides.push((st.max_time, seq));
        }
        if seq == st.first {
            // The ledger was empty: this event is the first retained one.
            st.first_running_max = st.max_time;
            st.first_offset = Some(offset);
        }
        st.head = seq;
        if blocks::ends_run(seq) {
            pending.flush_block(&self.db, batch, st);
        }
    }

    /// The smallest committed position among named cursors; for a name in
    /// both stores the newer commit counts.
    fn slowest_cursor(&mut self) -> Result<Option<u64>> {
        let dir = self.path.join("cursors");
        let mtime = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        let fresh = matches!((&mtime, &self.file_cursors), (Some(t), Some((c, _))) if t == c);
        if !fresh {
            let files = super::read_cursor_files(&self.path)?;
            self.file_cursors = mtime.map(|t| (t, files));
        }
        let mut merged: BTreeMap<String, (u64, i64)> = self
            .file_cursors
            .as_ref()
            .map(|(_, f)| {
                f.iter()
                    .map(|(n, (p, t))| (n.clone(), (p.seq, *t)))
                    .collect()
            })
            .unwrap_or_default();
        let cf = self.db.cf_handle(CF_CURSORS).expect("cf cursors");
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            let st = crate::proto::CursorState::decode(&*v)
                .map_err(|e| Error::Corrupt(format!("cursor: {e}")))?;
            let seq = st.position.map(|p| p.seq).unwrap_or(0);
            let name = String::from_utf8_lossy(&k).into_owned();
            let newer = merged
                .get(&name)
                .map(|(_, t)| !super::reader_wins(st.updated_us, *t))
                .unwrap_or(true);
            if newer {
                merged.insert(name, (seq, st.updated_us));
            }
        }
        Ok(merged.values().map(|(s, _)| *s).min())
    }

    /// Decide retention and add its range deletes to the batch.
    fn retain(
        &mut self,
        st: &mut State,
        batch: &mut WriteBatch,
        pending: &Pending,
        tx: &mut namespace::Tx<'_>,
    ) -> Result<()> {
        let view = View {
            first: st.first,
            head: st.head,
            total_bytes: st.total_bytes,
            max_time: st.max_time,
            first_offset: st.first_offset,
            first_running_max: st.first_running_max,
        };
        let retention = st.retention;
        let mut lookup = Lookup { w: self, pending };
        let (target, floor) = retention::decide(&retention, &view, &mut lookup)?;
        if target <= st.first {
            return Ok(());
        }
        st.first_running_max = st.first_running_max.max(floor);
        let first_offset = (!pending.offsets.is_empty() && target >= pending.base)
            .then(|| pending.offsets[(target - pending.base) as usize]);
        st.first = target;
        st.first_offset = first_offset;
        // What goes physically is decided by `cut`, `target` rounded down
        // to a multiple of the chunk: `target` itself depends on where the
        // group commits end, so deleting (and collecting garbage) up to it
        // left replicas fed the same ops in different batches with
        // different keys (test `retention_deletes_the_same_whatever_the_batching`).
        // Each cut deletes everything below it, so the cuts a replica
        // skipped change nothing once a later one is made. A cut leaves
        // `phys_first` within the chunk below it (at the run after the
        // last time index entry before it), so the last cut made is
        // `phys_first` rounded up (none while it is 1).
        let cut = target / DELETE_CHUNK * DELETE_CHUNK;
        let last_cut = match st.phys_first {
            0 | 1 => 0,
            p => p.div_ceil(DELETE_CHUNK) * DELETE_CHUNK,
        };
        if cut <= last_cut {
            return Ok(());
        }
        let db = self.db.clone();
        let events = db.cf_handle(CF_EVENTS).expect("cf events");
        let time = db.cf_handle(CF_TIME).expect("cf time");
        // The keeper: the last time index entry below `target`. Entries
        // before it go; it stays, so a time lookup that lands in dropped
        // history still returns a seq before `first_seq` and its cursor
        // reports a gap. Events go up to the keeper's seq only: the run of
        // seqs after the last entry kept is what a time lookup reads
        // (`time_index`). The rule depends on seqs and times alone.
        let mut keeper: Option<(i64, u64)> = None;
        let mut running_at_target = i64::MIN;
        let mut visit = |t: i64, s: u64| -> bool {
            if s <= target {
                running_at_target = t;
            }
            if s < cut {
                keeper = Some((t, s));
            }
            s < target
        };
        let mut more = true;
        let from = st.time_floor.unwrap_or([0u8; 16]);
        for item in db.iterator_cf(time, IteratorMode::From(&from, Direction::Forward)) {
            let (k, _) = item?;
            let (t, s) = decode_time_key(&k).ok_or_else(|| Error::Corrupt("time key".into()))?;
            if !visit(t, s) {
                more = false;
                break;
            }
        }
        if more {
            for &(t, s) in &pending.strides {
                if !visit(t, s) {
                    break;
                }
            }
        }
        // (No keeper: no entry below target yet, and no event goes.)
        if let Some((t, s)) = keeper {
            // Whole values only: up to the run that holds `s + 1` (which
            // starts there unless the keeper is a format 3 entry).
            let end = blocks::run_start(s + 1);
            if end > st.phys_first {
                batch.delete_range_cf(events, seq_key(st.phys_first), seq_key(end));
                st.phys_first = end;
            }
            batch.delete_range_cf(time, time_key(0, 0), time_key(t, s));
            st.time_floor = Some(time_key(t, s));
        }
        namespace::collect_garbage(tx, cut)?;
        tx.accept();
        namespace::below::drop_before(&db, batch, cut, pending.below_min)?;
        // A lower bound of the running max at `target` (the last entry at
        // or before it): retention only uses it to skip a time lookup.
        st.first_running_max = st.first_running_max.max(running_at_target);
        Ok(())
    }

    /// Start storing the live index's overlay (`namespace::live`): its
    /// entries are frozen and a thread of its own writes them, with the
    /// marker at the head, as one table file that RocksDB ingests into CF
    /// `ns`. The writer goes on meanwhile (a checkpoint of 65,536 seqs took
    /// 30 ms here: 10 ms syncing the WAL, 20 ms building the file). The
    /// events it covers are made durable first.
    fn start_checkpoint(&mut self) -> Result<()> {
        self.finish_checkpoint()?;
        let head = self.state.head;
        let Some(cache) = self.ns_cache.as_mut() else {
            return Ok(());
        };
        if cache.live.entries.is_empty() && cache.live.through == head {
            return Ok(());
        }
        let frozen = Arc::new(std::mem::take(&mut cache.live.entries));
        cache.live.frozen = Some(frozen.clone());
        let db = self.db.clone();
        let path = self.path.join(LIVE_SST);
        let buffered = self.durability == Durability::Buffered;
        let thread = std::thread::Builder::new()
            .name("fsfeed-live-checkpoint".into())
            .spawn(move || -> Result<()> {
                if buffered {
                    db.flush_wal(true)?;
                }
                let opts = super::cf_options(namespace::CF_NS);
                namespace::store_live_checkpoint(&db, &path, &opts, &frozen, head)
            });
        match thread {
            Ok(t) => {
                self.checkpointing = Some((t, head));
                Ok(())
            }
            Err(e) => {
                cache.live.thaw();
                Err(e.into())
            }
        }
    }

    /// Wait for the checkpoint in flight. On failure what it held goes back
    /// into the overlay and the next group commit writes the overlay in its
    /// batch.
    fn finish_checkpoint(&mut self) -> Result<()> {
        let Some((thread, head)) = self.checkpointing.take() else {
            return Ok(());
        };
        let done = thread
            .join()
            .unwrap_or_else(|_| Err(Error::Corrupt("the checkpoint thread panicked".into())));
        let Some(cache) = self.ns_cache.as_mut() else {
            return done;
        };
        match done {
            Ok(()) => {
                if let Some(f) = cache.live.frozen.take() {
                    cache.forget(f.keys().map(Vec::as_slice));
                }
                cache.live.through = head;
                Ok(())
            }
            Err(e) => {
                cache.live.thaw();
                cache.live.force = true;
                Err(e)
            }
        }
    }

    /// Store the whole overlay now (a close).
    fn checkpoint(&mut self) -> Result<()> {
        self.start_checkpoint()?;
        self.finish_checkpoint()
    }

    fn process(&mut self, group: Vec<(Request, Reply)>) {
        let mut st = self.state.clone();
        // Sized for the group up front: growing a 100 KB+ buffer by doubling
        // showed up as memmove and malloc in profiles.
        let ops: usize = group.iter().map(|(r, _)| r.ops()).sum();
        let mut batch = WriteBatch::with_capacity_bytes(4096 + ops * 512);
        let mut pending = std::mem::take(&mut self.spare);
        pending.clear();
        let mut answers: Vec<(Reply, Result<(u64, u64)>)> = Vec::with_capacity(group.len());
        let db = self.db.clone();
        let meta = db.cf_handle(CF_META).expect("cf meta");
        let mut tx = namespace::Tx::for_ops(&db, self.ns_cache.take().unwrap_or_default(), ops);
        let mut failed: Option<Error> = None;
        for (req, reply) in group {
            match req {
                Request::Append(ops) => match self.prepare(&ops, &st, &pending, &mut tx) {
                    Err(e) => answers.push((reply, Err(e))),
                    Ok(resolved) => {
                        let first = st.head + 1;
                        for (op, res) in ops.iter().zip(resolved) {
                            self.apply(op, res, &mut st, &mut batch, &mut pending);
                        }
                        answers.push((reply, Ok((first, st.head))));
                    }
                },
                Request::SetRetention(r) => {
                    // Apply the old settings to what came before, then the new ones.
                    pending.flush_block(&db, &mut batch, &mut st);
                    if failed.is_none() {
                        if let Err(e) = self.retain(&mut st, &mut batch, &pending, &mut tx) {
                            failed = Some(e);
                        }
                    }
                    batch.put_cf(meta, META_RETENTION, r.encode_to_vec());
                    st.retention = r;
                    answers.push((reply, Ok((st.head + 1, st.head))));
                }
            }
        }
        pending.flush_block(&db, &mut batch, &mut st);
        if batch.is_empty() {
            // Every request was refused: nothing of theirs is in the
            // pending writes, nor in the live index's.
            self.ns_cache = Some(tx.write_into(&mut batch).0);
            self.spare = pending;
            for (reply, res) in answers {
                reply.send(res);
            }
            return;
        }
        if failed.is_none() {
            if let Err(e) = self.retain(&mut st, &mut batch, &pending, &mut tx) {
                failed = Some(e);
            }
        }
        let (mut cache, live) = tx.write_into(&mut batch);
        // The live index's writes stay in memory, unless this batch would
        // delete an event the next open must replay (one after the
        // marker), or the last checkpoint failed: then the overlay and the
        // marker go in this batch (`namespace::live`).
        let needs = |c: &namespace::Cache| c.live.force || st.phys_first > c.live.through + 1;
        let mut in_batch = needs(&cache);
        if in_batch && self.checkpointing.is_some() {
            // The checkpoint in flight first (its file would land over
            // what this batch writes); it may move the marker far enough.
            self.ns_cache = Some(cache);
            let _ = self.finish_checkpoint();
            cache = self.ns_cache.take().expect("put back above");
            in_batch = needs(&cache);
        }
        if in_batch {
            let ns = db.cf_handle(namespace::CF_NS).expect("cf ns");
            for (k, v) in cache.live.merged(&live) {
                namespace::put_write(&mut batch, ns, &k, &v);
                // Stored by this batch, the overlay lets go of it (or the
                // batch fails, and the cache is cleared).
                cache.forget(std::iter::once(k.as_slice()));
            }
            batch.put_cf(ns, namespace::LIVE_MARKER, st.head.to_be_bytes());
        }
        // The meta keys whose value this group changed (`self.state` is
        // what the last written batch stored; each value only grows, so
        // whether a key is stored does not depend on the batching). Each
        // put is an update in the memtable and a record in the batch: the
        // two that retention alone moves were 13% of an object-store
        // single-op append's instructions.
        let stored = &self.state;
        if (st.first, st.phys_first) != (stored.first, stored.phys_first) {
            // Both: an absent `phys_first` reads as `first`.
            batch.put_cf(meta, META_FIRST, st.first.to_be_bytes());
            batch.put_cf(meta, META_PHYS_FIRST, st.phys_first.to_be_bytes());
        }
        batch.put_cf(meta, META_HEAD, st.head.to_be_bytes());
        batch.put_cf(meta, META_TOTAL_BYTES, st.total_bytes.to_be_bytes());
        // A max op time as stored: none yet, or clamped at 0.
        let stored_form = |t: i64| (t != i64::MIN).then(|| t.max(0) as u64);
        if let Some(t) =
            stored_form(st.max_time).filter(|t| stored_form(stored.max_time) != Some(*t))
        {
            batch.put_cf(meta, META_MAX_TIME, t.to_be_bytes());
        }
        if st.last_txid != stored.last_txid {
            batch.put_cf(meta, META_LAST_TXID, st.last_txid.to_be_bytes());
        }
        let result = match failed {
            Some(e) => Err(e),
            None => self
                .space
                .admit(batch.size_in_bytes() as u64)
                .and_then(|()| {
                    self.db
                        .write_opt(batch, &self.durability.write_options())
                        .map_err(Error::from)
                }),
        };
        if result.is_err() {
            cache.clear();
        } else if in_batch {
            cache.live.entries.clear();
            cache.live.through = st.head;
            cache.live.force = false;
        } else {
            cache.live.absorb(live);
        }
        self.ns_cache = Some(cache);
        self.spare = pending;
        match result {
            Ok(()) => {
                let crossed =
                    st.head / LIVE_CHECKPOINT_EVERY > self.state.head / LIVE_CHECKPOINT_EVERY;
                self.state = st;
                self.signal.publish(Bounds {
                    first: self.state.first,
                    head: self.state.head,
                });
                for (reply, res) in answers {
                    reply.send(res);
                }
                if self
                    .checkpointing
                    .as_ref()
                    .is_some_and(|(t, _)| t.is_finished())
                {
                    // Let go of what it stored (a failure is kept for the
                    // next batch: `force`).
                    let _ = self.finish_checkpoint();
                }
                if crossed && !in_batch && self.start_checkpoint().is_err() {
                    // The overlay is as it was: the next group commit
                    // writes it in its batch.
                    if let Some(c) = self.ns_cache.as_mut() {
                        c.live.force = true;
                    }
                }
            }
            Err(e) => {
                // Nothing was written: callers whose request was fine get the
                // write's error, the others keep their own.
                for (reply, res) in answers {
                    let out = match res {
                        Err(own) => Err(own),
                        Ok(_) => Err(match &e {
                            Error::Storage(s) => Error::Storage(s.clone()),
                            Error::DiskFull(s) => Error::DiskFull(s.clone()),
                            other => Error::Corrupt(other.to_string()),
                        }),
                    };
                    reply.send(out);
                }
            }
        }
    }
}
