//! The publisher loop: cursor (name = publisher name) -> filter -> render ->
//! frame -> send -> commit `batch.next`, at least once, nothing skipped.
//!
//! A reader thread owns the cursor: it reads a batch (up to `batch_max`
//! records, lingering up to `linger_ms` for more once it has one), frames it
//! into [`Message`]s and hands it over; it may run up to [`READ_AHEAD`]
//! batches ahead. The sender task sends each batch, and only after the far
//! side acknowledged every message commits the batch's `next` through
//! [`fsfeed::Ledger::commit`], on the blocking pool while the next batch is
//! sent (`Committer`). So the committed position never passes an
//! unacknowledged record; after a crash the batch in flight and the
//! acknowledged batches whose commit was not yet written (at most two) are
//! sent again, with the same event ids, and those are the only duplicates.
//!
//! - A retryable failure backs off exponentially (`retry_initial_ms`,
//!   doubling to `retry_max_ms`, full jitter) and sends the same batch again.
//! - A permanent rejection parks the publisher: it keeps the batch, shows
//!   `parked` and the error in status, and tries the same batch every
//!   `parked_retry_ms`. Nothing is dropped. With `--once` it stops instead,
//!   and the run fails.
//! - A gap (retention overtook the publisher) is counted in `event_lost`
//!   and logged, then handled by the cursor's `on_gap` (`report`: go on from
//!   the first retained event; `error`: park with the gap as the error).
//! - The gate is asked before each batch; a publisher that stops leading
//!   finishes nothing new, drops its cursor, and waits. When it leads again
//!   its cursor opens at the committed position.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fsfeed::frame::Framer;
use fsfeed::{event_name, Batch, Cursor, CursorOptions, EventId, Gap, Ledger, Position, Start};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::PublisherConfig;
use crate::counters::{Counters, C};
use crate::error::{Error, FailKind, Result};
use crate::gate::{Gate, STANDBY_POLL};
use crate::secret::Scrubber;
use crate::status::{PublisherStatus, State};
use crate::transport::{message_key, Message, Transport};

/// Batches the reader may frame ahead of the one being sent: it keeps
/// reading while a send or a commit waits on the far side or the disk.
pub const READ_AHEAD: usize = 4;

/// How long an idle reader waits for events before it looks for a stop.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// What the status of a running publisher holds besides its counters.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub state: State,
    pub last_error: Option<String>,
    pub last_error_us: Option<i64>,
}

/// A publisher: its config, gate, counters and status.
pub struct Publisher {
    cfg: PublisherConfig,
    ledger: Ledger,
    gate: Gate,
    counters: Counters,
    live: Arc<Mutex<Live>>,
    scrub: Scrubber,
    /// Built (and so checked) with the publisher, used by every term as
    /// leader; out of its place while a term runs.
    transport: Option<Transport>,
    transport_kind: &'static str,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("config", &self.cfg)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// How a publisher's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop; everything acknowledged is committed.
    Stopped,
    /// `--once`: reached the head, everything committed.
    Drained,
    /// `--once`: another process leads; this one sent nothing.
    Standby,
}

/// A batch ready to send.
struct Prepared {
    messages: Vec<Message>,
    records: usize,
    bytes: u64,
    gaps: Vec<Gap>,
    next: Position,
}

enum Item {
    Batch(Prepared),
    /// `--once`: nothing more up to the head.
    Drained,
    /// The cursor cannot go on (a gap under `on_gap = "error"`, a ledger error).
    Failed(fsfeed::Error),
}

impl Publisher {
    /// A publisher over `ledger` (the transport is built here, so a config
    /// for a transport this build lacks fails now).
    pub fn new(
        ledger: Ledger,
        cfg: PublisherConfig,
        gate: Gate,
        counters: Counters,
    ) -> Result<Publisher> {
        cfg.validate()?;
        let transport = Transport::new(&cfg)?;
        Ok(Publisher {
            transport_kind: transport.kind(),
            transport: Some(transport),
            scrub: cfg.scrubber(),
            cfg,
            ledger,
            gate,
            counters,
            live: Arc::new(Mutex::new(Live {
                state: State::Starting,
                last_error: None,
                last_error_us: None,
            })),
        })
    }

