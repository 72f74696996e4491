import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { conformanceCases, runConformance } from '../../lib/conformance/index.js'
import { MemoryStore, RedisStore, type SessionStore } from '../../lib/index.js'
import { redisServer } from '../helpers/redis.js'

// The one suite, against the memory store and a single Redis. The Cluster runs it in test/stores/redis/cluster.test.ts.

t.test('memory store', async (t) => {
  runConformance((title, fn) => t.test(title, fn), { createStore: (context) => new MemoryStore({}, context) })
})

t.test('conformanceCases lists named cases', async (t) => {
  const cases = conformanceCases({ createStore: (context) => new MemoryStore({}, context) })
  t.ok(cases.length >= 15)
  t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'names are unique')
  t.ok(cases.every((c) => /^[a-z-]+$/.test(c.name)))
})

t.test('redis store', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  const run = randomBytes(4).toString('hex')
  t.teardown(async () => {
    const left = await client.keys(`conf:${run}:*`)
    if (left.length > 0) await client.del(...left)
    await client.quit()
  })
  const prefix = (name: string): string => `conf:${run}:${name}:`
  runConformance((title, fn) => t.test(title, fn), {
    createStore: (context, name) => new RedisStore({ client, prefix: prefix(name) }, context),
    dump: async (_store: SessionStore, name: string) => {
      const keys = await client.keys(prefix(name) + '*')
      const parts = await Promise.all(keys.map(async (key) => {
        const type = await client.type(key)
        const value = type === 'hash' ? await client.hgetall(key) : type === 'zset' ? await client.zrange(key, 0, -1, 'WITHSCORES') : await client.get(key)
        return key + ' ' + JSON.stringify(value)
      }))
      return parts.join('\n')
    }
  })
})
