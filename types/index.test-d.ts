// Type tests of the public surface, checked by `npm run test:types` (tsc). Lines marked with
// an expect-error directive fail the check if they stop being errors.
import { Authenticator } from '@fastify/passport'
import Fastify from 'fastify'
import session, {
  fastifyUserSessions, registerStore, MemoryStore, errors, passportSessions, sessionErrorHandler, isStoreUnavailable,
  type PassportSessionsOptions, type RedisStoreOptions, type SessionCookieOverrides, type SessionRecord, type SessionStore,
  type StoredSession, type SessionPatch, type StoreContext, type SessionTransport, type RevokedReason, type SessionEvent,
  type DbscOptions, type DbscAlgorithm
} from 'fastify-user-sessions'

declare module 'fastify-user-sessions' {
  interface SessionData {
    name: string
    cart: string[]
    visits: number
    // What set() refuses at run time is never in the types: setting either fails to compile.
    when: Date
    profile: { nick: string, seen: Date, tags?: string[] }
  }
  // A store registered by the app joins the map of store names to their options.
  interface StoreOptionsMap {
    mine: { url: string }
  }
}

function expectType<T> (value: T): T { return value }

const app = Fastify()
await app.register(session, { secret: 'x'.repeat(32), store: 'memory', storeOptions: { table: 't' } })
await app.register(fastifyUserSessions, {
  secret: ['a'.repeat(32), Buffer.alloc(32)],
  store: 'redis',
  cookieName: '__Host-sid',
  cookie: { path: '/', httpOnly: true, secure: 'auto', sameSite: 'lax' },
  ttl: 3600,
  absoluteTtl: 86400,
  rolling: true,
  refreshFraction: 0.2,
  maxSessionsPerUser: 10,
  trackClient: false,
  bearer: true,
  clock: () => Date.now()
})
// @ts-expect-error bearer is a boolean
await app.register(session, { bearer: 'yes' })
await app.register(session, { dbsc: true })
const dbsc: DbscOptions = { cookieTtl: 300, registrationPath: '/bind', refreshPath: '/bind/refresh', algorithms: ['ES256'] }
await app.register(session, { store: 'redis', dbsc })
// @ts-expect-error DBSC algorithms are ES256 and RS256
await app.register(session, { dbsc: { algorithms: ['none'] } })
// @ts-expect-error cookieTtl is a number of seconds
await app.register(session, { dbsc: { cookieTtl: '10m' } })
// The secret is for the cookie store; server-side stores need none.
await app.register(session, {})
await app.register(session, { store: 'postgres', storeOptions: { table: 'sessions', timeout: 500 } })
await app.register(session, { secret: 'x'.repeat(32), store: 'cookie', storeOptions: { revocation: 'memory', crypto: 'node:crypto' } })
// @ts-expect-error storeOptions are checked against the store named: the Redis store has no 'clinet'
await app.register(session, { store: 'redis', storeOptions: { clinet: null } })
// @ts-expect-error the memory store's maxSessions is a number
await app.register(session, { store: 'ets', storeOptions: { maxSessions: '10' } })
// @ts-expect-error without a store name, the options are the memory store's
await app.register(session, { storeOptions: { revocation: 'memory' } })
// A name the types do not know compiles, as a name held in a string does: register() refuses
// an unregistered one, listing the known stores (FST_SESSION_STORE_UNKNOWN).
await app.register(session, { store: 'nope' })
// @ts-expect-error a store object takes no storeOptions
await app.register(session, { store: new MemoryStore({}, { clock: Date.now, log: app.log, maxSessionsPerUser: 5 }), storeOptions: {} })
// @ts-expect-error sameSite takes lax, strict or none
await app.register(session, { secret: 'x'.repeat(32), cookie: { sameSite: 'sometimes' } })

