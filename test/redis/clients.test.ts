import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createCluster } from 'redis'
import { newSessionId } from '../../lib/crypto/ids.js'
import { clientKind, toHash } from '../../lib/redis/client.js'
import { RedisBus } from '../../lib/bus/redis.js'
import { CookieStore, RedisStore } from '../../lib/index.js'
import { buildApp, cookieOf, logSink } from '../helpers/app.js'
import { bufferLog, recorder, revocationOf } from '../helpers/bus.js'
import { CLIENTS, nodeRedis2, nodeRedis3, type RedisClientMaker } from '../helpers/clients.js'
import { redisCluster, redisReplicated, redisSentinel, redisServer, until } from '../helpers/redis.js'
import { clientFromUrl, RedisConnection } from '../../lib/redis/connection.js'

// What is particular to each client library: recognised by shape, refused otherwise; node-redis's
// bus (single, Cluster, Sentinel); own connections closed with the app, the user's never; an
// unreachable Redis at start is one warning line. The contract suites run on every client in
// test/conformance/ and test/stores/redis/cluster.test.ts.

const NAME = 'fastify-user-sessions:revoked'
const context = { clock: Date.now, log: bufferLog().logger, maxSessionsPerUser: 100 }

t.test('the client kind is recognised by what the object is; anything else is refused naming the three', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  for (const maker of CLIENTS) {
    const client = await maker.single(server.url)
    t.ok(clientKind(client)?.startsWith(maker.name.startsWith('node-redis') ? 'node-redis-client' : 'ioredis'), maker.name)
    await maker.close(client)
  }
  for (const wrong of [{}, { sendCommand () {} }, { evalsha () {}, pipeline () {} }, 'redis://x', null]) {
    t.equal(clientKind(wrong), undefined)
    await t.rejects(buildApp({ store: 'redis', storeOptions: { client: wrong as object } }),
      { message: /"storeOptions.client": must be an ioredis or iovalkey client \(Redis, Cluster\) or a node-redis client \(createClient, createCluster, createSentinel\)/ })
  }
})

t.test('hash replies: a RESP2 flat array, an object, a RESP3 Map; nothing else', async (t) => {
  t.same({ ...toHash(['a', '1', 'b', '2']) }, { a: '1', b: '2' })
  t.same({ ...toHash({ a: '1' }) }, { a: '1' })
  t.same({ ...toHash(new Map([['a', '1']])) }, { a: '1' })
  t.same({ ...toHash(null) }, {})
})

/** Connections named as the bus names its subscribers, on the server at `port`. */
async function subscribers (admin: Redis): Promise<number> {
  return ((await admin.client('LIST')) as string).split('\n').filter((line) => line.includes(`name=${NAME}`)).length
}

for (const maker of [nodeRedis2, nodeRedis3]) {
  t.test(`the bus on a single server, ${maker.name}: heard across clients, resubscribed after a restart, closed`, async (t) => {
    const server = await redisServer(t, { own: true })
    if (server === undefined) return
    const admin = new Redis(server.url, { retryStrategy: () => 50 })
    admin.on('error', () => {})
    t.teardown(() => admin.disconnect())
    const one = await maker.single(server.url)
    const two = await maker.single(server.url)
    t.teardown(() => Promise.all([maker.close(one), maker.close(two)]))
    const log = bufferLog()
    const publisher = new RedisBus({ client: one, prefix: 'nb:', timeout: 5000, log: log.logger })
    const bus = new RedisBus({ client: two, prefix: 'nb:', timeout: 5000, log: log.logger })
    const r = recorder()
    const off = bus.subscribe(r)
    await r.resynced(1)
    t.equal(await subscribers(admin), 1, 'one subscriber connection of its own, named')
    const revocation = revocationOf('alice', 2)
    await publisher.publish(revocation)
    t.same(await r.next(), revocation)
    await server.stop()
    await server.start()
    await r.resynced(2)
    const after = revocationOf('bob')
    await until('the publisher back', () => publisher.publish(after).then(() => true, () => undefined))
    t.same(await r.next(), after, 'heard after the restart')
    t.equal(log.at(40).length, 1, 'one warning for the outage')
    off()
    await bus.close()
    await publisher.close()
    await until('the subscriber connection closed', async () => await subscribers(admin) === 0 ? true : undefined)
    t.ok((one as { isOpen: boolean }).isOpen && (two as { isOpen: boolean }).isOpen, 'the users\' clients are left open')
  })
}

