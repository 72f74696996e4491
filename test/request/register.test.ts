import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify'
import t from 'tap'
import session, { MemoryStore, registerStore, type FastifyUserSessionsOptions } from '../../lib/index.js'
import { buildApp, cookieOf, SECRET } from '../helpers/app.js'

// Mistakes at register() that explain themselves (issue 23): the plugin registered twice or
// beside another session plugin, @fastify/cookie registered after it, and every problem of the
// options reported in one error, so that switching a store takes one restart, not one per problem.

interface Thrown { code: string, message: string, errors?: Array<{ code: string, message: string }> }

/** What `setup` makes `ready()` throw. */
async function refused (setup: (app: FastifyInstance) => Promise<unknown> | unknown): Promise<Thrown> {
  const app = Fastify()
  try {
    await setup(app)
    await app.ready()
  } catch (err) {
    return err as Thrown
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error('ready() did not fail')
}

t.test('registered twice: this plugin\'s typed error, naming the fix', async (t) => {
  const twice = await refused(async (app) => {
    await app.register(session)
    await app.register(session)
  })
  t.equal(twice.code, 'FST_SESSION_PLUGIN_REGISTERED_TWICE')
  t.match(twice.message, /fastify-user-sessions is registered twice.*register it once, at the root/)
  const below = await refused(async (app) => {
    await app.register(session)
    await app.register(async (child) => { await child.register(session, { cookieName: 'other' }) })
  })
  t.equal(below.code, 'FST_SESSION_PLUGIN_REGISTERED_TWICE', 'below a registration, its hooks would run twice on each request')

  // Side by side, in two encapsulated contexts, each has its own: nothing is shared.
  const app = Fastify()
  t.teardown(() => app.close())
  for (const [prefix, cookieName] of [['/a', 'a'], ['/b', 'b']]) {
    await app.register(async (child) => {
      await child.register(session, { cookieName })
      child.post('/counter', async (req) => {
        const n = ((req.session.get('n') as number | undefined) ?? 0) + 1
        req.session.set('n', n)
        return { n }
      })
    }, { prefix })
  }
  const a = await app.inject({ method: 'POST', url: '/a/counter' })
  t.ok(cookieOf(a, 'a'))
  t.same((await app.inject({ method: 'POST', url: '/b/counter', headers: { cookie: cookieOf(a, 'a') } })).json(), { n: 1 })
})

t.test('beside another session plugin: this plugin\'s typed error, naming it', async (t) => {
  // Loaded by a name the type checker does not follow: its types declare request.session too.
  const name = '@fastify/session'
  const { default: fastifySession } = await import(name) as { default: FastifyPluginCallback<{ secret: string }> }
  const err = await refused(async (app) => {
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: SECRET })
    await app.register(session)
  })
  t.equal(err.code, 'FST_SESSION_PLUGIN_CONFLICT')
  t.match(err.message, /request.session is taken already, by another session plugin \(@fastify\/session or @fastify\/secure-session\?\); register one of them only/)
})

t.test('@fastify/cookie: registered before, its options are the app\'s; registered after, Fastify\'s own error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie, { secret: 'the-app-s-own-cookie-signing-secret' })
  await app.register(session)
  app.post('/', async (req, reply) => {
    req.session.set('a', 1)
    return await reply.setCookie('pref', 'dark', { signed: true }).send('ok')
  })
  const res = await app.inject({ method: 'POST', url: '/' })
  t.ok(cookieOf(res), 'the session cookie')
  t.equal(app.unsignCookie(res.cookies.find((c) => c.name === 'pref')?.value as string).value, 'dark', 'signed with the app\'s secret')

  // Fastify tells a plugin of no later registration, and @fastify/cookie decorates whatever is
  // there: the mistake fails at start-up, in @fastify/cookie's words (documented, with the fix).
  const after = await refused(async (app) => {
    await app.register(session)
    await app.register(fastifyCookie, { secret: 'too late' })
  })
  t.equal(after.code, 'FST_ERR_DEC_ALREADY_PRESENT')
  t.match(after.message, /serializeCookie/)
})

