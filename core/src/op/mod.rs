//! The operation model: what a producer appends (`ARCHITECTURE.md`, "The ladder").
//!
//! [`Op`] is the prost message `fsfeed.v1.Op`; this module adds builders,
//! the canonical JSON form shared by the CLI and the bindings, and the
//! stateless validation that runs before an op reaches the writer.
//!
//! # Canonical JSON
//!
//! One flat object per op. `"kind"` is one of [`KINDS`]; the other fields sit
//! beside it: `volume`, `bucket`, `key`, `layout` (`obs` default, `fso`,
//! `legacy`), `time_us` (required, microseconds since the epoch), `txid`,
//! `parent_id` + `name`, `object_id`, `is_dir`, `principal`, `request_id`,
//! `source_ip`, `source` (what produced the op: `fsfeed watch` writes
//! `inotify`, `scan` or `resync`), and the kind's own fields:
//!
//! | kind | fields |
//! |---|---|
//! | `create_file` | `overwrite`, `recursive`, `replication`, `owner`, `group`, `perms` |
//! | `create_directory` | `owner`, `group`, `perms` |
//! | `commit` | `size`, `etag`, `version_id`, `hsync`, `method` (`put`, `post`, `copy`, `complete_multipart_upload`), `mtime` (milliseconds, the file's modification time) |
//! | `append` | `new_block` |
//! | `truncate` | `size` (required) |
//! | `delete` | `recursive` |
//! | `rename` | `to_key`, or `to_parent_id` + `to_name` |
//! | `acl_add`, `acl_remove`, `acl_set` | `acls`: `[{"type","name","rights":[..],"scope"}]` |
//! | `set_times` | `mtime`, `atime` (milliseconds, as HDFS) |
//! | `set_attr` | one group of: `replication`; `owner`/`group`; `perms`; `xattrs` / `xattrs_removed` |
//! | `volume_create`, `volume_delete`, `bucket_create`, `bucket_delete` | none |
//!
//! `perms` is an integer mode (420 for 0644). A field that does not belong to
//! the kind, or an unknown field, is an `invalid_op` error; JSON that does
//! not parse is `invalid_json`; an unknown kind is `unknown_kind`.

use crate::error::{Error, Result};

mod json;
mod validate;

pub use crate::proto::op::Kind;
pub use crate::proto::{
    Acl, AclChange, Append, Commit, CreateDirectory, CreateFile, Delete, Empty, Layout, Op, Rename,
    SetAttr, SetTimes, Truncate,
};
pub(crate) use json::OpJson;
pub use validate::{validate, validate_key};

/// S3's limit on key length, in bytes; fsfeed applies it to every layout.
pub const MAX_KEY_BYTES: usize = 1024;
/// Limit on volume and bucket names, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Every op kind, in canonical (snake_case) spelling.
pub const KINDS: &[&str] = &[
    "create_file",
    "create_directory",
    "commit",
    "append",
    "truncate",
    "delete",
    "rename",
    "acl_add",
    "acl_remove",
    "acl_set",
    "set_times",
    "set_attr",
    "volume_create",
    "volume_delete",
    "bucket_create",
    "bucket_delete",
];

const ACL_TYPES: &[&str] = &["user", "group", "mask", "other", "world", "anonymous"];
const ACL_RIGHTS: &[&str] = &[
    "read",
    "write",
    "execute",
    "create",
    "list",
    "delete",
    "read_acl",
    "write_acl",
    "all",
    "none",
];
const ACL_SCOPES: &[&str] = &["access", "default"];
const COMMIT_METHODS: &[&str] = &["put", "post", "copy", "complete_multipart_upload"];

/// The canonical name of a kind.
pub fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::CreateFile(_) => "create_file",
        Kind::CreateDirectory(_) => "create_directory",
        Kind::Commit(_) => "commit",
        Kind::Append(_) => "append",
        Kind::Truncate(_) => "truncate",
        Kind::Delete(_) => "delete",
        Kind::Rename(_) => "rename",
        Kind::AclAdd(_) => "acl_add",
        Kind::AclRemove(_) => "acl_remove",
        Kind::AclSet(_) => "acl_set",
        Kind::SetTimes(_) => "set_times",
        Kind::SetAttr(_) => "set_attr",
        Kind::VolumeCreate(_) => "volume_create",
        Kind::VolumeDelete(_) => "volume_delete",
        Kind::BucketCreate(_) => "bucket_create",
        Kind::BucketDelete(_) => "bucket_delete",
    }
}

