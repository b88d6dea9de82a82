//! Renderers turn records into what a consumer reads: the Record -> rendered
//! record rung of the ladder in `ARCHITECTURE.md`.
//!
//! A renderer is pure (no I/O) and works one record at a time, so output
//! streams. A record may have no form in a format (an op that has no S3
//! notification, such as `create_file`): [`Renderer::has_form`] says so, and
//! a cursor in that format ([`crate::CursorOptions::format`]) skips it, so
//! its batches hold only records that render. Putting records on the wire
//! (envelopes, batches, lines) is the `frame` module's job.

pub mod hdfs;
pub mod native;
pub mod s3;

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::read::Record;

/// Turns records into JSON values.
pub trait Renderer: Send + Sync {
    /// The format's name, as `--format` takes it.
    fn name(&self) -> &'static str;
    /// Render one record (`None`: this record has no form in this format).
    fn render(&self, record: &Record) -> Option<serde_json::Value>;

    /// Does the record have a form in this format? What a cursor asks
    /// before it puts a record in a batch; cheaper than rendering.
    fn has_form(&self, record: &Record) -> bool {
        let mut any = false;
        self.render_with(record, &mut |_| any = true);
        any
    }

    /// Append the record's JSON to `out`; false when it has no form in this
    /// format. Written from what [`Renderer::render_with`] hands over, so a
    /// renderer with typed records skips the intermediate `Value` (key order
    /// may then differ from `render`'s).
    fn render_to(&self, record: &Record, out: &mut Vec<u8>) -> bool {
        let mut wrote = false;
        self.render_with(record, &mut |s| {
            serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
            wrote = true;
        });
        wrote
    }

    /// Hand the record, as something serde can serialise, to `f` (not
    /// called when the record has no form in this format): what bindings
    /// turn straight into their own objects, with no JSON text or `Value` in
    /// between. Typed renderers override this; the default goes through
    /// `render`.
    fn render_with(&self, record: &Record, f: &mut dyn FnMut(&dyn erased_serde::Serialize)) {
        if let Some(v) = self.render(record) {
            f(&v);
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
    /// A format from a binding's arguments: `native`, `s3` or `hdfs`, the S3
    /// profile, and S3 settings as JSON ([`s3::S3Options`]); the profile
    /// argument wins over one in the settings. S3 arguments with another
    /// format are an error, not ignored.
    pub fn from_parts(
        format: &str,
        s3_profile: Option<&str>,
        s3_settings: Option<serde_json::Value>,
    ) -> Result<Format> {
        let base: Format = format.parse()?;
        match base {
            Format::S3(_) => {
                let mut o = match s3_settings {
                    Some(v) => serde_json::from_value::<s3::S3Options>(v)
                        .map_err(|e| Error::InvalidArgument(format!("S3 settings: {e}")))?,
                    None => s3::S3Options::default(),
                };
                if let Some(p) = s3_profile {
                    o.profile = p.parse()?;
                }
                Ok(Format::S3(o))
            }
            other if s3_profile.is_none() && s3_settings.is_none() => Ok(other),
            other => Err(Error::InvalidArgument(format!(
                "S3 profile and settings apply to format s3, not {}",
                other.renderer().name()
            ))),
        }
    }

    /// The renderer of this format.
    pub fn renderer(&self) -> Box<dyn Renderer> {
        match self {
            Format::Native => Box::new(native::Native),
            Format::S3(o) => Box::new(s3::S3::new(o.clone())),
            Format::Hdfs => Box::new(hdfs::Hdfs),
        }
    }
}
