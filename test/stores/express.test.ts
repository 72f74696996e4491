import { randomBytes } from 'node:crypto'
import ConnectPgSimple from 'connect-pg-simple'
import RedisStore from 'connect-redis'
import session from 'express-session'
import { Redis } from 'ioredis'
import pg from 'pg'
import t, { type Test } from 'tap'
import { runConformance } from '../../lib/conformance/index.js'
import { ExpressStoreAdapter, expressStore, fromExpressStore, type ExpressStoreLike } from '../../lib/stores/express.js'
import { buildApp, cookieOf, testClock } from '../helpers/app.js'
import { newIdFor } from '../helpers/ids.js'
import { PG_URL } from '../helpers/postgres.js'
import { redisServer } from '../helpers/redis.js'

// connect-style stores behind the plugin: express-session's MemoryStore in process, the real
// connect-redis on a real Redis, the real connect-pg-simple on the real PostgreSQL.

async function devicesFlow (t: Test, options: Parameters<typeof buildApp>[0]): Promise<void> {
  const app = await buildApp(options)
  t.teardown(() => app.close())
  const login = async (ua: string): Promise<string> => cookieOf(await app.inject({
    method: 'POST', url: '/login', payload: { user: `u-${ua}-${randomBytes(3).toString('hex')}` }, headers: { 'user-agent': ua }
  })) as string
  const a = await login('a')
  t.equal((await app.inject({ method: 'POST', url: '/counter', headers: { cookie: a } })).json().counter, 1)
  t.equal((await app.inject({ method: 'POST', url: '/counter', headers: { cookie: a } })).json().counter, 2)
  const me = (await app.inject({ url: '/me', headers: { cookie: a } })).json()
  t.match(me.userId, /^u-a-/)
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie: a } })
  t.equal((await app.inject({ url: '/me', headers: { cookie: a } })).json().userId, null)
}

t.test("express-session's MemoryStore: the whole contract, per-user operations through all()", async (t) => {
  const clock = testClock()
  const store = new session.MemoryStore()
  await devicesFlow(t, { store: 'express', storeOptions: { store }, clock: clock.now })
  const app = await buildApp({ store: fromExpressStore(store) })
  t.teardown(() => app.close())
  const one = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
  const two = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
  t.equal((await app.sessions.getAll('alice')).length, 2)
  t.same((await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: one } })).json(), { deleted: 1 })
  t.equal((await app.inject({ url: '/me', headers: { cookie: two } })).json().userId, null)
  t.equal((await app.inject({ url: '/me', headers: { cookie: one } })).json().userId, 'alice')
})

t.test('conformance on the adapter over express-session\'s MemoryStore', async (t) => {
  runConformance((title, fn) => t.test(title, fn), {
    createStore: (context) => expressStore({ store: new session.MemoryStore() }, context),
    manySessions: 500
  })
})

t.test('connect-redis on a real Redis', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const prefix = `fus-express-${randomBytes(3).toString('hex')}:`
  const store = new RedisStore({ client, prefix })
  await devicesFlow(t, { store: fromExpressStore(store) })
  const app = await buildApp({ store: 'express', storeOptions: { store } })
  t.teardown(() => app.close())
  const cookies = []
  for (let i = 0; i < 3; i++) cookies.push(cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })))
  t.equal((await app.sessions.getAll('bob')).length, 3)
  // Every session's key; the adapter's owner key (kept under a session id of its own) never expires with them.
  const ownerKey = `${prefix}fastify-user-sessions-owner-key`
  const ttls = await Promise.all((await client.keys(`${prefix}*`)).filter((key) => key !== ownerKey).map(async (key) => await client.pttl(key)))
  t.ok(ttls.length >= 3 && ttls.every((ttl) => ttl > 86_000_000 && ttl <= 86_400_000), `connect-redis takes its TTL from the session deadline: ${ttls.join(', ')}`)
  t.ok(await client.pttl(ownerKey) > 365 * 86_400_000, 'the owner key outlives every session')
  t.same((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: cookies[0] } })).json(), { deleted: 3 })
  t.same(await app.sessions.getAll('bob'), [])
  runConformance((title, fn) => t.test(`conformance: ${title}`, fn), {
    createStore: (context, name) => expressStore({ store: new RedisStore({ client, prefix: `${prefix}${name}:` }) }, context),
    manySessions: 300
  })
})

t.test('connect-pg-simple on the real PostgreSQL: sessions work, per-user operations are unsupported (no all())', async (t) => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4, connectionTimeoutMillis: 3000 })
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    await pool.end()
    if (process.env.CI === 'true') t.fail(`PostgreSQL unreachable: ${(err as Error).message}`)
    else console.error(`\n!!! PostgreSQL unreachable (${(err as Error).message}): SKIPPING the connect-pg-simple tests.\n`)
    return
  }
  const table = `fus_connect_pg_${randomBytes(4).toString('hex')}`
  t.teardown(async () => { await pool.query(`DROP TABLE IF EXISTS "${table}"`); await pool.end() })
  const PgStore = ConnectPgSimple(session)
  const store = new PgStore({ pool, tableName: table, createTableIfMissing: true, pruneSessionInterval: false })
  await devicesFlow(t, { store: fromExpressStore(store) })
  const app = await buildApp({ store: fromExpressStore(store) })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } }))
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'carol')
  await t.rejects(app.sessions.getAll('carol'), { code: 'FST_SESSION_STORE_UNSUPPORTED', statusCode: 501, message: /no all\(\)/ })
  const res = await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie } })
  t.equal(res.statusCode, 501)
  t.equal(res.json().code, 'FST_SESSION_STORE_UNSUPPORTED')
})

