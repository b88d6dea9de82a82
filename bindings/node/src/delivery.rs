//! `Publisher` and `ChangeLog` from Node: push delivery (the
//! `fsfeed-delivery` crate) and the change log for backup (the
//! `fsfeed-changelog` crate). Thin, as in Python: configs, the publisher
//! loop, gates, retries, windows, the lease and fetch are the crates'; this
//! file runs them on a runtime of their own, off the event loop, and settles
//! Promises with the crates' error codes.

use std::future::Future;
use std::sync::Mutex;
use std::thread::JoinHandle;

use fsfeed::Ledger as CoreLedger;
use fsfeed_changelog::{fetch, uploader, Uploader};
use fsfeed_delivery::{Config, Gate, Report, RunOptions, Supervisor};
use napi::bindgen_prelude::{ClassInstance, ToNapiValue};
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, JsFunction, JsObject, Status};
use napi_derive::napi;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::{changelog_err, invalid, promise, Code, NativeLedger, OrJs, Result};

/// A delivery error as a JS error with the crate's code (`invalid_config`,
/// `publisher_failed`, `io`, or the ledger's own).
fn delivery_err(e: fsfeed_delivery::Error) -> napi::Error<Code> {
    match e {
        fsfeed_delivery::Error::Ledger(e) => crate::to_js(e),
        other => napi::Error::new(Code(other.code()), other.to_string()),
    }
}

/// The first failure of a run.
fn report(r: fsfeed_delivery::Result<Report>) -> Result<()> {
    let report = r.map_err(delivery_err)?;
    match report.outcomes.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(delivery_err(e)),
        None => Ok(()),
    }
}

/// The ledger a publisher or change log reads: the JS `Ledger`'s, or a path
/// opened read-only beside the writer.
fn ledger_of(
    ledger: Option<ClassInstance<NativeLedger>>,
    path: Option<String>,
) -> Result<Option<CoreLedger>> {
    match (ledger, path) {
        (Some(l), _) => Ok(Some(l.inner.clone())),
        (None, Some(p)) => CoreLedger::open_read_only(&p).js().map(Some),
        (None, None) => Ok(None),
    }
}

/// A Promise of `fut`, run to completion on a runtime of its own on
/// tokio's blocking pool (the crates' clients need a full runtime).
pub(crate) fn on_runtime<T, F>(env: &Env, fut: F) -> Result<JsObject>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    promise(env, async move {
        tokio::task::spawn_blocking(move || {
            let rt = fsfeed_delivery::runtime()
                .map_err(|e| napi::Error::new(Code("io"), format!("runtime: {e}")))?;
            rt.block_on(fut)
        })
        .await
        .map_err(|e| invalid(format!("worker failed: {e}")))?
    })
}

struct Running {
    stop: watch::Sender<bool>,
    thread: JoinHandle<fsfeed_delivery::Result<Report>>,
}

/// The publishers of a `fsfeed publish` config over one ledger (the JS
/// `Publisher` wraps it).
#[napi]
pub struct NativePublisher {
    ledger: CoreLedger,
    config: Config,
    /// The host's leader gate: a JS function answering on the event loop.
    leader: Option<ThreadsafeFunction<(), ErrorStrategy::Fatal>>,
    running: Mutex<Option<Running>>,
}

/// How long a publisher waits for the JS leader function's answer (the
/// event loop may be busy) before it counts as "not leading" this time.
const LEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl NativePublisher {
    fn supervisor(&self) -> Result<Supervisor> {
        let Some(leader) = &self.leader else {
            return Supervisor::from_config(self.ledger.clone(), &self.config)
                .map_err(delivery_err);
        };
        let mut sup = Supervisor::new(self.ledger.clone());
        for p in &self.config.publishers {
            let f = leader.clone();
            let gate = Gate::callback(move || {
                let (tx, rx) = std::sync::mpsc::channel::<bool>();
                let status = f.call_with_return_value(
                    (),
                    ThreadsafeFunctionCallMode::NonBlocking,
                    move |leads: bool| {
                        let _ = tx.send(leads);
                        Ok(())
                    },
                );
                status == Status::Ok && rx.recv_timeout(LEADER_WAIT).unwrap_or(false)
            });
            sup.add(p.clone(), gate).map_err(delivery_err)?;
        }
        Ok(sup)
    }
}

