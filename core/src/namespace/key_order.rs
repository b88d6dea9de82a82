//! Byte order of a group's namespace keys, sorted on integers.
//!
//! A group commit puts its namespace writes into the batch in key order
//! (RocksDB's memtable inserts neighbours faster). Sorted as byte slices,
//! every comparison paid for the prefix the keys share: `F volume NUL
//! bucket NUL`, then a parent id whose high bytes are zero. That sort was 6.6%
//! of an all-FSO append's instructions.
//!
//! Here the keys are sorted as a most-significant-digit radix sort with
//! 16-byte digits: each key is ranked by the 16 bytes that follow the
//! prefix all the keys being sorted share, read as two big-endian integers
//! (zero past the key's end, which keeps a key before the longer keys it
//! starts). Keys whose digits tie share a longer prefix, and are sorted
//! again past it. So the tag, the bucket id and a parent id's zero high
//! bytes cost a few integer comparisons, not a `memcmp` each.

/// The indices of `items` in the byte order of their keys (`key_of`; equal
/// keys in any order).
pub(super) fn key_order<T>(items: &[T], key_of: impl Fn(&T) -> &[u8]) -> Vec<u32> {
    let mut run: Vec<(u64, u64, u32)> = (0..items.len() as u32).map(|i| (0, 0, i)).collect();
    sort_run(items, &key_of, &mut run, 0);
    run.into_iter().map(|r| r.2).collect()
}

/// Sort `run`, whose keys all share their first `at` bytes.
fn sort_run<T>(items: &[T], key_of: &impl Fn(&T) -> &[u8], run: &mut [(u64, u64, u32)], at: usize) {
    if run.len() < 2 {
        return;
    }
    let key = |r: &(u64, u64, u32)| key_of(&items[r.2 as usize]);
    // Past what the run's keys share.
    let first = key(&run[0]);
    let mut start = first.len();
    for r in &run[1..] {
        let k = key(r);
        let upto = start.min(k.len());
        start = at
            + first[at..upto]
                .iter()
                .zip(&k[at..upto])
                .position(|(a, b)| a != b)
                .unwrap_or(upto - at);
    }
    for r in run.iter_mut() {
        let k = key_of(&items[r.2 as usize]);
        r.0 = be_at(k, start);
        r.1 = be_at(k, start + 8);
    }
    run.sort_unstable_by_key(|r| (r.0, r.1));
    // Runs of tied digits: the keys share 16 more bytes, or one of them
    // ends within those (then the bytes past them decide, as slices).
    let mut i = 0;
    while i < run.len() {
        let mut j = i + 1;
        while j < run.len() && (run[j].0, run[j].1) == (run[i].0, run[i].1) {
            j += 1;
        }
        let tied = &mut run[i..j];
        if tied.len() > 1 {
            if tied.iter().all(|r| key(r).len() > start + 16) {
                sort_run(items, key_of, tied, start + 16);
            } else {
                tied.sort_unstable_by(|a, b| {
                    key(a)[start.min(key(a).len())..].cmp(&key(b)[start.min(key(b).len())..])
                });
            }
        }
        i = j;
    }
}

/// The 8 bytes of `k` from `at`, big-endian; zero past its end.
#[inline]
fn be_at(k: &[u8], at: usize) -> u64 {
    if let Some(b) = k.get(at..at + 8) {
        return u64::from_be_bytes(b.try_into().expect("8 bytes"));
    }
    let mut a = [0u8; 8];
    if at < k.len() {
        let n = (k.len() - at).min(8);
        a[..n].copy_from_slice(&k[at..at + n]);
    }
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    /// `key_order`'s comparison, for tests: the byte order.
    fn byte_order<K: AsRef<[u8]>>(keys: &[K]) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..keys.len() as u32).collect();
        idx.sort_by(|a, b| keys[*a as usize].as_ref().cmp(keys[*b as usize].as_ref()));
        idx
    }

    fn same_order<K: AsRef<[u8]>>(keys: &[K], got: &[u32], want: &[u32]) -> Ordering {
        let g: Vec<&[u8]> = got.iter().map(|i| keys[*i as usize].as_ref()).collect();
        let w: Vec<&[u8]> = want.iter().map(|i| keys[*i as usize].as_ref()).collect();
        g.cmp(&w)
    }

    fn check(keys: &[Vec<u8>]) {
        let got = key_order(keys, |k| k.as_slice());
        let mut seen = got.clone();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..keys.len() as u32).collect::<Vec<_>>(),
            "a permutation"
        );
        assert_eq!(
            same_order(keys, &got, &byte_order(keys)),
            Ordering::Equal,
            "{keys:?}"
        );
    }

    /// Keys shaped as the namespace's: tags, a shared bucket id, ids with
    /// zero high bytes, names that share prefixes, and the edge cases of
    /// the 16 bytes read (keys that end inside them, zero bytes that tie
    /// with the zero read past an end, a key that starts another).
    #[test]
    fn orders_namespace_shaped_keys_as_bytes() {
        let b = b"vol\0bucket\0";
        let mut keys = Vec::new();
        for tag in [b'F', b'G', b'R', b'C'] {
            for parent in [0u64, 1, 255, 256, 1 << 40, u64::MAX] {
                for name in [
                    "",
                    "a",
                    "a\u{1}",
                    "file-0001",
                    "file-0002",
                    "file-00010",
                    "zz",
                ] {
                    for deleted in [7u64, u64::MAX] {
                        let mut k = vec![tag];
                        k.extend_from_slice(b);
                        k.extend_from_slice(&parent.to_be_bytes());
                        k.extend_from_slice(name.as_bytes());
                        k.push(0);
                        k.extend_from_slice(&deleted.to_be_bytes());
                        keys.push(k);
                    }
                }
            }
        }
        keys.extend([
            vec![],
            vec![b'F'],
            vec![b'F', 0],
            vec![b'F', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![b'F', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            b"Fvol".to_vec(),
            b"Fvol\0".to_vec(),
            b"L".to_vec(),
        ]);
        check(&keys);
        keys.reverse();
        check(&keys);
        // One key, and none.
        check(&keys[..1]);
        check(&Vec::<Vec<u8>>::new());
    }

    proptest! {
        /// Any keys: short alphabets make shared prefixes, ties in the 16
        /// bytes read and keys that start others common.
        #[test]
        fn orders_any_keys_as_bytes(
            keys in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'F'), any::<u8>()], 0..40),
                0..200,
            ),
            shared in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            // Half the keys behind one prefix, as a bucket id is.
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .enumerate()
                .map(|(i, k)| if i % 2 == 0 { [&shared[..], &k[..]].concat() } else { k })
                .collect();
            check(&keys);
        }
    }
}
