// The committed dist/ must be what the source builds to, and t.js must stay within 2 KB gzip.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import { build, distDir } from '../build.mjs'

const GZIP_BUDGET_BYTES = 2048 // the same budget as size.mjs, which scripts/test runs
const dist = (name) => readFileSync(join(distDir, name))

test('dist/t.js is what the source builds to (run `npm run build` and commit dist/)', async () => {
  const fresh = await build()
  assert.ok(fresh.equals(dist('t.js')), 'dist/t.js is stale: run `npm run build` in js-tracker/ and commit dist/')
})

test('the precompressed variants hold exactly dist/t.js', () => {
  const code = dist('t.js')
  assert.ok(gunzipSync(dist('t.js.gz')).equals(code), 'dist/t.js.gz is stale: run `npm run build`')
  assert.ok(brotliDecompressSync(dist('t.js.br')).equals(code), 'dist/t.js.br is stale: run `npm run build`')
})

test(`t.js is at most ${GZIP_BUDGET_BYTES} bytes gzipped`, () => {
  const code = dist('t.js')
  const served = dist('t.js.gz').length
  const gzip9 = gzipSync(code, { level: 9 }).length
  console.log(
    `t.js size: ${code.length} bytes minified, ${served} bytes gzip (budget ${GZIP_BUDGET_BYTES}), ${dist('t.js.br').length} bytes brotli`,
  )
  assert.ok(served <= GZIP_BUDGET_BYTES, `t.js is ${served} bytes gzipped, over the ${GZIP_BUDGET_BYTES} byte budget`)
  assert.ok(gzip9 <= GZIP_BUDGET_BYTES, `gzip -9 gives ${gzip9} bytes, over budget`)
})
