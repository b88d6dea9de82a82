//! The notifier wakes many waiters from one thread, in time and once.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{commits, open};
use fsfeed::notify::Notifier;
use fsfeed::Durability;

#[test]
fn waiters_wake_when_the_head_reaches_their_seq() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(commits(0, 3)).unwrap();
    let n = Notifier::new(l.clone());
    let (tx, rx) = mpsc::channel();
    for seq in [2, 4, 6] {
        let tx = tx.clone();
        n.when_head_reaches(seq, Box::new(move |ok| tx.send((seq, ok)).unwrap()))
            .unwrap();
    }
    // Already there: at once.
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (2, true));
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    l.append_batch(commits(3, 1)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (4, true));
    assert_eq!(n.pending(), 1);
    l.append_batch(commits(4, 5)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (6, true));
    assert_eq!(n.pending(), 0);
}

#[test]
fn closing_the_ledger_or_stopping_wakes_everyone_with_false() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    let n = Notifier::new(l.clone());
    let (tx, rx) = mpsc::channel();
    for _ in 0..100 {
        let tx = tx.clone();
        n.when_head_reaches(10, Box::new(move |ok| tx.send(ok).unwrap()))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    l.close().unwrap();
    let woke: Vec<bool> = (0..100)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert!(woke.iter().all(|ok| !ok));
    // After the end, a new waiter is told at once.
    n.when_head_reaches(1, Box::new(move |ok| tx.send(ok).unwrap()))
        .unwrap();
    assert!(!rx.recv_timeout(Duration::from_secs(5)).unwrap());
    n.stop();
}
