import t from 'tap'
import { MemoryStore, type StoredSession } from '../../lib/index.js'
import { hashSecret, newSecret, newSessionId } from '../../lib/crypto/ids.js'
import { testTag } from '../helpers/ids.js'
import { buildApp, cookieOf, logSink, testClock } from '../helpers/app.js'
import pino from 'pino'

function record (clock: () => number, userId?: string, overrides: Partial<StoredSession> = {}): StoredSession {
  const now = clock()
  return {
    id: newSessionId(userId === undefined ? undefined : testTag(userId)),
    secretHash: hashSecret(newSecret()),
    userId,
    data: { n: 1 },
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 60_000,
    authenticatedAt: userId === undefined ? undefined : now,
    ip: '127.0.0.1',
    userAgent: 'ua',
    ...overrides
  }
}

function open (clock: () => number, options = {}, maxSessionsPerUser = 100, log = pino({ level: 'silent' })): MemoryStore {
  return new MemoryStore(options, { clock, log, maxSessionsPerUser })
}

t.test('a named table is shared by every instance that names it; private otherwise', async (t) => {
  const clock = testClock()
  const a = open(clock.now, { table: 'shared' })
  const b = open(clock.now, { table: 'shared' })
  const c = open(clock.now)
  const r = record(clock.now, 'u')
  t.equal(await a.insert(r), true)
  t.equal((await b.get(r.id))?.userId, 'u')
  t.equal(await c.get(r.id), undefined)
  await a.close()
  await a.close()
  t.equal((await b.get(r.id))?.userId, 'u', 'the table lives while an instance that names it is open')
  await b.close()
  const d = open(clock.now, { table: 'shared' })
  t.equal(await d.get(r.id), undefined, 'the last close drops it')
  await d.close()
  await c.close()
})

