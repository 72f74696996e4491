import { Authenticator } from '@fastify/passport'
import Fastify, { type FastifyInstance } from 'fastify'
import { Strategy as LocalStrategy } from 'passport-local'
import t from 'tap'
import fastifyUserSessions, { passportSessions, type PassportSessionsOptions } from '../../lib/index.js'
import { cookieOf, SECRET } from '../helpers/app.js'
import { onEachStore, type StoreOptions } from '../helpers/stores.js'

// @fastify/passport 4 + passport-local, registered as passport's README registers
// @fastify/secure-session, with this plugin in its place and the one call `passportSessions`.

const USERS: Record<string, { id: string, name: string, password: string }> = {
  alice: { id: 'alice', name: 'Alice', password: 'wonderland' },
  bob: { id: 'bob', name: 'Bob', password: 'builder' }
}

interface Setup {
  authenticator?: ConstructorParameters<typeof Authenticator>[0]
  sessions?: PassportSessionsOptions
  serialize?: (user: { id: string }) => unknown
  maxSessionsPerUser?: number
  wire?: boolean
}

async function passportApp (store: StoreOptions, setup: Setup = {}): Promise<FastifyInstance> {
  const fastifyPassport = new Authenticator({ clearSessionIgnoreFields: ['returnTo'], ...setup.authenticator })
  if (setup.wire !== false) passportSessions(fastifyPassport, setup.sessions)
  const app = Fastify()
  await app.register(fastifyUserSessions, { secret: SECRET, ...store, maxSessionsPerUser: setup.maxSessionsPerUser })
  await app.register(fastifyPassport.initialize())
  await app.register(fastifyPassport.secureSession())
  fastifyPassport.use('local', new LocalStrategy((username, password, done) => {
    const user = USERS[username]
    done(null, user !== undefined && user.password === password ? user : false)
  }))
  fastifyPassport.registerUserSerializer(async (user: { id: string }) => setup.serialize?.(user) ?? user.id)
  fastifyPassport.registerUserDeserializer(async (stored: unknown) => {
    const id = typeof stored === 'object' && stored !== null ? (stored as { id: string }).id : stored as string
    return USERS[id] ?? null
  })
  app.post('/plant', async (request) => {
    request.session.set('planted', 'by an attacker')
    request.session.set('returnTo', '/account')
    return { ok: true }
  })
  app.post('/login', { preValidation: fastifyPassport.authenticate('local', { authInfo: false }) },
    async (request) => ({ user: (request.user as { id: string }).id }))
  app.post('/login-keep', { preValidation: fastifyPassport.authenticate('local', { authInfo: false, keepSessionInfo: true }) },
    async () => ({ ok: true }))
  app.get('/me', async (request) => ({
    authenticated: request.isAuthenticated(),
    user: (request.user as { id: string } | null)?.id ?? null,
    userId: request.session.userId ?? null,
    authenticatedAt: request.session.authenticatedAt ?? null,
    data: request.session.toJSON()
  }))
  app.post('/logout', async (request) => {
    await request.logout()
    return { userId: request.session.userId ?? null }
  })
  return app
}

const credentials = (username: string): { username: string, password: string } =>
  ({ username, password: (USERS[username] as { password: string }).password })

onEachStore(t, 'passport login renews the id, drops pre-login data but what passport keeps, binds the user', async (t, store) => {
  const app = await passportApp(store, { maxSessionsPerUser: 2 })
  t.teardown(() => app.close())
  const planted = cookieOf(await app.inject({ method: 'POST', url: '/plant' })) as string
  t.ok(planted)

  const denied = await app.inject({ method: 'POST', url: '/login', headers: { cookie: planted }, payload: { username: 'alice', password: 'nope' } })
  t.equal(denied.statusCode, 401)

  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: planted }, payload: credentials('alice') })
  t.equal(login.statusCode, 200)
  const cookie = cookieOf(login) as string
  t.ok(cookie)
  t.not(cookie, planted, 'login renews the session id')

  const me = (await app.inject({ url: '/me', headers: { cookie } })).json()
  t.match(me, { authenticated: true, user: 'alice', userId: 'alice' })
  t.type(me.authenticatedAt, 'number')
  t.same(me.data, { returnTo: '/account', passport: 'alice' }, 'only the keys passport keeps survive login')

  const old = (await app.inject({ url: '/me', headers: { cookie: planted } })).json()
  t.match(old, { authenticated: false, userId: null, data: {} }, 'the pre-login cookie stops authenticating')

  const sessions = await app.sessions.getAll('alice')
  t.equal(sessions.length, 1, 'listed by getAll')
  t.equal(sessions[0]?.data.passport, 'alice')

  // maxSessionsPerUser counts passport logins: a third evicts the least recently used.
  const second = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })) as string
  const third = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })) as string
  t.equal((await app.sessions.getAll('alice')).length, 2)
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().authenticated, false, 'evicted by maxSessionsPerUser')

  t.equal(await app.sessions.deleteAll('alice'), 2)
  for (const c of [second, third]) {
    t.match((await app.inject({ url: '/me', headers: { cookie: c } })).json(), { authenticated: false, userId: null }, 'ended by deleteAll')
  }
})

