import t from 'tap'
import {
  CookieStore, knownStores, registerStore, type SealedSession, type StatelessStore, type StoreContext
} from '../../../lib/index.js'
import { buildApp, cookieOf, logSink, OLD_SECRET, SECRET, setCookieOf, testClock } from '../../helpers/app.js'

// The cookie store ('cookie'): the whole session travels in the cookie, sealed with ChaCha20-Poly1305 (lib/crypto/seal.ts).

const context: StoreContext = { clock: Date.now, log: console as never, maxSessionsPerUser: 10, secrets: [SECRET], cookieName: 'sid' }

function valueOf (cookie: string | undefined): string {
  return decodeURIComponent((cookie as string).slice((cookie as string).indexOf('=') + 1))
}

t.test('registered at import as "cookie"', async (t) => {
  t.ok(knownStores().includes('cookie'))
})

t.test('round trip: the data travel sealed in the cookie; nothing readable in it', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  app.get('/dump', async (req) => req.session.toJSON())
  t.teardown(() => app.close())
  const first = await app.inject({ method: 'POST', url: '/set', payload: { key: 'profile', value: { name: 'Zoë', tags: ['a', 'b'], n: 1.5, ok: true, none: null } } })
  const cookie = cookieOf(first) as string
  const value = valueOf(cookie)
  t.match(value, /^v2\.[A-Za-z0-9_-]+$/, 'version prefix, then base64url')
  t.equal(first.headers['cache-control'], 'no-store')
  // Checks that a random ciphertext passes with certainty: short needles ('Zo') turn up in
  // random base64url by chance (a failed CI run: 'Zo' inside the sealed cookie).
  t.notMatch(value, /profile/)
  const plain = JSON.stringify({ profile: { name: 'Zoë', tags: ['a', 'b'] } })
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.from(plain.slice(shift)).toString('base64url').slice(4, 24)
    t.notOk(value.includes(encoded), `not the data in base64url (alignment ${shift})`)
  }
  t.notMatch(Buffer.from(value.slice(3), 'base64url').toString('latin1'), /profile|"name"|"tags"/, 'encrypted, not only encoded')
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json(), { profile: { name: 'Zoë', tags: ['a', 'b'], n: 1.5, ok: true, none: null } })

  const counted = await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })
  t.same(counted.json(), { counter: 1 })
  const next = cookieOf(counted) as string
  t.not(next, cookie, 'a write seals the cookie again')
  t.same((await app.inject({ url: '/dump', headers: { cookie: next } })).json(), { profile: { name: 'Zoë', tags: ['a', 'b'], n: 1.5, ok: true, none: null }, counter: 1 })
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().counter, undefined, 'the older cookie holds the older data')
})

t.test('reads stay reads: no Set-Cookie until something changes', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  t.teardown(() => app.close())
  const anon = await app.inject('/counter')
  t.equal(anon.headers['set-cookie'], undefined, 'a visitor whose session is never written gets no cookie')
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  const read = await app.inject({ url: '/counter', headers: { cookie } })
  t.same(read.json(), { counter: 1 })
  t.equal(read.headers['set-cookie'], undefined)
})

t.test('login, me, timestamps; ids are public handles bound to the user', async (t) => {
  const clock = testClock(1_000_000)
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, clock: clock.now, ttl: 60 })
  app.get('/times', async (req) => ({
    isNew: req.session.isNew,
    createdAt: req.session.createdAt ?? null,
    expiresAt: req.session.expiresAt ?? null,
    authenticatedAt: req.session.authenticatedAt ?? null
  }))
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(login)
  const id = login.json().id as string
  t.match(id, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/, 'a user\'s tag, then 128 random bits')
  t.notMatch(id, /^YWxpY2U/, 'not the user id in base64url')
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { id, userId: 'alice', name: 'alice' })
  t.same((await app.inject({ url: '/times', headers: { cookie } })).json(),
    { isNew: false, createdAt: 1_000_000, expiresAt: 1_060_000, authenticatedAt: 1_000_000 })
})

