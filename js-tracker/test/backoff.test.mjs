// Unit tests for the retry policy: which answers are retried and how long the tracker waits.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BASE_DELAY_MS, DROP, MAX_DELAY_MS, RETRY, SENT, outcome, retryDelay } from '../src/backoff.js'

test('2xx is sent, 429, 5xx and network errors are retried, other 4xx are dropped', () => {
  for (const status of [200, 202, 204]) assert.equal(outcome(status), SENT, `status ${status}`)
  for (const status of [0, undefined, 429, 500, 502, 503, 504]) assert.equal(outcome(status), RETRY, `status ${status}`)
  for (const status of [400, 401, 403, 404, 413, 415, 302]) assert.equal(outcome(status), DROP, `status ${status}`)
})

test('the wait doubles per failure up to the cap', () => {
  const waits = [1, 2, 3, 4, 5, 6, 7, 8].map((failures) => retryDelay(failures, null, 0))
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
  assert.equal(waits[0], BASE_DELAY_MS)
  assert.equal(waits.at(-1), MAX_DELAY_MS)
})

test('jitter adds up to half the wait again', () => {
  assert.equal(retryDelay(3, null, 0), 4000)
  assert.equal(retryDelay(3, null, 0.5), 5000)
  assert.ok(retryDelay(3, null, 0.999999) < 6000)
})

test('Retry-After wins when it asks for longer, and is ignored when unreadable', () => {
  assert.equal(retryDelay(1, '5', 0), 5000)
  assert.equal(retryDelay(1, '5', 0.5), 6250)
  assert.equal(retryDelay(1, '120', 0), 120000, 'Retry-After may exceed the exponential cap')
  assert.equal(retryDelay(5, '1', 0), 16000, 'a short Retry-After does not shorten the backoff')
  assert.equal(retryDelay(1, 'Wed, 21 Oct 2026 07:28:00 GMT', 0), 1000)
  assert.equal(retryDelay(1, '', 0), 1000)
})
