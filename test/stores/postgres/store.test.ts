import t from 'tap'
import { PostgresStore, postgresTableSql, createPostgresTable } from '../../../lib/index.js'
import { hashSecret, newSessionId } from '../../../lib/crypto/ids.js'
import { newIdFor, testTag } from '../../helpers/ids.js'
import { testClock } from '../../helpers/app.js'
import { newStored, testContext, testDatabase } from '../../helpers/postgres.js'

// The PostgreSQL store, called directly, on a real server: insert-new, expiry on the
// injected clock, atomic patches, the per-user cap under concurrency, cleanup, isolation of
// look-alike user ids, a user with thousands of sessions, prototype poisoning.

const db = await testDatabase(t)
const skip = db.skip

/** A store on a table of its own (a test's clock must not expire another test's rows). */
async function open (clock: () => number, maxSessionsPerUser = 100, extra = {}): Promise<{ store: PostgresStore, table: string, sql: Sql }> {
  const { table, sql } = await db.table()
  const store = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0, ...extra }, testContext(clock, maxSessionsPerUser))
  t.teardown(() => store.close())
  return { store, table, sql }
}

type Sql = Awaited<ReturnType<typeof db.table>>['sql']

t.test('insert-new, get, delete', { skip }, async (t) => {
  const clock = testClock(1_000_000)
  const { store } = await open(clock.now)
  const s = newStored('alice', clock.now(), { data: { n: 1, nested: { list: [1, 'two', null] } } })
  t.equal(await store.insert(s), true)
  t.equal(await store.insert({ ...s, secretHash: 'other', data: { n: 2 } }), false, 'a live id is taken')
  t.strictSame(await store.get(s.id), s, 'read back as written, numbers as numbers')
  const anon = newStored(undefined, clock.now(), { ip: undefined, userAgent: undefined })
  t.equal(await store.insert(anon), true)
  t.strictSame(await store.get(anon.id), anon, 'anonymous, no client details')
  t.equal(await store.insert(anon), false)
  t.equal(await store.get(newSessionId(undefined)), undefined, 'unknown id')
  t.equal(await store.get('not an id'), undefined, 'never looked up')
  t.equal(await store.delete(s.id), true)
  t.equal(await store.delete(s.id), false, 'already gone')
  t.equal(await store.delete('not an id'), false)
  t.equal(await store.get(s.id), undefined)
  t.equal(await store.patch('not an id', { clear: false, set: {}, unset: [], lastSeenAt: 1 }), false)
})

t.test('insert refuses ids that do not carry their user, and user ids PostgreSQL cannot store', { skip }, async (t) => {
  const clock = testClock(1_000_000)
  const { store } = await open(clock.now)
  await t.rejects(store.insert({ ...newStored('alice', clock.now()), userId: 'bob' }), { code: 'FST_SESSION_USER_ID_INVALID' })
  await t.rejects(store.insert({ ...newStored('alice', clock.now()), id: 'nope' }), { code: 'FST_SESSION_USER_ID_INVALID' })
  await t.rejects(store.insert(newStored('a\0b', clock.now())), { code: 'FST_SESSION_USER_ID_INVALID', message: /U\+0000/ })
  await t.rejects(store.insert(newStored('a\ud800', clock.now())), { code: 'FST_SESSION_USER_ID_INVALID' })
  t.same(await store.getAll('a\0b'), [], 'such a user has no sessions')
  t.equal(await store.deleteAll('a\ud800', []), 0)
})

