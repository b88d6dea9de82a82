//! `fsfeed watch` on a real kernel: real workloads in a temporary tree,
//! after each of which the namespace at the head lists exactly the tree.

mod common;

use std::time::Duration;

use common::*;
use fsfeed::op::Kind;
use fsfeed_watch::{watch, Options};

#[test]
fn untar_rename_remove_rewrite_and_move() {
    let env = Env::new();
    // A tar of 10,000 files, made outside the tree.
    let src = env.outside("src");
    make_tree(&src.join("proj"), 25, 10_000);
    sh(env.tmp.path(), "tar -C src -cf proj.tar proj");
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    env.assert_same("empty tree");

    // 1. Untar.
    let before = env.head();
    sh(&env.root, "tar -xf ../proj.tar");
    w.sync(SYNC).unwrap();
    env.assert_same("after untar");
    // Each file committed (from its close, or from the listing of a new
    // directory tar had already filled), with no correction needed.
    let k = kinds(&env.events_after(before));
    let commits: usize = k
        .iter()
        .filter(|((_, kind), _)| kind == "commit")
        .map(|(_, n)| n)
        .sum();
    assert!(commits >= 10_000, "{k:?}");
    assert!(!k.keys().any(|(source, _)| source == "resync"), "{k:?}");
    assert_eq!(env.namespace().len(), 10_000 + 1 + 25 + 100);

    // 2. Renames at several depths: each is one rename op, nothing else.
    let before = env.head();
    sh(
        &env.root,
        "mv proj/d00/e01 proj/d00/e01-renamed; mv proj/d03 proj/d03-renamed; \
         mv proj/d04 proj/d00/d04-moved-down; mv proj/d00/e02 proj/e02-moved-up; mv proj proj2",
    );
    w.sync(SYNC).unwrap();
    env.assert_same("after renames");
    let ev = env.events_after(before);
    assert_eq!(ev.len(), 5, "one op per rename: {:?}", kinds(&ev));
    assert!(ev
        .iter()
        .all(|e| matches!(e.op.as_ref().unwrap().kind, Some(Kind::Rename(_)))));
    assert_eq!(ev[4].to_path, "proj2");

    // 3. rm -rf of a subtree.
    let before = env.head();
    sh(&env.root, "rm -rf proj2/d05");
    w.sync(SYNC).unwrap();
    env.assert_same("after rm -rf");
    let k = kinds(&env.events_after(before));
    assert_eq!(k.len(), 1, "only deletes: {k:?}");
    assert!(!env.namespace().keys().any(|p| p.starts_with("proj2/d05")));

    // 4. Rewrites in place: new sizes, committed with their mtime.
    let before = env.head();
    sh(
        &env.root,
        "for f in proj2/d06/e00/*.txt; do printf 'rewritten %s' \"$f\" > \"$f\"; done; \
         head -c 5000 /dev/zero >> proj2/d07/e00/f00007.txt",
    );
    w.sync(SYNC).unwrap();
    env.assert_same("after rewrites");
    let ev = env.events_after(before);
    assert!(!ev.is_empty());
    for e in &ev {
        let op = e.op.as_ref().unwrap();
        let Some(Kind::Commit(c)) = &op.kind else {
            panic!("a rewrite is a commit: {op:?}")
        };
        assert!(c.size.is_some() && c.mtime.is_some(), "{op:?}");
    }

    // 5. Moves in and out of the tree.
    let out = env.outside("out");
    let before = env.head();
    sh(
        env.tmp.path(),
        "mv tree/proj2/d08 out/d08; mv src/proj/d09 tree/moved-in; mv src/proj/d10/e00/f00010.txt tree/one-file",
    );
    w.sync(SYNC).unwrap();
    env.assert_same("after moves in and out");
    let k = kinds(&env.events_after(before));
    assert_eq!(
        k.get(&("inotify".into(), "delete".into())),
        Some(&1),
        "{k:?}"
    );
    assert!(out.join("d08").is_dir());
    assert!(
        env.namespace().contains_key("moved-in/e03"),
        "a moved-in subtree is listed"
    );

    // 6. Attributes and times.
    let before = env.head();
    sh(
        &env.root,
        "chmod 600 one-file; touch -d 2001-02-03 moved-in/e00/f00009.txt",
    );
    w.sync(SYNC).unwrap();
    let ev = env.events_after(before);
    let attr = ev.iter().find_map(|e| match &e.op.as_ref().unwrap().kind {
        Some(Kind::SetAttr(a)) => Some(a.perms),
        _ => None,
    });
    assert_eq!(attr, Some(Some(0o600)), "{:?}", kinds(&ev));
    let times = ev.iter().find_map(|e| match &e.op.as_ref().unwrap().kind {
        Some(Kind::SetTimes(t)) => Some(t.mtime),
        _ => None,
    });
    assert_eq!(times, Some(Some(981_158_400_000)), "{:?}", kinds(&ev));

    let c = w.stop().unwrap();
    assert_eq!(c.overflows, 0);
    assert!(c.events > 0, "{c:?}");
    assert_eq!(c.ops, env.head(), "every op appended is counted: {c:?}");
    assert_eq!(c.last_seq, Some(env.head()));
}