/// An RFC 3339 time (with its offset) as microseconds since the epoch;
/// `None` when `text` is not one.
pub fn parse_time_us(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1000) as i64)
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl Layout {
    /// Canonical JSON name: `obs`, `fso`, `legacy`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Obs => "obs",
            Layout::Fso => "fso",
            Layout::Legacy => "legacy",
        }
    }

    /// Parse a canonical name (case-insensitive).
    pub fn parse(s: &str) -> Option<Layout> {
        match s.to_ascii_lowercase().as_str() {
            "obs" => Some(Layout::Obs),
            "fso" => Some(Layout::Fso),
            "legacy" => Some(Layout::Legacy),
            _ => None,
        }
    }
}

impl Acl {
    /// An ACL entry granting `rights` to `name` of `type` in the access scope.
    pub fn new(kind: &str, name: &str, rights: &[&str]) -> Acl {
        Acl {
            r#type: kind.to_string(),
            name: name.to_string(),
            rights: rights.iter().map(|r| r.to_string()).collect(),
            scope: "access".to_string(),
        }
    }
}

// ---------------------------------------------------------------- builders

impl Op {
    fn object(kind: Kind, volume: &str, bucket: &str, key: &str) -> Op {
        Op {
            time_us: now_us(),
            volume: volume.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            kind: Some(kind),
            ..Default::default()
        }
    }

    /// A file created (opened for write). Its close is a [`Op::commit`].
    pub fn create_file(volume: &str, bucket: &str, key: &str) -> Op {
        Op::object(Kind::CreateFile(CreateFile::default()), volume, bucket, key)
    }

    /// A directory created (FSO) or a `dir/` marker object (OBS).
    pub fn create_directory(volume: &str, bucket: &str, key: &str) -> Op {
        let mut op = Op::object(
            Kind::CreateDirectory(CreateDirectory::default()),
            volume,
            bucket,
            key,
        );
        op.is_dir = true;
        op
    }

    /// A written file closed, or an object put, with its size and etag.
    pub fn commit(volume: &str, bucket: &str, key: &str, size: u64, etag: &str) -> Op {
        let commit = Commit {
            size: Some(size),
            etag: etag.to_string(),
            ..Default::default()
        };
        Op::object(Kind::Commit(commit), volume, bucket, key)
    }

    /// An append to an existing file.
    pub fn append(volume: &str, bucket: &str, key: &str, new_block: bool) -> Op {
        Op::object(Kind::Append(Append { new_block }), volume, bucket, key)
    }

    /// A file truncated to `size` bytes.
    pub fn truncate(volume: &str, bucket: &str, key: &str, size: u64) -> Op {
        Op::object(Kind::Truncate(Truncate { size }), volume, bucket, key)
    }

    /// An object or directory deleted.
    pub fn delete(volume: &str, bucket: &str, key: &str, recursive: bool) -> Op {
        Op::object(Kind::Delete(Delete { recursive }), volume, bucket, key)
    }

    /// A rename of `key` to `to_key` within the bucket.
    pub fn rename(volume: &str, bucket: &str, key: &str, to_key: &str) -> Op {
        let rename = Rename {
            to_key: to_key.to_string(),
            ..Default::default()
        };
        Op::object(Kind::Rename(rename), volume, bucket, key)
    }

    /// ACL entries added.
    pub fn acl_add(volume: &str, bucket: &str, key: &str, acls: Vec<Acl>) -> Op {
        Op::object(Kind::AclAdd(AclChange { acls }), volume, bucket, key)
    }

    /// ACL entries removed.
    pub fn acl_remove(volume: &str, bucket: &str, key: &str, acls: Vec<Acl>) -> Op {
        Op::object(Kind::AclRemove(AclChange { acls }), volume, bucket, key)
    }

