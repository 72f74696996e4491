import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import session, { type FastifyUserSessionsOptions, type SessionEvent, type SessionStore } from '../../lib/index.js'
import { cookieOf, delegate, testClock } from '../helpers/app.js'
import { proof, testKey, type TestKey } from '../helpers/dbsc.js'
import { countedStore, onEachStore, onEveryStore, writesOf, type StoreOptions } from '../helpers/stores.js'

// Device-bound sessions (issue 22) without a browser: a client made of keys the test makes
// plays the browser's part (registration, refreshes) against real stores, through inject().
// A request is "over https" by X-Forwarded-Proto, the app trusting its proxy.

const HTTPS = { 'x-forwarded-proto': 'https' }
const TTL = 60 // dbsc.cookieTtl, seconds
const REGISTRATION = /^\((?:ES256|RS256)(?: RS256)?\);path="\/dbsc\/registration";challenge="([\w-]{22})"$/

interface App {
  app: FastifyInstance
  clock: { now: () => number, tick: (ms: number) => void }
  bound: SessionEvent[]
}

async function dbscApp (t: Test, store: StoreOptions | { store: SessionStore }, options: Partial<FastifyUserSessionsOptions> = {}): Promise<App> {
  const clock = testClock()
  const bound: SessionEvent[] = []
  const app = Fastify({ trustProxy: true })
  await app.register(session, { ...store, dbsc: { cookieTtl: TTL }, clock: clock.now, ...options } as FastifyUserSessionsOptions)
  app.post<{ Body: { user: string, persistent?: boolean, bearer?: boolean } }>('/login', async (req) => {
    await req.session.login(req.body.user, { persistent: req.body.persistent, ...(req.body.bearer === true ? { transport: 'bearer' } : {}) })
    return { id: req.session.id }
  })
  app.post('/regenerate', async (req) => { await req.session.regenerate(); return { id: req.session.id } })
  app.post<{ Body: { value: unknown } }>('/set', async (req) => { req.session.set('v', req.body.value); return { ok: true } })
  app.get('/me', async (req) => ({ userId: req.session.userId ?? null, v: req.session.get('v') ?? null }))
  app.post('/touch', async (req) => { req.session.touch(); return { ok: true } })
  app.post('/logout-everywhere', async (req) => ({ deleted: await app.sessions.deleteAll(req.session.userId) }))
  app.sessions.on('bound', (event) => { bound.push(event) })
  t.teardown(() => app.close())
  return { app, clock, bound }
}

interface Login { id: string, cookie: string, challenge: string | undefined, res: LightMyRequestResponse }

async function login (app: FastifyInstance, user = 'alice', https = true, body: Record<string, unknown> = {}): Promise<Login> {
  const res = await app.inject({ method: 'POST', url: '/login', headers: https ? HTTPS : {}, payload: { user, ...body } })
  const header = res.headers['secure-session-registration'] as string | undefined
  return { id: res.json().id, cookie: cookieOf(res) as string, challenge: header === undefined ? undefined : REGISTRATION.exec(header)?.[1], res }
}

/** The challenge a Secure-Session-Challenge header gives for session `id`. */
function challengeOf (res: LightMyRequestResponse, id: string): string {
  const m = /^"([\w-]{22})";id="([^"]+)"$/.exec(res.headers['secure-session-challenge'] as string)
  if (m === null || m[2] !== id) throw new Error(`no challenge for ${id} in ${String(res.headers['secure-session-challenge'])}`)
  return m[1] as string
}

async function register (app: FastifyInstance, cookie: string | undefined, header: string | undefined): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/dbsc/registration',
    headers: { ...HTTPS, ...(cookie === undefined ? {} : { cookie }), ...(header === undefined ? {} : { 'secure-session-response': header }) }
  })
}

async function refresh (app: FastifyInstance, id: string | undefined, header?: string): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/dbsc/refresh',
    headers: { ...HTTPS, ...(id === undefined ? {} : { 'sec-secure-session-id': id }), ...(header === undefined ? {} : { 'secure-session-response': header }) }
  })
}

