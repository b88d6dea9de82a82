//! The lease: one uploader at a time, across processes and hosts.
//!
//! A control object, `PREFIX/_lease.json`, holds `{"holder", "epoch",
//! "expires_ms"}`. It is created with `If-None-Match: *` and renewed, or
//! taken over once expired, with `If-Match: ETAG`; a takeover bumps the
//! epoch. Before committing a window an uploader makes sure its epoch
//! holds: a renewal sent less than a third of the ttl ago proves it (no one
//! may take the lease over before its expiry, which that renewal set at
//! least a ttl later), else it renews, and if the object is no longer the
//! one it wrote (another holder, another epoch), it commits nothing. This
//! assumes the uploaders' clocks agree to well within the ttl. A clean exit
//! leaves the object with its expiry set to that moment, so the next
//! uploader takes over at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The control object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseDoc {
    /// Who holds it (`host:pid:random`).
    pub holder: String,
    /// Bumped by every takeover.
    pub epoch: u64,
    /// Unix milliseconds after which another uploader may take over.
    pub expires_ms: i64,
}

/// This uploader's side of the lease.
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    path: Path,
    me: String,
    ttl: Duration,
    held: Option<(u64, Option<String>)>,
    /// When the last write that holds the lease was sent.
    written: Option<Instant>,
    probed: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("path", &self.path)
            .field("me", &self.me)
            .field("held", &self.held)
            .finish()
    }
}

fn now_ms() -> i64 {
    fsfeed::op::now_us() / 1000
}

/// An identity for this process.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

