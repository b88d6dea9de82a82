//! HDFS inotify events (`ARCHITECTURE.md`, "Renderers"), as JSON and as Hadoop's protobuf.
//!
//! Each ledger event becomes one event batch `{"txid", "events": [..]}`, with
//! the field names of Hadoop's Java classes (`org.apache.hadoop.hdfs.inotify.Event.*`).
//! `txid` is the producer's txid when it gave one, else the seq. Paths are
//! absolute: `/volume/bucket/key` (Ozone's ofs view; `/bucket/key` without a
//! volume). Times are milliseconds. `perms` is the integer mode (the
//! `FsPermissionProto.perm` value).
//!
//! A field the op did not give is left out of the JSON, never filled in:
//! no `ownerName: ""`, no `replication: 0`, no default mode, and no
//! `defaultBlockSize` or `erasureCoded` (the ledger knows neither). A
//! resync's or an expansion's `CREATE` carries only what is known of the
//! object then: its path, its time and its type. In the protobuf form
//! Hadoop's schema requires `ownerName`, `groupName` and `perms`: unknown
//! ones are written empty and 0, which [`HdfsEvent::from_proto`] reads
//! back as unknown (so a mode of 0 itself reads back as unknown).
//!
//! | op kind | `eventType` | fields |
//! |---|---|---|
//! | `create_file` | `CREATE` (`iNodeType` `FILE`) | path, ctime, replication, ownerName, groupName, perms (each only when the op gives it), symlinkTarget (null), overwrite |
//! | `create_directory`, `volume_create`, `bucket_create` | `CREATE` (`DIRECTORY`) | as above |
//! | `commit` | `CLOSE` | path, fileSize (-1 when unknown), timestamp (the commit's `mtime`, else the op's time) |
//! | `append` | `APPEND` | path, newBlock |
//! | `truncate` | `TRUNCATE` | path, fileSize, timestamp |
//! | `delete`, `volume_delete`, `bucket_delete` | `UNLINK` | path, timestamp |
//! | `rename` | `RENAME` | srcPath, dstPath, timestamp |
//! | `set_times` | `METADATA` (`TIMES`) | path, mtime, atime (-1: unchanged) |
//! | `set_attr` | `METADATA` (`REPLICATION` / `OWNER` / `PERMS` / `XATTRS`) | the fields of that type only |
//! | `acl_add`, `acl_remove`, `acl_set` | `METADATA` (`ACLS`) | acls |
//!
//! A `set_attr` that both sets and removes xattrs gives two `XATTRS` events
//! in its batch (`xAttrsRemoved` false, then true), as HDFS logs them.
//! ACL rights map to `FsAction` bits (read/list/read_acl: r; write/create/
//! delete/write_acl: w; execute: x; all: rwx); `world` and `anonymous` are `OTHER`.
//!
//! The protobuf form is `EventsListProto` (`proto/hadoop/inotify.proto`):
//! `firstTxid=2, lastTxid=3, syncTxid=4, batch=5`, each `EventBatchProto{txid=1,
//! events=2}` holding `EventProto{type=1, contents=2}` whose contents are the
//! serialised per-type message, which Hadoop's own classes decode.

use prost::Message;
use serde_json::{json, Map, Value};

use super::Renderer;
use crate::error::{Error, Result};
use crate::expand::Action;
use crate::op::{Acl, Kind, Op};
use crate::proto::Event;
use crate::read::Record;

/// Hadoop's inotify protobuf types, generated from `proto/hadoop/inotify.proto`.
#[allow(missing_docs, clippy::all)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/hadoop.hdfs.rs"));
}

use wire::acl_entry_proto::{AclEntryScopeProto, AclEntryTypeProto, FsActionProto};
use wire::x_attr_proto::XAttrNamespaceProto;

