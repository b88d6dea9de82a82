//! Dropping a history midway stops its reader threads and waits for them:
//! none is left reading the ledger, which then closes as usual. (A file of its own: it counts this
//! process's threads, which other tests running beside it would change.)
#![cfg(all(feature = "arrow", target_os = "linux"))]

mod common;

use common::{commits, open};
use fsfeed::history::HistoryOptions;
use fsfeed::Durability;

/// Threads of this process named like history readers.
fn history_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "fsfeed-history")
        .count()
}

#[test]
fn dropping_a_history_midway_joins_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(commits(0, 5000)).unwrap();
    let mut h = l
        .history(HistoryOptions {
            batch_rows: 50,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(h.next().unwrap().unwrap().num_rows(), 50);
    // 100 runs: the readers are waiting to hand over the next ones.
    assert!(history_threads() >= 1);
    drop(h);
    // Joined threads are gone; the kernel may list a joined thread in
    // /proc/self/task for a moment longer (it wakes the joiner before it
    // reaps the task), so look again briefly before calling one left over.
    let mut left = history_threads();
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        left = history_threads();
    }
    assert_eq!(left, 0, "a reader outlived its history");
    // The ledger is untouched and reads on, then closes.
    assert_eq!(l.head_seq().unwrap(), 5000);
    l.close().unwrap();
    // A history of a closed ledger fails to open.
    assert_eq!(
        l.history(HistoryOptions::default()).err().unwrap().code(),
        "ledger_closed"
    );
}
