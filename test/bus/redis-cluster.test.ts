import t from 'tap'
import { Redis, type Cluster } from 'ioredis'
import { RedisBus } from '../../lib/bus/redis.js'
import { keySlot } from '../../lib/bus/redis-sharded.js'
import { newSessionId } from '../../lib/crypto/ids.js'
import { testTag } from '../helpers/ids.js'
import { bufferLog, recorder, revocationOf, sleep } from '../helpers/bus.js'
import { redisCluster, until } from '../helpers/redis.js'

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
    const bus = new RedisBus({ client: c, prefix, timeout: TIMEOUT, log: log.logger, tag: async (userId) => testTag(userId) })
    t.teardown(() => bus.close())
    return bus
  }
  const channelOf = (userId: string, prefix = 'cb:'): string => `${prefix}r:{${testTag(userId)}}`
  /** The port of the master that owns `key`'s slot, as the server says. */
  const ownerOf = async (key: string): Promise<number> => {
    const slot = await adminOf(cluster.nodes[0]?.port as number).cluster('KEYSLOT', key) as number
    const ranges = await adminOf(cluster.nodes[0]?.port as number).cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
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

  /** Another user whose channel lives on the same master as `userId`'s, or on another one. */
  const userBy = async (userId: string, same: boolean, from = 0): Promise<string> => {
    const owner = await ownerOf(channelOf(userId))
    for (let i = from; ; i++) {
      if ((await ownerOf(channelOf(`user${i}`)) === owner) === same && `user${i}` !== userId) return `user${i}`
    }
  }
  const nodeId = async (port: number): Promise<string> => await adminOf(port).cluster('MYID') as string

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
    const id = newSessionId(testTag('alice'))
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

  t.test('a Cluster client with a keyPrefix: published and subscribed under it', async (t) => {
    const options = { keyPrefix: 'kp:' }
    const make = async (): Promise<Cluster> => {
      const c = cluster.client(options)
      c.on('error', () => {})
      t.teardown(() => c.disconnect())
      await until('ready', async () => c.status === 'ready' ? true : undefined)
      return c
    }
    const bus = busOn(t, await make())
    const publisher = busOn(t, await make())
    const r = recorder()
    bus.subscribe(r)
    bus.follow(newSessionId(testTag('alice')))
    const channel = 'kp:' + channelOf('alice')
    await until('subscribed', async () => await shardSubscribers(await ownerOf(channel), channel) === 1 ? true : undefined)
    const revocation = revocationOf('alice')
    await publisher.publish(revocation)
    t.same(await r.next(), revocation)
    await bus.close()
    // The next test counts connections from a clean slate.
    await until('closed', async () => await allConnections() === 0 ? true : undefined)
  })

  t.test('follows are counted per channel; masters connected as needed', async (t) => {
    const bus = busOn(t, await client(t))
    const publisher = busOn(t, await client(t))
    const [a, b] = await usersOnTwoMasters()
    const [ownerA, ownerB] = [await ownerOf(channelOf(a)), await ownerOf(channelOf(b))]
    const anon = newSessionId(undefined)
    const offA1 = bus.follow(newSessionId(testTag(a)))
    const offA2 = bus.follow(newSessionId(testTag(a)))
    t.equal(await allConnections(), 0, 'follows without a subscriber open nothing')
    const r = recorder()
    const unsubscribe = bus.subscribe(r)
    const offB = bus.follow(newSessionId(testTag(b)))
    const offAnon = bus.follow(anon)
    const anonChannel = `cb:r:{${anon}}`
    const ownerAnon = await ownerOf(anonChannel)
    await until('all subscribed', async () => await shardSubscribers(ownerA, channelOf(a)) === 1 &&
      await shardSubscribers(ownerB, channelOf(b)) === 1 && await shardSubscribers(ownerAnon, anonChannel) === 1
      ? true
      : undefined)
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
    const near = await userBy(b, true)
    const offNear = bus.follow(newSessionId(testTag(near)))
    await until('a second channel on b\'s master', async () => await shardSubscribers(ownerB, channelOf(near)) === 1 ? true : undefined)
    t.equal(await connections(ownerB), 1, 'on the same connection')
    offNear()
    await until('left', async () => await shardSubscribers(ownerB, channelOf(near)) === 0 ? true : undefined)
    t.equal(await shardSubscribers(ownerB, channelOf(b)), 1, 'its neighbour stays')
    offB()
    offAnon()
    await until('all closed', async () => await allConnections() === 0 ? true : undefined)
    await Promise.all([bus.close(), bus.close()])
    bus.follow(newSessionId(testTag(a)))
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
    bus.follow(newSessionId(testTag('alice')))
    await until('subscribed', async () => await shardSubscribers(owner, channel) === 1 ? true : undefined)
    await r.resynced(1)
    t.same(r.resyncKeys, [[testTag('alice')]], 'a channel heard for the first time resyncs its user')
    const server = cluster.servers.get(owner)
    const near = await userBy('alice', true)
    await server?.stop()
    await until('the outage noticed', async () => log.at(40).length === 1 ? true : undefined)
    bus.follow(newSessionId(testTag(near))) // during the outage, on the master that is down
    await sleep(300)
    await server?.start()
    await r.resynced(2)
    t.equal(r.resyncKeys[1], undefined, 'after the outage, everything')
    t.equal(await shardSubscribers(owner, channel), 1, 'subscribed again')
    t.equal(await shardSubscribers(owner, channelOf(near)), 1, 'with what was followed meanwhile')
    const after = revocationOf('alice')
    await until('the publisher back', () => publisher.publish(after).then(() => true), 20_000)
    t.same(await r.next(), after)
    await sleep(200)
    t.equal(r.resyncs, 2, 'once per recovery')
    t.equal(log.at(40).length, 1, 'one warning for the outage')
    t.same(log.at(30), ['redis revocation bus: sharded subscription restored'])
    await bus.close()
    await until('closed', async () => await allConnections() === 0 ? true : undefined)
  })

  t.test('a slot migrated to another master: the subscriber follows it there', async (t) => {
    const log = bufferLog()
    const c = await client(t)
    const bus = busOn(t, c, log, 'mig:')
    const stale = busOn(t, await client(t), bufferLog(), 'mig:')
    const publisher = busOn(t, await client(t), bufferLog(), 'mig:')
    const user = 'migrating'
    const channel = channelOf(user, 'mig:')
    const from = await ownerOf(channel)
    const to = cluster.nodes.map(({ port }) => port).find((port) => port !== from) as number
    const r = recorder()
    bus.subscribe(r)
    bus.follow(newSessionId(testTag(user)))
    await until('subscribed', async () => await shardSubscribers(from, channel) === 1 ? true : undefined)
    const slot = await adminOf(from).cluster('KEYSLOT', channel) as number
    const [fromId, toId] = [await nodeId(from), await nodeId(to)]
    await adminOf(to).cluster('SETSLOT', slot, 'IMPORTING', fromId)
    await adminOf(from).cluster('SETSLOT', slot, 'MIGRATING', toId)
    for (const port of [to, from, ...cluster.nodes.map((n) => n.port).filter((p) => p !== to && p !== from)]) {
      await adminOf(port).cluster('SETSLOT', slot, 'NODE', toId)
    }
    t.teardown(async () => {
      // Back where it was, for the tests after this one.
      await adminOf(from).cluster('SETSLOT', slot, 'IMPORTING', toId)
      await adminOf(to).cluster('SETSLOT', slot, 'MIGRATING', fromId)
      for (const port of [from, to, ...cluster.nodes.map((n) => n.port).filter((p) => p !== to && p !== from)]) {
        await adminOf(port).cluster('SETSLOT', slot, 'NODE', fromId)
      }
    })
    await r.resynced(2)
    t.equal(await shardSubscribers(to, channel), 1, 'subscribed on the new owner')
    t.equal(await shardSubscribers(from, channel), 0, 'and no longer on the old one')
    const s = recorder()
    stale.subscribe(s)
    stale.follow(newSessionId(testTag(user)))
    await s.resynced(1).catch(() => {})
    await until('the stale client subscribed too', async () => await shardSubscribers(to, channel) === 2 ? true : undefined)
    const after = revocationOf(user)
    await until('published', () => publisher.publish(after).then(() => true))
    t.same(await r.next(), after)
    t.same(await s.next(), after)
    t.equal(r.resyncs, 2)
  })

  t.test('a master that does not answer: SSUBSCRIBE is bounded, retried, and heard once it answers', async (t) => {
    const log = bufferLog()
    const bus = busOn(t, await client(t), log, 'mute:')
    const channel = channelOf('paused', 'mute:')
    const owner = await ownerOf(channel)
    const server = cluster.servers.get(owner)
    const r = recorder()
    bus.subscribe(r)
    server?.pause()
    t.teardown(() => server?.resume())
    bus.follow(newSessionId(testTag('paused')))
    await until('the warning', async () => log.at(40).length === 1 ? true : undefined, 5000)
    t.match(log.lines.find((line) => line.level === 40)?.err, { message: /no answer to SSUBSCRIBE within 500 ms/ })
    server?.resume()
    await r.resynced(1)
    t.equal(await shardSubscribers(owner, channel), 1)
  })

  t.test('a Cluster client not connected yet: placed once its slot map is known', async (t) => {
    const c = cluster.client({ lazyConnect: true })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    const log = bufferLog()
    const bus = busOn(t, c, log, 'lazy:')
    const r = recorder()
    bus.subscribe(r)
    bus.follow(newSessionId(testTag('lazy')))
    await until('the warning', async () => log.at(40).length === 1 ? true : undefined, 5000)
    await sleep(400) // a retry or two while the client is not connected
    t.equal(r.resyncs, 0)
    // Not awaited: when its ready check fails, ioredis retries, and this promise never settles.
    c.connect().catch(() => {})
    await r.resynced(1)
    const channel = channelOf('lazy', 'lazy:')
    t.equal(await shardSubscribers(await ownerOf(channel), channel), 1)
  })

  t.test('a Cluster client that lost its connections, its slot map kept: a loss retried, no crash', async (t) => {
    const c = await client(t)
    const log = bufferLog()
    const bus = busOn(t, c, log, 'lost:')
    const r = recorder()
    bus.subscribe(r)
    // ioredis empties its pool of node connections and keeps the slot map.
    c.disconnect()
    await until('the pool emptied', async () => c.nodes().length === 0 ? true : undefined, 5000)
    t.ok(c.slots.some((owners) => owners !== undefined), 'the slot map is still there')
    bus.follow(newSessionId(testTag('lost')))
    await until('the warning', async () => log.at(40).length === 1 ? true : undefined, 5000)
    t.match(log.lines.find((line) => line.level === 40), { err: { message: /no connection to copy/ } }, 'said why')
    const channel = channelOf('lost', 'lost:')
    t.equal(await shardSubscribers(await ownerOf(channel), channel), 0, 'nothing subscribed')
    c.connect().catch(() => {})
    await r.resynced(1)
    t.equal(await shardSubscribers(await ownerOf(channel), channel), 1, 'heard once the client is back')
  })
}
