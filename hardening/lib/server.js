// The server under test, one process per target: node hardening/lib/server.js '<config JSON>'.
// It imports the package by its own name (dist/), listens on a free loopback port and tells
// the parent the port over IPC. Logs are pino JSON lines on stdout, counted by the parent.
//
// config: { store: 'memory' | 'redis' | 'cookie', redisUrl?, redisCluster?: startup nodes (a Cluster client
//           instead of redisUrl), waitForReplicas?, maxSessions?, maxSessionsPerUser?,
//           alt?: a second plugin instance under /alt with the cookie name 'alt',
//           lenientJson?: let __proto__ / constructor keys through Fastify's body parser,
//           logLevel? }
import { createHash } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import Fastify from 'fastify'
import { Cluster } from 'ioredis'
import session, { knownStores, MemoryStore, sessionErrorHandler } from 'fastify-user-sessions'

const config = JSON.parse(process.argv[2])
export const SECRETS = ['hardening-secret-newest-of-at-least-32-bytes', 'hardening-secret-older-of-at-least-32-bytes!']

/** Typed errors an app gets when it hands client input to the session unvalidated: the client's fault. */
const CLIENT_ERRORS = new Map([
  ['FST_SESSION_KEY_INVALID', 400],
  ['FST_SESSION_VALUE_INVALID', 400],
  ['FST_SESSION_USER_ID_INVALID', 400]
])

let clusterClient
/** One Cluster client for the process, closed with the app (the store never closes a client it was given). */
function cluster () {
  clusterClient ??= new Cluster(config.redisCluster)
  clusterClient.on('error', () => {}) // the store logs the outage; ioredis would print each error
  return clusterClient
}

function hash (value) {
  return value === undefined ? null : createHash('sha256').update(value).digest('base64url').slice(0, 22)
}

function storeOptions (prefix) {
  switch (config.store) {
    case 'memory': return { table: `hardening-${prefix}`, ...(config.maxSessions ? { maxSessions: config.maxSessions } : {}) }
    case 'redis': return {
      ...(config.redisCluster === undefined ? { url: config.redisUrl } : { client: cluster() }),
      prefix: `${prefix}:`,
      ...(config.waitForReplicas === undefined ? {} : { waitForReplicas: config.waitForReplicas })
    }
    case 'cookie': return { revocation: 'memory' }
    default: throw new Error(`unknown target ${config.store}`)
  }
}

/** The routes the scripts drive; `name` is the cookie name of this plugin instance. */
function routes (app, name) {
  app.get('/me', async (req) => ({
    id: req.session.isNew ? null : req.session.id,
    userId: req.session.userId ?? null,
    // What the server parsed as the session cookie, hashed: the fuzzer's oracle for forgeries.
    cookie: hash(req.cookies[name])
  }))
  app.post('/login', async (req, reply) => {
    try {
      await req.session.login(req.body?.user)
    } catch (err) {
      if (!CLIENT_ERRORS.has(err.code)) throw err
      return reply.code(CLIENT_ERRORS.get(err.code)).send({ code: err.code })
    }
    return { id: req.session.id, userId: req.session.userId, createdAt: req.session.createdAt }
  })
  app.post('/anon', async (req) => {
    req.session.set('anon', true)
    return { ok: true }
  })
}

