import t from 'tap'
import { Redis } from 'ioredis'
import { RedisBus } from '../../lib/bus/redis.js'
import { encode } from '../../lib/bus/codec.js'
import { RedisStore } from '../../lib/stores/redis/store.js'
import { RedisRevocation } from '../../lib/stores/revocation/redis.js'
import { bufferLog, recorder, revocationOf, sleep } from '../helpers/bus.js'
import { testContext } from '../helpers/postgres.js'
import { redisServer, until } from '../helpers/redis.js'

// The Redis bus on a single server of our own, which the tests stop, start and pause.

const TIMEOUT = 300
/** The bound of the buses and stores of the tests that are not about it: on a loaded machine a round trip can take 300 ms. */
const PATIENT = 5000
const NAME = 'fastify-user-sessions:revoked'

const server = await redisServer(t, { own: true })
if (server !== undefined) {
  const admin = new Redis(server.url, { retryStrategy: () => 50 })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())

  const numsub = async (channel: string): Promise<number> => ((await admin.pubsub('NUMSUB', channel)) as [string, number])[1]
  const subscribers = async (): Promise<number> =>
    ((await admin.client('LIST')) as string).split('\n').filter((line) => line.includes(`name=${NAME}`)).length
  interface Tap { teardown: (fn: () => unknown) => void }
  const client = (t: Tap): Redis => {
    const redis = new Redis(server.url)
    redis.on('error', () => {})
    t.teardown(() => redis.disconnect())
    return redis
  }
  const busOn = (t: Tap, redis: Redis, log = bufferLog(), prefix = 'bus:', timeout = PATIENT): RedisBus => {
    const bus = new RedisBus({ client: redis, prefix, timeout, log: log.logger })
    t.teardown(() => bus.close())
    return bus
  }

  t.test('two buses on two clients hear each other; subscribed only while someone listens', async (t) => {
    const one = busOn(t, client(t))
    const two = busOn(t, client(t))
    t.equal(one.follow('anything')(), undefined, 'follow does nothing on a single server')
    await sleep(100)
    t.equal(await numsub('bus:revoked'), 0, 'nothing subscribed before the first subscriber')
    t.equal(await subscribers(), 0, 'no subscriber connection either')
    const a = recorder()
    const b = recorder()
    const offA = one.subscribe(a)
    const offB = two.subscribe(b)
    const offB2 = two.subscribe(recorder())
    await until('both subscribed', async () => await numsub('bus:revoked') === 2 ? true : undefined)
    t.equal(await subscribers(), 2, 'one connection per bus, whatever its subscribers')
    const revocation = revocationOf('alice', 2)
    await one.publish(revocation)
    t.same(await a.next(), revocation, 'the publisher\'s own instance hears it')
    t.same(await b.next(), revocation, 'and the other one')
    const back = revocationOf(undefined)
    await two.publish(back)
    t.same(await a.next(), back)
    await one.publish({ ids: [], reason: 'delete', at: 0 })
    offA()
    offB()
    // The first bus's connection closes in its own time (QUIT, then the server drops it).
    await until('the first bus\'s connection gone', async () => await subscribers() === 1 ? true : undefined)
    t.equal(await numsub('bus:revoked'), 1, 'still one subscriber on the second bus')
    offB2()
    await until('both unsubscribed', async () => await numsub('bus:revoked') === 0 && await subscribers() === 0 ? true : undefined)
    t.equal(a.heard.length, 2, 'a revocation that names nobody is not sent')
    const again = recorder()
    const off = one.subscribe(again)
    await until('subscribed again', async () => await numsub('bus:revoked') === 1 ? true : undefined)
    await two.publish(revocation)
    t.same(await again.next(), revocation, 'a new subscription after the last one closed')
    off()
  })

  t.test('malformed messages and a throwing subscriber', async (t) => {
    const log = bufferLog()
    const bus = busOn(t, client(t), log, 'bad:')
    bus.subscribe({ revoked () { throw new Error('boom') }, resync () {} })
    const r = recorder()
    bus.subscribe(r)
    await until('subscribed', async () => await numsub('bad:revoked') === 1 ? true : undefined)
    for (const garbage of ['', 'nope', '{"i":["x"],"r":"delete","a":1}', '[1]', encode(revocationOf('a')).slice(1)]) {
      await admin.publish('bad:revoked', garbage)
    }
    const good = revocationOf('alice')
    await admin.publish('bad:revoked', encode(good))
    t.same(await r.next(), good)
    t.equal(r.heard.length, 1, 'only the good one is heard')
    t.equal(log.at(20).filter((m) => m.includes('malformed')).length, 5)
    t.same(log.at(50), ['redis revocation bus: a subscriber threw'])
  })

  t.test('an oversize revocation goes out user-wide', async (t) => {
    const bus = busOn(t, client(t), bufferLog(), 'big:')
    const r = recorder()
    bus.subscribe(r)
    await until('subscribed', async () => await numsub('big:revoked') === 1 ? true : undefined)
    const large = { ...revocationOf('alice', 400), userId: 'alice', except: [revocationOf('alice').ids[0] as string] }
    await bus.publish(large)
    t.same(await r.next(), { ids: [], userId: 'alice', except: large.except, reason: 'delete', at: large.at })
    const small = new RedisBus({ client: client(t), prefix: 'big:', log: bufferLog().logger, maxBytes: 200 })
    t.teardown(() => small.close())
    await small.publish({ ...revocationOf('bob', 10), userId: 'bob' })
    t.same((await r.next()).ids, [], 'maxBytes is an option')
  })

  t.test('the stores make their bus on first use and close it', async (t) => {
    const context = testContext(Date.now)
    const store = new RedisStore({ url: server.url, prefix: 'st:', timeout: PATIENT }, context)
    const revocations = new RedisRevocation({ type: 'redis', url: server.url, prefix: 'rv:', timeout: PATIENT }, context)
    t.equal(store.bus, store.bus)
    t.equal(revocations.bus, revocations.bus)
    const r = recorder()
    const q = recorder()
    store.bus.subscribe(r)
    revocations.bus.subscribe(q)
    await until('subscribed', async () => await numsub('st:revoked') === 1 && await numsub('rv:revoked') === 1 ? true : undefined)
    const revocation = revocationOf('alice')
    await store.bus.publish(revocation)
    await revocations.bus.publish(revocation)
    t.same(await r.next(), revocation)
    t.same(await q.next(), revocation)
    await store.close()
    await revocations.close()
    await until('closed', async () => await numsub('st:revoked') === 0 && await subscribers() === 0 ? true : undefined)
    await new RedisStore({ url: server.url, timeout: TIMEOUT }, context).close()
    await new RedisRevocation({ type: 'redis', url: server.url, timeout: TIMEOUT }, context).close()
  })

  t.test('close is idempotent, leaves no connection, and nothing opens after it', async (t) => {
    const redis = client(t)
    const bus = busOn(t, redis)
    bus.subscribe(recorder())
    await until('subscribed', async () => await subscribers() === 1 ? true : undefined)
    await Promise.all([bus.close(), bus.close()])
    await bus.close()
    await until('the connection gone', async () => await subscribers() === 0 ? true : undefined)
    bus.subscribe(recorder())
    await sleep(100)
    t.equal(await subscribers(), 0, 'a subscriber after close opens nothing')
    t.equal(redis.status, 'ready', 'the store\'s client is left alone')
    const early = busOn(t, client(t))
    early.subscribe(recorder())
    await early.close()
    await until('closed while its connection was on its way', async () => await subscribers() === 0 ? true : undefined)
    await sleep(100)
    t.equal(await subscribers(), 0, 'and nothing reconnects')
  })

  t.test('publish fails with the typed error, within the timeout, while Redis is down or mute', async (t) => {
    const bus = busOn(t, client(t), bufferLog(), 'bus:', TIMEOUT)
    await bus.publish(revocationOf('alice'))
    server.pause()
    let start = performance.now()
    await t.rejects(bus.publish(revocationOf('alice')), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
    let ms = performance.now() - start
    t.ok(ms >= TIMEOUT - 20 && ms < TIMEOUT + 700, `a mute server: bounded by the timeout (${Math.round(ms)} ms)`)
    server.resume()
    await server.stop()
    start = performance.now()
    await t.rejects(bus.publish(revocationOf('alice')), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
    ms = performance.now() - start
    t.ok(ms < TIMEOUT + 700, `a stopped server: fails within the timeout (${Math.round(ms)} ms)`)
    await server.start()
  })

  t.test('Redis restarted while subscribed: resubscribed, one resync, later messages heard', async (t) => {
    const log = bufferLog()
    const publisher = busOn(t, client(t))
    const bus = busOn(t, client(t), log)
    const r = recorder()
    const s = recorder()
    bus.subscribe(r)
    bus.subscribe(s)
    await until('subscribed', async () => await numsub('bus:revoked') === 1 ? true : undefined)
    await r.resynced(1)
    t.same(r.resyncKeys, [undefined], 'the first SUBSCRIBE resyncs too: what came before it was not heard')
    await server.stop()
    await until('the outage noticed', async () => log.at(40).length === 1 ? true : undefined)
    await server.start()
    await r.resynced(2)
    t.equal(s.resyncs, 2, 'every subscriber resyncs')
    t.equal(await numsub('bus:revoked'), 1, 'subscribed again')
    const after = revocationOf('alice')
    await until('the publisher back', () => publisher.publish(after).then(() => true))
    t.same(await r.next(), after)
    await sleep(200)
    t.equal(r.resyncs, 2, 'once per recovery')
    t.equal(log.at(40).length, 1, 'one warning for the outage')
    t.same(log.at(30), ['redis revocation bus: subscription restored'])
    await server.crash()
    await server.start()
    await r.resynced(3)
    t.equal(log.at(40).length, 2, 'one more for the next outage')
  })

  t.test('a subscriber whose server is down when it subscribes resyncs once it connects', async (t) => {
    const log = bufferLog()
    const redis = client(t)
    await server.stop()
    const bus = busOn(t, redis, log)
    const r = recorder()
    bus.subscribe(r)
    await until('the failed connection noticed', async () => log.at(40).length === 1 ? true : undefined)
    await server.start()
    await r.resynced(1)
    t.equal(await numsub('bus:revoked'), 1)
    t.equal(log.at(40).length, 1)
  })
}
