//! The live index off the write path (format 8, `namespace::live`): the
//! writer keeps the index's writes in memory and stores them every 65,536
//! seqs as an ingested table file with a marker. Nothing of the index is
//! lost when the writer dies between checkpoints (its reopen replays the
//! events after the marker), a reader in another process lists what the
//! writer's memory holds, retention never deletes an event the replay
//! needs, and older ledgers open as they are.
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use fsfeed::op::Acl;
use fsfeed::workload::Workload;
use fsfeed::{Durability, Layout, Ledger, Op, Retention};

const CHILD_ENV: &str = "FSFEED_LIVE_CHILD_DIR";
/// Set in the child: append with tight retention.
const TIGHT_ENV: &str = "FSFEED_LIVE_CHILD_TIGHT";
/// More than two checkpoints' worth of seqs.
const OPS: usize = 150_000;
const CHECKPOINT_EVERY: u64 = 65_536;

fn ops() -> Vec<Op> {
    Workload::new(11, T0).take(OPS).collect()
}

/// Small enough that retention deletes events every few thousand seqs.
fn tight() -> Retention {
    Retention::default().with_max_events(2_000)
}

/// Every record a resync lists: (bucket, path, size, eTag, version), sorted.
type Listing = Vec<(String, String, Option<u64>, String, String)>;

fn resync(l: &Ledger) -> Listing {
    let mut out: Listing = resync_records(l)
        .into_iter()
        .map(|r| {
            let e = r.event;
            let op = e.op.unwrap();
            let version = match op.kind {
                Some(fsfeed::op::Kind::Commit(c)) => c.version_id,
                _ => String::new(),
            };
            (op.bucket, e.path, e.size, e.etag, version)
        })
        .collect();
    out.sort();
    out
}

/// The stored marker of a closed (or killed) ledger.
fn stored_marker(dir: &std::path::Path) -> u64 {
    let db = raw_db(dir);
    let ns = db.cf_handle("ns").unwrap();
    let v = db.get_cf(ns, b"L").unwrap().expect("a marker");
    u64::from_be_bytes(v.as_slice().try_into().unwrap())
}

/// The same ops appended to a ledger that is closed cleanly.
fn reference(retention: Option<Retention>) -> Listing {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, retention);
    for chunk in ops().chunks(1_000) {
        l.append_batch(chunk.to_vec()).unwrap();
    }
    let listing = resync(&l);
    l.close().unwrap();
    assert_eq!(stored_marker(dir.path()), OPS as u64, "close stores all");
    listing
}

/// Run only as the child of the crash tests: append every op, say so, and
/// wait to be killed.
#[test]
#[ignore = "child process of the live index's crash tests"]
fn live_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    println!();
    let retention = std::env::var(TIGHT_ENV).is_ok().then(tight);
    let l = open(std::path::Path::new(&dir), Durability::Buffered, retention);
    // Uneven batches, so checkpoints start at seqs that are no multiple of
    // anything in particular.
    let ops = ops();
    let (mut i, mut n) = (0, 1);
    while i < ops.len() {
        let end = (i + n).min(ops.len());
        l.append_batch(ops[i..end].to_vec()).unwrap();
        i = end;
        n = n % 997 + 1;
    }
    println!("appended {}", l.head_seq().unwrap());
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The child appends every op and is killed with the index's last writes
/// in its memory only: a reader in another process lists them while it
/// lives, and the reopened ledger has them after.
fn killed_writer_keeps_the_index(tight_retention: bool) {
    let retention = tight_retention.then(tight);
    let want = reference(retention);
    assert!(want.len() > 1_000, "{} listed", want.len());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = child_test("live_child", CHILD_ENV, dir.path());
    if tight_retention {
        cmd.env(TIGHT_ENV, "1");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let appended = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("appended ").map(str::to_string));
    let head: u64 = appended.expect("the child appended").parse().unwrap();
    assert_eq!(head, OPS as u64);
    // A reader in this process while the writer lives: the events after
    // the marker, replayed over the stored entries.
    let reader = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.head_seq().unwrap(), head);
    assert!(resync(&reader) == want, "the reader's resync");
    drop(reader);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let marker = stored_marker(dir.path());
    assert!(
        (CHECKPOINT_EVERY..head).contains(&marker),
        "checkpoints ran, and the last writes were in memory only: marker {marker}"
    );
    let l = open(dir.path(), Durability::Buffered, None);
    if tight_retention {
        let first = l.stats().unwrap().first_seq;
        assert!(first > CHECKPOINT_EVERY, "retention was active: {first}");
    }
    assert!(resync(&l) == want, "the reopened writer's resync");
    l.close().unwrap();
    // What the writer stored at its close: its own replay's.
    assert_eq!(stored_marker(dir.path()), head);
    let l = open(dir.path(), Durability::Buffered, None);
    assert!(resync(&l) == want, "the resync after the close");
    l.close().unwrap();
}

