import fastifyCsrf from '@fastify/csrf-protection'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyUserSessions, { type SessionCookieOverrides } from '../../lib/index.js'
import { cookieOf, SECRET, setCookieOf } from '../helpers/app.js'
import { onEachStore, type StoreOptions } from '../helpers/stores.js'

// @fastify/csrf-protection 8 with sessionPlugin: '@fastify/secure-session': the mode that keeps
// the CSRF secret with get/set, and calls request.session.options(opts) from generateCsrf(opts).

async function csrfApp (store: StoreOptions, csrf: object = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyUserSessions, { secret: SECRET, ...store })
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session', ...csrf })
  app.get('/form', async (_request, reply) => ({ token: reply.generateCsrf() }))
  app.post<{ Body: SessionCookieOverrides }>('/form', async (request, reply) => ({ token: reply.generateCsrf(request.body) }))
  app.post('/transfer', { onRequest: app.csrfProtection }, async () => ({ done: true }))
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    await request.session.login(request.body.user)
    return { ok: true }
  })
  return app
}

onEachStore(t, 'csrf tokens: generateCsrf() and generateCsrf(opts) work; a token from before login dies at login', async (t, store) => {
  const app = await csrfApp(store)
  t.teardown(() => app.close())
  const form = await app.inject({ url: '/form' })
  const cookie = cookieOf(form) as string
  const { token } = form.json()
  t.type(token, 'string')
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie } })).statusCode, 403, 'no token, refused')
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'x-csrf-token': 'forged' } })).statusCode, 403)
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'x-csrf-token': token } })).json(), { done: true })

  const again = await app.inject({ url: '/form', headers: { cookie } })
  t.equal(cookieOf(again), undefined, 'a second token of the same secret sends no cookie and writes nothing')

  const strict = await app.inject({ method: 'POST', url: '/form', payload: { sameSite: 'strict', secure: true } })
  t.equal(strict.statusCode, 200)
  t.match(setCookieOf(strict), { sameSite: 'Strict', secure: true, httpOnly: true }, 'the options apply to this Set-Cookie')
  const strictCookie = cookieOf(strict) as string
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: strictCookie, 'x-csrf-token': strict.json().token } })).json(), { done: true })

  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: 'alice' } })
  const loggedIn = cookieOf(login) as string
  const stale = await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: loggedIn, 'x-csrf-token': token } })
  t.equal(stale.statusCode, 403, 'the pre-login token dies at login')
  t.equal(stale.json().code, 'FST_CSRF_MISSING_SECRET')
  const fresh = (await app.inject({ url: '/form', headers: { cookie: loggedIn } })).json().token
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: loggedIn, 'x-csrf-token': fresh } })).json(), { done: true })
})

t.test('generateCsrf({ userInfo }) with getUserInfo: the token is tied to the user', async (t) => {
  const app = await csrfApp({ store: 'memory' }, { getUserInfo: (request: { session: { userId?: string } }) => request.session.userId ?? '' })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string
  const form = await app.inject({ method: 'POST', url: '/form', headers: { cookie }, payload: { userInfo: 'alice' } })
  t.equal(form.statusCode, 200)
  const session = cookieOf(form) ?? cookie
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: session, 'x-csrf-token': form.json().token } })).json(), { done: true })
  const other = (await app.inject({ method: 'POST', url: '/form', headers: { cookie: session }, payload: { userInfo: 'mallory' } })).json().token
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: session, 'x-csrf-token': other } })).statusCode, 403)
})

t.test('generateCsrf(opts) with an option that would weaken or fork the cookie: a typed error, no stack', async (t) => {
  const app = await csrfApp({ store: 'memory' })
  t.teardown(() => app.close())
  for (const [opts, pattern] of [
    [{ maxAge: 60 }, /lifetime follows the session deadline/],
    [{ path: '/admin' }, /second cookie/],
    [{ httpOnly: false }, /can only be true/],
    [{ sameSite: 'none' }, /looser than the configured 'lax'/],
    [{ signed: true }, /unknown/]
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/form', payload: opts })
    t.equal(res.statusCode, 500)
    t.match(res.json(), { code: 'FST_SESSION_OPTION_INVALID', message: pattern })
    t.notOk('stack' in res.json())
  }
})

// The '@fastify/session' mode keeps the secret by property access: `request.session._csrf`.
async function sessionMode (t: Test, store: StoreOptions): Promise<void> {
  const app = await csrfApp(store, { sessionPlugin: '@fastify/session' })
  t.teardown(() => app.close())
  app.get('/secret', async (request) => ({ keys: Object.keys(request.session), secret: typeof (request.session as unknown as Record<string, unknown>)._csrf }))
  const form = await app.inject({ url: '/form' })
  const cookie = cookieOf(form) as string
  const { token } = form.json()
  t.same((await app.inject({ url: '/secret', headers: { cookie } })).json(), { keys: ['_csrf'], secret: 'string' }, 'stored under _csrf')
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie } })).statusCode, 403, 'no token, refused')
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'x-csrf-token': 'forged' } })).statusCode, 403)
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'x-csrf-token': token } })).json(), { done: true })
  t.equal(cookieOf(await app.inject({ url: '/form', headers: { cookie } })), undefined, 'a second token of the same secret writes nothing')
  const other = (await app.inject({ url: '/form' })).json().token
  t.equal((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'x-csrf-token': other } })).statusCode, 403, "another session's token is refused")

  const loggedIn = cookieOf(await app.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: 'alice' } })) as string
  const stale = await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: loggedIn, 'x-csrf-token': token } })
  t.equal(stale.json().code, 'FST_CSRF_MISSING_SECRET', 'the pre-login token dies at login')
  const fresh = await app.inject({ url: '/form', headers: { cookie: loggedIn } })
  const now = cookieOf(fresh) ?? loggedIn // the cookie store carries the new secret in a new cookie
  t.same((await app.inject({ method: 'POST', url: '/transfer', headers: { cookie: now, 'x-csrf-token': fresh.json().token } })).json(), { done: true })
}
onEachStore(t, "sessionPlugin: '@fastify/session': the secret kept as a property", sessionMode)
t.test("sessionPlugin: '@fastify/session': the secret kept as a property (cookie)", async (t) => {
  await sessionMode(t, { store: 'cookie', storeOptions: { revocation: 'memory' } })
})