t.test('an expired id can be taken again; a live one cannot', { skip }, async (t) => {
  const clock = testClock(2_000_000)
  const { store, sql } = await open(clock.now)
  const old = newStored('carol', clock.now(), { expiresAt: clock.now() + 1000, data: { old: true } })
  t.equal(await store.insert(old), true)
  clock.tick(999)
  t.equal(await store.insert({ ...old, secretHash: 'x' }), false)
  clock.tick(1)
  t.equal(await store.get(old.id), undefined, 'expired at its deadline, though its row is still there')
  t.equal((await sql('SELECT count(*)::int AS n FROM $table WHERE id = $1', [old.id])).rows[0].n, 1)
  t.equal(await store.delete(old.id), false, 'deleting an expired session reports false')
  t.equal(await store.insert(old), true, 'gone: insert again')
  clock.tick(1000)
  const fresh = { ...old, secretHash: hashSecret('new'), data: { fresh: true }, createdAt: clock.now(), lastSeenAt: clock.now(), expiresAt: clock.now() + 5000, ip: undefined, authenticatedAt: undefined }
  t.equal(await store.insert(fresh), true, 'replaces the expired row with the same id')
  t.strictSame(await store.get(old.id), fresh, 'nothing of the old row survives')
})

t.test('patch: set, unset, clear, touch; false on a deleted or expired session, never resurrecting it', { skip }, async (t) => {
  const clock = testClock(3_000_000)
  const { store, sql } = await open(clock.now)
  const s = newStored('dave', clock.now(), { data: { a: 1, b: 2, c: 3 } })
  await store.insert(s)
  const set = (o: Record<string, unknown>): Record<string, unknown> => Object.assign(Object.create(null), o)
  t.equal(await store.patch(s.id, { clear: false, set: set({ d: 4, a: 'one' }), unset: ['b', 'missing'], lastSeenAt: clock.now() + 1 }), true)
  t.match(await store.get(s.id), { data: { a: 'one', c: 3, d: 4 }, lastSeenAt: clock.now() + 1, expiresAt: s.expiresAt })
  t.notOk('b' in ((await store.get(s.id))?.data ?? {}))
  t.equal(await store.patch(s.id, { clear: false, set: set({}), unset: [], lastSeenAt: clock.now() + 2, expiresAt: s.expiresAt + 10 }), true, 'a touch')
  t.match(await store.get(s.id), { data: { a: 'one', c: 3, d: 4 }, lastSeenAt: clock.now() + 2, expiresAt: s.expiresAt + 10 })
  t.equal(await store.patch(s.id, { clear: true, set: set({ z: true }), unset: [], lastSeenAt: clock.now() + 3 }), true)
  t.strictSame((await store.get(s.id))?.data, { z: true })
  t.equal(await store.patch(s.id, { clear: true, set: set({}), unset: [], lastSeenAt: clock.now() + 4 }), true, 'clear alone')
  t.strictSame((await store.get(s.id))?.data, {})
  t.equal(await store.patch(s.id, { clear: false, set: set({}), unset: ['a\0', 'q'], lastSeenAt: clock.now() + 5 }), true, 'unset of a key that cannot be stored')

  await store.delete(s.id)
  t.equal(await store.patch(s.id, { clear: false, set: set({ x: 1 }), unset: [], lastSeenAt: clock.now(), expiresAt: clock.now() + 99_000 }), false)
  t.equal(await store.patch(s.id, { clear: false, set: set({}), unset: [], lastSeenAt: clock.now(), expiresAt: clock.now() + 99_000 }), false, 'nor a touch')
  t.equal(await store.get(s.id), undefined, 'not brought back')

  const e = newStored('dave', clock.now(), { expiresAt: clock.now() + 100 })
  await store.insert(e)
  clock.tick(100)
  t.equal(await store.patch(e.id, { clear: false, set: set({ x: 1 }), unset: [], lastSeenAt: clock.now(), expiresAt: clock.now() + 99_000 }), false)
  t.equal(await store.patch(e.id, { clear: false, set: set({}), unset: [], lastSeenAt: clock.now(), expiresAt: clock.now() + 99_000 }), false)
  const row = (await sql('SELECT expires_at, data FROM $table WHERE id = $1', [e.id])).rows[0]
  t.same(row, { expires_at: String(e.expiresAt), data: {} }, 'the expired row was left as it was')
})

