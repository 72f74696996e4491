import t from 'tap'
import { MemoryStore, type SessionStore } from '../../lib/index.js'
import { buildApp, cookieOf, delegate, logSink } from '../helpers/app.js'

/** A real memory store behind a switch that makes every call fail, as a store whose backend is down. */
function switchable (): { store: SessionStore, down: (err?: unknown) => void, up: () => void } {
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  let failure: unknown
  const guard = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (failure !== undefined) throw failure
    return await fn(...args)
  }
  return {
    store: {
      get: guard((id: string) => inner.get(id)),
      insert: guard((s) => inner.insert(s)),
      patch: guard((id: string, p) => inner.patch(id, p)),
      delete: guard((id: string) => inner.delete(id)),
      getAll: guard((u: string) => inner.getAll(u)),
      deleteAll: guard((u: string, e: readonly string[]) => inner.deleteAll(u, e)),
      close: () => inner.close()
    },
    down: (err = new Error('connection refused')) => { failure = err },
    up: () => { failure = undefined }
  }
}

t.test('a store that fails gives a typed 503 on routes that use the session, and none elsewhere', async (t) => {
  const sink = logSink('debug')
  const { store, down, up } = switchable()
  const app = await buildApp({ store }, sink.logger)
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(login) as string

  down()
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(me.statusCode, 503)
  t.same(me.json(), { statusCode: 503, code: 'FST_SESSION_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Session store unavailable: connection refused' })
  t.equal((await app.inject({ url: '/', headers: { cookie } })).statusCode, 200, 'a route that does not touch the session works')
  t.equal((await app.inject({ method: 'POST', url: '/counter' })).statusCode, 503, 'a new session cannot be saved')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })).statusCode, 503)
  t.equal((await app.inject({ url: '/devices', headers: { cookie: 'x=y' } })).statusCode, 200, 'anonymous devices page needs no store')
  await t.rejects(app.sessions.getAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE', statusCode: 503 })
  await t.rejects(app.sessions.deleteAll('alice'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  await t.rejects(app.sessions.get(login.json().id), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  await t.rejects(app.sessions.delete(login.json().id), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  const outage = sink.lines.filter((l) => l.msg === 'session store unavailable while loading a session')
  t.equal(outage.filter((l) => l.level === 40).length, 1, 'one warning for the outage, not one per request')
  t.ok(outage.some((l) => l.level === 20), 'the other requests log at debug')

  up()
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice', 'back without a restart')
  t.notOk(sink.text().includes(login.json().id), 'no id in the logs')
})

t.test('a failure while writing gives the 503; non-Error rejections are wrapped too', async (t) => {
  const { store, down, up } = switchable()
  const app = await buildApp({ store })
  app.post('/fail-write', async (req) => { down('plain string failure'); req.session.set('x', 1); return 'ok' })
  app.post('/fail-destroy', async (req) => { down(); await req.session.destroy(); return 'ok' })
  app.post('/fail-regenerate', async (req) => { down(); await req.session.regenerate(); return 'ok' })
  app.post('/fail-login', async (req) => { down(); await req.session.login('x'); return 'ok' })
  t.teardown(() => app.close())
  for (const url of ['/fail-write', '/fail-destroy', '/fail-regenerate', '/fail-login']) {
    up()
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
    const res = await app.inject({ method: 'POST', url, headers: { cookie } })
    t.equal(res.statusCode, 503, url)
    t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE', url)
    if (url === '/fail-write') t.equal(res.json().message, 'Session store unavailable: plain string failure')
  }
})

t.test('regenerate: when deleting the old id fails, the new session is undone and the error reported', async (t) => {
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  let failDelete = false
  const store = delegate(inner, {
    delete: async (id) => {
      if (failDelete) { failDelete = false; throw new Error('timeout') }
      return await inner.delete(id)
    }
  })
  const app = await buildApp({ store })
  app.post('/regenerate', async (req) => { failDelete = true; await req.session.regenerate(); return 'ok' })
  t.teardown(async () => { await app.close(); await inner.close() })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(login)
  const res = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
  t.equal(res.statusCode, 503)
  t.same((await app.sessions.getAll('alice')).map((s) => s.id), [login.json().id], 'only the old session remains')
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice')
})

t.test('insert-new retries on a collision, then gives up with a typed error', async (t) => {
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  let refuse = 0
  const store = delegate(inner, {
    insert: async (s) => { if (refuse > 0) { refuse--; return false } return await inner.insert(s) }
  })
  const sink = logSink('warn')
  const app = await buildApp({ store }, sink.logger)
  app.get('/id', async (req) => { req.session.set('a', 1); return { id: req.session.id } })
  t.teardown(async () => { await app.close(); await inner.close() })
  refuse = 3
  const ok = await app.inject({ method: 'POST', url: '/counter' })
  t.equal(ok.statusCode, 200)
  t.equal(sink.lines.filter((l) => l.msg === 'session id collision; drawing a new id').length, 3)
  const me = await app.inject({ url: '/counter', headers: { cookie: cookieOf(ok) } })
  t.same(me.json(), { counter: 1 }, 'the cookie carries the id that was finally stored')
  refuse = 100
  const fail = await app.inject({ method: 'POST', url: '/counter' })
  t.equal(fail.statusCode, 500)
  t.equal(fail.json().code, 'FST_SESSION_ID_COLLISION')
})

t.test('a route with config.session false never waits for the store, and has no session', async (t) => {
  let release: () => void = () => {}
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  let hang = false
  const store = delegate(inner, {
    get: async (id) => {
      if (hang) await new Promise<void>((resolve) => { release = resolve })
      return await inner.get(id)
    }
  })
  const app = await buildApp({ store })
  app.get('/health', { config: { session: false } }, async () => ({ ok: true }))
  app.get('/health-touching', { config: { session: false } }, async (req) => req.session.get('x') ?? 'none')
  t.teardown(async () => { release(); await app.close(); await inner.close() })
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
  hang = true
  const health = await app.inject({ url: '/health', headers: { cookie } })
  t.same(health.json(), { ok: true }, 'answered while the store hangs')
  t.equal(health.headers['set-cookie'], undefined)
  const touching = await app.inject({ url: '/health-touching' })
  t.equal(touching.statusCode, 500)
  t.match(touching.json(), { code: 'FST_SESSION_DISABLED', message: /\/health-touching/ })
  const pending = app.inject({ url: '/me', headers: { cookie } })
  await new Promise((resolve) => setImmediate(resolve))
  hang = false
  release()
  t.equal((await pending).json().userId, 'alice', 'other routes still load the session')
})
