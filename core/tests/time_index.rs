//! The sparse time index (format 4, `ledger/time_index.rs`): "the first seq
//! whose running-max op time reaches t" answers as a scan of every event
//! would, with op times that repeat and go backwards, under retention that
//! deletes history, after a reopen, and on a format 3 ledger (an entry at
//! every growth of the running max) before and after its upgrade.
mod common;

use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, Ledger, Op, Retention, Start};

/// `n` op times from `T0`: steps of -2..=5 ms from a fixed generator, so
/// times repeat and go backwards.
fn times(n: usize, seed: u64) -> Vec<i64> {
    let mut x = seed;
    let mut t = T0;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += ((x >> 33) % 8) as i64 * 1000 - 2000;
            t
        })
        .collect()
}

fn ops(times: &[i64], from: usize) -> Vec<Op> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| Op::commit("v", "b", &format!("k{}", from + i), 1, "e").at(*t))
        .collect()
}

/// Append in batches of uneven sizes (1, 7, 63, 64, 65, 300, ...).
fn append(l: &Ledger, times: &[i64]) {
    let sizes = [1usize, 7, 63, 64, 65, 300, 2, 129];
    let mut i = 0;
    let mut k = 0;
    while i < times.len() {
        let n = sizes[k % sizes.len()].min(times.len() - i);
        l.append_batch(ops(&times[i..i + n], i)).unwrap();
        i += n;
        k += 1;
    }
}

/// What a scan of all `times` says: the first seq (1-based) whose running
/// max reaches `t`, or `head + 1`.
fn model(times: &[i64], t: i64) -> u64 {
    let mut running = i64::MIN;
    for (i, x) in times.iter().enumerate() {
        running = running.max(*x);
        if running >= t {
            return i as u64 + 1;
        }
    }
    times.len() as u64 + 1
}

/// Probe times: op times of about 600 seqs spread over the ledger and of
/// every seq of its last 200 and around `first`, one µs either side of
/// each, and both ends.
fn probes(times: &[i64], first: u64) -> Vec<i64> {
    let n = times.len();
    let f = first as usize;
    let mut p: Vec<i64> = times
        .iter()
        .enumerate()
        .filter(|(i, _)| i % (n / 600).max(1) == 0 || *i + 200 >= n || i.abs_diff(f) < 150)
        .flat_map(|(_, t)| [t - 1, *t, t + 1])
        .collect();
    p.extend([0, T0 - 1_000_000, i64::MAX]);
    p.sort_unstable();
    p.dedup();
    p
}

/// Every probe answers as the model, where the model's answer is retained;
/// where it is not, the answer is in dropped history too, and a cursor
/// started there reports the gap.
fn check(l: &Ledger, times: &[i64]) {
    let first = l.first_seq().unwrap();
    for t in probes(times, first) {
        let want = model(times, t);
        let got = l.seq_for_time(t).unwrap();
        if want >= first {
            assert_eq!(got, want, "time {t}");
        } else {
            assert!(
                got < first,
                "time {t}: {got} is not before first {first} (want {want})"
            );
        }
    }
    // Spot checks through a cursor started by time.
    for t in probes(times, first).into_iter().step_by(97) {
        let want = model(times, t);
        let mut c = l
            .cursor(
                None,
                CursorOptions {
                    start: Start::Time(t),
                    ..Default::default()
                },
            )
            .unwrap();
        let b = c.read(1, Duration::ZERO).unwrap();
        assert_eq!(b.gap.is_some(), want < first, "time {t}");
        let seq = b.records.first().map(|r| r.event.seq);
        assert_eq!(
            seq,
            (want.max(first) <= times.len() as u64).then_some(want.max(first)),
            "time {t}"
        );
    }
}

fn time_entries(dir: &std::path::Path) -> usize {
    let db = raw_db(dir);
    db.iterator_cf(db.cf_handle("time").unwrap(), rocksdb::IteratorMode::Start)
        .count()
}

#[test]
fn lookups_answer_as_a_scan_of_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::Buffered, None);
    let ts = times(5000, 7);
    assert_eq!(l.seq_for_time(T0).unwrap(), 1, "an empty ledger: head + 1");
    append(&l, &ts);
    check(&l, &ts);
    l.close().unwrap();
    drop(l);
    assert_eq!(time_entries(dir.path()), 5000 / 64, "one entry per 64 seqs");
    check(&open(dir.path(), Durability::Buffered, None), &ts);
}