onEachStore(t, 'passport logout leaves no user: not listed, the logged-in cookie dead', async (t, store) => {
  const app = await passportApp(store)
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('bob') })) as string
  const bob = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('bob') })) as string
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.same(logout.json(), { userId: null })
  t.match(logout.cookies.find((c) => c.name === 'sid'), { value: '', maxAge: 0 }, 'the cookie is expired')
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { authenticated: false, userId: null, data: {} })
  const left = await app.sessions.getAll('bob')
  t.equal(left.length, 1, 'the logged-out session is not listed')
  t.equal((await app.inject({ url: '/me', headers: { cookie: bob } })).json().user, 'bob', 'the other device stays logged in')
})

t.test('keepSessionInfo and clearSessionOnLogin: false keep the pre-login data; the custom key is used', async (t) => {
  const store = { store: 'memory' } as const
  const app = await passportApp(store)
  t.teardown(() => app.close())
  const planted = cookieOf(await app.inject({ method: 'POST', url: '/plant' })) as string
  const kept = cookieOf(await app.inject({ method: 'POST', url: '/login-keep', headers: { cookie: planted }, payload: credentials('alice') })) as string
  t.same((await app.inject({ url: '/me', headers: { cookie: kept } })).json().data,
    { planted: 'by an attacker', returnTo: '/account', passport: 'alice' })

  const loose = await passportApp(store, { authenticator: { clearSessionOnLogin: false, key: 'auth' } })
  t.teardown(() => loose.close())
  const before = cookieOf(await loose.inject({ method: 'POST', url: '/plant' })) as string
  const after = cookieOf(await loose.inject({ method: 'POST', url: '/login', headers: { cookie: before }, payload: credentials('bob') })) as string
  t.not(after, before)
  t.match((await loose.inject({ url: '/me', headers: { cookie: after } })).json(),
    { userId: 'bob', user: 'bob', data: { planted: 'by an attacker', auth: 'bob' } })
  const out = await loose.inject({ method: 'POST', url: '/logout', headers: { cookie: after } })
  const anonymous = cookieOf(out) as string
  t.not(anonymous, after)
  t.match((await loose.inject({ url: '/me', headers: { cookie: anonymous } })).json(),
    { authenticated: false, userId: null, data: { planted: 'by an attacker', returnTo: '/account' } }, 'the other keys move to an anonymous session')
  t.notOk('auth' in (await loose.inject({ url: '/me', headers: { cookie: anonymous } })).json().data)
  t.equal((await loose.inject({ url: '/me', headers: { cookie: after } })).json().userId, null)
})

t.test('an object serialization maps to the user id with options.userId; without it, login is refused', async (t) => {
  const app = await passportApp({ store: 'memory' }, {
    serialize: (user) => ({ id: user.id, v: 1 }),
    sessions: { userId: (serialized) => (serialized as { id: string }).id }
  })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })) as string
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'alice', userId: 'alice', data: { passport: { id: 'alice', v: 1 } } })

  const refused = await passportApp({ store: 'memory' }, { serialize: (user) => ({ id: user.id }) })
  t.teardown(() => refused.close())
  const res = await refused.inject({ method: 'POST', url: '/login', payload: credentials('alice') })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_SESSION_USER_ID_INVALID')
  t.equal(cookieOf(res), undefined)
})

