//! Sealed Parquet segments (feature `segments`): what is sealed and where,
//! `history()` from segments against the row path, retention, the switch,
//! read-only openers and bad settings.
#![cfg(feature = "segments")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use common::T0;
use fsfeed::history::segments::{file_name, parse_name};
use fsfeed::history::HistoryOptions;
use fsfeed::workload::Workload;
use fsfeed::{Durability, Filter, Ledger, OpenOptions, Retention, Start};
use proptest::prelude::*;

const ROWS: u64 = 500;

fn open(dir: &Path, segments: Option<bool>, rows: Option<u64>) -> Ledger {
    Ledger::open_with(
        dir,
        OpenOptions {
            durability: Durability::None,
            segments,
            segment_rows: rows,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The next `n` ops of one workload (it goes on from the ledger's head).
fn fill(l: &Ledger, n: usize) {
    let head = l.stats().unwrap().head_seq as usize;
    let ops: Vec<_> = Workload::new(7, T0).skip(head).take(n).collect();
    for c in ops.chunks(997) {
        l.append_batch(c.to_vec()).unwrap();
    }
}

/// Every row of a history, as one batch per history batch.
fn rows(l: &Ledger, opts: HistoryOptions) -> fsfeed::Result<Vec<RecordBatch>> {
    l.history(opts)?
        .map(|b| b.map_err(|e| fsfeed::Error::Corrupt(e.to_string())))
        .collect()
}

/// The same rows, whatever the batching: one batch.
fn table(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&fsfeed::history::schema(), batches).unwrap()
}

/// Segment files and any other names in `LEDGER/segments`.
fn segment_files(dir: &Path) -> (Vec<(u64, u64)>, Vec<String>) {
    let mut segs = Vec::new();
    let mut other = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join(fsfeed::SEGMENTS_DIR)) {
        for e in entries {
            let name = e.unwrap().file_name().into_string().unwrap();
            match parse_name(&name) {
                Some(r) => segs.push(r),
                None => other.push(name),
            }
        }
    }
    segs.sort();
    (segs, other)
}

#[test]
fn complete_runs_are_sealed_under_their_seq_range() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, 2 * ROWS as usize + 137);
    assert!(l.segments_enabled().unwrap());
    assert_eq!(l.seal().unwrap(), 2 * ROWS);
    assert_eq!(l.sealed_seq().unwrap(), 2 * ROWS);
    let (segs, other) = segment_files(dir.path());
    assert_eq!(segs, vec![(1, ROWS), (ROWS + 1, 2 * ROWS)]);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(
        file_name(1, 500),
        "00000000000000000001-00000000000000000500.parquet"
    );
    // The run that completes is sealed by the background thread.
    fill(&l, ROWS as usize);
    let deadline = Instant::now() + Duration::from_secs(60);
    while l.sealed_seq().unwrap() < 3 * ROWS {
        assert!(Instant::now() < deadline, "the sealer did not seal");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(segment_files(dir.path()).0.len(), 3);
}

#[test]
fn a_segment_is_a_parquet_file_of_the_history_columns() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, ROWS as usize);
    l.seal().unwrap();
    let path = dir
        .path()
        .join(fsfeed::SEGMENTS_DIR)
        .join(file_name(1, ROWS));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let from_file: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let l2dir = tempfile::tempdir().unwrap();
    let off = open(l2dir.path(), Some(false), None);
    fill(&off, ROWS as usize);
    let expected = table(&rows(&off, HistoryOptions::default()).unwrap());
    assert_eq!(table(&from_file), expected);
}

/// One history request: a range and a filter.
fn request(since: u64, len: u64, filter: u8, batch_rows: usize) -> HistoryOptions {
    let filter = match filter {
        0 => Filter::all(),
        1 => Filter::all().bucket("warehouse"),
        2 => Filter::all().prefix("d"),
        3 => Filter::all().kind("rename").kind("delete"),
        4 => Filter::all().suffix("7").bucket("ingest"),
        _ => Filter::all().event("s3:ObjectCreated:*"),
    };
    HistoryOptions {
        since: Start::Seq(since),
        until: Some(Start::Seq(since + len)),
        filter,
        batch_rows,
    }
}

