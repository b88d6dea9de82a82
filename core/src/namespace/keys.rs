//! Key encodings of the `ns` column family (layout in the module docs).

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::NsNode;

/// Column family of the namespace.
pub(crate) const CF_NS: &str = "ns";

pub(super) const TAG_F: u8 = b'F';
pub(super) const TAG_G: u8 = b'G';
pub(super) const TAG_R: u8 = b'R';
pub(super) const TAG_C: u8 = b'C';

/// The `deleted` of an open edge in keys.
pub(super) const LIVE: u64 = u64::MAX;

/// `B`, the bucket's id in keys: `volume NUL bucket NUL`.
pub(super) fn bucket_id(volume: &str, bucket: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(volume.len() + bucket.len() + 2);
    push_bucket_id(&mut b, volume, bucket);
    b
}

/// [`bucket_id`], added at the end of `k`.
#[inline]
pub(super) fn push_bucket_id(k: &mut Vec<u8>, volume: &str, bucket: &str) {
    k.extend_from_slice(volume.as_bytes());
    k.push(0);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
}

/// `tag volume NUL`: every key under `tag` of the volume's buckets.
pub(super) fn volume_prefix(tag: u8, volume: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + volume.len());
    k.push(tag);
    k.extend_from_slice(volume.as_bytes());
    k.push(0);
    k
}

/// (volume, bucket, the rest) of a key's bytes after its tag: its `B`
/// split off. `None` when there is no `B`.
pub(super) fn split_bucket(after_tag: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = after_tag.splitn(3, |b| *b == 0);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(volume), Some(bucket), Some(rest)) => Some((volume, bucket, rest)),
        _ => None,
    }
}

/// `tag B parent`, added at the end of `k`.
#[inline]
fn push_dir_prefix(k: &mut Vec<u8>, tag: u8, bucket: &[u8], parent: u64) {
    k.push(tag);
    k.extend_from_slice(bucket);
    k.extend_from_slice(&parent.to_be_bytes());
}

/// `tag B parent name NUL`, added at the end of `k`.
#[inline]
fn push_name_prefix(k: &mut Vec<u8>, tag: u8, bucket: &[u8], parent: u64, name: &str) {
    push_dir_prefix(k, tag, bucket, parent);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
}

/// `tag B parent`: the edges of one directory, open (`F`) or closed (`G`).
pub(super) fn dir_prefix_in(tag: u8, bucket: &[u8], parent: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + bucket.len() + 8 + 40);
    push_dir_prefix(&mut k, tag, bucket, parent);
    k
}

/// `F B parent`: the open edges of one directory.
pub(super) fn dir_prefix(bucket: &[u8], parent: u64) -> Vec<u8> {
    dir_prefix_in(TAG_F, bucket, parent)
}

/// `tag B parent name NUL`: the open (`F`) or closed (`G`) versions of a name.
pub(super) fn name_prefix_in(tag: u8, bucket: &[u8], parent: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + bucket.len() + 8 + name.len() + 1 + 8);
    push_name_prefix(&mut k, tag, bucket, parent, name);
    k
}

/// The open edge at `parent/name` (its `deleted` is always `LIVE`).
pub(super) fn f_key(bucket: &[u8], parent: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::new();
    f_key_into(&mut k, bucket, parent, name);
    k
}

/// [`f_key`], built in `k` (cleared first).
pub(super) fn f_key_into(k: &mut Vec<u8>, bucket: &[u8], parent: u64, name: &str) {
    k.clear();
    k.reserve(1 + bucket.len() + 8 + name.len() + 1 + 8);
    push_name_prefix(k, TAG_F, bucket, parent, name);
    k.extend_from_slice(&LIVE.to_be_bytes());
}

/// A version of `parent/name` closed at `deleted`.
pub(super) fn g_key(bucket: &[u8], parent: u64, name: &str, deleted: u64) -> Vec<u8> {
    let mut k = name_prefix_in(TAG_G, bucket, parent, name);
    k.extend_from_slice(&deleted.to_be_bytes());
    k
}

pub(super) fn r_key(object: u64, deleted: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_R);
    k.extend_from_slice(&object.to_be_bytes());
    k.extend_from_slice(&deleted.to_be_bytes());
    k
}