#[test]
fn a_killed_writer_loses_nothing_of_the_index() {
    killed_writer_keeps_the_index(false);
}

/// Retention that deletes events after the marker writes the index in the
/// batch instead, so the replay after the kill still finds its events.
#[test]
fn tight_retention_keeps_what_the_replay_needs() {
    killed_writer_keeps_the_index(true);
}

fn obs(op: Op) -> Op {
    op.with_layout(Layout::Obs).at(T0)
}

/// What an ACL change's event carries: the object's size and eTag.
fn acl_carries(l: &Ledger, key: &str) -> (Option<u64>, String) {
    let (seq, _) = l
        .append_batch(vec![obs(Op::acl_set(
            "v",
            "b",
            key,
            vec![Acl::new("user", "u", &["read"])],
        ))])
        .unwrap();
    let e = l.get(seq).unwrap().unwrap();
    (e.size, e.etag)
}

/// An object looked up before it existed (the writer caches "absent"),
/// then committed, then stored by a checkpoint: later ops see the commit,
/// not the cached absence.
#[test]
fn a_checkpoint_does_not_bring_back_what_was_cached_before() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::None, None);
    assert_eq!(acl_carries(&l, "k"), (None, String::new()));
    l.append(obs(Op::commit("v", "b", "k", 5, "e1"))).unwrap();
    assert_eq!(acl_carries(&l, "k"), (Some(5), "e1".into()));
    // Past two checkpoints: the first stores `k`, the second lets go of
    // what the first froze.
    let filler: Vec<Op> = (0..2 * CHECKPOINT_EVERY + 10)
        .map(|i| obs(Op::commit("v", "other", &format!("f{i}"), i, "e")))
        .collect();
    for chunk in filler.chunks(1_000) {
        l.append_batch(chunk.to_vec()).unwrap();
    }
    assert_eq!(acl_carries(&l, "k"), (Some(5), "e1".into()));
    l.append(obs(Op::delete("v", "b", "k", false))).unwrap();
    assert_eq!(acl_carries(&l, "k"), (None, String::new()));
    l.close().unwrap();
}

/// Writes `L` (the marker) and `format_version` straight into a closed
/// ledger's database.
fn tamper(dir: &std::path::Path, marker: Option<u64>, format: u32, extra: Option<&[u8]>) {
    let db = raw_db(dir);
    let ns = db.cf_handle("ns").unwrap();
    match marker {
        Some(m) => db.put_cf(ns, b"L", m.to_be_bytes()).unwrap(),
        None => db.delete_cf(ns, b"L").unwrap(),
    }
    if let Some(k) = extra {
        db.put_cf(ns, k, b"").unwrap();
    }
    let meta = db.cf_handle("meta").unwrap();
    db.put_cf(meta, b"format_version", format.to_be_bytes())
        .unwrap();
}

fn small_ledger(dir: &std::path::Path) -> Listing {
    let l = open(dir, Durability::None, None);
    l.append_batch(obs_history()).unwrap();
    let listing = resync(&l);
    l.close().unwrap();
    assert_eq!(listing.len(), 2);
    listing
}

