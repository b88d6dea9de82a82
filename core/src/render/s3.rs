//! S3 event notifications (DESIGN section 6).
//!
//! Each record renders to one object of the `"Records"` array of an S3 event
//! message, in the shape AWS documents and that real consumers parse
//! (`aws_lambda_events::s3::S3EventRecord`, aws-lambda-powertools' `S3Model`,
//! `@types/aws-lambda`'s `S3EventRecord`): `eventName` without the `s3:`
//! prefix, `eventTime` RFC 3339 with milliseconds and `Z` (the op's time,
//! never the time of rendering), `userIdentity`, `requestParameters`,
//! `responseElements`, `s3.{s3SchemaVersion, configurationId, bucket, object}`
//! always present; `object.size` (an integer) and `object.eTag` on every
//! record (0 and `""` where the op does not carry them); `versionId` only when
//! the op has one; `sequencer` the seq as 18 uppercase hex digits.
//!
//! # Event names
//!
//! | op kind | `eventName` | notes |
//! |---|---|---|
//! | `create_file` | none | an S3 object exists for readers only once committed |
//! | `create_directory` | `ObjectCreated:Put` | key `dir/` |
//! | `commit` | `ObjectCreated:Put`, `:Post`, `:Copy`, `:CompleteMultipartUpload` | per the op's `method` |
//! | `append` | none | the commit that closes the append is the `ObjectCreated:Put` |
//! | `truncate` | `ObjectCreated:Truncate` | extension: the content changed |
//! | `delete` | `ObjectRemoved:Delete` | a directory as `dir/`; recursive flagged, not expanded |
//! | `rename` | `ObjectRenamed:Rename` | extension; `object.key` is the new key, `renameFromKey` the old |
//! | `acl_add`, `acl_remove`, `acl_set` | `ObjectAcl:Put` | |
//! | `set_times` | `ObjectMetadata:SetTimes` | extension |
//! | `set_attr` | `ObjectMetadata:SetAttr` | extension |
//! | `bucket_create` / `bucket_delete` | `BucketCreated:Put` / `BucketRemoved:Delete` | extension; key `""` |
//! | `volume_create` / `volume_delete` | none | S3 has no volumes |
//!
//! # Profiles
//!
//! | | `aws` (default) | `ceph` | `minio` |
//! |---|---|---|---|
//! | `eventVersion` | `2.1` | `2.2` | `2.0` |
//! | `eventSource` | `aws:s3` | `ceph:s3` | `minio:s3` |
//! | `object.key` | form-urlencoded per `/` segment (space `+`, `/` kept) | raw | Go `url.QueryEscape` of the whole key (`/` as `%2F`) |
//! | extra | | `eventId`, `opaqueData` | `source` |
//!
//! The raw key and everything fsfeed knows beyond S3 sit in one extension
//! map, `fsfeedEventData` (seq, sub, eventId, txid, op, layout, objectId,
//! isDirectory, isRecursive, isOverwrite, renameFromKey, rawKey, resync).
//! `eventId` is `SEQ-SUB` in hex, stable across redeliveries: an ack by id is
//! a commit of that position.

use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

use super::Renderer;
use crate::cursor::Record;
use crate::error::{Error, Result};
use crate::expand::{Action, Expansion};
use crate::op::{Kind, Op};
use crate::proto::Event;

/// Which S3 implementation's dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Amazon S3.
    #[default]
    Aws,
    /// Ceph RGW.
    Ceph,
    /// MinIO.
    Minio,
}

impl std::str::FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Profile> {
        match s {
            "aws" => Ok(Profile::Aws),
            "ceph" => Ok(Profile::Ceph),
            "minio" => Ok(Profile::Minio),
            other => Err(Error::InvalidArgument(format!(
                "unknown S3 profile {other:?} (aws, ceph, minio)"
            ))),
        }
    }
}

/// Settings of the S3 renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// Dialect.
    pub profile: Profile,
    /// `awsRegion`.
    pub region: String,
    /// `eventSource` (default per profile).
    pub event_source: Option<String>,
    /// `s3.configurationId`.
    pub configuration_id: String,
    /// `s3.bucket.ownerIdentity.principalId`.
    pub bucket_owner: String,
    /// Prefix of `s3.bucket.arn`, followed by the bucket name.
    pub arn_prefix: String,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            profile: Profile::Aws,
            region: "us-east-1".into(),
            event_source: None,
            configuration_id: "fsfeed".into(),
            bucket_owner: "fsfeed".into(),
            arn_prefix: "arn:aws:s3:::".into(),
        }
    }
}

