/// <reference types="node" />
/**
 * fsfeed for Node: a durable, replayable change feed for filesystems and
 * object stores. Records are the Rust core's renderings, typed per format.
 */

/** The core's stable error codes (`err.code`). */
export type ErrorCode =
  | 'invalid_op'
  | 'invalid_json'
  | 'unknown_kind'
  | 'invalid_key'
  | 'txid_not_increasing'
  | 'rename_to_self'
  | 'unknown_parent'
  | 'already_exists'
  | 'directory_not_empty'
  | 'rename_into_subtree'
  | 'path_gone'
  | 'gap'
  | 'ledger_closed'
  | 'ledger_locked'
  | 'ledger_not_found'
  | 'read_only'
  | 'position_out_of_range'
  | 'invalid_argument'
  | 'invalid_event_id'
  | 'callback_failed'
  | 'storage'
  | 'disk_full'
  | 'io'
  | 'corrupt'
  | 'unsupported_format'

/** Every error fsfeed raises is an `Error` with one of these codes. */
export interface FsfeedError extends Error {
  code: ErrorCode
}

export declare const ERROR_CODES: ErrorCode[]

/** The next record to read: event `seq`, record `sub` of its expansion. */
export interface Position {
  seq: number
  sub: number
}

/** `'earliest' | 'latest' | 'committed'`, a seq, `'SEQ:SUB'`, an RFC 3339 time, a Date, or a position. */
export type Start = 'earliest' | 'latest' | 'committed' | number | string | Date | Position

/** An op in the canonical JSON form (`kind` plus flat fields; `time_us` required). */
export interface Op {
  kind:
    | 'create_file'
    | 'create_directory'
    | 'commit'
    | 'append'
    | 'truncate'
    | 'delete'
    | 'rename'
    | 'acl_add'
    | 'acl_remove'
    | 'acl_set'
    | 'set_times'
    | 'set_attr'
    | 'volume_create'
    | 'volume_delete'
    | 'bucket_create'
    | 'bucket_delete'
  volume: string
  bucket?: string
  key?: string
  time_us: number
  [field: string]: unknown
}

export interface RetentionOptions {
  maxEvents?: number
  /** Seconds of op time. */
  maxAge?: number
  maxBytes?: number
  keepForCursors?: boolean
  hardMaxEvents?: number
  hardMaxBytes?: number
}

export interface OpenOptions {
  retention?: RetentionOptions
  durability?: 'sync' | 'buffered' | 'none'
  readOnly?: boolean
  create?: boolean
  /**
   * Seal complete runs of 65,536 seqs into Parquet files under
   * `LEDGER/segments/` (stored; a new ledger: on). `false` removes them.
   */
  segments?: boolean
}

export interface Filter {
  buckets?: string[]
  prefix?: string
  suffix?: string
  kinds?: string[]
  /** S3 event names or patterns: `s3:ObjectCreated:*`. */
  events?: string[]
}

export interface S3Settings {
  profile?: 'aws' | 'ceph' | 'minio'
  region?: string
  event_source?: string
  configuration_id?: string
  bucket_owner?: string
  arn_prefix?: string
  /** Also write fsfeed's own event kinds (renames, truncates, ACL and metadata changes, bucket ops). */
  extensions?: boolean
}

export type Format = 'native' | 's3' | 'hdfs'

export interface CursorOptions<F extends Format = 'native'> {
  start?: Start
  format?: F
  s3Profile?: 'aws' | 'ceph' | 'minio'
  s3Settings?: S3Settings
  filter?: Filter
  onGap?: 'report' | 'error' | 'resync'
  expandRenames?: boolean
  expandDeletes?: boolean
}

/** A stored event: the op's fields plus where and what it is. */
export interface NativeRecord {
  seq: number
  sub: number
  kind: Op['kind']
  volume: string
  bucket?: string
  key?: string
  path?: string
  time_us: number
  /** Object-store and legacy buckets, on an op that names no size or eTag
   * itself (ACL changes, times, attributes, a rename): what the live index
   * knew of the object then, each only when known. */
  object_size?: number
  object_etag?: string
  /** There, a rename of a file created and never committed: it moves no S3
   * object (`unlisted`), and `replaced` when it replaced one that was. */
  unlisted?: true
  replaced?: true
  /** There, a recursive delete, a directory's rename or a bucket's delete:
   * how many live index entries it took (its own, then every key below it). */
  below?: number
  [field: string]: unknown
}

/** One S3 event record (what goes inside `"Records"`). */
export interface S3Record {
  eventVersion: string
  eventSource: string
  awsRegion: string
  eventTime: string
  eventName: string
  userIdentity: { principalId: string }
  requestParameters: { sourceIPAddress: string }
  responseElements: { 'x-amz-request-id': string; 'x-amz-id-2': string }
  s3: {
    s3SchemaVersion: string
    configurationId: string
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string }
    /** `size` and `eTag` only where the ledger knows them (never on deletes, as AWS). */
    object: { key: string; size?: number; eTag?: string; versionId?: string; sequencer: string }
  }
  fsfeedEventData: {
    seq: number
    sub: number
    eventId: string
    op: string
    layout: string
    rawKey: string
    isDirectory: boolean
    isRecursive: boolean
    [field: string]: unknown
  }
}

