import t from 'tap'
import { MemoryStore } from '../../lib/index.js'
import { buildApp, cookieOf, counting, testClock } from '../helpers/app.js'

t.test('login: a new id bound to the user; the anonymous id is gone from the store', async (t) => {
  const clock = testClock()
  const store = counting(new MemoryStore({}, { clock: clock.now, log: console as never, maxSessionsPerUser: 100 }))
  const app = await buildApp({ store, clock: clock.now })
  t.teardown(() => app.close())
  const anon = await app.inject({ method: 'POST', url: '/set', payload: { key: 'cart', value: ['apple'] } })
  const anonCookie = cookieOf(anon)
  const anonId = (await app.inject({ url: '/me', headers: { cookie: anonCookie } })).json().id as string

  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: anonCookie }, payload: { user: 'alice' } })
  const userCookie = cookieOf(login)
  t.not(userCookie, anonCookie)
  const id = login.json().id as string
  t.not(id, anonId)
  t.equal(await app.sessions.get(anonId), undefined, 'old id deleted')
  const record = await app.sessions.get(id, 'alice')
  t.equal(record?.userId, 'alice')
  t.same(record?.data, { name: 'alice' }, 'anonymous data not carried over by default')
  t.equal(record?.authenticatedAt, clock.now())
  const old = await app.inject({ url: '/me', headers: { cookie: anonCookie } })
  t.same(old.json(), { id: null, userId: null, name: null }, 'the anonymous cookie no longer works')
})

t.test('session fixation: a planted cookie does not survive login (CVE-2023-29019)', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  // The attacker gets a session and plants its cookie in the victim's browser.
  const planted = cookieOf(await app.inject({ method: 'POST', url: '/set', payload: { key: '_csrf', value: 'attacker-known' } }))
  const victim = await app.inject({ method: 'POST', url: '/login', headers: { cookie: planted }, payload: { user: 'victim' } })
  t.ok(cookieOf(victim))
  const attacker = await app.inject({ url: '/me', headers: { cookie: planted } })
  t.same(attacker.json(), { id: null, userId: null, name: null })
  const record = await app.sessions.get(victim.json().id)
  t.notOk(record && '_csrf' in record.data, 'data planted before login is dropped')
})

t.test('login keepData carries all or the listed keys', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const c1 = cookieOf(await app.inject({ method: 'POST', url: '/set', payload: { key: 'cart', value: [1] } }))
  await app.inject({ method: 'POST', url: '/set', headers: { cookie: c1 }, payload: { key: 'theme', value: 'dark' } })
  const all = await app.inject({ method: 'POST', url: '/login', headers: { cookie: c1 }, payload: { user: 'a', keepData: true } })
  t.same((await app.sessions.get(all.json().id))?.data, { cart: [1], theme: 'dark', name: 'a' })

  const c2 = cookieOf(await app.inject({ method: 'POST', url: '/set', payload: { key: 'cart', value: [2] } }))
  await app.inject({ method: 'POST', url: '/set', headers: { cookie: c2 }, payload: { key: 'theme', value: 'light' } })
  const some = await app.inject({ method: 'POST', url: '/login', headers: { cookie: c2 }, payload: { user: 'b', keepData: ['cart', 'absent'] } })
  t.same((await app.sessions.get(some.json().id))?.data, { cart: [2], name: 'b' })
})

