import assert from 'node:assert/strict'
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger, watch } = require('..')

test('watch appends what happens to a tree, sync waits for it, stop gives the counters', async () => {
  const ledgerDir = dir()
  const root = join(dirname(ledgerDir), 'photos')
  mkdirSync(join(root, 'a'), { recursive: true })
  writeFileSync(join(root, 'a', 'before.txt'), 'here before')
  const led = Ledger.open(ledgerDir, { durability: 'buffered' })
  const w = await watch(root, led, { ignore: ['*.tmp'] })
  assert.equal(w.bucket, 'photos')
  assert.equal(w.root, root)
  // The start listed what was there.
  assert.deepEqual(led.tree('photos').map((e) => [e.path, e.size]), [
    ['a', undefined],
    ['a/before.txt', 11],
  ])
  writeFileSync(join(root, 'a', 'new.txt'), 'twelve bytes')
  writeFileSync(join(root, 'skipped.tmp'), 'ignored')
  renameSync(join(root, 'a'), join(root, 'b'))
  await w.sync()
  assert.deepEqual(led.tree('photos').map((e) => [e.path, e.size]), [
    ['b', undefined],
    ['b/before.txt', 11],
    ['b/new.txt', 12],
  ])
  const c = w.counters()
  assert.ok(c.events > 0 && c.ops > 0 && c.ignored > 0, JSON.stringify(c))
  assert.equal(c.last_seq, led.stats().head_seq)
  const end = await w.stop()
  assert.equal(end.ops, c.ops)
  await assert.rejects(w.stop(), (e) => e.code === 'invalid_argument')
  await assert.rejects(w.sync(), (e) => e.code === 'invalid_argument')
  led.close()
})

test('watch refuses bad input with a typed error and appends nothing', async () => {
  const ledgerDir = dir()
  const root = join(dirname(ledgerDir), 'tree')
  mkdirSync(root)
  const led = Ledger.open(ledgerDir, { durability: 'buffered' })
  const bad = [
    [join(root, 'missing'), led, undefined],
    [root, led, { bucket: 'a/b' }],
    [root, led, { ignore: ['[unclosed'] }],
    [root, led, { ignore: 'x' }],
    [root, led, { rescanInterval: 0 }],
    [root, led, { rescanInterval: 'soon' }],
    [root, led, { nope: 1 }],
    [root, led, 3],
    [root, ledgerDir, undefined],
    [7, led, undefined],
  ]
  for (const [p, l, o] of bad) {
    await assert.rejects(watch(p, l, o), (e) => e.code === 'invalid_argument', JSON.stringify([p, o]))
  }
  assert.equal(led.stats().head_seq, 0)
  // A removed root ends the watcher: sync rejects with `io`.
  writeFileSync(join(root, 'f'), 'x')
  const w = await watch(root, led)
  rmSync(root, { recursive: true })
  await assert.rejects(w.sync(5), (e) => e.code === 'io')
  led.close()
})
