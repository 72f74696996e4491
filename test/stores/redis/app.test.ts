import t from 'tap'
import { Redis } from 'ioredis'
import { buildApp, cookieOf, testClock } from '../../helpers/app.js'
import { keysBesideMarkers, redisServer } from '../../helpers/redis.js'

// The plugin with store: 'redis' through Fastify: the flows of the issue, and what a request
// costs in Redis round trips, on a server of our own.

const server = await redisServer(t, { own: true })
if (server !== undefined) {
  const admin = new Redis(server.url)
  t.teardown(() => admin.quit())

  // Round trips are the socket reads Redis made (INFO's total_reads_processed): the commands a
  // client sends in one tick arrive together. MONITOR lists the commands clients sent (it tells
  // them from those run inside scripts, source "lua"); INFO commandstats counts both.
  // Nothing may reach the server between MONITOR's OK and ioredis's switch to monitoring (a
  // microtask later): a line in that gap meets an empty command queue, and ioredis emits an
  // error. So admin is ready (its ready check's INFO done) before MONITOR is sent.
  await admin.ping()
  const monitor = await admin.monitor()
  monitor.on('error', (err: Error) => t.fail(`MONITOR connection: ${err.message}`))
  t.teardown(() => monitor.disconnect())
  let seen: Array<{ command: string, source: string }> = []
  let marker: (() => void) | undefined
  let published: { count: number, done: () => void } | undefined
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0] === 'echo' && args[1] === 'measured') return marker?.()
    const command = (args[0] as string).toLowerCase()
    seen.push({ command, source })
    if (command === 'publish' && published !== undefined && --published.count === 0) published.done()
  })
  const commandstats = async (): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {}
    for (const [, name, calls] of (await admin.info('commandstats')).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
      if (!/^(info|config|echo|monitor)/.test(name as string)) counts[name as string] = Number(calls)
    }
    return counts
  }
  const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await admin.info('stats'))?.[1])
  /** What `fn` costs Redis; `announced`: the revocations it announces (PUBLISH), which the response does not wait for. */
  const measure = async (fn: () => Promise<unknown>, announced = 0): Promise<{ trips: number, sent: string[], counts: Record<string, number> }> => {
    await admin.config('RESETSTAT')
    seen = []
    const announcements = announced === 0 ? undefined : new Promise<void>((resolve) => { published = { count: announced, done: resolve } })
    const before = await reads()
    await fn()
    if (announcements !== undefined) {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${announced} announcement(s) expected, not sent within 5 s`)), 5000) })
      await Promise.race([announcements, late]).finally(() => clearTimeout(timer))
    }
    published = undefined
    const done = new Promise<void>((resolve) => { marker = resolve })
    await admin.echo('measured')
    await done
    // Less the ECHO and the INFO of this count (the INFO of `before` was read before it).
    const trips = await reads() - before - 2
    const sent = seen.filter((c) => c.source !== 'lua' && !/^(config|info)$/.test(c.command)).map((c) => c.command)
    return { trips, sent, counts: await commandstats() }
  }

  t.test('login, devices, logout everywhere, on Redis', async (t) => {
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, prefix: 'flow:' } })
    t.teardown(() => app.close())
    const cookies: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' }, headers: { 'user-agent': 'device ' + i } })
      cookies.push(cookieOf(res) as string)
    }
    const bob = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
    t.same((await app.inject({ url: '/me', headers: { cookie: cookies[0] } })).json().userId, 'alice')
    const devices = (await app.inject({ url: '/devices', headers: { cookie: cookies[0] } })).json() as Array<{ userAgent: string }>
    t.same(devices.map((d) => d.userAgent), ['device 0', 'device 1', 'device 2'])
    t.same((await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: cookies[2] } })).json(), { deleted: 2 })
    t.equal((await app.inject({ url: '/me', headers: { cookie: cookies[0] } })).json().userId, null)
    t.equal((await app.inject({ url: '/me', headers: { cookie: cookies[2] } })).json().userId, 'alice')
    t.same((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: cookies[2] } })).json(), { deleted: 1 })
    for (const cookie of cookies) t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
    t.equal((await app.inject({ url: '/me', headers: { cookie: bob } })).json().userId, 'bob', 'other users are untouched')
    t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie: bob } })).statusCode, 200)
    t.same(await keysBesideMarkers(admin, 'flow:*'), ['flow:owner-key'], 'nothing left behind but the owner key, and the markers of the deleted sessions')
  })

  t.test('round trips: a read costs one, a write two', async (t) => {
    const clock = testClock()
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, prefix: 'rt:' }, clock: clock.now, ttl: 3600 })
    t.teardown(() => app.close())
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' })) as string
    await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
    clock.tick(361_000)
    await app.inject({ url: '/counter', headers: { cookie } }) // the scripts loaded (a refresh is a script)
    await app.inject({ method: 'POST', url: '/login', payload: { user: 'warm-up' } }) // the owner key read, once per process
    const cases: Array<[string, () => Promise<unknown>, number]> = [
      ['GET without a cookie', () => app.inject('/'), 0],
      ['read-only GET with a session', () => app.inject({ url: '/counter', headers: { cookie } }), 1],
      ['write with a session (load + patch)', () => app.inject({ method: 'POST', url: '/counter', headers: { cookie } }), 2],
      ['first write, no cookie (insert)', () => app.inject({ method: 'POST', url: '/counter' }), 1],
      ['read-only GET after 10% of ttl (load + throttled refresh)', async () => { clock.tick(361_000); return await app.inject({ url: '/counter', headers: { cookie } }) }, 2],
      ['read-only GET right after the refresh', () => app.inject({ url: '/counter', headers: { cookie } }), 1]
    ]
    for (const [what, fn, expected] of cases) {
      const { trips, sent, counts } = await measure(fn)
      t.comment(`${what}: ${trips} round trip(s), sent ${sent.join(' ')}; commandstats delta ${JSON.stringify(counts)}`)
      t.equal(trips, expected, what)
    }
    // A write of data is no script: one HSET, whose reply says it found a live session (the
    // deadline is the one the read found, still ahead).
    const write = await measure(() => app.inject({ method: 'POST', url: '/counter', headers: { cookie } }))
    t.same(write.sent, ['hgetall', 'hset'], 'a write of data sends no script')
    t.same(Object.keys(write.counts).sort(), ['hgetall', 'hset'])
    const login = await measure(() => app.inject({ method: 'POST', url: '/login', payload: { user: 'dave' }, headers: { cookie } }), 1)
    t.comment(`login from an anonymous session: ${login.trips} round trip(s), sent ${login.sent.join(' ')}`)
    // Load; insert the new; delete the old; the route's set. The old id's announcement is sent
    // without waiting for it: in a batch of its own, or with the route's set.
    t.ok(login.trips === 4 || login.trips === 5, 'four round trips waited for, and the announcement')
    t.same(login.sent, ['hgetall', 'evalsha', 'evalsha', 'publish', 'hset'])
    const user = cookieOf((await app.inject({ method: 'POST', url: '/login', payload: { user: 'dave' } }))) as string
    for (const [what, url, method] of [['devices page', '/devices', 'GET'], ['logout everywhere', '/logout-everywhere', 'POST']] as const) {
      const { trips } = await measure(() => app.inject({ method, url, headers: { cookie: user } }), what === 'devices page' ? 0 : 1)
      t.comment(`${what}: ${trips}`)
      // Log out everywhere announces the revocation: one PUBLISH more.
      t.equal(trips, what === 'devices page' ? 2 : 3, what)
    }
  })

  t.test('an anonymous session\'s hash holds no ip or user agent; a signed-in one\'s does', async (t) => {
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, prefix: 'client:' } })
    t.teardown(() => app.close())
    const headers = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' }
    const hashOf = async (cookie: string): Promise<Record<string, string>> => {
      const { id } = (await app.inject({ url: '/me', headers: { cookie } })).json() as { id: string }
      const dot = id.indexOf('.')
      return await admin.hgetall(dot === -1 ? `client:s:{${id}}` : `client:s:{${id.slice(0, dot)}}${id.slice(dot)}`)
    }
    const anonymous = cookieOf(await app.inject({ method: 'POST', url: '/counter', headers })) as string
    const fields = await hashOf(anonymous)
    t.same(Object.keys(fields).sort(), ['d:counter', 'e', 'l', 'm'], 'last seen, deadline, the fixed text in one piece, the data')
    t.notOk(Object.values(fields).some((v) => v.includes('127.0.0.1') || v.includes('Chrome')))
    const signedIn = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' }, headers })) as string
    const stored = await hashOf(signedIn)
    let text = stored.m as string
    for (let n = 1; stored['m' + n] !== undefined; n++) text += stored['m' + n] as string
    t.ok(text.includes('127.0.0.1' + headers['user-agent']), 'ip and user agent, for the devices page')
  })

  t.test('app.close() closes a client made from url, never one it was given', async (t) => {
    const given = new Redis(server.url)
    t.teardown(() => given.quit())
    const clients = async (): Promise<number> => (await admin.client('LIST') as string).trim().split('\n').length
    const before = await clients()
    const mine = await buildApp({ store: 'redis', storeOptions: { client: given, prefix: 'own:' } })
    const made = await buildApp({ store: 'redis', storeOptions: { url: server.url, prefix: 'own:' } })
    await made.inject({ method: 'POST', url: '/counter' })
    await mine.inject({ method: 'POST', url: '/counter' })
    t.equal(await clients(), before + 2)
    await made.close()
    await mine.close()
    t.equal(await clients(), before + 1, 'the url client is gone')
    t.equal(given.status, 'ready')
    t.equal(await given.ping(), 'PONG', 'the given client still works')
  })
}
