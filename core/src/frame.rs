//! Framing: rendered records put on the wire, the Batch -> bytes rung of the
//! ladder in `ARCHITECTURE.md`.
//!
//! Every front end (the CLI, the Python and Node bindings, the push sinks,
//! the pull service, the change-log uploader) frames through this module;
//! none builds an envelope by hand.
//!
//! | [`Framing`] | formats | one message is |
//! |---|---|---|
//! | `S3Message` | s3 | `{"Records":[..]}` holding every record of the batch |
//! | `S3PerRecord` | s3 | `{"Records":[r]}`, one per record (what S3 itself sends) |
//! | `JsonLines` | any | one rendered record; [`Framer::lines`] joins them with `\n` |
//! | `HdfsProto` | hdfs | Hadoop's `EventsListProto` bytes for the whole batch, with its txids |
//!
//! For HDFS JSON each rendered record already is one event batch
//! `{"txid","events"}`, so `JsonLines` is HDFS's batch framing.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::read::{Batch, Gap, Position, Record};
use crate::render::{hdfs, Format, Renderer};

/// How a batch of records becomes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// One `{"Records":[..]}` message per batch (S3 format).
    S3Message,
    /// One `{"Records":[r]}` message per record (S3 format).
    S3PerRecord,
    /// One rendered record per message (or line).
    #[default]
    JsonLines,
    /// One `EventsListProto` per batch (HDFS format).
    HdfsProto,
}

impl FromStr for Framing {
    type Err = Error;

    /// `s3-message`, `s3-record`, `json-lines` or `hdfs-proto`.
    fn from_str(s: &str) -> Result<Framing> {
        match s {
            "s3-message" => Ok(Framing::S3Message),
            "s3-record" => Ok(Framing::S3PerRecord),
            "json-lines" => Ok(Framing::JsonLines),
            "hdfs-proto" => Ok(Framing::HdfsProto),
            other => Err(Error::InvalidArgument(format!(
                "unknown framing {other:?} (s3-message, s3-record, json-lines, hdfs-proto)"
            ))),
        }
    }
}

impl Framing {
    /// The framing's name, as [`Framing::from_str`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Framing::S3Message => "s3-message",
            Framing::S3PerRecord => "s3-record",
            Framing::JsonLines => "json-lines",
            Framing::HdfsProto => "hdfs-proto",
        }
    }
}

/// Frames records of one format.
pub struct Framer {
    framing: Framing,
    renderer: Box<dyn Renderer>,
}

impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer")
            .field("framing", &self.framing)
            .field("format", &self.renderer.name())
            .finish()
    }
}

impl Framer {
    /// A framer of `format`'s records; a framing that does not fit the
    /// format (an S3 envelope around HDFS records) is `invalid_argument`.
    pub fn new(format: &Format, framing: Framing) -> Result<Framer> {
        let fits = match framing {
            Framing::S3Message | Framing::S3PerRecord => matches!(format, Format::S3(_)),
            Framing::HdfsProto => matches!(format, Format::Hdfs),
            Framing::JsonLines => true,
        };
        if !fits {
            return Err(Error::InvalidArgument(format!(
                "framing {} does not apply to format {}",
                framing.name(),
                format.renderer().name()
            )));
        }
        Ok(Framer {
            framing,
            renderer: format.renderer(),
        })
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// True when each record is its own message ([`Framer::each`]), false
    /// when a batch is one message ([`Framer::message`]).
    pub fn per_record(&self) -> bool {
        matches!(self.framing, Framing::S3PerRecord | Framing::JsonLines)
    }

    /// Each record that has a form in the format as its own message:
    /// `f(record, bytes)`. For `S3Message` and `HdfsProto` a message of one
    /// record.
    pub fn each(&self, records: &[Record], mut f: impl FnMut(&Record, &[u8])) {
        let mut buf = Vec::with_capacity(1024);
        for r in records {
            buf.clear();
            if self.one(r, &mut buf) {
                f(r, &buf);
            }
        }
    }

    fn one(&self, r: &Record, buf: &mut Vec<u8>) -> bool {
        match self.framing {
            Framing::S3Message | Framing::S3PerRecord => {
                buf.extend_from_slice(b"{\"Records\":[");
                if !self.renderer.render_to(r, buf) {
                    return false;
                }
                buf.extend_from_slice(b"]}");
                true
            }
            Framing::JsonLines => self.renderer.render_to(r, buf),
            Framing::HdfsProto => {
                if !self.renderer.has_form(r) {
                    return false;
                }
                let txid = hdfs::txid(&r.event);
                buf.extend(hdfs::events_list(std::slice::from_ref(r), txid));
                true
            }
        }
    }

    /// The records as one message, appended to `out`: the S3 envelope around
    /// all of them, an `EventsListProto` (`sync_txid`: the txid of the
    /// ledger's head; `None` takes the last record's), or JSON lines, each
    /// ended by `\n`. Records with no form in the format are left out.
    pub fn message(&self, records: &[Record], sync_txid: Option<i64>, out: &mut Vec<u8>) {
        match self.framing {
            Framing::S3Message | Framing::S3PerRecord => {
                out.extend_from_slice(b"{\"Records\":[");
                joined(records, self.renderer.as_ref(), out);
                out.extend_from_slice(b"]}");
            }
            Framing::JsonLines => self.lines(records, out),
            Framing::HdfsProto => {
                let sync = sync_txid
                    .or_else(|| records.last().map(|r| hdfs::txid(&r.event)))
                    .unwrap_or(-1);
                out.extend(hdfs::events_list(records, sync));
            }
        }
    }

    /// Each record's message on a line of its own (`\n` after each).
    pub fn lines(&self, records: &[Record], out: &mut Vec<u8>) {
        self.each(records, |_, b| {
            out.extend_from_slice(b);
            out.push(b'\n');
        });
    }
}

/// The records that have a form, rendered and joined by commas (the inside
/// of a JSON array).
fn joined(records: &[Record], renderer: &dyn Renderer, out: &mut Vec<u8>) {
    let mut first = true;
    for r in records {
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        if renderer.render_to(r, out) {
            first = false;
        } else {
            out.truncate(mark);
        }
    }
}

/// The JSON line a stream writes for a gap: `{"gap":{"expected","actual"}}`.
pub fn gap_line(gap: &Gap) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "gap": gap })).expect("gap JSON")
}

/// A whole batch as one JSON object for a binding to parse:
/// `{"records":[..],"gap":null|{..},"next":{"seq","sub"}}`, the records
/// rendered by `renderer` (what Node's `JSON.parse` turns into objects).
pub fn batch_json(batch: &Batch, renderer: &dyn Renderer) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + batch.records.len() * 512);
    out.extend_from_slice(b"{\"records\":[");
    joined(&batch.records, renderer, &mut out);
    out.extend_from_slice(b"],\"gap\":");
    serde_json::to_writer(&mut out, &batch.gap).expect("writing to a Vec");
    out.extend_from_slice(b",\"next\":");
    serde_json::to_writer(&mut out, &position_json(batch.next)).expect("writing to a Vec");
    out.push(b'}');
    out
}

/// A position as JSON, `{"seq", "sub"}`.
pub fn position_json(p: Position) -> serde_json::Value {
    serde_json::json!({ "seq": p.seq, "sub": p.sub })
}
