import { randomBytes } from 'node:crypto'
import t from 'tap'
import { conformanceCases, runConformance } from '../../lib/conformance/index.js'
import { MemoryStore, RedisStore, type SessionStore } from '../../lib/index.js'
import { redisServer } from '../helpers/redis.js'
import { CLIENTS, ioredis } from '../helpers/clients.js'
import type { Redis } from 'ioredis'

// The one suite, against the memory store and a single Redis on every client. The Cluster runs it in test/stores/redis/cluster.test.ts.

t.test('memory store', async (t) => {
  runConformance((title, fn) => t.test(title, fn), { createStore: (context) => new MemoryStore({}, context) })
})

t.test('conformanceCases lists named cases', async (t) => {
  const cases = conformanceCases({ createStore: (context) => new MemoryStore({}, context) })
  t.ok(cases.length >= 15)
  t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'names are unique')
  t.ok(cases.every((c) => /^[a-z-]+$/.test(c.name)))
})

for (const maker of CLIENTS) {
  t.test(`redis store on ${maker.name}`, async (t) => {
    const server = await redisServer(t)
    if (server === undefined) return
    const client = await maker.single(server.url)
    const admin = await ioredis.single(server.url) as Redis
    const run = randomBytes(4).toString('hex')
    t.teardown(async () => {
      const left = await admin.keys(`conf:${run}:*`)
      if (left.length > 0) await admin.del(...left)
      await maker.close(client)
      await ioredis.close(admin)
    })
    const prefix = (name: string): string => `conf:${run}:${name}:`
    runConformance((title, fn) => t.test(title, fn), {
      createStore: (context, name) => new RedisStore({ client, prefix: prefix(name) }, context),
      dump: async (_store: SessionStore, name: string) => {
        const keys = await admin.keys(prefix(name) + '*')
        const parts = await Promise.all(keys.map(async (key) => {
          const type = await admin.type(key)
          const value = type === 'hash' ? await admin.hgetall(key) : type === 'zset' ? await admin.zrange(key, 0, -1, 'WITHSCORES') : await admin.get(key)
          return key + ' ' + JSON.stringify(value)
        }))
        return parts.join('\n')
      }
    })
  })
}
