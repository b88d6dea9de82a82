//! Format 6 stores events in blocks of up to 32 seqs per RocksDB value.
//! These tests go through the public API: a format 5 ledger (one event per
//! value) is upgraded in place and read across both shapes, retention drops
//! whole runs only, and a damaged block is `corrupt`.
mod common;

use common::*;
use fsfeed::{Durability, Ledger, OpenOptions, Retention};

/// Rewrite a closed ledger's events as format 5 stored them (one prost
/// `Event` per seq key) and mark it format 5.
fn make_format_5(dir: &std::path::Path) {
    let events: Vec<(u64, Vec<u8>)> = {
        let l = open(dir, Durability::None, None);
        let out = l
            .scan(1, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, prost::Message::encode_to_vec(&e)))
            .collect();
        l.close().unwrap();
        out
    };
    let db = raw_db(dir);
    let cf = db.cf_handle("events").unwrap();
    clear_cf(&db, "events");
    for (seq, bytes) in events {
        db.put_cf(cf, seq.to_be_bytes(), bytes).unwrap();
    }
    let meta = db.cf_handle("meta").unwrap();
    db.put_cf(meta, b"format_version", 5u32.to_be_bytes())
        .unwrap();
    db.flush_cf(cf).unwrap();
}

fn stored_keys(dir: &std::path::Path) -> Vec<u64> {
    let db = raw_db(dir);
    let cf = db.cf_handle("events").unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| u64::from_be_bytes(kv.unwrap().0.as_ref().try_into().unwrap()))
        .collect()
}

#[test]
fn a_format_5_ledger_is_read_as_it_is_and_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fresh_dir = tempfile::tempdir().unwrap();
    let ops = commits(0, 100);
    {
        let l = open(dir.path(), Durability::Buffered, None);
        l.append_batch(ops[..45].to_vec()).unwrap();
        l.close().unwrap();
    }
    make_format_5(dir.path());
    assert_eq!(stored_keys(dir.path()), (1..=45).collect::<Vec<_>>());

    // A read-only opener reads format 5 without changing it.
    {
        let r = Ledger::open_read_only(dir.path()).unwrap();
        assert_eq!(r.head_seq().unwrap(), 45);
        assert_eq!(r.get(17).unwrap().unwrap().path, "dir/k000016");
        assert_eq!(r.scan(40, 100).unwrap().len(), 6);
        r.close().unwrap();
    }
    assert_eq!(format_on_disk(dir.path()), 5);

    // A writable open says format 6 and rewrites nothing; appends go on
    // in blocks, the first starting after the old head (mid-run), merged
    // into by single appends, then runs of 32.
    let l = open(dir.path(), Durability::Buffered, None);
    for op in &ops[45..50] {
        l.append(op.clone()).unwrap();
    }
    l.append_batch(ops[50..].to_vec()).unwrap();
    let fresh = open(fresh_dir.path(), Durability::Buffered, None);
    fresh.append_batch(ops.clone()).unwrap();

    let read: Vec<(u64, String)> = all_keys(&l);
    assert_eq!(read, all_keys(&fresh));
    assert_eq!(read.len(), 100);
    for seq in [1, 32, 45, 46, 50, 63, 64, 65, 96, 97, 100] {
        let e = l.get(seq).unwrap().unwrap();
        assert_eq!(
            (e.seq, e.path.as_str()),
            (seq, read[seq as usize - 1].1.as_str())
        );
    }
    assert_eq!(l.get(101).unwrap(), None);
    for from in [1, 30, 45, 46, 47, 64, 65, 99, 100] {
        let got = l.scan(from, 3).unwrap();
        assert_eq!(got[0].seq, from, "scan from {from}");
        assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
    // The same events give the same checksum in either shape.
    assert_eq!(l.checksum().unwrap(), fresh.checksum().unwrap());
    let v = l.verify().unwrap();
    assert_eq!((v.first_seq, v.head_seq, v.events), (1, 100, 100));
    // Time lookups run over both shapes.
    for i in [0i64, 20, 44, 45, 60, 99] {
        assert_eq!(l.seq_for_time(T0 + i * 1000).unwrap(), i as u64 + 1);
    }
    l.close().unwrap();
    fresh.close().unwrap();
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
    assert_eq!(fsfeed::FORMAT_VERSION, 9);
    let mut want: Vec<u64> = (1..=45).collect();
    want.extend([46, 65, 97]);
    assert_eq!(stored_keys(dir.path()), want);
    assert_eq!(stored_keys(fresh_dir.path()), vec![1, 33, 65, 97]);

    // Reopened, the writer merges into the open block of the head (97..100).
    let l = open(dir.path(), Durability::Buffered, None);
    l.append_batch(commits(100, 3)).unwrap();
    assert_eq!(l.get(103).unwrap().unwrap().path, "dir/k000102");
    assert_eq!(l.scan(96, 10).unwrap().len(), 8);
    l.close().unwrap();
    let keys = stored_keys(dir.path());
    assert_eq!(keys[keys.len() - 1], 97);
}