#[test]
fn history_from_segments_equals_the_row_path() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on = open(a.path(), None, Some(ROWS));
    let off = open(b.path(), Some(false), None);
    let n = 6 * ROWS as usize + 321;
    fill(&on, n);
    fill(&off, n);
    on.seal().unwrap();
    assert_eq!(segment_files(a.path()).0.len(), 6);
    assert!(segment_files(b.path()).0.is_empty());
    assert_eq!(on.checksum().unwrap(), off.checksum().unwrap());
    // Whole history, in one batch per default run.
    assert_eq!(
        table(&rows(&on, HistoryOptions::default()).unwrap()),
        table(&rows(&off, HistoryOptions::default()).unwrap())
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(
            &(
                1..n as u64,
                0..(3 * ROWS),
                0u8..6,
                1usize..(2 * ROWS as usize),
            ),
            |(since, len, filter, batch)| {
                let x = rows(&on, request(since, len, filter, batch)).unwrap();
                let y = rows(&off, request(since, len, filter, batch)).unwrap();
                // The same batches: runs of `batch_rows` seqs either way.
                prop_assert_eq!(x, y);
                Ok(())
            },
        )
        .unwrap();
}

/// Proof that reads come from the files: a segment sealed from other ops
/// (same seqs) put in place of one is what `history()` returns.
#[test]
fn history_reads_the_sealed_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mine = open(a.path(), None, Some(ROWS));
    let other = open(b.path(), None, Some(ROWS));
    fill(&mine, 2 * ROWS as usize);
    let ops: Vec<_> = Workload::new(99, T0 + 5).take(2 * ROWS as usize).collect();
    other.append_batch(ops).unwrap();
    mine.seal().unwrap();
    other.seal().unwrap();
    let name = file_name(ROWS + 1, 2 * ROWS);
    let seg = |d: &Path| d.join(fsfeed::SEGMENTS_DIR).join(&name);
    std::fs::copy(seg(b.path()), seg(a.path())).unwrap();
    let second = || HistoryOptions {
        since: Start::Seq(ROWS + 1),
        until: Some(Start::Seq(2 * ROWS)),
        ..Default::default()
    };
    let theirs = rows(&other, second()).unwrap();
    assert_eq!(rows(&mine, second()).unwrap(), theirs);
    // The first segment is still this ledger's own.
    let first = || HistoryOptions {
        until: Some(Start::Seq(ROWS)),
        ..Default::default()
    };
    assert_ne!(
        rows(&mine, first()).unwrap(),
        rows(&other, first()).unwrap()
    );
}

#[test]
fn retention_removes_whole_segments_and_reads_stay_exact() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on = open(a.path(), None, Some(ROWS));
    let off = open(b.path(), Some(false), None);
    fill(&on, 4 * ROWS as usize);
    fill(&off, 4 * ROWS as usize);
    on.seal().unwrap();
    assert_eq!(segment_files(a.path()).0.len(), 4);
    let keep = Retention {
        max_events: Some(2 * ROWS + 200),
        ..Default::default()
    };
    on.set_retention(keep).unwrap();
    off.set_retention(keep).unwrap();
    fill(&on, 100);
    fill(&off, 100);
    let first = on.first_seq().unwrap();
    assert_eq!(first, off.first_seq().unwrap());
    assert!(first > ROWS + 1 && first < 2 * ROWS, "first {first}");
    on.seal().unwrap();
    // Segment 1 is below first_seq; segment 2 straddles it and stays.
    let (segs, _) = segment_files(a.path());
    assert_eq!(segs.first(), Some(&(ROWS + 1, 2 * ROWS)));
    // From first_seq on, the same rows; before it, a gap either way.
    for since in [first, first + 1, 2 * ROWS, 2 * ROWS + 1] {
        let opts = || HistoryOptions {
            since: Start::Seq(since),
            ..Default::default()
        };
        assert_eq!(
            table(&rows(&on, opts()).unwrap()),
            table(&rows(&off, opts()).unwrap())
        );
    }
    let before = HistoryOptions {
        since: Start::Seq(first - 1),
        ..Default::default()
    };
    assert_eq!(rows(&on, before.clone()).unwrap_err().code(), "gap");
    assert_eq!(rows(&off, before).unwrap_err().code(), "gap");
}

