// Clients no one here wrote, in real Chromium against the real `clickstream dev`: posthog-js
// (from npm, unchanged) and Segment's pixel as an <img>. Every event is read back from Kafka.
// Shares js-tracker's harness, so js-tracker's node packages (playwright-core) must be installed.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  WRITE_KEY,
  launchChromium,
  settledEvents,
  startDev,
  startPageServer,
  unique,
} from '../../../js-tracker/test/browser/harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const posthogBundle = (() => {
  const path = join(here, '../node_modules/posthog-js/dist/array.full.js')
  try {
    return readFileSync(path, 'utf8')
  } catch {
    throw new Error(`posthog-js is not installed at ${path}: run \`npm ci --prefix tests/sdk\` (./scripts/test does)`)
  }
})()

let dev, browser, pages

before(async () => {
  dev = await startDev()
  browser = await launchChromium()
  pages = await startPageServer()
})

after(async () => {
  await browser?.close()
  await pages?.close()
  await dev?.stop()
})

/** A fresh context whose console errors, failed requests and non-2xx gateway answers are kept. */
async function watchedPage() {
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = []
  page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`))
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`))
  page.on('response', (response) => {
    if (response.url().startsWith(dev.gateway) && response.status() >= 400) problems.push(`${response.status()} ${response.url()}`)
  })
  return { context, page, problems }
}

const escapeScript = (code) => code.replaceAll('</script', '<\\/script')

test('posthog-js: $pageview, a custom capture and identify arrive mapped, with no console errors', async () => {
  const marker = unique('posthog')
  const user = `user-${marker}`
  pages.add(`/${marker}/`, `<!doctype html><html><head><meta charset="utf-8"><title>PostHog ${marker}</title><link rel="icon" href="data:,">
<script>${escapeScript(posthogBundle)}</script>
<script>posthog.init(${JSON.stringify(WRITE_KEY)}, {
  api_host: ${JSON.stringify(dev.gateway)}, autocapture: false, capture_pageleave: false,
  // Headless Chromium under playwright is a bot to posthog-js; this is its documented switch
  // for end-to-end tests. Everything else is the SDK's default.
  opt_out_useragent_filter: true,
})</script>
</head><body><h1>PostHog page</h1></body></html>`)
  const { context, page, problems } = await watchedPage()
  const gatewayPaths = []
  page.on('request', (request) => request.url().startsWith(dev.gateway) && gatewayPaths.push(new URL(request.url()).pathname))
  await page.goto(`${pages.origin}/${marker}/?utm_source=ph`)
  await page.waitForFunction(() => window.posthog && window.posthog.__loaded, null, { timeout: 15000 })
  const anonymous = await page.evaluate(() => window.posthog.get_distinct_id())
  await page.evaluate(() => window.posthog.capture('Product Viewed', { sku: 'p1', price: 12.5 }))
  await page.evaluate((user) => window.posthog.identify(user, { email: 'ph@example.com' }), user)
  const ours = (event) => event.context?.page?.url?.includes(marker)
  const events = await settledEvents(dev.bootstrap, ours, 3).catch((error) => {
    throw new Error(`${error.message}\nrequests to the gateway: ${gatewayPaths}\nproblems: ${problems.join('\n')}`)
  })
  await context.close()

  const one = (match, what) => {
    const found = events.filter(match)
    assert.equal(found.length, 1, `one ${what} in ${JSON.stringify(events, null, 1)}`)
    return found[0]
  }
  const view = one((e) => e.type === 'page', 'page')
  assert.equal(view.anonymousId, anonymous)
  assert.equal(view.userId, undefined, 'before identify the device id is anonymous')
  assert.equal(view.context.page.url, `${pages.origin}/${marker}/?utm_source=ph`)
  assert.equal(view.context.page.path, `/${marker}/`)
  assert.equal(view.context.page.title, `PostHog ${marker}`)
  assert.equal(view.context.page.search, '?utm_source=ph')
  assert.equal(view.context.library.name, 'web')
  assert.equal(view.properties.$current_url, view.context.page.url, 'PostHog properties are kept')
  assert.equal(view.properties.token, undefined, 'the project key never reaches Kafka')
  assert.match(view.messageId, /^[0-9a-f-]{36}$/, 'the uuid is the messageId')
  assert.ok(view.timestamp && view.receivedAt && view.originalTimestamp, 'timestamps are settled')
  assert.equal(view.context.ip, '127.0.0.1')

  const viewed = one((e) => e.type === 'track' && e.event === 'Product Viewed', 'capture')
  assert.deepEqual([viewed.properties.sku, viewed.properties.price], ['p1', 12.5])
  assert.equal(viewed.anonymousId, anonymous)

  const identify = one((e) => e.type === 'identify', 'identify')
  assert.equal(identify.userId, user)
  assert.equal(identify.anonymousId, anonymous, '$anon_distinct_id links the device to the user')
  assert.equal(identify.traits.email, 'ph@example.com')

  for (const wanted of ['/array/demo-write-key/config.js']) assert.ok(gatewayPaths.includes(wanted), `posthog-js asked for ${wanted}: ${gatewayPaths}`)
  assert.deepEqual(problems, [], 'posthog-js ran without errors')
})

test('a Segment pixel in an <img> tag loads and its event arrives', async () => {
  const marker = unique('pixel')
  const event = { writeKey: WRITE_KEY, userId: `reader-${marker}`, event: 'Email Opened', properties: { marker } }
  const data = Buffer.from(JSON.stringify(event)).toString('base64')
  pages.add(`/${marker}/`, `<!doctype html><html><head><meta charset="utf-8"><title>Mail</title><link rel="icon" href="data:,"></head>
<body><img id="pixel" src="${dev.gateway}/v1/pixel/track?data=${encodeURIComponent(data)}" width="1" height="1" alt=""></body></html>`)
  const { context, page, problems } = await watchedPage()
  await page.goto(`${pages.origin}/${marker}/`)
  await page.waitForFunction(() => document.getElementById('pixel').complete, null, { timeout: 15000 })
  const size = await page.evaluate(() => [document.getElementById('pixel').naturalWidth, document.getElementById('pixel').naturalHeight])
  assert.deepEqual(size, [1, 1], 'the GIF decodes as a 1x1 image')
  const [opened] = await settledEvents(dev.bootstrap, (e) => e.properties?.marker === marker, 1)
  await context.close()
  assert.equal(opened.type, 'track')
  assert.equal(opened.event, 'Email Opened')
  assert.equal(opened.userId, `reader-${marker}`)
  assert.match(opened.context.userAgent, /Chrome/, 'the gateway adds the User-Agent')
  assert.equal(opened.writeKey, undefined)
  assert.deepEqual(problems, [])
})
