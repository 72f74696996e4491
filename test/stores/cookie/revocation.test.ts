import t from 'tap'
import { MemoryRevocation, type RevocationStore } from '../../../lib/index.js'
import { buildApp, cookieOf, counting, logSink, testClock } from '../../helpers/app.js'
import { until } from '../../helpers/redis.js'
import { revocationFlows } from '../../helpers/revocation-flows.js'

// Revocation for the cookie store with the in-process revocation store; the same flows run
// against Redis in redis.test.ts.

t.test("storeOptions.revocation: 'memory'", async (t) => {
  revocationFlows(t, () => 'memory')
})

t.test("storeOptions.revocation: { type: 'memory' } with options", async (t) => {
  revocationFlows(t, () => ({ type: 'memory', maxEntries: 1000, sweepInterval: 1000 }))
})

function memory (clock: () => number, options: object = {}): MemoryRevocation {
  return new MemoryRevocation({ type: 'memory', ...options }, { clock, log: console as never, maxSessionsPerUser: 1 })
}

t.test('a request that carries a cookie costs one revocation check; one without, none', async (t) => {
  const clock = testClock()
  const revocation = counting(memory(clock.now))
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation }, clock: clock.now })
  t.teardown(async () => { await app.close(); await revocation.close() })
  await app.inject('/me')
  await app.inject({ method: 'POST', url: '/counter' })
  t.same(revocation.calls, {}, 'no cookie, no call, even for a new anonymous session')
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  t.same(revocation.calls, { generation: 1, ownerKey: 1 }, 'a login reads the user\'s generation (and the owner key, once)')
  const cookie = cookieOf(login)
  await app.inject({ url: '/me', headers: { cookie } })
  t.same(revocation.calls, { generation: 1, ownerKey: 1, isRevoked: 1 })
  await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
  t.same(revocation.calls, { generation: 1, ownerKey: 1, isRevoked: 2 }, 'a write costs no more than a read')
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.same(revocation.calls, { generation: 1, ownerKey: 1, isRevoked: 3, revoke: 1 })
})

t.test('a revocation store that fails gives the 503 of every store, and a warning', async (t) => {
  const sink = logSink('warn')
  const clock = testClock()
  const inner = memory(clock.now)
  let down = false
  const guard = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (down) throw new Error('connection refused')
    return await fn(...args)
  }
  const revocation: RevocationStore = {
    isRevoked: guard((id: string, u: string | undefined, g: number) => inner.isRevoked(id, u, g)),
    generation: guard((u: string) => inner.generation(u)),
    revoke: guard((id: string, until: number) => inner.revoke(id, until)),
    revokeAll: guard((u: string, e: readonly string[], until: number) => inner.revokeAll(u, e, until))
  }
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation }, clock: clock.now }, sink.logger)
  app.post('/fail-destroy', async (req) => { down = true; await req.session.destroy(); return 'ok' })
  app.post('/fail-regenerate', async (req) => { down = true; await req.session.regenerate(); return 'ok' })
  app.post('/fail-login', async (req) => { down = true; await req.session.login('bob'); return 'ok' })
  t.teardown(async () => { await app.close(); await inner.close() })
  const alice = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))

  down = true
  const me = await app.inject({ url: '/me', headers: { cookie: alice } })
  t.equal(me.statusCode, 503)
  t.same(me.json(), { statusCode: 503, code: 'FST_SESSION_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Session store unavailable: connection refused' })
  t.equal(me.headers['set-cookie'], undefined, 'the cookie is left alone')
  t.equal((await app.inject({ url: '/', headers: { cookie: alice } })).statusCode, 200, 'a route that does not touch the session works')
  t.ok(sink.lines.some((l) => l.msg === 'session store unavailable while loading a session'))
  await t.rejects(app.sessions.delete('A'.repeat(22)), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  t.equal(await app.sessions.delete('A'.repeat(22), 'alice'), false, 'without an owner key, the revocation store cannot tell whose an id is: refused')
  await t.rejects(app.sessions.deleteAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })).statusCode, 503, 'a login needs the generation')

  for (const url of ['/fail-destroy', '/fail-regenerate', '/fail-login']) {
    down = false
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
    const res = await app.inject({ method: 'POST', url, headers: { cookie } })
    t.equal(res.statusCode, 503, url)
    t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE', url)
    down = false
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice', `${url}: the old session is still the one in use`)
  }
  down = false
  t.equal((await app.inject({ url: '/me', headers: { cookie: alice } })).json().userId, 'alice', 'back without a restart')
})

