import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import session, { CookieStore, type SealedSession, type StatelessStore } from '../../../lib/index.js'
import { buildApp, cookieOf, SECRET } from '../../helpers/app.js'

// A browser drops a cookie over 4096 bytes without a word (iron-session #101). The cookie
// store refuses to send one: the response fails with a typed error and the previous cookie
// stays as it was.

t.test('a cookie that would be too large fails the response, naming the size and the limit; the old cookie stays', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  t.teardown(() => app.close())
  const small = await app.inject({ method: 'POST', url: '/set', payload: { key: 'note', value: 'short' } })
  const cookie = cookieOf(small)
  const big = await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { key: 'note', value: 'x'.repeat(4000) } })
  t.equal(big.statusCode, 500)
  t.equal(big.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  t.match(big.json().message, /^Session cookie would be (\d+) bytes, over the limit of 4096 bytes$/)
  t.ok(Number(/would be (\d+)/.exec(big.json().message)?.[1]) > 4096)
  t.equal(big.headers['set-cookie'], undefined, 'no Set-Cookie: the browser keeps the previous cookie')
  const after = await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
  t.same(after.json(), { counter: 1 }, 'the previous cookie still works, without the refused change')
})

/** The largest value that fits, by bisection: its Set-Cookie, and the size reported for one byte more. */
async function boundary (t: Test, app: FastifyInstance, headers: Record<string, string> = {}): Promise<{ n: number, header: string, refused: number }> {
  const fill = async (n: number): Promise<LightMyRequestResponse> => await app.inject({ method: 'POST', url: '/fill', payload: { n }, headers })
  let low = 0
  let high = 4096
  while (high - low > 1) {
    const mid = (low + high) >> 1
    if ((await fill(mid)).statusCode === 200) low = mid
    else high = mid
  }
  const fits = await fill(low)
  const refused = await fill(high)
  t.equal(refused.json().code, 'FST_SESSION_COOKIE_TOO_LARGE')
  return { n: low, header: fits.headers['set-cookie'] as string, refused: Number(/would be (\d+)/.exec(refused.json().message)?.[1]) }
}

async function fillApp (cookieName?: string, cookie?: object): Promise<FastifyInstance> {
  const app = Fastify({ trustProxy: true })
  await app.register(session, { secret: SECRET, store: 'cookie', storeOptions: { revocation: 'memory' }, cookieName, cookie })
  app.post<{ Body: { n: number } }>('/fill', async (req) => { req.session.set('v', 'x'.repeat(req.body.n)); return 'ok' })
  return app
}

t.test('the limit counts name, value and attributes; up to it, everything is sent', async (t) => {
  const app = await fillApp('__Secure-a-rather-long-cookie-name', { domain: 'example.com', path: '/some/path', priority: 'high' })
  t.teardown(() => app.close())
  const { header, refused } = await boundary(t, app)
  const size = Buffer.byteLength(header)
  t.ok(size <= 4096 && size > 4090, `the largest cookie sent is ${size} bytes`)
  t.ok(refused > 4096 && refused <= 4100, `one byte more is refused at ${refused} bytes`)
  t.match(header, /^__Secure-a-rather-long-cookie-name=v2\.[^;]+; Max-Age=86400; Domain=example.com; Path=\/some\/path; HttpOnly; Secure; Priority=High; SameSite=Lax$/)
})

t.test("with secure: 'auto', Secure counts on https only", async (t) => {
  const app = await fillApp()
  t.teardown(() => app.close())
  const { n, header } = await boundary(t, app)
  t.notMatch(header, /Secure/)
  const size = Buffer.byteLength(header)
  t.ok(size + '; Secure'.length > 4096, `${size} bytes over http leave less than 8 bytes of room`)
  const https = await app.inject({ method: 'POST', url: '/fill', payload: { n }, headers: { 'x-forwarded-proto': 'https' } })
  t.equal(https.json().code, 'FST_SESSION_COOKIE_TOO_LARGE', 'the same session over https is refused')
})

t.test('save() lets the handler catch the error and change course', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  app.post('/careful', async (req) => {
    req.session.set('big', 'y'.repeat(5000))
    try {
      await req.session.save()
    } catch (err) {
      req.session.delete('big')
      req.session.set('small', true)
      return { caught: (err as { code: string }).code }
    }
    return { caught: null }
  })
  app.get('/dump', async (req) => req.session.toJSON())
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/careful' })
  t.same(res.json(), { caught: 'FST_SESSION_COOKIE_TOO_LARGE' })
  t.same((await app.inject({ url: '/dump', headers: { cookie: cookieOf(res) } })).json(), { small: true })
})

t.test('a stateless store whose values need percent-encoding is measured as sent', async (t) => {
  const inner = new CookieStore({ revocation: 'memory' }, { clock: Date.now, log: console as never, maxSessionsPerUser: 1, secrets: [SECRET], cookieName: 'sid' })
  t.teardown(() => inner.close())
  const store: StatelessStore = {
    stateless: true,
    seal: (s: SealedSession) => inner.seal(s).replaceAll('-', '+'),
    open: (value: string) => inner.open(value.replaceAll('+', '-')),
    revocation: inner.revocation
  }
  const app = await buildApp({ store })
  app.post<{ Body: { n: number } }>('/fill', async (req) => { req.session.set('v', '-'.repeat(req.body.n)); return 'ok' })
  t.teardown(() => app.close())
  const small = await app.inject({ method: 'POST', url: '/fill', payload: { n: 10 } })
  t.equal(small.statusCode, 200)
  t.same((await app.inject({ url: '/me', headers: { cookie: cookieOf(small) } })).statusCode, 200)
  const { header, refused } = await boundary(t, app)
  t.ok(Buffer.byteLength(header) <= 4096 && refused > 4096, `the largest cookie sent is ${Buffer.byteLength(header)} bytes, '+' counted as %2B`)
})
