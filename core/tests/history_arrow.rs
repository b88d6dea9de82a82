//! History as Arrow batches (feature `arrow`): rows, ranges, filters, batch
//! sizes and gaps.
#![cfg(feature = "arrow")]

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, RecordBatch};
use common::{commits, open, T0};
use fsfeed::history::HistoryOptions;
use fsfeed::{Durability, Filter, Op, Retention, Start};

/// The `seq` column of one batch.
fn batch_seqs(b: &RecordBatch) -> Vec<u64> {
    b.column_by_name("seq")
        .unwrap()
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec()
}

fn seqs(h: fsfeed::history::History) -> Vec<u64> {
    h.flat_map(|b| batch_seqs(&b.unwrap())).collect()
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

    // A commit with its modification time and a producer's source, and a
    // `set_times` (times in milliseconds).
    let mut commit = Op::commit("vol1", "b1", "dir/k000002", 7, "e").at(T0 + 3_000_000);
    commit.source = "resync".into();
    if let Some(fsfeed::op::Kind::Commit(c)) = &mut commit.kind {
        c.mtime = Some(-1_000);
    }
    l.append_batch(vec![
        commit,
        Op::set_times("vol1", "b1", "dir/k000002", Some(1_767_225_600_123), None)
            .at(T0 + 4_000_000),
    ])
    .unwrap();

    // The default range is everything up to the head at open time.
    let h = l.history(HistoryOptions::default()).unwrap();
    assert_eq!(h.schema().fields().len(), 15);
    let all: Vec<_> = h.map(|b| b.unwrap()).collect();
    let last = all.last().unwrap();
    let kind = last.column_by_name("kind").unwrap().as_string::<i32>();
    let to_key = last.column_by_name("to_key").unwrap().as_string::<i32>();
    let mtime = last
        .column_by_name("mtime")
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampMillisecondType>();
    let source = last.column_by_name("source").unwrap().as_string::<i32>();
    let n = last.num_rows() - 1;
    assert_eq!(kind.value(n - 2), "rename");
    assert_eq!(to_key.value(n - 2), "dir/renamed");
    assert!(to_key.is_null(0));
    assert_eq!(
        (kind.value(n - 1), mtime.value(n - 1), source.value(n - 1)),
        ("commit", -1_000, "resync")
    );
    assert_eq!(
        (kind.value(n), mtime.value(n), source.is_null(n)),
        ("set_times", 1_767_225_600_123, true)
    );
    // Other ops have neither.
    assert!(mtime.is_null(0) && mtime.is_null(n - 2) && source.is_null(0));
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

#[test]
fn batches_from_several_threads_come_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(commits(0, 2000)).unwrap();
    // Batch i is the i-th run of 7 seqs, read by thread i % threads; a
    // filter leaves some runs empty (no batch) and others short.
    let h = l
        .history(HistoryOptions {
            since: Start::Seq(3),
            filter: Filter::all().prefix("dir/k0001"),
            batch_rows: 7,
            ..Default::default()
        })
        .unwrap();
    let mut got = Vec::new();
    for b in h {
        let b = b.unwrap();
        assert!(b.num_rows() >= 1 && b.num_rows() <= 7);
        got.extend(batch_seqs(&b));
    }
    let want: Vec<u64> = l
        .scan(3, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.path.starts_with("dir/k0001"))
        .map(|e| e.seq)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn retention_passing_a_streaming_history_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(
        dir.path(),
        Durability::None,
        Some(Retention::default().with_max_events(3000)),
    );
    l.append_batch(commits(0, 3000)).unwrap();
    let mut h = l
        .history(HistoryOptions {
            batch_rows: 100,
            ..Default::default()
        })
        .unwrap();
    let first = h.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 100);
    // 2,000 more events: the first 2,000 seqs fall out of retention while
    // the history is on seq 101. What was read ahead still comes, in order,
    // then the gap; never a batch after a hole.
    l.append_batch(commits(3000, 2000)).unwrap();
    let mut next = 101;
    let mut gap = None;
    for b in h {
        match b {
            Ok(b) => {
                assert_eq!(batch_seqs(&b)[0], next, "a batch after a hole");
                next += b.num_rows() as u64;
            }
            Err(e) => {
                gap = Some(e.to_string());
                break;
            }
        }
    }
    assert!(next < 2001, "read {next}");
    assert!(gap.unwrap().contains("gap"));
}

#[test]
fn a_ledger_closed_while_its_history_reads_can_be_opened_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    for i in 0..20 {
        l.append_batch(commits(i * 10_000, 10_000)).unwrap();
    }
    // Dropped after one batch, while its threads read the next runs.
    let mut h = l.history(HistoryOptions::default()).unwrap();
    assert_eq!(h.next().unwrap().unwrap().num_rows(), 65_536);
    drop(h);
    l.close().unwrap();
    let l = open(dir.path(), Durability::None, None);
    // Not dropped: closing the ledger stops it. What it still yields is
    // whole batches, then (unless it had read everything) `ledger_closed`.
    let mut h = l.history(HistoryOptions::default()).unwrap();
    let mut rows = h.next_batch().unwrap().unwrap().num_rows();
    l.close().unwrap();
    let again = open(dir.path(), Durability::None, None);
    assert_eq!(again.stats().unwrap().head_seq, 200_000);
    loop {
        match h.next_batch() {
            Ok(Some(b)) => rows += b.num_rows(),
            Ok(None) => {
                assert_eq!(rows, 200_000, "ended early without an error");
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), "ledger_closed", "{e}");
                assert!(h.next_batch().unwrap().is_none());
                break;
            }
        }
    }
}

#[test]
fn a_read_only_opener_reads_history_on_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let w = open(dir.path(), Durability::Sync, None);
    w.append_batch(commits(0, 3000)).unwrap();
    let r = fsfeed::Ledger::open_read_only(dir.path()).unwrap();
    let h = r
        .history(HistoryOptions {
            batch_rows: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(seqs(h), (1..=3000).collect::<Vec<_>>());
    // Events the writer adds later are seen by a later history.
    w.append_batch(commits(3000, 500)).unwrap();
    let h = r
        .history(HistoryOptions {
            since: Start::Seq(2990),
            batch_rows: 64,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(seqs(h), (2990..=3500).collect::<Vec<_>>());
}
