//! The native half of the `fsfeed` npm package (napi-rs).
//!
//! Thin by rule (`ARCHITECTURE.md`, "Front ends"): options are converted at the edge and the
//! core does the work; records are the core renderers' JSON. What lives here
//! is what Node needs: no call blocks the event loop (reads that find nothing
//! park a Promise on the core's [`Notifier`], one thread per ledger for all
//! waiting reads; appends run on tokio's blocking pool), callbacks reach
//! JavaScript through an unref'd ThreadsafeFunction, and errors are `Error`s
//! whose `code` property is the core's stable code: sync calls return
//! `napi::Error<Code>`, and Promises are settled through `promise`, which
//! makes the rejection's `Error` on the JS thread (an `async fn` of napi-rs 2
//! rejects only with napi's own status names as codes).

mod delivery;
mod watch;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fsfeed::cursor::Subscription as CoreSubscription;
use fsfeed::history::HistoryOptions;
use fsfeed::notify::Notifier;
use fsfeed::render::{Format, Renderer};
use fsfeed::{
    Batch as CoreBatch, Cursor as CoreCursor, CursorOptions, Durability, Error as CoreError,
    EventId, ExpandOptions, Filter, Ledger as CoreLedger, OnGap, Op, OpenOptions, Position,
    Retention, Start,
};
use napi::bindgen_prelude::Buffer;
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use std::future::Future;

use napi::bindgen_prelude::ToNapiValue;
use napi::{Env, JsFunction, JsObject, Status};
use napi_derive::napi;
use serde_json::{json, Map, Value};

/// As the CLI: the writer allocates per op, and glibc malloc halves its rate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `code` of a thrown or rejected JS error: the core's stable code
/// (napi-rs sets an error's `code` from its status's string).
#[derive(Debug, Clone)]
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

type Result<T> = napi::Result<T, Code>;

/// A core error as a JS error whose `code` is the core's.
fn to_js(e: CoreError) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

/// An error from napi itself (creating a function, a buffer ...).
fn from_napi(e: napi::Error) -> napi::Error<Code> {
    to_js(CoreError::InvalidArgument(e.reason))
}

/// A change-log or export error: the core's code for ledger errors, the
/// change log's own (`invalid_config`, `store_failed`, ...) for the rest.
fn changelog_err(e: fsfeed_changelog::Error) -> napi::Error<Code> {
    match e {
        fsfeed_changelog::Error::Ledger(e) => to_js(e),
        other => napi::Error::new(Code(other.code()), other.to_string()),
    }
}

fn invalid(msg: impl Into<String>) -> napi::Error<Code> {
    to_js(CoreError::InvalidArgument(msg.into()))
}

trait OrJs<T> {
    fn js(self) -> Result<T>;
}

impl<T> OrJs<T> for fsfeed::Result<T> {
    fn js(self) -> Result<T> {
        self.map_err(to_js)
    }
}

/// A Promise of `fut`'s value, run on napi's tokio runtime. A failure
/// rejects it with a JS `Error` whose `code` is the core's, made on the JS
/// thread (napi-rs 2 rejects `async fn`s only with its own status names).
fn promise<T, F>(env: &Env, fut: F) -> Result<JsObject>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred().map_err(from_napi)?;
    napi::bindgen_prelude::spawn(async move {
        let r = fut.await;
        deferred.resolve(move |env: Env| match r {
            Ok(v) => Ok(v),
            Err(e) => Err(rejection(&env, e)),
        });
    });
    Ok(promise)
}

/// The JS error of a rejection: message and `code` as a property.
fn rejection(env: &Env, e: napi::Error<Code>) -> napi::Error {
    let made = env
        .create_error(napi::Error::new(Status::GenericFailure, e.reason.clone()))
        .and_then(|mut obj| {
            obj.set_named_property("code", e.status.0)?;
            Ok(obj)
        });
    match made {
        Ok(obj) => napi::Error::from(obj.into_unknown()),
        Err(err) => err,
    }
}

/// Run blocking core work off the event loop.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> fsfeed::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| invalid(format!("worker failed: {e}")))?
        .js()
}

/// JS numbers arrive as floats; whole ones within 2^53 are the integers the
/// JSON forms mean (`time_us`, `size`, seqs).
fn ints(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
                if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                }
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(ints).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, ints(v))).collect()),
        other => other,
    }
}