t.test('the bus on a Cluster, node-redis: sharded, a follower hears its user\'s channel', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  for (const maker of [nodeRedis2, nodeRedis3]) {
    const one = await maker.cluster(cluster.nodes.slice(0, 1))
    const two = await maker.cluster(cluster.nodes.slice(1, 2))
    t.teardown(() => Promise.all([maker.close(one), maker.close(two)]))
    const publisher = new RedisBus({ client: one, prefix: 'nc:', timeout: 5000, log: bufferLog().logger })
    const bus = new RedisBus({ client: two, prefix: 'nc:', timeout: 5000, log: bufferLog().logger })
    const r = recorder()
    bus.subscribe(r)
    // Four users on three masters: two share one, so that leaving one channel there is an SUNSUBSCRIBE.
    const unfollows: Array<() => void> = []
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const revocation = revocationOf(user)
      unfollows.push(bus.follow(revocation.ids[0] as string))
      await until(`${user}'s channel heard`, async () => r.resyncKeys.length > 0 ? true : undefined)
      r.resyncKeys.length = 0
      await publisher.publish(revocation)
      t.same(await r.next(), revocation, `${maker.name}: ${user}`)
    }
    for (const unfollow of unfollows) unfollow()
    await bus.close()
    await publisher.close()
  }
})

t.test('Sentinel, node-redis: the store and the bus through createSentinel', async (t) => {
  const setup = await redisSentinel(t)
  if (setup === undefined) return
  const client = await nodeRedis2.sentinel(setup.sentinels, setup.name)
  t.teardown(() => nodeRedis2.close(client))
  const app = await buildApp({ store: 'redis', storeOptions: { client, prefix: 'ns:', waitForReplicas: 1 } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ann' } })
  t.equal(res.statusCode, 200, res.body)
  const cookie = cookieOf(res) as string
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'ann')
  t.equal(await app.sessions.deleteAll('ann'), 1, 'a revocation acknowledged by the replica')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
  const bus = new RedisBus({ client, prefix: 'ns:', timeout: 5000, log: bufferLog().logger })
  const r = recorder()
  bus.subscribe(r)
  await r.resynced(1)
  const revocation = revocationOf('ann')
  await bus.publish(revocation)
  t.same(await r.next(), revocation)
  await bus.close()
})

async function ownConnections (t: Test, maker: RedisClientMaker): Promise<void> {
  const server = await redisServer(t)
  if (server === undefined) return
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  const count = async (): Promise<number> => ((await admin.client('LIST')) as string).trim().split('\n').length
  const before = await count()
  const client = await maker.single(server.url)
  t.teardown(() => maker.close(client))
  const app = await buildApp({ store: 'redis', storeOptions: { client, prefix: `own:${maker.name}:`, waitForReplicas: 0 } })
  const store = new RedisStore({ client, prefix: 'x:', waitForReplicas: 1, timeout: 300 }, context)
  const bus = store.bus
  bus.subscribe(recorder())
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'u' } })
  t.equal(res.statusCode, 200)
  await until('the subscriber and the revocation connection up', async () => await count() >= before + 3 ? true : undefined)
  await app.close()
  await store.close()
  await until('only the user\'s connection left', async () => await count() === before + 1 ? true : undefined)
  t.equal(await count(), before + 1, 'the store closed its own connections, not the user\'s')
  t.equal(clientKind(client) === 'ioredis' ? (client as Redis).status : String((client as { isReady: boolean }).isReady), clientKind(client) === 'ioredis' ? 'ready' : 'true')
}

for (const maker of [nodeRedis2, CLIENTS[0] as RedisClientMaker]) {
  t.test(`own connections (WAIT's, the subscriber's) are closed with the store, ${maker.name}; the user's client never`, (t) => ownConnections(t, maker))
}

t.test('an unreachable Redis at start: the app starts, with one clear warning line', async (t) => {
  const server = await redisServer(t, { own: true })
  if (server === undefined) return
  await server.stop()
  for (const [what, options] of [['url', { url: server.url }], ['node-redis client', { client: 'node-redis' }], ['ioredis client', { client: 'ioredis' }]] as const) {
    const sink = logSink('info')
    let client: object | undefined
    if ('client' in options) {
      if (options.client === 'ioredis') {
        const redis = new Redis(server.url, { lazyConnect: true })
        redis.on('error', () => {})
        client = redis
      } else {
        const { createClient } = await import('redis')
        const redis = createClient({ url: server.url, socket: { reconnectStrategy: 100 } })
        redis.on('error', () => {})
        redis.connect().catch(() => {})
        client = redis
      }
    }
    const storeOptions = client === undefined ? { ...options, timeout: 300 } : { client, timeout: 300 }
    const app = await buildApp({ store: 'redis', storeOptions: storeOptions as { url: string } }, sink.logger)
    await app.ready()
    const warnings = sink.lines.filter((line) => line.level === 40).map((line) => line.msg)
    t.same(warnings, ['redis session store: Redis did not answer at start; requests that need it answer 503 until it does'], what)
    await app.close()
    if (client instanceof Redis) client.disconnect()
    else if (client !== undefined) await nodeRedis2.close(client)
  }
})

t.test('a client that is closed: calls fail at once, on a single server and on a Cluster', async (t) => {
  const server = await redisServer(t)
  const cluster = await redisCluster(t)
  if (server === undefined || cluster === undefined) return
  t.equal(clientKind({ sendCommand () {}, isOpen: true }), undefined, 'a node-redis look-alike without the rest')
  for (const client of [await nodeRedis2.single(server.url), await nodeRedis2.cluster(cluster.nodes.slice(0, 1))]) {
    const store = new RedisStore({ client, timeout: 300 }, context)
    await nodeRedis2.close(client)
    await t.rejects(store.getAll('u'), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /connection is down/ })
    await store.close()
  }
})