#[napi]
impl NativePublisher {
    /// Publishers from a TOML config text (`delivery/README.md` lists every
    /// key) over a ledger of this process or a path opened read-only.
    ///
    /// `leader`, a function returning a boolean (the JS side makes a throw or
    /// anything but `true` count as false), gates every publisher instead
    /// of the config's `gate` keys: they send only while it says true. It
    /// is called on the event loop and does not keep the process alive.
    #[napi(factory)]
    pub fn open(
        env: Env,
        config: String,
        ledger: Option<ClassInstance<NativeLedger>>,
        ledger_path: Option<String>,
        leader: Option<JsFunction>,
    ) -> Result<NativePublisher> {
        let config = Config::from_toml(&config).map_err(delivery_err)?;
        let ledger = ledger_of(ledger, ledger_path)?
            .ok_or_else(|| invalid("a Publisher needs a ledger (a Ledger or a path)"))?;
        let leader = match leader {
            None => None,
            Some(f) => {
                let mut tsfn: ThreadsafeFunction<(), ErrorStrategy::Fatal> = f
                    .create_threadsafe_function(0, |_: ThreadSafeCallContext<()>| {
                        Ok(Vec::<bool>::new())
                    })
                    .map_err(crate::from_napi)?;
                tsfn.unref(&env).map_err(crate::from_napi)?;
                Some(tsfn)
            }
        };
        Ok(NativePublisher {
            ledger,
            config,
            leader,
            running: Mutex::new(None),
        })
    }

    /// Run every publisher to the head; resolves when all are there, or
    /// rejects with the first failure (`publisher_failed` for a rejection).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn run_once(&self, env: Env) -> Result<JsObject> {
        let sup = self.supervisor()?;
        on_runtime(&env, async move {
            let (_tx, rx) = watch::channel(false);
            let opts = RunOptions {
                once: true,
                ..Default::default()
            };
            report(sup.run(rx, opts).await)
        })
    }

    /// Run every publisher on a thread of its own until `stop()`.
    #[napi]
    pub fn start(&self) -> Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            return Err(invalid("the publisher is already running"));
        }
        let sup = self.supervisor()?;
        let rt = fsfeed_delivery::runtime()
            .map_err(|e| napi::Error::new(Code("io"), format!("runtime: {e}")))?;
        let (stop, rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("fsfeed-publisher".into())
            .spawn(move || rt.block_on(sup.run(rx, RunOptions::default())))
            .map_err(|e| napi::Error::new(Code("io"), format!("thread: {e}")))?;
        *running = Some(Running { stop, thread });
        Ok(())
    }

    /// Finish the batches in flight, commit them and stop; rejects with
    /// what failed, if anything did. Resolves at once when not running.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop(&self, env: Env) -> Result<JsObject> {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        promise(&env, async move {
            let Some(r) = r else { return Ok(()) };
            let _ = r.stop.send(true);
            match tokio::task::spawn_blocking(move || r.thread.join()).await {
                Ok(Ok(result)) => report(result),
                _ => Err(napi::Error::new(
                    Code("io"),
                    "the publisher thread failed".to_string(),
                )),
            }
        })
    }

    /// True between `start()` and `stop()`.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Every publisher's status, as `fsfeed publish status --json` prints it.
    #[napi(ts_return_type = "unknown[]")]
    pub fn status(&self) -> Result<Value> {
        let all = fsfeed_delivery::status::read_all(&self.ledger).map_err(delivery_err)?;
        serde_json::to_value(all).map_err(|e| invalid(e.to_string()))
    }
}

impl Drop for NativePublisher {
    fn drop(&mut self) {
        if let Some(r) = self
            .running
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = r.stop.send(true);
        }
    }
}

/// A change log (`fsfeed changelog`): its config, and the ledger it uploads
/// (none: fetch only). The JS `ChangeLog` wraps it.
#[napi]
pub struct NativeChangeLog {
    config: fsfeed_changelog::Config,
    ledger: Option<CoreLedger>,
}

