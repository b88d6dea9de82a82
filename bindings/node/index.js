'use strict'
/**
 * fsfeed for Node: a thin layer over the native addon (the Rust core).
 *
 * What lives here is JavaScript plumbing only: async iteration and Date
 * starts as RFC 3339 strings. Formats, filters, gaps, expansion and errors
 * are the core's: the native layer throws (or rejects with) `Error`s whose
 * `code` property is the core's code.
 */
const native = require('./fsfeed.node')

function invalid(message) {
  const e = new TypeError(message)
  e.code = 'invalid_argument'
  return e
}

/** A start as the native layer takes it: Dates become RFC 3339 strings. */
function start(s) {
  if (s instanceof Date) {
    if (Number.isNaN(s.getTime())) throw invalid('start is an invalid Date')
    return s.toISOString()
  }
  return s
}

function numbers(options, keys) {
  const o = options == null ? {} : options
  if (typeof o !== 'object') throw invalid('options must be an object')
  for (const k of keys) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'number') {
      throw invalid(`${k} must be a number, not ${typeof o[k]}`)
    }
  }
  return o
}

function withStarts(options, keys) {
  if (options == null || typeof options !== 'object') return options
  const out = { ...options }
  for (const k of keys) if (k in out) out[k] = start(out[k])
  return out
}

/** A batch from the native JSON text (V8 builds the objects). */
function batch(text) {
  const b = JSON.parse(text)
  b.empty = b.records.length === 0 && b.gap == null
  return b
}

class Subscription {
  constructor(cursor, callback, options) {
    this._error = undefined
    // One batch at a time: the native side waits for `ack` before the next.
    const ack = (ok) => this._native.ack(ok)
    const deliver = (b) => {
      let r
      try {
        r = callback(batch(b))
      } catch (e) {
        this._error = e
        ack(false)
        return
      }
      Promise.resolve(r).then(
        () => ack(true),
        (e) => {
          this._error = e
          ack(false)
        },
      )
    }
    const o = numbers(options, ['max', 'maxWaitMs'])
    this._native = cursor._native.subscribe(deliver, o.max ?? undefined, o.maxWaitMs ?? undefined)
  }

  get running() {
    return this._native.running
  }

  async _end(stop) {
    try {
      await this._native.end(stop)
    } catch (e) {
      throw this._error !== undefined ? this._error : e
    }
  }

  /** Stop promptly; rejects with what stopped it, if anything did. */
  stop() {
    return this._end(true)
  }

  /** Wait until the subscription ends by itself (an error), and reject with it. */
  join() {
    return this._end(false)
  }
}

class Cursor {
  constructor(n) {
    this._native = n
  }

  /** Up to `max` records, waiting up to `timeoutMs` (none: until one arrives). */
  async read(options) {
    const o = numbers(options, ['max', 'timeoutMs'])
    return batch(await this._native.read(o.max ?? undefined, o.timeoutMs ?? undefined))
  }

  /** Non-empty batches, forever (ends only by `break` or an error). */
  async *[Symbol.asyncIterator]() {
    for (;;) {
      const b = await this.read({ max: 1000 })
      if (!b.empty) yield b
    }
  }

  commit(position) {
    return this._native.commit(position)
  }

  /** Consume the record an event id names: commit the position after it; returns that position. */
  ack(eventId) {
    if (typeof eventId !== 'string') throw invalid('eventId must be a string')
    return this._native.ack(eventId)
  }

  seek(s) {
    return this._native.seek(start(s))
  }

  /** Start over with the live tree at the head (records marked `resync`), then what follows. */
  resync() {
    return this._native.resync()
  }

  lag() {
    return this._native.lag()
  }

  get position() {
    return this._native.position
  }

  get name() {
    return this._native.name
  }

  /** Call `callback(batch)` for every batch; returning (or resolving) commits. */
  subscribe(callback, options) {
    if (typeof callback !== 'function') throw invalid('callback must be a function')
    return new Subscription(this, callback, options)
  }

  /** Benchmark baseline: records read and rendered by the Rust core alone. */
  _readCore(limit) {
    numbers({ limit }, ['limit'])
    return this._native.readCore(limit)
  }
}

class Ledger {
  constructor(n) {
    this._native = n
  }

  static open(path, options) {
    if (typeof path !== 'string') throw invalid('path must be a string')
    return new Ledger(native.NativeLedger.open(path, options))
  }

  append(op) {
    return this._native.append(op)
  }

  appendBatch(ops) {
    return this._native.appendBatch(ops)
  }

  cursor(name, options) {
    if (name != null && typeof name !== 'string') throw invalid('name must be a string or null')
    return new Cursor(this._native.cursor(name, withStarts(options, ['start'])))
  }

