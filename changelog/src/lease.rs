//! The lease: one uploader at a time, across processes and hosts.
//!
//! A control object, `PREFIX/_lease.json`, holds `{"holder", "epoch",
//! "expires_ms"}`. It is created with `If-None-Match: *` and renewed, or
//! taken over once expired, with `If-Match: ETAG`; a takeover bumps the
//! epoch. Before committing a window an uploader renews: if the object is no
//! longer the one it wrote (another holder, another epoch), it commits
//! nothing. A clean exit leaves the object with its expiry set to that
//! moment, so the next uploader takes over at once.

use std::sync::Arc;
use std::time::Duration;

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
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
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
            probed: false,
        }
    }

    /// Who this uploader is.
    pub fn me(&self) -> &str {
        &self.me
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
                self.update(epoch, etag, expires_ms).await
            }
        }
    }

    /// Write `epoch` with `expires_ms` over the version `etag`: held on
    /// success, not held when someone else wrote the object since.
    async fn update(&mut self, epoch: u64, etag: Option<String>, expires_ms: i64) -> Result<bool> {
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
                Ok(true)
            }
            Err(object_store::Error::Precondition { .. }) => {
                self.held = None;
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
        let expires_ms = now_ms() + self.ttl.as_millis() as i64;
        self.update(epoch, etag, expires_ms).await
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
        self.update(epoch, etag, now_ms()).await?;
        self.held = None;
        Ok(())
    }
}
