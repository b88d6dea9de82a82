//! `fsfeed export --parquet DEST`: history as Parquet files in a directory
//! or an S3 bucket, for engines that read a directory of Parquet files as
//! one table (Spark, DuckDB, polars, pyarrow). The files are the core's
//! [`fsfeed::history::export`]: one per run of the ledger's segment size,
//! named `{first:020}-{last:020}.parquet` by its seqs, whole sealed segments
//! copied as stored.
//!
//! - **Where.** `DEST` is a directory (created if missing) or
//!   `s3://BUCKET[/PREFIX]`, whose endpoint and keys come from a store file:
//!   the keys of the change log's `[dest]` table but `bucket` and `prefix`
//!   ([`Dest::from_store_toml`]). A file is written to a hidden
//!   `.NAME.tmp`, fsynced and renamed in a directory, and put whole (one
//!   request) in a bucket, so a reader never sees part of one.
//! - **Incremental, with a cursor.** With `cursor`, an export starts at the
//!   named cursor's committed position (`since` applies only when the cursor
//!   has none) and commits the cursor after each file is stored, and past
//!   the range at the end. Files from the committed position on are the
//!   cursor's: what a killed export stored without committing is removed
//!   first, so the next run writes it again without a row twice.
//! - **Without a cursor** an export writes `since..=until`. It refuses a
//!   `DEST` that holds a file overlapping that range under another name
//!   (the table would have those rows twice); a file of the same name holds
//!   the same seqs and is replaced.
//! - **Gaps.** A range that starts before the first retained event fails
//!   with the ledger's `gap` error (the cursor is not moved), unless
//!   `skip_gap` is set: then the export starts at the first retained event
//!   and the report's `gap` names the seqs lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fsfeed::history::export::ExportOptions;
use fsfeed::history::segments::parse_name;
use fsfeed::{CursorOptions, Ledger, Position, Start};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};
use serde::Serialize;

use crate::config::Dest;
use crate::error::{Error, Result};
use crate::uploader::{scrubber_of, store_of};

/// Where an export's files go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local directory.
    Dir(PathBuf),
    /// A bucket and key prefix of an S3 store.
    S3(Dest),
}

impl Target {
    /// `dest`: a directory, or `s3://BUCKET[/PREFIX]` with the store file
    /// `store` (TOML: endpoint and keys), which only an `s3://` URL takes.
    pub fn parse(dest: &str, store: Option<&Path>) -> Result<Target> {
        if let Some(rest) = dest.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let ok = !bucket.is_empty()
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                return Err(Error::Config(
                    "an s3:// destination is s3://BUCKET[/PREFIX] with a bucket name of [A-Za-z0-9._-]"
                        .into(),
                ));
            }
            let store = store.ok_or_else(|| {
                Error::Config(
                    "an s3:// destination needs a store file (--store FILE): endpoint and keys"
                        .into(),
                )
            })?;
            return Ok(Target::S3(Dest::from_store_file(store, bucket, prefix)?));
        }
        if dest.is_empty() || dest.contains("://") {
            return Err(Error::Config(
                "the destination is a directory or s3://BUCKET[/PREFIX]".into(),
            ));
        }
        if store.is_some() {
            return Err(Error::Config(
                "a store file is for s3:// destinations only".into(),
            ));
        }
        Ok(Target::Dir(PathBuf::from(dest)))
    }

    /// The destination as a user gave it (no keys).
    pub fn describe(&self) -> String {
        match self {
            Target::Dir(p) => p.display().to_string(),
            Target::S3(d) if d.prefix.is_empty() => format!("s3://{}", d.bucket),
            Target::S3(d) => format!("s3://{}/{}", d.bucket, d.prefix),
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// First event (default: the earliest retained); with `cursor`, only
    /// when the cursor has no committed position.
    pub since: Option<Start>,
    /// Last event, inclusive (default: the head when the export starts).
    pub until: Option<Start>,
    /// The named cursor that makes the export incremental.
    pub cursor: Option<String>,
    /// Start at the first retained event when the range starts before it
    /// (reported in [`Report::gap`]) instead of failing with `gap`.
    pub skip_gap: bool,
}

/// An export's `since` or `until` as a front end took it: a seq or a
/// time, never `earliest`, `latest` or `committed` (leave it out for the
/// default). `name` is the option as the caller's user wrote it.
pub fn bound(name: &str, s: Option<Start>) -> Result<Option<Start>> {
    match s {
        None | Some(Start::Seq(_) | Start::Time(_)) => Ok(s),
        Some(other) => Err(Error::Ledger(fsfeed::Error::InvalidArgument(format!(
            "{name} takes a seq or an RFC 3339 time, not {other:?}"
        )))),
    }
}

/// Seqs retention removed before an export could write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The first seq the export wanted.
    pub expected: u64,
    /// The first seq it had.
    pub actual: u64,
}

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The destination (no keys).
    pub dest: String,
    /// The files stored, in seq order.
    pub files: Vec<String>,
    /// Of them, sealed segments copied as stored.
    pub copied: u64,
    /// Rows in the files.
    pub rows: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// The seqs exported (absent when the range was empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub last_seq: Option<u64>,
    /// Files of a killed export, removed before writing (cursor exports).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// The cursor's committed position afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<Position>,
    /// Seqs skipped because retention had removed them (`skip_gap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
}

