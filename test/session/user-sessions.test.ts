import { request } from 'node:http'
import t from 'tap'
import { buildApp, cookieOf, testClock } from '../helpers/app.js'
import { MemoryStore, type SessionStore } from '../../lib/index.js'
import { silentLog } from '../../lib/conformance/shared.js'

async function loginAs (app: Awaited<ReturnType<typeof buildApp>>, user: string, ua = 'agent'): Promise<{ cookie: string, id: string }> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user }, headers: { 'user-agent': ua } })
  return { cookie: cookieOf(res) as string, id: res.json().id }
}

t.test('getAll lists a user\'s live sessions with their device details, nothing secret', async (t) => {
  const clock = testClock(5_000_000)
  const app = await buildApp({ clock: clock.now, ttl: 600 })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice', 'Firefox')
  clock.tick(1000)
  const b = await loginAs(app, 'alice', 'Safari')
  await loginAs(app, 'bob')
  const list = await app.sessions.getAll('alice')
  t.same(list.map((s) => s.id), [a.id, b.id], 'oldest first')
  t.same(Object.keys(list[0] as object).sort(), ['absoluteTtl', 'authenticatedAt', 'createdAt', 'data', 'deviceBound', 'expiresAt', 'id', 'ip',
    'lastSeenAt', 'persistent', 'transport', 'ttl', 'userAgent', 'userId'])
  t.match(list[0], { userId: 'alice', userAgent: 'Firefox', ip: '127.0.0.1', createdAt: 5_000_000, expiresAt: 5_600_000, data: { name: 'alice' } })
  t.match(list[0], { transport: 'cookie', persistent: true, ttl: 600, absoluteTtl: 2_592_000 }, 'the app\'s settings')
  const res = await app.inject({ url: '/devices', headers: { cookie: a.cookie } })
  t.equal(res.json().length, 2)
  t.notOk(res.body.includes(decodeURIComponent(a.cookie.slice(4)).split('.').at(-1) as string), 'no secret on the devices page')
  t.same(await app.sessions.getAll(undefined), [])
  t.same(await app.sessions.getAll('nobody'), [])
})

t.test('trackClient: false records no ip or user agent', async (t) => {
  const app = await buildApp({ trackClient: false })
  t.teardown(() => app.close())
  await loginAs(app, 'u')
  t.match((await app.sessions.getAll('u'))[0], { ip: undefined, userAgent: undefined })
})

t.test('an anonymous session keeps no ip or user agent; the session its login makes does', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const headers = { 'user-agent': 'Firefox' }
  const anonymous = await app.inject({ method: 'POST', url: '/counter', headers })
  const cookie = cookieOf(anonymous) as string
  const { id } = (await app.inject({ url: '/me', headers: { ...headers, cookie } })).json()
  t.match(await app.sessions.get(id), { id, userId: undefined, data: { counter: 1 }, ip: undefined, userAgent: undefined })
  t.match(await app.sessions.authenticate(decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1))), { id, ip: undefined, userAgent: undefined })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' }, headers: { ...headers, cookie } })
  t.not(login.json().id, id, 'a login makes a new session')
  t.match(await app.sessions.getAll('alice'), [{ id: login.json().id, ip: '127.0.0.1', userAgent: 'Firefox' }])
})

t.test('a client that sends no User-Agent is recorded without one', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  // node:http sends no User-Agent of its own (inject() and fetch() do).
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/login', headers: { 'content-type': 'application/json' } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)) })
    req.on('error', reject)
    req.end(JSON.stringify({ user: 'agentless' }))
  })
  t.equal(status, 200)
  t.match(await app.sessions.getAll('agentless'), [{ userAgent: undefined, ip: '127.0.0.1' }])
})

t.test('delete one session; with a userId only if it is theirs', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  const m = await loginAs(app, 'mallory')
  t.equal(await app.sessions.delete(a.id, 'mallory'), false, 'mallory cannot revoke alice\'s session')
  t.equal(await app.sessions.delete(a.id, 'alice'), true)
  t.equal(await app.sessions.delete(a.id), false, 'already gone')
  t.equal(await app.sessions.delete('not an id'), false)
  t.equal(await app.sessions.delete('A'.repeat(22), 'alice'), false, 'an anonymous id belongs to no user')
  t.equal(await app.sessions.delete(42 as unknown as string), false)
  t.same((await app.inject({ url: '/me', headers: { cookie: a.cookie } })).json().userId, null, 'the deleted cookie no longer authenticates')
  t.same((await app.inject({ url: '/me', headers: { cookie: m.cookie } })).json().userId, 'mallory')
  t.equal(await app.sessions.get(m.id, 'alice'), undefined)
  t.equal((await app.sessions.get(m.id, 'mallory'))?.userId, 'mallory')
  t.equal(await app.sessions.get('A'.repeat(22)), undefined)
})

