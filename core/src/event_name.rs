//! The op -> S3 event name table, in one place: the filter matches event
//! names with it and the S3 renderer writes them from it.
//!
//! Event names are written without the `s3:` prefix, as AWS and Ceph write
//! `eventName`. Which names a record may carry depends on the S3 profile:
//! by default each profile writes only names its server itself sends
//! ([`standard`]); fsfeed's own kinds ([`EXTENSIONS`]) come only when a
//! cursor asks for extensions.
//!
//! | op kind | event name | aws | ceph | minio |
//! |---|---|---|---|---|
//! | `create_directory` | `ObjectCreated:Put` (key `dir/`) | yes | yes | yes |
//! | `commit` | `ObjectCreated:Put`, `:Post`, `:Copy`, `:CompleteMultipartUpload` (per `method`) | yes | yes | yes |
//! | `delete` | `ObjectRemoved:Delete` | yes | yes | yes |
//! | `acl_add`, `acl_remove`, `acl_set` | `ObjectAcl:Put` | yes when size and eTag are known, else extension (1) | extension | extension |
//! | `truncate` | `ObjectCreated:Truncate` | extension | extension | extension |
//! | `rename` | `ObjectRenamed:Rename` | extension (2) | extension | extension |
//! | `set_times` / `set_attr` | `ObjectMetadata:SetTimes` / `:SetAttr` | extension | extension | extension |
//! | `bucket_create` / `bucket_delete` | `BucketCreated:Put` / `BucketRemoved:Delete` | extension | extension | extension |
//! | `create_file`, `append`, `volume_*` | none | | | |
//!
//! (1) AWS does send `ObjectAcl:Put`, with the object's size and eTag. An
//! ACL op carries neither; in an object-store or legacy bucket the event
//! carries what the live index knew (`Event.size`, `Event.etag`), and with
//! both the aws profile writes the record as AWS does. Without them (an FSO
//! object, an object the ledger never saw committed) fsfeed cannot write it
//! truthfully: it is an extension, without size and eTag. Ceph and MinIO
//! send no ACL events.
//! (2) S3 has no rename. An S3 consumer gets a directory or file rename as one
//! remove and one create per object when its cursor expands renames
//! (`ExpandOptions::renames`); the expanded records' names are
//! [`expanded`]'s, which every profile sends.

use crate::expand::Action;
use crate::op::{Kind, Op};
use crate::read::Record;

/// The S3 event name of an op (without `s3:`) in the extended table, or
/// `None` when the op has no S3 notification at all. Whether a profile
/// writes it without extensions is [`standard`]'s answer.
pub fn of_op(op: &Op) -> Option<&'static str> {
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

/// What a record is, as a header or log line names it: its S3 event name
/// (`ObjectCreated:Put`, in the extended table) when it has one, else its
/// op kind (`create_file`, `volume_create`).
pub fn of_record(record: &Record) -> &'static str {
    if let Some(x) = &record.expansion {
        return expanded(x.action);
    }
    if record.resync {
        return "ObjectCreated:Put";
    }
    match &record.event.op {
        Some(op) => of_op(op).unwrap_or_else(|| op.kind_name()),
        None => "unknown",
    }
}

/// The S3 event name of a record expanded from a rename or recursive delete.
pub fn expanded(action: Action) -> &'static str {
    match action {
        Action::Remove => "ObjectRemoved:Delete",
        Action::Create => "ObjectCreated:Put",
    }
}

/// The names that AWS, Ceph and MinIO themselves send and fsfeed writes.
pub const STANDARD: &[&str] = &[
    "ObjectCreated:Put",
    "ObjectCreated:Post",
    "ObjectCreated:Copy",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:Delete",
];

/// fsfeed's own event names: written only when a cursor asks for extensions.
pub const EXTENSIONS: &[&str] = &[
    "ObjectCreated:Truncate",
    "ObjectRenamed:Rename",
    "ObjectAcl:Put",
    "ObjectMetadata:SetTimes",
    "ObjectMetadata:SetAttr",
    "BucketCreated:Put",
    "BucketRemoved:Delete",
];

/// Is `name` one the S3 servers send (written without extensions)?
pub fn standard(name: &str) -> bool {
    STANDARD.contains(&name)
}

/// Every name fsfeed can write: what a filter's event patterns must match.
pub fn all() -> impl Iterator<Item = &'static str> {
    STANDARD.iter().chain(EXTENSIONS).copied()
}

/// Does `name` (an S3 event name, without `s3:`) match `pattern`, which may
/// carry the `s3:` prefix and end in `*` (`s3:ObjectCreated:*`)?
pub fn matches(pattern: &str, name: &str) -> bool {
    let p = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(matches("ObjectRemoved:Delete", "ObjectRemoved:Delete"));
        assert!(!matches("s3:ObjectRemoved:*", "ObjectCreated:Put"));
        assert!(matches("*", "ObjectAcl:Put"));
    }

    #[test]
    fn every_name_an_op_gets_is_in_one_table() {
        for op in crate::workload::Workload::new(5, 1).take(5000) {
            if let Some(n) = of_op(&op) {
                assert!(STANDARD.contains(&n) ^ EXTENSIONS.contains(&n), "{n}");
            }
        }
        assert!(standard(expanded(Action::Remove)) && standard(expanded(Action::Create)));
    }
}
