import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { get, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { buildApp } from '../../examples/app.js'
import { configFromEnv } from '../../examples/config.js'
import { deviceName } from '../../examples/device-name.js'
import { duration } from '../../examples/views.js'
import { SECRET, cookieOf, logSink, setCookieOf, testClock } from '../helpers/app.js'
import { redisServer, until } from '../helpers/redis.js'

// The example app (examples/), driven as a browser would: urlencoded form posts, 303 redirects, HTML.

const SERVER = fileURLToPath(new URL('../../examples/server.js', import.meta.url))
const LIB = fileURLToPath(new URL('../../lib/', import.meta.url))
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url))

interface Device {
  app: FastifyInstance
  userAgent: string
  cookie?: string
}

async function example (options: Parameters<typeof buildApp>[0] = {}): Promise<FastifyInstance> {
  const app = await buildApp({ secret: SECRET, ...options })
  t.teardown(() => app.close())
  return app
}

function device (app: FastifyInstance, userAgent: string): Device {
  return { app, userAgent }
}

/** A request from the device; keeps its cookie up to date, as a browser does. */
async function request (d: Device, method: 'GET' | 'POST', url: string, form?: string,
  headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const res = await d.app.inject({
    method,
    url,
    headers: {
      'user-agent': d.userAgent,
      ...(d.cookie === undefined ? {} : { cookie: d.cookie }),
      ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      ...headers
    },
    ...(form === undefined ? {} : { payload: form })
  })
  const set = res.cookies.find((c) => c.name === 'sid')
  if (set !== undefined) d.cookie = set.value === '' ? undefined : cookieOf(res)
  return res
}

async function login (d: Device, name: string, remember = false): Promise<LightMyRequestResponse> {
  return await request(d, 'POST', '/login', new URLSearchParams({ name, ...(remember ? { remember: 'yes' } : {}) }).toString())
}