    /// The publisher's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub(crate) fn status_handle(&self) -> StatusHandle {
        StatusHandle {
            name: self.cfg.name.clone(),
            endpoint: self.cfg.endpoint.to_string(),
            transport: self.transport_kind,
            gate: self.gate.kind(),
            counters: self.counters.clone(),
            live: self.live.clone(),
        }
    }

    fn set_state(&self, s: State) {
        self.live.lock().state = s;
    }

    fn failed(&self, state: State, message: &str) -> String {
        let m = self.scrub.scrub(message);
        let mut l = self.live.lock();
        l.state = state;
        l.last_error = Some(m.clone());
        l.last_error_us = Some(fsfeed::op::now_us());
        m
    }

    /// Run until `stop` turns true (or, with `once`, until the head is
    /// reached). Errors: a permanent rejection or a cursor failure with
    /// `once`; a lease file that cannot be opened.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, once: bool) -> Result<Outcome> {
        let name = self.cfg.name.clone();
        loop {
            if *stop.borrow() {
                self.set_state(State::Stopped);
                return Ok(Outcome::Stopped);
            }
            let leading = self.gate.leading().map_err(|e| Error::Publisher {
                name: name.clone(),
                message: format!("leader gate: {e}"),
            })?;
            if !leading {
                if once {
                    self.set_state(State::Stopped);
                    info!(publisher = %name, "another process leads; --once sends nothing");
                    return Ok(Outcome::Standby);
                }
                self.set_state(State::Standby);
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => {}
                    r = stop.changed() => if r.is_err() {
                        // Nobody can ask us to stop any more: that is a stop.
                        self.set_state(State::Stopped);
                        return Ok(Outcome::Stopped);
                    },
                }
                continue;
            }
            match self.lead(&mut stop, once).await? {
                Some(outcome) => {
                    self.set_state(if outcome == Outcome::Drained {
                        State::Done
                    } else {
                        State::Stopped
                    });
                    self.gate.release();
                    return Ok(outcome);
                }
                // Leadership lost: wait to lead again.
                None => self.gate.release(),
            }
        }
    }

    /// One term as leader. `None`: the gate stopped saying we lead.
    async fn lead(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        once: bool,
    ) -> Result<Option<Outcome>> {
        let name = self.cfg.name.clone();
        self.set_state(State::Starting);
        let (tx, mut rx) = mpsc::channel::<Item>(READ_AHEAD);
        let halt = Arc::new(AtomicBool::new(false));
        let cursor = {
            let ledger = self.ledger.clone();
            let opts = CursorOptions {
                start: Start::Committed,
                on_missing: Some(self.cfg.start),
                on_gap: self.cfg.on_gap,
                filter: self.cfg.filter.clone(),
                expand: self.cfg.expand,
                format: self.cfg.format.clone(),
            };
            let n = name.clone();
            tokio::task::spawn_blocking(move || ledger.cursor(Some(&n), opts))
                .await
                .expect("cursor open does not panic")?
        };
        info!(publisher = %name, endpoint = %self.cfg.endpoint, position = %cursor.position(), "leading: sending from the committed position");
        let reader = {
            let cfg = self.cfg.clone();
            let halt = halt.clone();
            std::thread::Builder::new()
                .name(format!("fsfeed-pub-{name}"))
                .spawn(move || read_loop(cursor, &cfg, &tx, &halt, once))
                .map_err(|e| Error::Io(format!("reader thread: {e}")))?
        };
        let mut transport = match self.transport.take() {
            Some(t) => t,
            None => Transport::new(&self.cfg)?,
        };
        if let Err(e) = transport.connect().await {
            // Not fatal: the first send connects again, with backoff.
            let m = self.failed(State::Retrying, &e.message);
            warn!(publisher = %name, error = %m, "connect failed");
        }
        self.set_state(State::Running);
        let result = self.send_loop(&mut transport, &mut rx, stop, once).await;
        halt.store(true, Ordering::SeqCst);
        drop(rx);
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        transport.close().await;
        self.transport = Some(transport);
        result
    }

    async fn send_loop(
        &mut self,
        transport: &mut Transport,
        rx: &mut mpsc::Receiver<Item>,
        stop: &mut watch::Receiver<bool>,
        once: bool,
    ) -> Result<Option<Outcome>> {
        let mut committer = Committer {
            ledger: self.ledger.clone(),
            name: self.cfg.name.clone(),
            running: None,
            next: None,
        };
        let result = self
            .send_batches(transport, rx, stop, once, &mut committer)
            .await;
        let committed = committer.flush().await;
        let outcome = result?;
        committed?;
        Ok(outcome)
    }

    async fn send_batches(
        &mut self,
        transport: &mut Transport,
        rx: &mut mpsc::Receiver<Item>,
        stop: &mut watch::Receiver<bool>,
        once: bool,
        committer: &mut Committer,
    ) -> Result<Option<Outcome>> {
        let name = self.cfg.name.clone();
        loop {
            let item = tokio::select! {
                biased;
                _ = stop.changed() => return Ok(Some(Outcome::Stopped)),
                r = committer.settle(), if committer.busy() => {
                    r?;
                    continue;
                }
                item = rx.recv() => item,
            };
            let Some(item) = item else {
                // The reader ended without saying why: only on a stop.
                return Ok(Some(Outcome::Stopped));
            };
            let p = match item {
                Item::Batch(p) => p,
                Item::Drained => return Ok(Some(Outcome::Drained)),
                Item::Failed(e) => {
                    let m = self.failed(State::Parked, &e.to_string());
                    error!(publisher = %name, error = %m, "the cursor cannot go on; parked");
                    if once {
                        return Err(Error::Publisher { name, message: m });
                    }
                    // Parked until stopped: the cursor stays where it is.
                    let _ = stop.changed().await;
                    return Ok(Some(Outcome::Stopped));
                }
            };
            for g in &p.gaps {
                let lost = g.actual.saturating_sub(g.expected);
                self.counters.add(C::Lost, lost);
                warn!(publisher = %name, expected = g.expected, first_retained = g.actual, lost, "retention overtook the publisher: {lost} events were never sent");
            }
            self.counters.add(C::Triggered, p.records as u64);
            if !p.messages.is_empty() {
                match self.deliver(transport, &p, stop, once).await? {
                    Delivered::Yes => {}
                    Delivered::Stopped => return Ok(Some(Outcome::Stopped)),
                }
            }
            let next = p.next;
            committer.acked(next).await?;
            self.counters.add(C::Ok, p.records as u64);
            self.counters.add(C::Bytes, p.bytes);
            if !self.gate.leading().unwrap_or(false) {
                warn!(publisher = %name, "no longer leading; stopping at {next}");
                return Ok(None);
            }
        }
    }

    /// Send one batch until the far side acknowledges it, or a stop.
    async fn deliver(
        &mut self,
        transport: &mut Transport,
        p: &Prepared,
        stop: &mut watch::Receiver<bool>,
        once: bool,
    ) -> Result<Delivered> {
        let name = self.cfg.name.clone();
        let mut delay = self.cfg.retry_initial;
        loop {
            self.counters.set_pending(p.records as i64);
            let r = transport.send(&p.messages).await;
            self.counters.set_pending(0);
            let e = match r {
                Ok(()) => {
                    let mut l = self.live.lock();
                    if l.state != State::Running {
                        info!(publisher = %name, "delivering again");
                        l.state = State::Running;
                    }
                    return Ok(Delivered::Yes);
                }
                Err(e) => e,
            };
            self.counters.add(C::Fail, p.records as u64);
            let wait = match e.kind {
                FailKind::Retry => {
                    let m = self.failed(State::Retrying, &e.message);
                    let d = jitter(delay);
                    warn!(publisher = %name, error = %m, "send failed; retry in {} ms", d.as_millis());
                    delay = (delay * 2).min(self.cfg.retry_max);
                    d
                }
                FailKind::Permanent => {
                    let m = self.failed(State::Parked, &e.message);
                    error!(publisher = %name, error = %m, "the far side rejected the batch; parked (nothing is skipped)");
                    if once {
                        return Err(Error::Publisher { name, message: m });
                    }
                    self.cfg.parked_retry
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return Ok(Delivered::Stopped),
            }
            if !self.gate.leading().unwrap_or(false) {
                return Ok(Delivered::Stopped);
            }
            self.counters.add(C::Retries, 1);
        }
    }
}

