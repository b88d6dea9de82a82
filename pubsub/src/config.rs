//! The service's config file (TOML): Ceph's pubsub tier-config keys in
//! `[zone]`, the users who sign requests in `[[users]]`, and bucket owners in
//! `[buckets]`. Errors name the line and key, never a value (keys are secrets).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fsfeed_delivery::Secret;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The `[zone]` table: Ceph's pubsub zone parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Tenant of the pubsub control user (Ceph's `tenant`; default empty).
    pub tenant: String,
    /// The pubsub control user (Ceph's `uid`; default `pubsub`).
    pub uid: String,
    /// Prefix of a subscription's data bucket name (`dest.bucket_name`; default `pubsub-`).
    pub data_bucket_prefix: String,
    /// Prefix of stored event names (`dest.oid_prefix`; default empty).
    pub data_oid_prefix: String,
    /// How many days an event that was not acked is kept (default 7).
    pub events_retention_days: u32,
    /// The zonegroup: the region of ARNs and of S3 records' `awsRegion` (default `default`).
    pub zonegroup: String,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            tenant: String::new(),
            uid: "pubsub".into(),
            data_bucket_prefix: "pubsub-".into(),
            data_oid_prefix: String::new(),
            events_retention_days: 7,
            zonegroup: "default".into(),
        }
    }
}

/// One user who signs requests.
#[derive(Clone)]
pub struct User {
    /// The user id.
    pub uid: String,
    /// The user's tenant (empty: none).
    pub tenant: String,
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: Secret,
}

impl User {
    /// How Ceph writes the user as an owner: `uid`, or `tenant$uid`.
    pub fn owner_id(&self) -> String {
        owner_id(&self.tenant, &self.uid)
    }
}

