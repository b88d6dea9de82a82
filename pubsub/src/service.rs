//! The service's model and operations, independent of HTTP: topics,
//! notifications, subscriptions, pull and ack over the ledger.
//!
//! - **What a subscription receives.** A subscription made by an S3
//!   notification receives the events of that notification's bucket, event
//!   names and key rules, from the notification's creation on, until the
//!   bucket is deleted. A plain subscription receives, from its own creation
//!   on, the events that one of its topic's notifications applied to at the
//!   event's seq. Notifications are never forgotten: deleting one (or its
//!   bucket) ends its seq range, so events before that still reach the
//!   subscriptions they were for. Renames and recursive deletes arrive as
//!   per-object events.
//! - **Positions.** A subscription's *watermark* is the position before
//!   which everything is acked (or was never its to receive, or expired).
//!   Acks above it are kept in the store; the watermark moves over the
//!   contiguous acked prefix. A ledger cursor named after the subscription
//!   (`pubsub.NAME`, or `pubsub-TENANT.NAME`) is committed to the watermark
//!   within a second, so the ledger's retention guard (`keep_for_cursors`)
//!   keeps unacked events.
//! - **The tracker** reads every event once, in order: it learns bucket
//!   owners from `bucket_create` ops, ends notifications at `bucket_delete`,
//!   and counts `pubsub_event_triggered`, `pubsub_event_lost` and
//!   `pubsub_store_ok`. A pull or ack first brings it to the head, so the
//!   notification ranges it reads are final for every seq it looks at.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fsfeed::op::now_us;
use fsfeed::render::s3::{Profile, S3Options};
use fsfeed::{
    Cursor, CursorOptions, EventId, ExpandOptions, Filter, Format, Ledger, OnGap, Position, Record,
    Start,
};
use parking_lot::{Mutex, RwLock};
use tracing::warn;

use crate::config::{Config, User};
use crate::error::{ApiError, Error, Result};
use crate::metrics::{add, Metrics};
use crate::store::{Bucket, Change, Notification, PushArgs, Store, Subscription, Topic};

/// Most events one pull returns.
pub const MAX_ENTRIES: usize = 10_000;
/// Events a pull returns when `max-entries` is not given.
pub const DEFAULT_MAX_ENTRIES: usize = 100;

type Key = (String, String);
/// Per bucket: its owner (when known) and its create op's seq (0: unknown).
type BucketInfo = BTreeMap<String, (Option<String>, u64)>;

/// A subscription in memory.
pub struct SubHandle {
    meta: RwLock<Subscription>,
    state: Mutex<SubState>,
    deleted: AtomicBool,
    cursor_name: String,
}

impl std::fmt::Debug for SubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubHandle")
            .field("cursor", &self.cursor_name)
            .finish()
    }
}

struct SubState {
    wm: Position,
    acked: BTreeSet<Position>,
    cursor: Cursor,
    committed: Option<Position>,
    /// What the last pull from the watermark returned, in order: acks of a
    /// prefix of it move the watermark without reading the ledger (`None`
    /// after anything else moved the watermark).
    front: Option<Front>,
}

impl SubState {
    /// After the watermark moved from `before`: forget the acks it passed
    /// (out-of-order acks of records it skipped) and record the new one.
    fn settle(&mut self, before: Position, tenant: &str, name: &str, change: &mut Change) {
        let above = self.acked.split_off(&self.wm);
        for p in std::mem::replace(&mut self.acked, above) {
            change.unack(tenant, name, p);
        }
        if self.wm != before {
            change.watermark(tenant, name, self.wm);
        }
    }
}

/// The records a pull from the watermark returned, and where its scan
/// stopped: everything between them was not the subscription's, acked or
/// expired.
struct Front {
    records: std::collections::VecDeque<Position>,
    /// The first position the scan did not pass: the next matching record
    /// (a truncated pull) or the end of what it read.
    tail: Position,
}

impl SubHandle {
    /// A copy of the subscription's record.
    pub fn meta(&self) -> Subscription {
        self.meta.read().clone()
    }

    /// Deleted since it was looked up?
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// The ledger cursor that holds its position.
    pub fn cursor_name(&self) -> &str {
        &self.cursor_name
    }
}

#[derive(Default)]
struct Model {
    topics: BTreeMap<Key, Topic>,
    notifs: Vec<Notification>,
    subs: BTreeMap<Key, Arc<SubHandle>>,
    buckets: BTreeMap<String, Bucket>,
}

/// What a pull returns.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Each event rendered as JSON, in order.
    pub events: Vec<Vec<u8>>,
    /// Their event ids.
    pub ids: Vec<EventId>,
    /// The id of the last event returned (empty: none).
    pub next_marker: String,
    /// More matching events after these?
    pub is_truncated: bool,
    /// `Records` (S3 subscription) or `events` (plain).
    pub s3: bool,
    /// For push: `bucket/key` and the S3 name of each event.
    pub keys: Vec<(String, &'static str)>,
    /// The head seq the pull looked up to.
    pub head: u64,
}

/// A notification request, checked.
#[derive(Debug, Clone)]
pub struct NotificationSpec {
    /// `Id`.
    pub id: String,
    /// The topic's name (from its ARN).
    pub topic: String,
    /// `Event`s as given.
    pub events: Vec<String>,
    /// `S3Key` prefix.
    pub prefix: Option<String>,
    /// `S3Key` suffix.
    pub suffix: Option<String>,
}

/// End, at `seq`, every live notification `which` selects, recording each
/// in `change`; returns how many it ended. Ending, never removing: events
/// before `seq` still reach the subscriptions they were for.
fn end_notifications(
    notifs: &mut [Notification],
    seq: u64,
    change: &mut Change,
    which: impl Fn(&Notification) -> bool,
) -> Vec<Notification> {
    let mut ended = Vec::new();
    for n in notifs.iter_mut().filter(|n| n.live() && which(n)) {
        n.to_seq = Some(seq);
        change.notification(n);
        ended.push(n.clone());
    }
    ended
}

