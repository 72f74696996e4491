import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { MemoryStore, type FastifyUserSessionsOptions } from '../../lib/index.js'
import { buildApp, cookieOf, delegate } from '../helpers/app.js'
import { testDatabase } from '../helpers/postgres.js'
import { redisCluster, redisServer } from '../helpers/redis.js'

// Revocation reaching live connections (issue 14), with two app instances on one store: a
// session followed on B (`request.session.onRevoked`, as a WebSocket or SSE handler would)
// ends when A deletes it, logs it out everywhere, destroys or replaces it, when the per-user cap
// evicts it, or at its deadline; on every kind of store, within a second on loopback.

interface Ended { id: string, reason: string, at: number }

interface Instance {
  app: FastifyInstance
  /** What onRevoked callbacks heard, in order. */
  ended: Ended[]
  /** Ids the 'revoked' event listener heard. */
  heard: Array<{ id: string, reason: string }>
  /** Unsubscribe functions of the sessions followed, by id. */
  stops: Map<string, () => void>
}

async function instance (t: Test, options: Partial<FastifyUserSessionsOptions>): Promise<Instance> {
  const ended: Ended[] = []
  const heard: Array<{ id: string, reason: string }> = []
  const stops = new Map<string, () => void>()
  const app = await buildApp(options, false, (app) => {
    app.post('/watch', async (req) => {
      const id = req.session.id
      stops.set(id, req.session.onRevoked((reason) => { ended.push({ id, reason, at: Date.now() }) }))
      return { id }
    })
  })
  t.teardown(() => app.close())
  return { app, ended, heard, stops }
}

async function login (i: Instance, user: string): Promise<{ id: string, cookie: string }> {
  const res = await i.app.inject({ method: 'POST', url: '/login', payload: { user } })
  return { id: res.json().id, cookie: cookieOf(res) as string }
}

async function watch (i: Instance, cookie: string): Promise<string> {
  const res = await i.app.inject({ method: 'POST', url: '/watch', headers: { cookie } })
  return res.json().id
}

async function until<T> (what: string, check: () => T | undefined, ms = 1000): Promise<T> {
  const started = Date.now()
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await delay(5)
  }
}

interface Kind {
  /** Sessions of the cookie store are not listed: deleteAll names the user, and B checks what it follows. */
  sealed: boolean
  options: () => Promise<Partial<FastifyUserSessionsOptions> | undefined>
}

/**
 * B follows a session of `user`; A deletes it and B hears it through the bus: from then on B's
 * subscription is live (a message published before B's subscribe finished is caught by the
 * checks instead, as 'unknown').
 */
async function ready (a: Instance, b: Instance, user: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const probe = await login(b, user)
    await watch(b, probe.cookie)
    await a.app.sessions.delete(probe.id)
    // Heard through the bus ('delete'), not found gone by a check ('unknown'): the subscription is live.
    const ended = await until('the probe revocation reaches B', () => b.ended.find((e) => e.id === probe.id), 5000)
    if (ended.reason === 'delete') return
  }
  throw new Error('B never heard a probe through the bus')
}

function onEveryBus (title: string, fn: (t: Test, kind: Kind) => Promise<void>, { sealed = true } = {}): void {
  t.test(`${title} (memory, one table)`, async (t) => {
    const table = 'live-' + randomBytes(4).toString('hex')
    await fn(t, { sealed: false, options: async () => ({ store: 'memory', storeOptions: { table } }) })
  })
  t.test(`${title} (redis)`, async (t) => {
    const server = await redisServer(t)
    if (server === undefined) return
    const prefix = `live-${randomBytes(4).toString('hex')}:`
    await fn(t, { sealed: false, options: async () => ({ store: 'redis', storeOptions: { url: server.url, prefix } }) })
  })
  t.test(`${title} (redis cluster)`, async (t) => {
    const cluster = await redisCluster(t)
    if (cluster === undefined) return
    const prefix = `live-${randomBytes(4).toString('hex')}:`
    await fn(t, {
      sealed: false,
      options: async () => {
        const client = cluster.client()
        t.teardown(() => client.disconnect())
        return { store: 'redis', storeOptions: { client, prefix } }
      }
    })
  })
  t.test(`${title} (postgres)`, async (t) => {
    const db = await testDatabase(t)
    if (db.skip !== false) return
    await fn(t, { sealed: false, options: async () => ({ store: 'postgres', storeOptions: db.options() }) })
  })
  if (sealed) {
    t.test(`${title} (cookie with Redis revocation)`, async (t) => {
      const server = await redisServer(t)
      if (server === undefined) return
      const prefix = `live-${randomBytes(4).toString('hex')}:`
      await fn(t, { sealed: true, options: async () => ({ store: 'cookie', storeOptions: { revocation: { type: 'redis', url: server.url, prefix } } }) })
    })
  }
}

