//! The change log's config (TOML). Every key is in `changelog/README.md`.
//! Errors name the line and key, never a value (keys are secrets); secrets
//! may be given as `env:NAME` and print as `***`.

use std::path::Path;
use std::time::Duration;

use fsfeed_delivery::Secret;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Smallest multipart part S3 accepts (except the last).
pub const MIN_PART: u64 = 5 << 20;

/// One watched source: a bucket (or bucket prefix), optionally a volume and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Only this volume.
    pub volume: Option<String>,
    /// This bucket.
    pub bucket: Option<String>,
    /// Buckets starting with this.
    pub bucket_prefix: Option<String>,
    /// Keys starting with this.
    pub key_prefix: Option<String>,
}

impl Source {
    /// Does an op on `volume/bucket/key` belong to this source?
    pub fn matches(&self, volume: &str, bucket: &str, key: &str) -> bool {
        self.volume.as_deref().is_none_or(|v| v == volume)
            && self.bucket.as_deref().is_none_or(|b| b == bucket)
            && self
                .bucket_prefix
                .as_deref()
                .is_none_or(|p| bucket.starts_with(p))
            && self
                .key_prefix
                .as_deref()
                .is_none_or(|p| key.starts_with(p))
    }
}

/// Where the objects go.
#[derive(Clone)]
pub struct Dest {
    /// `http(s)://host:port` of the S3 endpoint.
    pub endpoint: String,
    /// Region (default `us-east-1`).
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// Key prefix of every object (no leading or trailing `/`).
    pub prefix: String,
    /// Path-style requests (default true: what local S3 servers want).
    pub path_style: bool,
    /// Check the server's certificate (default true).
    pub verify_tls: bool,
    /// Access key id.
    pub access_key: Secret,
    /// Secret key.
    pub secret_key: Secret,
}

impl std::fmt::Debug for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dest")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Per-object dedup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    /// Every record.
    None,
    /// One entry per (bucket, key, version): its last state in the window.
    PerObject,
}

impl Dedup {
    /// As the body names it.
    pub fn name(self) -> &'static str {
        match self {
            Dedup::None => "none",
            Dedup::PerObject => "per_object",
        }
    }
}

/// The records' form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// fsfeed's native records.
    Native,
    /// S3 event records.
    S3,
}

