//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use fsfeed::{Batch, CursorOptions, Durability, Ledger, Op, OpenOptions, Record, Retention, Start};

/// Op time of the first test op: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000_000;

/// `n` commit ops on distinct keys, one millisecond apart from `T0 + start_ms`.
pub fn commits(start: u64, n: u64) -> Vec<Op> {
    (start..start + n)
        .map(|i| {
            Op::commit("vol1", "b1", &format!("dir/k{i:06}"), i, "etag").at(T0 + i as i64 * 1000)
        })
        .collect()
}

/// A ledger with the given durability and retention.
pub fn open(dir: &Path, durability: Durability, retention: Option<Retention>) -> Ledger {
    Ledger::open_with(
        dir,
        OpenOptions {
            durability,
            retention,
            ..Default::default()
        },
    )
    .expect("open ledger")
}

/// Every retained (seq, key) in order.
pub fn all_keys(ledger: &Ledger) -> Vec<(u64, String)> {
    ledger
        .scan(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.path))
        .collect()
}

/// The op corpus of the golden fixtures (`tests/fixtures/corpus.jsonl`).
pub fn corpus_ops() -> Vec<Op> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/corpus.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| Op::from_json(l, i + 1).unwrap())
        .collect()
}

/// The corpus appended to a fresh ledger in `dir`, read back as records.
pub fn corpus_records(dir: &Path) -> Vec<Record> {
    let ledger = open(dir, Durability::None, None);
    ledger.append_batch(corpus_ops()).unwrap();
    let mut c = ledger.cursor(None, CursorOptions::default()).unwrap();
    c.read(10_000, std::time::Duration::ZERO).unwrap().records
}

/// The RocksDB database under a closed ledger, every column family open:
/// for tests that change what is on disk behind the ledger's back.
pub fn raw_db(ledger_dir: &Path) -> rocksdb::DB {
    let path = ledger_dir.join("db");
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
    let descriptors = cfs
        .iter()
        .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, raw_cf_options(name)));
    rocksdb::DB::open_cf_descriptors(&rocksdb::Options::default(), &path, descriptors).unwrap()
}

/// Delete every key of column family `name` of a [`raw_db`].
pub fn clear_cf(db: &rocksdb::DB, name: &str) {
    let cf = db.cf_handle(name).unwrap();
    let keys: Vec<Vec<u8>> = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| kv.unwrap().0.to_vec())
        .collect();
    for k in keys {
        db.delete_cf(cf, k).unwrap();
    }
}

/// The format version stored in a closed ledger.
pub fn format_on_disk(ledger_dir: &Path) -> u32 {
    let db = raw_db(ledger_dir);
    let v = db
        .get_cf(db.cf_handle("meta").unwrap(), b"format_version")
        .unwrap()
        .unwrap();
    u32::from_be_bytes(v.as_slice().try_into().unwrap())
}

/// Options of a column family for [`raw_db`]: `events` gets a merge
/// operator as the ledger's (format 6 appends to a block of events by
/// merging records into it), written out here from the format's definition
/// so a raw reader sees whole blocks.
pub fn raw_cf_options(name: &str) -> rocksdb::Options {
    let mut o = rocksdb::Options::default();
    if name == "events" {
        fn concat(
            _key: &[u8],
            existing: Option<&[u8]>,
            operands: &rocksdb::MergeOperands,
        ) -> Option<Vec<u8>> {
            let mut out = existing.map(<[u8]>::to_vec).unwrap_or_else(|| vec![0]);
            operands.iter().for_each(|o| out.extend_from_slice(o));
            Some(out)
        }
        fn partial(
            _key: &[u8],
            _existing: Option<&[u8]>,
            operands: &rocksdb::MergeOperands,
        ) -> Option<Vec<u8>> {
            Some(operands.iter().flatten().copied().collect())
        }
        o.set_merge_operator("fsfeed.event_blocks.v1", concat, partial);
    }
    o
}

/// Four object-store ops on `v/b`: `a` (5, e1) and `c` (7, e3) stay, `b`
/// is committed and deleted. What the live index's upgrade tests rebuild.
#[allow(dead_code)]
pub fn obs_history() -> Vec<Op> {
    [
        Op::commit("v", "b", "a", 5, "e1"),
        Op::commit("v", "b", "b", 6, "e2"),
        Op::delete("v", "b", "b", false),
        Op::commit("v", "b", "c", 7, "e3"),
    ]
    .into_iter()
    .map(|op| op.with_layout(fsfeed::Layout::Obs).at(T0))
    .collect()
}

/// An unnamed cursor at the head, in the default form.
#[allow(dead_code)]
pub fn latest_cursor(ledger: &Ledger) -> fsfeed::Cursor {
    ledger
        .cursor(
            None,
            CursorOptions {
                start: Start::Latest,
                ..Default::default()
            },
        )
        .unwrap()
}

/// Every record a resync at the head lists (each marked `resync`), in the
/// cursor's default form.
#[allow(dead_code)]
pub fn resync_records(ledger: &Ledger) -> Vec<Record> {
    let mut c = latest_cursor(ledger);
    c.resync().unwrap();
    let mut out = Vec::new();
    loop {
        let b = c.read(1_000, std::time::Duration::ZERO).unwrap();
        if b.records.is_empty() {
            return out;
        }
        assert!(b.records.iter().all(|r| r.resync), "only the listing");
        out.extend(b.records);
    }
}

/// A read (up to 10 records, 30 s at most) by a cursor of `reader` at the
/// head, while another thread appends `ops` to `writer` after `delay`:
/// what a waiting reader gets woken with.
pub fn read_while_appending(
    reader: &Ledger,
    writer: &Ledger,
    ops: Vec<Op>,
    delay: std::time::Duration,
) -> Batch {
    let mut c = latest_cursor(reader);
    let w = writer.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(delay);
        w.append_batch(ops).unwrap();
    });
    let b = c.read(10, std::time::Duration::from_secs(30)).unwrap();
    t.join().unwrap();
    b
}

/// This test binary run again as a child process, for its ignored test
/// `name` alone, with the environment variable `env` set to `dir`: how the
/// crash tests get a process to kill.
pub fn child_test(name: &str, env: &str, dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(env, dir);
    c
}

/// What the crash tests' child processes do until killed: append from 4
/// threads with `sync`, batches of 1 to `max_batch` commits to `bucket` on
/// keys `{tag}t{thread}-{i}-{j}`, printing `ack SEQ KEY` for each
/// acknowledged event.
pub fn append_printing_acks(dir: &Path, bucket: &str, tag: &str, max_batch: u64) {
    // End the test harness's "test NAME ... " line: the parent reads what
    // follows line by line.
    println!();
    let ledger = open(dir, Durability::Sync, None);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (l, bucket, tag) = (ledger.clone(), bucket.to_string(), tag.to_string());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let n = 1 + (i + t) % max_batch;
                    let key = format!("{tag}t{t}-{i}");
                    let ops = (0..n)
                        .map(|j| {
                            Op::commit("vol1", &bucket, &format!("{key}-{j}"), j, "e")
                                .at(T0 + i as i64)
                        })
                        .collect();
                    let (a, b) = l.append_batch(ops).unwrap();
                    for (j, seq) in (a..=b).enumerate() {
                        println!("ack {seq} {key}-{j}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A generator seeded from the clock: the moments the crash tests kill at.
pub fn clock_rng() -> fsfeed::workload::Rng {
    fsfeed::workload::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}