async function main () {
  const app = Fastify({
    logger: { level: config.logLevel ?? 'warn' },
    ...(config.lenientJson ? { onProtoPoisoning: 'ignore', onConstructorPoisoning: 'ignore' } : {})
  })
  // The store's 503s as one warning per interval, not one error line per request (docs/high-availability.md).
  app.setErrorHandler(sessionErrorHandler())
  app.addHook('onClose', async () => { clusterClient?.disconnect() })
  for (const store of ['memory', config.store]) {
    if (!knownStores().includes(store)) {
      process.send({ unavailable: `store '${store}' is not registered (knownStores(): ${knownStores().join(', ')})` })
      process.exit(0)
    }
  }
  await app.register(fastifyCookie)
  let observer
  await app.register(async (main) => {
    await main.register(session, {
      secret: SECRETS,
      store: config.store,
      storeOptions: storeOptions('main'),
      ...(config.maxSessionsPerUser ? { maxSessionsPerUser: config.maxSessionsPerUser } : {})
    })
    if (config.store === 'memory') {
      // A second handle on the same named table, to read its counters.
      observer = new MemoryStore({ table: 'hardening-main' }, { clock: Date.now, log: app.log, maxSessionsPerUser: 1 })
      main.addHook('onClose', async () => { await observer.close() })
    }
    routes(main, 'sid')

    // Lazy: no cookie, no store call, no Set-Cookie.
    main.get('/read', async (req) => ({ visits: req.session.get('visits') ?? null }))
    // Every request without a cookie creates a session.
    main.post('/new', async (req) => {
      req.session.set('n', 1)
      return { ok: true }
    })

    // Writes each own key of the body (whatever Fastify's parser let through) and reads it back.
    main.post('/data', async (req, reply) => {
      const body = req.body
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return reply.code(400).send({ code: 'BODY' })
      const s = req.session
      s.clear()
      const refused = []
      for (const key of Object.keys(body)) {
        try {
          s.set(key, body[key])
        } catch (err) {
          if (!CLIENT_ERRORS.has(err.code)) throw err
          refused.push(key)
        }
      }
      try {
        await s.save()
      } catch (err) {
        if (err.code !== 'FST_SESSION_COOKIE_TOO_LARGE') throw err
        s.clear() // the documented change of course: keep the cookie small
        return reply.code(413).send({ code: err.code, refused })
      }
      return { refused }
    })
    main.get('/data', async (req) => req.session.toJSON())

    // The soak's routes. A virtual user's counter lives under its own key.
    main.post('/inc', async (req, reply) => {
      const s = req.session
      if (s.userId === undefined) return reply.code(401).send({ userId: null })
      const key = String(req.query.key)
      const value = (s.get(key) ?? 0) + 1
      s.set(key, value)
      try {
        await s.save()
      } catch (err) {
        if (err.code === 'FST_SESSION_REVOKED') return reply.code(409).send({ code: err.code, userId: null })
        throw err
      }
      return { userId: s.userId, id: s.id, value }
    })
    main.get('/counter', async (req) => ({
      userId: req.session.userId ?? null,
      id: req.session.isNew ? null : req.session.id,
      value: req.session.get(String(req.query.key)) ?? null
    }))
    main.get('/devices', async (req) => {
      const userId = req.session.userId
      if (userId === undefined) return { userId: null, sessions: [] }
      const sessions = await main.sessions.getAll(userId)
      return { userId, id: req.session.id, sessions: sessions.map((s) => ({ id: s.id, data: s.data })) }
    })
    main.post('/logout-others', async (req) => {
      const userId = req.session.userId
      if (userId === undefined) return { userId: null, deleted: 0 }
      return { userId, deleted: await main.sessions.deleteAll(userId, { except: req.session.id }) }
    })
    main.post('/logout', async (req) => {
      const userId = req.session.userId ?? null
      await req.session.destroy()
      return { userId }
    })

    // For the scripts only (no cookie sent): store contents, health, memory.
    main.get('/admin/sessions', async (req) => {
      const sessions = await main.sessions.getAll(String(req.query.user))
      return sessions.map((s) => ({ id: s.id, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, data: s.data }))
    })
    main.get('/admin/health', async (req) => {
      if (config.store !== 'cookie') await main.sessions.getAll(String(req.query.user ?? 'health-probe'))
      return { ok: true }
    })
    main.get('/admin/stats', async () => ({
      memory: observer?.stats() ?? null,
      // Prototype pollution anywhere in the process would show here.
      polluted: Object.getOwnPropertyNames(Object.prototype).length !== 12 || ({}).polluted !== undefined ||
        Object.getOwnPropertyNames(Array.prototype).some((k) => k === 'polluted')
    }))
  })

  if (config.alt) {
    await app.register(async (alt) => {
      await alt.register(session, { secret: SECRETS, cookieName: 'alt', store: config.store, storeOptions: storeOptions('alt') })
      routes(alt, 'alt')
    }, { prefix: '/alt' })
  }

  app.get('/admin/mem', async () => {
    for (let i = 0; i < 3; i++) globalThis.gc?.()
    const m = process.memoryUsage()
    return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }
  })

  await app.listen({ host: '127.0.0.1', port: 0 })
  let closing = false
  const stop = async () => {
    if (closing) return
    closing = true
    await app.close().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  process.send({ port: app.server.address().port })
}

main().catch((err) => {
  console.error(err)
  process.send?.({ error: err.message })
  process.exit(1)
})