/// Export `req` from `ledger` to `target` (see the module). A failed store
/// request is retried 3 times within 30 s, then the export fails with
/// `store_failed`; the files stored before stay, and with a cursor they
/// are committed.
pub async fn export(ledger: &Ledger, target: &Target, req: Request) -> Result<Report> {
    export_observed(ledger, target, req, |_, _| {}).await
}

/// [`export`], calling `progress(report, through)` once the range is known
/// (`through`: the seq before it) and after each stored file (`through`:
/// its last seq): what a progress bar shows.
pub async fn export_observed(
    ledger: &Ledger,
    target: &Target,
    req: Request,
    mut progress: impl FnMut(&Report, u64),
) -> Result<Report> {
    let cursor = match &req.cursor {
        Some(name) => Some(ledger.cursor(
            Some(name),
            CursorOptions {
                start: Start::Committed,
                on_missing: Some(req.since.unwrap_or(Start::Earliest)),
                ..CursorOptions::default()
            },
        )?),
        None => None,
    };
    let since = match &cursor {
        // Inside an event another reader expanded: it was exported or not,
        // whole; the next whole event is where this export starts.
        Some(c) if c.position().sub > 0 => Start::Seq(c.position().seq + 1),
        Some(c) => Start::Seq(c.position().seq),
        None => req.since.unwrap_or(Start::Earliest),
    };
    let opts = |since| ExportOptions {
        since,
        until: req.until,
    };
    let mut gap = None;
    let exp = match ledger.export(opts(since)) {
        Err(fsfeed::Error::Gap { expected, actual }) if req.skip_gap => {
            gap = Some(Gap { expected, actual });
            ledger.export(opts(Start::Seq(actual)))?
        }
        r => r?,
    };
    let sink = Sink::new(target)?;
    let mut report = Report {
        dest: target.describe(),
        gap,
        ..Report::default()
    };
    let existing = sink.list().await?;
    let range = exp.range();
    match range {
        Some((first, _)) if cursor.is_some() => {
            // A killed run's files: stored, never committed.
            for (name, (_, last)) in &existing {
                if *last >= first {
                    sink.remove(name).await?;
                    report.removed.push(name.clone());
                }
            }
        }
        Some(_) => {
            let pieces = exp.pieces();
            for (name, (a, b)) in &existing {
                let clash = pieces
                    .iter()
                    .any(|&(x, y)| *a <= y && *b >= x && (x, y) != (*a, *b));
                if clash {
                    return Err(fsfeed::Error::InvalidArgument(format!(
                        "{} already holds {name}, whose seqs overlap the export's under another \
                         name (a table read from it would have those rows twice): export \
                         elsewhere or with a cursor",
                        report.dest
                    ))
                    .into());
                }
            }
        }
        None => {}
    }
    if let Some((first, last)) = range {
        report.first_seq = Some(first);
        report.last_seq = Some(last);
        progress(&report, first - 1);
    }
    let mut exp = exp;
    loop {
        // The export reads and encodes: off the runtime's threads.
        let (e, file) = tokio::task::spawn_blocking(move || {
            let mut e = exp;
            let f = e.next_file();
            (e, f)
        })
        .await
        .map_err(|_| Error::Io("the export's reader thread failed".into()))?;
        exp = e;
        let Some(file) = file? else { break };
        let (name, rows, copied, last) = (file.name(), file.rows, file.copied, file.last);
        report.bytes += file.bytes.len() as u64;
        sink.put(&name, file.bytes).await?;
        report.files.push(name);
        report.copied += u64::from(copied);
        report.rows += rows;
        if let Some(c) = &cursor {
            c.commit(Position::new(last + 1, 0))?;
        }
        progress(&report, last);
    }
    if let Some(c) = &cursor {
        // Past the range (its last pieces may have held no row), or, for
        // an empty range, where the cursor stands: it exists from now on.
        let at = range.map_or(c.position(), |(_, last)| Position::new(last + 1, 0));
        c.commit(at)?;
        report.committed = Some(at);
    }
    Ok(report)
}