/// How Ceph writes a user: `uid`, or `tenant$uid`.
pub fn owner_id(tenant: &str, uid: &str) -> String {
    if tenant.is_empty() {
        uid.to_string()
    } else {
        format!("{tenant}${uid}")
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("uid", &self.uid)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The `[server]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// How long a client may take to send a request's headers, and then its
    /// body (`request_timeout_ms`, default 10000).
    pub request_timeout: Duration,
}

/// The `[push]` table: how push subscriptions retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// First retry delay (`retry_initial_ms`, default 200; at most 1000, so
    /// the first retry comes within a second).
    pub retry_initial: Duration,
    /// Longest retry delay (`retry_max_ms`, default 30000).
    pub retry_max: Duration,
    /// Most events per push round (`batch`, default 100).
    pub batch: usize,
}

/// A checked config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The zone parameters.
    pub zone: Zone,
    /// Server limits.
    pub server: Server,
    /// Push retries.
    pub push: Push,
    /// The users, in file order.
    pub users: Vec<User>,
    /// Bucket name -> owner (`uid` or `tenant$uid`), overriding the
    /// principal of the bucket's `bucket_create` op.
    pub buckets: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    zone: RawZone,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    buckets: BTreeMap<String, String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    push: RawPush,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    request_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPush {
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    batch: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawZone {
    tenant: Option<String>,
    uid: Option<String>,
    data_bucket_prefix: Option<String>,
    data_oid_prefix: Option<String>,
    events_retention_days: Option<u32>,
    zonegroup: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    uid: String,
    #[serde(default)]
    tenant: String,
    access_key: String,
    secret_key: String,
}

/// Is `s` a valid user id or tenant: 1 to 64 of `[A-Za-z0-9_-]`?
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Is `s` a valid tenant: 1 to 32 of `[A-Za-z0-9_-]` (a tenant is part of
/// a ledger cursor name, `pubsub-TENANT.NAME`)?
pub fn valid_tenant(s: &str) -> bool {
    valid_id(s) && s.len() <= 32
}

impl Config {
    /// Read and check a config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let text = fsfeed_delivery::config::read_file(path.as_ref()).map_err(Error::Config)?;
        Config::from_toml(&text)
    }

    /// Parse and check a config.
    pub fn from_toml(text: &str) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| Error::Config(fsfeed_delivery::config::toml_error(text, &e)))?;
        let d = Zone::default();
        let z = raw.zone;
        let zone = Zone {
            tenant: z.tenant.unwrap_or(d.tenant),
            uid: z.uid.unwrap_or(d.uid),
            data_bucket_prefix: z.data_bucket_prefix.unwrap_or(d.data_bucket_prefix),
            data_oid_prefix: z.data_oid_prefix.unwrap_or(d.data_oid_prefix),
            events_retention_days: z.events_retention_days.unwrap_or(d.events_retention_days),
            zonegroup: z.zonegroup.unwrap_or(d.zonegroup),
        };
        if !zone.tenant.is_empty() && !valid_tenant(&zone.tenant) {
            return Err(Error::Config(
                "zone.tenant must be 1 to 32 of [A-Za-z0-9_-]".into(),
            ));
        }
        if !valid_id(&zone.uid) {
            return Err(Error::Config(
                "zone.uid must be 1 to 64 of [A-Za-z0-9_-]".into(),
            ));
        }
        if !(1..=36_500).contains(&zone.events_retention_days) {
            return Err(Error::Config(
                "zone.events_retention_days must be 1 to 36500".into(),
            ));
        }
        if !valid_id(&zone.zonegroup) {
            return Err(Error::Config(
                "zone.zonegroup must be 1 to 64 of [A-Za-z0-9_-]".into(),
            ));
        }
        if raw.users.is_empty() {
            return Err(Error::Config(
                "no [[users]] table: nobody could sign a request".into(),
            ));
        }
        let mut users: Vec<User> = Vec::new();
        for (i, u) in raw.users.into_iter().enumerate() {
            let n = i + 1;
            if !valid_id(&u.uid) {
                return Err(Error::Config(format!(
                    "users #{n}: uid must be 1 to 64 of [A-Za-z0-9_-]"
                )));
            }
            if !u.tenant.is_empty() && !valid_tenant(&u.tenant) {
                return Err(Error::Config(format!(
                    "users #{n} ({}): tenant must be 1 to 32 of [A-Za-z0-9_-]",
                    u.uid
                )));
            }
            if u.access_key.is_empty()
                || u.access_key.len() > 128
                || !u.access_key.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(Error::Config(format!(
                    "users #{n} ({}): access_key must be 1 to 128 printable ASCII characters",
                    u.uid
                )));
            }
            if u.secret_key.is_empty() {
                return Err(Error::Config(format!(
                    "users #{n} ({}): secret_key is empty",
                    u.uid
                )));
            }
            let user = User {
                uid: u.uid,
                tenant: u.tenant,
                access_key: u.access_key,
                secret_key: Secret::new(u.secret_key),
            };
            if users.iter().any(|o| o.access_key == user.access_key) {
                return Err(Error::Config(format!(
                    "users #{n} ({}): access_key is given to another user too",
                    user.uid
                )));
            }
            if users.iter().any(|o| o.owner_id() == user.owner_id()) {
                return Err(Error::Config(format!(
                    "users #{n}: user {} appears twice",
                    user.owner_id()
                )));
            }
            users.push(user);
        }
        for (bucket, owner) in &raw.buckets {
            if bucket.is_empty() {
                return Err(Error::Config("buckets: a bucket name is empty".into()));
            }
            if !users.iter().any(|u| &u.owner_id() == owner) {
                return Err(Error::Config(format!(
                    "buckets.{bucket}: owner {owner:?} is no configured user (uid, or tenant$uid)"
                )));
            }
        }
        let request_timeout_ms = raw.server.request_timeout_ms.unwrap_or(10_000);
        if !(100..=600_000).contains(&request_timeout_ms) {
            return Err(Error::Config(
                "server.request_timeout_ms must be 100 to 600000".into(),
            ));
        }
        let retry_initial_ms = raw.push.retry_initial_ms.unwrap_or(200);
        let retry_max_ms = raw.push.retry_max_ms.unwrap_or(30_000);
        if !(1..=1000).contains(&retry_initial_ms) {
            return Err(Error::Config(
                "push.retry_initial_ms must be 1 to 1000 (the first retry comes within a second)"
                    .into(),
            ));
        }
        if retry_max_ms < retry_initial_ms || retry_max_ms > 3_600_000 {
            return Err(Error::Config(
                "push.retry_max_ms must be at least push.retry_initial_ms and at most 3600000"
                    .into(),
            ));
        }
        let batch = raw.push.batch.unwrap_or(100);
        if !(1..=10_000).contains(&batch) {
            return Err(Error::Config("push.batch must be 1 to 10000".into()));
        }
        Ok(Config {
            zone,
            server: Server {
                request_timeout: Duration::from_millis(request_timeout_ms),
            },
            push: Push {
                retry_initial: Duration::from_millis(retry_initial_ms),
                retry_max: Duration::from_millis(retry_max_ms),
                batch,
            },
            users,
            buckets: raw.buckets,
        })
    }

    /// The user with this access key.
    pub fn user_by_key(&self, access_key: &str) -> Option<&User> {
        self.users.iter().find(|u| u.access_key == access_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[zone]
zonegroup = "default"
events_retention_days = 7
[[users]]
uid = "alice"
access_key = "AKALICE"
secret_key = "alice-secret"
[[users]]
uid = "bob"
tenant = "t2"
access_key = "AKBOB"
secret_key = "bob-secret"
[buckets]
photos = "alice"
"#;

    #[test]
    fn the_issue_example_parses() {
        let c = Config::from_toml(GOOD).unwrap();
        assert_eq!(c.zone.uid, "pubsub");
        assert_eq!(c.zone.data_bucket_prefix, "pubsub-");
        assert_eq!(c.users[1].owner_id(), "t2$bob");
        assert_eq!(c.buckets["photos"], "alice");
        assert_eq!(c.user_by_key("AKBOB").unwrap().uid, "bob");
        assert!(!format!("{:?}", c).contains("alice-secret"));
    }

    #[test]
    fn bad_configs_are_typed_errors_without_values() {
        let cases: &[(&str, &str)] = &[
            ("[zone]\nfoo = 1\n", "unknown field"),
            ("[zone]\nevents_retention_days = 0\n[[users]]\nuid='a'\naccess_key='k'\nsecret_key='s'\n", "events_retention_days"),
            ("[zone]\nevents_retention_days = \"seven\"\n", "events_retention_days"),
            ("", "no [[users]]"),
            ("[[users]]\nuid='a b'\naccess_key='k'\nsecret_key='s'\n", "uid"),
            ("[[users]]\nuid='a'\naccess_key='k'\nsecret_key=''\n", "secret_key"),
            ("[[users]]\nuid='a'\naccess_key='k'\nsecret_key='TOPSECRET'\n[[users]]\nuid='b'\naccess_key='k'\nsecret_key='s'\n", "another user"),
            ("[[users]]\nuid='a'\naccess_key='k'\nsecret_key=7\n", "secret_key"),
            ("[[users]]\nuid='a'\naccess_key='k'\nsecret_key='s'\n[buckets]\nx = 'nobody'\n", "no configured user"),
            ("[[users]]\nuid='a'\naccess_key='k'\n", "secret_key"),
            ("[push]\nretry_initial_ms = 5000\n[[users]]\nuid='a'\naccess_key='k'\nsecret_key='s'\n", "retry_initial_ms"),
            ("[server]\nrequest_timeout_ms = 0\n[[users]]\nuid='a'\naccess_key='k'\nsecret_key='s'\n", "request_timeout_ms"),
            ("[zone]\nzonegroup = 'a:b'\n[[users]]\nuid='a'\naccess_key='k'\nsecret_key='s'\n", "zonegroup"),
        ];
        for (text, want) in cases {
            let e = Config::from_toml(text).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.code(), "invalid_config", "{text}");
            assert!(m.contains(want), "{text:?}: {m}");
            assert!(!m.contains("TOPSECRET"), "{m}");
        }
    }
}