fn opt<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// An optional start option: absent or null is `None`.
fn opt_start(o: &Map<String, Value>, key: &str) -> Result<Option<Start>> {
    opt(o, key)
        .map(|v| Start::from_json_value(v).js())
        .transpose()
}

fn options(v: Option<Value>, what: &str) -> Result<Map<String, Value>> {
    match v.map(ints) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid(format!("{what} must be an object, not {other}"))),
    }
}

fn check_keys(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<()> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!(
            "unknown {what} option {k:?} ({})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn string_opt<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match opt(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("{key} must be a string, not {other}"))),
    }
}

fn bool_opt(o: &Map<String, Value>, key: &str) -> Result<bool> {
    match opt(o, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid(format!("{key} must be a boolean, not {other}"))),
    }
}

/// A count >= 1 from a JS number.
fn count(v: Option<f64>, default: usize, what: &str) -> Result<usize> {
    match v {
        None => Ok(default),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "{what} must be a whole number >= 1, not {n}"
        ))),
    }
}

/// Milliseconds (>= 0) as a Duration; `None` stays `None`.
fn millis(v: Option<f64>, what: &str) -> Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(Duration::from_secs_f64(n / 1000.0))),
        Some(n) => Err(invalid(format!(
            "{what} must be milliseconds >= 0, not {n}"
        ))),
    }
}

fn to_op(v: Value, index: usize) -> Result<Op> {
    let v = ints(v);
    if !v.is_object() {
        return Err(to_js(CoreError::InvalidOp {
            index,
            reason: format!("an op is an object in the canonical JSON form, not {v}"),
        }));
    }
    Op::from_json_value(v, index).js()
}

fn to_filter(v: Option<&Value>) -> Result<Filter> {
    match v {
        None => Ok(Filter::all()),
        Some(v) => Filter::from_json_value(v.clone()).js(),
    }
}

fn position_json(p: Position) -> Value {
    json!({ "seq": p.seq, "sub": p.sub })
}

/// A batch as JSON text (the core's framing): V8's `JSON.parse` builds the
/// objects several times faster than N-API calls per field would (see
/// bench/read.mjs).
fn batch_text(b: &CoreBatch, renderer: &dyn Renderer) -> String {
    String::from_utf8(fsfeed::frame::batch_json(b, renderer)).expect("serde_json writes UTF-8")
}

// ---------------------------------------------------------------- Ledger

/// An fsfeed ledger (the JS `Ledger` wraps it).
#[napi]
pub struct NativeLedger {
    inner: CoreLedger,
    notifier: Arc<Notifier>,
}

#[napi]
impl NativeLedger {
    /// Open (or create) the ledger at `path`.
    #[napi(factory)]
    pub fn open(path: String, options_: Option<Value>) -> Result<NativeLedger> {
        let o = options(options_, "open")?;
        check_keys(
            &o,
            &["retention", "durability", "readOnly", "create", "segments"],
            "open",
        )?;
        let retention = match opt(&o, "retention") {
            Some(v) => Some(Retention::from_settings(v.clone()).js()?),
            None => None,
        };
        let opts = OpenOptions {
            create: match opt(&o, "create") {
                None => true,
                Some(_) => bool_opt(&o, "create")?,
            },
            retention,
            durability: Durability::parse(string_opt(&o, "durability")?.unwrap_or("sync")).js()?,
            read_only: bool_opt(&o, "readOnly")?,
            segments: match opt(&o, "segments") {
                None => None,
                Some(_) => Some(bool_opt(&o, "segments")?),
            },
            ..OpenOptions::default()
        };
        let inner = CoreLedger::open_with(&path, opts).js()?;
        let notifier = Arc::new(Notifier::new(inner.clone()));
        Ok(NativeLedger { inner, notifier })
    }

