// Segment-shaped events: what the tracker sends for each call, from the page it runs on.

import { VERSION as version } from './version.js'

/** A random id: 16 random bytes as 32 hex digits (crypto.randomUUID needs a secure context). */
export const randomId = (bytes) => [...bytes].map((b) => (b | 256).toString(16).slice(1)).join('')

/** Segment's `context.campaign` from the UTM parameters of a query string. */
export const campaign = (search) => {
  const found = {}
  new URLSearchParams(search).forEach((value, key) => {
    if (key.startsWith('utm_')) found[key == 'utm_campaign' ? 'name' : key.slice(4)] = value
  })
  return found
}

/**
 * What makes a page distinct for page views: path and query, plus the hash only when it looks
 * like a hash router's route (`#/...`), so in-page anchors are not page views.
 */
export const pageKey = (location) =>
  location.pathname + location.search + (location.hash[1] == '/' ? location.hash : '')

/**
 * Properties from `data-ct-prop-*` attributes: `data-ct-prop-product-id="p1"` becomes
 * `product_id: "p1"`. A value that a number prints back exactly ("19.99", not "007" or "1e3")
 * becomes that number.
 */
export const clickProps = (element) => {
  const props = {}
  for (const { name, value } of element.attributes)
    if (name.startsWith('data-ct-prop-'))
      props[name.slice(13).replace(/-/g, '_')] = +value + '' == value ? +value : value
  return props
}

/**
 * One event: `ids` holds messageId, anonymousId and userId (if known), `page` the page's url,
 * path, referrer, title and search, `now` the device time as ISO 8601.
 */
export const makeEvent = (type, fields, ids, page, locale, now) => {
  const utm = campaign(page.search)
  return {
    type,
    ...ids,
    ...fields,
    context: {
      page,
      ...(Object.keys(utm).length && { campaign: utm }),
      library: { name: 'clickstream.js', version },
      locale,
    },
    originalTimestamp: now,
  }
}