/// A topic or subscription name: 1 to 64 of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} name must be 1 to 64 of [A-Za-z0-9._-], not starting with `.`"
        )))
    }
}

/// The S3 name patterns of a plain notification's `events` (`OBJECT_CREATE`,
/// `OBJECT_DELETE`) or of an S3 notification's `Event`s.
pub fn patterns(events: &[String], plain: bool) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for e in events {
        let p = if plain {
            match e.as_str() {
                "OBJECT_CREATE" => "s3:ObjectCreated:*".to_string(),
                "OBJECT_DELETE" => "s3:ObjectRemoved:*".to_string(),
                other => {
                    return Err(ApiError::invalid(format!(
                        "unknown event type {other:?} (OBJECT_CREATE, OBJECT_DELETE)"
                    )))
                }
            }
        } else {
            let ok = e.starts_with("s3:")
                && fsfeed::event_name::STANDARD
                    .iter()
                    .any(|n| fsfeed::event_name::matches(e, n));
            if !ok {
                return Err(ApiError::invalid(format!(
                    "unknown event {e:?} (s3:ObjectCreated:*, s3:ObjectCreated:Put, s3:ObjectRemoved:*, ...)"
                )));
            }
            e.clone()
        };
        out.push(p);
    }
    Ok(out)
}

/// The ledger cursor of a subscription.
pub fn cursor_name(tenant: &str, name: &str) -> String {
    if tenant.is_empty() {
        format!("pubsub.{name}")
    } else {
        format!("pubsub-{tenant}.{name}")
    }
}

/// Check push arguments by building the push publisher's config they make.
pub fn push_config(
    name: &str,
    topic: &str,
    p: &PushArgs,
) -> Result<fsfeed_delivery::PublisherConfig, ApiError> {
    let bad = |e: fsfeed_delivery::Error| {
        let m = e.to_string();
        let m = m.strip_prefix("invalid config: ").unwrap_or(&m);
        let m = match m.strip_prefix("publisher ") {
            Some(rest) => rest.split_once(": ").map(|(_, r)| r).unwrap_or(rest),
            None => m,
        };
        ApiError::invalid(format!("push-endpoint: {m}"))
    };
    // Every other key at its default; the endpoint is set after, so that
    // the AMQP exchange can be set before the whole config is checked.
    let mut c = fsfeed_delivery::PublisherConfig::new(name, "http://127.0.0.1/").map_err(bad)?;
    c.endpoint = fsfeed_delivery::Endpoint::parse(&p.endpoint).map_err(bad)?;
    c.format = Format::S3(S3Options {
        profile: Profile::Ceph,
        ..S3Options::default()
    });
    c.framing = fsfeed::Framing::S3PerRecord;
    c.per_record = true;
    c.verify_tls = p.verify_ssl;
    c.amqp_exchange = p.amqp_exchange.clone().unwrap_or_default();
    c.amqp_routing_key = topic.to_string();
    c.kafka_topic = topic.to_string();
    c.amqp_ack_level = match p.amqp_ack_level.as_deref() {
        None | Some("broker") => fsfeed_delivery::AmqpAckLevel::Broker,
        Some("none") => fsfeed_delivery::AmqpAckLevel::None,
        Some(_) => return Err(ApiError::invalid("amqp-ack-level must be none or broker")),
    };
    if c.endpoint.scheme() != fsfeed_delivery::secret::Scheme::Amqp
        && (p.amqp_exchange.is_some() || p.amqp_ack_level.is_some())
    {
        return Err(ApiError::invalid(
            "amqp-exchange and amqp-ack-level apply to amqp endpoints only",
        ));
    }
    c.validate().map_err(bad)?;
    Ok(c)
}

/// `push_endpoint_args` as Ceph shows it: the push parameters as a query string.
pub fn push_endpoint_args(p: &PushArgs) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(x) = &p.amqp_exchange {
        s.append_pair("amqp-exchange", x);
    }
    if let Some(x) = &p.amqp_ack_level {
        s.append_pair("amqp-ack-level", x);
    }
    s.append_pair("verify-ssl", if p.verify_ssl { "true" } else { "false" });
    s.finish()
}

/// The endpoint as it may be shown: the password as `***`.
pub fn shown_endpoint(p: &PushArgs) -> String {
    match fsfeed_delivery::Endpoint::parse(&p.endpoint) {
        Ok(e) => e.to_string(),
        Err(_) => "***".into(),
    }
}

/// The pub/sub service over one ledger.
pub struct Service {
    cfg: Config,
    ledger: Ledger,
    store: Store,
    model: Mutex<Model>,
    tracker: Mutex<Cursor>,
    /// The highest head the tracker has reached.
    known_head: std::sync::atomic::AtomicU64,
    metrics: Metrics,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("ledger", &self.ledger.path())
            .finish_non_exhaustive()
    }
}

fn expand() -> ExpandOptions {
    ExpandOptions {
        renames: true,
        deletes: true,
    }
}