/// A checked config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The job's name: the body's `job` and the cursor `changelog.JOB`.
    pub job: String,
    /// Watched sources (empty: everything).
    pub sources: Vec<Source>,
    /// The destination.
    pub dest: Dest,
    /// How often a running uploader looks for a new window.
    pub interval: Duration,
    /// How long a failing store is retried before the run fails.
    pub retry_for: Duration,
    /// Most events per object.
    pub max_events_per_object: u64,
    /// Most bytes of records (uncompressed JSON) per object.
    pub max_bytes_per_object: u64,
    /// Objects larger than this (compressed) are uploaded in parts.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (at least 5 MiB).
    pub part_size: u64,
    /// Dedup mode.
    pub dedup: Dedup,
    /// Records' form.
    pub format: RecordFormat,
    /// Renames as per-object remove and create records.
    pub expand_renames: bool,
    /// The lease's time to live (`None`: `lease = "none"`, no lease).
    pub lease_ttl: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    job: Option<String>,
    #[serde(default)]
    sources: Vec<Source>,
    dest: RawDest,
    interval: Option<String>,
    retry_for: Option<String>,
    max_events_per_object: Option<u64>,
    max_bytes_per_object: Option<u64>,
    multipart_threshold: Option<u64>,
    part_size: Option<u64>,
    dedup: Option<Dedup>,
    format: Option<RecordFormat>,
    expand_renames: Option<bool>,
    lease: Option<RawLease>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLease {
    Mode(String),
    Table(RawLeaseTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeaseTable {
    ttl: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDest {
    endpoint: String,
    region: Option<String>,
    bucket: String,
    #[serde(default)]
    prefix: String,
    path_style: Option<bool>,
    verify_tls: Option<bool>,
    access_key: String,
    secret_key: String,
}

/// The endpoint and keys of an S3 store, without bucket and prefix: the
/// change log's `[dest]` table has them, and so does an export's store file
/// (`fsfeed export --parquet s3://BUCKET/PREFIX --store FILE`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    endpoint: String,
    region: Option<String>,
    path_style: Option<bool>,
    verify_tls: Option<bool>,
    access_key: String,
    secret_key: String,
}

impl RawStore {
    /// The checked destination; errors name keys as `{table}key`.
    fn dest(self, table: &str, bucket: String, prefix: &str) -> Result<Dest> {
        Ok(Dest {
            endpoint: url_ok(table, &self.endpoint)?,
            region: self.region.unwrap_or_else(|| "us-east-1".into()),
            bucket,
            prefix: prefix.trim_matches('/').to_string(),
            path_style: self.path_style.unwrap_or(true),
            verify_tls: self.verify_tls.unwrap_or(true),
            access_key: secret(&format!("{table}access_key"), self.access_key)?,
            secret_key: secret(&format!("{table}secret_key"), self.secret_key)?,
        })
    }
}

impl Dest {
    /// A bucket and key prefix with the endpoint and keys of a store file
    /// (TOML): the keys of the change log's `[dest]` table but `bucket`
    /// and `prefix` (`endpoint`, `region`, `path_style`, `verify_tls`,
    /// `access_key`, `secret_key`; keys may be `env:NAME`).
    pub fn from_store_toml(text: &str, bucket: &str, prefix: &str) -> Result<Dest> {
        let raw: RawStore = toml::from_str(text)
            .map_err(|e| Error::Config(fsfeed_delivery::config::toml_error(text, &e)))?;
        if bucket.is_empty() {
            return Err(Error::Config("the bucket is empty".into()));
        }
        raw.dest("", bucket.to_string(), prefix)
    }

    /// [`Dest::from_store_toml`] of a file.
    pub fn from_store_file(path: impl AsRef<Path>, bucket: &str, prefix: &str) -> Result<Dest> {
        let text = fsfeed_delivery::config::read_file(path.as_ref()).map_err(Error::Config)?;
        Dest::from_store_toml(&text, bucket, prefix)
    }
}

/// `60s`, `500ms`, `2m`, `1h` (a whole number and a unit).
pub fn parse_duration(key: &str, s: &str) -> Result<Duration> {
    let bad = || {
        Error::Config(format!(
            "{key} must be a duration such as 60s, 500ms, 2m or 1h"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    };
    Ok(d)
}

fn secret(key: &str, v: String) -> Result<Secret> {
    let v = match v.strip_prefix("env:") {
        Some(name) => std::env::var(name).map_err(|_| {
            Error::Config(format!("{key}: the environment variable {name} is not set"))
        })?,
        None => v,
    };
    if v.is_empty() {
        return Err(Error::Config(format!("{key} is empty")));
    }
    Ok(Secret::new(v))
}

impl Config {
    /// Read and check a config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let text = fsfeed_delivery::config::read_file(path.as_ref()).map_err(Error::Config)?;
        Config::from_toml(&text)
    }

    /// Parse and check a config.
    pub fn from_toml(text: &str) -> Result<Config> {
        let raw: Raw = toml::from_str(text)
            .map_err(|e| Error::Config(fsfeed_delivery::config::toml_error(text, &e)))?;
        let job = raw.job.unwrap_or_else(|| "changelog".into());
        fsfeed::check_cursor_name(&format!("changelog.{job}"))
            .map_err(|_| Error::Config("job must be 1 to 100 of [A-Za-z0-9._-]".into()))?;
        if job.len() > 100 {
            return Err(Error::Config(
                "job must be 1 to 100 of [A-Za-z0-9._-]".into(),
            ));
        }
        for (i, s) in raw.sources.iter().enumerate() {
            if s.bucket.is_some() == s.bucket_prefix.is_some() {
                return Err(Error::Config(format!(
                    "sources #{}: give bucket or bucket_prefix (one of them)",
                    i + 1
                )));
            }
        }
        let d = raw.dest;
        if d.bucket.is_empty() {
            return Err(Error::Config("dest.bucket is empty".into()));
        }
        let store = RawStore {
            endpoint: d.endpoint,
            region: d.region,
            path_style: d.path_style,
            verify_tls: d.verify_tls,
            access_key: d.access_key,
            secret_key: d.secret_key,
        };
        let dest = store.dest("dest.", d.bucket, &d.prefix)?;
        let interval = match raw.interval {
            Some(s) => parse_duration("interval", &s)?,
            None => Duration::from_secs(60),
        };
        let retry_for = match raw.retry_for {
            Some(s) => parse_duration("retry_for", &s)?,
            None => Duration::from_secs(60),
        };
        if interval.is_zero() {
            return Err(Error::Config("interval must be more than 0".into()));
        }
        let max_events = raw.max_events_per_object.unwrap_or(100_000);
        if !(1..=10_000_000).contains(&max_events) {
            return Err(Error::Config(
                "max_events_per_object must be 1 to 10000000".into(),
            ));
        }
        let max_bytes = raw.max_bytes_per_object.unwrap_or(256 << 20);
        if max_bytes < 1024 {
            return Err(Error::Config(
                "max_bytes_per_object must be at least 1024".into(),
            ));
        }
        let part_size = raw.part_size.unwrap_or(8 << 20);
        if part_size < MIN_PART {
            return Err(Error::Config(
                "part_size must be at least 5 MiB (5242880): S3's smallest part".into(),
            ));
        }
        let threshold = raw.multipart_threshold.unwrap_or(16 << 20);
        if threshold < part_size {
            return Err(Error::Config(
                "multipart_threshold must be at least part_size".into(),
            ));
        }
        let lease_ttl = match raw.lease {
            None => Some(Duration::from_secs(30)),
            Some(RawLease::Mode(m)) if m == "none" => None,
            Some(RawLease::Mode(_)) => {
                return Err(Error::Config(
                    "lease must be \"none\" or a table with ttl".into(),
                ))
            }
            Some(RawLease::Table(t)) => {
                let ttl = match t.ttl {
                    Some(s) => parse_duration("lease.ttl", &s)?,
                    None => Duration::from_secs(30),
                };
                if ttl < Duration::from_secs(1) {
                    return Err(Error::Config("lease.ttl must be at least 1s".into()));
                }
                Some(ttl)
            }
        };
        Ok(Config {
            job,
            sources: raw.sources,
            dest,
            interval,
            retry_for,
            max_events_per_object: max_events,
            max_bytes_per_object: max_bytes,
            multipart_threshold: threshold,
            part_size,
            dedup: raw.dedup.unwrap_or(Dedup::None),
            format: raw.format.unwrap_or(RecordFormat::Native),
            expand_renames: raw.expand_renames.unwrap_or(true),
            lease_ttl,
        })
    }

    /// The uploader's ledger cursor.
    pub fn cursor_name(&self) -> String {
        format!("changelog.{}", self.job)
    }

    /// Does an op belong to a watched source?
    pub fn watches(&self, volume: &str, bucket: &str, key: &str) -> bool {
        self.sources.is_empty() || self.sources.iter().any(|s| s.matches(volume, bucket, key))
    }
}

fn url_ok(table: &str, s: &str) -> Result<String> {
    let ok = (s.starts_with("http://") || s.starts_with("https://"))
        && s.len() > "https://".len()
        && !s.contains(char::is_whitespace)
        && !s.contains('@');
    if ok {
        Ok(s.trim_end_matches('/').to_string())
    } else {
        Err(Error::Config(format!(
            "{table}endpoint must be http(s)://host[:port] without user info"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
interval = "60s"
dedup = "per_object"
format = "native"
[[sources]]
bucket = "photos"
key_prefix = "2026/"
[dest]
endpoint = "http://127.0.0.1:9000"
region = "us-east-1"
bucket = "changelog"
prefix = "zone-a"
path_style = true
access_key = "env:FSFEED_TEST_CHANGELOG_AK"
secret_key = "plainsecret"
[lease]
ttl = "30s"
"#;

    #[test]
    fn the_issue_example_parses() {
        std::env::set_var("FSFEED_TEST_CHANGELOG_AK", "AKIDFROMENV");
        let c = Config::from_toml(GOOD).unwrap();
        assert_eq!(c.dest.access_key.expose(), "AKIDFROMENV");
        assert_eq!(c.dedup, Dedup::PerObject);
        assert_eq!(c.lease_ttl, Some(Duration::from_secs(30)));
        assert!(c.watches("v", "photos", "2026/a"));
        assert!(!c.watches("v", "photos", "2025/a"));
        assert!(!c.watches("v", "other", "2026/a"));
        assert!(!format!("{c:?}").contains("plainsecret"));
        assert_eq!(c.cursor_name(), "changelog.changelog");
    }

    #[test]
    fn bad_configs_are_typed_errors_without_values() {
        let base =
            "[dest]\nendpoint='http://h:1'\nbucket='b'\naccess_key='a'\nsecret_key='TOPSECRET'\n";
        let cases: &[(&str, &str)] = &[
            ("colour = 1\n", "unknown field"),
            ("interval = '60 seconds'\n", "interval"),
            ("interval = '0s'\n", "interval"),
            ("part_size = 1024\n", "part_size"),
            (
                "multipart_threshold = 6000000\npart_size = 8000000\n",
                "multipart_threshold",
            ),
            ("dedup = 'sometimes'\n", "dedup"),
            ("format = 'xml'\n", "format"),
            ("lease = 'maybe'\n", "lease"),
            ("max_events_per_object = 0\n", "max_events_per_object"),
            ("job = 'a b'\n", "job"),
            ("[[sources]]\nkey_prefix = 'x'\n", "bucket or bucket_prefix"),
            (
                "[[sources]]\nbucket = 'a'\nbucket_prefix = 'b'\n",
                "bucket or bucket_prefix",
            ),
        ];
        for (extra, want) in cases {
            let text = format!("{extra}{base}");
            let e = Config::from_toml(&text).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.code(), "invalid_config", "{text}");
            assert!(m.contains(want), "{text:?}: {m}");
            assert!(!m.contains("TOPSECRET"), "{m}");
        }
        for dest in [
            "[dest]\nendpoint='ftp://h'\nbucket='b'\naccess_key='a'\nsecret_key='s'\n",
            "[dest]\nendpoint='http://u:TOPSECRET@h'\nbucket='b'\naccess_key='a'\nsecret_key='s'\n",
            "[dest]\nendpoint='http://h'\nbucket=''\naccess_key='a'\nsecret_key='s'\n",
            "[dest]\nendpoint='http://h'\nbucket='b'\naccess_key='env:FSFEED_NOT_SET_ANYWHERE'\nsecret_key='s'\n",
            "[dest]\nendpoint='http://h'\nbucket='b'\naccess_key='a'\nsecret_key=''\n",
            "[dest]\nendpoint='http://h'\nbucket='b'\naccess_key='a'\nsecret_key=5\n",
        ] {
            let e = Config::from_toml(dest).unwrap_err();
            assert_eq!(e.code(), "invalid_config");
            assert!(!e.to_string().contains("TOPSECRET"));
        }
    }
}