t.test('concurrent patches of different keys of one session all survive', { skip }, async (t) => {
  const clock = testClock(4_000_000)
  const { store, table, sql } = await open(clock.now)
  const s = newStored('erin', clock.now(), { data: { keep: 1 } })
  await store.insert(s)
  // Hold the row, so that every patch is queued behind the lock and then runs on what the
  // previous one left: the case a read-modify-write in the application would get wrong.
  const holder = await db.pool.connect()
  t.teardown(() => holder.release())
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM "${db.schema}"."${table}" WHERE id = $1 FOR UPDATE`, [s.id])
  const keys = ['k1', 'k2', 'k3', 'k4', 'k5']
  const patches = keys.map((key, i) => store.patch(s.id, {
    clear: false, set: Object.assign(Object.create(null), { [key]: i }), unset: i === 0 ? ['keep'] : [], lastSeenAt: clock.now() + i
  }))
  // Every patch is waiting on the row lock before it is released.
  for (let waiting = 0; waiting < keys.length;) {
    await new Promise((resolve) => setTimeout(resolve, 5))
    waiting = (await sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE ' || $1 || '%'",
      [`"${db.schema}"."${table}"`])).rows[0].n
  }
  await holder.query('COMMIT')
  t.same(await Promise.all(patches), [true, true, true, true, true])
  t.strictSame((await store.get(s.id))?.data, { k1: 0, k2: 1, k3: 2, k4: 3, k5: 4 })

  // Without the holder, many at once through the pool.
  const many = Array.from({ length: 40 }, (_, i) => store.patch(s.id, {
    clear: false, set: Object.assign(Object.create(null), { ['m' + i]: i }), unset: [], lastSeenAt: clock.now()
  }))
  t.ok((await Promise.all(many)).every(Boolean))
  t.equal(Object.keys((await store.get(s.id))?.data ?? {}).length, 45)
})

t.test('a patch racing a delete never brings the session back', { skip }, async (t) => {
  const clock = testClock(4_500_000)
  const { store } = await open(clock.now)
  for (let i = 0; i < 20; i++) {
    const s = newStored('race', clock.now())
    await store.insert(s)
    const [patched, deleted] = await Promise.all([
      store.patch(s.id, { clear: false, set: Object.assign(Object.create(null), { x: i }), unset: [], lastSeenAt: clock.now(), expiresAt: clock.now() + 120_000 }),
      store.deleteAll('race', [])
    ])
    t.ok(deleted === 1, 'deleted whatever the order')
    t.type(patched, 'boolean')
    t.equal(await store.get(s.id), undefined)
  }
})

t.test('the per-user cap holds under concurrent logins, evicting the least recently used', { skip }, async (t) => {
  const clock = testClock(5_000_000)
  const { store, table, sql } = await open(clock.now, 3)
  const logs: Array<Record<string, unknown>> = []
  const logged = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0 },
    testContext(clock.now, 3, { debug: (o: Record<string, unknown>) => logs.push(o), warn () {} }))
  t.teardown(() => logged.close())

  const sessions = Array.from({ length: 24 }, (_, i) => newStored('frank', clock.now() + i, { lastSeenAt: clock.now() + i }))
  t.same(await Promise.all(sessions.map((s) => store.insert(s))), sessions.map(() => true))
  t.equal((await store.getAll('frank')).length, 3, 'never more than the cap')

  // Sequentially: the least recently seen goes.
  await store.deleteAll('frank', [])
  const [a, b, c] = [0, 1, 2].map((i) => newStored('frank', clock.now(), { lastSeenAt: clock.now() + i })) as [ReturnType<typeof newStored>, ReturnType<typeof newStored>, ReturnType<typeof newStored>]
  for (const s of [a, b, c]) await store.insert(s)
  await store.patch(a.id, { clear: false, set: Object.create(null), unset: [], lastSeenAt: clock.now() + 10 })
  const d = newStored('frank', clock.now(), { lastSeenAt: clock.now() + 11 })
  t.equal(await logged.insert(d), true)
  t.same((await store.getAll('frank')).map((s) => s.id).sort(), [a.id, c.id, d.id].sort(), 'b, the least recently used, was evicted')
  t.same(logs, [{ evicted: 1 }])

  // An expired session counts for nothing and goes first.
  const shortLived = newStored('gina', clock.now(), { expiresAt: clock.now() + 10 })
  await store.insert(shortLived)
  const live = [1, 2].map(() => newStored('gina', clock.now()))
  for (const s of live) await store.insert(s)
  clock.tick(10)
  const third = newStored('gina', clock.now())
  t.equal(await logged.insert(third), true)
  t.same((await store.getAll('gina')).map((s) => s.id).sort(), [...live.map((s) => s.id), third.id].sort())
  t.equal((await sql('SELECT count(*)::int AS n FROM $table WHERE user_id = $1', ['gina'])).rows[0].n, 3, 'the expired row was deleted')
  t.equal(logs.length, 1, 'deleting an expired session is no eviction')

  // A refused insert (id taken) evicts nothing.
  t.equal(await store.insert({ ...third }), false)
  t.equal((await store.getAll('gina')).length, 3)
  t.same(await store.getAll('nobody'), [])
})

t.test('look-alike user ids are isolated', { skip }, async (t) => {
  const clock = testClock(6_000_000)
  const { store } = await open(clock.now)
  const users = ['a', 'a.b', 'a%', 'a_', '{a}', 'a*', 'A', 'a\\', "a'", 'ü', '😀']
  const ids = new Map<string, string>()
  for (const user of users) {
    const s = newStored(user, clock.now())
    await store.insert(s)
    ids.set(user, s.id)
  }
  for (const user of users) {
    t.same((await store.getAll(user)).map((s) => [s.id, s.userId]), [[ids.get(user), user]], user)
  }
  t.equal(await store.deleteAll('a', []), 1)
  t.equal(await store.deleteAll('a%', []), 1)
  for (const user of users.filter((u) => u !== 'a' && u !== 'a%')) t.equal((await store.getAll(user)).length, 1, `${user} untouched`)
})

t.test('deleteAll: one statement, except, expired rows not counted', { skip }, async (t) => {
  const clock = testClock(7_000_000)
  const { store, sql } = await open(clock.now)
  const [a, b, c] = [1, 2, 3].map((i) => newStored('hank', clock.now(), { expiresAt: clock.now() + i * 1000 })) as [ReturnType<typeof newStored>, ReturnType<typeof newStored>, ReturnType<typeof newStored>]
  for (const s of [a, b, c]) await store.insert(s)
  const other = newStored('ivy', clock.now())
  await store.insert(other)
  clock.tick(1000)
  t.equal(await store.deleteAll('hank', [c.id, other.id, 'junk', 42 as unknown as string]), 1, 'a was already expired')
  t.same((await store.getAll('hank')).map((s) => s.id), [c.id])
  t.equal((await sql('SELECT count(*)::int AS n FROM $table WHERE user_id = $1', ['hank'])).rows[0].n, 1, 'the expired row went too')
  t.equal(await store.deleteAll('hank', []), 1)
  t.equal(await store.deleteAll('hank', []), 0)
  t.equal((await store.getAll('ivy')).length, 1)
})

t.test('a user with 3000 sessions: getAll and deleteAll stay single indexed statements', { skip }, async (t) => {
  const clock = testClock(8_000_000)
  const { store, sql } = await open(clock.now, 5000)
  const n = 3000
  const ids = Array.from({ length: n }, () => newSessionId(testTag('jack')))
  await sql(`INSERT INTO $table (id, secret_hash, user_id, data, created_at, last_seen_at, expires_at)
    SELECT id, 'h', 'jack', jsonb_build_object('i', ord), $2 + ord, $2, $3 FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord)`,
  [ids, clock.now(), clock.now() + 60_000])
  // 30000 sessions of other users around them.
  await sql(`INSERT INTO $table (id, secret_hash, user_id, created_at, last_seen_at, expires_at)
    SELECT 'other' || i, 'h', 'user' || (i % 10000), $1, $1, $2 FROM generate_series(1, 30000) AS i`, [clock.now(), clock.now() + 60_000])
  await sql('ANALYZE $table')
  const plan = (await sql("EXPLAIN SELECT id FROM $table WHERE user_id = 'jack' AND expires_at > 0")).rows.map((r) => r['QUERY PLAN']).join('\n')
  t.match(plan, /user_id_idx/, 'the per-user index is used')
  const started = performance.now()
  const all = await store.getAll('jack')
  t.equal(all.length, n)
  t.same(all.slice(0, 2).map((s) => s.data), [{ i: 1 }, { i: 2 }], 'oldest first')
  t.equal(await store.deleteAll('jack', [ids[0] as string]), n - 1)
  t.comment(`getAll + deleteAll of ${n} sessions: ${Math.round(performance.now() - started)} ms`)
  t.same((await store.getAll('jack')).map((s) => s.id), [ids[0]])
  t.equal((await sql("SELECT count(*)::int AS n FROM $table WHERE id <> 'owner-key'")).rows[0].n, 30001, 'no one else\'s session touched')
})

t.test('cleanup deletes expired rows in bounded batches, on the timer too', { skip }, async (t) => {
  const clock = testClock(9_000_000)
  const { store, table, sql } = await open(clock.now, 100, { cleanupBatch: 4 })
  for (let i = 0; i < 10; i++) await store.insert(newStored('kim' + (i % 3), clock.now(), { expiresAt: clock.now() + 100 }))
  const keep = newStored('kim0', clock.now(), { expiresAt: clock.now() + 10_000 })
  await store.insert(keep)
  const statements: string[] = []
  const counting = new PostgresStore({
    pool: {
      connect: async () => {
        const client = await db.pool.connect()
        return {
          query: async (c: { text: string, values?: unknown[] }) => { statements.push(c.text); return await client.query(c) },
          release: (destroy?: boolean) => client.release(destroy),
          on: () => {},
          off: () => {}
        }
      }
    },
    schema: db.schema,
    table,
    cleanupInterval: 0,
    cleanupBatch: 4
  }, testContext(clock.now))
  t.teardown(() => counting.close())
  t.equal(await counting.cleanup(), 0, 'nothing expired yet')
  clock.tick(100)
  statements.length = 0
  t.equal(await counting.cleanup(), 10)
  t.equal(statements.length, 3, '4 + 4 + 2')
  t.match(statements[0], /LIMIT \$2/)
  t.same((await sql("SELECT id FROM $table WHERE id <> 'owner-key'")).rows.map((r) => r.id), [keep.id], 'the live one stays')

  // On the timer: 10 ms here, so the test need not wait; unref'd and cleared on close.
  for (let i = 0; i < 3; i++) await store.insert(newStored(undefined, clock.now(), { expiresAt: clock.now() + 1 }))
  clock.tick(1)
  const done = new Promise<unknown>((resolve) => {
    const timed = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 10 }, testContext(clock.now, 100, {
      debug: (o: { deleted: number }) => {
        if (o.deleted === 0) return
        resolve(o)
        timed.close().catch(t.error)
      },
      warn () {}
    }))
  })
  t.same(await done, { deleted: 3 })

  // A close during a cleanup stops it after the statement in flight.
  for (let i = 0; i < 5; i++) await store.insert(newStored(undefined, clock.now(), { expiresAt: clock.now() + 1 }))
  clock.tick(1)
  const one = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0, cleanupBatch: 1 }, testContext(clock.now))
  const running = one.cleanup()
  await one.close()
  t.equal(await running, 1)
  await t.rejects(one.cleanup(), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /closed/ })
  await one.close()
})

t.test('stored data is read back with prototype-poisoning protection', { skip }, async (t) => {
  const clock = testClock(10_000_000)
  const { store, sql } = await open(clock.now)
  const data = JSON.parse('{"__proto__": {"admin": true}, "constructor": {"prototype": {"admin": true}}, "ok": 1}') as Record<string, unknown>
  t.ok(Object.hasOwn(data, '__proto__'), 'an own __proto__ key goes in')
  const s = newStored('leo', clock.now(), { data })
  await store.insert(s)
  t.equal((await sql("SELECT data->'__proto__'->>'admin' AS a FROM $table WHERE id = $1", [s.id])).rows[0].a, 'true', 'stored as it came')
  const read = await store.get(s.id)
  t.strictSame(read?.data, { ok: 1 })
  t.equal(Object.getPrototypeOf(read?.data), Object.prototype)
  t.equal((read?.data as { admin?: unknown }).admin, undefined)
  t.equal(({} as { admin?: unknown }).admin, undefined, 'Object.prototype untouched')
  await store.patch(s.id, { clear: false, set: JSON.parse('{"__proto__": {"admin": 2}, "x": {"__proto__": {"admin": 3}}}'), unset: [], lastSeenAt: clock.now() })
  const all = await store.getAll('leo')
  t.strictSame(all[0]?.data, { ok: 1, x: {} })
  t.equal((all[0]?.data.x as { admin?: unknown }).admin, undefined)
})

t.test('what jsonb cannot hold is refused with a typed error naming the key', { skip }, async (t) => {
  const clock = testClock(11_000_000)
  const { store } = await open(clock.now)
  const s = newStored('mia', clock.now(), { data: { fine: 'a\\u0000 is text, \\\\u0000 too, 😀 and \u2028 are fine' } })
  t.equal(await store.insert(s), true)
  t.strictSame((await store.get(s.id))?.data, s.data)
  await t.rejects(store.insert(newStored('mia', clock.now(), { data: { ok: 1, bad: 'nul \0 here' } })), { code: 'FST_SESSION_VALUE_INVALID', message: /"bad"/ })
  await t.rejects(store.insert(newStored('mia', clock.now(), { data: { 'k\0': 1 } })), { code: 'FST_SESSION_VALUE_INVALID' })
  await t.rejects(store.patch(s.id, { clear: false, set: Object.assign(Object.create(null), { lone: ['\udc00'] }), unset: [], lastSeenAt: 1 }), { code: 'FST_SESSION_VALUE_INVALID', message: /"lone"/ })
  t.strictSame((await store.get(s.id))?.data, s.data, 'unchanged')
  const u = newStored(undefined, clock.now(), { data: { skip: undefined, fn: (() => 1) as unknown, n: 1.5e-7, big: 1e21, tiny: 5e-324 } })
  await store.insert(u)
  t.strictSame((await store.get(u.id))?.data, { n: 1.5e-7, big: 1e21, tiny: 5e-324 }, 'as JSON.stringify would store it; numbers exact')
})

t.test('options are validated at construction, naming the option', { skip }, async (t) => {
  const ctx = testContext(Date.now)
  const make = (o: unknown) => () => new PostgresStore(o as never, ctx)
  t.throws(make(null), { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions": must be an object/ })
  t.throws(make({}), { message: /give either a pool or a connectionString/ })
  t.throws(make({ pool: db.pool, connectionString: 'postgres://x' }), { message: /give either/ })
  t.throws(make({ pool: {} }), { message: /"storeOptions.pool": must be a pg Pool/ })
  t.throws(make({ pool: null }), { message: /must be a pg Pool/ })
  t.throws(make({ connectionString: '' }), { message: /"storeOptions.connectionString"/ })
  t.throws(make({ pool: db.pool, tabel: 'x' }), { message: /"storeOptions.tabel": unknown option/ })
  for (const table of ['', '1x', 'a-b', 'a"b', 'x'.repeat(49), 7]) {
    t.throws(make({ pool: db.pool, table }), { message: /"storeOptions.table"/ }, String(table))
  }
  t.throws(make({ pool: db.pool, schema: 'no.pe' }), { message: /"storeOptions.schema"/ })
  t.throws(make({ pool: db.pool, timeout: 0 }), { message: /"storeOptions.timeout": must be a positive integer/ })
  t.throws(make({ pool: db.pool, cleanupBatch: 1.5 }), { message: /"storeOptions.cleanupBatch"/ })
  t.throws(make({ pool: db.pool, cleanupInterval: -1 }), { message: /"storeOptions.cleanupInterval"/ })
  const ok = new PostgresStore({ pool: db.pool, table: 'T_' + 'x'.repeat(46), schema: 'public', cleanupInterval: 0 }, ctx)
  await ok.close()
})

t.test('the table DDL: explicit, idempotent, safe to run from several instances at once', { skip }, async (t) => {
  const sql = postgresTableSql()
  t.match(sql, /CREATE TABLE IF NOT EXISTS "fastify_sessions"/)
  t.match(postgresTableSql({ schema: 's', table: 't' }), /CREATE INDEX IF NOT EXISTS "t_user_id_idx" ON "s"."t" \(user_id\) WHERE user_id IS NOT NULL/)
  t.throws(() => postgresTableSql(null as never), { code: 'FST_SESSION_OPTION_INVALID' })
  t.throws(() => postgresTableSql({ table: 'x y' }), { message: /"table"/ })
  await t.rejects(createPostgresTable({} as never), { message: /"db": must be a pg Pool or Client/ })
  await t.rejects(createPostgresTable(null as never), { code: 'FST_SESSION_OPTION_INVALID' })
  await Promise.all([1, 2, 3, 4].map(() => createPostgresTable(db.pool, { schema: db.schema, table: 'other' })))
  const indexes = (await db.sql('SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1', [db.schema, 'other'])).rows
  t.same(indexes.map((r) => r.indexname), ['other_expires_at_idx', 'other_pkey', 'other_user_id_idx'])
  await t.rejects(db.sql(`INSERT INTO "${db.schema}".other (id, secret_hash, data, created_at, last_seen_at, expires_at) VALUES ('x', 'h', '[]', 0, 0, 0)`),
    /check constraint/, 'data is always an object')
})

t.test('a table made by 0.1, without the policy column, gets it from createPostgresTable; sessions keep their settings', { skip }, async (t) => {
  const table = 'old_' + Date.now().toString(36)
  const old = postgresTableSql({ schema: db.schema, table }).replace(',\n  policy text,\n  dbsc text\n', '\n').replace(/^ALTER TABLE.*\n/mg, '')
  t.notMatch(old, 'policy', 'the 0.1 DDL')
  t.notMatch(old, 'dbsc')
  await db.pool.query(old)
  const clock = testClock()
  const store = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0, timeout: 2000 }, testContext(clock.now))
  t.teardown(() => store.close())
  await t.rejects(store.get(newSessionId(undefined)), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /policy/ }, 'a missing column is a typed 503 naming it')
  await createPostgresTable(db.pool, { schema: db.schema, table })
  const s = newStored('alice', clock.now(), { id: await newIdFor(store, 'alice'), policy: 's.t600' })
  t.equal(await store.insert(s), true)
  t.equal((await store.get(s.id))?.policy, 's.t600')
  await createPostgresTable(db.pool, { schema: db.schema, table })
  t.equal((await store.get(s.id))?.policy, 's.t600', 'running it again changes nothing')
})

t.test('a table made by 0.2, without the dbsc column, gets it from createPostgresTable; sessions keep their binding', { skip }, async (t) => {
  const table = 'v02_' + Date.now().toString(36)
  const old = postgresTableSql({ schema: db.schema, table }).replace(',\n  dbsc text\n', '\n').replace(/^ALTER TABLE.*dbsc.*\n/m, '')
  t.match(old, 'policy', 'the 0.2 DDL')
  t.notMatch(old, 'dbsc')
  await db.pool.query(old)
  const clock = testClock()
  const store = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0, timeout: 2000 }, testContext(clock.now))
  t.teardown(() => store.close())
  await t.rejects(store.get(newSessionId(undefined)), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /dbsc/ }, 'a missing column is a typed 503 naming it')
  await createPostgresTable(db.pool, { schema: db.schema, table })
  const s = newStored('alice', clock.now(), { id: await newIdFor(store, 'alice'), dbsc: '{"v":1,"p":[]}' })
  t.equal(await store.insert(s), true)
  t.equal((await store.get(s.id))?.dbsc, '{"v":1,"p":[]}')
})