t.test('rotation: the first secret seals, all open; a cookie sealed with an older one is re-sealed on a read', async (t) => {
  const old = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, secret: OLD_SECRET })
  t.teardown(() => old.close())
  const oldCookie = cookieOf(await old.inject({ method: 'POST', url: '/counter' })) as string

  const rotated = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, secret: [SECRET, OLD_SECRET] })
  t.teardown(() => rotated.close())
  const res = await rotated.inject({ url: '/counter', headers: { cookie: oldCookie } })
  t.same(res.json(), { counter: 1 })
  const renewed = cookieOf(res) as string
  t.ok(renewed, 're-sealed on a read')
  t.match(res.headers['set-cookie'], /Max-Age=86400/)
  const again = await rotated.inject({ url: '/counter', headers: { cookie: renewed } })
  t.equal(again.headers['set-cookie'], undefined, 'a cookie sealed with the newest secret is not re-sealed')

  const newOnly = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, secret: SECRET })
  t.teardown(() => newOnly.close())
  t.same((await newOnly.inject({ url: '/counter', headers: { cookie: renewed } })).json(), { counter: 1 })
  t.same((await newOnly.inject({ url: '/counter', headers: { cookie: oldCookie } })).json(), { counter: 0 },
    'once the old secret is retired, its cookies no longer open')
})

t.test('the cookie name is bound into the seal: a cookie does not open under another name', async (t) => {
  const a = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, cookieName: 'a' })
  const b = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' }, cookieName: 'b' })
  t.teardown(async () => { await a.close(); await b.close() })
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/counter' }), 'a') as string
  t.same((await a.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  t.same((await b.inject({ url: '/counter', headers: { cookie: 'b=' + cookie.slice(2) } })).json(), { counter: 0 })
})

t.test('login, regenerate and destroy: new ids; a copy of the cookie stops at logout', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  app.post('/regenerate', async (req) => {
    const before = req.session.id
    await req.session.regenerate()
    return { before, after: req.session.id }
  })
  t.teardown(() => app.close())
  const anon = cookieOf(await app.inject({ method: 'POST', url: '/set', payload: { key: 'cart', value: [1] } }))
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: 'bob', keepData: ['cart'] } })
  const cookie = cookieOf(login)
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.same(me.json(), { id: login.json().id, userId: 'bob', name: 'bob' })

  const regen = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
  const { before, after } = regen.json()
  t.equal(before, login.json().id)
  t.not(after, before)
  const fresh = cookieOf(regen)
  t.same((await app.inject({ url: '/me', headers: { cookie: fresh } })).json(), { id: after, userId: 'bob', name: 'bob' })

  const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: fresh } })
  t.match(out.headers['set-cookie'], /^sid=; Max-Age=0/)
  t.equal((await app.inject({ url: '/me', headers: { cookie: fresh } })).json().userId, null,
    'the revocation store, which the plugin requires, stops a copied cookie (CVE-2024-31999)')
})

t.test('app.sessions: get, upsert and getAll are unsupported (no session on the server to read)', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  t.teardown(() => app.close())
  const unsupported = { code: 'FST_SESSION_STORE_UNSUPPORTED', statusCode: 501 }
  const names = /use a server-side store such as "memory" or "redis"/
  await t.rejects(app.sessions.get('A'.repeat(22)), { ...unsupported, message: /does not support get; a stateless store keeps no session on the server/ })
  await t.rejects(app.sessions.getAll('alice'), { ...unsupported, message: names })
  await t.rejects(app.sessions.getAll(undefined), unsupported, 'whatever the user')
  await t.rejects(app.sessions.upsert({ id: 'A'.repeat(22), data: {} }), { ...unsupported, message: /support upsert/ })
  const res = await app.inject({ url: '/devices' })
  t.equal(res.statusCode, 501)
})

t.test('save() seals now, so that the handler hears of a problem', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  app.post('/save', async (req) => {
    req.session.set('a', 1)
    await req.session.save()
    await req.session.save()
    return 'saved'
  })
  app.post('/noop-save', async (req) => { await req.session.save(); return 'nothing' })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/save' })
  t.equal(res.body, 'saved')
  t.equal(res.cookies.length, 1)
  t.same((await app.inject({ url: '/me', headers: { cookie: cookieOf(res) } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/noop-save' })).headers['set-cookie'], undefined)
})

t.test('storeOptions are checked at register(), naming the option', async (t) => {
  await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocaton: 'memory' } as never }),
    { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions.revocaton": unknown option; known: revocation/ })
  for (const revocation of ['postgres', 42, null, true]) {
    await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation } as never }),
      { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions.revocation": must be 'memory', \{ type: 'memory' \}, \{ type: 'redis', client or url \}/ })
  }
  await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: { type: 'mongo' } } as never }), { code: 'FST_SESSION_OPTION_INVALID' })
  await t.rejects(buildApp({ store: 'cookie', storeOptions: { revocation: { isRevoked () {} } } as never }),
    { code: 'FST_SESSION_STORE_INVALID', message: /storeOptions.revocation lacks the method\(s\) generation, revoke, revokeAll/ })
  t.throws(() => new CookieStore(null as never, context), { code: 'FST_SESSION_OPTION_INVALID', message: /"storeOptions": must be an object/ })
  const bare = { clock: Date.now, log: console as never, maxSessionsPerUser: 1 }
  t.throws(() => new CookieStore({}, bare), { code: 'FST_SESSION_SECRET_INVALID', message: /is required by the cookie store/ })
  t.throws(() => new CookieStore({}, { ...bare, secrets: [], cookieName: 'sid' }), { code: 'FST_SESSION_SECRET_INVALID' })
  t.throws(() => new CookieStore({}, { ...bare, secrets: [SECRET] }), { code: 'FST_SESSION_STORE_INVALID', message: /needs the cookie name/ })
})