/** A JSON client of the example's API: no cookie jar, no Origin, a token once it has one. */
async function api (app: FastifyInstance, method: 'GET' | 'POST', url: string, { token, json, headers = {} }:
{ token?: string, json?: unknown, headers?: Record<string, string> } = {}): Promise<LightMyRequestResponse> {
  return await app.inject({
    method,
    url,
    headers: { 'user-agent': 'curl/8.5.0', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    ...(json === undefined ? {} : { payload: json as object })
  })
}

const MINUTE = 60_000
// A fixed start, so that deadlines show as known times on the devices page.
const NINE_AM = Date.UTC(2030, 0, 7, 9, 0)

/** The devices page as a list of rows: the text of each <li>, each line of facts read as one (without its spans). */
function rows (res: LightMyRequestResponse): string[] {
  return [...res.body.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => (m[1] as string).replace(/<span class="fact">([\s\S]*?)<\/span>/g, '$1'))
}

function revokeUrls (res: LightMyRequestResponse): string[] {
  return [...res.body.matchAll(/action="(\/devices\/[^"]+\/revoke)"/g)].map((m) => m[1] as string)
}

function flash (res: LightMyRequestResponse): string | undefined {
  return /role="status">([^<]*)</.exec(res.body)?.[1]
}

// The example imports the package by its name, that is dist/: a stale build would test old code
// (and map its coverage onto the wrong lines of lib/).
t.test('dist/ is built from the current lib/ (else: npm run build)', async (t) => {
  const stale = readdirSync(LIB, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .filter((f) => {
      const built = DIST + f.replace(/\.ts$/, '.js')
      return !existsSync(built) || statSync(built).mtimeMs < statSync(LIB + f).mtimeMs
    })
  t.same(stale, [], 'lib/ files newer than their build in dist/')
})

t.test('two devices of one user see each other, each marked "This device" on its own page', async (t) => {
  const app = await example()
  const firefox = device(app, 'Firefox on Linux')
  const phone = device(app, 'Safari on iPhone')
  const res = await login(firefox, 'alice')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/devices')
  t.ok(firefox.cookie)
  await login(phone, 'alice')

  for (const [me, other] of [[firefox, phone], [phone, firefox]] as const) {
    const page = await request(me, 'GET', '/devices')
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-type'], /^text\/html/)
    t.match(page.body, 'Signed in as <strong>alice</strong>')
    t.match(page.body, 'You are signed in on 2 devices.')
    const [first, second, ...rest] = rows(page)
    t.same(rest, [])
    t.match(first, me.userAgent, 'this device comes first')
    t.match(first, 'This device')
    t.match(first, /IP 127\.0\.0\.1/)
    t.match(first, /Signed in <time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/)
    t.match(second, other.userAgent)
    t.notMatch(second, 'This device')
    t.equal(revokeUrls(page).length, 1, 'a sign-out button for the other device only')
    t.match(second, /<button type="submit" class="danger" aria-describedby="device-[^"]+">Sign out<\/button>/)
  }

  t.equal((await request(firefox, 'GET', '/')).headers.location, '/devices', 'a signed-in visitor skips the login form')
})

t.test('revoking the other device signs it out on its next page load', async (t) => {
  const app = await example()
  const laptop = device(app, 'Laptop')
  const phone = device(app, 'Phone')
  await login(laptop, 'alice')
  await login(phone, 'alice')
  const [url] = revokeUrls(await request(laptop, 'GET', '/devices'))
  const res = await request(laptop, 'POST', url as string)
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/devices')

  const after = await request(laptop, 'GET', '/devices')
  t.equal(flash(after), 'That device is signed out.')
  t.equal(rows(after).length, 1)
  t.match(after.body, 'This is your only signed-in device.')
  t.same(revokeUrls(after), [])
  t.notMatch(after.body, 'Log out other devices', 'no button to sign out other devices when there are none')
  t.equal(flash(await request(laptop, 'GET', '/devices')), undefined, 'the notice shows once')

  const gone = await request(phone, 'GET', '/devices')
  t.equal(gone.statusCode, 303)
  t.equal(gone.headers.location, '/')
  t.equal(phone.cookie, undefined, 'the dead cookie is expired')
  t.match((await request(phone, 'GET', '/')).body, '<h1>Sign in</h1>')
})

t.test('without client tracking, the page says what it does not know', async (t) => {
  const app = await example({ trackClient: false })
  const d = device(app, 'Firefox')
  await login(d, 'alice')
  const [row] = rows(await request(d, 'GET', '/devices'))
  t.match(row, '<div class="agent">Unknown device<')
  t.match(row, 'IP unknown')
  t.notMatch(row, 'Firefox')
})

t.test('a user cannot revoke another user\'s session', async (t) => {
  const app = await example()
  const alice = device(app, 'Alice')
  const mallory = device(app, 'Mallory')
  await login(alice, 'alice')
  await login(mallory, 'mallory')
  const [victim] = await app.sessions.getAll('alice')
  const res = await request(mallory, 'POST', `/devices/${encodeURIComponent(victim!.id)}/revoke`)
  t.equal(res.statusCode, 303)
  t.equal(flash(await request(mallory, 'GET', '/devices')), 'No such session on your account: it may have ended already.')
  const page = await request(alice, 'GET', '/devices')
  t.equal(page.statusCode, 200, 'alice is still signed in')
  t.equal(rows(page).length, 1)
  const bogus = await request(mallory, 'POST', '/devices/not-a-session-id/revoke')
  t.equal(bogus.statusCode, 303)
})

t.test('revoking this very session is a log out', async (t) => {
  const app = await example()
  const laptop = device(app, 'Laptop')
  await login(laptop, 'alice')
  const [mine] = await app.sessions.getAll('alice')
  const res = await request(laptop, 'POST', `/devices/${encodeURIComponent(mine!.id)}/revoke`)
  t.equal(res.headers.location, '/?out=one')
  t.equal(laptop.cookie, undefined)
  t.same(await app.sessions.getAll('alice'), [])
})

t.test('log out other devices keeps this one and the other users', async (t) => {
  const clock = testClock()
  const app = await example({ clock: clock.now })
  const [a, b, c] = ['A', 'B', 'C'].map((ua) => device(app, `Browser ${ua}`)) as [Device, Device, Device]
  const carol = device(app, 'Carol')
  for (const d of [a, b, c]) {
    await login(d, 'bob')
    clock.tick(60_000)
  }
  await login(carol, 'carol')
  const page = await request(a, 'GET', '/devices')
  t.same(rows(page).map((r) => /class="agent" title="([^"]*)">/.exec(r)?.[1]), ['Browser A', 'Browser C', 'Browser B'],
    'this device, then the others, most recently seen first')
  t.match(page.body, '<button type="submit" class="secondary">Log out other devices</button>')

  const res = await request(a, 'POST', '/logout-others')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/devices')
  const after = await request(a, 'GET', '/devices')
  t.equal(flash(after), 'Signed out 2 other devices.')
  t.equal(rows(after).length, 1)
  for (const d of [b, c]) t.equal((await request(d, 'GET', '/devices')).headers.location, '/')
  t.equal((await request(carol, 'GET', '/devices')).statusCode, 200, 'another user is untouched')

  await login(b, 'bob')
  await request(a, 'POST', '/logout-others')
  t.equal(flash(await request(a, 'GET', '/devices')), 'Signed out 1 other device.')
})

t.test('log out everywhere signs out every device of the user, this one too', async (t) => {
  const app = await example()
  const a = device(app, 'A')
  const b = device(app, 'B')
  const carol = device(app, 'Carol')
  await login(a, 'bob')
  await login(b, 'bob')
  await login(carol, 'carol')
  const res = await request(a, 'POST', '/logout-everywhere')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/?out=all')
  t.equal(a.cookie, undefined, 'the cookie is expired')
  t.same(await app.sessions.getAll('bob'), [])
  t.equal((await request(b, 'GET', '/devices')).headers.location, '/')
  t.equal((await request(carol, 'GET', '/devices')).statusCode, 200)
  const page = await request(a, 'GET', '/?out=all')
  t.equal(flash(page), 'You are signed out on all your devices.')
})

t.test('log out', async (t) => {
  const app = await example()
  const a = device(app, 'A')
  await login(a, 'bob')
  const res = await request(a, 'POST', '/logout')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/?out=one')
  t.equal(a.cookie, undefined)
  t.equal(flash(await request(a, 'GET', '/?out=one')), 'You are signed out.')
  t.equal(flash(await request(a, 'GET', '/?out=__proto__')), undefined, 'only known notices')
})

t.test('signed-out visitors are sent to the login form', async (t) => {
  const app = await example()
  const anon = device(app, 'Anon')
  for (const [method, url] of [['GET', '/devices'], ['POST', '/logout'], ['POST', '/logout-others'],
    ['POST', '/logout-everywhere'], ['POST', '/devices/x/revoke']] as const) {
    const res = await request(anon, method, url)
    t.equal(res.statusCode, 303, `${method} ${url}`)
    t.equal(res.headers.location, '/')
  }
  t.equal(anon.cookie, undefined, 'and get no session')
})

t.test('everything user-controlled is escaped', async (t) => {
  const app = await example()
  const evil = device(app, '<img src=x onerror=alert(2)>')
  const res = await app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress: '"><script>alert(3)</script>',
    headers: { 'user-agent': evil.userAgent, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'name=' + encodeURIComponent('<script>alert(1)</script>')
  })
  evil.cookie = cookieOf(res)
  const page = await request(evil, 'GET', '/devices')
  t.equal(page.statusCode, 200)
  t.notMatch(page.body, '<script>')
  t.notMatch(page.body, '<img')
  t.match(page.body, 'Signed in as <strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>')
  t.match(page.body, '&lt;img src=x onerror=alert(2)&gt;')
  t.match(page.body, 'IP &quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;')

  const tooLong = await request(evil, 'POST', '/login', 'name=' + encodeURIComponent(`"><b>${'x'.repeat(64)}'`))
  t.equal(tooLong.statusCode, 400)
  t.match(tooLong.body, 'value="&quot;&gt;&lt;b&gt;xxx')
  t.match(tooLong.body, 'x&#39;"')
  t.notMatch(tooLong.body, '<b>')
})

