//! `fsfeed`: the command line of the fsfeed change ledger.
//!
//! Every command takes `--ledger DIR`. `tail`, `stats` and `cursors` open the
//! ledger read-only (a RocksDB secondary instance) and never take the
//! writer's lock, so they run beside a process that appends. Errors go to
//! stderr as `fsfeed: error[CODE]: message` with exit status 2 for bad input
//! and 1 otherwise.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fsfeed::frame::{self, Framer};
use fsfeed::render::s3::{Profile, S3Options};
use fsfeed::render::{hdfs, Format};
use fsfeed::{
    CursorOptions, Durability, Error, ExpandOptions, Filter, Framing, Ledger, OnGap, Op,
    OpenOptions, Retention, Start,
};
use fsfeed_delivery::runtime;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// The writer allocates per op; mimalloc roughly doubles append throughput
/// over glibc's malloc (a perf profile of batch appends: 140k vs 275k events/s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fsfeed",
    version,
    about = "A durable change feed for filesystems and object stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct LedgerArg {
    /// The ledger directory.
    #[arg(long, value_name = "DIR")]
    ledger: PathBuf,
}

#[derive(Args, Default)]
struct RetentionArgs {
    /// Keep at most N events.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Keep events whose op time is within SECS of the newest.
    #[arg(long, value_name = "SECS")]
    max_age: Option<u64>,
    /// Keep at most B bytes of events.
    #[arg(long, value_name = "B")]
    max_bytes: Option<u64>,
    /// Hold the limits above back for the slowest named cursor...
    #[arg(long)]
    keep_for_cursors: bool,
    /// ...but never keep more than N events for it.
    #[arg(long, value_name = "N", requires = "keep_for_cursors")]
    hard_max_events: Option<u64>,
    /// ...nor more than B bytes.
    #[arg(long, value_name = "B", requires = "keep_for_cursors")]
    hard_max_bytes: Option<u64>,
}

