//! Property test of the shadow namespace against an in-memory model that
//! keeps the whole history of a tree: random creates, commits, deletes and
//! renames (files and directories, across depths). Then, for every object
//! and seq, `path_at` and `children_at` equal the model; every expansion
//! equals the model's listing before the event; and a cursor resumed at any
//! (seq, sub) continues with exactly the same records. The ledger is reopened
//! at random steps, so the writer also resolves names from what is stored.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, ExpandOptions, Layout, Ledger, Op, Position, Start};
use proptest::prelude::*;

/// path -> (model id, is_dir)
type Tree = BTreeMap<String, (usize, bool)>;

const NAMES: &[&str] = &["a", "b", "c"];

struct Model {
    tree: Tree,
    history: Vec<Tree>, // tree after seq i+1
    next_id: usize,
    ids: BTreeMap<usize, u64>, // model id -> ledger object id
}

fn parent(p: &str) -> Option<&str> {
    p.rfind('/').map(|i| &p[..i])
}

fn segs(p: &str) -> Vec<&str> {
    p.split('/').collect()
}

impl Model {
    fn ensure_parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if !self.tree.contains_key(&d) {
                self.tree.insert(d, (self.next_id, true));
                self.next_id += 1;
            }
        }
    }

    fn subtree(&self, path: &str) -> Vec<String> {
        let pre = format!("{path}/");
        self.tree
            .keys()
            .filter(|k| k.starts_with(&pre))
            .cloned()
            .collect()
    }
}

fn fso(op: Op) -> Op {
    op.with_layout(Layout::Fso).at(T0)
}

/// Turn choices into one valid op against the model (applying it there), or None.
fn step(m: &mut Model, choice: (u8, u8, u8, u8)) -> Option<Op> {
    let (kind, x, y, z) = choice;
    let path_from = |a: u8, b: u8, c: u8| -> String {
        let depth = 1 + (a as usize % 3);
        (0..depth)
            .map(|i| NAMES[[a, b, c][i] as usize % NAMES.len()])
            .collect::<Vec<_>>()
            .join("/")
    };
    let existing: Vec<String> = m.tree.keys().cloned().collect();
    match kind % 4 {
        0 | 1 => {
            // commit a file (parents made as needed)
            let p = path_from(x, y, z);
            if m.tree.contains_key(&p)
                || existing
                    .iter()
                    .any(|e| p.starts_with(&format!("{e}/")) && !m.tree[e].1)
            {
                return None;
            }
            m.ensure_parents(&p);
            m.tree.insert(p.clone(), (m.next_id, false));
            m.next_id += 1;
            Some(fso(Op::commit("v", "b", &p, 1, "e")))
        }
        2 => {
            if existing.is_empty() {
                return None;
            }
            let p = existing[x as usize % existing.len()].clone();
            for k in m.subtree(&p) {
                m.tree.remove(&k);
            }
            m.tree.remove(&p);
            Some(fso(Op::delete("v", "b", &p, true)))
        }
        _ => {
            if existing.is_empty() {
                return None;
            }
            let src = existing[x as usize % existing.len()].clone();
            let dst = path_from(y, z, x);
            let is_dir = m.tree[&src].1;
            if m.tree.contains_key(&dst) || dst == src || dst.starts_with(&format!("{src}/")) {
                return None;
            }
            if existing
                .iter()
                .any(|e| dst.starts_with(&format!("{e}/")) && !m.tree[e].1)
            {
                return None;
            }
            let moved: Vec<(String, (usize, bool))> = m
                .subtree(&src)
                .into_iter()
                .map(|k| {
                    let v = m.tree.remove(&k).unwrap();
                    (format!("{dst}{}", &k[src.len()..]), v)
                })
                .collect();
            let v = m.tree.remove(&src).unwrap();
            m.ensure_parents(&dst);
            m.tree.insert(dst.clone(), v);
            m.tree.extend(moved);
            let mut op = fso(Op::rename("v", "b", &src, &dst));
            op.is_dir = is_dir;
            Some(op)
        }
    }
}