t.test('login form validation answers 400 with the form, never 500', async (t) => {
  const app = await example()
  const d = device(app, 'D')
  for (const [form, message] of [
    ['name=', 'Enter a name to sign in.'],
    ['name=+++', 'Enter a name to sign in.'],
    ['other=1', 'Enter a name to sign in.'],
    ['', 'Enter a name to sign in.'],
    [`name=${'é'.repeat(65)}`, 'Use at most 64 characters.']
  ] as const) {
    const res = await request(d, 'POST', '/login', form)
    t.equal(res.statusCode, 400, JSON.stringify(form))
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, `<p class="error" id="name-error">${message}</p>`)
    t.match(res.body, 'aria-invalid="true" aria-describedby="name-error"')
    t.match(res.body, '<label for="name">Your name</label>')
  }
  const noBody = await request(d, 'POST', '/login')
  t.equal(noBody.statusCode, 400)
  const json = await request(d, 'POST', '/login', undefined, { 'content-type': 'application/json' })
  t.equal(json.statusCode, 400, 'an empty JSON body is a client error too')
  t.match(json.body, '<!doctype html>')
  const huge = await request(d, 'POST', '/login', 'name=' + 'x'.repeat(5000))
  t.equal(huge.statusCode, 413)
  t.match(huge.body, /<h1>[^<]*too large/i)
  t.equal(d.cookie, undefined, 'no session for failed attempts')

  const ok = await request(d, 'POST', '/login', `name=${encodeURIComponent('  Zoë  ')}`)
  t.equal(ok.statusCode, 303)
  t.match((await request(d, 'GET', '/devices')).body, 'Signed in as <strong>Zoë</strong>', 'trimmed')
})

t.test('"Remember me" checked: a cookie with Max-Age, on the app\'s lifetimes; unchecked: a browser-session cookie, 30 minutes idle, 12 hours at most', async (t) => {
  const clock = testClock(NINE_AM)
  const app = await example({ clock: clock.now })
  const form = await app.inject('/')
  t.match(form.body, '<input type="checkbox" id="remember" name="remember" value="yes" aria-describedby="remember-hint">',
    'unchecked by default')
  t.match(form.body, '<label for="remember">Remember me</label>')
  t.match(form.body, 'after 30 minutes without use, or after 12 hours.')

  const remembered = device(app, 'Home laptop')
  const kept = setCookieOf(await login(remembered, 'alice', true))
  t.equal(kept?.maxAge, 86_400, 'checked: Max-Age is the app\'s idle timeout')
  const borrowed = device(app, 'Library computer')
  const res = await login(borrowed, 'alice')
  t.equal(res.statusCode, 303)
  const once = setCookieOf(res)
  t.ok(once?.value, 'unchecked: a cookie is set')
  t.equal(once?.maxAge, undefined, 'without Max-Age')
  t.equal(once?.expires, undefined, 'without Expires')
  t.notMatch(String(res.headers['set-cookie']), /max-age|expires/i)

  const records = await app.sessions.getAll('alice')
  t.match(records.find((r) => r.userAgent === 'Home laptop'),
    { transport: 'cookie', persistent: true, ttl: 86_400, absoluteTtl: 2_592_000, expiresAt: NINE_AM + 1440 * MINUTE })
  t.match(records.find((r) => r.userAgent === 'Library computer'),
    { transport: 'cookie', persistent: false, ttl: 1800, absoluteTtl: 43_200, expiresAt: NINE_AM + 30 * MINUTE })

  // Whatever the browser does with its session cookie, the server ends the session.
  clock.tick(31 * MINUTE)
  t.equal((await request(borrowed, 'GET', '/devices')).headers.location, '/', 'unchecked: signed out after 30 idle minutes')
  t.equal((await request(remembered, 'GET', '/devices')).statusCode, 200, 'checked: still signed in')
  await login(borrowed, 'alice')
  // In use all day, a page every 29 minutes: the idle deadline rolls, up to 12 hours after sign-in.
  const statuses: number[] = []
  const lifetimes = new Set<unknown>()
  for (let i = 1; i <= 25; i++) {
    clock.tick(29 * MINUTE)
    const page = await request(borrowed, 'GET', '/devices')
    statuses.push(page.statusCode)
    const set = setCookieOf(page)
    if (set !== undefined && set.value !== '') lifetimes.add(set.maxAge ?? set.expires)
  }
  t.same(statuses, [...Array(24).fill(200), 303], 'unchecked: signed out at the first page load past 12 hours (12 h 05), in use or not')
  t.same([...lifetimes], [undefined], 'the cookie, refreshed along the way, never got a lifetime')

  const again = await request(device(app, 'D'), 'POST', '/login', 'name=&remember=yes')
  t.equal(again.statusCode, 400)
  t.match(again.body, 'value="yes" checked aria-describedby="remember-hint"', 'a refused form keeps the box as it was')
})