    /// Append one op; resolves to its seq.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn append(&self, env: Env, op: Value) -> Result<JsObject> {
        let l = self.inner.clone();
        promise(&env, async move {
            let op = to_op(op, 0)?;
            blocking(move || l.append(op)).await.map(|s| s as i64)
        })
    }

    /// Append ops atomically, in order; resolves to their seqs.
    #[napi(ts_return_type = "Promise<number[]>")]
    pub fn append_batch(&self, env: Env, ops: Value) -> Result<JsObject> {
        let l = self.inner.clone();
        promise(&env, async move {
            let Value::Array(ops) = ops else {
                return Err(invalid("appendBatch takes an array of ops"));
            };
            let ops = ops
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_op(v, i))
                .collect::<Result<Vec<_>>>()?;
            if ops.is_empty() {
                return Ok(Vec::new());
            }
            let (first, last) = blocking(move || l.append_batch(ops)).await?;
            Ok((first..=last).map(|s| s as i64).collect::<Vec<i64>>())
        })
    }

    /// A cursor; `name` makes it durable (committed positions survive).
    #[napi]
    pub fn cursor(&self, name: Option<String>, options_: Option<Value>) -> Result<NativeCursor> {
        let o = options(options_, "cursor")?;
        check_keys(
            &o,
            &[
                "start",
                "format",
                "s3Profile",
                "s3Settings",
                "filter",
                "onGap",
                "expandRenames",
                "expandDeletes",
            ],
            "cursor",
        )?;
        let format = Format::from_parts(
            string_opt(&o, "format")?.unwrap_or("native"),
            string_opt(&o, "s3Profile")?,
            opt(&o, "s3Settings").cloned(),
        )
        .js()?;
        let start = match opt(&o, "start") {
            Some(v) => Start::from_json_value(v).js()?,
            None => Start::Committed,
        };
        let opts = CursorOptions {
            start,
            on_missing: None,
            on_gap: string_opt(&o, "onGap")?
                .unwrap_or("report")
                .parse::<OnGap>()
                .js()?,
            filter: to_filter(opt(&o, "filter"))?,
            expand: ExpandOptions {
                renames: bool_opt(&o, "expandRenames")?,
                deletes: bool_opt(&o, "expandDeletes")?,
            },
            format,
        };
        let c = self.inner.cursor(name.as_deref(), opts).js()?;
        Ok(NativeCursor {
            renderer: c.renderer().clone(),
            inner: Arc::new(Mutex::new(Some(c))),
            name,
            notifier: self.notifier.clone(),
        })
    }

    /// Events of a range as Arrow IPC stream bytes (`tableFromIPC`).
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn history(&self, env: Env, options_: Option<Value>) -> Result<JsObject> {
        let this_inner = self.inner.clone();
        promise(&env, async move {
            let o = options(options_, "history")?;
            check_keys(&o, &["since", "until", "filter", "batchRows"], "history")?;
            let opts = HistoryOptions {
                since: opt_start(&o, "since")?.unwrap_or(Start::Earliest),
                until: opt_start(&o, "until")?,
                filter: to_filter(opt(&o, "filter"))?,
                batch_rows: count(
                    opt(&o, "batchRows").and_then(Value::as_f64),
                    65_536,
                    "batchRows",
                )?,
            };
            let l = this_inner.clone();
            let bytes = blocking(move || {
                let h = l.history(opts)?;
                let schema = h.schema();
                let mut out = Vec::new();
                let ipc =
                    |e: fsfeed::history::ArrowError| CoreError::Corrupt(format!("arrow ipc: {e}"));
                let mut w =
                    arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).map_err(ipc)?;
                let mut h = h;
                while let Some(b) = h.next_batch()? {
                    w.write(&b).map_err(ipc)?;
                }
                w.finish().map_err(ipc)?;
                drop(w);
                Ok(out)
            })
            .await?;
            Ok::<Buffer, _>(bytes.into())
        })
    }

    /// The seqs `[first, last]` that `history({ since, until })` would read
    /// now, or `null` for an empty range (`gap` before the first retained
    /// event): for splitting a range into parts.
    #[napi(ts_return_type = "Promise<[number, number] | null>")]
    pub fn history_range(&self, env: Env, options_: Option<Value>) -> Result<JsObject> {
        let this_inner = self.inner.clone();
        promise(&env, async move {
            let o = options(options_, "historyRange")?;
            check_keys(&o, &["since", "until"], "historyRange")?;
            let since = opt_start(&o, "since")?.unwrap_or(Start::Earliest);
            let until = opt_start(&o, "until")?;
            let l = this_inner.clone();
            let r = blocking(move || l.history_range(since, until)).await?;
            serde_json::to_value(r).map_err(|e| invalid(e.to_string()))
        })
    }

    /// Net changes since `since`: one row per path.
    #[napi(ts_return_type = "Promise<unknown[]>")]
    pub fn changes(&self, env: Env, options_: Option<Value>) -> Result<JsObject> {
        let this_inner = self.inner.clone();
        promise(&env, async move {
            let o = options(options_, "changes")?;
            check_keys(&o, &["since", "until"], "changes")?;
            let since = match opt(&o, "since") {
                Some(v) => Start::from_json_value(v).js()?,
                None => return Err(invalid("changes needs `since`")),
            };
            let until = match opt(&o, "until") {
                None => None,
                Some(v) => match v.as_u64() {
                    Some(n) if n >= 1 => Some(n),
                    _ => return Err(invalid(format!("until must be a seq >= 1, not {v}"))),
                },
            };
            let l = this_inner.clone();
            let rows = blocking(move || l.changes(since, until)).await?;
            serde_json::to_value(rows).map_err(|e| invalid(e.to_string()))
        })
    }

    /// Counters and settings.
    #[napi]
    pub fn stats(&self) -> Result<Value> {
        let s = self.inner.stats().js()?;
        serde_json::to_value(s).map_err(|e| invalid(e.to_string()))
    }

    /// Read every stored key with its checksum verified and decode every
    /// event: `{first_seq, head_seq, events, keys}`, or an error with code
    /// `corrupt` naming the damage (`fsfeed verify`).
    #[napi(
        ts_return_type = "{ first_seq: number; head_seq: number; events: number; keys: number }"
    )]
    pub fn verify(&self) -> Result<Value> {
        let v = self.inner.verify().js()?;
        serde_json::to_value(v).map_err(|e| invalid(e.to_string()))
    }

    /// The tree of FSO bucket `bucket` at `seq` (default: the head), each
    /// directory before what is below it: `[{path, object_id, is_dir,
    /// listed, size?, etag?, version_id?, mtime_ms?}]`.
    #[napi(ts_return_type = "TreeEntry[]")]
    pub fn tree(&self, bucket: String, volume: Option<String>, seq: Option<f64>) -> Result<Value> {
        let seq = match seq {
            None => self.inner.head_seq().js()?,
            Some(s)
                if s.is_finite()
                    && s >= 0.0
                    && s.fract() == 0.0
                    && s <= 9_007_199_254_740_992.0 =>
            {
                s as u64
            }
            Some(s) => return Err(invalid(format!("seq must be a whole number >= 0, not {s}"))),
        };
        let t = self
            .inner
            .tree_at(volume.as_deref().unwrap_or(""), &bucket, seq)
            .js()?;
        serde_json::to_value(t).map_err(|e| invalid(e.to_string()))
    }

    /// Every named cursor: `[{name, position, lag, store, updated_us}]`,
    /// as `fsfeed cursors --json` lists them.
    #[napi(ts_return_type = "unknown[]")]
    pub fn cursors(&self) -> Result<Value> {
        let c = self.inner.cursors().js()?;
        serde_json::to_value(c).map_err(|e| invalid(e.to_string()))
    }

    /// Forget a named cursor, so that it no longer holds retention back;
    /// false when there was none of that name.
    #[napi]
    pub fn delete_cursor(&self, name: String) -> Result<bool> {
        self.inner.delete_cursor(&name).js()
    }

    /// Store new retention settings (as `open`'s `retention` option); what
    /// they drop is deleted at once.
    #[napi]
    pub fn set_retention(&self, retention: Value) -> Result<()> {
        let r = Retention::from_settings(ints(retention)).js()?;
        self.inner.set_retention(r).js()
    }

    /// The retention settings in force.
    #[napi(getter, ts_return_type = "Record<string, unknown>")]
    pub fn retention(&self) -> Result<Value> {
        let r = self.inner.retention().js()?;
        serde_json::to_value(fsfeed::RetentionInfo::from(&r)).map_err(|e| invalid(e.to_string()))
    }

    /// A checksum (FNV-1a 64) over every retained event, as a bigint:
    /// replicas fed the same ops agree on it.
    #[napi]
    pub fn checksum(&self) -> Result<napi::bindgen_prelude::BigInt> {
        let c = self.inner.checksum().js()?;
        Ok(napi::bindgen_prelude::BigInt::from(c))
    }

    /// Copy a consistent snapshot of the ledger into `dir` (writer only).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn checkpoint(&self, env: Env, dir: String) -> Result<JsObject> {
        let l = self.inner.clone();
        promise(&env, async move {
            blocking(move || l.checkpoint(std::path::Path::new(&dir))).await
        })
    }

    /// History as Parquet files in `dest` (a directory or
    /// `s3://BUCKET[/PREFIX]` with `store`, a TOML file of endpoint and
    /// keys), as `fsfeed export --parquet`; options `since`, `until`,
    /// `cursor`, `store`, `skipGap`. Resolves to the export's report.
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn export_parquet(
        &self,
        env: Env,
        dest: String,
        options_: Option<Value>,
    ) -> Result<JsObject> {
        use fsfeed_changelog::export::{bound, export, Request, Target};
        let l = self.inner.clone();
        delivery::on_runtime(&env, async move {
            let o = options(options_, "exportParquet")?;
            check_keys(
                &o,
                &["since", "until", "cursor", "store", "skipGap"],
                "exportParquet",
            )?;
            let req = Request {
                since: bound("since", opt_start(&o, "since")?).map_err(changelog_err)?,
                until: bound("until", opt_start(&o, "until")?).map_err(changelog_err)?,
                cursor: string_opt(&o, "cursor")?.map(str::to_string),
                skip_gap: bool_opt(&o, "skipGap")?,
            };
            let store = string_opt(&o, "store")?.map(std::path::PathBuf::from);
            let target = Target::parse(&dest, store.as_deref()).map_err(changelog_err)?;
            let report = export(&l, &target, req).await.map_err(changelog_err)?;
            serde_json::to_value(report).map_err(|e| invalid(e.to_string()))
        })
    }

    /// Last appended seq.
    #[napi(getter)]
    pub fn head_seq(&self) -> Result<i64> {
        self.inner.head_seq().js().map(|s| s as i64)
    }

    /// First retained seq.
    #[napi(getter)]
    pub fn first_seq(&self) -> Result<i64> {
        self.inner.first_seq().js().map(|s| s as i64)
    }

    /// Seal every complete run of seqs into its Parquet segment now;
    /// resolves to the last seq sealed.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn seal(&self, env: Env) -> Result<JsObject> {
        let l = self.inner.clone();
        promise(&env, async move {
            blocking(move || l.seal()).await.map(|s| s as i64)
        })
    }

    /// The last seq sealed into Parquet segments (0: none).
    #[napi(getter)]
    pub fn sealed_seq(&self) -> Result<i64> {
        self.inner.sealed_seq().js().map(|s| s as i64)
    }

    /// Whether the ledger seals Parquet segments (its stored setting).
    #[napi(getter)]
    pub fn segments(&self) -> Result<bool> {
        self.inner.segments_enabled().js()
    }

    /// Opened beside a writer in another process.
    #[napi(getter)]
    pub fn read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// Closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Close: later calls fail with `ledger_closed`; waiting reads wake.
    /// Once it returns, the directory can be opened again.
    #[napi]
    pub fn close(&self) -> Result<()> {
        // Close first: waiting reads then wake to `ledger_closed`.
        let r = self.inner.close().js();
        self.notifier.stop();
        r
    }
}

