import { createServer } from 'node:net'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { createPostgresTable, postgresTableSql } from '../../../lib/index.js'
import { buildApp, cookieOf, logSink, testClock } from '../../helpers/app.js'
import { testDatabase } from '../../helpers/postgres.js'

// The 'postgres' store behind a real Fastify app: login, the devices page, logging out
// other devices and everywhere, expiry on an injected clock, concurrent requests; the table
// checked at ready().

const db = await testDatabase(t)
const skip = db.skip

type App = Awaited<ReturnType<typeof buildApp>>

async function loginAs (app: App, user: string, ua = 'agent'): Promise<{ cookie: string, id: string }> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user }, headers: { 'user-agent': ua } })
  if (res.statusCode !== 200) throw new Error(`login of ${user}: ${res.body}`)
  return { cookie: cookieOf(res) as string, id: res.json().id }
}

async function me (app: App, cookie: string): Promise<{ id: string | null, userId: string | null, name: string | null }> {
  return (await app.inject({ url: '/me', headers: { cookie } })).json()
}

async function postgresApp (options: Record<string, unknown> = {}): Promise<App> {
  const { table } = await db.table()
  const app = await buildApp({ store: 'postgres', storeOptions: db.options({ table }), ...options })
  t.teardown(() => app.close())
  return app
}

t.test('login, devices, log out other devices, log out', { skip }, async (t) => {
  const clock = testClock(1_700_000_000_000)
  const app = await postgresApp({ clock: clock.now, ttl: 600 })
  const a = await loginAs(app, 'alice', 'Firefox')
  clock.tick(1000)
  const b = await loginAs(app, 'alice', 'Safari')
  clock.tick(1000)
  const c = await loginAs(app, 'alice', 'Chrome')
  const bob = await loginAs(app, 'bob')
  t.same(await me(app, a.cookie), { id: a.id, userId: 'alice', name: 'alice' })

  const devices = await app.inject({ url: '/devices', headers: { cookie: a.cookie } })
  t.same(devices.json().map((s: { id: string }) => s.id), [a.id, b.id, c.id], 'oldest first')
  t.match(devices.json()[0], { userId: 'alice', userAgent: 'Firefox', ip: '127.0.0.1', createdAt: 1_700_000_000_000, expiresAt: 1_700_000_600_000, data: { name: 'alice' } })
  t.notOk(devices.body.includes('secretHash'), 'no secret hash on the devices page')

  const others = await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: a.cookie } })
  t.same(others.json(), { deleted: 2 })
  t.equal((await me(app, b.cookie)).userId, null, 'b is logged out')
  t.equal((await me(app, c.cookie)).userId, null)
  t.equal((await me(app, a.cookie)).userId, 'alice')

  const d = await loginAs(app, 'alice')
  t.same((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: d.cookie } })).json(), { deleted: 2 })
  t.equal((await me(app, a.cookie)).userId, null)
  t.equal((await me(app, bob.cookie)).userId, 'bob', 'other users untouched')

  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: bob.cookie } })
  t.match(logout.headers['set-cookie'], /^sid=; Max-Age=0/)
  t.same(await me(app, bob.cookie), { id: null, userId: null, name: null })
  t.same(await app.sessions.getAll('bob'), [])
})

t.test('an anonymous counter, then login carries nothing over unless asked', { skip }, async (t) => {
  const app = await postgresApp()
  const first = await app.inject({ method: 'POST', url: '/counter' })
  const cookie = cookieOf(first) as string
  t.same((await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })).json(), { counter: 2 })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol', keepData: ['counter'] }, headers: { cookie } })
  const after = cookieOf(login) as string
  t.not(after, cookie, 'a new id at login')
  t.same((await app.inject({ url: '/counter', headers: { cookie: after } })).json(), { counter: 2 })
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'the anonymous session is gone')
})

t.test('idle expiry, on the injected clock', { skip }, async (t) => {
  const clock = testClock(1_000_000_000)
  const app = await postgresApp({ clock: clock.now, ttl: 60, absoluteTtl: 3600 })
  const a = await loginAs(app, 'dave')
  clock.tick(59_999)
  t.equal((await me(app, a.cookie)).userId, 'dave')
  clock.tick(60_000)
  t.same(await me(app, a.cookie), { id: null, userId: null, name: null }, 'idle for a whole ttl: gone')
  t.same(await app.sessions.getAll('dave'), [])
})

t.test('absolute expiry, whatever the activity', { skip }, async (t) => {
  const clock = testClock(2_000_000_000)
  const app = await postgresApp({ clock: clock.now, ttl: 60, absoluteTtl: 150 })
  const a = await loginAs(app, 'erin')
  for (let i = 0; i < 2; i++) {
    clock.tick(50_000)
    const res = await app.inject({ url: '/me', headers: { cookie: a.cookie } })
    t.equal(res.json().userId, 'erin', 'active: the idle deadline moves')
  }
  t.equal((await app.sessions.get(a.id))?.expiresAt, 2_000_150_000, 'capped at the absolute deadline')
  clock.tick(49_999)
  t.equal((await me(app, a.cookie)).userId, 'erin')
  clock.tick(1)
  t.equal((await me(app, a.cookie)).userId, null, 'at the absolute deadline: gone')
})

