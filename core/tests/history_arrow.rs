//! History as Arrow batches (feature `arrow`): rows, ranges, filters, batch
//! sizes and gaps.
#![cfg(feature = "arrow")]

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::Array;
use common::{commits, open, T0};
use fsfeed::history::HistoryOptions;
use fsfeed::{Durability, Filter, Op, Retention, Start};

fn seqs(h: fsfeed::history::History) -> Vec<u64> {
    h.flat_map(|b| {
        let b = b.unwrap();
        b.column_by_name("seq")
            .unwrap()
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec()
    })
    .collect()
}

#[test]
fn rows_are_the_events_of_the_range_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(commits(0, 1000)).unwrap();
    l.append(Op::rename("vol1", "b1", "dir/k000001", "dir/renamed").at(T0 + 2_000_000))
        .unwrap();
    let mut h = l
        .history(HistoryOptions {
            since: Start::Seq(10),
            until: Some(Start::Seq(509)),
            batch_rows: 128,
            ..Default::default()
        })
        .unwrap();
    let first = h.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 128);
    assert_eq!(first.schema(), fsfeed::history::schema());
    let rest = seqs(h);
    assert_eq!(rest.len(), 500 - 128);
    assert_eq!(*rest.last().unwrap(), 509);

    // The default range is everything up to the head at open time.
    let h = l.history(HistoryOptions::default()).unwrap();
    assert_eq!(h.schema().fields().len(), 13);
    let all: Vec<_> = h.map(|b| b.unwrap()).collect();
    let last = all.last().unwrap();
    let kind = last.column_by_name("kind").unwrap().as_string::<i32>();
    let to_key = last.column_by_name("to_key").unwrap().as_string::<i32>();
    let n = last.num_rows() - 1;
    assert_eq!(kind.value(n), "rename");
    assert_eq!(to_key.value(n), "dir/renamed");
    assert!(to_key.is_null(0));
}

#[test]
fn filters_times_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(5000)),
    );
    l.append_batch(commits(0, 6000)).unwrap();
    let h = l
        .history(HistoryOptions {
            since: Start::Earliest,
            filter: Filter::all().prefix("dir/k0059"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(seqs(h), (5901..=6000).collect::<Vec<_>>());
    // Times: [T0 + 5500 ms, T0 + 5600 ms) is seqs 5501..=5600.
    let h = l
        .history(HistoryOptions {
            since: Start::Time(T0 + 5_500_000),
            until: Some(Start::Time(T0 + 5_600_000)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(seqs(h), (5501..=5600).collect::<Vec<_>>());
    // A range older than retention is a gap, not a silent later start.
    let e = l
        .history(HistoryOptions {
            since: Start::Seq(1),
            ..Default::default()
        })
        .err()
        .unwrap();
    assert_eq!(e.code(), "gap");
    let e = l
        .history(HistoryOptions {
            batch_rows: 0,
            ..Default::default()
        })
        .err()
        .unwrap();
    assert_eq!(e.code(), "invalid_argument");
}
