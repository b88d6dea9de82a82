// Node read throughput against the Rust core, side by side in one run.
//
//     node bench/read.mjs [EVENTS] [ROUNDS]
//
// Fills a temporary ledger with EVENTS realistic ops (the CLI's `workload`
// through `fsfeed append`), then for each format reads everything ROUNDS
// times through (a) `for await (const batch of cursor)` with records as JS
// objects and (b) the same cursor kind read and rendered by the Rust core
// alone (`_readCore`, no JS objects), alternating so noise hits both; the
// ratio uses each side's best round. Prints a table and one JSON line.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
const { Ledger } = require('..')
const events = Number(process.argv[2] || 200000)
const rounds = Number(process.argv[3] || 3)
const target = process.env.CARGO_TARGET_DIR || join(import.meta.dirname ?? '.', '../../../target')
const cli = process.env.FSFEED_CLI || join(target, 'release', 'fsfeed')

const dir = mkdtempSync(join(tmpdir(), 'fsfeed-bench-'))
const path = join(dir, 'ledger')
Ledger.open(path).close()
await new Promise((resolve, reject) => {
  const gen = spawn(cli, ['workload', '--events', String(events), '--seed', '5', '--start-us', '1767225600000000'])
  const app = spawn(cli, ['append', '--ledger', path, '--durability', 'buffered'], { stdio: ['pipe', 'ignore', 'inherit'] })
  gen.stdout.pipe(app.stdin)
  app.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`append exited ${c}`))))
})

const led = Ledger.open(path)
async function viaJs(format) {
  const c = led.cursor(null, { start: 'earliest', format })
  let n = 0
  const t = performance.now()
  for (;;) {
    const b = await c.read({ max: 1000, timeoutMs: 0 })
    if (b.empty) break
    for (const r of b.records) n += r ? 1 : 0
  }
  return [n, (performance.now() - t) / 1000]
}
function viaCore(format) {
  const c = led.cursor(null, { start: 'earliest', format })
  const t = performance.now()
  const n = c._readCore(2 ** 52)
  return [n, (performance.now() - t) / 1000]
}
const out = { events }
for (const format of ['native', 's3']) {
  let js = 0
  let core = 0
  for (let i = 0; i < rounds; i++) {
    const [n, s] = await viaJs(format)
    js = Math.max(js, n / s)
    const [n2, s2] = viaCore(format)
    if (n2 !== n) throw new Error(`counts differ: ${n} vs ${n2}`)
    core = Math.max(core, n2 / s2)
  }
  out[`node_${format}_per_s`] = Math.round(js)
  out[`core_${format}_per_s`] = Math.round(core)
  out[`node_vs_core_${format}`] = Math.round((js / core) * 1000) / 1000
}
led.close()
rmSync(dir, { recursive: true, force: true })
for (const [k, v] of Object.entries(out)) console.log(k.padEnd(28), v.toLocaleString('en-US'))
console.log(JSON.stringify(out))