/** A device that bound its login: its key, its current cookie, the challenge for its next refresh. */
interface Device { key: TestKey, id: string, cookie: string, next: string, loginCookie: string }

async function bind (app: FastifyInstance, user = 'alice', alg: 'ES256' | 'RS256' = 'ES256'): Promise<Device> {
  const key = await testKey(alg)
  const { id, cookie, challenge } = await login(app, user)
  const res = await register(app, cookie, await proof(key, { jti: challenge, withKey: true }))
  if (res.statusCode !== 200) throw new Error(`registration: ${res.statusCode} ${res.body}`)
  return { key, id, cookie: cookieOf(res) as string, next: challengeOf(res, id), loginCookie: cookie }
}

async function me (app: FastifyInstance, cookie: string): Promise<string | null> {
  return (await app.inject({ url: '/me', headers: { ...HTTPS, cookie } })).json().userId
}

const value = (cookie: string): string => cookie.slice('sid='.length)

onEveryStore(t, 'a login over https offers binding; the browser registers its key; the session is bound', async (t, { store }) => {
  const { app, bound } = await dbscApp(t, store)
  const key = await testKey()
  const { id, cookie, challenge, res: loginRes } = await login(app)
  t.ok(challenge !== undefined, 'the login response carries Secure-Session-Registration with a challenge')
  t.match(loginRes.cookies[0], { name: 'sid', maxAge: 86_400 }, 'and the login cookie, as without DBSC')
  t.equal(await me(app, cookie), 'alice')
  t.equal((await app.sessions.get(id))?.deviceBound, false, 'offered, not bound yet')

  const res = await register(app, cookie, await proof(key, { jti: challenge, withKey: true }))
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(res.json(), {
    session_identifier: id,
    refresh_url: '/dbsc/refresh',
    scope: { include_site: false, scope_specification: [] },
    credentials: [{ type: 'cookie', name: 'sid', attributes: 'Path=/; Secure; HttpOnly; SameSite=Lax' }]
  }, 'the session instructions: its id, the refresh route, the cookie as the bound credential with its exact attributes')
  const set = res.cookies.find((c) => c.name === 'sid')
  t.match(set, { maxAge: TTL, path: '/', secure: true, httpOnly: true, sameSite: 'Lax' }, 'a short-lived cookie, attributes as the instructions say')
  t.not(`sid=${set?.value}`, cookie, 'with a new secret')
  t.equal(set?.value.slice(0, id.length + 1), `${id}.`, 'of the same session')
  challengeOf(res, id)
  t.match(bound, [{ id, userId: 'alice', ip: '127.0.0.1' }], 'the \'bound\' event')
  t.notOk(JSON.stringify(bound).includes(value(cookieOf(res) as string).slice(-43)), 'without the secret')

  for (const record of [await app.sessions.get(id), (await app.sessions.getAll('alice'))[0], await app.sessions.authenticate(set?.value as string)]) {
    t.match(record, { id, userId: 'alice', deviceBound: true })
  }
  t.equal(await me(app, cookieOf(res) as string), 'alice', 'the new cookie authenticates')
  t.equal(await me(app, cookie), 'alice', 'the login cookie too, for requests in flight: it is the previous credential')
}, { sealed: false })

