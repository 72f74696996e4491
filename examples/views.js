import { createHash } from 'node:crypto'
import { deviceName } from './device-name.js'

// Server-rendered pages. `html` escapes every interpolated value unless it is itself the
// result of `html`, so user-controlled text (a name, a user agent, an IP) cannot inject markup.

class Html {
  constructor (value) {
    this.value = value
  }
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml (value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c])
}

function render (value) {
  if (value instanceof Html) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(value)
}

function html (strings, ...values) {
  let out = strings[0]
  values.forEach((value, i) => { out += render(value) + strings[i + 1] })
  return new Html(out)
}

const CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #f5f5f7; --card: #fff; --muted: #5a5a60;
  --line: #d2d2d7; --accent: #0b57d0; --danger: #b3261e; --ok: #1e6e35; }
@media (prefers-color-scheme: dark) { :root { --fg: #f2f2f4; --bg: #161618; --card: #222226;
  --muted: #b0b0b8; --line: #3a3a40; --accent: #8ab4f8; --danger: #f2b8b5; --ok: #8fd19e; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: 1rem 1.25rem; margin: 0 0 1rem; }
ul.devices { list-style: none; padding: 0; margin: 0; }
ul.devices li { display: flex; gap: 1rem; justify-content: space-between; align-items: flex-start;
  padding: .9rem 0; border-top: 1px solid var(--line); }
ul.devices li:first-child { border-top: 0; }
ul.devices li > div { flex: 1; min-width: 0; }
ul.devices li > form { flex: none; }
.card > h2 { margin: 0; }
.agent { font-weight: 600; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: .9rem; margin: .15rem 0 0; }
.fact { white-space: nowrap; }
@media (max-width: 30rem) { ul.devices li { flex-direction: column; gap: .5rem; } }
.badge { display: inline-block; font-size: .8rem; font-weight: 600; color: var(--ok); border: 1px solid currentColor;
  border-radius: 1rem; padding: 0 .5rem; margin-left: .4rem; }
form { margin: 0; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
.check { display: flex; align-items: center; gap: .5rem; margin: 0 0 .25rem; }
.check label { margin: 0; }
.check input { width: 1.1rem; height: 1.1rem; margin: 0; accent-color: var(--accent); }
input[type=text] { width: 100%; font: inherit; padding: .5rem .65rem; border: 1px solid var(--line); border-radius: .5rem;
  background: var(--bg); color: var(--fg); margin-bottom: .75rem; }
button { font: inherit; white-space: nowrap; padding: .45rem .9rem; border-radius: .5rem; border: 1px solid var(--accent); cursor: pointer;
  background: var(--accent); color: var(--card); }
button.secondary { background: transparent; color: var(--accent); }
button.danger { background: transparent; color: var(--danger); border-color: var(--danger); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.notice { border-left: 4px solid var(--ok); }
.error { border-left: 4px solid var(--danger); color: var(--danger); margin: -.25rem 0 .75rem; }
.hint { color: var(--muted); font-size: .9rem; }
`

/** The hash that lets the Content-Security-Policy allow our one inline style sheet and nothing else. */
export const STYLE_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`

function scriptTag (src) {
  return html`<script src="${src}" defer></script>\n`
}

/** `script`: the path of a script of this origin the page loads (deferred), if any. */
function layout (title, body, { script } = {}) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · fastify-user-sessions example</title>
<style>${new Html(CSS)}</style>
${script === undefined ? '' : scriptTag(script)}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`.value
}

function notice (message) {
  return message === undefined ? '' : html`<p class="card notice" role="status">${message}</p>`
}

/** `unremembered`: the lifetimes of a sign-in without "Remember me" ({ ttl, absoluteTtl } in seconds). */
export function loginPage ({ name = '', remember = false, error, message, unremembered }) {
  return layout('Sign in', html`<h1>Sign in</h1>
${notice(message)}
<form class="card" method="post" action="/login" novalidate>
  <label for="name">Your name</label>
  ${error === undefined
    ? ''
    : html`<p class="error" id="name-error">${error}</p>`}
  <input type="text" id="name" name="name" value="${name}" required maxlength="64"
    autocomplete="username" autofocus${error === undefined ? '' : html` aria-invalid="true" aria-describedby="name-error"`}>
  <div class="check">
    <input type="checkbox" id="remember" name="remember" value="yes"${remember ? html` checked` : ''} aria-describedby="remember-hint">
    <label for="remember">Remember me</label>
  </div>
  <p class="hint" id="remember-hint">Unchecked, you are signed out when you close the browser, after ${duration(unremembered.ttl)} without use, or after ${duration(unremembered.absoluteTtl)}.</p>
  <button type="submit">Sign in</button>
  <p class="hint">This is a demo: any name signs in. Sign in with the same name from another browser to see a second device.</p>
</form>`)
}

/** A time in UTC, readable without JavaScript; /devices.js says it in the viewer's terms ("2 minutes ago", local time). */
function time (ms) {
  const iso = new Date(ms).toISOString()
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`
}

const UNITS = [[86_400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']]

/** Seconds in the largest unit that counts them exactly: 1800 → "30 minutes", 90000 → "25 hours". */
export function duration (seconds) {
  const [size, unit] = UNITS.find(([size]) => seconds % size === 0)
  const n = seconds / size
  return `${n} ${unit}${n === 1 ? '' : 's'}`
}

/** How the session travels; an API token says so in its name already. */
function carrier (record) {
  if (record.transport === 'bearer') return []
  if (record.deviceBound) return ['Browser cookie, remembered, bound to this device ·']
  return [record.persistent ? 'Browser cookie, remembered ·' : 'Browser cookie, until the browser closes ·']
}

/** A line of facts, each kept whole: a narrow screen wraps it between them, never inside one. */
function facts (...items) {
  return html`<p class="meta">${items.map((item, i) => html`${i === 0 ? '' : ' '}<span class="fact">${item}</span>`)}</p>`
}

function device (record, current) {
  const labelId = `device-${record.id}`
  return html`<li>
  <div id="${labelId}">
    <div class="agent"${record.userAgent === undefined ? '' : html` title="${record.userAgent}"`}>${deviceName(record.userAgent, record.transport)}${current ? html`<span class="badge">This device</span>` : ''}</div>
    ${facts(html`Signed in ${time(record.createdAt)} ·`, html`last seen ${time(record.lastSeenAt)} ·`, `IP ${record.ip ?? 'unknown'}`)}
    ${facts(...carrier(record), html`${record.transport === 'bearer' ? 'Expires' : 'expires'} ${time(record.expiresAt)} ·`,
      `idle timeout ${duration(record.ttl)},`, `at most ${duration(record.absoluteTtl)}`)}
  </div>
  ${current
    ? ''
    : html`<form method="post" action="/devices/${encodeURIComponent(record.id)}/revoke">
    <button type="submit" class="danger" aria-describedby="${labelId}">Sign out</button>
  </form>`}
</li>`
}

/** `sessions` holds the current session first. */
export function devicesPage ({ user, sessions, currentId, message }) {
  const others = sessions.length - 1
  return layout('Your devices', html`<h1>Your devices</h1>
${notice(message)}
<p>Signed in as <strong>${user}</strong>. ${sessions.length === 1
    ? 'This is your only signed-in device.'
    : `You are signed in on ${sessions.length} devices.`}</p>
<section class="card" aria-labelledby="devices-heading">
  <h2 id="devices-heading" class="hint">Signed-in devices</h2>
  <ul class="devices">
    ${sessions.map((s) => device(s, s.id === currentId))}
  </ul>
</section>
<div class="actions">
  ${others > 0
    ? html`<form method="post" action="/logout-others"><button type="submit" class="secondary">Log out other devices</button></form>`
    : ''}
  <form method="post" action="/logout-everywhere"><button type="submit" class="danger">Log out everywhere</button></form>
  <form method="post" action="/logout"><button type="submit">Log out</button></form>
</div>`, { script: '/devices.js' })
}

export function errorPage (statusCode, message) {
  return layout(`Error ${statusCode}`, html`<h1>${message}</h1>
<p class="card">Error ${statusCode}. <a href="/">Back to the start page</a></p>`)
}