t.test('concurrent requests changing different keys keep every change', { skip }, async (t) => {
  const app = await postgresApp()
  app.post<{ Body: { key: string } }>('/slow-set', async (req) => {
    await new Promise((resolve) => setImmediate(resolve))
    req.session.set(req.body.key, true)
    return 'ok'
  })
  const a = await loginAs(app, 'frank')
  const keys = Array.from({ length: 12 }, (_, i) => 'k' + i)
  await Promise.all(keys.map((key) => app.inject({ method: 'POST', url: '/slow-set', headers: { cookie: a.cookie }, payload: { key } })))
  const data = (await app.sessions.get(a.id))?.data
  t.same(data, Object.fromEntries([['name', 'frank'], ...keys.map((k) => [k, true])]))
})

t.test('an in-flight request does not bring back a session deleted meanwhile', { skip }, async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const app = await postgresApp()
  app.post('/slow-write', async (req) => {
    await gate
    req.session.set('late', true)
    return { ok: true }
  })
  const a = await loginAs(app, 'gina')
  const inflight = app.inject({ method: 'POST', url: '/slow-write', headers: { cookie: a.cookie } })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(await app.sessions.deleteAll('gina'), 1)
  release()
  const res = await inflight
  t.match(res.headers['set-cookie'], /^sid=; Max-Age=0/, 'the revoked cookie is expired')
  t.same(await app.sessions.getAll('gina'), [])
})

t.test('maxSessionsPerUser evicts the least recently used login', { skip }, async (t) => {
  const clock = testClock(3_000_000_000)
  const app = await postgresApp({ clock: clock.now, maxSessionsPerUser: 2 })
  const a = await loginAs(app, 'hank')
  clock.tick(1000)
  const b = await loginAs(app, 'hank')
  clock.tick(1000)
  await app.inject({ method: 'POST', url: '/set', payload: { key: 'x', value: 1 }, headers: { cookie: a.cookie } })
  clock.tick(1000)
  const c = await loginAs(app, 'hank')
  t.same((await app.sessions.getAll('hank')).map((s) => s.id), [a.id, c.id], 'b, the least recently used, was evicted')
  t.equal((await me(app, b.cookie)).userId, null)
  const concurrent = await Promise.all(Array.from({ length: 10 }, () => app.inject({ method: 'POST', url: '/login', payload: { user: 'ivy' } })))
  t.ok(concurrent.every((r) => r.statusCode === 200))
  t.equal((await app.sessions.getAll('ivy')).length, 2, 'concurrent logins respect the cap')
})

t.test('upsert and delete through app.sessions', { skip }, async (t) => {
  const clock = testClock(4_000_000_000)
  const app = await postgresApp({ clock: clock.now, ttl: 100, absoluteTtl: 1000 })
  const a = await loginAs(app, 'jack')
  clock.tick(50_000)
  t.match(await app.sessions.upsert({ id: a.id, userId: 'jack', data: { role: 'admin' } }, 500),
    { id: a.id, data: { role: 'admin' }, expiresAt: 4_000_550_000 })
  t.match(await app.sessions.get(a.id), { data: { role: 'admin' }, lastSeenAt: 4_000_050_000, expiresAt: 4_000_550_000 })
  t.equal(await app.sessions.delete(a.id, 'mallory'), false)
  t.equal(await app.sessions.delete(a.id, 'jack'), true)
  t.equal(await app.sessions.delete(a.id), false)
  await t.rejects(app.sessions.upsert({ id: a.id, data: {} }), { code: 'FST_SESSION_NOT_FOUND' })
})

t.test('a value PostgreSQL cannot store fails the request with a typed 500, not a 503', { skip }, async (t) => {
  const app = await postgresApp()
  const a = await loginAs(app, 'kim')
  const res = await app.inject({ method: 'POST', url: '/set', payload: { key: 'bad', value: 'nul\u0000' }, headers: { cookie: a.cookie } })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_SESSION_VALUE_INVALID')
  t.equal((await me(app, a.cookie)).userId, 'kim', 'the session is intact')
})