impl Lease {
    /// The lease object under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, ttl: Duration) -> Lease {
        let path = if prefix.is_empty() {
            Path::from("_lease.json")
        } else {
            Path::from(format!("{prefix}/_lease.json"))
        };
        Lease {
            store,
            path,
            me: holder_id(),
            ttl,
            held: None,
            written: None,
            probed: false,
        }
    }

    /// Who this uploader is.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Does the epoch surely still hold, without asking the store? True
    /// when this uploader wrote the lease (taking or renewing it) less than
    /// a third of the ttl ago: its expiry is at least two thirds of the ttl
    /// away, and no one may take it over before.
    pub fn surely_held(&self) -> bool {
        self.held.is_some() && self.written.is_some_and(|t| t.elapsed() < self.ttl / 3)
    }

    /// The epoch held (`None`: not held).
    pub fn epoch(&self) -> Option<u64> {
        self.held.as_ref().map(|(e, _)| *e)
    }

    async fn put(&self, doc: &LeaseDoc, mode: PutMode) -> object_store::Result<Option<String>> {
        let body = Bytes::from(serde_json::to_vec(doc).expect("JSON"));
        let r = self
            .store
            .put_opts(&self.path, PutPayload::from(body), PutOptions::from(mode))
            .await?;
        Ok(r.e_tag)
    }

    /// The lease object as stored, with its ETag.
    pub async fn read(&self) -> Result<Option<(LeaseDoc, Option<String>)>> {
        match self.store.get(&self.path).await {
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Store(e.to_string())),
            Ok(g) => {
                let etag = g.meta.e_tag.clone();
                let bytes = g.bytes().await.map_err(|e| Error::Store(e.to_string()))?;
                let doc: LeaseDoc = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Corrupt(format!("{}: {e}", self.path)))?;
                Ok(Some((doc, etag)))
            }
        }
    }

    /// Take, renew or confirm the lease. `Ok(false)`: another uploader holds it.
    pub async fn acquire(&mut self) -> Result<bool> {
        let sent = Instant::now();
        let expires_ms = now_ms() + self.ttl.as_millis() as i64;
        match self.read().await? {
            None => {
                let doc = LeaseDoc {
                    holder: self.me.clone(),
                    epoch: 1,
                    expires_ms,
                };
                match self.put(&doc, PutMode::Create).await {
                    Ok(etag) => {
                        self.held = Some((1, etag));
                        self.written = Some(sent);
                        self.probe(&doc).await?;
                        Ok(true)
                    }
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        self.held = None;
                        Ok(false)
                    }
                    Err(e) => Err(Error::Store(e.to_string())),
                }
            }
            Some((doc, etag)) => {
                let mine = self.held.as_ref().is_some_and(|(e, _)| *e == doc.epoch)
                    && doc.holder == self.me;
                let epoch = if mine {
                    doc.epoch
                } else if doc.expires_ms <= now_ms() {
                    doc.epoch + 1
                } else {
                    self.held = None;
                    return Ok(false);
                };
                self.update(epoch, etag, expires_ms, sent).await
            }
        }
    }

    /// Write `epoch` with `expires_ms` (computed at `sent`) over the
    /// version `etag`: held on success, not held when someone else wrote
    /// the object since.
    async fn update(
        &mut self,
        epoch: u64,
        etag: Option<String>,
        expires_ms: i64,
        sent: Instant,
    ) -> Result<bool> {
        let doc = LeaseDoc {
            holder: self.me.clone(),
            epoch,
            expires_ms,
        };
        let mode = PutMode::Update(UpdateVersion {
            e_tag: etag,
            version: None,
        });
        match self.put(&doc, mode).await {
            Ok(etag) => {
                self.held = Some((epoch, etag));
                self.written = Some(sent);
                Ok(true)
            }
            Err(object_store::Error::Precondition { .. }) => {
                self.held = None;
                self.written = None;
                Ok(false)
            }
            Err(e) => Err(Error::Store(e.to_string())),
        }
    }

    /// Keep the epoch this uploader holds: one conditional PUT on the ETag
    /// it last wrote, which fails if anyone wrote the object since.
    /// `Ok(false)`: the epoch is gone (nothing may be committed under it).
    pub async fn renew(&mut self) -> Result<bool> {
        let Some((epoch, etag)) = self.held.clone() else {
            return Ok(false);
        };
        let etag = match etag {
            Some(e) => Some(e),
            // A store that gave no ETag: check the object is still ours first.
            None => match self.read().await? {
                Some((doc, etag)) if doc.holder == self.me && doc.epoch == epoch => etag,
                _ => {
                    self.held = None;
                    return Ok(false);
                }
            },
        };
        let sent = Instant::now();
        let expires_ms = now_ms() + self.ttl.as_millis() as i64;
        self.update(epoch, etag, expires_ms, sent).await
    }

    /// A store that ignores `If-None-Match` cannot hold a lease: a second
    /// create of the object just made must fail.
    async fn probe(&mut self, doc: &LeaseDoc) -> Result<()> {
        if self.probed {
            return Ok(());
        }
        self.probed = true;
        match self.put(doc, PutMode::Create).await {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Ok(etag) => {
                self.held = Some((doc.epoch, etag));
                Err(Error::Store(
                    "the S3 store does not honour conditional writes (If-None-Match): \
                     a lease cannot work there; set lease = \"none\" if one uploader is guaranteed otherwise"
                        .into(),
                ))
            }
            Err(e) => Err(Error::Store(e.to_string())),
        }
    }

    /// Give the lease up: its expiry becomes now (the object stays).
    pub async fn release(&mut self) -> Result<()> {
        let Some((epoch, etag)) = self.held.take() else {
            return Ok(());
        };
        // Someone else wrote it since: theirs stays, nothing to give up.
        self.update(epoch, etag, now_ms(), Instant::now()).await?;
        self.held = None;
        self.written = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// The lease's bookkeeping (when a commit may skip the store) against
    /// object_store's in-memory store, which honours conditional puts; the
    /// protocol against a real S3 server is in tests/changelog.
    #[tokio::test]
    async fn a_recent_write_proves_the_lease_and_a_stolen_one_is_found_at_renewal() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut a = Lease::new(store.clone(), "p", Duration::from_millis(300));
        assert!(!a.surely_held());
        assert!(a.acquire().await.unwrap());
        assert!(a.surely_held());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!a.surely_held(), "a third of the ttl passed: ask the store");
        assert!(a.renew().await.unwrap());
        assert!(a.surely_held());
        // Someone writes another epoch over it: the next renewal finds out.
        let stolen = LeaseDoc {
            holder: "elsewhere:1:1".into(),
            epoch: 9,
            expires_ms: now_ms() + 60_000,
        };
        a.put(&stolen, PutMode::Overwrite).await.unwrap();
        assert!(!a.renew().await.unwrap());
        assert!(!a.surely_held());
        assert_eq!(a.epoch(), None);
        // Not held: a second uploader waits for the expiry.
        let mut b = Lease::new(store, "p", Duration::from_millis(300));
        assert!(!b.acquire().await.unwrap());
        assert!(!b.surely_held());
    }
}
