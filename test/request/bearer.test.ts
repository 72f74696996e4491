import t from 'tap'
import { buildApp, cookieOf, logSink, testClock } from '../helpers/app.js'
import { countedStore, onEveryStore } from '../helpers/stores.js'

// Bearer tokens for API clients (issue 13): `bearer: true`, `login(id, { transport: 'bearer' })`,
// `request.session.token`, on every server-side store. The cookie store refuses the option.

const MINUTE = 60_000

async function apiApp (store: object, clock: ReturnType<typeof testClock>, logger: boolean | object = false) {
  return await buildApp({ ...store, clock: clock.now, ttl: 3600, bearer: true }, logger, (app) => {
    app.post<{ Body: { user: string } }>('/api/login', async (req) => {
      await req.session.login(req.body.user, { transport: 'bearer' })
      req.session.set('name', req.body.user)
      return { token: req.session.token }
    })
    app.post('/api/relogin', async (req) => {
      await req.session.login(req.session.userId as string)
      return { token: req.session.token }
    })
    app.post('/api/cookie-login', async (req) => {
      await req.session.login('mallory', { transport: 'cookie' })
      return { ok: true }
    })
    app.post('/api/regenerate', async (req) => {
      await req.session.regenerate()
      return { token: req.session.token ?? null }
    })
    app.get('/api/token', async (req) => ({ token: req.session.token ?? null, isNew: req.session.isNew }))
    app.post('/api/anonymous-write', async (req) => {
      req.session.set('seen', true)
      await req.session.save()
      return { token: req.session.token ?? null }
    })
  })
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

onEveryStore(t, 'a JSON login returns a token; requests with it load the session; no Set-Cookie, ever', async (t, { store }) => {
  const clock = testClock()
  const app = await apiApp(store, clock)
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })
  t.equal(login.statusCode, 200)
  t.equal(login.headers['set-cookie'], undefined, 'no Set-Cookie on the login response')
  const token = login.json().token as string
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/, 'the token: id and 256-bit secret')
  const me = await app.inject({ url: '/me', headers: bearer(token) })
  t.same(me.json(), { id: token.slice(0, token.lastIndexOf('.')), userId: 'alice', name: 'alice' })
  t.equal(me.headers['set-cookie'], undefined)
  for (const header of [`bearer ${token}`, `BEARER  ${token}`, `Bearer ${token} `]) {
    t.equal((await app.inject({ url: '/me', headers: { authorization: header } })).json().userId, 'alice', `scheme case-insensitive: ${header.slice(0, 7)}`)
  }
  const write = await app.inject({ method: 'POST', url: '/counter', headers: bearer(token) })
  t.equal(write.json().counter, 1)
  t.equal(write.headers['set-cookie'], undefined, 'a write sends no cookie')
  t.equal((await app.inject({ url: '/counter', headers: bearer(token) })).json().counter, 1, 'the write was stored')
  t.equal((await app.inject({ url: '/api/token', headers: bearer(token) })).json().token, null, 'the token shows only on the response that issued it')
  const [record] = await app.sessions.getAll('alice')
  t.match(record, { transport: 'bearer', persistent: true, userId: 'alice' })
  // The idle deadline moves in the store, with no cookie to carry it.
  const before = record?.expiresAt as number
  clock.tick(10 * MINUTE)
  const refreshed = await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(refreshed.headers['set-cookie'], undefined, 'a refresh sends no cookie')
  const after = (await app.sessions.getAll('alice'))[0]?.expiresAt as number
  t.equal(after - before, 10 * MINUTE, 'the idle deadline was pushed back in the store')
  clock.tick(61 * MINUTE)
  t.equal((await app.inject({ url: '/me', headers: bearer(token) })).json().userId, null, 'the idle deadline ends it')
}, { sealed: false })

