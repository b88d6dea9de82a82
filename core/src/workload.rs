//! A deterministic, realistic op workload for demos and benchmarks.
//!
//! The mix follows what an object store's metadata service sees: per volume
//! a few buckets (object-store and file-system layout), files created and
//! committed, appends and truncates, renames (files and directories),
//! deletes, ACL and attribute changes. Each op carries a principal, request
//! id and client address, about 300 bytes stored. Op times advance by a
//! deterministic step, so the same seed gives the same ops, byte for byte.

use crate::op::{Acl, Layout, Op, SetAttr};

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Generates ops; an iterator that never ends (take what you need).
#[derive(Debug, Clone)]
pub struct Workload {
    rng: Rng,
    time_us: i64,
    txid: u64,
    step: u64,
    live: Vec<(usize, String)>,
    buckets: Vec<(String, Layout)>,
    setup: Vec<Op>,
}

const VOLUME: &str = "vol1";
/// Most live files the generator tracks.
const MAX_LIVE: usize = 20_000;
const DIRS: &[&str] = &[
    "logs",
    "data/2026",
    "data/2027",
    "tmp",
    "home/alice",
    "home/bob",
];
const USERS: &[&str] = &["alice", "bob", "etl-svc", "spark"];

impl Workload {
    /// A workload from a seed, starting at op time `start_us`.
    pub fn new(seed: u64, start_us: i64) -> Workload {
        let buckets = vec![
            ("warehouse".to_string(), Layout::Fso),
            ("ingest".to_string(), Layout::Obs),
            ("archive".to_string(), Layout::Obs),
        ];
        let mut setup = vec![Op::volume_create(VOLUME)];
        for (b, _) in &buckets {
            setup.push(Op::bucket_create(VOLUME, b));
        }
        setup.reverse();
        Workload {
            rng: Rng::new(seed),
            time_us: start_us,
            txid: 0,
            step: 0,
            live: Vec::new(),
            buckets,
            setup,
        }
    }

    /// A key no earlier op of this workload created: replayed into a
    /// ledger, the ops are valid for the shadow namespace too.
    fn key(&mut self) -> String {
        let dir = DIRS[self.rng.below(DIRS.len() as u64) as usize];
        let ext = ["parquet", "json", "csv", "log", "bin"][self.rng.below(5) as usize];
        format!("{dir}/part-{:07}.{ext}", self.step)
    }

    fn finish(&mut self, mut op: Op) -> Op {
        // Ops on the fixed directories (fallbacks when no file is live) say
        // so, so the shadow namespace adopts them as directories.
        if op.key == "data" || DIRS.contains(&op.key.as_str()) {
            op.is_dir = true;
        }
        self.txid += 1;
        self.time_us += 1 + self.rng.below(2_000) as i64;
        let user = USERS[self.rng.below(USERS.len() as u64) as usize];
        let ip = format!(
            "10.{}.{}.{}",
            self.rng.below(4),
            self.rng.below(256),
            1 + self.rng.below(254)
        );
        let req = format!("{:016X}", self.rng.next_u64());
        let layout = self
            .buckets
            .iter()
            .find(|(b, _)| *b == op.bucket)
            .map(|(_, l)| *l)
            .unwrap_or(Layout::Obs);
        op.with_layout(layout)
            .at(self.time_us)
            .with_txid(self.txid)
            .by(&format!("arn:aws:iam::123456789012:user/{user}"), &req, &ip)
    }

