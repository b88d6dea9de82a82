// Cursor listing and deletion, retention, checksums, checkpoints, resync
// and the Parquet export: what the CLI and the Rust API offer (#19 parity).
import assert from 'node:assert/strict'
import { existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { createRequire } from 'node:module'
import { commit, dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger } = require('..')

async function rejectsWith(p, code) {
  await assert.rejects(p, (e) => e.code === code)
}

test('cursors are listed and deleted', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch([commit('a'), commit('b', 1), commit('c', 2)])
  led.cursor('etl', { start: 'earliest' }).commit({ seq: 2, sub: 0 })
  led.cursor('audit', { start: 'latest' }).commit()
  const got = Object.fromEntries(led.cursors().map((c) => [c.name, c]))
  assert.deepEqual(Object.keys(got).sort(), ['audit', 'etl'])
  assert.deepEqual(got.etl.position, { seq: 2, sub: 0 })
  assert.equal(got.etl.lag, 2)
  assert.equal(got.audit.store, 'writer')
  assert.equal(led.deleteCursor('etl'), true)
  assert.equal(led.deleteCursor('etl'), false)
  assert.throws(() => led.deleteCursor('no/slash'), (e) => e.code === 'invalid_argument')
  assert.throws(() => led.deleteCursor(3), (e) => e.code === 'invalid_argument')
  assert.deepEqual(led.cursors().map((c) => c.name), ['audit'])
  led.close()
})

test('setRetention drops at once; bad settings change nothing', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch(Array.from({ length: 10 }, (_, i) => commit(`k${i}`, i)))
  assert.equal(led.retention.max_events, null)
  led.setRetention({ maxEvents: 4 })
  assert.equal(led.firstSeq, 7)
  assert.equal(led.retention.max_events, 4)
  for (const bad of [{ maxEvents: -1 }, { nope: 1 }]) {
    assert.throws(() => led.setRetention(bad), (e) => ['invalid_config', 'invalid_argument'].includes(e.code))
  }
  assert.throws(() => led.setRetention('four'), (e) => e.code === 'invalid_argument')
  assert.equal(led.retention.max_events, 4)
  assert.equal(led.firstSeq, 7)
  led.close()
})

test('replicas fed the same ops have the same checksum; a checkpoint opens as a copy', async () => {
  const sums = []
  const paths = [dir(), dir()]
  for (const p of paths) {
    const led = Ledger.open(p, { retention: { maxEvents: 8 } })
    for (let i = 0; i < 20; i++) await led.append(commit(`k${i}`, i))
    sums.push(led.checksum())
    led.close()
  }
  assert.equal(typeof sums[0], 'bigint')
  assert.equal(sums[0], sums[1])
  const b = Ledger.open(paths[1])
  const v = b.verify()
  assert.deepEqual([v.events, v.first_seq, v.head_seq], [8, 13, 20])
  assert.ok(v.keys > 8)
  b.close()
  assert.throws(() => b.verify(), (e) => e.code === 'ledger_closed')
  const led = Ledger.open(paths[0])
  const copy = join(dirname(paths[0]), 'copy')
  await led.checkpoint(copy)
  await rejectsWith(led.checkpoint(copy), 'invalid_argument') // not empty
  await rejectsWith(led.checkpoint(3), 'invalid_argument')
  led.close()
  const c = Ledger.open(copy)
  assert.equal(c.checksum(), sums[0])
  c.close()
  const reader = Ledger.open(paths[1], { readOnly: true })
  assert.throws(() => reader.setRetention({ maxEvents: 1 }), (e) => e.code === 'read_only')
  reader.close()
})

test('resync lists the live tree at the head, then goes on', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch([commit('a'), commit('b', 1), { kind: 'delete', volume: 'vol1', bucket: 'b1', key: 'a', time_us: 5 }])
  const cur = led.cursor(null, { start: 'latest' })
  await cur.resync()
  const b = await cur.read({ max: 100, timeoutMs: 0 })
  assert.deepEqual(b.records.map((r) => [r.key, r.resync]), [['b', true]])
  await led.append(commit('c', 3))
  const next = await cur.read({ max: 100, timeoutMs: 0 })
  assert.deepEqual(next.records.map((r) => r.key), ['c'])
  led.close()
})

test('exportParquet writes the range as Parquet files and checks its options', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch(Array.from({ length: 5 }, (_, i) => commit(`k${i}`, i)))
  const out = join(dirname(dir()), 'export')
  const r = await led.exportParquet(out, { since: 2, cursor: 'nightly' })
  assert.equal(r.rows, 4)
  assert.equal(r.first_seq, 2)
  assert.equal(r.last_seq, 5)
  assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.parquet')), r.files.map((f) => f.split('/').pop()))
  // Nothing new since the cursor: nothing written.
  const again = await led.exportParquet(out, { cursor: 'nightly' })
  assert.equal(again.rows, 0)
  await rejectsWith(led.exportParquet(out, { nope: 1 }), 'invalid_argument')
  await rejectsWith(led.exportParquet(out, { since: 'earliest' }), 'invalid_argument')
  await rejectsWith(led.exportParquet(3), 'invalid_argument')
  const store = join(dirname(out), 'store.toml')
  writeFileSync(store, 'endpoint = 3\n')
  await rejectsWith(led.exportParquet('s3://bucket/x', { store }), 'invalid_config')
  mkdirSync(join(dirname(out), 'unused'), { recursive: true })
  assert.ok(existsSync(out))
  led.close()
})

test('tree lists an FSO bucket with each file state', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  const t = 1_767_225_600_000_000
  await led.appendBatch([
    { kind: 'create_directory', bucket: 'b', key: 'd', layout: 'fso', time_us: t },
    { kind: 'create_file', bucket: 'b', key: 'd/f', layout: 'fso', time_us: t + 1 },
    { kind: 'commit', bucket: 'b', key: 'd/f', layout: 'fso', time_us: t + 2, size: 7, mtime: 1234 },
    { kind: 'rename', bucket: 'b', key: 'd', to_key: 'e', layout: 'fso', is_dir: true, time_us: t + 3 },
  ])
  const tree = led.tree('b')
  assert.deepEqual(tree.map((e) => [e.path, e.is_dir, e.size, e.mtime_ms]), [
    ['e', true, undefined, undefined],
    ['e/f', false, 7, 1234],
  ])
  assert.deepEqual(led.tree('b', { seq: 2 }).map((e) => e.path), ['d', 'd/f'])
  assert.deepEqual(led.tree('other'), [])
  assert.throws(() => led.tree('b', { seq: 99 }), (e) => e.code === 'invalid_argument')
  assert.throws(() => led.tree('b', { seq: -1 }), (e) => e.code === 'invalid_argument')
  assert.throws(() => led.tree('b', { seq: 'x' }), (e) => e.code === 'invalid_argument')
  assert.throws(() => led.tree('b', { nope: 1 }), (e) => e.code === 'invalid_argument')
  assert.throws(() => led.tree(3), (e) => e.code === 'invalid_argument')
  led.close()
})