#[test]
fn runs_retention_had_cut_into_are_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_with(
        dir.path(),
        OpenOptions {
            durability: Durability::None,
            segments: Some(false),
            segment_rows: Some(ROWS),
            retention: Some(Retention {
                max_events: Some(ROWS + 50),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .unwrap();
    fill(&l, 3 * ROWS as usize);
    drop(l);
    // Turned on later: runs already cut short are passed, the others sealed.
    let l = open(dir.path(), Some(true), None);
    let first = l.first_seq().unwrap();
    assert_eq!(l.seal().unwrap(), 3 * ROWS);
    let (segs, other) = segment_files(dir.path());
    assert!(other.is_empty());
    assert!(
        segs.iter().all(|&(s, _)| s >= first),
        "{segs:?} first {first}"
    );
    assert_eq!(segs, vec![(2 * ROWS + 1, 3 * ROWS)]);
}

#[test]
fn turning_segments_off_removes_them_and_the_setting_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, 2 * ROWS as usize);
    l.seal().unwrap();
    assert_eq!(segment_files(dir.path()).0.len(), 2);
    l.close().unwrap();
    let l = open(dir.path(), Some(false), None);
    assert!(!l.segments_enabled().unwrap());
    assert_eq!(l.sealed_seq().unwrap(), 0);
    assert!(!dir.path().join(fsfeed::SEGMENTS_DIR).exists());
    fill(&l, ROWS as usize);
    assert_eq!(l.seal().unwrap(), 0);
    l.close().unwrap();
    // A later writer that says nothing honours the stored "off".
    let l = open(dir.path(), None, None);
    assert!(!l.segments_enabled().unwrap());
    l.close().unwrap();
    // On again: the whole retained history is sealed.
    let l = open(dir.path(), Some(true), None);
    assert_eq!(l.seal().unwrap(), 3 * ROWS);
    assert_eq!(segment_files(dir.path()).0.len(), 3);
    l.close().unwrap();
    // Another size: the old segments go, the new ones come.
    let l = open(dir.path(), None, Some(2 * ROWS));
    assert_eq!(l.seal().unwrap(), 2 * ROWS);
    assert_eq!(segment_files(dir.path()).0, vec![(1, 2 * ROWS)]);
}

#[test]
fn a_temporary_file_left_by_a_kill_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, ROWS as usize);
    l.close().unwrap();
    let seg_dir = dir.path().join(fsfeed::SEGMENTS_DIR);
    std::fs::create_dir_all(&seg_dir).unwrap();
    // Named after a run beyond the head: the new sealer writes the first
    // run's own temporary file while it seals, so a check of that name
    // would race with it (seen once under load).
    let tmp = seg_dir.join(format!(".{}.tmp", file_name(ROWS + 1, 2 * ROWS)));
    std::fs::write(&tmp, b"half a segment").unwrap();
    let l = open(dir.path(), None, None);
    assert!(!tmp.exists());
    assert_eq!(l.seal().unwrap(), ROWS);
    assert_eq!(segment_files(dir.path()), (vec![(1, ROWS)], vec![]));
}

#[test]
fn a_missing_or_damaged_segment_falls_back_to_the_row_path() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on = open(a.path(), None, Some(ROWS));
    let off = open(b.path(), Some(false), None);
    fill(&on, 3 * ROWS as usize);
    fill(&off, 3 * ROWS as usize);
    on.seal().unwrap();
    let seg_dir = a.path().join(fsfeed::SEGMENTS_DIR);
    std::fs::remove_file(seg_dir.join(file_name(1, ROWS))).unwrap();
    std::fs::write(seg_dir.join(file_name(ROWS + 1, 2 * ROWS)), b"not parquet").unwrap();
    assert_eq!(
        table(&rows(&on, HistoryOptions::default()).unwrap()),
        table(&rows(&off, HistoryOptions::default()).unwrap())
    );
}

#[test]
fn a_read_only_opener_reads_segments_sealed_after_it_opened() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Through the log, which the reader follows.
    let on = Ledger::open_with(
        a.path(),
        OpenOptions {
            durability: Durability::Buffered,
            segment_rows: Some(ROWS),
            ..Default::default()
        },
    )
    .unwrap();
    let off = open(b.path(), Some(false), None);
    fill(&on, 10);
    let reader = Ledger::open_read_only(a.path()).unwrap();
    fill(&on, 2 * ROWS as usize);
    fill(&off, 2 * ROWS as usize + 10);
    on.seal().unwrap();
    assert_eq!(reader.sealed_seq().unwrap(), 0, "before it catches up");
    // Runs of one segment: the first two from the segments, the tail not.
    let opts = || HistoryOptions {
        batch_rows: ROWS as usize,
        ..Default::default()
    };
    assert_eq!(rows(&reader, opts()).unwrap(), rows(&off, opts()).unwrap());
    assert_eq!(reader.sealed_seq().unwrap(), 2 * ROWS);
    assert_eq!(reader.seal().unwrap_err().code(), "read_only");
}

