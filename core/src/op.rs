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
//! `source_ip`, and the kind's own fields:
//!
//! | kind | fields |
//! |---|---|
//! | `create_file` | `overwrite`, `recursive`, `replication`, `owner`, `group`, `perms` |
//! | `create_directory` | `owner`, `group`, `perms` |
//! | `commit` | `size`, `etag`, `version_id`, `hsync`, `method` (`put`, `post`, `copy`, `complete_multipart_upload`) |
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

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::proto::op::Kind;
pub use crate::proto::{
    Acl, AclChange, Append, Commit, CreateDirectory, CreateFile, Delete, Empty, Layout, Op, Rename,
    SetAttr, SetTimes, Truncate,
};

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

// ---------------------------------------------------------------- JSON form

/// An ACL entry in canonical JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclJson {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    rights: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    scope: String,
}

/// The flat canonical JSON object of an op.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpJson {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    txid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_dir: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
    // kind-specific fields
    #[serde(default, skip_serializing_if = "Option::is_none")]
    overwrite: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recursive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replication: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    perms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hsync: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_block: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_parent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acls: Option<Vec<AclJson>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    atime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xattrs: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xattrs_removed: Option<Vec<String>>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn acls_from_json(acls: Vec<AclJson>) -> Vec<Acl> {
    acls.into_iter()
        .map(|a| Acl {
            r#type: a.kind,
            name: a.name,
            rights: a.rights,
            scope: if a.scope.is_empty() {
                "access".to_string()
            } else {
                a.scope
            },
        })
        .collect()
}

fn acls_to_json(acls: &[Acl]) -> Vec<AclJson> {
    acls.iter()
        .map(|a| AclJson {
            kind: a.r#type.clone(),
            name: a.name.clone(),
            rights: a.rights.clone(),
            scope: a.scope.clone(),
        })
        .collect()
}

