import t from 'tap'
import { buildApp, cookieOf, logSink, testClock } from '../../helpers/app.js'

// The deadlines of a sealed session live inside the seal and are checked on the server, on
// the plugin's clock: a copied cookie stops working at its deadline whatever the client does.

t.test('the idle timeout is enforced on the server, whatever the browser keeps', async (t) => {
  const sink = logSink('debug')
  const clock = testClock()
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 60 }, sink.logger)
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  clock.tick(59_999)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  clock.tick(1)
  const expired = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(expired.json(), { counter: 0 })
  t.match(expired.headers['set-cookie'], /^sid=; Max-Age=0/)
  t.ok(sink.lines.some((l) => l.reason === 'expired' && l.level === 20))
})

t.test('rolling: refreshed once the step has passed, so that reads stay reads; the copy left behind keeps its deadline', async (t) => {
  const clock = testClock()
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 1000, refreshFraction: 0.1 })
  t.teardown(() => app.close())
  const first = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  clock.tick(99_000)
  const read = await app.inject({ url: '/counter', headers: { cookie: first } })
  t.equal(read.headers['set-cookie'], undefined, 'below the step: no Set-Cookie')
  clock.tick(1000)
  const refreshed = await app.inject({ url: '/counter', headers: { cookie: first } })
  t.match(refreshed.headers['set-cookie'], /Max-Age=1000/)
  const second = cookieOf(refreshed)
  clock.tick(900_000) // 1000 s after the first cookie was sealed, 900 s after the refresh
  t.same((await app.inject({ url: '/counter', headers: { cookie: first } })).json(), { counter: 0 }, 'the old cookie died at its own deadline')
  t.same((await app.inject({ url: '/counter', headers: { cookie: second } })).json(), { counter: 1 })
})

t.test('rolling: false never pushes the deadline back; touch() does', async (t) => {
  const clock = testClock()
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 100, rolling: false })
  app.get('/touch', async (req) => { req.session.touch(); return 'ok' })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  clock.tick(60_000)
  t.equal((await app.inject({ url: '/counter', headers: { cookie } })).headers['set-cookie'], undefined)
  clock.tick(30_000)
  const touched = await app.inject({ url: '/touch', headers: { cookie } })
  t.match(touched.headers['set-cookie'], /Max-Age=100/)
  const renewed = cookieOf(touched)
  clock.tick(90_000)
  t.same((await app.inject({ url: '/counter', headers: { cookie: renewed } })).json(), { counter: 1 })
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'the untouched copy expired')
  clock.tick(10_000)
  t.same((await app.inject({ url: '/counter', headers: { cookie: renewed } })).json(), { counter: 0 })
})

t.test('the absolute timeout holds however active the session is', async (t) => {
  const clock = testClock()
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 60, absoluteTtl: 300 })
  t.teardown(() => app.close())
  let cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  for (let i = 0; i < 9; i++) {
    clock.tick(30_000)
    const res = await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
    cookie = cookieOf(res) ?? cookie
  }
  clock.tick(29_000)
  const last = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(last.json(), { counter: 10 })
  clock.tick(1000)
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 0 }, 'gone at 300 s')
})

t.test('a shorter absoluteTtl applies at once to cookies sealed under a longer one', async (t) => {
  const clock = testClock()
  const long = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 600, absoluteTtl: 3600 })
  const short = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 600, absoluteTtl: 600 })
  t.teardown(async () => { await long.close(); await short.close() })
  const cookie = cookieOf(await long.inject({ method: 'POST', url: '/counter' }))
  clock.tick(500_000)
  const refreshed = cookieOf(await long.inject({ url: '/counter', headers: { cookie } }))
  t.ok(refreshed, 'the long app pushed the idle deadline to 1100 s')
  clock.tick(100_000)
  t.same((await long.inject({ url: '/counter', headers: { cookie: refreshed } })).json(), { counter: 1 })
  t.same((await short.inject({ url: '/counter', headers: { cookie: refreshed } })).json(), { counter: 0 },
    'created 600 s ago: past the new absolute deadline')
})
