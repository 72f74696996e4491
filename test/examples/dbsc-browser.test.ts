import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildApp } from '../../examples/app.js'
import type { RedisStoreOptions } from '../../lib/index.js'
import { redisServer } from '../helpers/redis.js'
import { httpsGet, opensslAvailable, testCertificate } from '../helpers/tls.js'

// Device-bound sessions (issue 22) in a real browser: Debian's Chromium, which performs DBSC
// with software keys when started with the features below, against the example app served
// over HTTPS on localhost with a certificate this file makes (trusted by its SPKI pin; with
// --ignore-certificate-errors or over http the registration header is ignored, silently). The
// DevTools protocol reports the browser's side (registration, refreshes, the end of its DBSC
// session); the app's own routes report the server's. On the memory store and on Redis; and a
// Chromium without the features signs in and stays signed in as today.

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const DBSC_FEATURES = '--enable-features=DeviceBoundSessions:RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Seconds a bound cookie authenticates: short, so that the test sees it die and the browser refresh. */
const COOKIE_TTL = 3

interface DbscEvent {
  creationEventDetails?: { fetchResult?: string }
  refreshEventDetails?: { refreshResult?: string, fetchResult?: string }
  terminationEventDetails?: { deletionReason?: string }
}

/** A request to one of the DBSC routes, as the server answered it. */
interface Exchange {
  path: string
  status: number
  setCookie: boolean
  body: string
  at: number
}

function chromiumPresent (): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.CI === 'true') {
    t.fail(`Chromium not found at ${CHROMIUM}: under CI=true the browser test must run (apt-get install chromium, or set CHROMIUM_PATH)`)
  } else {
    console.warn('\n' + '!'.repeat(78) + `\n!!! Chromium not found at ${CHROMIUM}: SKIPPING the device-bound session browser test.\n` +
      '!!! Install it (apt-get install chromium) or set CHROMIUM_PATH.\n' + '!'.repeat(78) + '\n')
    t.plan(0, 'Chromium not found')
  }
  return false
}

