//! S3 event notifications (`ARCHITECTURE.md`, "Renderers").
//!
//! Each record renders to one object of the `"Records"` array of an S3 event
//! message, in the shape AWS documents and that real consumers parse
//! (`aws_lambda_events::s3::S3EventRecord`, aws-lambda-powertools' `S3Model`,
//! `@types/aws-lambda`'s `S3EventRecord`): `eventName` without the `s3:`
//! prefix, `eventTime` RFC 3339 with milliseconds and `Z` (the op's time,
//! never the time of rendering), `userIdentity`, `requestParameters`,
//! `responseElements`, `s3.{s3SchemaVersion, configurationId, bucket, object}`
//! always present; `object.size` (an integer) and `object.eTag` only where
//! the ledger knows them (never a made-up 0 or `""`): from the op (a
//! commit, a truncate's size) or, on an op that names neither in an
//! object-store or legacy bucket (ACL changes, times, attributes), from the
//! live index as the event carries it; a resync record of such a bucket's
//! file carries the index's size, eTag and version. A delete, as on AWS,
//! and an expanded record or an FSO resync record of a file carry neither; a directory
//! marker `dir/` is the zero-byte object it is, with the MD5 of nothing as
//! eTag, whether a `create_directory`, an expansion or a resync writes it);
//! an expanded or resync record of a file created and never committed has
//! no S3 form (it is no object yet), so replaying the expanded records
//! gives what a resync lists;
//! `versionId` only when the op has one; `sequencer` the seq as 18
//! uppercase hex digits.
//!
//! # Event names
//!
//! The table is [`crate::event_name`]'s. By default a profile writes only
//! the names its server sends (`ObjectCreated:*`, `ObjectRemoved:Delete`);
//! a record whose name is one of fsfeed's extensions has no S3 form unless
//! [`S3Options::extensions`] is set, and a cursor in S3 format skips it.
//! A rename reaches a consumer without extensions as one remove and one
//! create per object when its cursor expands renames.
//!
//! # Profiles
//!
//! | | `aws` (default) | `ceph` | `minio` |
//! |---|---|---|---|
//! | `eventVersion` | `2.1` | `2.2` | `2.0` |
//! | `eventSource` | `aws:s3` | `ceph:s3` | `minio:s3` |
//! | `object.key` | form-urlencoded per `/` segment (space `+`, `/` kept) | raw | Go `url.QueryEscape` of the whole key (`/` as `%2F`) |
//! | extra | | `eventId` (top level, as Ceph writes it), `opaqueData` | `source` |
//!
//! The raw key and everything fsfeed knows beyond S3 sit in one extension
//! map, `fsfeedEventData` (seq, sub, eventId, txid, op, layout, objectId,
//! isDirectory, isRecursive, isOverwrite, renameFromKey, rawKey, resync).
//! `eventId` is the record's [`crate::EventId`], stable across redeliveries:
//! `Cursor::ack` of it commits the position after the record.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{json, Value};

use super::Renderer;
use crate::error::{Error, Result};
use crate::event_id::EventId;
use crate::event_name;
use crate::expand::{Action, Expansion};
use crate::op::Kind;
use crate::proto::Event;
use crate::read::{Position, Record};

/// The eTag of a zero-byte object (a directory marker `dir/`): the MD5 of nothing.
pub const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Which S3 implementation's dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// Settings of the S3 renderer. As JSON (the bindings' settings objects):
/// `{"profile", "region", "event_source", "configuration_id",
/// "bucket_owner", "arn_prefix", "extensions"}`, every field optional.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Also write fsfeed's own event kinds (renames, truncates, ACL and
    /// metadata changes, bucket creates and deletes; see
    /// [`crate::event_name::EXTENSIONS`]). Off: only what the profile's
    /// server sends.
    pub extensions: bool,
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
            extensions: false,
        }
    }
}

/// Bytes that need no percent-encoding: ASCII alphanumerics plus `keep`.
const fn safe_table(keep: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < keep.len() {
        t[keep[i] as usize] = true;
        i += 1;
    }
    t
}