/// A target, open.
enum Sink {
    Dir(PathBuf),
    S3 {
        store: Arc<object_store::aws::AmazonS3>,
        dest: Dest,
    },
}

impl Sink {
    fn new(target: &Target) -> Result<Sink> {
        Ok(match target {
            Target::Dir(p) => {
                std::fs::create_dir_all(p)
                    .map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
                Sink::Dir(p.clone())
            }
            Target::S3(d) => Sink::S3 {
                store: store_of(d, 3)?,
                dest: d.clone(),
            },
        })
    }

    fn key(dest: &Dest, name: &str) -> StorePath {
        if dest.prefix.is_empty() {
            StorePath::from(name)
        } else {
            StorePath::from(format!("{}/{name}", dest.prefix))
        }
    }

    fn store_err(dest: &Dest, e: object_store::Error) -> Error {
        Error::Store(scrubber_of(dest).scrub(&e.to_string()))
    }

    /// The export files there (by name, with their seqs), in seq order.
    async fn list(&self) -> Result<Vec<(String, (u64, u64))>> {
        let mut out = Vec::new();
        match self {
            Sink::Dir(p) => {
                let dir_err = |e: std::io::Error| Error::Io(format!("{}: {e}", p.display()));
                for e in std::fs::read_dir(p).map_err(dir_err)? {
                    let name = e.map_err(dir_err)?.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if let Some(r) = parse_name(name) {
                        out.push((name.to_string(), r));
                    } else if name.starts_with('.') && name.ends_with(".parquet.tmp") {
                        // What a killed export was writing.
                        let _ = std::fs::remove_file(p.join(name));
                    }
                }
            }
            Sink::S3 { store, dest } => {
                let prefix =
                    (!dest.prefix.is_empty()).then(|| StorePath::from(dest.prefix.as_str()));
                let listed: Vec<_> = store
                    .list(prefix.as_ref())
                    .try_collect()
                    .await
                    .map_err(|e| Self::store_err(dest, e))?;
                for o in listed {
                    let Some(name) = o.location.filename() else {
                        continue;
                    };
                    if Self::key(dest, name) != o.location {
                        continue;
                    }
                    if let Some(r) = parse_name(name) {
                        out.push((name.to_string(), r));
                    }
                }
            }
        }
        out.sort_by_key(|(_, r)| *r);
        Ok(out)
    }

