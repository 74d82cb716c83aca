// t.js in real Chromium against the real gateway: every event is read back from Kafka and its
// fields compared. One `clickstream dev` serves all tests; each test's pages have a unique path.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  WRITE_KEY,
  launchChromium,
  onPage,
  settledEvents,
  startDev,
  startPageServer,
  trackedContext,
  trackerPage,
  trackerReady,
  unique,
  waitForEvents,
} from './harness.mjs'

let dev, browser, pages
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const isBatch = (request) => request.url() === `${dev.gateway}/v1/batch` && request.method() === 'POST'
const named = (name) => (event) => event.event === name
const ofType = (type) => (event) => event.type === type

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

/** Adds a page at a unique path and opens it in a fresh tracked context. */
async function open(name, options = {}) {
  const marker = unique(name)
  const path = `/${marker}/${options.subpath ?? ''}`
  pages.add(path, trackerPage({ gateway: dev.gateway, title: `Page ${marker}`, ...options }))
  const context = options.context ?? (await trackedContext(browser))
  const page = await context.newPage()
  await page.goto(pages.origin + path + (options.query ?? ''), options.goto)
  await trackerReady(page)
  return { marker, path, context, page, url: pages.origin + path + (options.query ?? '') }
}

test('a page view on load carries page, campaign, ids and timestamps', async () => {
  const { marker, page, url, context } = await open('pageview', {
    query: '?utm_source=newsletter&utm_medium=email&utm_campaign=spring',
    goto: { referer: 'https://www.google.com/search?q=shoes' },
  })
  const anonymousId = await page.evaluate(() => localStorage.getItem('ct_aid'))
  const [view] = await settledEvents(dev.bootstrap, onPage(marker), 1)
  assert.equal(view.type, 'page')
  assert.equal(view.anonymousId, anonymousId)
  assert.match(view.messageId, /^[0-9a-f]{32}$/)
  assert.deepEqual(view.context.page, {
    path: `/${marker}/`,
    referrer: 'https://www.google.com/search?q=shoes',
    search: '?utm_source=newsletter&utm_medium=email&utm_campaign=spring',
    title: `Page ${marker}`,
    url,
  })
  assert.deepEqual(view.properties, view.context.page, 'page properties repeat the page fields, as Segment does')
  assert.deepEqual(view.context.campaign, { source: 'newsletter', medium: 'email', name: 'spring' })
  assert.equal(view.context.library.name, 'clickstream.js')
  assert.match(view.context.userAgent, /Chrome/, 'the gateway adds the User-Agent')
  assert.equal(view.context.ip, '127.0.0.1')
  assert.ok(!('writeKey' in view), 'the write key never reaches Kafka')
  const sent = Date.parse(view.originalTimestamp)
  assert.ok(Math.abs(Date.now() - sent) < 60000, `originalTimestamp ${view.originalTimestamp} is the device time`)
  assert.ok(view.timestamp && view.receivedAt, 'the gateway adds timestamp and receivedAt')
  await context.close()
})

test('calls made before t.js loads are replayed, identify first', async () => {
  const head = `<script>ct('identify', 'user-42', { plan: 'pro' }); ct('track', 'Queued Early', { step: 1 })</script>`
  const { marker, context } = await open('preload', { head })
  const events = await settledEvents(dev.bootstrap, onPage(marker), 3)
  assert.deepEqual(
    events.map((e) => e.type),
    ['identify', 'track', 'page'],
  )
  const [identify, track, view] = events
  assert.equal(identify.userId, 'user-42')
  assert.deepEqual(identify.traits, { plan: 'pro' })
  assert.equal(track.event, 'Queued Early')
  assert.deepEqual(track.properties, { step: 1 })
  assert.equal(track.userId, 'user-42')
  assert.equal(view.userId, 'user-42')
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1)
  await context.close()
})