onEveryStore(t, 'a malformed, unknown or wrong token is an anonymous session, never an error', async (t, { store }) => {
  const clock = testClock()
  const app = await apiApp(store, clock)
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  const dot = token.lastIndexOf('.')
  const wrongSecret = token.slice(0, dot + 1) + (token[dot + 1] === 'A' ? 'B' : 'A') + token.slice(dot + 2)
  const headers = ['Bearer', 'Bearer ', 'Bearer x', 'Bearer a b', `Bearer ${token}x`, `Bearer ${wrongSecret}`,
    `Bearer ${'a'.repeat(5000)}`, 'Bearer ☃.☃', `Bearer ${token.slice(0, dot)}`, 'Bearer {"$ne":null}', 'Bearer ../../etc/passwd']
  for (const authorization of headers) {
    const res = await app.inject({ url: '/me', headers: { authorization } })
    t.equal(res.statusCode, 200, `${authorization.slice(0, 24)}: 200`)
    t.same(res.json(), { id: null, userId: null, name: null }, 'anonymous')
    t.equal(res.headers['set-cookie'], undefined, 'no cookie set or cleared')
  }
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })).statusCode, 200,
    'another scheme is not a bearer request')
}, { sealed: false })

onEveryStore(t, 'a credential works only the way its session travels: a token is no cookie, a cookie value is no token', async (t, { store }) => {
  const app = await apiApp(store, testClock())
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  const cookieLogin = await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })
  const cookie = cookieOf(cookieLogin) as string
  t.equal((await app.inject({ url: '/me', headers: { cookie: `sid=${token}` } })).json().userId, null, 'a token sent as the cookie')
  t.equal((await app.inject({ url: '/me', headers: bearer(cookie.slice(4)) })).json().userId, null, 'a cookie value sent as a token')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'bob', 'the cookie still works as a cookie')
}, { sealed: false })

onEveryStore(t, 'a request with both a token and a cookie is a bearer request: the token decides, the cookie is not touched', async (t, { store }) => {
  const app = await apiApp(store, testClock())
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
  const both = await app.inject({ method: 'POST', url: '/counter', headers: { ...bearer(token), cookie } })
  t.equal(both.headers['set-cookie'], undefined, 'the cookie is neither set nor cleared')
  t.equal((await app.inject({ url: '/me', headers: { ...bearer(token), cookie } })).json().userId, 'alice', 'the token decides')
  t.equal((await app.inject({ url: '/counter', headers: { cookie } })).json().counter, 0, 'the cookie\'s session did not get the write')
  const badToken = await app.inject({ url: '/me', headers: { ...bearer('garbage'), cookie } })
  t.equal(badToken.json().userId, null, 'a bad token with a good cookie: anonymous, the cookie is not a fallback')
  t.equal(badToken.headers['set-cookie'], undefined)
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'bob', 'the cookie\'s session is intact')
}, { sealed: false })

onEveryStore(t, 'logout, log out everywhere, regenerate and re-login end a token at once', async (t, { store }) => {
  const app = await apiApp(store, testClock())
  t.teardown(() => app.close())
  const login = async (): Promise<string> => (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  const userOf = async (token: string): Promise<unknown> => (await app.inject({ url: '/me', headers: bearer(token) })).json().userId
  const a = await login()
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: bearer(a) })
  t.equal(logout.headers['set-cookie'], undefined, 'destroy() on a bearer request clears no cookie')
  t.equal(await userOf(a), null, 'destroy() ends the token')
  const b = await login()
  const c = await login()
  t.equal((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: bearer(b) })).json().deleted, 2)
  t.equal(await userOf(b), null)
  t.equal(await userOf(c), null, 'deleteAll ends every token of the user')
  const d = await login()
  const regenerated = await app.inject({ method: 'POST', url: '/api/regenerate', headers: bearer(d) })
  const e = regenerated.json().token as string
  t.ok(e !== d && e !== null, 'regenerate() issues a new token, shown on its response')
  t.equal(regenerated.headers['set-cookie'], undefined)
  t.equal(await userOf(d), null, 'the old token is dead')
  t.equal(await userOf(e), 'alice', 'the new one works')
  t.match(await app.sessions.getAll('alice'), [{ transport: 'bearer' }], 'regenerate() keeps the transport')
  const relogin = await app.inject({ method: 'POST', url: '/api/relogin', headers: bearer(e) })
  const f = relogin.json().token as string
  t.ok(typeof f === 'string' && f !== e, 'login() on a bearer request issues a token by default')
  t.equal(await userOf(e), null)
  t.equal(await userOf(f), 'alice')
  const cookieLogin = await app.inject({ method: 'POST', url: '/api/cookie-login', headers: bearer(f) })
  t.equal(cookieLogin.json().code, 'FST_SESSION_OPTION_INVALID', 'a bearer request cannot set the session cookie')
  t.match(cookieLogin.json().message, '"options.transport"')
  t.equal(cookieLogin.headers['set-cookie'], undefined)
  t.equal(await userOf(f), 'alice', 'the refused login changed nothing')
}, { sealed: false })