/// The S3 event name of an op (without `s3:`), or `None` when the op has no
/// S3 notification.
pub fn event_name(op: &Op) -> Option<&'static str> {
    Some(match op.kind.as_ref()? {
        Kind::CreateFile(_) | Kind::Append(_) => return None,
        Kind::VolumeCreate(_) | Kind::VolumeDelete(_) => return None,
        Kind::CreateDirectory(_) => "ObjectCreated:Put",
        Kind::Commit(c) => match c.method.as_str() {
            "post" => "ObjectCreated:Post",
            "copy" => "ObjectCreated:Copy",
            "complete_multipart_upload" => "ObjectCreated:CompleteMultipartUpload",
            _ => "ObjectCreated:Put",
        },
        Kind::Truncate(_) => "ObjectCreated:Truncate",
        Kind::Delete(_) => "ObjectRemoved:Delete",
        Kind::Rename(_) => "ObjectRenamed:Rename",
        Kind::AclAdd(_) | Kind::AclRemove(_) | Kind::AclSet(_) => "ObjectAcl:Put",
        Kind::SetTimes(_) => "ObjectMetadata:SetTimes",
        Kind::SetAttr(_) => "ObjectMetadata:SetAttr",
        Kind::BucketCreate(_) => "BucketCreated:Put",
        Kind::BucketDelete(_) => "BucketRemoved:Delete",
    })
}

/// The S3 event name of an expanded record.
pub fn expanded_event_name(action: Action) -> &'static str {
    match action {
        Action::Remove => "ObjectRemoved:Delete",
        Action::Create => "ObjectCreated:Put",
    }
}

/// Does `name` (an S3 event name, without `s3:`) match `pattern`, which may
/// carry the `s3:` prefix and end in `*` (`s3:ObjectCreated:*`)?
pub fn event_name_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

/// Percent-encode `s`, keeping ASCII alphanumerics and `keep`, space as `+`.
fn query_encode(s: &str, keep: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// The key as the profile writes it in `object.key`.
pub fn encode_key(profile: Profile, key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    match profile {
        Profile::Ceph => out.push_str(key),
        // application/x-www-form-urlencoded (Java's URLEncoder), per segment.
        Profile::Aws => {
            for (i, seg) in key.split('/').enumerate() {
                if i > 0 {
                    out.push('/');
                }
                query_encode(seg, b"-_.*", &mut out);
            }
        }
        // Go's url.QueryEscape of the whole name.
        Profile::Minio => query_encode(key, b"-_.~", &mut out),
    }
    out
}

/// Microseconds since the epoch as RFC 3339 with milliseconds and `Z`.
pub fn rfc3339_ms(time_us: i64) -> String {
    TimeMs(time_us).to_string()
}

/// Serialises its Display form straight into the output (no String).
struct Disp<T>(T);

impl<T: fmt::Display> Serialize for Disp<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// RFC 3339 with milliseconds and `Z`, from µs.
struct TimeMs(i64);

impl fmt::Display for TimeMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

/// A key in the profile's encoding, with a `/` added for directories.
struct KeyOut<'a> {
    profile: Profile,
    key: &'a str,
    dir: bool,
}

impl fmt::Display for KeyOut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let slash = self.dir && !self.key.is_empty() && !self.key.ends_with('/');
        if slash {
            s = encode_key(self.profile, &format!("{}/", self.key));
            return f.write_str(&s);
        }
        match self.profile {
            Profile::Ceph => f.write_str(self.key),
            _ => {
                s.reserve(self.key.len() + 8);
                match self.profile {
                    Profile::Aws => {
                        for (i, seg) in self.key.split('/').enumerate() {
                            if i > 0 {
                                s.push('/');
                            }
                            query_encode(seg, b"-_.*", &mut s);
                        }
                    }
                    _ => query_encode(self.key, b"-_.~", &mut s),
                }
                f.write_str(&s)
            }
        }
    }
}

/// The producer's request id, or one derived from the seq.
struct ReqId<'a> {
    given: &'a str,
    seq: u64,
}

impl fmt::Display for ReqId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.given.is_empty() {
            write!(f, "{:016X}", self.seq)
        } else {
            f.write_str(self.given)
        }
    }
}

/// `prefix` + the event id of (seq, sub).
struct EventId {
    seq: u64,
    sub: u32,
    prefix: &'static str,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:016X}-{:08X}", self.prefix, self.seq, self.sub)
    }
}

/// ARN prefix + bucket.
struct Arn<'a>(&'a str, &'a str);

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        f.write_str(self.1)
    }
}

