//! Push delivery for the fsfeed change ledger: publishers that send the
//! ledger's records to HTTP webhooks, AMQP 0.9.1 exchanges and Kafka
//! topics, at least once, in order per object, skipping nothing.
//!
//! A publisher is a named cursor that renders, frames, sends, and commits
//! only what the far side acknowledged (`publisher` module docs). It sends
//! only while its leader gate says it leads (`gate`). Its counters use
//! Ceph's PubSub names (`counters`); its status is what `fsfeed publish
//! status` shows (`status`). Secrets never reach a log, a status file or an
//! error (`secret`).
//!
//! The crate depends only on the core's public API. `fsfeed publish
//! --ledger DIR --config FILE` runs a [`Supervisor`] over a [`Config`]; a
//! host embeds one the same way, with its own gates:
//!
//! ```no_run
//! # async fn f() -> fsfeed_delivery::Result<()> {
//! use fsfeed_delivery::{Gate, PublisherConfig, RunOptions, Supervisor};
//! let ledger = fsfeed::Ledger::open_read_only("ledger")?;
//! let mut sup = Supervisor::new(ledger);
//! let mut cfg = PublisherConfig::new("audit", "http://127.0.0.1:8080/events")?;
//! cfg.batch_max = 500;
//! sup.add(cfg, Gate::callback(|| true))?;
//! let (_stop, stop_rx) = tokio::sync::watch::channel(false);
//! let report = sup.run(stop_rx, RunOptions::default()).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod counters;
pub mod error;
pub mod gate;
pub mod publisher;
pub mod secret;
pub mod status;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fsfeed::Ledger;
use tokio::sync::watch;
use tracing::{info, warn};

pub use config::{AmqpAckLevel, Config, GateKind, PublisherConfig};
pub use counters::{CounterValues, Metrics};
pub use error::{Error, FailKind, Result, SendError};
pub use gate::Gate;
pub use publisher::{Outcome, Publisher};
pub use secret::{Endpoint, Secret};
pub use status::{PublisherStatus, State};

/// How often a running supervisor rewrites its status files.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// How a supervisor runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Drain every publisher to the head, then return.
    pub once: bool,
    /// Serve Prometheus text on `http://ADDR/metrics`.
    pub metrics: Option<SocketAddr>,
}

/// How each publisher's run ended, in the supervisor's order.
#[derive(Debug)]
pub struct Report {
    /// Name and outcome of each publisher.
    pub outcomes: Vec<(String, Result<Outcome>)>,
}

impl Report {
    /// The first failure, if any.
    pub fn first_error(&self) -> Option<&Error> {
        self.outcomes.iter().find_map(|(_, r)| r.as_ref().err())
    }
}

/// Runs publishers over one ledger, writes their status, serves metrics.
#[derive(Debug)]
pub struct Supervisor {
    ledger: Ledger,
    publishers: Vec<Publisher>,
    metrics: Arc<Metrics>,
}

impl Supervisor {
    /// No publishers yet.
    pub fn new(ledger: Ledger) -> Supervisor {
        Supervisor {
            ledger,
            publishers: Vec::new(),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Every publisher of a config, with the gate its `gate` key names
    /// (`lock`: on `lock_file`, by default `LEDGER/publishers/NAME.lock`).
    pub fn from_config(ledger: Ledger, config: &Config) -> Result<Supervisor> {
        let mut s = Supervisor::new(ledger);
        for p in &config.publishers {
            let gate = match p.gate {
                GateKind::Always => Gate::Always,
                GateKind::Lock => Gate::lock(p.lock_file.clone().unwrap_or_else(|| {
                    status::dir(s.ledger.path()).join(format!("{}.lock", p.name))
                })),
            };
            s.add(p.clone(), gate)?;
        }
        Ok(s)
    }

    /// Add a publisher with its gate (a name already added is `invalid_config`).
    pub fn add(&mut self, cfg: PublisherConfig, gate: Gate) -> Result<()> {
        if self.publishers.iter().any(|p| p.name() == cfg.name) {
            return Err(config::name_twice(&cfg.name));
        }
        let counters = self.metrics.publisher(&cfg.name);
        self.publishers
            .push(Publisher::new(self.ledger.clone(), cfg, gate, counters)?);
        Ok(())
    }

    /// The counters of every publisher.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Run every publisher until `stop` turns true (each finishes the batch
    /// it is sending and commits it) or, with `once`, until each reached
    /// the head. A metrics address that cannot be bound fails before
    /// anything starts.
    pub async fn run(self, stop: watch::Receiver<bool>, opts: RunOptions) -> Result<Report> {
        if self.publishers.is_empty() {
            return Err(Error::Config("no publishers to run".into()));
        }
        let metrics_server = match opts.metrics {
            Some(addr) => Some(serve_metrics(addr, self.metrics.clone(), stop.clone()).await?),
            None => None,
        };
        let handles: Vec<_> = self.publishers.iter().map(|p| p.status_handle()).collect();
        let ledger_path = self.ledger.path().to_path_buf();
        let write_all = {
            let handles = handles.clone();
            let path = ledger_path.clone();
            move || {
                for h in &handles {
                    if let Err(e) = status::write(&path, &h.snapshot()) {
                        warn!(publisher = %h.name, error = %e, "cannot write status");
                    }
                }
            }
        };
        write_all();
        let (done_tx, mut done_rx) = watch::channel(false);
        let writer = {
            let write_all = write_all.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(STATUS_INTERVAL) => write_all(),
                        _ = done_rx.changed() => return,
                    }
                }
            })
        };
        let mut tasks = Vec::new();
        for p in self.publishers {
            let name = p.name().to_string();
            let stop = stop.clone();
            tasks.push((name, tokio::spawn(p.run(stop, opts.once))));
        }
        let mut outcomes = Vec::new();
        for (name, t) in tasks {
            let r = match t.await {
                Ok(r) => r,
                Err(e) => Err(Error::Publisher {
                    name: name.clone(),
                    message: format!("task ended: {e}"),
                }),
            };
            match &r {
                Ok(o) => info!(publisher = %name, outcome = ?o, "publisher ended"),
                Err(e) => warn!(publisher = %name, error = %e, "publisher ended"),
            }
            outcomes.push((name, r));
        }
        let _ = done_tx.send(true);
        let _ = writer.await;
        write_all();
        if let Some(s) = metrics_server {
            s.abort();
        }
        Ok(Report { outcomes })
    }

    /// [`Supervisor::run`] until SIGTERM or SIGINT (or, with `once`, the head).
    pub async fn run_until_signal(self, opts: RunOptions) -> Result<Report> {
        let rx = stop_on_signal("finishing the batches in flight")?;
        self.run(rx, opts).await
    }
}

/// The tokio runtime (two workers) every fsfeed command and binding call
/// that drives the async crates runs on: publish, serve, changelog.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// A stop flag that turns true on SIGTERM or SIGINT, logging the signal and
/// `doing` (what the process does before it exits). Call inside a tokio
/// runtime. What every long-running fsfeed command stops on.
pub fn stop_on_signal(doing: &'static str) -> Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Io(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Io(format!("cannot handle SIGINT: {e}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: {doing}"),
            _ = int.recv() => info!("SIGINT: {doing}"),
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io(format!("--metrics {addr}: {e}")))?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.prometheus_text(),
                )
            }
        }),
    );
    info!("metrics on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    }))
}
