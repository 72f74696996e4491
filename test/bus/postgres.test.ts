import { createServer, connect as tcpConnect, type Server } from 'node:net'
import t from 'tap'
import pg from 'pg'
import { encode } from '../../lib/bus/codec.js'
import { PostgresBus, postgresChannel } from '../../lib/bus/postgres.js'
import { PostgresStore } from '../../lib/stores/postgres/store.js'
import { bufferLog, recorder, revocationOf, sleep } from '../helpers/bus.js'
import { PG_URL, testContext, testDatabase } from '../helpers/postgres.js'
import { until } from '../helpers/redis.js'

// The PostgreSQL bus against the local server: NOTIFY through the store's pool, LISTEN on one
// held connection, replaced when its backend is terminated.

const TIMEOUT = 500
const db = await testDatabase(t)

t.test('channel names: valid identifiers, unique per schema, at most 63 bytes', async (t) => {
  t.equal(postgresChannel('fastify_sessions', undefined), 'fastify_sessions_revoked')
  const a = postgresChannel('t', 'one')
  const b = postgresChannel('t', 'two')
  t.match(a, /^t_revoked_[0-9a-f]{6}$/)
  t.not(a, b)
  t.ok(postgresChannel('x'.repeat(48), 'y'.repeat(63)).length <= 63)
})

interface Tap { teardown: (fn: () => unknown) => void }