t.test('a connect store that hangs or throws gives the typed 503, bounded by the timeout', async (t) => {
  const inner = new session.MemoryStore()
  let mode: 'ok' | 'hang' | 'throw' | 'error' = 'ok'
  const store: ExpressStoreLike = {
    get: (sid, cb) => {
      if (mode === 'hang') return
      if (mode === 'throw') throw new Error('sync failure')
      if (mode === 'error') { cb(new Error('connection lost')); return }
      inner.get(sid, cb as never)
    },
    set: (sid, sess, cb) => inner.set(sid, sess as never, cb),
    destroy: (sid, cb) => inner.destroy(sid, cb)
  }
  const app = await buildApp({ store: 'express', storeOptions: { store, timeout: 50 } })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } }))
  for (const m of ['hang', 'throw', 'error'] as const) {
    mode = m
    const started = Date.now()
    const res = await app.inject({ url: '/me', headers: { cookie } })
    t.equal(res.statusCode, 503, m)
    t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE', m)
    t.ok(Date.now() - started < 2000, `${m}: bounded`)
  }
  mode = 'ok'
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'dan', 'back when the store is')
})

t.test('stored sessions of foreign shape, or without an id, are ignored; listing of an empty store', async (t) => {
  const clock = testClock()
  const fus = { h: 'h', u: 'u', c: 1, l: 1, e: clock.now() + 60_000, a: null, i: null, g: null }
  const listed: unknown[] = []
  let ownerKey: unknown
  const adapter = new ExpressStoreAdapter({
    store: {
      get: (sid, cb) => cb(null, sid === 'fastify-user-sessions-owner-key' ? ownerKey : { cookie: {}, foreign: true }),
      set: (sid, s, cb) => { if (sid === 'fastify-user-sessions-owner-key') ownerKey = s; cb?.() },
      destroy: (_sid, cb) => cb?.(),
      all: (cb) => cb(null, listed)
    }
  }, { clock: clock.now, maxSessionsPerUser: 100 })
  const id = await newIdFor(adapter, 'u')
  listed.push({ id: 'x', cookie: {} }, { cookie: {}, fus }, null,
    { id, fus: { ...fus, d: [] } }, { id, fus: { ...fus, d: null } }, { id, fus: { ...fus, d: 'x' } }, { id, fus: { ...fus, a: 'x' } },
    { id, fus: { ...fus, u: 'v' } }, { id, fus: { ...fus, u: null } }, { id, fus: { ...fus, c: -1 } }, { id, fus: { ...fus, d: {}, o: 5 } },
    { id: 'dQ.' + 'A'.repeat(22), fus: { ...fus, d: {} } }, ownerKey)
  t.equal(await adapter.get('A'.repeat(22)), undefined)
  t.same(await adapter.getAll('u'), [], 'none of the listed objects is a session of ours')
  listed.push({ id, fus: { ...fus, d: { ok: true }, a: 5 } }, { id, fus: { ...fus, d: {}, o: 's.t60' } })
  t.match(await adapter.getAll('u'), [{ id, userId: 'u', data: { ok: true }, authenticatedAt: 5, policy: undefined },
    { id, policy: 's.t60' }], 'the well-formed ones are, with their settings')
  const nothing = fromExpressStore({ get: (_s, cb) => cb(null, null), set: (_s, _v, cb) => cb?.(), destroy: (_s, cb) => cb?.(), all: (cb) => cb(null, undefined) })
  await t.rejects(nothing.getAll('u'), /the connect store does not keep the owner key/, 'a store that keeps nothing cannot keep the owner key')
  const kept = new Map<string, unknown>()
  const empty = fromExpressStore({ get: (s, cb) => cb(null, kept.get(s)), set: (s, v, cb) => { kept.set(s, v); cb?.() }, destroy: (_s, cb) => cb?.(), all: (cb) => cb(null, undefined) })
  t.same(await empty.getAll('u'), [])
  t.equal(await empty.deleteAll('u', []), 0)
})

t.test('adapter options are validated', async (t) => {
  const ok = new session.MemoryStore()
  t.throws(() => fromExpressStore(null as never), { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions.store"/ })
  t.throws(() => fromExpressStore({ get () {} } as never), { code: 'FST_SESSION_OPTION_INVALID', message: /get, set and destroy/ })
  t.throws(() => fromExpressStore(ok, { timeout: 0 }), { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions.timeout"/ })
  t.throws(() => expressStore(null as never, { clock: Date.now } as never), { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions"/ })
})