t.test('a session whose passport value is not its bound user does not authenticate', async (t) => {
  const app = await passportApp({ store: 'memory' })
  t.teardown(() => app.close())
  app.post('/tamper', async (request) => {
    request.session.set('passport', request.session.userId === undefined ? 'alice' : 'bob')
    return { ok: true }
  })
  app.post('/tamper-object', async (request) => {
    request.session.set('passport', { not: 'an id' })
    return { ok: true }
  })
  const anonymous = cookieOf(await app.inject({ method: 'POST', url: '/tamper' })) as string
  t.match((await app.inject({ url: '/me', headers: { cookie: anonymous } })).json(), { authenticated: false, user: null })
  const alice = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })) as string
  await app.inject({ method: 'POST', url: '/tamper', headers: { cookie: alice } })
  t.match((await app.inject({ url: '/me', headers: { cookie: alice } })).json(), { authenticated: false, user: null, userId: 'alice' })
  await app.inject({ method: 'POST', url: '/tamper-object', headers: { cookie: alice } })
  t.match((await app.inject({ url: '/me', headers: { cookie: alice } })).json(), { authenticated: false, user: null })
})

t.test('without passportSessions: regenerate(keys) still drops planted data at login, but no user is bound', async (t) => {
  const app = await passportApp({ store: 'memory' }, { wire: false })
  t.teardown(() => app.close())
  const planted = cookieOf(await app.inject({ method: 'POST', url: '/plant' })) as string
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', headers: { cookie: planted }, payload: credentials('alice') })) as string
  t.not(cookie, planted)
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(),
    { authenticated: true, userId: null, data: { returnTo: '/account', passport: 'alice' } })
  t.notOk('planted' in (await app.inject({ url: '/me', headers: { cookie } })).json().data)
  t.equal((await app.inject({ url: '/me', headers: { cookie: planted } })).json().authenticated, false)
})

t.test('passportSessions checks its arguments', async (t) => {
  t.throws(() => passportSessions({} as never), { code: 'FST_SESSION_OPTION_INVALID', message: /authenticator/ })
  t.throws(() => passportSessions(null as never), { code: 'FST_SESSION_OPTION_INVALID' })
  const authenticator = new Authenticator()
  t.throws(() => passportSessions(authenticator, null as never), { code: 'FST_SESSION_OPTION_INVALID', message: /options/ })
  t.throws(() => passportSessions(authenticator, { userId: 'id' as never }), { code: 'FST_SESSION_OPTION_INVALID', message: /userId/ })
  t.equal(passportSessions(authenticator), authenticator)
  const manager = authenticator.sessionManager
  t.equal(passportSessions(authenticator).sessionManager.key, manager.key, 'a second call wraps again, same settings')
})

t.test("docs/plugins.md's snippet: successRedirect at login, a redirect after logout", async (t) => {
  const fastifyPassport = passportSessions(new Authenticator())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyUserSessions, { secret: SECRET })
  await app.register(fastifyPassport.initialize())
  await app.register(fastifyPassport.secureSession())
  fastifyPassport.use('local', new LocalStrategy((username, password, done) => {
    const user = USERS[username]
    done(null, user?.password === password ? user : false)
  }))
  fastifyPassport.registerUserSerializer(async (user: { id: string }) => user.id)
  fastifyPassport.registerUserDeserializer(async (id: string) => USERS[id])
  app.post('/login', { preValidation: fastifyPassport.authenticate('local', { successRedirect: '/' }) }, () => {})
  app.post('/logout', async (request, reply) => { await request.logout(); return reply.redirect('/') })
  app.get('/', async (request) => ({ user: (request.user as { id: string } | null)?.id ?? null, userId: request.session.userId ?? null }))
  const login = await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })
  t.equal(login.statusCode, 302)
  t.equal(login.headers.location, '/')
  const cookie = cookieOf(login) as string
  t.same((await app.inject({ url: '/', headers: { cookie } })).json(), { user: 'alice', userId: 'alice' })
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(logout.statusCode, 302)
  t.same((await app.inject({ url: '/', headers: { cookie } })).json(), { user: null, userId: null })
})

t.test('a session logged in without passport, and a route without sessions, have no passport user', async (t) => {
  const app = await passportApp({ store: 'memory' })
  t.teardown(() => app.close())
  app.post('/direct', async (request) => {
    await request.session.login('alice')
    return { ok: true }
  })
  app.get('/health', { config: { session: false } }, async (request) => ({ authenticated: request.isAuthenticated() }))
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/direct' })) as string
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { authenticated: false, userId: 'alice' })
  const alice = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: credentials('alice') })) as string
  const health = await app.inject({ url: '/health', headers: { cookie: alice } })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { authenticated: false }, 'no session there, so no user, and no 500')
})