/// The sequencer: 18 uppercase hex digits.
struct Hex18(u64);

impl fmt::Display for Hex18 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:018X}", self.0)
    }
}

/// The stable id of the record at (seq, sub).
pub fn event_id(seq: u64, sub: u32) -> String {
    EventId {
        seq,
        sub,
        prefix: "",
    }
    .to_string()
}

/// The S3 renderer.
#[derive(Debug, Clone, Default)]
pub struct S3 {
    /// Settings.
    pub options: S3Options,
}

impl S3 {
    /// A renderer with these settings.
    pub fn new(options: S3Options) -> S3 {
        S3 { options }
    }

    /// The S3 record of an event at sub-position `sub`, or `None` when the op
    /// has no S3 notification. `resync` marks synthetic records of a resync;
    /// `expansion` makes it the record of one object of an expanded event.
    pub fn record(
        &self,
        event: &Event,
        sub: u32,
        resync: bool,
        expansion: Option<&Expansion>,
    ) -> Option<Value> {
        self.typed(event, sub, resync, expansion)
            .map(|r| serde_json::to_value(r).expect("S3 records serialise"))
    }

    /// Write the S3 record of a record as JSON to `out` (no intermediate
    /// `Value`: the fast path for streaming output). False when the record
    /// has no S3 form.
    pub fn write_record(&self, record: &Record, out: &mut Vec<u8>) -> bool {
        match self.typed(
            &record.event,
            record.position.sub,
            record.resync,
            record.expansion.as_ref(),
        ) {
            Some(r) => {
                serde_json::to_writer(out, &r).expect("writing to a Vec");
                true
            }
            None => false,
        }
    }

    fn typed<'a>(
        &'a self,
        event: &'a Event,
        sub: u32,
        resync: bool,
        expansion: Option<&'a Expansion>,
    ) -> Option<S3Record<'a>> {
        let op = event.op.as_ref()?;
        let name = match expansion {
            Some(x) => expanded_event_name(x.action),
            None if resync => "ObjectCreated:Put",
            None => event_name(op)?,
        };
        let o = &self.options;
        let profile = o.profile;
        let is_dir =
            expansion.is_none() && (op.is_dir || matches!(op.kind, Some(Kind::CreateDirectory(_))));
        let (raw_key, from_key) = match (expansion, &op.kind) {
            (Some(x), _) => (x.key.as_str(), x.from_key.as_deref()),
            (None, Some(Kind::Rename(_))) => (event.to_path.as_str(), Some(event.path.as_str())),
            _ => (event.path.as_str(), None),
        };
        let key = Disp(KeyOut {
            profile,
            key: raw_key,
            dir: is_dir,
        });
        let (size, etag, version_id) = match (&op.kind, expansion) {
            (_, Some(_)) => (0, "", ""),
            (Some(Kind::Commit(c)), _) => {
                (c.size.unwrap_or(0), c.etag.as_str(), c.version_id.as_str())
            }
            (Some(Kind::Truncate(t)), _) => (t.size, "", ""),
            _ => (0, "", ""),
        };
        let principal = if op.principal.is_empty() {
            "fsfeed"
        } else {
            &op.principal
        };
        let ip = if op.source_ip.is_empty() {
            "127.0.0.1"
        } else {
            &op.source_ip
        };
        let seq = event.seq;
        let request_id = Disp(ReqId {
            given: &op.request_id,
            seq,
        });
        let id = move || {
            Disp(EventId {
                seq,
                sub,
                prefix: "",
            })
        };
        let recursive = match &op.kind {
            Some(Kind::Delete(d)) => d.recursive && expansion.is_none(),
            Some(Kind::CreateFile(c)) => c.recursive,
            _ => false,
        };
        let (version, source) = match profile {
            Profile::Aws => ("2.1", "aws:s3"),
            Profile::Ceph => ("2.2", "ceph:s3"),
            Profile::Minio => ("2.0", "minio:s3"),
        };
        Some(S3Record {
            event_version: version,
            event_source: o.event_source.as_deref().unwrap_or(source),
            aws_region: &o.region,
            event_time: Disp(TimeMs(op.time_us)),
            event_name: name,
            user_identity: Principal {
                principal_id: principal,
            },
            request_parameters: RequestParameters {
                source_ip_address: ip,
            },
            response_elements: ResponseElements {
                request_id,
                id2: Disp(EventId {
                    seq,
                    sub,
                    prefix: "fsfeed/",
                }),
            },
            s3: S3Entity {
                s3_schema_version: "1.0",
                configuration_id: &o.configuration_id,
                bucket: Bucket {
                    name: &op.bucket,
                    owner_identity: Principal {
                        principal_id: &o.bucket_owner,
                    },
                    arn: Disp(Arn(&o.arn_prefix, &op.bucket)),
                },
                object: Object {
                    key,
                    size,
                    e_tag: etag,
                    version_id: (!version_id.is_empty()).then_some(version_id),
                    sequencer: Disp(Hex18(seq)),
                },
            },
            event_id: (profile == Profile::Ceph).then(id),
            opaque_data: (profile == Profile::Ceph).then_some(""),
            source: (profile == Profile::Minio).then_some(Source {
                host: ip,
                port: "",
                user_agent: "fsfeed",
            }),
            fsfeed_event_data: Ext {
                seq: event.seq,
                sub,
                event_id: id(),
                txid: op.txid,
                op: if resync { "resync" } else { op.kind_name() },
                layout: op.layout_enum().name(),
                object_id: expansion.and_then(|x| x.object_id).or(op.object_id),
                expanded_from: expansion.map(|_| op.kind_name()),
                is_directory: is_dir,
                is_recursive: recursive,
                is_overwrite: match &op.kind {
                    Some(Kind::CreateFile(c)) => Some(c.overwrite),
                    _ => None,
                },
                rename_from_key: from_key,
                raw_key,
                resync: resync.then_some(true),
            },
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct S3Record<'a> {
    event_version: &'static str,
    event_source: &'a str,
    aws_region: &'a str,
    event_time: Disp<TimeMs>,
    event_name: &'static str,
    user_identity: Principal<'a>,
    request_parameters: RequestParameters<'a>,
    response_elements: ResponseElements<'a>,
    s3: S3Entity<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Disp<EventId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opaque_data: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'a>>,
    fsfeed_event_data: Ext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Principal<'a> {
    principal_id: &'a str,
}

#[derive(Serialize)]
struct RequestParameters<'a> {
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
}

