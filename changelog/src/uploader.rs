//! The uploader: windows from the ledger to objects in the bucket, each
//! committed only after its object is stored and the lease still holds.
//!
//! Before it uploads a window it writes its plan (first and last seq, key,
//! multipart upload id) to `LEDGER/changelog/JOB.state.json`; a run that
//! finds a plan for its committed position redoes exactly that window, to
//! the same key, and aborts a multipart upload a killed run left behind.
//! Counters are in `LEDGER/changelog/JOB.status.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fsfeed::{CursorOptions, ExpandOptions, Format, Ledger, OnGap, Position, Start};
use fsfeed_delivery::secret::Scrubber;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, MultipartId, ObjectStore, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{Config, Dest, RecordFormat};
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::window::{read_batches, Window, Windower};

/// The S3 store of a config (no retries of its own: the uploader retries).
pub fn store(cfg: &Config) -> Result<Arc<object_store::aws::AmazonS3>> {
    store_of(&cfg.dest, 0)
}

/// The S3 store of a destination, retrying a failed request `retries`
/// times (within 30 s).
pub fn store_of(d: &Dest, retries: usize) -> Result<Arc<object_store::aws::AmazonS3>> {
    let s = AmazonS3Builder::new()
        .with_endpoint(&d.endpoint)
        .with_region(&d.region)
        .with_bucket_name(&d.bucket)
        .with_access_key_id(d.access_key.expose())
        .with_secret_access_key(d.secret_key.expose())
        .with_virtual_hosted_style_request(!d.path_style)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(RetryConfig {
            max_retries: retries,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        })
        .with_client_options(
            // The client options replace the builder's: allow http here.
            ClientOptions::new()
                .with_allow_http(true)
                .with_allow_invalid_certificates(!d.verify_tls)
                .with_timeout(Duration::from_secs(30))
                .with_connect_timeout(Duration::from_secs(5)),
        )
        .build()
        .map_err(|e| Error::Config(format!("dest: {}", scrubber_of(d).scrub(&e.to_string()))))?;
    Ok(Arc::new(s))
}

/// The config's secrets, for scrubbing error texts.
pub fn scrubber(cfg: &Config) -> Scrubber {
    scrubber_of(&cfg.dest)
}

/// A destination's secrets, for scrubbing error texts.
pub fn scrubber_of(d: &Dest) -> Scrubber {
    let mut s = Scrubber::default();
    s.add(&d.access_key);
    s.add(&d.secret_key);
    s
}

/// A planned window (what a killed run redoes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// First seq.
    pub first_seq: u64,
    /// Last seq.
    pub last_seq: u64,
    /// The object key.
    pub key: String,
    /// A multipart upload in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// The uploader's counters and last state (`changelog status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The job.
    pub job: String,
    /// Objects uploaded.
    pub objects: u64,
    /// Bytes uploaded (compressed).
    pub bytes: u64,
    /// Records logged.
    pub events: u64,
    /// Failed store calls.
    pub failures: u64,
    /// Store calls tried again.
    pub retries: u64,
    /// Windows that carried a gap.
    pub gaps: u64,
    /// The last seq committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The last object's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
    /// Did this uploader hold the lease when it last looked?
    pub lease_held: bool,
    /// The lease's epoch it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_epoch: Option<u64>,
    /// Who it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// When this status was written (Unix ms).
    pub updated_ms: i64,
}

/// What a run did (as `changelog run --once` and `ChangeLog.run_once()`
/// report it).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Objects written.
    pub objects: u64,
    /// Records logged.
    pub events: u64,
    /// Whether another uploader held the lease (nothing was done).
    pub not_leader: bool,
}

fn dir(ledger: &std::path::Path) -> PathBuf {
    ledger.join("changelog")
}

/// Replace `path` whole with `v` as JSON (through a temporary file and a
/// rename); `sync`: durable before it returns.
fn write_json<T: Serialize>(path: &std::path::Path, v: &T, sync: bool) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(v).expect("JSON"))?;
    if sync {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_json<T: for<'a> Deserialize<'a>>(path: &std::path::Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The status file of a job.
pub fn status_path(ledger: &std::path::Path, job: &str) -> PathBuf {
    dir(ledger).join(format!("{job}.status.json"))
}

/// Read a job's status file.
pub fn read_status(ledger: &std::path::Path, job: &str) -> Result<Option<Status>> {
    read_json(&status_path(ledger, job))
}

/// A store call cut off at the deadline (at least half a second given), so
/// that a hung server cannot hold a run past `retry_for`.
async fn bounded<T>(
    deadline: Instant,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(500));
    match tokio::time::timeout(left, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::Store(format!("no answer within {left:?}"))),
    }
}