/// A format 4 ledger (no segment setting): read-only openers read it as a
/// ledger without segments; a writable open stores "on", says format 5,
/// and seals its history.
#[test]
fn a_format_4_ledger_is_upgraded_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Some(false), Some(ROWS));
    fill(&l, 2 * ROWS as usize + 5);
    l.close().unwrap();
    drop(l);
    {
        let db = common::raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        db.delete_cf(meta, b"segments").unwrap();
        db.delete_cf(meta, b"sealed_seq").unwrap();
        db.put_cf(meta, b"format_version", 4u32.to_be_bytes())
            .unwrap();
        db.flush_cf(meta).unwrap();
    }
    let format = || {
        let db = common::raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        let v = db.get_cf(meta, b"format_version").unwrap().unwrap();
        u32::from_be_bytes(v.as_slice().try_into().unwrap())
    };
    let r = Ledger::open_read_only(dir.path()).unwrap();
    assert!(!r.segments_enabled().unwrap());
    assert_eq!(rows(&r, HistoryOptions::default()).unwrap().len(), 1);
    r.close().unwrap();
    assert_eq!(format(), 4, "a reader changed nothing");
    let l = open(dir.path(), None, None);
    assert!(l.segments_enabled().unwrap());
    assert_eq!(l.seal().unwrap(), 0, "65,536 seqs per segment: none full");
    l.close().unwrap();
    assert_eq!(format(), fsfeed::FORMAT_VERSION);
}