/// Commits acknowledged positions, one at a time, off the send path: a
/// commit (a durable write: an fsync) runs on the blocking pool while the
/// next batch is sent. A batch acknowledged while a commit is being written
/// waits for it and is committed next; at most one waits, so at most two
/// acknowledged batches are not yet committed. Positions only grow and only
/// acknowledged ones are stored, so the committed position never passes an
/// acknowledgement; after a crash, what was acknowledged but not committed
/// (at most two batches) and the batch in flight are sent again.
struct Committer {
    ledger: Ledger,
    name: String,
    running: Option<tokio::task::JoinHandle<fsfeed::Result<()>>>,
    /// The newest acknowledged position not yet being committed.
    next: Option<Position>,
}

impl Committer {
    fn busy(&self) -> bool {
        self.running.is_some()
    }

    fn start(&mut self, pos: Position) {
        let (ledger, name) = (self.ledger.clone(), self.name.clone());
        self.running = Some(tokio::task::spawn_blocking(move || {
            ledger.commit(&name, pos)
        }));
    }

    /// `pos` was acknowledged: commit it now, or with the next commit.
    async fn acked(&mut self, pos: Position) -> Result<()> {
        if self.running.as_ref().is_some_and(|h| h.is_finished()) {
            self.settle().await?;
        }
        if self.running.is_none() {
            self.start(pos);
            return Ok(());
        }
        if self.next.is_some() {
            // One acknowledged batch already waits: wait for the running
            // commit (which then starts that one), so at most two batches
            // are acknowledged and not yet committed.
            self.settle().await?;
        }
        self.next = Some(pos);
        Ok(())
    }

