import t, { type Test } from 'tap'
import { MemoryStore, Session } from '../../lib/index.js'
import { buildApp, cookieOf, counting, delegate, testClock } from '../helpers/app.js'

// Session data as properties (the express-session dialect): the same meaning as get, set,
// delete and has; members keep theirs; objects changed in place are saved with the response.

type Bag = Record<string | symbol, any>

async function app (t: Test) {
  const clock = testClock()
  const store = counting(new MemoryStore({}, { clock: clock.now, log: console as never, maxSessionsPerUser: 100 }))
  const a = await buildApp({ store, clock: clock.now })
  t.teardown(() => a.close())
  return { app: a, store, clock }
}

t.test('assign, read, delete, in, Object.keys, spread and JSON.stringify are set, get, delete, has and the data', async (t) => {
  const { app: a } = await app(t)
  a.post('/props', async (req) => {
    const s = req.session as unknown as Bag
    s.name = 'alice'
    s.cart = ['apple']
    s.gone = 1
    delete s.gone
    s.nothing = undefined
    return {
      name: s.name,
      viaGet: req.session.get('cart'),
      has: ['name' in s, 'gone' in s, 'nothing' in s, 'get' in s, 'id' in s],
      keys: Object.keys(s),
      spread: { ...s },
      json: JSON.parse(JSON.stringify(s)),
      entries: Object.entries(s),
      own: [Object.hasOwn(s, 'name'), Object.hasOwn(s, 'get'), Object.prototype.hasOwnProperty.call(s, 'cart')],
      descriptor: Object.getOwnPropertyDescriptor(s, 'name'),
      instance: s instanceof Session,
      inherited: typeof s.hasOwnProperty,
      missing: s.missing ?? null
    }
  })
  a.get('/read', async (req) => ({ ...(req.session as unknown as Bag) }))
  const res = await a.inject({ method: 'POST', url: '/props' })
  t.same(res.json(), {
    name: 'alice',
    viaGet: ['apple'],
    has: [true, false, false, true, true],
    keys: ['name', 'cart'],
    spread: { name: 'alice', cart: ['apple'] },
    json: { name: 'alice', cart: ['apple'] },
    entries: [['name', 'alice'], ['cart', ['apple']]],
    own: [true, false, true],
    descriptor: { value: 'alice', writable: true, enumerable: true, configurable: true },
    instance: true,
    inherited: 'function',
    missing: null
  })
  const cookie = cookieOf(res) as string
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json(), { name: 'alice', cart: ['apple'] }, 'stored')
})

t.test('members keep their meaning; assigning to or deleting one throws FST_SESSION_MEMBER_READONLY', async (t) => {
  const { app: a } = await app(t)
  a.post<{ Querystring: { case: string } }>('/member', async (req) => {
    const s = req.session as unknown as Bag
    const cases: Record<string, () => unknown> = {
      assign: () => { s.id = 'mine' },
      method: () => { s.regenerate = 1 },
      inherited: () => { s['toString' as string] = 'x' },
      del: () => { delete s.get },
      define: () => Object.defineProperty(s, 'login', { value: 1 }),
      accessor: () => Object.defineProperty(s, 'x', { get: () => 1 }),
      freeze: () => Object.freeze(s),
      proto: () => Object.setPrototypeOf(s, null)
    }
    cases[req.query.case]?.()
    return 'no error'
  })
  for (const c of ['assign', 'method', 'inherited', 'del', 'define']) {
    const res = await a.inject({ method: 'POST', url: `/member?case=${c}` })
    t.match(res.json(), { code: 'FST_SESSION_MEMBER_READONLY', message: /request\.session\.\w+ is a member of the session, not data; .*set\("\w+", value\)/ }, c)
  }
  t.match((await a.inject({ method: 'POST', url: '/member?case=accessor' })).json(), { code: 'FST_SESSION_VALUE_INVALID' })
  for (const c of ['freeze', 'proto']) {
    t.equal((await a.inject({ method: 'POST', url: `/member?case=${c}` })).statusCode, 500, `${c}: refused`)
  }
})

