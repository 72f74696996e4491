import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStore } from '../../lib/index.js'
import { hashSecret, newSecret } from '../../lib/crypto/ids.js'
import { buildApp, cookieOf } from '../helpers/app.js'
import { testDatabase } from '../helpers/postgres.js'
import { redisServer } from '../helpers/redis.js'

// The upgrade to 0.2 (issue 21): a cookie or bearer token of the format before, whose session
// id is `<base64url(userId)>.<random>`, is refused as an unknown credential: the request goes on
// as a fresh anonymous session, never a 5xx, and the old session authenticates nobody. Each
// store below holds the old session as the version before wrote it. docs/session-ids.md says so.

const USERS = [
  'alice.liddell@example.com', // its old key is 34 characters: not the shape of an id any more
  'sixteen-byte-id!' // 16 bytes: its old key is 22 characters, the length of a tag, and is looked up
]

interface Old { id: string, secret: string, userId: string }

function oldSession (userId: string): Old {
  return { id: Buffer.from(userId).toString('base64url') + '.' + randomBytes(16).toString('base64url'), secret: newSecret(), userId }
}

async function refused (t: Test, app: FastifyInstance, old: Old): Promise<void> {
  const value = `${old.id}.${old.secret}`
  const viaCookie = await app.inject({ url: '/me', headers: { cookie: `sid=${value}` } })
  t.equal(viaCookie.statusCode, 200, `${old.userId}: the old cookie gets an answer, not an error`)
  t.same(viaCookie.json(), { id: null, userId: null, name: null }, 'a fresh anonymous session')
  const write = await app.inject({ method: 'POST', url: '/counter', headers: { cookie: `sid=${value}` } })
  t.equal(write.statusCode, 200)
  t.not(decodeURIComponent(cookieOf(write) as string).split('.')[0], old.id.split('.')[0], 'a new anonymous session, under a new id')
  const viaToken = await app.inject({ url: '/me', headers: { authorization: `Bearer ${value}` } })
  t.equal(viaToken.statusCode, 200, 'the old token too')
  t.same(viaToken.json(), { id: null, userId: null, name: null })
}

const stored = (old: Old, now: number): Record<string, unknown> => ({
  id: old.id,
  secretHash: hashSecret(old.secret),
  userId: old.userId,
  data: { name: 'old' },
  createdAt: now,
  lastSeenAt: now,
  expiresAt: now + 3_600_000,
  authenticatedAt: now,
  ip: '127.0.0.1',
  userAgent: 'old'
})

t.test('memory: a session stored under an id of the old format', async (t) => {
  const store = new MemoryStore({ table: 'old-ids' }, { clock: Date.now, log: { warn () {} } as never, maxSessionsPerUser: 10 })
  t.teardown(() => store.close())
  const olds = USERS.map(oldSession)
  for (const old of olds) await store.insert(stored(old, Date.now()) as never)
  const app = await buildApp({ store: 'memory', storeOptions: { table: 'old-ids' }, bearer: true })
  t.teardown(() => app.close())
  for (const old of olds) await refused(t, app, old)
  t.same(await app.sessions.getAll(USERS[0] as string), [], 'nor listed')
})

t.test('redis: a session hash and index written by the version before', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const prefix = `old:${randomBytes(3).toString('hex')}:`
  const olds = USERS.map(oldSession)
  const now = Date.now()
  for (const old of olds) {
    const [key, random] = old.id.split('.') as [string, string]
    // The layout of 0.1: s:{<userKey>}.<random> (no u field: the id said who), u:{<userKey>} the index.
    await client.hset(`${prefix}s:{${key}}.${random}`, { h: hashSecret(old.secret), c: now, l: now, e: now + 3_600_000, 'd:name': '"old"' })
    await client.zadd(`${prefix}u:{${key}}`, now + 3_600_000, random)
  }
  const app = await buildApp({ store: 'redis', storeOptions: { client, prefix }, bearer: true })
  t.teardown(() => app.close())
  for (const old of olds) await refused(t, app, old)
})

t.test('postgres: a row written by the version before', async (t) => {
  const db = await testDatabase(t)
  if (db.skip !== false) return
  const olds = USERS.map(oldSession)
  const now = Date.now()
  for (const old of olds) {
    await db.sql('INSERT INTO $table (id, secret_hash, user_id, data, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)',
      [old.id, hashSecret(old.secret), old.userId, '{"name":"old"}', now, now + 3_600_000])
  }
  const app = await buildApp({ store: 'postgres', storeOptions: db.options(), bearer: true })
  t.teardown(() => app.close())
  for (const old of olds) await refused(t, app, old)
  t.same(await app.sessions.getAll(USERS[1] as string), [], 'nor is the old row listed: its id names its user')
})
