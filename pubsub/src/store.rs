//! The service's own state, in a RocksDB of its own under `LEDGER/pubsub/`:
//! topics, notifications (with the seq range they were live in),
//! subscriptions (their acked watermark and the acks above it), what the
//! service learnt of buckets, and the tracker's position. Every write is
//! synced before the request that made it is answered, so a restart (or a
//! SIGKILL) loses nothing that was acknowledged to a client.
//!
//! Keys are `KIND \0 part \0 part ...`; values are JSON (small, rare
//! writes) except acks (empty values, the position in the key) and
//! watermarks (the position as 12 bytes).

use std::path::{Path, PathBuf};

use fsfeed::Position;
use rocksdb::{IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a push goes, as the request gave it (the password stays here and
/// in memory; it is printed as `***`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushArgs {
    /// `push-endpoint`.
    pub endpoint: String,
    /// `amqp-exchange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp_exchange: Option<String>,
    /// `amqp-ack-level` (`none` or `broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp_ack_level: Option<String>,
    /// `verify-ssl`.
    pub verify_ssl: bool,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// The owner's tenant (empty: none).
    pub tenant: String,
    /// The name.
    pub name: String,
    /// The owner's uid.
    pub user: String,
    /// The push endpoint S3 notifications on this topic use.
    pub push: Option<PushArgs>,
}

/// A notification: events of `bucket` into `topic`, live for the seqs
/// `from_seq..to_seq` (`to_seq` is set when it is deleted or its bucket is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The bucket.
    pub bucket: String,
    /// The topic's tenant.
    pub tenant: String,
    /// The topic.
    pub topic: String,
    /// Who made it.
    pub user: String,
    /// The S3 notification `Id` (`None`: a plain notification).
    pub s3_id: Option<String>,
    /// Event names as the request gave them (`s3:ObjectCreated:*`, `OBJECT_CREATE`).
    pub events: Vec<String>,
    /// The same as S3 name patterns (empty: every event).
    pub patterns: Vec<String>,
    /// `S3Key` prefix rule.
    pub prefix: Option<String>,
    /// `S3Key` suffix rule.
    pub suffix: Option<String>,
    /// The first seq it applies to.
    pub from_seq: u64,
    /// The first seq it no longer applies to.
    pub to_seq: Option<u64>,
}

impl Notification {
    /// Live now (not deleted, bucket not deleted)?
    pub fn live(&self) -> bool {
        self.to_seq.is_none()
    }

    /// Did it apply at `seq`?
    pub fn applies_at(&self, seq: u64) -> bool {
        seq >= self.from_seq && self.to_seq.is_none_or(|t| seq < t)
    }

    /// The plain notification of `tenant`'s `topic` on `bucket`?
    pub fn is_plain_of(&self, bucket: &str, tenant: &str, topic: &str) -> bool {
        self.s3_id.is_none()
            && self.bucket == bucket
            && self.tenant == tenant
            && self.topic == topic
    }

    /// Does an event named `name` (S3, without `s3:`) of `key` match it?
    pub fn matches(&self, name: &str, key: &str) -> bool {
        (self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|p| fsfeed::event_name::matches(p, name)))
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }

    fn key(&self) -> Vec<u8> {
        key(&[
            b"notif",
            self.bucket.as_bytes(),
            self.tenant.as_bytes(),
            self.topic.as_bytes(),
            format!("{:020}", self.from_seq).as_bytes(),
            self.s3_id.as_deref().unwrap_or("").as_bytes(),
        ])
    }
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The owner's tenant.
    pub tenant: String,
    /// The name.
    pub name: String,
    /// The owner's uid.
    pub user: String,
    /// The topic.
    pub topic: String,
    /// For a subscription made by an S3 notification: a copy of it (its
    /// filter, and its end when the bucket is deleted).
    pub s3: Option<Notification>,
    /// The bucket owner written in S3 records (`ownerIdentity`).
    #[serde(default)]
    pub bucket_owner: String,
    /// Push endpoint.
    pub push: Option<PushArgs>,
    /// The first seq it receives.
    pub start_seq: u64,
}

impl Subscription {
    fn key(&self) -> Vec<u8> {
        sub_key(&self.tenant, &self.name)
    }
}

/// What the service learnt of a bucket from its `bucket_create` op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The principal of the create op (empty: none given).
    pub owner: String,
    /// The create op's seq (the bucket's instance id).
    pub create_seq: u64,
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

