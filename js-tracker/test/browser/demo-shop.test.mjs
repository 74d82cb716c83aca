// `clickstream dev`'s demo shop in Chromium: clicking a catalog product puts an event on events.raw.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { launchChromium, settledEvents, startDev, trackedContext, trackerReady } from './harness.mjs'

let dev, browser

before(async () => {
  dev = await startDev()
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await dev?.stop()
})

test('clicking products in the demo shop produces events on events.raw', async () => {
  const context = await trackedContext(browser)
  const page = await context.newPage()
  await page.goto(dev.shop)
  await trackerReady(page)
  const anonymousId = await page.evaluate(() => localStorage.getItem('ct_aid'))
  await page.click('#p1 >> text=Add to cart')
  await page.click('#p2 >> text=Details')
  const events = await settledEvents(dev.bootstrap, (e) => e.anonymousId === anonymousId, 3)
  const byName = (name) => events.find((e) => (e.event ?? e.type) === name)
  assert.deepEqual(events.map((e) => e.event ?? e.type).sort(), ['Product Added', 'Product Clicked', 'page'])
  assert.equal(byName('page').context.page.url, dev.shop)
  assert.deepEqual(byName('Product Added').properties, {
    product_id: 'p1',
    name: 'Larkspur Press Mini Weeknight Cookbook',
    category: 'Books',
    price: 18.29,
    quantity: 1,
  })
  assert.equal(byName('Product Clicked').properties.product_id, 'p2')
  assert.equal(byName('Product Clicked').properties.price, 12.49)
  await context.close()
})
