// Unit tests for the payload: Segment's event shape, UTM campaign, page keys and click props.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { campaign, clickProps, makeEvent, pageKey, randomId } from '../src/event.js'
import { VERSION } from '../src/version.js'

const page = {
  path: '/shoes',
  referrer: 'https://www.google.com/',
  search: '?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=red&utm_content=top&ref=x',
  title: 'Shoes',
  url: 'https://shop.example/shoes?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=red&utm_content=top&ref=x',
}
const ids = { messageId: 'm1', anonymousId: 'a1', userId: undefined }

test('a track event is Segment-shaped', () => {
  const event = makeEvent('track', { event: 'Product Added', properties: { product_id: 'p1' } }, ids, page, 'de-DE', '2026-01-02T03:04:05.678Z')
  assert.deepEqual(JSON.parse(JSON.stringify(event)), {
    type: 'track',
    messageId: 'm1',
    anonymousId: 'a1',
    event: 'Product Added',
    properties: { product_id: 'p1' },
    context: {
      page,
      campaign: { source: 'newsletter', medium: 'email', name: 'spring', term: 'red', content: 'top' },
      library: { name: 'clickstream.js', version: VERSION },
      locale: 'de-DE',
    },
    originalTimestamp: '2026-01-02T03:04:05.678Z',
  })
  assert.ok(!('sentAt' in event), 'sentAt is set per request, at send time')
})

test('userId appears once known, and no campaign without UTM parameters', () => {
  const plain = { ...page, search: '', url: 'https://shop.example/shoes' }
  const event = makeEvent('identify', { traits: { plan: 'pro' } }, { ...ids, userId: 'u1' }, plain, 'en', 'now')
  assert.equal(event.userId, 'u1')
  assert.deepEqual(event.traits, { plan: 'pro' })
  assert.ok(!('campaign' in event.context))
})

test('campaign maps utm_campaign to name and keeps the other utm_ names', () => {
  assert.deepEqual(campaign('?utm_source=a&utm_campaign=b&utm_id=c&x=1'), { source: 'a', name: 'b', id: 'c' })
  assert.deepEqual(campaign(''), {})
  assert.deepEqual(campaign('?utm_source=caf%C3%A9+bar'), { source: 'café bar' })
})

test('page keys ignore in-page anchors but see hash routes', () => {
  const at = (pathname, search, hash) => pageKey({ pathname, search, hash })
  assert.equal(at('/a', '', ''), at('/a', '', '#reviews'))
  assert.notEqual(at('/a', '', ''), at('/a', '?page=2', ''))
  assert.notEqual(at('/', '', '#/cart'), at('/', '', '#/checkout'))
  assert.notEqual(at('/a', '', ''), at('/b', '', ''))
})

test('click props come from data-ct-prop-* with numbers as numbers', () => {
  const element = {
    attributes: [
      { name: 'data-ct-event', value: 'Product Added' },
      { name: 'data-ct-prop-product-id', value: 'p7' },
      { name: 'data-ct-prop-price', value: '19.99' },
      { name: 'data-ct-prop-quantity', value: '2' },
      { name: 'data-ct-prop-zip', value: '02139' },
      { name: 'data-ct-prop-empty', value: '' },
      { name: 'class', value: 'buy' },
    ],
  }
  assert.deepEqual(clickProps(element), { product_id: 'p7', price: 19.99, quantity: 2, zip: '02139', empty: '' })
})

test('random ids are 32 hex digits and differ', () => {
  const a = randomId(crypto.getRandomValues(new Uint8Array(16)))
  const b = randomId(crypto.getRandomValues(new Uint8Array(16)))
  assert.match(a, /^[0-9a-f]{32}$/)
  assert.notEqual(a, b)
  assert.equal(randomId(new Uint8Array([0, 1, 15, 16, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 171])), '00010f10ff00000000000000000000ab')
})

test('the library version matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url)))
  assert.equal(VERSION, pkg.version)
})
