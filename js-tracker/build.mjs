// Builds dist/t.js with esbuild, plus the gzip and brotli variants the gateway serves as they are.
// `node build.mjs` writes dist/; `build()` returns the bytes so the staleness test can compare.

import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'

const root = dirname(fileURLToPath(import.meta.url))
export const distDir = join(root, 'dist')

/** Compresses once, at the strongest settings, since every page view pays for these bytes. */
export const compress = (code) => ({
  gzip: gzipSync(code, { level: 9 }),
  brotli: brotliCompressSync(code, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: code.length,
    },
  }),
})

/** The minified script, as bytes. */
export async function build() {
  const result = await esbuild.build({
    entryPoints: [join(root, 'src/index.js')],
    bundle: true,
    minify: true,
    format: 'iife',
    // Browsers from 2020 on (Chrome 85, Firefox 79, Safari 14): optional chaining and `||=`
    // stay as written, which is smaller.
    target: 'es2021',
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
  })
  return Buffer.from(result.outputFiles[0].contents)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const code = await build()
  const { gzip, brotli } = compress(code)
  mkdirSync(distDir, { recursive: true })
  writeFileSync(join(distDir, 't.js'), code)
  writeFileSync(join(distDir, 't.js.gz'), gzip)
  writeFileSync(join(distDir, 't.js.br'), brotli)
  console.log(`dist/t.js: ${code.length} bytes, gzip ${gzip.length} bytes, brotli ${brotli.length} bytes`)
}
