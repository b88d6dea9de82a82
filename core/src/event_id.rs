//! Event ids: the stable name of one delivered record.
//!
//! An event id is what an S3 record carries as `fsfeedEventData.eventId`
//! (and, in the ceph profile, as the top-level `eventId`, as Ceph writes
//! it), and what the pull service hands out as an ack id. It encodes the
//! record's own [`Position`]: `SEQ-SUB`, the seq as 16 and the sub-index as
//! 8 upper-case hex digits (`000000000000002A-00000000`). The form is stable:
//! ids written by any earlier fsfeed decode to the same position.
//!
//! Decoding gives the record's position; consuming the record means
//! committing the position *after* it, which [`crate::Cursor::ack`] does in
//! one call. Anything that is not an id fsfeed wrote (another system's id,
//! a truncated or altered one, seq 0) is [`Error::InvalidEventId`].

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::read::Position;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The id of the record at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Position);

impl EventId {
    /// Length of an id in bytes.
    pub const LEN: usize = 25;

    /// The id of the record at `position`.
    pub const fn new(position: Position) -> EventId {
        EventId(position)
    }

    /// The record's own position ([`crate::Cursor::ack`] commits the one after it).
    pub const fn position(&self) -> Position {
        self.0
    }

    /// The id as its 25 ASCII bytes, built without allocating.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        let mut seq = self.0.seq;
        for i in (0..16).rev() {
            b[i] = HEX[(seq & 15) as usize];
            seq >>= 4;
        }
        b[16] = b'-';
        let mut sub = self.0.sub;
        for i in (17..25).rev() {
            b[i] = HEX[(sub & 15) as usize];
            sub >>= 4;
        }
        b
    }

    /// Decode an id; anything fsfeed did not write is `invalid_event_id`.
    pub fn parse(s: &str) -> Result<EventId> {
        let bad = |reason: &str| Error::InvalidEventId {
            id: shown(s),
            reason: reason.to_string(),
        };
        let b = s.as_bytes();
        if b.len() != Self::LEN || b[16] != b'-' {
            return Err(bad("not SEQ-SUB with 16 and 8 hex digits"));
        }
        let digits = |part: &[u8]| -> Option<u64> {
            part.iter().try_fold(0u64, |acc, &c| {
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return None,
                };
                Some(acc << 4 | u64::from(d))
            })
        };
        let (Some(seq), Some(sub)) = (digits(&b[..16]), digits(&b[17..])) else {
            return Err(bad("not upper-case hex digits"));
        };
        if seq == 0 {
            return Err(bad("seq numbers start at 1"));
        }
        Ok(EventId(Position::new(seq, sub as u32)))
    }
}

/// At most 64 characters of a rejected id, for the error message.
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        // Only ASCII hex digits and `-` are ever written.
        f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for EventId {
    type Err = Error;

    fn from_str(s: &str) -> Result<EventId> {
        EventId::parse(s)
    }
}

impl From<Position> for EventId {
    fn from(p: Position) -> EventId {
        EventId(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_the_one_records_always_carried() {
        let id = EventId::new(Position::new(0xABC, 7));
        assert_eq!(id.to_string(), "0000000000000ABC-00000007");
        assert_eq!(EventId::parse("0000000000000ABC-00000007").unwrap(), id);
    }
}
