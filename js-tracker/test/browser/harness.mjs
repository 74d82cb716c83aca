// What the browser tests share: the real `clickstream dev` (gateway on an embedded Kafka-protocol
// broker), Debian's Chromium through playwright-core, a server for the pages under test, and a
// reader that takes events back out of Kafka with kcat.

import { execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium } from 'playwright-core'

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..')
export const WRITE_KEY = 'demo-write-key'
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A name no other test or run uses, safe in a URL path. */
export const unique = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`

/**
 * The `clickstream` binary, built by cargo if needed (CLICKSTREAM_BIN overrides). The command is
 * scripts/test's own build, so after it this is a no-op: building `-p clickstream` alone would
 * unify features differently and rebuild the binary.
 */
function clickstreamBinary() {
  if (process.env.CLICKSTREAM_BIN) return process.env.CLICKSTREAM_BIN
  const args = ['build', '--workspace', '--all-targets', '--locked', '--message-format=json-render-diagnostics']
  const build = spawnSync('cargo', args, {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  })
  if (build.error) throw new Error(`cargo is needed to build clickstream (install Rust from rustup.rs): ${build.error.message}`)
  if (build.status !== 0) throw new Error(`cargo ${args.join(' ')} failed with status ${build.status}`)
  for (const line of build.stdout.split('\n')) {
    const message = line.startsWith('{') ? JSON.parse(line) : {}
    // --all-targets also builds the bin's unit-test harness under the same name; skip it.
    if (message.reason === 'compiler-artifact' && message.target?.name === 'clickstream' && message.target.kind?.includes('bin') && !message.profile?.test)
      return message.executable
  }
  throw new Error('cargo build reported no clickstream executable')
}

/**
 * Starts `clickstream dev` on free ports and reads its banner: gateway URL, broker address, the
 * demo shop URL and the console URL. Its embedded broker is librdkafka's mock cluster, which kcat can read.
 */
export async function startDev() {
  const child = spawn(
    clickstreamBinary(),
    ['dev', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--no-demo'],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)))
  const seen = []
  const found = {}
  const lines = createInterface({ input: child.stdout })
  const banner = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`clickstream dev banner incomplete after 60 s:\n${seen.join('\n')}\n${stderr}`)), 60000)
    child.on('exit', (code) => reject(new Error(`clickstream dev exited with ${code}:\n${seen.join('\n')}\n${stderr}`)))
    lines.on('line', (line) => {
      seen.push(line)
      const words = line.trim().split(/\s+/)
      if (words[0] === 'gateway') found.gateway = words[1]
      if (words[0] === 'kafka') found.bootstrap = words[1].replace('bootstrap.servers=', '')
      if (words[0] === 'demo' && words[1] === 'shop') found.shop = words[2]
      if (words[0] === 'console') found.console = words[1]
      if (found.gateway && found.bootstrap && found.shop && found.console) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  try {
    await banner
  } catch (error) {
    child.kill()
    throw error
  }
  lines.on('line', () => {}) // keep draining stdout
  return {
    ...found,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.on('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
    },
  }
}

/** Every event on `topic`, from the beginning, as parsed JSON. */
export async function readTopic(bootstrap, topic = 'events.raw') {
  try {
    const { stdout } = await promisify(execFile)(
      'kcat',
      ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\\n'],
      { maxBuffer: 256 << 20, timeout: 30000 },
    )
    return stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line))
  } catch (error) {
    if (error.code === 'ENOENT') throw new Error('kcat is not installed: apt-get install kcat (./scripts/test installs it)')
    throw error
  }
}

/** Polls Kafka until `count` events match, then returns them; fails with what it saw. */
export async function waitForEvents(bootstrap, matches, count, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  let found = []
  while (Date.now() < deadline) {
    found = (await readTopic(bootstrap)).filter(matches)
    if (found.length >= count) return found
    await sleep(250)
  }
  throw new Error(`expected ${count} events in Kafka, found ${found.length}:\n${JSON.stringify(found, null, 1)}`)
}

/**
 * Waits for `count` matching events, then keeps watching long enough for any late duplicate
 * (a retry, a replay, a second page view) to land, and returns everything that matched.
 */
export async function settledEvents(bootstrap, matches, count, settleMs = 3000) {
  await waitForEvents(bootstrap, matches, count)
  await sleep(settleMs)
  return (await readTopic(bootstrap)).filter(matches)
}

/** Events whose page URL holds `marker` (each test gives its pages a unique path). */
export const onPage = (marker) => (event) => event.context?.page?.url?.includes(marker)

/** Debian's Chromium, headless, with a fresh profile (playwright makes a new temp dir per launch). */
export async function launchChromium() {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium is not at ${CHROMIUM}: install it with \`apt-get install chromium\` (./scripts/test does), or set CHROMIUM_PATH`)
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/**
 * A browser context whose pages may send events although playwright sets navigator.webdriver:
 * the tracker's test override, set before any script of the page runs.
 */
export async function trackedContext(browser) {
  const context = await browser.newContext()
  await context.addInitScript(() => {
    window.__ctAllowWebdriver = true
  })
  return context
}

/** Serves the pages under test on 127.0.0.1 at a free port: `add(path, html)`, then visit `origin + path`. */
export async function startPageServer() {
  const pages = new Map()
  const server = createServer((request, response) => {
    const html = pages.get(new URL(request.url, 'http://x').pathname)
    response.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    response.end(html ?? 'not found')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    add: (path, html) => pages.set(path, html),
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/** A page that embeds the tracker the way js-tracker/README.md tells sites to. */
export const trackerPage = ({ gateway, title = 'Test page', attrs = '', head = '', body = '' }) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<script>window.ct = window.ct || function () { (ct.q = ct.q || []).push(arguments) }</script>
${head}
<script defer src="${gateway}/t.js" data-write-key="${WRITE_KEY}" ${attrs}></script>
</head><body>${body}</body></html>`

/** Resolves once t.js has loaded and replaced the pre-load stub. */
export const trackerReady = (page) => page.waitForFunction(() => window.ct && window.ct.v, null, { timeout: 15000 })