t.test('the devices page shows how each session travels, whether it is remembered, and its own deadline', async (t) => {
  const clock = testClock(NINE_AM)
  const app = await example({ clock: clock.now })
  const laptop = device(app, 'Laptop')
  const kiosk = device(app, 'Kiosk')
  await login(laptop, 'alice', true)
  clock.tick(MINUTE)
  await login(kiosk, 'alice')
  clock.tick(MINUTE)
  const token = (await api(app, 'POST', '/api/login', { json: { name: 'alice' } })).json().token as string
  clock.tick(MINUTE)

  const page = await request(laptop, 'GET', '/devices')
  t.match(page.body, 'You are signed in on 3 devices.')
  const byAgent = new Map(rows(page).map((r) => [/class="agent" title="([^"]*)">/.exec(r)?.[1], r]))
  t.match(byAgent.get('Laptop'), 'Browser cookie, remembered · expires <time datetime="2030-01-08T09:00:00.000Z">2030-01-08 09:00 UTC</time>' +
    ' · idle timeout 1 day, at most 30 days')
  t.match(byAgent.get('Kiosk'), 'Browser cookie, until the browser closes · expires <time datetime="2030-01-07T09:31:00.000Z">2030-01-07 09:31 UTC</time>' +
    ' · idle timeout 30 minutes, at most 12 hours')
  t.match(byAgent.get('curl/8.5.0'), 'curl · API token')
  t.match(byAgent.get('curl/8.5.0'), '<p class="meta">Expires <time datetime="2030-01-08T09:02:00.000Z">2030-01-08 09:02 UTC</time>' +
    ' · idle timeout 1 day, at most 30 days')
  t.notMatch(byAgent.get('curl/8.5.0'), 'remembered', 'a token has no cookie to remember')
  t.match(byAgent.get('curl/8.5.0'), /<button type="submit" class="danger" aria-describedby="device-[^"]+">Sign out<\/button>/,
    'an API token can be signed out from here')

  const [url] = revokeUrls(page).filter((u) => u.includes(encodeURIComponent(token.slice(0, token.lastIndexOf('.')))))
  await request(laptop, 'POST', url as string)
  t.equal((await api(app, 'GET', '/api/me', { token })).statusCode, 401, 'signing the token out here ends it')
})