  history(options) {
    return this._native.history(withStarts(options, ['since', 'until']))
  }

  historyRange(options) {
    return this._native.historyRange(withStarts(options, ['since', 'until']))
  }

  changes(options) {
    return this._native.changes(withStarts(options, ['since']))
  }

  stats() {
    return this._native.stats()
  }

  /** Every named cursor: `[{name, position, lag, store, updated_us}]`. */
  cursors() {
    return this._native.cursors()
  }

  deleteCursor(name) {
    if (typeof name !== 'string') throw invalid('name must be a string')
    return this._native.deleteCursor(name)
  }

  setRetention(retention) {
    if (retention == null || typeof retention !== 'object') throw invalid('retention must be an object')
    return this._native.setRetention(retention)
  }

  get retention() {
    return this._native.retention
  }

  checksum() {
    return this._native.checksum()
  }

  verify() {
    return this._native.verify()
  }

  tree(bucket, options) {
    if (typeof bucket !== 'string') throw invalid('bucket must be a string')
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw invalid('options must be an object')
    }
    const { volume, seq, ...rest } = options ?? {}
    const unknown = Object.keys(rest)
    if (unknown.length) throw invalid(`unknown option ${unknown[0]}`)
    if (volume !== undefined && typeof volume !== 'string') throw invalid('volume must be a string')
    if (seq !== undefined && typeof seq !== 'number') throw invalid('seq must be a number')
    return this._native.tree(bucket, volume, seq)
  }

  checkpoint(dir) {
    if (typeof dir !== 'string') return Promise.reject(invalid('dir must be a string'))
    return this._native.checkpoint(dir)
  }

  exportParquet(dest, options) {
    if (typeof dest !== 'string') return Promise.reject(invalid('dest must be a string'))
    let o
    try {
      o = withStarts(options, ['since', 'until'])
    } catch (e) {
      return Promise.reject(e)
    }
    return this._native.exportParquet(dest, o)
  }

  get headSeq() {
    return this._native.headSeq
  }

  get firstSeq() {
    return this._native.firstSeq
  }

  /** Seal every complete run of seqs into its Parquet segment now. */
  seal() {
    return this._native.seal()
  }

  get sealedSeq() {
    return this._native.sealedSeq
  }

  get segments() {
    return this._native.segments
  }

  get readOnly() {
    return this._native.readOnly
  }

  get closed() {
    return this._native.closed
  }

  close() {
    return this._native.close()
  }
}

/** A ledger argument as the native layer takes it: the native ledger, or a path. */
function ledgerArgs(ledger, required) {
  if (ledger instanceof Ledger) return [ledger._native, null]
  if (typeof ledger === 'string') return [null, ledger]
  if (ledger == null && !required) return [null, null]
  throw invalid('ledger must be a Ledger or a path')
}

/**
 * The push publishers of a `fsfeed publish` config (delivery/README.md) over
 * a ledger of this process, or a path opened read-only beside the writer.
 */
class Publisher {
  /**
   * `options.leader`: a function returning `true` while this process leads
   * (your consensus leader); it gates every publisher instead of the
   * config's `gate` keys. A throw or any other value counts as not leading.
   */
  constructor(ledger, config, options) {
    if (typeof config !== 'string') throw invalid('config must be the TOML text')
    const o = options == null ? {} : options
    if (typeof o !== 'object') throw invalid('options must be an object')
    for (const k of Object.keys(o)) {
      if (k !== 'leader') throw invalid(`unknown Publisher option ${k}`)
    }
    let leader
    if (o.leader != null) {
      if (typeof o.leader !== 'function') throw invalid('leader must be a function returning a boolean')
      const f = o.leader
      leader = () => {
        try {
          return f() === true
        } catch {
          return false
        }
      }
    }
    this._native = native.NativePublisher.open(config, ...ledgerArgs(ledger, true), leader)
  }

  /** Every publisher to the head; rejects with the first failure. */
  runOnce() {
    return this._native.runOnce()
  }

  /** Run on a thread of their own until `stop()`. */
  start() {
    return this._native.start()
  }

  /** Finish and commit the batches in flight, then stop. */
  stop() {
    return this._native.stop()
  }

  get running() {
    return this._native.running
  }

  /** Every publisher's status, as `fsfeed publish status --json`. */
  status() {
    return this._native.status()
  }
}

/**
 * The change log for backup (changelog/README.md): `config` is a TOML file's
 * path or its text; `options.ledger` (a Ledger or a path) is needed to
 * upload and for `status()`, not for `fetch()`.
 */
