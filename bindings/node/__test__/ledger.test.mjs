import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { createRequire } from 'node:module'
import { tableFromIPC } from 'apache-arrow'
import { T0, FIXTURES, commit, corpus, dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger, ERROR_CODES, eventId, positionFromEventId } = require('..')

test('append and appendBatch give dense seqs', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  assert.equal(await led.append(commit('a')), 1)
  assert.deepEqual(await led.appendBatch([commit('b', 1), commit('c', 2)]), [2, 3])
  assert.deepEqual(await led.appendBatch([]), [])
  assert.equal(led.headSeq, 3)
  assert.equal(led.firstSeq, 1)
  led.close()
})

test('the corpus reads back in every format, byte-equal to the golden fixtures', async () => {
  const led = Ledger.open(dir(), { durability: 'none' })
  const seqs = await led.appendBatch(corpus())
  const nat = await led.cursor(null, { start: 'earliest' }).read({ max: 10000, timeoutMs: 0 })
  assert.deepEqual(nat.records.map((r) => r.seq), seqs)
  const s3 = await led.cursor(null, { start: 'earliest', format: 's3' }).read({ max: 10000, timeoutMs: 0 })
  assert.deepEqual(s3.records, JSON.parse(readFileSync(join(FIXTURES, 's3-aws.json'), 'utf8')).Records)
  const hdfs = await led.cursor(null, { start: 'earliest', format: 'hdfs' }).read({ max: 10000, timeoutMs: 0 })
  assert.deepEqual(hdfs.records, JSON.parse(readFileSync(join(FIXTURES, 'hdfs.json'), 'utf8')))
  const ceph = await led
    .cursor(null, { start: 'earliest', format: 's3', s3Profile: 'ceph', s3Settings: { region: 'eu-1' } })
    .read({ timeoutMs: 0 })
  assert.equal(ceph.records[0].eventSource, 'ceph:s3')
  assert.equal(ceph.records[0].awsRegion, 'eu-1')
  led.close()
})

test('a named cursor commits and resumes; positions are plain objects', async () => {
  const path = dir()
  const led = Ledger.open(path)
  await led.appendBatch(Array.from({ length: 10 }, (_, i) => commit(`k${i}`, i)))
  const c = led.cursor('svc')
  const b = await c.read({ max: 4, timeoutMs: 0 })
  assert.deepEqual(b.records.map((r) => r.seq), [1, 2, 3, 4])
  c.commit(b.next)
  assert.deepEqual(JSON.parse(JSON.stringify(b.next)), { seq: 5, sub: 0 })
  assert.equal(c.lag(), 6)
  assert.equal(c.name, 'svc')
  const again = await led.cursor('svc').read({ timeoutMs: 0 })
  assert.deepEqual(again.records.map((r) => r.seq), [5, 6, 7, 8, 9, 10])
  c.seek(9)
  assert.deepEqual(c.position, { seq: 9, sub: 0 })
  assert.equal(led.stats().cursors[0].name, 'svc')
  led.close()
})

test('every start form', async () => {
  const led = Ledger.open(dir(), { durability: 'none' })
  await led.appendBatch(Array.from({ length: 5 }, (_, i) => ({ ...commit(`k${i}`), time_us: T0 + i * 1_000_000 })))
  const first = async (start) => (await led.cursor(null, { start }).read({ timeoutMs: 0 })).records[0]?.seq
  assert.equal(await first('earliest'), 1)
  assert.equal(await first('latest'), undefined)
  assert.equal(await first(3), 3)
  assert.equal(await first('3:0'), 3)
  assert.equal(await first({ seq: 4, sub: 0 }), 4)
  assert.equal(await first(new Date('2026-01-01T00:00:02Z')), 3)
  assert.equal(await first('2026-01-01T00:00:02Z'), 3)
  led.close()
})