test('SPA navigation gives one page view per new path and none for repeats or anchors', async () => {
  const { marker, path, page, url, context } = await open('spa', { subpath: 'app' })
  await page.evaluate((base) => {
    history.pushState({}, '', `${base}/products`)
    document.title = 'Products'
    history.replaceState({ scroll: 1 }, '', `${base}/products`)
    history.pushState({}, '', `${base}/products`)
    location.hash = '#reviews'
  }, path)
  const views = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && e.type === 'page', 2)
  assert.equal(views.length, 2, `exactly two page views: ${JSON.stringify(views.map((v) => v.context.page.url))}`)
  assert.deepEqual(
    views.map((v) => v.context.page.path),
    [path, `${path}/products`],
  )
  assert.equal(views[1].context.page.referrer, url, 'the previous URL is the referrer of an SPA page view')
  assert.equal(views[1].context.page.title, 'Products', 'the title the router set right after navigating')
  assert.notEqual(views[0].messageId, views[1].messageId)
  await context.close()
})

test('a click on a data-ct-event element sends its data-ct-prop-* properties', async () => {
  const body = `<button id="buy" data-ct-event="Product Added" data-ct-prop-product-id="p7"
    data-ct-prop-price="19.99" data-ct-prop-quantity="2" data-ct-prop-sku="007"><span>Add to cart</span></button>
    <button id="plain">Not tracked</button>`
  const { marker, page, context } = await open('click', { body })
  await page.click('#plain')
  await page.click('#buy span')
  const events = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && e.type === 'track', 1)
  assert.equal(events.length, 1, 'only the tagged element sends')
  assert.equal(events[0].event, 'Product Added')
  assert.deepEqual(events[0].properties, { product_id: 'p7', price: 19.99, quantity: 2, sku: '007' })
  await context.close()
})

test('an outbound link click is tracked and delivered as the page leaves', async () => {
  const outbound = `http://localhost:${pages.port}/elsewhere-${unique('x')}`
  pages.add(new URL(outbound).pathname, '<!doctype html><title>Elsewhere</title><p>elsewhere</p>')
  const body = `<a id="anchor" href="#more">More</a> <a id="inside" href="#top">Top</a> <a id="out" href="${outbound}">Partner</a>`
  const { marker, page, context } = await open('outbound', { body })
  await page.click('#anchor')
  await page.click('#inside')
  await Promise.all([page.waitForURL(outbound), page.click('#out')])
  const events = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && e.type === 'track', 1)
  assert.equal(events.length, 1, 'same-host links are not outbound')
  assert.equal(events[0].event, 'Outbound Link Clicked')
  assert.deepEqual(events[0].properties, { href: outbound })
  await context.close()
})

test('an event tracked just before the tab closes is still delivered', async () => {
  const { marker, page, context } = await open('close')
  await waitForEvents(dev.bootstrap, onPage(marker), 1)
  await page.evaluate(() => ct('track', 'Last Words', { at: 'close' }))
  await page.close()
  const [event] = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && named('Last Words')(e), 1)
  assert.deepEqual(event.properties, { at: 'close' })
  assert.equal((await settledEvents(dev.bootstrap, onPage(marker), 2, 0)).length, 2, 'nothing sent twice')
  await context.close()
})

test('a page turning hidden sends its queue at once, without waiting for the batch window', async () => {
  const { marker, page, context } = await open('hidden')
  await waitForEvents(dev.bootstrap, onPage(marker), 1)
  // Record fetch calls synchronously, so the check does not depend on timing.
  const sentSynchronously = await page.evaluate(() => {
    const calls = []
    const realFetch = window.fetch
    window.fetch = (...args) => (calls.push(args[1].body), realFetch(...args))
    ct('track', 'Tab Hidden')
    const queuedOnly = calls.length
    Object.defineProperty(document, 'hidden', { value: true, configurable: true })
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
    return { queuedOnly, afterHidden: calls.length, body: calls[0] }
  })
  assert.equal(sentSynchronously.queuedOnly, 0, 'a single event waits for the batch window')
  assert.equal(sentSynchronously.afterHidden, 1, 'turning hidden flushes right away')
  const body = JSON.parse(sentSynchronously.body)
  assert.equal(body.writeKey, WRITE_KEY)
  assert.ok(Date.parse(body.sentAt) > 0, 'sentAt is set at send time')
  assert.deepEqual(
    body.batch.map((e) => e.event),
    ['Tab Hidden'],
  )
  const [event] = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && named('Tab Hidden')(e), 1)
  assert.equal(event.messageId, body.batch[0].messageId)
  await context.close()
})

