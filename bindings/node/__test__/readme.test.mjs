import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { dir } from './helpers.mjs'

const require = createRequire(import.meta.url)

test("the README's Node block runs as written", async () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8')
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
  assert.equal(blocks.length, 1)
  const lines = []
  const log = (...a) => lines.push(a.join(' '))
  const fsfeed = require('..')
  const main = new Function('require', 'console', `${blocks[0]}\nreturn main`)(
    (m) => (m === 'fsfeed' ? fsfeed : require(m)),
    { log },
  )
  await main(dir())
  assert.deepEqual(lines, ['ObjectCreated:Put a/x.bin'])
})