t.test('the PostgreSQL bus', { skip: db.skip }, async (t) => {
  const context = (log = bufferLog()): ReturnType<typeof testContext> => testContext(Date.now, 100, log.logger)
  const channel = postgresChannel('fastify_sessions', db.schema)
  const listeners = async (): Promise<Array<{ pid: number }>> =>
    (await db.pool.query('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${channel}"`])).rows
  const storeOf = (t: Tap, log?: ReturnType<typeof bufferLog>): PostgresStore => {
    const store = new PostgresStore(db.options({ timeout: TIMEOUT, cleanupInterval: 0 }), context(log))
    t.teardown(() => store.close())
    return store
  }

  t.test('two stores hear each other; a connection LISTENs only while someone listens', async (t) => {
    const one = storeOf(t)
    const two = storeOf(t)
    t.equal(one.bus, one.bus)
    t.equal(one.bus.follow('x')(), undefined)
    await sleep(100)
    t.same(await listeners(), [], 'nothing listens before the first subscriber')
    const a = recorder()
    const b = recorder()
    const offA = one.bus.subscribe(a)
    const offB = two.bus.subscribe(b)
    two.bus.subscribe(recorder())()
    await until('both listening', async () => (await listeners()).length === 2 ? true : undefined)
    const revocation = revocationOf('alice', 2)
    await one.bus.publish(revocation)
    t.same(await a.next(), revocation)
    t.same(await b.next(), revocation)
    await two.bus.publish(revocationOf(undefined))
    await a.next()
    await one.bus.publish({ ids: [], reason: 'delete', at: 0 })
    offA()
    offB()
    await until('none listening', async () => (await listeners()).length === 0 ? true : undefined)
    t.equal(a.heard.length, 2, 'a revocation that names nobody is not sent')
    const again = recorder()
    one.bus.subscribe(again)
    await until('listening again', async () => (await listeners()).length === 1 ? true : undefined)
    await two.bus.publish(revocation)
    t.same(await again.next(), revocation)
  })

  t.test('another table, another channel', async (t) => {
    const { table } = await db.table()
    const other = new PostgresStore(db.options({ table, timeout: TIMEOUT, cleanupInterval: 0 }), context())
    t.teardown(() => other.close())
    const mine = storeOf(t)
    const r = recorder()
    mine.bus.subscribe(r)
    await until('listening', async () => (await listeners()).length === 1 ? true : undefined)
    await other.bus.publish(revocationOf('alice'))
    const revocation = revocationOf('bob')
    await mine.bus.publish(revocation)
    t.same(await r.next(), revocation)
    t.equal(r.heard.length, 1)
  })

  t.test('malformed notifications, a throwing subscriber, an oversize revocation', async (t) => {
    const log = bufferLog()
    const store = storeOf(t, log)
    store.bus.subscribe({ revoked () { throw new Error('boom') }, resync () {} })
    const r = recorder()
    store.bus.subscribe(r)
    await until('listening', async () => (await listeners()).length === 1 ? true : undefined)
    for (const garbage of ['', 'nope', '{"i":["x"],"r":"delete","a":1}']) await db.pool.query('SELECT pg_notify($1, $2)', [channel, garbage])
    await db.pool.query(`NOTIFY "${channel}"`)
    const good = revocationOf('alice')
    await db.pool.query('SELECT pg_notify($1, $2)', [channel, encode(good)])
    t.same(await r.next(), good)
    t.equal(r.heard.length, 1)
    t.equal(log.at(20).filter((m) => m.includes('malformed')).length, 4)
    t.same(log.at(50), ['postgres revocation bus: a subscriber threw'])
    const large = { ...revocationOf('alice', 400), userId: 'alice', reason: 'deleteAll' as const }
    await store.bus.publish(large)
    t.same(await r.next(), { ids: [], userId: 'alice', except: [], reason: 'deleteAll', at: large.at }, 'under NOTIFY\'s 8000 bytes')
  })

  t.test('the listener\'s backend terminated: a new connection, one resync, messages again', async (t) => {
    const log = bufferLog()
    const store = storeOf(t, log)
    const publisher = storeOf(t)
    const r = recorder()
    const s = recorder()
    store.bus.subscribe(r)
    store.bus.subscribe(s)
    const [first] = await until('listening', async () => { const rows = await listeners(); return rows.length === 1 ? rows : undefined })
    await r.resynced(1)
    t.same(r.resyncKeys, [undefined], 'the first LISTEN resyncs too: what came before it was not heard')
    await db.pool.query('SELECT pg_terminate_backend($1)', [first?.pid])
    await r.resynced(2)
    t.equal(s.resyncs, 2)
    // The terminated backend leaves pg_stat_activity in its own time.
    const [second] = await until('one listener', async () => { const rows = await listeners(); return rows.length === 1 ? rows : undefined })
    t.not(second?.pid, first?.pid, 'a new backend listens')
    const after = revocationOf('alice')
    await publisher.bus.publish(after)
    t.same(await r.next(), after)
    await sleep(100)
    t.equal(r.resyncs, 2, 'once per recovery')
    t.equal(log.at(40).length, 1, 'one warning')
    t.same(log.at(30), ['postgres revocation bus: listening again'])
  })

  t.test('close is idempotent, leaves no connection, nothing opens after it', async (t) => {
    const store = storeOf(t)
    const bus = store.bus
    bus.subscribe(recorder())
    await until('listening', async () => (await listeners()).length === 1 ? true : undefined)
    await Promise.all([store.close(), bus.close()])
    await bus.close()
    await until('gone', async () => (await listeners()).length === 0 ? true : undefined)
    bus.subscribe(recorder())
    await sleep(100)
    t.same(await listeners(), [])
    const early = storeOf(t)
    early.bus.subscribe(recorder())
    await early.close()
    await until('closed while its connection was on its way', async () => (await listeners()).length === 0 ? true : undefined)
    await sleep(200)
    t.same(await listeners(), [], 'and nothing listens later')
  })

  t.test('a user\'s pool: the listener holds one of its connections and hands it back destroyed', async (t) => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 2 })
    t.teardown(() => pool.end())
    const store = new PostgresStore({ pool, schema: db.schema, timeout: TIMEOUT, cleanupInterval: 0 }, context())
    const r = recorder()
    const off = store.bus.subscribe(r)
    await until('listening', async () => (await listeners()).length === 1 ? true : undefined)
    t.equal(pool.totalCount - pool.idleCount, 1, 'one connection held')
    const revocation = revocationOf('alice')
    await store.bus.publish(revocation)
    t.same(await r.next(), revocation, 'published through the other one')
    off()
    await until('released', async () => pool.totalCount === pool.idleCount ? true : undefined)
    await store.close()
  })
})

