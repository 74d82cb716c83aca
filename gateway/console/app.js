// The clickstream console: live events (raw beside enriched), rejected events with their reasons,
// rates and top products, and install settings. Plain DOM code, no build step, no dependencies.
'use strict'

const $ = (selector, root = document) => root.querySelector(selector)
const MAX_ROWS = 500
const HELD_MAX = 2000
const params = new URLSearchParams(location.search)
let token = params.get('token') || sessionStorage.getItem('clickstream-console-token') || ''
if (token) sessionStorage.setItem('clickstream-console-token', token)

const url = (path, query = {}) => {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v))
  if (token) q.set('token', token)
  const text = q.toString()
  return text ? `${path}?${text}` : path
}

async function api(path) {
  const response = await fetch(url(path), { cache: 'no-store' })
  if (response.status === 401) {
    token = prompt('This console needs its token (console.token):') || ''
    sessionStorage.setItem('clickstream-console-token', token)
    throw new Error('unauthorized')
  }
  return response.json()
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
const el = (tag, attrs = {}, html = '') => Object.assign(document.createElement(tag), attrs, html ? { innerHTML: html } : {})
const clock = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour12: false }) + '.' + String(ms % 1000).padStart(3, '0')

/** Pretty JSON, with the lines of `marked` keys highlighted; a marked key that is missing gets a line saying so. */
function jsonHtml(value, marked = []) {
  const found = new Set()
  const lines = JSON.stringify(value, null, 2).split('\n').map((line) => {
    const key = /^\s*"([^"]+)":/.exec(line)?.[1]
    if (key && marked.includes(key)) {
      found.add(key)
      return `<mark class="bad">${escapeHtml(line)}</mark>`
    }
    return escapeHtml(line)
  })
  for (const key of marked) if (!found.has(key)) lines.push(`<mark class="bad">  "${escapeHtml(key)}": missing</mark>`)
  return lines.join('\n')
}

// ---- tabs and filters ----
for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => {
    for (const other of document.querySelectorAll('nav button')) other.classList.toggle('on', other === button)
    for (const tab of document.querySelectorAll('.tab')) tab.hidden = tab.id !== button.dataset.tab
  })
}
const filterForm = $('#filters')
const currentFilter = () => Object.fromEntries(new FormData(filterForm))
let filterTimer
filterForm.addEventListener('input', () => {
  clearTimeout(filterTimer)
  filterTimer = setTimeout(connect, 300)
})
filterForm.addEventListener('submit', (event) => event.preventDefault())

// ---- live events ----
const rows = new Map() // messageId -> {raw, enriched, tr, details}
const orphans = new Map() // enriched copies whose raw event has not arrived (yet)
const productNames = new Map()
let rejectedCount = 0
let paused = false
let held = []
let stream

function keyOf(item) {
  return item.value?.messageId || item.value?.payload?.messageId || `${item.topic}:${item.partition}:${item.offset}`
}

function showRaw(item) {
  const id = keyOf(item)
  if (rows.has(id)) return
  const v = item.value || {}
  const name = v.event || v.name || ''
  const who = v.userId || v.anonymousId || ''
  const tr = el('tr', { className: 'event fresh' })
  tr.dataset.messageId = id
  tr.innerHTML = `<td class="time">${clock(item.timeMs)}</td><td>${escapeHtml(item.source || '')}</td>
    <td><span class="type">${escapeHtml(v.type || '?')}</span></td><td class="name">${escapeHtml(name)}</td>
    <td>${escapeHtml(who)}</td><td class="state waiting">waiting…</td>`
  const details = el('tr', { className: 'details', hidden: true })
  details.innerHTML = `<td colspan="6"><div class="pair"><div><h3>raw · ${escapeHtml(item.topic)}[${item.partition}]@${item.offset}</h3><pre class="raw">${jsonHtml(v)}</pre></div>
    <div><h3 class="enriched-title">enriched</h3><pre class="enriched">not yet enriched</pre></div></div></td>`
  tr.addEventListener('click', () => (details.hidden = !details.hidden))
  const body = $('#live-rows')
  body.prepend(details)
  body.prepend(tr)
  const row = { raw: item, tr, details }
  rows.set(id, row)
  if (orphans.has(id)) {
    attach(row, orphans.get(id))
    orphans.delete(id)
  }
  while (rows.size > MAX_ROWS) {
    const [oldest, old] = rows.entries().next().value
    old.tr.remove()
    old.details.remove()
    rows.delete(oldest)
  }
  $('#live-empty').hidden = true
}