fn expanded_stream(ledger: &Ledger, start: Start) -> Vec<(Position, String)> {
    let opts = CursorOptions {
        start,
        expand: ExpandOptions {
            renames: true,
            deletes: true,
        },
        ..Default::default()
    };
    let mut c = ledger.cursor(None, opts).unwrap();
    let mut out = Vec::new();
    loop {
        let b = c.read(3, Duration::ZERO).unwrap();
        if b.records.is_empty() {
            return out;
        }
        for r in b.records {
            let what = match &r.expansion {
                Some(x) => format!("{:?} {}", x.action, x.key),
                None => format!(
                    "{} {}",
                    r.event.op.as_ref().unwrap().kind_name(),
                    r.event.path
                ),
            };
            out.push((r.position, what));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn namespace_matches_the_model(choices in prop::collection::vec(any::<(u8, u8, u8, u8)>(), 1..40), pick in any::<u16>(), reopens in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = open(dir.path(), Durability::None, None);
        let mut m = Model { tree: Tree::new(), history: Vec::new(), next_id: 0, ids: BTreeMap::new() };
        for (i, c) in choices.into_iter().enumerate() {
            // Reopen before about one step in four: the writer's cache of live
            // edges starts empty, so what the step looks up is derived from
            // the stored edges.
            if reopens >> i & 3 == 0 {
                ledger.close().unwrap();
                ledger = open(dir.path(), Durability::None, None);
            }
            let Some(op) = step(&mut m, c) else { continue };
            // One op per append, so each op is one seq.
            let seq = ledger.append(op).unwrap();
            prop_assert_eq!(seq as usize, m.history.len() + 1);
            m.history.push(m.tree.clone());
            for (path, (mid, _)) in &m.tree {
                if !m.ids.contains_key(mid) {
                    let (oid, _) = ledger.resolve_at("v", "b", path, seq).unwrap().expect("resolves");
                    m.ids.insert(*mid, oid);
                }
            }
        }
        // path_at and children_at at every seq, for every object.
        for (i, tree) in m.history.iter().enumerate() {
            let seq = i as u64 + 1;
            let by_mid: BTreeMap<usize, &String> = tree.iter().map(|(p, (mid, _))| (*mid, p)).collect();
            for (mid, oid) in &m.ids {
                let got = ledger.path_at(*oid, seq).unwrap().map(|p| p.key);
                prop_assert_eq!(got.as_ref(), by_mid.get(mid).copied(), "object {} at seq {}", mid, seq);
            }
            for (path, (mid, is_dir)) in tree {
                if !is_dir {
                    continue;
                }
                let names: Vec<String> = ledger.children_at("v", "b", m.ids[mid], seq).unwrap().map(|c| c.unwrap().name).collect();
                let want: Vec<String> = tree.keys().filter(|k| parent(k) == Some(path.as_str())).map(|k| k[path.len() + 1..].to_string()).collect();
                prop_assert_eq!(names, want);
            }
            let root: Vec<String> = ledger.children_at("v", "b", 0, seq).unwrap().map(|c| c.unwrap().name).collect();
            let want: Vec<String> = tree.keys().filter(|k| !k.contains('/')).cloned().collect();
            prop_assert_eq!(root, want);
        }
        // Expansions equal the model's listing just before each event.
        let stream = expanded_stream(&ledger, Start::Earliest);
        for (i, _) in m.history.iter().enumerate() {
            let seq = i as u64 + 1;
            let ev = ledger.get(seq).unwrap().unwrap();
            let op = ev.op.as_ref().unwrap();
            let before = if i == 0 { Tree::new() } else { m.history[i - 1].clone() };
            let files_below = |p: &str| -> Vec<String> {
                let pre = format!("{p}/");
                let mut v: Vec<String> = before.iter().filter(|(k, (_, d))| k.starts_with(&pre) && !d).map(|(k, _)| k[pre.len()..].to_string()).collect();
                v.sort_by(|a, b| segs(a).cmp(&segs(b)));
                v
            };
            let got: Vec<&String> = stream.iter().filter(|(p, _)| p.seq == seq).map(|(_, w)| w).collect();
            let want: Vec<String> = match op.kind_name() {
                "rename" if op.is_dir => files_below(&ev.path).into_iter().flat_map(|r| vec![format!("Remove {}/{r}", ev.path), format!("Create {}/{r}", ev.to_path)]).collect(),
                "rename" => vec![format!("Remove {}", ev.path), format!("Create {}", ev.to_path)],
                "delete" if op.is_dir => files_below(&ev.path).into_iter().map(|r| format!("Remove {}/{r}", ev.path)).collect(),
                k => vec![format!("{k} {}", ev.path)],
            };
            prop_assert_eq!(got.iter().map(|s| s.as_str()).collect::<Vec<_>>(), want.iter().map(|s| s.as_str()).collect::<Vec<_>>(), "seq {}", seq);
        }
        // Resuming at any position continues the same stream.
        if !stream.is_empty() {
            let k = pick as usize % stream.len();
            let resumed = expanded_stream(&ledger, Start::Position(stream[k].0));
            prop_assert_eq!(&resumed[..], &stream[k..]);
        }
    }
}
