// Type tests of the public surface, checked by `npm run test:types` (tsc). A line marked
// Lines marked with an expect-error directive fail the check if they stop being errors.
import Fastify from 'fastify'
import session, {
  fastifyUserSessions, registerStore, MemoryStore, errors, sessionErrorHandler, isStoreUnavailable, type RedisStoreOptions,
  type SessionRecord, type SessionStore, type StoredSession, type SessionPatch, type StoreContext
} from 'fastify-user-sessions'

declare module 'fastify-user-sessions' {
  interface SessionData {
    name: string
    cart: string[]
    visits: number
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
  clock: () => Date.now()
})
// @ts-expect-error the secret is required
await app.register(session, {})
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
  expectType<string>(req.session.id)
  expectType<string | undefined>(req.session.userId)
  expectType<number | undefined>(req.session.expiresAt)
  expectType<boolean>(req.session.isFresh(300))
  await req.session.login('alice', { keepData: ['cart'] })
  await req.session.login(42)
  await req.session.regenerate()
  await req.session.destroy()
  req.session.touch().clear().delete('cart')
  // @ts-expect-error the session is read-only on the request
  req.session = null
  const devices: SessionRecord[] = await app.sessions.getAll(req.session.userId)
  expectType<string | undefined>(devices[0]?.data.name)
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
await app.register(session, { secret: 'x'.repeat(32), store: new MyStore() })
await app.register(session, { secret: 'x'.repeat(32), store: new MemoryStore({ maxSessions: 10 }, { clock: Date.now, log: app.log, maxSessionsPerUser: 5 }) })
// @ts-expect-error a store must implement the contract
await app.register(session, { secret: 'x'.repeat(32), store: { get: async () => undefined } })

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