t.test('a data key named like a member is reachable through get/set only', async (t) => {
  const { app: a } = await app(t)
  a.post('/collide', async (req) => {
    const s = req.session as unknown as Bag
    req.session.set('id' as never, 'data-id' as never).set('get' as never, 5 as never)
    s.plain = 1
    const sym = Symbol('mine')
    const first = req.session.get
    s[sym] = 'on the object'
    return {
      id: typeof s.id,
      get: typeof s.get,
      viaGet: [req.session.get('id' as never), req.session.get('get' as never)],
      keys: Object.keys(s),
      json: req.session.toJSON(),
      symbol: s[sym],
      symbolIn: sym in s,
      symbolKeys: Object.getOwnPropertySymbols(s).length,
      symbolDescriptor: Object.getOwnPropertyDescriptor(s, sym)?.value,
      symbolDeleted: delete s[sym],
      symbolGone: s[sym] === undefined,
      symbolDefined: Object.defineProperty(s, sym, { value: 2, configurable: true })[sym],
      defined: Object.defineProperty(s, 'defined', { value: 'as set()' }).defined,
      chained: req.session.set('a', 1) === req.session && req.session.touch() === req.session,
      methodsStable: first === req.session.get
    }
  })
  t.same((await a.inject({ method: 'POST', url: '/collide' })).json(), {
    id: 'string',
    get: 'function',
    viaGet: ['data-id', 5],
    keys: ['plain'],
    json: { id: 'data-id', get: 5, plain: 1 },
    symbol: 'on the object',
    symbolIn: true,
    symbolKeys: 1,
    symbolDescriptor: 'on the object',
    symbolDeleted: true,
    symbolGone: true,
    symbolDefined: 2,
    defined: 'as set()',
    chained: true,
    methodsStable: true
  })
})

t.test('passport-oauth2: an object created, changed in place, emptied and deleted is saved each time', async (t) => {
  const { app: a, store } = await app(t)
  const key = 'oauth2:provider'
  a.get('/authorize', async (req) => {
    const s = req.session as unknown as Bag
    if (!s[key]) s[key] = {}
    s[key].state = { handle: 'h1', code_verifier: 'v1' }
    return 'redirect'
  })
  a.get('/callback', async (req) => {
    const s = req.session as unknown as Bag
    if (!s[key]) return { state: null }
    const state = s[key].state
    delete s[key].state
    if (Object.keys(s[key]).length === 0) delete s[key]
    return { state, left: Object.keys(s) }
  })
  a.get('/nested', async (req) => {
    const s = req.session as unknown as Bag
    s.profile.tags.push('b')
    return 'ok'
  })
  a.get('/via-get', async (req) => {
    (req.session.get('profile') as Bag).nick = 'al'
    return 'ok'
  })
  a.get('/read', async (req) => ({ ...(req.session as unknown as Bag), profile: (req.session as unknown as Bag).profile }))
  a.post('/profile', async (req) => { (req.session as unknown as Bag).profile = { tags: ['a'] }; return 'ok' })

  const first = await a.inject({ url: '/authorize' })
  const cookie = cookieOf(first) as string
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json(), { [key]: { state: { handle: 'h1', code_verifier: 'v1' } } })
  const patches = store.calls.patch ?? 0
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json()[key].state.handle, 'h1')
  t.equal(store.calls.patch ?? 0, patches, 'an object only read is no write')

  t.same((await a.inject({ url: '/authorize', headers: { cookie } })).statusCode, 200)
  t.equal(store.calls.patch ?? 0, patches, 'the same state written in place is no change')
  t.same((await a.inject({ url: '/callback', headers: { cookie } })).json(), { state: { handle: 'h1', code_verifier: 'v1' }, left: [] })
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json(), {}, 'nothing of it left')
  t.same((await a.inject({ url: '/callback', headers: { cookie } })).json(), { state: null }, 'a replayed callback finds nothing')

  await a.inject({ method: 'POST', url: '/profile', headers: { cookie } })
  await a.inject({ url: '/nested', headers: { cookie } })
  await a.inject({ url: '/via-get', headers: { cookie } })
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json().profile, { tags: ['a', 'b'], nick: 'al' }, 'changes in place, through properties and get()')
})

