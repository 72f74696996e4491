import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, cookieOf, setCookieOf, testClock } from '../helpers/app.js'
import { onEveryStore } from '../helpers/stores.js'

// login()'s own options (issue 13): a session's own lifetimes and a cookie that dies with the
// browser, kept with the session on every store and enforced by the server, whatever the cookie says.

const MINUTE = 60_000

async function appWith (store: object, clock: ReturnType<typeof testClock>, extra: object = {}, more?: (app: FastifyInstance) => void) {
  return await buildApp({ ...store, clock: clock.now, ttl: 3600, absoluteTtl: 86_400, ...extra }, false, (app) => {
    more?.(app)
    app.post<{ Body: { user: string, options?: object } }>('/login-with', async (req) => {
      await req.session.login(req.body.user, req.body.options as never)
      req.session.set('name', req.body.user)
      return { id: req.session.id }
    })
    app.post('/regenerate', async (req) => {
      await req.session.regenerate()
      return { id: req.session.id }
    })
    app.post('/touch', async (req) => {
      req.session.touch()
      return { id: req.session.id }
    })
  })
}

t.test('invalid login options fail with FST_SESSION_OPTION_INVALID naming the option; nothing changes', async (t) => {
  const clock = testClock()
  const app = await appWith({}, clock)
  t.teardown(() => app.close())
  const first = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(first) as string
  const cases: Array<[unknown, string]> = [
    [{ ttl: -1 }, 'options.ttl'],
    [{ ttl: 0 }, 'options.ttl'],
    [{ ttl: 1.5 }, 'options.ttl'],
    [{ ttl: '60' }, 'options.ttl'],
    [{ ttl: Number.NaN }, 'options.ttl'],
    [{ ttl: 34_560_001 }, 'options.ttl'],
    [{ absoluteTtl: 0 }, 'options.absoluteTtl'],
    [{ absoluteTtl: Infinity }, 'options.absoluteTtl'],
    [{ ttl: 600, absoluteTtl: 300 }, 'options.ttl'],
    [{ ttl: 90_000 }, 'options.ttl'], // above the app's absoluteTtl
    [{ persistent: 'no' }, 'options.persistent'],
    [{ persistent: 0 }, 'options.persistent'],
    [{ transport: 'pigeon' }, 'options.transport'],
    [{ transport: 'bearer' }, 'options.transport'], // the plugin has no bearer: true
    [{ keepData: 5 }, 'options.keepData'],
    [{ remember: true }, 'options.remember'],
    [{ ttl: 60, maxAge: 60 }, 'options.maxAge'],
    [null, 'options'],
    ['yes', 'options']
  ]
  for (const [options, name] of cases) {
    const res = await app.inject({ method: 'POST', url: '/login-with', headers: { cookie }, payload: { user: 'bob', options } })
    t.equal(res.statusCode, 500, `${JSON.stringify(options)}: refused`)
    t.equal(res.json().code, 'FST_SESSION_OPTION_INVALID')
    t.match(res.json().message, `"${name}"`, `${JSON.stringify(options)} names ${name}`)
    t.equal(res.headers['set-cookie'], undefined, 'no cookie sent')
  }
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.same(me.json().userId, 'alice', 'the session is as it was')
  t.same((await app.sessions.getAll('bob')).length, 0, 'no session was created for bob')
  const ok = await app.inject({ method: 'POST', url: '/login-with', headers: { cookie }, payload: { user: 'bob', options: { ttl: 600, absoluteTtl: 600, persistent: true, keepData: false, transport: 'cookie' } } })
  t.equal(ok.statusCode, 200, 'ttl equal to absoluteTtl, every option given, is fine')
})

onEveryStore(t, 'persistent: false sends a cookie without Max-Age or Expires; the server still ends it', async (t, { store }) => {
  const clock = testClock()
  const app = await appWith(store, clock)
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'alice', options: { persistent: false } } })
  t.equal(login.statusCode, 200)
  const set = setCookieOf(login) as Record<string, unknown>
  t.ok(set.value, 'a cookie is set')
  t.equal(set.maxAge, undefined, 'no Max-Age')
  t.equal(set.expires, undefined, 'no Expires')
  t.notMatch(String(login.headers['set-cookie']), /max-age|expires/i)
  const cookie = cookieOf(login) as string
  // Past the refresh step (a tenth of the hour), a request pushes the deadline back: the cookie
  // goes out again, still without a lifetime.
  clock.tick(10 * MINUTE)
  const touched = await app.inject({ method: 'POST', url: '/touch', headers: { cookie } })
  const again = setCookieOf(touched) as Record<string, unknown>
  t.ok(again, 'the refreshed cookie is sent again')
  t.equal(again.maxAge, undefined, 'still no Max-Age after a refresh')
  const regenerated = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie: cookieOf(touched) ?? cookie } })
  t.equal((setCookieOf(regenerated) as Record<string, unknown>).maxAge, undefined, 'regenerate() keeps it')
  const current = cookieOf(regenerated) as string
  t.equal((await app.inject({ url: '/me', headers: { cookie: current } })).json().userId, 'alice')
  // The browser would keep a session cookie for as long as it runs: the server's idle deadline ends it.
  clock.tick(61 * MINUTE)
  t.equal((await app.inject({ url: '/me', headers: { cookie: current } })).json().userId, null, 'idle deadline enforced')
})

