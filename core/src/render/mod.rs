//! Renderers turn records into what a consumer reads (DESIGN section 6).
//!
//! A renderer is pure (no I/O) and works one record at a time, so output
//! streams. This build has the native renderer; S3 and HDFS follow.

pub mod native;

use std::str::FromStr;

use crate::cursor::Record;
use crate::error::{Error, Result};

/// Turns records into JSON values.
pub trait Renderer: Send + Sync {
    /// The format's name, as `--format` takes it.
    fn name(&self) -> &'static str;
    /// Render one record.
    fn render(&self, record: &Record) -> serde_json::Value;
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The stored event, flat: op fields plus `seq`, `sub`, `path`.
    #[default]
    Native,
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        match s {
            "native" => Ok(Format::Native),
            other => Err(Error::InvalidArgument(format!(
                "unknown format {other:?} (native)"
            ))),
        }
    }
}

impl Format {
    /// The renderer of this format.
    pub fn renderer(self) -> Box<dyn Renderer> {
        match self {
            Format::Native => Box::new(native::Native),
        }
    }
}