fn sub_key(tenant: &str, name: &str) -> Vec<u8> {
    key(&[b"sub", tenant.as_bytes(), name.as_bytes()])
}

fn wm_key(tenant: &str, name: &str) -> Vec<u8> {
    key(&[b"wm", tenant.as_bytes(), name.as_bytes()])
}

fn ack_prefix(tenant: &str, name: &str) -> Vec<u8> {
    let mut k = key(&[b"ack", tenant.as_bytes(), name.as_bytes()]);
    k.push(0);
    k
}

fn ack_key(tenant: &str, name: &str, p: Position) -> Vec<u8> {
    let mut k = ack_prefix(tenant, name);
    k.extend_from_slice(&p.seq.to_be_bytes());
    k.extend_from_slice(&p.sub.to_be_bytes());
    k
}

fn pos_bytes(p: Position) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&p.seq.to_be_bytes());
    b[8..].copy_from_slice(&p.sub.to_be_bytes());
    b
}

fn pos_from(b: &[u8]) -> Option<Position> {
    if b.len() != 12 {
        return None;
    }
    Some(Position::new(
        u64::from_be_bytes(b[..8].try_into().ok()?),
        u32::from_be_bytes(b[8..].try_into().ok()?),
    ))
}

/// Everything the store holds, as loaded at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Topics.
    pub topics: Vec<Topic>,
    /// Notifications, live and past.
    pub notifications: Vec<Notification>,
    /// Subscriptions with their watermark and the acks above it.
    pub subscriptions: Vec<(Subscription, Position, Vec<Position>)>,
    /// Buckets by name.
    pub buckets: Vec<(String, Bucket)>,
    /// The tracker's next position.
    pub tracker: Option<Position>,
}

/// The state store.
pub struct Store {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

fn sync() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("state records serialise")
}

fn parse<T: DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T> {
    serde_json::from_slice(v)
        .map_err(|e| Error::Corrupt(format!("{}: {e}", String::from_utf8_lossy(k))))
}

/// One atomic, synced change.
#[derive(Default)]
pub struct Change {
    batch: WriteBatch,
}

impl Change {
    /// Put a topic.
    pub fn topic(&mut self, t: &Topic) -> &mut Self {
        self.batch.put(
            key(&[b"topic", t.tenant.as_bytes(), t.name.as_bytes()]),
            json(t),
        );
        self
    }
    /// Delete a topic.
    pub fn delete_topic(&mut self, tenant: &str, name: &str) -> &mut Self {
        self.batch
            .delete(key(&[b"topic", tenant.as_bytes(), name.as_bytes()]));
        self
    }
    /// Put a notification.
    pub fn notification(&mut self, n: &Notification) -> &mut Self {
        self.batch.put(n.key(), json(n));
        self
    }
    /// Put a subscription.
    pub fn subscription(&mut self, s: &Subscription) -> &mut Self {
        self.batch.put(s.key(), json(s));
        self
    }
    /// Delete a subscription with its watermark and acks.
    pub fn delete_subscription(&mut self, tenant: &str, name: &str) -> &mut Self {
        self.batch.delete(sub_key(tenant, name));
        self.batch.delete(wm_key(tenant, name));
        let from = ack_prefix(tenant, name);
        let mut to = from.clone();
        *to.last_mut().expect("prefix ends in a separator") = 1;
        self.batch.delete_range(from, to);
        self
    }
    /// Set a subscription's watermark.
    pub fn watermark(&mut self, tenant: &str, name: &str, p: Position) -> &mut Self {
        self.batch.put(wm_key(tenant, name), pos_bytes(p));
        self
    }
    /// Record an ack above the watermark.
    pub fn ack(&mut self, tenant: &str, name: &str, p: Position) -> &mut Self {
        self.batch.put(ack_key(tenant, name, p), b"");
        self
    }
    /// Forget an ack (the watermark passed it).
    pub fn unack(&mut self, tenant: &str, name: &str, p: Position) -> &mut Self {
        self.batch.delete(ack_key(tenant, name, p));
        self
    }
    /// Put a bucket.
    pub fn bucket(&mut self, name: &str, b: &Bucket) -> &mut Self {
        self.batch.put(key(&[b"bucket", name.as_bytes()]), json(b));
        self
    }
    /// Delete a bucket.
    pub fn delete_bucket(&mut self, name: &str) -> &mut Self {
        self.batch.delete(key(&[b"bucket", name.as_bytes()]));
        self
    }
    /// Set the tracker's position.
    pub fn tracker(&mut self, p: Position) -> &mut Self {
        self.batch.put(b"tracker", pos_bytes(p));
        self
    }
    /// Nothing to write?
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

impl Store {
    /// The state directory of a ledger.
    pub fn dir(ledger: &Path) -> PathBuf {
        ledger.join("pubsub")
    }

