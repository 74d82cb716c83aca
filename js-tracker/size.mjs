// Prints t.js's sizes as served (minified, gzip, brotli) and fails when gzip is over the budget.
import { readFileSync } from 'node:fs'

export const GZIP_BUDGET_BYTES = 2048
const size = (name) => readFileSync(new URL(`dist/${name}`, import.meta.url)).length
const gzip = size('t.js.gz')
console.log(
  `t.js: ${size('t.js')} bytes minified, ${gzip} bytes gzip (budget ${GZIP_BUDGET_BYTES}), ${size('t.js.br')} bytes brotli`,
)
if (gzip > GZIP_BUDGET_BYTES) {
  console.error(`t.js is ${gzip - GZIP_BUDGET_BYTES} bytes over its gzip budget`)
  process.exit(1)
}
