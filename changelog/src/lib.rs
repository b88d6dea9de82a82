//! The change log for backup: the ledger's changes as gzipped JSON objects
//! in an S3 bucket, one window of seqs per object, written by one uploader
//! at a time under a lease, committed only after the object is stored
//! (Ceph RGW's change-log proposal). A backup tool reads them back for a
//! time range (`fetch`) without a ledger.
//!
//! `fsfeed changelog run --ledger DIR --config FILE [--once]` runs an
//! [`Uploader`]; `fsfeed changelog status` reads its status file;
//! `fsfeed changelog fetch --config FILE --from T1 --to T2 [--net]` reads
//! the objects back. `fsfeed export --parquet DEST` ([`export`]) writes
//! history as Parquet files to a directory or a bucket of the same kind of
//! store. Every config key and guarantee: `changelog/README.md`.

pub mod config;
pub mod error;
pub mod export;
pub mod fetch;
pub mod lease;
pub mod uploader;
pub mod window;

pub use config::Config;
pub use error::{Error, Result};
pub use uploader::{Report, Status, Uploader};