onEveryStore(t, 'a bound session\'s cookie authenticates for cookieTtl after it was issued, whatever its Max-Age; refreshes give new ones', async (t, { store }) => {
  const { app, clock } = await dbscApp(t, store)
  const device = await bind(app)
  clock.tick(TTL * 1000 - 1)
  t.equal(await me(app, device.cookie), 'alice', 'just before cookieTtl')
  t.equal(await me(app, device.loginCookie), 'alice', 'the login cookie was issued at the login, as long ago')
  clock.tick(1)
  t.equal(await me(app, device.cookie), null, 'at cookieTtl a copy is anonymous')
  t.equal(await app.sessions.authenticate(value(device.cookie)), undefined, 'authenticate() of it too')
  t.equal(await me(app, device.loginCookie), null)
  t.equal((await app.sessions.getAll('alice')).length, 1, 'the session lives on')

  const first = await refresh(app, device.id, await proof(device.key, { jti: device.next }))
  t.equal(first.statusCode, 200, 'the browser refreshes with the challenge it was given ahead: one round trip')
  t.match(first.cookies.find((c) => c.name === 'sid'), { maxAge: TTL })
  t.equal(first.json().session_identifier, device.id)
  const one = cookieOf(first) as string
  t.equal(await me(app, one), 'alice')
  clock.tick(10_000)
  const second = await refresh(app, device.id, await proof(device.key, { jti: challengeOf(first, device.id) }))
  const two = cookieOf(second) as string
  t.equal(await me(app, two), 'alice')
  t.equal(await me(app, one), 'alice', 'the previous cookie still works, for requests in flight during the refresh')
  clock.tick(TTL * 1000 - 10_000)
  t.equal(await me(app, one), null, 'until cookieTtl after it was issued')
  t.equal(await me(app, two), 'alice')
  const third = await refresh(app, device.id, await proof(device.key, { jti: challengeOf(second, device.id) }))
  t.equal(await me(app, cookieOf(third) as string), 'alice')
  t.equal(await me(app, one), null, 'a cookie two refreshes old is dead at once')
}, { sealed: false })

onEachStore(t, 'refresh without a proof: 403 and a challenge; a replayed, stale or foreign challenge: 403 again, never a cookie', async (t, store) => {
  const { app, clock } = await dbscApp(t, store)
  const device = await bind(app)
  const other = await bind(app, 'bob')
  const ask = await refresh(app, device.id)
  t.equal(ask.statusCode, 403)
  t.equal(ask.headers['cache-control'], 'no-store')
  t.same(ask.cookies, [])
  const challenge = challengeOf(ask, device.id)
  const signed = await proof(device.key, { jti: challenge })
  const ok = await refresh(app, device.id, signed)
  t.equal(ok.statusCode, 200)

  const replayed = await refresh(app, device.id, signed)
  t.equal(replayed.statusCode, 403, 'a replayed proof: its challenge was used')
  t.same(replayed.cookies, [])
  challengeOf(replayed, device.id)
  const foreign = await refresh(app, device.id, await proof(device.key, { jti: other.next }))
  t.equal(foreign.statusCode, 403, 'a challenge given to another session')
  t.same(foreign.cookies, [])
  const stale = challengeOf(await refresh(app, device.id), device.id)
  clock.tick(121_000)
  const late = await refresh(app, device.id, await proof(device.key, { jti: stale }))
  t.equal(late.statusCode, 403, 'a challenge past its two minutes')
  t.same(late.cookies, [])
  t.equal((await refresh(app, device.id, await proof(device.key, { jti: challengeOf(late, device.id) }))).statusCode, 200, 'the fresh one works')
})

onEachStore(t, 'refresh refusals: a key swapped or added, wrong typ, a malformed header, no session id: 400, never a 5xx nor a cookie', async (t, store) => {
  const { app } = await dbscApp(t, store)
  const device = await bind(app)
  const thief = await testKey()
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ['signed by another key', device.id, await proof(thief, { jti: device.next })],
    ['another key announced in the header', device.id, await proof(thief, { jti: device.next, withKey: true })],
    ['the session\'s key in the header', device.id, await proof(device.key, { jti: device.next, withKey: true })],
    ['wrong typ', device.id, await proof(device.key, { jti: device.next, header: { typ: 'JWT' } })],
    ['a malformed proof', device.id, 'not-a-jws'],
    ['a proof that is not a header value', device.id, 'a b'],
    ['no session id', undefined, await proof(device.key, { jti: device.next })],
    ['a session id that is not one', 'x', await proof(device.key, { jti: device.next })]
  ]
  for (const [name, id, header] of cases) {
    const res = await refresh(app, id, header)
    t.equal(res.statusCode, 400, name)
    t.same(res.cookies, [], `${name}: no cookie`)
    t.match(res.json(), { statusCode: 400, message: /\w/ })
  }
  t.equal((await refresh(app, device.id, await proof(device.key, { jti: device.next }))).statusCode, 200, 'the challenge was not used up by the refusals')
  t.equal((await refresh(app, `"${device.id}"`)).statusCode, 403, 'the session id as a structured-field string')
})