/** One HDFS inotify event batch, Java field names. */
export interface HdfsBatch {
  txid: number
  events: Array<{ eventType: string; [field: string]: unknown }>
}

export type RecordOf<F extends Format> = F extends 's3' ? S3Record : F extends 'hdfs' ? HdfsBatch : NativeRecord

export interface Gap {
  /** The seq the cursor wanted next. */
  expected: number
  /** The first seq the ledger still held. */
  actual: number
}

export interface Batch<R> {
  records: R[]
  gap: Gap | null
  /** Commit this once the batch is handled. */
  next: Position
  empty: boolean
}

export interface ReadOptions {
  max?: number
  timeoutMs?: number
}

export interface SubscribeOptions {
  max?: number
  maxWaitMs?: number
}

export declare class Subscription {
  readonly running: boolean
  /** Stop promptly; rejects with what stopped it, if anything did. */
  stop(): Promise<void>
  /** Wait until it ends by itself (an error), and reject with it. */
  join(): Promise<void>
}

export declare class Cursor<R = NativeRecord> implements AsyncIterable<Batch<R>> {
  /** Resolves as soon as there is a record, or empty after `timeoutMs`. Never blocks the event loop. */
  read(options?: ReadOptions): Promise<Batch<R>>
  [Symbol.asyncIterator](): AsyncIterator<Batch<R>>
  commit(position?: Position | number): void
  /** Consume the record an event id names: commit the position after it; returns that position. */
  ack(eventId: string): Position
  seek(start: Start): void
  lag(): number
  /** Start over with the live tree at the head (records marked `resync`), then the events after it. */
  resync(): Promise<void>
  readonly position: Position
  readonly name: string | null
  /** Returning (or resolving) commits the batch; a throw or rejection stops the subscription. */
  subscribe(callback: (batch: Batch<R>) => unknown, options?: SubscribeOptions): Subscription
}

export interface HistoryOptions {
  since?: Start
  until?: Start
  filter?: Filter
  batchRows?: number
}

/** One entry of an FSO bucket's tree (`Ledger.tree`); a file's state fields only when known. */
export interface TreeEntry {
  path: string
  object_id: number
  is_dir: boolean
  /** In the bucket's S3 view (a committed file, or a directory with its marker). */
  listed: boolean
  size?: number
  etag?: string
  version_id?: string
  /** Modification time, milliseconds since the epoch. */
  mtime_ms?: number
}

export interface CursorInfo {
  name: string
  position: Position
  lag: number
  /** `writer` (kept with the events) or `reader` (a file beside them). */
  store: 'writer' | 'reader'
  updated_us: number
}

export interface RetentionInfo {
  max_events: number | null
  max_age_us: number | null
  max_bytes: number | null
  keep_for_cursors: boolean
  hard_max_events: number | null
  hard_max_bytes: number | null
}

export interface ExportOptions {
  since?: number | Date | string
  until?: number | Date | string
  /** Only what is new since the last export with this cursor; it commits after each file. */
  cursor?: string
  /** A TOML file with the S3 endpoint and keys (the change log's `[dest]` keys but bucket and prefix). */
  store?: string
  /** Start at the first retained event when the range starts before it, instead of failing with `gap`. */
  skipGap?: boolean
}

export interface ExportReport {
  dest: string
  files: string[]
  copied: number
  rows: number
  bytes: number
  first_seq?: number
  last_seq?: number
  removed?: string[]
  committed?: Position
  gap?: { expected: number; actual: number }
}

export interface ChangeRow {
  change: 'NEW' | 'MODIFY' | 'RENAME' | 'DELETE'
  volume: string
  bucket: string
  key: string
  from_key?: string
}

/** The event id (an S3 record's `eventId`) of the record at a position. */
export declare function eventId(position: Position): string
/** The position of the record an event id names; `invalid_event_id` for anything else. */
export declare function positionFromEventId(eventId: string): Position