test('filters, gaps and rename expansion are the core rules', async () => {
  const led = Ledger.open(dir(), { retention: { maxEvents: 3 } })
  await led.appendBatch(Array.from({ length: 10 }, (_, i) => commit(`k${i}`, i)))
  const b = await led.cursor(null, { start: 1 }).read({ timeoutMs: 0 })
  assert.deepEqual(b.gap, { expected: 1, actual: 8 })
  await assert.rejects(led.cursor(null, { start: 1, onGap: 'error' }).read({ timeoutMs: 0 }), { code: 'gap' })
  const f = await led.cursor(null, { start: 'earliest', filter: { suffix: '9' } }).read({ timeoutMs: 0 })
  assert.deepEqual(f.records.map((r) => r.key), ['k9'])
  led.close()

  const fso = Ledger.open(dir())
  // Three committed files, their directories only parents (an explicit
  // create_directory would add its dir/ marker's pair).
  const ops = [
    { kind: 'commit', key: 'myfiles/f1', size: 1 },
    { kind: 'commit', key: 'myfiles/f2', size: 2 },
    { kind: 'commit', key: 'myfiles/subdir/f1', size: 3 },
    { kind: 'rename', key: 'myfiles', to_key: 'myfiles-RENAMED' },
  ].map((o, i) => ({ ...o, volume: 'vol1', bucket: 'bucket1', layout: 'fso', time_us: T0 + i }))
  const seqs = await fso.appendBatch(ops)
  const x = await fso.cursor(null, { start: seqs[3], format: 's3', expandRenames: true }).read({ timeoutMs: 0 })
  assert.deepEqual(
    x.records.map((r) => `${r.eventName} ${r.fsfeedEventData.rawKey}`).sort(),
    [
      'ObjectCreated:Put myfiles-RENAMED/f1',
      'ObjectCreated:Put myfiles-RENAMED/f2',
      'ObjectCreated:Put myfiles-RENAMED/subdir/f1',
      'ObjectRemoved:Delete myfiles/f1',
      'ObjectRemoved:Delete myfiles/f2',
      'ObjectRemoved:Delete myfiles/subdir/f1',
    ],
  )
  fso.close()
})

test('history is Arrow IPC that apache-arrow reads; changes and stats', async () => {
  const led = Ledger.open(dir(), { durability: 'none' })
  await led.appendBatch(Array.from({ length: 1000 }, (_, i) => commit(`d/${i}`, i)))
  await led.append({ kind: 'delete', volume: 'vol1', bucket: 'b1', key: 'd/0', time_us: T0 + 5000 })
  const t = tableFromIPC(await led.history({ since: 101, until: 900, batchRows: 64 }))
  assert.equal(t.numRows, 800)
  assert.equal(Number(t.getChild('seq').get(0)), 101)
  assert.equal(t.getChild('kind').get(0), 'commit')
  const some = tableFromIPC(await led.history({ filter: { prefix: 'd/99' } }))
  assert.equal(some.numRows, 11)
  // The range history() plans with.
  assert.deepEqual(await led.historyRange({ since: 101, until: 900 }), [101, 900])
  assert.deepEqual(await led.historyRange(), [1, 1001])
  assert.equal(await led.historyRange({ since: 1002 }), null)
  for (const bad of [{ until: 'committed' }, { bogus: 1 }, { since: 'soon' }]) {
    await assert.rejects(led.historyRange(bad), (e) => e.code === 'invalid_argument')
  }
  const rows = await led.changes({ since: 1 })
  assert.equal(rows.length, 999)
  assert.equal(led.stats().head_seq, 1001)
  led.close()
})

