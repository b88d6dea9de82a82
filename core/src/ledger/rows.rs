//! The row path of history (feature `arrow`): stored events as Arrow
//! columns, read straight from their bytes. `history()` reads ranges the
//! sealed segments do not cover through it, and the sealer reads each run
//! it seals through it.

use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::{decode_event, Ledger};
use crate::columnar::{Columns, Row};
use crate::error::{Error, Result};
use crate::filter::Filter;

/// Rows read between looks at whether to stop (the history was dropped,
/// or the ledger closed).
const CHECK_ROWS: u64 = 1024;

impl Ledger {
    /// The rows of seqs `from..=to` that pass `filter`, from the stored events
    /// (the row path). Seqs are dense, so a run that does not start at `from` or stops short of
    /// `to` lost events to retention while it was read: a gap. Every
    /// [`CHECK_ROWS`] rows it stops if `stop` is set or the ledger closed
    /// (`ledger_closed`), so neither waits for a whole run.
    pub(crate) fn rows_of(
        &self,
        from: u64,
        to: u64,
        filter: &Filter,
        schema: &SchemaRef,
        stop: &AtomicBool,
    ) -> Result<Option<RecordBatch>> {
        let first = self.first_seq()?;
        if from < first {
            return Err(Error::Gap {
                expected: from,
                actual: first,
            });
        }
        // Sized for a full run, up to 65,536 rows (a larger batch_rows, or a
        // filter that keeps few rows, grows the builders as rows come).
        let mut cols = Columns::new(((to - from + 1) as usize).min(65_536));
        let all = filter.is_all();
        let mut expected = from;
        let mut rows = 0;
        let mut failed = None;
        self.scan_raw(from, |seq, bytes| {
            if seq > to {
                return false;
            }
            if seq != expected {
                failed = Some(Error::Gap {
                    expected,
                    actual: seq,
                });
                return false;
            }
            if (expected - from) % CHECK_ROWS == CHECK_ROWS - 1
                && (stop.load(Ordering::Relaxed) || self.is_closed())
            {
                failed = Some(Error::LedgerClosed);
                return false;
            }
            expected += 1;
            // Rows come straight from the stored bytes; only a filter needs the
            // decoded event.
            let keep = all
                || match decode_event(bytes) {
                    Ok(ev) => filter.matches(&ev),
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                };
            if keep {
                match Row::parse(bytes) {
                    Ok(Some(row)) => {
                        cols.push(&row);
                        rows += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                }
            }
            seq < to
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if expected <= to {
            return Err(Error::Gap {
                expected,
                actual: self.first_seq()?.max(expected + 1),
            });
        }
        if rows == 0 {
            return Ok(None);
        }
        cols.finish(schema.clone()).map(Some)
    }
}
