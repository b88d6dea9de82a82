import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import { commit, dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger } = require('..')
const INDEX = require.resolve('..')

/**
 * `p`, or a failure after `ms`. Subscriptions do not keep the process alive
 * (by design), so a test waiting on one holds this timer to stay alive.
 */
function within(p, ms = 10000) {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

test('a setInterval keeps ticking while a read waits', async () => {
  const led = Ledger.open(dir())
  const c = led.cursor(null, { start: 'latest' })
  let ticks = 0
  const iv = setInterval(() => ticks++, 5)
  setTimeout(() => led.append(commit('late')), 150)
  const b = await c.read()
  clearInterval(iv)
  assert.deepEqual(b.records.map((r) => r.key), ['late'])
  assert.ok(ticks >= 10, `only ${ticks} ticks: the event loop was blocked`)
  const empty = await c.read({ timeoutMs: 50 })
  assert.equal(empty.empty, true)
  led.close()
})

test('for await yields batches in order; many waiting readers share one notifier', async () => {
  const led = Ledger.open(dir())
  const readers = Array.from({ length: 50 }, () => led.cursor(null, { start: 'latest' }))
  const firsts = readers.map(async (c) => {
    for await (const b of c) return b.records[0].key
  })
  await sleep(50)
  await led.append(commit('x'))
  assert.deepEqual(await Promise.all(firsts), Array(50).fill('x'))
  const c = led.cursor(null, { start: 'earliest' })
  const seen = []
  setTimeout(() => led.appendBatch([commit('y', 1), commit('z', 2)]), 30)
  for await (const b of c) {
    seen.push(...b.records.map((r) => r.key))
    if (seen.length >= 3) break
  }
  assert.deepEqual(seen, ['x', 'y', 'z'])
  led.close()
})

test('a pending read rejects when the ledger closes', async () => {
  const led = Ledger.open(dir())
  const p = led.cursor(null, { start: 'latest' }).read()
  setTimeout(() => led.close(), 30)
  await assert.rejects(p, { code: 'ledger_closed' })
})

test('a subscription delivers in order, commits on return, and stops promptly', async () => {
  const led = Ledger.open(dir())
  await led.appendBatch(Array.from({ length: 5 }, (_, i) => commit(`k${i}`, i)))
  const seen = []
  let done
  const eight = new Promise((r) => (done = r))
  const sub = led.cursor('sub').subscribe(
    async (b) => {
      await sleep(1)
      seen.push(...b.records.map((r) => r.seq))
      if (seen.length >= 8) done()
    },
    { max: 2 },
  )
  assert.equal(sub.running, true)
  await led.appendBatch([commit('j0'), commit('j1', 1), commit('j2', 2)])
  await within(eight)
  const t = Date.now()
  await within(sub.stop())
  assert.ok(Date.now() - t < 1000)
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8])
  assert.equal((await led.cursor('sub').read({ timeoutMs: 0 })).empty, true)
  led.close()
})

test('a throwing callback stops the subscription; stop() rejects with its error', async () => {
  const led = Ledger.open(dir())
  await led.append(commit('a'))
  const boom = new Error('bad batch')
  const sub = led.cursor('failing').subscribe(() => {
    throw boom
  })
  await assert.rejects(within(sub.join()), (e) => e === boom)
  assert.equal(sub.running, false)
  // Nothing committed: the batch is read again.
  assert.equal((await led.cursor('failing').read({ timeoutMs: 0 })).records[0].seq, 1)
  const c = led.cursor('owned')
  const s2 = c.subscribe(() => true)
  await assert.rejects(c.read({ timeoutMs: 0 }), { code: 'invalid_argument' })
  await within(s2.stop())
  led.close()
})

test('a subscription does not keep the process alive by itself', () => {
  const path = dir()
  Ledger.open(path).close()
  const script = `
    const { Ledger } = require(${JSON.stringify(INDEX)})
    const led = Ledger.open(${JSON.stringify(path)})
    led.cursor('bg').subscribe(() => true)
    console.log('subscribed')
  `
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 20000, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'subscribed')
})

test('a second process reads a ledger being written', async () => {
  const path = dir()
  const led = Ledger.open(path)
  await led.append(commit('before'))
  const script = `
    const { Ledger } = require(${JSON.stringify(INDEX)})
    ;(async () => {
      const led = Ledger.open(${JSON.stringify(path)}, { readOnly: true })
      const c = led.cursor('reader', { start: 'earliest' })
      const keys = []
      while (keys.length < 2) keys.push(...(await c.read({ timeoutMs: 10000 })).records.map((r) => r.key))
      c.commit()
      console.log(keys.join(','), led.readOnly)
      led.close()
    })()
  `
  const child = spawn(process.execPath, ['-e', script])
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const exited = new Promise((r) => child.on('exit', r))
  await sleep(300)
  await led.append(commit('after', 1))
  assert.equal(await exited, 0)
  assert.equal(out.trim(), 'before,after true')
  led.close()
})
