//! Event ids: a stable, documented codec between an id (the S3 `eventId`,
//! the pull service's ack id) and the record's position; acking an id
//! commits the position after the record, and a foreign or corrupt id is a
//! typed error that changes nothing.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::render::s3::S3Options;
use fsfeed::{
    CursorOptions, Durability, Error, EventId, ExpandOptions, Format, Layout, Op, Position, Start,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn every_position_round_trips(seq in 1u64.., sub in any::<u32>()) {
        let p = Position::new(seq, sub);
        let id = EventId::new(p).to_string();
        prop_assert_eq!(id.len(), EventId::LEN);
        prop_assert_eq!(EventId::parse(&id).unwrap().position(), p);
        // Ids sort as their positions do.
        let q = Position::new(seq.saturating_add(1), 0);
        prop_assert!(EventId::new(q).to_string() > id || q == p);
    }

    #[test]
    fn anything_else_is_invalid_event_id(s in "\\PC{0,40}") {
        match EventId::parse(&s) {
            Ok(id) => prop_assert_eq!(id.to_string(), s),
            Err(e) => prop_assert_eq!(e.code(), "invalid_event_id"),
        }
    }

    #[test]
    fn one_changed_character_is_caught_or_names_another_record(
        seq in 1u64.., sub in any::<u32>(), at in 0usize..25, c in "[0-9A-Za-z_. -]",
    ) {
        let id = EventId::new(Position::new(seq, sub)).to_string();
        let mut b = id.clone().into_bytes();
        b[at] = c.as_bytes()[0];
        let changed = String::from_utf8(b).unwrap();
        match EventId::parse(&changed) {
            Ok(other) => prop_assert!(changed == id || other.position() != Position::new(seq, sub)),
            Err(e) => prop_assert_eq!(e.code(), "invalid_event_id"),
        }
    }
}

#[test]
fn foreign_ids_are_rejected() {
    for bad in [
        "",
        "7d3b5e9c-0d2a-4f8e-9b1a-2c3d4e5f6a7b", // a UUID, as other systems send
        "0000000000000001-0000000",
        "0000000000000001-000000000",
        "0000000000000000-00000000", // seq 0
        "000000000000000a-00000000", // lower case: not what fsfeed writes
        "0000000000000001_00000000",
        "+000000000000001-00000000",
        "00000000000000ü-00000000",
    ] {
        let e = EventId::parse(bad).unwrap_err();
        assert_eq!(e.code(), "invalid_event_id", "{bad:?}");
        assert!(e.is_invalid_input());
    }
    let long = "A".repeat(100_000);
    let msg = EventId::parse(&long).unwrap_err().to_string();
    assert!(
        msg.len() < 200,
        "the message holds at most 64 characters of the id"
    );
}

#[test]
fn ack_commits_the_position_after_the_record_and_nothing_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    // An explicit FSO directory with three files, renamed: with expansion,
    // one event gives eight records at (seq, 0..8): its marker `d/` -> `e/`,
    // then each file.
    let fso = |op: Op| op.with_layout(Layout::Fso);
    let mut ops = vec![fso(Op::create_directory("v", "b", "d")).at(T0 + 1)];
    for i in 0..3 {
        ops.push(fso(Op::commit("v", "b", &format!("d/f{i}"), 1, "e")).at(T0 + 2 + i));
    }
    ops.push(fso(Op::rename("v", "b", "d", "e")).at(T0 + 10));
    ops.push(fso(Op::commit("v", "b", "after", 1, "e")).at(T0 + 11));
    ledger.append_batch(ops).unwrap();
    let opts = || CursorOptions {
        start: Start::Earliest,
        format: Format::S3(S3Options::default()),
        expand: ExpandOptions {
            renames: true,
            deletes: true,
        },
        ..Default::default()
    };
    let c = ledger.cursor(Some("svc"), opts()).unwrap();
    let mut c2 = ledger.cursor(None, opts()).unwrap();
    let recs = c2.read(100, Duration::ZERO).unwrap().records;
    let expanded: Vec<_> = recs.iter().filter(|r| r.expansion.is_some()).collect();
    assert_eq!(expanded.len(), 8);
    assert_eq!(
        (expanded[0].object_key(), expanded[1].object_key()),
        ("d", "e")
    );
    let third = expanded[2];
    let id = EventId::new(third.position).to_string();
    let rendered = c2.renderer().render(third).unwrap();
    assert_eq!(rendered["fsfeedEventData"]["eventId"], id.as_str());
    // Inside an expansion: the next sub of the same event.
    let next = c.ack(&id).unwrap();
    assert_eq!(
        next,
        Position::new(third.position.seq, third.position.sub + 1)
    );
    assert_eq!(ledger.committed("svc").unwrap(), Some(next));
    // After an event read as itself: the next seq.
    let last = recs.last().unwrap();
    let next = c.ack(&EventId::new(last.position).to_string()).unwrap();
    assert_eq!(next, Position::new(last.position.seq + 1, 0));
    // A resumed cursor reads nothing the ack consumed.
    let mut resumed = ledger
        .cursor(
            Some("svc"),
            CursorOptions {
                start: Start::Committed,
                ..opts()
            },
        )
        .unwrap();
    assert!(resumed.read(100, Duration::ZERO).unwrap().is_empty());
    // Bad ids change nothing.
    for bad in ["nope", "0000000000000000-00000000"] {
        assert!(matches!(c.ack(bad), Err(Error::InvalidEventId { .. })));
    }
    let past = EventId::new(Position::new(1_000, 0)).to_string();
    assert_eq!(c.ack(&past).unwrap_err().code(), "position_out_of_range");
    assert_eq!(ledger.committed("svc").unwrap(), Some(next));
}
