//! Reading prost's wire format without building messages: the primitives
//! of history's row parser (`columnar::rows`) and of the ledger's full form
//! of a stored event (`ledger::full_form`). Always built: `checksum()`
//! needs them without the `arrow` feature.

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