// ---------------------------------------------------------------- Cursor

/// A reader's place in a ledger (the JS `Cursor` wraps it).
#[napi]
pub struct NativeCursor {
    /// `None` once a subscription owns the core cursor.
    inner: Arc<Mutex<Option<CoreCursor>>>,
    /// The core cursor's renderer (it outlives the cursor's move into a
    /// subscription).
    renderer: Arc<dyn Renderer>,
    name: Option<String>,
    notifier: Arc<Notifier>,
}

impl NativeCursor {
    fn with<T>(&self, f: impl FnOnce(&mut CoreCursor) -> fsfeed::Result<T>) -> Result<T> {
        with(&self.inner, f)
    }
}

fn with<T>(
    c: &Mutex<Option<CoreCursor>>,
    f: impl FnOnce(&mut CoreCursor) -> fsfeed::Result<T>,
) -> Result<T> {
    let mut g = c.lock().unwrap_or_else(|p| p.into_inner());
    match g.as_mut() {
        Some(c) => f(c).js(),
        None => Err(invalid("this cursor now belongs to a subscription")),
    }
}

#[napi]
impl NativeCursor {
    /// Up to `max` records; waits up to `timeoutMs` (none: until there is
    /// one) without blocking the event loop or holding a thread.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn read(&self, env: Env, max: Option<f64>, timeout_ms: Option<f64>) -> Result<JsObject> {
        let inner = self.inner.clone();
        let notifier_ = self.notifier.clone();
        let renderer = self.renderer.clone();
        promise(&env, async move {
            let max = count(max, 1000, "max")?;
            let deadline = millis(timeout_ms, "timeoutMs")?
                .map(|t| tokio::time::Instant::now() + t.min(Duration::from_secs(86_400 * 365)));
            loop {
                // The core's one wait: the batch there is now, or a wake-up
                // registered with the ledger's notifier (no thread waits here).
                let (tx, rx) = tokio::sync::oneshot::channel();
                let notifier = notifier_.clone();
                let got = with(&inner, |c| {
                    c.read_or_notify(
                        max,
                        &notifier,
                        Box::new(move |ok| {
                            let _ = tx.send(ok);
                        }),
                    )
                })?;
                if let Some(batch) = got {
                    return Ok(batch_text(&batch, renderer.as_ref()));
                }
                let woke = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, rx).await {
                        Ok(r) => r.unwrap_or(false),
                        Err(_) => {
                            let empty = CoreBatch {
                                records: Vec::new(),
                                gap: None,
                                next: with(&inner, |c| Ok(c.position()))?,
                            };
                            return Ok(batch_text(&empty, renderer.as_ref()));
                        }
                    },
                    None => rx.await.unwrap_or(false),
                };
                if !woke {
                    // Closed or failed: the next read says which.
                    let b = with(&inner, |c| c.read(max, Duration::ZERO))?;
                    return Ok(batch_text(&b, renderer.as_ref()));
                }
            }
        })
    }

    /// Consume the record an event id names: commit the position after it
    /// and return that position (`{seq, sub}`).
    #[napi]
    pub fn ack(&self, event_id: String) -> Result<Value> {
        self.with(|c| c.ack(&event_id)).map(position_json)
    }

    /// Benchmark baseline: read and render up to `limit` records to JSON in
    /// Rust alone (same reads and renderer, no JS); returns how many rendered.
    #[napi]
    pub fn read_core(&self, limit: f64) -> Result<i64> {
        let limit = count(Some(limit), 1, "limit")? as u64;
        self.with(|c| c.read_rendered(limit)).map(|n| n as i64)
    }

    /// Commit a position (`{seq, sub}`); none: the position after all read.
    #[napi]
    pub fn commit(&self, position: Option<Value>) -> Result<()> {
        let pos = match position.map(ints) {
            None | Some(Value::Null) => None,
            Some(v) => match Start::from_json_value(&v).js()? {
                Start::Position(p) => Some(p),
                Start::Seq(s) => Some(Position::new(s, 0)),
                _ => return Err(invalid("commit takes a {seq, sub} position or a seq")),
            },
        };
        self.with(|c| match pos {
            Some(p) => c.commit(p),
            None => c.commit_current(),
        })
    }

    /// Move to `start` (as the cursor option).
    #[napi]
    pub fn seek(&self, start: Value) -> Result<()> {
        let s = Start::from_json_value(&ints(start)).js()?;
        self.with(|c| c.seek(s))
    }

    /// Start over with the live tree: the next reads give the namespace at
    /// the head as records marked `resync`, then the events after it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn resync(&self, env: Env) -> Result<JsObject> {
        let inner = self.inner.clone();
        promise(&env, async move {
            tokio::task::spawn_blocking(move || with(&inner, |c| c.resync()))
                .await
                .map_err(|e| invalid(format!("worker failed: {e}")))?
        })
    }

    /// Events between the position and the head.
    #[napi]
    pub fn lag(&self) -> Result<i64> {
        self.with(|c| c.lag()).map(|l| l as i64)
    }

    /// The next position to read.
    #[napi(getter)]
    pub fn position(&self) -> Result<Value> {
        self.with(|c| Ok(position_json(c.position())))
    }

    /// The cursor's name.
    #[napi(getter)]
    pub fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// Deliver batches to `callback(batch)` (called on the event loop through
    /// an unref'd ThreadsafeFunction: it does not keep the process alive).
    /// The JS side answers each batch with `ack(true)` to commit and go on, or
    /// `ack(false)` to stop; the subscription's thread waits for that answer,
    /// so batches are handled one at a time, in order. The cursor then
    /// belongs to the subscription.
    #[napi]
    pub fn subscribe(
        &self,
        env: Env,
        callback: JsFunction,
        max: Option<f64>,
        max_wait_ms: Option<f64>,
    ) -> Result<NativeSubscription> {
        let max = count(max, 1000, "max")?;
        let wait = millis(max_wait_ms, "maxWaitMs")?.unwrap_or(Duration::from_millis(100));
        let mut tsfn: ThreadsafeFunction<String, ErrorStrategy::Fatal> = callback
            .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<String>| Ok(vec![ctx.value]))
            .map_err(from_napi)?;
        tsfn.unref(&env).map_err(from_napi)?;
        let core = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| invalid("this cursor already belongs to a subscription"))?;
        let renderer = self.renderer.clone();
        let ack: Arc<Mutex<Option<mpsc::Sender<bool>>>> = Arc::new(Mutex::new(None));
        let slot = ack.clone();
        let sub = core
            .subscribe(max, wait, move |b| {
                let (tx, rx) = mpsc::channel::<bool>();
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
                let status = tsfn.call(
                    batch_text(b, renderer.as_ref()),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
                if status != Status::Ok {
                    return Err(format!("the callback could not be called: {status}"));
                }
                match rx.recv() {
                    Ok(true) => Ok(()),
                    _ => Err("the callback failed".into()),
                }
            })
            .js()?;
        Ok(NativeSubscription {
            inner: Arc::new(Mutex::new(Some(sub))),
            ack,
        })
    }
}