/// One HDFS inotify event, before it is written as JSON or protobuf.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum HdfsEvent {
    /// `replication`, `owner`, `group` and `perms` are `None` when the op
    /// did not give them: the JSON form leaves them out.
    Create {
        directory: bool,
        path: String,
        ctime: i64,
        replication: Option<i32>,
        owner: Option<String>,
        group: Option<String>,
        perms: Option<u32>,
        overwrite: bool,
    },
    Close {
        path: String,
        file_size: i64,
        timestamp: i64,
    },
    Append {
        path: String,
        new_block: bool,
    },
    Truncate {
        path: String,
        file_size: i64,
        timestamp: i64,
    },
    Rename {
        src: String,
        dst: String,
        timestamp: i64,
    },
    Unlink {
        path: String,
        timestamp: i64,
    },
    Times {
        path: String,
        mtime: i64,
        atime: i64,
    },
    Replication {
        path: String,
        replication: i32,
    },
    /// A `set_attr` may change the owner, the group or both: the other is
    /// `None` (left out, as HDFS leaves it null).
    Owner {
        path: String,
        owner: Option<String>,
        group: Option<String>,
    },
    Perms {
        path: String,
        perms: u32,
    },
    Acls {
        path: String,
        acls: Vec<Acl>,
    },
    XAttrs {
        path: String,
        xattrs: Vec<(String, Vec<u8>)>,
        removed: bool,
    },
}