/// The ledger `call` needs, or the rejection saying it was not given.
fn ledger_for(ledger: Option<CoreLedger>, call: &str) -> Result<CoreLedger> {
    ledger.ok_or_else(|| {
        invalid(format!(
            "{call} needs a ledger: new ChangeLog(config, {{ ledger }})"
        ))
    })
}

#[napi]
impl NativeChangeLog {
    /// A change log from a TOML config: a path to a file, or the text itself
    /// (`changelog/README.md` lists every key).
    #[napi(factory)]
    pub fn open(
        config: String,
        ledger: Option<ClassInstance<NativeLedger>>,
        ledger_path: Option<String>,
    ) -> Result<NativeChangeLog> {
        let p = std::path::Path::new(&config);
        let config = if p.is_file() {
            fsfeed_changelog::Config::from_file(p)
        } else {
            fsfeed_changelog::Config::from_toml(&config)
        }
        .map_err(changelog_err)?;
        Ok(NativeChangeLog {
            config,
            ledger: ledger_of(ledger, ledger_path)?,
        })
    }

    /// Upload everything from the committed position to the head as it
    /// stood, in windows, then give the lease up; resolves to `{objects,
    /// events, not_leader}`.
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn run_once(&self, env: Env) -> Result<JsObject> {
        let ledger = self.ledger.clone();
        let cfg = self.config.clone();
        on_runtime(&env, async move {
            let ledger = ledger_for(ledger, "runOnce")?;
            let r = async { Uploader::new(ledger, cfg)?.run_once_and_release().await }
                .await
                .map_err(changelog_err)?;
            serde_json::to_value(r).map_err(|e| invalid(e.to_string()))
        })
    }

    /// Counters, committed seq, lag and the lease, as `fsfeed changelog
    /// status --json` prints them.
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn status(&self, env: Env) -> Result<JsObject> {
        let ledger = self.ledger.clone();
        let cfg = self.config.clone();
        on_runtime(&env, async move {
            let ledger = ledger_for(ledger, "status")?;
            uploader::status_report(&ledger, &cfg, true)
                .await
                .map_err(changelog_err)
        })
    }

    /// Every record with op time in `[start, end)` (RFC 3339), read back
    /// from the bucket; with `net` one net change per object.
    #[napi(ts_return_type = "Promise<unknown[]>")]
    pub fn fetch(
        &self,
        env: Env,
        start: String,
        end: String,
        net: Option<bool>,
    ) -> Result<JsObject> {
        let cfg = self.config.clone();
        on_runtime(&env, async move {
            let from = rfc3339(&start, "start")?;
            let to = rfc3339(&end, "end")?;
            let rows = fetch::rows(&cfg, from, to, net.unwrap_or(false))
                .await
                .map_err(changelog_err)?;
            serde_json::to_value(rows).map_err(|e| invalid(e.to_string()))
        })
    }

    /// The config's `[dest]` table without its keys.
    #[napi(getter, ts_return_type = "Record<string, unknown>")]
    pub fn dest(&self) -> Value {
        let d = &self.config.dest;
        json!({
            "endpoint": d.endpoint, "region": d.region, "bucket": d.bucket,
            "prefix": d.prefix, "path_style": d.path_style, "verify_tls": d.verify_tls,
        })
    }

    /// The `[dest]` keys, with `env:NAME` resolved, for a tool that reads
    /// the same store. Secrets: keep them out of logs.
    #[napi(ts_return_type = "{ access_key: string; secret_key: string }")]
    pub fn dest_keys(&self) -> Value {
        let d = &self.config.dest;
        json!({"access_key": d.access_key.expose(), "secret_key": d.secret_key.expose()})
    }
}

/// An RFC 3339 time as Unix µs.
fn rfc3339(s: &str, name: &str) -> Result<i64> {
    fsfeed::op::parse_time_us(s)
        .ok_or_else(|| invalid(format!("{name} {s:?} is not an RFC 3339 time with a zone")))
}