t.test('an object changed in place to hold what cannot be stored fails the response, naming the path; nothing is stored', async (t) => {
  const { app: a } = await app(t)
  a.post('/cart', async (req) => { (req.session as unknown as Bag).cart = { items: [{ sku: 'a' }] }; return 'ok' })
  a.post('/date', async (req) => {
    (req.session as unknown as Bag).cart.items[0].at = new Date()
    return 'ok'
  })
  a.post('/set-then-change', async (req) => {
    const cart = { items: [] as unknown[] }
    req.session.set('other', cart)
    cart.items.push(NaN)
    await req.session.save()
    return 'ok'
  })
  a.post('/cycle', async (req) => {
    const cart = (req.session as unknown as Bag).cart
    cart.self = cart
    return 'ok'
  })
  a.get('/read', async (req) => req.session.toJSON())
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/cart' })) as string
  const res = await a.inject({ method: 'POST', url: '/date', headers: { cookie } })
  t.equal(res.statusCode, 500)
  t.match(res.json(), { code: 'FST_SESSION_VALUE_INVALID', message: 'Session value at "cart.items[0].at" cannot be stored: a Date would come back as a string; store date.getTime() or date.toISOString()' })
  t.match((await a.inject({ method: 'POST', url: '/set-then-change', headers: { cookie } })).json(), { code: 'FST_SESSION_VALUE_INVALID', message: /"other\.items\[0\]".*NaN/ })
  t.match((await a.inject({ method: 'POST', url: '/cycle', headers: { cookie } })).json(), { code: 'FST_SESSION_VALUE_INVALID', message: /"cart\.self".*circular/ })
  t.same((await a.inject({ url: '/read', headers: { cookie } })).json(), { cart: { items: [{ sku: 'a' }] } }, 'nothing stored')
})

t.test('the express-session / @fastify/session dialect: sessionId, cookie, callbacks, reload', async (t) => {
  const { app: a, clock } = await app(t)
  a.post('/callbacks', async (req) => {
    const s = req.session
    s.set('a', 1)
    await new Promise<void>((resolve, reject) => { s.save((err) => { if (err) reject(err); else resolve() }) })
    const before = s.sessionId
    await new Promise<void>((resolve, reject) => { s.regenerate(['a'], (err) => { if (err) reject(err); else resolve() }) })
    const after = s.sessionId
    await new Promise<void>((resolve) => { s.regenerate(() => { resolve() }) })
    s.set('b', 2)
    await new Promise<void>((resolve) => { s.reload(() => { resolve() }) })
    return { renewed: before !== after && after !== s.sessionId, id: s.id === s.sessionId, data: s.toJSON(), cookie: s.cookie }
  })
  a.post('/destroy-cb', async (req) => {
    await new Promise<void>((resolve) => { req.session.destroy(() => { resolve() }) })
    return { isNew: req.session.isNew }
  })
  a.post('/bad-callback', async (req) => { req.session.save('no' as never); return 'ok' })
  a.post('/reload', async (req) => {
    const s = req.session as unknown as Bag
    s.a = 'changed'
    s.z = 1
    await req.session.reload()
    return req.session.toJSON()
  })
  a.post('/reload-new', async (req) => {
    req.session.set('x', 1)
    await req.session.reload()
    return { data: req.session.toJSON(), cookie: req.session.cookie }
  })
  a.post('/reload-gone', async (req) => {
    await a.sessions.delete(req.session.id)
    await req.session.reload()
    return 'no'
  })
  a.post('/fail-cb', async (req) => {
    await a.sessions.delete(req.session.id)
    const err = await new Promise((resolve) => { req.session.reload(resolve) })
    return { code: (err as { code: string }).code, isNew: req.session.isNew }
  })
  const res = await a.inject({ method: 'POST', url: '/callbacks' })
  const body = res.json()
  t.match(body, { renewed: true, id: true, data: { a: 1 } })
  t.same(body.cookie, {
    path: '/',
    httpOnly: true,
    secure: 'auto',
    sameSite: 'lax',
    partitioned: false,
    expires: new Date(clock.now() + 86400_000).toISOString(),
    maxAge: 86400_000,
    originalMaxAge: 86400_000
  })
  const cookie = cookieOf(res) as string
  t.same((await a.inject({ method: 'POST', url: '/reload', headers: { cookie } })).json(), { a: 1 }, 'reload drops what was not saved')
  t.match((await a.inject({ method: 'POST', url: '/reload-new' })).json(), { data: {}, cookie: { expires: null, maxAge: null } })
  t.match((await a.inject({ method: 'POST', url: '/bad-callback' })).json(), { code: 'FST_SESSION_OPTION_INVALID' })
  const gone = await a.inject({ method: 'POST', url: '/reload-gone', headers: { cookie } })
  t.match(gone.json(), { code: 'FST_SESSION_REVOKED' })
  const other = cookieOf(await a.inject({ method: 'POST', url: '/callbacks' })) as string
  t.same((await a.inject({ method: 'POST', url: '/fail-cb', headers: { cookie: other } })).json(), { code: 'FST_SESSION_REVOKED', isNew: true })
  const third = cookieOf(await a.inject({ method: 'POST', url: '/callbacks' })) as string
  t.same((await a.inject({ method: 'POST', url: '/destroy-cb', headers: { cookie: third } })).json(), { isNew: true })
})

