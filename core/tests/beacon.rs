//! The beacon: the writer announces its head in `LEDGER/head.beacon`, and a
//! read-only opener watches it (inotify) to wake its readers at once. (A
//! test binary of its own: it counts the process's threads, which other
//! tests running beside it would change.)
mod common;

use std::time::{Duration, Instant};

use common::*;
use fsfeed::{Durability, Ledger};

/// Threads of this process with the given name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|n| n.trim() == name)
        .count()
}

/// The writer announces its head in `LEDGER/head.beacon`; a read-only
/// opener watches it with a thread of its own, which its close ends.
#[test]
fn the_writer_announces_its_head_and_a_reader_watches_it() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), Durability::Buffered, None);
    writer.append_batch(commits(0, 7)).unwrap();
    let beacon = dir.path().join("head.beacon");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = std::fs::read(&beacon).unwrap_or_default();
        if b.len() == 8 && u64::from_be_bytes(b[..8].try_into().unwrap()) == 7 {
            break;
        }
        assert!(Instant::now() < deadline, "the beacon never said 7: {b:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = threads_named("fsfeed-watcher");
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    // A new thread names itself once it runs: look until it has.
    let deadline = Instant::now() + Duration::from_secs(30);
    while threads_named("fsfeed-watcher") != before + 1 {
        assert!(Instant::now() < deadline, "no watcher thread");
        std::thread::sleep(Duration::from_millis(5));
    }
    let b = read_while_appending(&reader, &writer, commits(7, 1), Duration::from_millis(50));
    assert_eq!(b.records[0].event.seq, 8);
    reader.close().unwrap();
    assert_eq!(
        threads_named("fsfeed-watcher"),
        before,
        "close ends the watcher"
    );
}