    fn next_op(&mut self) -> Op {
        if let Some(op) = self.setup.pop() {
            return self.finish(op);
        }
        self.step += 1;
        let mut roll = self.rng.below(100);
        // Keep the set of live files bounded (a steady state, and memory of
        // the generator that does not grow with the run): past the cap,
        // creates become deletes.
        if roll < 30 && self.live.len() >= MAX_LIVE {
            roll = 67;
        }
        let b = self.rng.below(self.buckets.len() as u64) as usize;
        let bucket = self.buckets[b].0.clone();
        let pick = |w: &mut Workload| -> Option<(usize, String)> {
            if w.live.is_empty() {
                None
            } else {
                let i = w.rng.below(w.live.len() as u64) as usize;
                Some((i, w.live[i].1.clone()))
            }
        };
        // A live file and its bucket, or `fallback` in the rolled bucket.
        let pick_in = |w: &mut Workload, fallback: &str| -> (String, String) {
            match pick(w) {
                Some((i, key)) => (w.buckets[w.live[i].0].0.clone(), key),
                None => (bucket.clone(), fallback.to_string()),
            }
        };
        let op = match roll {
            0..=29 => {
                let key = self.key();
                let mut op = Op::create_file(VOLUME, &bucket, &key);
                if let Some(crate::op::Kind::CreateFile(c)) = &mut op.kind {
                    c.replication = Some(3);
                    c.owner = "alice".into();
                    c.group = "staff".into();
                    c.perms = Some(0o644);
                }
                self.live.push((b, key));
                op
            }
            30..=59 => match pick(self) {
                Some((i, key)) => {
                    let (bi, _) = self.live[i];
                    let size = self.rng.below(64 << 20);
                    let etag = format!("{:032x}", self.rng.next_u64() as u128 * 31);
                    Op::commit(VOLUME, &self.buckets[bi].0, &key, size, &etag)
                }
                None => Op::create_directory(VOLUME, &bucket, "tmp"),
            },
            60..=66 => match pick(self) {
                Some((i, key)) => {
                    let (bi, _) = self.live[i];
                    let to = format!("{key}.moved");
                    self.live[i].1 = to.clone();
                    Op::rename(VOLUME, &self.buckets[bi].0, &key, &to)
                }
                None => Op::create_directory(VOLUME, &bucket, "logs"),
            },
            67..=76 => match pick(self) {
                Some((i, key)) => {
                    let (bi, _) = self.live.swap_remove(i);
                    Op::delete(VOLUME, &self.buckets[bi].0, &key, false)
                }
                None => Op::create_directory(VOLUME, &bucket, "data"),
            },
            77..=83 => {
                let (bucket, key) = pick_in(self, "logs");
                let user = USERS[self.rng.below(USERS.len() as u64) as usize];
                Op::acl_add(
                    VOLUME,
                    &bucket,
                    &key,
                    vec![Acl::new("user", user, &["read", "write"])],
                )
            }
            84..=88 => {
                let (bucket, key) = pick_in(self, "logs");
                let mtime = self.time_us / 1000;
                Op::set_times(VOLUME, &bucket, &key, Some(mtime), Some(mtime))
            }
            89..=91 => {
                let (bucket, key) = pick_in(self, "logs");
                let attr = SetAttr {
                    perms: Some(0o640),
                    ..Default::default()
                };
                Op::set_attr(VOLUME, &bucket, &key, attr)
            }
            92..=95 => {
                let (bucket, key) = pick_in(self, "logs/app.log");
                Op::append(VOLUME, &bucket, &key, self.rng.below(4) == 0)
            }
            96..=97 => {
                let (bucket, key) = pick_in(self, "logs/app.log");
                Op::truncate(VOLUME, &bucket, &key, self.rng.below(1 << 20))
            }
            _ => {
                let dir = format!(
                    "{}/batch-{:05}",
                    DIRS[self.rng.below(DIRS.len() as u64) as usize],
                    self.step
                );
                Op::create_directory(VOLUME, &bucket, &dir)
            }
        };
        self.finish(op)
    }
}

impl Iterator for Workload {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        Some(self.next_op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_valid_ops() {
        let a: Vec<Op> = Workload::new(7, 1_700_000_000_000_000).take(2000).collect();
        let b: Vec<Op> = Workload::new(7, 1_700_000_000_000_000).take(2000).collect();
        assert_eq!(a, b);
        for (i, op) in a.iter().enumerate() {
            crate::op::validate(op, i).unwrap();
        }
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|o| o.kind_name()).collect();
        assert!(kinds.len() >= 10, "{kinds:?}");
        // Valid for the shadow namespace too: every op appends with FSO layout.
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::Ledger::open_with(
            dir.path(),
            crate::OpenOptions {
                durability: crate::Durability::None,
                ..Default::default()
            },
        )
        .unwrap();
        let fso: Vec<Op> = a
            .iter()
            .map(|o| o.clone().with_layout(Layout::Fso))
            .collect();
        for chunk in fso.chunks(100) {
            ledger.append_batch(chunk.to_vec()).unwrap();
        }
        for op in &a {
            let fso = op.bucket == "warehouse";
            assert_eq!(op.layout_enum() == Layout::Fso, fso, "{op:?}");
        }
    }
}