/// The absolute HDFS path of `key` in the op's volume and bucket.
pub fn hdfs_path(op: &Op, key: &str) -> String {
    let mut p = String::with_capacity(key.len() + op.volume.len() + op.bucket.len() + 3);
    for part in [op.volume.as_str(), op.bucket.as_str(), key] {
        if !part.is_empty() {
            p.push('/');
            p.push_str(part);
        }
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

/// The txid an HDFS consumer sees for an event.
pub fn txid(event: &Event) -> i64 {
    event.op.as_ref().and_then(|o| o.txid).unwrap_or(event.seq) as i64
}

/// The HDFS events of one record: its event's, or for an expanded record an
/// `UNLINK` (remove) or `CREATE` (create) of the object's path, and for a
/// resync record a `CREATE` of the file.
pub fn record_events(record: &Record) -> Vec<HdfsEvent> {
    let Some(op) = &record.event.op else {
        return vec![];
    };
    let ms = op.time_us.div_euclid(1000);
    let create = |key: &str, directory: bool| HdfsEvent::Create {
        directory,
        path: hdfs_path(op, key),
        ctime: ms,
        replication: None,
        owner: None,
        group: None,
        perms: None,
        overwrite: false,
    };
    match &record.expansion {
        Some(x) if x.action == Action::Remove => vec![HdfsEvent::Unlink {
            path: hdfs_path(op, &x.key),
            timestamp: ms,
        }],
        Some(x) => vec![create(&x.key, x.is_dir)],
        None if record.resync => vec![create(&record.event.path, op.is_dir)],
        None => events(&record.event),
    }
}

/// The HDFS events of one ledger event, in order.
pub fn events(event: &Event) -> Vec<HdfsEvent> {
    let Some(op) = &event.op else { return vec![] };
    let Some(kind) = &op.kind else { return vec![] };
    let ms = op.time_us.div_euclid(1000);
    let path = hdfs_path(op, &event.path);
    let create = |directory: bool,
                  owner: &str,
                  group: &str,
                  perms: Option<u32>,
                  rep: Option<u32>,
                  overwrite: bool| {
        let known = |s: &str| (!s.is_empty()).then(|| s.to_string());
        HdfsEvent::Create {
            directory,
            path: path.clone(),
            ctime: ms,
            replication: rep.map(|r| r as i32),
            owner: known(owner),
            group: known(group),
            perms,
            overwrite,
        }
    };
    match kind {
        Kind::CreateFile(c) => vec![create(
            op.is_dir,
            &c.owner,
            &c.group,
            c.perms,
            c.replication,
            c.overwrite,
        )],
        Kind::CreateDirectory(c) => vec![create(true, &c.owner, &c.group, c.perms, None, false)],
        Kind::VolumeCreate(_) | Kind::BucketCreate(_) => {
            vec![create(true, &op.principal, "", None, None, false)]
        }
        Kind::Commit(c) => vec![HdfsEvent::Close {
            path,
            file_size: c.size.map(|s| s as i64).unwrap_or(-1),
            // HDFS gives the file's modification time at the close.
            timestamp: c.mtime.unwrap_or(ms),
        }],
        Kind::Append(a) => vec![HdfsEvent::Append {
            path,
            new_block: a.new_block,
        }],
        Kind::Truncate(t) => vec![HdfsEvent::Truncate {
            path,
            file_size: t.size as i64,
            timestamp: ms,
        }],
        Kind::Delete(_) | Kind::VolumeDelete(_) | Kind::BucketDelete(_) => {
            vec![HdfsEvent::Unlink {
                path,
                timestamp: ms,
            }]
        }
        Kind::Rename(_) => vec![HdfsEvent::Rename {
            src: path,
            dst: hdfs_path(op, &event.to_path),
            timestamp: ms,
        }],
        Kind::SetTimes(t) => vec![HdfsEvent::Times {
            path,
            mtime: t.mtime.unwrap_or(-1),
            atime: t.atime.unwrap_or(-1),
        }],
        Kind::AclAdd(a) | Kind::AclRemove(a) | Kind::AclSet(a) => vec![HdfsEvent::Acls {
            path,
            acls: a.acls.clone(),
        }],
        Kind::SetAttr(s) => {
            if let Some(r) = s.replication {
                vec![HdfsEvent::Replication {
                    path,
                    replication: r as i32,
                }]
            } else if s.owner.is_some() || s.group.is_some() {
                vec![HdfsEvent::Owner {
                    path,
                    owner: s.owner.clone(),
                    group: s.group.clone(),
                }]
            } else if let Some(p) = s.perms {
                vec![HdfsEvent::Perms { path, perms: p }]
            } else {
                let mut out = Vec::new();
                if !s.xattrs.is_empty() {
                    out.push(HdfsEvent::XAttrs {
                        path: path.clone(),
                        xattrs: s
                            .xattrs
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                            .collect(),
                        removed: false,
                    });
                }
                if !s.xattrs_removed.is_empty() {
                    out.push(HdfsEvent::XAttrs {
                        path,
                        xattrs: s
                            .xattrs_removed
                            .iter()
                            .map(|k| (k.clone(), vec![]))
                            .collect(),
                        removed: true,
                    });
                }
                out
            }
        }
    }
}

fn acl_type(t: &str) -> AclEntryTypeProto {
    match t {
        "user" => AclEntryTypeProto::User,
        "group" => AclEntryTypeProto::Group,
        "mask" => AclEntryTypeProto::Mask,
        _ => AclEntryTypeProto::Other,
    }
}

fn fs_action(rights: &[String]) -> FsActionProto {
    let mut bits = 0;
    for r in rights {
        bits |= match r.as_str() {
            "read" | "list" | "read_acl" => 4,
            "write" | "create" | "delete" | "write_acl" => 2,
            "execute" => 1,
            "all" => 7,
            _ => 0,
        };
    }
    FsActionProto::try_from(bits).unwrap_or(FsActionProto::None)
}

fn xattr_split(name: &str) -> (XAttrNamespaceProto, &str) {
    for (prefix, ns) in [
        ("user.", XAttrNamespaceProto::User),
        ("trusted.", XAttrNamespaceProto::Trusted),
        ("security.", XAttrNamespaceProto::Security),
        ("system.", XAttrNamespaceProto::System),
        ("raw.", XAttrNamespaceProto::Raw),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return (ns, rest);
        }
    }
    (XAttrNamespaceProto::User, name)
}

impl HdfsEvent {
    /// The Java class's `eventType`.
    pub fn event_type(&self) -> wire::EventType {
        use wire::EventType as T;
        match self {
            HdfsEvent::Create { .. } => T::EventCreate,
            HdfsEvent::Close { .. } => T::EventClose,
            HdfsEvent::Append { .. } => T::EventAppend,
            HdfsEvent::Truncate { .. } => T::EventTruncate,
            HdfsEvent::Rename { .. } => T::EventRename,
            HdfsEvent::Unlink { .. } => T::EventUnlink,
            _ => T::EventMetadata,
        }
    }

    /// JSON with the Java class's field names.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let ty = match self.event_type() {
            wire::EventType::EventCreate => "CREATE",
            wire::EventType::EventClose => "CLOSE",
            wire::EventType::EventAppend => "APPEND",
            wire::EventType::EventRename => "RENAME",
            wire::EventType::EventMetadata => "METADATA",
            wire::EventType::EventUnlink => "UNLINK",
            wire::EventType::EventTruncate => "TRUNCATE",
        };
        m.insert("eventType".into(), ty.into());
        let meta = |m: &mut Map<String, Value>, path: &str, t: &str| {
            m.insert("path".into(), path.into());
            m.insert("metadataType".into(), t.into());
        };
        match self {
            HdfsEvent::Create {
                directory,
                path,
                ctime,
                replication,
                owner,
                group,
                perms,
                overwrite,
            } => {
                m.insert(
                    "iNodeType".into(),
                    if *directory { "DIRECTORY" } else { "FILE" }.into(),
                );
                m.insert("path".into(), path.clone().into());
                m.insert("ctime".into(), (*ctime).into());
                // What the op did not say is left out, never made up.
                if let Some(r) = replication {
                    m.insert("replication".into(), (*r).into());
                }
                if let Some(o) = owner {
                    m.insert("ownerName".into(), o.clone().into());
                }
                if let Some(g) = group {
                    m.insert("groupName".into(), g.clone().into());
                }
                if let Some(p) = perms {
                    m.insert("perms".into(), (*p).into());
                }
                m.insert("symlinkTarget".into(), Value::Null);
                m.insert("overwrite".into(), (*overwrite).into());
            }
            HdfsEvent::Close {
                path,
                file_size,
                timestamp,
            }
            | HdfsEvent::Truncate {
                path,
                file_size,
                timestamp,
            } => {
                m.insert("path".into(), path.clone().into());
                m.insert("fileSize".into(), (*file_size).into());
                m.insert("timestamp".into(), (*timestamp).into());
            }
            HdfsEvent::Append { path, new_block } => {
                m.insert("path".into(), path.clone().into());
                m.insert("newBlock".into(), (*new_block).into());
            }
            HdfsEvent::Rename {
                src,
                dst,
                timestamp,
            } => {
                m.insert("srcPath".into(), src.clone().into());
                m.insert("dstPath".into(), dst.clone().into());
                m.insert("timestamp".into(), (*timestamp).into());
            }
            HdfsEvent::Unlink { path, timestamp } => {
                m.insert("path".into(), path.clone().into());
                m.insert("timestamp".into(), (*timestamp).into());
            }
            HdfsEvent::Times { path, mtime, atime } => {
                meta(&mut m, path, "TIMES");
                m.insert("mtime".into(), (*mtime).into());
                m.insert("atime".into(), (*atime).into());
            }
            HdfsEvent::Replication { path, replication } => {
                meta(&mut m, path, "REPLICATION");
                m.insert("replication".into(), (*replication).into());
            }
            HdfsEvent::Owner { path, owner, group } => {
                meta(&mut m, path, "OWNER");
                if let Some(o) = owner {
                    m.insert("ownerName".into(), o.clone().into());
                }
                if let Some(g) = group {
                    m.insert("groupName".into(), g.clone().into());
                }
            }
            HdfsEvent::Perms { path, perms } => {
                meta(&mut m, path, "PERMS");
                m.insert("perms".into(), (*perms).into());
            }
            HdfsEvent::Acls { path, acls } => {
                meta(&mut m, path, "ACLS");
                let list: Vec<Value> = acls
                    .iter()
                    .map(|a| {
                        json!({
                            "type": acl_type(&a.r#type).as_str_name(),
                            "scope": if a.scope == "default" { "DEFAULT" } else { "ACCESS" },
                            "permission": fs_action(&a.rights).as_str_name(),
                            "name": if a.name.is_empty() { Value::Null } else { a.name.clone().into() },
                        })
                    })
                    .collect();
                m.insert("acls".into(), list.into());
            }
            HdfsEvent::XAttrs {
                path,
                xattrs,
                removed,
            } => {
                meta(&mut m, path, "XATTRS");
                let list: Vec<Value> = xattrs
                    .iter()
                    .map(|(k, v)| {
                        let (ns, name) = xattr_split(k);
                        let mut x = json!({ "nameSpace": ns.as_str_name(), "name": name });
                        if !*removed {
                            x["value"] = String::from_utf8_lossy(v).into_owned().into();
                        }
                        x
                    })
                    .collect();
                m.insert("xAttrs".into(), list.into());
                m.insert("xAttrsRemoved".into(), (*removed).into());
            }
        }
        Value::Object(m)
    }

    /// The `EventProto` with this event's serialised per-type message.
    pub fn to_proto(&self) -> wire::EventProto {
        use wire::*;
        let perm = |p: u32| Some(FsPermissionProto { perm: p });
        let meta = |path: &str, t: MetadataUpdateType| MetadataUpdateEventProto {
            path: path.to_string(),
            r#type: t as i32,
            ..Default::default()
        };
        let contents = match self {
            HdfsEvent::Create {
                directory,
                path,
                ctime,
                replication,
                owner,
                group,
                perms,
                overwrite,
            } => CreateEventProto {
                r#type: if *directory {
                    INodeType::ITypeDirectory
                } else {
                    INodeType::ITypeFile
                } as i32,
                path: path.clone(),
                ctime: *ctime,
                // Required by Hadoop's schema: an unknown owner or group is
                // written empty, an unknown mode as 0 (`from_proto` reads
                // them back as unknown). The optional fields are left out.
                owner_name: owner.clone().unwrap_or_default(),
                group_name: group.clone().unwrap_or_default(),
                perms: FsPermissionProto {
                    perm: perms.unwrap_or(0),
                },
                replication: *replication,
                symlink_target: None,
                overwrite: Some(*overwrite),
                default_block_size: None,
                erasure_coded: None,
            }
            .encode_to_vec(),
            HdfsEvent::Close {
                path,
                file_size,
                timestamp,
            } => CloseEventProto {
                path: path.clone(),
                file_size: *file_size,
                timestamp: *timestamp,
            }
            .encode_to_vec(),
            HdfsEvent::Truncate {
                path,
                file_size,
                timestamp,
            } => TruncateEventProto {
                path: path.clone(),
                file_size: *file_size,
                timestamp: *timestamp,
            }
            .encode_to_vec(),
            HdfsEvent::Append { path, new_block } => AppendEventProto {
                path: path.clone(),
                new_block: Some(*new_block),
            }
            .encode_to_vec(),
            HdfsEvent::Rename {
                src,
                dst,
                timestamp,
            } => RenameEventProto {
                src_path: src.clone(),
                dest_path: dst.clone(),
                timestamp: *timestamp,
            }
            .encode_to_vec(),
            HdfsEvent::Unlink { path, timestamp } => UnlinkEventProto {
                path: path.clone(),
                timestamp: *timestamp,
            }
            .encode_to_vec(),
            HdfsEvent::Times { path, mtime, atime } => MetadataUpdateEventProto {
                mtime: Some(*mtime),
                atime: Some(*atime),
                ..meta(path, MetadataUpdateType::MetaTypeTimes)
            }
            .encode_to_vec(),
            HdfsEvent::Replication { path, replication } => MetadataUpdateEventProto {
                replication: Some(*replication),
                ..meta(path, MetadataUpdateType::MetaTypeReplication)
            }
            .encode_to_vec(),
            HdfsEvent::Owner { path, owner, group } => MetadataUpdateEventProto {
                owner_name: owner.clone(),
                group_name: group.clone(),
                ..meta(path, MetadataUpdateType::MetaTypeOwner)
            }
            .encode_to_vec(),
            HdfsEvent::Perms { path, perms } => MetadataUpdateEventProto {
                perms: perm(*perms),
                ..meta(path, MetadataUpdateType::MetaTypePerms)
            }
            .encode_to_vec(),
            HdfsEvent::Acls { path, acls } => MetadataUpdateEventProto {
                acls: acls
                    .iter()
                    .map(|a| AclEntryProto {
                        r#type: acl_type(&a.r#type) as i32,
                        scope: if a.scope == "default" {
                            AclEntryScopeProto::Default
                        } else {
                            AclEntryScopeProto::Access
                        } as i32,
                        permissions: fs_action(&a.rights) as i32,
                        name: (!a.name.is_empty()).then(|| a.name.clone()),
                    })
                    .collect(),
                ..meta(path, MetadataUpdateType::MetaTypeAcls)
            }
            .encode_to_vec(),
            HdfsEvent::XAttrs {
                path,
                xattrs,
                removed,
            } => MetadataUpdateEventProto {
                x_attrs: xattrs
                    .iter()
                    .map(|(k, v)| {
                        let (ns, name) = xattr_split(k);
                        XAttrProto {
                            namespace: ns as i32,
                            name: name.to_string(),
                            value: (!*removed).then(|| v.clone()),
                        }
                    })
                    .collect(),
                x_attrs_removed: Some(*removed),
                ..meta(path, MetadataUpdateType::MetaTypeXattrs)
            }
            .encode_to_vec(),
        };
        EventProto {
            r#type: self.event_type() as i32,
            contents,
        }
    }
}

