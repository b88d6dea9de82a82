//! Callback subscriptions: returning commits the batch, an error stops the
//! subscription and comes back from `stop`/`join`, and `stop` is prompt.
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use fsfeed::{CursorOptions, Durability, Position};

#[test]
fn returning_commits_and_delivery_is_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 5)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let cursor = ledger
        .cursor(Some("sub"), CursorOptions::default())
        .unwrap();
    let sub = cursor
        .subscribe(2, Duration::from_millis(20), move |batch| {
            s.lock()
                .unwrap()
                .extend(batch.records.iter().map(|r| r.event.seq));
            Ok(())
        })
        .unwrap();
    ledger.append_batch(commits(5, 5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sub.stop().unwrap();
    assert_eq!(*seen.lock().unwrap(), (1..=10).collect::<Vec<u64>>());
    assert_eq!(ledger.committed("sub").unwrap(), Some(Position::new(11, 0)));
}

#[test]
fn a_callback_error_stops_without_committing_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    ledger.append_batch(commits(0, 6)).unwrap();
    let cursor = ledger
        .cursor(Some("failing"), CursorOptions::default())
        .unwrap();
    let mut calls = 0;
    let sub = cursor
        .subscribe(3, Duration::from_millis(20), move |_batch| {
            calls += 1;
            if calls == 2 {
                Err("downstream refused".to_string())
            } else {
                Ok(())
            }
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sub.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = sub.join().unwrap_err();
    assert_eq!(err.code(), "callback_failed");
    assert_eq!(
        ledger.committed("failing").unwrap(),
        Some(Position::new(4, 0))
    );
}

#[test]
fn stop_is_prompt_while_the_reader_waits() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), Durability::None, None);
    let cursor = ledger.cursor(None, CursorOptions::default()).unwrap();
    let sub = cursor
        .subscribe(10, Duration::from_secs(3600), |_| Ok(()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(sub.stop()).unwrap());
    // Generous bound: the reader waits an hour unless stop wakes it.
    let res = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("stop returned");
    res.unwrap();
    let c = ledger.cursor(None, CursorOptions::default()).unwrap();
    assert_eq!(
        c.subscribe(0, Duration::ZERO, |_| Ok(()))
            .err()
            .unwrap()
            .code(),
        "invalid_argument"
    );
}
