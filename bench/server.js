// One scenario's server, run as its own process by bench/run.js:
//   node bench/server.js <scenario>
// It listens on a free loopback port and tells the parent the port over IPC.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import Fastify from 'fastify'
import { BENCH_USER, counterRoutes, SECRET } from './lib/routes.js'

async function ours (app, store, storeOptions = {}) {
  const { default: session, knownStores } = await import('fastify-user-sessions')
  if (!knownStores().includes(store)) return { unavailable: `store '${store}' is not registered` }
  await app.register(session, { secret: SECRET, store, storeOptions })
  counterRoutes(app, (req) => req.session, (req) => req.session.login(BENCH_USER))
}

async function fastifySession (app, store) {
  const { default: cookie } = await import('@fastify/cookie')
  const { default: session } = await import('@fastify/session')
  await app.register(cookie)
  // Its defaults otherwise (saveUninitialized, rolling); secure: false because the bench speaks http.
  await app.register(session, { secret: SECRET, cookie: { secure: false }, ...(store === undefined ? {} : { store }) })
  // Its documented sign-in: a new id, then the user in the session.
  counterRoutes(app, (req) => req.session, async (req) => {
    await req.session.regenerate()
    req.session.set('user', BENCH_USER)
  })
}

// The floors: hand-written sessions that do the least any session can do (find the session
// from the cookie, read or bump a counter in place), so that a plugin's figure can be read as
// a ratio to the limit. No expiry, no user index, no options; the same routes as counterRoutes.
const COOKIE = { path: '/', httpOnly: true, sameSite: 'lax' }
const newId = () => randomBytes(16).toString('base64url')

/** The id a signed `sid` cookie carries, or undefined: @fastify/cookie's unsign (an HMAC). */
function signedId (req) {
  const raw = req.cookies.sid
  if (raw === undefined) return undefined
  const { valid, value } = req.unsignCookie(raw)
  return valid ? value : undefined
}

/** A floor on `find(req)` (the session, or undefined) and `create(reply)` (a new session, its cookie set). */
function floorRoutes (app, find, create) {
  app.get('/counter', async (req) => ({ counter: find(req)?.counter ?? 0 }))
  app.post('/counter', async (req, reply) => {
    const s = find(req) ?? create(reply)
    return { counter: ++s.counter }
  })
}

async function cookiePlugin (app, options) {
  const { default: cookie } = await import('@fastify/cookie')
  await app.register(cookie, options)
}

/** Keeps the CPU busy for `us` microseconds: the calibration scenario's known extra work. */
function spin (us) {
  const until = process.hrtime.bigint() + BigInt(us * 1000)
  while (process.hrtime.bigint() < until);
}

/**
 * A floor on Redis by hand: a signed cookie, `load(id)` (the session's data, or undefined) on
 * each request and `save(id, data, created)` on a write.
 */
async function floorRedis (app, load, save) {
  await cookiePlugin(app, { secret: SECRET })
  const find = async (req) => {
    const id = signedId(req)
    const data = id === undefined ? undefined : await load(id)
    return data === undefined ? undefined : { id, data }
  }
  app.get('/counter', async (req) => ({ counter: (await find(req))?.data.counter ?? 0 }))
  app.post('/counter', async (req, reply) => {
    let s = await find(req)
    const created = s === undefined
    if (s === undefined) {
      s = { id: newId(), data: { counter: 0 } }
      reply.setCookie('sid', s.id, { ...COOKIE, signed: true })
    }
    s.data.counter++
    await save(s.id, s.data, created)
    return { counter: s.data.counter }
  })
}

/** The string floor's load: the session a JSON string, read with `get`. */
const loadJson = (get) => async (id) => {
  const json = await get('floor:' + id)
  return json === null ? undefined : JSON.parse(json)
}

/** A node-redis client on REDIS_URL, connected, closed with the app. */
async function nodeRedis (app) {
  const { createClient } = await import('redis')
  const client = createClient({ url: process.env.REDIS_URL })
  client.on('error', () => {})
  await client.connect()
  app.addHook('onClose', async () => { await client.close() })
  return client
}

