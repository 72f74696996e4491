import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import t from 'tap'
import session from '../../lib/index.js'
import { buildApp, cookieOf, logSink, OLD_SECRET, SECRET, setCookieOf } from '../helpers/app.js'

t.test('defaults: HttpOnly, SameSite=Lax, Path=/, Max-Age from the deadline, no Secure over http, no-store', async (t) => {
  const app = await buildApp({ ttl: 3600 })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/counter' })
  const header = res.headers['set-cookie'] as string
  t.match(header, /^sid=[^;]+; Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/)
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test("secure: 'auto' sets Secure on https, honouring trustProxy", async (t) => {
  const app = Fastify({ trustProxy: true })
  await app.register(session, { secret: SECRET })
  app.post('/', async (req) => { req.session.set('a', 1); return 'ok' })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/', headers: { 'x-forwarded-proto': 'https' } })
  t.match(res.headers['set-cookie'], /; Secure/)
  const plain = await app.inject({ method: 'POST', url: '/' })
  t.notMatch(plain.headers['set-cookie'], /Secure/)
})

t.test('__Host- cookies are always Secure, with Path=/ and no Domain; other attributes pass through', async (t) => {
  const app = await buildApp({ cookieName: '__Host-sid', cookie: { sameSite: 'strict', priority: 'high', partitioned: true } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/counter' })
  const c = setCookieOf(res, '__Host-sid')
  t.ok(c)
  t.match(res.headers['set-cookie'], /Path=\/; HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict/)
  t.notMatch(res.headers['set-cookie'], /Domain/)
  const again = await app.inject({ method: 'POST', url: '/counter', headers: { cookie: cookieOf(res, '__Host-sid') } })
  t.same(again.json(), { counter: 2 })
})

t.test('a route that sets its own Cache-Control keeps it', async (t) => {
  const app = await buildApp()
  app.post('/cached', async (req, reply) => {
    req.session.set('a', 1)
    reply.header('cache-control', 'private, max-age=60')
    return 'ok'
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/cached' })
  t.equal(res.headers['cache-control'], 'private, max-age=60')
  t.ok(setCookieOf(res))
})

t.test('a server-store cookie is <id>.<secret>, unsigned: a new or no app secret logs nobody out', async (t) => {
  const old = await buildApp({ secret: OLD_SECRET, store: 'memory', storeOptions: { table: 'rotation' } })
  t.teardown(() => old.close())
  const cookie = cookieOf(await old.inject({ method: 'POST', url: '/counter' })) as string
  t.match(cookie, /^sid=[\w-]{22}\.[\w-]{43}$/, 'the id and the 256-bit secret, nothing else')

  const rotated = await buildApp({ secret: [SECRET, OLD_SECRET], storeOptions: { table: 'rotation' } })
  t.teardown(() => rotated.close())
  const res = await rotated.inject({ url: '/counter', headers: { cookie } })
  t.same(res.json(), { counter: 1 })
  t.equal(res.headers['set-cookie'], undefined, 'nothing to re-sign: a read stays a read')

  const none = await buildApp({ secret: undefined, storeOptions: { table: 'rotation' } })
  t.teardown(() => none.close())
  t.same((await none.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
})

t.test('bad cookies give a fresh anonymous session, a debug line, never a 500', async (t) => {
  const sink = logSink('debug')
  const app = await buildApp({}, sink.logger)
  t.teardown(() => app.close())
  const good = cookieOf(await app.inject({ method: 'POST', url: '/counter' })) as string
  const value = good.slice('sid='.length)
  const decoded = decodeURIComponent(value)
  const dot = decoded.lastIndexOf('.')
  const token = decoded.slice(0, dot)
  const { sign } = fastifyCookie
  const cases: Array<[string, string, string | undefined]> = [
    ['empty', '', undefined],
    ['garbage', 'garbage', 'malformed'],
    ['wrong secret part', encodeURIComponent(token + '.' + decoded.slice(dot + 1, -4) + (decoded.endsWith('AAAA') ? 'BBBB' : 'AAAA')), 'secret mismatch'],
    ['tampered id', encodeURIComponent((decoded.startsWith('x') ? 'y' : 'x') + decoded.slice(1)), 'unknown or expired'],
    ['oversized', 'a'.repeat(5000), 'oversized'],
    ['signed by @fastify/cookie (an older format)', encodeURIComponent(sign(decoded, SECRET)), 'malformed'],
    ['unknown id', 'A'.repeat(22) + '.' + 'B'.repeat(43), 'unknown or expired']
  ]
  for (const [name, cookie, reason] of cases) {
    const before = sink.lines.length
    const res = await app.inject({ url: '/counter', headers: { cookie: `sid=${cookie}` } })
    t.equal(res.statusCode, 200, name)
    t.same(res.json(), { counter: 0 }, name)
    if (reason !== undefined) {
      t.ok(sink.lines.slice(before).some((l) => l.reason === reason && l.level === 20), `${name}: debug line "${reason}"`)
    }
  }
  t.notOk(sink.text().includes(token.slice(0, 22)), 'no id in the logs')
})

t.test('a refused cookie is expired on the response', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/counter', headers: { cookie: `sid=${'A'.repeat(22)}.${'B'.repeat(43)}` } })
  t.match(res.headers['set-cookie'], /^sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970/)
  t.equal(res.headers['cache-control'], 'no-store')
  const written = await app.inject({ method: 'POST', url: '/counter', headers: { cookie: `sid=${'A'.repeat(22)}.${'B'.repeat(43)}` } })
  t.match(written.headers['set-cookie'], /^sid=[^;]+; Max-Age=86400/, 'a new session replaces it')
})

t.test('an app that registered @fastify/cookie itself keeps it', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie, { secret: 'cookie-plugin-secret' })
  await app.register(session, { secret: SECRET })
  app.post('/', async (req) => { req.session.set('a', 1); return 'ok' })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/' })
  t.ok(setCookieOf(res))
})
