//! A ledger on a small file system (tmpfs with a size limit, mounted by the
//! test: it needs root, as CI runs), appended to until the disk is full.
//!
//! With the free-space guard (`OpenOptions::min_free_bytes`), the append
//! that would eat into the reserve gets `disk_full` before RocksDB writes,
//! and nothing acknowledged is lost: the writer and a reader in another
//! opener read every event. Once space is freed, appends resume with the
//! next seq, in the same process. Without the guard, RocksDB itself hits
//! `ENOSPC`: the append still gets `disk_full` and nothing acknowledged is
//! lost, but writes stay refused until the ledger is reopened; it reopens
//! whether space was freed or not (while the disk is still full a writable
//! open may itself be refused as `disk_full`; a read-only open reads
//! everything).
//!
//! Without root the test fails, unless `FSFEED_SKIP_ROOT_TESTS=1` says to
//! skip it (it then prints that it did).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fsfeed::{Durability, Error, Ledger, Op, OpenOptions};

mod common;

/// A tmpfs of `mib` MiB mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Option<Tmpfs> {
        if unsafe_free_euid() != 0 {
            if std::env::var("FSFEED_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
                eprintln!("skipped: mounting a tmpfs needs root (FSFEED_SKIP_ROOT_TESTS=1)");
                return None;
            }
            panic!("this test mounts a tmpfs and needs root; FSFEED_SKIP_ROOT_TESTS=1 skips it");
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "fsfeed-test"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t tmpfs failed");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The effective user id, read from /proc (no libc call, no unsafe).
fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .expect("Uid in /proc/self/status")
}

fn open(path: &Path, durability: Durability, min_free_bytes: u64) -> Ledger {
    Ledger::open_with(
        path,
        OpenOptions {
            durability,
            min_free_bytes: Some(min_free_bytes),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Ops with long keys, so that the disk fills in a few thousand.
fn ops(from: u64, n: u64) -> Vec<Op> {
    (from..from + n)
        .map(|i| {
            Op::commit(
                "vol1",
                "b1",
                &format!("{}/k{i:08}", "d".repeat(200)),
                i,
                "etag",
            )
            .at(common::T0 + i as i64)
        })
        .collect()
}

/// Append batches of `batch` until one fails; the failure and the head.
fn fill(ledger: &Ledger, batch: u64) -> (Error, u64) {
    let mut next = ledger.head_seq().unwrap() + 1;
    loop {
        match ledger.append_batch(ops(next, batch)) {
            Ok(seqs) => {
                assert_eq!(seqs.0, next, "dense seqs");
                next += batch;
            }
            Err(e) => return (e, next - 1),
        }
        assert!(next < 10_000_000, "the disk never filled");
    }
}

/// Every event 1..=head is there, in order, with the key its seq was given.
fn check_all(ledger: &Ledger, head: u64) {
    assert_eq!(ledger.head_seq().unwrap(), head);
    let mut seq = 1;
    while seq <= head {
        let events = ledger.scan(seq, 10_000).unwrap();
        assert!(!events.is_empty(), "events from {seq} are missing");
        for e in events {
            assert_eq!(e.seq, seq);
            assert!(
                e.path.ends_with(&format!("/k{seq:08}")),
                "event {seq}: {}",
                e.path
            );
            seq += 1;
        }
    }
}

fn ballast(dir: &Path, mib: usize) -> PathBuf {
    let p = dir.join("ballast");
    std::fs::write(&p, vec![7u8; mib << 20]).unwrap();
    p
}

#[test]
fn a_full_disk_is_a_typed_error_and_loses_nothing_acknowledged() {
    for durability in [Durability::Sync, Durability::Buffered] {
        let Some(fs) = Tmpfs::mount(32) else { return };
        let spare = ballast(fs.path(), 6);
        let path = fs.path().join("ledger");
        let ledger = open(&path, durability, 4 << 20);
        let (err, head) = fill(&ledger, 200);
        assert_eq!(err.code(), "disk_full", "{durability:?}: {err}");
        assert!(
            err.to_string().contains("must stay free"),
            "the guard refused it: {err}"
        );
        assert!(head > 0, "some appends fit");
        // RocksDB's background work (a compaction after the live index's
        // checkpoint at seq 65,536) may free some space: let it end, then
        // fill what is left one op at a time.
        std::thread::sleep(Duration::from_millis(500));
        let (err, head) = fill(&ledger, 1);
        assert_eq!(err.code(), "disk_full", "{durability:?}: {err}");
        // The failed append moved nothing; a second one fails the same way.
        assert_eq!(ledger.head_seq().unwrap(), head);
        let again = ledger.append(ops(head + 1, 1).remove(0)).unwrap_err();
        assert_eq!(again.code(), "disk_full", "{durability:?}: {again}");
        // So is a cursor commit, which writes to the same database.
        let mut cursor = ledger
            .cursor(Some("c"), fsfeed::CursorOptions::default())
            .unwrap();
        let batch = cursor.read(10, Duration::ZERO).unwrap();
        assert_eq!(cursor.commit(batch.next).unwrap_err().code(), "disk_full");
        // Readers keep reading: the writer's handle and a read-only opener.
        check_all(&ledger, head);
        let reader = Ledger::open_read_only(&path).unwrap();
        check_all(&reader, head);

        // Space freed: appends and commits resume, with the next seq (the
        // guard looks again at least every 100 ms).
        std::fs::remove_file(&spare).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let seq = ledger.append(ops(head + 1, 1).remove(0)).unwrap();
        assert_eq!(seq, head + 1, "dense after the full disk");
        cursor.commit(batch.next).unwrap();
        check_all(&ledger, head + 1);
        drop(cursor);
        drop(reader);
        ledger.close().unwrap();
        drop(ledger);
        let reopened = open(&path, durability, 4 << 20);
        check_all(&reopened, head + 1);
        reopened.close().unwrap();
    }
}

#[test]
fn without_the_guard_rocksdb_fills_the_disk_and_a_reopen_recovers() {
    let Some(fs) = Tmpfs::mount(32) else { return };
    let path = fs.path().join("ledger");
    let ledger = open(&path, Durability::Sync, 0);
    let spare = ballast(fs.path(), 6);
    let (err, head) = fill(&ledger, 200);
    assert_eq!(err.code(), "disk_full", "{err}");
    assert!(
        err.to_string().contains("No space left"),
        "RocksDB's own: {err}"
    );
    // RocksDB keeps refusing writes after its log failed, even once space is
    // freed (what the guard avoids), but never loses what it acknowledged.
    check_all(&ledger, head);
    // Close on the full disk: flushing the memtables may fail, which loses
    // nothing (the WAL holds every acknowledged event).
    let _ = ledger.close();
    drop(ledger);
    // Still full: a read-only opener reads everything; a writable open
    // works or is refused as disk_full, never as damage.
    let reader = Ledger::open_read_only(&path).unwrap();
    check_all(&reader, head);
    drop(reader);
    match Ledger::open_with(
        &path,
        OpenOptions {
            durability: Durability::Sync,
            min_free_bytes: Some(0),
            ..Default::default()
        },
    ) {
        Ok(l) => {
            check_all(&l, head);
            drop(l);
        }
        Err(e) => assert_eq!(e.code(), "disk_full", "{e}"),
    }
    // Space freed: it opens, holds every event and appends after them.
    std::fs::remove_file(&spare).unwrap();
    let ledger = open(&path, Durability::Sync, 0);
    check_all(&ledger, head);
    assert_eq!(ledger.append(ops(head + 1, 1).remove(0)).unwrap(), head + 1);
    ledger.close().unwrap();
}
