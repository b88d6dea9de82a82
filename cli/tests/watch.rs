//! `fsfeed watch` as a user runs it: a tree, a ledger, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fsfeed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fsfeed"))
}

#[test]
fn watch_appends_until_sigterm_and_prints_its_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("site");
    std::fs::create_dir_all(root.join("old")).unwrap();
    std::fs::write(root.join("old/kept.txt"), b"kept").unwrap();
    let ledger = tmp.path().join("ledger");
    let mut child = fsfeed()
        .args([
            "watch",
            root.to_str().unwrap(),
            "--ledger",
            ledger.to_str().unwrap(),
        ])
        .args(["--durability", "buffered", "--ignore", "*.swp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("watching ") && line.trim_end().ends_with(" as bucket site"),
        "{line}"
    );
    std::fs::write(root.join("new.txt"), b"12345").unwrap();
    std::fs::write(root.join("x.swp"), b"ignored").unwrap();
    std::fs::rename(root.join("old"), root.join("renamed")).unwrap();
    // Another process reads the ledger while the watcher writes it.
    let l = fsfeed::Ledger::open_read_only(&ledger).unwrap();
    let want = ["new.txt", "renamed", "renamed/kept.txt"];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = l.head_seq().unwrap();
        let tree: Vec<(String, Option<u64>)> = l
            .tree_at("", "site", head)
            .unwrap()
            .into_iter()
            .map(|e| (e.path, e.state.size))
            .collect();
        if tree.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>() == want {
            assert_eq!(tree[0].1, Some(5));
            assert_eq!(tree[2].1, Some(4));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger did not catch up: {tree:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(l);
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let counters: serde_json::Value =
        serde_json::from_str(rest.trim().lines().last().unwrap()).unwrap();
    assert!(counters["ops"].as_u64().unwrap() >= 4, "{counters}");
    assert!(counters["ignored"].as_u64().unwrap() >= 1, "{counters}");
    assert_eq!(counters["overflows"], 0);
}

#[test]
fn bad_input_exits_2_and_creates_no_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    let ledger = tmp.path().join("ledger");
    let (r, l) = (root.to_str().unwrap(), ledger.to_str().unwrap());
    let missing = tmp.path().join("missing");
    let cases: Vec<Vec<&str>> = vec![
        vec!["watch", missing.to_str().unwrap(), "--ledger", l],
        vec!["watch", r, "--ledger", l, "--ignore", "["],
        vec!["watch", r, "--ledger", l, "--bucket", "a/b"],
        vec!["watch", r, "--ledger", l, "--rescan-interval", "0"],
        vec!["watch", r, "--ledger", l, "--durability", "sometimes"],
    ];
    for args in cases {
        let out = fsfeed().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error[invalid_argument]"), "{args:?}: {err}");
        assert!(!ledger.exists(), "{args:?} created the ledger");
    }
    // clap's own refusals (a missing DIR) exit 2 as well.
    assert_eq!(
        fsfeed()
            .args(["watch", "--ledger", l])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}
