//! The pub/sub service: Ceph RGW's PubSub REST API over an fsfeed ledger,
//! for consumers in other processes, on other hosts, in other languages.
//!
//! `fsfeed serve --ledger DIR --config FILE [--listen ADDR]` runs it. It
//! opens the ledger read-only (the host keeps appending) and keeps its own
//! state (topics, notifications, subscriptions, acks) in a RocksDB under
//! `DIR/pubsub/`. Users sign requests with S3 signatures (v2 or v4); each
//! manages only its own topics and subscriptions, and creates
//! notifications only on buckets it owns. Events are pulled with a marker
//! and acked by event id, or pushed to HTTP, AMQP or Kafka endpoints through
//! the delivery crate's transports.
//!
//! The modules: `config` (the TOML file), `auth` (signatures), `service`
//! (the model, pull and ack; what a subscription receives), `store` (the
//! state store), `http` (routes and shapes), `xml`, `push`, `metrics`.
//! The user-facing contract is in `pubsub/README.md`.
//!
//! ```no_run
//! # async fn f() -> fsfeed_pubsub::Result<()> {
//! let ledger = fsfeed::Ledger::open_read_only("ledger")?;
//! let cfg = fsfeed_pubsub::Config::from_file("pubsub.toml")?;
//! let svc = std::sync::Arc::new(fsfeed_pubsub::Service::open(ledger, cfg)?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (_stop, stop_rx) = tokio::sync::watch::channel(false);
//! fsfeed_pubsub::serve(svc, listener, stop_rx).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod push;
pub mod service;
pub mod store;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

pub use config::Config;
pub use error::{ApiError, Error, Result};
pub use service::Service;

/// How often subscriptions' watermarks are committed to their ledger cursors.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long the tracker waits for new events before it looks again.
pub const TRACKER_WAIT: Duration = Duration::from_millis(500);
/// How often idle subscriptions drop expired events.
pub const EXPIRE_INTERVAL: Duration = Duration::from_secs(10);

/// Serve the API on `listener` until `stop` turns true: then stop
/// accepting, let requests in flight finish (up to 5 s), stop the push
/// tasks and commit every subscription's cursor.
pub async fn serve(
    svc: Arc<Service>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let push = tokio::spawn(push::run(svc.clone(), stop.clone()));
    // The tracker follows the ledger as events arrive (counters, bucket
    // owners, deleted buckets), so requests find it caught up.
    let tracker = {
        let svc = svc.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !*stop.borrow() {
                let s = svc.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let head = s.catch_up()?;
                    s.wait_after(head, TRACKER_WAIT)
                })
                .await;
                if let Ok(Err(e)) = r {
                    warn!("tracker: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    };
    let flusher = {
        let svc = svc.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut ticks = 0u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(FLUSH_INTERVAL) => {}
                    _ = stop.changed() => break,
                }
                ticks += 1;
                let s = svc.clone();
                let expire = ticks
                    .is_multiple_of((EXPIRE_INTERVAL.as_secs() / FLUSH_INTERVAL.as_secs()).max(1));
                let _ = tokio::task::spawn_blocking(move || {
                    if expire {
                        if let Err(e) = s.expire_idle() {
                            warn!("expiring events failed: {e}");
                        }
                    }
                    s.flush_cursors();
                })
                .await;
            }
        })
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let timeout = svc.config().server.request_timeout;
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let s = svc.clone();
        let service = hyper::service::service_fn(move |req| http::handle(s.clone(), req));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    let _ = push.await;
    let _ = flusher.await;
    let _ = tracker.await;
    let s = svc.clone();
    let _ = tokio::task::spawn_blocking(move || s.flush_cursors()).await;
    Ok(())
}