t.test('devices are named as people name them, by a User-Agent parser; the raw string stays on hover', async (t) => {
  const cases: Array<[string | undefined, 'cookie' | 'bearer' | undefined, string]> = [
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/159.0.0.0 Safari/537.36', 'cookie', 'Chrome on Linux'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'cookie', 'Safari on iPhone'],
    ['Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'cookie', 'Safari on iPad'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'cookie', 'Safari on macOS'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0', 'cookie', 'Firefox on Windows'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0', 'cookie', 'Microsoft Edge on Windows'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/159.0.0.0 Mobile Safari/537.36', 'cookie', 'Chrome on Android'],
    ['curl/8.5.0', 'bearer', 'curl · API token'],
    ['python-requests/2.31.0', 'bearer', 'python-requests · API token'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148', 'bearer', 'Safari on iPhone · API token'],
    ['Fastify/5', undefined, 'Fastify'],
    ['x'.repeat(60), 'cookie', 'x'.repeat(40) + '…'],
    ['   ', 'cookie', 'Unknown device'],
    [undefined, 'bearer', 'Unknown device · API token']
  ]
  for (const [ua, transport, name] of cases) t.equal(deviceName(ua, transport), name, String(ua))

  const app = await example()
  const phone = device(app, cases[1]?.[0] as string)
  await login(phone, 'ann')
  const [row] = rows(await request(phone, 'GET', '/devices'))
  t.match(row, `<div class="agent" title="${phone.userAgent}">Safari on iPhone<span class="badge">This device</span></div>`)
  const anonymous = await app.inject({ method: 'POST', url: '/login', payload: 'name=ann', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  const [unknown] = rows(await request({ app, userAgent: '', cookie: cookieOf(anonymous) }, 'GET', '/devices'))
  t.match(unknown, '<div class="agent" title="lightMyRequest">lightMyRequest<span', 'inject\'s own User-Agent, named by its product')
})

t.test('durations show in the largest unit that counts them exactly', async (t) => {
  t.equal(duration(1), '1 second')
  t.equal(duration(59), '59 seconds')
  t.equal(duration(60), '1 minute')
  t.equal(duration(1800), '30 minutes')
  t.equal(duration(3600), '1 hour')
  t.equal(duration(90_000), '25 hours')
  t.equal(duration(86_400), '1 day')
  t.equal(duration(2_592_000), '30 days')
})

t.test('JSON login: a bearer token for /api/me, no cookie, an API token on the devices page; POST /api/logout ends it', async (t) => {
  const clock = testClock(NINE_AM)
  const app = await example({ clock: clock.now })
  const res = await api(app, 'POST', '/api/login', { json: { name: '  Zoë  ' } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['set-cookie'], undefined, 'no cookie')
  t.equal(res.headers['cache-control'], 'no-store', 'the token is not cached')
  const { token, expiresAt, ...rest } = res.json()
  t.same(rest, {})
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
  t.equal(expiresAt, '2030-01-08T09:00:00.000Z', 'on the app\'s idle timeout of a day')

  clock.tick(10 * MINUTE)
  const me = await api(app, 'GET', '/api/me', { token })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { user: 'Zoë', expiresAt: '2030-01-08T09:00:00.000Z' }, 'the name is checked and trimmed as on the form')
  t.equal(me.headers['set-cookie'], undefined)
  clock.tick(3 * 3600_000) // past the refresh step (a tenth of the day): the idle deadline moves, in the store
  t.equal((await api(app, 'GET', '/api/me', { token })).headers['set-cookie'], undefined)
  t.match(await app.sessions.getAll('Zoë'), [{ transport: 'bearer', userAgent: 'curl/8.5.0', expiresAt: Date.parse('2030-01-08T12:10:00.000Z') }])

  const browser = device(app, 'Firefox')
  await login(browser, 'Zoë', true)
  const page = await request(browser, 'GET', '/devices')
  const [, apiRow] = rows(page)
  t.match(apiRow, 'title="curl/8.5.0">curl · API token<')
  t.match(apiRow, '<p class="meta">Expires <time')

  const out = await api(app, 'POST', '/api/logout', { token })
  t.equal(out.statusCode, 204)
  t.equal(out.body, '')
  t.equal(out.headers['set-cookie'], undefined)
  const after = await api(app, 'GET', '/api/me', { token })
  t.equal(after.statusCode, 401, 'the token is dead')
  t.equal(rows(await request(browser, 'GET', '/devices')).length, 1, 'and gone from the devices page')
  t.equal((await api(app, 'POST', '/api/logout', { token })).statusCode, 401, 'logging out twice is a 401')
})

t.test('the JSON API answers bad tokens, bad bodies and unknown routes with JSON errors, never a 500', async (t) => {
  const app = await example()
  const token = (await api(app, 'POST', '/api/login', { json: { name: 'alice' } })).json().token as string
  const dot = token.lastIndexOf('.')
  const forged = token.slice(0, dot + 1) + (token[dot + 1] === 'A' ? 'B' : 'A') + token.slice(dot + 2)
  for (const authorization of [undefined, 'Bearer', 'Bearer garbage', `Bearer ${forged}`, `Bearer ${token}x`,
    `Bearer ${'a'.repeat(5000)}`, 'Bearer ☃', `Basic ${Buffer.from('alice:x').toString('base64')}`]) {
    const res = await api(app, 'GET', '/api/me', { headers: authorization === undefined ? {} : { authorization } })
    t.equal(res.statusCode, 401, `${String(authorization).slice(0, 20)}: 401`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.headers['www-authenticate'], 'Bearer')
    t.same(res.json(), { statusCode: 401, message: 'Send a valid token: Authorization: Bearer <token>' })
    t.equal(res.headers['set-cookie'], undefined)
  }
  t.equal((await api(app, 'POST', '/api/logout', { headers: { authorization: 'Bearer nope' } })).statusCode, 401)

  const cases: Array<[Record<string, string>, string | undefined, number, string | RegExp]> = [
    [{ 'content-type': 'application/json' }, '{"name":""}', 400, 'Enter a name to sign in.'],
    [{ 'content-type': 'application/json' }, '{"name":"   "}', 400, 'Enter a name to sign in.'],
    [{ 'content-type': 'application/json' }, '{"name":5}', 400, 'Enter a name to sign in.'],
    [{ 'content-type': 'application/json' }, '{"name":["a"]}', 400, 'Enter a name to sign in.'],
    [{ 'content-type': 'application/json' }, 'null', 400, 'Enter a name to sign in.'],
    [{ 'content-type': 'application/json' }, '{"__proto__":{"name":"x"}}', 400, /./],
    [{ 'content-type': 'application/json' }, JSON.stringify({ name: 'é'.repeat(65) }), 400, 'Use at most 64 characters.'],
    [{ 'content-type': 'application/json' }, '{"name":', 400, /not valid JSON/],
    [{ 'content-type': 'application/json' }, '', 400, /cannot be empty/],
    [{ 'content-type': 'application/json' }, JSON.stringify({ name: 'x'.repeat(5000) }), 413, /too large/i],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 'name=alice', 415, 'Unsupported Media Type'],
    [{ 'content-type': 'text/plain' }, '{"name":"alice"}', 415, 'Unsupported Media Type'],
    [{ 'content-type': 'application/json', origin: 'https://evil.example' }, '{"name":"alice"}', 403, 'Cross-site form posts are refused'],
    [{}, undefined, 400, 'Enter a name to sign in.']
  ]
  for (const [headers, payload, statusCode, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/api/login', headers, ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, statusCode, `${JSON.stringify(headers)} ${String(payload).slice(0, 30)}: ${statusCode}`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.json().statusCode, statusCode)
    t.match(res.json().message, message)
    t.equal(res.headers['set-cookie'], undefined)
  }
  t.same(await app.sessions.getAll('x'), [], 'no session from a refused login')
  const missing = await api(app, 'GET', '/api/nope')
  t.equal(missing.statusCode, 404)
  t.same(missing.json(), { statusCode: 404, message: 'No such route' })
  t.equal((await api(app, 'GET', '/api/login')).statusCode, 404, 'GET on a POST route: a JSON 404 too')
  t.equal((await api(app, 'GET', '/api/me', { token })).json().user, 'alice', 'the good token still works')
})

/** The example app whose clock throws once it is built: every request then fails inside the plugin. */
async function brokenClock (): Promise<{ app: Awaited<ReturnType<typeof example>>, sink: ReturnType<typeof logSink> }> {
  let broken = false
  const sink = logSink('error')
  const app = await example({
    logger: sink.logger,
    clock: () => {
      if (broken) throw new Error('the clock broke: internal detail')
      return Date.now()
    }
  })
  broken = true
  return { app, sink }
}

t.test('an internal error on the API is a generic JSON 500, logged, without its details', async (t) => {
  const { app, sink } = await brokenClock()
  const res = await api(app, 'POST', '/api/login', { json: { name: 'bob' } })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, message: 'Something went wrong on our side' })
  t.ok(sink.lines.some((l) => l.msg === 'request failed'))
})

t.test('cross-site form posts are refused', async (t) => {
  const app = await example()
  const d = device(app, 'D')
  const crossSitePosts: Array<Record<string, string>> = [
    { origin: 'https://evil.example' },
    { origin: 'null' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site', origin: 'http://localhost' }
  ]
  for (const headers of crossSitePosts) {
    const res = await request(d, 'POST', '/login', 'name=bob', headers)
    t.equal(res.statusCode, 403, JSON.stringify(headers))
    t.match(res.body, '<h1>Cross-site form posts are refused</h1>')
  }
  t.equal(d.cookie, undefined)
  const sameOriginPosts: Array<Record<string, string>> = [
    { origin: 'http://localhost' },
    { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' },
    { 'sec-fetch-site': 'none' }
  ]
  for (const headers of sameOriginPosts) {
    const res = await request(d, 'POST', '/login', 'name=bob', headers)
    t.equal(res.statusCode, 303, JSON.stringify(headers))
  }
})

t.test('pages carry security headers; unknown pages get an HTML 404', async (t) => {
  const app = await example()
  const res = await app.inject('/')
  t.match(res.headers['content-security-policy'], /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; form-action 'self'/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.body, '<html lang="en">')
  t.match(res.body, '<input type="text" id="name" name="name" value=""')
  const missing = await app.inject('/nope')
  t.equal(missing.statusCode, 404)
  t.match(missing.body, '<h1>Page not found</h1>')
})

t.test('an internal error is a generic 500 page, logged, without its details', async (t) => {
  const { app, sink } = await brokenClock()
  const res = await request(device(app, 'D'), 'POST', '/login', 'name=bob')
  t.equal(res.statusCode, 500)
  t.match(res.body, '<h1>Something went wrong on our side</h1>')
  t.notMatch(res.body, 'internal detail')
  t.ok(sink.lines.some((l) => l.msg === 'request failed'))
})

t.test('without a secret: the memory store needs none, and nothing is logged', async (t) => {
  const sink = logSink('warn')
  const app = await buildApp({ logger: sink.logger })
  t.teardown(() => app.close())
  t.same(sink.lines, [])
  const d = device(app, 'D')
  await login(d, 'bob')
  t.equal((await request(d, 'GET', '/devices')).statusCode, 200)

  const other = await example({ logger: false })
  t.equal((await request({ ...d, app: other }, 'GET', '/devices')).statusCode, 303, 'another process does not know that cookie')
})

t.test('server settings come from the environment', async (t) => {
  t.same(configFromEnv({}), { port: 3000, host: '127.0.0.1', logLevel: 'info', secret: undefined, tls: undefined })
  t.same(configFromEnv({ PORT: '', HOST: '', LOG_LEVEL: '', SESSION_SECRET: '', TLS_KEY: '', TLS_CERT: '' }),
    { port: 3000, host: '127.0.0.1', logLevel: 'info', secret: undefined, tls: undefined }, 'empty is unset')
  t.same(configFromEnv({ PORT: '0', HOST: '::1', LOG_LEVEL: 'debug', SESSION_SECRET: SECRET, TLS_KEY: 'k.pem', TLS_CERT: 'c.pem' }),
    { port: 0, host: '::1', logLevel: 'debug', secret: SECRET, tls: { key: 'k.pem', cert: 'c.pem' } })
  for (const env of [{ TLS_KEY: 'k.pem' }, { TLS_CERT: 'c.pem' }]) {
    t.throws(() => configFromEnv(env), { message: /^TLS_KEY and TLS_CERT go together/ }, JSON.stringify(env))
  }
  for (const PORT of [' ', 'abc', '1.5', '-1', '65536']) {
    t.throws(() => configFromEnv({ PORT }), { message: /^PORT must be an integer from 0 to 65535/ }, JSON.stringify(PORT))
  }
})

t.test('npm start: examples/server.js serves and closes on SIGTERM', async (t) => {
  const env: Record<string, string | undefined> = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' }
  delete env.SESSION_SECRET
  const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      const m = /Server listening at (http:\/\/[^"]+)/.exec(out)
      if (m !== null) resolve(m[1] as string)
    })
    child.once('exit', () => reject(new Error(`the server exited early:\n${out}`)))
  })
  const res = await fetch(address + '/')
  t.equal(res.status, 200)
  t.match(await res.text(), '<h1>Sign in</h1>')
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, out)
  t.notMatch(out, 'SESSION_SECRET', 'no warning about a secret the memory store does not use')
  t.match(out, '"signal":"SIGTERM","msg":"closing the server"')
})

