import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import t from 'tap'
import session from '../lib/index.js'
import { buildApp, cookieOf, logSink, OLD_SECRET, SECRET, setCookieOf } from './helpers/app.js'

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

t.test('a cookie signed with an older secret works and is re-signed with the newest', async (t) => {
  const old = await buildApp({ secret: OLD_SECRET, store: 'memory', storeOptions: { table: 'rotation' } })
  t.teardown(() => old.close())
  const first = await old.inject({ method: 'POST', url: '/counter' })
  const oldCookie = cookieOf(first) as string

  const rotated = await buildApp({ secret: [SECRET, OLD_SECRET], storeOptions: { table: 'rotation' } })
  t.teardown(() => rotated.close())
  const res = await rotated.inject({ url: '/counter', headers: { cookie: oldCookie } })
  t.same(res.json(), { counter: 1 })
  const renewed = cookieOf(res) as string
  t.ok(renewed, 're-signed cookie sent on a read')
  t.not(renewed, oldCookie)

  const newOnly = await buildApp({ secret: SECRET, storeOptions: { table: 'rotation' } })
  t.teardown(() => newOnly.close())
  t.same((await newOnly.inject({ url: '/counter', headers: { cookie: renewed } })).json(), { counter: 1 })
  t.same((await newOnly.inject({ url: '/counter', headers: { cookie: oldCookie } })).json(), { counter: 0 },
    'the old signature alone no longer verifies once the old secret is retired')
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
    ['garbage', 'garbage', 'bad signature'],
    ['tampered signature', encodeURIComponent(decoded.slice(0, -2) + 'AA'), 'bad signature'],
    ['tampered token', encodeURIComponent('x' + decoded.slice(1)), 'bad signature'],
    ['oversized', 'a'.repeat(5000), 'oversized'],
    ['signed but malformed', encodeURIComponent(sign('not-a-token', SECRET)), 'malformed'],
    ['signed, wrong secret part', encodeURIComponent(sign(token.slice(0, -4) + 'AAAA', SECRET)), 'secret mismatch'],
    ['signed, unknown id', encodeURIComponent(sign('A'.repeat(22) + '.' + 'B'.repeat(43), SECRET)), 'unknown or expired']
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

t.test('a refused cookie that was well signed is expired on the response', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const { sign } = fastifyCookie
  const res = await app.inject({ url: '/counter', headers: { cookie: `sid=${encodeURIComponent(sign('A'.repeat(22) + '.' + 'B'.repeat(43), SECRET))}` } })
  t.match(res.headers['set-cookie'], /^sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970/)
  t.equal(res.headers['cache-control'], 'no-store')
  const written = await app.inject({ method: 'POST', url: '/counter', headers: { cookie: `sid=${encodeURIComponent(sign('A'.repeat(22) + '.' + 'B'.repeat(43), SECRET))}` } })
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
