//! History rows as Arrow columns (feature `arrow`): the fields of a stored
//! event read straight from its bytes (`rows`), the column builders
//! (`columns`) and their schema. What `history()` returns, what sealed
//! segments hold, and what the ledger's row path builds: one definition,
//! below the ledger so that the ledger's sealer can use it.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

mod columns;
mod rows;

pub(crate) use columns::Columns;
pub(crate) use rows::Row;

/// The columns of a history batch.
pub fn schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let u = |n: &str, null: bool| Field::new(n, DataType::UInt64, null);
    Arc::new(Schema::new(vec![
        u("seq", false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("kind", false),
        s("volume", false),
        s("bucket", false),
        s("key", false),
        s("to_key", true),
        s("layout", false),
        Field::new("is_dir", DataType::Boolean, false),
        u("size", true),
        u("object_id", true),
        u("txid", true),
        s("principal", true),
        Field::new(
            "mtime",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        s("source", true),
    ]))
}

/// Check the row parser against prost's full decoding of the same bytes:
/// where prost decodes them, the row must hold exactly what prost's event
/// holds (its path filled in, as readers fill it); where it does not, the
/// row parser must not panic (it may still read a row, as it skips fields
/// a row does not hold without decoding them). What the unit test below
/// and the `history_row` fuzz target check; `Err` describes a difference.
#[doc(hidden)]
pub fn check_row_parser(bytes: &[u8]) -> std::result::Result<(), String> {
    use prost::Message;
    let row = Row::parse(bytes);
    let Ok(ev) = crate::proto::Event::decode(bytes) else {
        return Ok(());
    };
    let want = ev.op.as_ref().map(|op| via_prost(&ev, op));
    match row {
        Ok(got) if got == want => Ok(()),
        got => Err(format!("row parser gave {got:?}, prost {want:?}")),
    }
}

/// The row prost's full decoding of an event with an op gives, its path
/// filled in as `ledger::decode_event` fills it (an empty path is the key).
fn via_prost<'a>(ev: &'a crate::proto::Event, op: &'a crate::Op) -> Row<'a> {
    use crate::op::Kind;
    let kind = match &op.kind {
        None => 0,
        Some(k) => (20..=35)
            .find(|n| rows::kind_name(*n) == crate::op::kind_name(k))
            .unwrap_or(0),
    };
    Row {
        seq: ev.seq,
        time_us: op.time_us,
        kind,
        volume: &op.volume,
        bucket: &op.bucket,
        path: if ev.path.is_empty() {
            &op.key
        } else {
            &ev.path
        },
        to_path: &ev.to_path,
        key: &op.key,
        layout: op.layout,
        is_dir: op.is_dir,
        size: match &op.kind {
            Some(Kind::Commit(c)) => c.size,
            Some(Kind::Truncate(t)) => Some(t.size),
            _ => None,
        },
        object_id: op.object_id,
        txid: op.txid,
        principal: &op.principal,
        mtime: match &op.kind {
            Some(Kind::Commit(c)) => c.mtime,
            Some(Kind::SetTimes(t)) => t.mtime,
            _ => None,
        },
        source: &op.source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Kind;
    use prost::Message;

    #[test]
    fn rows_match_prost_decoding_for_a_varied_workload() {
        let ops = crate::workload::Workload::new(11, 1_767_225_600_000_000).take(5000);
        for (i, op) in ops.enumerate() {
            let mut op = crate::Op {
                txid: Some(i as u64 * 3),
                principal: if i % 2 == 0 {
                    "alice".into()
                } else {
                    String::new()
                },
                source: if i % 5 == 0 {
                    "resync".into()
                } else {
                    String::new()
                },
                ..op
            };
            // Commits with a modification time, before 1970 too (the
            // workload's set_times carry theirs).
            if let Some(Kind::Commit(c)) = &mut op.kind {
                c.mtime = match i % 3 {
                    0 => None,
                    1 => Some(op.time_us / 1000),
                    _ => Some(-86_400_000),
                };
            }
            // Format 7 leaves out a path that is the key (every third event
            // here keeps it, as format 6 stored it); the row fills it in.
            let ev = crate::proto::Event {
                seq: i as u64 + 1,
                path: if i % 3 == 0 {
                    op.key.clone()
                } else {
                    String::new()
                },
                to_path: match &op.kind {
                    Some(Kind::Rename(r)) => r.to_key.clone(),
                    _ => String::new(),
                },
                offset: i as u64 * 300,
                op: Some(op),
                ..Default::default()
            };
            let bytes = ev.encode_to_vec();
            let row = Row::parse(&bytes).unwrap().unwrap();
            assert_eq!(row.path, ev.op.as_ref().unwrap().key, "op {i}");
            check_row_parser(&bytes).unwrap_or_else(|e| panic!("op {i}: {e}"));
        }
        // No op: no row. Garbage: corrupt, not a panic.
        let bare = crate::proto::Event {
            seq: 5,
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(Row::parse(&bare).unwrap(), None);
        assert_eq!(Row::parse(&[0x12, 0x7f, 1]).unwrap_err().code(), "corrupt");
        assert_eq!(
            Row::parse(&[0x1a, 2, 0xff, 0xfe]).unwrap_err().code(),
            "corrupt"
        );
    }
}
