// Publisher (push delivery) and ChangeLog from Node. The publisher posts to a
// real HTTP server on loopback; the change log's uploads against a real S3
// server are tested in tests/changelog/test_node.py (moto's server).
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { createRequire } from 'node:module'
import { commit, dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger, Publisher, ChangeLog } = require('..')

function receiver() {
  const rx = { ids: [], status: 200 }
  rx.server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (rx.status === 200) for (const r of JSON.parse(body).Records) rx.ids.push(r.fsfeedEventData.eventId)
      res.writeHead(rx.status, { 'content-length': '0' })
      res.end()
    })
  })
  return new Promise((resolve) =>
    rx.server.listen(0, '127.0.0.1', () => {
      rx.url = `http://127.0.0.1:${rx.server.address().port}/events`
      resolve(rx)
    }),
  )
}

const config = (url) => `[[publisher]]\nname = "hook"\nendpoint = "${url}"\nbatch_max = 10\n`

async function expectedIds(led) {
  const b = await led.cursor(null, { start: 'earliest', format: 's3' }).read({ max: 1000, timeoutMs: 0 })
  return b.records.map((r) => r.fsfeedEventData.eventId)
}

test('runOnce delivers every record over HTTP and commits; a rejection rejects', async () => {
  const rx = await receiver()
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch(Array.from({ length: 25 }, (_, i) => commit(`k${i}`, i)))
  const pub = new Publisher(led, config(rx.url))
  await pub.runOnce()
  assert.deepEqual(rx.ids, await expectedIds(led))
  assert.equal(led.cursor('hook').lag(), 0)
  const [st] = pub.status()
  assert.equal(st.name, 'hook')
  assert.equal(st.counters.push_ok, 25)

  await led.append(commit('late', 99))
  rx.status = 403
  await assert.rejects(pub.runOnce(), (e) => e.code === 'publisher_failed' && /403/.test(e.message))
  assert.equal(pub.status()[0].state, 'parked')
  rx.status = 200
  await pub.runOnce()
  assert.deepEqual(rx.ids, await expectedIds(led))
  led.close()
  rx.server.close()
})

test('start and stop run the publishers on a thread of their own', async () => {
  const rx = await receiver()
  const path = dir()
  const led = Ledger.open(path, { durability: 'buffered' })
  // By path: the publisher opens the ledger read-only beside this writer.
  const pub = new Publisher(path, config(rx.url))
  pub.start()
  assert.equal(pub.running, true)
  assert.throws(() => pub.start(), (e) => e.code === 'invalid_argument')
  await led.appendBatch(Array.from({ length: 12 }, (_, i) => commit(`k${i}`, i)))
  const deadline = Date.now() + 30_000
  while (rx.ids.length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await pub.stop()
  assert.equal(pub.running, false)
  assert.deepEqual(rx.ids, await expectedIds(led))
  await pub.stop() // not running: nothing to do
  led.close()
  rx.server.close()
})

test('a leader function holds sending until it says true; a throw does not lead', async () => {
  const rx = await receiver()
  const led = Ledger.open(dir(), { durability: 'buffered' })
  await led.appendBatch(Array.from({ length: 15 }, (_, i) => commit(`k${i}`, i)))
  let leads = false
  let asked = 0
  const pub = new Publisher(led, config(rx.url), {
    leader: () => {
      asked++
      return leads
    },
  })
  pub.start()
  const until = async (what, f) => {
    const deadline = Date.now() + 30_000
    while (!f()) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  await until('standby', () => pub.status().map((s) => s.state).join() === 'standby' && asked > 0)
  await new Promise((r) => setTimeout(r, 300))
  assert.deepEqual(rx.ids, [])
  leads = true
  await until('delivered', () => rx.ids.length === 15)
  await pub.stop()
  assert.deepEqual(rx.ids, await expectedIds(led))

  await led.append(commit('late', 99))
  const broken = new Publisher(led, config(rx.url), {
    leader: () => {
      throw new Error('host bug')
    },
  })
  broken.start()
  await until('standby', () => broken.status().map((s) => s.state).join() === 'standby')
  await broken.stop()
  assert.equal(rx.ids.length, 15)
  assert.throws(() => new Publisher(led, config(rx.url), { leader: 3 }), (e) => e.code === 'invalid_argument')
  assert.throws(() => new Publisher(led, config(rx.url), { nope: 1 }), (e) => e.code === 'invalid_argument')
  led.close()
  rx.server.close()
})

test('bad configs and arguments are refused with their codes', async () => {
  const led = Ledger.open(dir(), { durability: 'buffered' })
  for (const text of ['', '[[publisher]]\nname = "a"\nendpoint = "gopher://h/"\n', '[[publisher]]\nname = "a"\nendpoint = "http://h/"\nbatch_max = 0\n']) {
    assert.throws(() => new Publisher(led, text), (e) => e.code === 'invalid_config', text)
  }
  assert.throws(() => new Publisher(led, 3), (e) => e.code === 'invalid_argument')
  assert.throws(() => new Publisher(3, config('http://h/')), (e) => e.code === 'invalid_argument')
  assert.throws(() => new Publisher(dir(), config('http://h/')), (e) => e.code === 'ledger_not_found')

  assert.throws(() => new ChangeLog('interval = "soon"\n'), (e) => e.code === 'invalid_config')
  assert.throws(() => new ChangeLog(3), (e) => e.code === 'invalid_argument')
  assert.throws(() => new ChangeLog('x', { nope: 1 }), (e) => e.code === 'invalid_argument')
  const cfgPath = join(dirname(dir()), 'changelog.toml')
  writeFileSync(
    cfgPath,
    '[[sources]]\nbucket = "b1"\n[dest]\nendpoint = "http://127.0.0.1:9"\nregion = "us-east-1"\nbucket = "cl"\naccess_key = "AK"\nsecret_key = "never-printed"\n',
  )
  const cl = new ChangeLog(cfgPath)
  assert.equal(cl.dest.bucket, 'cl')
  assert.equal(JSON.stringify(cl.dest).includes('never-printed'), false)
  assert.deepEqual(cl.destKeys(), { access_key: 'AK', secret_key: 'never-printed' })
  await assert.rejects(cl.runOnce(), (e) => e.code === 'invalid_argument' && /needs a ledger/.test(e.message))
  await assert.rejects(cl.fetch('yesterday', '2026-01-02T00:00:00Z'), (e) => e.code === 'invalid_argument')
  await assert.rejects(cl.fetch(new Date('nope'), new Date()), (e) => e.code === 'invalid_argument')
  await assert.rejects(cl.fetch('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', { net: 'yes' }), (e) => e.code === 'invalid_argument')
  led.close()
})
