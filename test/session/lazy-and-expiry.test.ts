import t from 'tap'
import { MemoryStore } from '../../lib/index.js'
import { buildApp, cookieOf, counting, testClock } from '../helpers/app.js'

function store (clock: () => number): MemoryStore & { calls: Record<string, number> } {
  return counting(new MemoryStore({}, { clock, log: console as never, maxSessionsPerUser: 100 }))
}

t.test('a visitor whose session is never written costs no store call and gets no cookie', async (t) => {
  const clock = testClock()
  const s = store(clock.now)
  const app = await buildApp({ store: s, clock: clock.now })
  t.teardown(() => app.close())
  for (const url of ['/', '/counter', '/me']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['set-cookie'], undefined, url)
  }
  t.same(s.calls, {})
  t.equal(s.stats().sessions, 0)
})

t.test('reads stay reads: one get, no write, no cookie, until the refresh step', async (t) => {
  const clock = testClock()
  const s = store(clock.now)
  const app = await buildApp({ store: s, clock: clock.now, ttl: 1000, refreshFraction: 0.1 })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  t.same(s.calls, { insert: 1 })

  clock.tick(99_000) // below 10% of the ttl
  const read = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(read.json(), { counter: 1 })
  t.equal(read.headers['set-cookie'], undefined)
  t.same(s.calls, { insert: 1, get: 1 })

  clock.tick(1000) // now 10% of the ttl has passed: one refresh, cookie re-sent
  const refreshed = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(s.calls, { insert: 1, get: 2, patch: 1 })
  t.match(refreshed.headers['set-cookie'], /Max-Age=1000/)

  const write = await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
  t.same(write.json(), { counter: 2 })
  t.same(s.calls, { insert: 1, get: 3, patch: 2 })
  t.equal(write.headers['set-cookie'], undefined, 'a write within the step does not resend the cookie')
})

t.test('rolling: false never pushes the deadline back; touch() does', async (t) => {
  const clock = testClock()
  const app = await buildApp({ clock: clock.now, ttl: 100, rolling: false })
  app.get('/touch', async (req) => { req.session.touch(); return 'ok' })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  clock.tick(60_000)
  t.equal((await app.inject({ url: '/counter', headers: { cookie } })).headers['set-cookie'], undefined)
  clock.tick(30_000)
  const touched = await app.inject({ url: '/touch', headers: { cookie } })
  t.match(touched.headers['set-cookie'], /Max-Age=100/)
  clock.tick(90_000) // 180 s after creation, 90 s after the touch
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  clock.tick(10_000)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'idle deadline passed')
})

t.test('idle timeout is enforced on the server, whatever the cookie says', async (t) => {
  const clock = testClock()
  const app = await buildApp({ clock: clock.now, ttl: 60 })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  clock.tick(59_999)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  clock.tick(60_000)
  const expired = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(expired.json(), { counter: 0 })
  t.match(expired.headers['set-cookie'], /Max-Age=0/)
})

t.test('the absolute timeout holds however active the session is', async (t) => {
  const clock = testClock()
  const app = await buildApp({ clock: clock.now, ttl: 60, absoluteTtl: 300 })
  t.teardown(() => app.close())
  const first = await app.inject({ method: 'POST', url: '/counter' })
  const cookie = cookieOf(first)
  let last = 1
  for (let i = 0; i < 9; i++) {
    clock.tick(30_000)
    const res = await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
    last = res.json().counter
  }
  t.equal(last, 10, 'alive at 270 s thanks to activity')
  clock.tick(29_000)
  const capped = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(capped.json(), { counter: 10 })
  clock.tick(1000)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'gone at 300 s')
})

t.test('session timestamps are exposed', async (t) => {
  const clock = testClock(1_000_000)
  const app = await buildApp({ clock: clock.now, ttl: 60 })
  app.get('/times', async (req) => ({
    isNew: req.session.isNew,
    createdAt: req.session.createdAt ?? null,
    expiresAt: req.session.expiresAt ?? null,
    lastSeenAt: req.session.lastSeenAt ?? null,
    authenticatedAt: req.session.authenticatedAt ?? null
  }))
  t.teardown(() => app.close())
  t.same((await app.inject('/times')).json(), { isNew: true, createdAt: null, expiresAt: null, lastSeenAt: null, authenticatedAt: null })
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'u' } }))
  clock.tick(5000)
  t.same((await app.inject({ url: '/times', headers: { cookie } })).json(),
    { isNew: false, createdAt: 1_000_000, expiresAt: 1_060_000, lastSeenAt: 1_005_000, authenticatedAt: 1_000_000 },
    'the memory store refreshes lastSeenAt on the read')
})
