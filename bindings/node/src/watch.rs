//! `watch()` from Node: a local tree as a source (the `fsfeed-watch`
//! crate). Thin, as in Python: events, ops, the diff and the limits are
//! the crate's; this file runs its blocking calls off the event loop and
//! settles Promises with the core's error codes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fsfeed::Ledger as CoreLedger;
use napi::bindgen_prelude::ClassInstance;
use napi::{Env, JsObject};
use napi_derive::napi;
use serde_json::Value;

use crate::{blocking, invalid, promise, to_js, NativeLedger, OrJs, Result};

/// A watcher of a local tree (the JS `Watch` wraps it): made stopped by
/// `open`, which checks the input; `start` lists, watches and diffs.
#[napi]
pub struct NativeWatch {
    root: std::path::PathBuf,
    ledger: CoreLedger,
    options: Mutex<Option<fsfeed_watch::Options>>,
    watch: Arc<Mutex<Option<fsfeed_watch::Watch>>>,
    stopper: Arc<Mutex<Option<fsfeed_watch::Stopper>>>,
    resolved: String,
    bucket: String,
}

fn seconds(v: f64, what: &str) -> Result<Duration> {
    fsfeed_watch::seconds(v, what).js()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn not_running() -> fsfeed::Error {
    fsfeed::Error::InvalidArgument("the watch is not running".into())
}

fn counters_value(c: &fsfeed_watch::Counters) -> Result<Value> {
    serde_json::to_value(c).map_err(|e| invalid(e.to_string()))
}

impl NativeWatch {
    fn stopper(&self) -> Option<fsfeed_watch::Stopper> {
        lock(&self.stopper).clone()
    }
}

#[napi]
impl NativeWatch {
    /// A watcher of `path` appending to `ledger` (checked, not started):
    /// `invalid_argument` for a root that is not a directory, a bad glob or
    /// bucket name.
    #[napi(factory)]
    pub fn open(
        path: String,
        ledger: ClassInstance<NativeLedger>,
        volume: Option<String>,
        bucket: Option<String>,
        ignore: Option<Vec<String>>,
        rescan_interval: Option<f64>,
    ) -> Result<NativeWatch> {
        let options = fsfeed_watch::Options {
            volume: volume.unwrap_or_default(),
            bucket,
            ignore: ignore.unwrap_or_default(),
            rescan_interval: match rescan_interval {
                Some(v) => seconds(v, "rescanInterval")?,
                None => fsfeed_watch::Options::default().rescan_interval,
            },
            ..Default::default()
        };
        let root = std::path::PathBuf::from(path);
        let (resolved, bucket) = fsfeed_watch::check(&root, &options).js()?;
        Ok(NativeWatch {
            root,
            ledger: ledger.inner.clone(),
            options: Mutex::new(Some(options)),
            watch: Arc::new(Mutex::new(None)),
            stopper: Arc::new(Mutex::new(None)),
            resolved: resolved.to_string_lossy().into_owned(),
            bucket,
        })
    }

    /// The watched directory, resolved.
    #[napi(getter)]
    pub fn root(&self) -> String {
        self.resolved.clone()
    }

    /// The bucket the ops go to.
    #[napi(getter)]
    pub fn bucket(&self) -> String {
        self.bucket.clone()
    }

    /// List, watch and diff the tree; resolves once the namespace at the
    /// head lists it. Once only.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start(&self, env: Env) -> Result<JsObject> {
        let options = lock(&self.options)
            .take()
            .ok_or_else(|| invalid("the watch was started already"))?;
        let (root, ledger) = (self.root.clone(), self.ledger.clone());
        let (slot, stopper) = (self.watch.clone(), self.stopper.clone());
        promise(&env, async move {
            blocking(move || {
                let w = fsfeed_watch::watch(&root, &ledger, options)?;
                // Apart from the watch, which a sync may hold: `counters`
                // and `stop` never wait for one.
                *lock(&stopper) = Some(w.stopper());
                *lock(&slot) = Some(w);
                Ok(())
            })
            .await
        })
    }

    /// Counters: events, ops, diff_ops, overflows, rescans, watches,
    /// watch_failures, unwatched, ignored, skipped, append_errors, last_seq.
    #[napi(ts_return_type = "Record<string, number | null>")]
    pub fn counters(&self) -> Result<Value> {
        let s = self.stopper().ok_or_else(|| to_js(not_running()))?;
        counters_value(&s.counters())
    }

    /// Resolves once everything done to the tree before the call is
    /// appended (Watchman's cookie); rejects with `io` after `timeout`
    /// seconds (60), or with the error that ended the watcher.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn sync(&self, env: Env, timeout: Option<f64>) -> Result<JsObject> {
        let t = seconds(timeout.unwrap_or(60.0), "timeout")?;
        let slot = self.watch.clone();
        promise(&env, async move {
            blocking(move || match lock(&slot).as_mut() {
                Some(w) => w.sync(t),
                None => Err(not_running()),
            })
            .await
        })
    }

    /// Stop watching (what was read is appended first); resolves with the
    /// counters, or rejects with the error that ended the watcher.
    #[napi(ts_return_type = "Promise<Record<string, number | null>>")]
    pub fn stop(&self, env: Env) -> Result<JsObject> {
        let stopper = self.stopper().ok_or_else(|| to_js(not_running()))?;
        // A sync in flight ends at once, and lets go of the watch.
        stopper.stop();
        let slot = self.watch.clone();
        promise(&env, async move {
            let c = blocking(move || {
                let w = lock(&slot)
                    .take()
                    .ok_or_else(|| fsfeed::Error::InvalidArgument("the watch is stopped".into()))?;
                w.stop()
            })
            .await?;
            counters_value(&c)
        })
    }
}

impl Drop for NativeWatch {
    fn drop(&mut self) {
        if let Some(s) = self.stopper() {
            s.stop();
        }
    }
}
