//! Renderers turn records into what a consumer reads (DESIGN section 6).
//!
//! A renderer is pure (no I/O) and works one record at a time, so output
//! streams. A record may render to nothing (an op that has no S3
//! notification, such as `create_file`); a cursor in that format skips it.

pub mod hdfs;
pub mod native;
pub mod s3;

use std::str::FromStr;

use crate::cursor::Record;
use crate::error::{Error, Result};

/// Turns records into JSON values.
pub trait Renderer: Send + Sync {
    /// The format's name, as `--format` takes it.
    fn name(&self) -> &'static str;
    /// Render one record (`None`: this record has no form in this format).
    fn render(&self, record: &Record) -> Option<serde_json::Value>;

    /// Append the record's JSON to `out`; false when it has no form in this
    /// format. Renderers with typed records override this to skip the
    /// intermediate `Value` (key order may then differ from `render`'s).
    fn render_to(&self, record: &Record, out: &mut Vec<u8>) -> bool {
        match self.render(record) {
            Some(v) => {
                serde_json::to_writer(out, &v).expect("writing to a Vec");
                true
            }
            None => false,
        }
    }
}

/// The output formats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Format {
    /// The stored event, flat: op fields plus `seq`, `sub`, `path`.
    #[default]
    Native,
    /// One S3 event record (what goes inside `"Records"`).
    S3(s3::S3Options),
    /// One HDFS inotify event batch `{"txid", "events"}`.
    Hdfs,
}

impl FromStr for Format {
    type Err = Error;

    /// `native`, `s3` (aws profile, default settings) or `hdfs`.
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "native" => Ok(Format::Native),
            "s3" => Ok(Format::S3(s3::S3Options::default())),
            "hdfs" => Ok(Format::Hdfs),
            other => Err(Error::InvalidArgument(format!(
                "unknown format {other:?} (native, s3, hdfs)"
            ))),
        }
    }
}

impl Format {
    /// The renderer of this format.
    pub fn renderer(&self) -> Box<dyn Renderer> {
        match self {
            Format::Native => Box::new(native::Native),
            Format::S3(o) => Box::new(s3::S3::new(o.clone())),
            Format::Hdfs => Box::new(hdfs::Hdfs),
        }
    }
}
