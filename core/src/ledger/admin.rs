//! Administration: stats, checkpoints, checksums and close.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::FlushOptions;

use super::keys::*;
use super::*;
use crate::error::{Error, Result};

impl Ledger {
    /// Counts and sizes, with every cursor.
    pub fn stats(&self) -> Result<Stats> {
        let db = self.db()?;
        let (b, total, first_offset, last_txid) = self.counts(&db)?;
        let retention = read_retention(&db)?;
        Ok(Stats {
            first_seq: b.first,
            head_seq: b.head,
            events: (b.head + 1).saturating_sub(b.first),
            bytes: total - first_offset,
            last_txid,
            retention: (&retention).into(),
            cursors: self.cursors()?,
            segments: {
                let s = self.segment_settings()?;
                super::SegmentsInfo {
                    enabled: s.enabled,
                    rows: s.rows,
                    sealed_seq: self.sealed_seq()?,
                    #[cfg(feature = "segments")]
                    last_error: self.inner.seal_error.lock().clone(),
                    #[cfg(not(feature = "segments"))]
                    last_error: None,
                }
            },
        })
    }

    /// The bounds with the byte count, the first event's offset and the
    /// last txid as of the same batch. Read apart, an append landing
    /// between them made `bytes` count events past `head_seq` (or, when
    /// retention dropped the first event meanwhile, none at all). The
    /// writer's ledger reads them with no group commit under way; a
    /// read-only opener catches up and reads them with no other catch-up
    /// under way (its database changes only when it catches up).
    fn counts(&self, db: &DB) -> Result<(Bounds, u64, u64, Option<u64>)> {
        let meta = db.cf_handle(CF_META).expect("cf meta");
        let read = |b: Bounds| -> Result<(Bounds, u64, u64, Option<u64>)> {
            let total = get_u64(db, meta, META_TOTAL_BYTES)?.unwrap_or(0);
            let first_offset = if b.first <= b.head {
                let stored = super::blocks::get(db, b.first)?
                    .ok_or_else(|| Error::Corrupt(format!("event {} is missing", b.first)))?;
                decode_event(&stored)?.offset
            } else {
                total
            };
            if first_offset > total {
                return Err(Error::Corrupt(format!(
                    "event {} starts at byte {first_offset}, past the {total} bytes stored",
                    b.first
                )));
            }
            let last_txid = get_u64(db, meta, META_LAST_TXID)?.filter(|t| *t > 0);
            Ok((b, total, first_offset, last_txid))
        };
        if !self.inner.read_only {
            return self.writer()?.between_commits(|| read(self.view()?));
        }
        self.refreshed(|_, b| read(b))
    }