onEveryBus('a session followed on B ends when A deletes it, logs out everywhere, destroys or replaces it', async (t, kind) => {
  const a = await instance(t, { ...await kind.options() })
  const b = await instance(t, { ...await kind.options() })
  await ready(a, b, 'alice')

  const one = await login(b, 'alice')
  t.equal(await watch(b, one.cookie), one.id)
  let started = Date.now()
  t.equal(await a.app.sessions.delete(one.id, 'alice'), true)
  const deleted = await until('delete reaches B', () => b.ended.find((e) => e.id === one.id))
  t.equal(deleted.reason, 'delete')
  t.ok(deleted.at - started < 1000, `delete: ${deleted.at - started} ms`)

  const two = await login(b, 'alice')
  const three = await login(b, 'alice')
  await watch(b, two.cookie)
  await watch(b, three.cookie)
  const kept = await login(b, 'alice')
  await watch(b, kept.cookie)
  started = Date.now()
  await a.app.sessions.deleteAll('alice', { except: kept.id })
  const all = await until('deleteAll reaches B', () => {
    const found = b.ended.filter((e) => e.id === two.id || e.id === three.id)
    return found.length === 2 ? found : undefined
  })
  t.same(all.map((e) => e.reason), ['deleteAll', 'deleteAll'])
  t.ok(Math.max(...all.map((e) => e.at)) - started < 1000, `deleteAll: ${Math.max(...all.map((e) => e.at)) - started} ms`)
  await delay(100)
  t.notOk(b.ended.some((e) => e.id === kept.id), 'the session kept by except is still followed, not ended')

  started = Date.now()
  const logout = await a.app.inject({ method: 'POST', url: '/logout', headers: { cookie: kept.cookie } })
  t.equal(logout.statusCode, 200)
  const destroyed = await until('destroy() on A reaches B', () => b.ended.find((e) => e.id === kept.id))
  t.equal(destroyed.reason, 'destroy')

  const four = await login(b, 'alice')
  await watch(b, four.cookie)
  await a.app.inject({ method: 'POST', url: '/login', headers: { cookie: four.cookie }, payload: { user: 'alice' } })
  t.equal((await until('a login on A replacing it reaches B', () => b.ended.find((e) => e.id === four.id))).reason, 'replaced')
  t.equal(b.ended.filter((e) => e.id === four.id).length, 1, 'each callback runs once')
})

onEveryBus('a session followed on B ends at its deadline, without polling the store', async (t, kind) => {
  const options = { ...await kind.options(), ttl: 1 }
  const b = await instance(t, options)
  const s = await login(b, 'bob')
  const started = Date.now()
  await watch(b, s.cookie)
  const ended = await until('the deadline ends it', () => b.ended.find((e) => e.id === s.id), 3000)
  t.equal(ended.reason, 'expired')
  t.ok(ended.at - started >= 900, `not before its deadline (${ended.at - started} ms)`)
})

onEveryBus('a session evicted by the per-user cap on A ends on B', async (t, kind) => {
  const a = await instance(t, { ...await kind.options(), maxSessionsPerUser: 3 })
  const b = await instance(t, { ...await kind.options(), maxSessionsPerUser: 3 })
  await ready(a, b, 'carol') // leaves carol with none
  const first = await login(b, 'carol')
  await watch(b, first.cookie)
  await login(a, 'carol')
  await login(a, 'carol')
  t.same(b.ended.filter((e) => e.id === first.id), [], 'at the cap, nothing evicted yet')
  await login(a, 'carol')
  t.equal((await until('the eviction reaches B', () => b.ended.find((e) => e.id === first.id))).reason, 'evicted')
}, { sealed: false })