/// The retry policy of store calls: doubling delays from 200 ms up to 5 s,
/// until `deadline`; failures and retries are counted in the status.
struct Backoff {
    delay: Duration,
    deadline: Instant,
}

impl Backoff {
    fn new(deadline: Instant) -> Backoff {
        Backoff {
            delay: Duration::from_millis(200),
            deadline,
        }
    }

    /// After a failed `what` with message `m`: wait before the next try, or
    /// the store error to give up with when the deadline would pass.
    async fn again(
        &mut self,
        status: &mut Status,
        scrub: &Scrubber,
        what: &str,
        m: &str,
    ) -> Result<()> {
        status.failures += 1;
        let m = scrub.scrub(m);
        if Instant::now() + self.delay > self.deadline {
            return Err(Error::Store(format!("{what}: {m}")));
        }
        warn!("{what} failed, retrying in {:?}: {m}", self.delay);
        status.retries += 1;
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

/// Run a store call until it succeeds or `deadline` passed.
async fn retrying<T, F, Fut>(
    status: &mut Status,
    scrub: &Scrubber,
    what: &str,
    deadline: Instant,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(deadline);
    loop {
        match bounded(deadline, f()).await {
            Err(Error::Store(m)) => backoff.again(status, scrub, what, &m).await?,
            other => return other,
        }
    }
}

/// What `fsfeed changelog status --json` prints: the status file's counters
/// with `job`, `committed`, `head_seq`, `lag`, and (`with_lease`) the lease
/// object as stored (`lease`, or `lease_error` when it cannot be read).
pub async fn status_report(
    ledger: &Ledger,
    cfg: &Config,
    with_lease: bool,
) -> Result<serde_json::Value> {
    let st = read_status(ledger.path(), &cfg.job)?.unwrap_or_default();
    let committed = ledger.committed(&cfg.cursor_name())?;
    let head = ledger.head_seq()?;
    let mut v = serde_json::to_value(&st).expect("status JSON");
    v["job"] = serde_json::json!(cfg.job);
    v["committed"] = serde_json::json!(committed.map(|p| p.seq));
    v["head_seq"] = serde_json::json!(head);
    v["lag"] = serde_json::json!(committed.map(|p| head.saturating_sub(p.seq.saturating_sub(1))));
    if let (true, Some(ttl)) = (with_lease, cfg.lease_ttl) {
        let lease = Lease::new(store(cfg)?, &cfg.dest.prefix, ttl);
        match bounded(Instant::now() + Duration::from_secs(10), lease.read()).await {
            Ok(doc) => v["lease"] = serde_json::json!(doc.map(|(d, _)| d)),
            Err(e) => v["lease_error"] = serde_json::json!(scrubber(cfg).scrub(&e.to_string())),
        }
    }
    Ok(v)
}

/// The uploader.
pub struct Uploader {
    cfg: Config,
    ledger: Ledger,
    store: Arc<object_store::aws::AmazonS3>,
    lease: Option<Lease>,
    status: Status,
    scrub: Scrubber,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("job", &self.cfg.job)
            .finish()
    }
}

/// A window ready to upload.
struct Built {
    first_seq: u64,
    last_seq: u64,
    /// Its key (a plan left by a killed run may name another).
    key: String,
    /// Records in it.
    count: u64,
    /// Did it carry a gap?
    gap: bool,
    /// The gzipped body (`None`: nothing to write).
    body: Option<Bytes>,
}

/// Read windows from `cursor` up to `until` (the first one exactly up to
/// `fixed`, when a plan says so) and hand them to `tx` gzipped, on three
/// threads: reading, cutting and rendering, gzip. Stops at the end, at an
/// error (handed over) or when `tx` is closed.
fn build(
    mut cursor: fsfeed::Cursor,
    cfg: &Config,
    until: u64,
    fixed: Option<u64>,
    tx: tokio::sync::mpsc::Sender<Result<Built>>,
) {
    type Json = Result<(Built, Option<Vec<u8>>)>;
    let (btx, brx) = std::sync::mpsc::sync_channel::<Result<fsfeed::Batch>>(4);
    let (jtx, jrx) = std::sync::mpsc::sync_channel::<Json>(1);
    let (renderer, first) = (cursor.renderer().clone(), cursor.position().seq);
    let mut windower = Windower::new(cfg, renderer, first, until, fixed);
    std::thread::scope(|s| {
        s.spawn(move || read_batches(&mut cursor, until, |b| btx.send(b).is_ok()));
        s.spawn(move || {
            for j in jrx {
                let b = j.map(|(mut b, json)| {
                    b.body = json.map(|j| Bytes::from(gzip(&j)));
                    b
                });
                if tx.blocking_send(b).is_err() {
                    break;
                }
            }
        });
        // Owned here: when this closure ends, the reader's channel and the
        // gzip thread's close, and both threads stop.
        let (brx, jtx) = (brx, jtx);
        let mut emit = |w: Window| {
            let b = Built {
                first_seq: w.first_seq,
                last_seq: w.last_seq,
                key: w.key(cfg, fsfeed::op::now_us()),
                count: w.count() as u64,
                gap: w.gap.is_some(),
                body: None,
            };
            let json = (!w.is_empty()).then(|| w.body(cfg));
            jtx.send(Ok((b, json))).is_ok()
        };
        for b in brx {
            match b {
                Ok(b) => {
                    if !windower.push(b, &mut emit) {
                        return;
                    }
                }
                Err(e) => {
                    let _ = jtx.send(Err(e));
                    return;
                }
            }
        }
        windower.finish(&mut emit);
    });
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut e = GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    e.write_all(body).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

impl Uploader {
    /// An uploader of `ledger` (opened by the caller, read-only or not).
    pub fn new(ledger: Ledger, cfg: Config) -> Result<Uploader> {
        let store = store(&cfg)?;
        std::fs::create_dir_all(dir(ledger.path()))?;
        let lease = cfg
            .lease_ttl
            .map(|ttl| Lease::new(store.clone(), &cfg.dest.prefix, ttl));
        let mut status = read_status(ledger.path(), &cfg.job)?.unwrap_or_default();
        status.job = cfg.job.clone();
        status.holder = lease.as_ref().map(|l| l.me().to_string());
        let scrub = scrubber(&cfg);
        Ok(Uploader {
            cfg,
            ledger,
            store,
            lease,
            status,
            scrub,
        })
    }

    /// The counters so far.
    pub fn status(&self) -> &Status {
        &self.status
    }

    fn state_path(&self) -> PathBuf {
        dir(self.ledger.path()).join(format!("{}.state.json", self.cfg.job))
    }

    /// Write the status file (replaced whole, not synced: counters only).
    fn save_status(&mut self) {
        self.status.updated_ms = fsfeed::op::now_us() / 1000;
        if let Err(e) = write_json(
            &status_path(self.ledger.path(), &self.cfg.job),
            &self.status,
            false,
        ) {
            warn!("cannot write the status file: {e}");
        }
    }

    fn cursor(&self) -> Result<fsfeed::Cursor> {
        Ok(self.ledger.cursor(
            Some(&self.cfg.cursor_name()),
            CursorOptions {
                start: Start::Committed,
                on_missing: Some(Start::Earliest),
                on_gap: OnGap::Report,
                expand: ExpandOptions {
                    renames: self.cfg.expand_renames,
                    deletes: self.cfg.expand_renames,
                },
                format: match self.cfg.format {
                    RecordFormat::Native => Format::Native,
                    RecordFormat::S3 => Format::S3(fsfeed::render::s3::S3Options::default()),
                },
                ..CursorOptions::default()
            },
        )?)
    }

    /// Upload everything from the committed position to the head as it
    /// stood at the start, in windows; then return. Another uploader holding
    /// the lease is `not_leader` (nothing done).
    pub async fn run_once(&mut self) -> Result<Report> {
        self.run_until(None).await
    }

    /// [`Uploader::run_once`], then give the lease up (whether the run
    /// failed or not): one run, for cron and Airflow.
    pub async fn run_once_and_release(&mut self) -> Result<Report> {
        let report = self.run_once().await;
        let _ = self.release().await;
        report
    }

    /// As [`Uploader::run_once`], stopping after the window in flight once
    /// `stop` turns true.
    async fn run_until(
        &mut self,
        stop: Option<&tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Report> {
        let deadline = Instant::now() + self.cfg.retry_for;
        let mut report = Report::default();
        if !self.take_lease(deadline, false).await? {
            report.not_leader = true;
            self.save_status();
            return Ok(report);
        }
        let until = self.ledger.head_seq()?;
        let cursor = self.cursor()?;
        let state = self.state_path();
        let mut plan: Option<Plan> = read_json(&state)?;
        if let Some(p) = &plan {
            if let Some(id) = &p.upload_id {
                let path = ObjPath::from(p.key.as_str());
                let id: MultipartId = id.clone();
                let store = self.store.clone();
                let aborted =
                    object_store::multipart::MultipartStore::abort_multipart(&*store, &path, &id)
                        .await;
                match aborted {
                    Ok(()) => info!(key = %p.key, "aborted a multipart upload a killed run left"),
                    Err(e) => {
                        warn!(key = %p.key, "aborting a left multipart upload: {}", self.scrub.scrub(&e.to_string()))
                    }
                }
            }
            if p.first_seq != cursor.position().seq {
                plan = None;
            }
        }
        // Windows are read, cut and rendered, then gzipped, on threads of
        // their own (`build`) while this task uploads the one before: the
        // next window is ready when an upload ends. Only the window being
        // uploaded has a plan on disk.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let fixed = plan.as_ref().map(|p| p.last_seq);
        let cfg = self.cfg.clone();
        let builder = tokio::task::spawn_blocking(move || build(cursor, &cfg, until, fixed, tx));
        let mut result = Ok(());
        while let Some(b) = rx.recv().await {
            match self.upload_window(b, &mut plan, &state, deadline).await {
                Ok(events) => {
                    if let Some(events) = events {
                        report.objects += 1;
                        report.events += events;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if stop.is_some_and(|s| *s.borrow()) {
                break;
            }
        }
        // The builder stops at its next hand-over once nothing receives.
        drop(rx);
        let _ = builder.await;
        self.save_status();
        result.map(|()| report)
    }

    /// Upload one built window and commit it; `Some(records)` when an
    /// object was written, `None` for a window with nothing to write.
    async fn upload_window(
        &mut self,
        b: Result<Built>,
        plan: &mut Option<Plan>,
        state: &std::path::Path,
        deadline: Instant,
    ) -> Result<Option<u64>> {
        let b = b?;
        let next = Position::new(b.last_seq + 1, 0);
        let Some(body) = b.body else {
            self.commit(next, deadline).await?;
            *plan = None;
            let _ = std::fs::remove_file(state);
            return Ok(None);
        };
        let key = match plan.take() {
            Some(p) => p.key,
            None => b.key,
        };
        let mut p = Plan {
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            key: key.clone(),
            upload_id: None,
        };
        write_json(state, &p, true)?;
        let size = body.len() as u64;
        self.upload(&mut p, state, body, deadline).await?;
        // Fault injection for the crash tests: die between an upload and
        // its commit, as a SIGKILL there would.
        if std::env::var_os("FSFEED_CHANGELOG_DIE_AFTER_UPLOAD").is_some() {
            std::process::abort();
        }
        self.status.objects += 1;
        self.status.bytes += size;
        self.status.events += b.count;
        if b.gap {
            self.status.gaps += 1;
            warn!(key = %key, "retention dropped events before this window: the object carries the gap");
        }
        self.status.last_key = Some(key);
        self.commit(next, deadline).await?;
        let _ = std::fs::remove_file(state);
        self.save_status();
        Ok(Some(b.count))
    }

    async fn take_lease(&mut self, deadline: Instant, renew_only: bool) -> Result<bool> {
        let Some(lease) = self.lease.as_mut() else {
            return Ok(true);
        };
        // Not `retrying`: each try borrows the lease mutably.
        let mut backoff = Backoff::new(deadline);
        let r = loop {
            let r = if renew_only {
                bounded(deadline, lease.renew()).await
            } else {
                bounded(deadline, lease.acquire()).await
            };
            match r {
                Err(Error::Store(m)) => {
                    let what = "taking the lease";
                    if let Err(e) = backoff.again(&mut self.status, &self.scrub, what, &m).await {
                        break Err(e);
                    }
                }
                other => break other,
            }
        };
        self.status.lease_held = matches!(r, Ok(true));
        self.status.lease_epoch = lease.epoch();
        r
    }

    async fn upload(
        &mut self,
        p: &mut Plan,
        state: &std::path::Path,
        body: Bytes,
        deadline: Instant,
    ) -> Result<()> {
        let path = ObjPath::from(p.key.as_str());
        let store = self.store.clone();
        if (body.len() as u64) <= self.cfg.multipart_threshold {
            return retrying(&mut self.status, &self.scrub, "uploading", deadline, || {
                let (store, path, body) = (store.clone(), path.clone(), body.clone());
                async move {
                    store
                        .put(&path, PutPayload::from(body))
                        .await
                        .map(|_| ())
                        .map_err(|e| Error::Store(e.to_string()))
                }
            })
            .await;
        }
        use object_store::multipart::MultipartStore;
        let id = retrying(
            &mut self.status,
            &self.scrub,
            "starting a multipart upload",
            deadline,
            || {
                let (store, path) = (store.clone(), path.clone());
                async move {
                    store
                        .create_multipart(&path)
                        .await
                        .map_err(|e| Error::Store(e.to_string()))
                }
            },
        )
        .await?;
        p.upload_id = Some(id.clone());
        write_json(state, p, true)?;
        let part = self.cfg.part_size as usize;
        let mut parts = Vec::new();
        for (i, chunk) in body.chunks(part).enumerate() {
            let chunk = body.slice_ref(chunk);
            let pid = retrying(
                &mut self.status,
                &self.scrub,
                "uploading a part",
                deadline,
                || {
                    let (store, path, id, chunk) =
                        (store.clone(), path.clone(), id.clone(), chunk.clone());
                    async move {
                        store
                            .put_part(&path, &id, i, PutPayload::from(chunk))
                            .await
                            .map_err(|e| Error::Store(e.to_string()))
                    }
                },
            )
            .await?;
            parts.push(pid);
            // Fault injection for the crash tests: die with a multipart
            // upload half done.
            if std::env::var_os("FSFEED_CHANGELOG_DIE_AFTER_PART").is_some() {
                std::process::abort();
            }
        }
        retrying(
            &mut self.status,
            &self.scrub,
            "completing a multipart upload",
            deadline,
            || {
                let (store, path, id, parts) =
                    (store.clone(), path.clone(), id.clone(), parts.clone());
                async move {
                    store
                        .complete_multipart(&path, &id, parts)
                        .await
                        .map(|_| ())
                        .map_err(|e| Error::Store(e.to_string()))
                }
            },
        )
        .await
    }

    async fn commit(&mut self, next: Position, deadline: Instant) -> Result<()> {
        let check = self.lease.as_ref().is_some_and(|l| !l.surely_held());
        if check && !self.take_lease(deadline, true).await? {
            return Err(Error::LeaseLost(
                "another uploader took the lease: this window is not committed".into(),
            ));
        }
        self.ledger.commit(&self.cfg.cursor_name(), next)?;
        self.status.last_seq = Some(next.seq - 1);
        Ok(())
    }

    /// Upload every `interval` until `stop` turns true (the window in flight
    /// is finished and committed first, no later one is started); then give
    /// the lease up.
    pub async fn run(&mut self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        loop {
            match self.run_until(Some(&stop)).await {
                Ok(r) if r.not_leader => info!("another uploader holds the lease"),
                Ok(_) => {}
                Err(Error::LeaseLost(m)) => warn!("{m}"),
                Err(e) => warn!("{}", self.scrub.scrub(&e.to_string())),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.interval) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        self.release().await
    }

    /// Give the lease up (its expiry becomes now).
    pub async fn release(&mut self) -> Result<()> {
        if let Some(l) = &mut self.lease {
            l.release().await?;
        }
        self.status.lease_held = false;
        self.save_status();
        Ok(())
    }
}