// The devices page's live sign-out (issue 14): GET /devices/events, over real HTTP as
// EventSource uses it, read chunk by chunk.

interface Stream {
  res: IncomingMessage
  /** Everything received so far. */
  text: () => string
  /** Resolves once the text received contains `what`. */
  received: (what: string) => Promise<void>
  /** Resolves when the server ended the stream. */
  ended: Promise<void>
}

async function listening (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function openStream (base: string, cookie: string | undefined): Promise<Stream> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${base}/devices/events`, { headers: { accept: 'text/event-stream', ...(cookie === undefined ? {} : { cookie }) } }, resolve)
      .once('error', reject)
  })
  let text = ''
  const waiting = new Set<() => void>()
  res.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
    for (const check of [...waiting]) check()
  })
  const ended = new Promise<void>((resolve, reject) => {
    res.once('end', resolve)
    res.once('error', reject)
  })
  const received = (what: string): Promise<void> => new Promise((resolve) => {
    const check = (): void => {
      if (!text.includes(what)) return
      waiting.delete(check)
      resolve()
    }
    waiting.add(check)
    check()
  })
  return { res, text: () => text, received, ended }
}

/** Rejects when `promise` takes longer than `ms`. */
async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

t.test('the devices page loads its live script from this origin, no inline script; the sign-in page says why it is shown', async (t) => {
  const app = await example()
  const d = device(app, 'D')
  await login(d, 'bob')
  const page = await request(d, 'GET', '/devices')
  t.match(page.body, '<script src="/devices.js" defer></script>')
  t.same([...page.body.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]), ['<script src="/devices.js" defer>'], 'one script, from a file')
  t.match(page.headers['content-security-policy'], /; script-src 'self'; connect-src 'self'$/)
  t.notMatch((await app.inject('/')).body, '<script', 'the sign-in page has none')

  const script = await app.inject('/devices.js')
  t.equal(script.statusCode, 200)
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal(script.headers['x-content-type-options'], 'nosniff')
  t.match(script.body, "new EventSource('/devices/events')")
  t.match(script.body, "'/?out=elsewhere'")

  t.equal(flash(await app.inject('/?out=elsewhere')), 'You were signed out from another device.')
  t.equal(flash(await app.inject('/?out=expired')), 'Your session has expired. Sign in again.')
})

t.test('GET /devices/events without a live session: 401, never a 500, and no session made', async (t) => {
  const app = await example()
  const anon = await app.inject({ url: '/devices/events', headers: { accept: 'text/event-stream' } })
  t.equal(anon.statusCode, 401)
  t.equal(anon.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(anon.headers['set-cookie'], undefined)
  const forged = await app.inject({ url: '/devices/events', headers: { cookie: 'sid=not-a-session' } })
  t.equal(forged.statusCode, 401)

  const d = device(app, 'D')
  await login(d, 'bob')
  await app.sessions.deleteAll('bob')
  t.equal((await request(d, 'GET', '/devices/events')).statusCode, 401, 'a session revoked before the stream opened')
})

t.test('log out everywhere from another instance ends the stream within 1 s, with the reason', async (t) => {
  // Two app instances on one memory table: what one revokes, the other hears.
  const a = await example({ storeOptions: { table: 'live-example' } })
  const b = await example({ storeOptions: { table: 'live-example' } })
  const phone = device(b, 'Phone')
  const laptop = device(a, 'Laptop')
  await login(phone, 'bob')
  await login(laptop, 'bob')
  const base = await listening(b)

  const stream = await openStream(base, phone.cookie)
  t.equal(stream.res.statusCode, 200)
  t.equal(stream.res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(stream.res.headers['cache-control'], 'no-store')
  t.match(stream.res.headers['content-security-policy'], /^default-src 'none'/, 'the security headers too')
  t.equal(stream.res.headers['set-cookie'], undefined)
  await within(1000, 'the first comment', stream.received(': live\n\n'))

  const started = Date.now()
  const res = await request(laptop, 'POST', '/logout-everywhere')
  t.equal(res.headers.location, '/?out=all')
  await within(1000, 'the end of the stream', stream.ended)
  t.ok(Date.now() - started < 1000, `ended after ${Date.now() - started} ms`)
  t.equal(stream.text(), ': live\n\nevent: signed-out\ndata: deleteAll\n\n', 'one event, then the end')
  t.equal((await request(phone, 'GET', '/devices')).headers.location, '/', 'and the phone is signed out')
})

t.test('each way a session ends reaches its stream: revoked from the devices page, logged out in another tab, expired', async (t) => {
  const app = await example()
  const base = await listening(app)
  const phone = device(app, 'Phone')
  const laptop = device(app, 'Laptop')
  await login(phone, 'bob')
  await login(laptop, 'bob')

  const revoked = await openStream(base, phone.cookie)
  await revoked.received(': live')
  const page = await request(laptop, 'GET', '/devices')
  const [url] = revokeUrls(page)
  await request(laptop, 'POST', url as string)
  await within(1000, 'revoked', revoked.ended)
  t.match(revoked.text(), 'event: signed-out\ndata: delete\n\n')

  // Two tabs share a cookie: one logs out, the other's stream ends.
  const tab = await openStream(base, laptop.cookie)
  await tab.received(': live')
  await request({ ...laptop }, 'POST', '/logout')
  await within(1000, 'logged out', tab.ended)
  t.match(tab.text(), 'event: signed-out\ndata: destroy\n\n')

  // Not remembered, one second of idle life: the watcher's timer at its deadline, not a request.
  const short = await example({ ttl: 1, absoluteTtl: 60 })
  const shortBase = await listening(short)
  const api = await short.inject({ method: 'POST', url: '/api/login', payload: { name: 'bob' } })
  const { token } = JSON.parse(api.body) as { token: string }
  const expiring = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${shortBase}/devices/events`, { headers: { authorization: `Bearer ${token}` } }, resolve).once('error', reject)
  })
  t.equal(expiring.statusCode, 200, 'a bearer token opens a stream too')
  let text = ''
  expiring.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  await within(3000, 'expired', once(expiring, 'end'))
  t.match(text, 'event: signed-out\ndata: expired\n\n')
})

