//! The soak (`make soak`; ignored by `cargo test`, which runs the 20-kill
//! crash test of `invariant_durable_ack.rs` instead).
//!
//! `soak_kills`: `FSFEED_SOAK_KILLS` rounds (default 20). Each starts a
//! child appending from 4 threads with `sync` (printing every
//! acknowledged seq) and a child reading with a named cursor from a
//! read-only opener, and SIGKILLs both at random moments. After each kill
//! the ledger reopens and the driver checks that every acknowledged event
//! is there with its key, that seqs have no holes, that the new events,
//! replayed into a second ledger in other batches, are stored exactly
//! alike (and the two checksums agree every 50 rounds and at the end),
//! and that every cursor is in range and the reader's never went back.
//!
//! `soak_load`: for `FSFEED_SOAK_SECONDS` (default 60), a writer with
//! count retention active and eight reader processes with named cursors;
//! seven keep up, one pauses past retention and resyncs. No errors; the
//! seven never skip an event; the eighth's gaps are each reported in the
//! batch and followed by its resync; every reader's last position is the
//! head.
//!
//! Both write their figures as JSON to `FSFEED_SOAK_SUMMARY` (default
//! `soak-summary.json` in the working directory) under their own key.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use fsfeed::{CursorOptions, Durability, Ledger, OnGap, Op, OpenOptions, Retention, Start};
use serde_json::{json, Value};

const APPENDER_ENV: &str = "FSFEED_SOAK_APPENDER_DIR";
const READER_ENV: &str = "FSFEED_SOAK_READER_DIR";
const LOAD_READER_ENV: &str = "FSFEED_SOAK_LOAD_READER_DIR";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

fn write_summary(key: &str, value: Value) {
    let path = PathBuf::from(
        std::env::var("FSFEED_SOAK_SUMMARY").unwrap_or_else(|_| "soak-summary.json".into()),
    );
    let mut all: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    all[key] = value;
    std::fs::write(&path, serde_json::to_string_pretty(&all).unwrap()).unwrap();
    eprintln!("{key}: {}", all[key]);
}

/// Child: 4 threads append with `sync`, printing `ack SEQ KEY` for each
/// acknowledged event, until killed.
#[test]
#[ignore = "child process of soak_kills"]
fn soak_appender_child() {
    let Ok(dir) = std::env::var(APPENDER_ENV) else {
        return;
    };
    append_printing_acks(
        Path::new(&dir),
        "soak",
        &format!("p{}-", std::process::id()),
        4,
    );
}

/// Child: a named cursor of a read-only opener reads and commits, checking
/// that each batch starts where the last one ended, printing `pos SEQ`
/// after each commit, `error ...` on a broken rule; until killed.
#[test]
#[ignore = "child process of soak_kills"]
fn soak_reader_child() {
    let Ok(dir) = std::env::var(READER_ENV) else {
        return;
    };
    // End the test harness's "test NAME ... " line: what follows is read
    // line by line.
    println!();
    let ledger = loop {
        match Ledger::open_read_only(&dir) {
            Ok(l) => break l,
            Err(e) if e.code() == "ledger_not_found" => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                println!("error open: {e}");
                return;
            }
        }
    };
    let mut c = ledger
        .cursor(Some("soak-reader"), CursorOptions::default())
        .unwrap();
    let mut expected = None;
    loop {
        let b = match c.read(200, Duration::from_millis(100)) {
            Ok(b) => b,
            Err(e) => {
                println!("error read: {e}");
                return;
            }
        };
        for r in &b.records {
            if let Some(want) = expected {
                if r.position.seq != want {
                    println!("error: read seq {} where {want} was next", r.position.seq);
                    return;
                }
            }
            expected = Some(r.position.seq + 1);
        }
        if b.gap.is_some() {
            println!("error: a gap without retention: {:?}", b.gap);
            return;
        }
        if !b.records.is_empty() {
            c.commit(b.next).unwrap();
            println!("pos {}", b.next.seq);
        }
    }
}