const scenarios = {
  bare: async (app) => {
    app.get('/counter', async () => ({ counter: 0 }))
    app.post('/counter', async () => ({ counter: 1 }))
  },
  // Bare Fastify doing exactly 10 µs more work per request: how much "+CPU over bare" the
  // table shows for a known amount of work (more than 10 µs: see the report's note).
  'bare-busy10': async (app) => {
    app.get('/counter', async () => { spin(10); return { counter: 0 } })
    app.post('/counter', async () => { spin(10); return { counter: 1 } })
  },
  // A signed-cookie session in a Map: unsign, Map.get.
  'floor-signed': async (app) => {
    await cookiePlugin(app, { secret: SECRET })
    const sessions = new Map()
    floorRoutes(app, (req) => sessions.get(signedId(req)), (reply) => {
      const id = newId()
      const s = { counter: 0 }
      sessions.set(id, s)
      reply.setCookie('sid', id, { ...COOKIE, signed: true })
      return s
    })
  },
  // The token variant, no HMAC: the cookie is `id.secret`, the Map keeps SHA-256(secret),
  // compared in constant time; the 256-bit secret is what authenticates the cookie.
  'floor-token': async (app) => {
    await cookiePlugin(app)
    const sessions = new Map()
    floorRoutes(app, (req) => {
      const raw = req.cookies.sid
      const dot = raw === undefined ? -1 : raw.indexOf('.')
      if (dot === -1) return undefined
      const s = sessions.get(raw.slice(0, dot))
      return s !== undefined && timingSafeEqual(hash('sha256', raw.slice(dot + 1), 'buffer'), s.secretHash) ? s : undefined
    }, (reply) => {
      const id = newId()
      const secret = randomBytes(32).toString('base64url')
      const s = { secretHash: hash('sha256', secret, 'buffer'), counter: 0 }
      sessions.set(id, s)
      reply.setCookie('sid', `${id}.${secret}`, COOKIE)
      return s
    })
  },
  // The signed one on Redis: unsign, GET; a write is one SET ... PX (the session's JSON, a day's TTL).
  'floor-redis': async (app) => {
    const { default: Redis } = await import('ioredis')
    const client = new Redis(process.env.REDIS_URL)
    app.addHook('onClose', async () => { await client.quit() })
    await floorRedis(app, loadJson((key) => client.get(key)), (id, data) => client.set('floor:' + id, JSON.stringify(data), 'PX', 86_400_000))
  },
  // The same on node-redis, the client of connect-redis 9 and of ours in bench:fixed.
  'floor-redis-node': async (app) => {
    const client = await nodeRedis(app)
    await floorRedis(app, loadJson((key) => client.get(key)), (id, data) => client.set('floor:' + id, JSON.stringify(data), { PX: 86_400_000 }))
  },
  // The least a session kept as a hash can do, by hand, on node-redis: HGETALL, then HSET of
  // the changed key. No expiry check, no liveness check, nothing against a write resurrecting a
  // deleted session: what the hash layout costs by itself, against the string floor above.
  'floor-redis-hash-node': async (app) => {
    const client = await nodeRedis(app)
    await floorRedis(app, async (id) => {
      const fields = await client.hGetAll('floorh:' + id)
      return fields.counter === undefined ? undefined : { counter: JSON.parse(fields.counter) }
    }, async (id, data, created) => {
      await client.hSet('floorh:' + id, 'counter', JSON.stringify(data.counter))
      if (created) await client.pExpire('floorh:' + id, 86_400_000)
    })
  },
  'ours-memory': (app) => ours(app, 'memory'),
  // The store on a client the app made, as docs/redis.md shows: node-redis, then ioredis.
  'ours-redis-node': async (app) => {
    return ours(app, 'redis', { client: await nodeRedis(app), prefix: 'bench:' })
  },
  'ours-redis-ioredis': async (app) => {
    const { default: Redis } = await import('ioredis')
    const client = new Redis(process.env.REDIS_URL)
    client.on('error', () => {})
    app.addHook('onClose', async () => { await client.quit() })
    return ours(app, 'redis', { client, prefix: 'bench:' })
  },
  'ours-redis': (app) => ours(app, 'redis', { url: process.env.REDIS_URL, prefix: 'bench:' }),
  // What `npm install fastify-user-sessions` gives: the default crypto ('auto'), which takes
  // sodium-native, an optional dependency. Without it this scenario fails rather than quietly
  // measure node:crypto (ours-cookie-node measures that).
  // The cookie store with the in-process revocation store, which the plugin requires of it.
  'ours-cookie': async (app) => {
    await import('sodium-native')
    return ours(app, 'cookie', { revocation: 'memory' })
  },
  'ours-cookie-node': (app) => ours(app, 'cookie', { crypto: 'node:crypto', revocation: 'memory' }),
  'fastify-session': (app) => fastifySession(app),
  'fastify-session-redis': async (app) => {
    const { default: Redis } = await import('ioredis')
    const { default: RedisStore } = await import('connect-redis')
    const client = new Redis(process.env.REDIS_URL)
    app.addHook('onClose', async () => { await client.quit() })
    await fastifySession(app, new RedisStore({ client, prefix: 'fsess:' }))
  },
  // connect-redis 9 (node-redis only), the newest that runs on Node 20, on node-redis 5.
  'fastify-session-redis9': async (app) => {
    const { RedisStore } = await import('connect-redis9')
    await fastifySession(app, new RedisStore({ client: await nodeRedis(app), prefix: 'fsess9:' }))
  },
  'secure-session': async (app) => {
    const { default: secureSession } = await import('@fastify/secure-session')
    await app.register(secureSession, { key: randomBytes(32), cookie: { path: '/', httpOnly: true } })
    counterRoutes(app, (req) => req.session)
  }
}

async function main () {
  const name = process.argv[2]
  const setup = scenarios[name]
  if (setup === undefined) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`)
  const app = Fastify({ logger: false })
  const result = await setup(app)
  if (result?.unavailable !== undefined) {
    process.send?.({ unavailable: result.unavailable })
    process.exit(0)
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  let closing = false
  const stop = async () => {
    if (closing) return
    closing = true
    await app.close().catch(() => {})
    // A normal exit, so that --cpu-prof writes its profile.
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
  process.send?.({ port: app.server.address().port })
}

main().catch((err) => {
  process.send?.({ error: err.message, code: err.code })
  console.error(err)
  process.exit(1)
})
