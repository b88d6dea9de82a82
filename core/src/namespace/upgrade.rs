//! The in-place upgrade of a format 2 namespace to format 3.

use rocksdb::DB;

use super::keys::*;
use crate::error::Result;

/// Upgrade a format 2 namespace in place: move every closed forward edge
/// from `F` to `G` (same key after the tag, same value). In batches of
/// 10,000 edges (a put and a delete each); a crash midway leaves format 2 on
/// disk, and the next writable open moves what is left. Returns how many
/// edges moved.
pub(crate) fn upgrade_from_format_2(db: &DB) -> Result<u64> {
    let cf = db.cf_handle(CF_NS).expect("cf ns");
    let mut it = db.raw_iterator_cf(cf);
    it.seek([TAG_F]);
    let mut batch = rocksdb::WriteBatch::default();
    let mut moved = 0u64;
    while it.valid() {
        let k = it.key().unwrap_or_default();
        if k.first() != Some(&TAG_F) {
            break;
        }
        if k.len() >= 9 && deleted_of(k) != LIVE {
            let mut g = k.to_vec();
            g[0] = TAG_G;
            batch.put_cf(cf, &g, it.value().unwrap_or_default());
            batch.delete_cf(cf, k);
            moved += 1;
            if batch.len() >= 20_000 {
                db.write(std::mem::take(&mut batch))?;
            }
        }
        it.next();
    }
    it.status()?;
    db.write(batch)?;
    Ok(moved)
}