t.test('heartbeat comments keep the stream alive, and the stream does not move the session\'s idle deadline', async (t) => {
  const clock = testClock(NINE_AM)
  const app = await example({ liveHeartbeat: 20, clock: clock.now })
  const base = await listening(app)
  const d = device(app, 'D')
  await login(d, 'bob', true)
  clock.tick(3 * 60 * MINUTE) // past the refresh throttle (a tenth of the day's idle timeout)
  const deadline = async (): Promise<number | undefined> => (await app.sessions.getAll('bob'))[0]?.expiresAt
  const before = await deadline()
  const stream = await openStream(base, d.cookie)
  await within(1000, 'two heartbeats', stream.received(': heartbeat\n\n: heartbeat\n\n'))
  t.equal(stream.res.headers['set-cookie'], undefined, 'no cookie: nothing is saved')
  stream.res.destroy()
  t.equal(await deadline(), before, 'an open tab does not keep the session alive')
  await request(d, 'GET', '/devices')
  t.equal(await deadline(), (before as number) + 3 * 60 * MINUTE, 'a page load does')
})

t.test('app.close() ends the open streams instead of waiting for them', async (t) => {
  const app = await buildApp({ secret: SECRET })
  const d = device(app, 'D')
  await login(d, 'bob')
  const stream = await openStream(await listening(app), d.cookie)
  await stream.received(': live')
  await within(2000, 'app.close()', app.close())
  await within(1000, 'the end of the stream', stream.ended)
  t.equal(stream.text(), ': live\n\n', 'no sign-out event: the session lives on in a store another process may share')
})