#[test]
fn bad_segment_sizes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0, 1, 63, (1 << 20) + 1, u64::MAX] {
        let e = Ledger::open_with(
            dir.path(),
            OpenOptions {
                segment_rows: Some(bad),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{bad}");
        assert!(e.to_string().contains("segment_rows"), "{e}");
    }
    assert!(!dir.path().join("db").exists(), "nothing was created");
    let l = open(dir.path(), None, None);
    fill(&l, 10);
    l.close().unwrap();
    let e = Ledger::open_with(
        dir.path(),
        OpenOptions {
            segment_rows: Some(0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    let l = open(dir.path(), None, None);
    assert!(l.segments_enabled().unwrap());
    assert_eq!(l.seal().unwrap(), 0, "65,536 seqs per segment as before");
}

/// The rows of an export's files, read back with the parquet crate.
fn file_rows(file: &fsfeed::history::export::ExportFile) -> Vec<RecordBatch> {
    let tmp = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &tmp, &file.bytes).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(tmp)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn an_export_is_cut_at_segment_boundaries_and_copies_sealed_segments() {
    use fsfeed::history::export::ExportOptions;
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, 3 * ROWS as usize + 137);
    l.seal().unwrap();
    let exp = l
        .export(ExportOptions {
            since: Start::Seq(250),
            until: None,
        })
        .unwrap();
    let end = 3 * ROWS + 137;
    assert_eq!(exp.range(), Some((250, end)));
    let want = vec![
        (250, ROWS),
        (ROWS + 1, 2 * ROWS),
        (2 * ROWS + 1, 3 * ROWS),
        (3 * ROWS + 1, end),
    ];
    assert_eq!(exp.pieces(), want);
    let files: Vec<_> = exp.map(|f| f.unwrap()).collect();
    let got: Vec<_> = files.iter().map(|f| (f.first, f.last)).collect();
    assert_eq!(got, want);
    assert_eq!(
        files.iter().map(|f| f.copied).collect::<Vec<_>>(),
        [false, true, true, false]
    );
    // A copied piece is the sealed segment, byte for byte, and named as it.
    let seg = dir
        .path()
        .join(fsfeed::SEGMENTS_DIR)
        .join(file_name(ROWS + 1, 2 * ROWS));
    assert_eq!(files[1].bytes, std::fs::read(seg).unwrap());
    assert_eq!(files[1].name(), file_name(ROWS + 1, 2 * ROWS));
    // The files hold exactly the rows history() gives for the range.
    let mut read = Vec::new();
    for f in &files {
        let batches = file_rows(f);
        assert_eq!(
            batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
            f.rows
        );
        read.extend(batches);
    }
    let since = HistoryOptions {
        since: Start::Seq(250),
        ..Default::default()
    };
    assert_eq!(table(&read), table(&rows(&l, since).unwrap()));
}

#[test]
fn an_export_without_segments_and_of_bounded_ranges() {
    use fsfeed::history::export::ExportOptions;
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Some(false), None);
    fill(&l, 700);
    // Unsealed ledgers cut at the default segment size: one piece here.
    let exp = l.export(ExportOptions::default()).unwrap();
    assert_eq!(exp.pieces(), vec![(1, 700)]);
    let files: Vec<_> = exp.map(|f| f.unwrap()).collect();
    assert_eq!(files.len(), 1);
    assert!(!files[0].copied);
    assert_eq!(
        table(&file_rows(&files[0])),
        table(&rows(&l, HistoryOptions::default()).unwrap())
    );
    // `until` is inclusive; a range past the head ends at the head.
    let exp = l
        .export(ExportOptions {
            since: Start::Seq(10),
            until: Some(Start::Seq(20)),
        })
        .unwrap();
    assert_eq!(exp.range(), Some((10, 20)));
    // What history() and export plan with, asked directly.
    assert_eq!(
        l.history_range(Start::Seq(10), Some(Start::Seq(20)))
            .unwrap(),
        Some((10, 20))
    );
    assert_eq!(
        l.history_range(Start::Earliest, None).unwrap(),
        Some((1, 700))
    );
    assert_eq!(l.history_range(Start::Seq(701), None).unwrap(), None);
    assert_eq!(
        l.history_range(Start::Seq(9), Some(Start::Committed))
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
    let exp = l
        .export(ExportOptions {
            since: Start::Seq(690),
            until: Some(Start::Seq(10_000)),
        })
        .unwrap();
    assert_eq!(exp.range(), Some((690, 700)));
    // An empty range: no file.
    let mut exp = l
        .export(ExportOptions {
            since: Start::Seq(701),
            until: None,
        })
        .unwrap();
    assert_eq!(exp.range(), None);
    assert!(exp.next().is_none());
    // Bad bounds are typed errors.
    let e = l
        .export(ExportOptions {
            since: Start::Seq(5),
            until: Some(Start::Committed),
        })
        .err()
        .unwrap();
    assert_eq!(e.code(), "invalid_argument");
    // A start past the head, as in history(): nothing yet.
    let exp = l
        .export(ExportOptions {
            since: Start::Seq(10_000),
            until: None,
        })
        .unwrap();
    assert_eq!(exp.range(), None);
}

#[test]
fn an_export_before_the_first_retained_event_is_a_gap() {
    use fsfeed::history::export::ExportOptions;
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    l.set_retention(Retention {
        max_events: Some(ROWS + 100),
        ..Default::default()
    })
    .unwrap();
    fill(&l, 3 * ROWS as usize);
    l.seal().unwrap();
    let first = l.first_seq().unwrap();
    let e = l
        .export(ExportOptions {
            since: Start::Seq(first - 1),
            until: None,
        })
        .err()
        .unwrap();
    assert!(
        matches!(e, fsfeed::Error::Gap { expected, actual } if expected == first - 1 && actual == first)
    );
    // From first_seq: a partial piece, then the last sealed segment copied.
    let files: Vec<_> = l
        .export(ExportOptions {
            since: Start::Earliest,
            until: None,
        })
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(files[0].first, first);
    assert!(!files[0].copied);
    assert!(files.last().unwrap().copied);
    assert_eq!(
        files.iter().map(|f| f.rows).sum::<u64>(),
        3 * ROWS - first + 1
    );
}

/// Reads between retention steps: a ledger that seals and one that does not
/// are fed the same ops and retention; every read (ranges that start before,
/// at and after `first_seq`, filters, time bounds) gives the same rows or
/// the same error.
#[test]
fn history_from_segments_equals_the_row_path_across_retention_steps() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    runner
        .run(
            &proptest::collection::vec(
                (
                    1usize..(2 * ROWS as usize),
                    proptest::option::of(ROWS..(4 * ROWS)),
                    proptest::collection::vec(
                        (0u64..(2 * ROWS), 1..(2 * ROWS), 0u8..6, any::<bool>()),
                        1..4,
                    ),
                ),
                1..5,
            ),
            |steps| {
                let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
                let on = open(a.path(), None, Some(ROWS));
                let off = open(b.path(), Some(false), None);
                for (n, keep, reads) in steps {
                    let keep = Retention {
                        max_events: keep,
                        ..Default::default()
                    };
                    on.set_retention(keep).unwrap();
                    off.set_retention(keep).unwrap();
                    fill(&on, n);
                    fill(&off, n);
                    on.seal().unwrap();
                    let first = on.first_seq().unwrap();
                    prop_assert_eq!(first, off.first_seq().unwrap());
                    for (back, len, filter, by_time) in reads {
                        // From up to 2 runs before first_seq.
                        let since = (first + ROWS).saturating_sub(back).max(1);
                        let mut req = request(since, len, filter, ROWS as usize);
                        if by_time {
                            // The workload's op times: whole seconds apart or
                            // less; any instant inside the range will do.
                            req.until = Some(Start::Time(T0 + (since + len) as i64 * 1000));
                        }
                        let x = rows(&on, req.clone()).map_err(|e| e.code());
                        let y = rows(&off, req).map_err(|e| e.code());
                        prop_assert_eq!(x, y);
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_failing_sealer_says_why_in_stats_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), None, Some(64)));
    // A file where the segments directory goes: every seal fails.
    let seg = dir.path().join(fsfeed::SEGMENTS_DIR);
    let _ = std::fs::remove_dir_all(&seg);
    std::fs::write(&seg, b"in the way").unwrap();
    let l = open(dir.path(), None, Some(64));
    assert_eq!(l.stats().unwrap().segments.last_error, None);
    fill(&l, 64);
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "the sealer never {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until("failed", &|| {
        l.stats().unwrap().segments.last_error.is_some()
    });
    let stats = l.stats().unwrap();
    assert_eq!(stats.segments.sealed_seq, 0);
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["segments"]["last_error"].is_string(), "{json}");
    // Out of the way: the next run seals both, and the error goes.
    std::fs::remove_file(&seg).unwrap();
    fill(&l, 64);
    until("recovered", &|| {
        let s = l.stats().unwrap().segments;
        s.last_error.is_none() && s.sealed_seq == 128
    });
    assert_eq!(segment_files(dir.path()).0, vec![(1, 64), (65, 128)]);
    let json = serde_json::to_value(l.stats().unwrap()).unwrap();
    assert!(json["segments"].get("last_error").is_none(), "{json}");
}