    /// Wait for the running commit; start the folded one, if any.
    async fn settle(&mut self) -> Result<()> {
        if let Some(h) = self.running.as_mut() {
            let r = h.await.expect("commit does not panic");
            self.running = None;
            r?;
        }
        if let Some(pos) = self.next.take() {
            self.start(pos);
        }
        Ok(())
    }

    /// Commit everything acknowledged.
    async fn flush(mut self) -> Result<()> {
        while self.busy() || self.next.is_some() {
            self.settle().await?;
        }
        Ok(())
    }
}

enum Delivered {
    Yes,
    Stopped,
}

/// Full jitter: a uniform delay in `[d/2, d]` (never zero, so a refusing
/// peer is not hammered).
fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

/// The reader thread: read, frame, hand over; stop when `halt` is set or
/// the sender is gone.
fn read_loop(
    mut cursor: Cursor,
    cfg: &PublisherConfig,
    tx: &mpsc::Sender<Item>,
    halt: &AtomicBool,
    once: bool,
) {
    let framer = match Framer::new(&cfg.format, cfg.framing) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Item::Failed(e));
            return;
        }
    };
    let mut handed = cursor.position();
    while !halt.load(Ordering::SeqCst) {
        let batch = match collect(&mut cursor, cfg, halt, once) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.blocking_send(Item::Failed(e));
                return;
            }
        };
        let (records, gaps, next) = batch;
        // An empty batch is still handed over when filtered-out events
        // moved the position (so that it is committed too).
        if records.is_empty() && gaps.is_empty() && next == handed {
            if once {
                let _ = tx.blocking_send(Item::Drained);
                return;
            }
            continue;
        }
        let messages = frame(&framer, cfg, &records);
        let bytes = messages.iter().map(|m| m.payload.len() as u64).sum();
        let p = Prepared {
            messages,
            records: records.len(),
            bytes,
            gaps,
            next,
        };
        handed = next;
        if tx.blocking_send(Item::Batch(p)).is_err() {
            return;
        }
    }
}

