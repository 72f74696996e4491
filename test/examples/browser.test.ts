import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { chromium, devices, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildApp } from '../../examples/app.js'
import { SECRET } from '../helpers/app.js'

// The example app (examples/) in a real browser: Debian's headless Chromium driven by
// playwright-core, over real HTTP. Two browser contexts are two devices of one user. Elements are
// found by role and label only, so a page that is not accessible fails the test. Without
// Chromium the file is skipped loudly; under CI=true that is a failure (.ci/run installs it).
// The devices page keeps an event stream open (examples/live.js): a device signed out
// elsewhere goes to the sign-in page by itself. A third device, without JavaScript, shows
// that the pages work without it, a page load at a time.

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
// Chromium and every process it starts inherit this; none may carry it once the browser is closed.
const MARK_NAME = 'FUS_BROWSER_TEST'
const MARK = `${MARK_NAME}=${process.pid}-${Date.now()}`
// Two time zones other than UTC (the server's), one of them off the hour: each page says its times in its own.
const LAPTOP = { ...devices['Desktop Chrome'], timezoneId: 'America/New_York' }
const PHONE = { ...devices['Pixel 7'], timezoneId: 'Asia/Kolkata' }
// As the devices page names them, from their User-Agent strings.
const LAPTOP_NAME = 'Chrome on Windows'
const PHONE_NAME = 'Chrome on Android'
const FORM_CONTROLS = 'input:not([type=hidden]), select, textarea, button'
const CONTROL_ROLES = /^\s*- (textbox|searchbox|button|checkbox|radio|combobox|listbox|spinbutton|slider|switch)\b(.*)$/

function chromiumPresent (): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.CI === 'true') {
    t.fail(`Chromium not found at ${CHROMIUM}: under CI=true the browser test must run (apt-get install chromium, or set CHROMIUM_PATH)`)
  } else {
    console.warn('\n' + '!'.repeat(78) + `\n!!! Chromium not found at ${CHROMIUM}: SKIPPING the browser test of the example.\n` +
      '!!! Install it (apt-get install chromium) or set CHROMIUM_PATH.\n' + '!'.repeat(78) + '\n')
    t.plan(0, 'Chromium not found')
  }
  return false
}

const PROC = existsSync('/proc/self/environ')

/** Pids of live processes whose environment carries MARK (Linux only). */
function markedProcesses (): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid).filter((d) => {
    try {
      return readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(MARK)
    } catch {
      return false // gone meanwhile, or not ours to read
    }
  }).map(Number)
}

