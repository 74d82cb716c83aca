// The console in real Chromium against the real `clickstream dev`: the page loads, an event sent
// over HTTP shows in the live list within 2 s and then with its enriched copy, a malformed event
// shows under Rejected with its reason and field, and the event-name filter keeps only matching
// events. A screenshot is taken, checked for content, and kept in the test's output folder
// (CONSOLE_TEST_OUTPUT, else a new temporary folder), never in the repository.

import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { WRITE_KEY, launchChromium, startDev, unique } from '../../../js-tracker/test/browser/harness.mjs'

const output = process.env.CONSOLE_TEST_OUTPUT || mkdtempSync(join(tmpdir(), 'clickstream-console-test-'))
let dev, browser, context, page
const problems = []

before(async () => {
  mkdirSync(output, { recursive: true })
  dev = await startDev()
  browser = await launchChromium()
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  page = await context.newPage()
  page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`))
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
})

after(async () => {
  await browser?.close()
  await dev?.stop()
})

/** Posts a Segment batch to dev's gateway; the answer must be 200. */
async function send(batch) {
  const response = await fetch(`${dev.gateway}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
    body: JSON.stringify({ batch }),
  })
  const text = await response.text()
  assert.equal(response.status, 200, text)
  return JSON.parse(text)
}

const track = (event, marker, extra = {}) => ({
  type: 'track', event, anonymousId: `anon-${marker}`, messageId: unique('msg'), properties: { product_id: 'p1', marker }, ...extra,
})
const row = (messageId) => page.locator(`tr.event[data-message-id="${messageId}"]`)

test('the console loads, connects and shows the install settings', async () => {
  await page.goto(dev.console)
  assert.equal(await page.title(), 'clickstream console')
  await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 10000 })
  await page.click('nav button[data-tab="install"]')
  const snippet = page.locator('#install-sources pre').first()
  await snippet.waitFor({ timeout: 5000 })
  const text = await snippet.textContent()
  assert.match(text, new RegExp(`src="${dev.gateway}/t.js" data-write-key="${WRITE_KEY}"`), text)
  await page.click('nav button[data-tab="live"]')
})

test('an event shows in the live list within 2 s, then beside its enriched copy', async () => {
  const event = track(unique('Console Viewed'), unique('live'))
  const sent = Date.now()
  await send([event])
  await row(event.messageId).waitFor({ timeout: 2000 })
  const shownAfter = Date.now() - sent
  assert.ok(shownAfter <= 2000, `shown after ${shownAfter} ms`)
  assert.equal(await row(event.messageId).locator('td.name').textContent(), event.event)
  await row(event.messageId).locator('.state.done', { hasText: 'enriched' }).waitFor({ timeout: 20000 })
  await row(event.messageId).click()
  const details = page.locator(`tr.event[data-message-id="${event.messageId}"] + tr.details`)
  const raw = JSON.parse(await details.locator('pre.raw').textContent())
  const enriched = JSON.parse(await details.locator('pre.enriched').textContent())
  assert.equal(raw.messageId, event.messageId)
  assert.equal(raw.enrichment, undefined, 'the raw side is the event as the gateway wrote it')
  assert.equal(enriched.messageId, event.messageId)
  assert.equal(enriched.enrichment.product.name, 'Larkspur Press Mini Weeknight Cookbook', 'joined with the sample catalog')
})

test('a malformed event shows under Rejected with its reason and its field marked', async () => {
  const marker = unique('bad')
  const answer = await send([track('Fine', marker), { ...track('Broken Props', marker), properties: 'not an object' }])
  assert.equal(answer.rejected?.length, 1, JSON.stringify(answer))
  await page.click('nav button[data-tab="rejected"]')
  const card = page.locator('.card.rejected', { hasText: `anon-${marker}` })
  await card.waitFor({ timeout: 5000 })
  assert.match(await card.locator('.reason').textContent(), /`properties` must be an object/)
  assert.match(await card.locator('mark.bad').first().textContent(), /"properties": "not an object"/)
  assert.notEqual(await page.locator('#rejected-count').textContent(), '0')
  await page.click('nav button[data-tab="live"]')
})

test('filtering by event name keeps only that event', async () => {
  const marker = unique('filter')
  const wanted = track(`Wanted ${marker}`, marker)
  const other = track(`Other ${marker}`, marker)
  await page.fill('#filters input[name="event"]', wanted.event)
  await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 5000 })
  await page.waitForTimeout(700) // the filter applies 300 ms after typing stops, with a new stream
  await send([other])
  await send([wanted])
  await row(wanted.messageId).waitFor({ timeout: 5000 })
  await page.waitForTimeout(500)
  const names = await page.locator('tr.event td.name').allTextContents()
  assert.deepEqual([...new Set(names)], [wanted.event], `only the wanted event is listed: ${names}`)
  assert.equal(await row(other.messageId).count(), 0)

  await page.fill('#filters input[name="event"]', '')
  await row(other.messageId).waitFor({ timeout: 5000 })
  assert.ok((await page.locator('tr.event').count()) >= 3, 'without the filter, the recent events are back')
})

test('a screenshot of the console has rows and real content', async () => {
  await page.locator('tr.event').first().waitFor()
  const path = join(output, 'console.png')
  const png = await page.screenshot({ path })
  assert.ok(statSync(path).size > 10000, `screenshot at ${path} is ${statSync(path).size} bytes`)
  // Colours in the image, counted by Chromium itself: a blank or half-drawn page has a handful.
  const colours = await page.evaluate(async (base64) => {
    const image = new Image()
    image.src = `data:image/png;base64,${base64}`
    await image.decode()
    const canvas = Object.assign(document.createElement('canvas'), { width: image.width, height: image.height })
    const context = canvas.getContext('2d')
    context.drawImage(image, 0, 0)
    const { data } = context.getImageData(0, 0, image.width, image.height)
    const seen = new Set()
    for (let i = 0; i < data.length; i += 4 * 7) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2])
    return seen.size
  }, png.toString('base64'))
  assert.ok(colours > 50, `the screenshot has ${colours} colours`)
  assert.ok(readFileSync(path).subarray(1, 4).toString() === 'PNG')
  console.log(`console screenshot: ${path}`)
  assert.deepEqual(problems, [], 'the page ran without errors')
})