t.test('a node-redis Cluster still discovering its slots: calls wait for it, within the timeout', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  const client = createCluster({ rootNodes: cluster.nodes.slice(0, 1).map(({ host, port }) => ({ url: `redis://${host}:${port}` })) })
  client.on('error', () => {})
  t.teardown(() => nodeRedis2.close(client))
  const store = new RedisStore({ client, prefix: 'discovering:', timeout: 5000 }, context)
  // connect() opens the Cluster at once; its slot map comes with the first node's answer.
  const connected = client.connect()
  t.equal(client.isOpen && client.masters.length === 0, true, 'open, no slot map yet')
  const id = newSessionId(undefined)
  t.equal(await store.get(id), undefined, 'the read waited for the slot map, then ran')
  await connected
  t.equal(await store.delete(id), false)
  await store.close()
})

t.test('a url without ioredis installed: a node-redis client of the store\'s own; neither: a message naming them', async (t) => {
  const server = await redisServer(t, { own: true })
  if (server === undefined) return
  t.throws(() => clientFromUrl(server.url, 300, { ioredis: 'no-such-ioredis', redis: 'no-such-redis' }),
    { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /npm install ioredis, or redis/ })
  const log = bufferLog()
  const redis = new RedisConnection(clientFromUrl(server.url, 300, { ioredis: 'no-such-ioredis', redis: 'redis' }), 300, log.logger, true)
  t.equal(redis.redis.kind, 'node-redis')
  await redis.ready('redis session store')
  t.equal(await redis.call(() => redis.send(['ping'])), 'PONG')
  await server.stop()
  await until('the outage noticed', async () => log.at(40).length === 1 ? true : undefined)
  await server.start()
  await until('the connection back', async () => log.at(30).length === 1 ? true : undefined)
  t.same(log.at(40), ['redis session store: connection error'], 'one warning')
  t.same(log.at(30), ['redis session store: connection restored'])
  t.equal(await redis.call(() => redis.send(['ping'])), 'PONG')
  await redis.close()
  t.equal((redis.client as { isOpen: boolean }).isOpen, false, 'closed: it was the store\'s')
})

t.test('node-redis on a server with a replica: waitForReplicas on a connection of the store\'s own', async (t) => {
  const setup = await redisReplicated(t)
  if (setup === undefined) return
  const client = await nodeRedis2.single(setup.master.url)
  t.teardown(() => nodeRedis2.close(client))
  const app = await buildApp({ store: 'redis', storeOptions: { client, prefix: 'nw:', waitForReplicas: 1 } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'wes' } })
  const cookie = cookieOf(res) as string
  t.equal(await app.sessions.deleteAll('wes'), 1, 'acknowledged by the replica')
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
})

t.test('the sharded bus on node-redis: a subscriber connection killed is made again, resynced, heard', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  const client = await nodeRedis2.cluster(cluster.nodes.slice(0, 1))
  t.teardown(() => nodeRedis2.close(client))
  const log = bufferLog()
  const bus = new RedisBus({ client, prefix: 'nk:', timeout: 2000, log: log.logger })
  t.teardown(() => bus.close())
  const r = recorder()
  bus.subscribe(r)
  const revocation = revocationOf('kim')
  bus.follow(revocation.ids[0] as string)
  await r.resynced(1)
  for (const { port } of cluster.nodes) {
    const admin = new Redis(port, '127.0.0.1')
    await admin.client('KILL', 'TYPE', 'pubsub')
    admin.disconnect()
  }
  await r.resynced(2)
  t.same(log.at(40), ['redis revocation bus: sharded subscriber connection error'])
  await bus.publish(revocation)
  t.same(await r.next(), revocation, 'heard on the new connection')
})

t.test('the cookie store passes ready() to its revocation store, when it has one', async (t) => {
  const store = new CookieStore({}, { ...context, secrets: ['a-secret-that-is-long-enough-for-the-store'], cookieName: 'sid' })
  await store.ready()
  t.pass()
})

t.test('no Redis client is imported by the package: only types, and createRequire where a url must make one', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs')
  const lib = new URL('../../lib/', import.meta.url)
  const files = readdirSync(lib, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'))
  const imports = files.filter((f) => /^import (?!type )[^\n]*from '(ioredis|redis|iovalkey)'/m.test(readFileSync(new URL(f, lib), 'utf8')))
  t.same(imports, [])
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  t.same(Object.keys(pkg.dependencies).filter((name) => /redis|valkey/.test(name)), [], 'no Redis client in dependencies')
  t.same(pkg.peerDependenciesMeta.ioredis, { optional: true })
  t.same(pkg.peerDependenciesMeta.redis, { optional: true })
})
