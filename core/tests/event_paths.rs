//! Format 7 stores an event's path only when it is not the op's key. These
//! tests read the stored bytes behind the ledger (through RocksDB) and the
//! events through the public API: the path left out is filled in for every
//! reader (events, history rows), offsets and the checksum count it as
//! format 6 did, and a format 6 ledger is read as it is and upgraded in
//! place with the same offsets and checksum as a ledger made at format 7.
mod common;

use common::*;
use fsfeed::{Durability, Event, Layout, Op};
use prost::Message;

/// Every stored event of a closed ledger, `(seq, prost bytes)`, from its
/// blocks (format 6 and 7: byte 0, then a varint length and the bytes of
/// each event of the run).
fn stored_events(dir: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let db = raw_db(dir);
    let cf = db.cf_handle("events").unwrap();
    let mut out = Vec::new();
    for kv in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (k, v) = kv.unwrap();
        let first = u64::from_be_bytes(k.as_ref().try_into().unwrap());
        assert_eq!(v[0], 0, "a block");
        let mut rest = &v[1..];
        let mut seq = first;
        while !rest.is_empty() {
            let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
            out.push((seq, rest[..len].to_vec()));
            rest = &rest[len..];
            seq += 1;
        }
    }
    out
}

/// Replace a closed ledger's events with `events` in blocks of runs of 32
/// seqs, as format 6 stored them, and mark it format 6.
fn store_as_format_6(dir: &std::path::Path, events: &[Event]) {
    let db = raw_db(dir);
    let cf = db.cf_handle("events").unwrap();
    clear_cf(&db, "events");
    for run in events.chunks(32) {
        let mut block = vec![0u8];
        for e in run {
            let bytes = e.encode_to_vec();
            prost::encoding::encode_varint(bytes.len() as u64, &mut block);
            block.extend_from_slice(&bytes);
        }
        db.put_cf(cf, run[0].seq.to_be_bytes(), block).unwrap();
    }
    let meta = db.cf_handle("meta").unwrap();
    db.put_cf(meta, b"format_version", 6u32.to_be_bytes())
        .unwrap();
    db.flush_cf(cf).unwrap();
}

/// A varied mix of ops (object-store, legacy and FSO buckets, renames,
/// deletes), as the benchmarks append them.
fn mix(n: usize) -> Vec<Op> {
    fsfeed::workload::Workload::new(3, T0).take(n).collect()
}

#[test]
fn a_path_that_is_the_key_is_stored_once_and_read_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), Durability::Buffered, None);
    let fso = |op: Op| op.with_layout(Layout::Fso).at(T0);
    l.append(Op::commit("v", "obs", "a/b", 3, "e1").at(T0))
        .unwrap();
    let dir_seq = l
        .append(fso(Op::create_directory("v", "fso", "d")))
        .unwrap();
    let dir_id = l
        .get(dir_seq)
        .unwrap()
        .unwrap()
        .op
        .unwrap()
        .object_id
        .unwrap();
    // Named by its parent's id and its own name: no key, a path.
    let mut by_id = fso(Op::create_file("v", "fso", ""));
    by_id.parent_id = Some(dir_id);
    by_id.name = "f".into();
    let by_id_seq = l.append(by_id).unwrap();
    l.append(fso(Op::rename("v", "fso", "d/f", "d/g"))).unwrap();
    let events = l.scan(1, 100).unwrap();
    let paths: Vec<&str> = events.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a/b", "d", "d/f", "d/f"]);
    assert_eq!(events[3].to_path, "d/g");

    // History rows carry the same paths.
    #[cfg(feature = "arrow")]
    {
        use arrow_array::cast::AsArray;
        let rows: Vec<String> = l
            .history(Default::default())
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let keys = b.column_by_name("key").unwrap().as_string::<i32>();
                (0..b.num_rows())
                    .map(|i| keys.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(rows, paths);
    }
    let sum = l.checksum().unwrap();
    l.close().unwrap();

    // On disk, only the op named by id holds a path.
    let stored = stored_events(dir.path());
    assert_eq!(stored.len(), 4);
    for (seq, bytes) in &stored {
        let e = Event::decode(bytes.as_slice()).unwrap();
        if *seq == by_id_seq {
            assert_eq!(e.path, "d/f");
        } else {
            assert_eq!(e.path, "", "event {seq}");
            assert!(!e.op.unwrap().key.is_empty());
        }
    }
    // Offsets count each event in its full form, the path included: the
    // bytes format 6 stored, and 8 bytes of key.
    let full_lengths: Vec<u64> = events
        .iter()
        .map(|e| e.encode_to_vec().len() as u64)
        .collect();
    for i in 1..events.len() {
        assert_eq!(
            events[i].offset,
            events[i - 1].offset + full_lengths[i - 1] + 8,
            "event {}",
            events[i].seq
        );
    }
    // The read-back events, stored as format 6 would have, sum the same.
    let again = tempfile::tempdir().unwrap();
    {
        let l = open(again.path(), Durability::Buffered, None);
        l.append(Op::commit("v", "obs", "x", 1, "e").at(T0))
            .unwrap();
        l.close().unwrap();
    }
    store_as_format_6(again.path(), &events);
    {
        let db = raw_db(again.path());
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"head", 4u64.to_be_bytes()).unwrap();
    }
    let r = fsfeed::Ledger::open_read_only(again.path()).unwrap();
    assert_eq!(r.scan(1, 100).unwrap(), events);
    assert_eq!(r.checksum().unwrap(), sum);
}