export declare class Ledger {
  static open(path: string, options?: OpenOptions): Ledger
  append(op: Op): Promise<number>
  appendBatch(ops: Op[]): Promise<number[]>
  cursor<F extends Format = 'native'>(name?: string | null, options?: CursorOptions<F>): Cursor<RecordOf<F>>
  /** Arrow IPC stream bytes (`tableFromIPC` from apache-arrow). */
  history(options?: HistoryOptions): Promise<Buffer>
  /** The seqs `[first, last]` that `history({ since, until })` would read now; `null` for an empty range. */
  historyRange(options?: { since?: Start; until?: Start }): Promise<[number, number] | null>
  changes(options: { since: Start; until?: number }): Promise<ChangeRow[]>
  stats(): Record<string, unknown> & { head_seq: number; first_seq: number; events: number }
  /** Every named cursor, as `fsfeed cursors --json` lists them. */
  cursors(): CursorInfo[]
  /** Forget a named cursor (it no longer holds retention back); false when there was none. */
  deleteCursor(name: string): boolean
  /** Store new retention settings; what they drop is deleted at once. */
  setRetention(retention: RetentionOptions): void
  /** The retention settings in force. */
  readonly retention: RetentionInfo
  /** FNV-1a 64 over every retained event: replicas fed the same ops agree on it. */
  checksum(): bigint
  /** Every stored key read with its checksum verified: counts, or an error with code `corrupt`. */
  verify(): { first_seq: number; head_seq: number; events: number; keys: number }
  /** The tree of an FSO bucket at `seq` (default: the head), each directory before what is below it. */
  tree(bucket: string, options?: { volume?: string; seq?: number }): TreeEntry[]
  /** Copy a consistent snapshot of the ledger into `dir` (writer only). */
  checkpoint(dir: string): Promise<void>
  /** History as Parquet files in a directory or `s3://BUCKET[/PREFIX]`, as `fsfeed export --parquet`. */
  exportParquet(dest: string, options?: ExportOptions): Promise<ExportReport>
  readonly headSeq: number
  readonly firstSeq: number
  /** Seal every complete run of seqs into its Parquet segment now; resolves to the last seq sealed. */
  seal(): Promise<number>
  /** The last seq sealed into Parquet segments (0: none). */
  readonly sealedSeq: number
  /** Whether the ledger seals Parquet segments (its stored setting). */
  readonly segments: boolean
  readonly readOnly: boolean
  readonly closed: boolean
  /** Later calls fail with `ledger_closed`, waiting reads wake; once it returns the directory can be opened again. */
  close(): void
}

/**
 * The push publishers of a `fsfeed publish` config (delivery/README.md).
 * `leader` gates them all: they send only while it returns `true`.
 */
export declare class Publisher {
  /** `ledger`: a Ledger of this process, or a path opened read-only beside the writer. */
  constructor(ledger: Ledger | string, config: string, options?: { leader?: () => boolean })
  /** Every publisher to the head; rejects with the first failure (`publisher_failed` for a rejection). */
  runOnce(): Promise<void>
  /** Run on a thread of their own until `stop()`. */
  start(): void
  /** Finish and commit the batches in flight, then stop. */
  stop(): Promise<void>
  readonly running: boolean
  /** Every publisher's status, as `fsfeed publish status --json` prints it. */
  status(): Array<Record<string, unknown>>
}

/** What a watcher has done so far (`Watch.counters()`). */
export interface WatchCounters {
  events: number
  ops: number
  diff_ops: number
  overflows: number
  rescans: number
  watches: number
  watch_failures: number
  unwatched: number
  ignored: number
  skipped: number
  append_errors: number
  last_seq?: number
}

/** A running watcher of a local tree (`watch()`). */
export declare class Watch {
  /** The watched directory, resolved. */
  readonly root: string
  /** The bucket the ops go to. */
  readonly bucket: string
  counters(): WatchCounters
  /** Resolves once everything done to the tree before the call is appended; `io` after `timeout` seconds (60). */
  sync(timeout?: number): Promise<void>
  /** Stop watching (what was read is appended first); resolves with the counters. */
  stop(): Promise<WatchCounters>
}

/**
 * Watch the directory `path` with inotify and append what happens to it to
 * `ledger`, in an FSO bucket named after the tree; resolves once the tree is
 * listed, watched and diffed against the namespace.
 */
export declare function watch(
  path: string,
  ledger: Ledger,
  options?: { bucket?: string; volume?: string; ignore?: string[]; rescanInterval?: number },
): Promise<Watch>

/** The change log for backup (changelog/README.md). */
export declare class ChangeLog {
  /** `config`: a TOML file's path or its text. `ledger` is needed to upload and for `status()`. */
  constructor(config: string, options?: { ledger?: Ledger | string })
  /** Upload from the committed position to the head as it stood, then give the lease up. */
  runOnce(): Promise<{ objects: number; events: number; not_leader: boolean }>
  status(): Promise<Record<string, unknown>>
  /** Records with op time in `[start, end)`, read back from the bucket; `net`: one net change per object. */
  fetch(start: string | Date, end: string | Date, options?: { net?: boolean }): Promise<Array<Record<string, unknown>>>
  /** The `[dest]` table without its keys. */
  readonly dest: Record<string, unknown>
  /** The `[dest]` keys (secrets: keep them out of logs). */
  destKeys(): { access_key: string; secret_key: string }
}
