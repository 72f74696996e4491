import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisRevocation } from '../../../lib/index.js'
import { buildApp, cookieOf, testClock } from '../../helpers/app.js'
import { redisCluster, redisServer, until } from '../../helpers/redis.js'
import { revocationFlows } from '../../helpers/revocation-flows.js'

// Revocation for the cookie store in a real Redis (never mocked), and in a 3-master Redis
// Cluster, where every script must keep to the slot of one user.

const run = randomBytes(4).toString('hex')
let n = 0
const prefix = (): string => `rev:${run}:${n++}:`

t.test('against a single Redis', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  t.teardown(() => client.quit())

  t.test('the flows', async (t) => {
    revocationFlows(t, () => ({ type: 'redis', client, prefix: prefix() }), { fakeClockExpires: false })
  })

  t.test('keys: one hash tag per user; each expires with the last session it can revoke', async (t) => {
    const p = prefix()
    const clock = testClock()
    const app = await buildApp({ store: 'cookie', clock: clock.now, ttl: 600, absoluteTtl: 3600, storeOptions: { revocation: { type: 'redis', client, prefix: p } } })
    t.teardown(() => app.close())
    const anon = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
    const anonId = (await app.inject({ url: '/me', headers: { cookie: anon } })).json().id as string
    clock.tick(1000)
    const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: 'alice' } })
    const id = login.json().id as string
    clock.tick(1000)
    await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: cookieOf(login) } })
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: cookieOf(login) } })
    const tag = `{${id.split('.')[0] as string}}`
    t.notMatch(tag, Buffer.from('alice').toString('base64url'), 'the tag is not the user id')
    const expected: Record<string, number> = {
      [`${p}rd:{${anonId}}`]: clock.now() - 2000 + 3_600_000,
      [`${p}rd:${tag}.${id.split('.')[1] as string}`]: clock.now() - 1000 + 3_600_000,
      [`${p}rg:${tag}`]: clock.now() + 3_600_000
    }
    t.same((await client.keys(p + '*')).sort(), [...Object.keys(expected), `${p}owner-key`].sort())
    t.equal(Number(await client.call('PEXPIRETIME', `${p}owner-key`)), -1, 'the owner key never expires')
    for (const [key, at] of Object.entries(expected)) t.equal(Number(await client.call('PEXPIRETIME', key)), at, `${key}: at its deadline`)
    t.same(await client.hgetall(`${p}rg:${tag}`), { g: String(clock.now()), ['k:' + id]: '1' })
  })

  t.test('scripts flushed from Redis are sent again', async (t) => {
    const app = await buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'redis', client, prefix: prefix() } } })
    t.teardown(() => app.close())
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
    await client.script('FLUSH')
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice')
  })

  t.test('a past deadline needs no revocation', async (t) => {
    const revocation = new RedisRevocation({ type: 'redis', client }, { clock: Date.now, log: console as never, maxSessionsPerUser: 1 })
    t.equal(await revocation.revoke('A'.repeat(22), Date.now() - 1), false)
    await revocation.close()
  })

  t.test('options are checked, naming the option', async (t) => {
    const cases: Array<[object, RegExp]> = [
      [{}, /"storeOptions.revocation.client": give either a client or a url/],
      [{ client, url: server.url }, /give either a client or a url/],
      [{ client: {} }, /"storeOptions.revocation.client": must be an ioredis or iovalkey client \(Redis, Cluster\) or a node-redis client \(createClient, createCluster, createSentinel\)/],
      [{ client: null }, /"storeOptions.revocation.client"/],
      [{ url: '' }, /"storeOptions.revocation.url": must be a non-empty string/],
      [{ url: 5 }, /"storeOptions.revocation.url"/],
      [{ client, prefix: 'a{b}' }, /"storeOptions.revocation.prefix": must be a string without \{ or \}/],
      [{ client, prefix: 5 }, /"storeOptions.revocation.prefix"/],
      [{ client, timeout: 0 }, /"storeOptions.revocation.timeout": must be a positive integer/],
      [{ client, db: 1 }, /"storeOptions.revocation.db": unknown option; known: type, client, url, prefix, timeout/]
    ]
    for (const [options, message] of cases) {
      await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'redis', ...options } } }),
        { code: 'FST_SESSION_OPTION_INVALID', message })
    }
  })
})

t.test('a Redis of our own: made from a url, down and back, closed with the app', async (t) => {
  const server = await redisServer(t, { own: true })
  if (server === undefined) return
  const admin = new Redis(server.url, { maxRetriesPerRequest: 0 })
  admin.on('error', () => {}) // it reconnects on its own while the server is down
  t.teardown(() => admin.disconnect())
  const clients = async (): Promise<number> => (await admin.client('LIST') as string).trim().split('\n').length
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'redis', url: server.url, timeout: 300 } } })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  t.equal(login.statusCode, 200)
  const cookie = cookieOf(login)
  t.equal(await clients(), 2, 'the store\'s client and ours')

  await server.stop()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const down = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
  t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })).statusCode, 503)

  await server.start()
  let back
  for (let i = 0; i < 100; i++) {
    back = await app.inject({ url: '/me', headers: { cookie } })
    if (back.statusCode === 200) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(back?.json().userId, 'alice', 'back without a restart')
  await app.close()
  await until('the store\'s own client closed with the app', async () => await clients() === 1 ? true : undefined)
  t.pass('the store\'s own client is closed with the app')
})

t.test('against a Redis Cluster: every call keeps to one slot', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  const client = cluster.client()
  t.teardown(() => client.quit())
  revocationFlows(t, () => ({ type: 'redis', client, prefix: prefix() }), { fakeClockExpires: false })
})