onEveryStore(t, 'a token login from a browser with a cookie session replaces it and expires the cookie', async (t, { store }) => {
  const app = await apiApp(store, testClock())
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string
  const res = await app.inject({ method: 'POST', url: '/api/login', headers: { cookie }, payload: { user: 'alice' } })
  t.ok(res.json().token)
  t.match(String(res.headers['set-cookie']), /^sid=;.*Max-Age=0/, 'the replaced session\'s cookie is expired')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'and its session is gone')
  t.match(await app.sessions.getAll('alice'), [{ transport: 'bearer' }])
}, { sealed: false })

onEveryStore(t, 'an anonymous session first written on a bearer request travels as a token too', async (t, { store }) => {
  const app = await apiApp(store, testClock())
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/api/anonymous-write', headers: bearer('expired-or-garbage') })
  t.equal(res.headers['set-cookie'], undefined)
  const token = res.json().token as string
  t.ok(token, 'its token is shown after save()')
  t.equal((await app.inject({ url: '/api/token', headers: bearer(token) })).json().isNew, false, 'and loads it')
}, { sealed: false })

t.test('tokens never reach the log, at any level', async (t) => {
  const sink = logSink('trace')
  const app = await apiApp({}, testClock(), sink.logger)
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  await app.inject({ url: '/me', headers: bearer(token) })
  await app.inject({ url: '/me', headers: bearer(token + 'x') })
  await app.inject({ method: 'POST', url: '/logout', headers: bearer(token) })
  await app.inject({ url: '/me', headers: bearer(token) })
  const secret = token.slice(token.lastIndexOf('.') + 1)
  t.ok(sink.lines.length > 0, 'there were log lines')
  t.notOk(sink.text().includes(secret), 'no token secret in the log')
  t.match(sink.text(), 'session credential refused', 'a refused token is logged, without its value')
})

t.test('bearer: true needs a server-side store; transport \'bearer\' needs bearer: true', async (t) => {
  await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, bearer: true }), { code: 'FST_SESSION_OPTION_INVALID', message: /"bearer".*server-side store/ })
  await t.rejects(buildApp({ bearer: 'yes' as never }), { code: 'FST_SESSION_OPTION_INVALID', message: /"bearer"/ })
  const app = await buildApp({}, false, (app) => {
    app.post('/api/login', async (req) => {
      await req.session.login('alice', { transport: 'bearer' })
      return { ok: true }
    })
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/api/login' })
  t.equal(res.json().code, 'FST_SESSION_OPTION_INVALID')
  t.match(res.json().message, /"options\.transport".*bearer: true/)
  const ignored = await app.inject({ url: '/me', headers: { authorization: 'Bearer x.y' } })
  t.equal(ignored.statusCode, 200, 'without bearer: true, an Authorization header is not looked at')
})

t.test('routes with config.session false do not load a token', async (t) => {
  const store = countedStore({ store: 'memory' })
  const app = await apiApp({ store }, testClock())
  app.get('/health', { config: { session: false } }, async () => ({ ok: true }))
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } })).json().token as string
  const reads = store.calls.get ?? 0
  const res = await app.inject({ url: '/health', headers: bearer(token) })
  t.equal(res.statusCode, 200)
  t.equal(store.calls.get ?? 0, reads, 'no store read')
  await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(store.calls.get, reads + 1, 'a route with sessions reads it')
})
