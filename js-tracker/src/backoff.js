// Retry policy: which responses are worth retrying, and how long to wait before the next try.

/** The first retry waits about this long; each later one doubles it. */
export const BASE_DELAY_MS = 1000
/** Exponential growth stops here, so a tab that comes back online recovers within a minute. */
export const MAX_DELAY_MS = 30000

export const SENT = 0
export const RETRY = 1
export const DROP = 2

/**
 * What to do with a batch after the gateway answered `status` (0 = network error, no answer).
 * 429 and 5xx are the gateway saying "later"; any other 4xx means the request itself is wrong,
 * and sending it again would fail the same way forever.
 */
export const outcome = (status) =>
  status > 199 && status < 300 ? SENT : !status || status == 429 || status > 499 ? RETRY : DROP

/**
 * Milliseconds to wait after the `failures`-th failure in a row. `retryAfter` is the response's
 * Retry-After header (seconds; an HTTP date is ignored), which wins when it asks for longer.
 * `random` in [0, 1) spreads clients that failed together by up to half the delay again.
 */
export const retryDelay = (failures, retryAfter, random) =>
  Math.max(retryAfter * 1000 || 0, Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (failures - 1))) *
  (1 + random / 2)
