// @ts-check
/**
 * A small HTTP service that streams a cursor's S3 events as server-sent
 * events: `GET /events?prefix=a/` opens an ephemeral cursor at the head and
 * writes each S3 record as one `data:` line (with `id:` = its eventId, as an
 * EventSource reconnect id). `GET /append?key=K` appends a commit of K, so
 * the demo can be driven with curl.
 *
 *     node examples/node/sse.js LEDGER_DIR [PORT]
 */
'use strict'
const http = require('node:http')
const { Ledger } = require('../../bindings/node')

/**
 * Serve `ledger` on `port` (0: any free port); resolves to the server.
 * @param {import('../../bindings/node').Ledger} ledger
 * @param {number} port
 * @returns {Promise<http.Server>}
 */
function serve(ledger, port) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url || '/', 'http://localhost')
    if (url.pathname === '/append') {
      const key = url.searchParams.get('key') || 'demo.txt'
      try {
        const seq = await ledger.append({
          kind: 'commit',
          volume: 'vol1',
          bucket: 'demo',
          key,
          size: 1,
          time_us: Date.now() * 1000,
        })
        res.end(JSON.stringify({ seq }))
      } catch (e) {
        const err = /** @type {import('../../bindings/node').FsfeedError} */ (e)
        res.writeHead(400).end(JSON.stringify({ code: err.code, message: err.message }))
      }
      return
    }
    if (url.pathname !== '/events') {
      res.writeHead(404).end()
      return
    }
    const prefix = url.searchParams.get('prefix')
    const cursor = ledger.cursor(null, {
      start: 'latest',
      format: 's3',
      filter: prefix ? { prefix } : undefined,
    })
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(': fsfeed\n\n')
    let open = true
    req.on('close', () => (open = false))
    try {
      while (open) {
        const batch = await cursor.read({ timeoutMs: 1000 })
        for (const rec of batch.records) {
          res.write(`id: ${rec.fsfeedEventData.eventId}\nevent: ${rec.eventName}\ndata: ${JSON.stringify(rec)}\n\n`)
        }
      }
    } catch (e) {
      // The ledger closed (shutdown) or failed: end this stream.
      res.end(`event: error\ndata: ${JSON.stringify(String(e))}\n\n`)
    }
  })
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)))
}

module.exports = { serve }

if (require.main === module) {
  const ledger = Ledger.open(process.argv[2] || 'sse-ledger')
  serve(ledger, Number(process.argv[3] || 8080)).then((s) => {
    const a = s.address()
    console.log(`listening on http://127.0.0.1:${a && typeof a === 'object' ? a.port : ''}/events`)
  })
}