/// A new directory filled before its watch exists is found by its scan.
#[test]
fn mkdir_p_then_fill_at_once_misses_nothing() {
    let env = Env::new();
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    for round in 0..20 {
        sh(
            &env.root,
            &format!(
                "mkdir -p r{round}/a/b/c && for i in 1 2 3 4 5; do echo $i > r{round}/a/b/c/$i; \
                 mkdir r{round}/a/b/c/d$i; echo x > r{round}/a/b/c/d$i/x; done"
            ),
        );
    }
    w.sync(SYNC).unwrap();
    env.assert_same("after mkdir -p and fill");
    let k = kinds(&env.events_after(0));
    assert!(
        !k.keys().any(|(s, _)| s == "resync"),
        "no correction was needed: {k:?}"
    );
    w.stop().unwrap();
}

/// Stopped, the tree changes; the restart appends only the differences.
#[test]
fn restart_appends_only_the_differences() {
    let env = Env::new();
    make_tree(&env.root, 5, 500);
    let w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    env.assert_same("first start");
    let first = kinds(&env.events_after(0));
    assert!(first.keys().all(|(s, _)| s == "resync"), "{first:?}");
    w.stop().unwrap();

    sh(
        &env.root,
        "rm -rf d00; echo changed > d01/e00/f00001.txt; mkdir new; echo n > new/file; \
         mv d02 d02-renamed",
    );
    let before = env.head();
    let w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    env.assert_same("after restart");
    let ev = env.events_after(before);
    let k = kinds(&ev);
    // rm -rf d00: 1 delete; the rewrite: 1 commit; new + new/file: 3 ops;
    // the rename (inodes are not in the ledger): 1 delete + the creates of d02-renamed.
    let renamed = listing(&env.root.join("d02-renamed"), &[]);
    let creates_of_renamed = 1 + renamed
        .values()
        .map(|(d, _)| if *d { 1 } else { 2 })
        .sum::<usize>();
    assert_eq!(ev.len(), 1 + 1 + 3 + 1 + creates_of_renamed, "{k:?}");
    assert!(k.keys().all(|(s, _)| s == "resync"), "{k:?}");
    let c = w.stop().unwrap();
    assert_eq!(c.diff_ops as usize, ev.len());
    assert_eq!(c.rescans, 1);
}

/// Events lost while the watcher does not read: the queue overflows, and
/// the diff emits only what changed, a directory rename as one rename.
#[test]
fn overflow_is_recovered_by_a_diff_of_only_what_changed() {
    let env = Env::new();
    make_tree(&env.root, 10, 2_000);
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    w.pause();
    let before = env.head();
    // More events than the queue holds: files in a watched directory.
    let n = max_queued + 1_000;
    sh(
        &env.root,
        &format!(
            "for i in $(seq 1 {n}); do : > d09/burst-$i; done; \
             echo changed > d01/e00/f00001.txt; rm -rf d02; mv d03 d03-renamed; chmod 700 d04"
        ),
    );
    w.resume();
    w.sync(SYNC).unwrap();
    env.assert_same("after the overflow");
    let c = w.counters();
    assert!(c.overflows >= 1, "{c:?}");
    let ev = env.events_after(before);
    let k = kinds(&ev);
    // Every op is about a path the workload touched.
    for e in &ev {
        let p = &e.path;
        assert!(
            p.starts_with("d09/burst-")
                || p == "d01/e00/f00001.txt"
                || p == "d02"
                || p == "d03"
                || p == "d04",
            "an op about an untouched path: {e:?}"
        );
    }
    // The rename is one op, the rm -rf one delete.
    let renames: Vec<_> = ev.iter().filter(|e| e.to_path == "d03-renamed").collect();
    assert_eq!(renames.len(), 1, "{k:?}");
    assert_eq!(ev.iter().filter(|e| e.path == "d02").count(), 1, "{k:?}");
    // Every file of the burst is created and committed once.
    let burst_creates = ev
        .iter()
        .filter(|e| e.path.starts_with("d09/burst-"))
        .filter(|e| matches!(e.op.as_ref().unwrap().kind, Some(Kind::CreateFile(_))))
        .count();
    assert_eq!(burst_creates, n, "{k:?}");
    w.stop().unwrap();
}

