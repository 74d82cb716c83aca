// Makes docs/images/console.png (or the path given): starts `clickstream dev`, clicks through the
// demo shop in Chromium so its tracker sends events, sends one malformed event, then opens the
// console, expands one event to show it raw beside enriched, and takes the screenshot.
// Run it through scripts/console-screenshot, which installs what it needs.

import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WRITE_KEY, launchChromium, startDev, trackedContext } from '../js-tracker/test/browser/harness.mjs'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const output = resolve(process.argv[2] || join(repo, 'docs/images/console.png'))
const dev = await startDev()
const browser = await launchChromium()
try {
  const shop = await (await trackedContext(browser)).newPage()
  await shop.goto(dev.shop)
  await shop.waitForFunction(() => window.ct && window.ct.v, null, { timeout: 15000 })
  for (const [product, button] of [['p1', 'Details'], ['p2', 'Details'], ['p1', 'Add to cart'], ['p3', 'Details']]) {
    await shop.click(`#${product} >> text=${button}`)
    await shop.waitForTimeout(250)
  }
  const auth = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`
  const response = await fetch(`${dev.gateway}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body: JSON.stringify({ batch: [
      { type: 'identify', userId: 'user-42', anonymousId: 'visitor-7', traits: { plan: 'pro' } },
      { type: 'track', event: 'Order Completed', anonymousId: 'visitor-7', properties: 'total=42' },
    ] }),
  })
  if (response.status !== 200) throw new Error(`the gateway answered ${response.status}: ${await response.text()}`)

  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } })
  await page.goto(dev.console)
  await page.locator('tr.event').nth(5).waitFor({ timeout: 15000 })
  await page.locator('tr.event .state.done').nth(4).waitFor({ timeout: 20000 })
  await page.locator('tr.event', { hasText: 'Product Added' }).first().click()
  await page.waitForTimeout(2500) // the highlight of new rows fades
  await page.screenshot({ path: output })
  console.log(`wrote ${output}`)
} finally {
  await browser.close()
  await dev.stop()
}
