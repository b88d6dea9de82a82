//! The core's layers (`ARCHITECTURE.md`, "Layers"): `lib.rs` declares the
//! modules lowest first, and a module may name (`crate::m`) only modules
//! declared before it, so no module imports one that imports it back. Test
//! code is left out: tests may reach across layers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules of `lib.rs`, in declaration order.
fn order() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').trim().to_string())
        .filter(|m| !m.contains('{'))
        .collect()
}

/// Every `.rs` file of a module (a file, or a directory of files).
fn files(module: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut stack = vec![src().join(module)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The modules a file names as `crate::m`, outside `#[cfg(test)]` code.
fn named(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_names_one_declared_after_it() {
    let order = order();
    assert!(order.len() >= 15, "{order:?}");
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut wrong = Vec::new();
    for (i, m) in order.iter().enumerate() {
        for f in files(m) {
            for n in named(&f) {
                if n == *m {
                    continue;
                }
                match rank.get(n.as_str()) {
                    Some(&j) if j > i => wrong.push(format!("{} names {n}", f.display())),
                    _ => {}
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}
