import { randomBytes } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { PostgresStore } from '../../../lib/index.js'
import { buildApp, cookieOf, logSink } from '../../helpers/app.js'
import { PG_URL, newStored, testContext, testDatabase } from '../../helpers/postgres.js'

// What the PostgreSQL store does when the database is down, slow or drops connections:
// a typed 503 within the timeout, never a hang or a crash; and whose pool it closes.

const db = await testDatabase(t)
const skip = db.skip

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The connection string with a unique application_name, to find the store's backends. */
function tagged (): { url: string, name: string } {
  const name = 'fus_' + randomBytes(4).toString('hex')
  return { url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${name}`, name }
}

async function backends (name: string): Promise<number> {
  return (await db.sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name])).rows[0].n
}

/** Polls (briefly) until `check` holds: the server sees a disconnect a moment after the client. */
async function eventually (check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

t.test('a database that is down gives the typed 503, within the timeout', { skip }, async (t) => {
  const port = await closedPort()
  const app = await buildApp({ store: 'postgres', storeOptions: { connectionString: `postgres://postgres@127.0.0.1:${port}/test`, timeout: 1000, cleanupInterval: 0 } })
  t.teardown(() => app.close())
  const started = Date.now()
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  t.equal(login.statusCode, 503)
  t.equal(login.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.match(login.json().message, /^Session store unavailable: /)
  t.ok(Date.now() - started < 1000, 'refused at once, not after the timeout')
  t.equal((await app.inject({ url: '/' })).statusCode, 200, 'routes that do not use the session work')
  await t.rejects(app.sessions.getAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(app.sessions.deleteAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
})

t.test('a missing table says how to create it', { skip }, async (t) => {
  const store = new PostgresStore({ pool: db.pool, schema: db.schema, table: 'nope', cleanupInterval: 0 }, testContext(Date.now))
  t.teardown(() => store.close())
  await t.rejects(store.get(newStored(undefined, 0).id), {
    code: 'FST_SESSION_STORE_UNAVAILABLE',
    message: /relation ".*nope" does not exist; create the table with createPostgresTable\(\)/
  })
  await t.rejects(store.insert(newStored('u', Date.now())), { code: 'FST_SESSION_STORE_UNAVAILABLE' }, 'the transaction fails the same way')
  t.equal((await db.pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the user\'s pool is still fine')
})

t.test('SQL error details (which can hold values) are not passed on', { skip }, async (t) => {
  const { table, sql } = await db.table()
  await sql('ALTER TABLE $table ADD CONSTRAINT short_agent CHECK (length(user_agent) < 5)')
  const store = new PostgresStore({ pool: db.pool, schema: db.schema, table, cleanupInterval: 0 }, testContext(Date.now))
  t.teardown(() => store.close())
  const err = await store.insert(newStored(undefined, Date.now(), { userAgent: 'a secret agent' })).catch((e: unknown) => e) as Error & Record<string, unknown>
  t.match(err, { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /violates check constraint "short_agent"/ })
  t.notOk(JSON.stringify({ ...err, message: err.message }).includes('secret agent'), 'no row values')
  t.equal(err.cause, undefined)
})

t.test('waiting for a connection of a busy user pool is bounded; the late connection goes back to the pool', { skip }, async (t) => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
  t.teardown(() => pool.end())
  const store = new PostgresStore({ pool, schema: db.schema, timeout: 150, cleanupInterval: 0 }, testContext(Date.now))
  const patient = new PostgresStore({ pool, schema: db.schema, cleanupInterval: 0 }, testContext(Date.now))
  t.teardown(() => store.close())
  const held = await pool.connect()
  const started = Date.now()
  await t.rejects(store.get(newStored(undefined, 0).id), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /no answer from PostgreSQL within 150 ms/ })
  t.ok(Date.now() - started >= 140)
  held.release()
  t.equal(await patient.get(newStored(undefined, 0).id), undefined, 'works again once a connection is free')
  t.equal(pool.totalCount, 1, 'the connection that came too late was handed back, not leaked')
})

t.test('a statement that waits too long fails with the 503 and its connection is dropped', { skip }, async (t) => {
  const { table } = await db.table()
  const { url, name } = tagged()
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => pool.end())
  const store = new PostgresStore({ pool, schema: db.schema, table, timeout: 200, cleanupInterval: 0 }, testContext(Date.now))
  const patient = new PostgresStore({ pool, schema: db.schema, table, cleanupInterval: 0 }, testContext(Date.now))
  t.teardown(() => store.close())
  const s = newStored('alice', Date.now())
  await patient.insert(s)
  const holder = await db.pool.connect()
  t.teardown(() => holder.release())
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM "${db.schema}"."${table}" WHERE id = $1 FOR UPDATE`, [s.id])
  await t.rejects(store.patch(s.id, { clear: false, set: Object.assign(Object.create(null), { x: 1 }), unset: [], lastSeenAt: Date.now() }),
    { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /no answer from PostgreSQL within 200 ms/ })
  t.equal(pool.totalCount, 0, 'the connection of the late statement was destroyed, not reused')

  // A login whose eviction waits on a locked row: its transaction is rolled back as a whole.
  const capped = new PostgresStore({ pool, schema: db.schema, table, timeout: 200, cleanupInterval: 0 }, testContext(Date.now, 1))
  t.teardown(() => capped.close())
  const next = newStored('alice', Date.now())
  await t.rejects(capped.insert(next), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  // SET LOCAL statement_timeout: the server gives up too, though the row is still locked,
  // rather than keep the user's advisory lock until the row is free.
  t.ok(await eventually(async () => (await db.sql(`SELECT count(*)::int AS n FROM pg_locks JOIN pg_stat_activity USING (pid)
    WHERE locktype = 'advisory' AND application_name = $1`, [name])).rows[0].n === 0), 'its lock was let go')
  await holder.query('ROLLBACK')
  t.equal(await patient.get(next.id), undefined, 'not inserted')
  t.same((await patient.getAll('alice')).map((x) => x.id), [s.id])
  const cappedPatient = new PostgresStore({ pool, schema: db.schema, table, cleanupInterval: 0 }, testContext(Date.now, 1))
  t.equal(await cappedPatient.insert(next), true, 'and it works once the row is free')
  t.same((await patient.getAll('alice')).map((x) => x.id), [next.id])
})

t.test('a store-made pool: server-side statement timeout, backends terminated, closed with the app', { skip }, async (t) => {
  const { table } = await db.table()
  const { url, name } = tagged()
  const sink = logSink('debug')
  const app = await buildApp({ store: 'postgres', storeOptions: { connectionString: url, schema: db.schema, table, timeout: 1000, cleanupInterval: 0 } }, sink.logger)
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })
  const cookie = cookieOf(login) as string
  t.ok(await backends(name) > 0, 'the store connected with its own pool')

  // Idle connections killed by the server: logged, and the next request reconnects.
  await db.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [name])
  t.ok(await eventually(async () => sink.lines.some((l) => l.msg === 'postgres session store: connection error')), 'the pool error is logged, not thrown')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'bob', 'back on a new connection')

  // A backend terminated in the middle of a statement.
  const id = login.json().id as string
  const holder = await db.pool.connect()
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM "${db.schema}"."${table}" WHERE id = $1 FOR UPDATE`, [id])
  const pending = app.inject({ method: 'POST', url: '/set', payload: { key: 'k', value: 1 }, headers: { cookie } })
  await eventually(async () => (await db.sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [name])).rows[0].n === 1)
  await db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [name])
  const res = await pending
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')

  // Blocked until the timeout: the 503, and the server's statement_timeout (set on the
  // store's own pool) stops the backend from waiting on, though the row is still locked.
  const slow = await app.inject({ method: 'POST', url: '/set', payload: { key: 'k', value: 2 }, headers: { cookie } })
  t.equal(slow.statusCode, 503)
  t.ok(await eventually(async () => (await db.sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [name])).rows[0].n === 0),
    'the server gave up on the statement too')
  await holder.query('ROLLBACK')
  holder.release()
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'bob')

  await app.close()
  closed = true
  t.ok(await eventually(async () => await backends(name) === 0), 'the store-made pool is closed with the app')
  t.notOk(sink.text().includes(id), 'no session id in the logs')
})

