//! The canonical JSON form of an op: one flat object, `kind` in snake_case
//! (the table of fields per kind is in the parent module's docs).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{Error, Result};

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
pub(crate) struct OpJson<'a> {
    kind: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    txid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_dir: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_ip: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Cow<'a, str>>,
    // kind-specific fields
    #[serde(default, skip_serializing_if = "Option::is_none")]
    overwrite: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recursive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replication: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    perms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_id: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hsync: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_block: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_key: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_parent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acls: Option<Vec<AclJson>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    atime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xattrs: Option<Cow<'a, BTreeMap<String, String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xattrs_removed: Option<Cow<'a, [String]>>,
}

fn non_empty(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

/// An optional text field of the input, owned ("" when absent).
fn owned(s: Option<Cow<'_, str>>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
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

impl<'a> OpJson<'a> {
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

    pub(super) fn into_op(self, index: usize) -> Result<Op> {
        let allowed: &[&str] = match &*self.kind {
            "create_file" => &[
                "overwrite",
                "recursive",
                "replication",
                "owner",
                "group",
                "perms",
            ],
            "create_directory" => &["owner", "group", "perms"],
            "commit" => &["size", "etag", "version_id", "hsync", "method", "mtime"],
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
        let kind = match &*self.kind {
            "create_file" => Kind::CreateFile(CreateFile {
                overwrite: self.overwrite.unwrap_or(false),
                recursive: self.recursive.unwrap_or(false),
                replication: self.replication,
                owner: owned(self.owner),
                group: owned(self.group),
                perms: self.perms,
            }),
            "create_directory" => Kind::CreateDirectory(CreateDirectory {
                owner: owned(self.owner),
                group: owned(self.group),
                perms: self.perms,
            }),
            "commit" => Kind::Commit(Commit {
                size: self.size,
                etag: owned(self.etag),
                version_id: owned(self.version_id),
                hsync: self.hsync.unwrap_or(false),
                method: owned(self.method),
                mtime: self.mtime,
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
                to_key: owned(self.to_key),
                to_parent_id: self.to_parent_id,
                to_name: owned(self.to_name),
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
                owner: self.owner.map(Cow::into_owned),
                group: self.group.map(Cow::into_owned),
                perms: self.perms,
                xattrs: self.xattrs.map(Cow::into_owned).unwrap_or_default(),
                xattrs_removed: self.xattrs_removed.map(Cow::into_owned).unwrap_or_default(),
            }),
            "volume_create" => Kind::VolumeCreate(Empty {}),
            "volume_delete" => Kind::VolumeDelete(Empty {}),
            "bucket_create" => Kind::BucketCreate(Empty {}),
            _ => Kind::BucketDelete(Empty {}),
        };
        let op = Op {
            txid: self.txid,
            time_us,
            volume: owned(self.volume),
            bucket: owned(self.bucket),
            key: owned(self.key),
            layout: layout as i32,
            parent_id: self.parent_id,
            name: owned(self.name),
            object_id: self.object_id,
            is_dir: self.is_dir.unwrap_or(false),
            principal: owned(self.principal),
            request_id: owned(self.request_id),
            source_ip: owned(self.source_ip),
            source: owned(self.source),
            kind: Some(kind),
        };
        validate(&op, index)?;
        Ok(op)
    }

    pub(crate) fn from_op(op: &'a Op) -> OpJson<'a> {
        let mut j = OpJson {
            kind: Cow::Borrowed(op.kind_name()),
            txid: op.txid,
            time_us: Some(op.time_us),
            volume: non_empty(&op.volume),
            bucket: non_empty(&op.bucket),
            key: non_empty(&op.key),
            layout: Some(Cow::Borrowed(op.layout_enum().name())),
            parent_id: op.parent_id,
            name: non_empty(&op.name),
            object_id: op.object_id,
            is_dir: op.is_dir.then_some(true),
            principal: non_empty(&op.principal),
            request_id: non_empty(&op.request_id),
            source_ip: non_empty(&op.source_ip),
            source: non_empty(&op.source),
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
                j.mtime = c.mtime;
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
                j.owner = s.owner.as_deref().map(Cow::Borrowed);
                j.group = s.group.as_deref().map(Cow::Borrowed);
                j.perms = s.perms;
                j.xattrs = (!s.xattrs.is_empty()).then_some(Cow::Borrowed(&s.xattrs));
                j.xattrs_removed =
                    (!s.xattrs_removed.is_empty()).then_some(Cow::Borrowed(&s.xattrs_removed[..]));
            }
            _ => {}
        }
        j
    }
}
