'use strict'
/**
 * fsfeed for Node: a thin layer over the native addon (the Rust core).
 *
 * What lives here is JavaScript plumbing only: async iteration, Date starts
 * as RFC 3339 strings, and the native errors' `[code] ` prefix moved into
 * `err.code`. Formats, filters, gaps and expansion are the core's.
 */
const native = require('./fsfeed.node')

const CODE = /^\[([a-z_]+)\] /

/** Move the core's `[code] ` prefix into `err.code`. */
function fix(e) {
  if (e instanceof Error) {
    const m = CODE.exec(e.message)
    if (m) {
      e.code = m[1]
      e.message = e.message.slice(m[0].length)
    }
  }
  return e
}

function call(f) {
  try {
    return f()
  } catch (e) {
    throw fix(e)
  }
}

async function wait(p) {
  try {
    return await p
  } catch (e) {
    throw fix(e)
  }
}

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
    this._native = call(() =>
      cursor._native.subscribe(deliver, o.max ?? undefined, o.maxWaitMs ?? undefined),
    )
  }

  get running() {
    return this._native.running
  }

  async _end(stop) {
    try {
      await this._native.end(stop)
    } catch (e) {
      throw this._error !== undefined ? this._error : fix(e)
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
    return batch(await wait(call(() => this._native.read(o.max ?? undefined, o.timeoutMs ?? undefined))))
  }

  /** Non-empty batches, forever (ends only by `break` or an error). */
  async *[Symbol.asyncIterator]() {
    for (;;) {
      const b = await this.read({ max: 1000 })
      if (!b.empty) yield b
    }
  }

  commit(position) {
    return call(() => this._native.commit(position))
  }

  /** Consume the record an event id names: commit the position after it; returns that position. */
  ack(eventId) {
    if (typeof eventId !== 'string') throw invalid('eventId must be a string')
    return call(() => this._native.ack(eventId))
  }

  seek(s) {
    return call(() => this._native.seek(start(s)))
  }

  lag() {
    return call(() => this._native.lag())
  }

  get position() {
    return call(() => this._native.position)
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
    return call(() => this._native.readCore(limit))
  }
}

class Ledger {
  constructor(n) {
    this._native = n
  }

  static open(path, options) {
    if (typeof path !== 'string') throw invalid('path must be a string')
    return new Ledger(call(() => native.NativeLedger.open(path, options)))
  }

  append(op) {
    return wait(call(() => this._native.append(op)))
  }

  appendBatch(ops) {
    return wait(call(() => this._native.appendBatch(ops)))
  }

  cursor(name, options) {
    if (name != null && typeof name !== 'string') throw invalid('name must be a string or null')
    return new Cursor(call(() => this._native.cursor(name, withStarts(options, ['start']))))
  }

  history(options) {
    return wait(call(() => this._native.history(withStarts(options, ['since', 'until']))))
  }

  changes(options) {
    return wait(call(() => this._native.changes(withStarts(options, ['since']))))
  }

  stats() {
    return call(() => this._native.stats())
  }

  get headSeq() {
    return call(() => this._native.headSeq)
  }

  get firstSeq() {
    return call(() => this._native.firstSeq)
  }

  get readOnly() {
    return this._native.readOnly
  }

  get closed() {
    return this._native.closed
  }

  close() {
    return call(() => this._native.close())
  }
}

/** The event id (an S3 record's `eventId`) of the record at `{seq, sub}`. */
function eventId(position) {
  return call(() => native.eventId(position))
}

/** The position `{seq, sub}` of the record an event id names. */
function positionFromEventId(id) {
  if (typeof id !== 'string') throw invalid('event id must be a string')
  return call(() => native.positionFromEventId(id))
}

module.exports = {
  Ledger,
  Cursor,
  Subscription,
  eventId,
  positionFromEventId,
  ERROR_CODES: native.errorCodes(),
}