    async fn remove(&self, name: &str) -> Result<()> {
        match self {
            Sink::Dir(p) => std::fs::remove_file(p.join(name))
                .map_err(|e| Error::Io(format!("{}: {e}", p.join(name).display()))),
            Sink::S3 { store, dest } => store
                .delete(&Self::key(dest, name))
                .await
                .map_err(|e| Self::store_err(dest, e)),
        }
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Sink::Dir(p) => {
                let (dir, name) = (p.clone(), name.to_string());
                tokio::task::spawn_blocking(move || write_file(&dir, &name, &bytes))
                    .await
                    .map_err(|_| Error::Io("the export's writer thread failed".into()))?
            }
            Sink::S3 { store, dest } => store
                .put(&Self::key(dest, name), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| Self::store_err(dest, e)),
        }
    }
}

/// `bytes` as `dir/name`: written to `.name.tmp`, fsynced, renamed, and
/// the directory fsynced.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |p: &Path, e: std::io::Error| Error::Io(format!("{}: {e}", p.display()));
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| io(&tmp, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    const STORE: &str = r#"
endpoint = "http://127.0.0.1:9000"
access_key = "AKEXPORT"
secret_key = "export-secret-never-printed"
"#;

    #[test]
    fn destinations_parse() {
        let f = store_file(STORE);
        match Target::parse("s3://lake/fsfeed/history/", Some(f.path())).unwrap() {
            Target::S3(d) => {
                assert_eq!(
                    (d.bucket.as_str(), d.prefix.as_str()),
                    ("lake", "fsfeed/history")
                );
                assert_eq!(d.region, "us-east-1");
                assert!(d.path_style && d.verify_tls);
            }
            t => panic!("{t:?}"),
        }
        let t = Target::parse("s3://lake", Some(f.path())).unwrap();
        assert_eq!(t.describe(), "s3://lake");
        let t = Target::parse("out/history", None).unwrap();
        assert_eq!(t.describe(), "out/history");
    }

    #[test]
    fn bad_destinations_and_store_files_are_typed_errors_without_secrets() {
        let good = store_file(STORE);
        let bad = |dest: &str, store: Option<&Path>| {
            let e = Target::parse(dest, store).unwrap_err();
            assert_eq!(e.code(), "invalid_config", "{dest}: {e}");
            let text = e.to_string();
            assert!(!text.contains("export-secret"), "{text}");
            text
        };
        assert!(bad("s3://lake/x", None).contains("--store"));
        assert!(bad("s3:///x", Some(good.path())).contains("BUCKET"));
        assert!(bad("s3://la ke/x", Some(good.path())).contains("BUCKET"));
        assert!(bad("gs://lake/x", None).contains("directory or s3://"));
        assert!(bad("", None).contains("directory or s3://"));
        assert!(bad("out", Some(good.path())).contains("s3:// destinations only"));
        let missing = Path::new("/nonexistent/store.toml");
        bad("s3://lake", Some(missing));
        for text in [
            // Unknown key (bucket belongs in the URL).
            "endpoint = \"http://h:1\"\naccess_key = \"a\"\nsecret_key = \"export-secret-x\"\nbucket = \"b\"",
            // No endpoint.
            "access_key = \"a\"\nsecret_key = \"export-secret-x\"",
            // User info in the endpoint.
            "endpoint = \"http://u:export-secret@h:1\"\naccess_key = \"a\"\nsecret_key = \"export-secret-x\"",
            // A missing variable.
            "endpoint = \"http://h:1\"\naccess_key = \"env:FSFEED_TEST_EXPORT_NOT_SET\"\nsecret_key = \"export-secret-x\"",
            // Wrong type.
            "endpoint = \"http://h:1\"\naccess_key = \"a\"\nsecret_key = \"export-secret-x\"\npath_style = \"yes\"",
            // Empty key.
            "endpoint = \"http://h:1\"\naccess_key = \"\"\nsecret_key = \"export-secret-x\"",
        ] {
            let f = store_file(text);
            bad("s3://lake", Some(f.path()));
        }
    }
}