t.test('two apps on the ets alias share a named table', async (t) => {
  const one = await buildApp({ store: 'ets', storeOptions: { table: 'apps' } })
  const two = await buildApp({ store: 'memory', storeOptions: { table: 'apps' } })
  t.teardown(async () => { await one.close(); await two.close() })
  const cookie = cookieOf(await one.inject({ method: 'POST', url: '/counter' }))
  t.same((await two.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
})

t.test('insert-new: a taken id is refused, an expired one is replaced', async (t) => {
  const clock = testClock()
  const s = open(clock.now)
  t.teardown(() => s.close())
  const r = record(clock.now)
  t.equal(await s.insert(r), true)
  t.equal(await s.insert({ ...r, data: { other: true } }), false)
  t.same((await s.get(r.id))?.data, { n: 1 })
  clock.tick(60_000)
  t.equal(await s.insert({ ...r, expiresAt: clock.now() + 1000 }), true)
})

t.test('reads refresh the last-seen timestamp and the LRU order; the bound evicts the least recently used', async (t) => {
  const clock = testClock()
  const sink = logSink('warn')
  const s = open(clock.now, { maxSessions: 3 }, 100, pino(sink.logger as pino.LoggerOptions, (sink.logger as { stream: pino.DestinationStream }).stream))
  t.teardown(() => s.close())
  const [r1, r2, r3, r4, r5] = [1, 2, 3, 4, 5].map(() => record(clock.now)) as StoredSession[]
  for (const r of [r1, r2, r3] as StoredSession[]) await s.insert(r)
  clock.tick(1000)
  t.equal((await s.get(r1!.id))?.lastSeenAt, clock.now(), 'timestamp refreshed on read')
  await s.insert(r4!)
  t.equal(await s.get(r2!.id), undefined, 'r2 was least recently used')
  t.ok(await s.get(r1!.id))
  await s.insert(r5!)
  t.equal(await s.get(r3!.id), undefined)
  t.same(s.stats(), { sessions: 3, users: 0, evictions: 2 })
  const warnings = sink.lines.filter((l) => l.msg === 'memory session store full: evicted least recently used sessions')
  t.equal(warnings.length, 1, 'evictions are logged at a rate limit, not one line each')
  t.equal(warnings[0]?.evicted, 1)
  clock.tick(60_000)
  await s.insert(record(clock.now))
  t.equal(sink.lines.filter((l) => l.msg === 'memory session store full: evicted least recently used sessions').length, 2)
})

t.test('the LRU order is kept to the second: reads within one second of the last use do not reorder the table', async (t) => {
  const clock = testClock(1_700_000_000_000)
  const s = open(clock.now, { maxSessions: 2 })
  t.teardown(() => s.close())
  const [r1, r2, r3] = [1, 2, 3].map(() => record(clock.now)) as StoredSession[]
  await s.insert(r1!)
  await s.insert(r2!)
  clock.tick(999)
  t.equal((await s.get(r1!.id))?.lastSeenAt, clock.now(), 'the timestamp moves on every read')
  await s.insert(r3!)
  t.equal(await s.get(r1!.id), undefined, 'r1, read in the same second as its insert, stayed the oldest')
  t.ok(await s.get(r2!.id))
})

t.test('the per-user cap evicts the user\'s least recently used session', async (t) => {
  const clock = testClock()
  const s = open(clock.now, {}, 2)
  t.teardown(() => s.close())
  const a = record(clock.now, 'u')
  await s.insert(a)
  clock.tick(1)
  const b = record(clock.now, 'u')
  await s.insert(b)
  clock.tick(1)
  await s.get(a.id) // a is now the most recently used
  const c = record(clock.now, 'u')
  await s.insert(c)
  t.same((await s.getAll('u')).map((r) => r.id).sort(), [a.id, c.id].sort())
  await s.insert(record(clock.now, 'other'))
  t.equal((await s.getAll('other')).length, 1)
})

t.test('expired entries are pruned at the per-user cap before anything live is evicted', async (t) => {
  const clock = testClock()
  const s = open(clock.now, {}, 2)
  t.teardown(() => s.close())
  const old = record(clock.now, 'u', { expiresAt: clock.now() + 10 })
  const live = record(clock.now, 'u')
  await s.insert(old)
  await s.insert(live)
  clock.tick(20)
  await s.insert(record(clock.now, 'u'))
  t.equal((await s.getAll('u')).length, 2)
  t.equal(s.stats().evictions, 0)
})

t.test('get, patch, getAll, delete and deleteAll never see or count expired sessions', async (t) => {
  const clock = testClock()
  const s = open(clock.now)
  t.teardown(() => s.close())
  const a = record(clock.now, 'u', { expiresAt: clock.now() + 10 })
  const b = record(clock.now, 'u')
  const c = record(clock.now, 'u', { expiresAt: clock.now() + 10 })
  const z = record(clock.now, 'u', { expiresAt: clock.now() + 10 })
  for (const r of [a, b, c, z]) await s.insert(r)
  clock.tick(10)
  t.equal(await s.get(a.id), undefined)
  t.equal(await s.patch(c.id, { clear: false, set: {}, unset: [], lastSeenAt: clock.now() }), false)
  t.same((await s.getAll('u')).map((r) => r.id), [b.id])
  const d = record(clock.now, 'u', { expiresAt: clock.now() + 5 })
  await s.insert(d)
  clock.tick(5)
  t.equal(await s.delete(d.id), false, 'an expired session counts as gone')
  const e = record(clock.now, 'u', { expiresAt: clock.now() + 5 })
  await s.insert(e)
  clock.tick(5)
  t.equal(await s.deleteAll('u', []), 1, 'only the live one is counted')
  t.same(s.stats(), { sessions: 0, users: 0, evictions: 0 })
  t.equal(await s.deleteAll('u', []), 0)
})

t.test('patch applies set, unset and clear', async (t) => {
  const clock = testClock()
  const s = open(clock.now)
  t.teardown(() => s.close())
  const r = record(clock.now, undefined, { data: { a: 1, b: 2 } })
  await s.insert(r)
  t.equal(await s.patch(r.id, { clear: false, set: { c: 3 }, unset: ['a'], lastSeenAt: clock.now() + 1, expiresAt: clock.now() + 99 }), true)
  const got = await s.get(r.id)
  t.same(got?.data, { b: 2, c: 3 })
  t.equal(got?.expiresAt, clock.now() + 99)
  await s.patch(r.id, { clear: true, set: { d: 4 }, unset: [], lastSeenAt: clock.now() })
  t.same((await s.get(r.id))?.data, { d: 4 })
})

t.test('the sweep removes expired sessions in chunks, on an unref\'d timer', async (t) => {
  const clock = testClock()
  const s = open(clock.now, { maxSessions: 50_000, sweepInterval: 5 }, 100)
  t.teardown(() => s.close())
  for (let i = 0; i < 25_000; i++) await s.insert(record(clock.now, i < 70 ? `user-${i % 7}` : undefined, { expiresAt: clock.now() + (i % 5 === 0 ? 100_000 : 10) }))
  clock.tick(10)
  s.sweep()
  s.sweep() // a sweep in progress is not started twice
  t.ok(s.stats().sessions > 5000, 'the first chunk does not do it all')
  // The rest runs in setImmediate chunks; give the loop the turns it needs, however loaded the machine.
  for (let turn = 0; turn < 1000 && s.stats().sessions > 5000; turn++) await new Promise((resolve) => setImmediate(resolve))
  t.same(s.stats().sessions, 5000)
  t.equal(s.stats().users, 7)
})

t.test('closing during a sweep stops it', async (t) => {
  const clock = testClock()
  const s = open(clock.now, { maxSessions: 50_000 })
  for (let i = 0; i < 15_000; i++) await s.insert(record(clock.now, undefined, { expiresAt: clock.now() + 1 }))
  clock.tick(1)
  s.sweep()
  await s.close()
  t.same(s.stats(), { sessions: 0, users: 0, evictions: 0 })
})

t.test('user agents and addresses are stored once per distinct value', async (t) => {
  const clock = testClock()
  const s = open(clock.now, { maxSessions: 20_000 })
  t.teardown(() => s.close())
  for (let i = 0; i < 10_005; i++) await s.insert(record(clock.now, undefined, { userAgent: `ua-${i}`, ip: undefined }))
  const r = record(clock.now, undefined, { userAgent: 'ua-10004' })
  await s.insert(r)
  t.equal((await s.get(r.id))?.userAgent, 'ua-10004')
})

t.test('the per-user index holds one id or a set of them; either way every operation sees the same sessions', async (t) => {
  const clock = testClock()
  const s = open(clock.now)
  t.teardown(() => s.close())
  const ids = async (): Promise<string[]> => (await s.getAll('u')).map((x) => x.id).sort()
  const [a, b, c] = [record(clock.now, 'u'), record(clock.now, 'u'), record(clock.now, 'u')]
  await s.insert(a)
  t.same(await ids(), [a.id])
  await s.insert(b)
  await s.insert(c)
  t.same(await ids(), [a.id, b.id, c.id].sort())
  t.equal(await s.delete(b.id), true)
  t.equal(await s.delete(c.id), true)
  t.same(await ids(), [a.id], 'back to one id')
  await s.insert(b)
  t.same(await ids(), [a.id, b.id].sort())
  t.equal(await s.deleteAll('u', [b.id]), 1)
  t.same(await ids(), [b.id])
  t.same(s.stats(), { sessions: 1, users: 1, evictions: 0 })
  t.equal(await s.deleteAll('u', []), 1)
  t.same(await ids(), [])
  t.same(s.stats(), { sessions: 0, users: 0, evictions: 0 })
  t.equal(await s.insert(record(clock.now, 'u')), true, 'a user can come back after the index dropped them')
  t.equal((await s.getAll('u')).length, 1)
})

t.test('empty data round-trips, and stays apart from other sessions\' data', async (t) => {
  const clock = testClock()
  const s = open(clock.now)
  t.teardown(() => s.close())
  const a = record(clock.now, 'u', { data: {} })
  const b = record(clock.now, 'u', { data: {} })
  await s.insert(a)
  await s.insert(b)
  t.equal(await s.patch(a.id, { clear: false, set: { x: 1 }, unset: [], lastSeenAt: clock.now() }), true)
  t.same((await s.get(a.id))?.data, { x: 1 })
  t.same((await s.get(b.id))?.data, {})
  t.equal(await s.patch(a.id, { clear: true, set: {}, unset: [], lastSeenAt: clock.now() }), true)
  t.same((await s.get(a.id))?.data, {})
})

t.test('memory store options are validated', async (t) => {
  const clock = testClock()
  for (const [options, pattern] of [
    [{ table: '' }, /"storeOptions.table"/],
    [{ table: 5 }, /"storeOptions.table"/],
    [{ maxSessions: 0 }, /"storeOptions.maxSessions": must be a positive integer/],
    [{ sweepInterval: 1.5 }, /"storeOptions.sweepInterval"/],
    [null, /"storeOptions": must be an object/]
  ] as const) {
    t.throws(() => open(clock.now, options as never), { code: 'FST_SESSION_OPTION_INVALID', message: pattern })
  }
})
