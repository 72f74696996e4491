import t from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { RedisStore } from '../../../lib/index.js'
import { newSessionId } from '../../../lib/crypto/ids.js'
import { testTag } from '../../helpers/ids.js'
import { buildApp, cookieOf, logSink } from '../../helpers/app.js'
import { redisServer } from '../../helpers/redis.js'
import { LIBRARIES, nodeRedis6 } from '../../helpers/clients.js'

// Faults against a real redis-server of our own: stopped (connections refused), paused with
// SIGSTOP (connections open, no answer), and back again, without restarting the app; stopped
// and restarted on a client of the store's own and on a given client of each library.

const TIMEOUT = 300
const SLACK = 700 // a loaded CI machine; the bound itself is TIMEOUT

const server = await redisServer(t, { own: true })
if (server !== undefined) {
  let unhandled = 0
  const onUnhandled = (): void => { unhandled++ }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T, ms: number }> => {
    const start = performance.now()
    const value = await fn()
    return { value, ms: performance.now() - start }
  }

  /** Polls until a request with `cookie` answers 200; the client reconnects on its own schedule. */
  const backUp = async (app: Awaited<ReturnType<typeof buildApp>>, cookie: string): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      if ((await app.inject({ url: '/me', headers: { cookie } })).statusCode === 200) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error('Redis did not come back')
  }

  for (const maker of [undefined, ...LIBRARIES, nodeRedis6]) {
    const kind = maker === undefined ? 'url' : 'client'
    t.test(`redis stopped and restarted (${maker === undefined ? 'a client made from url' : `a given ${maker.name} client with default options`})`, async (t) => {
      const sink = logSink('debug')
      const given = maker === undefined ? undefined : await maker.single(server.url)
      t.teardown(async () => { if (given !== undefined) await maker?.close(given) })
      const storeOptions = { timeout: TIMEOUT, prefix: `fault-${(maker?.name ?? 'url').replace(/\W/g, '-')}:`, ...(given === undefined ? { url: server.url } : { client: given }) }
      const app = await buildApp({ store: 'redis', storeOptions }, sink.logger)
      t.teardown(() => app.close())
      const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
      const cookie = cookieOf(login) as string

      await server.stop()
      t.equal((await app.inject({ url: '/me', headers: { cookie } })).statusCode, 503, 'the outage is seen')
      const requests = await timed(() => Promise.all(Array.from({ length: 5 }, () => app.inject({ url: '/me', headers: { cookie } }))))
      for (const res of requests.value) {
        t.equal(res.statusCode, 503)
        t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
      }
      t.ok(requests.ms < TIMEOUT, `once the connection is known to be lost, requests fail without waiting for the bound (${Math.round(requests.ms)} ms)`)
      const plain = await timed(() => app.inject({ url: '/', headers: { cookie } }))
      t.equal(plain.value.statusCode, 200)
      t.ok(plain.ms < TIMEOUT, `a route that does not touch the session answers without waiting (${plain.ms.toFixed(1)} ms)`)
      t.equal((await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })).statusCode, 503)
      await t.rejects(app.sessions.deleteAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
      if (given instanceof Redis) t.equal((given as unknown as { offlineQueue: unknown[] }).offlineQueue.length, 0, 'nothing waits in the client\'s offline queue')

      await server.start()
      await backUp(app, cookie)
      const again = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
      t.equal(again.statusCode, 200, 'works again without restarting the app')
      t.equal((await app.inject({ url: '/me', headers: { cookie: cookieOf(again) } })).json().userId, 'alice')
      if (kind === 'url') {
        t.same(sink.lines.filter((l) => l.level === 40 && /^redis session store/.test(l.msg as string)).map((l) => l.msg),
          ['redis session store: connection lost'], 'one warning per outage')
        t.ok(sink.lines.some((l) => l.msg === 'redis session store: connection restored'))
      }
      t.notOk(sink.text().includes(login.json().id), 'no session id in the logs')
    })
  }

  t.test('redis paused (connections open, no answer): bounded, then back with the data', async (t) => {
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, timeout: TIMEOUT, prefix: 'pause:' } })
    t.teardown(() => app.close())
    const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
    const cookie = cookieOf(login) as string
    server.pause()
    try {
      const me = await timed(() => app.inject({ url: '/me', headers: { cookie } }))
      t.equal(me.value.statusCode, 503)
      t.match(me.value.json(), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /no answer from Redis within 300 ms/ })
      t.ok(me.ms >= TIMEOUT - 5 && me.ms < TIMEOUT + SLACK, `failed at the bound (${Math.round(me.ms)} ms)`)
      const plain = await timed(() => app.inject('/'))
      t.ok(plain.value.statusCode === 200 && plain.ms < TIMEOUT, 'other routes are not slowed')
    } finally {
      server.resume()
    }
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'carol', 'the session is still there')
  })

  t.test('closing a store while Redis is down or paused returns within the bound', async (t) => {
    const log = pino({ level: 'silent' })
    const context = { clock: Date.now, log, maxSessionsPerUser: 10 }
    const paused = new RedisStore({ url: server.url, timeout: TIMEOUT }, context)
    t.equal(await paused.get(newSessionId(testTag('x'))), undefined)
    server.pause()
    const closing = await timed(() => paused.close())
    server.resume()
    t.ok(closing.ms < TIMEOUT + SLACK, `paused: ${Math.round(closing.ms)} ms`)

    await server.stop()
    const down = new RedisStore({ url: server.url, timeout: TIMEOUT }, context)
    const late = new RedisStore({ url: server.url, timeout: TIMEOUT }, context)
    const lazy = new Redis(server.url, { lazyConnect: true })
    lazy.on('error', () => {})
    const lazyStore = new RedisStore({ client: lazy, timeout: TIMEOUT }, context)
    const waiting = t.rejects(down.get(newSessionId(undefined)), { code: 'FST_SESSION_STORE_UNAVAILABLE' }, 'a call that waited for the connection ends at the bound')
    const lateCall = t.rejects(late.get(newSessionId(undefined)), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
    await t.rejects(lazyStore.getAll('x'), { code: 'FST_SESSION_STORE_UNAVAILABLE' }, 'a lazy client that cannot connect')
    await waiting
    await lateCall
    const closed = await timed(() => down.close())
    t.ok(closed.ms < TIMEOUT, 'down: without waiting for the bound')
    await lazyStore.close()
    lazy.disconnect()

    await server.start()
    let found: unknown = null
    for (let i = 0; i < 100 && found !== undefined; i++) {
      found = await late.get(newSessionId(undefined)).catch(() => new Promise((resolve) => setTimeout(resolve, 50, null)))
    }
    t.equal(found, undefined, 'a store whose first calls timed out works once Redis is up')
    await late.close()
  })

  t.test('no unhandled rejection through all of it', async (t) => {
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(unhandled, 0)
  })
}
