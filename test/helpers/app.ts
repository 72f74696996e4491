import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import session, { type FastifyUserSessionsOptions, type SessionStore } from '../../lib/index.js'

export const SECRET = 'a-test-secret-that-is-long-enough-32+'
export const OLD_SECRET = 'an-older-secret-that-is-long-enough-32'

/** The options of a built-in store chosen by its name, as the tests run it: the cookie store with the in-process revocation store, which it requires. */
export function storeNamed (store: 'memory' | 'cookie'): Partial<FastifyUserSessionsOptions> {
  return store === 'cookie' ? { store, storeOptions: { revocation: 'memory' } } : { store }
}

/** A controllable clock, in milliseconds since the epoch. */
export function testClock (start = Date.now()): { now: () => number, tick: (ms: number) => void } {
  let t = start
  return { now: () => t, tick: (ms) => { t += ms } }
}

/** An app with the plugin and the routes of the contract. */
export async function buildApp (options: Partial<FastifyUserSessionsOptions> = {}, logger: boolean | object = false,
  setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: logger as boolean })
  setup?.(app) // before the routes, which take the error handler set when they are declared
  await app.register(session, { secret: SECRET, ...options } as FastifyUserSessionsOptions)
  app.get('/', async () => ({ ok: true }))
  app.get('/counter', async (req) => ({ counter: req.session.get('counter') ?? 0 }))
  app.post('/counter', async (req) => {
    const counter = ((req.session.get('counter') as number | undefined) ?? 0) + 1
    req.session.set('counter', counter)
    return { counter }
  })
  app.post<{ Body: { key: string, value: unknown } }>('/set', async (req) => {
    req.session.set(req.body.key, req.body.value)
    return { ok: true }
  })
  app.post<{ Body: { user: string, keepData?: boolean | string[] } }>('/login', async (req) => {
    await req.session.login(req.body.user, { keepData: req.body.keepData })
    req.session.set('name', req.body.user)
    return { id: req.session.id }
  })
  app.get('/me', async (req) => ({
    id: req.session.isNew ? null : req.session.id,
    userId: req.session.userId ?? null,
    name: req.session.get('name') ?? null
  }))
  app.get('/devices', async (req) => app.sessions.getAll(req.session.userId))
  app.post('/logout', async (req) => { await req.session.destroy(); return { ok: true } })
  app.post('/logout-everywhere', async (req) => ({ deleted: await app.sessions.deleteAll(req.session.userId) }))
  app.post('/logout-others', async (req) => ({
    deleted: await app.sessions.deleteAll(req.session.userId, { except: req.session.id })
  }))
  return app
}

/** The `name=value` pair of the session cookie a response set, for the next request's Cookie header. */
export function cookieOf (res: LightMyRequestResponse, name = 'sid'): string | undefined {
  const c = res.cookies.find((c) => c.name === name)
  return c === undefined ? undefined : `${name}=${c.value}`
}

export function setCookieOf (res: LightMyRequestResponse, name = 'sid'): { name: string, value: string, [k: string]: unknown } | undefined {
  return res.cookies.find((c) => c.name === name) as { name: string, value: string } | undefined
}

/** Wraps a real store and counts the calls of each method, to prove what a request costs. */
export function counting<S extends object> (store: S): S & { calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  const wrapped = new Proxy(store, {
    get (target, prop) {
      if (prop === 'calls') return calls
      // The target as receiver: a getter of a class with private fields (a store's bus) runs on the store itself.
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function' || typeof prop !== 'string') return value
      return (...args: unknown[]) => {
        calls[prop] = (calls[prop] ?? 0) + 1
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    }
  })
  return wrapped as S & { calls: Record<string, number> }
}

/** Collects pino's JSON lines, to check what the plugin logs. */
export function logSink (level = 'trace'): { lines: Array<Record<string, unknown>>, text: () => string, logger: object } {
  const lines: Array<Record<string, unknown>> = []
  const chunks: string[] = []
  const stream = {
    write (chunk: string) {
      chunks.push(chunk)
      lines.push(JSON.parse(chunk) as Record<string, unknown>)
    }
  }
  return { lines, text: () => chunks.join(''), logger: { level, stream } }
}

/**
 * A store object that forwards the six contract methods to a real store (no close()), with
 * some of them replaced: how the tests build a store that fails, hangs or refuses on cue.
 */
export function delegate (inner: SessionStore, overrides: Partial<SessionStore> = {}): SessionStore {
  return {
    get: (id) => inner.get(id),
    insert: (s) => inner.insert(s),
    patch: (id, p) => inner.patch(id, p),
    delete: (id) => inner.delete(id),
    getAll: (u) => inner.getAll(u),
    deleteAll: (u, e) => inner.deleteAll(u, e),
    ...overrides
  }
}