impl RetentionArgs {
    fn retention(&self) -> Option<Retention> {
        let r = Retention {
            max_events: self.max_events,
            max_age_us: self.max_age.map(|s| s.saturating_mul(1_000_000)),
            max_bytes: self.max_bytes,
            keep_for_cursors: self.keep_for_cursors,
            hard_max_events: self.hard_max_events,
            hard_max_bytes: self.hard_max_bytes,
        };
        (r != Retention::default()).then_some(r)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a ledger (or change the retention of an existing one).
    Init {
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        retention: RetentionArgs,
        /// Do not seal history into Parquet segments (LEDGER/segments/);
        /// stored: every later writer honours it. Removes existing segments.
        #[arg(long, conflicts_with = "segments")]
        no_segments: bool,
        /// Seal history into Parquet segments again (the default for a new
        /// ledger); the retained history is sealed in the background.
        #[arg(long)]
        segments: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Append ops given as JSON lines on stdin; prints {"first_seq","last_seq","count"}.
    Append {
        #[command(flatten)]
        ledger: LedgerArg,
        /// sync (fsync per group commit), buffered, or none (tests only).
        #[arg(long, default_value = "sync")]
        durability: String,
        /// Ops per atomic batch: a bad line fails its whole batch.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
    /// Print records, one JSON line each.
    Tail(Box<TailArgs>),
    /// Counts, sizes and cursors.
    Stats {
        #[command(flatten)]
        ledger: LedgerArg,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read every stored key with its checksum verified and decode every
    /// event: damage is the `corrupt` error (exit 1), naming what is bad.
    Verify {
        #[command(flatten)]
        ledger: LedgerArg,
        /// A ledger whose write-ahead log is damaged: open it with the log's
        /// records before the first bad one and drop the rest (they may have
        /// been acknowledged), then verify. Opens for writing.
        #[arg(long)]
        salvage: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List named cursors (or delete one).
    Cursors {
        #[command(flatten)]
        ledger: LedgerArg,
        /// Forget this cursor (opens the ledger for writing).
        #[arg(long, value_name = "NAME")]
        delete: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a deterministic, realistic op workload as JSON lines (for `append`).
    Workload {
        /// How many ops.
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Seed: the same seed gives the same ops.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Op time of the first op, µs since the epoch (default: now).
        #[arg(long)]
        start_us: Option<i64>,
    },
    /// Net changes over a range, one JSON line per path:
    /// {"change":"NEW|MODIFY|RENAME|DELETE","volume","bucket","key"[,"from_key"]}.
    Changes {
        #[command(flatten)]
        ledger: LedgerArg,
        /// First seq of the range (inclusive), or an RFC 3339 time.
        #[arg(long)]
        since: String,
        /// Last seq of the range (inclusive; default the head).
        #[arg(long)]
        until: Option<u64>,
        /// JSON lines (the only output form; kept for symmetry with other reports).
        #[arg(long)]
        json: bool,
    },
    /// The live tree at the head as records marked "resync" (a tail that
    /// starts with a resync); with --cursor and --commit the cursor then
    /// stands after the head.
    Resync(Box<TailArgs>),
    /// Push records to Kafka, AMQP and HTTP endpoints: runs every
    /// publisher of a TOML config (see delivery/README.md), at least once,
    /// until SIGTERM; `publish status` shows each publisher's state.
    Publish(Box<PublishArgs>),
    /// Serve Ceph's PubSub REST API over the ledger (topics, S3 and plain
    /// notifications, subscriptions, pull, ack, push; see pubsub/README.md)
    /// until SIGTERM. Prints `listening on http://HOST:PORT` when ready.
    Serve {
        #[command(flatten)]
        ledger: LedgerArg,
        /// The service's TOML config (zone, users, bucket owners).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Address to listen on (port 0: a free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
        listen: std::net::SocketAddr,
    },
    /// The change log for backup: windows of the ledger as gzipped JSON
    /// objects in an S3 bucket, under a lease (see changelog/README.md).
    #[command(subcommand)]
    Changelog(ChangelogCommand),
    /// History as Parquet files (one per run of the segment size, named by
    /// seqs) in a directory or s3://BUCKET/PREFIX, which Spark, DuckDB,
    /// polars and pyarrow read as one table; with --cursor, only what is
    /// new since the last export. Prints a JSON report.
    Export(Box<ExportArgs>),
    /// Watch a local directory tree with inotify and append what happens to
    /// it to an FSO bucket (named after the tree), until SIGTERM or SIGINT.
    /// On start, on a queue overflow and for directories that cannot be
    /// watched, the tree is diffed against the namespace and only the
    /// differences are appended (`source` = `resync`). Prints `watching
    /// DIR as bucket B` when ready and the counters as JSON at the end.
    Watch {
        /// The directory to watch.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        ledger: LedgerArg,
        /// Bucket name (default: the directory's name).
        #[arg(long)]
        bucket: Option<String>,
        /// Volume of the bucket (default: none).
        #[arg(long, default_value = "")]
        volume: String,
        /// Leave out paths matching this glob, relative to DIR (`**` spans
        /// directories; `.git/**` leaves out .git and all below). Repeatable.
        #[arg(long, value_name = "GLOB")]
        ignore: Vec<String>,
        /// Seconds between rescans of directories that could not be watched.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        rescan_interval: u64,
        /// sync (fsync per group commit), buffered, or none (tests only).
        #[arg(long, default_value = "sync")]
        durability: String,
    },
    /// Write a consistent copy of the ledger to another directory (with the
    /// pub/sub service's state, when there is one).
    Checkpoint {
        #[command(flatten)]
        ledger: LedgerArg,
        /// Target directory (must not exist or be empty).
        #[arg(long, value_name = "DIR2")]
        to: PathBuf,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct PublishArgs {
    #[command(subcommand)]
    command: Option<PublishCommand>,
    /// The ledger directory (opened read-only, beside the process that appends).
    #[arg(long, value_name = "DIR")]
    ledger: Option<PathBuf>,
    /// The publishers' TOML config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Drain every publisher to the head, then exit (status 1 if one failed).
    #[arg(long)]
    once: bool,
    /// Serve Prometheus text on http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// A directory (created if missing) or s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "DEST")]
    parquet: String,
    /// First event: a seq or an RFC 3339 time (default: the earliest
    /// retained; with --cursor, only when the cursor has no position yet).
    #[arg(long)]
    since: Option<String>,
    /// Last event, inclusive: a seq or an RFC 3339 time (events before it);
    /// default: the head when the export starts.
    #[arg(long)]
    until: Option<String>,
    /// Export from this named cursor's position and commit it after each
    /// file is stored.
    #[arg(long, value_name = "NAME")]
    cursor: Option<String>,
    /// For s3:// destinations: a TOML file with endpoint, region,
    /// path_style, verify_tls, access_key and secret_key (keys may be
    /// env:NAME), as the change log's [dest] table.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// When the range starts before the first retained event, start there
    /// (the report's "gap" names what was lost) instead of failing.
    #[arg(long)]
    skip_gap: bool,
}

#[derive(Subcommand)]
enum ChangelogCommand {
    /// Upload windows every `interval` until SIGTERM (the object in flight
    /// is finished); with --once, up to the head as it stood, then exit.
    Run {
        #[command(flatten)]
        ledger: LedgerArg,
        /// The change log's TOML config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Upload up to the head, then exit (for cron and Airflow).
        #[arg(long)]
        once: bool,
    },
    /// The uploader's lease, last object, lag and counters.
    Status {
        #[command(flatten)]
        ledger: LedgerArg,
        /// The change log's TOML config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the objects back (no ledger needed): every record with op time
    /// in [--from, --to) as JSON lines, or one net change per object.
    Fetch {
        /// The change log's TOML config.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Start (RFC 3339, inclusive).
        #[arg(long, value_name = "T1")]
        from: String,
        /// End (RFC 3339, exclusive).
        #[arg(long, value_name = "T2")]
        to: String,
        /// One net change per object (NEW, MODIFY, DELETE, RENAME).
        #[arg(long)]
        net: bool,
    },
}

#[derive(Subcommand)]
enum PublishCommand {
    /// Each publisher's position, lag, state, counters and last error.
    Status {
        #[command(flatten)]
        ledger: LedgerArg,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct TailArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Output format: native, s3 (one {"Records":[..]} message per line),
    /// hdfs (one event batch per line), hdfs-proto (one binary EventsListProto).
    #[arg(long, default_value = "native")]
    format: String,
    /// S3 dialect: aws, ceph or minio.
    #[arg(long, default_value = "aws")]
    s3_profile: String,
    /// S3 `awsRegion`.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// S3 `eventSource` (default per profile).
    #[arg(long)]
    s3_event_source: Option<String>,
    /// S3 `s3.configurationId`.
    #[arg(long, default_value = "fsfeed")]
    s3_configuration_id: String,
    /// S3 bucket owner principal id.
    #[arg(long, default_value = "fsfeed")]
    s3_bucket_owner: String,
    /// Prefix of the bucket ARN.
    #[arg(long, default_value = "arn:aws:s3:::")]
    s3_arn_prefix: String,
    /// Also write fsfeed's own S3 event kinds (renames, truncates, ACL and
    /// metadata changes, bucket creates and deletes); off: only what the
    /// profile's server sends.
    #[arg(long)]
    s3_extensions: bool,
    /// earliest, latest, committed, a seq, SEQ:SUB, or an RFC 3339 time
    /// (default: committed with --cursor, else earliest).
    #[arg(long)]
    from: Option<String>,
    /// Named cursor to read with.
    #[arg(long)]
    cursor: Option<String>,
    /// Commit the cursor after each batch is printed.
    #[arg(long, requires = "cursor")]
    commit: bool,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// How long one read waits for new records (default 0, or 1000 with --follow).
    #[arg(long, value_name = "T")]
    timeout_ms: Option<u64>,
    /// Keep waiting for new records.
    #[arg(long)]
    follow: bool,
    /// Only this bucket (repeatable).
    #[arg(long)]
    bucket: Vec<String>,
    /// Only keys with this prefix.
    #[arg(long)]
    prefix: Option<String>,
    /// Only keys with this suffix.
    #[arg(long)]
    suffix: Option<String>,
    /// Only this op kind (repeatable).
    #[arg(long)]
    kind: Vec<String>,
    /// Only this S3 event name or pattern, e.g. s3:ObjectCreated:* (repeatable).
    #[arg(long)]
    event: Vec<String>,
    /// report (a {"gap":..} line), error (exit status 3), or resync (the
    /// gap line, then the live tree as records marked "resync", then on).
    #[arg(long, default_value = "report")]
    on_gap: String,
    /// Expand renames into a remove and a create per object below.
    #[arg(long)]
    expand_renames: bool,
    /// Expand recursive directory deletes into a remove per object below,
    /// and a bucket's delete into a remove per object of its FSO tree, then
    /// the delete itself.
    #[arg(long)]
    expand_deletes: bool,
    /// Start with a resync: the live tree at the head, then what follows.
    #[arg(long, hide = true)]
    resync_first: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Pipe) => ExitCode::SUCCESS,
        Err(Failure::Delivery(e)) => {
            eprintln!("fsfeed: error[{}]: {e}", e.code());
            match e {
                fsfeed_delivery::Error::Ledger(e) if e.is_invalid_input() => ExitCode::from(2),
                fsfeed_delivery::Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
        Err(Failure::Pubsub(e)) => {
            eprintln!("fsfeed: error[{}]: {e}", e.code());
            match e {
                fsfeed_pubsub::Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
        Err(Failure::Changelog(e)) => {
            eprintln!("fsfeed: error[{}]: {e}", e.code());
            match e {
                fsfeed_changelog::Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
        Err(Failure::Fsfeed(e)) => {
            eprintln!("fsfeed: error[{}]: {e}", e.code());
            match e {
                Error::Gap { .. } => ExitCode::from(3),
                e if e.is_invalid_input() => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

enum Failure {
    Fsfeed(Error),
    Delivery(fsfeed_delivery::Error),
    Pubsub(fsfeed_pubsub::Error),
    Changelog(fsfeed_changelog::Error),
    /// stdout was closed (`fsfeed tail | head`): stop quietly.
    Pipe,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fsfeed(e)
    }
}

impl From<fsfeed_delivery::Error> for Failure {
    fn from(e: fsfeed_delivery::Error) -> Self {
        Failure::Delivery(e)
    }
}

impl From<fsfeed_pubsub::Error> for Failure {
    fn from(e: fsfeed_pubsub::Error) -> Self {
        match e {
            fsfeed_pubsub::Error::Ledger(e) => Failure::Fsfeed(e),
            e => Failure::Pubsub(e),
        }
    }
}

impl From<fsfeed_changelog::Error> for Failure {
    fn from(e: fsfeed_changelog::Error) -> Self {
        match e {
            fsfeed_changelog::Error::Ledger(e) => Failure::Fsfeed(e),
            e => Failure::Changelog(e),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Pipe
        } else {
            Failure::Fsfeed(Error::Io(e))
        }
    }
}

type Out = Result<(), Failure>;

fn run(cli: Cli) -> Out {
    match cli.command {
        Command::Init {
            ledger,
            retention,
            no_segments,
            segments,
            json,
        } => {
            let segments = match (segments, no_segments) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            init(ledger.ledger, retention, segments, json)
        }
        Command::Append {
            ledger,
            durability,
            batch_size,
        } => append(ledger.ledger, &durability, batch_size),
        Command::Tail(args) => tail(*args),
        Command::Publish(args) => publish(*args),
        Command::Changelog(c) => changelog(c),
        Command::Watch {
            dir,
            ledger,
            bucket,
            volume,
            ignore,
            rescan_interval,
            durability,
        } => watch(
            dir,
            ledger.ledger,
            fsfeed_watch::Options {
                volume,
                bucket,
                ignore,
                rescan_interval: Duration::from_secs(rescan_interval),
                ..Default::default()
            },
            &durability,
        ),
        Command::Serve {
            ledger,
            config,
            listen,
        } => serve(ledger.ledger, config, listen),
        Command::Resync(mut args) => {
            args.resync_first = true;
            tail(*args)
        }
        Command::Changes {
            ledger,
            since,
            until,
            json: _,
        } => {
            let start: Start = since.parse()?;
            if matches!(start, Start::Earliest | Start::Latest | Start::Committed) {
                return Err(Error::InvalidArgument(
                    "--since takes a seq or an RFC 3339 time".into(),
                )
                .into());
            }
            let l = Ledger::open_read_only(&ledger.ledger)?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            for row in l.changes(start, until)? {
                writeln!(out, "{}", serde_json::to_string(&row).expect("change JSON"))?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Export(args) => export(*args),
        Command::Stats { ledger, json } => stats(ledger.ledger, json),
        Command::Verify {
            ledger,
            salvage,
            json,
        } => verify(ledger.ledger, salvage, json),
        Command::Cursors {
            ledger,
            delete,
            json,
        } => cursors(ledger.ledger, delete, json),
        Command::Workload {
            events,
            seed,
            start_us,
        } => {
            let start = start_us.unwrap_or_else(fsfeed::op::now_us);
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            for op in fsfeed::workload::Workload::new(seed, start).take(events as usize) {
                writeln!(out, "{}", op.to_json_value())?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Checkpoint { ledger, to } => {
            let l = Ledger::open_with(
                &ledger.ledger,
                OpenOptions {
                    create: false,
                    ..Default::default()
                },
            )?;
            l.checkpoint(&to)?;
            let pubsub = fsfeed_pubsub::store::Store::copy_to(&ledger.ledger, &to)?;
            println!("{}", json!({"checkpoint": to, "pubsub": pubsub}));
            Ok(())
        }
    }
}

fn init(dir: PathBuf, retention: RetentionArgs, segments: Option<bool>, json_out: bool) -> Out {
    let ledger = Ledger::open_with(
        &dir,
        OpenOptions {
            retention: retention.retention(),
            segments,
            ..Default::default()
        },
    )?;
    let stats = ledger.stats()?;
    if json_out {
        println!("{}", serde_json::to_string(&stats).expect("stats JSON"));
    } else {
        println!(
            "ledger {} ready: {} events (seq {}..={})",
            dir.display(),
            stats.events,
            stats.first_seq,
            stats.head_seq
        );
    }
    Ok(())
}

fn append(dir: PathBuf, durability: &str, batch_size: usize) -> Out {
    if batch_size == 0 {
        return Err(Error::InvalidArgument("--batch-size must be at least 1".into()).into());
    }
    let ledger = Ledger::open_with(
        &dir,
        OpenOptions {
            create: false,
            durability: Durability::parse(durability)?,
            ..Default::default()
        },
    )?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} ops appended ({per_sec})")
            .expect("progress template"),
    );
    let mut first: Option<u64> = None;
    let mut last: Option<u64> = None;
    let mut count = 0u64;
    let mut ops = Vec::with_capacity(batch_size);
    let mut lines = Vec::with_capacity(batch_size);
    let flush = |ops: &mut Vec<Op>, lines: &mut Vec<usize>| -> Result<Option<(u64, u64)>, Error> {
        if ops.is_empty() {
            return Ok(None);
        }
        let n = ops.len();
        let res = ledger
            .append_batch(std::mem::take(ops))
            .map_err(|e| match e.index() {
                Some(index) => {
                    let line = lines.get(index).copied().unwrap_or(0);
                    e.with_index(line)
                }
                None => e,
            });
        lines.clear();
        let r = res?;
        debug_assert_eq!((r.1 - r.0 + 1) as usize, n);
        Ok(Some(r))
    };
    let stdin = io::stdin();
    let mut result: Result<(), Error> = Ok(());
    for (i, line) in stdin.lock().lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(Error::Io)?;
        if line.trim().is_empty() {
            continue;
        }
        match Op::from_json(&line, lineno) {
            Ok(op) => {
                ops.push(op);
                lines.push(lineno);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        if ops.len() >= batch_size {
            match flush(&mut ops, &mut lines) {
                Ok(Some((a, b))) => {
                    first.get_or_insert(a);
                    last = Some(b);
                    count += b - a + 1;
                    bar.set_position(count);
                }
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    if result.is_ok() {
        match flush(&mut ops, &mut lines) {
            Ok(Some((a, b))) => {
                first.get_or_insert(a);
                last = Some(b);
                count += b - a + 1;
            }
            Ok(None) => {}
            Err(e) => result = Err(e),
        }
    }
    bar.finish_and_clear();
    // A clean close flushes the memtables: the next open replays no log
    // (dropping the handle left every appended event in the log).
    let closed = ledger.close();
    if result.is_ok() {
        result = closed;
    }
    let summary = json!({"first_seq": first, "last_seq": last, "count": count});
    match result {
        Ok(()) => {
            writeln!(io::stdout(), "{summary}")?;
            Ok(())
        }
        Err(e) => {
            if count > 0 {
                eprintln!("fsfeed: appended before the error: {summary}");
            }
            Err(e.into())
        }
    }
}

fn tail(a: TailArgs) -> Out {
    // hdfs-proto: the HDFS records, framed as one EventsListProto at the end.
    let proto_out = a.format == "hdfs-proto";
    let format: Format = match a.format.as_str() {
        "hdfs-proto" => Format::Hdfs,
        "s3" => Format::S3(S3Options {
            profile: a.s3_profile.parse::<Profile>()?,
            region: a.s3_region.clone(),
            event_source: a.s3_event_source.clone(),
            configuration_id: a.s3_configuration_id.clone(),
            bucket_owner: a.s3_bucket_owner.clone(),
            arn_prefix: a.s3_arn_prefix.clone(),
            extensions: a.s3_extensions,
        }),
        other => other.parse()?,
    };
    // One S3 message per record on a line, as S3 sends them; one rendered
    // record (an HDFS event batch, a native event) per line otherwise.
    let framing = match (&format, proto_out) {
        (_, true) => Framing::HdfsProto,
        (Format::S3(_), _) => Framing::S3PerRecord,
        _ => Framing::JsonLines,
    };
    let framer = Framer::new(&format, framing)?;
    let on_gap: OnGap = a.on_gap.parse()?;
    let filter = Filter {
        buckets: a.bucket.clone(),
        prefix: a.prefix.clone(),
        suffix: a.suffix.clone(),
        kinds: a.kind.clone(),
        events: a.event.clone(),
    };
    let start = match &a.from {
        Some(s) => s.parse::<Start>()?,
        None if a.cursor.is_some() => Start::Committed,
        None => Start::Earliest,
    };
    if a.max == Some(0) {
        return Err(Error::InvalidArgument("--max must be at least 1".into()).into());
    }
    let ledger = Ledger::open_read_only(&a.ledger.ledger)?;
    let mut cursor = ledger.cursor(
        a.cursor.as_deref(),
        CursorOptions {
            start,
            on_gap,
            filter,
            expand: ExpandOptions {
                renames: a.expand_renames,
                deletes: a.expand_deletes,
            },
            format,
            ..Default::default()
        },
    )?;
    // A resync lists the whole live tree: a spinner on a terminal's stderr.
    let bar = if a.resync_first {
        cursor.resync()?;
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} records ({per_sec})")
                .expect("progress template"),
        );
        Some(bar)
    } else {
        None
    };
    let timeout = Duration::from_millis(a.timeout_ms.unwrap_or(if a.follow { 1000 } else { 0 }));
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut collected = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let want = a
            .max
            .map(|m| (m - printed).min(1000) as usize)
            .unwrap_or(1000);
        let batch = cursor.read(want, timeout)?;
        if let Some(g) = &batch.gap {
            out.write_all(&frame::gap_line(g))?;
            out.write_all(b"\n")?;
        }
        if proto_out {
            collected.extend(batch.records.iter().cloned());
        } else {
            buf.clear();
            framer.lines(&batch.records, &mut buf);
            out.write_all(&buf)?;
        }
        printed += batch.records.len() as u64;
        if let Some(bar) = &bar {
            bar.set_position(printed);
        }
        out.flush()?;
        if a.commit {
            cursor.commit(batch.next)?;
        }
        if a.max.is_some_and(|m| printed >= m) || (batch.is_empty() && !a.follow) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if proto_out {
        let head = ledger.head_seq()?;
        let sync = ledger
            .get(head)?
            .map(|e| hdfs::txid(&e))
            .unwrap_or(head as i64);
        buf.clear();
        framer.message(&collected, Some(sync), &mut buf);
        out.write_all(&buf)?;
        out.flush()?;
    }
    Ok(())
}

fn stats(dir: PathBuf, json_out: bool) -> Out {
    let ledger = Ledger::open_read_only(&dir)?;
    let s = ledger.stats()?;
    if json_out {
        println!("{}", serde_json::to_string(&s).expect("stats JSON"));
        return Ok(());
    }
    println!("first_seq  {}", s.first_seq);
    println!("head_seq   {}", s.head_seq);
    println!("events     {}", s.events);
    println!("bytes      {}", s.bytes);
    for c in &s.cursors {
        println!(
            "cursor {:<24} at {:<14} lag {}",
            c.name,
            c.position.to_string(),
            c.lag
        );
    }
    Ok(())
}

fn verify(dir: PathBuf, salvage: bool, json_out: bool) -> Out {
    let ledger = if salvage {
        Ledger::open_with(
            &dir,
            OpenOptions {
                create: false,
                salvage: true,
                ..Default::default()
            },
        )?
    } else {
        Ledger::open_read_only(&dir)?
    };
    let v = ledger.verify()?;
    if json_out {
        println!("{}", serde_json::to_string(&v).expect("verify JSON"));
    } else {
        println!(
            "ok: events {}..={} ({}), {} keys read with checksums verified",
            v.first_seq, v.head_seq, v.events, v.keys
        );
    }
    Ok(())
}

fn cursors(dir: PathBuf, delete: Option<String>, json_out: bool) -> Out {
    if let Some(name) = delete {
        let ledger = Ledger::open_with(
            &dir,
            OpenOptions {
                create: false,
                ..Default::default()
            },
        )?;
        let found = ledger.delete_cursor(&name)?;
        println!("{}", json!({"deleted": name, "found": found}));
        return Ok(());
    }
    let ledger = Ledger::open_read_only(&dir)?;
    let list = ledger.cursors()?;
    if json_out {
        println!("{}", serde_json::to_string(&list).expect("cursors JSON"));
    } else {
        for c in &list {
            println!(
                "{:<24} {:<14} lag {:<10} ({})",
                c.name,
                c.position.to_string(),
                c.lag,
                c.store
            );
        }
    }
    Ok(())
}

fn publish(a: PublishArgs) -> Out {
    use fsfeed_delivery::{Config, RunOptions, Supervisor};
    if let Some(PublishCommand::Status { ledger, json }) = a.command {
        return publish_status(ledger.ledger, json);
    }
    let (Some(ledger), Some(config)) = (a.ledger, a.config) else {
        return Err(Error::InvalidArgument(
            "publish needs --ledger DIR and --config FILE (or: publish status --ledger DIR)".into(),
        )
        .into());
    };
    let config = Config::from_file(&config)?;
    log_to_stderr();
    let ledger = Ledger::open_read_only(&ledger)?;
    let sup = Supervisor::from_config(ledger.clone(), &config)?;
    let rt = runtime()?;
    let report = rt.block_on(sup.run_until_signal(RunOptions {
        once: a.once,
        metrics: a.metrics,
    }));
    rt.shutdown_timeout(Duration::from_secs(5));
    let report = report?;
    let _ = ledger.close();
    match report.outcomes.into_iter().find_map(|(_, r)| r.err()) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Log lines of the long-running commands (publish, serve, changelog run)
/// go to stderr, plain.
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

fn serve(dir: PathBuf, config: PathBuf, listen: std::net::SocketAddr) -> Out {
    let config = fsfeed_pubsub::Config::from_file(&config)?;
    log_to_stderr();
    let ledger = Ledger::open_read_only(&dir)?;
    let svc = std::sync::Arc::new(fsfeed_pubsub::Service::open(ledger.clone(), config)?);
    let rt = runtime()?;
    let result: Out = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        io::stdout().flush()?;
        let stop = fsfeed_delivery::stop_on_signal("finishing the requests in flight")?;
        fsfeed_pubsub::serve(svc, listener, stop).await?;
        Ok(())
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    let _ = ledger.close();
    result
}

fn watch(dir: PathBuf, ledger: PathBuf, options: fsfeed_watch::Options, durability: &str) -> Out {
    if options.rescan_interval.is_zero() {
        return Err(Error::InvalidArgument("--rescan-interval must be at least 1".into()).into());
    }
    let durability = Durability::parse(durability)?;
    // Bad input changes nothing: checked before the ledger is created.
    fsfeed_watch::check(&dir, &options)?;
    log_to_stderr();
    let l = Ledger::open_with(
        &ledger,
        OpenOptions {
            durability,
            ..Default::default()
        },
    )?;
    let w = fsfeed_watch::watch(&dir, &l, options)?;
    println!("watching {} as bucket {}", w.root().display(), w.bucket());
    io::stdout().flush()?;
    let stopper = w.stopper();
    let rt = runtime()?;
    let signals = rt.block_on(async { fsfeed_delivery::stop_on_signal("stopping the watch") });
    let mut stop = signals?;
    // The watcher ends on a signal, or by itself on an error.
    let r: Out = rt.block_on(async {
        loop {
            tokio::select! {
                _ = stop.changed() => { stopper.stop(); break; }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if w.is_finished() { break; }
                }
            }
        }
        Ok(())
    });
    r?;
    let counters = w.stop();
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = l.close();
    let counters = counters?;
    println!(
        "{}",
        serde_json::to_string(&counters).expect("counters JSON")
    );
    Ok(())
}

fn changelog(c: ChangelogCommand) -> Out {
    use fsfeed_changelog::{fetch, uploader, Config, Uploader};

    let rfc = |flag: &str, s: &str| -> Result<i64, Failure> {
        Ok(fsfeed::op::parse_time_us(s).ok_or_else(|| {
            Error::InvalidArgument(format!("{flag} {s:?} is not an RFC 3339 time"))
        })?)
    };
    match c {
        ChangelogCommand::Run {
            ledger,
            config,
            once,
        } => {
            let cfg = Config::from_file(&config)?;
            log_to_stderr();
            let l = Ledger::open_read_only(&ledger.ledger)?;
            let mut up = Uploader::new(l.clone(), cfg)?;
            let rt = runtime()?;
            let r: Out = rt.block_on(async {
                if once {
                    let report = up.run_once_and_release().await?;
                    println!("{}", serde_json::to_string(&report).expect("JSON"));
                    return Ok(());
                }
                let stop = fsfeed_delivery::stop_on_signal("finishing the object in flight")?;
                up.run(stop).await?;
                Ok(())
            });
            rt.shutdown_timeout(Duration::from_secs(5));
            let _ = l.close();
            r
        }
        ChangelogCommand::Status {
            ledger,
            config,
            json: as_json,
        } => {
            let cfg = Config::from_file(&config)?;
            let l = Ledger::open_read_only(&ledger.ledger)?;
            let rt = runtime()?;
            let v = rt.block_on(uploader::status_report(&l, &cfg, true))?;
            let mut out = io::stdout().lock();
            if as_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("JSON"))?;
            } else {
                for (k, x) in v.as_object().expect("an object") {
                    writeln!(out, "{k:<12} {x}")?;
                }
            }
            Ok(())
        }
        ChangelogCommand::Fetch {
            config,
            from,
            to,
            net,
        } => {
            let cfg = Config::from_file(&config)?;
            let (from, to) = (rfc("--from", &from)?, rfc("--to", &to)?);
            let rt = runtime()?;
            // Drawn only when stderr is a terminal (indicatif's default target).
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} change-log objects read ({per_sec}, {eta} left)",
                )
                .expect("progress template"),
            );
            let b = bar.clone();
            let mut progress = move |read: usize, total: usize| {
                b.set_length(total as u64);
                b.set_position(read as u64);
            };
            let rows = rt.block_on(fetch::rows_observed(&cfg, from, to, net, &mut progress));
            bar.finish_and_clear();
            let rows = rows?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            for r in rows {
                writeln!(out, "{r}")?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

fn export(a: ExportArgs) -> Out {
    use fsfeed_changelog::export::{self, Request, Target};

    let bound = |flag: &str, v: Option<String>| -> Result<Option<Start>, Failure> {
        let Some(v) = v else { return Ok(None) };
        let s = v.parse::<Start>().map_err(|_| {
            Error::InvalidArgument(format!("{flag} takes a seq or an RFC 3339 time, not {v:?}"))
        })?;
        Ok(export::bound(flag, Some(s))?)
    };
    let req = Request {
        since: bound("--since", a.since)?,
        until: bound("--until", a.until)?,
        cursor: a.cursor,
        skip_gap: a.skip_gap,
    };
    let target = Target::parse(&a.parquet, a.store.as_deref())?;
    let l = Ledger::open_read_only(&a.ledger.ledger)?;
    let rt = runtime()?;
    // Drawn only when stderr is a terminal (indicatif's default target).
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} seqs exported, {msg} ({per_sec}, {eta} left)",
        )
        .expect("progress template"),
    );
    let r = rt.block_on(export::export_observed(
        &l,
        &target,
        req,
        |report, through| {
            if let (Some(first), Some(last)) = (report.first_seq, report.last_seq) {
                bar.set_length(last - first + 1);
                bar.set_position(through + 1 - first);
                bar.set_message(format!("{} files", report.files.len()));
            }
        },
    ));
    bar.finish_and_clear();
    rt.shutdown_timeout(Duration::from_secs(5));
    let report = r?;
    println!("{}", serde_json::to_string(&report).expect("JSON"));
    Ok(())
}

fn publish_status(dir: PathBuf, json: bool) -> Out {
    let ledger = Ledger::open_read_only(&dir)?;
    let all = fsfeed_delivery::status::read_all(&ledger)?;
    let mut out = io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&all).expect("status JSON")
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<9} {:<8} {:>12} {:>10} {:>10} {:>8}  LAST ERROR",
        "PUBLISHER", "STATE", "ALIVE", "COMMITTED", "LAG", "PUSHED", "FAILED"
    )?;
    for s in all {
        writeln!(
            out,
            "{:<20} {:<9} {:<8} {:>12} {:>10} {:>10} {:>8}  {}",
            s.name,
            s.state.name(),
            if s.alive == Some(true) { "yes" } else { "no" },
            s.committed
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            s.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            s.counters.push_ok,
            s.counters.push_fail,
            s.last_error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