if (chromiumPresent()) {
  const app = await buildApp({ secret: SECRET })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    env: { ...process.env, [MARK_NAME]: MARK.slice(MARK_NAME.length + 1) },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close()) // teardowns run last first: the browser closes before the app

  const problems: string[] = []
  async function deviceContext (descriptor: BrowserContextOptions): Promise<{ context: BrowserContext, page: Page }> {
    const context = await browser.newContext({ timezoneId: 'UTC', ...descriptor, baseURL: base, locale: 'en-GB' })
    context.setDefaultTimeout(10_000)
    context.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
    context.on('weberror', (err) => problems.push(`page error: ${err.error().message}`))
    return { context, page: await context.newPage() }
  }
  const laptop = await deviceContext(LAPTOP)
  const phone = await deviceContext(PHONE)

  const path = (page: Page): string => new URL(page.url()).pathname + new URL(page.url()).search

  /** Resolves once the page's event stream is open: the server follows its session from then on. */
  const streamOpen = (page: Page): Promise<unknown> =>
    page.waitForResponse((res) => new URL(res.url()).pathname === '/devices/events' && res.status() === 200)

  /** Waits for the page to go to the sign-in form by itself, as its stream tells it to. */
  /** `since`: when the other device acted (ms since the epoch). */
  async function signedOutLive (t: Test, page: Page, since = Date.now(), ms = 5000): Promise<void> {
    await page.waitForURL((url) => url.pathname === '/' && url.search === '?out=elsewhere', { timeout: ms })
    await page.getByRole('heading', { level: 1, name: 'Sign in', exact: true }).waitFor({ timeout: ms })
    t.pass(`at the sign-in page ${Date.now() - since} ms after the other device acted, without any action on it`)
    t.equal(await status(page), 'You were signed out from another device.')
  }

  /** Clicks a submit button and waits for the page it leads to (which may have the same URL). */
  async function submit (page: Page, button: Locator): Promise<void> {
    const loaded = page.waitForEvent('load')
    await button.click()
    await loaded
  }

  /** `live`: the page runs JavaScript, and its event stream opens. */
  async function signIn (page: Page, user: string, remember = false, live = true): Promise<void> {
    await page.goto('/')
    await page.getByLabel('Your name', { exact: true }).pressSequentially(user)
    if (remember) await page.getByRole('checkbox', { name: 'Remember me', exact: true }).check()
    const open = live ? streamOpen(page) : undefined
    await submit(page, page.getByRole('button', { name: 'Sign in', exact: true }))
    await page.waitForURL((url) => url.pathname === '/devices')
    await open
  }

  async function sessionCookies (context: BrowserContext): Promise<Array<{ name: string, httpOnly: boolean, sameSite: string, expires: number }>> {
    return (await context.cookies(base)).filter((c) => c.name === 'sid')
  }

  function rowOf (page: Page, name: string): Locator {
    return page.getByRole('region', { name: 'Signed-in devices' }).getByRole('listitem').filter({ hasText: name })
  }

  /** Each time on the page, as it shows (relative) and as its title says (local), with the UTC instant it stands for. */
  async function timesOf (page: Page): Promise<Array<{ text: string, title: string | null, at: number }>> {
    return await page.locator('time[datetime]').evaluateAll((elements) => elements.map((e) => ({
      text: (e.textContent ?? '').trim(), title: e.getAttribute('title'), at: Date.parse(e.getAttribute('datetime') ?? '')
    })))
  }

  /** Hours and minutes of `at` in `timeZone`, as the en-GB clock shows them ("03:19"). */
  const clock = (at: number, timeZone: string): string =>
    new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }).format(at)

  /** The page's text notice (role=status), once it is there. */
  async function status (page: Page): Promise<string> {
    return (await page.getByRole('status').innerText()).trim()
  }

  /** lang, <title>, one <h1>, and an accessible name, from a <label> for fields, on every form control. */
  async function checkAccessible (t: Test, page: Page, heading: string): Promise<void> {
    t.match(await page.locator('html').getAttribute('lang'), /^[a-z]{2}(-[A-Z]{2})?$/, 'the page has a lang')
    t.match(await page.title(), /\S/, 'the page has a <title>')
    t.equal(await page.getByRole('heading', { level: 1 }).count(), 1, 'the page has one <h1>')
    t.equal((await page.getByRole('heading', { level: 1 }).innerText()).trim(), heading)

    // The browser's own accessibility tree: a control without a name shows there as `- button` alone.
    const tree = (await page.locator('body').ariaSnapshot()).split('\n')
    const controls = tree.map((line) => CONTROL_ROLES.exec(line)).filter((m) => m !== null)
    t.same(controls.filter((m) => !/^ "[^"]+"/.test(m[2] as string)).map((m) => m[0]), [], 'every form control has a name')
    t.equal(controls.length, await page.locator(FORM_CONTROLS).count(), 'every form control is in the accessibility tree, with its role')
    const fields = await page.locator('input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea').all()
    for (const field of fields) {
      t.ok(await field.evaluate((el) => ((el as unknown as { labels: { length: number } | null }).labels?.length ?? 0) > 0),
        `${await field.getAttribute('name')} has a <label>`)
    }
  }

  t.test('the sign-in page is accessible, styled, and its field is labelled', async (t) => {
    const { page } = laptop
    await page.goto('/')
    await checkAccessible(t, page, 'Sign in')
    t.equal(await page.getByLabel('Your name', { exact: true }).getAttribute('type'), 'text')
    t.equal(await page.getByRole('button', { name: 'Sign in', exact: true }).getAttribute('type'), 'submit')
    const remember = page.getByRole('checkbox', { name: 'Remember me', exact: true })
    t.equal(await remember.isChecked(), false, '"Remember me" is a labelled checkbox, unchecked at first')
    const hint = await remember.getAttribute('aria-describedby')
    t.match(await page.locator(`[id="${hint}"]`).innerText(), 'signed out when you close the browser', 'it says what unchecked means')
    // The Content-Security-Policy admits the one inline style sheet by its hash: it did apply.
    t.equal(await page.evaluate('getComputedStyle(document.querySelector("main")).maxWidth'), '704px',
      'the style sheet applies under the CSP')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: ARTIFACTS + 'sign-in.png', fullPage: true })
  })

  t.test('two devices sign in as one user; each page lists both, "This device" on its own row', async (t) => {
    await signIn(laptop.page, 'alice')
    await signIn(phone.page, 'alice')
    await laptop.page.reload()

    for (const [me, myAgent, otherAgent, timeZone] of [[laptop, LAPTOP_NAME, PHONE_NAME, LAPTOP.timezoneId], [phone, PHONE_NAME, LAPTOP_NAME, PHONE.timezoneId]] as const) {
      const { page } = me
      t.equal(path(page), '/devices')
      await checkAccessible(t, page, 'Your devices')
      t.match(await page.locator('main').innerText(), 'Signed in as alice. You are signed in on 2 devices.')
      const rows = page.getByRole('region', { name: 'Signed-in devices' }).getByRole('listitem')
      t.equal(await rows.count(), 2)
      t.match(await rows.first().innerText(), myAgent, 'this device comes first, named as people name it')
      t.notMatch(await rows.first().innerText(), 'Mozilla', 'not by its raw User-Agent')
      t.equal(await rows.first().locator('.agent').getAttribute('title'), me === laptop ? LAPTOP.userAgent : PHONE.userAgent, 'which is there on hover')
      // Times in the viewer's terms, by /devices.js: relative, and local (its time zone) on hover.
      const times = await timesOf(page)
      t.equal(times.length, 6, 'three times a device')
      for (const { text, title, at } of times) {
        t.match(text, /^(just now|\d+ minutes? ago|in (a moment|\d+ (minutes?|hours?|days?)))$/, `"${text}": relative`)
        t.ok(title?.includes(clock(at, timeZone)), `"${title}": ${new Date(at).toISOString()} in ${timeZone}`)
      }
      t.equal(await rowOf(page, myAgent).getByText('This device', { exact: true }).count(), 1, 'this device is marked')
      t.equal(await rowOf(page, myAgent).getByRole('button').count(), 0, 'and has no sign-out button of its own')
      t.equal(await rowOf(page, otherAgent).getByText('This device', { exact: true }).count(), 0, 'the other is not marked')
      const signOut = rowOf(page, otherAgent).getByRole('button', { name: 'Sign out', exact: true })
      t.equal(await signOut.count(), 1)
      const describedBy = await signOut.getAttribute('aria-describedby')
      t.match(await page.locator(`[id="${describedBy}"]`).innerText(), otherAgent, 'its button says which device it signs out')
      for (const action of ['Log out other devices', 'Log out everywhere', 'Log out']) {
        t.equal(await page.getByRole('button', { name: action, exact: true }).count(), 1, action)
      }
      const [cookie, ...more] = await sessionCookies(me.context)
      t.same(more, [])
      t.match(cookie, { httpOnly: true, sameSite: 'Lax' }, 'the session cookie is HttpOnly and SameSite=Lax')
      t.equal(await page.evaluate('document.cookie'), '', 'and out of reach of scripts')
    }

    mkdirSync(ARTIFACTS, { recursive: true })
    await laptop.page.screenshot({ path: ARTIFACTS + 'devices.png', fullPage: true })
    await phone.page.screenshot({ path: ARTIFACTS + 'devices-phone.png', fullPage: true })
  })

  t.test('an iPhone is "Safari on iPhone"; on a phone-sized screen each device takes a line or two', async (t) => {
    const iphone = await deviceContext({ ...devices['iPhone 13'], timezoneId: 'Pacific/Auckland' })
    t.teardown(() => iphone.context.close())
    await signIn(iphone.page, 'alice')
    await laptop.page.reload()
    t.equal(await rowOf(laptop.page, 'Safari on iPhone').count(), 1, 'named by the laptop\'s page')
    const { page } = iphone
    t.match(await page.getByRole('region', { name: 'Signed-in devices' }).getByRole('listitem').first().innerText(), 'Safari on iPhone')
    const width = page.viewportSize()?.width ?? 0
    t.equal(await page.evaluate('document.documentElement.scrollWidth'), width, 'nothing wider than the screen')
    for (const name of await page.locator('.agent').all()) {
      const lines = await name.evaluate((e) => Math.round(e.getBoundingClientRect().height /
        parseFloat((globalThis as unknown as { getComputedStyle: (e: unknown) => { lineHeight: string } }).getComputedStyle(e).lineHeight)))
      t.ok(lines <= 2, `"${(await name.innerText()).replace(/\s+/g, ' ')}" on ${lines} line(s)`)
    }
    const broken = await page.locator('.fact').evaluateAll((facts) => facts
      .filter((f) => new Set([...f.getClientRects()].map((r) => Math.round(r.bottom))).size > 1).map((f) => f.textContent))
    t.same(broken, [], 'each fact (a time, an IP, a timeout) whole on its line: lines break between them')
    await page.screenshot({ path: ARTIFACTS + 'devices-iphone.png', fullPage: true })
    await submit(page, page.getByRole('button', { name: 'Log out', exact: true }))
  })

  t.test('revoking the other device signs it out live: its open page goes to the sign-in form', async (t) => {
    const clicked = Date.now()
    await submit(laptop.page, rowOf(laptop.page, PHONE_NAME).getByRole('button', { name: 'Sign out', exact: true }))
    t.equal(path(laptop.page), '/devices')
    t.equal(await status(laptop.page), 'That device is signed out.')
    t.match(await laptop.page.locator('main').innerText(), 'This is your only signed-in device.')
    t.equal(await rowOf(laptop.page, PHONE_NAME).count(), 0)
    t.equal(await laptop.page.getByRole('button', { name: 'Log out other devices', exact: true }).count(), 0)

    await signedOutLive(t, phone.page, clicked)
    t.same(await sessionCookies(phone.context), [], 'and its cookie is expired')
    await phone.page.goto('/devices')
    t.equal(path(phone.page), '/', 'the phone is sent to the sign-in form')
    await laptop.page.reload()
    t.equal(path(laptop.page), '/devices', 'the laptop stays signed in')
  })

  t.test('"Log out other devices" signs the other device out, not this one', async (t) => {
    await signIn(phone.page, 'alice')
    await laptop.page.reload()
    t.equal(await rowOf(laptop.page, PHONE_NAME).count(), 1)
    await submit(laptop.page, laptop.page.getByRole('button', { name: 'Log out other devices', exact: true }))
    t.equal(path(laptop.page), '/devices')
    t.equal(await status(laptop.page), 'Signed out 1 other device.')
    t.equal(await laptop.page.getByRole('region', { name: 'Signed-in devices' }).getByRole('listitem').count(), 1)

    await signedOutLive(t, phone.page)
    t.same(await sessionCookies(phone.context), [])
    await laptop.page.reload()
    t.equal(path(laptop.page), '/devices', 'the laptop stays signed in: its own click did not sign it out live')
  })

  t.test('"Log out everywhere" on one device signs the other out live, without any action on it', async (t) => {
    await signIn(phone.page, 'alice')
    const open = streamOpen(laptop.page)
    await laptop.page.reload()
    await open
    t.equal(await rowOf(laptop.page, PHONE_NAME).count(), 1)
    // Both pages stay open on /devices; only the laptop acts.
    const clicked = Date.now()
    await submit(laptop.page, laptop.page.getByRole('button', { name: 'Log out everywhere', exact: true }))
    t.equal(path(laptop.page), '/?out=all', 'the device that clicked shows its own notice, not "from another device"')
    t.equal(await status(laptop.page), 'You are signed out on all your devices.')
    await checkAccessible(t, laptop.page, 'Sign in')
    t.same(await sessionCookies(laptop.context), [], 'this device\'s cookie is expired at once')

    await signedOutLive(t, phone.page, clicked)
    await checkAccessible(t, phone.page, 'Sign in')
    t.same(await sessionCookies(phone.context), [], 'the phone\'s cookie is expired by the sign-in page it went to')
    await phone.page.goto('/devices')
    t.equal(path(phone.page), '/', 'and the phone stays signed out')
    await laptop.page.goto('/devices')
    t.equal(path(laptop.page), '/', 'so does the laptop')
    mkdirSync(ARTIFACTS, { recursive: true })
    await phone.page.screenshot({ path: ARTIFACTS + 'signed-out-elsewhere.png', fullPage: true })
  })

  t.test('the cookie of a device signed out live is dead: a copy of it sent again gets the sign-in page', async (t) => {
    await signIn(phone.page, 'alice')
    const cookie = (await phone.context.cookies(base)).find((c) => c.name === 'sid')
    await signIn(laptop.page, 'alice')
    await submit(laptop.page, laptop.page.getByRole('button', { name: 'Log out everywhere', exact: true }))
    await signedOutLive(t, phone.page)
    // Put the old cookie back, as a stolen copy would be replayed, and reload.
    t.ok(cookie !== undefined)
    await phone.context.addCookies([{ name: 'sid', value: cookie?.value ?? '', url: base }])
    await phone.page.goto('/devices')
    t.equal(path(phone.page), '/', 'the revoked cookie signs nobody in')
    t.equal((await phone.page.getByRole('heading', { level: 1 }).innerText()).trim(), 'Sign in')
  })

  t.test('without JavaScript the devices page works as before: signed out on its next page load', async (t) => {
    const { context, page } = await deviceContext({ ...LAPTOP, javaScriptEnabled: false })
    t.teardown(() => context.close())
    await signIn(page, 'dora', false, false)
    const shown = await timesOf(page)
    t.ok(shown.length > 0 && shown.every(({ text, title, at }) => title === null && text === new Date(at).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'),
      'its times are the server\'s, in UTC: readable as they are')
    await signIn(phone.page, 'dora')
    await submit(phone.page, phone.page.getByRole('button', { name: 'Log out everywhere', exact: true }))
    t.equal(path(page), '/devices', 'the page stays as it is')
    await page.reload()
    t.equal(path(page), '/', 'and the next page load is the sign-in form')
    t.same(await sessionCookies(context), [])
  })

  t.test('"Remember me" unchecked: a session cookie in Chromium\'s jar; checked: one that expires in a day', async (t) => {
    const { page, context } = laptop
    await signIn(page, 'bob')
    const [once, ...more] = await sessionCookies(context)
    t.same(more, [])
    t.equal(once?.expires, -1, 'unchecked: no expiry, the browser drops it when it closes')
    t.match(await rowOf(page, LAPTOP_NAME).innerText(), /Browser cookie, until the browser closes · expires .* · idle timeout 30 minutes, at most 12 hours/)
    await submit(page, page.getByRole('button', { name: 'Log out', exact: true }))
    t.same(await sessionCookies(context), [])

    const before = Date.now() / 1000
    await signIn(page, 'bob', true)
    const after = Date.now() / 1000
    const [kept] = await sessionCookies(context)
    t.ok(kept !== undefined && kept.expires >= Math.floor(before) + 86_400 && kept.expires <= Math.ceil(after) + 86_400,
      `checked: it expires a day from now (${kept?.expires} in ${before.toFixed(0)} + 86400 … ${after.toFixed(0)} + 86400)`)
    t.match(await rowOf(page, LAPTOP_NAME).innerText(), /Browser cookie, remembered · expires .* · idle timeout 1 day, at most 30 days/)
  })

  t.test('a token from the JSON API shows on the devices page as an API token, and its Sign out button ends it', async (t) => {
    const { page } = laptop
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'curl/8.5.0' },
      body: JSON.stringify({ name: 'bob' })
    })
    t.equal(login.status, 200)
    t.equal(login.headers.get('set-cookie'), null, 'no cookie for an API client')
    const { token } = await login.json() as { token: string }
    const me = async (): Promise<number> => (await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status
    t.equal(await me(), 200)

    await page.reload()
    const row = rowOf(page, 'curl · API token')
    t.equal(await row.locator('.agent').getAttribute('title'), 'curl/8.5.0')
    t.match(await row.innerText(), /Expires in 24 hours · idle timeout 1 day/)
    await page.screenshot({ path: ARTIFACTS + 'devices-api-token.png', fullPage: true })
    await submit(page, row.getByRole('button', { name: 'Sign out', exact: true }))
    t.equal(await status(page), 'That device is signed out.')
    t.equal(await me(), 401, 'the token is dead')
    await submit(page, page.getByRole('button', { name: 'Log out', exact: true }))
  })

  t.test('no console errors, CSP violations or script errors on any page', async (t) => {
    t.same(problems, [])
  })

  t.test('closing the browser leaves no Chromium process behind', { skip: !PROC && 'no /proc to look in' }, async (t) => {
    t.not(markedProcesses().length, 0, 'the browser\'s processes are seen while it runs')
    await browser.close()
    // The main process has exited; its helpers notice that on their own, within moments.
    const deadline = Date.now() + 5000 // a bound on waiting for them, not a pause
    let left = markedProcesses()
    while (left.length > 0 && Date.now() < deadline) {
      await delay(25)
      left = markedProcesses()
    }
    for (const pid of left) process.kill(pid, 'SIGKILL')
    t.same(left, [], 'no process started for the browser is left running')
  })
}