impl HdfsEvent {
    /// Decode an `EventProto` back into the event it was written from
    /// (ACL names and rights come back as HDFS knows them: `r`, `w`, `x` bits).
    pub fn from_proto(e: &wire::EventProto) -> Result<HdfsEvent> {
        use wire::*;
        let bad = |what: &str, err: prost::DecodeError| {
            Error::InvalidArgument(format!("not a {what}: {err}"))
        };
        let c = e.contents.as_slice();
        let ty = EventType::try_from(e.r#type)
            .map_err(|_| Error::InvalidArgument(format!("unknown event type {}", e.r#type)))?;
        Ok(match ty {
            EventType::EventCreate => {
                let m = CreateEventProto::decode(c).map_err(|x| bad("CreateEventProto", x))?;
                HdfsEvent::Create {
                    directory: m.r#type == INodeType::ITypeDirectory as i32,
                    path: m.path,
                    ctime: m.ctime,
                    replication: m.replication,
                    owner: (!m.owner_name.is_empty()).then_some(m.owner_name),
                    group: (!m.group_name.is_empty()).then_some(m.group_name),
                    perms: (m.perms.perm != 0).then_some(m.perms.perm),
                    overwrite: m.overwrite.unwrap_or(false),
                }
            }
            EventType::EventClose => {
                let m = CloseEventProto::decode(c).map_err(|x| bad("CloseEventProto", x))?;
                HdfsEvent::Close {
                    path: m.path,
                    file_size: m.file_size,
                    timestamp: m.timestamp,
                }
            }
            EventType::EventTruncate => {
                let m = TruncateEventProto::decode(c).map_err(|x| bad("TruncateEventProto", x))?;
                HdfsEvent::Truncate {
                    path: m.path,
                    file_size: m.file_size,
                    timestamp: m.timestamp,
                }
            }
            EventType::EventAppend => {
                let m = AppendEventProto::decode(c).map_err(|x| bad("AppendEventProto", x))?;
                HdfsEvent::Append {
                    path: m.path,
                    new_block: m.new_block.unwrap_or(false),
                }
            }
            EventType::EventRename => {
                let m = RenameEventProto::decode(c).map_err(|x| bad("RenameEventProto", x))?;
                HdfsEvent::Rename {
                    src: m.src_path,
                    dst: m.dest_path,
                    timestamp: m.timestamp,
                }
            }
            EventType::EventUnlink => {
                let m = UnlinkEventProto::decode(c).map_err(|x| bad("UnlinkEventProto", x))?;
                HdfsEvent::Unlink {
                    path: m.path,
                    timestamp: m.timestamp,
                }
            }
            EventType::EventMetadata => {
                let m = MetadataUpdateEventProto::decode(c)
                    .map_err(|x| bad("MetadataUpdateEventProto", x))?;
                let path = m.path.clone();
                match MetadataUpdateType::try_from(m.r#type) {
                    Ok(MetadataUpdateType::MetaTypeTimes) => HdfsEvent::Times {
                        path,
                        mtime: m.mtime.unwrap_or(-1),
                        atime: m.atime.unwrap_or(-1),
                    },
                    Ok(MetadataUpdateType::MetaTypeReplication) => HdfsEvent::Replication {
                        path,
                        replication: m.replication.unwrap_or(0),
                    },
                    Ok(MetadataUpdateType::MetaTypeOwner) => HdfsEvent::Owner {
                        path,
                        owner: m.owner_name,
                        group: m.group_name,
                    },
                    Ok(MetadataUpdateType::MetaTypePerms) => HdfsEvent::Perms {
                        path,
                        perms: m.perms.map(|p| p.perm).unwrap_or(0),
                    },
                    Ok(MetadataUpdateType::MetaTypeAcls) => HdfsEvent::Acls {
                        path,
                        acls: m
                            .acls
                            .iter()
                            .map(|a| {
                                let bits = a.permissions;
                                let mut rights = Vec::new();
                                for (bit, r) in [(4, "read"), (2, "write"), (1, "execute")] {
                                    if bits & bit != 0 {
                                        rights.push(r.to_string());
                                    }
                                }
                                Acl {
                                    r#type: match AclEntryTypeProto::try_from(a.r#type) {
                                        Ok(AclEntryTypeProto::User) => "user",
                                        Ok(AclEntryTypeProto::Group) => "group",
                                        Ok(AclEntryTypeProto::Mask) => "mask",
                                        _ => "other",
                                    }
                                    .to_string(),
                                    name: a.name.clone().unwrap_or_default(),
                                    rights,
                                    scope: if a.scope == AclEntryScopeProto::Default as i32 {
                                        "default"
                                    } else {
                                        "access"
                                    }
                                    .to_string(),
                                }
                            })
                            .collect(),
                    },
                    Ok(MetadataUpdateType::MetaTypeXattrs) => HdfsEvent::XAttrs {
                        path,
                        removed: m.x_attrs_removed.unwrap_or(false),
                        xattrs: m
                            .x_attrs
                            .iter()
                            .map(|x| {
                                let ns = XAttrNamespaceProto::try_from(x.namespace)
                                    .unwrap_or(XAttrNamespaceProto::User)
                                    .as_str_name()
                                    .to_ascii_lowercase();
                                (
                                    format!("{ns}.{}", x.name),
                                    x.value.clone().unwrap_or_default(),
                                )
                            })
                            .collect(),
                    },
                    Err(_) => {
                        return Err(Error::InvalidArgument(format!(
                            "unknown metadata type {}",
                            m.r#type
                        )))
                    }
                }
            }
        })
    }
}

/// The HDFS renderer: one event batch per record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hdfs;

impl Renderer for Hdfs {
    fn name(&self) -> &'static str {
        "hdfs"
    }

    fn has_form(&self, record: &Record) -> bool {
        !record_events(record).is_empty()
    }

    fn render(&self, record: &Record) -> Option<Value> {
        let evs = record_events(record);
        if evs.is_empty() {
            return None;
        }
        Some(json!({
            "txid": txid(&record.event),
            "events": evs.iter().map(HdfsEvent::to_json).collect::<Vec<_>>(),
        }))
    }
}

/// An `EventsListProto` holding one batch per record, as bytes.
/// `sync_txid` is the txid of the ledger head (what HDFS calls the last
/// synced txid).
pub fn events_list(records: &[Record], sync_txid: i64) -> Vec<u8> {
    let batch: Vec<wire::EventBatchProto> = records
        .iter()
        .filter_map(|r| {
            let evs = record_events(r);
            (!evs.is_empty()).then(|| wire::EventBatchProto {
                txid: txid(&r.event),
                events: evs.iter().map(HdfsEvent::to_proto).collect(),
            })
        })
        .collect();
    wire::EventsListProto {
        events: vec![],
        first_txid: batch.first().map(|b| b.txid).unwrap_or(-1),
        last_txid: batch.last().map(|b| b.txid).unwrap_or(-1),
        sync_txid,
        batch,
    }
    .encode_to_vec()
}

/// Decode `EventsListProto` bytes.
pub fn decode_events_list(bytes: &[u8]) -> Result<wire::EventsListProto> {
    wire::EventsListProto::decode(bytes)
        .map_err(|e| Error::InvalidArgument(format!("not an EventsListProto: {e}")))
}