impl OpJson {
    /// Names of the kind-specific fields that are set.
    fn kind_fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! present {
            ($($f:ident),*) => { $( if self.$f.is_some() { v.push(stringify!($f)); } )* };
        }
        present!(
            overwrite,
            recursive,
            replication,
            owner,
            group,
            perms,
            size,
            etag,
            version_id,
            hsync,
            method,
            new_block,
            to_key,
            to_parent_id,
            to_name,
            acls,
            mtime,
            atime,
            xattrs,
            xattrs_removed
        );
        v
    }

    fn into_op(self, index: usize) -> Result<Op> {
        let allowed: &[&str] = match self.kind.as_str() {
            "create_file" => &[
                "overwrite",
                "recursive",
                "replication",
                "owner",
                "group",
                "perms",
            ],
            "create_directory" => &["owner", "group", "perms"],
            "commit" => &["size", "etag", "version_id", "hsync", "method"],
            "append" => &["new_block"],
            "truncate" => &["size"],
            "delete" => &["recursive"],
            "rename" => &["to_key", "to_parent_id", "to_name"],
            "acl_add" | "acl_remove" | "acl_set" => &["acls"],
            "set_times" => &["mtime", "atime"],
            "set_attr" => &[
                "replication",
                "owner",
                "group",
                "perms",
                "xattrs",
                "xattrs_removed",
            ],
            "volume_create" | "volume_delete" | "bucket_create" | "bucket_delete" => &[],
            other => {
                return Err(Error::UnknownKind {
                    index,
                    kind: other.to_string(),
                })
            }
        };
        if let Some(f) = self
            .kind_fields()
            .into_iter()
            .find(|f| !allowed.contains(f))
        {
            return Err(Error::InvalidOp {
                index,
                reason: format!("field `{f}` does not apply to kind `{}`", self.kind),
            });
        }
        let layout = match &self.layout {
            None => Layout::Obs,
            Some(l) => Layout::parse(l).ok_or_else(|| Error::InvalidOp {
                index,
                reason: format!("unknown layout {l:?} (obs, fso, legacy)"),
            })?,
        };
        let time_us = self.time_us.ok_or_else(|| Error::InvalidOp {
            index,
            reason: "`time_us` is required (microseconds since the epoch)".into(),
        })?;
        let kind = match self.kind.as_str() {
            "create_file" => Kind::CreateFile(CreateFile {
                overwrite: self.overwrite.unwrap_or(false),
                recursive: self.recursive.unwrap_or(false),
                replication: self.replication,
                owner: self.owner.unwrap_or_default(),
                group: self.group.unwrap_or_default(),
                perms: self.perms,
            }),
            "create_directory" => Kind::CreateDirectory(CreateDirectory {
                owner: self.owner.unwrap_or_default(),
                group: self.group.unwrap_or_default(),
                perms: self.perms,
            }),
            "commit" => Kind::Commit(Commit {
                size: self.size,
                etag: self.etag.unwrap_or_default(),
                version_id: self.version_id.unwrap_or_default(),
                hsync: self.hsync.unwrap_or(false),
                method: self.method.unwrap_or_default(),
            }),
            "append" => Kind::Append(Append {
                new_block: self.new_block.unwrap_or(false),
            }),
            "truncate" => Kind::Truncate(Truncate {
                size: self.size.ok_or_else(|| Error::InvalidOp {
                    index,
                    reason: "truncate needs `size`".into(),
                })?,
            }),
            "delete" => Kind::Delete(Delete {
                recursive: self.recursive.unwrap_or(false),
            }),
            "rename" => Kind::Rename(Rename {
                to_key: self.to_key.unwrap_or_default(),
                to_parent_id: self.to_parent_id,
                to_name: self.to_name.unwrap_or_default(),
            }),
            "acl_add" => Kind::AclAdd(AclChange {
                acls: acls_from_json(self.acls.unwrap_or_default()),
            }),
            "acl_remove" => Kind::AclRemove(AclChange {
                acls: acls_from_json(self.acls.unwrap_or_default()),
            }),
            "acl_set" => Kind::AclSet(AclChange {
                acls: acls_from_json(self.acls.unwrap_or_default()),
            }),
            "set_times" => Kind::SetTimes(SetTimes {
                mtime: self.mtime,
                atime: self.atime,
            }),
            "set_attr" => Kind::SetAttr(SetAttr {
                replication: self.replication,
                owner: self.owner,
                group: self.group,
                perms: self.perms,
                xattrs: self.xattrs.unwrap_or_default(),
                xattrs_removed: self.xattrs_removed.unwrap_or_default(),
            }),
            "volume_create" => Kind::VolumeCreate(Empty {}),
            "volume_delete" => Kind::VolumeDelete(Empty {}),
            "bucket_create" => Kind::BucketCreate(Empty {}),
            _ => Kind::BucketDelete(Empty {}),
        };
        let op = Op {
            txid: self.txid,
            time_us,
            volume: self.volume.unwrap_or_default(),
            bucket: self.bucket.unwrap_or_default(),
            key: self.key.unwrap_or_default(),
            layout: layout as i32,
            parent_id: self.parent_id,
            name: self.name.unwrap_or_default(),
            object_id: self.object_id,
            is_dir: self.is_dir.unwrap_or(false),
            principal: self.principal.unwrap_or_default(),
            request_id: self.request_id.unwrap_or_default(),
            source_ip: self.source_ip.unwrap_or_default(),
            kind: Some(kind),
        };
        validate(&op, index)?;
        Ok(op)
    }

    pub(crate) fn from_op(op: &Op) -> OpJson {
        let mut j = OpJson {
            kind: op.kind_name().to_string(),
            txid: op.txid,
            time_us: Some(op.time_us),
            volume: non_empty(&op.volume),
            bucket: non_empty(&op.bucket),
            key: non_empty(&op.key),
            layout: Some(op.layout_enum().name().to_string()),
            parent_id: op.parent_id,
            name: non_empty(&op.name),
            object_id: op.object_id,
            is_dir: op.is_dir.then_some(true),
            principal: non_empty(&op.principal),
            request_id: non_empty(&op.request_id),
            source_ip: non_empty(&op.source_ip),
            ..Default::default()
        };
        match &op.kind {
            Some(Kind::CreateFile(c)) => {
                j.overwrite = Some(c.overwrite);
                j.recursive = Some(c.recursive);
                j.replication = c.replication;
                j.owner = non_empty(&c.owner);
                j.group = non_empty(&c.group);
                j.perms = c.perms;
            }
            Some(Kind::CreateDirectory(c)) => {
                j.owner = non_empty(&c.owner);
                j.group = non_empty(&c.group);
                j.perms = c.perms;
            }
            Some(Kind::Commit(c)) => {
                j.size = c.size;
                j.etag = non_empty(&c.etag);
                j.version_id = non_empty(&c.version_id);
                j.hsync = c.hsync.then_some(true);
                j.method = non_empty(&c.method);
            }
            Some(Kind::Append(a)) => j.new_block = Some(a.new_block),
            Some(Kind::Truncate(t)) => j.size = Some(t.size),
            Some(Kind::Delete(d)) => j.recursive = Some(d.recursive),
            Some(Kind::Rename(r)) => {
                j.to_key = non_empty(&r.to_key);
                j.to_parent_id = r.to_parent_id;
                j.to_name = non_empty(&r.to_name);
            }
            Some(Kind::AclAdd(a)) | Some(Kind::AclRemove(a)) | Some(Kind::AclSet(a)) => {
                j.acls = Some(acls_to_json(&a.acls))
            }
            Some(Kind::SetTimes(t)) => {
                j.mtime = t.mtime;
                j.atime = t.atime;
            }
            Some(Kind::SetAttr(s)) => {
                j.replication = s.replication;
                j.owner = s.owner.clone();
                j.group = s.group.clone();
                j.perms = s.perms;
                j.xattrs = (!s.xattrs.is_empty()).then(|| s.xattrs.clone());
                j.xattrs_removed = (!s.xattrs_removed.is_empty()).then(|| s.xattrs_removed.clone());
            }
            _ => {}
        }
        j
    }
}