t.test('switching to the cookie store: every problem in one error', async (t) => {
  const switched = await refused((app) => app.register(session, { store: 'cookie', bearer: true }))
  t.equal(switched.code, 'FST_SESSION_CONFIG_INVALID')
  t.match(switched.message, /^The options of fastify-user-sessions have 3 problems:\n- /)
  t.same(switched.errors?.map((e) => e.code), ['FST_SESSION_SECRET_INVALID', 'FST_SESSION_OPTION_INVALID', 'FST_SESSION_OPTION_INVALID'])
  t.match(switched.errors?.map((e) => e.message), [
    /"secret": is required by the cookie store/,
    /"bearer": needs a server-side store/,
    /"storeOptions.revocation": is required by the cookie store .*'memory' for one process .*\{ type: 'redis', client \} for every instance/
  ])
  for (const e of switched.errors ?? []) t.ok(switched.message.includes(`- ${e.message}`), 'each in the message, one per line')

  const short = await refused((app) => app.register(session, { secret: 'short', store: 'cookie' }))
  t.same(short.errors?.map((e) => e.message), [
    'Invalid option "secret": must be at least 32 bytes long, got 5',
    short.errors?.[1]?.message
  ], 'a secret refused is not also reported missing')
  t.match(short.errors?.[1]?.message, /"storeOptions.revocation"/)

  // Fixed, all at once: it starts, and "log out everywhere" ends every cookie of the user.
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  t.teardown(() => app.close())
  const phone = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'ann' } }))
  const laptop = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'ann' } }))
  t.equal((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: laptop } })).statusCode, 200)
  for (const cookie of [phone, laptop]) t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
})

t.test('every problem of the options in one error; one problem keeps its own', async (t) => {
  const options = { ttl: 86_400_000, rolling: 'yes', cookie: { sameSite: 'sometimes', maxAge: 60 }, sotre: 'redis' }
  const many = await refused((app) => app.register(session, options as unknown as FastifyUserSessionsOptions))
  t.equal(many.code, 'FST_SESSION_CONFIG_INVALID')
  t.same(many.errors?.map((e) => /"([^"]+)"/.exec(e.message)?.[1]).sort(), ['cookie.maxAge', 'cookie.sameSite', 'rolling', 'sotre', 'ttl'])
  const one = await refused((app) => app.register(session, { ttl: 0 }))
  t.equal(one.code, 'FST_SESSION_OPTION_INVALID')
  t.equal(one.message, 'Invalid option "ttl": must be a positive integer')
  const absolute = await refused((app) => app.register(session, { ttl: 50_000_000, absoluteTtl: 60 }))
  t.equal(absolute.code, 'FST_SESSION_OPTION_INVALID', 'a ttl refused is not also compared with absoluteTtl')
  t.match(absolute.message, /"ttl"/)
})

t.test('a store built from its name is closed when register() fails; a store object is left to the app', async (t) => {
  const closed: string[] = []
  registerStore('closing-probe', (_options, context) => {
    const store = new MemoryStore({}, context)
    return Object.assign(store, { close: async () => { closed.push('probe'); await MemoryStore.prototype.close.call(store) } })
  })
  const named = await refused((app) => app.register(session, { store: 'closing-probe' as never, ttl: -1 }))
  t.equal(named.code, 'FST_SESSION_OPTION_INVALID')
  t.same(closed, ['probe'])
  const object = new MemoryStore({}, { clock: Date.now, log: Fastify().log, maxSessionsPerUser: 5 })
  t.teardown(() => object.close())
  object.close = async () => { closed.push('object') }
  await refused((app) => app.register(session, { store: object, ttl: -1 }))
  t.same(closed, ['probe'], 'the app\'s store object is not closed')
  const unknown = await refused((app) => app.register(session, { store: 'nope' as never, ttl: -1 }))
  t.equal(unknown.code, 'FST_SESSION_CONFIG_INVALID')
  t.same(unknown.errors?.map((e) => e.code), ['FST_SESSION_OPTION_INVALID', 'FST_SESSION_STORE_UNKNOWN'])
})
