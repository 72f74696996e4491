import { randomBytes } from 'node:crypto'
import t from 'tap'
import { revocationConformanceCases, runRevocationConformance } from '../../lib/conformance/index.js'
import { MemoryRevocation, RedisRevocation, type RevocationStore, type StoreContext } from '../../lib/index.js'
import { redisCluster, redisServer } from '../helpers/redis.js'
import { CLIENTS, ioredis } from '../helpers/clients.js'
import type { Redis } from 'ioredis'

// The revocation suite, against the memory store, Redis (single and a 3-master Cluster, on every client) and
// one written here, as a user would: two Maps on the context's clock.

t.test('memory revocation', async (t) => {
  runRevocationConformance((title, fn) => t.test(title, fn), { createRevocation: (context) => new MemoryRevocation({ type: 'memory' }, context) })
})

class MapRevocation implements RevocationStore {
  readonly #denied = new Map<string, number>()
  readonly #users = new Map<string, { generation: number, keep: Set<string>, until: number }>()
  readonly #clock: () => number

  constructor (context: StoreContext) {
    this.#clock = context.clock
  }

  async isRevoked (id: string, userId: string | undefined, generation: number): Promise<boolean> {
    if ((this.#denied.get(id) ?? 0) > this.#clock()) return true
    const user = userId === undefined ? undefined : this.#users.get(userId)
    return user !== undefined && user.until > this.#clock() && generation < user.generation && !user.keep.has(id)
  }

  async generation (userId: string): Promise<number> {
    const user = this.#users.get(userId)
    return user !== undefined && user.until > this.#clock() ? user.generation : 0
  }

  async revoke (id: string, until: number): Promise<boolean> {
    if ((this.#denied.get(id) ?? 0) > this.#clock()) return false
    this.#denied.set(id, until)
    return true
  }

  async revokeAll (userId: string, except: readonly string[], until: number): Promise<void> {
    // The clock, so that the generation stays above one whose entry expired and was forgotten.
    const generation = Math.max((this.#users.get(userId)?.generation ?? 0) + 1, this.#clock())
    this.#users.set(userId, { generation, keep: new Set(except), until })
  }
}

t.test('a user-written revocation store', async (t) => {
  runRevocationConformance((title, fn) => t.test(title, fn), { createRevocation: (context) => new MapRevocation(context) })
})

t.test('revocationConformanceCases lists named cases, and closes a store that fails one', async (t) => {
  let closed = 0
  const broken: RevocationStore = {
    isRevoked: async () => false,
    generation: async () => 0,
    revoke: async () => true,
    revokeAll: async () => {},
    close: async () => { closed++ }
  }
  const cases = revocationConformanceCases({ createRevocation: () => broken })
  t.ok(cases.length >= 7)
  t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'names are unique')
  t.ok(cases.every((c) => /^[a-z-]+$/.test(c.name)))
  await t.rejects((cases.find((c) => c.name === 'deny-list') as { run: () => Promise<void> }).run())
  t.equal(closed, 1)
})

const run = randomBytes(4).toString('hex')
const prefix = (name: string): string => `conf:${run}:${name}:`

for (const maker of CLIENTS) {
  t.test(`redis revocation on ${maker.name}`, async (t) => {
    const server = await redisServer(t)
    if (server === undefined) return
    const client = await maker.single(server.url)
    const admin = await ioredis.single(server.url) as Redis
    t.teardown(async () => {
      const left = await admin.keys(`conf:${run}:*`)
      if (left.length > 0) await admin.del(...left)
      await maker.close(client)
      await ioredis.close(admin)
    })
    runRevocationConformance((title, fn) => t.test(title, fn), {
      createRevocation: (context, name) => new RedisRevocation({ type: 'redis', client, prefix: prefix(maker.name + name) }, context)
    })
  })
}

t.test('redis revocation with a client of its own', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  runRevocationConformance((title, fn) => t.test(title, fn), {
    createRevocation: (context, name) => new RedisRevocation({ type: 'redis', url: server.url, prefix: prefix('own-' + name) }, context)
  })
})

t.test('redis revocation on a 3-master cluster', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  for (const maker of CLIENTS) {
    t.test(maker.name, async (t) => {
      const client = await maker.cluster(cluster.nodes.slice(0, 1))
      t.teardown(() => maker.close(client))
      runRevocationConformance((title, fn) => t.test(title, fn), {
        createRevocation: (context, name) => new RedisRevocation({ type: 'redis', client, prefix: prefix(maker.name + name) }, context)
      })
    })
  }
})