t.test('MemoryRevocation: generations, expiry and the bound on entries', async (t) => {
  const clock = testClock(1_000_000)
  const warnings: unknown[] = []
  const store = new MemoryRevocation({ type: 'memory', maxEntries: 3 },
    { clock: clock.now, log: { warn: (...args: unknown[]) => warnings.push(args) } as never, maxSessionsPerUser: 1 })
  t.teardown(() => store.close())
  t.equal(await store.generation('u'), 0)
  await store.revokeAll('u', [], 2_000_000)
  t.equal(await store.generation('u'), 1_000_000, 'a first generation above any handed out before: the time')
  await store.revokeAll('u', ['x'], 2_000_000)
  t.equal(await store.generation('u'), 1_000_001, 'then one more each time, within the same millisecond')
  t.equal(await store.isRevoked('x', 'u', 0), false, 'kept')
  t.equal(await store.isRevoked('y', 'u', 0), true)
  t.equal(await store.isRevoked('y', 'u', 1_000_001), false, 'issued under the current generation')
  t.equal(await store.isRevoked('y', undefined, 0), false)
  t.equal(await store.revoke('gone', 999_999), false, 'a deadline already past needs no entry')
  t.equal(await store.revoke('d1', 1_500_000), true)
  t.equal(await store.isRevoked('d1', undefined, 0), true)
  t.same(store.stats(), { denied: 1, users: 1, dropped: 0 })

  t.equal(await store.revoke('d2', 1_500_000), true)
  t.equal(await store.revoke('d3', 1_500_000), true, 'full: the oldest entry is dropped')
  t.same(store.stats(), { denied: 2, users: 1, dropped: 1 })
  t.equal(await store.isRevoked('d1', undefined, 0), false, 'what it revoked works again: the documented price of the bound')
  t.equal(warnings.length, 1)
  t.match(warnings[0], [{ maxEntries: 3, dropped: 1 }, 'memory revocation store full: dropped the oldest entries'])
  await store.revoke('d4', 1_500_000)
  t.equal(warnings.length, 1, 'one warning a minute at most')
  await store.revokeAll('v', [], 1_500_000)
  await store.revokeAll('w', [], 1_500_000)
  t.same(store.stats(), { denied: 0, users: 3, dropped: 4 }, 'revoked ids go first')
  clock.tick(60_000)
  await store.revokeAll('z', [], 1_500_000)
  t.same(store.stats(), { denied: 0, users: 3, dropped: 5 }, 'then the oldest users')
  t.equal(await store.generation('u'), 0)
  t.equal(warnings.length, 2, 'a minute later, another warning')

  clock.tick(500_000)
  t.equal(await store.generation('w'), 0, 'an expired entry counts for nothing, swept or not')
  t.equal(await store.isRevoked('q', 'w', 0), false)
  t.equal(await store.revoke('d4', 2_000_000), true)
  store.sweep()
  t.same(store.stats(), { denied: 1, users: 0, dropped: 5 })
  t.equal(await store.revoke('d4', 2_000_000), false, 'already revoked')
})

t.test('MemoryRevocation sweeps expired entries on an unref\'d timer; options are checked', async (t) => {
  let now = 0
  const store = memory(() => now, { sweepInterval: 5 })
  await store.revoke('a', 10)
  await store.revokeAll('u', [], 10)
  now = 20
  await until('swept', async () => store.stats().denied + store.stats().users === 0 ? true : undefined)
  t.same(store.stats(), { denied: 0, users: 0, dropped: 0 })
  await store.close()
  for (const [options, pattern] of [
    [{ maxEntries: 0 }, /"storeOptions.revocation.maxEntries": must be a positive integer/],
    [{ sweepInterval: 1.5 }, /"storeOptions.revocation.sweepInterval"/],
    [{ size: 3 }, /"storeOptions.revocation.size": unknown option; known: type, maxEntries, sweepInterval/]
  ] as const) {
    await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'memory', ...options } } }),
      { code: 'FST_SESSION_OPTION_INVALID', message: pattern })
  }
})

t.test('a custom revocation store without close() needs none', async (t) => {
  const inner = memory(Date.now)
  const revocation: RevocationStore = {
    isRevoked: (id, u, g) => inner.isRevoked(id, u, g),
    generation: (u) => inner.generation(u),
    revoke: (id, until) => inner.revoke(id, until),
    revokeAll: (u, e, until) => inner.revokeAll(u, e, until)
  }
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation } })
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'u' } }))
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
  await app.close()
  await inner.close()
})