test('a gateway answering 503 is retried after Retry-After and the events arrive once', async () => {
  const context = await trackedContext(browser)
  const attempts = []
  await context.route(`${dev.gateway}/v1/batch`, async (route) => {
    attempts.push({ at: Date.now(), body: JSON.parse(route.request().postData()) })
    if (attempts.length > 2) return route.continue()
    await route.fulfill({
      status: 503,
      headers: {
        'content-type': 'application/json',
        'retry-after': '1',
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'Retry-After',
      },
      body: '{"success":false,"error":"unavailable","message":"kafka is unreachable"}',
    })
  })
  const { marker, page } = await open('retry', { context })
  await page.evaluate(() => ct('track', 'Retry Me', { n: 1 }))
  const events = await settledEvents(dev.bootstrap, onPage(marker), 2, 4000)
  assert.deepEqual(events.map((e) => e.event ?? e.type).sort(), ['Retry Me', 'page'], 'each event exactly once')
  assert.equal(attempts.length, 3, `two refusals and one success: ${attempts.length} requests`)
  const firstView = attempts[0].body.batch.find((e) => e.type === 'page')
  assert.equal(events.find((e) => e.type === 'page').messageId, firstView.messageId, 'the retry resends the same event')
  assert.ok(attempts[1].at - attempts[0].at >= 950, `waited ${attempts[1].at - attempts[0].at} ms after Retry-After: 1`)
  assert.ok(attempts[2].at - attempts[1].at >= 1950, `backed off ${attempts[2].at - attempts[1].at} ms the second time`)
  await context.close()
})

test('a 4xx answer drops the batch instead of retrying it', async () => {
  const context = await trackedContext(browser)
  let attempts = 0
  await context.route(`${dev.gateway}/v1/batch`, (route) => {
    attempts++
    return attempts === 1
      ? route.fulfill({ status: 400, headers: { 'access-control-allow-origin': '*' }, body: '{"success":false}' })
      : route.continue()
  })
  const { marker, page } = await open('drop', { context })
  await sleep(3000)
  assert.equal(attempts, 1, 'the refused page view is not sent again')
  await page.evaluate(() => ct('track', 'After Drop'))
  const events = await settledEvents(dev.bootstrap, onPage(marker), 1)
  assert.deepEqual(
    events.map((e) => e.event),
    ['After Drop'],
  )
  await context.close()
})

test('events tracked offline stay queued and replay on the next page load', async () => {
  const { marker, page, context } = await open('offline')
  await waitForEvents(dev.bootstrap, onPage(marker), 1)
  await context.setOffline(true)
  const failed = page.waitForEvent('requestfailed', { predicate: isBatch })
  await page.evaluate(() => ct('track', 'Offline Event', { n: 1 }))
  await failed
  const stored = await page.evaluate(() =>
    Object.keys(localStorage)
      .filter((key) => key.startsWith('ct_q'))
      .flatMap((key) => JSON.parse(localStorage.getItem(key)).q),
  )
  assert.deepEqual(
    stored.map((e) => e.event),
    ['Offline Event'],
    'the failed event is back in storage',
  )
  const sends = []
  page.on('request', (request) => isBatch(request) && sends.push({ at: Date.now(), body: request.postData() }))
  await context.setOffline(false)
  const reloadedAt = Date.now()
  await page.reload()
  const [event] = await settledEvents(dev.bootstrap, (e) => onPage(marker)(e) && named('Offline Event')(e), 1)
  assert.equal(event.messageId, stored[0].messageId)
  assert.equal(event.originalTimestamp, stored[0].originalTimestamp, 'the device time of the click, not of the replay')
  const carriers = sends.filter((s) => s.body.includes(stored[0].messageId))
  assert.equal(carriers.length, 1)
  assert.ok(carriers[0].at >= reloadedAt, 'sent by the reloaded page')
  assert.equal((await waitForEvents(dev.bootstrap, (e) => onPage(marker)(e) && e.type === 'page', 2)).length, 2)
  await context.close()
})

