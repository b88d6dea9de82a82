//! Helpers of the watch tests: a ledger, a tree, and the comparison of the
//! namespace at the head with a listing of the tree.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fsfeed::{Durability, Event, Ledger, OpenOptions};

pub const SYNC: Duration = Duration::from_secs(60);

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub ledger: Ledger,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        std::fs::create_dir(&root).unwrap();
        let ledger = Ledger::open_with(
            tmp.path().join("ledger"),
            OpenOptions {
                durability: Durability::Buffered,
                ..Default::default()
            },
        )
        .unwrap();
        Env { tmp, root, ledger }
    }

    /// A directory beside the tree (for moves in and out).
    pub fn outside(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn head(&self) -> u64 {
        self.ledger.head_seq().unwrap()
    }

    /// The events after `seq`.
    pub fn events_after(&self, seq: u64) -> Vec<Event> {
        let head = self.head();
        (seq + 1..=head)
            .map(|s| self.ledger.get(s).unwrap().unwrap())
            .collect()
    }

    /// What the namespace lists at the head: path -> (is_dir, size).
    pub fn namespace(&self) -> BTreeMap<String, (bool, Option<u64>)> {
        self.ledger
            .tree_at("", "tree", self.head())
            .unwrap()
            .into_iter()
            .map(|e| (e.path, (e.is_dir, e.state.size)))
            .collect()
    }

    /// The namespace must list exactly the tree.
    pub fn assert_same(&self, what: &str) {
        let ns = self.namespace();
        let tree = listing(&self.root, &[]);
        if ns != tree {
            let only_ns: Vec<_> = ns
                .iter()
                .filter(|(k, v)| tree.get(*k) != Some(v))
                .take(10)
                .collect();
            let only_tree: Vec<_> = tree
                .iter()
                .filter(|(k, v)| ns.get(*k) != Some(v))
                .take(10)
                .collect();
            panic!(
                "{what}: the namespace ({} entries) differs from the tree ({} entries)\n\
                 namespace only or different: {only_ns:?}\ntree only or different: {only_tree:?}",
                ns.len(),
                tree.len()
            );
        }
    }
}

/// Every path below `root` (links not followed): path -> (is_dir, size of a
/// file). Names starting with one of `skip` at the root are left out.
pub fn listing(root: &Path, skip: &[&str]) -> BTreeMap<String, (bool, Option<u64>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if rel.is_empty() && skip.iter().any(|s| name.starts_with(s)) {
                continue;
            }
            let p = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push((e.path(), p.clone()));
                out.insert(p, (true, None));
            } else {
                out.insert(p, (false, Some(md.size())));
            }
        }
    }
    out
}

/// Run a shell command in `dir`; it must succeed.
pub fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script} failed: {st}");
}

/// `files` files of 0..2 KiB below `dir`, in `dirs` directories two levels deep.
pub fn make_tree(dir: &Path, dirs: usize, files: usize) {
    for i in 0..files {
        let d = dir.join(format!("d{:02}/e{:02}", i % dirs, (i / dirs) % 4));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i:05}.txt")), vec![b'x'; i % 2048]).unwrap();
    }
}

/// How many of `events` are each kind, by source.
pub fn kinds(events: &[Event]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in events {
        let op = e.op.as_ref().unwrap();
        *m.entry((op.source.clone(), op.kind_name().to_string()))
            .or_default() += 1;
    }
    m
}

/// Does the process run as root (sysctls, tmpfs)?
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Root-only tests fail without root unless FSFEED_SKIP_ROOT_TESTS=1.
pub fn need_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("FSFEED_SKIP_ROOT_TESTS").as_deref() == Ok("1"),
        "{test} needs root (a sysctl); set FSFEED_SKIP_ROOT_TESTS=1 to skip it"
    );
    eprintln!("{test}: skipped (not root, FSFEED_SKIP_ROOT_TESTS=1)");
    false
}

/// A sysctl under /proc/sys set for the guard's life, then restored.
pub struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    pub fn set(path: &'static str, value: u64) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, value.to_string()).unwrap();
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        std::fs::write(self.path, self.old.trim()).unwrap();
    }
}
