import t from 'tap'
import { decodePolicy, DEFAULT_POLICY, encodePolicy, MAX_LIFETIME } from '../../lib/backends/policy.js'
import { buildApp, cookieOf, delegate, SECRET } from '../helpers/app.js'
import { CookieStore, MemoryStore, type StatelessStore, type StoredSession } from '../../lib/index.js'
import { pino } from 'pino'

// A session's own settings as stores keep them: one canonical spelling, anything else refused.

t.test('encode and decode: the canonical form round trips, anything else is unreadable', async (t) => {
  t.equal(encodePolicy(DEFAULT_POLICY), undefined, 'the app\'s settings are no string at all')
  t.equal(decodePolicy(undefined), DEFAULT_POLICY)
  const all = { ttl: 600, absoluteTtl: 3600, persistent: false, transport: 'bearer' as const }
  t.equal(encodePolicy(all), 'b.s.t600.a3600')
  t.same(decodePolicy('b.s.t600.a3600'), all)
  t.equal(decodePolicy('b.s.t600.a3600'), decodePolicy('b.s.t600.a3600'), 'decoded once, then cached')
  t.same(decodePolicy('t' + MAX_LIFETIME), { ...DEFAULT_POLICY, ttl: MAX_LIFETIME })
  for (const bad of ['', '.', 'b.b', 's.s', 't1.t2', 'a1.a2', 's.b', 'a60.t30', 't0', 't01', 't-1', 't1.5', 't', 'a',
    't' + (MAX_LIFETIME + 1), 'x', 'B', 'b.', '.b', 'b..s', 't60 ', 'T60', 't1e3', 't١٢']) {
    t.equal(decodePolicy(bad), undefined, JSON.stringify(bad))
  }
  for (let i = 0; i < 1100; i++) decodePolicy('junk' + i) // fills the cache past its bound: it is emptied, not grown
  t.same(decodePolicy('s'), { ...DEFAULT_POLICY, persistent: false })
})

t.test('a stored session whose settings cannot be read never authenticates, nor shows on a devices page', async (t) => {
  const memory = new MemoryStore({}, { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 })
  let corrupt = false
  const spoil = (s: StoredSession | undefined): StoredSession | undefined => s === undefined || !corrupt ? s : { ...s, policy: 'z' }
  const store = delegate(memory, {
    get: async (id) => spoil(await memory.get(id)),
    getAll: async (userId) => (await memory.getAll(userId)).map((s) => spoil(s) as StoredSession)
  })
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(login) as string
  corrupt = true
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'refused')
  t.same(await app.sessions.getAll('alice'), [], 'not listed')
  t.equal(await app.sessions.get(login.json().id), undefined, 'not found')
  t.equal(await app.sessions.authenticate(decodeURIComponent(cookie.slice(4))), undefined)
  corrupt = false
  t.equal((await app.inject({ url: '/me', headers: { cookie: cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string } })).json().userId, 'alice')
})

t.test('a sealed session whose settings cannot be read never authenticates', async (t) => {
  const inner = new CookieStore({ revocation: 'memory' }, { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100, secrets: [SECRET], cookieName: 'sid' })
  let corrupt = false
  const store: StatelessStore = {
    stateless: true,
    revocation: inner.revocation,
    seal: (s) => inner.seal(s),
    open: (value) => {
      const opened = inner.open(value)
      return opened === undefined || !corrupt ? opened : { ...opened, session: { ...opened.session, policy: 'b' } }
    }
  }
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, 'alice')
  corrupt = true
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'a bearer setting in a cookie is refused')
  t.match(await app.sessions.authenticate(decodeURIComponent(cookie.slice(4))), { transport: 'bearer' },
    'authenticate() takes either transport and reports it')
})