#[test]
fn ignore_patterns_leave_paths_out() {
    let env = Env::new();
    sh(
        &env.root,
        "mkdir -p .git/objects src && echo a > .git/HEAD && echo b > src/x.tmp",
    );
    let mut w = watch(
        &env.root,
        &env.ledger,
        Options {
            ignore: vec![".git/**".into(), "**/*.tmp".into()],
            ..Default::default()
        },
    )
    .unwrap();
    sh(
        &env.root,
        "echo c > .git/objects/o && echo d > src/y.tmp && echo e > src/keep.rs",
    );
    w.sync(SYNC).unwrap();
    let ns = env.namespace();
    assert_eq!(ns.keys().collect::<Vec<_>>(), ["src", "src/keep.rs"]);
    let c = w.stop().unwrap();
    assert!(c.ignored >= 3, "{c:?}");
}

#[test]
fn wrong_input_is_a_typed_error_and_appends_nothing() {
    let env = Env::new();
    let file = env.tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let cases: Vec<(std::path::PathBuf, Options)> = vec![
        (env.tmp.path().join("missing"), Options::default()),
        (file, Options::default()),
        (
            env.root.clone(),
            Options {
                bucket: Some("a/b".into()),
                ..Default::default()
            },
        ),
        (
            env.root.clone(),
            Options {
                bucket: Some(String::new()),
                ..Default::default()
            },
        ),
        (
            env.root.clone(),
            Options {
                ignore: vec!["[".into()],
                ..Default::default()
            },
        ),
        (
            env.root.clone(),
            Options {
                max_batch: 0,
                ..Default::default()
            },
        ),
        (
            env.root.clone(),
            Options {
                rescan_interval: Duration::ZERO,
                ..Default::default()
            },
        ),
    ];
    std::fs::write(env.root.join("f"), b"x").unwrap();
    for (root, opts) in cases {
        let e = watch(&root, &env.ledger, opts.clone())
            .err()
            .unwrap_or_else(|| panic!("{root:?} {opts:?}"));
        assert_eq!(e.code(), "invalid_argument", "{e}");
    }
    assert_eq!(env.head(), 0, "nothing appended");
    // A read-only ledger.
    let ro = fsfeed::Ledger::open_read_only(env.ledger.path()).unwrap();
    assert_eq!(
        watch(&env.root, &ro, Options::default())
            .err()
            .unwrap()
            .code(),
        "read_only"
    );
}

/// A hard link appears complete (no close after write comes for it): it is
/// created and committed with the linked file's size at once.
#[test]
fn a_hard_link_is_committed_as_it_appears() {
    let env = Env::new();
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    sh(&env.root, "mkdir d && printf 'twelve bytes' > d/a");
    w.sync(SYNC).unwrap();
    let before = env.head();
    std::fs::hard_link(env.root.join("d/a"), env.root.join("d/b")).unwrap();
    w.sync(SYNC).unwrap();
    let ev = env.events_after(before);
    let commit = ev.iter().find_map(|e| match &e.op.as_ref().unwrap().kind {
        Some(Kind::Commit(c)) if e.path == "d/b" => Some(c.size),
        _ => None,
    });
    assert_eq!(commit, Some(Some(12)), "{:?}", kinds(&ev));
    assert_eq!(env.namespace().get("d/b"), Some(&(false, Some(12))));
    env.assert_same("after a hard link");
    w.stop().unwrap();
}

/// The root removed under the watcher ends it with `io`: the tree went
/// away, the caller's input was not wrong.
#[test]
fn a_removed_root_ends_the_watcher_with_io() {
    let env = Env::new();
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    sh(&env.root, "mkdir d && echo x > d/f");
    w.sync(SYNC).unwrap();
    std::fs::remove_dir_all(&env.root).unwrap();
    let e = w.wait().unwrap_err();
    assert_eq!(e.code(), "io", "{e}");
    assert!(e.to_string().contains("was removed or moved away"), "{e}");
}

/// Files written just before their directory is renamed: their events name
/// the old path, which is gone when they are read. They are found under the
/// new name, committed, without a rescan.
#[test]
fn files_written_just_before_their_directory_is_renamed_are_found() {
    let env = Env::new();
    let mut w = watch(&env.root, &env.ledger, Options::default()).unwrap();
    for round in 0..20 {
        sh(
            &env.root,
            &format!("mkdir -p a{round}/s && printf 'here before' > a{round}/s/old.txt"),
        );
        w.sync(SYNC).unwrap();
        // Not read until the writes and the rename are done.
        w.pause();
        sh(
            &env.root,
            &format!(
                "printf 'twelve bytes' > a{round}/new.txt; printf 'deep' > a{round}/s/deep.txt; \
                 mv a{round} b{round}"
            ),
        );
        w.resume();
    }
    w.sync(SYNC).unwrap();
    env.assert_same("after writes then renames");
    let ns = env.namespace();
    for round in 0..20 {
        assert_eq!(
            ns.get(&format!("b{round}/new.txt")),
            Some(&(false, Some(12)))
        );
        assert_eq!(
            ns.get(&format!("b{round}/s/deep.txt")),
            Some(&(false, Some(4)))
        );
    }
    let c = w.stop().unwrap();
    assert_eq!(c.rescans, 1, "only the start's diff: {c:?}");
}