#[derive(Serialize)]
struct ResponseElements<'a> {
    #[serde(rename = "x-amz-request-id")]
    request_id: Disp<ReqId<'a>>,
    #[serde(rename = "x-amz-id-2")]
    id2: Disp<EventId>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct S3Entity<'a> {
    s3_schema_version: &'static str,
    configuration_id: &'a str,
    bucket: Bucket<'a>,
    object: Object<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bucket<'a> {
    name: &'a str,
    owner_identity: Principal<'a>,
    arn: Disp<Arn<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<'a> {
    key: Disp<KeyOut<'a>>,
    size: u64,
    #[serde(rename = "eTag")]
    e_tag: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
    sequencer: Disp<Hex18>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Source<'a> {
    host: &'a str,
    port: &'static str,
    user_agent: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ext<'a> {
    seq: u64,
    sub: u32,
    event_id: Disp<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    txid: Option<u64>,
    op: &'a str,
    layout: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expanded_from: Option<&'a str>,
    is_directory: bool,
    is_recursive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_overwrite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rename_from_key: Option<&'a str>,
    raw_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync: Option<bool>,
}

impl Renderer for S3 {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn render_to(&self, record: &Record, out: &mut Vec<u8>) -> bool {
        self.write_record(record, out)
    }

    fn render(&self, record: &Record) -> Option<Value> {
        self.record(
            &record.event,
            record.position.sub,
            record.resync,
            record.expansion.as_ref(),
        )
    }
}

/// `{"Records":[...]}` around rendered records.
pub fn message(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_per_profile() {
        let k = "a b/c+d=e:f%g/ü~*.txt";
        assert_eq!(
            encode_key(Profile::Aws, k),
            "a+b/c%2Bd%3De%3Af%25g/%C3%BC%7E*.txt"
        );
        assert_eq!(encode_key(Profile::Ceph, k), k);
        assert_eq!(
            encode_key(Profile::Minio, k),
            "a+b%2Fc%2Bd%3De%3Af%25g%2F%C3%BC~%2A.txt"
        );
    }

    #[test]
    fn times_have_milliseconds_and_z() {
        assert_eq!(
            rfc3339_ms(1_767_225_600_123_456),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn event_name_globs() {
        assert!(event_name_matches(
            "s3:ObjectCreated:*",
            "ObjectCreated:Put"
        ));
        assert!(event_name_matches(
            "ObjectRemoved:Delete",
            "ObjectRemoved:Delete"
        ));
        assert!(!event_name_matches(
            "s3:ObjectRemoved:*",
            "ObjectCreated:Put"
        ));
        assert!(event_name_matches("*", "ObjectAcl:Put"));
    }
}
