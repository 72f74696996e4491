import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis, type Cluster } from 'ioredis'
import { runConformance } from '../../../lib/conformance/index.js'
import { RedisStore, type StoredSession } from '../../../lib/index.js'
import { seedRedisOwnerKey, testTag } from '../../helpers/ids.js'
import { hashSecret, newSecret, newSessionId } from '../../../lib/crypto/ids.js'
import { buildApp, cookieOf } from '../../helpers/app.js'
import { keysBesideMarkers, redisCluster, type RedisClusterNodes } from '../../helpers/redis.js'
import { CLIENTS } from '../../helpers/clients.js'

// A 3-master Redis Cluster of our own: the conformance suite, then proof that a user's sessions
// are found and deleted completely wherever their slot lives.

const cluster = await redisCluster(t) as RedisClusterNodes
if (cluster !== undefined) {
  const client: Cluster = cluster.client()
  t.teardown(() => client.quit())
  const run = randomBytes(4).toString('hex')
  const context = { clock: Date.now, log: console as never, maxSessionsPerUser: 1000 }

  /** Every key under `pattern` on every master, straight from each node (beside markers: `markers: false`). */
  const keysOnNodes = async (pattern: string, { markers = true } = {}): Promise<Map<number, string[]>> => {
    const found = new Map<number, string[]>()
    for (const node of cluster.nodes) {
      const redis = new Redis(node.port, node.host)
      found.set(node.port, markers ? await redis.keys(pattern) : await keysBesideMarkers(redis, pattern))
      redis.disconnect()
    }
    return found
  }

  /** The port of the master that owns the slot of `tag`. */
  const ownerOf = async (tag: string): Promise<number> => {
    const slot = await client.cluster('KEYSLOT', tag) as number
    const ranges = await client.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
    return (ranges.find(([from, to]) => slot >= from && slot <= to) as [number, number, [string, number]])[2][1]
  }

  for (const maker of CLIENTS) {
    t.test(`conformance on a 3-master cluster, ${maker.name}`, async (t) => {
      const own = await maker.cluster(cluster.nodes.slice(0, 1))
      t.teardown(() => maker.close(own))
      const prefix = (name: string): string => `conf:${run}:${maker.name}:${name}:`
      runConformance((title, fn) => t.test(title, fn), {
        createStore: (context, name) => new RedisStore({ client: own, prefix: prefix(name) }, context),
        dump: async (_store, name) => JSON.stringify([...(await keysOnNodes(prefix(name) + '*')).values()])
      })
    })
  }

  t.test('a user\'s sessions are listed and deleted completely, wherever the slot lives', async (t) => {
    const prefix = `whole:${run}:`
    const first = cluster.nodes[0]?.port
    await seedRedisOwnerKey(client, prefix)
    const store = new RedisStore({ client, prefix }, context)
    const users: string[] = []
    const owners = new Set<number>()
    for (let i = 0; owners.size < 3; i++) {
      const owner = await ownerOf(testTag('user-' + i))
      if (owners.has(owner)) continue
      owners.add(owner)
      users.push('user-' + i)
    }
    t.ok(users.length === 3, 'one user on each master, two of them away from the node the client first talks to')
    const now = Date.now()
    for (const userId of users) {
      const sessions: StoredSession[] = Array.from({ length: 300 }, () => ({
        id: newSessionId(testTag(userId)),
        secretHash: hashSecret(newSecret()),
        userId,
        data: { userId },
        createdAt: now,
        lastSeenAt: now,
        expiresAt: now + 60_000,
        authenticatedAt: now,
        ip: undefined,
        userAgent: undefined
      }))
      t.same(await Promise.all(sessions.map((s) => store.insert(s))), sessions.map(() => true))
    }
    for (const userId of users) {
      const owner = await ownerOf(testTag(userId))
      const keys = await keysOnNodes(`${prefix}*{${testTag(userId)}}*`)
      t.equal(keys.get(owner)?.length, 301, `${userId}: 300 sessions and the index on the owner node only`)
      t.equal([...keys.values()].flat().length, 301)
      t.equal((await store.getAll(userId)).length, 300, `${userId} listed completely (owner ${owner === first ? 'is' : 'is not'} the first node)`)
    }
    const [kept] = await store.getAll(users[1] as string) as [StoredSession]
    t.equal(await store.deleteAll(users[1] as string, [kept.id]), 299)
    t.equal(await store.deleteAll(users[2] as string, []), 300)
    t.same((await store.getAll(users[1] as string)).map((s) => s.id), [kept.id])
    t.same(await store.getAll(users[2] as string), [])
    t.equal((await store.getAll(users[0] as string)).length, 300, 'the other users keep theirs')
    const left = await keysOnNodes(`${prefix}*{${testTag(users[2] as string)}}*`, { markers: false })
    t.same([...left.values()].flat(), [], 'nothing of the user is left on any node, index included, beside the markers of the deleted sessions')
    t.equal([...(await keysOnNodes(`${prefix}*{${testTag(users[1] as string)}}*`, { markers: false })).values()].flat().length, 2)
  })

  t.test('the plugin on a cluster: anonymous session, login across slots, devices, logout everywhere', async (t) => {
    const app = await buildApp({ store: 'redis', storeOptions: { client, prefix: `app:${run}:` } })
    t.teardown(() => app.close())
    const anon = await app.inject({ method: 'POST', url: '/counter' })
    const anonCookie = cookieOf(anon) as string
    t.equal((await app.inject({ method: 'POST', url: '/counter', headers: { cookie: anonCookie } })).json().counter, 2)
    const logins: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' }, headers: i === 0 ? { cookie: anonCookie } : {} })
      t.equal(res.statusCode, 200)
      logins.push(cookieOf(res) as string)
    }
    t.equal((await app.inject({ method: 'POST', url: '/counter', headers: { cookie: anonCookie } })).json().counter, 1, 'the anonymous session died at login')
    const devices = await app.inject({ url: '/devices', headers: { cookie: logins[0] } })
    t.equal(devices.json().length, 3)
    t.same((await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: logins[1] } })).json(), { deleted: 3 })
    for (const cookie of logins) t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
    t.equal(client.status, 'ready', 'the app does not close a client it was given')
  })
}