fn spawn(name: &str, env: &str, dir: &Path) -> Child {
    child_test(name, env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Lines of a child's stdout, on a channel.
fn lines_of(child: &mut Child) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (rx, t)
}

#[test]
#[ignore = "make soak"]
fn soak_kills() {
    let kills = env_u64("FSFEED_SOAK_KILLS", 20);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let replica = Ledger::open_with(
        tmp.path().join("replica"),
        OpenOptions {
            durability: Durability::Buffered,
            segments: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    let mut rng = clock_rng();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut reader_pos = 0u64;
    let mut checksums = 0;
    let mut worst_reopen = Duration::ZERO;
    let mut reader_commits = 0u64;
    let start = Instant::now();
    for round in 0..kills {
        let mut app = spawn("soak_appender_child", APPENDER_ENV, &dir);
        let mut rd = spawn("soak_reader_child", READER_ENV, &dir);
        let (app_rx, app_t) = lines_of(&mut app);
        let (rd_rx, rd_t) = lines_of(&mut rd);
        let record = |line: String, acked: &mut BTreeMap<u64, String>| {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (seq, key) = rest.split_once(' ').unwrap();
                acked.insert(seq.parse().unwrap(), key.to_string());
                true
            } else {
                false
            }
        };
        // Wait for an acknowledgement, then kill each child at its own
        // random moment (up to 300 ms).
        let t0 = Instant::now();
        let mut got = false;
        while !got && t0.elapsed() < Duration::from_secs(60) {
            if let Ok(line) = app_rx.recv_timeout(Duration::from_millis(20)) {
                got |= record(line, &mut acked);
            }
        }
        assert!(got, "round {round}: the appender acknowledged nothing");
        let (a, b) = (rng.below(300), rng.below(300));
        std::thread::sleep(Duration::from_millis(a.min(b)));
        if a <= b {
            app.kill().unwrap();
        } else {
            rd.kill().unwrap();
        }
        std::thread::sleep(Duration::from_millis(a.max(b) - a.min(b)));
        let _ = app.kill();
        let _ = rd.kill();
        app.wait().unwrap();
        rd.wait().unwrap();
        app_t.join().unwrap();
        rd_t.join().unwrap();
        for line in app_rx.try_iter() {
            record(line, &mut acked);
        }
        for line in rd_rx.try_iter() {
            assert!(!line.starts_with("error"), "round {round}: reader: {line}");
            if let Some(p) = line.strip_prefix("pos ") {
                let p: u64 = p.parse().unwrap();
                assert!(
                    p >= reader_pos,
                    "round {round}: the reader went back to {p}"
                );
                reader_pos = p;
                reader_commits += 1;
            }
        }

        // Reopen (what recovery takes is the WAL replay).
        let t1 = Instant::now();
        let ledger = open(&dir, Durability::Sync, None);
        worst_reopen = worst_reopen.max(t1.elapsed());
        let head = ledger.head_seq().unwrap();
        let from = replica.head_seq().unwrap() + 1;
        assert!(head + 1 >= from, "round {round}: head {head} went back");
        let mut new = Vec::new();
        while (new.len() as u64) < head + 1 - from {
            let more = ledger.scan(from + new.len() as u64, 5000).unwrap();
            assert!(
                !more.is_empty(),
                "round {round}: events from {} missing",
                from + new.len() as u64
            );
            new.extend(more);
        }
        for (i, e) in new.iter().enumerate() {
            assert_eq!(e.seq, from + i as u64, "round {round}: a hole");
        }
        // Every acknowledged event, with its key.
        for (seq, key) in acked.range(from..) {
            assert!(
                *seq <= head,
                "round {round}: acknowledged seq {seq} lost (head {head})"
            );
            assert_eq!(
                &new[(seq - from) as usize].path,
                key,
                "round {round}: seq {seq}"
            );
        }
        // Replayed in other batches, the new events are stored alike.
        let ops: Vec<Op> = new.iter().map(|e| e.op.clone().unwrap()).collect();
        let mut rest = &ops[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(700) as usize).min(rest.len());
            replica.append_batch(rest[..n].to_vec()).unwrap();
            rest = &rest[n..];
        }
        if !new.is_empty() {
            let replayed = replica.scan(from, new.len()).unwrap();
            assert!(
                replayed == new,
                "round {round}: the replay stored other events"
            );
        }
        if round % 50 == 49 || round + 1 == kills {
            assert_eq!(
                ledger.checksum().unwrap(),
                replica.checksum().unwrap(),
                "round {round}: checksums differ"
            );
            checksums += 1;
        }
        // Cursors in range; the reader's as it last said or later.
        for c in ledger.cursors().unwrap() {
            assert!(
                c.position.seq >= 1 && c.position.seq <= head + 1,
                "round {round}: cursor {} at {} (head {head})",
                c.name,
                c.position
            );
            if c.name == "soak-reader" {
                assert!(
                    c.position.seq >= reader_pos,
                    "round {round}: reader cursor went back"
                );
            }
        }
        ledger.close().unwrap();
    }
    let head = replica.head_seq().unwrap();
    write_summary(
        "soak_kills",
        json!({
            "kills": kills,
            "seconds": start.elapsed().as_secs(),
            "events": head,
            "acknowledged_checked": acked.len(),
            "replay_checksums_compared": checksums,
            "reader_commits_seen": reader_commits,
            "reader_last_position": reader_pos,
            "slowest_reopen_ms": worst_reopen.as_millis() as u64,
        }),
    );
}

/// Child of soak_load: reader `N` (the env var is `DIR|N`); reader 7 pauses
/// for 8 s every 4 s (retention keeps about 5 s) and resyncs. Reads until the driver
/// writes `DIR/done` holding the final head and the cursor reaches it.
/// Prints `final SEQ GAPS RESYNCED RECORDS` or `error ...`.
#[test]
#[ignore = "child process of soak_load"]
fn soak_load_reader_child() {
    let Ok(arg) = std::env::var(LOAD_READER_ENV) else {
        return;
    };
    // End the test harness's "test NAME ... " line: what follows is read
    // line by line.
    println!();
    let (dir, n) = arg.rsplit_once('|').unwrap();
    let n: u32 = n.parse().unwrap();
    let slow = n == 7;
    let ledger = Ledger::open_read_only(dir).unwrap();
    let mut c = ledger
        .cursor(
            Some(&format!("load-{n}")),
            CursorOptions {
                start: Start::Earliest,
                on_gap: if slow { OnGap::Resync } else { OnGap::Report },
                ..Default::default()
            },
        )
        .unwrap();
    let (mut gaps, mut resynced, mut records) = (0u64, 0u64, 0u64);
    let mut expected: Option<u64> = None;
    let mut last_pause = Instant::now();
    loop {
        if slow && last_pause.elapsed() > Duration::from_secs(4) {
            std::thread::sleep(Duration::from_secs(8));
            last_pause = Instant::now();
        }
        let b = match c.read(500, Duration::from_millis(200)) {
            Ok(b) => b,
            Err(e) => {
                println!("error read: {e}");
                return;
            }
        };
        if let Some(g) = &b.gap {
            if !slow {
                println!("error: reader {n} skipped {}..{}", g.expected, g.actual);
                return;
            }
            gaps += 1;
            expected = None;
        }
        for r in &b.records {
            if r.resync {
                resynced += 1;
                continue;
            }
            if let Some(want) = expected {
                if r.position.seq != want {
                    println!(
                        "error: reader {n} read seq {} where {want} was next",
                        r.position.seq
                    );
                    return;
                }
            }
            expected = Some(r.position.seq + 1);
            records += 1;
        }
        if !b.is_empty() {
            if let Err(e) = c.commit(b.next) {
                println!("error commit: {e}");
                return;
            }
        }
        if let Ok(t) = std::fs::read_to_string(Path::new(dir).join("done")) {
            let head: u64 = t.trim().parse().unwrap();
            if b.next.seq > head {
                println!("final {} {gaps} {resynced} {records}", b.next.seq);
                return;
            }
        }
    }
}

#[test]
#[ignore = "make soak"]
fn soak_load() {
    let seconds = env_u64("FSFEED_SOAK_SECONDS", 60);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let keep = 20_000;
    let ledger = Ledger::open_with(
        &dir,
        OpenOptions {
            durability: Durability::Buffered,
            retention: Some(Retention {
                max_events: Some(keep),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .unwrap();
    ledger.append(Op::bucket_create("vol1", "load")).unwrap();
    let mut readers: Vec<(Child, mpsc::Receiver<String>, std::thread::JoinHandle<()>)> = (0..8)
        .map(|n| {
            let mut c = child_test(
                "soak_load_reader_child",
                LOAD_READER_ENV,
                Path::new(&format!("{}|{n}", dir.display())),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
            let (rx, t) = lines_of(&mut c);
            (c, rx, t)
        })
        .collect();
    // About 4,000 events a second in batches of 40, on the objects of a
    // bucket of 5,000 (so a resync lists a live set, not everything).
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let ops = (0..40)
            .map(|j| {
                let k = (i * 40 + j) % 5000;
                Op::commit("vol1", "load", &format!("o{k:05}"), i, "e").at(T0 + i as i64)
            })
            .collect();
        ledger.append_batch(ops).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let head = ledger.head_seq().unwrap();
    let first = ledger.first_seq().unwrap();
    assert!(first > 1, "retention deleted history (first {first})");
    std::fs::write(dir.join("done"), head.to_string()).unwrap();
    let mut finals = Vec::new();
    for (n, (mut c, rx, t)) in readers.drain(..).enumerate() {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut fin = None;
        while fin.is_none() && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                assert!(!line.starts_with("error"), "reader {n}: {line}");
                if let Some(rest) = line.strip_prefix("final ") {
                    fin = Some(rest.to_string());
                }
            }
        }
        let _ = c.kill();
        c.wait().unwrap();
        t.join().unwrap();
        let fin = fin.unwrap_or_else(|| panic!("reader {n} never reached the head"));
        let f: Vec<u64> = fin.split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[0], head + 1, "reader {n} ended at {} (head {head})", f[0]);
        if n == 7 {
            assert!(
                f[1] > 0,
                "the slow reader never fell behind retention: {fin}"
            );
            assert!(f[2] > 0, "its gaps were followed by resyncs: {fin}");
        } else {
            assert_eq!(f[1], 0, "reader {n} skipped events");
        }
        finals.push(json!({"reader": n, "position": f[0], "gaps": f[1], "resync_records": f[2], "records": f[3]}));
    }
    let cursors = ledger.cursors().unwrap();
    assert_eq!(cursors.len(), 8);
    for c in &cursors {
        assert_eq!(c.position.seq, head + 1, "cursor {}", c.name);
    }
    ledger.close().unwrap();
    write_summary(
        "soak_load",
        json!({
            "seconds": seconds,
            "events": head,
            "first_retained": first,
            "retention_max_events": keep,
            "readers": finals,
        }),
    );
}