test('every bad input rejects or throws with its code, and writes nothing', async () => {
  assert.deepEqual(new Set(ERROR_CODES).size, 25)
  const path = dir()
  const led = Ledger.open(path)
  const code = async (code, f) => {
    let err
    try {
      await f()
    } catch (e) {
      err = e
    }
    assert.ok(err instanceof Error, `expected ${code}`)
    assert.equal(err.code, code, err.message)
    // The code is a property set where the error is made, not a message prefix.
    assert.ok(!err.message.startsWith('['), err.message)
    assert.ok(err.message.length > 0)
  }
  await code('unknown_kind', () => led.append({ kind: 'nope', volume: 'v', time_us: 1 }))
  await code('invalid_op', () => led.append({ kind: 'commit', volume: 'v', bucket: 'b', key: 'k' }))
  await code('invalid_op', () => led.append('not an op'))
  await code('invalid_key', () => led.append({ ...commit('x'), key: '' }))
  await code('invalid_key', () => led.appendBatch([commit('ok'), { ...commit('x'), key: '' }]))
  await code('invalid_argument', () => led.appendBatch({ kind: 'commit' }))
  for (const opts of [
    { format: 'xml' },
    { format: 'native', s3Profile: 'aws' },
    { format: 's3', s3Profile: 'azure' },
    { format: 's3', s3Settings: { colour: 'red' } },
    { onGap: 'ignore' },
    { start: 'yesterday' },
    { start: -3 },
    { start: 0 },
    { start: 1.5 },
    { start: true },
    { start: new Date('nope') },
    { filter: { colour: 'red' } },
    { filter: { events: ['s3:Nope:*'] } },
    { colour: 'red' },
  ]) {
    await code('invalid_argument', () => led.cursor('c', opts))
  }
  await code('invalid_argument', () => led.cursor(42))
  const c = led.cursor('c')
  await code('invalid_argument', () => c.read({ max: -1 }))
  await code('invalid_argument', () => c.read({ max: 0 }))
  await code('invalid_argument', () => c.read({ max: 'ten' }))
  await code('invalid_argument', () => c.read({ timeoutMs: -5 }))
  await code('invalid_argument', () => c.read({ timeoutMs: Number.NaN }))
  await code('invalid_argument', () => c.commit('latest'))
  await code('invalid_argument', () => c.seek({}))
  await code('invalid_argument', () => c.subscribe('not a function'))
  await code('invalid_argument', () => c.subscribe(() => true, { max: 0 }))
  await code('invalid_argument', () => led.cursor().commit())
  for (const bad of ['', 'x', '0000000000000000-00000000', '000000000000000g-00000000', 'a'.repeat(10000)]) {
    await code('invalid_event_id', () => positionFromEventId(bad))
    await code('invalid_event_id', () => c.ack(bad))
  }
  await code('invalid_argument', () => c.ack(42))
  await code('invalid_argument', () => eventId({ seq: -1 }))
  await code('invalid_argument', () => led.history({ batchRows: 0 }))
  await code('invalid_argument', () => led.changes({}))
  await code('invalid_argument', () => Ledger.open(dir(), { durability: 'maybe' }))
  await code('invalid_argument', () => Ledger.open(dir(), { retention: { maxEvents: 0 } }))
  await code('invalid_argument', () => Ledger.open(dir(), { retention: { forever: 1 } }))
  await code('invalid_argument', () => Ledger.open(dir(), { colour: 'red' }))
  await code('invalid_argument', () => Ledger.open(42))
  await code('ledger_not_found', () => Ledger.open(dir(), { create: false }))
  await code('ledger_locked', () => Ledger.open(path))
  // A batch that renames a directory away and then deletes a path below
  // its old name: path_gone, and none of the batch is written.
  const fso = (o, i) => ({ volume: 'v', bucket: 'b', layout: 'fso', time_us: 1 + i, ...o })
  await code('path_gone', () =>
    led.appendBatch(
      [
        { kind: 'create_directory', key: 'd' },
        { kind: 'rename', key: 'd', to_key: 'e', is_dir: true },
        { kind: 'delete', key: 'd/f' },
      ].map(fso),
    ),
  )
  assert.equal(led.headSeq, 0)
  assert.deepEqual(led.stats().cursors, [])
  led.close()
  await code('ledger_closed', () => led.append(commit('x')))
  await code('ledger_closed', () => c.read({ timeoutMs: 0 }))
  await code('ledger_closed', () => led.stats())
  await code('ledger_closed', () => led.headSeq)
})

test('event ids round-trip, name the record, and ack commits the position after it', async () => {
  const led = Ledger.open(dir())
  for (const p of [{ seq: 1, sub: 0 }, { seq: 42, sub: 7 }, { seq: 2 ** 52, sub: 2 ** 32 - 1 }]) {
    assert.deepEqual(positionFromEventId(eventId(p)), p)
  }
  for (let i = 0; i < 3; i++) await led.append(commit(`k${i}`, i))
  const c = led.cursor('svc', { format: 's3', start: 'earliest' })
  const recs = (await c.read({ timeoutMs: 0 })).records
  assert.deepEqual(positionFromEventId(recs[1].fsfeedEventData.eventId), { seq: 2, sub: 0 })
  assert.deepEqual(c.ack(recs[1].fsfeedEventData.eventId), { seq: 3, sub: 0 })
  const again = led.cursor('svc', { format: 's3' })
  assert.deepEqual((await again.read({ timeoutMs: 0 })).records.map((r) => r.s3.object.key), ['k2'])
  led.close()
})

test('segments: on by default, seal() seals complete runs, { segments: false } removes them', async () => {
  const path = dir()
  const led = Ledger.open(path, { durability: 'none' })
  assert.equal(led.segments, true)
  const n = 65_536 + 10
  for (let start = 0; start < n; start += 10_000) {
    const ops = []
    for (let i = start; i < Math.min(n, start + 10_000); i++) ops.push(commit(`k${i}`, i))
    await led.appendBatch(ops)
  }
  assert.equal(await led.seal(), 65_536)
  assert.equal(led.sealedSeq, 65_536)
  assert.ok(existsSync(join(path, 'segments', '00000000000000000001-00000000000000065536.parquet')))
  const t = tableFromIPC(await led.history())
  assert.equal(t.numRows, n)
  led.close()
  const off = Ledger.open(path, { durability: 'none', segments: false })
  assert.equal(off.segments, false)
  assert.equal(off.sealedSeq, 0)
  assert.ok(!existsSync(join(path, 'segments')))
  off.close()
  let err
  try {
    Ledger.open(path, { segments: 'no' })
  } catch (e) {
    err = e
  }
  assert.equal(err?.code, 'invalid_argument')
  assert.match(err.message, /segments must be a boolean/)
})