/// Retention moves `first_seq` by the event, but deletes stored values
/// only below the run that holds it: nothing kept is lost, and reads start
/// exactly at `first_seq`.
#[test]
fn retention_deletes_whole_runs_and_keeps_every_retained_event() {
    let dir = tempfile::tempdir().unwrap();
    let r = Retention::default().with_max_events(5_000);
    let l = open(dir.path(), Durability::None, Some(r));
    let ops = commits(0, 20_000);
    for (i, chunk) in ops.chunks(77).enumerate() {
        if i % 3 == 0 {
            for op in chunk {
                l.append(op.clone()).unwrap();
            }
        } else {
            l.append_batch(chunk.to_vec()).unwrap();
        }
    }
    let first = l.first_seq().unwrap();
    assert_eq!(first, 20_000 - 5_000 + 1);
    let got = l.scan(1, usize::MAX).unwrap();
    assert_eq!(got.len(), 5_000);
    assert_eq!(got[0].seq, first);
    assert_eq!(l.get(first - 1).unwrap(), None);
    assert_eq!(l.verify().unwrap().events, 5_000);
    l.close().unwrap();
    let keys = stored_keys(dir.path());
    // Whole runs were deleted (the ledger holds fewer than 20,000 / 32
    // values), and every stored value starts a run.
    assert!(keys.len() < 400, "{} values", keys.len());
    assert!(keys.iter().all(|k| k % 32 == 1), "{keys:?}");
    assert!(keys[0] <= first);
}

/// A block cut short is `corrupt` for every reader of it, not a panic and
/// not a silently shorter ledger.
#[test]
fn a_cut_block_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let l = open(dir.path(), Durability::Buffered, None);
        l.append_batch(commits(0, 40)).unwrap();
        l.close().unwrap();
    }
    {
        let db = raw_db(dir.path());
        let cf = db.cf_handle("events").unwrap();
        let mut v = db.get_cf(cf, 33u64.to_be_bytes()).unwrap().unwrap();
        v.truncate(v.len() - 3);
        db.put_cf(cf, 33u64.to_be_bytes(), v).unwrap();
    }
    let l = Ledger::open_with(
        dir.path(),
        OpenOptions {
            durability: Durability::Buffered,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.verify().unwrap_err().code(), "corrupt");
    assert_eq!(l.get(40).unwrap_err().code(), "corrupt");
    assert_eq!(l.scan(1, 100).unwrap_err().code(), "corrupt");
    // What comes before the damage still reads.
    assert_eq!(l.get(39).unwrap().unwrap().seq, 39);
    assert_eq!(l.scan(1, 32).unwrap().len(), 32);
}

fn stored(dir: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = raw_db(dir);
    let cf = db.cf_handle("events").unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Any split of the same ops into appends, with the ledger closed and
    /// reopened between some of them (the writer then finds the open block
    /// on disk), stores the same block values as one batch of them all, and
    /// reads back the same events.
    #[test]
    fn any_batching_with_reopens_stores_the_same_blocks(
        steps in proptest::collection::vec((1usize..70, proptest::bool::weighted(0.2)), 1..12)
    ) {
        let n: usize = steps.iter().map(|(k, _)| k).sum();
        let ops = commits(0, n as u64);
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = open(a_dir.path(), Durability::None, None);
        let mut at = 0;
        for (k, reopen) in &steps {
            if *k == 1 {
                a.append(ops[at].clone()).unwrap();
            } else {
                a.append_batch(ops[at..at + k].to_vec()).unwrap();
            }
            at += k;
            if *reopen {
                a.close().unwrap();
                a = open(a_dir.path(), Durability::None, None);
            }
        }
        let b = open(b_dir.path(), Durability::None, None);
        b.append_batch(ops).unwrap();
        proptest::prop_assert_eq!(all_keys(&a), all_keys(&b));
        proptest::prop_assert_eq!(a.verify().unwrap().events, n as u64);
        a.close().unwrap();
        b.close().unwrap();
        let (sa, sb) = (stored(a_dir.path()), stored(b_dir.path()));
        proptest::prop_assert_eq!(sa.len(), n.div_ceil(32));
        proptest::prop_assert!(sa == sb, "the same keys and values");
    }
}