/// The columns of a segment file, and how many rows it holds.
fn file_columns(path: &Path) -> (Vec<String>, usize) {
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap();
    let names = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let rows = b.build().unwrap().map(|r| r.unwrap().num_rows()).sum();
    (names, rows)
}

/// Segments sealed before `mtime` and `source` were columns (written here
/// without them, as that version wrote them) are passed by on reads, and
/// a writable open seals the retained history again with every column.
#[test]
fn segments_of_older_columns_are_read_past_and_sealed_again() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), None, Some(ROWS));
    fill(&l, 3 * ROWS as usize);
    l.seal().unwrap();
    l.close().unwrap();
    drop(l);
    let seg_dir = dir.path().join(fsfeed::SEGMENTS_DIR);
    let current: Vec<String> = fsfeed::history::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let older: Vec<String> = current[..current.len() - 2].to_vec();
    assert_eq!(&current[current.len() - 2..], ["mtime", "source"]);
    for k in 0..3 {
        let path = seg_dir.join(file_name(k * ROWS + 1, (k + 1) * ROWS));
        let batches: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&path).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(|b| {
                b.unwrap()
                    .project(&(0..older.len()).collect::<Vec<_>>())
                    .unwrap()
            })
            .collect();
        let file = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        assert_eq!(file_columns(&path), (older.clone(), ROWS as usize));
    }
    // A read-only opener reads past them: the rows of the row path.
    let off_dir = tempfile::tempdir().unwrap();
    let off = open(off_dir.path(), Some(false), None);
    fill(&off, 3 * ROWS as usize);
    let expected = table(&rows(&off, HistoryOptions::default()).unwrap());
    {
        let reader = Ledger::open_read_only(dir.path()).unwrap();
        assert_eq!(
            table(&rows(&reader, HistoryOptions::default()).unwrap()),
            expected
        );
    }
    // A writable open seals them again, with every column.
    let l = open(dir.path(), None, Some(ROWS));
    l.seal().unwrap();
    assert_eq!(l.sealed_seq().unwrap(), 3 * ROWS);
    for k in 0..3 {
        let path = seg_dir.join(file_name(k * ROWS + 1, (k + 1) * ROWS));
        assert_eq!(file_columns(&path), (current.clone(), ROWS as usize));
    }
    assert_eq!(
        table(&rows(&l, HistoryOptions::default()).unwrap()),
        expected
    );
}