t.test('round trips per request, counted on the pool', { skip }, async (t) => {
  const { table } = await db.table()
  const sent: string[] = []
  const pool = {
    connect: async () => {
      const client = await db.pool.connect()
      return {
        query: async (c: { text: string, values?: unknown[] }) => {
          sent.push(c.text.trim().split(/\s+/)[0] as string)
          return await client.query(c)
        },
        release: (destroy?: boolean) => client.release(destroy),
        on: () => {},
        off: () => {}
      }
    }
  }
  const clock = testClock(5_000_000_000)
  const app = await buildApp({ clock: clock.now, ttl: 1000, store: 'postgres', storeOptions: { pool, schema: db.schema, table, cleanupInterval: 0 } })
  t.teardown(() => app.close())
  const count = async (what: string, request: InjectOptions): Promise<string[]> => {
    sent.length = 0
    const res = await app.inject(request)
    // A revocation's announcement is sent without the response waiting for it.
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(res.statusCode < 400, what)
    t.comment(`${what}: ${sent.length} (${sent.join(', ')})`)
    return [...sent]
  }
  await app.ready()
  t.same(sent, ['SELECT', 'INSERT'], 'at ready(), once: the table checked, the owner key read (or made)')
  t.same(await count('no session cookie', { url: '/' }), [])
  const anon = await app.inject({ method: 'POST', url: '/counter' })
  const anonCookie = cookieOf(anon) as string
  t.same(await count('first write of a new session', { method: 'POST', url: '/counter' }), ['INSERT'])
  t.same(await count('reads its session', { url: '/counter', headers: { cookie: anonCookie } }), ['SELECT'])
  t.same(await count('changes its session', { method: 'POST', url: '/counter', headers: { cookie: anonCookie } }), ['SELECT', 'UPDATE'])
  clock.tick(100_000)
  t.same(await count('reads it after refreshFraction × ttl', { url: '/counter', headers: { cookie: anonCookie } }), ['SELECT', 'UPDATE'])
  const login = await count('login() from an anonymous session, then set()', { method: 'POST', url: '/login', payload: { user: 'kate' }, headers: { cookie: anonCookie } })
  t.same(login, ['SELECT', 'BEGIN;', 'WITH', 'COMMIT', 'DELETE', 'SELECT', 'UPDATE'],
    'load, insert in a transaction (3), delete the old, announce it (pg_notify), save the set()')
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'kate' } })) as string
  t.same(await count('devices page', { url: '/devices', headers: { cookie } }), ['SELECT', 'SELECT'])
  t.same(await count('log out everywhere', { method: 'POST', url: '/logout-everywhere', headers: { cookie } }), ['SELECT', 'WITH', 'SELECT'],
    'load, delete them all (returning their ids), announce it')
})

t.test('the table is checked at ready(): missing, or a 0.1 table without policy, the app does not start, naming the fix', { skip }, async (t) => {
  const missing = await buildApp({ store: 'postgres', storeOptions: db.options({ table: 'nope' }) })
  t.teardown(() => missing.close())
  await t.rejects(async () => { await missing.ready() }, {
    code: 'FST_SESSION_STORE_TABLE_INVALID',
    message: `The session table "${db.schema}"."nope" does not exist: create it with createPostgresTable(pool) at start-up, or with the SQL of postgresTableSql() in a migration`
  })

  // A table of the version before device-bound sessions: all but the dbsc column.
  const table = 'old_' + Date.now().toString(36)
  const sql = postgresTableSql({ schema: db.schema, table })
  t.match(sql, ',\n  policy text,\n  dbsc text\n', 'the columns this test removes are the last two')
  await db.pool.query(sql.replace(',\n  dbsc text\n', '\n').replace(/^ALTER TABLE.*\n/gm, ''))
  const old = await buildApp({ store: 'postgres', storeOptions: db.options({ table }) })
  t.teardown(() => old.close())
  await t.rejects(async () => { await old.ready() }, {
    code: 'FST_SESSION_STORE_TABLE_INVALID',
    message: /^The session table ".*"."old_\w+" lacks the column dbsc, which this version uses: run createPostgresTable\(pool\) again \(it adds them\)/
  })
  // A 0.1 table: no policy either, nor ip and user_agent before it.
  await db.pool.query(`ALTER TABLE "${db.schema}"."${table}" DROP COLUMN ip, DROP COLUMN user_agent, DROP COLUMN policy`)
  const older = await buildApp({ store: 'postgres', storeOptions: db.options({ table }) })
  t.teardown(() => older.close())
  await t.rejects(async () => { await older.ready() }, { message: /lacks the columns ip, user_agent, policy, dbsc, which / })

  await createPostgresTable(db.pool, { schema: db.schema, table: 'nope' })
  const created = await buildApp({ store: 'postgres', storeOptions: db.options({ table: 'nope' }) })
  t.teardown(() => created.close())
  await created.ready()
  t.equal((await created.inject({ method: 'POST', url: '/login', payload: { user: 'ann' } })).statusCode, 200, 'once created, it starts')
})

t.test('unreachable at start: a warning, the app starts, and sessions answer 503 until PostgreSQL answers', { skip }, async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  const sink = logSink('warn')
  const app = await buildApp({ store: 'postgres', storeOptions: { connectionString: `postgres://postgres@127.0.0.1:${port}/test`, timeout: 1000, cleanupInterval: 0 } }, sink.logger)
  t.teardown(() => app.close())
  await app.ready()
  t.match(sink.lines, [{ level: 40, msg: 'postgres session store: could not check the session table at start; requests that need the store answer 503 until PostgreSQL answers' }])
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { user: 'ann' } })).statusCode, 503)
  t.equal((await app.inject({ url: '/' })).statusCode, 200)
})