t.test('in-place changes across login and regenerate: measured against what the new session holds', async (t) => {
  const { app: a, store } = await app(t)
  a.post('/start', async (req) => {
    const s = req.session as unknown as Bag
    s.kept = { n: 1 }
    s.dropped = { n: 1 }
    return 'ok'
  })
  a.post('/login-keep', async (req) => {
    const s = req.session as unknown as Bag
    s.kept.n = 2 // changed before login: carried over as it is
    s.dropped.n = 2
    await req.session.login('alice', { keepData: ['kept'] })
    s.kept.n = 3 // changed after login: a change of the new session
    return 'ok'
  })
  a.post('/anonymous-regenerate', async (req) => {
    const s = req.session as unknown as Bag
    s.a = { n: 1 }
    s.b = { n: 1 }
    await req.session.regenerate(['b'])
    return { keys: Object.keys(s) }
  })
  a.get('/read', async (req) => req.session.toJSON())
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/start' })) as string
  const login = await a.inject({ method: 'POST', url: '/login-keep', headers: { cookie } })
  const loggedIn = cookieOf(login) as string
  t.same((await a.inject({ url: '/read', headers: { cookie: loggedIn } })).json(), { kept: { n: 3 } })
  t.equal(store.calls.patch, 1, 'the change after login is one write')
  const anonymous = await a.inject({ method: 'POST', url: '/anonymous-regenerate' })
  t.same(anonymous.json(), { keys: ['b'] })
  t.same((await a.inject({ url: '/read', headers: { cookie: cookieOf(anonymous) as string } })).json(), { b: { n: 1 } })
})

t.test('cookie shows the overrides of options(); reload() during a store outage fails with the store error', async (t) => {
  let down = false
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 100 })
  const a = await buildApp({ store: delegate(inner, { get: async (id) => { if (down) throw new Error('down'); return await inner.get(id) } }) })
  t.teardown(() => a.close())
  a.post('/strict', async (req) => {
    req.session.options({ sameSite: 'strict', secure: true })
    const { sameSite, secure, httpOnly } = req.session.cookie
    return { sameSite, secure, httpOnly }
  })
  a.post('/reload', async (req) => {
    down = true
    try {
      await req.session.reload()
    } finally {
      down = false
    }
    return 'no'
  })
  t.same((await a.inject({ method: 'POST', url: '/strict' })).json(), { sameSite: 'strict', secure: true, httpOnly: true })
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/counter' })) as string
  const res = await a.inject({ method: 'POST', url: '/reload', headers: { cookie } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
})
