import t from 'tap'
import { Redis, type Cluster } from 'ioredis'
import { RedisBus } from '../lib/bus/redis.js'
import { keySlot } from '../lib/bus/redis-sharded.js'
import { newSessionId, userKey } from '../lib/ids.js'
import { bufferLog, recorder, revocationOf, sleep } from './helpers/bus.js'
import { redisCluster, until } from './helpers/redis.js'

// The Redis bus on a Cluster of three masters started for this file: sharded pub/sub, one
// channel per user on the slot of the user's keys, one subscriber connection per master that
// owns a followed channel.

const TIMEOUT = 500
const NAME = 'fastify-user-sessions:revoked'
const cluster = await redisCluster(t)

if (cluster !== undefined) {
  const admins = new Map<number, Redis>()
  for (const { port } of cluster.nodes) {
    const admin = new Redis(port, '127.0.0.1', { retryStrategy: () => 100 })
    admin.on('error', () => {})
    admins.set(port, admin)
  }
  t.teardown(() => { for (const admin of admins.values()) admin.disconnect() })
  const adminOf = (port: number): Redis => admins.get(port) as Redis
  interface Tap { teardown: (fn: () => unknown) => void }

  const clients: Cluster[] = []
  const client = async (t: Tap): Promise<Cluster> => {
    const c = cluster.client()
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    await until('the cluster client ready', async () => c.status === 'ready' ? true : undefined)
    clients.push(c)
    return c
  }
  const busOn = (t: Tap, c: Cluster, log = bufferLog(), prefix = 'cb:'): RedisBus => {
    const bus = new RedisBus({ client: c, prefix, timeout: TIMEOUT, log: log.logger })
    t.teardown(() => bus.close())
    return bus
  }
  const channelOf = (userId: string, prefix = 'cb:'): string => `${prefix}r:{${userKey(userId)}}`
  /** The port of the master that owns `key`'s slot, as the server says. */
  const ownerOf = async (key: string): Promise<number> => {
    const slot = await adminOf(cluster.nodes[0]?.port as number).cluster('KEYSLOT', key) as number
    const ranges = await adminOf(cluster.nodes[0]?.port as number).cluster('SLOTS') as Array<[number, number, [string, number]]>
    return (ranges.find(([from, to]) => slot >= from && slot <= to) as [number, number, [string, number]])[2][1]
  }
  const shardSubscribers = async (port: number, channel: string): Promise<number> =>
    ((await adminOf(port).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]
  const connections = async (port: number): Promise<number> =>
    ((await adminOf(port).client('LIST')) as string).split('\n').filter((line) => line.includes(`name=${NAME}`)).length
  const allConnections = async (): Promise<number> => {
    let n = 0
    for (const { port } of cluster.nodes) n += await connections(port)
    return n
  }
  const spublishes = async (port: number): Promise<number> => {
    const stats = await adminOf(port).info('commandstats')
    return Number(/cmdstat_spublish:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  }
  /** Users whose channels live on distinct masters. */
  const usersOnTwoMasters = async (): Promise<[string, string]> => {
    const first = 'alice'
    const owner = await ownerOf(channelOf(first))
    for (let i = 0; ; i++) {
      if (await ownerOf(channelOf(`user${i}`)) !== owner) return [first, `user${i}`]
    }
  }

  t.test('the slot of a key, as Redis computes it', async (t) => {
    const admin = adminOf(cluster.nodes[0]?.port as number)
    for (const key of ['plain', 'a{tag}b', '{}x', 'x{}{y}', '{user1000}.following', 'é{ü}', channelOf('alice'), 'a{b', '}{a}']) {
      t.equal(keySlot(key), await admin.cluster('KEYSLOT', key), key)
    }
  })

  t.test('a message for a user reaches the follower of that user\'s session, through that user\'s shard only', async (t) => {
    const subscriberSide = busOn(t, await client(t))
    const publisherSide = busOn(t, await client(t))
    const channel = channelOf('alice')
    const owner = await ownerOf(channel)
    const r = recorder()
    subscriberSide.subscribe(r)
    await sleep(100)
    t.equal(await allConnections(), 0, 'a subscriber with nothing followed opens nothing')
    const id = newSessionId('alice')
    const unfollow = subscriberSide.follow(id)
    await until('subscribed on the owner', async () => await shardSubscribers(owner, channel) === 1 ? true : undefined)
    t.equal(await connections(owner), 1, 'one connection, to the owner')
    t.equal(await allConnections(), 1, 'and none elsewhere')
    const before = new Map<number, number>()
    for (const { port } of cluster.nodes) before.set(port, await spublishes(port))
    const revocation = { ids: [id], reason: 'delete' as const, at: Date.now() }
    await publisherSide.publish(revocation)
    t.same(await r.next(), revocation)
    for (const { port } of cluster.nodes) {
      t.equal(await spublishes(port) - (before.get(port) as number), port === owner ? 1 : 0,
        port === owner ? 'SPUBLISH ran on the owner of the user\'s slot' : `and not on ${port}`)
    }
    await publisherSide.publish(revocationOf('bob'))
    const anonymous = revocationOf(undefined)
    await publisherSide.publish(anonymous)
    const again = revocationOf('alice')
    await publisherSide.publish(again)
    t.same(await r.next(), again, 'the next message heard is alice\'s: bob\'s and the anonymous one are not followed')
    t.equal(r.heard.length, 2)
    unfollow()
    unfollow()
    await until('left', async () => await shardSubscribers(owner, channel) === 0 && await allConnections() === 0 ? true : undefined)
  })

  t.test('follows are counted per channel; masters connected as needed', async (t) => {
    const bus = busOn(t, await client(t))
    const publisher = busOn(t, await client(t))
    const [a, b] = await usersOnTwoMasters()
    const [ownerA, ownerB] = [await ownerOf(channelOf(a)), await ownerOf(channelOf(b))]
    const anon = newSessionId(undefined)
    const offA1 = bus.follow(newSessionId(a))
    const offA2 = bus.follow(newSessionId(a))
    t.equal(await allConnections(), 0, 'follows without a subscriber open nothing')
    const r = recorder()
    const unsubscribe = bus.subscribe(r)
    const offB = bus.follow(newSessionId(b))
    const offAnon = bus.follow(anon)
    const anonChannel = `cb:r:{${anon}}`
    const ownerAnon = await ownerOf(anonChannel)
    await until('all subscribed', async () => await shardSubscribers(ownerA, channelOf(a)) === 1 &&
      await shardSubscribers(ownerB, channelOf(b)) === 1 && await shardSubscribers(ownerAnon, anonChannel) === 1 ? true : undefined)
    t.equal(await allConnections(), new Set([ownerA, ownerB, ownerAnon]).size, 'one connection per master concerned')
    const anonymous = { ids: [anon], reason: 'destroy' as const, at: Date.now() }
    await publisher.publish(anonymous)
    t.same(await r.next(), anonymous)
    const wide = { ids: [], userId: b, reason: 'deleteAll' as const, at: Date.now() }
    await publisher.publish(wide)
    t.same(await r.next(), wide)
    offA1()
    await sleep(100)
    t.equal(await shardSubscribers(ownerA, channelOf(a)), 1, 'a second follower keeps the channel')
    offA2()
    await until('a left', async () => await shardSubscribers(ownerA, channelOf(a)) === 0 ? true : undefined)
    t.equal(await shardSubscribers(ownerB, channelOf(b)), 1, 'b still followed')
    unsubscribe()
    await until('all closed', async () => await allConnections() === 0 ? true : undefined)
    const r2 = recorder()
    bus.subscribe(r2)
    await until('resubscribed with what is still followed', async () =>
      await shardSubscribers(ownerB, channelOf(b)) === 1 && await shardSubscribers(ownerAnon, anonChannel) === 1 ? true : undefined)
    t.equal(await shardSubscribers(ownerA, channelOf(a)), 0)
    offB()
    offAnon()
    await until('all closed', async () => await allConnections() === 0 ? true : undefined)
    await Promise.all([bus.close(), bus.close()])
    bus.follow(newSessionId(a))
    bus.subscribe(recorder())
    await sleep(100)
    t.equal(await allConnections(), 0, 'nothing opens after close')
  })

  t.test('the owner of a followed channel restarted: SSUBSCRIBEd again, one resync, later messages heard', async (t) => {
    const log = bufferLog()
    const bus = busOn(t, await client(t), log)
    const publisher = busOn(t, await client(t))
    const channel = channelOf('alice')
    const owner = await ownerOf(channel)
    const r = recorder()
    bus.subscribe(r)
    bus.follow(newSessionId('alice'))
    await until('subscribed', async () => await shardSubscribers(owner, channel) === 1 ? true : undefined)
    const server = cluster.servers.get(owner)
    await server?.stop()
    await sleep(500)
    await server?.start()
    await r.resynced(1)
    t.equal(await shardSubscribers(owner, channel), 1, 'subscribed again')
    const after = revocationOf('alice')
    await until('the publisher back', () => publisher.publish(after).then(() => true), 20_000)
    t.same(await r.next(), after)
    await sleep(200)
    t.equal(r.resyncs, 1, 'once per recovery')
    t.equal(log.at(40).length, 1, 'one warning for the outage')
    t.same(log.at(30), ['redis revocation bus: sharded subscription restored'])
    await bus.close()
    await until('closed', async () => await allConnections() === 0 ? true : undefined)
  })
}