impl Service {
    /// Open the service's state for `ledger` (opened by the caller,
    /// read-only or not) and catch up with the ledger.
    pub fn open(ledger: Ledger, cfg: Config) -> Result<Service> {
        let store = Store::open(ledger.path())?;
        let loaded = store.load()?;
        let tracker_start = match loaded.tracker {
            Some(p) => Start::Position(p),
            None => Start::Earliest,
        };
        let tracker = ledger.cursor(
            None,
            CursorOptions {
                start: tracker_start,
                on_gap: OnGap::Report,
                expand: expand(),
                format: Format::S3(S3Options {
                    profile: Profile::Ceph,
                    extensions: true,
                    ..S3Options::default()
                }),
                ..CursorOptions::default()
            },
        )?;
        let svc = Service {
            cfg,
            ledger,
            store,
            model: Mutex::new(Model::default()),
            tracker: Mutex::new(tracker),
            known_head: std::sync::atomic::AtomicU64::new(0),
            metrics: Metrics::default(),
        };
        {
            let mut m = svc.model.lock();
            for t in loaded.topics {
                m.topics.insert((t.tenant.clone(), t.name.clone()), t);
            }
            m.notifs = loaded.notifications;
            m.buckets = loaded.buckets.into_iter().collect();
            for (s, wm, acked) in loaded.subscriptions {
                let h = svc.handle(s, wm, acked.into_iter().collect())?;
                let k = {
                    let meta = h.meta.read();
                    (meta.tenant.clone(), meta.name.clone())
                };
                m.subs.insert(k, h);
            }
        }
        svc.catch_up()?;
        Ok(svc)
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn renderer_format(&self, s: &Subscription) -> Format {
        Format::S3(S3Options {
            profile: Profile::Ceph,
            region: self.cfg.zone.zonegroup.clone(),
            configuration_id: s
                .s3
                .as_ref()
                .and_then(|n| n.s3_id.clone())
                .unwrap_or_default(),
            bucket_owner: s.bucket_owner.clone(),
            ..S3Options::default()
        })
    }

    fn handle(
        &self,
        s: Subscription,
        wm: Position,
        acked: BTreeSet<Position>,
    ) -> Result<Arc<SubHandle>> {
        let filter = match &s.s3 {
            Some(n) => Filter {
                buckets: vec![n.bucket.clone()],
                prefix: n.prefix.clone(),
                suffix: n.suffix.clone(),
                kinds: vec![],
                events: n.patterns.clone(),
            },
            None => Filter::all(),
        };
        let head = self.ledger.head_seq()?;
        let start = if wm.seq > head + 1 {
            Position::new(head + 1, 0)
        } else {
            wm
        };
        let cursor = self.ledger.cursor(
            None,
            CursorOptions {
                start: Start::Position(start),
                on_gap: OnGap::Report,
                filter,
                expand: expand(),
                format: self.renderer_format(&s),
                ..CursorOptions::default()
            },
        )?;
        let cursor_name = cursor_name(&s.tenant, &s.name);
        Ok(Arc::new(SubHandle {
            meta: RwLock::new(s),
            state: Mutex::new(SubState {
                wm,
                acked,
                cursor,
                committed: None,
                front: None,
            }),
            deleted: AtomicBool::new(false),
            cursor_name,
        }))
    }

    // ---- the tracker --------------------------------------------------------

    /// Bring the tracker to the head; returns the head it reached.
    pub fn catch_up(&self) -> Result<u64> {
        let mut t = self.tracker.lock();
        let head = self.ledger.head_seq()?;
        while t.position().seq <= head {
            let b = t.read(4096, Duration::ZERO)?;
            if b.records.is_empty() && b.gap.is_none() {
                break;
            }
            let mut change = Change::default();
            {
                let mut m = self.model.lock();
                for r in &b.records {
                    self.track(&mut m, r, &mut change);
                }
            }
            change.tracker(b.next);
            self.store.apply(change)?;
        }
        self.known_head.fetch_max(head, Ordering::SeqCst);
        Ok(head)
    }

    fn track(&self, m: &mut Model, r: &Record, change: &mut Change) {
        let Some(op) = &r.event.op else { return };
        let seq = r.position.seq;
        let kind = op.kind_name();
        if r.expansion.is_none() && kind == "bucket_create" {
            let b = Bucket {
                owner: op.principal.clone(),
                create_seq: seq,
            };
            change.bucket(&op.bucket, &b);
            m.buckets.insert(op.bucket.clone(), b);
            return;
        }
        if r.expansion.is_none() && kind == "bucket_delete" {
            m.buckets.remove(&op.bucket);
            change.delete_bucket(&op.bucket);
            end_notifications(&mut m.notifs, seq, change, |n| {
                n.bucket == op.bucket && n.from_seq <= seq
            });
            for h in m.subs.values() {
                let mut meta = h.meta.write();
                let s = &mut *meta;
                if let Some(n) = &mut s.s3 {
                    if n.bucket == op.bucket && n.live() && n.from_seq <= seq {
                        n.to_seq = Some(seq);
                        change.subscription(s);
                    }
                }
            }
            return;
        }
        let name = fsfeed::event_name::of_record(r);
        if !fsfeed::event_name::standard(name) {
            return;
        }
        let bucket = r.bucket();
        let key = r.object_key();
        let matching: Vec<&Notification> = m
            .notifs
            .iter()
            .filter(|n| n.bucket == bucket && n.applies_at(seq) && n.matches(name, key))
            .collect();
        let mut receivers = 0u64;
        for h in m.subs.values() {
            let s = h.meta.read();
            if seq < s.start_seq {
                continue;
            }
            let gets = match &s.s3 {
                Some(n) => n.bucket == bucket && n.applies_at(seq) && n.matches(name, key),
                None => matching
                    .iter()
                    .any(|n| n.s3_id.is_none() && n.tenant == s.tenant && n.topic == s.topic),
            };
            receivers += gets as u64;
        }
        if matching.is_empty() {
            return;
        }
        add(&self.metrics.event_triggered, 1);
        if receivers == 0 {
            add(&self.metrics.event_lost, 1);
        } else {
            add(&self.metrics.store_ok, receivers);
        }
    }

    // ---- users, buckets ------------------------------------------------------

    /// The user with this access key.
    pub fn user(&self, access_key: &str) -> Option<&User> {
        self.cfg.user_by_key(access_key)
    }

    fn bucket_owner(&self, m: &Model, bucket: &str) -> Option<String> {
        if let Some(o) = self.cfg.buckets.get(bucket) {
            return Some(o.clone());
        }
        m.buckets.get(bucket).map(|b| b.owner.clone())
    }

    fn check_bucket(&self, m: &Model, user: &User, bucket: &str) -> Result<String, ApiError> {
        match self.bucket_owner(m, bucket) {
            None => Err(ApiError::no_such_bucket(bucket)),
            Some(o) if o == user.owner_id() => Ok(o),
            Some(_) => Err(ApiError::access_denied(format!(
                "bucket {bucket:?} is not yours"
            ))),
        }
    }

    // ---- topics ---------------------------------------------------------------

    /// A topic's ARN.
    pub fn arn(&self, t: &Topic) -> String {
        format!(
            "arn:aws:sns:{}:{}:{}",
            self.cfg.zone.zonegroup, t.tenant, t.name
        )
    }

    /// The topic name an ARN names for `user` (403 for another tenant's ARN,
    /// 400 for something that is no topic ARN of this zonegroup).
    pub fn topic_of_arn(&self, user: &User, arn: &str) -> Result<String, ApiError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
            return Err(ApiError::invalid("Topic is not an SNS topic ARN"));
        }
        if parts[3] != self.cfg.zone.zonegroup {
            return Err(ApiError::invalid(format!(
                "topic ARN names zonegroup {:?}, this is {:?}",
                parts[3], self.cfg.zone.zonegroup
            )));
        }
        if parts[4] != user.tenant {
            return Err(ApiError::access_denied(
                "the topic belongs to another tenant",
            ));
        }
        check_name("topic", parts[5])?;
        Ok(parts[5].to_string())
    }

    fn own_topic<'m>(&self, m: &'m Model, user: &User, name: &str) -> Result<&'m Topic, ApiError> {
        match m.topics.get(&(user.tenant.clone(), name.to_string())) {
            None => Err(ApiError::no_such("topic", name)),
            Some(t) if t.user == user.uid => Ok(t),
            Some(_) => Err(ApiError::access_denied(format!(
                "topic {name:?} belongs to another user"
            ))),
        }
    }

    /// Create or update a topic.
    pub fn put_topic(&self, user: &User, name: &str, push: Option<PushArgs>) -> Result<Topic> {
        check_name("topic", name)?;
        if let Some(p) = &push {
            push_config(&cursor_name(&user.tenant, name), name, p)?;
        }
        let mut m = self.model.lock();
        let k = (user.tenant.clone(), name.to_string());
        if let Some(t) = m.topics.get(&k) {
            if t.user != user.uid {
                return Err(ApiError::access_denied(format!(
                    "topic {name:?} belongs to another user"
                ))
                .into());
            }
        }
        let t = Topic {
            tenant: user.tenant.clone(),
            name: name.to_string(),
            user: user.uid.clone(),
            push,
        };
        let mut c = Change::default();
        c.topic(&t);
        self.store.apply(c)?;
        m.topics.insert(k, t.clone());
        Ok(t)
    }

    /// A topic and the names of its subscriptions.
    pub fn get_topic(&self, user: &User, name: &str) -> Result<(Topic, Vec<String>)> {
        check_name("topic", name)?;
        let m = self.model.lock();
        let t = self.own_topic(&m, user, name)?.clone();
        let subs = m
            .subs
            .values()
            .filter_map(|h| {
                let s = h.meta.read();
                (s.tenant == t.tenant && s.topic == t.name).then(|| s.name.clone())
            })
            .collect();
        Ok((t, subs))
    }

    /// The caller's topics.
    pub fn list_topics(&self, user: &User) -> Vec<Topic> {
        let m = self.model.lock();
        m.topics
            .values()
            .filter(|t| t.tenant == user.tenant && t.user == user.uid)
            .cloned()
            .collect()
    }

    /// Delete a topic; its plain notifications end now.
    pub fn delete_topic(&self, user: &User, name: &str) -> Result<()> {
        check_name("topic", name)?;
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        self.own_topic(&m, user, name)?;
        let mut c = Change::default();
        c.delete_topic(&user.tenant, name);
        let mut notifs = m.notifs.clone();
        end_notifications(&mut notifs, head + 1, &mut c, |n| {
            n.s3_id.is_none() && n.tenant == user.tenant && n.topic == name
        });
        self.store.apply(c)?;
        m.notifs = notifs;
        m.topics.remove(&(user.tenant.clone(), name.to_string()));
        Ok(())
    }

    // ---- notifications ----------------------------------------------------------

    /// The live S3 notifications of a bucket (one, by `Id`).
    pub fn get_s3_notifications(
        &self,
        user: &User,
        bucket: &str,
        id: Option<&str>,
    ) -> Result<Vec<Notification>> {
        self.catch_up()?;
        let m = self.model.lock();
        self.check_bucket(&m, user, bucket)?;
        let out: Vec<Notification> = m
            .notifs
            .iter()
            .filter(|n| {
                n.bucket == bucket
                    && n.live()
                    && n.s3_id.is_some()
                    && id.is_none_or(|i| n.s3_id.as_deref() == Some(i))
            })
            .cloned()
            .collect();
        if let (Some(i), true) = (id, out.is_empty()) {
            return Err(ApiError::no_such("notification", i).into());
        }
        Ok(out)
    }

    /// Create (or replace, by `Id`) S3 notifications on a bucket, each with
    /// its subscription. All or nothing.
    pub fn put_s3_notifications(
        &self,
        user: &User,
        bucket: &str,
        specs: Vec<NotificationSpec>,
    ) -> Result<()> {
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        let owner = self.check_bucket(&m, user, bucket)?;
        let mut c = Change::default();
        let mut new_notifs = m.notifs.clone();
        let mut new_subs: Vec<Subscription> = Vec::new();
        let mut replaced: Vec<Key> = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            check_name("notification Id", &s.id)?;
            if specs[..i].iter().any(|o| o.id == s.id) {
                return Err(ApiError::invalid(format!("Id {:?} appears twice", s.id)).into());
            }
            let topic = self.own_topic(&m, user, &s.topic)?;
            let k = (user.tenant.clone(), s.id.clone());
            if let Some(h) = m.subs.get(&k) {
                let meta = h.meta.read();
                let same = meta
                    .s3
                    .as_ref()
                    .is_some_and(|n| n.bucket == bucket && n.live());
                if meta.user != user.uid {
                    return Err(ApiError::access_denied(format!(
                        "subscription {:?} belongs to another user",
                        s.id
                    ))
                    .into());
                }
                if !same {
                    return Err(ApiError::invalid(format!(
                        "a subscription named {:?} exists already",
                        s.id
                    ))
                    .into());
                }
                replaced.push(k.clone());
            }
            end_notifications(&mut new_notifs, head + 1, &mut c, |n| {
                n.bucket == bucket && n.s3_id.as_deref() == Some(&s.id)
            });
            let n = Notification {
                bucket: bucket.to_string(),
                tenant: user.tenant.clone(),
                topic: s.topic.clone(),
                user: user.uid.clone(),
                s3_id: Some(s.id.clone()),
                events: s.events.clone(),
                patterns: patterns(&s.events, false)?,
                prefix: s.prefix.clone(),
                suffix: s.suffix.clone(),
                from_seq: head + 1,
                to_seq: None,
            };
            c.notification(&n);
            new_notifs.push(n.clone());
            let sub = Subscription {
                tenant: user.tenant.clone(),
                name: s.id.clone(),
                user: user.uid.clone(),
                topic: s.topic.clone(),
                s3: Some(n),
                bucket_owner: owner.clone(),
                push: topic.push.clone(),
                start_seq: head + 1,
            };
            for k in &replaced {
                c.delete_subscription(&k.0, &k.1);
            }
            c.subscription(&sub);
            c.watermark(&sub.tenant, &sub.name, Position::new(head + 1, 0));
            new_subs.push(sub);
        }
        let mut handles = Vec::new();
        for s in &new_subs {
            handles.push(self.handle(s.clone(), Position::new(head + 1, 0), BTreeSet::new())?);
        }
        self.store.apply(c)?;
        m.notifs = new_notifs;
        for k in replaced {
            if let Some(h) = m.subs.remove(&k) {
                h.deleted.store(true, Ordering::SeqCst);
            }
        }
        for h in handles {
            let k = {
                let s = h.meta.read();
                (s.tenant.clone(), s.name.clone())
            };
            let _ = self
                .ledger
                .commit(&h.cursor_name, Position::new(head + 1, 0));
            m.subs.insert(k, h);
        }
        Ok(())
    }

    /// Delete one S3 notification of a bucket (or all), with their subscriptions.
    pub fn delete_s3_notifications(
        &self,
        user: &User,
        bucket: &str,
        id: Option<&str>,
    ) -> Result<()> {
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        self.check_bucket(&m, user, bucket)?;
        let mut c = Change::default();
        let mut notifs = m.notifs.clone();
        let gone: Vec<Key> = end_notifications(&mut notifs, head + 1, &mut c, |n| {
            n.bucket == bucket
                && n.s3_id.is_some()
                && id.is_none_or(|i| n.s3_id.as_deref() == Some(i))
        })
        .into_iter()
        .map(|n| (n.tenant, n.s3_id.unwrap_or_default()))
        .collect();
        if let (Some(i), true) = (id, gone.is_empty()) {
            return Err(ApiError::no_such("notification", i).into());
        }
        for k in &gone {
            c.delete_subscription(&k.0, &k.1);
        }
        self.store.apply(c)?;
        m.notifs = notifs;
        for k in gone {
            if let Some(h) = m.subs.remove(&k) {
                h.deleted.store(true, Ordering::SeqCst);
                let _ = self.ledger.delete_cursor(&h.cursor_name);
            }
        }
        Ok(())
    }

    /// Create or update the plain notification of `topic` on `bucket`.
    pub fn put_notification(
        &self,
        user: &User,
        bucket: &str,
        topic: &str,
        events: Vec<String>,
    ) -> Result<()> {
        check_name("topic", topic)?;
        let pats = patterns(&events, true)?;
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        self.check_bucket(&m, user, bucket)?;
        self.own_topic(&m, user, topic)?;
        let mut c = Change::default();
        let mut notifs = m.notifs.clone();
        end_notifications(&mut notifs, head + 1, &mut c, |n| {
            n.is_plain_of(bucket, &user.tenant, topic)
        });
        let n = Notification {
            bucket: bucket.to_string(),
            tenant: user.tenant.clone(),
            topic: topic.to_string(),
            user: user.uid.clone(),
            s3_id: None,
            events,
            patterns: pats,
            prefix: None,
            suffix: None,
            from_seq: head + 1,
            to_seq: None,
        };
        c.notification(&n);
        notifs.push(n);
        self.store.apply(c)?;
        m.notifs = notifs;
        Ok(())
    }

    /// End the plain notification of `topic` on `bucket`.
    pub fn delete_notification(&self, user: &User, bucket: &str, topic: &str) -> Result<()> {
        check_name("topic", topic)?;
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        self.check_bucket(&m, user, bucket)?;
        let mut c = Change::default();
        let mut notifs = m.notifs.clone();
        let ended = end_notifications(&mut notifs, head + 1, &mut c, |n| {
            n.is_plain_of(bucket, &user.tenant, topic)
        });
        if ended.is_empty() {
            return Err(ApiError::no_such("notification", topic).into());
        }
        self.store.apply(c)?;
        m.notifs = notifs;
        Ok(())
    }

    /// The live plain notifications of a bucket with their topics.
    pub fn list_notifications(
        &self,
        user: &User,
        bucket: &str,
    ) -> Result<Vec<(Topic, Notification)>> {
        self.catch_up()?;
        let m = self.model.lock();
        self.check_bucket(&m, user, bucket)?;
        Ok(m.notifs
            .iter()
            .filter(|n| n.bucket == bucket && n.live() && n.s3_id.is_none())
            .filter_map(|n| {
                m.topics
                    .get(&(n.tenant.clone(), n.topic.clone()))
                    .map(|t| (t.clone(), n.clone()))
            })
            .collect())
    }

    // ---- subscriptions -----------------------------------------------------------

    fn own_sub(&self, user: &User, name: &str) -> Result<Arc<SubHandle>, ApiError> {
        check_name("subscription", name)?;
        let m = self.model.lock();
        match m.subs.get(&(user.tenant.clone(), name.to_string())) {
            None => Err(ApiError::no_such("subscription", name)),
            Some(h) if h.meta.read().user == user.uid => Ok(h.clone()),
            Some(_) => Err(ApiError::access_denied(format!(
                "subscription {name:?} belongs to another user"
            ))),
        }
    }

    /// Create a plain subscription to a topic (again: the same answer).
    pub fn put_subscription(
        &self,
        user: &User,
        name: &str,
        topic: &str,
        push: Option<PushArgs>,
    ) -> Result<Subscription> {
        check_name("subscription", name)?;
        check_name("topic", topic)?;
        let cname = cursor_name(&user.tenant, name);
        if let Some(p) = &push {
            push_config(&cname, topic, p)?;
        }
        let head = self.catch_up()?;
        let mut m = self.model.lock();
        self.own_topic(&m, user, topic)?;
        let k = (user.tenant.clone(), name.to_string());
        if let Some(h) = m.subs.get(&k) {
            let s = h.meta.read();
            if s.user != user.uid {
                return Err(ApiError::access_denied(format!(
                    "subscription {name:?} belongs to another user"
                ))
                .into());
            }
            if s.topic == topic && s.s3.is_none() && s.push == push {
                return Ok(s.clone());
            }
            return Err(ApiError::invalid(format!(
                "subscription {name:?} exists with other settings: delete it first"
            ))
            .into());
        }
        let s = Subscription {
            tenant: user.tenant.clone(),
            name: name.to_string(),
            user: user.uid.clone(),
            topic: topic.to_string(),
            s3: None,
            bucket_owner: String::new(),
            push,
            start_seq: head + 1,
        };
        let h = self.handle(s.clone(), Position::new(head + 1, 0), BTreeSet::new())?;
        let mut c = Change::default();
        c.subscription(&s);
        c.watermark(&s.tenant, &s.name, Position::new(head + 1, 0));
        self.store.apply(c)?;
        let _ = self.ledger.commit(&cname, Position::new(head + 1, 0));
        m.subs.insert(k, h);
        Ok(s)
    }

    /// A subscription.
    pub fn get_subscription(&self, user: &User, name: &str) -> Result<Subscription> {
        Ok(self.own_sub(user, name)?.meta())
    }

    /// Delete a subscription (and its ledger cursor).
    pub fn delete_subscription(&self, user: &User, name: &str) -> Result<()> {
        let h = self.own_sub(user, name)?;
        let mut m = self.model.lock();
        let mut c = Change::default();
        c.delete_subscription(&user.tenant, name);
        self.store.apply(c)?;
        m.subs.remove(&(user.tenant.clone(), name.to_string()));
        h.deleted.store(true, Ordering::SeqCst);
        drop(m);
        let _st = h.state.lock();
        if let Err(e) = self.ledger.delete_cursor(&h.cursor_name) {
            warn!(cursor = %h.cursor_name, "could not delete the ledger cursor: {e}");
        }
        Ok(())
    }

    /// Every subscription with a push endpoint.
    pub fn push_subscriptions(&self) -> Vec<Arc<SubHandle>> {
        let m = self.model.lock();
        m.subs
            .values()
            .filter(|h| h.meta.read().push.is_some())
            .cloned()
            .collect()
    }

    // ---- pull and ack ----------------------------------------------------------------

    /// The notifications a plain subscription's events come through.
    fn topic_notifs(&self, s: &Subscription) -> (Vec<Notification>, BucketInfo) {
        let m = self.model.lock();
        let notifs: Vec<Notification> = if s.s3.is_some() {
            Vec::new()
        } else {
            m.notifs
                .iter()
                .filter(|n| n.s3_id.is_none() && n.tenant == s.tenant && n.topic == s.topic)
                .cloned()
                .collect()
        };
        let mut buckets = BTreeMap::new();
        for n in notifs.iter().chain(s.s3.iter()) {
            let owner = self.bucket_owner(&m, &n.bucket);
            let seq = m.buckets.get(&n.bucket).map(|b| b.create_seq).unwrap_or(0);
            buckets.insert(n.bucket.clone(), (owner, seq));
        }
        (notifs, buckets)
    }

    fn matches(s: &Subscription, notifs: &[Notification], r: &Record) -> bool {
        let seq = r.position.seq;
        if seq < s.start_seq {
            return false;
        }
        let name = fsfeed::event_name::of_record(r);
        match &s.s3 {
            Some(n) => {
                n.bucket == r.bucket() && n.applies_at(seq) && n.matches(name, r.object_key())
            }
            None => notifs.iter().any(|n| {
                n.bucket == r.bucket() && n.applies_at(seq) && n.matches(name, r.object_key())
            }),
        }
    }

    fn expired(&self, r: &Record, now: i64) -> bool {
        let keep = self.cfg.zone.events_retention_days as i64 * 86_400_000_000;
        r.event
            .op
            .as_ref()
            .is_some_and(|o| o.time_us < now.saturating_sub(keep))
    }

    /// Move the watermark over acked, expired and not-for-us records at its
    /// front; writes `change` (with the watermark when it moved).
    fn advance(
        &self,
        h: &SubHandle,
        st: &mut SubState,
        s: &Subscription,
        notifs: &[Notification],
        head: u64,
        mut change: Change,
    ) -> Result<()> {
        let before = st.wm;
        let now = now_us();
        st.cursor.seek(Start::Position(st.wm))?;
        let mut n = 2usize;
        'outer: loop {
            let b = st.cursor.read(n, Duration::ZERO)?;
            n = (n * 2).min(1000);
            if let Some(g) = b.gap {
                let lost = g.actual.saturating_sub(g.expected);
                add(&self.metrics.store_fail, lost);
                warn!(subscription = %h.cursor_name, lost, "retention dropped unacked events");
            }
            if b.records.is_empty() {
                st.wm = st.wm.max(b.next);
                break;
            }
            for r in &b.records {
                if r.position.seq > head {
                    st.wm = r.position;
                    break 'outer;
                }
                if st.acked.remove(&r.position) {
                    change.unack(&s.tenant, &s.name, r.position);
                } else if !Self::matches(s, notifs, r) {
                } else if self.expired(r, now) {
                    add(&self.metrics.event_expired, 1);
                } else {
                    st.wm = r.position;
                    break 'outer;
                }
            }
            st.wm = b.next;
        }
        st.settle(before, &s.tenant, &s.name, &mut change);
        st.front = None;
        self.store.apply_acks(change)
    }

    /// Pull up to `max` events after `marker` (default: from the oldest unacked).
    pub fn pull(
        &self,
        user: &User,
        name: &str,
        max: usize,
        marker: Option<&str>,
    ) -> Result<Pulled> {
        let h = self.own_sub(user, name)?;
        let marker = match marker {
            Some(m) => Some(
                EventId::parse(m)
                    .map_err(|_| ApiError::invalid(format!("marker {m:?} is no event id")))?,
            ),
            None => None,
        };
        self.pull_handle(&h, max, marker)
    }

    /// Pull from a subscription handle (the push loop's read).
    pub fn pull_handle(
        &self,
        h: &SubHandle,
        max: usize,
        marker: Option<EventId>,
    ) -> Result<Pulled> {
        if !(1..=MAX_ENTRIES).contains(&max) {
            return Err(
                ApiError::invalid(format!("max-entries must be 1 to {MAX_ENTRIES}")).into(),
            );
        }
        let head = self.catch_up()?;
        if let Some(m) = marker {
            if m.position().seq > head {
                return Err(ApiError::invalid("marker is past the last event").into());
            }
        }
        let s = h.meta();
        let (notifs, buckets) = self.topic_notifs(&s);
        let mut st = h.state.lock();
        if h.is_deleted() {
            return Err(ApiError::no_such("subscription", &s.name).into());
        }
        self.advance(h, &mut st, &s, &notifs, head, Change::default())?;
        let start = match marker {
            Some(m) => st.cursor.position_after(m.position())?.max(st.wm),
            None => st.wm,
        };
        st.cursor.seek(Start::Position(start))?;
        let now = now_us();
        let mut out: Vec<Record> = Vec::new();
        let mut stop;
        'outer: loop {
            let b = st
                .cursor
                .read((max + 1 - out.len()).min(1000), Duration::ZERO)?;
            stop = b.next;
            if b.records.is_empty() {
                if b.gap.is_some() {
                    continue;
                }
                break;
            }
            for r in b.records {
                if r.position.seq > head {
                    stop = r.position;
                    break 'outer;
                }
                if st.acked.contains(&r.position)
                    || !Self::matches(&s, &notifs, &r)
                    || self.expired(&r, now)
                {
                    continue;
                }
                if out.len() == max {
                    stop = r.position;
                    out.push(r);
                    break 'outer;
                }
                out.push(r);
            }
        }
        let is_truncated = out.len() > max;
        out.truncate(max);
        if start == st.wm {
            st.front = Some(Front {
                records: out.iter().map(|r| r.position).collect(),
                tail: stop,
            });
        }
        // The cursor's own renderer: the subscription's S3 settings.
        let renderer = st.cursor.renderer().clone();
        drop(st);
        let mut p = Pulled {
            is_truncated,
            head,
            s3: s.s3.is_some(),
            ..Pulled::default()
        };
        for r in &out {
            let id = EventId::new(r.position);
            let mut buf = Vec::with_capacity(700);
            if p.s3 {
                renderer.render_to(r, &mut buf);
            } else {
                plain_event(r, &id, buckets.get(r.bucket()), &mut buf);
            }
            p.events.push(buf);
            p.keys.push((
                fsfeed_delivery::transport::message_key(r),
                fsfeed::event_name::of_record(r),
            ));
            p.ids.push(id);
        }
        if let Some(last) = p.ids.last() {
            p.next_marker = last.to_string();
        }
        add(&self.metrics.event_pulled, p.events.len() as u64);
        Ok(p)
    }

    /// Ack events by id: each is never returned again. All ids are checked
    /// before anything changes.
    pub fn ack(&self, user: &User, name: &str, ids: &[String]) -> Result<()> {
        let h = self.own_sub(user, name)?;
        if ids.is_empty() {
            return Err(ApiError::invalid("event-id is required").into());
        }
        let mut parsed = Vec::with_capacity(ids.len());
        for i in ids {
            parsed.push(
                EventId::parse(i)
                    .map_err(|_| ApiError::invalid(format!("event-id {i:?} is no event id")))?,
            );
        }
        self.ack_handle(&h, &parsed)
    }

    /// Ack on a handle (the push loop's ack).
    pub fn ack_handle(&self, h: &SubHandle, ids: &[EventId]) -> Result<()> {
        let max = ids.iter().map(|i| i.position().seq).max().unwrap_or(0);
        // Ids at or below a head the tracker already reached need no catch-up.
        let mut head = self.known_head.load(Ordering::SeqCst);
        if max > head {
            head = self.catch_up()?;
        }
        let (start_seq, tenant, name) = {
            let m = h.meta.read();
            (m.start_seq, m.tenant.clone(), m.name.clone())
        };
        for id in ids {
            let p = id.position();
            if p.seq > head || p.seq < start_seq {
                return Err(ApiError::invalid(format!(
                    "event-id {id} is no event of subscription {name:?}"
                ))
                .into());
            }
        }
        let mut guard = h.state.lock();
        if h.is_deleted() {
            return Err(ApiError::no_such("subscription", &name).into());
        }
        let st = &mut *guard;
        let mut c = Change::default();
        let mut n = 0u64;
        for id in ids {
            let p = id.position();
            if p >= st.wm && st.acked.insert(p) {
                c.ack(&tenant, &name, p);
                n += 1;
            }
        }
        add(&self.metrics.event_acked, n);
        if let Some(f) = &mut st.front {
            if f.records.front().is_none_or(|p| *p >= st.wm) {
                // The fast path: pop the acked prefix of what the last pull returned.
                while let Some(p) = f.records.front().copied() {
                    if !st.acked.remove(&p) {
                        break;
                    }
                    c.unack(&tenant, &name, p);
                    f.records.pop_front();
                }
                let wm = f.records.front().copied().unwrap_or(f.tail);
                if f.records.is_empty() {
                    st.front = None;
                }
                let before = st.wm;
                st.wm = st.wm.max(wm);
                st.settle(before, &tenant, &name, &mut c);
                return self.store.apply_acks(c);
            }
        }
        // Lock order: a subscription's state, then the model (never the
        // other way round; the tracker takes the model, never a state).
        let s = h.meta();
        let (notifs, _) = self.topic_notifs(&s);
        self.advance(h, st, &s, &notifs, head, c)
    }

    /// Commit every subscription's watermark to its ledger cursor (what the
    /// retention guard reads); run about once a second, and at shutdown.
    pub fn flush_cursors(&self) {
        let subs: Vec<Arc<SubHandle>> = self.model.lock().subs.values().cloned().collect();
        for h in subs {
            let (wm, committed) = {
                let st = h.state.lock();
                (st.wm, st.committed)
            };
            if committed == Some(wm) || h.is_deleted() {
                continue;
            }
            match self.ledger.commit(&h.cursor_name, wm) {
                Ok(()) => h.state.lock().committed = Some(wm),
                Err(e) => warn!(cursor = %h.cursor_name, "cursor commit failed: {e}"),
            }
        }
    }

    /// Drop expired events at the front of every subscription (so that an
    /// idle subscription does not hold retention for them).
    pub fn expire_idle(&self) -> Result<()> {
        let head = self.catch_up()?;
        let subs: Vec<Arc<SubHandle>> = self.model.lock().subs.values().cloned().collect();
        for h in subs {
            let s = h.meta();
            let (notifs, _) = self.topic_notifs(&s);
            let mut st = h.state.lock();
            if !h.is_deleted() {
                self.advance(&h, &mut st, &s, &notifs, head, Change::default())?;
            }
        }
        Ok(())
    }

    /// Wait up to `timeout` for an event after `seq`.
    pub fn wait_after(&self, seq: u64, timeout: Duration) -> Result<()> {
        let mut c = self.ledger.cursor(
            None,
            CursorOptions {
                start: Start::Seq(seq + 1),
                ..CursorOptions::default()
            },
        )?;
        c.read(1, timeout)?;
        Ok(())
    }
}

