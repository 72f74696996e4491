import t from 'tap'
import { buildApp, cookieOf, testClock } from '../helpers/app.js'
import { redisServer } from '../helpers/redis.js'
import { countedStore, onEveryStore } from '../helpers/stores.js'

// app.sessions.authenticate(credential): a session checked outside a request (a WebSocket
// upgrade, a job), on every store, writing nothing (issue 13).

onEveryStore(t, 'authenticate gives the live session of a cookie value, and nothing for anything else', async (t, { store, sealed }) => {
  const clock = testClock()
  const app = await buildApp({ ...store, clock: clock.now, ttl: 600 })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const value = decodeURIComponent((cookieOf(login) as string).slice(4))
  const record = await app.sessions.authenticate(value)
  t.match(record, { userId: 'alice', data: { name: 'alice' }, transport: 'cookie', persistent: true, ttl: 600 })
  t.equal(record?.id, login.json().id)
  t.notOk('secretHash' in (record as object), 'no hash')
  t.notOk(JSON.stringify(record).includes(value.slice(-20)), 'no secret')
  if (sealed) t.equal(record?.ip, undefined, 'a sealed session keeps no address')
  else t.equal(record?.ip, '127.0.0.1')

  const tampered = value.slice(0, -2) + (value.at(-2) === 'A' ? 'B' : 'A') + value.at(-1)
  for (const credential of [tampered, '', 'garbage', value + 'x', 'x'.repeat(5000), `${value}.${value}`]) {
    t.equal(await app.sessions.authenticate(credential), undefined, `${credential.slice(0, 12)}…: undefined`)
  }
  for (const bad of [undefined, null, 42, { value }, [value]]) {
    await t.rejects(app.sessions.authenticate(bad as never), { code: 'FST_SESSION_OPTION_INVALID', message: /"credential"/ }, `${String(bad)}: a typed error`)
  }

  const other = decodeURIComponent((cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string).slice(4))
  await app.sessions.deleteAll('bob')
  t.equal(await app.sessions.authenticate(other), undefined, 'a revoked session')
  clock.tick(601_000)
  t.equal(await app.sessions.authenticate(value), undefined, 'an expired session')
})

onEveryStore(t, 'authenticate takes a bearer token too', async (t, { store }) => {
  const app = await buildApp({ ...store, bearer: true }, false, (app) => {
    app.post('/api/login', async (req) => {
      await req.session.login('carol', { transport: 'bearer', ttl: 300 })
      return { token: req.session.token }
    })
  })
  t.teardown(() => app.close())
  const token = (await app.inject({ method: 'POST', url: '/api/login' })).json().token as string
  t.match(await app.sessions.authenticate(token), { userId: 'carol', transport: 'bearer', ttl: 300 })
}, { sealed: false })

t.test('authenticate writes nothing: no deadline moves, no last-seen write to the store', async (t) => {
  const clock = testClock()
  const store = countedStore({ store: 'memory' }, clock.now)
  const app = await buildApp({ store, clock: clock.now, ttl: 600 })
  t.teardown(() => app.close())
  const value = decodeURIComponent((cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string).slice(4))
  const before = { ...store.calls }
  const first = await app.sessions.authenticate(value)
  clock.tick(300_000)
  const second = await app.sessions.authenticate(value)
  t.equal(second?.expiresAt, first?.expiresAt, 'the idle deadline did not move')
  t.same(store.calls, { ...before, get: (before.get ?? 0) + 2 }, 'two reads, no insert, patch or delete')
})

t.test('authenticate with the Redis store down rejects with the typed 503, it does not hang', async (t) => {
  const server = await redisServer(t, { own: true })
  if (server === undefined) return
  const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, timeout: 300 } })
  t.teardown(() => app.close())
  const value = decodeURIComponent((cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string).slice(4))
  server.pause()
  t.teardown(() => server.resume())
  const started = Date.now()
  await t.rejects(app.sessions.authenticate(value), { code: 'FST_SESSION_STORE_UNAVAILABLE', statusCode: 503 })
  t.ok(Date.now() - started < 2000, 'within the timeout')
  server.resume()
  t.match(await app.sessions.authenticate(value), { userId: 'alice' }, 'and works again')
})
