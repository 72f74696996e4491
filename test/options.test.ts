import Fastify from 'fastify'
import t, { type Test } from 'tap'
import session, { type FastifyUserSessionsOptions } from '../lib/index.js'
import { normalizeOptions } from '../lib/options.js'
import { SECRET } from './helpers/app.js'

function invalid (t: Test, options: Record<string, unknown>, code: string, pattern: RegExp): void {
  t.throws(() => normalizeOptions(options as unknown as FastifyUserSessionsOptions), { code, message: pattern },
    JSON.stringify(options, (_k, v) => typeof v === 'function' ? 'fn' : v))
}

t.test('defaults', async (t) => {
  const o = normalizeOptions({ secret: SECRET })
  t.equal(o.store, 'memory')
  t.equal(o.cookieName, 'sid')
  t.equal(o.ttl, 86_400)
  t.equal(o.absoluteTtl, 2_592_000)
  t.equal(o.rolling, true)
  t.equal(o.refreshFraction, 0.1)
  t.equal(o.maxSessionsPerUser, 100)
  t.equal(o.trackClient, true)
  t.equal(o.clock, Date.now)
  t.same(o.cookie, { path: '/', domain: undefined, httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: false, priority: undefined })
  t.ok(Object.isFrozen(o) && Object.isFrozen(o.cookie) && Object.isFrozen(o.secrets))
})

t.test('the caller\'s object is not mutated', async (t) => {
  const options = { secret: [SECRET], cookie: { path: '/app' } }
  const copy = structuredClone(options)
  const o = normalizeOptions(options)
  t.same(options, copy)
  t.not(o.secrets, options.secret)
  t.equal(o.cookie.path, '/app')
})

t.test('a ttl above 30 days raises the default absoluteTtl to it', async (t) => {
  t.equal(normalizeOptions({ secret: SECRET, ttl: 3_000_000 }).absoluteTtl, 3_000_000)
})

t.test('ttl and absoluteTtl: seconds, at most 400 days; milliseconds by mistake are named as such', async (t) => {
  const code = 'FST_SESSION_OPTION_INVALID'
  invalid(t, { ttl: 86_400_000 }, code, /^Invalid option "ttl": is in seconds, at most 34560000 \(400 days, the longest a browser keeps a cookie\); got 86400000 seconds \(1000 days\); milliseconds by mistake\? That is ttl: 86400$/)
  invalid(t, { absoluteTtl: 2_592_000_000 }, code, /^Invalid option "absoluteTtl": is in seconds, .* got 2592000000 seconds \(30000 days\); milliseconds by mistake\? That is absoluteTtl: 2592000$/)
  invalid(t, { ttl: 34_560_001 }, code, /"ttl": .*got 34560001 seconds \(400 days\)$/)
  invalid(t, { ttl: 34_560_001_000 }, code, /got 34560001000 seconds \(400000 days\)$/)
  const longest = normalizeOptions({ ttl: 34_560_000, absoluteTtl: 34_560_000 })
  t.same([longest.ttl, longest.absoluteTtl], [34_560_000, 34_560_000], '400 days is the longest')
})

t.test('secrets', async (t) => {
  t.same(normalizeOptions({}).secrets, [], 'optional: server-side stores need none')
  invalid(t, { secret: [] }, 'FST_SESSION_SECRET_INVALID', /list is empty/)
  invalid(t, { secret: 'short' }, 'FST_SESSION_SECRET_INVALID', /at least 32 bytes long, got 5/)
  invalid(t, { secret: [SECRET, 'short'] }, 'FST_SESSION_SECRET_INVALID', /at least 32 bytes/)
  invalid(t, { secret: 42 }, 'FST_SESSION_SECRET_INVALID', /string or a Buffer/)
  invalid(t, { secret: Buffer.alloc(8) }, 'FST_SESSION_SECRET_INVALID', /got 8/)
  t.equal(normalizeOptions({ secret: Buffer.alloc(32, 1) }).secrets.length, 1)
  t.equal(normalizeOptions({ secret: [SECRET, Buffer.alloc(40)] }).secrets.length, 2)
})

t.test('each invalid option is named in the message', async (t) => {
  const s = { secret: SECRET }
  invalid(t, null as unknown as Record<string, unknown>, 'FST_SESSION_OPTION_INVALID', /"options": must be an object/)
  invalid(t, { ...s, sotre: 'memory' }, 'FST_SESSION_OPTION_INVALID', /"sotre": unknown option; known: secret, store/)
  invalid(t, { ...s, store: 42 }, 'FST_SESSION_OPTION_INVALID', /"store"/)
  invalid(t, { ...s, store: null }, 'FST_SESSION_OPTION_INVALID', /"store"/)
  invalid(t, { ...s, storeOptions: 'x' }, 'FST_SESSION_OPTION_INVALID', /"storeOptions"/)
  invalid(t, { ...s, storeOptions: null }, 'FST_SESSION_OPTION_INVALID', /"storeOptions"/)
  invalid(t, { ...s, cookieName: 'a b' }, 'FST_SESSION_OPTION_INVALID', /"cookieName"/)
  invalid(t, { ...s, cookieName: '' }, 'FST_SESSION_OPTION_INVALID', /"cookieName"/)
  invalid(t, { ...s, ttl: 0 }, 'FST_SESSION_OPTION_INVALID', /"ttl": must be a positive integer/)
  invalid(t, { ...s, ttl: 1.5 }, 'FST_SESSION_OPTION_INVALID', /"ttl"/)
  invalid(t, { ...s, ttl: '60' }, 'FST_SESSION_OPTION_INVALID', /"ttl"/)
  invalid(t, { ...s, ttl: 100, absoluteTtl: 99 }, 'FST_SESSION_OPTION_INVALID', /"absoluteTtl": must be at least ttl \(100\)/)
  invalid(t, { ...s, absoluteTtl: -1 }, 'FST_SESSION_OPTION_INVALID', /"absoluteTtl"/)
  invalid(t, { ...s, rolling: 'yes' }, 'FST_SESSION_OPTION_INVALID', /"rolling": must be a boolean/)
  invalid(t, { ...s, refreshFraction: 0 }, 'FST_SESSION_OPTION_INVALID', /"refreshFraction"/)
  invalid(t, { ...s, refreshFraction: 1.5 }, 'FST_SESSION_OPTION_INVALID', /"refreshFraction"/)
  invalid(t, { ...s, refreshFraction: '0.5' }, 'FST_SESSION_OPTION_INVALID', /"refreshFraction"/)
  invalid(t, { ...s, maxSessionsPerUser: 0 }, 'FST_SESSION_OPTION_INVALID', /"maxSessionsPerUser"/)
  invalid(t, { ...s, trackClient: 1 }, 'FST_SESSION_OPTION_INVALID', /"trackClient"/)
  invalid(t, { ...s, clock: 5 }, 'FST_SESSION_OPTION_INVALID', /"clock"/)
})