// ---------------------------------------------------------------- Subscription

/// A running subscription.
#[napi]
pub struct NativeSubscription {
    inner: Arc<Mutex<Option<CoreSubscription>>>,
    /// Where the JS side's answer to the batch in hand goes.
    ack: Arc<Mutex<Option<mpsc::Sender<bool>>>>,
}

#[napi]
impl NativeSubscription {
    /// Stop (`stop = true`) or wait for the end, off the event loop; rejects
    /// with what stopped it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn end(&self, env: Env, stop: bool) -> Result<JsObject> {
        let inner = self.inner.clone();
        promise(&env, async move {
            let sub = inner.lock().unwrap_or_else(|p| p.into_inner()).take();
            match sub {
                Some(s) => blocking(move || if stop { s.stop() } else { s.join() }).await,
                None => Ok(()),
            }
        })
    }

    /// The JS side's answer to the batch in hand: `true` commits and goes on.
    #[napi]
    pub fn ack(&self, ok: bool) {
        if let Some(tx) = self.ack.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(ok);
        }
    }

    /// True while the subscription's thread runs.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.is_running())
            .unwrap_or(false)
    }
}

/// Every error code of the core, in order.
/// The event id of the record at a position `{seq, sub}` (what S3 records
/// carry as `eventId`).
#[napi]
pub fn event_id(position: Value) -> Result<String> {
    match Start::from_json_value(&ints(position)).js()? {
        Start::Position(p) => Ok(EventId::new(p).to_string()),
        Start::Seq(s) => Ok(EventId::new(Position::new(s, 0)).to_string()),
        _ => Err(invalid("a position is {seq, sub}")),
    }
}

/// The position `{seq, sub}` of the record an event id names.
#[napi]
pub fn position_from_event_id(event_id: String) -> Result<Value> {
    EventId::parse(&event_id)
        .map(|id| position_json(id.position()))
        .js()
}

#[napi]
pub fn error_codes() -> Vec<String> {
    fsfeed::error::ERROR_CODES
        .iter()
        .map(|c| c.to_string())
        .collect()
}