#[test]
fn a_format_6_ledger_is_read_as_it_is_and_upgraded_with_the_same_offsets() {
    let ops = mix(400);
    // The ledger made at format 7, all at once.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = open(fresh_dir.path(), Durability::Buffered, None);
    fresh.append_batch(ops.clone()).unwrap();
    let want = fresh.scan(1, usize::MAX).unwrap();
    assert_eq!(want.len(), 400);

    // The first 150 as format 6 stored them: every path written out.
    let dir = tempfile::tempdir().unwrap();
    {
        let l = open(dir.path(), Durability::Buffered, None);
        l.append_batch(ops[..150].to_vec()).unwrap();
        l.close().unwrap();
    }
    store_as_format_6(dir.path(), &want[..150]);
    let with_paths = stored_events(dir.path())
        .into_iter()
        .filter(|(_, b)| !Event::decode(b.as_slice()).unwrap().path.is_empty())
        .count();
    let nonempty = want[..150].iter().filter(|e| !e.path.is_empty()).count();
    assert_eq!(with_paths, nonempty);

    // A read-only opener reads it as it is and leaves it at format 6.
    {
        let r = fsfeed::Ledger::open_read_only(dir.path()).unwrap();
        assert_eq!(r.scan(1, usize::MAX).unwrap(), want[..150]);
        r.close().unwrap();
    }
    assert_eq!(format_on_disk(dir.path()), 6);

    // A writable open says format 7 and rewrites nothing; the appends
    // after it leave out their paths, and count them in their offsets.
    let l = open(dir.path(), Durability::Buffered, None);
    l.append_batch(ops[150..300].to_vec()).unwrap();
    for op in &ops[300..] {
        l.append(op.clone()).unwrap();
    }
    assert_eq!(l.scan(1, usize::MAX).unwrap(), want);
    assert_eq!(l.checksum().unwrap(), fresh.checksum().unwrap());
    let v = l.verify().unwrap();
    assert_eq!((v.first_seq, v.head_seq, v.events), (1, 400, 400));
    l.close().unwrap();
    fresh.close().unwrap();
    assert_eq!(format_on_disk(dir.path()), fsfeed::FORMAT_VERSION);
    let stored = stored_events(dir.path());
    let old: Vec<&Vec<u8>> = stored
        .iter()
        .filter(|(s, _)| *s <= 150)
        .map(|(_, b)| b)
        .collect();
    let new: Vec<&Vec<u8>> = stored
        .iter()
        .filter(|(s, _)| *s > 150)
        .map(|(_, b)| b)
        .collect();
    let with_path = |bs: &[&Vec<u8>]| {
        bs.iter()
            .filter(|b| !Event::decode(b.as_slice()).unwrap().path.is_empty())
            .count()
    };
    assert_eq!(with_path(&old), with_paths);
    // The new events keep a path only where the op has no key.
    let keyless = ops[150..].iter().filter(|o| o.key.is_empty()).count();
    assert_eq!(with_path(&new), keyless);
    // And take fewer bytes than the same events in format 6.
    let new_bytes: usize = new.iter().map(|b| b.len()).sum();
    let full_bytes: usize = want[150..].iter().map(|e| e.encode_to_vec().len()).sum();
    assert!(new_bytes < full_bytes);
}