t.test('cookie options', async (t) => {
  const s = { secret: SECRET }
  invalid(t, { ...s, cookie: 'x' }, 'FST_SESSION_OPTION_INVALID', /"cookie": must be an object/)
  invalid(t, { ...s, cookie: null }, 'FST_SESSION_OPTION_INVALID', /"cookie"/)
  invalid(t, { ...s, cookie: { maxAge: 5 } }, 'FST_SESSION_OPTION_INVALID', /"cookie.maxAge": the cookie lifetime follows/)
  invalid(t, { ...s, cookie: { expires: 5 } }, 'FST_SESSION_OPTION_INVALID', /"cookie.expires"/)
  invalid(t, { ...s, cookie: { signed: true } }, 'FST_SESSION_OPTION_INVALID', /"cookie.signed": unknown option; known: path, domain/)
  invalid(t, { ...s, cookie: { path: 'x' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.path"/)
  invalid(t, { ...s, cookie: { domain: '' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.domain"/)
  invalid(t, { ...s, cookie: { domain: 5 } }, 'FST_SESSION_OPTION_INVALID', /"cookie.domain"/)
  invalid(t, { ...s, cookie: { secure: 'yes' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.secure"/)
  invalid(t, { ...s, cookie: { sameSite: 'sometimes' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.sameSite": must be one of 'lax', 'strict', 'none'/)
  invalid(t, { ...s, cookie: { sameSite: 'none', secure: false } }, 'FST_SESSION_OPTION_INVALID', /requires a Secure cookie/)
  invalid(t, { ...s, cookie: { httpOnly: 'no' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.httpOnly"/)
  invalid(t, { ...s, cookie: { partitioned: 1 } }, 'FST_SESSION_OPTION_INVALID', /"cookie.partitioned"/)
  invalid(t, { ...s, cookie: { priority: 'urgent' } }, 'FST_SESSION_OPTION_INVALID', /"cookie.priority"/)
  invalid(t, { ...s, cookieName: '__Host-sid', cookie: { secure: false } }, 'FST_SESSION_OPTION_INVALID', /__Host- cookies must be Secure/)
  invalid(t, { ...s, cookieName: '__Secure-sid', cookie: { secure: false } }, 'FST_SESSION_OPTION_INVALID', /__Secure- cookies must be Secure/)
  invalid(t, { ...s, cookieName: '__Host-sid', cookie: { path: '/app' } }, 'FST_SESSION_OPTION_INVALID', /__Host- cookies need path/)
  invalid(t, { ...s, cookieName: '__Host-sid', cookie: { domain: 'example.com' } }, 'FST_SESSION_OPTION_INVALID', /__Host- cookies need path/)
  t.equal(normalizeOptions({ ...s, cookieName: '__Host-sid' }).cookie.secure, true)
  t.equal(normalizeOptions({ ...s, cookieName: '__Secure-sid', cookie: { domain: 'example.com', path: '/a' } }).cookie.secure, true)
  const c = normalizeOptions({ ...s, cookie: { secure: true, sameSite: 'none', partitioned: true, priority: 'high', httpOnly: false, domain: 'example.com' } }).cookie
  t.same(c, { path: '/', domain: 'example.com', httpOnly: false, secure: true, sameSite: 'none', partitioned: true, priority: 'high' })
})

t.test('register() fails fast with the typed error', async (t) => {
  const app = Fastify()
  await t.rejects(async () => { await app.register(session, { secret: 'short' }) }, { code: 'FST_SESSION_SECRET_INVALID' })
  await t.rejects(async () => { await Fastify().register(session, { store: 'cookie', storeOptions: { revocation: 'memory' } }) },
    { code: 'FST_SESSION_SECRET_INVALID', message: /"secret": is required by the cookie store, which seals sessions with it/ })
  const noSecret = Fastify()
  await noSecret.register(session, { store: 'memory' })
  t.teardown(() => noSecret.close())
  noSecret.post('/', async (req) => { req.session.set('n', 1); return null })
  t.match((await noSecret.inject({ method: 'POST', url: '/' })).headers['set-cookie'], /^sid=[\w.-]+; Max-Age=/, 'a server-side store runs without one')
  const app2 = Fastify()
  await t.rejects(async () => { await app2.register(session, { secret: SECRET, store: 'nope' as never }) },
    { code: 'FST_SESSION_STORE_UNKNOWN', message: /Unknown session store "nope"; known stores: memory, ets/ })
})