t.test('a server that is down or mute', async (t) => {
  const servers: Server[] = []
  const tcp = (onSocket: (socket: import('node:net').Socket) => void): Promise<number> => new Promise((resolve) => {
    const server = createServer(onSocket)
    servers.push(server)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
  t.teardown(() => { for (const server of servers) server.close() })
  const sockets = new Set<import('node:net').Socket>()
  t.teardown(() => { for (const socket of sockets) socket.destroy() })
  const muteUrl = `postgres://postgres@127.0.0.1:${await tcp((socket) => { sockets.add(socket) })}/test`
  const refused = await tcp((socket) => socket.destroy())
  /** A proxy to the real server: refuses while `delay()` is undefined, else forwards after `delay()` ms. */
  const proxy = async (delay: () => number | undefined): Promise<string> => {
    const port = await tcp((socket) => {
      sockets.add(socket)
      const ms = delay()
      if (ms === undefined) {
        socket.destroy()
        return
      }
      socket.pause()
      setTimeout(() => {
        const real = new URL(PG_URL)
        const upstream = tcpConnect(Number(real.port || 5432), real.hostname)
        sockets.add(upstream)
        socket.pipe(upstream).pipe(socket)
        socket.resume()
        upstream.on('error', () => socket.destroy())
        socket.on('error', () => upstream.destroy())
      }, ms)
    })
    const url = new URL(PG_URL)
    url.host = `127.0.0.1:${port}`
    return url.href
  }

  t.test('publish rejects with the typed error within the timeout', async (t) => {
    for (const url of [muteUrl, `postgres://postgres@127.0.0.1:${refused}/test`]) {
      const store = new PostgresStore({ connectionString: url, timeout: TIMEOUT, cleanupInterval: 0 }, testContext(Date.now))
      t.teardown(() => store.close())
      const start = performance.now()
      await t.rejects(store.bus.publish(revocationOf('alice')), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
      t.ok(performance.now() - start < TIMEOUT + 700, 'within the timeout')
    }
  })

  t.test('the listener retries with a back-off, warning once, and resyncs when it gets through', { skip: db.skip }, async (t) => {
    let open = false
    const url = await proxy(() => open ? 0 : undefined)
    const log = bufferLog()
    const store = new PostgresStore({ connectionString: url, schema: db.schema, timeout: TIMEOUT, cleanupInterval: 0 }, testContext(Date.now, 100, log.logger))
    t.teardown(() => store.close())
    const r = recorder()
    store.bus.subscribe(r)
    await sleep(700)
    t.equal(r.resyncs, 0)
    open = true
    await r.resynced(1)
    t.equal(log.at(40).length, 1, 'one warning for all the attempts')
    const revocation = revocationOf('alice')
    await store.bus.publish(revocation)
    t.same(await r.next(), revocation)
  })

  t.test('a mute server: the connection attempt is bounded', async (t) => {
    const log = bufferLog()
    const pool = new pg.Pool({ connectionString: muteUrl, connectionTimeoutMillis: 600 })
    t.teardown(() => pool.end().catch(() => {}))
    pool.on('error', () => {})
    const bus = new PostgresBus({ pool, query: async () => {}, channel: 'c', log: log.logger, timeout: 200 })
    t.teardown(() => bus.close())
    bus.subscribe(recorder())
    await until('the warning', async () => log.at(40).length === 1 ? true : undefined, 2000)
    t.match(log.lines.find((line) => line.level === 40)?.err, { message: 'no connection and LISTEN within 200 ms' })
  })

  t.test('a connection that comes after the attempt timed out is destroyed', { skip: db.skip }, async (t) => {
    const log = bufferLog()
    let ms = 500
    const pool = new pg.Pool({ connectionString: await proxy(() => ms) })
    t.teardown(() => pool.end())
    const bus = new PostgresBus({ pool, query: async () => {}, channel: 'c', log: log.logger, timeout: 200 })
    t.teardown(() => bus.close())
    const r = recorder()
    bus.subscribe(r)
    await until('the warning', async () => log.at(40).length === 1 ? true : undefined, 2000)
    ms = 0
    await r.resynced(1)
    await until('the late one destroyed', async () => pool.totalCount === 1 ? true : undefined)
    t.equal(pool.totalCount, 1, 'only the listener\'s connection is left')
  })
})