t.test('deleteAll: log out everywhere, and other devices', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  const b = await loginAs(app, 'alice')
  const c = await loginAs(app, 'alice')
  const bob = await loginAs(app, 'bob')
  const others = await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: a.cookie } })
  t.same(others.json(), { deleted: 2 })
  t.same((await app.sessions.getAll('alice')).map((s) => s.id), [a.id])
  t.equal((await app.inject({ url: '/me', headers: { cookie: b.cookie } })).json().userId, null)
  t.equal((await app.inject({ url: '/me', headers: { cookie: c.cookie } })).json().userId, null)
  t.equal((await app.inject({ url: '/me', headers: { cookie: a.cookie } })).json().userId, 'alice')

  const d = await loginAs(app, 'alice')
  t.equal(await app.sessions.deleteAll('alice', { except: [a.id, d.id] }), 0)
  const all = await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: a.cookie } })
  t.same(all.json(), { deleted: 2 })
  t.same(await app.sessions.getAll('alice'), [])
  t.equal((await app.inject({ url: '/me', headers: { cookie: bob.cookie } })).json().userId, 'bob', 'other users untouched')
  t.equal(await app.sessions.deleteAll(undefined), 0)
  await t.rejects(app.sessions.deleteAll({} as unknown as string), { code: 'FST_SESSION_USER_ID_INVALID' })
})

t.test('upsert replaces the data of a live session and extends it', async (t) => {
  const clock = testClock(1_000_000)
  const app = await buildApp({ clock: clock.now, ttl: 100, absoluteTtl: 1000 })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  clock.tick(50_000)
  const updated = await app.sessions.upsert({ id: a.id, userId: 'alice', data: { role: 'admin' } }, 500)
  t.match(updated, { id: a.id, data: { role: 'admin' }, lastSeenAt: 1_050_000, expiresAt: 1_550_000 })
  t.same((await app.inject({ url: '/me', headers: { cookie: a.cookie } })).json(), { id: a.id, userId: 'alice', name: null })
  const capped = await app.sessions.upsert({ id: a.id, data: {} }, 5000)
  t.equal(capped.expiresAt, 2_000_000, 'never past the absolute deadline')
  const defaultTtl = await app.sessions.upsert({ id: a.id, data: {} })
  t.equal(defaultTtl.expiresAt, 1_150_000)
  await t.rejects(app.sessions.upsert({ id: a.id, userId: 'bob', data: {} }), { code: 'FST_SESSION_NOT_FOUND', statusCode: 404 })
  await t.rejects(app.sessions.upsert({ id: 'B'.repeat(22), data: {} }), { code: 'FST_SESSION_NOT_FOUND' })
  await t.rejects(app.sessions.upsert(null as never), { code: 'FST_SESSION_OPTION_INVALID' })
  await t.rejects(app.sessions.upsert({ id: a.id, data: null as never }), { code: 'FST_SESSION_OPTION_INVALID' })
  await t.rejects(app.sessions.upsert({ id: a.id, data: {} }, 0), { code: 'FST_SESSION_OPTION_INVALID', message: /"ttl"/ })
  await t.rejects(app.sessions.upsert({ id: a.id, data: { n: 1n } }), { code: 'FST_SESSION_VALUE_INVALID' })
})