/// Java's `URLEncoder` (form encoding) within one `/`-separated segment.
static AWS_SAFE: [bool; 256] = safe_table(b"-_.*");
/// Go's `url.QueryEscape`.
static MINIO_SAFE: [bool; 256] = safe_table(b"-_.~");
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encode `s`, keeping bytes marked in `safe` (and `/` when
/// `keep_slash`), space as `+`. Runs of safe bytes are copied in one go.
fn query_encode(s: &str, safe: &[bool; 256], keep_slash: bool, out: &mut String) {
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if safe[b as usize] || (keep_slash && b == b'/') {
            continue;
        }
        if run < i {
            out.push_str(&s[run..i]);
        }
        run = i + 1;
        if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    // A non-empty run always starts at a char boundary: every non-ASCII byte
    // is escaped, so a run starts after an ASCII byte or a whole character.
    if run < bytes.len() {
        out.push_str(&s[run..]);
    }
}

/// The key as the profile writes it in `object.key`.
pub fn encode_key(profile: Profile, key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    encode_key_into(profile, key, &mut out);
    out
}

fn encode_key_into(profile: Profile, key: &str, out: &mut String) {
    match profile {
        Profile::Ceph => out.push_str(key),
        // application/x-www-form-urlencoded (Java's URLEncoder), per segment:
        // the same as encoding the whole key with `/` kept.
        Profile::Aws => query_encode(key, &AWS_SAFE, true, out),
        // Go's url.QueryEscape of the whole name.
        Profile::Minio => query_encode(key, &MINIO_SAFE, false, out),
    }
}

/// Microseconds since the epoch as RFC 3339 with milliseconds and `Z`.
pub fn rfc3339_ms(time_us: i64) -> String {
    time_ms(time_us).as_str().to_string()
}

/// A short string built on the stack, serialised as a JSON string.
#[derive(Clone, Copy)]
struct Small<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Small<N> {
    fn new() -> Self {
        Small {
            buf: [0; N],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// `value` as exactly `width` digits in `base` (upper-case hex).
    fn digits(&mut self, mut value: u64, width: usize, base: u64) {
        let end = self.len + width;
        for i in (self.len..end).rev() {
            self.buf[i] = HEX[(value % base) as usize];
            value /= base;
        }
        self.len = end;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, letters and punctuation are ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> Serialize for Small<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// RFC 3339 with milliseconds and `Z` from µs since the epoch: civil date
/// from days (Howard Hinnant's algorithm), no formatter machinery. Years
/// outside 0..=9999 are clamped to the range's ends.
fn time_ms(time_us: i64) -> Small<24> {
    let ms = time_us.div_euclid(1000);
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (year, month, day, ms_of_day) = match year {
        y if y < 0 => (0, 1, 1, 0),
        y if y > 9999 => (9999, 12, 31, 86_399_999),
        y => (y, month, day, ms_of_day),
    };
    let mut s = Small::new();
    s.digits(year as u64, 4, 10);
    s.push(b"-");
    s.digits(month as u64, 2, 10);
    s.push(b"-");
    s.digits(day as u64, 2, 10);
    s.push(b"T");
    s.digits((ms_of_day / 3_600_000) as u64, 2, 10);
    s.push(b":");
    s.digits((ms_of_day / 60_000 % 60) as u64, 2, 10);
    s.push(b":");
    s.digits((ms_of_day / 1000 % 60) as u64, 2, 10);
    s.push(b".");
    s.digits((ms_of_day % 1000) as u64, 3, 10);
    s.push(b"Z");
    s
}

/// `prefix` + the event id of (seq, sub).
fn event_id_of(prefix: &[u8], seq: u64, sub: u32) -> Small<40> {
    let mut s = Small::new();
    s.push(prefix);
    s.push(&EventId::new(Position::new(seq, sub)).to_bytes());
    s
}

/// `value` as `width` upper-case hex digits (at least; wider values keep all
/// their digits).
fn hex(value: u64, width: usize) -> Small<20> {
    let width = width.max((64 - value.leading_zeros() as usize).div_ceil(4));
    let mut s = Small::new();
    s.digits(value, width, 16);
    s
}

/// A string that is either borrowed or built for this record.
#[derive(Serialize)]
#[serde(untagged)]
enum Text<'a, const N: usize> {
    Given(&'a str),
    Built(Small<N>),
}

/// ARN prefix + bucket.
struct Arn<'a>(&'a str, &'a str);

impl Serialize for Arn<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}{}", self.0, self.1))
    }
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

    /// The event name of a record in this profile, or `None` when it has no
    /// S3 form here (no name at all, or an extension without `extensions`).
    fn name_of(
        &self,
        event: &Event,
        resync: bool,
        expansion: Option<&Expansion>,
    ) -> Option<&'static str> {
        let name = match expansion {
            // Not in the S3 view: a file created and never committed.
            Some(x) if !x.listed => return None,
            Some(x) => event_name::expanded(x.action),
            None if resync => match event.op.as_ref()?.kind {
                Some(Kind::CreateFile(_)) => return None,
                _ => "ObjectCreated:Put",
            },
            None => event_name::of_op(event.op.as_ref()?)?,
        };
        // AWS sends `ObjectAcl:Put` with the object's size and eTag: a
        // record that has both (from the live index) is one it sends.
        let aws_acl = self.options.profile == Profile::Aws
            && name == "ObjectAcl:Put"
            && event.size.is_some()
            && !event.etag.is_empty();
        (self.options.extensions || event_name::standard(name) || aws_acl).then_some(name)
    }

    fn typed<'a>(
        &'a self,
        event: &'a Event,
        sub: u32,
        resync: bool,
        expansion: Option<&'a Expansion>,
    ) -> Option<S3Record<'a>> {
        let op = event.op.as_ref()?;
        let name = self.name_of(event, resync, expansion)?;
        let o = &self.options;
        let profile = o.profile;
        let is_dir = match expansion {
            Some(x) => x.is_dir,
            None => op.is_dir || matches!(op.kind, Some(Kind::CreateDirectory(_))),
        };
        let (raw_key, from_key) = match (expansion, &op.kind) {
            (Some(x), _) => (x.key.as_str(), x.from_key.as_deref()),
            (None, Some(Kind::Rename(_))) => (event.to_path.as_str(), Some(event.path.as_str())),
            _ => (event.path.as_str(), None),
        };
        let slash = is_dir && !raw_key.is_empty() && !raw_key.ends_with('/');
        let key: Cow<'a, str> = if profile == Profile::Ceph && !slash {
            Cow::Borrowed(raw_key)
        } else {
            let mut k = String::with_capacity(raw_key.len() + raw_key.len() / 4 + 4);
            encode_key_into(profile, raw_key, &mut k);
            if slash {
                encode_key_into(profile, "/", &mut k);
            }
            Cow::Owned(k)
        };
        // What the op says, what a zero-byte directory marker is, or what
        // the event carries from the live index (object-store and legacy
        // buckets: `Event.size`, `Event.etag`); anything else is left out.
        let (size, etag, version_id) = match (&op.kind, expansion) {
            (_, Some(x)) if x.is_dir && x.action == Action::Create => (Some(0), EMPTY_ETAG, ""),
            (_, Some(_)) => (None, "", ""),
            (Some(Kind::CreateDirectory(_)), _) => (Some(0), EMPTY_ETAG, ""),
            (Some(Kind::Commit(c)), _) => (c.size, c.etag.as_str(), c.version_id.as_str()),
            _ if resync => (None, "", ""),
            (Some(Kind::Truncate(t)), _) => (Some(t.size), "", ""),
            _ => (event.size, event.etag.as_str(), ""),
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
        let request_id = if op.request_id.is_empty() {
            Text::Built(hex(seq, 16))
        } else {
            Text::Given(op.request_id.as_str())
        };
        let id = event_id_of(b"", seq, sub);
        let recursive = match &op.kind {
            Some(Kind::Delete(d)) => d.recursive && expansion.is_none(),
            Some(Kind::CreateFile(c)) => c.recursive,
            _ => false,
        };
        let (version, source) = match profile {
            // AWS writes 2.3 for object ACL events (and 2.1 for the rest).
            Profile::Aws if name == "ObjectAcl:Put" => ("2.3", "aws:s3"),
            Profile::Aws => ("2.1", "aws:s3"),
            Profile::Ceph => ("2.2", "ceph:s3"),
            Profile::Minio => ("2.0", "minio:s3"),
        };
        Some(S3Record {
            event_version: version,
            event_source: o.event_source.as_deref().unwrap_or(source),
            aws_region: &o.region,
            event_time: time_ms(op.time_us),
            event_name: name,
            user_identity: Principal {
                principal_id: principal,
            },
            request_parameters: RequestParameters {
                source_ip_address: ip,
            },
            response_elements: ResponseElements {
                request_id,
                id2: event_id_of(b"fsfeed/", seq, sub),
            },
            s3: S3Entity {
                s3_schema_version: "1.0",
                configuration_id: &o.configuration_id,
                bucket: Bucket {
                    name: &op.bucket,
                    owner_identity: Principal {
                        principal_id: &o.bucket_owner,
                    },
                    arn: Arn(&o.arn_prefix, &op.bucket),
                },
                object: Object {
                    key,
                    size,
                    e_tag: (!etag.is_empty()).then_some(etag),
                    version_id: (!version_id.is_empty()).then_some(version_id),
                    sequencer: hex(seq, 18),
                },
            },
            event_id: (profile == Profile::Ceph).then_some(id),
            opaque_data: (profile == Profile::Ceph).then_some(""),
            source: (profile == Profile::Minio).then_some(Source {
                host: ip,
                port: "",
                user_agent: "fsfeed",
            }),
            fsfeed_event_data: Ext {
                seq: event.seq,
                sub,
                event_id: id,
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
    event_time: Small<24>,
    event_name: &'static str,
    user_identity: Principal<'a>,
    request_parameters: RequestParameters<'a>,
    response_elements: ResponseElements<'a>,
    s3: S3Entity<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Small<40>>,
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
    request_id: Text<'a, 20>,
    #[serde(rename = "x-amz-id-2")]
    id2: Small<40>,
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
    arn: Arn<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<'a> {
    key: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
    e_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
    sequencer: Small<20>,
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
    event_id: Small<40>,
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

    fn has_form(&self, record: &Record) -> bool {
        record.event.op.is_some()
            && self
                .name_of(&record.event, record.resync, record.expansion.as_ref())
                .is_some()
    }

    fn render_with(&self, record: &Record, f: &mut dyn FnMut(&dyn erased_serde::Serialize)) {
        if let Some(r) = self.typed(
            &record.event,
            record.position.sub,
            record.resync,
            record.expansion.as_ref(),
        ) {
            f(&r);
        }
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
    fn times_agree_with_the_time_crate() {
        // One instant in nearly every day of 1970..2100, at a time of day
        // that shifts by about an hour each step, and its neighbours.
        let mut t: i64 = 1;
        let mut checked = 0;
        while t < 4_102_444_800_000_000 {
            for us in [t, t - 1, t + 999_999] {
                let d = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000).unwrap();
                let want = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    d.year(),
                    d.month() as u8,
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second(),
                    d.millisecond()
                );
                assert_eq!(rfc3339_ms(us), want, "{us}");
                checked += 1;
            }
            t += 86_400_000_000 + 3_723_456_789;
        }
        assert!(checked > 100_000);
        assert_eq!(rfc3339_ms(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            event_id_of(b"", 0xABC, 7).as_str(),
            "0000000000000ABC-00000007"
        );
        assert_eq!(hex(u64::MAX, 18).as_str(), "00FFFFFFFFFFFFFFFF");
    }
}