onEveryBus('\'revoked\' is heard on B for what A revokes; an unsubscribed callback is not called', async (t, kind) => {
  const a = await instance(t, { ...await kind.options() })
  const b = await instance(t, { ...await kind.options() })
  await ready(a, b, 'dave')
  const events: unknown[] = []
  const listener = (e: unknown): void => { events.push(e) }
  b.app.sessions.on('revoked', listener)
  const followed = await login(b, 'dave')
  await watch(b, followed.cookie)
  const stopped = await login(b, 'dave')
  await watch(b, stopped.cookie)
  ;(b.stops.get(stopped.id) as () => void)()
  await a.app.sessions.deleteAll('dave')
  await until('B hears the deleteAll', () => events.length >= (kind.sealed ? 1 : 2) ? true : undefined)
  const expected = kind.sealed ? [followed.id] : [followed.id, stopped.id].sort()
  t.same((events as Array<{ id: string }>).map((e) => e.id).sort(), expected,
    kind.sealed ? 'a sealed deleteAll names the user: B hears the sessions it follows' : 'B hears every session A deleted')
  t.match(events, expected.map(() => ({ userId: 'dave', reason: 'deleteAll' })))
  for (const e of events as Array<Record<string, unknown>>) {
    t.same(Object.keys(e).sort(), ['at', 'id', 'reason', 'userId'], 'id, user, time and reason: nothing secret, no data')
  }
  await delay(100)
  t.notOk(b.ended.some((e) => e.id === stopped.id), 'the unsubscribed callback was not called')
  t.ok(b.ended.some((e) => e.id === followed.id))
  b.app.sessions.off('revoked', listener)
})

t.test('a session evicted by the memory store\'s bound ends on every instance sharing the table', async (t) => {
  const table = 'bound-' + randomBytes(4).toString('hex')
  const options = { store: 'memory' as const, storeOptions: { table, maxSessions: 3 } }
  const a = await instance(t, options)
  const b = await instance(t, options)
  const first = await login(b, 'erin')
  await watch(b, first.cookie)
  await login(a, 'frank')
  await login(a, 'grace')
  t.same(b.ended, [], 'three sessions: the bound is not passed')
  await login(a, 'heidi')
  t.same(await until('the eviction reaches B', () => b.ended.find((e) => e.id === first.id)), { id: first.id, reason: 'evicted', at: b.ended[0]?.at })
})

t.test('a store without a bus of its own: instances given the same store object hear each other; deleteAll names the user', async (t) => {
  const memory = new MemoryStore({}, { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 })
  const store = delegate(memory)
  t.teardown(() => memory.close())
  const a = await instance(t, { store })
  const b = await instance(t, { store })
  const one = await login(b, 'ivan')
  const two = await login(b, 'ivan')
  await watch(b, one.cookie)
  await watch(b, two.cookie)
  t.equal(await a.app.sessions.deleteAll('ivan', { except: two.id }), 1)
  t.match(await until('deleteAll reaches B', () => b.ended.find((e) => e.id === one.id)), { reason: 'deleteAll' },
    'the message names the user: B checks the sessions of ivan it follows, and finds this one gone')
  await delay(300)
  t.notOk(b.ended.some((e) => e.id === two.id), 'the one kept is still followed')
})

t.test('an anonymous session followed on B ends when A deletes it by its id', async (t) => {
  const table = 'anon-' + randomBytes(4).toString('hex')
  const a = await instance(t, { store: 'memory', storeOptions: { table } })
  const b = await instance(t, { store: 'memory', storeOptions: { table } })
  const res = await b.app.inject({ method: 'POST', url: '/counter' })
  const cookie = cookieOf(res) as string
  const id = await watch(b, cookie)
  t.equal(await a.app.sessions.delete(id), true)
  t.match(await until('the delete reaches B', () => b.ended.find((e) => e.id === id)), { reason: 'delete' })
})
