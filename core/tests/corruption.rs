//! Bytes flipped in a closed ledger's table files and in a crashed ledger's
//! write-ahead log: opening, reading or `verify` gives the typed `corrupt`
//! error, or the ledger reads exactly what was written (a flip in bytes
//! nothing reads). Never wrong events, never acknowledged events gone
//! without an error. Each test prints its tally (flips, caught at open,
//! caught by a read or verify, without effect).
//!
//! `FSFEED_CORRUPTION_FLIPS` sets the flips per test (default 120).

use std::fs;
use std::path::{Path, PathBuf};

use fsfeed::workload::Rng;
use fsfeed::{Durability, Error, Event, Ledger, Op, OpenOptions};

mod common;

const EVENTS: u64 = 3000;

fn flips() -> usize {
    std::env::var("FSFEED_CORRUPTION_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

fn ops(n: u64) -> Vec<Op> {
    (1..=n)
        .map(|i| {
            Op::commit(
                "vol1",
                "b1",
                &format!("dir{}/k{i:06}", i % 17),
                i * 7,
                &format!("e{i}"),
            )
            .at(common::T0 + i as i64 * 1000)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join("db"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// Flip one byte of `file` at a random offset in `lo..len` (xor with a
/// non-zero mask); the offset.
fn flip(file: &Path, rng: &mut Rng, lo: u64) -> u64 {
    let mut bytes = fs::read(file).unwrap();
    let len = bytes.len() as u64;
    let at = lo + rng.below(len - lo);
    bytes[at as usize] ^= 1 + rng.below(255) as u8;
    fs::write(file, bytes).unwrap();
    at
}

#[derive(Debug, Default)]
struct Tally {
    flips: usize,
    at_open: usize,
    on_read: usize,
    no_effect: usize,
}

/// Open the damaged copy and read all of it: `Ok(events)` when nothing
/// complained, or the first error.
fn read_all(dir: &Path) -> Result<Vec<Event>, (bool, Error)> {
    let ledger = Ledger::open_with(
        dir,
        OpenOptions {
            durability: Durability::Sync,
            segments: Some(false),
            ..Default::default()
        },
    )
    .map_err(|e| (true, e))?;
    let read = || -> fsfeed::Result<Vec<Event>> {
        ledger.verify()?;
        let head = ledger.head_seq()?;
        let mut all = Vec::new();
        while (all.len() as u64) < head {
            let more = ledger.scan(all.len() as u64 + 1, 1000)?;
            if more.is_empty() {
                break;
            }
            all.extend(more);
        }
        ledger.checksum()?;
        Ok(all)
    };
    let out = read().map_err(|e| (false, e));
    let _ = ledger.close();
    out
}

/// Judge one damaged copy against the events written.
fn judge(dir: &Path, want: &[Event], tally: &mut Tally, what: &str) {
    tally.flips += 1;
    match read_all(dir) {
        Err((at_open, e)) => {
            assert_eq!(
                e.code(),
                "corrupt",
                "{what}: damage must be corrupt, got {e}"
            );
            if at_open {
                tally.at_open += 1;
            } else {
                tally.on_read += 1;
            }
        }
        Ok(got) => {
            assert_eq!(
                got.len(),
                want.len(),
                "{what}: events lost without an error"
            );
            assert!(got == want, "{what}: wrong events without an error");
            tally.no_effect += 1;
        }
    }
}

#[test]
fn flipped_bytes_in_table_files_are_corrupt_or_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    {
        let ledger = common::open(&clean, Durability::Sync, None);
        for chunk in ops(EVENTS).chunks(500) {
            ledger.append_batch(chunk.to_vec()).unwrap();
        }
        ledger.close().unwrap();
    }
    assert!(files_ending(&clean, "log")
        .iter()
        .all(|p| fs::metadata(p).unwrap().len() == 0));
    let want = read_all(&clean).unwrap();
    assert_eq!(want.len() as u64, EVENTS);
    let tables = files_ending(&clean, "sst");
    assert!(!tables.is_empty());
    let mut rng = Rng::new(0x5eed);
    let mut tally = Tally::default();
    for i in 0..flips() {
        let dir = tmp.path().join(format!("t{i}"));
        copy_dir(&clean, &dir);
        // Weighted by size: most flips land in the events' tables.
        let sizes: Vec<u64> = tables
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .collect();
        let mut pick = rng.below(sizes.iter().sum());
        let which = sizes
            .iter()
            .position(|s| {
                if pick < *s {
                    true
                } else {
                    pick -= s;
                    false
                }
            })
            .unwrap();
        let file = dir.join("db").join(tables[which].file_name().unwrap());
        let at = flip(&file, &mut rng, 0);
        judge(
            &dir,
            &want,
            &mut tally,
            &format!("{} byte {at}", file.display()),
        );
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("table files: {tally:?}");
    assert!(tally.at_open + tally.on_read > tally.flips / 2, "{tally:?}");
}

/// A crash image in `tmp/image`: the files of a ledger copied while it is
/// open, every append (batches of 100) acknowledged and synced, the
/// memtables never flushed; and its log file, the largest.
fn crash_image(tmp: &Path) -> (PathBuf, PathBuf) {
    let clean = tmp.join("clean");
    let ledger = common::open(&clean, Durability::Sync, None);
    for chunk in ops(EVENTS).chunks(100) {
        ledger.append_batch(chunk.to_vec()).unwrap();
    }
    let image = tmp.join("image");
    copy_dir(&clean, &image);
    ledger.close().unwrap();
    drop(ledger);
    let _ = fs::remove_file(image.join("db").join("LOCK"));
    let log = files_ending(&image, "log")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    (image, log)
}

#[test]
fn flipped_bytes_in_the_write_ahead_log_are_corrupt_or_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let (image, log) = crash_image(tmp.path());
    let want = read_all(&{
        let d = tmp.path().join("check");
        copy_dir(&image, &d);
        d
    })
    .unwrap();
    assert_eq!(want.len() as u64, EVENTS);
    let len = fs::metadata(&log).unwrap().len();
    assert!(len > 100_000, "the image holds its events in the log");
    let mut rng = Rng::new(0xfeed);
    let mut tally = Tally::default();
    let mut tail = 0;
    let mut dropped_last = 0;
    for i in 0..flips() {
        let dir = tmp.path().join(format!("w{i}"));
        copy_dir(&image, &dir);
        let file = dir.join("db").join(log.file_name().unwrap());
        let at = flip(&file, &mut rng, 0);
        if at >= len - 40_000 {
            tail += 1;
        }
        let what = format!("log byte {at} of {len}");
        if at < len - 40_000 {
            judge(&dir, &want, &mut tally, &what);
        } else {
            // Near the end: corrupt, intact, or without the last batch of
            // 100 (damage in the last record looks like a torn write).
            match read_all(&dir) {
                Err((_, e)) => assert_eq!(e.code(), "corrupt", "{what}: {e}"),
                Ok(got) if got.len() == want.len() => assert!(got == want, "{what}"),
                Ok(got) => {
                    assert_eq!(
                        got.len(),
                        want.len() - 100,
                        "{what}: more than the last record went"
                    );
                    assert!(got[..] == want[..got.len()], "{what}");
                    dropped_last += 1;
                }
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "write-ahead log: {tally:?}; {tail} more in the last 40 kB, of which {dropped_last} \
         dropped the last record as a torn write"
    );
    assert!(tally.at_open + tally.on_read > tally.flips / 2, "{tally:?}");
}

#[test]
fn salvage_opens_a_damaged_log_with_the_records_before_the_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let (image, log) = crash_image(tmp.path());
    // Damage a record in the middle of the log.
    let mut bytes = fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    fs::write(&log, bytes).unwrap();
    let err = Ledger::open(&image).unwrap_err();
    assert_eq!(err.code(), "corrupt", "{err}");
    let salvaged = Ledger::open_with(
        &image,
        OpenOptions {
            salvage: true,
            ..Default::default()
        },
    )
    .unwrap();
    let head = salvaged.head_seq().unwrap();
    assert!(head > 0 && head < EVENTS, "salvaged up to {head}");
    let v = salvaged.verify().unwrap();
    assert_eq!(v.events, head);
    // Appends go on after what was kept, densely.
    let next = salvaged
        .append(Op::commit("vol1", "b1", "after", 1, "e"))
        .unwrap();
    assert_eq!(next, head + 1);
    salvaged.close().unwrap();
    drop(salvaged);
    // Once salvaged, the ledger opens normally.
    let again = Ledger::open(&image).unwrap();
    assert_eq!(again.head_seq().unwrap(), head + 1);
    again.close().unwrap();
}

/// `verify` reads one snapshot: appends and retention running meanwhile
/// never make an intact ledger look damaged.
#[test]
fn verify_while_appending_under_retention_finds_nothing_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = common::open(
        tmp.path(),
        Durability::Buffered,
        Some(fsfeed::Retention {
            max_events: Some(2000),
            ..Default::default()
        }),
    );
    let writer = ledger.clone();
    let t = std::thread::spawn(move || {
        for chunk in ops(20_000).chunks(50) {
            writer.append_batch(chunk.to_vec()).unwrap();
        }
    });
    let reader = Ledger::open_read_only(tmp.path()).unwrap();
    let mut checks = 0;
    while !t.is_finished() {
        let v = ledger.verify().unwrap();
        assert_eq!(v.events, v.head_seq + 1 - v.first_seq);
        reader.verify().unwrap();
        checks += 1;
    }
    t.join().unwrap();
    assert!(checks > 0);
    assert_eq!(ledger.verify().unwrap().head_seq, 20_000);
}
