// Unit tests for the queue: how requests are cut from it and how it is capped.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_QUEUED, batchSize, cap } from '../src/queue.js'

const bytes = (event) => Buffer.byteLength(JSON.stringify(event))
const events = (count, padding = 0) =>
  Array.from({ length: count }, (_, i) => ({ type: 'track', event: `E${i}`, pad: 'x'.repeat(padding) }))

test('a request takes at most 20 events', () => {
  assert.equal(batchSize(events(3), bytes), 3)
  assert.equal(batchSize(events(20), bytes), 20)
  assert.equal(batchSize(events(45), bytes), MAX_BATCH_EVENTS)
  assert.equal(batchSize([], bytes), 0)
})

test('a request stays under 60 KB with its envelope', () => {
  const queue = events(20, 7000)
  const count = batchSize(queue, bytes)
  assert.equal(count, 8)
  const body = JSON.stringify({ batch: queue.slice(0, count), sentAt: new Date().toISOString(), writeKey: 'k'.repeat(64) })
  assert.ok(Buffer.byteLength(body) <= MAX_BATCH_BYTES, `${Buffer.byteLength(body)} bytes`)
  const oneMore = JSON.stringify({ batch: queue.slice(0, count + 1) })
  assert.ok(Buffer.byteLength(oneMore) > MAX_BATCH_BYTES - 200, 'the next event would not have fitted')
})

test('multi-byte text is measured in bytes, as the sizeOf function reports them', () => {
  const queue = events(20, 0).map((e) => ({ ...e, name: 'é'.repeat(5000) }))
  assert.equal(batchSize(queue, bytes), 5)
  assert.equal(batchSize(queue, (e) => JSON.stringify(e).length), 11, 'counting characters would overshoot')
})

test('the cap drops the oldest events and keeps the newest', () => {
  const queue = events(MAX_QUEUED + 7)
  const dropped = cap(queue)
  assert.equal(queue.length, MAX_QUEUED)
  assert.deepEqual(dropped.map((e) => e.event), ['E0', 'E1', 'E2', 'E3', 'E4', 'E5', 'E6'])
  assert.equal(queue[0].event, 'E7')
  assert.equal(queue.at(-1).event, `E${MAX_QUEUED + 6}`)
  assert.deepEqual(cap(events(3)), [], 'a short queue is left alone')
})