// ---------------------------------------------------------------- validation

fn bad(index: usize, reason: impl Into<String>) -> Error {
    Error::InvalidOp {
        index,
        reason: reason.into(),
    }
}

/// Check a key (or rename target) for the given layout.
pub fn validate_key(key: &str, layout: Layout, index: usize) -> Result<()> {
    let err = |reason: String| Error::InvalidKey { index, reason };
    if key.is_empty() {
        return Err(err("key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(err(format!(
            "key is {} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(err("key holds a NUL byte".into()));
    }
    if layout == Layout::Fso {
        if key.starts_with('/') {
            return Err(err("FSO key starts with `/`".into()));
        }
        for seg in key.split('/') {
            match seg {
                "" => return Err(err("FSO key has an empty segment".into())),
                "." | ".." => return Err(err(format!("FSO key has a `{seg}` segment"))),
                _ => {}
            }
        }
    }
    Ok(())
}

fn validate_name(what: &str, name: &str, index: usize) -> Result<()> {
    if name.is_empty() {
        return Err(bad(index, format!("`{what}` is required")));
    }
    if name.len() > MAX_NAME_BYTES || name.contains('\0') || name.contains('/') {
        return Err(bad(
            index,
            format!("`{what}` must be 1..={MAX_NAME_BYTES} bytes without `/` or NUL"),
        ));
    }
    Ok(())
}

fn validate_acls(acls: &[Acl], index: usize, allow_empty: bool) -> Result<()> {
    if acls.is_empty() && !allow_empty {
        return Err(bad(index, "`acls` needs at least one entry"));
    }
    for a in acls {
        if !ACL_TYPES.contains(&a.r#type.as_str()) {
            return Err(bad(index, format!("unknown ACL type {:?}", a.r#type)));
        }
        if let Some(r) = a.rights.iter().find(|r| !ACL_RIGHTS.contains(&r.as_str())) {
            return Err(bad(index, format!("unknown ACL right {r:?}")));
        }
        if !ACL_SCOPES.contains(&a.scope.as_str()) {
            return Err(bad(index, format!("unknown ACL scope {:?}", a.scope)));
        }
    }
    Ok(())
}

fn validate_perms(perms: Option<u32>, index: usize) -> Result<()> {
    match perms {
        Some(p) if p > 0o7777 => Err(bad(index, format!("perms {p} is over 0o7777 (4095)"))),
        _ => Ok(()),
    }
}

/// Stateless validation of one op: everything that can be checked without
/// the ledger. `index` is the op's place in its batch, used in the error.
pub fn validate(op: &Op, index: usize) -> Result<()> {
    let kind = op
        .kind
        .as_ref()
        .ok_or_else(|| bad(index, "op has no kind"))?;
    if op.time_us <= 0 {
        return Err(bad(
            index,
            "`time_us` must be > 0 (microseconds since the epoch)",
        ));
    }
    if Layout::try_from(op.layout).is_err() {
        return Err(bad(index, format!("unknown layout number {}", op.layout)));
    }
    if !op.source_ip.is_empty() && op.source_ip.parse::<IpAddr>().is_err() {
        return Err(bad(
            index,
            format!("`source_ip` {:?} is not an IP address", op.source_ip),
        ));
    }
    match kind {
        Kind::VolumeCreate(_) | Kind::VolumeDelete(_) => {
            validate_name("volume", &op.volume, index)?;
            if !op.bucket.is_empty() || !op.key.is_empty() {
                return Err(bad(index, "volume ops take no `bucket` or `key`"));
            }
            return Ok(());
        }
        Kind::BucketCreate(_) | Kind::BucketDelete(_) => {
            if !op.volume.is_empty() {
                validate_name("volume", &op.volume, index)?;
            }
            validate_name("bucket", &op.bucket, index)?;
            if !op.key.is_empty() {
                return Err(bad(index, "bucket ops take no `key`"));
            }
            return Ok(());
        }
        _ => {}
    }
    if !op.volume.is_empty() {
        validate_name("volume", &op.volume, index)?;
    }
    validate_name("bucket", &op.bucket, index)?;
    let layout = op.layout_enum();
    match (op.key.is_empty(), op.parent_id) {
        (false, None) => {
            validate_key(&op.key, layout, index)?;
            if !op.name.is_empty() {
                return Err(bad(index, "`name` goes with `parent_id`, not with `key`"));
            }
        }
        (true, Some(_)) => {
            if layout != Layout::Fso {
                return Err(bad(index, "`parent_id` + `name` need the FSO layout"));
            }
            validate_name("name", &op.name, index).map_err(|_| Error::InvalidKey {
                index,
                reason: "`name` must be one non-empty path segment".into(),
            })?;
            if op.name == "." || op.name == ".." {
                return Err(Error::InvalidKey {
                    index,
                    reason: format!("`name` {:?} is not allowed", op.name),
                });
            }
        }
        (false, Some(_)) => return Err(bad(index, "give `key` or `parent_id` + `name`, not both")),
        (true, None) => {
            return Err(Error::InvalidKey {
                index,
                reason: "key is empty".into(),
            })
        }
    }
    match kind {
        Kind::CreateFile(c) => validate_perms(c.perms, index)?,
        Kind::CreateDirectory(c) => validate_perms(c.perms, index)?,
        Kind::Commit(c) if !c.method.is_empty() && !COMMIT_METHODS.contains(&c.method.as_str()) => {
            return Err(bad(
                index,
                format!(
                    "unknown commit method {:?} ({})",
                    c.method,
                    COMMIT_METHODS.join(", ")
                ),
            ));
        }
        Kind::Rename(r) => match (r.to_key.is_empty(), r.to_parent_id) {
            (false, None) => {
                validate_key(&r.to_key, layout, index)?;
                if !r.to_name.is_empty() {
                    return Err(bad(index, "`to_name` goes with `to_parent_id`"));
                }
                if op.parent_id.is_none() && r.to_key == op.key {
                    return Err(Error::RenameToSelf { index });
                }
            }
            (true, Some(to_parent)) => {
                if layout != Layout::Fso {
                    return Err(bad(index, "`to_parent_id` + `to_name` need the FSO layout"));
                }
                validate_name("to_name", &r.to_name, index).map_err(|_| Error::InvalidKey {
                    index,
                    reason: "`to_name` must be one non-empty path segment".into(),
                })?;
                if op.parent_id == Some(to_parent) && r.to_name == op.name {
                    return Err(Error::RenameToSelf { index });
                }
            }
            (false, Some(_)) => {
                return Err(bad(
                    index,
                    "give `to_key` or `to_parent_id` + `to_name`, not both",
                ))
            }
            (true, None) => return Err(bad(index, "rename needs `to_key`")),
        },
        Kind::AclAdd(a) | Kind::AclRemove(a) => validate_acls(&a.acls, index, false)?,
        Kind::AclSet(a) => validate_acls(&a.acls, index, true)?,
        Kind::SetTimes(t) if t.mtime.is_none() && t.atime.is_none() => {
            return Err(bad(index, "set_times needs `mtime` or `atime`"));
        }
        Kind::SetAttr(s) => {
            let groups = [
                s.replication.is_some(),
                s.owner.is_some() || s.group.is_some(),
                s.perms.is_some(),
                !s.xattrs.is_empty() || !s.xattrs_removed.is_empty(),
            ];
            if groups.iter().filter(|g| **g).count() != 1 {
                return Err(bad(
                    index,
                    "set_attr sets exactly one of: replication; owner/group; perms; xattrs/xattrs_removed",
                ));
            }
            validate_perms(s.perms, index)?;
        }
        _ => {}
    }
    Ok(())
}