t.test('request.session.cookie of a session that dies with the browser: no expires, no maxAge, no originalMaxAge', async (t) => {
  const clock = testClock()
  const app = await appWith({ store: 'memory' }, clock, {}, (app) => {
    app.post<{ Body: { persistent: boolean } }>('/cookie-of', async (req) => {
      await req.session.login('alice', { persistent: req.body.persistent })
      const { expires, maxAge, originalMaxAge } = req.session.cookie
      return { expires, maxAge, originalMaxAge }
    })
  })
  t.teardown(() => app.close())
  t.same((await app.inject({ method: 'POST', url: '/cookie-of', payload: { persistent: false } })).json(),
    { expires: null, maxAge: null, originalMaxAge: null })
  t.same((await app.inject({ method: 'POST', url: '/cookie-of', payload: { persistent: true } })).json(),
    { expires: new Date(clock.now() + 3_600_000).toISOString(), maxAge: 3_600_000, originalMaxAge: 3_600_000 })
})

onEveryStore(t, 'ttl and absoluteTtl of one login replace the app\'s for that session only, and regenerate() keeps them', async (t, { store, sealed }) => {
  const clock = testClock()
  const app = await appWith(store, clock)
  t.teardown(() => app.close())
  const short = await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'alice', options: { ttl: 600, absoluteTtl: 1800 } } })
  const plain = await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'alice' } })
  t.equal((setCookieOf(short) as Record<string, unknown>).maxAge, 600, 'Max-Age from the session\'s ttl')
  t.equal((setCookieOf(plain) as Record<string, unknown>).maxAge, 3600, 'the other session keeps the app\'s')
  if (!sealed) {
    // Both logged in at the same instant of the clock: in the order of their ttl.
    const records = (await app.sessions.getAll('alice')).sort((x, y) => x.ttl - y.ttl)
    t.match(records, [
      { ttl: 600, absoluteTtl: 1800, persistent: true, transport: 'cookie', expiresAt: clock.now() + 600_000 },
      { ttl: 3600, absoluteTtl: 86_400, persistent: true, transport: 'cookie', expiresAt: clock.now() + 3_600_000 }
    ], 'records show each session\'s own settings and deadline')
  }
  let cookie = cookieOf(short) as string
  // Active every 9 minutes: the idle deadline rolls (refresh step: a tenth of 600 s), up to the
  // session's own absolute deadline of 30 minutes, not the app's day.
  for (let i = 0; i < 3; i++) {
    clock.tick(9 * MINUTE)
    const res = await app.inject({ method: 'POST', url: i === 1 ? '/regenerate' : '/touch', headers: { cookie } })
    t.equal(res.statusCode, 200)
    const set = setCookieOf(res) as Record<string, unknown>
    t.ok(set, `refreshed at ${(i + 1) * 9} min`)
    t.ok((set.maxAge as number) <= 600, 'Max-Age never above the session\'s ttl')
    cookie = cookieOf(res) as string
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice')
  }
  clock.tick(4 * MINUTE) // 31 minutes after login
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'the session\'s absolute deadline ends it')
  t.equal((await app.inject({ url: '/me', headers: { cookie: cookieOf(plain) as string } })).json().userId, 'alice',
    'the other session, on the app\'s hour, lives on')
})

onEveryStore(t, 'a session\'s own idle timeout ends it without activity, while the app\'s sessions live on', async (t, { store }) => {
  const clock = testClock()
  const app = await appWith(store, clock)
  t.teardown(() => app.close())
  const short = cookieOf(await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'bob', options: { ttl: 120 } } })) as string
  const plain = cookieOf(await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'bob' } })) as string
  clock.tick(121_000)
  t.equal((await app.inject({ url: '/me', headers: { cookie: short } })).json().userId, null, 'ended after its own 2 minutes')
  t.equal((await app.inject({ url: '/me', headers: { cookie: plain } })).json().userId, 'bob', 'the app\'s hour still runs')
})

t.test('on the cookie store, no login may outlive the app\'s absoluteTtl (revocations are kept that long)', async (t) => {
  const clock = testClock()
  const app = await appWith({ store: 'cookie', storeOptions: { revocation: 'memory' } }, clock)
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/login-with', payload: { user: 'alice', options: { absoluteTtl: 86_401 } } })
  t.equal(res.json().code, 'FST_SESSION_OPTION_INVALID')
  t.match(res.json().message, /"options\.absoluteTtl".*86400/)
  const memory = await appWith({}, clock)
  t.teardown(() => memory.close())
  const longer = await memory.inject({ method: 'POST', url: '/login-with', payload: { user: 'alice', options: { ttl: 172_800, absoluteTtl: 2_592_000 } } })
  t.equal(longer.statusCode, 200, 'a server-side store may give one login more than the app\'s')
  t.equal((setCookieOf(longer) as Record<string, unknown>).maxAge, 172_800)
})