onEachStore(t, 'a session that ended ends the browser\'s DBSC session: {"continue": false}, no cookie', async (t, store) => {
  const { app, clock } = await dbscApp(t, store)
  const device = await bind(app)
  const unbound = await login(app, 'carol')
  const anonymous = await app.inject({ method: 'POST', url: '/set', headers: HTTPS, payload: { value: 1 } })
  const anonymousId = (cookieOf(anonymous) as string).slice(4).split('.')[0] as string
  t.equal((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { ...HTTPS, cookie: device.cookie } })).json().deleted, 1)
  for (const [name, id, header] of [
    ['logged out everywhere, with a proof', device.id, await proof(device.key, { jti: device.next })],
    ['logged out everywhere, without', device.id, undefined],
    ['offered, never bound', unbound.id, undefined],
    ['anonymous', anonymousId, undefined]
  ] as const) {
    const res = await refresh(app, id, header)
    t.equal(res.statusCode, 200, name)
    t.same(res.json(), { session_identifier: id, continue: false }, name)
    t.same(res.cookies, [], `${name}: no cookie`)
    t.equal(res.headers['secure-session-challenge'], undefined)
  }
  const expiring = await bind(app, 'dave')
  clock.tick(86_400_000)
  t.same((await refresh(app, expiring.id, await proof(expiring.key, { jti: expiring.next }))).json(),
    { session_identifier: expiring.id, continue: false }, 'past its deadline')
})

onEachStore(t, 'registration refusals: no cookie, no offer, bound already, a wrong or expired challenge, a bad proof; none a 5xx', async (t, store) => {
  const { app, clock, bound } = await dbscApp(t, store)
  const key = await testKey()
  const fresh = await login(app)
  const good = await proof(key, { jti: fresh.challenge, withKey: true })
  const http = await login(app, 'bob', false)
  t.equal(http.challenge, undefined, 'a login over http is not offered binding')
  const other = await login(app, 'carol')
  const cases: Array<[string, number, string | undefined, string | undefined]> = [
    ['no session cookie', 401, undefined, good],
    ['a cookie that does not authenticate', 401, 'sid=garbage', good],
    ['no proof', 400, fresh.cookie, undefined],
    ['a proof that is not a header value', 400, fresh.cookie, '"unterminated'],
    ['a proof without a key', 400, fresh.cookie, await proof(key, { jti: fresh.challenge })],
    ['a proof of the wrong typ', 400, fresh.cookie, await proof(key, { jti: fresh.challenge, withKey: true, header: { typ: 'JWT' } })],
    ['a challenge given to another session', 403, fresh.cookie, await proof(key, { jti: other.challenge, withKey: true })],
    ['a session never offered binding (login over http)', 403, http.cookie, await proof(key, { jti: fresh.challenge, withKey: true })]
  ]
  for (const [name, status, cookie, header] of cases) {
    const res = await register(app, cookie, header)
    t.equal(res.statusCode, status, name)
    t.same(res.cookies, [], `${name}: no cookie`)
    t.equal(res.headers['secure-session-registration'], undefined, `${name}: no new offer`)
  }
  t.equal((await register(app, fresh.cookie, good)).statusCode, 200, 'the refusals used nothing up')
  const again = await register(app, fresh.cookie, await proof(await testKey(), { jti: fresh.challenge, withKey: true }))
  t.equal(again.statusCode, 403, 'a session is bound once: another key cannot take it over')
  t.equal(bound.length, 1)
  const late = await login(app, 'erin')
  clock.tick(121_000)
  t.equal((await register(app, late.cookie, await proof(key, { jti: late.challenge, withKey: true }))).statusCode, 403,
    'the registration challenge lasts two minutes')
})

