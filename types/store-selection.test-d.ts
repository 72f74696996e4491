// Type tests of the store choice (issue 23): a name held in a string compiles, as the docs say
// (`process.env.STORE ?? 'memory'`), its options then checked at run time by the store it names;
// a literal name keeps its own options' type; the known names are a union type.
import Fastify from 'fastify'
import session, { type FastifyUserSessionsOptions, type StoreName } from 'fastify-user-sessions'

function expectType<T> (value: T): T { return value }

const app = Fastify()

const store = process.env.STORE ?? 'memory'
await app.register(session, { store })
await app.register(session, { secret: process.env.SESSION_SECRET, store, storeOptions: { url: process.env.REDIS_URL } })
const maybe: string | undefined = process.env.STORE
await app.register(session, { store: maybe })
const options: FastifyUserSessionsOptions = { store, storeOptions: { table: 'sessions' } }
await app.register(session, options)
// @ts-expect-error a name held in a string still takes the options of a registered store
await app.register(session, { store, storeOptions: { clinet: 'redis://127.0.0.1' } })
// @ts-expect-error a store name is a string
await app.register(session, { store: 42 })

// Literal names keep their options' type.
await app.register(session, { store: 'redis', storeOptions: { url: 'redis://127.0.0.1', prefix: 'app:' } })
// @ts-expect-error the Redis store has no 'clinet'
await app.register(session, { store: 'redis', storeOptions: { clinet: null } })
// @ts-expect-error the memory store's maxSessions is a number
await app.register(session, { store: 'memory', storeOptions: { maxSessions: '10' } })
// @ts-expect-error the cookie store's revocation is 'memory', a configuration or a revocation store
await app.register(session, { secret: 'x'.repeat(32), store: 'cookie', storeOptions: { revocation: 'postgres' } })

// The known names, as a union (augmented by the stores an app registers).
expectType<StoreName>('memory')
expectType<StoreName>('ets')
expectType<StoreName>('cookie')
expectType<StoreName>('redis')
expectType<StoreName>('postgres')
expectType<StoreName>('express')
// @ts-expect-error not a registered store
expectType<StoreName>('redsi')
// and 'mine', which index.test-d.ts registers and adds to StoreOptionsMap.
expectType<StoreName>('mine')