    /// The ACL replaced.
    pub fn acl_set(volume: &str, bucket: &str, key: &str, acls: Vec<Acl>) -> Op {
        Op::object(Kind::AclSet(AclChange { acls }), volume, bucket, key)
    }

    /// Modification and/or access time set (milliseconds).
    pub fn set_times(
        volume: &str,
        bucket: &str,
        key: &str,
        mtime: Option<i64>,
        atime: Option<i64>,
    ) -> Op {
        Op::object(
            Kind::SetTimes(SetTimes { mtime, atime }),
            volume,
            bucket,
            key,
        )
    }

    /// Attributes set: fill exactly one group of the [`SetAttr`].
    pub fn set_attr(volume: &str, bucket: &str, key: &str, attr: SetAttr) -> Op {
        Op::object(Kind::SetAttr(attr), volume, bucket, key)
    }

    /// A volume created.
    pub fn volume_create(volume: &str) -> Op {
        Op::object(Kind::VolumeCreate(Empty {}), volume, "", "")
    }

    /// A volume deleted.
    pub fn volume_delete(volume: &str) -> Op {
        Op::object(Kind::VolumeDelete(Empty {}), volume, "", "")
    }

    /// A bucket created.
    pub fn bucket_create(volume: &str, bucket: &str) -> Op {
        Op::object(Kind::BucketCreate(Empty {}), volume, bucket, "")
    }

    /// A bucket deleted.
    pub fn bucket_delete(volume: &str, bucket: &str) -> Op {
        Op::object(Kind::BucketDelete(Empty {}), volume, bucket, "")
    }

    /// Set the op time (microseconds since the epoch). Builders default to now.
    pub fn at(mut self, time_us: i64) -> Op {
        self.time_us = time_us;
        self
    }

    /// Set the producer's transaction id.
    pub fn with_txid(mut self, txid: u64) -> Op {
        self.txid = Some(txid);
        self
    }

    /// Set the bucket layout.
    pub fn with_layout(mut self, layout: Layout) -> Op {
        self.layout = layout as i32;
        self
    }

    /// Mark the object as a directory.
    pub fn dir(mut self) -> Op {
        self.is_dir = true;
        self
    }

    /// Say what produced the op (`Op.source`).
    pub fn from_source(mut self, source: &str) -> Op {
        self.source = source.to_string();
        self
    }

    /// Set who did it, the request id and the client address (S3 rendering).
    pub fn by(mut self, principal: &str, request_id: &str, source_ip: &str) -> Op {
        self.principal = principal.to_string();
        self.request_id = request_id.to_string();
        self.source_ip = source_ip.to_string();
        self
    }

    /// The canonical name of this op's kind (`""` when it has none).
    pub fn kind_name(&self) -> &'static str {
        self.kind.as_ref().map(kind_name).unwrap_or("")
    }

    /// The layout, with unknown numbers read as OBS.
    pub fn layout_enum(&self) -> Layout {
        Layout::try_from(self.layout).unwrap_or(Layout::Obs)
    }

    /// Parse one op from its canonical JSON text. `index` is used in errors.
    pub fn from_json(text: &str, index: usize) -> Result<Op> {
        let json: OpJson = serde_json::from_str(text).map_err(|e| json_error(e, index))?;
        json.into_op(index)
    }

    /// Parse one op from a JSON value in canonical form.
    pub fn from_json_value(value: serde_json::Value, index: usize) -> Result<Op> {
        let json: OpJson = serde_json::from_value(value).map_err(|e| json_error(e, index))?;
        json.into_op(index)
    }

    /// The canonical JSON value of this op.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(OpJson::from_op(self)).expect("op JSON is always serialisable")
    }
}

fn json_error(e: serde_json::Error, index: usize) -> Error {
    match e.classify() {
        serde_json::error::Category::Data => Error::InvalidOp {
            index,
            reason: e.to_string(),
        },
        _ => Error::InvalidJson {
            index,
            reason: e.to_string(),
        },
    }
}
