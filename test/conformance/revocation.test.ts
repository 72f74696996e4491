import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { revocationConformanceCases, runRevocationConformance } from '../../lib/conformance/index.js'
import { MemoryRevocation, RedisRevocation, type RevocationStore, type StoreContext } from '../../lib/index.js'
import { redisCluster, redisServer } from '../helpers/redis.js'

// The revocation suite, against the memory store, Redis (single and a 3-master Cluster) and
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

t.test('redis revocation', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  t.teardown(async () => {
    const left = await client.keys(`conf:${run}:*`)
    if (left.length > 0) await client.del(...left)
    await client.quit()
  })
  runRevocationConformance((title, fn) => t.test(title, fn), {
    createRevocation: (context, name) => new RedisRevocation({ type: 'redis', client, prefix: prefix(name) }, context)
  })
  t.test('with a client of its own', async (t) => {
    runRevocationConformance((title, fn) => t.test(title, fn), {
      createRevocation: (context, name) => new RedisRevocation({ type: 'redis', url: server.url, prefix: prefix('own-' + name) }, context)
    })
  })
})

t.test('redis revocation on a 3-master cluster', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  const client = cluster.client()
  t.teardown(() => client.quit())
  runRevocationConformance((title, fn) => t.test(title, fn), {
    createRevocation: (context, name) => new RedisRevocation({ type: 'redis', client, prefix: prefix(name) }, context)
  })
})
