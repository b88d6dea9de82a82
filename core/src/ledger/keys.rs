//! Key encodings of the ledger's column families. One encoding each, fixed:
//! changing one is a format version change.
//!
//! | CF | key | value |
//! |---|---|---|
//! | `events` | first seq of the value, u64 big-endian (8 bytes) | a block of up to 32 events (`blocks`); format 5: one prost `Event` |
//! | `time` | running-max op time (u64 BE of a positive i64 µs) ++ seq (u64 BE) | `[1]` (format 3: empty) |
//! | `cursors` | cursor name, UTF-8 | prost `CursorState` |
//! | `meta` | one of the `META_*` names below | see each |
//!
//! The `time` CF holds an entry at every 64th seq (format 3: wherever the
//! running maximum of op times grew, Kafka's time index), so both halves of
//! its key increase together; a seek and the events after the entry before
//! it answer "first seq whose running max time reaches t" (`time_index`).

/// Column family of events.
pub const CF_EVENTS: &str = "events";
/// Column family of the time index.
pub const CF_TIME: &str = "time";
/// Column family of cursors committed through the writer process.
pub const CF_CURSORS: &str = "cursors";
/// Column family of fixed metadata keys.
pub const CF_META: &str = "meta";
/// Column family of the shadow namespace (kept by a later format step; created now so
/// every ledger has the same families).
pub const CF_NS: &str = "ns";
/// All column families besides `default`.
pub const ALL_CFS: &[&str] = &[CF_EVENTS, CF_NS, CF_TIME, CF_CURSORS, CF_META];

/// u32 BE: the on-disk format version.
pub const META_FORMAT: &[u8] = b"format_version";
/// u64 BE: first retained seq (head + 1 when empty).
pub const META_FIRST: &[u8] = b"first_seq";
/// u64 BE: last appended seq (0 when nothing was ever appended).
pub const META_HEAD: &[u8] = b"head_seq";
/// u64 BE: bytes of every event ever appended (key + value); an event's
/// `offset` is this total before it.
pub const META_TOTAL_BYTES: &[u8] = b"total_bytes";
/// u64 BE: running maximum of op times, µs.
pub const META_MAX_TIME: &[u8] = b"max_time_us";
/// u64 BE: the last producer txid stored (0: none).
pub const META_LAST_TXID: &[u8] = b"last_txid";
/// u64 BE: events below this seq are physically deleted (`<= first_seq`;
/// see `writer` for why physical deletion runs in chunks).
pub const META_PHYS_FIRST: &[u8] = b"phys_first_seq";
/// prost `Retention`.
pub const META_RETENTION: &[u8] = b"retention";
/// Sealed segments (format 5): one byte (1: sealing on), then the seqs per
/// segment, u64 BE. Every writer honours what is stored.
pub const META_SEGMENTS: &[u8] = b"segments";
/// u64 BE: the last seq the sealer has passed (a multiple of the seqs per
/// segment; 0: none). Derived data: not part of `checksum()`.
pub const META_SEALED: &[u8] = b"sealed_seq";

/// The key of the value starting at `seq` in CF `events`.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decode an `events` key.
pub fn decode_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// The key of a time index entry.
pub fn time_key(time_us: i64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&(time_us.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Decode a time index key into (time_us, seq).
pub fn decode_time_key(key: &[u8]) -> Option<(i64, u64)> {
    if key.len() != 16 {
        return None;
    }
    let t = u64::from_be_bytes(key[..8].try_into().ok()?);
    let s = u64::from_be_bytes(key[8..].try_into().ok()?);
    Some((t as i64, s))
}

/// Decode a u64 stored big-endian.
pub fn decode_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_keys_sort_numerically() {
        let mut keys: Vec<[u8; 8]> = [300u64, 2, 1 << 40, 255, 256].map(seq_key).to_vec();
        keys.sort();
        let seqs: Vec<u64> = keys.iter().map(|k| decode_seq(k).unwrap()).collect();
        assert_eq!(seqs, vec![2, 255, 256, 300, 1 << 40]);
    }

    #[test]
    fn time_keys_round_trip_and_sort_by_time_then_seq() {
        let a = time_key(1_000, 7);
        let b = time_key(1_000, 8);
        let c = time_key(2_000, 1);
        assert!(a < b && b < c);
        assert_eq!(decode_time_key(&c), Some((2_000, 1)));
        assert_eq!(decode_time_key(&a[..15]), None);
    }
}
