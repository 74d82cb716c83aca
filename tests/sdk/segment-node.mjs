#!/usr/bin/env node
// Drives the real Segment server SDK (@segment/analytics-node) against a
// clickstream gateway: sends one identify, track, page and group call, then
// flushes. Exits non-zero if any delivery fails; on success prints {"sent":4}.
//
// Usage: node segment-node.mjs <host-url> <writeKey> <runId>
//   e.g. node segment-node.mjs http://127.0.0.1:8080 test-write-key run-42
import { Analytics } from '@segment/analytics-node';

const [host, writeKey, runId] = process.argv.slice(2);
if (!host || !writeKey || !runId) {
  console.error('usage: node segment-node.mjs <host-url> <writeKey> <runId>');
  process.exit(2);
}

const EXPECTED = 4;
let delivered = 0;
let failed = 0;

const fail = (what, err) => {
  failed += 1;
  process.exitCode = 1;
  console.error(`segment-node: ${what} failed: ${err?.message ?? err}`);
};

// Per-call callback: fires once the event's batch was delivered (no err) or given up on
// (err = reason, e.g. "[401] Unauthorized", "fetch failed", "Flush timeout").
const done = (what) => (err) => (err ? fail(what, err) : (delivered += 1));

const analytics = new Analytics({
  writeKey,
  host, // base URL; the SDK posts to new URL(path, host)
  path: '/v1/batch',
  flushAt: 10,
  flushInterval: 200,
  maxRetries: 2,
});

// The SDK also emits 'error' for each failed event; delivery failures are already
// reported by the callbacks, so only log the other kinds (code 'unknown').
analytics.on('error', (e) => {
  process.exitCode = 1;
  if (e?.code !== 'delivery_failure') fail(`SDK (${e?.code})`, e?.reason);
});

analytics.identify(
  { userId: `user-${runId}`, traits: { email: 'sdk@example.com', plan: 'pro' } },
  done('identify'),
);
analytics.track(
  {
    anonymousId: `anon-${runId}`,
    event: 'Product Viewed',
    properties: { product_id: 'p1', price: 12.5, run: runId },
  },
  done('track'),
);
analytics.page(
  { anonymousId: `anon-${runId}`, name: 'Home', properties: { path: '/' } },
  done('page'),
);
analytics.group({ userId: `user-${runId}`, groupId: `g-${runId}` }, done('group'));

try {
  await analytics.closeAndFlush({ timeout: 10000 });
} catch (err) {
  fail('closeAndFlush', err);
}

if (failed === 0 && delivered !== EXPECTED) {
  // e.g. closeAndFlush timed out before every callback fired
  fail('flush', new Error(`only ${delivered}/${EXPECTED} events confirmed delivered`));
}
if (process.exitCode !== 1) {
  console.log(JSON.stringify({ sent: delivered }));
}
