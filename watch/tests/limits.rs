//! The kernel's limits, shrunk for the test (as root, restored afterwards):
//! a tiny event queue that overflows, and a watch quota smaller than the tree.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use fsfeed_watch::{watch, Options};

/// The sysctls are machine-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_shrunk_queue_overflows_and_the_diff_recovers() {
    if !need_root("a_shrunk_queue_overflows_and_the_diff_recovers") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    make_tree(&env.root, 4, 400);
    // The queue size is fixed when inotify starts: shrink it for the start only.
    let mut w = {
        let _q = Sysctl::set("/proc/sys/fs/inotify/max_queued_events", 16);
        watch(&env.root, &env.ledger, Options::default()).unwrap()
    };
    env.assert_same("start");
    let before = env.head();
    let mut round = 0;
    while w.counters().overflows == 0 {
        round += 1;
        assert!(
            round <= 5,
            "no overflow with a queue of 16 events: {:?}",
            w.counters()
        );
        sh(
            &env.root,
            &format!(
                "for i in $(seq 1 3000); do echo $i > d01/r{round}-$i; done; rm -rf d02/e0{round}"
            ),
        );
        w.sync(SYNC).unwrap();
    }
    env.assert_same("after the overflow");
    let ev = env.events_after(before);
    for e in &ev {
        assert!(
            e.path.starts_with("d01/r") || e.path.starts_with("d02/e0"),
            "an op about an untouched path: {e:?}"
        );
    }
    let c = w.stop().unwrap();
    assert!(
        c.overflows >= 1 && c.rescans >= 2 && c.diff_ops > 0,
        "{c:?}"
    );
}

/// inotify watches in use by this user now (every process's inotify
/// descriptors, from /proc/*/fdinfo).
fn watches_in_use() -> u64 {
    let mut n = 0;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for p in procs.flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(text) = std::fs::read_to_string(fd.path()) {
                n += text
                    .lines()
                    .filter(|l| l.starts_with("inotify wd:"))
                    .count() as u64;
            }
        }
    }
    n
}

#[test]
fn directories_beyond_the_watch_quota_are_rescanned_on_a_timer() {
    if !need_root("directories_beyond_the_watch_quota_are_rescanned_on_a_timer") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    // 1 root + 10 + 40 directories.
    make_tree(&env.root, 10, 400);
    let quota = Sysctl::set(
        "/proc/sys/fs/inotify/max_user_watches",
        watches_in_use() + 20,
    );
    let mut w = watch(
        &env.root,
        &env.ledger,
        Options {
            rescan_interval: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .unwrap();
    env.assert_same("start");
    let c = w.counters();
    assert!(c.watch_failures > 0 && c.unwatched > 0, "{c:?}");
    assert!(c.watches <= 20, "{c:?}");
    // Changes in every directory, watched or not, reach the ledger.
    sh(
        &env.root,
        "for d in d0*/e0*; do echo new > $d/added; rm -f $d/f0000*.txt; done",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        w.sync(SYNC).unwrap();
        if env.namespace() == listing(&env.root, &[]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rescans did not catch up: {:?}",
            w.counters()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = w.counters();
    assert!(c.rescans >= 2, "{c:?}");
    drop(quota);
    w.stop().unwrap();
}