t.test('a stateless store object: used as it is; one that misses methods is refused, naming them', async (t) => {
  const inner = new CookieStore({ revocation: 'memory' }, context)
  t.teardown(() => inner.close())
  const opened: string[] = []
  const store: StatelessStore = {
    stateless: true,
    seal: (s: SealedSession) => inner.seal(s),
    open: (value: string) => { opened.push(value); return inner.open(value) },
    revocation: inner.revocation
  }
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  t.equal(opened.length, 1)
  await app.close()

  await t.rejects(buildApp({ store: { stateless: true, seal () {} } as never }),
    { code: 'FST_SESSION_STORE_INVALID', message: /the store object lacks the method\(s\) open$/ })
  await t.rejects(buildApp({ store: { ...store, revocation: { isRevoked () {}, generation () {} } } as never }),
    { code: 'FST_SESSION_STORE_INVALID', message: /the revocation store of the store object lacks the method\(s\) revoke, revokeAll/ })
  await t.rejects(buildApp({ store: { ...store, revocation: null } as never }),
    { code: 'FST_SESSION_STORE_INVALID', message: /the revocation store of the store object is not an object/ })
  registerStore('sealed-by-name', (_options, ctx) => new CookieStore({ revocation: 'memory' }, ctx))
  const named = await buildApp({ store: 'sealed-by-name' as never })
  t.teardown(() => named.close())
  const login = await named.inject({ method: 'POST', url: '/login', payload: { user: 'u' } })
  t.equal((await named.inject({ url: '/me', headers: { cookie: cookieOf(login) } })).json().userId, 'u')
})

t.test('bad cookies: a fresh anonymous session, a debug line, the cookie expired, never a 500; nothing of it logged', async (t) => {
  const sink = logSink('debug')
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } }, sink.logger)
  t.teardown(() => app.close())
  const good = valueOf(cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })))
  const body = good.slice(3)
  const half = Math.floor(body.length / 2)
  const cases: Array<[string, string, string]> = [
    ['garbage', 'garbage', 'bad seal'],
    ['no body', 'v2.', 'bad seal'],
    ['not base64url', 'v2.' + body.slice(0, -1) + '+', 'bad seal'],
    ['wrong version', 'v1.' + body, 'bad seal'],
    ['no version', body, 'bad seal'],
    ['truncated', good.slice(0, -5), 'bad seal'],
    ['too short to hold a tag', 'v2.' + body.slice(0, 40), 'bad seal'],
    ['re-ordered', 'v2.' + body.slice(half) + body.slice(0, half), 'bad seal'],
    ['one bit flipped', 'v2.' + body.slice(0, 30) + (body[30] === 'A' ? 'B' : 'A') + body.slice(31), 'bad seal'],
    ['oversized', 'v2.' + 'A'.repeat(5000), 'oversized']
  ]
  for (const [name, value, reason] of cases) {
    const before = sink.lines.length
    const res = await app.inject({ url: '/me', headers: { cookie: `sid=${encodeURIComponent(value)}` } })
    t.equal(res.statusCode, 200, name)
    t.same(res.json(), { id: null, userId: null, name: null }, name)
    t.match(res.headers['set-cookie'], /^sid=; Max-Age=0/, `${name}: expired`)
    t.ok(sink.lines.slice(before).some((l) => l.reason === reason && l.level === 20), `${name}: debug line "${reason}"`)
  }
  t.notOk(sink.text().includes(body.slice(0, 20)), 'no cookie contents in the logs')
  t.notOk(sink.text().includes('YWxpY2U'), 'no id in the logs')
  t.equal((await app.inject({ url: '/me', headers: { cookie: `sid=${good}` } })).json().userId, 'alice')
  t.ok(setCookieOf(await app.inject({ method: 'POST', url: '/counter', headers: { cookie: 'sid=garbage' } })), 'a write replaces a refused cookie')
})