app.get('/', async (req) => {
  expectType<string | undefined>(req.session.get('name'))
  expectType<string[] | undefined>(req.session.get('cart'))
  expectType<number | undefined>(req.session.get('visits'))
  req.session.set('name', 'alice').set('visits', 2)
  // @ts-expect-error name is a string
  req.session.set('name', 42)
  // @ts-expect-error unknown key once SessionData is augmented
  req.session.get('nope')
  // The data as properties, typed by SessionData.
  expectType<string | undefined>(req.session.name)
  req.session.visits = 3
  req.session.cart?.push('apple')
  delete req.session.cart
  expectType<boolean>('cart' in req.session)
  // @ts-expect-error visits is a number
  req.session.visits = 'three'
  // @ts-expect-error a member is not data
  req.session.id = 'x'
  // @ts-expect-error unknown key once SessionData is augmented
  req.session.nope = 1
  // @ts-expect-error a Date does not come back as one: store date.getTime() or date.toISOString()
  req.session.set('when', new Date())
  // @ts-expect-error the same at any depth
  req.session.set('profile', { nick: 'al', seen: new Date() })
  // @ts-expect-error and as a property
  req.session.when = new Date()
  expectType<string>(req.session.sessionId)
  expectType<Date | null>(req.session.cookie.expires)
  req.session.save((err) => { expectType<Error | null | undefined>(err) })
  req.session.regenerate(['cart'], () => {})
  req.session.destroy(() => {})
  await req.session.reload()
  expectType<string>(req.session.id)
  expectType<string | undefined>(req.session.userId)
  expectType<number | undefined>(req.session.expiresAt)
  expectType<boolean>(req.session.isFresh(300))
  await req.session.login('alice', { keepData: ['cart'] })
  await req.session.login(42)
  await req.session.login('alice', { persistent: false, ttl: 3600, absoluteTtl: 86_400, transport: 'bearer', keepData: true })
  // @ts-expect-error ttl is a number of seconds
  await req.session.login('alice', { ttl: '1h' })
  // @ts-expect-error persistent is a boolean
  await req.session.login('alice', { persistent: 'yes' })
  // @ts-expect-error transport is 'cookie' or 'bearer'
  await req.session.login('alice', { transport: 'header' })
  // @ts-expect-error login takes no unknown option
  await req.session.login('alice', { remember: true })
  const transport: SessionTransport = 'cookie'
  await req.session.login('alice', { transport })
  expectType<string | undefined>(req.session.token)
  // @ts-expect-error the token is read-only
  req.session.token = 'x'
  expectType<SessionRecord | undefined>(await app.sessions.authenticate('value'))
  const stop: () => void = req.session.onRevoked((reason) => {
    expectType<RevokedReason>(reason)
  })
  stop()
  // @ts-expect-error onRevoked takes a callback
  req.session.onRevoked('close')
  app.sessions.on('revoked', (e) => {
    expectType<string>(e.id)
    expectType<string | undefined>(e.userId)
    expectType<number>(e.at)
    expectType<RevokedReason>(e.reason)
  }).on('login', (e) => {
    expectType<string | undefined>(e.previousId)
  }).off('created', (e: SessionEvent) => { expectType<string>(e.id) }).on('bound', (e) => {
    expectType<string | undefined>(e.userAgent)
  })
  // @ts-expect-error no such event
  app.sessions.on('expired', () => {})
  // @ts-expect-error a login event has no reason
  app.sessions.on('login', (e) => e.reason)
  // @ts-expect-error authenticate takes the credential as a string
  await app.sessions.authenticate({ cookie: 'value' })
  await req.session.regenerate()
  await req.session.regenerate(['cart', 'passport'])
  // @ts-expect-error regenerate takes a list of keys
  await req.session.regenerate('cart')
  req.session.options({ sameSite: 'strict', secure: true, httpOnly: true, priority: 'high', userInfo: 'alice' }).options(undefined)
  const overrides: SessionCookieOverrides = { sameSite: true }
  req.session.options(overrides)
  // @ts-expect-error the cookie lifetime follows the session deadline
  req.session.options({ maxAge: 60 })
  await req.session.destroy()
  req.session.touch().clear().delete('cart')
  // @ts-expect-error the session is read-only on the request
  req.session = null
  const devices: SessionRecord[] = await app.sessions.getAll(req.session.userId)
  expectType<string | undefined>(devices[0]?.data.name)
  expectType<'cookie' | 'bearer' | undefined>(devices[0]?.transport)
  expectType<boolean | undefined>(devices[0]?.persistent)
  expectType<number | undefined>(devices[0]?.ttl)
  expectType<boolean | undefined>(devices[0]?.deviceBound)
  const algorithm: DbscAlgorithm = 'RS256'
  expectType<string>(algorithm)
  expectType<number>(await app.sessions.deleteAll('alice', { except: req.session.id }))
  expectType<boolean>(await app.sessions.delete('id', 'alice'))
  expectType<SessionRecord | undefined>(await app.sessions.get('id'))
  expectType<SessionRecord>(await app.sessions.upsert({ id: 'id', data: { name: 'x' } }, 60))
  return 'ok'
})

class MyStore implements SessionStore {
  async get (_id: string): Promise<StoredSession | undefined> { return undefined }
  async insert (_session: StoredSession): Promise<boolean> { return true }
  async patch (_id: string, _patch: SessionPatch): Promise<boolean> { return true }
  async delete (_id: string): Promise<boolean> { return true }
  async getAll (_userId: string): Promise<StoredSession[]> { return [] }
  async deleteAll (_userId: string, _except: readonly string[]): Promise<number> { return 0 }
}
registerStore('mine', (_options: { url: string }, _context: StoreContext) => new MyStore())
await app.register(session, { store: 'mine', storeOptions: { url: 'mine://' } })
// @ts-expect-error the options of 'mine' are what StoreOptionsMap says
await app.register(session, { store: 'mine', storeOptions: { path: '/' } })
await app.register(session, { secret: 'x'.repeat(32), store: new MyStore() })
await app.register(session, { secret: 'x'.repeat(32), store: new MemoryStore({ maxSessions: 10 }, { clock: Date.now, log: app.log, maxSessionsPerUser: 5 }) })
// @ts-expect-error a store must implement the contract
await app.register(session, { secret: 'x'.repeat(32), store: { get: async () => undefined } })

const passportOptions: PassportSessionsOptions = { userId: (serialized) => (serialized as { id: number }).id }
expectType<InstanceType<typeof Authenticator>>(passportSessions(new Authenticator(), passportOptions))
expectType<InstanceType<typeof Authenticator>>(passportSessions(new Authenticator()))
// @ts-expect-error an @fastify/passport Authenticator
passportSessions({})
// @ts-expect-error userId maps to a string or a number
passportSessions(new Authenticator(), { userId: () => ({}) })
const replicated: RedisStoreOptions = { url: 'redis://127.0.0.1:6379', waitForReplicas: 1 }
expectType<number | undefined>(replicated.waitForReplicas)
app.setErrorHandler(sessionErrorHandler())
app.setErrorHandler(sessionErrorHandler(async function (error, _request, reply) {
  expectType<string>(error.code)
  return await reply.code(500).send({ failed: isStoreUnavailable(error) })
}, { interval: 5000 }))
expectType<number>(new errors.FST_SESSION_STORE_NOT_REPLICATED(0, 1, 1800).statusCode as number)

const err = new errors.FST_SESSION_STORE_UNAVAILABLE('down')
expectType<string>(err.code)
expectType<number | undefined>(err.statusCode)
expectType<string>(err.message)