pub(super) fn c_key(deleted: u64, object: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_C);
    k.extend_from_slice(&deleted.to_be_bytes());
    k.extend_from_slice(&object.to_be_bytes());
    k
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// The `deleted` half of a versioned key (its last 8 bytes).
pub(super) fn deleted_of(key: &[u8]) -> u64 {
    u64_at(key, key.len() - 8)
}

pub(super) fn decode(v: &[u8]) -> Result<NsNode> {
    NsNode::decode(v).map_err(|e| Error::Corrupt(format!("namespace node: {e}")))
}

/// An F key's name: the tail after the dir prefix is `name NUL deleted`.
pub(super) fn name_of(tail: &[u8]) -> Result<String> {
    if tail.len() < 9 || tail[tail.len() - 9] != 0 || tail[..tail.len() - 9].contains(&0) {
        return Err(Error::Corrupt("namespace key shape".into()));
    }
    String::from_utf8(tail[..tail.len() - 9].to_vec())
        .map_err(|_| Error::Corrupt("namespace name is not UTF-8".into()))
}

/// Is the edge's object in the bucket's S3 view: a file that is not
/// `uncommitted`, a directory with a `marker`?
pub(crate) fn in_s3_view(n: &NsNode) -> bool {
    if n.is_dir {
        n.marker
    } else {
        !n.uncommitted
    }
}

/// Put the edge in the S3 view, or take it out.
pub(super) fn set_in_s3_view(n: &mut NsNode, listed: bool) {
    if n.is_dir {
        n.marker = listed;
    } else {
        n.uncommitted = !listed;
    }
}

/// What an F value stores of an edge.
pub(super) fn f_value(n: &NsNode) -> NsNode {
    NsNode {
        object_id: n.object_id,
        is_dir: n.is_dir,
        created_seq: n.created_seq,
        deleted_seq: n.deleted_seq,
        uncommitted: n.uncommitted,
        marker: n.marker,
        ..Default::default()
    }
}

/// `n.encode_to_vec()`, written out with `crate::wire`: the value of every
/// edge the namespace writes (an open edge two, a close five), where
/// prost's measured the node first and wrote byte by byte (test
/// `nodes_encode_as_prost_does`).
pub(super) fn encode_node(n: &NsNode) -> Vec<u8> {
    use crate::wire::{put_flag, put_scalar, put_str};
    // Every field named: one added to the proto later does not compile
    // until it is encoded here.
    let NsNode {
        volume,
        bucket,
        parent_id,
        name,
        object_id,
        is_dir,
        created_seq,
        deleted_seq,
        uncommitted,
        marker,
    } = n;
    let mut b = Vec::with_capacity(48 + volume.len() + bucket.len() + name.len());
    put_str(&mut b, 1, volume);
    put_str(&mut b, 2, bucket);
    put_scalar(&mut b, 3, *parent_id);
    put_str(&mut b, 4, name);
    put_scalar(&mut b, 5, *object_id);
    put_flag(&mut b, 6, *is_dir);
    put_scalar(&mut b, 7, *created_seq);
    put_scalar(&mut b, 8, *deleted_seq);
    put_flag(&mut b, 9, *uncommitted);
    put_flag(&mut b, 10, *marker);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_encode_as_prost_does() {
        let mut n = 0;
        for bits in 0u32..1024 {
            let on = |b: u32| bits & (1 << b) != 0;
            let num = |b: u32, v: u64| if on(b) { v } else { 0 };
            let text = |b: u32, s: &str| if on(b) { s.to_string() } else { String::new() };
            let node = NsNode {
                volume: text(0, "vol"),
                bucket: text(1, "bucket"),
                parent_id: num(2, 1 << 62),
                name: text(3, &"n".repeat(200)),
                object_id: num(4, 7),
                is_dir: on(5),
                created_seq: num(6, 300),
                deleted_seq: num(7, u64::MAX),
                uncommitted: on(8),
                marker: on(9),
            };
            assert_eq!(encode_node(&node), node.encode_to_vec(), "{node:?}");
            n += 1;
        }
        assert_eq!(n, 1024);
    }
}