class ChangeLog {
  constructor(config, options) {
    if (typeof config !== 'string') throw invalid('config must be a path or the TOML text')
    const o = options == null ? {} : options
    if (typeof o !== 'object') throw invalid('options must be an object')
    for (const k of Object.keys(o)) {
      if (k !== 'ledger') throw invalid(`unknown ChangeLog option ${k}`)
    }
    this._native = native.NativeChangeLog.open(config, ...ledgerArgs(o.ledger, false))
  }

  runOnce() {
    return this._native.runOnce()
  }

  status() {
    return this._native.status()
  }

  /** Records with op time in `[start, end)` (RFC 3339 strings or Dates) from the bucket. */
  fetch(start, end, options) {
    const o = options == null ? {} : options
    if (typeof o !== 'object') return Promise.reject(invalid('options must be an object'))
    let s, e
    try {
      s = typeof start === 'string' ? start : isoDate(start, 'start')
      e = typeof end === 'string' ? end : isoDate(end, 'end')
    } catch (err) {
      return Promise.reject(err)
    }
    if (o.net != null && typeof o.net !== 'boolean') return Promise.reject(invalid('net must be a boolean'))
    return this._native.fetch(s, e, o.net)
  }

  /** The `[dest]` table without its keys. */
  get dest() {
    return this._native.dest
  }

  /** The `[dest]` keys (secrets: keep them out of logs). */
  destKeys() {
    return this._native.destKeys()
  }
}

const WATCH_OPTIONS = ['bucket', 'volume', 'ignore', 'rescanInterval']

/**
 * A running watcher of a local tree (`watch()`), appending what happens to
 * it to a ledger's FSO bucket. `stop()` ends it.
 */
class Watch {
  constructor(n) {
    this._native = n
  }

  /** The watched directory, resolved. */
  get root() {
    return this._native.root
  }

  /** The bucket the ops go to. */
  get bucket() {
    return this._native.bucket
  }

  /** Events, ops, diff_ops, overflows, rescans, watches, ... so far. */
  counters() {
    return this._native.counters()
  }

  /** Resolves once everything done to the tree before the call is appended. */
  sync(timeout) {
    if (timeout != null && typeof timeout !== 'number') {
      return Promise.reject(invalid(`timeout must be a number of seconds, not ${typeof timeout}`))
    }
    return this._native.sync(timeout)
  }

  /** Stop watching (what was read is appended first); resolves with the counters. */
  stop() {
    try {
      return this._native.stop()
    } catch (e) {
      return Promise.reject(e)
    }
  }
}

/**
 * Watch the directory `path` with inotify and append what happens to it to
 * `ledger`, in an FSO bucket named after the tree (the `fsfeed-watch`
 * crate's docs have the table). Resolves with a running `Watch` once the
 * tree is listed, watched and diffed against the namespace.
 */
function watch(path, ledger, options) {
  try {
    if (typeof path !== 'string') throw invalid('path must be a string')
    if (!(ledger instanceof Ledger)) throw invalid('ledger must be a Ledger')
    const o = options == null ? {} : options
    if (typeof o !== 'object') throw invalid('options must be an object')
    for (const k of Object.keys(o)) {
      if (!WATCH_OPTIONS.includes(k)) throw invalid(`unknown watch option ${k}`)
    }
    for (const k of ['bucket', 'volume']) {
      if (o[k] != null && typeof o[k] !== 'string') throw invalid(`${k} must be a string`)
    }
    if (o.ignore != null && !(Array.isArray(o.ignore) && o.ignore.every((g) => typeof g === 'string'))) {
      throw invalid('ignore must be an array of glob strings')
    }
    if (o.rescanInterval != null && typeof o.rescanInterval !== 'number') {
      throw invalid('rescanInterval must be a number of seconds')
    }
    const n = native.NativeWatch.open(path, ledger._native, o.volume, o.bucket, o.ignore, o.rescanInterval)
    return n.start().then(() => new Watch(n))
  } catch (e) {
    return Promise.reject(e)
  }
}

function isoDate(d, name) {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) {
    throw invalid(`${name} must be an RFC 3339 string or a valid Date`)
  }
  return d.toISOString()
}

/** The event id (an S3 record's `eventId`) of the record at `{seq, sub}`. */
function eventId(position) {
  return native.eventId(position)
}

/** The position `{seq, sub}` of the record an event id names. */
function positionFromEventId(id) {
  if (typeof id !== 'string') throw invalid('event id must be a string')
  return native.positionFromEventId(id)
}

module.exports = {
  Ledger,
  Cursor,
  Subscription,
  Publisher,
  ChangeLog,
  Watch,
  watch,
  eventId,
  positionFromEventId,
  ERROR_CODES: native.errorCodes(),
}