t.test('on Redis: no subscription left once the streams end, by a revocation or by the client going away', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const prefix = `live-example-${process.pid}:`
  const admin = new Redis(server.url)
  t.teardown(() => admin.quit())
  // The subscription is open while a session is followed and closed a little after none is
  // (there is no public count of followed sessions): Redis shows it as a subscriber of the bus's channel.
  const subscribers = async (): Promise<number> => {
    const [, count] = await admin.pubsub('NUMSUB', `${prefix}revoked`) as [string, number]
    return count
  }
  const a = await example({ store: 'redis', storeOptions: { url: server.url, prefix } })
  const b = await example({ store: 'redis', storeOptions: { url: server.url, prefix } })
  const base = await listening(b)
  const phones = [device(b, 'Phone 1'), device(b, 'Phone 2')]
  for (const phone of phones) await login(phone, 'bob')
  t.equal(await subscribers(), 0, 'nobody follows a session yet: no subscription')

  const streams = await Promise.all(phones.map((p) => openStream(base, p.cookie)))
  await Promise.all(streams.map((s) => s.received(': live')))
  await until('the subscription', async () => (await subscribers()) === 1 ? true : undefined, 2000)

  // The client goes away: its session is no longer followed, the other one still is.
  streams[0]?.res.destroy()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await subscribers(), 1, 'still open for the other stream')

  const started = Date.now()
  t.equal(await a.sessions.deleteAll('bob'), 2)
  await within(1000, 'the stream on the other instance', (streams[1] as Stream).ended)
  t.ok(Date.now() - started < 1000, `ended after ${Date.now() - started} ms`)
  t.match(streams[1]?.text(), 'event: signed-out\ndata: deleteAll\n\n')
  // The subscription lingers 5 s after the last follower left (reconnecting pages do not churn it).
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(await subscribers(), 1, 'kept for a while, for a page that reconnects')
  await until('no subscription', async () => (await subscribers()) === 0 ? true : undefined, 8000)
  t.pass('nothing followed is left behind: the subscription closed')
})