onEachStore(t, 'of concurrent refreshes with one proof, or registrations with one challenge, one wins', async (t, store) => {
  const { app } = await dbscApp(t, store)
  const device = await bind(app)
  const signed = await proof(device.key, { jti: device.next })
  const statuses = (await Promise.all([1, 2, 3].map(() => refresh(app, device.id, signed)))).map((r) => r.statusCode).sort()
  t.same(statuses, [200, 403, 403])
  const { cookie, challenge } = await login(app, 'bob')
  const keys = [await testKey(), await testKey('RS256')]
  const registered = await Promise.all(keys.map(async (key) => await register(app, cookie, await proof(key, { jti: challenge, withKey: true }))))
  t.same(registered.map((r) => r.statusCode).sort(), [200, 403])
})

onEachStore(t, 'what is offered binding: a user\'s persistent cookie session over https, at login() and regenerate()', async (t, store) => {
  const { app } = await dbscApp(t, store, { bearer: true })
  t.ok((await login(app)).challenge, 'login() over https')
  t.equal((await login(app, 'bob', false)).challenge, undefined, 'not over http')
  t.equal((await login(app, 'bob', true, { persistent: false })).challenge, undefined,
    'not a cookie that dies with the browser: browsers keep their DBSC sessions across restarts')
  const token = await app.inject({ method: 'POST', url: '/login', headers: HTTPS, payload: { user: 'bob', bearer: true } })
  t.equal(token.headers['secure-session-registration'], undefined, 'not a bearer token')
  const anonymous = await app.inject({ method: 'POST', url: '/set', headers: HTTPS, payload: { value: 1 } })
  t.equal(anonymous.headers['secure-session-registration'], undefined, 'not an anonymous session')
  const device = await bind(app)
  const regenerated = await app.inject({ method: 'POST', url: '/regenerate', headers: { ...HTTPS, cookie: device.cookie } })
  const id = regenerated.json().id
  t.not(id, device.id)
  t.match(regenerated.headers['secure-session-registration'], REGISTRATION, 'regenerate(): a new session, offered again')
  t.match(regenerated.cookies[0], { maxAge: 86_400 }, 'its cookie is the unbound session\'s until the browser registers')
  t.equal((await app.sessions.get(id))?.deviceBound, false)
  t.same((await refresh(app, device.id)).json(), { session_identifier: device.id, continue: false }, 'the old DBSC session ends')
  const anon = await app.inject({ method: 'POST', url: '/regenerate', headers: { ...HTTPS, cookie: cookieOf(anonymous) as string } })
  t.equal(anon.headers['secure-session-registration'], undefined, 'regenerate() of an anonymous session: not offered')
})

onEachStore(t, 'requests of a bound session write as before, and never send its cookie again with a longer life', async (t, store) => {
  const { app, clock } = await dbscApp(t, store, { ttl: 3600 })
  const device = await bind(app)
  const set = await app.inject({ method: 'POST', url: '/set', headers: { ...HTTPS, cookie: device.cookie }, payload: { value: 42 } })
  t.same(set.cookies, [], 'a data write sends no cookie')
  t.equal((await app.inject({ url: '/me', headers: { ...HTTPS, cookie: device.cookie } })).json().v, 42)
  clock.tick(1_000_000) // past a tenth of ttl: a rolling refresh is due
  const challenge = challengeOf(await refresh(app, device.id), device.id)
  const refreshed = await refresh(app, device.id, await proof(device.key, { jti: challenge }))
  const cookie = cookieOf(refreshed) as string
  const touched = await app.inject({ method: 'POST', url: '/touch', headers: { ...HTTPS, cookie } })
  t.same(touched.cookies, [], 'the rolling deadline moves, the bound cookie is not sent again')
  t.ok(((await app.sessions.getAll('alice'))[0]?.expiresAt ?? 0) > clock.now() + 3_500_000, 'the deadline did move')
  t.match(refreshed.cookies[0], { maxAge: TTL })
})