/// A format 7 ledger (its index written in every batch, no marker) is read
/// as it is, and its first writable open stores the marker at its head.
#[test]
fn a_format_7_ledger_is_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let before = small_ledger(dir.path());
    tamper(dir.path(), None, 7, None);
    let r = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(resync(&r), before);
    drop(r);
    assert_eq!(format_on_disk(dir.path()), 7);
    let l = open(dir.path(), Durability::None, None);
    assert_eq!(resync(&l), before);
    assert_eq!(acl_carries(&l, "c"), (Some(7), "e3".into()));
    l.close().unwrap();
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
    assert_eq!(stored_marker(dir.path()), 5);
}

/// A format 8 ledger is read as it is, and its first writable open keeps
/// its marker: the ops after it are replayed, not taken as stored. Here
/// the marker is at seq 1 and the entry of `c` (seq 5) is not stored, as
/// after a crash; an upgrade that moved the marker to the head would lose
/// `c`.
#[test]
fn a_format_8_ledger_keeps_its_marker_through_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let before = small_ledger(dir.path());
    tamper(dir.path(), Some(1), 8, None);
    {
        let db = raw_db(dir.path());
        let ns = db.cf_handle("ns").unwrap();
        db.delete_cf(ns, b"Lv\0b\0c").unwrap();
    }
    let r = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(resync(&r), before);
    drop(r);
    assert_eq!(format_on_disk(dir.path()), 8);
    let l = open(dir.path(), Durability::None, None);
    assert_eq!(resync(&l), before);
    assert_eq!(acl_carries(&l, "c"), (Some(7), "e3".into()));
    l.close().unwrap();
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
    assert_eq!(stored_marker(dir.path()), 5);
}

/// Format 8 kept a directory's marker under its key, where format 9 keeps
/// it under `key/`, apart from the file of the name: the upgrade moves it.
/// Without the move the old entry would stay listed after the marker's
/// delete.
#[test]
fn the_format_9_upgrade_moves_directory_markers() {
    let dir = tempfile::tempdir().unwrap();
    let lg = |op: Op| op.with_layout(fsfeed::Layout::Legacy).at(T0);
    let l = open(dir.path(), Durability::None, None);
    l.append_batch(vec![
        lg(Op::create_directory("v", "g", "d")),
        lg(Op::commit("v", "g", "d/f", 1, "e")),
    ])
    .unwrap();
    l.close().unwrap();
    {
        // As format 8 stored it.
        let db = raw_db(dir.path());
        let ns = db.cf_handle("ns").unwrap();
        let v = db.get_cf(ns, b"Lv\0g\0d/").unwrap().expect("the marker");
        db.delete_cf(ns, b"Lv\0g\0d/").unwrap();
        db.put_cf(ns, b"Lv\0g\0d", v).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"format_version", 8u32.to_be_bytes())
            .unwrap();
    }
    let l = open(dir.path(), Durability::None, None);
    let keys = |l: &Ledger| -> Vec<(String, bool)> {
        resync_records(l)
            .into_iter()
            .map(|r| (r.event.path, r.event.op.unwrap().is_dir))
            .collect()
    };
    assert_eq!(
        keys(&l),
        vec![("d".to_string(), true), ("d/f".to_string(), false)]
    );
    l.append(lg(Op::delete("v", "g", "d", false).dir()))
        .unwrap();
    assert_eq!(keys(&l), vec![("d/f".to_string(), false)]);
    l.close().unwrap();
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
}

/// A marker past the head (events it covered were lost: no WAL, or a
/// salvage) makes the writer's open rebuild the index from the stored
/// events; what the stored index held beyond them goes.
#[test]
fn a_marker_past_the_head_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let before = small_ledger(dir.path());
    // An entry no stored event made: `v/b/ghost`.
    tamper(dir.path(), Some(1_000), 8, Some(b"Lv\0b\0ghost"));
    let l = open(dir.path(), Durability::None, None);
    assert_eq!(resync(&l), before);
    l.close().unwrap();
    assert_eq!(stored_marker(dir.path()), 4);
}

/// A format 8 ledger without its marker is damaged, not silently replayed
/// from nothing.
#[test]
fn a_missing_marker_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    small_ledger(dir.path());
    tamper(dir.path(), None, 8, None);
    let e = fsfeed::Ledger::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "corrupt", "{e}");
    assert!(e.to_string().contains("marker"), "{e}");
}
