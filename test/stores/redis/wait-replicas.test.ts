import t from 'tap'
import { Redis } from 'ioredis'
import { RedisRevocation, RedisStore, type StoredSession } from '../../../lib/index.js'
import { hashSecret, newSecret, newSessionId } from '../../../lib/crypto/ids.js'
import { newIdFor, seedRedisOwnerKey, testTag } from '../../helpers/ids.js'
import { buildApp, cookieOf } from '../../helpers/app.js'
import { keysBesideMarkers, redisReplicated, type RedisServer } from '../../helpers/redis.js'

// storeOptions.waitForReplicas against a real master and its replica: every revocation
// resolves only once the replica holds it; with the replica frozen (SIGSTOP), a revocation
// fails with a typed 503 that says so, and data writes are not held to it.

const TIMEOUT = 400
const pair = await redisReplicated(t)
if (pair !== undefined) {
  const { master, replica } = pair as { master: RedisServer, replica: RedisServer }
  const context = { clock: Date.now, log: console as never, maxSessionsPerUser: 2 }
  const onReplica = new Redis(replica.port, replica.host)
  t.teardown(() => onReplica.disconnect())
  // The stores here are seeded with TEST_OWNER_KEY, so that `stored` can tag ids at once.
  const onMaster = new Redis(master.port, master.host)
  t.teardown(() => onMaster.disconnect())
  for (const prefix of ['acked:', 'frozen:']) await seedRedisOwnerKey(onMaster, prefix)
  /** The session hashes of `prefix` the replica holds (not the markers of deleted ones), read from the replica itself. */
  const replicaKeys = async (prefix: string): Promise<string[]> => await keysBesideMarkers(onReplica, `${prefix}s:*`)

  const stored = (userId: string | undefined, lastSeenAt = Date.now()): StoredSession => ({
    id: newSessionId(userId === undefined ? undefined : testTag(userId)),
    secretHash: hashSecret(newSecret()),
    userId,
    data: { n: 1 },
    createdAt: lastSeenAt,
    lastSeenAt,
    expiresAt: Date.now() + 60_000,
    authenticatedAt: undefined,
    ip: undefined,
    userAgent: undefined
  })

  t.test('waitForReplicas is checked at registration and names the option', async (t) => {
    for (const bad of [-1, 1.5, '1', null, Number.NaN]) {
      await t.rejects(buildApp({ store: 'redis', storeOptions: { url: master.url, waitForReplicas: bad as number } }),
        { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions\.waitForReplicas": must be a non-negative integer/ }, String(bad))
      await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'redis', url: master.url, waitForReplicas: bad as number } } }),
        { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions\.revocation\.waitForReplicas"/ }, String(bad))
    }
  })

  t.test('every revocation of the Redis store is on the replica once it resolves', async (t) => {
    const prefix = 'acked:'
    const store = new RedisStore({ url: master.url, prefix, timeout: TIMEOUT, waitForReplicas: 1 }, context)
    t.teardown(() => store.close())
    const anonymous = stored(undefined)
    t.equal(await store.insert(anonymous), true)
    const [a, b, c] = [stored('alice', 1), stored('alice', 2), stored('alice', 3)]
    t.equal(await store.insert(a), true)
    t.equal(await store.insert(b), true)
    t.equal(await store.insert(c), true, 'the cap of 2 evicts alice\'s least recently used session')
    t.notOk((await replicaKeys(prefix)).some((key) => key.endsWith(a.id.slice(a.id.indexOf('.')))), 'the eviction is on the replica at once')
    t.equal(await store.delete(b.id), true)
    t.equal(await store.delete(anonymous.id), true)
    t.equal((await replicaKeys(prefix)).length, 1, 'both deletions are on the replica at once')
    t.equal(await store.deleteAll('alice', []), 1)
    t.same(await replicaKeys(prefix), [], 'deleteAll is on the replica at once, without polling')
  })

  t.test('the plugin: logout, logout everywhere and the old id at login are on the replica when they answer', async (t) => {
    const prefix = 'app:'
    const app = await buildApp({ store: 'redis', storeOptions: { url: master.url, prefix, timeout: TIMEOUT, waitForReplicas: 1 } })
    t.teardown(() => app.close())
    const anon = cookieOf(await app.inject({ method: 'POST', url: '/counter' })) as string
    t.equal((await replicaKeys(prefix)).length, 1)
    const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' }, headers: { cookie: anon } })
    t.equal(login.statusCode, 200)
    const keys = await replicaKeys(prefix)
    t.equal(keys.length, 1, 'the anonymous session is gone from the replica when login answers')
    t.equal(keys[0], `${prefix}s:{${login.json().id as string}`.replace('.', '}.'), 'bob\'s session, under its tag')
    const second = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
    t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie: second } })).statusCode, 200)
    t.equal((await replicaKeys(prefix)).length, 1)
    t.same((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: cookieOf(login) as string } })).json(), { deleted: 1 })
    t.same(await replicaKeys(prefix), [])
  })

  t.test('a frozen replica: revocations fail with a typed 503 that says so; data writes do not', async (t) => {
    const prefix = 'frozen:'
    const store = new RedisStore({ url: master.url, prefix, timeout: TIMEOUT, waitForReplicas: 1 }, context)
    t.teardown(() => store.close())
    const app = await buildApp({ store: 'redis', storeOptions: { url: master.url, prefix, timeout: TIMEOUT, waitForReplicas: 1 } })
    t.teardown(() => app.close())
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })) as string
    const first = stored('dave', 1)
    t.equal(await store.insert(first), true)
    t.equal(await store.insert(stored('dave', 2)), true)
    t.equal(await store.insert(stored('gina')), true)
    replica.pause()
    t.teardown(() => replica.resume())
    const notReplicated = { code: 'FST_SESSION_STORE_NOT_REPLICATED', statusCode: 503, message: /only 0 of 1 replicas acknowledged the revocation within 200 ms; Redis applied it, but a failover may undo it/ }
    const res = await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie } })
    t.equal(res.statusCode, 503)
    t.match(res.json(), { code: 'FST_SESSION_STORE_NOT_REPLICATED' })
    const started = Date.now()
    await t.rejects(store.deleteAll('gina', []), notReplicated, 'deleteAll never resolves as if safe')
    t.ok(Date.now() - started < TIMEOUT + 300, 'within the store\'s timeout')
    await t.rejects(store.insert(stored('dave', 3)), notReplicated, 'an insert that evicts at the cap is a revocation')
    t.equal(await store.insert(stored(undefined)), true, 'an anonymous insert does not wait')
    t.equal(await store.patch(first.id, { clear: false, set: { n: 2 }, unset: [], lastSeenAt: Date.now() }), false, 'first was evicted on the master')
    replica.resume()
  })

  t.test('Redis revocation for the cookie store waits for the replica too', async (t) => {
    const prefix = 'rev:'
    const revocation = new RedisRevocation({ type: 'redis', url: master.url, prefix, timeout: TIMEOUT, waitForReplicas: 1 }, context)
    t.teardown(() => revocation.close())
    const id = await newIdFor(revocation, 'erin')
    t.equal(await revocation.revoke(id, Date.now() + 60_000), true)
    await revocation.revokeAll('erin', [], Date.now() + 60_000)
    t.equal((await onReplica.keys(`${prefix}*`)).length, 3, 'the deny entry and the generation (beside the owner key) are on the replica at once')
    replica.pause()
    t.teardown(() => replica.resume())
    await t.rejects(revocation.revoke(newSessionId(undefined), Date.now() + 60_000), { code: 'FST_SESSION_STORE_NOT_REPLICATED' })
    await t.rejects(revocation.revokeAll('erin', [], Date.now() + 60_000), { code: 'FST_SESSION_STORE_NOT_REPLICATED' })
    t.equal(await revocation.isRevoked(id, 'erin', 0), true, 'reads do not wait')
    replica.resume()
  })

  t.test('a store pointed at the replica fails with a typed 503, never a crash', async (t) => {
    const store = new RedisStore({ url: replica.url, prefix: 'ro:', timeout: TIMEOUT, waitForReplicas: 1 }, context)
    t.teardown(() => store.close())
    const id = newSessionId(testTag('frank'))
    await t.rejects(store.delete(id), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /READONLY/ })
  })
}
