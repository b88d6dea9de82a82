//! Push subscriptions: each subscription with a `push-endpoint` (its own,
//! or its S3 notification's topic's) has a task that pulls from the
//! subscription's oldest unacked event, sends through the delivery crate's
//! transports (HTTP, AMQP 0.9.1, Kafka), and acks only what the endpoint
//! acknowledged under its ack level. A failed send is retried from the same
//! events, the first time within `push.retry_initial_ms` (at most a second),
//! then with doubling delays capped at `push.retry_max_ms`: nothing is
//! skipped while the endpoint is down.
//!
//! One message per event: `{"Records":[record]}` for an S3 notification's
//! subscription, `{"events":[event]}` for a plain one (what Ceph pushes).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fsfeed_delivery::transport::{Message, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::metrics::add;
use crate::service::{push_config, Service, SubHandle};

/// Run push tasks for every push subscription until `stop`; new and deleted
/// subscriptions are picked up within a second.
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<String, (JoinHandle<()>, Arc<SubHandle>)> = HashMap::new();
    loop {
        for h in svc.push_subscriptions() {
            let name = h.cursor_name().to_string();
            let stale = running
                .get(&name)
                .is_some_and(|(_, old)| !Arc::ptr_eq(old, &h));
            if stale {
                if let Some((t, _)) = running.remove(&name) {
                    t.abort();
                }
            }
            if let std::collections::hash_map::Entry::Vacant(e) = running.entry(name) {
                let t = tokio::spawn(push_one(svc.clone(), h.clone(), stop.clone()));
                e.insert((t, h));
            }
        }
        running.retain(|_, (t, h)| !(h.is_deleted() && t.is_finished()));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (t, _)) in running {
        let _ = t.await;
    }
}

fn wrap(s3: bool, event: &[u8]) -> Vec<u8> {
    let (head, tail): (&[u8], &[u8]) = if s3 {
        (b"{\"Records\":[", b"]}")
    } else {
        (b"{\"events\":[", b"]}")
    };
    let mut v = Vec::with_capacity(event.len() + 16);
    v.extend_from_slice(head);
    v.extend_from_slice(event);
    v.extend_from_slice(tail);
    v
}

async fn push_one(svc: Arc<Service>, h: Arc<SubHandle>, mut stop: watch::Receiver<bool>) {
    let meta = h.meta();
    let Some(args) = meta.push.clone() else {
        return;
    };
    let cfg = match push_config(h.cursor_name(), &meta.topic, &args) {
        Ok(c) => c,
        Err(e) => {
            warn!(subscription = %meta.name, "push endpoint refused: {}", e.message);
            return;
        }
    };
    let scrub = cfg.scrubber();
    let mut transport = match Transport::new(&cfg) {
        Ok(t) => t,
        Err(e) => {
            warn!(subscription = %meta.name, "{}", scrub.scrub(&e.to_string()));
            return;
        }
    };
    info!(subscription = %meta.name, endpoint = %cfg.endpoint, "pushing");
    let m = || svc.metrics();
    let batch = svc.config().push.batch;
    let (initial, max) = (svc.config().push.retry_initial, svc.config().push.retry_max);
    while !*stop.borrow() && !h.is_deleted() {
        let (s2, h2) = (svc.clone(), h.clone());
        let pulled =
            match tokio::task::spawn_blocking(move || s2.pull_handle(&h2, batch, None)).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    if !h.is_deleted() {
                        warn!(subscription = %meta.name, "pull for push failed: {e}");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
        if pulled.events.is_empty() {
            let (s2, head) = (svc.clone(), pulled.head);
            let _ =
                tokio::task::spawn_blocking(move || s2.wait_after(head, Duration::from_secs(1)))
                    .await;
            continue;
        }
        let n = pulled.events.len() as u64;
        let messages: Vec<Message> = pulled
            .events
            .iter()
            .zip(&pulled.ids)
            .zip(&pulled.keys)
            .map(|((e, id), (key, name))| Message {
                payload: wrap(pulled.s3, e),
                event_id: id.to_string(),
                last_event_id: id.to_string(),
                records: 1,
                seq: id.position().seq,
                key: Some(key.clone()),
                event_name: Some(name),
            })
            .collect();
        m().push_pending.fetch_add(n as i64, Ordering::Relaxed);
        let mut delay = initial;
        loop {
            let sent = tokio::select! {
                r = tokio::time::timeout(cfg.timeout, transport.send(&messages)) => r,
                _ = stop.changed() => {
                    m().push_pending.fetch_sub(n as i64, Ordering::Relaxed);
                    transport.close().await;
                    return;
                }
            };
            let err = match sent {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.message),
                Err(_) => Some("the send timed out".to_string()),
            };
            match err {
                None => {
                    m().push_pending.fetch_sub(n as i64, Ordering::Relaxed);
                    add(&m().push_ok, n);
                    let (s2, h2, ids) = (svc.clone(), h.clone(), pulled.ids.clone());
                    match tokio::task::spawn_blocking(move || s2.ack_handle(&h2, &ids)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            warn!(subscription = %meta.name, "ack after push failed: {e}")
                        }
                        Err(_) => return,
                    }
                    break;
                }
                Some(e) => {
                    add(&m().push_fail, n);
                    warn!(subscription = %meta.name, "push failed, retrying in {delay:?}: {}", scrub.scrub(&e));
                    let jitter = delay.mul_f64(fastrand::f64() * 0.2);
                    tokio::select! {
                        _ = tokio::time::sleep(delay.saturating_sub(jitter)) => {}
                        _ = stop.changed() => {
                            m().push_pending.fetch_sub(n as i64, Ordering::Relaxed);
                            transport.close().await;
                            return;
                        }
                    }
                    delay = (delay * 2).min(max);
                    if h.is_deleted() {
                        m().push_pending.fetch_sub(n as i64, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
    }
    transport.close().await;
}