t.test('a bound cookie\'s Max-Age never passes the session\'s deadline', async (t) => {
  const { app, clock } = await dbscApp(t, { store: 'memory' }, { ttl: 90 })
  const device = await bind(app)
  clock.tick(50_000)
  const res = await refresh(app, device.id, await proof(device.key, { jti: device.next }))
  t.match(res.cookies[0], { maxAge: 40 })
})

t.test('RS256 keys bind too; the offer lists the algorithms of the options', async (t) => {
  const { app } = await dbscApp(t, { store: 'memory' }, { dbsc: { cookieTtl: TTL, algorithms: ['RS256'] } })
  const { challenge, res } = await login(app)
  t.match(res.headers['secure-session-registration'], /^\(RS256\);path=/)
  const refused = await register(app, cookieOf(res), await proof(await testKey('ES256'), { jti: challenge, withKey: true }))
  t.equal(refused.statusCode, 400, 'an algorithm not offered')
  const device = await bind(app, 'bob', 'RS256')
  t.equal((await refresh(app, device.id, await proof(device.key, { jti: device.next }))).statusCode, 200)
})

t.test('requests that are neither registration nor refresh pay nothing: the same store calls as without DBSC', async (t) => {
  const calls = async (dbsc: boolean): Promise<Record<string, number>> => {
    const store = countedStore({ store: 'memory' })
    const { app } = await dbscApp(t, { store }, { dbsc })
    const { cookie } = await login(app, 'alice', false)
    await app.inject({ url: '/me', headers: { cookie } })
    await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { value: 1 } })
    await login(app, 'bob', true)
    return { ...store.calls, writes: writesOf(store) }
  }
  t.same(await calls(true), await calls(false), 'login over http and https, a read, a write: one insert per login, no extra write')
})

t.test('the browser\'s session is found from any instance: a challenge given by one is answered at another', async (t) => {
  const table = `dbsc-${Date.now()}`
  const a = await dbscApp(t, { store: 'memory', storeOptions: { table } })
  const b = await dbscApp(t, { store: 'memory', storeOptions: { table } })
  const key = await testKey()
  const { id, cookie, challenge } = await login(a.app)
  const registered = await register(b.app, cookie, await proof(key, { jti: challenge, withKey: true }))
  t.equal(registered.statusCode, 200)
  t.equal((await refresh(a.app, id, await proof(key, { jti: challengeOf(registered, id) }))).statusCode, 200)
})