function attach(row, item) {
  row.enriched = item
  const cell = $('.state', row.tr)
  cell.className = 'state done'
  cell.textContent = 'enriched'
  $('.enriched-title', row.details).textContent = `enriched · ${item.topic}[${item.partition}]@${item.offset}`
  // What the enricher added first: the rest repeats the raw side.
  const { enrichment, ...rest } = item.value || {}
  $('pre.enriched', row.details).innerHTML = jsonHtml(enrichment === undefined ? rest : { enrichment, ...rest })
}

function showEnriched(item) {
  const product = item.value?.enrichment?.product
  const id = item.value?.properties?.product_id
  if (product?.name && id) productNames.set(String(id), product.name)
  const row = rows.get(keyOf(item))
  if (row) attach(row, item)
  else if (orphans.size < MAX_ROWS) orphans.set(keyOf(item), item)
}

function showRejected(item) {
  const letter = item.value || {}
  const fields = [...String(letter.reason || '').matchAll(/`([^`]+)`/g)].map((m) => m[1].split('.').pop())
  const card = el('div', { className: 'card rejected' })
  card.innerHTML = `<header><span class="time muted">${clock(item.timeMs)}</span> <b>${escapeHtml(letter.source || item.source || '')}</b>
    <span class="type">${escapeHtml(letter.reasonKind || '?')}</span> <span class="reason">${escapeHtml(letter.reason || '')}</span>
    <span class="muted">${letter.index != null ? `event ${letter.index} of its request` : ''}</span></header>
    <pre>${jsonHtml(letter.payload ?? null, fields)}</pre>`
  $('#rejected-rows').prepend(card)
  while ($('#rejected-rows').children.length > MAX_ROWS) $('#rejected-rows').lastElementChild.remove()
  $('#rejected-count').textContent = String(++rejectedCount)
  $('#rejected-empty').hidden = true
}

function handle(lane, item) {
  if (paused) {
    held.push([lane, item])
    if (held.length > HELD_MAX) {
      held.shift()
      $('#sampled').hidden = false
    }
    $('#pause').textContent = `Resume (${held.length})`
    return
  }
  if (lane === 'raw') showRaw(item)
  else if (lane === 'enriched') showEnriched(item)
  else showRejected(item)
}

function clearLists() {
  rows.clear()
  orphans.clear()
  held = []
  rejectedCount = 0
  $('#live-rows').replaceChildren()
  $('#rejected-rows').replaceChildren()
  $('#rejected-count').textContent = '0'
  $('#live-empty').hidden = false
  $('#rejected-empty').hidden = false
}

function connect() {
  stream?.close()
  clearLists()
  const status = $('#status')
  stream = new EventSource(url('/console/events', currentFilter()))
  stream.onopen = () => Object.assign(status, { textContent: paused ? 'paused' : 'live', className: `pill ${paused ? 'warn' : 'ok'}` })
  stream.onerror = () => Object.assign(status, { textContent: 'reconnecting…', className: 'pill bad' })
  for (const lane of ['raw', 'enriched', 'rejected']) stream.addEventListener(lane, (event) => handle(lane, JSON.parse(event.data)))
  stream.addEventListener('sampled', () => ($('#sampled').hidden = false))
}

$('#pause').addEventListener('click', () => {
  paused = !paused
  $('#pause').classList.toggle('on', paused)
  $('#pause').textContent = paused ? 'Resume (0)' : 'Pause'
  Object.assign($('#status'), { textContent: paused ? 'paused' : 'live', className: `pill ${paused ? 'warn' : 'ok'}` })
  if (!paused) {
    const waiting = held
    held = []
    for (const [lane, item] of waiting) handle(lane, item)
  }
})
$('#clear').addEventListener('click', clearLists)

// ---- figures ----
const SPARK = '▁▂▃▄▅▆▇█'
const spark = (counts) => {
  const top = Math.max(1, ...counts)
  return counts.map((c) => (c ? SPARK[Math.min(7, Math.floor((c / top) * 7.99))] : ' ')).join('')
}
const perSec = (count, secs) => (count / secs).toFixed(count && count / secs < 1 ? 2 : 1)

function renderRates(stats) {
  const secsIntoMinute = Math.max(1, (stats.nowMs - stats.rates.firstMinuteMs) / 1000 - 14 * 60)
  const bySource = new Map()
  for (const s of stats.rates.series) {
    const total = bySource.get(s.source) || Array(s.perMinute.length).fill(0)
    s.perMinute.forEach((c, i) => (total[i] += c))
    bySource.set(s.source, total)
  }
  const row = (label, counts, strong) => {
    const now = counts[counts.length - 1]
    const sum = counts.reduce((a, b) => a + b, 0)
    return `<tr${strong ? ' class="strong"' : ''}><td>${label}</td><td class="num">${perSec(now, secsIntoMinute)}</td>
      <td class="num">${perSec(sum, 15 * 60)}</td><td class="num">${sum}</td><td class="spark">${spark(counts)}</td></tr>`
  }
  let html = '<tr><th>source / event</th><th>events/s now</th><th>events/s 15 min</th><th>events</th><th>per minute</th></tr>'
  for (const [source, counts] of bySource) {
    html += row(`<b>${escapeHtml(source)}</b>`, counts, true)
    for (const s of stats.rates.series.filter((s) => s.source === source)) html += row(`&nbsp;&nbsp;${escapeHtml(s.name)}`, s.perMinute)
  }
  if (!bySource.size) html += '<tr><td colspan="5" class="muted">No events in the last 15 minutes.</td></tr>'
  $('#rate-table').innerHTML = html
  let products = '<tr><th>product</th><th>activity</th><th>events</th><th>revenue</th></tr>'
  for (const p of stats.products) {
    const events = Object.entries(p.events).map(([name, n]) => `${escapeHtml(name)} ${n}`).join(' · ')
    const name = productNames.get(p.productId)
    products += `<tr><td><b>${escapeHtml(p.productId)}</b> ${name ? escapeHtml(name) : ''}</td><td>${events}</td><td class="num">${p.total}</td><td class="num">${p.revenue}</td></tr>`
  }
  if (!stats.products.length) products += `<tr><td colspan="4" class="muted">No product activity windows closed in the last 15 minutes (the enricher writes one per minute, after its grace period).</td></tr>`
  $('#product-table').innerHTML = products
}

function renderCounters(stats) {
  const c = stats.counters
  const lag = stats.enricherLag == null ? 'n/a' : stats.enricherLag
  const items = [['accepted', c.accepted], ['rejected', c.rejected], ['shed', c.shed], ['503s', c.unavailable503],
    ['rate-limited', c.rateLimited], ['spool', `${c.spoolEvents} ev`], ['enricher lag', lag]]
  const violations = Object.entries(c.planViolations || {})
  const planned = violations.length
    ? violations.map(([name, n]) => `${escapeHtml(name)} ${n}`).join(' · ')
    : '0'
  $('#counters').innerHTML = items.map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`).join('') +
    `<div><dt>plan violations</dt><dd>${planned}</dd></div>`
  if (stats.error) Object.assign($('#status'), { textContent: stats.error, className: 'pill bad' })
  if (stats.sampled > 0) $('#sampled').hidden = false
  const names = new Set(stats.rates.series.map((s) => s.source))
  $('#source-names').innerHTML = [...names].map((n) => `<option value="${escapeHtml(n)}">`).join('')
}

