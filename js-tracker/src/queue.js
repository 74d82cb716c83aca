// The send queue's limits and the rule that cuts a request out of its head.

/** Events kept for later at most; the oldest go first, so a long outage keeps the recent past. */
export const MAX_QUEUED = 500
/** Events per request at most. */
export const MAX_BATCH_EVENTS = 20
/**
 * Bytes per request at most. Browsers refuse keepalive fetches and beacons past 64 KiB in flight,
 * and a refused page-exit send is a lost one, so stay well below.
 */
export const MAX_BATCH_BYTES = 60000
/** The gateway's own per-event limit: a larger event would be refused, so it is never queued. */
export const MAX_EVENT_BYTES = 32000
/** Room for `{"batch":[...],"sentAt":...,"writeKey":...}` around the events. */
const ENVELOPE_BYTES = 200

/** How many events from the head of `queue` go into the next request. */
export const batchSize = (queue, sizeOf) => {
  let count = 0
  let bytes = ENVELOPE_BYTES
  while (count < queue.length && count < MAX_BATCH_EVENTS && (bytes += sizeOf(queue[count]) + 1) <= MAX_BATCH_BYTES)
    count++
  return count
}

/** Drops the oldest events past `max`, in place, and returns them. */
export const cap = (queue, max = MAX_QUEUED) => queue.splice(0, queue.length - max)
