import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createRequire } from 'node:module'
import http from 'node:http'
import { dir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { Ledger } = require('..')
const { serve } = require('../../../examples/node/sse.js')

test('the SSE example streams S3 events as they are appended', async () => {
  const led = Ledger.open(dir())
  const server = await serve(led, 0)
  const port = server.address().port
  const events = []
  // Each append waits for its own response, so nothing is in flight when the
  // server closes (an append still open then ends in "socket hang up").
  const get = (path) =>
    new Promise((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${port}${path}`, (res) => {
          res.resume()
          res.on('end', resolve)
        })
        .on('error', reject)
    })
  let driving = Promise.resolve()
  await new Promise((resolve, reject) => {
    const req = http.get(`http://127.0.0.1:${port}/events?prefix=in/`, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream')
      let buf = ''
      res.on('data', (d) => {
        buf += d
        let i
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i)
          buf = buf.slice(i + 2)
          const data = chunk.split('\n').find((l) => l.startsWith('data: '))
          if (data) events.push(JSON.parse(data.slice(6)))
          if (events.length === 2) {
            req.destroy()
            resolve()
          }
        }
      })
      // Once the stream is open, drive it through the service's own endpoint.
      driving = (async () => {
        for (const key of ['out/skip.txt', 'in/a.txt', 'in/b c.txt']) {
          await get(`/append?key=${encodeURIComponent(key)}`)
        }
      })()
      driving.catch(reject)
    })
    req.on('error', (e) => (e.code === 'ECONNRESET' ? resolve() : reject(e)))
  })
  await driving
  server.close()
  server.closeAllConnections()
  assert.deepEqual(
    events.map((e) => [e.eventName, e.s3.object.key]),
    [
      ['ObjectCreated:Put', 'in/a.txt'],
      ['ObjectCreated:Put', 'in/b+c.txt'],
    ],
  )
  led.close()
})