t.test('a user pool is never closed by the store', { skip }, async (t) => {
  const { url, name } = tagged()
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => pool.end())
  const { table } = await db.table()
  const app = await buildApp({ store: 'postgres', storeOptions: { pool, schema: db.schema, table } })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  t.equal(login.statusCode, 200)
  await app.close()
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'still usable')
  t.ok(await backends(name) > 0, 'its connections stay open')
  const store = new PostgresStore({ pool, schema: db.schema, table, cleanupInterval: 0 }, testContext(Date.now))
  await store.close()
  await t.rejects(store.get(login.json().id), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /the store is closed/ })
  t.equal(pool.totalCount > 0, true)
})

t.test('a failing cleanup is logged, not thrown', { skip }, async (t) => {
  const warned = new Promise<unknown>((resolve) => {
    const store = new PostgresStore({ pool: db.pool, schema: db.schema, table: 'missing', cleanupInterval: 5 }, testContext(Date.now, 10, {
      debug () {},
      warn: (o: unknown, msg: string) => {
        store.close().then(() => resolve([o, msg]), resolve)
      }
    }))
  })
  t.match(await warned, [{ err: { message: /does not exist/ } }, 'postgres session store: cleanup failed'])
})

t.test('without the pg package, a connectionString fails at register with a typed error', { skip }, async (t) => {
  const { PostgresStore: Isolated } = await t.mockImport<typeof import('../../../lib/stores/postgres/store.js')>('../../../lib/stores/postgres/store.js', {
    'node:module': {
      createRequire: () => () => { throw Object.assign(new Error("Cannot find module 'pg'"), { code: 'MODULE_NOT_FOUND' }) }
    }
  })
  t.throws(() => new Isolated({ connectionString: PG_URL }, testContext(Date.now)),
    { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions.connectionString": needs the "pg" package/ })
  const store = new Isolated({ pool: db.pool, schema: db.schema, cleanupInterval: 0 }, testContext(Date.now))
  t.equal(await store.get(newStored(undefined, 0).id), undefined, 'a pool needs no pg import')
  await store.close()
})

t.test('a server that accepts but never answers: bounded, and the late failure is ignored', { skip }, async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  // The pool gives up on the connection (300 ms) after the store has (100 ms).
  const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/test`, connectionTimeoutMillis: 300 })
  t.teardown(() => pool.end())
  const store = new PostgresStore({ pool, timeout: 100, cleanupInterval: 0 }, testContext(Date.now))
  await t.rejects(store.get(newStored(undefined, 0).id), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /within 100 ms/ })
  t.equal(pool.totalCount, 1, 'still connecting')
  t.ok(await eventually(async () => pool.totalCount === 0), 'the pool gave up on it later, and nothing was thrown')
  await new Promise((resolve) => setImmediate(resolve))
})

t.test('whatever a user pool rejects with becomes the typed 503', { skip }, async (t) => {
  const store = new PostgresStore({ pool: { connect: async () => { throw 'no connection' } }, cleanupInterval: 0 }, testContext(Date.now)) // eslint-disable-line no-throw-literal
  await t.rejects(store.getAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: 'Session store unavailable: no connection' })
})

t.test('a cleanup still running when the timer fires again is not started twice', { skip }, async (t) => {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  let connects = 0
  const done = new Promise<unknown>((resolve) => {
    const store = new PostgresStore({
      pool: { connect: async () => { connects++; await gate; return await db.pool.connect() } },
      schema: db.schema,
      cleanupInterval: 2,
      timeout: 5000
    }, testContext(Date.now, 10, {
      debug: (o: unknown) => { store.close().then(() => resolve(o), resolve) },
      warn: resolve
    }))
  })
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(connects, 1, 'ticks during a cleanup start none')
  open()
  t.same(await done, { deleted: 0 })
  t.equal(connects, 1)
})
