// One scenario's server, run as its own process by bench/run.js:
//   node bench/server.js <scenario>
// It listens on a free loopback port and tells the parent the port over IPC.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { counterRoutes, SECRET } from './lib/routes.js'

async function ours (app, store, storeOptions = {}) {
  const { default: session, knownStores } = await import('fastify-user-sessions')
  if (!knownStores().includes(store)) return { unavailable: `store '${store}' is not registered` }
  await app.register(session, { secret: SECRET, store, storeOptions })
  counterRoutes(app, (req) => req.session)
}

async function fastifySession (app, store) {
  const { default: cookie } = await import('@fastify/cookie')
  const { default: session } = await import('@fastify/session')
  await app.register(cookie)
  // Its defaults otherwise (saveUninitialized, rolling); secure: false because the bench speaks http.
  await app.register(session, { secret: SECRET, cookie: { secure: false }, ...(store === undefined ? {} : { store }) })
  counterRoutes(app, (req) => req.session)
}

/** Keeps the CPU busy for `us` microseconds: the calibration scenario's known extra work. */
function spin (us) {
  const until = process.hrtime.bigint() + BigInt(us * 1000)
  while (process.hrtime.bigint() < until);
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
  'ours-memory': (app) => ours(app, 'memory'),
  'ours-redis': (app) => ours(app, 'redis', { url: process.env.REDIS_URL, prefix: 'bench:' }),
  // sodium-native is a dev dependency; insisting on it makes the bench fail rather than quietly measure node:crypto.
  'ours-cookie': (app) => ours(app, 'cookie', { crypto: 'sodium-native' }),
  'ours-cookie-node': (app) => ours(app, 'cookie', { crypto: 'node:crypto' }),
  'fastify-session': (app) => fastifySession(app),
  'fastify-session-redis': async (app) => {
    const { default: Redis } = await import('ioredis')
    const { default: RedisStore } = await import('connect-redis')
    const client = new Redis(process.env.REDIS_URL)
    app.addHook('onClose', async () => { await client.quit() })
    await fastifySession(app, new RedisStore({ client, prefix: 'fsess:' }))
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
