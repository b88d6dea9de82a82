//! The tree side: what a listing finds, the watcher's mirror of the
//! namespace, and the ignore patterns.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use fsfeed::{Error, Result};

/// What the watcher knows of one path: from a listing (everything), or
/// from the ledger (type, size, mtime; the rest unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub is_dir: bool,
    /// Files only. `None`: not known (created, not committed yet).
    pub size: Option<u64>,
    /// Files only, milliseconds.
    pub mtime_ms: Option<i64>,
    pub perms: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub ino: Option<u64>,
}

impl Node {
    /// A path as `lstat` sees it (links are not followed).
    pub fn of(md: &std::fs::Metadata) -> Node {
        let is_dir = md.is_dir();
        Node {
            is_dir,
            size: (!is_dir).then_some(md.len()),
            mtime_ms: (!is_dir).then(|| mtime_ms(md)),
            perms: Some(md.mode() & 0o7777),
            uid: Some(md.uid()),
            gid: Some(md.gid()),
            ino: Some(md.ino()),
        }
    }

    /// A path as the ledger knows it.
    pub fn from_ledger(e: &fsfeed::namespace::TreeEntry) -> Node {
        Node {
            is_dir: e.is_dir,
            size: e.state.size,
            mtime_ms: e.state.mtime_ms,
            perms: None,
            uid: None,
            gid: None,
            ino: None,
        }
    }
}

pub(crate) fn mtime_ms(md: &std::fs::Metadata) -> i64 {
    md.mtime() * 1000 + md.mtime_nsec() / 1_000_000
}

/// The watcher's copy of the namespace of its bucket: path -> node, in
/// key order (a directory right before what is below it).
pub(crate) type Mirror = BTreeMap<String, Node>;

/// `dir/name` (the root is "").
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory of `rel` ("" for the root's children).
pub(crate) fn parent(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

/// Whether `path` is `rel` or below it (everything is below the root, "").
pub(crate) fn within(path: &str, rel: &str) -> bool {
    rel.is_empty()
        || path == rel
        || (path.len() > rel.len() && path.starts_with(rel) && path.as_bytes()[rel.len()] == b'/')
}

/// The keys of `rel` and everything below it, in order.
pub(crate) fn subtree_keys<V>(m: &BTreeMap<String, V>, rel: &str) -> Vec<String> {
    if rel.is_empty() {
        return m.keys().cloned().collect();
    }
    let mut out: Vec<String> = m
        .get_key_value(rel)
        .map(|(k, _)| k.clone())
        .into_iter()
        .collect();
    // Below `rel`: from `rel/` up to, not including, `rel0` ('0' follows '/').
    let lo = format!("{rel}/");
    let hi = format!("{rel}0");
    out.extend(m.range(lo..hi).map(|(k, _)| k.clone()));
    out
}

/// Move `from` and everything below it to `to`.
pub(crate) fn move_subtree<V>(m: &mut BTreeMap<String, V>, from: &str, to: &str) {
    for k in subtree_keys(m, from) {
        if let Some(v) = m.remove(&k) {
            m.insert(format!("{to}{}", &k[from.len()..]), v);
        }
    }
}

/// Remove `rel` and everything below it.
pub(crate) fn remove_subtree<V>(m: &mut BTreeMap<String, V>, rel: &str) -> Vec<(String, V)> {
    subtree_keys(m, rel)
        .into_iter()
        .filter_map(|k| m.remove(&k).map(|v| (k, v)))
        .collect()
}

/// The `--ignore` patterns.
pub(crate) struct Ignore(Vec<glob::Pattern>);

const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Ignore {
    pub fn new(globs: &[String]) -> Result<Ignore> {
        globs
            .iter()
            .map(|g| {
                if g.is_empty() {
                    return Err(Error::InvalidArgument("an ignore pattern is empty".into()));
                }
                glob::Pattern::new(g)
                    .map_err(|e| Error::InvalidArgument(format!("ignore pattern {g:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Ignore)
    }

    /// Is `rel` left out? A directory is when a pattern matches it or
    /// matches any path below it (`dir/**`, `dir/*`): a probe name no
    /// literal pattern can hold (NUL) stands for "any name below".
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        if self.0.is_empty() {
            return false;
        }
        if self.0.iter().any(|p| p.matches_with(rel, MATCH)) {
            return true;
        }
        is_dir && {
            let probe = format!("{rel}/\0");
            self.0.iter().any(|p| p.matches_with(&probe, MATCH))
        }
    }
}

/// Can the ledger hold `rel` as a key of an FSO bucket?
pub(crate) fn valid_key(rel: &str) -> bool {
    fsfeed::op::validate_key(rel, fsfeed::Layout::Fso, 0).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtrees_take_only_what_is_below() {
        let mut m = BTreeMap::new();
        for k in ["a", "a-b", "a/b", "a/b/c", "a0", "ab", "b"] {
            m.insert(k.to_string(), ());
        }
        assert_eq!(subtree_keys(&m, "a"), ["a", "a/b", "a/b/c"]);
        assert_eq!(subtree_keys(&m, "a/b"), ["a/b", "a/b/c"]);
        assert_eq!(subtree_keys(&m, "").len(), 7);
        move_subtree(&mut m, "a", "z/y");
        assert!(m.contains_key("z/y/b/c") && !m.contains_key("a") && m.contains_key("a-b"));
        assert_eq!(remove_subtree(&mut m, "z").len(), 3);
        assert!(within("a/b", "a") && !within("ab", "a") && within("x", "") && within("a", "a"));
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
    }

    #[test]
    fn ignore_patterns() {
        let i = Ignore::new(&[".git/**".into(), "*.tmp".into(), "build/*".into()]).unwrap();
        assert!(i.is_ignored(".git", true));
        assert!(i.is_ignored(".git/objects/ab", false));
        assert!(!i.is_ignored(".gitignore", false));
        assert!(i.is_ignored("x.tmp", false));
        assert!(
            !i.is_ignored("d/x.tmp", false),
            "* does not cross directories"
        );
        assert!(i.is_ignored("build", true));
        assert!(
            !i.is_ignored("build", false),
            "a file named like the directory stays"
        );
        assert!(!i.is_ignored("src", true));
        assert!(Ignore::new(&["[".into()]).is_err());
        assert!(Ignore::new(&["".into()]).is_err());
    }
}
