// What one signed-in browser session costs Redis in memory: ours ('redis' store) and
// @fastify/session + connect-redis 9, both on node-redis 5, each session made by a real login
// request from a desktop Chrome (its User-Agent, 111 bytes) holding a passport-sized value. Ours
// is measured twice: with Redis's default hash-max-listpack-value (64), under which a hash
// with any value longer than 64 bytes is stored as a hash table (the store keeps the fields a
// session never changes, user agent included, in pieces of 64 bytes so that it does not), and
// with 512.
//
//   npm run build && node bench/redis-memory.js [--sessions 2000]
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { startRedis } from './lib/redis.js'
import { SECRET } from './lib/routes.js'

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '2000' } } })
const SESSIONS = Number(values.sessions)
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

async function ours (app, client) {
  const { default: session } = await import('fastify-user-sessions')
  await app.register(session, { secret: SECRET, store: 'redis', storeOptions: { client, prefix: 'mem:' }, cookie: { secure: false } })
  app.post('/login/:user', async (req) => {
    await req.session.login(req.params.user)
    req.session.set('passport', { user: req.params.user })
    return 'ok'
  })
}

async function connectRedis (app, client) {
  const { default: cookie } = await import('@fastify/cookie')
  const { default: session } = await import('@fastify/session')
  const { RedisStore } = await import('connect-redis9')
  await app.register(cookie)
  await app.register(session, { secret: SECRET, cookie: { secure: false }, store: new RedisStore({ client, prefix: 'mem9:' }) })
  app.post('/login/:user', async (req) => {
    await req.session.regenerate()
    req.session.set('passport', { user: req.params.user })
    return 'ok'
  })
}

const usedMemory = async (admin) => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1])

/** Bytes of Redis memory per session, and the encoding of the last session's key. */
async function measure (redis, setup, listpackValue, pattern) {
  const admin = redis.client
  await admin.flushall()
  await admin.config('SET', 'hash-max-listpack-value', String(listpackValue))
  const client = createClient({ url: redis.url })
  await client.connect()
  const app = Fastify({ logger: false })
  await setup(app, client)
  await app.ready()
  // The store's own keys (its owner key) and the connection, before the first session.
  const warm = await app.inject({ method: 'POST', url: '/login/warm-up', headers: { 'user-agent': CHROME } })
  if (warm.statusCode !== 200) throw new Error(`login: ${warm.statusCode} ${warm.body}`)
  const before = await usedMemory(admin)
  for (let i = 0; i < SESSIONS; i++) {
    const res = await app.inject({ method: 'POST', url: `/login/user-${100000 + i}`, headers: { 'user-agent': CHROME } })
    if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode} ${res.body}`)
  }
  const perSession = (await usedMemory(admin) - before) / SESSIONS
  const [key] = await admin.keys(pattern)
  const encoding = await admin.object('ENCODING', key)
  await app.close()
  await client.close()
  return { perSession, encoding }
}

const redis = await startRedis()
if (redis.unavailable !== undefined) throw new Error(redis.unavailable)
const rows = [
  ['ours \'redis\' (a hash per session, and a per-user index)', ours, 64, 'mem:s:*'],
  ['ours \'redis\', hash-max-listpack-value 512', ours, 512, 'mem:s:*'],
  ['@fastify/session + connect-redis 9 (a string per session)', connectRedis, 64, 'mem9:*']
]
const lines = [
  `# Redis memory per signed-in session (${SESSIONS} sessions, Redis ${redis.version}, INFO used_memory)`,
  '',
  '| | bytes per session | encoding |',
  '|---|---:|---|'
]
for (const [label, setup, lp, pattern] of rows) {
  const { perSession, encoding } = await measure(redis, setup, lp, pattern)
  lines.push(`| ${label} | ${perSession.toFixed(0)} | ${encoding} |`)
}
await redis.stop()
process.stdout.write(lines.join('\n') + '\n')
process.exit(0)