t.test('login on a fresh visitor, and with a numeric user id', async (t) => {
  const app = await buildApp()
  app.post('/login-num', async (req) => { await req.session.login(42); return { id: req.session.id, userId: req.session.userId } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login-num' })
  t.equal(res.json().userId, '42')
  t.equal((await app.sessions.getAll(42)).length, 1)
  t.equal((await app.sessions.getAll('42')).length, 1)
})

t.test('login rejects a bad user id with a typed error', async (t) => {
  const app = await buildApp()
  app.post('/bad', async (req) => { await req.session.login({} as unknown as string); return 'no' })
  app.post('/long', async (req) => { await req.session.login('x'.repeat(257)); return 'no' })
  app.post('/surrogate', async (req) => { await req.session.login('\uD800'); return 'no' })
  t.teardown(() => app.close())
  const bad = await app.inject({ method: 'POST', url: '/bad' })
  t.equal(bad.statusCode, 500)
  t.equal(bad.json().code, 'FST_SESSION_USER_ID_INVALID')
  t.equal((await app.inject({ method: 'POST', url: '/long' })).json().code, 'FST_SESSION_USER_ID_INVALID')
  const lone = await app.inject({ method: 'POST', url: '/surrogate' })
  t.match(lone.json(), { code: 'FST_SESSION_USER_ID_INVALID', message: /lone surrogate/ }, '"\uD800" would share a key with "\uFFFD"')
  await app.sessions.getAll('\uFFFD')
  t.equal((await app.sessions.getAll('😀')).length, 0, 'a well-formed pair is fine')
})

t.test('regenerate: new id, same data, old id deleted (@fastify/session #240)', async (t) => {
  const app = await buildApp()
  app.post('/regenerate', async (req) => {
    const before = req.session.id
    await req.session.regenerate()
    return { before, after: req.session.id }
  })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  const cookie = cookieOf(login)
  await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
  const res = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
  const { before, after } = res.json()
  t.not(before, after)
  const fresh = cookieOf(res)
  t.equal(await app.sessions.get(before), undefined)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'old cookie dead')
  t.same((await app.inject({ url: '/me', headers: { cookie: fresh } })).json(), { id: after, userId: 'carol', name: 'carol' })
  t.same((await app.inject({ url: '/counter', headers: { cookie: fresh } })).json(), { counter: 1 })
})

t.test('regenerate on an unsaved session only draws a new id', async (t) => {
  const app = await buildApp()
  app.post('/r', async (req) => {
    const before = req.session.id
    await req.session.regenerate()
    return { changed: before !== req.session.id }
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/r' })
  t.same(res.json(), { changed: true })
  t.equal(res.headers['set-cookie'], undefined)
})

t.test('destroy: deleted from the store, cookie expired; the object becomes a fresh session', async (t) => {
  const app = await buildApp()
  app.post('/destroy-then-flash', async (req) => {
    await req.session.destroy()
    req.session.set('flash', 'bye')
    return 'ok'
  })
  app.post('/destroy-fresh', async (req) => { await req.session.destroy(); return 'ok' })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } }))
  const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.match(out.headers['set-cookie'], /^sid=; Max-Age=0/)
  t.equal(out.headers['cache-control'], 'no-store')
  t.same(await app.sessions.getAll('dan'), [])

  const c2 = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } }))
  const flash = await app.inject({ method: 'POST', url: '/destroy-then-flash', headers: { cookie: c2 } })
  const c3 = cookieOf(flash)
  t.ok(c3)
  t.not(c3, c2)
  t.same(await app.sessions.getAll('dan'), [], 'the new session is anonymous')

  const none = await app.inject({ method: 'POST', url: '/destroy-fresh' })
  t.equal(none.headers['set-cookie'], undefined, 'nothing to expire on a fresh visitor')
})

t.test('a session written then destroyed in one request expires nothing it did not send... but clears what it set', async (t) => {
  const app = await buildApp()
  app.post('/login-then-destroy', async (req) => {
    await req.session.login('eve')
    await req.session.destroy()
    return 'ok'
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login-then-destroy' })
  t.match(res.headers['set-cookie'], /^sid=; Max-Age=0/)
  t.same(await app.sessions.getAll('eve'), [])
})

t.test('freshness: isFresh and requireFresh', async (t) => {
  const clock = testClock()
  const app = await buildApp({ clock: clock.now })
  app.post('/sensitive', async (req) => { req.session.requireFresh(300); return { fresh: req.session.isFresh(60) } })
  app.get('/bad-fresh', async (req) => req.session.isFresh(-1))
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'POST', url: '/sensitive' })).json().code, 'FST_SESSION_NOT_FRESH')
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'f' } }))
  t.same((await app.inject({ method: 'POST', url: '/sensitive', headers: { cookie } })).json(), { fresh: true })
  clock.tick(120_000)
  t.same((await app.inject({ method: 'POST', url: '/sensitive', headers: { cookie } })).json(), { fresh: false })
  clock.tick(200_000)
  const stale = await app.inject({ method: 'POST', url: '/sensitive', headers: { cookie } })
  t.equal(stale.statusCode, 401)
  t.equal((await app.inject('/bad-fresh')).json().code, 'FST_SESSION_OPTION_INVALID')
})
