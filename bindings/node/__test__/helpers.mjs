import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const T0 = 1_767_225_600_000_000 // 2026-01-01T00:00:00Z in µs
export const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/', import.meta.url))

// Every directory dir() made, removed when the test process exits (each
// test file runs in a process of its own; child processes have ended by then).
const made = []
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true })
})

export function dir() {
  const d = mkdtempSync(join(tmpdir(), 'fsfeed-node-'))
  made.push(d)
  return join(d, 'ledger')
}

export function commit(key, i = 0, bucket = 'b1') {
  return { kind: 'commit', volume: 'vol1', bucket, key, size: i + 1, etag: `e${i}`, time_us: T0 + i }
}

export function corpus() {
  return readFileSync(join(FIXTURES, 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
}