test('opt-out sends nothing, survives a reload, and opt-in starts a new identity', async () => {
  const { marker, page, context } = await open('optout')
  const [first] = await waitForEvents(dev.bootstrap, onPage(marker), 1)
  const sends = []
  page.on('request', (request) => isBatch(request) && sends.push(request.postData()))
  await page.evaluate(() => {
    ct('optOut')
    ct('track', 'Secret Before Reload')
  })
  await page.reload()
  await trackerReady(page)
  await page.evaluate(() => ct('track', 'Secret After Reload'))
  await sleep(2500)
  assert.deepEqual(sends, [], 'no request while opted out, not even the page view of the reload')
  assert.equal(await page.evaluate(() => localStorage.getItem('ct_aid')), null, 'the anonymous id is forgotten')
  await page.evaluate(() => {
    ct('optIn')
    ct('track', 'After Opt In')
  })
  const events = await settledEvents(dev.bootstrap, onPage(marker), 2)
  assert.deepEqual(events.map((e) => e.event ?? e.type).sort(), ['After Opt In', 'page'])
  assert.notEqual(events.find(named('After Opt In')).anonymousId, first.anonymousId)
  await context.close()
})

test('automation (navigator.webdriver) sends nothing unless the test override is set', async () => {
  const marker = unique('webdriver')
  pages.add(`/${marker}/`, trackerPage({ gateway: dev.gateway, body: '<button id="b" data-ct-event="Bot Click">b</button>' }))
  const context = await browser.newContext()
  const page = await context.newPage()
  const sends = []
  page.on('request', (request) => isBatch(request) && sends.push(request.postData()))
  await page.goto(`${pages.origin}/${marker}/`)
  await trackerReady(page)
  assert.equal(await page.evaluate(() => navigator.webdriver), true)
  await page.click('#b')
  await page.evaluate(() => ct('track', 'Bot Event'))
  await sleep(2500)
  assert.deepEqual(sends, [])
  await context.addInitScript(() => {
    window.__ctAllowWebdriver = true
  })
  await page.reload()
  const events = await settledEvents(dev.bootstrap, onPage(marker), 1)
  assert.deepEqual(
    events.map((e) => e.type),
    ['page'],
    'with the override, the page view of the reload is the only event',
  )
  await context.close()
})

test('cookieless keeps the anonymous id for the page only', async () => {
  const { marker, page, context } = await open('cookieless', { attrs: 'data-cookieless' })
  await page.reload()
  await trackerReady(page)
  const sent = await settledEvents(dev.bootstrap, onPage(marker), 2)
  // A reload can race the first page's keepalive send with its pagehide beacon, so one event
  // may arrive twice; delivery is at least once, and messageId is what consumers dedup on.
  const views = [...new Map(sent.map((e) => [e.messageId, e])).values()]
  assert.equal(views.length, 2, `two page views, got ${JSON.stringify(sent.map((e) => e.messageId))}`)
  assert.notEqual(views[0].anonymousId, views[1].anonymousId, 'a new id per page load')
  assert.equal(await page.evaluate(() => localStorage.getItem('ct_aid')), null, 'no id in storage')
  await context.close()
})