type Collected = (Vec<fsfeed::Record>, Vec<Gap>, Position);

/// One batch: what is there (waiting up to [`IDLE_WAIT`] for the first
/// record, not at all with `once`), then more until `batch_max` or the
/// linger time.
fn collect(
    cursor: &mut Cursor,
    cfg: &PublisherConfig,
    halt: &AtomicBool,
    once: bool,
) -> fsfeed::Result<Collected> {
    let wait = if once { Duration::ZERO } else { IDLE_WAIT };
    let Batch {
        mut records,
        gap,
        mut next,
    } = cursor.read_until(cfg.batch_max, wait, Some(halt))?;
    let mut gaps: Vec<Gap> = gap.into_iter().collect();
    if records.is_empty() || cfg.linger.is_zero() {
        return Ok((records, gaps, next));
    }
    let deadline = Instant::now() + cfg.linger;
    while records.len() < cfg.batch_max && !halt.load(Ordering::SeqCst) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let more = cursor.read_until(cfg.batch_max - records.len(), left, Some(halt))?;
        gaps.extend(more.gap);
        next = more.next;
        if more.records.is_empty() {
            break;
        }
        records.extend(more.records);
    }
    Ok((records, gaps, next))
}

/// The batch's messages as a publisher with `cfg` sends them: one per
/// record, or the batch framed as one message, split in halves until each
/// fits `batch_bytes`. Public for the benchmark's plain client loops, which
/// send exactly these bytes.
pub fn frame(framer: &Framer, cfg: &PublisherConfig, records: &[fsfeed::Record]) -> Vec<Message> {
    let mut out = Vec::new();
    if cfg.per_record {
        framer.each(records, |r, bytes| {
            let id = EventId::new(r.position).to_string();
            out.push(Message {
                payload: bytes.to_vec(),
                last_event_id: id.clone(),
                event_id: id,
                records: 1,
                seq: r.position.seq,
                key: Some(message_key(r)),
                event_name: Some(event_name::of_record(r)),
            });
        });
        return out;
    }
    framed(framer, cfg.batch_bytes, records, &mut out);
    out
}

fn framed(framer: &Framer, max: usize, records: &[fsfeed::Record], out: &mut Vec<Message>) {
    if records.is_empty() {
        return;
    }
    let mut payload = Vec::with_capacity(records.len() * 600);
    framer.message(records, None, &mut payload);
    if payload.len() > max && records.len() > 1 {
        let (a, b) = records.split_at(records.len() / 2);
        framed(framer, max, a, out);
        framed(framer, max, b, out);
        return;
    }
    let first = &records[0];
    let last = &records[records.len() - 1];
    let one = records.len() == 1;
    out.push(Message {
        payload,
        event_id: EventId::new(first.position).to_string(),
        last_event_id: EventId::new(last.position).to_string(),
        records: records.len(),
        seq: first.position.seq,
        key: one.then(|| message_key(first)),
        event_name: one.then(|| event_name::of_record(first)),
    });
}

/// What the status writer reads of a running publisher.
#[derive(Clone)]
pub(crate) struct StatusHandle {
    pub name: String,
    pub endpoint: String,
    pub transport: &'static str,
    pub gate: &'static str,
    pub counters: Counters,
    pub live: Arc<Mutex<Live>>,
}

impl StatusHandle {
    pub fn snapshot(&self) -> PublisherStatus {
        let l = self.live.lock().clone();
        PublisherStatus {
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            transport: self.transport.to_string(),
            gate: self.gate.to_string(),
            pid: std::process::id(),
            state: l.state,
            committed: None,
            lag: None,
            alive: None,
            counters: self.counters.values(),
            last_error: l.last_error,
            last_error_at: l.last_error_us.map(fsfeed::render::s3::rfc3339_ms),
            updated: fsfeed::render::s3::rfc3339_ms(fsfeed::op::now_us()),
        }
    }
}
