//! Reading prost's wire format without building messages: the primitives
//! of history's row parser (`columnar::rows`) and of the ledger's full form
//! of a stored event (`ledger::full_form`). Always built: `checksum()`
//! needs them without the `arrow` feature.
//!
//! And writing it into a `Vec<u8>`, for the stored event's encoding
//! (`ledger::encode_event`): the bytes prost writes, but one `Vec::push`
//! per byte, where prost's `BufMut` for `Vec<u8>` makes each byte a
//! one-byte `extend_from_slice` (prost's `encode_varint` was 10% of a
//! demo-mix append's instructions).

use crate::error::{Error, Result};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

pub(crate) fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("event: {e}"))
}

pub(crate) fn varint(buf: &mut &[u8]) -> Result<u64> {
    decode_varint(buf).map_err(corrupt)
}

/// A length-delimited field's bytes.
pub(crate) fn bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = varint(buf)? as usize;
    if len > buf.len() {
        return Err(corrupt("a field runs past the end"));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// Walk one message's fields, calling `f(tag, wire_type, buf)`; `f` returns
/// false for fields it does not read, which are skipped.
pub(crate) fn fields<'a>(
    mut buf: &'a [u8],
    mut f: impl FnMut(u32, WireType, &mut &'a [u8]) -> Result<bool>,
) -> Result<()> {
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf).map_err(corrupt)?;
        if !f(tag, wt, &mut buf)? {
            skip_field(wt, tag, &mut buf, DecodeContext::default()).map_err(corrupt)?;
        }
    }
    Ok(())
}

/// A varint: the bytes of `prost::encoding::encode_varint`.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A field's key: its tag and wire type (0 varint, 2 length-delimited).
#[inline]
fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: u64) {
    put_varint(buf, u64::from(tag) << 3 | wire_type);
}

/// A varint field (`uint64`, `int64`, `int32` and enums, `bool`: prost
/// writes each as its value cast to `u64`, negatives sign-extended).
#[inline]
pub(crate) fn put_uint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(buf, tag, 0);
    put_varint(buf, v);
}

/// A varint field with presence (`optional`): written when set, even at 0.
#[inline]
pub(crate) fn put_opt(buf: &mut Vec<u8>, tag: u32, v: Option<u64>) {
    if let Some(v) = v {
        put_uint(buf, tag, v);
    }
}

/// A scalar field without presence: left out at 0, as prost does.
#[inline]
pub(crate) fn put_scalar(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_uint(buf, tag, v);
    }
}

/// A `bool` without presence: left out when false.
#[inline]
pub(crate) fn put_flag(buf: &mut Vec<u8>, tag: u32, v: bool) {
    if v {
        put_uint(buf, tag, 1);
    }
}

/// A `string` without presence: left out when empty.
#[inline]
pub(crate) fn put_str(buf: &mut Vec<u8>, tag: u32, v: &str) {
    if !v.is_empty() {
        put_bytes(buf, tag, v.as_bytes());
    }
}

/// A length-delimited field (`string`, `bytes`, a nested message).
#[inline]
pub(crate) fn put_bytes(buf: &mut Vec<u8>, tag: u32, v: &[u8]) {
    put_len(buf, tag, v.len());
    buf.extend_from_slice(v);
}

/// A length-delimited field's key and length; its bytes follow.
#[inline]
pub(crate) fn put_len(buf: &mut Vec<u8>, tag: u32, len: usize) {
    put_key(buf, tag, 2);
    put_varint(buf, len as u64);
}

/// A nested message's field: its key, its length, then what `body`
/// writes. The length is written as one byte and the body after it; a body
/// of 128 bytes or more moves over to make room for a longer length.
#[inline]
pub(crate) fn put_message(buf: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(buf, tag, 2);
    let at = buf.len();
    buf.push(0);
    body(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        buf.splice(at..=at, prefix);
    }
}

/// Bytes of a varint field (`put_uint`).
#[inline]
pub(crate) fn uint_len(tag: u32, v: u64) -> usize {
    prost::encoding::encoded_len_varint(u64::from(tag) << 3)
        + prost::encoding::encoded_len_varint(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_prost_writes() {
        use prost::encoding::{bool as pbool, int32, int64, string, uint64};
        let mut values = vec![0u64, 1, 127, 128, 255, 16_383, 16_384, u64::MAX];
        values.extend((0..64).map(|b| 1u64 << b));
        values.extend((1..64).map(|b| (1u64 << b) - 1));
        for tag in [1u32, 2, 15, 16, 31, 2047, 2048, 536_870_911] {
            for &v in &values {
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                put_uint(&mut ours, tag, v);
                uint64::encode(tag, &v, &mut theirs);
                assert_eq!(ours, theirs, "uint64 {tag} {v}");
                assert_eq!(uint_len(tag, v), theirs.len());
                let i = v as i64;
                theirs.clear();
                int64::encode(tag, &i, &mut theirs);
                ours.clear();
                put_uint(&mut ours, tag, i as u64);
                assert_eq!(ours, theirs, "int64 {tag} {i}");
                let i = v as i32;
                theirs.clear();
                int32::encode(tag, &i, &mut theirs);
                ours.clear();
                put_uint(&mut ours, tag, i as u64);
                assert_eq!(ours, theirs, "int32 {tag} {i}");
            }
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_uint(&mut ours, tag, 1);
            pbool::encode(tag, &true, &mut theirs);
            assert_eq!(ours, theirs, "bool {tag}");
            // Left out at the default, but for an `optional` set to it.
            let mut out = Vec::new();
            put_flag(&mut out, tag, false);
            put_scalar(&mut out, tag, 0);
            put_str(&mut out, tag, "");
            put_opt(&mut out, tag, None);
            assert!(out.is_empty(), "{tag}");
            put_opt(&mut out, tag, Some(0));
            uint64::encode(tag, &0, &mut theirs);
            put_flag(&mut out, tag, true);
            pbool::encode(tag, &true, &mut theirs);
            put_scalar(&mut out, tag, 5);
            uint64::encode(tag, &5, &mut theirs);
            put_str(&mut out, tag, "s");
            string::encode(tag, &"s".to_string(), &mut theirs);
            assert_eq!(out, theirs[ours.len()..], "{tag}");
            for len in [0usize, 1, 126, 127, 128, 300, 16_383, 16_384, 20_000] {
                let s = "y".repeat(len);
                let (mut ours, mut theirs) = (vec![7], vec![7]);
                put_message(&mut ours, tag, |b| b.extend_from_slice(s.as_bytes()));
                prost::encoding::bytes::encode(tag, &s.as_bytes().to_vec(), &mut theirs);
                assert_eq!(ours, theirs, "message {tag} {len}");
            }
            for len in [0usize, 1, 127, 128, 300, 20_000] {
                let s = "x".repeat(len);
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                put_bytes(&mut ours, tag, s.as_bytes());
                string::encode(tag, &s, &mut theirs);
                assert_eq!(ours, theirs, "string {tag} {len}");
            }
        }
    }
}