    /// A consistent copy of the ledger in `dir` (which must not exist or be
    /// empty): a RocksDB checkpoint of the database plus the reader cursor files.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        let dir = dir.as_ref();
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            return Err(Error::InvalidArgument(format!(
                "checkpoint target {} is not empty",
                dir.display()
            )));
        }
        fs::create_dir_all(dir)?;
        let db = self.db()?;
        if self.inner.durability == Durability::None {
            for name in ALL_CFS {
                db.flush_cf(db.cf_handle(name).expect("cf"))?;
            }
        }
        rocksdb::checkpoint::Checkpoint::new(&db)?.create_checkpoint(dir.join("db"))?;
        let src = self.inner.path.join("cursors");
        if src.is_dir() {
            let dst = dir.join("cursors");
            fs::create_dir_all(&dst)?;
            for entry in fs::read_dir(&src)? {
                let entry = entry?;
                if entry
                    .path()
                    .extension()
                    .map(|e| e == "json")
                    .unwrap_or(false)
                {
                    fs::copy(entry.path(), dst.join(entry.file_name()))?;
                }
            }
        }
        Ok(())
    }

    /// A checksum over every retained event (seq and stored bytes, in their
    /// full form: see below), FNV-1a 64: replicas fed the same ops agree on
    /// it, whatever the format that stored each event.
    pub fn checksum(&self) -> Result<u64> {
        let db = self.db()?;
        let cf = db.cf_handle(CF_EVENTS).expect("cf events");
        let mut h: u64 = 0xcbf29ce484222325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        };
        // Each event as its own key and value, as format 5 stored them:
        // the sum does not depend on how events are grouped into blocks
        // (format 6), nor on a path left out (format 7, `full_form`).
        let mut it = db.raw_iterator_cf(cf);
        super::blocks::visit(&mut it, self.bounds()?.first, |seq, bytes| {
            feed(&seq_key(seq));
            super::full_form(bytes, &mut feed)?;
            Ok(true)
        })?;
        Ok(h)
    }

    /// Read every key and value of every column family with RocksDB's block
    /// checksums verified, decode every retained event, and check that the
    /// events run densely from the first retained seq to the head: what
    /// `fsfeed verify` runs. Damage anywhere is `corrupt` (the first found,
    /// named); an intact ledger gives the counts. Appends and retention
    /// running meanwhile never make an intact ledger look damaged: a writer
    /// checks one snapshot against the bounds it published, both taken
    /// between two group commits (its `meta` keys are updated in place, so
    /// a read of them through a snapshot may be newer than the snapshot);
    /// a read-only opener (RocksDB secondaries have no snapshots) reads
    /// again when its view moved under a density check.
    pub fn verify(&self) -> Result<Verified> {
        let db = self.db()?;
        if !self.inner.read_only {
            let (b, snap) = self
                .writer()?
                .between_commits(|| Ok::<_, Error>((self.view()?, db.snapshot())))?;
            return verify_view(&db, b, |cf, ro| snap.raw_iterator_cf_opt(cf, ro))
                .map_err(|(e, _)| e);
        }
        let mut tries = 0;
        loop {
            let b = read_bounds(&db)?;
            match verify_view(&db, b, |cf, ro| db.raw_iterator_cf_opt(cf, ro)) {
                Err((_, true)) if tries < 10 && read_bounds(&db)? != b => tries += 1,
                r => return r.map_err(|(e, _)| e),
            }
        }
    }

    /// Stop the writer, wake every reader with `LedgerClosed`, and release
    /// the database. Idempotent.
    ///
    /// It waits (up to 2 s) for calls still running in other
    /// threads to let go of the database, so that once it returns the
    /// directory can be opened again, here or by another process. None holds
    /// it long: history readers look every 1,024 rows and stop, and
    /// iterators over the namespace (`children_at`, expansions, resync) hold
    /// it only while they read a chunk. A call that holds it past the wait
    /// keeps the database open until it returns.
    ///
    /// A writable ledger also flushes its memtables to table files first, so
    /// a clean close leaves no write-ahead log behind: the next open replays
    /// nothing, and the directory holds the compressed tables only (after a
    /// million workload ops: 118 MB of tables, where the unflushed ledger
    /// also held 124 MB of log). Everything acknowledged was already durable
    /// (or, with `buffered`, in the log); a flush that fails is reported, and
    /// the ledger is closed all the same.
    pub fn close(&self) -> Result<()> {
        self.inner.stop_sealer();
        let writer = self.inner.writer.lock().take();
        let flush = writer.is_some();
        if let Some(w) = writer {
            w.stop();
        }
        {
            let mut s = self.inner.signal.shared.lock();
            s.closed = true;
            self.inner.signal.cond.notify_all();
        }
        self.inner.stop_beacon();
        let db = self.inner.db.write().take();
        let mut flushed = Ok(());
        if let Some(db) = db {
            // Holders do not signal when they let go, and they let go within
            // a chunk of work: a short poll, bounded.
            let since = Instant::now();
            while Arc::strong_count(&db) > 1 && since.elapsed() < CLOSE_WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
            if flush {
                let cfs: Vec<_> = ALL_CFS
                    .iter()
                    .map(|n| db.cf_handle(n).expect("every column family is open"))
                    .collect();
                flushed = db
                    .flush_cfs_opt(&cfs, &FlushOptions::default())
                    .map_err(Error::from);
            }
        }
        if let Some(sec) = &self.inner.secondary_dir {
            let _ = fs::remove_dir_all(sec);
        }
        flushed
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.signal.shared.lock().closed
    }
}

/// [`Ledger::verify`] over one view of the database: `iter` opens an
/// iterator of a column family in that view. An error says whether it is a
/// density finding (a missing event, or events ending before the head),
/// which a moving view can cause.
fn verify_view<'a>(
    db: &'a DB,
    b: Bounds,
    iter: impl Fn(&rocksdb::ColumnFamily, rocksdb::ReadOptions) -> rocksdb::DBRawIterator<'a>,
) -> std::result::Result<Verified, (Error, bool)> {
    let plain = |e: Error| (e, false);
    let mut out = Verified {
        first_seq: b.first,
        head_seq: b.head,
        ..Verified::default()
    };
    for name in ALL_CFS {
        let cf = db.cf_handle(name).expect("every column family");
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        let mut it = iter(cf, ro);
        it.seek_to_first();
        let mut keys = 0u64;
        let mut expected = b.first;
        while it.valid() {
            keys += 1;
            if *name == CF_EVENTS {
                let (k, v) = (it.key().unwrap_or_default(), it.value().unwrap_or_default());
                let key = decode_seq(k)
                    .ok_or_else(|| plain(Error::Corrupt("an events key is not a seq".into())))?;
                for record in super::blocks::records(key, v) {
                    let (seq, bytes) = record.map_err(plain)?;
                    if !(b.first..=b.head).contains(&seq) {
                        continue;
                    }
                    if seq != expected {
                        return Err((
                            Error::Corrupt(format!(
                                "event {expected} is missing (the next stored is {seq})"
                            )),
                            true,
                        ));
                    }
                    let ev = decode_event(bytes).map_err(plain)?;
                    if ev.seq != seq {
                        return Err(plain(Error::Corrupt(format!(
                            "the event stored at seq {seq} says seq {}",
                            ev.seq
                        ))));
                    }
                    expected += 1;
                    out.events += 1;
                }
            }
            it.next();
        }
        it.status().map_err(|e| plain(e.into()))?;
        if *name == CF_EVENTS && expected != b.head + 1 && b.head >= b.first {
            return Err((
                Error::Corrupt(format!(
                    "events end at seq {} where the head is {}",
                    expected - 1,
                    b.head
                )),
                true,
            ));
        }
        out.keys += keys;
    }
    Ok(out)
}