async function poll() {
  try {
    const stats = await api('/console/stats')
    renderCounters(stats)
    renderRates(stats)
  } catch (error) {
    console.debug('stats', error)
  }
  setTimeout(poll, 2000)
}

// ---- install ----
function snippet(title, code) {
  return `<h3>${title}</h3><div class="snippet"><pre>${escapeHtml(code)}</pre><button type="button" class="copy">Copy</button></div>`
}

async function install() {
  const { gateway, sources } = await api('/console/sources')
  $('#install-sources').innerHTML = sources.map(({ name, writeKey, allowedOrigins }) => `<div class="card install">
    <header><b>${escapeHtml(name)}</b> <span class="muted">write key</span> <code>${escapeHtml(writeKey)}</code>
    <span class="muted">browser origins: ${escapeHtml(allowedOrigins.join(', ') || 'none (server SDKs only)')}</span></header>
    ${snippet('Browser: the tracker t.js', `<script>window.ct = window.ct || function () { (ct.q = ct.q || []).push(arguments) }<\/script>\n<script defer src="${gateway}/t.js" data-write-key="${writeKey}"><\/script>`)}
    ${snippet('Browser: Segment analytics.js', `AnalyticsBrowser.load({ writeKey: '${writeKey}', cdnURL: '${gateway}' })`)}
    ${snippet('Node: @segment/analytics-node', `const analytics = new Analytics({ writeKey: '${writeKey}', host: '${gateway}' })`)}
    ${snippet('Python: segment-analytics-python', `import segment.analytics as analytics\nanalytics.write_key = '${writeKey}'\nanalytics.host = '${gateway}'`)}
    ${snippet('PostHog (posthog-js)', `posthog.init('${writeKey}', { api_host: '${gateway}' })`)}
    ${snippet('curl', `curl -u ${writeKey}: -H 'content-type: application/json' \\\n  -d '{"type":"track","event":"Console Test","anonymousId":"a1"}' \\\n  ${gateway}/v1/track`)}
  </div>`).join('')
  for (const button of document.querySelectorAll('button.copy'))
    button.addEventListener('click', () => navigator.clipboard?.writeText($('pre', button.parentElement).textContent))
}

connect()
poll()
install().catch((error) => console.debug('install', error))