t.test('upsert applies the key and value checks of session.set, and returns what is stored', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  const before = await app.sessions.get(a.id)
  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['a lone surrogate key', { '\ud800': 1 }, 'FST_SESSION_KEY_INVALID'],
    ['an empty key', { '': 1 }, 'FST_SESSION_KEY_INVALID'],
    ['an own __proto__ key', JSON.parse('{"__proto__": 1}') as Record<string, unknown>, 'FST_SESSION_KEY_INVALID'],
    ['a nested __proto__', { profile: JSON.parse('{"__proto__": {"admin": true}}') }, 'FST_SESSION_VALUE_INVALID'],
    ['a nested constructor.prototype', { profile: JSON.parse('{"constructor": {"prototype": {"admin": true}}}') }, 'FST_SESSION_VALUE_INVALID'],
    ['a function', { f: () => 1 }, 'FST_SESSION_VALUE_INVALID'],
    ['a symbol', { s: Symbol('x') }, 'FST_SESSION_VALUE_INVALID'],
    ['a nested Date', { nested: { when: new Date(0) } }, 'FST_SESSION_VALUE_INVALID']
  ]
  for (const [what, data, code] of refused) {
    await t.rejects(app.sessions.upsert({ id: a.id, data }), { code }, what)
  }
  t.match(await app.sessions.get(a.id), { data: before?.data, expiresAt: before?.expiresAt }, 'a refused upsert changes nothing')
  const data = { nested: { list: [1, 'two', null], when: new Date(0).toISOString() }, gone: undefined, 'a:b.c': 'é ✓' }
  const updated = await app.sessions.upsert({ id: a.id, data })
  const stored = await app.sessions.get(a.id)
  t.same(updated.data, { nested: { list: [1, 'two', null], when: '1970-01-01T00:00:00.000Z' }, 'a:b.c': 'é ✓' }, 'as JSON stores it')
  t.same(updated.data, stored?.data, 'the returned record holds what a read gives back')
  t.notOk(Object.hasOwn(updated.data, 'gone'), 'an undefined value is no key, as set(key, undefined) deletes')
})

t.test('upsert of a session deleted meanwhile fails, never resurrects it', async (t) => {
  // A real memory store whose read of one id is followed by that session's deletion, before
  // upsert's write: the race, every time.
  const inner = new MemoryStore({}, { clock: Date.now, log: silentLog, maxSessionsPerUser: 10 })
  const doomed: { id?: string } = {}
  const store: SessionStore = {
    get: async (id) => {
      const s = await inner.get(id)
      if (id === doomed.id) await inner.delete(id)
      return s
    },
    insert: (s) => inner.insert(s),
    patch: (id, p) => inner.patch(id, p),
    delete: (id) => inner.delete(id),
    getAll: (u) => inner.getAll(u),
    deleteAll: (u, e) => inner.deleteAll(u, e),
    ownerKey: () => inner.ownerKey(),
    close: () => inner.close()
  }
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  doomed.id = a.id
  await t.rejects(app.sessions.upsert({ id: a.id, data: { x: 1 } }), { code: 'FST_SESSION_NOT_FOUND' })
  t.same(await app.sessions.getAll('alice'), [])
  t.equal(await inner.get(a.id), undefined, 'not brought back')
})

t.test('concurrent requests changing different keys both keep their change', async (t) => {
  const app = await buildApp()
  app.post<{ Body: { key: string } }>('/slow-set', async (req) => {
    await new Promise((resolve) => setImmediate(resolve))
    req.session.set(req.body.key, true)
    return 'ok'
  })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  await Promise.all(['x', 'y', 'z'].map((key) =>
    app.inject({ method: 'POST', url: '/slow-set', headers: { cookie: a.cookie }, payload: { key } })))
  t.same((await app.sessions.get(a.id))?.data, { name: 'alice', x: true, y: true, z: true })
})

t.test('an in-flight request does not bring back a session deleted by deleteAll', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const app = await buildApp()
  app.post('/slow-write', async (req) => {
    await gate
    req.session.set('late', true)
    return { ok: true }
  })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  const inflight = app.inject({ method: 'POST', url: '/slow-write', headers: { cookie: a.cookie } })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(await app.sessions.deleteAll('alice'), 1)
  release()
  const res = await inflight
  t.equal(res.statusCode, 200)
  t.match(res.headers['set-cookie'], /^sid=; Max-Age=0/, 'the revoked cookie is expired')
  t.same(await app.sessions.getAll('alice'), [])
  t.equal(await app.sessions.get(a.id), undefined)
})

t.test('save() reports a revoked session to the handler', async (t) => {
  const app = await buildApp()
  app.post('/save-ok', async (req) => {
    req.session.set('x', 1)
    await req.session.save()
    return { saved: (await app.sessions.get(req.session.id))?.data }
  })
  app.post('/save', async (req) => {
    await app.sessions.deleteAll(req.session.userId)
    req.session.set('x', 2)
    await req.session.save()
    return 'saved'
  })
  t.teardown(() => app.close())
  const a = await loginAs(app, 'alice')
  const ok = await app.inject({ method: 'POST', url: '/save-ok', headers: { cookie: a.cookie } })
  t.same(ok.json(), { saved: { name: 'alice', x: 1 } }, 'stored before the response')
  const res = await app.inject({ method: 'POST', url: '/save', headers: { cookie: a.cookie } })
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'FST_SESSION_REVOKED')
})
