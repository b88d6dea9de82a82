//! A publisher whose ledger's disk is full (a tmpfs the test mounts; it needs
//! root, as CI runs, or `FSFEED_SKIP_ROOT_TESTS=1` to skip): it delivers,
//! cannot commit (`disk_full`), and stops with that error instead of moving
//! on; nothing is committed past what it could store. Once space is freed,
//! the next run delivers again from the committed position (at least once:
//! what was delivered and not committed comes again), and everything has
//! arrived.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use fsfeed::{Durability, Ledger, Op, OpenOptions};
use fsfeed_delivery::testkit::{run_once, HttpReceiver};
use fsfeed_delivery::Outcome;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn mount(mib: u64) -> Option<Tmpfs> {
    if !is_root() {
        assert_eq!(
            std::env::var("FSFEED_SKIP_ROOT_TESTS").as_deref(),
            Ok("1"),
            "this test mounts a tmpfs and needs root; FSFEED_SKIP_ROOT_TESTS=1 skips it"
        );
        eprintln!("skipped: needs root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "fsfeed-test"])
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount -t tmpfs failed");
    Some(Tmpfs(dir))
}

fn fill(ledger: &Ledger, dir: &Path) -> u64 {
    let mut i = 0u64;
    loop {
        let ops = (0..100)
            .map(|j| {
                Op::commit(
                    "vol1",
                    "b1",
                    &format!("{}/k{i:06}-{j}", "d".repeat(200)),
                    j,
                    "e",
                )
            })
            .collect();
        match ledger.append_batch(ops) {
            Ok(_) => i += 1,
            Err(e) => {
                assert_eq!(e.code(), "disk_full", "{e}");
                return i;
            }
        }
        assert!(i < 100_000, "{} never filled", dir.display());
    }
}

/// Leave less than `reserve` free on the file system of `dir`: `fill`
/// stops when a batch no longer fits above the reserve, so what it leaves
/// depends on how many bytes its last batch stores.
fn top_up(dir: &Path, reserve: u64) {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    let avail: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if avail >= reserve {
        std::fs::write(
            dir.join("top-up"),
            vec![1u8; (avail - reserve + 4096) as usize],
        )
        .unwrap();
    }
}

#[test]
fn a_publisher_on_a_full_disk_stops_and_resumes_losing_nothing() {
    let Some(fs) = mount(24) else { return };
    let spare = fs.0.path().join("ballast");
    std::fs::write(&spare, vec![1u8; 4 << 20]).unwrap();
    let path = fs.0.path().join("ledger");
    let ledger = Ledger::open_with(
        &path,
        OpenOptions {
            durability: Durability::Sync,
            min_free_bytes: Some(2 << 20),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(fill(&ledger, &path) > 0);
    top_up(fs.0.path(), 2 << 20);
    let rx = HttpReceiver::start();
    let cfg = publisher(&format!(
        "[[publisher]]\nname = \"hook\"\nendpoint = \"{}\"\nformat = \"native\"\nbatch_max = 500\n",
        rx.url()
    ));
    let want = expected(&ledger, &cfg);

    // Full: the first batch is delivered, its commit is refused, and the
    // run ends with disk_full rather than going on uncommitted.
    let (report, _) = run_once(&ledger, cfg.clone());
    let err = match &report.outcomes[0].1 {
        Err(e) => e.to_string(),
        other => panic!("the publisher did not fail: {other:?}"),
    };
    assert!(err.contains("disk is full"), "{err}");
    assert!(!rx.received().is_empty(), "it delivered before the commit");
    assert!(ledger
        .cursors()
        .unwrap()
        .iter()
        .all(|c| c.name != "hook" || c.position.seq == 1));

    // Space freed: the next run delivers from the committed position;
    // everything arrived, and what came twice is what was delivered and
    // not committed: the batch whose commit failed and the one the reader
    // had in flight behind it (2 x batch_max at most).
    std::fs::remove_file(&spare).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let (report, _) = run_once(&ledger, cfg);
    assert!(
        matches!(report.outcomes[0].1, Ok(Outcome::Drained)),
        "{report:?}"
    );
    let dups = check(&want, &rx.received(), 1000);
    assert!(dups > 0, "the uncommitted batch came again");
    assert!(caught_up(&ledger, "hook"));
    ledger.close().unwrap();
}