t.test('a live connection opened with a bound cookie follows the session, and is not cut when that cookie ages', async (t) => {
  const table = `dbsc-live-${Date.now()}`
  const ended: string[] = []
  const clock = testClock()
  const app = Fastify({ trustProxy: true })
  await app.register(session, { store: 'memory', storeOptions: { table }, dbsc: { cookieTtl: 1 }, clock: clock.now })
  app.post('/login', async (req) => { await req.session.login('alice'); return { id: req.session.id } })
  app.post('/live', async (req) => { req.session.onRevoked((reason) => { ended.push(reason) }); return { ok: true } })
  t.teardown(() => app.close())
  const key = await testKey()
  const { cookie, challenge } = await login(app)
  const bound = cookieOf(await register(app, cookie, await proof(key, { jti: challenge, withKey: true }))) as string
  t.equal((await app.inject({ method: 'POST', url: '/live', headers: { ...HTTPS, cookie: bound } })).statusCode, 200)
  clock.tick(5000)
  t.equal(await app.sessions.authenticate(value(bound)), undefined, 'the cookie it opened with is past cookieTtl')
  // The watcher checks the store when it starts following; a revocation reaches it on the bus.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ended, [], 'the connection follows on')
  await app.sessions.deleteAll('alice')
  for (let i = 0; i < 200 && ended.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.same(ended, ['deleteAll'], 'and ends with the session')
})

t.test('a store that fails: 503 on registration and refresh (the browser backs off), never a crash', async (t) => {
  let failing = false
  const inner = countedStore({ store: 'memory' })
  const fail = (): Promise<never> => Promise.reject(new Error('connection lost'))
  const store = delegate(inner, {
    get: async (id) => await (failing ? fail() : inner.get(id)),
    patch: async (id, p) => await (failing && p.dbsc !== undefined ? fail() : inner.patch(id, p))
  })
  const { app } = await dbscApp(t, { store })
  const device = await bind(app)
  const { cookie, challenge } = await login(app, 'bob')
  failing = true
  t.equal((await refresh(app, device.id, await proof(device.key, { jti: device.next }))).statusCode, 503)
  t.equal((await register(app, cookie, await proof(await testKey(), { jti: challenge, withKey: true }))).statusCode, 503, 'the session cannot be read')
  const writesFail = delegate(inner, { patch: async (id, p) => await (p.dbsc !== undefined ? fail() : inner.patch(id, p)) })
  const second = await dbscApp(t, { store: writesFail })
  const other = await login(second.app, 'carol')
  t.equal((await register(second.app, other.cookie, await proof(await testKey(), { jti: other.challenge, withKey: true }))).statusCode, 503,
    'the binding cannot be written')
  failing = false
})

t.test('a session whose binding keeps changing under the refresh: 503 after a few tries, never a loop', async (t) => {
  const inner = countedStore({ store: 'memory' })
  let lose = false
  const store = delegate(inner, { patch: async (id, p) => lose && p.dbsc !== undefined ? false : await inner.patch(id, p) })
  const { app } = await dbscApp(t, { store })
  const device = await bind(app)
  lose = true
  const before = inner.calls.get ?? 0
  t.equal((await refresh(app, device.id, await proof(device.key, { jti: device.next }))).statusCode, 503)
  t.equal((inner.calls.get ?? 0) - before, 3, 'three reads, three compare-and-sets lost')
  t.equal((await refresh(app, device.id)).statusCode, 503)
  const { cookie, challenge } = await login(app, 'bob')
  t.equal((await register(app, cookie, await proof(await testKey(), { jti: challenge, withKey: true }))).statusCode, 403,
    'a registration that loses its compare-and-set is refused')
})

t.test('a stored binding that cannot be read: the session does not authenticate, nor show on a devices page', async (t) => {
  const inner = countedStore({ store: 'memory' })
  const { app } = await dbscApp(t, { store: inner })
  const { id, cookie } = await login(app)
  const device = await bind(app, 'bob')
  for (const broken of [{ id, user: 'alice', cookie }, { id: device.id, user: 'bob', cookie: device.cookie }]) {
    const s = await inner.get(broken.id)
    t.equal(await inner.patch(broken.id, { clear: false, set: {}, unset: [], lastSeenAt: Date.now(), dbsc: { from: s?.dbsc, to: '{"v":9}' } }), true)
    t.equal(await me(app, broken.cookie), null, `${broken.user}: refused`)
    t.equal(await app.sessions.get(broken.id), undefined)
    t.same(await app.sessions.getAll(broken.user), [])
    t.same((await refresh(app, broken.id)).json(), { session_identifier: broken.id, continue: false })
  }
})

t.test('DBSC turned off again: a bound session no longer authenticates (its login secret does not come back); an offered one does', async (t) => {
  const table = `dbsc-off-${Date.now()}`
  const on = await dbscApp(t, { store: 'memory', storeOptions: { table } })
  const device = await bind(on.app)
  const offered = await login(on.app, 'bob')
  const off = await dbscApp(t, { store: 'memory', storeOptions: { table } }, { dbsc: false })
  t.equal(await me(off.app, device.cookie), null)
  t.equal(await me(off.app, device.loginCookie), null)
  t.equal(await me(off.app, offered.cookie), 'bob')
  t.equal((await off.app.inject({ method: 'POST', url: '/dbsc/refresh', headers: HTTPS })).statusCode, 404, 'no DBSC routes')
  t.equal((await off.app.sessions.get(device.id))?.deviceBound, true, 'the devices page still tells it was bound')
})

t.test('register() checks the dbsc option and what it needs', async (t) => {
  const fails = async (options: Record<string, unknown>, message: RegExp): Promise<void> => {
    const app = Fastify()
    await t.rejects(async () => { await app.register(session, options as FastifyUserSessionsOptions).ready() }, { code: 'FST_SESSION_OPTION_INVALID', message }, message.source)
    await app.close()
  }
  await fails({ store: 'cookie', secret: 'x'.repeat(32), storeOptions: { revocation: 'memory' }, dbsc: true }, /"dbsc": needs a server-side store .* the cookie store keeps nothing on the server per session/)
  await fails({ dbsc: 'yes' }, /"dbsc": must be an object/)
  await fails({ dbsc: { cookieTtl: 0 } }, /"dbsc.cookieTtl": must be a positive integer/)
  await fails({ dbsc: { ttl: 5 } }, /"dbsc.ttl": unknown option/)
  await fails({ dbsc: { algorithms: [] } }, /"dbsc.algorithms"/)
  await fails({ dbsc: { algorithms: ['ES256', 'ES256'] } }, /"dbsc.algorithms"/)
  await fails({ dbsc: { algorithms: ['none'] } }, /"dbsc.algorithms"/)
  await fails({ dbsc: { algorithms: 'ES256' } }, /"dbsc.algorithms"/)
  await fails({ dbsc: { registrationPath: 'dbsc' } }, /"dbsc.registrationPath": must be a path/)
  await fails({ dbsc: { refreshPath: '/a"b' } }, /"dbsc.refreshPath": must be a path/)
  await fails({ dbsc: { refreshPath: '/dbsc/registration' } }, /"dbsc.refreshPath": must differ/)
  await fails({ dbsc: true, cookie: { path: '/app' } }, /"dbsc.registrationPath": must be within the cookie's path \(\/app\)/)
  await fails({ dbsc: true, cookie: { secure: false } }, /"dbsc": needs a Secure cookie/)
  await fails({ dbsc: true, cookie: { partitioned: true } }, /"dbsc": cannot bind a Partitioned cookie/)
  const prefixed = Fastify()
  await t.rejects(async () => { await prefixed.register(async (scope) => { await scope.register(session, { dbsc: true }) }, { prefix: '/a:b' }).ready() },
    { message: /"dbsc": the plugin's route prefix \(\/a:b\)/ })
  await prefixed.close()

  const app = Fastify({ trustProxy: true })
  await app.register(async (scope) => {
    await scope.register(session, { dbsc: { registrationPath: '/app/bind', refreshPath: '/refresh' }, cookie: { path: '/api' } })
    scope.post('/login', async (req) => { await req.session.login('alice'); return 'ok' })
  }, { prefix: '/api' })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/api/login', headers: HTTPS })
  t.match(res.headers['secure-session-registration'], /;path="\/api\/app\/bind";/, 'paths under the prefix the plugin was registered with')
  t.equal((await app.inject({ method: 'POST', url: '/api/refresh', headers: HTTPS })).statusCode, 400, 'the refresh route is there')
  const defaults = await dbscApp(t, { store: 'memory' }, { dbsc: true, cookie: { domain: 'example.com', sameSite: 'strict', httpOnly: false } })
  const { cookie, challenge } = await login(defaults.app)
  const registered = await register(defaults.app, cookie, await proof(await testKey(), { jti: challenge, withKey: true }))
  t.equal(registered.json().credentials[0].attributes, 'Path=/; Domain=example.com; Secure; SameSite=Strict', 'the attributes follow the cookie options')
  t.match(registered.cookies[0], { maxAge: 600 }, 'cookieTtl is 10 minutes by default')
})