    /// Open (or create) the store of the ledger at `ledger`.
    pub fn open(ledger: &Path) -> Result<Store> {
        let path = Store::dir(ledger);
        let mut o = Options::default();
        o.create_if_missing(true);
        o.set_keep_log_file_num(4);
        let db = DB::open(&o, &path).map_err(|e| {
            Error::Io(format!(
                "cannot open {} (is another `fsfeed serve` running on this ledger?): {e}",
                path.display()
            ))
        })?;
        Ok(Store { db, path })
    }

    /// Apply a change, synced.
    pub fn apply(&self, c: Change) -> Result<()> {
        if c.is_empty() {
            return Ok(());
        }
        self.db.write_opt(c.batch, &sync())?;
        Ok(())
    }

    /// Apply a change of acks and watermarks: written to the WAL, not
    /// synced. It survives a crash of the service (the kernel has it); a
    /// crash of the machine may forget the last acks, and their events are
    /// then delivered again (at least once, never lost).
    pub fn apply_acks(&self, c: Change) -> Result<()> {
        if c.is_empty() {
            return Ok(());
        }
        self.db.write_opt(c.batch, &WriteOptions::default())?;
        Ok(())
    }

    /// Read everything.
    pub fn load(&self) -> Result<Loaded> {
        let mut out = Loaded::default();
        let mut subs: Vec<Subscription> = Vec::new();
        let mut wms: std::collections::HashMap<Vec<u8>, Position> = Default::default();
        let mut acks: std::collections::HashMap<Vec<u8>, Vec<Position>> = Default::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, v) = item?;
            let kind = k.split(|b| *b == 0).next().unwrap_or(&[]);
            match kind {
                b"topic" => out.topics.push(parse(&k, &v)?),
                b"notif" => out.notifications.push(parse(&k, &v)?),
                b"sub" => subs.push(parse(&k, &v)?),
                b"wm" if k.len() > 3 => {
                    let p = pos_from(&v).ok_or_else(|| Error::Corrupt("watermark".into()))?;
                    wms.insert(k[3..].to_vec(), p);
                }
                b"ack" if k.len() >= 4 + 1 + 12 => {
                    let n = k.len();
                    let p = pos_from(&k[n - 12..]).ok_or_else(|| Error::Corrupt("ack".into()))?;
                    // `ack \0 tenant \0 name \0` + 12 bytes: the owner part is `tenant \0 name`.
                    acks.entry(k[4..n - 13].to_vec()).or_default().push(p);
                }
                b"bucket" if k.len() > 7 => {
                    let name = String::from_utf8_lossy(&k[7..]).into_owned();
                    out.buckets.push((name, parse(&k, &v)?));
                }
                b"tracker" => out.tracker = pos_from(&v),
                _ => {
                    return Err(Error::Corrupt(format!(
                        "unknown key {}",
                        String::from_utf8_lossy(&k)
                    )))
                }
            }
        }
        for s in subs {
            let owner = key(&[s.tenant.as_bytes(), s.name.as_bytes()]);
            let wm = wms
                .get(&owner)
                .copied()
                .unwrap_or(Position::new(s.start_seq, 0));
            let mut a = acks.remove(&owner).unwrap_or_default();
            a.sort();
            out.subscriptions.push((s, wm, a));
        }
        Ok(out)
    }

    /// A copy of the state in `dir`/`pubsub` read from a store another
    /// process may hold open (RocksDB's read-only mode takes no lock): what
    /// `fsfeed checkpoint` adds to a ledger checkpoint.
    pub fn copy_to(ledger: &Path, dir: &Path) -> Result<bool> {
        let src = Store::dir(ledger);
        if !src.join("CURRENT").exists() {
            return Ok(false);
        }
        let src_db = DB::open_for_read_only(&Options::default(), &src, false)?;
        let mut o = Options::default();
        o.create_if_missing(true);
        o.set_error_if_exists(true);
        let dst = DB::open(&o, Store::dir(dir))?;
        let mut batch = WriteBatch::default();
        for item in src_db.iterator(IteratorMode::Start) {
            let (k, v) = item?;
            batch.put(k, v);
        }
        dst.write_opt(batch, &sync())?;
        dst.flush()?;
        Ok(true)
    }
}