/// A record in Ceph's plain pubsub event form.
fn plain_event(
    r: &Record,
    id: &EventId,
    bucket: Option<&(Option<String>, u64)>,
    out: &mut Vec<u8>,
) {
    let name = fsfeed::event_name::of_record(r);
    let event = if name.starts_with("ObjectRemoved") {
        "OBJECT_DELETE"
    } else {
        "OBJECT_CREATE"
    };
    let op = r.event.op.as_ref();
    let t = fsfeed::render::s3::rfc3339_ms(op.map(|o| o.time_us).unwrap_or(0));
    let mut b = serde_json::Map::new();
    if let Some((_, seq)) = bucket.filter(|(_, s)| *s > 0) {
        b.insert("bucket_id".into(), seq.to_string().into());
    }
    b.insert("name".into(), r.bucket().into());
    if let Some((Some(owner), _)) = bucket {
        let tenant = owner.split_once('$').map(|(t, _)| t).unwrap_or("");
        b.insert("tenant".into(), tenant.into());
    }
    let mut key = serde_json::Map::new();
    let version = match op.and_then(|o| o.kind.as_ref()) {
        Some(fsfeed::proto::op::Kind::Commit(c)) if r.expansion.is_none() => c.version_id.as_str(),
        _ => "",
    };
    if !version.is_empty() {
        key.insert("instance".into(), version.into());
    }
    key.insert("name".into(), r.object_key().into());
    let v = serde_json::json!({
        "id": id.to_string(),
        "event": event,
        "timestamp": t,
        "info": {
            "attrs": {"mtime": t},
            "bucket": b,
            "key": key,
        }
    });
    serde_json::to_writer(out, &v).expect("writing to a Vec");
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Request(a) => a,
            Error::Ledger(ref l) if l.code() == "closed" => ApiError::unavailable(),
            other => {
                warn!("internal error: {other}");
                ApiError::internal()
            }
        }
    }
}
