// t.js: the browser glue. Reads the script tag's options, keeps identity and the send queue in
// storage, batches to the gateway's /v1/batch, retries, and autocaptures page views and clicks.

import { VERSION as version } from './version.js'
import { RETRY, outcome, retryDelay } from './backoff.js'
import { clickProps, makeEvent, pageKey, randomId } from './event.js'
import { MAX_BATCH_EVENTS, MAX_EVENT_BYTES, batchSize, cap } from './queue.js'

/** Events wait this long for company before a request goes out. */
const BATCH_WINDOW_MS = 1000
/**
 * A queue left in storage by another tab is taken over once that tab has not written it for this
 * long: a live tab rewrites its queue at least at every retry (at most 45 s apart, plus timer
 * throttling in background tabs), so only queues of closed tabs qualify.
 */
const ORPHAN_AFTER_MS = 120000

;((w, d, nav, loc) => {
  if (w.ct?.v) return
  const script = d.currentScript
  const attr = (name) => script.getAttribute('data-' + name)
  // A present attribute is on unless it says "false", so `data-cookieless` alone works.
  const option = (name, fallback) => {
    const value = attr(name)
    return value == null ? fallback : value != 'false'
  }
  const writeKey = attr('write-key')
  // data-host is an origin; without it, events go where t.js came from.
  const endpoint = new URL('/v1/batch', attr('host') || script.src).href
  const cookieless = option('cookieless')
  // Automation (headless crawlers, test suites) stays out of the data unless a test opts in.
  const quiet =
    (nav.webdriver && !w.__ctAllowWebdriver) ||
    (option('respect-dnt') && (nav.doNotTrack == '1' || nav.globalPrivacyControl))

  // Storage can be blocked (privacy settings, sandboxed frames): plain objects then stand in,
  // which behave the same for the life of the page.
  let local = {}
  let session = {}
  try {
    local = localStorage
    session = sessionStorage
  } catch {}
  const write = (store, key, value) => {
    try {
      value == null ? delete store[key] : (store[key] = value)
    } catch {} // full or blocked: keep going with memory only
  }
  const newId = () => randomId(crypto.getRandomValues(new Uint8Array(16)))
  // Cookieless keeps identity in this object only, so it lives as long as the page.
  const identity = cookieless ? {} : local
  const anonymousId = () => {
    if (!identity.ct_aid) write(identity, 'ct_aid', newId())
    return identity.ct_aid
  }
  const blocked = () => quiet || local.ct_out

  // The queue is stored per tab (the tab id survives reloads in sessionStorage), so two tabs
  // never overwrite each other's unsent events.
  if (!session.ct_tab) write(session, 'ct_tab', newId())
  const queueKey = 'ct_q' + session.ct_tab
  let queue = []
  let inflight, batchTimer, retryTimer
  let failures = 0
  const save = () => write(local, queueKey, queue.length ? JSON.stringify({ t: Date.now(), q: queue }) : null)
  for (const key of Object.keys(local))
    if (key.startsWith('ct_q'))
      try {
        const stored = JSON.parse(local[key])
        if (key == queueKey || Date.now() - stored.t > ORPHAN_AFTER_MS) {
          queue.push(...stored.q)
          write(local, key)
        }
      } catch {} // not ours after all

  const sizeOf = (event) => new Blob([JSON.stringify(event)]).size
  const now = () => new Date().toISOString()
  const body = (batch) => JSON.stringify({ batch, sentAt: now(), writeKey })

  const flush = (afterRetryWait) => {
    clearTimeout(batchTimer)
    batchTimer = 0
    if (afterRetryWait) retryTimer = 0
    if (blocked() || inflight || retryTimer || !queue.length) return
    // Taken out of storage while in flight: if the page dies meanwhile, the browser still
    // delivers a keepalive request, and keeping a copy would send it twice on the next visit.
    const batch = queue.splice(0, batchSize(queue, sizeOf))
    save()
    inflight = 1
    const done = (status, retryAfter) => {
      inflight = 0
      const next = outcome(status)
      if (next == RETRY && !blocked()) {
        queue.unshift(...batch)
        save()
        retryTimer = setTimeout(flush, retryDelay(++failures, retryAfter, Math.random()), 1)
      } else {
        failures = 0
        flush()
      }
    }
    // text/plain with the key in the body: a "simple" request, so no CORS preflight.
    fetch(endpoint, { method: 'POST', body: body(batch), keepalive: true }).then(
      (response) => done(response.status, response.headers.get('retry-after')),
      () => done(0),
    )
  }

  // On page exit, hand the next batch to sendBeacon, which outlives the page; anything past it
  // stays stored for the next page load. Not while retrying: the network just failed.
  const leave = () => {
    const count = batchSize(queue, sizeOf)
    if (!blocked() && !retryTimer && count && nav.sendBeacon(endpoint, body(queue.slice(0, count)))) {
      queue.splice(0, count)
      save()
    }
  }

  // After an SPA navigation the previous URL is the referrer.
  let referrer = d.referrer
  let lastUrl, lastKey
  const pageInfo = () => ({ path: loc.pathname, referrer, search: loc.search, title: d.title, url: loc.href })

  const send = (type, fields) => {
    if (blocked()) return
    const event = makeEvent(
      type,
      fields,
      { messageId: newId(), anonymousId: anonymousId(), userId: identity.ct_uid },
      pageInfo(),
      nav.language,
      now(),
    )
    if (sizeOf(event) > MAX_EVENT_BYTES) return
    queue.push(event)
    cap(queue)
    save()
    if (queue.length >= MAX_BATCH_EVENTS) flush()
    else batchTimer ||= setTimeout(flush, BATCH_WINDOW_MS)
  }

  const page = (name, props) => {
    if (typeof name == 'object') (props = name), (name = 0)
    if (lastUrl && lastUrl != loc.href) referrer = lastUrl
    lastUrl = loc.href
    lastKey = pageKey(loc)
    send('page', { ...(name && { name }), properties: { ...pageInfo(), ...props } })
  }
  const autoPage = () => pageKey(loc) != lastKey && page()

  const api = (command, a, b) => {
    if (command == 'track') send('track', { event: a, properties: b || {} })
    if (command == 'page') page(a, b)
    if (command == 'identify') {
      if (typeof a == 'object') b = a
      else write(identity, 'ct_uid', a)
      send('identify', { traits: b || {} })
    }
    if (command == 'optOut') {
      write(local, 'ct_out', 1)
      write(identity, 'ct_aid')
      write(identity, 'ct_uid')
      queue = []
      save()
    }
    if (command == 'optIn') write(local, 'ct_out')
  }
  const early = w.ct?.q || []
  w.ct = api
  api.v = version
  for (const args of early) api(...args)

  if (option('auto-pageview', true)) {
    autoPage()
    for (const method of ['pushState', 'replaceState']) {
      const original = history[method]
      history[method] = function (...args) {
        // Later, because routers usually set the new title right after navigating.
        setTimeout(autoPage)
        return original.apply(this, args)
      }
    }
    w.addEventListener('popstate', autoPage)
    w.addEventListener('hashchange', autoPage)
  }
  if (option('autocapture', true))
    // Capture phase: still sees clicks whose handlers stop propagation.
    d.addEventListener(
      'click',
      (e) => {
        const element = e.target.closest('[data-ct-event]')
        const link = e.target.closest('a[href]')
        if (element) send('track', { event: element.getAttribute('data-ct-event'), properties: clickProps(element) })
        if (link && link.host && link.host != loc.host)
          send('track', { event: 'Outbound Link Clicked', properties: { href: link.href } })
      },
      true,
    )
  d.addEventListener('visibilitychange', () => d.hidden && flush())
  w.addEventListener('pagehide', leave)
  save()
  flush()
})(window, document, navigator, location)