#[test]
fn retention_keeps_the_run_a_lookup_reads() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: Some(3000),
        ..Default::default()
    };
    let l = open(dir.path(), Durability::Buffered, Some(retention));
    let ts = times(20_000, 11);
    append(&l, &ts);
    assert_eq!(l.first_seq().unwrap(), 17_001);
    check(&l, &ts);
    l.close().unwrap();
    drop(l);
    let l = open(dir.path(), Durability::Buffered, None);
    check(&l, &ts);
    // Events and entries were deleted, not only hidden.
    l.close().unwrap();
    drop(l);
    assert!(time_entries(dir.path()) < 3000 / 64 + 70);
    let db = raw_db(dir.path());
    let stored = db
        .iterator_cf(
            db.cf_handle("events").unwrap(),
            rocksdb::IteratorMode::Start,
        )
        .count();
    assert!(stored < 3000 + 4096 + 64, "{stored} events stored");
}

#[test]
fn retention_by_age_drops_what_a_scan_says() {
    let dir = tempfile::tempdir().unwrap();
    // 2 s of op time: about 1,000 of the 3 ms-apart steps.
    let retention = Retention {
        max_age_us: Some(2_000_000),
        ..Default::default()
    };
    let l = open(dir.path(), Durability::Buffered, Some(retention));
    let ts = times(12_000, 3);
    append(&l, &ts);
    let max = *ts.iter().max().unwrap();
    assert_eq!(l.first_seq().unwrap(), model(&ts, max - 2_000_000));
    check(&l, &ts);
}

/// Rewrite the time index of a closed ledger as format 3 wrote it (an
/// empty-valued entry wherever the running max grew) and say format 3.
fn make_format_3(dir: &std::path::Path, times: &[i64]) {
    let db = raw_db(dir);
    let cf = db.cf_handle("time").unwrap();
    let keys: Vec<Box<[u8]>> = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| kv.unwrap().0)
        .collect();
    for k in keys {
        db.delete_cf(cf, k).unwrap();
    }
    let mut running = i64::MIN;
    for (i, t) in times.iter().enumerate() {
        if *t > running {
            running = *t;
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&(running as u64).to_be_bytes());
            k[8..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            db.put_cf(cf, k, []).unwrap();
        }
    }
    db.put_cf(
        db.cf_handle("meta").unwrap(),
        b"format_version",
        3u32.to_be_bytes(),
    )
    .unwrap();
}

#[test]
fn a_format_3_index_is_read_as_it_is_and_upgraded_by_a_writable_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = times(3000, 5);
    {
        let l = open(dir.path(), Durability::Buffered, None);
        append(&l, &ts);
        l.close().unwrap();
    }
    make_format_3(dir.path(), &ts);
    {
        let reader = Ledger::open_with(
            dir.path(),
            fsfeed::OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .unwrap();
        check(&reader, &ts);
    }
    assert_eq!(format_on_disk(dir.path()), 3, "a reader changed nothing");
    let retention = Retention {
        max_events: Some(2500),
        ..Default::default()
    };
    let l = open(dir.path(), Durability::Buffered, Some(retention));
    check(&l, &ts);
    // New entries at strides after the old ones; retention deletes across
    // the boundary.
    let more = times(9000, 9);
    let shift = ts.last().unwrap() - T0;
    let more: Vec<i64> = more.iter().map(|t| t + shift).collect();
    let from = ts.len();
    let mut k = 0;
    while k < more.len() {
        let n = 500.min(more.len() - k);
        l.append_batch(ops(&more[k..k + n], from + k)).unwrap();
        k += n;
    }
    ts.extend(more);
    check(&l, &ts);
    l.close().unwrap();
    drop(l);
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
    check(&open(dir.path(), Durability::Buffered, None), &ts);
}

#[test]
fn history_deleted_in_the_last_append_keeps_the_run_across_first() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_events: Some(3000),
        ..Default::default()
    };
    let l = open(dir.path(), Durability::Buffered, Some(retention));
    let ts = times(7100, 13);
    // 7,000 then 100: the second append moves first to 4,101 and deletes
    // history for the first time, up to the cut at 4,096 (a multiple of
    // 4,096 seqs, whatever the batching). The entry at 4,032, the last
    // before the cut, stays, and so do the events after it that a lookup
    // of a time reached in 4,033..=4,096 reads.
    l.append_batch(ops(&ts[..7000], 0)).unwrap();
    l.append_batch(ops(&ts[7000..], 7000)).unwrap();
    assert_eq!(l.first_seq().unwrap(), 4101);
    check(&l, &ts);
    l.close().unwrap();
    drop(l);
    let db = raw_db(dir.path());
    let lowest = db
        .iterator_cf(
            db.cf_handle("events").unwrap(),
            rocksdb::IteratorMode::Start,
        )
        .next()
        .map(|kv| u64::from_be_bytes(kv.unwrap().0[..].try_into().unwrap()));
    assert_eq!(lowest, Some(4033), "events up to the kept entry's seq went");
}
