// Snowplow's browser tracker (@snowplow/browser-tracker from npm, unchanged) in real Chromium
// against the real `clickstream dev`: a page view, a structured event, a self-describing event
// and a page ping, sent with credentials as the tracker does, read back from Kafka.
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
const trackerBundle = (() => {
  const path = join(here, '../node_modules/@snowplow/browser-tracker/dist/index.umd.min.js')
  try {
    return readFileSync(path, 'utf8')
  } catch {
    throw new Error(`@snowplow/browser-tracker is not installed at ${path}: run \`npm ci --prefix tests/sdk\` (./scripts/test does)`)
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

const escapeScript = (code) => code.replaceAll('</script', '<\\/script')

test('Snowplow browser tracker: page view, structured, self-describing and page ping arrive mapped', async () => {
  const marker = unique('snowplow')
  const user = `user-${marker}`
  // Only the collector URL and the app id (our write key) are ours; the rest is the tracker's
  // documented setup. Activity tracking is shortened so a ping comes within the test.
  pages.add(`/${marker}/`, `<!doctype html><html><head><meta charset="utf-8"><title>Snowplow ${marker}</title><link rel="icon" href="data:,">
<script>${escapeScript(trackerBundle)}</script>
<script>
  const sp = window.snowplowBrowserTracking
  sp.newTracker('sp1', ${JSON.stringify(dev.gateway)}, { appId: ${JSON.stringify(WRITE_KEY)}, platform: 'web' })
  sp.setUserId(${JSON.stringify(user)})
  sp.enableActivityTracking({ minimumVisitLength: 1, heartbeatDelay: 1 })
  sp.trackPageView()
</script>
</head><body style="height: 3000px"><h1>Snowplow page</h1></body></html>`)
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = []
  const answers = []
  page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`))
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`))
  page.on('response', (response) => {
    if (!response.url().startsWith(dev.gateway)) return
    answers.push(`${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`)
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`)
  })
  await page.goto(`${pages.origin}/${marker}/?utm_source=sp`)
  await page.waitForFunction(() => window.snowplowBrowserTracking, null, { timeout: 15000 })
  await page.evaluate(() => {
    const sp = window.snowplowBrowserTracking
    sp.trackStructEvent({ category: 'cart', action: 'add-to-basket', label: 'red mug', property: 'size', value: 2 })
    sp.trackSelfDescribingEvent({
      event: { schema: 'iglu:com.acme/link_click/jsonschema/1-0-0', data: { targetUrl: 'https://example.com/x', elementId: 'cta' } },
    })
  })
  // A page ping needs activity after the minimum visit length: scroll and move the mouse.
  for (let step = 1; step <= 6; step++) {
    await page.waitForTimeout(500)
    await page.mouse.move(10 * step, 20 * step)
    await page.mouse.wheel(0, 200)
  }
  const ours = (event) => event.context?.page?.url?.includes(marker)
  const isPing = (event) => event.event === 'Page Ping'
  const events = await settledEvents(dev.bootstrap, ours, 4).catch((error) => {
    throw new Error(`${error.message}\ngateway answers: ${answers.join(', ')}\nproblems: ${problems.join('\n')}`)
  })
  const cookies = await context.cookies(dev.gateway)
  await context.close()

  const one = (match, what) => {
    const found = events.filter(match)
    assert.equal(found.length, 1, `one ${what} in ${JSON.stringify(events, null, 1)}`)
    return found[0]
  }
  const view = one((e) => e.type === 'page', 'page view')
  assert.equal(view.userId, user)
  assert.match(view.anonymousId, /^[0-9a-f-]{36}$/, 'the tracker cookie id (duid) is the anonymousId')
  assert.match(view.messageId, /^[0-9a-f-]{36}$/, 'eid is the messageId')
  assert.equal(view.context.page.url, `${pages.origin}/${marker}/?utm_source=sp`)
  assert.equal(view.context.page.path, `/${marker}/`)
  assert.equal(view.context.page.search, '?utm_source=sp')
  assert.equal(view.context.page.title, `Snowplow ${marker}`)
  assert.equal(view.context.library.name, 'snowplow-js')
  assert.match(view.context.userAgent, /Chrome/)
  assert.ok(view.context.sessionId, 'sid is the session id')
  assert.ok(view.context.screen.width > 0 && view.context.screen.innerWidth > 0)
  assert.equal(view.context.snowplow.platform, 'web')
  assert.equal(view.context.snowplow.appId, undefined, 'the app id was the write key, not stored')
  const webPage = view.context.snowplow.contexts.find((c) => c.schema.includes('/web_page/'))
  assert.match(webPage?.data?.id ?? '', /^[0-9a-f-]{36}$/, 'the web_page context is kept')
  assert.ok(view.timestamp && view.originalTimestamp && view.sentAt && view.receivedAt, 'timestamps are settled')
  assert.equal(view.context.ip, '127.0.0.1')

  const added = one((e) => e.type === 'track' && e.event === 'add-to-basket', 'structured event')
  assert.deepEqual(added.properties, { category: 'cart', action: 'add-to-basket', label: 'red mug', property: 'size', value: 2 })
  assert.equal(added.anonymousId, view.anonymousId)
  assert.equal(added.context.sessionId, view.context.sessionId)

  const click = one((e) => e.type === 'track' && e.event === 'link_click', 'self-describing event')
  assert.deepEqual(click.properties, { targetUrl: 'https://example.com/x', elementId: 'cta' })
  assert.equal(click.context.snowplow.schema, 'iglu:com.acme/link_click/jsonschema/1-0-0')

  const pings = events.filter(isPing)
  assert.ok(pings.length >= 1, `a page ping in ${JSON.stringify(events, null, 1)}`)
  assert.equal(pings[0].type, 'track')
  assert.equal(typeof pings[0].properties.maxYOffset, 'number')

  const network = view.context.snowplow.networkUserId
  assert.match(network, /^[0-9a-f-]{36}$/, 'the gateway gave the browser a network user id')
  assert.equal(added.context.snowplow.networkUserId, network, 'the browser sent the sp cookie back')
  assert.deepEqual(cookies.filter((c) => c.name === 'sp').map((c) => c.value), [network])
  assert.deepEqual(problems, [], 'the tracker ran without errors')
})