/** Polls `check` until it gives a value; fails after `ms`, naming `what`. */
async function until<T> (what: string, check: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

if (chromiumPresent() && opensslAvailable(t)) {
  const tls = testCertificate()

  type Store = { store: 'memory' } | { store: 'redis', storeOptions: RedisStoreOptions }

  async function serve (t: Test, store: Store): Promise<{ app: FastifyInstance, base: string, exchanges: Exchange[] }> {
    const app = await buildApp({ https: tls, dbsc: { cookieTtl: COOKIE_TTL }, ...store })
    const exchanges: Exchange[] = []
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.url.startsWith('/dbsc/')) {
        exchanges.push({ path: request.url, status: reply.statusCode, setCookie: reply.hasHeader('set-cookie'), body: String(payload), at: Date.now() })
      }
      return payload
    })
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { app, base: `https://localhost:${(app.server.address() as AddressInfo).port}`, exchanges }
  }

  /** A Chromium of its own (DBSC keeps its state in the profile), with or without the DBSC features. */
  async function launch (t: Test, base: string, dbsc: boolean): Promise<{ context: BrowserContext, page: Page, events: DbscEvent[] }> {
    const profile = mkdtempSync(join(tmpdir(), 'fus-chromium-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      baseURL: base,
      args: [...FLAGS, `--ignore-certificate-errors-spki-list=${tls.spkiPin}`, ...(dbsc ? [DBSC_FEATURES] : [])]
    })
    t.teardown(() => context.close()) // teardowns run last first: the browser closes before the app and its profile goes
    context.setDefaultTimeout(15_000)
    const page = context.pages()[0] ?? await context.newPage()
    const events: DbscEvent[] = []
    const cdp = await context.newCDPSession(page)
    cdp.on('Network.deviceBoundSessionEventOccurred', (event: DbscEvent) => { events.push(event) })
    await cdp.send('Network.enableDeviceBoundSessions', { enable: true })
    return { context, page, events }
  }

  const path = (page: Page): string => new URL(page.url()).pathname + new URL(page.url()).search

  /** Signs in with "Remember me" checked: only a cookie that outlives the browser is offered binding. */
  async function signIn (page: Page, user: string): Promise<void> {
    await page.goto('/')
    await page.getByLabel('Your name', { exact: true }).pressSequentially(user)
    await page.getByRole('checkbox', { name: 'Remember me', exact: true }).check()
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.waitForURL((url) => url.pathname === '/devices')
  }

  async function sessionCookie (context: BrowserContext, base: string): Promise<{ value: string, expires: number }> {
    const cookie = (await context.cookies(base)).find((c) => c.name === 'sid')
    return { value: cookie?.value ?? '', expires: cookie?.expires ?? 0 }
  }

  const stores: Array<[string, (t: Test) => Promise<Store | undefined>]> = [
    ['memory', async () => ({ store: 'memory' })],
    ['redis', async (t) => {
      const server = await redisServer(t)
      return server === undefined ? undefined : { store: 'redis', storeOptions: { url: server.url, prefix: `fus-${randomBytes(4).toString('hex')}:` } }
    }]
  ]

  for (const [name, storeFor] of stores) {
    t.test(`Chromium with DBSC binds its sign-in, refreshes its cookie, and a copy of the cookie dies; logging out ends it (${name})`, async (t) => {
      const store = await storeFor(t)
      if (store === undefined) return
      const { app, base, exchanges } = await serve(t, store)
      const { context, page, events } = await launch(t, base, true)

      await signIn(page, 'alice')
      await until('the browser registers its key', () => events.find((e) => e.creationEventDetails !== undefined))
      t.match(events.find((e) => e.creationEventDetails !== undefined), { creationEventDetails: { fetchResult: 'Success' } }, 'sign-in registers')
      t.match(exchanges[0], { path: '/dbsc/registration', status: 200, setCookie: true }, 'the registration route answered with a new cookie')
      const [record, ...more] = await app.sessions.getAll('alice')
      t.same(more, [])
      t.equal(record?.deviceBound, true, 'getAll shows the session bound')
      await page.reload()
      t.match(await page.locator('main').innerText(), 'Browser cookie, remembered, bound to this device', 'and the devices page says so')

      // A thief's copy of the cookie: it authenticates now, and dies cookieTtl after it was issued.
      const copy = await sessionCookie(context, base)
      t.ok(copy.expires > 0 && copy.expires <= Date.now() / 1000 + COOKIE_TTL + 1, 'the bound cookie is short-lived in the browser too')
      await until('the copied cookie to age past cookieTtl on the server', async () =>
        await app.sessions.authenticate(copy.value) === undefined ? true : undefined, (COOKIE_TTL + 10) * 1000)
      const replay = await httpsGet(`${base}/devices`, tls.cert, { cookie: `sid=${copy.value}` })
      t.equal(replay.status, 303, 'the copy replayed from outside the browser is anonymous')
      t.equal(replay.headers.location, '/')

      await page.goto('/devices')
      t.equal(path(page), '/devices', 'the browser is still signed in after cookieTtl')
      t.match(await page.locator('main').innerText(), 'Signed in as alice')
      const refreshed = exchanges.filter((e) => e.path === '/dbsc/refresh' && e.status === 200 && e.setCookie)
      t.ok(refreshed.length > 0, `it refreshed its cookie (${refreshed.length} refreshes so far)`)
      t.not((await sessionCookie(context, base)).value, copy.value, 'and holds a new one')
      t.equal((await app.sessions.getAll('alice')).length, 1, 'the session lives on')
      t.comment(`refreshes answered 403 (no challenge given ahead, or a stale one): ${exchanges.filter((e) => e.status === 403).length} of ${exchanges.filter((e) => e.path === '/dbsc/refresh').length}`)

      const loggedOut = Date.now()
      await page.getByRole('button', { name: 'Log out everywhere', exact: true }).click()
      await page.waitForURL((url) => url.pathname === '/' && url.search === '?out=all')
      const ended = await until('the browser ends its DBSC session', () => events.find((e) => e.terminationEventDetails !== undefined))
      t.match(ended, { terminationEventDetails: { deletionReason: 'ServerRequested' } }, 'at the server\'s word')
      const after = exchanges.filter((e) => e.path === '/dbsc/refresh' && e.at >= loggedOut)
      t.ok(after.some((e) => e.status === 200 && JSON.parse(e.body).continue === false), 'its next refresh is refused: {"continue": false}')
      t.same(after.filter((e) => e.setCookie), [], 'and no refresh after the logout issued a cookie')
      await page.goto('/devices')
      t.equal(path(page), '/', 'the browser stays signed out')
      t.same(await app.sessions.getAll('alice'), [])
    })
  }

  t.test('Chromium without DBSC signs in and stays signed in as today, past cookieTtl', async (t) => {
    const { app, base, exchanges } = await serve(t, { store: 'memory' })
    const { context, page, events } = await launch(t, base, false)
    const before = Date.now()
    await signIn(page, 'bob')
    const cookie = await sessionCookie(context, base)
    t.ok(cookie.expires >= before / 1000 + 86_400 - 5, 'the cookie of a remembered sign-in, a day long')
    await until(`${COOKIE_TTL} s to pass since the sign-in`, () => Date.now() > before + (COOKIE_TTL + 1) * 1000 ? true : undefined)
    await page.goto('/devices')
    t.equal(path(page), '/devices', 'still signed in')
    t.equal((await sessionCookie(context, base)).value, cookie.value, 'with the cookie of its sign-in')
    t.equal((await app.sessions.getAll('bob'))[0]?.deviceBound, false, 'not bound')
    t.same(exchanges, [], 'the browser never called the DBSC routes')
    t.same(events, [], 'nor had a DBSC session')
  })
}
