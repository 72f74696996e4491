import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import type { Test } from 'tap'

// A real OpenID provider (panva's oidc-provider) on a loopback port, with its development
// sign-in and consent forms, and a small browser: one cookie jar per origin, redirects
// followed by hand (fetch with redirect: 'manual'), forms submitted as a user would.

export const CLIENT = { id: 'app', secret: 'app-secret-that-is-long-enough' }

export interface TestProvider {
  issuer: string
}

/** Starts a provider that knows one client, allowed to redirect to `redirectUris`; stopped at teardown. */
export async function startProvider (t: Test, redirectUris: string[]): Promise<TestProvider> {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => { res.end() }
  const server = createServer((req, res) => { handle(req, res) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) }))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code']
    }],
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: { keys: ['a-test-cookie-key-for-the-provider'] },
    features: { devInteractions: { enabled: true } }
  })
  // Its development-only warnings (dev keys, dev interactions) say nothing a test needs.
  const warn = console.warn
  const info = console.info
  console.warn = () => {}
  console.info = () => {}
  t.teardown(() => { console.warn = warn; console.info = info })
  handle = provider.callback() as typeof handle
  return { issuer }
}

export interface Page {
  status: number
  url: string
  location: string | undefined
  body: string
}

/** A browser: cookies kept per origin (as a browser keeps them per host, here per port too), redirects followed by hand. */
export class Browser {
  readonly jars = new Map<string, Map<string, string>>()

  /** The cookies of `origin`, as a Cookie header. */
  cookies (origin: string): string {
    return [...(this.jars.get(origin) ?? new Map<string, string>()).entries()].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  cookie (origin: string, name: string): string | undefined {
    return this.jars.get(origin)?.get(name)
  }

  setCookie (origin: string, name: string, value: string | undefined): void {
    const jar = this.jars.get(origin) ?? new Map<string, string>()
    this.jars.set(origin, jar)
    if (value === undefined) jar.delete(name)
    else jar.set(name, value)
  }

  /** One request, no redirect followed. */
  async request (url: string, init: { method?: string, form?: Record<string, string> } = {}): Promise<Page> {
    const { origin } = new URL(url)
    const headers: Record<string, string> = { cookie: this.cookies(origin) }
    let body: string | undefined
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const res = await fetch(url, { method: init.method ?? 'GET', headers, body, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at).trim()
      const value = pair.slice(at + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] as string) < Date.now()))
      this.setCookie(origin, name, expired || value === '' ? undefined : value)
    }
    const location = res.headers.get('location') ?? undefined
    return { status: res.status, url, location: location === undefined ? undefined : new URL(location, url).href, body: await res.text() }
  }

  /** Follows redirects from `url` until a page that is no redirect, or (with `stopAt`) a redirect to a URL starting with it, which is not requested. */
  async follow (url: string, stopAt?: string, init?: { method?: string, form?: Record<string, string> }): Promise<Page> {
    let page = await this.request(url, init)
    for (let hops = 0; page.location !== undefined && hops < 20; hops++) {
      if (stopAt !== undefined && page.location.startsWith(stopAt)) return page
      page = await this.request(page.location)
    }
    return page
  }

  /** Submits the one form of `page` with `fields` added to its own inputs. */
  async submit (page: Page, fields: Record<string, string>, stopAt?: string): Promise<Page> {
    const action = /<form[^>]*action="([^"]+)"/.exec(page.body)?.[1]
    if (action === undefined) throw new Error(`no form on ${page.url} (${page.status}): ${page.body.slice(0, 300)}`)
    const form: Record<string, string> = {}
    for (const m of page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) form[m[1] as string] = m[2] as string
    return await this.follow(new URL(action.replace(/&amp;/g, '&'), page.url).href, stopAt, { method: 'POST', form: { ...form, ...fields } })
  }
}

/**
 * Signs `login` in at the provider from the app's `start` URL, up to the redirect back to
 * `callback`, which is returned and not requested (so that a test can replay or tamper with it).
 */
export async function authorize (browser: Browser, start: string, callback: string, login: string): Promise<string> {
  let page = await browser.follow(start, callback)
  if (page.location?.startsWith(callback) !== true) page = await browser.submit(page, { login, password: 'any' }, callback)
  if (page.location?.startsWith(callback) !== true) page = await browser.submit(page, {}, callback)
  if (page.location?.startsWith(callback) !== true) throw new Error(`no redirect back to the app: ${page.status} ${page.body.slice(0, 300)}`)
  return page.location
}
