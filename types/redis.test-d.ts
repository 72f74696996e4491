// Type tests of the Redis store and the conformance suite, checked by `npm run test:types`.
import { Cluster, Redis } from 'ioredis'
import { RedisStore, redisStore, type RedisStoreOptions, type SessionStore, type StoreContext } from 'fastify-user-sessions'
import { conformanceCases, runConformance, type ConformanceCase, type ConformanceOptions } from 'fastify-user-sessions/conformance'

declare const context: StoreContext

const options: RedisStoreOptions = { client: new Redis({ lazyConnect: true }), prefix: 'app:', timeout: 500 }
const store: SessionStore = new RedisStore(options, context)
redisStore({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }) }, context)
redisStore({ url: 'redis://127.0.0.1:6379', serializer: { stringify: JSON.stringify, parse: JSON.parse } }, context)
// @ts-expect-error a serializer needs parse too
redisStore({ url: 'redis://127.0.0.1:6379', serializer: { stringify: JSON.stringify } }, context)
// @ts-expect-error the timeout is in milliseconds, a number
redisStore({ url: 'redis://127.0.0.1:6379', timeout: '2s' }, context)

const suite: ConformanceOptions = { createStore: (ctx, name) => new RedisStore({ client: new Redis(), prefix: name }, ctx), manySessions: 100 }
const cases: ConformanceCase[] = conformanceCases(suite)
for (const c of cases) await c.run()
runConformance((title: string, fn: () => Promise<void>) => { console.log(title, fn) }, { createStore: () => store })
// @ts-expect-error createStore is required
runConformance(() => {}, {})
